//! Incident endpoints: list with filters, one incident with its timeline, acknowledge, notes,
//! and the notifications of an incident.

use axum::extract::{FromRequest, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::ApiState;
use super::auth::{Auth, Reader, Writer};
use super::error::{ApiError, ApiResult, ErrorCode, ErrorEnvelope};
use super::extract::{Json, PathId, Query, body_bytes, parse_json};
use super::pagination::{ListEnvelope, PageParams};
use super::results::PageQuery;
use crate::model::{
    Incident, IncidentFilter, IncidentStatus, Notification, Severity, TimelineEntry, WorkspaceId,
};
use crate::store::Acknowledged;

/// Longest note (and acknowledgement note), in characters.
pub const MAX_NOTE_CHARS: usize = 4000;

/// Filters and page of the incident list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct IncidentsQuery {
    /// `open` or `resolved`.
    #[param(value_type = Option<String>)]
    pub status: Option<IncidentStatus>,
    /// Incidents of this monitor.
    pub monitor_id: Option<i64>,
    /// `degraded` or `down`.
    #[param(value_type = Option<String>)]
    pub severity: Option<Severity>,
    /// Incidents still open at or after this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<DateTime<Utc>>,
    /// Incidents opened before this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<DateTime<Utc>>,
    /// 1–500, default 50.
    pub limit: Option<i64>,
    /// Default 0.
    pub offset: Option<i64>,
}

/// An incident with its timeline.
#[derive(Debug, Serialize, ToSchema)]
pub struct IncidentDetail {
    pub incident: Incident,
    /// Oldest first: state changes, suppressed notifications, flapping, acknowledgement,
    /// notes, reminders and every delivery attempt of its notifications (`notification`).
    pub timeline: Vec<TimelineEntry>,
}

/// Optional body of an acknowledgement.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcknowledgeInput {
    /// Up to 4000 characters, shown on the timeline.
    pub note: Option<String>,
}

/// Body of a note.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteInput {
    /// 1–4000 characters.
    pub message: String,
}

/// A JSON body that may be left out entirely (no body, or an empty one).
#[derive(Debug)]
pub struct OptionalJson<T>(pub Option<T>);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|m| m.trim().to_ascii_lowercase())
            .is_some_and(|m| {
                m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
            });
        let bytes = body_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(None));
        }
        if !json_type {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "a body needs `Content-Type: application/json`",
            ));
        }
        parse_json(&bytes).map(|v| OptionalJson(Some(v)))
    }
}

/// The incident or `INCIDENT_NOT_FOUND`.
async fn load(state: &ApiState, ws: WorkspaceId, id: i64) -> ApiResult<Incident> {
    state
        .app
        .store
        .get_incident(ws, id)
        .await?
        .ok_or_else(|| not_found(id))
}

fn not_found(id: i64) -> ApiError {
    ApiError::new(
        ErrorCode::IncidentNotFound,
        format!("no incident {id} in this workspace"),
    )
}

/// `key:<name>`: who did it, for the timeline.
fn actor<S>(auth: &Auth<S>) -> String {
    format!("key:{}", auth.key.name)
}

/// Checks the length of a note at `field`; returns it trimmed.
fn note_text(text: &str, field: &str, required: bool) -> ApiResult<String> {
    let trimmed = text.trim();
    let n = trimmed.chars().count();
    if (required && n == 0) || n > MAX_NOTE_CHARS {
        let range = if required { "1–" } else { "at most " };
        return Err(ApiError::validation(
            field,
            format!("must be {range}{MAX_NOTE_CHARS} characters"),
        ));
    }
    Ok(trimmed.to_string())
}

/// List incidents
///
/// Newest first (by opening time). `from`/`to` select incidents that overlap the range:
/// still open at or after `from`, opened before `to`.
#[utoipa::path(get, path = "/api/v1/incidents", operation_id = "listIncidents", tag = "incidents",
    params(IncidentsQuery),
    responses((status = 200, description = "A page of incidents", body = ListEnvelope<Incident>),
        (status = 400, description = "Bad query", body = ErrorEnvelope)),
    security(("bearer" = ["read"])))]
pub async fn list(
    State(state): State<ApiState>,
    auth: Reader,
    Query(q): Query<IncidentsQuery>,
) -> ApiResult<axum::Json<ListEnvelope<Incident>>> {
    let page = PageParams::new(q.limit, q.offset)?;
    if let (Some(from), Some(to)) = (q.from, q.to)
        && from >= to
    {
        return Err(ApiError::validation("/from", "`from` must be before `to`"));
    }
    if q.monitor_id.is_some_and(|m| m <= 0) {
        return Err(ApiError::validation(
            "/monitor_id",
            "monitor_id must be a positive id",
        ));
    }
    let filter = IncidentFilter {
        status: q.status,
        monitor_id: q.monitor_id,
        severity: q.severity,
        from: q.from,
        to: q.to,
        limit: page.limit,
        offset: page.offset,
    };
    let found = state.app.store.list_incidents(auth.ws(), &filter).await?;
    Ok(axum::Json(page.envelope(found.items, found.total)))
}

/// Get an incident with its timeline
#[utoipa::path(get, path = "/api/v1/incidents/{id}", operation_id = "getIncident", tag = "incidents",
    params(("id" = i64, Path, description = "Incident id")),
    responses((status = 200, description = "The incident and its timeline", body = IncidentDetail),
        (status = 404, description = "No such incident", body = ErrorEnvelope)),
    security(("bearer" = ["read"])))]
pub async fn get(
    State(state): State<ApiState>,
    auth: Reader,
    PathId(id): PathId,
) -> ApiResult<axum::Json<IncidentDetail>> {
    let incident = load(&state, auth.ws(), id).await?;
    let timeline = state.app.store.incident_timeline(auth.ws(), id).await?;
    Ok(axum::Json(IncidentDetail { incident, timeline }))
}

/// Acknowledge an incident
///
/// Records who acknowledged (and an optional note) on the timeline; acknowledged incidents
/// get no reminders. Resolved incidents cannot be acknowledged.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/acknowledge", operation_id = "acknowledgeIncident", tag = "incidents",
    params(("id" = i64, Path, description = "Incident id")),
    request_body(content = Option<AcknowledgeInput>, description = "Optional; may be left out"),
    responses((status = 200, description = "The acknowledged incident", body = Incident),
        (status = 400, description = "Invalid note", body = ErrorEnvelope),
        (status = 404, description = "No such incident", body = ErrorEnvelope),
        (status = 409, description = "Already acknowledged, or resolved", body = ErrorEnvelope)),
    security(("bearer" = ["write"])))]
pub async fn acknowledge(
    State(state): State<ApiState>,
    auth: Writer,
    PathId(id): PathId,
    OptionalJson(input): OptionalJson<AcknowledgeInput>,
) -> ApiResult<axum::Json<Incident>> {
    let note = match input.and_then(|i| i.note) {
        Some(n) => Some(note_text(&n, "/note", false)?).filter(|n| !n.is_empty()),
        None => None,
    };
    let who = actor(&auth);
    match state
        .app
        .store
        .acknowledge_incident(auth.ws(), id, &who, note.as_deref())
        .await?
    {
        Acknowledged::Done(incident) => Ok(axum::Json(incident)),
        Acknowledged::NotFound => Err(not_found(id)),
        Acknowledged::Already(incident) => Err(ApiError::new(
            ErrorCode::IncidentAlreadyAcknowledged,
            format!(
                "incident {id} was acknowledged by {}",
                incident.acknowledged_by.as_deref().unwrap_or("someone")
            ),
        )
        .with_details(serde_json::json!({
            "acknowledged_at": incident.acknowledged_at,
            "acknowledged_by": incident.acknowledged_by,
        }))),
        Acknowledged::Resolved(incident) => Err(ApiError::new(
            ErrorCode::IncidentResolved,
            format!("incident {id} is resolved; only open incidents can be acknowledged"),
        )
        .with_details(serde_json::json!({ "resolved_at": incident.resolved_at }))),
    }
}

/// Add a note to an incident
///
/// Open or resolved incidents; the note appears on the timeline (kind `note`).
#[utoipa::path(post, path = "/api/v1/incidents/{id}/notes", operation_id = "addIncidentNote", tag = "incidents",
    params(("id" = i64, Path, description = "Incident id")),
    request_body = NoteInput,
    responses((status = 201, description = "The timeline entry", body = TimelineEntry),
        (status = 400, description = "Invalid note", body = ErrorEnvelope),
        (status = 404, description = "No such incident", body = ErrorEnvelope)),
    security(("bearer" = ["write"])))]
pub async fn add_note(
    State(state): State<ApiState>,
    auth: Writer,
    PathId(id): PathId,
    Json(input): Json<NoteInput>,
) -> ApiResult<Response> {
    let message = note_text(&input.message, "/message", true)?;
    let who = actor(&auth);
    let entry = state
        .app
        .store
        .add_incident_note(auth.ws(), id, &who, &message)
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/v1/incidents/{id}"))],
        axum::Json(entry),
    )
        .into_response())
}

/// An incident's notifications
///
/// Every notification of the incident (one per event and channel), newest first.
#[utoipa::path(get, path = "/api/v1/incidents/{id}/notifications", operation_id = "listIncidentNotifications", tag = "incidents",
    params(("id" = i64, Path, description = "Incident id"), PageQuery),
    responses((status = 200, description = "A page of notifications", body = ListEnvelope<Notification>),
        (status = 400, description = "Bad query", body = ErrorEnvelope),
        (status = 404, description = "No such incident", body = ErrorEnvelope)),
    security(("bearer" = ["read"])))]
pub async fn notifications(
    State(state): State<ApiState>,
    auth: Reader,
    PathId(id): PathId,
    Query(q): Query<PageQuery>,
) -> ApiResult<axum::Json<ListEnvelope<Notification>>> {
    let page = PageParams::new(q.limit, q.offset)?;
    load(&state, auth.ws(), id).await?;
    let found = state
        .app
        .store
        .incident_notifications(auth.ws(), id, page.limit, page.offset)
        .await?;
    Ok(axum::Json(page.envelope(found.items, found.total)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_trimmed_and_bounded() {
        assert_eq!(
            note_text("  hi ", "/message", true).ok().as_deref(),
            Some("hi")
        );
        let e = note_text("   ", "/message", true).expect_err("empty");
        assert_eq!(e.field.as_deref(), Some("/message"));
        assert_eq!(note_text("", "/note", false).ok().as_deref(), Some(""));
        let long = "é".repeat(MAX_NOTE_CHARS + 1);
        assert!(note_text(&long, "/note", false).is_err());
        assert!(note_text(&"é".repeat(MAX_NOTE_CHARS), "/note", true).is_ok());
    }
}
