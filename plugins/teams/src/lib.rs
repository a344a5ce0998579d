//! The `teams` notifier: an Adaptive Card posted to Microsoft Teams through a Workflows
//! (Power Automate) webhook, coloured by severity, with the event's facts and a link button.

use pharos_sdk::Info;
use pharos_sdk::http::Request;
use pharos_sdk::notify::{self, DeliveryError, Notification, Notify, Receipt, render};
use serde::Deserialize;
use serde_json::{Value, json};

/// The JSON Schema of the config (`schema.json` beside `Cargo.toml`).
pub const SCHEMA: &str = include_str!("../schema.json");

/// Longest body text sent, in characters (a Teams message must stay under 28 KB).
const MAX_TEXT: usize = 4000;
/// Longest fact value sent, in characters.
const MAX_FACT: usize = 500;
/// Digest lines listed before `… and N more`.
const MAX_DIGEST_LINES: usize = 20;

/// The channel config (see `schema.json`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The Workflows trigger URL (a secret).
    pub webhook_url: String,
    /// Full-width card.
    #[serde(default = "yes")]
    pub full_width: bool,
}

fn yes() -> bool {
    true
}

/// The Adaptive Card container style for the event: `good` for recoveries, `attention` for
/// critical, `warning` for warning, `emphasis` otherwise.
fn style(n: &Notification) -> &'static str {
    let ev = &n.event;
    if ev.is_resolved() || ev.kind == "monitor.flapping_ended" {
        return "good";
    }
    match ev.severity() {
        "critical" if !n.test => "attention",
        "warning" if !n.test => "warning",
        _ => "emphasis",
    }
}

/// The Adaptive Card.
pub fn card(config: &Config, n: &Notification) -> Value {
    let ev = &n.event;
    let mut body = vec![
        json!({
            "type": "Container",
            "style": style(n),
            "bleed": true,
            "items": [
                {"type": "TextBlock", "text": n.display_title(), "weight": "Bolder", "size": "Large", "wrap": true},
                {"type": "TextBlock", "text": format!("Pharos · {}", render::kind_label(&ev.kind)), "isSubtle": true, "spacing": "None", "wrap": true}
            ]
        }),
        json!({"type": "TextBlock", "text": notify::truncate(&n.body, MAX_TEXT), "wrap": true}),
    ];
    let digest = render::digest_lines(ev, MAX_DIGEST_LINES);
    if !digest.is_empty() {
        let list: Vec<String> = digest.iter().map(|l| format!("- {l}")).collect();
        body.push(json!({"type": "TextBlock", "text": list.join("\n"), "wrap": true}));
    }
    let facts: Vec<Value> = render::facts(ev)
        .into_iter()
        .map(|(title, value)| json!({"title": title, "value": notify::truncate(&value, MAX_FACT)}))
        .collect();
    if !facts.is_empty() {
        body.push(json!({"type": "FactSet", "facts": facts}));
    }
    let mut card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    });
    if config.full_width {
        card["msteams"] = json!({"width": "Full"});
    }
    if let Some(link) = ev.link() {
        card["actions"] =
            json!([{"type": "Action.OpenUrl", "title": render::link_label(ev), "url": link}]);
    }
    card
}

/// The message body the webhook receives: a message with the card as its only attachment.
pub fn payload(config: &Config, n: &Notification) -> Value {
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card(config, n),
        }]
    })
}

/// The request for one notification. Pure: no I/O.
pub fn build_request(config: &Config, n: &Notification) -> Result<Request, DeliveryError> {
    let url = render::endpoint_url("webhook_url", &config.webhook_url)?;
    Ok(notify::post_json(&url, &payload(config, n), n))
}

/// Legacy Office 365 connector webhooks answer 200 with an error text when Teams refused the
/// message; Workflows answer 202 with an empty body.
fn check_body(status: u16, body: &str) -> Result<(), DeliveryError> {
    let text = body.trim();
    if !text.contains("delivery failed") {
        return Ok(());
    }
    let reason = format!("HTTP {status}: {}", notify::truncate(text, 200));
    if text.contains("429") || text.contains("HTTP error 5") {
        Err(DeliveryError::Transient(reason))
    } else {
        Err(DeliveryError::Permanent(reason))
    }
}

/// The `teams` notifier.
pub struct Teams;

impl Notify for Teams {
    type Config = Config;

    fn info() -> Info {
        Info {
            name: "teams",
            version: env!("CARGO_PKG_VERSION"),
            description: "Posts an Adaptive Card to Microsoft Teams through a Workflows webhook",
            config_schema: SCHEMA,
            capabilities: &["http"],
        }
    }

    fn deliver(config: Config, n: &Notification) -> Result<Receipt, DeliveryError> {
        let secrets = render::url_secrets(&config.webhook_url);
        let req = build_request(&config, n)?;
        let resp = notify::send(&req).map_err(|e| e.redact(&secrets))?;
        check_body(resp.status, &resp.text())?;
        Ok(Receipt::new(format!("HTTP {}", resp.status)))
    }
}

pharos_sdk::export_notify!(Teams);

#[cfg(test)]
mod tests;
