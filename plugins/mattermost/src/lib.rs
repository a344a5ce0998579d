//! The `mattermost` notifier: a colour-coded message with the event's facts, posted through
//! a Mattermost incoming webhook.

use pharos_sdk::Info;
use pharos_sdk::http::Request;
use pharos_sdk::notify::{self, DeliveryError, Notification, Notify, Receipt, render};
use serde::Deserialize;
use serde_json::{Value, json};

/// The JSON Schema of the config (`schema.json` beside `Cargo.toml`).
pub const SCHEMA: &str = include_str!("../schema.json");

/// Longest attachment text sent, in characters.
const MAX_TEXT: usize = 4000;
/// Longest field value sent, in characters.
const MAX_FIELD: usize = 500;
/// Digest lines listed before `… and N more`.
const MAX_DIGEST_LINES: usize = 20;

/// The channel config (see `schema.json`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Incoming webhook URL (a secret).
    pub webhook_url: String,
    /// Channel override.
    #[serde(default)]
    pub channel: Option<String>,
    /// Display name override.
    #[serde(default)]
    pub username: Option<String>,
    /// Profile picture override.
    #[serde(default)]
    pub icon_url: Option<String>,
    /// Mention put before alerts, e.g. `@channel`.
    #[serde(default)]
    pub mention: Option<String>,
}

/// The message body Mattermost receives.
pub fn payload(config: &Config, n: &Notification) -> Value {
    let ev = &n.event;
    let headline = n.display_title();
    let mut text = format!("**{}**", render::escape_markdown(&headline));
    let mention = config.mention.as_deref().map(str::trim);
    if let Some(mention) = mention.filter(|m| !m.is_empty() && render::is_alert(n)) {
        text = format!("{mention} {text}");
    }
    let mut body = render::escape_markdown(&notify::truncate(&n.body, MAX_TEXT));
    for line in render::digest_lines(ev, MAX_DIGEST_LINES) {
        body.push_str("\n- ");
        body.push_str(&render::escape_markdown(&line));
    }
    let fields: Vec<Value> = render::facts(ev)
        .into_iter()
        .map(|(name, value)| {
            let short = name != "Cause" && value.chars().count() <= 40;
            let value = render::escape_markdown(&notify::truncate(&value, MAX_FIELD));
            json!({"short": short, "title": name, "value": value})
        })
        .collect();
    let mut attachment = json!({
        "fallback": headline,
        "color": ev.color_hex(),
        "text": body,
        "fields": fields,
        "footer": format!("Pharos · {}", render::kind_label(&ev.kind)),
    });
    if let Some(link) = ev.link() {
        attachment["title"] = json!(render::link_label(ev));
        attachment["title_link"] = json!(link);
    }
    let mut msg = json!({"text": text, "attachments": [attachment]});
    for (key, value) in [
        ("channel", &config.channel),
        ("username", &config.username),
        ("icon_url", &config.icon_url),
    ] {
        if let Some(v) = value {
            msg[key] = json!(v);
        }
    }
    msg
}

/// The request for one notification. Pure: no I/O.
pub fn build_request(config: &Config, n: &Notification) -> Result<Request, DeliveryError> {
    let url = render::endpoint_url("webhook_url", &config.webhook_url)?;
    Ok(notify::post_json(&url, &payload(config, n), n))
}

/// The `mattermost` notifier.
pub struct Mattermost;

impl Notify for Mattermost {
    type Config = Config;

    fn info() -> Info {
        Info {
            name: "mattermost",
            version: env!("CARGO_PKG_VERSION"),
            description: "Posts a colour-coded alert to Mattermost through an incoming webhook",
            config_schema: SCHEMA,
            capabilities: &["http"],
        }
    }

    fn deliver(config: Config, n: &Notification) -> Result<Receipt, DeliveryError> {
        let req = build_request(&config, n)?;
        let resp =
            notify::send(&req).map_err(|e| e.redact(&render::url_secrets(&config.webhook_url)))?;
        Ok(Receipt::new(format!("HTTP {}", resp.status)))
    }
}

pharos_sdk::export_notify!(Mattermost);

#[cfg(test)]
mod tests;
