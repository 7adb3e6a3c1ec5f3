//! The real server on 127.0.0.1:0 with a temp data directory.

use std::io::Write;
use std::time::Duration;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Decimal128Type, Int64Type, TimestampMicrosecondType};
use footfall::model::SiteId;
use footfall::sites::Sites;
use footfall::store::paths::DataDir;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestServer, all_files, column, options, shared, stored, wait_for_rows};

const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.130 Safari/537.36";

fn ev(name: &str) -> Value {
    json!({"site": "default", "name": name, "url": "https://shop.example/"})
}

async fn json_of(r: reqwest::Response) -> (StatusCode, Value) {
    let s = r.status();
    (s, r.json().await.expect("JSON body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_valid_partly_valid_and_invalid_requests() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = TestServer::start(options(dir.path())).await;

    let (s, b) = json_of(srv.post(ev("pageview").to_string()).send().await.expect("send")).await;
    assert_eq!((s, b), (StatusCode::ACCEPTED, json!({"accepted": 1, "rejected": []})));

    let batch = json!([ev("pageview"), {"site": "default", "url": "https://shop.example/"}, ev("add_to_cart"), {"site": "default", "name": "purchase", "revenue": "ten", "currency": "EUR"}]);
    let (s, b) = json_of(srv.post(batch.to_string()).send().await.expect("send")).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert_eq!(b["accepted"], 2);
    let rejected = b["rejected"].as_array().expect("rejected");
    assert_eq!(rejected.len(), 2);
    assert_eq!((rejected[0]["index"].clone(), rejected[0]["field"].clone()), (json!(1), json!("name")));
    assert_eq!((rejected[1]["index"].clone(), rejected[1]["field"].clone()), (json!(3), json!("revenue")));

    let (s, b) =
        json_of(srv.post(json!([{"site": "default"}, {"name": "x"}]).to_string()).send().await.expect("send")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b["error"]["code"], "invalid_events");
    assert_eq!(b["error"]["field"], "name");
    assert_eq!(b["rejected"].as_array().map(Vec::len), Some(2));

    let (s, b) = json_of(srv.post("{not json").send().await.expect("send")).await;
    assert_eq!((s, b["error"]["code"].clone()), (StatusCode::BAD_REQUEST, json!("invalid_body")));

    let too_many = Value::Array(vec![ev("pageview"); 501]);
    let (s, b) = json_of(srv.post(too_many.to_string()).send().await.expect("send")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(b["error"]["message"].as_str().expect("message").contains("501"));

    let huge = format!(
        "[{}]",
        vec![json!({"site": "default", "name": "x".repeat(190), "props": {"pad": "y".repeat(1000)}}).to_string(); 450]
            .join(",")
    );
    assert!(huge.len() > 512 * 1024);
    let (s, b) = json_of(srv.post(huge).send().await.expect("send")).await;
    assert_eq!((s, b["error"]["code"].clone()), (StatusCode::PAYLOAD_TOO_LARGE, json!("payload_too_large")));

    let r = srv
        .client
        .post(format!("{}/api/event", srv.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("a=b")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(json!([ev("pageview"), ev("pageview")]).to_string().as_bytes()).expect("gzip");
    let r = srv
        .post(gz.finish().expect("gzip"))
        .header("content-encoding", "gzip")
        .header("content-type", "application/json")
        .send()
        .await
        .expect("send");
    assert_eq!(json_of(r).await, (StatusCode::ACCEPTED, json!({"accepted": 2, "rejected": []})));

    let (s, b) = json_of(srv.post(json!({"site": "nope", "name": "x"}).to_string()).send().await.expect("send")).await;
    assert_eq!((s, b["error"]["field"].clone()), (StatusCode::FORBIDDEN, json!("site")));

    let r = srv.post(ev("x").to_string()).bearer_auth("ffw_wrong").send().await.expect("send");
    let (s, b) = json_of(r).await;
    assert_eq!((s, b["error"]["code"].clone()), (StatusCode::UNAUTHORIZED, json!("invalid_write_key")));

    let (s, b) = json_of(
        srv.post(json!({"site": "default", "name": "x", "ip": "203.0.113.1"}).to_string()).send().await.expect("send"),
    )
    .await;
    assert_eq!((s, b["error"]["field"].clone()), (StatusCode::BAD_REQUEST, json!("ip")));

    let batches = wait_for_rows(dir.path(), 5).await;
    assert_eq!(
        batches.iter().map(RecordBatch::num_rows).sum::<usize>(),
        5,
        "1 + 2 + 2 valid events stored, nothing else"
    );
    let health: Value =
        srv.client.get(format!("{}/healthz", srv.url)).send().await.expect("send").json().await.expect("json");
    assert_eq!(health["status"], "ok");
    srv.shutdown().await;
}

fn add_site(data: &std::path::Path, id: &str, domains: &[&str]) -> footfall::sites::Site {
    let sites = Sites::open(&DataDir::new(data).sites_file()).expect("sites");
    sites
        .add(SiteId::parse(id).expect("id"), &domains.iter().map(|d| (*d).to_owned()).collect::<Vec<_>>())
        .expect("add")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_every_field_and_never_the_ip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shop = add_site(dir.path(), "shop", &["shop.example"]);
    let mut opts = options(dir.path());
    opts.geoip = Some(shared("geoip/GeoLite2-City-Test.mmdb"));
    opts.trust_proxy = true;
    let srv = TestServer::start(opts).await;
    let purchase = json!({
        "event_id": "01HZZZPURCHASE0000000001",
        "site": "shop", "name": "purchase",
        "url": "https://shop.example/checkout/done?utm_source=newsletter&utm_medium=email&utm_campaign=spring&email=jo%40x.io#thanks",
        "referrer": "https://mail.google.com/mail/u/0/?q=secret",
        "timestamp": chrono::Utc::now().timestamp_millis() - 1500,
        "user_id": "user-42",
        "revenue": 59.9, "currency": "EUR", "order_id": "o-1001",
        "items": [{"id": "mug-1", "name": "Mug", "category": "Kitchen", "price": 19.95, "quantity": 2}, {"id": "tea-9", "price": 19.99, "quantity": 1}],
        "props": {"coupon": "SPRING", "gift": true, "weight": 1.5, "note": null}
    });
    let r = srv
        .post(purchase.to_string())
        .header("user-agent", CHROME)
        .header("origin", "https://www.shop.example")
        .header("x-forwarded-for", "2.125.160.216")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let server_side = json!({"site": "shop", "name": "identify", "user_id": "user-42", "ip": "81.2.69.160",
        "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1.2 Mobile/15E148 Safari/604.1"});
    let r = srv.post(server_side.to_string()).bearer_auth(&shop.write_key).send().await.expect("send");
    assert_eq!(r.status(), StatusCode::ACCEPTED);

    let batches = wait_for_rows(dir.path(), 2).await;
    let files = crate::support::parquet_files(dir.path());
    assert_eq!(files.len(), 1);
    let today = chrono::Utc::now().date_naive();
    assert!(files[0].starts_with(dir.path().join(format!("events/site=shop/date={today}"))), "{}", files[0].display());
    let b = &batches[0];
    let names = column(&batches, "name");
    let p = names.iter().position(|n| n.as_deref() == Some("purchase")).expect("purchase row");
    let i = names.iter().position(|n| n.as_deref() == Some("identify")).expect("identify row");
    let col = |c: &str| column(&batches, c);
    let at = |c: &str, row: usize| col(c)[row].clone();
    // A purchase is one per order: its id derives from the order id, not the client's id.
    assert!(at("event_id", p).is_some_and(|id| id.starts_with("order-")), "{:?}", at("event_id", p));
    assert_eq!(
        at("url", p).as_deref(),
        Some("https://shop.example/checkout/done?utm_source=newsletter&utm_medium=email&utm_campaign=spring")
    );
    assert_eq!(at("path", p).as_deref(), Some("/checkout/done"));
    assert_eq!(at("hostname", p).as_deref(), Some("shop.example"));
    assert_eq!(at("referrer", p).as_deref(), Some("https://mail.google.com/mail/u/0/"));
    assert_eq!(
        (at("source", p), at("medium", p), at("campaign", p)),
        (Some("newsletter".into()), Some("email".into()), Some("spring".into()))
    );
    assert_eq!((at("term", p), at("content", p), at("channel", p).as_deref()), (None, None, Some("Email")));
    assert_eq!(
        (at("country", p), at("region", p), at("city", p)),
        (Some("GB".into()), Some("GB-ENG".into()), Some("Boxford".into()))
    );
    assert_eq!((at("browser", p), at("browser_version", p)), (Some("Chrome".into()), Some("120.0".into())));
    assert_eq!(
        (at("os", p), at("os_version", p), at("device", p)),
        (Some("Windows".into()), Some("10".into()), Some("Desktop".into()))
    );
    assert_eq!(
        (at("currency", p), at("order_id", p), at("user_id", p)),
        (Some("EUR".into()), Some("o-1001".into()), Some("user-42".into()))
    );
    assert_eq!(at("visitor_id", p).map(|v| v.len()), Some(32));
    assert!(at("session_id", p).is_some());
    // Server-side call: body ip and user_agent are used. 81.2.69.160 is London in the test database.
    assert_eq!(
        (at("country", i), at("city", i), at("os", i), at("device", i)),
        (Some("GB".into()), Some("London".into()), Some("iOS".into()), Some("Mobile".into()))
    );
    assert_ne!(at("visitor_id", i), at("visitor_id", p));
    // Who sent each: the browser, or the site's backend (the write key).
    assert_eq!((at("origin", p).as_deref(), at("origin", i).as_deref()), (Some("browser"), Some("server")));

    let ts = b.column_by_name("ts").expect("ts").as_primitive::<TimestampMicrosecondType>().value(p);
    let client_ts = b.column_by_name("client_ts").expect("client_ts").as_primitive::<TimestampMicrosecondType>();
    let now = chrono::Utc::now().timestamp_micros();
    assert!((now - 60_000_000..=now).contains(&ts));
    assert!(client_ts.is_valid(p) && client_ts.value(p) < ts && ts - client_ts.value(p) < 60_000_000);
    assert!(client_ts.is_null(i));
    let revenue = b.column_by_name("revenue").expect("revenue").as_primitive::<Decimal128Type>();
    assert_eq!(revenue.value(p), 599_000, "59.9 at scale 4");
    let items = b.column_by_name("items").expect("items").as_list::<i32>().value(p);
    let items = items.as_struct();
    assert_eq!(items.len(), 2);
    assert_eq!(items.column_by_name("id").expect("id").as_string::<i32>().value(0), "mug-1");
    assert_eq!(items.column_by_name("category").expect("cat").as_string::<i32>().value(0), "Kitchen");
    assert!(items.column_by_name("name").expect("name").is_null(1));
    assert_eq!(items.column_by_name("price").expect("price").as_primitive::<Decimal128Type>().value(0), 199_500);
    assert_eq!(
        items.column_by_name("quantity").expect("qty").as_primitive::<Int64Type>().values().to_vec(),
        vec![2, 1]
    );
    let props = b.column_by_name("props").expect("props").as_map().value(p);
    let keys: Vec<_> = props.column(0).as_string::<i32>().iter().flatten().map(str::to_owned).collect();
    let vals: Vec<_> = props.column(1).as_string::<i32>().iter().flatten().map(str::to_owned).collect();
    assert_eq!(keys, vec!["coupon", "gift", "weight"], "null props are dropped");
    assert_eq!(vals, vec!["SPRING", "true", "1.5"]);

    srv.shutdown().await;
    for f in all_files(dir.path()) {
        let bytes = std::fs::read(&f).expect("read");
        for ip in ["2.125.160.216", "81.2.69.160", "127.0.0.1"] {
            assert!(!bytes.windows(ip.len()).any(|w| w == ip.as_bytes()), "{ip} found in {}", f.display());
        }
        assert!(!bytes.windows(8).any(|w| w == b"jo%40x.io" || w == b"jo@x.io\0"), "email found in {}", f.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origins_bots_duplicates_and_cors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shop = add_site(dir.path(), "shop", &["shop.example"]);
    let srv = TestServer::start(options(dir.path())).await;
    let shop_ev =
        |id: &str| json!({"event_id": id, "site": "shop", "name": "pageview", "url": "https://shop.example/"});

    let r = srv
        .post(shop_ev("evil-origin-1").to_string())
        .header("origin", "https://evil.example")
        .send()
        .await
        .expect("send");
    let (s, b) = json_of(r).await;
    assert_eq!((s, b["error"]["code"].clone()), (StatusCode::FORBIDDEN, json!("forbidden_site")));

    let r = srv
        .post(shop_ev("bot-event-1").to_string())
        .header("user-agent", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)")
        .send()
        .await
        .expect("send");
    assert_eq!(json_of(r).await, (StatusCode::ACCEPTED, json!({"accepted": 1, "rejected": []})));

    for _ in 0..2 {
        let r = srv
            .post(json!([shop_ev("dup-event-1"), shop_ev("dup-event-1")]).to_string())
            .header("user-agent", CHROME)
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }
    let r = srv.post(shop_ev("other-event").to_string()).header("user-agent", CHROME).send().await.expect("send");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    // A backend's HTTP client is not the visitor: its User-Agent must not make the event a bot.
    let r = srv
        .post(shop_ev("backend-event").to_string())
        .header("user-agent", "python-requests/2.31.0")
        .bearer_auth(&shop.write_key)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    // ...but the visitor's user agent it passes on is judged.
    let crawler = json!({"event_id": "backend-bot", "site": "shop", "name": "pageview", "url": "https://shop.example/", "user_agent": "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"});
    let r = srv.post(crawler.to_string()).bearer_auth(&shop.write_key).send().await.expect("send");
    assert_eq!(r.status(), StatusCode::ACCEPTED);

    let preflight = |origin: &'static str| {
        srv.client
            .request(reqwest::Method::OPTIONS, format!("{}/api/event", srv.url))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let ok = preflight("https://www.shop.example").await.expect("send");
    assert_eq!(
        ok.headers().get("access-control-allow-origin").and_then(|v| v.to_str().ok()),
        Some("https://www.shop.example")
    );
    let denied = preflight("https://evil.example").await.expect("send");
    assert!(denied.headers().get("access-control-allow-origin").is_none());

    let batches = wait_for_rows(dir.path(), 3).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let ids = column(&stored(dir.path()), "event_id");
    let mut ids: Vec<_> = ids.into_iter().flatten().collect();
    ids.sort();
    assert_eq!(
        ids,
        vec!["backend-event", "dup-event-1", "other-event"],
        "bots dropped, duplicates stored once ({} batches)",
        batches.len()
    );

    let metrics =
        srv.client.get(format!("{}/metrics", srv.url)).send().await.expect("send").text().await.expect("text");
    assert!(metrics.lines().any(|l| l.starts_with("footfall_bots_dropped_total") && !l.ends_with(" 0")), "{metrics}");
    for name in [
        "footfall_events_accepted_total",
        "footfall_events_rejected_total",
        "footfall_wal_bytes",
        "footfall_flush_seconds",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_answer_429_with_retry_after() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts = options(dir.path());
    opts.limits.per_ip = 2;
    let srv = TestServer::start(opts).await;
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let r = srv.post(ev("pageview").to_string()).send().await.expect("send");
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(r.headers().get("retry-after").is_some());
        }
        statuses.push(r.status());
    }
    assert!(statuses.contains(&StatusCode::ACCEPTED));
    assert!(statuses.contains(&StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_wal_answers_503_and_keeps_what_it_accepted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts = options(dir.path());
    opts.wal_max_bytes = 3000;
    opts.flush_interval = Duration::from_secs(3600);
    let srv = TestServer::start(opts).await;
    let mut accepted = Vec::new();
    let mut saw_503 = false;
    for n in 0..40 {
        let id = format!("walfull-{n:04}");
        let r = srv
            .post(json!({"event_id": id, "site": "default", "name": "signup"}).to_string())
            .send()
            .await
            .expect("send");
        match r.status() {
            StatusCode::ACCEPTED => accepted.push(id),
            StatusCode::SERVICE_UNAVAILABLE => {
                assert!(r.headers().get("retry-after").is_some());
                saw_503 = true;
                break;
            }
            s => panic!("unexpected {s}"),
        }
    }
    assert!(saw_503 && !accepted.is_empty(), "accepted {} before the bound", accepted.len());
    srv.shutdown().await; // the final flush empties the WAL
    let mut ids: Vec<_> = column(&stored(dir.path()), "event_id").into_iter().flatten().collect();
    ids.sort();
    assert_eq!(ids, accepted);
}

/// Post `signup` events with these ids; the answer's status.
async fn signups(srv: &TestServer, ids: &[String]) -> StatusCode {
    let batch: Vec<Value> = ids.iter().map(|id| json!({"event_id": id, "site": "default", "name": "signup"})).collect();
    srv.post(Value::Array(batch).to_string()).send().await.expect("send").status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_merges_a_partition_into_one_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = TestServer::start(options(dir.path())).await;
    for round in 0..3 {
        let ids: Vec<String> = (0..4).map(|i| format!("compact-{round}-{i}")).collect();
        assert_eq!(signups(&srv, &ids).await, StatusCode::ACCEPTED);
        wait_for_rows(dir.path(), 4 * (round + 1)).await;
    }
    // A retry that reached a later file: compaction must store it once.
    assert_eq!(signups(&srv, &["compact-0-0".into()]).await, StatusCode::ACCEPTED);
    srv.shutdown().await;
    assert!(crate::support::parquet_files(dir.path()).len() >= 3);
    // Restarting the process forgets which ids it saw, so the retry is in a file of its own.
    let srv = TestServer::start(options(dir.path())).await;
    assert_eq!(signups(&srv, &["compact-0-1".into()]).await, StatusCode::ACCEPTED);
    srv.shutdown().await;
    let before = column(&stored(dir.path()), "event_id").len();
    assert_eq!(before, 13, "12 events plus one retry stored again after the restart");

    let stdout = compact(dir.path());
    assert!(stdout.contains("compacted 1 partitions"), "{stdout}");
    let files = crate::support::parquet_files(dir.path());
    assert_eq!(files.len(), 1);
    let ids: Vec<_> = column(&stored(dir.path()), "event_id").into_iter().flatten().collect();
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 12, "deduplicated by event_id");
    assert_eq!(ids.len(), 12);
}

/// A partition holding a file that is not Parquet is skipped by the background compaction,
/// counted in `/metrics`; the other partitions still compact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_that_cannot_be_compacted_is_counted_and_the_others_compact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = footfall::store::paths::DataDir::new(dir.path());
    let site = footfall::model::SiteId::parse("default").expect("site");
    let day = |d| chrono::NaiveDate::from_ymd_opt(2026, 1, d).expect("date");
    for (d, n) in [(5, 1), (5, 2), (6, 3), (6, 4)] {
        let e = footfall::model::Event {
            event_id: format!("e{n}"),
            site: "default".into(),
            ts: day(d).and_hms_opt(12, 0, 0).expect("t").and_utc().timestamp_micros(),
            name: "pageview".into(),
            visitor_id: "v".into(),
            session_id: "s".into(),
            ..footfall::model::Event::default()
        };
        footfall::store::flush_events(&data, footfall::wal::SegmentHeader { created_ms: n, seq: n }, vec![e])
            .expect("flush");
    }
    std::fs::write(data.partition_dir(&site, day(5)).join("01J0000000000000000000BAD0.parquet"), b"not parquet")
        .expect("write");
    let mut opts = options(dir.path());
    opts.compact_interval = Duration::from_millis(200);
    let srv = TestServer::start(opts).await;
    let files = |d| footfall::store::paths::data_files(&data.partition_dir(&site, day(d))).expect("list").len();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while files(6) > 1 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!((files(5), files(6)), (3, 1));
    let metrics =
        srv.client.get(format!("{}/metrics", srv.url)).send().await.expect("send").text().await.expect("text");
    let failures: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("footfall_compaction_failures_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    assert!(failures >= 1.0, "{metrics}");
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_task_compacts_while_serving() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts = options(dir.path());
    opts.compact_interval = Duration::from_secs(1);
    let srv = TestServer::start(opts).await;
    for round in 0..2 {
        let ids: Vec<String> = (0..3).map(|i| format!("background-{round}-{i}")).collect();
        assert_eq!(signups(&srv, &ids).await, StatusCode::ACCEPTED);
        wait_for_rows(dir.path(), 3 * (round + 1)).await;
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while crate::support::parquet_files(dir.path()).len() > 1 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(crate::support::parquet_files(dir.path()).len(), 1, "the two flushes' files were merged");
    let mut ids: Vec<_> = column(&stored(dir.path()), "event_id").into_iter().flatten().collect();
    ids.sort();
    assert_eq!(
        ids,
        vec![
            "background-0-0",
            "background-0-1",
            "background-0-2",
            "background-1-0",
            "background-1-1",
            "background-1-2"
        ]
    );
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posted_events_become_visible_to_sql() {
    use footfall::query::{self, QueryLimits, Scope};
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = TestServer::start(options(dir.path())).await;
    let ids: Vec<String> = (0..3).map(|i| format!("sql-visible-{i}")).collect();
    assert_eq!(signups(&srv, &ids).await, StatusCode::ACCEPTED);
    let limits = QueryLimits::default();
    let data = footfall::store::paths::DataDir::new(dir.path());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let seen = loop {
        let ctx = query::session(&data, &Scope::All, &limits).await.expect("session");
        let out = query::run_sql(&ctx, "SELECT event_id FROM events WHERE site = 'default' ORDER BY event_id", &limits)
            .await
            .expect("query");
        let seen = column(&out.batches, "event_id");
        if seen.len() == 3 || std::time::Instant::now() > deadline {
            break seen;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(seen.into_iter().flatten().collect::<Vec<_>>(), ids);
    srv.shutdown().await;
}

/// Run `footfall compact` over `data`; what it printed.
fn compact(data: &std::path::Path) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_footfall"))
        .args(["compact", "--data"])
        .arg(data)
        .output()
        .expect("run footfall compact");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Purchases, refunds and their revenue as SQL's `events` view counts them.
fn orders_in_sql(data: &std::path::Path) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_footfall"))
        .args(["query", "--format", "csv", "--data"])
        .arg(data)
        .arg(
            "SELECT count(*) FILTER (WHERE name = 'purchase') AS orders, count(*) FILTER (WHERE name = 'refund') AS refunds, \
             CAST(sum(CASE WHEN name = 'purchase' THEN revenue ELSE -revenue END) AS DOUBLE) AS net FROM events",
        )
        .output()
        .expect("run footfall query");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().nth(1).unwrap_or_default().to_owned()
}

/// An order and a refund sent again after a restart (the new process does not remember their
/// ids, and they land in a file of their own) are stored once, before compaction and after; a
/// second refund of the same amount with its own `refund_id` is another refund.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_and_a_refund_resent_after_a_restart_count_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let buy = json!({"site": "default", "name": "purchase", "order_id": "o-7", "revenue": 30, "currency": "EUR"});
    let refund = json!({"site": "default", "name": "refund", "order_id": "o-7", "revenue": 10, "currency": "EUR"});
    let another = json!({"site": "default", "name": "refund", "order_id": "o-7", "revenue": 10, "currency": "EUR",
        "props": {"refund_id": "r-2"}});
    for round in 0..2 {
        let srv = TestServer::start(options(dir.path())).await;
        let mut bodies = vec![&buy, &refund];
        if round == 1 {
            bodies.push(&another);
        }
        for body in bodies {
            assert_eq!(srv.post(body.to_string()).send().await.expect("send").status(), StatusCode::ACCEPTED);
        }
        srv.shutdown().await;
    }
    assert_eq!(crate::support::parquet_files(dir.path()).len(), 2, "one file per run");
    // One order of 30, two refunds of 10: 10 net.
    assert_eq!(orders_in_sql(dir.path()), "1,2,10.0");
    compact(dir.path());
    assert_eq!(crate::support::parquet_files(dir.path()).len(), 1);
    assert_eq!(orders_in_sql(dir.path()), "1,2,10.0");
}

/// Event time through batching: each event's time is the receive time less its age by the
/// client's clock (`sent_at - timestamp`), whatever that clock's error (here six years slow),
/// and events at the same instant keep the request's order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_times_are_the_clients_gaps_and_ties_keep_the_requests_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = TestServer::start(options(dir.path())).await;
    let t0: i64 = 1_600_000_000_000; // September 2020, in the client's milliseconds.
    let ev = |name: &str, timestamp: Option<i64>| {
        let mut e = json!({"site": "default", "name": name, "url": "https://shop.example/"});
        if let Some(t) = timestamp {
            e["timestamp"] = json!(t);
        }
        e
    };
    // Viewed, 2.5 s later added to the cart and bought in the same millisecond, sent 10 s
    // after the view; then a batch without client times.
    let mut first = vec![ev("v", Some(t0)), ev("c", Some(t0 + 2_500)), ev("p", Some(t0 + 2_500))];
    first[2]["sent_at"] = json!(t0 + 10_000);
    let before = chrono::Utc::now().timestamp_micros();
    for batch in [Value::Array(first), json!([ev("x", None), ev("y", None), ev("z", None)])] {
        assert_eq!(srv.post(batch.to_string()).send().await.expect("send").status(), StatusCode::ACCEPTED);
    }
    let after = chrono::Utc::now().timestamp_micros();
    srv.shutdown().await;
    let rows = stored(dir.path());
    let mut times: Vec<(i64, String)> = Vec::new();
    for b in &rows {
        let ts = b.column_by_name("ts").expect("ts").as_primitive::<TimestampMicrosecondType>();
        let names = b.column_by_name("name").expect("name").as_string::<i32>();
        times.extend((0..b.num_rows()).map(|i| (ts.value(i), names.value(i).to_owned())));
    }
    times.sort();
    let at = |n: &str| times.iter().find(|(_, m)| m == n).expect("stored").0;
    let order: Vec<&str> = times.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(order, vec!["v", "c", "p", "x", "y", "z"]);
    assert_eq!((at("c") - at("v"), at("p") - at("c")), (2_500_000, 1));
    // The view was 10 s before the request arrived, by the server's clock.
    assert!((before - 10_000_000..=after - 10_000_000).contains(&at("v")), "{times:?}");
    assert_eq!((at("y") - at("x"), at("z") - at("y")), (1, 1));
}
