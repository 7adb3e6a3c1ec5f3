//! The tracking snippet and the `<noscript>` pixel.
//!
//! `GET /f.js` serves `tracker-js/dist/f.js`, embedded at build time, with an `ETag` (a hash of
//! its bytes) so browsers revalidate cheaply after the hour they may cache it.
//! `GET /api/event.gif?site=…&url=…` records one event (default `pageview`; `name=` for
//! another, such as an email open) through the same path as `POST /api/event`, and answers a
//! 1×1 transparent GIF that is never cached, whatever happened (image clients ignore errors;
//! the status still says it).

use std::hash::Hasher;
use std::net::SocketAddr;
use std::sync::LazyLock;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AppState;

/// The minified snippet.
pub const SNIPPET: &[u8] = include_bytes!("../../tracker-js/dist/f.js");
/// The click add-on for heatmaps (opt-in, beside the snippet).
pub const HEATMAPS: &[u8] = include_bytes!("../../tracker-js/dist/h.js");
/// The heatmap overlay the add-on loads on a page opened with `#footfall-heatmap=<key>`.
pub const OVERLAY: &[u8] = include_bytes!("../../tracker-js/dist/o.js");

fn etag(bytes: &[u8]) -> String {
    let mut h = siphasher::sip::SipHasher13::new();
    h.write(bytes);
    format!("\"{:016x}\"", h.finish())
}

static ETAGS: LazyLock<[String; 3]> = LazyLock::new(|| [etag(SNIPPET), etag(HEATMAPS), etag(OVERLAY)]);

/// The smallest transparent GIF (43 bytes).
const PIXEL: [u8; 43] = [
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
    0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02,
    0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// `GET /f.js`.
#[utoipa::path(get, path = "/f.js", tag = "collect",
    responses((status = 200, description = "The tracking script (about 1 KB)", content_type = "application/javascript")))]
pub async fn snippet(headers: HeaderMap) -> Response {
    script(&headers, SNIPPET, &ETAGS[0])
}

/// `GET /h.js`.
#[utoipa::path(get, path = "/h.js", tag = "collect",
    responses((status = 200, description = "The click add-on for heatmaps (under 1 KB), embedded after /f.js", content_type = "application/javascript")))]
pub async fn heatmaps(headers: HeaderMap) -> Response {
    script(&headers, HEATMAPS, &ETAGS[1])
}

/// `GET /o.js`.
#[utoipa::path(get, path = "/o.js", tag = "collect",
    responses((status = 200, description = "The heatmap overlay, loaded by /h.js on a page opened with #footfall-heatmap=<key>", content_type = "application/javascript")))]
pub async fn overlay(headers: HeaderMap) -> Response {
    script(&headers, OVERLAY, &ETAGS[2])
}

/// A script with its ETag, revalidated after an hour.
fn script(headers: &HeaderMap, body: &'static [u8], etag: &str) -> Response {
    let cache = [(header::ETAG, etag), (header::CACHE_CONTROL, "public, max-age=3600")];
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if fresh {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    let mut resp = (cache, body).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8"));
    resp
}

/// Query of the pixel.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PixelQuery {
    pub site: String,
    /// The page (or e-mail) the pixel is in; default: the `Referer` header.
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub referrer: Option<String>,
    /// Default `pageview`.
    #[serde(default)]
    pub name: Option<String>,
}

/// `GET /api/event.gif`.
#[utoipa::path(get, path = "/api/event.gif", tag = "collect", params(crate::api::tracker::PixelQuery),
    responses((status = 200, description = "A 1×1 GIF; the pageview (or `name`) is recorded", content_type = "image/gif")))]
pub async fn pixel(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    query: Result<Query<PixelQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let status = match query {
        Err(_) => StatusCode::BAD_REQUEST,
        Ok(Query(q)) => {
            let page = q.url.or_else(|| headers.get(header::REFERER).and_then(|v| v.to_str().ok()).map(str::to_owned));
            let mut event = serde_json::json!({"site": q.site, "name": q.name.unwrap_or_else(|| "pageview".into())});
            if let Some(u) = page {
                event["url"] = u.into();
            }
            if let Some(r) = q.referrer {
                event["referrer"] = r.into();
            }
            let mut meta = super::events::request_meta(&headers, peer, app.trust_proxy);
            // A pixel carries no key and is not a cross-origin request.
            meta.write_key = None;
            meta.origin = None;
            match app.ingestor.ingest(event.to_string().as_bytes(), &meta).await {
                Ok(_) => StatusCode::OK,
                Err(e) => crate::api::ApiError::from(e).into_response().status(),
            }
        }
    };
    (status, [(header::CONTENT_TYPE, "image/gif"), (header::CACHE_CONTROL, "no-store, max-age=0")], PIXEL.as_slice())
        .into_response()
}
