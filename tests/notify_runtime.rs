//! Notifier plugins in the runtime and the catalog, and the host `smtp` capability: the
//! configurable `tests/fixtures/notifier` component delivers, fails transiently or permanently,
//! is contained when it traps or spins, reaches loopback HTTP and SMTP servers only when the
//! policy and its grants allow, and is resolved by the catalog as a notifier, never as a check.

mod support;

use std::sync::Arc;
use std::time::Duration;

use pharos::catalog::{Catalog, CatalogError, GrantRequest, PluginState};
use pharos::model::DEFAULT_WORKSPACE;
use pharos::runtime::{
    Capability, DeliverInput, Delivery, DeliveryOutcome, Grants, InvocationLimits, Plugin,
    PluginKind, Runtime, Sandbox,
};
use pharos::store::Store;
use serde_json::{Value, json};
use support::smtp::{Options, Security, SmtpSink};

const NOTIFIER: &str = "pharos_fixture_notifier";
const WS: i64 = DEFAULT_WORKSPACE;

fn input(config: Value) -> DeliverInput {
    DeliverInput {
        config: config.to_string(),
        title: "[DOWN] api.example.com".into(),
        body: "expected 200, got 503".into(),
        event: json!({"kind": "incident.opened", "id": "n-1", "dedup_key": "pharos-incident-7"})
            .to_string(),
        idempotency_key: "n-1".into(),
        attempt: 1,
        timeout: Duration::from_secs(10),
        test: false,
        channel: "ops".into(),
    }
}

async fn notifier(runtime: &Runtime) -> Arc<Plugin> {
    runtime
        .load(&support::fixture(NOTIFIER))
        .await
        .expect("load the notifier fixture")
}

/// Loads the fixture in a runtime (private targets allowed or not) and delivers `config` with
/// every declared capability granted.
async fn deliver(allow_private: bool, config: Value) -> Delivery {
    let runtime = support::runtime(allow_private);
    let plugin = notifier(&runtime).await;
    let sandbox = runtime.sandbox_all(&plugin);
    runtime
        .deliver_validated(&plugin, &sandbox, input(config))
        .await
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

fn delivered(d: &Delivery) -> (&str, Option<&str>) {
    match &d.outcome {
        DeliveryOutcome::Delivered {
            message,
            external_id,
        } => (message, external_id.as_deref()),
        other => panic!("expected a delivery, got {other:?}"),
    }
}

// ---- loading and delivering ----------------------------------------------------------------

#[tokio::test]
async fn a_notifier_component_loads_as_a_notifier_and_delivers() {
    let runtime = support::runtime(false);
    let plugin = notifier(&runtime).await;
    assert_eq!(plugin.kind(), PluginKind::Notifier);
    assert_eq!(plugin.info.kind, PluginKind::Notifier);
    assert_eq!(plugin.id(), "fixture-notifier@0.1.0");
    assert_eq!(
        plugin.info.capabilities,
        vec![Capability::Http, Capability::Smtp]
    );
    let sandbox = runtime.sandbox_all(&plugin);
    let d = runtime
        .deliver_validated(&plugin, &sandbox, input(json!({})))
        .await;
    assert_eq!(delivered(&d), ("accepted n-1", Some("ext-n-1")));
    assert!(d.elapsed_ms >= 0.0);
    assert_eq!(d.to_json()["outcome"], "delivered");
}

#[tokio::test]
async fn the_notification_reaches_the_plugin_as_given() {
    let runtime = support::runtime(false);
    let plugin = notifier(&runtime).await;
    let sandbox = runtime.sandbox_all(&plugin);
    let mut given = input(json!({"mode": "echo"}));
    given.attempt = 3;
    given.test = true;
    given.timeout = Duration::from_millis(4_000);
    let d = runtime.deliver_validated(&plugin, &sandbox, given).await;
    let echoed: Value = serde_json::from_str(delivered(&d).0).expect("echo is JSON");
    assert_eq!(echoed["title"], "[DOWN] api.example.com");
    assert_eq!(echoed["body"], "expected 200, got 503");
    assert_eq!(echoed["event"]["dedup_key"], "pharos-incident-7");
    assert_eq!(echoed["idempotency_key"], "n-1");
    assert_eq!(echoed["attempt"], 3);
    assert_eq!(echoed["deadline_ms"], 4_000);
    assert_eq!(echoed["test"], true);
}

#[tokio::test]
async fn transient_and_permanent_errors_pass_through() {
    let d = deliver(false, json!({"mode": "transient", "message": "HTTP 503"})).await;
    assert_eq!(transient(&d), "HTTP 503");
    let d = deliver(false, json!({"mode": "permanent", "message": "HTTP 401"})).await;
    assert_eq!(permanent(&d), "HTTP 401");
    assert_eq!(d.outcome.as_str(), "permanent");
}

#[tokio::test]
async fn a_trapping_notifier_is_a_transient_failure_naming_the_cause() {
    let d = deliver(false, json!({"mode": "trap"})).await;
    let m = transient(&d);
    assert!(m.starts_with("trap: "), "{m}");
}

#[tokio::test]
async fn a_spinning_notifier_hits_the_cpu_budget_or_the_timeout() {
    let runtime = support::runtime(false);
    let bytes = support::fixture(NOTIFIER);
    let tight = support::fixture_with_cpu_budget(&runtime, NOTIFIER, 200).await;
    let sandbox = runtime.sandbox_all(&tight);
    let d = runtime
        .deliver(&tight, &sandbox, input(json!({"mode": "loop"})))
        .await;
    let m = transient(&d);
    assert!(m.starts_with("cpu_limit: "), "{m}");
    assert!(m.contains("200 ms CPU budget"), "{m}");

    let patient = runtime
        .load_with_limits(
            &bytes,
            Some(InvocationLimits {
                cpu_budget_ms: 60_000,
                grace_ms: 50,
                ..InvocationLimits::default()
            }),
        )
        .await
        .expect("load");
    let mut given = input(json!({"mode": "loop"}));
    given.timeout = Duration::from_millis(300);
    let d = runtime
        .deliver(&patient, &runtime.sandbox_all(&patient), given)
        .await;
    let m = transient(&d);
    assert!(m.starts_with("timeout: "), "{m}");
    assert!(m.contains("300 ms timeout"), "{m}");
}

#[tokio::test]
async fn a_config_that_fails_the_schema_is_a_permanent_failure() {
    let d = deliver(false, json!({"mode": 42})).await;
    let m = permanent(&d);
    assert!(m.contains("invalid_config"), "{m}");
    assert!(m.contains("/mode"), "{m}");
    let runtime = support::runtime(false);
    let plugin = notifier(&runtime).await;
    let mut given = input(json!({}));
    given.config = "{not json".into();
    let d = runtime
        .deliver_validated(&plugin, &runtime.sandbox_all(&plugin), given)
        .await;
    assert!(permanent(&d).contains("not JSON"), "{d:?}");
}

#[tokio::test]
async fn oversized_output_is_truncated_to_the_caps() {
    let d = deliver(false, json!({"mode": "big"})).await;
    let (message, external_id) = delivered(&d);
    assert_eq!(message.len(), 1024);
    assert_eq!(external_id.map(str::len), Some(256));
}

#[tokio::test]
async fn checks_and_notifiers_do_not_run_as_each_other() {
    let runtime = support::runtime(false);
    let plugin = notifier(&runtime).await;
    let sandbox = runtime.sandbox_all(&plugin);
    let o = support::check(
        &runtime,
        &plugin,
        &sandbox,
        json!({}),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(o.status, pharos::runtime::Status::Error);
    assert!(
        o.message
            .contains("is a notifier plugin, not a check plugin"),
        "{o:?}"
    );

    let http = support::builtin(&runtime, "http").await;
    assert_eq!(http.kind(), PluginKind::Check);
    let d = runtime
        .deliver(&http, &runtime.sandbox_all(&http), input(json!({})))
        .await;
    assert!(
        permanent(&d).contains("is a check plugin, not a notifier plugin"),
        "{d:?}"
    );
}

// ---- the http capability from a notifier --------------------------------------------------

#[tokio::test]
async fn a_notifier_posts_through_the_guarded_http_capability() {
    let server = support::servers::http().await;
    let url = format!("http://{}/", server.addr);
    let d = deliver(true, json!({"mode": "http", "url": url})).await;
    assert_eq!(delivered(&d).0, "HTTP 200");
    // The SSRF guard applies to notifiers as it does to checks.
    let d = deliver(false, json!({"mode": "http", "url": url})).await;
    let m = transient(&d);
    assert!(m.starts_with("policy-denied: "), "{m}");
    // A grant pinned to a vendor's hosts refuses every other destination.
    let runtime = support::runtime(true);
    let plugin = notifier(&runtime).await;
    let pinned = Grants {
        capabilities: [Capability::Http].into_iter().collect(),
        allowed_hosts: Some(vec!["hooks.slack.com".into()]),
    };
    let d = runtime
        .deliver(
            &plugin,
            &runtime.sandbox(&plugin, &pinned),
            input(json!({"mode": "http", "url": url})),
        )
        .await;
    let m = transient(&d);
    assert!(m.starts_with("not-granted: "), "{m}");
    assert!(m.contains("hooks.slack.com"), "{m}");
}

// ---- the smtp capability ------------------------------------------------------------------

fn smtp(sink: &SmtpSink, security: &str, extra: Value) -> Value {
    let mut server = json!({
        "host": "localhost",
        "port": sink.port(),
        "security": security,
        "verify_tls": false,
        "to": ["ops@pharos.test", "Oncall <oncall@pharos.test>"],
        "timeout_ms": 5000,
    });
    if let (Some(map), Value::Object(more)) = (server.as_object_mut(), extra) {
        map.extend(more);
    }
    json!({"mode": "smtp", "smtp": server})
}

async fn sink(options: Options) -> SmtpSink {
    support::smtp::start(options).await
}

fn with_auth(security: Security, mechanisms: &str) -> Options {
    Options {
        auth: Some(("alerts".into(), "s3cret".into())),
        mechanisms: mechanisms.into(),
        ..Options::new(security)
    }
}

#[tokio::test]
async fn smtp_plain_with_auth_plain_sends_the_message() {
    let server = sink(with_auth(Security::Plain, "PLAIN LOGIN")).await;
    let config = smtp(
        &server,
        "none",
        json!({"username": "alerts", "password": "s3cret"}),
    );
    let d = deliver(true, config).await;
    let (reply, message_id) = delivered(&d);
    assert!(reply.starts_with("250 "), "{reply}");
    assert!(reply.contains("queued as 1"), "{reply}");
    let message_id = message_id.expect("a Message-ID");
    assert!(message_id.ends_with("@pharos.test>"), "{message_id}");
    let got = server.received();
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(m.from, "alerts@pharos.test");
    assert_eq!(m.to, vec!["ops@pharos.test", "oncall@pharos.test"]);
    assert_eq!(m.user.as_deref(), Some("alerts"));
    assert_eq!(m.mechanism.as_deref(), Some("PLAIN"));
    assert!(!m.tls);
    assert_eq!(
        m.header("Subject").as_deref(),
        Some("[DOWN] api.example.com")
    );
    assert_eq!(m.header("Message-ID").as_deref(), Some(message_id));
    assert_eq!(m.header("X-Pharos-Idempotency-Key").as_deref(), Some("n-1"));
    assert!(m.header("Date").is_some());
    assert!(m.data.contains("expected 200, got 503"), "{}", m.data);
}

#[tokio::test]
async fn smtp_auth_login_and_bad_credentials() {
    let server = sink(with_auth(Security::Plain, "LOGIN")).await;
    let d = deliver(
        true,
        smtp(
            &server,
            "none",
            json!({"username": "alerts", "password": "s3cret"}),
        ),
    )
    .await;
    delivered(&d);
    assert_eq!(server.received()[0].mechanism.as_deref(), Some("LOGIN"));
    // A refused login is a 5xx rejection: permanent for the fixture.
    let d = deliver(
        true,
        smtp(
            &server,
            "none",
            json!({"username": "alerts", "password": "wrong"}),
        ),
    )
    .await;
    let m = permanent(&d);
    assert!(m.starts_with("rejected 535: "), "{m}");
    // No login where the server demands one.
    let d = deliver(true, smtp(&server, "none", json!({}))).await;
    assert!(permanent(&d).starts_with("rejected 530: "), "{d:?}");
    assert_eq!(server.received().len(), 1);
}

#[tokio::test]
async fn smtp_starttls_upgrades_and_honours_the_message_id() {
    let server = sink(with_auth(Security::StartTls, "PLAIN LOGIN")).await;
    let config = smtp(
        &server,
        "starttls",
        json!({
            "username": "alerts",
            "password": "s3cret",
            "message_id": "<incident-7.n-1@pharos.example>",
            "html": "<p>api is <b>down</b></p>",
        }),
    );
    let d = deliver(true, config).await;
    let (_, message_id) = delivered(&d);
    assert_eq!(message_id, Some("<incident-7.n-1@pharos.example>"));
    let got = server.received();
    assert_eq!(got.len(), 1);
    assert!(got[0].tls, "the message must travel after STARTTLS");
    assert_eq!(
        got[0].header("Message-ID").as_deref(),
        Some("<incident-7.n-1@pharos.example>")
    );
    assert!(
        got[0]
            .header("Content-Type")
            .is_some_and(|c| c.starts_with("multipart/alternative")),
        "{}",
        got[0].data
    );
    assert!(got[0].data.contains("<b>down</b>"), "{}", got[0].data);
}

#[tokio::test]
async fn smtp_starttls_verifies_the_certificate_when_asked() {
    let server = sink(Options::new(Security::StartTls)).await;
    let d = deliver(true, smtp(&server, "starttls", json!({"verify_tls": true}))).await;
    let m = transient(&d);
    assert!(m.starts_with("tls: "), "{m}");
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn smtp_starttls_fails_when_the_server_does_not_offer_it() {
    let server = sink(Options::new(Security::Plain)).await;
    let d = deliver(true, smtp(&server, "starttls", json!({}))).await;
    let m = transient(&d);
    assert!(m.starts_with("tls: "), "{m}");
    assert!(m.contains("does not offer STARTTLS"), "{m}");
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn smtp_implicit_tls_sends_the_message() {
    let server = sink(Options::new(Security::Tls)).await;
    let d = deliver(true, smtp(&server, "tls", json!({}))).await;
    delivered(&d);
    let got = server.received();
    assert_eq!(got.len(), 1);
    assert!(got[0].tls);
    // The same server with verification on: a self-signed certificate is refused.
    let d = deliver(true, smtp(&server, "tls", json!({"verify_tls": true}))).await;
    assert!(transient(&d).starts_with("tls: "), "{d:?}");
    assert_eq!(server.received().len(), 1);
}

#[tokio::test]
async fn smtp_rejections_carry_the_reply_code() {
    let server = sink(Options {
        reject_rcpt: Some((550, "5.1.1 no such user".into())),
        ..Options::new(Security::Plain)
    })
    .await;
    let d = deliver(true, smtp(&server, "none", json!({}))).await;
    let m = permanent(&d);
    assert!(m.starts_with("rejected 550: "), "{m}");
    assert!(m.contains("no such user"), "{m}");

    let server = sink(Options {
        reject_data: Some((451, "4.3.0 try again later".into())),
        ..Options::new(Security::Plain)
    })
    .await;
    let d = deliver(true, smtp(&server, "none", json!({}))).await;
    let m = transient(&d);
    assert!(m.starts_with("rejected 451: "), "{m}");
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn smtp_to_loopback_is_refused_unless_private_targets_are_allowed() {
    let server = sink(Options::new(Security::Plain)).await;
    let d = deliver(false, smtp(&server, "none", json!({}))).await;
    let m = transient(&d);
    assert!(m.starts_with("policy-denied: "), "{m}");
    assert!(m.contains("loopback"), "{m}");
    let d = deliver(false, smtp(&server, "none", json!({"host": "127.0.0.1"}))).await;
    assert!(transient(&d).starts_with("policy-denied: "), "{d:?}");
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn smtp_needs_the_grant_and_a_granted_host() {
    let server = sink(Options::new(Security::Plain)).await;
    let runtime = support::runtime(true);
    let plugin = notifier(&runtime).await;
    let run = |sandbox: Sandbox| {
        let runtime = &runtime;
        let plugin = plugin.clone();
        let config = smtp(&server, "none", json!({}));
        async move { runtime.deliver(&plugin, &sandbox, input(config)).await }
    };
    let d = run(runtime.sandbox(&plugin, &Grants::all_of([Capability::Http]))).await;
    let m = transient(&d);
    assert!(m.starts_with("not-granted: "), "{m}");
    assert!(m.contains("`smtp`"), "{m}");
    let elsewhere = Grants {
        capabilities: [Capability::Smtp].into_iter().collect(),
        allowed_hosts: Some(vec!["smtp.example.com".into()]),
    };
    let d = run(runtime.sandbox(&plugin, &elsewhere)).await;
    let m = transient(&d);
    assert!(m.starts_with("not-granted: "), "{m}");
    assert!(m.contains("smtp.example.com"), "{m}");
    assert!(server.received().is_empty());
    let here = Grants {
        capabilities: [Capability::Smtp].into_iter().collect(),
        allowed_hosts: Some(vec!["localhost".into()]),
    };
    let d = run(runtime.sandbox(&plugin, &here)).await;
    delivered(&d);
    assert_eq!(server.received().len(), 1);
}

#[tokio::test]
async fn smtp_gives_up_at_its_timeout_on_a_silent_server() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let config = json!({"mode": "smtp", "smtp": {
        "host": "127.0.0.1", "port": port, "security": "none",
        "to": ["ops@pharos.test"], "timeout_ms": 300,
    }});
    let d = deliver(true, config).await;
    let m = transient(&d);
    assert!(m.starts_with("timeout: "), "{m}");
    assert!(m.contains("SMTP exchange with 127.0.0.1"), "{m}");
    silent.abort();
}

#[tokio::test]
async fn smtp_refuses_malformed_messages_before_connecting() {
    let server = sink(Options::new(Security::Plain)).await;
    let d = deliver(
        true,
        smtp(&server, "none", json!({"to": ["not an address"]})),
    )
    .await;
    let m = transient(&d);
    assert!(m.starts_with("invalid-request: "), "{m}");
    let d = deliver(
        true,
        smtp(&server, "none", json!({"message_id": "no brackets"})),
    )
    .await;
    assert!(transient(&d).contains("Message-ID"), "{d:?}");
    assert!(server.received().is_empty());
}

// ---- the catalog ---------------------------------------------------------------------------

async fn catalog_resolves_notifiers_by_kind(url: String) {
    let store = Store::connect(&url).await.expect("store");
    let runtime = Arc::new(support::runtime(true));
    let catalog = Catalog::load(runtime.clone(), store)
        .await
        .expect("catalog");
    let entry = catalog
        .upload(WS, &support::fixture(NOTIFIER), None)
        .await
        .expect("a notifier upload is accepted");
    assert_eq!(entry.kind, "notifier");
    assert_eq!(entry.state, PluginState::AwaitingGrant);
    assert!(matches!(
        catalog.resolve_notifier(WS, "fixture-notifier"),
        Err(CatalogError::NotActive(_, "awaiting grant"))
    ));
    catalog
        .grant(WS, "fixture-notifier", "0.1.0", GrantRequest::All)
        .await
        .expect("grant");
    let resolved = catalog
        .resolve_notifier(WS, "fixture-notifier")
        .expect("resolves as a notifier");
    let d = runtime
        .deliver(
            &resolved.plugin,
            &resolved.sandbox,
            input(json!({"mode": "ok"})),
        )
        .await;
    assert_eq!(delivered(&d).0, "accepted n-1");
    assert!(
        catalog
            .resolve_notifier(WS, "fixture-notifier@0.1.0")
            .is_ok()
    );

    // A notifier is not a check, and a check is not a notifier, pinned or not.
    for reference in ["fixture-notifier", "fixture-notifier@0.1.0"] {
        match catalog.resolve(WS, reference) {
            Err(e @ CatalogError::WrongKind(_, PluginKind::Notifier, PluginKind::Check)) => {
                assert_eq!(
                    e.to_string(),
                    format!("plugin `{reference}` is a notifier plugin, not a check plugin")
                );
            }
            other => panic!("expected WrongKind, got {:?}", other.err()),
        }
    }
    match catalog.resolve_notifier(WS, "http") {
        Err(e @ CatalogError::WrongKind(_, PluginKind::Check, PluginKind::Notifier)) => {
            assert!(
                e.to_string()
                    .contains("is a check plugin, not a notifier plugin")
            );
        }
        other => panic!("expected WrongKind, got {:?}", other.err()),
    }
    assert!(matches!(
        catalog.resolve_notifier(WS, "no-such-channel"),
        Err(CatalogError::NotFound(_))
    ));

    // Built-in notifiers of hosted services are pinned to their vendor's hosts.
    let mut builtin_notifiers = 0;
    for entry in catalog.list(WS) {
        if !entry.builtin || entry.kind != "notifier" {
            continue;
        }
        builtin_notifiers += 1;
        let grants = entry.grants.expect("built-ins are granted");
        let expected = pharos::builtin::pinned_hosts(&entry.name)
            .map(|hosts| hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>());
        assert_eq!(grants.allowed_hosts, expected, "{}", entry.name);
        assert!(
            catalog.resolve_notifier(WS, &entry.name).is_ok(),
            "{}",
            entry.name
        );
    }
    eprintln!("{builtin_notifiers} built-in notifier(s) checked for host pins");
}

#[tokio::test]
async fn builtin_grants_pin_hosted_services_only() {
    let runtime = support::runtime(true);
    let plugin = notifier(&runtime).await;
    // A notifier built from `plugins/slack` gets Slack's hosts, whatever it calls itself.
    let slack = pharos::catalog::builtin_grants(&plugin, "slack");
    assert_eq!(
        slack.capabilities,
        [Capability::Http, Capability::Smtp].into_iter().collect()
    );
    assert_eq!(
        slack.allowed_hosts,
        Some(vec!["hooks.slack.com".to_string(), "slack.com".to_string()])
    );
    assert_eq!(
        pharos::catalog::builtin_grants(&plugin, "email").allowed_hosts,
        None
    );
    // Check plugins are never pinned.
    let http = support::builtin(&runtime, "http").await;
    assert_eq!(
        pharos::catalog::builtin_grants(&http, "slack").allowed_hosts,
        None
    );
}

mod sqlite {
    #[tokio::test]
    async fn catalog_resolves_notifiers_by_kind() {
        let dir = tempfile::tempdir().expect("temp dir");
        super::catalog_resolves_notifiers_by_kind(super::support::db::sqlite_url(dir.path())).await;
    }
}

mod postgres {
    #[tokio::test]
    async fn catalog_resolves_notifiers_by_kind() {
        let Some(url) = super::support::db::postgres_url().await else {
            return;
        };
        super::catalog_resolves_notifiers_by_kind(url).await;
    }
}
