//! Per-event cost of each ingest stage, one thread, no HTTP and no fsync on the ingest side:
//! where an ingest speed-up has to come from. `cargo run --release --example stage_costs`
//! (pin it with `taskset -c 0` for steadier figures).

use std::sync::Arc;
use std::time::Instant;

use footfall::clock::SystemClock;
use footfall::ingest::enrich::visitor::Salts;
use footfall::ingest::validate::{split_body, validate_item};
use footfall::ingest::{Ingestor, IngestorParts, Limits, RequestMeta};
use footfall::model::schema::to_record_batch;
use footfall::sites::Sites;
use footfall::store::parquet::{sort_dedupe, write_file};
use footfall::wal::{FsyncMode, Wal, WalOptions, encode_events_record};

fn body() -> String {
    let mut ev = Vec::new();
    for i in 1..=100 {
        if i % 10 == 0 {
            ev.push(format!(r#"{{"site":"default","name":"purchase","revenue":42.5,"currency":"EUR","order_id":"o{i}","items":[{{"id":"sku-1","price":21.25,"quantity":2}}]}}"#));
        } else {
            ev.push(format!(r#"{{"site":"default","name":"pageview","url":"https://shop.example/p/{i}","referrer":"https://www.google.com/","props":{{"ab":"b"}}}}"#));
        }
    }
    format!("[{}]", ev.join(","))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let b = body();
    let n = 300;
    let t = Instant::now();
    for _ in 0..n {
        let items = split_body(b.as_bytes()).expect("stage runs");
        std::hint::black_box(items);
    }
    let parse = t.elapsed().as_secs_f64() / (n * 100) as f64 * 1e6;
    let t = Instant::now();
    for _ in 0..n {
        for (i, it) in split_body(b.as_bytes()).expect("stage runs").into_iter().enumerate() {
            std::hint::black_box(validate_item(i, it).expect("stage runs"));
        }
    }
    let validate = t.elapsed().as_secs_f64() / (n * 100) as f64 * 1e6 - parse;
    let dir = tempfile::tempdir().expect("stage runs");
    let sites = Arc::new(Sites::open(&dir.path().join("s.json")).expect("stage runs"));
    sites.add(footfall::model::SiteId::parse("default").expect("stage runs"), &[]).expect("stage runs");
    let wal = Wal::open(
        &dir.path().join("wal"),
        WalOptions { fsync: FsyncMode::Off, max_bytes: u64::MAX, flush_after_events: u64::MAX },
        Arc::new(SystemClock),
    )
    .expect("stage runs");
    let ing = Ingestor::new(IngestorParts {
        sites,
        geo: None,
        salts: Salts::in_memory(),
        clock: Arc::new(SystemClock),
        wal: wal.clone(),
        limits: Limits { per_ip: 0, per_site: 0 },
        dnt: footfall::ingest::DntMode::Drop,
    });
    let meta = RequestMeta { ip: Some("203.0.113.9".parse().expect("stage runs")), user_agent: Some("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36".into()), origin: None, write_key: None, privacy_signal: false };
    ing.ingest(b.as_bytes(), &meta).await.expect("stage runs");
    let t = Instant::now();
    for _ in 0..n {
        ing.ingest(b.as_bytes(), &meta).await.expect("stage runs");
    }
    let ingest = t.elapsed().as_secs_f64() / (n * 100) as f64 * 1e6;
    let sealed = wal.rotate().await.expect("stage runs").expect("stage runs");
    let events = sealed.events;
    let t = Instant::now();
    for c in events.chunks(100) {
        std::hint::black_box(encode_events_record(c));
    }
    let encode = t.elapsed().as_secs_f64() / events.len() as f64 * 1e6;
    let t = Instant::now();
    let batch = to_record_batch(&events).expect("stage runs");
    let arrow = t.elapsed().as_secs_f64() / events.len() as f64 * 1e6;
    let t = Instant::now();
    let sorted = sort_dedupe(&batch).expect("stage runs");
    let sort = t.elapsed().as_secs_f64() / events.len() as f64 * 1e6;
    let t = Instant::now();
    write_file(&dir.path().join("x.parquet"), &sorted).expect("stage runs");
    let parquet = t.elapsed().as_secs_f64() / events.len() as f64 * 1e6;
    let t = Instant::now();
    drop(events);
    let drop_t = t.elapsed().as_secs_f64() / (n * 100) as f64 * 1e6;
    println!(
        "per event, µs: parse {parse:.2}  validate+typed {validate:.2}  ingest total (parse+validate+enrich+wal encode+append, no fsync) {ingest:.2}"
    );
    println!(
        "per event, µs: wal encode {encode:.2}  to_arrow {arrow:.2}  sort/dedupe {sort:.2}  parquet+zstd+fsync {parquet:.2}  drop events {drop_t:.2}"
    );
}
