//! Channels, maintenance windows and the alert fields of monitors, through the REST API of an
//! in-process server (and its store), on SQLite and PostgreSQL.
//!
//! Channels use the `tests/fixtures/notifier` component uploaded as `fixture-notifier` (its
//! config has a secret `password` and a `mode` enum), so they do not depend on the built-in
//! notifiers; the webhook tests at the end use the built-in `webhook` plugin and a local sink.

mod support;

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use pharos::model::DEFAULT_WORKSPACE;
use pharos::store::Store;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::Row;
use support::api::{self, Resp, TestServer};
use support::sink::Sink;

/// Generates `$sqlite` running `$body(&TestServer)` on a SQLite server and `$postgres` running
/// it on a PostgreSQL one (skipped, loudly, when PostgreSQL is unreachable outside CI).
macro_rules! on_both_backends {
    ($body:ident: $sqlite:ident, $postgres:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $sqlite() {
            let s = api::start(None).await;
            $body(&s).await;
            s.stop().await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $postgres() {
            let Some(url) = support::db::postgres_url().await else {
                return;
            };
            let s = api::start(Some(url)).await;
            $body(&s).await;
            s.stop().await;
        }
    };
}

/// What these tests need beyond the shared API harness.
trait ServerExt {
    /// The server's store.
    fn store(&self) -> &Store;
    /// Creates an API key with `scopes`; its secret.
    async fn key(&self, scopes: &[&str]) -> String;
    /// Uploads a component as a plugin (`query` e.g. `?grant=all`).
    async fn upload(&self, bytes: Vec<u8>, query: &str) -> Resp;
    /// Rows of a raw query on the server's database (a separate pool).
    async fn rows(&self, sql: &str) -> Vec<sqlx::any::AnyRow>;
}

impl ServerExt for TestServer {
    fn store(&self) -> &Store {
        &self.server.as_ref().expect("running").app().store
    }

    async fn key(&self, scopes: &[&str]) -> String {
        let body = self
            .post(
                "/api/v1/api-keys",
                json!({"name": format!("{scopes:?}"), "scopes": scopes}),
            )
            .await
            .ok(201);
        body["key"].as_str().expect("key shown once").to_string()
    }

    async fn upload(&self, bytes: Vec<u8>, query: &str) -> Resp {
        self.post_raw(
            &format!("/api/v1/plugins{query}"),
            "application/wasm",
            bytes,
        )
        .await
    }

    async fn rows(&self, sql: &str) -> Vec<sqlx::any::AnyRow> {
        let url = self
            .server
            .as_ref()
            .expect("running")
            .app()
            .config
            .database_url();
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&url).await.expect("raw pool");
        let rows = sqlx::query(sql).fetch_all(&pool).await.expect(sql);
        pool.close().await;
        rows
    }
}

/// Status assertions that hand back the body.
trait RespExt {
    /// Asserts the status and returns the body.
    fn ok(self, status: u16) -> Value;
}

impl RespExt for Resp {
    #[track_caller]
    fn ok(self, status: u16) -> Value {
        assert_eq!(self.status, status, "{}", self.body);
        self.body
    }
}

const NOTIFIER: &str = "fixture-notifier";

/// Uploads the fixture notifier, granted.
async fn upload_notifier(s: &TestServer) {
    let r = s
        .upload(support::fixture("pharos_fixture_notifier"), "?grant=all")
        .await;
    assert!(r.status == 201 || r.status == 200, "{}", r.body);
    assert_eq!(r.body["kind"], "notifier", "{}", r.body);
    assert_eq!(r.body["state"], "active", "{}", r.body);
}

/// Creates a channel of the fixture notifier; its id.
async fn channel(s: &TestServer, body: Value) -> i64 {
    let mut doc = json!({"name": "ch", "plugin": NOTIFIER, "config": {"mode": "ok"}});
    merge(&mut doc, body);
    let r = s.post("/api/v1/channels", doc).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_i64().expect("id");
    assert_eq!(
        r.header("location"),
        Some(format!("/api/v1/channels/{id}").as_str())
    );
    id
}

/// Creates a paused check monitor (nothing runs); its id.
async fn monitor(s: &TestServer, body: Value) -> i64 {
    let mut doc = json!({"name": "m", "plugin": "http", "enabled": false,
        "config": {"url": "http://127.0.0.1:9/"}});
    merge(&mut doc, body);
    let r = s.post("/api/v1/monitors", doc).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["id"].as_i64().expect("id")
}

/// Shallow merge of `extra` into `doc`.
fn merge(doc: &mut Value, extra: Value) {
    if let (Some(d), Value::Object(e)) = (doc.as_object_mut(), extra) {
        d.extend(e);
    }
}

/// The stored (sealed) config of a channel.
async fn stored_config(s: &TestServer, id: i64) -> Value {
    let rows = s
        .rows(&format!("SELECT config FROM channels WHERE id = {id}"))
        .await;
    let text: String = rows[0].try_get(0).expect("config");
    serde_json::from_str(&text).expect("json")
}

/// The stored config of a channel with its secrets opened by the server's key.
async fn revealed(s: &TestServer, id: i64) -> Value {
    let sealed = stored_config(s, id).await;
    let app = s.server.as_ref().expect("running").app();
    app.secrets.reveal(&sealed).expect("opens")
}

async fn count(s: &TestServer, sql: &str) -> i64 {
    s.rows(sql).await[0].try_get::<i64, _>(0).expect(sql)
}

on_both_backends!(channel_crud_and_secrets: channels_crud_sqlite, channels_crud_postgres);

async fn channel_crud_and_secrets(s: &TestServer) {
    upload_notifier(s).await;

    // Create: secrets sealed at rest, `***` when read; defaults filled in.
    let id = channel(
        s,
        json!({"name": " ops ", "config": {"mode": "ok", "password": "hunter2"}, "tags": ["prod"]}),
    )
    .await;
    let view = s.get(&format!("/api/v1/channels/{id}")).await.ok(200);
    assert_eq!(view["name"], "ops");
    assert_eq!(view["plugin"], NOTIFIER);
    assert_eq!(view["config"], json!({"mode": "ok", "password": "***"}));
    assert_eq!(view["enabled"], true);
    assert_eq!(view["default"], false);
    assert_eq!(view["tags"], json!(["prod"]));
    assert_eq!(view["storm_limit"], 0);
    assert_eq!(view["storm_window_secs"], 300);
    assert_eq!(view["revision"], 1);
    let sealed = stored_config(s, id).await;
    let password = sealed["password"]
        .as_str()
        .expect("stored password")
        .to_string();
    assert!(password.starts_with("pharos:sealed:"), "{sealed}");
    assert!(!sealed.to_string().contains("hunter2"), "{sealed}");

    // `***` on create is refused; so is a sealed value.
    s.post(
        "/api/v1/channels",
        json!({"name": "echo", "plugin": NOTIFIER, "config": {"password": "***"}}),
    )
    .await
    .assert_error(400, "SECRET_REDACTED_ECHO", Some("/config/password"));
    s.post(
        "/api/v1/channels",
        json!({"name": "echo", "plugin": NOTIFIER, "config": {"password": password}}),
    )
    .await
    .assert_error(400, "SECRET_SEALED_INPUT", Some("/config/password"));

    // Names are unique per workspace (after trimming).
    s.post(
        "/api/v1/channels",
        json!({"name": "ops", "plugin": NOTIFIER}),
    )
    .await
    .assert_error(409, "CHANNEL_NAME_TAKEN", Some("/name"));

    // PATCH: `***` keeps the secret, other fields change, revision bumps.
    let r = s
        .patch(
            &format!("/api/v1/channels/{id}"),
            json!({"config": {"mode": "echo", "password": "***"}, "storm_limit": 5,
                   "default": true}),
        )
        .await
        .ok(200);
    assert_eq!(r["config"], json!({"mode": "echo", "password": "***"}));
    assert_eq!(r["storm_limit"], 5);
    assert_eq!(r["default"], true);
    assert_eq!(r["revision"], 2);
    assert_eq!(revealed(s, id).await["password"], "hunter2");
    // Leaving it out keeps it too; a new value replaces it.
    s.patch(
        &format!("/api/v1/channels/{id}"),
        json!({"tags": ["prod", "eu"]}),
    )
    .await
    .ok(200);
    assert_eq!(revealed(s, id).await["password"], "hunter2");
    s.patch(
        &format!("/api/v1/channels/{id}"),
        json!({"config": {"password": "correct horse"}}),
    )
    .await
    .ok(200);
    let changed = stored_config(s, id).await;
    assert!(!changed.to_string().contains("correct horse"), "{changed}");
    assert_eq!(revealed(s, id).await["password"], "correct horse");
    // null removes (merge patch): the secret is gone.
    let r = s
        .patch(
            &format!("/api/v1/channels/{id}"),
            json!({"config": {"password": null}}),
        )
        .await
        .ok(200);
    assert_eq!(r["config"], json!({"mode": "echo"}));
    assert_eq!(r["revision"], 5);

    // Validation, each with its pointer.
    let other = channel(s, json!({"name": "other"})).await;
    s.patch(&format!("/api/v1/channels/{other}"), json!({"name": "ops"}))
        .await
        .assert_error(409, "CHANNEL_NAME_TAKEN", Some("/name"));
    s.patch(
        &format!("/api/v1/channels/{other}"),
        json!({"config": {"mode": "nope"}}),
    )
    .await
    .assert_error(400, "VALIDATION_FAILED", Some("/config/mode"));
    for (body, code, field) in [
        (
            json!({"name": "x", "plugin": "http"}),
            "PLUGIN_WRONG_KIND",
            "/plugin",
        ),
        (
            json!({"name": "x", "plugin": "no-such"}),
            "PLUGIN_NOT_FOUND",
            "/plugin",
        ),
        (
            json!({"name": "x", "plugin": " "}),
            "VALIDATION_FAILED",
            "/plugin",
        ),
        (
            json!({"name": "x", "plugin": NOTIFIER, "config": {"mode": 5}}),
            "VALIDATION_FAILED",
            "/config/mode",
        ),
        (
            json!({"name": "x", "plugin": NOTIFIER, "config": []}),
            "VALIDATION_FAILED",
            "/config",
        ),
        (
            json!({"name": "", "plugin": NOTIFIER}),
            "VALIDATION_FAILED",
            "/name",
        ),
        (
            json!({"name": "x".repeat(101), "plugin": NOTIFIER}),
            "VALIDATION_FAILED",
            "/name",
        ),
        (
            json!({"name": "x", "plugin": NOTIFIER, "tags": ["ok", "not ok"]}),
            "VALIDATION_FAILED",
            "/tags/1",
        ),
        (
            json!({"name": "x", "plugin": NOTIFIER, "storm_limit": 10_001}),
            "VALIDATION_FAILED",
            "/storm_limit",
        ),
        (
            json!({"name": "x", "plugin": NOTIFIER, "storm_window_secs": 9}),
            "VALIDATION_FAILED",
            "/storm_window_secs",
        ),
        (
            json!({"name": "x", "plugin": NOTIFIER, "storm_window_secs": 86_401}),
            "VALIDATION_FAILED",
            "/storm_window_secs",
        ),
        (
            json!({"name": "x", "plugin": NOTIFIER, "bogus": 1}),
            "VALIDATION_FAILED",
            "/bogus",
        ),
    ] {
        s.post("/api/v1/channels", body.clone())
            .await
            .assert_error(400, code, Some(field));
    }

    // List with filters.
    let list = s.get("/api/v1/channels").await.ok(200);
    assert_eq!(list["total"], 2, "{list}");
    assert_eq!(list["items"][0]["id"], id);
    assert_eq!(list["items"][0]["config"]["mode"], "echo");
    let total = |q: &'static str| async move {
        s.get(&format!("/api/v1/channels{q}")).await.ok(200)["total"].clone()
    };
    assert_eq!(total("?plugin=fixture-notifier").await, 2);
    assert_eq!(total("?plugin=fixture-notifier@0.1.0").await, 0);
    assert_eq!(total("?plugin=fixture").await, 0);
    assert_eq!(total("?enabled=false").await, 0);
    assert_eq!(total("?enabled=true&limit=1").await, 2);
    s.patch(
        &format!("/api/v1/channels/{other}"),
        json!({"enabled": false}),
    )
    .await
    .ok(200);
    assert_eq!(total("?enabled=false").await, 1);
    s.get("/api/v1/channels?enabled=maybe").await.assert_error(
        400,
        "VALIDATION_FAILED",
        Some("/enabled"),
    );

    // Delete.
    assert_eq!(
        s.delete(&format!("/api/v1/channels/{other}")).await.status,
        204
    );
    s.get(&format!("/api/v1/channels/{other}"))
        .await
        .assert_error(404, "CHANNEL_NOT_FOUND", None);
    s.delete(&format!("/api/v1/channels/{other}"))
        .await
        .assert_error(404, "CHANNEL_NOT_FOUND", None);
    s.patch(
        &format!("/api/v1/channels/{other}"),
        json!({"enabled": true}),
    )
    .await
    .assert_error(404, "CHANNEL_NOT_FOUND", None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_scopes() {
    let s = api::start(None).await;
    upload_notifier(&s).await;
    let id = channel(&s, json!({"name": "ops"})).await;
    let read = s.key(&["read"]).await;
    let write = s.key(&["write"]).await;
    let body = json!({"name": "new", "plugin": NOTIFIER});
    let call = |key: &str, method: Method, path: &str, body: Option<Value>| {
        let key = key.to_string();
        let path = path.to_string();
        let s = &s;
        async move { s.call(Some(&key), method, &path, body).await }
    };
    // Reading is `read`; channels hold credentials, so writes are `admin`.
    assert_eq!(
        call(&read, Method::GET, "/api/v1/channels", None)
            .await
            .status,
        200
    );
    let one = format!("/api/v1/channels/{id}");
    assert_eq!(call(&read, Method::GET, &one, None).await.status, 200);
    for key in [&read, &write] {
        call(key, Method::POST, "/api/v1/channels", Some(body.clone()))
            .await
            .assert_error(403, "FORBIDDEN", None);
        call(key, Method::PATCH, &one, Some(json!({"enabled": false})))
            .await
            .assert_error(403, "FORBIDDEN", None);
        call(key, Method::DELETE, &one, None)
            .await
            .assert_error(403, "FORBIDDEN", None);
    }
    // Test alerts are `write`.
    let test = format!("/api/v1/channels/{id}/test");
    call(&read, Method::POST, &test, None)
        .await
        .assert_error(403, "FORBIDDEN", None);
    let r = call(&write, Method::POST, &test, None).await.ok(200);
    assert_eq!(r["delivered"], true, "{r}");
    s.call(None, Method::GET, "/api/v1/channels", None)
        .await
        .assert_error(401, "UNAUTHORIZED", None);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_test_alerts_through_the_fixture_notifier() {
    let s = api::start(None).await;
    upload_notifier(&s).await;
    // Unsaved: validated like a create, then delivered; nothing stored.
    let r = s
        .post(
            "/api/v1/channels/test",
            json!({"name": "try", "plugin": NOTIFIER, "config": {"mode": "ok"}}),
        )
        .await
        .ok(200);
    assert_eq!(r["delivered"], true, "{r}");
    assert_eq!(r["outcome"], "delivered", "{r}");
    assert!(r["duration_ms"].as_f64().is_some(), "{r}");
    assert_eq!(s.get("/api/v1/channels").await.ok(200)["total"], 0);
    // A failure of the destination is a 200 saying so.
    let r = s
        .post(
            "/api/v1/channels/test",
            json!({"name": "try", "plugin": NOTIFIER,
                   "config": {"mode": "permanent", "message": "bad token"}}),
        )
        .await
        .ok(200);
    assert_eq!(r["delivered"], false, "{r}");
    assert_eq!(r["outcome"], "permanent", "{r}");
    assert!(
        r["message"]
            .as_str()
            .is_some_and(|m| m.contains("bad token")),
        "{r}"
    );
    // Invalid definitions are refused before anything runs.
    s.post(
        "/api/v1/channels/test",
        json!({"name": "try", "plugin": NOTIFIER, "config": {"password": "***"}}),
    )
    .await
    .assert_error(400, "SECRET_REDACTED_ECHO", Some("/config/password"));
    s.post(
        "/api/v1/channels/test",
        json!({"name": "try", "plugin": "tcp"}),
    )
    .await
    .assert_error(400, "PLUGIN_WRONG_KIND", Some("/plugin"));
    // Saved: the stored (sealed) config is opened for the delivery.
    let id = channel(
        &s,
        json!({"name": "saved", "config": {"mode": "transient", "message": "later"}}),
    )
    .await;
    let r = s
        .post_empty(&format!("/api/v1/channels/{id}/test"))
        .await
        .ok(200);
    assert_eq!(r["delivered"], false, "{r}");
    assert_eq!(r["outcome"], "transient", "{r}");
    s.post_empty("/api/v1/channels/999999/test")
        .await
        .assert_error(404, "CHANNEL_NOT_FOUND", None);
    // A disabled plugin cannot deliver: its channel's test says why.
    let r = s
        .post_empty("/api/v1/plugins/fixture-notifier/0.1.0/disable")
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    s.post_empty(&format!("/api/v1/channels/{id}/test"))
        .await
        .assert_error(400, "PLUGIN_NOT_ACTIVE", Some("/plugin"));
    s.stop().await;
}

on_both_backends!(monitor_alert_fields: monitor_alert_fields_sqlite, monitor_alert_fields_postgres);

async fn monitor_alert_fields(s: &TestServer) {
    upload_notifier(s).await;
    let ws = DEFAULT_WORKSPACE;
    let c1 = channel(s, json!({"name": "c1"})).await;
    let c2 = channel(s, json!({"name": "c2"})).await;

    // Defaults.
    let a = monitor(s, json!({"name": "a"})).await;
    let view = s.get(&format!("/api/v1/monitors/{a}")).await.ok(200);
    for (field, value) in [
        ("failure_threshold", json!(2)),
        ("recovery_threshold", json!(1)),
        ("renotify_interval_secs", json!(0)),
        ("notify_recovery", json!(true)),
        ("alert_on_degraded", json!(false)),
        ("error_counts_as_failure", json!(true)),
        ("channels", json!([])),
        ("depends_on", json!([])),
    ] {
        assert_eq!(view[field], value, "{field}: {view}");
    }

    // Every field round-trips; ids are sorted and deduplicated.
    let b = monitor(
        s,
        json!({"name": "b", "failure_threshold": 3, "recovery_threshold": 2,
               "renotify_interval_secs": 3600, "notify_recovery": false,
               "alert_on_degraded": true, "error_counts_as_failure": false,
               "channels": [c2, c1, c2], "depends_on": [a, a]}),
    )
    .await;
    let view = s.get(&format!("/api/v1/monitors/{b}")).await.ok(200);
    assert_eq!(view["failure_threshold"], 3);
    assert_eq!(view["recovery_threshold"], 2);
    assert_eq!(view["renotify_interval_secs"], 3600);
    assert_eq!(view["notify_recovery"], false);
    assert_eq!(view["alert_on_degraded"], true);
    assert_eq!(view["error_counts_as_failure"], false);
    assert_eq!(view["channels"], json!([c1, c2]));
    assert_eq!(view["depends_on"], json!([a]));
    let stored = s.store().get_monitor(ws, b).await.expect("get").expect("b");
    assert_eq!(stored.spec.alert.channels, vec![c1, c2]);
    assert_eq!(stored.spec.alert.depends_on, vec![a]);
    assert_eq!(stored.spec.alert.failure_threshold, 3);
    assert!(!stored.spec.alert.error_counts_as_failure);
    let listed = s.get("/api/v1/monitors").await.ok(200);
    assert_eq!(listed["items"][1]["channels"], json!([c1, c2]), "{listed}");

    // Unknown references, each pointing at the entry as sent.
    s.post(
        "/api/v1/monitors",
        json!({"name": "x", "plugin": "http", "config": {"url": "http://127.0.0.1:9/"},
               "channels": [c1, 999_999]}),
    )
    .await
    .assert_error(400, "CHANNEL_NOT_FOUND", Some("/channels/1"));
    s.post(
        "/api/v1/monitors",
        json!({"name": "x", "plugin": "http", "config": {"url": "http://127.0.0.1:9/"},
               "depends_on": [999_999]}),
    )
    .await
    .assert_error(400, "DEPENDENCY_NOT_FOUND", Some("/depends_on/0"));
    let r = s
        .post(
            "/api/v1/monitors/bulk",
            json!({"monitors": [
                {"name": "ok", "plugin": "http", "config": {"url": "http://127.0.0.1:9/"}},
                {"name": "bad", "plugin": "http", "config": {"url": "http://127.0.0.1:9/"},
                 "channels": [424_242]}]}),
        )
        .await;
    r.assert_error(400, "CHANNEL_NOT_FOUND", Some("/monitors/1/channels/0"));
    assert_eq!(
        s.get("/api/v1/monitors").await.ok(200)["total"],
        2,
        "bulk is all or none"
    );

    // Ranges.
    for (patch, field) in [
        (json!({"failure_threshold": 0}), "/failure_threshold"),
        (json!({"failure_threshold": 101}), "/failure_threshold"),
        (json!({"recovery_threshold": 0}), "/recovery_threshold"),
        (
            json!({"renotify_interval_secs": 59}),
            "/renotify_interval_secs",
        ),
        (
            json!({"renotify_interval_secs": 604_801}),
            "/renotify_interval_secs",
        ),
        (json!({"channels": "c1"}), "/channels"),
    ] {
        s.patch(&format!("/api/v1/monitors/{a}"), patch)
            .await
            .assert_error(400, "VALIDATION_FAILED", Some(field));
    }

    // Self dependency, and a cycle a → b → a.
    s.patch(&format!("/api/v1/monitors/{a}"), json!({"depends_on": [a]}))
        .await
        .assert_error(400, "DEPENDENCY_CYCLE", Some("/depends_on/0"));
    let c = monitor(s, json!({"name": "c", "depends_on": [b]})).await;
    let r = s
        .patch(&format!("/api/v1/monitors/{a}"), json!({"depends_on": [c]}))
        .await;
    r.assert_error(400, "DEPENDENCY_CYCLE", Some("/depends_on/0"));
    assert_eq!(r.body["error"]["details"]["cycle"], json!([a, c, b, a]));
    s.patch(&format!("/api/v1/monitors/{a}"), json!({"depends_on": [b]}))
        .await
        .assert_error(400, "DEPENDENCY_CYCLE", Some("/depends_on/0"));
    assert_eq!(
        s.get(&format!("/api/v1/monitors/{a}")).await.ok(200)["depends_on"],
        json!([]),
        "nothing saved"
    );
    // The store refuses a cycle on its own too.
    let mut spec = s
        .store()
        .get_monitor(ws, a)
        .await
        .expect("get")
        .expect("a")
        .spec;
    spec.alert.depends_on = vec![b];
    let e = s
        .store()
        .update_monitor(ws, a, &spec)
        .await
        .expect_err("cycle");
    assert!(
        matches!(e, pharos::store::StoreError::DependencyCycle(ref p) if p == &[a, b, a]),
        "{e:?}"
    );

    // PATCH merges: other fields stay; null goes back to the default.
    let view = s
        .patch(
            &format!("/api/v1/monitors/{b}"),
            json!({"notify_recovery": true, "channels": null}),
        )
        .await
        .ok(200);
    assert_eq!(view["notify_recovery"], true);
    assert_eq!(view["channels"], json!([]));
    assert_eq!(view["failure_threshold"], 3);
    assert_eq!(view["depends_on"], json!([a]));
    let view = s
        .patch(&format!("/api/v1/monitors/{b}"), json!({"channels": [c2]}))
        .await
        .ok(200);
    assert_eq!(view["channels"], json!([c2]));

    // Deleting a channel removes its bindings; deleting a parent removes the dependency.
    assert_eq!(
        s.delete(&format!("/api/v1/channels/{c2}")).await.status,
        204
    );
    assert_eq!(
        s.get(&format!("/api/v1/monitors/{b}")).await.ok(200)["channels"],
        json!([])
    );
    assert_eq!(
        count(
            s,
            &format!("SELECT COUNT(*) FROM monitor_channels WHERE channel_id = {c2}")
        )
        .await,
        0
    );
    assert_eq!(s.delete(&format!("/api/v1/monitors/{a}")).await.status, 204);
    assert_eq!(
        s.get(&format!("/api/v1/monitors/{b}")).await.ok(200)["depends_on"],
        json!([])
    );
    assert_eq!(
        s.get(&format!("/api/v1/monitors/{c}")).await.ok(200)["depends_on"],
        json!([b])
    );
}

on_both_backends!(channels_bound_to_a_monitor: bound_channels_sqlite, bound_channels_postgres);

async fn channels_bound_to_a_monitor(s: &TestServer) {
    upload_notifier(s).await;
    let ws = DEFAULT_WORKSPACE;
    let explicit = channel(s, json!({"name": "explicit"})).await;
    let default = channel(s, json!({"name": "default", "default": true})).await;
    let tagged = channel(s, json!({"name": "tagged", "tags": ["prod", "db"]})).await;
    let _other_tag = channel(s, json!({"name": "other-tag", "tags": ["staging"]})).await;
    let _off = channel(s, json!({"name": "off", "default": true, "enabled": false})).await;
    let m = monitor(
        s,
        json!({"name": "m", "tags": ["db"], "channels": [explicit]}),
    )
    .await;
    let plain = monitor(s, json!({"name": "plain"})).await;
    let ids = |cs: Vec<pharos::model::Channel>| cs.into_iter().map(|c| c.id).collect::<Vec<_>>();
    let bound = s
        .store()
        .channels_for_monitor(ws, m, &["db".to_string()])
        .await
        .expect("bound");
    assert_eq!(ids(bound), vec![explicit, default, tagged]);
    let bound = s
        .store()
        .channels_for_monitor(ws, plain, &[])
        .await
        .expect("bound");
    assert_eq!(ids(bound), vec![default]);
    // Disabling the explicit channel unbinds it.
    s.patch(
        &format!("/api/v1/channels/{explicit}"),
        json!({"enabled": false}),
    )
    .await
    .ok(200);
    let bound = s
        .store()
        .channels_for_monitor(ws, m, &["db".to_string()])
        .await
        .expect("bound");
    assert_eq!(ids(bound), vec![default, tagged]);
    let got = s
        .store()
        .get_channel(ws, tagged)
        .await
        .expect("get")
        .expect("tagged");
    assert_eq!(got.spec.tags, vec!["db".to_string(), "prod".to_string()]);
    assert!(
        s.store()
            .get_channel(ws + 1, tagged)
            .await
            .expect("get")
            .is_none()
    );
}

/// `t` as RFC 3339 with milliseconds, as the API returns it.
fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The same instant, whatever the formatting.
#[track_caller]
fn same_time(v: &Value, t: DateTime<Utc>) {
    let got: DateTime<Utc> = v.as_str().expect("time").parse().expect("RFC 3339");
    assert_eq!(got, t, "{v}");
}

on_both_backends!(maintenance_windows: maintenance_sqlite, maintenance_postgres);

async fn maintenance_windows(s: &TestServer) {
    let a = monitor(s, json!({"name": "a", "tags": ["db"]})).await;
    let b = monitor(s, json!({"name": "b"})).await;
    let now = DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).expect("now");
    let base = "/api/v1/maintenance-windows";

    // A one-off window in effect now.
    let r = s
        .post(
            base,
            json!({"name": " upgrade ", "description": "db upgrade",
                   "starts_at": rfc3339(now - TimeDelta::hours(1)),
                   "ends_at": rfc3339(now + TimeDelta::hours(1)), "monitor_ids": [b, a, b]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let now_id = r.body["id"].as_i64().expect("id");
    assert_eq!(
        r.header("location"),
        Some(format!("{base}/{now_id}").as_str())
    );
    let w = r.body;
    assert_eq!(w["name"], "upgrade");
    assert_eq!(w["description"], "db upgrade");
    assert_eq!(w["monitor_ids"], json!([a, b]));
    assert_eq!(w["tags"], json!([]));
    assert_eq!(w["timezone"], "UTC");
    assert_eq!(w["enabled"], true);
    assert_eq!(w["cron"], Value::Null);
    assert_eq!(w["active"], true, "{w}");
    assert_eq!(w["next_start"], Value::Null, "{w}");
    same_time(&w["starts_at"], now - TimeDelta::hours(1));
    let got = s.get(&format!("{base}/{now_id}")).await.ok(200);
    assert_eq!(got, w, "GET returns what create returned");

    // A one-off window tomorrow.
    let later = s
        .post(
            base,
            json!({"name": "later", "starts_at": rfc3339(now + TimeDelta::days(1)),
                   "ends_at": rfc3339(now + TimeDelta::days(1) + TimeDelta::hours(2)),
                   "tags": ["db"]}),
        )
        .await
        .ok(201);
    assert_eq!(later["active"], false);
    same_time(&later["next_start"], now + TimeDelta::days(1));

    // A recurring window that first fires in 2099 (03:00 Berlin = 02:00 UTC in January).
    let yearly = s
        .post(
            base,
            json!({"name": "yearly", "cron": "0 0 3 1 1 * 2099", "duration_secs": 3600,
                   "timezone": "Europe/Berlin", "tags": ["db"]}),
        )
        .await
        .ok(201);
    assert_eq!(yearly["active"], false);
    assert_eq!(yearly["duration_secs"], 3600);
    same_time(
        &yearly["next_start"],
        "2099-01-01T02:00:00Z".parse().expect("time"),
    );
    let yearly_id = yearly["id"].as_i64().expect("id");

    // The list and its `active` filter.
    let list = s.get(base).await.ok(200);
    assert_eq!(list["total"], 3, "{list}");
    let active = s.get(&format!("{base}?active=true")).await.ok(200);
    assert_eq!(active["total"], 1, "{active}");
    assert_eq!(active["items"][0]["id"], now_id);
    let inactive = s
        .get(&format!("{base}?active=false&limit=1&offset=1"))
        .await
        .ok(200);
    assert_eq!(inactive["total"], 2, "{inactive}");
    assert_eq!(inactive["items"][0]["id"], yearly_id);

    // The store answers the engine's question the same way.
    let stored = s
        .store()
        .get_maintenance_window(DEFAULT_WORKSPACE, now_id)
        .await
        .expect("get")
        .expect("window");
    assert!(stored.spec.is_active_at(Utc::now()));
    assert!(stored.spec.covers(a, &[]));
    assert!(!stored.spec.covers(a + b + 1, &["web".to_string()]));

    // Validation, each with its code and pointer.
    let starts = rfc3339(now);
    let ends = rfc3339(now + TimeDelta::hours(1));
    for (body, code, field) in [
        (
            json!({"name": "x", "monitor_ids": [a]}),
            "VALIDATION_FAILED",
            "/starts_at",
        ),
        (
            json!({"name": "x", "starts_at": starts, "monitor_ids": [a]}),
            "VALIDATION_FAILED",
            "/ends_at",
        ),
        (
            json!({"name": "x", "starts_at": ends, "ends_at": starts, "monitor_ids": [a]}),
            "VALIDATION_FAILED",
            "/ends_at",
        ),
        (
            json!({"name": "x", "starts_at": starts, "ends_at": ends, "duration_secs": 60, "monitor_ids": [a]}),
            "VALIDATION_FAILED",
            "/duration_secs",
        ),
        (
            json!({"name": "x", "cron": "every night", "duration_secs": 60, "monitor_ids": [a]}),
            "INVALID_CRON",
            "/cron",
        ),
        (
            json!({"name": "x", "cron": "0 0 0 1 1 * 2001", "duration_secs": 60, "monitor_ids": [a]}),
            "INVALID_CRON",
            "/cron",
        ),
        (
            json!({"name": "x", "cron": "0 2 * * *", "duration_secs": 60, "timezone": "Mars/Olympus", "monitor_ids": [a]}),
            "INVALID_TIMEZONE",
            "/timezone",
        ),
        (
            json!({"name": "x", "cron": "0 2 * * *", "monitor_ids": [a]}),
            "VALIDATION_FAILED",
            "/duration_secs",
        ),
        (
            json!({"name": "x", "cron": "0 2 * * *", "duration_secs": 59, "monitor_ids": [a]}),
            "VALIDATION_FAILED",
            "/duration_secs",
        ),
        (
            json!({"name": "x", "cron": "0 2 * * *", "duration_secs": 2_592_001, "monitor_ids": [a]}),
            "VALIDATION_FAILED",
            "/duration_secs",
        ),
        (
            json!({"name": "x", "cron": "0 2 * * *", "duration_secs": 60}),
            "MAINTENANCE_EMPTY",
            "/monitor_ids",
        ),
        (
            json!({"name": "x", "cron": "0 2 * * *", "duration_secs": 60, "monitor_ids": [a, 999_999]}),
            "MONITOR_NOT_FOUND",
            "/monitor_ids/1",
        ),
        (
            json!({"name": "x", "cron": "0 2 * * *", "duration_secs": 60, "tags": ["bad tag"]}),
            "VALIDATION_FAILED",
            "/tags/0",
        ),
        (
            json!({"name": "", "cron": "0 2 * * *", "duration_secs": 60, "tags": ["db"]}),
            "VALIDATION_FAILED",
            "/name",
        ),
        (
            json!({"name": "x".repeat(101), "cron": "0 2 * * *", "duration_secs": 60, "tags": ["db"]}),
            "VALIDATION_FAILED",
            "/name",
        ),
        (
            json!({"name": "x", "starts_at": "tomorrow", "ends_at": ends, "tags": ["db"]}),
            "VALIDATION_FAILED",
            "/starts_at",
        ),
    ] {
        s.post(base, body.clone())
            .await
            .assert_error(400, code, Some(field));
    }
    assert_eq!(
        s.get(base).await.ok(200)["total"],
        3,
        "nothing invalid was stored"
    );

    // PATCH: a one-off window becomes recurring; disabling makes it inactive.
    let r = s
        .patch(
            &format!("{base}/{now_id}"),
            json!({"starts_at": null, "ends_at": null, "cron": "0 0 3 1 1 * 2099",
                   "duration_secs": 600}),
        )
        .await
        .ok(200);
    assert_eq!(r["active"], false, "{r}");
    assert_eq!(r["starts_at"], Value::Null);
    same_time(
        &r["next_start"],
        "2099-01-01T03:00:00Z".parse().expect("time"),
    );
    let r = s
        .patch(&format!("{base}/{yearly_id}"), json!({"enabled": false}))
        .await
        .ok(200);
    assert_eq!(r["next_start"], Value::Null);
    s.patch(&format!("{base}/{yearly_id}"), json!({"cron": "nope"}))
        .await
        .assert_error(400, "INVALID_CRON", Some("/cron"));
    s.patch(&format!("{base}/{yearly_id}"), json!({"tags": null}))
        .await
        .assert_error(400, "MAINTENANCE_EMPTY", Some("/monitor_ids"));
    // Ids that were stored stay acceptable after their monitor is gone; new ones must exist.
    assert_eq!(s.delete(&format!("/api/v1/monitors/{b}")).await.status, 204);
    s.patch(
        &format!("{base}/{now_id}"),
        json!({"description": "still fine"}),
    )
    .await
    .ok(200);
    s.patch(
        &format!("{base}/{now_id}"),
        json!({"monitor_ids": [a, b, 777_777]}),
    )
    .await
    .assert_error(400, "MONITOR_NOT_FOUND", Some("/monitor_ids/2"));

    // Scopes: read lists, write changes.
    let read = s.key(&["read"]).await;
    let write = s.key(&["write"]).await;
    assert_eq!(
        s.call(Some(&read), Method::GET, base, None).await.status,
        200
    );
    s.call(
        Some(&read),
        Method::POST,
        base,
        Some(json!({"name": "r", "cron": "0 2 * * *", "duration_secs": 60, "tags": ["db"]})),
    )
    .await
    .assert_error(403, "FORBIDDEN", None);
    let r = s
        .call(
            Some(&write),
            Method::POST,
            base,
            Some(json!({"name": "w", "cron": "0 2 * * *", "duration_secs": 60, "tags": ["db"]})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);

    // Delete.
    assert_eq!(
        s.delete(&format!("{base}/{later_id}", later_id = later["id"]))
            .await
            .status,
        204
    );
    s.get(&format!("{base}/{}", later["id"]))
        .await
        .assert_error(404, "MAINTENANCE_WINDOW_NOT_FOUND", None);
    s.delete(&format!("{base}/{}", later["id"]))
        .await
        .assert_error(404, "MAINTENANCE_WINDOW_NOT_FOUND", None);
}

// The built-in `webhook` notifier against a local sink (needs the built-in notifiers).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_test_alert_of_an_unsaved_channel_reaches_the_sink() {
    let s = api::start(None).await;
    let sink = Sink::start().await;
    let r = s
        .post(
            "/api/v1/channels/test",
            json!({"name": "hook", "plugin": "webhook", "config": {"url": sink.url("/hook")}}),
        )
        .await
        .ok(200);
    assert_eq!(r["delivered"], true, "{r}");
    let got = sink.wait_for(1, Duration::from_secs(30)).await;
    assert_eq!(got[0].path, "/hook");
    let event = got[0].json();
    assert_eq!(event["kind"], "test", "{event}");
    assert!(
        got[0].header("idempotency-key").is_some(),
        "{:?}",
        got[0].headers
    );
    assert_eq!(s.get("/api/v1/channels").await.ok(200)["total"], 0);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_test_alert_of_a_saved_channel_uses_its_secret() {
    let s = api::start(None).await;
    let sink = Sink::start().await;
    let r = s
        .post(
            "/api/v1/channels",
            json!({"name": "hook", "plugin": "webhook",
                   "config": {"url": sink.url("/saved"), "bearer_token": "tok_123"}}),
        )
        .await
        .ok(201);
    assert_eq!(r["config"]["bearer_token"], "***");
    let id = r["id"].as_i64().expect("id");
    let r = s
        .post_empty(&format!("/api/v1/channels/{id}/test"))
        .await
        .ok(200);
    assert_eq!(r["delivered"], true, "{r}");
    let got = sink.wait_for(1, Duration::from_secs(30)).await;
    assert_eq!(got[0].header("authorization"), Some("Bearer tok_123"));
    // A failing destination: delivered false, the status in the message.
    sink.set_default(support::sink::Reply::text(500, "boom"));
    let r = s
        .post_empty(&format!("/api/v1/channels/{id}/test"))
        .await
        .ok(200);
    assert_eq!(r["delivered"], false, "{r}");
    assert!(
        r["message"].as_str().is_some_and(|m| m.contains("500")),
        "{r}"
    );
    s.stop().await;
}
