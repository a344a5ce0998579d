//! What the engine loads per monitor: the policy columns, the alert state and the open
//! incident (decoded leniently), and what it knows about parent monitors.

use std::collections::HashMap;

use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use super::super::rows::{self, get};
use super::super::{Backend, R, params};
use crate::incidents::event::{IncidentFacts, MonitorFacts};
use crate::incidents::machine::{AlertState, Level, OpenIncident, Policy, Suppression};
use crate::model::{IncidentStatus, Severity, Status, WorkspaceId};

/// A stored `last_result_at` further than this in the future (epoch ms) is not trusted: a
/// result stamped by a clock that ran ahead would otherwise make every later result stale.
const FUTURE_TOLERANCE_MS: i64 = 10 * 60_000;

/// What the engine knows about one monitor of the batch.
#[derive(Debug)]
pub(in crate::store) struct EngineMonitor {
    pub(super) workspace_id: WorkspaceId,
    pub(super) name: String,
    pub(super) kind: String,
    pub(super) plugin: Option<String>,
    pub(super) enabled: bool,
    pub(super) policy: Policy,
    pub(super) alert: AlertState,
    /// Message of the result that opened the open incident.
    pub(super) incident_cause: String,
    pub(super) incident_acknowledged: bool,
    /// Tags, once loaded (for maintenance coverage and tag-bound channels).
    pub(super) tags: Option<Vec<String>>,
    /// Evaluated in this batch: its alert state is written back.
    pub(super) dirty: bool,
}

/// A non-negative count from the database as `u32` (clamped).
fn count(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

/// An optional integer column, `None` when NULL or not decodable.
pub(super) fn lenient_i64(row: &AnyRow, what: &'static str) -> Option<i64> {
    get::<Option<i64>>(row, what).ok().flatten()
}

/// An optional text column, `None` when NULL or not decodable.
pub(super) fn lenient_text(row: &AnyRow, what: &'static str) -> Option<String> {
    get::<Option<String>>(row, what).ok().flatten()
}

/// A stored severity name.
fn parse_severity(s: &str) -> Option<Severity> {
    match s {
        "down" => Some(Severity::Down),
        "degraded" => Some(Severity::Degraded),
        _ => None,
    }
}

impl EngineMonitor {
    /// Decodes `ENGINE_COLUMNS` of monitor `id` (workspace `workspace_id`); `now` in epoch ms.
    pub(in crate::store) fn from_row(
        row: &AnyRow,
        id: i64,
        workspace_id: WorkspaceId,
        now: i64,
    ) -> R<EngineMonitor> {
        let policy = Policy {
            failure_threshold: count(get(row, "monitors.failure_threshold")?),
            recovery_threshold: count(get(row, "monitors.recovery_threshold")?),
            notify_recovery: rows::flag(row, "monitors.notify_recovery")?,
            alert_on_degraded: rows::flag(row, "monitors.alert_on_degraded")?,
            error_counts_as_failure: rows::flag(row, "monitors.error_counts_as_failure")?,
        };
        let (mut alert, incident_cause, incident_acknowledged) = decode_alert(row, id);
        if alert
            .last_result_at
            .is_some_and(|t| t > now.saturating_add(FUTURE_TOLERANCE_MS))
        {
            tracing::warn!(
                monitor = id,
                last_result_at = ?alert.last_result_at,
                "the last evaluated result is in the future; newer results are evaluated again"
            );
            alert.last_result_at = None;
        }
        Ok(EngineMonitor {
            workspace_id,
            name: get(row, "monitors.name")?,
            kind: get(row, "monitors.kind")?,
            plugin: get(row, "monitors.plugin")?,
            enabled: rows::flag(row, "monitors.enabled")?,
            policy,
            alert,
            incident_cause,
            incident_acknowledged,
            tags: None,
            dirty: false,
        })
    }

    /// Facts of the open incident for a payload (`None` without one).
    pub(super) fn open_incident_facts(&self) -> Option<IncidentFacts<'_>> {
        self.alert.incident.map(|i| IncidentFacts {
            id: i.id,
            status: IncidentStatus::Open,
            severity: i.severity,
            opened_at: i.opened_at,
            resolved_at: None,
            acknowledged: self.incident_acknowledged,
            cause: &self.incident_cause,
        })
    }

    /// Facts of the monitor (`id`) for a payload.
    pub(super) fn facts(&self, id: i64) -> MonitorFacts<'_> {
        MonitorFacts {
            id,
            name: &self.name,
            kind: &self.kind,
            plugin: self.plugin.as_deref(),
            tags: self.tags.as_deref().unwrap_or(&[]),
        }
    }
}

/// The alert state of a monitor row, leniently: a corrupt part is reset with a warning.
/// Also the open incident's cause and whether it is acknowledged.
fn decode_alert(row: &AnyRow, id: i64) -> (AlertState, String, bool) {
    let Some(last_result_at) = lenient_i64(row, "alert_state.last_result_at") else {
        return (AlertState::default(), String::new(), false);
    };
    let level = lenient_text(row, "alert_state.level").and_then(|s| Level::parse(&s));
    let changes = match lenient_text(row, "alert_state.changes")
        .map(|s| serde_json::from_str::<Vec<i64>>(&s))
    {
        Some(Ok(c)) => c,
        other => {
            tracing::warn!(monitor = id, stored = ?other, "unreadable alert_state.changes; flap history reset");
            Vec::new()
        }
    };
    let mut state = AlertState {
        last_result_at: Some(last_result_at),
        level,
        fail_streak: count(lenient_i64(row, "alert_state.fail_streak").unwrap_or(0)),
        pass_streak: count(lenient_i64(row, "alert_state.pass_streak").unwrap_or(0)),
        streak_started_at: lenient_i64(row, "alert_state.streak_started_at"),
        streak_down: lenient_i64(row, "alert_state.streak_down") == Some(1),
        flapping: lenient_i64(row, "alert_state.flapping") == Some(1),
        changes,
        incident: None,
    };
    if level.is_none() {
        tracing::warn!(
            monitor = id,
            "unreadable alert_state.level; streaks restart"
        );
        state.fail_streak = 0;
        state.pass_streak = 0;
        state.streak_started_at = None;
    }
    let open = lenient_text(row, "incidents.incident_status").as_deref() == Some("open");
    let incident_id = lenient_i64(row, "incidents.open_incident_id");
    let (Some(incident_id), true) = (incident_id, open) else {
        return (state, String::new(), false);
    };
    let severity = lenient_text(row, "incidents.incident_severity")
        .and_then(|s| parse_severity(&s))
        .unwrap_or(Severity::Down);
    let suppressed = match lenient_text(row, "incidents.incident_suppressed").as_deref() {
        Some("parent") => Some(Suppression::Parent(
            lenient_i64(row, "incidents.incident_suppressed_by").unwrap_or(0),
        )),
        Some("flapping") => Some(Suppression::Flapping),
        _ => None,
    };
    state.incident = Some(OpenIncident {
        id: incident_id,
        severity,
        opened_at: lenient_i64(row, "incidents.incident_opened_at").unwrap_or(last_result_at),
        opened_notified: lenient_i64(row, "incidents.incident_opened_notified") == Some(1),
        suppressed,
    });
    let cause = lenient_text(row, "incidents.incident_cause").unwrap_or_default();
    let acknowledged = lenient_i64(row, "incidents.incident_acknowledged_at").is_some();
    (state, cause, acknowledged)
}

/// What the engine knows about a parent monitor: is it down right now?
#[derive(Debug, Clone)]
pub(super) struct ParentView {
    pub(super) name: String,
    /// It has an open incident.
    pub(super) incident_open: bool,
    /// Its live status and the start of the result that set it.
    pub(super) status: Option<Status>,
    pub(super) status_at: Option<i64>,
}

impl ParentView {
    /// Down: an open incident, or a live status of `down` or `error`.
    pub(super) fn is_down(&self) -> bool {
        self.incident_open || matches!(self.status, Some(Status::Down | Status::Error))
    }
}

/// Tags of the given monitors, sorted.
pub(in crate::store) async fn load_tags(
    conn: &mut AnyConnection,
    backend: Backend,
    ids: &[i64],
) -> R<HashMap<i64, Vec<String>>> {
    let mut out: HashMap<i64, Vec<String>> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let sql = format!(
        "SELECT monitor_id, tag FROM monitor_tags WHERE monitor_id IN ({})",
        params(backend, ids.len())
    );
    let mut q = sqlx::query(&sql).persistent(false);
    for id in ids {
        q = q.bind(*id);
    }
    for row in q.fetch_all(&mut *conn).await? {
        out.entry(get(&row, "monitor_tags.monitor_id")?)
            .or_default()
            .push(get(&row, "monitor_tags.tag")?);
    }
    for tags in out.values_mut() {
        tags.sort_unstable();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_views_count_incidents_and_failing_statuses() {
        let view = |incident_open, status| ParentView {
            name: "p".into(),
            incident_open,
            status,
            status_at: None,
        };
        assert!(view(true, Some(Status::Up)).is_down());
        assert!(view(false, Some(Status::Error)).is_down());
        assert!(view(false, Some(Status::Down)).is_down());
        assert!(!view(false, Some(Status::Degraded)).is_down());
        assert!(!view(false, None).is_down());
    }

    #[test]
    fn counts_are_clamped() {
        assert_eq!(count(-4), 0);
        assert_eq!(count(7), 7);
        assert_eq!(count(i64::MAX), u32::MAX);
    }
}
