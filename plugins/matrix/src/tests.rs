use super::*;
use pharos_sdk::notify::render::sample_event;
use pharos_sdk::notify::run_notify;
use pharos_sdk::{CapError, mock};
use std::cell::RefCell;
use std::rc::Rc;

const TOKEN: &str = "syt_cGhhcm9z_AbCdEfGhIjKlMnOpQrSt_0a1b2c";

fn config(v: Value) -> Config {
    pharos_sdk::parse_config(&v.to_string()).unwrap()
}

fn base() -> Value {
    json!({"homeserver": "https://matrix.example.org/", "access_token": TOKEN, "room_id": "!AbCdEfGh:example.org"})
}

fn sent_json(req: &Request, txn: &str) -> Value {
    assert_eq!(req.method, "PUT");
    assert_eq!(
        req.url,
        format!(
            "https://matrix.example.org/_matrix/client/v3/rooms/%21AbCdEfGh%3Aexample.org/send/m.room.message/{txn}"
        )
    );
    let headers: Vec<(&str, &str)> = req
        .headers
        .iter()
        .map(|h| (h.name.as_str(), h.value.as_str()))
        .collect();
    assert_eq!(
        headers,
        vec![
            ("Content-Type", "application/json"),
            ("Authorization", &*format!("Bearer {TOKEN}"))
        ]
    );
    assert!(!req.follow_redirects && req.verify_tls);
    serde_json::from_slice(req.body.as_deref().unwrap()).unwrap()
}

#[test]
fn incident_opened_request_uses_the_idempotency_key_as_txn_id() {
    let n = Notification::for_test(sample_event("incident.opened"));
    let req = build_request(&config(base()), &n).unwrap();
    assert_eq!(
        sent_json(&req, "pharos-7-incident.opened-1"),
        json!({
            "msgtype": "m.text",
            "body": "[DOWN] api\napi is down: expected 200, got 503.\nMonitor: api\nStatus: DOWN\nSeverity: critical\nCause: expected 200, got 503\nSince: 2026-11-24T09:58:00Z\nIncident: #7\nTags: prod\nOpen incident: https://pharos.example/incidents/7",
            "format": "org.matrix.custom.html",
            "formatted_body": concat!(
                "<p><b><font data-mx-color=\"#d6333f\" color=\"#d6333f\">[DOWN] api</font></b></p>",
                "<p>api is down: expected 200, got 503.</p>",
                "<ul><li><b>Monitor:</b> api</li><li><b>Status:</b> DOWN</li><li><b>Severity:</b> critical</li>",
                "<li><b>Cause:</b> expected 200, got 503</li><li><b>Since:</b> 2026-11-24T09:58:00Z</li>",
                "<li><b>Incident:</b> #7</li><li><b>Tags:</b> prod</li></ul>",
                "<p><a href=\"https://pharos.example/incidents/7\">Open incident</a> · <i>Pharos · Incident opened</i></p>"
            ),
            "m.mentions": {}
        })
    );
}

#[test]
fn incident_resolved_request_as_notice() {
    let n = Notification::for_test(sample_event("incident.resolved"));
    let mut cfg = base();
    cfg["msgtype"] = json!("m.notice");
    let req = build_request(&config(cfg), &n).unwrap();
    assert_eq!(
        sent_json(&req, "pharos-7-incident.resolved-1"),
        json!({
            "msgtype": "m.notice",
            "body": "[UP] api\napi is up again after 12m 0s.\nMonitor: api\nStatus: UP\nCause: expected 200, got 503\nSince: 2026-11-24T10:10:00Z\nIncident: #7\nDuration: 12m 0s\nTags: prod\nOpen incident: https://pharos.example/incidents/7",
            "format": "org.matrix.custom.html",
            "formatted_body": concat!(
                "<p><b><font data-mx-color=\"#2eb886\" color=\"#2eb886\">[UP] api</font></b></p>",
                "<p>api is up again after 12m 0s.</p>",
                "<ul><li><b>Monitor:</b> api</li><li><b>Status:</b> UP</li>",
                "<li><b>Cause:</b> expected 200, got 503</li><li><b>Since:</b> 2026-11-24T10:10:00Z</li>",
                "<li><b>Incident:</b> #7</li><li><b>Duration:</b> 12m 0s</li><li><b>Tags:</b> prod</li></ul>",
                "<p><a href=\"https://pharos.example/incidents/7\">Open incident</a> · <i>Pharos · Incident resolved</i></p>"
            ),
            "m.mentions": {}
        })
    );
}

#[test]
fn test_alert_is_labelled_and_html_is_escaped() {
    let mut ev = sample_event("test");
    ev["title"] = json!("Room <check>");
    ev["body"] = json!("a & b\n<script>");
    ev["dashboard_url"] = Value::Null;
    let n = Notification::for_test(ev);
    let req = build_request(&config(base()), &n).unwrap();
    assert_eq!(
        sent_json(&req, "pharos-7-test-1"),
        json!({
            "msgtype": "m.text",
            "body": "[TEST] Room <check>\na & b\n<script>\nStatus: UP",
            "format": "org.matrix.custom.html",
            "formatted_body": concat!(
                "<p><b><font data-mx-color=\"#6b7280\" color=\"#6b7280\">[TEST] Room &lt;check&gt;</font></b></p>",
                "<p>a &amp; b<br>&lt;script&gt;</p>",
                "<ul><li><b>Status:</b> UP</li></ul>",
                "<p><i>Pharos · Test alert</i></p>"
            ),
            "m.mentions": {}
        })
    );
    let digest = Notification::for_test(sample_event("digest"));
    assert!(
        html_body(&digest).contains(
            "<ul><li>[DOWN] api (Incident opened, 2026-11-24T09:59:00Z)</li><li>[DOWN] web"
        )
    );
    assert!(plain_body(&digest).contains("\n• [UP] db (Incident resolved, 2026-11-24T09:59:45Z)"));
}

#[test]
fn receipt_is_the_event_id_and_answers_are_classified() {
    mock::reset();
    let script = Rc::new(RefCell::new(vec![
        Ok(http::Response::new(
            200,
            r#"{"event_id":"$YUwRidLecu:example.org"}"#,
        )),
        Ok(http::Response::new(
            429,
            r#"{"errcode":"M_LIMIT_EXCEEDED","error":"Too Many Requests","retry_after_ms":2000}"#,
        )),
        Ok(http::Response::new(502, "")),
        Ok(http::Response::new(
            401,
            r#"{"errcode":"M_UNKNOWN_TOKEN","error":"Invalid access token"}"#,
        )),
        Ok(http::Response::new(
            403,
            r#"{"errcode":"M_FORBIDDEN","error":"User not in room"}"#,
        )),
        Err(CapError::Protocol(format!("bad answer to Bearer {TOKEN}"))),
    ]));
    let s = script.clone();
    mock::http(move |_| s.borrow_mut().remove(0));
    let n = Notification::for_test(sample_event("incident.opened"));
    let cfg = base().to_string();
    assert_eq!(
        run_notify::<Matrix>(&cfg, &n).unwrap(),
        Receipt::new("HTTP 200").with_external_id("$YUwRidLecu:example.org")
    );
    let err = run_notify::<Matrix>(&cfg, &n).unwrap_err();
    assert!(
        err.is_transient() && err.reason().contains("M_LIMIT_EXCEEDED"),
        "{err}"
    );
    assert!(run_notify::<Matrix>(&cfg, &n).unwrap_err().is_transient());
    let err = run_notify::<Matrix>(&cfg, &n).unwrap_err();
    assert!(
        !err.is_transient() && err.reason().contains("M_UNKNOWN_TOKEN"),
        "{err}"
    );
    assert!(!run_notify::<Matrix>(&cfg, &n).unwrap_err().is_transient());
    let err = run_notify::<Matrix>(&cfg, &n).unwrap_err();
    assert!(err.is_transient() && !err.reason().contains(TOKEN), "{err}");
    mock::reset();
}

#[test]
fn config_errors_are_permanent() {
    let n = Notification::for_test(sample_event("incident.opened"));
    let mut alias = base();
    alias["room_id"] = json!("#ops:example.org");
    let mut server_name = base();
    server_name["homeserver"] = json!("example.org");
    for (bad, needle) in [
        (alias, "`room_id`"),
        (server_name, "`homeserver`"),
        (json!({"homeserver": "https://m"}), "access_token"),
        (
            json!({"homeserver": "https://m", "access_token": "t", "room_id": "!r", "msgtype": "m.emote"}),
            "msgtype",
        ),
    ] {
        let err = run_notify::<Matrix>(&bad.to_string(), &n).unwrap_err();
        assert!(
            !err.is_transient() && err.reason().contains(needle),
            "{err}"
        );
    }
}

#[test]
fn schema_accepts_the_examples_and_rejects_the_rest() {
    let s: Value = serde_json::from_str(SCHEMA).unwrap();
    jsonschema::meta::validate(&s).expect("schema is valid draft 2020-12");
    let v = jsonschema::validator_for(&s).unwrap();
    for example in s["examples"].as_array().unwrap() {
        assert!(v.is_valid(example), "{example}");
        let n = Notification::for_test(sample_event("test"));
        build_request(&config(example.clone()), &n).unwrap();
    }
    let mut alias = base();
    alias["room_id"] = json!("#ops:example.org");
    let mut emote = base();
    emote["msgtype"] = json!("m.emote");
    let mut extra = base();
    extra["extra"] = json!(1);
    for bad in [
        alias,
        emote,
        extra,
        json!({"homeserver": "https://m", "room_id": "!r"}),
    ] {
        assert!(!v.is_valid(&bad), "schema should reject {bad}");
    }
    assert_eq!(s["properties"]["access_token"]["x-secret"], true);
    assert_eq!(
        json!(config(base()).msgtype.as_str()),
        s["properties"]["msgtype"]["default"]
    );
    let info = notify::notify_plugin_info::<Matrix>();
    assert_eq!(
        (info.name.as_str(), info.version.as_str()),
        ("matrix", "0.1.0")
    );
    assert_eq!(info.capabilities, vec!["http".to_string()]);
    for (name, prop) in s["properties"].as_object().unwrap() {
        assert!(prop["description"].is_string(), "{name} has no description");
    }
}
