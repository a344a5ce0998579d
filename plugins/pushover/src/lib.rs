//! The `pushover` notifier: sends a message through the Pushover API
//! (`POST {api_url}/1/messages.json`, form-encoded).
//!
//! - Priority: critical alerts use the configured `priority` (default 1, high: bypasses quiet
//!   hours); everything else uses at most 0. With `priority: 2` (emergency) Pushover repeats
//!   the alert every `retry` seconds until someone acknowledges it or `expire` passes; the
//!   message is tagged with the incident's dedup key, and the incident's resolution first
//!   cancels the repeats (`POST /1/receipts/cancel_by_tag/{tag}.json`).
//! - The supplementary URL is the incident, monitor or dashboard page; the timestamp is the
//!   event's, so a retried delivery shows when it happened.
//! - Pushover does not deduplicate; the receipt's external id is the `request` id.

use pharos_sdk::http::{Request, Response};
use pharos_sdk::notify::{self, DeliveryError, Notification, Notify, Receipt, render};
use pharos_sdk::{Info, serde_json};
use serde::Deserialize;
use serde_json::Value;

/// The JSON Schema of the config (`schema.json` beside `Cargo.toml`).
pub const SCHEMA: &str = include_str!("../schema.json");
/// The Pushover API.
pub const DEFAULT_API_URL: &str = "https://api.pushover.net";
/// Pushover's limits, in characters.
const MAX_TITLE: usize = 250;
const MAX_MESSAGE: usize = 1024;
const MAX_URL: usize = 512;
const MAX_URL_TITLE: usize = 100;
/// Emergency priority.
pub const EMERGENCY: i8 = 2;

/// The `pushover` plugin's config; see `schema.json` for each field.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// User or group key (secret).
    pub user_key: String,
    /// Application token (secret).
    pub api_token: String,
    /// Device names, comma-separated.
    #[serde(default)]
    pub device: Option<String>,
    /// Notification sound.
    #[serde(default)]
    pub sound: Option<String>,
    /// Priority of critical alerts.
    #[serde(default = "default_priority")]
    pub priority: i8,
    /// Seconds between emergency repeats.
    #[serde(default = "default_retry")]
    pub retry: u32,
    /// Seconds after which emergency repeats stop.
    #[serde(default = "default_expire")]
    pub expire: u32,
    /// Base URL of the API.
    #[serde(default = "default_api_url")]
    pub api_url: String,
}

fn default_priority() -> i8 {
    1
}
fn default_retry() -> u32 {
    60
}
fn default_expire() -> u32 {
    3600
}
fn default_api_url() -> String {
    DEFAULT_API_URL.to_string()
}

/// A config error naming the field.
fn invalid(field: &str, why: &str) -> DeliveryError {
    DeliveryError::Permanent(format!("invalid config at `{field}`: {why}"))
}

/// The key `value` of field `field` trimmed, when it is 30 letters and digits.
fn key<'a>(field: &str, value: &'a str) -> Result<&'a str, DeliveryError> {
    let v = value.trim();
    if v.len() == 30 && v.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(v)
    } else {
        Err(invalid(field, "must be 30 letters and digits"))
    }
}

/// True for names of 1-`max` characters among `A-Z a-z 0-9 _ -`.
fn valid_name(s: &str, max: usize) -> bool {
    (1..=max).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Checks what the schema checks, for configs that did not go through it.
fn validate(config: &Config) -> Result<String, DeliveryError> {
    let api = notify::base_url("api_url", &config.api_url)?;
    key("user_key", &config.user_key)?;
    key("api_token", &config.api_token)?;
    if let Some(d) = &config.device
        && !d.split(',').all(|name| valid_name(name, 25))
    {
        return Err(invalid(
            "device",
            "use device names of 1-25 letters, digits, `_` or `-`, comma-separated",
        ));
    }
    if let Some(s) = &config.sound
        && !valid_name(s, 64)
    {
        return Err(invalid(
            "sound",
            "use a sound name of letters, digits, `_` or `-`",
        ));
    }
    if !(-2..=2).contains(&config.priority) {
        return Err(invalid("priority", "must be between -2 and 2"));
    }
    if !(30..=10_800).contains(&config.retry) {
        return Err(invalid("retry", "must be between 30 and 10800 seconds"));
    }
    if !(30..=10_800).contains(&config.expire) {
        return Err(invalid("expire", "must be between 30 and 10800 seconds"));
    }
    Ok(api)
}

/// The priority of the message for `n`.
pub fn priority(config: &Config, n: &Notification) -> i8 {
    if !n.event.is_resolved() && !n.test && n.event.severity() == "critical" {
        config.priority
    } else {
        config.priority.min(0)
    }
}

/// The tag an emergency message carries and its resolution cancels: the incident's dedup key.
fn emergency_tag(n: &Notification) -> Option<String> {
    n.event
        .incident
        .as_ref()
        .map(|_| n.event.dedup_key(n).to_string())
        .filter(|k| !k.is_empty())
}

/// The request sending `n` (pure: no I/O).
pub fn build_request(config: &Config, n: &Notification) -> Result<Request, DeliveryError> {
    let api = validate(config)?;
    let title = notify::truncate(&n.display_title(), MAX_TITLE);
    let body = n.body.trim();
    let message = notify::truncate(if body.is_empty() { &title } else { body }, MAX_MESSAGE);
    let prio = priority(config, n);
    let prio_text = prio.to_string();
    let (retry, expire) = (config.retry.to_string(), config.expire.to_string());
    let tag = emergency_tag(n);
    let url_title = notify::truncate(render::link_label(&n.event), MAX_URL_TITLE);
    let timestamp = n
        .event
        .occurred_at
        .as_deref()
        .and_then(render::rfc3339_to_unix)
        .map(|t| t.to_string());

    let mut fields: Vec<(&str, &str)> = vec![
        ("token", config.api_token.trim()),
        ("user", config.user_key.trim()),
        ("title", &title),
        ("message", &message),
        ("priority", &prio_text),
    ];
    if prio == EMERGENCY {
        fields.push(("retry", &retry));
        fields.push(("expire", &expire));
        if let Some(tag) = &tag {
            fields.push(("tags", tag));
        }
    }
    if let Some(link) = n.event.link().filter(|l| l.chars().count() <= MAX_URL) {
        fields.push(("url", link));
        fields.push(("url_title", &url_title));
    }
    if let Some(device) = &config.device {
        fields.push(("device", device));
    }
    if let Some(sound) = &config.sound {
        fields.push(("sound", sound));
    }
    if let Some(ts) = &timestamp {
        fields.push(("timestamp", ts));
    }
    Ok(notify::post_form(
        &notify::join_url(&api, "/1/messages.json"),
        &fields,
        n,
    ))
}

/// With emergency priority, the request cancelling the repeats of the incident that `n`
/// resolves (pure: no I/O).
pub fn build_cancel_request(
    config: &Config,
    n: &Notification,
) -> Result<Option<Request>, DeliveryError> {
    let api = validate(config)?;
    if config.priority != EMERGENCY || !n.event.is_resolved() {
        return Ok(None);
    }
    Ok(emergency_tag(n).map(|tag| {
        let path = format!(
            "/1/receipts/cancel_by_tag/{}.json",
            notify::percent_encode(&tag, false)
        );
        notify::post_form(
            &notify::join_url(&api, &path),
            &[("token", config.api_token.trim())],
            n,
        )
    }))
}

/// Pushover's verdict in a 2xx answer: `status` must be 1.
fn check_status(resp: &Response) -> Result<Value, DeliveryError> {
    let v: Value = resp.json().unwrap_or(Value::Null);
    if v["status"] == 1 {
        return Ok(v);
    }
    let errors = v["errors"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("; ")
        })
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| notify::truncate(resp.text().trim(), 200));
    Err(DeliveryError::Permanent(format!(
        "Pushover refused the request: {errors}"
    )))
}

/// Sends `req` with the time left and classifies the answer: the status and the JSON body.
fn send(req: &Request, n: &Notification) -> Result<(u16, Value), DeliveryError> {
    let req = req.clone().timeout_ms(n.budget_ms(req.timeout_ms));
    let resp = notify::send(&req)?;
    Ok((resp.status, check_status(&resp)?))
}

/// The `pushover` notifier.
pub struct Pushover;

impl Notify for Pushover {
    type Config = Config;

    fn info() -> Info {
        Info {
            name: "pushover",
            version: env!("CARGO_PKG_VERSION"),
            description: "Sends alerts to Pushover users and groups",
            config_schema: SCHEMA,
            capabilities: &["http"],
        }
    }

    fn deliver(config: Config, n: &Notification) -> Result<Receipt, DeliveryError> {
        let secrets = [config.user_key.clone(), config.api_token.clone()];
        let message = build_request(&config, n)?;
        if let Some(cancel) = build_cancel_request(&config, n)? {
            // Stop the emergency repeats first: a failure here is retried with the message.
            match send(&cancel, n) {
                Ok(_) => {}
                Err(e) if e.is_transient() => return Err(e.redact(&secrets)),
                Err(e) => pharos_sdk::warn!(
                    "cancelling emergency repeats failed: {}",
                    e.redact(&secrets)
                ),
            }
        }
        let (status, v) = send(&message, n).map_err(|e| e.redact(&secrets))?;
        let mut text = format!("HTTP {status}");
        if let Some(r) = v["receipt"].as_str() {
            text.push_str(&format!(", emergency receipt {r}"));
        }
        let receipt = Receipt::new(text);
        Ok(match v["request"].as_str().filter(|r| !r.is_empty()) {
            Some(id) => receipt.with_external_id(id),
            None => receipt,
        })
    }
}

pharos_sdk::export_notify!(Pushover);

#[cfg(test)]
mod tests;
