//! The REST API end to end: the real server started in-process (`pharos::server::start`) on
//! 127.0.0.1 with a temporary data directory, driven over HTTP with reqwest. SQLite by default;
//! the `postgres_*` tests repeat a representative subset on PostgreSQL.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use reqwest::Method;
use serde_json::{Value, json};
use support::api::{ADMIN, Resp, TestServer, start, start_with};
use support::{db, servers};
use tokio::net::TcpListener;

/// Generates `$sqlite` running `$body` on a SQLite server and `$postgres` running it on a
/// PostgreSQL one (skipped, loudly, when PostgreSQL is unreachable outside CI).
macro_rules! on_both_backends {
    ($body:ident: $sqlite:ident, $postgres:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $sqlite() {
            let s = start(None).await;
            $body(&s).await;
            s.stop().await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $postgres() {
            let Some(url) = db::postgres_url().await else {
                return;
            };
            let s = start(Some(url)).await;
            $body(&s).await;
            s.stop().await;
        }
    };
}

impl TestServer {
    /// Creates an API key with `scopes`, returning (id, secret).
    async fn key(&self, scopes: &[&str]) -> (i64, String) {
        let r = self
            .post(
                "/api/v1/api-keys",
                json!({"name": format!("{scopes:?}"), "scopes": scopes}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let id = r.body["id"].as_i64().expect("id");
        assert_eq!(
            r.header("location"),
            Some(format!("/api/v1/api-keys/{id}").as_str())
        );
        (
            id,
            r.body["key"].as_str().expect("key shown once").to_string(),
        )
    }

    /// Uploads raw bytes as a plugin.
    async fn upload(&self, bytes: Vec<u8>, query: &str) -> Resp {
        self.post_raw(
            &format!("/api/v1/plugins{query}"),
            "application/wasm",
            bytes,
        )
        .await
    }

    /// Uploads a plugin as a multipart form.
    async fn upload_form(&self, query: &str, form: reqwest::multipart::Form) -> Resp {
        let req = self
            .http
            .post(self.url(&format!("/api/v1/plugins{query}")))
            .bearer_auth(ADMIN)
            .multipart(form);
        self.send(req).await
    }

    /// Polls a monitor's results until `pred` holds for the list (or fails after `limit`).
    async fn wait_results(
        &self,
        id: i64,
        limit: Duration,
        pred: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + limit;
        loop {
            let r = self
                .get(&format!("/api/v1/monitors/{id}/results?limit=500"))
                .await;
            assert_eq!(r.status, 200, "{}", r.body);
            let items = r.body["items"].as_array().cloned().unwrap_or_default();
            if pred(&items) {
                return items;
            }
            assert!(
                Instant::now() < deadline,
                "results of {id} never matched: {items:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// An HTTP server on 127.0.0.1 answering 200 only with `Authorization: Bearer <token>`, 401 otherwise.
async fn bearer_server(token: &'static str) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = service_fn(
                    move |req: http::Request<hyper::body::Incoming>| async move {
                        let ok = req
                            .headers()
                            .get("authorization")
                            .and_then(|v| v.to_str().ok())
                            == Some(format!("Bearer {token}").as_str());
                        let status = if ok { 200 } else { 401 };
                        Ok::<_, Infallible>(
                            http::Response::builder()
                                .status(status)
                                .body(Full::new(Bytes::from_static(b"auth")))
                                .expect("response"),
                        )
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, task)
}

/// The hostile fixture with a custom section appended: still a valid component, other bytes.
fn with_custom_section(mut bytes: Vec<u8>) -> Vec<u8> {
    let name = b"pharos-test";
    let payload = b"different bytes";
    let size = 1 + name.len() + payload.len();
    assert!(size < 128 && name.len() < 128, "single-byte LEB128 lengths");
    bytes.push(0x00);
    bytes.push(size as u8);
    bytes.push(name.len() as u8);
    bytes.extend_from_slice(name);
    bytes.extend_from_slice(payload);
    bytes
}

fn hostile() -> Vec<u8> {
    support::fixture("pharos_fixture_hostile")
}

// ---- auth ---------------------------------------------------------------------------------

async fn auth_is_enforced_with_the_envelope(s: &TestServer) {
    let r = s.anon(Method::GET, "/api/v1/monitors").await;
    r.assert_error(401, "UNAUTHORIZED", None);
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    let r = s
        .call(
            Some("phk_not_a_real_key"),
            Method::GET,
            "/api/v1/monitors",
            None,
        )
        .await;
    r.assert_error(401, "UNAUTHORIZED", None);
    let r = s
        .send(
            s.http
                .get(s.url("/api/v1/monitors"))
                .header("authorization", "Basic abc"),
        )
        .await;
    r.assert_error(401, "UNAUTHORIZED", None);

    let (read_id, read) = s.key(&["read"]).await;
    let (_, write) = s.key(&["write"]).await;
    let r = s
        .call(Some(&read), Method::GET, "/api/v1/monitors", None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Scope is checked before the body is looked at.
    let r = s
        .call(
            Some(&read),
            Method::POST,
            "/api/v1/monitors",
            Some(json!({"nonsense": true})),
        )
        .await;
    r.assert_error(403, "FORBIDDEN", None);
    assert_eq!(r.body["error"]["details"]["required_scope"], "write");
    let r = s
        .call(Some(&write), Method::GET, "/api/v1/api-keys", None)
        .await;
    r.assert_error(403, "FORBIDDEN", None);
    let r = s
        .send(
            s.http
                .post(s.url("/api/v1/plugins"))
                .bearer_auth(&write)
                .header("content-type", "application/wasm")
                .body(hostile()),
        )
        .await;
    r.assert_error(403, "FORBIDDEN", None);
    let r = s
        .call(
            Some(&write),
            Method::POST,
            "/api/v1/monitors",
            Some(json!({"name": "by writer", "type": "push"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);

    // The key is shown once: listing and getting never return it.
    let r = s.get(&format!("/api/v1/api-keys/{read_id}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.get("key").is_none(), "{}", r.body);
    assert_eq!(r.body["scopes"], json!(["read"]));
    let r = s.get("/api/v1/api-keys").await;
    assert_eq!(r.status, 200);
    assert!(r.body["total"].as_i64().expect("total") >= 3);
    assert!(!r.body.to_string().contains(&read));

    // Revocation is immediate, even though the key was just verified (and cached).
    let r = s.delete(&format!("/api/v1/api-keys/{read_id}")).await;
    assert_eq!(r.status, 204, "{}", r.body);
    let r = s
        .call(Some(&read), Method::GET, "/api/v1/monitors", None)
        .await;
    r.assert_error(401, "UNAUTHORIZED", None);
    s.delete(&format!("/api/v1/api-keys/{read_id}"))
        .await
        .assert_error(404, "NOT_FOUND", None);
    let r = s.get(&format!("/api/v1/api-keys/{read_id}")).await;
    assert!(r.body["revoked_at"].is_string(), "{}", r.body);

    // Key creation validates its input.
    s.post("/api/v1/api-keys", json!({"name": "x", "scopes": []}))
        .await
        .assert_error(400, "VALIDATION_FAILED", Some("/scopes"));
    s.post("/api/v1/api-keys", json!({"name": "x", "scopes": ["root"]}))
        .await
        .assert_error(400, "VALIDATION_FAILED", Some("/scopes/0"));
    s.post("/api/v1/api-keys", json!({"name": " ", "scopes": ["read"]}))
        .await
        .assert_error(400, "VALIDATION_FAILED", Some("/name"));
}

on_both_backends!(
    auth_is_enforced_with_the_envelope:
    auth_failures_use_the_envelope_and_revocation_is_immediate,
    postgres_auth_failures_use_the_envelope_and_revocation_is_immediate
);

// ---- monitor lifecycle --------------------------------------------------------------------

async fn monitor_lifecycle(s: &TestServer) {
    let (addr, _auth) = bearer_server("s3cret").await;
    let target = servers::http().await;
    let created = s
        .create(json!({
            "name": "  api health  ",
            "plugin": "http",
            "config": {"url": format!("http://{addr}/"), "bearer_token": "s3cret"},
            "interval_secs": 3600,
            "tags": ["prod", "eu", "prod"],
        }))
        .await;
    let id = created["id"].as_i64().expect("id");
    assert_eq!(created["name"], "api health");
    assert_eq!(created["type"], "check");
    assert_eq!(created["enabled"], true);
    assert_eq!(created["timeout_ms"], 10_000);
    assert_eq!(
        created["tags"],
        json!(["eu", "prod"]),
        "sorted, deduplicated"
    );
    assert_eq!(
        created["config"]["bearer_token"], "***",
        "secrets are redacted: {created}"
    );
    assert_eq!(created["revision"], 1, "{created}");
    assert!(created["push_url"].is_null());
    assert!(created["status"].is_null());

    let got = s.get(&format!("/api/v1/monitors/{id}")).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body["config"]["bearer_token"], "***");
    assert!(!got.body.to_string().contains("s3cret"));
    assert!(
        !got.body.to_string().contains("pharos:sealed"),
        "{}",
        got.body
    );

    // The stored secret works: the check authenticates against the loopback server.
    let r = s.check_now(id).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "up", "{}", r.body);
    assert_eq!(r.body["monitor_id"], id);

    // A merge patch: the secret left out keeps its stored value.
    let r = s
        .patch_monitor(
            id,
            json!({"name": "api", "config": {"method": "GET"}, "tags": ["prod"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["name"], "api");
    assert_eq!(r.body["tags"], json!(["prod"]));
    assert_eq!(r.body["config"]["method"], "GET");
    assert_eq!(r.body["config"]["url"], format!("http://{addr}/"));
    assert_eq!(r.body["config"]["bearer_token"], "***");
    assert_eq!(r.body["revision"], 2);
    let r = s.check_now(id).await;
    assert_eq!(
        r.body["status"], "up",
        "secret kept through the patch: {}",
        r.body
    );

    // Echoing the placeholder is refused; a new value replaces the secret.
    s.patch_monitor(id, json!({"config": {"bearer_token": "***"}}))
        .await
        .assert_error(400, "SECRET_REDACTED_ECHO", Some("/config/bearer_token"));
    let r = s
        .patch_monitor(id, json!({"config": {"bearer_token": "wrong"}}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = s.check_now(id).await;
    assert_eq!(
        r.body["status"], "down",
        "the new secret is used: {}",
        r.body
    );
    // Removing a field with null; type cannot change; patches are validated like creates.
    s.patch_monitor(id, json!({"type": "push"}))
        .await
        .assert_error(400, "VALIDATION_FAILED", Some("/type"));
    s.patch_monitor(id, json!({"config": {"url": null}}))
        .await
        .assert_error(400, "VALIDATION_FAILED", Some("/config/url"));
    s.patch_monitor(id, json!({"interval_secs": 0}))
        .await
        .assert_error(400, "VALIDATION_FAILED", Some("/interval_secs"));
    s.patch_monitor(id, json!({"bogus": 1})).await.assert_error(
        400,
        "VALIDATION_FAILED",
        Some("/bogus"),
    );
    let r = s
        .patch_monitor(id, json!({"tags": null, "enabled": false}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["tags"], json!([]));
    assert_eq!(r.body["enabled"], false);

    // A few more monitors for the list.
    for (name, tags, enabled) in [
        ("web one", json!(["web"]), true),
        ("web two", json!(["web", "eu"]), true),
        ("db", json!(["db"]), false),
    ] {
        s.create(json!({
            "name": name, "plugin": "http", "tags": tags, "enabled": enabled,
            "interval_secs": 3600,
            "config": {"url": format!("http://{}/", target.addr)},
        }))
        .await;
    }
    let r = s.get("/api/v1/monitors").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["total"], 4, "{}", r.body);
    assert_eq!(r.body["limit"], 50);
    assert_eq!(r.body["offset"], 0);
    let r = s.get("/api/v1/monitors?tag=web").await;
    assert_eq!(r.body["total"], 2, "{}", r.body);
    let r = s.get("/api/v1/monitors?enabled=false").await;
    let names: Vec<&str> = r.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    assert_eq!(names, vec!["api", "db"]);
    let r = s.get("/api/v1/monitors?q=WEB&limit=1&offset=1").await;
    assert_eq!(r.body["total"], 2);
    assert_eq!(r.body["limit"], 1);
    assert_eq!(r.body["offset"], 1);
    assert_eq!(r.body["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(r.body["items"][0]["name"], "web two");
    let r = s.get("/api/v1/monitors?status=down").await;
    assert_eq!(
        r.body["total"], 1,
        "the api monitor is down after its last check: {}",
        r.body
    );
    for (query, field) in [
        ("limit=501", "/limit"),
        ("offset=-1", "/offset"),
        ("status=pending", "/status"),
        ("colour=red", "/colour"),
    ] {
        s.get(&format!("/api/v1/monitors?{query}"))
            .await
            .assert_error(400, "VALIDATION_FAILED", Some(field));
    }

    let r = s.get("/api/v1/tags").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body["items"][0],
        json!({"tag": "db", "monitors": 1}),
        "{}",
        r.body
    );
    let r = s.get("/api/v1/dashboard/summary").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["monitors"], 4, "{}", r.body);
    assert_eq!(r.body["paused"], 2, "{}", r.body);

    // Delete: 204, then 404 everywhere.
    let r = s.delete(&format!("/api/v1/monitors/{id}")).await;
    assert_eq!(r.status, 204, "{}", r.body);
    s.get(&format!("/api/v1/monitors/{id}"))
        .await
        .assert_error(404, "NOT_FOUND", None);
    s.delete(&format!("/api/v1/monitors/{id}"))
        .await
        .assert_error(404, "NOT_FOUND", None);
    s.get(&format!("/api/v1/monitors/{id}/results"))
        .await
        .assert_error(404, "NOT_FOUND", None);
    s.get("/api/v1/monitors/abc")
        .await
        .assert_error(404, "NOT_FOUND", None);
}

on_both_backends!(
    monitor_lifecycle:
    monitor_lifecycle_with_secrets_filters_and_pagination,
    postgres_monitor_lifecycle_with_secrets_filters_and_pagination
);

// ---- validation -----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_errors_name_the_field() {
    let s = start(None).await;
    let ok = json!({"name": "x", "plugin": "http", "config": {"url": "http://127.0.0.1:9/"}});
    let with = |patch: Value| {
        let mut body = ok.clone();
        for (k, v) in patch.as_object().expect("object") {
            body[k] = v.clone();
        }
        body
    };
    let invalid = |body: Value, field| (body, 400, "VALIDATION_FAILED", field);
    let cases: Vec<(Value, u16, &str, &str)> = vec![
        invalid(with(json!({"interval_secs": 0})), "/interval_secs"),
        invalid(with(json!({"interval_secs": 86_401})), "/interval_secs"),
        invalid(with(json!({"interval_secs": -5})), "/interval_secs"),
        invalid(with(json!({"interval_secs": "60"})), "/interval_secs"),
        invalid(
            with(json!({"interval_secs": 5, "timeout_ms": 6000})),
            "/timeout_ms",
        ),
        invalid(with(json!({"timeout_ms": 0})), "/timeout_ms"),
        invalid(with(json!({"bogus": true})), "/bogus"),
        invalid(with(json!({"name": ""})), "/name"),
        invalid(with(json!({"name": "n".repeat(201)})), "/name"),
        invalid(
            json!({"plugin": "http", "config": {"url": "http://x/"}}),
            "/name",
        ),
        invalid(with(json!({"tags": ["ok", "not ok"]})), "/tags/1"),
        invalid(with(json!({"type": "ping"})), "/type"),
        invalid(with(json!({"config": {}})), "/config/url"),
        invalid(
            with(json!({"config": {"url": "http://x/", "method": 5}})),
            "/config/method",
        ),
        invalid(
            with(json!({"config": {"url": "http://x/", "nope": 1}})),
            "/config",
        ),
        invalid(with(json!({"config": []})), "/config"),
        (
            with(json!({"config": {"url": "http://x/", "bearer_token": "***"}})),
            400,
            "SECRET_REDACTED_ECHO",
            "/config/bearer_token",
        ),
        (
            with(json!({"config": {"url": "pharos:sealed:v1:AAAA"}})),
            400,
            "SECRET_SEALED_INPUT",
            "/config/url",
        ),
        (
            with(json!({"plugin": "no-such-plugin"})),
            400,
            "PLUGIN_NOT_FOUND",
            "/plugin",
        ),
        (
            with(json!({"plugin": "http@9.9.9"})),
            400,
            "PLUGIN_NOT_FOUND",
            "/plugin",
        ),
        invalid(json!({"name": "x"}), "/plugin"),
        invalid(with(json!({"push": {"grace_secs": 5}})), "/push"),
        invalid(
            json!({"name": "p", "type": "push", "plugin": "http"}),
            "/plugin",
        ),
        invalid(
            json!({"name": "p", "type": "push", "config": {"a": 1}}),
            "/config",
        ),
        invalid(
            json!({"name": "p", "type": "push", "push": {"cron": "not a cron"}}),
            "/push/cron",
        ),
        invalid(
            json!({"name": "p", "type": "push", "push": {"cron": "0 * * * *", "timezone": "Mars/Olympus"}}),
            "/push/timezone",
        ),
        invalid(
            json!({"name": "p", "type": "push", "push": {"when": 1}}),
            "/push/when",
        ),
    ];
    for (body, status, code, field) in cases {
        let r = s.post("/api/v1/monitors", body.clone()).await;
        assert_eq!(r.status, status, "{body} -> {}", r.body);
        assert_eq!(r.body["error"]["code"], code, "{body} -> {}", r.body);
        assert_eq!(r.body["error"]["field"], field, "{body} -> {}", r.body);
    }
    // Nothing of that was stored.
    assert_eq!(s.total("/api/v1/monitors").await, 0);

    // Transport-level errors use the same envelope.
    let r = s
        .post_raw("/api/v1/monitors", "application/json", "{\"name\": ")
        .await;
    r.assert_error(400, "INVALID_JSON", None);
    let r = s
        .post_raw("/api/v1/monitors", "text/plain", ok.to_string())
        .await;
    r.assert_error(415, "UNSUPPORTED_MEDIA_TYPE", None);
    let big = json!({"name": "x".repeat(2 * 1024 * 1024)});
    let r = s
        .post_oversized(
            "/api/v1/monitors",
            "application/json",
            big.to_string().into_bytes(),
        )
        .await;
    r.assert_error(413, "PAYLOAD_TOO_LARGE", None);
    let r = s.post("/api/v1/monitors", json!([1, 2])).await;
    r.assert_error(400, "VALIDATION_FAILED", Some(""));
    let r = s.get("/api/v1/nothing-here").await;
    r.assert_error(404, "NOT_FOUND", None);
    let r = s.anon(Method::GET, "/nothing/at/all").await;
    r.assert_error(404, "NOT_FOUND", None);
    let r = s
        .call(Some(ADMIN), Method::PUT, "/api/v1/monitors", None)
        .await;
    r.assert_error(405, "METHOD_NOT_ALLOWED", None);
    let r = s.anon(Method::DELETE, "/healthz").await;
    r.assert_error(405, "METHOD_NOT_ALLOWED", None);

    // Query parameters of the result endpoints.
    let m = s
        .create(json!({"name": "q", "type": "push", "interval_secs": 60}))
        .await;
    let id = m["id"].as_i64().expect("id");
    s.get(&format!("/api/v1/monitors/{id}/results?from=yesterday"))
        .await
        .assert_error(400, "VALIDATION_FAILED", Some("/from"));
    s.get(&format!(
        "/api/v1/monitors/{id}/results?from=2025-01-02T00:00:00Z&to=2025-01-01T00:00:00Z"
    ))
    .await
    .assert_error(400, "VALIDATION_FAILED", Some("/from"));
    s.get(&format!("/api/v1/monitors/{id}/latency?buckets=501"))
        .await
        .assert_error(400, "VALIDATION_FAILED", Some("/buckets"));
    s.get(&format!("/api/v1/monitors/{id}/uptime?to=soon"))
        .await
        .assert_error(400, "VALIDATION_FAILED", Some("/to"));
    s.stop().await;
}

// ---- check-now, test, results --------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_now_and_test_run_against_a_loopback_server() {
    let s = start(None).await;
    let target = servers::http().await;
    let m = s
        .create(json!({
            "name": "loopback", "plugin": "http", "interval_secs": 3600,
            "config": {"url": format!("http://{}/", target.addr)},
        }))
        .await;
    let id = m["id"].as_i64().expect("id");
    let r = s.check_now(id).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "up", "{}", r.body);
    assert!(r.body["latency_ms"].as_f64().is_some_and(|l| l >= 0.0));
    assert!(r.body["timings"].is_object());
    assert!(
        r.body["message"]
            .as_str()
            .is_some_and(|m| m.contains("200")),
        "{}",
        r.body
    );
    // check-now persisted the result before answering.
    let r = s.get(&format!("/api/v1/monitors/{id}/results")).await;
    assert_eq!(r.status, 200);
    assert!(
        r.body["total"].as_i64().is_some_and(|t| t >= 1),
        "{}",
        r.body
    );
    assert_eq!(r.body["items"][0]["status"], "up");
    let r = s
        .get(&format!("/api/v1/monitors/{id}/results?status=down"))
        .await;
    assert_eq!(r.body["total"], 0, "{}", r.body);
    let r = s.get(&format!("/api/v1/monitors/{id}")).await;
    assert_eq!(r.body["status"], "up", "live state updated: {}", r.body);
    assert!(r.body["last_checked_at"].is_string(), "{}", r.body);
    let r = s.get(&format!("/api/v1/monitors/{id}/uptime")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body["up"].as_i64().is_some_and(|n| n >= 1), "{}", r.body);
    assert_eq!(r.body["uptime_pct"], 100.0, "{}", r.body);
    let r = s
        .get(&format!("/api/v1/monitors/{id}/latency?buckets=10"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let buckets = r.body["buckets"].as_array().expect("buckets");
    assert!(!buckets.is_empty() && buckets.len() <= 11, "{}", r.body);
    let counted: i64 = buckets.iter().filter_map(|b| b["count"].as_i64()).sum();
    assert!(counted >= 1, "{}", r.body);

    // test: runs an unsaved definition, stores nothing.
    let before = s.total("/api/v1/monitors").await;
    let r = s
        .post(
            "/api/v1/monitors/test",
            json!({"name": "try", "plugin": "http",
                   "config": {"url": format!("http://{}/status/500", target.addr)}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "down", "{}", r.body);
    assert!(
        r.body["message"]
            .as_str()
            .is_some_and(|m| m.contains("500")),
        "{}",
        r.body
    );
    let r = s
        .post(
            "/api/v1/monitors/test",
            json!({"name": "try", "plugin": "http", "config": {"url": format!("http://{}/", target.addr), "bearer_token": "plain is fine here"}}),
        )
        .await;
    assert_eq!(r.body["status"], "up", "{}", r.body);
    assert_eq!(s.total("/api/v1/monitors").await, before);
    s.post(
        "/api/v1/monitors/test",
        json!({"name": "try", "plugin": "http", "config": {}}),
    )
    .await
    .assert_error(400, "VALIDATION_FAILED", Some("/config/url"));
    s.post(
        "/api/v1/monitors/test",
        json!({"name": "try", "type": "push"}),
    )
    .await
    .assert_error(400, "VALIDATION_FAILED", Some("/type"));

    // check-now of a push monitor is refused; of an unknown monitor 404.
    let p = s.create(json!({"name": "job", "type": "push"})).await;
    s.check_now(&p["id"])
        .await
        .assert_error(409, "NOT_A_CHECK_MONITOR", None);
    s.check_now(999999)
        .await
        .assert_error(404, "NOT_FOUND", None);
    s.stop().await;
}

// ---- bulk and actions -------------------------------------------------------------------------

async fn bulk_and_actions(s: &TestServer) {
    let target = servers::http().await;
    let url = format!("http://{}/", target.addr);
    let spec = |name: &str| json!({"name": name, "plugin": "http", "interval_secs": 3600, "config": {"url": url}});
    let body = json!({"monitors": [spec("a"), spec("b"), {"name": "c", "type": "push"}]});
    let send = |body: Value, key: &'static str| async move {
        s.post_keyed("/api/v1/monitors/bulk", Some(key), &body)
            .await
    };

    // All or nothing, with the failing field named under its index.
    let bad = json!({"monitors": [spec("ok"), spec("ok2"), {"name": "x", "plugin": "http", "config": {}}]});
    let r = send(bad, "bad-1").await;
    r.assert_error(400, "VALIDATION_FAILED", Some("/monitors/2/config/url"));
    assert_eq!(s.total("/api/v1/monitors").await, 0);
    let r = s
        .post(
            "/api/v1/monitors/bulk",
            json!({"monitors": [spec("x"), {"name": "y", "bogus": 1}]}),
        )
        .await;
    r.assert_error(400, "VALIDATION_FAILED", Some("/monitors/1/bogus"));
    s.post("/api/v1/monitors/bulk", json!({"monitors": []}))
        .await
        .assert_error(400, "VALIDATION_FAILED", Some("/monitors"));

    let first = send(body.clone(), "bulk-1").await;
    assert_eq!(first.status, 200, "{}", first.body);
    let items = first.body["items"].as_array().expect("items");
    assert_eq!(items.len(), 3);
    assert!(items[2]["push_url"].is_string(), "{}", first.body);
    assert!(first.header("idempotent-replayed").is_none());
    // The same key and body replay the response without creating anything.
    let again = send(body.clone(), "bulk-1").await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body, first.body);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(s.total("/api/v1/monitors").await, 3);
    // Formatting and key order do not make it a different request.
    let reordered: Value = serde_json::from_str(&body.to_string()).expect("json");
    assert_eq!(send(reordered, "bulk-1").await.status, 200);
    // The same key with another body is refused.
    let other = json!({"monitors": [spec("z")]});
    send(other, "bulk-1")
        .await
        .assert_error(422, "IDEMPOTENCY_KEY_REUSED", None);
    assert_eq!(s.total("/api/v1/monitors").await, 3);
    // A failed request does not burn its key.
    let r = send(json!({"monitors": [spec("d")]}), "bad-1").await;
    assert_eq!(r.status, 200, "{}", r.body);

    // A single create honours the key too, Location included on the replay.
    let once = json!({"name": "once", "type": "push"});
    let single = |key| s.post_keyed("/api/v1/monitors", Some(key), &once);
    let one = single("single-1").await;
    assert_eq!(one.status, 201, "{}", one.body);
    let two = single("single-1").await;
    assert_eq!(two.status, 201, "{}", two.body);
    assert_eq!(two.body["id"], one.body["id"]);
    assert_eq!(two.header("location"), one.header("location"));
    assert!(one.header("location").is_some());
    assert_eq!(two.header("idempotent-replayed"), Some("true"));
    assert_eq!(s.total("/api/v1/monitors").await, 5);
    let r = s
        .delete(&format!("/api/v1/monitors/{}", one.body["id"]))
        .await;
    assert_eq!(r.status, 204);

    let ids: Vec<i64> = items.iter().filter_map(|m| m["id"].as_i64()).collect();
    let act = |body: Value, key: Option<&'static str>| async move {
        s.post_keyed("/api/v1/monitors/actions", key, &body).await
    };
    let disable = json!({"action": "disable", "ids": [ids[0], ids[1], 987654]});
    let r = act(disable.clone(), Some("act-1")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["updated"], json!([ids[0], ids[1]]));
    assert_eq!(r.body["missing"], json!([987654]));
    let r = s.get(&format!("/api/v1/monitors/{}", ids[0])).await;
    assert_eq!(r.body["enabled"], false);
    // Re-enable, then replay the disable: nothing happens again.
    let r = act(json!({"action": "enable", "ids": [ids[0]]}), None).await;
    assert_eq!(r.body["updated"], json!([ids[0]]));
    let r = act(disable.clone(), Some("act-1")).await;
    assert_eq!(r.header("idempotent-replayed"), Some("true"));
    assert_eq!(
        s.get(&format!("/api/v1/monitors/{}", ids[0])).await.body["enabled"],
        true
    );
    act(json!({"action": "enable", "ids": [ids[0]]}), Some("act-1"))
        .await
        .assert_error(422, "IDEMPOTENCY_KEY_REUSED", None);

    let r = act(
        json!({"action": "add_tags", "ids": ids, "tags": ["bulk", "x"]}),
        None,
    )
    .await;
    assert_eq!(
        r.body["updated"].as_array().map(Vec::len),
        Some(3),
        "{}",
        r.body
    );
    let r = act(
        json!({"action": "remove_tags", "ids": [ids[0]], "tags": ["x"]}),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        s.get(&format!("/api/v1/monitors/{}", ids[0])).await.body["tags"],
        json!(["bulk"])
    );
    assert_eq!(s.total("/api/v1/monitors?tag=x").await, 2);
    act(json!({"action": "add_tags", "ids": ids}), None)
        .await
        .assert_error(400, "VALIDATION_FAILED", Some("/tags"));
    act(json!({"action": "enable", "ids": ids, "tags": ["a"]}), None)
        .await
        .assert_error(400, "VALIDATION_FAILED", Some("/tags"));
    act(json!({"action": "explode", "ids": ids}), None)
        .await
        .assert_error(400, "VALIDATION_FAILED", Some("/action"));
    act(json!({"action": "delete", "ids": []}), None)
        .await
        .assert_error(400, "VALIDATION_FAILED", Some("/ids"));
    let r = act(json!({"action": "delete", "ids": [ids[0], ids[2]]}), None).await;
    assert_eq!(r.body["updated"], json!([ids[0], ids[2]]));
    s.get(&format!("/api/v1/monitors/{}", ids[0]))
        .await
        .assert_error(404, "NOT_FOUND", None);
    assert_eq!(s.total("/api/v1/monitors").await, 2);
}

on_both_backends!(
    bulk_and_actions:
    bulk_create_and_actions_honour_idempotency_keys,
    postgres_bulk_create_and_actions_honour_idempotency_keys
);

// ---- plugins ------------------------------------------------------------------------------------

async fn plugin_uploads(s: &TestServer) {
    let r = s.get("/api/v1/plugins").await;
    assert_eq!(r.status, 200);
    let builtin: Vec<&str> = r.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|p| p["builtin"] == true)
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(
        builtin.contains(&"http") && builtin.contains(&"dns"),
        "{}",
        r.body
    );

    // Uploaded without a grant: stored, awaiting a grant, not usable yet.
    let r = s.upload(hostile(), "").await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["name"], "hostile");
    assert_eq!(r.body["state"], "awaiting_grant", "{}", r.body);
    assert_eq!(r.body["builtin"], false);
    let version = r.body["version"].as_str().expect("version").to_string();
    let location = format!("/api/v1/plugins/hostile/{version}");
    assert_eq!(r.header("location"), Some(location.as_str()));
    let got = s.get(&location).await;
    assert_eq!(got.status, 200);
    assert_eq!(
        got.body["config_schema"]["required"],
        json!(["mode"]),
        "{}",
        got.body
    );
    // The same bytes again: the existing entry, 200.
    let r = s.upload(hostile(), "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["digest"], got.body["digest"]);
    s.post(
        "/api/v1/monitors",
        json!({"name": "h", "plugin": "hostile", "config": {"mode": "ok"}}),
    )
    .await
    .assert_error(400, "PLUGIN_NOT_ACTIVE", Some("/plugin"));
    s.post_empty(&format!("{location}/enable"))
        .await
        .assert_error(400, "PLUGIN_NOT_ACTIVE", None);

    // Grants: validated, then the plugin is active and usable.
    s.post(
        &format!("{location}/grant"),
        json!({"capabilities": ["http", "ftp"]}),
    )
    .await
    .assert_error(400, "VALIDATION_FAILED", Some("/capabilities/1"));
    s.post(
        &format!("{location}/grant"),
        json!({"capabilities": ["tcp"]}),
    )
    .await
    .assert_error(400, "VALIDATION_FAILED", Some("/capabilities"));
    s.post(&format!("{location}/grant"), json!({"capabilities": 7}))
        .await
        .assert_error(400, "VALIDATION_FAILED", Some("/capabilities"));
    let r = s
        .post(
            &format!("{location}/grant"),
            json!({"capabilities": "all", "allowed_hosts": ["example.com", "*.example.org"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["state"], "active", "{}", r.body);
    assert_eq!(
        r.body["grants"]["allowed_hosts"],
        json!(["example.com", "*.example.org"])
    );
    let r = s
        .post(&format!("{location}/grant"), json!({"capabilities": "all"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let m = s
        .create(json!({"name": "h", "plugin": "hostile", "interval_secs": 3600, "config": {"mode": "ok"}}))
        .await;
    let id = m["id"].as_i64().expect("id");
    let r = s.check_now(id).await;
    assert_eq!(r.body["status"], "up", "{}", r.body);
    assert_eq!(r.body["message"], "ok");
    s.post(
        "/api/v1/monitors",
        json!({"name": "h2", "plugin": "hostile", "config": {"mode": "fly"}}),
    )
    .await
    .assert_error(400, "VALIDATION_FAILED", Some("/config/mode"));

    // In use: cannot be deleted; disabling makes its checks fail with an error.
    s.delete(&location)
        .await
        .assert_error(409, "PLUGIN_IN_USE", None);
    let r = s.post_empty(&format!("{location}/disable")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["state"], "disabled");
    let r = s.check_now(id).await;
    assert_eq!(r.body["status"], "error", "{}", r.body);
    let r = s.post_empty(&format!("{location}/enable")).await;
    assert_eq!(r.body["state"], "active", "{}", r.body);

    // Refusals.
    s.upload(b"\0asm not really a component".to_vec(), "")
        .await
        .assert_error(400, "PLUGIN_INVALID", None);
    // A notifier is accepted as a notifier, awaiting its grant; a component exporting
    // neither plugin world is refused.
    let r = s
        .upload(support::fixture("pharos_fixture_notifier"), "")
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["kind"], "notifier", "{}", r.body);
    assert_eq!(r.body["state"], "awaiting_grant", "{}", r.body);
    s.upload(wat::parse_str("(component)").expect("wat"), "")
        .await
        .assert_error(400, "PLUGIN_WRONG_WORLD", None);
    let r = s.upload(with_custom_section(hostile()), "").await;
    r.assert_error(409, "PLUGIN_VERSION_CONFLICT", None);
    assert_eq!(
        r.body["error"]["details"]["existing_digest"],
        got.body["digest"]
    );
    let builtin_http = pharos::builtin::component("http")
        .expect("built-in http")
        .to_vec();
    s.upload(builtin_http, "")
        .await
        .assert_error(409, "PLUGIN_BUILTIN", None);
    s.post_empty("/api/v1/plugins/http/0.1.0/disable")
        .await
        .assert_error(409, "PLUGIN_BUILTIN", None);
    s.get("/api/v1/plugins/hostile/9.9.9")
        .await
        .assert_error(404, "PLUGIN_NOT_FOUND", None);
    s.upload(hostile(), "?grant=ftp")
        .await
        .assert_error(400, "VALIDATION_FAILED", Some("/grant"));
    let r = s
        .post_raw("/api/v1/plugins", "application/json", "{}")
        .await;
    r.assert_error(415, "UNSUPPORTED_MEDIA_TYPE", None);
    // Uploads may exceed the 1 MiB JSON limit (up to 32 MiB): this one is read and refused as
    // not a component, not as too large.
    s.upload(vec![0u8; 2 * 1024 * 1024], "")
        .await
        .assert_error(400, "PLUGIN_INVALID", None);
    let r = s
        .post_oversized(
            "/api/v1/plugins",
            "application/wasm",
            vec![0u8; 33 * 1024 * 1024],
        )
        .await;
    r.assert_error(413, "PAYLOAD_TOO_LARGE", None);

    // Delete once unused, then upload again as multipart with an immediate grant.
    assert_eq!(
        s.delete(&format!("/api/v1/monitors/{id}")).await.status,
        204
    );
    let r = s.delete(&location).await;
    assert_eq!(r.status, 204, "{}", r.body);
    s.get(&location)
        .await
        .assert_error(404, "PLUGIN_NOT_FOUND", None);
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(hostile()).file_name("hostile.wasm"),
    );
    let created_active = |r: &Resp| {
        assert_eq!(r.status, 201, "{}", r.body);
        assert_eq!(r.body["state"], "active", "{}", r.body);
        assert_eq!(
            r.body["grants"]["capabilities"],
            json!(["http", "dns"]),
            "{}",
            r.body
        );
    };
    let r = s
        .upload_form("?grant=http,dns&allowed_hosts=127.0.0.1.nip.test", form)
        .await;
    created_active(&r);
    // `?grant=all` on a raw upload: active at once with everything it declares.
    assert_eq!(s.delete(&location).await.status, 204);
    let r = s.upload(hostile(), "?grant=all").await;
    created_active(&r);
    assert!(
        r.body["grants"].get("allowed_hosts").is_none(),
        "{}",
        r.body
    );
    let form = reqwest::multipart::Form::new().text("other", "x");
    let r = s.upload_form("", form).await;
    r.assert_error(400, "VALIDATION_FAILED", Some("/file"));
}

on_both_backends!(
    plugin_uploads:
    plugin_uploads_are_validated_granted_and_managed,
    postgres_plugin_uploads_are_validated_granted_and_managed
);

// ---- push -------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_urls_take_pings_without_a_key() {
    let s = start(None).await;
    let m = s
        .create(json!({"name": "nightly", "type": "push", "interval_secs": 3600, "push": {"grace_secs": 30}}))
        .await;
    let id = m["id"].as_i64().expect("id");
    assert_eq!(m["push"]["timezone"], "UTC", "{m}");
    assert_eq!(m["push"]["grace_secs"], 30);
    let push_url = m["push_url"].as_str().expect("push_url");
    let path = &push_url[push_url.find("/api/v1/push/").expect("push path")..];
    let token = path.trim_start_matches("/api/v1/push/");
    assert!(
        token.len() >= 32 && token.chars().all(|c| c.is_ascii_alphanumeric()),
        "{token}"
    );
    assert!(m["plugin"].is_null());

    let r = s.anon(Method::GET, path).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, json!({"ok": true}));
    let r = s.anon(Method::POST, &format!("{path}/start")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = s
        .anon(Method::POST, &format!("{path}/fail?msg=disk%20full"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = s
        .anon(
            Method::GET,
            &format!("{path}?status=down&msg=exit%201&extra=ignored"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    s.anon(Method::GET, &format!("{path}?status=maybe"))
        .await
        .assert_error(400, "VALIDATION_FAILED", Some("/status"));
    s.anon(Method::GET, "/api/v1/push/not-a-token")
        .await
        .assert_error(404, "PUSH_TOKEN_UNKNOWN", None);
    s.anon(Method::POST, "/api/v1/push/not-a-token/fail")
        .await
        .assert_error(404, "PUSH_TOKEN_UNKNOWN", None);

    let items = s
        .wait_results(id, Duration::from_secs(20), |items| {
            items.iter().any(|r| r["message"] == "disk full")
                && items.iter().any(|r| r["status"] == "up")
        })
        .await;
    assert!(items.iter().any(|r| r["status"] == "down"), "{items:?}");

    // Paused monitors refuse pings.
    let r = s.patch_monitor(id, json!({"enabled": false})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    s.anon(Method::GET, path)
        .await
        .assert_error(409, "MONITOR_PAUSED", None);
    // Deleted monitors forget their token.
    assert_eq!(
        s.delete(&format!("/api/v1/monitors/{id}")).await.status,
        204
    );
    s.anon(Method::GET, path)
        .await
        .assert_error(404, "PUSH_TOKEN_UNKNOWN", None);
    s.stop().await;
}

// ---- health, metrics, OpenAPI, docs --------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_metrics_openapi_and_docs() {
    let s = start(None).await;
    let r = s.anon(Method::GET, "/healthz").await;
    assert_eq!((r.status, r.body.clone()), (200, json!({"status": "ok"})));
    let r = s.anon(Method::GET, "/readyz").await;
    assert_eq!((r.status, r.body.clone()), (200, json!({"status": "ok"})));
    // `/` is the dashboard now (tests/browser.rs covers it); `/api/docs` stays.
    let r = s.anon(Method::GET, "/").await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .is_some_and(|v| v.starts_with("text/html"))
    );

    // A few requests to count, then the metrics show them by route template and status.
    s.get("/api/v1/monitors").await;
    s.anon(Method::GET, "/api/v1/monitors/42").await;
    s.anon(Method::GET, "/api/v1/push/unknown-token").await;
    let r = s.send(s.http.get(s.url("/metrics"))).await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain"))
    );
    let text = r.body.as_str().expect("metrics text");
    let series: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("api_requests") && !l.starts_with('#'))
        .collect();
    for (route, status) in [
        ("/api/v1/monitors", "200"),
        ("/api/v1/monitors/{id}", "401"),
        ("/api/v1/push/{token}", "404"),
    ] {
        assert!(
            series
                .iter()
                .any(|l| l.contains(&format!("route=\"{route}\""))
                    && l.contains(&format!("status=\"{status}\""))),
            "{route} {status} missing in {series:#?}"
        );
    }
    assert!(
        !text.contains("unknown-token"),
        "tokens never become labels"
    );

    // The OpenAPI document lists every route of the router.
    let r = s.anon(Method::GET, "/api/openapi.json").await;
    assert_eq!(r.status, 200);
    assert!(
        r.body["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1"))
    );
    let paths = r.body["paths"].as_object().expect("paths");
    for route in pharos::api::routes() {
        let method = route.method.as_str().to_lowercase();
        assert!(
            paths.get(route.path).and_then(|p| p.get(&method)).is_some(),
            "{} {} is not documented",
            route.method,
            route.path
        );
        // And the route really is served (not the 404/405 fallbacks).
        let path = route
            .path
            .replace("{id}", "1")
            .replace("{name}", "http")
            .replace("{version}", "0.0.0")
            .replace("{token}", "t");
        let r = s.call(None, route.method.clone(), &path, None).await;
        assert_ne!(r.status, 405, "{} {path}: {}", route.method, r.body);
        if r.status == 404 {
            assert_ne!(
                r.body["error"]["message"]
                    .as_str()
                    .map(|m| m.starts_with("no route")),
                Some(true),
                "{} {path}",
                route.method
            );
        }
    }
    let schemes = &r.body["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer", "{schemes}");
    let codes = &r.body["components"]["schemas"]["ErrorCode"];
    assert!(
        codes.to_string().contains("IDEMPOTENCY_KEY_REUSED"),
        "{codes}"
    );

    // The docs page is self-contained.
    let resp = s.http.get(s.url("/api/docs")).send().await.expect("docs");
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("text/html"))
    );
    let html = resp.text().await.expect("html");
    assert!(html.contains("/api/openapi.json"));
    assert!(html.contains("sessionStorage"));
    for attr in ["src=", "href="] {
        for (i, _) in html.match_indices(attr) {
            let value = html[i + attr.len()..].trim_start_matches(['"', '\'']);
            assert!(
                !value.starts_with("http") && !value.starts_with("//"),
                "external reference: {}",
                &html[i..(i + 60).min(html.len())]
            );
        }
    }
    assert!(!html.contains("@import"), "no external stylesheets");

    // With the database gone, readiness fails and requests get STORE_UNAVAILABLE, not a panic.
    s.server
        .as_ref()
        .expect("running")
        .app()
        .store
        .close()
        .await;
    let r = s.anon(Method::GET, "/readyz").await;
    r.assert_error(503, "STORE_UNAVAILABLE", None);
    assert_eq!(r.header("retry-after"), Some("1"));
    let r = s.anon(Method::GET, "/healthz").await;
    assert_eq!(r.status, 200, "liveness does not depend on the database");
    s.get("/api/v1/monitors")
        .await
        .assert_error(503, "STORE_UNAVAILABLE", None);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_token_guards_metrics() {
    let s = start_with(None, |c| c.metrics.token = Some("m3trics".into())).await;
    let r = s.anon(Method::GET, "/metrics").await;
    r.assert_error(401, "UNAUTHORIZED", None);
    let r = s.call(Some("wrong"), Method::GET, "/metrics", None).await;
    r.assert_error(401, "UNAUTHORIZED", None);
    // An API key is not the metrics token.
    let r = s.call(Some(ADMIN), Method::GET, "/metrics", None).await;
    r.assert_error(401, "UNAUTHORIZED", None);
    let r = s.call(Some("m3trics"), Method::GET, "/metrics", None).await;
    assert_eq!(r.status, 200);
    assert!(r.body.as_str().is_some_and(|t| t.contains("api_requests")));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_move_to_their_own_listener() {
    let s = start_with(None, |c| {
        c.metrics.listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)))
    })
    .await;
    s.anon(Method::GET, "/metrics")
        .await
        .assert_error(404, "NOT_FOUND", None);
    let addr = s
        .server
        .as_ref()
        .and_then(|srv| srv.metrics_addr())
        .expect("metrics address");
    let r = s.send(s.http.get(format!("http://{addr}/metrics"))).await;
    assert_eq!(r.status, 200);
    let r = s
        .send(s.http.get(format!("http://{addr}/api/v1/monitors")))
        .await;
    r.assert_error(404, "NOT_FOUND", None);
    s.stop().await;
}
