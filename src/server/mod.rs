//! `footfall serve`: open the data directory, replay the WAL, and run the collector, the
//! flusher and the compactor until asked to stop.

pub mod connections;
pub mod postgres;

use std::fs::File;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api::{self, AppState};
use crate::clock::SharedClock;
use crate::ingest::enrich::{geo, visitor::Salts};
use crate::ingest::{DntMode, Ingestor, IngestorParts, Limits};
use crate::model::SiteId;
use crate::sites::Sites;
use crate::store::paths::DataDir;
use crate::store::{Flusher, StoreGuard, compact};
use crate::wal::{FsyncMode, Wal, WalOptions};
pub use connections::ConnectionLimits;

/// Everything `serve` needs to know.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub data: PathBuf,
    pub listen: SocketAddr,
    pub geoip: Option<PathBuf>,
    pub trust_proxy: bool,
    pub fsync: FsyncMode,
    pub flush_interval: Duration,
    pub flush_after_events: u64,
    pub wal_max_bytes: u64,
    pub compact_interval: Duration,
    pub limits: Limits,
    /// Reads every site through `/api/sql`; at least 16 characters. None: no admin access.
    pub admin_key: Option<String>,
    /// `/metrics` needs `Authorization: Bearer <this>`; None: `/metrics` is open.
    pub metrics_key: Option<String>,
    /// What a browser request with `DNT: 1` or `Sec-GPC: 1` gets.
    pub dnt: DntMode,
    pub connections: ConnectionLimits,
    /// Deadline of one query or report over HTTP; under the 30 s request timeout.
    pub query_timeout: Duration,
    /// Where the Postgres wire protocol listens ([`postgres`]); None: it is off.
    pub pg_listen: Option<SocketAddr>,
    /// The Postgres port's certificate and key; with them every connection must use TLS.
    pub pg_tls: Option<postgres::TlsFiles>,
    /// How often every site's predictions are refitted (first at start-up); None: never.
    pub predict_interval: Option<Duration>,
}

/// Start-up failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("data directory {path}: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error("data directory {0} is in use by another footfall process")]
    Locked(PathBuf),
    #[error(transparent)]
    Geo(#[from] geo::GeoError),
    #[error(transparent)]
    Sites(#[from] crate::sites::Error),
    #[error(transparent)]
    Wal(#[from] crate::wal::Error),
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    #[error("the admin key must be at least 16 characters")]
    WeakAdminKey,
    #[error("the metrics key must be at least 16 characters")]
    WeakMetricsKey,
    #[error("the query timeout must be shorter than the {}-second request timeout", api::REQUEST_TIMEOUT.as_secs())]
    QueryTimeout,
    #[error("the Postgres TLS certificate or key: {0}")]
    PgTls(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
}

/// `Result` with start-up [`Error`]s.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The process-wide Prometheus recorder (installed once).
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
            }
            handle
        })
        .clone()
}

/// Take the data directory's lock so two processes never write the same WAL and store.
pub fn lock_data_dir(data: &DataDir) -> Result<File> {
    let root = data.root();
    std::fs::create_dir_all(root).map_err(|source| Error::DataDir { path: root.to_owned(), source })?;
    let path = data.lock_file();
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| Error::DataDir { path: path.clone(), source })?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Locked(root.to_owned())),
        Err(std::fs::TryLockError::Error(source)) => Err(Error::DataDir { path, source }),
    }
}

/// Open the site registry, creating the `default` site on a first run.
pub fn open_sites(data: &DataDir) -> Result<Arc<Sites>> {
    let sites = Sites::open(&data.sites_file())?;
    if sites.list().is_empty() {
        let id = SiteId::parse("default").expect("\"default\" is a valid site id");
        let site = sites.add(id, &[])?;
        tracing::info!(site = %site.id, write_key = %site.write_key, read_key = %site.read_key, "created the default site");
    }
    Ok(Arc::new(sites))
}

/// A running collector.
pub struct Running {
    pub addr: SocketAddr,
    /// Where the Postgres wire protocol listens, when it is on.
    pub pg_addr: Option<SocketAddr>,
    /// What the server ingests through (the demo feeds its live visitors here).
    pub ingestor: Arc<Ingestor>,
    stop: CancellationToken,
    server: JoinHandle<()>,
    background: Vec<JoinHandle<()>>,
    flusher: Flusher,
    _lock: File,
}

impl Running {
    /// Stop accepting requests, let in-flight ones finish, then flush the WAL to Parquet.
    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = self.server.await;
        for t in self.background {
            let _ = t.await;
        }
        match self.flusher.flush().await {
            Ok(rows) => tracing::info!(rows, "final flush done"),
            Err(e) => tracing::error!(error = %e, "final flush failed; the events stay in the WAL for the next start"),
        }
    }
}

/// Open everything, replay the WAL, bind, and start serving.
pub async fn start(opts: ServeOptions, clock: SharedClock) -> Result<Running> {
    if opts.admin_key.as_ref().is_some_and(|k| k.len() < 16) {
        return Err(Error::WeakAdminKey);
    }
    if opts.metrics_key.as_ref().is_some_and(|k| k.len() < 16) {
        return Err(Error::WeakMetricsKey);
    }
    if opts.query_timeout >= api::REQUEST_TIMEOUT || opts.query_timeout.is_zero() {
        return Err(Error::QueryTimeout);
    }
    crate::query::pool::init_for_collector();
    let file_limit = connections::raise_file_limit();
    let max_connections = connections::connection_cap(&opts.connections, file_limit);
    // Installed first, so what replay counts (damaged WAL records) shows in /metrics.
    let metrics = prometheus();
    let data = DataDir::new(&opts.data);
    let lock = lock_data_dir(&data)?;
    compact::clean_leftovers(&data)?;
    let sites = open_sites(&data)?;
    let salts = Salts::load(&data.salts_file()).map_err(|source| Error::DataDir { path: data.salts_file(), source })?;
    let geo = opts.geoip.as_deref().map(geo::Geo::open).transpose()?;
    let wal_opts =
        WalOptions { fsync: opts.fsync, max_bytes: opts.wal_max_bytes, flush_after_events: opts.flush_after_events };
    let wal = Wal::open(&data.wal_dir(), wal_opts, clock.clone())?;
    let guard = StoreGuard::default();
    let flusher = Flusher::new(data.clone(), wal.clone(), guard.clone());
    let replayed = flusher.flush_sealed().await?;
    if replayed > 0 {
        tracing::info!(rows = replayed, "replayed the write-ahead log into Parquet");
    }
    let limits = opts.limits;
    let ingestor = Arc::new(
        Ingestor::new(IngestorParts { sites, geo, salts, clock, wal: wal.clone(), limits, dnt: opts.dnt })
            .with_quarantine(crate::ingest::quarantine::Quarantine::new(data.rejected_dir())),
    );
    let state = AppState {
        ingestor: ingestor.clone(),
        trust_proxy: opts.trust_proxy,
        metrics,
        wal,
        data: data.clone(),
        admin_key: opts.admin_key.as_deref().map(Arc::from),
        metrics_key: opts.metrics_key.as_deref().map(Arc::from),
        query_timeout: opts.query_timeout,
        segments: Arc::new(crate::saved_segments::SavedSegments::new(data.clone(), ingestor.clock.clone())),
        views: Arc::new(crate::saved_segments::SavedSegments::of(
            crate::saved_segments::Kind::Views,
            data.clone(),
            ingestor.clock.clone(),
        )),
        flusher: flusher.clone(),
    };
    let listener =
        tokio::net::TcpListener::bind(opts.listen).await.map_err(|source| Error::Bind { addr: opts.listen, source })?;
    let addr = listener.local_addr().map_err(|source| Error::Bind { addr: opts.listen, source })?;
    // The Postgres door, when it is on: bound and its certificate loaded now, so either fails start-up.
    let pg = match opts.pg_listen {
        Some(at) => {
            let (listener, at) = postgres::bind(at)?;
            let limits = state.query_limits();
            let server = postgres::PgServer::new(
                data.clone(),
                ingestor.sites.clone(),
                state.admin_key.clone(),
                limits,
                opts.pg_tls.as_ref(),
            )?;
            Some((Arc::new(server), listener, at))
        }
        None => None,
    };
    let pg_addr = pg.as_ref().map(|(_, _, at)| *at);
    // A fit runs several whole-history queries: not bound by one HTTP query's deadline.
    let fit_limits = crate::query::QueryLimits { timeout: Duration::from_secs(3600), ..state.query_limits() };
    let data_dir = data.clone();
    let stop = CancellationToken::new();
    let app = api::router(state);
    let server = tokio::spawn(connections::serve(listener, app, opts.connections, max_connections, stop.clone()));
    let mut background = vec![
        tokio::spawn(flusher.clone().run(opts.flush_interval, stop.clone())),
        tokio::spawn(compact_loop(data, guard, ingestor.clone(), opts.compact_interval, stop.clone())),
        tokio::spawn(housekeeping_loop(ingestor.clone(), stop.clone())),
    ];
    if let Some(every) = opts.predict_interval {
        // Fits run queries: on the query runtime, at the query threads' low priority.
        let clock = ingestor.clock.clone();
        let refits = crate::predict::refresher(
            data_dir.clone(),
            fit_limits,
            crate::predict::Config::default(),
            every,
            move || clock.now_micros(),
        );
        let stop = stop.clone();
        background.push(crate::query::pool::pool().spawn(async move {
            tokio::select! {
                () = refits => {}
                () = stop.cancelled() => {}
            }
        }));
    }
    if let Some((server, listener, _)) = pg {
        // The connections run queries: they live on the query runtime, not this one.
        background.push(crate::query::pool::pool().spawn(server.serve(listener, stop.clone())));
    }
    tracing::info!(%addr, ?pg_addr, data = %opts.data.display(), fsync = ?opts.fsync, max_connections, file_limit, "footfall is listening");
    Ok(Running { addr, pg_addr, ingestor, stop, server, background, flusher, _lock: lock })
}

/// Every `every`: drop the days past each site's retention (by the injected clock), then
/// compact.
async fn compact_loop(
    data: DataDir,
    guard: StoreGuard,
    ingestor: Arc<Ingestor>,
    every: Duration,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = stop.cancelled() => return,
        }
        let today =
            chrono::DateTime::from_timestamp_micros(ingestor.clock.now_micros()).unwrap_or_default().date_naive();
        let (d, g, i) = (data.clone(), guard.clone(), ingestor.clone());
        match tokio::task::spawn_blocking(move || crate::store::retention::apply(&d, &g, &i.sites, today)).await {
            Ok(Ok(n)) => metrics::counter!("footfall_days_dropped_total").increment(n as u64),
            Ok(Err(e)) => tracing::error!(error = %e, "dropping days past retention failed"),
            Err(e) => tracing::error!(error = %e, "retention task panicked"),
        }
        let (d, g) = (data.clone(), guard.clone());
        match tokio::task::spawn_blocking(move || compact::compact_all(&d, &g)).await {
            Ok(Ok(done)) => metrics::counter!("footfall_partitions_compacted_total").increment(done.len() as u64),
            Ok(Err(e)) => tracing::error!(error = %e, "compaction failed; partitions are left as they were"),
            Err(e) => tracing::error!(error = %e, "compaction task panicked"),
        }
    }
}

async fn housekeeping_loop(ingestor: Arc<Ingestor>, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(60)) => ingestor.housekeeping(),
            () = stop.cancelled() => return,
        }
    }
}
