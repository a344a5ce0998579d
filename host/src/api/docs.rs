//! The interactive API docs page (`/api/docs`): one self-contained HTML file that reads
//! `/api/openapi.json` and works offline (no CDN, no external fonts).

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// The page, embedded at build time.
pub const PAGE: &str = include_str!("../../../web/api-docs.html");

/// API documentation
///
/// Interactive documentation of this API (HTML).
#[utoipa::path(get, path = "/api/docs", operation_id = "apiDocs", tag = "meta",
    responses((status = 200, description = "The docs page", content_type = "text/html")),
    security(()))]
pub async fn docs() -> Response {
    let mut response = PAGE.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
             connect-src 'self'; img-src 'self' data:",
        ),
    );
    response
}
