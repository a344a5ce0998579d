//! The incident engine inside the transaction of [`Store::insert_results`]: loads the alert
//! state, policies, open incidents, parents and maintenance windows of a batch's monitors,
//! flags results covered by maintenance, runs the state machine
//! ([`crate::incidents::machine`]) over the evaluated results in time order, records what
//! happened (`record.rs`: incidents, timeline entries, one outbox row per bound channel) and
//! writes the new alert state. Only actual transitions cost per-event queries.
//!
//! Decoding of the engine's own state is lenient (`state.rs`): a corrupt `alert_state` row
//! restarts that monitor's streaks (with a warning) rather than failing the batch, because a
//! failed batch would lose results.

pub(super) mod bindings;
mod record;
pub(super) mod state;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use sqlx::AnyConnection;

use super::rows::{self, get};
use super::{Backend, CHUNK, R, Store, params, value_rows};
use crate::incidents::machine::{self, EngineSettings, Level, Outcome};
use crate::maintenance::MaintenancePlan;
use crate::model::{NewResult, WorkspaceId};
use bindings::ChannelBinding;
use record::Subject;
use state::{ParentView, lenient_i64, lenient_text, load_tags};

pub(super) use state::EngineMonitor;

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

/// Engine settings and the outbox signal, shared by every clone of a [`Store`].
#[derive(Debug, Default)]
pub(super) struct EngineShared {
    settings: std::sync::RwLock<EngineSettings>,
    /// Woken (one permit stored) after a batch wrote outbox rows.
    outbox: tokio::sync::Notify,
}

/// New shared engine state with default settings.
pub(super) fn shared() -> Arc<EngineShared> {
    Arc::new(EngineShared::default())
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

    /// Waits until a result batch of this process has written notifications since the last
    /// wait returned (a permit is kept when nobody waits, so a wake-up is never lost). The
    /// dispatcher should still poll now and then: other nodes write outbox rows too.
    pub async fn outbox_written(&self) {
        self.engine.outbox.notified().await
    }

    /// Wakes [`Store::outbox_written`].
    pub(super) fn signal_outbox(&self) {
        self.engine.outbox.notify_one();
    }
}

/// An enabled maintenance window of one of the batch's workspaces.
struct Window {
    workspace_id: WorkspaceId,
    monitor_ids: HashSet<i64>,
    tags: Vec<String>,
    plan: MaintenancePlan,
}

/// The engine for one batch.
pub(super) struct Engine {
    backend: Backend,
    settings: EngineSettings,
    /// Wall clock of this batch (notification and incident row times), epoch ms.
    now: i64,
    monitors: HashMap<i64, EngineMonitor>,
    /// Parents of each monitor of the batch that has any (sorted, self excluded).
    parents: HashMap<i64, Vec<i64>>,
    views: HashMap<i64, ParentView>,
    windows: Vec<Window>,
    /// Enabled channels per workspace, loaded when a first notification needs them.
    channels: HashMap<WorkspaceId, Vec<ChannelBinding>>,
    /// Channels each monitor of the batch names explicitly (and every monitor's tags), loaded
    /// for the whole batch when a first notification needs them: a mass outage costs two
    /// queries, not two per monitor.
    explicit: Option<HashMap<i64, HashSet<i64>>>,
    /// Outbox rows written.
    notifications: u64,
}

impl Engine {
    /// The wall clock used for a batch (epoch ms), for [`EngineMonitor::from_row`].
    pub(super) fn clock() -> i64 {
        rows::ms(rows::now())
    }

    /// An engine over the batch's monitors (decoded with [`EngineMonitor::from_row`] at `now`).
    pub(super) fn new(
        backend: Backend,
        settings: EngineSettings,
        now: i64,
        monitors: HashMap<i64, EngineMonitor>,
    ) -> Engine {
        Engine {
            backend,
            settings,
            now,
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
        let mut ids: Vec<i64> = self.monitors.keys().copied().collect();
        ids.sort_unstable();
        self.load_parents(conn, &ids).await?;
        self.load_windows(conn).await?;
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

    /// Parents of the batch's monitors and whether each parent is down.
    async fn load_parents(&mut self, conn: &mut AnyConnection, ids: &[i64]) -> R<()> {
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
                    name: lenient_text(&row, "monitors.parent_name").unwrap_or_default(),
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
        Ok(())
    }

    /// The enabled maintenance windows of the batch's workspaces (unreadable ones are
    /// skipped with a warning rather than failing the batch).
    async fn load_windows(&mut self, conn: &mut AnyConnection) -> R<()> {
        let workspaces: BTreeSet<WorkspaceId> =
            self.monitors.values().map(|m| m.workspace_id).collect();
        if workspaces.is_empty() {
            return Ok(());
        }
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
        Ok(())
    }

    /// Whether an enabled maintenance window of the monitor's workspace covers the result's
    /// monitor (by id or tag) at the result's start.
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
            let in_maintenance = maintenance.get(i).copied().unwrap_or(false);
            let parent_down = self.parent_down(r.monitor_id);
            let Some(mut m) = self.monitors.remove(&r.monitor_id) else {
                continue;
            };
            let subject = Subject::new(r, m.alert.incident);
            if m.enabled && !in_maintenance {
                let outcome = machine::step(
                    &mut m.alert,
                    &m.policy,
                    &self.settings,
                    subject.at,
                    r.status,
                    parent_down,
                );
                if let Outcome::Evaluated(effects) = outcome {
                    m.dirty = true;
                    if !effects.is_empty()
                        && let Err(e) = self.record(conn, &subject, &mut m, &effects).await
                    {
                        self.monitors.insert(r.monitor_id, m);
                        return Err(e);
                    }
                }
            }
            let incident_open = m.alert.incident.is_some();
            self.monitors.insert(r.monitor_id, m);
            if let Some(view) = self.views.get_mut(&r.monitor_id) {
                view.incident_open = incident_open;
                if view.status_at.is_none_or(|s| subject.at >= s) {
                    view.status = Some(r.status);
                    view.status_at = Some(subject.at);
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
