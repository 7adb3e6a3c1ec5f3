//! `footfall bench`: generate a shop's traffic into a store, and time the query engine on it.
//!
//! `bench gen` writes [`crate::shopgen`] days straight to Parquet (no WAL, no HTTP).
//! `bench query` runs one named query several times and prints one JSON line: the median and
//! every run's seconds, the result rows, and the process's peak RSS (run one query per process
//! for a per-query peak, as `bench/query.sh` does).

use std::time::Instant;

use chrono::{Duration, NaiveDate};
use serde_json::{Value, json};

use crate::query::{self, QueryLimits, Scope};
use crate::reports::{self, Env};
use crate::shopgen::ShopConfig;
use crate::store::{flush_events, paths::DataDir};
use crate::wal::SegmentHeader;

/// Most events handed to one Parquet write (bounds the generator's memory).
const CHUNK: usize = 1_000_000;

/// Generate `cfg` into `data`; returns the number of events written.
pub fn generate(data: &DataDir, cfg: &ShopConfig, progress: impl FnMut(u32, usize)) -> anyhow::Result<usize> {
    generate_until(data, cfg, i64::MAX, progress)
}

/// [`generate`], leaving out events after `until` (microseconds since the epoch).
pub fn generate_until(
    data: &DataDir,
    cfg: &ShopConfig,
    until: i64,
    mut progress: impl FnMut(u32, usize),
) -> anyhow::Result<usize> {
    let mut written = 0;
    let mut seq = 0u64;
    for day in 0..cfg.days {
        let mut events = cfg.day(day);
        events.retain(|e| e.ts <= until);
        while !events.is_empty() {
            let rest = events.split_off(events.len().min(CHUNK));
            seq += 1;
            // A distinct (created, seq) per chunk names distinct files.
            written += flush_events(data, SegmentHeader { created_ms: cfg.seed, seq }, events)?;
            events = rest;
        }
        progress(day, written);
    }
    Ok(written)
}

/// The SQL-level queries `bench query` knows; besides them, `report_<name>` for every report
/// of [`reports::registry::REPORTS`] with a bench entry, `report_trends_by_channel`,
/// `report_trends_tables` (the dashboard's eight top-N tables in one `breakdowns` request), and
/// `segment_<template>`.
pub const SQL_QUERIES: [&str; 9] = [
    "bare_scan",
    "funnel_sql",
    "retention_sql",
    "trends_sql",
    "funnel3_sql",
    "sequence_sql",
    "sequence_count_sql",
    "sequence_events_sql",
    "visitors_sql",
];

/// Every query `bench query` knows.
pub fn queries() -> Vec<String> {
    let reports = reports::registry::REPORTS.iter().filter(|r| r.bench.is_some()).map(|r| format!("report_{}", r.name));
    SQL_QUERIES
        .iter()
        .map(|q| (*q).to_owned())
        .chain(reports)
        .chain([
            "report_trends_by_channel".to_owned(),
            "report_trends_tables".to_owned(),
            "segment_viewed_not_bought".to_owned(),
            "segment_vip".to_owned(),
        ])
        .collect()
}

const STEPS: &str = "'product_view', 'add_to_cart', 'checkout_start', 'purchase'";
const STEPS3: &str = "'product_view', 'add_to_cart', 'purchase'";

/// The SQL of the SQL-level queries over `site` from `start` for `weeks` weeks.
pub fn sql(name: &str, site: &str, start: NaiveDate, weeks: i64) -> Option<String> {
    let end = start + Duration::weeks(weeks) - Duration::days(1);
    let range = format!("site = '{site}' AND date BETWEEN DATE '{start}' AND DATE '{end}'");
    // The funnel enters in the range and may convert up to a day (its window) after it.
    let funnel_range =
        format!("site = '{site}' AND date BETWEEN DATE '{start}' AND DATE '{}'", end + Duration::days(1));
    Some(match name {
        // The columns the funnel reads (name, visitor_id, ts), scanned and barely aggregated.
        "bare_scan" => format!(
            "SELECT count(*) AS events, min(ts) AS first_ts, sum(length(visitor_id)) AS id_bytes
FROM events WHERE {funnel_range} AND name IN ({STEPS})"
        ),
        "funnel_sql" => format!(
            "SELECT level, count(*) AS visitors FROM (
  SELECT visitor_id, window_funnel(86400, '', ts, name = 'product_view' AND date <= DATE '{end}',
                                   name = 'add_to_cart', name = 'checkout_start', name = 'purchase') AS level
  FROM events WHERE {funnel_range} AND name IN ({STEPS})
  GROUP BY visitor_id)
WHERE level > 0 GROUP BY level ORDER BY level"
        ),
        // A three-step pattern per visitor with a time constraint (viewed, added to the cart
        // within 10 minutes, bought later), and the three-step window_funnel over the same rows.
        "sequence_sql" => format!(
            "SELECT matched, count(*) AS visitors FROM (
  SELECT visitor_id, sequence_match('(?1)(?t<=600)(?2).*(?3)', ts, name = 'product_view', name = 'add_to_cart',
                                    name = 'purchase') AS matched
  FROM events WHERE {range} AND name IN ({STEPS3})
  GROUP BY visitor_id)
GROUP BY matched ORDER BY matched"
        ),
        // The other two pattern functions over the same rows: views followed by an add to cart
        // within 10 minutes, counted; and the events of each visitor's first such chain.
        "sequence_count_sql" => format!(
            "SELECT sum(c) AS chains, count(*) FILTER (WHERE c > 1) AS visitors_with_several FROM (
  SELECT visitor_id, sequence_count('(?1)(?t<=600)(?2)', ts, name = 'product_view', name = 'add_to_cart',
                                    name = 'purchase') AS c
  FROM events WHERE {range} AND name IN ({STEPS3})
  GROUP BY visitor_id)"
        ),
        "sequence_events_sql" => format!(
            "SELECT cardinality(e) AS events, count(*) AS visitors FROM (
  SELECT visitor_id, sequence_match_events('(?1)(?t<=600)(?2).*(?3)', ts, name = 'product_view',
                                           name = 'add_to_cart', name = 'purchase') AS e
  FROM events WHERE {range} AND name IN ({STEPS3})
  GROUP BY visitor_id)
GROUP BY events ORDER BY events"
        ),
        // The floor of the pattern and funnel queries: the same rows and columns grouped by
        // visitor, with the cheapest aggregate of the time (used, so the time is read).
        "visitors_sql" => format!(
            "SELECT count(*) AS visitors, max(first_ts) AS last_first_ts FROM (
  SELECT visitor_id, min(ts) AS first_ts FROM events WHERE {range} AND name IN ({STEPS3}) GROUP BY visitor_id)"
        ),
        "funnel3_sql" => format!(
            "SELECT level, count(*) AS visitors FROM (
  SELECT visitor_id, window_funnel(600, '', ts, name = 'product_view', name = 'add_to_cart',
                                   name = 'purchase') AS level
  FROM events WHERE {range} AND name IN ({STEPS3})
  GROUP BY visitor_id)
GROUP BY level ORDER BY level"
        ),
        "retention_sql" => {
            let conds: Vec<String> = (0..8)
                .map(|w| {
                    let from = start + Duration::weeks(w);
                    format!("date BETWEEN DATE '{from}' AND DATE '{}'", from + Duration::days(6))
                })
                .collect();
            let sums: Vec<String> = (1..=8).map(|k| format!("sum(r[{k}]) AS week{}", k - 1)).collect();
            format!(
                "SELECT {} FROM (
  SELECT visitor_id, retention({}) AS r
  FROM events WHERE {range}
  GROUP BY visitor_id)",
                sums.join(", "),
                conds.join(",\n    ")
            )
        }
        "trends_sql" => format!(
            "SELECT date, channel, count(DISTINCT visitor_id) AS visitors,
  count(*) FILTER (WHERE name = 'pageview') AS pageviews
FROM events WHERE {range}
GROUP BY date, channel ORDER BY date, channel"
        ),
        _ => return None,
    })
}

/// The generated store a bench query reads: its directory, site, first day and weeks covered.
#[derive(Clone, Copy, Debug)]
pub struct Store<'a> {
    pub data: &'a DataDir,
    pub site: &'a str,
    pub start: NaiveDate,
    pub weeks: i64,
}

/// Run query `name` `runs` times; one JSON object with the timings and the last result.
pub async fn run_query(store: Store<'_>, name: &str, runs: usize) -> anyhow::Result<Value> {
    let limits =
        QueryLimits { max_rows: 1_000_000, timeout: std::time::Duration::from_secs(3600), memory_bytes: 2 << 30 };
    let mut times = Vec::with_capacity(runs);
    let mut result = Value::Null;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        result = one(store, name, &limits).await?;
        times.push(t.elapsed().as_secs_f64());
    }
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    // The SQL-level queries carry their text, for other clients to run the same (bench/postgres.sh).
    let sql = sql(name, store.site, store.start, store.weeks).filter(|_| SQL_QUERIES.contains(&name));
    Ok(
        json!({"query": name, "median_s": median, "runs_s": times, "peak_rss_mb": peak_rss_mb(), "result": result, "sql": sql}),
    )
}

async fn one(store: Store<'_>, name: &str, limits: &QueryLimits) -> anyhow::Result<Value> {
    let Store { data, site, start, weeks } = store;
    let end = start + Duration::weeks(weeks) - Duration::days(1);
    let env = Env {
        data: data.clone(),
        scope: Scope::All,
        limits: *limits,
        now_micros: chrono::Utc::now().timestamp_micros(),
    };
    let report_body = |extra: Value| reports::registry::bench_request(site, start, end, &extra).to_string();
    let report = name.strip_prefix("report_").and_then(reports::registry::find);
    if let Some((def, bench)) = report.and_then(|def| def.bench.as_ref().map(|b| (def, b))) {
        let ran = (def.run)(env, report_body((bench.request)(start, end)).into_bytes()).await?;
        return Ok((bench.summary)(&ran.value()?));
    }
    Ok(match name {
        "report_trends_by_channel" => {
            let body = report_body(json!({"interval": "day", "breakdown": "channel", "breakdown_limit": 20}));
            let r = reports::trends::trends(&env, &reports::parse_request(body.as_bytes())?).await?;
            let by: Vec<Value> = r.current.results.iter().map(|b| json!([b.value, b.totals.visitors])).collect();
            json!(by)
        }
        "report_trends_tables" => {
            let dims = ["entry_page", "channel", "source", "campaign", "country", "region", "device", "browser"];
            let body = report_body(json!({"metrics": ["visitors", "sessions", "revenue", "conversion_rate"],
                "breakdowns": dims, "breakdown_limit": 10, "series": false}));
            let r = reports::trends::trends(&env, &reports::parse_request(body.as_bytes())?).await?;
            let top = |d: &reports::trends::ByBreakdown| {
                d.current.results.first().map(|b| json!([b.value, b.totals.visitors]))
            };
            json!(r.by_breakdown.iter().map(|d| json!([d.breakdown, top(d)])).collect::<Vec<_>>())
        }
        "segment_viewed_not_bought" | "segment_vip" => {
            // "Now" is the end of the generated weeks, so "the last 14 days" has traffic.
            let env = Env {
                now_micros: (end + Duration::days(1))
                    .and_hms_opt(0, 0, 0)
                    .unwrap_or_default()
                    .and_utc()
                    .timestamp_micros(),
                ..env
            };
            let template = name.trim_start_matches("segment_");
            let body = json!({"site": site, "definition": template, "limit": 10}).to_string();
            let r = reports::segments::segment(&env, &reports::parse_request(body.as_bytes())?).await?;
            json!({"size": r.size})
        }
        other => {
            let sql = sql(other, site, start, weeks)
                .ok_or_else(|| anyhow::anyhow!("unknown query {other:?}; one of {:?}", queries()))?;
            let ctx = query::session(data, &Scope::All, limits).await?;
            let out = query::run_sql(&ctx, &sql, limits).await?;
            let rows = out.batches.iter().map(arrow::array::RecordBatch::num_rows).sum::<usize>();
            if rows <= 20 {
                serde_json::from_str(&query::output::render(&out.batches, query::output::Format::Json)?)?
            } else {
                json!({"rows": rows})
            }
        }
    })
}

/// This process's peak resident memory (VmHWM), in MiB.
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 =
        status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb / 1024.0)
}
