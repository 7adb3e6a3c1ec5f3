//! Saved segments of a site, over HTTP:
//! `GET /api/sites/{site}/segments` (the templates and the saved ones; a read, share, write or admin key),
//! `POST /api/sites/{site}/segments` `{"name", "definition"}` (201),
//! `PUT /api/sites/{site}/segments/{id}`, `DELETE /api/sites/{site}/segments/{id}` (204): these
//! change what the site's reports and dashboard show, so they need the site's write key or the
//! admin key; a read key only reads (403 `read_only_key`).
//! They live in `segments.json` in the data directory ([`crate::saved_segments`]).
//! Any report takes a saved segment's id as `segment`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::sql::{allowed, path_site, reader};
use super::{ApiError, AppState};
use crate::model::SiteId;
use crate::query::Scope;
use crate::reports::{self, segments};

/// The body of POST and PUT.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaveBody {
    pub name: String,
    pub definition: serde_json::Value,
}

/// The site in the path, if the key may read its segments, and whether it may also change them:
/// the site's write key and the admin key may, a read key may not.
fn access(app: &AppState, headers: &HeaderMap, site: &str) -> Result<(SiteId, Result<(), ApiError>), ApiError> {
    let site = path_site(site)?;
    // A write key reads and changes its own site's segments, and no other site's.
    if let Some(writer) = super::bearer(headers).and_then(|k| app.ingestor.sites.by_write_key(k)) {
        return Ok((allowed(&Scope::Sites(vec![writer.id.clone()]), site)?, Ok(())));
    }
    // A share key lists them too; only the admin key reads every site and changes them.
    let who = reader(app, headers)?;
    let site = allowed(&who.scope, site)?;
    let edit = match (who.view_only, who.scope == Scope::All) {
        (true, _) => Err(ApiError::ViewOnlyKey),
        (false, true) => Ok(()),
        (false, false) => Err(ApiError::ReadOnlyKey),
    };
    Ok((site, edit))
}

fn site_of(app: &AppState, headers: &HeaderMap, site: &str) -> Result<SiteId, ApiError> {
    Ok(access(app, headers, site)?.0)
}

/// The site, when the key may change its saved segments.
fn editable_site(app: &AppState, headers: &HeaderMap, site: &str) -> Result<SiteId, ApiError> {
    let (site, edit) = access(app, headers, site)?;
    edit.map(|()| site)
}

fn body(bytes: &[u8]) -> Result<SaveBody, ApiError> {
    Ok(reports::parse_request(bytes)?)
}

/// `GET /api/sites/{site}/segments`.
#[utoipa::path(get, path = "/api/sites/{site}/segments", tag = "segments", params(("site" = String, Path, description = "Site id")),
    responses((status = 200, description = "The templates and the site's saved segments", body = Object), (status = 401, description = "Missing or wrong key", body = crate::api::openapi::ErrorBody), (status = 403, description = "The key may not do this", body = crate::api::openapi::ErrorBody), (status = 404, description = "No such thing", body = crate::api::openapi::ErrorBody)),
    security(("key" = [])))]
pub async fn list(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(site): Path<String>,
) -> Result<Response, ApiError> {
    let site = site_of(&app, &headers, &site)?;
    Ok(Json(segments::catalogue(&app.data, &site)?).into_response())
}

/// `POST /api/sites/{site}/segments`.
#[utoipa::path(post, path = "/api/sites/{site}/segments", tag = "segments", params(("site" = String, Path, description = "Site id")),
    request_body(content = Object, description = "`{\"name\", \"definition\"}` (docs/reports.md#segments)"),
    responses((status = 201, description = "The saved segment", body = Object), (status = 400, description = "Invalid request (the field is named)", body = crate::api::openapi::ErrorBody), (status = 401, description = "Missing or wrong key", body = crate::api::openapi::ErrorBody), (status = 403, description = "The key may not do this", body = crate::api::openapi::ErrorBody), (status = 404, description = "No such thing", body = crate::api::openapi::ErrorBody)),
    security(("key" = [])))]
pub async fn create(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(site): Path<String>,
    bytes: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let site = editable_site(&app, &headers, &site)?;
    let b = body(&bytes)?;
    let saved = segments::save(&app.segments, &site, None, &b.name, &b.definition)?
        .ok_or_else(|| ApiError::Internal("new segment not saved".into()))?;
    Ok((StatusCode::CREATED, Json(saved)).into_response())
}

/// `PUT /api/sites/{site}/segments/{id}`.
#[utoipa::path(put, path = "/api/sites/{site}/segments/{id}", tag = "segments",
    params(("site" = String, Path, description = "Site id"), ("id" = String, Path, description = "Segment id")),
    request_body(content = Object, description = "`{\"name\", \"definition\"}`"),
    responses((status = 200, description = "The saved segment", body = Object), (status = 400, description = "Invalid request (the field is named)", body = crate::api::openapi::ErrorBody), (status = 401, description = "Missing or wrong key", body = crate::api::openapi::ErrorBody), (status = 403, description = "The key may not do this", body = crate::api::openapi::ErrorBody), (status = 404, description = "No such thing", body = crate::api::openapi::ErrorBody)),
    security(("key" = [])))]
pub async fn update(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path((site, id)): Path<(String, String)>,
    bytes: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let site = editable_site(&app, &headers, &site)?;
    let b = body(&bytes)?;
    match segments::save(&app.segments, &site, Some(&id), &b.name, &b.definition)? {
        Some(s) => Ok(Json(s).into_response()),
        None => Err(ApiError::NotFound(format!("no saved segment {id:?}"))),
    }
}

/// `DELETE /api/sites/{site}/segments/{id}`.
#[utoipa::path(delete, path = "/api/sites/{site}/segments/{id}", tag = "segments",
    params(("site" = String, Path, description = "Site id"), ("id" = String, Path, description = "Segment id")),
    responses((status = 204, description = "Deleted"), (status = 401, description = "Missing or wrong key", body = crate::api::openapi::ErrorBody), (status = 403, description = "The key may not do this", body = crate::api::openapi::ErrorBody), (status = 404, description = "No such thing", body = crate::api::openapi::ErrorBody)),
    security(("key" = [])))]
pub async fn remove(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path((site, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let site = editable_site(&app, &headers, &site)?;
    if app.segments.delete(&site, &id).map_err(reports::Error::from)? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::NotFound(format!("no saved segment {id:?}")))
    }
}
