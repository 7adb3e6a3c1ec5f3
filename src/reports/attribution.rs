//! Attribution: which channels (sources, campaigns) get the credit for conversions.
//!
//! A **conversion** is a goal event (default `purchase`) in the date range (after the global
//! filters); its revenue is the event's. A **touch** is a session of the same person that
//! started within `lookback` (default 30 days) before the conversion, up to the conversion
//! itself; its value is the dimension (`channel`, `source`, `campaign`, …) on the session's
//! first event. Each model splits one conversion (and its revenue) over those touches:
//! - `first_touch`: all to the earliest touch;
//! - `last_touch`: all to the latest touch, Direct ignored unless every touch was Direct (GA4's
//!   "last click"); with `include_direct`, to the latest touch whatever its channel;
//! - `last_non_direct`: all to the latest touch whose channel is not Direct (Direct only if
//!   every touch was; Universal Analytics' default);
//! - `linear`: equally to every touch;
//! - `position_based`: 40% to the first, 40% to the last, 20% shared by the ones between (one
//!   touch: all of it; two: half each).
//!
//! A conversion without a touch in the lookback is credited to `null`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Checked, DateRange, Dimension, Env, EventMatch, Filter, RanSql, Result, Rows, Sql, invalid, round2, run};

fn default_goal() -> EventMatch {
    EventMatch { event: "purchase".into(), filters: Vec::new() }
}
fn default_dimension() -> String {
    "channel".into()
}
fn default_lookback() -> i64 {
    30
}

/// `POST /api/reports/attribution`.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttributionRequest {
    pub site: String,
    pub date_range: DateRange,
    #[serde(default = "super::utc")]
    pub timezone: String,
    #[serde(default)]
    pub filters: Vec<Filter>,
    /// Only people in this segment: a definition or a template id (see segments).
    #[serde(default)]
    pub segment: Option<serde_json::Value>,
    /// The conversion (default `purchase`).
    #[serde(default = "default_goal")]
    pub goal: EventMatch,
    /// What gets the credit: `channel` (default), `source`, `campaign`, `medium`, … or `prop:<name>`.
    #[serde(default = "default_dimension")]
    pub dimension: String,
    /// Days before a conversion in which sessions count as touches (1 to 365, default 30).
    #[serde(default = "default_lookback")]
    pub lookback_days: i64,
    /// Let `last_touch` credit a Direct touch that came last (default: GA4's last click, which
    /// ignores Direct unless every touch was Direct).
    #[serde(default)]
    pub include_direct: bool,
}

/// Credit of one value under one model.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Credit {
    pub value: Option<String>,
    /// Conversions credited (fractions add up to the conversions).
    pub conversions: f64,
    pub revenue: f64,
}

/// The report.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct AttributionResponse {
    pub dimension: String,
    pub lookback_days: i64,
    pub include_direct: bool,
    pub conversions: u64,
    pub revenue: f64,
    /// Model name → credits, most conversions first.
    pub models: BTreeMap<String, Vec<Credit>>,
    pub sql: Vec<RanSql>,
}

/// The models, in the order the response lists them.
pub const MODELS: [&str; 5] = ["first_touch", "last_touch", "last_non_direct", "linear", "position_based"];

/// One touch: its value and whether its channel is Direct.
#[derive(Clone, Debug, PartialEq)]
pub struct Touch {
    pub value: Option<String>,
    pub direct: bool,
}

/// The share of one conversion each touch (in time order) gets under `model`.
pub fn shares(model: &str, touches: &[Touch]) -> Vec<f64> {
    let n = touches.len();
    let mut out = vec![0.0; n];
    if n == 0 {
        return out;
    }
    match model {
        "first_touch" => out[0] = 1.0,
        "last_touch" => out[n - 1] = 1.0,
        "last_non_direct" => {
            let i = touches.iter().rposition(|t| !t.direct).unwrap_or(n - 1);
            out[i] = 1.0;
        }
        "linear" => out.iter_mut().for_each(|s| *s = 1.0 / n as f64),
        _ => match n {
            1 => out[0] = 1.0,
            2 => out.iter_mut().for_each(|s| *s = 0.5),
            _ => {
                out.iter_mut().for_each(|s| *s = 0.2 / (n - 2) as f64);
                out[0] = 0.4;
                out[n - 1] = 0.4;
            }
        },
    }
    out
}

impl AttributionRequest {
    fn check(&self) -> Result<(Checked, Dimension)> {
        let (c, dim) =
            super::check_common(&self.site, self.date_range, &self.timezone, &self.filters, Some(&self.dimension))
                .map_err(|e| match e {
                    super::Error::Invalid { field, message } if field == "breakdown" => invalid("dimension", message),
                    e => e,
                })?;
        let dim = dim.ok_or_else(|| invalid("dimension", "give a dimension"))?;
        if dim.session_level() {
            return Err(invalid("dimension", "touches are sessions already; use channel, source, campaign, …"));
        }
        if !(1..=365).contains(&self.lookback_days) {
            return Err(invalid("lookback_days", "from 1 to 365 days"));
        }
        Ok((c, dim))
    }

    fn sql(&self, c: &Checked, dim: &Dimension) -> Result<(String, Sql)> {
        let mut q = Sql::default();
        let (start, end) = c.bounds(self.date_range);
        let lookback = chrono::Duration::days(self.lookback_days);
        let conv_range = c.range_sql(&mut q, start, end);
        let goal = self.goal.condition(&mut q, "goal")?;
        let filters = c.filters_sql(&mut q);
        let touch_range = c.range_sql(&mut q, start - lookback, end);
        let value = dim.sql(&mut q, "");
        let secs = lookback.num_seconds();
        let sql = format!(
            "WITH conv AS (
  SELECT person_id, event_id, ts, revenue FROM person_events
  WHERE {conv_range} AND {goal}{filters}
),
touches AS (
  SELECT person_id, session_id, min(ts) AS ts, first_value({value} ORDER BY ts) AS value,
    first_value(channel ORDER BY ts) = 'Direct' AS direct
  FROM person_events
  WHERE {touch_range} AND person_id IN (SELECT person_id FROM conv)
  GROUP BY person_id, session_id
)
SELECT c.event_id, c.ts AS conv_ts, CAST(c.revenue AS DOUBLE) AS revenue, t.ts AS touch_ts, t.value, t.direct
FROM conv c LEFT JOIN touches t ON t.person_id = c.person_id AND t.ts <= c.ts
  AND t.ts >= c.ts - INTERVAL '{secs} seconds'
ORDER BY c.event_id, t.ts, t.session_id"
        );
        Ok((sql, q))
    }
}

/// Run an attribution report.
pub async fn attribution(env: &Env, req: &AttributionRequest) -> Result<AttributionResponse> {
    let (mut c, dim) = req.check()?;
    c.prepare(req.segment.as_ref(), env)?;
    let (sql, q) = req.sql(&c, &dim)?;
    let ctx = env.session(&c.site).await?;
    let batches = run(&ctx, &sql, &q, &env.limits).await?;
    // Conversions in order, each with its revenue and touches.
    let mut conversions: Vec<(String, f64, Vec<Touch>)> = Vec::new();
    Rows::new(&batches).each(|r| {
        let id = r.text("event_id").unwrap_or_default();
        if conversions.last().is_none_or(|(last, _, _)| *last != id) {
            conversions.push((id, r.f64("revenue").unwrap_or(0.0), Vec::new()));
        }
        if r.micros("touch_ts").is_some()
            && let Some(conv) = conversions.last_mut()
        {
            conv.2.push(Touch { value: r.text("value"), direct: r.text("direct").is_some_and(|d| d == "true") });
        }
    });
    let mut models = BTreeMap::new();
    for model in MODELS {
        let mut credit: BTreeMap<Option<String>, (f64, f64)> = BTreeMap::new();
        for (_, revenue, touches) in &conversions {
            if touches.is_empty() {
                let e = credit.entry(None).or_default();
                e.0 += 1.0;
                e.1 += revenue;
                continue;
            }
            let rule = match model {
                "last_touch" if !req.include_direct => "last_non_direct",
                m => m,
            };
            for (t, share) in touches.iter().zip(shares(rule, touches)) {
                let e = credit.entry(t.value.clone()).or_default();
                e.0 += share;
                e.1 += share * revenue;
            }
        }
        let mut rows: Vec<Credit> = credit
            .into_iter()
            .filter(|(_, (n, _))| *n > 0.0)
            .map(|(value, (n, r))| Credit { value, conversions: round2(n), revenue: round2(r) })
            .collect();
        rows.sort_by(|a, b| b.conversions.total_cmp(&a.conversions).then_with(|| a.value.cmp(&b.value)));
        models.insert(model.to_owned(), rows);
    }
    Ok(AttributionResponse {
        dimension: req.dimension.clone(),
        lookback_days: req.lookback_days,
        include_direct: req.include_direct,
        conversions: conversions.len() as u64,
        revenue: round2(conversions.iter().map(|c| c.1).sum()),
        models,
        sql: vec![RanSql { sql, params: q.params }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &str) -> Touch {
        Touch { value: Some(v.into()), direct: v == "Direct" }
    }

    #[test]
    fn every_model_splits_one_conversion() {
        let path = [t("Email"), t("Organic Search"), t("Paid Social"), t("Direct")];
        assert_eq!(shares("first_touch", &path), vec![1.0, 0.0, 0.0, 0.0]);
        assert_eq!(shares("last_touch", &path), vec![0.0, 0.0, 0.0, 1.0]);
        assert_eq!(shares("last_non_direct", &path), vec![0.0, 0.0, 1.0, 0.0]);
        assert_eq!(shares("linear", &path), vec![0.25; 4]);
        assert_eq!(shares("position_based", &path), vec![0.4, 0.1, 0.1, 0.4]);
        assert_eq!(shares("position_based", &path[..2]), vec![0.5, 0.5]);
        assert_eq!(shares("position_based", &path[..1]), vec![1.0]);
        // Only Direct touches: Direct gets it.
        assert_eq!(shares("last_non_direct", &[t("Direct"), t("Direct")]), vec![0.0, 1.0]);
        for m in MODELS {
            let s: f64 = shares(m, &path).iter().sum();
            assert!((s - 1.0).abs() < 1e-12, "{m}: {s}");
        }
    }
}
