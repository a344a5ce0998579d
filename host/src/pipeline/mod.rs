//! The result pipeline: a bounded channel feeding one batch writer (flushed by size or time)
//! that stores results, and a live bus that fans stored results out (the dashboard's SSE later).
//! Back-pressure is explicit: producers wait for room and every wait or refusal is counted.

mod writer;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::metrics::Metrics;
use crate::model::NewResult;
use crate::store::Store;

/// Tunables of the pipeline.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Results the channel holds before producers wait.
    pub capacity: usize,
    /// Largest batch written in one transaction.
    pub batch_size: usize,
    /// Longest a result waits before its batch is written.
    pub flush_interval: Duration,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            capacity: 16_384,
            batch_size: 1_000,
            flush_interval: Duration::from_millis(200),
        }
    }
}

/// Subscribers of the live bus may fall this many results behind before they lag.
const BUS_CAPACITY: usize = 1_024;

/// Why a result was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// The pipeline is shutting down.
    #[error("the result pipeline is shut down")]
    Closed,
    /// The channel stayed full for longer than the caller was willing to wait.
    #[error("the result pipeline is full")]
    Full,
    /// The batch holding the result could not be written.
    #[error("the result could not be stored")]
    NotStored,
}

/// One accepted result, with whoever waits for it to be committed.
struct Item {
    result: NewResult,
    done: Option<oneshot::Sender<Result<(), SubmitError>>>,
}

/// State shared by every producer handle and the writer.
struct Shared {
    metrics: Arc<Metrics>,
    /// Accepted and not yet written (or dropped).
    pending: AtomicUsize,
    bus: broadcast::Sender<Arc<NewResult>>,
}

impl Shared {
    fn accepted(&self) {
        self.pending.fetch_add(1, Ordering::Relaxed);
        self.metrics.queue_depth_add(1);
    }

    fn finished(&self, n: usize) {
        self.pending.fetch_sub(n, Ordering::Relaxed);
        self.metrics
            .queue_depth_add(-i64::try_from(n).unwrap_or(i64::MAX));
    }
}

/// Producer side, cheap to clone.
#[derive(Clone)]
pub struct ResultSink {
    tx: mpsc::Sender<Item>,
    shared: Arc<Shared>,
}

impl ResultSink {
    /// Enqueues a result, waiting for room (the wait is counted as back-pressure).
    pub async fn submit(&self, result: NewResult) -> Result<(), SubmitError> {
        self.enqueue(Item { result, done: None }, None).await
    }

    /// Enqueues a result waiting at most `wait` for room (`Full` is counted as a refusal).
    pub async fn submit_within(
        &self,
        result: NewResult,
        wait: Duration,
    ) -> Result<(), SubmitError> {
        self.enqueue(Item { result, done: None }, Some(wait)).await
    }

    /// Enqueues a result and waits until its batch is committed.
    pub async fn submit_and_wait(&self, result: NewResult) -> Result<(), SubmitError> {
        let (done, committed) = oneshot::channel();
        self.enqueue(
            Item {
                result,
                done: Some(done),
            },
            None,
        )
        .await?;
        committed.await.unwrap_or(Err(SubmitError::NotStored))
    }

    /// Results waiting to be written.
    pub fn depth(&self) -> usize {
        self.shared.pending.load(Ordering::Relaxed)
    }

    /// Subscribes to results as they are stored.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<NewResult>> {
        self.shared.bus.subscribe()
    }

    async fn enqueue(&self, item: Item, wait: Option<Duration>) -> Result<(), SubmitError> {
        // Counted before the send so the writer never sees more written than accepted; the
        // guard takes it back if the result is not accepted (or the caller gives up waiting).
        let reservation = Reservation::new(&self.shared);
        let item = match self.tx.try_send(item) {
            Ok(()) => {
                reservation.keep();
                return Ok(());
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(SubmitError::Closed),
            Err(mpsc::error::TrySendError::Full(item)) => item,
        };
        self.shared.metrics.backpressure_wait();
        match wait {
            None => self.tx.send(item).await.map_err(|_| SubmitError::Closed)?,
            Some(wait) => self
                .tx
                .send_timeout(item, wait)
                .await
                .map_err(|e| match e {
                    mpsc::error::SendTimeoutError::Timeout(_) => {
                        self.shared.metrics.result_refused();
                        SubmitError::Full
                    }
                    mpsc::error::SendTimeoutError::Closed(_) => SubmitError::Closed,
                })?,
        }
        reservation.keep();
        Ok(())
    }
}

/// One result counted as pending until it is either accepted (kept) or not (dropped).
struct Reservation<'a> {
    shared: &'a Shared,
    kept: bool,
}

impl<'a> Reservation<'a> {
    fn new(shared: &'a Shared) -> Self {
        shared.accepted();
        Self {
            shared,
            kept: false,
        }
    }

    fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.kept {
            self.shared.finished(1);
        }
    }
}

/// The running writer; [`Pipeline::shutdown`] drains and flushes everything accepted.
pub struct Pipeline {
    stop: oneshot::Sender<()>,
    writer: JoinHandle<()>,
}

impl Pipeline {
    /// Starts the batch writer.
    pub fn start(
        store: Store,
        metrics: Arc<Metrics>,
        config: PipelineConfig,
    ) -> (Pipeline, ResultSink) {
        let (tx, rx) = mpsc::channel(config.capacity.max(1));
        let (bus, _) = broadcast::channel(BUS_CAPACITY);
        let shared = Arc::new(Shared {
            metrics,
            pending: AtomicUsize::new(0),
            bus,
        });
        let (stop, stopped) = oneshot::channel();
        let writer = tokio::spawn(
            writer::Writer {
                store,
                shared: shared.clone(),
                batch_size: config.batch_size.max(1),
                flush_interval: config.flush_interval,
                retry: writer::RetryPolicy::default(),
            }
            .run(rx, stopped),
        );
        (Pipeline { stop, writer }, ResultSink { tx, shared })
    }

    /// Stops accepting, writes every queued result and returns when all are stored (or failed
    /// after retries, which is logged and counted).
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        if let Err(e) = self.writer.await {
            tracing::error!(error = %e, "the result writer failed");
        }
    }
}
