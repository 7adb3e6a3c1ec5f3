//! The dashboard and `footfall demo`: the page and its assets are served with a strict
//! content security policy, `/api/sites` lists what a key may read, the demo generator is
//! deterministic, and the dashboard's own browser tests (dashboard/test, Chromium against
//! `footfall demo`) run from here so `cargo test` runs every test there is.

use std::path::Path;

use chrono::{TimeZone, Utc};
use footfall::demo::{DemoConfig, prepare};
use footfall::model::SiteId;
use footfall::query::{self, QueryLimits, Scope, output};
use footfall::sites::Sites;
use footfall::store::paths::DataDir;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestServer, options};

const ADMIN: &str = "admin-key-for-tests-0002";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_assets_and_the_sites_a_key_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sites = Sites::open(&DataDir::new(dir.path()).sites_file()).expect("sites");
    let shop = sites.add(SiteId::parse("shop").expect("id"), &["shop.example".into()]).expect("add");
    sites.add(SiteId::parse("blog").expect("id"), &[]).expect("add");
    let mut opts = options(dir.path());
    opts.admin_key = Some(ADMIN.into());
    let srv = TestServer::start(opts).await;

    let get = |path: &str| srv.client.get(format!("{}{path}", srv.url)).send();
    let r = get("/").await.expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    let csp = r.headers()["content-security-policy"].to_str().expect("csp").to_owned();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    let html = r.text().await.expect("html");
    assert!(html.contains(r#"type="module" src="/assets/js/main.js""#) && html.contains(r#"href="/assets/app.css""#));
    // Nothing from elsewhere: no http(s) URL is loaded by the page.
    assert!(!html.contains("http://") && !html.contains("https://"));
    for (path, ct) in [
        ("/assets/js/main.js", "text/javascript; charset=utf-8"),
        ("/assets/js/panels/paths.js", "text/javascript; charset=utf-8"),
        ("/assets/app.css", "text/css; charset=utf-8"),
    ] {
        let r = get(path).await.expect("send");
        assert_eq!((r.status(), r.headers()["content-type"].to_str().expect("ct")), (StatusCode::OK, ct), "{path}");
        assert!(r.headers()["content-security-policy"].to_str().expect("csp").contains("script-src 'self'"));
    }
    assert_eq!(get("/assets/js/nope.js").await.expect("send").status(), StatusCode::NOT_FOUND);
    // Every module the page loads is served: each import names a file that answers 200.
    let main = get("/assets/js/main.js").await.expect("send").text().await.expect("text");
    for line in main.lines().filter(|l| l.starts_with("import ")) {
        let rel = line.split('\'').nth(1).expect("quoted path").trim_start_matches("./");
        let r = get(&format!("/assets/js/{rel}")).await.expect("send");
        assert_eq!(r.status(), StatusCode::OK, "{rel}");
    }

    let sites_of = |key: Option<&str>| {
        let mut r = srv.client.get(format!("{}/api/sites", srv.url));
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        r.send()
    };
    assert_eq!(sites_of(None).await.expect("send").status(), StatusCode::UNAUTHORIZED);
    assert_eq!(sites_of(Some("ffr_wrong")).await.expect("send").status(), StatusCode::UNAUTHORIZED);
    // A read key sees its site (never any key); the admin key sees every site.
    let r: Value = sites_of(Some(&shop.read_key)).await.expect("send").json().await.expect("json");
    assert_eq!(r, json!([{"id": "shop", "domains": ["shop.example"]}]));
    let r: Value = sites_of(Some(ADMIN)).await.expect("send").json().await.expect("json");
    let ids: Vec<&str> = r.as_array().expect("array").iter().filter_map(|s| s["id"].as_str()).collect();
    assert_eq!(ids, vec!["blog", "shop"]);
    // A write key is not a read key.
    assert_eq!(sites_of(Some(&shop.write_key)).await.expect("send").status(), StatusCode::UNAUTHORIZED);

    // The dimension pickers' list: public, from the column catalogue, every entry one a report
    // accepts, reading a stored column; it holds every dimension the dashboard listed by hand.
    let r: Value =
        srv.client.get(format!("{}/api/dimensions", srv.url)).send().await.expect("send").json().await.expect("json");
    let dims = r["dimensions"].as_array().expect("dimensions");
    let names: Vec<&str> = dims.iter().filter_map(|d| d["name"].as_str()).collect();
    for d in dims {
        let name = d["name"].as_str().expect("name");
        assert!(footfall::reports::Dimension::parse(name).is_ok(), "{name} is refused by reports");
        assert!(d["label"].as_str().is_some_and(|l| !l.is_empty()), "{name} has a label");
        if let Some(col) = d["column"].as_str() {
            assert!(footfall::model::schema::file_schema().field_with_name(col).is_ok(), "{name} reads {col}");
        }
    }
    let hand = [
        "event",
        "page",
        "entry_page",
        "hostname",
        "referrer",
        "source",
        "medium",
        "campaign",
        "term",
        "content",
        "channel",
        "country",
        "region",
        "city",
        "device",
        "browser",
        "os",
        "currency",
    ];
    for n in hand {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    assert_eq!(r["custom"]["name"], "prop:<name>");
    srv.shutdown().await;
}

/// Every stored event of `data`, as CSV sorted by event id.
async fn all_events(data: &DataDir) -> String {
    let limits = QueryLimits { max_rows: 10_000_000, ..QueryLimits::default() };
    let ctx = query::session(data, &Scope::All, &limits).await.expect("session");
    let sql = "SELECT event_id, site, ts, name, visitor_id, session_id, user_id, path, channel, campaign, country, \
               device, revenue, order_id, props['variant'] AS variant FROM events ORDER BY event_id";
    let out = query::run_sql(&ctx, sql, &limits).await.expect("query");
    output::render(&out.batches, output::Format::Csv).expect("csv")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_shop_is_deterministic() {
    let cfg = DemoConfig { seed: 7, events: 28_000, visitors: 3_000, days: 21 };
    let now = Utc.with_ymd_and_hms(2026, 11, 23, 15, 30, 0).single().expect("now");
    let make = |dir: &Path, cfg: DemoConfig| {
        let data = DataDir::new(dir);
        let p = prepare(&data, &cfg, now).expect("demo prepared");
        (data, p)
    };
    let (a, b, c) =
        (tempfile::tempdir().expect("tmp"), tempfile::tempdir().expect("tmp"), tempfile::tempdir().expect("tmp"));
    let (da, pa) = make(a.path(), cfg.clone());
    let (db, pb) = make(b.path(), cfg.clone());
    let (dc, _) = make(c.path(), DemoConfig { seed: 8, ..cfg.clone() });
    let (ea, eb, ec) = (all_events(&da).await, all_events(&db).await, all_events(&dc).await);
    assert_eq!(pa.events, pb.events);
    assert!(ea == eb, "same seed, same day: the same events");
    assert!(ea != ec, "another seed: other events");
    // Starting the demo again regenerates the same data: nothing doubled.
    let (_, again) = make(a.path(), cfg.clone());
    assert_eq!(again.events, pa.events);
    assert!(all_events(&da).await == ea);
    // The shop: 21 days ending today at 15:30 (nothing later), a read key for site `shop`.
    let limits = QueryLimits::default();
    let ctx = query::session(&da, &Scope::All, &limits).await.expect("session");
    let sql = "SELECT count(*) AS n, min(date) AS first, max(ts) AS last, count(DISTINCT name) AS names, \
               count(DISTINCT channel) AS channels, count(DISTINCT props['variant']) AS variants FROM events";
    let out = query::run_sql(&ctx, sql, &limits).await.expect("query");
    let v: Value =
        serde_json::from_str(&output::render(&out.batches, output::Format::Json).expect("json")).expect("json");
    assert_eq!(v[0]["n"].as_u64(), Some(pa.events as u64));
    assert_eq!(v[0]["first"], "2026-11-03");
    assert!(v[0]["last"].as_str().is_some_and(|t| t < "2026-11-23T15:30:00.000001" && t > "2026-11-23T12"), "{v}");
    assert!(
        v[0]["names"].as_u64() >= Some(8)
            && v[0]["channels"].as_u64() == Some(8)
            && v[0]["variants"].as_u64() == Some(2),
        "{v}"
    );
    // Some people shop on two devices and log in on both: one person, two visitor ids, two
    // kinds of device, so reports (which count people) see fewer people than devices.
    let sql = "SELECT person_id, count(DISTINCT visitor_id) AS ids, count(DISTINCT device) AS devices \
               FROM events WHERE person_id LIKE 'u:%' GROUP BY person_id HAVING count(DISTINCT visitor_id) > 1";
    let out = query::run_sql(&ctx, sql, &limits).await.expect("query");
    let rows: Value =
        serde_json::from_str(&output::render(&out.batches, output::Format::Json).expect("json")).expect("json");
    let rows = rows.as_array().expect("rows");
    assert!(rows.len() >= 10, "{} people on two devices", rows.len());
    assert!(rows.iter().all(|r| r["ids"] == 2 && r["devices"] == 2), "{rows:?}");
    let site = Sites::open(&da.sites_file()).expect("sites").by_read_key(&pa.read_key).expect("read key");
    assert_eq!(site.id.as_str(), "shop");
}

#[test]
fn dashboard_in_chromium_against_footfall_demo() {
    crate::support::node_test(&Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboard"), "test/dashboard.test.mjs");
}
