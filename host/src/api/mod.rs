//! The REST API under `/api/v1` (JSON, bearer API keys), health and metrics endpoints, push
//! URLs, OpenAPI 3.1 at `/api/openapi.json` and an offline docs page at `/api/docs`.
//!
//! Every route is declared once in [`table`]; the router, the OpenAPI completeness test and
//! the route list in the docs all come from it. Every error, including unknown routes, wrong
//! methods, bad bodies and panics, is the envelope of [`error`].

pub mod auth;
pub mod channels;
pub mod dashboard;
pub mod docs;
pub mod error;
pub mod events;
pub mod extract;
pub mod health;
pub mod idempotency;
pub mod incidents;
pub mod keys;
pub mod maintenance;
pub mod monitor_input;
pub mod monitors;
pub mod notifications;
pub mod openapi;
pub mod pagination;
pub mod plugin_config;
pub mod plugins;
pub mod push;
pub mod results;
pub mod status_pages;
pub mod ui;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::handler::Handler;
use axum::http::{Method, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter};
use tower_http::catch_panic::CatchPanicLayer;

use crate::app::App;
use crate::model::Scope;
use error::{ApiError, ErrorCode};

/// What handlers share: the service plus the API's own caches.
#[derive(Clone)]
pub struct ApiState {
    pub app: Arc<App>,
    /// Recently verified API keys.
    pub keys: Arc<auth::KeyCache>,
    /// Idempotency keys being processed on this node.
    pub idempotency: Arc<idempotency::InFlight>,
    /// The dashboard overview's rolled-up series, per workspace.
    pub dashboard: Arc<dashboard::SeriesCache>,
    /// Built public status pages, per slug.
    pub status: Arc<crate::status::StatusCache>,
}

impl ApiState {
    /// State over a running service.
    pub fn new(app: Arc<App>) -> Self {
        Self {
            app,
            keys: Arc::new(auth::KeyCache::new()),
            idempotency: Arc::new(idempotency::InFlight::default()),
            dashboard: Arc::new(dashboard::SeriesCache::default()),
            status: Arc::new(crate::status::StatusCache::default()),
        }
    }
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No API key.
    Public,
    /// An API key with at least this scope.
    Key(Scope),
    /// Open, or `Authorization: Bearer <metrics.token>` when one is configured.
    MetricsToken,
}

/// One route of the HTTP surface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
}

type Entry = (RouteInfo, MethodRouter<ApiState>);

fn route<H, T>(method: Method, path: &'static str, access: Access, handler: H) -> Entry
where
    H: Handler<T, ApiState>,
    T: 'static,
{
    let filter = MethodFilter::try_from(method.clone()).unwrap_or(MethodFilter::GET);
    (
        RouteInfo {
            method,
            path,
            access,
        },
        axum::routing::on(filter, handler),
    )
}

/// Every route with its handler (`/metrics` only when `serve_metrics`).
fn table(serve_metrics: bool) -> Vec<Entry> {
    use Access::{Key, Public};
    use Method as M;
    use Scope::{Admin, Read, Write};
    let mut t = vec![
        route(M::POST, "/api/v1/monitors", Key(Write), monitors::create),
        route(M::GET, "/api/v1/monitors", Key(Read), monitors::list),
        route(
            M::POST,
            "/api/v1/monitors/bulk",
            Key(Write),
            monitors::bulk_create,
        ),
        route(
            M::POST,
            "/api/v1/monitors/actions",
            Key(Write),
            monitors::actions,
        ),
        route(M::POST, "/api/v1/monitors/test", Key(Write), monitors::test),
        route(M::GET, "/api/v1/monitors/{id}", Key(Read), monitors::get),
        route(
            M::PATCH,
            "/api/v1/monitors/{id}",
            Key(Write),
            monitors::patch,
        ),
        route(
            M::DELETE,
            "/api/v1/monitors/{id}",
            Key(Write),
            monitors::delete,
        ),
        route(
            M::POST,
            "/api/v1/monitors/{id}/check-now",
            Key(Write),
            monitors::check_now,
        ),
        route(
            M::GET,
            "/api/v1/monitors/{id}/results",
            Key(Read),
            results::results,
        ),
        route(
            M::GET,
            "/api/v1/monitors/{id}/latency",
            Key(Read),
            results::latency,
        ),
        route(
            M::GET,
            "/api/v1/monitors/{id}/uptime",
            Key(Read),
            results::uptime,
        ),
        route(M::GET, "/api/v1/tags", Key(Read), results::tags),
        route(M::GET, "/api/v1/incidents", Key(Read), incidents::list),
        route(M::GET, "/api/v1/incidents/{id}", Key(Read), incidents::get),
        route(
            M::POST,
            "/api/v1/incidents/{id}/acknowledge",
            Key(Write),
            incidents::acknowledge,
        ),
        route(
            M::POST,
            "/api/v1/incidents/{id}/notes",
            Key(Write),
            incidents::add_note,
        ),
        route(
            M::GET,
            "/api/v1/incidents/{id}/notifications",
            Key(Read),
            incidents::notifications,
        ),
        route(
            M::GET,
            "/api/v1/dashboard/summary",
            Key(Read),
            results::summary,
        ),
        route(
            M::GET,
            "/api/v1/dashboard/monitors",
            Key(Read),
            dashboard::monitors,
        ),
        route(M::GET, "/api/v1/events", Key(Read), events::events),
        route(
            M::GET,
            "/api/v1/notifications",
            Key(Read),
            notifications::list,
        ),
        route(
            M::GET,
            "/api/v1/notifications/{id}",
            Key(Read),
            notifications::get,
        ),
        route(
            M::POST,
            "/api/v1/notifications/{id}/retry",
            Key(Write),
            notifications::retry,
        ),
        route(M::POST, "/api/v1/channels", Key(Admin), channels::create),
        route(M::GET, "/api/v1/channels", Key(Read), channels::list),
        route(
            M::POST,
            "/api/v1/channels/test",
            Key(Write),
            channels::test_unsaved,
        ),
        route(M::GET, "/api/v1/channels/{id}", Key(Read), channels::get),
        route(
            M::PATCH,
            "/api/v1/channels/{id}",
            Key(Admin),
            channels::patch,
        ),
        route(
            M::DELETE,
            "/api/v1/channels/{id}",
            Key(Admin),
            channels::delete,
        ),
        route(
            M::POST,
            "/api/v1/channels/{id}/test",
            Key(Write),
            channels::test_saved,
        ),
        route(
            M::POST,
            "/api/v1/maintenance-windows",
            Key(Write),
            maintenance::create,
        ),
        route(
            M::GET,
            "/api/v1/maintenance-windows",
            Key(Read),
            maintenance::list,
        ),
        route(
            M::GET,
            "/api/v1/maintenance-windows/{id}",
            Key(Read),
            maintenance::get,
        ),
        route(
            M::PATCH,
            "/api/v1/maintenance-windows/{id}",
            Key(Write),
            maintenance::patch,
        ),
        route(
            M::DELETE,
            "/api/v1/maintenance-windows/{id}",
            Key(Write),
            maintenance::delete,
        ),
        route(M::GET, "/api/v1/plugins", Key(Read), plugins::list),
        route(
            M::GET,
            "/api/v1/plugins/{name}/{version}",
            Key(Read),
            plugins::get,
        ),
        route(
            M::DELETE,
            "/api/v1/plugins/{name}/{version}",
            Key(Admin),
            plugins::delete,
        ),
        route(
            M::POST,
            "/api/v1/plugins/{name}/{version}/grant",
            Key(Admin),
            plugins::grant,
        ),
        route(
            M::POST,
            "/api/v1/plugins/{name}/{version}/enable",
            Key(Admin),
            plugins::enable,
        ),
        route(
            M::POST,
            "/api/v1/plugins/{name}/{version}/disable",
            Key(Admin),
            plugins::disable,
        ),
        route(M::POST, "/api/v1/api-keys", Key(Admin), keys::create),
        route(M::GET, "/api/v1/api-keys", Key(Admin), keys::list),
        route(M::GET, "/api/v1/api-keys/{id}", Key(Admin), keys::get),
        route(M::DELETE, "/api/v1/api-keys/{id}", Key(Admin), keys::revoke),
        route(M::GET, "/api/v1/push/{token}", Public, push::get_ping),
        route(M::POST, "/api/v1/push/{token}", Public, push::post_ping),
        route(
            M::GET,
            "/api/v1/push/{token}/start",
            Public,
            push::get_start,
        ),
        route(
            M::POST,
            "/api/v1/push/{token}/start",
            Public,
            push::post_start,
        ),
        route(M::GET, "/api/v1/push/{token}/fail", Public, push::get_fail),
        route(
            M::POST,
            "/api/v1/push/{token}/fail",
            Public,
            push::post_fail,
        ),
        route(
            M::POST,
            "/api/v1/status-pages",
            Key(Write),
            status_pages::create,
        ),
        route(
            M::GET,
            "/api/v1/status-pages",
            Key(Read),
            status_pages::list,
        ),
        route(
            M::GET,
            "/api/v1/status-pages/{id}",
            Key(Read),
            status_pages::get,
        ),
        route(
            M::PATCH,
            "/api/v1/status-pages/{id}",
            Key(Write),
            status_pages::patch,
        ),
        route(
            M::DELETE,
            "/api/v1/status-pages/{id}",
            Key(Write),
            status_pages::delete,
        ),
        route(
            M::GET,
            "/api/v1/status-pages/{id}/components",
            Key(Read),
            status_pages::list_components,
        ),
        route(
            M::POST,
            "/api/v1/status-pages/{id}/components",
            Key(Write),
            status_pages::add_component,
        ),
        route(
            M::PUT,
            "/api/v1/status-pages/{id}/components",
            Key(Write),
            status_pages::replace_components,
        ),
        route(
            M::DELETE,
            "/api/v1/status-pages/{id}/components/{component_id}",
            Key(Write),
            status_pages::delete_component,
        ),
        route(
            M::POST,
            "/api/v1/incidents/{id}/updates",
            Key(Write),
            status_pages::add_update,
        ),
        route(
            M::GET,
            "/api/v1/incidents/{id}/updates",
            Key(Read),
            status_pages::list_updates,
        ),
        route(M::GET, "/status/{slug}", Public, status_pages::public_page),
        route(
            M::GET,
            "/status/{slug}/feed.rss",
            Public,
            status_pages::public_feed,
        ),
        route(
            M::GET,
            "/status/{slug}/badge.svg",
            Public,
            status_pages::public_badge,
        ),
        route(
            M::GET,
            "/status/{slug}/components/{component_id}/badge.svg",
            Public,
            status_pages::public_component_badge,
        ),
        route(M::GET, "/healthz", Public, health::healthz),
        route(M::GET, "/readyz", Public, health::readyz),
        route(M::GET, "/api/openapi.json", Public, openapi::openapi_json),
        route(M::GET, "/api/docs", Public, docs::docs),
        route(M::GET, "/", Public, ui::index),
    ];
    let (info, upload) = route(M::POST, "/api/v1/plugins", Key(Admin), plugins::upload);
    t.push((
        info,
        upload.layer(DefaultBodyLimit::max(plugins::UPLOAD_LIMIT)),
    ));
    if serve_metrics {
        t.push(metrics_entry());
    }
    t
}

fn metrics_entry() -> Entry {
    route(
        Method::GET,
        "/metrics",
        Access::MetricsToken,
        health::metrics,
    )
}

/// Every route of the full surface (metrics included), for documentation and tests.
pub fn routes() -> Vec<RouteInfo> {
    table(true).into_iter().map(|(info, _)| info).collect()
}

/// The whole HTTP surface of `pharos serve` (metrics included unless moved to its own bind).
pub fn router(app: Arc<App>, serve_metrics: bool) -> axum::Router {
    finish(table(serve_metrics), ApiState::new(app), ui::router())
}

/// `/metrics` alone, for a separate bind.
pub fn metrics_router(app: Arc<App>) -> axum::Router {
    finish(vec![metrics_entry()], ApiState::new(app), Router::new())
}

/// Routes plus the shared behaviour: error envelopes for unknown routes, wrong methods and
/// panics, the JSON body limit and request metrics.
fn finish(entries: Vec<Entry>, state: ApiState, extra: Router<ApiState>) -> axum::Router {
    let mut router: Router<ApiState> = extra;
    for (info, method_router) in entries {
        router = router.route(info.path, method_router);
    }
    router
        .route_layer(middleware::from_fn(tag_route))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(extract::JSON_BODY_LIMIT))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Copies the matched route template onto the response, for [`observe`].
async fn tag_route(req: Request, next: Next) -> Response {
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let mut response = next.run(req).await;
    if let Some(m) = matched {
        response.extensions_mut().insert(m);
    }
    response
}

/// Counts every request by method, route template and status.
async fn observe(State(state): State<ApiState>, req: Request, next: Next) -> Response {
    let method = match *req.method() {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    };
    let started = Instant::now();
    let response = next.run(req).await;
    let route = response
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str)
        .unwrap_or("unmatched");
    state.app.metrics.observe_api(
        method,
        route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        format!("no route {method} {}", uri.path()),
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("{} does not accept {method}", uri.path()),
    )
}

fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into());
    ApiError::internal(format!("handler panicked: {detail}")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn every_route_is_in_the_openapi_document() {
        let doc: serde_json::Value = serde_json::from_str(openapi::json()).expect("openapi JSON");
        assert!(
            doc["openapi"]
                .as_str()
                .is_some_and(|v| v.starts_with("3.1")),
            "{}",
            doc["openapi"]
        );
        let mut documented = BTreeSet::new();
        for (path, ops) in doc["paths"].as_object().expect("paths") {
            for method in ops.as_object().expect("ops").keys() {
                documented.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
        let routed: BTreeSet<String> = routes()
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect();
        assert_eq!(routed, documented);
        assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
        assert!(doc["components"]["schemas"]["ErrorEnvelope"].is_object());
    }

    #[test]
    fn operation_ids_are_unique() {
        let doc: serde_json::Value = serde_json::from_str(openapi::json()).expect("openapi JSON");
        let mut seen = BTreeSet::new();
        for ops in doc["paths"].as_object().expect("paths").values() {
            for op in ops.as_object().expect("ops").values() {
                let id = op["operationId"].as_str().expect("operationId").to_string();
                assert!(seen.insert(id.clone()), "duplicate operationId {id}");
            }
        }
    }

    #[tokio::test]
    async fn panics_become_the_internal_envelope() {
        let response = panic_response(Box::new("boom at secret place"));
        assert_eq!(
            response.status(),
            axum::http::StatusCode::INTERNAL_SERVER_ERROR
        );
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("body");
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(v["error"]["code"], "INTERNAL");
        assert!(
            !v.to_string().contains("secret place"),
            "the cause is not leaked: {v}"
        );
    }

    #[test]
    fn routes_are_unique_and_scoped() {
        let all = routes();
        let unique: BTreeSet<(String, &str)> =
            all.iter().map(|r| (r.method.to_string(), r.path)).collect();
        assert_eq!(unique.len(), all.len());
        for r in &all {
            if r.path.starts_with("/api/v1/") && !r.path.starts_with("/api/v1/push/") {
                assert!(
                    matches!(r.access, Access::Key(_)),
                    "{} {}",
                    r.method,
                    r.path
                );
            }
        }
    }
}
