//! Native-only helpers for notifier unit tests: sample notifications shaped like the ones the
//! host sends (see `docs/notifiers.md`, "The event document"), and an HTTP mock that records
//! every request and answers from a script.

use std::cell::RefCell;
use std::rc::Rc;

use serde_json::json;

use super::Notification;
use crate::CapError;
use crate::http::{Request, Response};

/// `incident.opened`: monitor `api` (#3) is down, incident #7, with dashboard links.
pub fn opened() -> Notification {
    Notification::for_test(json!({
        "kind": "incident.opened",
        "id": "pharos-7-opened-41-c2",
        "occurred_at": "2026-11-24T10:00:00Z",
        "status": "down",
        "severity": "critical",
        "title": "[DOWN] api",
        "body": "api is DOWN since 2026-11-24 09:58:00 UTC.\nCause: expected 200, got 503\nIncident #7: https://pharos.example/incidents/7",
        "monitor": {"id": 3, "name": "api", "type": "check", "plugin": "http", "tags": ["prod"], "url": "https://pharos.example/monitors/3"},
        "incident": {"id": 7, "status": "open", "severity": "down", "opened_at": "2026-11-24T09:58:00Z", "resolved_at": null, "acknowledged": false, "cause": "expected 200, got 503", "url": "https://pharos.example/incidents/7"},
        "since": "2026-11-24T09:58:00Z",
        "cause": "expected 200, got 503",
        "dedup_key": "pharos-incident-7",
        "dashboard_url": "https://pharos.example/"
    }))
}

/// `incident.resolved`: incident #7 of monitor `api` resolved after 32 minutes.
pub fn resolved() -> Notification {
    Notification::for_test(json!({
        "kind": "incident.resolved",
        "id": "pharos-7-resolved-42-c2",
        "occurred_at": "2026-11-24T10:30:00Z",
        "status": "up",
        "severity": "info",
        "title": "[RESOLVED] api",
        "body": "api is UP again after 32 min down (since 2026-11-24 09:58:00 UTC).\nIncident #7: https://pharos.example/incidents/7",
        "monitor": {"id": 3, "name": "api", "type": "check", "plugin": "http", "tags": ["prod"], "url": "https://pharos.example/monitors/3"},
        "incident": {"id": 7, "status": "resolved", "severity": "down", "opened_at": "2026-11-24T09:58:00Z", "resolved_at": "2026-11-24T10:30:00Z", "acknowledged": false, "cause": "expected 200, got 503", "url": "https://pharos.example/incidents/7"},
        "since": "2026-11-24T09:58:00Z",
        "cause": null,
        "dedup_key": "pharos-incident-7",
        "dashboard_url": "https://pharos.example/"
    }))
}

/// `test`: the test alert of channel `ops`, without dashboard links.
pub fn test_alert() -> Notification {
    Notification::for_test(json!({
        "kind": "test",
        "id": "pharos-test-k9",
        "occurred_at": "2026-11-24T10:00:00Z",
        "status": "up",
        "severity": "info",
        "title": "[TEST] Pharos test alert",
        "body": "This is a test alert from Pharos for channel \"ops\". If you can read this, the channel works.",
        "dedup_key": "pharos-pharos-test-k9",
        "channel": "ops"
    }))
}

/// `monitor.flapping`: monitor `api` (#3) keeps changing state; no incident.
pub fn flapping() -> Notification {
    Notification::for_test(json!({
        "kind": "monitor.flapping",
        "id": "pharos-m3-flapping-1700-c2",
        "occurred_at": "2026-11-24T10:00:00Z",
        "status": "down",
        "severity": "warning",
        "title": "[FLAPPING] api",
        "body": "api keeps changing state (now DOWN). Open/resolve notifications are paused until it settles.\nhttps://pharos.example/monitors/3",
        "monitor": {"id": 3, "name": "api", "type": "check", "plugin": "http", "tags": ["prod"], "url": "https://pharos.example/monitors/3"},
        "dedup_key": "pharos-monitor-3-flapping",
        "dashboard_url": "https://pharos.example/"
    }))
}

/// `monitor.flapping_ended` with no open incident: monitor `api` (#3) settled on `up`.
pub fn flapping_ended() -> Notification {
    Notification::for_test(json!({
        "kind": "monitor.flapping_ended",
        "id": "pharos-m3-flapping_ended-1800-c2",
        "occurred_at": "2026-11-24T10:20:00Z",
        "status": "up",
        "severity": "info",
        "title": "[STABLE] api is UP",
        "body": "api stopped flapping; it is UP now. Notifications resume.\nhttps://pharos.example/monitors/3",
        "monitor": {"id": 3, "name": "api", "type": "check", "plugin": "http", "tags": ["prod"], "url": "https://pharos.example/monitors/3"},
        "dedup_key": "pharos-monitor-3-flapping",
        "dashboard_url": "https://pharos.example/"
    }))
}

/// `digest`: two events held back by storm control.
pub fn digest() -> Notification {
    Notification::for_test(json!({
        "kind": "digest",
        "id": "pharos-digest-5-c2",
        "occurred_at": "2026-11-24T10:01:00Z",
        "status": null,
        "severity": "info",
        "title": "[DIGEST] 2 alerts held back",
        "body": "2 notification(s) were held back by this channel's storm limit in the last 1 min:\n- 10:00:10 [DOWN] api\n- 10:00:20 [DOWN] web",
        "dedup_key": "pharos-pharos-digest-5-c2",
        "dashboard_url": "https://pharos.example/",
        "digest": {"count": 2, "window_secs": 60, "items": [
            {"kind": "incident.opened", "title": "[DOWN] api", "status": "down", "occurred_at": "2026-11-24T10:00:10Z"},
            {"kind": "incident.opened", "title": "[DOWN] web", "status": "down", "occurred_at": "2026-11-24T10:00:20Z"}
        ]}
    }))
}

/// Installs an HTTP mock on this thread that records every request and answers with
/// `replies` in order, then `200 {}`; returns the recorded requests.
pub fn record_http(replies: Vec<Result<Response, CapError>>) -> Rc<RefCell<Vec<Request>>> {
    crate::mock::reset();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let (recorded, mut replies) = (Rc::clone(&seen), replies.into_iter());
    crate::mock::http(move |req| {
        recorded.borrow_mut().push(req.clone());
        replies
            .next()
            .unwrap_or_else(|| Ok(Response::new(200, "{}")))
    });
    seen
}

/// The headers of `req` as `(name, value)` pairs, in order.
pub fn headers(req: &Request) -> Vec<(String, String)> {
    req.headers
        .iter()
        .map(|h| (h.name.clone(), h.value.clone()))
        .collect()
}

/// The body of `req` parsed as JSON (`null` when absent or not JSON).
pub fn json_body(req: &Request) -> serde_json::Value {
    req.body
        .as_deref()
        .and_then(|b| serde_json::from_slice(b).ok())
        .unwrap_or(serde_json::Value::Null)
}

/// The body of `req` parsed as `application/x-www-form-urlencoded` pairs, in order.
pub fn form_body(req: &Request) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(req.body.as_deref().unwrap_or_default()).into_owned();
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (form_decode(k), form_decode(v))
        })
        .collect()
}

/// Decodes one `application/x-www-form-urlencoded` component (`+` is a space).
fn form_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) {
                (Some(hi), Some(lo)) => {
                    out.push(hi * 16 + lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The value of one hex digit.
fn hex(b: Option<&u8>) -> Option<u8> {
    char::from(*b?)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// `(name, value)` pairs from string slices, to compare with [`headers`] and [`form_body`].
pub fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::{form_encode, post_form};

    #[test]
    fn samples_parse_and_forms_round_trip() {
        assert_eq!(
            opened().event.dedup_key.as_deref(),
            Some("pharos-incident-7")
        );
        assert!(resolved().event.is_resolved());
        assert!(test_alert().test);
        assert_eq!(flapping().event.severity(), "warning");
        assert_eq!(flapping_ended().event.kind, "monitor.flapping_ended");
        assert_eq!(digest().event.digest.map(|d| d.count), Some(2));
        let fields = [("To", "+15551234567"), ("Body", "a b&c=d é%")];
        let req = post_form("https://x/", &fields, &opened());
        assert_eq!(form_body(&req), pairs(&fields));
        assert_eq!(form_decode("%zz%4"), "%zz%4");
        assert!(form_encode(&fields).contains("%2B1555"));
        let seen = record_http(vec![Ok(Response::new(201, "{}"))]);
        let resp = crate::http::send(&req).unwrap();
        assert_eq!(resp.status, 201);
        assert_eq!(crate::http::send(&req).unwrap().status, 200);
        assert_eq!(seen.borrow().len(), 2);
        assert_eq!(headers(&seen.borrow()[0])[0].0, "Content-Type");
        assert_eq!(json_body(&seen.borrow()[0]), serde_json::Value::Null);
        crate::mock::reset();
    }
}
