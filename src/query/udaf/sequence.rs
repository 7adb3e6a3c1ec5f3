//! ClickHouse's pattern aggregates:
//! - `sequence_match(pattern, ts, cond1, …, condN) → BOOLEAN`: the group's events contain a
//!   chain that matches `pattern`;
//! - `sequence_count(pattern, ts, cond1, …) → BIGINT`: how many non-overlapping chains match;
//! - `sequence_match_events(pattern, ts, cond1, …) → LIST`: the times of the events of the first
//!   match, one per `(?N)` in the pattern (of the longest partial chain when nothing matches;
//!   see [`Pattern::match_events`] for ClickHouse's exact rule).
//!
//! The pattern language and its matching are in [`super::pattern`]. `pattern` must be a constant
//! string; it is checked while the statement is planned (a malformed pattern is a planning error
//! naming its position). `ts` is a TIMESTAMP (time constraints count whole seconds, as
//! ClickHouse's `DateTime` does) or an integer (constraints compare the raw values). Up to 32
//! conditions; a NULL condition is false.
//!
//! State: the events (time, conditions met) of the rows that met at least one condition, packed
//! into one binary value per group (12 bytes an event: the time as i64 and the conditions as
//! u32, little-endian); partial states are concatenated and sorted at evaluation, so input order
//! and partitioning do not matter. One binary column costs a repartition and a merge less than
//! two lists did (about a tenth of the 10M-event bench query).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Int64Array};
use arrow::buffer::{Buffer, OffsetBuffer};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, FieldRef, Int64Type, TimeUnit, TimestampMicrosecondType};
use datafusion::common::{ScalarValue, exec_err, plan_err};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::function::{AccumulatorArgs, AggregateFunctionSimplification, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, EmitTo, Expr, GroupsAccumulator, Signature, Volatility};
use datafusion::physical_expr::expressions::Literal;

use super::funnel_groups::{list_array, take_groups};
use super::pattern::{Ev, MAX_CONDITIONS, Pattern, Scratch, sort_events};

/// Which of the three functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Match,
    Count,
    Events,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Match => "sequence_match",
            Kind::Count => "sequence_count",
            Kind::Events => "sequence_match_events",
        }
    }
}

/// One of the pattern aggregates.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Sequence {
    kind: Kind,
    signature: Signature,
}

impl Sequence {
    pub fn new(kind: Kind) -> Self {
        // Aggregates cannot take variadic signatures; `coerce_types` checks the arguments.
        Self { kind, signature: Signature::user_defined(Volatility::Immutable) }
    }
}

/// The pattern text of a constant `pattern` argument.
fn pattern_text(v: &ScalarValue) -> Option<&str> {
    match v {
        ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => Some(s),
        _ => None,
    }
}

fn parse(name: &str, text: &str, conditions: usize) -> Result<Pattern> {
    Pattern::parse(text, conditions).map_err(|e| DataFusionError::Plan(format!("{name}: bad pattern {text:?}: {e}")))
}

/// What evaluation needs: the parsed pattern, the seconds unit of `ts`, and its type.
#[derive(Clone, Debug)]
struct Settings {
    kind: Kind,
    pattern: Arc<Pattern>,
    conditions: usize,
    /// `ts` values per second: 1,000,000 for a TIMESTAMP (µs), 1 for an integer.
    unit: i64,
    ts_type: DataType,
}

impl Settings {
    fn new(kind: Kind, args: &AccumulatorArgs) -> Result<Self> {
        let name = kind.name();
        let conditions = args.exprs.len().saturating_sub(2);
        let Some(text) =
            args.exprs.first().and_then(|e| e.downcast_ref::<Literal>()).and_then(|l| pattern_text(l.value()))
        else {
            return plan_err!("{name}: the pattern must be a constant string");
        };
        let pattern = Arc::new(parse(name, text, conditions)?);
        let ts_type = args.expr_fields.get(1).map_or(DataType::Int64, |f| f.data_type().clone());
        let unit = if matches!(ts_type, DataType::Timestamp(..)) { 1_000_000 } else { 1 };
        Ok(Self { kind, pattern, conditions, unit, ts_type })
    }

    /// Each row's conditions as a mask (0: none met, or filtered out or without a time).
    fn masks(&self, values: &[ArrayRef], filter: Option<&BooleanArray>) -> Result<Vec<u32>> {
        if values.len() != self.conditions + 2 {
            return exec_err!("{} expected {} arguments, got {}", self.kind.name(), self.conditions + 2, values.len());
        }
        let n = values[1].len();
        let mut masks = vec![0u32; n];
        for (k, c) in values[2..].iter().enumerate() {
            let c = c.as_boolean();
            let on = match c.nulls() {
                Some(valid) => c.values() & valid.inner(),
                None => c.values().clone(),
            };
            for i in on.set_indices() {
                masks[i] |= 1 << k;
            }
        }
        if let Some(nulls) = values[1].logical_nulls() {
            for i in (0..n).filter(|&i| nulls.is_null(i)) {
                masks[i] = 0;
            }
        }
        if let Some(f) = filter {
            for (i, m) in masks.iter_mut().enumerate() {
                if !(f.is_valid(i) && f.value(i)) {
                    *m = 0;
                }
            }
        }
        Ok(masks)
    }

    /// Evaluate each group (`evs[offsets[g]..offsets[g + 1]]`, unsorted) into one array.
    fn evaluate(&self, evs: &mut [Ev], offsets: &[usize]) -> Result<ArrayRef> {
        let groups = offsets.len().saturating_sub(1);
        let mut scratch = Scratch::default();
        let too_hard = |e| DataFusionError::Execution(format!("{}: {e}", self.kind.name()));
        let p = &self.pattern;
        match self.kind {
            Kind::Match => {
                let mut out = Vec::with_capacity(groups);
                for g in 0..groups {
                    let group = &mut evs[offsets[g]..offsets[g + 1]];
                    // Most visitors lack a condition: no need to sort their events.
                    let matched = p.all_met(group) && {
                        sort_events(group);
                        p.matches(group, self.unit, &mut scratch).map_err(too_hard)?
                    };
                    out.push(matched);
                }
                Ok(Arc::new(BooleanArray::from(out)))
            }
            Kind::Count => {
                let mut out = Vec::with_capacity(groups);
                for g in 0..groups {
                    let group = &mut evs[offsets[g]..offsets[g + 1]];
                    let count = if p.all_met(group) {
                        sort_events(group);
                        p.count(group, self.unit, &mut scratch).map_err(too_hard)? as i64
                    } else {
                        0
                    };
                    out.push(count);
                }
                Ok(Arc::new(Int64Array::from(out)))
            }
            Kind::Events => {
                let (mut times, mut ends) = (Vec::new(), vec![0usize]);
                for g in 0..groups {
                    let group = &mut evs[offsets[g]..offsets[g + 1]];
                    sort_events(group);
                    let chain = p.match_events(group, self.unit, &mut scratch).map_err(too_hard)?;
                    times.extend(chain.iter().map(|&i| group[i].ts));
                    ends.push(times.len());
                }
                let times = cast(&(Arc::new(Int64Array::from(times)) as ArrayRef), &self.ts_type)?;
                Ok(list_array(times, &ends))
            }
        }
    }
}

impl AggregateUDFImpl for Sequence {
    fn name(&self) -> &str {
        self.kind.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        let usage = format!("{}(pattern VARCHAR, ts TIMESTAMP, cond1 BOOLEAN, ...)", self.name());
        if args.len() < 3 || args.len() > 2 + MAX_CONDITIONS {
            return plan_err!("{usage} takes 1 to {MAX_CONDITIONS} conditions, got {}", args.len().saturating_sub(2));
        }
        if !matches!(args[0], DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) {
            return plan_err!("{usage}: pattern must be a string, got {}", args[0]);
        }
        let ts = match &args[1] {
            DataType::Timestamp(_, tz) => DataType::Timestamp(TimeUnit::Microsecond, tz.clone()),
            t if t.is_integer() => DataType::Int64,
            t => return plan_err!("{usage}: ts must be a TIMESTAMP or an integer, got {t}"),
        };
        if let Some((k, t)) =
            args[2..].iter().enumerate().find(|(_, t)| !matches!(t, DataType::Boolean | DataType::Null))
        {
            return plan_err!("{usage}: condition {} must be BOOLEAN, got {t}", k + 1);
        }
        let mut out = vec![DataType::Utf8, ts];
        out.extend(std::iter::repeat_n(DataType::Boolean, args.len() - 2));
        Ok(out)
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(match self.kind {
            Kind::Match => DataType::Boolean,
            Kind::Count => DataType::Int64,
            Kind::Events => {
                DataType::List(Arc::new(Field::new_list_field(args.get(1).cloned().unwrap_or(DataType::Int64), true)))
            }
        })
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(SequenceAccumulator { settings: Settings::new(self.kind, &args)?, evs: Vec::new() }))
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(SequenceGroups {
            settings: Settings::new(self.kind, &args)?,
            evs: Vec::new(),
            groups: Vec::new(),
            total: 0,
        }))
    }

    /// The events, packed ([`pack`]).
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(format_state_name(args.name, "events"), DataType::Binary, true))])
    }

    /// Checks the pattern while the statement is planned, so a malformed one fails before any
    /// row is read; the expression itself is left as it is.
    fn simplify(&self) -> Option<AggregateFunctionSimplification> {
        let name = self.kind.name();
        Some(Box::new(move |f: AggregateFunction, _| {
            let args = &f.params.args;
            match args.first() {
                Some(Expr::Literal(v, _)) if pattern_text(v).is_some() => {
                    parse(name, pattern_text(v).unwrap_or_default(), args.len().saturating_sub(2))?;
                }
                _ => return plan_err!("{name}: the pattern must be a constant string"),
            }
            Ok(Expr::AggregateFunction(f))
        }))
    }
}

/// Bytes of one packed event.
const PACKED: usize = 12;

/// Append one event's bytes (read back by [`read_state`]).
fn put(bytes: &mut Vec<u8>, e: Ev) {
    bytes.extend_from_slice(&e.ts.to_le_bytes());
    bytes.extend_from_slice(&e.mask.to_le_bytes());
}

/// The binary column of packed `bytes`, cut into one value per group at `offsets` (counted in
/// events, n + 1 of them).
fn packed(bytes: Vec<u8>, offsets: &[usize]) -> ArrayRef {
    let offsets: Vec<i32> = offsets.iter().map(|&o| (o * PACKED) as i32).collect();
    Arc::new(BinaryArray::new(OffsetBuffer::new(offsets.into()), Buffer::from_vec(bytes), None))
}

/// `evs` packed, one binary value per group (`evs[offsets[g]..offsets[g + 1]]`).
fn pack(evs: impl ExactSizeIterator<Item = Ev>, offsets: &[usize]) -> ArrayRef {
    let mut bytes = Vec::with_capacity(evs.len() * PACKED);
    for e in evs {
        put(&mut bytes, e);
    }
    packed(bytes, offsets)
}

/// How many events a packed state holds.
fn packed_events(states: &[ArrayRef]) -> usize {
    let offsets = states[0].as_binary::<i32>().value_offsets();
    (offsets[offsets.len() - 1] - offsets[0]) as usize / PACKED
}

/// Read a packed state into `push(row, event)`.
fn read_state(states: &[ArrayRef], mut push: impl FnMut(usize, Ev)) {
    let packed = states[0].as_binary::<i32>();
    let offsets = packed.value_offsets();
    let bytes = packed.values().as_slice();
    for i in 0..packed.len() {
        let event_bytes = &bytes[offsets[i] as usize..offsets[i + 1] as usize];
        for e in event_bytes.chunks_exact(PACKED) {
            let ts = i64::from_le_bytes(e[..8].try_into().expect("8 bytes"));
            let mask = u32::from_le_bytes(e[8..].try_into().expect("4 bytes"));
            push(i, Ev { ts, mask });
        }
    }
}

/// The times of `values[1]` (a TIMESTAMP in µs or an Int64, per `coerce_types`).
fn times(ts: &ArrayRef) -> &[i64] {
    match ts.data_type() {
        DataType::Timestamp(..) => ts.as_primitive::<TimestampMicrosecondType>().values(),
        _ => ts.as_primitive::<Int64Type>().values(),
    }
}

/// The events of one group.
#[derive(Debug)]
struct SequenceAccumulator {
    settings: Settings,
    evs: Vec<Ev>,
}

impl Accumulator for SequenceAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let masks = self.settings.masks(values, None)?;
        let ts = times(&values[1]);
        self.evs.extend(masks.iter().zip(ts).filter(|(m, _)| **m != 0).map(|(&mask, &ts)| Ev { ts, mask }));
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.evs.reserve(packed_events(states));
        read_state(states, |_, e| self.evs.push(e));
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let packed = pack(self.evs.iter().copied(), &[0, self.evs.len()]);
        Ok(vec![ScalarValue::try_from_array(&packed, 0)?])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let n = self.evs.len();
        let out = self.settings.evaluate(&mut self.evs, &[0, n])?;
        ScalarValue::try_from_array(&out, 0)
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.evs.capacity() * size_of::<Ev>()
    }
}

/// The events of all groups: `evs[i]` belongs to group `groups[i]`.
#[derive(Debug)]
struct SequenceGroups {
    settings: Settings,
    evs: Vec<Ev>,
    groups: Vec<u32>,
    total: usize,
}

impl SequenceGroups {
    /// Group indexes are kept as u32: refuse more groups than that.
    fn groups(&mut self, total_num_groups: usize) -> Result<()> {
        if u32::try_from(total_num_groups).is_err() {
            return exec_err!("{}: more than {} groups", self.settings.kind.name(), u32::MAX);
        }
        self.total = self.total.max(total_num_groups);
        Ok(())
    }
}

impl GroupsAccumulator for SequenceGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.groups(total_num_groups)?;
        let masks = self.settings.masks(values, opt_filter)?;
        let ts = times(&values[1]);
        for (i, &g) in group_indices.iter().enumerate() {
            if masks[i] != 0 {
                self.evs.push(Ev { ts: ts[i], mask: masks[i] });
                self.groups.push(g as u32);
            }
        }
        Ok(())
    }

    fn merge_batch(&mut self, values: &[ArrayRef], group_indices: &[usize], total_num_groups: usize) -> Result<()> {
        self.groups(total_num_groups)?;
        let n = packed_events(values);
        self.evs.reserve(n);
        self.groups.reserve(n);
        read_state(values, |i, e| {
            self.evs.push(e);
            self.groups.push(group_indices[i] as u32);
        });
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let (mut evs, offsets, _) = take_groups(&mut self.evs, &mut self.groups, &mut self.total, emit_to);
        self.settings.evaluate(&mut evs, &offsets)
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let (evs, offsets, _) = take_groups(&mut self.evs, &mut self.groups, &mut self.total, emit_to);
        Ok(vec![pack(evs.into_iter(), &offsets)])
    }

    /// Each row as its own group.
    fn convert_to_state(&self, values: &[ArrayRef], opt_filter: Option<&BooleanArray>) -> Result<Vec<ArrayRef>> {
        let masks = self.settings.masks(values, opt_filter)?;
        let ts = times(&values[1]);
        let mut offsets = Vec::with_capacity(masks.len() + 1);
        offsets.push(0);
        let mut bytes = Vec::with_capacity(masks.len() * PACKED);
        for (i, &mask) in masks.iter().enumerate() {
            if mask != 0 {
                put(&mut bytes, Ev { ts: ts[i], mask });
            }
            offsets.push(bytes.len() / PACKED);
        }
        Ok(vec![packed(bytes, &offsets)])
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.evs.capacity() * size_of::<Ev>() + self.groups.capacity() * size_of::<u32>()
    }
}
