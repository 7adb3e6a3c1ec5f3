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
//! | 6 | 2 | format version, currently [`VERSION`] = 1 |
//! | 8 | 8 | segment creation time, ms since the Unix epoch |
//! | 16 | 8 | segment sequence number (same as the file name) |
//! | 24 | … | records |
//!
//! Each record:
//! | size | field |
//! |---|---|
//! | 4 | payload length `n` (at most [`MAX_RECORD`]) |
//! | 4 | CRC-32 (IEEE, `crc32fast`) of the payload |
//! | n | payload: a JSON array of enriched [`Event`]s (one ingest request) |
//!
//! # Durability rules
//! - `--fsync always`: `fdatasync` after every record; `batch` (default): records that arrive
//!   together are written, then one `fdatasync` covers all of them (group commit); `off`:
//!   no fsync, the OS decides (an acknowledged event can be lost on power failure).
//! - A request is acknowledged only after the fsync that covers its record returned.
//! - A new segment file is fsynced and then its directory is fsynced, so it survives a crash.
//! - A write that fails half-way (disk full) truncates the segment back to the last whole record.
//!
//! # Replay
//! At start-up every segment on disk is read in order. Reading stops at the first record whose
//! header or payload is incomplete, whose length is impossible, or whose CRC does not match:
//! that is a torn tail (a write that never got acknowledged). The file is truncated to the end
//! of the last good record and everything before it is kept. A file too short to hold a header
//! was torn while being created and holds nothing acknowledged; it is removed.

mod writer;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

pub use writer::{FsyncMode, Sealed, Wal, WalOptions};

use crate::model::Event;

/// Segment magic bytes.
pub const MAGIC: &[u8; 6] = b"FFWAL\0";
/// Segment format version.
pub const VERSION: u16 = 1;
/// Bytes in a segment header.
pub const HEADER_LEN: u64 = 24;
/// Bytes in a record header (length + CRC).
pub const RECORD_HEADER_LEN: u64 = 8;
/// Largest payload a record may hold (a request is at most 512 KB compressed).
pub const MAX_RECORD: u32 = 64 * 1024 * 1024;

/// WAL errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("WAL I/O error on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("WAL segment {path} is not a footfall WAL segment (bad magic)")]
    BadMagic { path: PathBuf },
    #[error("WAL segment {path} has format version {found}; this footfall reads version {VERSION}")]
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

/// One request's events as a framed record: length, CRC-32, JSON payload.
pub fn encode_events_record(events: &[Event]) -> Vec<u8> {
    let mut out = vec![0u8; RECORD_HEADER_LEN as usize];
    serde_json::to_writer(&mut out, events).expect("Event serializes to JSON: it holds only strings, numbers and maps");
    let payload = &out[RECORD_HEADER_LEN as usize..];
    let (len, crc) = ((payload.len() as u32).to_le_bytes(), crc32fast::hash(payload).to_le_bytes());
    out[..4].copy_from_slice(&len);
    out[4..8].copy_from_slice(&crc);
    out
}

/// What the records of a byte buffer decode to.
#[derive(Debug, PartialEq)]
pub struct Decoded {
    /// Payloads of the whole, CRC-valid records, in order.
    pub payloads: Vec<Vec<u8>>,
    /// Offset just past the last good record (relative to the buffer start).
    pub good_len: u64,
    /// Whether bytes after `good_len` were dropped (torn or corrupt tail).
    pub torn: bool,
}

/// Decode records from `buf` (the bytes after the segment header), stopping at a torn tail.
pub fn decode_records(buf: &[u8]) -> Decoded {
    let mut pos = 0usize;
    let mut payloads = Vec::new();
    while pos < buf.len() {
        let Some(head) = buf.get(pos..pos + RECORD_HEADER_LEN as usize) else { break };
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        if len > MAX_RECORD {
            break;
        }
        let start = pos + RECORD_HEADER_LEN as usize;
        let Some(payload) = buf.get(start..start + len as usize) else { break };
        if crc32fast::hash(payload) != crc {
            break;
        }
        payloads.push(payload.to_vec());
        pos = start + len as usize;
    }
    Decoded { payloads, good_len: pos as u64, torn: pos < buf.len() }
}

/// A segment read back from disk.
#[derive(Debug)]
pub struct Segment {
    pub path: PathBuf,
    pub header: SegmentHeader,
    pub events: Vec<Event>,
    /// Bytes cut from a torn tail (0 for a clean segment).
    pub cut_bytes: u64,
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
    if version != VERSION {
        return Err(Error::UnsupportedVersion { path: path.to_owned(), found: version });
    }
    let word = |at: usize| u64::from_le_bytes(buf[at..at + 8].try_into().expect("8 bytes"));
    let header = SegmentHeader { created_ms: word(8), seq: word(16) };
    let decoded = decode_records(&buf[HEADER_LEN as usize..]);
    let good_end = HEADER_LEN + decoded.good_len;
    let cut_bytes = buf.len() as u64 - good_end;
    if decoded.torn {
        let f = OpenOptions::new().write(true).open(path).map_err(io_err(path))?;
        f.set_len(good_end).and_then(|()| f.sync_all()).map_err(io_err(path))?;
        tracing::warn!(path = %path.display(), cut_bytes, "WAL replay cut a torn tail");
    }
    let mut events = Vec::new();
    let mut offset = HEADER_LEN;
    for p in &decoded.payloads {
        let batch: Vec<Event> =
            serde_json::from_slice(p).map_err(|source| Error::BadPayload { path: path.to_owned(), offset, source })?;
        events.extend(batch);
        offset += RECORD_HEADER_LEN + p.len() as u64;
    }
    Ok(Some(Segment { path: path.to_owned(), header, events, cut_bytes }))
}

/// fsync a directory so that a file created or renamed in it survives a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Reference framing, straight from the format table: length, CRC, payload.
    fn encode_record(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(payload.len() + RECORD_HEADER_LEN as usize);
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        out.extend_from_slice(payload);
        out
    }

    fn encode_events(events: &[Event]) -> Vec<u8> {
        serde_json::to_vec(events).expect("events serialize")
    }

    fn framed(payloads: &[Vec<u8>]) -> Vec<u8> {
        payloads.iter().flat_map(|p| encode_record(p)).collect()
    }

    #[test]
    fn clean_buffer_decodes_whole() {
        let p = vec![b"one".to_vec(), b"two".to_vec()];
        let buf = framed(&p);
        let d = decode_records(&buf);
        assert_eq!(d.payloads, p);
        assert!(!d.torn);
        assert_eq!(d.good_len, buf.len() as u64);
    }

    #[test]
    fn torn_tail_is_cut_at_every_length() {
        let p = vec![b"first record".to_vec(), b"second".to_vec()];
        let buf = framed(&p);
        let first_len = RECORD_HEADER_LEN as usize + p[0].len();
        for cut in first_len + 1..buf.len() {
            let d = decode_records(&buf[..cut]);
            assert_eq!(d.payloads, vec![p[0].clone()], "cut at {cut}");
            assert!(d.torn);
            assert_eq!(d.good_len, first_len as u64);
        }
    }

    #[test]
    fn bad_crc_stops_replay_there() {
        let p = vec![b"aaaa".to_vec(), b"bbbb".to_vec(), b"cccc".to_vec()];
        let mut buf = framed(&p);
        let second_payload = 2 * RECORD_HEADER_LEN as usize + 4;
        buf[second_payload] ^= 0xff;
        let d = decode_records(&buf);
        assert_eq!(d.payloads, vec![p[0].clone()]);
        assert!(d.torn);
    }

    #[test]
    fn impossible_length_is_a_torn_tail() {
        let mut buf = framed(&[b"ok".to_vec()]);
        buf.extend_from_slice(&(MAX_RECORD + 1).to_le_bytes());
        buf.extend_from_slice(&[0; 4]);
        let d = decode_records(&buf);
        assert_eq!(d.payloads.len(), 1);
        assert!(d.torn);
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
        bytes.extend_from_slice(&[1, 2, 3]);
        fs::write(&path, &bytes).expect("write");
        let seg = replay_segment(&path).expect("replay").expect("segment");
        assert_eq!(seg.header, header);
        assert_eq!(seg.events, vec![ev]);
        assert_eq!(seg.cut_bytes, 3);
        assert_eq!(fs::metadata(&path).expect("meta").len(), good);

        fs::write(&path, &bytes[..10]).expect("write");
        assert!(replay_segment(&path).expect("replay").is_none());
        assert!(!path.exists());
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

    #[test]
    fn events_record_matches_two_step_framing() {
        let events = vec![Event { event_id: "a".into(), name: "x\"y".into(), ..Default::default() }, Event::default()];
        assert_eq!(encode_events_record(&events), encode_record(&encode_events(&events)));
    }

    proptest! {
        #[test]
        fn decode_returns_what_was_framed(payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..20)) {
            let d = decode_records(&framed(&payloads));
            prop_assert_eq!(d.payloads, payloads);
            prop_assert!(!d.torn);
        }
    }
}
