//! View-only share links, saved views and the catalog report: what a share link's key may and
//! may not do, revoking it, views kept per site, and the pickers' lists counted by hand.

use footfall::model::{Event, SiteId};
use footfall::sites::Sites;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestServer, options, store};

const ADMIN: &str = "admin-key-for-tests-0003";

/// Jan 5, 2026, site shop: v1 views product p1 then buys it; v2 and v3 view it and leave;
/// v1 and v2 are exposed to experiment `banner`, v3 is not; v4 browses the blog site.
fn events() -> Vec<Event> {
    let t = |m: i64| 1_767_607_200_000_000 + m * 60_000_000;
    let e = |id: &str, site: &str, v: &str, m: i64, name: &str, props: &[(&str, &str)]| Event {
        event_id: id.into(),
        site: site.into(),
        ts: t(m),
        name: name.into(),
        visitor_id: v.into(),
        session_id: format!("s-{v}"),
        path: Some("/p1".into()),
        revenue: (name == "purchase").then_some(30.0),
        props: props.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        ..Event::default()
    };
    vec![
        e("1", "shop", "v1", 0, "product_view", &[("colour", "red")]),
        e("2", "shop", "v1", 1, "$exposure", &[("experiment", "banner"), ("variant", "a")]),
        e("3", "shop", "v1", 2, "purchase", &[]),
        e("4", "shop", "v2", 3, "product_view", &[("colour", "blue")]),
        e("5", "shop", "v2", 4, "$exposure", &[("experiment", "banner"), ("variant", "b")]),
        e("6", "shop", "v3", 5, "product_view", &[]),
        e("7", "blog", "v4", 6, "pageview", &[("colour", "green")]),
    ]
}

struct Setup {
    _tmp: tempfile::TempDir,
    srv: TestServer,
    read: String,
    blog_read: String,
}

async fn setup() -> Setup {
    let (tmp, data) = store(events());
    let sites = Sites::open(&data.sites_file()).expect("sites");
    let read = sites.add(SiteId::parse("shop").expect("id"), &[]).expect("add").read_key;
    let blog_read = sites.add(SiteId::parse("blog").expect("id"), &[]).expect("add").read_key;
    let mut opts = options(tmp.path());
    opts.admin_key = Some(ADMIN.into());
    let srv = TestServer::start(opts).await;
    Setup { _tmp: tmp, srv, read, blog_read }
}

impl Setup {
    async fn call(&self, method: reqwest::Method, path: &str, key: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut r = self.srv.client.request(method, format!("{}{path}", self.srv.url)).bearer_auth(key);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.expect("send");
        let status = r.status();
        let text = r.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }
    async fn get(&self, path: &str, key: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, key, None).await
    }
    async fn post(&self, path: &str, key: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, key, Some(body)).await
    }
    async fn delete(&self, path: &str, key: &str) -> StatusCode {
        self.call(reqwest::Method::DELETE, path, key, None).await.0
    }
}

fn day() -> Value {
    json!({"from": "2026-01-05", "to": "2026-01-05"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_share_link_reads_reports_and_nothing_else_until_revoked() {
    let s = setup().await;
    // A read key makes one for its own site, not for another.
    let (st, share) = s.post("/api/sites/shop/shares", &s.read, json!({"name": "Agency"})).await;
    assert_eq!(st, StatusCode::CREATED, "{share}");
    let key = share["key"].as_str().expect("key").to_owned();
    assert!(key.starts_with("ffv_") && share["name"] == "Agency", "{share}");
    assert_eq!(s.post("/api/sites/blog/shares", &s.read, json!({"name": "x"})).await.0, StatusCode::FORBIDDEN);
    let (st, e) = s.post("/api/sites/shop/shares", &s.read, json!({"name": "  "})).await;
    assert_eq!((st, e["error"]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("name")), "{e}");
    let (_, list) = s.get("/api/sites/shop/shares", &s.read).await;
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");

    // It reads its site's reports, with the same figures as the read key.
    let trends = json!({"site": "shop", "date_range": day(), "metrics": ["visitors", "revenue"], "series": false});
    let (st, by_share) = s.post("/api/reports/trends", &key, trends.clone()).await;
    assert_eq!(st, StatusCode::OK, "{by_share}");
    let (_, by_read) = s.post("/api/reports/trends", &s.read, trends).await;
    assert_eq!(by_share["results"], by_read["results"]);
    // 3 visitors on shop (v1, v2, v3), revenue 30.
    assert_eq!(by_share["results"][0]["totals"]["visitors"], 3);
    let (_, sites) = s.get("/api/sites", &key).await;
    assert_eq!(sites, json!([{"id": "shop", "domains": []}]));
    assert_eq!(s.get("/api/sites/shop/live", &key).await.0, StatusCode::OK);
    assert_eq!(s.get("/api/sites/shop/segments", &key).await.0, StatusCode::OK);
    // Not another site's.
    let (st, _) = s.post("/api/reports/trends", &key, json!({"site": "blog", "date_range": day()})).await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    // Segment sizes, but no one's id: the members are left out, the size is the read key's.
    let seg = json!({"site": "shop", "definition": {"type": "did", "event": {"event": "product_view"}}, "limit": 10});
    let (_, as_share) = s.post("/api/reports/segment", &key, seg.clone()).await;
    let (_, as_read) = s.post("/api/reports/segment", &s.read, seg.clone()).await;
    assert_eq!((as_share["size"].as_u64(), as_read["size"].as_u64()), (Some(3), Some(3)), "{as_share}");
    assert_eq!(as_share["members"], json!([]));
    assert_eq!(as_read["members"].as_array().map(Vec::len), Some(3));
    // The funnel's dropped people likewise: 3 viewed, 1 bought, 2 dropped, no ids.
    let funnel =
        json!({"site": "shop", "date_range": day(), "steps": [{"event": "product_view"}, {"event": "purchase"}]});
    let (_, f) = s.post("/api/reports/funnel", &key, funnel.clone()).await;
    assert_eq!((f["steps"][1]["count"].as_u64(), f["steps"][1]["dropped"].as_u64()), (Some(1), Some(2)), "{f}");
    assert_eq!(f["steps"][1]["dropped_people"], json!([]));
    let (_, f) = s.post("/api/reports/funnel", &s.read, funnel).await;
    assert_eq!(f["steps"][1]["dropped_people"].as_array().map(Vec::len), Some(2));

    // No SQL, no people, no exports, no changes: 403 view_only_key naming the key.
    let refused = [
        s.post("/api/sql", &key, json!({"sql": "SELECT 1"})).await,
        s.post("/api/segments/members.csv", &key, seg).await,
        s.get("/api/sites/shop/people/v:v1/export", &key).await,
        s.get("/api/sites/shop/rejected", &key).await,
        s.get("/api/sites/shop/shares", &key).await,
        s.post("/api/sites/shop/shares", &key, json!({"name": "mine"})).await,
        s.post("/api/sites/shop/views", &key, json!({"name": "v", "query": "tab=paths"})).await,
        s.post("/api/sites/shop/segments", &key, json!({"name": "x", "definition": {"type": "orders", "at_least": 1}}))
            .await,
    ];
    for (i, (st, e)) in refused.iter().enumerate() {
        assert_eq!(*st, StatusCode::FORBIDDEN, "request {i}: {e}");
        assert_eq!(e["error"]["code"], "view_only_key", "request {i}: {e}");
        assert_eq!(e["error"]["field"], "authorization", "request {i}: {e}");
    }
    assert_eq!(s.delete("/api/sites/shop/people/v:v1", &key).await, StatusCode::FORBIDDEN);

    // Revoked: the key stops working at once; revoking again is 404.
    let id = share["id"].as_str().expect("id");
    assert_eq!(s.delete(&format!("/api/sites/shop/shares/{id}"), &s.read).await, StatusCode::NO_CONTENT);
    assert_eq!(s.get("/api/sites", &key).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(s.delete(&format!("/api/sites/shop/shares/{id}"), &s.read).await, StatusCode::NOT_FOUND);
    // The admin key manages any site's links.
    assert_eq!(s.post("/api/sites/blog/shares", ADMIN, json!({"name": "Blog"})).await.0, StatusCode::CREATED);
    assert_eq!(s.get("/api/sites/blog/shares", &s.blog_read).await.1.as_array().map(Vec::len), Some(1));
    s.srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_views_are_kept_per_site_and_never_keep_a_key() {
    let s = setup().await;
    let (st, v) = s
        .post(
            "/api/sites/shop/views",
            &s.read,
            json!({"name": "Email buyers", "query": "?tab=ecommerce&filters=%5B%5D"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!((v["id"].as_str(), v["query"].as_str()), (Some("email-buyers"), Some("tab=ecommerce&filters=%5B%5D")));
    let (st, e) = s.post("/api/sites/shop/views", &s.read, json!({"name": "leak", "query": "tab=sql&key=ffr_x"})).await;
    assert_eq!((st, e["error"]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("query")), "{e}");
    let (st, e) = s.post("/api/sites/shop/views", &s.read, json!({"name": "big", "query": "x".repeat(9000)})).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{e}");
    // The blog's read key neither sees nor changes the shop's views.
    assert_eq!(s.get("/api/sites/shop/views", &s.blog_read).await.0, StatusCode::FORBIDDEN);
    assert_eq!(s.get("/api/sites/blog/views", &s.blog_read).await.1, json!([]));
    // A share link of the shop lists them.
    let (_, share) = s.post("/api/sites/shop/shares", &s.read, json!({"name": "Agency"})).await;
    let (_, list) = s.get("/api/sites/shop/views", share["key"].as_str().expect("key")).await;
    assert_eq!(
        list.as_array().map(|l| l.iter().map(|v| v["name"].clone()).collect::<Vec<_>>()),
        Some(vec![json!("Email buyers")])
    );
    assert_eq!(s.delete("/api/sites/shop/views/email-buyers", &s.read).await, StatusCode::NO_CONTENT);
    assert_eq!(s.delete("/api/sites/shop/views/email-buyers", &s.read).await, StatusCode::NOT_FOUND);
    assert_eq!(s.get("/api/sites/shop/views", &s.read).await.1, json!([]));
    s.srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_lists_event_names_properties_and_experiments_by_count() {
    let s = setup().await;
    let (st, r) = s.post("/api/reports/catalog", &s.read, json!({"site": "shop", "date_range": day()})).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    // shop's 6 events: product_view 3, $exposure 2, purchase 1 (ties by name); the blog's
    // pageview is not the shop's.
    assert_eq!(
        r["events"],
        json!([{"name": "product_view", "count": 3}, {"name": "$exposure", "count": 2}, {"name": "purchase", "count": 1}])
    );
    // Keys: colour on 2 events, experiment and variant on 2 each (the blog's colour not counted).
    assert_eq!(
        r["properties"],
        json!([{"name": "colour", "count": 2}, {"name": "experiment", "count": 2}, {"name": "variant", "count": 2}])
    );
    // banner: 2 visitors exposed.
    assert_eq!(r["experiments"], json!([{"name": "banner", "count": 2}]));
    let (st, e) =
        s.post("/api/reports/catalog", &s.read, json!({"site": "shop", "date_range": day(), "limit": 0})).await;
    assert_eq!((st, e["error"]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("limit")));
    s.srv.shutdown().await;
}
