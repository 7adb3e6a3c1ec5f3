//! The `events` table and read-only SQL over a store built by the flusher.

use std::time::Duration;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use footfall::model::{Event, SiteId};
use footfall::query::{self, Error, QueryLimits, Scope};
use footfall::store::{flush_events, paths::DataDir};
use footfall::wal::SegmentHeader;

const DAY: i64 = 86_400 * 1_000_000;
/// 2026-01-01T00:00:00Z in microseconds.
const JAN1: i64 = 1_767_225_600 * 1_000_000;

fn ev(id: &str, site: &str, ts: i64, name: &str) -> Event {
    let mut e = Event {
        event_id: id.into(),
        site: site.into(),
        ts,
        name: name.into(),
        visitor_id: format!("v-{id}"),
        session_id: "s".into(),
        ..Default::default()
    };
    e.props.insert("coupon".into(), format!("C{id}"));
    e
}

/// Site a: 3 events on Jan 1, 2 on Jan 2. Site b: 4 on Jan 1.
fn store() -> (tempfile::TempDir, DataDir) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = DataDir::new(tmp.path());
    let events = vec![
        ev("a1", "a", JAN1, "pageview"),
        ev("a2", "a", JAN1 + 10, "pageview"),
        ev("a3", "a", JAN1 + 20, "purchase"),
        ev("a4", "a", JAN1 + DAY, "pageview"),
        ev("a5", "a", JAN1 + DAY + 5, "signup"),
        ev("b1", "b", JAN1, "pageview"),
        ev("b2", "b", JAN1 + 1, "pageview"),
        ev("b3", "b", JAN1 + 2, "pageview"),
        ev("b4", "b", JAN1 + 3, "purchase"),
    ];
    flush_events(&data, SegmentHeader { created_ms: 1, seq: 1 }, events).expect("flush");
    (tmp, data)
}

async fn sql(data: &DataDir, scope: &Scope, q: &str) -> Result<Vec<RecordBatch>, Error> {
    let limits = QueryLimits::default();
    let ctx = query::session(data, scope, &limits).await?;
    query::run_sql(&ctx, q, &limits).await.map(|o| o.batches)
}

fn rows(batches: &[RecordBatch]) -> Vec<String> {
    footfall::query::output::render(batches, footfall::query::output::Format::Csv)
        .expect("csv")
        .lines()
        .skip(1)
        .map(str::to_owned)
        .collect()
}

fn site(s: &str) -> SiteId {
    SiteId::parse(s).expect("site")
}

#[tokio::test]
async fn events_table_has_partition_columns_and_props() {
    let (_tmp, data) = store();
    let all = Scope::All;
    let out = sql(&data, &all, "SELECT site, date, count(*) AS n FROM events GROUP BY site, date ORDER BY site, date")
        .await
        .expect("query");
    assert_eq!(rows(&out), vec!["a,2026-01-01,3", "a,2026-01-02,2", "b,2026-01-01,4"]);
    let out = sql(&data, &all, "SELECT event_id FROM events WHERE site = 'a' AND date BETWEEN DATE '2026-01-02' AND DATE '2026-01-31' ORDER BY event_id").await.expect("query");
    assert_eq!(rows(&out), vec!["a4", "a5"]);
    let out = sql(&data, &all, "SELECT props['coupon'] AS coupon FROM events WHERE event_id = 'b3'")
        .await
        .expect("map access");
    assert_eq!(rows(&out), vec!["Cb3"]);
    // footfall's functions are registered on every session.
    let q = "SELECT site, retention(name = 'pageview', name = 'purchase', name = 'signup') AS r FROM events GROUP BY site ORDER BY site";
    let out = sql(&data, &all, q).await.expect("retention");
    let r: Vec<Vec<u8>> = (0..out[0].num_rows())
        .map(|i| {
            out[0].column(1).as_list::<i32>().value(i).as_primitive::<arrow::datatypes::UInt8Type>().values().to_vec()
        })
        .collect();
    assert_eq!(r, vec![vec![1, 1, 1], vec![1, 1, 0]], "site a has all three events, b no signup");
}

#[tokio::test]
async fn a_site_scope_cannot_be_escaped_by_sql() {
    let (_tmp, data) = store();
    let only_a = Scope::Sites(vec![site("a")]);
    let count = |b: &[RecordBatch]| b[0].column(0).as_primitive::<Int64Type>().value(0);
    assert_eq!(count(&sql(&data, &only_a, "SELECT count(*) FROM events").await.expect("q")), 5);
    assert_eq!(count(&sql(&data, &only_a, "SELECT count(*) FROM events WHERE site = 'b'").await.expect("q")), 0);
    assert_eq!(
        count(
            &sql(&data, &only_a, "SELECT count(*) FROM events WHERE site = 'b' OR site <> 'a' OR true")
                .await
                .expect("q")
        ),
        5
    );
    let out = sql(&data, &only_a, "SELECT DISTINCT site FROM events").await.expect("q");
    assert_eq!(rows(&out), vec!["a"]);
    let both = Scope::Sites(vec![site("a"), site("b")]);
    assert_eq!(count(&sql(&data, &both, "SELECT count(*) FROM events").await.expect("q")), 9);
}

#[tokio::test]
async fn only_read_only_single_statements_run() {
    let (tmp, data) = store();
    let scope = Scope::All;
    let target = tmp.path().join("copy.parquet");
    let refused = [
        "CREATE TABLE t AS SELECT 1".to_owned(),
        "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '/etc/'".to_owned(),
        "CREATE VIEW v AS SELECT * FROM events".to_owned(),
        "DROP TABLE events".to_owned(),
        "INSERT INTO events (event_id) VALUES ('x')".to_owned(),
        "DELETE FROM events".to_owned(),
        format!("COPY events TO '{}'", target.display()),
        "SET datafusion.execution.batch_size = 1".to_owned(),
        "SELECT 1; SELECT 2".to_owned(),
    ];
    for q in &refused {
        match sql(&data, &scope, q).await {
            Err(Error::Refused(msg)) => assert!(!msg.is_empty()),
            Err(Error::DataFusion(e)) => panic!("{q}: refused only by accident: {e}"),
            other => panic!("{q}: not refused: {other:?}"),
        }
    }
    assert!(!target.exists());
    // No file is reachable as a table.
    for q in [
        "SELECT * FROM '/etc/passwd'",
        "SELECT * FROM read_parquet('/etc/passwd')",
        "SELECT * FROM read_csv('/etc/passwd')",
    ] {
        assert!(sql(&data, &scope, q).await.is_err(), "{q} ran");
    }
}

#[tokio::test]
async fn row_time_and_memory_limits_hold() {
    let (_tmp, data) = store();
    let small = QueryLimits { max_rows: 4, ..QueryLimits::default() };
    let ctx = query::session(&data, &Scope::All, &small).await.expect("session");
    let out = query::run_sql(&ctx, "SELECT event_id FROM events ORDER BY event_id", &small).await.expect("query");
    assert!(out.truncated);
    assert_eq!(rows(&out.batches), vec!["a1", "a2", "a3", "a4"]);

    let quick = QueryLimits { timeout: Duration::from_millis(50), ..QueryLimits::default() };
    let ctx = query::session(&data, &Scope::All, &quick).await.expect("session");
    let slow = "SELECT count(*) FROM generate_series(1, 100000000000)";
    assert!(matches!(query::run_sql(&ctx, slow, &quick).await, Err(Error::Timeout(_))));

    let tight = QueryLimits { memory_bytes: 1 << 20, ..QueryLimits::default() };
    let ctx = query::session(&data, &Scope::All, &tight).await.expect("session");
    let hungry = "SELECT value, count(*) FROM generate_series(1, 3000000) GROUP BY value ORDER BY value";
    let err = query::run_sql(&ctx, hungry, &tight).await.expect_err("over the memory pool");
    assert!(err.to_string().contains("Resources exhausted"), "{err}");
}

#[test]
fn the_cli_prints_csv_and_json() {
    let (tmp, _data) = store();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_footfall"))
            .arg("query")
            .args(args)
            .arg("--data")
            .arg(tmp.path())
            .output()
            .expect("run");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) =
        run(&["--format", "csv", "SELECT site, count(*) AS n FROM events GROUP BY site ORDER BY site"]);
    assert!(ok, "{err}");
    assert_eq!(out, "site,n\na,5\nb,4\n");
    let (ok, out, _) = run(&["--format", "json", "--site", "b", "SELECT count(*) AS n FROM events"]);
    assert!(ok);
    assert_eq!(out, r#"[{"n":4}]"#);
    let (ok, _, err) = run(&["DROP TABLE events"]);
    assert!(!ok);
    assert!(err.contains("only read-only queries are allowed"), "{err}");
}

fn at(id: &str, site: &str, visitor: &str, ts: i64, name: &str, user: Option<&str>) -> Event {
    Event {
        event_id: id.into(),
        site: site.into(),
        visitor_id: visitor.into(),
        ts: JAN1 + ts,
        name: name.into(),
        user_id: user.map(str::to_owned),
        session_id: "s".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn people_are_counted_across_devices_and_before_login() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = DataDir::new(tmp.path());
    let events = vec![
        // laptop: anonymous, then logs in as u1
        at("e01", "shop", "v1", 10, "pageview", None),
        at("e02", "shop", "v1", 20, "identify", Some("u1")),
        at("e03", "shop", "v1", 30, "purchase", None),
        // phone: the same person logs in there too
        at("e04", "shop", "v2", 40, "pageview", None),
        at("e05", "shop", "v2", 50, "identify", Some("u1")),
        at("e06", "shop", "v2", 60, "add_to_cart", None),
        // never logs in
        at("e07", "shop", "v3", 70, "pageview", None),
        // identified as u2 first, later as u3: the first identify owns the visitor
        at("e08", "shop", "v4", 80, "identify", Some("u2")),
        at("e09", "shop", "v4", 85, "identify", Some("u3")),
        at("e10", "shop", "v4", 90, "pageview", None),
        // a backend event that names its user itself
        at("e11", "shop", "v5", 100, "purchase", Some("u4")),
        // another site where a visitor with the same id logged in earlier as someone else
        at("e12", "blog", "v1", 1, "identify", Some("u9")),
    ];
    flush_events(&data, SegmentHeader { created_ms: 1, seq: 1 }, events).expect("flush");
    let all = Scope::All;
    let out = sql(&data, &all, "SELECT event_id, person_id FROM person_events ORDER BY event_id").await.expect("query");
    assert_eq!(
        rows(&out),
        vec![
            "e01,u:u1", "e02,u:u1", "e03,u:u1", "e04,u:u1", "e05,u:u1", "e06,u:u1", "e07,v:v3", "e08,u:u2", "e09,u:u3",
            "e10,u:u2", "e11,u:u4", "e12,u:u9",
        ]
    );
    let out =
        sql(&data, &all, "SELECT count(DISTINCT person_id) FROM person_events WHERE site = 'shop'").await.expect("q");
    assert_eq!(rows(&out), vec!["5"], "u1 (two devices), v3, u2, u3 (its own login on v4) and u4");
    let out = sql(&data, &all, "SELECT site, visitor_id, user_id FROM identities ORDER BY site, visitor_id")
        .await
        .expect("q");
    assert_eq!(rows(&out), vec!["blog,v1,u9", "shop,v1,u1", "shop,v2,u1", "shop,v4,u2"]);
    // Views read the scoped table: a shop-only session sees no blog identity.
    let shop = Scope::Sites(vec![site("shop")]);
    let out = sql(&data, &shop, "SELECT count(*) FROM identities WHERE site = 'blog'").await.expect("q");
    assert_eq!(rows(&out), vec!["0"]);
}

fn shop_event(id: &str, visitor: &str, ts: i64, name: &str) -> Event {
    let mut e = at(id, "shop", visitor, ts, name, None);
    e.path = Some(format!("/{name}"));
    e.channel = Some(if visitor == "v1" { "Email" } else { "Organic Search" }.into());
    e.source = Some(if visitor == "v1" { "newsletter" } else { "google" }.into());
    e.campaign = (visitor == "v1").then(|| "spring".to_owned());
    e
}

/// Every file in queries/ runs against a small store, with results checked by hand.
#[tokio::test]
async fn the_analyst_queries_in_queries_run() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = DataDir::new(tmp.path());
    let mut buy = shop_event("e4", "v1", 40, "purchase");
    buy.revenue = Some(30.0);
    buy.order_id = Some("o1".into());
    let events = vec![
        shop_event("e1", "v1", 10, "pageview"),
        shop_event("e2", "v1", 20, "product_view"),
        shop_event("e3", "v1", 30, "add_to_cart"),
        buy,
        shop_event("e5", "v2", 10, "pageview"),
        shop_event("e6", "v2", 20, "product_view"),
        shop_event("e7", "v2", 25, "add_to_cart"),
    ];
    flush_events(&data, SegmentHeader { created_ms: 1, seq: 1 }, events).expect("flush");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("queries");
    let file = |f: &str| std::fs::read_to_string(dir.join(f)).expect("query file");
    let all = Scope::All;
    let run = |f: &'static str| {
        let (data, all) = (&data, &all);
        async move { rows(&sql(data, all, &file(f)).await.unwrap_or_else(|e| panic!("{f}: {e}"))) }
    };
    assert_eq!(run("top_pages.sql").await, vec!["/pageview,2,2"]);
    assert_eq!(run("top_sources.sql").await, vec!["Email,newsletter,1,1,30.0000", "Organic Search,google,1,1,0.0000"]);
    assert_eq!(run("aov_by_channel.sql").await, vec!["Email,1,30.0000,30.00"]);
    // v1 (spring) went view → cart → purchase; v2 (no campaign) viewed and added, 5 µs later.
    assert_eq!(run("funnel_by_campaign.sql").await, vec!["spring,1,1,1", ",1,1,0"]);
    // v1 bought after adding; v2 did not: the audience is v2, with its view and its add to cart.
    assert_eq!(
        run("cart_abandoners.sql").await,
        vec![r#"v:v2,"[""2026-01-01T00:00:00.000020Z"",""2026-01-01T00:00:00.000025Z""]""#]
    );
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("queries dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    files.retain(|f| f.ends_with(".sql"));
    files.sort();
    assert_eq!(files.len(), 7, "every .sql file here is checked above or registered as a view: {files:?}");
}

#[tokio::test]
async fn explain_and_explain_analyze_run() {
    let (_tmp, data) = store();
    for q in ["EXPLAIN SELECT count(*) FROM events", "EXPLAIN ANALYZE SELECT count(*) FROM events WHERE site = 'a'"] {
        let out = sql(&data, &Scope::All, q).await.expect(q);
        let text = footfall::query::output::render(&out, footfall::query::output::Format::Csv).expect("csv");
        assert!(text.contains("plan"), "{q}: {text}");
    }
    let out =
        sql(&data, &Scope::All, "EXPLAIN ANALYZE SELECT count(*) FROM events WHERE site = 'a'").await.expect("analyze");
    let text = footfall::query::output::render(&out, footfall::query::output::Format::Csv).expect("csv");
    assert!(text.contains("output_rows"), "{text}");
}

/// Sessions of one scope share a base built once per process: what a query reads must still
/// follow the store as it changes. Each step's count is the store's by construction: the events
/// flushed so far, the same rows after compaction replaced every file, and one person once a
/// late identify links two visitors.
#[tokio::test]
async fn a_kept_session_follows_flushes_compaction_and_late_identifies() {
    let (_tmp, data) = store();
    let only_a = Scope::Sites(vec![site("a")]);
    let q = "SELECT count(*) AS n, count(DISTINCT person_id) AS people FROM events";
    assert_eq!(rows(&sql(&data, &only_a, q).await.expect("q")), vec!["5,5"]);
    // A second flush adds a file to an existing partition and a new partition.
    let more = vec![ev("a6", "a", JAN1 + 30, "pageview"), ev("a7", "a", JAN1 + 2 * DAY, "pageview")];
    flush_events(&data, SegmentHeader { created_ms: 2, seq: 2 }, more).expect("flush");
    assert_eq!(rows(&sql(&data, &only_a, q).await.expect("q")), vec!["7,7"]);
    // Compaction merges Jan 1's two files into a new one and deletes them.
    let before: Vec<_> = parquet_files(&data);
    footfall::store::compact::compact_all(&data, &footfall::store::StoreGuard::default()).expect("compact");
    assert_ne!(parquet_files(&data), before, "compaction replaced files");
    assert_eq!(rows(&sql(&data, &only_a, q).await.expect("q")), vec!["7,7"]);
    // An identify links v-a1 and v-a2 to one user: their earlier rows become one person.
    let link = |id: &str, visitor: &str| {
        let mut e = ev(id, "a", JAN1 + 3 * DAY, "identify");
        e.visitor_id = visitor.into();
        e.user_id = Some("u1".into());
        e
    };
    let identifies = vec![link("i1", "v-a1"), link("i2", "v-a2")];
    flush_events(&data, SegmentHeader { created_ms: 3, seq: 3 }, identifies).expect("flush");
    // 9 rows; people: u1 (a1, a2, i1, i2) and v-a3..v-a7 (5).
    assert_eq!(rows(&sql(&data, &only_a, q).await.expect("q")), vec!["9,6"]);
}

fn parquet_files(data: &DataDir) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = walkdir(&data.events_dir());
    files.sort();
    files
}

fn walkdir(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walkdir(&path));
        } else if path.extension().is_some_and(|e| e == "parquet") {
            out.push(path);
        }
    }
    out
}
