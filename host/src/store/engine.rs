//! The incident engine inside the transaction of [`Store::insert_results`]: loads the alert
//! state, policies, open incidents, parents and maintenance windows of a batch's monitors,
//! flags results covered by maintenance, runs the state machine
//! ([`crate::incidents::machine`]) over the evaluated results in time order, and records what
//! happened: incidents, timeline entries, outbox rows (one per bound channel) and the new
//! alert state. Only actual transitions cost per-event queries.
//!
//! Decoding of the engine's own state is lenient: a corrupt `alert_state` row restarts that
//! monitor's streaks (with a warning) rather than failing the batch, because a failed batch
//! would lose results.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use serde_json::json;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use super::rows::{self, get};
use super::{Backend, CHUNK, R, Store, params, value_rows};
use crate::incidents::event::{self, EventFacts, EventKind, IncidentFacts, MonitorFacts};
use crate::incidents::machine::{
    self, AlertState, Delivery, Effect, EngineSettings, Level, OpenIncident, Outcome, Policy,
    Suppression,
};
use crate::maintenance::MaintenancePlan;
use crate::model::{IncidentStatus, NewResult, Severity, Status, WorkspaceId};

/// Columns the engine reads per monitor, over `monitors m` joined with [`ENGINE_JOINS`].
pub(super) const ENGINE_COLUMNS: &str = "m.name, m.kind, m.plugin, m.enabled, \
     m.failure_threshold, m.recovery_threshold, m.notify_recovery, m.alert_on_degraded, \
     m.error_counts_as_failure, a.last_result_at, a.level, a.fail_streak, a.pass_streak, \
     a.streak_started_at, a.streak_down, a.flapping, a.changes, i.id AS open_incident_id, \
     i.status AS incident_status, i.severity AS incident_severity, \
     i.opened_at AS incident_opened_at, i.cause AS incident_cause, \
     i.acknowledged_at AS incident_acknowledged_at, i.suppressed AS incident_suppressed, \
     i.suppressed_by AS incident_suppressed_by, i.opened_notified AS incident_opened_notified";
/// Joins that [`ENGINE_COLUMNS`] need.
pub(super) const ENGINE_JOINS: &str = "LEFT JOIN alert_state a ON a.monitor_id = m.id \
     LEFT JOIN incidents i ON i.id = a.incident_id";

/// Columns of an `alert_state` row written per monitor.
const ALERT_WIDTH: usize = 10;
/// Columns of a `notifications` row written per channel.
const NOTIFICATION_WIDTH: usize = 11;

/// Engine settings and the outbox signal, shared by every clone of a [`Store`].
#[derive(Debug, Default)]
pub(super) struct EngineShared {
    settings: std::sync::RwLock<EngineSettings>,
    /// Woken (one permit stored) after a batch wrote outbox rows.
    outbox: tokio::sync::Notify,
}

impl Store {
    /// Sets the flap detection settings used from the next result batch on (defaults: 5
    /// changes in 10 minutes). Shared by every clone of this store.
    pub fn set_engine_settings(&self, settings: EngineSettings) {
        match self.engine.settings.write() {
            Ok(mut s) => *s = settings,
            Err(poisoned) => *poisoned.into_inner() = settings,
        }
    }

    /// The engine settings in use.
    pub fn engine_settings(&self) -> EngineSettings {
        match self.engine.settings.read() {
            Ok(s) => *s,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }

    /// Waits until a result batch has written notifications since the last wait returned
    /// (a permit is kept when nobody waits, so a wake-up is never lost). The dispatcher
    /// should still poll now and then: other nodes write outbox rows too.
    pub async fn outbox_written(&self) {
        self.engine.outbox.notified().await
    }

    /// Wakes [`Store::outbox_written`].
    pub(super) fn signal_outbox(&self) {
        self.engine.outbox.notify_one();
    }
}

/// New shared engine state with default settings.
pub(super) fn shared() -> Arc<EngineShared> {
    Arc::new(EngineShared::default())
}

/// What the engine knows about one monitor of the batch.
#[derive(Debug)]
pub(super) struct EngineMonitor {
    workspace_id: WorkspaceId,
    name: String,
    kind: String,
    plugin: Option<String>,
    enabled: bool,
    policy: Policy,
    alert: AlertState,
    /// Message of the open incident's first result.
    incident_cause: String,
    incident_acknowledged: bool,
    /// Tags, once loaded (for maintenance coverage and tag-bound channels).
    tags: Option<Vec<String>>,
    /// Evaluated in this batch: its alert state is written back.
    dirty: bool,
}

/// A non-negative count from the database as `u32` (clamped).
fn count(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

/// An optional integer column, `None` when NULL or not decodable.
fn lenient_i64(row: &AnyRow, what: &'static str) -> Option<i64> {
    get::<Option<i64>>(row, what).ok().flatten()
}

/// An optional text column, `None` when NULL or not decodable.
fn lenient_text(row: &AnyRow, what: &'static str) -> Option<String> {
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
    /// Decodes [`ENGINE_COLUMNS`] of monitor `id` (workspace `workspace_id`).
    pub(super) fn from_row(row: &AnyRow, id: i64, workspace_id: WorkspaceId) -> R<EngineMonitor> {
        let policy = Policy {
            failure_threshold: count(get(row, "monitors.failure_threshold")?),
            recovery_threshold: count(get(row, "monitors.recovery_threshold")?),
            notify_recovery: rows::flag(row, "monitors.notify_recovery")?,
            alert_on_degraded: rows::flag(row, "monitors.alert_on_degraded")?,
            error_counts_as_failure: rows::flag(row, "monitors.error_counts_as_failure")?,
        };
        let (alert, incident_cause, incident_acknowledged) = decode_alert(row, id);
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
    fn open_incident_facts(&self) -> Option<IncidentFacts<'_>> {
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

    fn facts(&self, id: i64) -> MonitorFacts<'_> {
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
struct ParentView {
    name: String,
    /// It has an open incident.
    incident_open: bool,
    /// Its live status and the start of the result that set it.
    status: Option<Status>,
    status_at: Option<i64>,
}

impl ParentView {
    fn is_down(&self) -> bool {
        self.incident_open || matches!(self.status, Some(Status::Down | Status::Error))
    }
}

/// An enabled maintenance window of one of the batch's workspaces.
struct Window {
    workspace_id: WorkspaceId,
    monitor_ids: HashSet<i64>,
    tags: Vec<String>,
    plan: MaintenancePlan,
}

/// A channel that may be bound to monitors of its workspace.
#[derive(Debug, Clone)]
struct ChannelBinding {
    id: i64,
    is_default: bool,
    tags: Vec<String>,
}

/// The engine for one batch.
pub(super) struct Engine {
    backend: Backend,
    settings: EngineSettings,
    /// Wall clock of this batch (notification and incident row times).
    now: i64,
    monitors: HashMap<i64, EngineMonitor>,
    /// Parents of each monitor of the batch that has any (sorted, self excluded).
    parents: HashMap<i64, Vec<i64>>,
    views: HashMap<i64, ParentView>,
    windows: Vec<Window>,
    /// Enabled channels per workspace, loaded when a first notification needs them.
    channels: HashMap<WorkspaceId, Vec<ChannelBinding>>,
    /// Channels each monitor of the batch names explicitly, and every monitor's tags, loaded
    /// for the whole batch when a first notification needs them (a mass outage then costs
    /// two queries, not two per monitor).
    explicit: Option<HashMap<i64, HashSet<i64>>>,
    /// Outbox rows written.
    notifications: u64,
}

impl Engine {
    /// An engine over the batch's monitors (decoded with [`EngineMonitor::from_row`]).
    pub(super) fn new(
        backend: Backend,
        settings: EngineSettings,
        monitors: HashMap<i64, EngineMonitor>,
    ) -> Engine {
        Engine {
            backend,
            settings,
            now: rows::ms(rows::now()),
            monitors,
            parents: HashMap::new(),
            views: HashMap::new(),
            windows: Vec::new(),
            channels: HashMap::new(),
            explicit: None,
            notifications: 0,
        }
    }

    /// Outbox rows written so far.
    pub(super) fn notifications(&self) -> u64 {
        self.notifications
    }

    /// Loads what evaluation needs besides the monitor rows: parents and their state, the
    /// enabled maintenance windows of the batch's workspaces, and tags when a window is
    /// tag-scoped. Call before the batch changes any live state.
    pub(super) async fn load(&mut self, conn: &mut AnyConnection) -> R<()> {
        let ids: Vec<i64> = {
            let mut ids: Vec<i64> = self.monitors.keys().copied().collect();
            ids.sort_unstable();
            ids
        };
        for chunk in ids.chunks(CHUNK) {
            let sql = format!(
                "SELECT d.monitor_id, d.parent_id, p.name AS parent_name, \
                 a.incident_id AS parent_incident, s.status AS parent_status, \
                 s.last_checked_at AS parent_checked_at \
                 FROM monitor_dependencies d JOIN monitors p ON p.id = d.parent_id \
                 LEFT JOIN alert_state a ON a.monitor_id = d.parent_id \
                 LEFT JOIN monitor_state s ON s.monitor_id = d.parent_id \
                 WHERE d.monitor_id IN ({})",
                params(self.backend, chunk.len())
            );
            let mut q = sqlx::query(&sql).persistent(chunk.len() == CHUNK);
            for id in chunk {
                q = q.bind(*id);
            }
            for row in q.fetch_all(&mut *conn).await? {
                let child: i64 = get(&row, "monitor_dependencies.monitor_id")?;
                let parent: i64 = get(&row, "monitor_dependencies.parent_id")?;
                if child == parent {
                    continue;
                }
                self.parents.entry(child).or_default().push(parent);
                let status = lenient_text(&row, "monitor_state.parent_status")
                    .and_then(|s| rows::status(&s, "monitor_state.status").ok());
                self.views.entry(parent).or_insert_with(|| ParentView {
                    name: get(&row, "monitors.parent_name").unwrap_or_default(),
                    incident_open: lenient_i64(&row, "alert_state.parent_incident").is_some(),
                    status,
                    status_at: lenient_i64(&row, "monitor_state.parent_checked_at"),
                });
            }
        }
        for list in self.parents.values_mut() {
            list.sort_unstable();
            list.dedup();
        }

        let workspaces: BTreeSet<WorkspaceId> =
            self.monitors.values().map(|m| m.workspace_id).collect();
        let workspaces: Vec<WorkspaceId> = workspaces.into_iter().collect();
        let sql = format!(
            "SELECT {} FROM maintenance_windows w WHERE w.enabled = 1 AND w.workspace_id IN ({})",
            super::maintenance::WINDOW_COLUMNS,
            params(self.backend, workspaces.len())
        );
        let mut q = sqlx::query(&sql).persistent(false);
        for ws in &workspaces {
            q = q.bind(*ws);
        }
        for row in q.fetch_all(&mut *conn).await? {
            match super::maintenance::window_from_row(&row) {
                Ok(w) => self.windows.push(Window {
                    workspace_id: w.workspace_id,
                    monitor_ids: w.spec.monitor_ids.iter().copied().collect(),
                    plan: w.spec.plan(),
                    tags: w.spec.tags,
                }),
                Err(e) => {
                    tracing::warn!(error = %e, "a maintenance window cannot be read; it is ignored");
                }
            }
        }
        if self.windows.iter().any(|w| !w.tags.is_empty()) {
            for chunk in ids.chunks(CHUNK) {
                let mut tags = load_tags(conn, self.backend, chunk).await?;
                for id in chunk {
                    if let Some(m) = self.monitors.get_mut(id) {
                        m.tags = Some(tags.remove(id).unwrap_or_default());
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether a maintenance window covers the result's monitor at its start.
    pub(super) fn in_maintenance(&self, r: &NewResult) -> bool {
        if self.windows.is_empty() {
            return false;
        }
        let Some(m) = self.monitors.get(&r.monitor_id) else {
            return false;
        };
        let tags = m.tags.as_deref().unwrap_or(&[]);
        self.windows.iter().any(|w| {
            w.workspace_id == m.workspace_id
                && (w.monitor_ids.contains(&r.monitor_id)
                    || tags.iter().any(|t| w.tags.contains(t)))
                && w.plan.is_active_at(r.started_at)
        })
    }

    /// A parent of `id` that is down right now, if any (the lowest id).
    fn parent_down(&self, id: i64) -> Option<i64> {
        self.parents.get(&id).and_then(|ps| {
            ps.iter()
                .copied()
                .find(|p| self.views.get(p).is_some_and(ParentView::is_down))
        })
    }

    /// Evaluates the batch's results in start order (ties in batch order), skipping results
    /// in maintenance (`maintenance[i]` for `results[i]`) and of paused monitors, and records
    /// every transition.
    pub(super) async fn evaluate(
        &mut self,
        conn: &mut AnyConnection,
        results: &[&NewResult],
        maintenance: &[bool],
    ) -> R<()> {
        let mut order: Vec<usize> = (0..results.len()).collect();
        order.sort_by_key(|&i| (results[i].started_at, i));
        for i in order {
            let r = results[i];
            let id = r.monitor_id;
            let at = rows::ms(r.started_at);
            let in_maintenance = maintenance.get(i).copied().unwrap_or(false);
            let parent_down = self.parent_down(id);
            if let Some(mut m) = self.monitors.remove(&id) {
                if m.enabled && !in_maintenance {
                    let before = m.alert.incident;
                    let outcome = machine::step(
                        &mut m.alert,
                        &m.policy,
                        &self.settings,
                        at,
                        r.status,
                        parent_down,
                    );
                    if let Outcome::Evaluated(effects) = outcome {
                        m.dirty = true;
                        let applied = self.record(conn, id, &mut m, r, before, &effects).await;
                        if let Err(e) = applied {
                            self.monitors.insert(id, m);
                            return Err(e);
                        }
                    }
                }
                let incident_open = m.alert.incident.is_some();
                self.monitors.insert(id, m);
                if let Some(view) = self.views.get_mut(&id) {
                    view.incident_open = incident_open;
                    if view.status_at.is_none_or(|s| at >= s) {
                        view.status = Some(r.status);
                        view.status_at = Some(at);
                    }
                }
            }
        }
        Ok(())
    }

    /// Records the effects of one evaluated result of monitor `id`.
    async fn record(
        &mut self,
        conn: &mut AnyConnection,
        id: i64,
        m: &mut EngineMonitor,
        r: &NewResult,
        before: Option<OpenIncident>,
        effects: &[Effect],
    ) -> R<()> {
        let at = rows::ms(r.started_at);
        let message = rows::clean_text(&r.message).into_owned();
        for effect in effects {
            match *effect {
                Effect::FlappingStarted => {
                    let changes = m.alert.changes.len();
                    let window_secs = self.settings.flap_window.as_secs();
                    let since = m.alert.changes.first().copied();
                    let entry = match before {
                        Some(inc) => Some(
                            timeline(
                                conn,
                                inc.id,
                                at,
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
                    let facts = before.map(|inc| IncidentFacts {
                        id: inc.id,
                        status: IncidentStatus::Open,
                        severity: inc.severity,
                        opened_at: inc.opened_at,
                        resolved_at: None,
                        acknowledged: m.incident_acknowledged,
                        cause: &m.incident_cause,
                    });
                    let facts = facts.map(owned_facts);
                    self.notify(conn, id, m, EventKind::Flapping, r, since, facts, entry)
                        .await?;
                }
                Effect::Opened {
                    opened_at,
                    severity,
                    delivery,
                } => {
                    let notified = delivery == Delivery::Send;
                    let suppression = match delivery {
                        Delivery::Suppressed(s) => Some(s),
                        _ => None,
                    };
                    let row = sqlx::query(
                        "INSERT INTO incidents (workspace_id, monitor_id, monitor_name, \
                         severity, status, cause, opened_at, suppressed, suppressed_by, \
                         opened_notified, last_notified_at, updated_at) \
                         VALUES ($1, $2, $3, $4, 'open', $5, $6, $7, $8, $9, $10, $11) \
                         RETURNING id",
                    )
                    .bind(m.workspace_id)
                    .bind(id)
                    .bind(m.name.as_str())
                    .bind(severity.as_str())
                    .bind(message.as_str())
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
                    m.incident_cause = message.clone();
                    m.incident_acknowledged = false;
                    let entry = timeline(
                        conn,
                        incident_id,
                        opened_at,
                        "opened",
                        &format!("{} is {}: {message}", m.name, severity.as_str()),
                        json!({"severity": severity.as_str(), "status": r.status.as_str(),
                               "detected_at": at}),
                    )
                    .await?;
                    self.deliver(
                        conn,
                        id,
                        m,
                        r,
                        EventKind::Opened,
                        delivery,
                        incident_id,
                        entry,
                        Some(opened_at),
                    )
                    .await?;
                }
                Effect::Escalated {
                    incident_id,
                    delivery,
                } => {
                    sqlx::query(
                        "UPDATE incidents SET severity = 'down', updated_at = $1 WHERE id = $2",
                    )
                    .bind(self.now)
                    .bind(incident_id)
                    .execute(&mut *conn)
                    .await?;
                    let entry = timeline(
                        conn,
                        incident_id,
                        at,
                        "escalated",
                        &format!("{} escalated from degraded to down: {message}", m.name),
                        json!({"from": "degraded", "to": "down", "status": r.status.as_str()}),
                    )
                    .await?;
                    self.deliver(
                        conn,
                        id,
                        m,
                        r,
                        EventKind::Escalated,
                        delivery,
                        incident_id,
                        entry,
                        Some(at),
                    )
                    .await?;
                }
                Effect::Resolved {
                    incident_id,
                    resolved_at,
                    delivery,
                } => {
                    sqlx::query(
                        "UPDATE incidents SET status = 'resolved', resolved_at = $1, \
                         updated_at = $2 WHERE id = $3",
                    )
                    .bind(resolved_at)
                    .bind(self.now)
                    .bind(incident_id)
                    .execute(&mut *conn)
                    .await?;
                    let (severity, opened_at) = before
                        .filter(|b| b.id == incident_id)
                        .map_or((Severity::Down, resolved_at), |b| (b.severity, b.opened_at));
                    let entry = timeline(
                        conn,
                        incident_id,
                        resolved_at,
                        "resolved",
                        &format!(
                            "{} recovered after {}: {message}",
                            m.name,
                            human_ms(resolved_at - opened_at)
                        ),
                        json!({"duration_ms": resolved_at - opened_at,
                               "status": r.status.as_str()}),
                    )
                    .await?;
                    let facts = OwnedIncidentFacts {
                        id: incident_id,
                        status: IncidentStatus::Resolved,
                        severity,
                        opened_at,
                        resolved_at: Some(resolved_at),
                        acknowledged: m.incident_acknowledged,
                        cause: m.incident_cause.clone(),
                    };
                    match delivery {
                        Delivery::Send => {
                            self.notify(
                                conn,
                                id,
                                m,
                                EventKind::Resolved,
                                r,
                                Some(resolved_at),
                                Some(facts),
                                Some(entry),
                            )
                            .await?;
                        }
                        Delivery::Suppressed(s) => {
                            self.suppressed(conn, incident_id, at, EventKind::Resolved, s)
                                .await?;
                        }
                        Delivery::Skip => {}
                    }
                    m.incident_cause.clear();
                    m.incident_acknowledged = false;
                }
                Effect::ParentRecovered {
                    incident_id,
                    delivery,
                } => {
                    let notified = delivery == Delivery::Send;
                    let flapping = matches!(delivery, Delivery::Suppressed(_));
                    sqlx::query(
                        "UPDATE incidents SET suppressed = $1, suppressed_by = NULL, \
                         opened_notified = $2, last_notified_at = COALESCE($3, last_notified_at), \
                         updated_at = $4 WHERE id = $5",
                    )
                    .bind(flapping.then_some("flapping"))
                    .bind(i64::from(notified))
                    .bind(notified.then_some(self.now))
                    .bind(self.now)
                    .bind(incident_id)
                    .execute(&mut *conn)
                    .await?;
                    let parent = before.and_then(|b| b.suppressed).and_then(Suppression::parent);
                    let entry = timeline(
                        conn,
                        incident_id,
                        at,
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
                    self.deliver(
                        conn,
                        id,
                        m,
                        r,
                        EventKind::Opened,
                        delivery,
                        incident_id,
                        entry,
                        since,
                    )
                    .await?;
                }
                Effect::FlappingEnded { incident_notified } => {
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
                                at,
                                "flapping_ended",
                                &format!("{} stopped flapping; it is {level} now", m.name),
                                json!({"level": level, "status": r.status.as_str()}),
                            )
                            .await?,
                        ),
                        None => None,
                    };
                    let facts = m.open_incident_facts().map(owned_facts);
                    let since = m.alert.streak_started_at;
                    self.notify(conn, id, m, EventKind::FlappingEnded, r, since, facts, entry)
                        .await?;
                }
            }
        }
        Ok(())
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

    /// Notifies (or records the suppression of) an incident event.
    #[allow(clippy::too_many_arguments)]
    async fn deliver(
        &mut self,
        conn: &mut AnyConnection,
        id: i64,
        m: &mut EngineMonitor,
        r: &NewResult,
        kind: EventKind,
        delivery: Delivery,
        incident_id: i64,
        entry: i64,
        since: Option<i64>,
    ) -> R<()> {
        match delivery {
            Delivery::Send => {
                let facts = m.open_incident_facts().map(owned_facts);
                self.notify(conn, id, m, kind, r, since, facts, Some(entry))
                    .await
            }
            Delivery::Suppressed(s) => {
                self.suppressed(conn, incident_id, rows::ms(r.started_at), kind, s)
                    .await
            }
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
    ///
    /// `entry`: the event's timeline entry (keys the notification); `None` for a monitor
    /// event without an incident.
    #[allow(clippy::too_many_arguments)]
    async fn notify(
        &mut self,
        conn: &mut AnyConnection,
        id: i64,
        m: &mut EngineMonitor,
        kind: EventKind,
        r: &NewResult,
        since: Option<i64>,
        incident: Option<OwnedIncidentFacts>,
        entry: Option<i64>,
    ) -> R<()> {
        let channels = self.bound_channels(conn, id, m).await?;
        if channels.is_empty() {
            return Ok(());
        }
        let message = rows::clean_text(&r.message);
        let at = rows::ms(r.started_at);
        let payload = event::payload(&EventFacts {
            kind,
            occurred_at: at,
            monitor: m.facts(id),
            status: r.status,
            since,
            cause: &message,
            incident: incident.as_ref().map(OwnedIncidentFacts::borrow),
        })
        .to_string();
        let incident_id = incident.as_ref().map(|i| i.id);
        let unique = match (incident_id, entry) {
            (Some(_), Some(entry)) => entry,
            _ => at,
        };
        let keyed_incident = incident_id.filter(|_| entry.is_some());
        for chunk in channels.chunks(CHUNK / NOTIFICATION_WIDTH) {
            let sql = format!(
                "INSERT INTO notifications (workspace_id, channel_id, incident_id, monitor_id, \
                 event, idempotency_key, payload, status, attempts, next_attempt_at, created_at) \
                 VALUES {} ON CONFLICT (idempotency_key) DO NOTHING",
                value_rows(self.backend, chunk.len(), NOTIFICATION_WIDTH)
            );
            let mut q = sqlx::query(&sql).persistent(false);
            for channel in chunk {
                q = q
                    .bind(m.workspace_id)
                    .bind(*channel)
                    .bind(incident_id)
                    .bind(id)
                    .bind(kind.as_str())
                    .bind(event::idempotency_key(
                        keyed_incident,
                        id,
                        kind,
                        unique,
                        *channel,
                    ))
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

    /// Enabled channels of the monitor's workspace bound to it: named by the monitor,
    /// default, or sharing a tag with it; ids ascending.
    async fn bound_channels(
        &mut self,
        conn: &mut AnyConnection,
        id: i64,
        m: &mut EngineMonitor,
    ) -> R<Vec<i64>> {
        let ws = m.workspace_id;
        if !self.channels.contains_key(&ws) {
            let rows = sqlx::query(
                "SELECT id, is_default, tags FROM channels WHERE workspace_id = $1 \
                 AND enabled = 1 ORDER BY id",
            )
            .bind(ws)
            .fetch_all(&mut *conn)
            .await?;
            let mut list = Vec::with_capacity(rows.len());
            for row in rows {
                let channel = get::<i64>(&row, "channels.id")?;
                let tags = rows::json::<Vec<String>>(&row, "channels.tags").unwrap_or_else(|e| {
                    tracing::warn!(channel, error = %e, "unreadable channel tags; ignored");
                    Vec::new()
                });
                list.push(ChannelBinding {
                    id: channel,
                    is_default: get::<i64>(&row, "channels.is_default")? == 1,
                    tags,
                });
            }
            self.channels.insert(ws, list);
        }
        if self.channels.get(&ws).is_none_or(Vec::is_empty) {
            return Ok(Vec::new());
        }
        if self.explicit.is_none() {
            self.load_bindings(conn, id, m).await?;
        }
        let tags = m.tags.as_deref().unwrap_or(&[]);
        let explicit = self.explicit.as_ref().and_then(|e| e.get(&id));
        Ok(self
            .channels
            .get(&ws)
            .map(|list| {
                list.iter()
                    .filter(|c| {
                        c.is_default
                            || explicit.is_some_and(|e| e.contains(&c.id))
                            || c.tags.iter().any(|t| tags.contains(t))
                    })
                    .map(|c| c.id)
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Loads the explicit channel bindings of every monitor of the batch, and the tags of
    /// those whose tags are not loaded yet (`m`, taken out of the map, included).
    async fn load_bindings(
        &mut self,
        conn: &mut AnyConnection,
        id: i64,
        m: &mut EngineMonitor,
    ) -> R<()> {
        let mut ids: Vec<i64> = self.monitors.keys().copied().chain([id]).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut explicit: HashMap<i64, HashSet<i64>> = HashMap::new();
        for chunk in ids.chunks(CHUNK) {
            let sql = format!(
                "SELECT monitor_id, channel_id FROM monitor_channels WHERE monitor_id IN ({})",
                params(self.backend, chunk.len())
            );
            let mut q = sqlx::query(&sql).persistent(false);
            for i in chunk {
                q = q.bind(*i);
            }
            for row in q.fetch_all(&mut *conn).await? {
                explicit
                    .entry(get(&row, "monitor_channels.monitor_id")?)
                    .or_default()
                    .insert(get(&row, "monitor_channels.channel_id")?);
            }
        }
        self.explicit = Some(explicit);
        let untagged: Vec<i64> = ids
            .iter()
            .copied()
            .filter(|i| {
                if *i == id {
                    m.tags.is_none()
                } else {
                    self.monitors.get(i).is_some_and(|o| o.tags.is_none())
                }
            })
            .collect();
        for chunk in untagged.chunks(CHUNK) {
            let mut tags = load_tags(conn, self.backend, chunk).await?;
            for i in chunk {
                let t = Some(tags.remove(i).unwrap_or_default());
                if *i == id {
                    m.tags = t;
                } else if let Some(o) = self.monitors.get_mut(i) {
                    o.tags = t;
                }
            }
        }
        Ok(())
    }

    /// Writes the alert state of every monitor evaluated in this batch.
    pub(super) async fn save(&self, conn: &mut AnyConnection) -> R<()> {
        let mut dirty: Vec<(i64, &EngineMonitor)> = self
            .monitors
            .iter()
            .filter(|(_, m)| m.dirty)
            .map(|(id, m)| (*id, m))
            .collect();
        dirty.sort_unstable_by_key(|(id, _)| *id);
        for chunk in dirty.chunks(CHUNK) {
            let sql = format!(
                "INSERT INTO alert_state (monitor_id, last_result_at, level, fail_streak, \
                 pass_streak, streak_started_at, streak_down, incident_id, flapping, changes) \
                 VALUES {} ON CONFLICT (monitor_id) DO UPDATE SET \
                 last_result_at = excluded.last_result_at, level = excluded.level, \
                 fail_streak = excluded.fail_streak, pass_streak = excluded.pass_streak, \
                 streak_started_at = excluded.streak_started_at, \
                 streak_down = excluded.streak_down, incident_id = excluded.incident_id, \
                 flapping = excluded.flapping, changes = excluded.changes",
                value_rows(self.backend, chunk.len(), ALERT_WIDTH)
            );
            let mut q = sqlx::query(&sql).persistent(chunk.len() == CHUNK);
            for (id, m) in chunk {
                let a = &m.alert;
                q = q
                    .bind(*id)
                    .bind(a.last_result_at.unwrap_or(0))
                    .bind(a.level.unwrap_or(Level::Ok).as_str())
                    .bind(i64::from(a.fail_streak))
                    .bind(i64::from(a.pass_streak))
                    .bind(a.streak_started_at)
                    .bind(i64::from(a.streak_down))
                    .bind(a.incident.map(|i| i.id))
                    .bind(i64::from(a.flapping))
                    .bind(rows::to_json(&a.changes, "alert_state.changes")?);
            }
            q.execute(&mut *conn).await?;
        }
        Ok(())
    }
}

/// Incident facts that own their text (built before the monitor is borrowed again).
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

fn owned_facts(f: IncidentFacts<'_>) -> OwnedIncidentFacts {
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

/// Tags of the given monitors.
async fn load_tags(
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

/// `90 s`, `10 min`, `2 h` for a window length.
fn human_secs(secs: u64) -> String {
    if secs % 3600 == 0 && secs >= 3600 {
        format!("{} h", secs / 3600)
    } else if secs % 60 == 0 && secs >= 60 {
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
}
