//! A segment definition as SQL: the members' `person_id` at a given time, every value bound as
//! a parameter. One GROUP BY person over the site's events up to "now" computes each
//! condition's aggregate; the definition becomes a boolean expression over them.
//!
//! When every aggregate reads only a window (the last N days, a date range) and the definition
//! cannot hold for a person without a row in those windows, the GROUP BY reads only the days
//! from the earliest window on: the other people would have every aggregate empty and are not
//! members anyway ([`needs_activity`]).

use std::fmt::Write as _;

use super::Condition;
use crate::model::SiteId;
use crate::reports::{Dimension, Result, Sql, invalid, ts_literal};

/// SQL pieces of a definition: aggregate columns over each person's events, extra CTEs, and
/// the boolean expression over them.
struct Build<'a> {
    q: &'a mut Sql,
    /// The placeholder holding the site.
    site: String,
    now: i64,
    aggs: Vec<String>,
    subqueries: usize,
    /// The earliest time any aggregate reads, in microseconds; `None` once one reads all history.
    earliest: Option<i64>,
}

impl Build<'_> {
    /// Note that an aggregate reads from `t` on (`None`: all history).
    fn reads_from(&mut self, t: Option<i64>) {
        self.earliest = match (self.earliest, t) {
            (Some(e), Some(t)) => Some(e.min(t)),
            _ => None,
        };
    }

    fn since(&mut self, days: Option<i64>, field: &str) -> Result<String> {
        match days {
            None => {
                self.reads_from(None);
                Ok("TRUE".into())
            }
            Some(d) if (1..=3660).contains(&d) => {
                let from = self.now - d * 86_400_000_000;
                self.reads_from(Some(from));
                Ok(format!("ts >= {}", ts_literal(micros(from))))
            }
            Some(_) => Err(invalid(field, "from 1 to 3,660 days")),
        }
    }

    /// `within_days` back from now, or the UTC days of `date_range`, or ever.
    fn window(
        &mut self,
        within_days: Option<i64>,
        date_range: Option<crate::reports::DateRange>,
        field: &str,
    ) -> Result<String> {
        match (within_days, date_range) {
            (Some(_), Some(_)) => Err(invalid(field, "give within_days or date_range, not both")),
            (_, Some(r)) => {
                if r.to < r.from {
                    return Err(invalid(format!("{field}.date_range"), "`to` is before `from`"));
                }
                let day = |d: chrono::NaiveDate| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
                self.reads_from(Some(day(r.from).timestamp_micros()));
                Ok(format!(
                    "ts >= {} AND ts < {}",
                    ts_literal(day(r.from)),
                    ts_literal(day(r.to + chrono::Duration::days(1)))
                ))
            }
            (d, None) => self.since(d, &format!("{field}.within_days")),
        }
    }

    fn agg(&mut self, expr: String) -> String {
        self.aggs.push(expr);
        format!("a{}", self.aggs.len() - 1)
    }

    fn expr(&mut self, c: &Condition, field: &str) -> Result<String> {
        Ok(match c {
            Condition::All { conditions } | Condition::Any { conditions } => {
                if conditions.is_empty() {
                    return Err(invalid(format!("{field}.conditions"), "give at least one condition"));
                }
                let join = if matches!(c, Condition::All { .. }) { " AND " } else { " OR " };
                let parts = conditions
                    .iter()
                    .enumerate()
                    .map(|(i, c)| self.expr(c, &format!("{field}.conditions[{i}]")))
                    .collect::<Result<Vec<_>>>()?;
                format!("({})", parts.join(join))
            }
            Condition::Property { dimension, op, values, within_days } => {
                let dim = parse_dim(dimension, field)?;
                if values.is_empty() {
                    return Err(invalid(format!("{field}.values"), "give at least one value"));
                }
                let since = self.since(*within_days, &format!("{field}.within_days"))?;
                let cond = crate::reports::filter_sql(self.q, &dim, *op, values);
                let col = self.agg(format!("count(*) FILTER (WHERE {since} AND {cond})"));
                format!("{col} > 0")
            }
            Condition::FirstTouch { dimension, op, values } => {
                let dim = parse_dim(dimension, field)?;
                if let Err(m) = Dimension::parse_breakdown(dimension) {
                    return Err(invalid(format!("{field}.dimension"), m));
                }
                if values.is_empty() {
                    return Err(invalid(format!("{field}.values"), "give at least one value"));
                }
                let first = dim.sql(self.q, "");
                self.reads_from(None);
                let col = self.agg(format!("first_value({first} ORDER BY ts)"));
                crate::reports::filter_sql_on(self.q, &col, *op, values)
            }
            Condition::Did { event, at_least, at_most, within_days, date_range, then_not } => {
                let since = self.window(*within_days, *date_range, field)?;
                let cond = event.condition(self.q, &format!("{field}.event"))?;
                let col = self.agg(format!("count(*) FILTER (WHERE {since} AND {cond})"));
                let mut e = format!("{col} >= {}", at_least.unwrap_or(1).max(1));
                if let Some(m) = at_most {
                    let _ = write!(e, " AND {col} <= {m}");
                }
                if let Some(t) = then_not {
                    let secs = t.within.seconds();
                    if !(60..=90 * 86_400).contains(&secs) {
                        return Err(invalid(format!("{field}.then_not.within"), "from 1 minute to 90 days"));
                    }
                    let last = self.agg(format!("max(ts) FILTER (WHERE {since} AND {cond})"));
                    let other = t.event.condition(self.q, &format!("{field}.then_not.event"))?;
                    // Unqualified columns of `other` are t{k}'s: the outer `p` has no event columns.
                    let k = self.subqueries;
                    self.subqueries += 1;
                    let site = self.site.clone();
                    let _ = write!(
                        e,
                        " AND NOT EXISTS (SELECT 1 FROM person_events t{k} WHERE t{k}.site = {site} AND t{k}.person_id = p.person_id \
                         AND t{k}.ts > p.{last} AND t{k}.ts <= p.{last} + INTERVAL '{secs} seconds' AND {other})",
                    );
                }
                format!("({e})")
            }
            Condition::DidNot { event, within_days, date_range } => {
                let since = self.window(*within_days, *date_range, field)?;
                let cond = event.condition(self.q, &format!("{field}.event"))?;
                let col = self.agg(format!("count(*) FILTER (WHERE {since} AND {cond})"));
                format!("{col} = 0")
            }
            Condition::Orders { at_least, at_most, within_days } => {
                let since = self.since(*within_days, &format!("{field}.within_days"))?;
                let col = self.agg(format!("count(*) FILTER (WHERE {since} AND name = 'purchase')"));
                bounds(&col, at_least.map(|v| v as f64), at_most.map(|v| v as f64), field)?
            }
            Condition::Revenue { at_least, at_most, within_days } => {
                let since = self.since(*within_days, &format!("{field}.within_days"))?;
                let col = self.agg(format!(
                    "coalesce(CAST(sum(CASE WHEN name = 'purchase' THEN revenue WHEN name = 'refund' THEN -revenue END) \
                     FILTER (WHERE {since}) AS DOUBLE), 0)"
                ));
                bounds(&col, *at_least, *at_most, field)?
            }
            Condition::LastPurchase { more_than_days_ago, within_days } => {
                self.reads_from(None);
                let col = self.agg("max(ts) FILTER (WHERE name = 'purchase')".into());
                match (more_than_days_ago, within_days) {
                    (Some(d), None) => {
                        let since = self.since(Some(*d), &format!("{field}.more_than_days_ago"))?;
                        format!("({col} IS NOT NULL AND NOT ({}))", since.replace("ts", &col))
                    }
                    (None, Some(d)) => {
                        let since = self.since(Some(*d), &format!("{field}.within_days"))?;
                        format!("coalesce({}, false)", since.replace("ts", &col))
                    }
                    _ => return Err(invalid(field, "give more_than_days_ago or within_days")),
                }
            }
            Condition::FirstSeen { within_days } => {
                let since = self.since(Some(*within_days), &format!("{field}.within_days"))?;
                self.reads_from(None);
                let col = self.agg("min(ts)".into());
                since.replace("ts", &col)
            }
            Condition::Predicted { column, at_least, at_most, top_percent } => {
                let c = column.name();
                let site = self.site.clone();
                let k = self.subqueries;
                self.subqueries += 1;
                let cond = match (top_percent, at_least.is_some() || at_most.is_some()) {
                    (Some(_), true) => return Err(invalid(field, "give top_percent or at_least / at_most, not both")),
                    (Some(p), false) => {
                        if !(*p > 0.0 && *p <= 100.0) {
                            return Err(invalid(format!("{field}.top_percent"), "above 0 and at most 100"));
                        }
                        // cume_dist over the values, highest first: the share of people scoring
                        // at least as high (ties all in or all out).
                        format!(
                            "p.person_id IN (SELECT person_id FROM (SELECT person_id, cume_dist() OVER (ORDER BY {c} DESC) AS share \
                             FROM predictions WHERE site = {site} AND {c} IS NOT NULL) t{k} WHERE share <= {:?})",
                            p / 100.0
                        )
                    }
                    (None, _) => {
                        let b = bounds(&format!("t{k}.{c}"), *at_least, *at_most, field)?;
                        format!("p.person_id IN (SELECT person_id FROM predictions t{k} WHERE site = {site} AND {b})")
                    }
                };
                // No event aggregate: the window other conditions read stays theirs.
                cond
            }
        })
    }
}

fn micros(t: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_micros(t).unwrap_or_default()
}

fn parse_dim(d: &str, field: &str) -> Result<Dimension> {
    let dim = Dimension::parse(d).map_err(|m| invalid(format!("{field}.dimension"), m))?;
    if dim.session_level() {
        return Err(invalid(
            format!("{field}.dimension"),
            "a person's property or an event's dimension, not entry_page",
        ));
    }
    Ok(dim)
}

fn bounds(col: &str, at_least: Option<f64>, at_most: Option<f64>, field: &str) -> Result<String> {
    match (at_least, at_most) {
        (None, None) => Err(invalid(field, "give at_least or at_most")),
        (l, m) => {
            let mut parts = Vec::new();
            if let Some(l) = l {
                parts.push(format!("{col} >= {l:?}"));
            }
            if let Some(m) = m {
                parts.push(format!("{col} <= {m:?}"));
            }
            Ok(format!("({})", parts.join(" AND ")))
        }
    }
}

/// A subquery selecting the members' `person_id` of `def` on `site` at `now` (microseconds),
/// binding its values into `q`.
pub(crate) fn members_subquery(q: &mut Sql, site: &SiteId, def: &Condition, now: i64) -> Result<String> {
    let site_p = q.bind(site.as_str());
    let mut b = Build { q, site: site_p.clone(), now, aggs: Vec::new(), subqueries: 0, earliest: Some(now) };
    let cond = b.expr(def, "definition")?;
    let cols: String = b.aggs.iter().enumerate().map(|(i, a)| format!(", {a} AS a{i}")).collect();
    let day = |t: i64| micros(t).date_naive();
    let from = match b.earliest {
        Some(t) if needs_activity(def) => format!(" AND ts >= {} AND date >= DATE '{}'", ts_literal(micros(t)), day(t)),
        _ => String::new(),
    };
    Ok(format!(
        "SELECT p.person_id FROM (SELECT person_id{cols} FROM person_events WHERE site = {site_p} AND ts <= {now} \
         AND date <= DATE '{today}'{from} GROUP BY person_id) p WHERE {cond}",
        now = ts_literal(micros(now)),
        today = day(now),
    ))
}

/// Whether `c` can only hold for a person with at least one row that some aggregate of `c`
/// reads: with no such row every count is 0, every sum and time empty. `false` where unsure.
fn needs_activity(c: &Condition) -> bool {
    match c {
        Condition::All { conditions } => conditions.iter().any(needs_activity),
        Condition::Any { conditions } => !conditions.is_empty() && conditions.iter().all(needs_activity),
        // `count > 0`, `count >= max(1, at_least)`.
        Condition::Property { .. } | Condition::Did { .. } => true,
        Condition::Orders { at_least, .. } => at_least.is_some_and(|n| n >= 1),
        Condition::Revenue { at_least, .. } => at_least.is_some_and(|r| r > 0.0),
        // Holds for a person with no row in its window.
        Condition::DidNot { .. } => false,
        // Each reads all history, so no window applies anyway.
        Condition::FirstTouch { .. } | Condition::LastPurchase { .. } | Condition::FirstSeen { .. } => false,
        // Read from `predictions`, not from the events' aggregates.
        Condition::Predicted { .. } => false,
    }
}

/// The SQL selecting the members' `person_id` of `def` on `site` at `now`.
pub fn members_sql(site: &SiteId, def: &Condition, now: i64) -> Result<(String, Sql)> {
    let mut q = Sql::default();
    let sql = members_subquery(&mut q, site, def, now)?;
    Ok((sql, q))
}
