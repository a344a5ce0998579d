//! The notification outbox, seen from the dispatcher: claiming due notifications under a
//! lease, recording delivery attempts, storm-control holds and digests, reminders for open
//! incidents, and the notification lists of the API.
//!
//! Rows are inserted by the incident engine in the transaction of the transition (see
//! `results.rs`), by [`Store::queue_reminders`] and by [`Store::create_digest`].

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use sqlx::any::AnyRow;

use super::engine::bindings::{ChannelBinding, enabled_channels, explicit_channels};
use super::engine::state::load_tags;
use super::rows::{self, get};
use super::{Backend, R, Store, params};
use crate::model::{
    DeliveryAttempt, Notification, NotificationStatus, Page, Timestamp, WorkspaceId,
};

/// Columns of a notification row.
const NOTIFICATION_COLUMNS: &str = "id, channel_id, incident_id, monitor_id, event, \
     idempotency_key, status, attempts, next_attempt_at, created_at, delivered_at, last_error, \
     external_id, digest_id";

/// A notification claimed for delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub id: i64,
    pub workspace_id: WorkspaceId,
    pub channel_id: i64,
    pub incident_id: Option<i64>,
    pub monitor_id: Option<i64>,
    /// `opened`, `resolved`, `escalated`, `reminder`, `flapping`, `flapping_ended`, `digest`.
    pub event: String,
    pub idempotency_key: String,
    /// The facts of the event as the engine wrote them.
    pub payload: serde_json::Value,
    /// Attempts made so far.
    pub attempts: u32,
    pub created_at: Timestamp,
}

/// How one delivery attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    Delivered,
    Transient,
    Permanent,
}

impl AttemptOutcome {
    /// Lowercase name used in JSON and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Transient => "transient",
            Self::Permanent => "permanent",
        }
    }
}

/// One delivery attempt to record, and what becomes of the notification.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRecord {
    pub notification_id: i64,
    /// The attempt's number (1 for the first).
    pub attempt: u32,
    pub started_at: Timestamp,
    pub duration_ms: f64,
    pub outcome: AttemptOutcome,
    pub message: String,
    pub external_id: Option<String>,
    /// For a transient failure: when to try again; `None` gives up (dead letter).
    pub retry_at: Option<Timestamp>,
}

/// Filters of the notification list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NotificationFilter {
    pub status: Option<NotificationStatus>,
    pub channel_id: Option<i64>,
    pub incident_id: Option<i64>,
    pub monitor_id: Option<i64>,
    pub limit: i64,
    pub offset: i64,
}

/// A notification status from its stored name.
fn notification_status(s: &str) -> R<NotificationStatus> {
    Ok(match s {
        "pending" => NotificationStatus::Pending,
        "delivered" => NotificationStatus::Delivered,
        "failed" => NotificationStatus::Failed,
        "dead" => NotificationStatus::Dead,
        "held" => NotificationStatus::Held,
        "digested" => NotificationStatus::Digested,
        other => return Err(rows::corrupt("notifications.status", other)),
    })
}

/// Decodes a row of [`NOTIFICATION_COLUMNS`].
pub(super) fn notification_from_row(row: &AnyRow) -> R<Notification> {
    let status: String = get(row, "notifications.status")?;
    Ok(Notification {
        id: get(row, "notifications.id")?,
        channel_id: get(row, "notifications.channel_id")?,
        incident_id: get(row, "notifications.incident_id")?,
        monitor_id: get(row, "notifications.monitor_id")?,
        event: get(row, "notifications.event")?,
        idempotency_key: get(row, "notifications.idempotency_key")?,
        status: notification_status(&status)?,
        attempts: rows::u32_col(row, "notifications.attempts")?,
        next_attempt_at: rows::time(row, "notifications.next_attempt_at")?,
        created_at: rows::time(row, "notifications.created_at")?,
        delivered_at: rows::opt_time(row, "notifications.delivered_at")?,
        last_error: get(row, "notifications.last_error")?,
        external_id: get(row, "notifications.external_id")?,
        digest_id: get(row, "notifications.digest_id")?,
    })
}

/// Decodes a claimed row.
fn claimed_from_row(row: &AnyRow) -> R<Claimed> {
    let payload: String = get(row, "notifications.payload")?;
    Ok(Claimed {
        id: get(row, "notifications.id")?,
        workspace_id: get(row, "notifications.workspace_id")?,
        channel_id: get(row, "notifications.channel_id")?,
        incident_id: get(row, "notifications.incident_id")?,
        monitor_id: get(row, "notifications.monitor_id")?,
        event: get(row, "notifications.event")?,
        idempotency_key: get(row, "notifications.idempotency_key")?,
        payload: serde_json::from_str(&payload)
            .map_err(|e| rows::corrupt("notifications.payload", e))?,
        attempts: rows::u32_col(row, "notifications.attempts")?,
        created_at: rows::time(row, "notifications.created_at")?,
    })
}

/// A notification row to insert.
#[derive(Debug, Clone)]
pub(super) struct NewNotification {
    pub workspace_id: WorkspaceId,
    pub channel_id: i64,
    pub incident_id: Option<i64>,
    pub monitor_id: Option<i64>,
    pub event: &'static str,
    pub idempotency_key: String,
    pub payload: String,
}

/// Inserts pending notifications (due at `now`) on an open transaction.
pub(super) async fn insert_notifications(
    conn: &mut sqlx::AnyConnection,
    rows_to_insert: &[NewNotification],
    now: i64,
) -> R<()> {
    for n in rows_to_insert {
        sqlx::query(
            "INSERT INTO notifications (workspace_id, channel_id, incident_id, monitor_id, event, \
             idempotency_key, payload, status, attempts, next_attempt_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $8, $8)",
        )
        .bind(n.workspace_id)
        .bind(n.channel_id)
        .bind(n.incident_id)
        .bind(n.monitor_id)
        .bind(n.event)
        .bind(&n.idempotency_key)
        .bind(&n.payload)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

impl Store {
    /// Claims up to `limit` due pending notifications for `lease` (oldest due first). A claimed
    /// row is not claimed again until its lease expires or its attempt is recorded.
    pub async fn claim_notifications(
        &self,
        now: Timestamp,
        limit: usize,
        lease: Duration,
    ) -> R<Vec<Claimed>> {
        let now_ms = rows::ms(now);
        let until = now_ms.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX));
        let skip_locked = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE notifications SET lease_until = $1 WHERE id IN (\
             SELECT id FROM notifications WHERE status = 'pending' AND next_attempt_at <= $2 \
             AND (lease_until IS NULL OR lease_until < $2) \
             ORDER BY next_attempt_at, id LIMIT $3{skip_locked}) \
             RETURNING id, workspace_id, channel_id, incident_id, monitor_id, event, \
             idempotency_key, payload, attempts, created_at"
        );
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(&sql)
            .bind(until)
            .bind(now_ms)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(tx.conn())
            .await?;
        tx.commit().await?;
        let mut claimed = rows.iter().map(claimed_from_row).collect::<R<Vec<_>>>()?;
        claimed.sort_by_key(|c| c.id);
        Ok(claimed)
    }

    /// Releases every lease (at start-up: this node's earlier claims died with it).
    pub async fn release_notification_leases(&self) -> R<u64> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE notifications SET lease_until = NULL WHERE lease_until IS NOT NULL",
        )
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// Records delivery attempts and moves each notification on: delivered, failed
    /// (permanent), pending again at `retry_at`, or dead.
    pub async fn record_deliveries(&self, records: &[DeliveryRecord]) -> R<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for r in records {
            let started = rows::ms(r.started_at);
            let message = rows::clean_text(&r.message).into_owned();
            sqlx::query(
                "INSERT INTO notification_attempts (notification_id, attempt, started_at, \
                 duration_ms, outcome, message, external_id) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(r.notification_id)
            .bind(i64::from(r.attempt))
            .bind(started)
            .bind(if r.duration_ms.is_finite() {
                r.duration_ms
            } else {
                0.0
            })
            .bind(r.outcome.as_str())
            .bind(&message)
            .bind(r.external_id.as_deref())
            .execute(tx.conn())
            .await?;
            let finished = started.saturating_add(r.duration_ms.max(0.0) as i64);
            let (status, next, delivered_at, error) = match (r.outcome, r.retry_at) {
                (AttemptOutcome::Delivered, _) => ("delivered", started, Some(finished), None),
                (AttemptOutcome::Permanent, _) => ("failed", started, None, Some(&message)),
                (AttemptOutcome::Transient, Some(at)) => {
                    ("pending", rows::ms(at), None, Some(&message))
                }
                (AttemptOutcome::Transient, None) => ("dead", started, None, Some(&message)),
            };
            sqlx::query(
                "UPDATE notifications SET status = $1, attempts = $2, next_attempt_at = $3, \
                 lease_until = NULL, delivered_at = $4, last_error = $5, \
                 external_id = COALESCE($6, external_id) WHERE id = $7",
            )
            .bind(status)
            .bind(i64::from(r.attempt))
            .bind(next)
            .bind(delivered_at)
            .bind(error)
            .bind(r.external_id.as_deref())
            .bind(r.notification_id)
            .execute(tx.conn())
            .await?;
        }
        tx.commit().await
    }

    /// Puts claimed notifications on hold (over their channel's storm cap).
    pub async fn hold_notifications(&self, ids: &[i64]) -> R<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for chunk in ids.chunks(super::CHUNK) {
            let sql = format!(
                "UPDATE notifications SET status = 'held', lease_until = NULL \
                 WHERE status = 'pending' AND id IN ({})",
                params(self.backend, chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            q.execute(tx.conn()).await?;
        }
        tx.commit().await
    }

    /// Channels holding notifications: `(workspace, channel, newest held creation time)`.
    pub async fn channels_with_held(&self) -> R<Vec<(WorkspaceId, i64, Timestamp)>> {
        let rows = sqlx::query(
            "SELECT workspace_id, channel_id, MAX(created_at) AS newest FROM notifications \
             WHERE status = 'held' GROUP BY workspace_id, channel_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    get(r, "notifications.workspace_id")?,
                    get(r, "notifications.channel_id")?,
                    rows::time(r, "notifications.newest")?,
                ))
            })
            .collect()
    }

    /// Turns the held notifications of a channel into one pending `digest` notification (in
    /// one transaction); returns its id, or `None` when nothing was held.
    pub async fn create_digest(
        &self,
        ws: WorkspaceId,
        channel_id: i64,
        now: Timestamp,
        window_secs: u32,
    ) -> R<Option<i64>> {
        let mut tx = self.begin_write().await?;
        let held = sqlx::query(
            "SELECT id, event, payload, created_at FROM notifications \
             WHERE workspace_id = $1 AND channel_id = $2 AND status = 'held' ORDER BY id",
        )
        .bind(ws)
        .bind(channel_id)
        .fetch_all(tx.conn())
        .await?;
        if held.is_empty() {
            return Ok(None);
        }
        let mut ids = Vec::with_capacity(held.len());
        let mut items = Vec::with_capacity(held.len());
        for row in &held {
            let id: i64 = get(row, "notifications.id")?;
            let payload: String = get(row, "notifications.payload")?;
            let payload: serde_json::Value = serde_json::from_str(&payload)
                .map_err(|e| rows::corrupt("notifications.payload", e))?;
            items.push(serde_json::json!({
                "event": get::<String>(row, "notifications.event")?,
                "created_at": get::<i64>(row, "notifications.created_at")?,
                "facts": payload,
            }));
            ids.push(id);
        }
        let (first, last) = (ids[0], ids[ids.len() - 1]);
        let payload = serde_json::json!({
            "kind": "digest",
            "occurred_at": rows::ms(now),
            "digest": {"count": ids.len(), "window_secs": window_secs, "items": items},
        });
        let key = format!("pharos-digest-c{channel_id}-{first}-{last}");
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO notifications (workspace_id, channel_id, event, idempotency_key, payload, \
             status, attempts, next_attempt_at, created_at) \
             VALUES ($1, $2, 'digest', $3, $4, 'pending', 0, $5, $5) RETURNING id",
        )
        .bind(ws)
        .bind(channel_id)
        .bind(&key)
        .bind(payload.to_string())
        .bind(rows::ms(now))
        .fetch_one(tx.conn())
        .await?;
        for chunk in ids.chunks(super::CHUNK) {
            let sql = format!(
                "UPDATE notifications SET status = 'digested', digest_id = ? WHERE id IN ({})",
                params(Backend::Sqlite, chunk.len())
            );
            let sql = match self.backend {
                Backend::Sqlite => sql,
                Backend::Postgres => format!(
                    "UPDATE notifications SET status = 'digested', digest_id = $1 WHERE id IN ({})",
                    super::placeholders(2, chunk.len())
                ),
            };
            let mut q = sqlx::query(&sql).bind(id);
            for held_id in chunk {
                q = q.bind(*held_id);
            }
            q.execute(tx.conn()).await?;
        }
        tx.commit().await?;
        Ok(Some(id))
    }

    /// Queues a `reminder` notification for every open, unacknowledged, notified and
    /// unsuppressed incident whose monitor reminds (`renotify_interval_secs` > 0) and whose last
    /// notification is at least that old, unless the monitor is flapping, paused, or in a
    /// maintenance window `in_maintenance(workspace, monitor id, tags)` says is active.
    /// Returns the number of incidents reminded.
    pub async fn queue_reminders(
        &self,
        now: Timestamp,
        limit: usize,
        in_maintenance: impl Fn(WorkspaceId, i64, &[String]) -> bool,
    ) -> R<usize> {
        let now_ms = rows::ms(now);
        let mut tx = self.begin_write().await?;
        let due = sqlx::query(
            "SELECT i.id, i.workspace_id, i.monitor_id, i.severity, i.cause, i.opened_at, \
             m.name, m.kind, m.plugin, s.status, s.since \
             FROM incidents i JOIN monitors m ON m.id = i.monitor_id \
             LEFT JOIN monitor_state s ON s.monitor_id = i.monitor_id \
             LEFT JOIN alert_state a ON a.monitor_id = i.monitor_id \
             WHERE i.status = 'open' AND i.acknowledged_at IS NULL AND i.suppressed IS NULL \
             AND i.opened_notified = 1 AND m.enabled = 1 AND m.renotify_interval_secs > 0 \
             AND COALESCE(a.flapping, 0) = 0 \
             AND COALESCE(i.last_notified_at, i.opened_at) + m.renotify_interval_secs * 1000 <= $1 \
             ORDER BY i.id LIMIT $2",
        )
        .bind(now_ms)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(tx.conn())
        .await?;
        if due.is_empty() {
            return Ok(0);
        }
        let monitor_ids: Vec<i64> = due
            .iter()
            .map(|r| get::<i64>(r, "incidents.monitor_id"))
            .collect::<R<BTreeSet<i64>>>()?
            .into_iter()
            .collect();
        let tags = load_tags(tx.conn(), self.backend, &monitor_ids).await?;
        let explicit = explicit_channels(tx.conn(), self.backend, &monitor_ids).await?;
        let mut channels_by_ws: HashMap<WorkspaceId, Vec<ChannelBinding>> = HashMap::new();
        let mut reminded = 0;
        for row in &due {
            let incident_id: i64 = get(row, "incidents.id")?;
            let ws: WorkspaceId = get(row, "incidents.workspace_id")?;
            let monitor_id: i64 = get(row, "incidents.monitor_id")?;
            let no_tags = Vec::new();
            let monitor_tags = tags.get(&monitor_id).unwrap_or(&no_tags);
            if in_maintenance(ws, monitor_id, monitor_tags) {
                continue;
            }
            if let std::collections::hash_map::Entry::Vacant(e) = channels_by_ws.entry(ws) {
                e.insert(enabled_channels(tx.conn(), ws).await?);
            }
            let named = explicit.get(&monitor_id);
            let bound: Vec<i64> = channels_by_ws
                .get(&ws)
                .map(|list| {
                    list.iter()
                        .filter(|c| c.binds(named, monitor_tags))
                        .map(|c| c.id)
                        .collect()
                })
                .unwrap_or_default();
            // Only while still open and unacknowledged (the engine or an API call may have
            // changed it since the selection).
            let still = sqlx::query(
                "UPDATE incidents SET last_notified_at = $1, updated_at = $1 WHERE id = $2 \
                 AND status = 'open' AND acknowledged_at IS NULL",
            )
            .bind(now_ms)
            .bind(incident_id)
            .execute(tx.conn())
            .await?;
            if still.rows_affected() == 0 {
                continue;
            }
            let event_id: i64 = sqlx::query_scalar(
                "INSERT INTO incident_events (incident_id, at, kind, actor, message) \
                 VALUES ($1, $2, 'reminder', 'system', $3) RETURNING id",
            )
            .bind(incident_id)
            .bind(now_ms)
            .bind(format!(
                "still open and unacknowledged; reminder sent to {} channel(s)",
                bound.len()
            ))
            .fetch_one(tx.conn())
            .await?;
            let severity: String = get(row, "incidents.severity")?;
            let payload = serde_json::json!({
                "kind": "incident.reminder",
                "occurred_at": now_ms,
                "monitor": {
                    "id": monitor_id,
                    "name": get::<String>(row, "monitors.name")?,
                    "type": get::<String>(row, "monitors.kind")?,
                    "plugin": get::<Option<String>>(row, "monitors.plugin")?,
                    "tags": monitor_tags,
                },
                "status": get::<Option<String>>(row, "monitor_state.status")?.unwrap_or_else(|| severity.clone()),
                "since": get::<Option<i64>>(row, "monitor_state.since")?,
                "cause": get::<String>(row, "incidents.cause")?,
                "incident": {
                    "id": incident_id,
                    "status": "open",
                    "severity": severity,
                    "opened_at": get::<i64>(row, "incidents.opened_at")?,
                    "resolved_at": null,
                    "acknowledged": false,
                    "cause": get::<String>(row, "incidents.cause")?,
                },
            })
            .to_string();
            let new_rows: Vec<NewNotification> = bound
                .iter()
                .map(|channel_id| NewNotification {
                    workspace_id: ws,
                    channel_id: *channel_id,
                    incident_id: Some(incident_id),
                    monitor_id: Some(monitor_id),
                    event: "reminder",
                    idempotency_key: format!(
                        "pharos-{incident_id}-reminder-{event_id}-c{channel_id}"
                    ),
                    payload: payload.clone(),
                })
                .collect();
            insert_notifications(tx.conn(), &new_rows, now_ms).await?;
            reminded += 1;
        }
        tx.commit().await?;
        Ok(reminded)
    }

    /// Notifications of a workspace, newest first.
    pub async fn list_notifications(
        &self,
        ws: WorkspaceId,
        filter: &NotificationFilter,
    ) -> R<Page<Notification>> {
        let mut clauses = vec!["workspace_id = $1".to_string()];
        let mut binds: Vec<Bind> = vec![Bind::I(ws)];
        if let Some(s) = filter.status {
            binds.push(Bind::S(s.as_str().to_string()));
            clauses.push(format!("status = ${}", binds.len()));
        }
        for (col, v) in [
            ("channel_id", filter.channel_id),
            ("incident_id", filter.incident_id),
            ("monitor_id", filter.monitor_id),
        ] {
            if let Some(v) = v {
                binds.push(Bind::I(v));
                clauses.push(format!("{col} = ${}", binds.len()));
            }
        }
        let filter_sql = clauses.join(" AND ");
        let count_sql = format!("SELECT COUNT(*) FROM notifications WHERE {filter_sql}");
        let mut q = sqlx::query_scalar::<_, i64>(&count_sql);
        for b in &binds {
            q = b.bind_scalar(q);
        }
        let total = q.fetch_one(&self.pool).await?;
        let list_sql = format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE {filter_sql} \
             ORDER BY id DESC LIMIT ${} OFFSET ${}",
            binds.len() + 1,
            binds.len() + 2
        );
        let mut q = sqlx::query(&list_sql);
        for b in &binds {
            q = b.bind(q);
        }
        let rows = q
            .bind(filter.limit)
            .bind(filter.offset)
            .fetch_all(&self.pool)
            .await?;
        let items = rows
            .iter()
            .map(notification_from_row)
            .collect::<R<Vec<_>>>()?;
        Ok(Page { items, total })
    }

    /// One notification of a workspace.
    pub async fn get_notification(&self, ws: WorkspaceId, id: i64) -> R<Option<Notification>> {
        let sql = format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE workspace_id = $1 AND id = $2"
        );
        let row = sqlx::query(&sql)
            .bind(ws)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(notification_from_row).transpose()
    }

    /// The delivery attempts of a notification, oldest first.
    pub async fn notification_attempts(&self, ws: WorkspaceId, id: i64) -> R<Vec<DeliveryAttempt>> {
        let rows = sqlx::query(
            "SELECT a.notification_id, n.channel_id, a.attempt, a.started_at, a.duration_ms, \
             a.outcome, a.message, a.external_id FROM notification_attempts a \
             JOIN notifications n ON n.id = a.notification_id \
             WHERE n.workspace_id = $1 AND a.notification_id = $2 ORDER BY a.attempt, a.id",
        )
        .bind(ws)
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DeliveryAttempt {
                    notification_id: get(r, "notification_attempts.notification_id")?,
                    channel_id: get(r, "notifications.channel_id")?,
                    attempt: rows::u32_col(r, "notification_attempts.attempt")?,
                    started_at: rows::time(r, "notification_attempts.started_at")?,
                    duration_ms: get(r, "notification_attempts.duration_ms")?,
                    outcome: get(r, "notification_attempts.outcome")?,
                    message: get(r, "notification_attempts.message")?,
                    external_id: get(r, "notification_attempts.external_id")?,
                })
            })
            .collect()
    }

    /// Puts a failed or dead notification back in the queue for a fresh round of attempts.
    /// Returns the notification, or `None` when it does not exist; other states are left alone.
    pub async fn requeue_notification(
        &self,
        ws: WorkspaceId,
        id: i64,
        now: Timestamp,
    ) -> R<Option<Notification>> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE notifications SET status = 'pending', attempts = 0, next_attempt_at = $1, \
             lease_until = NULL WHERE workspace_id = $2 AND id = $3 \
             AND status IN ('failed', 'dead')",
        )
        .bind(rows::ms(now))
        .bind(ws)
        .bind(id)
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        self.get_notification(ws, id).await
    }

    /// How many notifications are in each status (for metrics and the bench).
    pub async fn notification_counts(&self) -> R<HashMap<String, i64>> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM notifications GROUP BY status")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((get(r, "notifications.status")?, get(r, "notifications.n")?)))
            .collect()
    }
}

/// A bind parameter of a dynamically built filter.
enum Bind {
    I(i64),
    S(String),
}

impl Bind {
    fn bind<'q>(
        &self,
        q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
        match self {
            Bind::I(v) => q.bind(*v),
            Bind::S(v) => q.bind(v.clone()),
        }
    }

    fn bind_scalar<'q>(
        &self,
        q: sqlx::query::QueryScalar<'q, sqlx::Any, i64, sqlx::any::AnyArguments<'q>>,
    ) -> sqlx::query::QueryScalar<'q, sqlx::Any, i64, sqlx::any::AnyArguments<'q>> {
        match self {
            Bind::I(v) => q.bind(*v),
            Bind::S(v) => q.bind(v.clone()),
        }
    }
}
