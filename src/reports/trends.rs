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
//! - **visit duration**: mean of (last − first time of the events a browser sent) over the
//!   sessions, in seconds (the backend's events, `origin` `server`, do not stretch a visit);
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

mod sql;

/// Most breakdown values a response may hold.
pub const MAX_BREAKDOWN_LIMIT: usize = 1000;

/// A trends metric.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord, Hash, utoipa::ToSchema)]
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
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
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
    /// hour, day (default), week (from the site's first day, Monday by default) or month.
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
    /// False for a partial interval: cut by the range's start or end (a week of a range that
    /// starts or ends mid-week), or still running. PostHog draws such a point dotted.
    pub complete: bool,
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
    /// Summed session durations, in microseconds.
    duration_us: i64,
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
                Metric::VisitDuration => {
                    let mean =
                        if self.sessions > 0 { self.duration_us as f64 / 1e6 / self.sessions as f64 } else { 0.0 };
                    v.visit_duration = Some(round2(mean));
                }
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
    /// Passes over buckets of people (the people query) and of sessions (the sessions query),
    /// so that each pass groups a `passes`-th of them (docs/adr/0005-reports-past-memory.md).
    passes: usize,
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
        Ok(Plan { c, breakdown, breakdowns, passes: 1 })
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
            out.push(Dimension::parse_breakdown(name).map_err(|m| invalid(format!("breakdowns[{i}]"), m))?);
        }
        Ok(out)
    }
}

/// (bucket, breakdown value, aggregates) rows.
type Grouped = Vec<(Option<NaiveDateTime>, Option<String>, Agg)>;

/// Run a range's queries (see [`TrendsRequest::sql`]) one after another, each on its own
/// memory, and join their rows by (bucket, breakdown value).
async fn run_grouped(
    ctx: &datafusion::prelude::SessionContext,
    env: &Env,
    c: &Checked,
    sqls: Vec<(String, Sql)>,
) -> Result<(Grouped, Vec<RanSql>)> {
    let mut by_key: HashMap<(Option<NaiveDateTime>, Option<String>), Agg> = HashMap::new();
    let mut ran = Vec::with_capacity(sqls.len());
    for (sql, q) in sqls {
        let batches = run(ctx, &sql, &q, &env.limits).await?;
        ran.push(RanSql { sql, params: q.params });
        Rows::new(&batches).each(|r| {
            let agg = by_key.entry((c.bucket_of(r, "bucket"), r.text("breakdown"))).or_default();
            agg.visitors += r.u64("visitors");
            agg.sessions += r.u64("sessions");
            agg.page_sessions += r.u64("page_sessions");
            agg.pageviews += r.u64("pageviews");
            agg.events += r.u64("events");
            agg.bounces += r.u64("bounces");
            agg.duration_us += r.micros("duration_us").unwrap_or(0);
            if let Some(v) = r.f64("revenue") {
                agg.revenue = Some(agg.revenue.unwrap_or(0.0) + v);
            }
            agg.converted += r.u64("converted");
        });
    }
    Ok((by_key.into_iter().map(|((bucket, value), agg)| (bucket, value, agg)).collect(), ran))
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
    let plan = req.check()?;
    let (start, end) = plan.c.bounds(req.date_range);
    // Boxed: the report's future is large, and a debug build's test thread has 2 MiB of stack.
    Box::pin(trends_in_passes(env, req, super::sql::passes(env, &plan.c.site, start, end)?)).await
}

/// A trends report (without `compare_segments`) whose queries each run in `passes` passes:
/// the people query over one bucket of people (`footfall_bucket`) at a time, the sessions
/// query over one bucket of sessions. The answer does not depend on `passes` (a test checks
/// it); [`trends`] picks it from the stored rows of the range.
pub async fn trends_in_passes(env: &Env, req: &TrendsRequest, passes: usize) -> Result<TrendsResponse> {
    let mut plan = req.check()?;
    plan.passes = passes.max(1);
    plan.c.prepare(req.segment.as_ref(), env)?;
    let ctx = env.session(&plan.c.site).await?;
    // The ranges' queries run concurrently (each is small; together they use every core),
    // unless the store is big enough for passes: then one at a time, each with the whole pool.
    let previous = async {
        match req.compare {
            true => one_range(&ctx, env, req, &plan, req.date_range.previous()).await.map(Some),
            false => Ok(None),
        }
    };
    let ((current, by_dim, mut ran), previous) =
        both(one_range(&ctx, env, req, &plan, req.date_range), previous, plan.passes == 1).await?;
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

/// Both answers: concurrently when `together`, else one after the other.
async fn both<A, B>(
    a: impl std::future::Future<Output = Result<A>>,
    b: impl std::future::Future<Output = Result<B>>,
    together: bool,
) -> Result<(A, B)> {
    if together {
        futures::try_join!(a, b)
    } else {
        let a = a.await?;
        Ok((a, b.await?))
    }
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
    let totals = run_grouped(ctx, env, &plan.c, req.sql(plan, bd, range, false, sessions));
    let ((totals, sql), series) = both(totals, series, plan.passes == 1).await?;
    let mut ran = sql;
    let series = series.map_or_else(Vec::new, |(series, sql)| {
        ran.extend(sql);
        series
    });
    let totals = totals.into_iter().map(|(_, value, agg)| (value, agg)).collect();
    let main = assemble(req, plan, env, range, totals, series, plan.breakdown.is_some());
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
    let mut answers: Vec<(Grouped, Vec<RanSql>)> = Vec::with_capacity(dims.len());
    for pair in dims.chunks(if plan.passes == 1 { 2 } else { 1 }) {
        let mut queries = Vec::with_capacity(2);
        for &d in pair {
            queries.push(totals_by(ctx, env, req, plan, range, d));
        }
        answers.extend(futures::future::try_join_all(queries).await?);
    }
    let mut ran = Vec::new();
    let mut results = answers.into_iter().enumerate().map(|(i, (rows, sql))| {
        ran.extend(sql);
        let rows = rows.into_iter().map(|(_, value, agg)| (value, agg)).collect();
        assemble(req, plan, env, range, rows, Vec::new(), i > 0)
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
) -> Result<(Grouped, Vec<RanSql>)> {
    let sessions = req.reads_session_hours(plan, env, range, breakdown);
    run_grouped(ctx, env, &plan.c, req.sql(plan, breakdown, range, false, sessions)).await
}

/// One range's results from its totals rows (value, aggregates) and series rows: values by
/// visitors (then value), cut at the limit; without a breakdown, one.
fn assemble(
    req: &TrendsRequest,
    plan: &Plan,
    env: &Env,
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
    // Whole intervals start inside the range and have ended by `complete_until`.
    let first = plan.c.local(plan.c.bounds(range).0);
    let until = plan.c.complete_until(range, env.now());
    let complete = |t: NaiveDateTime| t >= first && req.interval.next(t) <= until;
    let results = totals
        .into_iter()
        .map(|(value, agg)| {
            let series = buckets
                .iter()
                .map(|&t| {
                    let a = by_key.remove(&(value.clone(), t)).unwrap_or_default();
                    Point { bucket: req.interval.label(t), values: a.values(&req.metrics), complete: complete(t) }
                })
                .collect();
            Breakdown { value, totals: agg.values(&req.metrics), series }
        })
        .collect();
    RangeResults { date_range: range, results }
}
