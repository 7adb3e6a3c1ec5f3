//! Take away and erase: exporting a site or one person, and forgetting a person, checked by
//! reading back every file under the data directory.

use std::path::Path;

use arrow::array::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use footfall::export::{ExportFormat, ExportRequest, export};
use footfall::model::{Event, SiteId};
use footfall::store::StoreGuard;
use footfall::store::forget::{Subject, forget};
use footfall::store::paths::DataDir;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestServer, all_files, options};

const DAY: i64 = 86_400_000_000;
/// 2026-01-05 10:00 UTC.
const JAN5: i64 = 1_767_607_200_000_000;

/// alice on three devices over two days: the laptop and the phone linked by `identify`, the
/// tablet only by an order that carries her user id; bob anonymous at home.
///
/// | visitor | day | events |
/// |---|---|---|
/// | dev-alice-laptop | Jan 5 | pageview, identify alice-4417 |
/// | dev-alice-phone | Jan 5 | pageview, identify alice-4417, add_to_cart |
/// | dev-alice-tablet | Jan 6 | pageview, purchase (user alice-4417) |
/// | dev-bob-home | Jan 5, Jan 6 | pageview, pageview |
fn shop() -> Vec<Event> {
    let rows: [(&str, i64, &str, Option<&str>); 9] = [
        ("dev-alice-laptop", JAN5, "pageview", None),
        ("dev-alice-laptop", JAN5 + 60_000_000, "identify", Some("alice-4417")),
        ("dev-alice-phone", JAN5 + 120_000_000, "pageview", None),
        ("dev-alice-phone", JAN5 + 180_000_000, "identify", Some("alice-4417")),
        ("dev-alice-phone", JAN5 + 240_000_000, "add_to_cart", None),
        ("dev-alice-tablet", JAN5 + DAY, "pageview", None),
        ("dev-alice-tablet", JAN5 + DAY + 60_000_000, "purchase", Some("alice-4417")),
        ("dev-bob-home", JAN5 + 300_000_000, "pageview", None),
        ("dev-bob-home", JAN5 + DAY + 300_000_000, "pageview", None),
    ];
    rows.iter()
        .enumerate()
        .map(|(i, (v, ts, name, user))| Event {
            event_id: format!("ev-{i}"),
            site: "shop".into(),
            ts: *ts,
            name: (*name).into(),
            visitor_id: (*v).into(),
            user_id: user.map(str::to_owned),
            session_id: format!("s-{v}-{}", ts / DAY),
            path: Some(format!("/p{i}")),
            revenue: (*name == "purchase").then_some(25.0),
            order_id: (*name == "purchase").then(|| "o-1".into()),
            ..Event::default()
        })
        .collect()
}

/// Every text a Parquet file holds, decoded (compressed pages hide ids from a byte search).
fn parquet_texts(path: &Path) -> Vec<String> {
    let file = std::fs::File::open(path).expect("open");
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("parquet")
        .build()
        .expect("reader");
    let mut out = Vec::new();
    for b in reader {
        let b: RecordBatch = b.expect("batch");
        for c in b.columns() {
            let f = ArrayFormatter::try_new(c.as_ref(), &FormatOptions::default()).expect("formatter");
            out.extend((0..b.num_rows()).map(|i| f.value(i).to_string()));
        }
    }
    out
}

/// Where any of `ids` is still found under `dir`: raw bytes of every file, and every decoded
/// value of every Parquet file.
fn traces(dir: &Path, ids: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for f in all_files(dir) {
        let bytes = std::fs::read(&f).expect("read");
        for id in ids {
            if bytes.windows(id.len()).any(|w| w == id.as_bytes()) {
                found.push(format!("{id} in the bytes of {}", f.display()));
            }
        }
        if f.extension().is_some_and(|x| x == "parquet") {
            for t in parquet_texts(&f) {
                if let Some(id) = ids.iter().find(|id| t.contains(*id)) {
                    found.push(format!("{id} in {} ({t})", f.display()));
                }
            }
        }
    }
    found
}

async fn people(data: &DataDir) -> Vec<String> {
    let sql = "SELECT DISTINCT person_id FROM events ORDER BY person_id";
    let out = footfall::query::run_scoped_sql(data, &footfall::query::Scope::All, sql.into(), Default::default())
        .await
        .expect("query");
    let text = footfall::query::output::render(&out.batches, footfall::query::output::Format::Json).expect("json");
    let rows: Vec<Value> = serde_json::from_str(&text).expect("rows");
    rows.iter().map(|r| r["person_id"].as_str().expect("id").to_owned()).collect()
}

async fn export_of(data: &DataDir, person: Option<Subject>, format: ExportFormat) -> (usize, Vec<u8>) {
    let req = ExportRequest { site: SiteId::parse("shop").expect("site"), from: None, to: None, person };
    let mut buf = Vec::new();
    let rows = export(data, &req, format, &mut buf).await.expect("export");
    (rows, buf)
}

#[tokio::test]
async fn a_person_exported_then_forgotten_leaves_no_trace() {
    let (tmp, data) = crate::support::store(shop());
    // Before: the search finds the ids (so its empty answer later means something).
    assert!(
        !traces(tmp.path(), &["alice-4417", "dev-alice-laptop", "dev-alice-phone", "dev-alice-tablet"]).is_empty(),
        "the test sees the ids before"
    );
    // Reports: the tablet's pageview came before any identify on it, so it is its own person
    // there; for export and erasure the tablet is hers (it sent her user id).
    assert_eq!(people(&data).await, vec!["u:alice-4417", "v:dev-alice-tablet", "v:dev-bob-home"]);

    // Subject access: alice's 7 events in time order, whichever of her ids is asked for.
    let (rows, ndjson) = export_of(&data, Some(Subject::User("alice-4417".into())), ExportFormat::Ndjson).await;
    assert_eq!(rows, 7);
    let lines: Vec<Value> =
        String::from_utf8(ndjson).expect("utf8").lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    let ids: Vec<&str> = lines.iter().map(|l| l["event_id"].as_str().expect("id")).collect();
    assert_eq!(ids, ["ev-0", "ev-1", "ev-2", "ev-3", "ev-4", "ev-5", "ev-6"]);
    assert!(lines.iter().all(|l| l["site"] == "shop"));
    assert_eq!(export_of(&data, Some(Subject::Visitor("dev-alice-phone".into())), ExportFormat::Ndjson).await.0, 7);
    assert_eq!(export_of(&data, Some(Subject::Visitor("dev-bob-home".into())), ExportFormat::Ndjson).await.0, 2);
    // The whole site as CSV (nested columns as JSON text) and Parquet.
    let (rows, csv) = export_of(&data, None, ExportFormat::Csv).await;
    let csv = String::from_utf8(csv).expect("utf8");
    assert_eq!((rows, csv.lines().count()), (9, 10), "{csv}");
    assert!(csv.lines().next().is_some_and(|h| h.starts_with("event_id,ts,") && h.contains(",items,")), "{csv}");
    let (rows, pq) = export_of(&data, None, ExportFormat::Parquet).await;
    let file = tmp.path().join("export.parquet");
    std::fs::write(&file, pq).expect("write");
    let read = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(&file).expect("open"),
    )
    .expect("parquet")
    .build()
    .expect("reader")
    .map(|b| b.expect("batch").num_rows())
    .sum::<usize>();
    assert_eq!((rows, read), (9, 9));

    std::fs::remove_file(&file).expect("remove");
    // Forget her by one device's id: the whole person goes, on both days.
    let forget_in_shop = |who: Subject| {
        forget(&data, &StoreGuard::default(), &SiteId::parse("shop").expect("site"), &who, JAN5 + 9 * DAY)
            .expect("forget")
    };
    let done = forget_in_shop(Subject::Visitor("dev-alice-tablet".into()));
    assert_eq!((done.events, done.partitions, done.visitors), (7, 2, 3));
    assert_eq!(
        traces(tmp.path(), &["alice-4417", "dev-alice-laptop", "dev-alice-phone", "dev-alice-tablet"]),
        Vec::<String>::new()
    );
    // Bob is untouched, and reports count one person.
    assert_eq!(people(&data).await, vec!["v:dev-bob-home"]);
    assert_eq!(export_of(&data, Some(Subject::Visitor("dev-bob-home".into())), ExportFormat::Ndjson).await.0, 2);
    // The audit line: when, which site, how many; no id.
    let audit = std::fs::read_to_string(data.audit_log()).expect("audit log");
    let line: Value = serde_json::from_str(audit.trim()).expect("one JSON line");
    assert_eq!(
        (line["action"].clone(), line["site"].clone(), line["events"].clone(), line["partitions"].clone()),
        (json!("forget"), json!("shop"), json!(7), json!(2))
    );
    // Forgetting again finds nothing and says so.
    let again = forget_in_shop(Subject::User("alice-4417".into()));
    assert_eq!((again.events, again.partitions), (0, 0));
}

/// Over HTTP, while the server runs: events still in the write-ahead log are forgotten too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgetting_over_http_reaches_the_write_ahead_log() {
    const ADMIN: &str = "admin-key-for-tests-0003";
    let dir = tempfile::tempdir().expect("tempdir");
    let sites = footfall::sites::Sites::open(&DataDir::new(dir.path()).sites_file()).expect("sites");
    let shop = sites.add(SiteId::parse("shop").expect("id"), &[]).expect("add");
    let mut opts = options(dir.path());
    opts.admin_key = Some(ADMIN.into());
    // No timed flush: what is posted stays in the log until the deletion flushes it.
    opts.flush_interval = std::time::Duration::from_secs(3600);
    let srv = TestServer::start(opts).await;
    let events = json!([
        {"site": "shop", "name": "identify", "visitor_id": "dev-carol-1", "user_id": "carol-77"},
        {"site": "shop", "name": "pageview", "visitor_id": "dev-carol-1", "url": "https://shop.example/"},
        {"site": "shop", "name": "pageview", "visitor_id": "dev-dave-1", "url": "https://shop.example/"}
    ]);
    let r = srv.post(events.to_string()).bearer_auth(&shop.write_key).send().await.expect("send");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let url = |id: &str| format!("{}/api/sites/shop/people/{id}", srv.url);

    // Only the admin key deletes; a person id names its kind.
    let r = srv.client.delete(url("u:carol-77")).bearer_auth(&shop.read_key).send().await.expect("send");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "admin_key_required");
    let r = srv.client.delete(url("carol-77")).bearer_auth(ADMIN).send().await.expect("send");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.expect("json");
    assert_eq!((body["error"]["code"].clone(), body["error"]["field"].clone()), (json!("invalid_person"), json!("id")));

    let r = srv.client.delete(url("u:carol-77")).bearer_auth(ADMIN).send().await.expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.expect("json");
    assert_eq!((body["events"].clone(), body["visitors"].clone()), (json!(2), json!(1)));
    // Her export is now empty; dave's has his pageview (the site's read key may ask).
    let export = |id: &str| srv.client.get(format!("{}/export", url(id))).bearer_auth(&shop.read_key).send();
    let r = export("u:carol-77").await.expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.expect("text"), "");
    let r = export("v:dev-dave-1").await.expect("send");
    assert_eq!(r.headers()["content-type"], "application/x-ndjson");
    let text = r.text().await.expect("text");
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("\"dev-dave-1\""));
    srv.shutdown().await;
    assert_eq!(traces(dir.path(), &["carol-77", "dev-carol-1"]), Vec::<String>::new());
}

/// The same from the command line: `footfall export` and `footfall forget`.
#[test]
fn export_and_forget_from_the_command_line() {
    let (tmp, _data) = crate::support::store(shop());
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_footfall"))
            .args(args)
            .args(["--data", tmp.path().to_str().expect("utf8")])
            .output()
            .expect("footfall runs")
    };
    let lines = |out: &std::process::Output| String::from_utf8_lossy(&out.stdout).lines().count();
    let out = run(&["export", "--site", "shop", "--user", "alice-4417"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(lines(&out), 7);
    let out = run(&["export", "--site", "shop", "--from", "2026-01-06", "--to", "2026-01-06", "--format", "csv"]);
    assert_eq!(lines(&out), 1 + 3, "a header and the 3 events of Jan 6");
    // A person must be named, once.
    let out = run(&["forget", "--site", "shop"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--user"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(&["forget", "--site", "shop", "--user", "alice-4417"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "forgot 7 events on 3 devices, rewrote 2 partitions (logged in audit.log)"
    );
    assert_eq!(lines(&run(&["export", "--site", "shop", "--user", "alice-4417"])), 0);
    assert_eq!(lines(&run(&["export", "--site", "shop"])), 2);
}

/// A site's retention, applied by the server's background task on the injected clock's day.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn days_past_a_sites_retention_are_dropped_by_the_clock() {
    use footfall::clock::FixedClock;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = DataDir::new(dir.path());
    let sites = footfall::sites::Sites::open(&data.sites_file()).expect("sites");
    let site = SiteId::parse("shop").expect("id");
    sites.add(site.clone(), &[]).expect("add");
    sites.set_retention(&site, Some(30)).expect("retention");
    let day = |m: u32, d: u32| chrono::NaiveDate::from_ymd_opt(2026, m, d).expect("date");
    let noon = |d: chrono::NaiveDate| d.and_hms_opt(12, 0, 0).expect("t").and_utc().timestamp_micros();
    let events = [day(3, 1), day(3, 25)]
        .iter()
        .map(|d| Event {
            event_id: format!("e-{d}"),
            site: "shop".into(),
            ts: noon(*d),
            name: "pageview".into(),
            visitor_id: "v".into(),
            session_id: format!("s-{d}"),
            ..Event::default()
        })
        .collect();
    footfall::store::flush_events(&data, footfall::wal::SegmentHeader { created_ms: 1, seq: 1 }, events)
        .expect("flush");
    let clock = std::sync::Arc::new(FixedClock::new(noon(day(4, 5))));
    let mut opts = options(dir.path());
    opts.compact_interval = std::time::Duration::from_millis(100);
    let running = footfall::server::start(opts, clock.clone()).await.expect("server starts");
    let until = |want: Vec<chrono::NaiveDate>| {
        let data = data.clone();
        let site = site.clone();
        async move {
            for _ in 0..200 {
                if data.site_dates(&site).expect("dates") == want {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            panic!("days are {:?}, not {want:?}", data.site_dates(&site).expect("dates"));
        }
    };
    // April 5, keeping 30 days: March 7 on. March 1 goes, March 25 stays.
    until(vec![day(3, 25)]).await;
    // The clock moves to April 30: March 25 is past too.
    clock.set(noon(day(4, 30)));
    until(vec![]).await;
    running.shutdown().await;
}

/// `footfall site rotate-keys` while a server runs: the old keys are refused at their next
/// request, the new ones work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_keys_are_refused_at_once_by_a_running_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sites = footfall::sites::Sites::open(&DataDir::new(dir.path()).sites_file()).expect("sites");
    let old = sites.add(SiteId::parse("shop").expect("id"), &[]).expect("add");
    let srv = TestServer::start(options(dir.path())).await;
    let read = |key: String| srv.client.get(format!("{}/api/sites", srv.url)).bearer_auth(key).send();
    let write = |key: String| {
        let body = json!({"site": "shop", "name": "signup", "visitor_id": "v-1"}).to_string();
        srv.post(body).bearer_auth(key).send()
    };
    assert_eq!(read(old.read_key.clone()).await.expect("send").status(), StatusCode::OK);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_footfall"))
        .args(["site", "rotate-keys", "shop", "--data", dir.path().to_str().expect("utf8")])
        .output()
        .expect("footfall runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let key = |label: &str| text.lines().find_map(|l| l.strip_prefix(label)).expect("key line").trim().to_owned();
    let (new_write, new_read) = (key("write key:"), key("read key:"));
    assert!(new_write != old.write_key && new_read != old.read_key);
    assert_eq!(read(old.read_key.clone()).await.expect("send").status(), StatusCode::UNAUTHORIZED);
    assert_eq!(write(old.write_key.clone()).await.expect("send").status(), StatusCode::UNAUTHORIZED);
    assert_eq!(read(new_read).await.expect("send").status(), StatusCode::OK);
    assert_eq!(write(new_write).await.expect("send").status(), StatusCode::ACCEPTED);
    srv.shutdown().await;
}

/// `footfall site remove`: only with the confirmation flag; then the site, its keys and every
/// file of its data are gone, and the other site is untouched.
#[test]
fn removing_a_site_takes_its_data_and_leaves_the_others() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = DataDir::new(dir.path());
    let sites = footfall::sites::Sites::open(&data.sites_file()).expect("sites");
    for id in ["shop", "blog"] {
        sites.add(SiteId::parse(id).expect("id"), &[]).expect("add");
    }
    let events = ["shop", "blog"]
        .iter()
        .flat_map(|site| {
            shop().into_iter().map(move |e| Event {
                site: (*site).into(),
                event_id: format!("{site}-{}", e.event_id),
                ..e
            })
        })
        .collect();
    footfall::store::flush_events(&data, footfall::wal::SegmentHeader { created_ms: 1, seq: 1 }, events)
        .expect("flush");
    let segments =
        footfall::saved_segments::SavedSegments::new(data.clone(), std::sync::Arc::new(footfall::clock::SystemClock));
    let def = json!({"did": {"event": "purchase"}});
    segments.save(&SiteId::parse("shop").expect("id"), None, "Buyers", &def, &[]).expect("save");
    let views = footfall::saved_segments::SavedSegments::of(
        footfall::saved_segments::Kind::Views,
        data.clone(),
        std::sync::Arc::new(footfall::clock::SystemClock),
    );
    for site in ["shop", "blog"] {
        views
            .save(&SiteId::parse(site).expect("id"), None, "Paths", &json!({"query": "tab=paths"}), &[])
            .expect("view");
    }
    let footfall = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_footfall"))
            .args(args)
            .args(["--data", dir.path().to_str().expect("utf8")])
            .output()
            .expect("footfall runs")
    };
    let out = footfall(&["site", "remove", "shop"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--yes-delete-data"), "{out:?}");
    assert_eq!(data.site_dates(&SiteId::parse("shop").expect("id")).expect("dates").len(), 2, "nothing removed");
    let out = footfall(&["site", "remove", "shop", "--yes-delete-data"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "removed site shop: 2 days of events, 1 saved segments, 1 saved views (logged in audit.log)"
    );
    let left: Vec<String> =
        all_files(dir.path()).iter().map(|p| p.display().to_string()).filter(|p| p.contains("site=shop")).collect();
    assert_eq!(left, Vec::<String>::new());
    let listed: Value = serde_json::from_slice(&footfall(&["site", "list"]).stdout).expect("json");
    assert_eq!(
        listed.as_array().expect("sites").iter().map(|s| s["id"].clone()).collect::<Vec<_>>(),
        vec![json!("blog")]
    );
    assert_eq!(data.site_dates(&SiteId::parse("blog").expect("id")).expect("dates").len(), 2);
    assert!(
        footfall::saved_segments::saved(
            &data,
            footfall::saved_segments::Kind::Segments,
            &SiteId::parse("shop").expect("id")
        )
        .expect("segments")
        .is_empty()
    );
    // The shop's saved view is gone, the blog's is kept.
    let kept = |site: &str| {
        footfall::saved_segments::saved(&data, footfall::saved_segments::Kind::Views, &SiteId::parse(site).expect("id"))
            .expect("views")
            .len()
    };
    assert_eq!((kept("shop"), kept("blog")), (0, 1));
    let audit = std::fs::read_to_string(data.audit_log()).expect("audit");
    assert!(audit.contains("\"action\":\"remove_site\"") && audit.contains("\"days\":2"), "{audit}");
}

/// Refused events are kept per site with why, without the IP, listed over HTTP and by the CLI,
/// and counted by reason in `/metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_events_are_kept_with_their_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sites = footfall::sites::Sites::open(&DataDir::new(dir.path()).sites_file()).expect("sites");
    let shop = sites.add(SiteId::parse("shop").expect("id"), &[]).expect("add");
    let blog = sites.add(SiteId::parse("blog").expect("id"), &[]).expect("add");
    let srv = TestServer::start(options(dir.path())).await;
    let batch = json!([
        {"site": "shop", "name": "signup", "visitor_id": "v-1"},
        {"site": "shop", "visitor_id": "v-2", "ip": "81.2.69.160"},
        {"site": "shop", "name": "signup", "visitor_id": "v-3", "colour": "red"},
        {"site": "nope", "name": "signup"}
    ]);
    let r = srv.post(batch.to_string()).bearer_auth(&shop.write_key).send().await.expect("send");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let list = |key: String| srv.client.get(format!("{}/api/sites/shop/rejected", srv.url)).bearer_auth(key).send();
    let r = list(shop.read_key.clone()).await.expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.expect("json");
    let kept: Vec<(Value, Value, Value)> = body["rejected"]
        .as_array()
        .expect("list")
        .iter()
        .map(|r| (r["reason"].clone(), r["field"].clone(), r["item"]["visitor_id"].clone()))
        .collect();
    // Newest first. The shop's backend (its write key) sent all four, so the one naming a
    // site it may not write to is the shop's to see too.
    assert_eq!(
        kept,
        vec![
            (json!("site"), json!("site"), Value::Null),
            (json!("unknown_field"), json!("colour"), json!("v-3")),
            (json!("missing_field"), json!("name"), json!("v-2")),
        ]
    );
    assert!(body["rejected"][2]["item"].get("ip").is_none() && body["rejected"][2]["at"].is_string());
    // A browser's event naming a site that does not exist is nobody's: refused, not kept.
    let r = srv.post(json!({"site": "nope", "name": "pageview", "url": "https://x.example/"}).to_string()).send().await;
    assert!(r.expect("send").status().is_client_error());
    assert_eq!(list(blog.read_key.clone()).await.expect("send").status(), StatusCode::FORBIDDEN);
    let metrics =
        srv.client.get(format!("{}/metrics", srv.url)).send().await.expect("send").text().await.expect("text");
    for reason in ["missing_field", "unknown_field", "site"] {
        let line = format!("footfall_events_rejected_by_reason_total{{reason=\"{reason}\"}}");
        assert!(metrics.lines().any(|l| l.starts_with(&line)), "{line} in {metrics}");
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_footfall"))
        .args(["rejected", "--site", "shop", "--data", dir.path().to_str().expect("utf8")])
        .output()
        .expect("footfall runs");
    let lines: Vec<Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("json line")).collect();
    assert_eq!(lines, body["rejected"].as_array().expect("list").clone());
    srv.shutdown().await;
    assert_eq!(traces(dir.path(), &["81.2.69.160"]), Vec::<String>::new());
    assert!(!dir.path().join("rejected/site=nope.jsonl").exists());
}
