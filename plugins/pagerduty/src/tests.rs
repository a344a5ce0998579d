use super::*;
use pharos_sdk::http::Response;
use pharos_sdk::notify::testing::{
    digest, flapping, flapping_ended, headers, json_body, opened, pairs, record_http, resolved,
    test_alert,
};
use pharos_sdk::notify::{EventIncident, run_notify};
use pharos_sdk::{CapError, mock};

const KEY: &str = "R015G8PKV0D3JLFX1Y4ZUTGXMH2ROUTE";
const ENQUEUE: &str = "https://events.pagerduty.com/v2/enqueue";

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
    config(json!({"routing_key": KEY}))
}

/// The only request for `n`.
fn one(c: &Config, n: &Notification) -> Request {
    let mut reqs = build_requests(c, n).unwrap();
    assert_eq!(
        reqs.len(),
        1,
        "{:?}",
        reqs.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    reqs.remove(0).2
}

#[test]
fn opened_incident_triggers_with_the_incident_dedup_key() {
    let req = one(&base(), &opened());
    assert_eq!(req.method, "POST");
    assert_eq!(req.url, ENQUEUE);
    assert_eq!(
        headers(&req),
        pairs(&[("Content-Type", "application/json")])
    );
    assert_eq!(
        json_body(&req),
        json!({
            "routing_key": KEY,
            "event_action": "trigger",
            "dedup_key": "pharos-incident-7",
            "payload": {
                "summary": "[DOWN] api",
                "source": "api",
                "severity": "critical",
                "timestamp": "2026-11-24T10:00:00Z",
                "class": "http",
                "custom_details": {
                    "event": "incident.opened",
                    "details": "api is DOWN since 2026-11-24 09:58:00 UTC.\nCause: expected 200, got 503\nIncident #7: https://pharos.example/incidents/7",
                    "status": "down",
                    "cause": "expected 200, got 503",
                    "since": "2026-11-24T09:58:00Z",
                    "monitor": "api",
                    "monitor_id": 3,
                    "check": "http",
                    "tags": ["prod"],
                    "monitor_url": "https://pharos.example/monitors/3",
                    "incident_id": 7,
                    "incident_url": "https://pharos.example/incidents/7"
                }
            },
            "client": "Pharos",
            "client_url": "https://pharos.example/",
            "links": [{"href": "https://pharos.example/incidents/7", "text": "Open incident"}]
        })
    );
    assert!(!req.follow_redirects && req.verify_tls);
}

#[test]
fn resolved_incident_resolves_the_same_alert() {
    let req = one(&base(), &resolved());
    assert_eq!(req.url, ENQUEUE);
    assert_eq!(
        headers(&req),
        pairs(&[("Content-Type", "application/json")])
    );
    assert_eq!(
        json_body(&req),
        json!({"routing_key": KEY, "event_action": "resolve", "dedup_key": "pharos-incident-7"})
    );
}

#[test]
fn reminders_and_escalations_reuse_the_incident_key() {
    for kind in ["incident.reminder", "incident.escalated"] {
        let mut n = opened();
        n.event.kind = kind.into();
        n.idempotency_key = format!("pharos-7-{kind}-99-c2");
        let b = json_body(&one(&base(), &n));
        assert_eq!(b["event_action"], "trigger", "{kind}");
        assert_eq!(b["dedup_key"], "pharos-incident-7", "{kind}");
    }
    let mut n = opened();
    n.event.kind = "incident.acknowledged".into();
    assert_eq!(
        json_body(&one(&base(), &n)),
        json!({"routing_key": KEY, "event_action": "acknowledge", "dedup_key": "pharos-incident-7"})
    );
}

#[test]
fn test_alert_triggers_its_own_info_alert() {
    let c = config(json!({"routing_key": KEY, "api_url": "http://127.0.0.1:9/"}));
    let req = one(&c, &test_alert());
    assert_eq!(req.url, "http://127.0.0.1:9/v2/enqueue");
    assert_eq!(
        json_body(&req),
        json!({
            "routing_key": KEY,
            "event_action": "trigger",
            "dedup_key": "pharos-test-pharos-test-k9",
            "payload": {
                "summary": "[TEST] Pharos test alert",
                "source": "Pharos",
                "severity": "info",
                "timestamp": "2026-11-24T10:00:00Z",
                "custom_details": {
                    "event": "test",
                    "details": "This is a test alert from Pharos for channel \"ops\". If you can read this, the channel works.",
                    "status": "up",
                    "test": true
                }
            },
            "client": "Pharos"
        })
    );
}

#[test]
fn flapping_opens_and_its_end_resolves_the_flapping_alert() {
    let b = json_body(&one(&base(), &flapping()));
    assert_eq!(b["event_action"], "trigger");
    assert_eq!(b["dedup_key"], "pharos-monitor-3-flapping");
    assert_eq!(b["payload"]["severity"], "warning");
    assert_eq!(
        json_body(&one(&base(), &flapping_ended())),
        json!({"routing_key": KEY, "event_action": "resolve", "dedup_key": "pharos-monitor-3-flapping"})
    );
    // Settling into an open incident pages for the incident and closes the flapping alert.
    let mut n = flapping_ended();
    n.event.status = Some("down".into());
    n.event.severity = Some("critical".into());
    n.event.dedup_key = Some("pharos-incident-8".into());
    n.event.incident = Some(EventIncident {
        id: 8,
        status: "open".into(),
        severity: "down".into(),
        ..EventIncident::default()
    });
    let reqs = build_requests(&base(), &n).unwrap();
    let plan: Vec<(Action, String)> = reqs.iter().map(|(a, k, _)| (*a, k.clone())).collect();
    assert_eq!(
        plan,
        vec![
            (Action::Trigger, "pharos-incident-8".to_string()),
            (Action::Resolve, "pharos-monitor-3-flapping".to_string()),
        ]
    );
    assert_eq!(json_body(&reqs[0].2)["payload"]["severity"], "critical");

    let seen = record_http(vec![
        Ok(Response::new(
            202,
            r#"{"status":"success","message":"Event processed","dedup_key":"pharos-incident-8"}"#,
        )),
        Ok(Response::new(
            202,
            r#"{"status":"success","message":"Event processed","dedup_key":"pharos-monitor-3-flapping"}"#,
        )),
    ]);
    let cfg = json!({"routing_key": KEY}).to_string();
    assert_eq!(
        run_notify::<PagerDuty>(&cfg, &n).unwrap(),
        Receipt::new("HTTP 202: trigger pharos-incident-8, resolve pharos-monitor-3-flapping")
            .with_external_id("pharos-incident-8")
    );
    assert_eq!(seen.borrow().len(), 2);
    mock::reset();
}

#[test]
fn digest_triggers_an_info_alert_listing_the_held_events() {
    let b = json_body(&one(&base(), &digest()));
    assert_eq!(b["event_action"], "trigger");
    assert_eq!(b["dedup_key"], "pharos-pharos-digest-5-c2");
    assert_eq!(b["payload"]["severity"], "info");
    assert_eq!(b["payload"]["source"], "Pharos");
    assert_eq!(
        b["payload"]["custom_details"]["held_events"],
        json!([
            "[DOWN] api (Incident opened, 2026-11-24T10:00:10Z)",
            "[DOWN] web (Incident opened, 2026-11-24T10:00:20Z)"
        ])
    );
    assert_eq!(b["links"][0]["href"], "https://pharos.example/");
}

#[test]
fn severity_override_and_limits() {
    let c = config(json!({"routing_key": KEY, "severity": "error"}));
    assert_eq!(
        json_body(&one(&c, &flapping()))["payload"]["severity"],
        "error"
    );
    let mut n = opened();
    n.title = "x".repeat(2000);
    n.event.dedup_key = Some("k".repeat(300));
    let b = json_body(&one(&base(), &n));
    assert_eq!(
        b["payload"]["summary"].as_str().unwrap().chars().count(),
        MAX_SUMMARY
    );
    assert_eq!(b["dedup_key"].as_str().unwrap().len(), MAX_DEDUP_KEY);
}

#[test]
fn answers_are_classified() {
    let cfg = json!({"routing_key": KEY}).to_string();
    let seen = record_http(vec![
        Ok(Response::new(
            202,
            r#"{"status":"success","message":"Event processed","dedup_key":"pharos-incident-7"}"#,
        )),
        Ok(Response::new(202, "")),
        Ok(Response::new(
            400,
            r#"{"status":"invalid event","message":"Event object is invalid","errors":["'payload.summary' is missing or blank"]}"#,
        )),
        Ok(Response::new(429, "")),
        Ok(Response::new(500, "")),
        Ok(Response::new(403, format!("routing key {KEY} is disabled"))),
        Err(CapError::Tls("certificate expired".into())),
    ]);
    let n = opened();
    assert_eq!(
        run_notify::<PagerDuty>(&cfg, &n).unwrap(),
        Receipt::new("HTTP 202: trigger pharos-incident-7").with_external_id("pharos-incident-7")
    );
    assert_eq!(
        run_notify::<PagerDuty>(&cfg, &n)
            .unwrap()
            .external_id
            .as_deref(),
        Some("pharos-incident-7")
    );
    let e = run_notify::<PagerDuty>(&cfg, &n).unwrap_err();
    assert!(
        !e.is_transient() && e.reason().contains("Event object is invalid"),
        "{e}"
    );
    assert!(
        run_notify::<PagerDuty>(&cfg, &n)
            .unwrap_err()
            .is_transient()
    );
    assert!(
        run_notify::<PagerDuty>(&cfg, &n)
            .unwrap_err()
            .is_transient()
    );
    let e = run_notify::<PagerDuty>(&cfg, &n).unwrap_err();
    assert!(!e.is_transient() && !e.reason().contains(KEY), "{e}");
    assert!(
        run_notify::<PagerDuty>(&cfg, &n)
            .unwrap_err()
            .is_transient()
    );
    assert_eq!(seen.borrow().len(), 7);
    mock::reset();
}

#[test]
fn config_errors_are_permanent_and_name_the_field() {
    let seen = record_http(vec![]);
    for (doc, field) in [
        (json!({}), "routing_key"),
        (json!({"routing_key": "short"}), "routing_key"),
        (json!({"routing_key": KEY, "severity": "fatal"}), "severity"),
        (
            json!({"routing_key": KEY, "api_url": "events.pagerduty.com"}),
            "api_url",
        ),
        (
            json!({"routing_key": KEY, "service_key": "x"}),
            "service_key",
        ),
    ] {
        let err = run_notify::<PagerDuty>(&doc.to_string(), &opened()).unwrap_err();
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
        json!({}),
        json!({"routing_key": "short"}),
        json!({"routing_key": KEY, "severity": "fatal"}),
        json!({"routing_key": KEY, "api_url": "events.pagerduty.com"}),
        json!({"routing_key": KEY, "service_key": "x"}),
    ] {
        assert!(!v.is_valid(&doc), "schema should reject {doc}");
        let rejected = pharos_sdk::parse_config::<Config>(&doc.to_string())
            .map_err(|e| e.to_string())
            .and_then(|c| build_requests(&c, &opened()).map_err(|e| e.to_string()));
        assert!(rejected.is_err(), "plugin should reject {doc}");
    }
    assert_eq!(json!(base().api_url), s["properties"]["api_url"]["default"]);
    assert_eq!(s["properties"]["routing_key"]["x-secret"], true);
}

#[test]
fn describe() {
    let info = pharos_sdk::notify::notify_plugin_info::<PagerDuty>();
    assert_eq!(
        (info.name.as_str(), info.version.as_str()),
        ("pagerduty", "0.1.0")
    );
    assert_eq!(info.capabilities, vec!["http".to_string()]);
    let schema: Value = serde_json::from_str(&info.config_schema).unwrap();
    assert_eq!(schema["additionalProperties"], false);
    for (name, prop) in schema["properties"].as_object().unwrap() {
        assert!(prop["description"].is_string(), "{name} has no description");
    }
}
