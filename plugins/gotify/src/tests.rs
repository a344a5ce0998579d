use super::*;
use pharos_sdk::http::Response;
use pharos_sdk::notify::run_notify;
use pharos_sdk::notify::testing::{
    digest, headers, json_body, opened, pairs, record_http, resolved, test_alert,
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

fn base() -> Config {
    config(json!({"server": "https://gotify.example.com/", "token": "AbCdEf.GhIjKl1"}))
}

#[test]
fn opened_incident_is_a_high_priority_message_with_a_click_url() {
    let req = build_request(&base(), &opened()).unwrap();
    assert_eq!(req.method, "POST");
    assert_eq!(req.url, "https://gotify.example.com/message");
    assert_eq!(
        headers(&req),
        pairs(&[
            ("Content-Type", "application/json"),
            ("X-Gotify-Key", "AbCdEf.GhIjKl1"),
            ("X-Pharos-Idempotency-Key", "pharos-7-opened-41-c2"),
        ])
    );
    assert_eq!(
        json_body(&req),
        json!({
            "title": "[DOWN] api",
            "message": "api is DOWN since 2026-11-24 09:58:00 UTC.\nCause: expected 200, got 503\nIncident #7: https://pharos.example/incidents/7",
            "priority": 8,
            "extras": {
                "client::display": {"contentType": "text/plain"},
                "client::notification": {"click": {"url": "https://pharos.example/incidents/7"}}
            }
        })
    );
    assert!(!req.follow_redirects && req.verify_tls);
}

#[test]
fn resolved_incident_is_a_normal_priority_message() {
    let req = build_request(&base(), &resolved()).unwrap();
    assert_eq!(req.url, "https://gotify.example.com/message");
    assert_eq!(
        headers(&req),
        pairs(&[
            ("Content-Type", "application/json"),
            ("X-Gotify-Key", "AbCdEf.GhIjKl1"),
            ("X-Pharos-Idempotency-Key", "pharos-7-resolved-42-c2"),
        ])
    );
    assert_eq!(
        json_body(&req),
        json!({
            "title": "[RESOLVED] api",
            "message": "api is UP again after 32 min down (since 2026-11-24 09:58:00 UTC).\nIncident #7: https://pharos.example/incidents/7",
            "priority": 4,
            "extras": {
                "client::display": {"contentType": "text/plain"},
                "client::notification": {"click": {"url": "https://pharos.example/incidents/7"}}
            }
        })
    );
}

#[test]
fn test_alert_and_digest_use_the_configured_priority() {
    let c = config(json!({
        "server": "http://127.0.0.1:8080/gotify", "token": "t", "priority": 0, "verify_tls": false
    }));
    let req = build_request(&c, &test_alert()).unwrap();
    assert_eq!(req.url, "http://127.0.0.1:8080/gotify/message");
    assert!(!req.verify_tls);
    assert_eq!(
        json_body(&req),
        json!({
            "title": "[TEST] Pharos test alert",
            "message": "This is a test alert from Pharos for channel \"ops\". If you can read this, the channel works.",
            "priority": 0,
            "extras": {"client::display": {"contentType": "text/plain"}}
        })
    );
    let d = json_body(&build_request(&base(), &digest()).unwrap());
    assert_eq!(d["priority"], 4);
    assert_eq!(
        d["extras"]["client::notification"]["click"]["url"],
        "https://pharos.example/"
    );
}

#[test]
fn answers_are_classified() {
    let c = json!({"server": "https://g.example", "token": "AbCdEf.GhIjKl1"}).to_string();
    let seen = record_http(vec![
        Ok(Response::new(
            200,
            r#"{"id":25,"appid":5,"message":"m","title":"t","priority":8,"date":"2026-11-24T10:00:00Z"}"#,
        )),
        Ok(Response::new(200, "")),
        Ok(Response::new(503, "maintenance")),
        Ok(Response::new(
            401,
            r#"{"error":"Unauthorized","errorCode":401,"errorDescription":"you need to provide a valid access token or user credentials to access this api"}"#,
        )),
        Ok(Response::new(
            400,
            r#"{"error":"Bad Request","errorCode":400}"#,
        )),
        Err(CapError::Timeout("no response within 10000 ms".into())),
    ]);
    let n = opened();
    assert_eq!(
        run_notify::<Gotify>(&c, &n).unwrap(),
        Receipt::new("HTTP 200").with_external_id("25")
    );
    assert_eq!(
        run_notify::<Gotify>(&c, &n).unwrap(),
        Receipt::new("HTTP 200")
    );
    assert!(run_notify::<Gotify>(&c, &n).unwrap_err().is_transient());
    let e = run_notify::<Gotify>(&c, &n).unwrap_err();
    assert!(
        !e.is_transient() && e.reason().starts_with("HTTP 401"),
        "{e}"
    );
    assert!(!run_notify::<Gotify>(&c, &n).unwrap_err().is_transient());
    assert!(run_notify::<Gotify>(&c, &n).unwrap_err().is_transient());
    assert_eq!(seen.borrow().len(), 6);
    mock::reset();
}

#[test]
fn config_errors_are_permanent_and_name_the_field() {
    let seen = record_http(vec![]);
    for (doc, field) in [
        (json!({"token": "t"}), "server"),
        (json!({"server": "https://g"}), "token"),
        (json!({"server": "gotify.local", "token": "t"}), "server"),
        (json!({"server": "https://g", "token": " "}), "token"),
        (
            json!({"server": "https://g", "token": "t", "priority": 11}),
            "priority",
        ),
        (
            json!({"server": "https://g", "token": "t", "priority": -1}),
            "priority",
        ),
        (
            json!({"server": "https://g", "token": "t", "extra": true}),
            "extra",
        ),
    ] {
        let err = run_notify::<Gotify>(&doc.to_string(), &opened()).unwrap_err();
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
        json!({"token": "t"}),
        json!({"server": "https://g"}),
        json!({"server": "gotify.local", "token": "t"}),
        json!({"server": "https://g", "token": ""}),
        json!({"server": "https://g", "token": "t", "priority": 11}),
        json!({"server": "https://g", "token": "t", "extra": true}),
    ] {
        assert!(!v.is_valid(&doc), "schema should reject {doc}");
        let rejected = pharos_sdk::parse_config::<Config>(&doc.to_string())
            .map_err(|e| e.to_string())
            .and_then(|c| build_request(&c, &opened()).map_err(|e| e.to_string()));
        assert!(rejected.is_err(), "plugin should reject {doc}");
    }
    assert_eq!(
        json!(base().verify_tls),
        s["properties"]["verify_tls"]["default"]
    );
    assert_eq!(s["properties"]["token"]["x-secret"], true);
}

#[test]
fn describe() {
    let info = pharos_sdk::notify::notify_plugin_info::<Gotify>();
    assert_eq!(
        (info.name.as_str(), info.version.as_str()),
        ("gotify", "0.1.0")
    );
    assert_eq!(info.capabilities, vec!["http".to_string()]);
    let schema: Value = serde_json::from_str(&info.config_schema).unwrap();
    assert_eq!(schema["additionalProperties"], false);
    for (name, prop) in schema["properties"].as_object().unwrap() {
        assert!(prop["description"].is_string(), "{name} has no description");
    }
}
