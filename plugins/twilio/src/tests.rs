use super::*;
use pharos_sdk::CapError;
use pharos_sdk::mock;
use pharos_sdk::notify::run_notify;
use pharos_sdk::notify::testing::{
    form_body, headers, opened, pairs, record_http, resolved, test_alert,
};
use serde_json::json;

const SID: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "0123456789abcdef0123456789abcdef";
const URL: &str =
    "https://api.twilio.com/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json";

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
    json!({"account_sid": SID, "auth_token": TOKEN, "from": "+15017122661", "to": ["+15558675310", "+447700900123"]})
}

fn with(extra: Value) -> Value {
    let mut doc = base();
    for (k, v) in extra.as_object().unwrap() {
        doc[k] = v.clone();
    }
    doc
}

fn basic(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        http::base64(format!("{user}:{pass}").as_bytes())
    )
}

#[test]
fn opened_incident_is_one_sms_per_recipient() {
    let reqs = build_requests(&config(base()), &opened()).unwrap();
    assert_eq!(reqs.len(), 2);
    let text = "[DOWN] api\napi is DOWN since 2026-11-24 09:58:00 UTC.\nCause: expected 200, got 503\nIncident #7: https://pharos.example/incidents/7";
    for ((to, req), want) in reqs.iter().zip(["+15558675310", "+447700900123"]) {
        assert_eq!(to, want);
        assert_eq!(req.method, "POST");
        assert_eq!(req.url, URL);
        assert_eq!(
            headers(req),
            vec![
                (
                    "Content-Type".to_string(),
                    "application/x-www-form-urlencoded".to_string()
                ),
                ("Authorization".to_string(), basic(SID, TOKEN)),
            ]
        );
        assert_eq!(
            form_body(req),
            pairs(&[("To", want), ("From", "+15017122661"), ("Body", text)])
        );
        assert!(!req.follow_redirects && req.verify_tls);
    }
}

#[test]
fn resolved_incident_through_a_messaging_service_with_an_api_key() {
    let c = config(with(json!({
        "from": "MG0123456789abcdef0123456789abcdef",
        "api_key_sid": "SK0123456789abcdef0123456789abcdef",
        "auth_token": "keysecret",
        "to": ["+15558675310"],
        "api_url": "http://127.0.0.1:9/"
    })));
    let reqs = build_requests(&c, &resolved()).unwrap();
    assert_eq!(reqs.len(), 1);
    let req = &reqs[0].1;
    assert_eq!(
        req.url,
        "http://127.0.0.1:9/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json"
    );
    assert_eq!(
        headers(req),
        vec![
            (
                "Content-Type".to_string(),
                "application/x-www-form-urlencoded".to_string()
            ),
            (
                "Authorization".to_string(),
                basic("SK0123456789abcdef0123456789abcdef", "keysecret")
            ),
        ]
    );
    assert_eq!(
        form_body(req),
        pairs(&[
            ("To", "+15558675310"),
            ("MessagingServiceSid", "MG0123456789abcdef0123456789abcdef"),
            (
                "Body",
                "[RESOLVED] api\napi is UP again after 32 min down (since 2026-11-24 09:58:00 UTC).\nIncident #7: https://pharos.example/incidents/7"
            ),
        ])
    );
}

#[test]
fn test_alert_is_cut_to_max_length() {
    let c = config(with(
        json!({"max_length": 70, "from": "Pharos", "to": ["+15558675310", "+15558675310"]}),
    ));
    let reqs = build_requests(&c, &test_alert()).unwrap();
    assert_eq!(reqs.len(), 1, "duplicate recipients get one message");
    let form = form_body(&reqs[0].1);
    assert_eq!(form[1], ("From".to_string(), "Pharos".to_string()));
    let body = &form[2].1;
    assert!(
        body.starts_with("[TEST] Pharos test alert\nThis is a test"),
        "{body}"
    );
    assert_eq!(body.chars().count(), 70);
    assert!(body.ends_with('…'));
    let mut long = opened();
    long.body = "x".repeat(5000);
    assert_eq!(sms_text(&config(base()), &long).chars().count(), 1600);
}

#[test]
fn every_recipient_is_tried_and_the_worst_failure_wins() {
    let three = with(json!({"to": ["+15550000001", "+15550000002", "+15550000003"]})).to_string();
    let ok = |sid: &str| {
        Ok(Response::new(
            201,
            format!(r#"{{"sid":"{sid}","status":"queued"}}"#),
        ))
    };
    let bad_number = || {
        Ok(Response::new(
            400,
            r#"{"code":21211,"message":"Invalid 'To' Phone Number: +1555000000X","more_info":"https://www.twilio.com/docs/errors/21211","status":400}"#,
        ))
    };
    let n = opened();

    let seen = record_http(vec![ok("SM1"), ok("SM2"), ok("SM3")]);
    assert_eq!(
        run_notify::<Twilio>(&three, &n).unwrap(),
        Receipt::new("sent to 3 recipient(s)").with_external_id("SM1,SM2,SM3")
    );
    assert_eq!(seen.borrow().len(), 3);

    // One permanent failure: the others are still sent to; the delivery fails permanently.
    let seen = record_http(vec![ok("SM1"), bad_number(), ok("SM3")]);
    let e = run_notify::<Twilio>(&three, &n).unwrap_err();
    assert!(!e.is_transient(), "{e}");
    assert_eq!(
        e.reason(),
        "1 of 3 recipient(s) failed: +15550000002: HTTP 400: Twilio error 21211: Invalid 'To' Phone Number: +1555000000X (delivered to +15550000001, +15550000003)"
    );
    assert_eq!(seen.borrow().len(), 3);

    // Any transient failure makes the whole delivery transient (retried to everyone).
    record_http(vec![
        bad_number(),
        Ok(Response::new(
            429,
            r#"{"code":20429,"message":"Too Many Requests","status":429}"#,
        )),
        Err(CapError::Timeout("no answer".into())),
    ]);
    let e = run_notify::<Twilio>(&three, &n).unwrap_err();
    assert!(e.is_transient(), "{e}");
    assert!(e.reason().starts_with("3 of 3 recipient(s) failed"), "{e}");
    assert!(e.reason().contains("Twilio error 20429"), "{e}");
    assert!(e.reason().contains("timeout: no answer"), "{e}");

    // Errors never carry the auth token; 5xx and 401 are classified like other plugins.
    record_http(vec![
        Ok(Response::new(
            401,
            format!(r#"{{"code":20003,"message":"Authenticate {TOKEN}","status":401}}"#),
        )),
        Ok(Response::new(503, "unavailable")),
    ]);
    let two = base().to_string();
    let e = run_notify::<Twilio>(&two, &n).unwrap_err();
    assert!(e.is_transient() && !e.reason().contains(TOKEN), "{e}");
    assert!(e.reason().contains("HTTP 503: unavailable"), "{e}");
    mock::reset();
}

#[test]
fn config_errors_are_permanent_and_name_the_field() {
    let seen = record_http(vec![]);
    for (doc, field) in [
        (
            json!({"auth_token": TOKEN, "from": "+15017122661", "to": ["+15558675310"]}),
            "account_sid",
        ),
        (with(json!({"account_sid": "AC123"})), "account_sid"),
        (with(json!({"auth_token": " "})), "auth_token"),
        (with(json!({"api_key_sid": "SK1"})), "api_key_sid"),
        (with(json!({"from": "12345"})), "from"),
        (with(json!({"from": "Far too long sender"})), "from"),
        (with(json!({"to": []})), "to"),
        (with(json!({"to": ["+15558675310", "5551234"]})), "to[1]"),
        (with(json!({"max_length": 20})), "max_length"),
        (with(json!({"max_length": 2000})), "max_length"),
        (with(json!({"api_url": "api.twilio.com"})), "api_url"),
        (with(json!({"body": "x"})), "body"),
    ] {
        let err = run_notify::<Twilio>(&doc.to_string(), &opened()).unwrap_err();
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
        build_requests(&config(doc.clone()), &opened()).unwrap();
    }
    for doc in [
        with(json!({"account_sid": "AC123"})),
        with(json!({"auth_token": ""})),
        with(json!({"api_key_sid": "SK1"})),
        with(json!({"from": "Far too long sender"})),
        with(json!({"to": []})),
        with(json!({"to": ["5551234"]})),
        with(json!({"max_length": 20})),
        with(json!({"max_length": 2000})),
        with(json!({"api_url": "api.twilio.com"})),
        with(json!({"body": "x"})),
    ] {
        assert!(!v.is_valid(&doc), "schema should reject {doc}");
        let rejected = pharos_sdk::parse_config::<Config>(&doc.to_string())
            .map_err(|e| e.to_string())
            .and_then(|c| build_requests(&c, &opened()).map_err(|e| e.to_string()));
        assert!(rejected.is_err(), "plugin should reject {doc}");
    }
    let c = config(base());
    let p = &s["properties"];
    assert_eq!(json!(c.max_length), p["max_length"]["default"]);
    assert_eq!(json!(c.api_url), p["api_url"]["default"]);
    assert_eq!(p["auth_token"]["x-secret"], true);
}

#[test]
fn describe() {
    let info = pharos_sdk::notify::notify_plugin_info::<Twilio>();
    assert_eq!(
        (info.name.as_str(), info.version.as_str()),
        ("twilio", "0.1.0")
    );
    assert_eq!(info.capabilities, vec!["http".to_string()]);
    let schema: Value = serde_json::from_str(&info.config_schema).unwrap();
    assert_eq!(schema["additionalProperties"], false);
    for (name, prop) in schema["properties"].as_object().unwrap() {
        assert!(prop["description"].is_string(), "{name} has no description");
    }
}
