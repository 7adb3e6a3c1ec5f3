//! The e-commerce report on a fixture worked out by hand.

use footfall::model::{Event, Item};
use footfall::reports::ecommerce::{EcommerceRequest, ecommerce};
use footfall::reports::parse_request;
use footfall::store::paths::DataDir;
use serde_json::{Value, json};

fn at(day: u32, hh: u32) -> i64 {
    chrono::NaiveDate::from_ymd_opt(2026, 1, day)
        .and_then(|d| d.and_hms_opt(hh, 0, 0))
        .expect("time")
        .and_utc()
        .timestamp_micros()
}

fn item(id: &str, price: f64, quantity: i64) -> Item {
    let category = if id.starts_with("mug") { "mugs" } else { "teapots" };
    Item {
        id: id.into(),
        name: Some(id.to_uppercase()),
        category: Some(category.into()),
        price: Some(price),
        quantity: Some(quantity),
    }
}

/// | person (first channel) | session, day | events |
/// |---|---|---|
/// | v1 (Email) | a, Jan 5 | view mug-1 (10); cart mug-1 ×2; checkout; purchase 20 (mug-1 ×2) |
/// | v1 | b, Jan 6 | view pot-1 (30); purchase 30 (pot-1); refund 30 |
/// | v2 (Direct) | c, Jan 5 | view mug-1; cart mug-1 |
/// | v3 (Email) | d, Jan 6 | view pot-1; cart pot-1; checkout |
/// | v4 (Organic Search) | e, Jan 6 | pageview |
/// | v5 (Direct, first seen Jan 1) | f, Jan 5 | purchase 15 (mug-2, never viewed) |
fn fixture() -> (tempfile::TempDir, DataDir) {
    type Row = (&'static str, &'static str, i64, &'static str, Option<f64>, Vec<Item>);
    let rows: Vec<Row> = vec![
        ("v1", "a", at(5, 10), "product_view", None, vec![item("mug-1", 10.0, 1)]),
        ("v1", "a", at(5, 11), "add_to_cart", Some(20.0), vec![item("mug-1", 10.0, 2)]),
        ("v1", "a", at(5, 12), "checkout_start", Some(20.0), vec![item("mug-1", 10.0, 2)]),
        ("v1", "a", at(5, 13), "purchase", Some(20.0), vec![item("mug-1", 10.0, 2)]),
        ("v1", "b", at(6, 10), "product_view", None, vec![item("pot-1", 30.0, 1)]),
        ("v1", "b", at(6, 11), "purchase", Some(30.0), vec![item("pot-1", 30.0, 1)]),
        ("v1", "b", at(6, 12), "refund", Some(30.0), vec![]),
        ("v2", "c", at(5, 10), "product_view", None, vec![item("mug-1", 10.0, 1)]),
        ("v2", "c", at(5, 11), "add_to_cart", Some(10.0), vec![item("mug-1", 10.0, 1)]),
        ("v3", "d", at(6, 10), "product_view", None, vec![item("pot-1", 30.0, 1)]),
        ("v3", "d", at(6, 11), "add_to_cart", Some(30.0), vec![item("pot-1", 30.0, 1)]),
        ("v3", "d", at(6, 12), "checkout_start", Some(30.0), vec![item("pot-1", 30.0, 1)]),
        ("v4", "e", at(6, 10), "pageview", None, vec![]),
        ("v5", "z", at(1, 10), "pageview", None, vec![]),
        ("v5", "f", at(5, 10), "purchase", Some(15.0), vec![item("mug-2", 15.0, 1)]),
    ];
    let channel = |v: &str| match v {
        "v1" | "v3" => "Email",
        "v4" => "Organic Search",
        _ => "Direct",
    };
    let events = rows
        .into_iter()
        .enumerate()
        .map(|(i, (v, s, ts, name, revenue, items))| Event {
            event_id: format!("ev-{i:03}"),
            site: "shop".into(),
            ts,
            name: name.into(),
            visitor_id: v.into(),
            session_id: s.into(),
            channel: Some(channel(v).into()),
            revenue,
            items,
            ..Event::default()
        })
        .collect();
    crate::support::store(events)
}

#[tokio::test]
async fn every_shop_metric_by_hand() {
    let (_tmp, data) = fixture();
    let env = crate::support::report_env(&data, at(20, 0));
    let req: EcommerceRequest = parse_request(
        json!({"site": "shop", "date_range": {"from": "2026-01-05", "to": "2026-01-06"}}).to_string().as_bytes(),
    )
    .expect("request");
    let r = ecommerce(&env, &req).await.expect("report");
    let mut v = serde_json::to_value(&r).expect("json");
    v.as_object_mut().expect("object").remove("sql");
    // Gross 20 + 30 + 15 = 65, refunds 30; 3 orders, AOV 21.67. Sessions a b c d e f, buying
    // a b f (50%); people v1–v5, buyers v1 v5 (40%). Carts in a c d, abandoned c d (66.67%);
    // checkouts a d, abandoned d (50%). v1 bought twice: 1 of 2 buyers repeat; 3 / 2 = 1.5.
    // Per person, carts by v1 v2 v3, abandoned by v2 v3 (66.67%); over their lifetimes the
    // buyers' orders are the same (v5's Jan 1 visit bought nothing): 1 repeat buyer.
    assert_eq!(
        v["totals"],
        json!({"revenue": 35.0, "gross_revenue": 65.0, "refunds": 30.0, "orders": 3, "average_order_value": 21.67,
               "sessions": 6, "people": 5, "buyers": 2, "purchase_conversion_rate_sessions": 50.0,
               "purchase_conversion_rate_people": 40.0, "cart_sessions": 3, "cart_abandonment_rate": 66.67,
               "checkout_sessions": 2, "checkout_abandonment_rate": 50.0, "cart_people": 3,
               "cart_abandonment_rate_people": 66.67, "repeat_buyers": 1, "repeat_purchase_rate": 50.0,
               "repeat_buyers_lifetime": 1, "repeat_purchase_rate_lifetime": 50.0, "purchase_frequency": 1.5})
    );
    // Acquired in the range: v1–v4 (v5 was first seen Jan 1). v1 spent 20 + 30 − 30 = 20.
    assert_eq!(
        v["ltv_by_cohort"],
        json!([{"key": "2026-01", "people": 4, "buyers": 1, "revenue": 20.0, "revenue_per_person": 5.0}])
    );
    assert_eq!(
        v["ltv_by_channel"],
        json!([
            {"key": "Email", "people": 2, "buyers": 1, "revenue": 20.0, "revenue_per_person": 10.0},
            {"key": "Direct", "people": 1, "buyers": 0, "revenue": 0.0, "revenue_per_person": 0.0},
            {"key": "Organic Search", "people": 1, "buyers": 0, "revenue": 0.0, "revenue_per_person": 0.0}
        ])
    );
    let row = |key: &str, name: Option<&str>, cat: Option<&str>, n: [u64; 6], revenue: f64, rate: Value| {
        json!({"key": key, "name": name, "category": cat, "views": n[0], "viewers": n[1], "add_to_carts": n[2],
               "units": n[3], "buyers": n[4], "revenue": revenue, "view_to_purchase_rate": rate, "viewed_not_bought": n[5]})
    };
    // pot-1: viewed by v1 v3, carted by v3, bought by v1 (30); mug-1: viewed by v1 v2, carted
    // twice, 2 units bought by v1 (20); mug-2: bought by v5 without a view.
    assert_eq!(
        v["products"],
        json!([
            row("pot-1", Some("POT-1"), Some("teapots"), [2, 2, 1, 1, 1, 1], 30.0, json!(50.0)),
            row("mug-1", Some("MUG-1"), Some("mugs"), [2, 2, 2, 2, 1, 1], 20.0, json!(50.0)),
            row("mug-2", Some("MUG-2"), Some("mugs"), [0, 0, 0, 1, 1, 0], 15.0, Value::Null)
        ])
    );
    // Mugs: views of mug-1 by v1 v2; units 2 + 1; buyers v1 v5; revenue 35; v2 viewed, never bought.
    assert_eq!(
        v["categories"],
        json!([
            row("mugs", None, None, [2, 2, 2, 3, 2, 1], 35.0, json!(100.0)),
            row("teapots", None, None, [2, 2, 1, 1, 1, 1], 30.0, json!(50.0))
        ])
    );
    let not_bought: Vec<&str> = r.viewed_not_bought.iter().filter_map(|p| p.key.as_deref()).collect();
    assert_eq!(not_bought, vec!["mug-1", "pot-1"]);
}

/// Repeat purchases over each buyer's lifetime and cart abandonment per person, where they
/// differ from the range's and the session's figures:
///
/// | person | events |
/// |---|---|
/// | p1 | purchase Jan 1 (before the range); purchase Jan 5 |
/// | p2 | purchase Jan 5; purchase Jan 6 |
/// | p3 | purchase Jan 6 |
/// | p4 | add_to_cart Jan 5 (one session); purchase Jan 6 (another) |
/// | p5 | add_to_cart Jan 6 |
#[tokio::test]
async fn repeat_purchases_over_a_lifetime_and_abandoned_carts_per_person() {
    let rows = [
        ("p1", at(1, 10), "purchase"),
        ("p1", at(5, 10), "purchase"),
        ("p2", at(5, 11), "purchase"),
        ("p2", at(6, 11), "purchase"),
        ("p3", at(6, 12), "purchase"),
        ("p4", at(5, 13), "add_to_cart"),
        ("p4", at(6, 13), "purchase"),
        ("p5", at(6, 14), "add_to_cart"),
    ];
    let events = rows
        .iter()
        .enumerate()
        .map(|(i, (v, ts, name))| Event {
            event_id: format!("ev-{i}"),
            site: "shop".into(),
            ts: *ts,
            name: (*name).into(),
            visitor_id: (*v).into(),
            session_id: format!("s-{i}"),
            revenue: (*name == "purchase").then_some(10.0),
            ..Event::default()
        })
        .collect();
    let (_tmp, data) = crate::support::store(events);
    let env = crate::support::report_env(&data, at(20, 0));
    let req: EcommerceRequest = parse_request(
        json!({"site": "shop", "date_range": {"from": "2026-01-05", "to": "2026-01-06"}}).to_string().as_bytes(),
    )
    .expect("request");
    let t = ecommerce(&env, &req).await.expect("report").totals;
    // Buyers in the range: p1 p2 p3 p4. Twice in the range: p2 (25%); twice ever: p1 and p2 (50%).
    assert_eq!((t.buyers, t.repeat_buyers, t.repeat_purchase_rate), (4, 1, 25.0));
    assert_eq!((t.repeat_buyers_lifetime, t.repeat_purchase_rate_lifetime), (2, 50.0));
    // Carts: p4's session and p5's, neither bought in its session (100%); per person p4 bought
    // later, p5 did not (50%).
    assert_eq!((t.cart_sessions, t.cart_abandonment_rate), (2, 100.0));
    assert_eq!((t.cart_people, t.cart_abandonment_rate_people), (2, 50.0));
}

/// Sessions at the range's edges (range Jan 5–6): one rule for e-commerce, paths and session
/// funnels: a session in the range is followed to its end, past midnight.
///
/// | person | session | events |
/// |---|---|---|
/// | p1 | s1 | pageview Jan 6 23:50; add_to_cart 23:55; purchase Jan 7 00:05 (the same session) |
/// | p2 | s2 | add_to_cart Jan 6 23:50 |
/// | p2 | s3 | purchase Jan 7 00:10 (a new session) |
#[tokio::test]
async fn a_session_under_way_at_the_ranges_end_is_followed_to_its_end_in_every_report() {
    let min = |day: u32, hh: u32, mm: u32| at(day, hh) + i64::from(mm) * 60_000_000;
    let rows = [
        ("p1", "s1", min(6, 23, 50), "pageview"),
        ("p1", "s1", min(6, 23, 55), "add_to_cart"),
        ("p1", "s1", min(7, 0, 5), "purchase"),
        ("p2", "s2", min(6, 23, 50), "add_to_cart"),
        ("p2", "s3", min(7, 0, 10), "purchase"),
    ];
    let events = rows
        .iter()
        .enumerate()
        .map(|(i, (v, s, ts, name))| Event {
            event_id: format!("ev-{i}"),
            site: "shop".into(),
            ts: *ts,
            name: (*name).into(),
            visitor_id: (*v).into(),
            session_id: (*s).into(),
            path: (*name == "pageview").then(|| "/cart".into()),
            revenue: (*name == "purchase").then_some(10.0),
            order_id: (*name == "purchase").then(|| format!("o-{i}")),
            ..Event::default()
        })
        .collect();
    let (_tmp, data) = crate::support::store(events);
    let env = crate::support::report_env(&data, at(20, 0));
    let range = json!({"from": "2026-01-05", "to": "2026-01-06"});
    // From session hours, and from events (a filter on the event name is not a session's).
    for filters in [json!([]), json!([{"dimension": "event", "op": "is_not", "values": ["nothing"]}])] {
        let req: EcommerceRequest =
            parse_request(json!({"site": "shop", "date_range": range, "filters": filters}).to_string().as_bytes())
                .expect("request");
        let t = ecommerce(&env, &req).await.expect("report").totals;
        // The orders fell on Jan 7: none in the range.
        assert_eq!((t.orders, t.revenue), (0, 0.0), "{filters}");
        // s1 bought after midnight, s2 did not buy in its session: one of two carts abandoned,
        // one of two sessions bought.
        assert_eq!((t.sessions, t.purchase_conversion_rate_sessions), (2, 50.0), "{filters}");
        assert_eq!((t.cart_sessions, t.cart_abandonment_rate), (2, 50.0), "{filters}");
        // Per person: p1 bought in the rest of s1; p2 bought in a session that began after the
        // range, so p2's cart is abandoned for the range.
        assert_eq!((t.cart_people, t.cart_abandonment_rate_people), (2, 50.0), "{filters}");
    }
    // Paths from the cart: s1 goes on to its purchase after midnight, s2 ends.
    let req: footfall::reports::paths::PathsRequest = parse_request(
        json!({"site": "shop", "date_range": range, "start": {"event": "add_to_cart"}, "steps": 1})
            .to_string()
            .as_bytes(),
    )
    .expect("request");
    let tree = footfall::reports::paths::paths(&env, &req).await.expect("paths");
    let kids: Vec<(String, u64)> = tree.root.children.iter().map(|n| (n.label.clone(), n.sessions)).collect();
    assert_eq!((tree.root.sessions, kids), (2, vec![("(end)".to_owned(), 1), ("purchase".to_owned(), 1)]));
    // Funnels: by session, s1 converts and s2 does not; by person, p2's later session counts.
    for (unit, want) in [("session", vec![2, 1]), ("person", vec![2, 2])] {
        let req: footfall::reports::funnel::FunnelRequest = parse_request(
            json!({"site": "shop", "date_range": range, "unit": unit, "window": {"value": 1, "unit": "hour"},
                   "steps": [{"event": "add_to_cart"}, {"event": "purchase"}]})
            .to_string()
            .as_bytes(),
        )
        .expect("request");
        let f = footfall::reports::funnel::funnel(&env, &req).await.expect("funnel");
        assert_eq!(f.steps.iter().map(|s| s.count).collect::<Vec<_>>(), want, "{unit}");
    }
}

/// The product and category filters (any of an event's items) on the fixture above.
#[tokio::test]
async fn product_and_category_filters_match_any_item_of_an_event() {
    let (_tmp, data) = fixture();
    let env = crate::support::report_env(&data, at(20, 0));
    let range = json!({"from": "2026-01-05", "to": "2026-01-06"});
    let run = |filters: Value| {
        let req: EcommerceRequest =
            parse_request(json!({"site": "shop", "date_range": range, "filters": filters}).to_string().as_bytes())
                .expect("request");
        let env = env.clone();
        async move { ecommerce(&env, &req).await.expect("report").totals }
    };
    // product is mug-1: v1's purchase of 20 (the only order holding mug-1); carts of v1, v2.
    let t = run(json!([{"dimension": "product", "values": ["mug-1"]}])).await;
    assert_eq!((t.orders, t.gross_revenue, t.cart_people), (1, 20.0, 2));
    // category is teapots: v1's purchase of pot-1 (30), refunds carry no items so none counted.
    let t = run(json!([{"dimension": "category", "values": ["teapots"]}])).await;
    assert_eq!((t.orders, t.gross_revenue, t.refunds), (1, 30.0, 0.0));
    // product is mug-1 or mug-2: 20 + 15.
    let t = run(json!([{"dimension": "product", "values": ["mug-1", "mug-2"]}])).await;
    assert_eq!((t.orders, t.gross_revenue), (2, 35.0));
    // product contains "mug": the same two orders; category is not mugs: pot-1's 30, and the
    // refund (no items: no mug either) of 30.
    let t = run(json!([{"dimension": "product", "op": "contains", "values": ["mug"]}])).await;
    assert_eq!((t.orders, t.gross_revenue), (2, 35.0));
    let t = run(json!([{"dimension": "category", "op": "is_not", "values": ["mugs"]}])).await;
    assert_eq!((t.orders, t.gross_revenue, t.refunds), (1, 30.0, 30.0));
    // The function under the filters, in SQL: events holding a mug (v1's view, cart, checkout and
    // purchase of mug-1; v2's view and cart; v5's purchase of mug-2), and a bad operator.
    let sql = |q: &str| {
        footfall::query::run_scoped_sql(&data, &footfall::query::Scope::All, q.to_owned(), Default::default())
    };
    let out = sql("SELECT count(*) AS n FROM events WHERE footfall_items_match(items, 'category', 'is', 'mugs')")
        .await
        .expect("query");
    let text = footfall::query::output::render(&out.batches, footfall::query::output::Format::Json).expect("json");
    assert_eq!(serde_json::from_str::<Value>(&text).expect("rows"), json!([{"n": 7}]));
    let err = sql("SELECT count(*) FROM events WHERE footfall_items_match(items, 'id', 'like', 'mug')")
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("unknown operator"), "{err}");
    // A product is no breakdown: 400 naming the field.
    let req: footfall::reports::trends::TrendsRequest =
        parse_request(json!({"site": "shop", "date_range": range, "breakdown": "product"}).to_string().as_bytes())
            .expect("request");
    let err = footfall::reports::trends::trends(&env, &req).await.expect_err("refused");
    assert!(
        matches!(&err, footfall::reports::Error::Invalid { field, message } if field == "breakdown" && message.contains("only filters")),
        "{err}"
    );
}

/// `sections` computes only the parts asked for; each part is the full report's.
#[tokio::test]
async fn sections_answer_the_full_reports_parts() {
    let (_tmp, data) = fixture();
    let env = crate::support::report_env(&data, at(20, 0));
    let run = |sections: Value| {
        let mut body = json!({"site": "shop", "date_range": {"from": "2026-01-05", "to": "2026-01-06"}});
        if !sections.is_null() {
            body["sections"] = sections;
        }
        let env = env.clone();
        async move {
            let req: EcommerceRequest = parse_request(body.to_string().as_bytes())?;
            ecommerce(&env, &req).await
        }
    };
    let full = run(Value::Null).await.expect("full");
    assert_eq!(full.sql.len(), 4);
    let totals = run(json!(["totals"])).await.expect("totals");
    assert_eq!((totals.totals.clone(), totals.sql.len()), (full.totals.clone(), 1));
    assert!(totals.products.is_empty() && totals.ltv_by_cohort.is_empty());
    let items = run(json!(["items"])).await.expect("items");
    assert_eq!(
        (items.products.clone(), items.categories.clone(), items.sql.len()),
        (full.products.clone(), full.categories.clone(), 2)
    );
    assert_eq!(items.totals.orders, 0);
    let ltv = run(json!(["ltv"])).await.expect("ltv");
    assert_eq!((ltv.ltv_by_channel.clone(), ltv.ltv_by_cohort.clone()), (full.ltv_by_channel, full.ltv_by_cohort));
    let err = run(json!([])).await.expect_err("none");
    assert!(matches!(&err, footfall::reports::Error::Invalid { field, .. } if field == "sections"), "{err}");
    assert!(run(json!(["everything"])).await.is_err());
}
