//! The batch writer: the single consumer of the result channel. A batch is written when it
//! holds `batch_size` results or `flush_interval` after its first result arrived, whichever
//! comes first; failed writes are retried with backoff, then dropped loudly.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::{Item, Shared, SubmitError};
use crate::model::NewResult;
use crate::store::Store;

/// How often and how patiently a failed batch write is retried.
#[derive(Debug, Clone)]
pub(super) struct RetryPolicy {
    /// Write attempts per batch, the first included.
    pub attempts: u32,
    /// Pause after the first failure; doubled after each further one.
    pub first_backoff: Duration,
    /// Longest pause between attempts.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 6,
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// The pause after failed attempt number `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.first_backoff
            .checked_mul(factor)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }
}

/// The writer task's state.
pub(super) struct Writer {
    pub store: Store,
    pub shared: Arc<Shared>,
    pub batch_size: usize,
    pub flush_interval: Duration,
    pub retry: RetryPolicy,
}

impl Writer {
    /// Writes batches until the channel is closed (by `stop`) and drained.
    pub async fn run(self, mut rx: mpsc::Receiver<Item>, mut stop: oneshot::Receiver<()>) {
        let mut batch: Vec<Item> = Vec::with_capacity(self.batch_size);
        let mut deadline: Option<Instant> = None;
        let mut stopping = false;
        loop {
            let room = self.batch_size.saturating_sub(batch.len()).max(1);
            tokio::select! {
                biased;
                // A dropped `Pipeline` stops the writer just like `shutdown` (without waiting).
                _ = &mut stop, if !stopping => {
                    stopping = true;
                    rx.close();
                }
                received = rx.recv_many(&mut batch, room) => {
                    if received == 0 {
                        break; // closed and drained
                    }
                    if deadline.is_none() {
                        deadline = Some(Instant::now() + self.flush_interval);
                    }
                    if batch.len() >= self.batch_size {
                        self.flush(&mut batch).await;
                        deadline = None;
                    }
                }
                _ = sleep_until(deadline), if deadline.is_some() => {
                    self.flush(&mut batch).await;
                    deadline = None;
                }
            }
        }
        self.flush(&mut batch).await;
        tracing::debug!("result writer stopped; every accepted result was handled");
    }

    /// Writes one batch (retrying), then publishes it and tells its waiters.
    async fn flush(&self, batch: &mut Vec<Item>) {
        if batch.is_empty() {
            return;
        }
        let n = batch.len();
        let mut results: Vec<NewResult> = Vec::with_capacity(n);
        let mut waiters: Vec<oneshot::Sender<Result<(), SubmitError>>> = Vec::new();
        for item in batch.drain(..) {
            results.push(item.result);
            if let Some(done) = item.done {
                waiters.push(done);
            }
        }
        let outcome = self.write(&results).await;
        if outcome.is_ok() && self.shared.bus.receiver_count() > 0 {
            for result in results {
                // Lagging or gone subscribers are their own business.
                let _ = self.shared.bus.send(Arc::new(result));
            }
        }
        for done in waiters {
            let _ = done.send(outcome);
        }
        self.shared.finished(n);
    }

    /// Stores the batch, retrying with backoff; counts it as dropped when every attempt failed.
    async fn write(&self, results: &[NewResult]) -> Result<(), SubmitError> {
        let metrics = &self.shared.metrics;
        let attempts = self.retry.attempts.max(1);
        for attempt in 1..=attempts {
            let started = Instant::now();
            match self.store.insert_results(results).await {
                Ok(()) => {
                    metrics.observe_write(results.len(), started.elapsed().as_secs_f64());
                    return Ok(());
                }
                Err(e) if attempt < attempts => {
                    metrics.observe_write_failure(started.elapsed().as_secs_f64());
                    let pause = self.retry.backoff(attempt);
                    tracing::warn!(
                        error = %e,
                        results = results.len(),
                        attempt,
                        retry_in_ms = pause.as_millis() as u64,
                        "writing results failed; retrying"
                    );
                    tokio::time::sleep(pause).await;
                }
                Err(e) => {
                    metrics.observe_write_failure(started.elapsed().as_secs_f64());
                    metrics.results_dropped(results.len());
                    tracing::error!(
                        error = %e,
                        results = results.len(),
                        attempts,
                        "writing results failed repeatedly; the batch is dropped"
                    );
                }
            }
        }
        Err(SubmitError::NotStored)
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(1), Duration::from_millis(100));
        assert_eq!(p.backoff(2), Duration::from_millis(200));
        assert_eq!(p.backoff(4), Duration::from_millis(800));
        assert_eq!(p.backoff(6), Duration::from_secs(2));
        assert_eq!(p.backoff(200), Duration::from_secs(2));
    }
}
