//! Compaction: merge the files of a partition into one, sorted by (visitor_id, ts),
//! deduplicated by event_id, every row's `person_id` re-stamped from the identity map, and
//! only the first copy of each order or refund kept (the once-ledger, [`super::once`]).
//!
//! The merged file is written into a fresh staging directory, which is then swapped with the
//! partition directory in one `renameat2(RENAME_EXCHANGE)`. A reader listing the partition sees
//! either all the old files or the one new file, never both and never neither. The old files
//! end up in the staging directory, which is then removed.

use std::path::Path;

use arrow::array::RecordBatch;
use rustix::fs::{CWD, RenameFlags, renameat_with};
use ulid::Ulid;

use super::held::SiteFile as _;
use super::identity::IdentityMap;
use super::once::Ledger;
use super::parquet::{io_err, read_files, sort_dedupe, write_file};
use super::paths::{DataDir, data_files};
use super::sessions;
use super::{Result, StoreGuard};
use crate::model::SiteId;
use crate::wal::sync_dir;

/// What compacting one partition did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Compacted {
    pub site: String,
    pub date: String,
    pub files_before: usize,
    pub rows_before: usize,
    pub rows_after: usize,
}

/// Compact one partition if it has at least two files.
pub fn compact_partition(data: &DataDir, site: &SiteId, date: chrono::NaiveDate) -> Result<Option<Compacted>> {
    let dir = data.partition_dir(site, date);
    let files = data_files(&dir).map_err(io_err(&dir))?;
    if files.len() < 2 {
        return Ok(None);
    }
    let merged = read_files(&files)?;
    // Re-stamp every row's person from today's map: the stored column converges on it, and
    // rows of an older schema version get theirs.
    let map = IdentityMap::check_out(data, site)?;
    let out = map.stamp(&sort_dedupe(&merged)?)?;
    map.check_in(data, site);
    // Only the first copy of an order or a refund (a store written before the ledger).
    let ledger = Ledger::check_out(data, site)?;
    let out = ledger.keep_firsts(&out)?;
    ledger.check_in(data, site);
    replace_partition(data, site, date, &out)?;
    Ok(Some(Compacted {
        site: site.to_string(),
        date: date.to_string(),
        files_before: files.len(),
        rows_before: merged.num_rows(),
        rows_after: out.num_rows(),
    }))
}

/// Replace a partition's files with one file of `rows`, atomically (a staging directory
/// swapped with the partition), then rebuild its session hours. With no rows, the day's
/// directory and its session hours go.
pub(crate) fn replace_partition(
    data: &DataDir,
    site: &SiteId,
    date: chrono::NaiveDate,
    rows: &RecordBatch,
) -> Result<()> {
    let dir = data.partition_dir(site, date);
    let staging = data.staging_dir().join(Ulid::new().to_string());
    std::fs::create_dir_all(&staging).map_err(io_err(&staging))?;
    let name = format!("{}.parquet", Ulid::new());
    if rows.num_rows() > 0 {
        write_file(&staging.join(&name), rows)?;
    }
    swap_dirs(&staging, &dir)?;
    std::fs::remove_dir_all(&staging).map_err(io_err(&staging))?;
    if rows.num_rows() == 0 {
        std::fs::remove_dir(&dir).map_err(io_err(&dir))?;
        return remove_whole(data, &data.sessions_partition_dir(site, date));
    }
    // Until this is done, readers see the two tables out of step and read events instead.
    sessions::rebuild(data, site, date, Some((&dir.join(&name), rows)))
}

/// Remove a directory, if it exists, so that readers see it whole or not at all: renamed into
/// the staging directory first, then deleted.
pub(crate) fn remove_whole(data: &DataDir, dir: &Path) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    let gone = data.staging_dir().join(Ulid::new().to_string());
    std::fs::create_dir_all(data.staging_dir()).map_err(io_err(&data.staging_dir()))?;
    std::fs::rename(dir, &gone).map_err(io_err(dir))?;
    std::fs::remove_dir_all(&gone).map_err(io_err(&gone))
}

pub(crate) fn swap_dirs(a: &Path, b: &Path) -> Result<()> {
    renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE)
        .map_err(|e| super::Error::Io { path: b.to_owned(), source: e.into() })?;
    for parent in [a.parent(), b.parent()].into_iter().flatten() {
        sync_dir(parent).map_err(io_err(parent))?;
    }
    Ok(())
}

/// Compact every partition with more than one file, and rebuild the session hours of any
/// partition whose session files are not those of its events files (an interrupted compaction,
/// a store written before the table existed).
pub fn compact_all(data: &DataDir, guard: &StoreGuard) -> Result<Vec<Compacted>> {
    let parts = data.partitions().map_err(io_err(&data.events_dir()))?;
    remove_other_session_versions(data)?;
    let mut done = Vec::new();
    for (site, date) in parts {
        let _g = guard.lock().unwrap_or_else(|p| p.into_inner());
        // One partition that cannot be compacted (a damaged or foreign file) is left as it is,
        // logged and counted; the others still compact.
        match compact_one(data, &site, date) {
            Ok(Some(c)) => {
                tracing::info!(site = %c.site, date = %c.date, files = c.files_before, rows = c.rows_after, "compacted partition");
                done.push(c);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(site = %site, date = %date, error = %e, "partition not compacted; left as it was");
                metrics::counter!("footfall_compaction_failures_total").increment(1);
            }
        }
    }
    Ok(done)
}

/// Compact one partition, or rebuild its session hours when they are out of step.
fn compact_one(data: &DataDir, site: &SiteId, date: chrono::NaiveDate) -> Result<Option<Compacted>> {
    if let Some(c) = compact_partition(data, site, date)? {
        return Ok(Some(c));
    }
    if !sessions::in_step(data, site, date).map_err(io_err(&data.sessions_partition_dir(site, date)))? {
        sessions::rebuild(data, site, date, None)?;
        tracing::info!(site = %site, date = %date, "rebuilt session hours");
    }
    Ok(None)
}

/// Delete session hours of other layout versions (`sessions/v<N>` but the current one): no
/// reader reads them, and the current version is rebuilt from the events.
fn remove_other_session_versions(data: &DataDir) -> Result<()> {
    let current = data.sessions_dir();
    let Some(root) = current.parent() else { return Ok(()) };
    let Ok(entries) = std::fs::read_dir(root) else { return Ok(()) };
    for entry in entries {
        let p = entry.map_err(io_err(root))?.path();
        let versioned = p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
            n.strip_prefix('v').is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        });
        if versioned && p != current && p.is_dir() {
            std::fs::remove_dir_all(&p).map_err(io_err(&p))?;
            tracing::info!(path = %p.display(), "removed session hours of another layout version");
        }
    }
    Ok(())
}

/// Remove leftovers of a crash: staging directories and half-written temp files.
pub fn clean_leftovers(data: &DataDir) -> Result<()> {
    let staging = data.staging_dir();
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(io_err(&staging))?;
    }
    for (site, date) in data.partitions().map_err(io_err(&data.events_dir()))? {
        let dir = data.partition_dir(&site, date);
        for entry in std::fs::read_dir(&dir).map_err(io_err(&dir))? {
            let p = entry.map_err(io_err(&dir))?.path();
            if p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.') && n.ends_with(".tmp")) {
                std::fs::remove_file(&p).map_err(io_err(&p))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Event, schema::to_record_batch};
    use arrow::array::{AsArray, RecordBatch};

    fn ev(id: &str, visitor: &str, ts: i64) -> Event {
        Event {
            event_id: id.into(),
            site: "s".into(),
            visitor_id: visitor.into(),
            ts,
            name: "pageview".into(),
            session_id: "x".into(),
            ..Default::default()
        }
    }

    #[test]
    fn merges_files_dedupes_and_leaves_one_sorted_file() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = DataDir::new(tmp.path());
        let site = SiteId::parse("s").expect("site");
        let date = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("date");
        let f1 = to_record_batch(&[ev("e1", "b", 3), ev("e2", "a", 2)]).expect("batch");
        let f2 = to_record_batch(&[ev("e2", "a", 2), ev("e3", "a", 1)]).expect("batch");
        write_file(&data.data_file(&site, date, Ulid::from_parts(1, 1)), &f1).expect("write");
        write_file(&data.data_file(&site, date, Ulid::from_parts(2, 1)), &f2).expect("write");
        let guard = StoreGuard::default();
        let done = compact_all(&data, &guard).expect("compact");
        assert_eq!(done.len(), 1);
        assert_eq!((done[0].files_before, done[0].rows_before, done[0].rows_after), (2, 4, 3));
        let files = data_files(&data.partition_dir(&site, date)).expect("list");
        assert_eq!(files.len(), 1);
        let out = super::super::parquet::read_file(&files[0]).expect("read");
        let ids: Vec<_> = out.column_by_name("event_id").expect("col").as_string::<i32>().iter().flatten().collect();
        assert_eq!(ids, vec!["e3", "e2", "e1"]);
        assert!(!data.staging_dir().read_dir().expect("staging").any(|_| true));
        // A single-file partition is left alone.
        assert!(compact_all(&data, &guard).expect("compact").is_empty());
    }

    /// A store written before the once-ledger holds an order on Jan 1 and a repeat of it on
    /// Jan 2: the ledger rebuilt from the files names Jan 1's copy first, and compacting Jan 2
    /// drops the repeat (and nothing else).
    #[test]
    fn compaction_keeps_only_the_first_copy_of_an_order_across_days() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = DataDir::new(tmp.path());
        let site = SiteId::parse("s").expect("site");
        let day = |d| chrono::NaiveDate::from_ymd_opt(1970, 1, d).expect("date");
        let buy = |ts| Event { name: "purchase".into(), revenue: Some(30.0), ..ev("order-00ab", "a", ts) };
        let dayus = 86_400_000_000;
        write_file(&data.data_file(&site, day(1), Ulid::from_parts(1, 1)), &to_record_batch(&[buy(5)]).expect("b"))
            .expect("write");
        let second = to_record_batch(&[buy(dayus + 5), ev("e1", "a", dayus + 6)]).expect("batch");
        write_file(&data.data_file(&site, day(2), Ulid::from_parts(2, 1)), &second).expect("write");
        let other = to_record_batch(&[ev("e2", "b", dayus + 7)]).expect("batch");
        write_file(&data.data_file(&site, day(2), Ulid::from_parts(3, 1)), &other).expect("write");
        let done = compact_all(&data, &StoreGuard::default()).expect("compact");
        assert_eq!((done.len(), done[0].rows_before, done[0].rows_after), (1, 3, 2));
        let files = data_files(&data.partition_dir(&site, day(2))).expect("list");
        let out = super::super::parquet::read_file(&files[0]).expect("read");
        let mut ids: Vec<_> =
            out.column_by_name("event_id").expect("col").as_string::<i32>().iter().flatten().collect();
        ids.sort_unstable();
        assert_eq!(ids, vec!["e1", "e2"]);
        assert!(data.once_ledger_dir(&site).join("1970-01-01.parquet").exists());
    }

    #[test]
    fn session_hours_of_another_version_are_removed_and_the_current_rebuilt() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = DataDir::new(tmp.path());
        let site = SiteId::parse("s").expect("site");
        let date = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("date");
        let batch = to_record_batch(&[ev("e1", "a", 1)]).expect("batch");
        write_file(&data.data_file(&site, date, Ulid::from_parts(1, 1)), &batch).expect("write");
        let root = data.sessions_dir().parent().expect("sessions root").to_owned();
        let old = root.join("v1").join("site=s");
        std::fs::create_dir_all(&old).expect("old version");
        std::fs::write(old.join("x.parquet"), b"old").expect("old file");
        // Not a version directory: kept.
        std::fs::create_dir_all(root.join("vnotes")).expect("other dir");
        assert!(!sessions::in_step(&data, &site, date).expect("in step"));
        assert!(compact_all(&data, &StoreGuard::default()).expect("compact").is_empty());
        assert!(!root.join("v1").exists());
        assert!(root.join("vnotes").exists());
        assert!(sessions::in_step(&data, &site, date).expect("in step"));
    }

    #[test]
    fn one_partition_that_cannot_be_compacted_does_not_stop_the_others() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = DataDir::new(tmp.path());
        let site = SiteId::parse("s").expect("site");
        let day = |d| chrono::NaiveDate::from_ymd_opt(1970, 1, d).expect("date");
        for d in [1u32, 2] {
            for n in [1u64, 2] {
                let b = to_record_batch(&[ev(&format!("e{d}{n}"), "a", i64::from(d) * 86_400_000_000)]).expect("batch");
                write_file(&data.data_file(&site, day(d), Ulid::from_parts(n, 1)), &b).expect("write");
            }
        }
        // Day 1 also holds a file that is not Parquet at all.
        std::fs::write(data.data_file(&site, day(1), Ulid::from_parts(3, 1)), b"not parquet").expect("write");
        let done = compact_all(&data, &StoreGuard::default()).expect("the pass itself succeeds");
        assert_eq!(done.iter().map(|c| c.date.as_str()).collect::<Vec<_>>(), vec!["1970-01-02"]);
        assert_eq!(data_files(&data.partition_dir(&site, day(1))).expect("list").len(), 3, "left as it was");
        assert_eq!(data_files(&data.partition_dir(&site, day(2))).expect("list").len(), 1);
    }

    /// A file another writer made, whose `props` map names its parts `key_value`, `key` and
    /// `value` (pyarrow's and Spark's names), is read and rewritten with ours.
    #[test]
    fn a_map_named_by_another_writer_is_read_and_rewritten() {
        use arrow::array::{MapBuilder, MapFieldNames, StringBuilder};
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = DataDir::new(tmp.path());
        let site = SiteId::parse("s").expect("site");
        let date = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("date");
        let with_props = |id: &str, ts| {
            let mut e = ev(id, "a", ts);
            e.props.insert("plan".into(), "pro".into());
            e
        };
        let ours = to_record_batch(&[with_props("e1", 1)]).expect("batch");
        write_file(&data.data_file(&site, date, Ulid::from_parts(1, 1)), &ours).expect("write");
        let names = MapFieldNames { entry: "key_value".into(), key: "key".into(), value: "value".into() };
        let mut m = MapBuilder::new(Some(names), StringBuilder::new(), StringBuilder::new());
        m.keys().append_value("plan");
        m.values().append_value("team");
        m.append(true).expect("map");
        let theirs_map = std::sync::Arc::new(m.finish()) as arrow::array::ArrayRef;
        let other = to_record_batch(&[with_props("e2", 2)]).expect("batch");
        let i = other.schema().index_of("props").expect("props");
        let mut fields: Vec<arrow::datatypes::FieldRef> = other.schema().fields().iter().cloned().collect();
        fields[i] = std::sync::Arc::new(arrow::datatypes::Field::new("props", theirs_map.data_type().clone(), true));
        let mut cols = other.columns().to_vec();
        cols[i] = theirs_map;
        let theirs =
            RecordBatch::try_new(std::sync::Arc::new(arrow::datatypes::Schema::new(fields)), cols).expect("batch");
        assert_ne!(theirs.schema().field(i).data_type(), ours.schema().field(i).data_type());
        let path = data.data_file(&site, date, Ulid::from_parts(2, 1));
        let mut w =
            parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&path).expect("file"), theirs.schema(), None)
                .expect("writer");
        w.write(&theirs).expect("write");
        w.close().expect("close");
        let done = compact_all(&data, &StoreGuard::default()).expect("compact");
        assert_eq!(done.len(), 1);
        let files = data_files(&data.partition_dir(&site, date)).expect("list");
        let out = super::super::parquet::read_file(&files[0]).expect("read");
        assert_eq!(out.schema(), crate::model::schema::file_schema());
        let props = out.column_by_name("props").expect("props").as_map();
        let values: Vec<_> = props.values().as_string::<i32>().iter().flatten().collect();
        assert_eq!(values, vec!["pro", "team"]);
    }
}
