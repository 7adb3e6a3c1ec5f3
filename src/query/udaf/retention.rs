//! `retention(cond1, …, condN) → LIST<UINT8>`, with ClickHouse's semantics.
//!
//! Over the rows of a group (typically `GROUP BY visitor_id`), element 1 is 1 if any row
//! satisfied `cond1`; element k (k ≥ 2) is 1 if any row satisfied `cond1` **and** any row
//! satisfied `condk` (not necessarily the same row). NULL conditions count as false. 1 to 32
//! conditions. Example, weekly retention of visitors first seen in week 0:
//! `retention(week = 0, week = 1, week = 2)`.
//!
//! State: one boolean per condition ("seen"), merged with OR, so the result does not depend
//! on row order or on how the rows were split into partial aggregates.

use std::mem::size_of_val;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, ListArray, UInt8Array};
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{ScalarValue, exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility};

/// Most conditions accepted (as in ClickHouse).
pub const MAX_CONDITIONS: usize = 32;

/// The `retention` aggregate.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Retention {
    signature: Signature,
}

impl Default for Retention {
    fn default() -> Self {
        Self::new()
    }
}

impl Retention {
    pub fn new() -> Self {
        // Aggregates do not support variadic signatures; `coerce_types` checks the arguments.
        Self { signature: Signature::user_defined(Volatility::Immutable) }
    }
}

fn result_type() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::UInt8, true)))
}

impl AggregateUDFImpl for Retention {
    fn name(&self) -> &str {
        "retention"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        if args.is_empty() || args.len() > MAX_CONDITIONS {
            return plan_err!("retention takes 1 to {MAX_CONDITIONS} conditions, got {}", args.len());
        }
        if let Some((k, t)) = args.iter().enumerate().find(|(_, t)| !matches!(t, DataType::Boolean | DataType::Null)) {
            return plan_err!("retention condition {} must be BOOLEAN, got {t}", k + 1);
        }
        Ok(vec![DataType::Boolean; args.len()])
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        if args.is_empty() || args.len() > MAX_CONDITIONS {
            return plan_err!("retention takes 1 to {MAX_CONDITIONS} conditions, got {}", args.len());
        }
        Ok(result_type())
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(RetentionAccumulator { seen: vec![false; args.exprs.len()] }))
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    /// All groups in one accumulator: a bit set per group (conditions ≤ 32).
    fn create_groups_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(RetentionGroups { conditions: args.exprs.len(), seen: Vec::new() }))
    }

    /// One boolean per condition: whether any row of the group satisfied it.
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok((0..args.input_fields.len())
            .map(|k| Arc::new(Field::new(format_state_name(args.name, &format!("seen{k}")), DataType::Boolean, true)))
            .collect())
    }
}

/// Whether each condition has been satisfied by some row of the group.
#[derive(Debug)]
pub struct RetentionAccumulator {
    seen: Vec<bool>,
}

impl RetentionAccumulator {
    fn absorb(&mut self, columns: &[ArrayRef]) -> Result<()> {
        if columns.len() != self.seen.len() {
            return exec_err!("retention expected {} columns, got {}", self.seen.len(), columns.len());
        }
        for (seen, col) in self.seen.iter_mut().zip(columns) {
            let Some(b) = col.as_boolean_opt() else {
                return exec_err!("retention conditions must be BOOLEAN, got {}", col.data_type());
            };
            *seen = *seen || any_true(b);
        }
        Ok(())
    }
}

fn any_true(b: &BooleanArray) -> bool {
    b.true_count() > 0 // true_count ignores nulls
}

impl Accumulator for RetentionAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.absorb(values)
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.absorb(states)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(self.seen.iter().map(|s| ScalarValue::Boolean(Some(*s))).collect())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let first = self.seen.first().copied().unwrap_or(false);
        let values: Vec<ScalarValue> = self
            .seen
            .iter()
            .enumerate()
            .map(|(k, s)| ScalarValue::UInt8(Some(u8::from(if k == 0 { *s } else { first && *s }))))
            .collect();
        Ok(ScalarValue::List(ScalarValue::new_list_nullable(&values, &DataType::UInt8)))
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.seen.capacity()
    }
}

/// [`RetentionAccumulator`] for every group at once: bit k of `seen[g]` says some row of group
/// g satisfied condition k+1.
#[derive(Debug)]
pub struct RetentionGroups {
    conditions: usize,
    seen: Vec<u32>,
}

impl RetentionGroups {
    fn absorb(
        &mut self,
        columns: &[ArrayRef],
        groups: &[usize],
        filter: Option<&BooleanArray>,
        total: usize,
    ) -> Result<()> {
        if columns.len() != self.conditions {
            return exec_err!("retention expected {} columns, got {}", self.conditions, columns.len());
        }
        self.seen.resize(total, 0);
        for (k, col) in columns.iter().enumerate() {
            let Some(b) = col.as_boolean_opt() else {
                return exec_err!("retention conditions must be BOOLEAN, got {}", col.data_type());
            };
            if b.true_count() == 0 {
                continue;
            }
            // Only the rows where the condition holds (usually few of a group's rows).
            for i in b.values().set_indices() {
                let kept = filter.is_none_or(|f| f.is_valid(i) && f.value(i));
                if kept && b.is_valid(i) {
                    self.seen[groups[i]] |= 1 << k;
                }
            }
        }
        Ok(())
    }
}

impl GroupsAccumulator for RetentionGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.absorb(values, group_indices, opt_filter, total_num_groups)
    }

    fn merge_batch(&mut self, values: &[ArrayRef], group_indices: &[usize], total_num_groups: usize) -> Result<()> {
        self.absorb(values, group_indices, None, total_num_groups)
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let seen = emit_to.take_needed(&mut self.seen);
        let n = self.conditions;
        let values: UInt8Array =
            seen.iter().flat_map(|s| (0..n).map(move |k| u8::from(s & 1 != 0 && s & (1 << k) != 0))).collect();
        let offsets = arrow::buffer::OffsetBuffer::from_lengths(std::iter::repeat_n(n, seen.len()));
        Ok(Arc::new(ListArray::new(
            Arc::new(Field::new_list_field(DataType::UInt8, true)),
            offsets,
            Arc::new(values),
            None,
        )))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let seen = emit_to.take_needed(&mut self.seen);
        Ok((0..self.conditions)
            .map(|k| Arc::new(seen.iter().map(|s| Some(s & (1 << k) != 0)).collect::<BooleanArray>()) as ArrayRef)
            .collect())
    }

    /// Each row as its own group (a fresh accumulator over rows 0..n).
    fn convert_to_state(&self, values: &[ArrayRef], opt_filter: Option<&BooleanArray>) -> Result<Vec<ArrayRef>> {
        let n = values.first().map_or(0, |v| v.len());
        let mut fresh = RetentionGroups { conditions: self.conditions, seen: Vec::new() };
        fresh.update_batch(values, &(0..n).collect::<Vec<_>>(), opt_filter, n)?;
        fresh.state(EmitTo::All)
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.seen.capacity() * std::mem::size_of::<u32>()
    }
}
