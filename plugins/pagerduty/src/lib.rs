//! The `pagerduty` notifier: PagerDuty Events API v2 (`POST {api_url}/v2/enqueue`).
//!
//! One PagerDuty alert per Pharos incident: every event of an incident carries the incident's
//! stable `dedup_key`, so retries, escalations and reminders of an open incident are
//! deduplicated by PagerDuty instead of paging twice, and the resolution resolves that alert.
//!
//! | event | PagerDuty |
//! | --- | --- |
//! | `incident.opened`, `incident.escalated`, `incident.reminder` | `trigger`, the incident's key |
//! | `incident.resolved` | `resolve`, the incident's key |
//! | `monitor.flapping` | `trigger` (warning), the monitor's flapping key |
//! | `monitor.flapping_ended`, no open incident | `resolve` the flapping key |
//! | `monitor.flapping_ended` into an open incident | `trigger` the incident, then `resolve` the flapping alert |
//! | `digest` | `trigger` (info) with the digest's own key |
//! | `test` | `trigger` (info) with `pharos-test-<idempotency key>` |
//!
//! 202 is delivered (external id = the `dedup_key`); 400 is permanent; 429 and 5xx are
//! transient.

use pharos_sdk::http::Request;
use pharos_sdk::notify::{self, DeliveryError, Notification, Notify, Receipt, render};
use pharos_sdk::{Info, serde_json};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// The JSON Schema of the config (`schema.json` beside `Cargo.toml`).
pub const SCHEMA: &str = include_str!("../schema.json");
/// The Events API (US service region).
pub const DEFAULT_API_URL: &str = "https://events.pagerduty.com";
/// Longest `payload.summary` PagerDuty accepts.
pub const MAX_SUMMARY: usize = 1024;
/// Longest `dedup_key` PagerDuty accepts.
pub const MAX_DEDUP_KEY: usize = 255;

/// The `pagerduty` plugin's config; see `schema.json` for each field.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Integration key (secret).
    pub routing_key: String,
    /// Fixed severity of triggered alerts.
    #[serde(default)]
    pub severity: Option<Severity>,
    /// Base URL of the Events API.
    #[serde(default = "default_api_url")]
    pub api_url: String,
}

fn default_api_url() -> String {
    DEFAULT_API_URL.to_string()
}

/// A PagerDuty severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// `critical`.
    Critical,
    /// `error`.
    Error,
    /// `warning`.
    Warning,
    /// `info`.
    Info,
}

impl Severity {
    /// The API's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// What one Events API request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Open (or add to) the alert with the key.
    Trigger,
    /// Mark it acknowledged.
    Acknowledge,
    /// Resolve it.
    Resolve,
}

impl Action {
    /// The API's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Trigger => "trigger",
            Action::Acknowledge => "acknowledge",
            Action::Resolve => "resolve",
        }
    }
}

/// The routing key, trimmed, when it has the right shape.
fn routing_key(config: &Config) -> Result<&str, DeliveryError> {
    let key = config.routing_key.trim();
    if key.len() == 32 && key.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(key)
    } else {
        Err(DeliveryError::Permanent(
            "invalid config at `routing_key`: must be the 32-character integration key".into(),
        ))
    }
}

/// `key` cut to PagerDuty's limit.
fn dedup(key: &str) -> String {
    key.chars().take(MAX_DEDUP_KEY).collect()
}

/// The events to send for `n`, in order: `(action, dedup_key)`.
pub fn plan(n: &Notification) -> Vec<(Action, String)> {
    let e = &n.event;
    let key = dedup(e.dedup_key(n));
    match e.kind.as_str() {
        "incident.resolved" => vec![(Action::Resolve, key)],
        "incident.acknowledged" => vec![(Action::Acknowledge, key)],
        "test" => vec![(
            Action::Trigger,
            dedup(&format!("pharos-test-{}", n.idempotency_key)),
        )],
        "monitor.flapping_ended" => {
            let open = e.incident.as_ref().is_some_and(|i| i.status == "open");
            if !open {
                return vec![(Action::Resolve, key)];
            }
            let mut out = vec![(Action::Trigger, key)];
            if let Some(m) = e.monitor.as_ref().filter(|m| m.id > 0) {
                out.push((Action::Resolve, format!("pharos-monitor-{}-flapping", m.id)));
            }
            out
        }
        _ => vec![(Action::Trigger, key)],
    }
}

/// The severity of a triggered alert: configured, else from the event.
pub fn severity(config: &Config, n: &Notification) -> &'static str {
    if let Some(s) = config.severity {
        return s.as_str();
    }
    if n.event.is_resolved() || n.test {
        return "info";
    }
    match n.event.severity() {
        "critical" => "critical",
        "warning" => "warning",
        _ => "info",
    }
}

/// `custom_details` of a triggered alert: what a responder and an event rule need.
pub fn custom_details(n: &Notification) -> Value {
    let e = &n.event;
    let mut d = Map::new();
    let mut put = |k: &str, v: Value| {
        if !v.is_null() {
            d.insert(k.to_string(), v);
        }
    };
    put("event", json!(e.kind));
    put("details", json!(n.body.trim()));
    put("status", json!(e.status));
    put(
        "cause",
        json!(
            e.cause
                .as_deref()
                .or_else(|| e.incident.as_ref().and_then(|i| i.cause.as_deref()))
        ),
    );
    put("since", json!(e.since));
    if let Some(m) = &e.monitor {
        put("monitor", json!(m.name));
        put("monitor_id", json!(m.id));
        put("check", json!(m.plugin));
        if !m.tags.is_empty() {
            put("tags", json!(m.tags));
        }
        put("monitor_url", json!(m.url));
    }
    if let Some(i) = &e.incident {
        put("incident_id", json!(i.id));
        put("incident_url", json!(i.url));
    }
    let lines = render::digest_lines(e, 50);
    if !lines.is_empty() {
        put("held_events", json!(lines));
    }
    if n.test {
        put("test", json!(true));
    }
    Value::Object(d)
}

/// The body of one event.
fn event_body(
    config: &Config,
    key: &str,
    n: &Notification,
    action: Action,
    dedup_key: &str,
) -> Value {
    let mut body = json!({
        "routing_key": key,
        "event_action": action.as_str(),
        "dedup_key": dedup_key,
    });
    if action != Action::Trigger {
        return body;
    }
    let e = &n.event;
    let source = e
        .monitor
        .as_ref()
        .map(|m| m.name.trim())
        .filter(|s| !s.is_empty())
        .unwrap_or("Pharos");
    let mut payload = json!({
        "summary": notify::truncate(&n.display_title(), MAX_SUMMARY),
        "source": source,
        "severity": severity(config, n),
    });
    if let Some(ts) = e.occurred_at.as_deref().filter(|t| !t.is_empty()) {
        payload["timestamp"] = json!(ts);
    }
    if let Some(check) = e.monitor.as_ref().and_then(|m| m.plugin.as_deref()) {
        payload["class"] = json!(check);
    }
    payload["custom_details"] = custom_details(n);
    body["payload"] = payload;
    body["client"] = json!("Pharos");
    if let Some(url) = e.dashboard_url.as_deref() {
        body["client_url"] = json!(url);
    }
    if let Some(link) = e.link() {
        body["links"] = json!([{"href": link, "text": render::link_label(e)}]);
    }
    body
}

/// The requests to send for `n`, in order, with what each does (pure: no I/O).
pub fn build_requests(
    config: &Config,
    n: &Notification,
) -> Result<Vec<(Action, String, Request)>, DeliveryError> {
    let api = notify::base_url("api_url", &config.api_url)?;
    let key = routing_key(config)?;
    let url = notify::join_url(&api, "/v2/enqueue");
    Ok(plan(n)
        .into_iter()
        .map(|(action, dedup_key)| {
            let body = event_body(config, key, n, action, &dedup_key);
            (action, dedup_key, notify::post_json(&url, &body, n))
        })
        .collect())
}

/// The `pagerduty` notifier.
pub struct PagerDuty;

impl Notify for PagerDuty {
    type Config = Config;

    fn info() -> Info {
        Info {
            name: "pagerduty",
            version: env!("CARGO_PKG_VERSION"),
            description: "Triggers and resolves PagerDuty alerts (Events API v2), one per incident",
            config_schema: SCHEMA,
            capabilities: &["http"],
        }
    }

    fn deliver(config: Config, n: &Notification) -> Result<Receipt, DeliveryError> {
        let secrets = [config.routing_key.trim().to_string()];
        let requests = build_requests(&config, n)?;
        let mut message = String::new();
        let mut primary: Option<String> = None;
        for (action, dedup_key, req) in requests {
            let req = req.clone().timeout_ms(n.budget_ms(req.timeout_ms));
            let resp = notify::send(&req).map_err(|e| e.redact(&secrets))?;
            let returned = resp
                .json::<Value>()
                .ok()
                .and_then(|v| v["dedup_key"].as_str().map(str::to_string))
                .filter(|k| !k.is_empty())
                .unwrap_or(dedup_key);
            if message.is_empty() {
                message = format!("HTTP {}: ", resp.status);
            } else {
                message.push_str(", ");
            }
            message.push_str(&format!("{} {returned}", action.as_str()));
            primary.get_or_insert(returned);
        }
        let receipt = Receipt::new(message);
        Ok(match primary {
            Some(k) => receipt.with_external_id(k),
            None => receipt,
        })
    }
}

pharos_sdk::export_notify!(PagerDuty);

#[cfg(test)]
mod tests;
