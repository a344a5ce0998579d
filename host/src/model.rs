//! Domain types shared by the store, the scheduler, the result pipeline and the API.
//!
//! Times are `chrono::DateTime<Utc>` (RFC 3339 in JSON, milliseconds since the epoch in the
//! database). Every config row belongs to a workspace; results carry the region that made them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use crate::runtime::{Status, Timings};

pub mod alerting;
pub use alerting::*;

/// Point in time, UTC.
pub type Timestamp = DateTime<Utc>;

/// Workspace identifier; every config row belongs to one.
pub type WorkspaceId = i64;

/// The workspace that exists from the first migration on.
pub const DEFAULT_WORKSPACE: WorkspaceId = 1;

/// Region of results produced by this node.
pub const LOCAL_REGION: &str = "local";

/// How a monitor gets its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MonitorType {
    /// A plugin runs a check on schedule.
    Check,
    /// The monitored job pings its push URL; missing pings mean down.
    Push,
}

impl MonitorType {
    /// Lowercase name used in JSON and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Check => "check",
            Self::Push => "push",
        }
    }
}

/// When a push monitor expects its pings (push monitors only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PushSchedule {
    /// Cron expression (seconds field optional) of expected pings; when absent a ping is
    /// expected every `interval_secs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// IANA time zone the cron expression is read in (default `UTC`).
    #[serde(default = "utc")]
    pub timezone: String,
    /// Seconds a ping may be late before the monitor is down (default 60).
    #[serde(default = "default_grace")]
    pub grace_secs: u32,
}

fn utc() -> String {
    "UTC".to_string()
}

fn default_grace() -> u32 {
    60
}

impl Default for PushSchedule {
    fn default() -> Self {
        Self {
            cron: None,
            timezone: utc(),
            grace_secs: default_grace(),
        }
    }
}

/// The editable definition of a monitor, as validated by the API and saved by the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MonitorSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: MonitorType,
    /// `name` (follows the latest enabled version) or `name@version` (pinned); check monitors only.
    pub plugin: Option<String>,
    /// Plugin config, stored with secret fields sealed (see `secrets`).
    pub config: serde_json::Value,
    pub interval_secs: u32,
    pub timeout_ms: u32,
    pub enabled: bool,
    pub tags: Vec<String>,
    /// Push monitors: when pings are expected.
    pub push: Option<PushSchedule>,
    /// How results become incidents and notifications (flat in JSON).
    #[serde(flatten)]
    pub alert: AlertPolicy,
}

/// Live state of a monitor, maintained from its results.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MonitorState {
    /// Status of the latest result; `None` before the first one.
    pub status: Option<Status>,
    /// When the monitor entered `status`.
    pub since: Option<DateTime<Utc>>,
    pub last_checked_at: Option<DateTime<Utc>>,
    pub last_latency_ms: Option<f64>,
    pub last_message: Option<String>,
    /// Push monitors: when the latest ping arrived.
    pub last_ping_at: Option<DateTime<Utc>>,
}

/// A stored monitor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Monitor {
    pub id: i64,
    pub workspace_id: WorkspaceId,
    #[serde(flatten)]
    pub spec: MonitorSpec,
    /// Secret token of the push URL (push monitors only).
    pub push_token: Option<String>,
    pub state: MonitorState,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Incremented by every change of the spec; lets writers detect stale snapshots.
    pub revision: i64,
}

/// Filters of the monitor list.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct MonitorFilter {
    /// Monitors carrying this tag.
    pub tag: Option<String>,
    /// Monitors whose latest status is this (`pending` = no result yet is not expressible here).
    pub status: Option<Status>,
    pub enabled: Option<bool>,
    /// Case-insensitive substring of the name.
    pub text: Option<String>,
}

/// A page of rows plus the total number matching.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: i64,
}

/// One check result to store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewResult {
    pub monitor_id: i64,
    pub workspace_id: WorkspaceId,
    pub region: String,
    pub started_at: DateTime<Utc>,
    pub status: Status,
    pub latency_ms: f64,
    pub message: String,
    pub timings: Timings,
    pub metrics: Vec<(String, f64)>,
    pub details: Option<crate::runtime::Details>,
    /// Host-side fault code (`timeout`, `cpu_limit`, … or `no_heartbeat`).
    pub error_cause: Option<String>,
    /// Push monitors: this result is a ping (updates `last_ping_at`).
    pub ping: bool,
}

/// A stored check result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CheckResult {
    pub id: i64,
    pub monitor_id: i64,
    pub region: String,
    pub started_at: DateTime<Utc>,
    pub status: Status,
    pub latency_ms: f64,
    pub message: String,
    #[schema(value_type = Object)]
    pub timings: Timings,
    /// Named numeric metrics.
    #[schema(value_type = Object)]
    pub metrics: serde_json::Map<String, serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
    pub error_cause: Option<String>,
    /// Produced while a maintenance window covered the monitor: not alerting, not in uptime.
    #[serde(default)]
    pub maintenance: bool,
}

/// Filters of the result list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResultQuery {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub status: Option<Status>,
    pub limit: i64,
    pub offset: i64,
}

/// One bucket of the latency chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LatencyBucket {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Results in the bucket (all statuses).
    pub count: i64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub min_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub avg_ms: Option<f64>,
    pub dns_ms: Option<f64>,
    pub connect_ms: Option<f64>,
    pub tls_ms: Option<f64>,
    pub first_byte_ms: Option<f64>,
}

/// Result counts over a range and the uptime they give.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Uptime {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub up: i64,
    pub degraded: i64,
    pub down: i64,
    pub error: i64,
    /// up + degraded + down + error.
    pub total: i64,
    /// Results produced during maintenance windows (not in the counts above nor in uptime).
    #[serde(default)]
    pub maintenance: i64,
    /// (up + degraded) / (up + degraded + down) × 100; `error` results (the check could not run)
    /// are not counted against the target. `None` without results.
    pub uptime_pct: Option<f64>,
}

/// Counts for the dashboard header.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DashboardSummary {
    pub monitors: i64,
    pub enabled: i64,
    pub paused: i64,
    pub up: i64,
    pub degraded: i64,
    pub down: i64,
    pub error: i64,
    /// Enabled monitors without a result yet.
    pub pending: i64,
}

/// A tag and how many monitors carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TagCount {
    pub tag: String,
    pub monitors: i64,
}

/// What an API key may do; each scope includes the ones before it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Read everything except secrets.
    Read,
    /// Create, change and delete monitors; run checks.
    Write,
    /// Plugins, grants and API keys.
    Admin,
}

impl Scope {
    /// Lowercase name used in JSON and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Admin => "admin",
        }
    }
}

/// A stored API key (never its secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApiKey {
    pub id: i64,
    pub workspace_id: WorkspaceId,
    pub name: String,
    /// First characters of the key, to recognise it in lists.
    pub prefix: String,
    pub scopes: Vec<Scope>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// An uploaded plugin as stored (the component bytes are stored separately, by digest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredPlugin {
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub version: String,
    /// Lowercase hex sha256 of the component.
    pub digest: String,
    /// `check` or `notifier`.
    pub kind: String,
    pub description: String,
    pub config_schema: serde_json::Value,
    /// Capabilities the plugin declared.
    pub capabilities: Vec<String>,
    /// What an admin granted; `None` until granted.
    pub grants: Option<crate::runtime::Grants>,
    pub enabled: bool,
    pub size: i64,
    pub created_at: DateTime<Utc>,
}

/// A response remembered for an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentResponse {
    /// Hash of the request the key was first used with.
    pub request_hash: String,
    pub status: u16,
    pub body: String,
}
