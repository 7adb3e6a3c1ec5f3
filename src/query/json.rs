//! `footfall_to_json(value)`: a value as JSON text (`props` → `{"coupon":"SPRING"}`, `items` →
//! `[{"id":"pot-1",…}]`), NULL for NULL. The Postgres wire protocol has no type for a map or a
//! list of structs, so the Postgres door sends such columns as this text ([`needs_json`]); in SQL
//! it is there for anyone who wants the same.

use std::sync::Arc;

use arrow::array::{Array, StringArray, StringBuilder};
use arrow::datatypes::{DataType, Field};
use arrow::error::ArrowError;
use arrow_json::writer::{EncoderOptions, make_encoder};
use datafusion::common::{Result, exec_datafusion_err};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility};

/// The function (registered on every session).
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct ToJson {
    signature: Signature,
}

impl ToJson {
    pub(crate) fn new() -> Self {
        Self { signature: Signature::any(1, Volatility::Immutable) }
    }
}

/// Whether Postgres clients get a column of this type as JSON text: maps, structs, and lists of
/// anything but plain values (arrow-pg sends lists of numbers or text as Postgres arrays).
pub fn needs_json(t: &DataType) -> bool {
    match t {
        DataType::Map(..) | DataType::Struct(_) => true,
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            needs_json(f.data_type())
                || matches!(f.data_type(), DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..))
        }
        _ => false,
    }
}

impl ScalarUDFImpl for ToJson {
    fn name(&self) -> &str {
        "footfall_to_json"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [value] = args.args.as_slice() else {
            return Err(exec_datafusion_err!("footfall_to_json(value) takes one argument"));
        };
        let array = value.to_array(args.number_rows)?;
        Ok(ColumnarValue::Array(Arc::new(json_text(array.as_ref())?)))
    }
}

/// Each value of `array` as JSON text, NULL for NULL. Also how CSV writes a list, a map or a
/// struct, which CSV has no form for.
pub(crate) fn json_text(array: &dyn Array) -> Result<StringArray, ArrowError> {
    let field = Arc::new(Field::new("value", array.data_type().clone(), true));
    let options = EncoderOptions::default();
    let mut encoder = make_encoder(&field, array, &options)?;
    let mut out = StringBuilder::with_capacity(array.len(), array.len() * 32);
    let mut buf = Vec::with_capacity(256);
    for row in 0..array.len() {
        if array.is_null(row) {
            out.append_null();
            continue;
        }
        buf.clear();
        encoder.encode(row, &mut buf);
        out.append_value(String::from_utf8_lossy(&buf));
    }
    Ok(out.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::{QueryLimits, Scope, session};
    use crate::store::paths::DataDir;

    async fn one(sql: &str) -> Vec<Option<String>> {
        let tmp = tempfile::tempdir().expect("tempdir");
        let ctx = session(&DataDir::new(tmp.path()), &Scope::All, &QueryLimits::default()).await.expect("session");
        let batches = ctx.sql(sql).await.expect("plan").collect().await.expect("run");
        let column = batches[0].column(0);
        let text = column.as_any().downcast_ref::<arrow::array::StringArray>().expect("text");
        text.iter().map(|v| v.map(str::to_owned)).collect()
    }

    #[tokio::test]
    async fn maps_structs_and_lists_become_the_json_a_reader_expects() {
        assert_eq!(
            one("SELECT footfall_to_json(MAP {'coupon': 'SPRING', 'n': '2'})").await,
            [Some(r#"{"coupon":"SPRING","n":"2"}"#.to_owned())]
        );
        assert_eq!(
            one("SELECT footfall_to_json([named_struct('id', 'pot-1', 'price', 30.5), named_struct('id', 'mug', 'price', NULL)])")
                .await,
            [Some(r#"[{"id":"pot-1","price":30.5},{"id":"mug"}]"#.to_owned())]
        );
        let null: Vec<Option<String>> = one("SELECT footfall_to_json(CAST(NULL AS INT))").await;
        assert_eq!(null, [None]);
    }

    #[test]
    fn only_what_postgres_has_no_type_for_is_sent_as_json() {
        let item = Field::new("item", DataType::Struct(vec![Field::new("id", DataType::Utf8, true)].into()), true);
        assert!(needs_json(&DataType::List(Arc::new(item))));
        assert!(needs_json(&DataType::List(Arc::new(Field::new(
            "l",
            DataType::List(Arc::new(Field::new("x", DataType::Int64, true))),
            true
        )))));
        assert!(!needs_json(&DataType::List(Arc::new(Field::new("x", DataType::Utf8, true)))));
        assert!(!needs_json(&DataType::Utf8));
        assert!(!needs_json(&DataType::Decimal128(18, 2)));
    }
}
