//! Network capabilities offered to plugins (http, tcp, dns, tls, smtp), with the SSRF guard
//! applied to every dial.
//!
//! Every entry point takes a [`NetPolicy`] (grants + SSRF guard + size caps) and a
//! `tokio::time::Instant` deadline (the invocation's); per-call timeouts are capped by it.

pub mod cert;
pub mod dns;
pub mod http;
pub mod policy;
pub mod resolve;
pub mod smtp;
pub mod tcp;
pub mod tls;

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::bindings::types::CapError;

pub use cert::cert_summary;
pub use policy::NetPolicy;
pub use resolve::{Resolved, connect_guarded, resolve_host};
pub use tcp::Connection;

/// Milliseconds of a duration, as the WIT timings carry them.
pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The earlier of `deadline` and now + `timeout_ms`; a `timeout_ms` of 0 means "deadline only".
pub(crate) fn effective_deadline(deadline: Instant, timeout_ms: u32) -> Instant {
    if timeout_ms == 0 {
        return deadline;
    }
    let own = Instant::now() + Duration::from_millis(u64::from(timeout_ms));
    own.min(deadline)
}

/// Runs `fut` until `deadline`; past it, fails with `Timeout` naming `what`.
pub(crate) async fn within<T, F>(
    deadline: Instant,
    what: impl FnOnce() -> String,
    fut: F,
) -> Result<T, CapError>
where
    F: Future<Output = Result<T, CapError>>,
{
    match tokio::time::timeout_at(deadline, fut).await {
        Ok(result) => result,
        Err(_) => Err(CapError::Timeout(format!("{} timed out", what()))),
    }
}

/// An error and its sources, joined with `: ` (skipping repeats).
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
