//! The import formats, each turned row by row into footfall's wire shape (the live event
//! schema plus `timestamp`), streamed.
//!
//! | format | rows | mapping |
//! |---|---|---|
//! | `footfall` | NDJSON, one event per line | as sent to `/api/event`, with `timestamp` |
//! | `segment` | Segment / RudderStack spec JSON lines | `track` → its event (Segment's e-commerce spec v2 names mapped), `page` → pageview, `screen` → screen, `identify` → identify; `group` and `alias` skipped |
//! | `posthog` | PostHog's event export CSV | `event`, `timestamp`, `distinct_id`, `uuid`, `properties` (JSON) or `properties.*` columns |
//! | `ga4` | GA4's BigQuery export, NDJSON or Parquet | `event_name`, `event_timestamp` (µs), `user_pseudo_id`, `user_id`, `event_params`, `items`, `ecommerce`, `traffic_source` |
//! | `csv` | any CSV with a header | `--map ts=<column>,name=<column>,visitor=<column>,...` |

use std::collections::HashMap;
use std::io::BufRead;

use serde_json::{Map, Value, json};

use super::{Row, RowError};

/// The format of an import file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImportFormat {
    /// footfall's own NDJSON: the event schema plus `timestamp`.
    Footfall,
    /// Segment or RudderStack spec JSON lines.
    Segment,
    /// PostHog's event export CSV.
    Posthog,
    /// GA4's BigQuery export as NDJSON.
    Ga4,
    /// GA4's BigQuery export as Parquet.
    Ga4Parquet,
    /// Any CSV, with `--map`.
    Csv,
}

/// The columns of a generic CSV for each footfall field: `ts`, `name`, `visitor`, `user`,
/// `session`, `url`, `referrer`, `event_id`, `revenue`, `currency`, `order_id`, `user_agent`,
/// and `prop:<name>` for a property.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ColumnMap(pub Vec<(String, String)>);

const MAP_FIELDS: [(&str, &str); 12] = [
    ("ts", "timestamp"),
    ("name", "name"),
    ("visitor", "visitor_id"),
    ("user", "user_id"),
    ("session", "session_id"),
    ("url", "url"),
    ("referrer", "referrer"),
    ("event_id", "event_id"),
    ("revenue", "revenue"),
    ("currency", "currency"),
    ("order_id", "order_id"),
    ("user_agent", "user_agent"),
];

impl ColumnMap {
    /// `ts=timestamp,visitor=user_id,prop:plan=plan`; `ts` and `name` are required.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut pairs = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, column) = part.split_once('=').ok_or_else(|| format!("{part:?}: write field=column"))?;
            let known = MAP_FIELDS.iter().any(|(f, _)| *f == field)
                || field.strip_prefix("prop:").is_some_and(|p| !p.is_empty());
            if !known {
                let names: Vec<&str> = MAP_FIELDS.iter().map(|(f, _)| *f).collect();
                return Err(format!("unknown field {field:?}: one of {}, or prop:<name>", names.join(", ")));
            }
            pairs.push((field.to_owned(), column.to_owned()));
        }
        for need in ["ts", "name"] {
            if !pairs.iter().any(|(f, _)| f == need) {
                return Err(format!("map the {need} field (e.g. {need}=<column>)"));
            }
        }
        Ok(Self(pairs))
    }
}

type Rows = Box<dyn Iterator<Item = Row> + Send>;

/// Where an import reads from: a file (which a Parquet reader can seek in, one row group at a
/// time) or any stream (a request body, stdin).
pub enum Input {
    File(std::fs::File),
    Stream(Box<dyn BufRead + Send>),
}

impl Input {
    fn stream(self) -> Box<dyn BufRead + Send> {
        match self {
            Self::File(f) => Box::new(std::io::BufReader::with_capacity(1 << 20, f)),
            Self::Stream(s) => s,
        }
    }
}

/// The rows of `input` in `format`.
pub fn rows(format: ImportFormat, map: Option<&ColumnMap>, input: Input) -> anyhow::Result<Rows> {
    if format == ImportFormat::Ga4Parquet {
        return ga4_parquet(input);
    }
    let input = input.stream();
    Ok(match format {
        ImportFormat::Footfall => json_lines(input, Some),
        ImportFormat::Segment => json_lines(input, segment),
        ImportFormat::Ga4 => json_lines(input, ga4),
        ImportFormat::Ga4Parquet => unreachable!("read above"),
        ImportFormat::Posthog => csv_rows(input, posthog)?,
        ImportFormat::Csv => {
            let map =
                map.cloned().ok_or_else(|| anyhow::anyhow!("the csv format needs --map (e.g. ts=time,name=event)"))?;
            csv_rows(input, move |r| mapped(r, &map))?
        }
    })
}

/// JSON lines, each turned into an event (or skipped, `None`) by `convert`.
fn json_lines(input: Box<dyn BufRead + Send>, convert: fn(Value) -> Option<Value>) -> Rows {
    Box::new(input.lines().enumerate().filter_map(move |(i, line)| {
        let line_no = i + 1;
        let text = match line {
            Ok(t) => t,
            Err(e) => return Some(Row::Bad(RowError { line: line_no, field: String::new(), message: e.to_string() })),
        };
        if text.trim().is_empty() {
            return None;
        }
        Some(match serde_json::from_str::<Value>(&text) {
            Ok(v) => match convert(v) {
                Some(e) => Row::Event(line_no, e),
                None => Row::Skip(line_no),
            },
            Err(e) => Row::Bad(RowError { line: line_no, field: String::new(), message: format!("not JSON: {e}") }),
        })
    }))
}

/// CSV records as (header → value) maps, each turned into an event by `convert` (an `Err` is
/// the field and message of a bad row).
fn csv_rows(
    input: Box<dyn BufRead + Send>,
    convert: impl Fn(&HashMap<&str, &str>) -> Result<Option<Value>, (String, String)> + Send + 'static,
) -> anyhow::Result<Rows> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(input);
    let headers: Vec<String> = reader.headers()?.iter().map(str::to_owned).collect();
    Ok(Box::new(reader.into_records().enumerate().map(move |(i, rec)| {
        // The header is line 1.
        let line = i + 2;
        match rec {
            Err(e) => Row::Bad(RowError { line, field: String::new(), message: e.to_string() }),
            Ok(rec) => {
                let fields: HashMap<&str, &str> = headers.iter().map(String::as_str).zip(rec.iter()).collect();
                match convert(&fields) {
                    Ok(Some(v)) => Row::Event(line, v),
                    Ok(None) => Row::Skip(line),
                    Err((field, message)) => Row::Bad(RowError { line, field, message }),
                }
            }
        }
    })))
}

/// Props take scalars: an object or array value becomes its JSON text (but `items`, which
/// validation lifts to the event's line items).
fn scalar_props(props: Map<String, Value>) -> Map<String, Value> {
    props
        .into_iter()
        .map(|(k, v)| match v {
            Value::Object(_) | Value::Array(_) if k != "items" => (k, Value::String(v.to_string())),
            v => (k, v),
        })
        .collect()
}

fn str_of<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(*k))?.as_str()
}

/// Segment's e-commerce spec v2 names to footfall's.
fn segment_name(event: &str) -> String {
    match event {
        "Product Viewed" => "product_view",
        "Product Added" => "add_to_cart",
        "Product Removed" => "remove_from_cart",
        "Checkout Started" => "checkout_start",
        "Order Completed" => "purchase",
        "Order Refunded" => "refund",
        other => other,
    }
    .to_owned()
}

/// A Segment / RudderStack spec call.
pub(crate) fn segment(v: Value) -> Option<Value> {
    let kind = v.get("type").and_then(Value::as_str).unwrap_or("track");
    // An identify's traits are its props (`plan`, `email_domain`, …), a track's or page's its
    // properties.
    let mut props: Map<String, Value> = match kind {
        "identify" => v.get("traits").and_then(Value::as_object).cloned().unwrap_or_default(),
        _ => v.get("properties").and_then(Value::as_object).cloned().unwrap_or_default(),
    };
    let name = match kind {
        "track" => segment_name(v.get("event").and_then(Value::as_str).unwrap_or("")),
        "page" => "pageview".to_owned(),
        "screen" => "screen".to_owned(),
        "identify" => "identify".to_owned(),
        _ => return None,
    };
    let url = props
        .remove("url")
        .and_then(|u| u.as_str().map(str::to_owned))
        .or_else(|| str_of(&v, &["context", "page", "url"]).map(str::to_owned));
    let referrer = props
        .remove("referrer")
        .and_then(|u| u.as_str().map(str::to_owned))
        .or_else(|| str_of(&v, &["context", "page", "referrer"]).map(str::to_owned));
    for k in ["path", "title", "search"] {
        props.remove(k);
    }
    // Orders: `revenue`, else `total`; `products[]` → items.
    if let Some(total) = props.remove("total") {
        props.entry("revenue").or_insert(total);
    }
    if let Some(Value::Array(products)) = props.remove("products") {
        let items: Vec<Value> = products.iter().map(|p| segment_item(p.as_object().unwrap_or(&Map::new()))).collect();
        props.insert("items".into(), Value::Array(items));
    } else if name == "product_view" || name == "add_to_cart" {
        // A single product's fields sit on the properties.
        let item = segment_item(&props);
        for k in ["product_id", "sku", "name", "category", "price", "quantity", "brand", "variant"] {
            props.remove(k);
        }
        props.insert("items".into(), json!([item]));
    }
    let mut e = Map::new();
    e.insert("name".into(), Value::String(name));
    let ts = v.get("timestamp").or_else(|| v.get("originalTimestamp")).cloned();
    put(&mut e, "timestamp", ts);
    put(&mut e, "event_id", external_id(v.get("messageId")));
    put(&mut e, "visitor_id", v.get("anonymousId").cloned());
    put(&mut e, "user_id", v.get("userId").cloned());
    put(&mut e, "url", url.map(Value::String));
    put(&mut e, "referrer", referrer.map(Value::String));
    put(&mut e, "user_agent", v.pointer("/context/userAgent").cloned());
    if !props.is_empty() {
        e.insert("props".into(), Value::Object(scalar_props(props)));
    }
    Some(Value::Object(e))
}

fn segment_item(p: &Map<String, Value>) -> Value {
    let id = p.get("product_id").or_else(|| p.get("sku")).or_else(|| p.get("id")).cloned().unwrap_or(Value::Null);
    let id = match id {
        Value::Number(n) => Value::String(n.to_string()),
        other => other,
    };
    let mut item = Map::new();
    item.insert("id".into(), id);
    put(&mut item, "name", p.get("name").cloned());
    put(&mut item, "category", p.get("category").cloned());
    put(&mut item, "price", p.get("price").cloned());
    put(&mut item, "quantity", p.get("quantity").cloned());
    Value::Object(item)
}

/// Another tool's event id as footfall's: kept when it is 8 to 64 letters, digits, `-` or
/// `_` (UUIDs, Segment's message ids), else a hash of it (the same id, the same hash).
fn external_id(id: Option<&Value>) -> Option<Value> {
    let id = match id? {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let fits = (8..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    Some(Value::String(if fits { id } else { format!("ext-{:016x}", super::hash(&[id.as_bytes()])) }))
}

/// Insert `v` unless it is absent or null.
fn put(o: &mut Map<String, Value>, k: &str, v: Option<Value>) {
    if let Some(v) = v.filter(|v| !v.is_null()) {
        o.insert(k.to_owned(), v);
    }
}

/// GA4's event names to footfall's.
fn ga4_name(event: &str) -> String {
    match event {
        "page_view" => "pageview",
        "view_item" => "product_view",
        "begin_checkout" => "checkout_start",
        other => other,
    }
    .to_owned()
}

/// One `event_params` value: whichever of its typed fields is set.
fn ga4_value(v: &Value) -> Option<Value> {
    let v = v.get("value")?;
    for k in ["string_value", "int_value", "double_value", "float_value"] {
        match v.get(k) {
            Some(Value::Null) | None => {}
            // BigQuery's JSON export writes INT64 as a string.
            Some(Value::String(s)) if k == "int_value" => return s.parse::<i64>().ok().map(Value::from),
            Some(x) => return Some(x.clone()),
        }
    }
    None
}

/// A row of GA4's BigQuery export.
fn ga4(v: Value) -> Option<Value> {
    let mut params: Map<String, Value> = Map::new();
    for p in v.get("event_params").and_then(Value::as_array).into_iter().flatten() {
        if let (Some(k), Some(x)) = (p.get("key").and_then(Value::as_str), ga4_value(p)) {
            params.insert(k.to_owned(), x);
        }
    }
    let name = ga4_name(v.get("event_name").and_then(Value::as_str).unwrap_or(""));
    let mut e = Map::new();
    e.insert("name".into(), Value::String(name));
    // `event_timestamp` is microseconds (a string in BigQuery's JSON export).
    let micros = match v.get("event_timestamp") {
        Some(Value::String(s)) => s.parse::<i64>().ok(),
        Some(Value::Number(n)) => n.as_i64(),
        _ => None,
    };
    put(&mut e, "timestamp", micros.map(|us| Value::from(us / 1000)));
    put(&mut e, "visitor_id", v.get("user_pseudo_id").cloned());
    put(&mut e, "user_id", v.get("user_id").cloned());
    let session = params.remove("ga_session_id").map(|s| Value::String(s.to_string().trim_matches('"').to_owned()));
    put(&mut e, "session_id", session);
    let mut url = params.remove("page_location").and_then(|u| u.as_str().map(str::to_owned));
    // The event's own source and medium (GA4 sets them on a session's first events) as UTM
    // tags, so the channel is worked out as for live events.
    if let Some(u) = url.as_mut().filter(|u| !u.contains("utm_source=")) {
        let tags: Vec<String> = [("source", "utm_source"), ("medium", "utm_medium"), ("campaign", "utm_campaign")]
            .iter()
            .filter_map(|(k, tag)| params.get(*k).and_then(Value::as_str).map(|v| format!("{tag}={}", urlencode(v))))
            .collect();
        if !tags.is_empty() && params.get("source").and_then(Value::as_str).is_some_and(|s| s != "(direct)") {
            u.push(if u.contains('?') { '&' } else { '?' });
            u.push_str(&tags.join("&"));
        }
    }
    put(&mut e, "url", url.map(Value::String));
    put(&mut e, "referrer", params.remove("page_referrer"));
    let order = v.pointer("/ecommerce/transaction_id").cloned().or_else(|| params.remove("transaction_id"));
    put(&mut e, "order_id", order.filter(|o| o.as_str().is_some_and(|s| !s.is_empty() && s != "(not set)")));
    let revenue =
        v.pointer("/ecommerce/purchase_revenue").cloned().filter(|r| !r.is_null()).or_else(|| params.remove("value"));
    if matches!(e.get("name").and_then(Value::as_str), Some("purchase" | "refund" | "add_to_cart" | "checkout_start")) {
        put(&mut e, "revenue", revenue);
        put(&mut e, "currency", params.remove("currency"));
    }
    let items: Vec<Value> = v
        .get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|i| {
            let id = i.get("item_id").and_then(Value::as_str).filter(|s| !s.is_empty() && *s != "(not set)")?;
            let mut item = Map::new();
            item.insert("id".into(), Value::String(id.to_owned()));
            put(&mut item, "name", i.get("item_name").cloned());
            put(&mut item, "category", i.get("item_category").cloned());
            put(&mut item, "price", i.get("price").cloned());
            put(
                &mut item,
                "quantity",
                i.get("quantity").cloned().map(|q| q.as_f64().map_or(q, |f| Value::from(f as i64))),
            );
            Some(Value::Object(item))
        })
        .collect();
    if !items.is_empty() {
        e.insert("items".into(), Value::Array(items));
    }
    for k in
        ["engagement_time_msec", "session_engaged", "ga_session_number", "page_title", "source", "medium", "campaign"]
    {
        params.remove(k);
    }
    if !params.is_empty() {
        e.insert("props".into(), Value::Object(scalar_props(params)));
    }
    Some(Value::Object(e))
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// GA4's export as Parquet: each row written as JSON by arrow-json, then read as the NDJSON
/// export is (the two share BigQuery's schema). A file is read a batch at a time; a stream
/// (a request body) is held whole, since Parquet's footer is at its end.
fn ga4_parquet(input: Input) -> anyhow::Result<Rows> {
    type Reader = Box<dyn Iterator<Item = Result<arrow::array::RecordBatch, arrow::error::ArrowError>> + Send>;
    let reader: Reader = match input {
        Input::File(f) => Box::new(parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)?.build()?),
        Input::Stream(mut s) => {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut s, &mut bytes)?;
            Box::new(
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))?
                    .build()?,
            )
        }
    };
    let mut line = 0usize;
    Ok(Box::new(reader.flat_map(move |batch| {
        let rows: Vec<Row> = match batch {
            Err(e) => {
                line += 1;
                vec![Row::Bad(RowError { line, field: String::new(), message: e.to_string() })]
            }
            Ok(b) => {
                let mut w = arrow_json::LineDelimitedWriter::new(Vec::new());
                let text = w
                    .write(&b)
                    .and_then(|()| w.finish())
                    .map(|()| String::from_utf8_lossy(&w.into_inner()).into_owned());
                match text {
                    Err(e) => vec![Row::Bad(RowError { line: line + 1, field: String::new(), message: e.to_string() })],
                    Ok(text) => text
                        .lines()
                        .map(|l| {
                            line += 1;
                            match serde_json::from_str::<Value>(l).ok().and_then(ga4) {
                                Some(e) => Row::Event(line, e),
                                None => Row::Skip(line),
                            }
                        })
                        .collect(),
                }
            }
        };
        rows
    })))
}

/// PostHog's names to footfall's.
fn posthog_name(event: &str) -> String {
    match event {
        "$pageview" => "pageview",
        "$identify" => "identify",
        "$pageleave" => "pageleave",
        other => other,
    }
    .to_owned()
}

/// A row of PostHog's event export: `properties` as one JSON column, or one
/// `properties.<name>` column per property.
fn posthog(r: &HashMap<&str, &str>) -> Result<Option<Value>, (String, String)> {
    let mut props: Map<String, Value> = match r.get("properties").filter(|p| !p.is_empty()) {
        Some(p) => serde_json::from_str(p).map_err(|e| ("properties".to_owned(), format!("not a JSON object: {e}")))?,
        None => r
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix("properties.").filter(|_| !v.is_empty()).map(|k| (k.to_owned(), json!(v)))
            })
            .collect(),
    };
    let event = r.get("event").copied().unwrap_or("");
    let mut e = Map::new();
    e.insert("name".into(), Value::String(posthog_name(event)));
    put(&mut e, "timestamp", r.get("timestamp").filter(|t| !t.is_empty()).map(|t| json!(normalize_time(t))));
    put(&mut e, "event_id", external_id(r.get("uuid").filter(|t| !t.is_empty()).map(|t| json!(t)).as_ref()));
    let distinct = r.get("distinct_id").filter(|t| !t.is_empty()).map(|t| json!(t));
    if event == "$identify" {
        // The anonymous id becomes the visitor, the distinct id the user.
        put(&mut e, "visitor_id", props.remove("$anon_distinct_id").or_else(|| distinct.clone()));
        put(&mut e, "user_id", distinct);
    } else {
        put(&mut e, "visitor_id", distinct);
    }
    put(&mut e, "url", props.remove("$current_url"));
    put(&mut e, "referrer", props.remove("$referrer").filter(|r| r != "$direct"));
    put(&mut e, "session_id", props.remove("$session_id"));
    put(&mut e, "user_agent", props.remove("$raw_user_agent"));
    // PostHog's own `$` properties (browser, screen, library…) are its enrichment; ours is redone.
    props.retain(|k, _| !k.starts_with('$'));
    if !props.is_empty() {
        e.insert("props".into(), Value::Object(scalar_props(props)));
    }
    Ok(Some(Value::Object(e)))
}

/// A CSV time as the event schema takes it: RFC 3339 (a space for the `T` and a missing zone
/// read as UTC), or epoch milliseconds.
fn normalize_time(t: &str) -> Value {
    if let Ok(ms) = t.parse::<i64>() {
        return Value::from(ms);
    }
    let canonical = |d: chrono::DateTime<chrono::FixedOffset>| {
        Value::String(d.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
    };
    let t = t.trim();
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(t) {
        return canonical(d);
    }
    let iso = t.replacen(' ', "T", 1);
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(&format!("{iso}Z")) {
        return canonical(d);
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(d) = chrono::NaiveDateTime::parse_from_str(&iso, fmt) {
            return canonical(d.and_utc().fixed_offset());
        }
    }
    Value::String(t.to_owned())
}

/// A row of a generic CSV through its column map.
fn mapped(r: &HashMap<&str, &str>, map: &ColumnMap) -> Result<Option<Value>, (String, String)> {
    let mut e = Map::new();
    let mut props = Map::new();
    for (field, column) in &map.0 {
        let Some(value) = r.get(column.as_str()).filter(|v| !v.is_empty()) else {
            if field == "ts" || field == "name" {
                return Err((column.clone(), format!("column {column:?} ({field}) is empty or missing")));
            }
            continue;
        };
        if let Some(p) = field.strip_prefix("prop:") {
            props.insert(p.to_owned(), Value::String((*value).to_owned()));
            continue;
        }
        let key = MAP_FIELDS.iter().find(|(f, _)| f == field).map_or(field.as_str(), |(_, k)| k);
        let v = match key {
            "timestamp" => normalize_time(value),
            "revenue" => {
                let n: f64 = value.parse().map_err(|_| (column.clone(), format!("{value:?} is not a number")))?;
                json!(n)
            }
            _ => Value::String((*value).to_owned()),
        };
        e.insert(key.to_owned(), v);
    }
    if !props.is_empty() {
        e.insert("props".into(), Value::Object(props));
    }
    Ok(Some(Value::Object(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_column_map_names_known_fields_and_needs_time_and_name() {
        let m = ColumnMap::parse("ts=time, name=event,visitor=uid,prop:plan=plan").expect("map");
        assert_eq!(m.0.len(), 4);
        assert!(ColumnMap::parse("ts=time").is_err_and(|e| e.contains("name")));
        assert!(ColumnMap::parse("ts=time,name=e,colour=c").is_err_and(|e| e.contains("colour")));
        assert!(ColumnMap::parse("ts=time,name").is_err());
    }

    #[test]
    fn csv_times_in_the_usual_shapes() {
        assert_eq!(normalize_time("1767607200000"), json!(1_767_607_200_000_i64));
        assert_eq!(normalize_time("2026-01-05T10:00:00Z"), json!("2026-01-05T10:00:00Z"));
        assert_eq!(normalize_time("2026-01-05 10:00:00"), json!("2026-01-05T10:00:00Z"));
        assert_eq!(normalize_time("2026-01-05T10:00"), json!("2026-01-05T10:00"), "left for the schema to refuse");
        assert_eq!(normalize_time("2026-01-05 10:00:00.250+01:00"), json!("2026-01-05T10:00:00.250+01:00"));
    }
}
