//! The appending side of the WAL: one writer thread owns the open segment and does group commit.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{Notify, mpsc, oneshot};

use super::{
    Error, HEADER_LEN, Result, SegmentHeader, encode_events_record, io_err, list_segments, segment_file_name, sync_dir,
};
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
    /// Wake the flusher once the open segment holds this many events. The writer keeps at
    /// most ten times as many in memory; past that, appends are refused until the flusher
    /// catches up.
    pub flush_after_events: u64,
}

/// How many flushes' worth of events the writer may hold while the flusher is busy.
const PENDING_FLUSHES: u64 = 10;

/// Most commands one group commit takes.
const MAX_GROUP: usize = 4096;

type Ack = oneshot::Sender<Result<()>>;

/// A segment sealed by [`Wal::rotate`], with its events: the writer keeps what it made durable
/// in memory, so the flusher does not read the segment back (only replay after a crash does).
#[derive(Debug)]
pub struct Sealed {
    pub path: PathBuf,
    pub header: SegmentHeader,
    pub events: Vec<Event>,
}

enum Cmd {
    Append { record: Vec<u8>, events: Vec<Event>, done: Ack },
    Rotate { done: oneshot::Sender<Result<Option<Sealed>>> },
}

/// Appends taken together into one write and one fsync.
#[derive(Default)]
struct Group {
    buf: Vec<u8>,
    acks: Vec<Ack>,
    events: Vec<Vec<Event>>,
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
    /// Durable events of the open segment, held in memory for the flusher.
    pending: AtomicU64,
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
        let (file, path, header) = create_segment(dir, seq, &clock)?;
        let shared = Arc::new(Shared {
            dir: dir.to_owned(),
            opts,
            bytes: AtomicU64::new(bytes + HEADER_LEN),
            pending: AtomicU64::new(0),
            current_seq: AtomicU64::new(seq),
            flush_wanted: Notify::new(),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let mut w = Writer { shared: shared.clone(), clock, file, path, header, len: HEADER_LEN, pending: Vec::new() };
        std::thread::Builder::new().name("footfall-wal".into()).spawn(move || w.run(rx)).map_err(io_err(dir))?;
        Ok(Self { tx, shared })
    }

    /// Append one request's events. Returns once they are durable (per the fsync mode).
    pub async fn append(&self, events: Vec<Event>) -> Result<()> {
        let record = encode_events_record(&events);
        let limit = self.shared.opts.max_bytes;
        if self.shared.bytes.load(Ordering::Relaxed) + record.len() as u64 > limit {
            return Err(Error::Full { limit });
        }
        let held = self.shared.opts.flush_after_events.saturating_mul(PENDING_FLUSHES);
        if self.shared.pending.load(Ordering::Relaxed) >= held {
            return Err(Error::FlusherBehind { events: held });
        }
        let (done, rx) = oneshot::channel();
        let cmd = Cmd::Append { record, events, done };
        self.tx.send(cmd).map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Seal the open segment and start a new one. `None` when the open segment was empty.
    pub async fn rotate(&self) -> Result<Option<Sealed>> {
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
        self.forget_bytes(len);
        Ok(())
    }

    /// Rename a sealed segment that cannot be read to `<name>.unreadable`, so it no longer
    /// blocks the log and waits for a human. Returns the new path.
    pub fn set_aside(&self, path: &Path) -> Result<PathBuf> {
        let len = std::fs::metadata(path).map_err(io_err(path))?.len();
        let aside = path.with_extension("wal.unreadable");
        std::fs::rename(path, &aside).map_err(io_err(path))?;
        sync_dir(&self.shared.dir).map_err(io_err(&self.shared.dir))?;
        self.forget_bytes(len);
        Ok(aside)
    }

    fn forget_bytes(&self, len: u64) {
        let _ = self.shared.bytes.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| Some(b.saturating_sub(len)));
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

fn create_segment(dir: &Path, seq: u64, clock: &SharedClock) -> Result<(File, PathBuf, SegmentHeader)> {
    let path = dir.join(segment_file_name(seq));
    let header = SegmentHeader { created_ms: u64::try_from(clock.now_micros() / 1000).unwrap_or(0), seq };
    // A file no longer than a header holds no record: what a creation that failed half-way
    // (disk full) left behind. Replace it rather than fail every later rotation on it.
    if std::fs::metadata(&path).is_ok_and(|m| m.len() <= HEADER_LEN) {
        std::fs::remove_file(&path).map_err(io_err(&path))?;
    }
    let made = (|| {
        let mut file = OpenOptions::new().create_new(true).append(true).open(&path)?;
        file.write_all(&header.encode())?;
        file.sync_all()?;
        sync_dir(dir)?;
        Ok::<_, io::Error>(file)
    })();
    match made {
        Ok(file) => Ok((file, path, header)),
        Err(e) => {
            if e.kind() != io::ErrorKind::AlreadyExists {
                let _ = std::fs::remove_file(&path);
            }
            Err(Error::Io { path, source: e })
        }
    }
}

/// What an appender is told when the write or fsync covering its record failed.
fn append_error(e: &io::Error, path: &Path) -> Error {
    if e.kind() == io::ErrorKind::StorageFull || e.raw_os_error() == Some(28) {
        Error::DiskFull
    } else {
        Error::Io { path: path.to_owned(), source: io::Error::new(e.kind(), e.to_string()) }
    }
}

struct Writer {
    shared: Arc<Shared>,
    clock: SharedClock,
    file: File,
    path: PathBuf,
    header: SegmentHeader,
    len: u64,
    /// Events of the open segment that are durable, for the flusher.
    pending: Vec<Event>,
}

impl Writer {
    fn run(&mut self, mut rx: mpsc::UnboundedReceiver<Cmd>) {
        while let Some(first) = rx.blocking_recv() {
            let mut cmds = vec![first];
            while cmds.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(c) => cmds.push(c),
                    Err(_) => break,
                }
            }
            let bytes = cmds.iter().map(|c| if let Cmd::Append { record, .. } = c { record.len() } else { 0 }).sum();
            let mut group = Group { buf: Vec::with_capacity(bytes), ..Group::default() };
            for cmd in cmds {
                match cmd {
                    Cmd::Append { record, events, done } => {
                        group.buf.extend_from_slice(&record);
                        group.acks.push(done);
                        group.events.push(events);
                        if self.shared.opts.fsync == FsyncMode::Always {
                            self.commit(&mut group);
                        }
                    }
                    Cmd::Rotate { done } => {
                        self.commit(&mut group);
                        let _ = done.send(self.rotate());
                    }
                }
            }
            self.commit(&mut group);
            if self.pending.len() as u64 >= self.shared.opts.flush_after_events {
                self.shared.flush_wanted.notify_one();
            }
        }
    }

    /// Write the group, fsync per the mode, keep its events, then answer every appender.
    fn commit(&mut self, group: &mut Group) {
        if group.buf.is_empty() {
            return;
        }
        let result = self.write_and_sync(&group.buf);
        group.buf.clear();
        metrics::counter!("footfall_wal_commits_total").increment(1);
        if result.is_ok() {
            self.pending.extend(group.events.drain(..).flatten());
            self.shared.pending.store(self.pending.len() as u64, Ordering::Relaxed);
        } else {
            group.events.clear();
        }
        for ack in group.acks.drain(..) {
            let _ = ack.send(result.as_ref().map(|_| ()).map_err(|e| append_error(e, &self.path)));
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

    fn rotate(&mut self) -> Result<Option<Sealed>> {
        if self.len == HEADER_LEN {
            return Ok(None);
        }
        if self.shared.opts.fsync == FsyncMode::Off {
            self.file.sync_data().map_err(io_err(&self.path))?;
        }
        let (file, path, header) = create_segment(&self.shared.dir, self.header.seq + 1, &self.clock)?;
        self.shared.current_seq.store(header.seq, Ordering::SeqCst);
        self.shared.bytes.fetch_add(HEADER_LEN, Ordering::Relaxed);
        self.file = file;
        self.len = HEADER_LEN;
        self.shared.pending.store(0, Ordering::Relaxed);
        let sealed = Sealed {
            path: std::mem::replace(&mut self.path, path),
            header: std::mem::replace(&mut self.header, header),
            events: std::mem::take(&mut self.pending),
        };
        Ok(Some(sealed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use crate::wal::replay_segment;
    use proptest::prelude::*;

    fn opts(fsync: FsyncMode) -> WalOptions {
        WalOptions { fsync, max_bytes: 1 << 30, flush_after_events: u64::MAX }
    }

    fn open(dir: &Path, fsync: FsyncMode) -> Wal {
        Wal::open(dir, opts(fsync), Arc::new(FixedClock::new(1_700_000_000_000_000))).expect("open wal")
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
    }

    fn replay_sealed(wal: &Wal) -> Vec<Event> {
        let mut out = Vec::new();
        for (_, p) in wal.sealed_segments().expect("list") {
            out.extend(replay_segment(&p).expect("replay").expect("segment").events);
        }
        out
    }

    fn sorted(mut v: Vec<Event>) -> Vec<Event> {
        v.sort_by(|a, b| a.event_id.cmp(&b.event_id));
        v
    }

    fn arb_event() -> impl Strategy<Value = Event> {
        (
            "[a-z0-9]{8,16}",
            "\\PC{1,12}",
            any::<i64>(),
            prop::option::of(0.0f64..1e9),
            prop::collection::btree_map("[a-z]{1,5}", "\\PC{0,8}", 0..4),
        )
            .prop_map(|(id, name, ts, revenue, props)| Event {
                event_id: id,
                site: "s".into(),
                name,
                ts,
                revenue,
                props,
                ..Default::default()
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// Concurrent appends, in any fsync mode, then replay: the same events, none lost or doubled.
        #[test]
        fn append_then_replay_returns_the_same_records(
            batches in prop::collection::vec(prop::collection::vec(arb_event(), 1..6), 1..16),
            mode in prop::sample::select(vec![FsyncMode::Always, FsyncMode::Batch, FsyncMode::Off]),
        ) {
            let dir = tempfile::tempdir().expect("tempdir");
            let rt = runtime();
            let wal = open(dir.path(), mode);
            let appended: Vec<Event> = batches.iter().flatten().cloned().collect();
            rt.block_on(async {
                let tasks: Vec<_> = batches.into_iter().map(|b| {
                    let w = wal.clone();
                    tokio::spawn(async move { w.append(b).await })
                }).collect();
                for t in tasks {
                    t.await.expect("task").expect("append");
                }
                let sealed = wal.rotate().await.expect("rotate").expect("sealed");
                assert_eq!(sorted(sealed.events), sorted(appended.clone()), "what the writer kept");
            });
            prop_assert_eq!(sorted(replay_sealed(&wal)), sorted(appended), "what is on disk");
        }
    }

    #[test]
    fn a_restart_finds_unflushed_segments_sealed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rt = runtime();
        let e = Event { event_id: "keep-me".into(), ..Default::default() };
        {
            let wal = open(dir.path(), FsyncMode::Always);
            rt.block_on(wal.append(vec![e.clone()])).expect("append");
            assert!(wal.sealed_segments().expect("list").is_empty());
        } // dropped without rotate: as after a crash
        let wal = open(dir.path(), FsyncMode::Batch);
        let sealed = wal.sealed_segments().expect("list");
        assert_eq!(sealed.len(), 1);
        assert_eq!(replay_sealed(&wal), vec![e]);
        // Appends after the restart go to a new segment.
        rt.block_on(wal.append(vec![Event::default()])).expect("append");
        assert_eq!(wal.sealed_segments().expect("list").len(), 1);
        wal.release(&sealed[0].1).expect("release");
        assert!(wal.sealed_segments().expect("list").is_empty());
        assert!(rt.block_on(wal.rotate()).expect("rotate").is_some());
        assert!(rt.block_on(wal.rotate()).expect("rotate").is_none(), "an empty segment is not sealed");
    }

    #[test]
    fn appends_over_the_bound_are_refused_and_bytes_are_given_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rt = runtime();
        let e = Event { event_id: "x".repeat(200), ..Default::default() };
        let record = encode_events_record(std::slice::from_ref(&e)).len() as u64;
        let limit = HEADER_LEN + record + record / 2; // room for one record, not two
        let wal = Wal::open(
            dir.path(),
            WalOptions { max_bytes: limit, ..opts(FsyncMode::Batch) },
            Arc::new(FixedClock::new(0)),
        )
        .expect("open");
        rt.block_on(wal.append(vec![e.clone()])).expect("first append fits");
        let err = rt.block_on(wal.append(vec![e.clone()])).expect_err("second is over the bound");
        assert!(matches!(err, Error::Full { limit: l } if l == limit));
        let sealed = rt.block_on(wal.rotate()).expect("rotate").expect("sealed");
        wal.release(&sealed.path).expect("release");
        rt.block_on(wal.append(vec![e])).expect("room again after the flush");
    }

    #[test]
    fn appends_wait_for_a_flusher_that_is_behind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rt = runtime();
        let wal = Wal::open(
            dir.path(),
            WalOptions { flush_after_events: 2, ..opts(FsyncMode::Batch) },
            Arc::new(FixedClock::new(0)),
        )
        .expect("open");
        let batch =
            |n: usize| (0..n).map(|i| Event { event_id: format!("e{i}"), ..Default::default() }).collect::<Vec<_>>();
        rt.block_on(wal.append(batch(2 * PENDING_FLUSHES as usize))).expect("fills the in-memory bound");
        let err = rt.block_on(wal.append(batch(1))).expect_err("refused while the flusher is behind");
        assert!(matches!(err, Error::FlusherBehind { events: 20 }));
        let sealed = rt.block_on(wal.rotate()).expect("rotate").expect("sealed");
        assert_eq!(sealed.events.len(), 20);
        rt.block_on(wal.append(batch(1))).expect("accepted again once the flusher took them");
    }

    #[test]
    fn a_full_disk_is_reported_as_such() {
        let p = Path::new("/wal/1.wal");
        assert!(matches!(append_error(&io::Error::from_raw_os_error(28), p), Error::DiskFull));
        assert!(matches!(append_error(&io::Error::from(io::ErrorKind::StorageFull), p), Error::DiskFull));
        assert!(matches!(append_error(&io::Error::from_raw_os_error(5), p), Error::Io { .. }));
    }

    #[test]
    fn a_rotation_that_failed_half_way_does_not_block_the_next() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rt = runtime();
        let wal = open(dir.path(), FsyncMode::Batch);
        rt.block_on(wal.append(vec![Event { event_id: "a".into(), ..Default::default() }])).expect("append");
        // What a disk-full rotation used to leave: the next segment's file, empty or half a header.
        for leftover in [&[][..], &b"FFWAL"[..]] {
            let next = dir.path().join(segment_file_name(wal.shared.current_seq.load(Ordering::SeqCst) + 1));
            std::fs::write(&next, leftover).expect("leftover");
            let sealed = rt.block_on(wal.rotate()).expect("rotation recovers").expect("sealed");
            rt.block_on(wal.append(vec![Event { event_id: "b".into(), ..Default::default() }])).expect("append");
            wal.release(&sealed.path).expect("release");
        }
        assert_eq!(rt.block_on(wal.rotate()).expect("rotate").expect("sealed").events.len(), 1);
    }

    /// A real full disk (a 512 KiB tmpfs): appends answer DiskFull, rotation fails while the
    /// disk is full, and both work again by themselves once space returns, with every
    /// acknowledged event kept.
    #[test]
    fn rotation_recovers_by_itself_once_space_returns() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mnt = dir.path().join("small");
        std::fs::create_dir(&mnt).expect("mkdir");
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=512k", "tmpfs"])
            .arg(&mnt)
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            eprintln!("SKIPPED: mounting a tmpfs needs root (CI runs as root)");
            return;
        }
        struct Unmount(PathBuf);
        impl Drop for Unmount {
            fn drop(&mut self) {
                let _ = std::process::Command::new("umount").arg(&self.0).status();
            }
        }
        let _unmount = Unmount(mnt.clone());
        let filler = mnt.join("filler");
        std::fs::write(&filler, vec![7u8; 300 * 1024]).expect("filler");
        let rt = runtime();
        let wal = open(&mnt.join("wal"), FsyncMode::Batch);
        let mut acked = Vec::new();
        let mut full = false;
        for i in 0..200 {
            let e = Event { event_id: format!("e{i}"), name: "x".repeat(8 * 1024), ..Default::default() };
            match rt.block_on(wal.append(vec![e.clone()])) {
                Ok(()) => acked.push(e),
                Err(Error::DiskFull) => {
                    full = true;
                    break;
                }
                Err(other) => panic!("unexpected {other}"),
            }
        }
        assert!(full, "the tmpfs filled up");
        assert!(rt.block_on(wal.rotate()).is_err(), "no room for the next segment's header");
        std::fs::remove_file(&filler).expect("space returns");
        let sealed = rt.block_on(wal.rotate()).expect("rotation works again").expect("sealed");
        assert_eq!(sorted(sealed.events), sorted(acked.clone()));
        rt.block_on(wal.append(vec![Event { event_id: "after".into(), ..Default::default() }])).expect("append again");
        assert_eq!(sorted(replay_sealed(&wal)), sorted(acked), "what is on disk");
    }

    #[test]
    fn unreadable_segments_can_be_set_aside() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(segment_file_name(1)), [0u8; 64]).expect("write junk");
        let wal = open(dir.path(), FsyncMode::Batch);
        let before = wal.bytes();
        let (_, p) = wal.sealed_segments().expect("list").remove(0);
        let aside = wal.set_aside(&p).expect("set aside");
        assert!(aside.exists() && !p.exists());
        assert_eq!(wal.bytes(), before - 64);
        assert!(wal.sealed_segments().expect("list").is_empty());
    }
}
