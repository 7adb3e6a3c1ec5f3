//! `POST /api/sql` over HTTP: keys, scoping, refusals, formats.

use std::sync::Arc;

use footfall::clock::SystemClock;
use footfall::model::SiteId;
use footfall::sites::Sites;
use footfall::store::paths::DataDir;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestServer, options, wait_for_rows};

const ADMIN: &str = "admin-key-for-tests-0001";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_scope_what_sql_can_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sites = Sites::open(&DataDir::new(dir.path()).sites_file()).expect("sites");
    let shop = sites.add(SiteId::parse("shop").expect("id"), &[]).expect("add");
    sites.add(SiteId::parse("blog").expect("id"), &[]).expect("add");
    let mut opts = options(dir.path());
    opts.admin_key = Some(ADMIN.into());
    let srv = TestServer::start(opts).await;
    let events = json!([
        {"site": "shop", "name": "signup"}, {"site": "shop", "name": "signup"}, {"site": "blog", "name": "signup"}
    ]);
    assert_eq!(srv.post(events.to_string()).send().await.expect("send").status(), StatusCode::ACCEPTED);
    wait_for_rows(dir.path(), 3).await;

    let sql = |key: Option<&str>, body: Value| {
        let mut r = srv.client.post(format!("{}/api/sql", srv.url)).json(&body);
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        r.send()
    };
    let by_site = json!({"sql": "SELECT site, count(*) AS n FROM events GROUP BY site ORDER BY site"});

    let r = sql(None, by_site.clone()).await.expect("send");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let b: Value = r.json().await.expect("json");
    assert_eq!(b["error"]["code"], "invalid_read_key");
    assert_eq!(sql(Some(&shop.write_key), by_site.clone()).await.expect("send").status(), StatusCode::UNAUTHORIZED);

    let r = sql(Some(&shop.read_key), by_site.clone()).await.expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.expect("json"), json!([{"site": "shop", "n": 2}]));
    let other = json!({"sql": "SELECT count(*) AS n FROM events WHERE site = 'blog'"});
    let r = sql(Some(&shop.read_key), other).await.expect("send");
    assert_eq!(r.json::<Value>().await.expect("json"), json!([{"n": 0}]));

    let r = sql(Some(ADMIN), by_site.clone()).await.expect("send");
    assert_eq!(r.json::<Value>().await.expect("json"), json!([{"site": "blog", "n": 1}, {"site": "shop", "n": 2}]));

    let r = sql(Some(ADMIN), json!({"sql": "DROP TABLE events"})).await.expect("send");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.expect("json")["error"]["code"], "refused_statement");
    let r = sql(Some(ADMIN), json!({"sql": "SELECT nope FROM events"})).await.expect("send");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let b: Value = r.json().await.expect("json");
    assert_eq!(b["error"]["code"], "invalid_query");
    assert!(b["error"]["message"].as_str().expect("message").contains("nope"), "{b}");
    let r = sql(Some(ADMIN), json!({"query": "SELECT 1"})).await.expect("send");
    assert_eq!(r.json::<Value>().await.expect("json")["error"]["code"], "invalid_body");

    let r = sql(
        Some(ADMIN),
        json!({"sql": "SELECT site, count(*) AS n FROM events GROUP BY site ORDER BY site", "format": "csv"}),
    )
    .await
    .expect("send");
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(r.text().await.expect("text"), "site,n\nblog,1\nshop,2\n");

    let r = sql(Some(ADMIN), json!({"sql": "SELECT event_id FROM events", "format": "arrow"})).await.expect("send");
    assert_eq!(r.headers()["content-type"], "application/vnd.apache.arrow.stream");
    let bytes = r.bytes().await.expect("bytes");
    let reader =
        arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes.to_vec()), None).expect("arrow stream");
    let rows: usize = reader.map(|b| b.expect("batch").num_rows()).sum();
    assert_eq!(rows, 3);
    srv.shutdown().await;
}

#[tokio::test]
async fn a_short_admin_key_is_refused_at_start_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts = options(dir.path());
    opts.admin_key = Some("short".into());
    let err = footfall::server::start(opts, Arc::new(SystemClock)).await.err().expect("refused");
    assert!(err.to_string().contains("at least 16 characters"), "{err}");
}
