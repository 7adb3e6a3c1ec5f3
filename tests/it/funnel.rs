//! `window_funnel(...)`: hand-checked cases for every mode, ClickHouse's own test expectations,
//! and property tests: against a brute-force search (default mode), and SQL over shuffled,
//! partitioned input against the algorithm run once over the whole sorted input (every mode).

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Int32Type, Schema, TimeUnit};
use datafusion::prelude::SessionContext;
use footfall::query::udaf::funnel::{Entry, Modes, level};
use footfall::query::udaf::register_functions;
use proptest::prelude::*;

const S: i64 = 1_000_000;

/// (group, ts µs, conditions)
type Row = (i64, i64, Vec<Option<bool>>);

async fn run(
    rows: &[Row],
    n: usize,
    window_s: i64,
    modes: &str,
    partitions: usize,
) -> datafusion::error::Result<Vec<(i64, i32)>> {
    let mut fields = vec![
        Field::new("g", DataType::Int64, false),
        Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
    ];
    fields.extend((0..n).map(|k| Field::new(format!("c{k}"), DataType::Boolean, true)));
    let schema = Arc::new(Schema::new(fields));
    let chunk = rows.len().div_ceil(partitions.max(1)).max(1);
    let mut batches = Vec::new();
    for part in rows.chunks(chunk) {
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values(part.iter().map(|r| r.0))),
            Arc::new(TimestampMicrosecondArray::from_iter_values(part.iter().map(|r| r.1)).with_timezone("UTC")),
        ];
        for k in 0..n {
            cols.push(Arc::new(part.iter().map(|r| r.2[k]).collect::<BooleanArray>()));
        }
        batches.push(RecordBatch::try_new(schema.clone(), cols)?);
    }
    let ctx = crate::support::partitioned(schema, batches, partitions)?;
    let conds: Vec<String> = (0..n).map(|k| format!("c{k}")).collect();
    let q = format!(
        "SELECT g, window_funnel({window_s}, '{modes}', ts, {}) FROM t GROUP BY g ORDER BY g",
        conds.join(", ")
    );
    let mut out = Vec::new();
    for b in ctx.sql(&q).await?.collect().await? {
        let g = b.column(0).as_primitive::<arrow::datatypes::Int64Type>();
        let l = b.column(1).as_primitive::<Int32Type>();
        out.extend((0..b.num_rows()).map(|i| (g.value(i), l.value(i))));
    }
    Ok(out)
}

/// One group; each row is (seconds, which of the n conditions hold).
async fn one(rows: &[(i64, &[usize])], n: usize, window_s: i64, modes: &str) -> i32 {
    let rows: Vec<Row> =
        rows.iter().map(|(t, hold)| (0, t * S, (0..n).map(|k| Some(hold.contains(&k))).collect())).collect();
    run(&rows, n, window_s, modes, 1).await.expect("query")[0].1
}

#[tokio::test]
async fn clickhouse_test_expectations() {
    // ClickHouse 00632_aggregation_window_funnel: events 1000..1008 at seconds 0..8.
    // Condition k holds for event 1000+k.
    let seq: Vec<(i64, Vec<usize>)> = (0..9).map(|t| (t, vec![t as usize])).collect();
    let rows = |steps: &[usize]| -> Vec<(i64, Vec<usize>)> {
        // condition j of the funnel holds for event steps[j]
        seq.iter().map(|(t, e)| (*t, (0..steps.len()).filter(|j| steps[*j] == e[0]).collect())).collect()
    };
    let check = |steps: Vec<usize>, window: i64, want: i32| {
        let r = rows(&steps);
        async move {
            let borrowed: Vec<(i64, &[usize])> = r.iter().map(|(t, h)| (*t, h.as_slice())).collect();
            assert_eq!(one(&borrowed, steps.len(), window, "").await, want, "steps {steps:?} window {window}");
        }
    };
    check(vec![0], 10_000, 1).await;
    check(vec![0, 1], 10_000, 2).await;
    check(vec![0, 1, 2], 10_000, 3).await;
    check(vec![0, 1, 2, 8], 10_000, 4).await;
    check(vec![0], 1, 1).await;
    // 1003..1007 at seconds 3..7: a 2 s window from 3 reaches second 5, so three steps.
    check(vec![3, 4, 5, 6, 7], 2, 3).await;
    check(vec![3, 4, 5, 6, 7], 3, 4).await;
    check(vec![3, 4, 5, 6, 7], 4, 5).await;
    // Order matters: 1008 then 1001 is not a funnel.
    check(vec![1, 8], 10_000, 2).await;
    check(vec![8, 1], 10_000, 1).await;
}

#[tokio::test]
async fn every_mode_by_hand() {
    // A→B→D→C with steps A, B, C (D satisfies none).
    let abdc: &[(i64, &[usize])] = &[(1, &[0]), (2, &[1]), (3, &[]), (4, &[2])];
    assert_eq!(one(abdc, 3, 100, "").await, 3);
    assert_eq!(one(abdc, 3, 100, "strict_order").await, 2, "D interrupts the chain");
    // C too early: strict_order stops at it, allow_reentry skips it.
    let early: &[(i64, &[usize])] = &[(1, &[0]), (2, &[2]), (3, &[1]), (4, &[2])];
    assert_eq!(one(early, 3, 100, "strict_order").await, 1);
    assert_eq!(one(early, 3, 100, "strict_order,allow_reentry").await, 3);
    // B twice: strict_deduplication stops at the repeat.
    let abbc: &[(i64, &[usize])] = &[(1, &[0]), (2, &[1]), (3, &[1]), (4, &[2])];
    assert_eq!(one(abbc, 3, 100, "").await, 3);
    assert_eq!(one(abbc, 3, 100, "strict_deduplication").await, 2);
    // A and B at the same second: allowed by default, not with strict_increase.
    let same: &[(i64, &[usize])] = &[(1, &[0]), (1, &[1]), (2, &[2])];
    assert_eq!(one(same, 3, 100, "").await, 3);
    assert_eq!(one(same, 3, 100, "strict_increase").await, 1);
    // One row satisfying A and B advances two steps, unless strict_once.
    let both: &[(i64, &[usize])] = &[(1, &[0, 1]), (2, &[2])];
    assert_eq!(one(both, 3, 100, "").await, 3);
    assert_eq!(one(both, 3, 100, "strict_once").await, 1);
    // strict_once keeps every candidate chain: start, a, b, a, end with steps start, a, b, end.
    let paths: &[(i64, &[usize])] = &[(1, &[0]), (2, &[1]), (3, &[2]), (4, &[1]), (5, &[3])];
    assert_eq!(one(paths, 4, 100, "strict_once").await, 4);
    // At one instant: B, then a row that is both A and B, then C. Whichever of the two B rows
    // comes first, the A row is not a repeat of B: it already counted as A (found by proptest).
    for rows in [&[(8, &[1][..]), (8, &[0, 1]), (8, &[2])][..], &[(8, &[0, 1][..]), (8, &[1]), (8, &[2])]] {
        assert_eq!(one(rows, 3, 0, "strict_deduplication,strict_once").await, 3);
    }
}

#[tokio::test]
async fn the_window_is_inclusive_and_measured_from_the_first_step() {
    let rows = |b_at_us: i64| vec![(0, 0, vec![Some(true), Some(false)]), (0, b_at_us, vec![Some(false), Some(true)])];
    assert_eq!(run(&rows(10 * S), 2, 10, "", 1).await.expect("q"), vec![(0, 2)]);
    assert_eq!(run(&rows(10 * S + 1), 2, 10, "", 1).await.expect("q"), vec![(0, 1)]);
    // A later first step restarts the window: A@0, A@20, B@25 with 10 s reaches 2.
    let restart = vec![
        (0, 0, vec![Some(true), Some(false)]),
        (0, 20 * S, vec![Some(true), Some(false)]),
        (0, 25 * S, vec![Some(false), Some(true)]),
    ];
    assert_eq!(run(&restart, 2, 10, "", 1).await.expect("q"), vec![(0, 2)]);
}

#[tokio::test]
async fn twenty_five_steps() {
    let n = 25;
    let rows: Vec<Row> = (0..n).map(|k| (0, k as i64 * S, (0..n).map(|j| Some(j == k)).collect())).collect();
    assert_eq!(run(&rows, n, 3600, "", 2).await.expect("q"), vec![(0, 25)]);
    let missing_step_13: Vec<Row> = rows.iter().filter(|r| r.2[12] != Some(true)).cloned().collect();
    assert_eq!(run(&missing_step_13, n, 3600, "", 2).await.expect("q"), vec![(0, 12)]);
}

#[tokio::test]
async fn bad_arguments_are_clear_errors() {
    let rows: Vec<Row> = vec![(0, 0, vec![Some(true)])];
    for modes in ["strict", "allow_reentry", "strict_order,bogus"] {
        let err = run(&rows, 1, 10, modes, 1).await.expect_err(modes);
        assert!(err.to_string().contains("window_funnel"), "{err}");
    }
    let ctx = SessionContext::new();
    register_functions(&ctx);
    for q in [
        "SELECT window_funnel(10, '', now()) FROM (VALUES (1)) t(x)",
        "SELECT window_funnel(10, '', now(), x) FROM (VALUES (1)) t(x)",
        "SELECT window_funnel('10', '', now(), true) FROM (VALUES (1)) t(x)",
    ] {
        assert!(ctx.sql(q).await.is_err(), "{q} planned");
    }
}

/// The longest chain, by trying every step-1 row as the start and taking, for each next
/// step, its earliest row that is not earlier than the previous step and within the window.
fn brute_force(rows: &[Row], n: usize, window_s: i64) -> usize {
    let holds = |r: &Row, k: usize| r.2[k] == Some(true);
    let mut best = 0;
    for start in rows.iter().filter(|r| holds(r, 0)) {
        let (t0, mut cur, mut reached) = (start.1, start.1, 1);
        for k in 1..n {
            let next = rows.iter().filter(|r| holds(r, k) && r.1 >= cur && r.1 <= t0 + window_s * S).map(|r| r.1).min();
            match next {
                Some(t) => {
                    cur = t;
                    reached = k + 1;
                }
                None => break,
            }
        }
        best = best.max(reached);
    }
    best
}

fn entries(rows: &[Row], strict_order: bool) -> Vec<Entry> {
    let mut out = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let hold: Vec<usize> = (0..r.2.len()).filter(|k| r.2[*k] == Some(true)).collect();
        out.extend(hold.iter().map(|k| Entry { ts: r.1, step: (*k + 1) as u8, row: i as u32 }));
        if strict_order && hold.is_empty() {
            out.push(Entry { ts: r.1, step: 0, row: i as u32 });
        }
    }
    out.sort();
    out
}

/// (steps, rows of (second, conditions), window seconds, partitions)
type Case = (usize, Vec<(i64, Vec<Option<bool>>)>, i64, usize);

fn arb_case() -> impl Strategy<Value = Case> {
    (1usize..6).prop_flat_map(|n| {
        (
            Just(n),
            prop::collection::vec(
                (0i64..12, prop::collection::vec(prop::option::of(prop::bool::weighted(0.35)), n)),
                0..30,
            ),
            0i64..6,
            1usize..4,
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn default_mode_finds_the_longest_chain((n, rows, window, parts) in arb_case(), seed in any::<u64>()) {
        let rows: Vec<Row> = rows.into_iter().map(|(t, c)| (0, t * S, c)).collect();
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let got = rt.block_on(run(&crate::support::shuffled(&rows, seed), n, window, "", parts)).expect("query");
        let want = brute_force(&rows, n, window);
        let got = got.first().map_or(0, |g| g.1 as usize);
        prop_assert_eq!(got, if rows.is_empty() { 0 } else { want });
    }

    #[test]
    fn every_mode_is_independent_of_order_and_partitioning(
        (n, rows, window, parts) in arb_case(),
        seed in any::<u64>(),
        flags in prop::collection::vec(any::<bool>(), 5),
    ) {
        let modes = Modes {
            strict_order: flags[0],
            strict_deduplication: flags[1],
            strict_increase: flags[2],
            strict_once: flags[3],
            allow_reentry: flags[0] && flags[4],
        };
        let names: Vec<&str> = [
            (modes.strict_order, "strict_order"), (modes.strict_deduplication, "strict_deduplication"),
            (modes.strict_increase, "strict_increase"), (modes.strict_once, "strict_once"), (modes.allow_reentry, "allow_reentry"),
        ].iter().filter(|(on, _)| *on).map(|(_, n)| *n).collect();
        let rows: Vec<Row> = rows.into_iter().map(|(t, c)| (0, t * S, c)).collect();
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let got = rt.block_on(run(&crate::support::shuffled(&rows, seed), n, window, &names.join(","), parts)).expect("query");
        let want = level(&entries(&rows, modes.strict_order), n, window * S, modes);
        prop_assert_eq!(got.first().map_or(0, |g| g.1 as usize), want);
    }
}
