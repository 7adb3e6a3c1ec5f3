//! Reports as text tables, for `footfall report`.

use std::fmt::Write as _;

use super::RanSql;
use super::attribution::AttributionResponse;
use super::catalog::CatalogResponse;
use super::ecommerce::{EcommerceResponse, ItemRow, Ltv};
use super::engagement::{Engagement, EngagementResponse};
use super::experiment::{Comparison, ExperimentResponse};
use super::funnel::{FunnelResponse, StepResult};
use super::heatmap::HeatmapResponse;
use super::lifecycle::LifecycleResponse;
use super::paths::{PathNode, PathsResponse};
use super::retention::RetentionResponse;
use super::segments::SegmentResponse;
use super::trends::{TrendsResponse, Values};

/// Rows of cells → aligned text (first column left-aligned, the rest right-aligned).
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let width: Vec<usize> =
        (0..cols).map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in rows {
        for (c, cell) in r.iter().enumerate() {
            let pad = width[c].saturating_sub(cell.chars().count());
            if c == 0 {
                let _ = write!(out, "{cell}{}", " ".repeat(pad));
            } else {
                let _ = write!(out, "  {}{cell}", " ".repeat(pad));
            }
        }
        out.push('\n');
    }
    out
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

fn value_cells(v: &Values) -> Vec<String> {
    let mut c = Vec::new();
    let ints = [v.visitors, v.sessions, v.pageviews, v.events];
    c.extend(ints.iter().flatten().map(u64::to_string));
    let floats = [v.bounce_rate, v.visit_duration, v.revenue, v.conversion_rate];
    c.extend(floats.iter().flatten().map(f64::to_string));
    c
}

fn value_header(v: &Values) -> Vec<String> {
    let names = [
        ("visitors", v.visitors.is_some()),
        ("sessions", v.sessions.is_some()),
        ("pageviews", v.pageviews.is_some()),
        ("events", v.events.is_some()),
        ("bounce_rate_%", v.bounce_rate.is_some()),
        ("visit_duration_s", v.visit_duration.is_some()),
        ("revenue", v.revenue.is_some()),
        ("conversion_rate_%", v.conversion_rate.is_some()),
    ];
    names.iter().filter(|(_, on)| *on).map(|(n, _)| (*n).to_owned()).collect()
}

/// Trends: totals per breakdown value, then each series.
pub fn trends(r: &TrendsResponse) -> (String, Vec<RanSql>) {
    let mut out = String::new();
    let periods = std::iter::once(("", &r.current)).chain(r.previous.iter().map(|p| ("previous period ", p)));
    for (what, p) in periods {
        let _ = writeln!(out, "{what}{} to {} ({})", p.date_range.from, p.date_range.to, r.timezone);
        for b in &p.results {
            if r.breakdown.is_some() {
                let _ = writeln!(out, "\n{} = {}", r.breakdown.as_deref().unwrap_or(""), opt(b.value.as_deref()));
            }
            let mut rows = vec![[vec!["bucket".to_owned()], value_header(&b.totals)].concat()];
            for pt in &b.series {
                rows.push([vec![pt.bucket.clone()], value_cells(&pt.values)].concat());
            }
            rows.push([vec!["total".to_owned()], value_cells(&b.totals)].concat());
            out.push_str(&table(&rows));
        }
        out.push('\n');
    }
    // Several breakdowns: a table of values per dimension and range.
    for d in &r.by_breakdown {
        for (what, p) in std::iter::once(("", &d.current)).chain(d.previous.iter().map(|p| ("previous period, ", p))) {
            let _ = writeln!(out, "by {} ({what}{} to {})", d.breakdown, p.date_range.from, p.date_range.to);
            let Some(first) = p.results.first() else {
                out.push_str("(no values)\n\n");
                continue;
            };
            let mut rows = vec![[vec![d.breakdown.clone()], value_header(&first.totals)].concat()];
            for b in &p.results {
                rows.push([vec![opt(b.value.as_deref())], value_cells(&b.totals)].concat());
            }
            out.push_str(&table(&rows));
            out.push('\n');
        }
    }
    (out, r.sql.clone())
}

fn funnel_rows(steps: &[StepResult]) -> String {
    let mut rows = vec![
        ["step", "count", "from first %", "from previous %", "dropped", "avg time s", "median time s"]
            .map(str::to_owned)
            .to_vec(),
    ];
    for s in steps {
        rows.push(vec![
            format!("{}. {}{}", s.step, s.label, if s.optional { " (optional)" } else { "" }),
            s.count.to_string(),
            s.conversion_from_first.to_string(),
            s.conversion_from_previous.to_string(),
            s.dropped.to_string(),
            opt(s.avg_time_to_convert_seconds),
            opt(s.median_time_to_convert_seconds),
        ]);
    }
    table(&rows)
}

/// Funnel: the steps, then per breakdown value.
pub fn funnel(r: &FunnelResponse) -> (String, Vec<RanSql>) {
    let mut out = funnel_rows(&r.steps);
    if r.excluded_people > 0 {
        let _ = writeln!(out, "excluded people: {}", r.excluded_people);
    }
    for b in &r.breakdowns {
        let _ = writeln!(out, "\n{} = {}", r.breakdown.as_deref().unwrap_or(""), opt(b.value.as_deref()));
        out.push_str(&funnel_rows(&b.steps));
    }
    (out, r.sql.clone())
}

/// Retention: one row per cohort, percent per period (`*` marks a period still running).
pub fn retention(r: &RetentionResponse) -> (String, Vec<RanSql>) {
    let mut head = vec!["cohort".to_owned()];
    if r.breakdown.is_some() {
        head.push(r.breakdown.clone().unwrap_or_default());
    }
    head.push("people".into());
    head.extend((0..r.periods).map(|p| format!("{p}")));
    let mut rows = vec![head];
    for c in &r.cohorts {
        let mut row = vec![c.cohort.clone()];
        if r.breakdown.is_some() {
            row.push(opt(c.breakdown_value.as_deref()));
        }
        row.push(c.size.to_string());
        row.extend(c.values.iter().map(|v| format!("{}%{}", v.percent, if v.complete { "" } else { "*" })));
        rows.push(row);
    }
    let mut out =
        format!("{:?} retention by {:?} ({}); * = period not over yet\n", r.retention_type, r.period, r.timezone);
    out.push_str(&table(&rows));
    (out, r.sql.clone())
}

/// An experiment: one row per variant, then the sample-ratio check, the planner and the verdict.
pub fn experiment(r: &ExperimentResponse) -> (String, Vec<RanSql>) {
    let cmp = |c: Option<&Comparison>, unit: &str| {
        c.map_or_else(String::new, |c| {
            format!("{:+}{unit} [{}, {}] p={:.4}", c.difference, c.ci_low, c.ci_high, c.p_value)
        })
    };
    let mut rows = vec![
        [
            "variant",
            "people",
            "converted",
            "rate",
            "lift (points)",
            "lift (relative)",
            "P(beat control)",
            "P(best)",
            "revenue/person",
            "AOV",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    for v in &r.variants {
        rows.push(vec![
            if v.is_control && v.variant != "control" { format!("{} (control)", v.variant) } else { v.variant.clone() },
            v.people.to_string(),
            v.converted.to_string(),
            format!("{}%", v.conversion_rate),
            cmp(v.lift_points.as_ref(), " pts"),
            cmp(v.lift_relative.as_ref(), "%"),
            v.probability_to_beat_control.map_or_else(String::new, |p| format!("{p}%")),
            format!("{}%", v.probability_to_be_best),
            v.revenue_per_person.to_string(),
            opt(v.average_order_value.map(|a| a.to_string()).as_deref()),
        ]);
    }
    let mut out = format!(
        "experiment {:?}, goal {:?} within {} s of the first exposure ({} people in several variants left out)\n",
        r.experiment, r.goal, r.window_seconds, r.mixed_people
    );
    out.push_str(&table(&rows));
    if let Some(s) = &r.sample_ratio {
        let _ = writeln!(
            out,
            "sample ratio: chi-square {} p={:.2e}{}",
            s.chi_square,
            s.p_value,
            if s.mismatch { " MISMATCH" } else { "" }
        );
    }
    let _ = write!(out, "\n{}\n", r.verdict);
    (out, r.sql.clone())
}

/// A lifecycle: one row per period.
pub fn lifecycle(r: &LifecycleResponse) -> (String, Vec<RanSql>) {
    let mut rows = vec![
        ["period", "new", "returning", "resurrecting", "dormant", "active", "quick ratio"].map(str::to_owned).to_vec(),
    ];
    for p in &r.periods {
        rows.push(vec![
            format!("{}{}", p.period, if p.complete { "" } else { "*" }),
            p.new.to_string(),
            p.returning.to_string(),
            p.resurrecting.to_string(),
            format!("-{}", p.dormant),
            p.active.to_string(),
            opt(p.quick_ratio.map(|q| q.to_string()).as_deref()),
        ]);
    }
    let mut out = format!("lifecycle by {:?} ({}); * = period not over yet\n", r.period, r.timezone);
    out.push_str(&table(&rows));
    (out, r.sql.clone())
}

/// Engagement: every view, then one row per page.
pub fn engagement(r: &EngagementResponse) -> (String, Vec<RanSql>) {
    let mut rows = vec![
        ["page", "views", "25%", "50%", "75%", "100%", "avg scroll", "avg s", "median s"].map(str::to_owned).to_vec(),
    ];
    let line = |page: &str, f: &Engagement| {
        vec![
            page.to_owned(),
            f.views.to_string(),
            f.reached_25.to_string(),
            f.reached_50.to_string(),
            f.reached_75.to_string(),
            f.reached_100.to_string(),
            f.avg_scroll.to_string(),
            f.avg_engaged_seconds.to_string(),
            f.median_engaged_seconds.to_string(),
        ]
    };
    rows.push(line("(every page)", &r.totals));
    rows.extend(r.pages.iter().map(|p| line(&p.page, &p.figures)));
    let mut out = format!("scroll depth (share of views reaching it, %) and engaged time per view ({})\n", r.timezone);
    out.push_str(&table(&rows));
    (out, r.sql.clone())
}

/// Heatmap: pages by clicks, then the mapped page's elements, busiest grid cells and scroll map.
pub fn heatmap(r: &HeatmapResponse) -> (String, Vec<RanSql>) {
    let clicks = |c: &super::heatmap::Clicks| [c.clicks, c.rage_clicks, c.dead_clicks].map(|n| n.to_string()).to_vec();
    let mut pages = vec![["page", "clicks", "rage", "dead"].map(str::to_owned).to_vec()];
    pages.extend(r.pages.iter().map(|p| [vec![p.page.clone()], clicks(&p.clicks)].concat()));
    let mut out = format!("clicks by page ({}, {})\n", r.timezone, r.device.as_deref().unwrap_or("every device"));
    out.push_str(&table(&pages));
    let Some(page) = &r.page else { return (out, r.sql.clone()) };
    let mut elements =
        vec![["element", "clicks", "rage", "dead", "share %", "avg x", "avg y"].map(str::to_owned).to_vec()];
    elements.extend(r.elements.iter().map(|e| {
        [
            vec![e.selector.clone()],
            clicks(&e.clicks),
            vec![e.share.to_string(), e.avg_x.to_string(), e.avg_y.to_string()],
        ]
        .concat()
    }));
    out.push_str(&format!(
        "\n{page}: {} clicks, {} rage, {} dead\n",
        r.totals.clicks, r.totals.rage_clicks, r.totals.dead_clicks
    ));
    out.push_str(&table(&elements));
    let mut cells: Vec<_> = r.grid.cells.iter().collect();
    cells.sort_by(|a, b| b.clicks.cmp(&a.clicks).then((a.row, a.column).cmp(&(b.row, b.column))));
    let mut grid = vec![vec!["cell (column, row)".to_owned(), "pixels from the top".to_owned(), "clicks".to_owned()]];
    grid.extend(cells.iter().take(10).map(|c| {
        let h = r.grid.row_height;
        vec![format!("{}, {}", c.column, c.row), format!("{}-{}", c.row * h, (c.row + 1) * h), c.clicks.to_string()]
    }));
    out.push_str(&format!("\nbusiest cells of {} columns x {} px rows\n", r.grid.columns, r.grid.row_height));
    out.push_str(&table(&grid));
    let mut bands = vec![vec!["depth %".to_owned(), "views".to_owned(), "share %".to_owned()]];
    bands.extend(r.scroll.bands.iter().map(|b| vec![b.depth.to_string(), b.views.to_string(), b.share.to_string()]));
    out.push_str(&format!(
        "\nscroll map: {} views, {} measured, average depth {}%\n",
        r.scroll.views, r.scroll.measured, r.scroll.avg_depth
    ));
    out.push_str(&table(&bands));
    (out, r.sql.clone())
}

/// Catalog: the three lists one after another.
pub fn catalog(r: &CatalogResponse) -> (String, Vec<RanSql>) {
    let mut out = String::new();
    for (title, list, unit) in [
        ("event names", &r.events, "events"),
        ("property keys", &r.properties, "events"),
        ("experiments", &r.experiments, "people"),
    ] {
        let mut rows = vec![vec![title.to_owned(), unit.to_owned()]];
        rows.extend(list.iter().map(|s| vec![s.name.clone(), s.count.to_string()]));
        out.push_str(&table(&rows));
        out.push('\n');
    }
    (out, r.sql.clone())
}

/// Attribution: one table per model.
pub fn attribution(r: &AttributionResponse) -> (String, Vec<RanSql>) {
    let mut out = format!(
        "{} conversions, revenue {}, credited by {} (touches: sessions up to {} days before)\n",
        r.conversions, r.revenue, r.dimension, r.lookback_days
    );
    for (model, credits) in &r.models {
        let mut rows = vec![vec![r.dimension.clone(), "conversions".to_owned(), "revenue".to_owned()]];
        rows.extend(
            credits.iter().map(|c| vec![opt(c.value.as_deref()), c.conversions.to_string(), c.revenue.to_string()]),
        );
        let _ = write!(out, "\n{model}\n{}", table(&rows));
    }
    (out, r.sql.clone())
}

/// E-commerce: the totals, lifetime value, then products and categories.
pub fn ecommerce(r: &EcommerceResponse) -> (String, Vec<RanSql>) {
    let t = &r.totals;
    let mut out = String::new();
    let num = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
    let _ = writeln!(
        out,
        "revenue {} (gross {}, refunds {}), {} orders, average order value {}\n\
         purchase conversion {}% of sessions, {}% of people ({} buyers of {})\n\
         cart abandonment {}% of {} sessions, checkout abandonment {}% of {}\n\
         repeat purchase {}% of buyers, purchase frequency {}",
        t.revenue,
        t.gross_revenue,
        t.refunds,
        t.orders,
        num(t.average_order_value),
        t.purchase_conversion_rate_sessions,
        t.purchase_conversion_rate_people,
        t.buyers,
        t.people,
        t.cart_abandonment_rate,
        t.cart_sessions,
        t.checkout_abandonment_rate,
        t.checkout_sessions,
        t.repeat_purchase_rate,
        num(t.purchase_frequency)
    );
    let ltv = |title: &str, rows: &[Ltv]| {
        let mut cells = vec![[title, "people", "buyers", "revenue", "per person"].map(str::to_owned).to_vec()];
        cells.extend(rows.iter().map(|l| {
            vec![
                opt(l.key.as_deref()),
                l.people.to_string(),
                l.buyers.to_string(),
                l.revenue.to_string(),
                l.revenue_per_person.to_string(),
            ]
        }));
        table(&cells)
    };
    let _ = write!(
        out,
        "\nlifetime value of people acquired in the range\n{}\n{}",
        ltv("cohort", &r.ltv_by_cohort),
        ltv("first channel", &r.ltv_by_channel)
    );
    let items = |title: &str, rows: &[ItemRow]| {
        let mut cells = vec![
            [
                title,
                "views",
                "viewers",
                "add to cart",
                "units",
                "buyers",
                "revenue",
                "view→purchase",
                "viewed, not bought",
            ]
            .map(str::to_owned)
            .to_vec(),
        ];
        cells.extend(rows.iter().map(|i| {
            vec![
                opt(i.key.as_deref()),
                i.views.to_string(),
                i.viewers.to_string(),
                i.add_to_carts.to_string(),
                i.units.to_string(),
                i.buyers.to_string(),
                i.revenue.to_string(),
                i.view_to_purchase_rate.map_or_else(String::new, |v| format!("{v}%")),
                i.viewed_not_bought.to_string(),
            ]
        }));
        table(&cells)
    };
    let _ = write!(out, "\n{}\n{}", items("product", &r.products), items("category", &r.categories));
    (out, r.sql.clone())
}

/// Paths as an indented tree with session counts.
pub fn paths(r: &PathsResponse) -> (String, Vec<RanSql>) {
    fn walk(out: &mut String, n: &PathNode, depth: usize, parent: u64) {
        let share =
            if parent > 0 { format!(" ({:.1}%)", n.sessions as f64 * 100.0 / parent as f64) } else { String::new() };
        let _ = writeln!(out, "{}{}  {}{share}", "  ".repeat(depth), n.label, n.sessions);
        for c in &n.children {
            walk(out, c, depth + 1, n.sessions);
        }
    }
    let mut out = format!("{:?} steps from {:?}, sessions\n", r.direction, r.root.label);
    walk(&mut out, &r.root, 0, 0);
    (out, r.sql.clone())
}

/// Segment: the size, then the members as CSV.
pub fn segment(r: &SegmentResponse) -> (String, Vec<RanSql>) {
    (format!("{} members\n{}", r.size, super::segments::members_csv(&r.members)), r.sql.clone())
}
