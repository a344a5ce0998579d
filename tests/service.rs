//! End-to-end tests of `pharos serve` as a real process, on SQLite and on PostgreSQL: first
//! start and the admin key, results arriving on schedule from a loopback target, heartbeats on
//! time / late / on a cron schedule, restart keeping everything, and graceful shutdown losing
//! no acknowledged result.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::process::{Launch, Pharos};
use support::servers;

/// A small JSON client for the API.
struct Api {
    base: String,
    key: String,
    http: reqwest::Client,
}

impl Api {
    fn new(p: &Pharos, key: &str) -> Self {
        Self {
            base: p.url(""),
            key: key.to_string(),
            http: reqwest::Client::new(),
        }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    async fn create(&self, body: Value) -> Value {
        let (status, v) = self.post("/api/v1/monitors", body).await;
        assert_eq!(status, 201, "{v}");
        v
    }

    async fn results(&self, id: i64) -> Vec<Value> {
        let (status, v) = self
            .get(&format!("/api/v1/monitors/{id}/results?limit=500"))
            .await;
        assert_eq!(status, 200, "{v}");
        v["items"].as_array().cloned().unwrap_or_default()
    }

    /// Polls until the monitor's live status is `status`.
    async fn wait_status(&self, id: i64, status: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let (_, got) = self.get(&format!("/api/v1/monitors/{id}")).await;
            if got["status"] == status {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "monitor {id} never became {status}: {got}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Polls until `id` has at least `n` results (or panics after `limit`).
    async fn wait_results(&self, id: i64, n: usize, limit: Duration) -> Vec<Value> {
        let deadline = Instant::now() + limit;
        loop {
            let items = self.results(id).await;
            if items.len() >= n {
                return items;
            }
            assert!(
                Instant::now() < deadline,
                "monitor {id}: {} results after {limit:?}, wanted {n}",
                items.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Which database a test runs against.
enum Db {
    Sqlite,
    Postgres(String),
}

impl Db {
    async fn postgres() -> Option<Db> {
        support::db::postgres_url().await.map(Db::Postgres)
    }

    fn launch(&self, dir: &std::path::Path) -> Launch {
        let mut launch = Launch::new(dir);
        if let Db::Postgres(url) = self {
            launch.database_url = Some(url.clone());
        }
        launch
    }
}

/// Runs `$name(db)` once on SQLite and once on PostgreSQL.
macro_rules! on_both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(super::Db::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(db) = super::Db::postgres().await {
                    super::$name(db).await;
                }
            }
        }
    };
}

on_both!(first_start_restart_and_schedule);
on_both!(shutdown_loses_no_acknowledged_ping);
on_both!(heartbeats_on_time_late_and_cron);

fn id_of(v: &Value) -> i64 {
    v["id"].as_i64().unwrap_or_else(|| panic!("no id in {v}"))
}

fn started_at(v: &Value) -> chrono::DateTime<chrono::Utc> {
    v["started_at"]
        .as_str()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_else(|| panic!("no started_at in {v}"))
}

async fn first_start_restart_and_schedule(db: Db) {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = servers::http().await;
    let launch = db.launch(dir.path());

    // First start: a generated admin key is printed once, with where to go.
    let p = Pharos::start(&launch);
    let key = p
        .generated_key
        .clone()
        .unwrap_or_else(|| panic!("first start prints an admin key:\n{}", p.banner));
    assert!(p.banner.contains("Dashboard:"), "{}", p.banner);
    let api = Api::new(&p, &key);
    let monitor = api
        .create(json!({
            "name": "loopback",
            "plugin": "http",
            "config": {"url": format!("http://{}/", target.addr)},
            "interval_secs": 1,
            "timeout_ms": 900,
            "tags": ["e2e"],
        }))
        .await;
    let id = id_of(&monitor);

    // Results arrive on schedule: about one per second, all up.
    let results = api.wait_results(id, 4, Duration::from_secs(20)).await;
    assert!(results.iter().all(|r| r["status"] == "up"), "{results:#?}");
    let mut times: Vec<_> = results.iter().map(started_at).collect();
    times.sort();
    let gaps: Vec<f64> = times
        .windows(2)
        .map(|w| (w[1] - w[0]).num_milliseconds() as f64 / 1000.0)
        .collect();
    let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
    assert!(
        (0.7..=1.6).contains(&mean),
        "results should come about every second, mean gap {mean:.2}s ({gaps:?})"
    );
    assert!(
        gaps.iter().all(|g| *g >= 0.5),
        "no overlapping or burst runs: {gaps:?}"
    );
    let (_, got) = api.get(&format!("/api/v1/monitors/{id}")).await;
    assert_eq!(got["status"], "up", "live state follows results: {got}");

    assert!(p.terminate().success(), "graceful exit");
    let stored_before = {
        // Restart: nothing printed about a new key, the old key works, everything is there.
        let p = Pharos::start(&launch);
        assert!(
            p.generated_key.is_none(),
            "key printed again:\n{}",
            p.banner
        );
        assert!(p.banner.contains("first start"), "{}", p.banner);
        let api = Api::new(&p, &key);
        let (status, got) = api.get(&format!("/api/v1/monitors/{id}")).await;
        assert_eq!(status, 200, "{got}");
        assert_eq!(got["name"], "loopback");
        assert_eq!(got["tags"], json!(["e2e"]));
        let n = api.results(id).await.len();
        assert!(n >= results.len(), "results kept across restart: {n}");
        // And scheduling resumes.
        api.wait_results(id, n + 2, Duration::from_secs(20)).await;
        assert!(p.terminate().success());
        n
    };
    assert!(stored_before >= 4);

    // A wrong key is refused with the error envelope.
    let p = Pharos::start(&launch);
    let bad = Api::new(&p, "phk_not-a-key");
    let (status, body) = bad.get("/api/v1/monitors").await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "UNAUTHORIZED", "{body}");
    p.kill();
}

async fn shutdown_loses_no_acknowledged_ping(db: Db) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut launch = db.launch(dir.path());
    launch.admin_token = Some("phk_test_admin_token_for_shutdown".into());
    let p = Pharos::start(&launch);
    let api = Api::new(&p, "phk_test_admin_token_for_shutdown");
    let monitor = api
        .create(json!({"name": "job", "type": "push", "interval_secs": 3600}))
        .await;
    let id = id_of(&monitor);
    let push_url = monitor["push_url"].as_str().expect("push_url").to_string();
    assert!(push_url.contains("/api/v1/push/"), "{push_url}");

    // Fire pings from 16 concurrent senders and stop the server while they are in flight.
    let client = reqwest::Client::new();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut senders = Vec::new();
    for _ in 0..16 {
        let (client, url, stop) = (client.clone(), push_url.clone(), stop.clone());
        senders.push(tokio::spawn(async move {
            let mut acked = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match client.post(&url).send().await {
                    Ok(r) if r.status().is_success() => acked += 1,
                    _ => break,
                }
            }
            acked
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let term = tokio::task::spawn_blocking(move || p.terminate());
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut acked = 0;
    for s in senders {
        acked += s.await.expect("sender");
    }
    assert!(term.await.expect("join").success(), "graceful exit");
    assert!(acked > 100, "pings were acknowledged: {acked}");

    let p = Pharos::start(&launch);
    let api = Api::new(&p, "phk_test_admin_token_for_shutdown");
    let (status, page) = api
        .get(&format!("/api/v1/monitors/{id}/results?limit=1"))
        .await;
    assert_eq!(status, 200, "{page}");
    let stored = page["total"].as_u64().expect("total");
    // Every acknowledged ping is stored; at most one per sender was processed but its answer
    // lost in the shutdown.
    assert!(
        stored >= acked && stored <= acked + 16,
        "acknowledged {acked}, stored {stored}"
    );
    p.kill();
}

async fn heartbeats_on_time_late_and_cron(db: Db) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut launch = db.launch(dir.path());
    launch.admin_token = Some("phk_test_admin_token_for_heartbeat".into());
    let p = Pharos::start(&launch);
    let api = Api::new(&p, "phk_test_admin_token_for_heartbeat");
    let client = reqwest::Client::new();

    // Every 2 s with 1 s grace: pinged every 500 ms it stays up.
    let every = api
        .create(json!({"name": "every", "type": "push", "interval_secs": 2,
                       "push": {"grace_secs": 1}}))
        .await;
    let every_id = id_of(&every);
    let url = every["push_url"].as_str().expect("push_url").to_string();
    for i in 0..8 {
        let r = client
            .get(format!("{url}?msg=run%20{i}"))
            .send()
            .await
            .expect("ping");
        assert_eq!(r.status(), 200);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Each acknowledged ping is one stored result (the last may still be in the pipeline).
    let results = api.wait_results(every_id, 8, Duration::from_secs(5)).await;
    assert_eq!(results.len(), 8, "{results:#?}");
    assert!(results.iter().all(|r| r["status"] == "up"), "{results:#?}");
    assert!(
        results.iter().any(|r| r["message"] == "run 3"),
        "{results:#?}"
    );

    // Late: no ping for 2 s + 1 s grace → one `down` per missed period.
    let late = api.wait_results(every_id, 9, Duration::from_secs(10)).await;
    let newest = &late[0];
    assert_eq!(newest["status"], "down", "{late:#?}");
    assert_eq!(newest["error_cause"], "no_heartbeat", "{newest}");
    api.wait_status(every_id, "down", Duration::from_secs(5))
        .await;

    // `/fail` reports down at once; a ping brings it back up.
    let r = client
        .post(format!("{url}/fail"))
        .send()
        .await
        .expect("fail");
    assert_eq!(r.status(), 200);
    let r = client
        .post(format!("{url}/start"))
        .send()
        .await
        .expect("start");
    assert_eq!(r.status(), 200);
    let r = client.post(url.to_string()).send().await.expect("ping");
    assert_eq!(r.status(), 200);
    api.wait_status(every_id, "up", Duration::from_secs(5))
        .await;

    // Cron: every second in a named zone, 1 s grace, never pinged → down soon.
    let cron = api
        .create(json!({"name": "cron", "type": "push",
                       "push": {"cron": "* * * * * *", "timezone": "Europe/Berlin", "grace_secs": 1}}))
        .await;
    let down = api
        .wait_results(id_of(&cron), 1, Duration::from_secs(10))
        .await;
    assert_eq!(down[0]["status"], "down", "{down:#?}");
    // A bad cron expression or zone is a 400 naming the field.
    let (status, body) = api
        .post(
            "/api/v1/monitors",
            json!({"name": "bad", "type": "push", "push": {"cron": "every day"}}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "/push/cron", "{body}");
    let (status, body) = api
        .post(
            "/api/v1/monitors",
            json!({"name": "bad", "type": "push", "push": {"cron": "0 * * * *", "timezone": "Mars/Base"}}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "/push/timezone", "{body}");
    // Unknown push tokens are 404 with the envelope.
    let r = client
        .get(p.url("/api/v1/push/nope"))
        .send()
        .await
        .expect("unknown");
    assert_eq!(r.status(), 404);
    p.kill();
}

#[test]
fn bad_configuration_exits_2_naming_the_variable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pharos"))
        .arg("serve")
        .env("PHAROS_DATA_DIR", dir.path())
        .env("PHAROS_LISTEN", "not-an-address")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("PHAROS_LISTEN"), "{err}");
}
