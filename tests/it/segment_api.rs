//! Segment's tracking API (`/v1/*`): Segment's own Python SDK sends to a footfall started here,
//! and what was stored is checked field by field; then the API's refusals, raw.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use footfall::model::SiteId;
use footfall::sites::Sites;
use footfall::store::paths::DataDir;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestServer, options};

/// Run `tests/segment/<script>` (a Segment or RudderStack SDK, pinned in a virtualenv kept
/// between runs) with `args`; it must succeed. What it printed.
fn run_sdk(script: &str, args: &[&str]) -> String {
    let python = crate::support::python_venv("segment");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/segment").join(script);
    let out = Command::new(&python).arg(&script).args(args).output().expect("the SDK runs");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{said}{}", String::from_utf8_lossy(&out.stderr));
    said
}

/// A server over a fresh data directory with one site, `shop`.
async fn serve_shop() -> (tempfile::TempDir, TestServer, footfall::sites::Site) {
    let dir = tempfile::tempdir().expect("tempdir");
    let sites = Sites::open(&DataDir::new(dir.path()).sites_file()).expect("sites");
    let shop = sites.add(SiteId::parse("shop").expect("id"), &[]).expect("add");
    let srv = TestServer::start(options(dir.path())).await;
    (dir, srv, shop)
}

async fn rows(data: &Path, sql: &str) -> Value {
    let out = footfall::query::run_scoped_sql(
        &DataDir::new(data),
        &footfall::query::Scope::All,
        sql.to_owned(),
        Default::default(),
    )
    .await
    .expect("query");
    let text = footfall::query::output::render(&out.batches, footfall::query::output::Format::Json).expect("json");
    serde_json::from_str(&text).expect("rows")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_python_sdk_delivers_and_every_field_is_stored() {
    let (dir, srv, shop) = serve_shop().await;
    let said = run_sdk("send.py", &[&srv.url, &shop.write_key]);
    let history_day = said.trim().rsplit(' ').next().expect("day").to_owned();
    // 4 live events (identify, page, view, the order once; group and alias not kept) and the
    // old order: 5 rows.
    crate::support::wait_for_rows(dir.path(), 5).await;
    let got = rows(
        dir.path(),
        "SELECT name, event_id, user_id, visitor_id, path, source, medium, order_id, CAST(revenue AS DOUBLE) AS revenue, currency,
                array_length(items) AS items, props['coupon'] AS coupon, props['plan'] AS plan, CAST(date AS VARCHAR) AS day, origin
         FROM events ORDER BY name, ts",
    )
    .await;
    let today = chrono::Utc::now().date_naive().to_string();
    let row = |name: &str, id: &str| {
        got.as_array()
            .expect("rows")
            .iter()
            .find(|r| r["name"] == name && r["event_id"] == id)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(got.as_array().map(Vec::len), Some(5), "{got:#}");
    // The identify: the user and the anonymous id, traits as props.
    let identify = got.as_array().expect("rows").iter().find(|r| r["name"] == "identify").expect("identify");
    assert_eq!((identify["user_id"].as_str(), identify["visitor_id"].as_str()), (Some("u-1"), Some("anon-0001")));
    assert_eq!((identify["origin"].as_str(), identify["plan"].as_str()), (Some("server"), Some("pro")), "{identify}");
    // The page: the URL's path and its UTM tags.
    let page = row("pageview", "msg-page-0001");
    assert_eq!(
        (page["path"].as_str(), page["source"].as_str(), page["medium"].as_str()),
        (Some("/"), Some("newsletter"), Some("email")),
        "{page}"
    );
    // Product Viewed → product_view with its one item.
    let view = row("product_view", "msg-view-0001");
    assert_eq!(view["items"], 1, "{view}");
    // Order Completed → purchase: total → revenue, order id, currency, two products, the
    // coupon kept as a prop; the SDK's retry stored once (a purchase's id is its order's, so
    // the retry and the first send are one event).
    let order = got.as_array().expect("rows").iter().find(|r| r["order_id"] == "o-1").cloned().expect("order o-1");
    assert_eq!(
        (
            order["order_id"].as_str(),
            order["revenue"].as_f64(),
            order["currency"].as_str(),
            order["items"].as_i64(),
            order["coupon"].as_str()
        ),
        (Some("o-1"), Some(45.5), Some("EUR"), Some(2), Some("SPRING")),
        "{order}"
    );
    assert_eq!(order["day"].as_str(), Some(today.as_str()));
    // The order of 30 days ago, on its own day (the import path), not today.
    let old = row("purchase", "msg-old-00001");
    assert_eq!(
        (old["order_id"].as_str(), old["day"].as_str(), old["revenue"].as_f64()),
        (Some("o-0"), Some(history_day.as_str()), Some(10.0)),
        "{old}"
    );
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_segment_api_refuses_clearly_and_takes_gzip_and_a_body_key() {
    let (dir, srv, shop) = serve_shop().await;
    let send = |path: &str, key: Option<&str>, body: Vec<u8>, gzip: bool| {
        let mut r = srv.client.post(format!("{}{path}", srv.url)).header("content-type", "application/json").body(body);
        if let Some(k) = key {
            r = r.basic_auth(k, Some(""));
        }
        if gzip {
            r = r.header("content-encoding", "gzip");
        }
        r.send()
    };
    let track = json!({"type": "track", "event": "Signed Up", "userId": "u-9", "messageId": "msg-signup-01"});
    let r = send("/v1/batch", Some("ffw_wrong"), json!({"batch": [track]}).to_string().into_bytes(), false)
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = send("/v1/batch", Some(&shop.write_key), b"{not json".to_vec(), false).await.expect("send");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = send("/v1/batch", Some(&shop.write_key), b"{\"batch\": []}".to_vec(), false).await.expect("send");
    let e: Value = r.json().await.expect("json");
    assert_eq!(e["error"]["field"], "batch", "{e}");
    let r = send("/v1/nope", Some(&shop.write_key), b"{}".to_vec(), false).await.expect("send");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // A gzip body with the key in it (no Authorization), and a single /v1/track call.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(json!({"batch": [track], "writeKey": shop.write_key}).to_string().as_bytes()).expect("gzip");
    let r = send("/v1/batch", None, gz.finish().expect("gzip"), true).await.expect("send");
    assert_eq!((r.status(), r.json::<Value>().await.expect("json")), (StatusCode::OK, json!({"success": true})));
    // The end user's browser as the backend saw it: `context.userAgent` gives device and browser.
    let one = json!({"event": "Coupon Applied", "anonymousId": "a-2", "properties": {"coupon": "X"}, "messageId": "msg-coupon-1",
                     "context": {"userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
                                 "ip": "192.0.2.44"}});
    let r = send("/v1/track", Some(&shop.write_key), one.to_string().into_bytes(), false).await.expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    crate::support::wait_for_rows(dir.path(), 2).await;
    // NULLs are left out of the JSON rows. Signed Up has no anonymous id: the server made one.
    let got = rows(
        dir.path(),
        "SELECT name, user_id, visitor_id, props['coupon'] AS coupon, origin, device, browser, os FROM events ORDER BY name",
    )
    .await;
    let signed_up_visitor = got[1]["visitor_id"].as_str().unwrap_or_default().to_owned();
    assert!(signed_up_visitor.len() >= 16, "the server made Signed Up a visitor id: {got}");
    assert_eq!(
        got,
        json!([{"name": "Coupon Applied", "visitor_id": "a-2", "coupon": "X", "origin": "server",
                "device": "Mobile", "browser": "Mobile Safari", "os": "iOS"},
               {"name": "Signed Up", "user_id": "u-9", "visitor_id": signed_up_visitor, "origin": "server"}])
    );
    // A batch with one bad call (a user id past 256 characters): the good one is stored, the
    // answer names the bad one, and the quarantine keeps the call as it was sent.
    let good = json!({"type": "track", "event": "Wishlist Added", "anonymousId": "a-3", "messageId": "msg-good-0001"});
    let bad =
        json!({"type": "track", "event": "Wishlist Added", "userId": "u".repeat(300), "messageId": "msg-bad-00001"});
    let r = send("/v1/batch", Some(&shop.write_key), json!({"batch": [good, bad]}).to_string().into_bytes(), false)
        .await
        .expect("send");
    let answer: Value = r.json().await.expect("json");
    assert_eq!(
        (answer["success"].as_bool(), answer["rejected"][0]["index"].as_u64()),
        (Some(true), Some(1)),
        "{answer}"
    );
    assert_eq!(answer["rejected"][0]["field"], "user_id", "{answer}");
    let kept: Value = srv
        .client
        .get(format!("{}/api/sites/shop/rejected", srv.url))
        .bearer_auth(&shop.read_key)
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    let kept = kept.to_string();
    assert!(kept.contains("\"messageId\":\"msg-bad-00001\"") && !kept.contains("msg-good-0001"), "{kept}");
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_node_sdk_delivers_and_every_field_is_stored() {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/segment");
    crate::support::npm_ci(&sdk);
    let (dir, srv, shop) = serve_shop().await;
    let out = Command::new("node")
        .args(["send.mjs", &srv.url, &shop.write_key])
        .current_dir(&sdk)
        .output()
        .expect("node runs");
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // identify, Product Added, Checkout Started, Order Refunded, screen: 5 rows.
    crate::support::wait_for_rows(dir.path(), 5).await;
    let got = rows(
        dir.path(),
        "SELECT name, user_id, visitor_id, order_id, CAST(revenue AS DOUBLE) AS revenue, currency, array_length(items) AS items,
                items[1]['id'] AS first_item, props['plan'] AS plan, origin
         FROM events ORDER BY name",
    )
    .await;
    let by =
        |name: &str| got.as_array().expect("rows").iter().find(|r| r["name"] == name).cloned().unwrap_or(Value::Null);
    assert_eq!(got.as_array().map(Vec::len), Some(5), "{got:#}");
    for r in got.as_array().expect("rows") {
        assert_eq!(
            (r["user_id"].as_str(), r["visitor_id"].as_str(), r["origin"].as_str()),
            (Some("n-1"), Some("node-anon-01"), Some("server")),
            "{r}"
        );
    }
    assert_eq!(by("identify")["plan"], "team");
    // Spec v2 names: Product Added → add_to_cart with its one product, Checkout Started →
    // checkout_start with products[] and revenue, Order Refunded → refund with total → revenue.
    assert_eq!(
        (by("add_to_cart")["items"].as_i64(), by("add_to_cart")["first_item"].as_str()),
        (Some(1), Some("kettle-7"))
    );
    let checkout = by("checkout_start");
    assert_eq!(
        (checkout["revenue"].as_f64(), checkout["currency"].as_str(), checkout["items"].as_i64()),
        (Some(49.0), Some("EUR"), Some(1)),
        "{checkout}"
    );
    let refund = by("refund");
    assert_eq!((refund["order_id"].as_str(), refund["revenue"].as_f64()), (Some("o-9"), Some(49.0)), "{refund}");
    assert!(by("screen").is_object(), "{got:#}");
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rudderstacks_python_sdk_delivers_gzip_and_every_field_is_stored() {
    let (dir, srv, shop) = serve_shop().await;
    run_sdk("send_rudder.py", &[&srv.url, &shop.write_key]);
    crate::support::wait_for_rows(dir.path(), 2).await;
    let got = rows(
        dir.path(),
        "SELECT name, user_id, visitor_id, order_id, CAST(revenue AS DOUBLE) AS revenue, currency, items[1]['id'] AS item,
                items[1]['quantity'] AS quantity, path
         FROM events ORDER BY name",
    )
    .await;
    // Its gzip bodies decoded; a product's `sku` is its id when it has no `product_id`.
    assert_eq!(
        got,
        json!([
            {"name": "pageview", "user_id": "r-1", "visitor_id": "rudder-anon-1", "path": "/pricing"},
            {"name": "purchase", "user_id": "r-1", "visitor_id": "rudder-anon-1", "order_id": "r-order-1", "revenue": 20.0,
             "currency": "USD", "item": "tea-3", "quantity": 2}
        ])
    );
    srv.shutdown().await;
}

/// The goal: a Segment SDK delivers 10,000 events with zero loss and zero duplicates,
/// here with the SDK's own batching thread and 500 of the calls retried with the same messageId.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_sdk_delivers_ten_thousand_events_once_each() {
    let (dir, srv, shop) = serve_shop().await;
    run_sdk("send_many.py", &[&srv.url, &shop.write_key, "10000"]);
    // Every call was answered before the SDK returned; give the flush (200 ms here) time to
    // write what a stored retry would add.
    crate::support::wait_for_rows(dir.path(), 10_000).await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let got = rows(
        dir.path(),
        "SELECT count(*) AS n, count(DISTINCT event_id) AS ids, count(DISTINCT props['seq']) AS seqs,
                min(CAST(props['seq'] AS BIGINT)) AS first, max(CAST(props['seq'] AS BIGINT)) AS last
         FROM events",
    )
    .await;
    assert_eq!(got, json!([{"n": 10000, "ids": 10000, "seqs": 10000, "first": 0, "last": 9999}]));
    srv.shutdown().await;
}
