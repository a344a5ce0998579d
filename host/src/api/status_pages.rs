//! Status pages: admin CRUD of pages and their components (`/api/v1/status-pages…`), public
//! incident updates (`/api/v1/incidents/{id}/updates`), and the public, unauthenticated
//! routes `/status/{slug}` (HTML; `/status/{slug}.json` is the JSON), its RSS feed and SVG
//! badges. Public responses come from the per-slug cache (`X-Pharos-Cache: hit|miss`), carry
//! `Cache-Control: public, max-age=10` and an ETag, and contain only curated, public data.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use utoipa::ToSchema;

use super::ApiState;
use super::auth::{Auth, Reader, Writer};
use super::error::{ApiError, ApiResult, ErrorCode, ErrorEnvelope};
use super::extract::{Json, PathId};
use super::plugin_config;
use crate::model::WorkspaceId;
use crate::status::{
    self, Component, ComponentSpec, IncidentUpdate, IncidentUpdateSpec, Snapshot, StatusPage,
    StatusPageSpec, UpdateStatus, badge, html,
};
use crate::store::StoreError;

/// Where status pages live.
pub const BASE: &str = "/api/v1/status-pages";
/// Most components on one page.
pub const MAX_COMPONENTS: usize = 500;
const MAX_TITLE: usize = 200;
const MAX_DESCRIPTION: usize = 2_000;
const MAX_NAME: usize = 100;
const MAX_URL: usize = 2_048;
const MAX_MESSAGE: usize = 5_000;

/// A status page as sent to create one (and as a PATCH is merged into).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusPageInput {
    /// `[a-z0-9-]{1,64}`, unique across the installation.
    pub slug: String,
    /// 1–200 characters.
    pub title: String,
    /// At most 2000 characters (default empty).
    #[serde(default)]
    pub description: Option<String>,
    /// An `http(s)` URL, at most 2048 characters.
    #[serde(default)]
    pub logo_url: Option<String>,
    /// `#rrggbb`.
    #[serde(default)]
    pub brand_color: Option<String>,
    /// Default true; false hides the public routes (404).
    #[serde(default)]
    pub public: Option<bool>,
}

/// A component as sent.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ComponentInput {
    /// A monitor of the workspace.
    pub monitor_id: i64,
    /// 1–100 characters: the only name the public sees.
    pub public_name: String,
    /// Group heading, at most 100 characters (default none).
    #[serde(default)]
    pub group: Option<String>,
    /// Position (ascending). POST default: after the last; PUT default: the list index.
    #[serde(default)]
    pub order: Option<i64>,
}

/// The body of a components replacement.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ComponentsInput {
    /// The page's new components, in order (at most 500).
    pub components: Vec<ComponentInput>,
}

/// A public incident update as sent.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentUpdateInput {
    /// investigating | identified | monitoring | resolved | update.
    pub status: UpdateStatus,
    /// 1–5000 characters, shown publicly as plain text.
    pub message: String,
    /// Default true; false keeps the update off status pages.
    #[serde(default)]
    pub public: Option<bool>,
}

/// A status page as the API returns it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatusPageView {
    #[serde(flatten)]
    pub page: StatusPage,
    /// The public page's absolute URL.
    pub url: String,
    /// Components in display order.
    pub components: Vec<Component>,
}

/// A list of status pages.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatusPageList {
    pub items: Vec<StatusPageView>,
    pub total: i64,
}

/// A list of components.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ComponentList {
    pub items: Vec<Component>,
}

/// A list of incident updates.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IncidentUpdateList {
    pub items: Vec<IncidentUpdate>,
}

fn not_found(id: i64) -> ApiError {
    ApiError::new(
        ErrorCode::StatusPageNotFound,
        format!("no status page {id} in this workspace"),
    )
}

/// Characters of `s` within `min..=max`, or a validation error at `field`.
fn text(s: &str, field: &str, min: usize, max: usize) -> ApiResult<String> {
    let t = s.trim();
    let n = t.chars().count();
    if n < min || n > max {
        return Err(ApiError::validation(
            field,
            format!("must be {min}–{max} characters"),
        ));
    }
    Ok(t.to_string())
}

/// Whether `s` is a valid slug.
pub fn valid_slug(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Validates a page definition.
pub fn validate_page(input: StatusPageInput) -> ApiResult<StatusPageSpec> {
    if !valid_slug(&input.slug) {
        return Err(ApiError::validation(
            "/slug",
            "must be 1–64 characters of a–z, 0–9 and -",
        ));
    }
    let logo_url = match input.logo_url.map(|u| u.trim().to_string()) {
        None => None,
        Some(u) if u.is_empty() => None,
        Some(u) => {
            let ok = u.len() <= MAX_URL
                && url::Url::parse(&u)
                    .is_ok_and(|p| matches!(p.scheme(), "http" | "https") && p.host().is_some());
            if !ok {
                return Err(ApiError::validation(
                    "/logo_url",
                    "must be an http(s) URL of at most 2048 characters",
                ));
            }
            Some(u)
        }
    };
    let brand_color = match input.brand_color.map(|c| c.trim().to_ascii_lowercase()) {
        None => None,
        Some(c) if c.is_empty() => None,
        Some(c) => {
            if c.len() != 7 || !c.starts_with('#') || !c[1..].bytes().all(|b| b.is_ascii_hexdigit())
            {
                return Err(ApiError::validation("/brand_color", "must be #rrggbb"));
            }
            Some(c)
        }
    };
    Ok(StatusPageSpec {
        slug: input.slug,
        title: text(&input.title, "/title", 1, MAX_TITLE)?,
        description: text(
            input.description.as_deref().unwrap_or(""),
            "/description",
            0,
            MAX_DESCRIPTION,
        )?,
        logo_url,
        brand_color,
        public: input.public.unwrap_or(true),
    })
}

/// Maps the store's slug conflict to `STATUS_PAGE_SLUG_TAKEN`.
fn page_error(e: StoreError, slug: &str) -> ApiError {
    match e {
        StoreError::Conflict(_) => ApiError::new(
            ErrorCode::StatusPageSlugTaken,
            format!("the slug `{slug}` is taken"),
        )
        .at("/slug"),
        e => e.into(),
    }
}

async fn load(state: &ApiState, ws: WorkspaceId, id: i64) -> ApiResult<StatusPage> {
    state
        .app
        .store
        .get_status_page(ws, id)
        .await?
        .ok_or_else(|| not_found(id))
}

async fn view(state: &ApiState, page: StatusPage) -> ApiResult<StatusPageView> {
    let components = state.app.store.status_page_components(page.id).await?;
    Ok(StatusPageView {
        url: format!(
            "{}/status/{}",
            state.app.config.public_url(),
            page.spec.slug
        ),
        page,
        components,
    })
}

/// Create a status page
#[utoipa::path(post, path = "/api/v1/status-pages", operation_id = "createStatusPage",
    tag = "status-pages", request_body = StatusPageInput,
    responses((status = 201, description = "Created", body = StatusPageView),
        (status = 400, description = "Invalid definition", body = ErrorEnvelope),
        (status = 409, description = "Slug taken (`STATUS_PAGE_SLUG_TAKEN`)", body = ErrorEnvelope)),
    security(("bearer" = ["write"])))]
pub async fn create(
    State(state): State<ApiState>,
    auth: Writer,
    Json(input): Json<StatusPageInput>,
) -> ApiResult<Response> {
    let spec = validate_page(input)?;
    let page = state
        .app
        .store
        .create_status_page(auth.ws(), &spec)
        .await
        .map_err(|e| page_error(e, &spec.slug))?;
    state.status.invalidate(&spec.slug);
    let id = page.id;
    let v = view(&state, page).await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("{BASE}/{id}"))],
        axum::Json(v),
    )
        .into_response())
}

/// List status pages
#[utoipa::path(get, path = "/api/v1/status-pages", operation_id = "listStatusPages",
    tag = "status-pages",
    responses((status = 200, description = "Every page of the workspace, by id", body = StatusPageList)),
    security(("bearer" = ["read"])))]
pub async fn list(
    State(state): State<ApiState>,
    auth: Reader,
) -> ApiResult<axum::Json<StatusPageList>> {
    let pages = state.app.store.list_status_pages(auth.ws()).await?;
    let mut items = Vec::with_capacity(pages.len());
    for p in pages {
        items.push(view(&state, p).await?);
    }
    Ok(axum::Json(StatusPageList {
        total: items.len() as i64,
        items,
    }))
}

/// Get a status page
#[utoipa::path(get, path = "/api/v1/status-pages/{id}", operation_id = "getStatusPage",
    tag = "status-pages", params(("id" = i64, Path, description = "Page id")),
    responses((status = 200, description = "The page with its components", body = StatusPageView),
        (status = 404, description = "No such page", body = ErrorEnvelope)),
    security(("bearer" = ["read"])))]
pub async fn get(
    State(state): State<ApiState>,
    auth: Reader,
    PathId(id): PathId,
) -> ApiResult<axum::Json<StatusPageView>> {
    let page = load(&state, auth.ws(), id).await?;
    Ok(axum::Json(view(&state, page).await?))
}

/// Change a status page
///
/// A JSON merge patch over the stored definition, validated like a create.
#[utoipa::path(patch, path = "/api/v1/status-pages/{id}", operation_id = "patchStatusPage",
    tag = "status-pages", params(("id" = i64, Path, description = "Page id")),
    request_body(content = Object, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The changed page", body = StatusPageView),
        (status = 400, description = "Invalid result", body = ErrorEnvelope),
        (status = 404, description = "No such page", body = ErrorEnvelope),
        (status = 409, description = "Slug taken", body = ErrorEnvelope)),
    security(("bearer" = ["write"])))]
pub async fn patch(
    State(state): State<ApiState>,
    auth: Writer,
    PathId(id): PathId,
    Json(patch): Json<Value>,
) -> ApiResult<axum::Json<StatusPageView>> {
    let ws = auth.ws();
    let current = load(&state, ws, id).await?;
    plugin_config::patch_fields(&patch)?;
    let mut doc = serde_json::to_value(&current.spec).map_err(ApiError::internal)?;
    if let Value::Object(map) = &mut doc {
        map.retain(|_, v| !v.is_null());
    }
    plugin_config::merge_patch(&mut doc, &patch);
    let input: StatusPageInput = super::extract::from_value(doc)?;
    let spec = validate_page(input)?;
    let page = state
        .app
        .store
        .update_status_page(ws, id, &spec)
        .await
        .map_err(|e| page_error(e, &spec.slug))?
        .ok_or_else(|| not_found(id))?;
    state.status.invalidate(&current.spec.slug);
    state.status.invalidate(&spec.slug);
    Ok(axum::Json(view(&state, page).await?))
}

/// Delete a status page
#[utoipa::path(delete, path = "/api/v1/status-pages/{id}", operation_id = "deleteStatusPage",
    tag = "status-pages", params(("id" = i64, Path, description = "Page id")),
    responses((status = 204, description = "Deleted"),
        (status = 404, description = "No such page", body = ErrorEnvelope)),
    security(("bearer" = ["write"])))]
pub async fn delete(
    State(state): State<ApiState>,
    auth: Writer,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    let page = load(&state, auth.ws(), id).await?;
    if !state.app.store.delete_status_page(auth.ws(), id).await? {
        return Err(not_found(id));
    }
    state.status.invalidate(&page.spec.slug);
    Ok(StatusCode::NO_CONTENT)
}

/// Validates a component at `at` (a JSON pointer prefix); `order` defaults to `default_order`.
fn validate_component(c: ComponentInput, at: &str, default_order: i64) -> ApiResult<ComponentSpec> {
    Ok(ComponentSpec {
        monitor_id: c.monitor_id,
        public_name: text(&c.public_name, &format!("{at}/public_name"), 1, MAX_NAME)?,
        group: text(
            c.group.as_deref().unwrap_or(""),
            &format!("{at}/group"),
            0,
            MAX_NAME,
        )?,
        order: c.order.unwrap_or(default_order),
    })
}

/// Checks that every monitor named exists in the workspace.
async fn check_monitors(
    state: &ApiState,
    ws: WorkspaceId,
    specs: &[ComponentSpec],
    at: impl Fn(usize) -> String,
) -> ApiResult<()> {
    let ids: Vec<i64> = specs.iter().map(|s| s.monitor_id).collect();
    let found = state.app.store.monitor_ids_in(ws, &ids).await?;
    if let Some((i, s)) = specs
        .iter()
        .enumerate()
        .find(|(_, s)| !found.contains(&s.monitor_id))
    {
        return Err(ApiError::new(
            ErrorCode::MonitorNotFound,
            format!("no monitor {} in this workspace", s.monitor_id),
        )
        .at(at(i)));
    }
    Ok(())
}

/// List a page's components
#[utoipa::path(get, path = "/api/v1/status-pages/{id}/components", operation_id = "listStatusPageComponents",
    tag = "status-pages", params(("id" = i64, Path, description = "Page id")),
    responses((status = 200, description = "Components in display order", body = ComponentList),
        (status = 404, description = "No such page", body = ErrorEnvelope)),
    security(("bearer" = ["read"])))]
pub async fn list_components(
    State(state): State<ApiState>,
    auth: Reader,
    PathId(id): PathId,
) -> ApiResult<axum::Json<ComponentList>> {
    let page = load(&state, auth.ws(), id).await?;
    let items = state.app.store.status_page_components(page.id).await?;
    Ok(axum::Json(ComponentList { items }))
}

/// Add a component to a page
#[utoipa::path(post, path = "/api/v1/status-pages/{id}/components", operation_id = "addStatusPageComponent",
    tag = "status-pages", params(("id" = i64, Path, description = "Page id")),
    request_body = ComponentInput,
    responses((status = 201, description = "The component", body = Component),
        (status = 400, description = "Invalid, unknown monitor, or already on the page", body = ErrorEnvelope),
        (status = 404, description = "No such page", body = ErrorEnvelope)),
    security(("bearer" = ["write"])))]
pub async fn add_component(
    State(state): State<ApiState>,
    auth: Writer,
    PathId(id): PathId,
    Json(input): Json<ComponentInput>,
) -> ApiResult<Response> {
    let page = load(&state, auth.ws(), id).await?;
    let append = input.order.is_none();
    let spec = validate_component(input, "", 0)?;
    check_monitors(&state, auth.ws(), std::slice::from_ref(&spec), |_| {
        "/monitor_id".to_string()
    })
    .await?;
    let existing = state.app.store.status_page_components(page.id).await?;
    if existing.len() >= MAX_COMPONENTS {
        return Err(ApiError::validation(
            "",
            format!("a page has at most {MAX_COMPONENTS} components"),
        ));
    }
    let component = state
        .app
        .store
        .add_status_page_component(page.id, &spec, append)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(m) => ApiError::validation("/monitor_id", m),
            e => e.into(),
        })?;
    state.status.invalidate(&page.spec.slug);
    Ok((
        StatusCode::CREATED,
        [(
            header::LOCATION,
            format!("{BASE}/{id}/components/{}", component.id),
        )],
        axum::Json(component),
    )
        .into_response())
}

/// Replace a page's components
#[utoipa::path(put, path = "/api/v1/status-pages/{id}/components", operation_id = "replaceStatusPageComponents",
    tag = "status-pages", params(("id" = i64, Path, description = "Page id")),
    request_body = ComponentsInput,
    responses((status = 200, description = "The new components", body = ComponentList),
        (status = 400, description = "Invalid, unknown or duplicate monitor", body = ErrorEnvelope),
        (status = 404, description = "No such page", body = ErrorEnvelope)),
    security(("bearer" = ["write"])))]
pub async fn replace_components(
    State(state): State<ApiState>,
    auth: Writer,
    PathId(id): PathId,
    Json(ComponentsInput { components: input }): Json<ComponentsInput>,
) -> ApiResult<axum::Json<ComponentList>> {
    let page = load(&state, auth.ws(), id).await?;
    if input.len() > MAX_COMPONENTS {
        return Err(ApiError::validation(
            "/components",
            format!("a page has at most {MAX_COMPONENTS} components"),
        ));
    }
    let mut specs = Vec::with_capacity(input.len());
    for (i, c) in input.into_iter().enumerate() {
        let spec = validate_component(c, &format!("/components/{i}"), i as i64)?;
        if specs
            .iter()
            .any(|s: &ComponentSpec| s.monitor_id == spec.monitor_id)
        {
            return Err(ApiError::validation(
                format!("/components/{i}/monitor_id"),
                format!("monitor {} is listed twice", spec.monitor_id),
            ));
        }
        specs.push(spec);
    }
    check_monitors(&state, auth.ws(), &specs, |i| {
        format!("/components/{i}/monitor_id")
    })
    .await?;
    let items = state
        .app
        .store
        .replace_status_page_components(page.id, &specs)
        .await?;
    state.status.invalidate(&page.spec.slug);
    Ok(axum::Json(ComponentList { items }))
}

/// Remove a component from a page
#[utoipa::path(delete, path = "/api/v1/status-pages/{id}/components/{component_id}", operation_id = "deleteStatusPageComponent",
    tag = "status-pages",
    params(("id" = i64, Path, description = "Page id"), ("component_id" = i64, Path, description = "Component id")),
    responses((status = 204, description = "Removed"),
        (status = 404, description = "No such page or component", body = ErrorEnvelope)),
    security(("bearer" = ["write"])))]
pub async fn delete_component(
    State(state): State<ApiState>,
    auth: Writer,
    Path((id, component_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let parse = |s: &str| s.parse::<i64>().ok().filter(|v| *v > 0);
    let (Some(id), Some(component_id)) = (parse(&id), parse(&component_id)) else {
        return Err(ApiError::not_found("no such resource"));
    };
    let page = load(&state, auth.ws(), id).await?;
    if !state
        .app
        .store
        .delete_status_page_component(page.id, component_id)
        .await?
    {
        return Err(ApiError::new(
            ErrorCode::StatusPageComponentNotFound,
            format!("no component {component_id} on status page {id}"),
        ));
    }
    state.status.invalidate(&page.spec.slug);
    Ok(StatusCode::NO_CONTENT)
}

fn actor<S>(auth: &Auth<S>) -> String {
    format!("key:{}", auth.key.name)
}

/// Post an incident update
///
/// A human-written update (investigating, identified, monitoring, resolved, update). Public
/// updates appear on every status page showing the incident's monitor. Posting `resolved`
/// does not resolve the incident; results do.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/updates", operation_id = "addIncidentUpdate",
    tag = "incidents", params(("id" = i64, Path, description = "Incident id")),
    request_body = IncidentUpdateInput,
    responses((status = 201, description = "The update", body = IncidentUpdate),
        (status = 400, description = "Invalid update", body = ErrorEnvelope),
        (status = 404, description = "No such incident", body = ErrorEnvelope)),
    security(("bearer" = ["write"])))]
pub async fn add_update(
    State(state): State<ApiState>,
    auth: Writer,
    PathId(id): PathId,
    Json(input): Json<IncidentUpdateInput>,
) -> ApiResult<Response> {
    let spec = IncidentUpdateSpec {
        status: input.status,
        message: text(&input.message, "/message", 1, MAX_MESSAGE)?,
        public: input.public.unwrap_or(true),
    };
    let update = state
        .app
        .store
        .add_incident_update(auth.ws(), id, &spec, &actor(&auth))
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::IncidentNotFound,
                format!("no incident {id} in this workspace"),
            )
        })?;
    state.status.clear();
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/v1/incidents/{id}/updates"))],
        axum::Json(update),
    )
        .into_response())
}

/// List an incident's updates
#[utoipa::path(get, path = "/api/v1/incidents/{id}/updates", operation_id = "listIncidentUpdates",
    tag = "incidents", params(("id" = i64, Path, description = "Incident id")),
    responses((status = 200, description = "Every update (public or not), oldest first", body = IncidentUpdateList),
        (status = 404, description = "No such incident", body = ErrorEnvelope)),
    security(("bearer" = ["read"])))]
pub async fn list_updates(
    State(state): State<ApiState>,
    auth: Reader,
    PathId(id): PathId,
) -> ApiResult<axum::Json<IncidentUpdateList>> {
    if state.app.store.get_incident(auth.ws(), id).await?.is_none() {
        return Err(ApiError::new(
            ErrorCode::IncidentNotFound,
            format!("no incident {id} in this workspace"),
        ));
    }
    let items = state.app.store.incident_updates(&[id], false).await?;
    Ok(axum::Json(IncidentUpdateList { items }))
}

// ---- public routes ----

/// The built page of `slug` (from the cache when fresh) and whether it was a cache hit;
/// `None` for an unknown or non-public slug.
pub async fn snapshot(state: &ApiState, slug: &str) -> ApiResult<Option<(Arc<Snapshot>, bool)>> {
    if let Some(s) = state.status.get(slug) {
        return Ok(Some((s, true)));
    }
    if !valid_slug(slug) {
        return Ok(None);
    }
    let generation = state.status.generation();
    let Some(page) = state.app.store.status_page_by_slug(slug).await? else {
        return Ok(None);
    };
    if !page.spec.public {
        return Ok(None);
    }
    let built = status::build(
        &state.app.store,
        &state.status,
        &page,
        &state.app.config.public_url(),
        Utc::now(),
    )
    .await?;
    let snap = Arc::new(Snapshot::new(built));
    state.status.put(slug, generation, snap.clone());
    Ok(Some((snap, false)))
}

/// A public response: body, content type, cache headers, ETag (304 when it matches).
fn public_response(
    headers: &HeaderMap,
    body: bytes::Bytes,
    etag: &str,
    content_type: &'static str,
    hit: bool,
    max_age: u64,
) -> Response {
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut resp = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, body).into_response()
    };
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        h.insert(header::CACHE_CONTROL, v);
    }
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        "x-pharos-cache",
        HeaderValue::from_static(if hit { "hit" } else { "miss" }),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    resp
}

fn public_not_found(slug: &str) -> ApiError {
    ApiError::new(
        ErrorCode::StatusPageNotFound,
        format!("no status page `{slug}`"),
    )
}

fn max_age(state: &ApiState) -> u64 {
    state.status.ttl().as_secs().max(1)
}

/// Public status page
///
/// HTML (works without JavaScript; refreshes itself every 30 s when it runs), or the same
/// page as JSON when the slug ends in `.json` (`/status/acme.json`). No API key.
#[utoipa::path(get, path = "/status/{slug}", operation_id = "getPublicStatusPage", tag = "status-pages",
    params(("slug" = String, Path, description = "Page slug; append `.json` for JSON")),
    responses((status = 200, description = "The page", content_type = "text/html"),
        (status = 304, description = "Not modified (ETag)"),
        (status = 404, description = "No such public page")),
    security(()))]
pub async fn public_page(
    State(state): State<ApiState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(slug) = slug.strip_suffix(".json") {
        return match snapshot(&state, slug).await {
            Ok(Some((s, hit))) => {
                let r = s.json();
                public_response(
                    &headers,
                    r.body.clone(),
                    &r.etag,
                    "application/json",
                    hit,
                    max_age(&state),
                )
            }
            Ok(None) => public_not_found(slug).into_response(),
            Err(e) => e.into_response(),
        };
    }
    match snapshot(&state, &slug).await {
        Ok(Some((s, hit))) => {
            let r = s.html();
            public_response(
                &headers,
                r.body.clone(),
                &r.etag,
                "text/html; charset=utf-8",
                hit,
                max_age(&state),
            )
        }
        Ok(None) => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html::not_found(&slug),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// Public incident feed
#[utoipa::path(get, path = "/status/{slug}/feed.rss", operation_id = "getPublicStatusFeed", tag = "status-pages",
    params(("slug" = String, Path, description = "Page slug")),
    responses((status = 200, description = "RSS 2.0 of open and recent incidents", content_type = "application/rss+xml"),
        (status = 404, description = "No such public page", body = ErrorEnvelope)),
    security(()))]
pub async fn public_feed(
    State(state): State<ApiState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
) -> Response {
    match snapshot(&state, &slug).await {
        Ok(Some((s, hit))) => {
            let r = s.rss();
            public_response(
                &headers,
                r.body.clone(),
                &r.etag,
                "application/rss+xml; charset=utf-8",
                hit,
                max_age(&state),
            )
        }
        Ok(None) => public_not_found(&slug).into_response(),
        Err(e) => e.into_response(),
    }
}

/// An SVG badge response.
fn svg(headers: &HeaderMap, svg: String, hit: bool, max_age: u64) -> Response {
    let etag = {
        use sha2::Digest;
        format!(
            "\"{}\"",
            hex::encode(&sha2::Sha256::digest(svg.as_bytes())[..12])
        )
    };
    public_response(
        headers,
        bytes::Bytes::from(svg),
        &etag,
        "image/svg+xml",
        hit,
        max_age,
    )
}

/// Public page badge
#[utoipa::path(get, path = "/status/{slug}/badge.svg", operation_id = "getPublicStatusBadge", tag = "status-pages",
    params(("slug" = String, Path, description = "Page slug")),
    responses((status = 200, description = "Shields-style badge of the overall state", content_type = "image/svg+xml"),
        (status = 404, description = "No such public page", body = ErrorEnvelope)),
    security(()))]
pub async fn public_badge(
    State(state): State<ApiState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
) -> Response {
    match snapshot(&state, &slug).await {
        Ok(Some((s, hit))) => {
            let p = &s.page;
            let body = badge::render(&p.title, p.status_text, badge::color(p.status.as_str()));
            svg(&headers, body, hit, max_age(&state))
        }
        Ok(None) => public_not_found(&slug).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Public component badge
#[utoipa::path(get, path = "/status/{slug}/components/{component_id}/badge.svg", operation_id = "getPublicComponentBadge", tag = "status-pages",
    params(("slug" = String, Path, description = "Page slug"), ("component_id" = i64, Path, description = "Component id")),
    responses((status = 200, description = "Shields-style badge of the component's state", content_type = "image/svg+xml"),
        (status = 404, description = "No such public page or component", body = ErrorEnvelope)),
    security(()))]
pub async fn public_component_badge(
    State(state): State<ApiState>,
    Path((slug, component_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    match snapshot(&state, &slug).await {
        Ok(Some((s, hit))) => {
            let found = component_id.parse::<i64>().ok().and_then(|cid| {
                s.page
                    .groups
                    .iter()
                    .flat_map(|g| g.components.iter())
                    .find(|c| c.id == cid)
            });
            match found {
                Some(c) => {
                    let body =
                        badge::render(&c.name, c.status_text, badge::color(c.status.as_str()));
                    svg(&headers, body, hit, max_age(&state))
                }
                None => ApiError::new(
                    ErrorCode::StatusPageComponentNotFound,
                    format!("no component {component_id} on status page `{slug}`"),
                )
                .into_response(),
            }
        }
        Ok(None) => public_not_found(&slug).into_response(),
        Err(e) => e.into_response(),
    }
}
