//! Paths: where people go after (or came from before) an event, within the session.
//!
//! Each session in the range whose events match `start` is followed from its first match:
//! the next (`direction: next`) or previous (`previous`) `steps` events (1 to 5) of the same
//! session, as pages (the path of a pageview, the name of any other event; `by: page`, the
//! default) or as event names (`by: event`). `$`-prefixed system events are skipped and a
//! repeat of the same label in a row counts once (a reload is not a step). A session that ends
//! earlier ends its branch with `(end)`. Each level keeps its `branches` most common children
//! (default 5) with at least `min_sessions` sessions (default 1); the rest are merged into
//! `(other)`, which is not followed further.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{Checked, DateRange, Env, EventMatch, Filter, RanSql, Result, Rows, Sql, invalid, run};

/// The label of a session that ended before the path did.
pub const END: &str = "(end)";
/// The label of merged rare branches.
pub const OTHER: &str = "(other)";

/// Which way from the start event.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    #[default]
    Next,
    Previous,
}

/// What a step is labelled with.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PathBy {
    /// The path of pageviews, the name of other events.
    #[default]
    Page,
    /// Event names only.
    Event,
}

fn default_steps() -> usize {
    3
}
fn default_branches() -> usize {
    5
}
fn default_min() -> u64 {
    1
}

/// `POST /api/reports/paths`.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PathsRequest {
    pub site: String,
    pub date_range: DateRange,
    #[serde(default = "super::utc")]
    pub timezone: String,
    #[serde(default)]
    pub filters: Vec<Filter>,
    /// Only people in this segment: a definition or a template id (see segments).
    #[serde(default)]
    pub segment: Option<serde_json::Value>,
    pub start: EventMatch,
    #[serde(default)]
    pub direction: Direction,
    #[serde(default)]
    pub by: PathBy,
    #[serde(default = "default_steps")]
    pub steps: usize,
    #[serde(default = "default_branches")]
    pub branches: usize,
    #[serde(default = "default_min")]
    pub min_sessions: u64,
}

/// One node of the path tree.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PathNode {
    pub label: String,
    pub sessions: u64,
    pub children: Vec<PathNode>,
}

/// The report.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PathsResponse {
    pub direction: Direction,
    /// The start event; `sessions` is how many sessions did it in the range.
    pub root: PathNode,
    pub sql: Vec<RanSql>,
}

impl PathsRequest {
    fn check(&self) -> Result<Checked> {
        let (c, _) = super::check_common(&self.site, self.date_range, &self.timezone, &self.filters, None)?;
        if !(1..=5).contains(&self.steps) {
            return Err(invalid("steps", "from 1 to 5"));
        }
        if !(1..=50).contains(&self.branches) {
            return Err(invalid("branches", "from 1 to 50"));
        }
        Ok(c)
    }

    /// The rows of pass `pass` of `passes`: the sessions whose id falls in that bucket.
    fn sql(&self, c: &Checked, pass: usize, passes: usize) -> Result<(String, Sql)> {
        let mut q = Sql::default();
        let (start, end) = c.bounds(self.date_range);
        let range = c.range_sql(&mut q, start, end);
        let filters = c.filters_sql(&mut q);
        let cond = self.start.condition(&mut q, "start")?;
        // Sessions that cross midnight: their other events may be a day either side.
        let around = c.range_sql(&mut q, start - super::SESSION_TAIL, end + super::SESSION_TAIL);
        let label = match self.by {
            PathBy::Page => "CASE WHEN name = 'pageview' THEN coalesce(path, '/') ELSE name END",
            PathBy::Event => "name",
        };
        let (cmp, order) = match self.direction {
            Direction::Next => (">=", "ASC"),
            Direction::Previous => ("<=", "DESC"),
        };
        let bucket = super::sql::in_pass("session_id", pass, passes);
        let sql = format!(
            "WITH anchors AS (
  SELECT session_id, min(ts) AS start_ts FROM person_events WHERE {range}{filters} AND {cond}{bucket} GROUP BY session_id
)
SELECT e.session_id, {label} AS label
FROM events e JOIN anchors a ON e.session_id = a.session_id
WHERE {around} AND e.ts {cmp} a.start_ts AND e.name NOT LIKE '$%'
ORDER BY e.session_id, e.ts {order}, e.event_id {order}"
        );
        Ok((sql, q))
    }
}

#[derive(Default)]
struct Trie {
    sessions: u64,
    children: HashMap<String, Trie>,
}

impl Trie {
    fn add(&mut self, labels: &[String]) {
        self.sessions += 1;
        if let Some((first, rest)) = labels.split_first() {
            self.children.entry(first.clone()).or_default().add(rest);
        }
    }

    fn into_node(self, label: String, branches: usize, min: u64) -> PathNode {
        let mut kids: Vec<(String, Trie)> = self.children.into_iter().collect();
        kids.sort_by(|a, b| b.1.sessions.cmp(&a.1.sessions).then_with(|| a.0.cmp(&b.0)));
        let mut children = Vec::new();
        let mut other = 0;
        for (i, (l, t)) in kids.into_iter().enumerate() {
            if i < branches && t.sessions >= min {
                children.push(t.into_node(l, branches, min));
            } else {
                other += t.sessions;
            }
        }
        if other > 0 {
            children.push(PathNode { label: OTHER.to_owned(), sessions: other, children: Vec::new() });
        }
        PathNode { label, sessions: self.sessions, children }
    }
}

/// The labels after a session's anchor (its first row): repeats in a row merged, cut at
/// `steps`, ended with `(end)` if the session ends first.
pub fn steps_after(rows: &[String], steps: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut last = rows.first();
    for l in rows.iter().skip(1) {
        if Some(l) == last {
            continue;
        }
        last = Some(l);
        out.push(l.clone());
        if out.len() == steps {
            return out;
        }
    }
    out.push(END.to_owned());
    out
}

/// Run a paths report.
pub async fn paths(env: &Env, req: &PathsRequest) -> Result<PathsResponse> {
    let c = req.check()?;
    let (start, end) = c.bounds(req.date_range);
    let around = super::SESSION_TAIL;
    paths_in_passes(env, req, super::sql::passes(env, &c.site, start - around, end + around)?).await
}

/// A paths report evaluated in `passes` passes, each over the sessions of one bucket of their
/// id (`footfall_bucket`), so that each pass sorts a `passes`-th of the rows. The answer does
/// not depend on `passes` (a test checks it); [`paths`] picks it from the stored rows.
pub async fn paths_in_passes(env: &Env, req: &PathsRequest, passes: usize) -> Result<PathsResponse> {
    let mut c = req.check()?;
    c.prepare(req.segment.as_ref(), env)?;
    let passes = passes.max(1);
    let sqls = (0..passes).map(|pass| req.sql(&c, pass, passes)).collect::<Result<Vec<_>>>()?;
    let ctx = env.session(&c.site).await?;
    let mut trie = Trie::default();
    let mut session: Option<String> = None;
    let mut rows: Vec<String> = Vec::new();
    let mut flush = |rows: &mut Vec<String>| {
        if !rows.is_empty() {
            trie.add(&steps_after(rows, req.steps));
            rows.clear();
        }
    };
    for (sql, q) in &sqls {
        let batches = run(&ctx, sql, q, &env.limits).await?;
        Rows::new(&batches).each(|r| {
            let s = r.text("session_id");
            if s != session {
                flush(&mut rows);
                session = s;
            }
            rows.push(r.text("label").unwrap_or_default());
        });
    }
    flush(&mut rows);
    Ok(PathsResponse {
        direction: req.direction,
        root: trie.into_node(req.start.event.clone(), req.branches, req.min_sessions.max(1)),
        sql: sqls.into_iter().map(|(sql, q)| RanSql { sql, params: q.params }).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn repeats_merge_and_short_sessions_end() {
        assert_eq!(steps_after(&s(&["/", "/", "/a", "/a", "/b", "/c"]), 2), s(&["/a", "/b"]));
        assert_eq!(steps_after(&s(&["/", "/a"]), 3), s(&["/a", END]));
        assert_eq!(steps_after(&s(&["/"]), 3), s(&[END]));
    }
}
