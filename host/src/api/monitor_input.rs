//! What clients send to create, test and patch monitors, its validation into a
//! [`MonitorSpec`], and the monitor as the API shows it (secrets redacted, push URL added).

use chrono::{DateTime, Utc};
use rand::Rng;
use rand::distributions::Alphanumeric;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult, ErrorCode, cycle_text};
use super::plugin_config::{self, Want};
use crate::app::App;
use crate::catalog::Resolved;
use crate::model::{
    AlertPolicy, Monitor, MonitorSpec, MonitorType, PushSchedule, Status, WorkspaceId,
};
use crate::scheduler::heartbeat::{self, ScheduleError};
use crate::secrets;

/// Longest monitor name, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Interval bounds, in seconds.
pub const INTERVAL_SECS: std::ops::RangeInclusive<u32> = 1..=86_400;
/// Timeout bounds, in milliseconds.
pub const TIMEOUT_MS: std::ops::RangeInclusive<u32> = 1..=300_000;
/// Default interval, in seconds.
pub const DEFAULT_INTERVAL_SECS: u32 = 60;
/// Default timeout cap, in milliseconds (the default is also capped by the interval).
pub const DEFAULT_TIMEOUT_MS: u32 = 10_000;
/// Tags per monitor.
pub const MAX_TAGS: usize = 50;
/// Longest tag, in characters.
pub const MAX_TAG_CHARS: usize = 64;
/// Longest grace period of a push monitor, in seconds (30 days).
pub const MAX_GRACE_SECS: u32 = 2_592_000;
/// Length of a generated push token.
pub const PUSH_TOKEN_LEN: usize = 40;
/// Bounds of `failure_threshold` and `recovery_threshold`.
pub const THRESHOLD: std::ops::RangeInclusive<u32> = 1..=100;
/// Bounds of a non-zero `renotify_interval_secs` (1 minute to 7 days).
pub const RENOTIFY_SECS: std::ops::RangeInclusive<u32> = 60..=604_800;
/// Channels a monitor may name, and parents it may have.
pub const MAX_LINKS: usize = 50;

/// A monitor definition as sent to create or test a monitor (and as a PATCH is merged into).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MonitorInput {
    /// 1–200 characters (surrounding whitespace is trimmed).
    pub name: String,
    /// `check` (default) or `push`.
    #[serde(rename = "type", default)]
    pub kind: Option<MonitorType>,
    /// Check monitors (required): `name` follows the latest active version, `name@version` pins one.
    /// Push monitors: must be absent.
    #[serde(default)]
    pub plugin: Option<String>,
    /// Plugin config, validated against the plugin's JSON Schema (default `{}`). Secret fields
    /// are encrypted at rest and read back as `"***"`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
    /// Seconds between checks (or expected pings), 1–86400, default 60.
    #[serde(default)]
    pub interval_secs: Option<u32>,
    /// 1–300000 ms and at most the interval; default min(10000, interval × 1000).
    #[serde(default)]
    pub timeout_ms: Option<u32>,
    /// Default true.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Up to 50 tags of 1–64 characters `[A-Za-z0-9_.:/-]`; stored sorted, without duplicates.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// Push monitors only: when pings are expected.
    #[serde(default)]
    pub push: Option<PushInput>,
    /// Consecutive failing results that open an incident, 1–100, default 2.
    #[serde(default)]
    pub failure_threshold: Option<u32>,
    /// Consecutive passing results that resolve it, 1–100, default 1.
    #[serde(default)]
    pub recovery_threshold: Option<u32>,
    /// Reminder period while an incident stays open and unacknowledged: 0 (off, the default)
    /// or 60–604800 seconds.
    #[serde(default)]
    pub renotify_interval_secs: Option<u32>,
    /// Notify when an incident resolves, default true.
    #[serde(default)]
    pub notify_recovery: Option<bool>,
    /// `degraded` results open incidents (of severity `degraded`), default false.
    #[serde(default)]
    pub alert_on_degraded: Option<bool>,
    /// `error` results (the check could not run) count as failing, default true.
    #[serde(default)]
    pub error_counts_as_failure: Option<bool>,
    /// Ids of channels of the workspace notified for this monitor (besides default and
    /// tag-scoped channels); at most 50, duplicates removed.
    #[serde(default)]
    pub channels: Option<Vec<i64>>,
    /// Ids of parent monitors: while one is down this monitor's incidents are not notified.
    /// At most 50; no cycles.
    #[serde(default)]
    pub depends_on: Option<Vec<i64>>,
}

/// When a push monitor expects its pings.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PushInput {
    /// Cron expression (seconds field optional); when absent a ping is expected every `interval_secs`.
    #[serde(default)]
    pub cron: Option<String>,
    /// IANA time zone of the cron expression, default `UTC`.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Seconds a ping may be late before the monitor is down, default 60, at most 30 days.
    #[serde(default)]
    pub grace_secs: Option<u32>,
}

/// A validated definition: the spec with its config still in plain text, and the plugin it
/// resolved to (check monitors).
pub struct Validated {
    pub spec: MonitorSpec,
    pub resolved: Option<Resolved>,
    /// `channels` as sent (for error pointers; the spec has them sorted and unique).
    pub requested_channels: Vec<i64>,
    /// `depends_on` as sent.
    pub requested_parents: Vec<i64>,
}

impl Validated {
    /// The spec to store: secret config fields sealed.
    pub fn sealed(self, app: &App) -> MonitorSpec {
        let mut spec = self.spec;
        if let Some(resolved) = &self.resolved {
            spec.config = plugin_config::seal(app, resolved, &spec.config);
        }
        spec
    }
}

/// Validates a definition exactly as create does; errors carry the field pointer.
pub fn validate(app: &App, ws: WorkspaceId, input: MonitorInput) -> ApiResult<Validated> {
    let name = input.name.trim().to_string();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::validation(
            "/name",
            format!("name must be 1–{MAX_NAME_CHARS} characters"),
        ));
    }
    let kind = input.kind.unwrap_or(MonitorType::Check);
    let interval_secs = input.interval_secs.unwrap_or(DEFAULT_INTERVAL_SECS);
    if !INTERVAL_SECS.contains(&interval_secs) {
        return Err(ApiError::validation(
            "/interval_secs",
            format!(
                "interval_secs must be between {} and {}",
                INTERVAL_SECS.start(),
                INTERVAL_SECS.end()
            ),
        ));
    }
    let interval_ms = interval_secs.saturating_mul(1000);
    let timeout_ms = input
        .timeout_ms
        .unwrap_or_else(|| DEFAULT_TIMEOUT_MS.min(interval_ms));
    if !TIMEOUT_MS.contains(&timeout_ms) {
        return Err(ApiError::validation(
            "/timeout_ms",
            format!(
                "timeout_ms must be between {} and {}",
                TIMEOUT_MS.start(),
                TIMEOUT_MS.end()
            ),
        ));
    }
    let alert = alert_policy(&input)?;
    let requested_channels = input.channels.clone().unwrap_or_default();
    let requested_parents = input.depends_on.clone().unwrap_or_default();
    let tags = normalize_tags(input.tags.unwrap_or_default())?;
    let config = plugin_config::object(input.config)?;
    let mut spec = MonitorSpec {
        name,
        kind,
        plugin: None,
        config,
        interval_secs,
        timeout_ms,
        enabled: input.enabled.unwrap_or(true),
        tags,
        push: None,
        alert,
    };
    match kind {
        MonitorType::Check => {
            if input.push.is_some() {
                return Err(ApiError::validation(
                    "/push",
                    "only push monitors have a push schedule",
                ));
            }
            if timeout_ms > interval_ms {
                return Err(ApiError::validation(
                    "/timeout_ms",
                    format!(
                        "timeout_ms ({timeout_ms}) must not exceed the interval ({interval_ms} ms)"
                    ),
                ));
            }
            let reference = plugin_config::reference(
                input.plugin,
                "check monitors need a plugin (e.g. `http`)",
            )?;
            let resolved = plugin_config::resolve(app, ws, &reference, Want::Check)?;
            plugin_config::check_config(&resolved, &spec.config)?;
            spec.plugin = Some(reference);
            Ok(Validated {
                spec,
                resolved: Some(resolved),
                requested_channels,
                requested_parents,
            })
        }
        MonitorType::Push => {
            if input.plugin.is_some() {
                return Err(ApiError::validation(
                    "/plugin",
                    "push monitors have no plugin",
                ));
            }
            if spec.config.as_object().is_some_and(|o| !o.is_empty()) {
                return Err(ApiError::validation(
                    "/config",
                    "push monitors have no config",
                ));
            }
            spec.push = Some(push_schedule(input.push)?);
            Ok(Validated {
                spec,
                resolved: None,
                requested_channels,
                requested_parents,
            })
        }
    }
}

/// The alert policy of a definition: defaults filled in, ranges checked, ids sorted and unique.
fn alert_policy(input: &MonitorInput) -> ApiResult<AlertPolicy> {
    let d = AlertPolicy::default();
    let threshold = |value: Option<u32>, default: u32, field: &str| {
        let v = value.unwrap_or(default);
        if THRESHOLD.contains(&v) {
            Ok(v)
        } else {
            Err(ApiError::validation(
                format!("/{field}"),
                format!(
                    "{field} must be between {} and {}",
                    THRESHOLD.start(),
                    THRESHOLD.end()
                ),
            ))
        }
    };
    let failure_threshold = threshold(
        input.failure_threshold,
        d.failure_threshold,
        "failure_threshold",
    )?;
    let recovery_threshold = threshold(
        input.recovery_threshold,
        d.recovery_threshold,
        "recovery_threshold",
    )?;
    let renotify_interval_secs = input
        .renotify_interval_secs
        .unwrap_or(d.renotify_interval_secs);
    if renotify_interval_secs != 0 && !RENOTIFY_SECS.contains(&renotify_interval_secs) {
        return Err(ApiError::validation(
            "/renotify_interval_secs",
            format!(
                "renotify_interval_secs must be 0 (no reminders) or between {} and {}",
                RENOTIFY_SECS.start(),
                RENOTIFY_SECS.end()
            ),
        ));
    }
    let ids = |list: &Option<Vec<i64>>, field: &str| -> ApiResult<Vec<i64>> {
        let mut ids = list.clone().unwrap_or_default();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() > MAX_LINKS {
            return Err(ApiError::validation(
                format!("/{field}"),
                format!("at most {MAX_LINKS} {field} per monitor"),
            ));
        }
        Ok(ids)
    };
    Ok(AlertPolicy {
        failure_threshold,
        recovery_threshold,
        renotify_interval_secs,
        notify_recovery: input.notify_recovery.unwrap_or(d.notify_recovery),
        alert_on_degraded: input.alert_on_degraded.unwrap_or(d.alert_on_degraded),
        error_counts_as_failure: input
            .error_counts_as_failure
            .unwrap_or(d.error_counts_as_failure),
        channels: ids(&input.channels, "channels")?,
        depends_on: ids(&input.depends_on, "depends_on")?,
    })
}

/// Checks that the channels and parents of a validated definition are of the workspace and
/// that the parents do not lead back to the monitor (`monitor`: its id, `None` when new).
/// Errors point at the offending entry as sent.
pub async fn check_references(
    app: &App,
    ws: WorkspaceId,
    monitor: Option<i64>,
    validated: &Validated,
) -> ApiResult<()> {
    let alert = &validated.spec.alert;
    if !alert.channels.is_empty() {
        let found = app.store.channel_ids_in(ws, &alert.channels).await?;
        if let Some((i, id)) = validated
            .requested_channels
            .iter()
            .enumerate()
            .find(|(_, id)| !found.contains(id))
        {
            return Err(ApiError::new(
                ErrorCode::ChannelNotFound,
                format!("no channel {id} in this workspace"),
            )
            .at(format!("/channels/{i}"))
            .with_status(axum::http::StatusCode::BAD_REQUEST));
        }
    }
    if alert.depends_on.is_empty() {
        return Ok(());
    }
    let index_of = |id: i64| {
        validated
            .requested_parents
            .iter()
            .position(|p| *p == id)
            .unwrap_or(0)
    };
    if let Some(me) = monitor
        && alert.depends_on.contains(&me)
    {
        return Err(ApiError::new(
            ErrorCode::DependencyCycle,
            "a monitor cannot depend on itself",
        )
        .at(format!("/depends_on/{}", index_of(me)))
        .with_details(serde_json::json!({ "cycle": [me, me] })));
    }
    let found = app.store.monitor_ids_in(ws, &alert.depends_on).await?;
    if let Some((i, id)) = validated
        .requested_parents
        .iter()
        .enumerate()
        .find(|(_, id)| !found.contains(id))
    {
        return Err(ApiError::new(
            ErrorCode::DependencyNotFound,
            format!("no monitor {id} in this workspace"),
        )
        .at(format!("/depends_on/{i}")));
    }
    if let Some(me) = monitor {
        let edges = app.store.dependency_edges(ws).await?;
        if let Some(cycle) = crate::store::dependency_cycle(&edges, me, &alert.depends_on) {
            let parent = cycle.get(1).copied().unwrap_or(me);
            return Err(ApiError::new(
                ErrorCode::DependencyCycle,
                format!(
                    "depending on monitor {parent} would form a cycle: {}",
                    cycle_text(&cycle)
                ),
            )
            .at(format!("/depends_on/{}", index_of(parent)))
            .with_details(serde_json::json!({ "cycle": cycle })));
        }
    }
    Ok(())
}

fn push_schedule(input: Option<PushInput>) -> ApiResult<PushSchedule> {
    let defaults = PushSchedule::default();
    let schedule = match input {
        None => defaults,
        Some(p) => PushSchedule {
            cron: p
                .cron
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty()),
            timezone: p
                .timezone
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .unwrap_or(defaults.timezone),
            grace_secs: p.grace_secs.unwrap_or(defaults.grace_secs),
        },
    };
    if schedule.grace_secs > MAX_GRACE_SECS {
        return Err(ApiError::validation(
            "/push/grace_secs",
            format!("grace_secs must be at most {MAX_GRACE_SECS}"),
        ));
    }
    heartbeat::validate(&schedule).map_err(|e| {
        let field = match e {
            ScheduleError::Cron(_) => "/push/cron",
            ScheduleError::TimeZone(_) => "/push/timezone",
        };
        ApiError::validation(field, e.to_string())
    })?;
    Ok(schedule)
}

/// Trims and checks tags; returns them sorted without duplicates.
pub fn normalize_tags(tags: Vec<String>) -> ApiResult<Vec<String>> {
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for (i, tag) in tags.into_iter().enumerate() {
        let tag = tag.trim().to_string();
        let ok_chars = tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.:/-".contains(c));
        if tag.is_empty() || tag.chars().count() > MAX_TAG_CHARS || !ok_chars {
            return Err(ApiError::validation(
                format!("/tags/{i}"),
                format!("a tag is 1–{MAX_TAG_CHARS} characters of A-Z a-z 0-9 _ . : / -"),
            ));
        }
        out.push(tag);
    }
    out.sort();
    out.dedup();
    if out.len() > MAX_TAGS {
        return Err(ApiError::validation(
            "/tags",
            format!("at most {MAX_TAGS} tags per monitor"),
        ));
    }
    Ok(out)
}

/// A fresh secret push token (URL-safe).
pub fn push_token() -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(PUSH_TOKEN_LEN)
        .map(char::from)
        .collect()
}

/// Merges a PATCH body into a stored monitor and validates the result like a create.
/// `type` cannot change; sealed values in the patch are refused; secrets left out keep
/// their stored value; `"***"` at a secret position is refused.
pub fn patched(app: &App, monitor: &Monitor, patch: &Value) -> ApiResult<Validated> {
    let fields = plugin_config::patch_fields(patch)?;
    let current = monitor.spec.kind;
    if let Some(kind) = fields.get("type")
        && kind.as_str() != Some(current.as_str())
    {
        return Err(ApiError::validation(
            "/type",
            format!(
                "the type of a monitor cannot change (it is `{}`)",
                current.as_str()
            ),
        ));
    }
    if let Some(config) = fields.get("config") {
        plugin_config::refuse_sealed(config)?;
    }
    let mut doc = plugin_config::patch_base(app, &monitor.spec)?;
    plugin_config::merge_patch(&mut doc, patch);
    if let Value::Object(map) = &mut doc {
        map.insert("type".into(), Value::String(current.as_str().into()));
    }
    let input: MonitorInput = super::extract::from_value(doc)?;
    validate(app, monitor.workspace_id, input)
}

/// A monitor as the API returns it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MonitorView {
    pub id: i64,
    pub workspace_id: i64,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: MonitorType,
    pub plugin: Option<String>,
    /// Plugin config; secret fields read as `"***"`.
    #[schema(value_type = Object)]
    pub config: Value,
    pub interval_secs: u32,
    pub timeout_ms: u32,
    pub enabled: bool,
    pub tags: Vec<String>,
    pub push: Option<PushSchedule>,
    /// Alert policy: thresholds, reminders, channels, dependencies.
    #[serde(flatten)]
    pub alert: AlertPolicy,
    /// Push monitors: the secret URL the monitored job pings.
    pub push_url: Option<String>,
    /// Status of the latest result; null before the first one.
    pub status: Option<Status>,
    /// When the monitor entered `status`.
    pub since: Option<DateTime<Utc>>,
    pub last_checked_at: Option<DateTime<Utc>>,
    pub last_latency_ms: Option<f64>,
    pub last_message: Option<String>,
    /// Push monitors: when the latest ping arrived.
    pub last_ping_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Incremented by every change of the definition.
    pub revision: i64,
}

impl MonitorView {
    /// The view of a stored monitor.
    pub fn of(app: &App, m: Monitor) -> Self {
        let push_url = m.push_token.as_deref().map(|t| app.push_url(t));
        let spec = m.spec;
        Self {
            id: m.id,
            workspace_id: m.workspace_id,
            name: spec.name,
            kind: spec.kind,
            plugin: spec.plugin,
            config: secrets::redact(&spec.config),
            interval_secs: spec.interval_secs,
            timeout_ms: spec.timeout_ms,
            enabled: spec.enabled,
            tags: spec.tags,
            push: spec.push,
            alert: spec.alert,
            push_url,
            status: m.state.status,
            since: m.state.since,
            last_checked_at: m.state.last_checked_at,
            last_latency_ms: m.state.last_latency_ms,
            last_message: m.state.last_message,
            last_ping_at: m.state.last_ping_at,
            created_at: m.created_at,
            updated_at: m.updated_at,
            revision: m.revision,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tags_are_trimmed_checked_and_deduplicated() {
        let tags = normalize_tags(vec![" prod ".into(), "eu:west/1".into(), "prod".into()])
            .expect("valid");
        assert_eq!(tags, vec!["eu:west/1", "prod"]);
        let e = normalize_tags(vec!["ok".into(), "not ok".into()]).expect_err("space");
        assert_eq!(e.field.as_deref(), Some("/tags/1"));
        assert!(normalize_tags(vec!["x".repeat(65)]).is_err());
        assert!(normalize_tags(vec!["".into()]).is_err());
    }

    fn input(extra: serde_json::Value) -> MonitorInput {
        let mut doc = json!({"name": "m"});
        plugin_config::merge_patch(&mut doc, &extra);
        serde_json::from_value(doc).expect("input")
    }

    #[test]
    fn alert_policy_defaults_ranges_and_ids() {
        assert_eq!(
            alert_policy(&input(json!({}))).ok(),
            Some(AlertPolicy::default())
        );
        let p = alert_policy(&input(json!({
            "failure_threshold": 100, "recovery_threshold": 1, "renotify_interval_secs": 60,
            "notify_recovery": false, "alert_on_degraded": true,
            "error_counts_as_failure": false, "channels": [3, 1, 3], "depends_on": [9, 2, 9]
        })))
        .expect("valid");
        assert_eq!(p.channels, vec![1, 3]);
        assert_eq!(p.depends_on, vec![2, 9]);
        assert!(!p.notify_recovery && p.alert_on_degraded && !p.error_counts_as_failure);
        for (doc, field) in [
            (json!({"failure_threshold": 0}), "/failure_threshold"),
            (json!({"failure_threshold": 101}), "/failure_threshold"),
            (json!({"recovery_threshold": 0}), "/recovery_threshold"),
            (
                json!({"renotify_interval_secs": 59}),
                "/renotify_interval_secs",
            ),
            (
                json!({"renotify_interval_secs": 604_801}),
                "/renotify_interval_secs",
            ),
            (
                json!({"channels": (0..51).collect::<Vec<i64>>()}),
                "/channels",
            ),
        ] {
            let e = alert_policy(&input(doc.clone())).expect_err("invalid");
            assert_eq!(e.field.as_deref(), Some(field), "{doc}");
        }
        assert!(alert_policy(&input(json!({"renotify_interval_secs": 0}))).is_ok());
    }

    #[test]
    fn push_tokens_are_long_and_url_safe() {
        let a = push_token();
        assert_eq!(a.len(), PUSH_TOKEN_LEN);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, push_token());
    }
}
