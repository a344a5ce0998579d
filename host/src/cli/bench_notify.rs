//! `pharos bench notify`: notification delivery throughput of the whole path — results stored
//! by the incident engine open incidents and write outbox rows in their transaction, the
//! dispatcher claims them, renders each event, runs the `webhook` notifier plugin in a fresh
//! sandbox per delivery and POSTs to a local sink, and records every attempt — on SQLite and
//! PostgreSQL.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use clap::Args;

use crate::cli::bench_service::{Backend, BenchDb, Scratch};
use crate::model::{
    AlertPolicy, ChannelSpec, DEFAULT_WORKSPACE, LOCAL_REGION, MonitorSpec, MonitorType, NewResult,
    PushSchedule, Status, Timings,
};
use crate::store::Store;

/// Options of `pharos bench notify`.
#[derive(Debug, Args)]
pub struct NotifyArgs {
    /// Notifications to deliver (one incident per monitor, one channel).
    #[arg(long, default_value_t = 20_000)]
    pub notifications: usize,
    /// Deliveries running at once (`alerting.concurrency`).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Databases to run on.
    #[arg(long, value_enum, default_value_t = BenchDb::Both)]
    pub database: BenchDb,
    /// Down→webhook latency rounds (interval 1 s, failure threshold 2; 0 skips the phase).
    #[arg(long, default_value_t = 5)]
    pub latency_rounds: usize,
    /// PostgreSQL server to create the benchmark databases on.
    #[arg(
        long,
        env = "PHAROS_BENCH_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    pub postgres_url: String,
}

/// Runs the benchmark; the last line is the SQLite figure.
pub async fn run(args: NotifyArgs) -> anyhow::Result<()> {
    let (mut target, target_addr) = crate::cli::bench::spawn_target().await?;
    println!(
        "machine: {} cores; {} notifications through the webhook plugin to http://{target_addr}/hook, {} at once",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        args.notifications,
        args.concurrency
    );
    let mut last = None;
    for &backend in Backend::selected(args.database) {
        let result = measure(backend, &args, target_addr).await;
        let (per_s, secs, delivered) = match result {
            Ok(f) => f,
            Err(e) => {
                let _ = target.start_kill();
                return Err(e);
            }
        };
        println!(
            "db={} notifications={} delivered={delivered} seconds={secs:.2} deliveries_per_s={per_s:.0}",
            backend.name(),
            args.notifications
        );
        last = Some((backend, per_s));
    }
    let _ = target.start_kill();
    if args.latency_rounds > 0 {
        let (p50, max) = latency(&args).await?;
        println!(
            "latency: target down -> webhook received p50={p50:.0} ms max={max:.0} ms over {} rounds (interval 1 s x threshold 2; bar 3000 ms)",
            args.latency_rounds
        );
    }
    if let Some((backend, per_s)) = last {
        println!(
            "deliveries_per_s={per_s:.0} notifications={} db={}",
            args.notifications,
            backend.name()
        );
    }
    Ok(())
}

/// Fills the outbox through the engine and times the deliveries: (per second, seconds,
/// delivered).
async fn measure(
    backend: Backend,
    args: &NotifyArgs,
    target: SocketAddr,
) -> anyhow::Result<(f64, f64, u64)> {
    let scratch = Scratch::new(backend, "notify", &args.postgres_url).await?;
    let store = Store::connect(&scratch.url).await?;
    store
        .create_channel(
            DEFAULT_WORKSPACE,
            &ChannelSpec {
                name: "bench sink".into(),
                plugin: "webhook".into(),
                config: serde_json::json!({ "url": format!("http://{target}/hook") }),
                enabled: true,
                is_default: true,
                tags: vec![],
                storm_limit: 0,
                storm_window_secs: 300,
            },
        )
        .await?;
    // Push monitors that expect a ping once a day: the scheduler leaves them alone.
    let specs: Vec<(MonitorSpec, Option<String>)> = (0..args.notifications)
        .map(|i| {
            let spec = MonitorSpec {
                name: format!("bench {i}"),
                kind: MonitorType::Push,
                plugin: None,
                config: serde_json::json!({}),
                interval_secs: 86_400,
                timeout_ms: 1_000,
                enabled: true,
                tags: vec![],
                push: Some(PushSchedule::default()),
                alert: AlertPolicy {
                    failure_threshold: 1,
                    ..AlertPolicy::default()
                },
            };
            (spec, Some(format!("bench-token-{i}")))
        })
        .collect();
    let mut ids = Vec::with_capacity(specs.len());
    for chunk in specs.chunks(1_000) {
        ids.extend(
            store
                .create_monitors(DEFAULT_WORKSPACE, chunk)
                .await?
                .iter()
                .map(|m| m.id),
        );
    }
    // The engine opens one incident per monitor and writes one outbox row each, in the
    // transactions that store the results; the dispatcher then drains a full outbox.
    let down = |id: i64| NewResult {
        monitor_id: id,
        workspace_id: DEFAULT_WORKSPACE,
        region: LOCAL_REGION.into(),
        started_at: chrono::Utc::now(),
        status: Status::Down,
        latency_ms: 1.0,
        message: "connection refused".into(),
        timings: Timings::default(),
        metrics: vec![],
        details: None,
        error_cause: None,
        ping: false,
    };
    let engine_started = Instant::now();
    for chunk in ids.chunks(500) {
        let batch: Vec<NewResult> = chunk.iter().map(|id| down(*id)).collect();
        store.insert_results(&batch).await?;
    }
    let engine_secs = engine_started.elapsed().as_secs_f64();
    println!(
        "db={} engine: {} results -> incidents + outbox rows in {engine_secs:.2} s ({:.0}/s)",
        backend.name(),
        ids.len(),
        ids.len() as f64 / engine_secs.max(1e-9)
    );
    store.close().await;

    let concurrency = args.concurrency;
    let server = scratch
        .start_with(|c| {
            c.alerting.concurrency = concurrency;
        })
        .await?;
    let app = server.app().clone();
    let started = Instant::now();
    let mut first: Option<Instant> = None;
    let want = args.notifications as u64;
    let deadline = started + Duration::from_secs(600);
    let mut delivered = 0;
    while delivered < want && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
        delivered = app.metrics.notifications_delivered();
        if first.is_none() && delivered > 0 {
            first = Some(Instant::now());
        }
    }
    let done = Instant::now();
    let secs = done
        .duration_since(first.unwrap_or(started))
        .as_secs_f64()
        .max(1e-9);
    // The first delivery is counted at `first`: the rate covers the rest.
    let per_s = delivered.saturating_sub(1) as f64 / secs;
    let counts = app.store.notification_counts().await?;
    server.shutdown().await;
    scratch.cleanup().await;
    if delivered < want {
        anyhow::bail!(
            "only {delivered} of {want} notifications were delivered within 10 minutes ({counts:?})"
        );
    }
    Ok((per_s, secs, delivered))
}

/// A loopback HTTP server answering every request with the status in `status`, and sending
/// the time of each POST it receives down `posts`.
async fn flip_server(
    status: Arc<AtomicU16>,
    posts: Option<tokio::sync::mpsc::UnboundedSender<Instant>>,
) -> anyhow::Result<SocketAddr> {
    use http_body_util::{BodyExt, Full};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (status, posts) = (status.clone(), posts.clone());
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let (status, posts) = (status.clone(), posts.clone());
                        async move {
                            let post = req.method() == http::Method::POST;
                            let _ = req.into_body().collect().await;
                            if post && let Some(tx) = &posts {
                                let _ = tx.send(Instant::now());
                            }
                            let mut resp =
                                http::Response::new(Full::new(bytes::Bytes::from_static(b"ok")));
                            *resp.status_mut() =
                                http::StatusCode::from_u16(status.load(Ordering::Relaxed))
                                    .unwrap_or(http::StatusCode::OK);
                            Ok::<_, std::convert::Infallible>(resp)
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

/// Rounds of: target goes down → time until the `opened` webhook arrives; then back up and
/// wait for `resolved`. Returns (p50, max) in milliseconds.
async fn latency(args: &NotifyArgs) -> anyhow::Result<(f64, f64)> {
    let target_status = Arc::new(AtomicU16::new(200));
    let target = flip_server(target_status.clone(), None).await?;
    let (tx, mut posts) = tokio::sync::mpsc::unbounded_channel();
    let hook = flip_server(Arc::new(AtomicU16::new(200)), Some(tx)).await?;
    let scratch = Scratch::new(Backend::Sqlite, "latency", &args.postgres_url).await?;
    let server = scratch
        .start_with(|c| {
            c.scheduler.jitter = 0.0;
            // Every round flips the monitor twice: keep flap detection out of the way.
            c.alerting.flap_threshold = 10_000;
        })
        .await?;
    let app = server.app().clone();
    let ch = app
        .store
        .create_channel(
            DEFAULT_WORKSPACE,
            &ChannelSpec {
                name: "hook".into(),
                plugin: "webhook".into(),
                config: serde_json::json!({ "url": format!("http://{hook}/hook") }),
                enabled: true,
                is_default: true,
                tags: vec![],
                storm_limit: 0,
                storm_window_secs: 300,
            },
        )
        .await?;
    let _ = ch;
    let monitor = app
        .store
        .create_monitor(
            DEFAULT_WORKSPACE,
            &MonitorSpec {
                name: "latency".into(),
                kind: MonitorType::Check,
                plugin: Some("http".into()),
                config: serde_json::json!({ "url": format!("http://{target}/") }),
                interval_secs: 1,
                timeout_ms: 1_000,
                enabled: true,
                tags: vec![],
                push: None,
                alert: AlertPolicy::default(),
            },
            None,
        )
        .await?;
    app.monitor_changed(&monitor);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut samples = Vec::new();
    for _ in 0..args.latency_rounds {
        target_status.store(500, Ordering::Relaxed);
        let down_at = Instant::now();
        let opened = tokio::time::timeout(Duration::from_secs(30), posts.recv())
            .await
            .map_err(|_| anyhow::anyhow!("no opened notification within 30 s"))?
            .ok_or_else(|| anyhow::anyhow!("webhook sink stopped"))?;
        samples.push(opened.duration_since(down_at).as_secs_f64() * 1000.0);
        target_status.store(200, Ordering::Relaxed);
        tokio::time::timeout(Duration::from_secs(30), posts.recv())
            .await
            .map_err(|_| anyhow::anyhow!("no resolved notification within 30 s"))?;
        // Land the next flip at a random point of the check interval.
        tokio::time::sleep(Duration::from_millis(1_300 + rand::random::<u64>() % 1_000)).await;
    }
    server.shutdown().await;
    scratch.cleanup().await;
    samples.sort_by(f64::total_cmp);
    let p50 = samples.get(samples.len() / 2).copied().unwrap_or_default();
    let max = samples.last().copied().unwrap_or_default();
    Ok((p50, max))
}
