//! Engagement: how far people scroll and how long they engage, per page, from the `$engagement`
//! events the snippet sends when a page is left or hidden (`scroll`: the deepest point seen, in
//! percent of the page; `seconds`: time visible and focused since the last report).
//!
//! - A **view** is one page left or hidden with at least a second of engagement: one
//!   `$engagement` event (a page hidden and shown again sends another, for the time since).
//! - **Scroll depth**: the share of views whose `scroll` reached 25, 50, 75 and 100% (capped at
//!   100 on ingestion and here, for rows stored before), as a scroll map shows it.
//! - **Engaged time**: the mean and the median of `seconds` per view. GA4's "average engagement
//!   time" sums the same visible-and-focused time and divides it by active users, not views;
//!   time measured this way is not the gap to the next pageview, which misses the last page.
//!
//! Global filters and the segment apply to the `$engagement` events (a filter on `page` is the
//! page the view was of). Pages are ranked by views; `limit` (default 20, up to 1,000) cuts them.

use serde::{Deserialize, Serialize};

use super::{DateRange, Env, Filter, RanSql, Result, Rows, Sql, invalid, round2, run};

/// `POST /api/reports/engagement`.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EngagementRequest {
    pub site: String,
    pub date_range: DateRange,
    #[serde(default = "super::utc")]
    pub timezone: String,
    #[serde(default)]
    pub filters: Vec<Filter>,
    /// Only people in this segment: a definition or a template id (see segments).
    #[serde(default)]
    pub segment: Option<serde_json::Value>,
    /// Pages listed, by views (default 20).
    #[serde(default = "default_limit")]
    pub limit: usize,
}

fn default_limit() -> usize {
    20
}

/// The figures of all views, or of one page's.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Engagement {
    /// Views with an engagement report.
    pub views: u64,
    /// Percent of views whose deepest scroll reached 25, 50, 75 and 100% of the page.
    pub reached_25: f64,
    pub reached_50: f64,
    pub reached_75: f64,
    pub reached_100: f64,
    /// Mean deepest scroll, percent.
    pub avg_scroll: f64,
    /// Mean and median engaged seconds per view.
    pub avg_engaged_seconds: f64,
    pub median_engaged_seconds: f64,
}

/// One page.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PageEngagement {
    pub page: String,
    #[serde(flatten)]
    pub figures: Engagement,
}

/// The answer.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct EngagementResponse {
    pub timezone: String,
    pub totals: Engagement,
    pub pages: Vec<PageEngagement>,
    pub sql: Vec<RanSql>,
}

impl EngagementRequest {
    fn sql(&self, c: &super::Checked) -> (String, Sql) {
        let mut q = Sql::default();
        let (start, end) = c.bounds(self.date_range);
        let range = c.range_sql(&mut q, start, end);
        let filters = c.filters_sql(&mut q);
        let limit = self.limit;
        // GROUPING SETS: one row for every view (page NULL, grouping 1) and one per page.
        let sql = format!(
            "WITH v AS (
  SELECT coalesce(path, '/') AS page,
    least(greatest(coalesce(TRY_CAST(props['scroll'] AS DOUBLE), 0), 0), 100) AS scroll,
    greatest(coalesce(TRY_CAST(props['seconds'] AS DOUBLE), 0), 0) AS seconds
  FROM events WHERE {range}{filters} AND name = '$engagement'
),
g AS (
  SELECT page, grouping(page) AS everything, count(*) AS views,
    count(*) FILTER (WHERE scroll >= 25) AS r25, count(*) FILTER (WHERE scroll >= 50) AS r50,
    count(*) FILTER (WHERE scroll >= 75) AS r75, count(*) FILTER (WHERE scroll >= 100) AS r100,
    avg(scroll) AS avg_scroll, avg(seconds) AS avg_seconds, median(seconds) AS median_seconds
  FROM v GROUP BY GROUPING SETS ((), (page))
)
SELECT * FROM g WHERE everything = 1
UNION ALL
(SELECT * FROM g WHERE everything = 0 ORDER BY views DESC, page LIMIT {limit})"
        );
        (sql, q)
    }
}

/// Run an engagement report.
pub async fn engagement(env: &Env, req: &EngagementRequest) -> Result<EngagementResponse> {
    let (mut c, _) = super::check_common(&req.site, req.date_range, &req.timezone, &req.filters, None)?;
    if !(1..=1_000).contains(&req.limit) {
        return Err(invalid("limit", "between 1 and 1000"));
    }
    c.prepare(req.segment.as_ref(), env)?;
    let (sql, q) = req.sql(&c);
    let ctx = env.session(&c.site).await?;
    let batches = run(&ctx, &sql, &q, &env.limits).await?;
    let mut totals = Engagement::default();
    let mut pages = Vec::new();
    Rows::new(&batches).each(|r| {
        let views = r.u64("views");
        let share = |n: &str| super::percent(r.u64(n) as f64, views as f64);
        let figures = Engagement {
            views,
            reached_25: share("r25"),
            reached_50: share("r50"),
            reached_75: share("r75"),
            reached_100: share("r100"),
            avg_scroll: round2(r.f64("avg_scroll").unwrap_or(0.0)),
            avg_engaged_seconds: round2(r.f64("avg_seconds").unwrap_or(0.0)),
            median_engaged_seconds: round2(r.f64("median_seconds").unwrap_or(0.0)),
        };
        match r.u64("everything") {
            1 => totals = figures,
            _ => pages.push(PageEngagement { page: r.text("page").unwrap_or_default(), figures }),
        }
    });
    pages.sort_by(|a, b| b.figures.views.cmp(&a.figures.views).then_with(|| a.page.cmp(&b.page)));
    Ok(EngagementResponse {
        timezone: req.timezone.clone(),
        totals,
        pages,
        sql: vec![RanSql { sql, params: q.params }],
    })
}
