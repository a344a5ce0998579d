use super::*;
use pharos_sdk::notify::run_notify;
use pharos_sdk::notify::testing::{
    flapping, form_body, headers, opened, pairs, record_http, resolved, test_alert,
};
use pharos_sdk::{CapError, mock};
use serde_json::json;

const USER: &str = "uQiRzpo4DXghDmr9QzzfQu27cmVRsG";
const TOKEN: &str = "azGDORePK8gMaC0QOYAMyEEuzJnyUi";

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
    json!({"user_key": USER, "api_token": TOKEN})
}

fn with(extra: Value) -> Value {
    let mut doc = base();
    for (k, v) in extra.as_object().unwrap() {
        doc[k] = v.clone();
    }
    doc
}

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

#[test]
fn opened_incident_is_a_high_priority_message_with_the_incident_link() {
    let req = build_request(&config(base()), &opened()).unwrap();
    assert_eq!(req.method, "POST");
    assert_eq!(req.url, "https://api.pushover.net/1/messages.json");
    assert_eq!(headers(&req), pairs(&[FORM]));
    assert_eq!(
        form_body(&req),
        pairs(&[
            ("token", TOKEN),
            ("user", USER),
            ("title", "[DOWN] api"),
            (
                "message",
                "api is DOWN since 2026-11-24 09:58:00 UTC.\nCause: expected 200, got 503\nIncident #7: https://pharos.example/incidents/7"
            ),
            ("priority", "1"),
            ("url", "https://pharos.example/incidents/7"),
            ("url_title", "Open incident"),
            ("timestamp", "1795514400"),
        ])
    );
    assert!(!req.follow_redirects && req.verify_tls);
}

#[test]
fn resolved_incident_is_a_normal_message() {
    let c = config(with(json!({"device": "phone,tablet", "sound": "magic"})));
    let req = build_request(&c, &resolved()).unwrap();
    assert_eq!(req.url, "https://api.pushover.net/1/messages.json");
    assert_eq!(headers(&req), pairs(&[FORM]));
    assert_eq!(
        form_body(&req),
        pairs(&[
            ("token", TOKEN),
            ("user", USER),
            ("title", "[RESOLVED] api"),
            (
                "message",
                "api is UP again after 32 min down (since 2026-11-24 09:58:00 UTC).\nIncident #7: https://pharos.example/incidents/7"
            ),
            ("priority", "0"),
            ("url", "https://pharos.example/incidents/7"),
            ("url_title", "Open incident"),
            ("device", "phone,tablet"),
            ("sound", "magic"),
            ("timestamp", "1795516200"),
        ])
    );
    assert!(build_cancel_request(&c, &resolved()).unwrap().is_none());
}

#[test]
fn test_alert_and_warnings_never_use_the_critical_priority() {
    let c = config(with(
        json!({"priority": 2, "api_url": "http://127.0.0.1:9/"}),
    ));
    let req = build_request(&c, &test_alert()).unwrap();
    assert_eq!(req.url, "http://127.0.0.1:9/1/messages.json");
    assert_eq!(
        form_body(&req),
        pairs(&[
            ("token", TOKEN),
            ("user", USER),
            ("title", "[TEST] Pharos test alert"),
            (
                "message",
                "This is a test alert from Pharos for channel \"ops\". If you can read this, the channel works."
            ),
            ("priority", "0"),
            ("timestamp", "1795514400"),
        ])
    );
    let p = |n: &Notification| {
        form_body(&build_request(&c, n).unwrap())
            .into_iter()
            .find(|(k, _)| k == "priority")
            .map(|(_, v)| v)
    };
    assert_eq!(p(&flapping()).as_deref(), Some("0"));
    let quiet = config(with(json!({"priority": -1})));
    assert_eq!(priority(&quiet, &flapping()), -1);
    assert_eq!(priority(&quiet, &opened()), -1);
}

#[test]
fn emergency_alerts_repeat_and_their_resolution_cancels_them() {
    let c = config(with(json!({"priority": 2, "retry": 120, "expire": 7200})));
    let form = form_body(&build_request(&c, &opened()).unwrap());
    assert_eq!(
        form[4..8].to_vec(),
        pairs(&[
            ("priority", "2"),
            ("retry", "120"),
            ("expire", "7200"),
            ("tags", "pharos-incident-7"),
        ])
    );
    let cancel = build_cancel_request(&c, &resolved()).unwrap().unwrap();
    assert_eq!(cancel.method, "POST");
    assert_eq!(
        cancel.url,
        "https://api.pushover.net/1/receipts/cancel_by_tag/pharos-incident-7.json"
    );
    assert_eq!(headers(&cancel), pairs(&[FORM]));
    assert_eq!(form_body(&cancel), pairs(&[("token", TOKEN)]));
    assert!(build_cancel_request(&c, &opened()).unwrap().is_none());

    let seen = record_http(vec![
        Ok(Response::new(
            200,
            r#"{"status":1,"canceled":1,"request":"c1"}"#,
        )),
        Ok(Response::new(200, r#"{"status":1,"request":"r2"}"#)),
    ]);
    let receipt = run_notify::<Pushover>(&c_json(&c), &resolved()).unwrap();
    assert_eq!(receipt, Receipt::new("HTTP 200").with_external_id("r2"));
    let urls: Vec<String> = seen.borrow().iter().map(|r| r.url.clone()).collect();
    assert_eq!(
        urls,
        [
            "https://api.pushover.net/1/receipts/cancel_by_tag/pharos-incident-7.json",
            "https://api.pushover.net/1/messages.json"
        ]
    );
    // A transient failure of the cancellation is retried before anything is sent.
    let seen = record_http(vec![Ok(Response::new(502, "bad gateway"))]);
    assert!(
        run_notify::<Pushover>(&c_json(&c), &resolved())
            .unwrap_err()
            .is_transient()
    );
    assert_eq!(seen.borrow().len(), 1);
    // A refused cancellation (nothing to cancel) does not stop the message.
    let seen = record_http(vec![
        Ok(Response::new(
            400,
            r#"{"status":0,"errors":["receipt not found"]}"#,
        )),
        Ok(Response::new(200, r#"{"status":1,"request":"r3"}"#)),
    ]);
    assert!(run_notify::<Pushover>(&c_json(&c), &resolved()).is_ok());
    assert_eq!(seen.borrow().len(), 2);
    // The emergency message's receipt is reported.
    record_http(vec![Ok(Response::new(
        200,
        r#"{"status":1,"request":"r4","receipt":"rcpt1"}"#,
    ))]);
    assert_eq!(
        run_notify::<Pushover>(&c_json(&c), &opened()).unwrap(),
        Receipt::new("HTTP 200, emergency receipt rcpt1").with_external_id("r4")
    );
    mock::reset();
}

fn c_json(c: &Config) -> String {
    json!({
        "user_key": c.user_key, "api_token": c.api_token, "priority": c.priority,
        "retry": c.retry, "expire": c.expire, "api_url": c.api_url
    })
    .to_string()
}

#[test]
fn answers_are_classified() {
    let c = base().to_string();
    let seen = record_http(vec![
        Ok(Response::new(
            200,
            r#"{"status":1,"request":"647d2300-702c-4b38-8b2f-d56326ae460b"}"#,
        )),
        Ok(Response::new(
            200,
            r#"{"status":0,"errors":["message cannot be blank"],"request":"x"}"#,
        )),
        Ok(Response::new(429, "Too Many Requests")),
        Ok(Response::new(500, "oops")),
        Ok(Response::new(
            400,
            format!(
                r#"{{"user":"invalid","errors":["user identifier is not a valid user, group, or subscribed user key: {USER}"],"status":0,"request":"5042853c"}}"#
            ),
        )),
        Err(CapError::Dns("no such host".into())),
    ]);
    let n = opened();
    assert_eq!(
        run_notify::<Pushover>(&c, &n).unwrap(),
        Receipt::new("HTTP 200").with_external_id("647d2300-702c-4b38-8b2f-d56326ae460b")
    );
    let e = run_notify::<Pushover>(&c, &n).unwrap_err();
    assert!(
        !e.is_transient() && e.reason().contains("message cannot be blank"),
        "{e}"
    );
    assert!(run_notify::<Pushover>(&c, &n).unwrap_err().is_transient());
    assert!(run_notify::<Pushover>(&c, &n).unwrap_err().is_transient());
    let e = run_notify::<Pushover>(&c, &n).unwrap_err();
    assert!(
        !e.is_transient() && e.reason().starts_with("HTTP 400"),
        "{e}"
    );
    assert!(!e.reason().contains(USER), "secret leaked: {e}");
    assert!(run_notify::<Pushover>(&c, &n).unwrap_err().is_transient());
    assert_eq!(seen.borrow().len(), 6);
    mock::reset();
}

#[test]
fn long_texts_are_cut_to_pushovers_limits() {
    let mut n = opened();
    n.title = "t".repeat(300);
    n.body = "b".repeat(2000);
    let form = form_body(&build_request(&config(base()), &n).unwrap());
    assert_eq!(form[2].1.chars().count(), 250);
    assert_eq!(form[3].1.chars().count(), 1024);
    assert!(form[3].1.ends_with('…'));
}

#[test]
fn config_errors_are_permanent_and_name_the_field() {
    let seen = record_http(vec![]);
    for (doc, field) in [
        (json!({"api_token": TOKEN}), "user_key"),
        (json!({"user_key": USER}), "api_token"),
        (with(json!({"user_key": "short"})), "user_key"),
        (with(json!({"api_token": "x".repeat(31)})), "api_token"),
        (with(json!({"device": "a b"})), "device"),
        (with(json!({"sound": "é"})), "sound"),
        (with(json!({"priority": 3})), "priority"),
        (with(json!({"priority": 2, "retry": 10})), "retry"),
        (with(json!({"priority": 2, "expire": 20000})), "expire"),
        (with(json!({"api_url": "api.pushover.net"})), "api_url"),
        (with(json!({"html": 1})), "html"),
    ] {
        let err = run_notify::<Pushover>(&doc.to_string(), &opened()).unwrap_err();
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
        json!({"api_token": TOKEN}),
        with(json!({"user_key": "short"})),
        with(json!({"device": "a b"})),
        with(json!({"priority": 3})),
        with(json!({"retry": 10})),
        with(json!({"expire": 20000})),
        with(json!({"api_url": "api.pushover.net"})),
        with(json!({"html": 1})),
    ] {
        assert!(!v.is_valid(&doc), "schema should reject {doc}");
        let rejected = pharos_sdk::parse_config::<Config>(&doc.to_string())
            .map_err(|e| e.to_string())
            .and_then(|c| build_request(&c, &opened()).map_err(|e| e.to_string()));
        assert!(rejected.is_err(), "plugin should reject {doc}");
    }
    let c = config(base());
    let p = &s["properties"];
    assert_eq!(json!(c.priority), p["priority"]["default"]);
    assert_eq!(json!(c.retry), p["retry"]["default"]);
    assert_eq!(json!(c.expire), p["expire"]["default"]);
    assert_eq!(json!(c.api_url), p["api_url"]["default"]);
    for secret in ["user_key", "api_token"] {
        assert_eq!(p[secret]["x-secret"], true, "{secret}");
    }
}

#[test]
fn describe() {
    let info = pharos_sdk::notify::notify_plugin_info::<Pushover>();
    assert_eq!(
        (info.name.as_str(), info.version.as_str()),
        ("pushover", "0.1.0")
    );
    assert_eq!(info.capabilities, vec!["http".to_string()]);
    let schema: Value = serde_json::from_str(&info.config_schema).unwrap();
    assert_eq!(schema["additionalProperties"], false);
    for (name, prop) in schema["properties"].as_object().unwrap() {
        assert!(prop["description"].is_string(), "{name} has no description");
    }
}
