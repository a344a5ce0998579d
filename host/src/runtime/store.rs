//! The per-invocation store data: sandbox context, limits and accounting.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::config::InvocationLimits;
use super::grants::Capability;
use super::outcome::ErrorCause;
use crate::bindings::types::CapError;
use crate::net::NetPolicy;

/// A limit breach that aborts the invocation; surfaces as a trap carrying this error.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct LimitBreach {
    /// Which limit was hit.
    pub cause: ErrorCause,
    /// Human explanation.
    pub message: String,
}

impl LimitBreach {
    fn new(cause: ErrorCause, message: String) -> Self {
        Self { cause, message }
    }
}

/// The capabilities an invocation may use, as a small bit set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapSet(u8);

impl CapSet {
    /// The set of the given capabilities.
    pub fn of(caps: impl IntoIterator<Item = Capability>) -> Self {
        Self(caps.into_iter().fold(0, |acc, c| acc | Self::bit(c)))
    }

    /// True when `cap` is in the set.
    pub fn contains(self, cap: Capability) -> bool {
        self.0 & Self::bit(cap) != 0
    }

    fn bit(cap: Capability) -> u8 {
        1 << (cap as u8)
    }
}

/// Identity of the running invocation, for log tagging.
#[derive(Debug, Clone)]
pub struct InvocationTag {
    /// The plugin's name.
    pub plugin: Arc<str>,
    /// The monitor a check runs for.
    pub monitor_id: Option<String>,
    /// The alert channel a delivery is for.
    pub channel: Option<String>,
}

impl InvocationTag {
    /// A tag for a check of `monitor_id` by `plugin`.
    pub fn check(plugin: &str, monitor_id: &str) -> Self {
        Self {
            plugin: plugin.into(),
            monitor_id: Some(monitor_id.to_owned()),
            channel: None,
        }
    }

    /// A tag naming the plugin only (describe, benchmarks).
    pub fn plugin(plugin: &str) -> Self {
        Self {
            plugin: plugin.into(),
            monitor_id: None,
            channel: None,
        }
    }
}

/// Everything a single plugin invocation's `Store` holds.
pub struct Invocation {
    /// Built on the first WASI call: most invocations make none.
    wasi: Option<WasiCtx>,
    table: ResourceTable,
    /// Capabilities declared and granted.
    pub caps: CapSet,
    /// Network policy for every outbound call; `None` for an invocation granted no
    /// capability (then no call reaches the network, see [`Invocation::policy`]).
    policy: Option<Arc<NetPolicy>>,
    /// Host calls are cut off at this instant.
    pub deadline: Instant,
    /// Limits of this invocation (a copy: no reference count shared between threads is
    /// touched per invocation).
    pub limits: InvocationLimits,
    /// Who is running, for logs.
    pub tag: InvocationTag,
    /// Guest execution time accounting.
    pub cpu: CpuMeter,
    host_calls: u32,
    log_calls: u32,
    /// Log lines dropped by the rate limit.
    pub logs_dropped: u32,
    /// The limit that ended the invocation, when one did.
    pub breach: Option<LimitBreach>,
}

impl Invocation {
    /// A fresh sandbox: no files, env, args or sockets; clocks and random only.
    pub fn new(
        caps: CapSet,
        policy: Option<Arc<NetPolicy>>,
        deadline: Instant,
        limits: InvocationLimits,
        tag: InvocationTag,
    ) -> Self {
        Self {
            wasi: None,
            table: ResourceTable::new(),
            caps,
            policy,
            deadline,
            limits,
            tag,
            cpu: CpuMeter::new(),
            host_calls: 0,
            log_calls: 0,
            logs_dropped: 0,
            breach: None,
        }
    }

    /// The network policy of outbound calls. An invocation without one was granted no
    /// capability, so [`Invocation::enter`] refuses every call before the policy matters;
    /// should one get through anyway, the policy it gets allows no host.
    pub fn policy(&self) -> &NetPolicy {
        static NO_HOST: std::sync::LazyLock<NetPolicy> = std::sync::LazyLock::new(|| NetPolicy {
            allowed_hosts: Some(Vec::new()),
            ..NetPolicy::default()
        });
        self.policy.as_deref().unwrap_or(&NO_HOST)
    }

    /// The resource table holding open connections.
    pub fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    /// Accounts one capability call: `Err` aborts the guest, `Ok(Err)` is returned to it.
    pub fn enter(&mut self, cap: Capability) -> wasmtime::Result<Result<(), CapError>> {
        self.host_calls += 1;
        if self.host_calls > self.limits.max_host_calls {
            return Err(self.breach(
                ErrorCause::HostCallLimit,
                format!(
                    "plugin made more than {} capability calls",
                    self.limits.max_host_calls
                ),
            ));
        }
        if !self.caps.contains(cap) {
            return Ok(Err(not_granted(cap, &self.tag.plugin)));
        }
        if Instant::now() >= self.deadline {
            return Ok(Err(CapError::Timeout(
                "the check deadline has passed".into(),
            )));
        }
        Ok(Ok(()))
    }

    /// Accounts one log call: `Ok(true)` to emit, `Ok(false)` to drop, `Err` aborts the guest.
    pub fn enter_log(&mut self) -> wasmtime::Result<bool> {
        self.log_calls += 1;
        if self.log_calls > self.limits.max_log_calls {
            return Err(self.breach(
                ErrorCause::LogFlood,
                format!(
                    "plugin logged more than {} lines",
                    self.limits.max_log_calls
                ),
            ));
        }
        if self.log_calls > self.limits.max_log_lines {
            self.logs_dropped += 1;
            return Ok(false);
        }
        Ok(true)
    }

    /// Records a breach and returns the error that traps the guest.
    pub fn breach(&mut self, cause: ErrorCause, message: String) -> wasmtime::Error {
        let breach = LimitBreach::new(cause, message);
        self.breach = Some(breach.clone());
        wasmtime::Error::new(breach)
    }
}

/// The error a plugin gets for a capability it may not use.
pub fn not_granted(cap: Capability, plugin: &str) -> CapError {
    CapError::NotGranted(format!(
        "capability `{cap}` was not declared by plugin `{plugin}` or not granted to it"
    ))
}

/// Measures time spent executing guest code: wall time minus time suspended in host calls
/// and minus time spent yielded to the executor.
#[derive(Debug)]
pub struct CpuMeter {
    used: Duration,
    mark: Instant,
    host: Duration,
    host_at_mark: Duration,
    yielded_ns: Arc<AtomicU64>,
    yielded_at_mark: u64,
}

impl CpuMeter {
    fn new() -> Self {
        Self {
            used: Duration::ZERO,
            mark: Instant::now(),
            host: Duration::ZERO,
            host_at_mark: Duration::ZERO,
            yielded_ns: Arc::new(AtomicU64::new(0)),
            yielded_at_mark: 0,
        }
    }

    /// Adds time spent in a host call (not charged to the guest).
    pub fn add_host(&mut self, d: Duration) {
        self.host += d;
    }

    /// Charges guest time since the last sample; returns the total and the part just charged.
    pub fn sample(&mut self) -> (Duration, Duration) {
        let now = Instant::now();
        let yielded = self.yielded_ns.load(Ordering::Relaxed);
        let excluded =
            (self.host - self.host_at_mark) + Duration::from_nanos(yielded - self.yielded_at_mark);
        let charged = (now - self.mark).saturating_sub(excluded);
        self.used += charged;
        self.mark = now;
        self.host_at_mark = self.host;
        self.yielded_at_mark = yielded;
        (self.used, charged)
    }

    /// A yield to the executor whose duration is not charged to the guest.
    pub fn yield_now(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        let yielded = self.yielded_ns.clone();
        Box::pin(async move {
            let start = Instant::now();
            tokio::task::yield_now().await;
            let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
            yielded.fetch_add(ns, Ordering::Relaxed);
        })
    }
}

impl WasiView for Invocation {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: self.wasi.get_or_insert_with(|| WasiCtx::builder().build()),
            table: &mut self.table,
        }
    }
}

impl wasmtime::ResourceLimiter for Invocation {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let cap = self.limits.max_memory_bytes;
        if desired as u64 > cap {
            return Err(self.breach(
                ErrorCause::MemoryLimit,
                format!(
                    "plugin tried to grow its memory to {} MiB; the cap is {} MiB",
                    desired >> 20,
                    cap >> 20
                ),
            ));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }

    fn instances(&self) -> usize {
        32
    }

    fn tables(&self) -> usize {
        32
    }

    fn memories(&self) -> usize {
        4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capset_membership() {
        let set = CapSet::of([Capability::Http, Capability::Tls]);
        assert!(set.contains(Capability::Http));
        assert!(set.contains(Capability::Tls));
        assert!(!set.contains(Capability::Tcp));
        assert!(!CapSet::default().contains(Capability::Dns));
    }

    #[test]
    fn an_invocation_without_a_policy_reaches_no_host() {
        let tag = InvocationTag::plugin("t");
        let limits = InvocationLimits::default();
        let none = Invocation::new(CapSet::default(), None, Instant::now(), limits.clone(), tag);
        for host in ["example.com", "1.1.1.1", "localhost"] {
            assert!(none.policy().check_host(host).is_err(), "{host}");
        }
        let open = Arc::new(NetPolicy::default());
        let tag = InvocationTag::plugin("t");
        let some = Invocation::new(CapSet::default(), Some(open), Instant::now(), limits, tag);
        assert!(some.policy().check_host("example.com").is_ok());
    }
}
