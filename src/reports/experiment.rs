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

mod analyse;

use std::collections::BTreeMap;

use self::analyse::analyse;

use serde::{Deserialize, Serialize};

use super::funnel::{Window, WindowUnit};
use super::{Checked, DateRange, Env, EventMatch, Filter, RanSql, Result, Rows, Sql, invalid, run};

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
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
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
    c.prepare(req.segment.as_ref(), env)?;
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
