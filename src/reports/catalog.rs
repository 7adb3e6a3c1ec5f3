//! Catalog: what a site's events hold in a date range, for pickers: the event names (by count),
//! the property keys seen (by count), and the experiments with `$exposure` events (by people).
//! The dashboard fills its event, property and experiment choices from it, so a view-only share
//! key (which cannot run SQL) gets the same pickers as a read key.
//!
//! The global filters and segment do not apply: a picker lists what exists, not what a filter
//! leaves. `limit` (default 300, up to 1,000) cuts each list.

use serde::{Deserialize, Serialize};

use super::{DateRange, Env, RanSql, Result, Rows, Sql, invalid, run};

/// `POST /api/reports/catalog`.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CatalogRequest {
    pub site: String,
    pub date_range: DateRange,
    #[serde(default = "super::utc")]
    pub timezone: String,
    /// Most names listed in each list (default 300).
    #[serde(default = "default_limit")]
    pub limit: usize,
}

fn default_limit() -> usize {
    300
}

/// A name and how often it was seen.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Seen {
    pub name: String,
    /// Events (for event names and property keys) or people exposed (for experiments).
    pub count: u64,
}

/// The answer.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct CatalogResponse {
    pub events: Vec<Seen>,
    pub properties: Vec<Seen>,
    pub experiments: Vec<Seen>,
    pub sql: Vec<RanSql>,
}

/// Run a catalog report: three small aggregations over the range's events.
pub async fn catalog(env: &Env, req: &CatalogRequest) -> Result<CatalogResponse> {
    let (c, _) = super::check_common(&req.site, req.date_range, &req.timezone, &[], None)?;
    if !(1..=1_000).contains(&req.limit) {
        return Err(invalid("limit", "between 1 and 1000"));
    }
    let (start, end) = c.bounds(req.date_range);
    let limit = req.limit;
    let mut q = Sql::default();
    let range = c.range_sql(&mut q, start, end);
    // One statement, three lists: `kind` tells them apart.
    let sql = format!(
        "WITH r AS (SELECT name, props, visitor_id FROM events WHERE {range})
(SELECT 'event' AS kind, name, count(*) AS n FROM r GROUP BY name ORDER BY n DESC, name LIMIT {limit})
UNION ALL
(SELECT 'property' AS kind, k AS name, count(*) AS n FROM (SELECT unnest(map_keys(props)) AS k FROM r)
  GROUP BY k ORDER BY n DESC, k LIMIT {limit})
UNION ALL
(SELECT 'experiment' AS kind, props['experiment'] AS name, count(DISTINCT visitor_id) AS n FROM r
  WHERE name = '$exposure' AND props['experiment'] IS NOT NULL
  GROUP BY props['experiment'] ORDER BY n DESC, name LIMIT {limit})"
    );
    let ctx = env.session(&c.site).await?;
    let batches = run(&ctx, &sql, &q, &env.limits).await?;
    let (mut events, mut properties, mut experiments) = (Vec::new(), Vec::new(), Vec::new());
    Rows::new(&batches).each(|r| {
        let seen = Seen { name: r.text("name").unwrap_or_default(), count: r.u64("n") };
        match r.text("kind").as_deref() {
            Some("event") => events.push(seen),
            Some("property") => properties.push(seen),
            _ => experiments.push(seen),
        }
    });
    // UNION ALL keeps no order between its parts' rows: sort each list again.
    for list in [&mut events, &mut properties, &mut experiments] {
        list.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    }
    Ok(CatalogResponse { events, properties, experiments, sql: vec![RanSql { sql, params: q.params }] })
}
