//! What a Postgres wire session has beyond footfall's own ([`super::pg_session`]): `pg_catalog`
//! and the catalog functions from `datafusion-pg-catalog`, and two functions clients call when
//! they connect that it lacks, `version()` and `to_regtype()`.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use arrow::array::{Array, Int32Array, StringArray};
use arrow::datatypes::DataType;
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_postgres::datafusion_pg_catalog::setup_pg_catalog;
use datafusion_postgres::pgwire::api::Type;

use super::{Error, Result};

/// Add `pg_catalog` and the functions to `ctx`.
pub(super) fn install(ctx: &SessionContext) -> Result<()> {
    let catalog = ctx.state().config().options().catalog.default_catalog.clone();
    setup_pg_catalog(ctx, &catalog, EmptyContextProvider).map_err(|e| Error::DataFusion(*e))?;
    ctx.register_udf(version());
    ctx.register_udf(to_regtype());
    ctx.register_udf(type_is_visible());
    Ok(())
}

/// `pg_type_is_visible(oid)`: true, for every type (one schema, nothing hides a type). SQLAlchemy
/// asks it when it reflects a table's columns.
fn type_is_visible() -> ScalarUDF {
    create_udf(
        "pg_type_is_visible",
        vec![DataType::Int32],
        DataType::Boolean,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            Ok(match args.first() {
                Some(ColumnarValue::Array(a)) => ColumnarValue::Array(Arc::new(
                    (0..a.len()).map(|i| a.is_valid(i).then_some(true)).collect::<arrow::array::BooleanArray>(),
                )),
                Some(ColumnarValue::Scalar(s)) => {
                    ColumnarValue::Scalar(ScalarValue::Boolean((!s.is_null()).then_some(true)))
                }
                None => ColumnarValue::Scalar(ScalarValue::Boolean(None)),
            })
        }),
    )
}

/// `version()` as Postgres words it, which clients parse (SQLAlchemy refuses a server whose
/// version does not start `PostgreSQL <major>.<minor>`): the Postgres version pgwire announces
/// in `server_version`, then what answers.
fn version() -> ScalarUDF {
    let version = format!(
        "PostgreSQL 16.6 on {}-linux (footfall {}, Apache DataFusion {})",
        std::env::consts::ARCH,
        env!("CARGO_PKG_VERSION"),
        datafusion::DATAFUSION_VERSION
    );
    create_udf(
        "version",
        vec![],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(move |_| Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(version.clone()))))),
    )
}

/// Postgres's built-in types by name (`int4`, `_text`, `jsonb`, …) and their oids.
static TYPES: LazyLock<HashMap<String, i32>> = LazyLock::new(|| {
    (0..=20_000u32).filter_map(|oid| Type::from_oid(oid).map(|t| (t.name().to_owned(), oid as i32))).collect()
});

/// `to_regtype(name)`: the oid of a built-in type, NULL for any other name (an extension's
/// type such as `hstore` is not here). psycopg asks it before using a type, and SQLAlchemy asks
/// it for `hstore` on every first connection.
fn to_regtype() -> ScalarUDF {
    create_udf(
        "to_regtype",
        vec![DataType::Utf8],
        DataType::Int32,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let lookup = |name: Option<&str>| name.and_then(|n| TYPES.get(n.trim()).copied());
            Ok(match args.first() {
                Some(ColumnarValue::Scalar(s)) => match s.cast_to(&DataType::Utf8)? {
                    ScalarValue::Utf8(name) => ColumnarValue::Scalar(ScalarValue::Int32(lookup(name.as_deref()))),
                    _ => ColumnarValue::Scalar(ScalarValue::Int32(None)),
                },
                Some(ColumnarValue::Array(a)) => {
                    let text = arrow::compute::cast(a, &DataType::Utf8)?;
                    let oids: Int32Array = match text.as_any().downcast_ref::<StringArray>() {
                        Some(names) => names.iter().map(lookup).collect(),
                        None => Int32Array::new_null(a.len()),
                    };
                    ColumnarValue::Array(Arc::new(oids))
                }
                None => ColumnarValue::Scalar(ScalarValue::Int32(None)),
            })
        }),
    )
}

#[cfg(test)]
mod tests {
    use crate::query::{QueryLimits, Scope, pg_session};
    use crate::store::paths::DataDir;

    #[tokio::test]
    async fn clients_get_postgres_answers_to_their_connect_questions() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let ctx = pg_session(&DataDir::new(tmp.path()), &Scope::All, &QueryLimits::default()).await.expect("session");
        let sql = "SELECT version() AS v, to_regtype('int4') AS int4, to_regtype('_text') AS texts, to_regtype('hstore') AS hstore";
        let batches = ctx.sql(sql).await.expect("plan").collect().await.expect("run");
        let json = crate::query::output::render(&batches, crate::query::output::Format::Json).expect("json");
        let row: serde_json::Value = serde_json::from_str(&json).expect("rows");
        // Postgres's oids: int4 is 23, text[] 1009 (pg_type.dat); hstore is an extension's.
        assert_eq!((row[0]["int4"].as_i64(), row[0]["texts"].as_i64()), (Some(23), Some(1009)), "{row}");
        assert!(row[0]["hstore"].is_null(), "{row}");
        assert!(row[0]["v"].as_str().is_some_and(|v| v.starts_with("PostgreSQL 16.6 ")), "{row}");
        // The HTTP sessions keep DataFusion's own version().
        let plain = crate::query::session(&DataDir::new(tmp.path()), &Scope::All, &QueryLimits::default())
            .await
            .expect("session");
        let batches = plain.sql("SELECT version() AS v").await.expect("plan").collect().await.expect("run");
        let json = crate::query::output::render(&batches, crate::query::output::Format::Json).expect("json");
        assert!(json.contains("Apache DataFusion"), "{json}");
    }
}
