//! The Parquet store: the flusher that turns sealed WAL segments into partition files, and
//! the compactor that merges a partition's small files.

pub mod compact;
pub mod forget;
mod held;
pub mod identity;
pub mod once;
pub mod parquet;
pub mod paths;
pub mod retention;
pub mod sessions;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use tokio_util::sync::CancellationToken;
use ulid::Ulid;

use self::held::SiteFile as _;
pub use self::parquet::{Error, Result};
use self::paths::DataDir;
use crate::model::{Event, SiteId, schema::to_record_batch};
use crate::wal::{Error as WalError, SegmentHeader, Wal, replay_segment};

/// Serializes the writers of partition directories (flusher and compactor).
pub type StoreGuard = Arc<Mutex<()>>;

/// Write one sealed segment's events as Parquet, one file per (site, date) partition.
///
/// Each site's identity map first takes in the segment's `identify` events and is saved; then
/// every row is stamped with its person from that map ([`identity`]).
///
/// The file id is derived from the segment (its creation time and sequence number), so
/// flushing the same segment again after a crash replaces the files it wrote with identical
/// ones instead of storing its events twice.
pub fn flush_events(data: &DataDir, header: SegmentHeader, events: Vec<Event>) -> Result<usize> {
    let key = |e: &Event| (e.site.clone(), e.date());
    let mut parts: BTreeMap<(String, NaiveDate), Vec<Event>> = BTreeMap::new();
    match events.first().map(key) {
        // The usual case, one site and one day: no regrouping (and no copying).
        Some(first) if events.iter().all(|e| e.site == first.0 && e.date() == first.1) => {
            parts.insert(first, events);
        }
        _ => {
            for e in events {
                parts.entry(key(&e)).or_default().push(e);
            }
        }
    }
    let id = Ulid::from_parts(header.created_ms, u128::from(header.seq));
    let maps = update_identities(data, &mut parts)?;
    let ledgers = admit_once(data, &mut parts, &id.to_string())?;
    let mut rows = 0;
    for ((site, date), events) in parts {
        let Some((site, map)) = maps.get(&site) else {
            tracing::error!(site, seq = header.seq, "WAL holds an invalid site id; events skipped");
            continue;
        };
        if events.is_empty() {
            continue;
        }
        let batch = to_record_batch(&events)?;
        drop(events);
        let batch = map.stamp(&parquet::sort_dedupe(&batch)?)?;
        rows += batch.num_rows();
        let file = data.data_file(site, date, id);
        sessions::write_for(data, site, date, &file, &batch)?;
        parquet::write_file(&file, &batch)?;
    }
    for (site, map) in maps.into_values() {
        map.check_in(data, &site);
    }
    for (site, ledger) in ledgers.into_values() {
        ledger.check_in(data, &site);
    }
    Ok(rows)
}

/// Drop from `parts` the repeats of events that happen once (a purchase per order id, a refund
/// per refund) that an earlier flush already stored, recording the new ones in each site's
/// ledger; a ledger that changed is saved before any row it admitted is written ([`once`]).
fn admit_once(
    data: &DataDir,
    parts: &mut BTreeMap<(String, NaiveDate), Vec<Event>>,
    segment: &str,
) -> Result<BTreeMap<String, (SiteId, once::Ledger)>> {
    let wanted = |events: &[Event]| events.iter().any(|e| once::is_once(&e.event_id));
    fold_sites(data, parts, wanted, |site, ledger: &mut once::Ledger, events| {
        let (before, mut changed) = (events.len(), false);
        events.retain(|e| {
            let (keep, new) = ledger.admit(e, segment);
            changed |= new;
            keep
        });
        if events.len() < before {
            tracing::info!(site, dropped = before - events.len(), "repeats of orders or refunds already stored");
        }
        changed
    })
}

/// The identity map of every (valid) site among `parts`, with the parts' identify events
/// folded in; a map that changed is saved before any row stamped from it is written.
fn update_identities(
    data: &DataDir,
    parts: &mut BTreeMap<(String, NaiveDate), Vec<Event>>,
) -> Result<BTreeMap<String, (SiteId, identity::IdentityMap)>> {
    fold_sites(
        data,
        parts,
        |_| true,
        |_, map: &mut identity::IdentityMap, events| events.iter().fold(false, |changed, e| map.observe(e) | changed),
    )
}

/// Each (valid) site's file `T` among the `parts` that `wanted` says need it, checked out once,
/// with `fold` applied to each of the site's parts (true when it changed `T`); a changed one is
/// saved before any row it governs is written.
fn fold_sites<T: held::SiteFile>(
    data: &DataDir,
    parts: &mut BTreeMap<(String, NaiveDate), Vec<Event>>,
    wanted: impl Fn(&[Event]) -> bool,
    mut fold: impl FnMut(&str, &mut T, &mut Vec<Event>) -> bool,
) -> Result<BTreeMap<String, (SiteId, T)>> {
    let mut held: BTreeMap<String, (SiteId, T, bool)> = BTreeMap::new();
    for ((site, _), events) in parts.iter_mut() {
        if !wanted(events) {
            continue;
        }
        let Ok(id) = SiteId::parse(site) else { continue };
        if !held.contains_key(site) {
            let file = T::check_out(data, &id)?;
            held.insert(site.clone(), (id, file, false));
        }
        let (_, file, changed) = held.get_mut(site).expect("inserted above");
        *changed |= fold(site, file, events);
    }
    let mut out = BTreeMap::new();
    for (site, (id, file, changed)) in held {
        if changed {
            file.save(data, &id)?;
        }
        out.insert(site, (id, file));
    }
    Ok(out)
}

/// Moves events from sealed WAL segments into Parquet.
#[derive(Clone)]
pub struct Flusher {
    data: DataDir,
    wal: Wal,
    guard: StoreGuard,
}

impl Flusher {
    pub fn new(data: DataDir, wal: Wal, guard: StoreGuard) -> Self {
        Self { data, wal, guard }
    }

    /// The guard it flushes under (the compactor's and a deletion's too).
    pub fn guard(&self) -> &StoreGuard {
        &self.guard
    }

    /// Seal the open segment and flush it (from memory) and any other sealed segment (from
    /// disk: what a crash or a failed flush left). Returns the rows written.
    pub async fn flush(&self) -> Result<usize> {
        let sealed = self.wal.rotate().await?;
        self.blocking(move |this| {
            let mut rows = this.flush_from_disk(sealed.as_ref().map(|s| s.path.as_path()))?;
            if let Some(s) = sealed {
                let started = Instant::now();
                let n = s.events.len() as u64;
                rows += flush_events(&this.data, s.header, s.events)?;
                this.wal.release(&s.path)?;
                metrics::counter!("footfall_events_flushed_total").increment(n);
                metrics::histogram!("footfall_flush_seconds").record(started.elapsed().as_secs_f64());
            }
            metrics::gauge!("footfall_wal_bytes").set(this.wal.bytes() as f64);
            Ok(rows)
        })
        .await
    }

    /// Flush the segments already sealed on disk (at start-up: whatever the last run left).
    pub async fn flush_sealed(&self) -> Result<usize> {
        self.blocking(|this| this.flush_from_disk(None)).await
    }

    async fn blocking(&self, f: impl FnOnce(&Self) -> Result<usize> + Send + 'static) -> Result<usize> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let _g = this.guard.lock().unwrap_or_else(|p| p.into_inner());
            f(&this)
        })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }

    /// Replay and flush every sealed segment on disk except `skip`. Needs the guard.
    fn flush_from_disk(&self, skip: Option<&Path>) -> Result<usize> {
        let mut rows = 0;
        for (_, path) in self.wal.sealed_segments()? {
            if Some(path.as_path()) == skip {
                continue;
            }
            match replay_segment(&path) {
                Ok(Some(seg)) => {
                    let n = seg.events.len() as u64;
                    rows += flush_events(&self.data, seg.header, seg.events)?;
                    metrics::counter!("footfall_events_flushed_total").increment(n);
                }
                // Torn while being created: held nothing acknowledged, and replay removed it.
                Ok(None) => continue,
                Err(
                    e @ (WalError::BadMagic { .. } | WalError::UnsupportedVersion { .. } | WalError::BadPayload { .. }),
                ) => {
                    // Never block the log behind a segment we cannot read: set it aside for a human.
                    let aside = self.wal.set_aside(&path)?;
                    tracing::error!(error = %e, kept_as = %aside.display(), "unreadable WAL segment set aside");
                    metrics::counter!("footfall_wal_segments_unreadable_total").increment(1);
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
            self.wal.release(&path)?;
        }
        Ok(rows)
    }

    /// Flush every `every`, or sooner when the WAL asks, until `stop`. The final flush is the
    /// caller's, after the server has finished its requests ([`crate::server::Running::shutdown`]).
    pub async fn run(self, every: Duration, stop: CancellationToken) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = self.wal.flush_wanted() => {}
                () = stop.cancelled() => break,
            }
            if let Err(e) = self.flush().await {
                metrics::counter!("footfall_flush_errors_total").increment(1);
                tracing::error!(error = %e, "flush failed; the events stay in the WAL and are retried");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: &str, site: &str, ts: i64) -> Event {
        Event { event_id: id.into(), site: site.into(), ts, name: "x".into(), ..Default::default() }
    }

    #[test]
    fn start_up_flush_skips_a_segment_torn_at_creation() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = DataDir::new(tmp.path());
        let wal_dir = data.wal_dir();
        std::fs::create_dir_all(&wal_dir).expect("mkdir");
        let header = SegmentHeader { created_ms: 1, seq: 1 };
        let mut good = header.encode().to_vec();
        good.extend(crate::wal::encode_events_record(&[ev("kept", "s1", 0)]));
        std::fs::write(wal_dir.join(crate::wal::segment_file_name(1)), good).expect("write");
        std::fs::write(wal_dir.join(crate::wal::segment_file_name(2)), b"FFWAL").expect("write torn");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let opts =
            crate::wal::WalOptions { fsync: crate::wal::FsyncMode::Batch, max_bytes: 1 << 20, flush_after_events: 10 };
        let wal = Wal::open(&wal_dir, opts, std::sync::Arc::new(crate::clock::FixedClock::new(0))).expect("open");
        let flusher = Flusher::new(data.clone(), wal.clone(), StoreGuard::default());
        assert_eq!(rt.block_on(flusher.flush_sealed()).expect("flush"), 1);
        assert!(wal.sealed_segments().expect("list").is_empty());
    }

    #[test]
    fn events_land_in_their_site_and_day_partitions() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = DataDir::new(tmp.path());
        let day = 86_400 * 1_000_000;
        let header = SegmentHeader { created_ms: 5, seq: 9 };
        let events = vec![ev("a", "s1", 0), ev("b", "s2", 0), ev("c", "s1", day), ev("d", "s1", 10)];
        assert_eq!(flush_events(&data, header, events).expect("flush"), 4);
        let parts = data.partitions().expect("partitions");
        let names: Vec<_> = parts.iter().map(|(s, d)| format!("{s}/{d}")).collect();
        assert_eq!(names, vec!["s1/1970-01-01", "s1/1970-01-02", "s2/1970-01-01"]);
        let rows = |s: &str, d: u32| {
            let site = SiteId::parse(s).expect("site");
            let date = NaiveDate::from_ymd_opt(1970, 1, d).expect("date");
            parquet::read_file(&data.data_file(&site, date, Ulid::from_parts(5, 9)))
                .expect("file named after the segment")
                .num_rows()
        };
        assert_eq!((rows("s1", 1), rows("s1", 2), rows("s2", 1)), (2, 1, 1));
        // Flushing the same segment again (after a crash) replaces the files: no extra rows.
        flush_events(&data, header, vec![ev("a", "s1", 0), ev("d", "s1", 10)]).expect("flush again");
        assert_eq!(
            paths::data_files(&data.partition_dir(
                &SiteId::parse("s1").expect("site"),
                NaiveDate::from_ymd_opt(1970, 1, 1).expect("date")
            ))
            .expect("list")
            .len(),
            1
        );
    }

    /// A segment flushed again after a crash (its ledger entries already saved) keeps its
    /// orders; another segment's copy of one of them, on another day, is not stored.
    #[test]
    fn an_order_is_stored_once_across_segments_and_survives_a_repeated_flush() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = DataDir::new(tmp.path());
        let day = 86_400 * 1_000_000;
        let buy = |ts| Event { name: "purchase".into(), ..ev("order-0001", "s1", ts) };
        let first = SegmentHeader { created_ms: 5, seq: 1 };
        assert_eq!(flush_events(&data, first, vec![buy(10), ev("a", "s1", 11)]).expect("flush"), 2);
        assert_eq!(flush_events(&data, first, vec![buy(10), ev("a", "s1", 11)]).expect("again"), 2);
        let later = SegmentHeader { created_ms: 6, seq: 2 };
        assert_eq!(flush_events(&data, later, vec![buy(day + 1), ev("b", "s1", day + 2)]).expect("later"), 1);
        let stored: usize = data
            .partitions()
            .expect("partitions")
            .iter()
            .flat_map(|(s, d)| paths::data_files(&data.partition_dir(s, *d)).expect("list"))
            .map(|f| parquet::read_file(&f).expect("read").num_rows())
            .sum();
        assert_eq!(stored, 3);
    }
}
