//! Maximum likelihood by argmin's Nelder-Mead, over the logs of the parameters (every parameter
//! of BG/NBD and Gamma-Gamma is positive; the log keeps the search unconstrained).

use argmin::core::{CostFunction, Executor, State};
use argmin::solver::neldermead::NelderMead;
use ndarray::Array1;

struct Cost<F>(F);

impl<F: Fn(&[f64]) -> f64> CostFunction for Cost<F> {
    type Param = Array1<f64>;
    type Output = f64;

    fn cost(&self, p: &Self::Param) -> Result<f64, argmin::core::Error> {
        let v = (self.0)(p.as_slice().unwrap_or(&[]));
        // A likelihood that overflows is a point to move away from, not an error.
        Ok(if v.is_finite() { v } else { f64::MAX })
    }
}

/// The positive parameters minimising `neg_ll` (a negative log-likelihood over them), from
/// `start`; `None` if the search fails or ends on a non-finite likelihood.
///
/// Nelder-Mead can stall on a flat ridge, so the search is restarted from its best point with a
/// fresh simplex until a restart no longer improves the likelihood by 1e-10 (at most 10 times):
/// the same safeguard scipy's users apply to lifetimes' fits.
pub(crate) fn maximise(neg_ll: impl Fn(&[f64]) -> f64, start: &[f64]) -> Option<Vec<f64>> {
    let in_logs = |theta: &[f64]| {
        let p: Vec<f64> = theta.iter().map(|t| t.exp()).collect();
        neg_ll(&p)
    };
    let mut best: Array1<f64> = start.iter().map(|v| v.ln()).collect();
    let mut best_cost = in_logs(best.as_slice()?);
    for _ in 0..10 {
        let mut simplex = vec![best.clone()];
        for i in 0..best.len() {
            let mut p = best.clone();
            p[i] += 0.5;
            simplex.push(p);
        }
        // Stops when the simplex's log-likelihoods agree to 1e-8 (over thousands of customers, about
        // 1e-12 of the total).
        let solver = NelderMead::new(simplex).with_sd_tolerance(1e-8).ok()?;
        let res = Executor::new(Cost(&in_logs), solver).configure(|s| s.max_iters(5_000)).run().ok()?;
        let state = res.state();
        let (Some(p), cost) = (state.get_best_param(), state.get_best_cost()) else { return None };
        let improved = best_cost - cost;
        best = p.clone();
        best_cost = cost;
        if improved.abs() < 1e-10 {
            break;
        }
    }
    best_cost.is_finite().then(|| best.iter().map(|t| t.exp()).collect())
}
