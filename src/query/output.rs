//! Rendering query results as a table, CSV or JSON.
//!
//! CSV is opened in spreadsheets, where a cell starting with `=`, `+`, `-`, `@`, a tab or a
//! carriage return is a formula (`=HYPERLINK(...)` in a user id or a page title runs there). As
//! OWASP advises for CSV injection, such text cells are written with a leading `'`, which
//! spreadsheets show as text; numbers are written as they are.

use std::borrow::Cow;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, RecordBatch, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema};
use arrow::error::ArrowError;

/// A text cell as it is safe to write to CSV (see the module doc).
pub fn csv_safe(s: &str) -> Cow<'_, str> {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) { Cow::Owned(format!("'{s}")) } else { Cow::Borrowed(s) }
}

/// `batch` with every text column made [`csv_safe`], and every list, map or struct as JSON text.
pub(crate) fn csv_safe_batch(batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    for (f, c) in batch.schema().fields().iter().zip(batch.columns()) {
        if f.data_type().is_nested() {
            // CSV has no form for a list, a map or a struct: JSON text, as Postgres clients get.
            fields.push(Field::new(f.name(), DataType::Utf8, f.is_nullable()));
            columns.push(Arc::new(super::json::json_text(c.as_ref())?));
        } else if matches!(f.data_type(), DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) {
            let text = cast(c, &DataType::Utf8)?;
            let safe: StringArray =
                text.as_string::<i32>().iter().map(|v| v.map(|s| csv_safe(s).into_owned())).collect();
            fields.push(Field::new(f.name(), DataType::Utf8, f.is_nullable()));
            columns.push(Arc::new(safe));
        } else {
            fields.push(f.as_ref().clone());
            columns.push(c.clone());
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
}

/// How to print rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned text table.
    Table,
    /// CSV with a header row.
    Csv,
    /// A JSON array of objects.
    Json,
}

/// Render `batches` in `format`.
pub fn render(batches: &[RecordBatch], format: Format) -> Result<String, ArrowError> {
    match format {
        Format::Table => Ok(arrow::util::pretty::pretty_format_batches(batches)?.to_string()),
        Format::Csv => {
            let mut w = arrow_csv::WriterBuilder::new().with_header(true).build(Vec::new());
            for b in batches {
                w.write(&csv_safe_batch(b)?)?;
            }
            Ok(String::from_utf8_lossy(&w.into_inner()).into_owned())
        }
        Format::Json => {
            let mut w = arrow_json::ArrayWriter::new(Vec::new());
            for b in batches {
                w.write(b)?;
            }
            w.finish()?;
            Ok(String::from_utf8_lossy(&w.into_inner()).into_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("page", DataType::Utf8, true),
            Field::new("n", DataType::Int64, false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![Arc::new(StringArray::from(vec![Some("/a"), None])), Arc::new(Int64Array::from(vec![3, 1]))],
        )
        .expect("batch")
    }

    #[test]
    fn csv_neutralises_formulas_in_text_but_not_numbers() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("user", DataType::Utf8, true),
            Field::new("n", DataType::Int64, false),
        ]));
        let users = vec![
            Some("=HYPERLINK(\"http://x\")"),
            Some("+1"),
            Some("-2"),
            Some("@SUM(A1)"),
            Some("\tx"),
            Some("a=b"),
            None,
        ];
        let b = RecordBatch::try_new(
            schema,
            vec![Arc::new(StringArray::from(users)), Arc::new(Int64Array::from(vec![-5, 1, 2, 3, 4, 5, 6]))],
        )
        .expect("batch");
        assert_eq!(
            render(&[b], Format::Csv).expect("csv"),
            "user,n\n\"'=HYPERLINK(\"\"http://x\"\")\",-5\n'+1,1\n'-2,2\n'@SUM(A1),3\n'\tx,4\na=b,5\n,6\n"
        );
    }

    #[test]
    fn csv_writes_lists_as_json_text() {
        use arrow::array::{Array, ListArray, TimestampMicrosecondArray};
        let times = TimestampMicrosecondArray::from(vec![1_000_000, 61_500_000]).with_timezone("UTC");
        let list = ListArray::new(
            Arc::new(Field::new_list_field(times.data_type().clone(), true)),
            arrow::buffer::OffsetBuffer::from_lengths([2, 0]),
            Arc::new(times),
            Some(vec![true, true].into()),
        );
        let schema = Arc::new(Schema::new(vec![Field::new("e", list.data_type().clone(), true)]));
        let b = RecordBatch::try_new(schema, vec![Arc::new(list)]).expect("batch");
        assert_eq!(
            render(&[b], Format::Csv).expect("csv"),
            "e\n\"[\"\"1970-01-01T00:00:01Z\"\",\"\"1970-01-01T00:01:01.500Z\"\"]\"\n[]\n"
        );
    }

    #[test]
    fn formats() {
        assert_eq!(render(&[batch()], Format::Csv).expect("csv"), "page,n\n/a,3\n,1\n");
        assert_eq!(render(&[batch()], Format::Json).expect("json"), r#"[{"page":"/a","n":3},{"n":1}]"#);
        let table = render(&[batch()], Format::Table).expect("table");
        assert!(table.contains("| page | n |") && table.contains("| /a   | 3 |"), "{table}");
    }
}
