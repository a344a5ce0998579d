//! Monitor endpoints: create, list, get, patch, delete, bulk create, bulk actions,
//! check-now and test.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::ApiState;
use super::auth::{Reader, Writer};
use super::error::{ApiError, ApiResult, ErrorCode, ErrorEnvelope};
use super::extract::{Json, JsonWithBytes, PathId, Query};
use super::idempotency::{self, Produced};
use super::monitor_input::{self, MonitorInput, MonitorView, normalize_tags};
use super::pagination::{ListEnvelope, PageParams};
use crate::model::{Monitor, MonitorFilter, MonitorType, NewResult, Status, WorkspaceId};
use crate::runtime::{Details, Outcome, Timings};
use crate::store::BulkAction;

/// Where monitors live.
pub const BASE: &str = "/api/v1/monitors";
/// Most monitors in one bulk request, and most ids in one bulk action.
pub const MAX_BULK: usize = 1_000;

/// Filters and page of the monitor list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListMonitorsQuery {
    /// Monitors carrying this tag.
    pub tag: Option<String>,
    /// Latest status: `up`, `degraded`, `down` or `error`.
    #[param(value_type = Option<String>)]
    pub status: Option<Status>,
    pub enabled: Option<bool>,
    /// Case-insensitive text in the name.
    pub q: Option<String>,
    /// 1–500, default 50.
    pub limit: Option<i64>,
    /// Default 0.
    pub offset: Option<i64>,
}

fn not_found(id: i64) -> ApiError {
    ApiError::not_found(format!("no monitor {id}"))
}

/// Loads a monitor of the workspace or answers `NOT_FOUND`.
pub async fn load(state: &ApiState, ws: WorkspaceId, id: i64) -> ApiResult<Monitor> {
    state
        .app
        .store
        .get_monitor(ws, id)
        .await?
        .ok_or_else(|| not_found(id))
}

fn view(state: &ApiState, m: Monitor) -> MonitorView {
    MonitorView::of(&state.app, m)
}

fn to_json<T: Serialize>(value: &T) -> ApiResult<serde_json::Value> {
    serde_json::to_value(value).map_err(ApiError::internal)
}

/// Create a monitor
///
/// Validates the definition (the config against the plugin's JSON Schema), encrypts secret
/// config fields and schedules it at once. Honours `Idempotency-Key`.
#[utoipa::path(post, path = "/api/v1/monitors", operation_id = "createMonitor", tag = "monitors",
    request_body = MonitorInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response to this key")),
    responses(
        (status = 201, description = "Created; `Location` names the monitor", body = MonitorView),
        (status = 400, description = "Invalid definition", body = ErrorEnvelope),
        (status = 422, description = "Idempotency-Key reused with a different body", body = ErrorEnvelope)),
    security(("bearer" = ["write"])))]
pub async fn create(
    State(state): State<ApiState>,
    auth: Writer,
    headers: HeaderMap,
    body: JsonWithBytes<MonitorInput>,
) -> ApiResult<Response> {
    let ws = auth.ws();
    let JsonWithBytes { value, bytes } = body;
    let s = state.clone();
    let route = "POST /api/v1/monitors";
    idempotency::once(
        &s,
        ws,
        route,
        &headers,
        &bytes,
        Some(BASE),
        move || async move {
            let validated = monitor_input::validate(&state.app, ws, value)?;
            monitor_input::check_references(&state.app, ws, None, &validated).await?;
            let token = (validated.spec.kind == MonitorType::Push).then(monitor_input::push_token);
            let spec = validated.sealed(&state.app);
            let monitor = state
                .app
                .store
                .create_monitor(ws, &spec, token.as_deref())
                .await?;
            state.app.monitor_changed(&monitor);
            let id = monitor.id;
            Ok(Produced {
                status: StatusCode::CREATED,
                body: to_json(&view(&state, monitor))?,
                location: Some(format!("{BASE}/{id}")),
            })
        },
    )
    .await
}

/// List monitors
#[utoipa::path(get, path = "/api/v1/monitors", operation_id = "listMonitors", tag = "monitors",
    params(ListMonitorsQuery),
    responses((status = 200, description = "A page of monitors", body = ListEnvelope<MonitorView>),
        (status = 400, description = "Bad filter", body = ErrorEnvelope)),
    security(("bearer" = ["read"])))]
pub async fn list(
    State(state): State<ApiState>,
    auth: Reader,
    Query(q): Query<ListMonitorsQuery>,
) -> ApiResult<axum::Json<ListEnvelope<MonitorView>>> {
    let page = PageParams::new(q.limit, q.offset)?;
    let filter = MonitorFilter {
        tag: q
            .tag
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty()),
        status: q.status,
        enabled: q.enabled,
        text: q.q.map(|t| t.trim().to_string()).filter(|t| !t.is_empty()),
    };
    let found = state
        .app
        .store
        .list_monitors(auth.ws(), &filter, page.limit, page.offset)
        .await?;
    let items = found.items.into_iter().map(|m| view(&state, m)).collect();
    Ok(axum::Json(page.envelope(items, found.total)))
}

/// Get a monitor
#[utoipa::path(get, path = "/api/v1/monitors/{id}", operation_id = "getMonitor", tag = "monitors",
    params(("id" = i64, Path, description = "Monitor id")),
    responses((status = 200, description = "The monitor", body = MonitorView),
        (status = 404, description = "No such monitor", body = ErrorEnvelope)),
    security(("bearer" = ["read"])))]
pub async fn get(
    State(state): State<ApiState>,
    auth: Reader,
    PathId(id): PathId,
) -> ApiResult<axum::Json<MonitorView>> {
    let monitor = load(&state, auth.ws(), id).await?;
    Ok(axum::Json(view(&state, monitor)))
}

/// Change a monitor
///
/// A JSON merge patch (RFC 7396) over the stored definition, validated like a create.
/// `type` cannot change. Secret config fields left out keep their stored value; sending
/// `"***"` back is refused.
#[utoipa::path(patch, path = "/api/v1/monitors/{id}", operation_id = "patchMonitor", tag = "monitors",
    params(("id" = i64, Path, description = "Monitor id")),
    request_body(content = Object, content_type = "application/merge-patch+json",
        description = "Fields of the monitor definition to change; null removes (back to the default)"),
    responses((status = 200, description = "The changed monitor", body = MonitorView),
        (status = 400, description = "Invalid result", body = ErrorEnvelope),
        (status = 404, description = "No such monitor", body = ErrorEnvelope)),
    security(("bearer" = ["write"])))]
pub async fn patch(
    State(state): State<ApiState>,
    auth: Writer,
    PathId(id): PathId,
    Json(patch): Json<serde_json::Value>,
) -> ApiResult<axum::Json<MonitorView>> {
    let ws = auth.ws();
    let current = load(&state, ws, id).await?;
    let validated = monitor_input::patched(&state.app, &current, &patch)?;
    monitor_input::check_references(&state.app, ws, Some(id), &validated).await?;
    let spec = validated.sealed(&state.app);
    let monitor = state
        .app
        .store
        .update_monitor(ws, id, &spec)
        .await?
        .ok_or_else(|| not_found(id))?;
    state.app.monitor_changed(&monitor);
    Ok(axum::Json(view(&state, monitor)))
}

/// Delete a monitor
///
/// Deletes the monitor with its results.
#[utoipa::path(delete, path = "/api/v1/monitors/{id}", operation_id = "deleteMonitor", tag = "monitors",
    params(("id" = i64, Path, description = "Monitor id")),
    responses((status = 204, description = "Deleted"),
        (status = 404, description = "No such monitor", body = ErrorEnvelope)),
    security(("bearer" = ["write"])))]
pub async fn delete(
    State(state): State<ApiState>,
    auth: Writer,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    if !state.app.store.delete_monitor(auth.ws(), id).await? {
        return Err(not_found(id));
    }
    state.app.monitor_removed(id);
    Ok(StatusCode::NO_CONTENT)
}

/// Body of a bulk create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkCreate {
    /// 1–1000 monitor definitions, created all or none.
    pub monitors: Vec<MonitorInput>,
}

/// Monitors created by a bulk request.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkCreated {
    pub items: Vec<MonitorView>,
}

/// Create monitors in bulk
///
/// All or nothing: the first invalid definition fails the request, its field pointer
/// prefixed with `/monitors/<index>`. Honours `Idempotency-Key`.
#[utoipa::path(post, path = "/api/v1/monitors/bulk", operation_id = "bulkCreateMonitors", tag = "monitors",
    request_body = BulkCreate,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response to this key")),
    responses((status = 200, description = "Every monitor created", body = BulkCreated),
        (status = 400, description = "An invalid definition; nothing created", body = ErrorEnvelope),
        (status = 422, description = "Idempotency-Key reused with a different body", body = ErrorEnvelope)),
    security(("bearer" = ["write"])))]
pub async fn bulk_create(
    State(state): State<ApiState>,
    auth: Writer,
    headers: HeaderMap,
    body: JsonWithBytes<BulkCreate>,
) -> ApiResult<Response> {
    let ws = auth.ws();
    let JsonWithBytes { value, bytes } = body;
    let route = "POST /api/v1/monitors/bulk";
    let s = state.clone();
    idempotency::once(&s, ws, route, &headers, &bytes, None, move || async move {
        if value.monitors.is_empty() || value.monitors.len() > MAX_BULK {
            return Err(ApiError::validation(
                "/monitors",
                format!("send 1–{MAX_BULK} monitors"),
            ));
        }
        let mut specs = Vec::with_capacity(value.monitors.len());
        for (i, input) in value.monitors.into_iter().enumerate() {
            let validated = monitor_input::validate(&state.app, ws, input)
                .map_err(|e| e.under(&format!("/monitors/{i}")))?;
            monitor_input::check_references(&state.app, ws, None, &validated)
                .await
                .map_err(|e| e.under(&format!("/monitors/{i}")))?;
            let token = (validated.spec.kind == MonitorType::Push).then(monitor_input::push_token);
            specs.push((validated.sealed(&state.app), token));
        }
        let created = state.app.store.create_monitors(ws, &specs).await?;
        for m in &created {
            state.app.monitor_changed(m);
        }
        let items = created.into_iter().map(|m| view(&state, m)).collect();
        Produced::ok(&BulkCreated { items })
    })
    .await
}

/// What a bulk action does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    Enable,
    Disable,
    Delete,
    AddTags,
    RemoveTags,
}

/// Body of a bulk action.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionInput {
    pub action: ActionKind,
    /// 1–1000 monitor ids.
    pub ids: Vec<i64>,
    /// Tags to add or remove (`add_tags` / `remove_tags` only).
    #[serde(default)]
    pub tags: Option<Vec<String>>,
}

/// Outcome of a bulk action.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionResult {
    /// Ids that existed and were changed (or deleted).
    pub updated: Vec<i64>,
    /// Ids that do not exist in the workspace.
    pub missing: Vec<i64>,
}

/// Act on monitors in bulk
///
/// Enables, disables, deletes, or adds/removes tags on many monitors in one transaction.
/// Honours `Idempotency-Key`.
#[utoipa::path(post, path = "/api/v1/monitors/actions", operation_id = "bulkMonitorActions", tag = "monitors",
    request_body = ActionInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response to this key")),
    responses((status = 200, description = "What was changed", body = ActionResult),
        (status = 400, description = "Invalid action", body = ErrorEnvelope),
        (status = 422, description = "Idempotency-Key reused with a different body", body = ErrorEnvelope)),
    security(("bearer" = ["write"])))]
pub async fn actions(
    State(state): State<ApiState>,
    auth: Writer,
    headers: HeaderMap,
    body: JsonWithBytes<ActionInput>,
) -> ApiResult<Response> {
    let ws = auth.ws();
    let JsonWithBytes { value, bytes } = body;
    let route = "POST /api/v1/monitors/actions";
    let s = state.clone();
    idempotency::once(&s, ws, route, &headers, &bytes, None, move || async move {
        let mut ids: Vec<i64> = Vec::with_capacity(value.ids.len());
        for id in value.ids {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        if ids.is_empty() || ids.len() > MAX_BULK {
            return Err(ApiError::validation(
                "/ids",
                format!("send 1–{MAX_BULK} ids"),
            ));
        }
        let tags = match (value.action, value.tags) {
            (ActionKind::AddTags | ActionKind::RemoveTags, Some(tags)) if !tags.is_empty() => {
                normalize_tags(tags)?
            }
            (ActionKind::AddTags | ActionKind::RemoveTags, _) => {
                return Err(ApiError::validation("/tags", "this action needs tags"));
            }
            (_, Some(_)) => {
                return Err(ApiError::validation(
                    "/tags",
                    "tags only go with add_tags and remove_tags",
                ));
            }
            (_, None) => Vec::new(),
        };
        let action = match value.action {
            ActionKind::Enable => BulkAction::Enable,
            ActionKind::Disable => BulkAction::Disable,
            ActionKind::Delete => BulkAction::Delete,
            ActionKind::AddTags => BulkAction::AddTags(tags),
            ActionKind::RemoveTags => BulkAction::RemoveTags(tags),
        };
        let updated = state.app.store.bulk_monitors(ws, &ids, &action).await?;
        for id in &updated {
            if action == BulkAction::Delete {
                state.app.monitor_removed(*id);
            } else if let Some(m) = state.app.store.get_monitor(ws, *id).await? {
                state.app.monitor_changed(&m);
            }
        }
        let missing = ids.into_iter().filter(|id| !updated.contains(id)).collect();
        Produced::ok(&ActionResult { updated, missing })
    })
    .await
}

/// A check result that was just run and stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckRunView {
    pub monitor_id: i64,
    pub region: String,
    pub started_at: DateTime<Utc>,
    pub status: Status,
    pub message: String,
    pub latency_ms: f64,
    #[schema(value_type = Object)]
    pub timings: Timings,
    /// Named numeric metrics.
    #[schema(value_type = Object)]
    pub metrics: serde_json::Map<String, serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub details: Option<Details>,
    /// Host-side fault (`timeout`, `cpu_limit`, …) when the check could not run properly.
    pub error_cause: Option<String>,
}

impl From<NewResult> for CheckRunView {
    fn from(r: NewResult) -> Self {
        Self {
            monitor_id: r.monitor_id,
            region: r.region,
            started_at: r.started_at,
            status: r.status,
            message: r.message,
            latency_ms: r.latency_ms,
            timings: r.timings,
            metrics: metrics_object(&r.metrics),
            details: r.details,
            error_cause: r.error_cause,
        }
    }
}

fn metrics_object(metrics: &[(String, f64)]) -> serde_json::Map<String, serde_json::Value> {
    metrics
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::json!(v)))
        .collect()
}

/// Run a check now
///
/// Runs the monitor's check immediately (even when paused), stores the result and returns it.
#[utoipa::path(post, path = "/api/v1/monitors/{id}/check-now", operation_id = "checkMonitorNow", tag = "monitors",
    params(("id" = i64, Path, description = "Monitor id")),
    responses((status = 200, description = "The stored result", body = CheckRunView),
        (status = 404, description = "No such monitor", body = ErrorEnvelope),
        (status = 409, description = "A push monitor", body = ErrorEnvelope),
        (status = 503, description = "The result pipeline is full or the store is down", body = ErrorEnvelope)),
    security(("bearer" = ["write"])))]
pub async fn check_now(
    State(state): State<ApiState>,
    auth: Writer,
    PathId(id): PathId,
) -> ApiResult<axum::Json<CheckRunView>> {
    let monitor = load(&state, auth.ws(), id).await?;
    if monitor.spec.kind != MonitorType::Check {
        return Err(ApiError::new(
            ErrorCode::NotACheckMonitor,
            "push monitors are not checked; they wait for pings on their push URL",
        ));
    }
    let result = state.app.checks.run(&monitor, 1).await;
    state.app.results.submit_and_wait(result.clone()).await?;
    Ok(axum::Json(result.into()))
}

/// The outcome of a test run (nothing stored).
#[derive(Debug, Serialize, ToSchema)]
pub struct OutcomeView {
    pub status: Status,
    pub message: String,
    pub latency_ms: f64,
    #[schema(value_type = Object)]
    pub timings: Timings,
    #[schema(value_type = Object)]
    pub metrics: serde_json::Map<String, serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub details: Option<Details>,
    pub error_cause: Option<String>,
}

impl From<Outcome> for OutcomeView {
    fn from(o: Outcome) -> Self {
        Self {
            metrics: metrics_object(&o.metrics),
            status: o.status,
            message: o.message,
            latency_ms: o.latency_ms,
            timings: o.timings,
            details: o.details,
            error_cause: o.error_cause.map(|c| c.code().to_string()),
        }
    }
}

/// Test a monitor definition
///
/// Validates the definition like a create and runs it once without saving anything.
#[utoipa::path(post, path = "/api/v1/monitors/test", operation_id = "testMonitor", tag = "monitors",
    request_body = MonitorInput,
    responses((status = 200, description = "The outcome", body = OutcomeView),
        (status = 400, description = "Invalid definition", body = ErrorEnvelope)),
    security(("bearer" = ["write"])))]
pub async fn test(
    State(state): State<ApiState>,
    auth: Writer,
    Json(input): Json<MonitorInput>,
) -> ApiResult<impl IntoResponse> {
    let ws = auth.ws();
    let validated = monitor_input::validate(&state.app, ws, input)?;
    if validated.spec.kind != MonitorType::Check {
        return Err(ApiError::validation(
            "/type",
            "only check monitors can be tested",
        ));
    }
    let outcome = state.app.checks.run_unsaved(ws, &validated.spec).await;
    Ok(axum::Json(OutcomeView::from(outcome)))
}
