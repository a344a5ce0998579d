use super::*;
use pharos_sdk::http::Response;
use pharos_sdk::notify::run_notify;
use pharos_sdk::notify::testing::{
    digest, headers, json_body, opened, pairs, record_http, resolved, test_alert,
};
use pharos_sdk::{CapError, mock};

const GROUP: &str = "group.ZmFrZWdyb3VwaWQxMjM0NTY3ODkwMTIzNDU2Nzg5MDEyMw==";

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
    json!({"api_url": "http://signal-api:8080/", "number": "+4915112345678", "recipients": ["+4915187654321", GROUP]})
}

fn with(extra: Value) -> Value {
    let mut doc = base();
    for (k, v) in extra.as_object().unwrap() {
        doc[k] = v.clone();
    }
    doc
}

#[test]
fn opened_incident_is_title_and_body() {
    let req = build_request(&config(base()), &opened()).unwrap();
    assert_eq!(req.method, "POST");
    assert_eq!(req.url, "http://signal-api:8080/v2/send");
    assert_eq!(
        headers(&req),
        pairs(&[
            ("Content-Type", "application/json"),
            ("X-Pharos-Idempotency-Key", "pharos-7-opened-41-c2"),
        ])
    );
    assert_eq!(
        json_body(&req),
        json!({
            "message": "[DOWN] api\napi is DOWN since 2026-11-24 09:58:00 UTC.\nCause: expected 200, got 503\nIncident #7: https://pharos.example/incidents/7",
            "number": "+4915112345678",
            "recipients": ["+4915187654321", GROUP]
        })
    );
    assert!(!req.follow_redirects && req.verify_tls);
}

#[test]
fn resolved_incident_with_basic_auth() {
    let c = config(with(
        json!({"username": "pharos", "password": "pw", "verify_tls": false}),
    ));
    let req = build_request(&c, &resolved()).unwrap();
    assert_eq!(req.url, "http://signal-api:8080/v2/send");
    assert_eq!(
        headers(&req),
        pairs(&[
            ("Content-Type", "application/json"),
            ("X-Pharos-Idempotency-Key", "pharos-7-resolved-42-c2"),
            ("Authorization", "Basic cGhhcm9zOnB3"),
        ])
    );
    assert!(!req.verify_tls);
    assert_eq!(
        json_body(&req),
        json!({
            "message": "[RESOLVED] api\napi is UP again after 32 min down (since 2026-11-24 09:58:00 UTC).\nIncident #7: https://pharos.example/incidents/7",
            "number": "+4915112345678",
            "recipients": ["+4915187654321", GROUP]
        })
    );
}

#[test]
fn test_alert_and_a_link_missing_from_the_body() {
    let req = build_request(&config(base()), &test_alert()).unwrap();
    assert_eq!(
        json_body(&req)["message"],
        "[TEST] Pharos test alert\nThis is a test alert from Pharos for channel \"ops\". If you can read this, the channel works."
    );
    let mut n = opened();
    n.body = "api is down".into();
    assert_eq!(
        message_text(&n),
        "[DOWN] api\napi is down\nhttps://pharos.example/incidents/7"
    );
    assert!(message_text(&digest()).contains("- 10:00:20 [DOWN] web"));
}

#[test]
fn answers_are_classified() {
    let c = base().to_string();
    let seen = record_http(vec![
        Ok(Response::new(201, r#"{"timestamp":"1795514400123"}"#)),
        Ok(Response::new(201, r#"{"timestamp":1795514400124}"#)),
        Ok(Response::new(400, r#"{"error":"Invalid number: +49151"}"#)),
        Ok(Response::new(503, "")),
        Err(CapError::Connect("refused".into())),
    ]);
    let n = opened();
    assert_eq!(
        run_notify::<Signal>(&c, &n).unwrap(),
        Receipt::new("HTTP 201 (2 recipient(s))").with_external_id("1795514400123")
    );
    assert_eq!(
        run_notify::<Signal>(&c, &n).unwrap().external_id.as_deref(),
        Some("1795514400124")
    );
    let e = run_notify::<Signal>(&c, &n).unwrap_err();
    assert!(
        !e.is_transient() && e.reason().contains("Invalid number"),
        "{e}"
    );
    assert!(run_notify::<Signal>(&c, &n).unwrap_err().is_transient());
    assert!(run_notify::<Signal>(&c, &n).unwrap_err().is_transient());
    assert_eq!(seen.borrow().len(), 5);
    mock::reset();
}

#[test]
fn config_errors_are_permanent_and_name_the_field() {
    let seen = record_http(vec![]);
    for (doc, field) in [
        (
            json!({"number": "+4915112345678", "recipients": ["+4915187654321"]}),
            "api_url",
        ),
        (with(json!({"api_url": "signal-api:8080"})), "api_url"),
        (with(json!({"number": "015112345678"})), "number"),
        (with(json!({"recipients": []})), "recipients"),
        (
            with(json!({"recipients": ["+49", "+4915187654321"]})),
            "recipients[0]",
        ),
        (
            with(json!({"recipients": ["+4915187654321", "group."]})),
            "recipients[1]",
        ),
        (with(json!({"username": "u"})), "password"),
        (with(json!({"password": "p"})), "username"),
        (with(json!({"text_mode": "styled"})), "text_mode"),
    ] {
        let err = run_notify::<Signal>(&doc.to_string(), &opened()).unwrap_err();
        assert!(!err.is_transient(), "{doc}: {err}");
        assert!(err.reason().contains(field), "{doc}: {err}");
    }
    assert!(seen.borrow().is_empty());
    mock::reset();
}

#[test]
fn schema_accepts_the_examples_and_rejects_what_the_plugin_rejects() {
    let v = validator();
    let s = schema();
    for doc in s["examples"].as_array().unwrap() {
        assert!(v.is_valid(doc), "{doc}: {:?}", v.validate(doc));
        build_request(&config(doc.clone()), &opened()).unwrap();
    }
    for doc in [
        json!({"number": "+4915112345678", "recipients": ["+4915187654321"]}),
        with(json!({"api_url": "signal-api:8080"})),
        with(json!({"number": "015112345678"})),
        with(json!({"recipients": []})),
        with(json!({"recipients": ["+49"]})),
        with(json!({"recipients": ["group."]})),
        with(json!({"username": "u"})),
        with(json!({"password": "p"})),
        with(json!({"text_mode": "styled"})),
    ] {
        assert!(!v.is_valid(&doc), "schema should reject {doc}");
        let rejected = pharos_sdk::parse_config::<Config>(&doc.to_string())
            .map_err(|e| e.to_string())
            .and_then(|c| build_request(&c, &opened()).map_err(|e| e.to_string()));
        assert!(rejected.is_err(), "plugin should reject {doc}");
    }
    let p = &s["properties"];
    assert_eq!(json!(config(base()).verify_tls), p["verify_tls"]["default"]);
    assert_eq!(p["password"]["x-secret"], true);
}

#[test]
fn describe() {
    let info = pharos_sdk::notify::notify_plugin_info::<Signal>();
    assert_eq!(
        (info.name.as_str(), info.version.as_str()),
        ("signal", "0.1.0")
    );
    assert_eq!(info.capabilities, vec!["http".to_string()]);
    let schema: Value = serde_json::from_str(&info.config_schema).unwrap();
    assert_eq!(schema["additionalProperties"], false);
    for (name, prop) in schema["properties"].as_object().unwrap() {
        assert!(prop["description"].is_string(), "{name} has no description");
    }
}
