//! People resolved once: the identity map kept by the flusher, the stored `person_id`, its
//! correction at query time (retroactive stitching), compaction, and stores of schema version 1.

use std::collections::HashMap;

use arrow::array::{Array, AsArray, RecordBatch};
use footfall::model::{Event, SiteId};
use footfall::query::{self, QueryLimits, Scope};
use footfall::reports::trends::{TrendsRequest, trends};
use footfall::store::identity::IdentityMap;
use footfall::store::paths::{DataDir, data_files};
use footfall::store::{StoreGuard, compact::compact_all, flush_events, parquet::read_file};
use footfall::wal::SegmentHeader;
use proptest::prelude::*;

const DAY: i64 = 86_400 * 1_000_000;
/// 2026-01-05T00:00:00Z in microseconds.
const JAN5: i64 = 1_767_571_200 * 1_000_000;

fn ev(id: &str, visitor: &str, ts: i64, name: &str, user: Option<&str>) -> Event {
    Event {
        event_id: id.into(),
        site: "shop".into(),
        visitor_id: visitor.into(),
        ts,
        name: name.into(),
        user_id: user.map(str::to_owned),
        session_id: format!("{visitor}-{}", ts / DAY),
        ..Default::default()
    }
}

fn flush(data: &DataDir, seq: u64, events: Vec<Event>) {
    flush_events(data, SegmentHeader { created_ms: 1, seq }, events).expect("flush");
}

async fn persons(data: &DataDir) -> Vec<(String, String)> {
    let limits = QueryLimits::default();
    let ctx = query::session(data, &Scope::All, &limits).await.expect("session");
    let out =
        query::run_sql(&ctx, "SELECT event_id, person_id FROM events ORDER BY event_id", &limits).await.expect("query");
    pairs(&out.batches)
}

fn pairs(batches: &[RecordBatch]) -> Vec<(String, String)> {
    let mut v = Vec::new();
    for b in batches {
        let (a, p) = (b.column(0).as_string::<i32>(), b.column(1).as_string::<i32>());
        v.extend((0..b.num_rows()).map(|i| (a.value(i).to_owned(), p.value(i).to_owned())));
    }
    v
}

/// The `person_id` stored in the files of one day, by event id.
fn stored(data: &DataDir, day: i64) -> HashMap<String, Option<String>> {
    let date = chrono::DateTime::from_timestamp_micros(JAN5 + day * DAY).expect("ts").date_naive();
    let dir = data.partition_dir(&SiteId::parse("shop").expect("site"), date);
    let mut out = HashMap::new();
    for f in data_files(&dir).expect("list") {
        let b = read_file(&f).expect("read");
        let (ids, p) = (b.column_by_name("event_id").expect("id"), b.column_by_name("person_id").expect("person"));
        let (ids, p) = (ids.as_string::<i32>(), p.as_string::<i32>());
        for i in 0..b.num_rows() {
            out.insert(ids.value(i).to_owned(), (!p.is_null(i)).then(|| p.value(i).to_owned()));
        }
    }
    out
}

#[tokio::test]
async fn a_late_identify_counts_earlier_anonymous_visits_as_that_person() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = DataDir::new(tmp.path());
    // Monday: an anonymous visit on a laptop (v1) and one on a phone (v2), flushed that day.
    flush(&data, 1, vec![ev("e1", "v1", JAN5 + 10, "pageview", None), ev("e2", "v2", JAN5 + 20, "pageview", None)]);
    // Wednesday: the same person logs in on both devices, and browses on.
    flush(
        &data,
        2,
        vec![
            ev("e3", "v1", JAN5 + 2 * DAY, "identify", Some("ann")),
            ev("e4", "v2", JAN5 + 2 * DAY + 5, "identify", Some("ann")),
            ev("e5", "v2", JAN5 + 2 * DAY + 9, "pageview", None),
        ],
    );
    // On disk Monday's rows still say who was known then; Wednesday's were stamped as ann.
    assert_eq!(stored(&data, 0)["e1"].as_deref(), Some("v:v1"));
    assert_eq!(stored(&data, 2)["e5"].as_deref(), Some("u:ann"));
    // Every query sees Monday's visits as ann's.
    let all_ann: Vec<(String, String)> = (1..=5).map(|i| (format!("e{i}"), "u:ann".to_owned())).collect();
    assert_eq!(persons(&data).await, all_ann);
    // So does a report: one visitor over the week, not three (two devices and the login).
    let env = crate::support::report_env(&data, JAN5 + 7 * DAY);
    let req: TrendsRequest = footfall::reports::parse_request(
        serde_json::json!({"site": "shop", "date_range": {"from": "2026-01-05", "to": "2026-01-11"}, "metrics": ["visitors"]})
            .to_string()
            .as_bytes(),
    )
    .expect("request");
    let r = trends(&env, &req).await.expect("trends");
    assert_eq!(r.current.results[0].totals.visitors, Some(1));
    // Compaction re-stamps what it rewrites: a second Monday file makes the partition compact.
    flush(&data, 3, vec![ev("e6", "v1", JAN5 + 30, "pageview", None)]);
    compact_all(&data, &StoreGuard::default()).expect("compact");
    let monday = stored(&data, 0);
    assert_eq!((monday["e1"].as_deref(), monday["e6"].as_deref()), (Some("u:ann"), Some("u:ann")));
}

/// Write `events` as a file of schema version 1 (no `person_id`), as the flusher did before.
fn write_v1_file(data: &DataDir, events: &[Event]) {
    let batch = footfall::model::schema::to_record_batch(events).expect("batch");
    let mut batch = footfall::store::parquet::sort_dedupe(&batch).expect("sort");
    batch.remove_column(batch.schema().index_of("person_id").expect("person_id"));
    let date = events[0].date();
    let path = data.data_file(&SiteId::parse("shop").expect("site"), date, ulid::Ulid::from_parts(7, 7));
    std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
    let props = parquet::file::properties::WriterProperties::builder()
        .set_key_value_metadata(Some(vec![parquet::file::metadata::KeyValue::new(
            footfall::model::schema::SCHEMA_VERSION_KEY.to_owned(),
            "1".to_owned(),
        )]))
        .build();
    let file = std::fs::File::create(&path).expect("create");
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), Some(props)).expect("writer");
    w.write(&batch).expect("write");
    w.close().expect("close");
}

#[tokio::test]
async fn a_store_of_schema_version_1_reads_and_gets_its_map() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = DataDir::new(tmp.path());
    let site = SiteId::parse("shop").expect("site");
    write_v1_file(
        &data,
        &[
            ev("e1", "v1", JAN5 + 10, "pageview", None),
            ev("e2", "v1", JAN5 + 20, "identify", Some("ann")),
            ev("e3", "v2", JAN5 + 30, "purchase", Some("bob")),
            ev("e4", "v3", JAN5 + 40, "pageview", None),
        ],
    );
    assert_eq!(IdentityMap::load(&data, &site).expect("load"), None);
    let want = vec![
        ("e1".to_owned(), "u:ann".to_owned()),
        ("e2".to_owned(), "u:ann".to_owned()),
        ("e3".to_owned(), "u:bob".to_owned()),
        ("e4".to_owned(), "v:v3".to_owned()),
    ];
    // Read as it is, the map rebuilt in memory from the identify events.
    assert_eq!(persons(&data).await, want);
    // The next flush writes the map (once) and stamps its own rows from it.
    flush(&data, 1, vec![ev("e5", "v1", JAN5 + 50, "pageview", None)]);
    assert_eq!(IdentityMap::load(&data, &site).expect("load").map(|m| m.len()), Some(1));
    assert_eq!(stored(&data, 0)["e5"].as_deref(), Some("u:ann"));
    // Compaction turns the version 1 file into the current version, with persons stamped.
    compact_all(&data, &StoreGuard::default()).expect("compact");
    let day = stored(&data, 0);
    assert_eq!(day["e1"].as_deref(), Some("u:ann"));
    assert_eq!(day["e4"].as_deref(), Some("v:v3"));
    let mut all = want;
    all.push(("e5".to_owned(), "u:ann".to_owned()));
    assert_eq!(persons(&data).await, all);
}

/// The person of each event by the rule, from the whole history at once: the earliest identify
/// (by ts, then event id) of each visitor names its user; an event's own user comes first.
fn reference(events: &[Event]) -> Vec<(String, String)> {
    let mut first: HashMap<&str, (i64, &str, &str)> = HashMap::new();
    for e in events.iter().filter(|e| e.name == "identify") {
        let Some(u) = e.user_id.as_deref() else { continue };
        let cand = (e.ts, e.event_id.as_str(), u);
        first.entry(&e.visitor_id).and_modify(|c| *c = (*c).min(cand)).or_insert(cand);
    }
    let mut out: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            let user = e.user_id.as_deref().or_else(|| first.get(e.visitor_id.as_str()).map(|c| c.2));
            (e.event_id.clone(), footfall::model::person_id(user, &e.visitor_id))
        })
        .collect();
    out.sort();
    out
}

/// The same rule as SQL over the raw columns: the `identities` view (the first identify of each
/// visitor) joined to every event, as reports computed it before the map existed.
const SQL_REFERENCE: &str = "SELECT e.event_id,
  CASE WHEN coalesce(e.user_id, i.user_id) IS NOT NULL THEN 'u:' || coalesce(e.user_id, i.user_id)
       ELSE 'v:' || e.visitor_id END AS person_id
FROM events e LEFT JOIN identities i ON e.site = i.site AND e.visitor_id = i.visitor_id
ORDER BY e.event_id";

fn arb_history() -> impl Strategy<Value = (Vec<Event>, Vec<usize>, bool)> {
    let one = (0..4usize, 0..6i64, 0..4usize, prop::option::weighted(0.2, 0..3usize), 0..5usize);
    (prop::collection::vec(one, 1..30), prop::collection::vec(1..8usize, 1..5), any::<bool>()).prop_map(
        |(rows, cuts, compact)| {
            let users = ["ann", "bob", "cid"];
            let events = rows
                .into_iter()
                .enumerate()
                .map(|(i, (v, day, kind, own_user, minute))| {
                    let (name, user) = match kind {
                        0 => ("identify", Some(users[own_user.unwrap_or(i % 3)])),
                        1 => ("purchase", own_user.map(|u| users[u])),
                        _ => ("pageview", None),
                    };
                    // Arrival order is the vector's; times go back and forth (late, imported).
                    let ts = JAN5 + day * DAY + minute as i64 * 60_000_000;
                    ev(&format!("e{i:02}"), &format!("v{v}"), ts, name, user)
                })
                .collect();
            (events, cuts, compact)
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// However a history is split into flushes (identifies before or after the visits they
    /// cover, out of time order) and whether compacted, every event's person is the rule's,
    /// and the SQL formulation of the rule agrees.
    #[test]
    fn every_event_gets_the_person_the_rule_gives((events, cuts, compact) in arb_history()) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = DataDir::new(tmp.path());
        let mut rest = events.clone();
        let mut seq = 0;
        for cut in cuts.iter().chain(std::iter::once(&usize::MAX)) {
            let tail = rest.split_off((*cut).min(rest.len()));
            if !rest.is_empty() {
                seq += 1;
                flush(&data, seq, rest);
            }
            rest = tail;
        }
        if compact {
            compact_all(&data, &StoreGuard::default()).expect("compact");
        }
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let want = reference(&events);
        prop_assert_eq!(&rt.block_on(persons(&data)), &want);
        let sql = rt.block_on(async {
            let limits = QueryLimits::default();
            let ctx = query::session(&data, &Scope::All, &limits).await.expect("session");
            pairs(&query::run_sql(&ctx, SQL_REFERENCE, &limits).await.expect("query").batches)
        });
        prop_assert_eq!(&sql, &want);
    }
}
