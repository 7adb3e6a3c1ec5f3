//! `retention(...)` over SQL: ClickHouse's documented example, edge cases, and a property test
//! against a naive per-group loop with shuffled input split across partitions.

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, UInt8Type};
use datafusion::prelude::SessionContext;
use footfall::query::udaf::register_functions;
use proptest::prelude::*;

/// Rows of (group, conditions); returns `SELECT g, retention(c0..) GROUP BY g ORDER BY g`.
async fn run(
    rows: &[(i64, Vec<Option<bool>>)],
    n: usize,
    partitions: usize,
) -> datafusion::error::Result<Vec<(i64, Vec<u8>)>> {
    let mut fields = vec![Field::new("g", DataType::Int64, false)];
    fields.extend((0..n).map(|k| Field::new(format!("c{k}"), DataType::Boolean, true)));
    let schema = Arc::new(Schema::new(fields));
    let chunk = rows.len().div_ceil(partitions.max(1)).max(1);
    let mut batches = Vec::new();
    for part in rows.chunks(chunk) {
        let mut cols: Vec<ArrayRef> = vec![Arc::new(Int64Array::from_iter_values(part.iter().map(|r| r.0)))];
        for k in 0..n {
            cols.push(Arc::new(part.iter().map(|r| r.1[k]).collect::<BooleanArray>()));
        }
        batches.push(RecordBatch::try_new(schema.clone(), cols)?);
    }
    let ctx = crate::support::partitioned(schema, batches, partitions)?;
    let args: Vec<String> = (0..n).map(|k| format!("c{k}")).collect();
    let df = ctx.sql(&format!("SELECT g, retention({}) AS r FROM t GROUP BY g ORDER BY g", args.join(", "))).await?;
    let mut out = Vec::new();
    for b in df.collect().await? {
        let g = b.column(0).as_primitive::<arrow::datatypes::Int64Type>();
        let r = b.column(1).as_list::<i32>();
        for i in 0..b.num_rows() {
            out.push((g.value(i), r.value(i).as_primitive::<UInt8Type>().values().to_vec()));
        }
    }
    Ok(out)
}

/// The definition, one group at a time.
fn naive(rows: &[(i64, Vec<Option<bool>>)], n: usize) -> Vec<(i64, Vec<u8>)> {
    let mut groups: std::collections::BTreeMap<i64, Vec<bool>> = std::collections::BTreeMap::new();
    for (g, conds) in rows {
        let seen = groups.entry(*g).or_insert_with(|| vec![false; n]);
        for (s, c) in seen.iter_mut().zip(conds) {
            *s |= *c == Some(true);
        }
    }
    groups.into_iter().map(|(g, seen)| (g, (0..n).map(|k| u8::from(seen[0] && seen[k])).collect())).collect()
}

#[tokio::test]
async fn clickhouse_documentation_example() {
    // ClickHouse docs: uid 0-4 on 2020-01-01, 0-9 on 2020-01-02, 0-14 on 2020-01-03;
    // retention(day = 1st, day = 2nd, day = 3rd). Only 0-4 were there on the 1st, so only
    // they can count: [1,1,1]; everyone else is [0,0,0].
    let mut rows = Vec::new();
    for (day, uids) in [(1, 5), (2, 10), (3, 15)] {
        for uid in 0..uids {
            rows.push((uid, vec![Some(day == 1), Some(day == 2), Some(day == 3)]));
        }
    }
    let out = run(&rows, 3, 2).await.expect("query");
    assert_eq!(out.len(), 15);
    for (uid, r) in out {
        let want = if uid < 5 { vec![1, 1, 1] } else { vec![0, 0, 0] };
        assert_eq!(r, want, "uid {uid}");
    }
}

#[tokio::test]
async fn later_periods_need_the_first_and_nulls_are_false() {
    let rows = vec![
        (1, vec![Some(true), Some(false), Some(false)]),
        (1, vec![Some(false), Some(false), Some(true)]), // back in period 3, not 2
        (2, vec![None, Some(true), Some(true)]),         // never in period 1
        (3, vec![Some(true), None, None]),
    ];
    let out = run(&rows, 3, 1).await.expect("query");
    assert_eq!(out, vec![(1, vec![1, 0, 1]), (2, vec![0, 0, 0]), (3, vec![1, 0, 0])]);
}

#[tokio::test]
async fn argument_count_and_types_are_checked() {
    let ctx = SessionContext::new();
    register_functions(&ctx);
    let conds = vec!["true"; 33].join(", ");
    for q in [
        "SELECT retention() FROM (VALUES (1)) t(x)".to_owned(),
        format!("SELECT retention({conds}) FROM (VALUES (1)) t(x)"),
    ] {
        let err = match ctx.sql(&q).await {
            Ok(df) => df.collect().await.err(),
            Err(e) => Some(e),
        };
        assert!(err.is_some(), "{q} ran");
    }
    let err = ctx.sql("SELECT retention(x) FROM (VALUES (1)) t(x)").await.expect_err("an integer is not a condition");
    assert!(err.to_string().contains("must be BOOLEAN"), "{err}");
    let all = ctx.sql(&format!("SELECT retention({}) AS r FROM (VALUES (1)) t(x)", vec!["true"; 32].join(", "))).await;
    let batches = all.expect("32 conditions plan").collect().await.expect("and run");
    let r = batches[0].column(0).as_list::<i32>().value(0);
    assert_eq!(r.as_primitive::<UInt8Type>().values().to_vec(), vec![1u8; 32]);
}

/// (number of conditions, rows of (group, conditions), partitions)
type Case = (usize, Vec<(i64, Vec<Option<bool>>)>, usize);

fn arb_rows() -> impl Strategy<Value = Case> {
    (1usize..6).prop_flat_map(|n| {
        (
            Just(n),
            prop::collection::vec(
                (0i64..5, prop::collection::vec(prop::option::of(prop::bool::weighted(0.3)), n)),
                0..60,
            ),
            1usize..4,
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn matches_the_definition((n, rows, partitions) in arb_rows(), seed in any::<u64>()) {
        let mut shuffled = rows.clone();
        // Deterministic shuffle from the seed: order must not matter.
        let mut x = seed | 1;
        for i in (1..shuffled.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            shuffled.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let got = rt.block_on(run(&shuffled, n, partitions)).expect("query");
        prop_assert_eq!(got, naive(&rows, n));
    }
}

/// The property test's multi-partition cases really aggregate in two phases (merge_batch).
#[tokio::test]
async fn several_partitions_aggregate_in_two_phases() {
    let schema =
        Arc::new(Schema::new(vec![Field::new("g", DataType::Int64, false), Field::new("c0", DataType::Boolean, true)]));
    let batch = |g: i64| {
        RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from(vec![g])), Arc::new(BooleanArray::from(vec![Some(true)]))],
        )
        .expect("batch")
    };
    let ctx = crate::support::partitioned(schema.clone(), vec![batch(1), batch(1), batch(2)], 3).expect("session");
    let plan = ctx
        .sql("EXPLAIN SELECT g, retention(c0) FROM t GROUP BY g")
        .await
        .expect("explain")
        .collect()
        .await
        .expect("run");
    let text = arrow::util::pretty::pretty_format_batches(&plan).expect("format").to_string();
    assert!(text.contains("mode=Partial") && text.contains("mode=Final"), "{text}");
}
