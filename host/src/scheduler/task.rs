//! The scheduler task: owns the due queue and every monitor's schedule, wakes at the earliest
//! due time or on a command, starts due checks under the global concurrency cap (skipping a
//! monitor whose previous run is still going) and reports missed heartbeats.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::heartbeat::PushPlan;
use super::plan::{first_due, instant_at, interval_of, next_due, restart_due, soon_due};
use super::queue::DueQueue;
use super::{Command, SchedulerConfig};
use crate::checks::CheckRunner;
use crate::metrics::Metrics;
use crate::model::{Monitor, MonitorSpec, MonitorType, NewResult, Status, Timestamp, Timings};
use crate::pipeline::ResultSink;

/// Commands applied in one go before due monitors get another look.
const COMMAND_BATCH: usize = 1_024;
/// Missed periods skipped at most in one step (a 1 s push monitor down for hours).
const MAX_SKIPPED_PERIODS: usize = 100_000;
/// Cause code of a push monitor's missed ping.
pub(crate) const NO_HEARTBEAT: &str = "no_heartbeat";

/// How a scheduled monitor is due.
enum Kind {
    /// Runs its plugin every interval.
    Check,
    /// Expects pings; due at the deadline of the next one.
    Push(Box<PushState>),
}

struct PushState {
    plan: PushPlan,
    /// The last ping, or when the monitor started waiting for one.
    since: Timestamp,
    /// When the next ping is expected (the deadline is this plus grace).
    expected: Timestamp,
}

struct Entry {
    monitor: Arc<Monitor>,
    kind: Kind,
}

/// What woke the task up.
enum Wake {
    Command(Option<Command>),
    Finished(Option<tokio::task::Id>),
    Timer,
}

/// The scheduler's state, owned by its one task.
pub(super) struct SchedulerTask {
    checks: Arc<CheckRunner>,
    sink: ResultSink,
    metrics: Arc<Metrics>,
    jitter: f64,
    scheduled: Arc<AtomicUsize>,
    permits: Arc<Semaphore>,
    queue: DueQueue,
    entries: HashMap<i64, Entry>,
    /// Monitors whose check is running (or waiting for a permit).
    in_flight: HashSet<i64>,
    runs: JoinSet<()>,
    /// Which monitor each check task runs (push reports are not listed).
    run_of: HashMap<tokio::task::Id, i64>,
    rng: StdRng,
}

impl SchedulerTask {
    /// The task's initial state.
    pub fn new(
        checks: Arc<CheckRunner>,
        sink: ResultSink,
        metrics: Arc<Metrics>,
        config: SchedulerConfig,
        scheduled: Arc<AtomicUsize>,
    ) -> Self {
        Self {
            checks,
            sink,
            metrics,
            jitter: config.jitter,
            scheduled,
            permits: Arc::new(Semaphore::new(
                config.max_concurrency.clamp(1, Semaphore::MAX_PERMITS),
            )),
            queue: DueQueue::default(),
            entries: HashMap::new(),
            in_flight: HashSet::new(),
            runs: JoinSet::new(),
            run_of: HashMap::new(),
            rng: StdRng::from_entropy(),
        }
    }

    /// Schedules `monitors`, then serves commands and due times until shutdown.
    pub async fn run(mut self, monitors: Vec<Monitor>, mut rx: mpsc::UnboundedReceiver<Command>) {
        let now = Instant::now();
        let now_ts = Utc::now();
        for monitor in monitors {
            self.load(monitor, now, now_ts);
        }
        let grace = loop {
            self.fire_due();
            self.publish_len();
            let wake = self.queue.next_wake();
            let woke = tokio::select! {
                biased;
                command = rx.recv() => Wake::Command(command),
                done = self.runs.join_next_with_id(), if !self.runs.is_empty() => {
                    Wake::Finished(done.map(|r| match r {
                        Ok((id, ())) => id,
                        Err(e) => {
                            if e.is_panic() {
                                tracing::error!(error = %e, "a scheduled check panicked");
                            }
                            e.id()
                        }
                    }))
                }
                _ = sleep_until(wake) => Wake::Timer,
            };
            match woke {
                Wake::Timer => {}
                Wake::Finished(id) => {
                    if let Some(monitor) = id.and_then(|id| self.run_of.remove(&id)) {
                        self.in_flight.remove(&monitor);
                    }
                }
                Wake::Command(first) => {
                    if let Some(stop) = self.apply_commands(first, &mut rx) {
                        break stop;
                    }
                }
            }
        };
        self.stop(grace).await;
    }

    /// Applies `first` and whatever else is queued (up to a batch); `Some` means stop, with
    /// the grace period (`None` when the `Scheduler` was dropped).
    fn apply_commands(
        &mut self,
        first: Option<Command>,
        rx: &mut mpsc::UnboundedReceiver<Command>,
    ) -> Option<Option<Duration>> {
        let mut next = first;
        for _ in 0..COMMAND_BATCH {
            match next {
                None => return Some(None),
                Some(Command::Shutdown(grace)) => return Some(Some(grace)),
                Some(Command::Upsert(monitor)) => self.upsert(*monitor),
                Some(Command::Remove(id)) => self.remove(id),
                Some(Command::Pinged(id, at)) => self.pinged(id, at),
            }
            next = match rx.try_recv() {
                Ok(command) => Some(command),
                Err(mpsc::error::TryRecvError::Empty) => return None,
                Err(mpsc::error::TryRecvError::Disconnected) => None,
            };
        }
        // Batch used up: handle the command in hand now, the rest on the next wake-up.
        match next {
            None => Some(None),
            Some(Command::Shutdown(grace)) => Some(Some(grace)),
            Some(Command::Upsert(monitor)) => {
                self.upsert(*monitor);
                None
            }
            Some(Command::Remove(id)) => {
                self.remove(id);
                None
            }
            Some(Command::Pinged(id, at)) => {
                self.pinged(id, at);
                None
            }
        }
    }

    fn fraction(&mut self) -> f64 {
        self.rng.r#gen::<f64>()
    }

    fn publish_len(&self) {
        let n = self.entries.len();
        self.scheduled.store(n, Ordering::Relaxed);
        self.metrics.set_scheduled(n);
    }

    /// Schedules a monitor found at start-up: resumes its phase from its last result.
    fn load(&mut self, monitor: Monitor, now: Instant, now_ts: Timestamp) {
        if !monitor.spec.enabled {
            return;
        }
        match monitor.spec.kind {
            MonitorType::Check => {
                let interval = interval_of(monitor.spec.interval_secs);
                let f = self.fraction();
                let due = match monitor.state.last_checked_at {
                    Some(last) => restart_due(now, now_ts, last, interval, self.jitter, f),
                    None => first_due(now, interval, self.jitter, f),
                };
                self.queue.set(monitor.id, due);
                self.entries.insert(
                    monitor.id,
                    Entry {
                        monitor: Arc::new(monitor),
                        kind: Kind::Check,
                    },
                );
            }
            MonitorType::Push => {
                let since = monitor.state.last_ping_at.unwrap_or(monitor.created_at);
                // Periods whose miss was already reported before the restart are skipped.
                let reported = monitor.state.last_checked_at;
                self.schedule_push(Arc::new(monitor), since, reported, now, now_ts);
            }
        }
    }

    /// A monitor was created or changed through the API.
    fn upsert(&mut self, monitor: Monitor) {
        let id = monitor.id;
        if let Some(current) = self.entries.get(&id)
            && monitor.revision < current.monitor.revision
        {
            return; // an older snapshot overtaken by a newer one
        }
        if !monitor.spec.enabled {
            self.remove(id);
            return;
        }
        let now = Instant::now();
        let now_ts = Utc::now();
        let unchanged = self
            .entries
            .get(&id)
            .is_some_and(|e| same_schedule(&e.monitor.spec, &monitor.spec));
        if unchanged && let Some(entry) = self.entries.get_mut(&id) {
            // Name, tags: keep the phase.
            entry.monitor = Arc::new(monitor);
            return;
        }
        match monitor.spec.kind {
            MonitorType::Check => {
                let interval = interval_of(monitor.spec.interval_secs);
                let f = self.fraction();
                self.queue.set(id, soon_due(now, interval, self.jitter, f));
                self.entries.insert(
                    id,
                    Entry {
                        monitor: Arc::new(monitor),
                        kind: Kind::Check,
                    },
                );
            }
            MonitorType::Push => {
                // A changed schedule counts from the last ping; a new or resumed monitor from now.
                let since = match self.entries.get(&id).map(|e| &e.kind) {
                    Some(Kind::Push(p)) => p.since,
                    _ => now_ts,
                };
                self.schedule_push(Arc::new(monitor), since, None, now, now_ts);
            }
        }
    }

    /// Queues a push monitor's next deadline after `since` (skipping periods up to `reported`).
    fn schedule_push(
        &mut self,
        monitor: Arc<Monitor>,
        since: Timestamp,
        reported: Option<Timestamp>,
        now: Instant,
        now_ts: Timestamp,
    ) {
        let id = monitor.id;
        let schedule = monitor.spec.push.clone().unwrap_or_default();
        let plan = match PushPlan::new(&schedule, monitor.spec.interval_secs) {
            Ok(plan) => plan,
            Err(e) => {
                tracing::warn!(monitor = id, error = %e, "push monitor has an invalid schedule; not scheduled");
                self.remove(id);
                return;
            }
        };
        let expected = match plan.next_expected(since) {
            Ok(first) => match reported {
                Some(reported) => skip_periods(&plan, first, reported),
                None => Some(first),
            },
            Err(e) => Err(e).ok(),
        };
        let Some(expected) = expected else {
            tracing::warn!(
                monitor = id,
                "push monitor's schedule never fires again; not scheduled"
            );
            self.remove(id);
            return;
        };
        self.queue
            .set(id, instant_at(expected + plan.grace(), now, now_ts));
        self.entries.insert(
            id,
            Entry {
                monitor,
                kind: Kind::Push(Box::new(PushState {
                    plan,
                    since,
                    expected,
                })),
            },
        );
    }

    /// A monitor was deleted or paused: it leaves the queue now (a running check finishes).
    fn remove(&mut self, id: i64) {
        self.entries.remove(&id);
        self.queue.remove(id);
    }

    /// A push monitor got a ping at `at`: the next deadline counts from it.
    fn pinged(&mut self, id: i64, at: Timestamp) {
        let Some(Entry {
            kind: Kind::Push(state),
            ..
        }) = self.entries.get_mut(&id)
        else {
            return;
        };
        if at < state.since {
            return; // an older ping overtaken by a newer one
        }
        let Ok(expected) = state.plan.next_expected(at) else {
            return;
        };
        state.since = at;
        state.expected = expected;
        let due = instant_at(expected + state.plan.grace(), Instant::now(), Utc::now());
        self.queue.set(id, due);
    }

    /// Starts or reports everything due by now.
    fn fire_due(&mut self) {
        let now = Instant::now();
        let mut now_ts = None;
        while let Some((id, due)) = self.queue.pop_due(now) {
            let Some(entry) = self.entries.get_mut(&id) else {
                continue;
            };
            let monitor = entry.monitor.clone();
            match &mut entry.kind {
                Kind::Check => {
                    let interval = interval_of(monitor.spec.interval_secs);
                    self.queue.set(id, next_due(due, interval, now));
                    if self.in_flight.contains(&id) {
                        self.metrics.overlap_skipped();
                        tracing::debug!(
                            monitor = id,
                            "previous run still going; this one is skipped"
                        );
                        continue;
                    }
                    self.start_check(monitor, due);
                }
                Kind::Push(state) => {
                    let now_ts = *now_ts.get_or_insert_with(Utc::now);
                    let result = missed_ping(&monitor, state.since, self.checks.region(), now_ts);
                    // The next deadline is the following period's; periods already past
                    // are skipped (one report per wake-up, never a burst).
                    let next = state
                        .plan
                        .next_expected(state.expected)
                        .ok()
                        .and_then(|n| skip_periods(&state.plan, n, now_ts));
                    match next {
                        Some(expected) => {
                            state.expected = expected;
                            let deadline = expected + state.plan.grace();
                            self.queue.set(id, instant_at(deadline, now, now_ts));
                        }
                        None => {
                            tracing::warn!(
                                monitor = id,
                                "push monitor's schedule never fires again; no more deadlines"
                            );
                            self.entries.remove(&id);
                        }
                    }
                    self.metrics.heartbeat_missed();
                    let sink = self.sink.clone();
                    self.runs.spawn(async move {
                        if let Err(e) = sink.submit(result).await {
                            tracing::warn!(monitor = id, error = %e, "missed-ping result not stored");
                        }
                    });
                }
            }
        }
    }

    /// Runs one check in its own task under the concurrency cap; its result is submitted.
    fn start_check(&mut self, monitor: Arc<Monitor>, due: Instant) {
        let id = monitor.id;
        let checks = self.checks.clone();
        let sink = self.sink.clone();
        let metrics = self.metrics.clone();
        let permits = self.permits.clone();
        let task = self.runs.spawn(async move {
            let Ok(permit) = permits.acquire_owned().await else {
                return; // shutting down: no new checks
            };
            metrics.observe_lag(Instant::now().saturating_duration_since(due));
            let result = checks.run(&monitor, 1).await;
            drop(permit);
            if let Err(e) = sink.submit(result).await {
                tracing::warn!(monitor = id, error = %e, "check result not stored");
            }
        });
        self.in_flight.insert(id);
        self.run_of.insert(task.id(), id);
    }

    /// Stops starting checks and waits up to `grace` for running ones, then aborts the rest.
    async fn stop(mut self, grace: Option<Duration>) {
        self.permits.close();
        self.queue = DueQueue::default();
        self.entries.clear();
        self.publish_len();
        let Some(grace) = grace else {
            self.runs.shutdown().await;
            return;
        };
        let running = self.runs.len();
        if running > 0 {
            tracing::info!(
                running,
                grace_ms = grace.as_millis() as u64,
                "waiting for running checks"
            );
        }
        let deadline = Instant::now() + grace;
        loop {
            tokio::select! {
                done = self.runs.join_next() => {
                    if done.is_none() {
                        break;
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    tracing::warn!(
                        aborted = self.runs.len(),
                        "checks still running after the shutdown grace period were aborted"
                    );
                    self.runs.shutdown().await;
                    break;
                }
            }
        }
    }
}

/// Whether two specs run the same way (only the name, tags or enabled flag differ).
fn same_schedule(a: &MonitorSpec, b: &MonitorSpec) -> bool {
    a.kind == b.kind
        && a.plugin == b.plugin
        && a.config == b.config
        && a.interval_secs == b.interval_secs
        && a.timeout_ms == b.timeout_ms
        && a.push == b.push
}

/// The first expected time from `expected` on whose deadline (expected + grace) is after
/// `until`; `None` when the schedule stops firing.
fn skip_periods(plan: &PushPlan, mut expected: Timestamp, until: Timestamp) -> Option<Timestamp> {
    for _ in 0..MAX_SKIPPED_PERIODS {
        if expected + plan.grace() > until {
            return Some(expected);
        }
        expected = plan.next_expected(expected).ok()?;
    }
    // Very far behind: start again from `until`.
    plan.next_expected(until).ok()
}

/// The `down` result of a push monitor whose ping did not come.
fn missed_ping(monitor: &Monitor, since: Timestamp, region: &str, now: Timestamp) -> NewResult {
    NewResult {
        monitor_id: monitor.id,
        workspace_id: monitor.workspace_id,
        region: region.to_string(),
        started_at: now,
        status: Status::Down,
        latency_ms: 0.0,
        message: format!(
            "no ping received since {}",
            since.to_rfc3339_opts(SecondsFormat::Secs, true)
        ),
        timings: Timings::default(),
        metrics: Vec::new(),
        details: None,
        error_cause: Some(NO_HEARTBEAT.to_string()),
        ping: false,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::model::{AlertPolicy, PushSchedule};

    fn t(s: i64) -> Timestamp {
        Utc.timestamp_opt(1_700_000_000 + s, 0)
            .single()
            .expect("valid")
    }

    #[test]
    fn skip_periods_finds_the_first_open_deadline() {
        // A ping every 10 s, 5 s grace.
        let plan = PushPlan::new(
            &PushSchedule {
                cron: None,
                timezone: "UTC".into(),
                grace_secs: 5,
            },
            10,
        )
        .expect("plan");
        // Deadline of expected 10 is 15: still open at 14, passed at 15.
        assert_eq!(skip_periods(&plan, t(10), t(14)), Some(t(10)));
        assert_eq!(skip_periods(&plan, t(10), t(15)), Some(t(20)));
        // Far behind: jumps over every missed period at once.
        assert_eq!(skip_periods(&plan, t(10), t(1_000)), Some(t(1_000)));
    }

    #[test]
    fn only_name_tags_and_enabled_keep_the_phase() {
        let spec = MonitorSpec {
            name: "a".into(),
            kind: MonitorType::Check,
            plugin: Some("http".into()),
            config: serde_json::json!({"url": "http://127.0.0.1/"}),
            interval_secs: 10,
            timeout_ms: 1000,
            enabled: true,
            tags: vec![],
            push: None,
            alert: AlertPolicy::default(),
        };
        let renamed = MonitorSpec {
            name: "b".into(),
            tags: vec!["x".into()],
            ..spec.clone()
        };
        assert!(same_schedule(&spec, &renamed));
        for changed in [
            MonitorSpec {
                interval_secs: 5,
                ..spec.clone()
            },
            MonitorSpec {
                timeout_ms: 5,
                ..spec.clone()
            },
            MonitorSpec {
                plugin: Some("http@1.0.0".into()),
                ..spec.clone()
            },
            MonitorSpec {
                config: serde_json::json!({}),
                ..spec.clone()
            },
        ] {
            assert!(!same_schedule(&spec, &changed));
        }
    }

    #[test]
    fn missed_ping_says_since_when() {
        let monitor = Monitor {
            id: 4,
            workspace_id: 1,
            spec: MonitorSpec {
                name: "job".into(),
                kind: MonitorType::Push,
                plugin: None,
                config: serde_json::json!({}),
                interval_secs: 60,
                timeout_ms: 1000,
                enabled: true,
                tags: vec![],
                push: Some(PushSchedule::default()),
                alert: AlertPolicy::default(),
            },
            push_token: Some("tok".into()),
            state: Default::default(),
            created_at: t(0),
            updated_at: t(0),
            revision: 1,
        };
        let r = missed_ping(&monitor, t(0), "local", t(200));
        assert_eq!(r.status, Status::Down);
        assert_eq!(r.error_cause.as_deref(), Some(NO_HEARTBEAT));
        assert_eq!(r.message, "no ping received since 2023-11-14T22:13:20Z");
        assert!(!r.ping);
    }
}
