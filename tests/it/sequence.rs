//! `sequence_match`, `sequence_count` and `sequence_match_events`: every case of ClickHouse's own
//! test (00222_sequence_aggregate_function_family), 2,500 random cases answered by ClickHouse
//! itself (chDB, `tests/clickhouse/sequence_cases.py`), property tests of SQL over shuffled,
//! partitioned input against a naive recursive matcher, the bench's queries on a generated shop
//! against the same matcher, and the errors.

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch, TimestampMicrosecondArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Int64Type, Schema, TimeUnit};
use footfall::query::udaf::pattern::{Action, Ev, Pattern, Scratch, TimeOp, sort_events};
use proptest::prelude::*;

const S: i64 = 1_000_000;

/// (group, time, conditions): the time is µs with `Ts::Timestamp`, a raw integer with `Ts::Int`.
type Row = (i64, i64, Vec<Option<bool>>);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ts {
    Timestamp,
    Int,
}

/// The three functions' answers for one group; event times as given (µs or raw).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Answer {
    matched: bool,
    count: i64,
    events: Vec<i64>,
}

/// Run the three functions over `rows` in `partitions` partitions, by group (the
/// `GroupsAccumulator`) or over all rows (the `Accumulator`).
async fn run(
    rows: &[Row],
    n: usize,
    pattern: &str,
    ts: Ts,
    partitions: usize,
    grouped: bool,
) -> datafusion::error::Result<Vec<(i64, Answer)>> {
    let ts_type = match ts {
        Ts::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        Ts::Int => DataType::Int64,
    };
    let mut fields = vec![Field::new("g", DataType::Int64, false), Field::new("ts", ts_type, true)];
    fields.extend((0..n).map(|k| Field::new(format!("c{k}"), DataType::Boolean, true)));
    let schema = Arc::new(Schema::new(fields));
    let chunk = rows.len().div_ceil(partitions.max(1)).max(1);
    let mut batches = Vec::new();
    for part in rows.chunks(chunk) {
        let times = part.iter().map(|r| r.1);
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values(part.iter().map(|r| r.0))),
            match ts {
                Ts::Timestamp => Arc::new(TimestampMicrosecondArray::from_iter_values(times).with_timezone("UTC")),
                Ts::Int => Arc::new(Int64Array::from_iter_values(times)),
            },
        ];
        for k in 0..n {
            cols.push(Arc::new(part.iter().map(|r| r.2[k]).collect::<BooleanArray>()));
        }
        batches.push(RecordBatch::try_new(schema.clone(), cols)?);
    }
    let ctx = crate::support::partitioned(schema, batches, partitions)?;
    let conds: Vec<String> = (0..n).map(|k| format!("c{k}")).collect();
    let args = format!("'{pattern}', ts, {}", conds.join(", "));
    let (key, tail) = if grouped { ("g", " GROUP BY g ORDER BY g") } else { ("0", "") };
    let q = format!(
        "SELECT {key}, sequence_match({args}), sequence_count({args}), sequence_match_events({args}) FROM t{tail}"
    );
    let mut out = Vec::new();
    for b in ctx.sql(&q).await?.collect().await? {
        let g = b.column(0).as_primitive::<Int64Type>();
        let (m, c, e) =
            (b.column(1).as_boolean(), b.column(2).as_primitive::<Int64Type>(), b.column(3).as_list::<i32>());
        for i in 0..b.num_rows() {
            let times = cast(&e.value(i), &DataType::Int64)?;
            let events = times.as_primitive::<Int64Type>().values().to_vec();
            out.push((g.value(i), Answer { matched: m.value(i), count: c.value(i), events }));
        }
    }
    Ok(out)
}

enum Want {
    Match(bool),
    Count(i64),
    Events(&'static [i64]),
}

#[tokio::test]
async fn clickhouse_test_expectations() {
    // ClickHouse 00222_sequence_aggregate_function_family: times 0..11, data as below; the
    // conditions are `data = v` for each v listed.
    let data = [0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 1, 1];
    #[rustfmt::skip]
    let cases: &[(&str, &[i64], Want)] = &[
        ("", &[0, 1, 2, 3], Want::Match(true)),
        (".", &[0, 1, 2, 3], Want::Match(true)),
        (".*", &[0, 1, 2, 3], Want::Match(true)),
        ("(?1)", &[0, 1, 2, 3], Want::Match(true)),
        ("(?2)", &[0, 1, 2, 3], Want::Match(true)),
        ("(?3)", &[0, 1, 2, 3], Want::Match(true)),
        ("(?4)", &[0, 1, 2, 3], Want::Match(false)),
        ("(?1)(?1)", &[0, 1, 2, 3], Want::Match(true)),
        ("(?1)(?1)(?1)", &[0, 1, 2, 3], Want::Match(true)),
        ("(?1)(?1)(?1)(?1)", &[0, 1, 2, 3], Want::Match(true)),
        ("(?1)(?1)(?1)(?1)(?1)", &[0, 1, 2, 3], Want::Match(false)),
        ("(?1)(?1)(?1)(?1)(?2)", &[0, 1, 2, 3], Want::Match(true)),
        ("(?1)(?t>10)(?2)", &[0, 1, 2, 3], Want::Match(true)),
        ("(?1)(?t>11)(?2)", &[0, 1, 2, 3], Want::Match(false)),
        ("(?1)(?t<11)(?2)", &[0, 1, 2, 3], Want::Match(true)),
        ("(?1)(?t<3)(?3)", &[0, 1, 2, 3], Want::Match(true)),
        ("(?1)(?t<=2)(?3)", &[0, 1, 2, 3], Want::Match(true)),
        ("(?1)(?t<2)(?3)", &[0, 1, 2, 3], Want::Match(false)),
        ("(?2)(?t>=7)(?2)", &[0, 1, 2, 3], Want::Match(true)),
        ("(?2)(?t>7)(?2)", &[0, 1, 2, 3], Want::Match(false)),
        ("(?2)(?3)(?1)", &[0, 1, 2, 3], Want::Match(true)),
        ("(?1)(?t==2)(?2)", &[1, 2], Want::Match(false)),
        ("(?1)(?t==1)(?2)", &[1, 2], Want::Match(true)),
        ("", &[0, 1, 2, 3], Want::Count(12)),
        (".", &[0, 1, 2, 3], Want::Count(12)),
        (".*", &[0, 1, 2, 3], Want::Count(12)),
        ("(?1)", &[0, 1, 2, 3], Want::Count(8)),
        ("(?2)", &[0, 1, 2, 3], Want::Count(3)),
        ("(?3)", &[0, 1, 2, 3], Want::Count(1)),
        ("(?4)", &[0, 1, 2, 3], Want::Count(0)),
        ("(?1)(?1)", &[0, 1, 2, 3], Want::Count(4)),
        ("(?1)(?1)(?1)", &[0, 1, 2, 3], Want::Count(2)),
        ("(?1)(?1)(?1)(?1)", &[0, 1, 2, 3], Want::Count(2)),
        ("(?1)(?1)(?1)(?1)(?1)", &[0, 1, 2, 3], Want::Count(0)),
        ("(?1)(?1)(?1)(?1)(?2)", &[0, 1, 2, 3], Want::Count(2)),
        ("(?1)(?t>10)(?2)", &[0, 1, 2, 3], Want::Count(1)),
        ("(?1)(?t>11)(?2)", &[0, 1, 2, 3], Want::Count(0)),
        ("(?1)(?t<11)(?2)", &[0, 1, 2, 3], Want::Count(2)),
        ("(?1)(?t<3)(?3)", &[0, 1, 2, 3], Want::Count(1)),
        ("(?1)(?t<=2)(?3)", &[0, 1, 2, 3], Want::Count(1)),
        ("(?1)(?t<2)(?3)", &[0, 1, 2, 3], Want::Count(0)),
        ("(?2)(?t>=7)(?2)", &[0, 1, 2, 3], Want::Count(1)),
        ("(?2)(?t>7)(?2)", &[0, 1, 2, 3], Want::Count(0)),
        ("(?2)(?3)(?1)", &[0, 1, 2, 3], Want::Count(1)),
        ("(?1)(?t==2)(?2)", &[1, 2], Want::Count(0)),
        ("(?1)(?t==1)(?2)", &[1, 2], Want::Count(1)),
        ("", &[0, 1, 2, 3], Want::Events(&[])),
        (".", &[0, 1, 2, 3], Want::Events(&[])),
        (".*", &[0, 1, 2, 3], Want::Events(&[])),
        ("(?1)", &[0, 1, 2, 3], Want::Events(&[0])),
        ("(?2)", &[0, 1, 2, 3], Want::Events(&[4])),
        ("(?3)", &[0, 1, 2, 3], Want::Events(&[5])),
        ("(?4)", &[0, 1, 2, 3], Want::Events(&[])),
        ("(?1)(?1)", &[0, 1, 2, 3], Want::Events(&[0, 1])),
        ("(?1)(?1)(?1)", &[0, 1, 2, 3], Want::Events(&[0, 1, 2])),
        ("(?1)(?1)(?1)(?1)", &[0, 1, 2, 3], Want::Events(&[0, 1, 2, 3])),
        ("(?1)(?1)(?1)(?1)(?1)", &[0, 1, 2, 3], Want::Events(&[0, 1, 2, 3])),
        ("(?1)(?1)(?1)(?1)(?2)", &[0, 1, 2, 3], Want::Events(&[0, 1, 2, 3, 4])),
        ("(?1)(?t>10)(?2)", &[0, 1, 2, 3], Want::Events(&[0, 11])),
        ("(?1)(?t>11)(?2)", &[0, 1, 2, 3], Want::Events(&[0])),
        ("(?1)(?t<11)(?2)", &[0, 1, 2, 3], Want::Events(&[0, 4])),
        ("(?1)(?t<3)(?3)", &[0, 1, 2, 3], Want::Events(&[3, 5])),
        ("(?1)(?t<=2)(?3)", &[0, 1, 2, 3], Want::Events(&[3, 5])),
        ("(?1)(?t<2)(?3)", &[0, 1, 2, 3], Want::Events(&[0])),
        ("(?2)(?t>=7)(?2)", &[0, 1, 2, 3], Want::Events(&[4, 11])),
        ("(?2)(?t>7)(?2)", &[0, 1, 2, 3], Want::Events(&[4])),
        ("(?2)(?3)(?1)", &[0, 1, 2, 3], Want::Events(&[4, 5, 6])),
        ("(?1)(?t==2)(?2)", &[1, 2], Want::Events(&[4])),
        ("(?1)(?t==1)(?2)", &[1, 2], Want::Events(&[4, 5])),
    ];
    assert_eq!(cases.len(), 69);
    for (pattern, values, want) in cases {
        let n = values.len();
        for (ts, partitions, grouped) in [(Ts::Int, 1, false), (Ts::Timestamp, 3, true), (Ts::Int, 4, true)] {
            // A TIMESTAMP a quarter second into each second: time constraints count whole seconds.
            let time = |t: i64| if ts == Ts::Timestamp { t * S + 250_000 } else { t };
            let rows: Vec<Row> =
                (0..12).map(|t| (7, time(t), values.iter().map(|v| Some(data[t as usize] == *v)).collect())).collect();
            let got = run(&rows, n, pattern, ts, partitions, grouped).await.expect("query");
            let got = &got[0].1;
            let ctx = format!("{pattern:?} over {values:?} ({ts:?}, {partitions} partitions, grouped {grouped})");
            match want {
                Want::Match(m) => assert_eq!(got.matched, *m, "sequence_match {ctx}"),
                Want::Count(c) => assert_eq!(got.count, *c, "sequence_count {ctx}"),
                Want::Events(e) => {
                    let want: Vec<i64> = e.iter().map(|t| time(*t)).collect();
                    assert_eq!(got.events, want, "sequence_match_events {ctx}");
                }
            }
        }
    }
}

#[derive(serde::Deserialize)]
struct ChCase {
    n: usize,
    pattern: String,
    rows: Vec<(i64, u32)>,
    #[serde(rename = "match")]
    matched: bool,
    count: i64,
    events: Vec<i64>,
}

fn clickhouse_cases() -> Vec<ChCase> {
    serde_json::from_str(include_str!("data/sequence_clickhouse.json")).expect("cases")
}

#[test]
fn clickhouse_answers_on_random_cases() {
    // Every case through the matcher; events as ClickHouse keeps them (rows meeting a condition).
    let mut scratch = Scratch::default();
    let cases = clickhouse_cases();
    assert_eq!(cases.len(), 2500);
    for (i, c) in cases.iter().enumerate() {
        let p = Pattern::parse(&c.pattern, c.n).expect("pattern");
        let mut evs: Vec<Ev> = c.rows.iter().filter(|r| r.1 != 0).map(|&(ts, mask)| Ev { ts, mask }).collect();
        sort_events(&mut evs);
        let ctx = format!("case {i}: {:?} over {:?}", c.pattern, c.rows);
        assert_eq!(p.matches(&evs, 1, &mut scratch).expect("match"), c.matched, "sequence_match {ctx}");
        assert_eq!(p.count(&evs, 1, &mut scratch).expect("count") as i64, c.count, "sequence_count {ctx}");
        let events: Vec<i64> =
            p.match_events(&evs, 1, &mut scratch).expect("events").iter().map(|&k| evs[k].ts).collect();
        assert_eq!(events, c.events, "sequence_match_events {ctx}");
    }
}

#[tokio::test]
async fn clickhouse_answers_through_sql() {
    // A tenth of the cases through SQL: with TIMESTAMPs at random points inside each second
    // (ClickHouse read whole seconds), grouped over three partitions; and a tenth with the raw
    // integers over all rows.
    let cases = clickhouse_cases();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for (i, c) in cases.iter().enumerate().filter(|(i, _)| i % 10 == 0 || i % 10 == 5) {
        let timestamps = i % 10 == 0;
        let mut last = (i64::MIN, 0);
        let rows: Vec<Row> = c
            .rows
            .iter()
            .map(|&(t, mask)| {
                let time = if timestamps {
                    // increasing within a second, so ties keep ClickHouse's (insertion) order
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let lo = if last.0 == t { last.1 + 1 } else { 0 };
                    let us = lo + (x % 1000) as i64;
                    last = (t, us);
                    t * S + us
                } else {
                    t
                };
                (1, time, (0..c.n).map(|k| Some(mask >> k & 1 == 1)).collect())
            })
            .collect();
        let (ts, partitions, grouped) = if timestamps { (Ts::Timestamp, 3, true) } else { (Ts::Int, 1, false) };
        let got = run(&rows, c.n, &c.pattern, ts, partitions, grouped).await.expect("query");
        let ctx = format!("case {i}: {:?} over {:?} ({ts:?})", c.pattern, c.rows);
        if got.is_empty() {
            assert!(grouped && rows.is_empty(), "no group for {ctx}");
            continue;
        }
        let got = &got[0].1;
        let seconds: Vec<i64> = got.events.iter().map(|t| if timestamps { t.div_euclid(S) } else { *t }).collect();
        assert_eq!((got.matched, got.count, seconds), (c.matched, c.count, c.events.clone()), "{ctx}");
    }
}

/// Whether `acts` may all be left unmatched at the end of the events.
fn skippable(acts: &[Action]) -> bool {
    acts.iter().all(|x| x.skippable_at_end())
}

/// A naive reading of ClickHouse's search: a recursion over (action, event, base event) that
/// tries the choices in the same order (fewest events skipped first) and returns where the
/// first match ends. `chain` is the current chain, `best` the longest seen.
struct Naive<'a> {
    acts: &'a [Action],
    evs: &'a [Ev],
    unit: i64,
    chain: Vec<usize>,
    best: Vec<usize>,
}

impl Naive<'_> {
    fn from(&mut self, a: usize, ev: usize, base: usize) -> Option<usize> {
        if a == self.acts.len() {
            return Some(ev);
        }
        if ev == self.evs.len() {
            return skippable(&self.acts[a..]).then_some(ev);
        }
        match self.acts[a] {
            Action::Event(k) if self.evs[ev].mask >> k & 1 == 1 => {
                self.chain.push(ev);
                if self.chain.len() > self.best.len() {
                    self.best = self.chain.clone();
                }
                let r = self.from(a + 1, ev + 1, ev);
                if r.is_none() {
                    self.chain.pop();
                }
                r
            }
            Action::Event(_) => None,
            Action::Any => self.from(a + 1, ev + 1, ev),
            Action::Star => (ev..self.evs.len()).find_map(|j| self.from(a + 1, j, j)),
            Action::Time(op, d) => {
                let (evs, unit) = (self.evs, self.unit);
                let secs = |i: usize| evs[i].ts.div_euclid(unit);
                let limit = secs(base) + d;
                for j in ev..self.evs.len() {
                    if op.holds(secs(j), limit) {
                        if let Some(e) = self.from(a + 1, j, j) {
                            return Some(e);
                        }
                    } else if matches!(op, TimeOp::Lt | TimeOp::Le) {
                        return None;
                    }
                }
                None
            }
        }
    }
}

/// One naive search from `start`: (matched, next start, the longest chain it reached).
fn naive_search(p: &Pattern, evs: &[Ev], unit: i64, start: usize) -> (bool, usize, Vec<usize>) {
    let acts = p.actions();
    let mut naive = Naive { acts, evs, unit, chain: Vec::new(), best: Vec::new() };
    match naive.from(0, start, start) {
        Some(end) => (true, end.max(start + 1), naive.best),
        // ClickHouse's search, having tried everything, still accepts a pattern that may be
        // left unmatched at the end of the events (e.g. `(?t<0)`), with no events.
        None if skippable(acts) => (true, evs.len(), Vec::new()),
        None => (false, evs.len(), naive.best),
    }
}

fn naive(p: &Pattern, evs: &[Ev], unit: i64) -> Answer {
    let needs: u32 =
        p.actions().iter().map(|a| if let Action::Event(k) = a { 1 << k } else { 0 }).fold(0, |a, b| a | b);
    let met = evs.iter().fold(0, |m, e| m | e.mask) & needs == needs;
    let first = naive_search(p, evs, unit, 0);
    let mut count = 0;
    let mut at = 0;
    while met && at < evs.len() {
        let (found, next, _) = naive_search(p, evs, unit, at);
        if !found {
            break;
        }
        count += 1;
        at = next;
    }
    Answer { matched: met && first.0, count, events: first.2.iter().map(|&i| evs[i].ts).collect() }
}

fn arb_pattern(n: usize) -> impl Strategy<Value = String> {
    let op = prop_oneof![Just("<"), Just("<="), Just(">"), Just(">="), Just("==")];
    let element = prop_oneof![
        4 => (1..=n).prop_map(|k| format!("(?{k})")),
        1 => Just(".".to_owned()),
        1 => Just(".*".to_owned()),
        2 => (op, 0i64..8).prop_map(|(o, d)| format!("(?t{o}{d})")),
    ];
    prop::collection::vec(element, 0..6).prop_map(|parts| {
        // No time constraint right after another.
        let mut out = String::new();
        let mut last_time = false;
        for p in parts {
            let time = p.starts_with("(?t");
            if !(time && last_time) {
                out.push_str(&p);
                last_time = time;
            }
        }
        out
    })
}

/// (conditions, pattern, rows of (group, second, µs into it, conditions), partitions)
type Case = (usize, String, Vec<(i64, i64, i64, Vec<Option<bool>>)>, usize);

fn arb_case() -> impl Strategy<Value = Case> {
    (1usize..5).prop_flat_map(|n| {
        (
            Just(n),
            arb_pattern(n),
            prop::collection::vec(
                (
                    0i64..3,
                    0i64..20,
                    prop_oneof![Just(0i64), 0i64..S],
                    prop::collection::vec(prop::option::of(prop::bool::weighted(0.4)), n),
                ),
                0..40,
            ),
            1usize..4,
        )
    })
}

/// The naive answer per group, from the rows in the order the functions read them.
fn naive_by_group(rows: &[Row], n: usize, pattern: &str, unit: i64) -> Vec<(i64, Answer)> {
    let p = Pattern::parse(pattern, n).expect("pattern");
    let mut groups: Vec<i64> = rows.iter().map(|r| r.0).collect();
    groups.sort_unstable();
    groups.dedup();
    groups
        .into_iter()
        .map(|g| {
            let mut evs: Vec<Ev> = rows
                .iter()
                .filter(|r| r.0 == g)
                .map(|r| Ev { ts: r.1, mask: (0..n).filter(|&k| r.2[k] == Some(true)).map(|k| 1 << k).sum() })
                .filter(|e| e.mask != 0)
                .collect();
            sort_events(&mut evs);
            (g, naive(&p, &evs, unit))
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn sql_agrees_with_the_naive_matcher((n, pattern, rows, parts) in arb_case(), seed in any::<u64>()) {
        let rows: Vec<Row> = rows.into_iter().map(|(g, t, us, c)| (g, t * S + us, c)).collect();
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let got = rt.block_on(run(&crate::support::shuffled(&rows, seed), n, &pattern, Ts::Timestamp, parts, true)).expect("query");
        prop_assert_eq!(got, naive_by_group(&rows, n, &pattern, S), "pattern {:?}", pattern);
    }

    #[test]
    fn one_group_without_group_by_agrees_too((n, pattern, rows, parts) in arb_case(), seed in any::<u64>()) {
        let rows: Vec<Row> = rows.into_iter().map(|(_, t, _, c)| (0, t, c)).collect();
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let got = rt.block_on(run(&crate::support::shuffled(&rows, seed), n, &pattern, Ts::Int, parts, false)).expect("query");
        let want = naive_by_group(&rows, n, &pattern, 1);
        // Over no rows the ungrouped query still answers, for an empty sequence.
        let want = want.first().map_or_else(|| naive(&Pattern::parse(&pattern, n).expect("pattern"), &[], 1), |w| w.1.clone());
        prop_assert_eq!(&got[0].1, &want, "pattern {:?}", pattern);
    }
}

/// A shop's events: (visitor, seconds, name, path).
async fn shop(rows: &[(&str, i64, &str, &str)], q: &str) -> datafusion::error::Result<Vec<RecordBatch>> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("visitor_id", DataType::Utf8, false),
        Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
        Field::new("name", DataType::Utf8, false),
        Field::new("path", DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(arrow::array::StringArray::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.1 * S)).with_timezone("UTC")),
            Arc::new(arrow::array::StringArray::from_iter_values(rows.iter().map(|r| r.2))),
            Arc::new(arrow::array::StringArray::from_iter(rows.iter().map(|r| (!r.3.is_empty()).then_some(r.3)))),
        ],
    )?;
    let ctx = crate::support::partitioned(schema, vec![batch], 2)?;
    ctx.sql(&q.replace("FROM events", "FROM t")).await?.collect().await
}

fn strings(batches: &[RecordBatch], col: usize) -> Vec<String> {
    batches
        .iter()
        .flat_map(|b| {
            let c = cast(b.column(col), &DataType::Utf8).expect("text");
            c.as_string::<i32>().iter().map(|v| v.unwrap_or("NULL").to_owned()).collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test]
async fn viewed_then_added_within_ten_minutes_but_did_not_check_out() {
    let rows = [
        // a: view, cart 5 min later, then checkout: not abandoned
        ("a", 0, "product_view", "/p/mug"),
        ("a", 300, "add_to_cart", ""),
        ("a", 900, "checkout_start", ""),
        // b: the cart came 11 min after the view
        ("b", 0, "product_view", "/p/mug"),
        ("b", 660, "add_to_cart", ""),
        // c: a pageview in between is not an event of the pattern
        ("c", 0, "product_view", "/p/mug"),
        ("c", 100, "pageview", "/about"),
        ("c", 200, "add_to_cart", ""),
        // d: the first view is too early, the second view (500 s) is 500 s before the cart
        ("d", 0, "product_view", "/p/mug"),
        ("d", 500, "product_view", "/p/pot"),
        ("d", 1000, "add_to_cart", ""),
    ];
    let q = "SELECT visitor_id FROM events GROUP BY visitor_id
      HAVING sequence_match('(?1)(?t<=600)(?2)', ts, name = 'product_view', name = 'add_to_cart', name = 'checkout_start')
         AND NOT sequence_match('(?1)(?t<=600)(?2).*(?3)', ts, name = 'product_view', name = 'add_to_cart', name = 'checkout_start')
      ORDER BY visitor_id";
    assert_eq!(strings(&shop(&rows, q).await.expect("query"), 0), ["c", "d"]);
    // d's chain: the second view and the cart.
    let q = "SELECT sequence_match_events('(?1)(?t<=600)(?2)', ts, name = 'product_view', name = 'add_to_cart')
      FROM events WHERE visitor_id = 'd'";
    assert_eq!(strings(&shop(&rows, q).await.expect("query"), 0), ["[1970-01-01T00:08:20Z, 1970-01-01T00:16:40Z]"]);
}

#[tokio::test]
async fn how_often_from_the_cart_back_to_the_home_page() {
    let rows = [
        ("a", 0, "add_to_cart", ""),
        ("a", 10, "pageview", "/products/mug"),
        ("a", 20, "pageview", "/"),
        ("a", 30, "add_to_cart", ""),
        ("a", 40, "pageview", "/"),
        ("a", 50, "pageview", "/"),
        ("b", 0, "pageview", "/"),
        ("b", 10, "add_to_cart", ""),
    ];
    // Product pages meet no condition, so they are not between the cart and the home page.
    let q = "SELECT visitor_id, sequence_count('(?1)(?2)', ts, name = 'add_to_cart', name = 'pageview' AND path = '/')
      FROM events GROUP BY visitor_id ORDER BY visitor_id";
    let out = shop(&rows, q).await.expect("query");
    assert_eq!(strings(&out, 1), ["2", "0"]);
}

#[tokio::test]
async fn nulls_a_condition_is_false_and_a_row_without_time_is_no_event() {
    let mut rows: Vec<Row> = vec![(0, 1, vec![Some(true), None]), (0, 2, vec![None, Some(true)])];
    let got = run(&rows, 2, "(?1)(?2)", Ts::Int, 1, false).await.expect("query");
    assert_eq!(got[0].1, Answer { matched: true, count: 1, events: vec![1, 2] });
    // A NULL time: the row is not an event, as in ClickHouse.
    let schema = Arc::new(Schema::new(vec![
        Field::new("ts", DataType::Int64, true),
        Field::new("c0", DataType::Boolean, true),
        Field::new("c1", DataType::Boolean, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(vec![Some(1), None, Some(3)])),
            Arc::new(BooleanArray::from(vec![true, false, false])),
            Arc::new(BooleanArray::from(vec![false, true, true])),
        ],
    )
    .expect("batch");
    let ctx = crate::support::partitioned(schema, vec![batch], 1).expect("ctx");
    let out = ctx
        .sql("SELECT sequence_match_events('(?1)(?2)', ts, c0, c1), sequence_count('(?2)', ts, c0, c1) FROM t")
        .await
        .expect("plan")
        .collect()
        .await
        .expect("run");
    assert_eq!(strings(&out, 0), ["[1, 3]"]);
    assert_eq!(strings(&out, 1), ["1"]);
    // No rows at all: ClickHouse's answers for an empty sequence.
    rows.clear();
    let got = run(&rows, 2, "(?1)", Ts::Int, 1, false).await.expect("query");
    assert_eq!(got[0].1, Answer { matched: false, count: 0, events: vec![] });
    let got = run(&rows, 2, ".*", Ts::Int, 1, false).await.expect("query");
    assert_eq!(got[0].1, Answer { matched: true, count: 0, events: vec![] });
}

/// The planning error of `sql` over a table of `ts`, `c0`, `c1`, `n`.
async fn plan_error(sql: &str) -> String {
    let schema = Arc::new(Schema::new(vec![
        Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        Field::new("c0", DataType::Boolean, true),
        Field::new("c1", DataType::Boolean, true),
        Field::new("n", DataType::Utf8, true),
    ]));
    let ctx = crate::support::partitioned(schema, vec![], 1).expect("ctx");
    let planned = match ctx.sql(sql).await {
        Ok(df) => df.create_physical_plan().await.map(|_| ()),
        Err(e) => Err(e),
    };
    planned.expect_err("should not plan").find_root().to_string()
}

#[tokio::test]
async fn bad_calls_are_planning_errors_that_say_what_and_where() {
    let e = plan_error("SELECT sequence_match('(?1)(?t>)(?2)', ts, c0, c1) FROM t").await;
    assert_eq!(
        e,
        "Error during planning: sequence_match: bad pattern \"(?1)(?t>)(?2)\": expected a number of seconds after (?t>, found \")(?2)\" at position 9"
    );
    let e = plan_error("SELECT sequence_count('(?1)(?3)', ts, c0, c1) FROM t").await;
    assert!(e.contains("condition (?3) does not exist: the function was given 2 conditions at position 7"), "{e}");
    let e = plan_error("SELECT sequence_match_events('(?1) (?2)', ts, c0, c1) FROM t").await;
    assert!(e.contains("unexpected \" (?2)\"") && e.contains("at position 5"), "{e}");
    let e = plan_error("SELECT sequence_match(n, ts, c0, c1) FROM t").await;
    assert!(e.contains("sequence_match: the pattern must be a constant string"), "{e}");
    let e = plan_error("SELECT sequence_match('(?1)', ts) FROM t").await;
    assert!(e.contains("takes 1 to 32 conditions, got 0"), "{e}");
    let e = plan_error("SELECT sequence_match('(?1)', n, c0) FROM t").await;
    assert!(e.contains("ts must be a TIMESTAMP or an integer, got Utf8"), "{e}");
    let e = plan_error("SELECT sequence_count('(?1)', ts, n) FROM t").await;
    assert!(e.contains("condition 1 must be BOOLEAN, got Utf8"), "{e}");
    let many = vec!["c0"; 33].join(", ");
    let e = plan_error(&format!("SELECT sequence_match('(?1)', ts, {many}) FROM t")).await;
    assert!(e.contains("takes 1 to 32 conditions, got 33"), "{e}");
}

#[tokio::test]
async fn a_search_past_a_million_steps_is_an_error_not_a_hang() {
    // One condition-2 event, 400 condition-1 events, one condition-3 event:
    // `.*(?1).*(?1).*(?1).*(?2)` can never match, and backtracking would try every triple of
    // condition-1 events. ClickHouse stops at 1,000,000 steps; so does footfall, with an error
    // naming the limit. sequence_match answers with the automaton, which needs no backtracking.
    let mut rows: Vec<Row> = vec![(0, 0, vec![Some(false), Some(true), Some(false)])];
    rows.extend((1..=400).map(|t| (0, t, vec![Some(true), Some(false), Some(false)])));
    rows.push((0, 401, vec![Some(false), Some(false), Some(true)]));
    let p = ".*(?1).*(?1).*(?1).*(?2)";
    let err = run(&rows, 3, p, Ts::Int, 1, true).await.expect_err("too hard");
    assert!(err.to_string().contains("sequence_count: the pattern took more than 1000000 steps"), "{err}");
    let p = Pattern::parse(p, 3).expect("pattern");
    let evs: Vec<Ev> = rows
        .iter()
        .map(|r| Ev { ts: r.1, mask: (0..3).filter(|&k| r.2[k] == Some(true)).map(|k| 1 << k).sum() })
        .collect();
    assert_eq!(p.matches(&evs, 1, &mut Scratch::default()), Ok(false));
}

/// The bench's pattern queries on a generated shop (Parquet, the `events` table), against the
/// naive matcher run per visitor over the same rows read back in time order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bench_queries_agree_with_the_naive_matcher_on_a_generated_shop() {
    use footfall::query::{Scope, run_scoped_sql};
    use footfall::store::paths::DataDir;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = DataDir::new(dir.path());
    let start = chrono::NaiveDate::from_ymd_opt(2026, 1, 5).expect("date");
    let cfg = footfall::shopgen::ShopConfig {
        site: "bench".into(),
        seed: 19,
        events: 30_000,
        visitors: 2_000,
        start,
        days: 14,
    };
    footfall::bench::generate(&data, &cfg, |_, _| {}).expect("generate");
    let sql = |q: String| {
        let data = data.clone();
        async move { run_scoped_sql(&data, &Scope::All, q, Default::default()).await.expect("query").batches }
    };
    let rows = sql(format!(
        "SELECT visitor_id, ts, name FROM events WHERE site = 'bench' AND date BETWEEN DATE '{start}' AND DATE '2026-01-18'
         AND name IN ('product_view', 'add_to_cart', 'purchase')"
    ))
    .await;
    let mut by_visitor: std::collections::BTreeMap<String, Vec<Ev>> = Default::default();
    for b in &rows {
        let (v, t, n) = (
            b.column(0).as_string::<i32>(),
            b.column(1).as_primitive::<arrow::datatypes::TimestampMicrosecondType>(),
            b.column(2).as_string::<i32>(),
        );
        for i in 0..b.num_rows() {
            let mask = match n.value(i) {
                "product_view" => 1,
                "add_to_cart" => 2,
                _ => 4,
            };
            by_visitor.entry(v.value(i).to_owned()).or_default().push(Ev { ts: t.value(i), mask });
        }
    }
    let pattern = |p: &str| Pattern::parse(p, 3).expect("pattern");
    let (matched, counted, chains) =
        (pattern("(?1)(?t<=600)(?2).*(?3)"), pattern("(?1)(?t<=600)(?2)"), pattern("(?1)(?t<=600)(?2).*(?3)"));
    let (mut yes, mut no, mut total, mut several) = (0i64, 0i64, 0i64, 0i64);
    let mut lengths = [0i64; 4];
    for evs in by_visitor.values_mut() {
        sort_events(evs);
        let a = naive(&matched, evs, S);
        if a.matched {
            yes += 1
        } else {
            no += 1
        }
        let c = naive(&counted, evs, S).count;
        total += c;
        several += i64::from(c > 1);
        lengths[naive(&chains, evs, S).events.len()] += 1;
    }
    assert!(yes > 20 && no > 20 && several > 5, "a shop with answers both ways: {yes} {no} {several}");
    let q = |name: &str| footfall::bench::sql(name, "bench", start, 2).expect("sql");
    let text =
        |b: &[RecordBatch]| footfall::query::output::render(b, footfall::query::output::Format::Csv).expect("csv");
    assert_eq!(text(&sql(q("sequence_sql")).await), format!("matched,visitors\nfalse,{no}\ntrue,{yes}\n"));
    assert_eq!(text(&sql(q("sequence_count_sql")).await), format!("chains,visitors_with_several\n{total},{several}\n"));
    let want: String = (0..4).filter(|&k| lengths[k] > 0).map(|k| format!("{k},{}\n", lengths[k])).collect();
    assert_eq!(text(&sql(q("sequence_events_sql")).await), format!("events,visitors\n{want}"));
}
