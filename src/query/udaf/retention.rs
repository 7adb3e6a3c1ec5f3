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

use arrow::array::{ArrayRef, AsArray, BooleanArray};
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{ScalarValue, exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, Signature, Volatility};

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
