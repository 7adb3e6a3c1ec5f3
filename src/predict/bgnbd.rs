//! BG/NBD: how often a customer buys and whether they are still a customer (Fader, Hardie & Lee
//! 2005, "Counting Your Customers the Easy Way: An Alternative to the Pareto/NBD Model",
//! Marketing Science 24(2)).
//!
//! While alive, a customer buys at a Poisson rate λ ~ Gamma(r, α); after each purchase they
//! become inactive with probability p ~ Beta(a, b). A customer is summarised by x (repeat
//! purchases), t_x (time of the last purchase since the first) and T (time since the first
//! purchase); any time unit works, footfall uses days.

use super::optim::maximise;
use super::special::{hyp2f1, ln_beta, ln_gamma};

/// One customer's summary, and how many customers share it (the fit groups equal summaries).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rfm {
    /// Repeat purchases (purchase days after the first).
    pub x: f64,
    /// Time from the first purchase to the last.
    pub t_x: f64,
    /// Time from the first purchase to the end of the observation.
    pub t: f64,
}

/// The fitted parameters.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct BgNbd {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
}

impl BgNbd {
    /// The log-likelihood of one customer, FHL 2005 equation (6):
    ///
    /// L(r, α, a, b | x, t_x, T) = B(a, b + x) / B(a, b) · Γ(r + x) α^r / (Γ(r) (α + T)^(r + x))
    ///                           + δ(x > 0) · B(a + 1, b + x − 1) / B(a, b) · Γ(r + x) α^r / (Γ(r) (α + t_x)^(r + x))
    ///
    /// taken in logs with the common factor Γ(r + x) α^r / Γ(r) · B(a, b + x) / B(a, b) outside:
    /// B(a + 1, b + x − 1) / B(a, b + x) = a / (b + x − 1).
    pub fn log_likelihood(&self, c: &Rfm) -> f64 {
        let Self { r, alpha, a, b } = *self;
        let common = ln_gamma(r + c.x) - ln_gamma(r) + r * alpha.ln() + ln_beta(a, b + c.x) - ln_beta(a, b);
        self.tail(common, c)
    }

    /// The sum of `weight × log_likelihood` over customers, with the Γ and B terms computed once
    /// per distinct x (they depend on nothing else): the fit's hot loop.
    pub fn total_log_likelihood(&self, customers: &[(Rfm, f64)]) -> f64 {
        let Self { r, alpha, a, b } = *self;
        let base = -ln_gamma(r) + r * alpha.ln() - ln_beta(a, b);
        let mut by_x: std::collections::HashMap<u64, f64> = std::collections::HashMap::new();
        customers
            .iter()
            .map(|(c, w)| {
                let common =
                    *by_x.entry(c.x.to_bits()).or_insert_with(|| base + ln_gamma(r + c.x) + ln_beta(a, b + c.x));
                w * self.tail(common, c)
            })
            .sum()
    }

    fn tail(&self, common: f64, c: &Rfm) -> f64 {
        let Self { r, alpha, a, b } = *self;
        let x = c.x;
        let still = -(r + x) * (alpha + c.t).ln();
        if x > 0.0 {
            let dropped = a.ln() - (b + x - 1.0).ln() - (r + x) * (alpha + c.t_x).ln();
            common + log_add_exp(still, dropped)
        } else {
            common + still
        }
    }

    /// Fit by maximum likelihood over customers with weights (how many share each summary).
    /// `None` when there are too few customers or the search fails.
    pub fn fit(customers: &[(Rfm, f64)]) -> Option<Self> {
        if customers.iter().map(|c| c.1).sum::<f64>() < 10.0 || customers.iter().all(|c| c.0.x == 0.0) {
            return None;
        }
        let neg_ll = |p: &[f64]| {
            let m = Self { r: p[0], alpha: p[1], a: p[2], b: p[3] };
            -m.total_log_likelihood(customers)
        };
        // lifetimes starts every parameter at 1 (scipy's Nelder-Mead over the logs); so do we.
        let p = maximise(neg_ll, &[1.0, 1.0, 1.0, 1.0])?;
        Some(Self { r: p[0], alpha: p[1], a: p[2], b: p[3] })
    }

    /// P(alive | x, t_x, T), FHL 2005 equation (11) (and Fader, Hardie & Lee's 2008 note
    /// "Computing P(alive) Using the BG/NBD Model"):
    ///
    /// P(alive) = 1 / (1 + δ(x > 0) · a / (b + x − 1) · ((α + T) / (α + t_x))^(r + x))
    pub fn p_alive(&self, c: &Rfm) -> f64 {
        if c.x == 0.0 {
            return 1.0;
        }
        1.0 / (1.0 + self.dropout_odds(c))
    }

    fn dropout_odds(&self, c: &Rfm) -> f64 {
        if c.x == 0.0 {
            return 0.0;
        }
        let Self { r, alpha, a, b } = *self;
        (a.ln() - (b + c.x - 1.0).ln() + (r + c.x) * ((alpha + c.t).ln() - (alpha + c.t_x).ln())).exp()
    }

    /// Expected purchases in the next `t` time units, FHL 2005 equation (10):
    ///
    /// E[Y(t) | x, t_x, T] = (a + b + x − 1) / (a − 1)
    ///     · [1 − ((α + T) / (α + T + t))^(r + x) · ₂F₁(r + x, b + x; a + b + x − 1; t / (α + T + t))]
    ///     / (1 + δ(x > 0) · a / (b + x − 1) · ((α + T) / (α + t_x))^(r + x))
    pub fn expected_purchases(&self, t: f64, c: &Rfm) -> f64 {
        let Self { r, alpha, a, b } = *self;
        let x = c.x;
        let z = t / (alpha + c.t + t);
        let hyp = hyp2f1(r + x, b + x, a + b + x - 1.0, z);
        let bracket = 1.0 - ((alpha + c.t) / (alpha + c.t + t)).powf(r + x) * hyp;
        (a + b + x - 1.0) / (a - 1.0) * bracket / (1.0 + self.dropout_odds(c))
    }
}

/// ln(eˣ + eʸ) without overflow.
fn log_add_exp(x: f64, y: f64) -> f64 {
    let m = x.max(y);
    m + ((x - m).exp() + (y - m).exp()).ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The paper's CDNOW estimates (FHL 2005, section 4).
    const PAPER: BgNbd = BgNbd { r: 0.243, alpha: 4.414, a: 0.793, b: 2.426 };

    #[test]
    fn likelihood_of_a_non_repeater_is_the_closed_form() {
        // x = 0: L = B(a, b)/B(a, b) · (α / (α + T))^r, the probability of no purchase in T
        // under a gamma-mixed Poisson (and p does not enter).
        let c = Rfm { x: 0.0, t_x: 0.0, t: 30.0 };
        let want = (PAPER.alpha / (PAPER.alpha + 30.0)).powf(PAPER.r).ln();
        assert!((PAPER.log_likelihood(&c) - want).abs() < 1e-12);
    }

    #[test]
    fn total_is_the_weighted_sum() {
        let cs = [
            (Rfm { x: 0.0, t_x: 0.0, t: 30.0 }, 2.0),
            (Rfm { x: 3.0, t_x: 20.0, t: 30.0 }, 1.0),
            (Rfm { x: 3.0, t_x: 5.0, t: 31.0 }, 3.0),
        ];
        let want: f64 = cs.iter().map(|(c, w)| w * PAPER.log_likelihood(c)).sum();
        assert!((PAPER.total_log_likelihood(&cs) - want).abs() < 1e-9);
    }

    #[test]
    fn p_alive_rules() {
        // No repeat purchase: alive for sure (the model only lets a customer drop out after a purchase).
        assert_eq!(PAPER.p_alive(&Rfm { x: 0.0, t_x: 0.0, t: 50.0 }), 1.0);
        // Last purchase just now: as alive as it gets; long ago: less so.
        let fresh = PAPER.p_alive(&Rfm { x: 3.0, t_x: 38.0, t: 38.0 });
        let stale = PAPER.p_alive(&Rfm { x: 3.0, t_x: 5.0, t: 38.0 });
        assert!(fresh > stale && stale > 0.0, "{fresh} {stale}");
        // With t_x = T the odds are a / (b + x − 1).
        assert!((fresh - 1.0 / (1.0 + 0.793 / (2.426 + 2.0))).abs() < 1e-12);
    }

    #[test]
    fn expectation_at_time_zero_is_zero_and_grows() {
        let c = Rfm { x: 2.0, t_x: 30.43, t: 38.86 };
        assert!(PAPER.expected_purchases(0.0, &c).abs() < 1e-12);
        let a = PAPER.expected_purchases(10.0, &c);
        let b = PAPER.expected_purchases(39.0, &c);
        assert!(0.0 < a && a < b, "{a} {b}");
    }

    #[test]
    fn fit_recovers_simulated_parameters() {
        // Customers drawn from the model itself with known parameters; the fit finds them back.
        use rand::{Rng, SeedableRng};
        use statrs::distribution::{Beta, ContinuousCDF, Gamma};
        let truth = BgNbd { r: 0.5, alpha: 5.0, a: 0.8, b: 2.5 };
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let gamma = Gamma::new(truth.r, truth.alpha).expect("gamma");
        let beta = Beta::new(truth.a, truth.b).expect("beta");
        let mut customers = Vec::new();
        for _ in 0..20_000 {
            // statrs's Gamma takes (shape, rate), as the paper's λ ~ Gamma(r, α).
            let lambda = gamma.inverse_cdf(rng.random::<f64>());
            let p = beta.inverse_cdf(rng.random::<f64>());
            let big_t = 39.0;
            let (mut t, mut x, mut t_x) = (0.0, 0.0, 0.0);
            loop {
                t += -rng.random::<f64>().ln() / lambda;
                if t > big_t {
                    break;
                }
                x += 1.0;
                t_x = t;
                if rng.random::<f64>() < p {
                    break;
                }
            }
            customers.push((Rfm { x, t_x, t: big_t }, 1.0));
        }
        let fit = BgNbd::fit(&customers).expect("fit");
        for (got, want) in [(fit.r, truth.r), (fit.alpha, truth.alpha), (fit.a, truth.a), (fit.b, truth.b)] {
            assert!((got / want - 1.0).abs() < 0.15, "{fit:?} vs {truth:?}");
        }
    }
}
