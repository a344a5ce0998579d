//! The `signal` notifier: sends a Signal message through a self-hosted signal-cli REST API
//! (`POST {api_url}/v2/send`, <https://github.com/bbernhard/signal-cli-rest-api>).
//!
//! - The message is the title, a line break, the body, and the incident/monitor/dashboard
//!   link when the body does not already carry it. One request reaches every recipient
//!   (numbers and groups).
//! - Signal does not deduplicate; the idempotency key travels in `X-Pharos-Idempotency-Key`.
//!   The receipt's external id is the message `timestamp` the API returns.

use pharos_sdk::http::Request;
use pharos_sdk::notify::{self, DeliveryError, Notification, Notify, Receipt};
use pharos_sdk::{Info, serde_json};
use serde::Deserialize;
use serde_json::{Value, json};

/// The JSON Schema of the config (`schema.json` beside `Cargo.toml`).
pub const SCHEMA: &str = include_str!("../schema.json");
/// The header carrying the notification's idempotency key.
pub const IDEMPOTENCY_HEADER: &str = "X-Pharos-Idempotency-Key";
/// Longest message sent (Signal's limit is much higher; alerts should be short).
pub const MAX_MESSAGE_CHARS: usize = 4000;

/// The `signal` plugin's config; see `schema.json` for each field.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Base URL of the REST API.
    pub api_url: String,
    /// The sender's number.
    pub number: String,
    /// Numbers and group ids.
    pub recipients: Vec<String>,
    /// Basic-auth user of a reverse proxy.
    #[serde(default)]
    pub username: Option<String>,
    /// Basic-auth password (secret).
    #[serde(default)]
    pub password: Option<String>,
    /// Verify the API's certificate.
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

/// True for `+` and 7-15 digits, the first not 0.
fn valid_number(s: &str) -> bool {
    s.strip_prefix('+').is_some_and(|d| {
        (7..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0')
    })
}

/// True for a phone number or a `group.` id.
fn valid_recipient(s: &str) -> bool {
    valid_number(s)
        || s.strip_prefix("group.").is_some_and(|id| {
            !id.is_empty()
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+/=_-".contains(&b))
        })
}

/// The text of the message: title, a line break, the body, and the link when the body lacks it.
pub fn message_text(n: &Notification) -> String {
    let mut text = n.display_title();
    let body = n.body.trim();
    if !body.is_empty() {
        text.push('\n');
        text.push_str(body);
    }
    if let Some(link) = n.event.link().filter(|l| !body.contains(l)) {
        text.push('\n');
        text.push_str(link);
    }
    notify::truncate(&text, MAX_MESSAGE_CHARS)
}

/// The request sending `n` (pure: no I/O).
pub fn build_request(config: &Config, n: &Notification) -> Result<Request, DeliveryError> {
    let api = notify::base_url("api_url", &config.api_url)?;
    if !valid_number(&config.number) {
        return Err(invalid(
            "number",
            "use the international format, e.g. +4915112345678",
        ));
    }
    if config.recipients.is_empty() {
        return Err(invalid("recipients", "name at least one recipient"));
    }
    if let Some(i) = config.recipients.iter().position(|r| !valid_recipient(r)) {
        return Err(invalid(
            &format!("recipients[{i}]"),
            "use a number in international format or a `group.` id",
        ));
    }
    let auth = match (&config.username, &config.password) {
        (Some(u), Some(p)) => Some((u, p)),
        (Some(_), None) => return Err(invalid("password", "required with `username`")),
        (None, Some(_)) => return Err(invalid("username", "required with `password`")),
        (None, None) => None,
    };
    let body = json!({
        "message": message_text(n),
        "number": config.number,
        "recipients": config.recipients,
    });
    let mut req = notify::post_json(&notify::join_url(&api, "/v2/send"), &body, n)
        .verify_tls(config.verify_tls)
        .header(IDEMPOTENCY_HEADER, &n.idempotency_key);
    if let Some((user, pass)) = auth {
        req = req.basic_auth(user, pass);
    }
    Ok(req)
}

/// The `signal` notifier.
pub struct Signal;

impl Notify for Signal {
    type Config = Config;

    fn info() -> Info {
        Info {
            name: "signal",
            version: env!("CARGO_PKG_VERSION"),
            description: "Sends alerts as Signal messages through a signal-cli REST API",
            config_schema: SCHEMA,
            capabilities: &["http"],
        }
    }

    fn deliver(config: Config, n: &Notification) -> Result<Receipt, DeliveryError> {
        let req = build_request(&config, n)?;
        let secrets: Vec<String> = config.password.iter().cloned().collect();
        let resp = notify::send(&req).map_err(|e| e.redact(&secrets))?;
        let receipt = Receipt::new(format!(
            "HTTP {} ({} recipient(s))",
            resp.status,
            config.recipients.len()
        ));
        let ts = resp
            .json::<Value>()
            .ok()
            .and_then(|v| match &v["timestamp"] {
                Value::String(s) if !s.is_empty() => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            });
        Ok(match ts {
            Some(ts) => receipt.with_external_id(ts),
            None => receipt,
        })
    }
}

pharos_sdk::export_notify!(Signal);

#[cfg(test)]
mod tests;
