//! Heatmap: where people click on a page and how far they read it, from the `$click` events of
//! the click add-on (`/h.js`) and the `$engagement` events the snippet sends.
//!
//! - **Pages** are ranked by clicks (with their rage and dead clicks), over every page.
//! - For one page (`page`, else the page with the most clicks) and, optionally, one viewport
//!   class (`device`: `mobile`, `tablet` or `desktop`, as the add-on measured the viewport when
//!   the click happened):
//!   - **elements**: clicks per element selector, with rage clicks (the third click within 1 s
//!     and 30 px, once per burst) and dead clicks (nothing followed within 1 s), and the mean
//!     position of the clicks inside the element (0–1);
//!   - **grid**: clicks per cell of `columns` equal columns of the document's width and rows of
//!     `row_height` CSS pixels from the top, so pages of any width share one grid;
//!   - **scroll map**: the share of the page's views whose deepest scroll reached 10, 20, … 100%
//!     of the page. A view is a pageview; its depth is the deepest `scroll` (capped at 100) of the
//!     `$engagement` events after it in its session and before the session's next view of the
//!     page. A view left within a second sends none and reaches no band. `device` here is the
//!     device class of the browser (the `device` column), as pageviews carry no viewport.
//!
//! Global filters and the segment apply to every event read.

use serde::{Deserialize, Serialize};

use super::{DateRange, Env, Filter, RanSql, Result, Rows, Sql, invalid, percent, round2, run};

/// `POST /api/reports/heatmap`.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeatmapRequest {
    pub site: String,
    pub date_range: DateRange,
    #[serde(default = "super::utc")]
    pub timezone: String,
    #[serde(default)]
    pub filters: Vec<Filter>,
    /// Only people in this segment: a definition or a template id (see segments).
    #[serde(default)]
    pub segment: Option<serde_json::Value>,
    /// The page (path) to map; default: the page with the most clicks.
    #[serde(default)]
    pub page: Option<String>,
    /// `mobile`, `tablet` or `desktop`; default: every device.
    #[serde(default)]
    pub device: Option<String>,
    /// Grid columns across the document's width (default 20, 1–100).
    #[serde(default = "default_columns")]
    pub columns: u32,
    /// Grid row height in CSS pixels (default 50, 10–1000).
    #[serde(default = "default_row_height")]
    pub row_height: u32,
    /// Pages and elements listed (default 20, up to 1,000).
    #[serde(default = "default_limit")]
    pub limit: usize,
}

fn default_columns() -> u32 {
    20
}
fn default_row_height() -> u32 {
    50
}
fn default_limit() -> usize {
    20
}

/// Clicks, rage clicks and dead clicks.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Clicks {
    pub clicks: u64,
    pub rage_clicks: u64,
    pub dead_clicks: u64,
}

impl Clicks {
    fn add_to(&self, total: &mut Clicks) {
        total.clicks += self.clicks;
        total.rage_clicks += self.rage_clicks;
        total.dead_clicks += self.dead_clicks;
    }
}

/// One page's clicks.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PageClicks {
    pub page: String,
    #[serde(flatten)]
    pub clicks: Clicks,
}

/// One element's clicks.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ElementClicks {
    pub selector: String,
    #[serde(flatten)]
    pub clicks: Clicks,
    /// Percent of the page's clicks.
    pub share: f64,
    /// Mean position of the clicks inside the element, 0–1 from its left and top edges.
    pub avg_x: f64,
    pub avg_y: f64,
}

/// One grid cell with clicks.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Cell {
    /// 0-based, from the left edge of the document.
    pub column: u32,
    /// 0-based, from the top: pixels `row × row_height` to `(row + 1) × row_height`.
    pub row: u32,
    pub clicks: u64,
}

/// The click density grid.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Grid {
    pub columns: u32,
    pub row_height: u32,
    /// The most clicks in one cell.
    pub max: u64,
    /// Cells with clicks, by row then column.
    pub cells: Vec<Cell>,
}

/// One band of the scroll map.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Band {
    /// Percent of the page's height.
    pub depth: u32,
    /// Views that reached it, and their percent of all views.
    pub views: u64,
    pub share: f64,
}

/// The scroll map.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ScrollMap {
    /// Views of the page (pageviews).
    pub views: u64,
    /// Views with an engagement report (the others were left within a second).
    pub measured: u64,
    /// Mean deepest scroll of the measured views, percent.
    pub avg_depth: f64,
    pub bands: Vec<Band>,
}

/// The answer.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct HeatmapResponse {
    pub timezone: String,
    /// The page mapped (`None`: no clicks and none asked for).
    pub page: Option<String>,
    pub device: Option<String>,
    /// Pages by clicks.
    pub pages: Vec<PageClicks>,
    /// The mapped page's clicks.
    pub totals: Clicks,
    pub elements: Vec<ElementClicks>,
    pub grid: Grid,
    pub scroll: ScrollMap,
    pub sql: Vec<RanSql>,
}

const DEVICES: [&str; 3] = ["mobile", "tablet", "desktop"];
/// Depth bands of the scroll map, percent.
const BANDS: [u32; 10] = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100];

/// The SQL of a number property (NULL when it is not one).
fn num(key: &str) -> String {
    format!("TRY_CAST(props['{key}'] AS DOUBLE)")
}

impl HeatmapRequest {
    fn check(&self) -> Result<()> {
        if !(1..=1_000).contains(&self.limit) {
            return Err(invalid("limit", "between 1 and 1000"));
        }
        if !(1..=100).contains(&self.columns) {
            return Err(invalid("columns", "between 1 and 100"));
        }
        if !(10..=1_000).contains(&self.row_height) {
            return Err(invalid("row_height", "between 10 and 1000 (CSS pixels)"));
        }
        if let Some(d) = &self.device
            && !DEVICES.contains(&d.as_str())
        {
            return Err(invalid("device", format!("one of {}, not {d:?}", DEVICES.join(", "))));
        }
        if self.page.as_deref().is_some_and(|p| p.is_empty() || p.len() > 2048) {
            return Err(invalid("page", "a path of 1 to 2048 characters, such as /products/mug"));
        }
        Ok(())
    }

    /// Clicks per page (every page).
    fn pages_sql(&self, c: &super::Checked) -> (String, Sql) {
        let mut q = Sql::default();
        let clicks = self.clicks_where(c, &mut q);
        let sql = format!(
            "SELECT coalesce(path, '/') AS page, count(*) AS clicks,
  count(*) FILTER (WHERE props['rage'] = 'true') AS rage, count(*) FILTER (WHERE props['dead'] = 'true') AS dead
FROM events WHERE {clicks}
GROUP BY 1 ORDER BY clicks DESC, page LIMIT {}",
            self.limit
        );
        (sql, q)
    }

    /// The events of the range that pass the filters and the segment, and of the device class:
    /// as `device_sql` names it on these events (the viewport of a click, the browser of a view).
    fn events_where(&self, c: &super::Checked, q: &mut Sql, device_sql: &str) -> String {
        let (start, end) = c.bounds(self.date_range);
        let range = c.range_sql(q, start, end);
        let filters = c.filters_sql(q);
        let device = match &self.device {
            Some(d) => format!(" AND {device_sql} = {}", q.bind(d)),
            None => String::new(),
        };
        format!("{range}{filters}{device}")
    }

    /// The WHERE of every click of this request.
    fn clicks_where(&self, c: &super::Checked, q: &mut Sql) -> String {
        format!("{} AND name = '$click'", self.events_where(c, q, "props['vw']"))
    }

    /// The page's clicks per element and grid cell, in one scan and one grouping (the elements,
    /// cells and totals are summed from it: three GROUPING SETS cost 40% more).
    fn clicks_sql(&self, c: &super::Checked, page: &str) -> (String, Sql) {
        let mut q = Sql::default();
        let clicks = self.clicks_where(c, &mut q);
        let page = q.bind(page);
        let (columns, row_height) = (self.columns, self.row_height);
        let sql = format!(
            "WITH c AS (
  SELECT coalesce(props['selector'], '') AS selector, props['rage'] = 'true' AS rage, props['dead'] = 'true' AS dead,
    {ex} AS ex, {ey} AS ey,
    CAST(least(greatest(floor({x} * {columns}), 0), {columns} - 1) AS BIGINT) AS col,
    CAST(floor(greatest({y}, 0) / {row_height}) AS BIGINT) AS row
  FROM events WHERE {clicks} AND coalesce(path, '/') = {page}
)
SELECT selector, col, row, count(*) AS clicks, count(*) FILTER (WHERE rage) AS rage,
  count(*) FILTER (WHERE dead) AS dead, sum(ex) AS sum_x, count(ex) AS n_x, sum(ey) AS sum_y, count(ey) AS n_y
FROM c GROUP BY selector, col, row",
            ex = num("ex"),
            ey = num("ey"),
            x = num("x"),
            y = num("y"),
        );
        (sql, q)
    }

    /// The page's pageviews and engagement reports, for [`views`] to pair (a window function
    /// over the sessions did the same in SQL at three times the cost: a partition per session).
    fn scroll_sql(&self, c: &super::Checked, page: &str) -> (String, Sql) {
        let mut q = Sql::default();
        let views = self.events_where(c, &mut q, "lower(device)");
        let page = q.bind(page);
        let sql = format!(
            "SELECT session_id, CAST(ts AS BIGINT) AS us, name = 'pageview' AS pageview,
  least(greatest(coalesce({scroll}, 0), 0), 100) AS scroll
FROM events WHERE {views} AND name IN ('pageview', '$engagement') AND coalesce(path, '/') = {page}",
            scroll = num("scroll"),
        );
        (sql, q)
    }
}

/// One row of [`HeatmapRequest::scroll_sql`]: (session, microseconds, a pageview?, scroll).
type Seen = (u32, i64, bool, f64);

/// Each view's depth (`None`: no engagement report): a view is a pageview, and an engagement
/// report belongs to the session's last pageview of the page before it (at the same instant,
/// the report first: it is the previous view's, sent as the page was left). Reports before the
/// session's first pageview in the range belong to no view.
fn views(mut seen: Vec<Seen>) -> Vec<Option<f64>> {
    seen.sort_unstable_by_key(|s| (s.0, s.1, s.2));
    let mut out: Vec<Option<f64>> = Vec::new();
    let mut session = None;
    for (s, _, pageview, scroll) in seen {
        if pageview {
            out.push(None);
            session = Some(s);
        } else if session == Some(s)
            && let Some(depth) = out.last_mut()
        {
            *depth = Some(depth.map_or(scroll, |d| d.max(scroll)));
        }
    }
    out
}

/// The rows of [`HeatmapRequest::scroll_sql`], sessions numbered.
fn seen(batches: &[datafusion::arrow::record_batch::RecordBatch]) -> Result<Vec<Seen>> {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
    let mut ids: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
    let mut out = Vec::with_capacity(batches.iter().map(|b| b.num_rows()).sum());
    for b in batches {
        let col = |n: &str, t: &DataType| {
            datafusion::arrow::compute::cast(b.column_by_name(n).expect(n), t)
                .map_err(|e| super::Error::from(datafusion::error::DataFusionError::from(e)))
        };
        let (session, us, pageview, scroll) = (
            col("session_id", &DataType::Utf8)?,
            col("us", &DataType::Int64)?,
            col("pageview", &DataType::Boolean)?,
            col("scroll", &DataType::Float64)?,
        );
        let (session, us, pageview, scroll) = (
            session.as_string::<i32>(),
            us.as_primitive::<Int64Type>(),
            pageview.as_boolean(),
            scroll.as_primitive::<Float64Type>(),
        );
        for i in 0..b.num_rows() {
            // Copy a session's id on its first row only.
            let id = match ids.get(session.value(i)) {
                Some(&id) => id,
                None => {
                    let id = ids.len() as u32;
                    ids.insert(session.value(i).to_owned(), id);
                    id
                }
            };
            out.push((id, us.value(i), pageview.is_valid(i) && pageview.value(i), scroll.value(i)));
        }
    }
    Ok(out)
}

/// Run a heatmap report.
pub async fn heatmap(env: &Env, req: &HeatmapRequest) -> Result<HeatmapResponse> {
    let (mut c, _) = super::check_common(&req.site, req.date_range, &req.timezone, &req.filters, None)?;
    req.check()?;
    c.prepare(req.segment.as_ref(), env)?;
    // Late materialisation: the filters run first and `props` is decoded only for the rows that
    // pass them (a page's clicks are a few percent of the rows but sit in every row group, and
    // decoding the map column of every row cost more than the rest of the report).
    let ctx = {
        let mut state = env.session(&c.site).await?.state();
        state.config_mut().options_mut().execution.parquet.pushdown_filters = true;
        datafusion::prelude::SessionContext::new_with_state(state)
    };
    let mut ran = Vec::new();

    // The page's clicks and views; with the page named, at once with the pages by clicks.
    let detail = |page: String| {
        let (clicks_sql, cq) = req.clicks_sql(&c, &page);
        let (scroll_sql, sq) = req.scroll_sql(&c, &page);
        let (ctx, limits) = (&ctx, &env.limits);
        async move {
            let (clicks, scroll) =
                tokio::try_join!(run(ctx, &clicks_sql, &cq, limits), run(ctx, &scroll_sql, &sq, limits))?;
            let ran = [RanSql { sql: clicks_sql, params: cq.params }, RanSql { sql: scroll_sql, params: sq.params }];
            Ok::<_, super::Error>((clicks, scroll, ran))
        }
    };
    let (sql, q) = req.pages_sql(&c);
    let listed = run(&ctx, &sql, &q, &env.limits);
    let (batches, mut details) = match req.page.clone() {
        Some(page) => {
            let (b, d) = tokio::try_join!(listed, detail(page))?;
            (b, Some(d))
        }
        None => (listed.await?, None),
    };
    ran.push(RanSql { sql, params: q.params });
    let mut pages = Vec::new();
    Rows::new(&batches).each(|r| {
        pages.push(PageClicks {
            page: r.text("page").unwrap_or_default(),
            clicks: Clicks { clicks: r.u64("clicks"), rage_clicks: r.u64("rage"), dead_clicks: r.u64("dead") },
        });
    });
    pages.sort_by(|a, b| b.clicks.clicks.cmp(&a.clicks.clicks).then_with(|| a.page.cmp(&b.page)));

    let mut out = HeatmapResponse {
        timezone: req.timezone.clone(),
        page: req.page.clone().or_else(|| pages.first().map(|p| p.page.clone())),
        device: req.device.clone(),
        pages,
        totals: Clicks::default(),
        elements: Vec::new(),
        grid: Grid { columns: req.columns, row_height: req.row_height, max: 0, cells: Vec::new() },
        scroll: ScrollMap {
            views: 0,
            measured: 0,
            avg_depth: 0.0,
            bands: BANDS.iter().map(|&depth| Band { depth, views: 0, share: 0.0 }).collect(),
        },
        sql: Vec::new(),
    };
    if details.is_none()
        && let Some(page) = out.page.clone()
    {
        details = Some(detail(page).await?);
    }
    let Some((clicks, scroll, detail_sql)) = details else {
        out.sql = ran;
        return Ok(out);
    };
    ran.extend(detail_sql);

    // Per element: its clicks and the sums of its positions; per cell: its clicks.
    let mut elements: std::collections::HashMap<String, (Clicks, [f64; 4])> = std::collections::HashMap::new();
    let mut cells: std::collections::BTreeMap<(u32, u32), u64> = std::collections::BTreeMap::new();
    Rows::new(&clicks).each(|r| {
        let n = Clicks { clicks: r.u64("clicks"), rage_clicks: r.u64("rage"), dead_clicks: r.u64("dead") };
        n.add_to(&mut out.totals);
        let (element, sums) = elements.entry(r.text("selector").unwrap_or_default()).or_default();
        n.add_to(element);
        for (i, k) in ["sum_x", "n_x", "sum_y", "n_y"].into_iter().enumerate() {
            sums[i] += r.f64(k).unwrap_or(0.0);
        }
        // A click without a position has no cell.
        if let (Some(col), Some(row)) = (r.f64("col"), r.f64("row")) {
            *cells.entry((row as u32, col as u32)).or_default() += n.clicks;
        }
    });
    let mean = |sum: f64, n: f64| if n > 0.0 { round2(sum / n) } else { 0.0 };
    out.elements = elements
        .into_iter()
        .map(|(selector, (clicks, s))| ElementClicks {
            selector,
            clicks,
            share: 0.0,
            avg_x: mean(s[0], s[1]),
            avg_y: mean(s[2], s[3]),
        })
        .collect();
    out.grid.cells = cells.into_iter().map(|((row, column), clicks)| Cell { column, row, clicks }).collect();
    let total = out.totals.clicks as f64;
    for e in &mut out.elements {
        e.share = percent(e.clicks.clicks as f64, total);
    }
    out.elements.sort_by(|a, b| b.clicks.clicks.cmp(&a.clicks.clicks).then_with(|| a.selector.cmp(&b.selector)));
    out.elements.truncate(req.limit);
    out.grid.max = out.grid.cells.iter().map(|c| c.clicks).max().unwrap_or(0);

    let depths = views(seen(&scroll)?);
    let measured: Vec<f64> = depths.iter().flatten().copied().collect();
    out.scroll.views = depths.len() as u64;
    out.scroll.measured = measured.len() as u64;
    out.scroll.avg_depth =
        if measured.is_empty() { 0.0 } else { round2(measured.iter().sum::<f64>() / measured.len() as f64) };
    for b in &mut out.scroll.bands {
        b.views = measured.iter().filter(|&&d| d >= f64::from(b.depth)).count() as u64;
        b.share = percent(b.views as f64, depths.len() as f64);
    }
    out.sql = ran;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(v: serde_json::Value) -> Result<HeatmapRequest> {
        let r: HeatmapRequest = super::super::parse_request(v.to_string().as_bytes())?;
        r.check().map(|()| r)
    }

    #[test]
    fn reports_belong_to_the_last_view_before_them() {
        // Session 0: a report before any view (its pageview was before the range), view 1 with
        // two reports, a report at the instant of view 2 (view 1's), view 2 with none. Session 1:
        // one view, one report. Rows come in any order.
        let rows = vec![
            (0, 5, false, 30.0),
            (0, 10, true, 0.0),
            (0, 40, true, 0.0),
            (0, 40, false, 90.0),
            (0, 20, false, 50.0),
            (1, 1, false, 10.0),
            (0, 1, false, 99.0),
            (1, 0, true, 0.0),
        ];
        assert_eq!(views(rows), vec![Some(90.0), None, Some(10.0)]);
        assert_eq!(views(Vec::new()), Vec::<Option<f64>>::new());
    }

    #[test]
    fn bad_fields_are_named() {
        let base = serde_json::json!({"site": "s", "date_range": {"from": "2026-01-01", "to": "2026-01-02"}});
        let with = |k: &str, v: serde_json::Value| {
            let mut b = base.clone();
            b[k] = v;
            match req(b) {
                Err(super::super::Error::Invalid { field, .. }) => field,
                other => panic!("{k}: {other:?}"),
            }
        };
        assert_eq!(with("device", "phone".into()), "device");
        assert_eq!(with("columns", 0.into()), "columns");
        assert_eq!(with("row_height", 5.into()), "row_height");
        assert_eq!(with("limit", 0.into()), "limit");
        assert_eq!(with("page", "".into()), "page");
        let ok = req(base).expect("defaults");
        assert_eq!((ok.columns, ok.row_height, ok.limit, ok.device), (20, 50, 20, None));
    }
}
