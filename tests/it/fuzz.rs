//! Fuzzing that stays: property tests over everything a client's bytes reach (the event
//! decoder, the report request parser, the segment compiler, the SQL guard). Each runs from a
//! fixed seed ([`SEED`]), so CI checks the same cases every time, and any failure found is kept
//! in `proptest-regressions/fuzz.txt` and replayed first. `FOOTFALL_FUZZ_CASES=5000` (and
//! `FOOTFALL_FUZZ_SEED`) runs more, or other, cases outside CI.
//!
//! The properties: nothing panics or overflows a stack (which would abort this binary); bad
//! input is refused as the client's error, naming a field, never answered as our fault.

use std::sync::Arc;

use footfall::clock::FixedClock;
use footfall::ingest::enrich::visitor::Salts;
use footfall::ingest::{DntMode, Ingestor, IngestorParts, Limits, RequestMeta};
use footfall::model::{Event, SiteId};
use footfall::query::{self, QueryLimits, Scope};
use footfall::reports::{self, Env};
use footfall::sites::Sites;
use footfall::store::paths::DataDir;
use footfall::wal::{FsyncMode, Wal, WalOptions};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, RngSeed, TestRunner};
use serde_json::{Value, json};

use crate::support::{report_env, store};

const SEED: u64 = 0x00f0_07fa_1100;
const NOW: i64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z

fn runner(default_cases: u32) -> TestRunner {
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    TestRunner::new(Config {
        cases: env("FOOTFALL_FUZZ_CASES").map_or(default_cases, |n| u32::try_from(n).unwrap_or(u32::MAX)),
        rng_seed: RngSeed::Fixed(env("FOOTFALL_FUZZ_SEED").unwrap_or(SEED)),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct("proptest-regressions/fuzz.txt"))),
        max_shrink_iters: 200,
        ..Config::default()
    })
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

/// Any JSON value, nested a few levels, with strings that matter to us (dimension names, event
/// names, formula and SQL characters, long text) and numbers at the edges.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        prop_oneof![Just(0i64), Just(-1), Just(i64::MAX), Just(i64::MIN), any::<i64>()].prop_map(Value::from),
        prop_oneof![Just(f64::MAX), Just(-0.5), Just(1e300), any::<f64>().prop_filter("finite", |f| f.is_finite())]
            .prop_map(Value::from),
        prop_oneof![
            Just("pageview".to_owned()),
            Just("purchase".to_owned()),
            Just("channel".to_owned()),
            Just("prop:plan".to_owned()),
            Just("is_not".to_owned()),
            Just("2026-01-01".to_owned()),
            Just("Europe/Berlin".to_owned()),
            Just("=HYPERLINK(\"x\")".to_owned()),
            Just("'; DROP TABLE events; --".to_owned()),
            "\\PC{0,24}",
            "[a-z_:]{1,12}",
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,10}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

// ---- the event decoder ---------------------------------------------------------------------------

fn valid_event() -> Value {
    json!({"site": "shop", "name": "purchase", "url": "https://shop.example/a?utm_source=x", "referrer": "https://www.google.com/",
           "event_id": "01J9ZQ3V6Y8K4T2N5M7P9R1S3U", "revenue": 12.5, "currency": "EUR", "order_id": "o-1",
           "items": [{"id": "mug", "price": 12.5, "quantity": 1}], "props": {"plan": "pro"}})
}

/// A body: raw bytes, or a batch of valid events with some fields replaced by anything.
fn arb_body() -> impl Strategy<Value = Vec<u8>> {
    let mutated = || {
        prop::collection::vec(
            (
                prop::sample::select(vec![
                    "site",
                    "name",
                    "url",
                    "referrer",
                    "event_id",
                    "revenue",
                    "items",
                    "props",
                    "ts",
                    "user_id",
                    "visitor_id",
                    "x",
                ]),
                arb_json(),
                any::<bool>(),
            ),
            0..4,
        )
        .prop_map(|changes| {
            let mut e = valid_event();
            for (k, v, remove) in changes {
                if remove {
                    e.as_object_mut().expect("object").remove(k);
                } else {
                    e[k] = v;
                }
            }
            e
        })
    };
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        prop::collection::vec(mutated(), 1..5).prop_map(|b| serde_json::to_vec(&b).expect("json")),
        mutated().prop_map(|e| serde_json::to_vec(&e).expect("json")),
        arb_json().prop_map(|v| serde_json::to_vec(&v).expect("json")),
    ]
}

#[test]
fn the_event_decoder_never_panics_and_accounts_for_every_item() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = DataDir::new(dir.path());
    let sites = Arc::new(Sites::open(&data.sites_file()).expect("sites"));
    sites.add(SiteId::parse("shop").expect("id"), &[]).expect("add");
    let clock = Arc::new(FixedClock::new(NOW));
    let opts = WalOptions { fsync: FsyncMode::Off, max_bytes: 1 << 30, flush_after_events: u64::MAX };
    let rt = rt();
    let wal = Wal::open(&data.wal_dir(), opts, clock.clone()).expect("wal");
    let salts = Salts::load(&data.salts_file()).expect("salts");
    let limits = Limits { per_ip: 0, per_site: 0 };
    let ingestor = Ingestor::new(IngestorParts { sites, geo: None, salts, clock, wal, limits, dnt: DntMode::Drop });
    let meta = RequestMeta {
        ip: Some("203.0.113.9".parse().expect("ip")),
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0".into()),
        ..RequestMeta::default()
    };
    runner(256)
        .run(&arb_body(), |body| {
            let items = footfall::ingest::validate::split_body(&body).map(|v| v.len());
            match rt.block_on(ingestor.ingest(&body, &meta)) {
                Ok(out) => {
                    prop_assert_eq!(Ok(out.accepted + out.rejected.len()), items.map_err(|_| ()));
                    for r in &out.rejected {
                        prop_assert!(!r.field.is_empty(), "a rejection names its field: {:?}", r);
                    }
                }
                Err(footfall::ingest::Error::Body(_)) => prop_assert!(items.is_err()),
                Err(footfall::ingest::Error::NothingValid { rejected }) => {
                    prop_assert!(rejected.iter().all(|r| !r.field.is_empty()), "{:?}", rejected);
                }
                Err(other) => prop_assert!(false, "unexpected error {other}"),
            }
            Ok(())
        })
        .expect("property holds");
}

// ---- report requests ---------------------------------------------------------------------------

fn some_events() -> Vec<Event> {
    let ev = |i: i64, name: &str, visitor: &str| Event {
        event_id: format!("e{i}"),
        site: "shop".into(),
        ts: NOW - 86_400_000_000 * 3 + i * 60_000_000,
        name: name.into(),
        visitor_id: visitor.into(),
        session_id: format!("s-{visitor}"),
        path: Some("/".into()),
        channel: Some("Direct".into()),
        revenue: (name == "purchase").then_some(10.0),
        order_id: (name == "purchase").then(|| format!("o{i}")),
        ..Default::default()
    };
    vec![ev(0, "pageview", "a"), ev(1, "add_to_cart", "a"), ev(2, "purchase", "a"), ev(3, "pageview", "b")]
}

/// A valid request of each kind, to mutate.
fn base_requests() -> Vec<(&'static str, Value)> {
    let range = json!({"from": "2025-12-01", "to": "2025-12-31"});
    vec![
        ("trends", json!({"site": "shop", "date_range": range, "breakdown": "channel", "compare": true})),
        (
            "funnel",
            json!({"site": "shop", "date_range": range, "steps": [{"event": "pageview"}, {"event": "purchase"}]}),
        ),
        ("retention", json!({"site": "shop", "date_range": range, "period": "week", "periods": 4})),
        ("experiment", json!({"site": "shop", "date_range": range, "experiment": "x", "goal": {"event": "purchase"}})),
        ("lifecycle", json!({"site": "shop", "date_range": range, "period": "week"})),
        ("attribution", json!({"site": "shop", "date_range": range})),
        ("ecommerce", json!({"site": "shop", "date_range": range})),
        ("paths", json!({"site": "shop", "date_range": range, "start": {"event": "pageview"}})),
        ("segment", json!({"site": "shop", "definition": "viewed_not_bought"})),
    ]
}

#[derive(Debug, Clone)]
enum Change {
    Set(String, Value),
    Remove(String),
    /// A filter with this many values.
    Filter(String, String, usize),
    Segment(Value),
}

fn arb_change() -> impl Strategy<Value = Change> {
    let key = prop::sample::select(vec![
        "site",
        "date_range",
        "timezone",
        "filters",
        "segment",
        "breakdown",
        "metrics",
        "interval",
        "steps",
        "window",
        "order",
        "period",
        "periods",
        "start_event",
        "return_event",
        "goal",
        "experiment",
        "limit",
        "definition",
        "x",
    ])
    .prop_map(str::to_owned);
    prop_oneof![
        (key.clone(), arb_json()).prop_map(|(k, v)| Change::Set(k, v)),
        key.prop_map(Change::Remove),
        (
            "[a-z:_]{1,10}|channel|page|prop:plan",
            "is|is_not|contains|not_contains|bogus",
            prop_oneof![0usize..4, 90usize..110, Just(2_500)]
        )
            .prop_map(|(d, op, n)| Change::Filter(d, op, n)),
        arb_condition().prop_map(Change::Segment),
    ]
}

fn apply(mut req: Value, changes: &[Change]) -> Value {
    for c in changes {
        match c {
            Change::Set(k, v) => req[k] = v.clone(),
            Change::Remove(k) => {
                req.as_object_mut().expect("object").remove(k);
            }
            Change::Filter(d, op, n) => {
                let values: Vec<String> = (0..*n).map(|i| format!("v{i}")).collect();
                req["filters"] = json!([{"dimension": d, "op": op, "values": values}]);
            }
            Change::Segment(def) => {
                let key = if req.get("definition").is_some() { "definition" } else { "segment" };
                req[key] = def.clone();
            }
        }
    }
    req
}

async fn run_report(env: &Env, kind: &str, body: &[u8]) -> reports::Result<()> {
    use reports::parse_request as p;
    match kind {
        "trends" => reports::trends::trends(env, &p(body)?).await.map(drop),
        "funnel" => reports::funnel::funnel(env, &p(body)?).await.map(drop),
        "retention" => reports::retention::retention(env, &p(body)?).await.map(drop),
        "experiment" => reports::experiment::experiment(env, &p(body)?).await.map(drop),
        "lifecycle" => reports::lifecycle::lifecycle(env, &p(body)?).await.map(drop),
        "attribution" => reports::attribution::attribution(env, &p(body)?).await.map(drop),
        "ecommerce" => reports::ecommerce::ecommerce(env, &p(body)?).await.map(drop),
        "paths" => reports::paths::paths(env, &p(body)?).await.map(drop),
        "segment" => reports::segments::segment(env, &p(body)?).await.map(drop),
        other => panic!("no report {other}"),
    }
}

#[test]
fn report_requests_answer_or_name_the_bad_field() {
    let (_dir, data) = store(some_events());
    let env = report_env(&data, NOW);
    let rt = rt();
    let strategy = (prop::sample::select(base_requests()), prop::collection::vec(arb_change(), 0..3));
    runner(160)
        .run(&strategy, |((kind, base), changes)| {
            let body = serde_json::to_vec(&apply(base, &changes)).expect("json");
            match rt.block_on(run_report(&env, kind, &body)) {
                Ok(()) | Err(reports::Error::Invalid { .. }) => {}
                // Mutating `site` may name a site that is valid but not this store's: fine.
                Err(reports::Error::Forbidden(_)) => {}
                Err(e) => prop_assert!(false, "{kind} {}: answered as our fault: {e}", String::from_utf8_lossy(&body)),
            }
            Ok(())
        })
        .expect("property holds");
}

// ---- segment definitions -----------------------------------------------------------------------

/// Segment definitions as clients may send them: valid leaves, nested freely (deeper and wider
/// than the limits), with values lists of any length, and junk.
fn arb_condition() -> impl Strategy<Value = Value> {
    let values = prop_oneof![0usize..3, 95usize..105, Just(3_000)]
        .prop_map(|n| Value::from((0..n).map(|i| format!("v{i}")).collect::<Vec<_>>()));
    let leaf = prop_oneof![
        ("[a-z:]{1,8}|country|prop:plan|channel", values.clone())
            .prop_map(|(d, v)| json!({"type": "property", "dimension": d, "values": v})),
        ("[a-z:]{1,8}|source|channel", values)
            .prop_map(|(d, v)| json!({"type": "first_touch", "dimension": d, "values": v})),
        ("pageview|purchase|[a-z]{1,6}", prop::option::of(0u64..5), prop::option::of(-5i64..400))
            .prop_map(|(e, n, d)| { json!({"type": "did", "event": {"event": e}, "at_least": n, "within_days": d}) }),
        ("purchase|[a-z]{1,6}", prop::option::of(-5i64..400))
            .prop_map(|(e, d)| json!({"type": "did_not", "event": {"event": e}, "within_days": d})),
        (prop::option::of(0u64..5), prop::option::of(0u64..5))
            .prop_map(|(a, b)| json!({"type": "orders", "at_least": a, "at_most": b})),
        (any::<f64>(), prop::option::of(-5i64..400)).prop_map(|(a, d)| {
            json!({"type": "revenue", "at_least": if a.is_finite() { a } else { 0.0 }, "within_days": d})
        }),
        (-5i64..400).prop_map(|d| json!({"type": "first_seen", "within_days": d})),
        arb_json(),
    ];
    leaf.prop_recursive(8, 80, 6, |inner| {
        (prop::sample::select(vec!["all", "any"]), prop::collection::vec(inner, 0..6))
            .prop_map(|(t, c)| json!({"type": t, "conditions": c}))
    })
}

#[test]
fn segment_definitions_compile_and_run_or_name_the_bad_field() {
    let (_dir, data) = store(some_events());
    let env = report_env(&data, NOW);
    let site = SiteId::parse("shop").expect("id");
    let rt = rt();
    runner(128)
        .run(&arb_condition(), |def| {
            match reports::segments::definition(&def) {
                Err(reports::Error::Invalid { field, .. }) => prop_assert!(field.starts_with("definition"), "{field}"),
                Err(e) => prop_assert!(false, "not a request error: {e}"),
                Ok(cond) => {
                    // Compiles (or names what it cannot compile), and what compiles plans and runs.
                    match reports::segments::members_sql(&site, &cond, NOW) {
                        Ok(_) => {}
                        Err(reports::Error::Invalid { field, .. }) => {
                            prop_assert!(field.starts_with("definition"), "{field}");
                            return Ok(());
                        }
                        Err(e) => prop_assert!(false, "not a request error: {e}"),
                    }
                    let req = serde_json::to_vec(&json!({"site": "shop", "definition": def})).expect("json");
                    let r = rt.block_on(run_report(&env, "segment", &req));
                    prop_assert!(matches!(r, Ok(()) | Err(reports::Error::Invalid { .. })), "{r:?}");
                }
            }
            Ok(())
        })
        .expect("property holds");
}

// ---- the SQL guard -------------------------------------------------------------------------------

/// SQL as an analyst (or an attacker with a read key) may write it: long operator chains,
/// nesting, unions, functions that build large values, and junk.
fn arb_sql() -> impl Strategy<Value = String> {
    let atom = prop::sample::select(vec!["1", "'a'", "name", "revenue", "path", "NULL", "ts", "props['plan']", "(1)"]);
    let op = prop::sample::select(vec![" + ", " OR ", " AND ", " || ", " * ", " = ", " < "]);
    let chain = (atom.clone(), op, prop_oneof![1usize..10, 100usize..160, 1_000usize..3_000])
        .prop_map(|(a, o, n)| vec![a; n].join(o));
    let nested = (atom.clone(), prop_oneof![1usize..10, 40usize..80])
        .prop_map(|(a, n)| format!("{}{a}{}", "(".repeat(n), ")".repeat(n)));
    let bomb = (
        prop::sample::select(vec![
            "repeat('x', N)",
            "lpad('x', N)",
            "array_repeat(1, N)",
            "range(1, N)",
            "repeat(path, N)",
        ]),
        prop_oneof![Just(10i64), Just(1_000_000_000), Just(-1), any::<i64>()],
    )
        .prop_map(|(f, n)| format!("length(CAST({} AS VARCHAR))", f.replace('N', &n.to_string())));
    let expr = prop_oneof![chain, nested, bomb, atom.prop_map(str::to_owned)];
    let select = (expr.clone(), prop::option::of(expr)).prop_map(|(e, w)| {
        format!("SELECT {e} AS x FROM events{}", w.map(|w| format!(" WHERE {w}")).unwrap_or_default())
    });
    prop_oneof![
        (select.clone(), prop_oneof![0usize..3, 60usize..70, Just(3_000)]).prop_map(|(s, n)| std::iter::repeat_n(
            s,
            n + 1
        )
        .collect::<Vec<_>>()
        .join(" UNION ALL ")),
        select,
        "\\PC{0,60}",
        Just("COPY (SELECT 1) TO '/tmp/x'".to_owned()),
        Just("SELECT 1; SELECT 2".to_owned()),
    ]
}

#[test]
fn analyst_sql_is_answered_or_refused_never_crashes() {
    let (_dir, data) = store(some_events());
    let rt = rt();
    let limits = QueryLimits { timeout: std::time::Duration::from_secs(20), ..QueryLimits::default() };
    runner(96)
        .run(&arb_sql(), |sql| {
            let r = rt.block_on(query::run_scoped_sql(&data, &Scope::All, sql.clone(), limits));
            if let Err(e) = &r {
                let ours = match e {
                    query::Error::Panicked(_) | query::Error::Io { .. } | query::Error::Busy { .. } => true,
                    query::Error::DataFusion(d) => {
                        matches!(d.find_root(), datafusion::error::DataFusionError::Internal(_))
                    }
                    query::Error::Refused(_) | query::Error::TooComplex(_) | query::Error::Timeout(_) => false,
                };
                prop_assert!(!ours, "{}: {e}", &sql[..sql.len().min(200)]);
            }
            Ok(())
        })
        .expect("property holds");
}
