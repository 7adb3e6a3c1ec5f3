//! The dashboard: `dashboard/` (one HTML page, its script and style sheet, no third-party code)
//! embedded at build time and served at `/`, plus `GET /api/sites`, which tells it the sites
//! a key may read.
//!
//! The page itself is public; every number on it comes from `/api/reports/*` and `/api/sql`
//! with the read key (or admin key) the user types in, kept in the tab's `sessionStorage`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::{ApiError, AppState, sql::scope};

const INDEX: &str = include_str!("../../dashboard/index.html");
const SCRIPT: &str = include_str!("../../dashboard/app.js");
const STYLE: &str = include_str!("../../dashboard/app.css");

/// Scripts and styles from this origin only; no frames, no referrer (the key never leaves).
const POLICY: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
                      connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}

/// `GET /`.
pub async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX)
}

/// `GET /assets/app.js`.
pub async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

/// `GET /assets/app.css`.
pub async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

/// One site as the dashboard lists it (never its keys).
#[derive(Debug, Serialize)]
pub struct SiteInfo {
    pub id: String,
    pub domains: Vec<String>,
}

/// `GET /api/sites`: the sites the bearer key may read (401 without a valid key), so the
/// dashboard can check a key and fill its site picker.
pub async fn sites(State(app): State<AppState>, headers: HeaderMap) -> Result<Json<Vec<SiteInfo>>, ApiError> {
    let scope = scope(&app, &headers)?;
    let mut out: Vec<SiteInfo> = app
        .ingestor
        .sites
        .list()
        .into_iter()
        .filter(|s| scope.allows(&s.id))
        .map(|s| SiteInfo { id: s.id.as_str().to_owned(), domains: s.domains })
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Json(out))
}

/// One dimension as `GET /api/dimensions` lists it.
#[derive(Debug, Serialize)]
pub struct DimensionInfo {
    /// What requests name it (`breakdown`, `filters[].dimension`).
    pub name: &'static str,
    pub label: &'static str,
    /// `event` (a column of each event) or `session` (of the event's session).
    pub level: &'static str,
    /// The `events` column it reads, for event dimensions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<&'static str>,
}

/// `GET /api/dimensions`: every dimension reports accept, from the column catalogue (public:
/// it describes the product, not a site's data). Custom properties are `prop:<name>` besides.
pub async fn dimensions() -> Json<serde_json::Value> {
    use crate::model::schema::{SESSION_DIMENSIONS, column_dimensions};
    let columns = column_dimensions().map(|(name, column, label)| DimensionInfo {
        name,
        label,
        level: "event",
        column: Some(column),
    });
    let sessions =
        SESSION_DIMENSIONS.iter().map(|&(name, label)| DimensionInfo { name, label, level: "session", column: None });
    let all: Vec<DimensionInfo> = columns.chain(sessions).collect();
    Json(serde_json::json!({
        "dimensions": all,
        "custom": {"name": "prop:<name>", "label": "Property <name>", "level": "event"},
    }))
}
