use super::*;
use pharos_sdk::CapError;
use pharos_sdk::mock;
use pharos_sdk::notify::render::sample_event;
use pharos_sdk::notify::run_notify;
use serde_json::{Value, json};
use std::cell::RefCell;
use std::rc::Rc;

const TS: u64 = 1_795_514_400;

fn config(v: Value) -> Config {
    pharos_sdk::parse_config(&v.to_string()).unwrap()
}

fn headers(req: &Request) -> Vec<(String, String)> {
    req.headers
        .iter()
        .map(|h| (h.name.clone(), h.value.clone()))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn schema() -> Value {
    serde_json::from_str(SCHEMA).unwrap()
}

fn validator() -> jsonschema::Validator {
    jsonschema::meta::validate(&schema()).expect("schema is valid draft 2020-12");
    jsonschema::validator_for(&schema()).unwrap()
}

#[test]
fn opened_event_is_posted_verbatim_and_signed() {
    let n = Notification::for_test(sample_event("incident.opened"));
    let cfg = config(json!({"url": "https://hooks.example.com/pharos/", "secret": "s3cr3t"}));
    let req = build_request(&cfg, &n, TS).unwrap();
    assert_eq!(req.method, "POST");
    assert_eq!(req.url, "https://hooks.example.com/pharos/");
    let body = String::from_utf8(req.body.clone().unwrap()).unwrap();
    assert_eq!(body, n.event_json);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        sample_event("incident.opened")
    );
    assert_eq!(
        headers(&req),
        pairs(&[
            ("Content-Type", "application/json"),
            ("User-Agent", "Pharos-Webhook/1"),
            ("X-Pharos-Event", "incident.opened"),
            ("Idempotency-Key", "pharos-7-incident.opened-1"),
            ("X-Pharos-Timestamp", "1795514400"),
            ("X-Pharos-Signature", &signature("s3cr3t", TS, &body)),
        ])
    );
    assert!(!req.follow_redirects);
    assert!(req.verify_tls);
    assert!(req.timeout_ms > 0 && req.timeout_ms <= 10_000);
}

#[test]
fn signature_is_hmac_sha256_of_timestamp_dot_body() {
    // Reference value computed independently (Python's hmac module).
    assert_eq!(
        signature("s3cr3t", TS, r#"{"kind":"test"}"#),
        "sha256=79548ee7024ba158941bf4181b3f23813848f4164d1003e8cdb1edda4ce6dbc1"
    );
    assert_ne!(
        signature("s3cr3t", TS + 1, r#"{"kind":"test"}"#),
        signature("s3cr3t", TS, r#"{"kind":"test"}"#)
    );
}

#[test]
fn resolved_and_test_events_without_secret_are_unsigned() {
    let cfg = config(json!({"url": "https://hooks.example.com/x"}));
    for kind in ["incident.resolved", "test"] {
        let n = Notification::for_test(sample_event(kind));
        let req = build_request(&cfg, &n, TS).unwrap();
        assert_eq!(
            headers(&req),
            pairs(&[
                ("Content-Type", "application/json"),
                ("User-Agent", "Pharos-Webhook/1"),
                ("X-Pharos-Event", kind),
                ("Idempotency-Key", &format!("pharos-7-{kind}-1")),
            ])
        );
        assert_eq!(req.body.as_deref(), Some(n.event_json.as_bytes()));
    }
}

#[test]
fn put_with_token_custom_headers_and_no_tls_verification() {
    let n = Notification::for_test(sample_event("incident.opened"));
    let cfg = config(json!({
        "url": "https://ops.example.com/alerts", "method": "PUT",
        "headers": {"X-Team": "sre", "Accept": "application/json"},
        "bearer_token": "tok_123", "verify_tls": false
    }));
    let req = build_request(&cfg, &n, TS).unwrap();
    assert_eq!(req.method, "PUT");
    assert!(!req.verify_tls);
    assert_eq!(
        headers(&req)[4..].to_vec(),
        pairs(&[
            ("Authorization", "Bearer tok_123"),
            ("Accept", "application/json"),
            ("X-Team", "sre"),
        ])
    );
}

#[test]
fn config_errors_are_permanent() {
    let n = Notification::for_test(sample_event("incident.opened"));
    for (cfg, field) in [
        (
            json!({"url": "https://h/x", "headers": {"X-Pharos-Signature": "x"}}),
            "headers.X-Pharos-Signature",
        ),
        (
            json!({"url": "https://h/x", "headers": {"content-type": "text/plain"}}),
            "headers.content-type",
        ),
        (
            json!({"url": "https://h/x", "bearer_token": "t", "headers": {"Authorization": "x"}}),
            "headers.Authorization",
        ),
        (json!({"url": "hooks.example.com/x"}), "url"),
    ] {
        let err = build_request(&config(cfg), &n, TS).unwrap_err();
        assert!(!err.is_transient());
        assert!(err.reason().contains(&format!("`{field}`")), "{err}");
    }
    for bad in [
        json!({}),
        json!({"url": "https://h/x", "method": "GET"}),
        json!({"url": "https://h/x", "secrets": "typo"}),
    ] {
        let err = run_notify::<Webhook>(&bad.to_string(), &n).unwrap_err();
        assert!(!err.is_transient(), "{err}");
    }
}

#[test]
fn answers_are_classified_and_secrets_redacted() {
    mock::reset();
    let script = Rc::new(RefCell::new(vec![
        Ok(http::Response::new(204, "")),
        Ok(http::Response::new(429, "slow down").with_header("Retry-After", "7")),
        Ok(http::Response::new(502, "bad gateway")),
        Ok(http::Response::new(410, "gone")),
        Err(CapError::Connect(
            "HTTP exchange with https://h.example/hook/0123456789abcdef0123 failed".into(),
        )),
    ]));
    let s = script.clone();
    let seen = Rc::new(RefCell::new(0));
    let seen2 = seen.clone();
    mock::http(move |_| {
        *seen2.borrow_mut() += 1;
        s.borrow_mut().remove(0)
    });
    let n = Notification::for_test(sample_event("incident.opened"));
    let cfg =
        json!({"url": "https://h.example/hook/0123456789abcdef0123", "secret": "k"}).to_string();
    assert_eq!(
        run_notify::<Webhook>(&cfg, &n).unwrap(),
        Receipt::new("HTTP 204")
    );
    let err = run_notify::<Webhook>(&cfg, &n).unwrap_err();
    assert!(
        err.is_transient() && err.reason().contains("Retry-After: 7"),
        "{err}"
    );
    assert!(run_notify::<Webhook>(&cfg, &n).unwrap_err().is_transient());
    let err = run_notify::<Webhook>(&cfg, &n).unwrap_err();
    assert!(
        !err.is_transient() && err.reason().starts_with("HTTP 410"),
        "{err}"
    );
    let err = run_notify::<Webhook>(&cfg, &n).unwrap_err();
    assert!(err.is_transient());
    assert!(!err.reason().contains("0123456789abcdef0123"), "{err}");
    assert!(err.reason().contains("https://h.example/hook/***"), "{err}");
    assert_eq!(*seen.borrow(), 5);
    mock::reset();
}

#[test]
fn schema_accepts_the_examples_and_rejects_the_rest() {
    let v = validator();
    let s = schema();
    for example in s["examples"].as_array().unwrap() {
        assert!(v.is_valid(example), "{example}");
        let cfg: Config = pharos_sdk::parse_config(&example.to_string()).unwrap();
        let n = Notification::for_test(sample_event("test"));
        build_request(&cfg, &n, TS).unwrap();
    }
    for bad in [
        json!({}),
        json!({"url": "ftp://x"}),
        json!({"url": "https://h/x", "method": "GET"}),
        json!({"url": "https://h/x", "secret": ""}),
        json!({"url": "https://h/x", "headers": {"X-A": "a\r\nb"}}),
        json!({"url": "https://h/x", "headers": {"bad name": "a"}}),
        json!({"url": "https://h/x", "extra": 1}),
    ] {
        assert!(!v.is_valid(&bad), "schema should reject {bad}");
    }
    let p = &s["properties"];
    assert_eq!(p["secret"]["x-secret"], true);
    assert_eq!(p["bearer_token"]["x-secret"], true);
    let defaults = config(json!({"url": "https://h/x"}));
    assert_eq!(json!(defaults.method.as_str()), p["method"]["default"]);
    assert_eq!(json!(defaults.verify_tls), p["verify_tls"]["default"]);
}

#[test]
fn describe() {
    let info = notify::notify_plugin_info::<Webhook>();
    assert_eq!(
        (info.name.as_str(), info.version.as_str()),
        ("webhook", "0.1.0")
    );
    assert_eq!(info.capabilities, vec!["http".to_string()]);
    let schema: Value = serde_json::from_str(&info.config_schema).unwrap();
    assert_eq!(schema["additionalProperties"], false);
    for (name, prop) in schema["properties"].as_object().unwrap() {
        assert!(prop["description"].is_string(), "{name} has no description");
    }
}
