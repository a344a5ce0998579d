//! The single-request fast path of check plugins that export `planner`.
//!
//! `plan(config)` runs once per distinct config (in an instance with no capabilities) and its
//! answer is cached on the [`Plugin`]. When the plan is an HTTP request, each check sends it
//! from the host — same grant check, network policy, SSRF guard and deadline as the `http`
//! import — and only then instantiates the plugin to `evaluate` the result. No instance is
//! alive while the check waits on the network, so thousands of checks in flight hold no
//! sandbox memory, stack or pool slot, and the instances that do run stay hot in the cache.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OnceCell;
use tokio::time::Instant;

use super::grants::Capability;
use super::store::{CapSet, InvocationTag, not_granted};
use super::{
    CheckExports, CheckInput, ErrorCause, Outcome, Plugin, Preemption, Runtime, Sandbox, Stage,
};
use super::{classify, settle};
use crate::bindings::types::CapError;
use crate::bindings::{http, planner};
use crate::net;

/// Distinct configs whose plan a plugin keeps; the cache starts over when it is full.
pub const MAX_CACHED_PLANS: usize = 4096;

/// How checks of one config run.
#[derive(Debug, Clone)]
pub(super) enum Planned {
    /// The host sends this request, then the plugin's `evaluate` judges the result.
    Http(Arc<PlannedRequest>),
    /// The general path: `checker.check`.
    Check,
    /// Known from the config alone.
    Done(Outcome),
}

/// A planned request and its parts parsed once (or why they cannot be: every check of the
/// config then gets that error, as the `http` import would return it).
#[derive(Debug)]
pub(super) struct PlannedRequest {
    pub(super) request: http::Request,
    prepared: Result<net::http::Prepared, CapError>,
}

/// The result of planning one config: the plan, or the outcome of a failed planning.
type Planning = Result<Planned, Outcome>;

/// Plans per config of one plugin, and the plannings under way (so a config is planned once
/// even when many of its checks start together).
#[derive(Debug, Default)]
pub(super) struct PlanCache {
    ready: Mutex<HashMap<String, Planned>>,
    pending: Mutex<HashMap<String, Arc<OnceCell<Planning>>>>,
}

impl PlanCache {
    fn get(&self, config: &str) -> Option<Planned> {
        lock(&self.ready).get(config).cloned()
    }

    fn insert(&self, config: &str, plan: Planned) {
        let mut plans = lock(&self.ready);
        if plans.len() >= MAX_CACHED_PLANS {
            plans.clear();
        }
        plans.insert(config.to_owned(), plan);
    }

    /// The planning of `config` under way, or a new one.
    fn pending(&self, config: &str) -> Arc<OnceCell<Planning>> {
        lock(&self.pending)
            .entry(config.to_owned())
            .or_default()
            .clone()
    }

    /// Ends the planning `cell` of `config`: a plan is cached, a failure is forgotten (the
    /// next check plans again).
    fn settle(&self, config: &str, cell: &Arc<OnceCell<Planning>>, planning: &Planning) {
        let mut pending = lock(&self.pending);
        if pending.get(config).is_some_and(|c| Arc::ptr_eq(c, cell)) {
            if let Ok(plan) = planning {
                self.insert(config, plan.clone());
            }
            pending.remove(config);
        }
    }

    /// Plans cached now.
    pub(super) fn len(&self) -> usize {
        lock(&self.ready).len()
    }
}

/// How the `evaluate` calls of a plugin ran.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Evaluations {
    /// Calls that completed synchronously (see `runtime::pure`).
    pub synchronous: u64,
    /// Calls that ran on the async path: the synchronous attempt failed or no slot was free.
    pub on_fiber: u64,
}

/// Counters behind [`Evaluations`].
#[derive(Debug, Default)]
pub(super) struct EvaluateCounters {
    synchronous: AtomicU64,
    on_fiber: AtomicU64,
}

impl EvaluateCounters {
    fn count(&self, synchronous: bool) {
        let counter = if synchronous {
            &self.synchronous
        } else {
            &self.on_fiber
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn read(&self) -> Evaluations {
        Evaluations {
            synchronous: self.synchronous.load(Ordering::Relaxed),
            on_fiber: self.on_fiber.load(Ordering::Relaxed),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Runtime {
    /// The plan for `config`, from the cache or from a fresh instance (checks of the same
    /// config that start while it is planned wait for that planning); `Err` is the outcome of
    /// a check whose planning failed (trap, timeout, limit), which is not cached.
    pub(super) async fn plan(
        &self,
        plugin: &Plugin,
        exports: &CheckExports,
        planner: &planner::GuestIndices,
        input: &CheckInput,
    ) -> Planning {
        if let Some(plan) = plugin.plans.get(&input.config) {
            return Ok(plan);
        }
        let cell = plugin.plans.pending(&input.config);
        let planning = cell
            .get_or_init(|| self.plan_fresh(plugin, exports, planner, input))
            .await
            .clone();
        plugin.plans.settle(&input.config, &cell, &planning);
        planning
    }

    /// Plans `config` in a fresh instance with no capabilities.
    async fn plan_fresh(
        &self,
        plugin: &Plugin,
        exports: &CheckExports,
        planner: &planner::GuestIndices,
        input: &CheckInput,
    ) -> Planning {
        let Ok(_permit) = self.permits.acquire().await else {
            return Err(Outcome::shutting_down());
        };
        let started = Instant::now();
        let timeout = input.timeout.max(Duration::from_millis(1));
        let deadline = started + timeout;
        let mut store = self.new_store(
            &plugin.limits,
            CapSet::default(),
            None,
            deadline,
            InvocationTag::check(&plugin.info.name, &input.monitor.id),
            Preemption::Yield,
        );
        let run = async {
            let instance = exports
                .pre
                .instantiate_async(&mut store)
                .await
                .map_err(Stage::Instantiate)?;
            planner
                .load(&mut store, &instance)
                .map_err(Stage::Instantiate)?
                .call_plan(&mut store, &input.config)
                .await
                .map_err(Stage::Call)
        };
        let hard_limit = deadline + Duration::from_millis(plugin.limits.grace_ms);
        let elapsed_ms = || started.elapsed().as_secs_f64() * 1000.0;
        let plan = match tokio::time::timeout_at(hard_limit, run).await {
            Err(_) => {
                return Err(Outcome::host_error(
                    ErrorCause::Timeout,
                    format!(
                        "plugin did not plan the check within its {} ms timeout",
                        timeout.as_millis()
                    ),
                    elapsed_ms(),
                ));
            }
            Ok(Err(stage)) => {
                let (cause, message) = classify(store.data(), stage);
                return Err(Outcome::host_error(
                    cause,
                    format!("planning the check failed: {message}"),
                    elapsed_ms(),
                ));
            }
            Ok(Ok(plan)) => match plan {
                planner::CheckPlan::Http(request) => Planned::Http(Arc::new(PlannedRequest {
                    prepared: net::http::Prepared::of(&request),
                    request,
                })),
                planner::CheckPlan::Check => Planned::Check,
                planner::CheckPlan::Done(outcome) => {
                    Planned::Done(Outcome::from_guest(outcome, &plugin.limits.output, 0.0))
                }
            },
        };
        Ok(plan)
    }

    /// Runs a check whose plan is `request`: the host sends it, then a fresh instance (with
    /// no capabilities) evaluates the result.
    pub(super) async fn check_planned(
        &self,
        plugin: &Plugin,
        exports: &CheckExports,
        planner: &planner::GuestIndices,
        sandbox: &Sandbox,
        input: CheckInput,
        planned: &PlannedRequest,
    ) -> Outcome {
        let started = Instant::now();
        let timeout = input.timeout.max(Duration::from_millis(1));
        let deadline = started + timeout;
        let response = if !sandbox.caps.contains(Capability::Http) {
            Err(not_granted(Capability::Http, &plugin.info.name))
        } else {
            match &planned.prepared {
                Ok(prepared) => {
                    net::http::send_prepared(&sandbox.policy, &planned.request, prepared, deadline)
                        .await
                }
                Err(e) => Err(e.clone()),
            }
        };
        self.evaluate_planned(plugin, exports, planner, input, response.as_ref(), started)
            .await
    }

    /// The second half of a planned check: a fresh instance with no capabilities judges
    /// `response`, the result of the planned request of a check that started at `started`.
    pub(super) async fn evaluate_planned(
        &self,
        plugin: &Plugin,
        exports: &CheckExports,
        planner: &planner::GuestIndices,
        input: CheckInput,
        response: Result<&http::Response, &CapError>,
        started: Instant,
    ) -> Outcome {
        let timeout = input.timeout.max(Duration::from_millis(1));
        let deadline = started + timeout;
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        let request = input.into_request(timeout);
        let store = |preemption| {
            self.new_store(
                &plugin.limits,
                CapSet::default(),
                None,
                deadline,
                InvocationTag::check(&plugin.info.name, &request.monitor.id),
                preemption,
            )
        };
        // The fast path: a synchronous call when a pool slot is free right now.
        if let Some(pure) = &exports.pure
            && let Ok(_permit) = self.permits.try_acquire()
        {
            let mut store = store(Preemption::Abort);
            if let Some(outcome) = pure.call(&mut store, plugin, &request, response, elapsed_ms) {
                plugin.evaluations.count(true);
                return settle(Some(Ok(outcome)), store.data(), plugin, timeout, started);
            }
        }
        let Ok(_permit) = self.permits.acquire().await else {
            return Outcome::shutting_down();
        };
        plugin.evaluations.count(false);
        let mut store = store(Preemption::Yield);
        let run = async {
            let instance = exports
                .pre
                .instantiate_async(&mut store)
                .await
                .map_err(Stage::Instantiate)?;
            planner
                .load(&mut store, &instance)
                .map_err(Stage::Instantiate)?
                .call_evaluate(&mut store, &request, response, elapsed_ms)
                .await
                .map_err(Stage::Call)
        };
        let hard_limit = deadline + Duration::from_millis(plugin.limits.grace_ms);
        let result = tokio::time::timeout_at(hard_limit, run).await.ok();
        settle(result, store.data(), plugin, timeout, started)
    }
}

impl Runtime {
    /// Runs only the `evaluate` step of a planned check on a given response (benchmarks and
    /// tests); `None` when the plugin has no `planner` export.
    pub async fn evaluate_response(
        &self,
        plugin: &Plugin,
        input: CheckInput,
        response: Result<&http::Response, &CapError>,
    ) -> Option<Outcome> {
        let super::Pre::Check(exports) = &plugin.pre else {
            return None;
        };
        let planner = exports.planner.as_ref()?;
        Some(
            self.evaluate_planned(plugin, exports, planner, input, response, Instant::now())
                .await,
        )
    }
}
