//! Bringing history: every import format from a small file the test writes, checked field by
//! field in the store; re-importing stores nothing twice; bad rows are reported by line.

use std::io::Cursor;

use footfall::import::{ColumnMap, ImportFormat, ImportOptions, ImportReport, import};
use footfall::model::SiteId;
use footfall::store::StoreGuard;
use footfall::store::paths::DataDir;
use serde_json::{Value, json};

const CHROME: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";

fn run(data: &DataDir, format: ImportFormat, map: Option<&str>, text: &[u8], max_errors: usize) -> ImportReport {
    let opts = ImportOptions {
        site: SiteId::parse("shop").expect("site"),
        format,
        map: map.map(|m| ColumnMap::parse(m).expect("map")),
        max_errors,
    };
    let input = footfall::import::Input::Stream(Box::new(Cursor::new(text.to_vec())));
    import(data, &StoreGuard::default(), &opts, input, |_| {}).expect("import")
}

/// Stored rows as JSON objects (selected columns), in time order.
async fn stored(data: &DataDir, columns: &str) -> Vec<Value> {
    let sql = format!("SELECT {columns} FROM events ORDER BY ts, event_id");
    let out = footfall::query::run_scoped_sql(data, &footfall::query::Scope::All, sql, Default::default())
        .await
        .expect("query");
    let text = footfall::query::output::render(&out.batches, footfall::query::output::Format::Json).expect("json");
    serde_json::from_str(&text).expect("rows")
}

fn lines(v: &[Value]) -> Vec<u8> {
    v.iter().map(|l| format!("{l}\n")).collect::<String>().into_bytes()
}

#[tokio::test]
async fn footfall_ndjson_with_bad_rows_by_line_and_a_second_import_storing_nothing_twice() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = DataDir::new(tmp.path());
    let mut file = lines(&[
        json!({"name": "pageview", "visitor_id": "v1", "timestamp": "2025-03-01T10:00:00Z", "user_agent": CHROME,
               "url": "https://shop.example/mugs?utm_source=newsletter&utm_medium=email&utm_campaign=spring"}),
        json!({"name": "identify", "visitor_id": "v1", "user_id": "u-9", "timestamp": "2025-03-01T10:05:00Z"}),
        json!({"name": "purchase", "visitor_id": "v1", "timestamp": 1_740_823_800_000_i64,
               "props": {"order_id": "o-1", "revenue": 30, "currency": "EUR", "items": [{"id": "mug-1", "price": 15, "quantity": 2}]}}),
    ]);
    file.extend_from_slice(b"{not json\n");
    file.extend_from_slice(&lines(&[
        json!({"name": "pageview", "visitor_id": "v2", "url": "https://shop.example/"}),
        json!({"name": "pageview", "visitor_id": "v3", "timestamp": "2025-03-02T09:00:00Z", "colour": "red"}),
        json!({"name": "pageview", "visitor_id": "bot", "timestamp": "2025-03-02T09:00:00Z", "url": "https://shop.example/",
               "user_agent": "Googlebot/2.1 (+http://www.google.com/bot.html)"}),
    ]));
    let r = run(&data, ImportFormat::Footfall, None, &file, 100);
    assert_eq!((r.rows, r.imported, r.skipped, r.error_count, r.days), (7, 3, 1, 3, 1), "{:?}", r.errors);
    let errors: Vec<(usize, &str)> = r.errors.iter().map(|e| (e.line, e.field.as_str())).collect();
    assert_eq!(errors, vec![(4, ""), (5, "timestamp"), (6, "colour")]);
    let rows = stored(&data, "name, CAST(ts AS VARCHAR) AS ts, person_id, channel, source, campaign, browser, device, order_id, CAST(revenue AS DOUBLE) AS revenue, session_id, origin").await;
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["ts"], "2025-03-01T10:00:00Z");
    assert_eq!(
        (&rows[0]["channel"], &rows[0]["source"], &rows[0]["campaign"], &rows[0]["browser"], &rows[0]["device"]),
        (&json!("Email"), &json!("newsletter"), &json!("spring"), &json!("Chrome"), &json!("Desktop"))
    );
    assert_eq!(
        (&rows[2]["name"], &rows[2]["order_id"], &rows[2]["revenue"]),
        (&json!("purchase"), &json!("o-1"), &json!(30.0))
    );
    // One person (the identify links v1), one session (all within 30 minutes), origin import.
    assert!(
        rows.iter()
            .all(|r| r["person_id"] == "u:u-9" && r["session_id"] == rows[0]["session_id"] && r["origin"] == "import")
    );
    // The same file again: nothing stored twice.
    let again = run(&data, ImportFormat::Footfall, None, &file, 100);
    assert_eq!((again.imported, again.stored_in_days), (3, 3));
    assert_eq!(stored(&data, "event_id").await.len(), 3);
    // Too many bad rows: stops, keeping what came before.
    let r = run(&data, ImportFormat::Footfall, None, &file, 1);
    assert!(r.stopped && r.error_count == 2, "{r:?}");
}

#[tokio::test]
async fn segment_and_rudderstack_spec_calls() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = DataDir::new(tmp.path());
    let ctx = json!({"page": {"url": "https://shop.example/p/mug-1", "referrer": "https://www.google.com/"}, "userAgent": CHROME});
    let file = lines(&[
        json!({"type": "page", "anonymousId": "anon-1", "messageId": "ajs-next-0001", "timestamp": "2025-04-01T08:00:00Z", "context": ctx}),
        json!({"type": "track", "event": "Product Viewed", "anonymousId": "anon-1", "messageId": "m2", "timestamp": "2025-04-01T08:01:00Z",
               "properties": {"product_id": "mug-1", "name": "Mug", "price": 15, "category": "Mugs"}, "context": ctx}),
        json!({"type": "identify", "anonymousId": "anon-1", "userId": "cust-7", "messageId": "m3", "timestamp": "2025-04-01T08:02:00Z",
               "traits": {"email": "x@example.com"}}),
        json!({"type": "track", "event": "Order Completed", "anonymousId": "anon-1", "userId": "cust-7", "messageId": "m4",
               "originalTimestamp": "2025-04-01T08:03:00Z",
               "properties": {"order_id": "o-50", "total": 45.5, "currency": "USD", "coupon": {"code": "SPRING"},
                              "products": [{"product_id": "mug-1", "price": 15, "quantity": 1}, {"sku": "pot-2", "price": 30.5, "quantity": 1}]}}),
        json!({"type": "group", "anonymousId": "anon-1", "groupId": "g1", "timestamp": "2025-04-01T08:04:00Z"}),
    ]);
    let r = run(&data, ImportFormat::Segment, None, &file, 0);
    assert_eq!((r.rows, r.imported, r.skipped, r.error_count), (5, 4, 1, 0), "{:?}", r.errors);
    let rows = stored(&data, "event_id, name, path, channel, person_id, order_id, currency, CAST(revenue AS DOUBLE) AS revenue, items, props").await;
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().expect("name")).collect();
    assert_eq!(names, ["pageview", "product_view", "identify", "purchase"]);
    assert_eq!(
        (&rows[0]["event_id"], &rows[0]["path"], &rows[0]["channel"]),
        (&json!("ajs-next-0001"), &json!("/p/mug-1"), &json!("Organic Search"))
    );
    assert_eq!(rows[1]["items"][0]["id"], "mug-1");
    assert_eq!(rows[1]["items"][0]["category"], "Mugs");
    let buy = &rows[3];
    assert_eq!((&buy["order_id"], &buy["revenue"], &buy["currency"]), (&json!("o-50"), &json!(45.5), &json!("USD")));
    let ids: Vec<&str> =
        buy["items"].as_array().expect("items").iter().map(|i| i["id"].as_str().expect("id")).collect();
    assert_eq!(ids, ["mug-1", "pot-2"]);
    assert_eq!(buy["props"]["coupon"], "{\"code\":\"SPRING\"}");
    assert!(rows.iter().all(|r| r["person_id"] == "u:cust-7"));
}

#[tokio::test]
async fn posthog_export_csv() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = DataDir::new(tmp.path());
    let props = |url: &str, extra: Value| {
        let mut p = json!({"$current_url": url, "$referrer": "https://www.bing.com/", "$session_id": "ph-s1", "$browser": "Chrome"});
        p.as_object_mut().expect("object").extend(extra.as_object().expect("object").clone());
        p.to_string().replace('"', "\"\"")
    };
    let csv = format!(
        "uuid,event,distinct_id,timestamp,properties\n\
         01901a2b-0000-7000-8000-00000000000a,$pageview,anon-x,2025-05-01 12:00:00,\"{}\"\n\
         01901a2b-0000-7000-8000-00000000000b,signed_up,anon-x,2025-05-01T12:03:00Z,\"{}\"\n\
         01901a2b-0000-7000-8000-00000000000c,$identify,user-3,2025-05-01T12:04:00Z,\"{}\"\n",
        props("https://shop.example/", json!({})),
        props("https://shop.example/join", json!({"plan": "pro"})),
        props("https://shop.example/join", json!({"$anon_distinct_id": "anon-x"}))
    );
    let r = run(&data, ImportFormat::Posthog, None, csv.as_bytes(), 0);
    assert_eq!((r.rows, r.imported, r.error_count), (3, 3, 0), "{:?}", r.errors);
    let rows = stored(&data, "event_id, name, CAST(ts AS VARCHAR) AS ts, path, channel, person_id, props").await;
    let got: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|r| {
            (r["event_id"].as_str().expect("id"), r["name"].as_str().expect("n"), r["person_id"].as_str().expect("p"))
        })
        .collect();
    assert_eq!(
        got,
        [
            ("01901a2b-0000-7000-8000-00000000000a", "pageview", "u:user-3"),
            ("01901a2b-0000-7000-8000-00000000000b", "signed_up", "u:user-3"),
            ("01901a2b-0000-7000-8000-00000000000c", "identify", "u:user-3"),
        ]
    );
    assert_eq!((&rows[0]["ts"], &rows[0]["channel"]), (&json!("2025-05-01T12:00:00Z"), &json!("Organic Search")));
    assert_eq!(rows[1]["props"], json!({"plan": "pro"}), "PostHog's own $ properties are left out");
}

/// Two GA4 BigQuery export rows: a page view from a newsletter and a purchase.
fn ga4_rows() -> Vec<Value> {
    let param = |k: &str, v: Value| json!({"key": k, "value": v});
    vec![
        json!({"event_date": "20250601", "event_timestamp": "1748772000000000", "event_name": "page_view",
               "user_pseudo_id": "123.456", "user_id": null,
               "event_params": [param("page_location", json!({"string_value": "https://shop.example/p/pot-2"})),
                                param("ga_session_id", json!({"int_value": "1748772000"})),
                                param("source", json!({"string_value": "newsletter"})),
                                param("medium", json!({"string_value": "email"})),
                                param("engagement_time_msec", json!({"int_value": "100"}))],
               "items": [], "ecommerce": null, "traffic_source": {"source": "google", "medium": "organic", "name": "(organic)"}}),
        json!({"event_date": "20250601", "event_timestamp": "1748772300000000", "event_name": "purchase",
               "user_pseudo_id": "123.456", "user_id": "c-77",
               "event_params": [param("page_location", json!({"string_value": "https://shop.example/thanks"})),
                                param("ga_session_id", json!({"int_value": "1748772000"})),
                                param("currency", json!({"string_value": "EUR"}))],
               "items": [{"item_id": "pot-2", "item_name": "Teapot", "item_category": "Teapots", "price": 30.5, "quantity": 2}],
               "ecommerce": {"transaction_id": "T-9", "purchase_revenue": 61.0},
               "traffic_source": {"source": "google", "medium": "organic", "name": "(organic)"}}),
    ]
}

async fn check_ga4(data: &DataDir) {
    let rows = stored(data, "name, CAST(ts AS VARCHAR) AS ts, channel, source, session_id, person_id, order_id, CAST(revenue AS DOUBLE) AS revenue, currency, items").await;
    assert_eq!(rows.len(), 2);
    assert_eq!((&rows[0]["name"], &rows[0]["ts"]), (&json!("pageview"), &json!("2025-06-01T10:00:00Z")));
    assert_eq!((&rows[0]["channel"], &rows[0]["source"]), (&json!("Email"), &json!("newsletter")));
    assert_eq!(rows[0]["session_id"], rows[1]["session_id"]);
    assert_eq!(rows[0]["session_id"], "123.456:1748772000");
    let buy = &rows[1];
    assert_eq!((&buy["order_id"], &buy["revenue"], &buy["currency"]), (&json!("T-9"), &json!(61.0), &json!("EUR")));
    assert_eq!((&buy["items"][0]["id"], &buy["items"][0]["quantity"]), (&json!("pot-2"), &json!(2)));
    assert_eq!(buy["person_id"], "u:c-77");
}

#[tokio::test]
async fn ga4_bigquery_export_as_ndjson_and_as_parquet() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = DataDir::new(tmp.path());
    let r = run(&data, ImportFormat::Ga4, None, &lines(&ga4_rows()), 0);
    assert_eq!((r.imported, r.error_count), (2, 0), "{:?}", r.errors);
    check_ga4(&data).await;

    // The same rows as Parquet (BigQuery's export schema, inferred from the JSON here).
    let json = lines(&ga4_rows());
    let (schema, _) = arrow_json::reader::infer_json_schema_from_seekable(Cursor::new(&json), None).expect("schema");
    let schema = std::sync::Arc::new(schema);
    let reader = arrow_json::ReaderBuilder::new(schema.clone()).build(Cursor::new(&json)).expect("reader");
    let mut buf = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, schema, None).expect("writer");
    for b in reader {
        w.write(&b.expect("batch")).expect("write");
    }
    w.close().expect("close");
    let tmp2 = tempfile::tempdir().expect("tmp");
    let data2 = DataDir::new(tmp2.path());
    let r = run(&data2, ImportFormat::Ga4Parquet, None, &buf, 0);
    assert_eq!((r.imported, r.error_count), (2, 0), "{:?}", r.errors);
    check_ga4(&data2).await;
    // From a file (read a batch at a time, as `footfall import` reads one).
    let tmp3 = tempfile::tempdir().expect("tmp");
    let data3 = DataDir::new(tmp3.path());
    let path = tmp3.path().join("ga4.parquet");
    std::fs::write(&path, &buf).expect("write");
    let opts = ImportOptions {
        site: SiteId::parse("shop").expect("site"),
        format: ImportFormat::Ga4Parquet,
        map: None,
        max_errors: 0,
    };
    let input = footfall::import::Input::File(std::fs::File::open(&path).expect("open"));
    let r = import(&data3, &StoreGuard::default(), &opts, input, |_| {}).expect("import");
    assert_eq!((r.imported, r.error_count), (2, 0), "{:?}", r.errors);
    check_ga4(&data3).await;
}

#[tokio::test]
async fn any_csv_with_a_column_map() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = DataDir::new(tmp.path());
    let csv = "created_at,what,uid,page,plan,amount\n\
               2025-07-01 09:00:00,pageview,c1,https://shop.example/pricing,,\n\
               2025-07-01 09:10:00,upgrade,c1,https://shop.example/billing,pro,49.5\n\
               ,pageview,c2,https://shop.example/,,\n\
               2025-07-01 09:20:00,purchase,c2,https://shop.example/,,lots\n";
    let r = run(
        &data,
        ImportFormat::Csv,
        Some("ts=created_at,name=what,user=uid,url=page,prop:plan=plan,revenue=amount"),
        csv.as_bytes(),
        10,
    );
    let errors: Vec<(usize, &str)> = r.errors.iter().map(|e| (e.line, e.field.as_str())).collect();
    assert_eq!(errors, vec![(4, "created_at"), (5, "amount")]);
    let rows = stored(&data, "name, person_id, path, props, CAST(ts AS VARCHAR) AS ts").await;
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (&rows[1]["name"], &rows[1]["person_id"], &rows[1]["props"]),
        (&json!("upgrade"), &json!("u:c1"), &json!({"plan": "pro"}))
    );
    assert_eq!(rows[0]["ts"], "2025-07-01T09:00:00Z");
}

/// `footfall import` prints what it did and refuses a data directory a server holds.
#[test]
fn the_import_command() {
    let tmp = tempfile::tempdir().expect("tmp");
    let file = tmp.path().join("history.ndjson");
    std::fs::write(&file, lines(&ga4_rows())).expect("write");
    let data = tmp.path().join("data");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_footfall"))
        .args(["import", file.to_str().expect("utf8"), "--site", "shop", "--format", "ga4", "--data"])
        .arg(&data)
        .output()
        .expect("footfall runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("imported 2 events from 2 rows (0 skipped, 0 bad) into 1 days"), "{text}");
    assert!(text.trim_end().ends_with("those days now hold 2 events"), "{text}");
}

/// `POST /api/import` with the site's write key on a running server; the fields of a bad
/// request are named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn importing_over_http() {
    use crate::support::{TestServer, options};
    let dir = tempfile::tempdir().expect("tmp");
    let sites = footfall::sites::Sites::open(&DataDir::new(dir.path()).sites_file()).expect("sites");
    let shop = sites.add(SiteId::parse("shop").expect("id"), &[]).expect("add");
    let blog = sites.add(SiteId::parse("blog").expect("id"), &[]).expect("add");
    let srv = TestServer::start(options(dir.path())).await;
    let post = |query: &str, key: &str| {
        srv.client.post(format!("{}/api/import?{query}", srv.url)).bearer_auth(key).body(lines(&ga4_rows())).send()
    };
    let r = post("site=shop&format=ga4", &shop.write_key).await.expect("send");
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    let report: Value = r.json().await.expect("json");
    assert_eq!((&report["imported"], &report["days"], &report["error_count"]), (&json!(2), &json!(1), &json!(0)));
    check_ga4(&DataDir::new(dir.path())).await;
    // Another site's write key, a read key, a bad format, a CSV without its map.
    let status = |r: reqwest::Response| r.status();
    assert_eq!(
        status(post("site=shop&format=ga4", &blog.write_key).await.expect("send")),
        reqwest::StatusCode::FORBIDDEN
    );
    assert_eq!(
        status(post("site=shop&format=ga4", &shop.read_key).await.expect("send")),
        reqwest::StatusCode::UNAUTHORIZED
    );
    for (query, field) in [("site=shop&format=xls", "format"), ("site=shop&format=csv", "map"), ("format=ga4", "site")]
    {
        let r = post(query, &shop.write_key).await.expect("send");
        assert_eq!(r.status(), reqwest::StatusCode::BAD_REQUEST, "{query}");
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["error"]["field"], field, "{query}: {body}");
    }
    srv.shutdown().await;
}
