//! The `matrix` notifier: a plain-text and HTML message sent to a room with
//! `PUT /_matrix/client/v3/rooms/{roomId}/send/m.room.message/{txnId}`; the transaction id is
//! the notification's idempotency key, so a retried delivery is deduplicated by the homeserver.

use pharos_sdk::Info;
use pharos_sdk::http::{self, Request};
use pharos_sdk::notify::{self, DeliveryError, Notification, Notify, Receipt, render};
use serde::Deserialize;
use serde_json::{Value, json};

/// The JSON Schema of the config (`schema.json` beside `Cargo.toml`).
pub const SCHEMA: &str = include_str!("../schema.json");

/// Longest body text sent, in characters (events must stay under 64 KiB).
const MAX_TEXT: usize = 4000;
/// Longest fact value sent, in characters.
const MAX_FACT: usize = 500;
/// Digest lines listed before `… and N more`.
const MAX_DIGEST_LINES: usize = 20;

/// `msgtype` of the message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum MsgType {
    /// `m.text` (default).
    #[default]
    #[serde(rename = "m.text")]
    Text,
    /// `m.notice`.
    #[serde(rename = "m.notice")]
    Notice,
}

impl MsgType {
    /// The value on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            MsgType::Text => "m.text",
            MsgType::Notice => "m.notice",
        }
    }
}

/// The channel config (see `schema.json`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Base URL of the client-server API.
    pub homeserver: String,
    /// Access token (a secret).
    pub access_token: String,
    /// Room ID (`!…`).
    pub room_id: String,
    /// `m.text` or `m.notice`.
    #[serde(default)]
    pub msgtype: MsgType,
}

/// The plain-text body: title, body, digest, facts and link, one per line.
pub fn plain_body(n: &Notification) -> String {
    let ev = &n.event;
    let mut lines = vec![n.display_title(), notify::truncate(&n.body, MAX_TEXT)];
    lines.extend(
        render::digest_lines(ev, MAX_DIGEST_LINES)
            .into_iter()
            .map(|l| format!("• {l}")),
    );
    lines.extend(
        render::facts(ev)
            .into_iter()
            .map(|(k, v)| format!("{k}: {}", notify::truncate(&v, MAX_FACT))),
    );
    if let Some(link) = ev.link() {
        lines.push(format!("{}: {link}", render::link_label(ev)));
    }
    lines.join("\n")
}

/// The HTML body (`org.matrix.custom.html`): coloured bold title, body, digest and facts
/// lists, link and footer.
pub fn html_body(n: &Notification) -> String {
    let ev = &n.event;
    let esc = notify::escape_html;
    let color = ev.color_hex();
    let mut html = format!(
        "<p><b><font data-mx-color=\"{color}\" color=\"{color}\">{}</font></b></p>",
        esc(&n.display_title())
    );
    html.push_str(&format!(
        "<p>{}</p>",
        esc(&notify::truncate(&n.body, MAX_TEXT)).replace('\n', "<br>")
    ));
    let list = |items: Vec<String>| -> String {
        let li: String = items.iter().map(|i| format!("<li>{i}</li>")).collect();
        format!("<ul>{li}</ul>")
    };
    let digest = render::digest_lines(ev, MAX_DIGEST_LINES);
    if !digest.is_empty() {
        html.push_str(&list(digest.iter().map(|l| esc(l)).collect()));
    }
    let facts: Vec<String> = render::facts(ev)
        .into_iter()
        .map(|(k, v)| format!("<b>{k}:</b> {}", esc(&notify::truncate(&v, MAX_FACT))))
        .collect();
    if !facts.is_empty() {
        html.push_str(&list(facts));
    }
    let footer = format!("Pharos · {}", render::kind_label(&ev.kind));
    match ev.link() {
        Some(link) => html.push_str(&format!(
            "<p><a href=\"{}\">{}</a> · <i>{footer}</i></p>",
            esc(link),
            render::link_label(ev)
        )),
        None => html.push_str(&format!("<p><i>{footer}</i></p>")),
    }
    html
}

/// The `m.room.message` event content. `m.mentions` is empty: nothing in an alert pings
/// anyone (intentional mentions, Matrix 1.7).
pub fn content(config: &Config, n: &Notification) -> Value {
    json!({
        "msgtype": config.msgtype.as_str(),
        "body": plain_body(n),
        "format": "org.matrix.custom.html",
        "formatted_body": html_body(n),
        "m.mentions": {},
    })
}

/// The request for one notification. Pure: no I/O.
pub fn build_request(config: &Config, n: &Notification) -> Result<Request, DeliveryError> {
    let base = notify::base_url("homeserver", &config.homeserver)?;
    let room = config.room_id.trim();
    if !room.starts_with('!') {
        return Err(DeliveryError::Permanent(format!(
            "invalid config at `room_id`: `{room}` is not a room ID; use the room's ID (!abc:example.org, Room settings → Advanced), not an alias"
        )));
    }
    let path = format!(
        "/_matrix/client/v3/rooms/{}/send/m.room.message/{}",
        notify::percent_encode(room, false),
        notify::percent_encode(&n.idempotency_key, false)
    );
    Ok(Request::new("PUT", &notify::join_url(&base, &path))
        .header("Content-Type", "application/json")
        .bearer_auth(&config.access_token)
        .body(content(config, n).to_string())
        .follow_redirects(0)
        .max_body_bytes(64 * 1024)
        .timeout_ms(n.budget_ms(http::DEFAULT_TIMEOUT_MS)))
}

/// The `matrix` notifier.
pub struct Matrix;

impl Notify for Matrix {
    type Config = Config;

    fn info() -> Info {
        Info {
            name: "matrix",
            version: env!("CARGO_PKG_VERSION"),
            description: "Sends a formatted message to a Matrix room, deduplicated across retries",
            config_schema: SCHEMA,
            capabilities: &["http"],
        }
    }

    fn deliver(config: Config, n: &Notification) -> Result<Receipt, DeliveryError> {
        let req = build_request(&config, n)?;
        let resp =
            notify::send(&req).map_err(|e| e.redact(std::slice::from_ref(&config.access_token)))?;
        let receipt = Receipt::new(format!("HTTP {}", resp.status));
        let id = resp
            .json::<Value>()
            .ok()
            .and_then(|v| v["event_id"].as_str().map(str::to_string));
        Ok(match id {
            Some(id) => receipt.with_external_id(id),
            None => receipt,
        })
    }
}

pharos_sdk::export_notify!(Matrix);

#[cfg(test)]
mod tests;
