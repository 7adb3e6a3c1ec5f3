//! Reports for marketers: a typed request becomes SQL over `events`, the SQL runs on
//! DataFusion, and the rows become a typed response that also carries the SQL it ran.
//!
//! One file per report ([`trends`], [`funnel`], [`retention`], …), each one entry of
//! [`registry::REPORTS`] (which derives the HTTP route, the CLI and the bench from it). What
//! they share: the request fields and their checks ([`request`]: date range, time zone,
//! dimensions, filters) and the SQL builder that binds every user-given value as a parameter
//! (`$1`, `$2`, …) instead of pasting it into the text ([`sql`]). Requests are checked before any SQL is built; a bad one is a [`Error::Invalid`]
//! naming the field.
//!
//! Reports count **people** (`events.person_id`, resolved once through the identity map): a
//! visitor linked to a user by `identify` counts as that user, on every device and before the
//! login.

pub mod attribution;
pub mod catalog;
pub mod ecommerce;
pub mod engagement;
pub mod experiment;
pub mod funnel;
pub mod heatmap;
pub mod lifecycle;
pub mod paths;
pub mod predictions;
pub mod registry;
pub mod retention;
pub mod segments;
pub mod text;
pub mod trends;

use crate::query;

mod request;
mod sql;

pub use self::request::*;
pub use self::sql::*;

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

/// How far past the range's end a session under way at the end is still read: one rule for
/// paths, e-commerce's per-session figures and session funnels (docs/reports.md, "Sessions at
/// the range's edges"). A session is in a range by an event there and is then followed to its
/// end, so a purchase at 00:05 closes the cart of 23:55 the evening before in every report.
pub const SESSION_TAIL: chrono::TimeDelta = chrono::TimeDelta::days(1);

/// A request error at `field`.
pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Invalid { field: field.into(), message: message.into() }
}

/// `part` of `whole` in percent, rounded to 2 decimals; 0 when `whole` is 0.
pub fn percent(part: f64, whole: f64) -> f64 {
    if whole > 0.0 { round2(100.0 * part / whole) } else { 0.0 }
}

/// Round to 2 decimals (what responses show).
pub fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// Round to 4 decimals (probabilities, as responses show them).
pub fn round4(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SiteId;
    use chrono::{NaiveDate, NaiveDateTime};
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
            week_start: chrono::Weekday::Mon,
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
