//! The `email` notifier: one message through an SMTP server (capability `smtp`).
//!
//! - Subject: the optional prefix and the alert's title. Body: plain text (the alert's body,
//!   the link when the body lacks it, a signature) with an HTML alternative ([`html`]: colour
//!   bar by severity, the facts, a link button; every value escaped).
//! - Headers: `Message-ID: <idempotency-key@pharos>` (a retry is the same message, so
//!   receiving servers and clients can drop the duplicate), `X-Pharos-Event`,
//!   `X-Pharos-Severity`, `Auto-Submitted: auto-generated` (RFC 3834: no auto-replies), a
//!   `References` header naming the incident so clients thread its messages, and
//!   `Importance: high` for critical alerts.
//! - A 4xx reply is transient, a 5xx reply permanent (the SDK's `From<SendError>`); the
//!   receipt is the server's reply and the external id the `Message-ID`.

pub mod html;

use pharos_sdk::Info;
use pharos_sdk::notify::{self, DeliveryError, Notification, Notify, Receipt, render};
use pharos_sdk::smtp::{self, Header, Message, Security as WitSecurity, Server};
use serde::Deserialize;

/// The JSON Schema of the config (`schema.json` beside `Cargo.toml`).
pub const SCHEMA: &str = include_str!("../schema.json");
/// Timeout of the SMTP exchange (capped by the delivery's deadline).
pub const SMTP_TIMEOUT_MS: u32 = 30_000;
/// The right-hand side of the message ids Pharos writes.
pub const MESSAGE_ID_DOMAIN: &str = "pharos";

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// STARTTLS upgrade (default port 587).
    #[default]
    Starttls,
    /// Implicit TLS (default port 465).
    Tls,
    /// No encryption (default port 25).
    None,
}

impl Security {
    /// The port used when none is configured.
    pub fn default_port(self) -> u16 {
        match self {
            Security::Starttls => 587,
            Security::Tls => 465,
            Security::None => 25,
        }
    }

    fn to_wit(self) -> WitSecurity {
        match self {
            Security::Starttls => WitSecurity::Starttls,
            Security::Tls => WitSecurity::Tls,
            Security::None => WitSecurity::None,
        }
    }
}

/// The `email` plugin's config; see `schema.json` for each field.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// SMTP server host.
    pub host: String,
    /// SMTP server port; by `security` when absent.
    #[serde(default)]
    pub port: Option<u16>,
    /// Connection security.
    #[serde(default)]
    pub security: Security,
    /// Login user.
    #[serde(default)]
    pub username: Option<String>,
    /// Login password (secret).
    #[serde(default)]
    pub password: Option<String>,
    /// Sender.
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
    /// Text before the title in the subject.
    #[serde(default)]
    pub subject_prefix: String,
    /// Verify the server's certificate.
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

/// True for a bare address: something, `@`, something; no spaces, separators or brackets.
fn bare_address(s: &str) -> bool {
    s.split_once('@')
        .is_some_and(|(l, r)| !l.is_empty() && !r.is_empty())
        && !s.chars().any(|c| c.is_whitespace() || ",;<>".contains(c))
}

/// The server to send through (pure).
pub fn server(config: &Config, n: &Notification) -> Result<Server, DeliveryError> {
    let host = config.host.trim();
    if host.is_empty()
        || host.contains("://")
        || host.chars().any(|c| c.is_whitespace() || c == '/')
    {
        return Err(invalid(
            "host",
            "use the server's host name, e.g. smtp.example.com",
        ));
    }
    if config.port == Some(0) {
        return Err(invalid("port", "must be between 1 and 65535"));
    }
    let (username, password) = match (&config.username, &config.password) {
        (Some(u), Some(p)) => (Some(u.clone()), Some(p.clone())),
        (Some(_), None) => return Err(invalid("password", "required with `username`")),
        (None, Some(_)) => return Err(invalid("username", "required with `password`")),
        (None, None) => (None, None),
    };
    Ok(Server {
        host: host.to_string(),
        port: config.port.unwrap_or(config.security.default_port()),
        security: config.security.to_wit(),
        username,
        password,
        verify_tls: config.verify_tls,
        timeout_ms: n.budget_ms(SMTP_TIMEOUT_MS),
    })
}

/// `<key@pharos>` with anything a message id cannot hold replaced by `-`.
pub fn message_id(key: &str) -> String {
    let left: String = key
        .chars()
        .take(200)
        .map(|c| {
            if c.is_ascii_graphic() && !"<>@()[]\\,;:\"".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let left = if left.is_empty() {
        "pharos".to_string()
    } else {
        left
    };
    format!("<{left}@{MESSAGE_ID_DOMAIN}>")
}

/// The subject: prefix, space, title (on one line).
pub fn subject(config: &Config, n: &Notification) -> String {
    let title = n.display_title();
    let prefix = config.subject_prefix.trim();
    let s = if prefix.is_empty() {
        title
    } else {
        format!("{prefix} {title}")
    };
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The plain-text body: the alert's body, the link when the body lacks it, a signature.
pub fn plain_body(n: &Notification) -> String {
    let e = &n.event;
    let mut out = n.body.trim().to_string();
    if let Some(link) = e.link().filter(|l| !out.contains(l)) {
        out.push_str(&format!("\n\n{}: {link}", render::link_label(e)));
    }
    out.push_str("\n\n-- \n");
    if n.test {
        out.push_str("Test alert sent by Pharos; nothing is wrong.");
    } else {
        out.push_str(&format!(
            "Sent by Pharos ({}).",
            render::kind_label(&e.kind)
        ));
    }
    out.push('\n');
    out
}

/// The extra headers.
pub fn headers(n: &Notification) -> Vec<Header> {
    let e = &n.event;
    let h = |name: &str, value: String| Header {
        name: name.to_string(),
        value,
    };
    let severity = if e.is_resolved() {
        "info"
    } else {
        e.severity()
    };
    let mut out = vec![
        h("Message-ID", message_id(&n.idempotency_key)),
        h("X-Pharos-Event", e.kind.clone()),
        h("X-Pharos-Severity", severity.to_string()),
        h("Auto-Submitted", "auto-generated".to_string()),
    ];
    if e.incident.is_some() {
        out.push(h("References", message_id(e.dedup_key(n))));
    }
    if severity == "critical" && !n.test {
        out.push(h("Importance", "high".to_string()));
        out.push(h("X-Priority", "1".to_string()));
    }
    out
}

/// The message for `n` (pure).
pub fn build_message(config: &Config, n: &Notification) -> Result<Message, DeliveryError> {
    let from = config.from.trim();
    if !from.contains('@') || from.contains(['\r', '\n']) {
        return Err(invalid(
            "from",
            "use an address such as `Pharos <alerts@example.com>`",
        ));
    }
    if config.to.is_empty() {
        return Err(invalid("to", "name at least one recipient"));
    }
    if let Some(i) = config.to.iter().position(|t| !bare_address(t.trim())) {
        return Err(invalid(
            &format!("to[{i}]"),
            "use one plain address such as ops@example.com",
        ));
    }
    if config.subject_prefix.contains(['\r', '\n']) {
        return Err(invalid("subject_prefix", "must be one line"));
    }
    let mut to: Vec<String> = Vec::new();
    for t in config.to.iter().map(|t| t.trim().to_string()) {
        if !to.contains(&t) {
            to.push(t);
        }
    }
    Ok(Message {
        from: from.to_string(),
        to,
        subject: subject(config, n),
        body: plain_body(n),
        html_body: Some(html::render(n)),
        headers: headers(n),
    })
}

/// The `email` notifier.
pub struct Email;

impl Notify for Email {
    type Config = Config;

    fn info() -> Info {
        Info {
            name: "email",
            version: env!("CARGO_PKG_VERSION"),
            description: "Sends alerts as email through an SMTP server",
            config_schema: SCHEMA,
            capabilities: &["smtp"],
        }
    }

    fn deliver(config: Config, n: &Notification) -> Result<Receipt, DeliveryError> {
        let server = server(&config, n)?;
        let message = build_message(&config, n)?;
        let secrets: Vec<String> = config.password.iter().cloned().collect();
        let sent =
            smtp::send(&server, &message).map_err(|e| DeliveryError::from(e).redact(&secrets))?;
        Ok(
            Receipt::new(notify::truncate(sent.reply.trim(), 500))
                .with_external_id(sent.message_id),
        )
    }
}

pharos_sdk::export_notify!(Email);

#[cfg(test)]
mod tests;
