//! The `gotify` notifier: creates a message for an application of a Gotify server
//! (`POST {server}/message` with the app token in `X-Gotify-Key`).
//!
//! - Priority follows the severity (critical 8, warning 5, info and recoveries 4) unless
//!   configured; the Android app plays a sound from 4 and pops up from 8.
//! - The message is plain text (`client::display`), and tapping the notification opens the
//!   incident, monitor or dashboard page (`client::notification.click`).
//! - Gotify does not deduplicate; the idempotency key travels in `X-Pharos-Idempotency-Key`.
//!   The receipt's external id is the message `id`.

use pharos_sdk::http::Request;
use pharos_sdk::notify::{self, DeliveryError, Notification, Notify, Receipt};
use pharos_sdk::{Info, serde_json};
use serde::Deserialize;
use serde_json::{Value, json};

/// The JSON Schema of the config (`schema.json` beside `Cargo.toml`).
pub const SCHEMA: &str = include_str!("../schema.json");
/// The header carrying the notification's idempotency key.
pub const IDEMPOTENCY_HEADER: &str = "X-Pharos-Idempotency-Key";
/// Longest message sent (Gotify stores messages as text; keep notifications readable).
pub const MAX_MESSAGE_CHARS: usize = 4000;

/// The `gotify` plugin's config; see `schema.json` for each field.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Base URL of the server.
    pub server: String,
    /// Application token (secret).
    pub token: String,
    /// Fixed priority 0-10.
    #[serde(default)]
    pub priority: Option<u8>,
    /// Verify the server's certificate.
    #[serde(default = "yes")]
    pub verify_tls: bool,
}

fn yes() -> bool {
    true
}

/// A config error naming the field.
fn invalid(field: &str, why: &str) -> DeliveryError {
    DeliveryError::Permanent(format!("invalid config at `{field}`: {why}"))
}

/// The priority of the message: configured, else by severity.
pub fn priority(config: &Config, n: &Notification) -> u8 {
    if let Some(p) = config.priority {
        return p;
    }
    if n.event.is_resolved() {
        return 4;
    }
    match n.event.severity() {
        "critical" => 8,
        "warning" => 5,
        _ => 4,
    }
}

/// The request creating the message for `n` (pure: no I/O).
pub fn build_request(config: &Config, n: &Notification) -> Result<Request, DeliveryError> {
    let server = notify::base_url("server", &config.server)?;
    let token = config.token.trim();
    if token.is_empty() {
        return Err(invalid("token", "must not be empty"));
    }
    if let Some(p) = config.priority.filter(|p| *p > 10) {
        return Err(invalid("priority", &format!("{p} is not between 0 and 10")));
    }
    let mut extras = json!({"client::display": {"contentType": "text/plain"}});
    if let Some(link) = n.event.link() {
        extras["client::notification"] = json!({"click": {"url": link}});
    }
    let body = json!({
        "title": n.display_title(),
        "message": notify::truncate(n.body.trim(), MAX_MESSAGE_CHARS),
        "priority": priority(config, n),
        "extras": extras,
    });
    Ok(
        notify::post_json(&notify::join_url(&server, "/message"), &body, n)
            .verify_tls(config.verify_tls)
            .header("X-Gotify-Key", token)
            .header(IDEMPOTENCY_HEADER, &n.idempotency_key),
    )
}

/// The `gotify` notifier.
pub struct Gotify;

impl Notify for Gotify {
    type Config = Config;

    fn info() -> Info {
        Info {
            name: "gotify",
            version: env!("CARGO_PKG_VERSION"),
            description: "Pushes alerts to a self-hosted Gotify server",
            config_schema: SCHEMA,
            capabilities: &["http"],
        }
    }

    fn deliver(config: Config, n: &Notification) -> Result<Receipt, DeliveryError> {
        let req = build_request(&config, n)?;
        let resp = notify::send(&req).map_err(|e| e.redact(std::slice::from_ref(&config.token)))?;
        let receipt = Receipt::new(format!("HTTP {}", resp.status));
        let id = resp.json::<Value>().ok().and_then(|v| match &v["id"] {
            Value::Number(id) => Some(id.to_string()),
            Value::String(id) if !id.is_empty() => Some(id.clone()),
            _ => None,
        });
        Ok(match id {
            Some(id) => receipt.with_external_id(id),
            None => receipt,
        })
    }
}

pharos_sdk::export_notify!(Gotify);

#[cfg(test)]
mod tests;
