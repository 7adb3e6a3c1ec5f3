//! Crash safety: `kill -9` the collector mid-load; every event that got a 202 must be
//! stored exactly once after restart.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use crate::support::{Child, column, stored};

const CLIENTS: usize = 4;
const ROUNDS: usize = 3;

/// Start `footfall serve` on a free port, flushing often.
fn spawn(data: &Path) -> Child {
    Child::spawn(data, &["--fsync", "batch", "--flush-interval", "0.3"], None)
}

/// Send batches from several clients until the server dies; return the ids that got 202.
async fn load_until_killed(round: usize, mut child: Child, kill_after: Duration) -> Vec<String> {
    let acked = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let (url, acked) = (child.url.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("client");
            for n in 0.. {
                let size = 1 + (n % 5);
                let ids: Vec<String> = (0..size).map(|k| format!("r{round}-c{c}-n{n}-k{k}")).collect();
                let body: Vec<_> = ids
                    .iter()
                    .map(|id| json!({"event_id": id, "site": "default", "name": "add_to_cart", "props": {"n": n}}))
                    .collect();
                match client.post(format!("{url}/api/event")).json(&body).send().await {
                    Ok(r) if r.status() == reqwest::StatusCode::ACCEPTED => acked.lock().expect("lock").extend(ids),
                    Ok(r) => panic!("unexpected status {}", r.status()),
                    Err(_) => return,
                }
            }
        }));
    }
    tokio::time::sleep(kill_after).await;
    child.child.kill().expect("kill -9");
    child.child.wait().expect("reap");
    for t in tasks {
        t.await.expect("client task");
    }

    acked.lock().expect("lock").clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_event_survives_kill_9_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut acked = Vec::new();
    for round in 0..ROUNDS {
        let ids = load_until_killed(round, spawn(dir.path()), Duration::from_millis(700 + 400 * round as u64)).await;
        assert!(ids.len() > 20, "round {round}: only {} events acknowledged before the kill", ids.len());
        acked.extend(ids);
    }
    // Restart: replay the WAL, then stop gracefully so everything is flushed.
    let mut child = spawn(dir.path());
    let status = Command::new("kill").args(["-TERM", &child.child.id().to_string()]).status().expect("kill -TERM");
    assert!(status.success());
    assert!(child.child.wait().expect("graceful exit").success());

    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for id in column(&stored(dir.path()), "event_id").into_iter().flatten() {
        *counts.entry(id).or_default() += 1;
    }
    let missing: Vec<_> = acked.iter().filter(|id| !counts.contains_key(*id)).collect();
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    println!(
        "crash test: {} acknowledged over {ROUNDS} kill -9 rounds, {} stored, {} missing, {} duplicated",
        acked.len(),
        counts.len(),
        missing.len(),
        twice.len()
    );
    assert!(missing.is_empty(), "acknowledged but lost: {:?}", &missing[..missing.len().min(10)]);
    assert!(twice.is_empty(), "stored more than once: {:?}", &twice[..twice.len().min(10)]);
    let unique: BTreeSet<_> = acked.iter().collect();
    assert_eq!(unique.len(), acked.len());
    assert!(
        std::fs::read_dir(dir.path().join("wal")).expect("wal dir").count() <= 1,
        "the WAL was emptied by the final flush"
    );
}
