use super::*;
use pharos_sdk::notify::render::sample_event;
use pharos_sdk::notify::run_notify;
use pharos_sdk::{CapError, http, mock};
use std::cell::RefCell;
use std::rc::Rc;

const URL: &str =
    "https://discord.com/api/webhooks/123456789012345678/AbCdEfGhIjKlMnOpQrStUvWxYz0123456789";

fn config(v: Value) -> Config {
    pharos_sdk::parse_config(&v.to_string()).unwrap()
}

fn sent_json(req: &Request) -> Value {
    serde_json::from_slice(req.body.as_deref().unwrap()).unwrap()
}

fn assert_json_post(req: &Request, url: &str) {
    assert_eq!(req.method, "POST");
    assert_eq!(req.url, url);
    let headers: Vec<(&str, &str)> = req
        .headers
        .iter()
        .map(|h| (h.name.as_str(), h.value.as_str()))
        .collect();
    assert_eq!(headers, vec![("Content-Type", "application/json")]);
    assert!(!req.follow_redirects && req.verify_tls);
}

#[test]
fn incident_opened_request() {
    let n = Notification::for_test(sample_event("incident.opened"));
    let cfg = config(json!({
        "webhook_url": URL, "username": "Pharos", "avatar_url": "https://pharos.example/logo.png",
        "thread_id": "987654321098765432", "mention": "<@&111> @here <@!222>"
    }));
    let req = build_request(&cfg, &n).unwrap();
    assert_json_post(
        &req,
        &format!("{URL}?wait=true&thread_id=987654321098765432"),
    );
    assert_eq!(
        sent_json(&req),
        json!({
            "content": "<@&111> @here <@!222>",
            "username": "Pharos",
            "avatar_url": "https://pharos.example/logo.png",
            "allowed_mentions": {"parse": ["everyone"], "users": ["222"], "roles": ["111"]},
            "embeds": [{
                "title": "[DOWN] api",
                "description": "api is down: expected 200, got 503.",
                "url": "https://pharos.example/incidents/7",
                "color": 0xd6333f,
                "timestamp": "2026-11-24T10:00:00Z",
                "fields": [
                    {"name": "Monitor", "value": "api", "inline": true},
                    {"name": "Status", "value": "DOWN", "inline": true},
                    {"name": "Severity", "value": "critical", "inline": true},
                    {"name": "Cause", "value": "expected 200, got 503", "inline": false},
                    {"name": "Since", "value": "2026-11-24T09:58:00Z", "inline": true},
                    {"name": "Incident", "value": "#7", "inline": true},
                    {"name": "Tags", "value": "prod", "inline": true}
                ],
                "footer": {"text": "Pharos · Incident opened"}
            }]
        })
    );
}

#[test]
fn incident_resolved_request_pings_nobody() {
    let n = Notification::for_test(sample_event("incident.resolved"));
    let cfg = config(json!({"webhook_url": format!("{URL}?x=1"), "mention": "@everyone"}));
    let req = build_request(&cfg, &n).unwrap();
    assert_json_post(&req, &format!("{URL}?x=1&wait=true"));
    assert_eq!(
        sent_json(&req),
        json!({
            "allowed_mentions": {"parse": []},
            "embeds": [{
                "title": "[UP] api",
                "description": "api is up again after 12m 0s.",
                "url": "https://pharos.example/incidents/7",
                "color": 0x2eb886,
                "timestamp": "2026-11-24T10:10:00Z",
                "fields": [
                    {"name": "Monitor", "value": "api", "inline": true},
                    {"name": "Status", "value": "UP", "inline": true},
                    {"name": "Cause", "value": "expected 200, got 503", "inline": false},
                    {"name": "Since", "value": "2026-11-24T10:10:00Z", "inline": true},
                    {"name": "Incident", "value": "#7", "inline": true},
                    {"name": "Duration", "value": "12m 0s", "inline": true},
                    {"name": "Tags", "value": "prod", "inline": true}
                ],
                "footer": {"text": "Pharos · Incident resolved"}
            }]
        })
    );
}

#[test]
fn test_alert_request() {
    let mut ev = sample_event("test");
    ev["title"] = json!("Channel check");
    let n = Notification::for_test(ev);
    let req = build_request(&config(json!({"webhook_url": URL})), &n).unwrap();
    assert_eq!(
        sent_json(&req),
        json!({
            "allowed_mentions": {"parse": []},
            "embeds": [{
                "title": "[TEST] Channel check",
                "description": "This is a test notification from Pharos.",
                "url": "https://pharos.example/",
                "color": 0x6b7280,
                "timestamp": "2026-11-24T10:00:00Z",
                "fields": [{"name": "Status", "value": "UP", "inline": true}],
                "footer": {"text": "Pharos · Test alert"}
            }]
        })
    );
}

#[test]
fn untrusted_text_cannot_ping_or_format_and_is_bounded() {
    let mut ev = sample_event("incident.opened");
    ev["body"] = json!(format!("@everyone **bold** {}", "x".repeat(5000)));
    ev["title"] = json!("t".repeat(400));
    let n = Notification::for_test(ev);
    let msg = payload(&config(json!({"webhook_url": URL})), &n);
    let embed = &msg["embeds"][0];
    let description = embed["description"].as_str().unwrap();
    assert!(description.starts_with("@\u{200B}everyone \\*\\*bold\\*\\* xxx"));
    assert_eq!(description.chars().count(), 3000);
    assert_eq!(embed["title"].as_str().unwrap().chars().count(), 256);
    assert_eq!(msg["allowed_mentions"], json!({"parse": []}));
    assert!(msg.get("content").is_none());
}

#[test]
fn receipt_carries_the_message_id_and_answers_are_classified() {
    mock::reset();
    let script = Rc::new(RefCell::new(vec![
        Ok(http::Response::new(
            200,
            r#"{"id":"1177000000000000001","channel_id":"1"}"#,
        )),
        Ok(http::Response::new(204, "")),
        Ok(http::Response::new(
            429,
            r#"{"message":"You are being rate limited.","retry_after":0.5,"global":false}"#,
        )),
        Ok(http::Response::new(503, "")),
        Ok(http::Response::new(
            401,
            r#"{"message":"Invalid Webhook Token","code":50027}"#,
        )),
        Ok(http::Response::new(
            404,
            r#"{"message":"Unknown Webhook","code":10015}"#,
        )),
        Err(CapError::Connect(format!(
            "HTTP exchange with {URL}?wait=true failed"
        ))),
    ]));
    let s = script.clone();
    mock::http(move |_| s.borrow_mut().remove(0));
    let n = Notification::for_test(sample_event("incident.opened"));
    let cfg = json!({"webhook_url": URL}).to_string();
    assert_eq!(
        run_notify::<Discord>(&cfg, &n).unwrap(),
        Receipt::new("HTTP 200").with_external_id("1177000000000000001")
    );
    assert_eq!(
        run_notify::<Discord>(&cfg, &n).unwrap(),
        Receipt::new("HTTP 204")
    );
    let err = run_notify::<Discord>(&cfg, &n).unwrap_err();
    assert!(
        err.is_transient() && err.reason().contains("rate limited"),
        "{err}"
    );
    assert!(run_notify::<Discord>(&cfg, &n).unwrap_err().is_transient());
    let err = run_notify::<Discord>(&cfg, &n).unwrap_err();
    assert!(!err.is_transient() && err.reason().contains("Invalid Webhook Token"));
    assert!(!run_notify::<Discord>(&cfg, &n).unwrap_err().is_transient());
    let err = run_notify::<Discord>(&cfg, &n).unwrap_err();
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
        json!({"webhook_url": "discord.com/api/webhooks/1/x"}),
        json!({"webhook_url": URL, "embed_color": 1}),
    ] {
        let err = run_notify::<Discord>(&bad.to_string(), &n).unwrap_err();
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
        json!({"webhook_url": URL, "thread_id": "abc"}),
        json!({"webhook_url": URL, "mention": "everyone"}),
        json!({"webhook_url": URL, "username": ""}),
        json!({"webhook_url": URL, "extra": 1}),
        json!({"username": "x"}),
    ] {
        assert!(!v.is_valid(&bad), "schema should reject {bad}");
    }
    assert_eq!(s["properties"]["webhook_url"]["x-secret"], true);
    let info = notify::notify_plugin_info::<Discord>();
    assert_eq!(
        (info.name.as_str(), info.version.as_str()),
        ("discord", "0.1.0")
    );
    assert_eq!(info.capabilities, vec!["http".to_string()]);
    for (name, prop) in s["properties"].as_object().unwrap() {
        assert!(prop["description"].is_string(), "{name} has no description");
    }
}
