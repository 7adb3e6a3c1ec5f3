//! What every report request shares: limits, the date range and its time zone, filters and
//! the dimensions they read, event matches, periods, and segment comparison.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, Timelike};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use std::fmt::Write as _;

use super::{Error, Result, Sql, filter_sql, invalid, segments};
use crate::model::SiteId;
use crate::model::schema::column_dimensions;

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

/// Calendar dates in the report's time zone, both inclusive.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, utoipa::ToSchema)]
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
    /// The first day of the site's weeks ([`Checked::prepare`] reads it from the site).
    pub week_start: chrono::Weekday,
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
    let breakdown = breakdown.map(Dimension::parse_breakdown).transpose().map_err(|m| invalid("breakdown", m))?;
    Ok((Checked { site, tz, filters: checked, segment: None, week_start: chrono::Weekday::Mon }, breakdown))
}

/// One filter: `dimension op any of values`.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    pub dimension: String,
    #[serde(default)]
    pub op: FilterOp,
    pub values: Vec<String>,
}

/// How a filter compares.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq, utoipa::ToSchema)]
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

/// What reports break down and filter by: an allow-list of event columns (the dimensions of the
/// column catalogue, `model::schema::COLUMNS`), `entry_page`, custom props, and the product
/// and category of an event's items (filters only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dimension {
    Column(&'static str),
    Prop(String),
    /// The path of the session's first pageview (`entry_page`).
    EntryPage,
    /// A field of the event's `items` (`product`: `id`, `category`): an event matches when any
    /// of its items does. Filters only: an event with three products has no one value to break
    /// down by (the e-commerce report lists products).
    Item(&'static str),
}

/// The item dimensions: (name, field of `items`, label).
pub const ITEM_DIMENSIONS: [(&str, &str, &str); 2] =
    [("product", "id", "Product"), ("category", "category", "Category")];

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
        if let Some((_, field, _)) = ITEM_DIMENSIONS.iter().find(|(name, _, _)| *name == s) {
            return Ok(Self::Item(field));
        }
        column_dimensions().find(|(name, _, _)| *name == s).map(|(_, col, _)| Self::Column(col)).ok_or_else(|| {
            let known: Vec<&str> = column_dimensions().map(|(n, _, _)| n).collect();
            format!(
                "unknown dimension {s:?}; use one of {}, entry_page, product, category or prop:<name>",
                known.join(", ")
            )
        })
    }

    /// A dimension to break down (or attribute, or take a first touch) by: any but the item
    /// dimensions, which only filter.
    pub fn parse_breakdown(s: &str) -> std::result::Result<Self, String> {
        match Self::parse(s)? {
            Self::Item(_) => Err(format!(
                "{s} only filters (an event may hold several products); the e-commerce report lists products and categories"
            )),
            d => Ok(d),
        }
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
            // No one value: `parse_breakdown` keeps item dimensions out of every place that reads
            // a dimension's value; filters test them with `footfall_items_match` instead.
            Self::Item(_) => "CAST(NULL AS VARCHAR)".to_owned(),
        }
    }

    /// Whether this is a session's property rather than an event's (not a funnel or retention
    /// breakdown, which read one event per person).
    pub(crate) fn session_level(&self) -> bool {
        matches!(self, Self::EntryPage)
    }
}

/// An event name with property filters: one funnel step, a retention event, a goal.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventMatch {
    /// An event name, or [`ANY_EVENT`].
    pub event: String,
    #[serde(default)]
    pub filters: Vec<Filter>,
}

/// The event name that matches any event but footfall's own `$` events (`$engagement`,
/// `$exposure`), PostHog's "All events".
pub const ANY_EVENT: &str = "*";

/// How an event name reads on screen.
pub(crate) fn event_label(event: &str) -> &str {
    if event == ANY_EVENT { "any event" } else { event }
}

impl EventMatch {
    /// The boolean SQL condition for this match; `field` prefixes error paths.
    pub(crate) fn condition(&self, q: &mut Sql, field: &str) -> Result<String> {
        if self.event.is_empty() {
            return Err(invalid(format!("{field}.event"), "give an event name"));
        }
        check_filter_sizes(&self.filters, &format!("{field}.filters"))?;
        let mut cond = match self.event.as_str() {
            ANY_EVENT => "name NOT LIKE '$%'".to_owned(),
            name => format!("name = {}", q.bind(name)),
        };
        for (i, f) in self.filters.iter().enumerate() {
            let dim =
                Dimension::parse(&f.dimension).map_err(|m| invalid(format!("{field}.filters[{i}].dimension"), m))?;
            let _ = write!(cond, " AND {}", filter_sql(q, &dim, f.op, &f.values));
        }
        Ok(format!("({cond})"))
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

/// Period lengths for intervals and retention.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Hour,
    Day,
    Week,
    Month,
}

impl Period {
    pub(crate) fn trunc_unit(self) -> &'static str {
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
