//! Notifications: rendering incident events into messages (`event`), the outbox dispatcher
//! that delivers them through notifier plugins with retries, storm control, digests and
//! reminders (`dispatcher`), and test alerts.

pub mod dispatcher;
pub mod event;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use utoipa::ToSchema;

use crate::catalog::Catalog;
use crate::config::AlertingSection;
use crate::metrics::Metrics;
use crate::model::WorkspaceId;
use crate::runtime::{DeliverInput, DeliveryOutcome, Runtime};
use crate::secrets::SecretBox;
use crate::store::Store;
pub use event::{Links, Rendered};

/// What a test alert did.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TestDelivery {
    /// True when the channel accepted the alert.
    pub delivered: bool,
    /// `delivered`, `transient` or `permanent`.
    pub outcome: String,
    /// What the notifier reported (e.g. `HTTP 200`) or why it failed.
    pub message: String,
    /// The destination's id for the message, when it returned one.
    pub external_id: Option<String>,
    pub duration_ms: f64,
}

/// Why a notification could not even be attempted.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The plugin reference does not resolve to a runnable notifier.
    #[error(transparent)]
    Catalog(#[from] crate::catalog::CatalogError),
    /// A sealed secret in the channel config cannot be decrypted (the secret key changed).
    #[error("a secret of the channel config cannot be decrypted: {0}")]
    Secret(#[from] crate::secrets::SecretError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// The notification service: the dispatcher and test alerts.
pub struct Notifier {
    store: Store,
    catalog: Arc<Catalog>,
    runtime: Arc<Runtime>,
    secrets: Arc<SecretBox>,
    metrics: Arc<Metrics>,
    settings: AlertingSection,
    links: Links,
}

/// The running dispatcher; [`DispatcherHandle::shutdown`] stops it.
pub struct DispatcherHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl DispatcherHandle {
    /// Stops claiming, waits for in-flight deliveries (bounded by their timeouts) and for
    /// their attempts to be recorded.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "the notification dispatcher failed");
        }
    }
}

impl Notifier {
    /// A notifier delivering through `catalog`'s notifier plugins; links point at `public_url`.
    pub fn new(
        store: Store,
        catalog: Arc<Catalog>,
        runtime: Arc<Runtime>,
        secrets: Arc<SecretBox>,
        metrics: Arc<Metrics>,
        settings: AlertingSection,
        public_url: &str,
    ) -> Self {
        Notifier {
            store,
            catalog,
            runtime,
            secrets,
            metrics,
            settings,
            links: Links::new(public_url),
        }
    }

    /// Starts the outbox dispatcher.
    pub fn start(self: &Arc<Self>) -> DispatcherHandle {
        let (stop, rx) = watch::channel(false);
        let task = tokio::spawn(dispatcher::run(self.clone(), rx));
        DispatcherHandle { stop, task }
    }

    /// Sends a clearly labelled test alert through `plugin` with a (sealed) channel config,
    /// directly (not through the outbox); the outcome is returned, not retried.
    pub async fn send_test(
        &self,
        ws: WorkspaceId,
        plugin: &str,
        sealed_config: &serde_json::Value,
        channel_name: &str,
    ) -> Result<TestDelivery, NotifyError> {
        let resolved = self.catalog.resolve_notifier(ws, plugin)?;
        let config = self.secrets.reveal(sealed_config)?;
        let now = chrono::Utc::now();
        let key = format!("pharos-test-{}", random_suffix());
        let rendered = event::test_alert(channel_name, &key, now, &self.links);
        let delivery = self
            .runtime
            .deliver_validated(
                &resolved.plugin,
                &resolved.sandbox,
                DeliverInput {
                    config: config.to_string(),
                    title: rendered.title,
                    body: rendered.body,
                    event: rendered.event,
                    idempotency_key: key,
                    attempt: 1,
                    timeout: Duration::from_millis(self.settings.delivery_timeout_ms),
                    test: true,
                    channel: channel_name.to_string(),
                },
            )
            .await;
        let outcome = delivery.outcome.as_str().to_string();
        let (delivered, message, external_id) = match delivery.outcome {
            DeliveryOutcome::Delivered {
                message,
                external_id,
            } => (true, message, external_id),
            DeliveryOutcome::Transient(ref m) | DeliveryOutcome::Permanent(ref m) => {
                (false, m.clone(), None)
            }
        };
        Ok(TestDelivery {
            delivered,
            outcome,
            message,
            external_id,
            duration_ms: delivery.elapsed_ms,
        })
    }
}

/// 16 random hex characters.
fn random_suffix() -> String {
    use rand::Rng;
    format!("{:016x}", rand::thread_rng().r#gen::<u64>())
}
