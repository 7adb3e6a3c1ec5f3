//! `POST /api/sql`: one read-only statement over `events`, scoped by the caller's key.
//!
//! A site's read key (`Authorization: Bearer ffr_…`) sees that site only: the table itself is
//! restricted ([`crate::query::ScopedTable`]). The operator's admin key (`--admin-key`) sees
//! every site. Body: `{"sql": "...", "format": "json" | "csv" | "arrow"}`; JSON is an array of
//! row objects, Arrow is an IPC stream. `X-Footfall-Truncated: true` marks output cut at the row
//! limit.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{ApiError, AppState, bearer};
use crate::query::{self, Scope};

/// Output formats of `/api/sql`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SqlFormat {
    #[default]
    Json,
    Csv,
    Arrow,
}

/// The request body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlRequest {
    pub sql: String,
    #[serde(default)]
    pub format: SqlFormat,
}

/// Which sites the bearer key may read in full (SQL, people, changes): the admin key every
/// site, a read key its own. A share link's key is refused here (403 `view_only_key`).
pub(crate) fn scope(app: &AppState, headers: &HeaderMap) -> Result<Scope, ApiError> {
    match reader(app, headers)? {
        Reader { view_only: true, .. } => Err(ApiError::ViewOnlyKey),
        Reader { scope, .. } => Ok(scope),
    }
}

/// Who may read reports: the admin key, a read key, or a share link's key (`view_only`).
#[derive(Debug)]
pub(crate) struct Reader {
    pub scope: Scope,
    /// A share link: reports, segment sizes and saved views of one site, never people's ids,
    /// SQL or changes.
    pub view_only: bool,
}

/// The sites the bearer key may read reports of, and whether it only views.
pub(crate) fn reader(app: &AppState, headers: &HeaderMap) -> Result<Reader, ApiError> {
    let key = bearer(headers).ok_or(ApiError::Unauthorized)?;
    if app.admin_key.as_deref().is_some_and(|admin| crate::sites::keys_match(admin, key)) {
        return Ok(Reader { scope: Scope::All, view_only: false });
    }
    if let Some(site) = app.ingestor.sites.by_read_key(key) {
        return Ok(Reader { scope: Scope::Sites(vec![site.id.clone()]), view_only: false });
    }
    let site = app.ingestor.sites.by_share_key(key).ok_or(ApiError::Unauthorized)?;
    Ok(Reader { scope: Scope::Sites(vec![site.id.clone()]), view_only: true })
}

/// The site named in a URL path (`/api/sites/{site}/…`): an id that cannot be one is no site (404).
pub(crate) fn path_site(site: &str) -> Result<crate::model::SiteId, ApiError> {
    crate::model::SiteId::parse(site).map_err(|e| ApiError::NotFound(e.to_string()))
}

/// `site`, when `scope` (the bearer key's) may read it; else 403 `forbidden_site`.
pub(crate) fn allowed(scope: &Scope, site: crate::model::SiteId) -> Result<crate::model::SiteId, ApiError> {
    match scope.allows(&site) {
        true => Ok(site),
        false => Err(crate::reports::Error::Forbidden(site.as_str().to_owned()).into()),
    }
}

/// Run the statement and answer in the requested format.
#[utoipa::path(post, path = "/api/sql", tag = "query", request_body = crate::api::sql::SqlRequest,
    responses((status = 200, description = "The rows: JSON (an array of objects), CSV, or an Arrow IPC stream; `X-Footfall-Truncated: true` when cut at the row limit"), (status = 400, description = "Invalid request (the field is named)", body = crate::api::openapi::ErrorBody), (status = 401, description = "Missing or wrong key", body = crate::api::openapi::ErrorBody), (status = 403, description = "The key may not do this", body = crate::api::openapi::ErrorBody), (status = 408, description = "The query ran past the deadline", body = crate::api::openapi::ErrorBody), (status = 503, description = "Busy or the write-ahead log is full; retry later", body = crate::api::openapi::ErrorBody)),
    security(("key" = [])))]
pub async fn post_sql(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let scope = scope(&app, &headers)?;
    let req: SqlRequest = serde_json::from_slice(&body).map_err(|e| ApiError::BadBody(e.to_string()))?;
    let out = query::run_scoped_sql(&app.data, &scope, req.sql, app.query_limits()).await?;
    let (content_type, body) = match req.format {
        SqlFormat::Json => ("application/json", render(&out.batches, query::output::Format::Json)?),
        SqlFormat::Csv => ("text/csv; charset=utf-8", render(&out.batches, query::output::Format::Csv)?),
        SqlFormat::Arrow => ("application/vnd.apache.arrow.stream", arrow_stream(&out.batches)?),
    };
    let mut resp = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    if out.truncated {
        resp.headers_mut().insert("x-footfall-truncated", HeaderValue::from_static("true"));
    }
    Ok(resp)
}

fn render(batches: &[arrow::array::RecordBatch], f: query::output::Format) -> Result<Vec<u8>, ApiError> {
    query::output::render(batches, f).map(String::into_bytes).map_err(|e| ApiError::Internal(e.to_string()))
}

fn arrow_stream(batches: &[arrow::array::RecordBatch]) -> Result<Vec<u8>, ApiError> {
    let schema =
        batches.first().map(|b| b.schema()).unwrap_or_else(|| std::sync::Arc::new(arrow::datatypes::Schema::empty()));
    let internal = |e: arrow::error::ArrowError| ApiError::Internal(e.to_string());
    let mut w = arrow_ipc::writer::StreamWriter::try_new(Vec::new(), &schema).map_err(internal)?;
    for b in batches {
        w.write(b).map_err(internal)?;
    }
    w.into_inner().map_err(internal)
}
