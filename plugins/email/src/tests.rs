use super::*;
use pharos_sdk::CapError;
use pharos_sdk::mock;
use pharos_sdk::notify::run_notify;
use pharos_sdk::notify::testing::{digest, opened, resolved, test_alert};
use pharos_sdk::serde_json::{self, Value, json};
use pharos_sdk::smtp::{Rejection, SendError, Sent};
use std::cell::RefCell;
use std::rc::Rc;

fn schema() -> Value {
    serde_json::from_str(SCHEMA).expect("schema.json is JSON")
}

fn validator() -> jsonschema::Validator {
    jsonschema::meta::validate(&schema()).expect("schema is valid draft 2020-12");
    jsonschema::validator_for(&schema()).unwrap()
}

fn config(v: Value) -> Config {
    pharos_sdk::parse_config(&v.to_string()).unwrap()
}

fn base() -> Value {
    json!({
        "host": "smtp.example.com",
        "username": "alerts@example.com",
        "password": "app-password",
        "from": "Pharos <alerts@example.com>",
        "to": ["oncall@example.com", "ops@example.com"],
        "subject_prefix": "[Pharos]"
    })
}

fn with(extra: Value) -> Value {
    let mut doc = base();
    for (k, v) in extra.as_object().unwrap() {
        doc[k] = v.clone();
    }
    doc
}

fn header_pairs(m: &Message) -> Vec<(String, String)> {
    m.headers
        .iter()
        .map(|h| (h.name.clone(), h.value.clone()))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

type Captured = Rc<RefCell<Vec<(Server, Message)>>>;

/// Records what is sent and answers with `replies`, then a 250.
fn capture(replies: Vec<Result<Sent, SendError>>) -> Captured {
    mock::reset();
    let seen: Captured = Rc::new(RefCell::new(Vec::new()));
    let (s, mut replies) = (seen.clone(), replies.into_iter());
    mock::smtp(move |server, message| {
        s.borrow_mut().push((server.clone(), message.clone()));
        replies.next().unwrap_or_else(|| {
            Ok(Sent {
                reply: "250 2.0.0 Ok: queued".into(),
                message_id: "<x@pharos>".into(),
            })
        })
    });
    seen
}

#[test]
fn opened_incident_is_one_message_with_a_stable_message_id() {
    let c = config(base());
    let n = opened();
    let s = server(&c, &n).unwrap();
    assert_eq!(s.host, "smtp.example.com");
    assert_eq!(s.port, 587);
    assert!(matches!(s.security, smtp::Security::Starttls));
    assert_eq!(s.username.as_deref(), Some("alerts@example.com"));
    assert_eq!(s.password.as_deref(), Some("app-password"));
    assert!(s.verify_tls);
    assert!(s.timeout_ms > 0 && s.timeout_ms <= SMTP_TIMEOUT_MS);

    let m = build_message(&c, &n).unwrap();
    assert_eq!(m.from, "Pharos <alerts@example.com>");
    assert_eq!(m.to, vec!["oncall@example.com", "ops@example.com"]);
    assert_eq!(m.subject, "[Pharos] [DOWN] api");
    assert_eq!(
        m.body,
        "api is DOWN since 2026-11-24 09:58:00 UTC.\nCause: expected 200, got 503\nIncident #7: https://pharos.example/incidents/7\n\n-- \nSent by Pharos (Incident opened).\n"
    );
    assert_eq!(
        header_pairs(&m),
        pairs(&[
            ("Message-ID", "<pharos-7-opened-41-c2@pharos>"),
            ("X-Pharos-Event", "incident.opened"),
            ("X-Pharos-Severity", "critical"),
            ("Auto-Submitted", "auto-generated"),
            ("References", "<pharos-incident-7@pharos>"),
            ("Importance", "high"),
            ("X-Priority", "1"),
        ])
    );
    let html = m.html_body.unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert!(html.contains("border-left:6px solid #d6333f"), "{html}");
    assert!(
        html.contains("<h2 style=\"margin:8px 0;\">[DOWN] api</h2>"),
        "{html}"
    );
    assert!(
        html.contains(">Cause</th><td>expected 200, got 503</td>"),
        "{html}"
    );
    assert!(html.contains(">Incident</th><td>#7</td>"), "{html}");
    assert!(
        html.contains("<a href=\"https://pharos.example/incidents/7\" style=\"display:inline-block;padding:8px 14px;background:#d6333f;"),
        "{html}"
    );
    assert!(html.contains(">Open incident</a>"), "{html}");
    assert!(!html.contains("Test alert"), "{html}");
}

#[test]
fn resolved_incident_threads_with_the_opening_and_is_not_important() {
    let c = config(with(json!({"security": "tls", "subject_prefix": ""})));
    let n = resolved();
    assert_eq!(server(&c, &n).unwrap().port, 465);
    let m = build_message(&c, &n).unwrap();
    assert_eq!(m.subject, "[RESOLVED] api");
    assert_eq!(
        m.body,
        "api is UP again after 32 min down (since 2026-11-24 09:58:00 UTC).\nIncident #7: https://pharos.example/incidents/7\n\n-- \nSent by Pharos (Incident resolved).\n"
    );
    assert_eq!(
        header_pairs(&m),
        pairs(&[
            ("Message-ID", "<pharos-7-resolved-42-c2@pharos>"),
            ("X-Pharos-Event", "incident.resolved"),
            ("X-Pharos-Severity", "info"),
            ("Auto-Submitted", "auto-generated"),
            ("References", "<pharos-incident-7@pharos>"),
        ])
    );
    let html = m.html_body.unwrap();
    assert!(html.contains("border-left:6px solid #2eb886"), "{html}");
    assert!(html.contains(">Duration</th><td>32m 0s</td>"), "{html}");
}

#[test]
fn test_alert_is_labelled() {
    let c = config(with(json!({"security": "none"})));
    let c = Config {
        username: None,
        password: None,
        ..c
    };
    let n = test_alert();
    let s = server(&c, &n).unwrap();
    assert_eq!(
        (s.port, s.username.is_none(), s.password.is_none()),
        (25, true, true)
    );
    assert!(matches!(s.security, smtp::Security::None));
    let m = build_message(&c, &n).unwrap();
    assert_eq!(m.subject, "[Pharos] [TEST] Pharos test alert");
    assert_eq!(
        m.body,
        "This is a test alert from Pharos for channel \"ops\". If you can read this, the channel works.\n\n-- \nTest alert sent by Pharos; nothing is wrong.\n"
    );
    assert_eq!(
        header_pairs(&m),
        pairs(&[
            ("Message-ID", "<pharos-test-k9@pharos>"),
            ("X-Pharos-Event", "test"),
            ("X-Pharos-Severity", "info"),
            ("Auto-Submitted", "auto-generated"),
        ])
    );
    let html = m.html_body.unwrap();
    assert!(html.contains("<strong>Test alert</strong>"), "{html}");
    assert!(html.contains("&quot;ops&quot;"), "{html}");
    assert!(
        !html.contains("<a href"),
        "no link without a dashboard: {html}"
    );
}

#[test]
fn html_escapes_everything_from_the_event() {
    let mut n = opened();
    n.title = "<script>alert(1)</script>".into();
    n.body = "a & b <img src=x onerror=alert(1)>".into();
    n.event.cause = Some("\"quoted\" & <tag>".into());
    if let Some(i) = n.event.incident.as_mut() {
        i.url = Some("javascript:alert(1)".into());
    }
    let html = html::render(&n);
    assert!(
        !html.contains("<script>") && !html.contains("<img"),
        "{html}"
    );
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(
        html.contains("a &amp; b &lt;img src=x onerror=alert(1)&gt;"),
        "{html}"
    );
    assert!(
        html.contains("&quot;quoted&quot; &amp; &lt;tag&gt;"),
        "{html}"
    );
    assert!(!html.contains("javascript:"), "{html}");
    // The plain part keeps the text as it is.
    let m = build_message(&config(base()), &n).unwrap();
    assert!(m.body.starts_with("a & b <img"));
}

#[test]
fn digest_and_odd_idempotency_keys() {
    let m = build_message(&config(base()), &digest()).unwrap();
    assert!(m.body.contains("- 10:00:20 [DOWN] web"), "{}", m.body);
    assert!(
        m.body.contains("Open dashboard: https://pharos.example/"),
        "{}",
        m.body
    );
    assert!(!m.headers.iter().any(|h| h.name == "References"));
    assert_eq!(message_id("a b<c>@d"), "<a-b-c--d@pharos>");
    assert_eq!(message_id(""), "<pharos@pharos>");
    assert!(message_id(&"k".repeat(400)).len() < 250);
}

#[test]
fn smtp_replies_are_classified() {
    let cfg = base().to_string();
    let n = opened();
    let seen = capture(vec![
        Ok(Sent {
            reply: "250 2.0.0 Ok: queued as 4F2A1".into(),
            message_id: "<pharos-7-opened-41-c2@pharos>".into(),
        }),
        Err(SendError::Rejected(Rejection {
            code: 451,
            message: "4.7.1 Greylisted, try again later".into(),
        })),
        Err(SendError::Rejected(Rejection {
            code: 550,
            message: "5.1.1 <oncall@example.com>: Recipient address rejected".into(),
        })),
        Err(SendError::Rejected(Rejection {
            code: 535,
            message: "5.7.8 Authentication failed for app-password".into(),
        })),
        Err(SendError::Cap(CapError::Tls(
            "certificate has expired".into(),
        ))),
        Err(SendError::Cap(CapError::PolicyDenied(
            "10.0.0.5 is private".into(),
        ))),
    ]);
    assert_eq!(
        run_notify::<Email>(&cfg, &n).unwrap(),
        Receipt::new("250 2.0.0 Ok: queued as 4F2A1")
            .with_external_id("<pharos-7-opened-41-c2@pharos>")
    );
    let e = run_notify::<Email>(&cfg, &n).unwrap_err();
    assert!(
        e.is_transient() && e.reason().starts_with("SMTP 451"),
        "{e}"
    );
    let e = run_notify::<Email>(&cfg, &n).unwrap_err();
    assert!(
        !e.is_transient() && e.reason().starts_with("SMTP 550"),
        "{e}"
    );
    let e = run_notify::<Email>(&cfg, &n).unwrap_err();
    assert!(
        !e.is_transient() && !e.reason().contains("app-password"),
        "{e}"
    );
    assert!(run_notify::<Email>(&cfg, &n).unwrap_err().is_transient());
    assert!(!run_notify::<Email>(&cfg, &n).unwrap_err().is_transient());
    let sent = seen.borrow();
    assert_eq!(sent.len(), 6);
    // Every attempt of one notification is the same message.
    assert!(
        sent.iter()
            .all(|(_, m)| m.headers[0].value == "<pharos-7-opened-41-c2@pharos>")
    );
    drop(sent);
    mock::reset();
}

#[test]
fn config_errors_are_permanent_and_name_the_field() {
    let seen = capture(vec![]);
    for (doc, field) in [
        (json!({"from": "a@b", "to": ["c@d"]}), "host"),
        (with(json!({"host": "smtp://mail.example.com"})), "host"),
        (with(json!({"port": 0})), "port"),
        (with(json!({"port": 70000})), "port"),
        (with(json!({"security": "ssl"})), "security"),
        (with(json!({"from": "nobody"})), "from"),
        (with(json!({"to": []})), "to"),
        (with(json!({"to": ["ok@example.com", "a@b, c@d"]})), "to[1]"),
        (
            with(json!({"subject_prefix": "a\nBcc: x@y"})),
            "subject_prefix",
        ),
        (with(json!({"cc": ["x@y"]})), "cc"),
    ] {
        let err = run_notify::<Email>(&doc.to_string(), &opened()).unwrap_err();
        assert!(!err.is_transient(), "{doc}: {err}");
        assert!(err.reason().contains(field), "{doc}: {err}");
    }
    let mut no_pass = base();
    no_pass.as_object_mut().unwrap().remove("password");
    let err = run_notify::<Email>(&no_pass.to_string(), &opened()).unwrap_err();
    assert!(err.reason().contains("password"), "{err}");
    assert!(seen.borrow().is_empty());
    mock::reset();
}

#[test]
fn schema_accepts_the_examples_and_rejects_what_the_plugin_rejects() {
    let v = validator();
    let s = schema();
    for doc in s["examples"].as_array().unwrap() {
        assert!(v.is_valid(doc), "{doc}: {:?}", v.validate(doc));
        let c = config(doc.clone());
        server(&c, &opened()).unwrap();
        build_message(&c, &opened()).unwrap();
    }
    let mut no_pass = base();
    no_pass.as_object_mut().unwrap().remove("password");
    for doc in [
        json!({"from": "a@b", "to": ["c@d"]}),
        with(json!({"host": "smtp://mail.example.com"})),
        with(json!({"port": 0})),
        with(json!({"security": "ssl"})),
        with(json!({"from": "nobody"})),
        with(json!({"to": []})),
        with(json!({"to": ["a@b, c@d"]})),
        with(json!({"subject_prefix": "a\nBcc: x@y"})),
        with(json!({"cc": ["x@y"]})),
        no_pass,
    ] {
        assert!(!v.is_valid(&doc), "schema should reject {doc}");
        let rejected = pharos_sdk::parse_config::<Config>(&doc.to_string())
            .map_err(|e| e.to_string())
            .and_then(|c| {
                server(&c, &opened())
                    .and_then(|_| build_message(&c, &opened()))
                    .map_err(|e| e.to_string())
            });
        assert!(rejected.is_err(), "plugin should reject {doc}");
    }
    let c = config(base());
    let p = &s["properties"];
    assert_eq!(p["security"]["default"], "starttls");
    assert_eq!(c.security, Security::Starttls);
    assert_eq!(json!(c.verify_tls), p["verify_tls"]["default"]);
    assert_eq!(
        json!(config(with(json!({"subject_prefix": ""}))).subject_prefix),
        p["subject_prefix"]["default"]
    );
    assert_eq!(p["password"]["x-secret"], true);
}

#[test]
fn describe() {
    let info = pharos_sdk::notify::notify_plugin_info::<Email>();
    assert_eq!(
        (info.name.as_str(), info.version.as_str()),
        ("email", "0.1.0")
    );
    assert_eq!(info.capabilities, vec!["smtp".to_string()]);
    let schema: Value = serde_json::from_str(&info.config_schema).unwrap();
    assert_eq!(schema["additionalProperties"], false);
    for (name, prop) in schema["properties"].as_object().unwrap() {
        assert!(prop["description"].is_string(), "{name} has no description");
    }
}
