//! The `predictions` and `affinities` reports: the last fit of a site's models
//! ([`crate::predict`]), with its people ranked through the SQL table `predictions`.
//!
//! A site never fitted is fitted when first asked (and saved); after that the server refits in
//! the background and the reports read the last fit, whose `fitted_at` and `as_of` they show.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::{Env, RanSql, Result, Rows, Sql, invalid, run};
use crate::model::SiteId;
use crate::predict::{self, Model};

fn default_limit() -> usize {
    20
}

fn default_threshold() -> f64 {
    0.5
}

/// `POST /api/reports/predictions`.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PredictionsRequest {
    pub site: String,
    /// People in each list (0 to 1,000, default 20; 0: the figures only).
    #[serde(default = "default_limit")]
    pub limit: usize,
    /// "At risk" is a past buyer whose P(alive) is below this (default 0.5).
    #[serde(default = "default_threshold")]
    pub churn_threshold: f64,
}

/// One person in a list.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Ranked {
    pub person_id: String,
    pub orders: u64,
    pub revenue: f64,
    pub p_alive: Option<f64>,
    pub expected_purchases: Option<f64>,
    pub predicted_value: Option<f64>,
    pub purchase_probability: Option<f64>,
    pub top_features: Option<String>,
    pub top_category: Option<String>,
}

/// Counts over every scored person.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Counts {
    /// People with a prediction.
    pub people: u64,
    pub buyers: u64,
    /// Past buyers with P(alive) below the threshold.
    pub at_risk: u64,
    /// Sum of expected purchases and predicted value over the horizon.
    pub expected_purchases: f64,
    pub predicted_value: f64,
    /// Sum of purchase probabilities: the purchases (people buying) the model expects in the window.
    pub expected_buyers_in_window: f64,
}

/// The report.
#[derive(Clone, Debug, Serialize)]
pub struct PredictionsResponse {
    pub model: Model,
    /// Whether this request made the fit (the site had none).
    pub fitted_now: bool,
    pub counts: Counts,
    pub likely_buyers: Vec<Ranked>,
    pub at_risk: Vec<Ranked>,
    pub top_value: Vec<Ranked>,
    pub sql: Vec<RanSql>,
}

/// The last fit of `site`, or a new one (saved) if there is none.
pub(crate) async fn model(env: &Env, site: &SiteId) -> Result<(Model, bool)> {
    if !env.scope.allows(site) {
        return Err(super::Error::Forbidden(site.as_str().to_owned()));
    }
    predict::store::last_or_fit(env, site).await
}

const COLUMNS: &str = "person_id, orders, revenue, p_alive, expected_purchases, predicted_value, purchase_probability, top_features, top_category";

fn ranked(batches: &[arrow::array::RecordBatch]) -> Vec<Ranked> {
    let mut out = Vec::new();
    Rows::new(batches).each(|r| {
        out.push(Ranked {
            person_id: r.text("person_id").unwrap_or_default(),
            orders: r.u64("orders"),
            revenue: super::round2(r.f64("revenue").unwrap_or(0.0)),
            p_alive: r.f64("p_alive").map(super::round4),
            expected_purchases: r.f64("expected_purchases").map(super::round4),
            predicted_value: r.f64("predicted_value").map(super::round2),
            purchase_probability: r.f64("purchase_probability").map(super::round4),
            top_features: r.text("top_features"),
            top_category: r.text("top_category"),
        });
    });
    out
}

/// Run the report.
pub async fn predictions(env: &Env, req: &PredictionsRequest) -> Result<PredictionsResponse> {
    let site = SiteId::parse(&req.site).map_err(|e| invalid("site", e.to_string()))?;
    if req.limit > 1000 {
        return Err(invalid("limit", "at most 1000"));
    }
    if !(req.churn_threshold > 0.0 && req.churn_threshold < 1.0) {
        return Err(invalid("churn_threshold", "between 0 and 1, exclusive"));
    }
    let (model, fitted_now) = model(env, &site).await?;
    let ctx = env.session(&site).await?;
    let mut q = Sql::default();
    let s = q.bind(site.as_str());
    let (limit, thr) = (req.limit, req.churn_threshold);
    let lists = [
        format!(
            "SELECT {COLUMNS} FROM predictions WHERE site = {s} AND purchase_probability IS NOT NULL ORDER BY purchase_probability DESC, person_id LIMIT {limit}"
        ),
        format!(
            "SELECT {COLUMNS} FROM predictions WHERE site = {s} AND orders > 0 AND p_alive < {thr:?} ORDER BY revenue DESC, person_id LIMIT {limit}"
        ),
        format!(
            "SELECT {COLUMNS} FROM predictions WHERE site = {s} AND predicted_value IS NOT NULL ORDER BY predicted_value DESC, person_id LIMIT {limit}"
        ),
        format!(
            "SELECT count(*) AS people, count(*) FILTER (WHERE orders > 0) AS buyers,
  count(*) FILTER (WHERE orders > 0 AND p_alive < {thr:?}) AS at_risk,
  coalesce(sum(expected_purchases), 0) AS expected_purchases, coalesce(sum(predicted_value), 0) AS predicted_value,
  coalesce(sum(purchase_probability), 0) AS expected_buyers
FROM predictions WHERE site = {s}"
        ),
    ];
    let mut answers = Vec::new();
    for (i, sql) in lists.iter().enumerate() {
        // `limit: 0` (a share link's) runs the counts only.
        answers.push(if limit == 0 && i < 3 { Vec::new() } else { run(&ctx, sql, &q, &env.limits).await? });
    }
    let mut counts = Counts::default();
    Rows::new(&answers[3]).each(|r| {
        counts = Counts {
            people: r.u64("people"),
            buyers: r.u64("buyers"),
            at_risk: r.u64("at_risk"),
            expected_purchases: super::round2(r.f64("expected_purchases").unwrap_or(0.0)),
            predicted_value: super::round2(r.f64("predicted_value").unwrap_or(0.0)),
            expected_buyers_in_window: super::round2(r.f64("expected_buyers").unwrap_or(0.0)),
        };
    });
    Ok(PredictionsResponse {
        fitted_now,
        counts,
        likely_buyers: ranked(&answers[0]),
        at_risk: ranked(&answers[1]),
        top_value: ranked(&answers[2]),
        sql: lists
            .into_iter()
            .enumerate()
            .filter(|(i, _)| limit > 0 || *i == 3)
            .map(|(_, sql)| RanSql { sql, params: q.params.clone() })
            .collect(),
        model,
    })
}

/// `POST /api/reports/affinities`.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AffinitiesRequest {
    pub site: String,
    /// Only this product's pairs.
    #[serde(default)]
    pub product: Option<String>,
    /// Pairs in each list (1 to 1,000, default 20).
    #[serde(default = "default_limit")]
    pub limit: usize,
}

/// A category and the people whose favourite it is.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct CategoryPeople {
    pub category: String,
    pub people: u64,
    /// Their mean share of interest in it.
    pub mean_share: f64,
}

/// The report.
#[derive(Clone, Debug, Serialize)]
pub struct AffinitiesResponse {
    pub fitted_at: String,
    pub as_of: String,
    pub fitted_now: bool,
    /// Orders and sessions counted.
    pub orders: u64,
    pub sessions: u64,
    /// Rules A → B, strongest first (by lift over every product; by confidence for one).
    pub bought_together: Vec<predict::affinity::Pair>,
    pub viewed_together: Vec<predict::affinity::Pair>,
    pub products: Vec<predict::Product>,
    pub categories: Vec<CategoryPeople>,
    pub sql: Vec<RanSql>,
}

/// Run the report.
pub async fn affinities(env: &Env, req: &AffinitiesRequest) -> Result<AffinitiesResponse> {
    let site = SiteId::parse(&req.site).map_err(|e| invalid("site", e.to_string()))?;
    if !(1..=1000).contains(&req.limit) {
        return Err(invalid("limit", "between 1 and 1000"));
    }
    let (model, fitted_now) = model(env, &site).await?;
    let pick = |pairs: &[predict::affinity::Pair]| {
        let mut v: Vec<predict::affinity::Pair> = match &req.product {
            Some(p) => pairs.iter().filter(|r| &r.product == p).cloned().collect(),
            None => {
                // Each pair once (A → B, with A before B), by lift then support.
                let mut v: Vec<_> = pairs.iter().filter(|r| r.product < r.other).cloned().collect();
                v.sort_by(|a, b| b.lift.total_cmp(&a.lift).then(b.support.total_cmp(&a.support)));
                v
            }
        };
        v.truncate(req.limit);
        v
    };
    let ctx = env.session(&site).await?;
    let mut q = Sql::default();
    let s = q.bind(site.as_str());
    let sql = format!(
        "SELECT top_category AS category, count(*) AS people, avg(category_share) AS share FROM predictions
WHERE site = {s} AND top_category IS NOT NULL GROUP BY top_category ORDER BY people DESC, category LIMIT {}",
        req.limit
    );
    let batches = run(&ctx, &sql, &q, &env.limits).await?;
    let mut categories = Vec::new();
    Rows::new(&batches).each(|r| {
        categories.push(CategoryPeople {
            category: r.text("category").unwrap_or_default(),
            people: r.u64("people"),
            mean_share: super::round2(r.f64("share").unwrap_or(0.0)),
        });
    });
    Ok(AffinitiesResponse {
        fitted_at: model.fitted_at.clone(),
        as_of: model.as_of.clone(),
        fitted_now,
        orders: model.orders,
        sessions: model.sessions,
        bought_together: pick(&model.bought_together),
        viewed_together: pick(&model.viewed_together),
        products: model.products.iter().take(req.limit).cloned().collect(),
        categories,
        sql: vec![RanSql { sql, params: q.params }],
    })
}

fn num(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.digits$}"))
}

/// `footfall report predictions`.
pub fn text(r: &PredictionsResponse) -> (String, Vec<RanSql>) {
    let m = &r.model;
    let mut out = format!("fitted {} (as of {}), {:.1} s\n", m.fitted_at, m.as_of, m.seconds);
    let c = &m.customers;
    let _ = writeln!(out, "buyers {}, repeat buyers {}", c.buyers, c.repeat_buyers);
    match c.bgnbd {
        Some(b) => {
            let _ = writeln!(out, "BG/NBD: r {:.4}, alpha {:.4}, a {:.4}, b {:.4}", b.r, b.alpha, b.a, b.b);
        }
        None => out.push_str("BG/NBD: not fitted (fewer than 10 buyers or no repeat buyer)\n"),
    }
    match c.gamma_gamma {
        Some(g) => {
            let _ = writeln!(out, "Gamma-Gamma: p {:.4}, q {:.4}, gamma {:.4}", g.p, g.q, g.v);
        }
        None => out.push_str("Gamma-Gamma: not fitted (fewer than 10 repeat buyers)\n"),
    }
    match &m.propensity {
        Some(p) => {
            let _ = writeln!(
                out,
                "propensity ({} days): holdout AUC {}, trained on {} people ({:.2}% bought), holdout {} ({:.2}% bought)",
                m.config.purchase_window_days,
                num(p.auc, 3),
                p.train_people,
                100.0 * p.train_rate,
                p.holdout_people,
                100.0 * p.holdout_rate
            );
        }
        None => {
            let _ = writeln!(out, "propensity: {}", m.propensity_note.as_deref().unwrap_or("not fitted"));
        }
    }
    let _ = writeln!(
        out,
        "people {}, at risk {}, expected purchases ({} days) {}, predicted value {}\n",
        r.counts.people,
        r.counts.at_risk,
        m.config.value_horizon_days,
        r.counts.expected_purchases,
        r.counts.predicted_value
    );
    for (title, list) in
        [("likely buyers", &r.likely_buyers), ("at risk", &r.at_risk), ("top predicted value", &r.top_value)]
    {
        let _ = writeln!(out, "{title}\nperson\torders\trevenue\tp_alive\tpredicted_value\tpurchase_probability");
        for p in list {
            let _ = writeln!(
                out,
                "{}\t{}\t{}\t{}\t{}\t{}",
                p.person_id,
                p.orders,
                p.revenue,
                num(p.p_alive, 3),
                num(p.predicted_value, 2),
                num(p.purchase_probability, 3)
            );
        }
        out.push('\n');
    }
    (out, r.sql.clone())
}

/// `footfall report affinities`.
pub fn affinities_text(r: &AffinitiesResponse) -> (String, Vec<RanSql>) {
    let mut out = format!("fitted {} (as of {}): {} orders, {} sessions\n", r.fitted_at, r.as_of, r.orders, r.sessions);
    for (title, list) in [("bought together", &r.bought_together), ("viewed together", &r.viewed_together)] {
        let _ = writeln!(out, "\n{title}\nproduct\tother\ttogether\tsupport\tconfidence\tlift");
        for p in list {
            let _ = writeln!(
                out,
                "{}\t{}\t{}\t{:.4}\t{:.3}\t{:.2}",
                p.product, p.other, p.together, p.support, p.confidence, p.lift
            );
        }
    }
    out.push_str("\nfavourite category\tpeople\tmean share\n");
    for c in &r.categories {
        let _ = writeln!(out, "{}\t{}\t{}", c.category, c.people, c.mean_share);
    }
    (out, r.sql.clone())
}
