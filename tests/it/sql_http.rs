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

/// The pattern aggregates over HTTP: JSON lists, CSV as JSON text, and a malformed pattern as
/// a 400 naming the position.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pattern_functions_answer_over_http() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sites = Sites::open(&DataDir::new(dir.path()).sites_file()).expect("sites");
    let shop = sites.add(SiteId::parse("shop").expect("id"), &[]).expect("add");
    let srv = TestServer::start(options(dir.path())).await;
    // One request per event, so each gets its own receive time, in this order.
    for (visitor, name) in [("v1", "product_view"), ("v1", "add_to_cart"), ("v2", "product_view")] {
        let body = json!({"site": "shop", "name": name, "visitor_id": visitor});
        assert_eq!(srv.post(body.to_string()).send().await.expect("send").status(), StatusCode::ACCEPTED);
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    wait_for_rows(dir.path(), 3).await;
    let sql =
        |body: Value| srv.client.post(format!("{}/api/sql", srv.url)).bearer_auth(&shop.read_key).json(&body).send();
    let q = "SELECT visitor_id,
        sequence_match('(?1)(?t<=600)(?2)', ts, name = 'product_view', name = 'add_to_cart') AS added,
        sequence_count('(?1)', ts, name = 'product_view', name = 'add_to_cart') AS views,
        sequence_match_events('(?1)(?t<=600)(?2)', ts, name = 'product_view', name = 'add_to_cart') AS at
      FROM events GROUP BY visitor_id ORDER BY visitor_id";
    let r = sql(json!({"sql": q})).await.expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    let got: Value = r.json().await.expect("json");
    let times: Value = sql(json!({"sql": "SELECT visitor_id, ts FROM events ORDER BY ts"}))
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let ts = |i: usize| times[i]["ts"].clone();
    assert_eq!(
        got,
        json!([
            {"visitor_id": "v1", "added": true, "views": 1, "at": [ts(0), ts(1)]},
            // v2's chain stops at its view: the longest partial chain.
            {"visitor_id": "v2", "added": false, "views": 1, "at": [ts(2)]},
        ])
    );
    let r = sql(json!({"sql": q, "format": "csv"})).await.expect("send");
    let csv = r.text().await.expect("text");
    let v2 = csv.lines().nth(2).expect("v2 row");
    assert_eq!(v2, format!("v2,false,1,\"[\"\"{}\"\"]\"", ts(2).as_str().expect("ts")));

    let bad = "SELECT sequence_match('(?1)(?t=5)(?2)', ts, name = 'a', name = 'b') FROM events";
    let r = sql(json!({"sql": bad})).await.expect("send");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let b: Value = r.json().await.expect("json");
    assert_eq!(b["error"]["code"], "invalid_query");
    assert_eq!(
        b["error"]["message"],
        "Error during planning: sequence_match: bad pattern \"(?1)(?t=5)(?2)\": unknown time comparison \"=5)(?2)\"; use <, <=, >, >= or == at position 8"
    );
}
