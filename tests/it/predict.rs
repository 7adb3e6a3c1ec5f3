//! Predictions checked against what others published and built: BG/NBD and Gamma-Gamma on the
//! CDNOW sample against Fader, Hardie & Lee's estimates (the data from PyPI's `lifetimes`),
//! their conditional expectations against `lifetimes` itself, product pairs against mlxtend's
//! apriori + association_rules; then the whole path through a server (background fit,
//! recommendations, the reports, segments, the CSV export, the `predictions` table).

use std::path::PathBuf;

use footfall::model::{Event, Item, SiteId};
use footfall::predict::bgnbd::{BgNbd, Rfm};
use footfall::predict::gamma_gamma::GammaGamma;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestServer, options, python_venv, report_env, store};

fn python() -> PathBuf {
    python_venv("predict")
}

fn run_python(script: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(python()).arg("-c").arg(script).args(args).output().expect("python runs");
    assert!(out.status.success(), "python: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// lifetimes' datasets directory (the CDNOW sample of FHL 2005 is in it).
fn lifetimes_datasets() -> PathBuf {
    PathBuf::from(run_python("import lifetimes.datasets as d, os; print(os.path.dirname(d.__file__))", &[]).trim())
}

fn csv_rows(path: PathBuf) -> Vec<Vec<f64>> {
    let text = std::fs::read_to_string(&path).expect("dataset");
    text.lines().skip(1).map(|l| l.split(',').map(|v| v.parse().expect("number")).collect()).collect()
}

fn within(got: f64, want: f64, share: f64) -> bool {
    (got / want - 1.0).abs() <= share
}

#[test]
fn cdnow_estimates_match_the_papers() {
    let dir = lifetimes_datasets();
    // ID, frequency (x), recency (t_x), T, in weeks: 2,357 customers.
    let rows = csv_rows(dir.join("cdnow_customers_summary.csv"));
    assert_eq!(rows.len(), 2357);
    let customers: Vec<(Rfm, f64)> = rows.iter().map(|r| (Rfm { x: r[1], t_x: r[2], t: r[3] }, 1.0)).collect();
    let bg = BgNbd::fit(&customers).expect("fit");
    // FHL 2005, section 4: r = 0.243, α = 4.414, a = 0.793, b = 2.426.
    for (got, want) in [(bg.r, 0.243), (bg.alpha, 4.414), (bg.a, 0.793), (bg.b, 2.426)] {
        assert!(within(got, want, 0.01), "{bg:?}");
    }
    // ID, x, t_x, T, zbar (mean spend of the repeat purchases): Fader & Hardie (2013) fit the 946
    // repeat buyers: p = 6.25, q = 3.74, γ = 15.44.
    let rows = csv_rows(dir.join("cdnow_customers_summary_with_transactions.csv"));
    let spend: Vec<(f64, f64, f64)> = rows.iter().filter(|r| r[1] > 0.0).map(|r| (r[1], r[4], 1.0)).collect();
    assert_eq!(spend.len(), 946);
    let gg = GammaGamma::fit(&spend).expect("fit");
    for (got, want) in [(gg.p, 6.25), (gg.q, 3.74), (gg.v, 15.44)] {
        assert!(within(got, want, 0.01), "{gg:?}");
    }
    println!("BG/NBD {bg:?}\nGamma-Gamma {gg:?}");
}

#[test]
fn conditional_expectations_match_lifetimes() {
    // The paper's parameters, and customers from the CDNOW sample's range.
    let bg = BgNbd { r: 0.243, alpha: 4.414, a: 0.793, b: 2.426 };
    let gg = GammaGamma { p: 6.25, q: 3.74, v: 15.44 };
    let cases = [
        (2.0, 30.43, 38.86, 22.35),
        (0.0, 0.0, 38.86, 0.0),
        (1.0, 1.71, 38.86, 11.77),
        (7.0, 29.43, 31.0, 54.2),
        (3.0, 5.0, 36.5, 9.9),
    ];
    let script = r#"
import json, sys, numpy as np, pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter
bgf = BetaGeoFitter(); bgf.params_ = pd.Series({'r': 0.243, 'alpha': 4.414, 'a': 0.793, 'b': 2.426})
ggf = GammaGammaFitter(); ggf.params_ = pd.Series({'p': 6.25, 'q': 3.74, 'v': 15.44})
out = []
for x, tx, T, m in json.loads(sys.argv[1]):
    one = lambda v: float(np.asarray(v).ravel()[0])
    e = one(bgf.conditional_expected_number_of_purchases_up_to_time(39, x, tx, T))
    a = one(bgf.conditional_probability_alive(x, tx, T))
    v = one(ggf.conditional_expected_average_profit(pd.Series([x]), pd.Series([m]))) if x > 0 else None
    out.append([e, a, v])
print(json.dumps(out))
"#;
    let arg = serde_json::to_string(&cases.iter().map(|c| [c.0, c.1, c.2, c.3]).collect::<Vec<_>>()).expect("json");
    let theirs: Vec<(f64, f64, Option<f64>)> =
        serde_json::from_str(&run_python(script, &[&arg])).expect("lifetimes' answer");
    for (c, (e, a, v)) in cases.iter().zip(theirs) {
        let r = Rfm { x: c.0, t_x: c.1, t: c.2 };
        assert!(within(bg.expected_purchases(39.0, &r), e, 1e-6), "{c:?}: {} vs {e}", bg.expected_purchases(39.0, &r));
        assert!(within(bg.p_alive(&r), a, 1e-9), "{c:?}: {} vs {a}", bg.p_alive(&r));
        if let Some(v) = v {
            let ours = gg.expected_order_value(c.0, c.3).expect("q > 1");
            assert!(within(ours, v, 1e-9), "{c:?}: {ours} vs {v}");
        }
    }
    // The paper's worked example (FHL 2005, section 4): x = 2, t_x = 30.43, T = 38.86 expects
    // 1.226 purchases in the next 39 weeks.
    assert!((bg.expected_purchases(39.0, &Rfm { x: 2.0, t_x: 30.43, t: 38.86 }) - 1.226).abs() < 5e-4);
}

fn at_day(day: i64, minute: i64) -> i64 {
    // 2026-01-05 00:00 UTC, a Monday.
    1_767_571_200_000_000 + day * 86_400_000_000 + minute * 60_000_000
}

fn item(id: &str) -> Item {
    let category = if id.starts_with("mug") || id.starts_with("cup") { "tableware" } else { "tea" };
    Item {
        id: id.into(),
        name: Some(id.to_uppercase()),
        category: Some(category.into()),
        price: Some(10.0),
        quantity: Some(1),
    }
}

/// A shop of `people` visitors over 70 days: sessions of product views, carts and purchases,
/// with planted affinities (a mug's buyer often takes green tea; a teapot's, a cup).
fn shop(people: usize, seed: u64) -> Vec<Event> {
    const PRODUCTS: [&str; 10] = [
        "mug-red",
        "mug-blue",
        "cup-white",
        "cup-black",
        "tea-green",
        "tea-black",
        "tea-earl",
        "pot-iron",
        "pot-glass",
        "tea-mint",
    ];
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut out = Vec::new();
    for p in 0..people {
        let visitor = format!("v{p:04}");
        // Some people come back often; most rarely.
        let rate = if rng.random::<f64>() < 0.3 { 0.25 } else { 0.04 };
        let mut session = 0;
        for day in 0..70 {
            if rng.random::<f64>() >= rate {
                continue;
            }
            session += 1;
            let sid = format!("{visitor}-{session}");
            let mut minute = rng.random_range(0..600);
            let ev = |name: &str, items: Vec<Item>, revenue: Option<f64>, minute: i64| Event {
                event_id: format!("{sid}-{name}-{minute}"),
                site: "shop".into(),
                ts: at_day(day, minute),
                name: name.into(),
                visitor_id: visitor.clone(),
                session_id: sid.clone(),
                channel: Some(if p % 3 == 0 { "Email" } else { "Direct" }.into()),
                device: Some(if p % 2 == 0 { "Mobile" } else { "Desktop" }.into()),
                revenue,
                items,
                ..Event::default()
            };
            let first = PRODUCTS[rng.random_range(0..PRODUCTS.len())];
            let mut basket = vec![first];
            let partner = match first {
                "mug-red" | "mug-blue" => Some("tea-green"),
                "pot-iron" | "pot-glass" => Some("cup-white"),
                _ => None,
            };
            if let Some(q) = partner.filter(|_| rng.random::<f64>() < 0.7) {
                basket.push(q);
            }
            if rng.random::<f64>() < 0.3 {
                basket.push(PRODUCTS[rng.random_range(0..PRODUCTS.len())]);
            }
            basket.dedup();
            for id in &basket {
                out.push(ev("product_view", vec![item(id)], None, minute));
                minute += 1;
            }
            if rng.random::<f64>() < 0.5 {
                let items: Vec<Item> = basket.iter().map(|id| item(id)).collect();
                out.push(ev("add_to_cart", items.clone(), Some(10.0 * items.len() as f64), minute));
                if rng.random::<f64>() < 0.6 {
                    out.push(ev("purchase", items.clone(), Some(10.0 * items.len() as f64), minute + 2));
                }
            }
        }
    }
    out
}

#[tokio::test]
async fn bought_together_matches_mlxtend() {
    let events = shop(400, 11);
    let orders: Vec<Value> = events
        .iter()
        .filter(|e| e.name == "purchase")
        .map(|e| json!({"order": e.event_id, "items": e.items.iter().map(|i| i.id.clone()).collect::<Vec<_>>()}))
        .collect();
    let n = orders.len();
    assert!(n > 300, "{n} orders");
    let (tmp, data) = store(events);
    let file = tmp.path().join("orders.ndjson");
    std::fs::write(&file, orders.iter().map(|o| format!("{o}\n")).collect::<String>()).expect("write");
    let env = report_env(&data, at_day(70, 0));
    let (model, _) =
        footfall::predict::fit(&env, &SiteId::parse("shop").expect("id"), &Default::default()).await.expect("fit");
    assert_eq!(model.orders as usize, n);

    // footfall keeps a pair in 2 orders or more (and 0.1% of them): mlxtend's apriori at the
    // same support, every 2-item rule.
    let min_support = (2.0 / n as f64).max(0.001) - 1e-12;
    let script = r#"
import json, sys, pandas as pd
from mlxtend.preprocessing import TransactionEncoder
from mlxtend.frequent_patterns import apriori, association_rules
baskets = [sorted(set(json.loads(l)["items"])) for l in open(sys.argv[1])]
te = TransactionEncoder()
df = pd.DataFrame(te.fit(baskets).transform(baskets), columns=te.columns_)
fi = apriori(df, min_support=float(sys.argv[2]), use_colnames=True, max_len=2)
rules = association_rules(fi, num_itemsets=len(df), metric="confidence", min_threshold=0.0)
print(json.dumps([[next(iter(r.antecedents)), next(iter(r.consequents)), r.support, r.confidence, r.lift] for r in rules.itertuples()]))
"#;
    let theirs: Vec<(String, String, f64, f64, f64)> =
        serde_json::from_str(&run_python(script, &[file.to_str().expect("path"), &min_support.to_string()]))
            .expect("mlxtend");
    assert!(theirs.len() >= 10, "{theirs:?}");
    let mut ours: Vec<(String, String, f64, f64, f64)> = model
        .bought_together
        .iter()
        .map(|p| (p.product.clone(), p.other.clone(), p.support, p.confidence, p.lift))
        .collect();
    let mut theirs = theirs;
    ours.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    theirs.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    assert_eq!(
        ours.iter().map(|r| (&r.0, &r.1)).collect::<Vec<_>>(),
        theirs.iter().map(|r| (&r.0, &r.1)).collect::<Vec<_>>()
    );
    for (o, t) in ours.iter().zip(&theirs) {
        assert!((o.2 - t.2).abs() < 1e-12 && (o.3 - t.3).abs() < 1e-12 && (o.4 - t.4).abs() < 1e-9, "{o:?} vs {t:?}");
    }
    // The planted pair is found: a red mug's buyers mostly take green tea.
    let mug = model.bought_together.iter().find(|p| p.product == "mug-red").expect("mug-red's rules");
    assert_eq!(mug.other, "tea-green");
    assert!(mug.confidence > 0.5 && mug.lift > 2.0, "{mug:?}");
}

#[tokio::test]
async fn predictions_through_the_server() {
    const ADMIN: &str = "admin-key-for-tests-0018";
    let (tmp, data) = store(shop(300, 5));
    let sites = footfall::sites::Sites::open(&data.sites_file()).expect("sites");
    let read = sites.add(SiteId::parse("shop").expect("id"), &["shop.example".into()]).expect("add").read_key;
    let other = sites.add(SiteId::parse("blog").expect("id"), &[]).expect("add").read_key;
    let mut opts = options(tmp.path());
    opts.admin_key = Some(ADMIN.into());
    opts.predict_interval = Some(std::time::Duration::from_secs(3600));
    let srv = TestServer::start(opts).await;
    let get = |path: String, key: String| {
        let r = srv.client.get(format!("{}{path}", srv.url)).bearer_auth(key);
        async move {
            let r = r.send().await.expect("send");
            let status = r.status();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    // The background fit at start-up; recommendations answer 404 until it lands.
    let mut tries = 0;
    let first = loop {
        let (st, v) = get("/api/sites/shop/recommendations?product=mug-red".into(), read.clone()).await;
        if st == StatusCode::OK {
            break v;
        }
        assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
        tries += 1;
        assert!(tries < 600, "no fit after 60 s");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(first["known"], true);
    let recs = first["recommendations"].as_array().expect("list");
    assert_eq!(recs.len(), 5);
    assert_eq!(
        (recs[0]["product"].as_str(), recs[0]["reason"].as_str()),
        (Some("tea-green"), Some("bought_together")),
        "{first}"
    );
    assert!(recs.iter().all(|r| r["product"] != "mug-red"));

    // A person: never what they bought in the last 90 days.
    let model = footfall::predict::load(&data, &SiteId::parse("shop").expect("id")).expect("saved fit");
    let people = footfall::predict::load_people(&data, &SiteId::parse("shop").expect("id")).expect("people");
    let buyer = people.iter().find(|p| p.bought_products.len() >= 2).expect("a buyer of two products");
    let (st, v) =
        get(format!("/api/sites/shop/recommendations?person={}&limit=8", buyer.person_id), read.clone()).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["known"], true);
    let ids: Vec<&str> =
        v["recommendations"].as_array().expect("list").iter().filter_map(|r| r["product"].as_str()).collect();
    assert_eq!(ids.len(), 8);
    assert!(
        ids.iter().all(|id| !buyer.bought_products.iter().any(|b| b == id)),
        "{ids:?} vs {:?}",
        buyer.bought_products
    );

    // Bad requests, other sites' keys, a share link's key.
    let (st, v) = get("/api/sites/shop/recommendations".into(), read.clone()).await;
    assert_eq!((st, v["error"]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("product")), "{v}");
    let (st, v) = get("/api/sites/shop/recommendations?product=x&limit=500".into(), read.clone()).await;
    assert_eq!((st, v["error"]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("limit")), "{v}");
    assert_eq!(
        get("/api/sites/shop/recommendations?product=mug-red".into(), other.clone()).await.0,
        StatusCode::FORBIDDEN
    );
    let (st, share) = {
        let r = srv
            .client
            .post(format!("{}/api/sites/shop/shares", srv.url))
            .bearer_auth(&read)
            .json(&json!({"name": "pages"}));
        let r = r.send().await.expect("send");
        (r.status(), r.json::<Value>().await.expect("json"))
    };
    assert_eq!(st, StatusCode::CREATED, "{share}");
    let share_key = share["key"].as_str().expect("key").to_owned();
    let (st, by_share) = get("/api/sites/shop/recommendations?product=mug-red".into(), share_key.clone()).await;
    assert_eq!((st, &by_share["recommendations"]), (StatusCode::OK, &first["recommendations"]));
    // From the shop's own pages (CORS preflight for the Authorization header).
    let pre = srv
        .client
        .request(reqwest::Method::OPTIONS, format!("{}/api/sites/shop/recommendations", srv.url))
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .expect("preflight");
    assert_eq!(
        pre.headers().get("access-control-allow-origin").and_then(|v| v.to_str().ok()),
        Some("https://shop.example")
    );

    // The reports read the same fit.
    let post = |path: &str, key: &str, body: Value| {
        let r = srv.client.post(format!("{}{path}", srv.url)).bearer_auth(key).json(&body);
        async move {
            let r = r.send().await.expect("send");
            (r.status(), r.text().await.expect("body"))
        }
    };
    let (st, text) = post("/api/reports/predictions", &read, json!({"site": "shop", "limit": 5})).await;
    assert_eq!(st, StatusCode::OK, "{text}");
    let r: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(r["fitted_now"], false);
    assert_eq!(r["model"]["fitted_at"].as_str(), Some(model.fitted_at.as_str()));
    let buyers = people.iter().filter(|p| p.orders > 0).count() as u64;
    assert_eq!(r["counts"]["buyers"].as_u64(), Some(buyers));
    assert_eq!(r["counts"]["people"].as_u64(), Some(people.len() as u64));
    assert!(r["model"]["customers"]["bgnbd"]["r"].as_f64().is_some(), "{r}");
    let auc = r["model"]["propensity"]["auc"].as_f64().expect("an AUC on the holdout");
    assert!((0.0..=1.0).contains(&auc));
    let likely = r["likely_buyers"].as_array().expect("list");
    assert_eq!(likely.len(), 5);
    let probs: Vec<f64> = likely.iter().filter_map(|p| p["purchase_probability"].as_f64()).collect();
    assert!(probs.windows(2).all(|w| w[0] >= w[1]), "{probs:?}");
    let at_risk: Vec<f64> =
        r["at_risk"].as_array().expect("list").iter().filter_map(|p| p["p_alive"].as_f64()).collect();
    assert!(at_risk.iter().all(|p| *p < 0.5), "{at_risk:?}");
    // A share link sees the figures and no one.
    let (st, text) = post("/api/reports/predictions", &share_key, json!({"site": "shop"})).await;
    let v: Value = serde_json::from_str(&text).expect("json");
    assert_eq!((st, &v["likely_buyers"], &v["counts"]["buyers"]), (StatusCode::OK, &json!([]), &json!(buyers)), "{v}");
    let (st, text) = post("/api/reports/affinities", &read, json!({"site": "shop", "product": "pot-iron"})).await;
    assert_eq!(st, StatusCode::OK, "{text}");
    let v: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["bought_together"][0]["other"], "cup-white", "{v}");

    // The `predictions` table: the site's rows only, for SQL and segments.
    let (st, text) =
        post("/api/sql", &read, json!({"sql": "SELECT count(*) AS n, count(DISTINCT site) AS sites FROM predictions"}))
            .await;
    assert_eq!(st, StatusCode::OK, "{text}");
    let v: Value = serde_json::from_str(&text).expect("json");
    assert_eq!((v[0]["n"].as_u64(), v[0]["sites"].as_u64()), (Some(people.len() as u64), Some(1)), "{v}");
    let scored: Vec<f64> = {
        let mut p: Vec<f64> = people.iter().filter_map(|p| p.purchase_probability).collect();
        p.sort_by(|a, b| b.total_cmp(a));
        p
    };
    // Top 10%: cume_dist ≤ 0.1 over the values, highest first (ties all in or all out).
    let want =
        scored.iter().filter(|v| scored.iter().filter(|w| w >= v).count() as f64 / scored.len() as f64 <= 0.1).count()
            as u64;
    assert!(want > 0);
    let (st, text) =
        post("/api/reports/segment", &read, json!({"site": "shop", "definition": "likely_to_buy", "limit": 1000}))
            .await;
    assert_eq!(st, StatusCode::OK, "{text}");
    let v: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["size"].as_u64(), Some(want), "{v}");
    let (st, text) = post(
        "/api/reports/segment",
        &read,
        json!({"site": "shop", "definition": {"type": "predicted", "column": "p_alive", "at_most": 0.3}, "limit": 1000}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{text}");
    let v: Value = serde_json::from_str(&text).expect("json");
    let low = people.iter().filter(|p| p.p_alive.is_some_and(|a| a <= 0.3)).count() as u64;
    assert_eq!(v["size"].as_u64(), Some(low));
    assert!(v["members"].as_array().expect("list").iter().all(|m| m["p_alive"].as_f64().is_some_and(|a| a <= 0.3)));
    let (st, csv) =
        post("/api/segments/members.csv", &read, json!({"site": "shop", "definition": "at_risk_of_churn"})).await;
    assert_eq!(st, StatusCode::OK, "{csv}");
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some(
            "person_id,user_id,first_seen,last_seen,orders,revenue,last_viewed_products,purchase_probability,p_alive,predicted_value"
        )
    );
    let at_risk_people = people.iter().filter(|p| p.orders > 0 && p.p_alive.is_some_and(|a| a < 0.5)).count();
    assert_eq!(lines.clone().count(), at_risk_people);
    for l in lines {
        let p_alive: f64 = l.split(',').nth(8).and_then(|v| v.parse().ok()).expect("p_alive");
        assert!(p_alive < 0.5, "{l}");
    }
    srv.shutdown().await;
}
