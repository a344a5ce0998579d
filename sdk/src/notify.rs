//! Notifier plugins: the [`Notify`] trait, [`export_notify!`], the [`Notification`] a plugin
//! receives with its parsed [`Event`], and helpers to send HTTP requests and classify answers
//! as delivered, transient (retried) or permanent (given up) failures.
//!
//! ```
//! use pharos_sdk::notify::{self, DeliveryError, Notification, Notify, Receipt};
//! use pharos_sdk::Info;
//!
//! #[derive(serde::Deserialize)]
//! struct Config { url: String }
//!
//! struct Hook;
//!
//! impl Notify for Hook {
//!     type Config = Config;
//!     fn info() -> Info {
//!         Info {
//!             name: "hook",
//!             version: "0.1.0",
//!             description: "POSTs the title",
//!             config_schema: r#"{"type":"object","required":["url"],"properties":{"url":{"type":"string"}}}"#,
//!             capabilities: &["http"],
//!         }
//!     }
//!     fn deliver(config: Config, n: &Notification) -> Result<Receipt, DeliveryError> {
//!         let req = notify::post_json(&config.url, &serde_json::json!({"text": n.title}), n);
//!         let resp = notify::send(&req)?;
//!         Ok(Receipt::new(format!("HTTP {}", resp.status)))
//!     }
//! }
//!
//! pharos_sdk::export_notify!(Hook);
//! ```

use std::fmt;
use std::marker::PhantomData;
use std::time::Instant;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::http;
use crate::{CapError, ConfigError, Info, parse_config, with_schema_uri};

pub mod render;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

/// Longest excerpt of a response body quoted in an error message.
const BODY_EXCERPT: usize = 200;

/// An alert channel type: implement this and pass the type to [`export_notify!`].
pub trait Notify {
    /// The channel config, deserialized from the channel's JSON config.
    type Config: DeserializeOwned;

    /// Describes the plugin; must be pure and fast.
    fn info() -> Info;

    /// Delivers one notification. Config that fails to deserialize never gets here: it is a
    /// [`DeliveryError::Permanent`] naming the offending field.
    fn deliver(config: Self::Config, n: &Notification) -> Result<Receipt, DeliveryError>;
}

/// What the destination said when it accepted a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// Short description, e.g. `HTTP 200`.
    pub message: String,
    /// The destination's id for the message, when it returns one.
    pub external_id: Option<String>,
}

impl Receipt {
    /// A receipt without an external id.
    pub fn new(message: impl Into<String>) -> Self {
        Receipt {
            message: message.into(),
            external_id: None,
        }
    }

    /// Adds the destination's message id.
    pub fn with_external_id(mut self, id: impl Into<String>) -> Self {
        self.external_id = Some(id.into());
        self
    }
}

/// Why a delivery failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryError {
    /// Worth retrying later (timeouts, 5xx, rate limits).
    Transient(String),
    /// Retrying will not help (bad credentials, 4xx, bad config).
    Permanent(String),
}

impl DeliveryError {
    /// True for [`DeliveryError::Transient`].
    pub fn is_transient(&self) -> bool {
        matches!(self, DeliveryError::Transient(_))
    }

    /// The reason, without the kind.
    pub fn reason(&self) -> &str {
        match self {
            DeliveryError::Transient(r) | DeliveryError::Permanent(r) => r,
        }
    }
}

impl fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeliveryError::Transient(r) => write!(f, "transient: {r}"),
            DeliveryError::Permanent(r) => write!(f, "permanent: {r}"),
        }
    }
}

impl std::error::Error for DeliveryError {}

impl From<CapError> for DeliveryError {
    /// Network trouble is transient; grants, policy, malformed requests and size limits are not.
    fn from(err: CapError) -> Self {
        match err {
            CapError::NotGranted(_)
            | CapError::PolicyDenied(_)
            | CapError::InvalidRequest(_)
            | CapError::TooLarge(_) => DeliveryError::Permanent(err.to_string()),
            CapError::Dns(_)
            | CapError::Connect(_)
            | CapError::Tls(_)
            | CapError::Timeout(_)
            | CapError::Protocol(_)
            | CapError::LimitExceeded(_)
            | CapError::Io(_) => DeliveryError::Transient(err.to_string()),
        }
    }
}

impl From<ConfigError> for DeliveryError {
    fn from(err: ConfigError) -> Self {
        DeliveryError::Permanent(err.to_string())
    }
}

/// The monitor an event is about.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct EventMonitor {
    /// Id of the row.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// `check` or `push`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The check plugin (`name` or `name@version`).
    pub plugin: Option<String>,
    /// Tags of the monitor.
    pub tags: Vec<String>,
    /// The monitor's page on the dashboard.
    pub url: Option<String>,
}

/// The incident an event is about.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct EventIncident {
    /// Id of the row.
    pub id: i64,
    /// `open` or `resolved`.
    pub status: String,
    /// `down` or `degraded`.
    pub severity: String,
    /// When it opened (RFC 3339).
    pub opened_at: Option<String>,
    /// When it resolved (RFC 3339).
    pub resolved_at: Option<String>,
    /// True once someone acknowledged it.
    pub acknowledged: bool,
    /// What went wrong.
    pub cause: Option<String>,
    /// The incident's page on the dashboard.
    pub url: Option<String>,
}

/// One event summarised in a digest.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct DigestItem {
    /// What happened (see [`Event::kind`]).
    pub kind: String,
    /// Short human title.
    pub title: String,
    /// The monitor status: `up`, `degraded`, `down` or `error`.
    pub status: Option<String>,
    /// When it happened (RFC 3339).
    pub occurred_at: Option<String>,
}

/// Events held back by storm control and sent together.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Digest {
    /// How many events were held.
    pub count: u32,
    /// The storm-control window.
    pub window_secs: u32,
    /// The events, oldest first.
    pub items: Vec<DigestItem>,
}

/// The event a notification carries (the `event` JSON document, parsed leniently: missing
/// members take their defaults).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Event {
    /// `incident.opened`, `incident.escalated`, `incident.resolved`, `incident.reminder`,
    /// `monitor.flapping`, `monitor.flapping_ended`, `digest` or `test`.
    pub kind: String,
    /// The notification's idempotency key.
    pub id: String,
    /// RFC 3339.
    pub occurred_at: Option<String>,
    /// The monitor's status: `up`, `degraded`, `down` or `error`.
    pub status: Option<String>,
    /// `critical`, `warning` or `info`.
    pub severity: Option<String>,
    /// Short human title.
    pub title: String,
    /// Plain-text body.
    pub body: String,
    /// The monitor the event is about.
    pub monitor: Option<EventMonitor>,
    /// The incident the event is about.
    pub incident: Option<EventIncident>,
    /// When the monitor entered its status (RFC 3339).
    pub since: Option<String>,
    /// What went wrong.
    pub cause: Option<String>,
    /// Stable for the life of an incident: PagerDuty `dedup_key`, Opsgenie `alias`.
    pub dedup_key: Option<String>,
    /// The dashboard's address, when Pharos knows its public URL.
    pub dashboard_url: Option<String>,
    /// The held events, for `digest`.
    pub digest: Option<Digest>,
}

impl Event {
    /// True when the event reports a recovery (`incident.resolved`).
    pub fn is_resolved(&self) -> bool {
        self.kind == "incident.resolved"
    }

    /// True for a test alert.
    pub fn is_test(&self) -> bool {
        self.kind == "test"
    }

    /// `critical`, `warning` or `info` (from `severity`, else from the status).
    pub fn severity(&self) -> &str {
        if let Some(s) = self.severity.as_deref() {
            return s;
        }
        match self.status.as_deref() {
            Some("down") | Some("error") if !self.is_resolved() => "critical",
            Some("degraded") => "warning",
            _ => "info",
        }
    }

    /// An RGB colour for the event: red for critical, amber for warning, green for a
    /// recovery, grey otherwise.
    pub fn color(&self) -> u32 {
        if self.is_resolved() {
            return 0x2e_b8_86;
        }
        match self.severity() {
            "critical" => 0xd6_33_3f,
            "warning" => 0xf2_a1_2c,
            _ => 0x6b_72_80,
        }
    }

    /// [`Event::color`] as `#rrggbb`.
    pub fn color_hex(&self) -> String {
        format!("#{:06x}", self.color())
    }

    /// The key destinations should deduplicate on: `dedup_key`, else the notification id.
    pub fn dedup_key<'a>(&'a self, n: &'a Notification) -> &'a str {
        self.dedup_key
            .as_deref()
            .filter(|k| !k.is_empty())
            .unwrap_or(&n.idempotency_key)
    }

    /// The best link for the event: incident page, monitor page, or the dashboard.
    pub fn link(&self) -> Option<&str> {
        self.incident
            .as_ref()
            .and_then(|i| i.url.as_deref())
            .or_else(|| self.monitor.as_ref().and_then(|m| m.url.as_deref()))
            .or(self.dashboard_url.as_deref())
    }
}

/// One notification to deliver, as a [`Notify`] plugin receives it.
#[derive(Debug, Clone)]
pub struct Notification {
    /// Short human title, e.g. `[DOWN] api.example.com`.
    pub title: String,
    /// Plain-text body.
    pub body: String,
    /// The event, parsed.
    pub event: Event,
    /// The event as the JSON text the host sent (forward it verbatim to webhooks).
    pub event_json: String,
    /// Stable per notification across retries; pass it to destinations that deduplicate.
    pub idempotency_key: String,
    /// 1 for the first delivery attempt.
    pub attempt: u32,
    /// Milliseconds the delivery may take.
    pub deadline_ms: u32,
    /// True for a test alert sent from the UI or API.
    pub test: bool,
    started: Instant,
}

impl Notification {
    /// A notification whose deadline starts counting now; the event is parsed from `event_json`
    /// (an unparsable document gives a default [`Event`] carrying title and body).
    pub fn new(
        title: &str,
        body: &str,
        event_json: &str,
        idempotency_key: &str,
        attempt: u32,
        deadline_ms: u32,
        test: bool,
    ) -> Self {
        let mut event: Event = serde_json::from_str(event_json).unwrap_or_default();
        if event.title.is_empty() {
            event.title = title.to_string();
        }
        if event.body.is_empty() {
            event.body = body.to_string();
        }
        Notification {
            title: title.to_string(),
            body: body.to_string(),
            event,
            event_json: event_json.to_string(),
            idempotency_key: idempotency_key.to_string(),
            attempt,
            deadline_ms,
            test,
            started: Instant::now(),
        }
    }

    /// A notification for unit tests built from an event document (title and body from it).
    pub fn for_test(event: serde_json::Value) -> Self {
        let title = event["title"].as_str().unwrap_or("[DOWN] test").to_string();
        let body = event["body"].as_str().unwrap_or("test body").to_string();
        let key = event["id"]
            .as_str()
            .unwrap_or("pharos-test-key")
            .to_string();
        let test = event["kind"] == "test";
        Notification::new(&title, &body, &event.to_string(), &key, 1, 10_000, test)
    }

    /// Milliseconds left before the deadline (0 once it passed).
    pub fn remaining_ms(&self) -> u32 {
        let elapsed = self.started.elapsed().as_millis();
        u32::try_from(u128::from(self.deadline_ms).saturating_sub(elapsed)).unwrap_or(u32::MAX)
    }

    /// `wanted` capped by the time left: the timeout to give the next capability call.
    pub fn budget_ms(&self, wanted: u32) -> u32 {
        wanted.min(self.remaining_ms())
    }
}

/// A `POST` of `body` as JSON to `url`: `Content-Type: application/json`, no redirects
/// followed, TLS verified, timeout bounded by the notification's deadline.
pub fn post_json(url: &str, body: &serde_json::Value, n: &Notification) -> http::Request {
    http::Request::post(url)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .follow_redirects(0)
        .max_body_bytes(64 * 1024)
        .timeout_ms(n.budget_ms(http::DEFAULT_TIMEOUT_MS))
}

/// A `POST` of `fields` as `application/x-www-form-urlencoded` to `url` (see [`post_json`]).
pub fn post_form(url: &str, fields: &[(&str, &str)], n: &Notification) -> http::Request {
    http::Request::post(url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form_encode(fields))
        .follow_redirects(0)
        .max_body_bytes(64 * 1024)
        .timeout_ms(n.budget_ms(http::DEFAULT_TIMEOUT_MS))
}

/// Sends `req` and classifies the answer with [`check_response`].
pub fn send(req: &http::Request) -> Result<http::Response, DeliveryError> {
    let resp = http::send(req)?;
    check_response(&resp)?;
    Ok(resp)
}

/// 2xx is delivered; 408, 425, 429 and 5xx are transient; any other status is permanent.
/// The error names the status and quotes the start of the body.
pub fn check_response(resp: &http::Response) -> Result<(), DeliveryError> {
    let status = resp.status;
    if (200..300).contains(&status) {
        return Ok(());
    }
    let text = resp.text();
    let excerpt: String = text.trim().chars().take(BODY_EXCERPT).collect();
    let mut reason = format!("HTTP {status}");
    if !excerpt.is_empty() {
        reason.push_str(": ");
        reason.push_str(&excerpt);
    }
    if let Some(after) = resp.header("Retry-After") {
        reason.push_str(&format!(" (Retry-After: {after})"));
    }
    if matches!(status, 408 | 425 | 429) || status >= 500 {
        Err(DeliveryError::Transient(reason))
    } else {
        Err(DeliveryError::Permanent(reason))
    }
}

/// `application/x-www-form-urlencoded` encoding of `fields`.
pub fn form_encode(fields: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(&percent_encode(k, true));
        out.push('=');
        out.push_str(&percent_encode(v, true));
    }
    out
}

/// Percent-encodes everything but unreserved characters (`A-Z a-z 0-9 - . _ ~`); with
/// `form`, spaces become `+`.
pub fn percent_encode(s: &str, form: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(b))
            }
            b' ' if form => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `base` without trailing slashes joined with `path` (which should start with `/`).
pub fn join_url(base: &str, path: &str) -> String {
    format!("{}{}", base.trim_end_matches('/'), path)
}

/// Parses `config` and calls `N::deliver`, exactly as the export glue does (use it in tests).
pub fn run_notify<N: Notify>(config: &str, n: &Notification) -> Result<Receipt, DeliveryError> {
    let config = parse_config::<N::Config>(config)?;
    N::deliver(config, n)
}

/// The plugin description that `describe()` returns, as the host sees it.
pub fn notify_plugin_info<N: Notify>() -> crate::bindings::pharos::plugin::types::PluginInfo {
    use crate::bindings::pharos::plugin::types::{PluginInfo, PluginKind};
    let info = N::info();
    PluginInfo {
        name: info.name.to_string(),
        version: info.version.to_string(),
        kind: PluginKind::Notifier,
        description: info.description.to_string(),
        config_schema: with_schema_uri(info.config_schema),
        capabilities: info.capabilities.iter().map(|c| c.to_string()).collect(),
    }
}

/// Wires a [`Notify`] implementation to the component's `notifier` export.
///
/// Invoke it once, at the root of the plugin crate: `pharos_sdk::export_notify!(MyChannel);`
/// On other targets than wasm32 it exports nothing (natively, test through [`run_notify`]).
#[macro_export]
macro_rules! export_notify {
    ($ty:ty) => {
        #[doc(hidden)]
        #[allow(dead_code)]
        type __PharosNotifyExport = $crate::notify::__private::Adapter<$ty>;
        #[cfg(target_arch = "wasm32")]
        $crate::notify::__private::export!(__PharosNotifyExport with_types_in $crate::notify::__private::bindings);
    };
}

/// Glue used by [`export_notify!`]; not part of the public API.
#[doc(hidden)]
pub mod __private {
    use super::*;
    use crate::notify_bindings::exports::pharos::plugin::notifier as wit;

    pub use crate::notify_bindings as bindings;
    pub use crate::notify_bindings::export;

    /// Longest receipt message and external id passed back to the host.
    const MAX_RECEIPT_BYTES: usize = 1024;

    /// Implements the generated `Guest` trait for a [`Notify`].
    pub struct Adapter<T>(PhantomData<T>);

    impl<T: Notify> wit::Guest for Adapter<T> {
        fn describe() -> crate::bindings::pharos::plugin::types::PluginInfo {
            notify_plugin_info::<T>()
        }

        fn deliver(n: wit::Notification) -> Result<wit::Receipt, wit::DeliveryError> {
            let notification = Notification::new(
                &n.title,
                &n.body,
                &n.event,
                &n.idempotency_key,
                n.attempt,
                n.deadline_ms,
                n.test,
            );
            match run_notify::<T>(&n.config, &notification) {
                Ok(r) => Ok(wit::Receipt {
                    message: crate::truncate_message(r.message),
                    external_id: r.external_id.map(|id| cap(id, MAX_RECEIPT_BYTES / 4)),
                }),
                Err(DeliveryError::Transient(m)) => {
                    Err(wit::DeliveryError::Transient(cap(m, MAX_RECEIPT_BYTES)))
                }
                Err(DeliveryError::Permanent(m)) => {
                    Err(wit::DeliveryError::Permanent(cap(m, MAX_RECEIPT_BYTES)))
                }
            }
        }
    }

    /// `s` cut to at most `max` bytes on a character boundary.
    fn cap(mut s: String, max: usize) -> String {
        if s.len() > max {
            let mut end = max;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s.truncate(end);
        }
        s
    }
}

// Helpers shared by the built-in notifiers (text shaping, URL checks).

/// `s` cut to at most `max_chars` characters; a cut text ends with `…` (which counts).
pub fn truncate(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        return s.to_string();
    }
    if max_chars == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(max_chars - 1).collect();
    out.push('…');
    out
}

/// `s` with `&`, `<`, `>`, `"` and `'` escaped, for HTML text and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Checks that `value`, the config field `field`, is an absolute `http://` or `https://` URL
/// with a host; returns it trimmed and without trailing slashes (ready for [`join_url`]).
pub fn base_url(field: &str, value: &str) -> Result<String, DeliveryError> {
    let url = value.trim().trim_end_matches('/');
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"));
    match rest {
        Some(r)
            if !r.is_empty()
                && !r.starts_with(['/', '?', '#'])
                && !r.contains(char::is_whitespace) =>
        {
            Ok(url.to_string())
        }
        _ => Err(DeliveryError::Permanent(format!(
            "invalid config at `{field}`: `{url}` is not an absolute http:// or https:// URL"
        ))),
    }
}

impl Notification {
    /// The title to show: [`Notification::title`], prefixed with `[TEST] ` for a test alert
    /// whose title does not say so already.
    pub fn display_title(&self) -> String {
        if self.test && !self.title.to_ascii_lowercase().contains("test") {
            format!("[TEST] {}", self.title)
        } else {
            self.title.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Cfg {
        url: String,
    }

    struct Hook;

    impl Notify for Hook {
        type Config = Cfg;
        fn info() -> Info {
            Info {
                name: "hook",
                version: "1.0.0",
                description: "test hook",
                config_schema: r#"{"type":"object"}"#,
                capabilities: &["http"],
            }
        }
        fn deliver(config: Cfg, n: &Notification) -> Result<Receipt, DeliveryError> {
            let resp = send(&post_json(
                &config.url,
                &serde_json::json!({"t": n.title}),
                n,
            ))?;
            Ok(Receipt::new(format!("HTTP {}", resp.status)).with_external_id("x1"))
        }
    }

    fn event() -> serde_json::Value {
        serde_json::json!({
            "kind": "incident.opened", "id": "pharos-7-opened-1-c2", "status": "down",
            "title": "[DOWN] api", "body": "api is down",
            "monitor": {"id": 3, "name": "api", "type": "check", "tags": ["prod"], "url": "http://p/monitors/3"},
            "incident": {"id": 7, "status": "open", "severity": "down", "acknowledged": false},
            "dedup_key": "pharos-incident-7"
        })
    }

    #[test]
    fn events_parse_leniently() {
        let n = Notification::for_test(event());
        assert_eq!(n.event.kind, "incident.opened");
        assert_eq!(n.event.monitor.as_ref().map(|m| m.id), Some(3));
        assert_eq!(n.event.severity(), "critical");
        assert_eq!(n.event.color_hex(), "#d6333f");
        assert_eq!(n.event.dedup_key(&n), "pharos-incident-7");
        assert_eq!(n.event.link(), Some("http://p/monitors/3"));
        let odd = Notification::new("t", "b", "not json", "k", 1, 1000, false);
        assert_eq!(odd.event.title, "t");
        assert_eq!(odd.event.dedup_key(&odd), "k");
        let resolved = Notification::for_test(
            serde_json::json!({"kind": "incident.resolved", "status": "up"}),
        );
        assert!(resolved.event.is_resolved());
        assert_eq!(resolved.event.color_hex(), "#2eb886");
    }

    #[test]
    fn http_answers_are_classified() {
        mock::reset();
        let statuses = std::rc::Rc::new(std::cell::RefCell::new(vec![204u16, 503, 429, 401, 404]));
        let s = statuses.clone();
        let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let seen2 = seen.clone();
        mock::http(move |req| {
            seen2.borrow_mut().push(req.clone());
            let status = s.borrow_mut().remove(0);
            Ok(http::Response::new(status, "nope").with_header("Retry-After", "30"))
        });
        let n = Notification::for_test(event());
        let cfg = r#"{"url": "https://hooks.example/x"}"#;
        let ok = run_notify::<Hook>(cfg, &n).unwrap();
        assert_eq!(ok, Receipt::new("HTTP 204").with_external_id("x1"));
        let req = seen.borrow()[0].clone();
        assert_eq!(req.method, "POST");
        assert_eq!(req.url, "https://hooks.example/x");
        assert_eq!(req.header_value("content-type"), Some("application/json"));
        assert_eq!(
            req.body.as_deref(),
            Some(br#"{"t":"[DOWN] api"}"#.as_slice())
        );
        assert!(!req.follow_redirects);
        assert!(
            matches!(run_notify::<Hook>(cfg, &n), Err(DeliveryError::Transient(m)) if m.contains("HTTP 503: nope") && m.contains("Retry-After: 30"))
        );
        assert!(run_notify::<Hook>(cfg, &n).unwrap_err().is_transient());
        assert!(
            matches!(run_notify::<Hook>(cfg, &n), Err(DeliveryError::Permanent(m)) if m.starts_with("HTTP 401"))
        );
        assert!(!run_notify::<Hook>(cfg, &n).unwrap_err().is_transient());
        let bad = run_notify::<Hook>(r#"{"url": 1}"#, &n).unwrap_err();
        assert!(matches!(bad, DeliveryError::Permanent(m) if m.contains("`url`")));
    }

    #[test]
    fn cap_errors_map_to_transient_or_permanent() {
        assert!(DeliveryError::from(CapError::Timeout("t".into())).is_transient());
        assert!(DeliveryError::from(CapError::Connect("c".into())).is_transient());
        assert!(!DeliveryError::from(CapError::PolicyDenied("p".into())).is_transient());
        assert!(!DeliveryError::from(CapError::NotGranted("g".into())).is_transient());
    }

    #[test]
    fn encoding_helpers() {
        assert_eq!(
            form_encode(&[("a b", "x&y=z"), ("k", "é")]),
            "a+b=x%26y%3Dz&k=%C3%A9"
        );
        assert_eq!(percent_encode("a b/c", false), "a%20b%2Fc");
        assert_eq!(join_url("https://x/", "/v1"), "https://x/v1");
        assert_eq!(join_url("https://x", "/v1"), "https://x/v1");
    }

    #[test]
    fn adapter_maps_results_like_the_host_sees_them() {
        use crate::notify_bindings::exports::pharos::plugin::notifier::{
            DeliveryError as WitError, Guest, Notification as WitNotification,
        };
        mock::reset();
        mock::http(|_| Ok(http::Response::new(500, "boom")));
        let wit = WitNotification {
            config: r#"{"url":"https://h/"}"#.into(),
            title: "t".into(),
            body: "b".into(),
            event: event().to_string(),
            idempotency_key: "k".into(),
            attempt: 2,
            deadline_ms: 1000,
            test: false,
        };
        let out = <__private::Adapter<Hook> as Guest>::deliver(wit);
        assert!(matches!(out, Err(WitError::Transient(m)) if m.contains("HTTP 500")));
        let info = <__private::Adapter<Hook> as Guest>::describe();
        assert_eq!(info.name, "hook");
        assert!(matches!(
            info.kind,
            crate::bindings::pharos::plugin::types::PluginKind::Notifier
        ));
    }

    #[test]
    fn text_helpers_for_notifiers() {
        assert_eq!(truncate("hello", 5), "hello");
        assert_eq!(truncate("hello world", 5), "hell…");
        assert_eq!(truncate("héllo wörld", 3), "hé…");
        assert_eq!(truncate("abc", 0), "");
        assert_eq!(truncate("", 1), "");
        assert_eq!(
            escape_html(r#"<a href="x">Tom & 'Jerry'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;"
        );
        assert_eq!(
            base_url("server", " https://ntfy.example.com/ ").unwrap(),
            "https://ntfy.example.com"
        );
        assert_eq!(
            base_url("s", "http://127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080"
        );
        for bad in [
            "ntfy.sh",
            "ftp://x",
            "https://",
            "https:///x",
            "http://a b",
            "",
        ] {
            let err = base_url("server", bad).unwrap_err();
            assert!(!err.is_transient());
            assert!(err.reason().contains("`server`"), "{err}");
        }
        let mut n = Notification::for_test(serde_json::json!({"kind": "test", "title": "Hello"}));
        assert_eq!(n.display_title(), "[TEST] Hello");
        n.title = "[TEST] Pharos test alert".into();
        assert_eq!(n.display_title(), "[TEST] Pharos test alert");
        let real = Notification::for_test(event());
        assert_eq!(real.display_title(), "[DOWN] api");
    }
}
