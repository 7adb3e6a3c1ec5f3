//! The Parquet store: the flusher that turns sealed WAL segments into partition files, and
//! the compactor that merges a partition's small files.

pub mod compact;
pub mod parquet;
pub mod paths;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use tokio_util::sync::CancellationToken;
use ulid::Ulid;

pub use self::parquet::{Error, Result};
use self::paths::DataDir;
use crate::model::{Event, SiteId, schema::to_record_batch};
use crate::wal::{Error as WalError, SegmentHeader, Wal, replay_segment};

/// Serializes the writers of partition directories (flusher and compactor).
pub type StoreGuard = Arc<Mutex<()>>;

/// Write one sealed segment's events as Parquet, one file per (site, date) partition.
///
/// The file id is derived from the segment (its creation time and sequence number), so
/// flushing the same segment again after a crash replaces the files it wrote with identical
/// ones instead of storing its events twice.
pub fn flush_events(data: &DataDir, header: SegmentHeader, events: Vec<Event>) -> Result<usize> {
    let mut parts: BTreeMap<(String, NaiveDate), Vec<Event>> = BTreeMap::new();
    for e in events {
        parts.entry((e.site.clone(), e.date())).or_default().push(e);
    }
    let id = Ulid::from_parts(header.created_ms, u128::from(header.seq));
    let mut rows = 0;
    for ((site, date), events) in parts {
        let Ok(site) = SiteId::parse(&site) else {
            tracing::error!(site, seq = header.seq, "WAL holds an invalid site id; events skipped");
            continue;
        };
        let batch = to_record_batch(&events)?;
        drop(events);
        let batch = parquet::sort_dedupe(&batch)?;
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
                    metrics::counter!("footfall_events_flushed_total").increment(seg.events.len() as u64);
                    rows += flush_events(&self.data, seg.header, seg.events)?;
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
