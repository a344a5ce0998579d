//! The `pharos` command.

use std::process::ExitCode;

use clap::Parser;

/// The process allocator: mimalloc's thread-local free lists beat glibc malloc on the
/// allocate-here, free-on-another-worker pattern of concurrent plugin checks.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = pharos::cli::Cli::parse();
    pharos::cli::init_tracing(cli.log_json);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(pharos::cli::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
