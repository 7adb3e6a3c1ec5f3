//! Export: a site's events, a date range of them, or one person's (a subject-access request,
//! GDPR art. 15), as NDJSON, CSV or Parquet, streamed batch by batch to any writer
//! (`footfall export`, `GET /api/sites/{site}/people/{id}/export`).
//!
//! Rows are the `events` table's (every stored column, `person_id` as resolved now, `site`,
//! `date`). One person's are the rows `footfall forget` would remove: the user's, and every
//! event of each device linked to the user (by an `identify`, or by an event carrying the user
//! id). One person's rows come in time order; a whole site's in storage order (day by day,
//! by visitor and time within a day), so an export of any size needs no sort.

use std::io::Write;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use chrono::NaiveDate;
use datafusion::common::ParamValues;
use datafusion::scalar::ScalarValue;
use futures::StreamExt as _;

use crate::model::SiteId;
use crate::query::{self, QueryLimits, Scope};
use crate::store::forget::Subject;
use crate::store::identity::IdentityMap;
use crate::store::paths::DataDir;

/// The file format of an export.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per line.
    #[default]
    Ndjson,
    /// CSV with a header; `items` and `props` as JSON text; formula-like text cells neutralised.
    Csv,
    /// Parquet (zstd), the `events` table's types.
    Parquet,
}

/// What to export.
#[derive(Clone, Debug)]
pub struct ExportRequest {
    pub site: SiteId,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub person: Option<Subject>,
}

/// Write the export to `out`; returns the rows written.
pub async fn export<W: Write + Send>(
    data: &DataDir,
    req: &ExportRequest,
    format: ExportFormat,
    out: W,
) -> anyhow::Result<usize> {
    let mut sql = "SELECT * FROM events WHERE site = $1".to_owned();
    let mut params = vec![ScalarValue::Utf8(Some(req.site.as_str().to_owned()))];
    let mut bind = |sql: &mut String, cond: &str, v: ScalarValue| {
        params.push(v);
        sql.push_str(&format!(" AND {cond} ${}", params.len()));
    };
    if let Some(d) = req.from {
        bind(&mut sql, "date >=", ScalarValue::Date32(Some(days(d))));
    }
    if let Some(d) = req.to {
        bind(&mut sql, "date <=", ScalarValue::Date32(Some(days(d))));
    }
    if let Some(who) = &req.person {
        // The rows `footfall forget` would remove: the user's, and every linked device's.
        let map = IdentityMap::load(data, &req.site)?.unwrap_or_default();
        let person = crate::store::forget::resolve(data, &req.site, &map, who)?;
        let mut any = Vec::new();
        if let Some(u) = person.user {
            params.push(ScalarValue::Utf8(Some(u)));
            any.push(format!("user_id = ${}", params.len()));
        }
        for v in person.visitors {
            params.push(ScalarValue::Utf8(Some(v)));
            any.push(format!("visitor_id = ${}", params.len()));
        }
        let any = if any.is_empty() { "FALSE".to_owned() } else { any.join(" OR ") };
        sql.push_str(&format!(" AND ({any}) ORDER BY ts, event_id"));
    }
    let limits = QueryLimits { timeout: std::time::Duration::from_secs(24 * 3600), ..QueryLimits::default() };
    let ctx = query::session(data, &Scope::Sites(vec![req.site.clone()]), &limits).await?;
    let df = ctx.sql(&sql).await?.with_param_values(ParamValues::List(params.into_iter().map(Into::into).collect()))?;
    let schema = Arc::new(df.schema().as_arrow().clone());
    let mut stream = df.execute_stream().await?;
    let mut sink = Sink::new(format, out, schema)?;
    let mut rows = 0;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        rows += batch.num_rows();
        sink.write(&batch)?;
    }
    sink.finish()?;
    Ok(rows)
}

fn days(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()).num_days() as i32
}

enum Sink<W: Write + Send> {
    Ndjson(arrow_json::LineDelimitedWriter<W>),
    Csv(arrow_csv::Writer<W>),
    Parquet(parquet::arrow::ArrowWriter<W>),
}

impl<W: Write + Send> Sink<W> {
    fn new(format: ExportFormat, out: W, schema: arrow::datatypes::SchemaRef) -> anyhow::Result<Self> {
        Ok(match format {
            ExportFormat::Ndjson => Self::Ndjson(arrow_json::LineDelimitedWriter::new(out)),
            ExportFormat::Csv => Self::Csv(arrow_csv::WriterBuilder::new().with_header(true).build(out)),
            ExportFormat::Parquet => {
                let props = parquet::file::properties::WriterProperties::builder()
                    .set_compression(parquet::basic::Compression::ZSTD(parquet::basic::ZstdLevel::try_new(3)?))
                    .build();
                Self::Parquet(parquet::arrow::ArrowWriter::try_new(out, schema, Some(props))?)
            }
        })
    }

    fn write(&mut self, batch: &RecordBatch) -> anyhow::Result<()> {
        match self {
            Self::Ndjson(w) => w.write(batch)?,
            Self::Csv(w) => w.write(&crate::query::output::csv_safe_batch(&nested_as_json(batch)?)?)?,
            Self::Parquet(w) => w.write(batch)?,
        }
        Ok(())
    }

    fn finish(self) -> anyhow::Result<()> {
        match self {
            Self::Ndjson(mut w) => {
                w.finish()?;
                w.into_inner().flush()?;
            }
            Self::Csv(w) => w.into_inner().flush()?,
            Self::Parquet(w) => {
                w.close()?;
            }
        }
        Ok(())
    }
}

/// `batch` with every list, struct and map column as its JSON text (CSV has no nesting).
fn nested_as_json(batch: &RecordBatch) -> anyhow::Result<RecordBatch> {
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    for (f, c) in batch.schema().fields().iter().zip(batch.columns()) {
        if f.data_type().is_nested() {
            fields.push(Field::new(f.name(), DataType::Utf8, true));
            columns.push(Arc::new(json_texts(f.name(), c)?));
        } else {
            fields.push(f.as_ref().clone());
            columns.push(c.clone());
        }
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?)
}

/// Each value of a nested column as JSON text (NULL stays NULL): written as one-column JSON
/// lines `{"<name>":<value>}` by arrow-json, and the value cut out of each line.
fn json_texts(name: &str, column: &ArrayRef) -> anyhow::Result<StringArray> {
    let one = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new(name, column.data_type().clone(), true)])),
        vec![column.clone()],
    )?;
    let mut w = arrow_json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, arrow_json::writer::LineDelimited>(Vec::new());
    w.write(&one)?;
    w.finish()?;
    let text = String::from_utf8(w.into_inner())?;
    let prefix = format!("{}:", serde_json::to_string(name)?);
    Ok(text
        .lines()
        .map(|l| {
            let v = l.strip_prefix('{').and_then(|l| l.strip_prefix(prefix.as_str())).and_then(|l| l.strip_suffix('}'));
            v.filter(|v| *v != "null").map(str::to_owned)
        })
        .collect())
}
