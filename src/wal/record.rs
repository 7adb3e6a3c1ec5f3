//! Record framing: encoding one request's events, and decoding a segment's records with
//! resynchronisation past damage (the format is in the parent module's doc).

use super::{MAX_RECORD, RECORD_HEADER_LEN, SYNC};
use crate::model::Event;

/// One request's events as a framed record: marker, length, CRC-32, JSON payload.
pub fn encode_events_record(events: &[Event]) -> Vec<u8> {
    let mut out = vec![0u8; RECORD_HEADER_LEN as usize];
    serde_json::to_writer(&mut out, events).expect("Event serializes to JSON: it holds only strings, numbers and maps");
    let len = ((out.len() - RECORD_HEADER_LEN as usize) as u32).to_le_bytes();
    out[..4].copy_from_slice(&SYNC);
    out[4..8].copy_from_slice(&len);
    let crc = record_crc(len, &out[RECORD_HEADER_LEN as usize..]).to_le_bytes();
    out[8..12].copy_from_slice(&crc);
    out
}

/// The CRC of a version 2 record: its length bytes, then its payload.
fn record_crc(len: [u8; 4], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&len);
    h.update(payload);
    h.finalize()
}

/// Bytes of a segment that could not be read as records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Loss {
    /// Records lost: the sync markers left in the damaged bytes (at least one per damaged span).
    /// Exact unless the damage erased markers too; then a lower bound.
    pub records: u64,
    pub bytes: u64,
}

impl Loss {
    fn add(&mut self, other: Loss) {
        self.records += other.records;
        self.bytes += other.bytes;
    }
}

/// What the records of a byte buffer decode to.
#[derive(Debug, Default, PartialEq)]
pub struct Decoded {
    /// Payloads of the whole, CRC-valid records, in order.
    pub payloads: Vec<Vec<u8>>,
    /// Offset just past the last good record (relative to the buffer start).
    pub good_len: u64,
    /// Whether bytes after `good_len` were dropped (torn or damaged tail).
    pub torn: bool,
    /// Damage skipped between good records.
    pub skipped: Loss,
    /// The dropped tail, when it was damage rather than one incomplete last write.
    pub damaged_tail: Loss,
}

impl Decoded {
    /// Everything lost to damage (a torn last write is not damage).
    pub fn damage(&self) -> Loss {
        let mut l = self.skipped;
        l.add(self.damaged_tail);
        l
    }
}

/// Decode the records of a segment of `version` from `buf` (the bytes after its header).
pub fn decode_records(buf: &[u8], version: u16) -> Decoded {
    if version == 1 { decode_v1(buf) } else { decode_v2(buf) }
}

/// The payload of the version 2 record at `pos`, if a whole, valid one starts there.
fn record_at(buf: &[u8], pos: usize) -> Result<&[u8], Bad> {
    let Some(head) = buf.get(pos..pos + RECORD_HEADER_LEN as usize) else { return Err(Bad::Incomplete) };
    if head[..4] != SYNC {
        return Err(Bad::Damaged);
    }
    let len = [head[4], head[5], head[6], head[7]];
    let n = u32::from_le_bytes(len);
    if n > MAX_RECORD {
        return Err(Bad::Damaged);
    }
    let start = pos + RECORD_HEADER_LEN as usize;
    let Some(payload) = buf.get(start..start + n as usize) else { return Err(Bad::Incomplete) };
    if record_crc(len, payload) != u32::from_le_bytes([head[8], head[9], head[10], head[11]]) {
        return Err(Bad::Damaged);
    }
    Ok(payload)
}

enum Bad {
    /// The bytes end before the record does.
    Incomplete,
    Damaged,
}

/// Start offsets of the sync markers in `buf[from..to]`.
fn markers(buf: &[u8], from: usize, to: usize) -> impl Iterator<Item = usize> + '_ {
    buf[from..to].windows(SYNC.len()).enumerate().filter(|(_, w)| *w == SYNC).map(move |(i, _)| from + i)
}

fn decode_v2(buf: &[u8]) -> Decoded {
    let mut d = Decoded::default();
    let mut pos = 0usize;
    while pos < buf.len() {
        let bad = match record_at(buf, pos) {
            Ok(p) => {
                d.payloads.push(p.to_vec());
                pos += RECORD_HEADER_LEN as usize + p.len();
                d.good_len = pos as u64;
                continue;
            }
            Err(bad) => bad,
        };
        // Resynchronise: the next marker after `pos` that starts a good record.
        let next = markers(buf, pos + 1, buf.len()).find(|&m| record_at(buf, m).is_ok());
        let end = next.unwrap_or(buf.len());
        let loss = Loss { records: (markers(buf, pos, end).count() as u64).max(1), bytes: (end - pos) as u64 };
        match next {
            Some(next) => {
                d.skipped.add(loss);
                pos = next;
            }
            None => {
                // Nothing good after `pos`: the tail. One incomplete record is a torn write.
                let torn_write = matches!(bad, Bad::Incomplete) && markers(buf, pos + 1, buf.len()).next().is_none();
                if !torn_write {
                    d.damaged_tail = loss;
                }
                break;
            }
        }
    }
    d.torn = (d.good_len as usize) < buf.len();
    d
}

/// Version 1: length, CRC of the payload, payload; stops at the first bad record.
fn decode_v1(buf: &[u8]) -> Decoded {
    const HEAD: usize = 8;
    let mut pos = 0usize;
    let mut payloads = Vec::new();
    while pos < buf.len() {
        let Some(head) = buf.get(pos..pos + HEAD) else { break };
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        if len > MAX_RECORD {
            break;
        }
        let start = pos + HEAD;
        let Some(payload) = buf.get(start..start + len as usize) else { break };
        if crc32fast::hash(payload) != crc {
            break;
        }
        payloads.push(payload.to_vec());
        pos = start + len as usize;
    }
    Decoded { payloads, good_len: pos as u64, torn: pos < buf.len(), ..Decoded::default() }
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::VERSION;
    use super::*;
    use proptest::prelude::*;

    /// Reference framing, straight from the format table: marker, length, CRC of length and
    /// payload, payload.
    pub(crate) fn encode_record(payload: &[u8]) -> Vec<u8> {
        let len = (payload.len() as u32).to_le_bytes();
        let crc = crc32fast::hash(&[&len[..], payload].concat());
        [&SYNC[..], &len[..], &crc.to_le_bytes()[..], payload].concat()
    }

    /// Version 1 framing: length, CRC of the payload, payload.
    pub(crate) fn encode_record_v1(payload: &[u8]) -> Vec<u8> {
        let len = (payload.len() as u32).to_le_bytes();
        [&len[..], &crc32fast::hash(payload).to_le_bytes()[..], payload].concat()
    }

    pub(crate) fn encode_events(events: &[Event]) -> Vec<u8> {
        serde_json::to_vec(events).expect("events serialize")
    }

    pub(crate) fn framed(payloads: &[Vec<u8>]) -> Vec<u8> {
        payloads.iter().flat_map(|p| encode_record(p)).collect()
    }

    /// Byte ranges of each record in `framed(payloads)`.
    pub(crate) fn spans(payloads: &[Vec<u8>]) -> Vec<(usize, usize)> {
        let mut at = 0;
        payloads
            .iter()
            .map(|p| {
                let s = (at, at + RECORD_HEADER_LEN as usize + p.len());
                at = s.1;
                s
            })
            .collect()
    }

    /// Payloads like the WAL's: JSON text of varying length.
    pub(crate) fn json_payloads(n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| format!("[{{\"event_id\":\"e{i}\",\"name\":\"{}\"}}]", "x".repeat(i % 37 * 13)).into_bytes())
            .collect()
    }

    #[test]
    fn clean_buffer_decodes_whole() {
        let p = vec![b"one".to_vec(), b"two".to_vec()];
        let buf = framed(&p);
        let d = decode_records(&buf, VERSION);
        assert_eq!(d.payloads, p);
        assert!(!d.torn);
        assert_eq!(d.good_len, buf.len() as u64);
        assert_eq!(d.damage(), Loss::default());
    }

    #[test]
    fn torn_tail_is_cut_at_every_length_and_is_not_damage() {
        let p = vec![b"first record".to_vec(), b"second".to_vec()];
        let buf = framed(&p);
        let first_len = RECORD_HEADER_LEN as usize + p[0].len();
        for cut in first_len + 1..buf.len() {
            let d = decode_records(&buf[..cut], VERSION);
            assert_eq!(d.payloads, vec![p[0].clone()], "cut at {cut}");
            assert!(d.torn);
            assert_eq!(d.good_len, first_len as u64);
            assert_eq!(d.damage(), Loss::default(), "an incomplete last write is not damage (cut at {cut})");
        }
    }

    /// Every damage kind of the hardening probe, on a segment of 200 records: the records the
    /// damage did not touch are all kept, in order.
    #[test]
    fn each_kind_of_damage_keeps_every_undamaged_record() {
        let p = json_payloads(200);
        let clean = framed(&p);
        let sp = spans(&p);
        let keep_all_but = |lost: &[usize]| -> Vec<Vec<u8>> {
            p.iter().enumerate().filter(|(i, _)| !lost.contains(i)).map(|(_, x)| x.clone()).collect()
        };
        let mid = sp[100].0 + 20; // a payload byte of record 100
        let zero_from = sp[60].0 + 5;
        let zero_to = zero_from + 8192;
        let zeroed: Vec<usize> = (0..p.len()).filter(|&i| sp[i].0 < zero_to && sp[i].1 > zero_from).collect();
        assert!(zeroed.len() > 2 && zeroed.len() < 150, "8 KB spans several records: {zeroed:?}");
        let garbage = b"\x00\x01garbage that is no record at all\xff\xff".repeat(10);
        type Damage = Box<dyn Fn(&mut Vec<u8>)>;
        let cases: Vec<(&str, Damage, Vec<usize>, bool)> = vec![
            ("middle byte", Box::new(move |b: &mut Vec<u8>| b[mid] ^= 0x40), vec![100], true),
            ("record CRC", Box::new(|b: &mut Vec<u8>| b[sp_of(2) + 8] ^= 1), vec![2], true),
            ("first length", Box::new(|b: &mut Vec<u8>| b[4] ^= 0x7f), vec![0], true),
            ("8 KB zeroed", Box::new(move |b: &mut Vec<u8>| b[zero_from..zero_to].fill(0)), zeroed, true),
            ("last byte", Box::new(|b: &mut Vec<u8>| *b.last_mut().expect("bytes") ^= 0x01), vec![199], true),
            ("truncated tail", Box::new(|b: &mut Vec<u8>| b.truncate(b.len() - 7)), vec![199], false),
            ("garbage appended", Box::new(move |b: &mut Vec<u8>| b.extend_from_slice(&garbage)), vec![], true),
        ];
        fn sp_of(i: usize) -> usize {
            spans(&json_payloads(200))[i].0
        }
        for (kind, damage, lost, is_damage) in cases {
            let mut buf = clean.clone();
            damage(&mut buf);
            let d = decode_records(&buf, VERSION);
            assert_eq!(d.payloads, keep_all_but(&lost), "{kind}");
            assert_eq!(d.damage().bytes > 0, is_damage, "{kind}: {:?}", d.damage());
            // Lost records are counted by the markers left in the damaged bytes: exact unless the
            // damage erased markers too (the zeroed block), then a lower bound of at least one.
            if is_damage && !lost.is_empty() {
                let counted = d.damage().records;
                if kind == "8 KB zeroed" {
                    assert!((1..=lost.len() as u64).contains(&counted), "{kind}: {counted}");
                } else {
                    assert_eq!(counted, lost.len() as u64, "{kind}: records counted lost");
                }
            }
        }
    }

    #[test]
    fn impossible_length_in_the_tail_is_damage() {
        let mut buf = framed(&[b"ok".to_vec()]);
        buf.extend_from_slice(&SYNC);
        buf.extend_from_slice(&(MAX_RECORD + 1).to_le_bytes());
        buf.extend_from_slice(&[0; 4]);
        let d = decode_records(&buf, VERSION);
        assert_eq!(d.payloads.len(), 1);
        assert!(d.torn);
        assert_eq!(d.damaged_tail, Loss { records: 1, bytes: 12 });
    }

    #[test]
    fn events_record_matches_two_step_framing() {
        let events = vec![Event { event_id: "a".into(), name: "x\"y".into(), ..Default::default() }, Event::default()];
        assert_eq!(encode_events_record(&events), encode_record(&encode_events(&events)));
    }

    proptest! {
        #[test]
        fn decode_returns_what_was_framed(payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..20)) {
            let d = decode_records(&framed(&payloads), VERSION);
            prop_assert_eq!(d.payloads, payloads);
            prop_assert!(!d.torn);
        }

        /// One damaged span anywhere (every byte in it changed): every record outside it is
        /// kept, in order, and nothing is invented.
        #[test]
        fn damage_anywhere_keeps_the_records_outside_it(
            n in 1usize..40,
            at in any::<prop::sample::Index>(),
            len in 1usize..600,
            mask in 1u8..=255,
        ) {
            let p = json_payloads(n);
            let mut buf = framed(&p);
            let from = at.index(buf.len());
            let to = (from + len).min(buf.len());
            for b in &mut buf[from..to] {
                *b ^= mask;
            }
            let untouched: Vec<Vec<u8>> = spans(&p)
                .into_iter()
                .zip(&p)
                .filter(|((s, e), _)| *e <= from || *s >= to)
                .map(|(_, x)| x.clone())
                .collect();
            let d = decode_records(&buf, VERSION);
            prop_assert_eq!(d.payloads, untouched);
        }
    }
}
