//! `POST /api/event`: extract request facts, call [`crate::ingest::Ingestor::ingest`], map the
//! result. The handlers live in `api/`; `ingest/` knows nothing of HTTP.

use std::net::{IpAddr, SocketAddr};

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use http_body_util::BodyExt;

use super::{ApiError, AppState};
use crate::ingest::{Outcome, RequestMeta};

/// Largest body accepted, after gzip decoding.
pub const MAX_BODY: usize = 512 * 1024;

/// Accept one event or a batch. See `schemas/event.schema.json`.
#[utoipa::path(post, path = "/api/event", tag = "collect",
    request_body(content = Object, description = "One event or an array of events (schemas/event.schema.json); `text/plain` is accepted for sendBeacon", content_type = "application/json"),
    responses((status = 202, description = "Accepted: how many events were stored and which were rejected", body = Object), (status = 400, description = "Invalid request (the field is named)", body = crate::api::openapi::ErrorBody), (status = 401, description = "Missing or wrong key", body = crate::api::openapi::ErrorBody), (status = 413, description = "Body too large", body = crate::api::openapi::ErrorBody), (status = 415, description = "Unsupported media type", body = crate::api::openapi::ErrorBody), (status = 429, description = "Rate limited", body = crate::api::openapi::ErrorBody), (status = 503, description = "Busy or the write-ahead log is full; retry later", body = crate::api::openapi::ErrorBody)),
    security((), ("key" = [])))]
pub async fn post_event(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Outcome>), ApiError> {
    check_content_type(&headers)?;
    let bytes = http_body_util::Limited::new(body, MAX_BODY).collect().await.map_err(|e| {
        if e.is::<http_body_util::LengthLimitError>() { ApiError::TooLarge } else { ApiError::BadBody(e.to_string()) }
    })?;
    let meta = request_meta(&headers, peer, app.trust_proxy);
    let outcome = app.ingestor.ingest(&bytes.to_bytes(), &meta).await?;
    Ok((StatusCode::ACCEPTED, Json(outcome)))
}

fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else { return Ok(()) };
    let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
    let essence = ct.split(';').next().unwrap_or("").trim();
    if essence == "application/json" || essence == "text/plain" {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(essence.to_owned()))
    }
}

fn header_str(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// The client IP: the socket peer, or with `trust_proxy` the first valid address of
/// `X-Forwarded-For` (then `X-Real-IP`).
pub fn client_ip(headers: &HeaderMap, peer: SocketAddr, trust_proxy: bool) -> IpAddr {
    if trust_proxy {
        let forwarded = header_str(headers, "x-forwarded-for")
            .and_then(|v| v.split(',').find_map(|p| p.trim().parse::<IpAddr>().ok()))
            .or_else(|| header_str(headers, "x-real-ip").and_then(|v| v.trim().parse().ok()));
        if let Some(ip) = forwarded {
            return ip;
        }
    }
    peer.ip()
}

pub(crate) fn request_meta(headers: &HeaderMap, peer: SocketAddr, trust_proxy: bool) -> RequestMeta {
    RequestMeta {
        ip: Some(client_ip(headers, peer, trust_proxy)),
        user_agent: header_str(headers, header::USER_AGENT),
        origin: header_str(headers, header::ORIGIN),
        write_key: super::bearer(headers).map(str::to_owned),
        privacy_signal: ["dnt", "sec-gpc"].iter().any(|h| header_str(headers, *h).is_some_and(|v| v.trim() == "1")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().expect("header value"));
        }
        h
    }

    #[test]
    fn forwarded_for_is_used_only_when_trusted() {
        let peer: SocketAddr = "10.0.0.1:5000".parse().expect("addr");
        let h = headers(&[("x-forwarded-for", "garbage, 198.51.100.7, 10.0.0.2")]);
        assert_eq!(client_ip(&h, peer, false), peer.ip());
        assert_eq!(client_ip(&h, peer, true), "198.51.100.7".parse::<IpAddr>().expect("ip"));
        let h = headers(&[("x-real-ip", "2001:db8::5")]);
        assert_eq!(client_ip(&h, peer, true), "2001:db8::5".parse::<IpAddr>().expect("ip"));
        assert_eq!(client_ip(&HeaderMap::new(), peer, true), peer.ip());
    }

    #[test]
    fn content_types() {
        assert!(check_content_type(&headers(&[("content-type", "text/plain;charset=UTF-8")])).is_ok());
        assert!(check_content_type(&headers(&[("content-type", "application/json")])).is_ok());
        assert!(check_content_type(&HeaderMap::new()).is_ok());
        assert!(matches!(
            check_content_type(&headers(&[("content-type", "application/x-www-form-urlencoded")])),
            Err(ApiError::UnsupportedMediaType(_))
        ));
    }
}
