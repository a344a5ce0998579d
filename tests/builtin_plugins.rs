//! End-to-end tests of the built-in plugins, run as components in the sandbox against real
//! servers on loopback: HTTP, HTTPS with a self-signed certificate, a TCP banner server and a
//! DNS server.

mod support;

use std::time::Duration;

use pharos::runtime::{Outcome, Runtime, Status};
use serde_json::{Value, json};
use support::{metric, servers};

const T: Duration = Duration::from_secs(10);

async fn run(runtime: &Runtime, plugin: &str, config: Value) -> Outcome {
    let p = support::builtin(runtime, plugin).await;
    let sandbox = runtime.sandbox_all(&p);
    support::check(runtime, &p, &sandbox, config, T).await
}

/// `base` with the members of `extra` added (or replaced).
fn with(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    base
}

fn assert_status(o: &Outcome, status: Status) {
    assert_eq!(o.status, status, "{o:#?}");
}

#[tokio::test]
async fn http_up_with_timings_and_metrics() {
    let rt = support::runtime(true);
    let s = servers::http().await;
    let o = run(
        &rt,
        "http",
        json!({"url": format!("http://{}/", s.addr), "body_contains": ["pharos test"]}),
    )
    .await;
    assert_status(&o, Status::Up);
    assert!(o.message.contains("200"), "{o:?}");
    assert_eq!(metric(&o, "http_status"), Some(200.0));
    assert!(
        o.timings.connect_ms.is_some()
            && o.timings.first_byte_ms.is_some()
            && o.timings.total_ms.is_some(),
        "{o:?}"
    );
    assert!(o.latency_ms > 0.0);
}

#[tokio::test]
async fn http_status_expectations() {
    let rt = support::runtime(true);
    let s = servers::http().await;
    let cases = [
        ("/status/500", json!({}), Status::Down),
        ("/status/500", json!({"expected_status": 500}), Status::Up),
        (
            "/status/404",
            json!({"expected_status": [200, 404]}),
            Status::Up,
        ),
        (
            "/status/204",
            json!({"expected_status": "200-299"}),
            Status::Up,
        ),
        (
            "/status/302",
            json!({"follow_redirects": false, "expected_status": "200-299"}),
            Status::Down,
        ),
        // Rate limiting and maintenance are degraded unless expected.
        ("/status/429", json!({}), Status::Degraded),
        ("/status/503", json!({}), Status::Degraded),
        ("/status/503", json!({"expected_status": 503}), Status::Up),
    ];
    for (path, extra, expected) in cases {
        let config = with(json!({"url": format!("http://{}{path}", s.addr)}), extra);
        let o = run(&rt, "http", config.clone()).await;
        assert_eq!(o.status, expected, "{config}: {o:#?}");
    }
}

#[tokio::test]
async fn http_redirects_are_followed_up_to_the_maximum() {
    let rt = support::runtime(true);
    let s = servers::http().await;
    let o = run(
        &rt,
        "http",
        json!({"url": format!("http://{}/redirect/3", s.addr)}),
    )
    .await;
    assert_status(&o, Status::Up);
    let details = o.details.as_ref().expect("details").to_value();
    assert_eq!(
        details["redirects"].as_array().map(Vec::len),
        Some(3),
        "{details}"
    );
    let o = run(&rt, "http", json!({"url": format!("http://{}/redirect/3", s.addr), "max_redirects": 1, "expected_status": 200})).await;
    assert_status(&o, Status::Down);
}

#[tokio::test]
async fn http_body_json_and_header_assertions() {
    let rt = support::runtime(true);
    let s = servers::http().await;
    let url = format!("http://{}/json", s.addr);
    let ok = run(
        &rt,
        "http",
        json!({
            "url": url,
            "body_regex": ["\"items\":\\[1,2,3\\]"],
            "body_not_contains": ["error"],
            "json_assertions": [
                {"path": "$.status", "operator": "eq", "value": "ok"},
                {"path": "$.items[2]", "operator": "eq", "value": 3},
                {"path": "$.nested.healthy", "operator": "eq", "value": true},
                {"path": "$.nested.version", "operator": "matches", "value": "^1\\.4\\."},
                {"path": "$.missing", "operator": "not_exists"}
            ],
            "header_assertions": [
                {"name": "content-type", "value": "application/json"},
                {"name": "X-Pharos-Test", "regex": "^y"}
            ]
        }),
    )
    .await;
    assert_status(&ok, Status::Up);
    let bad = run(
        &rt,
        "http",
        json!({
            "url": url,
            "json_assertions": [{"path": "$.status", "operator": "eq", "value": "degraded"}]
        }),
    )
    .await;
    assert_status(&bad, Status::Down);
    assert!(bad.message.contains("$.status"), "{bad:?}");
    let bad = run(&rt, "http", json!({"url": url, "body_contains": ["nope"]})).await;
    assert_status(&bad, Status::Down);
    let bad = run(
        &rt,
        "http",
        json!({"url": url, "header_assertions": [{"name": "content-type", "value": "text/html"}]}),
    )
    .await;
    assert_status(&bad, Status::Down);
}

#[tokio::test]
async fn http_slower_than_threshold_is_degraded_and_timeout_is_down() {
    let rt = support::runtime(true);
    let s = servers::http().await;
    let o = run(
        &rt,
        "http",
        json!({"url": format!("http://{}/slow/150", s.addr), "degraded_above_ms": 50}),
    )
    .await;
    assert_status(&o, Status::Degraded);
    let o = run(
        &rt,
        "http",
        json!({"url": format!("http://{}/slow/3000", s.addr), "timeout_ms": 200}),
    )
    .await;
    assert_status(&o, Status::Down);
    assert!(
        o.message.to_lowercase().contains("timeout") || o.message.contains("timed out"),
        "{o:?}"
    );
}

#[tokio::test]
async fn https_self_signed_needs_verify_off_and_reports_certificate_days() {
    let rt = support::runtime(true);
    let s = servers::https(45).await;
    let url = format!("https://localhost:{}/", s.addr.port());
    let o = run(&rt, "http", json!({"url": url})).await;
    assert_status(&o, Status::Down);
    assert!(o.message.contains("tls"), "{o:?}");
    let o = run(&rt, "http", json!({"url": url, "verify_tls": false})).await;
    assert_status(&o, Status::Up);
    let days = metric(&o, "tls_days_remaining").expect("tls_days_remaining");
    assert!((44.0..=45.0).contains(&days), "{days}");
    assert!(o.timings.tls_ms.is_some(), "{o:?}");
}

#[tokio::test]
async fn http_basic_and_bearer_auth_reach_the_server_as_headers() {
    // The echo of Authorization is checked by the plugin's own unit tests of the exact request;
    // here the configs must validate and run.
    let rt = support::runtime(true);
    let s = servers::http().await;
    let o = run(&rt, "http", json!({"url": format!("http://{}/", s.addr), "basic_auth": {"username": "u", "password": "p"}})).await;
    assert_status(&o, Status::Up);
    let o = run(&rt, "http", json!({"url": format!("http://{}/", s.addr), "bearer_token": "t0k3n", "method": "POST", "body": "{}"})).await;
    assert_status(&o, Status::Up);
}

#[tokio::test]
async fn tcp_connect_banner_and_dialogue() {
    let rt = support::runtime(true);
    let s = servers::banner().await;
    let (host, port) = ("127.0.0.1", s.addr.port());
    let o = run(&rt, "tcp", json!({"host": host, "port": port})).await;
    assert_status(&o, Status::Up);
    assert!(o.timings.connect_ms.is_some(), "{o:?}");
    assert_status(
        &run(
            &rt,
            "tcp",
            json!({"host": host, "port": port, "expect": "220 pharos-test"}),
        )
        .await,
        Status::Up,
    );
    assert_status(
        &run(
            &rt,
            "tcp",
            json!({"host": host, "port": port, "send": "PING\r\n", "expect": "PONG"}),
        )
        .await,
        Status::Up,
    );
    assert_status(
        &run(
            &rt,
            "tcp",
            json!({"host": host, "port": port, "expect_regex": "^220 [a-z-]+ ready"}),
        )
        .await,
        Status::Up,
    );
    let o = run(
        &rt,
        "tcp",
        json!({"host": host, "port": port, "expect": "SSH-2.0", "timeout_ms": 500}),
    )
    .await;
    assert_status(&o, Status::Down);
    // Nothing listens on a fresh closed port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    assert_status(
        &run(&rt, "tcp", json!({"host": host, "port": closed})).await,
        Status::Down,
    );
}

#[tokio::test]
async fn tcp_tls_against_a_self_signed_server() {
    let rt = support::runtime(true);
    let s = servers::https(10).await;
    let o = run(
        &rt,
        "tcp",
        json!({"host": "localhost", "port": s.addr.port(), "tls": true, "verify_tls": false}),
    )
    .await;
    assert_status(&o, Status::Up);
    assert!(o.timings.tls_ms.is_some(), "{o:?}");
    let o = run(
        &rt,
        "tcp",
        json!({"host": "localhost", "port": s.addr.port(), "tls": true}),
    )
    .await;
    assert_status(&o, Status::Down);
}

#[tokio::test]
async fn dns_records_match_expectations() {
    let rt = support::runtime(true);
    let s = servers::dns().await;
    let cases = [
        (
            "app.pharos.test",
            "A",
            json!({"expected": ["192.0.2.10"]}),
            Status::Up,
        ),
        (
            "app.pharos.test",
            "A",
            json!({"expected": ["192.0.2.10", "192.0.2.11"], "match": "all"}),
            Status::Up,
        ),
        (
            "app.pharos.test",
            "A",
            json!({"expected": ["192.0.2.10", "192.0.2.99"], "match": "all"}),
            Status::Down,
        ),
        (
            "app.pharos.test",
            "A",
            json!({"expected": ["192.0.2.99"]}),
            Status::Down,
        ),
        (
            "app.pharos.test",
            "MX",
            json!({"expected": ["10 MAIL.pharos.test"]}),
            Status::Up,
        ),
        (
            "app.pharos.test",
            "TXT",
            json!({"expected": ["v=spf1 -all"]}),
            Status::Up,
        ),
        ("app.pharos.test", "AAAA", json!({}), Status::Up),
        (
            "missing.pharos.test",
            "A",
            json!({"expect_nxdomain": true}),
            Status::Up,
        ),
        (
            "app.pharos.test",
            "A",
            json!({"expect_nxdomain": true}),
            Status::Down,
        ),
    ];
    for (name, record_type, extra, expected) in cases {
        let config = with(
            json!({"name": name, "record_type": record_type, "resolver": s.addr.to_string()}),
            extra,
        );
        let o = run(&rt, "dns", config.clone()).await;
        assert_eq!(o.status, expected, "{config}: {o:#?}");
    }
    let o = run(
        &rt,
        "dns",
        json!({"name": "missing.pharos.test", "record_type": "A", "resolver": s.addr.to_string()}),
    )
    .await;
    assert_status(&o, Status::Down);
    assert!(o.message.contains("NXDOMAIN"), "{o:?}");
}

#[tokio::test]
async fn dns_resolver_on_loopback_is_denied_without_allow_private() {
    let rt = support::runtime(false);
    let s = servers::dns().await;
    let o = run(
        &rt,
        "dns",
        json!({"name": "app.pharos.test", "record_type": "A", "resolver": s.addr.to_string()}),
    )
    .await;
    assert_status(&o, Status::Error);
    assert!(o.message.contains("policy-denied"), "{o:?}");
}

#[tokio::test]
async fn tls_cert_expiry_thresholds() {
    let rt = support::runtime(true);
    let cfg = |port: u16, extra: Value| {
        let base =
            json!({"host": "127.0.0.1", "port": port, "sni": "localhost", "allow_untrusted": true});
        with(base, extra)
    };
    let fresh = servers::https(90).await;
    let o = run(&rt, "tls-cert", cfg(fresh.addr.port(), json!({}))).await;
    assert_status(&o, Status::Up);
    let days = metric(&o, "tls_days_remaining").expect("days");
    assert!((89.0..=90.0).contains(&days), "{days}");
    assert!(
        o.details
            .as_ref()
            .is_some_and(|d| d.get().contains("localhost")),
        "{o:?}"
    );
    let soon = servers::https(20).await;
    assert_status(
        &run(&rt, "tls-cert", cfg(soon.addr.port(), json!({}))).await,
        Status::Degraded,
    );
    let critical = servers::https(3).await;
    assert_status(
        &run(&rt, "tls-cert", cfg(critical.addr.port(), json!({}))).await,
        Status::Down,
    );
    let expired = servers::https(-2).await;
    let o = run(&rt, "tls-cert", cfg(expired.addr.port(), json!({}))).await;
    assert_status(&o, Status::Down);
    assert!(o.message.contains("expired"), "{o:?}");
    // Untrusted (self-signed) chains are down unless allowed.
    let o = run(
        &rt,
        "tls-cert",
        json!({"host": "127.0.0.1", "port": fresh.addr.port(), "sni": "localhost"}),
    )
    .await;
    assert_status(&o, Status::Down);
    // warn_days must exceed critical_days.
    let o = run(
        &rt,
        "tls-cert",
        cfg(
            fresh.addr.port(),
            json!({"warn_days": 5, "critical_days": 10}),
        ),
    )
    .await;
    assert_status(&o, Status::Error);
}

#[tokio::test]
async fn every_builtin_describes_itself_with_a_schema() {
    let rt = support::runtime(false);
    for (name, caps) in [
        ("http", vec!["http"]),
        ("tcp", vec!["tcp"]),
        ("dns", vec!["dns"]),
        ("tls-cert", vec!["tls"]),
    ] {
        let p = support::builtin(&rt, name).await;
        assert_eq!(p.info.name, name);
        assert_eq!(p.info.config_schema["type"], "object", "{name}");
        let declared: Vec<&str> = p.info.capabilities.iter().map(|c| c.as_str()).collect();
        assert_eq!(declared, caps, "{name}");
    }
}
