//! Product affinities: which products go together, from baskets (the items of one order:
//! "frequently bought together") or from sessions (the products viewed in one session:
//! "viewed also viewed"). The association-rule measures of Agrawal, Imieliński & Swami (1993),
//! as mlxtend's `association_rules` computes them, over N baskets:
//!
//! - support(A, B) = baskets holding both ÷ N
//! - confidence(A → B) = baskets holding both ÷ baskets holding A
//! - lift(A → B) = confidence(A → B) ÷ (baskets holding B ÷ N)

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// A rule A → B.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Pair {
    pub product: String,
    pub other: String,
    /// Baskets holding both.
    pub together: u64,
    pub support: f64,
    pub confidence: f64,
    pub lift: f64,
}

/// Every rule A → B (both directions) whose pair is in at least `min_count` baskets and a
/// `min_support` share of them, strongest first per product (confidence, then lift), at most
/// `per_product` per A. A product counts once per basket.
pub fn rules(baskets: &[Vec<String>], min_support: f64, min_count: u64, per_product: usize) -> Vec<Pair> {
    let n = baskets.len() as f64;
    if baskets.is_empty() {
        return Vec::new();
    }
    let mut ids: HashMap<&str, u32> = HashMap::new();
    let mut names: Vec<&str> = Vec::new();
    let mut single: Vec<u64> = Vec::new();
    let mut both: HashMap<(u32, u32), u64> = HashMap::new();
    let mut basket: Vec<u32> = Vec::new();
    for b in baskets {
        basket.clear();
        for p in b {
            let id = *ids.entry(p.as_str()).or_insert_with(|| {
                names.push(p.as_str());
                single.push(0);
                (names.len() - 1) as u32
            });
            basket.push(id);
        }
        basket.sort_unstable();
        basket.dedup();
        for (i, &a) in basket.iter().enumerate() {
            single[a as usize] += 1;
            for &b in &basket[i + 1..] {
                *both.entry((a, b)).or_insert(0) += 1;
            }
        }
    }
    let mut by_product: HashMap<u32, Vec<Pair>> = HashMap::new();
    for ((a, b), k) in both {
        let support = k as f64 / n;
        if k < min_count || support < min_support {
            continue;
        }
        for (x, y) in [(a, b), (b, a)] {
            let confidence = k as f64 / single[x as usize] as f64;
            let lift = confidence / (single[y as usize] as f64 / n);
            by_product.entry(x).or_default().push(Pair {
                product: names[x as usize].to_owned(),
                other: names[y as usize].to_owned(),
                together: k,
                support,
                confidence,
                lift,
            });
        }
    }
    let mut out = Vec::new();
    let mut products: Vec<_> = by_product.into_iter().collect();
    products.sort_by(|a, b| names[a.0 as usize].cmp(names[b.0 as usize]));
    for (_, mut rules) in products {
        rules.sort_by(|a, b| {
            b.confidence.total_cmp(&a.confidence).then(b.lift.total_cmp(&a.lift)).then(a.other.cmp(&b.other))
        });
        rules.truncate(per_product);
        out.extend(rules);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn measures_by_hand() {
        // 4 baskets: mug+pot twice, mug once, tea once (with a repeated mug in one basket).
        let baskets = vec![b(&["mug", "pot"]), b(&["pot", "mug", "mug"]), b(&["mug"]), b(&["tea"])];
        let r = rules(&baskets, 0.0, 1, 10);
        assert_eq!(r.len(), 2);
        let mug_pot = r.iter().find(|p| p.product == "mug").expect("mug → pot");
        // both in 2 of 4; mug in 3; pot in 2.
        assert_eq!((mug_pot.other.as_str(), mug_pot.together), ("pot", 2));
        assert_eq!(mug_pot.support, 0.5);
        assert!((mug_pot.confidence - 2.0 / 3.0).abs() < 1e-12);
        assert!((mug_pot.lift - (2.0 / 3.0) / 0.5).abs() < 1e-12);
        let pot_mug = r.iter().find(|p| p.product == "pot").expect("pot → mug");
        assert_eq!(pot_mug.confidence, 1.0);
        assert!((pot_mug.lift - 1.0 / 0.75).abs() < 1e-12);
        // Thresholds: the pair is in 2 baskets.
        assert!(rules(&baskets, 0.0, 3, 10).is_empty());
        assert!(rules(&baskets, 0.6, 1, 10).is_empty());
        assert_eq!(rules(&baskets, 0.5, 2, 10).len(), 2);
    }

    #[test]
    fn strongest_first_and_capped() {
        let baskets = vec![b(&["a", "b"]), b(&["a", "b"]), b(&["a", "c"]), b(&["c"]), b(&["c"])];
        let r = rules(&baskets, 0.0, 1, 1);
        let a: Vec<&Pair> = r.iter().filter(|p| p.product == "a").collect();
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].other, "b");
    }
}
