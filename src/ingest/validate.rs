//! Decoding and JSON Schema validation of request bodies against `schemas/event.schema.json`.

use std::sync::LazyLock;

use jsonschema::error::ValidationErrorKind;
use serde_json::Value;

use crate::model::WireEvent;

/// The wire contract, shipped in the binary.
pub const EVENT_SCHEMA: &str = include_str!("../../schemas/event.schema.json");
/// Most events one request may carry.
pub const MAX_BATCH: usize = 500;

/// Why one item of a request was refused.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ItemError {
    pub index: usize,
    /// Dotted path of the offending field (`items.0.price`), or `""` for the event itself.
    pub field: String,
    pub message: String,
}

/// Why a whole body was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BodyError {
    #[error("body is not valid JSON: {0}")]
    NotJson(String),
    #[error("body must be an event object or an array of events")]
    NotEventOrArray,
    #[error("an array must hold 1 to {MAX_BATCH} events, got {0}")]
    BatchSize(usize),
}

static SCHEMA: LazyLock<Value> = LazyLock::new(|| serde_json::from_str(EVENT_SCHEMA).expect("shipped schema is JSON"));

/// A validator for one event: the schema's `$defs/event`.
static EVENT_VALIDATOR: LazyLock<jsonschema::Validator> = LazyLock::new(|| {
    let mut root = SCHEMA.clone();
    let obj = root.as_object_mut().expect("schema is an object");
    obj.remove("oneOf");
    obj.insert("$ref".into(), Value::String("#/$defs/event".into()));
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&root)
        .expect("shipped schema compiles")
});

/// The whole schema (one event or an array), compiled; used to check the file itself.
pub fn body_validator() -> jsonschema::Validator {
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&SCHEMA)
        .expect("shipped schema compiles")
}

/// Split a body into its items: one object, or an array of 1..=500.
pub fn split_body(body: &[u8]) -> Result<Vec<Value>, BodyError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| BodyError::NotJson(e.to_string()))?;
    match v {
        Value::Object(_) => Ok(vec![v]),
        Value::Array(items) if (1..=MAX_BATCH).contains(&items.len()) => Ok(items),
        Value::Array(items) => Err(BodyError::BatchSize(items.len())),
        _ => Err(BodyError::NotEventOrArray),
    }
}

fn dotted(pointer: &str) -> String {
    pointer.trim_start_matches('/').replace('/', ".")
}

/// Validate one item. On failure, the first error, naming the field.
pub fn validate_item(index: usize, mut item: Value) -> Result<WireEvent, ItemError> {
    lift_order_fields(&mut item);
    // is_valid stops at the first failure and builds no error; most events are valid.
    if let Some(err) = (!EVENT_VALIDATOR.is_valid(&item)).then(|| EVENT_VALIDATOR.iter_errors(&item).next()).flatten() {
        let base = dotted(err.instance_path().as_str());
        let join = |name: &str| if base.is_empty() { name.to_owned() } else { format!("{base}.{name}") };
        let (field, message) = match err.kind() {
            ValidationErrorKind::Required { property } => {
                let name = property.as_str().unwrap_or_default();
                (join(name), format!("{name} is required"))
            }
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                let name = unexpected.first().cloned().unwrap_or_default();
                (join(&name), format!("unknown field {name:?}"))
            }
            // `event`: the item as a whole (not an object, say).
            _ if base.is_empty() => ("event".to_owned(), err.to_string()),
            _ => (base, err.to_string()),
        };
        return Err(ItemError { index, field, message });
    }
    serde_path_to_error::deserialize(item).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { "event".to_owned() } else { path };
        ItemError { index, field, message: e.into_inner().to_string() }
    })
}

/// Order fields a browser sent inside `props` (the snippet sends everything there, which keeps
/// it small) move to the top level, unless the top level has them already.
pub fn lift_order_fields(item: &mut Value) {
    let Some(obj) = item.as_object_mut() else { return };
    let Some(Value::Object(props)) = obj.get_mut("props") else { return };
    let lifted: Vec<(String, Value)> = ["revenue", "currency", "order_id", "items"]
        .iter()
        .filter_map(|k| props.remove(*k).map(|v| ((*k).to_owned(), v)))
        .collect();
    if props.is_empty() {
        obj.remove("props");
    }
    for (k, v) in lifted {
        obj.entry(k).or_insert(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use serde_json::json;

    #[rstest]
    #[case(json!({"site": "shop", "name": "signup"}))]
    #[case(json!({"site": "shop", "name": "pageview", "url": "https://shop.example/"}))]
    #[case(json!({"site": "shop", "name": "purchase", "revenue": 10.5, "currency": "EUR", "order_id": "o1",
                  "items": [{"id": "sku1", "price": 5.25, "quantity": 2}]}))]
    #[case(json!({"site": "shop", "name": "$exposure", "props": {"experiment": "hero", "variant": "b"}}))]
    #[case(json!({"site": "shop", "name": "purchase", "props": {"revenue": 5, "currency": "EUR", "order_id": "o", "items": [{"id": "a"}]}}))]
    #[case(json!({"site": "shop", "name": "identify", "user_id": "u1"}))]
    #[case(json!({"site": "shop", "name": "$click", "props": {"selector": "#buy", "ex": 0.5, "ey": 0, "x": 0.117, "y": 110, "vw": "desktop", "rage": true, "dead": true}}))]
    #[case(json!({"site": "shop", "name": "x", "timestamp": "2026-01-01T00:00:00Z"}))]
    #[case(json!({"site": "shop", "name": "x", "timestamp": 1767225600000_i64, "ip": "2001:db8::1"}))]
    fn valid_events(#[case] v: Value) {
        validate_item(0, v).expect("valid");
    }

    #[rstest]
    #[case(json!({"name": "x"}), "site", "site is required")]
    #[case(json!({"site": "Shop!", "name": "x"}), "site", "does not match")]
    #[case(json!({"site": "shop", "name": "pageview"}), "url", "url is required")]
    #[case(json!({"site": "shop", "name": "pageview", "url": "not a url"}), "url", "not a \"uri\"")]
    #[case(json!({"site": "shop", "name": "purchase", "revenue": -1, "currency": "EUR"}), "revenue", "minimum")]
    #[case(json!({"site": "shop", "name": "purchase", "revenue": 1, "currency": "eur"}), "currency", "does not match")]
    #[case(json!({"site": "shop", "name": "x", "items": [{"id": "a", "quantity": 0}]}), "items.0.quantity", "minimum")]
    #[case(json!({"site": "shop", "name": "x", "items": [{"price": 1}]}), "items.0.id", "id is required")]
    #[case(json!({"site": "shop", "name": "$exposure", "props": {"experiment": "e"}}), "props.variant", "variant is required")]
    #[case(json!({"site": "shop", "name": "identify"}), "user_id", "user_id is required")]
    #[case(json!({"site": "shop", "name": "$click", "props": {"x": 0.5}}), "props.selector", "selector is required")]
    #[case(json!({"site": "shop", "name": "$click", "props": {"selector": "#a", "x": 1.5}}), "props.x", "maximum")]
    #[case(json!({"site": "shop", "name": "$click", "props": {"selector": "#a", "vw": "watch"}}), "props.vw", "")]
    #[case(json!({"site": "shop", "name": "x", "colour": "red"}), "colour", "unknown field")]
    #[case(json!({"site": "shop", "name": "x", "ip": "300.1.1.1"}), "ip", "")]
    #[case(json!({"site": "shop", "name": "x", "timestamp": "last tuesday"}), "timestamp", "")]
    #[case(json!({"site": "shop", "name": "x", "props": {"k": {"nested": 1}}}), "props.k", "")]
    fn invalid_events_name_the_field(#[case] v: Value, #[case] field: &str, #[case] msg: &str) {
        let e = validate_item(3, v).expect_err("invalid");
        assert_eq!(e.index, 3);
        assert_eq!(e.field, field, "{}", e.message);
        assert!(e.message.contains(msg), "{}", e.message);
    }

    #[test]
    fn bodies_split_into_items() {
        assert_eq!(split_body(br#"{"a":1}"#).expect("obj").len(), 1);
        assert_eq!(split_body(br#"[{"a":1},{"b":2}]"#).expect("arr").len(), 2);
        assert_eq!(split_body(b"[]"), Err(BodyError::BatchSize(0)));
        let big = format!("[{}]", vec!["{}"; MAX_BATCH + 1].join(","));
        assert_eq!(split_body(big.as_bytes()), Err(BodyError::BatchSize(MAX_BATCH + 1)));
        assert_eq!(split_body(b"42"), Err(BodyError::NotEventOrArray));
        assert!(matches!(split_body(b"{oops"), Err(BodyError::NotJson(_))));
    }

    #[test]
    fn the_schema_accepts_single_events_and_arrays() {
        let v = body_validator();
        assert!(v.is_valid(&json!({"site": "s", "name": "x"})));
        assert!(v.is_valid(&json!([{"site": "s", "name": "x"}])));
        assert!(!v.is_valid(&json!([])));
    }

    #[test]
    fn order_fields_in_props_move_up() {
        let mut v = json!({"site": "s", "name": "purchase", "revenue": 3, "props": {"revenue": 9, "currency": "EUR", "items": [{"id": "a"}], "coupon": "X"}});
        lift_order_fields(&mut v);
        assert_eq!(
            v,
            json!({"site": "s", "name": "purchase", "revenue": 3, "currency": "EUR", "items": [{"id": "a"}], "props": {"coupon": "X"}})
        );
        let mut v = json!({"site": "s", "name": "refund", "props": {"revenue": 9, "currency": "EUR"}});
        lift_order_fields(&mut v);
        assert_eq!(v, json!({"site": "s", "name": "refund", "revenue": 9, "currency": "EUR"}));
    }
}
