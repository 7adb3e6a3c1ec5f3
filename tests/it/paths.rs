//! The paths report on a fixture worked out by hand.

use footfall::model::Event;
use footfall::reports::parse_request;
use footfall::reports::paths::{PathNode, PathsRequest, paths};
use footfall::store::paths::DataDir;
use serde_json::{Value, json};

/// Sessions on Jan 5 (one event a minute):
/// s1: / → /a → /a (reload) → product_view → /b; s2: / → /a → $engagement → /c; s3: /;
/// s4: /x → / → /b; s5: /a (never on /).
fn fixture() -> (tempfile::TempDir, DataDir) {
    let sessions: [(&str, &[&str]); 5] = [
        ("s1", &["/", "/a", "/a", "product_view", "/b"]),
        ("s2", &["/", "/a", "$engagement", "/c"]),
        ("s3", &["/"]),
        ("s4", &["/x", "/", "/b"]),
        ("s5", &["/a"]),
    ];
    let mut events = Vec::new();
    for (s, steps) in sessions {
        for (i, step) in steps.iter().enumerate() {
            let page = step.starts_with('/');
            events.push(Event {
                event_id: format!("{s}-{i}"),
                site: "shop".into(),
                ts: chrono::NaiveDate::from_ymd_opt(2026, 1, 5)
                    .and_then(|d| d.and_hms_opt(10, i as u32, 0))
                    .expect("time")
                    .and_utc()
                    .timestamp_micros(),
                name: if page { "pageview".into() } else { (*step).into() },
                path: page.then(|| (*step).into()),
                visitor_id: format!("v-{s}"),
                session_id: s.into(),
                ..Event::default()
            });
        }
    }
    crate::support::store(events)
}

fn tree(n: &PathNode) -> Value {
    let kids: Vec<Value> = n.children.iter().map(tree).collect();
    if kids.is_empty() { json!([n.label, n.sessions]) } else { json!([n.label, n.sessions, kids]) }
}

#[tokio::test]
async fn next_and_previous_steps_from_the_home_page() {
    let (_tmp, data) = fixture();
    let env = crate::support::report_env(&data, 0);
    let run = |extra: Value| {
        let mut body = json!({"site": "shop", "date_range": {"from": "2026-01-05", "to": "2026-01-05"},
                              "start": {"event": "pageview", "filters": [{"dimension": "page", "values": ["/"]}]}, "steps": 2});
        for (k, x) in extra.as_object().expect("object") {
            body[k] = x.clone();
        }
        let req: PathsRequest = parse_request(body.to_string().as_bytes()).expect("request");
        let env = &env;
        async move { paths(env, &req).await.expect("paths") }
    };
    // After "/": s1 /a, product_view (the reload merged); s2 /a, /c ($engagement skipped);
    // s3 ends; s4 /b then ends. s5 never saw "/".
    let r = run(json!({})).await;
    assert_eq!(
        tree(&r.root),
        json!(["pageview", 4, [["/a", 2, [["/c", 1], ["product_view", 1]]], ["(end)", 1], ["/b", 1, [["(end)", 1]]]]])
    );
    // One branch per level: the rest merged into (other), not followed.
    let r = run(json!({"branches": 1})).await;
    assert_eq!(tree(&r.root), json!(["pageview", 4, [["/a", 2, [["/c", 1], ["(other)", 1]]], ["(other)", 2]]]));
    // Before "/": only s4 came from somewhere (/x).
    let r = run(json!({"direction": "previous", "steps": 1})).await;
    assert_eq!(tree(&r.root), json!(["pageview", 4, [["(end)", 3], ["/x", 1]]]));
    // By event name every page is "pageview", and pageviews in a row (the anchor included) are
    // one step: s1 goes on to product_view then pageview; s2, s3 and s4 never leave "pageview".
    let r = run(json!({"by": "event"})).await;
    assert_eq!(tree(&r.root), json!(["pageview", 4, [["(end)", 3], ["product_view", 1, [["pageview", 1]]]]]));
}
