//! Write-ahead log: every accepted event is here, fsynced, before the client gets its 202.
//!
//! # Layout
//! `<data>/wal/<seq>.wal`, where `<seq>` is a zero-padded 20-digit, ever-growing segment
//! number. One segment is open for appends; the others are sealed and wait for the flusher,
//! which turns them into Parquet and only then deletes them.
//!
//! # Segment format (all integers little-endian)
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 6 | magic `FFWAL\0` |
//! | 6 | 2 | format version, currently [`VERSION`] = 2 |
//! | 8 | 8 | segment creation time, ms since the Unix epoch |
//! | 16 | 8 | segment sequence number (same as the file name) |
//! | 24 | … | records |
//!
//! Each record (version 2):
//! | size | field |
//! |---|---|
//! | 4 | sync marker [`SYNC`] = `FF FE 57 4C`: never inside a payload (JSON is UTF-8, which has no `FF` or `FE` byte) |
//! | 4 | payload length `n` (at most [`MAX_RECORD`]) |
//! | 4 | CRC-32 (IEEE, `crc32fast`) of the length bytes followed by the payload |
//! | n | payload: a JSON array of enriched [`Event`]s (one ingest request) |
//!
//! Version 1 records (still replayed) had no sync marker and a CRC of the payload alone.
//!
//! # Durability rules
//! - `--fsync always`: `fdatasync` after every record; `batch` (default): records that arrive
//!   together are written, then one `fdatasync` covers all of them (group commit); `off`:
//!   no fsync, the OS decides (an acknowledged event can be lost on power failure).
//! - A request is acknowledged only after the fsync that covers its record returned.
//! - A new segment file is fsynced and then its directory is fsynced, so it survives a crash.
//!   If creating it fails (disk full), the half-made file is removed and the writer keeps the
//!   open segment; the next rotation tries again.
//! - A write that fails half-way (disk full) truncates the segment back to the last whole record.
//!
//! # Replay
//! At start-up every segment on disk is read in order, record by record. A record is good when
//! its marker, length and CRC agree.
//! - **Damage in the middle** (a flipped byte, a bad CRC or length, a zeroed block): replay skips
//!   to the next sync marker that starts a good record and carries on, so every undamaged record
//!   is kept. The lost records (the markers left in the skipped bytes: exact unless the damage
//!   erased markers too, then a lower bound) and bytes are logged as an
//!   ERROR and counted in `footfall_wal_records_lost_total` / `footfall_wal_bytes_lost_total`,
//!   and a copy of the segment is kept as `<seq>.wal.damaged` for inspection.
//! - **The tail**: bytes after the last good record with no good record after them are cut from
//!   the file. A last record that is incomplete is a torn write (never acknowledged): a warning.
//!   A complete one that fails its CRC, or bytes that are no record at all, are damage: logged,
//!   counted and copied aside as above, then cut.
//! - A file too short to hold a header was torn while being created and holds nothing
//!   acknowledged; it is removed.
//! - Version 1 segments are read as before: replay stops at the first bad record.

mod record;
mod writer;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

pub use record::{Decoded, Loss, decode_records, encode_events_record};
pub use writer::{FsyncMode, Sealed, Wal, WalOptions};

use crate::model::Event;

/// Segment magic bytes.
pub const MAGIC: &[u8; 6] = b"FFWAL\0";
/// Segment format version written.
pub const VERSION: u16 = 2;
/// Bytes in a segment header.
pub const HEADER_LEN: u64 = 24;
/// Bytes in a record header (sync marker + length + CRC).
pub const RECORD_HEADER_LEN: u64 = 12;
/// The marker that starts every version 2 record.
pub const SYNC: [u8; 4] = [0xFF, 0xFE, 0x57, 0x4C];
/// Largest payload a record may hold (a request is at most 512 KB compressed).
pub const MAX_RECORD: u32 = 64 * 1024 * 1024;

/// WAL errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("WAL I/O error on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("WAL segment {path} is not a footfall WAL segment (bad magic)")]
    BadMagic { path: PathBuf },
    #[error("WAL segment {path} has format version {found}; this footfall reads versions 1 and {VERSION}")]
    UnsupportedVersion { path: PathBuf, found: u16 },
    #[error("WAL record in {path} at offset {offset} passed its CRC but is not valid JSON: {source}")]
    BadPayload { path: PathBuf, offset: u64, source: serde_json::Error },
    #[error("the write-ahead log is over its bound of {limit} bytes; the flusher is behind")]
    Full { limit: u64 },
    #[error("the flusher is behind: {events} events wait to be written to Parquet")]
    FlusherBehind { events: u64 },
    #[error("no space left on the device holding the write-ahead log")]
    DiskFull,
    #[error("the write-ahead log is shut down")]
    Closed,
}

/// `Result` with the WAL's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_owned(), source }
}

/// The header of a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    pub created_ms: u64,
    pub seq: u64,
}

impl SegmentHeader {
    /// Header bytes as written at the start of the file.
    pub fn encode(&self) -> [u8; HEADER_LEN as usize] {
        let mut b = [0u8; HEADER_LEN as usize];
        b[..6].copy_from_slice(MAGIC);
        b[6..8].copy_from_slice(&VERSION.to_le_bytes());
        b[8..16].copy_from_slice(&self.created_ms.to_le_bytes());
        b[16..24].copy_from_slice(&self.seq.to_le_bytes());
        b
    }
}

/// A segment read back from disk.
#[derive(Debug)]
pub struct Segment {
    pub path: PathBuf,
    pub header: SegmentHeader,
    pub events: Vec<Event>,
    /// Bytes cut from a torn tail (0 for a clean segment).
    pub cut_bytes: u64,
    /// What damage cost (zero for a clean segment or a torn last write).
    pub lost: Loss,
}

/// Segment file name for a sequence number.
pub fn segment_file_name(seq: u64) -> String {
    format!("{seq:020}.wal")
}

/// Sequence numbers and paths of the segments in `dir`, oldest first.
pub fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let path = entry.map_err(io_err(dir))?.path();
        let seq = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".wal"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(seq) = seq {
            out.push((seq, path));
        }
    }
    out.sort();
    Ok(out)
}

/// Read a segment, truncating a torn tail in place. `Ok(None)`: the file was torn during
/// creation (shorter than a header) and has been removed.
pub fn replay_segment(path: &Path) -> Result<Option<Segment>> {
    let mut buf = Vec::new();
    File::open(path).and_then(|mut f| f.read_to_end(&mut buf)).map_err(io_err(path))?;
    if (buf.len() as u64) < HEADER_LEN {
        fs::remove_file(path).map_err(io_err(path))?;
        return Ok(None);
    }
    if &buf[..6] != MAGIC {
        return Err(Error::BadMagic { path: path.to_owned() });
    }
    let version = u16::from_le_bytes([buf[6], buf[7]]);
    if version != 1 && version != VERSION {
        return Err(Error::UnsupportedVersion { path: path.to_owned(), found: version });
    }
    let word = |at: usize| u64::from_le_bytes(buf[at..at + 8].try_into().expect("8 bytes"));
    let header = SegmentHeader { created_ms: word(8), seq: word(16) };
    let decoded = decode_records(&buf[HEADER_LEN as usize..], version);
    let good_end = HEADER_LEN + decoded.good_len;
    let cut_bytes = buf.len() as u64 - good_end;
    let damage = decoded.damage();
    if damage.bytes > 0 {
        // Keep the segment as it was found, before anything is cut or flushed.
        let aside = path.with_extension("wal.damaged");
        fs::copy(path, &aside).map_err(io_err(&aside))?;
        metrics::counter!("footfall_wal_records_lost_total").increment(damage.records);
        metrics::counter!("footfall_wal_bytes_lost_total").increment(damage.bytes);
        metrics::counter!("footfall_wal_segments_damaged_total").increment(1);
        tracing::error!(
            path = %path.display(),
            records_lost = damage.records,
            bytes_lost = damage.bytes,
            records_kept = decoded.payloads.len(),
            copy = %aside.display(),
            "WAL segment is damaged: skipped the damaged records and kept every good one"
        );
    }
    if decoded.torn {
        let f = OpenOptions::new().write(true).open(path).map_err(io_err(path))?;
        f.set_len(good_end).and_then(|()| f.sync_all()).map_err(io_err(path))?;
        if decoded.damaged_tail.bytes == 0 {
            tracing::warn!(path = %path.display(), cut_bytes, "WAL replay cut a torn tail (a write that was never acknowledged)");
        }
    }
    let mut events = Vec::new();
    let mut offset = HEADER_LEN;
    for p in &decoded.payloads {
        let batch: Vec<Event> =
            serde_json::from_slice(p).map_err(|source| Error::BadPayload { path: path.to_owned(), offset, source })?;
        events.extend(batch);
        offset += RECORD_HEADER_LEN + p.len() as u64;
    }
    Ok(Some(Segment { path: path.to_owned(), header, events, cut_bytes, lost: damage }))
}

/// fsync a directory so that a file created or renamed in it survives a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::record::tests::{encode_events, encode_record, encode_record_v1};
    use super::*;

    #[test]
    fn version_1_segments_still_replay() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(segment_file_name(3));
        let mut h = SegmentHeader { created_ms: 1, seq: 3 }.encode();
        h[6..8].copy_from_slice(&1u16.to_le_bytes());
        let evs = [
            Event { event_id: "old-1".into(), ..Default::default() },
            Event { event_id: "old-2".into(), ..Default::default() },
        ];
        let mut bytes = h.to_vec();
        for e in &evs {
            bytes.extend(encode_record_v1(&encode_events(std::slice::from_ref(e))));
        }
        fs::write(&path, &bytes).expect("write");
        let seg = replay_segment(&path).expect("replay").expect("segment");
        assert_eq!(seg.events, evs.to_vec());
        assert_eq!(seg.cut_bytes, 0);
    }

    #[test]
    fn replay_truncates_file_and_removes_headerless_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(segment_file_name(7));
        let header = SegmentHeader { created_ms: 42, seq: 7 };
        let ev = Event { event_id: "e1".into(), site: "s".into(), ..Default::default() };
        let mut bytes = header.encode().to_vec();
        bytes.extend(encode_record(&encode_events(std::slice::from_ref(&ev))));
        let good = bytes.len() as u64;
        bytes.extend_from_slice(&SYNC[..3]);
        fs::write(&path, &bytes).expect("write");
        let seg = replay_segment(&path).expect("replay").expect("segment");
        assert_eq!(seg.header, header);
        assert_eq!(seg.events, vec![ev]);
        assert_eq!(seg.cut_bytes, 3);
        assert_eq!(seg.lost, Loss::default());
        assert_eq!(fs::metadata(&path).expect("meta").len(), good);
        assert!(!path.with_extension("wal.damaged").exists(), "a torn write is not kept aside");

        fs::write(&path, &bytes[..10]).expect("write");
        assert!(replay_segment(&path).expect("replay").is_none());
        assert!(!path.exists());
    }

    #[test]
    fn a_damaged_segment_is_copied_aside_and_not_cut() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(segment_file_name(8));
        let evs: Vec<Event> = (0..3).map(|i| Event { event_id: format!("e{i}"), ..Default::default() }).collect();
        let mut bytes = SegmentHeader { created_ms: 1, seq: 8 }.encode().to_vec();
        for e in &evs {
            bytes.extend(encode_record(&encode_events(std::slice::from_ref(e))));
        }
        let middle = HEADER_LEN as usize + encode_record(&encode_events(&evs[..1])).len() + 14;
        bytes[middle] ^= 0x20;
        fs::write(&path, &bytes).expect("write");
        let seg = replay_segment(&path).expect("replay").expect("segment");
        assert_eq!(seg.events, vec![evs[0].clone(), evs[2].clone()]);
        assert_eq!(seg.lost.records, 1);
        assert_eq!(fs::read(&path).expect("read"), bytes, "the good record after the damage is not cut");
        assert_eq!(fs::read(path.with_extension("wal.damaged")).expect("copy"), bytes);
        assert!(list_segments(dir.path()).expect("list").len() == 1, "the copy is not taken for a segment");
    }

    #[test]
    fn replay_rejects_foreign_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(segment_file_name(1));
        fs::write(&path, [0u8; 40]).expect("write");
        assert!(matches!(replay_segment(&path), Err(Error::BadMagic { .. })));
        let mut h = SegmentHeader { created_ms: 0, seq: 1 }.encode();
        h[6] = 9;
        fs::write(&path, h).expect("write");
        assert!(matches!(replay_segment(&path), Err(Error::UnsupportedVersion { found: 9, .. })));
    }
}
