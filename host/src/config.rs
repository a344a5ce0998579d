//! `pharos serve` configuration: defaults, then an optional TOML file, then `PHAROS_*`
//! environment variables. Every knob is documented in `docs/configuration.md`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::runtime::RuntimeConfig;

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// The config file is not valid TOML for this schema.
    #[error("config file {path}: {message}")]
    Parse { path: String, message: String },
    /// An environment variable has a value of the wrong form.
    #[error("environment variable {name}={value:?}: {message}")]
    Env {
        name: &'static str,
        value: String,
        message: String,
    },
    /// A value is out of range.
    #[error("config `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
}

/// Where `/metrics` is served and who may read it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Serve `/metrics` on its own address instead of the main listener.
    pub listen: Option<SocketAddr>,
    /// Require `Authorization: Bearer <token>` on `/metrics`.
    pub token: Option<String>,
}

/// Scheduler knobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchedulerSection {
    /// Checks running at once; more wait their turn.
    pub max_concurrency: usize,
    /// Fraction (0–1) of a monitor's interval used to spread its first run.
    pub jitter: f64,
}

impl Default for SchedulerSection {
    fn default() -> Self {
        Self {
            max_concurrency: 2_048,
            jitter: 1.0,
        }
    }
}

/// Result pipeline knobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineSection {
    /// Results queued before producers wait.
    pub capacity: usize,
    /// Largest batch written in one transaction.
    pub batch_size: usize,
    /// Longest a result waits before its batch is written, in milliseconds.
    pub flush_ms: u64,
}

impl Default for PipelineSection {
    fn default() -> Self {
        Self {
            capacity: 16_384,
            batch_size: 1_000,
            flush_ms: 200,
        }
    }
}

/// Incident engine and notification delivery knobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertingSection {
    /// A monitor changing state more than this many times within `flap_window_secs` is flapping.
    pub flap_threshold: u32,
    /// The flapping window, in seconds.
    pub flap_window_secs: u32,
    /// Deliveries running at once.
    pub concurrency: usize,
    /// Delivery attempts per notification before it is dead-lettered.
    pub max_attempts: u32,
    /// Pause after the first failed attempt, in milliseconds; doubled per attempt, with jitter.
    pub retry_base_ms: u64,
    /// Longest pause between attempts, in milliseconds.
    pub retry_max_ms: u64,
    /// Time one delivery may take (the notifier plugin's deadline), in milliseconds.
    pub delivery_timeout_ms: u64,
    /// How long a claimed notification stays reserved for this node, in seconds.
    pub lease_secs: u64,
    /// Pause between outbox polls when idle, in milliseconds (this node's own transitions
    /// wake the dispatcher at once; polling finds retries that came due and other nodes' rows).
    pub poll_ms: u64,
}

impl Default for AlertingSection {
    fn default() -> Self {
        Self {
            flap_threshold: 5,
            flap_window_secs: 600,
            concurrency: 64,
            max_attempts: 10,
            retry_base_ms: 5_000,
            retry_max_ms: 600_000,
            delivery_timeout_ms: 10_000,
            lease_secs: 120,
            poll_ms: 500,
        }
    }
}

/// The whole `pharos serve` configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeConfig {
    /// Address of the API, dashboard, push URLs and (by default) `/metrics`.
    pub listen: SocketAddr,
    /// Directory for the SQLite database, the secret key file and the compiled-plugin cache.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; default `sqlite://<data_dir>/pharos.db`.
    pub database_url: Option<String>,
    /// Bootstrap admin API key for automation; when unset, the first start generates one.
    pub admin_token: Option<String>,
    /// Let checks reach loopback, private and link-local addresses.
    pub allow_private_targets: bool,
    /// AES-256 key (64 hex characters or base64) for secrets at rest; default a key file in the data dir.
    pub secret_key: Option<String>,
    /// Base URL users reach this server at (for push URLs and links); default `http://<listen>`.
    pub public_url: Option<String>,
    /// Region tag of results produced here.
    pub region: String,
    /// Days raw results are kept (rollups are kept longer).
    pub retention_days: u32,
    /// Days per-minute rollups (charts, uptime) are kept.
    pub rollup_retention_days: u32,
    /// Seconds running checks get to finish on shutdown.
    pub shutdown_grace_secs: u64,
    pub metrics: MetricsConfig,
    pub scheduler: SchedulerSection,
    pub pipeline: PipelineSection,
    pub alerting: AlertingSection,
    /// Plugin runtime (pool, default invocation limits).
    pub runtime: RuntimeConfig,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("pharos-data"),
            database_url: None,
            admin_token: None,
            allow_private_targets: false,
            secret_key: None,
            public_url: None,
            region: crate::model::LOCAL_REGION.to_string(),
            retention_days: 90,
            rollup_retention_days: 400,
            shutdown_grace_secs: 10,
            metrics: MetricsConfig::default(),
            scheduler: SchedulerSection::default(),
            pipeline: PipelineSection::default(),
            alerting: AlertingSection::default(),
            runtime: RuntimeConfig::default(),
        }
    }
}

/// Reads one environment variable (empty counts as unset).
type EnvFn<'a> = &'a dyn Fn(&str) -> Option<String>;

impl ServeConfig {
    /// Defaults, then `file` (if any), then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with(file, &|name| {
            std::env::var(name).ok().filter(|v| !v.is_empty())
        })
    }

    /// Like [`ServeConfig::load`] with an explicit environment (tests).
    pub fn load_with(file: Option<&Path>, env: EnvFn<'_>) -> Result<Self, ConfigError> {
        let mut config = match file {
            Some(path) => {
                let shown = path.display().to_string();
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: shown.clone(),
                    source,
                })?;
                toml::from_str(&text).map_err(|e| ConfigError::Parse {
                    path: shown,
                    message: e.to_string(),
                })?
            }
            None => ServeConfig::default(),
        };
        config.apply_env(env)?;
        config.check()?;
        Ok(config)
    }

    fn apply_env(&mut self, env: EnvFn<'_>) -> Result<(), ConfigError> {
        fn parse<T: std::str::FromStr>(name: &'static str, value: String) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            value.parse::<T>().map_err(|e| ConfigError::Env {
                name,
                message: e.to_string(),
                value,
            })
        }
        fn boolean(name: &'static str, value: String) -> Result<bool, ConfigError> {
            match value.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                _ => Err(ConfigError::Env {
                    name,
                    value,
                    message: "expected true or false".into(),
                }),
            }
        }
        let get = |name: &str| env(name);
        if let Some(v) = get("PHAROS_LISTEN") {
            self.listen = parse("PHAROS_LISTEN", v)?;
        }
        if let Some(v) = get("PHAROS_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = get("PHAROS_DATABASE_URL") {
            self.database_url = Some(v);
        }
        if let Some(v) = get("PHAROS_ADMIN_TOKEN") {
            self.admin_token = Some(v);
        }
        if let Some(v) = get("PHAROS_ALLOW_PRIVATE_TARGETS") {
            self.allow_private_targets = boolean("PHAROS_ALLOW_PRIVATE_TARGETS", v)?;
        }
        if let Some(v) = get("PHAROS_SECRET_KEY") {
            self.secret_key = Some(v);
        }
        if let Some(v) = get("PHAROS_PUBLIC_URL") {
            self.public_url = Some(v);
        }
        if let Some(v) = get("PHAROS_REGION") {
            self.region = v;
        }
        if let Some(v) = get("PHAROS_RETENTION_DAYS") {
            self.retention_days = parse("PHAROS_RETENTION_DAYS", v)?;
        }
        if let Some(v) = get("PHAROS_ROLLUP_RETENTION_DAYS") {
            self.rollup_retention_days = parse("PHAROS_ROLLUP_RETENTION_DAYS", v)?;
        }
        if let Some(v) = get("PHAROS_SHUTDOWN_GRACE_SECS") {
            self.shutdown_grace_secs = parse("PHAROS_SHUTDOWN_GRACE_SECS", v)?;
        }
        if let Some(v) = get("PHAROS_METRICS_LISTEN") {
            self.metrics.listen = Some(parse("PHAROS_METRICS_LISTEN", v)?);
        }
        if let Some(v) = get("PHAROS_METRICS_TOKEN") {
            self.metrics.token = Some(v);
        }
        if let Some(v) = get("PHAROS_MAX_CONCURRENT_CHECKS") {
            self.scheduler.max_concurrency = parse("PHAROS_MAX_CONCURRENT_CHECKS", v)?;
        }
        if let Some(v) = get("PHAROS_MAX_INSTANCES") {
            self.runtime.max_instances = Some(parse("PHAROS_MAX_INSTANCES", v)?);
        }
        Ok(())
    }

    fn check(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: &str| {
            Err(ConfigError::Invalid {
                key,
                message: message.to_string(),
            })
        };
        if self.retention_days == 0 {
            return invalid("retention_days", "must be at least 1");
        }
        if self.rollup_retention_days < self.retention_days {
            return invalid(
                "rollup_retention_days",
                "must be at least retention_days (rollups outlive raw results)",
            );
        }
        if self.scheduler.max_concurrency == 0 {
            return invalid("scheduler.max_concurrency", "must be at least 1");
        }
        if !(0.0..=1.0).contains(&self.scheduler.jitter) {
            return invalid("scheduler.jitter", "must be between 0 and 1");
        }
        if self.pipeline.capacity == 0 || self.pipeline.batch_size == 0 {
            return invalid("pipeline", "capacity and batch_size must be at least 1");
        }
        let a = &self.alerting;
        if a.flap_threshold == 0 || a.flap_window_secs == 0 {
            return invalid(
                "alerting.flap_threshold",
                "flap_threshold and flap_window_secs must be at least 1",
            );
        }
        if a.concurrency == 0 || a.max_attempts == 0 {
            return invalid(
                "alerting.concurrency",
                "concurrency and max_attempts must be at least 1",
            );
        }
        if a.retry_base_ms == 0 || a.retry_max_ms < a.retry_base_ms {
            return invalid(
                "alerting.retry_base_ms",
                "retry_base_ms must be at least 1 and at most retry_max_ms",
            );
        }
        if a.delivery_timeout_ms == 0 || a.lease_secs * 1000 <= a.delivery_timeout_ms {
            return invalid(
                "alerting.lease_secs",
                "lease_secs must be longer than delivery_timeout_ms",
            );
        }
        if a.poll_ms == 0 {
            return invalid("alerting.poll_ms", "must be at least 1");
        }
        if let Some(url) = &self.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return invalid("public_url", "must start with http:// or https://");
        }
        if self.region.is_empty() {
            return invalid("region", "must not be empty");
        }
        Ok(())
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("pharos.db").display()))
    }

    /// The base URL users reach this server at, without a trailing slash.
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.listen),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_then_file_then_env() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("pharos.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\nretention_days = 30\n[scheduler]\nmax_concurrency = 10\n[runtime.limits]\ncpu_budget_ms = 50\n",
        )
        .expect("write");
        let vars = env(&[
            ("PHAROS_LISTEN", "127.0.0.1:9100"),
            ("PHAROS_ALLOW_PRIVATE_TARGETS", "true"),
        ]);
        let c = ServeConfig::load_with(Some(&file), &|n| vars.get(n).cloned()).expect("load");
        assert_eq!(c.listen.port(), 9100);
        assert_eq!(c.retention_days, 30);
        assert_eq!(c.scheduler.max_concurrency, 10);
        assert_eq!(c.runtime.limits.cpu_budget_ms, 50);
        assert!(c.allow_private_targets);
        assert_eq!(c.public_url(), "http://127.0.0.1:9100");
        assert!(c.database_url().starts_with("sqlite://pharos-data"));
    }

    #[test]
    fn bad_values_are_named() {
        let vars = env(&[("PHAROS_LISTEN", "nope")]);
        let e = ServeConfig::load_with(None, &|n| vars.get(n).cloned()).expect_err("bad");
        assert!(e.to_string().contains("PHAROS_LISTEN"), "{e}");
        let vars = env(&[("PHAROS_ALLOW_PRIVATE_TARGETS", "maybe")]);
        let e = ServeConfig::load_with(None, &|n| vars.get(n).cloned()).expect_err("bad");
        assert!(e.to_string().contains("true or false"), "{e}");
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "listen_addr = 1\n").expect("write");
        let e = ServeConfig::load_with(Some(&file), &|_| None).expect_err("unknown key");
        assert!(e.to_string().contains("listen_addr"), "{e}");
        let vars = env(&[("PHAROS_RETENTION_DAYS", "0")]);
        let e = ServeConfig::load_with(None, &|n| vars.get(n).cloned()).expect_err("zero");
        assert!(e.to_string().contains("retention_days"), "{e}");
    }
}
