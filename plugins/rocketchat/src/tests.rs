use super::*;
use pharos_sdk::notify::render::sample_event;
use pharos_sdk::notify::run_notify;
use pharos_sdk::{CapError, http, mock};
use std::cell::RefCell;
use std::rc::Rc;

const URL: &str = "https://chat.example.com/hooks/6a1bcd23efgh45ijk/AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefghijkl";

fn config(v: Value) -> Config {
    pharos_sdk::parse_config(&v.to_string()).unwrap()
}

fn sent_json(req: &Request) -> Value {
    assert_eq!(req.method, "POST");
    assert_eq!(req.url, URL);
    let headers: Vec<(&str, &str)> = req
        .headers
        .iter()
        .map(|h| (h.name.as_str(), h.value.as_str()))
        .collect();
    assert_eq!(headers, vec![("Content-Type", "application/json")]);
    assert!(!req.follow_redirects && req.verify_tls);
    serde_json::from_slice(req.body.as_deref().unwrap()).unwrap()
}

fn field(title: &str, value: &str, short: bool) -> Value {
    json!({"short": short, "title": title, "value": value})
}

#[test]
fn incident_opened_request() {
    let n = Notification::for_test(sample_event("incident.opened"));
    let cfg = config(json!({
        "webhook_url": URL, "channel": "#ops", "alias": "Pharos",
        "avatar": "https://pharos.example/logo.png", "emoji": ":rotating_light:", "mention": "@here"
    }));
    assert_eq!(
        sent_json(&build_request(&cfg, &n).unwrap()),
        json!({
            "text": "@here *[DOWN] api*",
            "channel": "#ops",
            "alias": "Pharos",
            "avatar": "https://pharos.example/logo.png",
            "emoji": ":rotating_light:",
            "attachments": [{
                "title": "Open incident",
                "title_link": "https://pharos.example/incidents/7",
                "color": "#d6333f",
                "text": "api is down: expected 200, got 503.",
                "fields": [
                    field("Monitor", "api", true),
                    field("Status", "DOWN", true),
                    field("Severity", "critical", true),
                    field("Cause", "expected 200, got 503", false),
                    field("Since", "2026-11-24T09:58:00Z", true),
                    field("Incident", "#7", true),
                    field("Tags", "prod", true)
                ],
                "ts": "2026-11-24T10:00:00Z"
            }]
        })
    );
}

#[test]
fn incident_resolved_request_does_not_mention() {
    let n = Notification::for_test(sample_event("incident.resolved"));
    let cfg = config(json!({"webhook_url": URL, "mention": "@all"}));
    assert_eq!(
        sent_json(&build_request(&cfg, &n).unwrap()),
        json!({
            "text": "*[UP] api*",
            "attachments": [{
                "title": "Open incident",
                "title_link": "https://pharos.example/incidents/7",
                "color": "#2eb886",
                "text": "api is up again after 12m 0s.",
                "fields": [
                    field("Monitor", "api", true),
                    field("Status", "UP", true),
                    field("Cause", "expected 200, got 503", false),
                    field("Since", "2026-11-24T10:10:00Z", true),
                    field("Incident", "#7", true),
                    field("Duration", "12m 0s", true),
                    field("Tags", "prod", true)
                ],
                "ts": "2026-11-24T10:10:00Z"
            }]
        })
    );
}

#[test]
fn test_alert_without_links_names_its_kind() {
    let mut ev = sample_event("test");
    ev["title"] = json!("Channel check");
    ev["body"] = json!("ping @all");
    ev["dashboard_url"] = Value::Null;
    let n = Notification::for_test(ev);
    assert_eq!(
        sent_json(&build_request(&config(json!({"webhook_url": URL})), &n).unwrap()),
        json!({
            "text": "*[TEST] Channel check*",
            "attachments": [{
                "title": "Test alert",
                "color": "#6b7280",
                "text": "ping @\u{200B}all",
                "fields": [field("Status", "UP", true)],
                "ts": "2026-11-24T10:00:00Z"
            }]
        })
    );
}

#[test]
fn answers_are_classified() {
    mock::reset();
    let script = Rc::new(RefCell::new(vec![
        Ok(http::Response::new(200, r#"{"success":true}"#)),
        Ok(http::Response::new(
            200,
            r#"{"success":false,"error":"Invalid integration"}"#,
        )),
        Ok(http::Response::new(
            429,
            r#"{"success":false,"error":"Too many requests"}"#,
        )),
        Ok(http::Response::new(502, "")),
        Ok(http::Response::new(
            400,
            r#"{"success":false,"error":"Invalid integration id or token provided."}"#,
        )),
        Err(CapError::Timeout(format!(
            "HTTP POST {URL}: waiting for the response"
        ))),
    ]));
    let s = script.clone();
    mock::http(move |_| s.borrow_mut().remove(0));
    let n = Notification::for_test(sample_event("incident.opened"));
    let cfg = json!({"webhook_url": URL}).to_string();
    assert_eq!(
        run_notify::<RocketChat>(&cfg, &n).unwrap(),
        Receipt::new("HTTP 200")
    );
    assert_eq!(
        run_notify::<RocketChat>(&cfg, &n).unwrap_err(),
        DeliveryError::Permanent("HTTP 200: Invalid integration".into())
    );
    assert!(
        run_notify::<RocketChat>(&cfg, &n)
            .unwrap_err()
            .is_transient()
    );
    assert!(
        run_notify::<RocketChat>(&cfg, &n)
            .unwrap_err()
            .is_transient()
    );
    let err = run_notify::<RocketChat>(&cfg, &n).unwrap_err();
    assert!(
        !err.is_transient() && err.reason().contains("Invalid integration id"),
        "{err}"
    );
    let err = run_notify::<RocketChat>(&cfg, &n).unwrap_err();
    assert!(err.is_transient());
    assert!(
        !err.reason().contains("AbCdEfGhIjKlMnOpQrStUvWxYz"),
        "{err}"
    );
    mock::reset();
}

#[test]
fn config_errors_are_permanent() {
    let n = Notification::for_test(sample_event("incident.opened"));
    for bad in [
        json!({}),
        json!({"webhook_url": "chat.example.com/hooks/a/b"}),
        json!({"webhook_url": URL, "icon_url": "https://x/"}),
    ] {
        let err = run_notify::<RocketChat>(&bad.to_string(), &n).unwrap_err();
        assert!(
            !err.is_transient() && err.reason().contains("config"),
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
    for bad in [
        json!({}),
        json!({"webhook_url": URL, "channel": "ops"}),
        json!({"webhook_url": URL, "emoji": "siren"}),
        json!({"webhook_url": URL, "extra": 1}),
    ] {
        assert!(!v.is_valid(&bad), "schema should reject {bad}");
    }
    assert_eq!(s["properties"]["webhook_url"]["x-secret"], true);
    let info = notify::notify_plugin_info::<RocketChat>();
    assert_eq!(
        (info.name.as_str(), info.version.as_str()),
        ("rocketchat", "0.1.0")
    );
    assert_eq!(info.capabilities, vec!["http".to_string()]);
    for (name, prop) in s["properties"].as_object().unwrap() {
        assert!(prop["description"].is_string(), "{name} has no description");
    }
}
