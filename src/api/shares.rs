//! Saved dashboard views and view-only share links of a site, over HTTP.
//!
//! - `GET /api/sites/{site}/views` (a read, share or admin key), `POST` `{"name", "query"}` (201;
//!   `query` is the dashboard's URL query: tab, range, filters, builders), `DELETE …/views/{id}`
//!   (204). Saving and deleting need the site's read key or the admin key. They live in
//!   `views.json` in the data directory, beside `segments.json`.
//! - `GET /api/sites/{site}/shares`, `POST` `{"name"}` (201, the new link's key `ffv_…`),
//!   `DELETE …/shares/{id}` (204; the key stops working at once): the site's read key or the
//!   admin key. A share key reads the site's reports, segment sizes and saved views, and nothing
//!   else ([`super::sql::reader`]).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::sql::{allowed, path_site, reader, scope};
use super::{ApiError, AppState};
use crate::model::SiteId;
use crate::saved_segments::Saved;

/// Longest view query kept, in bytes (a URL a browser keeps is far longer; a view is not).
pub const MAX_QUERY_BYTES: usize = 8_192;

/// The body of `POST /api/sites/{site}/views`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViewBody {
    pub name: String,
    pub query: String,
}

/// A saved view as answered.
#[derive(Debug, Serialize)]
pub struct View {
    pub id: String,
    pub name: String,
    pub query: String,
    pub created_at: String,
}

impl From<Saved> for View {
    fn from(s: Saved) -> Self {
        let query = s.definition.get("query").and_then(|q| q.as_str()).unwrap_or_default().to_owned();
        Self { id: s.id, name: s.name, query, created_at: s.created_at }
    }
}

/// The body of `POST /api/sites/{site}/shares`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareBody {
    pub name: String,
}

/// The site, if the key (a share key too) may read it.
fn readable(app: &AppState, headers: &HeaderMap, site: &str) -> Result<SiteId, ApiError> {
    allowed(&reader(app, headers)?.scope, path_site(site)?)
}

/// The site, if the key is its read key or the admin key (a share key: 403 `view_only_key`).
fn manageable(app: &AppState, headers: &HeaderMap, site: &str) -> Result<SiteId, ApiError> {
    allowed(&scope(app, headers)?, path_site(site)?)
}

fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    Ok(crate::reports::parse_request(bytes)?)
}

fn saved_err(e: crate::saved_segments::Error) -> ApiError {
    crate::reports::Error::from(e).into()
}

/// `GET /api/sites/{site}/views`.
#[utoipa::path(get, path = "/api/sites/{site}/views", tag = "sharing", params(("site" = String, Path, description = "Site id")),
    responses((status = 200, description = "Saved dashboard views", body = Object), (status = 401, description = "Missing or wrong key", body = crate::api::openapi::ErrorBody), (status = 403, description = "The key may not do this", body = crate::api::openapi::ErrorBody), (status = 404, description = "No such thing", body = crate::api::openapi::ErrorBody)),
    security(("key" = [])))]
pub async fn list_views(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(site): Path<String>,
) -> Result<Response, ApiError> {
    let site = readable(&app, &headers, &site)?;
    let views =
        crate::saved_segments::saved(&app.data, crate::saved_segments::Kind::Views, &site).map_err(saved_err)?;
    Ok(Json(views.into_iter().map(View::from).collect::<Vec<_>>()).into_response())
}

/// `POST /api/sites/{site}/views`.
#[utoipa::path(post, path = "/api/sites/{site}/views", tag = "sharing", params(("site" = String, Path, description = "Site id")),
    request_body(content = Object, description = "`{\"name\", \"definition\"}`: the dashboard's state"),
    responses((status = 201, description = "The saved view", body = Object), (status = 400, description = "Invalid request (the field is named)", body = crate::api::openapi::ErrorBody), (status = 401, description = "Missing or wrong key", body = crate::api::openapi::ErrorBody), (status = 403, description = "The key may not do this", body = crate::api::openapi::ErrorBody), (status = 404, description = "No such thing", body = crate::api::openapi::ErrorBody)),
    security(("key" = [])))]
pub async fn save_view(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(site): Path<String>,
    bytes: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let site = manageable(&app, &headers, &site)?;
    let b: ViewBody = parse(&bytes)?;
    let query = b.query.trim_start_matches('?');
    if query.len() > MAX_QUERY_BYTES {
        return Err(crate::reports::invalid("query", format!("at most {MAX_QUERY_BYTES} bytes")).into());
    }
    // A view is where to look, never who may look: a key in it would be shared with the view.
    if query.split('&').any(|p| p.starts_with("key=")) {
        return Err(crate::reports::invalid("query", "a view does not keep a key").into());
    }
    let def = serde_json::json!({ "query": query });
    let saved = app
        .views
        .save(&site, None, &b.name, &def, &[])
        .map_err(saved_err)?
        .ok_or_else(|| ApiError::Internal("new view not saved".into()))?;
    Ok((StatusCode::CREATED, Json(View::from(saved))).into_response())
}

/// `DELETE /api/sites/{site}/views/{id}`.
#[utoipa::path(delete, path = "/api/sites/{site}/views/{id}", tag = "sharing",
    params(("site" = String, Path, description = "Site id"), ("id" = String, Path, description = "View id")),
    responses((status = 204, description = "Deleted"), (status = 401, description = "Missing or wrong key", body = crate::api::openapi::ErrorBody), (status = 403, description = "The key may not do this", body = crate::api::openapi::ErrorBody), (status = 404, description = "No such thing", body = crate::api::openapi::ErrorBody)),
    security(("key" = [])))]
pub async fn delete_view(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path((site, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let site = manageable(&app, &headers, &site)?;
    match app.views.delete(&site, &id).map_err(saved_err)? {
        true => Ok(StatusCode::NO_CONTENT.into_response()),
        false => Err(ApiError::NotFound(format!("no saved view {id:?}"))),
    }
}

fn sites_err(e: crate::sites::Error) -> ApiError {
    use crate::sites::Error as E;
    match e {
        E::NotFound(_) | E::NoShare(..) => ApiError::NotFound(e.to_string()),
        E::BadShareName | E::TooManyShares(_) => crate::reports::invalid("name", e.to_string()).into(),
        E::Exists(_) | E::BadDomain(_) | E::Io { .. } | E::Corrupt { .. } => ApiError::Internal(e.to_string()),
    }
}

/// `GET /api/sites/{site}/shares`: the site's share links, keys included (whoever may list them
/// may also make one).
#[utoipa::path(get, path = "/api/sites/{site}/shares", tag = "sharing", params(("site" = String, Path, description = "Site id")),
    responses((status = 200, description = "View-only share links", body = Object), (status = 401, description = "Missing or wrong key", body = crate::api::openapi::ErrorBody), (status = 403, description = "The key may not do this", body = crate::api::openapi::ErrorBody), (status = 404, description = "No such thing", body = crate::api::openapi::ErrorBody)),
    security(("key" = [])))]
pub async fn list_shares(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(site): Path<String>,
) -> Result<Response, ApiError> {
    let site = manageable(&app, &headers, &site)?;
    let s = app.ingestor.sites.get(site.as_str()).ok_or_else(|| ApiError::NotFound(format!("no site {site}")))?;
    Ok(Json(&s.shares).into_response())
}

/// `POST /api/sites/{site}/shares`.
#[utoipa::path(post, path = "/api/sites/{site}/shares", tag = "sharing", params(("site" = String, Path, description = "Site id")),
    request_body(content = Object, description = "`{\"name\"}`"),
    responses((status = 201, description = "The link and its key", body = Object), (status = 400, description = "Invalid request (the field is named)", body = crate::api::openapi::ErrorBody), (status = 401, description = "Missing or wrong key", body = crate::api::openapi::ErrorBody), (status = 403, description = "The key may not do this", body = crate::api::openapi::ErrorBody), (status = 404, description = "No such thing", body = crate::api::openapi::ErrorBody)),
    security(("key" = [])))]
pub async fn create_share(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(site): Path<String>,
    bytes: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let site = manageable(&app, &headers, &site)?;
    let b: ShareBody = parse(&bytes)?;
    let share = app.ingestor.sites.add_share(&site, &b.name).map_err(sites_err)?;
    Ok((StatusCode::CREATED, Json(share)).into_response())
}

/// `DELETE /api/sites/{site}/shares/{id}`.
#[utoipa::path(delete, path = "/api/sites/{site}/shares/{id}", tag = "sharing",
    params(("site" = String, Path, description = "Site id"), ("id" = String, Path, description = "Share id")),
    responses((status = 204, description = "Revoked"), (status = 401, description = "Missing or wrong key", body = crate::api::openapi::ErrorBody), (status = 403, description = "The key may not do this", body = crate::api::openapi::ErrorBody), (status = 404, description = "No such thing", body = crate::api::openapi::ErrorBody)),
    security(("key" = [])))]
pub async fn revoke_share(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path((site, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let site = manageable(&app, &headers, &site)?;
    app.ingestor.sites.revoke_share(&site, &id).map_err(sites_err)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
