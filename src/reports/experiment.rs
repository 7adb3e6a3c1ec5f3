//! Experiments: A/B(/n) tests read from `$exposure` events (`props.experiment`,
//! `props.variant`) and a goal.
//!
//! Definitions (what the marketer reads):
//! - **exposed people**: people with a `$exposure` of the experiment in the date range (and the
//!   filters); a person's variant is the one of their exposures. People exposed to more than one
//!   variant (a broken assignment, or a cleared first-party id) are left out of every figure and
//!   counted in `mixed_people`.
//! - **converted**: the goal event (default `purchase`, with optional filters) at or after the
//!   person's first exposure and within `window` of it (default 14 days; it may end after the
//!   range).
//! - **revenue**: `purchase` minus `refund` revenue in the same window; **revenue per exposed
//!   person** averages over every exposed person (zeros included); **average order value**:
//!   revenue of those `purchase` events ÷ their number.
//! - Statistics against the control (see [`crate::stats`]): two-proportion z-test (two-sided
//!   p-value, 95% interval of the difference; the relative interval is that interval ÷ the
//!   control rate), Welch's t-test for revenue per person and order value, Beta(1, 1)-prior
//!   probabilities to beat the control and to be the best, and a chi-square sample-ratio
//!   check against the intended split that warns below p = 0.001.
//! - **planner**: people per variant to detect a relative change of `mde` in the control's
//!   conversion rate with `power`, and how many more days that takes at the exposure rate so far.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::funnel::{Window, WindowUnit};
use super::{Checked, DateRange, Env, EventMatch, Filter, RanSql, Result, Rows, Sql, invalid, round2, run};
use crate::stats::{self, Moments};

/// Below this p-value the split is reported as broken.
pub const SRM_THRESHOLD: f64 = 0.001;

fn default_control() -> String {
    "control".into()
}
fn default_goal() -> EventMatch {
    EventMatch { event: "purchase".into(), filters: Vec::new() }
}
fn default_window() -> Window {
    Window { value: 14, unit: WindowUnit::Day }
}
fn default_mde() -> f64 {
    0.1
}
fn default_power() -> f64 {
    0.8
}
fn default_alpha() -> f64 {
    0.05
}

/// `POST /api/reports/experiment`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentRequest {
    pub site: String,
    pub date_range: DateRange,
    #[serde(default = "super::utc")]
    pub timezone: String,
    #[serde(default)]
    pub filters: Vec<Filter>,
    /// Only people in this segment: a definition or a template id (see segments).
    #[serde(default)]
    pub segment: Option<serde_json::Value>,
    /// `props.experiment` of the `$exposure` events.
    pub experiment: String,
    /// The variant the others are compared with (default `control`).
    #[serde(default = "default_control")]
    pub control: String,
    /// The conversion event (default `purchase`).
    #[serde(default = "default_goal")]
    pub goal: EventMatch,
    /// How long after the first exposure a conversion counts (default 14 days).
    #[serde(default = "default_window")]
    pub window: Window,
    /// Intended share of each variant (any positive weights); default: equal.
    #[serde(default)]
    pub split: BTreeMap<String, f64>,
    /// Smallest relative change worth detecting, for the planner (default 0.1 = 10%).
    #[serde(default = "default_mde")]
    pub mde: f64,
    /// Power for the planner (default 0.8).
    #[serde(default = "default_power")]
    pub power: f64,
    /// Significance level (default 0.05; intervals are 1 − alpha).
    #[serde(default = "default_alpha")]
    pub alpha: f64,
}

/// A comparison of one number with the control's.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Comparison {
    /// Variant − control.
    pub difference: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub p_value: f64,
    pub significant: bool,
}

/// One variant's figures.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct VariantResult {
    pub variant: String,
    pub is_control: bool,
    pub people: u64,
    pub converted: u64,
    /// Percent.
    pub conversion_rate: f64,
    /// Conversion rate against the control in percentage points (z-test); none for the control.
    pub lift_points: Option<Comparison>,
    /// Relative lift in percent, with its interval (the points interval ÷ the control rate).
    pub lift_relative: Option<Comparison>,
    /// Percent; none for the control.
    pub probability_to_beat_control: Option<f64>,
    /// Percent.
    pub probability_to_be_best: f64,
    pub revenue: f64,
    pub revenue_per_person: f64,
    /// Welch's t-test against the control.
    pub revenue_per_person_vs_control: Option<Comparison>,
    pub orders: u64,
    pub average_order_value: Option<f64>,
    pub average_order_value_vs_control: Option<Comparison>,
}

/// The sample-ratio check.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SampleRatio {
    pub chi_square: f64,
    pub p_value: f64,
    /// Intended share per variant, percent.
    pub expected_percent: BTreeMap<String, f64>,
    /// True when p < 0.001: the assignment or the tracking is broken; do not trust the results.
    pub mismatch: bool,
}

/// How much longer to run.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Planner {
    pub baseline_conversion_rate: f64,
    pub mde_relative: f64,
    pub power: f64,
    pub alpha: f64,
    /// People each variant needs; none when the baseline is 0 or 100%.
    pub people_per_variant: Option<u64>,
    /// People still missing in the smallest variant.
    pub people_to_go: Option<u64>,
    /// At the exposure rate so far.
    pub days_to_go: Option<f64>,
}

/// The report.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ExperimentResponse {
    pub experiment: String,
    pub control: String,
    pub goal: String,
    pub window_seconds: i64,
    pub variants: Vec<VariantResult>,
    /// People exposed to more than one variant, left out.
    pub mixed_people: u64,
    pub sample_ratio: Option<SampleRatio>,
    pub planner: Planner,
    /// The result in plain words.
    pub verdict: String,
    pub sql: Vec<RanSql>,
}

#[derive(Default, Clone)]
struct Agg {
    people: u64,
    converted: u64,
    revenue: f64,
    revenue_sq: f64,
    orders: u64,
    order_sum: f64,
    order_sq: f64,
}

impl ExperimentRequest {
    fn check(&self) -> Result<Checked> {
        let (c, _) = super::check_common(&self.site, self.date_range, &self.timezone, &self.filters, None)?;
        if self.experiment.is_empty() {
            return Err(invalid("experiment", "give the experiment's name (props.experiment of $exposure)"));
        }
        if !(1..=90 * 86_400).contains(&self.window.seconds()) {
            return Err(invalid("window", "from 1 minute to 90 days"));
        }
        if !(self.mde > 0.0 && self.mde < 10.0) {
            return Err(invalid("mde", "a relative change above 0, such as 0.1 for 10%"));
        }
        if !(self.power > 0.5 && self.power < 1.0) {
            return Err(invalid("power", "between 0.5 and 1, such as 0.8"));
        }
        if !(self.alpha > 0.0 && self.alpha < 0.5) {
            return Err(invalid("alpha", "between 0 and 0.5, such as 0.05"));
        }
        if let Some((k, _)) = self.split.iter().find(|(_, w)| !(w.is_finite() && **w > 0.0)) {
            return Err(invalid(format!("split.{k}"), "a positive weight"));
        }
        Ok(c)
    }

    fn sql(&self, c: &Checked) -> Result<(String, Sql)> {
        let mut q = Sql::default();
        let (start, end) = c.bounds(self.date_range);
        let window = self.window.seconds();
        let range = c.range_sql(&mut q, start, end);
        let filters = c.filters_sql(&mut q);
        let experiment = q.bind(&self.experiment);
        let outcome_range = c.range_sql(&mut q, start, end + chrono::Duration::seconds(window));
        let goal = self.goal.condition(&mut q, "goal")?;
        let sql = format!(
            "WITH x AS (
  SELECT person_id, min(ts) AS first_ts, min(props['variant']) AS variant, count(DISTINCT props['variant']) AS variants
  FROM person_events
  WHERE {range} AND name = '$exposure' AND props['experiment'] = {experiment}{filters}
  GROUP BY person_id
),
o AS (
  SELECT person_id, ts, name, revenue, {goal} AS goal
  FROM person_events
  WHERE {outcome_range} AND ({goal} OR name IN ('purchase', 'refund'))
),
p AS (
  SELECT x.person_id, x.variant, x.variants,
    coalesce(bool_or(o.goal), false) AS converted,
    coalesce(sum(CASE WHEN o.name = 'purchase' THEN o.revenue WHEN o.name = 'refund' THEN -o.revenue END), 0) AS revenue,
    count(o.revenue) FILTER (WHERE o.name = 'purchase') AS orders,
    coalesce(sum(o.revenue) FILTER (WHERE o.name = 'purchase'), 0) AS order_sum,
    coalesce(sum(o.revenue * o.revenue) FILTER (WHERE o.name = 'purchase'), 0) AS order_sq
  FROM x LEFT JOIN o ON o.person_id = x.person_id AND o.ts >= x.first_ts
    AND o.ts <= x.first_ts + INTERVAL '{window} seconds'
  GROUP BY x.person_id, x.variant, x.variants
)
SELECT CASE WHEN variants = 1 THEN variant END AS variant, count(*) AS people,
  count(*) FILTER (WHERE converted) AS converted,
  CAST(sum(revenue) AS DOUBLE) AS revenue, CAST(sum(revenue * revenue) AS DOUBLE) AS revenue_sq,
  sum(orders) AS orders, CAST(sum(order_sum) AS DOUBLE) AS order_sum, CAST(sum(order_sq) AS DOUBLE) AS order_sq
FROM p
GROUP BY CASE WHEN variants = 1 THEN variant END
ORDER BY variant"
        );
        Ok((sql, q))
    }
}

/// Run an experiment report.
pub async fn experiment(env: &Env, req: &ExperimentRequest) -> Result<ExperimentResponse> {
    let mut c = req.check()?;
    c.set_segment(req.segment.as_ref(), env)?;
    let ctx = env.session(&c.site).await?;
    let (sql, q) = req.sql(&c)?;
    let batches = run(&ctx, &sql, &q, &env.limits).await?;
    let mut by_variant: BTreeMap<String, Agg> = BTreeMap::new();
    let mut mixed = 0;
    Rows::new(&batches).each(|r| {
        let agg = Agg {
            people: r.u64("people"),
            converted: r.u64("converted"),
            revenue: r.f64("revenue").unwrap_or(0.0),
            revenue_sq: r.f64("revenue_sq").unwrap_or(0.0),
            orders: r.u64("orders"),
            order_sum: r.f64("order_sum").unwrap_or(0.0),
            order_sq: r.f64("order_sq").unwrap_or(0.0),
        };
        match r.text("variant") {
            Some(v) => {
                by_variant.insert(v, agg);
            }
            None => mixed = agg.people,
        }
    });
    // Variants named in the split exist even with nobody in them.
    for k in req.split.keys() {
        by_variant.entry(k.clone()).or_default();
    }
    let (start, end) = c.bounds(req.date_range);
    let elapsed_days = ((env.now().min(end) - start).num_seconds() as f64 / 86_400.0).max(0.0);
    let mut out = analyse(req, &by_variant, elapsed_days);
    out.mixed_people = mixed;
    out.sql = vec![RanSql { sql, params: q.params }];
    Ok(out)
}

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
fn analyse(req: &ExperimentRequest, by_variant: &BTreeMap<String, Agg>, elapsed_days: f64) -> ExperimentResponse {
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
