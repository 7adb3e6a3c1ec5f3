//! The experiment report on a fixture whose figures are worked out by hand.

use footfall::model::Event;
use footfall::reports::experiment::{ExperimentRequest, ExperimentResponse, experiment};
use footfall::reports::{Error, parse_request};
use footfall::store::paths::DataDir;
use serde_json::{Value, json};

fn at(day: u32, hh: u32) -> i64 {
    chrono::NaiveDate::from_ymd_opt(2026, 1, day)
        .and_then(|d| d.and_hms_opt(hh, 0, 0))
        .expect("time")
        .and_utc()
        .timestamp_micros()
}

/// | person | events |
/// |---|---|
/// | v1 | Jan 5 10:00 exposed to control; 11:00 purchase 20 |
/// | v2 | Jan 5 12:00 exposed to control |
/// | v3 | Jan 5 09:00 purchase 50 (before its exposure); 10:00 exposed to green; Jan 6 09:00 purchase 30 |
/// | v4 | Jan 6 10:00 exposed to green; Jan 8 10:00 purchase 40 (48 h later) |
/// | v5 | Jan 6 11:00 exposed to green; 12:00 purchase 10; 13:00 refund 10 |
/// | v6 | Jan 6 exposed to control and to green (mixed) |
/// | v7 | Jan 6 exposed to green of another experiment |
/// | v8 | Jan 4 exposed to control (before the range) |
fn fixture() -> (tempfile::TempDir, DataDir) {
    let exp = |v: &str, t: i64, variant: &str, name: &str| {
        (v.to_owned(), t, "$exposure", Some((name.to_owned(), variant.to_owned())), None)
    };
    let buy = |v: &str, t: i64, name: &'static str, r: f64| (v.to_owned(), t, name, None, Some(r));
    let evs = vec![
        exp("v1", at(5, 10), "control", "button"),
        buy("v1", at(5, 11), "purchase", 20.0),
        exp("v2", at(5, 12), "control", "button"),
        buy("v3", at(5, 9), "purchase", 50.0),
        exp("v3", at(5, 10), "green", "button"),
        buy("v3", at(6, 9), "purchase", 30.0),
        exp("v4", at(6, 10), "green", "button"),
        buy("v4", at(8, 10), "purchase", 40.0),
        exp("v5", at(6, 11), "green", "button"),
        buy("v5", at(6, 12), "purchase", 10.0),
        buy("v5", at(6, 13), "refund", 10.0),
        exp("v6", at(6, 10), "control", "button"),
        exp("v6", at(6, 11), "green", "button"),
        exp("v7", at(6, 10), "green", "banner"),
        exp("v8", at(4, 10), "control", "button"),
    ];
    let events: Vec<Event> = evs
        .into_iter()
        .enumerate()
        .map(|(i, (v, t, name, props, revenue))| {
            let mut e = Event {
                event_id: format!("ev-{i:03}"),
                site: "shop".into(),
                ts: t,
                name: name.into(),
                session_id: format!("{v}-s"),
                visitor_id: v,
                revenue,
                ..Event::default()
            };
            if let Some((experiment, variant)) = props {
                e.props.insert("experiment".into(), experiment);
                e.props.insert("variant".into(), variant);
            }
            e
        })
        .collect();
    crate::support::store(events)
}

async fn run(data: &DataDir, body: Value) -> Result<ExperimentResponse, Error> {
    let env = crate::support::report_env(data, at(20, 0));
    let req: ExperimentRequest = parse_request(body.to_string().as_bytes())?;
    experiment(&env, &req).await
}

/// variant, people, converted, revenue, orders, average order value, revenue per person.
type Row = (String, u64, u64, f64, u64, Option<f64>, f64);

fn body(extra: Value) -> Value {
    let mut v =
        json!({"site": "shop", "date_range": {"from": "2026-01-05", "to": "2026-01-07"}, "experiment": "button"});
    for (k, x) in extra.as_object().expect("object") {
        v[k] = x.clone();
    }
    v
}

#[tokio::test]
async fn exposures_conversions_and_revenue_per_variant() {
    let (_tmp, data) = fixture();
    let r = run(&data, body(json!({"window": {"value": 1, "unit": "day"}}))).await.expect("report");
    // v6 saw both variants: left out. v7 is another experiment, v8 before the range.
    assert_eq!(r.mixed_people, 1);
    let got: Vec<Row> = r
        .variants
        .iter()
        .map(|v| {
            (v.variant.clone(), v.people, v.converted, v.revenue, v.orders, v.average_order_value, v.revenue_per_person)
        })
        .collect();
    // control: v1 (bought 20 an hour after), v2 (nothing) → 1 of 2, revenue 20, one order.
    // green: v3 (30 within 23 h; the 50 before exposure does not count), v4 (bought 48 h later:
    // outside a 1-day window), v5 (10 bought, 10 refunded: converted, revenue 0, one order of 10)
    // → 2 of 3, revenue 30, orders 30 and 10, AOV 20, revenue per person 10.
    assert_eq!(
        got,
        vec![("control".into(), 2, 1, 20.0, 1, Some(20.0), 10.0), ("green".into(), 3, 2, 30.0, 2, Some(20.0), 10.0)]
    );
    assert_eq!(r.variants[0].conversion_rate, 50.0);
    assert_eq!(r.variants[1].conversion_rate, 66.67);
    // +16.67 points, +33.33% relative; far from significant with 5 people.
    let lift = r.variants[1].lift_relative.as_ref().expect("lift");
    assert_eq!((lift.difference, lift.significant), (33.33, false));
    assert!(r.variants[0].lift_points.is_none() && r.variants[0].probability_to_beat_control.is_none());
    assert!(r.verdict.starts_with("No clear winner yet: green is at +33.3% conversion"), "{}", r.verdict);

    // With the default 14-day window, v4's purchase counts: 3 of 3, revenue 70, 3 orders.
    let r = run(&data, body(json!({}))).await.expect("report");
    let green = &r.variants[1];
    assert_eq!((green.converted, green.revenue, green.orders), (3, 70.0, 3));
    assert_eq!(r.window_seconds, 14 * 86_400);
    // The SQL binds the experiment name.
    assert!(r.sql[0].params.contains(&"button".to_owned()) && !r.sql[0].sql.contains("'button'"));
}

#[tokio::test]
async fn bad_experiment_requests_name_the_field() {
    let (_tmp, data) = fixture();
    for (extra, field) in [
        (json!({"experiment": ""}), "experiment"),
        (json!({"mde": 0}), "mde"),
        (json!({"power": 1.5}), "power"),
        (json!({"window": {"value": 100, "unit": "day"}}), "window"),
        (json!({"split": {"control": -1}}), "split.control"),
    ] {
        match run(&data, body(extra)).await {
            Err(Error::Invalid { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn experiment_over_http() {
    use footfall::model::SiteId;
    use footfall::sites::Sites;
    let (tmp, data) = fixture();
    let keys =
        Sites::open(&data.sites_file()).expect("sites").add(SiteId::parse("shop").expect("id"), &[]).expect("add");
    let srv = crate::support::TestServer::start(crate::support::options(tmp.path())).await;
    let url = format!("{}/api/reports/experiment", srv.url);
    let r = srv.client.post(&url).bearer_auth(&keys.read_key).json(&body(json!({}))).send().await.expect("send");
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["variants"][1]["converted"], 3);
    assert!(v["verdict"].as_str().is_some_and(|s| !s.is_empty()));
    let r =
        srv.client.post(&url).bearer_auth(&keys.read_key).json(&body(json!({"alpha": 2}))).send().await.expect("send");
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.expect("json")["error"]["field"], "alpha");
    srv.shutdown().await;
}
