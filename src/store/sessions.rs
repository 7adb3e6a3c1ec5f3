//! The `session_hours` table: what each session did in each UTC hour, derived from the events
//! of a data file and written beside it, so reports about visits read about one row per session
//! instead of every event (docs/adr/0004-people-resolved-once.md).
//!
//! One row per (session, UTC hour, visitor, own user id, and the session-level dimensions
//! below), with the counts reports need: events, pageviews, interactions (events not named
//! `$…`), purchases, carts (`add_to_cart`), checkouts (`checkout_start`), revenue (purchases
//! minus refunds), gross (purchases) and refunded amounts (each NULL without such an event),
//! the first and last event time, the first pageview's path and time (`entry_page`,
//! `entry_ts`, NULL without one), the first event's path (`first_path`, for a session with
//! no pageview), earliest by time, then path, and the first and last time of the events a
//! browser sent (`visit_first_ts`, `visit_last_ts`: visit duration leaves out the backend's). Rows split when a dimension changes inside an hour, so a filter or
//! breakdown on any of those dimensions means exactly what it means over events. A report whose
//! time zone is a whole number of hours from UTC over the whole range can bucket hours exactly.
//!
//! Layout: `sessions/site=<site>/date=<YYYY-MM-DD>/<ulid>.parquet`, one file per events file
//! **with the same name**: the flusher writes both, compaction rebuilds the partition's from
//! its merged events. A reader uses the table only for partitions whose two file sets are
//! equal (see [`in_step`]); otherwise it reads events.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, LazyLock};

use arrow::array::{
    Array, ArrayRef, AsArray, Decimal128Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Decimal128Type, Field, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use super::Result;
use super::parquet::{column, text_column, write_atomic};
use super::paths::{DataDir, data_files};
use crate::model::schema::{MONEY_PRECISION, MONEY_SCALE};
use crate::model::{ORIGIN_SERVER, SiteId};

/// Session-level dimensions kept in the key, by their `events` column names.
pub const DIMENSION_COLUMNS: [&str; 10] =
    ["channel", "source", "medium", "campaign", "device", "browser", "os", "country", "region", "city"];

const HOUR: i64 = 3_600_000_000;

/// The columns of a session-hours file (besides the `site`/`date` partition columns).
pub fn schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let ts = || DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let mut f = vec![
            Field::new("session_id", DataType::Utf8, false),
            Field::new("hour", ts(), false),
            Field::new("visitor_id", DataType::Utf8, false),
            Field::new("user_id", DataType::Utf8, true),
            Field::new("person_id", DataType::Utf8, true),
        ];
        f.extend(DIMENSION_COLUMNS.iter().map(|c| Field::new(*c, DataType::Utf8, true)));
        f.extend([
            Field::new("events", DataType::Int64, false),
            Field::new("pageviews", DataType::Int64, false),
            Field::new("interactions", DataType::Int64, false),
            Field::new("purchases", DataType::Int64, false),
            Field::new("carts", DataType::Int64, false),
            Field::new("checkouts", DataType::Int64, false),
            Field::new("revenue", DataType::Decimal128(MONEY_PRECISION, MONEY_SCALE), true),
            Field::new("gross", DataType::Decimal128(MONEY_PRECISION, MONEY_SCALE), true),
            Field::new("refunded", DataType::Decimal128(MONEY_PRECISION, MONEY_SCALE), true),
            Field::new("first_ts", ts(), false),
            Field::new("last_ts", ts(), false),
            Field::new("entry_page", DataType::Utf8, true),
            Field::new("entry_ts", ts(), true),
            Field::new("first_path", DataType::Utf8, true),
            Field::new("visit_first_ts", ts(), true),
            Field::new("visit_last_ts", ts(), true),
        ]);
        Arc::new(Schema::new(f))
    });
    SCHEMA.clone()
}

/// A row's key: its UTC hour, then session, visitor, user, person and the dimensions.
type Key<'a> = (i64, Vec<Option<&'a str>>);

#[derive(Default)]
struct Acc<'a> {
    events: i64,
    pageviews: i64,
    interactions: i64,
    purchases: i64,
    carts: i64,
    checkouts: i64,
    revenue: Option<i128>,
    gross: Option<i128>,
    refunded: Option<i128>,
    /// The first event: (time, path), by time, then path.
    first: (i64, Option<&'a str>),
    last_ts: i64,
    /// The first pageview: (time, path).
    entry: Option<(i64, Option<&'a str>)>,
    /// The first and last time of the events a browser sent (not the site's backend).
    visit: Option<(i64, i64)>,
}

/// Whether (time, path) comes before `than`: earlier, or as early with a path that sorts first
/// (a missing path last), as SQL's `ORDER BY ts, path NULLS LAST` orders them.
fn earlier((t, path): (i64, Option<&str>), (u, q): (i64, Option<&str>)) -> bool {
    (t, path.is_none(), path) < (u, q.is_none(), q)
}

/// The session-hour rows of `events` (a batch of the events file schema, persons stamped).
pub fn derive(events: &RecordBatch) -> Result<RecordBatch> {
    let text = |n: &str| text_column(events, n);
    let (session, visitor, user, person, name) =
        (text("session_id")?, text("visitor_id")?, text("user_id")?, text("person_id")?, text("name")?);
    let (path, origin) = (text("path")?, text("origin")?);
    let dims: Vec<StringArray> = DIMENSION_COLUMNS.iter().map(|c| text(c)).collect::<Result<_>>()?;
    let ts = column(events, "ts")?.as_primitive::<TimestampMicrosecondType>();
    let revenue = column(events, "revenue")?.as_primitive::<Decimal128Type>();
    let mut groups: HashMap<Key<'_>, Acc> = HashMap::new();
    let mut order = Vec::new();
    for i in 0..events.num_rows() {
        let t = ts.value(i);
        let hour = t.div_euclid(HOUR) * HOUR;
        let mut key = Vec::with_capacity(4 + dims.len());
        key.extend([Some(session.value(i)), Some(visitor.value(i)), opt(&user, i), opt(&person, i)]);
        key.extend(dims.iter().map(|d| opt(d, i)));
        let p = opt(&path, i);
        let acc = groups.entry((hour, key)).or_insert_with_key(|k| {
            order.push(k.clone());
            Acc { first: (t, p), last_ts: t, ..Acc::default() }
        });
        let n = name.value(i);
        acc.events += 1;
        acc.pageviews += i64::from(n == "pageview");
        acc.interactions += i64::from(!n.starts_with('$'));
        acc.purchases += i64::from(n == "purchase");
        acc.carts += i64::from(n == "add_to_cart");
        acc.checkouts += i64::from(n == "checkout_start");
        // As SQL's sum(…): a purchase or refund without an amount adds nothing.
        let add = |sum: &mut Option<i128>, m: i128| *sum = Some(sum.unwrap_or(0) + m);
        if let (Some(m), "purchase" | "refund") = ((!revenue.is_null(i)).then(|| revenue.value(i)), n) {
            if n == "purchase" {
                add(&mut acc.revenue, m);
                add(&mut acc.gross, m);
            } else {
                add(&mut acc.revenue, -m);
                add(&mut acc.refunded, m);
            }
        }
        acc.last_ts = acc.last_ts.max(t);
        if opt(&origin, i) != Some(ORIGIN_SERVER) {
            acc.visit = Some(acc.visit.map_or((t, t), |(a, b)| (a.min(t), b.max(t))));
        }
        if n == "pageview" && acc.entry.is_none_or(|e| earlier((t, p), e)) {
            acc.entry = Some((t, p));
        }
        if earlier((t, p), acc.first) {
            acc.first = (t, p);
        }
    }
    let rows: Vec<(&Key<'_>, &Acc)> = order.iter().map(|k| (k, &groups[k])).collect();
    let rows_of =
        |f: &dyn Fn(&Acc) -> i64| Arc::new(rows.iter().map(|(_, a)| f(a)).collect::<Int64Array>()) as ArrayRef;
    let key_text = |j: usize| Arc::new(rows.iter().map(|(k, _)| k.1[j]).collect::<StringArray>()) as ArrayRef;
    let stamp = |v: Vec<i64>| Arc::new(TimestampMicrosecondArray::from(v).with_timezone("UTC")) as ArrayRef;
    let mut cols: Vec<ArrayRef> = vec![key_text(0), stamp(rows.iter().map(|(k, _)| k.0).collect())];
    cols.extend((1..4 + dims.len()).map(key_text));
    cols.extend([
        rows_of(&|a| a.events),
        rows_of(&|a| a.pageviews),
        rows_of(&|a| a.interactions),
        rows_of(&|a| a.purchases),
        rows_of(&|a| a.carts),
        rows_of(&|a| a.checkouts),
        money(rows.iter().map(|(_, a)| a.revenue))?,
        money(rows.iter().map(|(_, a)| a.gross))?,
        money(rows.iter().map(|(_, a)| a.refunded))?,
        stamp(rows.iter().map(|(_, a)| a.first.0).collect()),
        stamp(rows.iter().map(|(_, a)| a.last_ts).collect()),
        Arc::new(rows.iter().map(|(_, a)| a.entry.and_then(|e| e.1)).collect::<StringArray>()),
        stamps(rows.iter().map(|(_, a)| a.entry.map(|e| e.0))),
        Arc::new(rows.iter().map(|(_, a)| a.first.1).collect::<StringArray>()),
        stamps(rows.iter().map(|(_, a)| a.visit.map(|v| v.0))),
        stamps(rows.iter().map(|(_, a)| a.visit.map(|v| v.1))),
    ]);
    Ok(RecordBatch::try_new(schema(), cols)?)
}

/// A nullable UTC timestamp column.
fn stamps(values: impl Iterator<Item = Option<i64>>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from(values.collect::<Vec<_>>()).with_timezone("UTC"))
}

fn money(values: impl Iterator<Item = Option<i128>>) -> Result<ArrayRef> {
    Ok(Arc::new(values.collect::<Decimal128Array>().with_precision_and_scale(MONEY_PRECISION, MONEY_SCALE)?))
}

fn opt(a: &StringArray, i: usize) -> Option<&str> {
    (!a.is_null(i)).then(|| a.value(i))
}

/// Write the session hours of an events file (`events_file` names the file they belong to).
pub fn write_for(
    data: &DataDir,
    site: &SiteId,
    date: chrono::NaiveDate,
    events_file: &Path,
    events: &RecordBatch,
) -> Result<()> {
    let name = events_file.file_name().and_then(|n| n.to_str()).unwrap_or("file.parquet");
    let path = data.sessions_partition_dir(site, date).join(name);
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).expect("zstd level 3 is valid")))
        .build();
    write_atomic(&path, &derive(events)?, props)
}

/// Whether a partition's session-hours files are exactly those of its events files (each events
/// file has its session hours, and no other file is there).
pub fn in_step(data: &DataDir, site: &SiteId, date: chrono::NaiveDate) -> std::io::Result<bool> {
    let names = |dir: &Path| -> std::io::Result<Vec<std::ffi::OsString>> {
        Ok(data_files(dir)?.into_iter().filter_map(|p| p.file_name().map(ToOwned::to_owned)).collect())
    };
    Ok(names(&data.partition_dir(site, date))? == names(&data.sessions_partition_dir(site, date))?)
}

/// Rebuild a partition's session hours from its events files (after compaction; a store
/// written before the table existed). `known` is the batch of an events file already in hand.
pub fn rebuild(
    data: &DataDir,
    site: &SiteId,
    date: chrono::NaiveDate,
    known: Option<(&Path, &RecordBatch)>,
) -> Result<()> {
    let dir = data.sessions_partition_dir(site, date);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(super::parquet::io_err(&dir))?;
    }
    let events_dir = data.partition_dir(site, date);
    for file in data_files(&events_dir).map_err(super::parquet::io_err(&events_dir))? {
        match known {
            Some((path, batch)) if path.file_name() == file.file_name() => write_for(data, site, date, &file, batch)?,
            _ => write_for(data, site, date, &file, &super::parquet::read_file(&file)?)?,
        }
    }
    Ok(())
}
