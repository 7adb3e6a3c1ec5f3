//! Command line and environment configuration (one clap struct per command).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::ingest::DntMode;
use crate::ingest::Limits;
use crate::server::{ConnectionLimits, ServeOptions};
use crate::wal::FsyncMode;

/// footfall: behavioural web analytics for online shops, in one binary.
#[derive(Debug, Parser)]
#[command(name = "footfall", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the collector: HTTP ingestion, write-ahead log, Parquet flusher and compactor.
    Serve(ServeArgs),
    /// Manage sites and their keys.
    #[command(subcommand)]
    Site(SiteCommand),
    /// Saved segments of a site (evaluate one with `footfall report segment`).
    #[command(subcommand)]
    Segment(SegmentCommand),
    /// Flush what the write-ahead log holds, then merge each partition's files into one
    /// (needs the data directory to itself: stop `serve` first; `serve` compacts in the background).
    Compact(DataArgs),
    /// Run one read-only SQL statement over the `events` table (works while `serve` runs).
    Query(QueryArgs),
    /// Run a report (trends, funnel, retention, experiment, lifecycle, attribution, ecommerce,
    /// engagement, heatmap, paths, predictions, affinities, catalog) or evaluate a segment
    /// (segment) from a JSON request (the body of
    /// `POST /api/reports/<kind>`; see docs/reports.md).
    Report(ReportArgs),
    /// Forget one person: remove every event of a user (with every device linked to it) or of
    /// a visitor from the site's files, session hours and identity map (GDPR art. 17), and log
    /// the deletion in audit.log without ids. Needs the data directory to itself (stop `serve`
    /// first; a running server takes `DELETE /api/sites/{site}/people/{id}` with the admin key).
    Forget(ForgetArgs),
    /// Import past events with their own times from footfall NDJSON, Segment / RudderStack
    /// JSON lines, PostHog's CSV export, GA4's BigQuery export (NDJSON or Parquet) or any CSV
    /// with --map; importing the same file again stores nothing twice. Needs the data directory
    /// to itself (stop `serve` first; a running server takes `POST /api/import`).
    Import(ImportArgs),
    /// Export a site's events (all, a date range, or one person's) as NDJSON, CSV or Parquet,
    /// to stdout or a file (works while `serve` runs).
    Export(ExportArgs),
    /// The events ingestion refused for a site, newest first, with why (JSON lines; works while
    /// `serve` runs).
    Rejected(RejectedArgs),
    /// Start footfall on a demo shop: a data directory filled with 9 weeks of a generated
    /// online shop (ending now), then the dashboard, with its URL and a read key printed.
    Demo(DemoArgs),
    /// Fit a site's predictions now (lifetime value, churn, purchase propensity, product
    /// affinities) and save them; prints the fit as JSON (works while `serve` runs; `serve`
    /// refits every --predict-interval).
    Predict(PredictArgs),
    /// Benchmarks: generate a shop's traffic into a store, time queries on it.
    #[command(subcommand)]
    Bench(BenchCommand),
}

/// `footfall bench ...`
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Write a deterministic online shop's events straight to the Parquet store.
    Gen(BenchGenArgs),
    /// Time one query (median of several runs) and print it as one JSON line.
    Query(BenchQueryArgs),
}

/// `footfall demo` options.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The demo's own data directory, regenerated at every start (a directory that is not a
    /// demo's is refused).
    #[arg(long, default_value = "./footfall-demo")]
    pub data: PathBuf,
    /// Address to listen on.
    #[arg(long, env = "FOOTFALL_LISTEN", default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,
    /// Random seed: the same seed on the same day gives the same shop.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Events to generate (about).
    #[arg(long, default_value_t = 400_000)]
    pub events: u64,
    /// Distinct visitors.
    #[arg(long, default_value_t = 60_000)]
    pub visitors: u64,
    /// Days of traffic, the last one being today (up to now): 9 weeks, so the last 30 days
    /// have a previous period to compare with.
    #[arg(long, default_value_t = 63)]
    pub days: u32,
    /// No live visitors: by default a handful of simulated visitors keep browsing the shop
    /// (a pageview every few seconds) so the Live tab moves.
    #[arg(long)]
    pub no_live: bool,
}

/// `footfall bench gen` options.
#[derive(Debug, Args)]
pub struct BenchGenArgs {
    /// Events to generate (about; sessions are kept whole).
    #[arg(long, default_value_t = 10_000_000)]
    pub events: u64,
    /// Distinct visitors.
    #[arg(long, default_value_t = 1_000_000)]
    pub visitors: u64,
    /// Days of traffic.
    #[arg(long, default_value_t = 56)]
    pub days: u32,
    /// First day (UTC).
    #[arg(long, default_value = "2026-01-05")]
    pub start: chrono::NaiveDate,
    /// Site id the events belong to.
    #[arg(long, default_value = "bench")]
    pub site: String,
    /// Random seed: the same seed and sizes give the same events.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[command(flatten)]
    pub data: DataArgs,
}

/// `footfall bench query` options.
#[derive(Debug, Args)]
pub struct BenchQueryArgs {
    /// bare_scan, funnel_sql, retention_sql, trends_sql, or a report as `report_<name>` (trends,
    /// funnel, retention, experiment, lifecycle, attribution, ecommerce, paths), or
    /// segment_viewed_not_bought, segment_vip.
    pub query: String,
    /// Runs; the median is reported.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Site the generator wrote.
    #[arg(long, default_value = "bench")]
    pub site: String,
    /// First day of the generated data.
    #[arg(long, default_value = "2026-01-05")]
    pub start: chrono::NaiveDate,
    /// Weeks the queries cover.
    #[arg(long, default_value_t = 8)]
    pub weeks: i64,
    /// Print the SQL of an SQL-level query and exit.
    #[arg(long)]
    pub print_sql: bool,
    #[command(flatten)]
    pub data: DataArgs,
}
/// How `footfall report` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// Text tables for people.
    Table,
    /// The JSON the HTTP API answers.
    Json,
}

/// `footfall report` options.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Which report (every name in `reports::registry::REPORTS`).
    #[arg(value_parser = clap::builder::PossibleValuesParser::new(crate::reports::registry::names()))]
    pub kind: String,
    /// The request as JSON, `@path` to read it from a file, or `-` (the default) for stdin,
    /// e.g. '{"site":"shop","date_range":{"from":"2026-01-01","to":"2026-01-31"}}'.
    #[arg(default_value = "-")]
    pub request: String,
    #[command(flatten)]
    pub data: DataArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
    /// Also print the SQL the report ran (table format; JSON always has it).
    #[arg(long)]
    pub show_sql: bool,
    /// Seconds the report may run.
    #[arg(long, default_value_t = 60.0)]
    pub timeout: f64,
}

/// `footfall query` options.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The statement, e.g. "SELECT path, count(*) FROM events GROUP BY path ORDER BY 2 DESC".
    pub sql: String,
    #[command(flatten)]
    pub data: DataArgs,
    /// Only these sites' events are visible (repeatable); without it, all sites.
    #[arg(long = "site")]
    pub sites: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = crate::query::output::Format::Table)]
    pub format: crate::query::output::Format,
    /// Most rows printed; more are cut, with a note on stderr.
    #[arg(long, default_value_t = 100_000)]
    pub max_rows: usize,
    /// Seconds the query may run.
    #[arg(long, default_value_t = 30.0)]
    pub timeout: f64,
}

/// The data directory.
#[derive(Debug, Args)]
pub struct DataArgs {
    /// Directory holding the WAL, the Parquet store and the site registry.
    #[arg(long, env = "FOOTFALL_DATA", default_value = "./footfall-data")]
    pub data: PathBuf,
}

/// One person of a site: a user id or a visitor id (exactly one).
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct PersonArgs {
    /// The site's own user id (as sent in `user_id` or `identify`): the person with every
    /// visitor id (device) linked to it.
    #[arg(long)]
    pub user: Option<String>,
    /// A visitor id: the whole person when it was linked to a user, else that visitor.
    #[arg(long)]
    pub visitor: Option<String>,
}

impl PersonArgs {
    pub fn subject(&self) -> Option<crate::store::forget::Subject> {
        use crate::store::forget::Subject;
        match (&self.user, &self.visitor) {
            (Some(u), _) => Some(Subject::User(u.clone())),
            (None, Some(v)) => Some(Subject::Visitor(v.clone())),
            (None, None) => None,
        }
    }
}

/// `footfall predict` options.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// Site id.
    #[arg(long)]
    pub site: String,
    /// The propensity window: P(purchase in the next N days).
    #[arg(long, default_value_t = 7)]
    pub purchase_window_days: i64,
    /// The horizon of expected purchases and predicted value, in days.
    #[arg(long, default_value_t = 365)]
    pub value_horizon_days: i64,
    #[command(flatten)]
    pub data: DataArgs,
}

/// `footfall forget` options.
#[derive(Debug, Args)]
pub struct ForgetArgs {
    /// Site id.
    #[arg(long)]
    pub site: String,
    #[command(flatten)]
    pub person: PersonArgs,
    #[command(flatten)]
    pub data: DataArgs,
}

/// `footfall import` options.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The file to import (`-` for stdin).
    pub file: PathBuf,
    /// Site id the events are imported into.
    #[arg(long)]
    pub site: String,
    /// What the file holds.
    #[arg(long, value_enum)]
    pub format: crate::import::ImportFormat,
    /// For `--format csv`: footfall field = CSV column, comma-separated; `ts` and `name` are
    /// required, e.g. `ts=created_at,name=event,visitor=anon_id,user=user_id,url=page,prop:plan=plan`.
    #[arg(long, value_parser = |s: &str| crate::import::ColumnMap::parse(s))]
    pub map: Option<crate::import::ColumnMap>,
    /// Stop after this many bad rows (each is reported with its line; what was imported stays).
    #[arg(long, default_value_t = 100)]
    pub max_errors: usize,
    #[command(flatten)]
    pub data: DataArgs,
}

/// `footfall rejected` options.
#[derive(Debug, Args)]
pub struct RejectedArgs {
    /// Site id.
    #[arg(long)]
    pub site: String,
    /// At most this many, newest first.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    #[command(flatten)]
    pub data: DataArgs,
}

/// `footfall export` options.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Site id.
    #[arg(long)]
    pub site: String,
    /// First day (UTC date, YYYY-MM-DD), included.
    #[arg(long)]
    pub from: Option<chrono::NaiveDate>,
    /// Last day (UTC date), included.
    #[arg(long)]
    pub to: Option<chrono::NaiveDate>,
    /// Only this user's events (with every device linked to it).
    #[arg(long, conflicts_with = "visitor")]
    pub user: Option<String>,
    /// Only this visitor's person's events.
    #[arg(long)]
    pub visitor: Option<String>,
    /// File format.
    #[arg(long, value_enum, default_value_t = crate::export::ExportFormat::Ndjson)]
    pub format: crate::export::ExportFormat,
    /// Write to this file instead of stdout.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
}

/// `footfall serve` options.
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Address to listen on.
    #[arg(long, env = "FOOTFALL_LISTEN", default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,
    /// MaxMind City or Country database (.mmdb) for country, region and city.
    #[arg(long, env = "FOOTFALL_GEOIP")]
    pub geoip: Option<PathBuf>,
    /// Take the client IP from X-Forwarded-For / X-Real-IP (only behind your own proxy).
    #[arg(long, env = "FOOTFALL_TRUST_PROXY")]
    pub trust_proxy: bool,
    /// When the WAL fsyncs: always (per request), batch (group commit) or off.
    #[arg(long, env = "FOOTFALL_FSYNC", value_enum, default_value_t = FsyncMode::Batch)]
    pub fsync: FsyncMode,
    /// Seconds between flushes of the WAL to Parquet.
    #[arg(long, env = "FOOTFALL_FLUSH_INTERVAL", default_value_t = 5.0)]
    pub flush_interval: f64,
    /// Flush early once this many events wait in the WAL (bounds the collector's memory:
    /// about 2 KB per waiting event).
    #[arg(long, env = "FOOTFALL_FLUSH_EVENTS", default_value_t = 20_000)]
    pub flush_events: u64,
    /// Refuse events (503) while the WAL holds more than this many MiB.
    #[arg(long, env = "FOOTFALL_WAL_MAX_MB", default_value_t = 1024)]
    pub wal_max_mb: u64,
    /// Seconds between background compactions.
    #[arg(long, env = "FOOTFALL_COMPACT_INTERVAL", default_value_t = 3600.0)]
    pub compact_interval: f64,
    /// Requests per second one IP may send to /api/event without a write key (0: no limit).
    #[arg(long, env = "FOOTFALL_RATE_LIMIT_IP", default_value_t = 50)]
    pub rate_limit_ip: u32,
    /// Requests per second one site may receive (0: no limit).
    #[arg(long, env = "FOOTFALL_RATE_LIMIT_SITE", default_value_t = 2000)]
    pub rate_limit_site: u32,
    /// Key (16+ characters) that reads every site through /api/sql; prefer the environment
    /// variable, which does not show in the process list. Without it, only site read keys work.
    #[arg(long, env = "FOOTFALL_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,
    /// Key (16+ characters) that `/metrics` requires as `Authorization: Bearer <key>`; without
    /// it `/metrics` is open to anyone who can reach the address.
    #[arg(long, env = "FOOTFALL_METRICS_KEY", hide_env_values = true)]
    pub metrics_key: Option<String>,
    /// Browser requests sent with `DNT: 1` or `Sec-GPC: 1`: `drop` them (counted in
    /// footfall_dnt_dropped_total), or keep them `cookieless` (any first-party visitor id is
    /// ignored), for sites whose snippet has data-dnt="cookieless".
    #[arg(long, env = "FOOTFALL_DNT", value_enum, default_value_t = DntMode::Drop)]
    pub dnt: DntMode,
    /// Seconds a client has to send a request's headers, from the connection's start or the
    /// end of its previous response (also closes idle keep-alive connections).
    #[arg(long, env = "FOOTFALL_HEADER_TIMEOUT", default_value_t = 10.0)]
    pub header_timeout: f64,
    /// Most client connections open at once (default: the open-file limit less 256 kept for
    /// the WAL, the store and queries; the soft limit is raised to the hard one at start-up).
    #[arg(long, env = "FOOTFALL_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Seconds one SQL query or report may take over HTTP, waiting for a turn included (under
    /// the 30-second request timeout, so the JSON error always arrives).
    #[arg(long, env = "FOOTFALL_QUERY_TIMEOUT", default_value_t = 25.0)]
    pub query_timeout: f64,
    /// Also speak the Postgres wire protocol here (off by default), for psql and BI tools: user
    /// = a site id, password = its read key (or user footfall_admin with the admin key). Plain
    /// text unless --pg-tls-cert is given: keep it on 127.0.0.1 otherwise (README).
    #[arg(long, env = "FOOTFALL_PG_LISTEN")]
    pub pg_listen: Option<SocketAddr>,
    /// PEM certificate (chain) for the Postgres port; with --pg-tls-key every connection must
    /// then use TLS (sslmode=require).
    #[arg(long, env = "FOOTFALL_PG_TLS_CERT", requires = "pg_tls_key")]
    pub pg_tls_cert: Option<PathBuf>,
    /// PEM private key of --pg-tls-cert.
    #[arg(long, env = "FOOTFALL_PG_TLS_KEY", requires = "pg_tls_cert")]
    pub pg_tls_key: Option<PathBuf>,
    /// Refit every site's predictions (lifetime value, churn, propensity, affinities, the
    /// recommendations) at start-up and then every this many seconds; 0 turns it off.
    #[arg(long, env = "FOOTFALL_PREDICT_INTERVAL", default_value_t = 3600.0)]
    pub predict_interval: f64,
}

impl ServeArgs {
    /// The server options these arguments describe.
    pub fn options(&self) -> ServeOptions {
        ServeOptions {
            data: self.data.data.clone(),
            listen: self.listen,
            geoip: self.geoip.clone(),
            trust_proxy: self.trust_proxy,
            fsync: self.fsync,
            flush_interval: Duration::from_secs_f64(self.flush_interval.max(0.01)),
            flush_after_events: self.flush_events.max(1),
            wal_max_bytes: self.wal_max_mb.saturating_mul(1024 * 1024),
            compact_interval: Duration::from_secs_f64(self.compact_interval.max(1.0)),
            limits: Limits { per_ip: self.rate_limit_ip, per_site: self.rate_limit_site },
            admin_key: self.admin_key.clone(),
            metrics_key: self.metrics_key.clone(),
            dnt: self.dnt,
            connections: ConnectionLimits {
                header_timeout: Duration::from_secs_f64(self.header_timeout.max(0.1)),
                max_connections: self.max_connections,
            },
            query_timeout: Duration::from_secs_f64(self.query_timeout.clamp(0.001, 1e6)),
            pg_listen: self.pg_listen,
            pg_tls: match (&self.pg_tls_cert, &self.pg_tls_key) {
                (Some(cert), Some(key)) => {
                    Some(crate::server::postgres::TlsFiles { cert: cert.clone(), key: key.clone() })
                }
                _ => None,
            },
            predict_interval: (self.predict_interval > 0.0)
                .then(|| Duration::from_secs_f64(self.predict_interval.max(1.0))),
        }
    }
}

/// `footfall segment ...`
#[derive(Debug, Subcommand)]
pub enum SegmentCommand {
    /// The templates and the site's saved segments, as JSON.
    List {
        #[arg(long)]
        site: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Save a segment (a new one, or `--id` to change one); prints it as JSON.
    Save {
        #[arg(long)]
        site: String,
        #[arg(long)]
        name: String,
        /// The definition as JSON (see docs/reports.md#segments), or `@file.json`.
        definition: String,
        /// Change this saved segment instead of adding one.
        #[arg(long)]
        id: Option<String>,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Delete a saved segment.
    Delete {
        #[arg(long)]
        site: String,
        id: String,
        #[command(flatten)]
        data: DataArgs,
    },
}

/// `footfall site ...`
#[derive(Debug, Subcommand)]
pub enum SiteCommand {
    /// Register a site and print its write key and read key.
    Add {
        /// Site id: 1 to 64 characters of a-z, 0-9 and '-'.
        id: String,
        /// Domain the site's pages are served from (repeatable); browser events from other
        /// origins are refused. Without any, every origin is accepted.
        #[arg(long = "domain")]
        domains: Vec<String>,
        /// First day of the site's weeks in every weekly report (Plausible and ISO: Monday).
        #[arg(long, value_enum, default_value_t = crate::sites::WeekStart::Monday)]
        week_start: crate::sites::WeekStart,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Change a site's settings.
    #[command(group(clap::ArgGroup::new("setting").required(true).multiple(true)))]
    Set {
        /// Site id.
        id: String,
        /// First day of the site's weeks in every weekly report.
        #[arg(long, value_enum, group = "setting")]
        week_start: Option<crate::sites::WeekStart>,
        /// Keep this many days of events; older days are dropped by `serve`'s background task
        /// and by `footfall compact` (default: keep everything).
        #[arg(long, group = "setting", value_parser = clap::value_parser!(u32).range(1..))]
        retention_days: Option<u32>,
        /// Keep every day again (undo --retention-days).
        #[arg(long, group = "setting", conflicts_with = "retention_days")]
        keep_forever: bool,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Replace a site's write key and read key; the old ones are refused at once (a running
    /// server sees the change at its next request).
    RotateKeys {
        /// Site id.
        id: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Remove a site with all of its data (events, session hours, identities, saved segments).
    /// Needs the data directory to itself (stop `serve` first) and --yes-delete-data.
    Remove {
        /// Site id.
        id: String,
        /// Confirms that the site's data is to be deleted; nothing happens without it.
        #[arg(long)]
        yes_delete_data: bool,
        #[command(flatten)]
        data: DataArgs,
    },
    /// List sites, their domains and keys.
    List {
        #[command(flatten)]
        data: DataArgs,
    },
}
