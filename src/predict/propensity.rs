//! Purchase propensity: the probability that a person buys in the next few days, by logistic
//! regression (linfa-logistic) over features of their history, trained on one snapshot and
//! judged on a later one (an out-of-time holdout: the holdout's outcomes happen after every
//! training outcome, as the predictions will).

use linfa::prelude::*;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

/// One person at a snapshot: features, and whether they bought in the window after it.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub person_id: String,
    pub x: Vec<f64>,
    pub bought: bool,
}

/// The trained model: per feature its training mean and standard deviation (features are
/// standardised, so coefficients compare), coefficient, and the intercept.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Fitted {
    pub features: Vec<String>,
    pub mean: Vec<f64>,
    pub sd: Vec<f64>,
    pub coefficients: Vec<f64>,
    pub intercept: f64,
}

/// L2 penalty (linfa's `alpha`) on the standardised coefficients: small next to thousands of
/// people, it only keeps a feature that never varies in training from running off.
const L2: f64 = 1.0;

impl Fitted {
    /// Train on `samples` (feature names in `features`' order). `None` when the samples hold
    /// only buyers or only non-buyers, or linfa fails.
    pub fn train(features: &[&str], samples: &[Sample]) -> Option<Self> {
        let n = samples.len();
        let k = features.len();
        if samples.iter().all(|s| s.bought) || !samples.iter().any(|s| s.bought) {
            return None;
        }
        let mut mean = vec![0.0; k];
        let mut sd = vec![0.0; k];
        for s in samples {
            for (m, v) in mean.iter_mut().zip(&s.x) {
                *m += v / n as f64;
            }
        }
        for s in samples {
            for ((d, v), m) in sd.iter_mut().zip(&s.x).zip(&mean) {
                *d += (v - m).powi(2) / n as f64;
            }
        }
        let sd: Vec<f64> = sd.into_iter().map(|v| if v > 0.0 { v.sqrt() } else { 1.0 }).collect();
        let mut x = Array2::zeros((n, k));
        let mut y = Array1::from_elem(n, false);
        for (row, s) in samples.iter().enumerate() {
            for j in 0..k {
                x[[row, j]] = (s.x[j] - mean[j]) / sd[j];
            }
            y[row] = s.bought;
        }
        let fit = LogisticRegression::default().alpha(L2).max_iterations(200).fit(&Dataset::new(x, y)).ok()?;
        // linfa's coefficients give the probability of its "positive" class, the more frequent
        // label; when that is "did not buy", P(buy) = σ(−z): every sign flips.
        let sign = if fit.labels().pos.class { 1.0 } else { -1.0 };
        Some(Self {
            features: features.iter().map(|f| (*f).to_owned()).collect(),
            mean,
            sd,
            coefficients: fit.params().iter().map(|b| sign * b).collect(),
            intercept: sign * fit.intercept(),
        })
    }

    fn standardised<'a>(&'a self, x: &'a [f64]) -> impl Iterator<Item = f64> + 'a {
        x.iter().zip(&self.mean).zip(&self.sd).map(|((v, m), s)| (v - m) / s)
    }

    /// P(buys in the window) = 1 / (1 + e^−(β₀ + Σ βⱼ zⱼ)), zⱼ the standardised features.
    pub fn probability(&self, x: &[f64]) -> f64 {
        let logit = self.intercept + self.standardised(x).zip(&self.coefficients).map(|(z, b)| z * b).sum::<f64>();
        1.0 / (1.0 + (-logit).exp())
    }

    /// Each feature's part of the logit against a person at the training mean, βⱼ zⱼ, largest
    /// magnitude first: why this person scores above or below the average.
    pub fn contributions(&self, x: &[f64]) -> Vec<(String, f64)> {
        let mut c: Vec<(String, f64)> = self
            .standardised(x)
            .zip(&self.coefficients)
            .zip(&self.features)
            .map(|((z, b), f)| (f.clone(), z * b))
            .collect();
        c.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
        c
    }
}

/// Area under the ROC curve: the probability that a random buyer scores above a random
/// non-buyer (ties count half), by the Mann-Whitney rank sum. `None` without both kinds.
pub fn auc(scores: &[(f64, bool)]) -> Option<f64> {
    let mut s: Vec<(f64, bool)> = scores.to_vec();
    s.sort_by(|a, b| a.0.total_cmp(&b.0));
    let pos = s.iter().filter(|v| v.1).count() as f64;
    let neg = s.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return None;
    }
    // Ranks from 1, ties given their mean rank.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < s.len() {
        let mut j = i;
        while j < s.len() && s[j].0 == s[i].0 {
            j += 1;
        }
        let mean_rank = (i + 1 + j) as f64 / 2.0;
        rank_sum += mean_rank * s[i..j].iter().filter(|v| v.1).count() as f64;
        i = j;
    }
    Some((rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg))
}

/// One band of predicted probability and what happened in it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CalibrationBin {
    /// The band, [from, to).
    pub from: f64,
    pub to: f64,
    pub people: u64,
    pub mean_predicted: f64,
    /// Share of the band's people who bought.
    pub observed: f64,
}

/// Calibration in ten equal bands of predicted probability (empty bands left out).
pub fn calibration(scores: &[(f64, bool)]) -> Vec<CalibrationBin> {
    let mut bins = vec![(0u64, 0.0, 0u64); 10];
    for (p, bought) in scores {
        let b = ((p * 10.0) as usize).min(9);
        bins[b].0 += 1;
        bins[b].1 += p;
        bins[b].2 += u64::from(*bought);
    }
    bins.into_iter()
        .enumerate()
        .filter(|(_, b)| b.0 > 0)
        .map(|(i, (n, sum, bought))| CalibrationBin {
            from: i as f64 / 10.0,
            to: (i + 1) as f64 / 10.0,
            people: n,
            mean_predicted: sum / n as f64,
            observed: bought as f64 / n as f64,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_by_hand() {
        // Buyers at 0.9 and 0.4, non-buyers at 0.5 and 0.1: of the 4 pairs, 3 are ordered right.
        assert_eq!(auc(&[(0.9, true), (0.4, true), (0.5, false), (0.1, false)]), Some(0.75));
        // A tie counts half.
        assert_eq!(auc(&[(0.5, true), (0.5, false)]), Some(0.5));
        assert_eq!(auc(&[(0.5, true)]), None);
    }

    #[test]
    fn calibration_bands() {
        let b = calibration(&[(0.05, false), (0.08, true), (0.95, true), (1.0, true)]);
        assert_eq!(b.len(), 2);
        assert_eq!((b[0].people, b[0].observed), (2, 0.5));
        assert!((b[0].mean_predicted - 0.065).abs() < 1e-12);
        assert_eq!((b[1].from, b[1].people, b[1].observed), (0.9, 2, 1.0));
    }

    #[test]
    fn learns_a_planted_effect_whether_buyers_are_few_or_many() {
        // Buyers are those with many recent sessions; the model must rank them first and its
        // probabilities must be P(buy), not P(not buy), whether buyers are the smaller class
        // (centre 6 of 0..9 sessions) or the larger (centre 3).
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for centre in [6.0, 3.0] {
            let samples: Vec<Sample> = (0..4000)
                .map(|i| {
                    let sessions = f64::from(rng.random_range(0..10u8));
                    let noise = rng.random::<f64>();
                    let p = 1.0 / (1.0 + (-(sessions - centre)).exp());
                    Sample { person_id: i.to_string(), x: vec![sessions, noise], bought: rng.random::<f64>() < p }
                })
                .collect();
            let buyers = samples.iter().filter(|s| s.bought).count();
            assert_eq!(buyers < 2000, centre > 4.5, "{buyers} buyers");
            let m = Fitted::train(&["sessions", "noise"], &samples).expect("fit");
            assert!(m.probability(&[9.0, 0.5]) > 0.8 && m.probability(&[0.0, 0.5]) < 0.2, "{m:?}");
            assert_eq!(m.contributions(&[9.0, 0.5])[0].0, "sessions");
            let scores: Vec<(f64, bool)> = samples.iter().map(|s| (m.probability(&s.x), s.bought)).collect();
            assert!(auc(&scores).expect("auc") > 0.85);
        }
    }
}
