//! The `rocketchat` notifier: a colour-coded message with the event's facts, posted through a
//! Rocket.Chat incoming webhook integration.

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
    /// Channel override (`#channel` or `@user`).
    #[serde(default)]
    pub channel: Option<String>,
    /// Display name override.
    #[serde(default)]
    pub alias: Option<String>,
    /// Avatar URL override.
    #[serde(default)]
    pub avatar: Option<String>,
    /// Emoji avatar override.
    #[serde(default)]
    pub emoji: Option<String>,
    /// Mention put before alerts, e.g. `@here`.
    #[serde(default)]
    pub mention: Option<String>,
}

/// The message body Rocket.Chat receives.
pub fn payload(config: &Config, n: &Notification) -> Value {
    let ev = &n.event;
    let mut text = format!("*{}*", render::defuse_mentions(&n.display_title()));
    let mention = config.mention.as_deref().map(str::trim);
    if let Some(mention) = mention.filter(|m| !m.is_empty() && render::is_alert(n)) {
        text = format!("{mention} {text}");
    }
    let mut body = render::defuse_mentions(&notify::truncate(&n.body, MAX_TEXT));
    for line in render::digest_lines(ev, MAX_DIGEST_LINES) {
        body.push_str("\n• ");
        body.push_str(&render::defuse_mentions(&line));
    }
    let fields: Vec<Value> = render::facts(ev)
        .into_iter()
        .map(|(name, value)| {
            let short = name != "Cause" && value.chars().count() <= 40;
            let value = render::defuse_mentions(&notify::truncate(&value, MAX_FIELD));
            json!({"short": short, "title": name, "value": value})
        })
        .collect();
    let mut attachment = json!({
        "color": ev.color_hex(),
        "text": body,
        "fields": fields,
    });
    if let Some(link) = ev.link() {
        attachment["title"] = json!(render::link_label(ev));
        attachment["title_link"] = json!(link);
    } else {
        attachment["title"] = json!(render::kind_label(&ev.kind));
    }
    if let Some(ts) = ev
        .occurred_at
        .as_deref()
        .filter(|t| render::rfc3339_to_unix(t).is_some())
    {
        attachment["ts"] = json!(ts);
    }
    let mut msg = json!({"text": text, "attachments": [attachment]});
    for (key, value) in [
        ("channel", &config.channel),
        ("alias", &config.alias),
        ("avatar", &config.avatar),
        ("emoji", &config.emoji),
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

/// Rocket.Chat answers `{"success": false, "error": …}` when it refused the message.
fn check_body(status: u16, body: &Value) -> Result<(), DeliveryError> {
    if body["success"] == Value::Bool(false) {
        let error = body["error"].as_str().unwrap_or("success: false");
        return Err(DeliveryError::Permanent(format!(
            "HTTP {status}: {}",
            notify::truncate(error, 200)
        )));
    }
    Ok(())
}

/// The `rocketchat` notifier.
pub struct RocketChat;

impl Notify for RocketChat {
    type Config = Config;

    fn info() -> Info {
        Info {
            name: "rocketchat",
            version: env!("CARGO_PKG_VERSION"),
            description: "Posts a colour-coded alert to Rocket.Chat through an incoming webhook",
            config_schema: SCHEMA,
            capabilities: &["http"],
        }
    }

    fn deliver(config: Config, n: &Notification) -> Result<Receipt, DeliveryError> {
        let req = build_request(&config, n)?;
        let resp =
            notify::send(&req).map_err(|e| e.redact(&render::url_secrets(&config.webhook_url)))?;
        check_body(resp.status, &resp.json::<Value>().unwrap_or(Value::Null))?;
        Ok(Receipt::new(format!("HTTP {}", resp.status)))
    }
}

pharos_sdk::export_notify!(RocketChat);

#[cfg(test)]
mod tests;
