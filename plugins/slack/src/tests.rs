use super::*;
use pharos_sdk::notify::render::sample_event;
use pharos_sdk::notify::run_notify;
use pharos_sdk::{CapError, http, mock};
use std::cell::RefCell;
use std::rc::Rc;

const URL: &str = "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX";

fn config(v: Value) -> Config {
    pharos_sdk::parse_config(&v.to_string()).unwrap()
}

fn schema() -> Value {
    serde_json::from_str(SCHEMA).unwrap()
}

fn sent_json(req: &Request) -> Value {
    serde_json::from_slice(req.body.as_deref().unwrap()).unwrap()
}

fn assert_json_post(req: &Request) {
    assert_eq!(req.method, "POST");
    assert_eq!(req.url, URL);
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
        "webhook_url": URL, "channel": "#ops", "username": "Pharos",
        "icon_emoji": ":rotating_light:", "mention": "<!here>"
    }));
    let req = build_request(&cfg, &n).unwrap();
    assert_json_post(&req);
    assert_eq!(
        sent_json(&req),
        json!({
            "text": "<!here> *[DOWN] api*",
            "channel": "#ops",
            "username": "Pharos",
            "icon_emoji": ":rotating_light:",
            "attachments": [{
                "fallback": "[DOWN] api",
                "color": "#d6333f",
                "title": "Open incident",
                "title_link": "https://pharos.example/incidents/7",
                "text": "api is down: expected 200, got 503.",
                "fields": [
                    {"title": "Monitor", "value": "api", "short": true},
                    {"title": "Status", "value": "DOWN", "short": true},
                    {"title": "Severity", "value": "critical", "short": true},
                    {"title": "Cause", "value": "expected 200, got 503", "short": false},
                    {"title": "Since", "value": "2026-11-24T09:58:00Z", "short": true},
                    {"title": "Incident", "value": "#7", "short": true},
                    {"title": "Tags", "value": "prod", "short": true}
                ],
                "footer": "Pharos · Incident opened",
                "ts": 1_795_514_400
            }]
        })
    );
}

#[test]
fn incident_resolved_request_is_green_and_does_not_mention() {
    let n = Notification::for_test(sample_event("incident.resolved"));
    let cfg = config(json!({"webhook_url": URL, "mention": "<!channel>"}));
    let req = build_request(&cfg, &n).unwrap();
    assert_json_post(&req);
    assert_eq!(
        sent_json(&req),
        json!({
            "text": "*[UP] api*",
            "attachments": [{
                "fallback": "[UP] api",
                "color": "#2eb886",
                "title": "Open incident",
                "title_link": "https://pharos.example/incidents/7",
                "text": "api is up again after 12m 0s.",
                "fields": [
                    {"title": "Monitor", "value": "api", "short": true},
                    {"title": "Status", "value": "UP", "short": true},
                    {"title": "Cause", "value": "expected 200, got 503", "short": false},
                    {"title": "Since", "value": "2026-11-24T10:10:00Z", "short": true},
                    {"title": "Incident", "value": "#7", "short": true},
                    {"title": "Duration", "value": "12m 0s", "short": true},
                    {"title": "Tags", "value": "prod", "short": true}
                ],
                "footer": "Pharos · Incident resolved",
                "ts": 1_795_515_000
            }]
        })
    );
}

#[test]
fn test_alert_is_labelled() {
    let mut ev = sample_event("test");
    ev["title"] = json!("Checking the channel");
    let n = Notification::for_test(ev);
    let req = build_request(
        &config(json!({"webhook_url": URL, "mention": "<!here>"})),
        &n,
    )
    .unwrap();
    assert_eq!(
        sent_json(&req),
        json!({
            "text": "*[TEST] Checking the channel*",
            "attachments": [{
                "fallback": "[TEST] Checking the channel",
                "color": "#6b7280",
                "title": "Open dashboard",
                "title_link": "https://pharos.example/",
                "text": "This is a test notification from Pharos.",
                "fields": [{"title": "Status", "value": "UP", "short": true}],
                "footer": "Pharos · Test alert",
                "ts": 1_795_514_400
            }]
        })
    );
}

#[test]
fn untrusted_text_is_escaped_and_digests_list_their_events() {
    let mut ev = sample_event("incident.opened");
    ev["body"] = json!("got <b>503</b> & <!channel>");
    let n = Notification::for_test(ev);
    let msg = payload(&config(json!({"webhook_url": URL})), &n);
    assert_eq!(
        msg["attachments"][0]["text"],
        "got &lt;b&gt;503&lt;/b&gt; &amp; &lt;!channel&gt;"
    );
    let n = Notification::for_test(sample_event("digest"));
    let msg = payload(&config(json!({"webhook_url": URL})), &n);
    assert_eq!(
        msg["attachments"][0]["text"],
        "3 alerts in the last 60 s.\n• [DOWN] api (Incident opened, 2026-11-24T09:59:00Z)\n• [DOWN] web (Incident opened, 2026-11-24T09:59:30Z)\n• [UP] db (Incident resolved, 2026-11-24T09:59:45Z)"
    );
}

#[test]
fn answers_are_classified_and_the_url_is_redacted() {
    mock::reset();
    let script = Rc::new(RefCell::new(vec![
        Ok(http::Response::new(200, "ok")),
        Ok(http::Response::new(429, "rate_limited")),
        Ok(http::Response::new(500, "")),
        Ok(http::Response::new(404, "no_service")),
        Ok(http::Response::new(400, "invalid_payload")),
        Err(CapError::Timeout(format!(
            "HTTP POST {URL}: waiting for the response"
        ))),
    ]));
    let s = script.clone();
    mock::http(move |_| s.borrow_mut().remove(0));
    let n = Notification::for_test(sample_event("incident.opened"));
    let cfg = json!({"webhook_url": URL}).to_string();
    assert_eq!(
        run_notify::<Slack>(&cfg, &n).unwrap(),
        Receipt::new("HTTP 200")
    );
    assert!(run_notify::<Slack>(&cfg, &n).unwrap_err().is_transient());
    assert!(run_notify::<Slack>(&cfg, &n).unwrap_err().is_transient());
    let err = run_notify::<Slack>(&cfg, &n).unwrap_err();
    assert_eq!(err, DeliveryError::Permanent("HTTP 404: no_service".into()));
    assert!(!run_notify::<Slack>(&cfg, &n).unwrap_err().is_transient());
    let err = run_notify::<Slack>(&cfg, &n).unwrap_err();
    assert!(err.is_transient());
    assert!(!err.reason().contains("XXXXXXXXXXXXXXXXXXXXXXXX"), "{err}");
    assert!(script.borrow().is_empty());
    mock::reset();
}

#[test]
fn config_errors_are_permanent() {
    let n = Notification::for_test(sample_event("incident.opened"));
    for bad in [
        json!({}),
        json!({"webhook_url": "hooks.slack.com/services/x"}),
        json!({"webhook_url": URL, "colour": "red"}),
        json!({"webhook_url": 5}),
    ] {
        let err = run_notify::<Slack>(&bad.to_string(), &n).unwrap_err();
        assert!(!err.is_transient(), "{err}");
        assert!(err.reason().contains("config"), "{err}");
    }
}

#[test]
fn schema_accepts_the_examples_and_rejects_the_rest() {
    let s = schema();
    jsonschema::meta::validate(&s).expect("schema is valid draft 2020-12");
    let v = jsonschema::validator_for(&s).unwrap();
    for example in s["examples"].as_array().unwrap() {
        assert!(v.is_valid(example), "{example}");
        let n = Notification::for_test(sample_event("test"));
        build_request(&config(example.clone()), &n).unwrap();
    }
    for bad in [
        json!({}),
        json!({"webhook_url": "ftp://x"}),
        json!({"webhook_url": URL, "icon_emoji": "siren"}),
        json!({"webhook_url": URL, "extra": true}),
    ] {
        assert!(!v.is_valid(&bad), "schema should reject {bad}");
    }
    assert_eq!(s["properties"]["webhook_url"]["x-secret"], true);
    let info = notify::notify_plugin_info::<Slack>();
    assert_eq!(
        (info.name.as_str(), info.version.as_str()),
        ("slack", "0.1.0")
    );
    assert_eq!(info.capabilities, vec!["http".to_string()]);
    for (name, prop) in s["properties"].as_object().unwrap() {
        assert!(prop["description"].is_string(), "{name} has no description");
    }
}
