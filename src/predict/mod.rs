//! Predictions a shop can act on, fitted per site from its own events (docs/reports.md,
//! "Predictions" and "Affinities" state every model, feature and formula):
//!
//! - **lifetime value and churn**: BG/NBD ([`bgnbd`]) for how often each buyer buys and
//!   P(alive), Gamma-Gamma ([`gamma_gamma`]) for what their orders are worth; predicted value
//!   over a horizon = expected purchases × expected order value;
//! - **purchase propensity** ([`propensity`]): P(buys in the next N days), logistic regression
//!   over recency, frequency, monetary and behaviour features, judged on an out-of-time holdout;
//! - **product affinities** ([`affinity`]): bought together (same order) and viewed together
//!   (same session), and each person's favourite category.
//!
//! A fit ([`fit`]) reads the store through DataFusion and writes `models/site=<site>/`:
//! `model.json` (parameters, holdout figures, distributions, product pairs) and `people.parquet`
//! (one row per person, the SQL table `predictions`). The server refits in the background
//! ([`refresher`]); reports, segments and recommendations read the last fit.

pub mod affinity;
pub mod bgnbd;
pub mod gamma_gamma;
mod optim;
pub mod propensity;
pub mod recommend;
mod special;
pub mod store;

use std::collections::HashMap;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

pub use self::store::{load, load_people, people_schema, refit, refresher, save};
use crate::model::SiteId;
use crate::reports::{Env, Result, Rows, Sql, run, ts_literal};

/// What a fit predicts.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Config {
    /// The propensity window: P(purchase in the next `purchase_window_days`). Default 7.
    pub purchase_window_days: i64,
    /// The horizon of expected purchases and predicted value. Default 365.
    pub value_horizon_days: i64,
}

impl Default for Config {
    fn default() -> Self {
        Self { purchase_window_days: 7, value_horizon_days: 365 }
    }
}

/// Most people a propensity model trains on (every k-th person past it, by id order).
const MAX_TRAINING: usize = 300_000;
/// People active in this many days before a snapshot are scored (and every past buyer).
const ACTIVE_DAYS: i64 = 90;
/// Product pairs kept per product and kind.
const PAIRS_PER_PRODUCT: usize = 20;
/// Products of one session taken for viewed-together (its first ones).
const PRODUCTS_PER_SESSION: usize = 20;

/// The propensity features, in the model's order (docs/reports.md, "Purchase propensity").
pub const FEATURES: [&str; 16] = [
    "days_since_last_visit",
    "days_since_last_purchase",
    "has_purchased",
    "orders_log",
    "revenue_log",
    "sessions_log",
    "sessions_30d",
    "product_views_30d_log",
    "carts_30d",
    "checkouts_30d",
    "channel_organic_search",
    "channel_paid",
    "channel_social",
    "channel_email",
    "device_mobile",
    "device_tablet",
];

/// The BG/NBD and Gamma-Gamma fit.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Customers {
    /// People with a purchase (the models' customers).
    pub buyers: u64,
    /// Buyers with a purchase on a later day than their first.
    pub repeat_buyers: u64,
    /// Frequency model; `None` with fewer than 10 buyers or no repeat buyer.
    pub bgnbd: Option<bgnbd::BgNbd>,
    /// Spend model, over repeat buyers with a positive mean; `None` with fewer than 10.
    pub gamma_gamma: Option<gamma_gamma::GammaGamma>,
}

/// The propensity model and how it did on the holdout.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Propensity {
    pub model: propensity::Fitted,
    /// The training snapshot: features before it, outcome in the window after it.
    pub train_snapshot: String,
    pub train_people: u64,
    /// Share of training people who bought in the window.
    pub train_rate: f64,
    /// The holdout snapshot, one window later.
    pub holdout_snapshot: String,
    pub holdout_people: u64,
    pub holdout_rate: f64,
    /// Area under the ROC curve on the holdout (0.5 is chance).
    pub auc: Option<f64>,
    pub calibration: Vec<propensity::CalibrationBin>,
}

/// A histogram band.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Band {
    pub from: f64,
    pub to: f64,
    pub people: u64,
}

/// A product's name and category, as its items were sent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Product {
    pub id: String,
    pub name: Option<String>,
    pub category: Option<String>,
    /// Orders holding it.
    pub orders: u64,
}

/// A site's fitted models (without the per-person rows, which are in `people.parquet`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Model {
    pub site: String,
    pub fitted_at: String,
    /// Predictions are as of this instant: the site's last event (or now, if earlier).
    pub as_of: String,
    pub config: Config,
    pub customers: Customers,
    /// `None` when there is too little history for two snapshots with buyers in both.
    pub propensity: Option<Propensity>,
    /// Why `propensity` is `None`.
    pub propensity_note: Option<String>,
    pub p_alive_bands: Vec<Band>,
    pub predicted_value_bands: Vec<Band>,
    pub purchase_probability_bands: Vec<Band>,
    pub orders: u64,
    pub bought_together: Vec<affinity::Pair>,
    /// Sessions in the viewed-together count (the last 90 days).
    pub sessions: u64,
    pub viewed_together: Vec<affinity::Pair>,
    /// Products by orders holding them, most first.
    pub products: Vec<Product>,
    pub seconds: f64,
    /// Seconds per stage of the fit, in order (what a slow fit spends its time on).
    pub stages: Vec<(String, f64)>,
}

/// One person's predictions (a row of `predictions`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Person {
    pub person_id: String,
    /// Orders ever (purchase events).
    pub orders: u64,
    /// Purchases minus refunds ever.
    pub revenue: f64,
    /// BG/NBD's x, t_x, T in days (buyers only).
    pub frequency: Option<f64>,
    pub recency_days: Option<f64>,
    pub age_days: Option<f64>,
    pub p_alive: Option<f64>,
    /// Expected purchases in the value horizon.
    pub expected_purchases: Option<f64>,
    pub expected_order_value: Option<f64>,
    /// Expected purchases × expected order value over the horizon.
    pub predicted_value: Option<f64>,
    /// P(purchase in the propensity window).
    pub purchase_probability: Option<f64>,
    /// The features that move this person's probability most, as `name:+0.52` (logit parts).
    pub top_features: Option<String>,
    pub top_category: Option<String>,
    /// The top category's share of the person's product interest (views 1, carts 3, purchases 5).
    pub category_share: Option<f64>,
    /// Products viewed, carted or bought in the last 90 days, most recent first (at most 5).
    pub recent_products: Vec<String>,
    /// Products bought in the last 90 days.
    pub bought_products: Vec<String>,
}

fn at(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn days_between(a: i64, b: i64) -> f64 {
    (b - a) as f64 / 86_400_000_000.0
}

/// Fit every model of `site` from its events up to `env`'s now.
pub async fn fit(env: &Env, site: &SiteId, config: &Config) -> Result<(Model, Vec<Person>)> {
    let started = Instant::now();
    let mut stages: Vec<(String, f64)> = Vec::new();
    let mut lap = Instant::now();
    let mut stage = |name: &str| {
        stages.push((name.to_owned(), lap.elapsed().as_secs_f64()));
        lap = Instant::now();
    };
    let ctx = env.session(site).await?;
    let mut q = Sql::default();
    let s = q.bind(site.as_str());
    let now = env.now();
    let last = run(
        &ctx,
        &format!("SELECT max(ts) AS last FROM events WHERE site = {s} AND ts <= {}", ts_literal(now)),
        &q,
        &env.limits,
    )
    .await?;
    let mut as_of = now;
    Rows::new(&last).each(|r| {
        if let Some(t) = r.micros("last").and_then(DateTime::from_timestamp_micros) {
            as_of = t;
        }
    });
    let mut people: HashMap<String, Person> = HashMap::new();

    // Customers: purchase days, as lifetimes' summary_data_from_transaction_data counts them
    // (a day with several orders is one transaction).
    let sql = format!(
        "SELECT person_id, date_trunc('day', ts) AS day, count(*) FILTER (WHERE name = 'purchase') AS orders,
  CAST(coalesce(sum(CASE WHEN name = 'purchase' THEN revenue ELSE -revenue END), 0) AS DOUBLE) AS value
FROM events WHERE site = {s} AND name IN ('purchase', 'refund') AND ts <= {} AND person_id IS NOT NULL
GROUP BY person_id, date_trunc('day', ts)",
        ts_literal(as_of)
    );
    let batches = run(&ctx, &sql, &q, &env.limits).await?;
    let mut days: HashMap<String, Vec<(i64, u64, f64)>> = HashMap::new();
    Rows::new(&batches).each(|r| {
        if let (Some(p), Some(d)) = (r.text("person_id"), r.micros("day")) {
            days.entry(p).or_default().push((d, r.u64("orders"), r.f64("value").unwrap_or(0.0)));
        }
    });
    let today = as_of.timestamp_micros() - as_of.timestamp_micros().rem_euclid(86_400_000_000);
    let mut rfm: Vec<(String, bgnbd::Rfm, f64, u64, f64)> = Vec::new();
    for (person, mut d) in days {
        d.sort_by_key(|v| v.0);
        let Some(first) = d.iter().position(|v| v.1 > 0) else { continue };
        let first_day = d[first].0;
        let repeat: Vec<&(i64, u64, f64)> = d[first + 1..].iter().filter(|v| v.1 > 0).collect();
        let x = repeat.len() as f64;
        let last_day = repeat.last().map_or(first_day, |v| v.0);
        // Refunds after the first purchase day are netted into the repeat orders' value.
        let later: f64 = d[first + 1..].iter().map(|v| v.2).sum();
        let m = if x > 0.0 { later / x } else { 0.0 };
        let orders: u64 = d.iter().map(|v| v.1).sum();
        let revenue: f64 = d.iter().map(|v| v.2).sum();
        let c = bgnbd::Rfm { x, t_x: days_between(first_day, last_day), t: days_between(first_day, today) };
        rfm.push((person, c, m, orders, revenue));
    }
    let mut grouped: HashMap<(u64, u64, u64), f64> = HashMap::new();
    let mut spend: HashMap<(u64, u64), f64> = HashMap::new();
    for (_, c, m, _, _) in &rfm {
        *grouped.entry((c.x as u64, c.t_x.round() as u64, c.t.round() as u64)).or_insert(0.0) += 1.0;
        if c.x > 0.0 && *m > 0.0 {
            *spend.entry((c.x as u64, m.to_bits())).or_insert(0.0) += 1.0;
        }
    }
    let grouped: Vec<(bgnbd::Rfm, f64)> = grouped
        .into_iter()
        .map(|((x, t_x, t), w)| (bgnbd::Rfm { x: x as f64, t_x: t_x as f64, t: t as f64 }, w))
        .collect();
    let spend: Vec<(f64, f64, f64)> = spend.into_iter().map(|((x, m), w)| (x as f64, f64::from_bits(m), w)).collect();
    stage("customers: read");
    let (bg, gg) = (bgnbd::BgNbd::fit(&grouped), gamma_gamma::GammaGamma::fit(&spend));
    stage("customers: fit");
    let customers = Customers {
        buyers: rfm.len() as u64,
        repeat_buyers: rfm.iter().filter(|r| r.1.x > 0.0).count() as u64,
        bgnbd: bg,
        gamma_gamma: gg,
    };
    let horizon = config.value_horizon_days as f64;
    for (person, c, m, orders, revenue) in rfm {
        let p = people.entry(person.clone()).or_insert_with(|| Person { person_id: person, ..Person::default() });
        p.orders = orders;
        p.revenue = revenue;
        p.frequency = Some(c.x);
        p.recency_days = Some(c.t_x);
        p.age_days = Some(c.t);
        if let Some(bg) = bg {
            let e = bg.expected_purchases(horizon, &c);
            p.p_alive = Some(bg.p_alive(&c));
            p.expected_purchases = Some(e);
            if let Some(v) = gg.and_then(|g| g.expected_order_value(c.x, m)) {
                p.expected_order_value = Some(v);
                p.predicted_value = Some(e * v);
            }
        }
    }

    // Propensity: train at as_of − 2 windows, judge at as_of − 1 window, score at as_of.
    let window = Duration::days(config.purchase_window_days);
    let (train_at, holdout_at) = (as_of - window - window, as_of - window);
    let train = snapshot(env, &ctx, site, train_at, window).await?;
    let holdout = snapshot(env, &ctx, site, holdout_at, window).await?;
    let scoring = snapshot(env, &ctx, site, as_of, window).await?;
    stage("propensity: three snapshots");
    let rate = |v: &[propensity::Sample]| {
        if v.is_empty() { 0.0 } else { v.iter().filter(|s| s.bought).count() as f64 / v.len() as f64 }
    };
    let (train_people, train_rate) = (train.len() as u64, rate(&train));
    let step = train.len().div_ceil(MAX_TRAINING).max(1);
    let training: Vec<propensity::Sample> = train.into_iter().step_by(step).collect();
    let (propensity, propensity_note) = match propensity::Fitted::train(&FEATURES, &training) {
        None => (
            None,
            Some(format!(
                "too little history: the training snapshot ({}) needs people who bought in the {} days after it and people who did not",
                at(train_at),
                config.purchase_window_days
            )),
        ),
        Some(model) => {
            let scores: Vec<(f64, bool)> = holdout.iter().map(|s| (model.probability(&s.x), s.bought)).collect();
            for s in &scoring {
                let p = people
                    .entry(s.person_id.clone())
                    .or_insert_with(|| Person { person_id: s.person_id.clone(), ..Person::default() });
                p.purchase_probability = Some(model.probability(&s.x));
                let top: Vec<String> =
                    model.contributions(&s.x).into_iter().take(3).map(|(f, v)| format!("{f}:{v:+.2}")).collect();
                p.top_features = Some(top.join(" "));
            }
            let fitted = Propensity {
                train_snapshot: at(train_at),
                train_people,
                train_rate,
                holdout_snapshot: at(holdout_at),
                holdout_people: holdout.len() as u64,
                holdout_rate: rate(&holdout),
                auc: propensity::auc(&scores),
                calibration: propensity::calibration(&scores),
                model,
            };
            (Some(fitted), None)
        }
    };

    stage("propensity: fit and score");

    // Affinities.
    let since = ts_literal(as_of - Duration::days(ACTIVE_DAYS));
    let until = ts_literal(as_of);
    let sql = format!(
        "SELECT event_id, it['id'] AS id, it['name'] AS pname, it['category'] AS category
FROM (SELECT event_id, unnest(items) AS it FROM events WHERE site = {s} AND name = 'purchase' AND ts <= {until})"
    );
    let batches = run(&ctx, &sql, &q, &env.limits).await?;
    let mut baskets: HashMap<String, Vec<String>> = HashMap::new();
    let mut products: HashMap<String, Product> = HashMap::new();
    Rows::new(&batches).each(|r| {
        let (Some(order), Some(id)) = (r.text("event_id"), r.text("id")) else { return };
        let p = products.entry(id.clone()).or_insert_with(|| Product { id: id.clone(), ..Product::default() });
        p.name = p.name.take().or_else(|| r.text("pname"));
        p.category = p.category.take().or_else(|| r.text("category"));
        let b = baskets.entry(order).or_default();
        if !b.contains(&id) {
            b.push(id);
            p.orders += 1;
        }
    });
    let baskets: Vec<Vec<String>> = baskets.into_values().collect();
    let bought_together = affinity::rules(&baskets, 0.001, 2, PAIRS_PER_PRODUCT);
    stage("affinities: orders");
    let sql = format!(
        "SELECT session_id, items[1]['id'] AS id, min(ts) AS first, min(items[1]['name']) AS pname, min(items[1]['category']) AS category
FROM events WHERE site = {s} AND name = 'product_view' AND ts <= {until} AND ts >= {since} AND items[1]['id'] IS NOT NULL
GROUP BY session_id, items[1]['id']"
    );
    let batches = run(&ctx, &sql, &q, &env.limits).await?;
    let mut sessions: HashMap<String, Vec<(i64, String)>> = HashMap::new();
    Rows::new(&batches).each(|r| {
        if let (Some(session), Some(id)) = (r.text("session_id"), r.text("id")) {
            if !products.contains_key(&id) {
                products.insert(
                    id.clone(),
                    Product { id: id.clone(), name: r.text("pname"), category: r.text("category"), orders: 0 },
                );
            }
            sessions.entry(session).or_default().push((r.micros("first").unwrap_or(0), id));
        }
    });
    let sessions: Vec<Vec<String>> = sessions
        .into_values()
        .map(|mut v| {
            v.sort();
            v.into_iter().take(PRODUCTS_PER_SESSION).map(|(_, id)| id).collect()
        })
        .collect();
    let viewed_together = affinity::rules(&sessions, 0.0005, 2, PAIRS_PER_PRODUCT);
    stage("affinities: sessions");

    // Category affinity and recent products (last 90 days).
    let sql = format!(
        "SELECT person_id, name, ts, it['id'] AS id, it['category'] AS category
FROM (SELECT person_id, name, ts, unnest(items) AS it FROM events
      WHERE site = {s} AND name IN ('product_view', 'add_to_cart', 'purchase') AND ts <= {until} AND ts >= {since} AND person_id IS NOT NULL)"
    );
    let batches = run(&ctx, &sql, &q, &env.limits).await?;
    struct Interest {
        categories: HashMap<String, f64>,
        recent: Vec<(i64, String)>,
        bought: Vec<String>,
    }
    let mut interest: HashMap<String, Interest> = HashMap::new();
    Rows::new(&batches).each(|r| {
        let Some(person) = r.text("person_id") else { return };
        let i = interest.entry(person).or_insert_with(|| Interest {
            categories: HashMap::new(),
            recent: Vec::new(),
            bought: Vec::new(),
        });
        let name = r.text("name").unwrap_or_default();
        let weight = match name.as_str() {
            "purchase" => 5.0,
            "add_to_cart" => 3.0,
            _ => 1.0,
        };
        if let Some(c) = r.text("category") {
            *i.categories.entry(c).or_insert(0.0) += weight;
        }
        if let Some(id) = r.text("id") {
            if name == "purchase" && !i.bought.contains(&id) {
                i.bought.push(id.clone());
            }
            i.recent.push((r.micros("ts").unwrap_or(0), id));
        }
    });
    for (person, mut i) in interest {
        let Some(p) = people.get_mut(&person) else { continue };
        let total: f64 = i.categories.values().sum();
        if let Some((c, w)) = i.categories.iter().max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(a.0))) {
            p.top_category = Some(c.clone());
            p.category_share = Some(w / total);
        }
        i.recent.sort_by_key(|r| std::cmp::Reverse(r.0));
        for (_, id) in i.recent {
            if p.recent_products.len() < 5 && !p.recent_products.contains(&id) {
                p.recent_products.push(id);
            }
        }
        i.bought.sort();
        p.bought_products = i.bought;
    }

    stage("categories and recent products");
    let mut people: Vec<Person> = people.into_values().collect();
    people.sort_by(|a, b| a.person_id.cmp(&b.person_id));
    let mut products: Vec<Product> = products.into_values().collect();
    products.sort_by(|a, b| b.orders.cmp(&a.orders).then(a.id.cmp(&b.id)));
    let model = Model {
        site: site.as_str().to_owned(),
        fitted_at: at(now),
        as_of: at(as_of),
        config: *config,
        p_alive_bands: bands(
            people.iter().filter_map(|p| p.p_alive.filter(|_| p.frequency.is_some_and(|x| x > 0.0))),
            0.0,
            1.0,
        ),
        predicted_value_bands: value_bands(&people),
        purchase_probability_bands: bands(people.iter().filter_map(|p| p.purchase_probability), 0.0, 1.0),
        customers,
        propensity,
        propensity_note,
        orders: baskets.len() as u64,
        bought_together,
        sessions: sessions.len() as u64,
        viewed_together,
        products,
        seconds: started.elapsed().as_secs_f64(),
        stages,
    };
    Ok((model, people))
}

/// Ten equal bands of `values` over [lo, hi] (the last band includes hi).
fn bands(values: impl Iterator<Item = f64>, lo: f64, hi: f64) -> Vec<Band> {
    let width = (hi - lo) / 10.0;
    let mut out: Vec<Band> =
        (0..10).map(|i| Band { from: lo + width * i as f64, to: lo + width * (i + 1) as f64, people: 0 }).collect();
    for v in values {
        if width > 0.0 {
            let i = (((v - lo) / width) as usize).min(9);
            out[i].people += 1;
        }
    }
    out
}

/// Predicted value in ten bands from 0 to the 99th percentile (the last band holds the rest).
fn value_bands(people: &[Person]) -> Vec<Band> {
    let mut v: Vec<f64> = people.iter().filter_map(|p| p.predicted_value).collect();
    if v.is_empty() {
        return Vec::new();
    }
    v.sort_by(f64::total_cmp);
    let top = v[((v.len() - 1) as f64 * 0.99) as usize].max(1.0);
    let step = 10f64.powf((top / 10.0).log10().floor());
    let hi = (top / step).ceil() * step;
    let mut b = bands(v.iter().copied(), 0.0, hi);
    if let Some(last) = b.last_mut() {
        last.to = v[v.len() - 1].max(hi);
    }
    b
}

/// Every person active in the [`ACTIVE_DAYS`] before `at` or who bought before it: their features
/// from the events before `at`, and whether they bought in `[at, at + window)`.
async fn snapshot(
    env: &Env,
    ctx: &datafusion::prelude::SessionContext,
    site: &SiteId,
    at: DateTime<Utc>,
    window: Duration,
) -> Result<Vec<propensity::Sample>> {
    let mut q = Sql::default();
    let s = q.bind(site.as_str());
    let (before, recent, active, end) = (
        ts_literal(at),
        ts_literal(at - Duration::days(30)),
        ts_literal(at - Duration::days(ACTIVE_DAYS)),
        ts_literal(at + window),
    );
    let sql = format!(
        "SELECT person_id,
  max(ts) FILTER (WHERE ts < {before}) AS last_seen,
  max(ts) FILTER (WHERE ts < {before} AND name = 'purchase') AS last_purchase,
  count(*) FILTER (WHERE ts < {before} AND name = 'purchase') AS orders,
  CAST(coalesce(sum(CASE WHEN name = 'purchase' THEN revenue WHEN name = 'refund' THEN -revenue END) FILTER (WHERE ts < {before}), 0) AS DOUBLE) AS revenue,
  count(DISTINCT session_id) FILTER (WHERE ts < {before}) AS sessions,
  count(DISTINCT session_id) FILTER (WHERE ts >= {recent} AND ts < {before}) AS sessions_30d,
  count(*) FILTER (WHERE ts >= {recent} AND ts < {before} AND name = 'product_view') AS views_30d,
  count(*) FILTER (WHERE ts >= {recent} AND ts < {before} AND name = 'add_to_cart') AS carts_30d,
  count(*) FILTER (WHERE ts >= {recent} AND ts < {before} AND name = 'checkout_start') AS checkouts_30d,
  first_value(channel ORDER BY ts) AS channel,
  first_value(device ORDER BY ts) AS device,
  count(*) FILTER (WHERE ts >= {before} AND name = 'purchase') > 0 AS bought
FROM events WHERE site = {s} AND ts < {end} AND person_id IS NOT NULL
GROUP BY person_id
HAVING max(ts) FILTER (WHERE ts < {before}) >= {active} OR count(*) FILTER (WHERE ts < {before} AND name = 'purchase') > 0
ORDER BY person_id"
    );
    let batches = run(ctx, &sql, &q, &env.limits).await?;
    let at_micros = at.timestamp_micros();
    let mut out = Vec::new();
    Rows::new(&batches).each(|r| {
        let Some(person_id) = r.text("person_id") else { return };
        let since = |col: &str| r.micros(col).map_or(365.0, |t| days_between(t, at_micros).min(365.0));
        let orders = r.f64("orders").unwrap_or(0.0);
        let channel = r.text("channel").unwrap_or_default();
        let device = r.text("device").unwrap_or_default();
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        let x = vec![
            since("last_seen"),
            since("last_purchase"),
            flag(orders > 0.0),
            orders.ln_1p(),
            r.f64("revenue").unwrap_or(0.0).max(0.0).ln_1p(),
            r.f64("sessions").unwrap_or(0.0).ln_1p(),
            r.f64("sessions_30d").unwrap_or(0.0),
            r.f64("views_30d").unwrap_or(0.0).ln_1p(),
            r.f64("carts_30d").unwrap_or(0.0),
            r.f64("checkouts_30d").unwrap_or(0.0),
            flag(channel == "Organic Search"),
            flag(channel.starts_with("Paid")),
            flag(channel.contains("Social")),
            flag(channel == "Email"),
            flag(device == "Mobile"),
            flag(device == "Tablet"),
        ];
        out.push(propensity::Sample { person_id, x, bought: r.text("bought").is_some_and(|b| b == "true") });
    });
    Ok(out)
}
