//! Importing history: past events with their own timestamps from footfall's NDJSON, Segment /
//! RudderStack JSON lines, PostHog's CSV export, GA4's BigQuery export (NDJSON or Parquet) and
//! any CSV with a column mapping (`footfall import`, `POST /api/import`).
//!
//! Every row becomes an event in footfall's wire shape ([`formats`]), is checked by the same
//! JSON Schema as live events (a bad row is reported with its line and the field, and the rest
//! goes on, up to `max_errors`), and is enriched as live events are where its fields allow:
//! channel, source and campaign from the referrer and UTM tags, browser, OS and device from a
//! user agent. No IP is read. Rows are streamed in batches of [`BATCH`] into the same
//! partitions through the flusher's path (identity map, once-ledger, session hours), and the
//! days touched are compacted at the end, which also removes what an earlier import of the
//! same file stored: events without an id get one derived from their content, so importing a
//! file twice stores each event once.
//!
//! Sessions: a visitor's events more than 30 minutes apart start a new session, in file order
//! (exports come in time order); a row's own session id (GA4's `ga_session_id`, PostHog's
//! `$session_id`, `session_id`) is kept when it has one.

pub mod formats;

use std::collections::{BTreeSet, HashMap};
use std::hash::Hasher as _;

use chrono::NaiveDate;
use serde_json::Value;

use crate::ingest::enrich::referrer;
use crate::ingest::enrich::ua::UaParser;
use crate::ingest::enrich::visitor::SESSION_TIMEOUT_MICROS;
use crate::ingest::validate::validate_item;
use crate::model::{Event, SiteId, WireEvent};
use crate::store::paths::DataDir;
use crate::store::{StoreGuard, compact, flush_events};
use crate::wal::SegmentHeader;

pub use formats::{ColumnMap, ImportFormat, Input};

/// Events written per flush.
pub const BATCH: usize = 100_000;

/// [`Event::origin`] of an imported event.
pub const ORIGIN_IMPORT: &str = "import";

/// A row that could not be imported.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RowError {
    /// 1-based line of the file (a CSV's header is line 1; a Parquet file's row number).
    pub line: usize,
    pub field: String,
    pub message: String,
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportReport {
    /// Rows read.
    pub rows: usize,
    /// Events written (before the days' compaction removes any already stored).
    pub imported: usize,
    /// Rows that are not events footfall keeps (Segment's `group` and `alias` calls, bots).
    pub skipped: usize,
    /// Bad rows, the first 1,000 of them.
    pub errors: Vec<RowError>,
    /// How many rows were bad.
    pub error_count: usize,
    /// Days (partitions) written to.
    pub days: usize,
    /// Events in those days after compaction (what the import added to and already held).
    pub stored_in_days: usize,
    /// True when it stopped at `max_errors`.
    pub stopped: bool,
}

/// How to import.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    pub site: SiteId,
    pub format: ImportFormat,
    /// The column mapping of the generic CSV format.
    pub map: Option<ColumnMap>,
    /// Stop after this many bad rows (what was imported so far stays).
    pub max_errors: usize,
}

/// One row as read: its line, and the event in footfall's wire shape, or why it is not one.
pub enum Row {
    Event(usize, Value),
    Skip(usize),
    Bad(RowError),
}

/// Import rows from `input`. `progress` is called with the rows read so far, now and then.
pub fn import(
    data: &DataDir,
    guard: &StoreGuard,
    opts: &ImportOptions,
    input: Input,
    mut progress: impl FnMut(usize),
) -> anyhow::Result<ImportReport> {
    let mut report = ImportReport::default();
    let mut state = Enricher::new(opts.site.clone());
    // Days that already held events: an earlier import of the same rows may be among them.
    let before: BTreeSet<NaiveDate> = data.site_dates(&opts.site)?.into_iter().collect();
    let started_ms = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
    // Reading and enriching on this thread, writing on another: the two overlap.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Event>>(1);
    let files_per_day = std::thread::scope(|scope| -> anyhow::Result<HashMap<NaiveDate, usize>> {
        let writer = scope.spawn(move || -> anyhow::Result<HashMap<NaiveDate, usize>> {
            let mut files: HashMap<NaiveDate, usize> = HashMap::new();
            for (n, batch) in rx.into_iter().enumerate() {
                let days: BTreeSet<NaiveDate> = batch.iter().map(Event::date).collect();
                for d in days {
                    *files.entry(d).or_default() += 1;
                }
                // A file id no WAL segment has: the import's start and its batch number.
                let header = SegmentHeader { created_ms: started_ms, seq: (1 << 62) + n as u64 };
                let _g = guard.lock().unwrap_or_else(|p| p.into_inner());
                flush_events(data, header, batch)?;
            }
            Ok(files)
        });
        let mut batch = Vec::with_capacity(BATCH);
        let send = |batch: &mut Vec<Event>| tx.send(std::mem::replace(batch, Vec::with_capacity(BATCH))).is_ok();
        for row in formats::rows(opts.format, opts.map.as_ref(), input)? {
            report.rows += 1;
            if report.rows.is_multiple_of(10_000) {
                progress(report.rows);
            }
            let result = match row {
                Row::Event(line, v) => state.event(line, v),
                Row::Skip(_) => Ok(None),
                Row::Bad(e) => Err(e),
            };
            match result {
                Ok(Some(e)) => {
                    batch.push(e);
                    report.imported += 1;
                    // A writer that failed stops the reading; its error is the answer.
                    if batch.len() >= BATCH && !send(&mut batch) {
                        break;
                    }
                }
                Ok(None) => report.skipped += 1,
                Err(e) => {
                    report.error_count += 1;
                    if report.errors.len() < 1_000 {
                        report.errors.push(e);
                    }
                    if report.error_count > opts.max_errors {
                        report.stopped = true;
                        break;
                    }
                }
            }
        }
        if !batch.is_empty() {
            send(&mut batch);
        }
        drop(tx);
        writer.join().map_err(|_| anyhow::anyhow!("the import's writer panicked"))?
    })?;
    progress(report.rows);
    // Days that held events before, or got more than one file: merged and deduplicated (the
    // same rows imported before), their session hours rebuilt. A new day written once is
    // already one deduplicated file with its session hours.
    report.days = files_per_day.len();
    for (day, files) in files_per_day {
        let c = match before.contains(&day) || files > 1 {
            true => {
                let _g = guard.lock().unwrap_or_else(|p| p.into_inner());
                compact::compact_partition(data, &opts.site, day)?
            }
            false => None,
        };
        report.stored_in_days += match c {
            Some(c) => c.rows_after,
            None => usize::try_from(crate::store::parquet::rows_between(data, &opts.site, day, day)?).unwrap_or(0),
        };
    }
    Ok(report)
}

/// Enriches imported rows and cuts their sessions.
struct Enricher {
    site: SiteId,
    ua: UaParser,
    /// Per visitor: the last event's time and its session.
    open: HashMap<String, (i64, String)>,
    /// The latest time seen, and the rows since sessions over before it were let go.
    latest: i64,
    since_purge: usize,
}

impl Enricher {
    fn new(site: SiteId) -> Self {
        Self { site, ua: UaParser::new(), open: HashMap::new(), latest: i64::MIN, since_purge: 0 }
    }

    /// One row: checked by the event schema, given its time, visitor, session and id; `None`
    /// for a bot's (by its user agent), which is skipped as live ingestion drops it.
    fn event(&mut self, line: usize, mut v: Value) -> Result<Option<Event>, RowError> {
        let bad = |field: &str, message: String| RowError { line, field: field.to_owned(), message };
        if let Some(o) = v.as_object_mut() {
            match o.get("site").and_then(Value::as_str) {
                None => {
                    o.insert("site".into(), Value::String(self.site.to_string()));
                }
                Some(s) if s != self.site.as_str() => {
                    return Err(bad(
                        "site",
                        format!("the row is for site {s:?}, the import for {:?}", self.site.as_str()),
                    ));
                }
                Some(_) => {}
            }
        }
        let w: WireEvent = validate_item(0, v).map_err(|e| bad(&e.field, e.message))?;
        let ts = w.timestamp.as_ref().and_then(|t| t.to_micros()).ok_or_else(|| {
            bad("timestamp", "an imported event needs its time (RFC 3339 or epoch milliseconds)".into())
        })?;
        let visitor = w
            .visitor_id
            .clone()
            .or_else(|| w.user_id.clone())
            .ok_or_else(|| bad("visitor_id", "an imported event needs a visitor_id or a user_id".into()))?;
        let ua = w.user_agent.as_deref().map(|u| self.ua.parse(u));
        if ua.as_ref().is_some_and(|u| u.is_bot) {
            return Ok(None);
        }
        let session = match &w.session_id {
            Some(s) => format!("{visitor}:{s}"),
            None => self.session(&visitor, ts),
        };
        let mut e = Event {
            event_id: String::new(),
            site: w.site,
            ts,
            client_ts: None,
            name: w.name,
            visitor_id: visitor,
            user_id: w.user_id,
            session_id: session,
            revenue: w.revenue,
            currency: w.currency,
            order_id: w.order_id,
            items: w.items,
            props: w.props.into_iter().filter_map(|(k, v)| v.into_text().map(|t| (k, t))).collect(),
            origin: Some(ORIGIN_IMPORT.to_owned()),
            ..Event::default()
        };
        referrer::page_fields(w.url.as_deref(), w.referrer.as_deref(), &mut e);
        if let Some(ua) = &ua {
            ua.apply(&mut e);
        }
        e.event_id = match w.event_id {
            Some(id) => id,
            None => content_id(&e),
        };
        Ok(Some(e))
    }

    /// The visitor's session at `ts`: the open one within 30 minutes, else a new one named by
    /// the visitor and its first time (so the same file gives the same sessions).
    fn session(&mut self, visitor: &str, ts: i64) -> String {
        // Memory stays bounded by the visitors active within the last half hour of the file
        // (in time order), not by every visitor it holds.
        self.latest = self.latest.max(ts);
        self.since_purge += 1;
        if self.since_purge >= BATCH {
            let cut = self.latest - SESSION_TIMEOUT_MICROS;
            self.open.retain(|_, (last, _)| *last >= cut);
            self.since_purge = 0;
        }
        match self.open.get_mut(visitor) {
            Some((last, id)) if (ts - *last).abs() <= SESSION_TIMEOUT_MICROS => {
                *last = (*last).max(ts);
                id.clone()
            }
            _ => {
                let id = format!("imp-{:016x}", hash(&[visitor.as_bytes(), &ts.to_le_bytes()]));
                self.open.insert(visitor.to_owned(), (ts, id.clone()));
                id
            }
        }
    }
}

pub(crate) fn hash(parts: &[&[u8]]) -> u64 {
    let mut h = siphasher::sip::SipHasher13::new_with_keys(0x696d_706f, 0x7274);
    for p in parts {
        h.write(p);
        h.write_u8(0xff);
    }
    h.finish()
}

/// An id from what the event is: its site, visitor, user, name, time, page, order, amount and
/// properties; the same row imported again gets the same id.
fn content_id(e: &Event) -> String {
    let props = serde_json::to_string(&e.props).unwrap_or_default();
    let revenue = e.revenue.map(f64::to_bits).unwrap_or_default().to_le_bytes();
    let h = hash(&[
        e.site.as_bytes(),
        e.visitor_id.as_bytes(),
        e.user_id.as_deref().unwrap_or("").as_bytes(),
        e.name.as_bytes(),
        &e.ts.to_le_bytes(),
        e.url.as_deref().unwrap_or("").as_bytes(),
        e.order_id.as_deref().unwrap_or("").as_bytes(),
        &revenue,
        props.as_bytes(),
    ]);
    format!("imp-{h:016x}")
}
