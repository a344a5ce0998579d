//! Incidents as the API and the dispatcher see them: list with filters, one incident, its
//! timeline (engine events, acknowledgements, notes, and the delivery attempts of its
//! notifications), acknowledgement, notes, its notifications, and a monitor's open incident.
//! Incidents are opened, escalated and resolved by the engine (`engine.rs`).

use sqlx::any::AnyRow;

use super::outbox::NotificationFilter;
use super::rows::{self, get};
use super::{Backend, R, Store};
use crate::model::{
    Incident, IncidentFilter, IncidentStatus, Notification, Page, Severity, TimelineEntry,
    WorkspaceId,
};

/// Columns of an incident row, as [`incident_from_row`] reads them.
const INCIDENT_COLUMNS: &str = "id, workspace_id, monitor_id, monitor_name, severity, status, \
     cause, opened_at, resolved_at, acknowledged_at, acknowledged_by, suppressed, \
     suppressed_by, updated_at";

/// What [`Store::acknowledge_incident`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Acknowledged {
    /// Acknowledged now; the incident as it is after.
    Done(Incident),
    /// No such incident in the workspace.
    NotFound,
    /// Acknowledged before (by this actor or another); the incident as it is.
    Already(Incident),
    /// The incident is resolved.
    Resolved(Incident),
}

/// Decodes a row of [`INCIDENT_COLUMNS`].
fn incident_from_row(row: &AnyRow) -> R<Incident> {
    let severity: String = get(row, "incidents.severity")?;
    let status: String = get(row, "incidents.status")?;
    Ok(Incident {
        id: get(row, "incidents.id")?,
        workspace_id: get(row, "incidents.workspace_id")?,
        monitor_id: get(row, "incidents.monitor_id")?,
        monitor_name: get(row, "incidents.monitor_name")?,
        severity: match severity.as_str() {
            "down" => Severity::Down,
            "degraded" => Severity::Degraded,
            other => {
                return Err(rows::corrupt(
                    "incidents.severity",
                    format!("unknown severity `{other}`"),
                ));
            }
        },
        status: match status.as_str() {
            "open" => IncidentStatus::Open,
            "resolved" => IncidentStatus::Resolved,
            other => {
                return Err(rows::corrupt(
                    "incidents.status",
                    format!("unknown status `{other}`"),
                ));
            }
        },
        cause: get(row, "incidents.cause")?,
        opened_at: rows::time(row, "incidents.opened_at")?,
        resolved_at: rows::opt_time(row, "incidents.resolved_at")?,
        acknowledged_at: rows::opt_time(row, "incidents.acknowledged_at")?,
        acknowledged_by: get(row, "incidents.acknowledged_by")?,
        suppressed: get(row, "incidents.suppressed")?,
        suppressed_by: get(row, "incidents.suppressed_by")?,
        updated_at: rows::time(row, "incidents.updated_at")?,
    })
}

/// Decodes an `incident_events` row (`at, kind, actor, message, data`).
fn entry_from_row(row: &AnyRow) -> R<TimelineEntry> {
    Ok(TimelineEntry {
        at: rows::time(row, "incident_events.at")?,
        kind: get(row, "incident_events.kind")?,
        actor: get(row, "incident_events.actor")?,
        message: get(row, "incident_events.message")?,
        data: rows::opt_json(row, "incident_events.data")?,
    })
}

/// The timeline entry of one delivery attempt: `webhook "ops": delivered (HTTP 200)`.
fn attempt_entry(row: &AnyRow) -> R<TimelineEntry> {
    let channel_id: i64 = get(row, "notifications.channel_id")?;
    let name: Option<String> = get(row, "channels.channel_name")?;
    let plugin: Option<String> = get(row, "channels.channel_plugin")?;
    let outcome: String = get(row, "notification_attempts.outcome")?;
    let detail: String = get(row, "notification_attempts.message")?;
    let event: String = get(row, "notifications.event")?;
    let channel = match (plugin, name) {
        (Some(plugin), Some(name)) => format!("{plugin} \"{name}\""),
        _ => format!("channel #{channel_id}"),
    };
    let mut message = format!("{channel}: {event} {outcome}");
    if !detail.is_empty() {
        message.push_str(&format!(" ({detail})"));
    }
    Ok(TimelineEntry {
        at: rows::time(row, "notification_attempts.started_at")?,
        kind: "notification".to_string(),
        actor: "system".to_string(),
        message,
        data: Some(serde_json::json!({
            "channel_id": channel_id,
            "notification_id": get::<i64>(row, "notification_attempts.notification_id")?,
            "event": event,
            "attempt": get::<i64>(row, "notification_attempts.attempt")?,
            "outcome": outcome,
            "duration_ms": get::<f64>(row, "notification_attempts.duration_ms")?,
            "external_id": get::<Option<String>>(row, "notification_attempts.external_id")?,
        })),
    })
}

/// A bind value of a built filter.
enum Arg {
    Int(i64),
    Text(&'static str),
}

/// `sql` with `args` bound in order.
fn bind_args<'q>(
    sql: &'q str,
    args: &'q [Arg],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    let mut q = sqlx::query(sql).persistent(false);
    for a in args {
        q = match a {
            Arg::Int(v) => q.bind(*v),
            Arg::Text(v) => q.bind(*v),
        };
    }
    q
}

impl Store {
    /// Incidents of a workspace matching `filter`, newest first (by `opened_at`, then id).
    ///
    /// `from`: incidents still open at or after it (resolved at or after it, or unresolved);
    /// `to`: incidents opened before it.
    pub async fn list_incidents(
        &self,
        ws: WorkspaceId,
        filter: &IncidentFilter,
    ) -> R<Page<Incident>> {
        let mut clauses = vec!["workspace_id = $1".to_string()];
        let mut args = vec![Arg::Int(ws)];
        let mut push = |clause: &str, arg: Arg| {
            args.push(arg);
            clauses.push(clause.replace('?', &format!("${}", args.len())));
        };
        if let Some(s) = filter.status {
            push("status = ?", Arg::Text(s.as_str()));
        }
        if let Some(m) = filter.monitor_id {
            push("monitor_id = ?", Arg::Int(m));
        }
        if let Some(s) = filter.severity {
            push("severity = ?", Arg::Text(s.as_str()));
        }
        if let Some(from) = filter.from {
            push(
                "(resolved_at IS NULL OR resolved_at >= ?)",
                Arg::Int(rows::ms(from)),
            );
        }
        if let Some(to) = filter.to {
            push("opened_at < ?", Arg::Int(rows::ms(to)));
        }
        let filter_sql = clauses.join(" AND ");
        let count_sql = format!("SELECT COUNT(*) AS n FROM incidents WHERE {filter_sql}");
        let row = bind_args(&count_sql, &args).fetch_one(&self.pool).await?;
        let total: i64 = get(&row, "incidents.n")?;
        let page_sql = format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE {filter_sql} \
             ORDER BY opened_at DESC, id DESC LIMIT ${} OFFSET ${}",
            args.len() + 1,
            args.len() + 2
        );
        let rows = bind_args(&page_sql, &args)
            .bind(filter.limit.max(0))
            .bind(filter.offset.max(0))
            .fetch_all(&self.pool)
            .await?;
        let items = rows.iter().map(incident_from_row).collect::<R<Vec<_>>>()?;
        Ok(Page { items, total })
    }

    /// One incident of a workspace.
    pub async fn get_incident(&self, ws: WorkspaceId, id: i64) -> R<Option<Incident>> {
        let sql =
            format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE workspace_id = $1 AND id = $2");
        let row = sqlx::query(&sql)
            .bind(ws)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(incident_from_row).transpose()
    }

    /// The open incident of a monitor, if it has one.
    pub async fn open_incident_for(&self, monitor_id: i64) -> R<Option<Incident>> {
        let sql = format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = \
             (SELECT incident_id FROM alert_state WHERE monitor_id = $1) AND status = 'open'"
        );
        let row = sqlx::query(&sql)
            .bind(monitor_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(incident_from_row).transpose()
    }

    /// The timeline of an incident, oldest first: its events (opened, escalated, resolved,
    /// suppressed, flapping, parent recovery, reminders, acknowledgement, notes) merged with the
    /// delivery attempts of its notifications (kind `notification`). Empty when the incident
    /// is not in the workspace.
    pub async fn incident_timeline(&self, ws: WorkspaceId, id: i64) -> R<Vec<TimelineEntry>> {
        let events = sqlx::query(
            "SELECT e.id, e.at, e.kind, e.actor, e.message, e.data FROM incident_events e \
             JOIN incidents i ON i.id = e.incident_id \
             WHERE e.incident_id = $1 AND i.workspace_id = $2 ORDER BY e.at, e.id",
        )
        .bind(id)
        .bind(ws)
        .fetch_all(&self.pool)
        .await?;
        let attempts = sqlx::query(
            "SELECT a.id, a.notification_id, a.attempt, a.started_at, a.duration_ms, a.outcome, \
             a.message, a.external_id, n.channel_id, n.event, c.name AS channel_name, \
             c.plugin AS channel_plugin FROM notification_attempts a \
             JOIN notifications n ON n.id = a.notification_id \
             LEFT JOIN channels c ON c.id = n.channel_id \
             WHERE n.incident_id = $1 AND n.workspace_id = $2 ORDER BY a.started_at, a.id",
        )
        .bind(id)
        .bind(ws)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(events.len() + attempts.len());
        let mut events = events.iter().map(entry_from_row).peekable();
        let mut attempts = attempts.iter().map(attempt_entry).peekable();
        // Both lists are sorted by time: merge, events first on equal times.
        loop {
            let take_event = match (events.peek(), attempts.peek()) {
                (None, None) => break,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some(Ok(e)), Some(Ok(a))) => e.at <= a.at,
                (Some(Err(_)), _) => true,
                (_, Some(Err(_))) => false,
            };
            let next = if take_event {
                events.next()
            } else {
                attempts.next()
            };
            if let Some(entry) = next {
                out.push(entry?);
            }
        }
        Ok(out)
    }

    /// Acknowledges an open incident for `actor` (`key:<name>`), with an optional note, and
    /// records it on the timeline.
    pub async fn acknowledge_incident(
        &self,
        ws: WorkspaceId,
        id: i64,
        actor: &str,
        note: Option<&str>,
    ) -> R<Acknowledged> {
        let now = rows::ms(rows::now());
        let mut tx = self.begin_write().await?;
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE workspace_id = $1 AND id = $2{lock}"
        );
        let Some(row) = sqlx::query(&sql)
            .bind(ws)
            .bind(id)
            .fetch_optional(tx.conn())
            .await?
        else {
            return Ok(Acknowledged::NotFound);
        };
        let incident = incident_from_row(&row)?;
        if incident.status == IncidentStatus::Resolved {
            return Ok(Acknowledged::Resolved(incident));
        }
        if incident.acknowledged_at.is_some() {
            return Ok(Acknowledged::Already(incident));
        }
        let actor = rows::clean_text(actor).into_owned();
        sqlx::query(
            "UPDATE incidents SET acknowledged_at = $1, acknowledged_by = $2, updated_at = $1 \
             WHERE id = $3",
        )
        .bind(now)
        .bind(actor.as_str())
        .bind(id)
        .execute(tx.conn())
        .await?;
        let note = note.map(|n| rows::clean_text(n).into_owned());
        let message = match &note {
            Some(n) if !n.is_empty() => format!("Acknowledged by {actor}: {n}"),
            _ => format!("Acknowledged by {actor}"),
        };
        insert_entry(
            tx.conn(),
            id,
            now,
            "acknowledged",
            &actor,
            &message,
            Some(serde_json::json!({ "note": note })),
        )
        .await?;
        let row = sqlx::query(&sql)
            .bind(ws)
            .bind(id)
            .fetch_one(tx.conn())
            .await?;
        let incident = incident_from_row(&row)?;
        tx.commit().await?;
        Ok(Acknowledged::Done(incident))
    }

    /// Adds a note by `actor` to an incident's timeline (open or resolved); `None` when the
    /// incident is not in the workspace.
    pub async fn add_incident_note(
        &self,
        ws: WorkspaceId,
        id: i64,
        actor: &str,
        message: &str,
    ) -> R<Option<TimelineEntry>> {
        let now = rows::ms(rows::now());
        let mut tx = self.begin_write().await?;
        let exists = sqlx::query("SELECT id FROM incidents WHERE workspace_id = $1 AND id = $2")
            .bind(ws)
            .bind(id)
            .fetch_optional(tx.conn())
            .await?;
        if exists.is_none() {
            return Ok(None);
        }
        let actor = rows::clean_text(actor).into_owned();
        let message = rows::clean_text(message).into_owned();
        insert_entry(tx.conn(), id, now, "note", &actor, &message, None).await?;
        tx.commit().await?;
        Ok(Some(TimelineEntry {
            at: rows::from_ms(now).unwrap_or_else(rows::now),
            kind: "note".to_string(),
            actor,
            message,
            data: None,
        }))
    }

    /// The notifications of an incident (every event and channel), newest first.
    pub async fn incident_notifications(
        &self,
        ws: WorkspaceId,
        id: i64,
        limit: i64,
        offset: i64,
    ) -> R<Page<Notification>> {
        self.list_notifications(
            ws,
            &NotificationFilter {
                incident_id: Some(id),
                limit,
                offset,
                ..NotificationFilter::default()
            },
        )
        .await
    }
}

/// Resolves the open incidents of monitors being deleted (in the deleting transaction), each
/// with a `resolved` timeline entry saying so. Channels are not notified: a recovery message
/// would claim the monitor is up. Returns the incidents closed.
pub(super) async fn close_for_deleted(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    monitor_ids: &[i64],
    now: i64,
) -> R<u64> {
    let mut closed = 0;
    for chunk in monitor_ids.chunks(super::CHUNK) {
        let sql = format!(
            "UPDATE incidents SET status = 'resolved', resolved_at = $1, updated_at = $1 \
             WHERE status = 'open' AND monitor_id IN ({}) RETURNING id",
            super::placeholders(2, chunk.len())
        );
        let mut q = sqlx::query(&sql).persistent(false).bind(now);
        for id in chunk {
            q = q.bind(*id);
        }
        let ids = q
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|row| get::<i64>(row, "incidents.id"))
            .collect::<R<Vec<i64>>>()?;
        for ids in ids.chunks(super::CHUNK / 6) {
            let sql = format!(
                "INSERT INTO incident_events (incident_id, at, kind, actor, message, data) \
                 VALUES {}",
                super::value_rows(backend, ids.len(), 6)
            );
            let mut q = sqlx::query(&sql).persistent(false);
            for id in ids {
                q = q
                    .bind(*id)
                    .bind(now)
                    .bind("resolved")
                    .bind("system")
                    .bind("Closed: the monitor was deleted")
                    .bind(r#"{"reason":"monitor_deleted"}"#);
            }
            q.execute(&mut *conn).await?;
            closed += ids.len() as u64;
        }
    }
    Ok(closed)
}

/// Appends an entry to an incident's timeline.
async fn insert_entry(
    conn: &mut sqlx::AnyConnection,
    incident_id: i64,
    at: i64,
    kind: &str,
    actor: &str,
    message: &str,
    data: Option<serde_json::Value>,
) -> R<()> {
    sqlx::query(
        "INSERT INTO incident_events (incident_id, at, kind, actor, message, data) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(incident_id)
    .bind(at)
    .bind(kind)
    .bind(actor)
    .bind(message)
    .bind(data.map(|d| d.to_string()))
    .execute(&mut *conn)
    .await?;
    Ok(())
}
