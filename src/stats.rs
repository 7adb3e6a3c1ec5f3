//! The statistics behind experiment reports, on `statrs`'s distributions: the two-proportion
//! z-test, Welch's t-test, Bayesian probabilities from Beta posteriors, the sample-ratio
//! chi-square test and the sample-size planner. Each function says the formula it uses.

use statrs::distribution::{Beta, ChiSquared, Continuous, ContinuousCDF, Normal, StudentsT};

fn std_normal() -> Normal {
    // Mean 0 and standard deviation 1 are valid parameters.
    Normal::standard()
}

/// `z` such that P(Z ≤ z) = p for the standard normal.
pub fn z_quantile(p: f64) -> f64 {
    std_normal().inverse_cdf(p)
}

/// A two-sided test of two conversion rates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProportionTest {
    /// Treatment rate − control rate.
    pub diff: f64,
    /// The `1 − alpha` confidence interval of `diff` (unpooled standard error).
    pub ci: (f64, f64),
    /// z statistic with the pooled standard error (the null hypothesis: equal rates).
    pub z: f64,
    /// Two-sided p-value.
    pub p_value: f64,
}

/// Two-proportion z-test of `x1 / n1` (control) against `x2 / n2` (treatment):
/// `z = (p2 − p1) / sqrt(p̂ (1 − p̂) (1/n1 + 1/n2))` with the pooled `p̂ = (x1 + x2) / (n1 + n2)`,
/// `p = 2 (1 − Φ(|z|))`; the interval is `(p2 − p1) ± z_{1−α/2} sqrt(p1 q1 / n1 + p2 q2 / n2)`.
/// `None` when either group is empty.
pub fn two_proportion(x1: u64, n1: u64, x2: u64, n2: u64, alpha: f64) -> Option<ProportionTest> {
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let (p1, p2) = (x1 as f64 / n1f, x2 as f64 / n2f);
    let pooled = (x1 + x2) as f64 / (n1f + n2f);
    let se0 = (pooled * (1.0 - pooled) * (1.0 / n1f + 1.0 / n2f)).sqrt();
    let diff = p2 - p1;
    let (z, p_value) = if se0 > 0.0 {
        let z = diff / se0;
        (z, 2.0 * (1.0 - std_normal().cdf(z.abs())))
    } else {
        (0.0, 1.0)
    };
    let se = (p1 * (1.0 - p1) / n1f + p2 * (1.0 - p2) / n2f).sqrt();
    let half = z_quantile(1.0 - alpha / 2.0) * se;
    Some(ProportionTest { diff, ci: (diff - half, diff + half), z, p_value })
}

/// Count, mean and sample variance of some values (what Welch's test needs).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Moments {
    pub n: f64,
    pub mean: f64,
    /// Sample variance (n − 1 in the denominator).
    pub var: f64,
}

impl Moments {
    /// From the count, sum and sum of squares.
    pub fn from_sums(n: f64, sum: f64, sum_sq: f64) -> Self {
        if n <= 0.0 {
            return Self::default();
        }
        let mean = sum / n;
        let var = if n > 1.0 { ((sum_sq - n * mean * mean) / (n - 1.0)).max(0.0) } else { 0.0 };
        Self { n, mean, var }
    }

    pub fn of(values: &[f64]) -> Self {
        let sum: f64 = values.iter().sum();
        let sum_sq: f64 = values.iter().map(|v| v * v).sum();
        Self::from_sums(values.len() as f64, sum, sum_sq)
    }
}

/// Welch's t-test.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WelchTest {
    /// b.mean − a.mean.
    pub diff: f64,
    pub t: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub df: f64,
    pub p_value: f64,
    /// The `1 − alpha` confidence interval of `diff`.
    pub ci: (f64, f64),
}

/// Welch's unequal-variances t-test of `b` against `a`: `t = (m_b − m_a) / sqrt(s_a²/n_a + s_b²/n_b)`,
/// `df = (s_a²/n_a + s_b²/n_b)² / ((s_a²/n_a)²/(n_a − 1) + (s_b²/n_b)²/(n_b − 1))`, two-sided
/// p from Student's t. `None` with fewer than two values on a side or no variance at all.
pub fn welch(a: Moments, b: Moments, alpha: f64) -> Option<WelchTest> {
    if a.n < 2.0 || b.n < 2.0 {
        return None;
    }
    let (va, vb) = (a.var / a.n, b.var / b.n);
    let se2 = va + vb;
    if se2 <= 0.0 {
        return None;
    }
    let df = se2 * se2 / (va * va / (a.n - 1.0) + vb * vb / (b.n - 1.0));
    let dist = StudentsT::new(0.0, 1.0, df).ok()?;
    let diff = b.mean - a.mean;
    let t = diff / se2.sqrt();
    let half = dist.inverse_cdf(1.0 - alpha / 2.0) * se2.sqrt();
    Some(WelchTest { diff, t, df, p_value: 2.0 * (1.0 - dist.cdf(t.abs())), ci: (diff - half, diff + half) })
}

/// Pearson's chi-square goodness of fit of `observed` counts to `expected` shares (any
/// positive weights): `χ² = Σ (O − E)² / E` with `k − 1` degrees of freedom; returns (χ², p).
pub fn chi_square_fit(observed: &[u64], weights: &[f64]) -> Option<(f64, f64)> {
    let total: f64 = observed.iter().map(|&o| o as f64).sum();
    let wsum: f64 = weights.iter().sum();
    if observed.len() < 2 || observed.len() != weights.len() || total <= 0.0 || wsum <= 0.0 {
        return None;
    }
    let chi2: f64 = observed
        .iter()
        .zip(weights)
        .map(|(&o, &w)| {
            let e = total * w / wsum;
            (o as f64 - e).powi(2) / e
        })
        .sum();
    let dist = ChiSquared::new((observed.len() - 1) as f64).ok()?;
    Some((chi2, 1.0 - dist.cdf(chi2)))
}

/// For each variant `(conversions, people)`, the probability that its conversion rate is the
/// highest, with Beta(1 + conversions, 1 + people − conversions) posteriors (uniform priors):
/// `P(i best) = ∫ f_i(x) Π_{j≠i} F_j(x) dx`, integrated with Simpson's rule on 4,000 intervals
/// over the range where the posteriors have mass. With two variants, the second's value is the
/// probability that it beats the first.
pub fn prob_best(variants: &[(u64, u64)]) -> Vec<f64> {
    let posts: Vec<Beta> = variants
        .iter()
        .filter_map(|&(x, n)| Beta::new(1.0 + x as f64, 1.0 + n.saturating_sub(x) as f64).ok())
        .collect();
    if posts.len() != variants.len() || posts.is_empty() {
        return vec![f64::NAN; variants.len()];
    }
    // Mean ± 10 standard deviations of every posterior, within [0, 1].
    let (mut lo, mut hi) = (1.0f64, 0.0f64);
    for &(x, n) in variants {
        let (a, b) = (1.0 + x as f64, 1.0 + n.saturating_sub(x) as f64);
        let mean = a / (a + b);
        let sd = (a * b / ((a + b).powi(2) * (a + b + 1.0))).sqrt();
        lo = lo.min(mean - 10.0 * sd);
        hi = hi.max(mean + 10.0 * sd);
    }
    let (lo, hi) = (lo.max(0.0), hi.min(1.0));
    const STEPS: usize = 4000;
    let h = (hi - lo) / STEPS as f64;
    let mut out = vec![0.0; posts.len()];
    for k in 0..=STEPS {
        let x = lo + h * k as f64;
        let w = if k == 0 || k == STEPS {
            1.0
        } else if k % 2 == 1 {
            4.0
        } else {
            2.0
        };
        let cdfs: Vec<f64> = posts.iter().map(|p| p.cdf(x)).collect();
        for (i, p) in posts.iter().enumerate() {
            let pdf = p.pdf(x);
            if !pdf.is_finite() || pdf == 0.0 {
                continue;
            }
            let others: f64 = cdfs.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, c)| c).product();
            out[i] += w * pdf * others;
        }
    }
    let total: f64 = out.iter().map(|v| v * h / 3.0).sum();
    // Normalise away the integration error (the probabilities add up to one).
    out.iter().map(|v| if total > 0.0 { v * h / 3.0 / total } else { f64::NAN }).collect()
}

/// People needed **per variant** to detect a change of conversion rate from `p1` to `p2` with a
/// two-sided test at `alpha` and the given `power`:
/// `n = (z_{1−α/2} sqrt(2 p̄ q̄) + z_{power} sqrt(p1 q1 + p2 q2))² / (p2 − p1)²`, `p̄ = (p1 + p2) / 2`
/// (Fleiss, without continuity correction), rounded up.
pub fn sample_size(p1: f64, p2: f64, alpha: f64, power: f64) -> Option<u64> {
    if !(0.0..1.0).contains(&p1) || !(0.0..=1.0).contains(&p2) || (p2 - p1).abs() < 1e-12 {
        return None;
    }
    let pbar = (p1 + p2) / 2.0;
    let za = z_quantile(1.0 - alpha / 2.0);
    let zb = z_quantile(power);
    let num = za * (2.0 * pbar * (1.0 - pbar)).sqrt() + zb * (p1 * (1.0 - p1) + p2 * (1.0 - p2)).sqrt();
    Some((num * num / (p2 - p1).powi(2)).ceil() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn two_proportion_matches_a_published_example() {
        // calculatorlib.com, "Two-Proportion Z-Test Calculator", worked example: 45/100 against
        // 30/100, pooled p̂ = 0.375, SE = 0.06847, z ≈ 2.191, two-tailed p ≈ 0.0285 (0.02846).
        let t = two_proportion(30, 100, 45, 100, 0.05).expect("test");
        assert!(close(t.z, 2.1909, 0.0001), "{t:?}");
        assert!(close(t.p_value, 0.02846, 0.00001), "{t:?}");
        // Unpooled 95% interval of 0.15, by hand: 1.95996 · sqrt(0.45 · 0.55 / 100 + 0.3 · 0.7 / 100)
        // = 1.95996 · 0.067639 = 0.13257.
        assert!(close(t.ci.0, 0.15 - 0.13257, 0.00001) && close(t.ci.1, 0.15 + 0.13257, 0.00001), "{t:?}");
    }

    #[test]
    fn welch_matches_published_examples() {
        // mathspin.ai, "Two-Sample T-Test": A (mean 85, s 5, n 20) against B (mean 80, s 6, n 25):
        // t = 3.05, Welch df ≈ 42.9, critical t at alpha 0.05 ≈ 2.017.
        let w = welch(Moments { n: 25.0, mean: 80.0, var: 36.0 }, Moments { n: 20.0, mean: 85.0, var: 25.0 }, 0.05)
            .expect("test");
        assert!(close(w.t, 3.05, 0.005) && close(w.df, 42.9, 0.05), "{w:?}");
        assert!(close((w.ci.1 - w.diff) / (w.diff / w.t), 2.017, 0.001), "{w:?}");
        // senseofstudy.com, two-sample tests, example 4: n 20, mean 100, s 15 against n 20,
        // mean 95, s 20: t ≈ 0.895, df ≈ 35.2, p > 0.05.
        let w = welch(Moments { n: 20.0, mean: 95.0, var: 400.0 }, Moments { n: 20.0, mean: 100.0, var: 225.0 }, 0.05)
            .expect("test");
        assert!(close(w.t, 0.895, 0.001) && close(w.df, 35.2, 0.05) && w.p_value > 0.05, "{w:?}");
        // statulator.com, "Independent two-sample t-test" help, its second example (Welch):
        // n 35, mean 4.2, SD 1.8 against n 35, mean 5.1, SD 2.0: t = −1.98, df = 67, p = 0.052,
        // 95% CI (−1.81, 0.01). (Its first example's t = −2.54 does not follow from its own
        // inputs: −23 / sqrt(32²/30 + 38²/28) = −2.48.)
        // The same page, example 2: n = 35, mean 4.2, SD 1.8 against n = 35, mean 5.1, SD 2.0:
        // t = −1.98, df = 67, p = 0.052, CI (−1.81, 0.01).
        let w = welch(Moments { n: 35.0, mean: 5.1, var: 4.0 }, Moments { n: 35.0, mean: 4.2, var: 1.8 * 1.8 }, 0.05)
            .expect("test");
        assert!(close(w.t, -1.98, 0.005) && close(w.df, 67.2, 0.5) && close(w.p_value, 0.052, 0.0005), "{w:?}");
        assert!(close(w.ci.0, -1.81, 0.005) && close(w.ci.1, 0.01, 0.005), "{w:?}");
    }

    #[test]
    fn chi_square_matches_published_sample_ratio_examples() {
        // Wikipedia, "Sample ratio mismatch": 600 and 400 users for an intended 50/50 split,
        // p = 2.54 × 10⁻¹⁰.
        let (chi2, p) = chi_square_fit(&[600, 400], &[1.0, 1.0]).expect("test");
        assert!(close(chi2, 40.0, 1e-9) && close(p / 2.54e-10, 1.0, 0.01), "{chi2} {p}");
        // srm.osc.garden: 44,000 and 45,000 for 50/50, p ≈ 0.0008.
        let (_, p) = chi_square_fit(&[44_000, 45_000], &[0.5, 0.5]).expect("test");
        assert!(close(p, 0.0008, 0.00005), "{p}");
    }

    #[test]
    fn sample_size_by_hand() {
        // 10% → 11%, alpha 0.05, power 0.8: p̄ = 0.105;
        // 1.95996 · sqrt(2 · 0.105 · 0.895) = 0.84971, 0.84162 · sqrt(0.09 + 0.0979) = 0.36482;
        // (1.21453)² / 0.01² = 14,750.7 → 14,751.
        assert_eq!(sample_size(0.10, 0.11, 0.05, 0.8), Some(14_751));
        // 30% → 50%: (1.95996 · 0.69282 + 0.84162 · 0.67823)² / 0.04 = 92.998 → 93.
        assert_eq!(sample_size(0.3, 0.5, 0.05, 0.8), Some(93));
        assert_eq!(sample_size(0.1, 0.1, 0.05, 0.8), None);
    }

    /// Conversions of `n` people converting with probability `p`.
    fn draw(rng: &mut rand::rngs::StdRng, n: u64, p: f64) -> u64 {
        use rand::Rng;
        (0..n).filter(|_| rng.random_bool(p)).count() as u64
    }

    #[test]
    fn simulated_a_a_tests_are_false_positives_five_percent_of_the_time() {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(2026);
        let (runs, n, p) = (2000, 2000, 0.1);
        let positives = (0..runs)
            .filter(|_| {
                let (a, b) = (draw(&mut rng, n, p), draw(&mut rng, n, p));
                two_proportion(a, n, b, n, 0.05).is_some_and(|t| t.p_value < 0.05)
            })
            .count();
        let rate = positives as f64 / runs as f64;
        println!("A/A false-positive rate: {rate}");
        assert!((0.04..=0.06).contains(&rate), "false-positive rate {rate}");
    }

    #[test]
    fn simulated_ten_percent_lift_is_found_with_the_planned_power() {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let (p1, p2) = (0.3, 0.33);
        let n = sample_size(p1, p2, 0.05, 0.8).expect("n");
        let runs = 1000;
        let found = (0..runs)
            .filter(|_| {
                let (a, b) = (draw(&mut rng, n, p1), draw(&mut rng, n, p2));
                two_proportion(a, n, b, n, 0.05).is_some_and(|t| t.p_value < 0.05 && t.diff > 0.0)
            })
            .count();
        let power = found as f64 / runs as f64;
        println!("{n} people per variant found the lift {power} of the time");
        assert!((0.75..=0.85).contains(&power), "{n} people per variant detected the lift {power} of the time");
    }

    #[test]
    fn a_simulated_45_55_split_trips_the_sample_ratio_check() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        // 10,000 people meant for 50/50 but assigned 45/55.
        let a = (0..10_000).filter(|_| rng.random_bool(0.45)).count() as u64;
        let (_, p) = chi_square_fit(&[a, 10_000 - a], &[1.0, 1.0]).expect("test");
        assert!(p < 0.001, "{a} vs {}: p = {p}", 10_000 - a);
        // A fair 50/50 split stays quiet (this seed; at p < 0.001 it would be 1 in 1,000).
        let a = (0..10_000).filter(|_| rng.random_bool(0.5)).count() as u64;
        let (_, p) = chi_square_fit(&[a, 10_000 - a], &[1.0, 1.0]).expect("test");
        assert!(p >= 0.001, "{a}: p = {p}");
    }

    #[test]
    fn prob_best_agrees_with_the_closed_form() {
        // Evan Miller's closed form for P(B > A) with Beta posteriors:
        // Σ_{i=0}^{a_B−1} B(a_A + i, b_A + b_B) / ((b_B + i) B(1 + i, b_B) B(a_A, b_A)).
        use statrs::function::beta::ln_beta;
        for &(xa, na, xb, nb) in &[(10u64, 100u64, 15u64, 100u64), (120, 1000, 100, 1000), (48, 500, 63, 510)] {
            let (aa, ba, ab, bb) = (1.0 + xa as f64, 1.0 + (na - xa) as f64, 1.0 + xb as f64, 1.0 + (nb - xb) as f64);
            let exact: f64 = (0..ab as u64)
                .map(|i| {
                    let i = i as f64;
                    (ln_beta(aa + i, ba + bb) - (bb + i).ln() - ln_beta(1.0 + i, bb) - ln_beta(aa, ba)).exp()
                })
                .sum();
            let p = prob_best(&[(xa, na), (xb, nb)]);
            assert!(close(p[1], exact, 1e-4), "{p:?} vs {exact}");
            assert!(close(p[0] + p[1], 1.0, 1e-9));
        }
        // Three equal variants: a third each.
        let p = prob_best(&[(50, 500), (50, 500), (50, 500)]);
        assert!(p.iter().all(|v| close(*v, 1.0 / 3.0, 1e-3)), "{p:?}");
    }
}
