//! Recording the state machine's effects: incident rows, timeline entries, and one outbox row
//! per channel bound to the monitor (named by it, default, or sharing a tag with it).

use serde_json::json;
use sqlx::AnyConnection;

use super::super::rows::{self, get};
use super::super::{CHUNK, R, value_rows};
use super::Engine;
use super::state::EngineMonitor;
use crate::incidents::event::{self, EventFacts, EventKind, IncidentFacts};
use crate::incidents::machine::{Delivery, Effect, Level, OpenIncident, Suppression};
use crate::model::{IncidentStatus, NewResult, Severity};

/// Columns of a `notifications` row written per channel.
const NOTIFICATION_WIDTH: usize = 11;

/// The result whose evaluation is being recorded.
pub(super) struct Subject<'r> {
    pub(super) id: i64,
    pub(super) result: &'r NewResult,
    /// Its start, epoch ms.
    pub(super) at: i64,
    /// Its message, made storable.
    pub(super) message: String,
    /// The open incident before this result.
    pub(super) before: Option<OpenIncident>,
}

impl<'r> Subject<'r> {
    /// The subject of result `r` of monitor `r.monitor_id`.
    pub(super) fn new(r: &'r NewResult, before: Option<OpenIncident>) -> Subject<'r> {
        Subject {
            id: r.monitor_id,
            result: r,
            at: rows::ms(r.started_at),
            message: rows::clean_text(&r.message).into_owned(),
            before,
        }
    }
}

/// An event to notify.
struct Event {
    kind: EventKind,
    /// Since when the monitor is in the state the event reports.
    since: Option<i64>,
    /// The incident as it is after the event.
    incident: Option<OwnedIncidentFacts>,
    /// The event's timeline entry, which keys its notifications (`None`: a monitor event
    /// without an incident, keyed by the result's time).
    entry: Option<i64>,
}

/// Incident facts that own their text (taken before the monitor is borrowed again).
#[derive(Debug, Clone)]
struct OwnedIncidentFacts {
    id: i64,
    status: IncidentStatus,
    severity: Severity,
    opened_at: i64,
    resolved_at: Option<i64>,
    acknowledged: bool,
    cause: String,
}

impl OwnedIncidentFacts {
    fn of(f: IncidentFacts<'_>) -> OwnedIncidentFacts {
        OwnedIncidentFacts {
            id: f.id,
            status: f.status,
            severity: f.severity,
            opened_at: f.opened_at,
            resolved_at: f.resolved_at,
            acknowledged: f.acknowledged,
            cause: f.cause.to_string(),
        }
    }

    fn borrow(&self) -> IncidentFacts<'_> {
        IncidentFacts {
            id: self.id,
            status: self.status,
            severity: self.severity,
            opened_at: self.opened_at,
            resolved_at: self.resolved_at,
            acknowledged: self.acknowledged,
            cause: &self.cause,
        }
    }
}

impl Engine {
    /// Records the effects of one evaluated result, in order.
    pub(super) async fn record(
        &mut self,
        conn: &mut AnyConnection,
        s: &Subject<'_>,
        m: &mut EngineMonitor,
        effects: &[Effect],
    ) -> R<()> {
        for effect in effects {
            match *effect {
                Effect::FlappingStarted => self.flapping_started(conn, s, m).await?,
                Effect::Opened {
                    opened_at,
                    severity,
                    delivery,
                } => {
                    self.opened(conn, s, m, opened_at, severity, delivery)
                        .await?
                }
                Effect::Escalated {
                    incident_id,
                    delivery,
                } => self.escalated(conn, s, m, incident_id, delivery).await?,
                Effect::Resolved {
                    incident_id,
                    resolved_at,
                    delivery,
                } => {
                    self.resolved(conn, s, m, incident_id, resolved_at, delivery)
                        .await?
                }
                Effect::ParentRecovered {
                    incident_id,
                    delivery,
                } => {
                    self.parent_recovered(conn, s, m, incident_id, delivery)
                        .await?
                }
                Effect::FlappingEnded { incident_notified } => {
                    self.flapping_ended(conn, s, m, incident_notified).await?
                }
            }
        }
        Ok(())
    }

    /// Timeline entry on the open incident (if any) and the `flapping` notification.
    async fn flapping_started(
        &mut self,
        conn: &mut AnyConnection,
        s: &Subject<'_>,
        m: &mut EngineMonitor,
    ) -> R<()> {
        let changes = m.alert.changes.len();
        let window_secs = self.settings.flap_window.as_secs();
        let entry = match s.before {
            Some(inc) => Some(
                timeline(
                    conn,
                    inc.id,
                    s.at,
                    "flapping_started",
                    &format!(
                        "{} is flapping: {changes} state changes within {}",
                        m.name,
                        human_secs(window_secs)
                    ),
                    json!({"changes": changes, "window_secs": window_secs}),
                )
                .await?,
            ),
            None => None,
        };
        let incident = s.before.map(|inc| OwnedIncidentFacts {
            id: inc.id,
            status: IncidentStatus::Open,
            severity: inc.severity,
            opened_at: inc.opened_at,
            resolved_at: None,
            acknowledged: m.incident_acknowledged,
            cause: m.incident_cause.clone(),
        });
        let event = Event {
            kind: EventKind::Flapping,
            since: m.alert.changes.first().copied(),
            incident,
            entry,
        };
        self.notify(conn, s, m, event).await
    }

    /// Inserts the incident, its `opened` entry, and notifies or records the suppression.
    async fn opened(
        &mut self,
        conn: &mut AnyConnection,
        s: &Subject<'_>,
        m: &mut EngineMonitor,
        opened_at: i64,
        severity: Severity,
        delivery: Delivery,
    ) -> R<()> {
        let notified = delivery == Delivery::Send;
        let suppression = match delivery {
            Delivery::Suppressed(why) => Some(why),
            _ => None,
        };
        let row = sqlx::query(
            "INSERT INTO incidents (workspace_id, monitor_id, monitor_name, severity, status, \
             cause, opened_at, suppressed, suppressed_by, opened_notified, last_notified_at, \
             updated_at) VALUES ($1, $2, $3, $4, 'open', $5, $6, $7, $8, $9, $10, $11) \
             RETURNING id",
        )
        .bind(m.workspace_id)
        .bind(s.id)
        .bind(m.name.as_str())
        .bind(severity.as_str())
        .bind(s.message.as_str())
        .bind(opened_at)
        .bind(suppression.map(Suppression::reason))
        .bind(suppression.and_then(Suppression::parent))
        .bind(i64::from(notified))
        .bind(notified.then_some(self.now))
        .bind(self.now)
        .fetch_one(&mut *conn)
        .await?;
        let incident_id: i64 = get(&row, "incidents.id")?;
        if let Some(inc) = m.alert.incident.as_mut() {
            inc.id = incident_id;
        }
        m.incident_cause = s.message.clone();
        m.incident_acknowledged = false;
        let entry = timeline(
            conn,
            incident_id,
            opened_at,
            "opened",
            &format!("{} is {}: {}", m.name, severity.as_str(), s.message),
            json!({"severity": severity.as_str(), "status": s.result.status.as_str(),
                   "detected_at": s.at}),
        )
        .await?;
        let kind = EventKind::Opened;
        self.deliver(
            conn,
            s,
            m,
            kind,
            delivery,
            incident_id,
            entry,
            Some(opened_at),
        )
        .await
    }

    /// Raises the severity to `down`, with its entry and notification.
    async fn escalated(
        &mut self,
        conn: &mut AnyConnection,
        s: &Subject<'_>,
        m: &mut EngineMonitor,
        incident_id: i64,
        delivery: Delivery,
    ) -> R<()> {
        sqlx::query("UPDATE incidents SET severity = 'down', updated_at = $1 WHERE id = $2")
            .bind(self.now)
            .bind(incident_id)
            .execute(&mut *conn)
            .await?;
        let entry = timeline(
            conn,
            incident_id,
            s.at,
            "escalated",
            &format!("{} escalated from degraded to down: {}", m.name, s.message),
            json!({"from": "degraded", "to": "down", "status": s.result.status.as_str()}),
        )
        .await?;
        let kind = EventKind::Escalated;
        self.deliver(conn, s, m, kind, delivery, incident_id, entry, Some(s.at))
            .await
    }

    /// Resolves the incident, with its entry and notification.
    async fn resolved(
        &mut self,
        conn: &mut AnyConnection,
        s: &Subject<'_>,
        m: &mut EngineMonitor,
        incident_id: i64,
        resolved_at: i64,
        delivery: Delivery,
    ) -> R<()> {
        let (severity, opened_at) = s
            .before
            .filter(|b| b.id == incident_id)
            .map_or((Severity::Down, resolved_at), |b| (b.severity, b.opened_at));
        sqlx::query(
            "UPDATE incidents SET status = 'resolved', resolved_at = $1, updated_at = $2 \
             WHERE id = $3",
        )
        .bind(resolved_at)
        .bind(self.now)
        .bind(incident_id)
        .execute(&mut *conn)
        .await?;
        let entry = timeline(
            conn,
            incident_id,
            resolved_at,
            "resolved",
            &format!(
                "{} recovered after {}: {}",
                m.name,
                human_ms(resolved_at - opened_at),
                s.message
            ),
            json!({"duration_ms": resolved_at - opened_at, "status": s.result.status.as_str()}),
        )
        .await?;
        match delivery {
            Delivery::Send => {
                let incident = OwnedIncidentFacts {
                    id: incident_id,
                    status: IncidentStatus::Resolved,
                    severity,
                    opened_at,
                    resolved_at: Some(resolved_at),
                    acknowledged: m.incident_acknowledged,
                    cause: m.incident_cause.clone(),
                };
                let event = Event {
                    kind: EventKind::Resolved,
                    since: Some(resolved_at),
                    incident: Some(incident),
                    entry: Some(entry),
                };
                self.notify(conn, s, m, event).await?;
            }
            Delivery::Suppressed(why) => {
                self.suppressed(conn, incident_id, s.at, EventKind::Resolved, why)
                    .await?;
            }
            Delivery::Skip => {}
        }
        m.incident_cause.clear();
        m.incident_acknowledged = false;
        Ok(())
    }

    /// Lifts the parent suppression and notifies the opening now (unless flapping).
    async fn parent_recovered(
        &mut self,
        conn: &mut AnyConnection,
        s: &Subject<'_>,
        m: &mut EngineMonitor,
        incident_id: i64,
        delivery: Delivery,
    ) -> R<()> {
        let notified = delivery == Delivery::Send;
        let flapping = matches!(delivery, Delivery::Suppressed(_));
        sqlx::query(
            "UPDATE incidents SET suppressed = $1, suppressed_by = NULL, opened_notified = $2, \
             last_notified_at = COALESCE($3, last_notified_at), updated_at = $4 WHERE id = $5",
        )
        .bind(flapping.then_some("flapping"))
        .bind(i64::from(notified))
        .bind(notified.then_some(self.now))
        .bind(self.now)
        .bind(incident_id)
        .execute(&mut *conn)
        .await?;
        let parent = s
            .before
            .and_then(|b| b.suppressed)
            .and_then(Suppression::parent);
        let entry = timeline(
            conn,
            incident_id,
            s.at,
            "parent_recovered",
            &format!(
                "{} recovered; {} is still failing, so the incident is notified now",
                self.parent_label(parent),
                m.name
            ),
            json!({"parent_id": parent}),
        )
        .await?;
        let since = m.alert.incident.map(|i| i.opened_at);
        let kind = EventKind::Opened;
        self.deliver(conn, s, m, kind, delivery, incident_id, entry, since)
            .await
    }

    /// Counts a flapping-suppressed incident as notified, entry and `flapping_ended` notification.
    async fn flapping_ended(
        &mut self,
        conn: &mut AnyConnection,
        s: &Subject<'_>,
        m: &mut EngineMonitor,
        incident_notified: Option<i64>,
    ) -> R<()> {
        if let Some(incident_id) = incident_notified {
            sqlx::query(
                "UPDATE incidents SET suppressed = NULL, opened_notified = 1, \
                 last_notified_at = $1, updated_at = $1 WHERE id = $2",
            )
            .bind(self.now)
            .bind(incident_id)
            .execute(&mut *conn)
            .await?;
        }
        let level = m.alert.level.map_or("unknown", Level::as_str);
        let entry = match m.alert.incident {
            Some(inc) => Some(
                timeline(
                    conn,
                    inc.id,
                    s.at,
                    "flapping_ended",
                    &format!("{} stopped flapping; it is {level} now", m.name),
                    json!({"level": level, "status": s.result.status.as_str()}),
                )
                .await?,
            ),
            None => None,
        };
        let event = Event {
            kind: EventKind::FlappingEnded,
            since: m.alert.streak_started_at,
            incident: m.open_incident_facts().map(OwnedIncidentFacts::of),
            entry,
        };
        self.notify(conn, s, m, event).await
    }

    /// `parent monitor "name" (#id)`, or `the parent monitor`.
    fn parent_label(&self, parent: Option<i64>) -> String {
        match parent {
            Some(p) => match self.views.get(&p) {
                Some(v) => format!("parent monitor \"{}\" (#{p})", v.name),
                None => format!("parent monitor #{p}"),
            },
            None => "the parent monitor".to_string(),
        }
    }

    /// Notifies an event of the open incident, or records why it is held back.
    #[allow(clippy::too_many_arguments)]
    async fn deliver(
        &mut self,
        conn: &mut AnyConnection,
        s: &Subject<'_>,
        m: &mut EngineMonitor,
        kind: EventKind,
        delivery: Delivery,
        incident_id: i64,
        entry: i64,
        since: Option<i64>,
    ) -> R<()> {
        match delivery {
            Delivery::Send => {
                let event = Event {
                    kind,
                    since,
                    incident: m.open_incident_facts().map(OwnedIncidentFacts::of),
                    entry: Some(entry),
                };
                self.notify(conn, s, m, event).await
            }
            Delivery::Suppressed(why) => self.suppressed(conn, incident_id, s.at, kind, why).await,
            Delivery::Skip => Ok(()),
        }
    }

    /// A `suppressed` timeline entry for an event held back for `why`.
    async fn suppressed(
        &self,
        conn: &mut AnyConnection,
        incident_id: i64,
        at: i64,
        kind: EventKind,
        why: Suppression,
    ) -> R<()> {
        let reason = match why {
            Suppression::Parent(p) => format!("{} is down", self.parent_label(Some(p))),
            Suppression::Flapping => "the monitor is flapping".to_string(),
        };
        timeline(
            conn,
            incident_id,
            at,
            "suppressed",
            &format!("Notification `{}` suppressed: {reason}", kind.as_str()),
            json!({"event": kind.as_str(), "reason": why.reason(), "parent_id": why.parent()}),
        )
        .await?;
        Ok(())
    }

    /// Writes one outbox row per channel bound to the monitor for an event.
    async fn notify(
        &mut self,
        conn: &mut AnyConnection,
        s: &Subject<'_>,
        m: &mut EngineMonitor,
        event: Event,
    ) -> R<()> {
        let channels = self.bound_channels(conn, s.id, m).await?;
        if channels.is_empty() {
            return Ok(());
        }
        let payload = event::payload(&EventFacts {
            kind: event.kind,
            occurred_at: s.at,
            monitor: m.facts(s.id),
            status: s.result.status,
            since: event.since,
            cause: &s.message,
            incident: event.incident.as_ref().map(OwnedIncidentFacts::borrow),
        })
        .to_string();
        let incident_id = event.incident.as_ref().map(|i| i.id);
        let (keyed_incident, unique) = match (incident_id, event.entry) {
            (Some(incident), Some(entry)) => (Some(incident), entry),
            _ => (None, s.at),
        };
        for chunk in channels.chunks(CHUNK / NOTIFICATION_WIDTH) {
            let sql = format!(
                "INSERT INTO notifications (workspace_id, channel_id, incident_id, monitor_id, \
                 event, idempotency_key, payload, status, attempts, next_attempt_at, created_at) \
                 VALUES {} ON CONFLICT (idempotency_key) DO NOTHING",
                value_rows(self.backend, chunk.len(), NOTIFICATION_WIDTH)
            );
            let mut q = sqlx::query(&sql).persistent(false);
            for channel in chunk {
                let key =
                    event::idempotency_key(keyed_incident, s.id, event.kind, unique, *channel);
                q = q
                    .bind(m.workspace_id)
                    .bind(*channel)
                    .bind(incident_id)
                    .bind(s.id)
                    .bind(event.kind.as_str())
                    .bind(key)
                    .bind(payload.as_str())
                    .bind("pending")
                    .bind(0_i64)
                    .bind(self.now)
                    .bind(self.now);
            }
            self.notifications += q.execute(&mut *conn).await?.rows_affected();
        }
        Ok(())
    }
}

/// Appends a system entry to an incident's timeline; its id.
pub(super) async fn timeline(
    conn: &mut AnyConnection,
    incident_id: i64,
    at: i64,
    kind: &str,
    message: &str,
    data: serde_json::Value,
) -> R<i64> {
    let row = sqlx::query(
        "INSERT INTO incident_events (incident_id, at, kind, actor, message, data) \
         VALUES ($1, $2, $3, 'system', $4, $5) RETURNING id",
    )
    .bind(incident_id)
    .bind(at)
    .bind(kind)
    .bind(rows::clean_text(message).into_owned())
    .bind(data.to_string())
    .fetch_one(&mut *conn)
    .await?;
    get(&row, "incident_events.id")
}

/// `90 s`, `10 min`, `2 h` for a window length.
fn human_secs(secs: u64) -> String {
    if secs.is_multiple_of(3600) && secs >= 3600 {
        format!("{} h", secs / 3600)
    } else if secs.is_multiple_of(60) && secs >= 60 {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}

/// A rough duration: `45 s`, `12 min`, `3 h 5 min`, `2 d 4 h`.
fn human_ms(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(human_secs(600), "10 min");
        assert_eq!(human_secs(7200), "2 h");
        assert_eq!(human_secs(90), "90 s");
        assert_eq!(human_ms(-5), "0 s");
        assert_eq!(human_ms(61_000), "1 min");
        assert_eq!(human_ms(3_900_000), "1 h 5 min");
        assert_eq!(human_ms(90_000_000), "1 d 1 h");
    }
}
