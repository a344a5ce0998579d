//! The `discord` notifier: a colour-coded embed posted through a Discord channel webhook,
//! waiting for the created message so its id becomes the receipt's external id.

use pharos_sdk::Info;
use pharos_sdk::http::Request;
use pharos_sdk::notify::{self, DeliveryError, Notification, Notify, Receipt, render};
use serde::Deserialize;
use serde_json::{Value, json};

/// The JSON Schema of the config (`schema.json` beside `Cargo.toml`).
pub const SCHEMA: &str = include_str!("../schema.json");

/// Discord's limits on embed parts, in characters (the whole embed must stay under 6000).
const MAX_TITLE: usize = 256;
const MAX_DESCRIPTION: usize = 3000;
const MAX_FIELD_VALUE: usize = 300;
/// Digest lines listed before `… and N more`.
const MAX_DIGEST_LINES: usize = 20;

/// The channel config (see `schema.json`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Channel webhook URL (a secret).
    pub webhook_url: String,
    /// Display name override.
    #[serde(default)]
    pub username: Option<String>,
    /// Avatar URL override.
    #[serde(default)]
    pub avatar_url: Option<String>,
    /// Thread to post into.
    #[serde(default)]
    pub thread_id: Option<String>,
    /// Mentions put before alerts.
    #[serde(default)]
    pub mention: Option<String>,
}

/// `allowed_mentions` letting exactly the configured mentions ping, and nothing else.
fn allowed_mentions(mention: Option<&str>) -> Value {
    let (mut parse, mut users, mut roles) = (Vec::new(), Vec::new(), Vec::new());
    for token in mention.unwrap_or("").split_whitespace() {
        if token == "@here" || token == "@everyone" {
            if parse.is_empty() {
                parse.push("everyone");
            }
        } else if let Some(id) = token.strip_prefix("<@&").and_then(|t| t.strip_suffix('>')) {
            roles.push(id.to_string());
        } else if let Some(id) = token.strip_prefix("<@").and_then(|t| t.strip_suffix('>')) {
            users.push(id.trim_start_matches('!').to_string());
        }
    }
    let mut out = json!({"parse": parse});
    if !users.is_empty() {
        out["users"] = json!(users);
    }
    if !roles.is_empty() {
        out["roles"] = json!(roles);
    }
    out
}

/// The message body Discord receives.
pub fn payload(config: &Config, n: &Notification) -> Value {
    let ev = &n.event;
    let mut description = render::escape_markdown(&n.body);
    for line in render::digest_lines(ev, MAX_DIGEST_LINES) {
        description.push_str("\n• ");
        description.push_str(&render::escape_markdown(&line));
    }
    let fields: Vec<Value> = render::facts(ev)
        .into_iter()
        .map(|(name, value)| {
            let inline = name != "Cause" && value.chars().count() <= 40;
            let value = notify::truncate(&render::escape_markdown(&value), MAX_FIELD_VALUE);
            json!({"name": name, "value": value, "inline": inline})
        })
        .collect();
    let mut embed = json!({
        "title": notify::truncate(&n.display_title(), MAX_TITLE),
        "description": notify::truncate(&description, MAX_DESCRIPTION),
        "color": ev.color(),
        "fields": fields,
        "footer": {"text": format!("Pharos · {}", render::kind_label(&ev.kind))},
    });
    if let Some(link) = ev.link() {
        embed["url"] = json!(link);
    }
    if let Some(ts) = ev
        .occurred_at
        .as_deref()
        .filter(|t| render::rfc3339_to_unix(t).is_some())
    {
        embed["timestamp"] = json!(ts);
    }
    let mention = config
        .mention
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty() && render::is_alert(n));
    let mut msg = json!({"embeds": [embed], "allowed_mentions": allowed_mentions(mention)});
    if let Some(m) = mention {
        msg["content"] = json!(m);
    }
    if let Some(u) = &config.username {
        msg["username"] = json!(u);
    }
    if let Some(a) = &config.avatar_url {
        msg["avatar_url"] = json!(a);
    }
    msg
}

/// The webhook URL with `wait=true` (and `thread_id`) added to its query.
pub fn execute_url(config: &Config) -> Result<String, DeliveryError> {
    let mut url = render::endpoint_url("webhook_url", &config.webhook_url)?;
    url.push(if url.contains('?') { '&' } else { '?' });
    url.push_str("wait=true");
    if let Some(thread) = &config.thread_id {
        url.push_str("&thread_id=");
        url.push_str(&notify::percent_encode(thread, false));
    }
    Ok(url)
}

/// The request for one notification. Pure: no I/O.
pub fn build_request(config: &Config, n: &Notification) -> Result<Request, DeliveryError> {
    Ok(notify::post_json(
        &execute_url(config)?,
        &payload(config, n),
        n,
    ))
}

/// The `discord` notifier.
pub struct Discord;

impl Notify for Discord {
    type Config = Config;

    fn info() -> Info {
        Info {
            name: "discord",
            version: env!("CARGO_PKG_VERSION"),
            description: "Posts a colour-coded embed to Discord through a channel webhook",
            config_schema: SCHEMA,
            capabilities: &["http"],
        }
    }

    fn deliver(config: Config, n: &Notification) -> Result<Receipt, DeliveryError> {
        let req = build_request(&config, n)?;
        let resp =
            notify::send(&req).map_err(|e| e.redact(&render::url_secrets(&config.webhook_url)))?;
        let receipt = Receipt::new(format!("HTTP {}", resp.status));
        let id = resp
            .json::<Value>()
            .ok()
            .and_then(|v| v["id"].as_str().map(str::to_string));
        Ok(match id {
            Some(id) => receipt.with_external_id(id),
            None => receipt,
        })
    }
}

pharos_sdk::export_notify!(Discord);

#[cfg(test)]
mod tests;
