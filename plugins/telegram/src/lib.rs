//! The `telegram` notifier: an HTML-formatted message sent with the Bot API's `sendMessage`
//! to a chat, group, channel or forum topic.

use pharos_sdk::Info;
use pharos_sdk::http::{self, Request, Response};
use pharos_sdk::notify::{self, DeliveryError, Notification, Notify, Receipt, render};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The JSON Schema of the config (`schema.json` beside `Cargo.toml`).
pub const SCHEMA: &str = include_str!("../schema.json");

/// The Bot API's address.
pub const DEFAULT_API_URL: &str = "https://api.telegram.org";

/// Longest body text sent, in characters (a message holds at most 4096 after parsing).
const MAX_TEXT: usize = 2500;
/// Longest fact value sent, in characters.
const MAX_FACT: usize = 200;
/// Digest lines listed before `… and N more`.
const MAX_DIGEST_LINES: usize = 15;

/// A chat id: numeric, or `@channelusername`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum ChatId {
    /// Numeric id (negative for groups and channels).
    Id(i64),
    /// `@channelusername`, or a numeric id written as a string.
    Name(String),
}

/// The channel config (see `schema.json`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Bot token (a secret).
    pub bot_token: String,
    /// Target chat.
    pub chat_id: ChatId,
    /// Forum topic.
    #[serde(default)]
    pub message_thread_id: Option<i64>,
    /// Send silently.
    #[serde(default)]
    pub disable_notification: bool,
    /// Base URL of the Bot API.
    #[serde(default = "default_api_url")]
    pub api_url: String,
}

fn default_api_url() -> String {
    DEFAULT_API_URL.to_string()
}

/// A marker standing in for colour, which Telegram messages lack.
fn marker(n: &Notification) -> &'static str {
    let ev = &n.event;
    if n.test || ev.is_test() {
        return "🧪";
    }
    if ev.is_resolved() || ev.kind == "monitor.flapping_ended" {
        return "✅";
    }
    match ev.severity() {
        "critical" => "🔴",
        "warning" => "🟠",
        _ => "ℹ️",
    }
}

/// The message text in Telegram's HTML parse mode, every piece of text escaped.
pub fn message_text(n: &Notification) -> String {
    let ev = &n.event;
    let esc = notify::escape_html;
    let mut lines = vec![
        format!("{} <b>{}</b>", marker(n), esc(&n.display_title())),
        esc(&notify::truncate(&n.body, MAX_TEXT)),
    ];
    let digest = render::digest_lines(ev, MAX_DIGEST_LINES);
    lines.extend(digest.iter().map(|l| format!("• {}", esc(l))));
    let facts = render::facts(ev);
    if !facts.is_empty() {
        lines.push(String::new());
        lines.extend(
            facts
                .iter()
                .map(|(k, v)| format!("<b>{k}:</b> {}", esc(&notify::truncate(v, MAX_FACT)))),
        );
    }
    lines.push(String::new());
    let footer = format!("<i>Pharos · {}</i>", render::kind_label(&ev.kind));
    match ev.link() {
        Some(link) => lines.push(format!(
            "<a href=\"{}\">{}</a> · {footer}",
            esc(link),
            render::link_label(ev)
        )),
        None => lines.push(footer),
    }
    lines.join("\n")
}

/// The `sendMessage` parameters.
pub fn payload(config: &Config, n: &Notification) -> Value {
    let mut msg = json!({
        "chat_id": config.chat_id,
        "text": message_text(n),
        "parse_mode": "HTML",
        "link_preview_options": {"is_disabled": true},
        "disable_notification": config.disable_notification,
    });
    if let Some(thread) = config.message_thread_id {
        msg["message_thread_id"] = json!(thread);
    }
    msg
}

/// The request for one notification. Pure: no I/O.
pub fn build_request(config: &Config, n: &Notification) -> Result<Request, DeliveryError> {
    let base = notify::base_url("api_url", &config.api_url)?;
    let token = config.bot_token.trim();
    if token.is_empty() || token.contains(['/', '?', '#', ' ']) {
        return Err(DeliveryError::Permanent(
            "invalid config at `bot_token`: not a bot token (123456789:AA…)".into(),
        ));
    }
    let url = notify::join_url(&base, &format!("/bot{token}/sendMessage"));
    Ok(notify::post_json(&url, &payload(config, n), n))
}

/// Classifies a Bot API answer: `{"ok": true, "result": {"message_id": …}}` is delivered;
/// 429 (`parameters.retry_after`) and 5xx are transient; the rest is permanent, with the
/// new chat id when a group became a supergroup (`parameters.migrate_to_chat_id`).
pub fn classify(resp: &Response) -> Result<Receipt, DeliveryError> {
    let Ok(body) = resp.json::<Value>() else {
        notify::check_response(resp)?;
        return Ok(Receipt::new(format!("HTTP {}", resp.status)));
    };
    if body["ok"] == Value::Bool(true) && resp.is_success() {
        let receipt = Receipt::new(format!("HTTP {}", resp.status));
        return Ok(match body["result"]["message_id"].as_i64() {
            Some(id) => receipt.with_external_id(id.to_string()),
            None => receipt,
        });
    }
    let code = body["error_code"]
        .as_u64()
        .and_then(|c| u16::try_from(c).ok())
        .unwrap_or(resp.status);
    let description = body["description"].as_str().unwrap_or("no description");
    let mut reason = format!("Telegram {code}: {}", notify::truncate(description, 200));
    let params = &body["parameters"];
    if let Some(after) = params["retry_after"].as_u64() {
        reason.push_str(&format!(" (retry after {after} s)"));
    }
    if let Some(chat) = params["migrate_to_chat_id"].as_i64() {
        reason.push_str(&format!(
            " (the group became a supergroup: set chat_id to {chat})"
        ));
    }
    if code == 429 || code >= 500 || resp.status == 429 || resp.status >= 500 {
        Err(DeliveryError::Transient(reason))
    } else {
        Err(DeliveryError::Permanent(reason))
    }
}

/// The `telegram` notifier.
pub struct Telegram;

impl Notify for Telegram {
    type Config = Config;

    fn info() -> Info {
        Info {
            name: "telegram",
            version: env!("CARGO_PKG_VERSION"),
            description: "Sends an HTML-formatted alert to a Telegram chat through a bot",
            config_schema: SCHEMA,
            capabilities: &["http"],
        }
    }

    fn deliver(config: Config, n: &Notification) -> Result<Receipt, DeliveryError> {
        let secrets = [config.bot_token.trim().to_string()];
        let req = build_request(&config, n)?;
        let resp = http::send(&req).map_err(|e| DeliveryError::from(e).redact(&secrets))?;
        classify(&resp).map_err(|e| e.redact(&secrets))
    }
}

pharos_sdk::export_notify!(Telegram);

#[cfg(test)]
mod tests;
