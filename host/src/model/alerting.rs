//! Domain types of alerting: a monitor's alert policy, channels, maintenance windows,
//! incidents with their timeline, and notifications (the outbox) with their attempts.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::WorkspaceId;

/// How a monitor turns results into incidents and notifications.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct AlertPolicy {
    /// Consecutive failing results that open an incident (default 2).
    pub failure_threshold: u32,
    /// Consecutive passing results that resolve it (default 1).
    pub recovery_threshold: u32,
    /// Remind while an incident stays open and unacknowledged, every this many seconds; 0 = off.
    pub renotify_interval_secs: u32,
    /// Send a notification when an incident resolves (default true).
    pub notify_recovery: bool,
    /// `degraded` results open incidents of severity `degraded` (default false: they pass).
    pub alert_on_degraded: bool,
    /// `error` results (the check could not run) count as failing (default true); when false
    /// they are ignored by the incident engine.
    pub error_counts_as_failure: bool,
    /// Channels notified for this monitor, besides default and tag-scoped channels.
    pub channels: Vec<i64>,
    /// Parent monitors: while one of them is down, this monitor's incidents are recorded as
    /// suppressed by the parent and not notified.
    pub depends_on: Vec<i64>,
}

impl Default for AlertPolicy {
    fn default() -> Self {
        Self {
            failure_threshold: 2,
            recovery_threshold: 1,
            renotify_interval_secs: 0,
            notify_recovery: true,
            alert_on_degraded: false,
            error_counts_as_failure: true,
            channels: Vec::new(),
            depends_on: Vec::new(),
        }
    }
}

/// The editable definition of an alert channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChannelSpec {
    pub name: String,
    /// A notifier plugin: `name` (latest enabled version) or `name@version`.
    pub plugin: String,
    /// The plugin's config, stored with secret fields sealed.
    pub config: serde_json::Value,
    pub enabled: bool,
    /// Bound to every monitor of the workspace.
    #[serde(rename = "default")]
    pub is_default: bool,
    /// Bound to every monitor carrying any of these tags.
    pub tags: Vec<String>,
    /// Storm control: at most this many notifications per window, the rest become one
    /// digest at the end of the window; 0 = no cap.
    pub storm_limit: u32,
    /// Length of the storm-control window in seconds.
    pub storm_window_secs: u32,
}

/// A stored alert channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Channel {
    pub id: i64,
    pub workspace_id: WorkspaceId,
    #[serde(flatten)]
    pub spec: ChannelSpec,
    pub revision: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The editable definition of a maintenance window.
///
/// One-off: `starts_at` and `ends_at`. Recurring: `cron` + `duration_secs` in `timezone`,
/// optionally bounded by `starts_at` / `ends_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MaintenanceSpec {
    pub name: String,
    pub description: String,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    /// Cron expression (5, 6 or 7 fields) of the window starts.
    pub cron: Option<String>,
    pub duration_secs: Option<u32>,
    /// IANA time zone the cron expression is read in (default `UTC`).
    pub timezone: String,
    /// Monitors covered.
    pub monitor_ids: Vec<i64>,
    /// Monitors carrying any of these tags are covered too.
    pub tags: Vec<String>,
    pub enabled: bool,
}

/// A stored maintenance window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MaintenanceWindow {
    pub id: i64,
    pub workspace_id: WorkspaceId,
    #[serde(flatten)]
    pub spec: MaintenanceSpec,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Whether an incident is still going on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum IncidentStatus {
    Open,
    Resolved,
}

impl IncidentStatus {
    /// Lowercase name used in JSON and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Resolved => "resolved",
        }
    }
}

/// How bad an incident is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The monitor is `degraded` (and alerts on it).
    Degraded,
    /// The monitor is `down` (or `error`, counted as failing).
    Down,
}

impl Severity {
    /// Lowercase name used in JSON and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Degraded => "degraded",
            Self::Down => "down",
        }
    }
}

/// An incident: a monitor failing from `opened_at` until `resolved_at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Incident {
    pub id: i64,
    pub workspace_id: WorkspaceId,
    pub monitor_id: i64,
    /// The monitor's name when the incident opened (kept if the monitor is deleted).
    pub monitor_name: String,
    pub severity: Severity,
    pub status: IncidentStatus,
    /// Message of the result that opened it.
    pub cause: String,
    /// Start of the first failing result of the streak that opened it.
    pub opened_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// Who acknowledged (`key:<api key name>`).
    pub acknowledged_by: Option<String>,
    /// Why it is not notified: `parent` (a parent monitor is down) or `flapping`.
    pub suppressed: Option<String>,
    /// The parent monitor that was down, when `suppressed` is `parent`.
    pub suppressed_by: Option<i64>,
    pub updated_at: DateTime<Utc>,
}

/// Filters of the incident list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IncidentFilter {
    pub status: Option<IncidentStatus>,
    pub monitor_id: Option<i64>,
    pub severity: Option<Severity>,
    /// Incidents open at some point at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Incidents opened before this time.
    pub to: Option<DateTime<Utc>>,
    pub limit: i64,
    pub offset: i64,
}

/// One entry of an incident's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TimelineEntry {
    pub at: DateTime<Utc>,
    /// `opened`, `escalated`, `resolved`, `acknowledged`, `note`, `suppressed`,
    /// `flapping_started`, `flapping_ended`, `parent_recovered`, `reminder`, or
    /// `notification` (one delivery attempt).
    pub kind: String,
    /// `system` or `key:<api key name>`.
    pub actor: String,
    pub message: String,
    #[schema(value_type = Option<Object>)]
    pub data: Option<serde_json::Value>,
}

/// Where a notification is in its delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum NotificationStatus {
    /// Waiting for (another) delivery attempt.
    Pending,
    /// The channel accepted it.
    Delivered,
    /// The notifier said retrying cannot help.
    Failed,
    /// Every retry failed (dead letter).
    Dead,
    /// Over the channel's storm cap; waits for the digest at the end of the window.
    Held,
    /// Carried by a digest instead of being sent alone.
    Digested,
}

impl NotificationStatus {
    /// Lowercase name used in JSON and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Dead => "dead",
            Self::Held => "held",
            Self::Digested => "digested",
        }
    }
}

/// A notification: one event for one channel (a row of the outbox).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Notification {
    pub id: i64,
    pub channel_id: i64,
    pub incident_id: Option<i64>,
    pub monitor_id: Option<i64>,
    /// `opened`, `resolved`, `escalated`, `reminder`, `flapping`, `flapping_ended`, `digest`.
    pub event: String,
    /// Stable across retries; notifiers pass it to destinations that deduplicate.
    pub idempotency_key: String,
    pub status: NotificationStatus,
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub external_id: Option<String>,
    /// The digest notification that carried this one (status `digested`).
    pub digest_id: Option<i64>,
}

/// One delivery attempt of a notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeliveryAttempt {
    pub notification_id: i64,
    pub channel_id: i64,
    pub attempt: u32,
    pub started_at: DateTime<Utc>,
    pub duration_ms: f64,
    /// `delivered`, `transient` (will be retried unless retries are exhausted) or `permanent`.
    pub outcome: String,
    pub message: String,
    pub external_id: Option<String>,
}
