//! Segments: definitions and templates against members worked out by hand.

use footfall::model::{Event, Item};
use footfall::reports::segments::{SegmentRequest, segment};
use footfall::reports::{Error, parse_request};
use footfall::store::paths::DataDir;
use serde_json::{Value, json};

fn at(month: u32, day: u32, hh: u32) -> i64 {
    let year = if month > 6 { 2025 } else { 2026 };
    chrono::NaiveDate::from_ymd_opt(year, month, day)
        .and_then(|d| d.and_hms_opt(hh, 0, 0))
        .expect("time")
        .and_utc()
        .timestamp_micros()
}

/// Now is Jan 20 2026, 00:00.
///
/// | person | events |
/// |---|---|
/// | v1 (DE) | Jan 15 10:00 product_view mug-1 |
/// | v2 (DE) | Jan 15 10:00 product_view mug-1; 11:00 purchase 20 |
/// | v3 (DE) | Jan 18 add_to_cart |
/// | v4 (DE) | purchases of 10 on Jan 1, 2, 3 |
/// | v5 (DE, channel Email first) | Sep 1 2025 purchase 50; Jan 10 pageview |
/// | v6 (FR) | Jan 17 pageview |
fn fixture() -> (tempfile::TempDir, DataDir) {
    type Row = (&'static str, i64, &'static str, Option<f64>);
    let rows: Vec<Row> = vec![
        ("v1", at(1, 15, 10), "product_view", None),
        ("v2", at(1, 15, 10), "product_view", None),
        ("v2", at(1, 15, 11), "purchase", Some(20.0)),
        ("v3", at(1, 18, 10), "add_to_cart", None),
        ("v4", at(1, 1, 10), "purchase", Some(10.0)),
        ("v4", at(1, 2, 10), "purchase", Some(10.0)),
        ("v4", at(1, 3, 10), "purchase", Some(10.0)),
        ("v5", at(9, 1, 10), "purchase", Some(50.0)),
        ("v5", at(1, 10, 10), "pageview", None),
        ("v6", at(1, 17, 10), "pageview", None),
    ];
    let events = rows
        .into_iter()
        .enumerate()
        .map(|(i, (v, ts, name, revenue))| Event {
            event_id: format!("ev-{i:03}"),
            site: "shop".into(),
            ts,
            name: name.into(),
            visitor_id: v.into(),
            session_id: format!("{v}-{i}"),
            country: Some(if v == "v6" { "FR" } else { "DE" }.into()),
            channel: Some(if v == "v5" && ts < at(1, 1, 0) { "Email" } else { "Direct" }.into()),
            revenue,
            items: if name == "product_view" {
                vec![Item { id: "mug-1".into(), name: None, category: None, price: Some(10.0), quantity: Some(1) }]
            } else {
                vec![]
            },
            ..Event::default()
        })
        .collect();
    crate::support::store(events)
}

async fn members(data: &DataDir, definition: Value) -> Result<(u64, Vec<String>), Error> {
    let env = crate::support::report_env(data, at(1, 20, 0));
    let req: SegmentRequest = parse_request(json!({"site": "shop", "definition": definition}).to_string().as_bytes())?;
    let r = segment(&env, &req).await?;
    let mut ids: Vec<String> = r.members.iter().map(|m| m.person_id.clone()).collect();
    ids.sort();
    Ok((r.size, ids))
}

fn people(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|v| format!("v:{v}")).collect()
}

#[tokio::test]
async fn templates_and_definitions_select_the_people_worked_out_by_hand() {
    let (_tmp, data) = fixture();
    for (template, want) in [
        // Viewed in the last 14 days, no purchase in them: v1 (v2 bought).
        ("viewed_not_bought", vec!["v1"]),
        ("abandoned_cart", vec!["v3"]),
        ("abandoned_checkout", vec![]),
        ("repeat_buyers", vec!["v4"]),
        ("vip", vec!["v4"]),
        // First seen since Jan 13: v1, v2 (Jan 15), v6 (Jan 17), v3 (Jan 18).
        ("new_visitors", vec!["v1", "v2", "v3", "v6"]),
        // Bought before, last purchase over 90 days ago: v5 (Sep 1).
        ("lapsed_customers", vec!["v5"]),
    ] {
        let (size, ids) = members(&data, json!(template)).await.expect(template);
        assert_eq!((size, ids), (want.len() as u64, people(&want)), "{template}");
    }
    // French, or 3 orders or more.
    let any = json!({"type": "any", "conditions": [
        {"type": "property", "dimension": "country", "values": ["FR"]},
        {"type": "orders", "at_least": 3}]});
    assert_eq!(members(&data, any).await.expect("any").1, people(&["v4", "v6"]));
    // Viewed, then did not buy within a day: v1 only (v2 bought an hour later).
    let then_not = json!({"type": "did", "event": {"event": "product_view"},
        "then_not": {"event": {"event": "purchase"}, "within": {"value": 1, "unit": "day"}}});
    assert_eq!(members(&data, then_not).await.expect("then_not").1, people(&["v1"]));
    // First touch by e-mail; revenue of at least 25 ever (v5 50, v4 30); at most 2 orders and
    // did something in the last 7 days (v3, v6).
    // Did in a date range: bought on Jan 1–2 (v4); did not buy in January (v1, v3, v5, v6).
    let early = json!({"type": "did", "event": {"event": "purchase"}, "date_range": {"from": "2026-01-01", "to": "2026-01-02"}});
    assert_eq!(members(&data, early).await.expect("date_range").1, people(&["v4"]));
    let january = json!({"type": "did_not", "event": {"event": "purchase"}, "date_range": {"from": "2026-01-01", "to": "2026-01-31"}});
    assert_eq!(members(&data, january).await.expect("did_not").1, people(&["v1", "v3", "v5", "v6"]));
    let email = json!({"type": "first_touch", "dimension": "channel", "values": ["Email"]});
    assert_eq!(members(&data, email).await.expect("first_touch").1, people(&["v5"]));
    let spent = json!({"type": "revenue", "at_least": 25});
    assert_eq!(members(&data, spent).await.expect("revenue").1, people(&["v4", "v5"]));
    let recent = json!({"type": "all", "conditions": [{"type": "orders", "at_most": 2},
        {"type": "did", "event": {"event": "add_to_cart"}, "within_days": 7, "at_least": 1}]});
    assert_eq!(members(&data, recent).await.expect("all").1, people(&["v3"]));
}

/// Definitions that only need the last days read only those days' partitions; the members'
/// figures and the definitions that hold without activity still see the whole history.
#[tokio::test]
async fn windowed_definitions_read_their_days_and_members_keep_their_history() {
    let (_tmp, data) = fixture();
    let env = crate::support::report_env(&data, at(1, 20, 0));
    let recent = json!({"type": "did", "event": {"event": "pageview"}, "within_days": 14});
    let (sql, _) = footfall::reports::segments::members_sql(
        &footfall::model::SiteId::parse("shop").expect("site"),
        &serde_json::from_value(recent.clone()).expect("definition"),
        at(1, 20, 0),
    )
    .expect("sql");
    assert!(sql.contains("date >= DATE '2026-01-06'"), "{sql}");
    // Pageviews since Jan 6: v5 (Jan 10) and v6 (Jan 17). v5's purchase (Sep 1) is outside the
    // window but is still its first sighting, its one order and its revenue.
    let req: SegmentRequest =
        parse_request(json!({"site": "shop", "definition": recent}).to_string().as_bytes()).expect("request");
    let r = segment(&env, &req).await.expect("segment");
    let v5 = &r.members[0];
    assert_eq!((r.size, v5.person_id.as_str(), v5.orders, v5.revenue), (2, "v:v5", 1, 50.0));
    assert!(v5.first_seen.as_deref().is_some_and(|t| t.starts_with("2025-09-01")), "{:?}", v5.first_seen);
    // Either viewed a page or did not buy in the last 14 days (since Jan 6): v4, whose only
    // events (Jan 1–3) are before the window, is a member; v2 bought on Jan 15.
    let either = json!({"type": "any", "conditions": [recent,
        {"type": "did_not", "event": {"event": "purchase"}, "within_days": 14}]});
    assert_eq!(members(&data, either).await.expect("any").1, people(&["v1", "v3", "v4", "v5", "v6"]));
    // Bought in the window and at least 3 orders ever: the order count reads all history.
    let loyal = json!({"type": "all", "conditions": [{"type": "orders", "at_least": 3},
        {"type": "did", "event": {"event": "purchase"}, "date_range": {"from": "2026-01-03", "to": "2026-01-19"}}]});
    assert_eq!(members(&data, loyal).await.expect("all").1, people(&["v4"]));
}

#[tokio::test]
async fn members_carry_their_figures_and_bad_definitions_name_the_field() {
    let (_tmp, data) = fixture();
    let env = crate::support::report_env(&data, at(1, 20, 0));
    let req: SegmentRequest = parse_request(
        json!({"site": "shop", "definition": {"type": "did", "event": {"event": "product_view"}}})
            .to_string()
            .as_bytes(),
    )
    .expect("request");
    let r = segment(&env, &req).await.expect("segment");
    // By revenue: v2 (20, one order) before v1.
    let v2 = &r.members[0];
    assert_eq!((v2.person_id.as_str(), v2.orders, v2.revenue), ("v:v2", 1, 20.0));
    assert_eq!(v2.last_viewed_products, vec!["mug-1".to_owned()]);
    assert_eq!(r.members[1].person_id, "v:v1");
    for (definition, field) in [
        (json!("no_such_template"), "definition"),
        (json!({"type": "orders"}), "definition"),
        (json!({"type": "property", "dimension": "planet", "values": ["x"]}), "definition.dimension"),
        (
            json!({"type": "all", "conditions": [{"type": "did", "event": {"event": "x"}, "within_days": 0}]}),
            "definition.conditions[0].within_days",
        ),
        (json!({"type": "orderz"}), "definition.type"),
    ] {
        match members(&data, definition.clone()).await {
            Err(Error::Invalid { field: f, .. }) => assert_eq!(f, field, "{definition}"),
            other => panic!("{definition}: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segment_size_and_csv_export_over_http() {
    use footfall::model::SiteId;
    use footfall::sites::Sites;
    let (tmp, data) = fixture();
    let keys =
        Sites::open(&data.sites_file()).expect("sites").add(SiteId::parse("shop").expect("id"), &[]).expect("add");
    let srv = crate::support::TestServer::start(crate::support::options(tmp.path())).await;
    // Served "now" is today, so only the timeless definitions are stable here: 2+ orders ever.
    let body = json!({"site": "shop", "definition": "repeat_buyers"});
    let r = srv
        .client
        .post(format!("{}/api/reports/segment", srv.url))
        .bearer_auth(&keys.read_key)
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["size"], 1);
    let r = srv
        .client
        .post(format!("{}/api/segments/members.csv", srv.url))
        .bearer_auth(&keys.read_key)
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = r.text().await.expect("csv");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "person_id,user_id,first_seen,last_seen,orders,revenue,last_viewed_products,purchase_probability,p_alive,predicted_value"
    );
    assert!(lines[1].starts_with("v:v4,,2026-01-01T10:00:00") && lines[1].ends_with(",3,30,,,,"), "{csv}");
    assert_eq!(lines.len(), 2);
    let r = srv.client.post(format!("{}/api/segments/members.csv", srv.url)).json(&body).send().await.expect("send");
    assert_eq!(r.status(), 401);
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_segments_crud_persist_and_filter_reports() {
    use footfall::model::SiteId;
    use footfall::sites::Sites;
    let (tmp, data) = fixture();
    let sites = Sites::open(&data.sites_file()).expect("sites");
    let keys = sites.add(SiteId::parse("shop").expect("id"), &[]).expect("add");
    let other = sites.add(SiteId::parse("blog").expect("id"), &[]).expect("add");
    let srv = crate::support::TestServer::start(crate::support::options(tmp.path())).await;
    let url = format!("{}/api/sites/shop/segments", srv.url);
    let c = &srv.client;
    let vip = json!({"type": "orders", "at_least": 3});

    // Read keys only read: saving needs the site's write key (or the admin key).
    let r = c
        .post(&url)
        .bearer_auth(&keys.read_key)
        .json(&json!({"name": "Big spenders!", "definition": vip}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<Value>().await.expect("json")["error"]["code"], "read_only_key");
    let r = c
        .post(&url)
        .bearer_auth(&other.write_key)
        .json(&json!({"name": "x", "definition": vip}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 403, "another site's write key");
    let r = c.delete(format!("{url}/anything")).bearer_auth(&keys.read_key).send().await.expect("send");
    assert_eq!(r.status(), 403);

    let r = c
        .post(&url)
        .bearer_auth(&keys.write_key)
        .json(&json!({"name": "Big spenders!", "definition": vip}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 201);
    let saved: Value = r.json().await.expect("json");
    assert_eq!(saved["id"], "big-spenders");
    // The same name again gets its own id; a bad definition names its field; another site's key is refused.
    let r = c
        .post(&url)
        .bearer_auth(&keys.write_key)
        .json(&json!({"name": "Big spenders", "definition": vip}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.json::<Value>().await.expect("json")["id"], "big-spenders-2");
    let r = c
        .post(&url)
        .bearer_auth(&keys.write_key)
        .json(&json!({"name": "x", "definition": {"type": "orders"}}))
        .send()
        .await
        .expect("send");
    assert_eq!(
        (r.status(), r.json::<Value>().await.expect("json")["error"]["field"].clone()),
        (reqwest::StatusCode::BAD_REQUEST, json!("definition"))
    );
    let r = c.get(&url).bearer_auth(&other.read_key).send().await.expect("send");
    assert_eq!(r.status(), 403);

    // Rename and redefine, delete the copy.
    let r = c
        .put(format!("{url}/big-spenders"))
        .bearer_auth(&keys.write_key)
        .json(&json!({"name": "VIP (2+)", "definition": {"type": "orders", "at_least": 2}}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    assert_eq!(
        c.delete(format!("{url}/big-spenders-2")).bearer_auth(&keys.write_key).send().await.expect("send").status(),
        204
    );
    assert_eq!(
        c.delete(format!("{url}/big-spenders-2")).bearer_auth(&keys.write_key).send().await.expect("send").status(),
        404
    );
    let list: Value = c.get(&url).bearer_auth(&keys.read_key).send().await.expect("send").json().await.expect("json");
    assert_eq!(list["templates"].as_array().map(Vec::len), Some(10));
    assert_eq!(
        list["saved"].as_array().map(|a| a.iter().map(|s| s["name"].clone()).collect::<Vec<_>>()),
        Some(vec![json!("VIP (2+)")])
    );
    srv.shutdown().await;

    // Kept in the data directory: a restarted server still knows it, and reports take its id.
    let srv = crate::support::TestServer::start(crate::support::options(tmp.path())).await;
    let r: Value = srv
        .client
        .post(format!("{}/api/reports/segment", srv.url))
        .bearer_auth(&keys.read_key)
        .json(&json!({"site": "shop", "definition": "big-spenders"}))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(r["size"], 1, "{r}");
    let r: Value = srv.client.post(format!("{}/api/reports/ecommerce", srv.url)).bearer_auth(&keys.read_key)
        .json(&json!({"site": "shop", "date_range": {"from": "2026-01-01", "to": "2026-01-03"}, "segment": "big-spenders"}))
        .send().await.expect("send").json().await.expect("json");
    // v4's three orders of 10.
    assert_eq!((r["totals"]["orders"].clone(), r["totals"]["revenue"].clone()), (json!(3), json!(30.0)), "{r}");
    srv.shutdown().await;
}
