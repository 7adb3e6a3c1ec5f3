//! `POST /api/import?site=S&format=F[&map=M][&max_errors=N]`: the body is a file in one of the
//! import formats (`footfall import` for files over [`MAX_IMPORT_BODY`]), gzip accepted. The
//! admin key, or the site's write key. Answers the import's report: rows, imported, skipped,
//! the bad rows by line, days written.

use axum::Json;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use http_body_util::BodyExt;
use serde::Deserialize;

use super::{ApiError, AppState};
use crate::import::{ColumnMap, ImportFormat, ImportOptions, ImportReport};
use crate::model::SiteId;

/// Largest import body over HTTP, after gzip decoding.
pub const MAX_IMPORT_BODY: usize = 64 << 20;

/// The query of `POST /api/import`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    pub site: Option<String>,
    pub format: Option<String>,
    pub map: Option<String>,
    pub max_errors: Option<usize>,
}

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    crate::reports::invalid(field, message).into()
}

#[utoipa::path(post, path = "/api/import", tag = "collect", params(crate::api::import::ImportQuery),
    request_body(content = String, description = "NDJSON, CSV, or an export of Plausible, Umami, Matomo, PostHog or Segment (gzip accepted)"),
    responses((status = 200, description = "What was imported and what was refused, by line", body = Object), (status = 400, description = "Invalid request (the field is named)", body = crate::api::openapi::ErrorBody), (status = 401, description = "Missing or wrong key", body = crate::api::openapi::ErrorBody), (status = 413, description = "Body too large", body = crate::api::openapi::ErrorBody), (status = 503, description = "Busy or the write-ahead log is full; retry later", body = crate::api::openapi::ErrorBody)),
    security(("key" = [])))]
pub async fn post_import(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ImportQuery>,
    body: Body,
) -> Result<Json<ImportReport>, ApiError> {
    let site = SiteId::parse(q.site.as_deref().ok_or_else(|| invalid("site", "name the site: ?site=<id>"))?)
        .map_err(|e| invalid("site", e.to_string()))?;
    // The site's write key (its backend), or the admin key.
    let key = super::bearer(&headers).ok_or(ApiError::Unauthorized)?;
    let admin = app.admin_key.as_deref().is_some_and(|a| crate::sites::keys_match(a, key));
    let writer = app.ingestor.sites.by_write_key(key);
    match (admin, writer) {
        (true, _) => {}
        (false, Some(w)) if w.id == site => {}
        (false, Some(_)) => return Err(crate::reports::Error::Forbidden(site.as_str().to_owned()).into()),
        (false, None) => return Err(ApiError::Unauthorized),
    }
    if app.ingestor.sites.get(site.as_str()).is_none() {
        return Err(ApiError::NotFound(format!("no site {site}")));
    }
    let format: ImportFormat = serde_json::from_value(serde_json::Value::String(q.format.clone().unwrap_or_default()))
        .map_err(|_| invalid("format", "one of footfall, segment, posthog, ga4, ga4-parquet, csv"))?;
    let map = q.map.as_deref().map(ColumnMap::parse).transpose().map_err(|e| invalid("map", e))?;
    if format == ImportFormat::Csv && map.is_none() {
        return Err(invalid("map", "the csv format needs a column map, e.g. map=ts=time,name=event"));
    }
    let bytes = http_body_util::Limited::new(body, MAX_IMPORT_BODY).collect().await.map_err(|e| {
        if e.is::<http_body_util::LengthLimitError>() { ApiError::TooLarge } else { ApiError::BadBody(e.to_string()) }
    })?;
    let opts = ImportOptions { site, format, map, max_errors: q.max_errors.unwrap_or(100) };
    Ok(Json(run(&app, opts, bytes.to_bytes().to_vec()).await?))
}

/// Import `body` (a file in `opts.format`) into the store, off the async runtime; also what
/// Segment's API does with calls older than the live window.
pub(crate) async fn run(app: &AppState, opts: ImportOptions, body: Vec<u8>) -> Result<ImportReport, ApiError> {
    let (data, guard) = (app.data.clone(), app.flusher.guard().clone());
    let input = crate::import::Input::Stream(Box::new(std::io::Cursor::new(body)));
    let report = tokio::task::spawn_blocking(move || crate::import::import(&data, &guard, &opts, input, |_| {}))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::BadBody(e.to_string()))?;
    metrics::counter!("footfall_events_imported_total").increment(report.imported as u64);
    Ok(report)
}
