//! Retention: of the people who started in a period (the cohort), how many came back in each
//! following period.
//!
//! - **Cohort**: by the first event of any kind (first seen) or by `start_event`.
//!   `first_time`: a person's cohort is the period of their first start event ever (earlier
//!   history is read too), and only cohorts inside the date range are shown. `recurring`: a
//!   person joins the cohort of every period of the range in which they did the start event.
//! - **Returning** in period k ≥ 1: the person did `return_event` (default: any event) in the
//!   k-th period after their cohort's, at least `min_occurrences` times (default 1). With
//!   `cumulative` ("on or after", PostHog's rolling retention), in the k-th period or any later
//!   one of the table. Period 0 is the cohort itself (100%).
//! - Periods are hours, days, weeks (from the site's first day, Monday by default) or months in the report's time zone. A period
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
/// Longest date range of hourly cohorts, in days.
pub const MAX_HOURLY_DAYS: i64 = 31;
/// Most occurrences a return may be asked to need.
pub const MAX_MIN_OCCURRENCES: u32 = 1000;

fn one() -> u32 {
    1
}

/// Who makes a cohort.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq, utoipa::ToSchema)]
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
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
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
    /// Returning "on or after" period k: in it or any later period of the table.
    #[serde(default)]
    pub cumulative: bool,
    /// How many times the return event must happen in a period to count (default 1).
    #[serde(default = "one")]
    pub min_occurrences: u32,
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
    pub cumulative: bool,
    pub min_occurrences: u32,
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
        if self.period == Period::Hour && self.date_range.days() > MAX_HOURLY_DAYS {
            return Err(invalid("period", format!("hourly cohorts cover at most {MAX_HOURLY_DAYS} days")));
        }
        if !(1..=MAX_MIN_OCCURRENCES).contains(&self.min_occurrences) {
            return Err(invalid("min_occurrences", format!("between 1 and {MAX_MIN_OCCURRENCES}")));
        }
        if !(2..=MAX_PERIODS).contains(&self.periods) {
            return Err(invalid("periods", format!("between 2 and {MAX_PERIODS} (period 0 included)")));
        }
        Ok(Plan { c, breakdown })
    }

    /// The end of the last return period: `periods` periods after the range's last cohort
    /// period starts.
    fn returns_end(&self, c: &Checked) -> DateTime<Utc> {
        let starts = c.period_starts(self.period, self.date_range);
        let mut end = starts.last().copied().unwrap_or_default();
        for _ in 0..self.periods {
            end = self.period.next(end);
        }
        c.instant(end)
    }

    /// First-time cohorts of any event returning with any event, by day or week, over at most 62
    /// periods from the range's first to the end of the last return period: each person's
    /// active periods fit in the bits of one integer ([`Self::mask_sql`]). Gives the UTC start
    /// of the first period and the number of periods.
    fn mask_periods(&self, p: &Plan) -> Option<(DateTime<Utc>, usize)> {
        if !self.first_time_any_event()
            || self.min_occurrences > 1
            || !matches!(self.period, Period::Day | Period::Week)
        {
            return None;
        }
        let starts = p.c.period_starts(self.period, self.date_range);
        let n = starts.len() + self.periods;
        (n <= super::sql::MAX_MASK_PERIODS).then(|| (p.c.instant(starts[0]), n))
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
        // Period k: its bit; on or after it: any of its bits up to the table's last period.
        let cells: String = (1..self.periods)
            .map(|k| match self.cumulative {
                false => format!(",\n  sum((mask >> (ci + {k})) & 1) AS p{k}"),
                true => format!(
                    ",\n  sum(CASE WHEN ((mask >> (ci + {k})) & {}) != 0 THEN 1 ELSE 0 END) AS p{k}",
                    (1i64 << (self.periods - k)) - 1
                ),
            })
            .collect();
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
  SELECT person_id, {bucket} AS p
  FROM person_events
  WHERE {returns_range}{return_cond}{filters}
  GROUP BY person_id, p{having}
)",
            bucket = c.bucket_sql(self.period, "ts"),
            having = match self.min_occurrences {
                1 => String::new(),
                n => format!("\n  HAVING count(*) >= {n}"),
            },
        );
        // On or after: each member's last return within the table's periods, counted in every
        // period up to it (see `retention`).
        let (returned, people) = match self.cumulative {
            false => ("r.p", "count(DISTINCT c.person_id)"),
            true => ("max(r.p)", "count(*)"),
        };
        let width = format!(
            "c.cohort + INTERVAL '{} {}'",
            self.periods,
            match self.period {
                Period::Hour => "hours",
                Period::Day => "days",
                Period::Week => "weeks",
                Period::Month => "months",
            }
        );
        // First-time cohorts of any event returning with any event: every member is active in
        // its cohort's own period (its first event is in the return range and matches the same
        // filters), so one join gives the sizes too (`r.p = c.cohort`), and the events are
        // aggregated twice instead of three times (DataFusion computes a CTE once per use).
        let sql = match self.first_time_any_event() && self.min_occurrences == 1 && !self.cumulative {
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
SELECT cohort, breakdown, p, {people} AS people FROM (
  SELECT c.person_id, c.cohort, c.breakdown, {returned} AS p
  FROM cohorts c JOIN returns r ON c.person_id = r.person_id AND r.p > c.cohort AND r.p < {width}
  GROUP BY c.person_id, c.cohort, c.breakdown{by_period}
) c
GROUP BY cohort, breakdown, p
ORDER BY cohort, breakdown, p NULLS FIRST",
                by_period = if self.cumulative { "" } else { ", r.p" },
                no_period = c.local_ts_sql("CAST(NULL AS TIMESTAMP)"),
            ),
        };
        Ok((sql, q))
    }
}

/// Run a retention report.
pub async fn retention(env: &Env, req: &RetentionRequest) -> Result<RetentionResponse> {
    let mut plan = req.check()?;
    plan.c.prepare(req.segment.as_ref(), env)?;
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
                let k = usize::try_from(req.period.between(cohort, p)).unwrap_or(0);
                match req.cumulative {
                    // Back in period k at the latest: back on or after every period 1..=k.
                    true => h.values.iter_mut().skip(1).take(k).for_each(|cell| cell.people += people),
                    false => {
                        if let Some(cell) = h.values.get_mut(k) {
                            cell.people = people;
                        }
                    }
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
        cumulative: req.cumulative,
        min_occurrences: req.min_occurrences,
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
        if c.instant(t) > now {
            break;
        }
        values.push(Cell { period, people: 0, percent: 0.0, complete: c.instant(next) <= now });
        t = next;
    }
    Cohort { cohort: req.period.label(cohort), breakdown_value: value, size: 0, values }
}
