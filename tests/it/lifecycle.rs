//! The lifecycle report on a fixture worked out by hand.

use footfall::model::Event;
use footfall::reports::lifecycle::{LifecycleRequest, lifecycle};
use footfall::reports::parse_request;
use footfall::store::paths::DataDir;
use serde_json::json;

fn at(day: u32, hh: u32) -> i64 {
    chrono::NaiveDate::from_ymd_opt(2026, 1, day)
        .and_then(|d| d.and_hms_opt(hh, 0, 0))
        .expect("time")
        .and_utc()
        .timestamp_micros()
}

/// Days with events, per person: a Jan 4, 5, 6; b Jan 5, 7; c Jan 1, 6; d Jan 8; e Jan 4.
/// Day report over Jan 5–8 (Jan 4 is the period before):
///
/// | day | new | returning | resurrecting | dormant |
/// |---|---|---|---|---|
/// | Jan 5 | b (first ever) | a (active Jan 4) | – | e (Jan 4, not Jan 5) |
/// | Jan 6 | – | a | c (active Jan 1, not Jan 5) | b |
/// | Jan 7 | – | – | b (Jan 5, not Jan 6) | a, c |
/// | Jan 8 | d | – | – | b |
///
/// e's `signup` on Jan 4 is its only event; with `event: pageview`, e is never active.
fn fixture() -> (tempfile::TempDir, DataDir) {
    let days = [("a", 4), ("a", 5), ("a", 6), ("b", 5), ("b", 7), ("c", 1), ("c", 6), ("d", 8), ("e", 4)];
    let events = days
        .iter()
        .enumerate()
        .map(|(i, (v, d))| Event {
            event_id: format!("ev-{i:03}"),
            site: "shop".into(),
            ts: at(*d, 12),
            name: if *v == "e" { "signup".into() } else { "pageview".into() },
            visitor_id: (*v).into(),
            session_id: format!("{v}-{d}"),
            ..Event::default()
        })
        .collect();
    crate::support::store(events)
}

#[tokio::test]
async fn new_returning_resurrecting_dormant_per_day() {
    let (_tmp, data) = fixture();
    let env = crate::support::report_env(&data, at(8, 18));
    let run = |extra: serde_json::Value| {
        let mut body =
            json!({"site": "shop", "date_range": {"from": "2026-01-05", "to": "2026-01-08"}, "period": "day"});
        for (k, x) in extra.as_object().expect("object") {
            body[k] = x.clone();
        }
        let req: LifecycleRequest = parse_request(body.to_string().as_bytes()).expect("request");
        let env = &env;
        async move { lifecycle(env, &req).await.expect("lifecycle") }
    };
    let r = run(json!({})).await;
    let got: Vec<(&str, u64, u64, u64, u64)> =
        r.periods.iter().map(|p| (p.period.as_str(), p.new, p.returning, p.resurrecting, p.dormant)).collect();
    assert_eq!(
        got,
        vec![
            ("2026-01-05", 1, 1, 0, 1),
            ("2026-01-06", 0, 1, 1, 1),
            ("2026-01-07", 0, 0, 1, 2),
            ("2026-01-08", 1, 0, 0, 1)
        ]
    );
    // Quick ratio (new + resurrecting) / dormant: 1, 1, 0.5, 1; Jan 8 is still running at 18:00.
    assert_eq!(
        r.periods.iter().map(|p| p.quick_ratio).collect::<Vec<_>>(),
        vec![Some(1.0), Some(1.0), Some(0.5), Some(1.0)]
    );
    assert_eq!(r.periods.iter().map(|p| p.complete).collect::<Vec<_>>(), vec![true, true, true, false]);
    // Weeks, long after: a range ending on Wednesday Jan 7 cuts its week, which is partial; up to
    // Sunday Jan 11 the week is whole.
    let later = crate::support::report_env(&data, at(8, 18) + 30 * 86_400_000_000);
    for (to, complete) in [("2026-01-07", false), ("2026-01-11", true)] {
        let body = json!({"site": "shop", "date_range": {"from": "2026-01-05", "to": to}, "period": "week"});
        let req: LifecycleRequest = parse_request(body.to_string().as_bytes()).expect("request");
        let r = lifecycle(&later, &req).await.expect("lifecycle");
        assert_eq!(r.periods.iter().map(|p| p.complete).collect::<Vec<_>>(), vec![complete], "to {to}");
    }
    // Only pageviews count as active: e never was, so nobody is dormant on Jan 5.
    let r = run(json!({"event": {"event": "pageview"}})).await;
    assert_eq!((r.periods[0].new, r.periods[0].returning, r.periods[0].dormant), (1, 1, 0));
}

/// (visitor, day offset from Dec 1, hour, event, device, user of an identify).
type Row = (usize, i64, i64, &'static str, &'static str, Option<&'static str>);

fn arb_rows() -> impl proptest::strategy::Strategy<Value = Vec<Row>> {
    use proptest::prelude::*;
    prop::collection::vec(
        (
            0..12usize,
            0..130i64,
            0..24i64,
            prop::sample::select(vec!["pageview", "pageview", "purchase", "identify", "$engagement"]),
            prop::sample::select(vec!["desktop", "mobile"]),
            prop::sample::select(vec!["ann", "bob"]),
        )
            .prop_map(|(v, d, h, name, device, user)| (v, d, h, name, device, (name == "identify").then_some(user))),
        1..80,
    )
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]

    /// Counted from bits per person or from one row per person and period (the per-person
    /// loop), the lifecycle is the same: any period, time zone (Berlin's change to summer time
    /// in March included), filter and activity event, people linked by identifies included.
    #[test]
    fn counting_bits_per_person_equals_the_per_person_loop(
        rows in arb_rows(),
        period in proptest::sample::select(vec!["day", "week", "month"]),
        tz in proptest::sample::select(vec!["UTC", "Europe/Berlin", "Asia/Kolkata"]),
        filtered in proptest::prelude::any::<bool>(),
        event in proptest::prelude::any::<bool>(),
    ) {
        use footfall::reports::lifecycle::lifecycle_with;
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = DataDir::new(tmp.path());
        let dec1 = chrono::NaiveDate::from_ymd_opt(2025, 12, 1).expect("date").and_hms_opt(0, 0, 0).expect("time").and_utc();
        let events: Vec<Event> = rows
            .iter()
            .enumerate()
            .map(|(i, &(v, d, h, name, device, user))| Event {
                event_id: format!("ev-{i:03}"),
                site: "shop".into(),
                ts: (dec1 + chrono::Duration::days(d) + chrono::Duration::hours(h)).timestamp_micros() + i as i64,
                name: name.into(),
                visitor_id: format!("v{v}"),
                session_id: format!("v{v}-{d}"),
                user_id: user.map(str::to_owned),
                device: Some(device.into()),
                ..Event::default()
            })
            .collect();
        footfall::store::flush_events(&data, footfall::wal::SegmentHeader { created_ms: 1, seq: 1 }, events).expect("flush");
        // The rows run from December to early April; days over March (Berlin moves to summer
        // time on March 29), weeks and months from January.
        let from = if period == "day" { "2026-03-01" } else { "2026-01-01" };
        let mut body = json!({"site": "shop", "date_range": {"from": from, "to": "2026-04-05"},
            "timezone": tz, "period": period});
        if filtered {
            body["filters"] = json!([{"dimension": "device", "op": "is", "values": ["mobile"]}]);
        }
        if event {
            body["event"] = json!({"event": "pageview"});
        }
        let req: LifecycleRequest = parse_request(body.to_string().as_bytes()).expect("request");
        let env = crate::support::report_env(&data, at(8, 18) + 60 * 86_400_000_000);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let bits = rt.block_on(lifecycle_with(&env, &req, true)).expect("bits");
        let loop_ = rt.block_on(lifecycle_with(&env, &req, false)).expect("per person");
        proptest::prop_assert!(bits.sql[0].sql.contains("bit_or"));
        proptest::prop_assert!(!loop_.sql[0].sql.contains("bit_or"));
        proptest::prop_assert_eq!(bits.periods, loop_.periods);
    }
}
