//! Reports in passes: past their rows per pass, the funnel report evaluates one bucket of people
//! at a time, the paths report one bucket of sessions and the trends report each in turn, and
//! the answer is the one a single pass gives, for any store and pass count (funnel: any order
//! and breakdown, people linked by late identifies included; paths: both directions, by page or
//! event; trends: series or totals, a breakdown or several, filters, three time zones, and
//! visitors who identify as two people).

use footfall::model::Event;
use footfall::reports::funnel::{FunnelRequest, FunnelResponse, funnel_in_passes};
use footfall::reports::paths::{PathsRequest, paths_in_passes};
use footfall::reports::trends::{TrendsRequest, trends_in_passes};
use footfall::store::flush_events;
use footfall::store::paths::DataDir;
use footfall::wal::SegmentHeader;
use proptest::prelude::*;
use serde_json::{Value, json};

/// 2026-01-05T00:00:00Z in microseconds.
const JAN5: i64 = 1_767_571_200 * 1_000_000;
const MINUTE: i64 = 60_000_000;

/// (visitor, minute, event, device, user of an identify).
type Row = (usize, i64, &'static str, &'static str, Option<&'static str>);

fn arb_rows() -> impl Strategy<Value = Vec<Row>> {
    prop::collection::vec(
        (
            0..15usize,
            0..(3 * 24 * 60i64),
            prop::sample::select(vec!["pageview", "pageview", "add_to_cart", "checkout_start", "purchase", "identify"]),
            prop::sample::select(vec!["desktop", "mobile"]),
            prop::sample::select(vec!["ann", "bob"]),
        )
            .prop_map(|(v, m, name, device, user)| (v, m, name, device, (name == "identify").then_some(user))),
        1..80,
    )
}

fn events(rows: &[Row]) -> Vec<Event> {
    rows.iter()
        .enumerate()
        .map(|(i, &(v, minute, name, device, user))| Event {
            event_id: format!("e{i:03}"),
            site: "shop".into(),
            visitor_id: format!("v{v}"),
            session_id: format!("s{v}-{}", minute / (6 * 60)),
            path: (name == "pageview").then(|| format!("/p{}", minute % 3)),
            ts: JAN5 + minute * MINUTE + i as i64,
            name: name.into(),
            user_id: user.map(str::to_owned),
            device: Some(device.into()),
            revenue: (name == "purchase").then_some(f64::from(minute as u32 % 7) * 2.5),
            ..Default::default()
        })
        .collect()
}

fn numbers(r: &FunnelResponse) -> Value {
    let mut v = serde_json::to_value(r).expect("json");
    v.as_object_mut().expect("object").remove("sql");
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn a_funnel_in_passes_equals_one_pass(
        rows in arb_rows(),
        passes in 2..5usize,
        order in prop::sample::select(vec!["ordered", "strict", "any"]),
        breakdown in any::<bool>(),
    ) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = DataDir::new(tmp.path());
        flush_events(&data, SegmentHeader { created_ms: 1, seq: 1 }, events(&rows)).expect("flush");
        let mut body = json!({"site": "shop", "date_range": {"from": "2026-01-05", "to": "2026-01-07"},
            "steps": [{"event": "pageview"}, {"event": "add_to_cart"}, {"event": "purchase"}],
            "window": {"value": 1, "unit": "day"}, "order": order, "people_limit": 100});
        if breakdown {
            body["breakdown"] = json!("device");
        }
        let req: FunnelRequest = footfall::reports::parse_request(body.to_string().as_bytes()).expect("request");
        let env = crate::support::report_env(&data, JAN5 + 30 * 24 * 60 * MINUTE);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let one = rt.block_on(funnel_in_passes(&env, &req, 1)).expect("one pass");
        let several = rt.block_on(funnel_in_passes(&env, &req, passes)).expect("passes");
        prop_assert_eq!(several.sql.len(), passes);
        let second = format!("footfall_bucket(person_id, {passes}) = 1");
        prop_assert!(several.sql[1].sql.contains(&second));
        prop_assert_eq!(numbers(&one), numbers(&several));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn paths_in_passes_equal_one_pass(
        rows in arb_rows(),
        passes in 2..5usize,
        direction in prop::sample::select(vec!["next", "previous"]),
        by in prop::sample::select(vec!["page", "event"]),
    ) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = DataDir::new(tmp.path());
        flush_events(&data, SegmentHeader { created_ms: 1, seq: 1 }, events(&rows)).expect("flush");
        let body = json!({"site": "shop", "date_range": {"from": "2026-01-05", "to": "2026-01-07"},
            "start": {"event": "add_to_cart"}, "direction": direction, "by": by, "steps": 3});
        let req: PathsRequest = footfall::reports::parse_request(body.to_string().as_bytes()).expect("request");
        let env = crate::support::report_env(&data, JAN5 + 30 * 24 * 60 * MINUTE);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let one = rt.block_on(paths_in_passes(&env, &req, 1)).expect("one pass");
        let several = rt.block_on(paths_in_passes(&env, &req, passes)).expect("passes");
        prop_assert_eq!(several.sql.len(), passes);
        prop_assert_eq!(serde_json::to_value(&one.root).expect("json"), serde_json::to_value(&several.root).expect("json"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn trends_in_passes_equal_one_pass(
        rows in arb_rows(),
        passes in 2..5usize,
        series in any::<bool>(),
        breakdown in prop::sample::select(vec!["", "device", "entry_page", "page", "several"]),
        filtered in any::<bool>(),
        timezone in prop::sample::select(vec!["UTC", "Europe/Berlin", "Asia/Kolkata"]),
    ) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = DataDir::new(tmp.path());
        flush_events(&data, SegmentHeader { created_ms: 1, seq: 1 }, events(&rows)).expect("flush");
        let mut body = json!({"site": "shop", "date_range": {"from": "2026-01-05", "to": "2026-01-07"},
            "timezone": timezone, "interval": "day", "series": series, "compare": true,
            "metrics": ["visitors", "sessions", "pageviews", "bounce_rate", "visit_duration", "revenue", "conversion_rate"]});
        match breakdown {
            "" => {}
            "several" => {
                body["breakdowns"] = json!(["device", "entry_page", "page"]);
                body["series"] = json!(false);
            }
            b => body["breakdown"] = json!(b),
        }
        if filtered {
            body["filters"] = json!([{"dimension": "device", "op": "is", "values": ["mobile"]}]);
        }
        let req: TrendsRequest = footfall::reports::parse_request(body.to_string().as_bytes()).expect("request");
        let env = crate::support::report_env(&data, JAN5 + 30 * 24 * 60 * MINUTE);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let one = rt.block_on(trends_in_passes(&env, &req, 1)).expect("one pass");
        let several = rt.block_on(trends_in_passes(&env, &req, passes)).expect("passes");
        let bucketed = format!("footfall_bucket(person_id, {passes}) = 1");
        prop_assert!(several.sql.iter().any(|s| s.sql.contains(&bucketed)));
        let strip = |r: &footfall::reports::trends::TrendsResponse| {
            let mut v = serde_json::to_value(r).expect("json");
            v.as_object_mut().expect("object").remove("sql");
            v
        };
        prop_assert_eq!(strip(&one), strip(&several));
    }
}
