//! Every report in one list. The HTTP route (`POST /api/reports/{name}`), the command line
//! (`footfall report <name>`), its text tables and the query bench (`report_<name>`) are all
//! derived from [`REPORTS`]: a new report is one entry here (and its module).

use std::future::Future;
use std::pin::Pin;

use chrono::NaiveDate;
use serde_json::{Value, json};

use super::{Env, RanSql, Result, text};

/// A report's answer, kept typed until a surface asks for it in its own form (so the HTTP
/// route does not also render text tables, nor the command line compact JSON).
pub trait Answer: Send {
    /// The JSON the HTTP API answers (fields in the response type's order), or indented.
    fn json(&self, pretty: bool) -> serde_json::Result<String>;
    /// The answer as a JSON value (what the bench summarises).
    fn value(&self) -> serde_json::Result<Value>;
    /// Text tables for `footfall report`, and the SQL the report ran with its parameters.
    fn text(&self) -> (String, Vec<RanSql>);
}

/// A report's answer.
pub type Ran = Box<dyn Answer>;

/// A typed response and its text renderer.
struct Typed<T> {
    r: T,
    text: fn(&T) -> (String, Vec<RanSql>),
}

impl<T: serde::Serialize + Send> Answer for Typed<T> {
    fn json(&self, pretty: bool) -> serde_json::Result<String> {
        if pretty { serde_json::to_string_pretty(&self.r) } else { serde_json::to_string(&self.r) }
    }
    fn value(&self) -> serde_json::Result<Value> {
        serde_json::to_value(&self.r)
    }
    fn text(&self) -> (String, Vec<RanSql>) {
        (self.text)(&self.r)
    }
}

type Running = Pin<Box<dyn Future<Output = Result<Ran>> + Send>>;

/// One report.
pub struct ReportDef {
    /// Its name in the route, the command line and the bench (`report_<name>`).
    pub name: &'static str,
    /// Parse a JSON request (a bad one is [`super::Error::Invalid`] naming the field) and run it.
    pub run: fn(Env, Vec<u8>) -> Running,
    /// The bench's request fields (besides `site` and `date_range`) and the part of the
    /// answer it prints, to compare runs.
    pub bench: Option<Bench>,
}

/// How the query bench runs a report over the generated weeks `start..=end`.
pub struct Bench {
    /// Fields merged over `{"site", "date_range"}` (a `date_range` here replaces the weeks').
    pub request: fn(NaiveDate, NaiveDate) -> Value,
    pub summary: fn(&Value) -> Value,
}

/// A bench request: `{"site", "date_range"}` over `start..=end` with `extra`'s fields merged over
/// it; a null field is one the report does not take (`date_range` of predictions).
pub fn bench_request(site: &str, start: NaiveDate, end: NaiveDate, extra: &Value) -> Value {
    let mut v = json!({"site": site, "date_range": {"from": start, "to": end}});
    for (k, x) in extra.as_object().into_iter().flatten() {
        match (x.is_null(), v.as_object_mut()) {
            (true, Some(o)) => drop(o.remove(k)),
            _ => v[k] = x.clone(),
        }
    }
    v
}

macro_rules! report {
    ($name:literal, $module:ident :: $f:ident, $text:path, $bench:expr) => {
        ReportDef {
            name: $name,
            run: |env, body| {
                Box::pin(async move {
                    let req = super::parse_request(&body)?;
                    let r = super::$module::$f(&env, &req).await?;
                    Ok(Box::new(Typed { r, text: $text }) as Ran)
                })
            },
            bench: $bench,
        }
    };
}

fn at(v: &Value, path: &str) -> Value {
    v.pointer(path).cloned().unwrap_or(Value::Null)
}

fn each(v: &Value, list: &str, f: impl Fn(&Value) -> Value) -> Value {
    Value::Array(v.pointer(list).and_then(Value::as_array).map(|a| a.iter().map(f).collect()).unwrap_or_default())
}

/// Every report.
pub static REPORTS: [ReportDef; 14] = [
    report!(
        "trends",
        trends::trends,
        text::trends,
        // The dashboard's overview: every default metric per day (`trends_by_channel` in the
        // bench is the same by channel).
        Some(Bench {
            request: |_, _| json!({"interval": "day"}),
            summary: |r| each(r, "/results", |b| json!([
                at(b, "/value"),
                at(b, "/totals/visitors"),
                at(b, "/totals/sessions")
            ])),
        })
    ),
    report!(
        "funnel",
        funnel::funnel,
        text::funnel,
        Some(Bench {
            request: |_, _| json!({"steps": [{"event": "product_view"}, {"event": "add_to_cart"}, {"event": "checkout_start"}, {"event": "purchase"}],
                               "window": {"value": 1, "unit": "day"}, "people_limit": 0}),
            summary: |r| each(r, "/steps", |s| at(s, "/count")),
        })
    ),
    report!(
        "retention",
        retention::retention,
        text::retention,
        Some(Bench {
            // Cohorts of the first week only, as the SQL retention the bench compares with.
            request: |start, _| json!({"period": "week", "periods": 8,
                                   "date_range": {"from": start, "to": start + chrono::Duration::days(6)}}),
            summary: |r| each(r, "/cohorts", |c| each(c, "/values", |v| at(v, "/people"))),
        })
    ),
    report!(
        "experiment",
        experiment::experiment,
        text::experiment,
        Some(Bench {
            request: |_, _| json!({"experiment": "checkout-button"}),
            summary: |r| json!({"verdict": at(r, "/verdict"),
                            "people": each(r, "/variants", |v| json!([at(v, "/variant"), at(v, "/people"), at(v, "/converted")]))}),
        })
    ),
    report!(
        "lifecycle",
        lifecycle::lifecycle,
        text::lifecycle,
        Some(Bench {
            request: |_, _| json!({"period": "week"}),
            summary: |r| each(r, "/periods", |p| json!([
                at(p, "/new"),
                at(p, "/returning"),
                at(p, "/resurrecting"),
                at(p, "/dormant")
            ])),
        })
    ),
    report!(
        "attribution",
        attribution::attribution,
        text::attribution,
        Some(Bench {
            request: |_, _| json!({"dimension": "channel"}),
            summary: |r| json!({"conversions": at(r, "/conversions"),
                            "position_based": each(r, "/models/position_based", |c| json!([at(c, "/value"), at(c, "/conversions")]))}),
        })
    ),
    report!(
        "ecommerce",
        ecommerce::ecommerce,
        text::ecommerce,
        Some(Bench {
            request: |_, _| json!({}),
            summary: |r| json!({"revenue": at(r, "/totals/revenue"), "orders": at(r, "/totals/orders"),
                            "products": r.pointer("/products").and_then(Value::as_array).map_or(0, Vec::len)}),
        })
    ),
    report!(
        "engagement",
        engagement::engagement,
        text::engagement,
        Some(Bench {
            request: |_, _| json!({}),
            summary: |r| json!({"views": at(r, "/totals/views"), "reached_50": at(r, "/totals/reached_50")}),
        })
    ),
    report!(
        "heatmap",
        heatmap::heatmap,
        text::heatmap,
        Some(Bench {
            request: |_, _| json!({}),
            summary: |r| json!({"page": at(r, "/page"), "clicks": at(r, "/totals/clicks"),
                            "rage": at(r, "/totals/rage_clicks"), "dead": at(r, "/totals/dead_clicks"),
                            "cells": r.pointer("/grid/cells").and_then(Value::as_array).map_or(0, Vec::len),
                            "views": at(r, "/scroll/views"), "reached_50": at(r, "/scroll/bands/4/share")}),
        })
    ),
    report!(
        "paths",
        paths::paths,
        text::paths,
        Some(Bench {
            request: |_, _| json!({"start": {"event": "add_to_cart"}, "steps": 3}),
            summary: |r| json!({"sessions": at(r, "/root/sessions"),
                            "next": each(r, "/root/children", |c| json!([at(c, "/label"), at(c, "/sessions")]))}),
        })
    ),
    report!("segment", segments::segment, text::segment, None),
    report!(
        "predictions",
        predictions::predictions,
        super::predictions::text,
        Some(Bench {
            request: |_, _| json!({"date_range": null}),
            summary: |r| json!({"people": at(r, "/counts/people"), "at_risk": at(r, "/counts/at_risk"),
                            "auc": at(r, "/model/propensity/auc")}),
        })
    ),
    report!(
        "affinities",
        predictions::affinities,
        super::predictions::affinities_text,
        Some(Bench {
            request: |_, _| json!({"date_range": null}),
            summary: |r| json!({"orders": at(r, "/orders"),
                            "pairs": r.pointer("/bought_together").and_then(Value::as_array).map_or(0, Vec::len)}),
        })
    ),
    report!(
        "catalog",
        catalog::catalog,
        text::catalog,
        Some(Bench {
            request: |_, _| json!({}),
            summary: |r| json!({"events": r.pointer("/events").and_then(Value::as_array).map_or(0, Vec::len),
                            "properties": r.pointer("/properties").and_then(Value::as_array).map_or(0, Vec::len)}),
        })
    ),
];

/// The report called `name`.
pub fn find(name: &str) -> Option<&'static ReportDef> {
    REPORTS.iter().find(|r| r.name == name)
}

/// The names of every report, for messages and the command line.
pub fn names() -> Vec<&'static str> {
    REPORTS.iter().map(|r| r.name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_found() {
        let mut n = names();
        n.sort_unstable();
        n.dedup();
        assert_eq!(n.len(), REPORTS.len());
        assert!(n.iter().all(|name| find(name).is_some_and(|r| r.name == *name)));
        assert!(find("nope").is_none());
    }
}
