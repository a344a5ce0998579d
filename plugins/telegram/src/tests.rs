use super::*;
use pharos_sdk::notify::render::sample_event;
use pharos_sdk::notify::run_notify;
use pharos_sdk::{CapError, mock};
use std::cell::RefCell;
use std::rc::Rc;

const TOKEN: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";

fn config(v: Value) -> Config {
    pharos_sdk::parse_config(&v.to_string()).unwrap()
}

fn sent_json(req: &Request, base: &str) -> Value {
    assert_eq!(req.method, "POST");
    assert_eq!(req.url, format!("{base}/bot{TOKEN}/sendMessage"));
    let headers: Vec<(&str, &str)> = req
        .headers
        .iter()
        .map(|h| (h.name.as_str(), h.value.as_str()))
        .collect();
    assert_eq!(headers, vec![("Content-Type", "application/json")]);
    assert!(!req.follow_redirects && req.verify_tls);
    serde_json::from_slice(req.body.as_deref().unwrap()).unwrap()
}

#[test]
fn incident_opened_request() {
    let n = Notification::for_test(sample_event("incident.opened"));
    let cfg = config(json!({"bot_token": TOKEN, "chat_id": -1001234567890i64}));
    assert_eq!(
        sent_json(
            &build_request(&cfg, &n).unwrap(),
            "https://api.telegram.org"
        ),
        json!({
            "chat_id": -1001234567890i64,
            "text": concat!(
                "🔴 <b>[DOWN] api</b>\napi is down: expected 200, got 503.\n\n",
                "<b>Monitor:</b> api\n<b>Status:</b> DOWN\n<b>Severity:</b> critical\n",
                "<b>Cause:</b> expected 200, got 503\n<b>Since:</b> 2026-11-24T09:58:00Z\n",
                "<b>Incident:</b> #7\n<b>Tags:</b> prod\n\n",
                "<a href=\"https://pharos.example/incidents/7\">Open incident</a> · <i>Pharos · Incident opened</i>"
            ),
            "parse_mode": "HTML",
            "link_preview_options": {"is_disabled": true},
            "disable_notification": false
        })
    );
}

#[test]
fn incident_resolved_request_to_a_topic() {
    let n = Notification::for_test(sample_event("incident.resolved"));
    let cfg = config(json!({
        "bot_token": TOKEN, "chat_id": "@pharos_alerts", "message_thread_id": 42,
        "disable_notification": true, "api_url": "http://127.0.0.1:8081/"
    }));
    assert_eq!(
        sent_json(&build_request(&cfg, &n).unwrap(), "http://127.0.0.1:8081"),
        json!({
            "chat_id": "@pharos_alerts",
            "message_thread_id": 42,
            "text": concat!(
                "✅ <b>[UP] api</b>\napi is up again after 12m 0s.\n\n",
                "<b>Monitor:</b> api\n<b>Status:</b> UP\n",
                "<b>Cause:</b> expected 200, got 503\n<b>Since:</b> 2026-11-24T10:10:00Z\n",
                "<b>Incident:</b> #7\n<b>Duration:</b> 12m 0s\n<b>Tags:</b> prod\n\n",
                "<a href=\"https://pharos.example/incidents/7\">Open incident</a> · <i>Pharos · Incident resolved</i>"
            ),
            "parse_mode": "HTML",
            "link_preview_options": {"is_disabled": true},
            "disable_notification": true
        })
    );
}

#[test]
fn test_alert_is_labelled_and_text_is_escaped() {
    let mut ev = sample_event("test");
    ev["title"] = json!("Chat <check>");
    ev["body"] = json!("a & b <i>not italic</i>");
    ev["dashboard_url"] = Value::Null;
    let n = Notification::for_test(ev);
    let cfg = config(json!({"bot_token": TOKEN, "chat_id": "-100123"}));
    let sent = sent_json(
        &build_request(&cfg, &n).unwrap(),
        "https://api.telegram.org",
    );
    assert_eq!(sent["chat_id"], "-100123");
    assert_eq!(
        sent["text"],
        "🧪 <b>[TEST] Chat &lt;check&gt;</b>\na &amp; b &lt;i&gt;not italic&lt;/i&gt;\n\n<b>Status:</b> UP\n\n<i>Pharos · Test alert</i>"
    );
    let digest = Notification::for_test(sample_event("digest"));
    assert!(
        message_text(&digest).contains("\n• [DOWN] web (Incident opened, 2026-11-24T09:59:30Z)\n")
    );
}

#[test]
fn answers_are_classified_and_the_token_never_leaks() {
    mock::reset();
    let script = Rc::new(RefCell::new(vec![
        Ok(http::Response::new(
            200,
            r#"{"ok":true,"result":{"message_id":4711,"chat":{"id":-100}}}"#,
        )),
        Ok(http::Response::new(
            429,
            r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 35","parameters":{"retry_after":35}}"#,
        )),
        Ok(http::Response::new(502, "<html>Bad Gateway</html>")),
        Ok(http::Response::new(
            400,
            r#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#,
        )),
        Ok(http::Response::new(
            400,
            r#"{"ok":false,"error_code":400,"description":"Bad Request: group chat was upgraded to a supergroup chat","parameters":{"migrate_to_chat_id":-1001234}}"#,
        )),
        Ok(http::Response::new(
            401,
            r#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#,
        )),
        Ok(http::Response::new(
            403,
            r#"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#,
        )),
        Err(CapError::Timeout(format!(
            "HTTP POST https://api.telegram.org/bot{TOKEN}/sendMessage: waiting for the response"
        ))),
    ]));
    let s = script.clone();
    mock::http(move |_| s.borrow_mut().remove(0));
    let n = Notification::for_test(sample_event("incident.opened"));
    let cfg = json!({"bot_token": TOKEN, "chat_id": 1}).to_string();
    assert_eq!(
        run_notify::<Telegram>(&cfg, &n).unwrap(),
        Receipt::new("HTTP 200").with_external_id("4711")
    );
    assert_eq!(
        run_notify::<Telegram>(&cfg, &n).unwrap_err(),
        DeliveryError::Transient(
            "Telegram 429: Too Many Requests: retry after 35 (retry after 35 s)".into()
        )
    );
    let err = run_notify::<Telegram>(&cfg, &n).unwrap_err();
    assert!(
        err.is_transient() && err.reason().starts_with("HTTP 502"),
        "{err}"
    );
    assert_eq!(
        run_notify::<Telegram>(&cfg, &n).unwrap_err(),
        DeliveryError::Permanent("Telegram 400: Bad Request: chat not found".into())
    );
    let err = run_notify::<Telegram>(&cfg, &n).unwrap_err();
    assert!(
        !err.is_transient() && err.reason().contains("set chat_id to -1001234"),
        "{err}"
    );
    assert!(!run_notify::<Telegram>(&cfg, &n).unwrap_err().is_transient());
    assert!(!run_notify::<Telegram>(&cfg, &n).unwrap_err().is_transient());
    let err = run_notify::<Telegram>(&cfg, &n).unwrap_err();
    assert!(err.is_transient());
    assert!(
        !err.reason().contains("AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"),
        "{err}"
    );
    assert!(err.reason().contains("/bot***/sendMessage"), "{err}");
    mock::reset();
}

#[test]
fn a_200_that_is_not_ok_is_not_delivered() {
    let resp = http::Response::new(
        200,
        r#"{"ok":false,"error_code":400,"description":"Bad Request: message is too long"}"#,
    );
    assert_eq!(
        classify(&resp).unwrap_err(),
        DeliveryError::Permanent("Telegram 400: Bad Request: message is too long".into())
    );
}

#[test]
fn config_errors_are_permanent() {
    let n = Notification::for_test(sample_event("incident.opened"));
    for (bad, needle) in [
        (json!({"bot_token": TOKEN}), "chat_id"),
        (json!({"bot_token": "a/b", "chat_id": 1}), "`bot_token`"),
        (
            json!({"bot_token": TOKEN, "chat_id": 1, "api_url": "api.telegram.org"}),
            "`api_url`",
        ),
        (json!({"bot_token": TOKEN, "chat_id": 1.5}), "chat_id"),
        (
            json!({"bot_token": TOKEN, "chat_id": 1, "parse_mode": "HTML"}),
            "parse_mode",
        ),
    ] {
        let err = run_notify::<Telegram>(&bad.to_string(), &n).unwrap_err();
        assert!(
            !err.is_transient() && err.reason().contains(needle),
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
        json!({"bot_token": TOKEN}),
        json!({"bot_token": "nope", "chat_id": 1}),
        json!({"bot_token": TOKEN, "chat_id": "general"}),
        json!({"bot_token": TOKEN, "chat_id": 1, "message_thread_id": 0}),
        json!({"bot_token": TOKEN, "chat_id": 1, "extra": 1}),
    ] {
        assert!(!v.is_valid(&bad), "schema should reject {bad}");
    }
    let p = &s["properties"];
    assert_eq!(p["bot_token"]["x-secret"], true);
    let defaults = config(json!({"bot_token": TOKEN, "chat_id": 1}));
    assert_eq!(json!(defaults.api_url), p["api_url"]["default"]);
    assert_eq!(
        json!(defaults.disable_notification),
        p["disable_notification"]["default"]
    );
    let info = notify::notify_plugin_info::<Telegram>();
    assert_eq!(
        (info.name.as_str(), info.version.as_str()),
        ("telegram", "0.1.0")
    );
    assert_eq!(info.capabilities, vec!["http".to_string()]);
    for (name, prop) in p.as_object().unwrap() {
        assert!(prop["description"].is_string(), "{name} has no description");
    }
}
