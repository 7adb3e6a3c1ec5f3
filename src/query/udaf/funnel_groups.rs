//! `window_funnel` for every group at once ([`GroupsAccumulator`]), which DataFusion uses for
//! `GROUP BY`: one arena of entries with their group index instead of one boxed accumulator
//! and one vector per group. At evaluation the entries are bucketed by group (a counting sort),
//! each group's few entries are sorted, and [`super::funnel::level`] runs on them: the same
//! semantics as [`super::funnel::FunnelAccumulator`], which the property tests check through
//! both paths.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int32Array, Int64Array, ListArray, StringArray, UInt8Array, UInt64Array,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{Field, Int64Type, TimestampMicrosecondType, UInt8Type, UInt64Type};
use datafusion::common::exec_err;
use datafusion::error::Result;
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};

use super::funnel::{Entry, Modes, level};

/// The entries of all groups: `entries[i]` belongs to group `groups[i]`.
#[derive(Debug, Default)]
pub struct FunnelGroups {
    steps: usize,
    window: Option<i64>,
    modes: Option<(String, Modes)>,
    entries: Vec<Entry>,
    groups: Vec<u32>,
    total: usize,
    next_row: u64,
}

impl FunnelGroups {
    /// For `steps` conditions.
    pub fn new(steps: usize) -> Self {
        Self { steps, ..Self::default() }
    }

    fn settings(&mut self, window: &Int64Array, modes: &StringArray) -> Result<()> {
        if self.window.is_none() {
            self.window = window.iter().flatten().next();
        }
        if self.modes.is_none()
            && let Some(m) = modes.iter().flatten().next()
        {
            self.modes = Some((m.to_owned(), Modes::parse(m)?));
        }
        Ok(())
    }

    fn parsed(&self) -> Modes {
        self.modes.as_ref().map(|m| m.1).unwrap_or_default()
    }

    /// The entries of the groups `emit_to` emits ([`take_groups`]).
    fn take(&mut self, emit_to: EmitTo) -> (Vec<Entry>, Vec<usize>, usize) {
        take_groups(&mut self.entries, &mut self.groups, &mut self.total, emit_to)
    }

    fn push(&mut self, g: usize, e: Entry) -> Result<()> {
        let Ok(g) = u32::try_from(g) else {
            return exec_err!("window_funnel: more than {} groups", u32::MAX);
        };
        self.entries.push(e);
        self.groups.push(g);
        Ok(())
    }
}

impl GroupsAccumulator for FunnelGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        if values.len() != self.steps + 3 {
            return exec_err!("window_funnel expected {} arguments, got {}", self.steps + 3, values.len());
        }
        self.total = self.total.max(total_num_groups);
        self.settings(values[0].as_primitive::<Int64Type>(), values[1].as_string::<i32>())?;
        let strict_order = self.parsed().strict_order;
        let ts = values[2].as_primitive::<TimestampMicrosecondType>();
        let conds: Vec<&BooleanArray> = values[3..].iter().map(|c| c.as_boolean()).collect();
        for (i, &g) in group_indices.iter().enumerate() {
            let row = self.next_row;
            self.next_row += 1;
            if ts.is_null(i) || opt_filter.is_some_and(|f| !(f.is_valid(i) && f.value(i))) {
                continue;
            }
            let t = ts.value(i);
            let mut any = false;
            for (k, c) in conds.iter().enumerate() {
                if c.is_valid(i) && c.value(i) {
                    self.push(g, Entry { ts: t, step: (k + 1) as u8, row: row as u32 })?;
                    any = true;
                }
            }
            if strict_order && !any {
                self.push(g, Entry { ts: t, step: 0, row: row as u32 })?;
            }
        }
        Ok(())
    }

    fn merge_batch(&mut self, values: &[ArrayRef], group_indices: &[usize], total_num_groups: usize) -> Result<()> {
        self.total = self.total.max(total_num_groups);
        self.settings(values[0].as_primitive::<Int64Type>(), values[1].as_string::<i32>())?;
        let (ts, step, row) = (values[2].as_list::<i32>(), values[3].as_list::<i32>(), values[4].as_list::<i32>());
        // The lists' flat values and offsets, read directly: `ListArray::value(i)` would make
        // an array per row, and there is a row per group (or per input row when DataFusion
        // skips the partial aggregation).
        let (tv, sv, rv) = (
            ts.values().as_primitive::<Int64Type>(),
            step.values().as_primitive::<UInt8Type>(),
            row.values().as_primitive::<UInt64Type>(),
        );
        let (to, so, ro) = (ts.value_offsets(), step.value_offsets(), row.value_offsets());
        for (i, &g) in group_indices.iter().enumerate() {
            if ts.is_null(i) {
                continue;
            }
            // Row ids only need to be unique within a group: shift this state's past ours.
            let offset = self.next_row;
            let (t0, s0, r0) = (to[i] as usize, so[i] as usize, ro[i] as usize);
            for j in 0..(to[i + 1] as usize - t0) {
                let r = rv.value(r0 + j).saturating_add(offset);
                self.next_row = self.next_row.max(r.saturating_add(1));
                self.push(g, Entry { ts: tv.value(t0 + j), step: sv.value(s0 + j), row: r as u32 })?;
            }
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let (mut entries, offsets, n) = self.take(emit_to);
        let Some(window) = self.window.filter(|w| *w >= 0).or(if entries.is_empty() { Some(0) } else { None }) else {
            return exec_err!("window_funnel: window_seconds must be a non-negative constant");
        };
        let modes = self.parsed();
        let window_us = window.saturating_mul(1_000_000);
        let mut out = Vec::with_capacity(n);
        for g in 0..n {
            let group = &mut entries[offsets[g]..offsets[g + 1]];
            group.sort_unstable();
            out.push(level(group, self.steps, window_us, modes) as i32);
        }
        Ok(Arc::new(Int32Array::from(out)))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let (entries, offsets, n) = self.take(emit_to);
        let list = |a: ArrayRef| list_array(a, &offsets);
        let modes = self.modes.as_ref().map(|m| m.0.as_str());
        Ok(vec![
            Arc::new(Int64Array::from(vec![self.window; n])),
            Arc::new(StringArray::from(vec![modes; n])),
            list(Arc::new(entries.iter().map(|e| e.ts).collect::<Int64Array>())),
            list(Arc::new(entries.iter().map(|e| e.step).collect::<UInt8Array>())),
            list(Arc::new(entries.iter().map(|e| u64::from(e.row)).collect::<UInt64Array>())),
        ])
    }

    /// Each row as its own group (a fresh accumulator over rows 0..n).
    fn convert_to_state(&self, values: &[ArrayRef], opt_filter: Option<&BooleanArray>) -> Result<Vec<ArrayRef>> {
        let n = values.first().map_or(0, |v| v.len());
        let mut fresh = FunnelGroups::new(self.steps);
        fresh.update_batch(values, &(0..n).collect::<Vec<_>>(), opt_filter, n)?;
        fresh.state(EmitTo::All)
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.groups.capacity() * std::mem::size_of::<u32>()
    }
}

/// Take the entries of the groups `emit_to` emits from an arena of (entry, group) pairs,
/// bucketed by group with a counting sort (one scatter pass; an in-place permutation saved the
/// copy but its random swaps were twice as slow): (entries, bucket offsets, number of groups).
/// The other groups' entries stay, their indexes moved down. Shared by the pattern functions.
pub(super) fn take_groups<E: Copy + Default>(
    entries: &mut Vec<E>,
    groups: &mut Vec<u32>,
    total: &mut usize,
    emit_to: EmitTo,
) -> (Vec<E>, Vec<usize>, usize) {
    let n = match emit_to {
        EmitTo::All => *total,
        EmitTo::First(n) => n.min(*total),
    };
    let mut offsets = vec![0usize; n + 1];
    for &g in groups.iter() {
        if (g as usize) < n {
            offsets[g as usize + 1] += 1;
        }
    }
    for i in 0..n {
        offsets[i + 1] += offsets[i];
    }
    let mut out = vec![E::default(); offsets[n]];
    let mut next = offsets.clone();
    if n == *total {
        // Every group goes: one scatter, nothing kept.
        for (e, &g) in entries.iter().zip(groups.iter()) {
            let at = &mut next[g as usize];
            out[*at] = *e;
            *at += 1;
        }
        entries.clear();
        groups.clear();
        *total = 0;
        return (out, offsets, n);
    }
    let (mut kept_e, mut kept_g) = (Vec::new(), Vec::new());
    let shift = n as u32;
    for (e, g) in std::mem::take(entries).into_iter().zip(std::mem::take(groups)) {
        if (g as usize) < n {
            out[next[g as usize]] = e;
            next[g as usize] += 1;
        } else {
            kept_e.push(e);
            kept_g.push(g - shift);
        }
    }
    *entries = kept_e;
    *groups = kept_g;
    *total -= n;
    (out, offsets, n)
}

/// `values` cut into one list per group at `offsets` (n + 1 of them).
pub(super) fn list_array(values: ArrayRef, offsets: &[usize]) -> ArrayRef {
    Arc::new(ListArray::new(
        Arc::new(Field::new_list_field(values.data_type().clone(), true)),
        OffsetBuffer::new(offsets.iter().map(|&o| o as i32).collect::<Vec<_>>().into()),
        values,
        None,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::TimestampMicrosecondArray;

    fn batch(ts: &[i64], c1: &[bool], c2: &[bool]) -> Vec<ArrayRef> {
        let n = ts.len();
        vec![
            Arc::new(Int64Array::from(vec![10; n])),
            Arc::new(StringArray::from(vec![""; n])),
            Arc::new(TimestampMicrosecondArray::from(ts.to_vec())),
            Arc::new(BooleanArray::from(c1.to_vec())),
            Arc::new(BooleanArray::from(c2.to_vec())),
        ]
    }

    const S: i64 = 1_000_000;

    #[test]
    fn groups_emit_first_n_and_keep_the_rest() {
        let mut acc = FunnelGroups::new(2);
        // group 0: step 1 then step 2 in 5 s; group 1: step 2 only; group 2: step 1, step 2 in 20 s.
        let v = batch(&[0, 5 * S, 0, 0, 20 * S], &[true, false, false, true, false], &[false, true, true, false, true]);
        acc.update_batch(&v, &[0, 0, 1, 2, 2], None, 3).expect("update");
        let first = acc.evaluate(EmitTo::First(2)).expect("evaluate");
        assert_eq!(first.as_primitive::<arrow::datatypes::Int32Type>().values().to_vec(), vec![2, 0]);
        let rest = acc.evaluate(EmitTo::All).expect("evaluate");
        assert_eq!(rest.as_primitive::<arrow::datatypes::Int32Type>().values().to_vec(), vec![1]);
    }

    #[test]
    fn state_round_trips_through_merge() {
        let mut a = FunnelGroups::new(2);
        a.update_batch(&batch(&[0, 3 * S], &[true, false], &[false, true]), &[1, 0], None, 2).expect("update");
        let state = a.state(EmitTo::All).expect("state");
        let mut b = FunnelGroups::new(2);
        b.update_batch(&batch(&[4 * S], &[false], &[true]), &[0], None, 1).expect("update");
        // a's group 1 (step 1 at 0) merges into b's group 0 (step 2 at 4 s); a's group 0 into b's 1.
        b.merge_batch(&state, &[1, 0], 2).expect("merge");
        let out = b.evaluate(EmitTo::All).expect("evaluate");
        assert_eq!(out.as_primitive::<arrow::datatypes::Int32Type>().values().to_vec(), vec![2, 0]);
    }
}
