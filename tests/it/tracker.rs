//! The tracking snippet: what the server does for it (serving `/f.js`, the pixel, one purchase
//! per order, one exposure per session), and tracker-js's own tests (Node with happy-dom, and
//! Chromium end to end), run from here so `cargo test` runs every test there is.

use std::path::Path;

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{TestServer, column, options, wait_for_rows};

const CHROME: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/148.0.0.0 Safari/537.36";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snippet_pixel_and_events_that_happen_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = TestServer::start(options(dir.path())).await;
    let r = srv.client.get(format!("{}/f.js", srv.url)).send().await.expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    let etag = r.headers()["etag"].to_str().expect("etag").to_owned();
    assert_eq!(r.bytes().await.expect("body").as_ref(), footfall::api::tracker::SNIPPET);
    let r = srv.client.get(format!("{}/f.js", srv.url)).header("if-none-match", &etag).send().await.expect("send");
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);

    // The pixel: a pageview from the query (or the Referer), always a GIF, never cached.
    let gif = |q: &str| srv.client.get(format!("{}/api/event.gif?{q}", srv.url)).header("user-agent", CHROME).send();
    let r = gif("site=default&url=https%3A%2F%2Fshop.example%2Fnoscript").await.expect("send");
    assert_eq!((r.status(), r.headers()["content-type"].to_str().expect("ct")), (StatusCode::OK, "image/gif"));
    assert_eq!(r.headers()["cache-control"], "no-store, max-age=0");
    assert_eq!(&r.bytes().await.expect("gif")[..6], b"GIF89a");
    let r =
        gif("site=default&name=email_open&url=https%3A%2F%2Fshop.example%2Fnewsletter%2F2026-01").await.expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    let r = gif("site=nope&url=https%3A%2F%2Fshop.example%2F").await.expect("send");
    assert_eq!((r.status(), r.headers()["content-type"].to_str().expect("ct")), (StatusCode::FORBIDDEN, "image/gif"));
    assert_eq!(gif("url=x").await.expect("send").status(), StatusCode::BAD_REQUEST);

    // A purchase sent twice (a reloaded thank-you page) and an exposure sent twice in one
    // session are stored once; another order and another experiment are not merged.
    let post = |body: serde_json::Value| srv.post(body.to_string()).header("user-agent", CHROME).send();
    let buy = |order: &str| json!({"site": "default", "name": "purchase", "url": "https://shop.example/thanks", "order_id": order, "revenue": 20, "currency": "EUR"});
    let seen = |exp: &str| json!({"site": "default", "name": "$exposure", "url": "https://shop.example/", "props": {"experiment": exp, "variant": "green"}});
    for body in [buy("o-1"), buy("o-1"), buy("o-2"), seen("button"), seen("button"), seen("banner")] {
        assert_eq!(post(body).await.expect("send").status(), StatusCode::ACCEPTED);
    }
    let rows = wait_for_rows(dir.path(), 6).await;
    let mut names: Vec<String> = column(&rows, "name").into_iter().flatten().collect();
    names.sort();
    assert_eq!(names, vec!["$exposure", "$exposure", "email_open", "pageview", "purchase", "purchase"]);
    let mut orders: Vec<String> = column(&rows, "order_id").into_iter().flatten().collect();
    orders.sort();
    assert_eq!(orders, vec!["o-1", "o-2"]);
    assert!(column(&rows, "path").contains(&Some("/noscript".into())));
    srv.shutdown().await;
}

fn node_test(file: &str) {
    crate::support::node_test(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tracker-js"), file);
}

#[test]
fn tracker_js_in_node() {
    node_test("test/unit.test.mjs");
}

#[test]
fn tracker_js_in_chromium() {
    node_test("test/browser.test.mjs");
}

#[test]
fn heatmaps_in_chromium() {
    node_test("test/heatmap.test.mjs");
}
