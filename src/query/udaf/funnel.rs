//! `window_funnel(window_seconds, modes, ts, cond1, …, condN) → INT`: ClickHouse's `windowFunnel`.
//!
//! Per group (e.g. `GROUP BY visitor_id`), the number of consecutive steps reached:
//! - every row adds one entry per condition it satisfies, `(ts, step)`; entries are taken in
//!   `(ts, step)` order, so rows at one timestamp are taken in condition order and one row that
//!   satisfies several conditions can advance several steps;
//! - a step-1 entry starts a chain at its timestamp (a later step-1 entry restarts it later);
//!   a step-k entry extends the chain that reached step k−1 if `ts ≤ start + window` (the window
//!   is inclusive and measured from the first step);
//! - the result is the highest step any chain reached (0 when no row satisfied step 1).
//!
//! Modes (comma-separated, empty for none):
//! - `strict_increase`: a step only counts when its timestamp is strictly later than the
//!   previous step's;
//! - `strict_order`: once a chain has started, a row that satisfies no condition, or a step
//!   whose predecessor was not reached yet, ends the search (A→B→D→C gives 2 for A,B,C);
//! - `allow_reentry` (with `strict_order` only): an out-of-order step is skipped instead;
//! - `strict_deduplication`: a step (other than step 1) seen again after it was reached ends
//!   the search (with `strict_once`, neither a row already counted in a chain nor one at the
//!   same instant as the step's first is a repeat);
//! - `strict_once`: one row counts for one step only in a chain, even if it satisfies several
//!   conditions (every candidate chain is tracked).
//!
//! State: the entries (timestamp, step, row id), the window and the modes; partial states are
//! concatenated and sorted at evaluation, so input order and partitioning do not matter.

use std::mem::size_of_val;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, ListArray, StringArray, UInt8Array, UInt64Array};
use arrow::datatypes::{
    DataType, Field, FieldRef, Int64Type, TimeUnit, TimestampMicrosecondType, UInt8Type, UInt64Type,
};
use datafusion::common::{ScalarValue, exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, GroupsAccumulator, Signature, Volatility};

/// Most steps accepted.
pub const MAX_STEPS: usize = 32;

/// Parsed `modes` argument.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Modes {
    pub strict_order: bool,
    pub strict_deduplication: bool,
    pub strict_increase: bool,
    pub strict_once: bool,
    pub allow_reentry: bool,
}

impl Modes {
    /// Parse `"strict_order,strict_increase"`; empty means none.
    pub fn parse(s: &str) -> Result<Self> {
        let mut m = Self::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "strict_order" => m.strict_order = true,
                "strict_deduplication" => m.strict_deduplication = true,
                "strict_increase" => m.strict_increase = true,
                "strict_once" => m.strict_once = true,
                "allow_reentry" => m.allow_reentry = true,
                other => {
                    return exec_err!(
                        "window_funnel: unknown mode {other:?}; use strict_order, strict_deduplication, strict_increase, strict_once or allow_reentry"
                    );
                }
            }
        }
        if m.allow_reentry && !m.strict_order {
            return exec_err!("window_funnel: allow_reentry needs strict_order");
        }
        Ok(m)
    }
}

/// One entry: a row satisfied condition `step` (1-based; 0 = no condition, kept for
/// `strict_order`) at `ts` (µs). `row` tells rows apart for `strict_once` (a row counter kept
/// to 32 bits, which keeps an entry at 16 bytes; rows of one group 2^32 rows apart would alias).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    pub ts: i64,
    pub step: u8,
    pub row: u32,
}

/// The level reached by `entries` (sorted by `(ts, step, row)`), for `steps` conditions.
pub fn level(entries: &[Entry], steps: usize, window_us: i64, m: Modes) -> usize {
    if entries.is_empty() {
        return 0;
    }
    if !m.strict_order && steps == 1 {
        return 1;
    }
    if m.strict_once {
        level_strict_once(entries, steps, window_us, m)
    } else {
        level_default(entries, steps, window_us, m)
    }
}

fn highest(reached: impl DoubleEndedIterator<Item = bool> + ExactSizeIterator) -> usize {
    let n = reached.len();
    reached.rev().position(|r| r).map_or(0, |p| n - p)
}

fn level_default(entries: &[Entry], steps: usize, window: i64, m: Modes) -> usize {
    // (chain start, time of this step) of the chain that reached each step most recently
    let mut at: Vec<Option<(i64, i64)>> = vec![None; steps];
    let mut started = false;
    for e in entries {
        let Some(k) = usize::from(e.step).checked_sub(1) else {
            if m.strict_order && started {
                break;
            }
            continue;
        };
        if k == 0 {
            at[0] = Some((e.ts, e.ts));
            started = true;
        } else if m.strict_deduplication && at[k].is_some() {
            return highest(at.iter().map(Option::is_some));
        } else if m.strict_order && started && at[k - 1].is_none() {
            if m.allow_reentry {
                continue;
            }
            return at.iter().position(Option::is_none).unwrap_or(steps);
        } else if let Some((start, prev)) = at[k - 1] {
            let in_time = e.ts <= start.saturating_add(window) && (!m.strict_increase || prev < e.ts);
            if in_time {
                at[k] = Some((start, e.ts));
                if k + 1 == steps {
                    return steps;
                }
            }
        }
    }
    highest(at.iter().map(Option::is_some))
}

#[derive(Clone)]
struct Chain {
    start: i64,
    last: i64,
    rows: Vec<u32>,
}

fn level_strict_once(entries: &[Entry], steps: usize, window: i64, m: Modes) -> usize {
    // every chain that reached each step, with the rows it used
    let mut chains: Vec<Vec<Chain>> = vec![Vec::new(); steps];
    // when each step was first reached
    let mut reached: Vec<Option<i64>> = vec![None; steps];
    let mut started = false;
    for e in entries {
        let Some(k) = usize::from(e.step).checked_sub(1) else {
            if m.strict_order && started {
                break;
            }
            continue;
        };
        if k == 0 {
            chains[0].push(Chain { start: e.ts, last: e.ts, rows: vec![e.row] });
            started = true;
        } else if m.strict_deduplication
            && !chains[k].is_empty()
            // Neither an event at the same instant as the step's first event (ties in time have
            // no order: which one came first would change the level) nor an event already
            // counted in a chain is a repeat of the step.
            && reached[k].is_some_and(|t| e.ts > t)
            && !chains.iter().flatten().any(|c| c.rows.contains(&e.row))
        {
            return highest(chains.iter().map(|c| !c.is_empty()));
        } else if m.strict_order && started && chains[k - 1].is_empty() {
            if m.allow_reentry {
                continue;
            }
            return chains.iter().position(Vec::is_empty).unwrap_or(steps);
        } else if !chains[k - 1].is_empty() {
            // Drop chains that can no longer fit the window, keeping at least one.
            let prev = &mut chains[k - 1];
            let mut i = 0;
            while i < prev.len() {
                if e.ts > prev[i].start.saturating_add(window) && prev.len() > 1 {
                    prev.remove(i);
                } else {
                    i += 1;
                }
            }
            let extended: Vec<Chain> = prev
                .iter()
                .filter(|c| e.ts <= c.start.saturating_add(window) && !c.rows.contains(&e.row))
                .filter(|c| !m.strict_increase || c.last < e.ts)
                .map(|c| {
                    let mut rows = c.rows.clone();
                    rows.push(e.row);
                    Chain { start: c.start, last: e.ts, rows }
                })
                .collect();
            if !extended.is_empty() {
                reached[k].get_or_insert(e.ts);
                chains[k].extend(extended);
                if k + 1 == steps {
                    return steps;
                }
            }
        }
    }
    highest(chains.iter().map(|c| !c.is_empty()))
}

/// The `window_funnel` aggregate.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct WindowFunnel {
    signature: Signature,
}

impl Default for WindowFunnel {
    fn default() -> Self {
        Self::new()
    }
}

impl WindowFunnel {
    pub fn new() -> Self {
        // Aggregates cannot take variadic signatures; `coerce_types` checks the arguments.
        Self { signature: Signature::user_defined(Volatility::Immutable) }
    }
}

fn list_type(t: DataType) -> DataType {
    DataType::List(Arc::new(Field::new_list_field(t, true)))
}

impl AggregateUDFImpl for WindowFunnel {
    fn name(&self) -> &str {
        "window_funnel"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        let usage = "window_funnel(window_seconds BIGINT, modes VARCHAR, ts TIMESTAMP, cond1 BOOLEAN, ...)";
        if args.len() < 4 || args.len() > 3 + MAX_STEPS {
            return plan_err!("{usage} takes 1 to {MAX_STEPS} conditions, got {}", args.len().saturating_sub(3));
        }
        if !args[0].is_integer() {
            return plan_err!("{usage}: window_seconds must be an integer, got {}", args[0]);
        }
        if !matches!(args[1], DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) {
            return plan_err!("{usage}: modes must be a string, got {}", args[1]);
        }
        let DataType::Timestamp(_, tz) = &args[2] else {
            return plan_err!("{usage}: ts must be a TIMESTAMP, got {}", args[2]);
        };
        if let Some((k, t)) =
            args[3..].iter().enumerate().find(|(_, t)| !matches!(t, DataType::Boolean | DataType::Null))
        {
            return plan_err!("{usage}: condition {} must be BOOLEAN, got {t}", k + 1);
        }
        let mut out = vec![DataType::Int64, DataType::Utf8, DataType::Timestamp(TimeUnit::Microsecond, tz.clone())];
        out.extend(std::iter::repeat_n(DataType::Boolean, args.len() - 3));
        Ok(out)
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int32)
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(FunnelAccumulator { steps: args.exprs.len().saturating_sub(3), ..FunnelAccumulator::default() }))
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(super::funnel_groups::FunnelGroups::new(args.exprs.len().saturating_sub(3))))
    }

    /// The window, the modes, and the entries as three parallel lists (ts, step, row).
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let f = |n: &str, t: DataType| Arc::new(Field::new(format_state_name(args.name, n), t, true));
        Ok(vec![
            f("window", DataType::Int64),
            f("modes", DataType::Utf8),
            f("ts", list_type(DataType::Int64)),
            f("step", list_type(DataType::UInt8)),
            f("row", list_type(DataType::UInt64)),
        ])
    }
}

/// The entries of one group, unsorted until evaluation.
#[derive(Debug, Default)]
pub struct FunnelAccumulator {
    steps: usize,
    window: Option<i64>,
    modes: Option<String>,
    entries: Vec<Entry>,
    next_row: u64,
}

impl FunnelAccumulator {
    fn settings(&mut self, window: &Int64Array, modes: &StringArray) {
        if self.window.is_none() {
            self.window = window.iter().flatten().next();
        }
        if self.modes.is_none() {
            self.modes = modes.iter().flatten().next().map(str::to_owned);
        }
    }
}

impl Accumulator for FunnelAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        if values.len() != self.steps + 3 {
            return exec_err!("window_funnel expected {} arguments, got {}", self.steps + 3, values.len());
        }
        self.settings(values[0].as_primitive::<Int64Type>(), values[1].as_string::<i32>());
        let strict_order = Modes::parse(self.modes.as_deref().unwrap_or(""))?.strict_order;
        let ts = values[2].as_primitive::<TimestampMicrosecondType>();
        let conds: Vec<_> = values[3..].iter().map(|c| c.as_boolean()).collect();
        for i in 0..ts.len() {
            let row = self.next_row;
            self.next_row += 1;
            if ts.is_null(i) {
                continue;
            }
            let t = ts.value(i);
            let before = self.entries.len();
            for (k, c) in conds.iter().enumerate() {
                if c.is_valid(i) && c.value(i) {
                    self.entries.push(Entry { ts: t, step: (k + 1) as u8, row: row as u32 });
                }
            }
            if strict_order && self.entries.len() == before {
                self.entries.push(Entry { ts: t, step: 0, row: row as u32 });
            }
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.settings(states[0].as_primitive::<Int64Type>(), states[1].as_string::<i32>());
        let (ts, step, row) = (states[2].as_list::<i32>(), states[3].as_list::<i32>(), states[4].as_list::<i32>());
        for i in 0..ts.len() {
            if ts.is_null(i) {
                continue;
            }
            let (t, s, r) = (ts.value(i), step.value(i), row.value(i));
            let (t, s, r) =
                (t.as_primitive::<Int64Type>(), s.as_primitive::<UInt8Type>(), r.as_primitive::<UInt64Type>());
            let offset = self.next_row;
            let mut top = offset;
            for j in 0..t.len() {
                let row = r.value(j).saturating_add(offset);
                top = top.max(row.saturating_add(1));
                self.entries.push(Entry { ts: t.value(j), step: s.value(j), row: row as u32 });
            }
            self.next_row = top;
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let list = |a: ArrayRef| {
            ScalarValue::List(Arc::new(ListArray::new(
                Arc::new(Field::new_list_field(a.data_type().clone(), true)),
                arrow::buffer::OffsetBuffer::from_lengths([a.len()]),
                a,
                None,
            )))
        };
        Ok(vec![
            ScalarValue::Int64(self.window),
            ScalarValue::Utf8(self.modes.clone()),
            list(Arc::new(self.entries.iter().map(|e| e.ts).collect::<Int64Array>())),
            list(Arc::new(self.entries.iter().map(|e| e.step).collect::<UInt8Array>())),
            list(Arc::new(self.entries.iter().map(|e| u64::from(e.row)).collect::<UInt64Array>())),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        if self.entries.is_empty() {
            return Ok(ScalarValue::Int32(Some(0)));
        }
        let Some(window) = self.window.filter(|w| *w >= 0) else {
            return exec_err!("window_funnel: window_seconds must be a non-negative constant");
        };
        let modes = Modes::parse(self.modes.as_deref().unwrap_or(""))?;
        self.entries.sort_unstable();
        let reached = level(&self.entries, self.steps, window.saturating_mul(1_000_000), modes);
        Ok(ScalarValue::Int32(Some(reached as i32)))
    }

    fn size(&self) -> usize {
        size_of_val(self)
            + self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.modes.as_ref().map_or(0, String::capacity)
    }
}
