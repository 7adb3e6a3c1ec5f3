//! The funnel's engine: one person's candidate events (sorted by time), walked through the
//! steps, exclusions and window exactly as [`super`] describes. Pure, so the proptests and the
//! `window_funnel` agreement tests hit it directly.

use super::Order;

/// One candidate event of a person.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ev {
    /// Microseconds since the epoch.
    pub t: i64,
    /// Bit k: matches step k (0-based).
    pub steps: u32,
    /// Bit k: matches exclusion k.
    pub excl: u32,
    pub breakdown: Option<String>,
}

/// What [`evaluate`] needs to know about the funnel.
#[derive(Clone, Debug)]
pub struct Config {
    pub order: Order,
    pub optional: Vec<bool>,
    /// Microseconds.
    pub window: i64,
    /// Entries must be in `[entry.0, entry.1)`.
    pub entry: (i64, i64),
    /// 0-based (from, to) step indices per exclusion.
    pub exclusions: Vec<(usize, usize)>,
}

/// A person's outcome.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    NotEntered,
    Excluded,
    /// `times[k]`: when step k was done (ordered/strict), or when the (k+1)-th distinct step
    /// was done (`any`); `entry`: index of the entry event.
    Converted {
        entry: usize,
        times: Vec<Option<i64>>,
    },
}

/// Walk one person's events (sorted by time) through the funnel.
pub fn evaluate(events: &[Ev], cfg: &Config) -> Outcome {
    let n = cfg.optional.len();
    let mut best: Option<(usize, usize, Vec<Option<i64>>)> = None; // (level, entry, times)
    let mut entered = false;
    for (i, e) in events.iter().enumerate() {
        let starts = if cfg.order == Order::Any { e.steps != 0 } else { e.steps & 1 != 0 };
        if !starts || e.t < cfg.entry.0 || e.t >= cfg.entry.1 {
            continue;
        }
        entered = true;
        let Some((level, times)) = walk(events, i, cfg) else { continue };
        if best.as_ref().is_none_or(|b| level > b.0) {
            best = Some((level, i, times));
            if level == n {
                break;
            }
        }
    }
    match best {
        Some((_, entry, times)) => Outcome::Converted { entry, times },
        None if entered => Outcome::Excluded,
        None => Outcome::NotEntered,
    }
}

/// The chain from entry `i`: (steps reached, times), or `None` if an exclusion hit it.
fn walk(events: &[Ev], i: usize, cfg: &Config) -> Option<(usize, Vec<Option<i64>>)> {
    let n = cfg.optional.len();
    let t0 = events[i].t;
    let deadline = t0.saturating_add(cfg.window);
    let mut times = vec![None; n];
    // Last step index done (ordered/strict), or distinct steps done (any).
    let (mut cur, mut seen) = (0usize, 0u32);
    if cfg.order == Order::Any {
        seen = events[i].steps;
        for _ in 0..seen.count_ones() {
            times[cur] = Some(t0);
            cur += 1;
        }
        cur -= 1;
    } else {
        times[0] = Some(t0);
    }
    for e in &events[i + 1..] {
        if e.t > deadline || cur + 1 == n {
            break;
        }
        let excluded =
            cfg.exclusions.iter().enumerate().any(|(k, &(from, to))| e.excl & (1 << k) != 0 && cur >= from && cur < to);
        if excluded {
            return None;
        }
        match cfg.order {
            Order::Any => {
                for _ in 0..(e.steps & !seen).count_ones() {
                    cur += 1;
                    times[cur] = Some(e.t);
                }
                seen |= e.steps;
            }
            Order::Ordered | Order::Strict => match next_step(e.steps, cur, &cfg.optional) {
                Some(j) => {
                    times[j] = Some(e.t);
                    cur = j;
                }
                None if cfg.order == Order::Strict => break,
                None => {}
            },
        }
    }
    Some((cur + 1, times))
}

/// The step an event with `mask` advances a chain at step `cur` to: the first later step it
/// matches with only optional steps skipped.
fn next_step(mask: u32, cur: usize, optional: &[bool]) -> Option<usize> {
    for (j, &opt) in optional.iter().enumerate().skip(cur + 1) {
        if mask & (1 << j) != 0 {
            return Some(j);
        }
        if !opt {
            return None;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    fn ev(t: i64, steps: u32) -> Ev {
        Ev { t: t * S, steps, ..Ev::default() }
    }

    fn cfg(order: Order, n: usize, window_s: i64) -> Config {
        Config { order, optional: vec![false; n], window: window_s * S, entry: (0, 1000 * S), exclusions: vec![] }
    }

    fn times(o: &Outcome) -> Vec<Option<i64>> {
        match o {
            Outcome::Converted { times, .. } => times.iter().map(|t| t.map(|t| t / S)).collect(),
            other => panic!("not converted: {other:?}"),
        }
    }

    #[test]
    fn ordered_skips_noise_and_respects_the_window() {
        let c = cfg(Order::Ordered, 3, 10);
        // step1 at 0, noise, step2 at 5, step3 at 11 (outside the window of 10).
        let e = [ev(0, 1), ev(1, 0), ev(5, 2), ev(11, 4)];
        assert_eq!(times(&evaluate(&e, &c)), vec![Some(0), Some(5), None]);
        // The window is inclusive: step 3 at exactly 10 counts.
        let e = [ev(0, 1), ev(5, 2), ev(10, 4)];
        assert_eq!(times(&evaluate(&e, &c)), vec![Some(0), Some(5), Some(10)]);
    }

    #[test]
    fn a_later_entry_can_go_further() {
        let c = cfg(Order::Ordered, 3, 10);
        let e = [ev(0, 1), ev(20, 1), ev(25, 2), ev(29, 4)];
        let o = evaluate(&e, &c);
        assert_eq!(times(&o), vec![Some(20), Some(25), Some(29)]);
        assert!(matches!(o, Outcome::Converted { entry: 1, .. }));
    }

    #[test]
    fn strict_breaks_on_an_event_in_between() {
        let c = cfg(Order::Strict, 3, 100);
        let e = [ev(0, 1), ev(1, 2), ev(2, 0), ev(3, 4)];
        assert_eq!(times(&evaluate(&e, &c)), vec![Some(0), Some(1), None]);
        assert_eq!(times(&evaluate(&e, &cfg(Order::Ordered, 3, 100))), vec![Some(0), Some(1), Some(3)]);
    }

    #[test]
    fn any_order_counts_distinct_steps() {
        let c = cfg(Order::Any, 3, 100);
        // Step 3 first, then step 1, then step 1 again, then step 2.
        let e = [ev(0, 4), ev(5, 1), ev(6, 1), ev(9, 2)];
        assert_eq!(times(&evaluate(&e, &c)), vec![Some(0), Some(5), Some(9)]);
    }

    #[test]
    fn optional_steps_may_be_skipped() {
        let mut c = cfg(Order::Ordered, 3, 100);
        c.optional = vec![false, true, false];
        assert_eq!(times(&evaluate(&[ev(0, 1), ev(3, 4)], &c)), vec![Some(0), None, Some(3)]);
        assert_eq!(times(&evaluate(&[ev(0, 1), ev(2, 2), ev(3, 4)], &c)), vec![Some(0), Some(2), Some(3)]);
    }

    #[test]
    fn exclusions_drop_a_chain_between_their_steps() {
        let mut c = cfg(Order::Ordered, 3, 100);
        c.exclusions = vec![(1, 2)]; // between step 2 and step 3
        let x = Ev { t: 4 * S, excl: 1, ..Ev::default() };
        // Exclusion after step 2, before step 3: excluded.
        assert_eq!(evaluate(&[ev(0, 1), ev(2, 2), x.clone(), ev(6, 4)], &c), Outcome::Excluded);
        // Exclusion before step 2: allowed.
        let x1 = Ev { t: S, excl: 1, ..Ev::default() };
        assert_eq!(times(&evaluate(&[ev(0, 1), x1, ev(2, 2), ev(6, 4)], &c)), vec![Some(0), Some(2), Some(6)]);
    }

    #[test]
    fn entries_outside_the_range_do_not_count() {
        let mut c = cfg(Order::Ordered, 2, 100);
        c.entry = (10 * S, 20 * S);
        assert_eq!(evaluate(&[ev(5, 1), ev(12, 2)], &c), Outcome::NotEntered);
        // Conversions may finish after the range.
        assert_eq!(times(&evaluate(&[ev(15, 1), ev(40, 2)], &c)), vec![Some(15), Some(40)]);
    }

    /// The furthest step by brute force: every way to pick later events for later steps
    /// (skipping only optional steps) within the window of an entry in range.
    fn brute(events: &[Ev], c: &Config) -> usize {
        fn dfs(events: &[Ev], c: &Config, idx: usize, step: usize, deadline: i64) -> usize {
            let mut best = step + 1;
            for j in idx + 1..events.len() {
                if events[j].t > deadline {
                    break;
                }
                for s in step + 1..c.optional.len() {
                    if events[j].steps & (1 << s) != 0 {
                        best = best.max(dfs(events, c, j, s, deadline));
                    }
                    if !c.optional[s] {
                        break;
                    }
                }
            }
            best
        }
        (0..events.len())
            .filter(|&i| events[i].steps & 1 != 0 && events[i].t >= c.entry.0 && events[i].t < c.entry.1)
            .map(|i| dfs(events, c, i, 0, events[i].t + c.window))
            .max()
            .unwrap_or(0)
    }

    fn level(o: &Outcome) -> usize {
        match o {
            Outcome::Converted { times, .. } => times.iter().rposition(Option::is_some).map_or(0, |p| p + 1),
            Outcome::NotEntered | Outcome::Excluded => 0,
        }
    }

    proptest::proptest! {
        #[test]
        fn ordered_funnels_reach_the_furthest_step(
            raw in proptest::collection::vec((0i64..30, 0usize..5), 0..9),
            n in 2usize..5,
            window in 0i64..15,
            optional_mask in 0u32..8,
            entry_from in 0i64..10,
        ) {
            let mut events: Vec<Ev> = raw.iter().map(|&(t, s)| ev(t, if s < n { 1 << s } else { 0 })).collect();
            events.sort_by_key(|e| (e.t, e.steps));
            let mut c = cfg(Order::Ordered, n, window);
            c.entry = (entry_from * S, (entry_from + 12) * S);
            // Optional steps: any but the first and the last.
            c.optional = (0..n).map(|k| k > 0 && k + 1 < n && optional_mask & (1 << k) != 0).collect();
            proptest::prop_assert_eq!(level(&evaluate(&events, &c)), brute(&events, &c));
        }
    }
}
