//! Rendering helpers shared by chat-style notifiers: the facts of an event, digest lines,
//! labels, RFC 3339 timestamps, Markdown escaping, and redaction of secrets (webhook URLs,
//! tokens) from error messages.

use super::{DeliveryError, Event, Notification};

/// A human label for an event kind: `incident.opened` → `Incident opened`.
pub fn kind_label(kind: &str) -> &str {
    match kind {
        "incident.opened" => "Incident opened",
        "incident.escalated" => "Incident escalated",
        "incident.resolved" => "Incident resolved",
        "incident.reminder" => "Incident reminder",
        "monitor.flapping" => "Monitor flapping",
        "monitor.flapping_ended" => "Flapping ended",
        "digest" => "Digest",
        "test" => "Test alert",
        other => other,
    }
}

/// True for notifications that ask someone to act: not recoveries, test alerts or the end of
/// flapping (where destinations should not page with mentions or high priority).
pub fn is_alert(n: &Notification) -> bool {
    let ev = &n.event;
    !(n.test || ev.is_test() || ev.is_resolved() || ev.kind == "monitor.flapping_ended")
}

/// What [`Event::link`] points to, as a button label: `Open incident`, `Open monitor` or
/// `Open dashboard`.
pub fn link_label(event: &Event) -> &'static str {
    if event.incident.as_ref().is_some_and(|i| i.url.is_some()) {
        "Open incident"
    } else if event.monitor.as_ref().is_some_and(|m| m.url.is_some()) {
        "Open monitor"
    } else {
        "Open dashboard"
    }
}

/// The facts a destination shows beside the body, in this order and only when known:
/// Monitor, Status, Severity (not for recoveries), Cause, Since, Incident, Duration (of a
/// resolved incident), Tags.
pub fn facts(event: &Event) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Some(m) = event.monitor.as_ref().filter(|m| !m.name.is_empty()) {
        out.push(("Monitor", m.name.clone()));
    }
    if let Some(status) = event.status.as_deref().filter(|s| !s.is_empty()) {
        out.push(("Status", status.to_ascii_uppercase()));
    }
    if !event.is_resolved() && !event.is_test() && event.kind != "digest" {
        out.push(("Severity", event.severity().to_string()));
    }
    let cause = event
        .cause
        .as_deref()
        .or_else(|| event.incident.as_ref().and_then(|i| i.cause.as_deref()))
        .filter(|c| !c.is_empty());
    if let Some(cause) = cause {
        out.push(("Cause", cause.to_string()));
    }
    if let Some(since) = event.since.as_deref().filter(|s| !s.is_empty()) {
        out.push(("Since", since.to_string()));
    }
    if let Some(i) = event.incident.as_ref().filter(|i| i.id > 0) {
        let mut text = format!("#{}", i.id);
        if i.acknowledged {
            text.push_str(" (acknowledged)");
        }
        out.push(("Incident", text));
        let span = i
            .opened_at
            .as_deref()
            .and_then(rfc3339_to_unix)
            .zip(i.resolved_at.as_deref().and_then(rfc3339_to_unix));
        if let Some((opened, resolved)) = span.filter(|(o, r)| r >= o) {
            out.push(("Duration", duration_text(resolved - opened)));
        }
    }
    if let Some(m) = event.monitor.as_ref().filter(|m| !m.tags.is_empty()) {
        out.push(("Tags", m.tags.join(", ")));
    }
    out
}

/// `seconds` as `1d 2h`, `2h 5m`, `12m 30s` or `45s` (the two largest units).
pub fn duration_text(seconds: i64) -> String {
    let s = seconds.max(0);
    let (d, h, m, sec) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{sec}s"),
        (0, 0, _) => format!("{m}m {sec}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// One line per event held in a digest, oldest first — `[DOWN] api (Incident opened,
/// 2026-11-24T10:00:00Z)` — at most `max` of them, then `… and N more` when the digest held
/// more. Empty for events without a digest.
pub fn digest_lines(event: &Event, max: usize) -> Vec<String> {
    let Some(digest) = event.digest.as_ref() else {
        return Vec::new();
    };
    let mut out: Vec<String> = digest
        .items
        .iter()
        .take(max)
        .map(|item| {
            let when = item.occurred_at.as_deref().unwrap_or("");
            let sep = if when.is_empty() { "" } else { ", " };
            format!("{} ({}{sep}{when})", item.title, kind_label(&item.kind))
        })
        .collect();
    let total = usize::try_from(digest.count)
        .unwrap_or(usize::MAX)
        .max(digest.items.len());
    if total > out.len() {
        out.push(format!("… and {} more", total - out.len()));
    }
    out
}

/// Seconds since the Unix epoch of an RFC 3339 timestamp (`2026-11-24T10:00:00Z`,
/// `…T10:00:00.123+02:00`); `None` when it does not parse.
pub fn rfc3339_to_unix(ts: &str) -> Option<i64> {
    let b = ts.trim().as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = b.get(from..from + len)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if b.get(4) != Some(&b'-')
        || b.get(7) != Some(&b'-')
        || !matches!(b.get(10), Some(b'T' | b't' | b' '))
        || b.get(13) != Some(&b':')
        || b.get(16) != Some(&b':')
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    let offset = match b.get(i) {
        Some(b'Z' | b'z') if b.len() == i + 1 => 0,
        Some(sign @ (b'+' | b'-')) if b.len() == i + 6 && b.get(i + 3) == Some(&b':') => {
            let secs = num(i + 1, 2)? * 3600 + num(i + 4, 2)? * 60;
            if *sign == b'+' { secs } else { -secs }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `s` safe inside CommonMark-style chat Markdown (Mattermost, Rocket.Chat, Discord):
/// formatting characters (and `#` starting a heading) are backslash-escaped, and `@` is followed by a zero-width space so
/// that text coming from a monitored target cannot mention `@channel`, `@here` or `@all`.
pub fn escape_markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut line_start = true;
    for (i, c) in s.char_indices() {
        match c {
            '\\' | '*' | '_' | '~' | '`' | '|' | '[' | ']' | '<' | '>' => {
                out.push('\\');
                out.push(c);
            }
            '#' if line_start && starts_heading(&s[i..]) => out.push_str("\\#"),
            '@' => out.push_str("@\u{200B}"),
            c => out.push(c),
        }
        line_start = c == '\n' || (line_start && c.is_whitespace());
    }
    out
}

/// `s` with a zero-width space after every `@`, so that text coming from a monitored target
/// cannot mention `@channel`, `@here`, `@all` or a user (for destinations without Markdown
/// escapes; [`escape_markdown`] does this too).
pub fn defuse_mentions(s: &str) -> String {
    s.replace('@', "@\u{200B}")
}

/// True when `rest` (starting at a `#` at the start of a line) is a Markdown heading marker:
/// one or more `#` followed by whitespace or the end.
fn starts_heading(rest: &str) -> bool {
    rest.trim_start_matches('#')
        .chars()
        .next()
        .is_none_or(char::is_whitespace)
}

/// Shortest fragment of a URL treated as a possible credential by [`url_secrets`].
const MIN_SECRET_CHARS: usize = 16;

/// The parts of `url` that may carry a credential and must not appear in error messages: the
/// user-info, and every path segment, query value and fragment of 16 characters or more (the
/// tokens of Slack, Discord, Teams, Google Chat and Telegram URLs).
pub fn url_secrets(url: &str) -> Vec<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let (authority, tail) = match rest.find(['/', '?', '#']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let mut out = Vec::new();
    if let Some((userinfo, _)) = authority.rsplit_once('@') {
        out.push(userinfo.to_string());
    }
    let parts = tail
        .split(['/', '?', '&', '#'])
        .map(|p| p.split_once('=').map_or(p, |(_, v)| v));
    out.extend(
        parts
            .filter(|p| p.chars().count() >= MIN_SECRET_CHARS)
            .map(str::to_string),
    );
    out
}

/// `text` with every occurrence of each non-empty secret replaced by `***` (longest first).
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut sorted: Vec<&String> = secrets.iter().filter(|s| !s.is_empty()).collect();
    sorted.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = text.to_string();
    for secret in sorted {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), "***");
        }
    }
    out
}

impl DeliveryError {
    /// The same error with the secrets removed from its reason (see [`redact`]).
    pub fn redact(self, secrets: &[String]) -> Self {
        match self {
            DeliveryError::Transient(r) => DeliveryError::Transient(redact(&r, secrets)),
            DeliveryError::Permanent(r) => DeliveryError::Permanent(redact(&r, secrets)),
        }
    }
}

/// Checks that `value`, the config field `field`, is an absolute `http://` or `https://` URL
/// with a host, and returns it without surrounding whitespace (unlike [`super::base_url`],
/// trailing slashes are kept: this is a complete endpoint, not a base to join paths to).
pub fn endpoint_url(field: &str, value: &str) -> Result<String, DeliveryError> {
    super::base_url(field, value)?;
    Ok(value.trim().to_string())
}

/// A complete example event document of `kind` (`incident.opened`, `incident.resolved`,
/// `test`, `digest`, …) as the host sends it, for plugin unit tests.
pub fn sample_event(kind: &str) -> serde_json::Value {
    let monitor = serde_json::json!({
        "id": 3, "name": "api", "type": "check", "plugin": "http", "tags": ["prod"],
        "url": "https://pharos.example/monitors/3"
    });
    let incident = |status: &str, resolved_at: Option<&str>| {
        serde_json::json!({
            "id": 7, "status": status, "severity": "down", "opened_at": "2026-11-24T09:58:00Z",
            "resolved_at": resolved_at, "acknowledged": false, "cause": "expected 200, got 503",
            "url": "https://pharos.example/incidents/7"
        })
    };
    let (status, severity, title, body) = match kind {
        "incident.resolved" => ("up", "info", "[UP] api", "api is up again after 12m 0s."),
        "test" => (
            "up",
            "info",
            "Pharos test alert",
            "This is a test notification from Pharos.",
        ),
        "digest" => (
            "down",
            "critical",
            "[DIGEST] 3 alerts",
            "3 alerts in the last 60 s.",
        ),
        _ => (
            "down",
            "critical",
            "[DOWN] api",
            "api is down: expected 200, got 503.",
        ),
    };
    let mut doc = serde_json::json!({
        "kind": kind,
        "id": format!("pharos-7-{kind}-1"),
        "occurred_at": if kind == "incident.resolved" { "2026-11-24T10:10:00Z" } else { "2026-11-24T10:00:00Z" },
        "status": status,
        "severity": severity,
        "title": title,
        "body": body,
        "dedup_key": "pharos-incident-7",
        "dashboard_url": "https://pharos.example/",
    });
    match kind {
        "test" => {
            doc["dedup_key"] = serde_json::Value::Null;
        }
        "digest" => {
            doc["dedup_key"] = serde_json::Value::Null;
            doc["digest"] = serde_json::json!({"count": 3, "window_secs": 60, "items": [
                {"kind": "incident.opened", "title": "[DOWN] api", "status": "down", "occurred_at": "2026-11-24T09:59:00Z"},
                {"kind": "incident.opened", "title": "[DOWN] web", "status": "down", "occurred_at": "2026-11-24T09:59:30Z"},
                {"kind": "incident.resolved", "title": "[UP] db", "status": "up", "occurred_at": "2026-11-24T09:59:45Z"}
            ]});
        }
        "incident.resolved" => {
            doc["monitor"] = monitor;
            doc["incident"] = incident("resolved", Some("2026-11-24T10:10:00Z"));
            doc["since"] = "2026-11-24T10:10:00Z".into();
        }
        _ => {
            doc["monitor"] = monitor;
            doc["incident"] = incident("open", None);
            doc["since"] = "2026-11-24T09:58:00Z".into();
            doc["cause"] = "expected 200, got 503".into();
        }
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn facts_follow_the_event() {
        let n = Notification::for_test(json!({
            "kind": "incident.opened", "status": "down", "cause": "expected 200, got 503",
            "since": "2026-11-24T09:58:00Z",
            "monitor": {"id": 3, "name": "api", "tags": ["prod", "eu"], "url": "http://p/m/3"},
            "incident": {"id": 7, "acknowledged": true, "url": "http://p/i/7"}
        }));
        assert_eq!(
            facts(&n.event),
            vec![
                ("Monitor", "api".to_string()),
                ("Status", "DOWN".to_string()),
                ("Severity", "critical".to_string()),
                ("Cause", "expected 200, got 503".to_string()),
                ("Since", "2026-11-24T09:58:00Z".to_string()),
                ("Incident", "#7 (acknowledged)".to_string()),
                ("Tags", "prod, eu".to_string()),
            ]
        );
        assert_eq!(link_label(&n.event), "Open incident");
        let resolved = Notification::for_test(json!({
            "kind": "incident.resolved", "status": "up",
            "incident": {"id": 7, "cause": "timeout", "opened_at": "2026-11-24T10:00:00Z",
                         "resolved_at": "2026-11-24T10:12:30Z"}
        }));
        assert_eq!(
            facts(&resolved.event),
            vec![
                ("Status", "UP".to_string()),
                ("Cause", "timeout".to_string()),
                ("Incident", "#7".to_string()),
                ("Duration", "12m 30s".to_string()),
            ]
        );
        assert_eq!(link_label(&resolved.event), "Open dashboard");
        assert!(facts(&Notification::for_test(json!({"kind": "test"})).event).is_empty());
        assert_eq!(kind_label("monitor.flapping"), "Monitor flapping");
        assert_eq!(kind_label("custom.kind"), "custom.kind");
        assert!(is_alert(&n));
        assert!(!is_alert(&resolved));
        assert!(!is_alert(&Notification::for_test(json!({"kind": "test"}))));
        assert!(!is_alert(&Notification::for_test(
            json!({"kind": "monitor.flapping_ended"})
        )));
    }

    #[test]
    fn durations_and_timestamps() {
        assert_eq!(duration_text(45), "45s");
        assert_eq!(duration_text(3 * 3600 + 5 * 60 + 9), "3h 5m");
        assert_eq!(duration_text(2 * 86_400 + 3600), "2d 1h");
        assert_eq!(duration_text(-5), "0s");
        assert_eq!(rfc3339_to_unix("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(rfc3339_to_unix("2026-11-24T10:00:00Z"), Some(1_795_514_400));
        assert_eq!(
            rfc3339_to_unix("2026-11-24T12:00:00.250+02:00"),
            Some(1_795_514_400)
        );
        assert_eq!(
            rfc3339_to_unix("2000-02-29T00:00:00-01:30"),
            Some(951_787_800)
        );
        for bad in [
            "",
            "2026-11-24",
            "2026-13-01T00:00:00Z",
            "2026-11-24T10:00:00",
            "x",
        ] {
            assert_eq!(rfc3339_to_unix(bad), None, "{bad}");
        }
    }

    #[test]
    fn digest_lines_are_capped() {
        let n = Notification::for_test(json!({"kind": "digest", "digest": {
        "count": 5, "window_secs": 60, "items": [
            {"kind": "incident.opened", "title": "[DOWN] a", "occurred_at": "2026-11-24T10:00:00Z"},
            {"kind": "incident.resolved", "title": "[UP] b"},
            {"kind": "incident.opened", "title": "[DOWN] c"}
        ]}}));
        assert_eq!(
            digest_lines(&n.event, 2),
            vec![
                "[DOWN] a (Incident opened, 2026-11-24T10:00:00Z)".to_string(),
                "[UP] b (Incident resolved)".to_string(),
                "… and 3 more".to_string(),
            ]
        );
        assert!(digest_lines(&Notification::for_test(json!({})).event, 5).is_empty());
    }

    #[test]
    fn samples_and_endpoint_urls() {
        for kind in ["incident.opened", "incident.resolved", "test", "digest"] {
            let n = Notification::for_test(sample_event(kind));
            assert_eq!(n.event.kind, kind);
            assert_eq!(n.test, kind == "test");
            assert!(!n.title.is_empty() && !n.body.is_empty());
        }
        let resolved = Notification::for_test(sample_event("incident.resolved"));
        assert!(facts(&resolved.event).contains(&("Duration", "12m 0s".to_string())));
        assert_eq!(
            endpoint_url("url", " https://h.example/hook/ ").unwrap(),
            "https://h.example/hook/"
        );
        assert!(endpoint_url("url", "h.example/hook").is_err());
    }

    #[test]
    fn markdown_is_escaped_and_mentions_defused() {
        assert_eq!(
            escape_markdown("*a* _b_ [x](y) @channel `c` #1"),
            "\\*a\\* \\_b\\_ \\[x\\](y) @\u{200B}channel \\`c\\` #1"
        );
        assert_eq!(
            escape_markdown("# big\n  ## also\n#7"),
            "\\# big\n  \\## also\n#7"
        );
        assert_eq!(escape_markdown("plain text, 503."), "plain text, 503.");
        assert_eq!(defuse_mentions("*hi* @all"), "*hi* @\u{200B}all");
    }

    #[test]
    fn secrets_are_redacted_from_errors() {
        let url = "https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXXXXXXXXXXXXX?x=1";
        assert_eq!(
            url_secrets(url),
            vec!["XXXXXXXXXXXXXXXXXXXXXXXX".to_string()]
        );
        let tg = "https://api.telegram.org/bot123456:ABCDEFGHIJKLMNOPQRSTUV/sendMessage";
        assert_eq!(
            url_secrets(tg),
            vec!["bot123456:ABCDEFGHIJKLMNOPQRSTUV".to_string()]
        );
        let gchat = "https://chat.googleapis.com/v1/spaces/AAAA/messages?key=AIzaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI&token=abc";
        assert_eq!(
            url_secrets(gchat),
            vec!["AIzaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI".to_string()]
        );
        assert_eq!(
            url_secrets("http://user:pass@h/x"),
            vec!["user:pass".to_string()]
        );
        let err = DeliveryError::Transient(format!("connect: HTTP exchange with {url} failed"));
        let red = err.redact(&url_secrets(url));
        assert_eq!(
            red.reason(),
            "connect: HTTP exchange with https://hooks.slack.com/services/T0000/B0000/***?x=1 failed"
        );
        assert!(red.is_transient());
        assert_eq!(
            redact("a-secret-b", &["secret".into(), String::new()]),
            "a-***-b"
        );
    }
}
