//! `footfall_bucket(text, n)`: which of `n` buckets a text falls in (FNV-1a of its bytes, modulo
//! `n`; NULL for NULL). Stable across processes and versions, so a report can split its people
//! into passes that each hold a fraction of them (the funnel report past its rows per pass).

use std::sync::Arc;

use arrow::array::{AsArray, Int64Array};
use arrow::compute::kernels::cast::cast;
use arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue, exec_datafusion_err};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility};

/// The function (registered on every session).
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct Bucket {
    signature: Signature,
}

impl Bucket {
    pub(crate) fn new() -> Self {
        Self { signature: Signature::any(2, Volatility::Immutable) }
    }
}

/// FNV-1a, 64 bits.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

impl ScalarUDFImpl for Bucket {
    fn name(&self) -> &str {
        "footfall_bucket"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = match &args.args[1] {
            ColumnarValue::Scalar(s) => match s.cast_to(&DataType::Int64)? {
                ScalarValue::Int64(Some(n)) if n > 0 => n as u64,
                _ => return Err(exec_datafusion_err!("footfall_bucket: the bucket count must be a positive integer")),
            },
            ColumnarValue::Array(_) => {
                return Err(exec_datafusion_err!("footfall_bucket: the bucket count must be a constant"));
            }
        };
        let text = args.args[0].to_array(args.number_rows)?;
        let text = cast(&text, &DataType::Utf8)?;
        let text = text.as_string::<i32>();
        let out: Int64Array = text.iter().map(|v| v.map(|s| (fnv1a(s.as_bytes()) % n) as i64)).collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_is_the_published_function() {
        // Test vectors of the FNV reference (draft-eastlake-fnv): "" and "a".
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
