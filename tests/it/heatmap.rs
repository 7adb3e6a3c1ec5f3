//! The heatmap report on `$click`, `pageview` and `$engagement` events worked out by hand: clicks
//! per page and element, the grid, views and their depth (a view's engagement reports are the ones
//! before the session's next view of the page), the device classes, filters, a segment. The add-on
//! itself and the whole path from a browser are tested in tracker-js (`test/unit.test.mjs`,
//! `test/heatmap.test.mjs`, run from `tracker.rs`).

use footfall::model::Event;
use footfall::reports::heatmap::{HeatmapRequest, heatmap};
use footfall::reports::parse_request;
use serde_json::{Value, json};

/// Jan 5, 2026, minutes from 10:00.
fn t(m: i64) -> i64 {
    1_767_607_200_000_000 + m * 60_000_000
}

/// (session, device, country, minute, name, path, props)
type Row = (
    &'static str,
    &'static str,
    &'static str,
    i64,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

const ROWS: [Row; 17] = [
    // s1, a desktop in Germany: /p (three clicks, two engagement reports), /q, /p again.
    ("s1", "Desktop", "DE", 0, "pageview", "/p", &[]),
    (
        "s1",
        "Desktop",
        "DE",
        1,
        "$click",
        "/p",
        &[("selector", "#a"), ("x", "0.12"), ("y", "30"), ("vw", "desktop"), ("ex", "0.2"), ("ey", "0.4")],
    ),
    (
        "s1",
        "Desktop",
        "DE",
        2,
        "$click",
        "/p",
        &[
            ("selector", "#a"),
            ("x", "0.13"),
            ("y", "49"),
            ("vw", "desktop"),
            ("ex", "0.4"),
            ("ey", "0.6"),
            ("rage", "true"),
        ],
    ),
    (
        "s1",
        "Desktop",
        "DE",
        3,
        "$click",
        "/p",
        &[("selector", "#b"), ("x", "0.99"), ("y", "1000"), ("vw", "desktop"), ("dead", "true")],
    ),
    ("s1", "Desktop", "DE", 4, "$engagement", "/p", &[("scroll", "40"), ("seconds", "5")]),
    ("s1", "Desktop", "DE", 5, "$engagement", "/p", &[("scroll", "70"), ("seconds", "5")]),
    ("s1", "Desktop", "DE", 6, "pageview", "/q", &[]),
    ("s1", "Desktop", "DE", 7, "$click", "/q", &[("selector", "#c"), ("x", "0.5"), ("y", "10"), ("vw", "desktop")]),
    ("s1", "Desktop", "DE", 8, "$engagement", "/q", &[("scroll", "90"), ("seconds", "5")]),
    ("s1", "Desktop", "DE", 9, "pageview", "/p", &[]),
    ("s1", "Desktop", "DE", 10, "$engagement", "/p", &[("scroll", "120"), ("seconds", "5")]),
    // s2, a phone in France: /p, one click, left within a second (no engagement report).
    ("s2", "Mobile", "FR", 0, "pageview", "/p", &[]),
    (
        "s2",
        "Mobile",
        "FR",
        1,
        "$click",
        "/p",
        &[("selector", "#a"), ("x", "0.5"), ("y", "900"), ("vw", "mobile"), ("ex", "0.9"), ("ey", "0.5")],
    ),
    // s3, a desktop in France: /p read to 10%.
    ("s3", "Desktop", "FR", 0, "pageview", "/p", &[]),
    ("s3", "Desktop", "FR", 1, "$engagement", "/p", &[("scroll", "10"), ("seconds", "5")]),
    ("s3", "Desktop", "FR", 2, "purchase", "/thanks", &[]),
    // Another day, outside the range.
    (
        "s3",
        "Desktop",
        "FR",
        60 * 24,
        "$click",
        "/p",
        &[("selector", "#a"), ("x", "0.5"), ("y", "10"), ("vw", "desktop")],
    ),
];

fn store() -> (tempfile::TempDir, footfall::store::paths::DataDir) {
    let events = ROWS
        .iter()
        .enumerate()
        .map(|(i, (session, device, country, m, name, path, props))| Event {
            event_id: format!("e{i:02}"),
            site: "shop".into(),
            ts: t(*m),
            name: (*name).into(),
            visitor_id: format!("v-{session}"),
            session_id: (*session).into(),
            path: Some((*path).into()),
            device: Some((*device).into()),
            country: Some((*country).into()),
            props: props.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            ..Event::default()
        })
        .collect();
    crate::support::store(events)
}

async fn run(env: &footfall::reports::Env, extra: Value) -> Value {
    let mut body = json!({"site": "shop", "date_range": {"from": "2026-01-05", "to": "2026-01-05"}});
    for (k, v) in extra.as_object().expect("object") {
        body[k] = v.clone();
    }
    let req: HeatmapRequest = parse_request(body.to_string().as_bytes()).expect("request");
    let mut r = serde_json::to_value(heatmap(env, &req).await.expect("report")).expect("json");
    r.as_object_mut().expect("object").remove("sql");
    r
}

fn bands(shares: [(u64, f64); 10]) -> Value {
    Value::Array(
        shares
            .iter()
            .zip(1..)
            .map(|((views, share), d)| json!({"depth": d * 10, "views": views, "share": share}))
            .collect(),
    )
}

#[tokio::test]
async fn clicks_grid_and_scroll_map_by_hand() {
    let (_tmp, data) = store();
    let env = crate::support::report_env(&data, 0);

    // No page named: the page with the most clicks.
    let r = run(&env, json!({})).await;
    assert_eq!(r["page"], "/p");
    assert_eq!(
        r["pages"],
        json!([{"page": "/p", "clicks": 4, "rage_clicks": 1, "dead_clicks": 1},
               {"page": "/q", "clicks": 1, "rage_clicks": 0, "dead_clicks": 0}])
    );
    assert_eq!(r["totals"], json!({"clicks": 4, "rage_clicks": 1, "dead_clicks": 1}));
    // #a: 3 of 4 clicks, mean position ((0.2 + 0.4 + 0.9) / 3, (0.4 + 0.6 + 0.5) / 3).
    assert_eq!(
        r["elements"],
        json!([{"selector": "#a", "clicks": 3, "rage_clicks": 1, "dead_clicks": 0, "share": 75.0, "avg_x": 0.5, "avg_y": 0.5},
               {"selector": "#b", "clicks": 1, "rage_clicks": 0, "dead_clicks": 1, "share": 25.0, "avg_x": 0.0, "avg_y": 0.0}])
    );
    // 20 columns, 50 px rows: 0.12 and 0.13 of the width are column 2, 30 and 49 px row 0;
    // 0.99 is column 19, 1,000 px row 20; 0.5 column 10, 900 px row 18.
    assert_eq!(
        r["grid"],
        json!({"columns": 20, "row_height": 50, "max": 2, "cells": [
            {"column": 2, "row": 0, "clicks": 2}, {"column": 10, "row": 18, "clicks": 1}, {"column": 19, "row": 20, "clicks": 1}]})
    );
    // Views of /p: s1's first (deepest 70 of its two reports), s1's second (120, capped to 100),
    // s2's (no report), s3's (10).
    assert_eq!(
        r["scroll"],
        json!({"views": 4, "measured": 3, "avg_depth": 60.0, "bands": bands([
            (3, 75.0), (2, 50.0), (2, 50.0), (2, 50.0), (2, 50.0), (2, 50.0), (2, 50.0), (1, 25.0), (1, 25.0), (1, 25.0)])})
    );

    // A coarser grid.
    let r = run(&env, json!({"page": "/p", "columns": 2, "row_height": 1000})).await;
    assert_eq!(
        r["grid"]["cells"],
        json!([{"column": 0, "row": 0, "clicks": 2}, {"column": 1, "row": 0, "clicks": 1}, {"column": 1, "row": 1, "clicks": 1}])
    );

    // Phones: the click of s2's viewport; the views of phone browsers (s2's, unmeasured).
    let r = run(&env, json!({"page": "/p", "device": "mobile"})).await;
    assert_eq!(r["totals"], json!({"clicks": 1, "rage_clicks": 0, "dead_clicks": 0}));
    assert_eq!(r["pages"], json!([{"page": "/p", "clicks": 1, "rage_clicks": 0, "dead_clicks": 0}]));
    assert_eq!((r["scroll"]["views"].clone(), r["scroll"]["measured"].clone()), (json!(1), json!(0)));
    let r = run(&env, json!({"page": "/p", "device": "desktop"})).await;
    assert_eq!(r["totals"]["clicks"], 3);
    assert_eq!((r["scroll"]["views"].clone(), r["scroll"]["measured"].clone()), (json!(3), json!(3)));

    // A filter applies to clicks and views alike: France is s2 and s3.
    let r = run(&env, json!({"page": "/p", "filters": [{"dimension": "country", "op": "is", "values": ["FR"]}]})).await;
    assert_eq!(r["totals"]["clicks"], 1);
    assert_eq!(r["scroll"]["views"], 2);
    assert_eq!(r["scroll"]["bands"][0], json!({"depth": 10, "views": 1, "share": 50.0}));

    // /q: one view read to 90%.
    let r = run(&env, json!({"page": "/q"})).await;
    assert_eq!((r["totals"]["clicks"].clone(), r["scroll"]["views"].clone()), (json!(1), json!(1)));
    assert_eq!(r["scroll"]["bands"][8], json!({"depth": 90, "views": 1, "share": 100.0}));

    // A segment: people with an order (s3's visitor): no click on /p that day, one view read to 10%.
    let later = crate::support::report_env(&data, t(60 * 48));
    let r = run(&later, json!({"page": "/p", "segment": {"type": "orders", "at_least": 1}})).await;
    let got =
        [&r["totals"]["clicks"], &r["scroll"]["views"], &r["scroll"]["measured"], &r["scroll"]["bands"][0]["share"]];
    assert_eq!(got, [&json!(0), &json!(1), &json!(1), &json!(100.0)]);

    // A page nobody visited: zeros, not an error.
    let r = run(&env, json!({"page": "/nothing"})).await;
    assert_eq!(
        (r["totals"]["clicks"].clone(), r["elements"].clone(), r["scroll"]["views"].clone()),
        (json!(0), json!([]), json!(0))
    );
}

#[tokio::test]
async fn a_bad_request_names_its_field() {
    let (_tmp, data) = store();
    let env = crate::support::report_env(&data, 0);
    for (extra, field) in [
        (json!({"device": "watch"}), "device"),
        (json!({"columns": 101}), "columns"),
        (json!({"row_height": 2000}), "row_height"),
        (json!({"limit": 0}), "limit"),
        (json!({"page": ""}), "page"),
    ] {
        let mut body = json!({"site": "shop", "date_range": {"from": "2026-01-05", "to": "2026-01-05"}});
        for (k, v) in extra.as_object().expect("object") {
            body[k] = v.clone();
        }
        let req: HeatmapRequest = parse_request(body.to_string().as_bytes()).expect("parses");
        match heatmap(&env, &req).await {
            Err(footfall::reports::Error::Invalid { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{extra}: {:?}", other.map(|_| ())),
        }
    }
}
