//! `pharos plugin …`: scaffold, export the WIT, describe and run plugins.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Subcommand;

use crate::builtin;
use crate::runtime::{
    CheckInput, DeliverInput, MonitorRef, Plugin, PluginKind, Runtime, RuntimeConfig, Sandbox,
};

/// Plugin-author subcommands.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Create a new check-plugin crate in ./NAME that builds with
    /// `cargo build --release --target wasm32-wasip2`.
    New {
        /// Plugin name, `[a-z0-9-]`.
        name: String,
        /// Parent directory of the new crate.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Write the `pharos:plugin` WIT package to a directory (for other languages).
    Wit {
        #[arg(long)]
        out: PathBuf,
    },
    /// Print a plugin's self-description (name, kind, version, schema, capabilities) as JSON.
    Describe {
        /// A `.wasm` path or a built-in name (see `pharos plugin list`).
        plugin: String,
    },
    /// Run one check, or send one test alert through a notifier, and print the result as one
    /// JSON object. A notifier exits 1 when the alert was not delivered.
    Run {
        /// A `.wasm` path or a built-in name (see `pharos plugin list`).
        plugin: String,
        /// The config JSON (a monitor's, or a channel's for a notifier).
        #[arg(long)]
        config: String,
        /// Allow loopback, private and link-local targets.
        #[arg(long)]
        allow_private: bool,
        /// Check or delivery timeout in milliseconds.
        #[arg(long, default_value_t = 10_000)]
        timeout_ms: u64,
    },
    /// List the built-in plugins.
    List,
}

/// Runs a plugin subcommand.
pub async fn run(cmd: PluginCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PluginCommand::New { name, dir } => {
            let path = super::scaffold::create(&dir, &name)?;
            println!("created {}", path.display());
            println!(
                "build it with: cd {} && cargo build --release --target wasm32-wasip2",
                path.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        PluginCommand::Wit { out } => {
            super::scaffold::write_wit(&out)?;
            println!("wrote the pharos:plugin WIT package to {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
        PluginCommand::List => {
            for name in builtin::names() {
                println!("{name}");
            }
            Ok(ExitCode::SUCCESS)
        }
        PluginCommand::Describe { plugin } => {
            let runtime = cli_runtime(false)?;
            let loaded = load(&runtime, &plugin).await?;
            let mut out = serde_json::to_value(&loaded.info)?;
            if let Some(map) = out.as_object_mut() {
                map.insert("digest".into(), loaded.digest.clone().into());
                map.insert("size".into(), loaded.size.into());
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(ExitCode::SUCCESS)
        }
        PluginCommand::Run {
            plugin,
            config,
            allow_private,
            timeout_ms,
        } => {
            let runtime = cli_runtime(allow_private)?;
            let loaded = load(&runtime, &plugin).await?;
            let parsed: serde_json::Value = match serde_json::from_str(&config) {
                Ok(v) => v,
                Err(e) => {
                    eprintln!("error: --config is not valid JSON: {e}");
                    return Ok(ExitCode::from(2));
                }
            };
            if let Err(e) = loaded.validate_config(&parsed) {
                eprintln!("error: invalid config for plugin `{}`: {e}", loaded.id());
                return Ok(ExitCode::from(2));
            }
            let sandbox = cli_sandbox(&runtime, &loaded, &plugin);
            if loaded.kind() == PluginKind::Notifier {
                let delivery = runtime
                    .deliver(&loaded, &sandbox, test_alert(config, timeout_ms))
                    .await;
                println!("{}", serde_json::to_string(&delivery.to_json())?);
                return Ok(if delivery.outcome.is_delivered() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                });
            }
            let input = CheckInput {
                config,
                timeout: Duration::from_millis(timeout_ms),
                attempt: 1,
                monitor: MonitorRef {
                    id: "cli".into(),
                    name: "pharos plugin run".into(),
                    region: "local".into(),
                },
            };
            let outcome = runtime.check(&loaded, &sandbox, input).await;
            println!("{}", serde_json::to_string(&outcome.to_json())?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Built-ins named on the command line get their production grants (vendor host pins
/// included); a component from a file gets everything it declares.
fn cli_sandbox(runtime: &Runtime, loaded: &Plugin, plugin: &str) -> Sandbox {
    if builtin::component(plugin).is_some() {
        runtime.sandbox(loaded, &crate::catalog::builtin_grants(loaded, plugin))
    } else {
        runtime.sandbox_all(loaded)
    }
}

/// A clearly labelled test alert, as `POST /channels/{id}/test` sends one.
fn test_alert(config: String, timeout_ms: u64) -> DeliverInput {
    let key = format!("pharos-cli-test-{}", hex::encode(rand::random::<[u8; 8]>()));
    let title = "Pharos test alert".to_string();
    let body =
        "This is a test alert sent by `pharos plugin run`. No monitor is affected.".to_string();
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let event = serde_json::json!({
        "kind": "test",
        "id": key,
        "occurred_at": now,
        "status": "up",
        "severity": "info",
        "title": title,
        "body": body,
        "monitor": null,
        "incident": null,
        "since": null,
        "cause": null,
        "dedup_key": format!("pharos-test-{key}"),
        "dashboard_url": null,
        "digest": null,
    });
    DeliverInput {
        config,
        title,
        body,
        event: event.to_string(),
        idempotency_key: key,
        attempt: 1,
        timeout: Duration::from_millis(timeout_ms),
        test: true,
        channel: "pharos plugin run".to_string(),
    }
}

fn cli_runtime(allow_private: bool) -> anyhow::Result<Runtime> {
    let config = RuntimeConfig {
        allow_private_targets: allow_private,
        max_instances: Some(16),
        ..RuntimeConfig::default()
    };
    Ok(Runtime::new(config)?)
}

/// Loads a built-in by name or a component from a path.
pub async fn load(runtime: &Runtime, plugin: &str) -> anyhow::Result<Arc<Plugin>> {
    let bytes = match builtin::component(plugin) {
        Some(bytes) => bytes.to_vec(),
        None => {
            let path = Path::new(plugin);
            if !path.exists() {
                let names: Vec<_> = builtin::names().collect();
                bail!(
                    "`{plugin}` is neither a built-in plugin ({}) nor a .wasm file",
                    names.join(", ")
                );
            }
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?
        }
    };
    runtime
        .load(&bytes)
        .await
        .with_context(|| format!("cannot load plugin `{plugin}`"))
}
