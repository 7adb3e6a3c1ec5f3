//! The hardening probe's findings, each as a test against a real server: no key, query,
//! socket or damaged file stops the collector or loses what it acknowledged.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Child, TestServer, options, site_keys, wait_for_rows};

const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(60)).build().expect("client")
}

async fn sql(c: &reqwest::Client, url: &str, key: &str, sql: &str) -> (StatusCode, Value) {
    let r = c.post(format!("{url}/api/sql")).bearer_auth(key).json(&json!({"sql": sql})).send().await.expect("send");
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn healthy(c: &reqwest::Client, url: &str) {
    let r = c.get(format!("{url}/healthz")).send().await.expect("the collector answers");
    assert_eq!(r.status(), 200);
}

async fn post_events(c: &reqwest::Client, url: &str, n: usize, tag: &str) {
    let body: Vec<Value> = (0..n)
        .map(|i| json!({"site": "default", "name": "pageview", "url": format!("https://shop.example/{tag}/{i}"), "event_id": format!("evt-{tag}-{i:06}")}))
        .collect();
    let r = c.post(format!("{url}/api/event")).header("user-agent", BROWSER).json(&body).send().await.expect("send");
    assert_eq!(r.status(), 202, "{:?}", r.text().await);
}

/// Findings 1 and 3: the crash chains, the 2,500-value filter, the segment that crashed every
/// report using it, and the memory bombs answer 4xx; the collector stays up and under 2 GB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_key_can_neither_crash_nor_bloat_the_collector() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // The deadline leaves room for a machine busy with other tests (query threads run at nice 19).
    let srv = Child::spawn(tmp.path(), &["--flush-interval", "0.2", "--query-timeout", "15"], None);
    let (read, write) = site_keys(tmp.path(), "default");
    let (c, url) = (client(), srv.url.clone());
    post_events(&c, &url, 20, "before").await;
    wait_for_rows(tmp.path(), 20).await;

    for (op, atom) in [(" + ", "1"), (" OR ", "TRUE"), (" AND ", "TRUE"), (" || ", "'a'")] {
        let (status, body) = sql(&c, &url, &read, &format!("SELECT {} AS x", vec![atom; 2_000].join(op))).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("query_too_complex")),
            "{op}: {body}"
        );
        assert_eq!(body["error"]["field"], "sql");
        healthy(&c, &url).await;
        // At the limit the same chain is planned and answered (on the query threads' stacks).
        let (status, body) = sql(&c, &url, &read, &format!("SELECT {} AS x", vec![atom; 127].join(op))).await;
        assert_eq!(status, StatusCode::OK, "{op}: {body}");
    }
    let unions = vec!["SELECT 1 AS x"; 3_000].join(" UNION ALL ");
    assert_eq!(sql(&c, &url, &read, &unions).await.0, StatusCode::BAD_REQUEST);
    let (status, body) = sql(&c, &url, &read, &format!("SELECT 1 {}", "x".repeat(70_000))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("query_too_complex")));

    let values: Vec<String> = (0..2_500).map(|i| format!("/p{i}")).collect();
    let r = c
        .post(format!("{url}/api/reports/trends"))
        .bearer_auth(&read)
        .json(&json!({"site": "default", "date_range": {"from": "2026-01-01", "to": "2026-01-31"},
                      "filters": [{"dimension": "page", "values": values}]}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.expect("json")["error"]["field"], "filters[0].values");

    // The segment that once crashed every report using it cannot be saved, by any key.
    let segs = format!("{url}/api/sites/default/segments");
    let big = json!({"name": "big", "definition": {"type": "property", "dimension": "page", "values": values}});
    assert_eq!(c.post(&segs).bearer_auth(&read).json(&big).send().await.expect("send").status(), 403);
    let r = c.post(&segs).bearer_auth(&write).json(&big).send().await.expect("send");
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.expect("json")["error"]["field"], "definition", "over the size limit");
    let many =
        json!({"name": "many", "definition": {"type": "property", "dimension": "page", "values": vec!["a"; 2_500]}});
    let r = c.post(&segs).bearer_auth(&write).json(&many).send().await.expect("send");
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.expect("json")["error"]["field"], "definition.values", "over the values limit");
    // Nor can a definition nested 60 deep (it answered 500).
    let mut deep = json!({"type": "first_seen", "within_days": 7});
    for _ in 0..60 {
        deep = json!({"type": "all", "conditions": [deep]});
    }
    for (to, key, body) in [
        (segs.clone(), &write, json!({"name": "deep", "definition": deep})),
        (format!("{url}/api/reports/segment"), &read, json!({"site": "default", "definition": deep})),
    ] {
        let r = c.post(&to).bearer_auth(key).json(&body).send().await.expect("send");
        assert_eq!(r.status(), 400, "{to}");
    }

    for bomb in [
        "SELECT length(lpad('x', 2000000000)) AS n",
        "SELECT length(repeat('x', 1000000000)) AS n",
        "SELECT cardinality(array_repeat(1, 1000000000)) AS n",
        "SELECT cardinality(range(1, 1000000000)) AS n",
        "SELECT length(repeat(path, 100000000)) AS n FROM events",
        "WITH a AS (SELECT repeat('x', 9000000) AS s), b AS (SELECT s || s AS s FROM a) SELECT length(s || s) AS n FROM b",
    ] {
        let (status, body) = sql(&c, &url, &read, bomb).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bomb}: {body}");
        assert_eq!(body["error"]["code"], "query_memory_exceeded");
        assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("the limit is")), "{body}");
    }
    let peak = srv.peak_rss();
    assert!(peak < 2 << 30, "peak RSS {peak} bytes");

    // A query past its deadline answers its JSON error (not an empty 408 from the HTTP layer).
    let (status, body) = sql(&c, &url, &read, "SELECT count(*) AS n FROM generate_series(1, 1000000000000)").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::REQUEST_TIMEOUT, Some("query_timeout")),
        "{body}"
    );

    healthy(&c, &url).await;
    post_events(&c, &url, 5, "after").await;
    assert_eq!(wait_for_rows(tmp.path(), 25).await.iter().map(|b| b.num_rows()).sum::<usize>(), 25);
}

/// Finding 2: planning and execution run off the ingest runtime, so ingestion keeps answering
/// while two CPU-bound queries run. (Before, two heavy queries held both async workers and
/// `/api/event` timed out for the 86 s measured.) The p99 goal, within 2x of idle, is a speed
/// figure: `bash bench/ingest_vs_queries.sh` measures it (BENCHMARKS.md); here the bound is a
/// second, far from both the goal and the old failure, so a busy test machine cannot flake it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingestion_keeps_answering_while_two_heavy_queries_run() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let srv = Child::spawn(tmp.path(), &["--query-timeout", "20"], None);
    let (read, _) = site_keys(tmp.path(), "default");
    let (c, url) = (client(), srv.url.clone());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let heavy: Vec<_> = (0..2)
        .map(|_| {
            let (c, url, read, stop) = (c.clone(), url.clone(), read.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    // CPU-bound until its deadline: 10^12 rows to count.
                    sql(
                        &c,
                        &url,
                        &read,
                        "SELECT count(*) AS n FROM generate_series(1, 1000000000000) WHERE value % 7 = 3",
                    )
                    .await;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut slowest = Duration::ZERO;
    for i in 0..300 {
        let t = Instant::now();
        post_events(&c, &url, 1, &format!("loaded{i}")).await;
        slowest = slowest.max(t.elapsed());
    }
    healthy(&c, &url).await;
    let running = sql(&c, &url, &read, "SELECT 1 AS one").await.0;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for h in heavy {
        h.abort();
    }
    assert!(slowest < Duration::from_secs(1), "an event took {slowest:?} while two heavy queries ran");
    // The queries were really running (a third one waited its turn or ran beside them).
    assert_eq!(running, StatusCode::OK);
}

/// Finding 4: 1,100 idle sockets under a 1,024 file limit leave the collector answering and
/// flushing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_cannot_exhaust_the_file_limit() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let srv = Child::spawn(tmp.path(), &["--header-timeout", "2", "--flush-interval", "0.2"], Some(1024));
    let addr = srv.url.trim_start_matches("http://").to_owned();
    let sock_addr: std::net::SocketAddr = addr.parse().expect("addr");
    let idle: Vec<TcpStream> =
        (0..1_100).filter_map(|_| TcpStream::connect_timeout(&sock_addr, Duration::from_secs(3)).ok()).collect();
    assert!(idle.len() > 1_024, "opened {} idle sockets", idle.len());
    let c = client();
    healthy(&c, &srv.url).await;
    post_events(&c, &srv.url, 3, "crowded").await;
    assert_eq!(wait_for_rows(tmp.path(), 3).await.iter().map(|b| b.num_rows()).sum::<usize>(), 3, "the flush works");
    let metrics = c.get(format!("{}/metrics", srv.url)).send().await.expect("send").text().await.expect("text");
    assert!(!metrics.lines().any(|l| l.starts_with("footfall_flush_errors_total") && !l.ends_with(" 0")), "{metrics}");
    drop(idle);
}

/// Header deadline: a client that sends nothing, trickles header lines, or idles after a
/// keep-alive request is disconnected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_slow_and_idle_clients_are_disconnected() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut opts = options(tmp.path());
    opts.connections.header_timeout = Duration::from_secs(1);
    let srv = TestServer::start(opts).await;
    let addr = srv.url.trim_start_matches("http://").to_owned();
    let closed_within = |mut s: TcpStream, limit: Duration, trickle: bool| {
        std::thread::spawn(move || {
            let start = Instant::now();
            s.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
            let mut buf = [0u8; 4096];
            while start.elapsed() < limit {
                if trickle && s.write_all(b"X-Slow: 1\r\n").is_err() {
                    return true;
                }
                match s.read(&mut buf) {
                    Ok(0) => return true,
                    Ok(_) => {}
                    Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                    Err(_) => return true,
                }
            }
            false
        })
    };
    let silent = TcpStream::connect(&addr).expect("connect");
    let mut slow = TcpStream::connect(&addr).expect("connect");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").expect("write");
    let mut kept = TcpStream::connect(&addr).expect("connect");
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
    let mut first = [0u8; 12];
    kept.read_exact(&mut first).expect("a response");
    assert_eq!(&first, b"HTTP/1.1 200");
    let limit = Duration::from_secs(10);
    for (name, h) in [
        ("silent", closed_within(silent, limit, false)),
        ("trickling headers", closed_within(slow, limit, true)),
        ("idle keep-alive", closed_within(kept, limit, false)),
    ] {
        assert!(h.join().expect("thread"), "{name} connection still open after {limit:?}");
    }
    srv.shutdown().await;
}

/// Privacy: `DNT: 1` and `Sec-GPC: 1` on browser requests and the pixel are honoured; backend
/// calls with a write key are not browser requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn do_not_track_and_global_privacy_control_are_honoured() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let srv = TestServer::start(options(tmp.path())).await;
    let (_, write) = site_keys(tmp.path(), "default");
    let c = &srv.client;
    let ev = |id: &str| json!({"site": "default", "name": "pageview", "url": "https://shop.example/", "event_id": id});
    for (h, id) in [("dnt", "dnt-0001"), ("sec-gpc", "gpc-0001")] {
        let r = c
            .post(format!("{}/api/event", srv.url))
            .header("user-agent", BROWSER)
            .header(h, "1")
            .json(&ev(id))
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 202);
        assert_eq!(r.json::<Value>().await.expect("json")["accepted"], 1, "acknowledged, as the snippet's own drop is");
    }
    let r = c
        .get(format!("{}/api/event.gif?site=default&url=https://shop.example/mail", srv.url))
        .header("user-agent", BROWSER)
        .header("dnt", "1")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let r = c
        .post(format!("{}/api/event", srv.url))
        .bearer_auth(&write)
        .header("dnt", "1")
        .json(&json!({"site": "default", "name": "purchase", "event_id": "backend-0001", "user_agent": BROWSER, "order_id": "o1", "revenue": 5, "currency": "EUR"}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 202, "{:?}", r.text().await);
    let ok = c
        .post(format!("{}/api/event", srv.url))
        .header("user-agent", BROWSER)
        .header("dnt", "0")
        .json(&ev("dnt-off-0001"))
        .send()
        .await
        .expect("send");
    assert_eq!(ok.status(), 202);
    let rows = wait_for_rows(tmp.path(), 2).await;
    let mut names = crate::support::column(&rows, "path");
    names.sort();
    assert_eq!(names, vec![None, Some("/".to_owned())], "the purchase (no url) and the DNT: 0 pageview only");
    let metrics = c.get(format!("{}/metrics", srv.url)).send().await.expect("send").text().await.expect("text");
    let dropped: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("footfall_dnt_dropped_total "))
        .and_then(|v| v.parse().ok())
        .expect("footfall_dnt_dropped_total");
    assert!(dropped >= 3.0, "{dropped}");
    srv.shutdown().await;

    // --dnt cookieless keeps them, without the first-party id.
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut opts = options(tmp.path());
    opts.dnt = footfall::ingest::DntMode::Cookieless;
    let srv = TestServer::start(opts).await;
    let mut e = ev("cookieless-0001");
    e["visitor_id"] = json!("first-party-id-123");
    let r = srv
        .client
        .post(format!("{}/api/event", srv.url))
        .header("user-agent", BROWSER)
        .header("sec-gpc", "1")
        .json(&e)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 202);
    let rows = wait_for_rows(tmp.path(), 1).await;
    let visitors = crate::support::column(&rows, "visitor_id");
    assert_eq!(visitors.len(), 1);
    assert_ne!(visitors[0].as_deref(), Some("first-party-id-123"));
    srv.shutdown().await;
}

/// `/metrics` behind `--metrics-key`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_key_guards_metrics() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut opts = options(tmp.path());
    opts.metrics_key = Some("m-0123456789abcdef".into());
    let srv = TestServer::start(opts).await;
    let url = format!("{}/metrics", srv.url);
    assert_eq!(srv.client.get(&url).send().await.expect("send").status(), 401);
    assert_eq!(srv.client.get(&url).bearer_auth("m-0123456789abcdeX").send().await.expect("send").status(), 401);
    let r = srv.client.get(&url).bearer_auth("m-0123456789abcdef").send().await.expect("send");
    assert_eq!(r.status(), 200);
    assert!(r.text().await.expect("text").contains("footfall_"));
    srv.shutdown().await;
    let mut weak = options(tmp.path());
    weak.metrics_key = Some("short".into());
    assert!(footfall::server::start(weak, std::sync::Arc::new(footfall::clock::SystemClock)).await.is_err());
}

/// CSV exports: a user id that is a spreadsheet formula comes out as text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_exports_neutralise_formulas() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let srv = TestServer::start(options(tmp.path())).await;
    let (read, write) = site_keys(tmp.path(), "default");
    let evil = "=HYPERLINK(\"http://evil.example\",\"x\")";
    let r = srv
        .client
        .post(format!("{}/api/event", srv.url))
        .bearer_auth(&write)
        .json(&json!([{"site": "default", "name": "identify", "user_id": evil, "user_agent": BROWSER, "ip": "203.0.113.1"},
                      {"site": "default", "name": "pageview", "user_id": evil, "url": "https://shop.example/", "user_agent": BROWSER, "ip": "203.0.113.1"}]))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 202);
    wait_for_rows(tmp.path(), 2).await;
    let text = |path: &str, body: Value| {
        let req = srv.client.post(format!("{}{path}", srv.url)).bearer_auth(&read).json(&body);
        async move { req.send().await.expect("send").text().await.expect("text") }
    };
    let csv = text(
        "/api/segments/members.csv",
        json!({"site": "default", "definition": {"type": "first_seen", "within_days": 30}}),
    )
    .await;
    assert!(csv.contains("\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")\""), "{csv}");
    let sql = text("/api/sql", json!({"sql": "SELECT DISTINCT user_id FROM events", "format": "csv"})).await;
    assert_eq!(sql, "user_id\n\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")\"\n");
    srv.shutdown().await;
}

/// Finding 6, end to end: a `kill -9`, a damaged byte in the middle of the WAL, a restart:
/// every acknowledged event but the damaged record's is stored, and the loss is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_wal_record_costs_only_itself() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut srv = Child::spawn(tmp.path(), &["--flush-interval", "3600"], None);
    let c = client();
    for i in 0..40 {
        post_events(&c, &srv.url, 1, &format!("r{i}")).await;
    }
    srv.child.kill().expect("kill -9");
    srv.child.wait().expect("wait");
    let wal = tmp.path().join("wal");
    let seg = std::fs::read_dir(&wal)
        .expect("wal dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .expect("a segment");
    let mut bytes = std::fs::read(&seg).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&seg, &bytes).expect("damage");
    drop(srv);

    let srv = Child::spawn(tmp.path(), &["--flush-interval", "0.2"], None);
    let rows = wait_for_rows(tmp.path(), 39).await;
    let ids = crate::support::column(&rows, "event_id");
    assert_eq!(ids.len(), 39, "every record but the damaged one");
    let metrics = c.get(format!("{}/metrics", srv.url)).send().await.expect("send").text().await.expect("text");
    assert!(metrics.contains("footfall_wal_records_lost_total 1"), "{metrics}");
    assert!(
        std::fs::read_dir(&wal)
            .expect("wal dir")
            .flatten()
            .any(|e| e.path().to_string_lossy().ends_with(".wal.damaged")),
        "the damaged segment is kept for inspection"
    );
}
