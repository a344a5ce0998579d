//! The embedded dashboard: `/` and every client route (`/monitors/…`, `/incidents/…`, …)
//! answer `index.html` (no-cache); the assets live under `/app/<version>/<file>`, where
//! `<version>` is a hash of every asset, and are served with a one-year immutable cache.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use super::ApiState;

/// `(file name, content type, bytes)` of every asset.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../web/app/app.js"),
    ),
    (
        "ui.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../web/app/ui.js"),
    ),
    (
        "charts.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../web/app/charts.js"),
    ),
    (
        "form.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../web/app/form.js"),
    ),
    (
        "pages.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../web/app/pages.js"),
    ),
    (
        "admin.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../web/app/admin.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../../../web/app/app.css"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_str!("../../../web/app/icon.svg"),
    ),
];

/// The page template; `{{V}}` becomes the asset version.
const INDEX: &str = include_str!("../../../web/app/index.html");

/// Client routes that answer the app (history-API navigation, links in notifications).
pub const CLIENT_ROUTES: &[&str] = &[
    "/login",
    "/monitors",
    "/monitors/{*rest}",
    "/incidents",
    "/incidents/{*rest}",
    "/plugins",
    "/channels",
    "/maintenance",
    "/keys",
    "/status-pages",
];

/// The asset version: the first 12 hex digits of the sha256 of every asset.
pub static VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut h = Sha256::new();
    for (name, _, body) in ASSETS {
        h.update(name.as_bytes());
        h.update(body.as_bytes());
    }
    h.update(INDEX.as_bytes());
    hex::encode(h.finalize())[..12].to_string()
});

static PAGE: LazyLock<String> = LazyLock::new(|| INDEX.replace("{{V}}", &VERSION));

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Dashboard
///
/// The single-page dashboard (HTML; also served for its client routes such as
/// `/monitors/{id}` and `/incidents/{id}`).
#[utoipa::path(get, path = "/", operation_id = "home", tag = "meta",
    responses((status = 200, description = "The dashboard", content_type = "text/html")),
    security(()))]
pub async fn index() -> Response {
    let mut response = PAGE.as_str().into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// One asset; long-cached when `version` is the current one, otherwise served uncached (an
/// old page still loads during an upgrade).
async fn asset(Path((version, file)): Path<(String, String)>) -> Response {
    let Some((_, content_type, body)) = ASSETS.iter().find(|(name, _, _)| *name == file) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut response = (*body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    let cache = if version == *VERSION {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// The asset and client routes (not part of the API table or the OpenAPI document).
pub fn router() -> axum::Router<ApiState> {
    let mut r = axum::Router::new().route("/app/{version}/{file}", get(asset));
    for path in CLIENT_ROUTES {
        r = r.route(path, get(index));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_the_versioned_assets() {
        assert_eq!(VERSION.len(), 12);
        assert!(PAGE.contains(&format!("/app/{}/app.js", *VERSION)));
        assert!(!PAGE.contains("{{V}}"));
    }
}
