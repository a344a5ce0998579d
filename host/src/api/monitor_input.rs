//! What clients send to create, test and patch monitors, its validation into a
//! [`MonitorSpec`], and the monitor as the API shows it (secrets redacted, push URL added).

use chrono::{DateTime, Utc};
use rand::Rng;
use rand::distributions::Alphanumeric;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult};
use crate::app::App;
use crate::catalog::{CatalogError, Resolved};
use crate::model::{Monitor, MonitorSpec, MonitorType, PushSchedule, Status, WorkspaceId};
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
}

impl Validated {
    /// The spec to store: secret config fields sealed.
    pub fn sealed(self, app: &App) -> MonitorSpec {
        let mut spec = self.spec;
        if let Some(resolved) = &self.resolved {
            spec.config = app
                .secrets
                .seal(&resolved.plugin.info.config_schema, &spec.config);
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
    let tags = normalize_tags(input.tags.unwrap_or_default())?;
    let config = input
        .config
        .unwrap_or_else(|| Value::Object(Default::default()));
    if !config.is_object() {
        return Err(ApiError::validation(
            "/config",
            "config must be a JSON object",
        ));
    }
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
            let reference = input
                .plugin
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .ok_or_else(|| {
                    ApiError::validation("/plugin", "check monitors need a plugin (e.g. `http`)")
                })?;
            let resolved = resolve(app, ws, &reference)?;
            check_config(&resolved, &spec.config)?;
            spec.plugin = Some(reference);
            Ok(Validated {
                spec,
                resolved: Some(resolved),
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
            })
        }
    }
}

/// Resolves a plugin reference; failures point at `/plugin` with status 400.
fn resolve(app: &App, ws: WorkspaceId, reference: &str) -> ApiResult<Resolved> {
    app.catalog.resolve(ws, reference).map_err(|e| match e {
        CatalogError::Store(s) => ApiError::from(s),
        other => ApiError::from(other)
            .at("/plugin")
            .with_status(axum::http::StatusCode::BAD_REQUEST),
    })
}

/// Rejects echoed `"***"` and sealed values, then validates against the plugin's schema.
fn check_config(resolved: &Resolved, config: &Value) -> ApiResult<()> {
    secrets::check_input(&resolved.plugin.info.config_schema, config)
        .map_err(|e| ApiError::from(e).under("/config"))?;
    resolved.plugin.validate_config(config).map_err(|e| {
        let pointer = if e.pointer == "/" { "" } else { &e.pointer };
        ApiError::validation(format!("/config{pointer}"), e.message.clone())
    })
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

/// Applies a JSON merge patch (RFC 7396) to `target`.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    if let Value::Object(map) = target {
        for (key, value) in patch {
            if value.is_null() {
                map.remove(key);
            } else {
                merge_patch(map.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// The stored spec as a document a PATCH merges into (config with sealed secrets opened;
/// absent optional fields left out).
pub fn patch_base(app: &App, spec: &MonitorSpec) -> ApiResult<Value> {
    let mut doc = serde_json::to_value(spec).map_err(ApiError::internal)?;
    if let Value::Object(map) = &mut doc {
        map.retain(|_, v| !v.is_null());
        if let Some(config) = map.get_mut("config") {
            *config = app.secrets.reveal(config)?;
        }
    }
    Ok(doc)
}

/// Merges a PATCH body into a stored monitor and validates the result like a create.
/// `type` cannot change; sealed values in the patch are refused; secrets left out keep
/// their stored value; `"***"` at a secret position is refused.
pub fn patched(app: &App, monitor: &Monitor, patch: &Value) -> ApiResult<Validated> {
    let Some(fields) = patch.as_object() else {
        return Err(ApiError::validation(
            "",
            "a PATCH body must be a JSON object",
        ));
    };
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
        // Sealed values only come from the server; an empty schema checks just for those.
        secrets::check_input(&Value::Object(Default::default()), config)
            .map_err(|e| ApiError::from(e).under("/config"))?;
    }
    let mut doc = patch_base(app, &monitor.spec)?;
    merge_patch(&mut doc, patch);
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
    fn merge_patch_follows_rfc_7396() {
        let mut doc = json!({"a": "b", "c": {"d": "e", "f": "g"}, "tags": ["x"]});
        merge_patch(
            &mut doc,
            &json!({"a": "z", "c": {"f": null}, "tags": ["y", "z"]}),
        );
        assert_eq!(doc, json!({"a": "z", "c": {"d": "e"}, "tags": ["y", "z"]}));
        let mut doc = json!({"a": 1});
        merge_patch(&mut doc, &json!({"b": {"c": null, "d": 2}}));
        assert_eq!(doc, json!({"a": 1, "b": {"d": 2}}));
    }

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

    #[test]
    fn push_tokens_are_long_and_url_safe() {
        let a = push_token();
        assert_eq!(a.len(), PUSH_TOKEN_LEN);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, push_token());
    }
}
