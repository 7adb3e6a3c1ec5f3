//! The Postgres wire protocol (`footfall serve --pg-listen 127.0.0.1:5433`), for psql, BI tools
//! (Metabase, Grafana, Superset, DBeaver) and notebooks (psycopg, SQLAlchemy, pandas).
//!
//! Built on `datafusion-postgres` (pgwire, the Arrow encoders and `pg_catalog`); footfall adds
//! what makes it the same door as `POST /api/sql`:
//! - **Who**: SCRAM-SHA-256 (the key never crosses the wire). The user is a site id and the
//!   password that site's read key; the user [`ADMIN_USER`] with the admin key sees every site.
//!   Write keys and share links are refused, as on `/api/sql`.
//! - **What**: each connection gets its own session over its scope's tables ([`query::pg_session`]):
//!   `events` restricted to the site in the table itself, the views, footfall's functions, plus
//!   `pg_catalog`. Every statement passes the same checks as `/api/sql` before it is planned
//!   ([`query::guard`]) and after (no DDL, DML, COPY or other statements).
//! - **Limits**: connections run on the query runtime, never the ingest one; each statement
//!   takes a turn with every other query ([`query::pool::QueryPool::turn`]), runs within the
//!   query deadline and the memory limit, and returns at most the row limit (a NOTICE says when
//!   rows were cut). `SET` of a DataFusion option is accepted and ignored, so a client cannot lift
//!   a limit; the Postgres settings clients send (`DateStyle`, `extra_float_digits`,
//!   `statement_timeout`, `TimeZone`, …) behave as Postgres's.
//! - **TLS** is off unless `--pg-tls-cert` and `--pg-tls-key` are given; then every connection
//!   must use it (`sslmode=require`). Without them keep the port on 127.0.0.1 and reach it
//!   through an SSH tunnel (README).

use std::fmt::Debug;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use datafusion::common::ParamValues;
use datafusion::common::{Column, DFSchema};
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::{EmptyRelation, Expr, LogicalPlan, LogicalPlanBuilder};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{Set, Statement};
use datafusion_postgres::arrow_pg::datatypes::df::encode_dataframe;
use datafusion_postgres::hooks::HookClient;
use datafusion_postgres::hooks::set_show::SetShowHook;
use datafusion_postgres::hooks::transactions::TransactionStatementHook;
use datafusion_postgres::pgwire::api::auth::sasl::SASLAuthStartupHandler;
use datafusion_postgres::pgwire::api::auth::sasl::scram::{ScramAuth, gen_salted_password};
use datafusion_postgres::pgwire::api::auth::{
    AuthSource, DefaultServerParameterProvider, LoginInfo, Password, StartupHandler,
};
use datafusion_postgres::pgwire::api::cancel::DefaultCancelHandler;
use datafusion_postgres::pgwire::api::portal::{Format, Portal};
use datafusion_postgres::pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use datafusion_postgres::pgwire::api::results::{QueryResponse, Response, Tag};
use datafusion_postgres::pgwire::api::store::PortalStore;
use datafusion_postgres::pgwire::api::{
    ClientInfo, ClientPortalStore, ConnectionManager, METADATA_USER, PgWireConnectionState, PgWireServerHandlers,
};
use datafusion_postgres::pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use datafusion_postgres::pgwire::messages::response::NoticeResponse;
use datafusion_postgres::pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use datafusion_postgres::pgwire::tokio::{TlsAcceptor, tokio_rustls};
use datafusion_postgres::pgwire::types::format::FormatOptions;
use datafusion_postgres::{DfSessionService, Parser, QueryHook};
use futures::{Sink, SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::model::SiteId;
use crate::query::{self, QueryLimits, Scope, guard};
use crate::sites::Sites;
use crate::store::paths::DataDir;

/// The user name that logs in with the admin key and sees every site. It cannot be a site id
/// (site ids have no `_`).
pub const ADMIN_USER: &str = "footfall_admin";

/// Most Postgres connections open at once; past it a new one is closed at once.
pub const MAX_CONNECTIONS: usize = 64;

/// PBKDF2 rounds of SCRAM-SHA-256 (RFC 7677's minimum, Postgres's default).
const SCRAM_ITERATIONS: usize = 4096;

/// What every connection shares.
pub struct PgServer {
    data: DataDir,
    sites: Arc<Sites>,
    admin_key: Option<Arc<str>>,
    limits: QueryLimits,
    connections: Arc<ConnectionManager>,
    /// With a certificate, every connection must use TLS.
    tls: Option<TlsAcceptor>,
}

/// A certificate chain and its private key, PEM files.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    /// The acceptor for these files; an error names the file that would not load.
    fn acceptor(&self) -> Result<TlsAcceptor, super::Error> {
        use tokio_rustls::rustls::pki_types::pem::PemObject;
        use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let bad = |path: &Path, e: &dyn std::fmt::Display| super::Error::PgTls(format!("{}: {e}", path.display()));
        let certs = CertificateDer::pem_file_iter(&self.cert)
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(|e| bad(&self.cert, &e))?;
        let key = PrivateKeyDer::from_pem_file(&self.key).map_err(|e| bad(&self.key, &e))?;
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let mut config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
            .map_err(|e| bad(&self.cert, &e))?;
        // What libpq 17+ asks for when it opens TLS at once (sslnegotiation=direct).
        config.alpn_protocols = vec![b"postgresql".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

impl PgServer {
    /// The server; with `tls`, its certificate is loaded now (a bad file stops start-up).
    pub fn new(
        data: DataDir,
        sites: Arc<Sites>,
        admin_key: Option<Arc<str>>,
        limits: QueryLimits,
        tls: Option<&TlsFiles>,
    ) -> Result<Self, super::Error> {
        let tls = tls.map(TlsFiles::acceptor).transpose()?;
        Ok(Self { data, sites, admin_key, limits, connections: Arc::new(ConnectionManager::new()), tls })
    }

    /// The key `user` logs in with, and what it may read; None: no such user.
    fn account(&self, user: &str) -> Option<(String, Scope)> {
        if user == ADMIN_USER {
            return self.admin_key.as_deref().map(|k| (k.to_owned(), Scope::All));
        }
        let id = SiteId::parse(user).ok()?;
        let site = self.sites.get(id.as_str())?;
        Some((site.read_key.clone(), Scope::Sites(vec![id])))
    }

    /// Accept connections on `listener` (a std listener, bound by the caller so a bad address
    /// fails start-up) until `stop`. Runs on the query runtime: the caller spawns it there.
    pub async fn serve(self: Arc<Self>, listener: std::net::TcpListener, stop: CancellationToken) {
        let listener = match listener.set_nonblocking(true).and_then(|()| TcpListener::from_std(listener)) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "the Postgres listener failed; Postgres wire is off");
                return;
            }
        };
        let open = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        loop {
            let (socket, peer) = tokio::select! {
                () = stop.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accepting a Postgres connection failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let Ok(permit) = open.clone().try_acquire_owned() else {
                tracing::warn!(%peer, max = MAX_CONNECTIONS, "too many Postgres connections; closing a new one");
                continue;
            };
            let _ = socket.set_nodelay(true);
            let handlers = Arc::new(Connection::new(self.clone()));
            let (stop, tls) = (stop.clone(), self.tls.clone());
            tokio::spawn(async move {
                let _permit = permit;
                tokio::select! {
                    () = stop.cancelled() => {}
                    done = datafusion_postgres::pgwire::tokio::process_socket(socket, tls, handlers) => {
                        if let Err(e) = done {
                            tracing::debug!(%peer, error = %e, "Postgres connection ended with an error");
                        }
                    }
                }
            });
        }
    }
}

/// Bind `addr` for [`PgServer::serve`]; the listener and the address it got.
pub fn bind(addr: SocketAddr) -> Result<(std::net::TcpListener, SocketAddr), super::Error> {
    let bind_error = |source| super::Error::Bind { addr, source };
    let listener = std::net::TcpListener::bind(addr).map_err(bind_error)?;
    let at = listener.local_addr().map_err(bind_error)?;
    Ok((listener, at))
}

/// One connection's handlers: its authentication, then its session (made once the user is known).
struct Connection {
    server: Arc<PgServer>,
    startup: Arc<Startup>,
    queries: Arc<Queries>,
}

impl Connection {
    fn new(server: Arc<PgServer>) -> Self {
        let session = Arc::new(OnceLock::new());
        let mut scram = ScramAuth::new(Arc::new(Keys(server.clone())));
        scram.set_iterations(SCRAM_ITERATIONS);
        let sasl = SASLAuthStartupHandler::new(Arc::new(DefaultServerParameterProvider::default()))
            .with_scram(scram)
            .with_connection_manager(server.connections.clone());
        let startup = Arc::new(Startup { sasl, server: server.clone(), session: session.clone() });
        let queries = Arc::new(Queries { session, limits: server.limits });
        Self { server, startup, queries }
    }
}

impl PgWireServerHandlers for Connection {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.queries.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.queries.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.startup.clone()
    }

    fn cancel_handler(&self) -> Arc<impl datafusion_postgres::pgwire::api::cancel::CancelHandler> {
        Arc::new(DefaultCancelHandler::new(self.server.connections.clone()))
    }
}

/// The keys SCRAM checks against: a site's read key, or the admin key for [`ADMIN_USER`]. An
/// unknown user gets a random one, so the answer is the same "password authentication failed"
/// whether the user exists or not.
struct Keys(Arc<PgServer>);

impl Debug for Keys {
    // pgwire asks for Debug; the keys are never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys")
    }
}

#[async_trait]
impl AuthSource for Keys {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt)
            .map_err(|e| PgWireError::ApiError(Box::new(std::io::Error::other(e.to_string()))))?;
        let key = match login.user().and_then(|u| self.0.account(u)) {
            Some((key, _)) => key,
            None => crate::sites::new_key("none"),
        };
        Ok(Password::new(Some(salt.to_vec()), gen_salted_password(&key, &salt, SCRAM_ITERATIONS)))
    }
}

/// A connection's session, made once it has logged in.
type SessionSlot = Arc<OnceLock<Arc<DfSessionService>>>;

/// SCRAM, then the session of the user's scope.
struct Startup {
    sasl: SASLAuthStartupHandler<DefaultServerParameterProvider>,
    server: Arc<PgServer>,
    session: SessionSlot,
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(&self, client: &mut C, message: PgWireFrontendMessage) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let Err(e) = self.sasl.on_startup(client, message).await {
            // pgwire's SCRAM names no user; Postgres's message does.
            let user = || client.metadata().get(METADATA_USER).cloned().unwrap_or_default();
            return Err(match e {
                PgWireError::InvalidPassword(_) => PgWireError::InvalidPassword(user()),
                e => e,
            });
        }
        if self.server.tls.is_some() && !client.is_secure() {
            let refusal = "footfall's Postgres port requires TLS (sslmode=require)";
            return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                "FATAL".to_owned(),
                "28000".to_owned(), // invalid_authorization_specification
                refusal.to_owned(),
            ))));
        }
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) || self.session.get().is_some() {
            return Ok(());
        }
        // Logged in: the user's key matched, so the user names the scope.
        let user = client.metadata().get(METADATA_USER).cloned().unwrap_or_default();
        let Some((_, scope)) = self.server.account(&user) else {
            return Err(PgWireError::InvalidPassword(user));
        };
        let ctx = query::pg_session(&self.server.data, &scope, &self.server.limits).await.map_err(api_error)?;
        let hooks: Vec<Arc<dyn QueryHook>> = vec![
            Arc::new(Ignored),
            Arc::new(SetShowHook),
            Arc::new(TransactionStatementHook),
            Arc::new(ReadOnly { limits: self.server.limits }),
        ];
        let _ = self.session.set(Arc::new(DfSessionService::new_with_hooks(Arc::new(ctx), hooks)));
        tracing::debug!(%user, "Postgres connection logged in");
        Ok(())
    }
}

/// A query error as Postgres reports it (severity, SQLSTATE, message).
fn pg_error(e: query::Error) -> PgWireError {
    let code = match &e {
        query::Error::Refused(_) => "25006",    // read_only_sql_transaction
        query::Error::TooComplex(_) => "54000", // program_limit_exceeded
        query::Error::Timeout(_) => "57014",    // query_canceled
        query::Error::Busy { .. } => "53000",   // insufficient_resources
        query::Error::DataFusion(_) => return api_error(e),
        query::Error::Panicked(_) | query::Error::Io { .. } => "XX000",
    };
    PgWireError::UserError(Box::new(ErrorInfo::new("ERROR".to_owned(), code.to_owned(), e.to_string())))
}

fn api_error(e: impl std::error::Error + Send + Sync + 'static) -> PgWireError {
    PgWireError::ApiError(Box::new(e))
}

/// The statements of a connection: each takes a turn on the query pool and runs within the
/// deadline, its rows read to the end there (so the deadline covers the work, which DataFusion
/// does as rows are pulled) and cut at the row limit.
struct Queries {
    session: SessionSlot,
    limits: QueryLimits,
}

impl Queries {
    fn session(&self) -> PgWireResult<Arc<DfSessionService>> {
        self.session.get().cloned().ok_or(PgWireError::NotReadyForQuery)
    }

    /// Run `work` (one statement, or a simple query's several) in a turn, within the deadline.
    async fn bounded<T>(&self, work: impl Future<Output = PgWireResult<T>>) -> PgWireResult<T> {
        let _turn = query::pool::pool().turn().await.map_err(pg_error)?;
        match tokio::time::timeout(self.limits.timeout, work).await {
            Ok(done) => done,
            Err(_) => Err(pg_error(query::Error::Timeout(self.limits.timeout))),
        }
    }

    /// Read a result's rows now, at most the row limit; a NOTICE tells the client when rows
    /// were cut.
    async fn read<C>(&self, client: &mut C, response: Response) -> PgWireResult<Response>
    where
        C: Sink<PgWireBackendMessage> + Unpin + Send,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let Response::Query(mut result) = response else {
            return Ok(response);
        };
        let mut rows = Vec::new();
        let mut cut = false;
        while let Some(row) = result.data_rows().next().await {
            if rows.len() == self.limits.max_rows {
                cut = true;
                break;
            }
            rows.push(row?);
        }
        if cut {
            let notice = ErrorInfo::new(
                "NOTICE".to_owned(),
                "01000".to_owned(),
                format!("footfall: the result was cut at {} rows (the row limit)", self.limits.max_rows),
            );
            client.send(PgWireBackendMessage::NoticeResponse(NoticeResponse::from(notice))).await?;
        }
        let tag = result.command_tag().to_owned();
        let mut read = QueryResponse::new(result.row_schema(), futures::stream::iter(rows.into_iter().map(Ok)));
        read.set_command_tag(&tag);
        Ok(Response::Query(read))
    }
}

#[async_trait]
impl SimpleQueryHandler for Queries {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let session = self.session()?;
        guard::check_text(query).map_err(pg_error)?;
        self.bounded(async {
            let mut read = Vec::new();
            for response in SimpleQueryHandler::do_query(session.as_ref(), client, query).await? {
                read.push(self.read(client, response).await?);
            }
            Ok(read)
        })
        .await
    }
}

#[async_trait]
impl ExtendedQueryHandler for Queries {
    type Statement = <DfSessionService as ExtendedQueryHandler>::Statement;
    type QueryParser = Parser;

    fn query_parser(&self) -> Arc<Parser> {
        match self.session.get() {
            Some(session) => session.query_parser(),
            // Before login pgwire answers nothing but the startup; a parser over no tables.
            None => DfSessionService::new(Arc::new(SessionContext::new())).query_parser(),
        }
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Self::Statement>,
        max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let session = self.session()?;
        self.bounded(async {
            let response = ExtendedQueryHandler::do_query(session.as_ref(), client, portal, max_rows).await?;
            self.read(client, response).await
        })
        .await
    }
}

/// Statements footfall accepts and ignores, answering with their command tag:
/// - `SET` of anything but the Postgres settings `datafusion-postgres` keeps per connection.
///   Without it a `SET datafusion.runtime.memory_limit` would reach DataFusion and lift the
///   query's limits;
/// - savepoints (`SAVEPOINT`, `RELEASE`, `ROLLBACK TO`), which psycopg and SQLAlchemy use inside
///   transactions: every statement here only reads, so there is nothing to roll back.
struct Ignored;

impl Ignored {
    /// The command tag of an ignored statement; None: not ignored.
    fn tag(statement: &Statement) -> Option<&'static str> {
        Self::savepoint(statement).or_else(|| Self::ignored_set(statement).then_some("SET"))
    }

    /// The command tag of a savepoint statement.
    fn savepoint(statement: &Statement) -> Option<&'static str> {
        match statement {
            Statement::Savepoint { .. } => Some("SAVEPOINT"),
            Statement::ReleaseSavepoint { .. } => Some("RELEASE"),
            Statement::Rollback { savepoint: Some(_), .. } => Some("ROLLBACK"),
            _ => None,
        }
    }

    /// A `SET` of anything but the Postgres settings kept per connection.
    fn ignored_set(statement: &Statement) -> bool {
        match statement {
            Statement::Set(Set::SingleAssignment { scope: None, hivevar: false, variable, values }) => {
                let var = variable.to_string().to_lowercase();
                let kept = matches!(
                    var.as_str(),
                    "statement_timeout"
                        | "datestyle"
                        | "bytea_output"
                        | "intervalstyle"
                        | "application_name"
                        | "extra_float_digits"
                        | "search_path"
                );
                !kept || values.is_empty()
            }
            Statement::Set(Set::SetTimeZone { local: false, .. }) => false,
            Statement::Set(_) => true,
            _ => false,
        }
    }
}

#[async_trait]
impl QueryHook for Ignored {
    async fn handle_simple_query(
        &self,
        statement: &Statement,
        _ctx: &SessionContext,
        _client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        Self::tag(statement).map(|tag| Ok(Response::Execution(Tag::new(tag))))
    }

    async fn handle_extended_parse_query(
        &self,
        statement: &Statement,
        _ctx: &SessionContext,
        _client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        // A SET is planned by SetShowHook (an empty relation); execution is what is ignored.
        Self::savepoint(statement).map(|_| {
            Ok(LogicalPlan::EmptyRelation(EmptyRelation {
                produce_one_row: false,
                schema: Arc::new(DFSchema::empty()),
            }))
        })
    }

    async fn handle_extended_query(
        &self,
        statement: &Statement,
        _plan: &LogicalPlan,
        _params: &ParamValues,
        _ctx: &SessionContext,
        _client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        Self::tag(statement).map(|tag| Ok(Response::Execution(Tag::new(tag))))
    }
}

/// Every statement the hooks before it did not answer: checked as `/api/sql` checks SQL, then
/// planned, then refused unless the plan only reads. The simple protocol's statements are run
/// here too, so no statement reaches `datafusion-postgres`'s own execution unchecked.
struct ReadOnly {
    limits: QueryLimits,
}

impl ReadOnly {
    async fn plan(&self, statement: &Statement, ctx: &SessionContext) -> PgWireResult<LogicalPlan> {
        let mut statement = statement.clone();
        one_row_subqueries(&mut statement);
        let statement = datafusion::sql::parser::Statement::Statement(Box::new(statement));
        guard::check(&statement).map_err(pg_error)?;
        let plan = ctx.state().statement_to_plan(statement).await.map_err(api_error)?;
        query::read_only(&plan).map_err(pg_error)?;
        let plan = typed_placeholders(plan).and_then(every_parameter_kept).map_err(api_error)?;
        as_json_where_needed(plan, ctx)
    }
}

/// Aggregates a scalar subquery may already select (it then gives one row as it is).
const AGGREGATES: [&str; 14] = [
    "count",
    "sum",
    "min",
    "max",
    "avg",
    "array_agg",
    "string_agg",
    "bool_and",
    "bool_or",
    "every",
    "first_value",
    "last_value",
    "json_agg",
    "jsonb_agg",
];

/// Each scalar subquery that selects one plain value, `(SELECT t.typcollation FROM pg_type t
/// WHERE t.oid = a.atttypid)`, as `(SELECT first_value(t.typcollation) …)`. Postgres runs such
/// a subquery per row and fails only if it finds two rows; DataFusion turns a correlated one into
/// a join and refuses it unless it is aggregated ("Correlated scalar subquery must be aggregated
/// to return at most one row"), which broke SQLAlchemy's column reflection (Superset's too). Where
/// Postgres would fail on two rows, this gives the first.
fn one_row_subqueries(statement: &mut Statement) {
    use std::ops::ControlFlow;

    use datafusion::sql::sqlparser::ast::{Expr as SqlExpr, GroupByExpr, SelectItem, SetExpr, visit_expressions_mut};
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser as SqlParser;

    let aggregated = |e: &SqlExpr| match e {
        SqlExpr::Function(f) => {
            let name = f.name.to_string().to_lowercase();
            AGGREGATES.contains(&name.rsplit('.').next().unwrap_or_default().trim_matches('"'))
        }
        _ => false,
    };
    let _ = visit_expressions_mut(statement, |e| {
        if let SqlExpr::Subquery(query) = e
            && let SetExpr::Select(select) = query.body.as_mut()
            && select.having.is_none()
            && select.distinct.is_none()
            && matches!(&select.group_by, GroupByExpr::Expressions(keys, _) if keys.is_empty())
            && let [item] = select.projection.as_mut_slice()
            && let SelectItem::UnnamedExpr(value) | SelectItem::ExprWithAlias { expr: value, .. } = item
            && !aggregated(value)
            && let Ok(first) = SqlParser::new(&PostgreSqlDialect {})
                .try_with_sql(&format!("first_value({value})"))
                .and_then(|mut p| p.parse_expr())
        {
            *value = first;
        }
        ControlFlow::<()>::Continue(())
    });
}

/// The plan with each untyped parameter that is cast (`$1::VARCHAR`) typed as its cast, in
/// subqueries too. datafusion-postgres looks for such casts outside subqueries only, and a
/// parameter in a subquery then took another's type: SQLAlchemy's column reflection (a
/// `json_build_object($2::VARCHAR, …)` in a scalar subquery) failed with "Failed to parse
/// parameter".
fn typed_placeholders(plan: LogicalPlan) -> datafusion::common::Result<LogicalPlan> {
    use datafusion::common::tree_node::{Transformed, TreeNode};
    use datafusion::logical_expr::expr::{Cast, Placeholder};
    let typed = plan.transform_up_with_subqueries(|node| {
        node.map_expressions(|e| {
            e.transform_up(|e| match e {
                Expr::Cast(Cast { expr, field })
                    if matches!(*expr, Expr::Placeholder(Placeholder { field: None, .. })) =>
                {
                    let Expr::Placeholder(Placeholder { id, .. }) = *expr else {
                        unreachable!("matched as a placeholder above")
                    };
                    let placeholder = Expr::Placeholder(Placeholder { id, field: Some(field.clone()) });
                    Ok(Transformed::yes(Expr::Cast(Cast { expr: Box::new(placeholder), field })))
                }
                e => Ok(Transformed::no(e)),
            })
        })
    })?;
    Ok(typed.data)
}

/// The plan with every parameter up to its highest (`$1` … `$n`) still in it. pg_catalog's SQL
/// rewriting replaces a subquery over a catalog table it lacks (`pg_sequence`, `pg_attrdef`) with
/// NULL, parameters and all; datafusion-postgres then matched the client's values to the
/// remaining parameters in order, one place off, and SQLAlchemy's column reflection failed with
/// "Failed to parse parameter". A filter that is always true (`$k IS NULL OR TRUE`) keeps each
/// lost parameter in its place; its value is read as text and unused.
fn every_parameter_kept(plan: LogicalPlan) -> datafusion::common::Result<LogicalPlan> {
    use datafusion::logical_expr::expr::Placeholder;
    use datafusion::prelude::lit;
    if query::is_explain(&plan) {
        return Ok(plan);
    }
    let present = plan.get_parameter_types()?;
    let highest = present.keys().filter_map(|id| id.strip_prefix('$')?.parse::<usize>().ok()).max().unwrap_or(0);
    let lost = (1..=highest)
        .map(|n| format!("${n}"))
        .filter(|id| !present.contains_key(id))
        .map(|id| Expr::Placeholder(Placeholder::new_with_field(id, None)).is_null().or(lit(true)))
        .reduce(Expr::and);
    match lost {
        Some(always_true) => LogicalPlanBuilder::from(plan).filter(always_true)?.build(),
        None => Ok(plan),
    }
}

/// The plan with its maps, structs and lists of structs (`props`, `items`) turned into JSON text
/// ([`query::needs_json`]): Postgres has no type for them, and arrow-pg refuses a map.
fn as_json_where_needed(plan: LogicalPlan, ctx: &SessionContext) -> PgWireResult<LogicalPlan> {
    if query::is_explain(&plan) || !plan.schema().fields().iter().any(|f| query::needs_json(f.data_type())) {
        return Ok(plan);
    }
    let to_json = ctx.udf("footfall_to_json").map_err(api_error)?;
    let columns: Vec<Expr> = plan
        .schema()
        .iter()
        .map(|(qualifier, field)| {
            let column = Expr::Column(Column::new(qualifier.cloned(), field.name()));
            match query::needs_json(field.data_type()) {
                true => to_json.call(vec![column]).alias(field.name()),
                false => column,
            }
        })
        .collect();
    LogicalPlanBuilder::from(plan).project(columns).and_then(LogicalPlanBuilder::build).map_err(api_error)
}

#[async_trait]
impl QueryHook for ReadOnly {
    async fn handle_simple_query(
        &self,
        statement: &Statement,
        ctx: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        let run = async {
            let plan = self.plan(statement, ctx).await?;
            // EXPLAIN stays the root of its plan; elsewhere one row past the limit tells
            // `Queries::read` that rows were cut.
            let explain = query::is_explain(&plan);
            let mut df = ctx.execute_logical_plan(plan).await.map_err(api_error)?;
            if !explain {
                df = df.limit(0, Some(self.limits.max_rows.saturating_add(1))).map_err(api_error)?;
            }
            let options = Arc::new(FormatOptions::from_client_metadata(client.metadata()));
            encode_dataframe(df, &Format::UnifiedText, Some(options)).await.map(Response::Query)
        };
        Some(run.await)
    }

    async fn handle_extended_parse_query(
        &self,
        statement: &Statement,
        ctx: &SessionContext,
        _client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        Some(self.plan(statement, ctx).await)
    }

    async fn handle_extended_query(
        &self,
        _statement: &Statement,
        _plan: &LogicalPlan,
        _params: &ParamValues,
        _ctx: &SessionContext,
        _client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser as SqlParser;

    use super::*;

    fn statement(sql: &str) -> Statement {
        SqlParser::parse_sql(&PostgreSqlDialect {}, sql).expect("parses").remove(0)
    }

    #[test]
    fn datafusion_settings_and_savepoints_are_ignored_postgres_settings_are_not() {
        let tag = |sql: &str| Ignored::tag(&statement(sql));
        // These would change the session's runtime (its memory limit, its spill space).
        assert_eq!(tag("SET datafusion.runtime.memory_limit = '100G'"), Some("SET"));
        assert_eq!(tag("SET datafusion.execution.target_partitions = 64"), Some("SET"));
        assert_eq!(tag("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED"), Some("SET"));
        assert_eq!(tag("SAVEPOINT _pg3_1"), Some("SAVEPOINT"));
        assert_eq!(tag("RELEASE SAVEPOINT _pg3_1"), Some("RELEASE"));
        assert_eq!(tag("ROLLBACK TO SAVEPOINT _pg3_1"), Some("ROLLBACK"));
        // Left to datafusion-postgres, which keeps them per connection as Postgres does.
        for kept in [
            "SET extra_float_digits = 3",
            "SET TIME ZONE 'UTC'",
            "SET statement_timeout = '5s'",
            "ROLLBACK",
            "SELECT 1",
        ] {
            assert_eq!(tag(kept), None, "{kept}");
        }
    }

    #[test]
    fn a_scalar_subquery_of_one_plain_value_is_aggregated_and_no_other() {
        let rewritten = |sql: &str| {
            let mut s = statement(sql);
            one_row_subqueries(&mut s);
            s.to_string()
        };
        assert_eq!(
            rewritten(
                "SELECT (SELECT t.typcollation FROM pg_type t WHERE t.oid = a.atttypid) AS c FROM pg_attribute a"
            ),
            "SELECT (SELECT first_value(t.typcollation) FROM pg_type t WHERE t.oid = a.atttypid) AS c FROM pg_attribute a"
        );
        for unchanged in [
            "SELECT (SELECT max(t.oid) FROM pg_type t) FROM pg_attribute a",
            "SELECT (SELECT count(*) FROM events) AS n",
            "SELECT (SELECT t.name FROM t GROUP BY t.name) FROM u",
            "SELECT a FROM t WHERE a IN (SELECT b FROM u)",
            "SELECT EXISTS (SELECT b FROM u)",
        ] {
            assert_eq!(rewritten(unchanged), unchanged);
        }
    }

    #[tokio::test]
    async fn a_parameter_lost_from_the_plan_keeps_its_place() {
        let ctx = SessionContext::new();
        // $1 is gone (as pg_catalog's rewriting drops a subquery with its parameters); $2 is there.
        let plan = ctx.state().create_logical_plan("SELECT 1 AS one WHERE $2 = 'x'").await.expect("plan");
        assert_eq!(plan.get_parameter_types().expect("types").len(), 1);
        let kept = every_parameter_kept(plan).expect("kept");
        let mut ids: Vec<String> = kept.get_parameter_types().expect("types").into_keys().collect();
        ids.sort();
        assert_eq!(ids, ["$1", "$2"]);
        // And the plan still answers the same once the values are bound.
        let values = datafusion::common::ParamValues::List(vec![
            datafusion::scalar::ScalarValue::Utf8(Some("unused".into())).into(),
            datafusion::scalar::ScalarValue::Utf8(Some("x".into())).into(),
        ]);
        let bound = kept.replace_params_with_values(&values).expect("bound");
        let rows = ctx.execute_logical_plan(bound).await.expect("plan").collect().await.expect("run");
        assert_eq!(rows.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
    }
}
