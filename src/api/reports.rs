//! `POST /api/reports/{name}`: a report request as JSON, the report as JSON, for every report
//! of [`crate::reports::registry::REPORTS`].
//!
//! The key decides which sites may be read, as for `/api/sql`: a site's read key its own
//! site, the admin key every site. Bad requests answer 400 `invalid_report` naming the field.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use super::sql::{Reader, reader, scope};
use super::{ApiError, AppState};
use crate::query::{self, QueryLimits};
use crate::reports::{self, Env};

/// Run the report named in the path.
#[utoipa::path(post, path = "/api/reports/{kind}", tag = "query",
    params(("kind" = String, Path, description = "trends, funnel, retention, experiment, lifecycle, attribution, ecommerce, engagement, heatmap, paths, segment, catalog, predictions or affinities")),
    request_body(content = crate::api::openapi::ReportRequest,
        description = "The report's request: `TrendsRequest` for trends, `FunnelRequest` for funnel, and so on (docs/reports.md)"),
    responses((status = 200, description = "The report", body = Object), (status = 400, description = "Invalid request (the field is named)", body = crate::api::openapi::ErrorBody), (status = 401, description = "Missing or wrong key", body = crate::api::openapi::ErrorBody), (status = 403, description = "The key may not do this", body = crate::api::openapi::ErrorBody), (status = 408, description = "The query ran past the deadline", body = crate::api::openapi::ErrorBody), (status = 503, description = "Busy or the write-ahead log is full; retry later", body = crate::api::openapi::ErrorBody)),
    security(("key" = [])))]
pub async fn post_report(
    State(app): State<AppState>,
    Path(kind): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let Reader { scope, view_only } = reader(&app, &headers)?;
    let env = env(&app, scope, app.query_limits());
    let Some(report) = reports::registry::find(&kind) else {
        return Err(ApiError::NotFound(format!("no report {kind:?}; use {}", reports::registry::names().join(", "))));
    };
    let body = if view_only { without_people(&kind, &body)? } else { body.to_vec() };
    // Each report runs on the query pool (off the ingest runtime) within the query deadline.
    let ran = on_pool(env, move |env| (report.run)(env, body)).await?;
    let json =
        ran.json(false).map_err(|e| ApiError::Internal(format!("the report could not be written as JSON: {e}")))?;
    Ok(([(axum::http::header::CONTENT_TYPE, "application/json")], json).into_response())
}

/// A share link's request, asking for no one's id: the funnel's `people_limit`, the segment's
/// `limit` (its members) and the predictions' `limit` (its lists of people) are set to none;
/// every figure stays.
fn without_people(kind: &str, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let field = match kind {
        "funnel" => "people_limit",
        "segment" | "predictions" => "limit",
        _ => return Ok(body.to_vec()),
    };
    let mut v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| ApiError::from(reports::invalid("body", format!("not JSON: {e}"))))?;
    if let Some(o) = v.as_object_mut() {
        o.insert(field.to_owned(), 0.into());
    }
    serde_json::to_vec(&v).map_err(|e| ApiError::Internal(e.to_string()))
}

/// Run a report on the query pool, within its deadline.
async fn on_pool<T, F, Fut>(env: Env, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(Env) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = reports::Result<T>> + Send + 'static,
{
    let deadline = env.limits.timeout;
    Ok(query::pool::pool().run(deadline, async move { f(env).await }).await?)
}

/// What a report runs with: the caller key's sites, the server's clock.
fn env(app: &AppState, scope: crate::query::Scope, limits: QueryLimits) -> Env {
    Env { data: app.data.clone(), scope, limits, now_micros: app.ingestor.clock.now_micros() }
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    Ok(reports::parse_request(body)?)
}

/// `POST /api/segments/members.csv`: a segment request (definition or template id); every
/// member as CSV, for retargeting lists.
#[utoipa::path(post, path = "/api/segments/members.csv", tag = "segments",
    request_body(content = crate::reports::segments::SegmentRequest, description = "A segment report's request"),
    responses((status = 200, description = "Every member, as CSV", content_type = "text/csv"), (status = 400, description = "Invalid request (the field is named)", body = crate::api::openapi::ErrorBody), (status = 401, description = "Missing or wrong key", body = crate::api::openapi::ErrorBody), (status = 403, description = "The key may not do this", body = crate::api::openapi::ErrorBody), (status = 408, description = "The query ran past the deadline", body = crate::api::openapi::ErrorBody), (status = 503, description = "Busy or the write-ahead log is full; retry later", body = crate::api::openapi::ErrorBody)),
    security(("key" = [])))]
pub async fn members_csv(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let env = env(
        &app,
        scope(&app, &headers)?,
        QueryLimits { max_rows: reports::segments::MAX_MEMBERS, ..app.query_limits() },
    );
    let mut req: reports::segments::SegmentRequest = parse(&body)?;
    req.limit = reports::segments::MAX_MEMBERS;
    let r = on_pool(env, move |env| async move { reports::segments::segment(&env, &req).await }).await?;
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (axum::http::header::CONTENT_DISPOSITION, "attachment; filename=\"segment.csv\""),
        ],
        reports::segments::members_csv(&r.members),
    )
        .into_response())
}
