//! One error type for every HTTP route, mapped to a status in one exhaustive `match`.
//! Body: `{"error": {"code", "message", "field"}}`, plus per-item `rejected` for batches.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use datafusion::error::DataFusionError;

use crate::ingest::{self, validate::ItemError};
use crate::wal;

/// Seconds a client should wait when the collector is overloaded.
const BUSY_RETRY_AFTER: u64 = 5;
/// Seconds a client should wait when every query slot is taken.
const QUERY_RETRY_AFTER: u64 = 2;

/// An error answered over HTTP.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Ingest(#[from] ingest::Error),
    #[error("request body is larger than {} bytes", super::events::MAX_BODY)]
    TooLarge,
    #[error("content type {0:?} is not accepted; send application/json or text/plain")]
    UnsupportedMediaType(String),
    #[error("request body could not be read: {0}")]
    BadBody(String),
    #[error("send a read key (or the admin key) as `Authorization: Bearer <key>`")]
    Unauthorized,
    #[error(transparent)]
    Query(#[from] crate::query::Error),
    #[error(transparent)]
    Report(#[from] crate::reports::Error),
    #[error("send the metrics key as `Authorization: Bearer <key>`")]
    MetricsKey,
    #[error("read keys only read; saving or deleting segments needs the site's write key or the admin key")]
    ReadOnlyKey,
    #[error("{0}")]
    NotFound(String),
    #[error("{0:?} is not a person id: write u:<user id> or v:<visitor id>")]
    BadPerson(String),
    #[error("forgetting a person needs the admin key")]
    AdminOnly,
    #[error("a share link only views reports; SQL, people and changes need the site's read key or the admin key")]
    ViewOnlyKey,
    #[error("internal error: {0}")]
    Internal(String),
}

struct Parts {
    status: StatusCode,
    code: &'static str,
    field: String,
    rejected: Option<Vec<ItemError>>,
    retry_after: Option<u64>,
}

fn parts(status: StatusCode, code: &'static str) -> Parts {
    Parts { status, code, field: String::new(), rejected: None, retry_after: None }
}

fn batch(status: StatusCode, code: &'static str, rejected: &[ItemError]) -> Parts {
    let field = rejected.first().map(|r| r.field.clone()).unwrap_or_default();
    Parts { status, code, field, rejected: Some(rejected.to_vec()), retry_after: None }
}

impl ApiError {
    fn parts(&self) -> Parts {
        use ingest::Error as I;
        match self {
            Self::Ingest(I::Body(_)) => parts(StatusCode::BAD_REQUEST, "invalid_body"),
            Self::Ingest(I::NothingValid { rejected }) => batch(StatusCode::BAD_REQUEST, "invalid_events", rejected),
            Self::Ingest(I::Forbidden { rejected }) => batch(StatusCode::FORBIDDEN, "forbidden_site", rejected),
            Self::Ingest(I::BadWriteKey) => {
                Parts { field: "authorization".into(), ..parts(StatusCode::UNAUTHORIZED, "invalid_write_key") }
            }
            Self::Ingest(I::RateLimited { retry_after_secs }) => {
                Parts { retry_after: Some(*retry_after_secs), ..parts(StatusCode::TOO_MANY_REQUESTS, "rate_limited") }
            }
            Self::Ingest(I::Wal(e)) => match e {
                wal::Error::Full { .. }
                | wal::Error::FlusherBehind { .. }
                | wal::Error::DiskFull
                | wal::Error::Closed => Parts {
                    retry_after: Some(BUSY_RETRY_AFTER),
                    ..parts(StatusCode::SERVICE_UNAVAILABLE, "unavailable")
                },
                wal::Error::Io { .. }
                | wal::Error::BadMagic { .. }
                | wal::Error::UnsupportedVersion { .. }
                | wal::Error::BadPayload { .. } => parts(StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            },
            Self::TooLarge => parts(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::UnsupportedMediaType(_) => Parts {
                field: "content-type".into(),
                ..parts(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            },
            Self::BadBody(_) => parts(StatusCode::BAD_REQUEST, "invalid_body"),
            Self::Unauthorized => {
                Parts { field: "authorization".into(), ..parts(StatusCode::UNAUTHORIZED, "invalid_read_key") }
            }
            Self::Report(crate::reports::Error::Invalid { field, .. }) => {
                Parts { field: field.clone(), ..parts(StatusCode::BAD_REQUEST, "invalid_report") }
            }
            Self::Report(crate::reports::Error::Forbidden(_)) => {
                Parts { field: "site".into(), ..parts(StatusCode::FORBIDDEN, "forbidden_site") }
            }
            Self::Report(crate::reports::Error::Query(e)) => match e {
                crate::query::Error::Timeout(_) | crate::query::Error::Busy { .. } => query_parts(e),
                crate::query::Error::DataFusion(d)
                    if matches!(d.find_root(), DataFusionError::ResourcesExhausted(_)) =>
                {
                    query_parts(e)
                }
                // Report SQL is ours: a planning error or a statement past the SQL limits is a
                // bug (requests are bounded before SQL is built), not the caller's.
                crate::query::Error::Refused(_)
                | crate::query::Error::TooComplex(_)
                | crate::query::Error::Panicked(_)
                | crate::query::Error::DataFusion(_)
                | crate::query::Error::Io { .. } => parts(StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            },
            // On /api/sql the statement is what the client sent: a 4xx names it.
            Self::Query(e) => {
                let p = query_parts(e);
                if p.field.is_empty() && p.status.is_client_error() { Parts { field: "sql".into(), ..p } } else { p }
            }
            Self::MetricsKey => {
                Parts { field: "authorization".into(), ..parts(StatusCode::UNAUTHORIZED, "invalid_metrics_key") }
            }
            Self::ReadOnlyKey => {
                Parts { field: "authorization".into(), ..parts(StatusCode::FORBIDDEN, "read_only_key") }
            }
            Self::NotFound(_) => parts(StatusCode::NOT_FOUND, "not_found"),
            Self::BadPerson(_) => Parts { field: "id".into(), ..parts(StatusCode::BAD_REQUEST, "invalid_person") },
            Self::AdminOnly => {
                Parts { field: "authorization".into(), ..parts(StatusCode::FORBIDDEN, "admin_key_required") }
            }
            Self::ViewOnlyKey => {
                Parts { field: "authorization".into(), ..parts(StatusCode::FORBIDDEN, "view_only_key") }
            }
            Self::Internal(_) => parts(StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

fn query_parts(e: &crate::query::Error) -> Parts {
    use crate::query::Error as Q;
    match e {
        Q::Refused(_) => Parts { field: "sql".into(), ..parts(StatusCode::BAD_REQUEST, "refused_statement") },
        Q::TooComplex(_) => Parts { field: "sql".into(), ..parts(StatusCode::BAD_REQUEST, "query_too_complex") },
        Q::Timeout(_) => parts(StatusCode::REQUEST_TIMEOUT, "query_timeout"),
        Q::Busy { .. } => {
            Parts { retry_after: Some(QUERY_RETRY_AFTER), ..parts(StatusCode::SERVICE_UNAVAILABLE, "too_many_queries") }
        }
        Q::Panicked(_) | Q::Io { .. } => parts(StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        // DataFusion wraps errors from inside a plan (Context, Shared, External): judge the root.
        Q::DataFusion(d) => match d.find_root() {
            DataFusionError::ResourcesExhausted(_) => parts(StatusCode::UNPROCESSABLE_ENTITY, "query_memory_exceeded"),
            DataFusionError::Internal(_) => parts(StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            // Plan, SQL, schema and execution errors are the query's: say what DataFusion said.
            _ => Parts { field: "sql".into(), ..parts(StatusCode::BAD_REQUEST, "invalid_query") },
        },
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let p = self.parts();
        if p.status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let mut body = json!({"error": {"code": p.code, "message": self.to_string(), "field": p.field}});
        if let Some(rejected) = p.rejected {
            body["accepted"] = json!(0);
            body["rejected"] = json!(rejected);
        }
        let mut resp = (p.status, Json(body)).into_response();
        if let Some(secs) = p.retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn wal(e: wal::Error) -> ApiError {
        ApiError::Ingest(ingest::Error::Wal(e))
    }

    #[rstest]
    #[case(wal(wal::Error::Full { limit: 1 }), 503, true)]
    #[case(wal(wal::Error::FlusherBehind { events: 1 }), 503, true)]
    #[case(wal(wal::Error::DiskFull), 503, true)]
    #[case(wal(wal::Error::Closed), 503, true)]
    #[case(wal(wal::Error::Io { path: "/w".into(), source: std::io::Error::other("x") }), 500, false)]
    #[case(ApiError::Ingest(ingest::Error::RateLimited { retry_after_secs: 3 }), 429, true)]
    #[case(ApiError::Ingest(ingest::Error::BadWriteKey), 401, false)]
    #[case(ApiError::TooLarge, 413, false)]
    #[case(ApiError::UnsupportedMediaType("x/y".into()), 415, false)]
    #[case(ApiError::Unauthorized, 401, false)]
    #[case(ApiError::Query(crate::query::Error::Refused("DDL".into())), 400, false)]
    #[case(ApiError::Query(crate::query::Error::Timeout(std::time::Duration::from_secs(1))), 408, false)]
    #[case(ApiError::Query(crate::query::Error::DataFusion(DataFusionError::ResourcesExhausted("x".into()))), 422, false)]
    #[case(ApiError::Query(crate::query::Error::DataFusion(DataFusionError::Internal("x".into()))), 500, false)]
    #[case(ApiError::Query(crate::query::Error::DataFusion(DataFusionError::Plan("x".into()))), 400, false)]
    #[case(ApiError::Query(crate::query::Error::TooComplex("x".into())), 400, false)]
    #[case(ApiError::Query(crate::query::Error::Busy { running: 1, waiting: 1 }), 503, true)]
    #[case(ApiError::Query(crate::query::Error::DataFusion(DataFusionError::Context("in a plan".into(), Box::new(DataFusionError::ResourcesExhausted("x".into()))))), 422, false)]
    #[case(ApiError::Report(crate::reports::Error::Query(crate::query::Error::Busy { running: 1, waiting: 1 })), 503, true)]
    fn statuses_and_retry_after(#[case] err: ApiError, #[case] status: u16, #[case] retry: bool) {
        let resp = err.into_response();
        assert_eq!(resp.status().as_u16(), status);
        assert_eq!(resp.headers().contains_key(header::RETRY_AFTER), retry);
    }
}
