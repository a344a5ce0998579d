use super::*;
use pharos_sdk::notify::render::sample_event;
use pharos_sdk::notify::run_notify;
use pharos_sdk::{CapError, http, mock};
use std::cell::RefCell;
use std::rc::Rc;

const URL: &str = "https://prod-12.westeurope.logic.azure.com:443/workflows/0123456789abcdef/triggers/manual/paths/invoke?api-version=2016-06-01&sig=AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefg";

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

fn message(card: Value) -> Value {
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card
        }]
    })
}

fn header(style: &str, title: &str, kind: &str) -> Value {
    json!({
        "type": "Container", "style": style, "bleed": true,
        "items": [
            {"type": "TextBlock", "text": title, "weight": "Bolder", "size": "Large", "wrap": true},
            {"type": "TextBlock", "text": format!("Pharos · {kind}"), "isSubtle": true, "spacing": "None", "wrap": true}
        ]
    })
}

#[test]
fn incident_opened_request() {
    let n = Notification::for_test(sample_event("incident.opened"));
    let req = build_request(&config(json!({"webhook_url": URL})), &n).unwrap();
    assert_eq!(
        sent_json(&req),
        message(json!({
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "msteams": {"width": "Full"},
            "body": [
                header("attention", "[DOWN] api", "Incident opened"),
                {"type": "TextBlock", "text": "api is down: expected 200, got 503.", "wrap": true},
                {"type": "FactSet", "facts": [
                    {"title": "Monitor", "value": "api"},
                    {"title": "Status", "value": "DOWN"},
                    {"title": "Severity", "value": "critical"},
                    {"title": "Cause", "value": "expected 200, got 503"},
                    {"title": "Since", "value": "2026-11-24T09:58:00Z"},
                    {"title": "Incident", "value": "#7"},
                    {"title": "Tags", "value": "prod"}
                ]}
            ],
            "actions": [{"type": "Action.OpenUrl", "title": "Open incident", "url": "https://pharos.example/incidents/7"}]
        }))
    );
}

#[test]
fn incident_resolved_request() {
    let n = Notification::for_test(sample_event("incident.resolved"));
    let req = build_request(
        &config(json!({"webhook_url": URL, "full_width": false})),
        &n,
    )
    .unwrap();
    assert_eq!(
        sent_json(&req),
        message(json!({
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "body": [
                header("good", "[UP] api", "Incident resolved"),
                {"type": "TextBlock", "text": "api is up again after 12m 0s.", "wrap": true},
                {"type": "FactSet", "facts": [
                    {"title": "Monitor", "value": "api"},
                    {"title": "Status", "value": "UP"},
                    {"title": "Cause", "value": "expected 200, got 503"},
                    {"title": "Since", "value": "2026-11-24T10:10:00Z"},
                    {"title": "Incident", "value": "#7"},
                    {"title": "Duration", "value": "12m 0s"},
                    {"title": "Tags", "value": "prod"}
                ]}
            ],
            "actions": [{"type": "Action.OpenUrl", "title": "Open incident", "url": "https://pharos.example/incidents/7"}]
        }))
    );
}

#[test]
fn test_and_digest_requests() {
    let mut ev = sample_event("test");
    ev["title"] = json!("Channel check");
    let n = Notification::for_test(ev);
    let req = build_request(&config(json!({"webhook_url": URL})), &n).unwrap();
    let sent = sent_json(&req);
    let sent_card = &sent["attachments"][0]["content"];
    assert_eq!(
        sent_card["body"][0],
        header("emphasis", "[TEST] Channel check", "Test alert")
    );
    assert_eq!(
        sent_card["body"][2],
        json!({"type": "FactSet", "facts": [{"title": "Status", "value": "UP"}]})
    );
    assert_eq!(sent_card["actions"][0]["title"], "Open dashboard");

    let n = Notification::for_test(sample_event("digest"));
    let digest = card(&config(json!({"webhook_url": URL})), &n);
    assert_eq!(
        digest["body"][2],
        json!({"type": "TextBlock", "wrap": true, "text": "- [DOWN] api (Incident opened, 2026-11-24T09:59:00Z)\n- [DOWN] web (Incident opened, 2026-11-24T09:59:30Z)\n- [UP] db (Incident resolved, 2026-11-24T09:59:45Z)"})
    );
}

#[test]
fn answers_are_classified() {
    mock::reset();
    let script = Rc::new(RefCell::new(vec![
        Ok(http::Response::new(202, "")),
        Ok(http::Response::new(200, "1")),
        Ok(http::Response::new(429, "")),
        Ok(http::Response::new(502, "")),
        Ok(http::Response::new(
            400,
            r#"{"error":{"code":"InvalidRequestContent"}}"#,
        )),
        Ok(http::Response::new(
            401,
            r#"{"error":{"code":"DirectApiAuthorizationRequired"}}"#,
        )),
        Ok(http::Response::new(
            200,
            "Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error 429 with ContextId …",
        )),
        Ok(http::Response::new(
            200,
            "Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error 413",
        )),
        Err(CapError::Tls(format!("HTTP exchange with {URL} failed"))),
    ]));
    let s = script.clone();
    mock::http(move |_| s.borrow_mut().remove(0));
    let n = Notification::for_test(sample_event("incident.opened"));
    let cfg = json!({"webhook_url": URL}).to_string();
    assert_eq!(
        run_notify::<Teams>(&cfg, &n).unwrap(),
        Receipt::new("HTTP 202")
    );
    assert_eq!(
        run_notify::<Teams>(&cfg, &n).unwrap(),
        Receipt::new("HTTP 200")
    );
    assert!(run_notify::<Teams>(&cfg, &n).unwrap_err().is_transient());
    assert!(run_notify::<Teams>(&cfg, &n).unwrap_err().is_transient());
    assert!(!run_notify::<Teams>(&cfg, &n).unwrap_err().is_transient());
    let err = run_notify::<Teams>(&cfg, &n).unwrap_err();
    assert!(!err.is_transient() && err.reason().contains("DirectApiAuthorizationRequired"));
    assert!(run_notify::<Teams>(&cfg, &n).unwrap_err().is_transient());
    let err = run_notify::<Teams>(&cfg, &n).unwrap_err();
    assert!(!err.is_transient() && err.reason().contains("413"), "{err}");
    let err = run_notify::<Teams>(&cfg, &n).unwrap_err();
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
        json!({"webhook_url": "not a url"}),
        json!({"webhook_url": URL, "theme": "dark"}),
    ] {
        let err = run_notify::<Teams>(&bad.to_string(), &n).unwrap_err();
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
        json!({"webhook_url": "mailto:x@y"}),
        json!({"webhook_url": URL, "full_width": "yes"}),
        json!({"webhook_url": URL, "extra": 1}),
    ] {
        assert!(!v.is_valid(&bad), "schema should reject {bad}");
    }
    assert_eq!(s["properties"]["webhook_url"]["x-secret"], true);
    assert_eq!(
        json!(config(json!({"webhook_url": URL})).full_width),
        s["properties"]["full_width"]["default"]
    );
    let info = notify::notify_plugin_info::<Teams>();
    assert_eq!(
        (info.name.as_str(), info.version.as_str()),
        ("teams", "0.1.0")
    );
    assert_eq!(info.capabilities, vec!["http".to_string()]);
    for (name, prop) in s["properties"].as_object().unwrap() {
        assert!(prop["description"].is_string(), "{name} has no description");
    }
}
