//! Recommendations for a shop's pages, answered from memory: an index per site built from its
//! last fit when the fit is made (or, after a restart, on the first request), never per request.
//!
//! - For a product: the products bought with it (by confidence), then those viewed with it in a
//!   session, then the best sellers of its category.
//! - For a person: the products bought or viewed with what they looked at or bought in the last
//!   90 days (confidences summed), then the best sellers of their favourite category, then the
//!   shop's; never a product they bought in those 90 days.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use serde::Serialize;

use super::{Model, Person};
use crate::model::SiteId;
use crate::store::paths::DataDir;

/// Why a product is recommended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    BoughtTogether,
    ViewedTogether,
    CategoryBestseller,
    Bestseller,
}

/// One recommended product.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Recommendation {
    pub product: String,
    pub name: Option<String>,
    pub category: Option<String>,
    pub reason: Reason,
    /// Confidence of the rule (summed over a person's products), or the share of orders for
    /// best sellers.
    pub score: f64,
}

struct PersonIndex {
    recent: Vec<String>,
    bought: Vec<String>,
    category: Option<String>,
}

/// A site's recommendations index.
pub struct Index {
    pub fitted_at: String,
    pub as_of: String,
    stamp: Option<std::time::SystemTime>,
    rules: HashMap<String, Vec<(String, f64, Reason)>>,
    products: HashMap<String, super::Product>,
    /// Product ids by orders, most first, overall and per category.
    bestsellers: Vec<String>,
    by_category: HashMap<String, Vec<String>>,
    orders: f64,
    people: HashMap<String, PersonIndex>,
}

impl Index {
    /// Build from a fit.
    pub fn new(model: &Model, people: &[Person]) -> Self {
        let mut rules: HashMap<String, Vec<(String, f64, Reason)>> = HashMap::new();
        for (pairs, reason) in
            [(&model.bought_together, Reason::BoughtTogether), (&model.viewed_together, Reason::ViewedTogether)]
        {
            for p in pairs {
                rules.entry(p.product.clone()).or_default().push((p.other.clone(), p.confidence, reason));
            }
        }
        let mut by_category: HashMap<String, Vec<String>> = HashMap::new();
        let bestsellers: Vec<String> = model.products.iter().filter(|p| p.orders > 0).map(|p| p.id.clone()).collect();
        for p in model.products.iter().filter(|p| p.orders > 0) {
            if let Some(c) = &p.category {
                by_category.entry(c.clone()).or_default().push(p.id.clone());
            }
        }
        Self {
            fitted_at: model.fitted_at.clone(),
            as_of: model.as_of.clone(),
            stamp: None,
            rules,
            products: model.products.iter().map(|p| (p.id.clone(), p.clone())).collect(),
            bestsellers,
            by_category,
            orders: model.orders.max(1) as f64,
            people: people
                .iter()
                .filter(|p| !p.recent_products.is_empty() || p.top_category.is_some())
                .map(|p| {
                    (
                        p.person_id.clone(),
                        PersonIndex {
                            recent: p.recent_products.clone(),
                            bought: p.bought_products.clone(),
                            category: p.top_category.clone(),
                        },
                    )
                })
                .collect(),
        }
    }

    fn item(&self, id: &str, reason: Reason, score: f64) -> Recommendation {
        let p = self.products.get(id);
        Recommendation {
            product: id.to_owned(),
            name: p.and_then(|p| p.name.clone()),
            category: p.and_then(|p| p.category.clone()),
            reason,
            score,
        }
    }

    fn fill(&self, out: &mut Vec<Recommendation>, skip: &[String], category: Option<&str>, limit: usize) {
        let cat = category.and_then(|c| self.by_category.get(c)).map(|v| (v, Reason::CategoryBestseller));
        for (list, reason) in cat.into_iter().chain([(&self.bestsellers, Reason::Bestseller)]) {
            for id in list {
                if out.len() >= limit {
                    return;
                }
                if !skip.contains(id) && !out.iter().any(|r| &r.product == id) {
                    let orders = self.products.get(id).map_or(0, |p| p.orders) as f64;
                    out.push(self.item(id, reason, orders / self.orders));
                }
            }
        }
    }

    /// The shop's best sellers (by orders), for a product or person the fit does not know.
    pub fn bestsellers(&self, limit: usize) -> Vec<Recommendation> {
        let mut out = Vec::new();
        self.fill(&mut out, &[], None, limit);
        out
    }

    /// What to show next to `product`; `None` if the fit has never seen it.
    pub fn for_product(&self, product: &str, limit: usize) -> Option<Vec<Recommendation>> {
        let known = self.products.get(product)?;
        let mut out: Vec<Recommendation> = Vec::new();
        for (other, confidence, reason) in self.rules.get(product).into_iter().flatten() {
            if out.len() < limit && !out.iter().any(|r| &r.product == other) {
                out.push(self.item(other, *reason, *confidence));
            }
        }
        self.fill(&mut out, &[product.to_owned()], known.category.as_deref(), limit);
        Some(out)
    }

    /// What to show `person`, and whether the fit knows them (an unknown person gets best sellers).
    pub fn for_person(&self, person: &str, limit: usize) -> (bool, Vec<Recommendation>) {
        let Some(p) = self.people.get(person) else { return (false, self.bestsellers(limit)) };
        // Sum each candidate's confidences over the person's products, per reason (bought
        // together outranks viewed together).
        let mut scores: HashMap<(&str, Reason), f64> = HashMap::new();
        for id in &p.recent {
            for (other, confidence, reason) in self.rules.get(id).into_iter().flatten() {
                if !p.bought.contains(other) && !p.recent.contains(other) {
                    *scores.entry((other.as_str(), *reason)).or_insert(0.0) += confidence;
                }
            }
        }
        let mut ranked: Vec<((&str, Reason), f64)> = scores.into_iter().collect();
        let rank = |r: Reason| if r == Reason::BoughtTogether { 0 } else { 1 };
        ranked.sort_by(|a, b| rank(a.0.1).cmp(&rank(b.0.1)).then(b.1.total_cmp(&a.1)).then(a.0.0.cmp(b.0.0)));
        let mut out: Vec<Recommendation> = Vec::new();
        for ((id, reason), score) in ranked {
            if out.len() < limit && !out.iter().any(|r| r.product == id) {
                out.push(self.item(id, reason, score));
            }
        }
        let mut skip = p.bought.clone();
        skip.extend(p.recent.iter().cloned());
        self.fill(&mut out, &skip, p.category.as_deref(), limit);
        (true, out)
    }
}

type Indexes = Mutex<HashMap<(PathBuf, String), Arc<Index>>>;

static INDEXES: LazyLock<Indexes> = LazyLock::new(Indexes::default);

/// Make a new fit of `site` the one recommendations answer from.
pub fn install(data: &DataDir, site: &SiteId, model: &Model, people: &[Person]) {
    let mut index = Index::new(model, people);
    index.stamp = super::store::stamp(data, site);
    INDEXES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert((data.root().to_owned(), site.as_str().to_owned()), Arc::new(index));
}

/// The index of `site`: the one installed, or (first use after a start, or a fit written by
/// another process) built from the saved fit. `None` if the site has never been fitted.
pub fn index(data: &DataDir, site: &SiteId) -> Option<Arc<Index>> {
    let key = (data.root().to_owned(), site.as_str().to_owned());
    let stamp = super::store::stamp(data, site)?;
    if let Some(i) = INDEXES.lock().unwrap_or_else(PoisonError::into_inner).get(&key)
        && i.stamp == Some(stamp)
    {
        return Some(i.clone());
    }
    let model = super::load(data, site)?;
    let people = super::load_people(data, site).ok()?;
    install(data, site, &model, &people);
    INDEXES.lock().unwrap_or_else(PoisonError::into_inner).get(&key).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::predict::affinity::rules;

    fn model(baskets: &[&[&str]], views: &[&[&str]]) -> Model {
        let v =
            |b: &[&[&str]]| b.iter().map(|b| b.iter().map(|s| (*s).to_owned()).collect()).collect::<Vec<Vec<String>>>();
        let products = ["mug", "pot", "tea", "cup", "lid"]
            .iter()
            .map(|id| super::super::Product {
                id: (*id).into(),
                name: Some(id.to_uppercase()),
                category: Some(if *id == "lid" || *id == "pot" { "kitchen".into() } else { "tableware".into() }),
                orders: v(baskets).iter().filter(|b| b.iter().any(|x| x == id)).count() as u64,
            })
            .collect::<Vec<_>>();
        let mut products = products;
        products.sort_by(|a, b| b.orders.cmp(&a.orders).then(a.id.cmp(&b.id)));
        Model {
            site: "s".into(),
            fitted_at: String::new(),
            as_of: String::new(),
            config: super::super::Config::default(),
            customers: Default::default(),
            propensity: None,
            propensity_note: None,
            p_alive_bands: vec![],
            predicted_value_bands: vec![],
            purchase_probability_bands: vec![],
            orders: baskets.len() as u64,
            bought_together: rules(&v(baskets), 0.0, 2, 20),
            sessions: views.len() as u64,
            viewed_together: rules(&v(views), 0.0, 2, 20),
            products,
            seconds: 0.0,
            stages: vec![],
        }
    }

    #[test]
    fn product_then_views_then_category() {
        let m = model(
            &[&["mug", "tea"], &["mug", "tea"], &["mug", "cup"], &["pot"], &["lid"], &["lid"]],
            &[&["mug", "lid"], &["mug", "lid"]],
        );
        let i = Index::new(&m, &[]);
        let r = i.for_product("mug", 4).expect("known");
        let got: Vec<(&str, Reason)> = r.iter().map(|r| (r.product.as_str(), r.reason)).collect();
        // tea with mug in 2 of 3 mug orders; cup once (below the 2-order minimum); lid viewed
        // with mug in 2 sessions; then tableware's best sellers (mug itself and tea are taken,
        // cup is next); then the shop's (by orders, then id: mug, lid, tea, cup taken; pot).
        assert_eq!(
            got,
            vec![
                ("tea", Reason::BoughtTogether),
                ("lid", Reason::ViewedTogether),
                ("cup", Reason::CategoryBestseller),
                ("pot", Reason::Bestseller)
            ]
        );
        assert!((r[0].score - 2.0 / 3.0).abs() < 1e-12);
        assert!(i.for_product("nope", 4).is_none());
    }

    #[test]
    fn person_never_gets_what_they_bought() {
        let m = model(&[&["mug", "tea"], &["mug", "tea"], &["pot"], &["lid"], &["lid"]], &[]);
        let ann = Person {
            person_id: "u:ann".into(),
            recent_products: vec!["mug".into()],
            bought_products: vec!["mug".into()],
            top_category: Some("kitchen".into()),
            ..Person::default()
        };
        let i = Index::new(&m, &[ann]);
        let (known, r) = i.for_person("u:ann", 3);
        assert!(known);
        let ids: Vec<&str> = r.iter().map(|r| r.product.as_str()).collect();
        // tea (bought with mug), then kitchen's best sellers: lid (2 orders), pot (1). An unknown
        // person gets the shop's best sellers: lid, mug, tea have 2 orders each (then by id).
        assert_eq!(ids, vec!["tea", "lid", "pot"]);
        let (known, r) = i.for_person("u:nobody", 2);
        assert!(!known);
        assert_eq!(r.iter().map(|r| r.product.as_str()).collect::<Vec<_>>(), vec!["lid", "mug"]);
    }
}
