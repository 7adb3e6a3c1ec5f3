//! The statistics of an experiment: per-variant figures against the control, the sample-ratio
//! check, the planner and the verdict in plain words (formulas in [`crate::stats`]).

use std::collections::BTreeMap;

use super::{
    Agg, Comparison, ExperimentRequest, ExperimentResponse, Planner, SRM_THRESHOLD, SampleRatio, VariantResult,
};
use crate::reports::round2;
use crate::stats::{self, Moments};

fn comparison(difference: f64, ci: (f64, f64), p_value: f64, alpha: f64, scale: f64) -> Comparison {
    Comparison {
        difference: round2(difference * scale),
        ci_low: round2(ci.0 * scale),
        ci_high: round2(ci.1 * scale),
        p_value: (p_value * 1e6).round() / 1e6,
        significant: p_value < alpha,
    }
}

/// The statistics and the verdict from each variant's sums (`elapsed_days`: how long the
/// experiment has been collecting, for the planner).
pub(super) fn analyse(
    req: &ExperimentRequest,
    by_variant: &BTreeMap<String, Agg>,
    elapsed_days: f64,
) -> ExperimentResponse {
    let alpha = req.alpha;
    let control = by_variant.get(&req.control).cloned().unwrap_or_default();
    let names: Vec<&String> = by_variant.keys().collect();
    let best = stats::prob_best(&by_variant.values().map(|a| (a.converted, a.people)).collect::<Vec<_>>());
    let rate = |a: &Agg| if a.people > 0 { a.converted as f64 / a.people as f64 } else { 0.0 };
    let per_person = |a: &Agg| Moments::from_sums(a.people as f64, a.revenue, a.revenue_sq);
    let per_order = |a: &Agg| Moments::from_sums(a.orders as f64, a.order_sum, a.order_sq);
    let p_control = rate(&control);
    let variants: Vec<VariantResult> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let a = &by_variant[*name];
            let is_control = **name == req.control;
            let z = (!is_control)
                .then(|| stats::two_proportion(control.converted, control.people, a.converted, a.people, alpha))
                .flatten();
            let beat = (!is_control && control.people > 0)
                .then(|| stats::prob_best(&[(control.converted, control.people), (a.converted, a.people)])[1]);
            let welch_rev = (!is_control).then(|| stats::welch(per_person(&control), per_person(a), alpha)).flatten();
            let welch_aov = (!is_control).then(|| stats::welch(per_order(&control), per_order(a), alpha)).flatten();
            VariantResult {
                variant: (*name).clone(),
                is_control,
                people: a.people,
                converted: a.converted,
                conversion_rate: round2(rate(a) * 100.0),
                lift_points: z.map(|t| comparison(t.diff, t.ci, t.p_value, alpha, 100.0)),
                lift_relative: z.filter(|_| p_control > 0.0).map(|t| {
                    comparison(t.diff / p_control, (t.ci.0 / p_control, t.ci.1 / p_control), t.p_value, alpha, 100.0)
                }),
                probability_to_beat_control: beat.map(|p| round2(p * 100.0)),
                probability_to_be_best: round2(best.get(i).copied().unwrap_or(f64::NAN) * 100.0),
                revenue: round2(a.revenue),
                revenue_per_person: round2(per_person(a).mean),
                revenue_per_person_vs_control: welch_rev.map(|w| comparison(w.diff, w.ci, w.p_value, alpha, 1.0)),
                orders: a.orders,
                average_order_value: (a.orders > 0).then(|| round2(a.order_sum / a.orders as f64)),
                average_order_value_vs_control: welch_aov.map(|w| comparison(w.diff, w.ci, w.p_value, alpha, 1.0)),
            }
        })
        .collect();

    // Sample ratio against the intended split (equal when none is given).
    let weights: Vec<f64> = names.iter().map(|n| req.split.get(*n).copied().unwrap_or(1.0)).collect();
    let wsum: f64 = weights.iter().sum();
    let observed: Vec<u64> = by_variant.values().map(|a| a.people).collect();
    let sample_ratio = stats::chi_square_fit(&observed, &weights).map(|(chi2, p)| SampleRatio {
        chi_square: round2(chi2),
        p_value: p,
        expected_percent: names.iter().zip(&weights).map(|(n, w)| ((*n).clone(), round2(w / wsum * 100.0))).collect(),
        mismatch: p < SRM_THRESHOLD,
    });

    let needed = stats::sample_size(p_control, (p_control * (1.0 + req.mde)).min(1.0), alpha, req.power);
    let smallest = observed.iter().copied().min().unwrap_or(0);
    let to_go = needed.map(|n| n.saturating_sub(smallest));
    let total: u64 = observed.iter().sum();
    let per_variant_per_day = if elapsed_days > 0.0 && !observed.is_empty() {
        total as f64 / observed.len() as f64 / elapsed_days
    } else {
        0.0
    };
    let days_to_go = to_go.and_then(|n| (per_variant_per_day > 0.0).then(|| round2(n as f64 / per_variant_per_day)));
    let planner = Planner {
        baseline_conversion_rate: round2(p_control * 100.0),
        mde_relative: req.mde,
        power: req.power,
        alpha,
        people_per_variant: needed,
        people_to_go: to_go,
        days_to_go,
    };
    let verdict = verdict(req, &variants, sample_ratio.as_ref(), &planner);
    ExperimentResponse {
        experiment: req.experiment.clone(),
        control: req.control.clone(),
        goal: req.goal.event.clone(),
        window_seconds: req.window.seconds(),
        variants,
        mixed_people: 0,
        sample_ratio,
        planner,
        verdict,
        sql: Vec::new(),
    }
}

/// A probability in percent as words: never rounded up to a certainty.
fn chance(p: f64) -> String {
    if p >= 99.95 {
        "more than 99.9%".to_owned()
    } else if p >= 99.0 {
        format!("{p:.1}%")
    } else {
        format!("{:.0}%", p.min(99.0))
    }
}

fn verdict(
    req: &ExperimentRequest,
    variants: &[VariantResult],
    srm: Option<&SampleRatio>,
    planner: &Planner,
) -> String {
    let Some(control) = variants.iter().find(|v| v.is_control) else {
        return format!("No exposures of the control variant {:?} yet.", req.control);
    };
    if control.people == 0 {
        return format!("No exposures of the control variant {:?} yet.", req.control);
    }
    if let Some(s) = srm.filter(|s| s.mismatch) {
        let shares: Vec<String> = variants
            .iter()
            .map(|v| {
                let total: u64 = variants.iter().map(|v| v.people).sum();
                format!(
                    "{} {:.1}% (intended {:.1}%)",
                    v.variant,
                    v.people as f64 / total.max(1) as f64 * 100.0,
                    s.expected_percent.get(&v.variant).copied().unwrap_or(0.0)
                )
            })
            .collect();
        return format!(
            "Do not trust these results: the split is off ({}; p = {:.1e}). Check how visitors are assigned and tracked.",
            shares.join(", "),
            s.p_value
        );
    }
    let keep_running = match (planner.days_to_go, planner.people_to_go) {
        (Some(d), Some(n)) if n > 0 => {
            format!(
                "keep running: about {} more days ({n} more people per variant) for {:.0}% power",
                d.ceil(),
                planner.power * 100.0
            )
        }
        (None, Some(n)) if n > 0 => {
            format!("keep running: {n} more people per variant for {:.0}% power", planner.power * 100.0)
        }
        _ => "it has reached the planned size".to_owned(),
    };
    let others: Vec<&VariantResult> = variants.iter().filter(|v| !v.is_control).collect();
    let Some(best) = others
        .iter()
        .max_by(|a, b| a.conversion_rate.partial_cmp(&b.conversion_rate).unwrap_or(std::cmp::Ordering::Equal))
    else {
        return "Only the control has exposures so far.".to_owned();
    };
    let rel = best.lift_relative.as_ref().map_or(0.0, |l| l.difference);
    let prob = best.probability_to_beat_control.unwrap_or(50.0);
    let significant = best.lift_points.as_ref().is_some_and(|l| l.significant);
    if significant && rel > 0.0 {
        format!(
            "{} wins: {:+.1}% conversion, {} probability it is better than {}.",
            best.variant,
            rel,
            chance(prob),
            control.variant
        )
    } else if significant {
        let worst = others
            .iter()
            .min_by(|a, b| a.conversion_rate.partial_cmp(&b.conversion_rate).unwrap_or(std::cmp::Ordering::Equal))
            .unwrap_or(best);
        let rel = worst.lift_relative.as_ref().map_or(0.0, |l| l.difference);
        format!(
            "{} loses: {:+.1}% conversion against {}; keep {}.",
            worst.variant, rel, control.variant, control.variant
        )
    } else {
        format!(
            "No clear winner yet: {} is at {:+.1}% conversion ({} probability it is better than {}); {keep_running}.",
            best.variant,
            rel,
            chance(prob),
            control.variant
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(split: &[(&str, f64)]) -> ExperimentRequest {
        serde_json::from_value(serde_json::json!({
            "site": "shop", "date_range": {"from": "2026-01-01", "to": "2026-01-14"}, "experiment": "e",
            "split": split.iter().map(|(k, w)| ((*k).to_owned(), *w)).collect::<BTreeMap<String, f64>>(),
        }))
        .expect("request")
    }

    fn agg(people: u64, converted: u64) -> Agg {
        Agg { people, converted, ..Agg::default() }
    }

    #[test]
    fn a_clear_winner_is_called_in_plain_words() {
        let by: BTreeMap<String, Agg> =
            [("control".to_owned(), agg(10_000, 1_000)), ("green".to_owned(), agg(10_000, 1_150))].into();
        let r = analyse(&req(&[]), &by, 14.0);
        // 10.0% → 11.5%: +1.5 points, +15% relative; z = 0.015 / sqrt(0.1075 · 0.8925 · 2 / 10,000) = 3.42.
        let green = &r.variants[1];
        assert_eq!(green.lift_relative.as_ref().map(|l| l.difference), Some(15.0));
        assert!(green.lift_points.as_ref().is_some_and(|l| l.significant && l.p_value < 0.001));
        assert!(r.verdict.starts_with("green wins: +15.0% conversion, more than 99.9% probability"), "{}", r.verdict);
        assert!(!r.sample_ratio.as_ref().is_some_and(|s| s.mismatch));
    }

    #[test]
    fn no_winner_says_how_long_to_keep_running() {
        let by: BTreeMap<String, Agg> =
            [("control".to_owned(), agg(2_000, 200)), ("green".to_owned(), agg(2_000, 210))].into();
        let r = analyse(&req(&[]), &by, 8.0);
        // Planner: 10% → 11% at 80% power needs 14,751 per variant (stats tests); 12,751 to go at
        // 250 people per variant per day = 51.004 days.
        assert_eq!(r.planner.people_per_variant, Some(14_751));
        assert_eq!(r.planner.days_to_go, Some(51.0));
        assert!(r.verdict.starts_with("No clear winner yet: green is at +5.0% conversion"), "{}", r.verdict);
        assert!(
            r.verdict.ends_with("keep running: about 51 more days (12751 more people per variant) for 80% power."),
            "{}",
            r.verdict
        );
    }

    #[test]
    fn a_broken_split_is_flagged_before_anything_else() {
        let by: BTreeMap<String, Agg> =
            [("control".to_owned(), agg(4_500, 450)), ("green".to_owned(), agg(5_500, 700))].into();
        let r = analyse(&req(&[]), &by, 10.0);
        assert!(r.sample_ratio.as_ref().is_some_and(|s| s.mismatch));
        assert!(r.verdict.starts_with("Do not trust these results: the split is off (control 45.0% (intended 50.0%), green 55.0% (intended 50.0%)"), "{}", r.verdict);
        // The same counts were the intended 45/55 split: fine.
        let r = analyse(&req(&[("control", 45.0), ("green", 55.0)]), &by, 10.0);
        assert!(!r.sample_ratio.as_ref().is_some_and(|s| s.mismatch));
    }
}
