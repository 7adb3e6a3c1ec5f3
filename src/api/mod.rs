//! HTTP routes: ingestion (and its snippet and pixel), SQL, reports, the dashboard, health, metrics.

pub mod dashboard;
mod error;
pub mod events;
pub mod import;
pub mod openapi;
pub mod people;
pub mod recommend;
pub mod reports;
pub mod segment;
pub mod segments;
pub mod shares;
pub mod sql;
pub mod tracker;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::decompression::RequestDecompressionLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use error::ApiError;

use crate::ingest::Ingestor;
use crate::store::paths::DataDir;
use crate::wal::Wal;

/// Longest a request may take, body upload included. Query deadlines are shorter, so a query
/// that runs out of time still answers with its JSON error.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Shared state of the HTTP routes.
#[derive(Clone)]
pub struct AppState {
    pub ingestor: Arc<Ingestor>,
    pub trust_proxy: bool,
    pub metrics: PrometheusHandle,
    pub wal: Wal,
    pub data: DataDir,
    /// The operator's key that reads every site (`--admin-key`); none: no admin access.
    pub admin_key: Option<Arc<str>>,
    /// The key `/metrics` requires (`--metrics-key`); none: `/metrics` is open.
    pub metrics_key: Option<Arc<str>>,
    /// Deadline of one query or report, waiting for a turn included (under [`REQUEST_TIMEOUT`]).
    pub query_timeout: Duration,
    /// The sites' saved segments.
    pub segments: Arc<crate::saved_segments::SavedSegments>,
    /// The sites' saved dashboard views.
    pub views: Arc<crate::saved_segments::SavedSegments>,
    /// The store's flusher (a deletion flushes the log first, then holds its guard).
    pub flusher: crate::store::Flusher,
}

impl AppState {
    /// The bounds of one query or report over HTTP.
    pub(crate) fn query_limits(&self) -> crate::query::QueryLimits {
        crate::query::QueryLimits { timeout: self.query_timeout, ..crate::query::QueryLimits::default() }
    }
}

/// The `Authorization: Bearer` key, if any.
pub(crate) fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// CORS for browsers on any registered site's domains.
fn sites_cors<const M: usize, const H: usize>(
    state: &AppState,
    methods: [Method; M],
    headers: [header::HeaderName; H],
) -> CorsLayer {
    let sites = state.ingestor.sites.clone();
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin: &HeaderValue, _| {
            origin.to_str().is_ok_and(|o| sites.any_allows_origin(o))
        }))
        .allow_methods(methods)
        .allow_headers(headers)
        .max_age(Duration::from_secs(86_400))
}

/// The router with every route and layer.
pub fn router(state: AppState) -> Router {
    // The tracker posts events from the site's pages; the shop's pages ask for recommendations
    // with a share link's key.
    let cors = sites_cors(&state, [Method::POST, Method::OPTIONS], [header::CONTENT_TYPE, header::CONTENT_ENCODING]);
    let cors_get = sites_cors(&state, [Method::GET, Method::OPTIONS], [header::AUTHORIZATION]);
    // The heatmap overlay, drawn on the site's own pages, asks for its report with a share key.
    let cors_reports =
        sites_cors(&state, [Method::POST, Method::OPTIONS], [header::AUTHORIZATION, header::CONTENT_TYPE]);
    Router::new()
        .route("/api/event", post(events::post_event).layer(cors))
        .route("/api/event.gif", get(tracker::pixel))
        .route("/f.js", get(tracker::snippet))
        .route("/h.js", get(tracker::heatmaps))
        .route("/o.js", get(tracker::overlay))
        .route("/api/sql", post(sql::post_sql))
        .route("/api/reports/{kind}", post(reports::post_report).layer(cors_reports))
        .route("/api/segments/members.csv", post(reports::members_csv))
        .route("/api/sites/{site}/segments", get(segments::list).post(segments::create))
        .route("/api/sites/{site}/segments/{id}", axum::routing::put(segments::update).delete(segments::remove))
        .route("/api/sites/{site}/people/{id}", axum::routing::delete(people::forget))
        .route("/api/sites/{site}/people/{id}/export", get(people::export))
        .route("/api/sites/{site}/rejected", get(people::rejected))
        .route("/api/sites/{site}/live", get(people::live))
        .route("/api/sites/{site}/recommendations", get(recommend::get).layer(cors_get))
        .route("/api/sites/{site}/views", get(shares::list_views).post(shares::save_view))
        .route("/api/sites/{site}/views/{id}", axum::routing::delete(shares::delete_view))
        .route("/api/sites/{site}/shares", get(shares::list_shares).post(shares::create_share))
        .route("/api/sites/{site}/shares/{id}", axum::routing::delete(shares::revoke_share))
        .route("/api/import", post(import::post_import))
        .route("/v1/{kind}", post(segment::post))
        .route("/api/sites", get(dashboard::sites))
        .route("/api/dimensions", get(dashboard::dimensions))
        .route("/", get(dashboard::index))
        .route("/assets/{*file}", get(dashboard::file))
        .route("/api/openapi.json", get(openapi::openapi_json))
        .merge(
            utoipa_swagger_ui::SwaggerUi::new("/api/docs").config(utoipa_swagger_ui::Config::from("/api/openapi.json")),
        )
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .layer(RequestDecompressionLayer::new())
        // A stalled client gets 408 instead of holding a connection; retries are safe (event_id).
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, REQUEST_TIMEOUT))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Liveness and the write-ahead log's size.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "`{\"status\": \"ok\", \"wal_bytes\"}`", body = Object)))]
async fn healthz(State(app): State<AppState>) -> impl IntoResponse {
    axum::Json(serde_json::json!({"status": "ok", "wal_bytes": app.wal.bytes()}))
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"), (status = 401, description = "Missing or wrong key", body = crate::api::openapi::ErrorBody)),
    security((), ("key" = [])))]
async fn metrics(State(app): State<AppState>, headers: axum::http::HeaderMap) -> Result<Response, ApiError> {
    if let Some(want) = app.metrics_key.as_deref() {
        let sent = bearer(&headers).unwrap_or_default();
        if !crate::sites::keys_match(want, sent) {
            return Err(ApiError::MetricsKey);
        }
    }
    metrics::gauge!("footfall_wal_bytes").set(app.wal.bytes() as f64);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], app.metrics.render()).into_response())
}
