//! Funnels: how many people went through 2–20 steps within a conversion window.
//!
//! The SQL selects each person's candidate events (the ones matching a step or an exclusion,
//! or every event for `strict` funnels) with a bit mask of the steps they match, sorted by
//! person and time; [`evaluate`] walks one person's events. The semantics:
//!
//! - **Entry**: an event matching step 1 whose time is inside the date range. Later steps may
//!   happen after the range ends, up to the window. Every entry is tried; the person's funnel
//!   is the chain that gets furthest (the earliest such entry on ties).
//! - **Window**: step k counts if it happens at most `window` after the entry (inclusive).
//! - **`ordered`** (default): steps in order; other events in between are fine. An event at
//!   the same time as the previous step may advance the chain. **`strict`**: no other event (of
//!   the person, after global filters) may come between two steps. **`any`**: steps in any
//!   order; a person's level is how many distinct steps they did within the window of the first
//!   one they did.
//! - **Optional steps** (not the first or last; not with `any`): people may skip them. An
//!   optional step's count is the people who did it; the next step converts from the nearest
//!   earlier required step.
//! - **Exclusions**: a chain with an exclusion event after its step `from_step` and before its
//!   step `to_step` does not count; a person whose every chain is excluded is left out
//!   (reported as `excluded_people`).
//! - **Per step**: count, conversion from step 1 and from the previous (required) step,
//!   drop-off, mean and median time from the previous completed step, and the ids of people who
//!   dropped there (at most `people_limit`, sorted).
//! - **Breakdown**: the value of the dimension on the entry event.

use std::collections::HashMap;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Int64Type};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

mod evaluate;

pub use self::evaluate::{Config, Ev, Outcome, evaluate};
use super::{Checked, DateRange, Dimension, Env, EventMatch, Filter, RanSql, Result, Sql, invalid, percent, round2};

/// Most steps in a funnel.
pub const MAX_STEPS: usize = 20;
/// Shortest conversion window, in seconds.
pub const MIN_WINDOW_SECS: i64 = 60;
/// Longest conversion window with a length, in seconds (365 days).
pub const MAX_WINDOW_SECS: i64 = 365 * 86_400;
/// What an `unlimited` window stands for: 100 years, in seconds.
pub const UNLIMITED_WINDOW_SECS: i64 = 100 * 365 * 86_400;
/// Most people ids listed per step.
pub const MAX_PEOPLE_LIMIT: usize = 10_000;

/// Step order.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    #[default]
    Ordered,
    Strict,
    Any,
}

/// What goes through the funnel.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// People (across sessions and, once identified, devices).
    #[default]
    Person,
    /// Sessions: every step in the same session.
    Session,
}

impl Unit {
    fn column(self) -> &'static str {
        match self {
            Self::Person => "person_id",
            Self::Session => "session_id",
        }
    }
}

/// Units of the conversion window.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WindowUnit {
    Minute,
    Hour,
    Day,
    Week,
    /// No limit: any later step counts (`value` is ignored).
    Unlimited,
}

/// The conversion window, measured from the entry.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Window {
    #[serde(default = "one")]
    pub value: i64,
    pub unit: WindowUnit,
}

fn one() -> i64 {
    1
}

impl Window {
    /// Seconds ([`UNLIMITED_WINDOW_SECS`] when unlimited).
    pub fn seconds(&self) -> i64 {
        let unit = match self.unit {
            WindowUnit::Minute => 60,
            WindowUnit::Hour => 3600,
            WindowUnit::Day => 86_400,
            WindowUnit::Week => 7 * 86_400,
            WindowUnit::Unlimited => return UNLIMITED_WINDOW_SECS,
        };
        self.value.saturating_mul(unit)
    }
}

fn default_window() -> Window {
    Window { value: 1, unit: WindowUnit::Day }
}

/// One step: an event (with filters), or any of several.
#[derive(Clone, Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    #[serde(default)]
    pub event: Option<String>,
    #[serde(default)]
    pub filters: Vec<Filter>,
    /// Instead of `event`: the step is done by any of these.
    #[serde(default)]
    pub any_of: Vec<EventMatch>,
    #[serde(default)]
    pub optional: bool,
    /// Shown name (default: the event names).
    #[serde(default)]
    pub label: Option<String>,
}

/// An event that disqualifies a chain between two of its steps.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Exclusion {
    pub event: String,
    #[serde(default)]
    pub filters: Vec<Filter>,
    /// 1-based; default 1.
    #[serde(default)]
    pub from_step: Option<usize>,
    /// 1-based; default the last step.
    #[serde(default)]
    pub to_step: Option<usize>,
}

fn default_limit() -> usize {
    10
}

fn default_people_limit() -> usize {
    100
}

/// `POST /api/reports/funnel`.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FunnelRequest {
    pub site: String,
    /// Bounds the entry (step 1); later steps may finish after it, within the window.
    pub date_range: DateRange,
    #[serde(default = "super::utc")]
    pub timezone: String,
    /// Apply to every event the funnel reads.
    #[serde(default)]
    pub filters: Vec<Filter>,
    /// Only people in this segment: a definition or a template id (see segments).
    #[serde(default)]
    pub segment: Option<serde_json::Value>,
    /// 2 to 4 segments to report side by side (`by_segment`), each as `segment` would.
    #[serde(default)]
    pub compare_segments: Vec<serde_json::Value>,
    pub steps: Vec<Step>,
    #[serde(default = "default_window")]
    pub window: Window,
    #[serde(default)]
    pub order: Order,
    /// People (default) or sessions.
    #[serde(default)]
    pub unit: Unit,
    #[serde(default)]
    pub exclusions: Vec<Exclusion>,
    /// A dimension, read on the entry event.
    #[serde(default)]
    pub breakdown: Option<String>,
    #[serde(default = "default_limit")]
    pub breakdown_limit: usize,
    /// Most ids of dropped people listed per step (default 100, at most 10,000).
    #[serde(default = "default_people_limit")]
    pub people_limit: usize,
}

/// One step's numbers.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct StepResult {
    /// 1-based.
    pub step: usize,
    pub label: String,
    pub optional: bool,
    pub count: u64,
    /// Percent of step 1.
    pub conversion_from_first: f64,
    /// Percent of the previous required step.
    pub conversion_from_previous: f64,
    /// People at the previous required step who did not get here.
    pub dropped: u64,
    pub avg_time_to_convert_seconds: Option<f64>,
    pub median_time_to_convert_seconds: Option<f64>,
    /// Ids of people who dropped here, sorted, at most `people_limit`.
    pub dropped_people: Vec<String>,
    pub dropped_people_truncated: bool,
}

/// The funnel of one breakdown value.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct BreakdownResult {
    pub value: Option<String>,
    pub steps: Vec<StepResult>,
}

/// The funnel response.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FunnelResponse {
    pub order: Order,
    /// What the counts and the dropped ids are: people or sessions.
    pub unit: Unit,
    /// The conversion window; `null` when unlimited.
    pub window_seconds: Option<i64>,
    pub steps: Vec<StepResult>,
    pub breakdown: Option<String>,
    /// Per breakdown value, by entries (most first), at most `breakdown_limit`.
    pub breakdowns: Vec<BreakdownResult>,
    /// People who entered but whose every chain hit an exclusion.
    pub excluded_people: u64,
    pub sql: Vec<RanSql>,
    /// One funnel per segment of `compare_segments`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub by_segment: Vec<super::BySegment<FunnelResponse>>,
}

struct Plan {
    c: Checked,
    cfg: Config,
    labels: Vec<String>,
    breakdown: Option<Dimension>,
}

impl FunnelRequest {
    fn check(&self) -> Result<Plan> {
        let (c, breakdown) =
            super::check_common(&self.site, self.date_range, &self.timezone, &self.filters, self.breakdown.as_deref())?;
        if breakdown.as_ref().is_some_and(Dimension::session_level) {
            return Err(invalid(
                "breakdown",
                "entry_page is a trends breakdown (and a filter everywhere); a funnel breaks down by an event's dimension",
            ));
        }
        let n = self.steps.len();
        if !(2..=MAX_STEPS).contains(&n) {
            return Err(invalid("steps", format!("a funnel has 2 to {MAX_STEPS} steps, got {n}")));
        }
        let secs = self.window.seconds();
        if self.window.unit != WindowUnit::Unlimited && !(MIN_WINDOW_SECS..=MAX_WINDOW_SECS).contains(&secs) {
            return Err(invalid(
                "window",
                "the conversion window is between 1 minute and 365 days, or {\"unit\": \"unlimited\"}",
            ));
        }
        let mut labels = Vec::with_capacity(n);
        for (i, s) in self.steps.iter().enumerate() {
            match (&s.event, s.any_of.is_empty()) {
                (Some(_), true) | (None, false) => {}
                _ => return Err(invalid(format!("steps[{i}]"), "give either `event` or `any_of`")),
            }
            if s.optional && (i == 0 || i == n - 1) {
                return Err(invalid(format!("steps[{i}].optional"), "the first and last steps cannot be optional"));
            }
            if s.optional && self.order == Order::Any {
                return Err(invalid(format!("steps[{i}].optional"), "optional steps need an ordered or strict funnel"));
            }
            let names: Vec<&str> = match &s.event {
                Some(e) => vec![super::request::event_label(e)],
                None => s.any_of.iter().map(|m| super::request::event_label(&m.event)).collect(),
            };
            labels.push(s.label.clone().unwrap_or_else(|| names.join(" or ")));
        }
        let mut exclusions = Vec::with_capacity(self.exclusions.len());
        for (i, x) in self.exclusions.iter().enumerate() {
            let (from, to) = (x.from_step.unwrap_or(1), x.to_step.unwrap_or(n));
            if from < 1 || to > n || from >= to {
                return Err(invalid(
                    format!("exclusions[{i}]"),
                    format!("from_step and to_step are steps 1..={n} with from_step < to_step"),
                ));
            }
            exclusions.push((from - 1, to - 1));
        }
        if exclusions.len() > 32 {
            return Err(invalid("exclusions", "at most 32"));
        }
        if !(1..=super::trends::MAX_BREAKDOWN_LIMIT).contains(&self.breakdown_limit) {
            return Err(invalid("breakdown_limit", "between 1 and 1000"));
        }
        if self.people_limit > MAX_PEOPLE_LIMIT {
            return Err(invalid("people_limit", format!("at most {MAX_PEOPLE_LIMIT}")));
        }
        let (start, end) = c.bounds(self.date_range);
        let cfg = Config {
            order: self.order,
            optional: self.steps.iter().map(|s| s.optional).collect(),
            window: secs * 1_000_000,
            entry: (start.timestamp_micros(), end.timestamp_micros()),
            exclusions,
        };
        Ok(Plan { c, cfg, labels, breakdown })
    }

    /// The rows of pass `pass` of `passes`: the people whose id falls in that bucket.
    fn sql(&self, p: &Plan, pass: usize, passes: usize) -> Result<(String, Sql)> {
        let mut q = Sql::default();
        let mut conds = Vec::new();
        let mut steps = Vec::new();
        for (i, s) in self.steps.iter().enumerate() {
            let cond = match &s.event {
                Some(e) => EventMatch { event: e.clone(), filters: s.filters.clone() }
                    .condition(&mut q, &format!("steps[{i}]"))?,
                None => {
                    let mut any = Vec::new();
                    for (k, m) in s.any_of.iter().enumerate() {
                        any.push(m.condition(&mut q, &format!("steps[{i}].any_of[{k}]"))?);
                    }
                    format!("({})", any.join(" OR "))
                }
            };
            steps.push(format!("CASE WHEN {cond} THEN {} ELSE 0 END", 1u32 << i));
            conds.push(cond);
        }
        let mut excl = Vec::new();
        for (i, x) in self.exclusions.iter().enumerate() {
            let cond = EventMatch { event: x.event.clone(), filters: x.filters.clone() }
                .condition(&mut q, &format!("exclusions[{i}]"))?;
            excl.push(format!("CASE WHEN {cond} THEN {} ELSE 0 END", 1u32 << i));
            conds.push(cond);
        }
        if excl.is_empty() {
            excl.push("0".into());
        }
        let bd = p.breakdown.as_ref().map_or_else(|| "CAST(NULL AS VARCHAR)".to_owned(), |d| d.sql(&mut q, ""));
        let (start, end) = p.c.bounds(self.date_range);
        let end = end + chrono::Duration::seconds(self.window.seconds());
        let range = p.c.range_sql(&mut q, start, end);
        let filters = p.c.filters_sql(&mut q);
        let mut relevant =
            if self.order == Order::Strict { String::new() } else { format!("\n  AND ({})", conds.join("\n    OR ")) };
        let key = self.unit.column();
        relevant.push_str(&super::sql::in_pass(key, pass, passes));
        // The evaluation below calls its unit `person_id`, whichever it is.
        let sql = format!(
            "SELECT {key} AS person_id, CAST(ts AS BIGINT) AS t,
  {} AS steps,
  {} AS exclusions,
  {bd} AS breakdown
FROM person_events
WHERE {range}{filters}{relevant}
ORDER BY person_id, t, steps",
            steps.join("\n    + "),
            excl.join(" + ")
        );
        Ok((sql, q))
    }
}

/// Running totals of one breakdown value.
#[derive(Default)]
struct Tally {
    counts: Vec<u64>,
    times: Vec<Vec<f64>>,
    dropped: Vec<Vec<String>>,
    entered: u64,
}

impl Tally {
    fn new(n: usize) -> Self {
        Self { counts: vec![0; n], times: vec![Vec::new(); n], dropped: vec![Vec::new(); n], entered: 0 }
    }

    fn add(&mut self, person: &str, times: &[Option<i64>], optional: &[bool], any: bool) {
        self.entered += 1;
        let mut last_done = None;
        for (j, t) in times.iter().enumerate() {
            if let Some(t) = t {
                self.counts[j] += 1;
                if let Some(prev) = last_done {
                    self.times[j].push((t - prev) as f64 / 1e6);
                }
                last_done = Some(*t);
            } else if j > 0 && times[baseline(j, optional, any)].is_some() {
                self.dropped[j].push(person.to_owned());
            }
        }
    }

    fn result(mut self, labels: &[String], optional: &[bool], any: bool, limit: usize) -> Vec<StepResult> {
        let first = self.counts.first().copied().unwrap_or(0);
        (0..labels.len())
            .map(|j| {
                let base = if j == 0 { first } else { self.counts[baseline(j, optional, any)] };
                let times = &mut self.times[j];
                times.sort_by(f64::total_cmp);
                let avg = (!times.is_empty()).then(|| round2(times.iter().sum::<f64>() / times.len() as f64));
                let median = (!times.is_empty()).then(|| {
                    let m = times.len() / 2;
                    round2(if times.len().is_multiple_of(2) { f64::midpoint(times[m - 1], times[m]) } else { times[m] })
                });
                let mut people = std::mem::take(&mut self.dropped[j]);
                people.sort_unstable();
                let truncated = people.len() > limit;
                people.truncate(limit);
                StepResult {
                    step: j + 1,
                    label: labels[j].clone(),
                    optional: optional[j],
                    count: self.counts[j],
                    conversion_from_first: percent(self.counts[j] as f64, first as f64),
                    conversion_from_previous: percent(self.counts[j] as f64, base as f64),
                    dropped: if j == 0 { 0 } else { base.saturating_sub(self.counts[j]) },
                    avg_time_to_convert_seconds: avg,
                    median_time_to_convert_seconds: median,
                    dropped_people: people,
                    dropped_people_truncated: truncated,
                }
            })
            .collect()
    }
}

/// The step a step converts from: the nearest earlier required one.
fn baseline(j: usize, optional: &[bool], any: bool) -> usize {
    if any {
        return j - 1;
    }
    (0..j).rev().find(|&k| !optional[k]).unwrap_or(0)
}

/// Run a funnel report.
pub async fn funnel(env: &Env, req: &FunnelRequest) -> Result<FunnelResponse> {
    super::check_compare(&req.compare_segments)?;
    let mut out = funnel_one(env, req).await?;
    for (i, seg) in req.compare_segments.iter().enumerate() {
        let one = FunnelRequest { segment: Some(seg.clone()), compare_segments: Vec::new(), ..req.clone() };
        let report = funnel_one(env, &one).await.map_err(super::in_compare(i))?;
        out.by_segment.push(super::BySegment { segment: seg.clone(), report });
    }
    Ok(out)
}

async fn funnel_one(env: &Env, req: &FunnelRequest) -> Result<FunnelResponse> {
    let plan = req.check()?;
    let (start, end) = plan.c.bounds(req.date_range);
    let end = end + chrono::Duration::seconds(req.window.seconds());
    funnel_in_passes(env, req, super::sql::passes(env, &plan.c.site, start, end)?).await
}

/// A funnel report evaluated in `passes` passes, each over the people of one bucket of their
/// id (`footfall_bucket`), so that each pass sorts a `passes`-th of the rows. The answer does
/// not depend on `passes` (a test checks it); [`funnel`] picks it from the stored rows.
pub async fn funnel_in_passes(env: &Env, req: &FunnelRequest, passes: usize) -> Result<FunnelResponse> {
    let mut plan = req.check()?;
    plan.c.prepare(req.segment.as_ref(), env)?;
    let passes = passes.max(1);
    let sqls = (0..passes).map(|pass| req.sql(&plan, pass, passes)).collect::<Result<Vec<_>>>()?;
    let ctx = env.session(&plan.c.site).await?;
    let n = req.steps.len();
    let any = req.order == Order::Any;
    let mut overall = Tally::new(n);
    let mut by_value: HashMap<Option<String>, Tally> = HashMap::new();
    let mut excluded = 0u64;
    let mut person = String::new();
    let mut events: Vec<Ev> = Vec::new();
    let mut finish = |person: &str, events: &[Ev]| match evaluate(events, &plan.cfg) {
        Outcome::NotEntered => {}
        Outcome::Excluded => excluded += 1,
        Outcome::Converted { entry, times } => {
            overall.add(person, &times, &plan.cfg.optional, any);
            if plan.breakdown.is_some() {
                by_value.entry(events[entry].breakdown.clone()).or_insert_with(|| Tally::new(n)).add(
                    person,
                    &times,
                    &plan.cfg.optional,
                    any,
                );
            }
        }
    };
    let run = async {
        for (sql, q) in &sqls {
            let mut stream = super::plan(&ctx, sql, q).await?.execute_stream().await?;
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                let cols = Columns::of(&batch)?;
                for row in 0..batch.num_rows() {
                    let p = cols.person.value(row);
                    if p != person {
                        finish(&person, &events);
                        events.clear();
                        p.clone_into(&mut person);
                    }
                    events.push(Ev {
                        t: cols.t.value(row),
                        steps: cols.steps.value(row) as u32,
                        excl: cols.excl.value(row) as u32,
                        breakdown: (!cols.breakdown.is_null(row)).then(|| cols.breakdown.value(row).to_owned()),
                    });
                }
            }
        }
        finish(&person, &events);
        Ok::<_, super::Error>(())
    };
    tokio::time::timeout(env.limits.timeout, run)
        .await
        .map_err(|_| crate::query::Error::Timeout(env.limits.timeout))??;
    let optional = &plan.cfg.optional;
    let mut values: Vec<(Option<String>, Tally)> = by_value.into_iter().collect();
    values.sort_by(|a, b| b.1.entered.cmp(&a.1.entered).then_with(|| a.0.cmp(&b.0)));
    values.truncate(req.breakdown_limit);
    Ok(FunnelResponse {
        order: req.order,
        unit: req.unit,
        window_seconds: (req.window.unit != WindowUnit::Unlimited).then(|| req.window.seconds()),
        steps: overall.result(&plan.labels, optional, any, req.people_limit),
        breakdown: req.breakdown.clone(),
        breakdowns: values
            .into_iter()
            .map(|(value, t)| BreakdownResult { value, steps: t.result(&plan.labels, optional, any, req.people_limit) })
            .collect(),
        excluded_people: excluded,
        sql: sqls.into_iter().map(|(sql, q)| RanSql { sql, params: q.params }).collect(),
        by_segment: Vec::new(),
    })
}

/// The funnel query's columns, as plain types.
struct Columns {
    person: arrow::array::StringArray,
    t: arrow::array::Int64Array,
    steps: arrow::array::Int64Array,
    excl: arrow::array::Int64Array,
    breakdown: arrow::array::StringArray,
}

impl Columns {
    fn of(b: &RecordBatch) -> Result<Self> {
        let col = |name: &str, ty: &DataType| -> Result<arrow::array::ArrayRef> {
            let c = b.column_by_name(name).ok_or_else(|| {
                datafusion::error::DataFusionError::Internal(format!("funnel query lost column {name}"))
            })?;
            Ok(arrow::compute::cast(c, ty).map_err(datafusion::error::DataFusionError::from)?)
        };
        Ok(Self {
            person: col("person_id", &DataType::Utf8)?.as_string::<i32>().clone(),
            t: col("t", &DataType::Int64)?.as_primitive::<Int64Type>().clone(),
            steps: col("steps", &DataType::Int64)?.as_primitive::<Int64Type>().clone(),
            excl: col("exclusions", &DataType::Int64)?.as_primitive::<Int64Type>().clone(),
            breakdown: col("breakdown", &DataType::Utf8)?.as_string::<i32>().clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    #[test]
    fn tally_counts_conversions_drops_and_times() {
        let opt = vec![false; 3];
        let mut t = Tally::new(3);
        t.add("a", &[Some(0), Some(10 * S), Some(30 * S)], &opt, false);
        t.add("b", &[Some(0), Some(20 * S), None], &opt, false);
        t.add("c", &[Some(0), None, None], &opt, false);
        let r = t.result(&["1".into(), "2".into(), "3".into()], &opt, false, 10);
        assert_eq!(r.iter().map(|s| s.count).collect::<Vec<_>>(), vec![3, 2, 1]);
        assert_eq!(r[1].conversion_from_first, 66.67);
        assert_eq!(r[2].conversion_from_previous, 50.0);
        assert_eq!(r[1].dropped_people, vec!["c"]);
        assert_eq!(r[2].dropped_people, vec!["b"]);
        assert_eq!(r[1].avg_time_to_convert_seconds, Some(15.0));
        assert_eq!(r[1].median_time_to_convert_seconds, Some(15.0));
        assert_eq!(r[2].avg_time_to_convert_seconds, Some(20.0));
    }
}
