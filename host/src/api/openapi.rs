//! The OpenAPI 3.1 document, generated from the handlers' annotations, served at
//! `/api/openapi.json`.

use std::sync::OnceLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::error::{ErrorCode, ErrorEnvelope};
use super::{
    channels, dashboard, docs, events, health, incidents, keys, maintenance, monitors,
    notifications, plugins, push, results, status_pages, ui,
};

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Pharos API",
        description = "Self-hosted uptime monitoring with WebAssembly check plugins.\n\n\
            Authenticate with `Authorization: Bearer <API key>`; scopes are `read` ⊂ `write` ⊂ \
            `admin`. Every error is `{\"error\":{\"code\",\"message\",\"field\",\"details\"}}`; \
            every list is `{\"items\",\"total\",\"limit\",\"offset\"}`.",
        license(name = "Apache-2.0")
    ),
    paths(
        monitors::create, monitors::list, monitors::get, monitors::patch, monitors::delete,
        monitors::bulk_create, monitors::actions, monitors::check_now, monitors::test,
        results::results, results::latency, results::uptime, results::tags, results::summary,
        dashboard::monitors, events::events,
        incidents::list, incidents::get, incidents::acknowledge, incidents::add_note,
        incidents::notifications,
        notifications::list, notifications::get, notifications::retry,
        channels::create, channels::list, channels::get, channels::patch, channels::delete,
        channels::test_saved, channels::test_unsaved,
        maintenance::create, maintenance::list, maintenance::get, maintenance::patch,
        maintenance::delete,
        plugins::list, plugins::get, plugins::upload, plugins::grant, plugins::enable,
        plugins::disable, plugins::delete,
        keys::create, keys::list, keys::get, keys::revoke,
        push::get_ping, push::post_ping, push::get_start, push::post_start, push::get_fail,
        push::post_fail,
        status_pages::create, status_pages::list, status_pages::get, status_pages::patch,
        status_pages::delete, status_pages::list_components, status_pages::add_component,
        status_pages::replace_components, status_pages::delete_component,
        status_pages::add_update, status_pages::list_updates, status_pages::public_page,
        status_pages::public_feed, status_pages::public_badge,
        status_pages::public_component_badge,
        health::healthz, health::readyz, health::metrics,
        openapi_json, docs::docs, ui::index,
    ),
    components(schemas(ErrorEnvelope, ErrorCode)),
    modifiers(&Security),
    security(("bearer" = [])),
    tags(
        (name = "monitors", description = "Monitors: definitions, bulk operations, on-demand runs"),
        (name = "results", description = "Results, latency, uptime, tags and the dashboard summary"),
        (name = "incidents", description = "Incidents: timeline, acknowledgement, notes, notifications"),
        (name = "channels", description = "Alert channels: a notifier plugin with its config; test alerts"),
        (name = "maintenance", description = "Maintenance windows: results stored but not alerting or counted"),
        (name = "plugins", description = "Check plugins: built-in and uploaded components"),
        (name = "api-keys", description = "API keys and their scopes"),
        (name = "status-pages", description = "Public status pages: admin CRUD, and the public HTML, JSON, RSS and badges (no API key)"),
        (name = "push", description = "Heartbeat URLs of push monitors (no API key)"),
        (name = "meta", description = "Health, metrics and this documentation"),
    )
)]
pub struct ApiDoc;

/// Adds the security schemes.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key: `Authorization: Bearer phk_…`"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "metrics_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The configured `metrics.token`, when one is set"))
                    .build(),
            ),
        );
    }
}

/// The document as JSON text (generated once).
pub fn json() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        ApiDoc::openapi().to_json().unwrap_or_else(|e| {
            format!("{{\"error\":\"cannot render the OpenAPI document: {e}\"}}")
        })
    })
}

/// OpenAPI document
///
/// This API's OpenAPI 3.1 description.
#[utoipa::path(get, path = "/api/openapi.json", operation_id = "getOpenApi", tag = "meta",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json")),
    security(()))]
pub async fn openapi_json() -> Response {
    let mut response = json().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
