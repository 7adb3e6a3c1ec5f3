//! The engagement report on `$engagement` events worked out by hand, and the cap on scroll
//! depth at ingestion.

use footfall::model::Event;
use footfall::reports::engagement::{EngagementRequest, engagement};
use footfall::reports::parse_request;
use serde_json::{Value, json};

/// Jan 5, 2026: views of /a scrolled 30, 80 and 120% (a row stored before the cap) for 10, 20
/// and 60 s; one view of /b scrolled 50% for 5 s; pageviews, which are not views here.
fn store() -> (tempfile::TempDir, footfall::store::paths::DataDir) {
    let t = |m: i64| 1_767_607_200_000_000 + m * 60_000_000;
    let rows = [("/a", 30, 10), ("/a", 80, 20), ("/a", 120, 60), ("/b", 50, 5)];
    let mut events: Vec<Event> = rows
        .iter()
        .enumerate()
        .map(|(i, (page, scroll, seconds))| Event {
            event_id: format!("e{i}"),
            site: "shop".into(),
            ts: t(i as i64),
            name: "$engagement".into(),
            visitor_id: format!("v{i}"),
            session_id: format!("s{i}"),
            path: Some((*page).into()),
            props: [("scroll".to_owned(), scroll.to_string()), ("seconds".to_owned(), seconds.to_string())].into(),
            ..Event::default()
        })
        .collect();
    events.push(Event {
        event_id: "pv".into(),
        site: "shop".into(),
        ts: t(9),
        name: "pageview".into(),
        visitor_id: "v0".into(),
        session_id: "s0".into(),
        path: Some("/a".into()),
        ..Event::default()
    });
    crate::support::store(events)
}

#[tokio::test]
async fn scroll_depth_and_engaged_time_by_hand() {
    let (_tmp, data) = store();
    let env = crate::support::report_env(&data, 0);
    let req: EngagementRequest = parse_request(
        json!({"site": "shop", "date_range": {"from": "2026-01-05", "to": "2026-01-05"}}).to_string().as_bytes(),
    )
    .expect("request");
    let r = serde_json::to_value(engagement(&env, &req).await.expect("report")).expect("json");
    // Every view: 4; reaching 25% 4, 50% 3 (80, 100, 50), 75% 2, 100% 1 (the 120 capped);
    // mean scroll (30 + 80 + 100 + 50) / 4; seconds mean 95 / 4, median of 5, 10, 20, 60.
    assert_eq!(
        r["totals"],
        json!({"views": 4, "reached_25": 100.0, "reached_50": 75.0, "reached_75": 50.0, "reached_100": 25.0,
               "avg_scroll": 65.0, "avg_engaged_seconds": 23.75, "median_engaged_seconds": 15.0})
    );
    let pages: Vec<Value> = r["pages"].as_array().expect("pages").clone();
    assert_eq!(
        pages,
        vec![
            json!({"page": "/a", "views": 3, "reached_25": 100.0, "reached_50": 66.67, "reached_75": 66.67,
                   "reached_100": 33.33, "avg_scroll": 70.0, "avg_engaged_seconds": 30.0, "median_engaged_seconds": 20.0}),
            json!({"page": "/b", "views": 1, "reached_25": 100.0, "reached_50": 100.0, "reached_75": 0.0,
                   "reached_100": 0.0, "avg_scroll": 50.0, "avg_engaged_seconds": 5.0, "median_engaged_seconds": 5.0}),
        ]
    );
    // A filter on the page, and the limit.
    let req: EngagementRequest = parse_request(
        json!({"site": "shop", "date_range": {"from": "2026-01-05", "to": "2026-01-05"}, "limit": 1,
               "filters": [{"dimension": "page", "op": "is", "values": ["/b"]}]})
        .to_string()
        .as_bytes(),
    )
    .expect("request");
    let r = engagement(&env, &req).await.expect("report");
    assert_eq!((r.totals.views, r.pages.len(), r.pages[0].page.as_str()), (1, 1, "/b"));
    let bad = parse_request::<EngagementRequest>(
        json!({"site": "shop", "date_range": {"from": "2026-01-05", "to": "2026-01-05"}, "limit": 0})
            .to_string()
            .as_bytes(),
    )
    .expect("parses");
    assert!(
        matches!(engagement(&env, &bad).await, Err(footfall::reports::Error::Invalid { field, .. }) if field == "limit")
    );
}

/// The server stores a scroll depth over 100% as 100.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scroll_past_the_page_is_stored_as_100() {
    use crate::support::{TestServer, options, wait_for_rows};
    let dir = tempfile::tempdir().expect("tmp");
    let srv = TestServer::start(options(dir.path())).await;
    let body = json!([
        {"site": "default", "name": "$engagement", "url": "https://shop.example/a", "props": {"scroll": 140, "seconds": 12}},
        {"site": "default", "name": "$engagement", "url": "https://shop.example/b", "props": {"scroll": 60, "seconds": 3}}
    ]);
    let r = srv.post(body.to_string()).send().await.expect("send");
    assert_eq!(r.status(), reqwest::StatusCode::ACCEPTED);
    wait_for_rows(dir.path(), 2).await;
    let data = footfall::store::paths::DataDir::new(dir.path());
    let sql = "SELECT path, props['scroll'] AS scroll FROM events ORDER BY path".to_owned();
    let out = footfall::query::run_scoped_sql(&data, &footfall::query::Scope::All, sql, Default::default())
        .await
        .expect("query");
    let text = footfall::query::output::render(&out.batches, footfall::query::output::Format::Json).expect("json");
    let rows: Value = serde_json::from_str(&text).expect("rows");
    assert_eq!(rows, json!([{"path": "/a", "scroll": "100"}, {"path": "/b", "scroll": "60"}]));
    srv.shutdown().await;
}

/// The live view: the visitors of the last five minutes by the server's clock, the page each
/// is on; the backend's events are not visits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_is_on_the_site_now() {
    use footfall::clock::FixedClock;
    let dir = tempfile::tempdir().expect("tmp");
    let sites =
        footfall::sites::Sites::open(&footfall::store::paths::DataDir::new(dir.path()).sites_file()).expect("sites");
    let shop = sites.add(footfall::model::SiteId::parse("shop").expect("id"), &[]).expect("add");
    let t0 = 1_767_607_200_000_000;
    let clock = std::sync::Arc::new(FixedClock::new(t0));
    let running = footfall::server::start(crate::support::options(dir.path()), clock.clone()).await.expect("start");
    let url = format!("http://{}", running.addr);
    let client = reqwest::Client::new();
    let post = |body: Value, key: Option<&str>| {
        let mut r = client.post(format!("{url}/api/event")).header("content-type", "text/plain").body(body.to_string());
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        r.send()
    };
    let pv = |v: &str, path: &str| json!({"site": "shop", "name": "pageview", "visitor_id": v, "url": format!("https://shop.example{path}")});
    for body in [json!([pv("v1", "/a"), pv("v2", "/a")]), json!([pv("v3", "/b")])] {
        assert_eq!(post(body, None).await.expect("send").status(), reqwest::StatusCode::ACCEPTED);
    }
    // v3 moves on: a custom event keeps its page; the backend's refund is not a visitor.
    clock.set(t0 + 120_000_000);
    let later = json!([pv("v3", "/c"), {"site": "shop", "name": "signup", "visitor_id": "v3"}]);
    assert_eq!(post(later, None).await.expect("send").status(), reqwest::StatusCode::ACCEPTED);
    let refund = json!({"site": "shop", "name": "refund", "visitor_id": "v9", "order_id": "o1", "revenue": 5, "currency": "EUR"});
    assert_eq!(post(refund, Some(&shop.write_key)).await.expect("send").status(), reqwest::StatusCode::ACCEPTED);
    let live = || client.get(format!("{url}/api/sites/shop/live")).bearer_auth(&shop.read_key).send();
    let v: Value = live().await.expect("send").json().await.expect("json");
    assert_eq!((&v["visitors"], &v["window_seconds"]), (&json!(3), &json!(300)));
    assert_eq!(v["pages"], json!([{"value": "/a", "visitors": 2}, {"value": "/c", "visitors": 1}]));
    // Six minutes after the first pageviews, only v3 (seen 4 minutes ago) is still here.
    clock.set(t0 + 360_000_000);
    let v: Value = live().await.expect("send").json().await.expect("json");
    assert_eq!((&v["visitors"], &v["pages"]), (&json!(1), &json!([{"value": "/c", "visitors": 1}])));
    running.shutdown().await;
}
