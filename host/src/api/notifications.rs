//! Notification endpoints: the outbox as a list, one notification with its delivery attempts,
//! and re-queueing a failed or dead-lettered one.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::ApiState;
use super::auth::{Reader, Writer};
use super::error::{ApiError, ApiResult, ErrorCode, ErrorEnvelope};
use super::extract::{PathId, Query};
use super::pagination::{ListEnvelope, PageParams};
use crate::model::{DeliveryAttempt, Notification, NotificationStatus};
use crate::store::NotificationFilter;

/// Filters of the notification list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct NotificationQuery {
    /// `pending`, `delivered`, `failed`, `dead`, `held` or `digested`.
    pub status: Option<NotificationStatus>,
    pub channel_id: Option<i64>,
    pub incident_id: Option<i64>,
    pub monitor_id: Option<i64>,
    /// 1–500, default 50.
    pub limit: Option<i64>,
    /// Default 0.
    pub offset: Option<i64>,
}

/// A notification with every delivery attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationDetail {
    pub notification: Notification,
    pub attempts: Vec<DeliveryAttempt>,
}

/// List notifications
///
/// The outbox, newest first: one notification per event and channel.
#[utoipa::path(get, path = "/api/v1/notifications", operation_id = "listNotifications",
    tag = "incidents", params(NotificationQuery),
    responses((status = 200, description = "Notifications", body = ListEnvelope<Notification>),
        (status = 400, description = "Bad filter", body = ErrorEnvelope)),
    security(("bearer" = ["read"])))]
pub async fn list(
    State(state): State<ApiState>,
    auth: Reader,
    Query(q): Query<NotificationQuery>,
) -> ApiResult<axum::Json<ListEnvelope<Notification>>> {
    let page = PageParams::new(q.limit, q.offset)?;
    let filter = NotificationFilter {
        status: q.status,
        channel_id: q.channel_id,
        incident_id: q.incident_id,
        monitor_id: q.monitor_id,
        limit: page.limit,
        offset: page.offset,
    };
    let found = state
        .app
        .store
        .list_notifications(auth.ws(), &filter)
        .await?;
    Ok(axum::Json(page.envelope(found.items, found.total)))
}

/// Get a notification with its delivery attempts
#[utoipa::path(get, path = "/api/v1/notifications/{id}", operation_id = "getNotification",
    tag = "incidents", params(("id" = i64, Path, description = "Notification id")),
    responses((status = 200, description = "The notification and its attempts", body = NotificationDetail),
        (status = 404, description = "No such notification", body = ErrorEnvelope)),
    security(("bearer" = ["read"])))]
pub async fn get(
    State(state): State<ApiState>,
    auth: Reader,
    PathId(id): PathId,
) -> ApiResult<axum::Json<NotificationDetail>> {
    let store = &state.app.store;
    let notification = store
        .get_notification(auth.ws(), id)
        .await?
        .ok_or_else(|| not_found(id))?;
    let attempts = store.notification_attempts(auth.ws(), id).await?;
    Ok(axum::Json(NotificationDetail {
        notification,
        attempts,
    }))
}

/// Retry a failed or dead-lettered notification
///
/// Puts it back in the queue for a fresh round of attempts with the same idempotency key.
#[utoipa::path(post, path = "/api/v1/notifications/{id}/retry", operation_id = "retryNotification",
    tag = "incidents", params(("id" = i64, Path, description = "Notification id")),
    responses((status = 200, description = "Queued again", body = Notification),
        (status = 404, description = "No such notification", body = ErrorEnvelope),
        (status = 409, description = "Not failed or dead", body = ErrorEnvelope)),
    security(("bearer" = ["write"])))]
pub async fn retry(
    State(state): State<ApiState>,
    auth: Writer,
    PathId(id): PathId,
) -> ApiResult<axum::Json<Notification>> {
    let store = &state.app.store;
    let before = store
        .get_notification(auth.ws(), id)
        .await?
        .ok_or_else(|| not_found(id))?;
    if !matches!(
        before.status,
        NotificationStatus::Failed | NotificationStatus::Dead
    ) {
        return Err(ApiError::new(
            ErrorCode::NotificationNotRetryable,
            format!(
                "notification {id} is {}; only failed or dead notifications can be retried",
                before.status.as_str()
            ),
        ));
    }
    let after = store
        .requeue_notification(auth.ws(), id, chrono::Utc::now())
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok(axum::Json(after))
}

fn not_found(id: i64) -> ApiError {
    ApiError::new(
        ErrorCode::NotificationNotFound,
        format!("no notification {id}"),
    )
}
