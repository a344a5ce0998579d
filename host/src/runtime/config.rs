//! Tunables of the plugin runtime, with defaults fit for a small VM.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::outcome::OutputCaps;

/// Limits applied to each plugin invocation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct InvocationLimits {
    /// Linear memory a single instance may grow to, in bytes.
    pub max_memory_bytes: u64,
    /// CPU time the guest may spend executing (time in host calls excluded), in milliseconds.
    pub cpu_budget_ms: u64,
    /// Extra wall-clock time after the check deadline for the plugin to return its outcome.
    pub grace_ms: u64,
    /// Capability calls (http, tcp, dns, tls and connection methods) per invocation.
    pub max_host_calls: u32,
    /// Log lines emitted per invocation; later lines are dropped and counted.
    pub max_log_lines: u32,
    /// Log calls per invocation beyond which the invocation is aborted as a flood.
    pub max_log_calls: u32,
    /// Bytes kept of one log line.
    pub max_log_line_bytes: usize,
    /// Caps on the returned outcome.
    pub output: OutputCaps,
}

impl Default for InvocationLimits {
    fn default() -> Self {
        Self {
            max_memory_bytes: 64 << 20,
            cpu_budget_ms: 1000,
            grace_ms: 250,
            max_host_calls: 1000,
            max_log_lines: 100,
            max_log_calls: 10_000,
            max_log_line_bytes: 2048,
            output: OutputCaps::default(),
        }
    }
}

/// Configuration of the process-wide runtime.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct RuntimeConfig {
    /// Instances that may exist at once; `None` sizes the pool from kernel limits.
    pub max_instances: Option<u32>,
    /// Largest linear memory any plugin may be granted (the pool's slot size), in bytes.
    pub pool_max_memory_bytes: u64,
    /// Epoch tick for CPU accounting and preemption, in milliseconds.
    pub epoch_tick_ms: u64,
    /// Native stack available to guest code, in bytes.
    pub max_wasm_stack: usize,
    /// Directory for compiled plugin artifacts; `None` disables the disk cache.
    pub cache_dir: Option<PathBuf>,
    /// Let plugins reach loopback, private and link-local addresses (tests, home labs).
    pub allow_private_targets: bool,
    /// Host cap on HTTP response bodies kept, in bytes.
    pub max_http_body_bytes: u32,
    /// Default per-invocation limits; plugins may override them.
    pub limits: InvocationLimits,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            max_instances: None,
            pool_max_memory_bytes: 256 << 20,
            epoch_tick_ms: 5,
            max_wasm_stack: 512 << 10,
            cache_dir: None,
            allow_private_targets: false,
            max_http_body_bytes: 1 << 20,
            limits: InvocationLimits::default(),
        }
    }
}

impl RuntimeConfig {
    /// The epoch tick as a duration (at least 1 ms).
    pub fn tick(&self) -> Duration {
        Duration::from_millis(self.epoch_tick_ms.max(1))
    }
}
