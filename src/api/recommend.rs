//! `GET /api/sites/{site}/recommendations?product=…` or `?person=…`: products to show, for a
//! shop's pages, from the site's last prediction fit held in memory (see
//! [`crate::predict::recommend`]). A read key or a share link's key (which reveals no one: the
//! caller names the person). Browsers of the site's own origins may call it (CORS).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};

use super::sql::{allowed, path_site, reader};
use super::{ApiError, AppState};
use crate::predict::recommend::{self, Recommendation};
use crate::reports::invalid;

/// The query string.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RecommendationQuery {
    /// A product id, as sent in `items[].id`.
    pub product: Option<String>,
    /// A person id: `u:<user id>` or `v:<visitor id>`.
    pub person: Option<String>,
    /// How many (1 to 50, default 5).
    pub limit: Option<usize>,
}

/// The answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Recommendations {
    pub product: Option<String>,
    pub person: Option<String>,
    /// Whether the fit knows the product or person (if not: best sellers).
    pub known: bool,
    pub fitted_at: String,
    pub as_of: String,
    pub recommendations: Vec<Recommendation>,
}

/// Products to show next to a product or to a person.
#[utoipa::path(get, path = "/api/sites/{site}/recommendations", tag = "query",
    params(("site" = String, Path, description = "Site id"), RecommendationQuery),
    responses((status = 200, description = "Recommended products, best first", body = Recommendations), (status = 400, description = "Invalid request (the field is named)", body = crate::api::openapi::ErrorBody), (status = 401, description = "Missing or wrong key", body = crate::api::openapi::ErrorBody), (status = 403, description = "The key may not do this", body = crate::api::openapi::ErrorBody), (status = 404, description = "The site has no predictions yet", body = crate::api::openapi::ErrorBody)),
    security(("key" = [])))]
pub async fn get(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(site): Path<String>,
    query: Result<Query<RecommendationQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Recommendations>, ApiError> {
    let scope = reader(&app, &headers)?.scope;
    let site = allowed(&scope, path_site(&site)?)?;
    let Query(q) = query.map_err(|e| ApiError::from(invalid("query", e.body_text())))?;
    let limit = q.limit.unwrap_or(5);
    if !(1..=50).contains(&limit) {
        return Err(invalid("limit", "between 1 and 50").into());
    }
    // In memory after the first use; the first after a start reads the saved fit, off the runtime.
    let data = app.data.clone();
    let s = site.clone();
    let index = tokio::task::spawn_blocking(move || recommend::index(&data, &s))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "site {site} has no predictions yet: the server fits them in the background a minute after it starts (or run `footfall predict --site {site}`)"
            ))
        })?;
    let (known, recommendations) = match (&q.product, &q.person) {
        (Some(p), None) => match index.for_product(p, limit) {
            Some(r) => (true, r),
            None => (false, index.bestsellers(limit)),
        },
        (None, Some(p)) => index.for_person(p, limit),
        _ => return Err(invalid("product", "give product or person (one of them)").into()),
    };
    Ok(Json(Recommendations {
        product: q.product,
        person: q.person,
        known,
        fitted_at: index.fitted_at.clone(),
        as_of: index.as_of.clone(),
        recommendations,
    }))
}
