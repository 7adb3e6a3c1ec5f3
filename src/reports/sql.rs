//! Report SQL: the builder that binds every user-given value as a parameter, the filter and
//! time-range clauses, where reports run ([`Env`]), and reading result rows by column name.

use std::fmt::Write as _;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::DataType;
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use datafusion::common::ParamValues;
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use serde::Serialize;

use super::{Checked, DateRange, Dimension, Error, FilterOp, Period, Result, segments};
use crate::model::SiteId;
use crate::query::{self, QueryLimits, Scope};
use crate::store::paths::DataDir;
use crate::store::sessions;

/// SQL text with its bound parameters.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Sql {
    pub params: Vec<String>,
}

impl Sql {
    /// Bind `v`; returns its placeholder.
    pub(crate) fn bind(&mut self, v: &str) -> String {
        self.params.push(v.to_owned());
        format!("${}", self.params.len())
    }
}

/// Stored rows per pass of a report that sorts its rows by person or session, per byte of the
/// query's memory limit. Such a sort's final merge cannot spill: past the limit it fails. The
/// funnel report sorts about a third of the stored rows, some 60 bytes each with the sort's
/// own copy. At 1 GiB a pass covers 21M stored rows; at the bench's 2 GiB, 43M.
const ROWS_PER_BYTE: f64 = 0.02;

/// How many passes (buckets of people or sessions, `footfall_bucket`) a report that sorts its
/// rows by person or session makes over `site`'s events from `start` to `end`: the stored rows
/// of those UTC dates (from the files' footers) over the rows one pass may hold.
pub(crate) fn passes(env: &super::Env, site: &SiteId, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<usize> {
    let last = (end - Duration::microseconds(1)).date_naive();
    let rows = crate::store::parquet::rows_between(&env.data, site, start.date_naive(), last).map_err(|e| {
        Error::Query(query::Error::DataFusion(datafusion::error::DataFusionError::External(Box::new(e))))
    })?;
    let per_pass = (env.limits.memory_bytes as f64 * ROWS_PER_BYTE).max(1.0) as u64;
    Ok(rows.div_ceil(per_pass).max(1) as usize)
}

/// Most periods a report counts as the bits of one `BIGINT` per person (`bit_or`), leaving
/// the sign bit and one to spare: retention's cohort and return periods, lifecycle's periods.
pub(crate) const MAX_MASK_PERIODS: usize = 62;

/// The condition that keeps pass `pass` of `passes` (the rows whose `id` falls in that
/// bucket), to append to a WHERE clause; empty in a single pass.
pub(crate) fn in_pass(id: &str, pass: usize, passes: usize) -> String {
    match passes {
        0 | 1 => String::new(),
        n => format!(" AND footfall_bucket({id}, {n}) = {pass}"),
    }
}

/// The SQL a report ran, as shown in its response.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RanSql {
    pub sql: String,
    pub params: Vec<String>,
}

pub(crate) fn filter_sql(q: &mut Sql, dim: &Dimension, op: FilterOp, values: &[String]) -> String {
    if *dim == Dimension::EntryPage {
        // Sessions whose first pageview (ever, not only in the range) matches.
        let cond = filter_sql_on(q, "entry_page", op, values);
        return format!(
            "session_id IN (SELECT session_id FROM (SELECT session_id, first_value(path ORDER BY ts) AS entry_page \
             FROM events WHERE name = 'pageview' GROUP BY session_id) WHERE {cond})"
        );
    }
    if let Dimension::Item(field) = dim {
        let (how, negate) = match op {
            FilterOp::Is => ("is", false),
            FilterOp::IsNot => ("is", true),
            FilterOp::Contains => ("contains", false),
            FilterOp::NotContains => ("contains", true),
        };
        let params: Vec<String> = values.iter().map(|v| q.bind(v)).collect();
        let test = format!("footfall_items_match(items, '{field}', '{how}', {})", params.join(", "));
        return if negate { format!("NOT coalesce({test}, false)") } else { test };
    }
    let col = dim.sql(q, "");
    filter_sql_on(q, &col, op, values)
}

pub(crate) fn filter_sql_on(q: &mut Sql, col: &str, op: FilterOp, values: &[String]) -> String {
    let parts: Vec<String> = values
        .iter()
        .map(|v| {
            let p = q.bind(v);
            match op {
                FilterOp::Is | FilterOp::IsNot => format!("{col} = {p}"),
                FilterOp::Contains | FilterOp::NotContains => format!("strpos({col}, {p}) > 0"),
            }
        })
        .collect();
    let any = parts.join(" OR ");
    match op {
        FilterOp::Is | FilterOp::Contains => format!("({any})"),
        FilterOp::IsNot | FilterOp::NotContains => format!("NOT coalesce({any}, false)"),
    }
}

impl Checked {
    /// The UTC instant of local midnight starting `d` (the earliest, across a DST change).
    pub(crate) fn midnight(&self, d: NaiveDate) -> DateTime<Utc> {
        self.instant(d.and_hms_opt(0, 0, 0).unwrap_or_default())
    }

    /// The UTC instant of a local date-time (the earliest, across a DST change).
    pub(crate) fn instant(&self, local: NaiveDateTime) -> DateTime<Utc> {
        self.tz.from_local_datetime(&local).earliest().map_or_else(
            // A local time skipped by a DST jump: the hour before it, read as UTC.
            || Utc.from_utc_datetime(&local) - Duration::hours(1),
            |t| t.with_timezone(&Utc),
        )
    }

    /// `[start, end)` of the range in UTC.
    pub(crate) fn bounds(&self, range: DateRange) -> (DateTime<Utc>, DateTime<Utc>) {
        (self.midnight(range.from), self.midnight(range.to + Duration::days(1)))
    }

    /// WHERE clause: this site, the UTC dates that can hold `[start, end)` (partition pruning)
    /// and the exact instants.
    pub(crate) fn range_sql(&self, q: &mut Sql, start: DateTime<Utc>, end: DateTime<Utc>) -> String {
        self.range_sql_on(q, start, end, "ts")
    }

    /// [`Checked::range_sql`] on the time column `ts`.
    pub(crate) fn range_sql_on(&self, q: &mut Sql, start: DateTime<Utc>, end: DateTime<Utc>, ts: &str) -> String {
        let last = end - Duration::microseconds(1);
        format!(
            "site = {} AND date BETWEEN DATE '{}' AND DATE '{}' AND {ts} >= {} AND {ts} < {}",
            q.bind(self.site.as_str()),
            start.date_naive(),
            last.date_naive(),
            ts_literal(start),
            ts_literal(end)
        )
    }

    /// Whether `session_hours` can stand in for events for a report over `range` with these
    /// filters (and `breakdowns`): every filter and breakdown on a session-level dimension,
    /// every local midnight of the range on a whole UTC hour in a whole-hour offset, and the
    /// session files of every UTC date read (from `history_from`, or the range's start) in step
    /// with its events files. The caller checks what else it needs (its metrics, its events).
    pub(crate) fn session_hours_answer(
        &self,
        data: &DataDir,
        range: DateRange,
        breakdowns: &[&Dimension],
        history_from: Option<NaiveDate>,
    ) -> bool {
        use chrono::Offset;
        let held = |d: &Dimension| matches!(d, Dimension::Column(c) if sessions::DIMENSION_COLUMNS.contains(c));
        if !self.filters.iter().all(|(d, _, _)| held(d)) || !breakdowns.iter().all(|d| held(d)) {
            return false;
        }
        let whole_hours = (0..=range.days()).map(|i| range.from + Duration::days(i)).all(|d| {
            let t = self.midnight(d);
            let offset = self.tz.offset_from_utc_datetime(&t.naive_utc()).fix().local_minus_utc();
            t.timestamp() % 3600 == 0 && offset % 3600 == 0
        });
        if !whole_hours {
            return false;
        }
        let (start, end) = self.bounds(range);
        let last = (end - Duration::microseconds(1)).date_naive();
        let first = history_from.unwrap_or_else(|| start.date_naive());
        match history_from {
            // Every partition of the site up to `last` (listing is cheaper than probing each day).
            Some(_) => data.site_dates(&self.site).is_ok_and(|dates| {
                dates
                    .iter()
                    .filter(|d| (first..=last).contains(*d))
                    .all(|d| sessions::in_step(data, &self.site, *d).unwrap_or(false))
            }),
            None => first
                .iter_days()
                .take_while(|d| *d <= last)
                .all(|d| sessions::in_step(data, &self.site, d).unwrap_or(false)),
        }
    }

    /// The global filters and the segment, as ` AND …` (empty without either).
    pub(crate) fn filters_sql(&self, q: &mut Sql) -> String {
        let mut s = self.event_filters_sql(q);
        if let Some((def, now)) = &self.segment {
            // Checked when it was set; FALSE would only hide a bug, never widen the report.
            let members = segments::members_subquery(q, &self.site, def, *now).unwrap_or_else(|_| "SELECT NULL".into());
            let _ = write!(s, " AND person_id IN ({members})");
        }
        s
    }

    /// The global filters without the segment, as ` AND …`: for rows of people or sessions
    /// already chosen through [`Checked::filters_sql`].
    pub(crate) fn event_filters_sql(&self, q: &mut Sql) -> String {
        self.filters.iter().fold(String::new(), |mut s, (d, op, v)| {
            let _ = write!(s, " AND {}", filter_sql(q, d, *op, v));
            s
        })
    }

    /// Read the site's settings (the first day of its weeks) and restrict the report to a
    /// segment (a definition or a template id), evaluated at `now`.
    pub(crate) fn prepare(&mut self, segment: Option<&serde_json::Value>, env: &Env) -> Result<()> {
        // A store without the site in its registry (a bench or a test store) has ISO weeks.
        if let Ok(sites) = crate::sites::Sites::open(&env.data.sites_file())
            && let Some(site) = sites.get(self.site.as_str())
        {
            self.week_start = site.week_start.weekday();
        }
        let now = env.now_micros;
        let Some(v) = segment else { return Ok(()) };
        let rename = |e: Error| match e {
            Error::Invalid { field, message } => {
                Error::Invalid { field: field.replacen("definition", "segment", 1), message }
            }
            e => e,
        };
        let def = segments::resolve(v, &env.data, &self.site).map_err(rename)?;
        segments::members_sql(&self.site, &def, now).map_err(rename)?;
        self.segment = Some((def, now));
        Ok(())
    }

    /// SQL for the start of the local `period` holding `ts` (a timestamp in the report's time
    /// zone; [`Checked::bucket_of`] reads it back as a local date-time). Formatting is left to
    /// Rust: `to_char` on every row cost more than the rest of a trends query.
    pub(crate) fn bucket_sql(&self, period: Period, ts: &str) -> String {
        let local = self.local_ts_sql(ts);
        match (period, self.week_start) {
            // A Sunday is truncated with the Monday after it, then moved back a day (in the
            // local calendar: a timestamp with a time zone adds days as local days).
            (Period::Week, chrono::Weekday::Sun) => {
                format!("date_trunc('week', {local} + INTERVAL '1 day') - INTERVAL '1 day'")
            }
            _ => format!("date_trunc('{}', {local})", period.trunc_unit()),
        }
    }

    /// The start of the local `period` holding local time `t`, weeks from the site's first day.
    pub(crate) fn period_start(&self, period: Period, t: NaiveDateTime) -> NaiveDateTime {
        match period {
            Period::Week => {
                let d = t.date();
                let back = d.weekday().days_since(self.week_start);
                (d - Duration::days(i64::from(back))).and_hms_opt(0, 0, 0).unwrap_or_default()
            }
            _ => period.start_of(t),
        }
    }

    /// `ts` as a timestamp in the report's time zone.
    pub(crate) fn local_ts_sql(&self, ts: &str) -> String {
        format!("arrow_cast({ts}, 'Timestamp(Microsecond, Some(\"{}\"))')", self.tz.name())
    }

    /// The local date-time of a bucket column made by [`Checked::bucket_sql`].
    pub(crate) fn bucket_of(&self, row: &Cell<'_>, name: &str) -> Option<NaiveDateTime> {
        row.micros(name).and_then(DateTime::from_timestamp_micros).map(|t| self.local(t))
    }

    /// The local start of every `period` that overlaps `range`, in order (never empty).
    pub(crate) fn period_starts(&self, period: Period, range: DateRange) -> Vec<NaiveDateTime> {
        let (start, end) = self.bounds(range);
        let last = self.local(end - Duration::microseconds(1));
        let mut t = self.period_start(period, self.local(start));
        let mut out = Vec::new();
        while t <= last {
            out.push(t);
            t = period.next(t);
        }
        out
    }

    /// The local time a period of `range` must have ended by to be complete: now, or the
    /// range's end if earlier (a range ending on a Wednesday cuts its last week; that week is
    /// partial, not a drop). Lifecycle's periods and trends' points are marked by it.
    pub(crate) fn complete_until(&self, range: DateRange, now: DateTime<Utc>) -> NaiveDateTime {
        self.local(now.min(self.bounds(range).1))
    }

    /// Local date-time of an instant.
    pub(crate) fn local(&self, t: DateTime<Utc>) -> NaiveDateTime {
        t.with_timezone(&self.tz).naive_local()
    }
}

/// A UTC instant as a SQL timestamp literal of the `ts` column's type.
pub(crate) fn ts_literal(t: DateTime<Utc>) -> String {
    format!("arrow_cast({}, 'Timestamp(Microsecond, Some(\"UTC\"))')", t.timestamp_micros())
}

/// Where and how reports run.
#[derive(Clone, Debug)]
pub struct Env {
    pub data: DataDir,
    pub scope: Scope,
    pub limits: QueryLimits,
    /// Now, in microseconds since the epoch (marks incomplete periods).
    pub now_micros: i64,
}

impl Env {
    /// A session for `site`, after checking the scope allows it.
    pub(crate) async fn session(&self, site: &SiteId) -> Result<SessionContext> {
        if !self.scope.allows(site) {
            return Err(Error::Forbidden(site.as_str().to_owned()));
        }
        Ok(query::session(&self.data, &Scope::Sites(vec![site.clone()]), &self.limits).await?)
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.now_micros).unwrap_or_default()
    }
}

/// Plan report SQL with its parameters bound.
pub(crate) async fn plan(ctx: &SessionContext, sql: &str, q: &Sql) -> Result<datafusion::dataframe::DataFrame> {
    let params = ParamValues::List(q.params.iter().map(|p| ScalarValue::Utf8(Some(p.clone())).into()).collect());
    Ok(ctx.sql(sql).await?.with_param_values(params)?)
}

/// Run report SQL with its parameters, under the session's limits.
pub(crate) async fn run(ctx: &SessionContext, sql: &str, q: &Sql, limits: &QueryLimits) -> Result<Vec<RecordBatch>> {
    let df = plan(ctx, sql, q).await?;
    let batches = tokio::time::timeout(limits.timeout, df.collect())
        .await
        .map_err(|_| query::Error::Timeout(limits.timeout))??;
    Ok(batches)
}

/// Read report result columns by name, converting the types SQL produces.
pub(crate) struct Rows<'a> {
    batches: &'a [RecordBatch],
}

impl<'a> Rows<'a> {
    pub(crate) fn new(batches: &'a [RecordBatch]) -> Self {
        Self { batches }
    }

    /// Every row as `f(batch, row)`.
    pub(crate) fn each(&self, mut f: impl FnMut(&Cell<'a>)) {
        for b in self.batches {
            for row in 0..b.num_rows() {
                f(&Cell { batch: b, row });
            }
        }
    }
}

/// One row of a result.
pub(crate) struct Cell<'a> {
    batch: &'a RecordBatch,
    row: usize,
}

impl Cell<'_> {
    fn col(&self, name: &str) -> Option<&dyn Array> {
        let c = self.batch.column_by_name(name)?;
        (!c.is_null(self.row)).then_some(c.as_ref())
    }

    /// Text (or NULL).
    pub(crate) fn text(&self, name: &str) -> Option<String> {
        let c = self.col(name)?;
        match c.data_type() {
            DataType::Utf8 => Some(c.as_string::<i32>().value(self.row).to_owned()),
            DataType::LargeUtf8 => Some(c.as_string::<i64>().value(self.row).to_owned()),
            DataType::Utf8View => Some(c.as_string_view().value(self.row).to_owned()),
            _ => {
                let s = arrow::util::display::array_value_to_string(c, self.row).ok()?;
                Some(s)
            }
        }
    }

    /// A number as f64 (integers, floats, decimals); NULL is `None`. The usual types are read
    /// in place; a cast of a one-row slice per cell cost about a microsecond, seconds over the
    /// million rows of a lifecycle report.
    pub(crate) fn f64(&self, name: &str) -> Option<f64> {
        use arrow::datatypes::{Float64Type, Int64Type, UInt64Type};
        let c = self.col(name)?;
        match c.data_type() {
            DataType::Int64 => return Some(c.as_primitive::<Int64Type>().value(self.row) as f64),
            DataType::UInt64 => return Some(c.as_primitive::<UInt64Type>().value(self.row) as f64),
            DataType::Float64 => return Some(c.as_primitive::<Float64Type>().value(self.row)),
            _ => {}
        }
        let v = arrow::compute::cast(&c.slice(self.row, 1), &DataType::Float64).ok()?;
        let v = v.as_primitive::<arrow::datatypes::Float64Type>();
        (!v.is_null(0)).then(|| v.value(0))
    }

    /// A timestamp's microseconds since the epoch (NULL is `None`).
    pub(crate) fn micros(&self, name: &str) -> Option<i64> {
        use arrow::datatypes::{Int64Type, TimeUnit, TimestampMicrosecondType};
        let c = self.col(name)?;
        match c.data_type() {
            DataType::Timestamp(TimeUnit::Microsecond, _) => {
                return Some(c.as_primitive::<TimestampMicrosecondType>().value(self.row));
            }
            DataType::Int64 => return Some(c.as_primitive::<Int64Type>().value(self.row)),
            _ => {}
        }
        let v = arrow::compute::cast(&c.slice(self.row, 1), &DataType::Int64).ok()?;
        let v = v.as_primitive::<arrow::datatypes::Int64Type>();
        (!v.is_null(0)).then(|| v.value(0))
    }

    /// A count (integers; NULL is 0).
    pub(crate) fn u64(&self, name: &str) -> u64 {
        self.f64(name).map_or(0, |v| v.max(0.0) as u64)
    }
}
