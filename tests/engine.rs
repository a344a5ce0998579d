//! The engine end to end: catalog, check runner, result pipeline, scheduler and push monitors,
//! on a real SQLite store in a temporary directory, the real runtime with the built-in plugins
//! and the hostile fixture, and real HTTP servers on 127.0.0.1.

mod support;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::Utc;
use pharos::catalog::{Catalog, CatalogError, GrantRequest, PluginState};
use pharos::checks::CheckRunner;
use pharos::metrics::Metrics;
use pharos::model::{
    AlertPolicy, DEFAULT_WORKSPACE, Monitor, MonitorSpec, MonitorType, NewResult, PushSchedule,
    ResultQuery, Status, Timings,
};
use pharos::pipeline::{Pipeline, PipelineConfig, ResultSink, SubmitError};
use pharos::runtime::{Capability, Grants, Runtime, RuntimeConfig};
use pharos::scheduler::heartbeat::{Heartbeats, PingError, PingKind};
use pharos::scheduler::{Scheduler, SchedulerConfig, SchedulerHandle};
use pharos::secrets::SecretBox;
use pharos::store::Store;
use serde_json::json;
use tempfile::TempDir;

const WS: i64 = DEFAULT_WORKSPACE;

/// One runtime for the whole binary: built-ins compile once.
fn runtime() -> Arc<Runtime> {
    static RUNTIME: OnceLock<Arc<Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            Arc::new(support::runtime_with(RuntimeConfig {
                allow_private_targets: true,
                max_instances: Some(64),
                ..RuntimeConfig::default()
            }))
        })
        .clone()
}

/// A store, catalog and check runner over a fresh SQLite file.
struct Engine {
    _dir: TempDir,
    url: String,
    store: Store,
    catalog: Arc<Catalog>,
    checks: Arc<CheckRunner>,
    metrics: Arc<Metrics>,
}

async fn engine() -> Engine {
    engine_with_key([7u8; 32]).await
}

async fn engine_with_key(key: [u8; 32]) -> Engine {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = support::db::sqlite_url(dir.path());
    let store = Store::connect(&url).await.expect("sqlite store");
    let runtime = runtime();
    let catalog = Arc::new(
        Catalog::load(runtime.clone(), store.clone())
            .await
            .expect("catalog"),
    );
    let checks = Arc::new(CheckRunner::new(
        runtime,
        catalog.clone(),
        Arc::new(SecretBox::new(key)),
        "local".into(),
    ));
    Engine {
        _dir: dir,
        url,
        store,
        catalog,
        checks,
        metrics: Arc::new(Metrics::new()),
    }
}

impl Engine {
    fn pipeline(&self, config: PipelineConfig) -> (Pipeline, ResultSink) {
        Pipeline::start(self.store.clone(), self.metrics.clone(), config)
    }

    fn fast_pipeline(&self) -> (Pipeline, ResultSink) {
        self.pipeline(PipelineConfig {
            capacity: 1024,
            batch_size: 100,
            flush_interval: Duration::from_millis(50),
        })
    }

    fn scheduler(&self, monitors: Vec<Monitor>, sink: &ResultSink) -> (Scheduler, SchedulerHandle) {
        Scheduler::start(
            monitors,
            self.checks.clone(),
            sink.clone(),
            self.metrics.clone(),
            SchedulerConfig {
                max_concurrency: 16,
                jitter: 1.0,
            },
        )
    }

    /// A fast pipeline and a scheduler of `monitors` writing to it.
    fn start(&self, monitors: Vec<Monitor>) -> (Pipeline, ResultSink, Scheduler, SchedulerHandle) {
        let (pipeline, sink) = self.fast_pipeline();
        let (scheduler, handle) = self.scheduler(monitors, &sink);
        (pipeline, sink, scheduler, handle)
    }

    async fn create(&self, spec: &MonitorSpec, token: Option<&str>) -> Monitor {
        self.store
            .create_monitor(WS, spec, token)
            .await
            .expect("create monitor")
    }

    /// Creates an HTTP check monitor of `url` every `interval_secs`.
    async fn http_monitor(&self, name: &str, url: &str, interval_secs: u32) -> Monitor {
        self.create(&http_spec(name, url, interval_secs), None)
            .await
    }

    /// The stored monitor `id`, which must exist.
    async fn get(&self, id: i64) -> Monitor {
        self.store
            .get_monitor(WS, id)
            .await
            .expect("get")
            .expect("exists")
    }

    /// Whether the stored results of `monitor_id` satisfy `pred` within `limit` (polled).
    async fn results_within(
        &self,
        monitor_id: i64,
        limit: Duration,
        pred: impl Fn(&[pharos::model::CheckResult]) -> bool,
    ) -> bool {
        eventually(limit, || async { pred(&self.results(monitor_id).await) }).await
    }

    async fn update(&self, monitor: &Monitor, spec: &MonitorSpec) -> Monitor {
        self.store
            .update_monitor(WS, monitor.id, spec)
            .await
            .expect("update monitor")
            .expect("monitor exists")
    }

    /// Stored results of a monitor, oldest first.
    async fn results(&self, monitor_id: i64) -> Vec<pharos::model::CheckResult> {
        let page = self
            .store
            .list_results(
                WS,
                monitor_id,
                &ResultQuery {
                    limit: 10_000,
                    ..ResultQuery::default()
                },
            )
            .await
            .expect("list results");
        let mut items = page.items;
        items.reverse();
        items
    }
}

fn http_spec(name: &str, url: &str, interval_secs: u32) -> MonitorSpec {
    MonitorSpec {
        name: name.into(),
        kind: MonitorType::Check,
        plugin: Some("http".into()),
        config: json!({ "url": url }),
        interval_secs,
        timeout_ms: 5_000,
        enabled: true,
        tags: vec![],
        push: None,
        alert: AlertPolicy::default(),
    }
}

fn push_spec(name: &str, interval_secs: u32, grace_secs: u32) -> MonitorSpec {
    MonitorSpec {
        name: name.into(),
        kind: MonitorType::Push,
        plugin: None,
        config: json!({}),
        interval_secs,
        timeout_ms: 1_000,
        enabled: true,
        tags: vec![],
        push: Some(PushSchedule {
            cron: None,
            timezone: "UTC".into(),
            grace_secs,
        }),
        alert: AlertPolicy::default(),
    }
}

fn result_for(monitor: &Monitor, n: usize) -> NewResult {
    NewResult {
        monitor_id: monitor.id,
        workspace_id: WS,
        region: "local".into(),
        started_at: Utc::now() + chrono::Duration::milliseconds(n as i64),
        status: Status::Up,
        latency_ms: n as f64,
        message: format!("result {n}"),
        timings: Timings::default(),
        metrics: vec![("n".into(), n as f64)],
        details: None,
        error_cause: None,
        ping: false,
    }
}

/// Stops `scheduler` (running checks get up to `grace`), then drains `pipeline`.
async fn stop(scheduler: Scheduler, pipeline: Pipeline, grace: Duration) {
    scheduler.shutdown(grace).await;
    pipeline.shutdown().await;
}

/// Polls `f` every 100 ms until it is true or `limit` passes.
async fn eventually<F, Fut>(limit: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if f().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---- scheduler ----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_runs_an_http_monitor_every_interval() {
    let server = support::servers::http().await;
    let e = engine().await;
    let (pipeline, _sink, scheduler, handle) = e.start(vec![]);
    let monitor = e
        .http_monitor("web", &format!("http://{}/", server.addr), 1)
        .await;
    let created = tokio::time::Instant::now();
    handle.upsert(monitor.clone());
    // A new monitor runs within about a second.
    assert!(
        e.results_within(monitor.id, Duration::from_secs(3), |r| !r.is_empty())
            .await,
        "no first result within 3 s"
    );
    assert!(created.elapsed() < Duration::from_secs(3));
    assert_eq!(handle.scheduled(), 1);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let results = e.results(monitor.id).await;
    // About one per second: generous bounds for a noisy machine.
    assert!(
        (3..=7).contains(&results.len()),
        "{} results in ~5 s",
        results.len()
    );
    for r in &results {
        assert_eq!(r.status, Status::Up, "{r:?}");
        assert_eq!(r.region, "local");
        assert!(r.timings.total_ms.is_some());
    }
    for pair in results.windows(2) {
        let gap = (pair[1].started_at - pair[0].started_at).num_milliseconds();
        assert!((500..=2_000).contains(&gap), "runs {gap} ms apart");
    }
    let lag = handle.lag_snapshot();
    assert!(lag.count >= 3, "{lag:?}");
    assert!(lag.p99_ms < 1_000.0, "{lag:?}");
    let stored = e.get(monitor.id).await;
    assert_eq!(stored.state.status, Some(Status::Up));
    assert!(
        e.metrics
            .encode()
            .contains(r#"pharos_checks_total{plugin="http",status="up"}"#)
    );
    stop(scheduler, pipeline, Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_target_never_gets_overlapping_runs() {
    let server = support::servers::http().await;
    let e = engine().await;
    let (pipeline, _sink, scheduler, handle) = e.start(vec![]);
    // Each check takes ~2.5 s; the interval is 1 s.
    let monitor = e
        .http_monitor("slow", &format!("http://{}/slow/2500", server.addr), 1)
        .await;
    handle.upsert(monitor.clone());
    tokio::time::sleep(Duration::from_secs(8)).await;
    stop(scheduler, pipeline, Duration::from_secs(5)).await;
    let results = e.results(monitor.id).await;
    assert!(
        (2..=4).contains(&results.len()),
        "{} results of 2.5 s checks in 8 s",
        results.len()
    );
    for pair in results.windows(2) {
        let previous_end =
            pair[0].started_at + chrono::Duration::milliseconds(pair[0].latency_ms as i64);
        assert!(
            pair[1].started_at >= previous_end - chrono::Duration::milliseconds(50),
            "run at {} overlaps the one ending at {previous_end}",
            pair[1].started_at
        );
    }
    assert!(e.metrics.overlap_skipped_total() >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pausing_and_deleting_stop_runs_within_a_second() {
    let server = support::servers::http().await;
    let e = engine().await;
    let url = format!("http://{}/", server.addr);
    let paused = e.http_monitor("paused", &url, 1).await;
    let deleted = e.http_monitor("deleted", &url, 1).await;
    let (pipeline, _sink, scheduler, handle) = e.start(vec![]);
    handle.upsert(paused.clone());
    handle.upsert(deleted.clone());
    assert!(
        eventually(Duration::from_secs(5), || async {
            e.results(paused.id).await.len() >= 2 && e.results(deleted.id).await.len() >= 2
        })
        .await,
        "monitors did not run"
    );
    let spec = MonitorSpec {
        enabled: false,
        ..paused.spec.clone()
    };
    let updated = e.update(&paused, &spec).await;
    handle.upsert(updated);
    handle.remove(deleted.id);
    // A run already going may still land; after a second nothing new starts.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(handle.scheduled(), 0);
    let (p1, d1) = (
        e.results(paused.id).await.len(),
        e.results(deleted.id).await.len(),
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        e.results(paused.id).await.len(),
        p1,
        "paused monitor kept running"
    );
    assert_eq!(
        e.results(deleted.id).await.len(),
        d1,
        "deleted monitor kept running"
    );
    // Resuming brings it back at once.
    let spec = MonitorSpec {
        enabled: true,
        ..paused.spec.clone()
    };
    let resumed = e.update(&paused, &spec).await;
    handle.upsert(resumed);
    assert!(
        e.results_within(paused.id, Duration::from_secs(3), |r| r.len() > p1)
            .await,
        "resumed monitor did not run"
    );
    stop(scheduler, pipeline, Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_change_takes_effect_at_once() {
    let server = support::servers::http().await;
    let e = engine().await;
    let monitor = e
        .http_monitor("flip", &format!("http://{}/status/200", server.addr), 30)
        .await;
    let (pipeline, _sink, scheduler, handle) = e.start(vec![]);
    handle.upsert(monitor.clone());
    assert!(
        e.results_within(monitor.id, Duration::from_secs(3), |r| r.len() == 1)
            .await
    );
    // With a 30 s interval, only the change can cause another run soon.
    let spec = MonitorSpec {
        config: json!({ "url": format!("http://{}/status/500", server.addr) }),
        ..monitor.spec.clone()
    };
    let changed = e.update(&monitor, &spec).await;
    handle.upsert(changed.clone());
    assert!(
        e.results_within(monitor.id, Duration::from_secs(3), |r| r.len() == 2)
            .await,
        "the change did not trigger a run"
    );
    let results = e.results(monitor.id).await;
    assert_eq!(results[0].status, Status::Up);
    assert_eq!(results[1].status, Status::Down, "{:?}", results[1]);
    // A rename keeps the phase: no extra run.
    let renamed = e
        .update(
            &changed,
            &MonitorSpec {
                name: "renamed".into(),
                tags: vec!["t".into()],
                ..spec.clone()
            },
        )
        .await;
    handle.upsert(renamed);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(e.results(monitor.id).await.len(), 2);
    stop(scheduler, pipeline, Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_phases_without_a_burst() {
    let server = support::servers::http().await;
    let e = engine().await;
    let url = format!("http://{}/", server.addr);
    let recent = e.http_monitor("recent", &url, 60).await;
    let fresh = e.http_monitor("fresh", &url, 1).await;
    // `recent` was checked a moment ago by the previous process.
    e.store
        .insert_results(&[result_for(&recent, 0)])
        .await
        .expect("insert");
    let monitors = e.store.all_monitors().await.expect("all monitors");
    let (pipeline, _sink, scheduler, handle) = e.start(monitors);
    assert!(
        e.results_within(fresh.id, Duration::from_secs(3), |r| !r.is_empty())
            .await,
        "a never-checked monitor runs within its interval"
    );
    assert_eq!(handle.scheduled(), 2);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        e.results(recent.id).await.len(),
        1,
        "a monitor checked seconds ago waits for its interval"
    );
    stop(scheduler, pipeline, Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_for_running_checks_up_to_the_grace_period() {
    let server = support::servers::http().await;
    let e = engine().await;
    let slow = e
        .http_monitor("slow", &format!("http://{}/slow/1500", server.addr), 60)
        .await;
    let (pipeline, _sink, scheduler, handle) = e.start(vec![]);
    handle.upsert(slow.clone());
    tokio::time::sleep(Duration::from_millis(1_100)).await; // started, not finished
    stop(scheduler, pipeline, Duration::from_secs(10)).await;
    let results = e.results(slow.id).await;
    assert_eq!(
        results.len(),
        1,
        "the running check finished and was stored"
    );
    assert_eq!(results[0].status, Status::Up);

    // A grace period shorter than the check: the check is abandoned, shutdown is prompt.
    let slower = e
        .http_monitor("slower", &format!("http://{}/slow/4000", server.addr), 60)
        .await;
    let (pipeline, _sink, scheduler, handle) = e.start(vec![]);
    handle.upsert(slower.clone());
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let stopping = tokio::time::Instant::now();
    scheduler.shutdown(Duration::from_millis(200)).await;
    assert!(stopping.elapsed() < Duration::from_secs(2));
    pipeline.shutdown().await;
    assert!(e.results(slower.id).await.is_empty());
}

// ---- push monitors ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_monitors_go_down_without_pings_and_stay_up_with_them() {
    let e = engine().await;
    let silent = e
        .create(&push_spec("silent", 1, 1), Some("tok-silent"))
        .await;
    let alive = e.create(&push_spec("alive", 1, 1), Some("tok-alive")).await;
    let (pipeline, sink, scheduler, handle) = e.start(vec![]);
    let heartbeats = Heartbeats::new(sink.clone(), handle.clone());
    for m in [&silent, &alive] {
        heartbeats.upsert(m);
        handle.upsert(m.clone());
    }
    assert_eq!(heartbeats.len(), 2);
    let pinging = {
        let heartbeats = heartbeats.clone();
        tokio::spawn(async move {
            loop {
                heartbeats
                    .ping("tok-alive", PingKind::Success, None)
                    .await
                    .expect("ping accepted");
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(5_500)).await;
    pinging.abort();
    // Deadlines at about 2, 3, 4 and 5 s: one down result per missed period.
    let missed = e.results(silent.id).await;
    assert!(
        (2..=5).contains(&missed.len()),
        "{} missed-ping results",
        missed.len()
    );
    for r in &missed {
        assert_eq!(r.status, Status::Down);
        assert_eq!(r.error_cause.as_deref(), Some("no_heartbeat"));
        assert!(
            r.message.starts_with("no ping received since "),
            "{}",
            r.message
        );
    }
    let pings = e.results(alive.id).await;
    assert!(pings.len() >= 10, "{} pings stored", pings.len());
    assert!(
        pings.iter().all(|r| r.status == Status::Up),
        "a pinged monitor went down"
    );
    assert_eq!(pings[0].message, "ping received");
    let state = e.get(alive.id).await.state;
    assert!(state.last_ping_at.is_some());
    assert!(e.metrics.heartbeats_received() >= 10);
    stop(scheduler, pipeline, Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_carry_status_message_and_duration() {
    let e = engine().await;
    let job = e.create(&push_spec("job", 60, 60), Some("tok-job")).await;
    let (pipeline, sink, scheduler, handle) = e.start(vec![]);
    let heartbeats = Heartbeats::new(sink.clone(), handle.clone());
    heartbeats.load(std::slice::from_ref(&job));
    assert!(matches!(
        heartbeats.ping("nope", PingKind::Success, None).await,
        Err(PingError::UnknownToken)
    ));
    heartbeats
        .ping("tok-job", PingKind::Start, None)
        .await
        .expect("start");
    tokio::time::sleep(Duration::from_millis(300)).await;
    heartbeats
        .ping(
            "tok-job",
            PingKind::Fail,
            Some("backup failed: disk full".into()),
        )
        .await
        .expect("fail");
    heartbeats
        .ping("tok-job", PingKind::Success, None)
        .await
        .expect("success");
    let paused = MonitorSpec {
        enabled: false,
        ..job.spec.clone()
    };
    let paused = e.update(&job, &paused).await;
    heartbeats.upsert(&paused);
    assert!(matches!(
        heartbeats.ping("tok-job", PingKind::Success, None).await,
        Err(PingError::Paused)
    ));
    heartbeats.remove(job.id);
    assert!(heartbeats.is_empty());
    stop(scheduler, pipeline, Duration::from_secs(1)).await;
    let results = e.results(job.id).await;
    assert_eq!(results.len(), 2, "/start stores nothing: {results:?}");
    assert_eq!(results[0].status, Status::Down);
    assert_eq!(results[0].message, "backup failed: disk full");
    assert!(
        results[0].latency_ms >= 250.0,
        "duration since /start: {}",
        results[0].latency_ms
    );
    assert_eq!(results[1].status, Status::Up);
    assert_eq!(results[1].latency_ms, 0.0);
}

// ---- pipeline ------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_shutdown_writes_everything_accepted() {
    let e = engine().await;
    let monitor = e.http_monitor("sink", "http://127.0.0.1:9/", 60).await;
    // Neither size (batch 64 of 1000) nor time (60 s) flushes the tail: shutdown must.
    let (pipeline, sink) = e.pipeline(PipelineConfig {
        capacity: 2_048,
        batch_size: 64,
        flush_interval: Duration::from_secs(60),
    });
    let mut bus = sink.subscribe();
    const N: usize = 1_000;
    for n in 0..N {
        sink.submit(result_for(&monitor, n))
            .await
            .expect("accepted");
    }
    pipeline.shutdown().await;
    assert_eq!(sink.depth(), 0);
    assert_eq!(e.results(monitor.id).await.len(), N);
    assert_eq!(e.metrics.results_written(), N as u64);
    assert_eq!(e.metrics.results_dropped_total(), 0);
    // Every stored result was published on the bus (1000 fit in its buffer of 1024).
    let mut published = 0;
    while let Ok(r) = bus.try_recv() {
        assert_eq!(r.monitor_id, monitor.id);
        published += 1;
    }
    assert_eq!(published, N);
    assert_eq!(
        sink.submit(result_for(&monitor, 0)).await,
        Err(SubmitError::Closed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_and_wait_returns_once_committed() {
    let e = engine().await;
    let monitor = e.http_monitor("wait", "http://127.0.0.1:9/", 60).await;
    let (pipeline, sink) = e.pipeline(PipelineConfig {
        capacity: 16,
        batch_size: 100,
        flush_interval: Duration::from_millis(100),
    });
    sink.submit_and_wait(result_for(&monitor, 1))
        .await
        .expect("stored");
    assert_eq!(e.results(monitor.id).await.len(), 1);
    pipeline.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_store_fills_the_pipeline_and_refusals_are_counted() {
    use sqlx::Connection;
    let e = engine().await;
    let monitor = e.http_monitor("blocked", "http://127.0.0.1:9/", 60).await;
    // Another connection holds the SQLite write lock: the writer waits in the busy handler.
    let mut locker = sqlx::SqliteConnection::connect(&e.url)
        .await
        .expect("connect");
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut locker)
        .await
        .expect("lock");
    let (pipeline, sink) = e.pipeline(PipelineConfig {
        capacity: 1,
        batch_size: 1,
        flush_interval: Duration::from_millis(10),
    });
    // The first result goes to the (stuck) writer, the second fills the channel.
    sink.submit(result_for(&monitor, 1)).await.expect("first");
    tokio::time::sleep(Duration::from_millis(200)).await;
    sink.submit(result_for(&monitor, 2)).await.expect("second");
    let refused = sink
        .submit_within(result_for(&monitor, 3), Duration::from_millis(200))
        .await;
    assert_eq!(refused, Err(SubmitError::Full));
    assert_eq!(e.metrics.results_refused_total(), 1);
    assert!(e.metrics.backpressure_waits_total() >= 1);
    assert_eq!(sink.depth(), 2);
    assert!(e.metrics.encode().contains("pharos_result_queue_depth 2"));
    // Released: everything accepted is written.
    sqlx::query("COMMIT")
        .execute(&mut locker)
        .await
        .expect("unlock");
    locker.close().await.expect("close");
    pipeline.shutdown().await;
    let stored: Vec<String> = e
        .results(monitor.id)
        .await
        .into_iter()
        .map(|r| r.message)
        .collect();
    assert_eq!(stored, vec!["result 1", "result 2"]);
    assert_eq!(e.metrics.results_dropped_total(), 0);
}

// ---- check runner --------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_plugins_and_secrets_become_error_results() {
    let server = support::servers::http().await;
    let e = engine().await;
    let missing = e
        .create(
            &MonitorSpec {
                plugin: Some("no-such-plugin".into()),
                ..http_spec("missing", "http://127.0.0.1:9/", 60)
            },
            None,
        )
        .await;
    let r = e.checks.run(&missing, 1).await;
    assert_eq!(r.status, Status::Error);
    assert_eq!(r.error_cause.as_deref(), Some("plugin_unavailable"));
    assert!(r.message.contains("no-such-plugin"), "{}", r.message);

    // A secret sealed with another key cannot be revealed.
    let schema = e
        .catalog
        .list(WS)
        .into_iter()
        .find(|p| p.name == "http")
        .expect("built-in http")
        .config_schema;
    let other_key = SecretBox::new([9u8; 32]);
    let sealed = other_key.seal(
        &schema,
        &json!({ "url": format!("http://{}/", server.addr), "bearer_token": "s3cr3t" }),
    );
    assert_ne!(sealed["bearer_token"], "s3cr3t");
    let secret = e
        .create(
            &MonitorSpec {
                config: sealed,
                ..http_spec("secret", "unused", 60)
            },
            None,
        )
        .await;
    let r = e.checks.run(&secret, 1).await;
    assert_eq!(r.status, Status::Error);
    assert_eq!(r.error_cause.as_deref(), Some("secret_unavailable"));
    assert!(!r.message.contains("s3cr3t"));

    // The right key reveals it and the check runs.
    let right_key = SecretBox::new([7u8; 32]);
    let sealed = right_key.seal(
        &schema,
        &json!({ "url": format!("http://{}/", server.addr), "bearer_token": "s3cr3t" }),
    );
    let ok = e
        .create(
            &MonitorSpec {
                config: sealed,
                ..http_spec("ok", "unused", 60)
            },
            None,
        )
        .await;
    let r = e.checks.run(&ok, 1).await;
    assert_eq!(r.status, Status::Up, "{r:?}");
    assert_eq!(r.error_cause, None);

    // The unsaved run uses the config as given.
    let outcome = e
        .checks
        .run_unsaved(
            WS,
            &http_spec("t", &format!("http://{}/status/500", server.addr), 60),
        )
        .await;
    assert_eq!(outcome.status, Status::Down);
}

// ---- catalog -------------------------------------------------------------------------------

/// The component with a custom section appended: valid, same `describe()`, other digest.
fn with_custom_section(component: &[u8]) -> Vec<u8> {
    let name = b"pharos-test";
    let payload = b"different bytes";
    let mut section = vec![name.len() as u8];
    section.extend_from_slice(name);
    section.extend_from_slice(payload);
    let mut out = component.to_vec();
    out.push(0); // custom section id
    out.push(section.len() as u8);
    out.extend(section);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_wait_for_a_grant_then_resolve() {
    let server = support::servers::http().await;
    let e = engine().await;
    let bytes = support::fixture("pharos_fixture_hostile");
    let entry = e.catalog.upload(WS, &bytes, None).await.expect("upload");
    assert_eq!(entry.name, "hostile");
    assert_eq!(entry.state, PluginState::AwaitingGrant);
    assert!(!entry.enabled && !entry.builtin);
    assert_eq!(entry.capabilities, vec![Capability::Http, Capability::Dns]);
    let version = entry.version.clone();
    match e.catalog.resolve(WS, "hostile") {
        Err(CatalogError::NotActive(_, reason)) => assert_eq!(reason, "awaiting grant"),
        other => panic!("expected NotActive, got {:?}", other.err()),
    }
    // The same bytes again: the same entry.
    let again = e
        .catalog
        .upload(WS, &bytes, None)
        .await
        .expect("idempotent");
    assert_eq!(again.digest, entry.digest);
    // Grants must be declared.
    let tcp = GrantRequest::Exactly(Grants::all_of([Capability::Tcp]));
    assert!(matches!(
        e.catalog.grant(WS, "hostile", &version, tcp).await,
        Err(CatalogError::UndeclaredGrant(c)) if c == "tcp"
    ));
    let granted = e
        .catalog
        .grant(WS, "hostile", &version, GrantRequest::All)
        .await
        .expect("grant");
    assert_eq!(granted.state, PluginState::Active);
    let resolved = e.catalog.resolve(WS, "hostile").expect("resolves");
    assert_eq!(resolved.plugin.info.name, "hostile");
    assert!(e.catalog.resolve(WS, &format!("hostile@{version}")).is_ok());
    assert!(matches!(
        e.catalog.resolve(WS, "hostile@9.9.9"),
        Err(CatalogError::NotFound(_))
    ));
    // Uploads are per workspace; built-ins are everywhere.
    assert!(matches!(
        e.catalog.resolve(2, "hostile"),
        Err(CatalogError::NotFound(_))
    ));
    assert!(e.catalog.resolve(2, "http").is_ok());

    // A monitor on it runs in the sandbox with the grant.
    let spec = MonitorSpec {
        plugin: Some("hostile".into()),
        config: json!({"mode": "http", "url": format!("http://{}/", server.addr)}),
        ..http_spec("hostile", "unused", 60)
    };
    let monitor = e.create(&spec, None).await;
    let r = e.checks.run(&monitor, 1).await;
    assert_eq!(r.status, Status::Up, "{r:?}");

    // Narrowed to other hosts: the call is refused by policy.
    let narrowed = GrantRequest::Exactly(Grants {
        capabilities: [Capability::Http].into_iter().collect(),
        allowed_hosts: Some(vec!["example.com".into()]),
    });
    e.catalog
        .grant(WS, "hostile", &version, narrowed)
        .await
        .expect("narrow");
    let r = e.checks.run(&monitor, 1).await;
    assert_ne!(r.status, Status::Up, "{r:?}");

    // Disabled: not resolvable, and checks say why.
    let disabled = e
        .catalog
        .set_enabled(WS, "hostile", &version, false)
        .await
        .expect("disable");
    assert_eq!(disabled.state, PluginState::Disabled);
    match e.catalog.resolve(WS, "hostile") {
        Err(CatalogError::NotActive(_, reason)) => assert_eq!(reason, "disabled"),
        other => panic!("expected NotActive, got {:?}", other.err()),
    }
    let r = e.checks.run(&monitor, 1).await;
    assert_eq!(r.error_cause.as_deref(), Some("plugin_unavailable"));
    e.catalog
        .set_enabled(WS, "hostile", &version, true)
        .await
        .expect("enable");

    // A restart loads it from the store with its grants.
    let reloaded = Catalog::load(runtime(), e.store.clone())
        .await
        .expect("reload");
    let listed = reloaded.list(WS);
    assert_eq!(
        listed.iter().filter(|p| p.builtin).count(),
        pharos::builtin::names().count()
    );
    let hostile = listed.iter().find(|p| p.name == "hostile").expect("listed");
    assert_eq!(hostile.state, PluginState::Active);
    assert_eq!(
        hostile
            .grants
            .as_ref()
            .and_then(|g| g.allowed_hosts.clone()),
        Some(vec!["example.com".to_string()])
    );
    assert!(reloaded.resolve(WS, "hostile").is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_refuse_conflicts_builtin_names_and_junk() {
    let e = engine().await;
    let bytes = support::fixture("pharos_fixture_hostile");
    let entry = e
        .catalog
        .upload(WS, &bytes, Some(GrantRequest::All))
        .await
        .expect("upload with grant");
    assert_eq!(entry.state, PluginState::Active);
    assert!(e.catalog.resolve(WS, "hostile").is_ok());
    // Same name@version, other bytes.
    let other = with_custom_section(&bytes);
    match e.catalog.upload(WS, &other, None).await {
        Err(CatalogError::VersionConflict(id, digest)) => {
            assert_eq!(id, format!("hostile@{}", entry.version));
            assert_eq!(digest, entry.digest);
        }
        other => panic!("expected VersionConflict, got {:?}", other.err()),
    }
    // A built-in's name.
    let http = pharos::builtin::component("http").expect("built-in http");
    assert!(matches!(
        e.catalog.upload(WS, http, None).await,
        Err(CatalogError::Builtin(name)) if name == "http"
    ));
    assert!(matches!(
        e.catalog.delete(WS, "http", "1.0.0").await,
        Err(CatalogError::Builtin(_))
    ));
    // Not a component at all.
    assert!(matches!(
        e.catalog.upload(WS, b"\0asm not really", None).await,
        Err(CatalogError::Invalid(_))
    ));
    let core_module = wat::parse_str("(module)").expect("wat");
    assert!(matches!(
        e.catalog.upload(WS, &core_module, None).await,
        Err(CatalogError::Invalid(_))
    ));
    assert_eq!(e.catalog.list(WS).iter().filter(|p| !p.builtin).count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_is_refused_while_monitors_use_the_version() {
    let e = engine().await;
    let bytes = support::fixture("pharos_fixture_hostile");
    let entry = e
        .catalog
        .upload(WS, &bytes, Some(GrantRequest::All))
        .await
        .expect("upload");
    let version = entry.version.clone();
    let spec = |plugin: String| MonitorSpec {
        plugin: Some(plugin),
        config: json!({"mode": "ok"}),
        ..http_spec("user", "unused", 60)
    };
    // Pinned.
    let pinned = e.create(&spec(format!("hostile@{version}")), None).await;
    match e.catalog.delete(WS, "hostile", &version).await {
        Err(CatalogError::InUse(id, n)) => {
            assert_eq!(id, format!("hostile@{version}"));
            assert_eq!(n, 1);
        }
        other => panic!("expected InUse, got {other:?}"),
    }
    assert!(e.store.delete_monitor(WS, pinned.id).await.expect("delete"));
    // Following the name, with this the only active version.
    let following = e.create(&spec("hostile".into()), None).await;
    assert!(matches!(
        e.catalog.delete(WS, "hostile", &version).await,
        Err(CatalogError::InUse(_, 1))
    ));
    // A disabled version is not what the follower runs: it may go.
    e.catalog
        .set_enabled(WS, "hostile", &version, false)
        .await
        .expect("disable");
    e.catalog
        .delete(WS, "hostile", &version)
        .await
        .expect("deleted");
    assert!(e.catalog.get(WS, "hostile", &version).is_none());
    assert!(matches!(
        e.catalog.resolve(WS, "hostile"),
        Err(CatalogError::NotFound(_))
    ));
    assert!(
        e.store
            .get_plugin(WS, "hostile", &version)
            .await
            .expect("get")
            .is_none()
    );
    let r = e.checks.run(&following, 1).await;
    assert_eq!(r.error_cause.as_deref(), Some("plugin_unavailable"));
    assert!(matches!(
        e.catalog.delete(WS, "hostile", &version).await,
        Err(CatalogError::NotFound(_))
    ));
}
