//! The OpenAPI 3.1 description of the HTTP API, generated from the handlers' `#[utoipa::path]`
//! annotations and the request types' `ToSchema` derives (which follow their serde attributes,
//! `deny_unknown_fields` included), served at `/api/openapi.json`; Swagger UI, embedded in the
//! binary, browses it at `/api/docs`.
//!
//! The report route takes a different body per report; [`REPORT_SCHEMAS`] names each report's
//! request type, and a test keeps it in step with [`crate::reports::registry::REPORTS`].

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::reports;

/// An error answer: `{"error": {"code", "message", "field"}}`.
#[derive(ToSchema)]
#[allow(dead_code)] // described, never built: ApiError writes this shape
pub struct ErrorBody {
    error: ErrorDetail,
}

/// What went wrong, and where.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorDetail {
    /// A stable machine-readable code (`invalid_request`, `unauthorized`, `query_timeout`, …).
    code: String,
    /// What a person reads.
    message: String,
    /// The request field at fault (`steps[2].event`), when one is.
    field: Option<String>,
}

/// The body of `POST /api/reports/{kind}`: the request of the report `kind` names.
#[derive(ToSchema)]
#[allow(dead_code)] // described, never built: each report parses its own request
#[serde(untagged)]
pub enum ReportRequest {
    Trends(reports::trends::TrendsRequest),
    Funnel(reports::funnel::FunnelRequest),
    Retention(reports::retention::RetentionRequest),
    Experiment(reports::experiment::ExperimentRequest),
    Lifecycle(reports::lifecycle::LifecycleRequest),
    Attribution(reports::attribution::AttributionRequest),
    Ecommerce(reports::ecommerce::EcommerceRequest),
    Engagement(reports::engagement::EngagementRequest),
    Heatmap(reports::heatmap::HeatmapRequest),
    Paths(reports::paths::PathsRequest),
    Segment(reports::segments::SegmentRequest),
    Catalog(reports::catalog::CatalogRequest),
    Predictions(reports::predictions::PredictionsRequest),
    Affinities(reports::predictions::AffinitiesRequest),
}

/// The request type of each report (`POST /api/reports/{kind}`), by name.
pub const REPORT_SCHEMAS: [(&str, &str); 14] = [
    ("trends", "TrendsRequest"),
    ("funnel", "FunnelRequest"),
    ("retention", "RetentionRequest"),
    ("experiment", "ExperimentRequest"),
    ("lifecycle", "LifecycleRequest"),
    ("attribution", "AttributionRequest"),
    ("ecommerce", "EcommerceRequest"),
    ("engagement", "EngagementRequest"),
    ("heatmap", "HeatmapRequest"),
    ("paths", "PathsRequest"),
    ("segment", "SegmentRequest"),
    ("predictions", "PredictionsRequest"),
    ("affinities", "AffinitiesRequest"),
    ("catalog", "CatalogRequest"),
];

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "footfall",
        description = "Behavioural web analytics for online shops: event collection, reports, analyst SQL, segments, \
                       sharing and data export. Keys: a site's write key sends events (`ffw_…`), its read key reads \
                       (`ffr_…`), a share link's key views reports (`ffv_…`), the operator's admin key does all. \
                       Errors are `{\"error\": {\"code\", \"message\", \"field\"}}`.",
        license(name = "Apache-2.0")
    ),
    paths(
        super::events::post_event,
        super::tracker::pixel,
        super::tracker::snippet,
        super::tracker::heatmaps,
        super::tracker::overlay,
        super::segment::post,
        super::import::post_import,
        super::sql::post_sql,
        super::reports::post_report,
        super::reports::members_csv,
        super::segments::list,
        super::segments::create,
        super::segments::update,
        super::segments::remove,
        super::people::forget,
        super::people::export,
        super::people::rejected,
        super::people::live,
        super::recommend::get,
        super::shares::list_views,
        super::shares::save_view,
        super::shares::delete_view,
        super::shares::list_shares,
        super::shares::create_share,
        super::shares::revoke_share,
        super::dashboard::sites,
        super::dashboard::dimensions,
        super::healthz,
        super::metrics,
        openapi_json,
    ),
    modifiers(&Keys),
    tags(
        (name = "collect", description = "Events in: the tracker, backends, Segment's SDKs, history imports"),
        (name = "query", description = "Reports and analyst SQL"),
        (name = "segments", description = "Saved segments and their members"),
        (name = "people", description = "A person's data: export and erasure; rejected events; the live view"),
        (name = "sharing", description = "Saved views and view-only share links"),
        (name = "operations", description = "Health, metrics, this document"),
    )
)]
pub struct ApiDoc;

/// The bearer keys, and Segment's Basic authentication (the write key as the user name).
struct Keys;

impl Modify for Keys {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A site's write, read or share key, or the admin key, as `Authorization: Bearer <key>`",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "segment_write_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some("Segment's SDKs: the site's write key as the user name, no password"))
                    .build(),
            ),
        );
    }
}

/// The document, built once.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOC: std::sync::LazyLock<utoipa::openapi::OpenApi> = std::sync::LazyLock::new(ApiDoc::openapi);
    &DOC
}

/// This document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn openapi_json() -> axum::Json<&'static utoipa::openapi::OpenApi> {
    axum::Json(document())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_report_has_its_request_schema_in_the_document() {
        let names: Vec<&str> = reports::registry::REPORTS.iter().map(|r| r.name).collect();
        let documented: Vec<&str> = REPORT_SCHEMAS.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, documented, "REPORT_SCHEMAS must list every report, in the registry's order");
        let schemas = &document().components.as_ref().expect("components").schemas;
        for (_, schema) in REPORT_SCHEMAS {
            assert!(schemas.contains_key(schema), "{schema} is not in the document");
        }
    }
}
