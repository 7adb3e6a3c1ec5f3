//! What the once-ledger (store::once) costs a flush: a site whose ledger already holds N
//! orders spread over 8 weeks, then one flush of a segment with one new order on the last day
//! (the ledger is checked, grown and that day's file saved before the segment's file is
//! written) and one without any order.
//! `cargo run --release --example once_ledger_cost -- 175000 1750000`

use std::time::Instant;

use footfall::model::Event;
use footfall::store::flush_events;
use footfall::store::paths::DataDir;
use footfall::wal::SegmentHeader;

fn event(name: &str, id: String, ts: i64) -> Event {
    Event {
        event_id: id,
        site: "shop".into(),
        ts,
        name: name.into(),
        visitor_id: format!("v{ts}"),
        session_id: format!("s{ts}"),
        ..Event::default()
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sizes: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let day = 1_767_571_200_000_000i64; // 2026-01-05
    for n in if sizes.is_empty() { vec![175_000] } else { sizes } {
        let dir = tempfile::tempdir()?;
        let data = DataDir::new(dir.path());
        // Eight weeks of orders, evenly.
        let step = 56 * 86_400_000_000 / n as i64;
        let orders: Vec<Event> =
            (0..n).map(|i| event("purchase", format!("order-{i:016x}"), day + i as i64 * step)).collect();
        let last = day + 55 * 86_400_000_000;
        let t = Instant::now();
        flush_events(&data, SegmentHeader { created_ms: 1, seq: 1 }, orders)?;
        let first = t.elapsed();
        let t = Instant::now();
        flush_events(
            &data,
            SegmentHeader { created_ms: 2, seq: 2 },
            vec![event("purchase", "order-new".into(), last + 1)],
        )?;
        let with_order = t.elapsed();
        let t = Instant::now();
        flush_events(&data, SegmentHeader { created_ms: 3, seq: 3 }, vec![event("pageview", "p-1".into(), last + 2)])?;
        let without = t.elapsed();
        let ledger = data.once_ledger_dir(&footfall::model::SiteId::parse("shop")?);
        let size: u64 = std::fs::read_dir(ledger)?.filter_map(|f| f.ok()?.metadata().ok()).map(|m| m.len()).sum();
        println!(
            "{n} orders: first flush {:.2} s; then a flush with one new order {:.1} ms, without orders {:.1} ms; ledger files {:.1} MB",
            first.as_secs_f64(),
            with_order.as_secs_f64() * 1e3,
            without.as_secs_f64() * 1e3,
            size as f64 / 1e6
        );
    }
    Ok(())
}
