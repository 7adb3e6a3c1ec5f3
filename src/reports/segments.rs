//! Segments: people described by what they are and what they did, for retargeting audiences
//! ("viewed a product but did not buy", "VIP: 3 orders or more").
//!
//! A definition is JSON, conditions combined with `all` / `any` (nested freely):
//! - `property`: one of the person's events (in the last `within_days`, or ever) has the
//!   dimension (`country`, `region`, `device`, `browser`, `channel`, `prop:<name>`, …) as given;
//! - `first_touch`: the dimension on the person's first event ever (`source`, `campaign`,
//!   `channel`, …);
//! - `did`: the event (with filters) at least `at_least` (default 1) and at most `at_most`
//!   times in the last `within_days` (or ever); with `then_not`, the person's last such event was
//!   not followed by the other event within its window ("viewed, then did not buy within a day");
//! - `did_not`: no such event in the last `within_days` (or ever);
//! - `orders` / `revenue`: `purchase` count / purchase − refund revenue, at least / at most, in
//!   the last `within_days` (or ever);
//! - `last_purchase`: bought before, and the last purchase is more than `more_than_days_ago`
//!   days old ("lapsed"), or within `within_days`;
//! - `first_seen`: the first event ever is within the last `within_days` (new visitors).
//!
//! "Now" is the time the segment is evaluated. Members are people (`person_events.person_id`).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

mod sql;

pub use self::sql::members_sql;
pub(crate) use self::sql::members_subquery;
use super::funnel::Window;
use super::{Env, EventMatch, FilterOp, RanSql, Result, Rows, invalid, round2, run};
use crate::model::SiteId;
use crate::saved_segments::{Saved, SavedSegments};
use crate::store::paths::DataDir;

/// The most a CSV export holds.
pub const MAX_MEMBERS: usize = 1_000_000;
/// Largest definition accepted, as compact JSON.
pub const MAX_DEFINITION_BYTES: usize = 16 * 1024;
/// Deepest nesting of `all` / `any`.
pub const MAX_NESTING: usize = 5;
/// Most conditions in one definition (every `all`, `any` and leaf counts).
pub const MAX_CONDITIONS: usize = 50;

/// "Then not" of a `did` condition.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ThenNot {
    pub event: EventMatch,
    pub within: Window,
}

/// A segment definition.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    All {
        conditions: Vec<Condition>,
    },
    Any {
        conditions: Vec<Condition>,
    },
    Property {
        dimension: String,
        #[serde(default)]
        op: FilterOp,
        values: Vec<String>,
        within_days: Option<i64>,
    },
    FirstTouch {
        dimension: String,
        #[serde(default)]
        op: FilterOp,
        values: Vec<String>,
    },
    Did {
        event: EventMatch,
        at_least: Option<u64>,
        at_most: Option<u64>,
        within_days: Option<i64>,
        /// Instead of `within_days`: these days (UTC), both included.
        date_range: Option<super::DateRange>,
        then_not: Option<ThenNot>,
    },
    DidNot {
        event: EventMatch,
        within_days: Option<i64>,
        /// Instead of `within_days`: these days (UTC), both included.
        date_range: Option<super::DateRange>,
    },
    Orders {
        at_least: Option<u64>,
        at_most: Option<u64>,
        within_days: Option<i64>,
    },
    Revenue {
        at_least: Option<f64>,
        at_most: Option<f64>,
        within_days: Option<i64>,
    },
    LastPurchase {
        more_than_days_ago: Option<i64>,
        within_days: Option<i64>,
    },
    FirstSeen {
        within_days: i64,
    },
    /// A column of the person's predictions (the site's last fit, see `predictions`): at least /
    /// at most a value, or among the top `top_percent` percent of the people scored.
    Predicted {
        column: PredictedColumn,
        at_least: Option<f64>,
        at_most: Option<f64>,
        top_percent: Option<f64>,
    },
}

/// A predicted column usable in a segment.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PredictedColumn {
    /// P(purchase in the propensity window, 7 days by default).
    PurchaseProbability,
    /// BG/NBD's P(alive) (past buyers).
    PAlive,
    /// Expected purchases × expected order value over the horizon (365 days by default).
    PredictedValue,
    /// Expected purchases over the horizon.
    ExpectedPurchases,
}

impl PredictedColumn {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::PurchaseProbability => "purchase_probability",
            Self::PAlive => "p_alive",
            Self::PredictedValue => "predicted_value",
            Self::ExpectedPurchases => "expected_purchases",
        }
    }
}

/// The built-in segments: (id, name, definition).
pub fn templates() -> Vec<(&'static str, &'static str, Condition)> {
    let ev = |e: &str| EventMatch { event: e.into(), filters: Vec::new() };
    let did = |e: &str, days: i64| Condition::Did {
        event: ev(e),
        at_least: None,
        at_most: None,
        within_days: Some(days),
        date_range: None,
        then_not: None,
    };
    let did_not = |e: &str, days: i64| Condition::DidNot { event: ev(e), within_days: Some(days), date_range: None };
    vec![
        (
            "viewed_not_bought",
            "Viewed a product but did not buy (14 days)",
            Condition::All { conditions: vec![did("product_view", 14), did_not("purchase", 14)] },
        ),
        (
            "abandoned_cart",
            "Abandoned cart (7 days)",
            Condition::All { conditions: vec![did("add_to_cart", 7), did_not("purchase", 7)] },
        ),
        (
            "abandoned_checkout",
            "Abandoned checkout (7 days)",
            Condition::All { conditions: vec![did("checkout_start", 7), did_not("purchase", 7)] },
        ),
        ("repeat_buyers", "Repeat buyers", Condition::Orders { at_least: Some(2), at_most: None, within_days: None }),
        ("vip", "VIP: 3 orders or more", Condition::Orders { at_least: Some(3), at_most: None, within_days: None }),
        ("new_visitors", "New visitors (first seen in the last 7 days)", Condition::FirstSeen { within_days: 7 }),
        (
            "lapsed_customers",
            "Lapsed customers (no purchase in 90 days)",
            Condition::LastPurchase { more_than_days_ago: Some(90), within_days: None },
        ),
        (
            "likely_to_buy",
            "Likely to buy in the next 7 days (top 10% by purchase probability)",
            predicted(PredictedColumn::PurchaseProbability, None, Some(10.0)),
        ),
        (
            "at_risk_of_churn",
            // Only a repeat buyer's P(alive) is below 1 (BG/NBD), so no order count is needed.
            "At risk of churn (repeat buyers with P(alive) below 0.5)",
            predicted(PredictedColumn::PAlive, Some(0.5), None),
        ),
        (
            "high_predicted_value",
            "High predicted value (top 10% by predicted 1-year value)",
            predicted(PredictedColumn::PredictedValue, None, Some(10.0)),
        ),
    ]
}

fn predicted(column: PredictedColumn, below: Option<f64>, top_percent: Option<f64>) -> Condition {
    // "Below" a threshold: P(alive) < 0.5 is `at_most` just under it (the values are continuous).
    Condition::Predicted { column, at_least: None, at_most: below.map(|b| b - 1e-9), top_percent }
}

/// One member, as exported.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Member {
    pub person_id: String,
    pub user_id: Option<String>,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub orders: u64,
    pub revenue: f64,
    /// The last three products viewed, most recent first.
    pub last_viewed_products: Vec<String>,
    /// From the site's last prediction fit (empty when the person was not scored).
    pub purchase_probability: Option<f64>,
    pub p_alive: Option<f64>,
    pub predicted_value: Option<f64>,
}

/// `POST /api/segments/preview` (and `footfall segment`): a definition and how many members.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentRequest {
    pub site: String,
    /// A definition, or the id of a built-in template (`viewed_not_bought`, `abandoned_cart`, …).
    pub definition: serde_json::Value,
    /// Members returned (default 100; the CSV export takes all).
    #[serde(default = "default_limit")]
    pub limit: usize,
}

fn default_limit() -> usize {
    100
}

/// The answer.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SegmentResponse {
    pub size: u64,
    pub members: Vec<Member>,
    pub sql: Vec<RanSql>,
}

/// Resolve a template id, a saved segment's id (of `site` in `data`), or parse a definition.
pub fn resolve(v: &serde_json::Value, data: &DataDir, site: &SiteId) -> Result<Condition> {
    if let Some(id) = v.as_str()
        && !templates().iter().any(|t| t.0 == id)
    {
        return match saved(data, site)?.into_iter().find(|s| s.id == id) {
            Some(s) => definition(&s.definition),
            None => {
                let ids: Vec<&str> = templates().iter().map(|t| t.0).collect();
                Err(invalid(
                    "definition",
                    format!("no template or saved segment {id:?}; templates: {}", ids.join(", ")),
                ))
            }
        };
    }
    definition(v)
}

/// Resolve a template id or parse a definition.
pub fn definition(v: &serde_json::Value) -> Result<Condition> {
    if let Some(id) = v.as_str() {
        return templates().into_iter().find(|t| t.0 == id).map(|t| t.2).ok_or_else(|| {
            let ids: Vec<&str> = templates().iter().map(|t| t.0).collect();
            invalid("definition", format!("no template {id:?}; use one of {}", ids.join(", ")))
        });
    }
    let de = serde_json::to_string(v).map_err(|e| invalid("definition", e.to_string()))?;
    if de.len() > MAX_DEFINITION_BYTES {
        return Err(invalid(
            "definition",
            format!("the definition is {} bytes; the limit is {MAX_DEFINITION_BYTES}", de.len()),
        ));
    }
    // Nesting is checked on the JSON first: serde would recurse as deep as the text goes.
    if json_depth(v) > 2 * MAX_NESTING + 8 {
        return Err(invalid("definition", format!("`all` / `any` nest at most {MAX_NESTING} deep")));
    }
    let de = &mut serde_json::Deserializer::from_str(&de);
    let def: Condition = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        invalid(if path == "." { "definition".to_owned() } else { format!("definition.{path}") }, e.inner().to_string())
    })?;
    check_shape(&def)?;
    Ok(def)
}

/// Nesting depth of a JSON value, counted without recursion.
fn json_depth(v: &serde_json::Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(v, 1)];
    while let Some((v, d)) = stack.pop() {
        deepest = deepest.max(d);
        match v {
            serde_json::Value::Array(a) => stack.extend(a.iter().map(|x| (x, d + 1))),
            serde_json::Value::Object(o) => stack.extend(o.values().map(|x| (x, d + 1))),
            _ => {}
        }
    }
    deepest
}

/// Refuse definitions past [`MAX_NESTING`], [`MAX_CONDITIONS`] or the filter limits.
fn check_shape(def: &Condition) -> Result<()> {
    let mut count = 0;
    let mut stack = vec![(def, 1usize, "definition".to_owned())];
    while let Some((c, depth, field)) = stack.pop() {
        count += 1;
        if count > MAX_CONDITIONS {
            return Err(invalid("definition", format!("at most {MAX_CONDITIONS} conditions")));
        }
        match c {
            Condition::All { conditions } | Condition::Any { conditions } => {
                if depth > MAX_NESTING {
                    return Err(invalid(field, format!("`all` / `any` nest at most {MAX_NESTING} deep")));
                }
                for (i, c) in conditions.iter().enumerate() {
                    stack.push((c, depth + 1, format!("{field}.conditions[{i}]")));
                }
            }
            Condition::Property { values, .. } | Condition::FirstTouch { values, .. } => {
                super::check_value_count(values, &format!("{field}.values"))?;
            }
            Condition::Did { event, then_not, .. } => {
                super::check_filter_sizes(&event.filters, &format!("{field}.event.filters"))?;
                if let Some(t) = then_not {
                    super::check_filter_sizes(&t.event.filters, &format!("{field}.then_not.event.filters"))?;
                }
            }
            Condition::DidNot { event, .. } => {
                super::check_filter_sizes(&event.filters, &format!("{field}.event.filters"))?;
            }
            Condition::Orders { .. }
            | Condition::Revenue { .. }
            | Condition::LastPurchase { .. }
            | Condition::FirstSeen { .. }
            | Condition::Predicted { .. } => {}
        }
    }
    Ok(())
}

/// Evaluate a segment: its size and its first `limit` members (by revenue, then id).
pub async fn segment(env: &Env, req: &SegmentRequest) -> Result<SegmentResponse> {
    let site = SiteId::parse(&req.site).map_err(|e| invalid("site", e.to_string()))?;
    let def = resolve(&req.definition, &env.data, &site)?;
    if req.limit > MAX_MEMBERS {
        return Err(invalid("limit", format!("at most {MAX_MEMBERS}")));
    }
    let (members, q) = members_sql(&site, &def, env.now_micros)?;
    // The members on the join's left, its hashed side: with the events on the left (or as
    // `IN (members)`, which DataFusion plans the same way) every event of the site was hashed,
    // and the VIP segment ran out of the CLI's 1 GiB pool at 10M events.
    let sql = format!(
        "WITH m AS ({members}),
d AS (
  SELECT e.person_id, max(e.user_id) AS user_id, min(e.ts) AS first_seen, max(e.ts) AS last_seen,
    count(*) FILTER (WHERE e.name = 'purchase') AS orders,
    coalesce(CAST(sum(CASE WHEN e.name = 'purchase' THEN e.revenue WHEN e.name = 'refund' THEN -e.revenue END) AS DOUBLE), 0) AS revenue,
    array_agg(e.items[1]['id'] ORDER BY e.ts DESC) FILTER (WHERE e.name = 'product_view' AND e.items[1]['id'] IS NOT NULL) AS viewed
  FROM m JOIN person_events e ON e.person_id = m.person_id
  WHERE e.site = $1
  GROUP BY e.person_id
)
SELECT d.person_id, user_id, first_seen, last_seen, d.orders, d.revenue, viewed, count(*) OVER () AS size,
  pr.purchase_probability, pr.p_alive, pr.predicted_value
FROM d LEFT JOIN (SELECT person_id, purchase_probability, p_alive, predicted_value FROM predictions WHERE site = $1) pr
  ON pr.person_id = d.person_id
ORDER BY d.revenue DESC, d.person_id LIMIT {limit}",
        limit = req.limit.max(1)
    );
    let ctx = env.session(&site).await?;
    let batches = run(&ctx, &sql, &q, &env.limits).await?;
    let mut size = 0;
    let mut out = Vec::new();
    Rows::new(&batches).each(|r| {
        size = r.u64("size");
        let viewed = r.text("viewed").unwrap_or_default();
        let mut last: Vec<String> = Vec::new();
        for v in viewed.trim_matches(|c| c == '[' || c == ']').split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if !last.iter().any(|x| x == v) && last.len() < 3 {
                last.push(v.to_owned());
            }
        }
        out.push(Member {
            person_id: r.text("person_id").unwrap_or_default(),
            user_id: r.text("user_id"),
            first_seen: r.text("first_seen"),
            last_seen: r.text("last_seen"),
            orders: r.u64("orders"),
            revenue: round2(r.f64("revenue").unwrap_or(0.0)),
            last_viewed_products: last,
            purchase_probability: r.f64("purchase_probability").map(super::round4),
            p_alive: r.f64("p_alive").map(super::round4),
            predicted_value: r.f64("predicted_value").map(round2),
        });
    });
    // `limit: 0` asks for the size alone (the query reads one row to learn it).
    out.truncate(req.limit);
    Ok(SegmentResponse { size, members: out, sql: vec![RanSql { sql, params: q.params }] })
}

/// The saved segments of `site`, by name (see [`crate::saved_segments`]).
pub fn saved(data: &DataDir, site: &SiteId) -> Result<Vec<Saved>> {
    Ok(crate::saved_segments::saved(data, crate::saved_segments::Kind::Segments, site)?)
}

/// Check a definition and save it for `site` (a new one without `id`). `None` when `id` names no
/// saved segment.
pub fn save(
    store: &SavedSegments,
    site: &SiteId,
    id: Option<&str>,
    name: &str,
    def: &serde_json::Value,
) -> Result<Option<Saved>> {
    if def.is_string() {
        return Err(invalid("definition", "save a definition, not a template id"));
    }
    members_sql(site, &definition(def)?, 0)?;
    let reserved: Vec<&str> = templates().iter().map(|t| t.0).collect();
    Ok(store.save(site, id, name, def, &reserved)?)
}

/// The templates and `site`'s saved segments, as `GET /api/sites/{site}/segments` and
/// `footfall segment list` show them.
pub fn catalogue(data: &DataDir, site: &SiteId) -> Result<serde_json::Value> {
    let templates: Vec<serde_json::Value> = templates()
        .into_iter()
        .map(|(id, name, def)| serde_json::json!({"id": id, "name": name, "definition": def}))
        .collect();
    Ok(serde_json::json!({"templates": templates, "saved": saved(data, site)?}))
}

fn csv_field(s: &str) -> String {
    let s = crate::query::output::csv_safe(s);
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.into_owned() }
}

/// Members as CSV: person_id, user_id, first_seen, last_seen, orders, revenue,
/// last_viewed_products (space-separated), purchase_probability, p_alive, predicted_value (empty
/// when the person has no prediction).
pub fn members_csv(members: &[Member]) -> String {
    let mut out = String::from(
        "person_id,user_id,first_seen,last_seen,orders,revenue,last_viewed_products,purchase_probability,p_alive,predicted_value\n",
    );
    let num = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    for m in members {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{}",
            csv_field(&m.person_id),
            csv_field(m.user_id.as_deref().unwrap_or("")),
            csv_field(m.first_seen.as_deref().unwrap_or("")),
            csv_field(m.last_seen.as_deref().unwrap_or("")),
            m.orders,
            m.revenue,
            csv_field(&m.last_viewed_products.join(" ")),
            num(m.purchase_probability),
            num(m.p_alive),
            num(m.predicted_value)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_neutralises_formulas() {
        let m = Member {
            person_id: "=HYPERLINK(\"http://evil\",\"x\")".into(),
            user_id: Some("@cmd".into()),
            first_seen: None,
            last_seen: None,
            orders: 0,
            revenue: -3.0,
            last_viewed_products: vec!["-mug".into()],
            purchase_probability: None,
            p_alive: None,
            predicted_value: None,
        };
        assert_eq!(
            members_csv(&[m]),
            "person_id,user_id,first_seen,last_seen,orders,revenue,last_viewed_products,purchase_probability,p_alive,predicted_value\n\"'=HYPERLINK(\"\"http://evil\"\",\"\"x\"\")\",'@cmd,,,0,-3,'-mug,,,\n"
        );
    }

    #[test]
    fn csv_quotes_what_needs_it() {
        let m = Member {
            person_id: "u:a,b".into(),
            user_id: Some("say \"hi\"".into()),
            first_seen: None,
            last_seen: None,
            orders: 2,
            revenue: 9.5,
            last_viewed_products: vec!["mug-1".into(), "pot-2".into()],
            purchase_probability: Some(0.25),
            p_alive: Some(0.5),
            predicted_value: Some(120.5),
        };
        assert_eq!(
            members_csv(&[m]),
            "person_id,user_id,first_seen,last_seen,orders,revenue,last_viewed_products,purchase_probability,p_alive,predicted_value\n\"u:a,b\",\"say \"\"hi\"\"\",,,2,9.5,mug-1 pot-2,0.25,0.5,120.5\n"
        );
    }
}
