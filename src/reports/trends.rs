//! Trends: visitors, sessions, pageviews, events, bounce rate, visit duration, revenue and
//! conversion rate per hour/day/week/month in the report's time zone, optionally broken down
//! by a dimension and compared with the previous period of the same length.
//!
//! Definitions (what a marketer reads on screen):
//! - **visitors**: distinct people (see [`super`]) with at least one matching event;
//! - **sessions**: distinct sessions with a matching event;
//! - **pageviews**: `pageview` events; **events**: events named `event`;
//! - **bounce rate**: of the sessions with a pageview, the share whose whole session (within the
//!   range) was exactly one pageview and no other event except `$`-prefixed system events;
//! - **visit duration**: mean of (last − first event time) over the sessions, in seconds;
//! - **revenue**: `purchase` revenue minus `refund` revenue (amounts as sent, not converted
//!   between currencies);
//! - **conversion rate**: people who did the goal event (default `purchase`) ÷ visitors.
//!
//! Filters and the breakdown apply to events: with `page = /pricing`, visitors are the people
//! who viewed /pricing and pageviews are views of /pricing, while bounce and duration describe
//! the sessions those events belong to.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use super::{
    Checked, DateRange, Dimension, Env, Filter, Period, RanSql, Result, Rows, Sql, invalid, percent, round2, run,
};

/// Most breakdown values a response may hold.
pub const MAX_BREAKDOWN_LIMIT: usize = 1000;

/// A trends metric.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    Visitors,
    Sessions,
    Pageviews,
    Events,
    BounceRate,
    VisitDuration,
    Revenue,
    ConversionRate,
}

fn default_metrics() -> Vec<Metric> {
    vec![Metric::Visitors, Metric::Sessions, Metric::Pageviews, Metric::BounceRate, Metric::VisitDuration]
}

fn default_limit() -> usize {
    10
}

fn default_goal() -> String {
    "purchase".into()
}

/// `POST /api/reports/trends`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrendsRequest {
    pub site: String,
    pub date_range: DateRange,
    #[serde(default = "super::utc")]
    pub timezone: String,
    #[serde(default)]
    pub filters: Vec<Filter>,
    /// Only people in this segment: a definition or a template id (see segments).
    #[serde(default)]
    pub segment: Option<serde_json::Value>,
    /// 2 to 4 segments to report side by side (`by_segment`), each as `segment` would.
    #[serde(default)]
    pub compare_segments: Vec<serde_json::Value>,
    #[serde(default = "default_metrics")]
    pub metrics: Vec<Metric>,
    /// hour, day (default), week (ISO, from Monday) or month.
    #[serde(default = "default_interval")]
    pub interval: Period,
    /// A dimension (`page`, `source`, `channel`, `country`, `prop:<name>`, …).
    #[serde(default)]
    pub breakdown: Option<String>,
    /// Most breakdown values returned, by visitors (default 10).
    #[serde(default = "default_limit")]
    pub breakdown_limit: usize,
    /// Several dimensions at once, from one scan: each one's top values with their totals, in
    /// `by_breakdown` (the top-N tables of a dashboard). Totals only: send `series: false`.
    #[serde(default)]
    pub breakdowns: Vec<String>,
    /// The event the `events` metric counts.
    #[serde(default)]
    pub event: Option<String>,
    /// The event that counts as a conversion (default `purchase`).
    #[serde(default = "default_goal")]
    pub goal: String,
    /// Also report the previous period of the same length.
    #[serde(default)]
    pub compare: bool,
    /// Return a series per bucket (default); `false` returns totals only, with empty series
    /// (half the work, for top-N tables).
    #[serde(default = "yes")]
    pub series: bool,
}

fn yes() -> bool {
    true
}

fn default_interval() -> Period {
    Period::Day
}

/// Metric values; only the requested ones are present.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Values {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visitors: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pageviews: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<u64>,
    /// Percent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bounce_rate: Option<f64>,
    /// Seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visit_duration: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revenue: Option<f64>,
    /// Percent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversion_rate: Option<f64>,
}

/// One point of a series.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Point {
    /// Local start of the interval: `YYYY-MM-DD`, or `YYYY-MM-DDTHH:00` for hours.
    pub bucket: String,
    #[serde(flatten)]
    pub values: Values,
}

/// Totals and series of one breakdown value (or of everything without a breakdown).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Breakdown {
    /// The dimension's value; `null` without a breakdown, or for events without the dimension.
    pub value: Option<String>,
    pub totals: Values,
    pub series: Vec<Point>,
}

/// Results over one date range.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct RangeResults {
    pub date_range: DateRange,
    pub results: Vec<Breakdown>,
}

/// The trends response.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct TrendsResponse {
    pub interval: Period,
    pub timezone: String,
    pub metrics: Vec<Metric>,
    pub breakdown: Option<String>,
    #[serde(flatten)]
    pub current: RangeResults,
    /// The previous period of the same length, when `compare` was asked.
    pub previous: Option<RangeResults>,
    pub sql: Vec<RanSql>,
    /// One report per segment of `compare_segments`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub by_segment: Vec<super::BySegment<TrendsResponse>>,
    /// One entry per dimension of `breakdowns`, in its order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub by_breakdown: Vec<ByBreakdown>,
}

/// The values of one of several `breakdowns`, with their totals over each range.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ByBreakdown {
    pub breakdown: String,
    #[serde(flatten)]
    pub current: RangeResults,
    /// The previous period, when `compare` was asked.
    pub previous: Option<RangeResults>,
}

/// Most dimensions in one `breakdowns` request.
const MAX_BREAKDOWNS: usize = 12;

/// Raw aggregates of one (bucket, breakdown) group.
#[derive(Clone, Debug, Default)]
struct Agg {
    visitors: u64,
    sessions: u64,
    page_sessions: u64,
    pageviews: u64,
    events: u64,
    bounces: u64,
    duration: Option<f64>,
    revenue: Option<f64>,
    converted: u64,
}

impl Agg {
    fn values(&self, metrics: &[Metric]) -> Values {
        let mut v = Values::default();
        for m in metrics {
            match m {
                Metric::Visitors => v.visitors = Some(self.visitors),
                Metric::Sessions => v.sessions = Some(self.sessions),
                Metric::Pageviews => v.pageviews = Some(self.pageviews),
                Metric::Events => v.events = Some(self.events),
                Metric::BounceRate => v.bounce_rate = Some(percent(self.bounces as f64, self.page_sessions as f64)),
                Metric::VisitDuration => v.visit_duration = Some(round2(self.duration.unwrap_or(0.0))),
                Metric::Revenue => v.revenue = Some(round2(self.revenue.unwrap_or(0.0))),
                Metric::ConversionRate => {
                    v.conversion_rate = Some(percent(self.converted as f64, self.visitors as f64));
                }
            }
        }
        v
    }
}

struct Plan {
    c: Checked,
    breakdown: Option<Dimension>,
    /// The dimensions of `breakdowns` (empty without).
    breakdowns: Vec<Dimension>,
}

impl TrendsRequest {
    fn check(&self) -> Result<Plan> {
        let (c, breakdown) =
            super::check_common(&self.site, self.date_range, &self.timezone, &self.filters, self.breakdown.as_deref())?;
        if self.metrics.is_empty() {
            return Err(invalid("metrics", "ask for at least one metric"));
        }
        if self.metrics.contains(&Metric::Events) && self.event.as_deref().is_none_or(str::is_empty) {
            return Err(invalid("event", "the `events` metric needs the event name to count in `event`"));
        }
        if self.goal.is_empty() {
            return Err(invalid("goal", "give an event name"));
        }
        if !(1..=MAX_BREAKDOWN_LIMIT).contains(&self.breakdown_limit) {
            return Err(invalid("breakdown_limit", format!("between 1 and {MAX_BREAKDOWN_LIMIT}")));
        }
        if self.interval == Period::Hour && self.date_range.days() > 31 {
            return Err(invalid("interval", "hourly intervals cover at most 31 days; use day"));
        }
        let breakdowns = self.check_breakdowns()?;
        Ok(Plan { c, breakdown, breakdowns })
    }

    fn check_breakdowns(&self) -> Result<Vec<Dimension>> {
        if self.breakdowns.is_empty() {
            return Ok(Vec::new());
        }
        if self.breakdown.is_some() {
            return Err(invalid("breakdowns", "give one `breakdown` or several `breakdowns`, not both"));
        }
        if self.series {
            return Err(invalid(
                "series",
                "`breakdowns` gives each value's totals: send `series: false`, or one `breakdown` for a series",
            ));
        }
        if self.breakdowns.len() > MAX_BREAKDOWNS {
            return Err(invalid("breakdowns", format!("at most {MAX_BREAKDOWNS} dimensions")));
        }
        let mut out = Vec::with_capacity(self.breakdowns.len());
        for (i, name) in self.breakdowns.iter().enumerate() {
            if self.breakdowns[..i].contains(name) {
                return Err(invalid(format!("breakdowns[{i}]"), format!("{name:?} is given twice")));
            }
            out.push(Dimension::parse(name).map_err(|m| invalid(format!("breakdowns[{i}]"), m))?);
        }
        Ok(out)
    }

    /// Whether `session_hours` answers this request over `range` exactly as events would: only
    /// metrics it holds (the goal is `purchase`), filters and `breakdown` on its dimensions,
    /// every bucket boundary on a whole UTC hour, and every partition's session hours in step
    /// with its events files.
    fn reads_session_hours(&self, p: &Plan, env: &Env, range: DateRange, breakdown: Option<&Dimension>) -> bool {
        let metrics_held = !self.metrics.contains(&Metric::Events) && self.goal == "purchase";
        let dims: Vec<&Dimension> = breakdown.into_iter().collect();
        metrics_held && p.c.session_hours_answer(&env.data, range, &dims, None)
    }

    /// The SQL for one date range, grouped by interval bucket (`series`) or not (totals) and by
    /// `breakdown`'s values, over `session_hours` (`sessions`) or events.
    fn sql(
        &self,
        p: &Plan,
        breakdown: Option<&Dimension>,
        range: DateRange,
        series: bool,
        sessions: bool,
    ) -> (String, Sql) {
        let mut q = Sql::default();
        let (start, end) = p.c.bounds(range);
        let bd = breakdown.map_or_else(|| "CAST(NULL AS VARCHAR)".to_owned(), |d| d.sql(&mut q, ""));
        let time = if sessions { "hour" } else { "ts" };
        let bucket = if series { p.c.bucket_sql(self.interval, time) } else { "CAST(NULL AS VARCHAR)".to_owned() };
        let range_sql = p.c.range_sql_on(&mut q, start, end, time);
        let filters = p.c.filters_sql(&mut q);
        let event = self.event.as_deref().map_or_else(|| "FALSE".to_owned(), |e| format!("name = {}", q.bind(e)));
        let goal = q.bind(&self.goal);
        let bounce_or_duration = self.metrics.iter().any(|m| matches!(m, Metric::BounceRate | Metric::VisitDuration));
        // Per session over the range (bounce rate and visit duration need every event of each
        // session; the other metrics do not, and skip that second scan and the join).
        let session_cte = match sessions {
            false => format!(
                "s AS (
  SELECT session_id,
    count(*) FILTER (WHERE name = 'pageview') AS pageviews,
    count(*) FILTER (WHERE name NOT LIKE '$%') AS interactions,
    (CAST(max(ts) AS BIGINT) - CAST(min(ts) AS BIGINT)) / 1e6 AS duration
  FROM events
  WHERE {range_sql}
  GROUP BY session_id
),
"
            ),
            true => format!(
                "s AS (
  SELECT session_id, sum(pageviews) AS pageviews, sum(interactions) AS interactions,
    (CAST(max(last_ts) AS BIGINT) - CAST(min(first_ts) AS BIGINT)) / 1e6 AS duration
  FROM session_hours
  WHERE {range_sql}
  GROUP BY session_id
),
"
            ),
        };
        let (session_cte, page_sessions, bounces, duration, join) = if bounce_or_duration {
            (
                session_cte,
                "count(DISTINCT CASE WHEN s.pageviews > 0 THEN g.session_id END)",
                "count(DISTINCT CASE WHEN s.pageviews = 1 AND s.interactions = 1 THEN g.session_id END)",
                "avg(s.duration)",
                " JOIN s ON g.session_id = s.session_id",
            )
        } else {
            (String::new(), "CAST(0 AS BIGINT)", "CAST(0 AS BIGINT)", "CAST(NULL AS DOUBLE)", "")
        };
        // Per (bucket, breakdown value, session, person). A constant key (no breakdown, or totals
        // without buckets) is left out of the GROUP BY: DataFusion treats it as a sort order and
        // then emits groups piecemeal, which cost 2.3 s of 9.4 s on the 10M-event bench.
        let mut keys = vec!["session_id", "person_id"];
        let mut consts = String::new();
        for (name, used, null_type) in [("bucket", series, "VARCHAR"), ("breakdown", breakdown.is_some(), "VARCHAR")] {
            if used {
                keys.insert(0, name);
            } else {
                consts.push_str(&format!("CAST(NULL AS {null_type}) AS {name}, "));
            }
        }
        let keys = keys.join(", ");
        let (table, columns, aggregates) = match sessions {
            false => (
                "events",
                "name, ts, revenue",
                format!(
                    "count(*) FILTER (WHERE name = 'pageview') AS pageviews,
    count(*) FILTER (WHERE {event}) AS events,
    sum(CASE WHEN name = 'purchase' THEN revenue WHEN name = 'refund' THEN -revenue END) AS revenue,
    bool_or(name = {goal}) AS converted"
                ),
            ),
            true => (
                "session_hours",
                "pageviews, purchases, revenue",
                "sum(pageviews) AS pageviews,
    CAST(0 AS BIGINT) AS events,
    sum(revenue) AS revenue,
    bool_or(purchases > 0) AS converted"
                    .to_owned(),
            ),
        };
        // A session's entry page: one aggregation per session joined back, not a window over
        // every event (the window sorted and spilled: 13.6 s of a 30-day request in the server
        // on the 10M-event store). Over the same rows, so it is the same first pageview.
        let (bd, entries, table) = match breakdown {
            Some(Dimension::EntryPage) => (
                "x.entry_page".to_owned(),
                format!(
                    "entries AS (
  SELECT session_id AS entry_session, first_value(path ORDER BY name <> 'pageview', ts) AS entry_page
  FROM {table}
  WHERE {range_sql}{filters}
  GROUP BY session_id
),
"
                ),
                format!("{table} JOIN entries x ON session_id = x.entry_session"),
            ),
            _ => (bd, String::new(), table.to_owned()),
        };
        let grouped = format!(
            "{entries}ev AS (
  SELECT person_id, session_id, {columns}, {bd} AS breakdown, {bucket} AS bucket
  FROM {table}
  WHERE {range_sql}{filters}
),
{session_cte}g AS (
  SELECT {consts}{keys},
    {aggregates}
  FROM ev
  GROUP BY {keys}
)"
        );
        let sql = format!(
            "WITH {grouped}
SELECT g.bucket, g.breakdown,
  count(DISTINCT g.person_id) AS visitors,
  count(DISTINCT g.session_id) AS sessions,
  {page_sessions} AS page_sessions,
  sum(g.pageviews) AS pageviews,
  sum(g.events) AS events,
  {bounces} AS bounces,
  {duration} AS duration,
  CAST(sum(g.revenue) AS DOUBLE) AS revenue,
  count(DISTINCT CASE WHEN g.converted THEN g.person_id END) AS converted
FROM g{join}
GROUP BY g.bucket, g.breakdown
ORDER BY g.bucket, g.breakdown"
        );
        (sql, q)
    }
}

/// (bucket, breakdown value, aggregates) rows.
type Grouped = Vec<(Option<NaiveDateTime>, Option<String>, Agg)>;

async fn run_grouped(
    ctx: &datafusion::prelude::SessionContext,
    env: &Env,
    c: &Checked,
    sql: (String, Sql),
) -> Result<(Grouped, RanSql)> {
    let batches = run(ctx, &sql.0, &sql.1, &env.limits).await?;
    let ran = RanSql { sql: sql.0, params: sql.1.params };
    let mut out = Vec::new();
    Rows::new(&batches).each(|r| {
        let agg = Agg {
            visitors: r.u64("visitors"),
            sessions: r.u64("sessions"),
            page_sessions: r.u64("page_sessions"),
            pageviews: r.u64("pageviews"),
            events: r.u64("events"),
            bounces: r.u64("bounces"),
            duration: r.f64("duration"),
            revenue: r.f64("revenue"),
            converted: r.u64("converted"),
        };
        out.push((c.bucket_of(r, "bucket"), r.text("breakdown"), agg));
    });
    Ok((out, ran))
}

/// Run a trends report.
pub async fn trends(env: &Env, req: &TrendsRequest) -> Result<TrendsResponse> {
    super::check_compare(&req.compare_segments)?;
    let mut out = trends_one(env, req).await?;
    for (i, seg) in req.compare_segments.iter().enumerate() {
        let one = TrendsRequest { segment: Some(seg.clone()), compare_segments: Vec::new(), ..req.clone() };
        let report = trends_one(env, &one).await.map_err(super::in_compare(i))?;
        out.by_segment.push(super::BySegment { segment: seg.clone(), report });
    }
    Ok(out)
}

async fn trends_one(env: &Env, req: &TrendsRequest) -> Result<TrendsResponse> {
    let mut plan = req.check()?;
    plan.c.set_segment(req.segment.as_ref(), env)?;
    let ctx = env.session(&plan.c.site).await?;
    // The ranges' queries run concurrently (each is small; together they use every core).
    let previous = async {
        match req.compare {
            true => one_range(&ctx, env, req, &plan, req.date_range.previous()).await.map(Some),
            false => Ok(None),
        }
    };
    let ((current, by_dim, mut ran), previous) =
        futures::try_join!(one_range(&ctx, env, req, &plan, req.date_range), previous)?;
    let (previous, mut previous_by_dim) = match previous {
        Some((p, by_dim, sql)) => {
            ran.extend(sql);
            (Some(p), by_dim.into_iter().map(Some).collect())
        }
        None => (None, Vec::new()),
    };
    previous_by_dim.resize(by_dim.len(), None);
    let by_breakdown = (req.breakdowns.iter().zip(by_dim).zip(previous_by_dim))
        .map(|((breakdown, current), previous)| ByBreakdown { breakdown: breakdown.clone(), current, previous })
        .collect();
    Ok(TrendsResponse {
        interval: req.interval,
        timezone: plan.c.tz.name().to_owned(),
        metrics: req.metrics.clone(),
        breakdown: req.breakdown.clone(),
        current,
        previous,
        sql: ran,
        by_segment: Vec::new(),
        by_breakdown,
    })
}

/// One range's results: everything (or each value of `breakdown`), then each dimension of
/// `breakdowns`, and the SQL run.
async fn one_range(
    ctx: &datafusion::prelude::SessionContext,
    env: &Env,
    req: &TrendsRequest,
    plan: &Plan,
    range: DateRange,
) -> Result<(RangeResults, Vec<RangeResults>, Vec<RanSql>)> {
    if !plan.breakdowns.is_empty() {
        return several_breakdowns(ctx, env, req, plan, range).await;
    }
    let bd = plan.breakdown.as_ref();
    let sessions = req.reads_session_hours(plan, env, range, bd);
    let series = async {
        match req.series {
            true => run_grouped(ctx, env, &plan.c, req.sql(plan, bd, range, true, sessions)).await.map(Some),
            false => Ok(None),
        }
    };
    let ((totals, sql), series) =
        futures::try_join!(run_grouped(ctx, env, &plan.c, req.sql(plan, bd, range, false, sessions)), series)?;
    let mut ran = vec![sql];
    let series = series.map_or_else(Vec::new, |(series, sql)| {
        ran.push(sql);
        series
    });
    let totals = totals.into_iter().map(|(_, value, agg)| (value, agg)).collect();
    let main = assemble(req, plan, range, totals, series, plan.breakdown.is_some());
    Ok((main, Vec::new(), ran))
}

/// One range of a `breakdowns` request: the totals of everything, then each dimension's, each
/// the query that dimension alone as `breakdown` runs (over session hours when they answer
/// it), two at a time on the request's session.
///
/// Not one scan: one query with `GROUP BY GROUPING SETS` over the dimensions was tried and was
/// slower than the separate queries in DataFusion 55 (7 session-level dimensions over 30 days
/// of the 10M-event bench store: 12.5 s and 2.2 GB, against 0.6-0.7 s each alone), and over
/// events it ran out of its 2 GB pool (BENCHMARKS.md).
async fn several_breakdowns(
    ctx: &datafusion::prelude::SessionContext,
    env: &Env,
    req: &TrendsRequest,
    plan: &Plan,
    range: DateRange,
) -> Result<(RangeResults, Vec<RangeResults>, Vec<RanSql>)> {
    let dims: Vec<Option<&Dimension>> = std::iter::once(None).chain(plan.breakdowns.iter().map(Some)).collect();
    let mut answers: Vec<(Grouped, RanSql)> = Vec::with_capacity(dims.len());
    for pair in dims.chunks(2) {
        let mut queries = Vec::with_capacity(2);
        for &d in pair {
            queries.push(totals_by(ctx, env, req, plan, range, d));
        }
        answers.extend(futures::future::try_join_all(queries).await?);
    }
    let mut ran = Vec::new();
    let mut results = answers.into_iter().enumerate().map(|(i, (rows, sql))| {
        ran.push(sql);
        let rows = rows.into_iter().map(|(_, value, agg)| (value, agg)).collect();
        assemble(req, plan, range, rows, Vec::new(), i > 0)
    });
    let everything = results.next().unwrap_or(RangeResults { date_range: range, results: Vec::new() });
    let by_dim = results.collect();
    Ok((everything, by_dim, ran))
}

/// One range's totals by `breakdown`'s values (or of everything), as a `breakdown` request's.
async fn totals_by(
    ctx: &datafusion::prelude::SessionContext,
    env: &Env,
    req: &TrendsRequest,
    plan: &Plan,
    range: DateRange,
    breakdown: Option<&Dimension>,
) -> Result<(Grouped, RanSql)> {
    let sessions = req.reads_session_hours(plan, env, range, breakdown);
    run_grouped(ctx, env, &plan.c, req.sql(plan, breakdown, range, false, sessions)).await
}

/// One range's results from its totals rows (value, aggregates) and series rows: values by
/// visitors (then value), cut at the limit; without a breakdown, one.
fn assemble(
    req: &TrendsRequest,
    plan: &Plan,
    range: DateRange,
    mut totals: Vec<(Option<String>, Agg)>,
    series: Grouped,
    by_value: bool,
) -> RangeResults {
    totals.sort_by(|a, b| b.1.visitors.cmp(&a.1.visitors).then_with(|| a.0.cmp(&b.0)));
    totals.truncate(req.breakdown_limit);
    if totals.is_empty() && !by_value {
        totals.push((None, Agg::default()));
    }
    let mut by_key: HashMap<(Option<String>, NaiveDateTime), Agg> = HashMap::new();
    for (bucket, value, agg) in series {
        if let Some(b) = bucket {
            by_key.insert((value, b), agg);
        }
    }
    let buckets = if req.series { plan.c.period_starts(req.interval, range) } else { Vec::new() };
    let results = totals
        .into_iter()
        .map(|(value, agg)| {
            let series = buckets
                .iter()
                .map(|&t| {
                    let a = by_key.remove(&(value.clone(), t)).unwrap_or_default();
                    Point { bucket: req.interval.label(t), values: a.values(&req.metrics) }
                })
                .collect();
            Breakdown { value, totals: agg.values(&req.metrics), series }
        })
        .collect();
    RangeResults { date_range: range, results }
}
