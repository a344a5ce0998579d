//! Alert channel endpoints: create, list, get, patch, delete, and test alerts through a saved
//! or an unsaved channel. Channels hold credentials: writes need the `admin` scope, secret
//! config fields are sealed at rest and always read as `"***"`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::ApiState;
use super::auth::{Admin, Reader, Writer};
use super::error::{ApiError, ApiResult, ErrorCode, ErrorEnvelope};
use super::extract::{Json, JsonWithBytes, PathId, Query};
use super::idempotency::{self, Produced};
use super::monitor_input::normalize_tags;
use super::pagination::{ListEnvelope, PageParams};
use super::plugin_config::{self, Want};
use crate::app::App;
use crate::catalog::Resolved;
use crate::model::{Channel, ChannelSpec, WorkspaceId};
use crate::notify::{NotifyError, TestDelivery};
use crate::secrets;
use crate::store::{ChannelFilter, StoreError};

/// Where channels live.
pub const BASE: &str = "/api/v1/channels";
/// Longest channel name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Bounds of `storm_limit` (0 = no cap).
pub const STORM_LIMIT: std::ops::RangeInclusive<u32> = 0..=10_000;
/// Bounds of `storm_window_secs`.
pub const STORM_WINDOW_SECS: std::ops::RangeInclusive<u32> = 10..=86_400;
/// Default `storm_window_secs`.
pub const DEFAULT_STORM_WINDOW_SECS: u32 = 300;

/// A channel definition as sent to create or test a channel (and as a PATCH is merged into).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelInput {
    /// 1–100 characters (trimmed), unique in the workspace.
    pub name: String,
    /// A notifier plugin: `name` follows the latest active version, `name@version` pins one.
    pub plugin: String,
    /// The plugin's config, validated against its JSON Schema (default `{}`). Secret fields
    /// are encrypted at rest and read back as `"***"`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
    /// Default true.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Bound to every monitor of the workspace (default false).
    #[serde(rename = "default", default)]
    pub is_default: Option<bool>,
    /// Bound to every monitor carrying any of these tags (same rules as monitor tags).
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// At most this many notifications per storm window, the rest as one digest; 0 (the
    /// default) = no cap; at most 10000.
    #[serde(default)]
    pub storm_limit: Option<u32>,
    /// Storm window in seconds, 10–86400, default 300.
    #[serde(default)]
    pub storm_window_secs: Option<u32>,
}

/// A channel as the API returns it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChannelView {
    pub id: i64,
    pub workspace_id: i64,
    pub name: String,
    pub plugin: String,
    /// The plugin's config; secret fields read as `"***"`.
    #[schema(value_type = Object)]
    pub config: Value,
    pub enabled: bool,
    /// Bound to every monitor of the workspace.
    pub default: bool,
    /// Bound to every monitor carrying any of these tags.
    pub tags: Vec<String>,
    pub storm_limit: u32,
    pub storm_window_secs: u32,
    /// Incremented by every change.
    pub revision: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Channel> for ChannelView {
    fn from(c: Channel) -> Self {
        Self {
            id: c.id,
            workspace_id: c.workspace_id,
            config: secrets::redact(&c.spec.config),
            name: c.spec.name,
            plugin: c.spec.plugin,
            enabled: c.spec.enabled,
            default: c.spec.is_default,
            tags: c.spec.tags,
            storm_limit: c.spec.storm_limit,
            storm_window_secs: c.spec.storm_window_secs,
            revision: c.revision,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// A validated definition: the spec with its config in plain text and the resolved plugin.
pub struct ValidChannel {
    pub spec: ChannelSpec,
    pub resolved: Resolved,
}

impl ValidChannel {
    /// The spec to store: secret config fields sealed.
    pub fn sealed(self, app: &App) -> ChannelSpec {
        let mut spec = self.spec;
        spec.config = plugin_config::seal(app, &self.resolved, &spec.config);
        spec
    }
}

/// Validates a definition exactly as create does; errors carry the field pointer.
pub fn validate(app: &App, ws: WorkspaceId, input: ChannelInput) -> ApiResult<ValidChannel> {
    let name = input.name.trim().to_string();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::validation(
            "/name",
            format!("name must be 1–{MAX_NAME_CHARS} characters"),
        ));
    }
    let storm_limit = input.storm_limit.unwrap_or(0);
    if !STORM_LIMIT.contains(&storm_limit) {
        return Err(ApiError::validation(
            "/storm_limit",
            format!(
                "storm_limit must be between {} (no cap) and {}",
                STORM_LIMIT.start(),
                STORM_LIMIT.end()
            ),
        ));
    }
    let storm_window_secs = input.storm_window_secs.unwrap_or(DEFAULT_STORM_WINDOW_SECS);
    if !STORM_WINDOW_SECS.contains(&storm_window_secs) {
        return Err(ApiError::validation(
            "/storm_window_secs",
            format!(
                "storm_window_secs must be between {} and {}",
                STORM_WINDOW_SECS.start(),
                STORM_WINDOW_SECS.end()
            ),
        ));
    }
    let tags = normalize_tags(input.tags.unwrap_or_default())?;
    let config = plugin_config::object(input.config)?;
    let reference = plugin_config::reference(
        Some(input.plugin),
        "a channel needs a notifier plugin (e.g. `webhook`)",
    )?;
    let resolved = plugin_config::resolve(app, ws, &reference, Want::Notifier)?;
    plugin_config::check_config(&resolved, &config)?;
    Ok(ValidChannel {
        spec: ChannelSpec {
            name,
            plugin: reference,
            config,
            enabled: input.enabled.unwrap_or(true),
            is_default: input.is_default.unwrap_or(false),
            tags,
            storm_limit,
            storm_window_secs,
        },
        resolved,
    })
}

/// Merges a PATCH body into a stored channel and validates the result like a create.
/// Sealed values in the patch are refused; secrets left out, or sent back as `"***"`, keep
/// their stored value.
pub fn patched(app: &App, channel: &Channel, patch: &Value) -> ApiResult<ValidChannel> {
    let fields = plugin_config::patch_fields(patch)?;
    if let Some(config) = fields.get("config") {
        plugin_config::refuse_sealed(config)?;
    }
    let mut patch = patch.clone();
    if let Some(config) = patch.get_mut("config") {
        plugin_config::keep_redacted(config, &channel.spec.config);
    }
    let mut doc = plugin_config::patch_base(app, &channel.spec)?;
    plugin_config::merge_patch(&mut doc, &patch);
    let input: ChannelInput = super::extract::from_value(doc)?;
    validate(app, channel.workspace_id, input)
}

/// A store failure of a write: a taken name is `CHANNEL_NAME_TAKEN` at `/name`.
fn write_error(e: StoreError, spec: &ChannelSpec) -> ApiError {
    match e {
        StoreError::Conflict(_) => ApiError::new(
            ErrorCode::ChannelNameTaken,
            format!("a channel named `{}` already exists", spec.name),
        )
        .at("/name"),
        other => other.into(),
    }
}

fn not_found(id: i64) -> ApiError {
    ApiError::new(ErrorCode::ChannelNotFound, format!("no channel {id}"))
}

/// Loads a channel of the workspace or answers `CHANNEL_NOT_FOUND` (404).
async fn load(state: &ApiState, ws: WorkspaceId, id: i64) -> ApiResult<Channel> {
    state
        .app
        .store
        .get_channel(ws, id)
        .await?
        .ok_or_else(|| not_found(id))
}

/// Create a channel
///
/// Validates the definition (the plugin must be an active notifier; the config is checked
/// against its JSON Schema) and encrypts secret config fields. Honours `Idempotency-Key`.
#[utoipa::path(post, path = "/api/v1/channels", operation_id = "createChannel", tag = "channels",
    request_body = ChannelInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response to this key")),
    responses(
        (status = 201, description = "Created; `Location` names the channel", body = ChannelView),
        (status = 400, description = "Invalid definition", body = ErrorEnvelope),
        (status = 409, description = "The name is taken", body = ErrorEnvelope)),
    security(("bearer" = ["admin"])))]
pub async fn create(
    State(state): State<ApiState>,
    auth: Admin,
    headers: HeaderMap,
    body: JsonWithBytes<ChannelInput>,
) -> ApiResult<Response> {
    let ws = auth.ws();
    let JsonWithBytes { value, bytes } = body;
    let s = state.clone();
    idempotency::once(
        &s,
        ws,
        "POST /api/v1/channels",
        &headers,
        &bytes,
        Some(BASE),
        move || async move {
            let spec = validate(&state.app, ws, value)?.sealed(&state.app);
            let channel = state
                .app
                .store
                .create_channel(ws, &spec)
                .await
                .map_err(|e| write_error(e, &spec))?;
            let id = channel.id;
            Ok(Produced {
                status: StatusCode::CREATED,
                body: serde_json::to_value(ChannelView::from(channel))
                    .map_err(ApiError::internal)?,
                location: Some(format!("{BASE}/{id}")),
            })
        },
    )
    .await
}

/// Filters and page of the channel list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListChannelsQuery {
    /// Channels of this plugin: `name` (any version) or `name@version`.
    pub plugin: Option<String>,
    pub enabled: Option<bool>,
    /// 1–500, default 50.
    pub limit: Option<i64>,
    /// Default 0.
    pub offset: Option<i64>,
}

/// List channels
#[utoipa::path(get, path = "/api/v1/channels", operation_id = "listChannels", tag = "channels",
    params(ListChannelsQuery),
    responses((status = 200, description = "A page of channels", body = ListEnvelope<ChannelView>),
        (status = 400, description = "Bad filter", body = ErrorEnvelope)),
    security(("bearer" = ["read"])))]
pub async fn list(
    State(state): State<ApiState>,
    auth: Reader,
    Query(q): Query<ListChannelsQuery>,
) -> ApiResult<axum::Json<ListEnvelope<ChannelView>>> {
    let page = PageParams::new(q.limit, q.offset)?;
    let filter = ChannelFilter {
        plugin: q
            .plugin
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty()),
        enabled: q.enabled,
    };
    let found = state
        .app
        .store
        .list_channels(auth.ws(), &filter, page.limit, page.offset)
        .await?;
    let items = found.items.into_iter().map(ChannelView::from).collect();
    Ok(axum::Json(page.envelope(items, found.total)))
}

/// Get a channel
#[utoipa::path(get, path = "/api/v1/channels/{id}", operation_id = "getChannel", tag = "channels",
    params(("id" = i64, Path, description = "Channel id")),
    responses((status = 200, description = "The channel", body = ChannelView),
        (status = 404, description = "No such channel", body = ErrorEnvelope)),
    security(("bearer" = ["read"])))]
pub async fn get(
    State(state): State<ApiState>,
    auth: Reader,
    PathId(id): PathId,
) -> ApiResult<axum::Json<ChannelView>> {
    Ok(axum::Json(load(&state, auth.ws(), id).await?.into()))
}

/// Change a channel
///
/// A JSON merge patch (RFC 7396) over the stored definition, validated like a create. Secret
/// config fields left out, or sent back as `"***"`, keep their stored value.
#[utoipa::path(patch, path = "/api/v1/channels/{id}", operation_id = "patchChannel", tag = "channels",
    params(("id" = i64, Path, description = "Channel id")),
    request_body(content = Object, content_type = "application/merge-patch+json",
        description = "Fields of the channel definition to change; null removes (back to the default)"),
    responses((status = 200, description = "The changed channel", body = ChannelView),
        (status = 400, description = "Invalid result", body = ErrorEnvelope),
        (status = 404, description = "No such channel", body = ErrorEnvelope),
        (status = 409, description = "The name is taken", body = ErrorEnvelope)),
    security(("bearer" = ["admin"])))]
pub async fn patch(
    State(state): State<ApiState>,
    auth: Admin,
    PathId(id): PathId,
    Json(patch): Json<Value>,
) -> ApiResult<axum::Json<ChannelView>> {
    let ws = auth.ws();
    let current = load(&state, ws, id).await?;
    let spec = patched(&state.app, &current, &patch)?.sealed(&state.app);
    let channel = state
        .app
        .store
        .update_channel(ws, id, &spec)
        .await
        .map_err(|e| write_error(e, &spec))?
        .ok_or_else(|| not_found(id))?;
    Ok(axum::Json(channel.into()))
}

/// Delete a channel
///
/// Monitors naming it stop doing so.
#[utoipa::path(delete, path = "/api/v1/channels/{id}", operation_id = "deleteChannel", tag = "channels",
    params(("id" = i64, Path, description = "Channel id")),
    responses((status = 204, description = "Deleted"),
        (status = 404, description = "No such channel", body = ErrorEnvelope)),
    security(("bearer" = ["admin"])))]
pub async fn delete(
    State(state): State<ApiState>,
    auth: Admin,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    if !state.app.store.delete_channel(auth.ws(), id).await? {
        return Err(not_found(id));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// A test-alert failure that prevented any attempt.
fn notify_error(e: NotifyError) -> ApiError {
    match e {
        NotifyError::Catalog(c) => plugin_config::catalog_error(c),
        NotifyError::Secret(s) => ApiError::from(s),
        NotifyError::Store(s) => ApiError::from(s),
    }
}

/// Test a saved channel
///
/// Sends a clearly labelled test alert through the channel (even when disabled) and reports
/// what the destination said. Nothing is stored.
#[utoipa::path(post, path = "/api/v1/channels/{id}/test", operation_id = "testChannel", tag = "channels",
    params(("id" = i64, Path, description = "Channel id")),
    responses((status = 200, description = "What the delivery did (delivered or not)", body = TestDelivery),
        (status = 400, description = "The plugin cannot run", body = ErrorEnvelope),
        (status = 404, description = "No such channel", body = ErrorEnvelope),
        (status = 409, description = "A stored secret cannot be decrypted", body = ErrorEnvelope)),
    security(("bearer" = ["write"])))]
pub async fn test_saved(
    State(state): State<ApiState>,
    auth: Writer,
    PathId(id): PathId,
) -> ApiResult<axum::Json<TestDelivery>> {
    let ws = auth.ws();
    let channel = load(&state, ws, id).await?;
    let delivery = state
        .app
        .notifier
        .send_test(
            ws,
            &channel.spec.plugin,
            &channel.spec.config,
            &channel.spec.name,
        )
        .await
        .map_err(notify_error)?;
    Ok(axum::Json(delivery))
}

/// Test a channel definition
///
/// Validates the definition like a create, then sends a test alert through it without saving
/// anything.
#[utoipa::path(post, path = "/api/v1/channels/test", operation_id = "testChannelDefinition", tag = "channels",
    request_body = ChannelInput,
    responses((status = 200, description = "What the delivery did (delivered or not)", body = TestDelivery),
        (status = 400, description = "Invalid definition", body = ErrorEnvelope)),
    security(("bearer" = ["write"])))]
pub async fn test_unsaved(
    State(state): State<ApiState>,
    auth: Writer,
    Json(input): Json<ChannelInput>,
) -> ApiResult<axum::Json<TestDelivery>> {
    let ws = auth.ws();
    let spec = validate(&state.app, ws, input)?.sealed(&state.app);
    let delivery = state
        .app
        .notifier
        .send_test(ws, &spec.plugin, &spec.config, &spec.name)
        .await
        .map_err(notify_error)?;
    Ok(axum::Json(delivery))
}
