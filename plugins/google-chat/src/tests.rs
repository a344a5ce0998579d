use super::*;
use pharos_sdk::notify::render::sample_event;
use pharos_sdk::notify::run_notify;
use pharos_sdk::{CapError, http, mock};
use std::cell::RefCell;
use std::rc::Rc;

const URL: &str = "https://chat.googleapis.com/v1/spaces/AAAAbcdEfgh/messages?key=AIzaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI&token=AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-abcdef%3D";

fn config(v: Value) -> Config {
    pharos_sdk::parse_config(&v.to_string()).unwrap()
}

fn sent_json(req: &Request, url: &str) -> Value {
    assert_eq!(req.method, "POST");
    assert_eq!(req.url, url);
    let headers: Vec<(&str, &str)> = req
        .headers
        .iter()
        .map(|h| (h.name.as_str(), h.value.as_str()))
        .collect();
    assert_eq!(headers, vec![("Content-Type", "application/json")]);
    assert!(!req.follow_redirects && req.verify_tls);
    serde_json::from_slice(req.body.as_deref().unwrap()).unwrap()
}

fn fact(label: &str, text: &str) -> Value {
    json!({"decoratedText": {"topLabel": label, "text": text, "wrapText": true}})
}

fn button(label: &str, url: &str) -> Value {
    json!({"widgets": [{"buttonList": {"buttons": [{"text": label, "onClick": {"openLink": {"url": url}}}]}}]})
}

#[test]
fn incident_opened_request_threads_on_the_dedup_key() {
    let n = Notification::for_test(sample_event("incident.opened"));
    let req = build_request(&config(json!({"webhook_url": URL})), &n).unwrap();
    let url = format!(
        "{URL}&messageReplyOption=REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD&requestId=pharos-7-incident.opened-1"
    );
    assert_eq!(
        sent_json(&req, &url),
        json!({
            "fallbackText": "[DOWN] api",
            "thread": {"threadKey": "pharos-incident-7"},
            "cardsV2": [{
                "cardId": "pharos-alert",
                "card": {
                    "header": {"title": "[DOWN] api", "subtitle": "Pharos · Incident opened"},
                    "sections": [
                        {"widgets": [{"textParagraph": {"text": "<font color=\"#d6333f\"><b>DOWN</b></font>  api is down: expected 200, got 503."}}]},
                        {"header": "Details", "widgets": [
                            fact("Monitor", "api"),
                            fact("Status", "DOWN"),
                            fact("Severity", "critical"),
                            fact("Cause", "expected 200, got 503"),
                            fact("Since", "2026-11-24T09:58:00Z"),
                            fact("Incident", "#7"),
                            fact("Tags", "prod")
                        ]},
                        button("Open incident", "https://pharos.example/incidents/7")
                    ]
                }
            }]
        })
    );
}

#[test]
fn incident_resolved_request_replies_in_the_same_thread() {
    let n = Notification::for_test(sample_event("incident.resolved"));
    let req = build_request(&config(json!({"webhook_url": URL})), &n).unwrap();
    let url = format!(
        "{URL}&messageReplyOption=REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD&requestId=pharos-7-incident.resolved-1"
    );
    assert_eq!(
        sent_json(&req, &url),
        json!({
            "fallbackText": "[UP] api",
            "thread": {"threadKey": "pharos-incident-7"},
            "cardsV2": [{
                "cardId": "pharos-alert",
                "card": {
                    "header": {"title": "[UP] api", "subtitle": "Pharos · Incident resolved"},
                    "sections": [
                        {"widgets": [{"textParagraph": {"text": "<font color=\"#2eb886\"><b>UP</b></font>  api is up again after 12m 0s."}}]},
                        {"header": "Details", "widgets": [
                            fact("Monitor", "api"),
                            fact("Status", "UP"),
                            fact("Cause", "expected 200, got 503"),
                            fact("Since", "2026-11-24T10:10:00Z"),
                            fact("Incident", "#7"),
                            fact("Duration", "12m 0s"),
                            fact("Tags", "prod")
                        ]},
                        button("Open incident", "https://pharos.example/incidents/7")
                    ]
                }
            }]
        })
    );
}

#[test]
fn test_alert_without_threading() {
    let mut ev = sample_event("test");
    ev["title"] = json!("Channel check");
    ev["body"] = json!("Line <1> & line 2\nsecond");
    let n = Notification::for_test(ev);
    let bare = "https://chat.googleapis.com/v1/spaces/AAAA/messages";
    let req = build_request(&config(json!({"webhook_url": bare, "thread": false})), &n).unwrap();
    assert_eq!(
        sent_json(&req, &format!("{bare}?requestId=pharos-7-test-1")),
        json!({
            "fallbackText": "[TEST] Channel check",
            "cardsV2": [{
                "cardId": "pharos-alert",
                "card": {
                    "header": {"title": "[TEST] Channel check", "subtitle": "Pharos · Test alert"},
                    "sections": [
                        {"widgets": [{"textParagraph": {"text": "<font color=\"#6b7280\"><b>UP</b></font>  Line &lt;1&gt; &amp; line 2<br>second"}}]},
                        {"header": "Details", "widgets": [fact("Status", "UP")]},
                        button("Open dashboard", "https://pharos.example/")
                    ]
                }
            }]
        })
    );
}

#[test]
fn receipt_is_the_message_name_and_answers_are_classified() {
    mock::reset();
    let script = Rc::new(RefCell::new(vec![
        Ok(http::Response::new(
            200,
            r#"{"name":"spaces/AAAA/messages/BBBB.BBBB","thread":{"name":"spaces/AAAA/threads/CCCC"}}"#,
        )),
        Ok(http::Response::new(
            429,
            r#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED"}}"#,
        )),
        Ok(http::Response::new(503, "")),
        Ok(http::Response::new(
            400,
            r#"{"error":{"code":400,"status":"INVALID_ARGUMENT"}}"#,
        )),
        Ok(http::Response::new(
            403,
            r#"{"error":{"code":403,"status":"PERMISSION_DENIED"}}"#,
        )),
        Err(CapError::Dns(format!("HTTP exchange with {URL} failed"))),
    ]));
    let s = script.clone();
    mock::http(move |_| s.borrow_mut().remove(0));
    let n = Notification::for_test(sample_event("incident.opened"));
    let cfg = json!({"webhook_url": URL}).to_string();
    assert_eq!(
        run_notify::<GoogleChat>(&cfg, &n).unwrap(),
        Receipt::new("HTTP 200").with_external_id("spaces/AAAA/messages/BBBB.BBBB")
    );
    let err = run_notify::<GoogleChat>(&cfg, &n).unwrap_err();
    assert!(err.is_transient() && err.reason().contains("RESOURCE_EXHAUSTED"));
    assert!(
        run_notify::<GoogleChat>(&cfg, &n)
            .unwrap_err()
            .is_transient()
    );
    assert!(
        !run_notify::<GoogleChat>(&cfg, &n)
            .unwrap_err()
            .is_transient()
    );
    assert!(
        !run_notify::<GoogleChat>(&cfg, &n)
            .unwrap_err()
            .is_transient()
    );
    let err = run_notify::<GoogleChat>(&cfg, &n).unwrap_err();
    assert!(err.is_transient());
    assert!(!err.reason().contains("AIzaSyDdI0hCZtE6vySjMm"), "{err}");
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
        json!({"webhook_url": "chat.googleapis.com/v1/spaces/A/messages"}),
        json!({"webhook_url": URL, "thread": "yes"}),
    ] {
        let err = run_notify::<GoogleChat>(&bad.to_string(), &n).unwrap_err();
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
        json!({"webhook_url": "chat.googleapis.com"}),
        json!({"webhook_url": URL, "thread": 1}),
        json!({"webhook_url": URL, "extra": 1}),
    ] {
        assert!(!v.is_valid(&bad), "schema should reject {bad}");
    }
    assert_eq!(s["properties"]["webhook_url"]["x-secret"], true);
    assert_eq!(
        json!(config(json!({"webhook_url": URL})).thread),
        s["properties"]["thread"]["default"]
    );
    let info = notify::notify_plugin_info::<GoogleChat>();
    assert_eq!(
        (info.name.as_str(), info.version.as_str()),
        ("google-chat", "0.1.0")
    );
    assert_eq!(info.capabilities, vec!["http".to_string()]);
    for (name, prop) in s["properties"].as_object().unwrap() {
        assert!(prop["description"].is_string(), "{name} has no description");
    }
}
