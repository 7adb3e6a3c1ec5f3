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

use super::{Checked, DateRange, Dimension, Env, EventMatch, Filter, RanSql, Result, Sql, invalid, percent, round2};

/// Most steps in a funnel.
pub const MAX_STEPS: usize = 20;
/// Shortest conversion window, in seconds.
pub const MIN_WINDOW_SECS: i64 = 60;
/// Longest conversion window, in seconds (90 days).
pub const MAX_WINDOW_SECS: i64 = 90 * 86_400;
/// Most people ids listed per step.
pub const MAX_PEOPLE_LIMIT: usize = 10_000;

/// Step order.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    #[default]
    Ordered,
    Strict,
    Any,
}

/// Units of the conversion window.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WindowUnit {
    Minute,
    Hour,
    Day,
}

/// The conversion window, measured from the entry.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Window {
    pub value: i64,
    pub unit: WindowUnit,
}

impl Window {
    /// Seconds.
    pub fn seconds(&self) -> i64 {
        let unit = match self.unit {
            WindowUnit::Minute => 60,
            WindowUnit::Hour => 3600,
            WindowUnit::Day => 86_400,
        };
        self.value.saturating_mul(unit)
    }
}

fn default_window() -> Window {
    Window { value: 1, unit: WindowUnit::Day }
}

/// One step: an event (with filters), or any of several.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
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
#[derive(Clone, Debug, Deserialize, Serialize)]
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
#[derive(Clone, Debug, Deserialize, Serialize)]
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
    pub window_seconds: i64,
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

/// One candidate event of a person.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ev {
    /// Microseconds since the epoch.
    pub t: i64,
    /// Bit k: matches step k (0-based).
    pub steps: u32,
    /// Bit k: matches exclusion k.
    pub excl: u32,
    pub breakdown: Option<String>,
}

/// What [`evaluate`] needs to know about the funnel.
#[derive(Clone, Debug)]
pub struct Config {
    pub order: Order,
    pub optional: Vec<bool>,
    /// Microseconds.
    pub window: i64,
    /// Entries must be in `[entry.0, entry.1)`.
    pub entry: (i64, i64),
    /// 0-based (from, to) step indices per exclusion.
    pub exclusions: Vec<(usize, usize)>,
}

/// A person's outcome.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    NotEntered,
    Excluded,
    /// `times[k]`: when step k was done (ordered/strict), or when the (k+1)-th distinct step
    /// was done (`any`); `entry`: index of the entry event.
    Converted {
        entry: usize,
        times: Vec<Option<i64>>,
    },
}

/// Walk one person's events (sorted by time) through the funnel.
pub fn evaluate(events: &[Ev], cfg: &Config) -> Outcome {
    let n = cfg.optional.len();
    let mut best: Option<(usize, usize, Vec<Option<i64>>)> = None; // (level, entry, times)
    let mut entered = false;
    for (i, e) in events.iter().enumerate() {
        let starts = if cfg.order == Order::Any { e.steps != 0 } else { e.steps & 1 != 0 };
        if !starts || e.t < cfg.entry.0 || e.t >= cfg.entry.1 {
            continue;
        }
        entered = true;
        let Some((level, times)) = walk(events, i, cfg) else { continue };
        if best.as_ref().is_none_or(|b| level > b.0) {
            best = Some((level, i, times));
            if level == n {
                break;
            }
        }
    }
    match best {
        Some((_, entry, times)) => Outcome::Converted { entry, times },
        None if entered => Outcome::Excluded,
        None => Outcome::NotEntered,
    }
}

/// The chain from entry `i`: (steps reached, times), or `None` if an exclusion hit it.
fn walk(events: &[Ev], i: usize, cfg: &Config) -> Option<(usize, Vec<Option<i64>>)> {
    let n = cfg.optional.len();
    let t0 = events[i].t;
    let deadline = t0.saturating_add(cfg.window);
    let mut times = vec![None; n];
    // Last step index done (ordered/strict), or distinct steps done (any).
    let (mut cur, mut seen) = (0usize, 0u32);
    if cfg.order == Order::Any {
        seen = events[i].steps;
        for _ in 0..seen.count_ones() {
            times[cur] = Some(t0);
            cur += 1;
        }
        cur -= 1;
    } else {
        times[0] = Some(t0);
    }
    for e in &events[i + 1..] {
        if e.t > deadline || cur + 1 == n {
            break;
        }
        let excluded =
            cfg.exclusions.iter().enumerate().any(|(k, &(from, to))| e.excl & (1 << k) != 0 && cur >= from && cur < to);
        if excluded {
            return None;
        }
        match cfg.order {
            Order::Any => {
                for _ in 0..(e.steps & !seen).count_ones() {
                    cur += 1;
                    times[cur] = Some(e.t);
                }
                seen |= e.steps;
            }
            Order::Ordered | Order::Strict => match next_step(e.steps, cur, &cfg.optional) {
                Some(j) => {
                    times[j] = Some(e.t);
                    cur = j;
                }
                None if cfg.order == Order::Strict => break,
                None => {}
            },
        }
    }
    Some((cur + 1, times))
}

/// The step an event with `mask` advances a chain at step `cur` to: the first later step it
/// matches with only optional steps skipped.
fn next_step(mask: u32, cur: usize, optional: &[bool]) -> Option<usize> {
    for (j, &opt) in optional.iter().enumerate().skip(cur + 1) {
        if mask & (1 << j) != 0 {
            return Some(j);
        }
        if !opt {
            return None;
        }
    }
    None
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
        if !(MIN_WINDOW_SECS..=MAX_WINDOW_SECS).contains(&secs) {
            return Err(invalid("window", "the conversion window is between 1 minute and 90 days"));
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
                Some(e) => vec![e.as_str()],
                None => s.any_of.iter().map(|m| m.event.as_str()).collect(),
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

    fn sql(&self, p: &Plan) -> Result<(String, Sql)> {
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
        let relevant =
            if self.order == Order::Strict { String::new() } else { format!("\n  AND ({})", conds.join("\n    OR ")) };
        let sql = format!(
            "SELECT person_id, CAST(ts AS BIGINT) AS t,
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
    let mut plan = req.check()?;
    plan.c.set_segment(req.segment.as_ref(), env)?;
    let (sql, q) = req.sql(&plan)?;
    let ctx = env.session(&plan.c.site).await?;
    let mut stream = super::plan(&ctx, &sql, &q).await?.execute_stream().await?;
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
        window_seconds: req.window.seconds(),
        steps: overall.result(&plan.labels, optional, any, req.people_limit),
        breakdown: req.breakdown.clone(),
        breakdowns: values
            .into_iter()
            .map(|(value, t)| BreakdownResult { value, steps: t.result(&plan.labels, optional, any, req.people_limit) })
            .collect(),
        excluded_people: excluded,
        sql: vec![RanSql { sql, params: q.params }],
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

    fn ev(t: i64, steps: u32) -> Ev {
        Ev { t: t * S, steps, ..Ev::default() }
    }

    fn cfg(order: Order, n: usize, window_s: i64) -> Config {
        Config { order, optional: vec![false; n], window: window_s * S, entry: (0, 1000 * S), exclusions: vec![] }
    }

    fn times(o: &Outcome) -> Vec<Option<i64>> {
        match o {
            Outcome::Converted { times, .. } => times.iter().map(|t| t.map(|t| t / S)).collect(),
            other => panic!("not converted: {other:?}"),
        }
    }

    #[test]
    fn ordered_skips_noise_and_respects_the_window() {
        let c = cfg(Order::Ordered, 3, 10);
        // step1 at 0, noise, step2 at 5, step3 at 11 (outside the window of 10).
        let e = [ev(0, 1), ev(1, 0), ev(5, 2), ev(11, 4)];
        assert_eq!(times(&evaluate(&e, &c)), vec![Some(0), Some(5), None]);
        // The window is inclusive: step 3 at exactly 10 counts.
        let e = [ev(0, 1), ev(5, 2), ev(10, 4)];
        assert_eq!(times(&evaluate(&e, &c)), vec![Some(0), Some(5), Some(10)]);
    }

    #[test]
    fn a_later_entry_can_go_further() {
        let c = cfg(Order::Ordered, 3, 10);
        let e = [ev(0, 1), ev(20, 1), ev(25, 2), ev(29, 4)];
        let o = evaluate(&e, &c);
        assert_eq!(times(&o), vec![Some(20), Some(25), Some(29)]);
        assert!(matches!(o, Outcome::Converted { entry: 1, .. }));
    }

    #[test]
    fn strict_breaks_on_an_event_in_between() {
        let c = cfg(Order::Strict, 3, 100);
        let e = [ev(0, 1), ev(1, 2), ev(2, 0), ev(3, 4)];
        assert_eq!(times(&evaluate(&e, &c)), vec![Some(0), Some(1), None]);
        assert_eq!(times(&evaluate(&e, &cfg(Order::Ordered, 3, 100))), vec![Some(0), Some(1), Some(3)]);
    }

    #[test]
    fn any_order_counts_distinct_steps() {
        let c = cfg(Order::Any, 3, 100);
        // Step 3 first, then step 1, then step 1 again, then step 2.
        let e = [ev(0, 4), ev(5, 1), ev(6, 1), ev(9, 2)];
        assert_eq!(times(&evaluate(&e, &c)), vec![Some(0), Some(5), Some(9)]);
    }

    #[test]
    fn optional_steps_may_be_skipped() {
        let mut c = cfg(Order::Ordered, 3, 100);
        c.optional = vec![false, true, false];
        assert_eq!(times(&evaluate(&[ev(0, 1), ev(3, 4)], &c)), vec![Some(0), None, Some(3)]);
        assert_eq!(times(&evaluate(&[ev(0, 1), ev(2, 2), ev(3, 4)], &c)), vec![Some(0), Some(2), Some(3)]);
    }

    #[test]
    fn exclusions_drop_a_chain_between_their_steps() {
        let mut c = cfg(Order::Ordered, 3, 100);
        c.exclusions = vec![(1, 2)]; // between step 2 and step 3
        let x = Ev { t: 4 * S, excl: 1, ..Ev::default() };
        // Exclusion after step 2, before step 3: excluded.
        assert_eq!(evaluate(&[ev(0, 1), ev(2, 2), x.clone(), ev(6, 4)], &c), Outcome::Excluded);
        // Exclusion before step 2: allowed.
        let x1 = Ev { t: S, excl: 1, ..Ev::default() };
        assert_eq!(times(&evaluate(&[ev(0, 1), x1, ev(2, 2), ev(6, 4)], &c)), vec![Some(0), Some(2), Some(6)]);
    }

    #[test]
    fn entries_outside_the_range_do_not_count() {
        let mut c = cfg(Order::Ordered, 2, 100);
        c.entry = (10 * S, 20 * S);
        assert_eq!(evaluate(&[ev(5, 1), ev(12, 2)], &c), Outcome::NotEntered);
        // Conversions may finish after the range.
        assert_eq!(times(&evaluate(&[ev(15, 1), ev(40, 2)], &c)), vec![Some(15), Some(40)]);
    }

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

    /// The furthest step by brute force: every way to pick later events for later steps
    /// (skipping only optional steps) within the window of an entry in range.
    fn brute(events: &[Ev], c: &Config) -> usize {
        fn dfs(events: &[Ev], c: &Config, idx: usize, step: usize, deadline: i64) -> usize {
            let mut best = step + 1;
            for j in idx + 1..events.len() {
                if events[j].t > deadline {
                    break;
                }
                for s in step + 1..c.optional.len() {
                    if events[j].steps & (1 << s) != 0 {
                        best = best.max(dfs(events, c, j, s, deadline));
                    }
                    if !c.optional[s] {
                        break;
                    }
                }
            }
            best
        }
        (0..events.len())
            .filter(|&i| events[i].steps & 1 != 0 && events[i].t >= c.entry.0 && events[i].t < c.entry.1)
            .map(|i| dfs(events, c, i, 0, events[i].t + c.window))
            .max()
            .unwrap_or(0)
    }

    fn level(o: &Outcome) -> usize {
        match o {
            Outcome::Converted { times, .. } => times.iter().rposition(Option::is_some).map_or(0, |p| p + 1),
            Outcome::NotEntered | Outcome::Excluded => 0,
        }
    }

    proptest::proptest! {
        #[test]
        fn ordered_funnels_reach_the_furthest_step(
            raw in proptest::collection::vec((0i64..30, 0usize..5), 0..9),
            n in 2usize..5,
            window in 0i64..15,
            optional_mask in 0u32..8,
            entry_from in 0i64..10,
        ) {
            let mut events: Vec<Ev> = raw.iter().map(|&(t, s)| ev(t, if s < n { 1 << s } else { 0 })).collect();
            events.sort_by_key(|e| (e.t, e.steps));
            let mut c = cfg(Order::Ordered, n, window);
            c.entry = (entry_from * S, (entry_from + 12) * S);
            // Optional steps: any but the first and the last.
            c.optional = (0..n).map(|k| k > 0 && k + 1 < n && optional_mask & (1 << k) != 0).collect();
            proptest::prop_assert_eq!(level(&evaluate(&events, &c)), brute(&events, &c));
        }
    }
}
