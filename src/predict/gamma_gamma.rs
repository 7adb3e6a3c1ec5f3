//! Gamma-Gamma: how much a customer spends per order (Fader & Hardie 2013, "The Gamma-Gamma
//! Model of Monetary Value"; Colombo & Jiang 1999).
//!
//! Each order's value z ~ Gamma(p, ν) around the customer's own mean p/ν, with ν ~ Gamma(q, γ)
//! across customers. A customer is summarised by x (repeat purchases) and m_x (their mean value).

use super::optim::maximise;
use super::special::ln_gamma;

/// The fitted parameters (`v` is the paper's γ, lifetimes' `v`).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct GammaGamma {
    pub p: f64,
    pub q: f64,
    pub v: f64,
}

impl GammaGamma {
    /// The log-likelihood of one customer's mean m_x over x orders, Fader & Hardie (2013)
    /// equation (3), the density of the mean z̄ = m_x:
    ///
    /// f(m_x | p, q, γ, x) = Γ(px + q) / (Γ(px) Γ(q)) · γ^q m_x^(px − 1) x^(px) / (γ + m_x x)^(px + q)
    ///
    /// (lifetimes' `GammaGammaFitter` maximises the same expression, so the estimates compare).
    pub fn log_likelihood(&self, x: f64, m: f64) -> f64 {
        let Self { p, q, v } = *self;
        let px = p * x;
        ln_gamma(px + q) - ln_gamma(px) - ln_gamma(q) + q * v.ln() + (px - 1.0) * m.ln() + px * x.ln()
            - (px + q) * (x * m + v).ln()
    }

    /// Fit over customers with at least one repeat purchase and a positive mean: (x, m_x, weight).
    pub fn fit(customers: &[(f64, f64, f64)]) -> Option<Self> {
        let usable: Vec<_> = customers.iter().filter(|(x, m, _)| *x > 0.0 && *m > 0.0).copied().collect();
        if usable.iter().map(|c| c.2).sum::<f64>() < 10.0 {
            return None;
        }
        let neg_ll = |p: &[f64]| {
            let g = Self { p: p[0], q: p[1], v: p[2] };
            // The Γ terms depend on x only: once per distinct x.
            let mut by_x: std::collections::HashMap<u64, f64> = std::collections::HashMap::new();
            let base = -ln_gamma(g.q) + g.q * g.v.ln();
            -usable
                .iter()
                .map(|(x, m, w)| {
                    let px = g.p * x;
                    let gammas = *by_x
                        .entry(x.to_bits())
                        .or_insert_with(|| base + ln_gamma(px + g.q) - ln_gamma(px) + px * x.ln());
                    w * (gammas + (px - 1.0) * m.ln() - (px + g.q) * (x * m + g.v).ln())
                })
                .sum::<f64>()
        };
        let p = maximise(neg_ll, &[1.0, 1.0, 1.0])?;
        Some(Self { p: p[0], q: p[1], v: p[2] })
    }

    /// The expected value of a customer's next orders given x orders averaging m_x, Fader &
    /// Hardie (2013) equation (5):
    ///
    /// E[Z | p, q, γ, m_x, x] = p (γ + x m_x) / (p x + q − 1)
    ///
    /// With x = 0 this is the population mean p γ / (q − 1). `None` when q ≤ 1 (no finite mean).
    pub fn expected_order_value(&self, x: f64, m: f64) -> Option<f64> {
        let Self { p, q, v } = *self;
        let (x, m) = if x > 0.0 && m > 0.0 { (x, m) } else { (0.0, 0.0) };
        (p * x + q - 1.0 > 0.0).then(|| p * (v + x * m) / (p * x + q - 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_order_density_is_gamma_mixed() {
        // x = 1: f(m) = Γ(p+q)/(Γ(p)Γ(q)) γ^q m^(p−1) / (γ + m)^(p+q), a beta-prime shape.
        let g = GammaGamma { p: 6.25, q: 3.74, v: 15.44 };
        let m: f64 = 35.0;
        let want = ln_gamma(g.p + g.q) - ln_gamma(g.p) - ln_gamma(g.q) + g.q * g.v.ln() + (g.p - 1.0) * m.ln()
            - (g.p + g.q) * (g.v + m).ln();
        assert!((g.log_likelihood(1.0, m) - want).abs() < 1e-12);
    }

    #[test]
    fn fit_objective_is_the_likelihood() {
        // The fit's cached sum equals the sum of log_likelihood: fit data drawn from the model
        // find parameters whose likelihood no nearby point beats.
        let data = [(1.0, 20.0, 1.0), (2.0, 35.0, 2.0), (5.0, 12.5, 1.0), (2.0, 80.0, 1.0)];
        let data: Vec<(f64, f64, f64)> = (0..20).flat_map(|_| data).collect();
        let g = GammaGamma::fit(&data).expect("fit");
        let ll = |g: &GammaGamma| data.iter().map(|(x, m, w)| w * g.log_likelihood(*x, *m)).sum::<f64>();
        for (dp, dq, dv) in [(1.01, 1.0, 1.0), (0.99, 1.0, 1.0), (1.0, 1.01, 1.0), (1.0, 1.0, 0.99), (1.0, 1.0, 1.01)] {
            let near = GammaGamma { p: g.p * dp, q: g.q * dq, v: g.v * dv };
            assert!(ll(&g) >= ll(&near) - 1e-9, "{g:?} vs {near:?}");
        }
    }

    #[test]
    fn expectation_shrinks_toward_the_population_mean() {
        let g = GammaGamma { p: 6.25, q: 3.74, v: 15.44 };
        let population = g.expected_order_value(0.0, 0.0).expect("q > 1");
        assert!((population - 6.25 * 15.44 / 2.74).abs() < 1e-9);
        // A big spender's expectation lies between their own mean and the population's, and
        // moves toward their own with more orders.
        let one = g.expected_order_value(1.0, 100.0).expect("mean");
        let ten = g.expected_order_value(10.0, 100.0).expect("mean");
        assert!(population < one && one < ten && ten < 100.0, "{population} {one} {ten}");
        assert!(GammaGamma { p: 1.0, q: 0.5, v: 1.0 }.expected_order_value(0.0, 0.0).is_none());
    }
}
