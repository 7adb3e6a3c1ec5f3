//! Retention: of the people who started in a period (the cohort), how many came back in each
//! following period.
//!
//! - **Cohort**: by the first event of any kind (first seen) or by `start_event`.
//!   `first_time`: a person's cohort is the period of their first start event ever (earlier
//!   history is read too), and only cohorts inside the date range are shown. `recurring`: a
//!   person joins the cohort of every period of the range in which they did the start event.
//! - **Returning** in period k ≥ 1: the person did `return_event` (default: any event) in the
//!   k-th period after their cohort's. Period 0 is the cohort itself (100%).
//! - Periods are days, ISO weeks (from Monday) or months in the report's time zone. A period
//!   that has not ended yet is marked `complete: false`; periods that have not started are left
//!   out.
//! - **Breakdown**: the dimension's value on the person's (first) start event of the cohort.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    Checked, DateRange, Dimension, Env, EventMatch, Filter, Period, RanSql, Result, Rows, Sql, invalid, percent, run,
    ts_literal,
};

/// Most periods a retention table has (period 0 included).
pub const MAX_PERIODS: usize = 60;

/// Who makes a cohort.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RetentionType {
    #[default]
    FirstTime,
    Recurring,
}

fn default_period() -> Period {
    Period::Week
}

fn default_periods() -> usize {
    8
}

/// `POST /api/reports/retention`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionRequest {
    pub site: String,
    /// The cohorts' periods must start inside this range.
    pub date_range: DateRange,
    #[serde(default = "super::utc")]
    pub timezone: String,
    #[serde(default)]
    pub filters: Vec<Filter>,
    /// Only people in this segment: a definition or a template id (see segments).
    #[serde(default)]
    pub segment: Option<serde_json::Value>,
    /// day, week (default) or month.
    #[serde(default = "default_period")]
    pub period: Period,
    /// Columns of the table, period 0 included (default 8).
    #[serde(default = "default_periods")]
    pub periods: usize,
    /// What puts a person in a cohort (default: any event, i.e. first seen).
    #[serde(default)]
    pub start_event: Option<EventMatch>,
    /// What counts as coming back (default: any event).
    #[serde(default)]
    pub return_event: Option<EventMatch>,
    #[serde(default)]
    pub retention_type: RetentionType,
    #[serde(default)]
    pub breakdown: Option<String>,
}

/// One cell of the table.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Cell {
    pub period: usize,
    pub people: u64,
    pub percent: f64,
    /// False for the period still running.
    pub complete: bool,
}

/// One row of the table.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Cohort {
    /// Local start of the cohort's period, `YYYY-MM-DD`.
    pub cohort: String,
    pub breakdown_value: Option<String>,
    pub size: u64,
    pub values: Vec<Cell>,
}

/// The retention response.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct RetentionResponse {
    pub period: Period,
    pub periods: usize,
    pub retention_type: RetentionType,
    pub timezone: String,
    pub breakdown: Option<String>,
    pub cohorts: Vec<Cohort>,
    pub sql: Vec<RanSql>,
}

struct Plan {
    c: Checked,
    breakdown: Option<Dimension>,
}

impl RetentionRequest {
    fn check(&self) -> Result<Plan> {
        let (c, breakdown) =
            super::check_common(&self.site, self.date_range, &self.timezone, &self.filters, self.breakdown.as_deref())?;
        if breakdown.as_ref().is_some_and(Dimension::session_level) {
            return Err(invalid(
                "breakdown",
                "entry_page is a trends breakdown (and a filter everywhere); a retention breaks down by an event's dimension",
            ));
        }
        if self.period == Period::Hour {
            return Err(invalid("period", "retention periods are day, week or month"));
        }
        if !(2..=MAX_PERIODS).contains(&self.periods) {
            return Err(invalid("periods", format!("between 2 and {MAX_PERIODS} (period 0 included)")));
        }
        Ok(Plan { c, breakdown })
    }

    fn to_utc(c: &Checked, local: NaiveDateTime) -> DateTime<Utc> {
        c.midnight(local.date())
    }

    /// The end of the last return period: `periods` periods after the range's last cohort
    /// period starts.
    fn returns_end(&self, c: &Checked) -> DateTime<Utc> {
        let starts = c.period_starts(self.period, self.date_range);
        let mut end = starts.last().copied().unwrap_or_default();
        for _ in 0..self.periods {
            end = self.period.next(end);
        }
        Self::to_utc(c, end)
    }

    /// First-time cohorts of any event returning with any event, by day or week, over at most 62
    /// periods from the range's first to the end of the last return period: each person's
    /// active periods fit in the bits of one integer ([`Self::mask_sql`]). Gives the UTC start
    /// of the first period and the number of periods.
    fn mask_periods(&self, p: &Plan) -> Option<(DateTime<Utc>, usize)> {
        if !self.first_time_any_event() || !matches!(self.period, Period::Day | Period::Week) {
            return None;
        }
        let starts = p.c.period_starts(self.period, self.date_range);
        let n = starts.len() + self.periods;
        (n <= super::sql::MAX_MASK_PERIODS).then(|| (Self::to_utc(&p.c, starts[0]), n))
    }

    /// First-time cohorts of any event returning with any event: every member is active in
    /// its cohort's own period.
    fn first_time_any_event(&self) -> bool {
        self.retention_type == RetentionType::FirstTime && self.start_event.is_none() && self.return_event.is_none()
    }

    /// One aggregation by person over every event up to the end of the return periods: the
    /// first time (before the range's end), the first event's breakdown value, and a bit per
    /// period the person was active in from the range's start (`bit_or`). Then one row per
    /// (cohort, value) with `p0` (the cohort's size: every member is active in its own period)
    /// and `p1..` (members active `k` periods later), counted from the bits. DuckDB-style one
    /// pass instead of a join of cohorts with returns (2.2 s → see BENCHMARKS.md at 10M).
    fn mask_sql(&self, p: &Plan, first: DateTime<Utc>, periods: usize) -> (String, Sql) {
        let mut q = Sql::default();
        let c = &p.c;
        let (start, end) = c.bounds(self.date_range);
        let returns_end = self.returns_end(c);
        let bd = match &p.breakdown {
            Some(d) => format!("first_value({} ORDER BY ts)", d.sql(&mut q, "")),
            None => "CAST(NULL AS VARCHAR)".to_owned(),
        };
        let filters = c.filters_sql(&mut q);
        let site = q.bind(c.site.as_str());
        let last_date = (returns_end - chrono::Duration::microseconds(1)).date_naive();
        // Periods since the first, from local period starts in UTC microseconds (a day is 23
        // or 25 hours across a daylight-saving change, hence the rounding).
        let period_us = match self.period {
            Period::Week => 7 * 86_400_000_000i64,
            _ => 86_400_000_000,
        };
        // With one UTC offset over every period (no daylight-saving change in the span), a
        // period's index is plain integer arithmetic on the time, without a time-zone
        // conversion per event.
        let offset = |t: DateTime<Utc>| {
            use chrono::{Offset, TimeZone};
            c.tz.offset_from_utc_datetime(&t.naive_utc()).fix().local_minus_utc()
        };
        let fixed = (0..=periods as i64)
            .all(|i| offset(first + chrono::Duration::microseconds(i * period_us)) == offset(first));
        let index = |ts: &str| match fixed {
            true => format!("(CAST({ts} AS BIGINT) - {}) / {period_us}", first.timestamp_micros()),
            false => format!(
                "CAST(round(CAST(CAST({} AS BIGINT) - {} AS DOUBLE) / {period_us}) AS BIGINT)",
                c.bucket_sql(self.period, ts),
                first.timestamp_micros()
            ),
        };
        let cells: String = (1..self.periods).map(|k| format!(",\n  sum((mask >> (ci + {k})) & 1) AS p{k}")).collect();
        let sql = format!(
            "WITH per AS (
  SELECT person_id, min(CASE WHEN ts < {end_ts} THEN ts END) AS first_ts, {bd} AS breakdown,
    bit_or(CASE WHEN ts >= {start_ts} THEN CAST(1 AS BIGINT) << {ts_index} ELSE CAST(0 AS BIGINT) END) AS mask
  FROM person_events
  WHERE site = {site} AND date <= DATE '{last_date}' AND ts < {returns_end_ts}{filters}
  GROUP BY person_id
),
c AS (
  SELECT {cohort} AS cohort, {first_index} AS ci, breakdown, mask FROM per WHERE first_ts >= {start_ts}
)
SELECT cohort, breakdown, count(*) AS p0{cells}
FROM c GROUP BY cohort, breakdown
ORDER BY cohort, breakdown",
            end_ts = ts_literal(end),
            start_ts = ts_literal(start),
            returns_end_ts = ts_literal(returns_end),
            ts_index = index("ts"),
            first_index = index("first_ts"),
            cohort = c.bucket_sql(self.period, "first_ts"),
        );
        (sql, q)
    }

    fn sql(&self, p: &Plan) -> Result<(String, Sql)> {
        if let Some((first, periods)) = self.mask_periods(p) {
            return Ok(self.mask_sql(p, first, periods));
        }
        let mut q = Sql::default();
        let c = &p.c;
        let (start, end) = c.bounds(self.date_range);
        let returns_end = self.returns_end(c);
        let bd = p.breakdown.as_ref().map_or_else(|| "CAST(NULL AS VARCHAR)".to_owned(), |d| d.sql(&mut q, ""));
        let start_cond = match &self.start_event {
            Some(m) => format!(" AND {}", m.condition(&mut q, "start_event")?),
            None => String::new(),
        };
        let filters = c.filters_sql(&mut q);
        let cohorts = match self.retention_type {
            RetentionType::FirstTime => {
                let site = q.bind(c.site.as_str());
                let last_date = (end - chrono::Duration::microseconds(1)).date_naive();
                format!(
                    "starts AS (
  SELECT person_id, min(ts) AS first_ts, first_value({bd} ORDER BY ts) AS breakdown
  FROM person_events
  WHERE site = {site} AND date <= DATE '{last_date}' AND ts < {end_ts}{start_cond}{filters}
  GROUP BY person_id
),
cohorts AS (
  SELECT person_id, {bucket} AS cohort, breakdown FROM starts WHERE first_ts >= {start_ts}
)",
                    end_ts = ts_literal(end),
                    start_ts = ts_literal(start),
                    bucket = c.bucket_sql(self.period, "first_ts"),
                )
            }
            RetentionType::Recurring => {
                let range = c.range_sql(&mut q, start, end);
                format!(
                    "starts AS (
  SELECT person_id, {bucket} AS cohort, ts, {bd} AS breakdown
  FROM person_events
  WHERE {range}{start_cond}{filters}
),
cohorts AS (
  SELECT person_id, cohort, first_value(breakdown ORDER BY ts) AS breakdown FROM starts GROUP BY person_id, cohort
)",
                    bucket = c.bucket_sql(self.period, "ts"),
                )
            }
        };
        let return_cond = match &self.return_event {
            Some(m) => format!(" AND {}", m.condition(&mut q, "return_event")?),
            None => String::new(),
        };
        let returns_range = c.range_sql(&mut q, start, returns_end);
        let filters = c.filters_sql(&mut q);
        let returns = format!(
            "returns AS (
  SELECT DISTINCT person_id, {bucket} AS p
  FROM person_events
  WHERE {returns_range}{return_cond}{filters}
)",
            bucket = c.bucket_sql(self.period, "ts"),
        );
        // First-time cohorts of any event returning with any event: every member is active in
        // its cohort's own period (its first event is in the return range and matches the same
        // filters), so one join gives the sizes too (`r.p = c.cohort`), and the events are
        // aggregated twice instead of three times (DataFusion computes a CTE once per use).
        let sql = match self.first_time_any_event() {
            true => format!(
                "WITH {cohorts},
{returns}
SELECT c.cohort, c.breakdown, r.p, count(DISTINCT c.person_id) AS people
FROM cohorts c JOIN returns r ON c.person_id = r.person_id AND r.p >= c.cohort
GROUP BY c.cohort, c.breakdown, r.p
ORDER BY cohort, breakdown, p"
            ),
            false => format!(
                "WITH {cohorts},
{returns}
SELECT cohort, breakdown, {no_period} AS p, count(DISTINCT person_id) AS people
FROM cohorts GROUP BY cohort, breakdown
UNION ALL
SELECT c.cohort, c.breakdown, r.p, count(DISTINCT c.person_id) AS people
FROM cohorts c JOIN returns r ON c.person_id = r.person_id AND r.p > c.cohort
GROUP BY c.cohort, c.breakdown, r.p
ORDER BY cohort, breakdown, p NULLS FIRST",
                no_period = c.local_ts_sql("CAST(NULL AS TIMESTAMP)"),
            ),
        };
        Ok((sql, q))
    }
}

/// Run a retention report.
pub async fn retention(env: &Env, req: &RetentionRequest) -> Result<RetentionResponse> {
    let mut plan = req.check()?;
    plan.c.set_segment(req.segment.as_ref(), env)?;
    let (sql, q) = req.sql(&plan)?;
    let mask = req.mask_periods(&plan).is_some();
    let ctx = env.session(&plan.c.site).await?;
    let batches = run(&ctx, &sql, &q, &env.limits).await?;
    let c = &plan.c;
    let now = env.now();
    let mut cohorts: Vec<Cohort> = Vec::new();
    // Row of each (cohort start, breakdown value).
    let mut rows: HashMap<(NaiveDateTime, Option<String>), usize> = HashMap::new();
    if plan.breakdown.is_none() {
        // Every cohort period of the range has a row, even an empty one.
        for t in c.period_starts(req.period, req.date_range) {
            rows.insert((t, None), cohorts.len());
            cohorts.push(empty(req, c, t, None, now));
        }
    }
    let mut failed = None;
    Rows::new(&batches).each(|r| {
        let (Some(cohort), value) = (c.bucket_of(r, "cohort"), r.text("breakdown")) else {
            failed = Some("cohort");
            return;
        };
        let idx = *rows.entry((cohort, value.clone())).or_insert_with(|| {
            cohorts.push(empty(req, c, cohort, value, now));
            cohorts.len() - 1
        });
        let h = &mut cohorts[idx];
        if mask {
            h.size = r.u64("p0");
            for (k, cell) in h.values.iter_mut().enumerate().skip(1) {
                cell.people = r.u64(&format!("p{k}"));
            }
            return;
        }
        let people = r.u64("people");
        match c.bucket_of(r, "p") {
            // The size row: no period, or (one join, see `sql`) the cohort's own period.
            None => h.size = people,
            Some(p) if p == cohort => h.size = people,
            Some(p) => {
                let k = req.period.between(cohort, p);
                if let Some(cell) = usize::try_from(k).ok().and_then(|k| h.values.get_mut(k)) {
                    cell.people = people;
                }
            }
        }
    });
    if let Some(what) = failed {
        return Err(super::Error::Query(crate::query::Error::DataFusion(
            datafusion::error::DataFusionError::Internal(format!("retention query returned no {what}")),
        )));
    }
    for h in &mut cohorts {
        let size = h.size;
        for cell in &mut h.values {
            if cell.period == 0 {
                cell.people = size;
            }
            cell.percent = percent(cell.people as f64, size as f64);
        }
    }
    cohorts.sort_by(|a, b| {
        a.cohort
            .cmp(&b.cohort)
            .then_with(|| b.size.cmp(&a.size))
            .then_with(|| a.breakdown_value.cmp(&b.breakdown_value))
    });
    Ok(RetentionResponse {
        period: req.period,
        periods: req.periods,
        retention_type: req.retention_type,
        timezone: c.tz.name().to_owned(),
        breakdown: req.breakdown.clone(),
        cohorts,
        sql: vec![RanSql { sql, params: q.params }],
    })
}

/// A cohort row with its periods up to now, all zero.
fn empty(
    req: &RetentionRequest,
    c: &Checked,
    cohort: NaiveDateTime,
    value: Option<String>,
    now: DateTime<Utc>,
) -> Cohort {
    let mut values = Vec::new();
    let mut t = cohort;
    for period in 0..req.periods {
        let next = req.period.next(t);
        if RetentionRequest::to_utc(c, t) > now {
            break;
        }
        values.push(Cell { period, people: 0, percent: 0.0, complete: RetentionRequest::to_utc(c, next) <= now });
        t = next;
    }
    Cohort { cohort: req.period.label(cohort), breakdown_value: value, size: 0, values }
}
