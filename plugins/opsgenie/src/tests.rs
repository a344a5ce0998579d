use super::*;
use pharos_sdk::http::Response;
use pharos_sdk::notify::testing::{
    digest, flapping, flapping_ended, headers, json_body, opened, pairs, record_http, resolved,
    test_alert,
};
use pharos_sdk::notify::{EventIncident, run_notify};
use pharos_sdk::{CapError, mock};

const KEY: &str = "eb243592-faa2-4ba2-a551-1afdf565c889";
const AUTH: (&str, &str) = (
    "Authorization",
    "GenieKey eb243592-faa2-4ba2-a551-1afdf565c889",
);
const JSON: (&str, &str) = ("Content-Type", "application/json");

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
    config(json!({"api_key": KEY}))
}

fn one(c: &Config, n: &Notification) -> Request {
    let mut reqs = build_requests(c, n).unwrap();
    assert_eq!(
        reqs.len(),
        1,
        "{:?}",
        reqs.iter().map(|r| &r.0).collect::<Vec<_>>()
    );
    reqs.remove(0).1
}

#[test]
fn opened_incident_creates_an_alert_aliased_by_the_incident() {
    let c = config(json!({
        "api_key": KEY,
        "responders": [{"type": "team", "name": "SRE"}, {"type": "user", "username": "oncall@example.com"}],
        "tags": ["production", "prod"]
    }));
    let req = one(&c, &opened());
    assert_eq!(req.method, "POST");
    assert_eq!(req.url, "https://api.opsgenie.com/v2/alerts");
    assert_eq!(headers(&req), pairs(&[JSON, AUTH]));
    assert_eq!(
        json_body(&req),
        json!({
            "message": "[DOWN] api",
            "alias": "pharos-incident-7",
            "description": "api is DOWN since 2026-11-24 09:58:00 UTC.\nCause: expected 200, got 503\nIncident #7: https://pharos.example/incidents/7",
            "responders": [{"type": "team", "name": "SRE"}, {"type": "user", "username": "oncall@example.com"}],
            "tags": ["pharos", "down", "prod", "production"],
            "details": {
                "event": "incident.opened",
                "status": "down",
                "cause": "expected 200, got 503",
                "since": "2026-11-24T09:58:00Z",
                "monitor": "api",
                "monitor_id": "3",
                "check": "http",
                "monitor_url": "https://pharos.example/monitors/3",
                "incident_id": "7",
                "incident_url": "https://pharos.example/incidents/7",
                "dashboard_url": "https://pharos.example/"
            },
            "entity": "api",
            "source": "Pharos",
            "priority": "P1",
            "user": "Pharos"
        })
    );
    assert!(!req.follow_redirects && req.verify_tls);
}

#[test]
fn resolved_incident_closes_the_alert_by_alias() {
    let c = config(json!({"api_key": KEY, "api_url": "https://api.eu.opsgenie.com/"}));
    let req = one(&c, &resolved());
    assert_eq!(req.method, "POST");
    assert_eq!(
        req.url,
        "https://api.eu.opsgenie.com/v2/alerts/pharos-incident-7/close?identifierType=alias"
    );
    assert_eq!(headers(&req), pairs(&[JSON, AUTH]));
    assert_eq!(
        json_body(&req),
        json!({
            "user": "Pharos",
            "source": "Pharos",
            "note": "api is UP again after 32 min down (since 2026-11-24 09:58:00 UTC).\nIncident #7: https://pharos.example/incidents/7"
        })
    );
}

#[test]
fn test_alert_creates_its_own_informational_alert() {
    let req = one(&base(), &test_alert());
    assert_eq!(req.url, "https://api.opsgenie.com/v2/alerts");
    assert_eq!(headers(&req), pairs(&[JSON, AUTH]));
    assert_eq!(
        json_body(&req),
        json!({
            "message": "[TEST] Pharos test alert",
            "alias": "pharos-test-pharos-test-k9",
            "description": "This is a test alert from Pharos for channel \"ops\". If you can read this, the channel works.",
            "tags": ["pharos", "up", "test"],
            "details": {"event": "test", "status": "up"},
            "source": "Pharos",
            "priority": "P5",
            "user": "Pharos"
        })
    );
}

#[test]
fn escalation_raises_the_priority_of_the_same_alert() {
    let mut n = opened();
    n.event.kind = "incident.escalated".into();
    let reqs = build_requests(&base(), &n).unwrap();
    assert_eq!(
        reqs.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
        vec![
            Action::Create("pharos-incident-7".into()),
            Action::SetPriority("pharos-incident-7".into())
        ]
    );
    let set = &reqs[1].1;
    assert_eq!(set.method, "PUT");
    assert_eq!(
        set.url,
        "https://api.opsgenie.com/v2/alerts/pharos-incident-7/priority?identifierType=alias"
    );
    assert_eq!(headers(set), pairs(&[JSON, AUTH]));
    assert_eq!(json_body(set), json!({"priority": "P1"}));
    let mut reminder = opened();
    reminder.event.kind = "incident.reminder".into();
    assert_eq!(
        json_body(&one(&base(), &reminder))["alias"],
        "pharos-incident-7"
    );
}

#[test]
fn flapping_and_digest() {
    let b = json_body(&one(&base(), &flapping()));
    assert_eq!(
        (b["alias"].as_str(), b["priority"].as_str()),
        (Some("pharos-monitor-3-flapping"), Some("P3"))
    );
    assert_eq!(
        one(&base(), &flapping_ended()).url,
        "https://api.opsgenie.com/v2/alerts/pharos-monitor-3-flapping/close?identifierType=alias"
    );
    let mut n = flapping_ended();
    n.event.status = Some("down".into());
    n.event.severity = Some("critical".into());
    n.event.dedup_key = Some("pharos-incident-8".into());
    n.event.incident = Some(EventIncident {
        id: 8,
        status: "open".into(),
        ..EventIncident::default()
    });
    assert_eq!(
        build_requests(&base(), &n)
            .unwrap()
            .into_iter()
            .map(|r| r.0)
            .collect::<Vec<_>>(),
        vec![
            Action::Create("pharos-incident-8".into()),
            Action::Close("pharos-monitor-3-flapping".into())
        ]
    );
    let d = json_body(&one(&base(), &digest()));
    assert_eq!(d["alias"], "pharos-pharos-digest-5-c2");
    assert_eq!(d["priority"], "P5");
    assert!(d["description"].as_str().unwrap().contains("[DOWN] web"));
}

#[test]
fn limits_and_odd_aliases() {
    let mut n = opened();
    n.title = "t".repeat(200);
    n.event.dedup_key = Some("a/b c".into());
    let c = config(
        json!({"api_key": KEY, "tags": (0..25).map(|i| format!("t{i}")).collect::<Vec<_>>()}),
    );
    let b = json_body(&one(&c, &n));
    assert_eq!(b["message"].as_str().unwrap().chars().count(), 130);
    assert_eq!(b["tags"].as_array().unwrap().len(), 20);
    n.event.kind = "incident.resolved".into();
    assert_eq!(
        one(&c, &n).url,
        "https://api.opsgenie.com/v2/alerts/a%2Fb%20c/close?identifierType=alias"
    );
}

#[test]
fn answers_are_classified() {
    let cfg = json!({"api_key": KEY}).to_string();
    let seen = record_http(vec![
        Ok(Response::new(
            202,
            r#"{"result":"Request will be processed","took":0.302,"requestId":"43a29c5c-3dbf-4fa4-9c26-f4f71023e120"}"#,
        )),
        Ok(Response::new(
            422,
            r#"{"message":"Request body is not processable. Please check the errors.","errors":{"message":"Message can not be empty."},"took":0.0,"requestId":"x"}"#,
        )),
        Ok(Response::new(
            429,
            r#"{"message":"You are making too many requests!","took":0.0}"#,
        )),
        Ok(Response::new(503, "")),
        Ok(Response::new(
            401,
            format!(r#"{{"message":"Could not authenticate with key {KEY}"}}"#),
        )),
        Err(CapError::Timeout("deadline".into())),
    ]);
    let n = opened();
    assert_eq!(
        run_notify::<Opsgenie>(&cfg, &n).unwrap(),
        Receipt::new("HTTP 202: create pharos-incident-7")
            .with_external_id("43a29c5c-3dbf-4fa4-9c26-f4f71023e120")
    );
    let e = run_notify::<Opsgenie>(&cfg, &n).unwrap_err();
    assert!(
        !e.is_transient() && e.reason().starts_with("HTTP 422"),
        "{e}"
    );
    assert!(run_notify::<Opsgenie>(&cfg, &n).unwrap_err().is_transient());
    assert!(run_notify::<Opsgenie>(&cfg, &n).unwrap_err().is_transient());
    let e = run_notify::<Opsgenie>(&cfg, &n).unwrap_err();
    assert!(!e.is_transient() && !e.reason().contains(KEY), "{e}");
    assert!(run_notify::<Opsgenie>(&cfg, &n).unwrap_err().is_transient());
    assert_eq!(seen.borrow().len(), 6);
    // Two-step deliveries stop at the first failure (the retry repeats both).
    let mut esc = opened();
    esc.event.kind = "incident.escalated".into();
    let seen = record_http(vec![
        Ok(Response::new(202, "{}")),
        Ok(Response::new(500, "")),
    ]);
    assert!(
        run_notify::<Opsgenie>(&cfg, &esc)
            .unwrap_err()
            .is_transient()
    );
    assert_eq!(seen.borrow().len(), 2);
    mock::reset();
}

#[test]
fn config_errors_are_permanent_and_name_the_field() {
    let seen = record_http(vec![]);
    for (doc, field) in [
        (json!({}), "api_key"),
        (json!({"api_key": "not-a-uuid"}), "api_key"),
        (
            json!({"api_key": KEY, "api_url": "api.opsgenie.com"}),
            "api_url",
        ),
        (json!({"api_key": KEY, "priority": "P0"}), "priority"),
        (
            json!({"api_key": KEY, "responders": [{"type": "team"}]}),
            "responders[0]",
        ),
        (
            json!({"api_key": KEY, "responders": [{"type": "team", "id": "a", "name": "b"}]}),
            "responders[0]",
        ),
        (
            json!({"api_key": KEY, "responders": [{"type": "team", "username": "a@b"}]}),
            "responders[0]",
        ),
        (
            json!({"api_key": KEY, "responders": [{"type": "user", "name": "Ann"}]}),
            "responders[0]",
        ),
        (
            json!({"api_key": KEY, "responders": [{"type": "robot", "id": "x"}]}),
            "responders[0]",
        ),
        (json!({"api_key": KEY, "tags": [""]}), "tags[0]"),
        (json!({"api_key": KEY, "teams": ["x"]}), "teams"),
    ] {
        let err = run_notify::<Opsgenie>(&doc.to_string(), &opened()).unwrap_err();
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
        json!({"api_key": "not-a-uuid"}),
        json!({"api_key": KEY, "api_url": "api.opsgenie.com"}),
        json!({"api_key": KEY, "priority": "P0"}),
        json!({"api_key": KEY, "responders": [{"type": "team"}]}),
        json!({"api_key": KEY, "responders": [{"type": "team", "id": "a", "name": "b"}]}),
        json!({"api_key": KEY, "responders": [{"type": "team", "username": "a@b"}]}),
        json!({"api_key": KEY, "responders": [{"type": "user", "name": "Ann"}]}),
        json!({"api_key": KEY, "tags": [""]}),
        json!({"api_key": KEY, "teams": ["x"]}),
    ] {
        assert!(!v.is_valid(&doc), "schema should reject {doc}");
        let rejected = pharos_sdk::parse_config::<Config>(&doc.to_string())
            .map_err(|e| e.to_string())
            .and_then(|c| build_requests(&c, &opened()).map_err(|e| e.to_string()));
        assert!(rejected.is_err(), "plugin should reject {doc}");
    }
    let c = base();
    let p = &s["properties"];
    assert_eq!(json!(c.api_url), p["api_url"]["default"]);
    assert_eq!(json!(c.tags), p["tags"]["default"]);
    assert_eq!(p["api_key"]["x-secret"], true);
}

#[test]
fn describe() {
    let info = pharos_sdk::notify::notify_plugin_info::<Opsgenie>();
    assert_eq!(
        (info.name.as_str(), info.version.as_str()),
        ("opsgenie", "0.1.0")
    );
    assert_eq!(info.capabilities, vec!["http".to_string()]);
    let schema: Value = serde_json::from_str(&info.config_schema).unwrap();
    assert_eq!(schema["additionalProperties"], false);
    for (name, prop) in schema["properties"].as_object().unwrap() {
        assert!(prop["description"].is_string(), "{name} has no description");
    }
}
