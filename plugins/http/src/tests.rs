use super::*;
use pharos_sdk::http::{Header, RedirectHop};
use pharos_sdk::{CertSummary, PhaseTimings, Status, mock, run_check};

fn config(v: Value) -> Config {
    pharos_sdk::parse_config(&v.to_string()).unwrap()
}

fn plan(v: Value) -> Plan {
    Plan::from_config(&config(v)).unwrap()
}

fn resp(status: u16, body: &str, total_ms: f64) -> Response {
    let mut r = Response::new(status, body);
    r.timings = PhaseTimings {
        total_ms: Some(total_ms),
        ..Default::default()
    };
    r.final_url = "https://example.com/".into();
    r
}

fn validator() -> jsonschema::Validator {
    jsonschema::meta::validate(&schema()).expect("schema is valid draft 2020-12");
    jsonschema::validator_for(&schema()).unwrap()
}

#[test]
fn defaults_match_the_schema() {
    let c = config(json!({"url": "https://example.com"}));
    let s = schema();
    let p = &s["properties"];
    assert_eq!(c.method, Method::Get);
    assert_eq!(p["method"]["default"], "GET");
    assert_eq!(json!(c.timeout_ms), p["timeout_ms"]["default"]);
    assert_eq!(json!(c.follow_redirects), p["follow_redirects"]["default"]);
    assert_eq!(json!(c.max_redirects), p["max_redirects"]["default"]);
    assert_eq!(json!(c.verify_tls), p["verify_tls"]["default"]);
    assert_eq!(json!(c.max_body_bytes), p["max_body_bytes"]["default"]);
    let pl = Plan::from_config(&c).unwrap();
    assert_eq!(
        pl.verdict.expected.to_string(),
        p["expected_status"]["default"]
    );
    assert!(!pl.verdict.expected_explicit);
    assert_eq!(
        (pl.request.follow_redirects, pl.request.max_redirects),
        (true, 5)
    );
    assert!(pl.request.verify_tls && pl.request.headers.is_empty() && pl.request.body.is_none());
    assert!(pl.verdict.assertions.is_empty());
}

#[test]
fn schema_accepts_what_the_plugin_accepts_and_rejects_the_rest() {
    let v = validator();
    let full = json!({
        "url": "https://api.example.com/health",
        "method": "POST",
        "headers": {"Accept": "application/json"},
        "body": "{}",
        "basic_auth": {"username": "u", "password": "p"},
        "timeout_ms": 5000,
        "expected_status": [200, "3xx", "401-403"],
        "follow_redirects": false,
        "max_redirects": 0,
        "verify_tls": false,
        "max_body_bytes": 1000,
        "body_contains": ["ok"],
        "body_not_contains": ["error"],
        "body_regex": ["\\d+"],
        "json_assertions": [
            {"path": "$.status", "operator": "eq", "value": "ok"},
            {"path": "$.debug", "operator": "not_exists"}
        ],
        "header_assertions": [{"name": "content-type", "regex": "json"}, {"name": "etag"}],
        "degraded_above_ms": 800
    });
    assert!(v.is_valid(&full), "{:?}", v.validate(&full));
    assert!(Plan::from_config(&config(full)).is_ok());
    for ok in [
        json!(200),
        json!("200-299"),
        json!("2xx, 304"),
        json!(["200", 201]),
    ] {
        let doc = json!({"url": "http://x.test", "expected_status": ok});
        assert!(v.is_valid(&doc), "{doc}");
        assert!(Plan::from_config(&config(doc)).is_ok());
    }
    let bad = [
        json!({}),
        json!({"url": "ftp://x.test"}),
        json!({"url": "https://x.test", "method": "BREW"}),
        json!({"url": "https://x.test", "bogus": 1}),
        json!({"url": "https://x.test", "expected_status": "abc"}),
        json!({"url": "https://x.test", "expected_status": 700}),
        json!({"url": "https://x.test", "expected_status": []}),
        json!({"url": "https://x.test", "timeout_ms": 0}),
        json!({"url": "https://x.test", "json_assertions": [{"path": "$.a", "operator": "eq"}]}),
        json!({"url": "https://x.test", "json_assertions": [{"path": "$.a", "operator": "approx", "value": 1}]}),
        json!({"url": "https://x.test", "header_assertions": [{"name": "a", "value": "b", "regex": "c"}]}),
        json!({"url": "https://x.test", "basic_auth": {"username": "u", "password": "p"}, "bearer_token": "t"}),
    ];
    for doc in bad {
        assert!(!v.is_valid(&doc), "schema should reject {doc}");
        let rejected = pharos_sdk::parse_config::<Config>(&doc.to_string())
            .map_err(|e| e.to_string())
            .and_then(|c| Plan::from_config(&c).map(|_| ()));
        assert!(rejected.is_err(), "plugin should reject {doc}");
    }
    assert_eq!(schema()["properties"]["bearer_token"]["x-secret"], true);
    assert_eq!(
        schema()["properties"]["basic_auth"]["properties"]["password"]["x-secret"],
        true
    );
}

#[test]
fn plan_builds_the_request() {
    let p = plan(json!({
        "url": " https://example.com/a ",
        "method": "PUT",
        "headers": {"X-One": "1"},
        "body": "payload",
        "bearer_token": "s3cret",
        "follow_redirects": false,
        "max_redirects": 9,
        "timeout_ms": 1234,
        "verify_tls": false
    }));
    let r = &p.request;
    assert_eq!(
        (r.method.as_str(), r.url.as_str()),
        ("PUT", "https://example.com/a")
    );
    assert_eq!(r.header_value("x-one"), Some("1"));
    assert_eq!(r.header_value("authorization"), Some("Bearer s3cret"));
    assert_eq!(r.body.as_deref(), Some(&b"payload"[..]));
    assert_eq!(
        (
            r.follow_redirects,
            r.max_redirects,
            r.timeout_ms,
            r.verify_tls
        ),
        (false, 0, 1234, false)
    );

    let p = plan(json!({"url": "http://x.test", "basic_auth": {"username": "a", "password": "b"}}));
    assert_eq!(p.request.header_value("Authorization"), Some("Basic YTpi"));

    let err = Plan::from_config(&config(json!({
        "url": "http://x.test", "bearer_token": "t", "headers": {"authorization": "x"}
    })))
    .unwrap_err();
    assert!(err.contains("only one of"), "{err}");
    let err = Plan::from_config(&config(json!({"url": "https:///path"}))).unwrap_err();
    assert!(err.starts_with("url:"), "{err}");
}

#[test]
fn status_verdicts() {
    let p = plan(json!({"url": "https://x.test"}));
    let out = evaluate(&p.verdict, &resp(200, "", 12.4), 0.0);
    assert_eq!(
        (out.status, out.message.as_str()),
        (Status::Up, "HTTP 200 in 12 ms")
    );
    assert_eq!(out.latency_ms, Some(12.4));
    assert_eq!(
        evaluate(&p.verdict, &resp(301, "", 3.25), 0.0).message,
        "HTTP 301 in 3.2 ms"
    );

    let out = evaluate(&p.verdict, &resp(500, "", 5.0), 0.0);
    assert_eq!(
        (out.status, out.message.as_str()),
        (Status::Down, "expected status 200-399, got 500")
    );

    let out = evaluate(&p.verdict, &resp(429, "", 15.0), 0.0);
    assert_eq!(
        (out.status, out.message.as_str()),
        (Status::Degraded, "HTTP 429 (rate limited) in 15 ms")
    );
    let out = evaluate(&p.verdict, &resp(503, "", 15.0), 0.0);
    assert_eq!(out.status, Status::Degraded);

    let strict = plan(json!({"url": "https://x.test", "expected_status": "200-299"}));
    let out = evaluate(&strict.verdict, &resp(503, "", 1.0), 0.0);
    assert_eq!(
        (out.status, out.message.as_str()),
        (Status::Down, "expected status 200-299, got 503")
    );
    let out = evaluate(&strict.verdict, &resp(302, "", 1.0), 0.0);
    assert_eq!(out.status, Status::Down);

    let maint = plan(json!({"url": "https://x.test", "expected_status": [200, 503]}));
    assert_eq!(
        evaluate(&maint.verdict, &resp(503, "", 1.0), 0.0).status,
        Status::Up
    );
}

#[test]
fn slowness_and_assertions() {
    let p = plan(json!({
        "url": "https://x.test",
        "degraded_above_ms": 100,
        "body_contains": ["\"ok\""],
        "json_assertions": [{"path": "$.db.latency_ms", "operator": "lt", "value": 50}],
        "header_assertions": [{"name": "Content-Type", "value": "application/json"}]
    }));
    let good = resp(200, r#"{"status":"ok","db":{"latency_ms":7}}"#, 80.0)
        .with_header("content-type", "application/json");
    assert_eq!(evaluate(&p.verdict, &good, 0.0).status, Status::Up);

    let mut slow = good.clone();
    slow.timings.total_ms = Some(150.0);
    let out = evaluate(&p.verdict, &slow, 0.0);
    assert_eq!(
        (out.status, out.message.as_str()),
        (Status::Degraded, "HTTP 200 in 150 ms (slower than 100 ms)")
    );

    let bad = resp(200, r#"{"status":"fail","db":{"latency_ms":70}}"#, 20.0);
    let out = evaluate(&p.verdict, &bad, 0.0);
    assert_eq!(out.status, Status::Down);
    assert_eq!(
        out.message,
        "header Content-Type is missing, expected \"application/json\" (+2 more)"
    );
    let details = out.details_value().unwrap();
    assert_eq!(
        details["failed_assertions"],
        json!([
            "header Content-Type is missing, expected \"application/json\"",
            "body does not contain \"\\\"ok\\\"\"",
            "$.db.latency_ms is 70, expected < 50"
        ])
    );

    let mut truncated = resp(200, "partial", 1.0).with_header("content-type", "application/json");
    truncated.body_truncated = true;
    let out = evaluate(&p.verdict, &truncated, 0.0);
    assert!(
        out.message.ends_with("(body truncated at 7 bytes)"),
        "{}",
        out.message
    );
}

#[test]
fn metrics_timings_and_details() {
    let p = plan(json!({"url": "https://x.test"}));
    let mut r = resp(200, "hello", 42.0);
    r.timings = PhaseTimings {
        dns_ms: Some(1.0),
        connect_ms: Some(2.0),
        tls_ms: Some(3.0),
        first_byte_ms: Some(40.0),
        total_ms: Some(42.0),
    };
    r.headers.push(Header {
        name: "Server".into(),
        value: "x".into(),
    });
    r.redirects.push(RedirectHop {
        url: "http://x.test/".into(),
        status: 301,
        location: "https://x.test/".into(),
    });
    r.remote_addr = "192.0.2.7:443".into();
    r.peer_certificate = Some(CertSummary {
        subject: "CN=x.test".into(),
        issuer: "CN=CA".into(),
        sans: vec!["x.test".into()],
        not_before: 0,
        not_after: 2_000_000_000,
        days_remaining: 45,
        serial: "01".into(),
        sha256_fingerprint: "ab".into(),
        self_signed: false,
    });
    let out = evaluate(&p.verdict, &r, 0.0);
    assert_eq!(out.get_metric("http_status"), Some(200.0));
    assert_eq!(out.get_metric("body_bytes"), Some(5.0));
    assert_eq!(out.get_metric("tls_days_remaining"), Some(45.0));
    assert_eq!(out.timings.tls_ms, Some(3.0));
    let d = out.details_value().unwrap();
    assert_eq!(d["final_url"], "https://example.com/");
    assert_eq!(d["status"], 200);
    assert_eq!(
        d["redirects"],
        json!([{"url": "http://x.test/", "status": 301, "location": "https://x.test/"}])
    );
    assert_eq!(d["tls"]["days_remaining"], 45);
    assert_eq!(d["remote_addr"], "192.0.2.7:443");

    let plain = evaluate(&p.verdict, &resp(200, "", 1.0), 0.0);
    assert_eq!(plain.get_metric("tls_days_remaining"), None);
    let no_total = evaluate(&p.verdict, &Response::new(200, ""), 33.0);
    assert_eq!(no_total.latency_ms, Some(33.0));
}

#[test]
fn full_check_through_the_mock_capability() {
    mock::reset();
    let seen = std::rc::Rc::new(std::cell::RefCell::new(None));
    let seen2 = seen.clone();
    mock::http(move |req| {
        *seen2.borrow_mut() = Some(req.clone());
        Ok(resp(200, r#"{"ok":true}"#, 9.0))
    });
    let ctx = Context::for_test(3_000);
    let cfg = json!({"url": "https://x.test/h", "timeout_ms": 60000, "json_assertions": [{"path": "$.ok", "operator": "eq", "value": true}]});
    let out = run_check::<HttpCheck>(&cfg.to_string(), &ctx);
    assert_eq!(
        (out.status, out.message.as_str()),
        (Status::Up, "HTTP 200 in 9.0 ms")
    );
    let sent = seen.borrow().clone().unwrap();
    assert!(
        sent.timeout_ms <= 3_000,
        "timeout capped by the deadline: {}",
        sent.timeout_ms
    );

    mock::http(|_| Err(CapError::Timeout("no response within 3000 ms".into())));
    let out = run_check::<HttpCheck>(&cfg.to_string(), &ctx);
    assert_eq!(
        (out.status, out.message.as_str()),
        (Status::Down, "timeout: no response within 3000 ms")
    );
    assert_eq!(
        out.details_value().unwrap()["error"],
        json!({"kind": "timeout", "reason": "no response within 3000 ms"})
    );

    mock::http(|_| {
        Err(CapError::PolicyDenied(
            "10.1.2.3 is a private address".into(),
        ))
    });
    assert_eq!(
        run_check::<HttpCheck>(&cfg.to_string(), &ctx).status,
        Status::Error
    );

    let out = run_check::<HttpCheck>(r#"{"url":"https://x.test","body_regex":["("]}"#, &ctx);
    assert_eq!(out.status, Status::Error);
    assert!(
        out.message
            .starts_with("invalid config: body_regex[0]: invalid regex"),
        "{}",
        out.message
    );
    let out = run_check::<HttpCheck>(r#"{"url":"https://x.test","max_redirects":"five"}"#, &ctx);
    assert_eq!(out.status, Status::Error);
    assert!(out.message.contains("`max_redirects`"), "{}", out.message);
    mock::reset();
}

#[test]
fn describe() {
    let info = pharos_sdk::plugin_info::<HttpCheck>();
    assert_eq!(
        (info.name.as_str(), info.version.as_str()),
        ("http", "0.1.0")
    );
    assert_eq!(info.capabilities, vec!["http".to_string()]);
    assert!(!info.description.is_empty() && !info.description.contains('\n'));
    let schema: Value = serde_json::from_str(&info.config_schema).unwrap();
    assert_eq!(schema["additionalProperties"], false);
    for (name, prop) in schema["properties"].as_object().unwrap() {
        assert!(prop["description"].is_string(), "{name} has no description");
    }
}

#[test]
fn milliseconds_are_formatted_like_fixed_point() {
    for (ms, text) in [
        (0.0, "0.0 ms"),
        (0.04, "0.0 ms"),
        (3.24, "3.2 ms"),
        (3.26, "3.3 ms"),
        (9.94, "9.9 ms"),
        (9.96, "10 ms"),
        (12.4, "12 ms"),
        (3.25, "3.2 ms"),
        (12.5, "12 ms"),
        (13.5, "14 ms"),
        (86_400_000.0, "86400000 ms"),
        (-1.0, "-1 ms"),
        (f64::NAN, "NaN ms"),
    ] {
        assert_eq!(fmt_ms(ms), text, "{ms}");
    }
}
