//! DataFusion over the Parquet store: the `events` table and read-only analyst SQL.
//!
//! `events` is a `ListingTable` over `<data>/events` with the hive partition columns `site`
//! (Utf8) and `date` (Date32), so `WHERE site = … AND date BETWEEN …` prunes directories and
//! Parquet statistics prune row groups. A query scoped to some sites reads through
//! [`ScopedTable`], which adds `site IN (…)` to every scan: the restriction lives in the table,
//! not in the SQL, so no query text can reach another site's files.
//!
//! The tables, views and functions of a (data directory, scope) are built once per process and
//! kept ([`session`]); each query gets its own runtime (memory limit, spill space) over them,
//! and every query shares one cache of Parquet footers and file statistics.

mod bucket;
pub mod capped;
pub mod guard;
mod items;
mod json;
pub mod output;
mod person;
mod pg;
pub mod pool;
mod scoped;
pub mod udaf;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, PoisonError};
use std::time::Duration;

use arrow::array::RecordBatch;
use datafusion::catalog::TableProvider;
use datafusion::common::plan_datafusion_err;
use datafusion::datasource::ViewTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::error::DataFusionError;
use datafusion::execution::cache::cache_manager::{CacheManagerConfig, FileMetadataCache, FileStatisticsCache};
use datafusion::execution::cache::default_cache::DefaultCache;
use datafusion::execution::disk_manager::DiskManagerBuilder;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion::logical_expr::{Expr, LogicalPlan, col};
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use datafusion::sql::parser::{DFParserBuilder, Statement};
use datafusion::sql::sqlparser::dialect::dialect_from_str;

pub use self::json::needs_json;
pub use self::scoped::ScopedTable;
use crate::model::SiteId;
use crate::model::schema::{file_schema, partition_fields};
use crate::store::paths::DataDir;

/// Which sites a query may read.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Every site (the admin key, the local CLI).
    All,
    /// Only these sites (a site's read key).
    Sites(Vec<SiteId>),
}

impl Scope {
    /// Whether `site` may be read.
    pub fn allows(&self, site: &SiteId) -> bool {
        match self {
            Self::All => true,
            Self::Sites(allowed) => allowed.contains(site),
        }
    }
}

/// Bounds on one query.
#[derive(Clone, Copy, Debug)]
pub struct QueryLimits {
    pub max_rows: usize,
    pub timeout: Duration,
    pub memory_bytes: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        // The deadline is shorter than the HTTP request timeout (30 s), so a query that runs
        // out of time still answers with its JSON error.
        Self { max_rows: 100_000, timeout: Duration::from_secs(25), memory_bytes: 1 << 30 }
    }
}

/// Most bytes a query may spill to disk (sorts and aggregations past the memory pool).
pub const MAX_SPILL_BYTES: u64 = 4 << 30;

/// Query errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("only read-only queries are allowed: {0}")]
    Refused(String),
    #[error("the query ran longer than {0:?}")]
    Timeout(Duration),
    /// The statement is past a size or complexity limit ([`guard`]).
    #[error("the statement is too complex: {0}")]
    TooComplex(String),
    /// Every query slot and queue place is taken.
    #[error("too many queries at once ({running} running, {waiting} waiting); retry shortly")]
    Busy { running: usize, waiting: usize },
    #[error("the query failed unexpectedly: {0}")]
    Panicked(String),
    #[error("{0}")]
    DataFusion(DataFusionError),
    #[error("data directory {path}: {source}")]
    Io { path: std::path::PathBuf, source: std::io::Error },
}

impl From<DataFusionError> for Error {
    /// An error an optimizer rule raised about the statement (a pattern function's malformed
    /// pattern) is the statement's: say it without the rule's wrapper.
    fn from(e: DataFusionError) -> Self {
        match e {
            DataFusionError::Context(rule, inner) if rule.starts_with("Optimizer rule") => Self::DataFusion(*inner),
            e => Self::DataFusion(e),
        }
    }
}

/// `Result` with the query [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A query's rows, and whether the row limit cut them.
#[derive(Debug)]
pub struct QueryOutput {
    pub batches: Vec<RecordBatch>,
    pub truncated: bool,
}

/// The session every query entry point uses: `events` for `scope`, footfall's functions and
/// views, bounded by `limits`.
///
/// The tables, views and functions come from a base built once per (data directory, scope)
/// and kept for the process ([`base_state`]); this query gets a runtime of its own, so its
/// memory limit and spill space are its own. The base stays true as the store changes: files
/// are listed at every scan (no listing cache), a footer or statistics entry is used only while
/// its file's size and modification time are unchanged (the store never rewrites a file in
/// place: a flush or a compaction writes new files), and the identity maps are cached by file
/// stamp ([`person`]).
pub async fn session(data: &DataDir, scope: &Scope, limits: &QueryLimits) -> Result<SessionContext> {
    session_of(data, scope, limits, Flavour::Footfall).await
}

/// A Postgres wire connection's session: [`session`] with `pg_catalog` and the functions BI
/// tools call when they connect and introspect (`current_schema()`, `has_table_privilege`,
/// `pg_get_userbyid`, …), from `datafusion-pg-catalog`. Kept apart from the HTTP sessions'
/// bases, which stay as they were.
pub async fn pg_session(data: &DataDir, scope: &Scope, limits: &QueryLimits) -> Result<SessionContext> {
    session_of(data, scope, limits, Flavour::Postgres).await
}

/// What a base session is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Flavour {
    /// `/api/sql`, reports, segments, the command line.
    Footfall,
    /// A Postgres wire connection (`pg_catalog` added).
    Postgres,
}

async fn session_of(data: &DataDir, scope: &Scope, limits: &QueryLimits, flavour: Flavour) -> Result<SessionContext> {
    let base = base_state(data, scope, flavour).await?;
    let state = SessionStateBuilder::new_from_existing(base).with_runtime_env(runtime(limits)?).build();
    Ok(SessionContext::new_with_state(state))
}

/// Most (data directory, scope) bases kept; past it the cache starts again (a base costs a
/// few milliseconds to build, and a server has one scope per site key in use).
const MAX_BASES: usize = 256;

type Bases = std::sync::Mutex<HashMap<(PathBuf, Scope, Flavour), SessionState>>;

/// The base session of `scope` over `data`: built on first use, then cloned (its catalog,
/// functions and planners are shared, not copied).
async fn base_state(data: &DataDir, scope: &Scope, flavour: Flavour) -> Result<SessionState> {
    static BASES: LazyLock<Bases> = LazyLock::new(Bases::default);
    let key = (data.root().to_owned(), scope.clone(), flavour);
    if let Some(base) = BASES.lock().unwrap_or_else(PoisonError::into_inner).get(&key) {
        return Ok(base.clone());
    }
    // Built outside the lock: two queries racing here build two bases and keep one.
    let ctx = events_session(data, scope, runtime(&QueryLimits::default())?)?;
    register_views(&ctx).await?;
    if flavour == Flavour::Postgres {
        pg::install(&ctx)?;
    }
    let base = ctx.state();
    let mut bases = BASES.lock().unwrap_or_else(PoisonError::into_inner);
    if bases.len() >= MAX_BASES {
        bases.clear();
    }
    Ok(bases.entry(key).or_insert(base).clone())
}

/// Bytes of Parquet footers and page indexes kept for every query of the process.
const FOOTER_CACHE_BYTES: usize = 64 << 20;
/// Bytes of per-file statistics (row counts, min/max) kept for every query of the process.
const STATISTICS_CACHE_BYTES: usize = 16 << 20;

/// The caches every query's runtime shares. The listing cache is off: DataFusion's never
/// expires, and the store gains and loses files.
fn shared_caches() -> CacheManagerConfig {
    static CACHES: LazyLock<(Arc<FileMetadataCache>, Arc<FileStatisticsCache>)> = LazyLock::new(|| {
        (
            Arc::new(DefaultCache::new(FOOTER_CACHE_BYTES).with_name("footfall footers")),
            Arc::new(DefaultCache::new(STATISTICS_CACHE_BYTES).with_name("footfall file statistics")),
        )
    });
    CacheManagerConfig::default()
        .with_list_files_cache_limit(0)
        .with_file_metadata_cache(Some(CACHES.0.clone()))
        .with_metadata_cache_limit(FOOTER_CACHE_BYTES)
        .with_file_statistics_cache(Some(CACHES.1.clone()))
        .with_file_statistics_cache_limit(STATISTICS_CACHE_BYTES)
}

/// One query's runtime: its memory limit, its spill space, the shared caches.
fn runtime(limits: &QueryLimits) -> Result<Arc<RuntimeEnv>> {
    let disk = DiskManagerBuilder::default().with_max_temp_directory_size(MAX_SPILL_BYTES);
    Ok(RuntimeEnvBuilder::new()
        .with_memory_limit(limits.memory_bytes, 1.0)
        .with_disk_manager_builder(disk)
        .with_cache_manager(shared_caches())
        .build_arc()?)
}

fn events_session(data: &DataDir, scope: &Scope, runtime: Arc<RuntimeEnv>) -> Result<SessionContext> {
    let mut config = SessionConfig::new().with_information_schema(true);
    // Behavioural queries group by visitor or person: millions of groups, each a few rows. A
    // partial aggregation before the shuffle then reduces little and hashes every key twice,
    // so skip it as soon as it keeps more than a fifth of its rows (DataFusion's default: 80%).
    // At a tenth, 10M-event retention (a fifth of its rows kept) lost 50%; at a fifth both gain.
    // The 4-step funnel over 100M events went from about 12 s to about 7-8 s (BENCHMARKS.md).
    config.options_mut().execution.skip_partial_aggregation_probe_ratio_threshold = 0.2;
    let ctx = SessionContext::new_with_config_rt(config, runtime);
    udaf::register_functions(&ctx);
    capped::register(&ctx);
    ctx.register_udf(datafusion::logical_expr::ScalarUDF::new_from_impl(bucket::Bucket::new()));
    ctx.register_udf(datafusion::logical_expr::ScalarUDF::new_from_impl(items::ItemsMatch::new()));
    ctx.register_udf(datafusion::logical_expr::ScalarUDF::new_from_impl(json::ToJson::new()));
    let resolve = Arc::new(person::ResolvePerson::new(data));
    let statistics = ctx.runtime_env().cache_manager.get_file_statistic_cache();
    let events = resolved_table(&ctx, &data.events_dir(), file_schema(), scope, &resolve, &statistics)?;
    ctx.register_table("events", events)?;
    let sessions =
        resolved_table(&ctx, &data.sessions_dir(), crate::store::sessions::schema(), scope, &resolve, &statistics)?;
    ctx.register_table("session_hours", sessions)?;
    let site = vec![("site".to_owned(), arrow::datatypes::DataType::Utf8)];
    let predictions = listing_table(&data.models_dir(), crate::predict::people_schema(), site, scope, &statistics)?;
    ctx.register_table("predictions", predictions)?;
    Ok(ctx)
}

/// The Parquet files under `dir`, partitioned by `partition_cols` (`site` first), as `scope` sees
/// them: `events`, `session_hours` (both then resolved, see [`resolved_table`]) and `predictions`
/// (`models/site=<site>/people.parquet`, every site's last fit, see [`crate::predict`]).
fn listing_table(
    dir: &std::path::Path,
    schema: arrow::datatypes::SchemaRef,
    partition_cols: Vec<(String, arrow::datatypes::DataType)>,
    scope: &Scope,
    statistics: &Option<Arc<FileStatisticsCache>>,
) -> Result<Arc<dyn TableProvider>> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Io { path: dir.to_owned(), source })?;
    let url = ListingTableUrl::parse(format!("{}/", dir.display()))?;
    let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
        .with_file_extension(".parquet")
        .with_table_partition_cols(partition_cols);
    let config = ListingTableConfig::new(url).with_listing_options(options).with_schema(schema);
    let table: Arc<dyn TableProvider> = Arc::new(ListingTable::try_new(config)?.with_cache(statistics.clone()));
    Ok(match scope {
        Scope::All => table,
        Scope::Sites(sites) => Arc::new(ScopedTable::new(table, sites.clone())),
    })
}

/// A table over the `site=/date=` partitioned Parquet files under `dir` as `scope` sees them,
/// with `person_id` resolved through the identity maps (see [`person`]).
fn resolved_table(
    ctx: &SessionContext,
    dir: &std::path::Path,
    schema: arrow::datatypes::SchemaRef,
    scope: &Scope,
    resolve: &Arc<person::ResolvePerson>,
    statistics: &Option<Arc<FileStatisticsCache>>,
) -> Result<Arc<ViewTable>> {
    let partition_cols = partition_fields().into_iter().map(|f| (f.name().clone(), f.data_type().clone())).collect();
    let table = listing_table(dir, schema, partition_cols, scope, statistics)?;
    let columns: Vec<Expr> = table
        .schema()
        .fields()
        .iter()
        .map(|f| match f.name().as_str() {
            "person_id" => person::ResolvePerson::expr(resolve.clone()).alias("person_id"),
            name => col(name),
        })
        .collect();
    let plan = ctx.read_table(table)?.select(columns)?.into_unoptimized_plan();
    Ok(Arc::new(ViewTable::new(plan, None)))
}

/// Views over `events`, defined in `queries/`: `identities` (visitor → user, the rule the
/// identity map keeps, in SQL) and `person_events` (the same rows as `events`, kept for queries
/// written before `events` had `person_id`). They read the session's `events`, so a scoped
/// session's views are scoped too.
const VIEWS: [(&str, &str); 2] = [
    ("identities", include_str!("../../queries/identities.sql")),
    ("person_events", include_str!("../../queries/person_events.sql")),
];

async fn register_views(ctx: &SessionContext) -> Result<()> {
    for (name, sql) in VIEWS {
        let plan = ctx.sql(sql).await?.into_unoptimized_plan();
        ctx.register_table(name, Arc::new(ViewTable::new(plan, Some(sql.to_owned()))))?;
    }
    Ok(())
}

/// Parse `sql` as the session itself would (its dialect and recursion limit) into exactly
/// one statement.
fn one_statement(state: &SessionState, sql: &str) -> Result<Statement> {
    let parser = &state.config().options().sql_parser;
    guard::check_text(sql)?;
    let Some(dialect) = dialect_from_str(parser.dialect) else {
        return Err(Error::DataFusion(plan_datafusion_err!("unsupported SQL dialect {}", parser.dialect)));
    };
    let mut statements = DFParserBuilder::new(sql)
        .with_dialect(dialect.as_ref())
        .with_recursion_limit(parser.recursion_limit.get())
        .build()?
        .parse_statements()?;
    match (statements.pop_front(), statements.len()) {
        (Some(statement), 0) => {
            guard::check(&statement)?;
            Ok(statement)
        }
        (first, rest) => {
            Err(Error::Refused(format!("send exactly one statement, got {}", usize::from(first.is_some()) + rest)))
        }
    }
}

/// Whether `plan` is an `EXPLAIN [ANALYZE]`, which must stay the root of its plan (no row limit,
/// no projection over it).
pub fn is_explain(plan: &LogicalPlan) -> bool {
    matches!(plan, LogicalPlan::Explain(_) | LogicalPlan::Analyze(_))
}

/// Refuse a plan that would do more than read: DDL, DML (`INSERT`, `COPY … TO`), or other
/// statements (`SET`, transactions). DataFusion's own verification; only its failure counts as
/// a refusal.
pub fn read_only(plan: &LogicalPlan) -> Result<()> {
    let options = SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false);
    options.verify_plan(plan).map_err(|e| {
        Error::Refused(match e {
            DataFusionError::Plan(msg) => msg,
            other => other.to_string(),
        })
    })
}

/// Run one read-only statement over `events` as `scope` sees it, on the query pool and within
/// the limits' deadline (see [`pool`]).
pub async fn run_scoped_sql(data: &DataDir, scope: &Scope, sql: String, limits: QueryLimits) -> Result<QueryOutput> {
    let (data, scope) = (data.clone(), scope.clone());
    pool::pool()
        .run(limits.timeout, async move {
            let ctx = session(&data, &scope, &limits).await?;
            run_sql(&ctx, &sql, &limits).await
        })
        .await
}

/// Run one read-only statement. The SQL is parsed once and its size and shape checked
/// ([`guard`]) before planning; the plan is checked by DataFusion's own verification (no DDL,
/// DML, COPY or other statements), and only that check's failure counts as a refusal.
pub async fn run_sql(ctx: &SessionContext, sql: &str, limits: &QueryLimits) -> Result<QueryOutput> {
    let state = ctx.state();
    let plan = state.statement_to_plan(one_statement(&state, sql)?).await?;
    read_only(&plan)?;
    // EXPLAIN's few rows need no limit.
    let explain = is_explain(&plan);
    let mut df = ctx.execute_logical_plan(plan).await?;
    if !explain {
        df = df.limit(0, Some(limits.max_rows.saturating_add(1)))?;
    }
    // The pool's deadline covers a whole request; this one keeps `run_sql` bounded on its own
    // (the command line and library callers).
    let mut batches =
        tokio::time::timeout(limits.timeout, df.collect()).await.map_err(|_| Error::Timeout(limits.timeout))??;
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let truncated = rows > limits.max_rows;
    if truncated {
        let mut keep = limits.max_rows;
        for b in &mut batches {
            *b = b.slice(0, b.num_rows().min(keep));
            keep -= b.num_rows();
        }
    }
    Ok(QueryOutput { batches, truncated })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_session_has_the_memory_pool_and_the_spill_cap() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let limits = QueryLimits::default();
        let ctx = session(&DataDir::new(tmp.path()), &Scope::All, &limits).await.expect("session");
        let rt = ctx.runtime_env();
        assert_eq!(rt.disk_manager.max_temp_directory_size(), MAX_SPILL_BYTES);
        assert!(
            matches!(rt.memory_pool.memory_limit(), datafusion::execution::memory_pool::MemoryLimit::Finite(n) if n == limits.memory_bytes)
        );
        // The next session of the scope reuses the kept base, with this query's own limit.
        let small = QueryLimits { memory_bytes: 1 << 20, ..limits };
        let ctx = session(&DataDir::new(tmp.path()), &Scope::All, &small).await.expect("session");
        assert!(matches!(
            ctx.runtime_env().memory_pool.memory_limit(),
            datafusion::execution::memory_pool::MemoryLimit::Finite(n) if n == 1 << 20
        ));
        assert!(ctx.table_exist("events").expect("catalog"), "the base's tables");
    }
}
