//! The `webhook` notifier: sends the event document verbatim as JSON to any HTTP endpoint,
//! optionally signed with HMAC-SHA256 so the receiver can check it came from Pharos.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use pharos_sdk::Info;
use pharos_sdk::http::{self, Request};
use pharos_sdk::notify::{self, DeliveryError, Notification, Notify, Receipt, render};
use serde::Deserialize;
use sha2::Sha256;

/// The JSON Schema of the config (`schema.json` beside `Cargo.toml`).
pub const SCHEMA: &str = include_str!("../schema.json");

/// `User-Agent` of every request.
pub const USER_AGENT: &str = "Pharos-Webhook/1";

/// Headers Pharos sets itself; a config may not override them.
const RESERVED: &[&str] = &[
    "content-type",
    "content-length",
    "host",
    "user-agent",
    "idempotency-key",
    "transfer-encoding",
    "connection",
];

/// HTTP method of the request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum Method {
    /// `POST` (default).
    #[default]
    #[serde(rename = "POST")]
    Post,
    /// `PUT`.
    #[serde(rename = "PUT")]
    Put,
}

impl Method {
    /// The method name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Post => "POST",
            Method::Put => "PUT",
        }
    }
}

/// The channel config (see `schema.json`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Endpoint receiving the event.
    pub url: String,
    /// `POST` or `PUT`.
    #[serde(default)]
    pub method: Method,
    /// Extra headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// HMAC signing secret.
    #[serde(default)]
    pub secret: Option<String>,
    /// Bearer token for `Authorization`.
    #[serde(default)]
    pub bearer_token: Option<String>,
    /// Whether TLS certificates are verified.
    #[serde(default = "yes")]
    pub verify_tls: bool,
}

fn yes() -> bool {
    true
}

/// `sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`, the `X-Pharos-Signature` value.
pub fn signature(secret: &str, timestamp: u64, body: &str) -> String {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let digest = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(7 + digest.len() * 2);
    hex.push_str("sha256=");
    for b in digest {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

/// The request for one notification, signed with `timestamp` (Unix seconds) when a secret is
/// configured. Pure: no I/O, no clock.
pub fn build_request(
    config: &Config,
    n: &Notification,
    timestamp: u64,
) -> Result<Request, DeliveryError> {
    let url = render::endpoint_url("url", &config.url)?;
    for name in config.headers.keys() {
        let lower = name.to_ascii_lowercase();
        let auth_clash = lower == "authorization" && config.bearer_token.is_some();
        if RESERVED.contains(&lower.as_str()) || lower.starts_with("x-pharos-") || auth_clash {
            return Err(DeliveryError::Permanent(format!(
                "invalid config at `headers.{name}`: this header is set by Pharos"
            )));
        }
    }
    let body = n.event_json.as_str();
    let kind = if n.event.kind.is_empty() {
        "unknown"
    } else {
        n.event.kind.as_str()
    };
    let mut req = Request::new(config.method.as_str(), &url)
        .header("Content-Type", "application/json")
        .header("User-Agent", USER_AGENT)
        .header("X-Pharos-Event", kind)
        .header("Idempotency-Key", &n.idempotency_key);
    if let Some(secret) = config.secret.as_deref().filter(|s| !s.is_empty()) {
        req = req
            .header("X-Pharos-Timestamp", &timestamp.to_string())
            .header("X-Pharos-Signature", &signature(secret, timestamp, body));
    }
    if let Some(token) = config.bearer_token.as_deref().filter(|s| !s.is_empty()) {
        req = req.bearer_auth(token);
    }
    for (name, value) in &config.headers {
        req = req.header(name, value);
    }
    Ok(req
        .body(body)
        .follow_redirects(0)
        .verify_tls(config.verify_tls)
        .max_body_bytes(64 * 1024)
        .timeout_ms(n.budget_ms(http::DEFAULT_TIMEOUT_MS)))
}

/// Seconds since the Unix epoch (0 if the clock is before it).
fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The `webhook` notifier.
pub struct Webhook;

impl Notify for Webhook {
    type Config = Config;

    fn info() -> Info {
        Info {
            name: "webhook",
            version: env!("CARGO_PKG_VERSION"),
            description: "Sends the event as JSON to any HTTP endpoint, optionally HMAC-signed",
            config_schema: SCHEMA,
            capabilities: &["http"],
        }
    }

    fn deliver(config: Config, n: &Notification) -> Result<Receipt, DeliveryError> {
        let req = build_request(&config, n, now_unix())?;
        let resp = notify::send(&req).map_err(|e| e.redact(&render::url_secrets(&config.url)))?;
        Ok(Receipt::new(format!("HTTP {}", resp.status)))
    }
}

pharos_sdk::export_notify!(Webhook);

#[cfg(test)]
mod tests;
