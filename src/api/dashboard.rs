//! The dashboard: `dashboard/` (one HTML page, its style sheet and its JavaScript modules under
//! `dashboard/js/`, no third-party code and no build step) embedded at build time and served at
//! `/` and `/assets/…`, plus `GET /api/sites`, which tells it the sites a key may read.
//!
//! The page itself is public; every number on it comes from `/api/reports/*` and `/api/sql`
//! with the read key (or admin key) the user types in, kept in the tab's `sessionStorage`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::{ApiError, AppState, sql::reader};

const INDEX: &str = include_str!("../../dashboard/index.html");

/// `(path under /assets/, contents)` of every file the page loads.
macro_rules! assets {
    ($($file:literal),* $(,)?) => { &[$(($file, include_str!(concat!("../../dashboard/", $file)))),*] };
}

/// The style sheet and every module (a test checks none under `dashboard/js` is missing).
pub const ASSETS: &[(&str, &str)] = assets![
    "app.css",
    "js/lib/api.js",
    "js/lib/charts.js",
    "js/lib/dom.js",
    "js/lib/kpis.js",
    "js/lib/panel.js",
    "js/lib/state.js",
    "js/main.js",
    "js/panels/acquisition.js",
    "js/panels/ecommerce.js",
    "js/panels/engagement.js",
    "js/panels/heatmaps.js",
    "js/panels/experiments.js",
    "js/panels/funnel.js",
    "js/panels/lifecycle.js",
    "js/panels/live.js",
    "js/panels/overview.js",
    "js/panels/paths.js",
    "js/panels/predictions.js",
    "js/panels/retention.js",
    "js/panels/segments.js",
    "js/panels/sql.js",
    "js/panels/views.js",
];

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

/// `GET /assets/{*file}`: the style sheet or a module.
pub async fn file(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _)| *name == file) {
        Some((name, body)) if name.ends_with(".js") => asset("text/javascript; charset=utf-8", body),
        Some((_, body)) => asset("text/css; charset=utf-8", body),
        None => (axum::http::StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

/// One site as the dashboard lists it (never its keys).
#[derive(Debug, Serialize)]
pub struct SiteInfo {
    pub id: String,
    pub domains: Vec<String>,
}

/// `GET /api/sites`: the sites the bearer key may read (401 without a valid key), so the
/// dashboard can check a key and fill its site picker.
#[utoipa::path(get, path = "/api/sites", tag = "query",
    responses((status = 200, description = "The sites the key may read", body = Object), (status = 401, description = "Missing or wrong key", body = crate::api::openapi::ErrorBody)),
    security(("key" = [])))]
pub async fn sites(State(app): State<AppState>, headers: HeaderMap) -> Result<Json<Vec<SiteInfo>>, ApiError> {
    let scope = reader(&app, &headers)?.scope;
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
    /// `event` (a column of each event), `session` (of the event's session) or `item` (any of
    /// the event's items: filters only, no breakdown).
    pub level: &'static str,
    /// The `events` column it reads, for event dimensions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<&'static str>,
}

/// `GET /api/dimensions`: every dimension reports accept, from the column catalogue (public:
/// it describes the product, not a site's data). Custom properties are `prop:<name>` besides.
#[utoipa::path(get, path = "/api/dimensions", tag = "query",
    responses((status = 200, description = "The dimensions reports filter and break down by", body = Object)))]
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
    let items = crate::reports::ITEM_DIMENSIONS.iter().map(|&(name, _, label)| DimensionInfo {
        name,
        label,
        level: "item",
        column: Some("items"),
    });
    let all: Vec<DimensionInfo> = columns.chain(sessions).chain(items).collect();
    Json(serde_json::json!({
        "dimensions": all,
        "custom": {"name": "prop:<name>", "label": "Property <name>", "level": "event"},
    }))
}

#[cfg(test)]
mod tests {
    use super::ASSETS;

    /// Every module and style sheet under `dashboard/` is embedded (a new module cannot be
    /// forgotten), and every embedded one exists.
    #[test]
    fn every_dashboard_file_is_embedded() {
        fn walk(dir: &std::path::Path, root: &std::path::Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).expect("read dashboard dir") {
                let p = e.expect("entry").path();
                if p.is_dir() {
                    walk(&p, root, out);
                } else if p.extension().is_some_and(|x| x == "js" || x == "css") {
                    out.push(p.strip_prefix(root).expect("under root").to_string_lossy().replace('\\', "/"));
                }
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboard");
        let mut on_disk = Vec::new();
        walk(&root.join("js"), &root, &mut on_disk);
        on_disk.push("app.css".into());
        on_disk.sort();
        let mut embedded: Vec<String> = ASSETS.iter().map(|(n, _)| (*n).to_owned()).collect();
        embedded.sort();
        assert_eq!(embedded, on_disk);
    }
}
