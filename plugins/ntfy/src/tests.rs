use super::*;
use pharos_sdk::http::Response;
use pharos_sdk::notify::run_notify;
use pharos_sdk::notify::testing::{
    headers, json_body as body, opened, pairs, record_http as capture, resolved, test_alert,
};
use pharos_sdk::{CapError, mock};

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

#[test]
fn opened_incident_is_an_urgent_message_with_a_link() {
    let c = config(json!({
        "server": "https://ntfy.example.com/",
        "topic": "ops",
        "token": "tk_secret",
        "tags": ["pharos"]
    }));
    let req = build_request(&c, &opened()).unwrap();
    assert_eq!(req.method, "POST");
    assert_eq!(req.url, "https://ntfy.example.com/");
    assert_eq!(
        headers(&req),
        pairs(&[
            ("Content-Type", "application/json"),
            ("X-Pharos-Idempotency-Key", "pharos-7-opened-41-c2"),
            ("Authorization", "Bearer tk_secret"),
        ])
    );
    assert_eq!(
        body(&req),
        json!({
            "topic": "ops",
            "title": "[DOWN] api",
            "message": "api is DOWN since 2026-11-24 09:58:00 UTC.\nCause: expected 200, got 503\nIncident #7: https://pharos.example/incidents/7",
            "priority": 5,
            "tags": ["rotating_light", "pharos"],
            "click": "https://pharos.example/incidents/7",
            "actions": [{"action": "view", "label": "Open incident", "url": "https://pharos.example/incidents/7", "clear": true}]
        })
    );
    assert!(!req.follow_redirects);
    assert!(req.verify_tls);
    assert!(req.timeout_ms > 0 && req.timeout_ms <= 10_000);
}

#[test]
fn resolved_incident_is_a_default_priority_check_mark() {
    let c = config(json!({"topic": "ops", "username": "u", "password": "p", "verify_tls": false}));
    let req = build_request(&c, &resolved()).unwrap();
    assert_eq!(req.url, "https://ntfy.sh/");
    assert_eq!(
        headers(&req),
        pairs(&[
            ("Content-Type", "application/json"),
            ("X-Pharos-Idempotency-Key", "pharos-7-resolved-42-c2"),
            ("Authorization", "Basic dTpw"),
        ])
    );
    assert!(!req.verify_tls);
    assert_eq!(
        body(&req),
        json!({
            "topic": "ops",
            "title": "[RESOLVED] api",
            "message": "api is UP again after 32 min down (since 2026-11-24 09:58:00 UTC).\nIncident #7: https://pharos.example/incidents/7",
            "priority": 3,
            "tags": ["white_check_mark"],
            "click": "https://pharos.example/incidents/7",
            "actions": [{"action": "view", "label": "Open incident", "url": "https://pharos.example/incidents/7", "clear": true}]
        })
    );
}

#[test]
fn test_alert_is_labelled_and_has_no_link_without_a_dashboard() {
    let c = config(json!({"topic": "ops", "priority": 2}));
    let req = build_request(&c, &test_alert()).unwrap();
    assert_eq!(
        headers(&req),
        pairs(&[
            ("Content-Type", "application/json"),
            ("X-Pharos-Idempotency-Key", "pharos-test-k9"),
        ])
    );
    assert_eq!(
        body(&req),
        json!({
            "topic": "ops",
            "title": "[TEST] Pharos test alert",
            "message": "This is a test alert from Pharos for channel \"ops\". If you can read this, the channel works.",
            "priority": 2,
            "tags": ["information_source"]
        })
    );
    // A test alert whose title does not say so gets the label.
    let mut n = test_alert();
    n.title = "Hello".into();
    assert_eq!(
        body(&build_request(&c, &n).unwrap())["title"],
        "[TEST] Hello"
    );
}

#[test]
fn degraded_is_high_priority_and_long_bodies_are_cut() {
    let mut n = Notification::for_test(json!({
        "kind": "incident.opened", "status": "degraded", "title": "[DEGRADED] api",
        "body": "é".repeat(3000)
    }));
    n.event.severity = None;
    let c = config(json!({"topic": "ops"}));
    let b = body(&build_request(&c, &n).unwrap());
    assert_eq!(b["priority"], 4);
    assert_eq!(b["tags"], json!(["warning"]));
    let msg = b["message"].as_str().unwrap();
    assert!(
        msg.len() <= MAX_MESSAGE_BYTES && msg.ends_with('…'),
        "{}",
        msg.len()
    );
}

#[test]
fn answers_are_classified() {
    let c = json!({"topic": "ops", "token": "tk_very_secret"}).to_string();
    let seen = capture(vec![
        Ok(Response::new(
            200,
            r#"{"id":"sPs71M8A2T","time":1643935928,"event":"message","topic":"ops"}"#,
        )),
        Ok(Response::new(200, "not json")),
        Ok(Response::new(
            429,
            r#"{"code":42901,"http":429,"error":"limit reached"}"#,
        )),
        Ok(Response::new(507, "insufficient storage")),
        Ok(Response::new(
            403,
            r#"{"code":40301,"http":403,"error":"forbidden, token tk_very_secret"}"#,
        )),
        Err(CapError::Connect("connection refused".into())),
        Err(CapError::PolicyDenied("127.0.0.1 is private".into())),
    ]);
    let n = opened();
    assert_eq!(
        run_notify::<Ntfy>(&c, &n).unwrap(),
        Receipt::new("HTTP 200").with_external_id("sPs71M8A2T")
    );
    assert_eq!(
        run_notify::<Ntfy>(&c, &n).unwrap(),
        Receipt::new("HTTP 200")
    );
    let e = run_notify::<Ntfy>(&c, &n).unwrap_err();
    assert!(
        e.is_transient() && e.reason().starts_with("HTTP 429"),
        "{e}"
    );
    assert!(run_notify::<Ntfy>(&c, &n).unwrap_err().is_transient());
    let e = run_notify::<Ntfy>(&c, &n).unwrap_err();
    assert!(
        !e.is_transient() && e.reason().starts_with("HTTP 403"),
        "{e}"
    );
    assert!(!e.reason().contains("tk_very_secret"), "secret leaked: {e}");
    assert!(run_notify::<Ntfy>(&c, &n).unwrap_err().is_transient());
    assert!(!run_notify::<Ntfy>(&c, &n).unwrap_err().is_transient());
    assert_eq!(seen.borrow().len(), 7);
    mock::reset();
}

#[test]
fn config_errors_are_permanent_and_name_the_field() {
    let seen = capture(vec![]);
    let n = opened();
    let cases = [
        (json!({}), "topic"),
        (json!({"topic": "has space"}), "topic"),
        (json!({"topic": "ops", "server": "ntfy.sh"}), "server"),
        (json!({"topic": "ops", "priority": 6}), "priority"),
        (
            json!({"topic": "ops", "token": "t", "username": "u", "password": "p"}),
            "token",
        ),
        (json!({"topic": "ops", "username": "u"}), "password"),
        (json!({"topic": "ops", "password": "p"}), "username"),
        (json!({"topic": "ops", "tags": "x"}), "tags"),
        (json!({"topic": "ops", "bogus": 1}), "bogus"),
    ];
    for (doc, field) in cases {
        let err = run_notify::<Ntfy>(&doc.to_string(), &n).unwrap_err();
        assert!(!err.is_transient(), "{doc}: {err}");
        assert!(err.reason().contains(field), "{doc}: {err}");
    }
    assert!(seen.borrow().is_empty(), "nothing is sent for a bad config");
    mock::reset();
}

#[test]
fn schema_accepts_the_examples_and_rejects_what_the_plugin_rejects() {
    let v = validator();
    let s = schema();
    let examples = s["examples"].as_array().unwrap();
    assert!(!examples.is_empty());
    for doc in examples {
        assert!(v.is_valid(doc), "{doc}: {:?}", v.validate(doc));
        build_request(&config(doc.clone()), &opened()).unwrap();
    }
    for doc in [
        json!({}),
        json!({"topic": "has space"}),
        json!({"topic": "ops", "server": "ntfy.sh"}),
        json!({"topic": "ops", "priority": 0}),
        json!({"topic": "ops", "priority": 6}),
        json!({"topic": "ops", "token": "t", "username": "u", "password": "p"}),
        json!({"topic": "ops", "username": "u"}),
        json!({"topic": "ops", "password": "p"}),
        json!({"topic": "ops", "bogus": 1}),
    ] {
        assert!(!v.is_valid(&doc), "schema should reject {doc}");
        let rejected = pharos_sdk::parse_config::<Config>(&doc.to_string())
            .map_err(|e| e.to_string())
            .and_then(|c| build_request(&c, &opened()).map_err(|e| e.to_string()));
        assert!(rejected.is_err(), "plugin should reject {doc}");
    }
    let c = config(json!({"topic": "ops"}));
    let p = &s["properties"];
    assert_eq!(json!(c.server), p["server"]["default"]);
    assert_eq!(json!(c.verify_tls), p["verify_tls"]["default"]);
    assert_eq!(json!(c.tags), p["tags"]["default"]);
    for secret in ["token", "password"] {
        assert_eq!(p[secret]["x-secret"], true, "{secret}");
    }
}

#[test]
fn describe() {
    let info = pharos_sdk::notify::notify_plugin_info::<Ntfy>();
    assert_eq!(
        (info.name.as_str(), info.version.as_str()),
        ("ntfy", "0.1.0")
    );
    assert_eq!(info.capabilities, vec!["http".to_string()]);
    let schema: Value = serde_json::from_str(&info.config_schema).unwrap();
    assert_eq!(schema["additionalProperties"], false);
    for (name, prop) in schema["properties"].as_object().unwrap() {
        assert!(prop["description"].is_string(), "{name} has no description");
    }
}
