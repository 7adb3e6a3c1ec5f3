//! The attribution report on a fixture worked out by hand.

use footfall::model::Event;
use footfall::reports::attribution::{AttributionRequest, attribution};
use footfall::reports::parse_request;
use footfall::store::paths::DataDir;
use serde_json::json;

fn at(month: u32, day: u32, hh: u32, mm: u32) -> i64 {
    let year = if month == 12 { 2025 } else { 2026 };
    chrono::NaiveDate::from_ymd_opt(year, month, day)
        .and_then(|d| d.and_hms_opt(hh, mm, 0))
        .expect("time")
        .and_utc()
        .timestamp_micros()
}

/// | person | sessions (channel of the first event) | conversions in Jan 5–7 |
/// |---|---|---|
/// | v1 | Jan 1 Email, Jan 3 Organic Search, Jan 5 Direct | Jan 5 10:30 purchase 100 |
/// | v2 | Dec 1 Paid Social (over 30 days before), Jan 6 Paid Search | Jan 6 09:10 purchase 50 |
/// | v3 | Jan 6 Referral, Jan 7 Direct | Jan 6 12:10 purchase 30, Jan 7 08:10 purchase 20 |
/// visitor, session, time, event, channel, revenue.
type Row = (&'static str, &'static str, i64, &'static str, &'static str, Option<f64>);

fn fixture() -> (tempfile::TempDir, DataDir) {
    let rows: Vec<Row> = vec![
        ("v1", "s1", at(1, 1, 10, 0), "pageview", "Email", None),
        ("v1", "s2", at(1, 3, 10, 0), "pageview", "Organic Search", None),
        ("v1", "s3", at(1, 5, 10, 0), "pageview", "Direct", None),
        ("v1", "s3", at(1, 5, 10, 30), "purchase", "Direct", Some(100.0)),
        ("v2", "s4", at(12, 1, 10, 0), "pageview", "Paid Social", None),
        ("v2", "s5", at(1, 6, 9, 0), "pageview", "Paid Search", None),
        ("v2", "s5", at(1, 6, 9, 10), "purchase", "Paid Search", Some(50.0)),
        ("v3", "s6", at(1, 6, 12, 0), "pageview", "Referral", None),
        ("v3", "s6", at(1, 6, 12, 10), "purchase", "Referral", Some(30.0)),
        ("v3", "s7", at(1, 7, 8, 0), "pageview", "Direct", None),
        ("v3", "s7", at(1, 7, 8, 10), "purchase", "Direct", Some(20.0)),
    ];
    let events = rows
        .into_iter()
        .enumerate()
        .map(|(i, (v, s, ts, name, channel, revenue))| Event {
            event_id: format!("ev-{i:03}"),
            site: "shop".into(),
            ts,
            name: name.into(),
            visitor_id: v.into(),
            session_id: s.into(),
            channel: Some(channel.into()),
            revenue,
            ..Event::default()
        })
        .collect();
    crate::support::store(events)
}

#[tokio::test]
async fn every_model_credits_channels_by_hand() {
    let (_tmp, data) = fixture();
    let env = crate::support::report_env(&data, at(1, 20, 0, 0));
    let req: AttributionRequest = parse_request(
        json!({"site": "shop", "date_range": {"from": "2026-01-05", "to": "2026-01-07"}}).to_string().as_bytes(),
    )
    .expect("request");
    let r = attribution(&env, &req).await.expect("attribution");
    assert_eq!((r.conversions, r.revenue, r.lookback_days), (4, 200.0, 30));
    let model = |m: &str| -> Vec<(String, f64, f64)> {
        r.models[m].iter().map(|c| (c.value.clone().unwrap_or_default(), c.conversions, c.revenue)).collect()
    };
    let row = |v: &str, n: f64, rev: f64| (v.to_owned(), n, rev);
    // Touches: v1's purchase (100) ← Email, Organic Search, Direct; v2's (50) ← Paid Search
    // (Paid Social is 36 days before); v3's first (30) ← Referral; v3's second (20) ← Referral, Direct.
    assert_eq!(
        model("first_touch"),
        vec![row("Referral", 2.0, 50.0), row("Email", 1.0, 100.0), row("Paid Search", 1.0, 50.0)]
    );
    // Last touch is GA4's last click: Direct ignored unless every touch was Direct, so v1's
    // purchase goes to Organic Search and v3's second to Referral (as last non-direct).
    assert_eq!(
        model("last_touch"),
        vec![row("Referral", 2.0, 50.0), row("Organic Search", 1.0, 100.0), row("Paid Search", 1.0, 50.0)]
    );
    assert_eq!(
        model("last_non_direct"),
        vec![row("Referral", 2.0, 50.0), row("Organic Search", 1.0, 100.0), row("Paid Search", 1.0, 50.0)]
    );
    // Linear: v1's thirds (33.33 each), v3's second half-and-half (10 each).
    assert_eq!(
        model("linear"),
        vec![
            row("Referral", 1.5, 40.0),
            row("Paid Search", 1.0, 50.0),
            row("Direct", 0.83, 43.33),
            row("Email", 0.33, 33.33),
            row("Organic Search", 0.33, 33.33)
        ]
    );
    // 40/20/40 over v1's three touches; two touches split evenly.
    assert_eq!(
        model("position_based"),
        vec![
            row("Referral", 1.5, 40.0),
            row("Paid Search", 1.0, 50.0),
            row("Direct", 0.9, 50.0),
            row("Email", 0.4, 40.0),
            row("Organic Search", 0.2, 20.0)
        ]
    );
    // A 3-day lookback drops v1's Email touch (4 days before): Organic Search (2 days) is first.
    let req: AttributionRequest = parse_request(
        json!({"site": "shop", "date_range": {"from": "2026-01-05", "to": "2026-01-07"}, "lookback_days": 3})
            .to_string()
            .as_bytes(),
    )
    .expect("request");
    let r = attribution(&env, &req).await.expect("attribution");
    let first: Vec<(Option<String>, f64)> =
        r.models["first_touch"].iter().map(|c| (c.value.clone(), c.conversions)).collect();
    assert_eq!(
        first,
        vec![(Some("Referral".into()), 2.0), (Some("Organic Search".into()), 1.0), (Some("Paid Search".into()), 1.0)]
    );
}

/// `include_direct` keeps footfall's earlier last touch: the latest touch, Direct or not.
#[tokio::test]
async fn last_touch_may_credit_direct_when_asked() {
    let (_tmp, data) = fixture();
    let env = crate::support::report_env(&data, at(1, 20, 0, 0));
    let req: AttributionRequest = parse_request(
        json!({"site": "shop", "date_range": {"from": "2026-01-05", "to": "2026-01-07"}, "include_direct": true})
            .to_string()
            .as_bytes(),
    )
    .expect("request");
    let r = attribution(&env, &req).await.expect("attribution");
    let last: Vec<(String, f64, f64)> = r.models["last_touch"]
        .iter()
        .map(|c| (c.value.clone().unwrap_or_default(), c.conversions, c.revenue))
        .collect();
    // v1's purchase (100) and v3's second (20) ended on Direct.
    assert_eq!(
        last,
        vec![("Direct".into(), 2.0, 120.0), ("Paid Search".into(), 1.0, 50.0), ("Referral".into(), 1.0, 30.0)]
    );
    assert!(r.include_direct);
}
