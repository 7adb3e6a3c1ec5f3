//! `footfall_items_match(items, field, op, value, …)`: whether any item of an event's `items`
//! (a list of structs) has `field` (`id` or `category`) equal to (`op` `is`) or containing (`op`
//! `contains`) one of the values; false for an event with no items. DataFusion reads no field
//! of a list of structs (`items['id']` is refused), and the product and category filters of the
//! reports need exactly this test.

use std::sync::Arc;

use arrow::array::{Array, AsArray, BooleanArray, StringArray};
use arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue, exec_datafusion_err};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility};

/// The function (registered on every session).
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct ItemsMatch {
    signature: Signature,
}

impl ItemsMatch {
    pub(crate) fn new() -> Self {
        Self { signature: Signature::variadic_any(Volatility::Immutable) }
    }
}

fn constant(v: &ColumnarValue, what: &str) -> Result<String> {
    match v {
        ColumnarValue::Scalar(s) => match s.cast_to(&DataType::Utf8)? {
            ScalarValue::Utf8(Some(t)) => Ok(t),
            _ => Err(exec_datafusion_err!("footfall_items_match: {what} must be a text constant")),
        },
        ColumnarValue::Array(_) => Err(exec_datafusion_err!("footfall_items_match: {what} must be a constant")),
    }
}

impl ScalarUDFImpl for ItemsMatch {
    fn name(&self) -> &str {
        "footfall_items_match"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if args.args.len() < 4 {
            return Err(exec_datafusion_err!("footfall_items_match(items, field, op, value, …) needs a value"));
        }
        let field = constant(&args.args[1], "the field")?;
        let contains = match constant(&args.args[2], "the operator")?.as_str() {
            "is" => false,
            "contains" => true,
            other => return Err(exec_datafusion_err!("footfall_items_match: unknown operator {other:?}")),
        };
        let values: Vec<String> = args.args[3..].iter().map(|v| constant(v, "a value")).collect::<Result<_>>()?;
        let items = args.args[0].to_array(args.number_rows)?;
        let list = items
            .as_list_opt::<i32>()
            .ok_or_else(|| exec_datafusion_err!("footfall_items_match: items is not a list"))?;
        let structs = list
            .values()
            .as_struct_opt()
            .ok_or_else(|| exec_datafusion_err!("footfall_items_match: an item is not a struct"))?;
        let column = structs
            .column_by_name(&field)
            .ok_or_else(|| exec_datafusion_err!("footfall_items_match: items have no field {field:?}"))?;
        let text = arrow::compute::kernels::cast::cast(column, &DataType::Utf8)?;
        let text: &StringArray = text.as_string::<i32>();
        let hit = |s: &str| values.iter().any(|v| if contains { s.contains(v.as_str()) } else { s == v });
        let offsets = list.value_offsets();
        let out: BooleanArray = (0..list.len())
            .map(|row| {
                let (a, b) = (offsets[row] as usize, offsets[row + 1] as usize);
                Some(!list.is_null(row) && (a..b).any(|i| text.is_valid(i) && hit(text.value(i))))
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}
