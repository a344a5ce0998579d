//! The built-in push, paging, SMS and email notifiers (ntfy, gotify, pushover, pagerduty,
//! opsgenie, signal, twilio, email) delivering real notifications, through the sandboxed
//! runtime, to recording sinks on loopback (HTTP, and SMTP for email): what each destination
//! receives, the external ids, the dedup keys that keep retries from paging twice, error
//! classification, schema refusals, and the vendor-host pins of the hosted services.

mod support;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use pharos::runtime::{
    Capability, DeliverInput, Delivery, DeliveryOutcome, Grants, Plugin, PluginKind, Runtime,
};
use serde_json::{Value, json};
use support::sink::{Received, Reply, Sink};
use support::smtp::{Options, Security};

const PAGING_PLUGINS: &[&str] = &[
    "ntfy",
    "gotify",
    "pushover",
    "pagerduty",
    "opsgenie",
    "signal",
    "twilio",
    "email",
];

const WAIT: Duration = Duration::from_secs(10);

const PUSHOVER_USER: &str = "uQiRzpo4DXghDmr9QzzfQu27cmVRsG";
const PUSHOVER_TOKEN: &str = "azGDORePK8gMaC0QOYAMyEEuzJnyUi";
const PD_KEY: &str = "R015G8PKV0D3JLFX1Y4ZUTGXMH2ROUTE";
const GENIE_KEY: &str = "eb243592-faa2-4ba2-a551-1afdf565c889";
const TWILIO_SID: &str = "AC0123456789abcdef0123456789abcdef";
const TWILIO_TOKEN: &str = "0123456789abcdef0123456789abcdef";

/// An `incident.opened` event document as the host sends it.
fn opened_event() -> Value {
    json!({
        "kind": "incident.opened",
        "id": "pharos-7-opened-41-c2",
        "occurred_at": "2026-11-24T10:00:00Z",
        "status": "down",
        "severity": "critical",
        "title": "[DOWN] api",
        "body": "api is DOWN since 2026-11-24 09:58:00 UTC.\nCause: expected 200, got 503\nIncident #7: https://pharos.example/incidents/7",
        "monitor": {"id": 3, "name": "api", "type": "check", "plugin": "http", "tags": ["prod"],
                    "url": "https://pharos.example/monitors/3"},
        "incident": {"id": 7, "status": "open", "severity": "down", "opened_at": "2026-11-24T09:58:00Z",
                     "resolved_at": null, "acknowledged": false, "cause": "expected 200, got 503",
                     "url": "https://pharos.example/incidents/7"},
        "since": "2026-11-24T09:58:00Z",
        "cause": "expected 200, got 503",
        "dedup_key": "pharos-incident-7",
        "dashboard_url": "https://pharos.example/"
    })
}

/// An `incident.resolved` event document for the same incident.
fn resolved_event() -> Value {
    let mut ev = opened_event();
    ev["kind"] = json!("incident.resolved");
    ev["id"] = json!("pharos-7-resolved-42-c2");
    ev["occurred_at"] = json!("2026-11-24T10:30:00Z");
    ev["status"] = json!("up");
    ev["severity"] = json!("info");
    ev["title"] = json!("[RESOLVED] api");
    ev["body"] = json!("api is UP again after 32 min down (since 2026-11-24 09:58:00 UTC).");
    ev["cause"] = Value::Null;
    ev["incident"]["status"] = json!("resolved");
    ev["incident"]["resolved_at"] = json!("2026-11-24T10:30:00Z");
    ev
}

/// The test alert of channel `ops`.
fn test_event() -> Value {
    json!({
        "kind": "test",
        "id": "pharos-test-k9",
        "occurred_at": "2026-11-24T10:00:00Z",
        "status": "up",
        "severity": "info",
        "title": "[TEST] Pharos test alert",
        "body": "This is a test alert from Pharos for channel \"ops\". If you can read this, the channel works.",
        "dedup_key": "pharos-pharos-test-k9",
        "dashboard_url": "https://pharos.example/",
        "channel": "ops"
    })
}

fn input(config: &Value, event: &Value, attempt: u32) -> DeliverInput {
    DeliverInput {
        config: config.to_string(),
        title: event["title"].as_str().unwrap_or_default().to_string(),
        body: event["body"].as_str().unwrap_or_default().to_string(),
        event: event.to_string(),
        idempotency_key: event["id"].as_str().unwrap_or_default().to_string(),
        attempt,
        timeout: Duration::from_secs(10),
        test: event["kind"] == "test",
        channel: "ops".into(),
    }
}

/// A runtime allowing loopback targets, and the built-in plugin `name` in it.
async fn setup(name: &str) -> (Runtime, Arc<Plugin>) {
    let runtime = support::runtime(true);
    let plugin = support::builtin(&runtime, name).await;
    (runtime, plugin)
}

/// Delivers with every declared capability granted and no host pin (so loopback is reachable).
async fn deliver(runtime: &Runtime, plugin: &Plugin, config: &Value, event: &Value) -> Delivery {
    deliver_attempt(runtime, plugin, config, event, 1).await
}

async fn deliver_attempt(
    runtime: &Runtime,
    plugin: &Plugin,
    config: &Value,
    event: &Value,
    attempt: u32,
) -> Delivery {
    let sandbox = runtime.sandbox_all(plugin);
    runtime
        .deliver_validated(plugin, &sandbox, input(config, event, attempt))
        .await
}

fn delivered(d: &Delivery) -> (&str, Option<&str>) {
    match &d.outcome {
        DeliveryOutcome::Delivered {
            message,
            external_id,
        } => (message, external_id.as_deref()),
        other => panic!("expected a delivery, got {other:?}"),
    }
}

fn transient(d: &Delivery) -> &str {
    match &d.outcome {
        DeliveryOutcome::Transient(m) => m,
        other => panic!("expected a transient failure, got {other:?}"),
    }
}

fn permanent(d: &Delivery) -> &str {
    match &d.outcome {
        DeliveryOutcome::Permanent(m) => m,
        other => panic!("expected a permanent failure, got {other:?}"),
    }
}

/// The requests the sink got, at least `n` of them.
async fn requests(sink: &Sink, n: usize) -> Vec<Received> {
    let got = sink.wait_for(n, WAIT).await;
    assert_eq!(
        got.len(),
        n,
        "{:#?}",
        got.iter().map(Received::text).collect::<Vec<_>>()
    );
    got
}

/// A form-encoded body as `(name, value)` pairs, in order.
fn form(r: &Received) -> Vec<(String, String)> {
    url::form_urlencoded::parse(&r.body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn field(r: &Received, name: &str) -> Option<String> {
    form(r).into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

#[tokio::test]
async fn every_paging_plugin_is_a_built_in_notifier_with_one_capability() {
    let runtime = support::runtime(true);
    for name in PAGING_PLUGINS {
        let plugin = support::builtin(&runtime, name).await;
        assert_eq!(plugin.kind(), PluginKind::Notifier, "{name}");
        assert_eq!(plugin.info.name, *name);
        let want = if *name == "email" {
            Capability::Smtp
        } else {
            Capability::Http
        };
        assert_eq!(
            plugin.declared().iter().copied().collect::<Vec<_>>(),
            vec![want],
            "{name}"
        );
        let schema = &plugin.info.config_schema;
        assert_eq!(schema["additionalProperties"], false, "{name}");
        for example in schema["examples"].as_array().expect("examples") {
            plugin
                .validate_config(example)
                .unwrap_or_else(|e| panic!("{name}: example {example} is refused: {e}"));
        }
        let hosted = ["pushover", "pagerduty", "opsgenie", "twilio"].contains(name);
        assert_eq!(
            pharos::builtin::pinned_hosts(name).is_some(),
            hosted,
            "{name}"
        );
    }
}

#[tokio::test]
async fn configs_failing_the_schema_are_refused_before_anything_is_sent() {
    let sink = Sink::start().await;
    let bad = [
        (
            "ntfy",
            json!({"server": sink.url(""), "topic": "has space"}),
        ),
        (
            "gotify",
            json!({"server": sink.url(""), "token": "t", "priority": 11}),
        ),
        (
            "pushover",
            json!({"user_key": "short", "api_token": PUSHOVER_TOKEN, "api_url": sink.url("")}),
        ),
        (
            "pagerduty",
            json!({"routing_key": PD_KEY, "severity": "fatal", "api_url": sink.url("")}),
        ),
        (
            "opsgenie",
            json!({"api_key": GENIE_KEY, "priority": "P0", "api_url": sink.url("")}),
        ),
        (
            "signal",
            json!({"api_url": sink.url(""), "number": "+4915112345678", "recipients": []}),
        ),
        (
            "twilio",
            json!({"account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN, "from": "+15017122661", "to": ["555"], "api_url": sink.url("")}),
        ),
        (
            "email",
            json!({"host": "127.0.0.1", "from": "a@b", "to": ["c@d"], "security": "ssl"}),
        ),
    ];
    for (name, config) in bad {
        let (runtime, plugin) = setup(name).await;
        let d = deliver(&runtime, &plugin, &config, &opened_event()).await;
        assert!(
            permanent(&d).contains("invalid_config"),
            "{name}: {:?}",
            d.outcome
        );
    }
    assert!(sink.received().is_empty());
}

#[tokio::test]
async fn ntfy_publishes_json_with_priority_tags_and_click_link() {
    let sink = Sink::start().await;
    sink.set_default(Reply::json(
        200,
        json!({"id": "sPs71M8A2T", "time": 1795514400, "event": "message", "topic": "ops"}),
    ));
    let (runtime, plugin) = setup("ntfy").await;
    let config =
        json!({"server": sink.url("/"), "topic": "ops", "token": "tk_secret", "tags": ["pharos"]});

    let d = deliver(&runtime, &plugin, &config, &opened_event()).await;
    assert_eq!(delivered(&d), ("HTTP 200", Some("sPs71M8A2T")));
    let d = deliver(&runtime, &plugin, &config, &resolved_event()).await;
    assert_eq!(delivered(&d).1, Some("sPs71M8A2T"));

    let got = requests(&sink, 2).await;
    let r = &got[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("authorization"), Some("Bearer tk_secret"));
    assert_eq!(
        r.header("x-pharos-idempotency-key"),
        Some("pharos-7-opened-41-c2")
    );
    assert_eq!(
        r.json(),
        json!({
            "topic": "ops",
            "title": "[DOWN] api",
            "message": opened_event()["body"],
            "priority": 5,
            "tags": ["rotating_light", "pharos"],
            "click": "https://pharos.example/incidents/7",
            "actions": [{"action": "view", "label": "Open incident", "url": "https://pharos.example/incidents/7", "clear": true}]
        })
    );
    let r = got[1].json();
    assert_eq!(
        (r["priority"].clone(), r["tags"].clone()),
        (json!(3), json!(["white_check_mark", "pharos"]))
    );
    assert_eq!(
        got[1].header("x-pharos-idempotency-key"),
        Some("pharos-7-resolved-42-c2")
    );

    sink.script([Reply::json(
        429,
        json!({"code": 42901, "http": 429, "error": "limit reached"}),
    )]);
    let d = deliver(&runtime, &plugin, &config, &test_event()).await;
    assert!(transient(&d).starts_with("HTTP 429"), "{d:?}");
    assert_eq!(
        requests(&sink, 3).await[2].json()["title"],
        "[TEST] Pharos test alert"
    );
}

#[tokio::test]
async fn gotify_creates_a_message_and_returns_its_id() {
    let sink = Sink::start().await;
    sink.set_default(Reply::json(
        200,
        json!({"id": 25, "appid": 5, "priority": 8}),
    ));
    let (runtime, plugin) = setup("gotify").await;
    let config = json!({"server": sink.url("/gotify"), "token": "AbCdEf.GhIjKl1"});

    let d = deliver(&runtime, &plugin, &config, &opened_event()).await;
    assert_eq!(delivered(&d), ("HTTP 200", Some("25")));
    let r = &requests(&sink, 1).await[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/gotify/message")
    );
    assert_eq!(r.header("x-gotify-key"), Some("AbCdEf.GhIjKl1"));
    assert_eq!(
        r.header("x-pharos-idempotency-key"),
        Some("pharos-7-opened-41-c2")
    );
    assert_eq!(
        r.json(),
        json!({
            "title": "[DOWN] api",
            "message": opened_event()["body"],
            "priority": 8,
            "extras": {
                "client::display": {"contentType": "text/plain"},
                "client::notification": {"click": {"url": "https://pharos.example/incidents/7"}}
            }
        })
    );

    sink.script([Reply::json(
        401,
        json!({"error": "Unauthorized", "errorCode": 401}),
    )]);
    let d = deliver(&runtime, &plugin, &config, &resolved_event()).await;
    assert!(permanent(&d).starts_with("HTTP 401"), "{d:?}");
}

#[tokio::test]
async fn pushover_sends_a_form_and_cancels_emergency_repeats_on_resolution() {
    let sink = Sink::start().await;
    sink.set_default(Reply::json(
        200,
        json!({"status": 1, "request": "647d2300-702c"}),
    ));
    let (runtime, plugin) = setup("pushover").await;
    let config = json!({"user_key": PUSHOVER_USER, "api_token": PUSHOVER_TOKEN, "api_url": sink.url(""), "sound": "siren"});

    let d = deliver(&runtime, &plugin, &config, &opened_event()).await;
    assert_eq!(delivered(&d), ("HTTP 200", Some("647d2300-702c")));
    let r = &requests(&sink, 1).await[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/1/messages.json")
    );
    assert_eq!(
        r.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(
        form(r),
        pairs(&[
            ("token", PUSHOVER_TOKEN),
            ("user", PUSHOVER_USER),
            ("title", "[DOWN] api"),
            (
                "message",
                opened_event()["body"].as_str().unwrap_or_default()
            ),
            ("priority", "1"),
            ("url", "https://pharos.example/incidents/7"),
            ("url_title", "Open incident"),
            ("sound", "siren"),
            ("timestamp", "1795514400"),
        ])
    );

    // Emergency priority: the resolution first cancels the repeats tagged with the incident.
    let emergency = json!({"user_key": PUSHOVER_USER, "api_token": PUSHOVER_TOKEN, "api_url": sink.url(""), "priority": 2});
    let d = deliver(&runtime, &plugin, &emergency, &opened_event()).await;
    delivered(&d);
    let d = deliver(&runtime, &plugin, &emergency, &resolved_event()).await;
    delivered(&d);
    let got = requests(&sink, 4).await;
    assert_eq!(field(&got[1], "priority").as_deref(), Some("2"));
    assert_eq!(field(&got[1], "retry").as_deref(), Some("60"));
    assert_eq!(field(&got[1], "expire").as_deref(), Some("3600"));
    assert_eq!(field(&got[1], "tags").as_deref(), Some("pharos-incident-7"));
    assert_eq!(
        got[2].path,
        "/1/receipts/cancel_by_tag/pharos-incident-7.json"
    );
    assert_eq!(form(&got[2]), pairs(&[("token", PUSHOVER_TOKEN)]));
    assert_eq!(got[3].path, "/1/messages.json");
    assert_eq!(field(&got[3], "priority").as_deref(), Some("0"));

    sink.script([Reply::json(
        400,
        json!({"user": "invalid", "errors": ["user identifier is invalid"], "status": 0}),
    )]);
    let d = deliver(&runtime, &plugin, &config, &opened_event()).await;
    assert!(
        permanent(&d).contains("user identifier is invalid"),
        "{d:?}"
    );
}

#[tokio::test]
async fn pagerduty_dedups_an_incident_across_retries_and_resolves_it() {
    let sink = Sink::start().await;
    sink.set_default(Reply::json(
        202,
        json!({"status": "success", "message": "Event processed", "dedup_key": "pharos-incident-7"}),
    ));
    let (runtime, plugin) = setup("pagerduty").await;
    let config = json!({"routing_key": PD_KEY, "api_url": sink.url("")});

    sink.script([Reply::text(503, "unavailable")]);
    let d = deliver(&runtime, &plugin, &config, &opened_event()).await;
    assert!(transient(&d).starts_with("HTTP 503"), "{d:?}");
    let d = deliver_attempt(&runtime, &plugin, &config, &opened_event(), 2).await;
    assert_eq!(
        delivered(&d),
        (
            "HTTP 202: trigger pharos-incident-7",
            Some("pharos-incident-7")
        )
    );
    let d = deliver(&runtime, &plugin, &config, &resolved_event()).await;
    assert_eq!(delivered(&d).1, Some("pharos-incident-7"));

    let got = requests(&sink, 3).await;
    for r in &got {
        assert_eq!(
            (r.method.as_str(), r.path.as_str()),
            ("POST", "/v2/enqueue")
        );
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
    // The retry is the same event: same action, same dedup key, same payload.
    assert_eq!(got[0].json(), got[1].json());
    let trigger = got[1].json();
    assert_eq!(trigger["routing_key"], PD_KEY);
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["dedup_key"], "pharos-incident-7");
    assert_eq!(trigger["payload"]["summary"], "[DOWN] api");
    assert_eq!(trigger["payload"]["source"], "api");
    assert_eq!(trigger["payload"]["severity"], "critical");
    assert_eq!(trigger["payload"]["timestamp"], "2026-11-24T10:00:00Z");
    assert_eq!(trigger["payload"]["custom_details"]["incident_id"], 7);
    assert_eq!(
        trigger["links"],
        json!([{"href": "https://pharos.example/incidents/7", "text": "Open incident"}])
    );
    assert_eq!(
        got[2].json(),
        json!({"routing_key": PD_KEY, "event_action": "resolve", "dedup_key": "pharos-incident-7"})
    );

    // A test alert opens its own alert; 400 is permanent, 429 transient.
    let d = deliver(&runtime, &plugin, &config, &test_event()).await;
    delivered(&d);
    assert_eq!(
        requests(&sink, 4).await[3].json()["dedup_key"],
        "pharos-test-pharos-test-k9"
    );
    sink.script([
        Reply::json(400, json!({"status": "invalid event", "message": "Event object is invalid", "errors": ["'routing_key' is invalid"]})),
        Reply::json(429, json!({"status": "throttle event", "message": "Requests for this service are arriving too quickly."})),
    ]);
    let d = deliver(&runtime, &plugin, &config, &opened_event()).await;
    assert!(permanent(&d).contains("Event object is invalid"), "{d:?}");
    let d = deliver(&runtime, &plugin, &config, &opened_event()).await;
    assert!(transient(&d).starts_with("HTTP 429"), "{d:?}");
}

#[tokio::test]
async fn opsgenie_creates_by_alias_and_closes_by_alias() {
    let sink = Sink::start().await;
    sink.set_default(Reply::json(
        202,
        json!({"result": "Request will be processed", "took": 0.302, "requestId": "43a29c5c-3dbf"}),
    ));
    let (runtime, plugin) = setup("opsgenie").await;
    let config = json!({
        "api_key": GENIE_KEY, "api_url": sink.url(""),
        "responders": [{"type": "team", "name": "SRE"}]
    });

    let d = deliver(&runtime, &plugin, &config, &opened_event()).await;
    assert_eq!(
        delivered(&d),
        ("HTTP 202: create pharos-incident-7", Some("43a29c5c-3dbf"))
    );
    let d = deliver(&runtime, &plugin, &config, &resolved_event()).await;
    assert_eq!(delivered(&d).0, "HTTP 202: close pharos-incident-7");

    let got = requests(&sink, 2).await;
    let create = &got[0];
    assert_eq!(
        (create.method.as_str(), create.path.as_str()),
        ("POST", "/v2/alerts")
    );
    assert_eq!(
        create.header("authorization"),
        Some(format!("GenieKey {GENIE_KEY}").as_str())
    );
    let body = create.json();
    assert_eq!(body["message"], "[DOWN] api");
    assert_eq!(body["alias"], "pharos-incident-7");
    assert_eq!(body["priority"], "P1");
    assert_eq!(body["source"], "Pharos");
    assert_eq!(body["responders"], json!([{"type": "team", "name": "SRE"}]));
    assert_eq!(body["tags"], json!(["pharos", "down", "prod"]));
    assert_eq!(body["details"]["incident_id"], "7");
    let close = &got[1];
    assert_eq!(
        (close.method.as_str(), close.path.as_str()),
        (
            "POST",
            "/v2/alerts/pharos-incident-7/close?identifierType=alias"
        )
    );
    assert_eq!(close.json()["source"], "Pharos");

    sink.script([Reply::json(
        422,
        json!({"message": "Request body is not processable."}),
    )]);
    let d = deliver(&runtime, &plugin, &config, &opened_event()).await;
    assert!(permanent(&d).starts_with("HTTP 422"), "{d:?}");
}

#[tokio::test]
async fn signal_sends_one_message_to_every_recipient() {
    let sink = Sink::start().await;
    sink.set_default(Reply::json(201, json!({"timestamp": "1795514400123"})));
    let (runtime, plugin) = setup("signal").await;
    let config = json!({
        "api_url": sink.url(""), "number": "+4915112345678",
        "recipients": ["+4915187654321", "group.ZmFrZWdyb3VwaWQ="],
        "username": "pharos", "password": "pw"
    });
    let d = deliver(&runtime, &plugin, &config, &opened_event()).await;
    assert_eq!(
        delivered(&d),
        ("HTTP 201 (2 recipient(s))", Some("1795514400123"))
    );
    let r = &requests(&sink, 1).await[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/v2/send"));
    let basic = base64::engine::general_purpose::STANDARD.encode("pharos:pw");
    assert_eq!(
        r.header("authorization"),
        Some(format!("Basic {basic}").as_str())
    );
    assert_eq!(
        r.json(),
        json!({
            "message": format!("[DOWN] api\n{}", opened_event()["body"].as_str().unwrap_or_default()),
            "number": "+4915112345678",
            "recipients": ["+4915187654321", "group.ZmFrZWdyb3VwaWQ="]
        })
    );
    sink.script([Reply::json(400, json!({"error": "Invalid group id"}))]);
    let d = deliver(&runtime, &plugin, &config, &resolved_event()).await;
    assert!(permanent(&d).contains("Invalid group id"), "{d:?}");
}

#[tokio::test]
async fn twilio_texts_each_recipient_and_reports_the_worst_failure() {
    let sink = Sink::start().await;
    let (runtime, plugin) = setup("twilio").await;
    let config = json!({
        "account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN, "from": "+15017122661",
        "to": ["+15558675310", "+447700900123"], "api_url": sink.url("")
    });
    let sms = |sid: &str| Reply::json(201, json!({"sid": sid, "status": "queued"}));

    sink.script([sms("SM1"), sms("SM2")]);
    let d = deliver(&runtime, &plugin, &config, &opened_event()).await;
    assert_eq!(delivered(&d), ("sent to 2 recipient(s)", Some("SM1,SM2")));
    let got = requests(&sink, 2).await;
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{TWILIO_SID}:{TWILIO_TOKEN}"));
    let text = format!(
        "[DOWN] api\n{}",
        opened_event()["body"].as_str().unwrap_or_default()
    );
    for (r, to) in got.iter().zip(["+15558675310", "+447700900123"]) {
        assert_eq!(r.method, "POST");
        assert_eq!(
            r.path,
            format!("/2010-04-01/Accounts/{TWILIO_SID}/Messages.json")
        );
        assert_eq!(
            r.header("authorization"),
            Some(format!("Basic {basic}").as_str())
        );
        assert_eq!(
            r.header("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(
            form(r),
            vec![
                ("To".to_string(), to.to_string()),
                ("From".to_string(), "+15017122661".to_string()),
                ("Body".to_string(), text.clone()),
            ]
        );
    }

    // One recipient throttled: both are tried, the delivery is transient (and a retry re-sends
    // to both).
    sink.script([
        sms("SM3"),
        Reply::json(
            429,
            json!({"code": 20429, "message": "Too Many Requests", "status": 429}),
        ),
    ]);
    let d = deliver(&runtime, &plugin, &config, &resolved_event()).await;
    let why = transient(&d);
    assert!(
        why.starts_with("1 of 2 recipient(s) failed: +447700900123: HTTP 429: Twilio error 20429"),
        "{why}"
    );
    assert!(why.ends_with("(delivered to +15558675310)"), "{why}");
    assert_eq!(requests(&sink, 4).await.len(), 4);

    sink.script([
        Reply::json(
            400,
            json!({"code": 21211, "message": "Invalid 'To' Phone Number", "status": 400}),
        ),
        Reply::json(
            400,
            json!({"code": 21211, "message": "Invalid 'To' Phone Number", "status": 400}),
        ),
    ]);
    let d = deliver(&runtime, &plugin, &config, &test_event()).await;
    assert!(
        permanent(&d).starts_with("2 of 2 recipient(s) failed"),
        "{d:?}"
    );
}

#[tokio::test]
async fn email_sends_one_message_over_starttls_with_login() {
    let mut options = Options::new(Security::StartTls);
    options.auth = Some(("alerts@example.com".into(), "app-password".into()));
    let smtp = support::smtp::start(options).await;
    let (runtime, plugin) = setup("email").await;
    let config = json!({
        "host": "127.0.0.1", "port": smtp.port(), "verify_tls": false,
        "username": "alerts@example.com", "password": "app-password",
        "from": "Pharos <alerts@example.com>", "to": ["oncall@example.com", "ops@example.com"],
        "subject_prefix": "[Pharos]"
    });

    let d = deliver(&runtime, &plugin, &config, &opened_event()).await;
    let (reply, id) = delivered(&d);
    assert!(reply.starts_with("250"), "{reply}");
    assert_eq!(id, Some("<pharos-7-opened-41-c2@pharos>"));
    let d = deliver(&runtime, &plugin, &config, &resolved_event()).await;
    delivered(&d);

    let got = smtp.received();
    assert_eq!(got.len(), 2);
    let m = &got[0];
    assert!(m.tls, "STARTTLS was used");
    assert_eq!(m.user.as_deref(), Some("alerts@example.com"));
    assert_eq!(m.from, "alerts@example.com");
    assert_eq!(m.to, vec!["oncall@example.com", "ops@example.com"]);
    assert_eq!(m.header("Subject").as_deref(), Some("[Pharos] [DOWN] api"));
    assert_eq!(
        m.header("Message-ID").as_deref(),
        Some("<pharos-7-opened-41-c2@pharos>")
    );
    assert_eq!(
        m.header("X-Pharos-Event").as_deref(),
        Some("incident.opened")
    );
    assert_eq!(m.header("X-Pharos-Severity").as_deref(), Some("critical"));
    assert_eq!(
        m.header("Auto-Submitted").as_deref(),
        Some("auto-generated")
    );
    assert_eq!(
        m.header("References").as_deref(),
        Some("<pharos-incident-7@pharos>")
    );
    assert_eq!(m.header("Importance").as_deref(), Some("high"));
    let content_type = m.header("Content-Type").unwrap_or_default();
    assert!(
        content_type.starts_with("multipart/alternative"),
        "{content_type}"
    );
    assert!(
        m.data.contains("text/plain") && m.data.contains("text/html"),
        "{}",
        m.data
    );
    let r = &got[1];
    assert_eq!(
        r.header("Subject").as_deref(),
        Some("[Pharos] [RESOLVED] api")
    );
    assert_eq!(
        r.header("References").as_deref(),
        Some("<pharos-incident-7@pharos>")
    );
    assert_eq!(r.header("Importance"), None);
}

#[tokio::test]
async fn email_replies_4xx_are_transient_and_5xx_permanent() {
    let (runtime, plugin) = setup("email").await;
    let config = |port: u16| {
        json!({"host": "127.0.0.1", "port": port, "security": "none",
               "from": "pharos@internal", "to": ["ops@internal"]})
    };

    let plain = support::smtp::start(Options::new(Security::Plain)).await;
    let d = deliver(&runtime, &plugin, &config(plain.port()), &test_event()).await;
    delivered(&d);
    let m = &plain.received()[0];
    assert!(!m.tls && m.user.is_none());
    assert_eq!(
        m.header("Subject").as_deref(),
        Some("[TEST] Pharos test alert")
    );
    assert_eq!(
        m.header("Message-ID").as_deref(),
        Some("<pharos-test-k9@pharos>")
    );

    let mut greylist = Options::new(Security::Plain);
    greylist.reject_rcpt = Some((451, "4.7.1 Greylisted, try again later".into()));
    let greylist = support::smtp::start(greylist).await;
    let d = deliver(&runtime, &plugin, &config(greylist.port()), &opened_event()).await;
    assert!(transient(&d).contains("451"), "{d:?}");

    let mut refuse = Options::new(Security::Plain);
    refuse.reject_data = Some((554, "5.7.1 Message rejected as spam".into()));
    let refuse = support::smtp::start(refuse).await;
    let d = deliver(&runtime, &plugin, &config(refuse.port()), &opened_event()).await;
    assert!(permanent(&d).contains("554"), "{d:?}");
    assert!(greylist.received().is_empty() && refuse.received().is_empty());
}

#[tokio::test]
async fn hosted_services_are_pinned_to_their_vendor_hosts() {
    let sink = Sink::start().await;
    let configs = [
        (
            "pushover",
            json!({"user_key": PUSHOVER_USER, "api_token": PUSHOVER_TOKEN, "api_url": sink.url("")}),
        ),
        (
            "pagerduty",
            json!({"routing_key": PD_KEY, "api_url": sink.url("")}),
        ),
        (
            "opsgenie",
            json!({"api_key": GENIE_KEY, "api_url": sink.url("")}),
        ),
        (
            "twilio",
            json!({"account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN, "from": "+15017122661", "to": ["+15558675310"], "api_url": sink.url("")}),
        ),
    ];
    for (name, config) in configs {
        let (runtime, plugin) = setup(name).await;
        let pinned = pharos::builtin::pinned_hosts(name)
            .unwrap_or_else(|| panic!("{name} has no pinned hosts"));
        let grants = Grants {
            capabilities: plugin.declared().clone(),
            allowed_hosts: Some(pinned.iter().map(|h| h.to_string()).collect()),
        };
        let sandbox = runtime.sandbox(&plugin, &grants);
        let d = runtime
            .deliver_validated(&plugin, &sandbox, input(&config, &opened_event(), 1))
            .await;
        let why = permanent(&d);
        assert!(
            why.contains("127.0.0.1 is not among the granted destinations"),
            "{name}: {why}"
        );
    }
    assert!(
        sink.received().is_empty(),
        "a pinned plugin reached the sink"
    );
}
