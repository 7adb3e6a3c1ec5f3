//! The pattern language of `sequence_match`, `sequence_count` and `sequence_match_events`, and
//! the matcher, with ClickHouse's semantics (`AggregateFunctionSequenceMatch`):
//!
//! - `(?N)` an event that satisfies condition N (1-based); `.` any one event; `.*` any number of
//!   events; `(?t op secs)` with `op` one of `<`, `<=`, `>`, `>=`, `==`: a time constraint
//!   between the event before it and the one after it, in whole seconds.
//! - The events are the rows that satisfy at least one condition, in time order; rows that
//!   satisfy none are not part of any chain. `(?1)(?2)` needs a condition-2 event right after a
//!   condition-1 event among those; `(?1).*(?2)` allows any in between.
//! - The pattern is matched from every event onward (an implicit leading `.*`), by the same
//!   backtracking search as ClickHouse, so the first match, the count of non-overlapping matches
//!   and the events of the longest partial chain are ClickHouse's. A time constraint reads
//!   "skip any events while the constraint can still hold": `<` and `<=` give up as soon as an
//!   event is too late, `>`, `>=` and `==` skip events until one is late enough.
//! - Without a time constraint `sequence_match` runs ClickHouse's automaton (one pass, no
//!   backtracking); `sequence_count` and `sequence_match_events` always backtrack.
//! - One search gives up after [`MAX_STEPS`] steps, as ClickHouse does, with an error.

use std::fmt;

/// Most conditions a pattern function takes (ClickHouse's limit).
pub const MAX_CONDITIONS: usize = 32;

/// Steps one backtracking search may take before it gives up (ClickHouse's
/// `sequence_match_max_iterations`).
pub const MAX_STEPS: usize = 1_000_000;

/// A time comparison in `(?t op secs)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeOp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

impl TimeOp {
    /// Whether an event at second `t` meets the constraint `limit` (the base event's second
    /// plus the constraint's).
    pub fn holds(self, t: i64, limit: i64) -> bool {
        match self {
            TimeOp::Lt => t < limit,
            TimeOp::Le => t <= limit,
            TimeOp::Gt => t > limit,
            TimeOp::Ge => t >= limit,
            TimeOp::Eq => t == limit,
        }
    }
}

/// One element of a parsed pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// `(?N)`: condition N−1 (0-based).
    Event(u8),
    /// `.`
    Any,
    /// `.*` (and the implicit one every pattern starts with).
    Star,
    /// `(?t op secs)`
    Time(TimeOp, i64),
}

impl Action {
    /// Whether the action can be left unmatched at the end of the events (ClickHouse's
    /// "match multiple empty strings at end").
    pub fn skippable_at_end(self) -> bool {
        matches!(self, Action::Star | Action::Time(TimeOp::Lt | TimeOp::Le, _) | Action::Time(TimeOp::Ge, 0))
    }
}

/// A pattern that did not parse: what was wrong and where (1-based character position).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatternError {
    pub position: usize,
    pub message: String,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at position {}", self.message, self.position)
    }
}

/// One event: its time (µs for a TIMESTAMP, the raw value for an integer) and the conditions it
/// satisfies (bit k = condition k+1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Ev {
    pub ts: i64,
    pub mask: u32,
}

/// Sort events into the order the matcher reads them: by time, and at one instant by their
/// conditions, lowest condition first (a condition-1 event before a condition-2 one). ClickHouse
/// leaves ties in an undefined order; this makes them deterministic whatever the partitioning.
pub fn sort_events(evs: &mut [Ev]) {
    evs.sort_unstable_by_key(|e| (e.ts, std::cmp::Reverse(e.mask.reverse_bits())));
}

/// Automaton state (ClickHouse's `DFAState`).
#[derive(Clone, Copy, Debug)]
struct State {
    star: bool,
    /// `None`: no transition; `Some(None)`: any event; `Some(Some(k))`: condition k.
    next: Option<Option<u8>>,
}

/// A parsed pattern.
#[derive(Clone, Debug)]
pub struct Pattern {
    actions: Vec<Action>,
    states: Vec<State>,
    has_time: bool,
    /// The conditions the pattern names.
    needs: u32,
}

impl Pattern {
    /// Parse `text` for a function given `conditions` conditions.
    pub fn parse(text: &str, conditions: usize) -> Result<Self, PatternError> {
        let b = text.as_bytes();
        let mut actions = vec![Action::Star];
        let mut states = vec![State { star: true, next: None }];
        let (mut has_time, mut needs) = (false, 0u32);
        let mut pos = 0;
        let err = |at: usize, message: String| PatternError { position: char_pos(text, at), message };
        let rest = |at: usize| format!("{:?}", &text[at..]);
        while pos < b.len() {
            let start = pos;
            if b[pos..].starts_with(b"(?") {
                pos += 2;
                if b.get(pos) == Some(&b't') {
                    pos += 1;
                    let ops: [(&[u8], TimeOp); 5] = [
                        (b"<=", TimeOp::Le),
                        (b"<", TimeOp::Lt),
                        (b">=", TimeOp::Ge),
                        (b">", TimeOp::Gt),
                        (b"==", TimeOp::Eq),
                    ];
                    let Some(&(sym, op)) = ops.iter().find(|(s, _)| b[pos..].starts_with(s)) else {
                        return Err(err(pos, format!("unknown time comparison {}; use <, <=, >, >= or ==", rest(pos))));
                    };
                    pos += sym.len();
                    let (secs, end) = number(b, pos).ok_or_else(|| {
                        err(pos, format!("expected a number of seconds after (?t{}, found {}", op_text(op), rest(pos)))
                    })?;
                    if !matches!(actions.last(), Some(Action::Event(_) | Action::Any | Action::Star)) {
                        return Err(err(
                            start,
                            "a time constraint must follow an event ((?N), . or .*), not another time constraint"
                                .to_owned(),
                        ));
                    }
                    pos = end;
                    has_time = true;
                    actions.push(Action::Time(op, secs));
                } else {
                    let Some((n, end)) = number(b, pos) else {
                        return Err(err(
                            pos,
                            format!(
                                "expected a condition number (?N) or a time constraint (?t op secs), found {}",
                                rest(pos)
                            ),
                        ));
                    };
                    if n < 1 || n as usize > conditions {
                        return Err(err(
                            pos,
                            format!(
                                "condition (?{n}) does not exist: the function was given {conditions} condition{}",
                                if conditions == 1 { "" } else { "s" }
                            ),
                        ));
                    }
                    pos = end;
                    let k = (n - 1) as u8;
                    actions.push(Action::Event(k));
                    needs |= 1 << k;
                    states.last_mut().expect("a state").next = Some(Some(k));
                    states.push(State { star: false, next: None });
                }
                if b.get(pos) != Some(&b')') {
                    return Err(err(pos, format!("expected ')', found {}", rest(pos))));
                }
                pos += 1;
            } else if b[pos..].starts_with(b".*") {
                pos += 2;
                actions.push(Action::Star);
                states.last_mut().expect("a state").star = true;
            } else if b[pos] == b'.' {
                pos += 1;
                actions.push(Action::Any);
                states.last_mut().expect("a state").next = Some(None);
                states.push(State { star: false, next: None });
            } else {
                return Err(err(
                    pos,
                    format!("unexpected {}; a pattern is made of (?N), ., .* and (?t op secs)", rest(pos)),
                ));
            }
        }
        Ok(Self { actions, states, has_time, needs })
    }

    /// The parsed actions, starting with the implicit `.*`.
    pub fn actions(&self) -> &[Action] {
        &self.actions
    }

    /// Whether the pattern has a time constraint.
    pub fn has_time(&self) -> bool {
        self.has_time
    }

    /// `sequence_match` over sorted `evs`; `unit` turns a time into seconds.
    pub fn matches(&self, evs: &[Ev], unit: i64, scratch: &mut Scratch) -> Result<bool, TooHard> {
        if !self.all_met(evs) {
            return Ok(false);
        }
        if self.has_time { Ok(self.search(evs, unit, 0, scratch, false)?.0) } else { Ok(self.automaton(evs)) }
    }

    /// `sequence_count`: non-overlapping matches, each search starting after the previous match.
    pub fn count(&self, evs: &[Ev], unit: i64, scratch: &mut Scratch) -> Result<u64, TooHard> {
        if !self.all_met(evs) {
            return Ok(0);
        }
        let (mut at, mut n) = (0, 0);
        while at < evs.len() {
            let (found, next) = self.search(evs, unit, at, scratch, false)?;
            if !found {
                break;
            }
            n += 1;
            at = next;
        }
        Ok(n)
    }

    /// `sequence_match_events`: the indexes of the events of the longest chain the first search
    /// reached (the first such): a match's events, or the longest partial chain when nothing
    /// matches. Only `(?N)` records an event. As in ClickHouse, a chain that has all its events
    /// but fails a trailing constraint (`(?1)(?t==2)`) is kept over a later match that is no
    /// longer.
    pub fn match_events(&self, evs: &[Ev], unit: i64, scratch: &mut Scratch) -> Result<Vec<usize>, TooHard> {
        self.search(evs, unit, 0, scratch, true)?;
        Ok(scratch.best.iter().map(|&i| i as usize).collect())
    }

    /// Every condition the pattern names is met by some event (ClickHouse's quick rejection:
    /// without it `sequence_match` is false and `sequence_count` 0). Order does not matter, so
    /// it may be asked before the events are sorted.
    pub fn all_met(&self, evs: &[Ev]) -> bool {
        if self.needs == 0 {
            return true;
        }
        let mut met = 0u32;
        for e in evs {
            met |= e.mask;
            if met & self.needs == self.needs {
                return true;
            }
        }
        false
    }

    /// ClickHouse's `dfaMatch`: one pass with the set of active states.
    fn automaton(&self, evs: &[Ev]) -> bool {
        let last = self.states.len() - 1;
        let mut active: u64 = 1;
        for e in evs {
            if active == 0 || active >> last & 1 == 1 {
                break;
            }
            let mut next = 0u64;
            let mut bits = active;
            while bits != 0 {
                let s = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let st = self.states[s];
                match st.next {
                    Some(None) => next |= 1 << (s + 1),
                    Some(Some(k)) if e.mask >> k & 1 == 1 => next |= 1 << (s + 1),
                    _ => {}
                }
                if st.star {
                    next |= 1 << s;
                }
            }
            active = next;
        }
        active >> last & 1 == 1
    }

    /// ClickHouse's `backtrackingMatch` from event `start`: (matched, where the next search
    /// starts). With `record`, `scratch.chain` holds the current chain's events and
    /// `scratch.best` the longest chain seen.
    fn search(
        &self,
        evs: &[Ev],
        unit: i64,
        start: usize,
        scratch: &mut Scratch,
        record: bool,
    ) -> Result<(bool, usize), TooHard> {
        let n = evs.len();
        let acts = &self.actions;
        let secs = |i: usize| evs[i].ts.div_euclid(unit);
        scratch.stack.clear();
        scratch.chain.clear();
        scratch.best.clear();
        let (mut a, mut ev, mut base) = (0usize, start, start);
        let mut steps = 0usize;
        // Go back to the latest choice that still has events to try.
        let backtrack = |s: &mut Scratch, a: &mut usize, ev: &mut usize, base: &mut usize| -> bool {
            while let Some(f) = s.stack.pop() {
                *a = f.action as usize;
                *ev = f.ev as usize + 1;
                *base = f.base as usize;
                s.chain.truncate(f.chain as usize);
                if *ev != n {
                    return true;
                }
            }
            false
        };
        while a < acts.len() && ev < n {
            let go_on = match acts[a] {
                Action::Event(k) => {
                    if evs[ev].mask >> k & 1 == 1 {
                        if record {
                            scratch.chain.push(ev as u32);
                            if scratch.chain.len() > scratch.best.len() {
                                scratch.best.clone_from(&scratch.chain);
                            }
                        }
                        base = ev;
                        a += 1;
                        ev += 1;
                        true
                    } else {
                        backtrack(scratch, &mut a, &mut ev, &mut base)
                    }
                }
                Action::Any => {
                    base = ev;
                    a += 1;
                    ev += 1;
                    true
                }
                Action::Star => {
                    scratch.push(a, ev, base);
                    base = ev;
                    a += 1;
                    true
                }
                Action::Time(op, d) => {
                    if op.holds(secs(ev), secs(base).saturating_add(d)) {
                        scratch.push(a, ev, base);
                        base = ev;
                        a += 1;
                        true
                    } else if matches!(op, TimeOp::Lt | TimeOp::Le) {
                        backtrack(scratch, &mut a, &mut ev, &mut base)
                    } else {
                        ev += 1;
                        ev != n || backtrack(scratch, &mut a, &mut ev, &mut base)
                    }
                }
            };
            if !go_on {
                break;
            }
            steps += 1;
            if steps > MAX_STEPS {
                return Err(TooHard);
            }
        }
        while a < acts.len() && acts[a].skippable_at_end() {
            a += 1;
        }
        if ev == start {
            ev += 1;
        }
        Ok((a == acts.len(), ev))
    }
}

/// A search went past [`MAX_STEPS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooHard;

impl fmt::Display for TooHard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the pattern took more than {MAX_STEPS} steps to match one group's events (ClickHouse's limit); \
             narrow the rows with WHERE, or anchor the pattern with fewer .* and time constraints"
        )
    }
}

/// A backtracking choice: the action, the event it was tried at, the base event and the
/// recorded chain's length then.
#[derive(Clone, Copy, Debug)]
struct Frame {
    action: u32,
    ev: u32,
    base: u32,
    chain: u32,
}

/// Buffers a search reuses from group to group.
#[derive(Debug, Default)]
pub struct Scratch {
    stack: Vec<Frame>,
    chain: Vec<u32>,
    best: Vec<u32>,
}

impl Scratch {
    fn push(&mut self, a: usize, ev: usize, base: usize) {
        let chain = self.chain.len() as u32;
        self.stack.push(Frame { action: a as u32, ev: ev as u32, base: base as u32, chain });
    }
}

fn number(b: &[u8], at: usize) -> Option<(i64, usize)> {
    let digits = b[at..].iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let s = std::str::from_utf8(&b[at..at + digits]).ok()?;
    Some((s.parse().ok()?, at + digits))
}

fn op_text(op: TimeOp) -> &'static str {
    match op {
        TimeOp::Lt => "<",
        TimeOp::Le => "<=",
        TimeOp::Gt => ">",
        TimeOp::Ge => ">=",
        TimeOp::Eq => "==",
    }
}

/// The 1-based character position of byte `at` in `text`.
fn char_pos(text: &str, at: usize) -> usize {
    text.char_indices().take_while(|(i, _)| *i < at).count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(p: &str, conditions: usize) -> String {
        Pattern::parse(p, conditions).expect_err("should not parse").to_string()
    }

    #[test]
    fn parses_every_element() {
        let p = Pattern::parse("(?1).*(?t<=600)(?2).(?t==0)(?3)", 3).expect("parse");
        assert_eq!(
            p.actions,
            vec![
                Action::Star,
                Action::Event(0),
                Action::Star,
                Action::Time(TimeOp::Le, 600),
                Action::Event(1),
                Action::Any,
                Action::Time(TimeOp::Eq, 0),
                Action::Event(2),
            ]
        );
        assert!(p.has_time());
        assert_eq!(p.needs, 0b111);
        assert!(Pattern::parse("", 1).is_ok());
        assert!(Pattern::parse("(?t<5)", 1).is_ok(), "the implicit leading .* is an event");
    }

    #[test]
    fn errors_name_the_position() {
        assert_eq!(
            err("(?1)(?x)", 2),
            "expected a condition number (?N) or a time constraint (?t op secs), found \"x)\" at position 7"
        );
        assert_eq!(
            err("(?1)(?t~5)(?2)", 2),
            "unknown time comparison \"~5)(?2)\"; use <, <=, >, >= or == at position 8"
        );
        assert_eq!(err("(?1)(?t<)(?2)", 2), "expected a number of seconds after (?t<, found \")(?2)\" at position 9");
        assert_eq!(
            err("(?1)(?3)", 2),
            "condition (?3) does not exist: the function was given 2 conditions at position 7"
        );
        assert_eq!(err("(?0)", 2), "condition (?0) does not exist: the function was given 2 conditions at position 3");
        assert_eq!(err("(?1", 1), "expected ')', found \"\" at position 4");
        assert_eq!(
            err("(?1) (?1)", 1),
            "unexpected \" (?1)\"; a pattern is made of (?N), ., .* and (?t op secs) at position 5"
        );
        assert!(err("(?1)(?t<5)(?t>1)", 1).ends_with("at position 11"), "{}", err("(?1)(?t<5)(?t>1)", 1));
        assert!(err("é(?1)", 1).ends_with("at position 1"));
        assert!(err("(?1)é", 1).ends_with("at position 5"));
    }
}
