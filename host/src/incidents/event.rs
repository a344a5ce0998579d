//! Outbox events written by the engine: their names, the JSON payload the notification
//! dispatcher renders into the event document, and notification idempotency keys.
//!
//! Payload (times in epoch milliseconds):
//! `{"kind": "incident.opened" | "incident.escalated" | "incident.resolved" | "monitor.flapping"
//! | "monitor.flapping_ended", "occurred_at": ms, "monitor": {"id", "name", "type", "plugin",
//! "tags"}, "status": "up|degraded|down|error", "since": ms | null, "cause": "…", "incident":
//! {"id", "status", "severity", "opened_at", "resolved_at", "acknowledged", "cause"} | null}`.

use serde_json::{Value, json};

use crate::model::{IncidentStatus, Severity, Status};

/// An event the engine notifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    Opened,
    Escalated,
    Resolved,
    Flapping,
    FlappingEnded,
}

impl EventKind {
    /// The `notifications.event` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opened => "opened",
            Self::Escalated => "escalated",
            Self::Resolved => "resolved",
            Self::Flapping => "flapping",
            Self::FlappingEnded => "flapping_ended",
        }
    }

    /// The `kind` of the event document.
    pub fn kind(self) -> &'static str {
        match self {
            Self::Opened => "incident.opened",
            Self::Escalated => "incident.escalated",
            Self::Resolved => "incident.resolved",
            Self::Flapping => "monitor.flapping",
            Self::FlappingEnded => "monitor.flapping_ended",
        }
    }
}

/// The monitor an event is about.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorFacts<'a> {
    pub id: i64,
    pub name: &'a str,
    /// `check` or `push`.
    pub kind: &'a str,
    pub plugin: Option<&'a str>,
    pub tags: &'a [String],
}

/// The incident an event is about, as it is after the event.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentFacts<'a> {
    pub id: i64,
    pub status: IncidentStatus,
    pub severity: Severity,
    pub opened_at: i64,
    pub resolved_at: Option<i64>,
    pub acknowledged: bool,
    pub cause: &'a str,
}

/// Everything a payload says.
#[derive(Debug, Clone, PartialEq)]
pub struct EventFacts<'a> {
    pub kind: EventKind,
    /// Start of the result that caused the event.
    pub occurred_at: i64,
    pub monitor: MonitorFacts<'a>,
    /// Status of that result.
    pub status: Status,
    /// Since when the monitor is in the state the event reports (start of the streak).
    pub since: Option<i64>,
    /// Message of that result.
    pub cause: &'a str,
    pub incident: Option<IncidentFacts<'a>>,
}

/// The `notifications.payload` document of an event.
pub fn payload(f: &EventFacts<'_>) -> Value {
    json!({
        "kind": f.kind.kind(),
        "occurred_at": f.occurred_at,
        "monitor": {
            "id": f.monitor.id,
            "name": f.monitor.name,
            "type": f.monitor.kind,
            "plugin": f.monitor.plugin,
            "tags": f.monitor.tags,
        },
        "status": f.status.as_str(),
        "since": f.since,
        "cause": f.cause,
        "incident": f.incident.as_ref().map(|i| json!({
            "id": i.id,
            "status": i.status.as_str(),
            "severity": i.severity.as_str(),
            "opened_at": i.opened_at,
            "resolved_at": i.resolved_at,
            "acknowledged": i.acknowledged,
            "cause": i.cause,
        })),
    })
}

/// The idempotency key of the notification of one event to one channel:
/// `pharos-<incident id | m<monitor id>>-<event>-<unique>-c<channel id>`, where `unique` is the
/// id of the event's timeline entry (incident events) or the start time of the result that
/// caused it (monitor events without an incident; a monitor evaluates each time once).
pub fn idempotency_key(
    incident: Option<i64>,
    monitor: i64,
    kind: EventKind,
    unique: i64,
    channel: i64,
) -> String {
    let subject = match incident {
        Some(id) => id.to_string(),
        None => format!("m{monitor}"),
    };
    format!("pharos-{subject}-{}-{unique}-c{channel}", kind.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_carries_the_facts() {
        let tags = vec!["prod".to_string()];
        let facts = EventFacts {
            kind: EventKind::Opened,
            occurred_at: 2_000,
            monitor: MonitorFacts {
                id: 3,
                name: "api",
                kind: "check",
                plugin: Some("http"),
                tags: &tags,
            },
            status: Status::Down,
            since: Some(1_000),
            cause: "expected 200, got 503",
            incident: Some(IncidentFacts {
                id: 7,
                status: IncidentStatus::Open,
                severity: Severity::Down,
                opened_at: 1_000,
                resolved_at: None,
                acknowledged: false,
                cause: "expected 200, got 503",
            }),
        };
        let p = payload(&facts);
        assert_eq!(p["kind"], "incident.opened");
        assert_eq!(p["monitor"]["tags"], json!(["prod"]));
        assert_eq!(p["monitor"]["type"], "check");
        assert_eq!(p["status"], "down");
        assert_eq!(p["incident"]["severity"], "down");
        assert_eq!(p["incident"]["resolved_at"], Value::Null);
        let flapping = EventFacts {
            kind: EventKind::Flapping,
            incident: None,
            since: None,
            ..facts
        };
        let p = payload(&flapping);
        assert_eq!(p["kind"], "monitor.flapping");
        assert_eq!(p["incident"], Value::Null);
        assert_eq!(p["since"], Value::Null);
    }

    #[test]
    fn keys_name_subject_event_and_channel() {
        assert_eq!(
            idempotency_key(Some(7), 3, EventKind::Resolved, 41, 2),
            "pharos-7-resolved-41-c2"
        );
        assert_eq!(
            idempotency_key(None, 3, EventKind::FlappingEnded, 1_700, 9),
            "pharos-m3-flapping_ended-1700-c9"
        );
    }
}
