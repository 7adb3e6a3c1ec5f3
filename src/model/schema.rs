//! The Arrow storage schema of the `events` table.
//!
//! Parquet files hold every column below except the partition columns `site` and `date`,
//! which live in the path (`events/site=<site>/date=<YYYY-MM-DD>/`). Each file records
//! [`SCHEMA_VERSION`] in its key-value metadata under [`SCHEMA_VERSION_KEY`]. Any change to
//! the columns bumps the version. Low-cardinality text columns are dictionary-encoded by
//! Parquet itself, so their Arrow type stays plain `Utf8`.
//!
//! Versions: 1 had no `person_id`; 2 adds it (the person as known when the row was written,
//! see `store::identity`); 3 adds `origin` (`browser`, or `server` for an event sent with the
//! site's write key). Files of older versions still read: a column a file lacks reads as NULL
//! ([`conform`]); the query layer resolves the person of such rows from `visitor_id`, and a
//! NULL origin counts as a browser's.

use std::sync::{Arc, LazyLock};

use arrow::array::{
    ArrayRef, Decimal128Builder, Int64Builder, ListBuilder, MapBuilder, RecordBatch, StringArray, StringBuilder,
    StructBuilder, TimestampMicrosecondBuilder, new_null_array,
};
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;

use super::Event;

/// Version of the storage schema; written into every Parquet file.
pub const SCHEMA_VERSION: u32 = 3;
/// Parquet key-value metadata key holding [`SCHEMA_VERSION`].
pub const SCHEMA_VERSION_KEY: &str = "footfall.schema_version";
/// Money columns: Decimal128 with this precision and scale (exact sums, 4 decimals).
pub const MONEY_PRECISION: u8 = 18;
/// See [`MONEY_PRECISION`].
pub const MONEY_SCALE: i8 = 4;

/// How a stored column is filled from an event.
#[derive(Clone, Copy)]
enum Fill {
    Text(fn(&Event) -> Option<&str>),
    Time(fn(&Event) -> Option<i64>),
    /// `person_id`: the event's own person; the flusher re-stamps it from the identity map.
    Person,
    Money,
    Items,
    Props,
}

/// One stored column of `events`: the column catalogue the Parquet schema, the batch builder,
/// the reports' dimension list and `GET /api/dimensions` are all derived from.
pub struct Column {
    pub name: &'static str,
    fill: Fill,
    pub nullable: bool,
    /// The dimension reports filter and break down by this column as: (request name, label).
    pub dimension: Option<(&'static str, &'static str)>,
}

const fn text(
    name: &'static str,
    f: fn(&Event) -> Option<&str>,
    dimension: Option<(&'static str, &'static str)>,
) -> Column {
    Column { name, fill: Fill::Text(f), nullable: true, dimension }
}

const fn required(
    name: &'static str,
    f: fn(&Event) -> Option<&str>,
    dimension: Option<(&'static str, &'static str)>,
) -> Column {
    Column { name, fill: Fill::Text(f), nullable: false, dimension }
}

/// Every stored column, in storage order (`site` and `date` live in the path, see
/// [`partition_fields`]).
pub const COLUMNS: [Column; 32] = [
    required("event_id", |e| Some(&e.event_id), None),
    Column { name: "ts", fill: Fill::Time(|e| Some(e.ts)), nullable: false, dimension: None },
    Column { name: "client_ts", fill: Fill::Time(|e| e.client_ts), nullable: true, dimension: None },
    required("name", |e| Some(&e.name), Some(("event", "Event"))),
    required("visitor_id", |e| Some(&e.visitor_id), None),
    text("user_id", |e| e.user_id.as_deref(), None),
    required("session_id", |e| Some(&e.session_id), None),
    // Nullable: files of schema version 1 do not have it.
    Column { name: "person_id", fill: Fill::Person, nullable: true, dimension: None },
    text("url", |e| e.url.as_deref(), None),
    text("path", |e| e.path.as_deref(), Some(("page", "Page"))),
    text("hostname", |e| e.hostname.as_deref(), Some(("hostname", "Hostname"))),
    text("referrer", |e| e.referrer.as_deref(), Some(("referrer", "Referrer"))),
    text("source", |e| e.source.as_deref(), Some(("source", "Source"))),
    text("medium", |e| e.medium.as_deref(), Some(("medium", "Medium"))),
    text("campaign", |e| e.campaign.as_deref(), Some(("campaign", "Campaign"))),
    text("term", |e| e.term.as_deref(), Some(("term", "Term"))),
    text("content", |e| e.content.as_deref(), Some(("content", "Content"))),
    text("channel", |e| e.channel.as_deref(), Some(("channel", "Channel"))),
    text("country", |e| e.country.as_deref(), Some(("country", "Country"))),
    text("region", |e| e.region.as_deref(), Some(("region", "Region"))),
    text("city", |e| e.city.as_deref(), Some(("city", "City"))),
    text("browser", |e| e.browser.as_deref(), Some(("browser", "Browser"))),
    text("browser_version", |e| e.browser_version.as_deref(), Some(("browser_version", "Browser version"))),
    text("os", |e| e.os.as_deref(), Some(("os", "OS"))),
    text("os_version", |e| e.os_version.as_deref(), Some(("os_version", "OS version"))),
    text("device", |e| e.device.as_deref(), Some(("device", "Device"))),
    text("currency", |e| e.currency.as_deref(), Some(("currency", "Currency"))),
    text("order_id", |e| e.order_id.as_deref(), None),
    Column { name: "revenue", fill: Fill::Money, nullable: true, dimension: None },
    Column { name: "items", fill: Fill::Items, nullable: true, dimension: None },
    Column { name: "props", fill: Fill::Props, nullable: true, dimension: None },
    // `browser` or `server` (sent with a write key); NULL in files of schema versions 1 and 2.
    text("origin", |e| e.origin.as_deref(), None),
];

/// Dimensions that are not a stored column: (request name, label). `entry_page` is the path of
/// the session's first pageview.
pub const SESSION_DIMENSIONS: [(&str, &str); 1] = [("entry_page", "Entry page")];

/// Every column dimension: (request name, column, label), in storage order.
pub fn column_dimensions() -> impl Iterator<Item = (&'static str, &'static str, &'static str)> {
    COLUMNS.iter().filter_map(|c| c.dimension.map(|(name, label)| (name, c.name, label)))
}

impl Column {
    fn data_type(&self) -> DataType {
        match self.fill {
            Fill::Text(_) | Fill::Person => DataType::Utf8,
            Fill::Time(_) => ts_type(),
            Fill::Money => money_type(),
            Fill::Items => DataType::List(Arc::new(Field::new("item", DataType::Struct(item_fields()), true))),
            Fill::Props => DataType::Map(Arc::new(map_entries()), false),
        }
    }

    /// This column of `events`.
    fn build(&self, events: &[Event]) -> ArrayRef {
        match self.fill {
            Fill::Text(f) => text_column(events, f),
            Fill::Time(f) => ts_column(events, f),
            Fill::Person => Arc::new(
                events
                    .iter()
                    .map(|e| Some(super::person_id(e.user_id.as_deref(), &e.visitor_id)))
                    .collect::<StringArray>(),
            ),
            Fill::Money => {
                let mut revenue = money_builder();
                for e in events {
                    revenue.append_option(e.revenue.and_then(money_to_decimal));
                }
                Arc::new(revenue.finish())
            }
            Fill::Items => items_column(events),
            Fill::Props => props_column(events),
        }
    }
}

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn money_type() -> DataType {
    DataType::Decimal128(MONEY_PRECISION, MONEY_SCALE)
}

fn item_fields() -> Fields {
    Fields::from(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("category", DataType::Utf8, true),
        Field::new("price", money_type(), true),
        Field::new("quantity", DataType::Int64, true),
    ])
}

fn map_entries() -> Field {
    Field::new(
        "entries",
        DataType::Struct(Fields::from(vec![
            Field::new("keys", DataType::Utf8, false),
            Field::new("values", DataType::Utf8, true),
        ])),
        false,
    )
}

static FILE_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(COLUMNS.iter().map(|c| Field::new(c.name, c.data_type(), c.nullable)).collect::<Vec<_>>()))
});

/// The schema of the columns stored inside each Parquet file.
pub fn file_schema() -> SchemaRef {
    FILE_SCHEMA.clone()
}

/// The partition columns, in path order: `site` (Utf8) then `date` (Date32).
pub fn partition_fields() -> Vec<Field> {
    vec![Field::new("site", DataType::Utf8, false), Field::new("date", DataType::Date32, false)]
}

/// Money as a Decimal128 value of [`MONEY_SCALE`]; `None` if it does not fit.
pub fn money_to_decimal(v: f64) -> Option<i128> {
    let scaled = (v * 10f64.powi(i32::from(MONEY_SCALE))).round();
    (scaled.is_finite() && scaled.abs() < 1e17).then_some(scaled as i128)
}

fn text_column<'a>(events: &'a [Event], f: impl Fn(&'a Event) -> Option<&'a str>) -> ArrayRef {
    let mut b = StringBuilder::with_capacity(events.len(), events.len() * 16);
    for e in events {
        b.append_option(f(e));
    }
    Arc::new(b.finish())
}

fn ts_column(events: &[Event], f: impl Fn(&Event) -> Option<i64>) -> ArrayRef {
    let mut b = TimestampMicrosecondBuilder::with_capacity(events.len()).with_timezone("UTC");
    for e in events {
        b.append_option(f(e));
    }
    Arc::new(b.finish())
}

fn money_builder() -> Decimal128Builder {
    Decimal128Builder::new().with_data_type(money_type())
}

fn items_column(events: &[Event]) -> ArrayRef {
    let item_builder = StructBuilder::new(
        item_fields(),
        vec![
            Box::new(StringBuilder::new()),
            Box::new(StringBuilder::new()),
            Box::new(StringBuilder::new()),
            Box::new(money_builder()),
            Box::new(Int64Builder::new()),
        ],
    );
    let field = Arc::new(Field::new("item", DataType::Struct(item_fields()), true));
    let mut list = ListBuilder::new(item_builder).with_field(field);
    for e in events {
        if e.items.is_empty() {
            list.append_null();
            continue;
        }
        let sb = list.values();
        for it in &e.items {
            append_item(sb, it);
        }
        list.append(true);
    }
    Arc::new(list.finish())
}

fn append_item(sb: &mut StructBuilder, it: &super::Item) {
    macro_rules! field {
        ($i:expr, $t:ty) => {
            sb.field_builder::<$t>($i).expect("item field builders match item_fields()")
        };
    }
    field!(0, StringBuilder).append_value(&it.id);
    field!(1, StringBuilder).append_option(it.name.as_deref());
    field!(2, StringBuilder).append_option(it.category.as_deref());
    field!(3, Decimal128Builder).append_option(it.price.and_then(money_to_decimal));
    field!(4, Int64Builder).append_option(it.quantity);
    sb.append(true);
}

fn props_column(events: &[Event]) -> ArrayRef {
    let mut b = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new()).with_values_field(Field::new(
        "values",
        DataType::Utf8,
        true,
    ));
    for e in events {
        if e.props.is_empty() {
            b.append(false).expect("map builder keys and values stay aligned");
            continue;
        }
        for (k, v) in &e.props {
            b.keys().append_value(k);
            b.values().append_value(v);
        }
        b.append(true).expect("map builder keys and values stay aligned");
    }
    Arc::new(b.finish())
}

/// `batch` (read from a file of any schema version) as a batch of [`file_schema`]: columns in
/// storage order, a column the file lacks as NULLs. Fails on a required column that is missing.
pub fn conform(batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    let schema = file_schema();
    if batch.schema() == schema {
        return Ok(batch.clone());
    }
    let cols = schema
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(c) if c.data_type() == f.data_type() => Ok(c.clone()),
            // Another writer's names for nested parts (a map's `key_value`/`key`/`value`, a
            // list's `element`): the same layout, renamed to ours.
            Some(c) if c.data_type().equals_datatype(f.data_type()) => {
                Ok(arrow::array::make_array(renamed(c.to_data(), f.data_type())?))
            }
            Some(c) => Ok(c.clone()),
            None if f.is_nullable() => Ok(new_null_array(f.data_type(), batch.num_rows())),
            None => Err(ArrowError::SchemaError(format!("data file has no column {:?}", f.name()))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(schema, cols)
}

/// `data` with the type `to`, which differs from its own only in the names of nested fields
/// (checked by the caller with `equals_datatype`), its children renamed likewise.
fn renamed(data: arrow::array::ArrayData, to: &DataType) -> Result<arrow::array::ArrayData, ArrowError> {
    let child_types: Vec<DataType> = match to {
        DataType::List(f) | DataType::LargeList(f) | DataType::Map(f, _) => vec![f.data_type().clone()],
        DataType::Struct(fields) => fields.iter().map(|f| f.data_type().clone()).collect(),
        _ => Vec::new(),
    };
    let children = match child_types.is_empty() {
        true => data.child_data().to_vec(),
        false => data
            .child_data()
            .iter()
            .zip(&child_types)
            .map(|(c, t)| renamed(c.clone(), t))
            .collect::<Result<Vec<_>, _>>()?,
    };
    data.into_builder().data_type(to.clone()).child_data(children).build()
}

/// Turn events into one RecordBatch of [`file_schema`], in the given order.
pub fn to_record_batch(events: &[Event]) -> Result<RecordBatch, ArrowError> {
    RecordBatch::try_new(file_schema(), COLUMNS.iter().map(|c| c.build(events)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(19.99, Some(199_900))]
    #[case(0.1 + 0.2, Some(3_000))]
    #[case(0.0, Some(0))]
    #[case(f64::NAN, None)]
    #[case(1e20, None)]
    fn money_is_exact_to_four_decimals(#[case] v: f64, #[case] want: Option<i128>) {
        assert_eq!(money_to_decimal(v), want);
    }

    #[test]
    fn batch_matches_schema_and_keeps_nulls() {
        let mut a = Event { event_id: "e1".into(), ts: 1, name: "pageview".into(), ..Default::default() };
        a.props.insert("k".into(), "v".into());
        let b =
            Event { event_id: "e2".into(), ts: 2, name: "purchase".into(), revenue: Some(5.5), ..Default::default() };
        let batch = to_record_batch(&[a, b]).expect("batch");
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.schema(), file_schema());
        assert_eq!(batch.column_by_name("url").map(|c| c.null_count()), Some(2));
        assert_eq!(batch.column_by_name("revenue").map(|c| c.null_count()), Some(1));
        assert_eq!(batch.column_by_name("props").map(|c| c.null_count()), Some(1));
    }

    #[test]
    fn a_version_1_batch_conforms_with_a_null_person() {
        let e = Event {
            event_id: "e1".into(),
            ts: 1,
            name: "pageview".into(),
            visitor_id: "v".into(),
            ..Default::default()
        };
        let v2 = to_record_batch(&[e]).expect("batch");
        let person = v2.schema().index_of("person_id").expect("person_id");
        let mut v1 = v2.clone();
        v1.remove_column(person);
        let back = conform(&v1).expect("conform");
        assert_eq!(back.schema(), file_schema());
        assert_eq!(back.column_by_name("person_id").map(|c| c.null_count()), Some(1));
        assert_eq!(back.column_by_name("event_id").map(|c| c.len()), Some(1));
        // A batch missing a required column is refused, not padded.
        let mut broken = v2;
        broken.remove_column(0);
        assert!(conform(&broken).is_err());
    }
}
