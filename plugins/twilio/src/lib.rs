//! The `twilio` notifier: sends an SMS to each recipient through the Twilio Messages API
//! (`POST {api_url}/2010-04-01/Accounts/{sid}/Messages.json`, form-encoded, basic auth).
//!
//! - The text is the title, a line break and the body, cut to `max_length` characters.
//! - Every recipient is tried, even after one failed. All delivered → the receipt's external
//!   id is the message SIDs joined with `,`. Any failed → the delivery fails with the worst
//!   failure: transient if any failure is transient (then a retry sends to *every* recipient
//!   again, including those already reached), else permanent.
//! - Twilio does not deduplicate message creation.

use pharos_sdk::http::{self, Request, Response};
use pharos_sdk::notify::{self, DeliveryError, Notification, Notify, Receipt};
use pharos_sdk::{Info, serde_json};
use serde::Deserialize;
use serde_json::Value;

/// The JSON Schema of the config (`schema.json` beside `Cargo.toml`).
pub const SCHEMA: &str = include_str!("../schema.json");
/// The Twilio API.
pub const DEFAULT_API_URL: &str = "https://api.twilio.com";
/// Twilio's limit on a message body, in characters.
pub const MAX_BODY: u32 = 1600;

/// The `twilio` plugin's config; see `schema.json` for each field.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Account SID.
    pub account_sid: String,
    /// Auth token or API key secret (secret).
    pub auth_token: String,
    /// API key SID, when authenticating with an API key.
    #[serde(default)]
    pub api_key_sid: Option<String>,
    /// Sender number, Messaging Service SID or alphanumeric sender id.
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
    /// Longest text sent.
    #[serde(default = "default_max_length")]
    pub max_length: u32,
    /// Base URL of the API.
    #[serde(default = "default_api_url")]
    pub api_url: String,
}

fn default_max_length() -> u32 {
    MAX_BODY
}
fn default_api_url() -> String {
    DEFAULT_API_URL.to_string()
}

/// A config error naming the field.
fn invalid(field: &str, why: &str) -> DeliveryError {
    DeliveryError::Permanent(format!("invalid config at `{field}`: {why}"))
}

/// True for `prefix` followed by 32 hex digits.
fn sid(s: &str, prefix: &str) -> bool {
    s.strip_prefix(prefix)
        .is_some_and(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// True for `+` and 7-15 digits, the first not 0.
fn e164(s: &str) -> bool {
    s.strip_prefix('+').is_some_and(|d| {
        (7..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0')
    })
}

/// True for an alphanumeric sender id: 1-11 letters, digits and spaces, at least one letter.
fn alphanumeric_sender(s: &str) -> bool {
    (1..=11).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ')
        && s.bytes().any(|b| b.is_ascii_alphabetic())
}

/// The text sent: title, line break, body, cut to `max_length`.
pub fn sms_text(config: &Config, n: &Notification) -> String {
    let mut text = n.display_title();
    let body = n.body.trim();
    if !body.is_empty() {
        text.push('\n');
        text.push_str(body);
    }
    let max = usize::try_from(config.max_length.min(MAX_BODY)).unwrap_or(1600);
    notify::truncate(&text, max)
}

/// One request per recipient, with the recipient (pure: no I/O).
pub fn build_requests(
    config: &Config,
    n: &Notification,
) -> Result<Vec<(String, Request)>, DeliveryError> {
    let api = notify::base_url("api_url", &config.api_url)?;
    let account = config.account_sid.trim();
    if !sid(account, "AC") {
        return Err(invalid("account_sid", "must be `AC` and 32 hex digits"));
    }
    let user = match config.api_key_sid.as_deref().map(str::trim) {
        Some(k) if !sid(k, "SK") => {
            return Err(invalid("api_key_sid", "must be `SK` and 32 hex digits"));
        }
        Some(k) => k,
        None => account,
    };
    let token = config.auth_token.trim();
    if token.is_empty() {
        return Err(invalid("auth_token", "must not be empty"));
    }
    let from = config.from.trim();
    let from_field = if sid(from, "MG") {
        "MessagingServiceSid"
    } else if e164(from) || alphanumeric_sender(from) {
        "From"
    } else {
        return Err(invalid(
            "from",
            "use a phone number in international format, a Messaging Service SID or an alphanumeric sender id",
        ));
    };
    if config.to.is_empty() {
        return Err(invalid("to", "name at least one recipient"));
    }
    if let Some(i) = config.to.iter().position(|t| !e164(t.trim())) {
        return Err(invalid(
            &format!("to[{i}]"),
            "use the international format, e.g. +15558675310",
        ));
    }
    if !(70..=MAX_BODY).contains(&config.max_length) {
        return Err(invalid("max_length", "must be between 70 and 1600"));
    }
    let url = notify::join_url(
        &api,
        &format!(
            "/2010-04-01/Accounts/{}/Messages.json",
            notify::percent_encode(account, false)
        ),
    );
    let text = sms_text(config, n);
    let mut out: Vec<(String, Request)> = Vec::new();
    for to in config.to.iter().map(|t| t.trim()) {
        if out.iter().any(|(r, _)| r == to) {
            continue;
        }
        let req = notify::post_form(&url, &[("To", to), (from_field, from), ("Body", &text)], n)
            .basic_auth(user, token);
        out.push((to.to_string(), req));
    }
    Ok(out)
}

/// Twilio's own words for a failed request: `Twilio error 21211: Invalid 'To' Phone Number`.
fn twilio_error(resp: &Response) -> Option<String> {
    let v: Value = resp.json().ok()?;
    let message = v["message"].as_str()?;
    Some(match v["code"].as_u64() {
        Some(code) => format!("HTTP {}: Twilio error {code}: {message}", resp.status),
        None => format!("HTTP {}: {message}", resp.status),
    })
}

/// Sends one message with the time left; the message SID on success.
fn send_one(req: &Request, n: &Notification) -> Result<String, DeliveryError> {
    let req = req.clone().timeout_ms(n.budget_ms(req.timeout_ms));
    let resp = http::send(&req)?;
    if let Err(err) = notify::check_response(&resp) {
        return Err(match (twilio_error(&resp), err) {
            (Some(m), DeliveryError::Transient(_)) => DeliveryError::Transient(m),
            (Some(m), DeliveryError::Permanent(_)) => DeliveryError::Permanent(m),
            (None, err) => err,
        });
    }
    Ok(resp
        .json::<Value>()
        .ok()
        .and_then(|v| v["sid"].as_str().map(str::to_string))
        .unwrap_or_default())
}

/// The outcome over all recipients: every SID, or the worst failure.
pub fn combine(
    results: Vec<(String, Result<String, DeliveryError>)>,
) -> Result<Receipt, DeliveryError> {
    let total = results.len();
    let mut sids = Vec::new();
    let mut reached = Vec::new();
    let mut failures = Vec::new();
    let mut transient = false;
    for (to, result) in results {
        match result {
            Ok(sid) => {
                reached.push(to);
                if !sid.is_empty() {
                    sids.push(sid);
                }
            }
            Err(e) => {
                transient |= e.is_transient();
                failures.push(format!("{to}: {}", e.reason()));
            }
        }
    }
    if failures.is_empty() {
        let receipt = Receipt::new(format!("sent to {total} recipient(s)"));
        return Ok(if sids.is_empty() {
            receipt
        } else {
            receipt.with_external_id(sids.join(","))
        });
    }
    let mut reason = format!(
        "{} of {total} recipient(s) failed: {}",
        failures.len(),
        failures.join("; ")
    );
    if !reached.is_empty() {
        reason.push_str(&format!(" (delivered to {})", reached.join(", ")));
    }
    Err(if transient {
        DeliveryError::Transient(reason)
    } else {
        DeliveryError::Permanent(reason)
    })
}

/// The `twilio` notifier.
pub struct Twilio;

impl Notify for Twilio {
    type Config = Config;

    fn info() -> Info {
        Info {
            name: "twilio",
            version: env!("CARGO_PKG_VERSION"),
            description: "Sends alerts as SMS through Twilio, one message per recipient",
            config_schema: SCHEMA,
            capabilities: &["http"],
        }
    }

    fn deliver(config: Config, n: &Notification) -> Result<Receipt, DeliveryError> {
        let secrets = [config.auth_token.trim().to_string()];
        let results = build_requests(&config, n)?
            .into_iter()
            .map(|(to, req)| (to, send_one(&req, n)))
            .collect();
        combine(results).map_err(|e| e.redact(&secrets))
    }
}

pharos_sdk::export_notify!(Twilio);

#[cfg(test)]
mod tests;
