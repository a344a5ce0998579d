//! The `ntfy` notifier: publishes an alert to an ntfy topic as JSON (`POST {server}/`).
//!
//! - Priority follows the severity (critical 5 "urgent", warning 4, info 3) unless configured.
//! - The first tag is an emoji for the severity (`rotating_light`, `warning`,
//!   `white_check_mark` for a recovery, `information_source` else), then the configured tags.
//! - Tapping the notification opens the incident (or monitor, or dashboard) page, and a
//!   "view" action button does the same.
//! - ntfy does not deduplicate; the idempotency key travels in `X-Pharos-Idempotency-Key` for
//!   proxies that do. The receipt's external id is the message `id` ntfy returns.

use pharos_sdk::http::Request;
use pharos_sdk::notify::{self, DeliveryError, Notification, Notify, Receipt, render};
use pharos_sdk::{Info, serde_json};
use serde::Deserialize;
use serde_json::{Value, json};

/// The JSON Schema of the config (`schema.json` beside `Cargo.toml`).
pub const SCHEMA: &str = include_str!("../schema.json");
/// The public ntfy server.
pub const DEFAULT_SERVER: &str = "https://ntfy.sh";
/// Largest message ntfy shows as text (longer ones become attachments).
pub const MAX_MESSAGE_BYTES: usize = 4096;
/// The header carrying the notification's idempotency key.
pub const IDEMPOTENCY_HEADER: &str = "X-Pharos-Idempotency-Key";

/// The `ntfy` plugin's config; see `schema.json` for each field.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Base URL of the server.
    #[serde(default = "default_server")]
    pub server: String,
    /// Topic name.
    pub topic: String,
    /// Access token (secret).
    #[serde(default)]
    pub token: Option<String>,
    /// Basic-auth user.
    #[serde(default)]
    pub username: Option<String>,
    /// Basic-auth password (secret).
    #[serde(default)]
    pub password: Option<String>,
    /// Fixed priority 1-5.
    #[serde(default)]
    pub priority: Option<u8>,
    /// Extra tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Verify the server's certificate.
    #[serde(default = "yes")]
    pub verify_tls: bool,
}

fn default_server() -> String {
    DEFAULT_SERVER.to_string()
}

fn yes() -> bool {
    true
}

/// A config error naming the field.
fn invalid(field: &str, why: &str) -> DeliveryError {
    DeliveryError::Permanent(format!("invalid config at `{field}`: {why}"))
}

/// True for a valid topic name: 1-64 of `A-Z a-z 0-9 - _`.
fn valid_topic(topic: &str) -> bool {
    (1..=64).contains(&topic.len())
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The priority of the message: configured, else by severity.
pub fn priority(config: &Config, n: &Notification) -> u8 {
    if let Some(p) = config.priority {
        return p;
    }
    if n.event.is_resolved() {
        return 3;
    }
    match n.event.severity() {
        "critical" => 5,
        "warning" => 4,
        _ => 3,
    }
}

/// The emoji tag for the event.
pub fn severity_tag(n: &Notification) -> &'static str {
    if n.event.is_resolved() {
        return "white_check_mark";
    }
    match n.event.severity() {
        "critical" => "rotating_light",
        "warning" => "warning",
        _ => "information_source",
    }
}

/// `s` cut to at most `max` bytes on a character boundary, ending with `…` when cut.
fn fit_bytes(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The request publishing `n` (pure: no I/O). Config values beyond the schema's reach are
/// checked here and reported as permanent errors.
pub fn build_request(config: &Config, n: &Notification) -> Result<Request, DeliveryError> {
    let server = notify::base_url("server", &config.server)?;
    let topic = config.topic.trim();
    if !valid_topic(topic) {
        return Err(invalid("topic", "use 1-64 letters, digits, `-` or `_`"));
    }
    if let Some(p) = config.priority.filter(|p| !(1..=5).contains(p)) {
        return Err(invalid("priority", &format!("{p} is not between 1 and 5")));
    }
    let auth = match (&config.token, &config.username, &config.password) {
        (Some(_), Some(_), _) => {
            return Err(invalid(
                "token",
                "set either a token or username and password",
            ));
        }
        (Some(token), None, _) => Some(format!("Bearer {}", token.trim())),
        (None, Some(user), Some(pass)) => Some(format!(
            "Basic {}",
            pharos_sdk::http::base64(format!("{user}:{pass}").as_bytes())
        )),
        (None, Some(_), None) => return Err(invalid("password", "required with `username`")),
        (None, None, Some(_)) => return Err(invalid("username", "required with `password`")),
        (None, None, None) => None,
    };

    let mut tags = vec![severity_tag(n).to_string()];
    tags.extend(config.tags.iter().map(|t| t.trim().to_string()));
    let mut body = json!({
        "topic": topic,
        "title": n.display_title(),
        "message": fit_bytes(n.body.trim(), MAX_MESSAGE_BYTES),
        "priority": priority(config, n),
        "tags": tags,
    });
    if let Some(link) = n.event.link() {
        body["click"] = json!(link);
        body["actions"] = json!([{
            "action": "view",
            "label": render::link_label(&n.event),
            "url": link,
            "clear": true,
        }]);
    }
    let mut req = notify::post_json(&notify::join_url(&server, "/"), &body, n)
        .verify_tls(config.verify_tls)
        .header(IDEMPOTENCY_HEADER, &n.idempotency_key);
    if let Some(auth) = auth {
        req = req.header("Authorization", &auth);
    }
    Ok(req)
}

/// The secrets of `config`, removed from error messages.
fn secrets(config: &Config) -> Vec<String> {
    [&config.token, &config.password]
        .into_iter()
        .flatten()
        .cloned()
        .collect()
}

/// The `ntfy` notifier.
pub struct Ntfy;

impl Notify for Ntfy {
    type Config = Config;

    fn info() -> Info {
        Info {
            name: "ntfy",
            version: env!("CARGO_PKG_VERSION"),
            description: "Publishes alerts to an ntfy topic (ntfy.sh or self-hosted)",
            config_schema: SCHEMA,
            capabilities: &["http"],
        }
    }

    fn deliver(config: Config, n: &Notification) -> Result<Receipt, DeliveryError> {
        let req = build_request(&config, n)?;
        let resp = notify::send(&req).map_err(|e| e.redact(&secrets(&config)))?;
        let receipt = Receipt::new(format!("HTTP {}", resp.status));
        let id = resp.json::<Value>().ok().and_then(|v| match &v["id"] {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            _ => None,
        });
        Ok(match id {
            Some(id) => receipt.with_external_id(id),
            None => receipt,
        })
    }
}

pharos_sdk::export_notify!(Ntfy);

#[cfg(test)]
mod tests;
