//! Notifications: rendering incident events into messages, the outbox dispatcher that delivers
//! them through notifier plugins with retries, storm control and digests, and test alerts.

use serde::Serialize;
use utoipa::ToSchema;

use crate::model::WorkspaceId;

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

/// The notification service: test alerts now, the dispatcher once started.
#[derive(Default)]
pub struct Notifier {
    _private: (),
}

impl Notifier {
    /// A notifier that is not wired yet (replaced when the dispatcher lands).
    pub fn new() -> Self {
        Self { _private: () }
    }

    /// Sends a clearly labelled test alert through `plugin` with a (sealed) channel config.
    pub async fn send_test(
        &self,
        _ws: WorkspaceId,
        plugin: &str,
        _sealed_config: &serde_json::Value,
        _channel_name: &str,
    ) -> Result<TestDelivery, NotifyError> {
        Err(NotifyError::Catalog(crate::catalog::CatalogError::NotFound(
            plugin.to_string(),
        )))
    }
}
