//! Segment's tracking API on footfall's own server, so the SDKs a shop's backend already uses
//! (Segment's and RudderStack's, pointed at footfall with their `host` setting) deliver here.
//!
//! - `POST /v1/batch` (`{"batch": [call, …], "sentAt"}`; `/v1/import` too) and `POST /v1/track`,
//!   `/v1/identify`, `/v1/page`, `/v1/screen`, `/v1/group`, `/v1/alias` (one call; its type is
//!   the path's). Gzip bodies are accepted (the router decompresses them).
//! - Auth as the SDKs send it: HTTP Basic with the site's **write key** as the user name and an
//!   empty password (or `writeKey` in the body). A wrong key answers 401.
//! - Each call is mapped as `footfall import --format segment` maps it
//!   ([`crate::import::formats::segment`]): `anonymousId` → visitor id, `userId` → user id (an
//!   `identify` links them), `messageId` → event id (a retry is stored once),
//!   `properties`/`traits` → props, `context.page.url`/`referrer` → url/referrer,
//!   `context.userAgent`/`context.ip` → enrichment, the e-commerce spec v2 names and
//!   `products[]` → footfall's e-commerce events and items. `group` and `alias` are accepted and
//!   not kept (footfall has no accounts; an alias is an identify's job).
//! - Time, as Segment documents: an event's time is the receive time less its age by the
//!   sender's clock (`sentAt − timestamp`), so a sender's clock error cancels out. Calls older
//!   than the live window (7 days) are history: they go the way `footfall import` stores
//!   history, at their own time, instead of through the write-ahead log.
//! - Answers `{"success": true}` (200) as Segment's API does; a body that is not JSON or has no
//!   call is 400, naming the field.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use base64::Engine;
use serde_json::{Map, Value, json};

use super::{ApiError, AppState};
use crate::ingest::RequestMeta;

/// Calls older than this (by their own `timestamp` against the receive time) are history.
const LIVE_WINDOW_MICROS: i64 = 7 * 24 * 3600 * 1_000_000;

/// The write key: HTTP Basic's user name, else `writeKey` in the body.
fn write_key(headers: &HeaderMap, body: &Value) -> Option<String> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .map(|s| s.split(':').next().unwrap_or_default().to_owned())
        .filter(|k| !k.is_empty());
    basic.or_else(|| body.get("writeKey").and_then(Value::as_str).map(str::to_owned))
}

/// The calls of a request (taken out of it, not copied): a batch's, or the one call with the
/// path's type.
fn calls(kind: &str, mut body: Value) -> Result<Vec<Value>, ApiError> {
    match kind {
        "batch" | "import" => match body.get_mut("batch").map(Value::take) {
            Some(Value::Array(b)) if !b.is_empty() => Ok(b),
            _ => Err(crate::reports::invalid("batch", "give the calls as a non-empty array in `batch`").into()),
        },
        "track" | "identify" | "page" | "screen" | "group" | "alias" => {
            if let Some(o) = body.as_object_mut() {
                o.insert("type".into(), Value::String(kind.to_owned()));
            }
            Ok(vec![body])
        }
        other => {
            Err(ApiError::NotFound(format!("no /v1/{other}: use batch, track, identify, page, screen, group or alias")))
        }
    }
}

/// A call's time in microseconds (`timestamp`, else `originalTimestamp`), if it has one.
fn call_time(call: &Value) -> Option<i64> {
    let t = call.get("timestamp").or_else(|| call.get("originalTimestamp"))?.as_str()?;
    chrono::DateTime::parse_from_rfc3339(t).ok().map(|t| t.timestamp_micros())
}

/// `POST /v1/{kind}`.
#[utoipa::path(post, path = "/v1/{kind}", tag = "collect",
    params(("kind" = String, Path, description = "batch, import, track, identify, page, screen, group or alias")),
    request_body(content = Object, description = "A call or a batch in Segment's spec (gzip accepted)", content_type = "application/json"),
    responses((status = 200, description = "`{\"success\": true}`", body = Object), (status = 400, description = "Invalid request (the field is named)", body = crate::api::openapi::ErrorBody), (status = 401, description = "Missing or wrong key", body = crate::api::openapi::ErrorBody), (status = 413, description = "Body too large", body = crate::api::openapi::ErrorBody), (status = 429, description = "Rate limited", body = crate::api::openapi::ErrorBody), (status = 503, description = "Busy or the write-ahead log is full; retry later", body = crate::api::openapi::ErrorBody)),
    security(("segment_write_key" = []), ("key" = [])))]
pub async fn post(
    State(app): State<AppState>,
    Path(kind): Path<String>,
    headers: HeaderMap,
    bytes: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: Value = serde_json::from_slice(&bytes).map_err(|e| ApiError::BadBody(format!("not JSON: {e}")))?;
    let key = write_key(&headers, &body).ok_or(ApiError::Ingest(crate::ingest::Error::BadWriteKey))?;
    let site = app.ingestor.sites.by_write_key(&key).ok_or(ApiError::Ingest(crate::ingest::Error::BadWriteKey))?;
    // Sent at: the batch's, else the call's own (single calls carry theirs).
    let batch_sent = body.get("sentAt").and_then(Value::as_str).map(str::to_owned);
    let all = calls(&kind, body)?;
    let now = app.ingestor.clock.now_micros();
    // Older than the live window: stored the way history is imported.
    let history_call = |c: &Value| call_time(c).is_some_and(|t| now - t > LIVE_WINDOW_MICROS);
    let (history, live): (Vec<Value>, Vec<Value>) = all.into_iter().partition(history_call);
    let mut events = Vec::with_capacity(live.len());
    // Each event's call, by its place among the live calls (for the quarantine).
    let mut places = Vec::with_capacity(live.len());
    for (place, call) in live.into_iter().enumerate() {
        let sent = batch_sent.clone().or_else(|| call.get("sentAt").and_then(Value::as_str).map(str::to_owned));
        let ip = call.pointer("/context/ip").cloned();
        let Some(Value::Object(mut e)) = crate::import::formats::segment(call) else { continue };
        e.insert("site".into(), Value::String(site.id.as_str().to_owned()));
        if let Some(ip) = ip.filter(Value::is_string) {
            e.insert("ip".into(), ip);
        }
        // The request's sent-at rides on its first event (what /api/event reads).
        if events.is_empty()
            && let Some(s) = sent
        {
            e.insert("sent_at".into(), Value::String(s));
        }
        events.push(Value::Object(e));
        places.push(place);
    }
    let mut out = Map::new();
    out.insert("success".into(), Value::Bool(true));
    if !events.is_empty() {
        let meta = RequestMeta {
            ip: None,
            user_agent: None,
            origin: None,
            write_key: Some(key.clone()),
            privacy_signal: false,
        };
        // A refused event is kept in the quarantine as the call that was sent: the body is
        // read again, only then.
        let sent_calls = || {
            let Ok(all) = serde_json::from_slice(&bytes).map_err(|_| ()).and_then(|b| calls(&kind, b).map_err(|_| ()))
            else {
                return Vec::new();
            };
            let live: Vec<Value> = all.into_iter().filter(|c| !history_call(c)).collect();
            places.iter().map(|&p| live.get(p).cloned().unwrap_or(Value::Null)).collect()
        };
        let outcome = app.ingestor.ingest_items(events, &meta, sent_calls).await?;
        if !outcome.rejected.is_empty() {
            out.insert("rejected".into(), json!(outcome.rejected));
        }
    }
    if !history.is_empty() {
        out.insert("history".into(), json!(store_history(&app, site.id.clone(), history).await?));
    }
    Ok(Json(Value::Object(out)))
}

/// Calls older than the live window, stored at their own time as `footfall import` stores them.
async fn store_history(
    app: &AppState,
    site: crate::model::SiteId,
    calls: Vec<Value>,
) -> Result<crate::import::ImportReport, ApiError> {
    let mut lines = Vec::new();
    for c in &calls {
        serde_json::to_writer(&mut lines, c).map_err(|e| ApiError::Internal(e.to_string()))?;
        lines.push(b'\n');
    }
    let opts = crate::import::ImportOptions {
        site,
        format: crate::import::ImportFormat::Segment,
        map: None,
        max_errors: calls.len(),
    };
    super::import::run(app, opts, lines).await
}
