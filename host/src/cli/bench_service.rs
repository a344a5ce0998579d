//! `pharos bench service`: the whole service under load against a local mock target — check
//! throughput, scheduling lag, store write rate and memory with N monitors, then heartbeat
//! ingestion — on SQLite and on PostgreSQL.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use clap::{Args, ValueEnum};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use sqlx::Connection;
use tokio::net::TcpStream;

use crate::config::ServeConfig;
use crate::model::{
    AlertPolicy, DEFAULT_WORKSPACE, MonitorSpec, MonitorType, PushSchedule, Status,
};
use crate::server::{self, RunningServer};
use crate::store::Store;

/// Which databases to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchDb {
    Sqlite,
    Postgres,
    Both,
}

/// Options of `pharos bench service`.
#[derive(Debug, Args)]
pub struct ServiceArgs {
    /// Check monitors (HTTP checks of the local target).
    #[arg(long, default_value_t = 10_000)]
    pub monitors: usize,
    /// Interval of every check monitor, in seconds.
    #[arg(long, default_value_t = 10)]
    pub interval: u32,
    /// Seconds before measuring (first runs are spread over one interval); default interval + 5.
    #[arg(long)]
    pub warmup_secs: Option<u64>,
    /// Seconds of the measured check window.
    #[arg(long, default_value_t = 30)]
    pub measure_secs: u64,
    /// Push monitors receiving pings in the heartbeat phase.
    #[arg(long, default_value_t = 1_000)]
    pub push_monitors: usize,
    /// Seconds of the heartbeat phase (0 skips it).
    #[arg(long, default_value_t = 10)]
    pub ping_secs: u64,
    /// Keep-alive connections sending pings.
    #[arg(long, default_value_t = 64)]
    pub ping_connections: usize,
    /// Databases to run on.
    #[arg(long, value_enum, default_value_t = BenchDb::Both)]
    pub database: BenchDb,
    /// PostgreSQL server to create the benchmark databases on.
    #[arg(
        long,
        env = "PHAROS_BENCH_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    pub postgres_url: String,
}

/// Figures of one backend.
#[derive(Debug, Default, Clone)]
struct Figures {
    checks_per_s: f64,
    failed: u64,
    lag_p50_ms: f64,
    lag_p99_ms: f64,
    store_writes_per_s: f64,
    rss_mb: f64,
    cpu_per_check_us: f64,
    pings_per_s: f64,
    pings_acked: u64,
    pings_stored: u64,
}

/// Runs the benchmark and prints one line per backend, the SQLite line last.
pub async fn run(args: ServiceArgs) -> anyhow::Result<()> {
    let (mut target, target_addr) = crate::cli::bench::spawn_target().await?;
    println!(
        "machine: {} cores; {} check monitors every {} s against http://{target_addr}/; {} push monitors",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        args.monitors,
        args.interval,
        args.push_monitors
    );
    let backends = Backend::selected(args.database);
    let mut lines = Vec::new();
    for &backend in backends {
        let figures = match measure(backend, &args, target_addr).await {
            Ok(f) => f,
            Err(e) => {
                let _ = target.start_kill();
                return Err(e);
            }
        };
        let line = format!(
            "db={} monitors={} checks_per_s={:.0} failed={} lag_p50_ms={:.1} lag_p99_ms={:.1} store_writes_per_s={:.0} rss_mb={:.0} cpu_per_check_us={:.0} pings_per_s={:.0} pings_acked={} pings_stored={}",
            backend.name(),
            args.monitors,
            figures.checks_per_s,
            figures.failed,
            figures.lag_p50_ms,
            figures.lag_p99_ms,
            figures.store_writes_per_s,
            figures.rss_mb,
            figures.cpu_per_check_us,
            figures.pings_per_s,
            figures.pings_acked,
            figures.pings_stored,
        );
        println!("{line}");
        lines.push((backend, figures));
    }
    let _ = target.start_kill();
    if let Some((backend, f)) = lines.last() {
        println!(
            "monitors={} checks_per_s={:.0} lag_p99_ms={:.1} rss_mb={:.0} pings_per_s={:.0} db={}",
            args.monitors,
            f.checks_per_s,
            f.lag_p99_ms,
            f.rss_mb,
            f.pings_per_s,
            backend.name()
        );
    }
    Ok(())
}

/// A database backend measured by a benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backends `--database` selects, PostgreSQL first.
    pub(crate) fn selected(db: BenchDb) -> &'static [Backend] {
        match db {
            BenchDb::Sqlite => &[Backend::Sqlite],
            BenchDb::Postgres => &[Backend::Postgres],
            BenchDb::Both => &[Backend::Postgres, Backend::Sqlite],
        }
    }

    /// `sqlite` or `postgres`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// A scratch database and data directory, removed by `cleanup`.
pub(crate) struct Scratch {
    pub(crate) dir: PathBuf,
    pub(crate) url: String,
    pg_admin: Option<(String, String)>,
}

impl Scratch {
    /// A fresh data directory and database for one phase of a benchmark.
    pub(crate) async fn new(
        backend: Backend,
        phase: &str,
        postgres_url: &str,
    ) -> anyhow::Result<Scratch> {
        let tag = format!("pharos_bench_{}_{phase}", std::process::id());
        let dir = std::env::temp_dir().join(&tag);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        match backend {
            Backend::Sqlite => Ok(Scratch {
                url: format!("sqlite://{}", dir.join("pharos.db").display()),
                dir,
                pg_admin: None,
            }),
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(postgres_url)
                    .await
                    .with_context(|| format!("cannot reach PostgreSQL at {postgres_url}"))?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {tag}"))
                    .execute(&mut conn)
                    .await?;
                sqlx::query(&format!("CREATE DATABASE {tag}"))
                    .execute(&mut conn)
                    .await?;
                let mut url = url::Url::parse(postgres_url)?;
                url.set_path(&tag);
                Ok(Scratch {
                    url: url.to_string(),
                    dir,
                    pg_admin: Some((postgres_url.to_string(), tag)),
                })
            }
        }
    }

    /// Removes the directory and drops the database.
    pub(crate) async fn cleanup(self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some((admin, db)) = self.pg_admin
            && let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await
        {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                .execute(&mut conn)
                .await;
        }
    }

    /// Starts a server on the scratch database.
    pub(crate) async fn start(&self) -> anyhow::Result<RunningServer> {
        self.start_with(|_| {}).await
    }

    /// Starts a server on the scratch database after `adjust` changed its config.
    pub(crate) async fn start_with(
        &self,
        adjust: impl FnOnce(&mut ServeConfig),
    ) -> anyhow::Result<RunningServer> {
        let mut config = ServeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: self.dir.clone(),
            database_url: Some(self.url.clone()),
            admin_token: Some(crate::keys::generate().secret),
            secret_key: Some("00".repeat(32)),
            allow_private_targets: true,
            ..ServeConfig::default()
        };
        adjust(&mut config);
        Ok(server::start(config).await?)
    }
}

async fn measure(
    backend: Backend,
    args: &ServiceArgs,
    target: SocketAddr,
) -> anyhow::Result<Figures> {
    let mut figures = Figures::default();
    checks_phase(backend, args, target, &mut figures).await?;
    if args.ping_secs > 0 && args.push_monitors > 0 {
        pings_phase(backend, args, &mut figures).await?;
    }
    Ok(figures)
}

/// Counts results as the pipeline stores them.
#[derive(Default)]
struct Counter {
    stored: AtomicU64,
    failed: AtomicU64,
}

fn count_stored(server: &RunningServer) -> Arc<Counter> {
    let counter = Arc::new(Counter::default());
    let mut rx = server.app().results.subscribe();
    let c = counter.clone();
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(r) => {
                    c.stored.fetch_add(1, Ordering::Relaxed);
                    if r.status != Status::Up {
                        c.failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    c.stored.fetch_add(n, Ordering::Relaxed);
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    });
    counter
}

async fn checks_phase(
    backend: Backend,
    args: &ServiceArgs,
    target: SocketAddr,
    figures: &mut Figures,
) -> anyhow::Result<()> {
    let scratch = Scratch::new(backend, "checks", &args.postgres_url).await?;
    let store = Store::connect(&scratch.url).await?;
    let url = format!("http://{target}/");
    let specs: Vec<(MonitorSpec, Option<String>)> = (0..args.monitors)
        .map(|i| {
            let spec = MonitorSpec {
                name: format!("bench {i}"),
                kind: MonitorType::Check,
                plugin: Some("http".into()),
                config: serde_json::json!({ "url": url }),
                interval_secs: args.interval,
                timeout_ms: (args.interval * 1000).min(5_000),
                enabled: true,
                tags: vec!["bench".into()],
                push: None,
                alert: AlertPolicy::default(),
            };
            (spec, None)
        })
        .collect();
    for chunk in specs.chunks(1_000) {
        store.create_monitors(DEFAULT_WORKSPACE, chunk).await?;
    }
    store.close().await;

    let server = scratch.start().await?;
    let counter = count_stored(&server);
    let warmup = args.warmup_secs.unwrap_or(u64::from(args.interval) + 5);
    tokio::time::sleep(Duration::from_secs(warmup)).await;
    server.app().metrics.reset_scheduler_lag();
    let (stored0, failed0) = (
        counter.stored.load(Ordering::Relaxed),
        counter.failed.load(Ordering::Relaxed),
    );
    let (cpu0, t0) = (crate::cli::bench::process_cpu_secs(), Instant::now());
    tokio::time::sleep(Duration::from_secs(args.measure_secs)).await;
    let secs = t0.elapsed().as_secs_f64();
    let cpu = crate::cli::bench::process_cpu_secs() - cpu0;
    let stored = counter.stored.load(Ordering::Relaxed) - stored0;
    let lag = server.app().scheduler.lag_snapshot();
    figures.checks_per_s = stored as f64 / secs;
    figures.store_writes_per_s = figures.checks_per_s;
    figures.failed = counter.failed.load(Ordering::Relaxed) - failed0;
    figures.lag_p50_ms = lag.p50_ms;
    figures.lag_p99_ms = lag.p99_ms;
    figures.rss_mb = rss_bytes() as f64 / (1024.0 * 1024.0);
    figures.cpu_per_check_us = if stored > 0 {
        cpu * 1e6 / stored as f64
    } else {
        0.0
    };
    server.shutdown().await;
    scratch.cleanup().await;
    Ok(())
}

async fn pings_phase(
    backend: Backend,
    args: &ServiceArgs,
    figures: &mut Figures,
) -> anyhow::Result<()> {
    let scratch = Scratch::new(backend, "pings", &args.postgres_url).await?;
    let store = Store::connect(&scratch.url).await?;
    let mut tokens = Vec::with_capacity(args.push_monitors);
    let specs: Vec<(MonitorSpec, Option<String>)> = (0..args.push_monitors)
        .map(|i| {
            let token = crate::keys::generate().secret.replace("phk_", "push");
            tokens.push(token.clone());
            let spec = MonitorSpec {
                name: format!("job {i}"),
                kind: MonitorType::Push,
                plugin: None,
                config: serde_json::json!({}),
                interval_secs: 3_600,
                timeout_ms: 1_000,
                enabled: true,
                tags: vec!["bench".into()],
                push: Some(PushSchedule::default()),
                alert: AlertPolicy::default(),
            };
            (spec, Some(token))
        })
        .collect();
    for chunk in specs.chunks(1_000) {
        store.create_monitors(DEFAULT_WORKSPACE, chunk).await?;
    }
    store.close().await;

    let server = scratch.start().await?;
    let counter = count_stored(&server);
    let tokens: Arc<[String]> = tokens.into();
    let acked = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(args.ping_secs);
    let t0 = Instant::now();
    let mut senders = tokio::task::JoinSet::new();
    for worker in 0..args.ping_connections {
        let (tokens, acked, addr) = (tokens.clone(), acked.clone(), server.addr());
        senders.spawn(async move {
            let mut i = worker;
            while Instant::now() < deadline {
                let Ok((mut sender, conn)) = connect(addr).await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                tokio::spawn(conn);
                while Instant::now() < deadline {
                    let token = &tokens[i % tokens.len()];
                    i += 1;
                    let Ok(req) = http::Request::get(format!("/api/v1/push/{token}"))
                        .header(http::header::HOST, addr.to_string())
                        .body(Empty::<Bytes>::new())
                    else {
                        break;
                    };
                    match sender.send_request(req).await {
                        Ok(resp) => {
                            let ok = resp.status().is_success();
                            if resp.into_body().collect().await.is_err() {
                                break;
                            }
                            if ok {
                                acked.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Err(_) => break,
                    }
                }
            }
        });
    }
    while senders.join_next().await.is_some() {}
    let secs = t0.elapsed().as_secs_f64();
    let acked = acked.load(Ordering::Relaxed);
    // Every acknowledged ping must reach the store.
    let wait_until = Instant::now() + Duration::from_secs(60);
    while counter.stored.load(Ordering::Relaxed) < acked && Instant::now() < wait_until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    figures.pings_acked = acked;
    figures.pings_stored = counter.stored.load(Ordering::Relaxed);
    figures.pings_per_s = acked as f64 / secs;
    server.shutdown().await;
    scratch.cleanup().await;
    Ok(())
}

type Conn = (
    hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    hyper::client::conn::http1::Connection<TokioIo<TcpStream>, Empty<Bytes>>,
);

async fn connect(addr: SocketAddr) -> anyhow::Result<Conn> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?)
}

/// Resident set size of this process, from `/proc/self/status` (0 when unreadable).
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}
