//! Reports for marketers: a typed request becomes SQL over `person_events`, the SQL runs on
//! DataFusion, and the rows become a typed response that also carries the SQL it ran.
//!
//! One file per report ([`trends`], [`funnel`], [`retention`]). What they share lives here:
//! the date range and its time zone, the allow-list of dimensions, filters, and the SQL builder
//! that binds every user-given value as a parameter (`$1`, `$2`, …) instead of pasting it into
//! the text. Requests are checked before any SQL is built; a bad one is a [`Error::Invalid`]
//! naming the field.
//!
//! Reports count **people** (`person_events.person_id`): a visitor linked to a user by
//! `identify` counts as that user, on every device and before the login.

pub mod attribution;
pub mod ecommerce;
pub mod experiment;
pub mod funnel;
pub mod lifecycle;
pub mod paths;
pub mod registry;
pub mod retention;
pub mod segments;
pub mod text;
pub mod trends;

use std::fmt::Write as _;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::DataType;
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use datafusion::common::ParamValues;
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use serde::{Deserialize, Serialize};

use crate::model::SiteId;
use crate::query::{self, QueryLimits, Scope};
use crate::store::paths::DataDir;

/// Longest date range a report accepts, in days.
pub const MAX_RANGE_DAYS: i64 = 3 * 366;
/// Most filters in one list (a request's, a step's, a segment condition's).
pub const MAX_FILTERS: usize = 20;
/// Most values one filter compares with. Each value is a term of the SQL the report plans, and
/// 2,500 of them once overflowed the planner's stack; PostHog and Plausible pickers offer far fewer.
pub const MAX_FILTER_VALUES: usize = 100;

/// Check a list of filters' size and values' count; `field` prefixes error paths.
pub(crate) fn check_filter_sizes(filters: &[Filter], field: &str) -> Result<()> {
    if filters.len() > MAX_FILTERS {
        return Err(invalid(field, format!("at most {MAX_FILTERS} filters")));
    }
    for (i, f) in filters.iter().enumerate() {
        if f.values.is_empty() {
            return Err(invalid(format!("{field}[{i}].values"), "give at least one value"));
        }
        check_value_count(&f.values, &format!("{field}[{i}].values"))?;
    }
    Ok(())
}

/// Refuse more than [`MAX_FILTER_VALUES`] values at `field` (a filter's, a segment condition's).
pub(crate) fn check_value_count(values: &[String], field: &str) -> Result<()> {
    if values.len() > MAX_FILTER_VALUES {
        return Err(invalid(field, format!("at most {MAX_FILTER_VALUES} values (got {})", values.len())));
    }
    Ok(())
}

/// Report errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is not valid; `field` names the offending part (JSON-pointer-like path).
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// The key in use may not read this site.
    #[error("this key may not read site {0:?}")]
    Forbidden(String),
    #[error(transparent)]
    Query(#[from] query::Error),
}

/// `Result` with the report [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<crate::saved_segments::Error> for Error {
    fn from(e: crate::saved_segments::Error) -> Self {
        match e {
            crate::saved_segments::Error::Invalid { field, message } => Self::Invalid { field: field.into(), message },
            crate::saved_segments::Error::Io(m) => Self::Query(query::Error::DataFusion(
                datafusion::error::DataFusionError::Execution(format!("segments.json: {m}")),
            )),
        }
    }
}

impl From<datafusion::error::DataFusionError> for Error {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        Self::Query(query::Error::DataFusion(e))
    }
}

/// Parse a JSON report request; an error names the field it is about.
pub fn parse_request<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { String::new() } else { path };
        invalid(field, e.into_inner().to_string())
    })
}

/// A request error at `field`.
pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Invalid { field: field.into(), message: message.into() }
}

/// Calendar dates in the report's time zone, both inclusive.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DateRange {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl DateRange {
    /// Number of days, both ends counted.
    pub fn days(&self) -> i64 {
        (self.to - self.from).num_days() + 1
    }

    /// The range of the same length that ends the day before this one starts.
    pub fn previous(&self) -> Self {
        let len = Duration::days(self.days());
        Self { from: self.from - len, to: self.to - len }
    }

    fn check(&self) -> Result<()> {
        if self.to < self.from {
            return Err(invalid("date_range", "`to` is before `from`"));
        }
        if self.days() > MAX_RANGE_DAYS {
            return Err(invalid("date_range", format!("at most {MAX_RANGE_DAYS} days")));
        }
        Ok(())
    }
}

/// The default time zone.
pub(crate) fn utc() -> String {
    "UTC".into()
}

/// [`check_common`]'s result: the fields every report request has, checked.
#[derive(Clone, Debug)]
pub(crate) struct Checked {
    pub site: SiteId,
    pub tz: Tz,
    pub filters: Vec<(Dimension, FilterOp, Vec<String>)>,
    /// Only the members of this segment, evaluated at this time (microseconds).
    pub segment: Option<(segments::Condition, i64)>,
}

/// Check the fields every report request has (repeated in each request type: serde cannot
/// both flatten and refuse unknown fields) and its optional breakdown.
pub(crate) fn check_common(
    site: &str,
    date_range: DateRange,
    timezone: &str,
    filters: &[Filter],
    breakdown: Option<&str>,
) -> Result<(Checked, Option<Dimension>)> {
    let site = SiteId::parse(site).map_err(|e| invalid("site", e.to_string()))?;
    date_range.check()?;
    let tz: Tz = timezone
        .parse()
        .map_err(|_| invalid("timezone", format!("unknown time zone {timezone:?}; use an IANA name")))?;
    check_filter_sizes(filters, "filters")?;
    let mut checked = Vec::with_capacity(filters.len());
    for (i, f) in filters.iter().enumerate() {
        let dim = Dimension::parse(&f.dimension).map_err(|m| invalid(format!("filters[{i}].dimension"), m))?;
        checked.push((dim, f.op, f.values.clone()));
    }
    let breakdown = breakdown.map(Dimension::parse).transpose().map_err(|m| invalid("breakdown", m))?;
    Ok((Checked { site, tz, filters: checked, segment: None }, breakdown))
}

/// One filter: `dimension op any of values`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    pub dimension: String,
    #[serde(default)]
    pub op: FilterOp,
    pub values: Vec<String>,
}

/// How a filter compares.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FilterOp {
    /// Equal to one of the values.
    #[default]
    Is,
    /// Equal to none of the values (events without the dimension count as "not").
    IsNot,
    /// Contains one of the values.
    Contains,
    /// Contains none of the values.
    NotContains,
}

/// What reports break down and filter by: an allow-list of event columns, plus custom props.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dimension {
    Column(&'static str),
    Prop(String),
    /// The path of the session's first pageview (`entry_page`).
    EntryPage,
}

/// Dimension names accepted in requests, and the column each reads.
pub const DIMENSIONS: [(&str, &str); 19] = [
    ("event", "name"),
    ("page", "path"),
    ("hostname", "hostname"),
    ("referrer", "referrer"),
    ("source", "source"),
    ("medium", "medium"),
    ("campaign", "campaign"),
    ("term", "term"),
    ("content", "content"),
    ("channel", "channel"),
    ("country", "country"),
    ("region", "region"),
    ("city", "city"),
    ("device", "device"),
    ("browser", "browser"),
    ("browser_version", "browser_version"),
    ("os", "os"),
    ("os_version", "os_version"),
    ("currency", "currency"),
];

impl Dimension {
    /// `page`, `source`, … or `prop:<key>` for a custom property.
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        if s == "entry_page" {
            return Ok(Self::EntryPage);
        }
        if let Some(key) = s.strip_prefix("prop:") {
            if key.is_empty() {
                return Err("`prop:` needs a property name, e.g. `prop:plan`".into());
            }
            return Ok(Self::Prop(key.to_owned()));
        }
        DIMENSIONS.iter().find(|(name, _)| *name == s).map(|(_, col)| Self::Column(col)).ok_or_else(|| {
            let known: Vec<&str> = DIMENSIONS.iter().map(|(n, _)| *n).collect();
            format!("unknown dimension {s:?}; use one of {}, entry_page or prop:<name>", known.join(", "))
        })
    }

    /// The SQL expression reading this dimension (`alias.` prefixed when given). For
    /// `entry_page` it is a window over the rows the query selects, so only trends (which select
    /// every event of a session in the range) may break down by it; see [`Self::session_level`].
    pub(crate) fn sql(&self, q: &mut Sql, alias: &str) -> String {
        match self {
            Self::Column(c) => format!("{alias}{c}"),
            Self::Prop(k) => format!("{alias}props[{}]", q.bind(k)),
            Self::EntryPage => format!(
                "first_value({alias}path) OVER (PARTITION BY {alias}session_id ORDER BY {alias}name <> 'pageview', {alias}ts)"
            ),
        }
    }

    /// Whether this is a session's property rather than an event's (not a funnel or retention
    /// breakdown, which read one event per person).
    pub(crate) fn session_level(&self) -> bool {
        matches!(self, Self::EntryPage)
    }
}

/// An event name with property filters: one funnel step, a retention event, a goal.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EventMatch {
    pub event: String,
    #[serde(default)]
    pub filters: Vec<Filter>,
}

impl EventMatch {
    /// The boolean SQL condition for this match; `field` prefixes error paths.
    pub(crate) fn condition(&self, q: &mut Sql, field: &str) -> Result<String> {
        if self.event.is_empty() {
            return Err(invalid(format!("{field}.event"), "give an event name"));
        }
        check_filter_sizes(&self.filters, &format!("{field}.filters"))?;
        let mut cond = format!("name = {}", q.bind(&self.event));
        for (i, f) in self.filters.iter().enumerate() {
            let dim =
                Dimension::parse(&f.dimension).map_err(|m| invalid(format!("{field}.filters[{i}].dimension"), m))?;
            let _ = write!(cond, " AND {}", filter_sql(q, &dim, f.op, &f.values));
        }
        Ok(format!("({cond})"))
    }
}

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

/// One segment's answer when segments are compared side by side.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BySegment<T> {
    pub segment: serde_json::Value,
    pub report: T,
}

/// Check `compare_segments`: none, or 2 to 4.
pub(crate) fn check_compare(segments: &[serde_json::Value]) -> Result<()> {
    if segments.len() == 1 || segments.len() > 4 {
        return Err(invalid("compare_segments", "give 2 to 4 segments to compare (or none)"));
    }
    Ok(())
}

/// Name a segment's error after its place in `compare_segments`.
pub(crate) fn in_compare(i: usize) -> impl Fn(Error) -> Error {
    move |e| match e {
        Error::Invalid { field, message } => {
            Error::Invalid { field: field.replacen("segment", &format!("compare_segments[{i}]"), 1), message }
        }
        e => e,
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

/// Period lengths for intervals and retention.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Hour,
    Day,
    Week,
    Month,
}

impl Period {
    fn trunc_unit(self) -> &'static str {
        match self {
            Self::Hour => "hour",
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
        }
    }

    /// Start of the period holding local time `t` (weeks start on Monday, as ISO weeks do).
    pub fn start_of(self, t: NaiveDateTime) -> NaiveDateTime {
        let d = t.date();
        let day = |d: NaiveDate| d.and_hms_opt(0, 0, 0).unwrap_or_default();
        match self {
            Self::Hour => d.and_hms_opt(t.hour(), 0, 0).unwrap_or_default(),
            Self::Day => day(d),
            Self::Week => day(d - Duration::days(i64::from(d.weekday().num_days_from_monday()))),
            Self::Month => day(d.with_day(1).unwrap_or(d)),
        }
    }

    /// The period after the one starting at `t`.
    pub fn next(self, t: NaiveDateTime) -> NaiveDateTime {
        match self {
            Self::Hour => t + Duration::hours(1),
            Self::Day => t + Duration::days(1),
            Self::Week => t + Duration::days(7),
            Self::Month => t.checked_add_months(chrono::Months::new(1)).unwrap_or(t),
        }
    }

    /// Whole periods from the period starting at `a` to the one starting at `b`.
    pub fn between(self, a: NaiveDateTime, b: NaiveDateTime) -> i64 {
        match self {
            Self::Hour => (b - a).num_hours(),
            Self::Day => (b.date() - a.date()).num_days(),
            Self::Week => (b.date() - a.date()).num_days().div_euclid(7),
            Self::Month => i64::from(b.year() - a.year()) * 12 + i64::from(b.month()) - i64::from(a.month()),
        }
    }

    /// How a period start is written in responses.
    pub fn label(self, t: NaiveDateTime) -> String {
        match self {
            Self::Hour => t.format("%Y-%m-%dT%H:00").to_string(),
            Self::Day | Self::Week | Self::Month => t.format("%Y-%m-%d").to_string(),
        }
    }
}

impl Checked {
    /// The UTC instant of local midnight starting `d` (the earliest, across a DST change).
    pub(crate) fn midnight(&self, d: NaiveDate) -> DateTime<Utc> {
        let local = d.and_hms_opt(0, 0, 0).unwrap_or_default();
        self.tz.from_local_datetime(&local).earliest().map_or_else(
            // Midnight skipped by a DST jump: the first instant of that day.
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
        let last = end - Duration::microseconds(1);
        format!(
            "site = {} AND date BETWEEN DATE '{}' AND DATE '{}' AND ts >= {} AND ts < {}",
            q.bind(self.site.as_str()),
            start.date_naive(),
            last.date_naive(),
            ts_literal(start),
            ts_literal(end)
        )
    }

    /// The global filters and the segment, as ` AND …` (empty without either).
    pub(crate) fn filters_sql(&self, q: &mut Sql) -> String {
        let mut s = self.filters.iter().fold(String::new(), |mut s, (d, op, v)| {
            let _ = write!(s, " AND {}", filter_sql(q, d, *op, v));
            s
        });
        if let Some((def, now)) = &self.segment {
            // Checked when it was set; FALSE would only hide a bug, never widen the report.
            let members = segments::members_subquery(q, &self.site, def, *now).unwrap_or_else(|_| "SELECT NULL".into());
            let _ = write!(s, " AND person_id IN ({members})");
        }
        s
    }

    /// Restrict the report to a segment (a definition or a template id), evaluated at `now`.
    pub(crate) fn set_segment(&mut self, segment: Option<&serde_json::Value>, env: &Env) -> Result<()> {
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
        format!("date_trunc('{}', {})", period.trunc_unit(), self.local_ts_sql(ts))
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
        let mut t = period.start_of(self.local(start));
        let mut out = Vec::new();
        while t <= last {
            out.push(t);
            t = period.next(t);
        }
        out
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

    /// A number as f64 (integers, floats, decimals); NULL is `None`.
    pub(crate) fn f64(&self, name: &str) -> Option<f64> {
        let c = self.col(name)?;
        let v = arrow::compute::cast(&c.slice(self.row, 1), &DataType::Float64).ok()?;
        let v = v.as_primitive::<arrow::datatypes::Float64Type>();
        (!v.is_null(0)).then(|| v.value(0))
    }

    /// A timestamp's microseconds since the epoch (NULL is `None`).
    pub(crate) fn micros(&self, name: &str) -> Option<i64> {
        let c = self.col(name)?;
        let v = arrow::compute::cast(&c.slice(self.row, 1), &DataType::Int64).ok()?;
        let v = v.as_primitive::<arrow::datatypes::Int64Type>();
        (!v.is_null(0)).then(|| v.value(0))
    }

    /// A count (integers; NULL is 0).
    pub(crate) fn u64(&self, name: &str) -> u64 {
        self.f64(name).map_or(0, |v| v.max(0.0) as u64)
    }
}

/// `part` of `whole` in percent, rounded to 2 decimals; 0 when `whole` is 0.
pub fn percent(part: f64, whole: f64) -> f64 {
    if whole > 0.0 { round2(100.0 * part / whole) } else { 0.0 }
}

/// Round to 2 decimals (what responses show).
pub fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("page", Dimension::Column("path"))]
    #[case("channel", Dimension::Column("channel"))]
    #[case("prop:plan", Dimension::Prop("plan".into()))]
    fn dimensions(#[case] name: &str, #[case] want: Dimension) {
        assert_eq!(Dimension::parse(name), Ok(want));
    }

    #[rstest]
    #[case("nope")]
    #[case("prop:")]
    #[case("path")]
    fn unknown_dimensions(#[case] name: &str) {
        assert!(Dimension::parse(name).is_err());
    }

    fn dt(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").expect("datetime")
    }

    #[rstest]
    #[case(Period::Hour, "2026-03-04 10:59", "2026-03-04 10:00")]
    #[case(Period::Day, "2026-03-04 10:59", "2026-03-04 00:00")]
    #[case(Period::Week, "2026-03-04 10:59", "2026-03-02 00:00")] // a Wednesday → Monday
    #[case(Period::Week, "2026-03-02 00:00", "2026-03-02 00:00")]
    #[case(Period::Month, "2026-03-31 23:59", "2026-03-01 00:00")]
    fn period_starts(#[case] p: Period, #[case] t: &str, #[case] want: &str) {
        assert_eq!(p.start_of(dt(t)), dt(want));
    }

    #[rstest]
    #[case(Period::Day, "2026-01-30 00:00", "2026-02-02 00:00", 3)]
    #[case(Period::Week, "2026-01-05 00:00", "2026-02-02 00:00", 4)]
    #[case(Period::Month, "2025-11-01 00:00", "2026-02-01 00:00", 3)]
    #[case(Period::Hour, "2026-01-01 22:00", "2026-01-02 01:00", 3)]
    fn periods_between(#[case] p: Period, #[case] a: &str, #[case] b: &str, #[case] n: i64) {
        assert_eq!(p.between(dt(a), dt(b)), n);
    }

    #[test]
    fn local_midnight_in_a_time_zone() {
        let c = Checked {
            site: SiteId::parse("s").expect("site"),
            tz: "Europe/Berlin".parse().expect("tz"),
            filters: vec![],
            segment: None,
        };
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");
        // Winter: UTC+1; summer: UTC+2.
        assert_eq!(c.midnight(d("2026-01-10")).to_rfc3339(), "2026-01-09T23:00:00+00:00");
        assert_eq!(c.midnight(d("2026-07-10")).to_rfc3339(), "2026-07-09T22:00:00+00:00");
    }

    #[test]
    fn previous_period_has_the_same_length() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");
        let r = DateRange { from: d("2026-01-08"), to: d("2026-01-14") };
        assert_eq!(r.previous(), DateRange { from: d("2026-01-01"), to: d("2026-01-07") });
    }

    #[test]
    fn filters_bind_values() {
        let mut q = Sql::default();
        let s = filter_sql(&mut q, &Dimension::Prop("plan".into()), FilterOp::IsNot, &["a'b".into(), "c".into()]);
        assert_eq!(s, "NOT coalesce(props[$1] = $2 OR props[$1] = $3, false)");
        assert_eq!(q.params, vec!["plan", "a'b", "c"]);
    }
}
