//! Trends, funnel and retention reports over a small shop whose numbers were worked out by
//! hand (the derivations are in the comments next to each assertion). The insta snapshots hold
//! the whole responses once the hand-checked figures in each test agree with them.

use footfall::model::Event;
use footfall::reports::funnel::{FunnelRequest, FunnelResponse, funnel};
use footfall::reports::retention::{RetentionRequest, RetentionResponse, retention};
use footfall::reports::trends::{TrendsRequest, TrendsResponse, trends};
use footfall::reports::{Env, Error, parse_request};
use footfall::store::paths::DataDir;
use serde_json::{Value, json};

/// Microseconds of `2026-01-DD HH:MM` UTC.
fn at(day: u32, hh: u32, mm: u32) -> i64 {
    utc(2026, 1, day, hh, mm)
}

/// Microseconds of a UTC date-time.
fn utc(year: i32, month: u32, day: u32, hh: u32, mm: u32) -> i64 {
    chrono::NaiveDate::from_ymd_opt(year, month, day)
        .and_then(|d| d.and_hms_opt(hh, mm, 0))
        .expect("time")
        .and_utc()
        .timestamp_micros()
}

/// A bare event of the shop: `name` by `visitor` in `session` at `ts`.
fn event(name: &str, visitor: &str, session: &str, ts: i64) -> Event {
    Event {
        event_id: format!("{visitor}-{name}-{ts}"),
        site: "shop".into(),
        ts,
        name: name.into(),
        visitor_id: visitor.into(),
        session_id: session.into(),
        ..Event::default()
    }
}

struct E<'a> {
    t: i64,
    name: &'a str,
    visitor: &'a str,
    session: &'a str,
    country: &'a str,
    path: Option<&'a str>,
    user: Option<&'a str>,
    revenue: Option<f64>,
}

fn e<'a>(t: i64, name: &'a str, visitor: &'a str, session: &'a str, country: &'a str) -> E<'a> {
    E { t, name, visitor, session, country, path: None, user: None, revenue: None }
}

impl<'a> E<'a> {
    fn path(mut self, p: &'a str) -> Self {
        self.path = Some(p);
        self
    }
    fn user(mut self, u: &'a str) -> Self {
        self.user = Some(u);
        self
    }
    fn revenue(mut self, r: f64) -> Self {
        self.revenue = Some(r);
        self
    }
}

/// The shop (UTC times):
///
/// | visitor | session | events |
/// |---|---|---|
/// | a (DE) | a1, Jan 5 | 10:00 pageview /, 10:01 pageview /mug, 10:02 product_view, 10:03 add_to_cart, 10:05 identify u-1, 10:06 checkout_start, 10:10 purchase 30 |
/// | b (FR) | b1, Jan 5 | 11:00 pageview / |
/// | c (DE) | c1, Jan 6 | 09:00 pageview /, 09:00:30→09:01 identify u-1, 09:02 pageview /mug, 09:03 product_view, 09:04 add_to_cart |
/// | f (DE) | f1, Jan 6; f2, Jan 7 | Jan 6 14:00 product_view; Jan 7 15:00 add_to_cart |
/// | b (FR) | b2, Jan 7 | 08:00 pageview /mug, 08:01 product_view, 08:02 add_to_cart, 08:30 checkout_start, 08:31 purchase 20, 08:40 refund 5 |
/// | g (US) | g1, Jan 7 | 09:00 product_view, 09:02 pageview /cup, 09:05 add_to_cart |
/// | d (US) | d1, Jan 7 | 20:00 pageview / |
/// | e (DE) | e1, Jan 3 | 12:00 pageview / (the previous period) |
/// | a (DE) | a2, Jan 8 | 10:00 pageview / (after the range) |
///
/// People: a and c are both user u-1 (`u:u-1`); the others are `v:<visitor>`.
/// One event of site `blog` on Jan 5 must never show up.
fn shop() -> (tempfile::TempDir, DataDir) {
    let evs = vec![
        e(at(5, 10, 0), "pageview", "a", "a1", "DE").path("/"),
        e(at(5, 10, 1), "pageview", "a", "a1", "DE").path("/mug"),
        e(at(5, 10, 2), "product_view", "a", "a1", "DE"),
        e(at(5, 10, 3), "add_to_cart", "a", "a1", "DE"),
        e(at(5, 10, 5), "identify", "a", "a1", "DE").user("u-1"),
        e(at(5, 10, 6), "checkout_start", "a", "a1", "DE").user("u-1"),
        e(at(5, 10, 10), "purchase", "a", "a1", "DE").user("u-1").revenue(30.0),
        e(at(5, 11, 0), "pageview", "b", "b1", "FR").path("/"),
        e(at(6, 9, 0), "pageview", "c", "c1", "DE").path("/"),
        e(at(6, 9, 1), "identify", "c", "c1", "DE").user("u-1"),
        e(at(6, 9, 2), "pageview", "c", "c1", "DE").path("/mug").user("u-1"),
        e(at(6, 9, 3), "product_view", "c", "c1", "DE").user("u-1"),
        e(at(6, 9, 4), "add_to_cart", "c", "c1", "DE").user("u-1"),
        e(at(6, 14, 0), "product_view", "f", "f1", "DE"),
        e(at(7, 15, 0), "add_to_cart", "f", "f2", "DE"),
        e(at(7, 8, 0), "pageview", "b", "b2", "FR").path("/mug"),
        e(at(7, 8, 1), "product_view", "b", "b2", "FR"),
        e(at(7, 8, 2), "add_to_cart", "b", "b2", "FR"),
        e(at(7, 8, 30), "checkout_start", "b", "b2", "FR"),
        e(at(7, 8, 31), "purchase", "b", "b2", "FR").revenue(20.0),
        e(at(7, 8, 40), "refund", "b", "b2", "FR").revenue(5.0),
        e(at(7, 9, 0), "product_view", "g", "g1", "US"),
        e(at(7, 9, 2), "pageview", "g", "g1", "US").path("/cup"),
        e(at(7, 9, 5), "add_to_cart", "g", "g1", "US"),
        e(at(7, 20, 0), "pageview", "d", "d1", "US").path("/"),
        e(at(3, 12, 0), "pageview", "e", "e1", "DE").path("/"),
        e(at(8, 10, 0), "pageview", "a", "a2", "DE").path("/"),
    ];
    let mut events: Vec<Event> = evs
        .into_iter()
        .enumerate()
        .map(|(i, x)| Event {
            event_id: format!("ev-{i:03}"),
            site: "shop".into(),
            ts: x.t,
            name: x.name.into(),
            visitor_id: x.visitor.into(),
            session_id: x.session.into(),
            user_id: x.user.map(Into::into),
            country: Some(x.country.into()),
            path: x.path.map(Into::into),
            revenue: x.revenue,
            currency: x.revenue.map(|_| "EUR".into()),
            ..Event::default()
        })
        .collect();
    events.push(Event {
        event_id: "blog-1".into(),
        site: "blog".into(),
        ts: at(5, 10, 0),
        name: "pageview".into(),
        visitor_id: "a".into(),
        session_id: "z".into(),
        path: Some("/".into()),
        ..Event::default()
    });
    crate::support::store(events)
}

fn env(data: &DataDir, now: i64) -> Env {
    crate::support::report_env(data, now)
}

fn req<T: serde::de::DeserializeOwned>(v: Value) -> T {
    parse_request(v.to_string().as_bytes()).expect("valid request")
}

/// The response as JSON without the SQL (snapshots hold numbers; the SQL has its own test).
fn numbers<T: serde::Serialize>(r: &T) -> Value {
    let mut v = serde_json::to_value(r).expect("json");
    v.as_object_mut().expect("object").remove("sql");
    v
}

async fn run_trends(data: &DataDir, body: Value) -> TrendsResponse {
    trends(&env(data, at(20, 0, 0)), &req(body)).await.expect("trends")
}

#[tokio::test]
async fn trends_daily_with_every_metric() {
    let (_tmp, data) = shop();
    let r = run_trends(
        &data,
        json!({"site": "shop", "date_range": {"from": "2026-01-05", "to": "2026-01-07"},
               "metrics": ["visitors", "sessions", "pageviews", "events", "bounce_rate", "visit_duration", "revenue", "conversion_rate"],
               "event": "add_to_cart"}),
    )
    .await;
    let v = numbers(&r);
    let all = &v["results"][0];
    // People u-1, b, d, f, g; sessions a1 b1 c1 f1 b2 d1 f2 g1; pageviews 3 + 2 + 3;
    // add_to_cart a, c, f, b, g; bounces b1, d1 of the 6 sessions with a pageview;
    // duration (600 + 0 + 240 + 0 + 2400 + 0 + 0 + 300) / 8; revenue 30 + 20 − 5;
    // converted u-1 and b of 5 people.
    assert_eq!(
        all["totals"],
        json!({"visitors": 5, "sessions": 8, "pageviews": 8, "events": 5, "bounce_rate": 33.33,
               "visit_duration": 442.5, "revenue": 45.0, "conversion_rate": 40.0})
    );
    // Jan 5: u-1 and b; b1 bounced (1 of 2); (600 + 0) / 2; 30; u-1 of 2.
    assert_eq!(
        all["series"][0],
        json!({"bucket": "2026-01-05", "visitors": 2, "sessions": 2, "pageviews": 3, "events": 1,
               "bounce_rate": 50.0, "visit_duration": 300.0, "revenue": 30.0, "conversion_rate": 50.0, "complete": true})
    );
    // Jan 6: u-1 (device c) and f; only c1 had a pageview and it did not bounce; (240 + 0) / 2.
    assert_eq!(
        all["series"][1],
        json!({"bucket": "2026-01-06", "visitors": 2, "sessions": 2, "pageviews": 2, "events": 1,
               "bounce_rate": 0.0, "visit_duration": 120.0, "revenue": 0.0, "conversion_rate": 0.0, "complete": true})
    );
    // Jan 7: b, d, f, g; d1 bounced of b2 d1 g1; (2400 + 0 + 0 + 300) / 4; 20 − 5; b of 4.
    assert_eq!(
        all["series"][2],
        json!({"bucket": "2026-01-07", "visitors": 4, "sessions": 4, "pageviews": 3, "events": 3,
               "bounce_rate": 33.33, "visit_duration": 675.0, "revenue": 15.0, "conversion_rate": 25.0, "complete": true})
    );
    insta::assert_json_snapshot!(v);
}

/// Visit duration is the browser's (range Jan 5):
///
/// | session | events (origin) | duration |
/// |---|---|---|
/// | s1 | pageview 10:00, pageview 10:02 (browser); refund 11:00 (server, the shop's backend) | 120 s |
/// | s2 | pageview 10:00, event 10:01 (stored before origin was kept: NULL) | 60 s |
/// | s3 | purchase 12:00 (server only) | 0 s |
#[tokio::test]
async fn visit_duration_leaves_out_the_backends_events() {
    use footfall::model::{ORIGIN_BROWSER, ORIGIN_SERVER};
    let rows = [
        ("s1", at(5, 10, 0), "pageview", Some(ORIGIN_BROWSER)),
        ("s1", at(5, 10, 2), "pageview", Some(ORIGIN_BROWSER)),
        ("s1", at(5, 11, 0), "refund", Some(ORIGIN_SERVER)),
        ("s2", at(5, 10, 0), "pageview", None),
        ("s2", at(5, 10, 1), "signup", None),
        ("s3", at(5, 12, 0), "purchase", Some(ORIGIN_SERVER)),
    ];
    let events = rows
        .iter()
        .enumerate()
        .map(|(i, (s, ts, name, origin))| Event {
            origin: origin.map(str::to_owned),
            path: (*name == "pageview").then(|| format!("/{i}")),
            ..event(name, &format!("v-{s}"), s, *ts)
        })
        .collect();
    let (_tmp, data) = crate::support::store(events);
    // From session hours, and from events (a filter on the event name is not a session's).
    for filters in [json!([]), json!([{"dimension": "event", "op": "is_not", "values": ["nothing"]}])] {
        let r = run_trends(
            &data,
            json!({"site": "shop", "date_range": {"from": "2026-01-05", "to": "2026-01-05"},
                   "metrics": ["sessions", "visit_duration"], "filters": filters}),
        )
        .await;
        // (120 + 60 + 0) / 3; counting the refund would make s1 3,600 s and the mean 1,220 s.
        assert_eq!(numbers(&r)["results"][0]["totals"], json!({"sessions": 3, "visit_duration": 60.0}), "{filters}");
    }
}

/// Partial intervals are marked (2026-01-05 is a Monday): weeks of a range from Wednesday
/// Jan 7 to Wednesday Jan 21 are Jan 5 (cut by the start), Jan 12 (whole) and Jan 19 (cut by
/// the end); days of Jan 13-16 seen at noon on Jan 15 are whole, whole, running, not begun.
#[tokio::test]
async fn trends_mark_the_intervals_the_range_or_the_clock_cuts() {
    let (_tmp, data) = shop();
    let run = |from: &str, to: &str, interval: &str, now: i64| {
        let body = json!({"site": "shop", "date_range": {"from": from, "to": to}, "interval": interval, "metrics": ["visitors"]});
        let data = &data;
        async move {
            let r: TrendsResponse = trends(&env(data, now), &req(body)).await.expect("trends");
            r.current.results[0].series.iter().map(|p| (p.bucket.clone(), p.complete)).collect::<Vec<_>>()
        }
    };
    let weeks = run("2026-01-07", "2026-01-21", "week", at(28, 0, 0)).await;
    let want = [("2026-01-05", false), ("2026-01-12", true), ("2026-01-19", false)];
    assert_eq!(weeks, want.map(|(b, c)| (b.to_owned(), c)));
    let days = run("2026-01-13", "2026-01-16", "day", at(15, 12, 0)).await;
    let want = [("2026-01-13", true), ("2026-01-14", true), ("2026-01-15", false), ("2026-01-16", false)];
    assert_eq!(days, want.map(|(b, c)| (b.to_owned(), c)));
}

#[tokio::test]
async fn trends_breakdown_filter_and_comparison() {
    let (_tmp, data) = shop();
    let r = run_trends(
        &data,
        json!({"site": "shop", "date_range": {"from": "2026-01-05", "to": "2026-01-07"}, "breakdown": "country",
               "metrics": ["visitors", "sessions", "bounce_rate", "visit_duration", "revenue", "conversion_rate"]}),
    )
    .await;
    let v = numbers(&r);
    let totals: Vec<(Value, Value)> =
        v["results"].as_array().expect("results").iter().map(|b| (b["value"].clone(), b["totals"].clone())).collect();
    // DE: u-1 and f, sessions a1 c1 f1 f2, no bounce of a1 c1, (600 + 240 + 0 + 0) / 4, 30, u-1 of 2.
    // US: d and g, d1 bounced of d1 g1, (0 + 300) / 2. FR: b, b1 bounced of b1 b2, (0 + 2400) / 2.
    // Ordered by visitors, then value: DE (2), US (2), FR (1).
    assert_eq!(
        totals,
        vec![
            (
                json!("DE"),
                json!({"visitors": 2, "sessions": 4, "bounce_rate": 0.0, "visit_duration": 210.0, "revenue": 30.0, "conversion_rate": 50.0})
            ),
            (
                json!("US"),
                json!({"visitors": 2, "sessions": 2, "bounce_rate": 50.0, "visit_duration": 150.0, "revenue": 0.0, "conversion_rate": 0.0})
            ),
            (
                json!("FR"),
                json!({"visitors": 1, "sessions": 2, "bounce_rate": 50.0, "visit_duration": 1200.0, "revenue": 15.0, "conversion_rate": 100.0})
            ),
        ]
    );
    insta::assert_json_snapshot!("trends_by_country", v);

    let r = run_trends(
        &data,
        json!({"site": "shop", "date_range": {"from": "2026-01-05", "to": "2026-01-07"}, "compare": true,
               "filters": [{"dimension": "country", "op": "is_not", "values": ["FR", "US"]}],
               "metrics": ["visitors", "pageviews"]}),
    )
    .await;
    // Without FR and US: u-1 and f; pageviews a 2 + c 2. The previous period (Jan 2–4) has e.
    assert_eq!(r.current.results[0].totals.visitors, Some(2));
    assert_eq!(r.current.results[0].totals.pageviews, Some(4));
    let prev = r.previous.as_ref().expect("previous");
    assert_eq!(prev.date_range.from.to_string(), "2026-01-02");
    assert_eq!(prev.results[0].totals.visitors, Some(1));
    assert_eq!(
        prev.results[0].series.iter().map(|p| p.values.visitors.unwrap_or(9)).collect::<Vec<_>>(),
        vec![0, 1, 0]
    );
}

#[tokio::test]
async fn entry_pages_break_down_and_filter_trends() {
    let (_tmp, data) = shop();
    let r = run_trends(
        &data,
        json!({"site": "shop", "date_range": {"from": "2026-01-05", "to": "2026-01-07"}, "breakdown": "entry_page",
               "metrics": ["visitors", "sessions"], "series": false}),
    )
    .await;
    // First pageview of each session: a1 b1 c1 d1 "/", b2 "/mug", g1 "/cup" (its product_view
    // came first but is not a pageview); f1 and f2 have no pageview. People: "/" is u-1 (a1, c1),
    // b and d.
    let got: Vec<(Option<String>, Option<u64>, Option<u64>)> =
        r.current.results.iter().map(|b| (b.value.clone(), b.totals.visitors, b.totals.sessions)).collect();
    assert_eq!(
        got,
        vec![
            (Some("/".into()), Some(3), Some(4)),
            (None, Some(1), Some(2)),
            (Some("/cup".into()), Some(1), Some(1)),
            (Some("/mug".into()), Some(1), Some(1)),
        ]
    );
    assert!(r.current.results.iter().all(|b| b.series.is_empty()), "series: false");
    // As a filter: sessions that entered on /mug (b2: one pageview), or anywhere but "/"
    // (b2 and g1: people b and g, a pageview each; f's sessions have no entry page).
    let only = |op: &str, page: &str| {
        json!({"site": "shop", "date_range": {"from": "2026-01-05", "to": "2026-01-07"}, "metrics": ["visitors", "pageviews"],
               "filters": [{"dimension": "entry_page", "op": op, "values": [page]}]})
    };
    let r = run_trends(&data, only("is", "/mug")).await;
    assert_eq!((r.current.results[0].totals.visitors, r.current.results[0].totals.pageviews), (Some(1), Some(1)));
    let r = run_trends(&data, only("is_not", "/")).await;
    assert_eq!((r.current.results[0].totals.visitors, r.current.results[0].totals.pageviews), (Some(2), Some(2)));
    // A funnel or retention breaks down by an event's dimension, not a session's.
    let env = env(&data, at(9, 0, 0));
    let f: FunnelRequest = req(funnel_body(json!({"breakdown": "entry_page"})));
    assert!(matches!(funnel(&env, &f).await, Err(Error::Invalid { field, .. }) if field == "breakdown"));
}

#[tokio::test]
async fn a_segment_filters_trends_and_funnels() {
    let (_tmp, data) = shop();
    // Buyers (an order ever, evaluated on Jan 20): u-1 (a's purchase) and b.
    let buyers = json!({"type": "orders", "at_least": 1});
    let r = run_trends(
        &data,
        json!({"site": "shop", "date_range": {"from": "2026-01-05", "to": "2026-01-07"}, "metrics": ["visitors", "pageviews"],
               "segment": buyers}),
    )
    .await;
    // u-1: a1 "/" and "/mug", c1 "/" and "/mug"; b: b1 "/", b2 "/mug" → 2 people, 6 pageviews.
    assert_eq!((r.current.results[0].totals.visitors, r.current.results[0].totals.pageviews), (Some(2), Some(6)));
    // Both went all the way: u-1 in a1 on Jan 5, b in b2 on Jan 7.
    let f = run_funnel(&data, funnel_body(json!({"segment": buyers}))).await;
    assert_eq!(f.steps.iter().map(|s| s.count).collect::<Vec<_>>(), vec![2, 2, 2, 2]);
    // A template id works too; nobody bought twice.
    let r = run_trends(
        &data,
        json!({"site": "shop", "date_range": {"from": "2026-01-05", "to": "2026-01-07"}, "metrics": ["visitors"],
               "segment": "repeat_buyers"}),
    )
    .await;
    assert_eq!(r.current.results[0].totals.visitors, Some(0));
    // Side by side: buyers against repeat buyers, in one answer (the whole shop on top).
    let f = run_funnel(&data, funnel_body(json!({"compare_segments": [buyers, "repeat_buyers"]}))).await;
    let counts = |r: &FunnelResponse| r.steps.iter().map(|s| s.count).collect::<Vec<_>>();
    assert_eq!(f.by_segment.len(), 2);
    assert_eq!(
        (counts(&f.by_segment[0].report), counts(&f.by_segment[1].report)),
        (vec![2, 2, 2, 2], vec![0, 0, 0, 0])
    );
    assert_eq!(f.by_segment[1].segment, json!("repeat_buyers"));
    let r = run_trends(
        &data,
        json!({"site": "shop", "date_range": {"from": "2026-01-05", "to": "2026-01-07"}, "metrics": ["visitors"],
               "compare_segments": [buyers, {"type": "did_not", "event": {"event": "purchase"}}]}),
    )
    .await;
    // Buyers u-1 and b; the others: d, f, g (e and a2 are outside the range).
    let visitors: Vec<Option<u64>> = r.by_segment.iter().map(|b| b.report.current.results[0].totals.visitors).collect();
    assert_eq!(visitors, vec![Some(2), Some(3)]);
    assert_eq!(r.current.results[0].totals.visitors, Some(5));
    let env = env(&data, at(20, 0, 0));
    let bad: TrendsRequest = req(json!({"site": "shop", "date_range": {"from": "2026-01-05", "to": "2026-01-07"},
                                        "segment": {"type": "ordres"}}));
    assert!(matches!(trends(&env, &bad).await, Err(Error::Invalid { field, .. }) if field == "segment.type"));
    let one: TrendsRequest = req(json!({"site": "shop", "date_range": {"from": "2026-01-05", "to": "2026-01-07"},
                                        "compare_segments": ["vip"]}));
    assert!(matches!(trends(&env, &one).await, Err(Error::Invalid { field, .. }) if field == "compare_segments"));
    let bad: FunnelRequest = req(funnel_body(json!({"compare_segments": ["vip", {"type": "orders"}]})));
    assert!(matches!(funnel(&env, &bad).await, Err(Error::Invalid { field, .. }) if field == "compare_segments[1]"));
}

#[tokio::test]
async fn trends_in_a_time_zone() {
    let (_tmp, data) = shop();
    // Tokyo is UTC+9: Jan 5–7 there is Jan 4 15:00 – Jan 7 15:00 UTC, which leaves out d
    // (Jan 7 20:00 UTC) and f's add_to_cart (Jan 7 15:00 UTC = Jan 8 00:00 in Tokyo); f's
    // product_view (Jan 6 14:00 UTC) is Jan 6 23:00 in Tokyo.
    let r = run_trends(
        &data,
        json!({"site": "shop", "date_range": {"from": "2026-01-05", "to": "2026-01-07"},
               "timezone": "Asia/Tokyo", "metrics": ["visitors"]}),
    )
    .await;
    let b = &r.current.results[0];
    assert_eq!(b.totals.visitors, Some(4));
    let per_day: Vec<(String, u64)> =
        b.series.iter().map(|p| (p.bucket.clone(), p.values.visitors.unwrap_or(0))).collect();
    assert_eq!(per_day, vec![("2026-01-05".into(), 2), ("2026-01-06".into(), 2), ("2026-01-07".into(), 2)]);
    // Hourly buckets are local hours: a's first pageview (10:00 UTC) is 19:00 in Tokyo.
    let r = run_trends(
        &data,
        json!({"site": "shop", "date_range": {"from": "2026-01-05", "to": "2026-01-05"},
               "timezone": "Asia/Tokyo", "interval": "hour", "metrics": ["pageviews"]}),
    )
    .await;
    let s = &r.current.results[0].series;
    assert_eq!(s.len(), 24);
    assert_eq!((s[19].bucket.as_str(), s[19].values.pageviews), ("2026-01-05T19:00", Some(2)));
    assert_eq!(s[20].values.pageviews, Some(1));
    assert_eq!(s.iter().filter_map(|p| p.values.pageviews).sum::<u64>(), 3);
}

async fn run_funnel(data: &DataDir, body: Value) -> FunnelResponse {
    funnel(&env(data, at(20, 0, 0)), &req(body)).await.expect("funnel")
}

fn counts(r: &FunnelResponse) -> Vec<u64> {
    r.steps.iter().map(|s| s.count).collect()
}

const SHOP_STEPS: [&str; 4] = ["product_view", "add_to_cart", "checkout_start", "purchase"];

fn funnel_body(extra: Value) -> Value {
    let mut v = json!({"site": "shop", "date_range": {"from": "2026-01-05", "to": "2026-01-07"},
                       "steps": SHOP_STEPS.iter().map(|s| json!({"event": s})).collect::<Vec<_>>()});
    for (k, x) in extra.as_object().expect("object") {
        v[k] = x.clone();
    }
    v
}

#[tokio::test]
async fn funnel_ordered_with_breakdown() {
    let (_tmp, data) = shop();
    let r = run_funnel(&data, funnel_body(json!({"breakdown": "country"}))).await;
    // Entered: u-1 (Jan 5 10:02), b, f, g. Cart within a day: u-1, b, g (f's is 25 h later).
    // Checkout and purchase: u-1 and b.
    assert_eq!(counts(&r), vec![4, 3, 2, 2]);
    let s = &r.steps;
    assert_eq!(
        (s[1].conversion_from_first, s[2].conversion_from_previous, s[3].conversion_from_previous),
        (75.0, 66.67, 100.0)
    );
    assert_eq!((s[1].dropped, s[2].dropped, s[3].dropped), (1, 1, 0));
    assert_eq!(s[1].dropped_people, vec!["v:f"]);
    assert_eq!(s[2].dropped_people, vec!["v:g"]);
    // Cart: 60 s (u-1), 60 s (b), 300 s (g). Checkout: 180 s, 1680 s. Purchase: 240 s, 60 s.
    assert_eq!((s[1].avg_time_to_convert_seconds, s[1].median_time_to_convert_seconds), (Some(140.0), Some(60.0)));
    assert_eq!((s[2].avg_time_to_convert_seconds, s[2].median_time_to_convert_seconds), (Some(930.0), Some(930.0)));
    assert_eq!(s[3].avg_time_to_convert_seconds, Some(150.0));
    // Country at entry: DE u-1 and f; FR b; US g.
    let by: Vec<(Option<String>, Vec<u64>)> =
        r.breakdowns.iter().map(|b| (b.value.clone(), b.steps.iter().map(|s| s.count).collect())).collect();
    assert_eq!(
        by,
        vec![
            (Some("DE".into()), vec![2, 1, 1, 1]),
            (Some("FR".into()), vec![1, 1, 1, 1]),
            (Some("US".into()), vec![1, 1, 0, 0])
        ]
    );
    insta::assert_json_snapshot!(numbers(&r));
}

#[tokio::test]
async fn funnel_orders_exclusions_optional_steps_and_entry_range() {
    let (_tmp, data) = shop();
    // Strict: u-1's identify (10:05) comes between cart and checkout; g's /cup pageview
    // between product view and cart; f's next event is outside the window; b's chain has
    // nothing in between.
    assert_eq!(counts(&run_funnel(&data, funnel_body(json!({"order": "strict"}))).await), vec![4, 2, 1, 1]);
    // Any order, pageview then product_view: g viewed the product first (09:00), then the page.
    let any = json!({"order": "any", "steps": [{"event": "pageview", "filters": [{"dimension": "page", "values": ["/cup"]}]}, {"event": "product_view"}]});
    let r = run_funnel(&data, funnel_body(any.clone())).await;
    assert_eq!(counts(&r), vec![4, 1]);
    let mut ordered = any;
    ordered["order"] = json!("ordered");
    assert_eq!(counts(&run_funnel(&data, funnel_body(ordered)).await), vec![1, 0]);
    // Excluding a pageview between product view and cart drops g (its /cup pageview).
    let r =
        run_funnel(&data, funnel_body(json!({"exclusions": [{"event": "pageview", "from_step": 1, "to_step": 2}]})))
            .await;
    assert_eq!((counts(&r), r.excluded_people), (vec![3, 2, 2, 2], 1));
    // An optional checkout step: purchase still counts for whoever skipped it (nobody here),
    // and converts from the cart step.
    let opt = json!({"steps": [{"event": "product_view"}, {"event": "add_to_cart"}, {"event": "checkout_start", "optional": true}, {"event": "purchase"}]});
    let r = run_funnel(&data, funnel_body(opt)).await;
    assert_eq!(counts(&r), vec![4, 3, 2, 2]);
    assert_eq!(r.steps[3].conversion_from_previous, 66.67);
    // The range bounds the entry only: from Jan 6, u-1 enters with device c (cart, no checkout).
    let mut late = funnel_body(json!({}));
    late["date_range"] = json!({"from": "2026-01-06", "to": "2026-01-07"});
    assert_eq!(counts(&run_funnel(&data, late).await), vec![4, 3, 1, 1]);
    // A window of 2 days lets f's cart (25 h later) count.
    let r = run_funnel(&data, funnel_body(json!({"window": {"value": 2, "unit": "day"}}))).await;
    assert_eq!(counts(&r), vec![4, 4, 2, 2]);
    // Any of two events as a step.
    let either =
        json!({"steps": [{"any_of": [{"event": "checkout_start"}, {"event": "refund"}]}, {"event": "purchase"}]});
    assert_eq!(counts(&run_funnel(&data, funnel_body(either)).await), vec![2, 2]);
}

/// Windows in weeks, up to 365 days or unlimited, and an "any event" step (PostHog's "All
/// events"), on the shop and on a buyer who bought 406 days after viewing.
#[tokio::test]
async fn funnel_windows_in_weeks_or_unlimited_and_any_event_steps() {
    let (_tmp, data) = shop();
    // A week lets f's cart (25 h after its product view) count, as 2 days do.
    let week = run_funnel(&data, funnel_body(json!({"window": {"value": 1, "unit": "week"}}))).await;
    assert_eq!((counts(&week), week.window_seconds), (vec![4, 4, 2, 2], Some(7 * 86_400)));
    // Any event, then a purchase within a day: entered by u-1 (a, c), b, f, g and d (e's only
    // event is Jan 3, before the range); u-1 bought at 10:10 after 10:00, b at 08:31 after
    // its 08:00 pageview on Jan 7.
    let any = run_funnel(&data, funnel_body(json!({"steps": [{"event": "*"}, {"event": "purchase"}]}))).await;
    assert_eq!((counts(&any), any.steps[0].label.as_str()), (vec![5, 2], "any event"));
    // Viewed the mug page, then any event at all: everyone with a later event the same day.
    let after = json!({"steps": [{"event": "pageview", "filters": [{"dimension": "page", "values": ["/mug"]}]}, {"event": "*"}]});
    // u-1 (a: /mug 10:01 then product_view; c: /mug 09:02 then product_view), b (/mug 08:00 then product_view).
    assert_eq!(counts(&run_funnel(&data, funnel_body(after)).await), vec![2, 2]);

    // By session: every step in one session. Entered: a1, c1, f1, b2, g1; f's cart is in its
    // next session (f2), so f1 drops; a1 and b2 check out and buy.
    let sessions = run_funnel(&data, funnel_body(json!({"unit": "session"}))).await;
    assert_eq!(
        (counts(&sessions), sessions.steps[1].dropped_people.clone()),
        (vec![5, 4, 2, 2], vec!["f1".to_owned()])
    );
    assert_eq!(serde_json::to_value(sessions.unit).expect("unit"), json!("session"));

    let ev = |name: &str, ts: i64| event(name, "x", &format!("s-{ts}"), ts);
    let (_tmp2, late) = crate::support::store(vec![
        ev("product_view", utc(2025, 1, 1, 12, 0)),
        ev("purchase", utc(2026, 2, 11, 12, 0)),
    ]);
    let body = |window: Value| {
        json!({"site": "shop", "date_range": {"from": "2025-01-01", "to": "2025-01-01"}, "window": window,
               "steps": [{"event": "product_view"}, {"event": "purchase"}]})
    };
    let year = run_funnel(&late, body(json!({"value": 365, "unit": "day"}))).await;
    assert_eq!(counts(&year), vec![1, 0]);
    let unlimited = run_funnel(&late, body(json!({"unit": "unlimited"}))).await;
    assert_eq!((counts(&unlimited), unlimited.window_seconds), (vec![1, 1], None));
    for window in [json!({"value": 53, "unit": "week"}), json!({"value": 0, "unit": "day"})] {
        let bad: FunnelRequest = req(body(window.clone()));
        match funnel(&env(&late, at(20, 0, 0)), &bad).await {
            Err(Error::Invalid { field, .. }) => assert_eq!(field, "window", "{window}"),
            other => panic!("{window}: {other:?}"),
        }
    }
}

/// Rolling ("on or after") retention, a minimum number of return events per period, and
/// hourly cohorts, worked out by hand on the shop (see [`shop`]) and on two visitors' hours.
#[tokio::test]
async fn retention_on_or_after_minimum_occurrences_and_hours() {
    let (_tmp, data) = shop();
    let base = json!({"site": "shop", "date_range": {"from": "2026-01-05", "to": "2026-01-07"}, "period": "day", "periods": 3});
    // On or after (first seen, any event: the bit-mask form). Jan 5 (u-1, b): day 1 is u-1
    // (Jan 6) or b (Jan 7); day 2 is b only (u-1's Jan 8 visit is day 3, past the table).
    // Jan 6 (f): back on Jan 7. Jan 7 (d, g): never back.
    let mut rolling = base.clone();
    rolling["cumulative"] = json!(true);
    let r = run_retention(&data, at(20, 0, 0), rolling.clone()).await;
    assert_eq!(
        table(&r),
        vec![
            row("2026-01-05", None, 2, &[2, 2, 1]),
            row("2026-01-06", None, 1, &[1, 1, 0]),
            row("2026-01-07", None, 2, &[2, 0, 0])
        ]
    );
    assert!(r.cumulative);
    // The same through the joined form (a start event forces it), recurring cart cohorts:
    // u-1 carted on Jan 6 (device c) and is back on Jan 8 only, so on Jan 7 "on or after" too.
    rolling["start_event"] = json!({"event": "add_to_cart"});
    rolling["retention_type"] = json!("recurring");
    assert_eq!(
        table(&run_retention(&data, at(20, 0, 0), rolling).await),
        vec![
            row("2026-01-05", None, 1, &[1, 1, 0]),
            row("2026-01-06", None, 1, &[1, 1, 1]),
            row("2026-01-07", None, 3, &[3, 0, 0])
        ]
    );
    // Back with at least 5 events in a day: u-1 had 5 on Jan 6 (device c), b 6 on Jan 7, f 1
    // on Jan 7. At least 6: only b.
    for (min, jan5, jan6) in [(5, [2, 1, 1], [1, 0, 0]), (6, [2, 0, 1], [1, 0, 0])] {
        let mut b = base.clone();
        b["min_occurrences"] = json!(min);
        assert_eq!(
            table(&run_retention(&data, at(20, 0, 0), b).await),
            vec![
                row("2026-01-05", None, 2, &jan5),
                row("2026-01-06", None, 1, &jan6),
                row("2026-01-07", None, 2, &[2, 0, 0])
            ],
            "min_occurrences {min}"
        );
    }
    let mut zero = base.clone();
    zero["min_occurrences"] = json!(0);
    match retention(&env(&data, at(20, 0, 0)), &req(zero)).await {
        Err(Error::Invalid { field, .. }) => assert_eq!(field, "min_occurrences"),
        other => panic!("{other:?}"),
    }

    // Hours in Berlin (UTC+1): p at 10:05, 11:20, 13:00 UTC; q at 10:30, 10:50, 12:10 UTC.
    // Cohort 11:00 local: p and q; back 1 hour later: p; 2 hours: q; 3 hours: p.
    let t = |h: u32, m: u32| at(5, h, m);
    let ev = |v: &str, ts: i64| event("pageview", v, &format!("{v}-s"), ts);
    let (_tmp2, hours) = crate::support::store(vec![
        ev("p", t(10, 5)),
        ev("p", t(11, 20)),
        ev("p", t(13, 0)),
        ev("q", t(10, 30)),
        ev("q", t(10, 50)),
        ev("q", t(12, 10)),
    ]);
    let hourly = json!({"site": "shop", "date_range": {"from": "2026-01-05", "to": "2026-01-05"}, "period": "hour",
                        "periods": 4, "timezone": "Europe/Berlin"});
    let r = run_retention(&hours, at(20, 0, 0), hourly.clone()).await;
    let filled: Vec<_> = table(&r).into_iter().filter(|c| c.2 > 0).collect();
    assert_eq!(filled, vec![row("2026-01-05T11:00", None, 2, &[2, 1, 1, 1])]);
    assert_eq!(r.cohorts.len(), 24, "a row per hour of the day");
    let mut on_or_after = hourly;
    on_or_after["cumulative"] = json!(true);
    let r = run_retention(&hours, at(20, 0, 0), on_or_after).await;
    let filled: Vec<_> = table(&r).into_iter().filter(|c| c.2 > 0).collect();
    assert_eq!(filled, vec![row("2026-01-05T11:00", None, 2, &[2, 2, 2, 1])]);
}

/// A site whose weeks start on Sunday: trends, retention and lifecycle put every week from
/// Sunday, in the report's time zone and across Berlin's change to summer time (Sunday, March
/// 29, 2026); the same store with the site on Monday weeks buckets ISO weeks.
#[tokio::test]
async fn a_sites_week_start_is_every_weekly_bucket() {
    use footfall::sites::{Sites, WeekStart};
    let ev = |v: &str, ts: i64| event("pageview", v, &format!("{v}-{ts}"), ts);
    // Berlin (UTC+1, then +2 from March 29, 01:00 UTC): Sat Mar 21 13:00, Sun Mar 22 11:00,
    // Sat Mar 28 23:30, Sun Mar 29 00:30, Sun Mar 29 14:00, Sat Apr 4 14:00.
    let (_tmp, data) = crate::support::store(vec![
        ev("v1", utc(2026, 3, 21, 12, 0)),
        ev("v1", utc(2026, 3, 22, 10, 0)),
        ev("v2", utc(2026, 3, 28, 22, 30)),
        ev("v1", utc(2026, 3, 28, 23, 30)),
        ev("v1", utc(2026, 3, 29, 12, 0)),
        ev("v1", utc(2026, 4, 4, 12, 0)),
    ]);
    let sites = Sites::open(&data.sites_file()).expect("sites");
    let shop = footfall::model::SiteId::parse("shop").expect("id");
    sites.add(shop.clone(), &[]).expect("add");
    let weekly = json!({"site": "shop", "date_range": {"from": "2026-03-22", "to": "2026-04-04"}, "interval": "week",
                        "timezone": "Europe/Berlin", "metrics": ["pageviews"]});
    let series = |r: &TrendsResponse| -> Vec<(String, Option<u64>)> {
        r.current.results[0].series.iter().map(|p| (p.bucket.clone(), p.values.pageviews)).collect()
    };
    let iso = trends(&env(&data, at(20, 0, 0)), &req(weekly.clone())).await.expect("trends");
    assert_eq!(
        series(&iso),
        vec![("2026-03-16".into(), Some(1)), ("2026-03-23".into(), Some(3)), ("2026-03-30".into(), Some(1))]
    );
    sites.set_week_start(&shop, WeekStart::Sunday).expect("set");
    let sunday = trends(&env(&data, at(20, 0, 0)), &req(weekly)).await.expect("trends");
    assert_eq!(series(&sunday), vec![("2026-03-22".into(), Some(2)), ("2026-03-29".into(), Some(3))]);
    // v2's only events are in the week of Sunday, March 22 (Saturday 23:30 is still that week).
    let cohorts = json!({"site": "shop", "date_range": {"from": "2026-03-22", "to": "2026-03-28"}, "period": "week",
                         "periods": 2, "timezone": "Europe/Berlin"});
    let r = run_retention(&data, utc(2026, 5, 1, 0, 0), cohorts).await;
    // First seen in the week of Mar 22: v2 (v1 was first seen on Mar 21, the week before).
    assert_eq!(table(&r), vec![row("2026-03-22", None, 1, &[1, 0])]);
    let life = footfall::reports::lifecycle::lifecycle(
        &env(&data, utc(2026, 5, 1, 0, 0)),
        &req(json!({"site": "shop", "date_range": {"from": "2026-03-22", "to": "2026-04-04"}, "period": "week", "timezone": "Europe/Berlin"})),
    )
    .await
    .expect("lifecycle");
    // Week of Mar 22: v1 returning (active the week before), v2 new. Week of Mar 29: v1
    // returning, v2 dormant.
    let weeks: Vec<_> = life.periods.iter().map(|p| (p.period.clone(), p.new, p.returning, p.dormant)).collect();
    assert_eq!(weeks, vec![("2026-03-22".into(), 1, 1, 0), ("2026-03-29".into(), 0, 1, 1)]);
}

async fn run_retention(data: &DataDir, now: i64, body: Value) -> RetentionResponse {
    retention(&env(data, now), &req(body)).await.expect("retention")
}

fn table(r: &RetentionResponse) -> Vec<(String, Option<String>, u64, Vec<u64>)> {
    r.cohorts
        .iter()
        .map(|c| (c.cohort.clone(), c.breakdown_value.clone(), c.size, c.values.iter().map(|v| v.people).collect()))
        .collect()
}

fn row(c: &str, v: Option<&str>, size: u64, people: &[u64]) -> (String, Option<String>, u64, Vec<u64>) {
    (c.into(), v.map(Into::into), size, people.to_vec())
}

#[tokio::test]
async fn retention_first_time_and_recurring() {
    let (_tmp, data) = shop();
    let base = json!({"site": "shop", "date_range": {"from": "2026-01-05", "to": "2026-01-07"}, "period": "day", "periods": 3});
    let r = run_retention(&data, at(20, 0, 0), base.clone()).await;
    // First seen: u-1 and b on Jan 5 (e was first seen on Jan 3: not a cohort here), f on
    // Jan 6, d and g on Jan 7. Back on Jan 6: u-1 (device c); Jan 7: b; f back on Jan 7;
    // nobody from Jan 7 came back on Jan 8 or 9 (a's Jan 8 visit is u-1, of Jan 5's cohort).
    assert_eq!(
        table(&r),
        vec![
            row("2026-01-05", None, 2, &[2, 1, 1]),
            row("2026-01-06", None, 1, &[1, 1, 0]),
            row("2026-01-07", None, 2, &[2, 0, 0])
        ]
    );
    assert_eq!(r.cohorts[0].values.iter().map(|v| v.percent).collect::<Vec<_>>(), vec![100.0, 50.0, 50.0]);
    insta::assert_json_snapshot!(numbers(&r));

    // Cohorts by add_to_cart. First time: u-1's first cart is Jan 5, so Jan 6 is empty.
    // Recurring: u-1 is in Jan 5's and Jan 6's cohorts; from Jan 6, u-1 is back on Jan 8.
    let mut by_cart = base.clone();
    by_cart["start_event"] = json!({"event": "add_to_cart"});
    assert_eq!(
        table(&run_retention(&data, at(20, 0, 0), by_cart.clone()).await),
        vec![
            row("2026-01-05", None, 1, &[1, 1, 0]),
            row("2026-01-06", None, 0, &[0, 0, 0]),
            row("2026-01-07", None, 3, &[3, 0, 0])
        ]
    );
    by_cart["retention_type"] = json!("recurring");
    assert_eq!(
        table(&run_retention(&data, at(20, 0, 0), by_cart).await),
        vec![
            row("2026-01-05", None, 1, &[1, 1, 0]),
            row("2026-01-06", None, 1, &[1, 0, 1]),
            row("2026-01-07", None, 3, &[3, 0, 0])
        ]
    );

    // Breakdown by the country of the first event; then "now" is Jan 8 12:00: Jan 8 is still
    // running and Jan 9 has not started.
    let mut by_country = base.clone();
    by_country["breakdown"] = json!("country");
    assert_eq!(
        table(&run_retention(&data, at(20, 0, 0), by_country).await),
        vec![
            row("2026-01-05", Some("DE"), 1, &[1, 1, 0]),
            row("2026-01-05", Some("FR"), 1, &[1, 0, 1]),
            row("2026-01-06", Some("DE"), 1, &[1, 1, 0]),
            row("2026-01-07", Some("US"), 2, &[2, 0, 0]),
        ]
    );
    let r = run_retention(&data, at(8, 12, 0), base).await;
    let complete: Vec<Vec<bool>> = r.cohorts.iter().map(|c| c.values.iter().map(|v| v.complete).collect()).collect();
    assert_eq!(complete, vec![vec![true, true, true], vec![true, true, false], vec![true, false]]);
}

#[tokio::test]
async fn reports_show_their_sql_and_bind_values() {
    let (_tmp, data) = shop();
    let r = run_funnel(&data, funnel_body(json!({"steps": [{"event": "x' OR 1=1 --"}, {"event": "purchase"}]}))).await;
    assert_eq!(counts(&r), vec![0, 0]);
    let sql = &r.sql[0];
    assert!(sql.sql.contains("FROM person_events") && sql.sql.contains("name = $"), "{}", sql.sql);
    assert!(!sql.sql.contains("OR 1=1"), "user text stays out of the SQL: {}", sql.sql);
    assert!(sql.params.iter().any(|p| p == "x' OR 1=1 --"));
}

#[tokio::test]
async fn bad_report_requests_name_the_field() {
    let (_tmp, data) = shop();
    let env = env(&data, at(20, 0, 0));
    let cases: Vec<(Value, &str)> = vec![
        (funnel_body(json!({"steps": []})), "steps"),
        (funnel_body(json!({"steps": [{"event": "a"}]})), "steps"),
        (funnel_body(json!({"window": {"value": 366, "unit": "day"}})), "window"),
        (funnel_body(json!({"window": {"value": 30, "unit": "second"}})), "window.unit"),
        (funnel_body(json!({"window": {"value": 0, "unit": "minute"}})), "window"),
        (funnel_body(json!({"breakdown": "shoe_size"})), "breakdown"),
        (funnel_body(json!({"steps": [{"event": "a", "optional": true}, {"event": "b"}]})), "steps[0].optional"),
        (funnel_body(json!({"exclusions": [{"event": "x", "from_step": 3, "to_step": 2}]})), "exclusions[0]"),
        (funnel_body(json!({"timezone": "Mars/Olympus"})), "timezone"),
        (funnel_body(json!({"stpes": []})), "stpes"),
    ];
    for (body, field) in cases {
        let err = match parse_request::<FunnelRequest>(body.to_string().as_bytes()) {
            Err(e) => e,
            Ok(r) => funnel(&env, &r).await.expect_err("a bad request"),
        };
        match err {
            Error::Invalid { field: f, message } => assert_eq!(f, field, "{body} → {message}"),
            other => panic!("{body}: not a request error: {other}"),
        }
    }
    let bad_dim =
        json!({"site": "shop", "date_range": {"from": "2026-01-05", "to": "2026-01-07"}, "breakdown": "planet"});
    let r: TrendsRequest = req(bad_dim);
    assert!(matches!(trends(&env, &r).await, Err(Error::Invalid { field, .. }) if field == "breakdown"));
    // Several breakdowns: totals only, not with `breakdown`, each dimension known and once.
    let range = json!({"from": "2026-01-05", "to": "2026-01-07"});
    let several = [
        (json!({"breakdowns": ["channel", "device"]}), "series"),
        (json!({"breakdowns": ["channel"], "breakdown": "device", "series": false}), "breakdowns"),
        (json!({"breakdowns": ["channel", "planet"], "series": false}), "breakdowns[1]"),
        (json!({"breakdowns": ["channel", "device", "channel"], "series": false}), "breakdowns[2]"),
        (json!({"breakdowns": vec!["channel"; 13], "series": false}), "breakdowns"),
    ];
    for (extra, field) in several {
        let mut body = json!({"site": "shop", "date_range": range});
        body.as_object_mut().expect("object").extend(extra.as_object().expect("object").clone());
        let r: TrendsRequest = req(body.clone());
        match trends(&env, &r).await {
            Err(Error::Invalid { field: f, .. }) => assert_eq!(f, field, "{body}"),
            other => panic!("{body}: {other:?}"),
        }
    }
    let r: RetentionRequest =
        req(json!({"site": "shop", "date_range": {"from": "2026-01-05", "to": "2026-01-07"}, "periods": 0}));
    assert!(matches!(retention(&env, &r).await, Err(Error::Invalid { field, .. }) if field == "periods"));
    let r: TrendsRequest = req(json!({"site": "shop", "date_range": {"from": "2026-01-07", "to": "2026-01-05"}}));
    assert!(matches!(trends(&env, &r).await, Err(Error::Invalid { field, .. }) if field == "date_range"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_over_http() {
    use footfall::model::SiteId;
    use footfall::sites::Sites;
    let (tmp, data) = shop();
    let sites = Sites::open(&data.sites_file()).expect("sites");
    let shop_keys = sites.add(SiteId::parse("shop").expect("id"), &[]).expect("add");
    let blog_keys = sites.add(SiteId::parse("blog").expect("id"), &[]).expect("add");
    let srv = crate::support::TestServer::start(crate::support::options(tmp.path())).await;
    let post = |kind: &str, key: &str, body: Value| {
        srv.client.post(format!("{}/api/reports/{kind}", srv.url)).bearer_auth(key).json(&body).send()
    };
    let body = funnel_body(json!({}));
    let r = post("funnel", &shop_keys.read_key, body.clone()).await.expect("send");
    assert_eq!(r.status(), 200);
    let got: Value = r.json().await.expect("json");
    let direct = run_funnel(&data, body.clone()).await;
    assert_eq!(got["steps"], serde_json::to_value(&direct.steps).expect("json"));
    assert_eq!(got["sql"][0]["sql"], json!(direct.sql[0].sql));

    // Another site's read key, no key, an unknown report.
    let r = post("funnel", &blog_keys.read_key, body.clone()).await.expect("send");
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<Value>().await.expect("json")["error"]["code"], "forbidden_site");
    let r = srv.client.post(format!("{}/api/reports/funnel", srv.url)).json(&body).send().await.expect("send");
    assert_eq!(r.status(), 401);
    assert_eq!(post("cohorts", &shop_keys.read_key, body.clone()).await.expect("send").status(), 404);

    // Bad requests: a clear 400 naming the field.
    let trends_body =
        json!({"site": "shop", "date_range": {"from": "2026-01-05", "to": "2026-01-07"}, "breakdown": "shoe_size"});
    let cases = [
        ("trends", trends_body, "breakdown", "unknown dimension \"shoe_size\""),
        ("funnel", funnel_body(json!({"steps": []})), "steps", "2 to 20 steps, got 0"),
        (
            "funnel",
            funnel_body(json!({"window": {"value": 366, "unit": "day"}})),
            "window",
            "between 1 minute and 365 days",
        ),
        ("funnel", funnel_body(json!({"window": {"value": 30, "unit": "seconds"}})), "window.unit", "unknown variant"),
        (
            "retention",
            json!({"site": "shop", "date_range": {"from": "2026-01-05", "to": "2026-03-07"}, "period": "hour"}),
            "period",
            "at most 31 days",
        ),
    ];
    for (kind, body, field, words) in cases {
        let r = post(kind, &shop_keys.read_key, body.clone()).await.expect("send");
        assert_eq!(r.status(), 400, "{body}");
        let b: Value = r.json().await.expect("json");
        assert_eq!(b["error"]["code"], "invalid_report", "{b}");
        assert_eq!(b["error"]["field"], field, "{b}");
        assert!(b["error"]["message"].as_str().expect("message").contains(words), "{b}");
    }
    srv.shutdown().await;
}

#[tokio::test]
async fn footfall_report_command() {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let (tmp, data) = shop();
    let body = funnel_body(json!({}));
    let run = |args: &[&str], stdin: Option<&str>| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_footfall"))
            .arg("report")
            .args(args)
            .arg("--data")
            .arg(tmp.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run footfall");
        if let Some(s) = stdin {
            child.stdin.take().expect("stdin").write_all(s.as_bytes()).expect("write");
        }
        drop(child.stdin.take());
        child.wait_with_output().expect("output")
    };
    let out = run(&["funnel", &body.to_string(), "--format", "json"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: Value = serde_json::from_slice(&out.stdout).expect("json");
    let direct = run_funnel(&data, body.clone()).await;
    assert_eq!(got["steps"], serde_json::to_value(&direct.steps).expect("json"));

    // From stdin, as a table: one line per step with its count.
    let out = run(&["funnel", "--show-sql"], Some(&body.to_string()));
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with("4. purchase")).expect("the purchase step");
    assert_eq!(line.split_whitespace().nth(2), Some("2"), "{text}");
    assert!(text.contains("FROM person_events"), "{text}");

    // Several breakdowns as tables: a heading per dimension, a line per value with its visitors.
    let several = json!({"site": "shop", "date_range": {"from": "2026-01-05", "to": "2026-01-07"},
        "metrics": ["visitors"], "series": false, "breakdowns": ["channel", "device"]});
    let out = run(&["trends", &several.to_string(), "--format", "json"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: Value = serde_json::from_slice(&out.stdout).expect("json");
    let text = String::from_utf8_lossy(&run(&["trends", &several.to_string()], None).stdout).into_owned();
    for d in got["by_breakdown"].as_array().expect("by_breakdown") {
        let name = d["breakdown"].as_str().expect("name");
        let section = text.split(&format!("by {name} (")).nth(1).expect("a section per dimension");
        let values = d["results"].as_array().expect("results");
        assert!(!values.is_empty(), "{d}");
        for v in values {
            let value = v["value"].as_str().unwrap_or("-");
            let line = section.lines().find(|l| l.split_whitespace().next() == Some(value)).expect("a line per value");
            assert_eq!(line.split_whitespace().nth(1), Some(v["totals"]["visitors"].to_string().as_str()), "{text}");
        }
    }

    // A bad request fails with the field named.
    let out = run(&["funnel", &funnel_body(json!({"steps": []})).to_string()], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("steps: a funnel has 2 to 20 steps"));
}

/// Two implementations of the same question must agree on generated traffic: the funnel report
/// (Rust walk over person events) and `window_funnel` in SQL; the retention report and
/// `retention()` in SQL. The generator gives some people two devices (two visitor ids, one
/// user), so the bench's SQL, which counts visitors, is run per person here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_agree_with_the_sql_functions_on_a_generated_shop() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = DataDir::new(tmp.path());
    let cfg = footfall::shopgen::ShopConfig {
        site: "bench".into(),
        seed: 3,
        events: 40_000,
        visitors: 4_000,
        start: chrono::NaiveDate::from_ymd_opt(2026, 1, 5).expect("date"),
        days: 14,
    };
    footfall::bench::generate(&data, &cfg, |_, _| {}).expect("generate");
    let start = cfg.start;
    // Three weeks: the data's two, and the hour after its last midnight where late sessions end.
    let store = footfall::bench::Store { data: &data, site: "bench", start, weeks: 3 };
    let q = |name: &'static str| footfall::bench::run_query(store, name, 1);
    let limits = footfall::query::QueryLimits::default();
    let ctx = footfall::query::session(&data, &footfall::query::Scope::All, &limits).await.expect("session");
    let per_person = |name: &str| {
        let sql = footfall::bench::sql(name, "bench", start, 3).expect("sql").replace("visitor_id", "person_id");
        let (ctx, limits) = (&ctx, &limits);
        async move {
            let out = footfall::query::run_sql(ctx, &sql, limits).await.expect("query");
            let json =
                footfall::query::output::render(&out.batches, footfall::query::output::Format::Json).expect("json");
            serde_json::from_str::<Value>(&json).expect("rows")
        }
    };
    // Some people are two visitors: the per-visitor count is larger.
    let visitors = q("funnel_sql").await.expect("funnel sql")["result"][0]["visitors"].as_u64().expect("count");
    let levels = per_person("funnel_sql").await;
    assert!(visitors > levels[0]["visitors"].as_u64().expect("count"), "{levels}");
    let per_level: Vec<u64> =
        levels.as_array().expect("rows").iter().map(|r| r["visitors"].as_u64().expect("count")).collect();
    assert_eq!(per_level.len(), 4, "{levels}");
    // window_funnel gives each visitor's furthest level; the report counts everyone at or past a step.
    let cumulative: Vec<u64> = (0..4).map(|k| per_level[k..].iter().sum()).collect();
    let report = q("report_funnel").await.expect("funnel report")["result"].clone();
    assert_eq!(report, json!(cumulative));
    assert!(cumulative[3] > 0 && cumulative[0] > cumulative[3]);

    let sql = per_person("retention_sql").await[0].clone();
    let weeks: Vec<u64> = (0..8).map(|k| sql[format!("week{k}")].as_u64().expect("count")).collect();
    let report = q("report_retention").await.expect("retention report")["result"][0].clone();
    assert_eq!(report, json!(weeks));
    assert!(weeks[1] > 0 && weeks[0] > weeks[1]);
}
