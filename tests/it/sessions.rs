//! The `session_hours` table: trends, lifecycle and e-commerce totals read from it give exactly the numbers they
//! give read from the events (the second implementation is the events path itself, taken once
//! the table is removed), and readers only use it while it is in step with the events files.

use footfall::model::{Event, SiteId};
use footfall::reports::trends::{TrendsRequest, TrendsResponse, trends};
use footfall::store::paths::DataDir;
use footfall::store::{StoreGuard, compact::compact_all, flush_events, sessions};
use footfall::wal::SegmentHeader;
use proptest::prelude::*;
use serde_json::{Value, json};

const HOUR: i64 = 3_600_000_000;
/// 2026-01-05T00:00:00Z in microseconds.
const JAN5: i64 = 1_767_571_200 * 1_000_000;

#[derive(Debug, Clone)]
struct Row {
    visitor: usize,
    session: usize,
    minute: i64,
    name: &'static str,
    revenue: Option<f64>,
    channel: Option<&'static str>,
    device: &'static str,
    user: Option<&'static str>,
}

fn event(i: usize, r: &Row) -> Event {
    Event {
        event_id: format!("e{i:03}"),
        site: "shop".into(),
        visitor_id: format!("v{}", r.visitor),
        session_id: format!("s{}-{}", r.visitor, r.session),
        ts: JAN5 + r.minute * 60_000_000,
        name: r.name.into(),
        revenue: r.revenue,
        user_id: r.user.map(str::to_owned),
        channel: r.channel.map(str::to_owned),
        device: Some(r.device.into()),
        // Pageviews on three pages, other events with a path or none (an entry page without
        // a pageview is its first event's path).
        path: match r.name {
            "pageview" => Some(format!("/p{}", r.minute % 3)),
            _ => (r.minute % 2 == 0).then(|| format!("/e{}", r.minute % 5)),
        },
        ..Default::default()
    }
}

fn arb_row() -> impl Strategy<Value = Row> {
    let names = prop::sample::select(vec![
        "pageview",
        "pageview",
        "purchase",
        "refund",
        "$engagement",
        "add_to_cart",
        "checkout_start",
        "identify",
    ]);
    (
        0..4usize,
        0..3usize,
        0..(3 * 24 * 60i64),
        names,
        prop::option::of(1..50u32),
        prop::option::of(prop::sample::select(vec!["Direct", "Email"])),
        prop::sample::select(vec!["desktop", "mobile"]),
        prop::option::weighted(0.2, prop::sample::select(vec!["ann", "bob"])),
    )
        .prop_map(|(visitor, session, minute, name, revenue, channel, device, user)| Row {
            visitor,
            session,
            minute,
            name,
            revenue: revenue.map(|r| f64::from(r) / 4.0),
            channel,
            device,
            user,
        })
}

async fn run(data: &DataDir, req: &Value) -> TrendsResponse {
    let env = crate::support::report_env(data, JAN5 + 30 * 24 * HOUR);
    let req: TrendsRequest = footfall::reports::parse_request(req.to_string().as_bytes()).expect("request");
    trends(&env, &req).await.expect("trends")
}

/// Whether the current range's totals were read from session hours (a range with no
/// partitions at all, like an empty previous period, reads them either way).
fn read_sessions(r: &TrendsResponse) -> bool {
    r.sql[0].sql.contains("FROM session_hours")
}

/// A report's numbers (its answer without the SQL), and whether its first query read session
/// hours (e-commerce's totals, lifecycle's only query).
async fn report_of(data: &DataDir, kind: &str, req: &Value) -> (Value, bool) {
    let env = crate::support::report_env(data, JAN5 + 30 * 24 * HOUR);
    let def = footfall::reports::registry::find(kind).expect("a report");
    let mut v = (def.run)(env, req.to_string().into_bytes()).await.expect("report").value().expect("json");
    let sessions = v["sql"][0]["sql"].as_str().is_some_and(|s| s.contains("FROM session_hours"));
    v.as_object_mut().expect("object").remove("sql");
    (v, sessions)
}

fn numbers(r: &TrendsResponse) -> Value {
    let mut v = serde_json::to_value(r).expect("json");
    v.as_object_mut().expect("object").remove("sql");
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// For any store, split into flushes in any way and compacted or not, trends from session
    /// hours equal trends from events, in any time zone, interval, breakdown and filter the
    /// table can answer; other time zones (India's half hour) fall back to events.
    #[test]
    fn trends_from_session_hours_equal_trends_from_events(
        rows in prop::collection::vec(arb_row(), 1..40),
        cut in 1..40usize,
        compact in any::<bool>(),
        tz in prop::sample::select(vec!["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"]),
        interval in prop::sample::select(vec!["hour", "day", "week"]),
        breakdown in prop::sample::select(vec![None, Some("channel"), Some("device"), Some("entry_page")]),
        filter in any::<bool>(),
    ) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = DataDir::new(tmp.path());
        let events: Vec<Event> = rows.iter().enumerate().map(|(i, r)| event(i, r)).collect();
        let (a, b) = events.split_at(cut.min(events.len()));
        for (seq, part) in [a, b].into_iter().enumerate() {
            if !part.is_empty() {
                flush_events(&data, SegmentHeader { created_ms: 1, seq: seq as u64 + 1 }, part.to_vec()).expect("flush");
            }
        }
        if compact {
            compact_all(&data, &StoreGuard::default()).expect("compact");
        }
        let mut req = json!({
            "site": "shop", "date_range": {"from": "2026-01-05", "to": "2026-01-07"}, "timezone": tz,
            "interval": interval, "compare": true,
            "metrics": ["visitors", "sessions", "pageviews", "bounce_rate", "visit_duration", "revenue", "conversion_rate"],
        });
        if let Some(d) = breakdown {
            req["breakdown"] = json!(d);
        }
        if filter {
            req["filters"] = json!([{"dimension": "device", "op": "is_not", "values": ["mobile"]}]);
        }
        // Lifecycle over the same days, same zone and filter.
        let mut life = json!({
            "site": "shop", "date_range": {"from": "2026-01-05", "to": "2026-01-07"}, "timezone": tz,
            "period": if interval == "hour" { "day" } else { interval },
        });
        if filter {
            life["filters"] = req["filters"].clone();
        }
        let mut shop = json!({"site": "shop", "date_range": {"from": "2026-01-05", "to": "2026-01-07"}, "timezone": tz});
        if filter {
            shop["filters"] = req["filters"].clone();
        }
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let from_sessions = rt.block_on(run(&data, &req));
        let life_sessions = rt.block_on(report_of(&data, "lifecycle", &life));
        let shop_sessions = rt.block_on(report_of(&data, "ecommerce", &shop));
        prop_assert_eq!(shop_sessions.1, tz != "Asia/Kolkata");
        prop_assert_eq!(read_sessions(&from_sessions), tz != "Asia/Kolkata");
        prop_assert_eq!(life_sessions.1, tz != "Asia/Kolkata");
        std::fs::remove_dir_all(data.sessions_dir()).expect("remove session hours");
        let from_events = rt.block_on(run(&data, &req));
        let life_events = rt.block_on(report_of(&data, "lifecycle", &life));
        let shop_events = rt.block_on(report_of(&data, "ecommerce", &shop));
        prop_assert!(!shop_events.1);
        prop_assert_eq!(shop_sessions.0, shop_events.0);
        prop_assert!(!read_sessions(&from_events));
        prop_assert!(!life_events.1);
        prop_assert_eq!(numbers(&from_sessions), numbers(&from_events));
        prop_assert_eq!(life_sessions.0, life_events.0);
    }
}

#[tokio::test]
async fn readers_use_session_hours_only_while_they_match_the_events_files() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = DataDir::new(tmp.path());
    let site = SiteId::parse("shop").expect("site");
    let date = chrono::NaiveDate::from_ymd_opt(2026, 1, 5).expect("date");
    let row = |minute, name| Row {
        visitor: 1,
        session: 1,
        minute,
        name,
        revenue: None,
        channel: None,
        device: "desktop",
        user: None,
    };
    let flush = |seq: u64, rows: &[Row]| {
        let events = rows.iter().enumerate().map(|(i, r)| event(seq as usize * 100 + i, r)).collect();
        flush_events(&data, SegmentHeader { created_ms: 1, seq }, events).expect("flush");
    };
    flush(1, &[row(10, "pageview"), row(11, "pageview")]);
    flush(2, &[row(20, "add_to_cart")]);
    assert!(sessions::in_step(&data, &site, date).expect("list"));
    let req = json!({"site": "shop", "date_range": {"from": "2026-01-05", "to": "2026-01-05"}});
    let r = run(&data, &req).await;
    assert!(read_sessions(&r));
    // One session of 3 events, 10 minutes from first to last: not a bounce, 600 s.
    let totals = &r.current.results[0].totals;
    assert_eq!(
        (totals.sessions, totals.pageviews, totals.bounce_rate, totals.visit_duration),
        (Some(1), Some(2), Some(0.0), Some(600.0))
    );
    // A session file without its events file (as after a crash between the two writes): the
    // partition is out of step and the report reads events, with the same numbers.
    let stray = data.sessions_partition_dir(&site, date).join("01ZZZZZZZZZZZZZZZZZZZZZZZZ.parquet");
    std::fs::copy(
        footfall::store::paths::data_files(&data.sessions_partition_dir(&site, date)).expect("list")[0].clone(),
        &stray,
    )
    .expect("copy");
    assert!(!sessions::in_step(&data, &site, date).expect("list"));
    let r2 = run(&data, &req).await;
    assert!(!read_sessions(&r2));
    assert_eq!(numbers(&r2), numbers(&r));
    // Compaction merges the events files and rebuilds the partition's session hours.
    compact_all(&data, &StoreGuard::default()).expect("compact");
    assert!(sessions::in_step(&data, &site, date).expect("list"));
    let r3 = run(&data, &req).await;
    assert!(read_sessions(&r3));
    assert_eq!(numbers(&r3), numbers(&r));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Several `breakdowns` in one request give, per dimension, exactly
    /// what that dimension gives asked alone as `breakdown`, and overall exactly what the request
    /// gives without one: session-level dimensions from session hours, `page` from events, and
    /// all from events when the time zone keeps the table out.
    #[test]
    fn several_breakdowns_equal_each_breakdown_asked_alone(
        rows in prop::collection::vec(arb_row(), 1..40),
        tz in prop::sample::select(vec!["UTC", "Europe/Berlin", "Asia/Kolkata"]),
        dims in prop::sample::select(vec![vec!["channel", "device"], vec!["device", "page", "channel"], vec!["channel"]]),
        limit in 1..4usize,
        filter in any::<bool>(),
    ) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = DataDir::new(tmp.path());
        let events: Vec<Event> = rows.iter().enumerate().map(|(i, r)| event(i, r)).collect();
        flush_events(&data, SegmentHeader { created_ms: 1, seq: 1 }, events).expect("flush");
        let mut base = json!({
            "site": "shop", "date_range": {"from": "2026-01-06", "to": "2026-01-07"}, "timezone": tz,
            "compare": true, "series": false, "breakdown_limit": limit,
            "metrics": ["visitors", "sessions", "pageviews", "bounce_rate", "visit_duration", "revenue", "conversion_rate"],
        });
        if filter {
            base["filters"] = json!([{"dimension": "device", "op": "is_not", "values": ["mobile"]}]);
        }
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let mut multi = base.clone();
        multi["breakdowns"] = json!(dims);
        let multi = rt.block_on(run(&data, &multi));
        // Session-level dimensions from session hours (when the zone allows), `page` from events.
        prop_assert_eq!(read_sessions(&multi), tz != "Asia/Kolkata");
        let from_events = multi.sql.iter().any(|s| s.sql.contains("FROM events"));
        prop_assert_eq!(from_events, tz == "Asia/Kolkata" || dims.contains(&"page"));
        let mut overall = numbers(&multi);
        overall.as_object_mut().expect("object").remove("by_breakdown");
        prop_assert_eq!(overall, numbers(&rt.block_on(run(&data, &base))));
        prop_assert_eq!(multi.by_breakdown.len(), dims.len());
        for (dim, got) in dims.iter().zip(&multi.by_breakdown) {
            let mut one = base.clone();
            one["breakdown"] = json!(dim);
            let alone = rt.block_on(run(&data, &one));
            prop_assert_eq!(&got.breakdown, dim);
            prop_assert_eq!(&got.current, &alone.current);
            prop_assert_eq!(&got.previous, &alone.previous);
        }
    }
}
