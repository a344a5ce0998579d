//! The `opsgenie` notifier: Opsgenie Alert API v2 (`Authorization: GenieKey …`).
//!
//! One Opsgenie alert per Pharos incident: alerts are created with `alias` = the incident's
//! stable dedup key, and Opsgenie keeps one open alert per alias, so retries and reminders
//! only raise the alert's count instead of notifying twice.
//!
//! | event | Opsgenie |
//! | --- | --- |
//! | `incident.opened`, `incident.reminder` | create (`POST /v2/alerts`) |
//! | `incident.escalated` | create, then raise the priority (`PUT /v2/alerts/{alias}/priority`) |
//! | `incident.resolved` | close (`POST /v2/alerts/{alias}/close?identifierType=alias`) |
//! | `monitor.flapping` | create with the monitor's flapping alias |
//! | `monitor.flapping_ended`, no open incident | close the flapping alert |
//! | `monitor.flapping_ended` into an open incident | create the incident's alert, close the flapping one |
//! | `digest` | create with the digest's own alias (P5) |
//! | `test` | create with alias `pharos-test-<idempotency key>` |
//!
//! 202 is delivered (external id = the `requestId` of the first request); 429 and 5xx are
//! transient; other 4xx are permanent.

use pharos_sdk::http::Request;
use pharos_sdk::notify::{self, DeliveryError, Notification, Notify, Receipt, render};
use pharos_sdk::{Info, serde_json};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// The JSON Schema of the config (`schema.json` beside `Cargo.toml`).
pub const SCHEMA: &str = include_str!("../schema.json");
/// The Opsgenie API (US instance).
pub const DEFAULT_API_URL: &str = "https://api.opsgenie.com";
/// Opsgenie's limits, in characters.
const MAX_MESSAGE: usize = 130;
const MAX_ALIAS: usize = 512;
const MAX_DESCRIPTION: usize = 15_000;
const MAX_TAGS: usize = 20;
const MAX_TAG: usize = 50;
const MAX_DETAIL: usize = 8_000;
/// Who Pharos is in Opsgenie's activity log.
const SOURCE: &str = "Pharos";

/// The `opsgenie` plugin's config; see `schema.json` for each field.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// API integration key (secret).
    pub api_key: String,
    /// Base URL of the API.
    #[serde(default = "default_api_url")]
    pub api_url: String,
    /// Who is notified of created alerts.
    #[serde(default)]
    pub responders: Vec<Responder>,
    /// Fixed priority of created alerts.
    #[serde(default)]
    pub priority: Option<Priority>,
    /// Extra tags.
    #[serde(default)]
    pub tags: Vec<String>,
}

fn default_api_url() -> String {
    DEFAULT_API_URL.to_string()
}

/// A responder: its type and exactly one of id, name or username.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Responder {
    /// `team`, `user`, `escalation` or `schedule`.
    #[serde(rename = "type")]
    pub kind: ResponderType,
    /// The responder's id.
    #[serde(default)]
    pub id: Option<String>,
    /// The team's, escalation's or schedule's name.
    #[serde(default)]
    pub name: Option<String>,
    /// The user's email address.
    #[serde(default)]
    pub username: Option<String>,
}

/// What a responder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResponderType {
    /// A team.
    Team,
    /// A user.
    User,
    /// An escalation policy.
    Escalation,
    /// An on-call schedule.
    Schedule,
}

impl ResponderType {
    /// The API's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            ResponderType::Team => "team",
            ResponderType::User => "user",
            ResponderType::Escalation => "escalation",
            ResponderType::Schedule => "schedule",
        }
    }
}

impl Responder {
    /// The API's form, or why the entry is invalid.
    fn to_json(&self) -> Result<Value, String> {
        let ids = [
            ("id", &self.id),
            ("name", &self.name),
            ("username", &self.username),
        ];
        let set: Vec<(&str, &str)> = ids
            .iter()
            .filter_map(|(k, v)| v.as_deref().map(|v| (*k, v.trim())))
            .collect();
        match set.as_slice() {
            [(k, v)] if !v.is_empty() => {
                let user = self.kind == ResponderType::User;
                if (*k == "username" && !user) || (*k == "name" && user) {
                    return Err(format!("`{k}` does not identify a {}", self.kind.as_str()));
                }
                let mut out = Map::new();
                out.insert("type".into(), json!(self.kind.as_str()));
                out.insert((*k).to_string(), json!(v));
                Ok(Value::Object(out))
            }
            _ => Err("set exactly one of `id`, `name` and `username`".into()),
        }
    }
}

/// An Opsgenie priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Priority {
    /// Critical.
    P1,
    /// High.
    P2,
    /// Moderate.
    P3,
    /// Low.
    P4,
    /// Informational.
    P5,
}

impl Priority {
    /// The API's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::P1 => "P1",
            Priority::P2 => "P2",
            Priority::P3 => "P3",
            Priority::P4 => "P4",
            Priority::P5 => "P5",
        }
    }
}

/// What one request does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create an alert with this alias.
    Create(String),
    /// Raise the priority of the open alert with this alias.
    SetPriority(String),
    /// Acknowledge the alert with this alias.
    Acknowledge(String),
    /// Close the alert with this alias.
    Close(String),
}

impl Action {
    /// `create alias`, `close alias`, …
    pub fn describe(&self) -> String {
        match self {
            Action::Create(a) => format!("create {a}"),
            Action::SetPriority(a) => format!("priority {a}"),
            Action::Acknowledge(a) => format!("acknowledge {a}"),
            Action::Close(a) => format!("close {a}"),
        }
    }
}

/// `key` cut to Opsgenie's alias limit.
fn alias(key: &str) -> String {
    key.chars().take(MAX_ALIAS).collect()
}

/// The requests to send for `n`, in order.
pub fn plan(n: &Notification) -> Vec<Action> {
    let e = &n.event;
    let key = alias(e.dedup_key(n));
    match e.kind.as_str() {
        "incident.resolved" => vec![Action::Close(key)],
        "incident.acknowledged" => vec![Action::Acknowledge(key)],
        "incident.escalated" => vec![Action::Create(key.clone()), Action::SetPriority(key)],
        "test" => vec![Action::Create(alias(&format!(
            "pharos-test-{}",
            n.idempotency_key
        )))],
        "monitor.flapping_ended" => {
            let open = e.incident.as_ref().is_some_and(|i| i.status == "open");
            if !open {
                return vec![Action::Close(key)];
            }
            let mut out = vec![Action::Create(key)];
            if let Some(m) = e.monitor.as_ref().filter(|m| m.id > 0) {
                out.push(Action::Close(format!("pharos-monitor-{}-flapping", m.id)));
            }
            out
        }
        _ => vec![Action::Create(key)],
    }
}

/// The priority of a created alert: configured, else from the event.
pub fn priority(config: &Config, n: &Notification) -> Priority {
    if let Some(p) = config.priority {
        return p;
    }
    if n.event.is_resolved() || n.test {
        return Priority::P5;
    }
    match n.event.severity() {
        "critical" => Priority::P1,
        "warning" => Priority::P3,
        _ => Priority::P5,
    }
}

/// The tags of a created alert: `pharos`, the status, the monitor's tags, the configured
/// ones (and `test` for a test alert); unique, at most 20 of at most 50 characters.
pub fn tags(config: &Config, n: &Notification) -> Vec<String> {
    let e = &n.event;
    let mut all = vec!["pharos".to_string()];
    all.extend(e.status.clone());
    if n.test {
        all.push("test".into());
    }
    if let Some(m) = &e.monitor {
        all.extend(m.tags.iter().cloned());
    }
    all.extend(config.tags.iter().cloned());
    let mut out: Vec<String> = Vec::new();
    for t in all {
        let t: String = t.trim().chars().take(MAX_TAG).collect();
        if !t.is_empty() && !out.contains(&t) && out.len() < MAX_TAGS {
            out.push(t);
        }
    }
    out
}

/// The alert's `details`: string values only.
pub fn details(n: &Notification) -> Value {
    let e = &n.event;
    let mut d = Map::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            d.insert(
                k.to_string(),
                Value::String(notify::truncate(&v, MAX_DETAIL)),
            );
        }
    };
    put("event", Some(e.kind.clone()));
    put("status", e.status.clone());
    put(
        "cause",
        e.cause
            .clone()
            .or_else(|| e.incident.as_ref().and_then(|i| i.cause.clone())),
    );
    put("since", e.since.clone());
    if let Some(m) = &e.monitor {
        put("monitor", Some(m.name.clone()));
        put("monitor_id", Some(m.id.to_string()));
        put("check", m.plugin.clone());
        put("monitor_url", m.url.clone());
    }
    if let Some(i) = e.incident.as_ref().filter(|i| i.id > 0) {
        put("incident_id", Some(i.id.to_string()));
        put("incident_url", i.url.clone());
    }
    put("dashboard_url", e.dashboard_url.clone());
    Value::Object(d)
}

/// The body of the alert created for `n`.
fn create_body(config: &Config, n: &Notification, alias: &str) -> Result<Value, DeliveryError> {
    let mut description = n.body.trim().to_string();
    let held = render::digest_lines(&n.event, 100);
    if !held.is_empty() && !description.contains(&held[0]) {
        description.push_str("\n\n");
        description.push_str(&held.join("\n"));
    }
    let mut body = json!({
        "message": notify::truncate(&n.display_title(), MAX_MESSAGE),
        "alias": alias,
        "description": notify::truncate(&description, MAX_DESCRIPTION),
    });
    if !config.responders.is_empty() {
        let responders = config
            .responders
            .iter()
            .enumerate()
            .map(|(i, r)| {
                r.to_json().map_err(|why| {
                    DeliveryError::Permanent(format!("invalid config at `responders[{i}]`: {why}"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        body["responders"] = json!(responders);
    }
    body["tags"] = json!(tags(config, n));
    body["details"] = details(n);
    if let Some(m) = n.event.monitor.as_ref().filter(|m| !m.name.is_empty()) {
        body["entity"] = json!(m.name);
    }
    body["source"] = json!(SOURCE);
    body["priority"] = json!(priority(config, n).as_str());
    body["user"] = json!(SOURCE);
    Ok(body)
}

/// The API key, trimmed, when it looks like one.
fn api_key(config: &Config) -> Result<&str, DeliveryError> {
    let key = config.api_key.trim();
    let shape_ok = key.len() == 36
        && key.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        });
    if shape_ok {
        Ok(key)
    } else {
        Err(DeliveryError::Permanent(
            "invalid config at `api_key`: must be the API integration's key (a UUID)".into(),
        ))
    }
}

/// The requests to send for `n`, in order, with what each does (pure: no I/O).
pub fn build_requests(
    config: &Config,
    n: &Notification,
) -> Result<Vec<(Action, Request)>, DeliveryError> {
    let api = notify::base_url("api_url", &config.api_url)?;
    let auth = format!("GenieKey {}", api_key(config)?);
    if let Some(i) = config
        .tags
        .iter()
        .position(|t| t.trim().is_empty() || t.chars().count() > MAX_TAG)
    {
        return Err(DeliveryError::Permanent(format!(
            "invalid config at `tags[{i}]`: use 1-{MAX_TAG} characters"
        )));
    }
    let mut out = Vec::new();
    for action in plan(n) {
        let alert = |a: &str, op: &str| {
            notify::join_url(
                &api,
                &format!(
                    "/v2/alerts/{}/{op}?identifierType=alias",
                    notify::percent_encode(a, false)
                ),
            )
        };
        let req = match &action {
            Action::Create(a) => notify::post_json(
                &notify::join_url(&api, "/v2/alerts"),
                &create_body(config, n, a)?,
                n,
            ),
            Action::SetPriority(a) => {
                let body = json!({"priority": priority(config, n).as_str()});
                let mut req = notify::post_json(&alert(a, "priority"), &body, n);
                req.method = "PUT".into();
                req
            }
            Action::Acknowledge(a) => notify::post_json(
                &alert(a, "acknowledge"),
                &json!({"user": SOURCE, "source": SOURCE, "note": n.body.trim()}),
                n,
            ),
            Action::Close(a) => notify::post_json(
                &alert(a, "close"),
                &json!({"user": SOURCE, "source": SOURCE, "note": notify::truncate(n.body.trim(), 25_000)}),
                n,
            ),
        };
        out.push((action, req.header("Authorization", &auth)));
    }
    Ok(out)
}

/// The `opsgenie` notifier.
pub struct Opsgenie;

impl Notify for Opsgenie {
    type Config = Config;

    fn info() -> Info {
        Info {
            name: "opsgenie",
            version: env!("CARGO_PKG_VERSION"),
            description: "Creates and closes Opsgenie alerts, one per incident",
            config_schema: SCHEMA,
            capabilities: &["http"],
        }
    }

    fn deliver(config: Config, n: &Notification) -> Result<Receipt, DeliveryError> {
        let secrets = [config.api_key.trim().to_string()];
        let mut message = String::new();
        let mut first_id: Option<String> = None;
        for (action, req) in build_requests(&config, n)? {
            let req = req.clone().timeout_ms(n.budget_ms(req.timeout_ms));
            let resp = notify::send(&req).map_err(|e| e.redact(&secrets))?;
            if message.is_empty() {
                message = format!("HTTP {}: ", resp.status);
                first_id = resp
                    .json::<Value>()
                    .ok()
                    .and_then(|v| v["requestId"].as_str().map(str::to_string))
                    .filter(|id| !id.is_empty());
            } else {
                message.push_str(", ");
            }
            message.push_str(&action.describe());
        }
        let receipt = Receipt::new(message);
        Ok(match first_id {
            Some(id) => receipt.with_external_id(id),
            None => receipt,
        })
    }
}

pharos_sdk::export_notify!(Opsgenie);

#[cfg(test)]
mod tests;
