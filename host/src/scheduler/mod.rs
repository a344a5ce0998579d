//! The scheduler: one due-time queue for every monitor (not a task per monitor), jitter to
//! spread load, no overlapping runs of one monitor, a global concurrency cap, API changes
//! picked up at once, and no burst of catch-up runs after a pause or a restart. Push monitors
//! are in the same queue: their due time is the deadline of the next expected ping.

pub mod heartbeat;
mod plan;
mod queue;
mod task;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::checks::CheckRunner;
use crate::metrics::{LagSnapshot, Metrics};
use crate::model::{Monitor, Timestamp};
use crate::pipeline::ResultSink;

/// Tunables of the scheduler.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Checks running at once across all monitors; more wait their turn.
    pub max_concurrency: usize,
    /// Fraction of the interval used to spread first runs (0.0–1.0).
    pub jitter: f64,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            max_concurrency: 2_048,
            jitter: 1.0,
        }
    }
}

/// What the handle tells the scheduler task.
enum Command {
    Upsert(Box<Monitor>),
    Remove(i64),
    Pinged(i64, Timestamp),
    Shutdown(Duration),
}

/// Handle used by the API to tell the scheduler about changes. Cheap to clone.
#[derive(Clone)]
pub struct SchedulerHandle {
    tx: mpsc::UnboundedSender<Command>,
    scheduled: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
    region: Arc<str>,
}

impl SchedulerHandle {
    /// A monitor was created or changed (takes effect within a second; paused monitors stop).
    pub fn upsert(&self, monitor: Monitor) {
        self.send(Command::Upsert(Box::new(monitor)));
    }

    /// A monitor was deleted.
    pub fn remove(&self, monitor_id: i64) {
        self.send(Command::Remove(monitor_id));
    }

    /// A push monitor received a ping at `at`: its next deadline moves.
    pub fn pinged(&self, monitor_id: i64, at: Timestamp) {
        self.send(Command::Pinged(monitor_id, at));
    }

    /// Monitors currently scheduled.
    pub fn scheduled(&self) -> usize {
        self.scheduled.load(Ordering::Relaxed)
    }

    /// Scheduler lag (check start − due time) percentiles since start or the last reset.
    pub fn lag_snapshot(&self) -> LagSnapshot {
        self.metrics.scheduler_lag()
    }

    /// The metrics the scheduler records into.
    pub(crate) fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Region tag of results produced here.
    pub(crate) fn region(&self) -> &str {
        &self.region
    }

    fn send(&self, command: Command) {
        // After shutdown nobody listens, and nothing needs to.
        let _ = self.tx.send(command);
    }
}

/// The running scheduler.
pub struct Scheduler {
    tx: mpsc::UnboundedSender<Command>,
    task: JoinHandle<()>,
}

impl Scheduler {
    /// Starts scheduling `monitors` (first runs spread over their interval, never all at once).
    ///
    /// Also connects `metrics` to the check runner (checks run outside the scheduler, such as
    /// `check-now`, are counted too) and to the runtime (instance pool usage).
    pub fn start(
        monitors: Vec<Monitor>,
        checks: Arc<CheckRunner>,
        sink: ResultSink,
        metrics: Arc<Metrics>,
        config: SchedulerConfig,
    ) -> (Scheduler, SchedulerHandle) {
        checks.attach_metrics(metrics.clone());
        metrics.watch_runtime(checks.runtime());
        let (tx, rx) = mpsc::unbounded_channel();
        let scheduled = Arc::new(AtomicUsize::new(0));
        let handle = SchedulerHandle {
            tx: tx.clone(),
            scheduled: scheduled.clone(),
            metrics: metrics.clone(),
            region: Arc::from(checks.region()),
        };
        let task = tokio::spawn(
            task::SchedulerTask::new(checks, sink, metrics, config, scheduled).run(monitors, rx),
        );
        (Scheduler { tx, task }, handle)
    }

    /// Stops starting checks, lets running ones finish for up to `grace` (their results are
    /// submitted), then returns.
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.tx.send(Command::Shutdown(grace));
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "the scheduler task failed");
        }
    }
}
