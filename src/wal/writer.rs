//! The appending side of the WAL: one writer thread owns the open segment and does group commit.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{Notify, mpsc, oneshot};

use super::{Error, HEADER_LEN, Result, SegmentHeader, encode_events, encode_record, io_err, list_segments, segment_file_name, sync_dir};
use crate::clock::SharedClock;
use crate::model::Event;

/// When the WAL fsyncs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncMode {
    /// fsync after every request's record.
    Always,
    /// Group commit: one fsync covers every record that arrived while the previous one ran.
    Batch,
    /// Never fsync; the OS writes back when it likes. Acknowledged events can be lost.
    Off,
}

/// WAL settings.
#[derive(Clone, Debug)]
pub struct WalOptions {
    pub fsync: FsyncMode,
    /// Refuse appends while the WAL holds more than this many bytes.
    pub max_bytes: u64,
    /// Wake the flusher once the open segment holds this many events.
    pub flush_after_events: u64,
}

/// Most commands one group commit takes.
const MAX_GROUP: usize = 4096;

type Ack = oneshot::Sender<Result<()>>;

enum Cmd {
    Append { record: Vec<u8>, events: u64, done: Ack },
    Rotate { done: oneshot::Sender<Result<Option<PathBuf>>> },
}

/// Handle to the write-ahead log. Cheap to clone.
#[derive(Clone)]
pub struct Wal {
    tx: mpsc::UnboundedSender<Cmd>,
    shared: Arc<Shared>,
}

struct Shared {
    dir: PathBuf,
    opts: WalOptions,
    bytes: AtomicU64,
    current_seq: AtomicU64,
    flush_wanted: Notify,
}

impl Wal {
    /// Open the WAL in `dir` (created if missing). Existing segments are left alone as sealed
    /// segments for the caller to replay; appends go to a new segment after them.
    pub fn open(dir: &Path, opts: WalOptions, clock: SharedClock) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let existing = list_segments(dir)?;
        let mut bytes = 0;
        for (_, p) in &existing {
            bytes += std::fs::metadata(p).map_err(io_err(p))?.len();
        }
        let seq = existing.last().map_or(1, |(s, _)| s + 1);
        let (file, path) = create_segment(dir, seq, &clock)?;
        let shared = Arc::new(Shared {
            dir: dir.to_owned(),
            opts,
            bytes: AtomicU64::new(bytes + HEADER_LEN),
            current_seq: AtomicU64::new(seq),
            flush_wanted: Notify::new(),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let mut w = Writer { shared: shared.clone(), clock, file, path, len: HEADER_LEN, events: 0, seq };
        std::thread::Builder::new()
            .name("footfall-wal".into())
            .spawn(move || w.run(rx))
            .map_err(io_err(dir))?;
        Ok(Self { tx, shared })
    }

    /// Append one request's events. Returns once they are durable (per the fsync mode).
    pub async fn append(&self, events: &[Event]) -> Result<()> {
        let record = encode_record(&encode_events(events));
        let limit = self.shared.opts.max_bytes;
        if self.shared.bytes.load(Ordering::Relaxed) + record.len() as u64 > limit {
            return Err(Error::Full { limit });
        }
        let (done, rx) = oneshot::channel();
        let cmd = Cmd::Append { record, events: events.len() as u64, done };
        self.tx.send(cmd).map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Seal the open segment and start a new one. `None` when the open segment was empty.
    pub async fn rotate(&self) -> Result<Option<PathBuf>> {
        let (done, rx) = oneshot::channel();
        self.tx.send(Cmd::Rotate { done }).map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Sealed segments (all but the open one), oldest first.
    pub fn sealed_segments(&self) -> Result<Vec<(u64, PathBuf)>> {
        let current = self.shared.current_seq.load(Ordering::SeqCst);
        Ok(list_segments(&self.shared.dir)?.into_iter().filter(|(s, _)| *s < current).collect())
    }

    /// Delete a sealed segment whose events are safely in Parquet.
    pub fn release(&self, path: &Path) -> Result<()> {
        let len = std::fs::metadata(path).map_err(io_err(path))?.len();
        std::fs::remove_file(path).map_err(io_err(path))?;
        sync_dir(&self.shared.dir).map_err(io_err(&self.shared.dir))?;
        self.shared.bytes.fetch_sub(len.min(self.shared.bytes.load(Ordering::SeqCst)), Ordering::SeqCst);
        Ok(())
    }

    /// Bytes the WAL holds on disk (open plus sealed segments).
    pub fn bytes(&self) -> u64 {
        self.shared.bytes.load(Ordering::Relaxed)
    }

    /// Resolves when the open segment has reached `flush_after_events`.
    pub async fn flush_wanted(&self) {
        self.shared.flush_wanted.notified().await;
    }
}

fn create_segment(dir: &Path, seq: u64, clock: &SharedClock) -> Result<(File, PathBuf)> {
    let path = dir.join(segment_file_name(seq));
    let created_ms = u64::try_from(clock.now_micros() / 1000).unwrap_or(0);
    let mut file = OpenOptions::new().create_new(true).append(true).open(&path).map_err(io_err(&path))?;
    file.write_all(&SegmentHeader { created_ms, seq }.encode()).map_err(io_err(&path))?;
    file.sync_all().map_err(io_err(&path))?;
    sync_dir(dir).map_err(io_err(dir))?;
    Ok((file, path))
}

struct Writer {
    shared: Arc<Shared>,
    clock: SharedClock,
    file: File,
    path: PathBuf,
    len: u64,
    events: u64,
    seq: u64,
}

impl Writer {
    fn run(&mut self, mut rx: mpsc::UnboundedReceiver<Cmd>) {
        while let Some(first) = rx.blocking_recv() {
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(c) => group.push(c),
                    Err(_) => break,
                }
            }
            let mut buf = Vec::new();
            let mut acks = Vec::new();
            for cmd in group {
                match cmd {
                    Cmd::Append { record, events, done } => {
                        buf.extend_from_slice(&record);
                        acks.push(done);
                        self.events += events;
                        if self.shared.opts.fsync == FsyncMode::Always {
                            self.commit(&mut buf, &mut acks);
                        }
                    }
                    Cmd::Rotate { done } => {
                        self.commit(&mut buf, &mut acks);
                        let _ = done.send(self.rotate());
                    }
                }
            }
            self.commit(&mut buf, &mut acks);
            if self.events >= self.shared.opts.flush_after_events {
                self.shared.flush_wanted.notify_one();
            }
        }
    }

    /// Write `buf`, fsync per the mode, then answer every waiting appender.
    fn commit(&mut self, buf: &mut Vec<u8>, acks: &mut Vec<Ack>) {
        if buf.is_empty() {
            return;
        }
        let result = self.write_and_sync(buf);
        buf.clear();
        for ack in acks.drain(..) {
            let _ = ack.send(match &result {
                Ok(()) => Ok(()),
                Err(e) if e.raw_os_error() == Some(28) => Err(Error::DiskFull),
                Err(e) => Err(Error::Io { path: self.path.clone(), source: io::Error::new(e.kind(), e.to_string()) }),
            });
        }
    }

    fn write_and_sync(&mut self, buf: &[u8]) -> io::Result<()> {
        if let Err(e) = self.file.write_all(buf) {
            // Keep the segment whole: drop the partial write so later records stay readable.
            let _ = self.file.set_len(self.len);
            return Err(e);
        }
        if self.shared.opts.fsync != FsyncMode::Off {
            self.file.sync_data()?;
        }
        self.len += buf.len() as u64;
        self.shared.bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn rotate(&mut self) -> Result<Option<PathBuf>> {
        if self.len == HEADER_LEN {
            return Ok(None);
        }
        if self.shared.opts.fsync == FsyncMode::Off {
            self.file.sync_data().map_err(io_err(&self.path))?;
        }
        let (file, path) = create_segment(&self.shared.dir, self.seq + 1, &self.clock)?;
        self.seq += 1;
        self.shared.current_seq.store(self.seq, Ordering::SeqCst);
        self.shared.bytes.fetch_add(HEADER_LEN, Ordering::Relaxed);
        self.file = file;
        self.len = HEADER_LEN;
        self.events = 0;
        Ok(Some(std::mem::replace(&mut self.path, path)))
    }
}
