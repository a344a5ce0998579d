//! The running service's shared parts, handed to the API as state.

use std::sync::Arc;

use crate::catalog::Catalog;
use crate::checks::CheckRunner;
use crate::config::ServeConfig;
use crate::metrics::Metrics;
use crate::model::Monitor;
use crate::notify::Notifier;
use crate::pipeline::ResultSink;
use crate::runtime::Runtime;
use crate::scheduler::SchedulerHandle;
use crate::scheduler::heartbeat::Heartbeats;
use crate::secrets::SecretBox;
use crate::store::Store;

/// Everything a request handler may need. Shared as `Arc<App>`.
pub struct App {
    pub config: Arc<ServeConfig>,
    pub store: Store,
    pub runtime: Arc<Runtime>,
    pub catalog: Arc<Catalog>,
    pub checks: Arc<CheckRunner>,
    pub scheduler: SchedulerHandle,
    pub heartbeats: Arc<Heartbeats>,
    pub results: ResultSink,
    pub metrics: Arc<Metrics>,
    pub secrets: Arc<SecretBox>,
    pub notifier: Arc<Notifier>,
    /// Becomes true when the HTTP listeners stop (ends long-lived responses such as SSE).
    pub stopping: tokio::sync::watch::Receiver<bool>,
}

impl App {
    /// Tells the scheduler and the push receiver about a created or changed monitor.
    pub fn monitor_changed(&self, monitor: &Monitor) {
        self.heartbeats.upsert(monitor);
        self.scheduler.upsert(monitor.clone());
    }

    /// Tells the scheduler and the push receiver that a monitor is gone.
    pub fn monitor_removed(&self, monitor_id: i64) {
        self.heartbeats.remove(monitor_id);
        self.scheduler.remove(monitor_id);
    }

    /// The push URL of a token: `<public_url>/api/v1/push/<token>`.
    pub fn push_url(&self, token: &str) -> String {
        format!("{}/api/v1/push/{token}", self.config.public_url())
    }
}
