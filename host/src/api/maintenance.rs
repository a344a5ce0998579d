//! Maintenance window endpoints: create, list (filter `active`), get, patch, delete. While a
//! window covers a monitor its results are stored but marked, left out of uptime and never
//! alert. Responses add the computed `active` (now) and `next_start`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::ApiState;
use super::auth::{Reader, Writer};
use super::error::{ApiError, ApiResult, ErrorCode, ErrorEnvelope};
use super::extract::{Json, JsonWithBytes, PathId, Query};
use super::idempotency::{self, Produced};
use super::monitor_input::normalize_tags;
use super::pagination::{ListEnvelope, PageParams};
use super::plugin_config;
use crate::app::App;
use crate::maintenance::{FieldError, FieldErrorKind};
use crate::model::{MaintenanceSpec, MaintenanceWindow, WorkspaceId};

/// Where maintenance windows live.
pub const BASE: &str = "/api/v1/maintenance-windows";

/// A maintenance window as sent to create one (and as a PATCH is merged into).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceInput {
    /// 1–100 characters (trimmed).
    pub name: String,
    /// Free text, at most 2000 characters (default empty).
    #[serde(default)]
    pub description: Option<String>,
    /// One-off windows: the start (required). Recurring windows: optional lower bound.
    #[serde(default)]
    pub starts_at: Option<DateTime<Utc>>,
    /// One-off windows: the end, after `starts_at` (required). Recurring: optional upper bound.
    #[serde(default)]
    pub ends_at: Option<DateTime<Utc>>,
    /// Recurring windows: cron expression of the starts (5 fields crontab, or 6–7 with
    /// seconds), read in `timezone`.
    #[serde(default)]
    pub cron: Option<String>,
    /// Recurring windows (required): 60–2592000 seconds from each start.
    #[serde(default)]
    pub duration_secs: Option<u32>,
    /// IANA time zone of `cron`, default `UTC`.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Monitors of the workspace covered (at most 1000; duplicates removed).
    #[serde(default)]
    pub monitor_ids: Option<Vec<i64>>,
    /// Monitors carrying any of these tags are covered too (same rules as monitor tags).
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// Default true.
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// A maintenance window as the API returns it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MaintenanceView {
    pub id: i64,
    pub workspace_id: i64,
    #[serde(flatten)]
    pub spec: MaintenanceSpec,
    /// Whether the window is in effect now.
    pub active: bool,
    /// When it next starts (null when it never will again, or is disabled).
    pub next_start: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl MaintenanceView {
    /// The view of a stored window at `now`.
    pub fn at(w: MaintenanceWindow, now: DateTime<Utc>) -> Self {
        let plan = w.spec.plan();
        Self {
            id: w.id,
            workspace_id: w.workspace_id,
            active: plan.is_active_at(now),
            next_start: plan.next_start_after(now),
            spec: w.spec,
            created_at: w.created_at,
            updated_at: w.updated_at,
        }
    }
}

/// A time as the store keeps it (whole milliseconds), so responses round-trip.
fn to_millis(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

/// The API error of a broken rule.
fn field_error(e: FieldError) -> ApiError {
    let code = match e.kind {
        FieldErrorKind::Invalid => ErrorCode::ValidationFailed,
        FieldErrorKind::Cron => ErrorCode::InvalidCron,
        FieldErrorKind::TimeZone => ErrorCode::InvalidTimezone,
        FieldErrorKind::Empty => ErrorCode::MaintenanceEmpty,
    };
    ApiError::new(code, e.message).at(e.field)
}

/// Validates a definition (everything but the existence of the monitors).
pub fn validate(input: MaintenanceInput) -> ApiResult<(MaintenanceSpec, Vec<i64>)> {
    let requested = input.monitor_ids.clone().unwrap_or_default();
    let mut monitor_ids = requested.clone();
    monitor_ids.sort_unstable();
    monitor_ids.dedup();
    let spec = MaintenanceSpec {
        name: input.name.trim().to_string(),
        description: input.description.unwrap_or_default(),
        starts_at: input.starts_at.map(to_millis),
        ends_at: input.ends_at.map(to_millis),
        cron: input
            .cron
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty()),
        duration_secs: input.duration_secs,
        timezone: input
            .timezone
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "UTC".to_string()),
        monitor_ids,
        tags: normalize_tags(input.tags.unwrap_or_default())?,
        enabled: input.enabled.unwrap_or(true),
    };
    spec.validate().map_err(field_error)?;
    Ok((spec, requested))
}

/// Checks that the monitors named (those in `requested` but not in `known`) are monitors of
/// the workspace; errors point at the entry as sent.
async fn check_monitors(
    app: &App,
    ws: WorkspaceId,
    requested: &[i64],
    known: &[i64],
) -> ApiResult<()> {
    let new: Vec<i64> = requested
        .iter()
        .copied()
        .filter(|id| !known.contains(id))
        .collect();
    if new.is_empty() {
        return Ok(());
    }
    let found = app.store.monitor_ids_in(ws, &new).await?;
    match requested
        .iter()
        .enumerate()
        .find(|(_, id)| !known.contains(id) && !found.contains(id))
    {
        Some((i, id)) => Err(ApiError::new(
            ErrorCode::MonitorNotFound,
            format!("no monitor {id} in this workspace"),
        )
        .at(format!("/monitor_ids/{i}"))),
        None => Ok(()),
    }
}

fn not_found(id: i64) -> ApiError {
    ApiError::new(
        ErrorCode::MaintenanceWindowNotFound,
        format!("no maintenance window {id}"),
    )
}

/// Loads a window of the workspace or answers `MAINTENANCE_WINDOW_NOT_FOUND` (404).
async fn load(state: &ApiState, ws: WorkspaceId, id: i64) -> ApiResult<MaintenanceWindow> {
    state
        .app
        .store
        .get_maintenance_window(ws, id)
        .await?
        .ok_or_else(|| not_found(id))
}

/// Create a maintenance window
///
/// One-off (`starts_at` + `ends_at`) or recurring (`cron` + `duration_secs` in `timezone`,
/// optionally bounded by `starts_at`/`ends_at`), over monitors and/or tags. Honours
/// `Idempotency-Key`.
#[utoipa::path(post, path = "/api/v1/maintenance-windows", operation_id = "createMaintenanceWindow",
    tag = "maintenance",
    request_body = MaintenanceInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response to this key")),
    responses(
        (status = 201, description = "Created; `Location` names the window", body = MaintenanceView),
        (status = 400, description = "Invalid definition", body = ErrorEnvelope)),
    security(("bearer" = ["write"])))]
pub async fn create(
    State(state): State<ApiState>,
    auth: Writer,
    headers: HeaderMap,
    body: JsonWithBytes<MaintenanceInput>,
) -> ApiResult<Response> {
    let ws = auth.ws();
    let JsonWithBytes { value, bytes } = body;
    let s = state.clone();
    idempotency::once(
        &s,
        ws,
        "POST /api/v1/maintenance-windows",
        &headers,
        &bytes,
        Some(BASE),
        move || async move {
            let (spec, requested) = validate(value)?;
            check_monitors(&state.app, ws, &requested, &[]).await?;
            let window = state.app.store.create_maintenance_window(ws, &spec).await?;
            let id = window.id;
            Ok(Produced {
                status: StatusCode::CREATED,
                body: serde_json::to_value(MaintenanceView::at(window, Utc::now()))
                    .map_err(ApiError::internal)?,
                location: Some(format!("{BASE}/{id}")),
            })
        },
    )
    .await
}

/// Filters and page of the maintenance window list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListMaintenanceQuery {
    /// Only windows in effect now (`true`) or not (`false`).
    pub active: Option<bool>,
    /// 1–500, default 50.
    pub limit: Option<i64>,
    /// Default 0.
    pub offset: Option<i64>,
}

/// List maintenance windows
#[utoipa::path(get, path = "/api/v1/maintenance-windows", operation_id = "listMaintenanceWindows",
    tag = "maintenance",
    params(ListMaintenanceQuery),
    responses((status = 200, description = "A page of windows, by id", body = ListEnvelope<MaintenanceView>),
        (status = 400, description = "Bad filter", body = ErrorEnvelope)),
    security(("bearer" = ["read"])))]
pub async fn list(
    State(state): State<ApiState>,
    auth: Reader,
    Query(q): Query<ListMaintenanceQuery>,
) -> ApiResult<axum::Json<ListEnvelope<MaintenanceView>>> {
    let page = PageParams::new(q.limit, q.offset)?;
    let now = Utc::now();
    let all: Vec<MaintenanceView> = state
        .app
        .store
        .list_maintenance_windows(auth.ws())
        .await?
        .into_iter()
        .map(|w| MaintenanceView::at(w, now))
        .filter(|v| q.active.is_none_or(|a| v.active == a))
        .collect();
    Ok(axum::Json(page.slice(all)))
}

/// Get a maintenance window
#[utoipa::path(get, path = "/api/v1/maintenance-windows/{id}", operation_id = "getMaintenanceWindow",
    tag = "maintenance",
    params(("id" = i64, Path, description = "Window id")),
    responses((status = 200, description = "The window", body = MaintenanceView),
        (status = 404, description = "No such window", body = ErrorEnvelope)),
    security(("bearer" = ["read"])))]
pub async fn get(
    State(state): State<ApiState>,
    auth: Reader,
    PathId(id): PathId,
) -> ApiResult<axum::Json<MaintenanceView>> {
    let window = load(&state, auth.ws(), id).await?;
    Ok(axum::Json(MaintenanceView::at(window, Utc::now())))
}

/// Change a maintenance window
///
/// A JSON merge patch (RFC 7396) over the stored definition, validated like a create
/// (`null` removes a field, e.g. `{"starts_at": null, "ends_at": null, "cron": "0 2 * * *",
/// "duration_secs": 3600}` turns a one-off window into a recurring one). Only monitor ids
/// added by the patch must exist.
#[utoipa::path(patch, path = "/api/v1/maintenance-windows/{id}", operation_id = "patchMaintenanceWindow",
    tag = "maintenance",
    params(("id" = i64, Path, description = "Window id")),
    request_body(content = Object, content_type = "application/merge-patch+json",
        description = "Fields of the window to change; null removes (back to the default)"),
    responses((status = 200, description = "The changed window", body = MaintenanceView),
        (status = 400, description = "Invalid result", body = ErrorEnvelope),
        (status = 404, description = "No such window", body = ErrorEnvelope)),
    security(("bearer" = ["write"])))]
pub async fn patch(
    State(state): State<ApiState>,
    auth: Writer,
    PathId(id): PathId,
    Json(patch): Json<Value>,
) -> ApiResult<axum::Json<MaintenanceView>> {
    let ws = auth.ws();
    let current = load(&state, ws, id).await?;
    plugin_config::patch_fields(&patch)?;
    let mut doc = serde_json::to_value(&current.spec).map_err(ApiError::internal)?;
    if let Value::Object(map) = &mut doc {
        map.retain(|_, v| !v.is_null());
    }
    plugin_config::merge_patch(&mut doc, &patch);
    let input: MaintenanceInput = super::extract::from_value(doc)?;
    let (spec, requested) = validate(input)?;
    check_monitors(&state.app, ws, &requested, &current.spec.monitor_ids).await?;
    let window = state
        .app
        .store
        .update_maintenance_window(ws, id, &spec)
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok(axum::Json(MaintenanceView::at(window, Utc::now())))
}

/// Delete a maintenance window
#[utoipa::path(delete, path = "/api/v1/maintenance-windows/{id}", operation_id = "deleteMaintenanceWindow",
    tag = "maintenance",
    params(("id" = i64, Path, description = "Window id")),
    responses((status = 204, description = "Deleted"),
        (status = 404, description = "No such window", body = ErrorEnvelope)),
    security(("bearer" = ["write"])))]
pub async fn delete(
    State(state): State<ApiState>,
    auth: Writer,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    if !state
        .app
        .store
        .delete_maintenance_window(auth.ws(), id)
        .await?
    {
        return Err(not_found(id));
    }
    Ok(StatusCode::NO_CONTENT)
}
