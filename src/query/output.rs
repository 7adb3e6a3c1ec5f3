//! Rendering query results as a table, CSV or JSON.

use arrow::array::RecordBatch;
use arrow::error::ArrowError;

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
                w.write(b)?;
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
    fn formats() {
        assert_eq!(render(&[batch()], Format::Csv).expect("csv"), "page,n\n/a,3\n,1\n");
        assert_eq!(render(&[batch()], Format::Json).expect("json"), r#"[{"page":"/a","n":3},{"n":1}]"#);
        let table = render(&[batch()], Format::Table).expect("table");
        assert!(table.contains("| page | n |") && table.contains("| /a   | 3 |"), "{table}");
    }
}
