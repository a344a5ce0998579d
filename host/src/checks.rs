//! Running one check for a monitor: resolve its plugin, reveal its secrets, invoke the sandbox
//! and turn the outcome into a result to store.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::Utc;
use serde_json::Value;

use crate::catalog::Catalog;
use crate::metrics::Metrics;
use crate::model::{Monitor, MonitorSpec, NewResult, Status, Timings, WorkspaceId};
use crate::runtime::{CheckInput, ErrorCause, MonitorRef, Outcome, Runtime};
use crate::secrets::SecretBox;

/// Cause code of a check whose plugin is missing, disabled or not granted.
pub const PLUGIN_UNAVAILABLE: &str = "plugin_unavailable";
/// Cause code of a check whose stored secret cannot be decrypted.
pub const SECRET_UNAVAILABLE: &str = "secret_unavailable";

/// Runs checks. Shared as `Arc<CheckRunner>`.
pub struct CheckRunner {
    runtime: Arc<Runtime>,
    catalog: Arc<Catalog>,
    secrets: Arc<SecretBox>,
    region: String,
    metrics: OnceLock<Arc<Metrics>>,
}

impl CheckRunner {
    /// A runner producing results tagged with `region`.
    pub fn new(
        runtime: Arc<Runtime>,
        catalog: Arc<Catalog>,
        secrets: Arc<SecretBox>,
        region: String,
    ) -> Self {
        Self {
            runtime,
            catalog,
            secrets,
            region,
            metrics: OnceLock::new(),
        }
    }

    /// Records every check of [`CheckRunner::run`] into `metrics` from now on (first call wins;
    /// `Scheduler::start` does this).
    pub fn attach_metrics(&self, metrics: Arc<Metrics>) {
        let _ = self.metrics.set(metrics);
    }

    /// The runtime checks run in.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// The region results are tagged with.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// Runs a check monitor once. Never fails: an unavailable plugin, an undecryptable secret
    /// or a sandbox fault becomes an `error` result with its cause.
    pub async fn run(&self, monitor: &Monitor, attempt: u32) -> NewResult {
        let started_at = Utc::now();
        let metrics = self.metrics.get();
        let reference = monitor.spec.plugin.as_deref().unwrap_or_default();
        let plugin_name = reference.split('@').next().unwrap_or(reference);
        let fail = |cause: &str, message: String| {
            if let Some(m) = metrics {
                m.observe_check_failure(plugin_name, cause);
            }
            self.result(monitor, started_at, error_outcome(message), Some(cause))
        };
        if reference.is_empty() {
            return fail(PLUGIN_UNAVAILABLE, "the monitor names no plugin".into());
        }
        let resolved = match self.catalog.resolve(monitor.workspace_id, reference) {
            Ok(r) => r,
            Err(e) => return fail(PLUGIN_UNAVAILABLE, e.to_string()),
        };
        let config = match self.secrets.reveal(&monitor.spec.config) {
            Ok(c) => c,
            Err(e) => return fail(SECRET_UNAVAILABLE, e.to_string()),
        };
        let _in_flight = metrics.map(InFlight::new);
        // Saved configs were validated at save time, but a monitor following `name` may now
        // resolve to a version with another schema: check again (microseconds).
        let outcome = match resolved.plugin.validate_config(&config) {
            Err(e) => {
                // Never echo a secret: name the field only when no secret is inside it.
                let message = if touches_secret(&monitor.spec.config, &config, &e.pointer) {
                    format!(
                        "config field {} does not match the schema of plugin {}",
                        e.pointer,
                        resolved.plugin.id()
                    )
                } else {
                    format!("{e} (plugin {})", resolved.plugin.id())
                };
                Outcome::host_error(ErrorCause::InvalidConfig, message, 0.0)
            }
            Ok(()) => {
                let input = CheckInput {
                    config: config.to_string(),
                    timeout: Duration::from_millis(u64::from(monitor.spec.timeout_ms)),
                    attempt,
                    monitor: MonitorRef {
                        id: monitor.id.to_string(),
                        name: monitor.spec.name.clone(),
                        region: self.region.clone(),
                    },
                };
                self.runtime
                    .check(&resolved.plugin, &resolved.sandbox, input)
                    .await
            }
        };
        if let Some(m) = metrics {
            m.observe_check(&resolved.plugin.info.name, &outcome);
        }
        let cause = outcome.error_cause.map(ErrorCause::code);
        self.result(monitor, started_at, outcome, cause)
    }

    /// Runs a spec that is not saved (the API's `test`); the config is as sent (secrets plain).
    ///
    /// An unavailable plugin gives an `error` outcome whose details say
    /// `{"error_cause": "plugin_unavailable"}`.
    pub async fn run_unsaved(&self, ws: WorkspaceId, spec: &MonitorSpec) -> Outcome {
        let reference = spec.plugin.as_deref().unwrap_or_default();
        let resolved = match self.catalog.resolve(ws, reference) {
            Ok(r) => r,
            Err(e) => {
                let mut outcome = error_outcome(e.to_string());
                outcome.details =
                    Some(serde_json::json!({ "error_cause": PLUGIN_UNAVAILABLE }).into());
                return outcome;
            }
        };
        let input = CheckInput {
            config: spec.config.to_string(),
            timeout: Duration::from_millis(u64::from(spec.timeout_ms)),
            attempt: 1,
            monitor: MonitorRef {
                id: String::new(),
                name: spec.name.clone(),
                region: self.region.clone(),
            },
        };
        self.runtime
            .check_validated(&resolved.plugin, &resolved.sandbox, input)
            .await
    }

    fn result(
        &self,
        monitor: &Monitor,
        started_at: crate::model::Timestamp,
        outcome: Outcome,
        cause: Option<&str>,
    ) -> NewResult {
        NewResult {
            monitor_id: monitor.id,
            workspace_id: monitor.workspace_id,
            region: self.region.clone(),
            started_at,
            status: outcome.status,
            latency_ms: outcome.latency_ms,
            message: outcome.message,
            timings: outcome.timings,
            metrics: outcome.metrics,
            details: outcome.details,
            error_cause: cause.map(str::to_string),
            ping: false,
        }
    }
}

/// An `error` outcome decided before the sandbox ran.
fn error_outcome(message: String) -> Outcome {
    Outcome {
        status: Status::Error,
        message,
        latency_ms: 0.0,
        timings: Timings::default(),
        metrics: Vec::new(),
        details: None,
        error_cause: None,
    }
}

/// Whether the part of the config at `pointer` holds a secret (its stored and revealed forms
/// differ), so an error message about it could leak the secret.
fn touches_secret(stored: &Value, revealed: &Value, pointer: &str) -> bool {
    let pointer = if pointer == "/" { "" } else { pointer };
    stored.pointer(pointer) != revealed.pointer(pointer)
}

/// Counts one check in flight for as long as it lives.
struct InFlight<'a>(&'a Metrics);

impl<'a> InFlight<'a> {
    fn new(metrics: &'a Arc<Metrics>) -> Self {
        metrics.check_in_flight(1);
        Self(metrics)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.check_in_flight(-1);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn secrets_are_detected_below_the_pointer() {
        let stored = json!({"url": "x", "auth": {"user": "u", "password": "pharos:sealed:v1:abc"}});
        let revealed = json!({"url": "x", "auth": {"user": "u", "password": "hunter2"}});
        assert!(!touches_secret(&stored, &revealed, "/url"));
        assert!(!touches_secret(&stored, &revealed, "/auth/user"));
        assert!(touches_secret(&stored, &revealed, "/auth/password"));
        assert!(touches_secret(&stored, &revealed, "/auth"));
        assert!(touches_secret(&stored, &revealed, "/"));
    }
}
