//! `pharos serve`: wires the store, runtime, catalog, pipeline, scheduler and API together,
//! runs maintenance (rollups, retention), and shuts down without losing accepted results.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::app::App;
use crate::catalog::{Catalog, CatalogError};
use crate::checks::CheckRunner;
use crate::config::ServeConfig;
use crate::keys;
use crate::metrics::Metrics;
use crate::model::{DEFAULT_WORKSPACE, Scope};
use crate::notify::Notifier;
use crate::pipeline::{Pipeline, PipelineConfig};
use crate::runtime::{Runtime, RuntimeConfig, RuntimeError};
use crate::scheduler::heartbeat::Heartbeats;
use crate::scheduler::{Scheduler, SchedulerConfig};
use crate::secrets::{KeySource, SecretBox, SecretError};
use crate::store::{Store, StoreError};

/// How often complete minutes are rolled up.
const ROLLUP_EVERY: Duration = Duration::from_secs(30);
/// Minutes younger than this are left to raw results (late results of long checks land first).
const ROLLUP_DELAY: chrono::Duration = chrono::Duration::minutes(2);
/// How often old results and idempotency keys are purged.
const PURGE_EVERY: Duration = Duration::from_secs(3600);
/// How long an `Idempotency-Key` is remembered.
const IDEMPOTENCY_TTL: chrono::Duration = chrono::Duration::hours(24);

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The data directory could not be created.
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    /// The secret key is unusable.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The plugin runtime could not start.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// Built-in or stored plugins could not be loaded.
    #[error("cannot load plugins: {0}")]
    Catalog(#[from] CatalogError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// How an operator gets in, decided at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminAccess {
    /// `PHAROS_ADMIN_TOKEN` is the admin key.
    Configured,
    /// First start: this key was generated; only its hash is stored and it is never shown again.
    Generated(String),
    /// A key was generated on an earlier start.
    Existing,
}

/// A running service.
pub struct RunningServer {
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    app: Arc<App>,
    access: AdminAccess,
    stop_http: watch::Sender<bool>,
    http: Vec<JoinHandle<()>>,
    maintenance: JoinHandle<()>,
    scheduler: Scheduler,
    pipeline: Pipeline,
    dispatcher: crate::notify::DispatcherHandle,
}

impl RunningServer {
    /// The address the API listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address `/metrics` listens on when it has its own bind.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The shared service state.
    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// How the admin gets in.
    pub fn access(&self) -> &AdminAccess {
        &self.access
    }

    /// The admin key, when known to this process (configured or generated on this start).
    pub fn admin_key(&self) -> Option<String> {
        match &self.access {
            AdminAccess::Configured => self.app.config.admin_token.clone(),
            AdminAccess::Generated(key) => Some(key.clone()),
            AdminAccess::Existing => None,
        }
    }

    /// Stops accepting requests, lets running checks finish (up to the grace period), writes
    /// every accepted result, then closes the database.
    pub async fn shutdown(self) {
        let _ = self.stop_http.send(true);
        for task in self.http {
            let _ = task.await;
        }
        self.maintenance.abort();
        let grace = Duration::from_secs(self.app.config.shutdown_grace_secs);
        self.scheduler.shutdown(grace).await;
        self.pipeline.shutdown().await;
        self.dispatcher.shutdown().await;
        self.app.store.close().await;
        tracing::info!("pharos stopped; every accepted result is stored");
    }
}

/// Starts every part of the service and binds its listeners.
pub async fn start(mut config: ServeConfig) -> Result<RunningServer, ServeError> {
    // Bind first, so links built from the configuration name the real port when it was 0.
    let listener = bind(config.listen).await?;
    let addr = local_addr(&listener, config.listen);
    config.listen = addr;
    let metrics_listener = match config.metrics.listen {
        Some(bind_addr) => {
            let l = bind(bind_addr).await?;
            config.metrics.listen = Some(local_addr(&l, bind_addr));
            Some(l)
        }
        None => None,
    };
    let config = Arc::new(config);
    std::fs::create_dir_all(&config.data_dir).map_err(|source| ServeError::DataDir {
        path: config.data_dir.display().to_string(),
        source,
    })?;
    let (secrets, source) =
        SecretBox::configured_or_file(config.secret_key.as_deref(), &config.data_dir)?;
    if let KeySource::Generated(path) = &source {
        tracing::warn!(
            path,
            "generated a key for secrets at rest; back it up, and set PHAROS_SECRET_KEY when several nodes share a database"
        );
    }
    let secrets = Arc::new(secrets);
    let store = Store::connect(&config.database_url()).await?;
    store.set_engine_settings(crate::incidents::EngineSettings {
        flap_threshold: config.alerting.flap_threshold,
        flap_window: Duration::from_secs(u64::from(config.alerting.flap_window_secs)),
    });
    let runtime = Arc::new(Runtime::new(runtime_config(&config))?);
    let metrics = Arc::new(Metrics::new());
    let catalog = Arc::new(Catalog::load(runtime.clone(), store.clone()).await?);
    let (pipeline, results) = Pipeline::start(
        store.clone(),
        metrics.clone(),
        PipelineConfig {
            capacity: config.pipeline.capacity,
            batch_size: config.pipeline.batch_size,
            flush_interval: Duration::from_millis(config.pipeline.flush_ms.max(1)),
        },
    );
    let checks = Arc::new(CheckRunner::new(
        runtime.clone(),
        catalog.clone(),
        secrets.clone(),
        config.region.clone(),
    ));
    let monitors = store.all_monitors().await?;
    let (scheduler, scheduler_handle) = Scheduler::start(
        monitors.clone(),
        checks.clone(),
        results.clone(),
        metrics.clone(),
        SchedulerConfig {
            max_concurrency: config.scheduler.max_concurrency,
            jitter: config.scheduler.jitter,
        },
    );
    let heartbeats = Heartbeats::new(results.clone(), scheduler_handle.clone());
    for monitor in &monitors {
        heartbeats.upsert(monitor);
    }
    let access = bootstrap_admin(&store, config.admin_token.as_deref()).await?;
    let notifier = Arc::new(Notifier::new(
        store.clone(),
        catalog.clone(),
        runtime.clone(),
        secrets.clone(),
        metrics.clone(),
        config.alerting.clone(),
        &config.public_url(),
    ));
    let dispatcher = notifier.start();
    let (stop_http, stop_rx) = watch::channel(false);
    let app = Arc::new(App {
        config: config.clone(),
        store: store.clone(),
        runtime,
        catalog,
        checks,
        scheduler: scheduler_handle,
        heartbeats,
        results,
        metrics,
        secrets,
        notifier: notifier.clone(),
        stopping: stop_rx.clone(),
    });

    let mut http = vec![serve(
        listener,
        crate::api::router(app.clone(), config.metrics.listen.is_none()),
        stop_rx.clone(),
    )];
    let metrics_addr = config.metrics.listen;
    if let Some(listener) = metrics_listener {
        http.push(serve(
            listener,
            crate::api::metrics_router(app.clone()),
            stop_rx,
        ));
    }
    let maintenance = tokio::spawn(maintain(
        store,
        chrono::Duration::days(i64::from(config.retention_days)),
        chrono::Duration::days(i64::from(config.rollup_retention_days)),
    ));
    tracing::info!(%addr, monitors = monitors.len(), "pharos is serving");
    Ok(RunningServer {
        addr,
        metrics_addr,
        app,
        access,
        stop_http,
        http,
        maintenance,
        scheduler,
        pipeline,
        dispatcher,
    })
}

/// Runs the service until SIGINT or SIGTERM, printing where to find it first.
pub async fn run(config: ServeConfig) -> Result<(), ServeError> {
    let data_dir = config.data_dir.clone();
    let server = start(config).await?;
    print_banner(&server, &data_dir);
    wait_for_signal().await;
    tracing::info!("shutting down: finishing running checks and writing results");
    server.shutdown().await;
    Ok(())
}

fn runtime_config(config: &ServeConfig) -> RuntimeConfig {
    let mut runtime = config.runtime.clone();
    runtime.allow_private_targets |= config.allow_private_targets;
    if runtime.cache_dir.is_none() {
        runtime.cache_dir = Some(config.data_dir.join("cache"));
    }
    runtime
}

/// Makes sure an admin can get in: the configured token is stored (hashed) as an admin key;
/// without one, the very first start generates a key.
async fn bootstrap_admin(store: &Store, token: Option<&str>) -> Result<AdminAccess, StoreError> {
    if let Some(token) = token {
        let key = keys::from_secret(token.to_string());
        if store.api_key_by_hash(&key.hash).await?.is_none() {
            store
                .create_api_key(
                    DEFAULT_WORKSPACE,
                    "bootstrap (PHAROS_ADMIN_TOKEN)",
                    &key.prefix,
                    &key.hash,
                    &[Scope::Admin],
                )
                .await?;
        }
        return Ok(AdminAccess::Configured);
    }
    if store.count_api_keys().await? > 0 {
        return Ok(AdminAccess::Existing);
    }
    let key = keys::generate();
    store
        .create_api_key(
            DEFAULT_WORKSPACE,
            "admin (generated on first start)",
            &key.prefix,
            &key.hash,
            &[Scope::Admin],
        )
        .await?;
    Ok(AdminAccess::Generated(key.secret))
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

fn local_addr(listener: &TcpListener, fallback: SocketAddr) -> SocketAddr {
    listener.local_addr().unwrap_or(fallback)
}

fn serve(
    listener: TcpListener,
    router: axum::Router,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "HTTP server failed");
        }
    })
}

/// Rolls up complete minutes and purges expired rows, forever.
async fn maintain(store: Store, retention: chrono::Duration, rollup_retention: chrono::Duration) {
    let mut rollups = tokio::time::interval(ROLLUP_EVERY);
    let mut purges = tokio::time::interval(PURGE_EVERY);
    loop {
        tokio::select! {
            _ = rollups.tick() => {
                let until = chrono::Utc::now() - ROLLUP_DELAY;
                if let Err(e) = store.rollup(until).await {
                    tracing::warn!(error = %e, "rollup failed; retrying next round");
                }
            }
            _ = purges.tick() => {
                let now = chrono::Utc::now();
                match store.purge_results(now - retention).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(deleted = n, "purged results past retention"),
                    Err(e) => tracing::warn!(error = %e, "purging results failed"),
                }
                if let Err(e) = store.purge_rollups(now - rollup_retention).await {
                    tracing::warn!(error = %e, "purging rollups failed");
                }
                if let Err(e) = store.purge_idempotency(now - IDEMPOTENCY_TTL).await {
                    tracing::warn!(error = %e, "purging idempotency keys failed");
                }
            }
        }
    }
}

fn print_banner(server: &RunningServer, data_dir: &std::path::Path) {
    let shown_base = server.app.config.public_url();
    println!("Pharos {} is running.", env!("CARGO_PKG_VERSION"));
    println!("Listening on http://{}", server.addr);
    println!("  Dashboard:  {shown_base}/  (API docs at {shown_base}/api/docs)");
    println!("  API:        {shown_base}/api/v1");
    match &server.access {
        AdminAccess::Generated(key) => {
            println!("  Admin API key (shown only this once; store it now):");
            println!("      {key}");
            println!("  Log in with it, or call the API with `Authorization: Bearer {key}`.");
        }
        AdminAccess::Configured => {
            println!("  Log in with the admin token from PHAROS_ADMIN_TOKEN.");
        }
        AdminAccess::Existing => {
            println!(
                "  Log in with the admin API key printed on the first start (or set PHAROS_ADMIN_TOKEN)."
            );
        }
    }
    if let Some(addr) = server.metrics_addr {
        println!("  Metrics:    http://{addr}/metrics");
    }
    let data: PathBuf = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    println!("  Data:       {}", data.display());
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; stopping on Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
