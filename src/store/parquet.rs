//! Writing and reading the Parquet data files.
//!
//! Files are zstd-compressed, dictionary-encoded (except the unique `event_id` and the
//! timestamps), carry page statistics, declare their sort order (visitor_id, ts) and record
//! the schema version. A file is written under a temporary name, fsynced, renamed into place,
//! and the directory fsynced: readers only ever see whole files.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch, UInt32Array};
use arrow::compute::{self, SortColumn, SortOptions};
use arrow::error::ArrowError;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::{KeyValue, SortingColumn};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use crate::model::schema::{SCHEMA_VERSION, SCHEMA_VERSION_KEY, conform, file_schema};
use crate::wal::sync_dir;

/// Store errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("I/O error on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("Parquet error on {path}: {source}")]
    Parquet { path: PathBuf, source: parquet::errors::ParquetError },
    #[error("Arrow error: {0}")]
    Arrow(#[from] ArrowError),
    #[error(transparent)]
    Wal(#[from] crate::wal::Error),
}

/// `Result` with the store's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_owned(), source }
}

fn pq_err(path: &Path) -> impl FnOnce(parquet::errors::ParquetError) -> Error + '_ {
    move |source| Error::Parquet { path: path.to_owned(), source }
}

fn writer_properties() -> WriterProperties {
    let schema = file_schema();
    let col = |name: &str| schema.index_of(name).expect("column exists in file schema");
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).expect("zstd level 3 is valid")))
        .set_dictionary_enabled(true)
        .set_column_dictionary_enabled(ColumnPath::from("event_id"), false)
        .set_column_dictionary_enabled(ColumnPath::from("ts"), false)
        .set_column_dictionary_enabled(ColumnPath::from("client_ts"), false)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_sorting_columns(Some(vec![
            SortingColumn { column_idx: col("visitor_id") as i32, descending: false, nulls_first: false },
            SortingColumn { column_idx: col("ts") as i32, descending: false, nulls_first: false },
        ]))
        .set_key_value_metadata(Some(vec![KeyValue::new(SCHEMA_VERSION_KEY.to_owned(), SCHEMA_VERSION.to_string())]))
        .build()
}

/// Keep the first row of each `event_id` (rows arrive oldest first), then sort by
/// (visitor_id, ts, event_id).
pub fn sort_dedupe(batch: &RecordBatch) -> Result<RecordBatch> {
    let ids = batch.column_by_name("event_id").expect("event_id column").as_string::<i32>();
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    let keep: BooleanArray = ids.iter().map(|id| Some(seen.insert(id.unwrap_or_default()))).collect();
    let batch = compute::filter_record_batch(batch, &keep)?;
    let sort_key = |name: &str| SortColumn {
        values: batch.column_by_name(name).expect("sort column exists").clone(),
        options: Some(SortOptions { descending: false, nulls_first: false }),
    };
    let order: UInt32Array =
        compute::lexsort_to_indices(&[sort_key("visitor_id"), sort_key("ts"), sort_key("event_id")], None)?;
    let cols =
        batch.columns().iter().map(|c| compute::take(c.as_ref(), &order, None)).collect::<Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(batch.schema(), cols)?)
}

/// Write a data file `batch` to `path` atomically (temp file, fsync, rename, fsync directory).
pub fn write_file(path: &Path, batch: &RecordBatch) -> Result<()> {
    write_atomic(path, batch, writer_properties())
}

/// Write a small per-site file (the identity map, the once-ledger) atomically, zstd level 3.
pub(crate) fn write_site_file(path: &Path, batch: &RecordBatch) -> Result<()> {
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).expect("zstd level 3 is valid")))
        .build();
    write_atomic(path, batch, props)
}

/// Write `batch` to `path` with `props`, atomically: readers see the old file or the new one.
pub(crate) fn write_atomic(path: &Path, batch: &RecordBatch, props: WriterProperties) -> Result<()> {
    let dir = path.parent().expect("data files live in a partition directory");
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let tmp = super::paths::DataDir::temp_file(path);
    let file = File::create(&tmp).map_err(io_err(&tmp))?;
    let mut w = ArrowWriter::try_new(file, batch.schema(), Some(props)).map_err(pq_err(&tmp))?;
    w.write(batch).map_err(pq_err(&tmp))?;
    let file = w.into_inner().map_err(pq_err(&tmp))?;
    file.sync_all().map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))?;
    sync_dir(dir).map_err(io_err(dir))?;
    Ok(())
}

/// Read a whole data file into one batch of the current [`file_schema`] (a file of an older
/// schema version gets NULLs for the columns it lacks).
pub fn read_file(path: &Path) -> Result<RecordBatch> {
    let file = File::open(path).map_err(io_err(path))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file).map_err(pq_err(path))?.build().map_err(pq_err(path))?;
    let batches = reader.map(|b| conform(&b?)).collect::<Result<Vec<_>, _>>()?;
    Ok(compute::concat_batches(&file_schema(), &batches)?)
}

/// Read only the columns `names` of a Parquet file (any schema version; a name the file lacks
/// is left out).
pub(crate) fn read_columns(path: &Path, names: &[&str]) -> Result<Vec<RecordBatch>> {
    let file = File::open(path).map_err(io_err(path))?;
    let b = ParquetRecordBatchReaderBuilder::try_new(file).map_err(pq_err(path))?;
    let roots: Vec<usize> = names.iter().filter_map(|n| b.schema().index_of(n).ok()).collect();
    let mask = parquet::arrow::ProjectionMask::roots(b.parquet_schema(), roots);
    let reader = b.with_projection(mask).build().map_err(pq_err(path))?;
    Ok(reader.collect::<Result<Vec<_>, _>>()?)
}

/// [`read_columns`] for a rebuild from every data file of a site (the identity map, the
/// once-ledger): a file that cannot be read is logged and skipped, so one damaged file does not
/// stop every later flush and compaction of the site.
pub(crate) fn read_columns_or_skip(path: &Path, names: &[&str]) -> Result<Vec<RecordBatch>> {
    match read_columns(path, names) {
        Err(e @ (Error::Parquet { .. } | Error::Arrow(_))) => {
            tracing::error!(path = %path.display(), error = %e, "unreadable data file skipped in a rebuild");
            Ok(Vec::new())
        }
        other => other,
    }
}

/// Read several files (oldest first) into one batch.
pub fn read_files(paths: &[PathBuf]) -> Result<RecordBatch> {
    let batches = paths.iter().map(|p| read_file(p)).collect::<Result<Vec<_>>>()?;
    Ok(compute::concat_batches(&file_schema(), &batches)?)
}

/// Column `name` of `b`, or a schema error naming it.
pub(crate) fn column<'a>(b: &'a RecordBatch, name: &str) -> Result<&'a arrow::array::ArrayRef> {
    b.column_by_name(name).ok_or_else(|| Error::Arrow(ArrowError::SchemaError(format!("no column {name:?}"))))
}

/// Column `name` of `b` as plain text (whatever string type the file gave it).
pub(crate) fn text_column(b: &RecordBatch, name: &str) -> Result<arrow::array::StringArray> {
    Ok(compute::cast(column(b, name)?, &arrow::datatypes::DataType::Utf8)?.as_string::<i32>().clone())
}

/// Rows stored for `site` on the UTC dates `from..=to`, from the files' footers (no data read).
pub fn rows_between(
    data: &crate::store::paths::DataDir,
    site: &crate::model::SiteId,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
) -> Result<u64> {
    let mut rows = 0u64;
    for path in data.site_files(site, from..=to).map_err(io_err(&data.events_dir()))? {
        let file = File::open(&path).map_err(io_err(&path))?;
        let b = ParquetRecordBatchReaderBuilder::try_new(file).map_err(pq_err(&path))?;
        rows += u64::try_from(b.metadata().file_metadata().num_rows()).unwrap_or(0);
    }
    Ok(rows)
}

/// The schema version a file says it was written with.
pub fn file_schema_version(path: &Path) -> Result<Option<u32>> {
    let file = File::open(path).map_err(io_err(path))?;
    let b = ParquetRecordBatchReaderBuilder::try_new(file).map_err(pq_err(path))?;
    let kv = b.metadata().file_metadata().key_value_metadata().cloned().unwrap_or_default();
    Ok(kv.iter().find(|k| k.key == SCHEMA_VERSION_KEY).and_then(|k| k.value.as_deref()?.parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Event, Item, schema::to_record_batch};
    use proptest::prelude::*;

    fn event(id: &str, visitor: &str, ts: i64) -> Event {
        Event {
            event_id: id.into(),
            visitor_id: visitor.into(),
            ts,
            name: "pageview".into(),
            session_id: "s".into(),
            ..Default::default()
        }
    }

    #[test]
    fn sort_dedupe_keeps_first_copy_and_sorts() {
        let mut dup = event("e1", "b", 5);
        dup.name = "retry".into();
        let batch =
            to_record_batch(&[event("e1", "b", 5), event("e2", "a", 9), dup, event("e3", "a", 1)]).expect("batch");
        let out = sort_dedupe(&batch).expect("sort");
        let ids: Vec<_> = out.column_by_name("event_id").expect("col").as_string::<i32>().iter().flatten().collect();
        assert_eq!(ids, vec!["e3", "e2", "e1"]);
        let names: Vec<_> = out.column_by_name("name").expect("col").as_string::<i32>().iter().flatten().collect();
        assert!(!names.contains(&"retry"));
    }

    #[test]
    fn write_is_atomic_and_readable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p").join("01X.parquet");
        let mut e = event("e1", "v", 1_000);
        e.items = vec![Item {
            id: "sku".into(),
            name: Some("Mug".into()),
            category: None,
            price: Some(9.5),
            quantity: Some(2),
        }];
        e.props.insert("color".into(), "red".into());
        let batch = to_record_batch(&[e]).expect("batch");
        write_file(&path, &batch).expect("write");
        assert!(!crate::store::paths::DataDir::temp_file(&path).exists());
        assert_eq!(read_file(&path).expect("read"), batch);
        assert_eq!(file_schema_version(&path).expect("version"), Some(SCHEMA_VERSION));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn write_then_read_returns_the_batch(rows in prop::collection::vec(("[a-z]{1,6}", "[a-c]", 0i64..1_000_000, prop::option::of(0.0f64..1e6)), 1..40)) {
            let events: Vec<Event> = rows.iter().enumerate().map(|(i, (n, v, ts, rev))| Event {
                event_id: format!("id{i}"), name: n.clone(), visitor_id: v.clone(), ts: *ts, session_id: "s".into(),
                revenue: *rev, ..Default::default()
            }).collect();
            let batch = to_record_batch(&events).expect("batch");
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("f.parquet");
            write_file(&path, &batch).expect("write");
            prop_assert_eq!(read_file(&path).expect("read"), batch);
        }
    }
}
