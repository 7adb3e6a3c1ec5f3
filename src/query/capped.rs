//! Caps on the values a query's functions may build.
//!
//! DataFusion's memory pool bounds what operators hold (hash tables, sorts), not what a scalar
//! function allocates for its result: `repeat('x', 1e9)` asked for 1 GB at once, `lpad` for 2 GB,
//! `array_repeat(1, 1e9)` for 8 GB, and `s || s` doubled per CTE level. Every function that can
//! make its result much larger than its inputs is registered here in place of the built-in one:
//! the wrapper computes, from the arguments, an upper bound of the bytes the call would build
//! and refuses the call (a `ResourcesExhausted` error, answered as 422 naming the limit) when one
//! value would pass [`MAX_VALUE_BYTES`] or the whole batch [`MAX_CALL_BYTES`]; otherwise it
//! calls the built-in function unchanged. Constant folding calls the same wrapper, so a constant
//! bomb is refused at planning. String `||` is planned as [`StrConcat`], which does the same.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::compute::kernels::{cast::cast, concat_elements::concat_elements_utf8, length::length};
use arrow::datatypes::{DataType, FieldRef, Int64Type};
use datafusion::common::{DFSchema, Result, ScalarValue, resources_datafusion_err};
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, ExprSchemable, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, Volatility,
};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::BinaryOperator;

/// The most bytes one value a function builds may have (16 MiB).
pub const MAX_VALUE_BYTES: u64 = 16 << 20;
/// The most bytes one call (a batch of rows) may build (128 MiB).
pub const MAX_CALL_BYTES: u64 = 128 << 20;

/// How to bound a function's output from its arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Bound {
    /// `repeat(s, n)`: |s| × n.
    Repeat,
    /// `lpad(s, n [, fill])`, `rpad`: n characters (4 bytes each at most).
    Pad,
    /// `array_repeat(v, n)`: n × |v| (8 bytes per element at least).
    ArrayRepeat,
    /// `array_resize(a, n [, v])`: n elements of 8 bytes at least.
    ArrayResize,
    /// `range(start, stop [, step])`, `generate_series`: (stop − start) / step elements.
    Series,
    /// `concat`, `concat_ws`, `array_concat`, `||`: the sum of the arguments.
    Sum,
    /// `replace(s, from, to)`: every `from` in `s` becomes `to`.
    Replace,
    /// `regexp_replace(s, pattern, to [, flags])`: a match at each of |s| + 1 places at most.
    RegexpReplace,
}

/// The functions that are capped, and how.
const CAPPED: [(&str, Bound); 10] = [
    ("repeat", Bound::Repeat),
    ("lpad", Bound::Pad),
    ("rpad", Bound::Pad),
    ("array_repeat", Bound::ArrayRepeat),
    ("array_resize", Bound::ArrayResize),
    ("range", Bound::Series),
    ("generate_series", Bound::Series),
    ("concat", Bound::Sum),
    ("concat_ws", Bound::Sum),
    ("array_concat", Bound::Sum),
];

const MORE_CAPPED: [(&str, Bound); 2] = [("replace", Bound::Replace), ("regexp_replace", Bound::RegexpReplace)];

/// Register the capped functions (over the built-in ones) and the `||` planner in `ctx`.
pub(super) fn register(ctx: &SessionContext) {
    for (name, bound) in CAPPED.into_iter().chain(MORE_CAPPED) {
        match ctx.udf(name) {
            Ok(inner) => ctx.register_udf(ScalarUDF::new_from_impl(Capped { inner, bound })),
            Err(e) => tracing::warn!(function = name, error = %e, "no built-in function to cap"),
        }
    }
    if let Err(e) = ctx.state_ref().write().register_expr_planner(Arc::new(ConcatPlanner)) {
        tracing::warn!(error = %e, "could not register the || planner");
    }
}

/// A built-in function behind a size check.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Capped {
    inner: Arc<ScalarUDF>,
    bound: Bound,
}

impl ScalarUDFImpl for Capped {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }
    fn signature(&self) -> &Signature {
        self.inner.signature()
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }
    fn short_circuits(&self) -> bool {
        self.inner.short_circuits()
    }
    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        check(self.name(), self.bound, &args.args, args.number_rows)?;
        self.inner.invoke_with_args(args)
    }
}

/// Refuse a call whose output would pass a cap.
fn check(name: &str, bound: Bound, args: &[ColumnarValue], rows: usize) -> Result<()> {
    let rows = rows.max(1);
    let arrays: Vec<ArrayRef> = args.iter().map(|a| a.to_array(rows)).collect::<Result<_>>()?;
    // Measure only what the bound reads: `concat` and `||` run on every row of a scan, and
    // parsing their text arguments as counts would cost more than the call itself.
    let sizes: Vec<Vec<u64>> = match bound {
        Bound::Pad | Bound::ArrayResize | Bound::Series => Vec::new(),
        _ => arrays.iter().map(sizes).collect(),
    };
    let count: Vec<i64> = match bound {
        Bound::Repeat | Bound::Pad | Bound::ArrayRepeat | Bound::ArrayResize => {
            arrays.get(1).map(ints).unwrap_or_default()
        }
        _ => Vec::new(),
    };
    let at = |v: &Vec<u64>, i: usize| v.get(i).copied().unwrap_or(0);
    let size = |k: usize, i: usize| sizes.get(k).map_or(0, |v| at(v, i));
    let n = |i: usize| count.get(i).copied().unwrap_or(0).max(0) as u64;
    let mut total = 0u64;
    for i in 0..rows {
        let bytes = match bound {
            Bound::Repeat => size(0, i).saturating_mul(n(i)),
            Bound::Pad => n(i).saturating_mul(4),
            Bound::ArrayRepeat => n(i).saturating_mul(size(0, i).max(8)),
            Bound::ArrayResize => n(i).saturating_mul(8),
            Bound::Series => series_len(&arrays, i).saturating_mul(8),
            Bound::Sum => sizes.iter().map(|s| at(s, i)).fold(0u64, u64::saturating_add),
            Bound::Replace => {
                let (s, from, to) = (size(0, i), size(1, i), size(2, i));
                s.saturating_add((s / from.max(1)).saturating_mul(to))
            }
            Bound::RegexpReplace => {
                let (s, to) = (size(0, i), size(2, i));
                s.saturating_add((s + 1).saturating_mul(to))
            }
        };
        if bytes > MAX_VALUE_BYTES {
            return Err(resources_datafusion_err!(
                "{name}(...) would build a value of about {bytes} bytes; the limit is {MAX_VALUE_BYTES} bytes per value"
            ));
        }
        total = total.saturating_add(bytes);
    }
    if total > MAX_CALL_BYTES {
        return Err(resources_datafusion_err!(
            "{name}(...) would build about {total} bytes for {rows} rows; the limit is {MAX_CALL_BYTES} bytes per batch"
        ));
    }
    Ok(())
}

/// Bytes of each string or binary value, elements × 8 of each list, 8 for anything else.
fn sizes(a: &ArrayRef) -> Vec<u64> {
    match a.data_type() {
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..) => {
            lengths(a).into_iter().map(|n| n.saturating_mul(8)).collect()
        }
        _ => lengths(a),
    }
}

fn lengths(a: &ArrayRef) -> Vec<u64> {
    match length(a.as_ref()).and_then(|l| cast(&l, &DataType::Int64)) {
        Ok(l) => l.as_primitive::<Int64Type>().iter().map(|v| v.unwrap_or(0).max(0) as u64).collect(),
        Err(_) => vec![8; a.len()],
    }
}

/// Integer values (0 for nulls and anything that does not cast).
fn ints(a: &ArrayRef) -> Vec<i64> {
    match cast(a, &DataType::Int64) {
        Ok(v) => v.as_primitive::<Int64Type>().iter().map(|x| x.unwrap_or(0)).collect(),
        Err(_) => vec![0; a.len()],
    }
}

/// Elements of `range(start, stop [, step])` at row `i`: integers, dates (step in days) and
/// timestamps (step an interval) as nanoseconds.
fn series_len(arrays: &[ArrayRef], i: usize) -> u64 {
    let nanos = |a: &ArrayRef| -> Option<i128> {
        let v = ScalarValue::try_from_array(a, i).ok()?;
        match v {
            ScalarValue::Date32(Some(d)) => Some(i128::from(d) * 86_400_000_000_000),
            ScalarValue::Date64(Some(ms)) => Some(i128::from(ms) * 1_000_000),
            ScalarValue::TimestampSecond(Some(t), _) => Some(i128::from(t) * 1_000_000_000),
            ScalarValue::TimestampMillisecond(Some(t), _) => Some(i128::from(t) * 1_000_000),
            ScalarValue::TimestampMicrosecond(Some(t), _) => Some(i128::from(t) * 1_000),
            ScalarValue::TimestampNanosecond(Some(t), _) => Some(i128::from(t)),
            ScalarValue::IntervalMonthDayNano(Some(v)) => Some(
                i128::from(v.months) * 28 * 86_400_000_000_000
                    + i128::from(v.days) * 86_400_000_000_000
                    + i128::from(v.nanoseconds),
            ),
            ScalarValue::IntervalDayTime(Some(v)) => {
                Some(i128::from(v.days) * 86_400_000_000_000 + i128::from(v.milliseconds) * 1_000_000)
            }
            ScalarValue::IntervalYearMonth(Some(m)) => Some(i128::from(m) * 28 * 86_400_000_000_000),
            other => other.cast_to(&DataType::Int64).ok().and_then(|c| match c {
                ScalarValue::Int64(Some(x)) => Some(i128::from(x)),
                _ => None,
            }),
        }
    };
    let (start, stop, step) = match arrays {
        [stop] => (Some(0), nanos(stop), None),
        [start, stop] => (nanos(start), nanos(stop), None),
        [start, stop, step, ..] => (nanos(start), nanos(stop), nanos(step)),
        [] => return 0,
    };
    let (Some(start), Some(stop)) = (start, stop) else { return 0 };
    // Dates step by a day when no step is given; integers by 1.
    let default_step =
        if matches!(arrays[0].data_type(), DataType::Date32 | DataType::Date64) { 86_400_000_000_000 } else { 1 };
    let step = step.unwrap_or(default_step).unsigned_abs().max(1);
    u64::try_from((stop - start).unsigned_abs() / step).unwrap_or(u64::MAX).saturating_add(1)
}

/// Plans `a || b` on two strings as [`StrConcat`] (lists go to `array_concat`, already capped).
#[derive(Debug)]
struct ConcatPlanner;

impl ExprPlanner for ConcatPlanner {
    fn plan_binary_op(&self, expr: RawBinaryExpr, schema: &DFSchema) -> Result<PlannerResult<RawBinaryExpr>> {
        if expr.op != BinaryOperator::StringConcat {
            return Ok(PlannerResult::Original(expr));
        }
        // A chain `a || b || c` nests left: the left side is then our own call, a string. Asking
        // its type would walk the whole chain again at every level.
        let is_string = |e: &Expr| {
            matches!(e, Expr::ScalarFunction(f) if f.func.name() == "||")
                || e.get_type(schema)
                    .is_ok_and(|t| matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View))
        };
        if !(is_string(&expr.left) && is_string(&expr.right)) {
            return Ok(PlannerResult::Original(expr));
        }
        let udf = Arc::new(ScalarUDF::new_from_impl(StrConcat::default()));
        Ok(PlannerResult::Planned(Expr::ScalarFunction(ScalarFunction::new_udf(udf, vec![expr.left, expr.right]))))
    }
}

/// `a || b` for strings, as DataFusion computes it (NULL if either side is NULL), capped.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct StrConcat {
    signature: Signature,
}

impl Default for StrConcat {
    fn default() -> Self {
        Self { signature: Signature::string(2, Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for StrConcat {
    fn name(&self) -> &str {
        "||"
    }
    fn display_name(&self, args: &[Expr]) -> Result<String> {
        Ok(format!("{} || {}", args[0], args[1]))
    }
    fn schema_name(&self, args: &[Expr]) -> Result<String> {
        Ok(format!("{} || {}", args[0].schema_name(), args[1].schema_name()))
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        check("||", Bound::Sum, &args.args, args.number_rows)?;
        let scalar = args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let rows = if scalar { 1 } else { args.number_rows };
        let utf8 = |a: &ColumnarValue| -> Result<ArrayRef> { Ok(cast(&a.to_array(rows)?, &DataType::Utf8)?) };
        let (l, r) = (utf8(&args.args[0])?, utf8(&args.args[1])?);
        let out: ArrayRef = Arc::new(concat_elements_utf8(l.as_string::<i32>(), r.as_string::<i32>())?);
        if scalar {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
        } else {
            Ok(ColumnarValue::Array(out))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> SessionContext {
        let ctx = SessionContext::new();
        register(&ctx);
        ctx
    }

    async fn run(sql: &str) -> Result<Vec<arrow::array::RecordBatch>> {
        ctx().sql(sql).await?.collect().await
    }

    fn refused(r: Result<Vec<arrow::array::RecordBatch>>) -> String {
        match r {
            Err(e) => match e.find_root() {
                datafusion::error::DataFusionError::ResourcesExhausted(m) => m.clone(),
                other => panic!("expected ResourcesExhausted, got {other}"),
            },
            Ok(_) => panic!("expected a refusal"),
        }
    }

    fn one_string(b: &[arrow::array::RecordBatch]) -> String {
        b[0].column(0).as_string_view_opt().map_or_else(
            || cast(b[0].column(0), &DataType::Utf8).expect("cast").as_string::<i32>().value(0).to_owned(),
            |v| v.value(0).to_owned(),
        )
    }

    #[tokio::test]
    async fn the_memory_bombs_are_refused_naming_the_limit() {
        for sql in [
            "SELECT length(lpad('x', 2000000000))",
            "SELECT length(repeat('x', 1000000000))",
            "SELECT cardinality(array_repeat(1, 1000000000))",
            "SELECT cardinality(range(1, 1000000000))",
            "SELECT cardinality(generate_series(1, 1000000000))",
            "SELECT cardinality(array_resize([1], 1000000000))",
            "SELECT length(replace(repeat('a', 1000000), 'a', repeat('b', 1000)))",
            "SELECT length(regexp_replace(repeat('a', 100000), 'a', repeat('b', 1000), 'g'))",
            "WITH a AS (SELECT repeat('x', 10000000) AS s), b AS (SELECT s || s AS s FROM a) SELECT length(s || s) FROM b",
            "WITH a AS (SELECT repeat('x', 10000000) AS s) SELECT length(concat(s, s)) FROM a",
            "SELECT cardinality(range(DATE '1970-01-01', DATE '2100-01-01', INTERVAL '1 second'))",
        ] {
            let msg = refused(run(sql).await);
            assert!(msg.contains("the limit is"), "{sql}: {msg}");
        }
    }

    #[tokio::test]
    async fn ordinary_values_are_computed_as_before() {
        let b = run("SELECT repeat('ab', 3)").await.expect("runs");
        assert_eq!(one_string(&b), "ababab");
        let b = run("SELECT lpad('7', 3, '0')").await.expect("runs");
        assert_eq!(one_string(&b), "007");
        let b = run("SELECT 'a' || 'b' || NULL IS NULL, 'a' || 'b'").await.expect("runs");
        assert!(b[0].column(0).as_boolean().value(0), "NULL propagates through || as before");
        let b =
            run("SELECT x || '-' || y FROM (VALUES ('a', 'b'), ('c', 'd')) AS t(x, y) ORDER BY 1").await.expect("runs");
        let col = cast(b[0].column(0), &DataType::Utf8).expect("cast");
        assert_eq!((col.as_string::<i32>().value(0), col.as_string::<i32>().value(1)), ("a-b", "c-d"));
        let b = run("SELECT cardinality(range(1, 1000)), cardinality(array_repeat('x', 5))").await.expect("runs");
        assert_eq!(b[0].column(0).as_primitive::<arrow::datatypes::UInt64Type>().value(0), 999);
        // The column keeps the name analysts expect.
        assert_eq!(
            ctx().sql("SELECT 'a' || 'b'").await.expect("plans").schema().field(0).name(),
            "Utf8(\"a\") || Utf8(\"b\")"
        );
    }
}
