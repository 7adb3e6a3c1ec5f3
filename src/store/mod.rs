//! The Parquet store: the flusher that turns sealed WAL segments into partition files, and
//! the compactor that merges a partition's small files.

pub mod compact;
pub mod parquet;
pub mod paths;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use tokio_util::sync::CancellationToken;
use ulid::Ulid;

pub use self::parquet::{Error, Result};
use self::paths::DataDir;
use crate::model::{Event, SiteId, schema::to_record_batch};
use crate::wal::{Error as WalError, Segment, Wal, replay_segment};

/// Serializes the writers of partition directories (flusher and compactor).
pub type StoreGuard = Arc<Mutex<()>>;

/// Write one sealed segment's events as Parquet, one file per (site, date) partition.
///
/// The file id is derived from the segment (its creation time and sequence number), so
/// flushing the same segment again after a crash replaces the files it wrote with identical
/// ones instead of storing its events twice.
pub fn flush_segment(data: &DataDir, seg: &Segment) -> Result<usize> {
    let mut parts: BTreeMap<(&str, NaiveDate), Vec<Event>> = BTreeMap::new();
    for e in &seg.events {
        parts.entry((e.site.as_str(), e.date())).or_default().push(e.clone());
    }
    let id = Ulid::from_parts(seg.header.created_ms, u128::from(seg.header.seq));
    let mut rows = 0;
    for ((site, date), events) in parts {
        let Ok(site) = SiteId::parse(site) else {
            tracing::error!(site, segment = %seg.path.display(), "WAL holds an invalid site id; events skipped");
            continue;
        };
        let batch = parquet::sort_dedupe(&to_record_batch(&events)?)?;
        rows += batch.num_rows();
        parquet::write_file(&data.data_file(&site, date, id), &batch)?;
    }
    Ok(rows)
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

    /// Seal the open segment and flush every sealed one. Returns the rows written.
    pub async fn flush(&self) -> Result<usize> {
        self.wal.rotate().await?;
        self.flush_sealed().await
    }

    /// Flush the segments already sealed (at start-up: whatever the last run left).
    pub async fn flush_sealed(&self) -> Result<usize> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.flush_sealed_blocking())
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }

    fn flush_sealed_blocking(&self) -> Result<usize> {
        let _g = self.guard.lock().unwrap_or_else(|p| p.into_inner());
        let mut rows = 0;
        for (_, path) in self.wal.sealed_segments()? {
            let started = Instant::now();
            match replay_segment(&path) {
                Ok(Some(seg)) => {
                    rows += flush_segment(&self.data, &seg)?;
                    metrics::counter!("footfall_events_flushed_total").increment(seg.events.len() as u64);
                }
                Ok(None) => {}
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
            metrics::histogram!("footfall_flush_seconds").record(started.elapsed().as_secs_f64());
        }
        metrics::gauge!("footfall_wal_bytes").set(self.wal.bytes() as f64);
        Ok(rows)
    }

    /// Flush every `every`, or sooner when the WAL asks, until `stop`; then flush once more.
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
        if let Err(e) = self.flush().await {
            tracing::error!(error = %e, "final flush failed; the events stay in the WAL for the next start");
        }
    }
}
