//! The built-in chat and webhook notifiers (webhook, slack, discord, teams, google-chat,
//! mattermost, rocketchat, matrix, telegram) delivering real notifications, through the
//! sandboxed runtime, to a recording HTTP sink on loopback: what each destination receives,
//! the external ids they return, retries and their dedup keys, error classification, schema
//! refusals, and the vendor-host pins of the hosted services.

mod support;

use std::sync::Arc;
use std::time::Duration;

use pharos::runtime::{
    Capability, DeliverInput, Delivery, DeliveryOutcome, Grants, Plugin, PluginKind, Runtime,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use support::sink::{Received, Reply, Sink};

const CHAT_PLUGINS: &[&str] = &[
    "webhook",
    "slack",
    "discord",
    "teams",
    "google-chat",
    "mattermost",
    "rocketchat",
    "matrix",
    "telegram",
];

const WAIT: Duration = Duration::from_secs(10);

/// An `incident.opened` event document as the host sends it.
fn opened_event() -> Value {
    json!({
        "kind": "incident.opened",
        "id": "pharos-n-42",
        "occurred_at": "2026-11-24T10:00:00Z",
        "status": "down",
        "severity": "critical",
        "title": "[DOWN] api.example.com",
        "body": "api.example.com is down: expected 200, got 503.",
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
    ev["id"] = json!("pharos-n-43");
    ev["occurred_at"] = json!("2026-11-24T10:10:00Z");
    ev["status"] = json!("up");
    ev["severity"] = json!("info");
    ev["title"] = json!("[UP] api.example.com");
    ev["body"] = json!("api.example.com is up again.");
    ev["incident"]["status"] = json!("resolved");
    ev["incident"]["resolved_at"] = json!("2026-11-24T10:10:00Z");
    ev
}

fn input(config: Value, event: &Value, attempt: u32) -> DeliverInput {
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
async fn deliver(runtime: &Runtime, plugin: &Plugin, input: DeliverInput) -> Delivery {
    let sandbox = runtime.sandbox_all(plugin);
    runtime.deliver_validated(plugin, &sandbox, input).await
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

/// The only request the sink received.
async fn only_request(sink: &Sink) -> Received {
    let got = sink.wait_for(1, WAIT).await;
    assert_eq!(got.len(), 1, "{got:#?}");
    got.into_iter().next().unwrap_or_else(|| unreachable!())
}

/// HMAC-SHA256 computed from its definition (RFC 2104), independently of the plugin's crate.
fn hmac_sha256(key: &[u8], message: &[u8]) -> String {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    let outer = Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize();
    hex::encode(outer)
}

// ---- every chat plugin ----------------------------------------------------------------------

#[tokio::test]
async fn every_chat_plugin_is_a_built_in_notifier_using_http_only() {
    let runtime = support::runtime(true);
    for name in CHAT_PLUGINS {
        let plugin = support::builtin(&runtime, name).await;
        assert_eq!(plugin.kind(), PluginKind::Notifier, "{name}");
        assert_eq!(plugin.info.name, *name);
        assert_eq!(plugin.info.capabilities, vec![Capability::Http], "{name}");
    }
}

#[tokio::test]
async fn configs_failing_the_schema_are_refused_before_anything_is_sent() {
    let sink = Sink::start().await;
    let runtime = support::runtime(true);
    for name in CHAT_PLUGINS {
        let plugin = support::builtin(&runtime, name).await;
        let config = json!({"url": sink.url("/x"), "webhook_url": sink.url("/x"), "bogus": true});
        let d = deliver(&runtime, &plugin, input(config, &opened_event(), 1)).await;
        let m = permanent(&d);
        assert!(m.starts_with("invalid_config"), "{name}: {m}");
    }
    assert!(sink.received().is_empty());
}

// ---- webhook --------------------------------------------------------------------------------

#[tokio::test]
async fn webhook_posts_the_event_verbatim_with_a_verifiable_signature() {
    let sink = Sink::start().await;
    let (runtime, plugin) = setup("webhook").await;
    let event = opened_event();
    let config =
        json!({"url": sink.url("/pharos/hook"), "secret": "s3cr3t", "headers": {"X-Team": "sre"}});
    let d = deliver(&runtime, &plugin, input(config, &event, 1)).await;
    assert_eq!(delivered(&d), ("HTTP 200", None));

    let req = only_request(&sink).await;
    assert_eq!(
        (req.method.as_str(), req.path.as_str()),
        ("POST", "/pharos/hook")
    );
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(req.header("user-agent"), Some("Pharos-Webhook/1"));
    assert_eq!(req.header("x-pharos-event"), Some("incident.opened"));
    assert_eq!(req.header("idempotency-key"), Some("pharos-n-42"));
    assert_eq!(req.header("x-team"), Some("sre"));
    assert_eq!(
        req.text(),
        event.to_string(),
        "the body is the event document verbatim"
    );

    // Verify the signature the way a receiver would.
    let ts = req.header("x-pharos-timestamp").expect("timestamp header");
    let age = chrono::Utc::now().timestamp() - ts.parse::<i64>().expect("unix seconds");
    assert!(
        (-300..=300).contains(&age),
        "timestamp is the send time: {ts}"
    );
    let expected = hmac_sha256(b"s3cr3t", format!("{ts}.{}", req.text()).as_bytes());
    assert_eq!(
        req.header("x-pharos-signature"),
        Some(format!("sha256={expected}").as_str())
    );
}

#[tokio::test]
async fn webhook_put_with_a_bearer_token_and_failures_classified() {
    let sink = Sink::start().await;
    sink.script([
        Reply::text(503, "busy"),
        Reply::text(410, "gone"),
        Reply::text(204, ""),
    ]);
    let (runtime, plugin) = setup("webhook").await;
    let config = json!({"url": sink.url("/put"), "method": "PUT", "bearer_token": "tok_123"});
    let event = resolved_event();
    let d = deliver(&runtime, &plugin, input(config.clone(), &event, 1)).await;
    assert!(transient(&d).starts_with("HTTP 503: busy"), "{d:?}");
    let d = deliver(&runtime, &plugin, input(config.clone(), &event, 2)).await;
    assert!(permanent(&d).starts_with("HTTP 410: gone"), "{d:?}");
    let d = deliver(&runtime, &plugin, input(config, &event, 3)).await;
    assert_eq!(delivered(&d), ("HTTP 204", None));
    let got = sink.wait_for(3, WAIT).await;
    for req in &got {
        assert_eq!(req.method, "PUT");
        assert_eq!(req.header("authorization"), Some("Bearer tok_123"));
        assert_eq!(req.header("x-pharos-event"), Some("incident.resolved"));
        assert_eq!(
            req.header("idempotency-key"),
            Some("pharos-n-43"),
            "stable across retries"
        );
        assert!(req.header("x-pharos-signature").is_none());
    }
}

#[tokio::test]
async fn webhook_errors_do_not_leak_url_credentials() {
    // The sink answers after the delivery's deadline: the host's timeout error names the URL,
    // and the plugin redacts its secret-looking parts.
    let sink = Sink::start().await;
    sink.set_default(Reply::text(200, "late").after(Duration::from_secs(5)));
    let (runtime, plugin) = setup("webhook").await;
    let url = sink.url("/hooks/0123456789abcdef0123456789");
    let mut given = input(json!({"url": url}), &opened_event(), 1);
    given.timeout = Duration::from_millis(1_000);
    let d = deliver(&runtime, &plugin, given).await;
    let m = transient(&d);
    assert!(m.starts_with("timeout: "), "{m}");
    assert!(m.contains("/hooks/***"), "{m}");
    assert!(!m.contains("0123456789abcdef0123456789"), "{m}");
}

// ---- slack, mattermost, rocket.chat ---------------------------------------------------------

#[tokio::test]
async fn slack_posts_a_colour_coded_attachment() {
    let sink = Sink::start().await;
    sink.set_default(Reply::text(200, "ok"));
    let (runtime, plugin) = setup("slack").await;
    let config = json!({"webhook_url": sink.url("/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX"),
                        "channel": "#ops", "mention": "<!here>"});
    let d = deliver(&runtime, &plugin, input(config.clone(), &opened_event(), 1)).await;
    assert_eq!(delivered(&d), ("HTTP 200", None));
    let d = deliver(&runtime, &plugin, input(config, &resolved_event(), 1)).await;
    assert_eq!(delivered(&d), ("HTTP 200", None));

    let got = sink.wait_for(2, WAIT).await;
    let opened = got[0].json();
    assert_eq!(got[0].path, "/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX");
    assert_eq!(got[0].header("content-type"), Some("application/json"));
    assert_eq!(opened["text"], "<!here> *[DOWN] api.example.com*");
    assert_eq!(opened["channel"], "#ops");
    let att = &opened["attachments"][0];
    assert_eq!(att["color"], "#d6333f");
    assert_eq!(att["title"], "Open incident");
    assert_eq!(att["title_link"], "https://pharos.example/incidents/7");
    assert_eq!(
        att["text"],
        "api.example.com is down: expected 200, got 503."
    );
    assert_eq!(
        att["fields"][0],
        json!({"title": "Monitor", "value": "api", "short": true})
    );
    assert_eq!(att["ts"], 1_795_514_400);
    let resolved = got[1].json();
    assert_eq!(
        resolved["text"], "*[UP] api.example.com*",
        "recoveries do not mention"
    );
    assert_eq!(resolved["attachments"][0]["color"], "#2eb886");
    assert_eq!(
        resolved["attachments"][0]["footer"],
        "Pharos · Incident resolved"
    );
}

#[tokio::test]
async fn mattermost_and_rocketchat_post_attachments() {
    let sink = Sink::start().await;
    sink.script([
        Reply::text(200, "ok"),
        Reply::json(200, json!({"success": true})),
        Reply::json(
            400,
            json!({"success": false, "error": "Invalid integration id or token provided."}),
        ),
    ]);
    let (runtime, mattermost) = setup("mattermost").await;
    let config = json!({"webhook_url": sink.url("/hooks/xxxxxxxxxxxxxxxxxxxxxxxxxx"), "mention": "@channel"});
    let d = deliver(&runtime, &mattermost, input(config, &opened_event(), 1)).await;
    assert_eq!(delivered(&d), ("HTTP 200", None));
    let rocketchat = support::builtin(&runtime, "rocketchat").await;
    let config =
        json!({"webhook_url": sink.url("/hooks/abc/AbCdEfGhIjKlMnOpQrStUvWx"), "alias": "Pharos"});
    let d = deliver(
        &runtime,
        &rocketchat,
        input(config.clone(), &opened_event(), 1),
    )
    .await;
    assert_eq!(delivered(&d), ("HTTP 200", None));
    let d = deliver(&runtime, &rocketchat, input(config, &opened_event(), 2)).await;
    assert!(permanent(&d).contains("Invalid integration id"), "{d:?}");

    let got = sink.wait_for(3, WAIT).await;
    let mm = got[0].json();
    assert_eq!(got[0].path, "/hooks/xxxxxxxxxxxxxxxxxxxxxxxxxx");
    assert_eq!(mm["text"], "@channel **\\[DOWN\\] api.example.com**");
    assert_eq!(mm["attachments"][0]["color"], "#d6333f");
    assert_eq!(mm["attachments"][0]["fallback"], "[DOWN] api.example.com");
    assert_eq!(mm["attachments"][0]["footer"], "Pharos · Incident opened");
    let rc = got[1].json();
    assert_eq!(got[1].path, "/hooks/abc/AbCdEfGhIjKlMnOpQrStUvWx");
    assert_eq!(rc["text"], "*[DOWN] api.example.com*");
    assert_eq!(rc["alias"], "Pharos");
    assert_eq!(
        rc["attachments"][0]["title_link"],
        "https://pharos.example/incidents/7"
    );
    assert_eq!(rc["attachments"][0]["ts"], "2026-11-24T10:00:00Z");
}

// ---- discord, teams, google chat ------------------------------------------------------------

#[tokio::test]
async fn discord_waits_for_the_message_and_returns_its_id() {
    let sink = Sink::start().await;
    sink.script([
        Reply::json(
            429,
            json!({"message": "You are being rate limited.", "retry_after": 0.3, "global": false}),
        ),
        Reply::json(
            200,
            json!({"id": "1177000000000000001", "channel_id": "42"}),
        ),
    ]);
    let (runtime, plugin) = setup("discord").await;
    let config = json!({"webhook_url": sink.url("/api/webhooks/123/AbCdEfGhIjKlMnOpQrStUvWxYz"), "username": "Pharos"});
    let d = deliver(&runtime, &plugin, input(config.clone(), &opened_event(), 1)).await;
    assert!(transient(&d).contains("rate limited"), "{d:?}");
    let d = deliver(&runtime, &plugin, input(config, &opened_event(), 2)).await;
    assert_eq!(delivered(&d), ("HTTP 200", Some("1177000000000000001")));

    let got = sink.wait_for(2, WAIT).await;
    assert_eq!(
        got[1].path,
        "/api/webhooks/123/AbCdEfGhIjKlMnOpQrStUvWxYz?wait=true"
    );
    let msg = got[1].json();
    assert_eq!(msg["username"], "Pharos");
    assert_eq!(msg["allowed_mentions"], json!({"parse": []}));
    let embed = &msg["embeds"][0];
    assert_eq!(embed["title"], "[DOWN] api.example.com");
    assert_eq!(embed["color"], 0xd6333f);
    assert_eq!(embed["url"], "https://pharos.example/incidents/7");
    assert_eq!(embed["timestamp"], "2026-11-24T10:00:00Z");
    assert_eq!(embed["footer"]["text"], "Pharos · Incident opened");
}

#[tokio::test]
async fn teams_posts_an_adaptive_card() {
    let sink = Sink::start().await;
    sink.set_default(Reply::text(202, ""));
    let (runtime, plugin) = setup("teams").await;
    let config = json!({"webhook_url": sink.url("/workflows/abc/triggers/manual/paths/invoke?api-version=1&sig=AbCdEfGhIjKlMnOpQrStUvWxYz")});
    let d = deliver(&runtime, &plugin, input(config, &resolved_event(), 1)).await;
    assert_eq!(delivered(&d), ("HTTP 202", None));

    let req = only_request(&sink).await;
    assert_eq!(req.method, "POST");
    assert!(
        req.path.ends_with("&sig=AbCdEfGhIjKlMnOpQrStUvWxYz"),
        "{}",
        req.path
    );
    let msg = req.json();
    assert_eq!(msg["type"], "message");
    let att = &msg["attachments"][0];
    assert_eq!(
        att["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    let card = &att["content"];
    assert_eq!(
        (card["type"].as_str(), card["version"].as_str()),
        (Some("AdaptiveCard"), Some("1.4"))
    );
    assert_eq!(card["body"][0]["style"], "good");
    assert_eq!(card["body"][0]["items"][0]["text"], "[UP] api.example.com");
    assert_eq!(card["body"][2]["type"], "FactSet");
    assert_eq!(
        card["actions"][0],
        json!({"type": "Action.OpenUrl", "title": "Open incident", "url": "https://pharos.example/incidents/7"})
    );
}

#[tokio::test]
async fn google_chat_threads_an_incident_and_returns_the_message_name() {
    let sink = Sink::start().await;
    sink.script([
        Reply::json(200, json!({"name": "spaces/AAAA/messages/m1", "thread": {"name": "spaces/AAAA/threads/t1"}})),
        Reply::json(200, json!({"name": "spaces/AAAA/messages/m2", "thread": {"name": "spaces/AAAA/threads/t1"}})),
    ]);
    let (runtime, plugin) = setup("google-chat").await;
    let config = json!({"webhook_url": sink.url("/v1/spaces/AAAA/messages?key=k&token=AbCdEfGhIjKlMnOpQrStUvWx")});
    let d = deliver(&runtime, &plugin, input(config.clone(), &opened_event(), 1)).await;
    assert_eq!(delivered(&d), ("HTTP 200", Some("spaces/AAAA/messages/m1")));
    let d = deliver(&runtime, &plugin, input(config, &resolved_event(), 1)).await;
    assert_eq!(delivered(&d), ("HTTP 200", Some("spaces/AAAA/messages/m2")));

    let got = sink.wait_for(2, WAIT).await;
    assert_eq!(
        got[0].path,
        "/v1/spaces/AAAA/messages?key=k&token=AbCdEfGhIjKlMnOpQrStUvWx&messageReplyOption=REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD&requestId=pharos-n-42"
    );
    for req in &got {
        let msg = req.json();
        assert_eq!(
            msg["thread"]["threadKey"], "pharos-incident-7",
            "one thread per incident"
        );
        assert!(msg["cardsV2"][0]["card"]["sections"].is_array());
    }
    assert_eq!(
        got[1].json()["cardsV2"][0]["card"]["header"]["title"],
        "[UP] api.example.com"
    );
}

// ---- matrix, telegram -----------------------------------------------------------------------

#[tokio::test]
async fn matrix_retries_reuse_the_transaction_id_and_return_the_event_id() {
    let sink = Sink::start().await;
    sink.script([
        Reply::json(429, json!({"errcode": "M_LIMIT_EXCEEDED", "error": "Too Many Requests", "retry_after_ms": 200})),
        Reply::json(200, json!({"event_id": "$abc123:example.org"})),
    ]);
    let (runtime, plugin) = setup("matrix").await;
    let config = json!({"homeserver": sink.url(""), "access_token": "syt_secret_token_0123456789",
                        "room_id": "!room:example.org"});
    let d = deliver(&runtime, &plugin, input(config.clone(), &opened_event(), 1)).await;
    assert!(transient(&d).contains("M_LIMIT_EXCEEDED"), "{d:?}");
    let d = deliver(&runtime, &plugin, input(config, &opened_event(), 2)).await;
    assert_eq!(delivered(&d), ("HTTP 200", Some("$abc123:example.org")));

    let got = sink.wait_for(2, WAIT).await;
    for req in &got {
        assert_eq!(req.method, "PUT");
        assert_eq!(
            req.path,
            "/_matrix/client/v3/rooms/%21room%3Aexample.org/send/m.room.message/pharos-n-42",
            "the same txnId on every attempt: the homeserver deduplicates"
        );
        assert_eq!(
            req.header("authorization"),
            Some("Bearer syt_secret_token_0123456789")
        );
        let content = req.json();
        assert_eq!(content["msgtype"], "m.text");
        assert_eq!(content["format"], "org.matrix.custom.html");
        assert!(
            content["body"]
                .as_str()
                .unwrap_or("")
                .starts_with("[DOWN] api.example.com\n")
        );
        assert!(
            content["formatted_body"]
                .as_str()
                .unwrap_or("")
                .contains("data-mx-color=\"#d6333f\"")
        );
        assert_eq!(content["m.mentions"], json!({}));
    }
}

#[tokio::test]
async fn telegram_sends_html_and_treats_rate_limits_as_transient() {
    let sink = Sink::start().await;
    sink.script([
        Reply::json(429, json!({"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 3", "parameters": {"retry_after": 3}})),
        Reply::json(200, json!({"ok": true, "result": {"message_id": 4711, "chat": {"id": -100}}})),
        Reply::json(400, json!({"ok": false, "error_code": 400, "description": "Bad Request: chat not found"})),
    ]);
    let (runtime, plugin) = setup("telegram").await;
    let token = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";
    let config = json!({"bot_token": token, "chat_id": -1001234567890i64, "api_url": sink.url(""),
                        "message_thread_id": 7});
    let d = deliver(&runtime, &plugin, input(config.clone(), &opened_event(), 1)).await;
    assert_eq!(
        transient(&d),
        "Telegram 429: Too Many Requests: retry after 3 (retry after 3 s)"
    );
    let d = deliver(&runtime, &plugin, input(config.clone(), &opened_event(), 2)).await;
    assert_eq!(delivered(&d), ("HTTP 200", Some("4711")));
    let d = deliver(&runtime, &plugin, input(config, &resolved_event(), 1)).await;
    assert_eq!(permanent(&d), "Telegram 400: Bad Request: chat not found");

    let got = sink.wait_for(3, WAIT).await;
    assert_eq!(got[1].path, format!("/bot{token}/sendMessage"));
    let msg = got[1].json();
    assert_eq!(msg["chat_id"], -1001234567890i64);
    assert_eq!(msg["message_thread_id"], 7);
    assert_eq!(msg["parse_mode"], "HTML");
    let text = msg["text"].as_str().unwrap_or_default();
    assert!(
        text.starts_with("🔴 <b>[DOWN] api.example.com</b>\n"),
        "{text}"
    );
    assert!(text.contains("<a href=\"https://pharos.example/incidents/7\">Open incident</a>"));
}

// ---- vendor pins ----------------------------------------------------------------------------

#[tokio::test]
async fn hosted_services_are_pinned_to_their_vendor_hosts() {
    let sink = Sink::start().await;
    let runtime = support::runtime(true);
    for (name, config) in [
        (
            "slack",
            json!({"webhook_url": sink.url("/services/T/B/XXXXXXXXXXXXXXXXXXXXXXXX")}),
        ),
        (
            "discord",
            json!({"webhook_url": sink.url("/api/webhooks/1/x")}),
        ),
        ("teams", json!({"webhook_url": sink.url("/workflows/x")})),
        (
            "google-chat",
            json!({"webhook_url": sink.url("/v1/spaces/A/messages")}),
        ),
        (
            "telegram",
            json!({"bot_token": "1:abc", "chat_id": 1, "api_url": sink.url("")}),
        ),
    ] {
        let plugin = support::builtin(&runtime, name).await;
        let pinned = pharos::builtin::pinned_hosts(name)
            .unwrap_or_else(|| panic!("{name} has no pinned hosts"));
        let grants = Grants {
            capabilities: [Capability::Http].into(),
            allowed_hosts: Some(pinned.iter().map(|h| h.to_string()).collect()),
        };
        let sandbox = runtime.sandbox(&plugin, &grants);
        let d = runtime
            .deliver_validated(&plugin, &sandbox, input(config, &opened_event(), 1))
            .await;
        let m = permanent(&d);
        assert!(
            m.contains("not-granted") && m.contains("not among the granted destinations"),
            "{name}: {m}"
        );
    }
    assert!(sink.received().is_empty(), "nothing reached the sink");
}
