//! Command-line interface: subcommands and their dispatch.

pub mod bench;
pub mod bench_notify;
pub mod bench_service;
pub mod bench_status;
pub mod bench_ui;
pub mod plugin;
mod scaffold;
pub mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Pharos: self-hosted uptime and synthetic monitoring with WebAssembly plugins.
#[derive(Debug, Parser)]
#[command(name = "pharos", version, about)]
pub struct Cli {
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, global = true, env = "PHAROS_LOG_JSON")]
    pub log_json: bool,
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Top-level subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the monitoring service: scheduler, API, push URLs, metrics (the default).
    Serve(serve::ServeArgs),
    /// Tools for plugin authors: scaffold, describe and run plugins.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Benchmarks measured against local servers.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli
        .command
        .unwrap_or_else(|| Command::Serve(serve::ServeArgs::default()))
    {
        Command::Serve(args) => serve::run(args).await,
        Command::Plugin(cmd) => plugin::run(cmd).await,
        Command::Bench(cmd) => bench::run(cmd).await,
    }
}

/// Installs the tracing subscriber (`RUST_LOG` filters, default `warn,pharos=info`), logging to stderr.
pub fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,pharos=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
