//! `pharos serve`: load the configuration and run the service until a signal.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::config::ServeConfig;

/// Options of `pharos serve` (every other knob is in the config file or `PHAROS_*` variables).
#[derive(Debug, Default, Args)]
pub struct ServeArgs {
    /// TOML configuration file (see docs/configuration.md).
    #[arg(long, short, env = "PHAROS_CONFIG")]
    pub config: Option<PathBuf>,
}

/// Runs the service; configuration errors exit with status 2.
pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = match ServeConfig::load(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    crate::server::run(config).await?;
    Ok(ExitCode::SUCCESS)
}
