//! Turning the facts the incident engine stored with a notification into what a notifier
//! receives: a compact human title and body, and the full event document (see
//! `docs/notifiers.md`, "The event document").

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// A notification ready for a notifier plugin.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// e.g. `[DOWN] api.example.com`.
    pub title: String,
    /// Plain text: what, since when, why, where to look.
    pub body: String,
    /// The event document as JSON text.
    pub event: String,
}

/// Where the dashboard lives, for links (`None` renders no links).
#[derive(Debug, Clone, Default)]
pub struct Links {
    base: Option<String>,
}

impl Links {
    /// Links under `public_url` (e.g. `https://pharos.example.com`).
    pub fn new(public_url: &str) -> Self {
        let base = public_url.trim_end_matches('/');
        Links {
            base: (!base.is_empty()).then(|| base.to_string()),
        }
    }

    fn at(&self, path: &str) -> Option<String> {
        self.base.as_ref().map(|b| format!("{b}{path}"))
    }
}

/// A time stored as epoch milliseconds, as RFC 3339.
fn time_of(v: &Value) -> Option<DateTime<Utc>> {
    v.as_i64().and_then(DateTime::from_timestamp_millis)
}

fn rfc3339(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| {
        Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    })
}

/// `2026-11-24 10:00:05 UTC`.
fn human_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A duration in words: `45 s`, `12 min`, `3 h 5 min`, `2 d 4 h`.
pub fn human_duration(d: chrono::Duration) -> String {
    let s = d.num_seconds().max(0);
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min", s / 60),
        3600..=86_399 => {
            let m = (s % 3600) / 60;
            if m == 0 {
                format!("{} h", s / 3600)
            } else {
                format!("{} h {m} min", s / 3600)
            }
        }
        _ => {
            let h = (s % 86_400) / 3600;
            if h == 0 {
                format!("{} d", s / 86_400)
            } else {
                format!("{} d {h} h", s / 86_400)
            }
        }
    }
}

fn upper(status: &str) -> String {
    status.to_ascii_uppercase()
}

/// Renders a stored notification: `event` is the outbox row's event (`opened`, …, `digest`),
/// `facts` its payload, `key` its idempotency key.
pub fn render(
    event: &str,
    facts: &Value,
    key: &str,
    now: DateTime<Utc>,
    links: &Links,
) -> Rendered {
    let kind = facts["kind"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| default_kind(event).to_string());
    if kind == "digest" {
        return render_digest(facts, key, now, links);
    }
    let monitor = &facts["monitor"];
    let name = monitor["name"].as_str().unwrap_or("monitor");
    let monitor_id = monitor["id"].as_i64();
    let incident = &facts["incident"];
    let incident_id = incident["id"].as_i64();
    let status = facts["status"].as_str().unwrap_or("down");
    let severity_word = incident["severity"].as_str().unwrap_or(status);
    let occurred = time_of(&facts["occurred_at"]).unwrap_or(now);
    let since = time_of(&facts["since"]).or_else(|| time_of(&incident["opened_at"]));
    let opened = time_of(&incident["opened_at"]);
    let resolved = time_of(&incident["resolved_at"]);
    let cause = facts["cause"]
        .as_str()
        .or_else(|| incident["cause"].as_str())
        .unwrap_or("")
        .trim();
    let monitor_url = monitor_id.and_then(|id| links.at(&format!("/monitors/{id}")));
    let incident_url = incident_id.and_then(|id| links.at(&format!("/incidents/{id}")));

    let (title, mut lines) = match kind.as_str() {
        "incident.opened" => (
            format!("[{}] {name}", upper(severity_word)),
            vec![format!(
                "{name} is {} since {}.",
                upper(severity_word),
                human_time(opened.or(since).unwrap_or(occurred))
            )],
        ),
        "incident.escalated" => (
            format!("[{}] {name} (was degraded)", upper(severity_word)),
            vec![format!(
                "{name} got worse: now {} (degraded since {}).",
                upper(severity_word),
                human_time(opened.unwrap_or(occurred))
            )],
        ),
        "incident.resolved" => {
            let from = opened.unwrap_or(occurred);
            let to = resolved.unwrap_or(occurred);
            (
                format!("[RESOLVED] {name}"),
                vec![format!(
                    "{name} is UP again after {} {} (since {}).",
                    human_duration(to - from),
                    severity_word,
                    human_time(from)
                )],
            )
        }
        "incident.reminder" => {
            let from = opened.unwrap_or(occurred);
            (
                format!("[STILL {}] {name}", upper(severity_word)),
                vec![format!(
                    "{name} has been {} for {} (since {}) and nobody acknowledged it yet.",
                    upper(severity_word),
                    human_duration(occurred - from),
                    human_time(from)
                )],
            )
        }
        "monitor.flapping" => (
            format!("[FLAPPING] {name}"),
            vec![format!(
                "{name} keeps changing state (now {}). Open/resolve notifications are paused \
                 until it settles.",
                upper(status)
            )],
        ),
        "monitor.flapping_ended" => (
            format!("[STABLE] {name} is {}", upper(status)),
            vec![format!(
                "{name} stopped flapping; it is {} now. Notifications resume.",
                upper(status)
            )],
        ),
        "test" => (
            "[TEST] Pharos test alert".to_string(),
            vec![
                "This is a test alert from Pharos. If you can read this, the channel works."
                    .to_string(),
            ],
        ),
        other => (
            format!("[{}] {name}", upper(status)),
            vec![format!("{name}: {other}")],
        ),
    };
    if !cause.is_empty() && kind != "incident.resolved" && kind != "test" {
        lines.push(format!("Cause: {cause}"));
    }
    match (incident_id, incident_url.as_ref().or(monitor_url.as_ref())) {
        (Some(id), Some(url)) => lines.push(format!("Incident #{id}: {url}")),
        (Some(id), None) => lines.push(format!("Incident #{id}")),
        (None, Some(url)) => lines.push(url.clone()),
        (None, None) => {}
    }
    let body = lines.join("\n");
    let severity = severity_level(&kind, status);
    let incident_doc = if incident.is_object() {
        json!({
            "id": incident_id,
            "status": incident["status"],
            "severity": incident["severity"],
            "opened_at": rfc3339(opened),
            "resolved_at": rfc3339(resolved),
            "acknowledged": incident["acknowledged"].as_bool().unwrap_or(false),
            "cause": incident["cause"],
            "url": incident_url,
        })
    } else {
        Value::Null
    };
    let monitor_doc = if monitor.is_object() {
        json!({
            "id": monitor_id,
            "name": name,
            "type": monitor["type"],
            "plugin": monitor["plugin"],
            "tags": monitor["tags"].as_array().cloned().unwrap_or_default(),
            "url": monitor_url,
        })
    } else {
        Value::Null
    };
    let dedup_key = match (incident_id, monitor_id) {
        (Some(id), _) => format!("pharos-incident-{id}"),
        (None, Some(id)) if kind.starts_with("monitor.flapping") => {
            format!("pharos-monitor-{id}-flapping")
        }
        _ => format!("pharos-{key}"),
    };
    let event = json!({
        "kind": kind,
        "id": key,
        "occurred_at": rfc3339(Some(occurred)),
        "status": status,
        "severity": severity,
        "title": title,
        "body": body,
        "monitor": monitor_doc,
        "incident": incident_doc,
        "since": rfc3339(since),
        "cause": if cause.is_empty() { Value::Null } else { Value::String(cause.to_string()) },
        "dedup_key": dedup_key,
        "dashboard_url": links.at("/"),
        "digest": Value::Null,
    });
    Rendered {
        title,
        body,
        event: event.to_string(),
    }
}

/// The event kind of an outbox event name, for payloads written without one.
fn default_kind(event: &str) -> &'static str {
    match event {
        "opened" => "incident.opened",
        "escalated" => "incident.escalated",
        "resolved" => "incident.resolved",
        "reminder" => "incident.reminder",
        "flapping" => "monitor.flapping",
        "flapping_ended" => "monitor.flapping_ended",
        "digest" => "digest",
        _ => "test",
    }
}

/// `critical` for problems that are down, `warning` for degraded or flapping, `info` else.
fn severity_level(kind: &str, status: &str) -> &'static str {
    match kind {
        "incident.resolved" | "monitor.flapping_ended" | "test" | "digest" => "info",
        "monitor.flapping" => "warning",
        _ => match status {
            "down" | "error" => "critical",
            "degraded" => "warning",
            _ => "info",
        },
    }
}

/// A digest of held notifications: one line per event, oldest first.
fn render_digest(facts: &Value, key: &str, now: DateTime<Utc>, links: &Links) -> Rendered {
    let digest = &facts["digest"];
    let count = digest["count"].as_u64().unwrap_or(0);
    let window = digest["window_secs"].as_u64().unwrap_or(0);
    let mut items = Vec::new();
    let mut lines = vec![format!(
        "{count} notification(s) were held back by this channel's storm limit in the last {}:",
        human_duration(chrono::Duration::seconds(
            i64::try_from(window).unwrap_or(0)
        ))
    )];
    for item in digest["items"].as_array().into_iter().flatten() {
        let event = item["event"].as_str().unwrap_or("");
        let created = time_of(&item["created_at"]).unwrap_or(now);
        let one = render(event, &item["facts"], key, created, links);
        lines.push(format!("- {} {}", created.format("%H:%M:%S"), one.title));
        items.push(json!({
            "kind": item["facts"]["kind"].as_str().unwrap_or(default_kind(event)),
            "title": one.title,
            "status": item["facts"]["status"],
            "occurred_at": rfc3339(Some(created)),
        }));
    }
    let title = format!("[DIGEST] {count} alerts held back");
    let body = lines.join("\n");
    let occurred = time_of(&facts["occurred_at"]).unwrap_or(now);
    let event = json!({
        "kind": "digest",
        "id": key,
        "occurred_at": rfc3339(Some(occurred)),
        "status": Value::Null,
        "severity": "info",
        "title": title,
        "body": body,
        "monitor": Value::Null,
        "incident": Value::Null,
        "since": Value::Null,
        "cause": Value::Null,
        "dedup_key": format!("pharos-{key}"),
        "dashboard_url": links.at("/"),
        "digest": {"count": count, "window_secs": window, "items": items},
    });
    Rendered {
        title,
        body,
        event: event.to_string(),
    }
}

/// The test alert sent by `POST /channels/{id}/test`.
pub fn test_alert(channel_name: &str, key: &str, now: DateTime<Utc>, links: &Links) -> Rendered {
    let mut r = render(
        "test",
        &json!({"kind": "test", "status": "up", "occurred_at": now.timestamp_millis()}),
        key,
        now,
        links,
    );
    r.body = format!(
        "This is a test alert from Pharos for channel \"{channel_name}\". If you can read \
         this, the channel works."
    );
    let mut event: Value = serde_json::from_str(&r.event).unwrap_or(Value::Null);
    event["body"] = Value::String(r.body.clone());
    event["channel"] = Value::String(channel_name.to_string());
    r.event = event.to_string();
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn facts(kind: &str) -> Value {
        json!({
            "kind": kind,
            "occurred_at": at("2026-11-24T10:05:00Z").timestamp_millis(),
            "monitor": {"id": 3, "name": "api", "type": "check", "plugin": "http", "tags": ["prod"]},
            "status": if kind == "incident.resolved" { "up" } else { "down" },
            "since": at("2026-11-24T10:00:00Z").timestamp_millis(),
            "cause": "expected 200, got 503",
            "incident": {"id": 7, "status": "open", "severity": "down",
                "opened_at": at("2026-11-24T10:00:00Z").timestamp_millis(),
                "resolved_at": if kind == "incident.resolved" { json!(at("2026-11-24T10:12:30Z").timestamp_millis()) } else { Value::Null },
                "acknowledged": false, "cause": "expected 200, got 503"}
        })
    }

    #[test]
    fn opened_has_title_body_and_links() {
        let links = Links::new("https://pharos.example/");
        let r = render(
            "opened",
            &facts("incident.opened"),
            "k1",
            Utc::now(),
            &links,
        );
        assert_eq!(r.title, "[DOWN] api");
        assert_eq!(
            r.body,
            "api is DOWN since 2026-11-24 10:00:00 UTC.\nCause: expected 200, got 503\n\
             Incident #7: https://pharos.example/incidents/7"
        );
        let e: Value = serde_json::from_str(&r.event).unwrap();
        assert_eq!(e["kind"], "incident.opened");
        assert_eq!(e["id"], "k1");
        assert_eq!(e["severity"], "critical");
        assert_eq!(e["dedup_key"], "pharos-incident-7");
        assert_eq!(e["monitor"]["url"], "https://pharos.example/monitors/3");
        assert_eq!(e["incident"]["opened_at"], "2026-11-24T10:00:00Z");
        assert_eq!(e["since"], "2026-11-24T10:00:00Z");
        assert_eq!(e["dashboard_url"], "https://pharos.example/");
    }

    #[test]
    fn resolved_says_how_long() {
        let r = render(
            "resolved",
            &facts("incident.resolved"),
            "k2",
            Utc::now(),
            &Links::default(),
        );
        assert_eq!(r.title, "[RESOLVED] api");
        assert!(
            r.body.starts_with("api is UP again after 12 min down"),
            "{}",
            r.body
        );
        assert!(!r.body.contains("Cause"));
        let e: Value = serde_json::from_str(&r.event).unwrap();
        assert_eq!(e["severity"], "info");
        assert_eq!(e["monitor"]["url"], Value::Null);
    }

    #[test]
    fn other_kinds() {
        let links = Links::default();
        let r = render(
            "reminder",
            &facts("incident.reminder"),
            "k",
            Utc::now(),
            &links,
        );
        assert_eq!(r.title, "[STILL DOWN] api");
        assert!(r.body.contains("for 5 min"), "{}", r.body);
        let mut f = facts("monitor.flapping");
        f["incident"] = Value::Null;
        let r = render("flapping", &f, "k", Utc::now(), &links);
        assert_eq!(r.title, "[FLAPPING] api");
        let e: Value = serde_json::from_str(&r.event).unwrap();
        assert_eq!(e["dedup_key"], "pharos-monitor-3-flapping");
        assert_eq!(e["severity"], "warning");
        let t = test_alert("ops", "t1", Utc::now(), &links);
        assert_eq!(t.title, "[TEST] Pharos test alert");
        assert!(t.body.contains("\"ops\""));
        let e: Value = serde_json::from_str(&t.event).unwrap();
        assert_eq!(e["kind"], "test");
        assert_eq!(e["channel"], "ops");
    }

    #[test]
    fn digest_lists_items() {
        let facts = json!({"kind": "digest", "occurred_at": 0, "digest": {"count": 2, "window_secs": 300, "items": [
            {"event": "opened", "created_at": at("2026-11-24T10:00:01Z").timestamp_millis(), "facts": facts("incident.opened")},
            {"event": "resolved", "created_at": at("2026-11-24T10:00:02Z").timestamp_millis(), "facts": facts("incident.resolved")}
        ]}});
        let r = render("digest", &facts, "d1", Utc::now(), &Links::default());
        assert_eq!(r.title, "[DIGEST] 2 alerts held back");
        assert!(r.body.contains("- 10:00:01 [DOWN] api"), "{}", r.body);
        assert!(r.body.contains("- 10:00:02 [RESOLVED] api"), "{}", r.body);
        let e: Value = serde_json::from_str(&r.event).unwrap();
        assert_eq!(e["digest"]["count"], 2);
        assert_eq!(e["digest"]["items"][1]["kind"], "incident.resolved");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(chrono::Duration::seconds(5)), "5 s");
        assert_eq!(human_duration(chrono::Duration::seconds(750)), "12 min");
        assert_eq!(human_duration(chrono::Duration::seconds(3600)), "1 h");
        assert_eq!(
            human_duration(chrono::Duration::seconds(3600 * 3 + 300)),
            "3 h 5 min"
        );
        assert_eq!(
            human_duration(chrono::Duration::seconds(86_400 * 2 + 3600 * 4)),
            "2 d 4 h"
        );
        assert_eq!(human_duration(chrono::Duration::seconds(-3)), "0 s");
    }
}
