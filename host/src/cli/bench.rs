//! `pharos bench …`: benchmarks against local servers, ours versus a native baseline in one run.

use std::net::SocketAddr;
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::{Args, Subcommand};
use http_body_util::{BodyExt, Empty, Full};
use hyper::server::conn::http1 as server_http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};

use crate::runtime::{CheckInput, MonitorRef, Plugin, Runtime, RuntimeConfig, Sandbox, Status};

/// Benchmark subcommands.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Sandbox overhead and HTTP check throughput of the `http` plugin versus native hyper.
    Plugins(PluginsArgs),
    /// The whole service under load: checks/s, scheduling lag, memory and heartbeat ingestion.
    Service(crate::cli::bench_service::ServiceArgs),
    /// Notification delivery throughput: outbox → webhook notifier plugin → local sink.
    Notify(crate::cli::bench_notify::NotifyArgs),
    /// Server time of a public status page with 50 components, cached and uncached (SQLite).
    Status(crate::cli::bench_status::StatusArgs),
    /// The dashboard with 1 000 monitors: server time of its calls, first paint in Chromium.
    Ui(crate::cli::bench_ui::UiArgs),
    /// Serve the benchmark's HTTP target (started by `bench plugins` as a child process).
    #[command(hide = true)]
    Target,
}

/// Options of `pharos bench plugins`.
#[derive(Debug, Args)]
pub struct PluginsArgs {
    /// HTTP checks per throughput phase (each phase adds a 10 % warm-up).
    #[arg(long, default_value_t = 10_000)]
    pub checks: u64,
    /// Rounds of native + plugin phases, in alternating order; the ratio is their median.
    #[arg(long, default_value_t = 5)]
    pub rounds: u64,
    /// Checks in flight during the throughput runs.
    #[arg(long, default_value_t = 1000)]
    pub in_flight: u64,
    /// Sequential instantiate + describe + drop rounds for the overhead figure.
    #[arg(long, default_value_t = 5000)]
    pub overhead_rounds: u64,
    /// Checks started at once against a target that answers after 1 s (0 skips the run).
    #[arg(long, default_value_t = 10_000)]
    pub burst: u64,
    /// Run only one throughput phase (for profilers such as `perf stat`); no ratio line then.
    #[arg(long, value_enum, default_value_t = Phase::All)]
    pub only: Phase,
    /// Directory for compiled plugin artifacts, so repeated runs skip compilation.
    #[arg(long)]
    pub cache_dir: Option<std::path::PathBuf>,
    /// The plugin measured: `http`, or a `.wasm` build of it (e.g. one with symbols, for
    /// profiles that name guest functions).
    #[arg(long, default_value = "http")]
    pub plugin: String,
}

/// Which throughput phases `pharos bench plugins` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Phase {
    /// Every phase, and the ratio line.
    All,
    /// Native hyper only.
    Native,
    /// The host http capability without a sandbox only.
    Capability,
    /// The `http` plugin only.
    Plugin,
}

/// Runs a benchmark subcommand.
pub async fn run(cmd: BenchCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        BenchCommand::Target => serve_target().await.map(|()| ExitCode::SUCCESS),
        BenchCommand::Plugins(args) => bench_plugins(args).await.map(|()| ExitCode::SUCCESS),
        BenchCommand::Service(args) => crate::cli::bench_service::run(args)
            .await
            .map(|()| ExitCode::SUCCESS),
        BenchCommand::Notify(args) => crate::cli::bench_notify::run(args)
            .await
            .map(|()| ExitCode::SUCCESS),
        BenchCommand::Status(args) => crate::cli::bench_status::run(args)
            .await
            .map(|()| ExitCode::SUCCESS),
        BenchCommand::Ui(args) => crate::cli::bench_ui::run(args)
            .await
            .map(|()| ExitCode::SUCCESS),
    }
}

async fn bench_plugins(args: PluginsArgs) -> anyhow::Result<()> {
    bench_plugins_against(&args).await
}

/// The benchmark's HTTP target process; killed when dropped.
///
/// Each phase gets its own target: a fresh listening port means a fresh space of TCP 4-tuples,
/// so a phase never pays for the ~20 000 TIME_WAIT connections the previous phase left to the
/// same address (connect() then searches for a usable ephemeral port, which made whichever
/// phase ran second about 25 % slower).
struct Target {
    addr: SocketAddr,
    pid: Option<u32>,
    _child: tokio::process::Child,
}

impl Target {
    /// Starts a fresh target.
    async fn start() -> anyhow::Result<Self> {
        let (child, addr) = spawn_target().await?;
        Ok(Self {
            addr,
            pid: child.id(),
            _child: child,
        })
    }

    /// CPU seconds the target process used so far (0 when unknown).
    fn cpu_secs(&self) -> f64 {
        self.pid
            .map_or(0.0, |pid| cpu_secs_of(&format!("/proc/{pid}/stat")))
    }
}

async fn bench_plugins_against(args: &PluginsArgs) -> anyhow::Result<()> {
    let runtime = Arc::new(Runtime::new(RuntimeConfig {
        allow_private_targets: true,
        cache_dir: args.cache_dir.clone(),
        ..RuntimeConfig::default()
    })?);
    let pool = runtime.pool();
    println!(
        "machine: {} cores; vm.max_map_count={}; instance pool={}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        pool.max_map_count
            .map_or("unknown".into(), |m| m.to_string()),
        pool.instances
    );
    let plugin = crate::cli::plugin::load(&runtime, &args.plugin).await?;
    let sandbox = runtime.sandbox_all(&plugin);

    // 1. Fixed cost of a sandboxed invocation.
    for _ in 0..200 {
        runtime.instantiate_and_describe(&plugin).await?;
    }
    let mut samples = Vec::with_capacity(args.overhead_rounds as usize);
    for _ in 0..args.overhead_rounds {
        let t = Instant::now();
        runtime.instantiate_and_describe(&plugin).await?;
        samples.push(t.elapsed().as_secs_f64() * 1e6);
    }
    samples.sort_by(f64::total_cmp);
    let p50 = percentile(&samples, 0.50);
    println!(
        "sandbox overhead (instantiate + describe + drop): p50={p50:.1} us p99={:.1} us over {} rounds",
        percentile(&samples, 0.99),
        samples.len()
    );

    let [store_us, instance_us] = runtime.overhead_breakdown(&plugin, 2000).await;
    println!(
        "  of which: new store + drop p50={store_us:.1} us; new store + instantiate + drop p50={instance_us:.1} us"
    );

    let evaluate_us = evaluate_step_p50(&runtime, &plugin, args.overhead_rounds).await;
    println!(
        "  evaluate step of a planned check (new store + instantiate + evaluate an HTTP 200 + drop): p50={evaluate_us:.1} us"
    );

    // 2. Throughput in interleaved rounds, each phase against a fresh target.
    let only = |phase: Phase| args.only == Phase::All || args.only == phase;
    let rounds = args.rounds.max(1);
    let mut ratios = Vec::new();
    let (mut native_rates, mut plugin_rates) = (Vec::new(), Vec::new());
    let mut failed = Vec::new();
    for round in 1..=rounds {
        // Alternate the order so that neither phase always runs on a machine the other warmed.
        let order = if round % 2 == 1 {
            [Phase::Native, Phase::Plugin]
        } else {
            [Phase::Plugin, Phase::Native]
        };
        let (mut native_rate, mut plugin_rate) = (None, None);
        for phase in order.into_iter().filter(|&p| only(p)) {
            let run = match phase {
                Phase::Native => Throughput::native(args).await?,
                _ => Throughput::plugin(args, &runtime, &plugin, &sandbox).await?,
            };
            let name = if phase == Phase::Native {
                "native hyper:"
            } else {
                "http plugin: "
            };
            println!(
                "round {round}/{rounds} {name} {}",
                run.describe(args.checks)
            );
            if run.ok != args.checks {
                failed.push(format!(
                    "round {round} {name} {}/{} ok",
                    run.ok, args.checks
                ));
            }
            if phase == Phase::Native {
                native_rate = Some(run.rate);
            } else {
                plugin_rate = Some(run.rate);
            }
        }
        native_rates.extend(native_rate);
        plugin_rates.extend(plugin_rate);
        if let (Some(n), Some(p)) = (native_rate, plugin_rate) {
            ratios.push(p / n);
            println!("round {round}/{rounds} ratio {:.2}", p / n);
        }
        // The capability without a sandbox, once, after the first round.
        if round == 1 && only(Phase::Capability) {
            let run = Throughput::capability(args).await?;
            println!(
                "host http capability without a sandbox: {}",
                run.describe(args.checks)
            );
            if run.ok != args.checks {
                failed.push(format!("capability {}/{} ok", run.ok, args.checks));
            }
        }
    }
    if !failed.is_empty() {
        bail!("some checks failed: {}", failed.join("; "));
    }

    // 3. A burst of slow checks, all in flight at once (queued beyond the pool).
    if args.burst > 0 {
        let target = Target::start().await?;
        let slow = format!("http://{}/delay/1000", target.addr);
        let t = Instant::now();
        let (ok, _) = run_plugin(&runtime, &plugin, &sandbox, &slow, args.burst, args.burst).await;
        println!(
            "burst: {ok}/{} slow checks ok with all {} in flight (pool {}), {:.2} s",
            args.burst,
            args.burst,
            pool.instances,
            t.elapsed().as_secs_f64()
        );
        if ok != args.burst {
            bail!("burst: {} of {} checks failed", args.burst - ok, args.burst);
        }
    }
    if args.only != Phase::All {
        return Ok(());
    }
    let (min, max) = (
        ratios.iter().copied().fold(f64::INFINITY, f64::min),
        ratios.iter().copied().fold(0.0, f64::max),
    );
    println!(
        "sandbox_overhead_us_p50={p50:.1} native_checks_per_s={:.0} plugin_checks_per_s={:.0} ratio={:.2} ratio_min={min:.2} ratio_max={max:.2} rounds={rounds}",
        median(&mut native_rates),
        median(&mut plugin_rates),
        median(&mut ratios),
    );
    Ok(())
}

/// The median of `values`: the middle value, or the mean of the two middle ones (0 when empty).
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// One throughput phase: checks that passed, checks/s and CPU per check on both sides.
struct Throughput {
    ok: u64,
    rate: f64,
    client_us: f64,
    server_us: f64,
    secs: f64,
}

impl Throughput {
    /// Runs `job` against a fresh target: a 10 % warm-up, then `args.checks` checks measured.
    async fn measure<F, Fut>(args: &PluginsArgs, job: F) -> anyhow::Result<Self>
    where
        F: Fn(String, u64) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<(u64, f64)>>,
    {
        let target = Target::start().await?;
        let addr = target.addr.to_string();
        job(addr.clone(), (args.checks / 10).max(1)).await?;
        let (cpu, server) = (process_cpu_secs(), target.cpu_secs());
        let (ok, secs) = job(addr, args.checks).await?;
        let per_check = |s: f64| s * 1e6 / args.checks as f64;
        Ok(Self {
            ok,
            rate: ok as f64 / secs,
            client_us: per_check(process_cpu_secs() - cpu),
            server_us: per_check(target.cpu_secs() - server),
            secs,
        })
    }

    async fn native(args: &PluginsArgs) -> anyhow::Result<Self> {
        let in_flight = args.in_flight;
        Self::measure(args, |addr, total| async move {
            run_native(addr.parse()?, total, in_flight).await
        })
        .await
    }

    async fn capability(args: &PluginsArgs) -> anyhow::Result<Self> {
        let in_flight = args.in_flight;
        Self::measure(args, |addr, total| async move {
            Ok(run_capability(&format!("http://{addr}/"), total, in_flight).await)
        })
        .await
    }

    async fn plugin(
        args: &PluginsArgs,
        runtime: &Arc<Runtime>,
        plugin: &Arc<Plugin>,
        sandbox: &Sandbox,
    ) -> anyhow::Result<Self> {
        let in_flight = args.in_flight;
        Self::measure(args, |addr, total| async move {
            let url = format!("http://{addr}/");
            Ok(run_plugin(runtime, plugin, sandbox, &url, total, in_flight).await)
        })
        .await
    }

    /// One line: checks, time, rate, CPU per check.
    fn describe(&self, checks: u64) -> String {
        format!(
            "{}/{checks} ok in {:.2} s = {:.0} checks/s, {:.0} us CPU per check (client side; server {:.0} us)",
            self.ok, self.secs, self.rate, self.client_us, self.server_us
        )
    }
}

/// Median time of the `evaluate` half of a planned `http` check, run sequentially.
async fn evaluate_step_p50(runtime: &Runtime, plugin: &Plugin, rounds: u64) -> f64 {
    use crate::bindings::http::{Header, Response};
    use crate::bindings::types::PhaseTimings;
    let response = Response {
        status: 200,
        version: "HTTP/1.1".into(),
        headers: vec![Header {
            name: "content-length".into(),
            value: "2".into(),
        }],
        body: b"ok".to_vec(),
        body_truncated: false,
        timings: PhaseTimings {
            dns_ms: None,
            connect_ms: Some(0.1),
            tls_ms: None,
            first_byte_ms: Some(0.2),
            total_ms: Some(0.3),
        },
        peer_certificate: None,
        redirects: Vec::new(),
        final_url: "http://127.0.0.1:1/".into(),
        remote_addr: "127.0.0.1:1".into(),
    };
    let mut samples = Vec::with_capacity(rounds as usize);
    for _ in 0..rounds.max(1) {
        let input = bench_input(r#"{"url":"http://127.0.0.1:1/"}"#);
        let t = Instant::now();
        let outcome = runtime
            .evaluate_response(plugin, input, Ok(&response))
            .await;
        samples.push(t.elapsed().as_secs_f64() * 1e6);
        debug_assert!(outcome.is_some_and(|o| o.status == Status::Up));
    }
    samples.sort_by(f64::total_cmp);
    percentile(&samples, 0.50)
}

/// The input of every benchmark check of `config`.
fn bench_input(config: &str) -> CheckInput {
    CheckInput {
        config: config.to_owned(),
        timeout: Duration::from_secs(30),
        attempt: 1,
        monitor: MonitorRef {
            id: "bench".into(),
            name: "bench".into(),
            region: "local".into(),
        },
    }
}

/// User + system CPU time of this process so far, from `/proc/self/stat` (0 when unreadable).
pub(crate) fn process_cpu_secs() -> f64 {
    cpu_secs_of("/proc/self/stat")
}

/// User + system CPU time of the process whose `stat` file is `path` (0 when unreadable).
fn cpu_secs_of(path: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(path) else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

pub(crate) fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// One kind of benchmark check, run over and over by every worker. Each worker owns a clone,
/// so a check pays for no shared reference counts in the harness (the native job has none to
/// pay either).
trait Job: Clone + Send + Sync + 'static {
    /// Runs one check; true when it passed.
    fn run(&self) -> impl std::future::Future<Output = bool> + Send + '_;
}

/// Runs `total` checks of `job` with `in_flight` workers; returns successes and seconds taken.
async fn drive<J: Job>(total: u64, in_flight: u64, job: J) -> (u64, f64) {
    let next = Arc::new(AtomicU64::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..in_flight.min(total) {
        let (next, ok, job) = (next.clone(), ok.clone(), job.clone());
        workers.spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < total {
                if job.run().await {
                    ok.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    while workers.join_next().await.is_some() {}
    (ok.load(Ordering::Relaxed), started.elapsed().as_secs_f64())
}

/// The fastest native path: a fresh connection per check, hyper's HTTP/1 client, no pool.
#[derive(Clone)]
struct NativeJob {
    addr: SocketAddr,
}

impl Job for NativeJob {
    async fn run(&self) -> bool {
        matches!(native_check(self.addr).await, Ok(200))
    }
}

async fn run_native(addr: SocketAddr, total: u64, in_flight: u64) -> anyhow::Result<(u64, f64)> {
    Ok(drive(total, in_flight, NativeJob { addr }).await)
}

/// One request of the native path.
async fn native_check(addr: SocketAddr) -> anyhow::Result<u16> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = http::Request::get("/")
        .header(http::header::HOST, addr.to_string())
        .header(http::header::USER_AGENT, "Pharos-bench")
        .body(Empty::<Bytes>::new())?;
    let resp = sender.send_request(req).await?;
    let status = resp.status().as_u16();
    resp.into_body().collect().await?;
    Ok(status)
}

/// The `http` capability called directly from the host: what the sandbox adds is the rest.
#[derive(Clone)]
struct CapabilityJob {
    url: Arc<str>,
    policy: Arc<crate::net::NetPolicy>,
}

impl Job for CapabilityJob {
    async fn run(&self) -> bool {
        let req = crate::bindings::http::Request {
            method: "GET".into(),
            url: self.url.to_string(),
            headers: Vec::new(),
            body: None,
            timeout_ms: 30_000,
            follow_redirects: true,
            max_redirects: 5,
            verify_tls: true,
            max_body_bytes: 65_536,
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        matches!(crate::net::http::send(&self.policy, &req, deadline).await, Ok(r) if r.status == 200)
    }
}

async fn run_capability(url: &str, total: u64, in_flight: u64) -> (u64, f64) {
    let policy = Arc::new(crate::net::NetPolicy {
        allow_private: true,
        ..crate::net::NetPolicy::default()
    });
    drive(
        total,
        in_flight,
        CapabilityJob {
            url: url.into(),
            policy,
        },
    )
    .await
}

/// A check of the `http` plugin through the runtime, as the scheduler runs it.
#[derive(Clone)]
struct PluginJob {
    runtime: Arc<Runtime>,
    plugin: Arc<Plugin>,
    sandbox: Sandbox,
    config: Arc<str>,
}

impl Job for PluginJob {
    async fn run(&self) -> bool {
        let input = bench_input(&self.config);
        let outcome = self.runtime.check(&self.plugin, &self.sandbox, input).await;
        outcome.status == Status::Up
    }
}

async fn run_plugin(
    runtime: &Arc<Runtime>,
    plugin: &Arc<Plugin>,
    sandbox: &Sandbox,
    url: &str,
    total: u64,
    in_flight: u64,
) -> (u64, f64) {
    let job = PluginJob {
        runtime: runtime.clone(),
        plugin: plugin.clone(),
        sandbox: sandbox.clone(),
        config: serde_json::json!({ "url": url }).to_string().into(),
    };
    drive(total, in_flight, job).await
}

/// Starts `pharos bench target` as a child process and reads the address it listens on.
pub(crate) async fn spawn_target() -> anyhow::Result<(tokio::process::Child, SocketAddr)> {
    let exe = std::env::current_exe().context("cannot locate the pharos executable")?;
    let mut child = tokio::process::Command::new(exe)
        .args(["bench", "target"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start the benchmark target")?;
    let stdout = child
        .stdout
        .take()
        .context("no stdout from the benchmark target")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).await?;
    let addr = line
        .trim()
        .strip_prefix("listening ")
        .context("benchmark target did not report its address")?;
    Ok((child, addr.parse()?))
}

/// HTTP target: `200 ok`, or after N ms for `/delay/N`.
async fn serve_target() -> anyhow::Result<()> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind("127.0.0.1:0".parse()?)?;
    let listener = socket.listen(65_535)?;
    println!("listening {}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = service_fn(|req: http::Request<hyper::body::Incoming>| async move {
                if let Some(ms) = req
                    .uri()
                    .path()
                    .strip_prefix("/delay/")
                    .and_then(|m| m.parse::<u64>().ok())
                {
                    tokio::time::sleep(Duration::from_millis(ms.min(60_000))).await;
                }
                Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                    Bytes::from_static(b"ok"),
                )))
            });
            let _ = server_http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_is_the_middle_value_or_the_mean_of_the_two_middle_ones() {
        assert_eq!(median(&mut []), 0.0);
        assert_eq!(median(&mut [0.7, 0.6, 0.9]), 0.7);
        assert!((median(&mut [0.81, 0.72]) - 0.765).abs() < 1e-12);
    }
}
