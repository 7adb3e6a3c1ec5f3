//! Saved segments of a site, over HTTP (a site's read key or the admin key):
//! `GET /api/sites/{site}/segments` (the templates and the saved ones),
//! `POST /api/sites/{site}/segments` `{"name", "definition"}` (201),
//! `PUT /api/sites/{site}/segments/{id}`, `DELETE /api/sites/{site}/segments/{id}` (204).
//! They live in `segments.json` in the data directory, replaced atomically on every change.
//! Any report takes a saved segment's id as `segment`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{ApiError, AppState, sql::scope};
use crate::model::SiteId;
use crate::reports::{self, segments};

/// The body of POST and PUT.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaveBody {
    pub name: String,
    pub definition: serde_json::Value,
}

fn site_of(app: &AppState, headers: &HeaderMap, site: &str) -> Result<SiteId, ApiError> {
    let scope = scope(app, headers)?;
    let site = SiteId::parse(site).map_err(|e| ApiError::NotFound(e.to_string()))?;
    if !scope.allows(&site) {
        return Err(reports::Error::Forbidden(site.as_str().to_owned()).into());
    }
    Ok(site)
}

fn body(bytes: &[u8]) -> Result<SaveBody, ApiError> {
    Ok(reports::parse_request(bytes)?)
}

/// `GET /api/sites/{site}/segments`.
pub async fn list(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(site): Path<String>,
) -> Result<Response, ApiError> {
    let site = site_of(&app, &headers, &site)?;
    Ok(Json(segments::catalogue(&app.data, &site)?).into_response())
}

/// `POST /api/sites/{site}/segments`.
pub async fn create(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(site): Path<String>,
    bytes: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let site = site_of(&app, &headers, &site)?;
    let b = body(&bytes)?;
    let saved = segments::save(&app.data, &site, None, &b.name, &b.definition)?
        .ok_or_else(|| ApiError::Internal("new segment not saved".into()))?;
    Ok((StatusCode::CREATED, Json(saved)).into_response())
}

/// `PUT /api/sites/{site}/segments/{id}`.
pub async fn update(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path((site, id)): Path<(String, String)>,
    bytes: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let site = site_of(&app, &headers, &site)?;
    let b = body(&bytes)?;
    match segments::save(&app.data, &site, Some(&id), &b.name, &b.definition)? {
        Some(s) => Ok(Json(s).into_response()),
        None => Err(ApiError::NotFound(format!("no saved segment {id:?}"))),
    }
}

/// `DELETE /api/sites/{site}/segments/{id}`.
pub async fn remove(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path((site, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let site = site_of(&app, &headers, &site)?;
    if segments::delete(&app.data, &site, &id)? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::NotFound(format!("no saved segment {id:?}")))
    }
}
