//! The `google-chat` notifier: a card posted to a Google Chat space through an incoming
//! webhook, threaded per incident (`thread.threadKey` = dedup key) and deduplicated across
//! retries (`requestId` = idempotency key).

use pharos_sdk::Info;
use pharos_sdk::http::Request;
use pharos_sdk::notify::{self, DeliveryError, Notification, Notify, Receipt, render};
use serde::Deserialize;
use serde_json::{Value, json};

/// The JSON Schema of the config (`schema.json` beside `Cargo.toml`).
pub const SCHEMA: &str = include_str!("../schema.json");

/// Longest body text sent, in characters (a message must stay under 32,000 bytes).
const MAX_TEXT: usize = 4000;
/// Longest fact value sent, in characters.
const MAX_FACT: usize = 500;
/// Digest lines listed before `… and N more`.
const MAX_DIGEST_LINES: usize = 20;

/// The channel config (see `schema.json`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Incoming webhook URL (a secret).
    pub webhook_url: String,
    /// One thread per incident.
    #[serde(default = "yes")]
    pub thread: bool,
}

fn yes() -> bool {
    true
}

/// `s` with `&`, `<` and `>` escaped for Google Chat's formatted card text.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Card text: escaped, newlines as `<br>`.
fn card_text(s: &str) -> String {
    escape(s).replace('\n', "<br>")
}

/// The card message Google Chat receives.
pub fn payload(config: &Config, n: &Notification) -> Value {
    let ev = &n.event;
    let headline = n.display_title();
    let label = match ev.status.as_deref().filter(|s| !s.is_empty()) {
        Some(status) => status.to_ascii_uppercase(),
        None => render::kind_label(&ev.kind).to_string(),
    };
    let mut text = format!(
        "<font color=\"{}\"><b>{}</b></font>  {}",
        ev.color_hex(),
        escape(&label),
        card_text(&notify::truncate(&n.body, MAX_TEXT))
    );
    for line in render::digest_lines(ev, MAX_DIGEST_LINES) {
        text.push_str("<br>• ");
        text.push_str(&escape(&line));
    }
    let mut sections = vec![json!({"widgets": [{"textParagraph": {"text": text}}]})];
    let facts: Vec<Value> = render::facts(ev)
        .into_iter()
        .map(|(name, value)| {
            json!({"decoratedText": {"topLabel": name, "text": card_text(&notify::truncate(&value, MAX_FACT)), "wrapText": true}})
        })
        .collect();
    if !facts.is_empty() {
        sections.push(json!({"header": "Details", "widgets": facts}));
    }
    if let Some(link) = ev.link() {
        sections.push(json!({"widgets": [{"buttonList": {"buttons": [
            {"text": render::link_label(ev), "onClick": {"openLink": {"url": link}}}
        ]}}]}));
    }
    let mut msg = json!({
        "fallbackText": headline,
        "cardsV2": [{
            "cardId": "pharos-alert",
            "card": {
                "header": {"title": headline, "subtitle": format!("Pharos · {}", render::kind_label(&ev.kind))},
                "sections": sections,
            }
        }]
    });
    if config.thread {
        msg["thread"] = json!({"threadKey": ev.dedup_key(n)});
    }
    msg
}

/// The webhook URL with `messageReplyOption` (when threading) and `requestId` added.
pub fn create_url(config: &Config, n: &Notification) -> Result<String, DeliveryError> {
    let mut url = render::endpoint_url("webhook_url", &config.webhook_url)?;
    url.push(if url.contains('?') { '&' } else { '?' });
    if config.thread {
        url.push_str("messageReplyOption=REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD&");
    }
    url.push_str("requestId=");
    url.push_str(&notify::percent_encode(&n.idempotency_key, false));
    Ok(url)
}

/// The request for one notification. Pure: no I/O.
pub fn build_request(config: &Config, n: &Notification) -> Result<Request, DeliveryError> {
    Ok(notify::post_json(
        &create_url(config, n)?,
        &payload(config, n),
        n,
    ))
}

/// The `google-chat` notifier.
pub struct GoogleChat;

impl Notify for GoogleChat {
    type Config = Config;

    fn info() -> Info {
        Info {
            name: "google-chat",
            version: env!("CARGO_PKG_VERSION"),
            description: "Posts a card to a Google Chat space, one thread per incident",
            config_schema: SCHEMA,
            capabilities: &["http"],
        }
    }

    fn deliver(config: Config, n: &Notification) -> Result<Receipt, DeliveryError> {
        let req = build_request(&config, n)?;
        let resp =
            notify::send(&req).map_err(|e| e.redact(&render::url_secrets(&config.webhook_url)))?;
        let receipt = Receipt::new(format!("HTTP {}", resp.status));
        let name = resp
            .json::<Value>()
            .ok()
            .and_then(|v| v["name"].as_str().map(str::to_string));
        Ok(match name {
            Some(name) => receipt.with_external_id(name),
            None => receipt,
        })
    }
}

pharos_sdk::export_notify!(GoogleChat);

#[cfg(test)]
mod tests;
