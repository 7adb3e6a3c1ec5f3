//! The SQL of a trends request: which table answers it, and its people and sessions queries
//! (docs/reports.md, "How it runs").

use super::{Metric, Plan, TrendsRequest};
use crate::reports::{DateRange, Dimension, Env, Sql};

impl TrendsRequest {
    /// Whether `session_hours` answers this request over `range` exactly as events would: only
    /// metrics it holds (the goal is `purchase`), filters and `breakdown` on its dimensions,
    /// every bucket boundary on a whole UTC hour, and every partition's session hours in step
    /// with its events files.
    pub(super) fn reads_session_hours(
        &self,
        p: &Plan,
        env: &Env,
        range: DateRange,
        breakdown: Option<&Dimension>,
    ) -> bool {
        let metrics_held = !self.metrics.contains(&Metric::Events) && self.goal == "purchase";
        // The entry page is held too (`entry_page`, `entry_ts`, `first_path`), for trends.
        let dims: Vec<&Dimension> = breakdown.into_iter().filter(|d| **d != Dimension::EntryPage).collect();
        metrics_held && p.c.session_hours_answer(&env.data, range, &dims, None)
    }

    /// The queries for one date range, grouped by interval bucket (`series`) or not (totals)
    /// and by `breakdown`'s values, over `session_hours` (`sessions`) or events: one by person
    /// (visitors, conversions and the sums over events) and, when a session metric is asked,
    /// one by session (sessions, bounces, duration).
    ///
    /// Each counts its groups rather than `count(DISTINCT …)`: DataFusion keeps a distinct
    /// count's values in a hash set per group, which cannot spill and held most of a trends
    /// request's memory; a grouping's rows spill and merge.
    pub(super) fn sql(
        &self,
        p: &Plan,
        breakdown: Option<&Dimension>,
        range: DateRange,
        series: bool,
        sessions: bool,
    ) -> Vec<(String, Sql)> {
        let session_metric =
            self.metrics.iter().any(|m| matches!(m, Metric::Sessions | Metric::BounceRate | Metric::VisitDuration));
        let mut out = Vec::with_capacity(2 * p.passes);
        for pass in 0..p.passes {
            let shape = Shape { breakdown, range, series, sessions, pass };
            out.push(self.people_sql(p, shape));
            if session_metric {
                out.push(self.sessions_sql(p, shape));
            }
        }
        out
    }

    /// The request's rows (`ev`: `id`, `columns`, the breakdown value and the bucket) and the CTEs
    /// they need, for one range, and the keys to group them by besides `id` (a constant key is
    /// left out of the GROUP BY: DataFusion treats it as a sort order and then emits groups
    /// piecemeal, which cost 2.3 s of 9.4 s on the 10M-event bench).
    pub(super) fn rows_sql(&self, q: &mut Sql, p: &Plan, shape: Shape<'_>, columns: &[&str], id: &str) -> RangeRows {
        let Shape { breakdown, range, series, sessions, pass } = shape;
        let (start, end) = p.c.bounds(range);
        let bd = breakdown.map_or_else(|| "CAST(NULL AS VARCHAR)".to_owned(), |d| d.sql(q, ""));
        let time = if sessions { "hour" } else { "ts" };
        let bucket = if series { p.c.bucket_sql(self.interval, time) } else { "CAST(NULL AS VARCHAR)".to_owned() };
        let range_sql = p.c.range_sql_on(q, start, end, time);
        let filters = p.c.filters_sql(q);
        let in_pass = crate::reports::sql::in_pass(id, pass, p.passes);
        let table = if sessions { "session_hours" } else { "events" };
        // A session's entry page: one aggregation per session joined back, not a window over
        // every event (the window sorted and spilled: 13.6 s of a 30-day request in the server
        // on the 10M-event store). Over the same rows, so it is the same first pageview. In a
        // pass, only the sessions the pass's rows belong to: a session's whole, even where some
        // of its rows are another person's. The sessions are the join's left side, the one
        // DataFusion hashes: with the events there it held every row of the range (1 GiB at
        // 10M events over 8 weeks) and failed.
        let entries_in_pass = match (in_pass.is_empty(), id) {
            (true, _) | (_, "session_id") => in_pass.clone(),
            _ => format!(
                " AND session_id IN (SELECT DISTINCT session_id FROM {table} WHERE {range_sql}{filters}{in_pass})"
            ),
        };
        let entry_page = if sessions {
            "CASE WHEN max(entry_ts) IS NULL THEN first_value(first_path ORDER BY first_ts, first_path NULLS LAST)
    ELSE first_value(entry_page ORDER BY entry_ts NULLS LAST, entry_page NULLS LAST) END"
        } else {
            "first_value(path ORDER BY name <> 'pageview', ts, path NULLS LAST)"
        };
        let (bd, entries, from) = match breakdown {
            Some(Dimension::EntryPage) => (
                "x.entry_page".to_owned(),
                format!(
                    "entries AS (
  SELECT session_id AS entry_session, {entry_page} AS entry_page
  FROM {table}
  WHERE {range_sql}{filters}{entries_in_pass}
  GROUP BY session_id
),
"
                ),
                format!("entries x JOIN {table} ON x.entry_session = session_id"),
            ),
            _ => (bd, String::new(), table.to_owned()),
        };
        let mut keys = vec![id];
        let mut consts = String::new();
        for (name, used) in [("bucket", series), ("breakdown", breakdown.is_some())] {
            if used {
                keys.insert(0, name);
            } else {
                consts.push_str(&format!("CAST(NULL AS VARCHAR) AS {name}, "));
            }
        }
        let columns: String = columns.iter().map(|c| format!(", {c}")).collect();
        let ctes = format!(
            "{entries}ev AS (
  SELECT {id}{columns}, {bd} AS breakdown, {bucket} AS bucket
  FROM {from}
  WHERE {range_sql}{filters}{in_pass}
)"
        );
        RangeRows { ctes, consts, keys: keys.join(", "), range_sql, filtered: !filters.is_empty(), in_pass }
    }

    /// Per (bucket, breakdown value): distinct people, people who did the goal, and the sums
    /// over events (pageviews, `event`s, revenue).
    pub(super) fn people_sql(&self, p: &Plan, shape: Shape<'_>) -> (String, Sql) {
        let mut q = Sql::default();
        let (columns, aggregates) = if shape.sessions {
            (
                ["pageviews", "purchases", "revenue"].as_slice(),
                "sum(pageviews) AS pageviews,
    CAST(0 AS BIGINT) AS events,
    sum(revenue) AS revenue,
    bool_or(purchases > 0) AS converted"
                    .to_owned(),
            )
        } else {
            let event = self.event.as_deref().map_or_else(|| "FALSE".to_owned(), |e| format!("name = {}", q.bind(e)));
            let goal = q.bind(&self.goal);
            (
                ["name", "revenue"].as_slice(),
                format!(
                    "count(*) FILTER (WHERE name = 'pageview') AS pageviews,
    count(*) FILTER (WHERE {event}) AS events,
    sum(CASE WHEN name = 'purchase' THEN revenue WHEN name = 'refund' THEN -revenue END) AS revenue,
    bool_or(name = {goal}) AS converted"
                ),
            )
        };
        let r = self.rows_sql(&mut q, p, shape, columns, "person_id");
        let RangeRows { ctes, consts, keys, .. } = r;
        let sql = format!(
            "WITH {ctes},
g AS (
  SELECT {consts}{keys},
    {aggregates}
  FROM ev
  GROUP BY {keys}
)
SELECT g.bucket, g.breakdown,
  count(g.person_id) AS visitors,
  sum(g.pageviews) AS pageviews,
  sum(g.events) AS events,
  CAST(sum(g.revenue) AS DOUBLE) AS revenue,
  count(g.person_id) FILTER (WHERE g.converted) AS converted
FROM g
GROUP BY g.bucket, g.breakdown
ORDER BY g.bucket, g.breakdown"
        );
        (sql, q)
    }

    /// Per (bucket, breakdown value): sessions with a matching row, and of those, the ones with
    /// a pageview, the bounces and the summed durations, each judged on the whole session
    /// within the range (`s`), whatever the filters matched of it.
    pub(super) fn sessions_sql(&self, p: &Plan, shape: Shape<'_>) -> (String, Sql) {
        let mut q = Sql::default();
        let r = self.rows_sql(&mut q, p, shape, &[], "session_id");
        let RangeRows { ctes, consts, keys, range_sql, filtered, in_pass } = r;
        let (series, breakdown) = (shape.series, shape.breakdown);
        let whole = if shape.sessions {
            format!(
                "SELECT session_id, sum(pageviews) AS pageviews, sum(interactions) AS interactions,
    coalesce(CAST(max(visit_last_ts) AS BIGINT) - CAST(min(visit_first_ts) AS BIGINT), 0) AS duration_us
  FROM session_hours
  WHERE {range_sql}{in_pass}
  GROUP BY session_id"
            )
        } else {
            // Visit duration is the browser's: the backend's events (a refund an hour later)
            // do not stretch it; rows stored before `origin` was kept are a browser's.
            let browser = format!("origin IS DISTINCT FROM '{}'", crate::model::ORIGIN_SERVER);
            format!(
                "SELECT session_id,
    count(*) FILTER (WHERE name = 'pageview') AS pageviews,
    count(*) FILTER (WHERE name NOT LIKE '$%') AS interactions,
    coalesce(CAST(max(ts) FILTER (WHERE {browser}) AS BIGINT) - CAST(min(ts) FILTER (WHERE {browser}) AS BIGINT), 0)
      AS duration_us
  FROM events
  WHERE {range_sql}{in_pass}
  GROUP BY session_id"
            )
        };
        let counts = "count(*) AS sessions,
  count(*) FILTER (WHERE s.pageviews > 0) AS page_sessions,
  count(*) FILTER (WHERE s.pageviews = 1 AND s.interactions = 1) AS bounces,
  sum(s.duration_us) AS duration_us";
        let bounce_or_duration = self.metrics.iter().any(|m| matches!(m, Metric::BounceRate | Metric::VisitDuration));
        let sql = if !bounce_or_duration {
            format!(
                "WITH {ctes},
g AS (SELECT {consts}{keys} FROM ev GROUP BY {keys})
SELECT g.bucket, g.breakdown, count(*) AS sessions
FROM g
GROUP BY g.bucket, g.breakdown
ORDER BY g.bucket, g.breakdown"
            )
        } else if !filtered && !series && breakdown.is_none() {
            // Every session of the range, each whole: `s` is the answer, no join.
            format!(
                "WITH s AS (
  {whole}
)
SELECT CAST(NULL AS VARCHAR) AS bucket, CAST(NULL AS VARCHAR) AS breakdown,
  {counts}
FROM s"
            )
        } else {
            format!(
                "WITH {ctes},
s AS (
  {whole}
),
g AS (SELECT {consts}{keys} FROM ev GROUP BY {keys})
SELECT g.bucket, g.breakdown,
  {counts}
FROM g JOIN s ON g.session_id = s.session_id
GROUP BY g.bucket, g.breakdown
ORDER BY g.bucket, g.breakdown"
            )
        };
        (sql, q)
    }
}

/// What one query of a range covers.
#[derive(Clone, Copy)]
pub(super) struct Shape<'a> {
    pub(super) breakdown: Option<&'a Dimension>,
    pub(super) range: DateRange,
    pub(super) series: bool,
    pub(super) sessions: bool,
    /// Which of [`Plan::passes`].
    pub(super) pass: usize,
}

/// The shared start of a range's queries (see [`TrendsRequest::rows_sql`]).
pub(super) struct RangeRows {
    pub(super) ctes: String,
    pub(super) consts: String,
    pub(super) keys: String,
    pub(super) range_sql: String,
    /// Whether filters or a segment narrow the rows.
    pub(super) filtered: bool,
    /// The condition that keeps this pass's ids (empty in one pass).
    pub(super) in_pass: String,
}
