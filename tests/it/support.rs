//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{AsArray, RecordBatch};
use footfall::clock::SystemClock;
use footfall::ingest::{DntMode, Limits};
use footfall::server::{ConnectionLimits, Running, ServeOptions, start};
use footfall::store::parquet::read_file;
use footfall::wal::FsyncMode;

/// `../shared/data/<rel>` beside the repository.
pub(crate) fn shared(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data").join(rel)
}

/// Options for a test server on 127.0.0.1:0 over `data`, flushing quickly, no rate limits.
pub(crate) fn options(data: &Path) -> ServeOptions {
    ServeOptions {
        data: data.to_owned(),
        listen: "127.0.0.1:0".parse().expect("addr"),
        geoip: None,
        trust_proxy: false,
        fsync: FsyncMode::Batch,
        flush_interval: Duration::from_millis(200),
        flush_after_events: 100_000,
        wal_max_bytes: 1 << 30,
        compact_interval: Duration::from_secs(3600),
        limits: Limits { per_ip: 0, per_site: 0 },
        admin_key: None,
        metrics_key: None,
        dnt: DntMode::Drop,
        connections: ConnectionLimits::default(),
        query_timeout: Duration::from_secs(25),
        pg_listen: None,
        pg_tls: None,
        // Off: every test server would otherwise fit models at start (tests/it/predict.rs turns it on).
        predict_interval: None,
    }
}

/// A running in-process server.
pub(crate) struct TestServer {
    pub(crate) running: Option<Running>,
    pub(crate) url: String,
    pub(crate) client: reqwest::Client,
}

impl TestServer {
    pub(crate) async fn start(opts: ServeOptions) -> Self {
        let running = start(opts, Arc::new(SystemClock)).await.expect("server starts");
        let url = format!("http://{}", running.addr);
        Self { running: Some(running), url, client: reqwest::Client::new() }
    }

    pub(crate) fn post(&self, body: impl Into<reqwest::Body>) -> reqwest::RequestBuilder {
        self.client.post(format!("{}/api/event", self.url)).header("content-type", "text/plain").body(body.into())
    }

    pub(crate) async fn shutdown(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
    }
}

/// Every committed Parquet file under `data/events`.
pub(crate) fn parquet_files(data: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![data.join("events")];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet")
                && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))
            {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// All stored rows.
pub(crate) fn stored(data: &Path) -> Vec<RecordBatch> {
    parquet_files(data).iter().map(|p| read_file(p).expect("readable parquet")).collect()
}

/// The values of a text column over all batches (nulls as None).
pub(crate) fn column(batches: &[RecordBatch], name: &str) -> Vec<Option<String>> {
    batches
        .iter()
        .flat_map(|b| {
            b.column_by_name(name)
                .expect("column")
                .as_string::<i32>()
                .iter()
                .map(|v| v.map(str::to_owned))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Wait until `data` holds at least `rows` stored rows (the flusher runs every 200 ms in tests).
pub(crate) async fn wait_for_rows(data: &Path, rows: usize) -> Vec<RecordBatch> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let b = stored(data);
        if b.iter().map(RecordBatch::num_rows).sum::<usize>() >= rows || Instant::now() > deadline {
            return b;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every regular file under `dir`, recursively.
pub(crate) fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let p = e.path();
            if p.is_dir() { stack.push(p) } else { out.push(p) }
        }
    }
    out
}

/// A session with footfall's functions and a table `t` holding one batch per partition,
/// planned for `partitions` target partitions (so aggregates run partial + final).
pub(crate) fn partitioned(
    schema: arrow::datatypes::SchemaRef,
    batches: Vec<RecordBatch>,
    partitions: usize,
) -> datafusion::error::Result<datafusion::prelude::SessionContext> {
    use datafusion::prelude::{SessionConfig, SessionContext};
    let mut parts: Vec<Vec<RecordBatch>> = batches.into_iter().map(|b| vec![b]).collect();
    if parts.is_empty() {
        parts.push(vec![]);
    }
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(partitions.max(1)));
    footfall::query::udaf::register_functions(&ctx);
    ctx.register_table("t", Arc::new(datafusion::datasource::MemTable::try_new(schema, parts)?))?;
    Ok(ctx)
}

/// `v` shuffled by a xorshift generator seeded with `seed` (property tests: input order must
/// not matter).
pub(crate) fn shuffled<T: Clone>(v: &[T], seed: u64) -> Vec<T> {
    let mut out = v.to_vec();
    let mut x = seed | 1;
    for i in (1..out.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.swap(i, (x % (i as u64 + 1)) as usize);
    }
    out
}

/// `npm ci` in `dir` once per test run, when node_modules is missing or older than the lockfile.
pub(crate) fn npm_ci(dir: &Path) {
    static DONE: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    let mut done = DONE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if done.iter().any(|d| d == dir) {
        return;
    }
    let stamp = dir.join("node_modules/.package-lock.json");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if modified(&stamp).is_none() || modified(&stamp) < modified(&dir.join("package-lock.json")) {
        let out = std::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(dir)
            .output()
            .expect("npm runs (Node 20 and npm are needed for the JavaScript tests)");
        assert!(out.status.success(), "npm ci in {} failed:\n{}", dir.display(), String::from_utf8_lossy(&out.stderr));
    }
    done.push(dir.to_owned());
}

/// Run `node --test <file>` in `dir` (after `npm ci`), with `FOOTFALL_BIN` set to the binary
/// under test; fails with node's output.
pub(crate) fn node_test(dir: &Path, file: &str) {
    npm_ci(dir);
    let out = std::process::Command::new("node")
        .args(["--test", "--test-reporter=spec", file])
        .current_dir(dir)
        .env("FOOTFALL_BIN", env!("CARGO_BIN_EXE_footfall"))
        .output()
        .expect("node runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{text}");
    assert!(out.status.success(), "node --test {file} failed:\n{text}");
}

/// Python with the pinned libraries of `tests/<dir>/requirements.txt`, in a virtualenv kept
/// between runs (`tests/pyenv.sh`, which .ci/run also runs up front; pip reaches PyPI).
pub(crate) fn python_venv(dir: &str) -> PathBuf {
    // Two tests may ask at once: one makes the virtualenv, the other waits.
    static READY: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = READY.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new("bash")
        .arg(root.join("tests/pyenv.sh"))
        .arg(dir)
        .arg(root.join("tests").join(dir).join("requirements.txt"))
        .output()
        .expect("bash runs");
    assert!(out.status.success(), "tests/pyenv.sh {dir}: {}", String::from_utf8_lossy(&out.stderr));
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// A data directory holding `events` (flushed straight to Parquet), kept while the TempDir lives.
pub(crate) fn store(events: Vec<footfall::model::Event>) -> (tempfile::TempDir, footfall::store::paths::DataDir) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = footfall::store::paths::DataDir::new(tmp.path());
    footfall::store::flush_events(&data, footfall::wal::SegmentHeader { created_ms: 1, seq: 1 }, events)
        .expect("flush");
    (tmp, data)
}

/// A report environment over `data`: every site, default limits, "now" at `now_micros`.
pub(crate) fn report_env(data: &footfall::store::paths::DataDir, now_micros: i64) -> footfall::reports::Env {
    footfall::reports::Env {
        data: data.clone(),
        scope: footfall::query::Scope::All,
        limits: footfall::query::QueryLimits::default(),
        now_micros,
    }
}

/// A `footfall serve` child process on 127.0.0.1, with `extra` arguments and, with
/// `open_files`, that many file descriptors at most (soft and hard, through `prlimit`).
pub(crate) struct Child {
    pub(crate) child: std::process::Child,
    pub(crate) url: String,
}

impl Child {
    pub(crate) fn spawn(data: &Path, extra: &[&str], open_files: Option<u64>) -> Self {
        use std::io::BufRead;
        let bin = env!("CARGO_BIN_EXE_footfall");
        let mut cmd = match open_files {
            Some(n) => {
                let mut c = std::process::Command::new("prlimit");
                c.arg(format!("--nofile={n}:{n}")).arg(bin);
                c
            }
            None => std::process::Command::new(bin),
        };
        let mut child = cmd
            .args(["serve", "--listen", "127.0.0.1:0", "--rate-limit-ip", "0", "--rate-limit-site", "0", "--data"])
            .arg(data)
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start footfall");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("listening line");
        let url = line.trim().strip_prefix("footfall listening on ").expect("listening line").to_owned();
        Self { child, url }
    }

    /// The child's peak resident memory (VmHWM), in bytes.
    pub(crate) fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("status");
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM");
        kb * 1024
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The keys of `site` in the data directory.
pub(crate) fn site_keys(data: &Path, site: &str) -> (String, String) {
    let sites = footfall::sites::Sites::open(&footfall::store::paths::DataDir::new(data).sites_file()).expect("sites");
    let s = sites.get(site).expect("site exists");
    (s.read_key.clone(), s.write_key.clone())
}
