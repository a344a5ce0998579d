//! Shared helpers of the end-to-end tests: a runtime, the test fixtures and real loopback servers.
#![allow(dead_code)]

pub mod api;
pub mod db;
pub mod process;
pub mod servers;
pub mod sink;
pub mod smtp;

use std::sync::Arc;
use std::time::Duration;

use pharos::runtime::{
    CheckInput, InvocationLimits, MonitorRef, Outcome, Plugin, Runtime, RuntimeConfig, Sandbox,
};

/// A runtime for tests: small pool, private targets allowed or not.
pub fn runtime(allow_private: bool) -> Runtime {
    runtime_with(RuntimeConfig {
        allow_private_targets: allow_private,
        max_instances: Some(64),
        ..RuntimeConfig::default()
    })
}

/// A runtime with a custom configuration.
pub fn runtime_with(config: RuntimeConfig) -> Runtime {
    Runtime::new(config).expect("runtime")
}

/// Bytes of a component built from `tests/fixtures/<crate>` (crate name with underscores).
pub fn fixture(file_stem: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("PHAROS_WASM_DIR")).join(format!("{file_stem}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {} missing: {e}", path.display()))
}

/// Loads the fixture `file_stem` with its own CPU budget (and default other limits).
pub async fn fixture_with_cpu_budget(
    runtime: &Runtime,
    file_stem: &str,
    cpu_budget_ms: u64,
) -> Arc<Plugin> {
    runtime
        .load_with_limits(
            &fixture(file_stem),
            Some(InvocationLimits {
                cpu_budget_ms,
                ..InvocationLimits::default()
            }),
        )
        .await
        .expect("load fixture")
}

/// Loads a built-in plugin by name.
pub async fn builtin(runtime: &Runtime, name: &str) -> Arc<Plugin> {
    let bytes =
        pharos::builtin::component(name).unwrap_or_else(|| panic!("no built-in plugin {name}"));
    runtime.load(bytes).await.expect("load built-in")
}

/// Runs one check with a JSON config, validating it first.
pub async fn check(
    runtime: &Runtime,
    plugin: &Plugin,
    sandbox: &Sandbox,
    config: serde_json::Value,
    timeout: Duration,
) -> Outcome {
    let input = CheckInput {
        config: config.to_string(),
        timeout,
        attempt: 1,
        monitor: MonitorRef {
            id: "test".into(),
            name: "test".into(),
            region: "local".into(),
        },
    };
    runtime.check_validated(plugin, sandbox, input).await
}

/// The value of a named metric.
pub fn metric(outcome: &Outcome, name: &str) -> Option<f64> {
    outcome
        .metrics
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| *v)
}
