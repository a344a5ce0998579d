use super::*;
use pharos_sdk::notify::render::sample_event;
use pharos_sdk::notify::run_notify;
use pharos_sdk::{CapError, http, mock};
use std::cell::RefCell;
use std::rc::Rc;

const URL: &str = "https://mattermost.example.com/hooks/xxxxxxxxxxxxxxxxxxxxxxxxxx";

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
        "webhook_url": URL, "channel": "ops-alerts", "username": "Pharos",
        "icon_url": "https://pharos.example/logo.png", "mention": "@channel"
    }));
    assert_eq!(
        sent_json(&build_request(&cfg, &n).unwrap()),
        json!({
            "text": "@channel **\\[DOWN\\] api**",
            "channel": "ops-alerts",
            "username": "Pharos",
            "icon_url": "https://pharos.example/logo.png",
            "attachments": [{
                "fallback": "[DOWN] api",
                "color": "#d6333f",
                "title": "Open incident",
                "title_link": "https://pharos.example/incidents/7",
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
                "footer": "Pharos · Incident opened"
            }]
        })
    );
}

#[test]
fn incident_resolved_request_does_not_mention() {
    let n = Notification::for_test(sample_event("incident.resolved"));
    let cfg = config(json!({"webhook_url": URL, "mention": "@channel"}));
    assert_eq!(
        sent_json(&build_request(&cfg, &n).unwrap()),
        json!({
            "text": "**\\[UP\\] api**",
            "attachments": [{
                "fallback": "[UP] api",
                "color": "#2eb886",
                "title": "Open incident",
                "title_link": "https://pharos.example/incidents/7",
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
                "footer": "Pharos · Incident resolved"
            }]
        })
    );
}

#[test]
fn test_alert_is_labelled_and_untrusted_text_is_neutralised() {
    let mut ev = sample_event("test");
    ev["title"] = json!("Channel check");
    ev["body"] = json!("@all look: **not bold**");
    let n = Notification::for_test(ev);
    let cfg = config(json!({"webhook_url": URL, "mention": "@here"}));
    assert_eq!(
        sent_json(&build_request(&cfg, &n).unwrap()),
        json!({
            "text": "**\\[TEST\\] Channel check**",
            "attachments": [{
                "fallback": "[TEST] Channel check",
                "color": "#6b7280",
                "title": "Open dashboard",
                "title_link": "https://pharos.example/",
                "text": "@\u{200B}all look: \\*\\*not bold\\*\\*",
                "fields": [field("Status", "UP", true)],
                "footer": "Pharos · Test alert"
            }]
        })
    );
    let n = Notification::for_test(sample_event("digest"));
    let msg = payload(&config(json!({"webhook_url": URL})), &n);
    assert!(
        msg["attachments"][0]["text"]
            .as_str()
            .unwrap()
            .ends_with("\n- \\[UP\\] db (Incident resolved, 2026-11-24T09:59:45Z)")
    );
}

#[test]
fn answers_are_classified() {
    mock::reset();
    let script = Rc::new(RefCell::new(vec![
        Ok(http::Response::new(200, "ok")),
        Ok(http::Response::new(429, "")),
        Ok(http::Response::new(500, "")),
        Ok(http::Response::new(
            400,
            r#"{"id":"web.incoming_webhook.parse.app_error","message":"Unable to parse incoming data","status_code":400}"#,
        )),
        Ok(http::Response::new(
            404,
            r#"{"id":"web.incoming_webhook.invalid.app_error"}"#,
        )),
        Err(CapError::Connect(format!(
            "HTTP exchange with {URL} failed"
        ))),
    ]));
    let s = script.clone();
    mock::http(move |_| s.borrow_mut().remove(0));
    let n = Notification::for_test(sample_event("incident.opened"));
    let cfg = json!({"webhook_url": URL}).to_string();
    assert_eq!(
        run_notify::<Mattermost>(&cfg, &n).unwrap(),
        Receipt::new("HTTP 200")
    );
    assert!(
        run_notify::<Mattermost>(&cfg, &n)
            .unwrap_err()
            .is_transient()
    );
    assert!(
        run_notify::<Mattermost>(&cfg, &n)
            .unwrap_err()
            .is_transient()
    );
    let err = run_notify::<Mattermost>(&cfg, &n).unwrap_err();
    assert!(
        !err.is_transient() && err.reason().contains("Unable to parse"),
        "{err}"
    );
    assert!(
        !run_notify::<Mattermost>(&cfg, &n)
            .unwrap_err()
            .is_transient()
    );
    let err = run_notify::<Mattermost>(&cfg, &n).unwrap_err();
    assert!(err.is_transient());
    assert!(
        !err.reason().contains("xxxxxxxxxxxxxxxxxxxxxxxxxx"),
        "{err}"
    );
    mock::reset();
}

#[test]
fn config_errors_are_permanent() {
    let n = Notification::for_test(sample_event("incident.opened"));
    for bad in [
        json!({}),
        json!({"webhook_url": "/hooks/abc"}),
        json!({"webhook_url": URL, "icon_emoji": ":x:"}),
    ] {
        let err = run_notify::<Mattermost>(&bad.to_string(), &n).unwrap_err();
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
        json!({"webhook_url": URL, "mention": "channel"}),
        json!({"webhook_url": URL, "icon_url": "logo.png"}),
        json!({"webhook_url": URL, "extra": 1}),
    ] {
        assert!(!v.is_valid(&bad), "schema should reject {bad}");
    }
    assert_eq!(s["properties"]["webhook_url"]["x-secret"], true);
    let info = notify::notify_plugin_info::<Mattermost>();
    assert_eq!(
        (info.name.as_str(), info.version.as_str()),
        ("mattermost", "0.1.0")
    );
    assert_eq!(info.capabilities, vec!["http".to_string()]);
    for (name, prop) in s["properties"].as_object().unwrap() {
        assert!(prop["description"].is_string(), "{name} has no description");
    }
}
