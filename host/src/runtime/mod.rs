//! The sandboxed plugin runtime: one wasmtime `Engine` per process, each plugin compiled once
//! per content digest, a fresh `Store` and instance per invocation under CPU, memory, time and
//! host-call limits. Check plugins run with [`Runtime::check`], notifier plugins with
//! [`Runtime::deliver`]; both share one `Linker` and the same sandbox.

mod cache;
pub mod config;
pub mod delivery;
pub mod grants;
mod host;
pub mod outcome;
pub mod planned;
pub mod pool;
mod pure;
pub mod schema;
mod store;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use wasmtime::component::{Component, HasSelf, InstancePre, Linker};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap,
    UpdateDeadline,
};

use crate::bindings::check::PlannedCheckPlugin;
use crate::bindings::notify::NotifyPluginPre;
use crate::bindings::{checker, notifier, planner, smtp, types};
use crate::net::NetPolicy;

pub use config::{InvocationLimits, RuntimeConfig};
pub use delivery::{DeliverInput, Delivery, DeliveryOutcome};
pub use grants::{Capability, Grants};
pub use outcome::{Details, ErrorCause, Outcome, Status, Timings};
pub use planned::Evaluations;
pub use pool::PoolPlan;
pub use schema::ConfigError;
use store::{CapSet, Invocation, InvocationTag};

/// What can go wrong setting up the runtime.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// wasmtime rejected the engine configuration.
    #[error("cannot configure the WebAssembly engine: {0:#}")]
    Engine(wasmtime::Error),
    /// The host functions could not be linked.
    #[error("cannot link host capabilities: {0:#}")]
    Linker(wasmtime::Error),
}

/// Why a component could not be loaded as a plugin.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The bytes are not a valid WebAssembly component.
    #[error("not a valid WebAssembly component: {0}")]
    NotAComponent(String),
    /// The component imports something the host does not provide.
    #[error("the component needs imports Pharos does not provide: {0}")]
    UnsupportedImports(String),
    /// The component exports neither plugin world's interface.
    #[error(
        "the component exports neither `pharos:plugin/checker@0.1.x` (a check plugin) nor \
         `pharos:plugin/notifier@0.1.x` (a notifier plugin): {0}"
    )]
    WrongWorld(String),
    /// `describe()` failed or returned something invalid.
    #[error("describe() failed: {0}")]
    Describe(String),
    /// The component could not be compiled or cached.
    #[error("compiling the component failed: {0}")]
    Compile(String),
}

/// What kind of plugin a component is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginKind {
    /// A check type.
    Check,
    /// An alert channel.
    Notifier,
}

impl PluginKind {
    /// `check` or `notifier`, as the API and the store spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Check => "check",
            Self::Notifier => "notifier",
        }
    }
}

impl std::fmt::Display for PluginKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The pre-instantiated component of either world.
enum Pre {
    Check(CheckExports),
    Notify(NotifyPluginPre<Invocation>),
}

/// A check plugin: its `checker` export and, when it has one, its `planner` export.
struct CheckExports {
    pre: InstancePre<Invocation>,
    checker: checker::GuestIndices,
    planner: Option<planner::GuestIndices>,
    /// `planner.evaluate` as a synchronous call, when the component has it.
    pure: Option<pure::PureEvaluate>,
}

impl Pre {
    fn kind(&self) -> PluginKind {
        match self {
            Self::Check(_) => PluginKind::Check,
            Self::Notify(_) => PluginKind::Notifier,
        }
    }

    fn instance_pre(&self) -> &InstancePre<Invocation> {
        match self {
            Self::Check(c) => &c.pre,
            Self::Notify(p) => p.instance_pre(),
        }
    }
}

/// A plugin's self-description, validated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub kind: PluginKind,
    pub description: String,
    pub config_schema: serde_json::Value,
    pub capabilities: Vec<Capability>,
}

/// A loaded plugin: compiled, described and ready to instantiate.
pub struct Plugin {
    /// Lowercase hex sha256 of the component bytes.
    pub digest: String,
    /// The validated `describe()` output.
    pub info: PluginInfo,
    /// Size of the component in bytes.
    pub size: usize,
    declared: BTreeSet<Capability>,
    pre: Pre,
    validator: jsonschema::Validator,
    limits: Arc<InvocationLimits>,
    plans: planned::PlanCache,
    evaluations: planned::EvaluateCounters,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("digest", &self.digest)
            .field("info", &self.info)
            .finish()
    }
}

impl Plugin {
    /// `name@version`.
    pub fn id(&self) -> String {
        format!("{}@{}", self.info.name, self.info.version)
    }

    /// Checks a config document against the plugin's JSON Schema.
    pub fn validate_config(&self, config: &serde_json::Value) -> Result<(), ConfigError> {
        schema::validate(&self.validator, config)
    }

    /// The capabilities the plugin declared.
    pub fn declared(&self) -> &BTreeSet<Capability> {
        &self.declared
    }

    /// Which world the component exports (and `describe()` agrees with).
    pub fn kind(&self) -> PluginKind {
        self.pre.kind()
    }

    /// True when the plugin exports the optional `planner` interface (single-request checks
    /// run without an instance alive during I/O).
    pub fn has_planner(&self) -> bool {
        matches!(&self.pre, Pre::Check(c) if c.planner.is_some())
    }

    /// True when synchronous `evaluate` calls run in the evaluate-only variant of a built-in
    /// plugin (one core instance; see host/build.rs) rather than in the component itself.
    pub fn evaluates_in_variant(&self) -> bool {
        matches!(&self.pre, Pre::Check(c) if c.pure.as_ref().is_some_and(|p| p.variant))
    }

    /// Distinct configs whose plan is cached (see [`planned::MAX_CACHED_PLANS`]).
    pub fn cached_plans(&self) -> usize {
        self.plans.len()
    }

    /// How the `evaluate` calls of this plugin's planned checks ran so far.
    pub fn evaluations(&self) -> planned::Evaluations {
        self.evaluations.read()
    }
}

/// Grants resolved against one plugin: what its invocations may do.
#[derive(Debug, Clone)]
pub struct Sandbox {
    caps: CapSet,
    policy: Arc<NetPolicy>,
}

/// Who a check runs for.
#[derive(Debug, Clone, Default)]
pub struct MonitorRef {
    pub id: String,
    pub name: String,
    pub region: String,
}

/// One check to run.
#[derive(Debug, Clone)]
pub struct CheckInput {
    /// The config JSON (validated by the caller or by [`Runtime::check_validated`]).
    pub config: String,
    /// The check's timeout; host calls are cut off there.
    pub timeout: Duration,
    pub attempt: u32,
    pub monitor: MonitorRef,
}

impl CheckInput {
    /// The `check-request` the guest receives.
    fn into_request(self, timeout: Duration) -> checker::CheckRequest {
        checker::CheckRequest {
            config: self.config,
            deadline_ms: u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX),
            attempt: self.attempt,
            monitor: checker::MonitorContext {
                id: self.monitor.id,
                name: self.monitor.name,
                region: self.monitor.region,
            },
        }
    }
}

/// The process-wide plugin runtime.
pub struct Runtime {
    engine: Engine,
    linker: Linker<Invocation>,
    /// Imports of synchronous invocations with no capabilities (see `pure`).
    pure_linker: Linker<Invocation>,
    config: RuntimeConfig,
    pool: PoolPlan,
    permits: Arc<Semaphore>,
    loaded: Mutex<HashMap<String, Arc<Plugin>>>,
    cache: Option<cache::DiskCache>,
    limits: Arc<InvocationLimits>,
    ticker_stop: Arc<AtomicBool>,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

impl Runtime {
    /// Builds the engine, sizes the instance pool from kernel limits and starts the epoch ticker.
    pub fn new(config: RuntimeConfig) -> Result<Self, RuntimeError> {
        let slot_bytes = config.pool_max_memory_bytes + GUARD_BYTES;
        let pool = pool::plan(config.max_instances, slot_bytes + STACK_BYTES);
        let engine =
            Engine::new(&engine_config(&config, pool.instances)).map_err(RuntimeError::Engine)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(RuntimeError::Linker)?;
        // The check world's imports are the notify world's minus `smtp`: one linker serves both.
        PlannedCheckPlugin::add_to_linker::<Invocation, HasSelf<Invocation>>(&mut linker, |s| s)
            .map_err(RuntimeError::Linker)?;
        smtp::add_to_linker::<Invocation, HasSelf<Invocation>>(&mut linker, |s| s)
            .map_err(RuntimeError::Linker)?;
        let pure_linker = pure::linker(&engine)?;
        let ticker_stop = Arc::new(AtomicBool::new(false));
        spawn_ticker(engine.clone(), config.tick(), ticker_stop.clone());
        tracing::info!(
            instances = pool.instances,
            max_map_count = pool.max_map_count,
            advice = pool.advice.as_deref().unwrap_or(""),
            "plugin instance pool sized"
        );
        Ok(Self {
            cache: config
                .cache_dir
                .clone()
                .map(|dir| cache::DiskCache::new(dir, &engine)),
            permits: Arc::new(Semaphore::new(pool.instances as usize)),
            limits: Arc::new(config.limits.clone()),
            engine,
            linker,
            pure_linker,
            config,
            pool,
            loaded: Mutex::new(HashMap::new()),
            ticker_stop,
        })
    }

    /// How the instance pool was sized.
    pub fn pool(&self) -> &PoolPlan {
        &self.pool
    }

    /// The runtime configuration.
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// Invocations currently holding a pool slot.
    pub fn in_flight(&self) -> usize {
        (self.pool.instances as usize).saturating_sub(self.permits.available_permits())
    }

    /// Compiles (or fetches from cache), links and describes a component of either world.
    pub async fn load(&self, bytes: &[u8]) -> Result<Arc<Plugin>, LoadError> {
        self.load_with_limits(bytes, None).await
    }

    /// Like [`Runtime::load`], with per-plugin limits (e.g. more memory for Python components).
    pub async fn load_with_limits(
        &self,
        bytes: &[u8],
        limits: Option<InvocationLimits>,
    ) -> Result<Arc<Plugin>, LoadError> {
        let digest = hex::encode(Sha256::digest(bytes));
        if limits.is_none()
            && let Some(p) = self.lock_loaded().get(&digest)
        {
            return Ok(p.clone());
        }
        let component = self.compile(&digest, bytes).await?;
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::UnsupportedImports(first_line(&e)))?;
        let pre = match checker::GuestIndices::new(&instance_pre) {
            Ok(checker) => {
                let planner = planner::GuestIndices::new(&instance_pre).ok();
                let pure = match planner {
                    Some(_) => self.pure_evaluate(bytes, &component).await,
                    None => None,
                };
                Pre::Check(CheckExports {
                    planner,
                    pure,
                    checker,
                    pre: instance_pre,
                })
            }
            Err(not_check) => match NotifyPluginPre::new(instance_pre) {
                Ok(pre) => Pre::Notify(pre),
                Err(_) => return Err(LoadError::WrongWorld(first_line(&not_check))),
            },
        };
        let cacheable = limits.is_none();
        let limits = limits.map(Arc::new).unwrap_or_else(|| self.limits.clone());
        let raw = self.describe(&pre, &limits).await?;
        let (info, validator) = validate_info(raw, pre.kind())?;
        let plugin = Arc::new(Plugin {
            digest: digest.clone(),
            declared: info.capabilities.iter().copied().collect(),
            info,
            size: bytes.len(),
            pre,
            validator,
            limits,
            plans: planned::PlanCache::default(),
            evaluations: planned::EvaluateCounters::default(),
        });
        // Plugins with their own limits are not shared through the cache.
        if cacheable {
            self.lock_loaded().insert(digest, plugin.clone());
        }
        Ok(plugin)
    }

    /// Resolves grants against a plugin into what its invocations may do.
    pub fn sandbox(&self, plugin: &Plugin, grants: &Grants) -> Sandbox {
        Sandbox {
            caps: CapSet::of(grants.effective(&plugin.declared)),
            policy: Arc::new(NetPolicy {
                allow_private: self.config.allow_private_targets,
                allowed_hosts: grants.allowed_hosts.clone(),
                max_body_bytes: self.config.max_http_body_bytes,
                ..NetPolicy::default()
            }),
        }
    }

    /// A sandbox with every capability the plugin declared (built-in plugins).
    pub fn sandbox_all(&self, plugin: &Plugin) -> Sandbox {
        self.sandbox(plugin, &Grants::all_of(plugin.declared.iter().copied()))
    }

    /// Validates the config against the plugin's schema, then runs the check.
    pub async fn check_validated(
        &self,
        plugin: &Plugin,
        sandbox: &Sandbox,
        input: CheckInput,
    ) -> Outcome {
        let parsed: serde_json::Value = match serde_json::from_str(&input.config) {
            Ok(v) => v,
            Err(e) => {
                return Outcome::host_error(
                    ErrorCause::InvalidConfig,
                    format!("config is not JSON: {e}"),
                    0.0,
                );
            }
        };
        if let Err(e) = plugin.validate_config(&parsed) {
            return Outcome::host_error(ErrorCause::InvalidConfig, e.to_string(), 0.0);
        }
        self.check(plugin, sandbox, input).await
    }

    /// Runs one check in a fresh instance. Never fails: faults become `error` outcomes.
    ///
    /// A plugin with a `planner` export whose plan for this config is one HTTP request runs
    /// as plan (cached per config) → request sent by the host → `evaluate` in a fresh
    /// instance; every other check runs `checker.check` with the capabilities as imports.
    pub async fn check(&self, plugin: &Plugin, sandbox: &Sandbox, input: CheckInput) -> Outcome {
        let Pre::Check(exports) = &plugin.pre else {
            return Outcome::host_error(
                ErrorCause::Instantiate,
                format!(
                    "plugin `{}` is a {} plugin, not a check plugin",
                    plugin.id(),
                    plugin.kind()
                ),
                0.0,
            );
        };
        if let Some(planner) = &exports.planner {
            match self.plan(plugin, exports, planner, &input).await {
                Ok(planned::Planned::Http(request)) => {
                    return self
                        .check_planned(plugin, exports, planner, sandbox, input, &request)
                        .await;
                }
                Ok(planned::Planned::Done(outcome)) => return outcome,
                Ok(planned::Planned::Check) => {}
                Err(outcome) => return outcome,
            }
        }
        let Ok(_permit) = self.permits.acquire().await else {
            return Outcome::shutting_down();
        };
        let started = Instant::now();
        let timeout = input.timeout.max(Duration::from_millis(1));
        let deadline = started + timeout;
        let tag = InvocationTag::check(&plugin.info.name, &input.monitor.id);
        let mut store = self.new_store(
            &plugin.limits,
            sandbox.caps,
            Some(sandbox.policy.clone()),
            deadline,
            tag,
            Preemption::Yield,
        );
        let request = input.into_request(timeout);
        let run = async {
            let instance = exports
                .pre
                .instantiate_async(&mut store)
                .await
                .map_err(Stage::Instantiate)?;
            let checker = exports
                .checker
                .load(&mut store, &instance)
                .map_err(Stage::Instantiate)?;
            checker
                .call_check(&mut store, &request)
                .await
                .map_err(Stage::Call)
        };
        let hard_limit = deadline + Duration::from_millis(plugin.limits.grace_ms);
        let result = tokio::time::timeout_at(hard_limit, run).await.ok();
        settle(result, store.data(), plugin, timeout, started)
    }

    /// Validates the channel config against the notifier's schema (a mismatch is a permanent
    /// failure), then delivers.
    pub async fn deliver_validated(
        &self,
        plugin: &Plugin,
        sandbox: &Sandbox,
        input: DeliverInput,
    ) -> Delivery {
        let refused = |message: String| Delivery {
            outcome: DeliveryOutcome::refused(message),
            elapsed_ms: 0.0,
        };
        let parsed: serde_json::Value = match serde_json::from_str(&input.config) {
            Ok(v) => v,
            Err(e) => return refused(format!("invalid_config: config is not JSON: {e}")),
        };
        if let Err(e) = plugin.validate_config(&parsed) {
            return refused(format!("invalid_config: {e}"));
        }
        self.deliver(plugin, sandbox, input).await
    }

    /// Delivers one notification in a fresh instance, under the same sandbox, limits, permits
    /// and wall-clock timeout as a check. Never fails: a trap, timeout or limit breach is a
    /// `Transient("<cause>: <message>")`, a plugin that is not a notifier a `Permanent`.
    pub async fn deliver(
        &self,
        plugin: &Plugin,
        sandbox: &Sandbox,
        input: DeliverInput,
    ) -> Delivery {
        let Pre::Notify(pre) = &plugin.pre else {
            return Delivery {
                outcome: DeliveryOutcome::refused(format!(
                    "plugin `{}` is a {} plugin, not a notifier plugin",
                    plugin.id(),
                    plugin.kind()
                )),
                elapsed_ms: 0.0,
            };
        };
        let Ok(_permit) = self.permits.acquire().await else {
            return Delivery {
                outcome: DeliveryOutcome::host_fault(
                    ErrorCause::Instantiate,
                    "the plugin runtime is shutting down",
                ),
                elapsed_ms: 0.0,
            };
        };
        let started = Instant::now();
        let timeout = input.timeout.max(Duration::from_millis(1));
        let deadline = started + timeout;
        let tag = InvocationTag {
            plugin: plugin.info.name.as_str().into(),
            monitor_id: None,
            channel: Some(input.channel),
        };
        let mut store = self.new_store(
            &plugin.limits,
            sandbox.caps,
            Some(sandbox.policy.clone()),
            deadline,
            tag,
            Preemption::Yield,
        );
        let notification = notifier::Notification {
            config: input.config,
            title: input.title,
            body: input.body,
            event: input.event,
            idempotency_key: input.idempotency_key,
            attempt: input.attempt,
            deadline_ms: u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX),
            test: input.test,
        };
        let run = async {
            let instance = pre
                .instantiate_async(&mut store)
                .await
                .map_err(Stage::Instantiate)?;
            instance
                .pharos_plugin_notifier()
                .call_deliver(&mut store, &notification)
                .await
                .map_err(Stage::Call)
        };
        let hard_limit = timeout + Duration::from_millis(plugin.limits.grace_ms);
        let result = tokio::time::timeout(hard_limit, run).await;
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        let outcome = match result {
            Err(_) => DeliveryOutcome::host_fault(
                ErrorCause::Timeout,
                format!(
                    "plugin did not finish within its {} ms timeout",
                    timeout.as_millis()
                ),
            ),
            Ok(Ok(result)) => DeliveryOutcome::from_guest(result),
            Ok(Err(stage)) => {
                let (cause, message) = classify(store.data(), stage);
                DeliveryOutcome::host_fault(cause, message)
            }
        };
        Delivery {
            outcome,
            elapsed_ms,
        }
    }

    /// Instantiates the plugin, calls `describe()` and drops the instance: the fixed cost of
    /// one sandboxed invocation, used by `pharos bench plugins`.
    pub async fn instantiate_and_describe(&self, plugin: &Plugin) -> Result<(), LoadError> {
        self.describe(&plugin.pre, &plugin.limits).await.map(drop)
    }

    /// Median costs, in microseconds, of creating a store, of creating one and instantiating
    /// the plugin, and of both plus dropping — the parts of [`Runtime::instantiate_and_describe`].
    pub async fn overhead_breakdown(&self, plugin: &Plugin, rounds: usize) -> [f64; 2] {
        let mut store_only = Vec::with_capacity(rounds);
        let mut with_instance = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let tag = InvocationTag::plugin("bench");
            let t = std::time::Instant::now();
            let store = self.new_store(
                &plugin.limits,
                CapSet::default(),
                None,
                Instant::now() + Duration::from_secs(5),
                tag.clone(),
                Preemption::Yield,
            );
            drop(store);
            store_only.push(t.elapsed().as_secs_f64() * 1e6);
            let t = std::time::Instant::now();
            let mut store = self.new_store(
                &plugin.limits,
                CapSet::default(),
                None,
                Instant::now() + Duration::from_secs(5),
                tag,
                Preemption::Yield,
            );
            let instance = plugin
                .pre
                .instance_pre()
                .instantiate_async(&mut store)
                .await;
            drop(instance);
            drop(store);
            with_instance.push(t.elapsed().as_secs_f64() * 1e6);
        }
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied().unwrap_or_default()
        };
        [median(store_only), median(with_instance)]
    }

    async fn describe(
        &self,
        pre: &Pre,
        limits: &Arc<InvocationLimits>,
    ) -> Result<types::PluginInfo, LoadError> {
        let Ok(_permit) = self.permits.acquire().await else {
            return Err(LoadError::Describe(
                "the plugin runtime is shutting down".into(),
            ));
        };
        let timeout = Duration::from_secs(2);
        let tag = InvocationTag::plugin("describe");
        let mut store = self.new_store(
            limits,
            CapSet::default(),
            None,
            Instant::now() + timeout,
            tag,
            Preemption::Yield,
        );
        let run = async {
            match pre {
                Pre::Check(exports) => {
                    let instance = exports
                        .pre
                        .instantiate_async(&mut store)
                        .await
                        .map_err(Stage::Instantiate)?;
                    // A `planner` export of the wrong shape is refused at load, not per check.
                    if let Some(planner) = &exports.planner {
                        planner
                            .load(&mut store, &instance)
                            .map_err(Stage::Instantiate)?;
                    }
                    exports
                        .checker
                        .load(&mut store, &instance)
                        .map_err(Stage::Instantiate)?
                        .call_describe(&mut store)
                        .await
                        .map_err(Stage::Call)
                }
                Pre::Notify(pre) => {
                    let instance = pre
                        .instantiate_async(&mut store)
                        .await
                        .map_err(Stage::Instantiate)?;
                    instance
                        .pharos_plugin_notifier()
                        .call_describe(&mut store)
                        .await
                        .map_err(Stage::Call)
                }
            }
        };
        match tokio::time::timeout(timeout, run).await {
            Err(_) => Err(LoadError::Describe(format!(
                "did not return within {} ms",
                timeout.as_millis()
            ))),
            Ok(Ok(info)) => Ok(info),
            Ok(Err(stage)) => Err(LoadError::Describe(classify(store.data(), stage).1)),
        }
    }

    /// The synchronous `evaluate` of a planner plugin: from its evaluate-only variant when it
    /// is a built-in that has one (one core instance instead of three; see host/build.rs),
    /// else from the component itself.
    async fn pure_evaluate(
        &self,
        bytes: &[u8],
        component: &Component,
    ) -> Option<pure::PureEvaluate> {
        if let Some(variant) = crate::builtin::evaluate_variant_of(bytes) {
            let digest = hex::encode(Sha256::digest(variant));
            match self.compile(&digest, variant).await {
                Ok(variant) => {
                    // Checking its type instantiates it once, in a pool slot like any instance.
                    let Ok(_permit) = self.permits.acquire().await else {
                        return None;
                    };
                    let mut store = self.new_store(
                        &self.limits,
                        CapSet::default(),
                        None,
                        Instant::now() + Duration::from_secs(2),
                        InvocationTag::plugin("evaluate-variant"),
                        Preemption::Abort,
                    );
                    match pure::PureEvaluate::prepare(&self.pure_linker, &variant)
                        .filter(|pure| pure.typechecks(&mut store))
                    {
                        Some(pure) => return Some(pure.marked_as_variant()),
                        None => tracing::warn!(
                            "the evaluate-only variant of a built-in plugin does not match it; using the plugin"
                        ),
                    }
                }
                Err(e) => tracing::warn!(
                    "cannot compile the evaluate-only variant of a built-in plugin; using the plugin: {e}"
                ),
            }
        }
        pure::PureEvaluate::prepare(&self.pure_linker, component)
    }

    fn new_store(
        &self,
        limits: &Arc<InvocationLimits>,
        caps: CapSet,
        policy: Option<Arc<NetPolicy>>,
        deadline: Instant,
        tag: InvocationTag,
        preemption: Preemption,
    ) -> Store<Invocation> {
        let data = Invocation::new(caps, policy, deadline, InvocationLimits::clone(limits), tag);
        let mut store = Store::new(&self.engine, data);
        store.limiter(|s| s);
        store.set_epoch_deadline(1);
        let budget = Duration::from_millis(limits.cpu_budget_ms);
        let half_tick = self.config.tick() / 2;
        store.epoch_deadline_callback(move |mut ctx| {
            let data = ctx.data_mut();
            let (used, charged) = data.cpu.sample();
            // A synchronous call cannot yield: where an async one would, it is stopped (and
            // run again on a fiber).
            if preemption == Preemption::Abort && charged >= half_tick {
                return Err(wasmtime::Error::msg(
                    "a synchronous invocation ran for half an epoch tick",
                ));
            }
            if used > budget {
                let message = format!(
                    "plugin used more than its {} ms CPU budget",
                    budget.as_millis()
                );
                return Err(data.breach(ErrorCause::CpuLimit, message));
            }
            // Yield only when the guest really ran for a good part of the tick; a guest that
            // merely resumed from a host call after the tick passed keeps going.
            if charged >= half_tick {
                Ok(UpdateDeadline::YieldCustom(1, data.cpu.yield_now()))
            } else {
                Ok(UpdateDeadline::Continue(1))
            }
        });
        store
    }

    async fn compile(&self, digest: &str, bytes: &[u8]) -> Result<Component, LoadError> {
        let engine = self.engine.clone();
        let cache = self.cache.clone();
        let digest = digest.to_string();
        let bytes = bytes.to_vec();
        tokio::task::spawn_blocking(move || match cache {
            Some(cache) => cache.load_or_compile(&engine, &digest, &bytes),
            None => Component::new(&engine, &bytes)
                .map_err(|e| LoadError::NotAComponent(first_line(&e))),
        })
        .await
        .map_err(|e| LoadError::Compile(format!("compiler task failed: {e}")))?
    }

    fn lock_loaded(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Plugin>>> {
        self.loaded
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// What an epoch tick does to a running guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Preemption {
    /// Charge the CPU budget and yield to the executor (async invocations).
    Yield,
    /// Abort the call once it has run for half a tick (synchronous attempts, which are then
    /// run again asynchronously).
    Abort,
}

/// Guard region after each linear memory: small, since memories are bounds-checked.
const GUARD_BYTES: u64 = 64 << 10;
/// Native stack reserved per in-flight instance beyond the wasm stack limit.
const STACK_BYTES: u64 = 1 << 20;

fn engine_config(config: &RuntimeConfig, instances: u32) -> Config {
    let mut c = Config::new();
    c.epoch_interruption(true);
    c.concurrency_support(false);
    c.max_wasm_stack(config.max_wasm_stack);
    c.async_stack_size(config.max_wasm_stack + (256 << 10));
    c.memory_reservation(config.pool_max_memory_bytes);
    c.memory_guard_size(GUARD_BYTES);
    c.memory_reservation_for_growth(0);
    c.memory_init_cow(true);
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(instances)
        .total_stacks(instances)
        .total_core_instances(instances.saturating_mul(8))
        .total_memories(instances.saturating_mul(2))
        .total_tables(instances.saturating_mul(4))
        .max_core_instances_per_component(64)
        .max_memories_per_component(4)
        .max_tables_per_component(16)
        .max_memory_size(usize::try_from(config.pool_max_memory_bytes).unwrap_or(usize::MAX))
        .linear_memory_keep_resident(2 << 20)
        .table_keep_resident(64 << 10)
        .pagemap_scan(wasmtime::Enabled::Auto);
    c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    // `PHAROS_WASM_PROFILER=perfmap` names guest functions in `perf report` (/tmp/perf-PID.map).
    if std::env::var("PHAROS_WASM_PROFILER").is_ok_and(|v| v == "perfmap") {
        c.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    c
}

fn spawn_ticker(engine: Engine, tick: Duration, stop: Arc<AtomicBool>) {
    let spawned = std::thread::Builder::new()
        .name("pharos-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(tick);
                engine.increment_epoch();
            }
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the epoch ticker; plugin CPU limits are not enforced: {e}");
    }
}

/// The outcome of a check invocation that ran under `timeout` from `started`; `None` when the
/// hard limit (timeout + grace) cut it off.
fn settle(
    result: Option<Result<checker::CheckOutcome, Stage>>,
    data: &Invocation,
    plugin: &Plugin,
    timeout: Duration,
    started: Instant,
) -> Outcome {
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    match result {
        None => Outcome::host_error(
            ErrorCause::Timeout,
            format!(
                "plugin did not finish within its {} ms timeout",
                timeout.as_millis()
            ),
            elapsed_ms,
        ),
        Some(Ok(outcome)) => Outcome::from_guest(outcome, &plugin.limits.output, elapsed_ms),
        Some(Err(stage)) => {
            let (cause, message) = classify(data, stage);
            Outcome::host_error(cause, message, elapsed_ms)
        }
    }
}

/// Where an invocation failed.
enum Stage {
    Instantiate(wasmtime::Error),
    Call(wasmtime::Error),
}

/// Names the cause of a failed invocation.
fn classify(data: &Invocation, stage: Stage) -> (ErrorCause, String) {
    if let Some(b) = &data.breach {
        return (b.cause, b.message.clone());
    }
    let (err, instantiate) = match stage {
        Stage::Instantiate(e) => (e, true),
        Stage::Call(e) => (e, false),
    };
    match err.downcast_ref::<Trap>() {
        Some(Trap::StackOverflow) => (
            ErrorCause::StackOverflow,
            "plugin overflowed its stack".into(),
        ),
        Some(Trap::Interrupt) => (ErrorCause::CpuLimit, "plugin was interrupted".into()),
        Some(trap) => (ErrorCause::Trap, format!("plugin trapped: {trap}")),
        None if instantiate => (
            ErrorCause::Instantiate,
            format!("cannot instantiate plugin: {}", first_line(&err)),
        ),
        None => (
            ErrorCause::Trap,
            format!("plugin failed: {}", first_line(&err)),
        ),
    }
}

fn first_line(e: &wasmtime::Error) -> String {
    let text = format!("{e:#}");
    text.lines().next().unwrap_or_default().to_string()
}

/// Checks a raw `describe()` result (of a component exporting `world`'s interface) and
/// compiles its schema.
fn validate_info(
    raw: types::PluginInfo,
    world: PluginKind,
) -> Result<(PluginInfo, jsonschema::Validator), LoadError> {
    let bad = |m: String| Err(LoadError::Describe(m));
    if raw.name.is_empty()
        || raw.name.len() > 64
        || !raw
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return bad(format!(
            "name `{}` must be 1-64 characters of [a-z0-9-]",
            raw.name
        ));
    }
    if semver_like(&raw.version).is_none() {
        return bad(format!(
            "version `{}` is not a semantic version like 1.2.3",
            raw.version
        ));
    }
    if raw.description.len() > 512 {
        return bad("description is longer than 512 bytes".into());
    }
    let schema: serde_json::Value = match serde_json::from_str(&raw.config_schema) {
        Ok(v) => v,
        Err(e) => return bad(format!("config-schema is not JSON: {e}")),
    };
    let validator = match jsonschema::validator_for(&schema) {
        Ok(v) => v,
        Err(e) => return bad(format!("config-schema is not a valid JSON Schema: {e}")),
    };
    let mut capabilities = Vec::new();
    for c in &raw.capabilities {
        if c == "log" {
            continue;
        }
        match c.parse::<Capability>() {
            Ok(cap) if !capabilities.contains(&cap) => capabilities.push(cap),
            Ok(_) => {}
            Err(e) => return bad(e.to_string()),
        }
    }
    let kind = match raw.kind {
        types::PluginKind::Check => PluginKind::Check,
        types::PluginKind::Notifier => PluginKind::Notifier,
    };
    if kind != world {
        let export = match world {
            PluginKind::Check => "checker",
            PluginKind::Notifier => "notifier",
        };
        return bad(format!(
            "a component exporting `{export}` must describe itself as kind `{world}`, not `{kind}`"
        ));
    }
    Ok((
        PluginInfo {
            name: raw.name,
            version: raw.version,
            kind,
            description: raw.description,
            config_schema: schema,
            capabilities,
        },
        validator,
    ))
}

/// Parses `MAJOR.MINOR.PATCH` with an optional `-pre` or `+build` suffix.
fn semver_like(v: &str) -> Option<(u64, u64, u64)> {
    let core = v.split(['-', '+']).next()?;
    let mut parts = core.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    let patch = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some((major, minor, patch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_like_accepts_versions_and_rejects_junk() {
        assert_eq!(semver_like("1.2.3"), Some((1, 2, 3)));
        assert_eq!(semver_like("0.1.0-beta.1"), Some((0, 1, 0)));
        assert_eq!(semver_like("1.2"), None);
        assert_eq!(semver_like("1.2.3.4"), None);
        assert_eq!(semver_like("v1.2.3"), None);
    }

    fn raw(name: &str, schema: &str, caps: &[&str]) -> types::PluginInfo {
        types::PluginInfo {
            name: name.into(),
            version: "1.0.0".into(),
            kind: types::PluginKind::Check,
            description: "d".into(),
            config_schema: schema.into(),
            capabilities: caps.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn validate_info_checks_every_field() {
        let ok = validate_info(
            raw("my-check", r#"{"type":"object"}"#, &["http", "log", "http"]),
            PluginKind::Check,
        );
        let (info, _) = ok.expect("valid info");
        assert_eq!(info.capabilities, vec![Capability::Http]);
        for (info, needle) in [
            (raw("My Check", "{}", &[]), "name"),
            (raw("x", "not json", &[]), "not JSON"),
            (raw("x", r#"{"type": 12}"#, &[]), "not a valid JSON Schema"),
            (raw("x", "{}", &["ftp"]), "unknown capability"),
        ] {
            let err = validate_info(info, PluginKind::Check)
                .expect_err("must fail")
                .to_string();
            assert!(err.contains(needle), "{err} should mention {needle}");
        }
    }

    #[test]
    fn describe_kind_must_match_the_exported_world() {
        let err = validate_info(raw("x", "{}", &[]), PluginKind::Notifier)
            .expect_err("check info from a notifier component")
            .to_string();
        assert!(
            err.contains("`notifier` must describe itself as kind `notifier`"),
            "{err}"
        );
        let mut info = raw("mail", "{}", &["smtp", "http"]);
        info.kind = types::PluginKind::Notifier;
        let (info, _) = validate_info(info, PluginKind::Notifier).expect("notifier info");
        assert_eq!(info.kind, PluginKind::Notifier);
        assert_eq!(info.capabilities, vec![Capability::Smtp, Capability::Http]);
    }
}
