//! A site's data over HTTP: one person's, and the events refused for it.
//!
//! One person's data. `{id}` is a person id as reports show it: `u:<user id>` (with
//! every device linked to the user) or `v:<visitor id>`.
//! - `GET /api/sites/{site}/people/{id}/export`: every event of the person as NDJSON, for a
//!   subject-access request (GDPR art. 15); the site's read key or the admin key.
//! - `DELETE /api/sites/{site}/people/{id}`: forget the person (GDPR art. 17): what the
//!   write-ahead log holds is flushed, then every file holding the person is rewritten without
//!   them while the server keeps collecting; the admin key only. Answers the counts.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use super::sql::{allowed, path_site as site_id, scope};
use super::{ApiError, AppState};
use crate::export::{ExportFormat, ExportRequest};
use crate::model::SiteId;
use crate::query::Scope;
use crate::store::forget::Subject;

fn person(site: &str, id: &str) -> Result<(SiteId, Subject), ApiError> {
    let site = site_id(site)?;
    let who = Subject::parse_person(id).ok_or_else(|| ApiError::BadPerson(id.to_owned()))?;
    Ok((site, who))
}

/// `GET /api/sites/{site}/people/{id}/export`.
#[utoipa::path(get, path = "/api/sites/{site}/people/{id}/export", tag = "people",
    params(("site" = String, Path, description = "Site id"), ("id" = String, Path, description = "A user id or visitor id")),
    responses((status = 200, description = "Every event of the person, as NDJSON", content_type = "application/x-ndjson"), (status = 401, description = "Missing or wrong key", body = crate::api::openapi::ErrorBody), (status = 403, description = "The key may not do this", body = crate::api::openapi::ErrorBody), (status = 404, description = "No such thing", body = crate::api::openapi::ErrorBody)),
    security(("key" = [])))]
pub async fn export(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path((site, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let scope = scope(&app, &headers)?;
    let (site, who) = person(&site, &id)?;
    let site = allowed(&scope, site)?;
    let name: String =
        format!("{site}-{id}").chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    let req = ExportRequest { site, from: None, to: None, person: Some(who) };
    let data = app.data.clone();
    let body = crate::query::pool::pool()
        .run(app.query_timeout, async move {
            let mut buf = Vec::new();
            crate::export::export(&data, &req, ExportFormat::Ndjson, &mut buf)
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            Ok::<_, ApiError>(buf)
        })
        .await?;
    let disposition = format!("attachment; filename=\"{name}.ndjson\"");
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson".to_owned()), (header::CONTENT_DISPOSITION, disposition)], body)
        .into_response())
}

/// `DELETE /api/sites/{site}/people/{id}`.
#[utoipa::path(delete, path = "/api/sites/{site}/people/{id}", tag = "people",
    params(("site" = String, Path, description = "Site id"), ("id" = String, Path, description = "A user id or visitor id")),
    responses((status = 200, description = "What was erased", body = Object), (status = 400, description = "Invalid request (the field is named)", body = crate::api::openapi::ErrorBody), (status = 401, description = "Missing or wrong key", body = crate::api::openapi::ErrorBody), (status = 403, description = "The key may not do this", body = crate::api::openapi::ErrorBody), (status = 404, description = "No such thing", body = crate::api::openapi::ErrorBody)),
    security(("key" = [])))]
pub async fn forget(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path((site, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    if scope(&app, &headers)? != Scope::All {
        return Err(ApiError::AdminOnly);
    }
    let (site, who) = person(&site, &id)?;
    if app.ingestor.sites.get(site.as_str()).is_none() {
        return Err(ApiError::NotFound(format!("no site {site}")));
    }
    // What the log holds reaches the files first, so it is forgotten with them.
    app.flusher.flush().await.map_err(|e| ApiError::Internal(e.to_string()))?;
    let (data, guard, now) = (app.data.clone(), app.flusher.guard().clone(), app.ingestor.clock.now_micros());
    let site2 = site.clone();
    let done = tokio::task::spawn_blocking(move || crate::store::forget::forget(&data, &guard, &site2, &who, now))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    metrics::counter!("footfall_people_forgotten_total").increment(1);
    Ok(Json(serde_json::json!({"site": site.as_str(), "person": id, "events": done.events,
                               "partitions": done.partitions, "visitors": done.visitors}))
    .into_response())
}

/// `GET /api/sites/{site}/rejected?limit=N`: the events ingestion refused for the site, newest
/// first, each with when, why (`reason`, `field`, `message`) and the item as sent (less its
/// `ip`); the site's read key or the admin key.
#[utoipa::path(get, path = "/api/sites/{site}/rejected", tag = "people", params(("site" = String, Path, description = "Site id"), crate::api::people::RejectedQuery),
    responses((status = 200, description = "The latest refused events and why", body = Object), (status = 401, description = "Missing or wrong key", body = crate::api::openapi::ErrorBody), (status = 403, description = "The key may not do this", body = crate::api::openapi::ErrorBody), (status = 404, description = "No such thing", body = crate::api::openapi::ErrorBody)),
    security(("key" = [])))]
pub async fn rejected(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(site): Path<String>,
    axum::extract::Query(q): axum::extract::Query<RejectedQuery>,
) -> Result<Response, ApiError> {
    let site = allowed(&scope(&app, &headers)?, site_id(&site)?)?;
    let limit = q.limit.unwrap_or(100).min(crate::ingest::quarantine::CAP);
    let list = app.ingestor.rejected(site.as_str(), limit);
    Ok(Json(serde_json::json!({"site": site.as_str(), "rejected": list})).into_response())
}

/// The query of [`rejected`].
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RejectedQuery {
    pub limit: Option<usize>,
}

/// `GET /api/sites/{site}/live`: the visitors of the last five minutes and the pages they are
/// on, countries and devices, from memory (the dashboard polls it); the site's read or share key.
#[utoipa::path(get, path = "/api/sites/{site}/live", tag = "people", params(("site" = String, Path, description = "Site id")),
    responses((status = 200, description = "Visitors of the last five minutes, their pages, countries and devices", body = Object), (status = 401, description = "Missing or wrong key", body = crate::api::openapi::ErrorBody), (status = 403, description = "The key may not do this", body = crate::api::openapi::ErrorBody), (status = 404, description = "No such thing", body = crate::api::openapi::ErrorBody)),
    security(("key" = [])))]
pub async fn live(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(site): Path<String>,
) -> Result<Response, ApiError> {
    let site = allowed(&super::sql::reader(&app, &headers)?.scope, site_id(&site)?)?;
    Ok(Json(app.ingestor.live.view(site.as_str(), app.ingestor.clock.now_micros())).into_response())
}
