//! Alerting end to end: a real server (in-process, and the real binary for the crash test)
//! checks loopback targets that flip between up and down, the incident engine opens and
//! resolves incidents, and the dispatcher delivers through the built-in `webhook` notifier
//! plugin to a recording sink on 127.0.0.1. SQLite, and PostgreSQL for the core scenario.

mod support;

use std::time::{Duration, Instant};

use pharos::config::ServeConfig;
use reqwest::Method;
use serde_json::{Value, json};
use support::api::{ADMIN, TestServer, start_with};
use support::db;
use support::process::{Launch, Pharos};
use support::sink::{Received, Reply, Sink};

/// Fast alerting for tests: quick retries and polling, a short flap window.
fn tune(c: &mut ServeConfig) {
    c.pipeline.flush_ms = 20;
    c.scheduler.jitter = 0.0;
    c.alerting.retry_base_ms = 200;
    c.alerting.retry_max_ms = 400;
    c.alerting.poll_ms = 20;
    c.alerting.flap_threshold = 3;
    c.alerting.flap_window_secs = 8;
}

async fn server(database_url: Option<String>) -> TestServer {
    start_with(database_url, tune).await
}

/// A webhook channel to `sink`; `extra` is merged into the body.
async fn channel(s: &TestServer, name: &str, sink: &Sink, extra: Value) -> i64 {
    let mut body = json!({
        "name": name,
        "plugin": "webhook",
        "config": {"url": sink.url("/hook")},
    });
    merge(&mut body, extra);
    let r = s.post("/api/v1/channels", body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["id"].as_i64().expect("channel id")
}

/// An HTTP monitor of `target` checked every second; `extra` is merged into the body.
async fn monitor(s: &TestServer, name: &str, target: &Sink, extra: Value) -> i64 {
    let mut body = json!({
        "name": name,
        "type": "check",
        "plugin": "http",
        "config": {"url": target.url("/")},
        "interval_secs": 1,
        "timeout_ms": 1000,
    });
    merge(&mut body, extra);
    let r = s.post("/api/v1/monitors", body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["id"].as_i64().expect("monitor id")
}

fn merge(into: &mut Value, extra: Value) {
    if let (Some(into), Value::Object(extra)) = (into.as_object_mut(), extra) {
        into.extend(extra);
    }
}

/// A target answering 200 (up) until flipped.
async fn target() -> Sink {
    let t = Sink::start().await;
    t.set_default(Reply::text(200, "ok"));
    t
}

fn down(t: &Sink) {
    t.set_default(Reply::text(500, "broken"));
}

fn up(t: &Sink) {
    t.set_default(Reply::text(200, "ok"));
}

/// The `kind` of each event the webhook delivered (2xx answers only), in arrival order.
fn kinds(received: &[Received]) -> Vec<String> {
    received
        .iter()
        .filter(|r| (200..300).contains(&r.answered))
        .map(|r| r.json()["kind"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// Polls `f` every 50 ms until it returns `Some`, panicking with `what` after `limit`.
async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the monitor's live status is `status`.
async fn wait_status(s: &TestServer, id: i64, status: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let m = s.get(&format!("/api/v1/monitors/{id}")).await;
        if m.body["status"] == status {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "monitor {id} did not become {status}: {}",
            m.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The incidents of a monitor, newest first.
async fn incidents(s: &TestServer, monitor: i64) -> Vec<Value> {
    let r = s
        .get(&format!("/api/v1/incidents?monitor_id={monitor}"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["items"].as_array().cloned().unwrap_or_default()
}

/// Down then up: exactly one `opened` after `failure_threshold` failures and one `resolved`,
/// with the incident's timeline and delivery attempts recorded.
async fn down_and_up_notify_once_each(s: &TestServer) {
    let hook = Sink::start().await;
    let t = target().await;
    let ch = channel(s, "ops", &hook, json!({})).await;
    let m = monitor(
        s,
        "api",
        &t,
        json!({"channels": [ch], "failure_threshold": 2}),
    )
    .await;
    wait_status(s, m, "up").await;

    down(&t);
    let flipped = Instant::now();
    let got = hook.wait_for(1, Duration::from_secs(15)).await;
    let latency = flipped.elapsed();
    let downs = s
        .get(&format!("/api/v1/monitors/{m}/results?status=down"))
        .await;
    assert!(
        downs.body["total"].as_i64().unwrap_or(0) >= 2,
        "the incident opened only after two failing results: {}",
        downs.body
    );
    let opened = got[0].json();
    assert_eq!(opened["kind"], "incident.opened", "{opened}");
    assert_eq!(opened["monitor"]["name"], "api");
    assert_eq!(opened["status"], "down");
    assert_eq!(opened["title"], "[DOWN] api");
    assert_eq!(got[0].header("x-pharos-event"), Some("incident.opened"));
    assert!(got[0].header("idempotency-key").is_some());
    eprintln!("target down -> webhook received: {latency:?} (interval 1 s x threshold 2)");

    // Still down: nothing more.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(kinds(&hook.received()), ["incident.opened"]);

    up(&t);
    let got = hook.wait_for(2, Duration::from_secs(15)).await;
    let resolved = got[1].json();
    assert_eq!(resolved["kind"], "incident.resolved", "{resolved}");
    assert_eq!(resolved["incident"]["id"], opened["incident"]["id"]);
    assert_eq!(resolved["dedup_key"], opened["dedup_key"]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        kinds(&hook.received()),
        ["incident.opened", "incident.resolved"]
    );

    let list = incidents(s, m).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["status"], "resolved");
    let id = list[0]["id"].as_i64().expect("incident id");
    let detail = s.get(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(detail.status, 200, "{}", detail.body);
    let timeline: Vec<&str> = detail.body["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    for kind in ["opened", "resolved", "notification"] {
        assert!(timeline.contains(&kind), "{kind} in {timeline:?}");
    }
    let sent = s
        .get(&format!("/api/v1/notifications?incident_id={id}"))
        .await;
    assert_eq!(sent.body["total"], 2, "{}", sent.body);
    for n in sent.body["items"].as_array().expect("items") {
        assert_eq!(n["status"], "delivered", "{n}");
        assert_eq!(n["attempts"], 1, "{n}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_down_and_up_notify_once_each() {
    let s = server(None).await;
    down_and_up_notify_once_each(&s).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_and_up_notify_once_each() {
    let Some(url) = db::postgres_url().await else {
        return;
    };
    let s = server(Some(url)).await;
    down_and_up_notify_once_each(&s).await;
    s.stop().await;
}

/// A target flapping every check: one `flapping` notice, then silence until it settles, then
/// one `flapping_ended`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flapping_sends_one_notice_and_suppresses() {
    let s = server(None).await;
    let hook = Sink::start().await;
    let t = target().await;
    let ch = channel(&s, "ops", &hook, json!({})).await;
    let m = monitor(
        &s,
        "flappy",
        &t,
        json!({"channels": [ch], "failure_threshold": 1, "recovery_threshold": 1}),
    )
    .await;
    wait_status(&s, m, "up").await;
    // Alternate down/up on every check for ~10 checks.
    let script: Vec<Reply> = (0..10)
        .map(|i| {
            if i % 2 == 0 {
                Reply::text(500, "broken")
            } else {
                Reply::text(200, "ok")
            }
        })
        .collect();
    t.script(script);
    eventually(Duration::from_secs(20), "a flapping notice", || async {
        kinds(&hook.received())
            .contains(&"monitor.flapping".to_string())
            .then_some(())
    })
    .await;
    // Let the script run out; the target stays up afterwards.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let seen = kinds(&hook.received());
    let at = seen
        .iter()
        .position(|k| k == "monitor.flapping")
        .expect("flapping notice");
    assert_eq!(
        seen.iter().filter(|k| *k == "monitor.flapping").count(),
        1,
        "{seen:?}"
    );
    assert!(
        seen[at + 1..].iter().all(|k| !k.starts_with("incident.")),
        "no open/resolve notices while flapping: {seen:?}"
    );
    assert!(
        at <= 4,
        "flapping detected after at most 4 changes: {seen:?}"
    );
    eventually(
        Duration::from_secs(20),
        "the flapping-ended notice",
        || async {
            kinds(&hook.received())
                .contains(&"monitor.flapping_ended".to_string())
                .then_some(())
        },
    )
    .await;
    let ended = hook
        .received()
        .into_iter()
        .map(|r| r.json())
        .find(|e| e["kind"] == "monitor.flapping_ended")
        .expect("ended");
    assert_eq!(ended["status"], "up", "{ended}");
    s.stop().await;
}

/// During a maintenance window a down monitor is not notified and its results are marked;
/// after the window the outage is notified.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_window_suppresses() {
    let s = server(None).await;
    let hook = Sink::start().await;
    let t = target().await;
    let ch = channel(&s, "ops", &hook, json!({})).await;
    let m = monitor(
        &s,
        "db",
        &t,
        json!({"channels": [ch], "failure_threshold": 1, "tags": ["db"]}),
    )
    .await;
    wait_status(&s, m, "up").await;
    let now = chrono::Utc::now();
    let w = s
        .post(
            "/api/v1/maintenance-windows",
            json!({
                "name": "upgrade",
                "starts_at": (now - chrono::Duration::minutes(1)).to_rfc3339(),
                "ends_at": (now + chrono::Duration::hours(1)).to_rfc3339(),
                "tags": ["db"],
            }),
        )
        .await;
    assert_eq!(w.status, 201, "{}", w.body);
    down(&t);
    wait_status(&s, m, "down").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(hook.received().is_empty(), "{:?}", kinds(&hook.received()));
    assert!(
        incidents(&s, m).await.is_empty(),
        "no incident in maintenance"
    );
    let results = s
        .get(&format!("/api/v1/monitors/{m}/results?status=down"))
        .await;
    let items = results.body["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(!items.is_empty());
    assert!(
        items.iter().all(|r| r["maintenance"] == true),
        "{}",
        results.body
    );

    let id = w.body["id"].as_i64().expect("window id");
    let r = s.delete(&format!("/api/v1/maintenance-windows/{id}")).await;
    assert_eq!(r.status, 204, "{}", r.body);
    let got = hook.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(got[0].json()["kind"], "incident.opened");
    s.stop().await;
}

/// While a parent is down, the child's incident is recorded as suppressed and not notified.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parent_outage_suppresses_the_child() {
    let s = server(None).await;
    let hook = Sink::start().await;
    let (tp, tc) = (target().await, target().await);
    let ch = channel(&s, "ops", &hook, json!({"default": true})).await;
    let _ = ch;
    let parent = monitor(&s, "router", &tp, json!({"failure_threshold": 1})).await;
    wait_status(&s, parent, "up").await;
    down(&tp);
    let got = hook.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(got[0].json()["monitor"]["name"], "router");
    let child = monitor(
        &s,
        "app behind router",
        &tc,
        json!({"failure_threshold": 1, "depends_on": [parent]}),
    )
    .await;
    down(&tc);
    let child_incident = eventually(Duration::from_secs(15), "the child's incident", || async {
        incidents(&s, child).await.into_iter().next()
    })
    .await;
    assert_eq!(child_incident["suppressed"], "parent", "{child_incident}");
    assert_eq!(child_incident["suppressed_by"], parent);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        kinds(&hook.received()),
        ["incident.opened"],
        "only the parent was notified"
    );
    s.stop().await;
}

/// Over a channel's storm cap, notifications are held and sent as one digest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storm_cap_produces_a_digest() {
    let s = server(None).await;
    let hook = Sink::start().await;
    let t = target().await;
    let ch = channel(
        &s,
        "ops",
        &hook,
        json!({"storm_limit": 2, "storm_window_secs": 10}),
    )
    .await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            monitor(
                &s,
                &format!("svc {i}"),
                &t,
                json!({"channels": [ch], "failure_threshold": 1}),
            )
            .await,
        );
    }
    for id in &ids {
        wait_status(&s, *id, "up").await;
    }
    down(&t);
    // Every one of the five openings arrives once: alone (at most two per storm window) or
    // inside a digest. (The five usually land in one window: two alone, one digest of three;
    // when they straddle a window boundary the split differs, never the total.)
    let covered = |got: &[Received]| -> (usize, Vec<Value>) {
        let events: Vec<Value> = got
            .iter()
            .filter(|r| (200..300).contains(&r.answered))
            .map(|r| r.json())
            .collect();
        let alone = events
            .iter()
            .filter(|e| e["kind"] == "incident.opened")
            .count();
        let digests: Vec<Value> = events
            .into_iter()
            .filter(|e| e["kind"] == "digest")
            .collect();
        let in_digests: u64 = digests
            .iter()
            .map(|d| d["digest"]["count"].as_u64().unwrap_or(0))
            .sum();
        (alone + in_digests as usize, digests)
    };
    let digests = eventually(Duration::from_secs(40), "five openings covered", || async {
        let (n, digests) = covered(&hook.received());
        (n >= 5).then_some(digests)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = hook.received();
    let (n, _) = covered(&got);
    assert_eq!(n, 5, "each opening exactly once: {:?}", kinds(&got));
    assert!(!digests.is_empty(), "the overflow became a digest");
    let alone = kinds(&got)
        .iter()
        .filter(|k| *k == "incident.opened")
        .count();
    assert!(
        alone <= 4,
        "at most two alone per window: {:?}",
        kinds(&got)
    );
    let held: u64 = digests
        .iter()
        .map(|d| d["digest"]["count"].as_u64().unwrap_or(0))
        .sum();
    let first = &digests[0];
    assert_eq!(
        first["title"],
        format!("[DIGEST] {} alerts held back", first["digest"]["count"]),
        "{first}"
    );
    let digested = s
        .get(&format!(
            "/api/v1/notifications?channel_id={ch}&status=digested"
        ))
        .await;
    assert_eq!(digested.body["total"], held, "{}", digested.body);
    s.stop().await;
}

/// A channel failing three times (HTTP 500) then succeeding is delivered once, after four
/// attempts with one idempotency key; a permanent failure (HTTP 400) stops at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried_and_delivered_once() {
    let s = server(None).await;
    let hook = Sink::start().await;
    hook.script([
        Reply::text(500, "oops"),
        Reply::text(502, "bad gateway"),
        Reply::text(503, "unavailable"),
    ]);
    let t = target().await;
    let ch = channel(&s, "flaky", &hook, json!({})).await;
    let m = monitor(
        &s,
        "api",
        &t,
        json!({"channels": [ch], "failure_threshold": 1}),
    )
    .await;
    wait_status(&s, m, "up").await;
    down(&t);
    let got = hook.wait_for(4, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let all = hook.received();
    assert_eq!(all.len(), 4, "three failures and one success");
    assert_eq!(hook.accepted().len(), 1, "delivered once");
    let key = got[0].header("idempotency-key").expect("key").to_string();
    assert!(
        all.iter()
            .all(|r| r.header("idempotency-key") == Some(&key))
    );
    let list = s
        .get(&format!("/api/v1/notifications?channel_id={ch}"))
        .await;
    let n = &list.body["items"][0];
    assert_eq!(n["status"], "delivered", "{n}");
    assert_eq!(n["attempts"], 4, "{n}");
    let detail = s.get(&format!("/api/v1/notifications/{}", n["id"])).await;
    let outcomes: Vec<&str> = detail.body["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .filter_map(|a| a["outcome"].as_str())
        .collect();
    assert_eq!(
        outcomes,
        ["transient", "transient", "transient", "delivered"]
    );

    // A permanent failure is not retried, and can be retried by hand.
    let hook2 = Sink::start().await;
    hook2.set_default(Reply::text(400, "bad payload"));
    let ch2 = channel(&s, "broken", &hook2, json!({})).await;
    let t2 = target().await;
    let m2 = monitor(
        &s,
        "api2",
        &t2,
        json!({"channels": [ch2], "failure_threshold": 1}),
    )
    .await;
    wait_status(&s, m2, "up").await;
    down(&t2);
    hook2.wait_for(1, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(hook2.received().len(), 1, "permanent failures stop at once");
    let list = s
        .get(&format!("/api/v1/notifications?channel_id={ch2}"))
        .await;
    let n = list.body["items"][0].clone();
    assert_eq!(n["status"], "failed", "{n}");
    assert!(
        n["last_error"].as_str().unwrap_or("").contains("400"),
        "{n}"
    );
    let id = n["id"].as_i64().expect("id");
    hook2.set_default(Reply::text(200, "ok"));
    let r = s
        .post_empty(&format!("/api/v1/notifications/{id}/retry"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    hook2.wait_for(2, Duration::from_secs(15)).await;
    let r = s
        .post_empty(&format!("/api/v1/notifications/{id}/retry"))
        .await;
    r.assert_error(409, "NOTIFICATION_NOT_RETRYABLE", None);
    let r = s.post_empty("/api/v1/notifications/999999/retry").await;
    r.assert_error(404, "NOTIFICATION_NOT_FOUND", None);
    s.stop().await;
}

/// Reminders are queued while an incident stays open and unacknowledged, once per interval;
/// acknowledging stops them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminders_until_acknowledged() {
    let s = server(None).await;
    let hook = Sink::start().await;
    let t = target().await;
    let ch = channel(&s, "ops", &hook, json!({})).await;
    let m = monitor(
        &s,
        "api",
        &t,
        json!({"channels": [ch], "failure_threshold": 1, "renotify_interval_secs": 60}),
    )
    .await;
    wait_status(&s, m, "up").await;
    down(&t);
    hook.wait_for(1, Duration::from_secs(15)).await;
    let store = s.server.as_ref().expect("server").app().store.clone();
    let later = chrono::Utc::now() + chrono::Duration::seconds(61);
    let n = store
        .queue_reminders(later, 100, |_, _, _| false)
        .await
        .expect("reminders");
    assert_eq!(n, 1);
    let id = incidents(&s, m).await[0]["id"].as_i64().expect("id");
    // The reminder is queued for the (simulated) time it was due; the dispatcher sends it then.
    let queued = s
        .get(&format!("/api/v1/notifications?incident_id={id}"))
        .await;
    let events: Vec<&str> = queued.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|n| n["event"].as_str())
        .collect();
    assert_eq!(events, ["reminder", "opened"], "{}", queued.body);
    assert_eq!(queued.body["items"][0]["status"], "pending");
    let detail = s.get(&format!("/api/v1/incidents/{id}")).await;
    assert!(
        detail.body["timeline"]
            .as_array()
            .expect("timeline")
            .iter()
            .any(|e| e["kind"] == "reminder"),
        "{}",
        detail.body
    );
    // Not again within the interval.
    assert_eq!(
        store
            .queue_reminders(later + chrono::Duration::seconds(30), 100, |_, _, _| false)
            .await
            .expect("reminders"),
        0
    );
    let r = s
        .post(&format!("/api/v1/incidents/{id}/acknowledge"), json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        store
            .queue_reminders(later + chrono::Duration::seconds(600), 100, |_, _, _| false)
            .await
            .expect("reminders"),
        0,
        "acknowledged incidents are not reminded"
    );
    s.stop().await;
}

/// The real binary killed (SIGKILL) after an incident's transition was committed but before
/// its notification got through delivers it after restart, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notification_survives_sigkill_and_is_delivered_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Reserve a port for the webhook sink, which is not listening yet: deliveries fail
    // (connection refused, transient) until it starts.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let config = dir.path().join("pharos.toml");
    std::fs::write(
        &config,
        "[alerting]\nretry_base_ms = 300\nretry_max_ms = 600\npoll_ms = 20\n\
         [pipeline]\nflush_ms = 20\n[scheduler]\njitter = 0.0\n",
    )
    .expect("config");
    let mut launch = Launch::new(dir.path());
    launch.admin_token = Some(ADMIN.to_string());
    launch
        .env
        .push(("PHAROS_CONFIG".into(), config.display().to_string()));
    let first = Pharos::start(&launch);
    let http = reqwest::Client::new();
    let call = |method: Method, url: String, body: Option<Value>| {
        let http = http.clone();
        async move {
            let mut req = http.request(method, url).bearer_auth(ADMIN);
            if let Some(b) = body {
                req = req.json(&b);
            }
            let resp = req.send().await.expect("request");
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            (status, body)
        }
    };
    let t = target().await;
    let (status, ch) = call(
        Method::POST,
        first.url("/api/v1/channels"),
        Some(json!({"name": "ops", "plugin": "webhook",
            "config": {"url": format!("http://127.0.0.1:{port}/hook")}})),
    )
    .await;
    assert_eq!(status, 201, "{ch}");
    let (status, m) = call(
        Method::POST,
        first.url("/api/v1/monitors"),
        Some(json!({"name": "api", "type": "check", "plugin": "http",
            "config": {"url": t.url("/")}, "interval_secs": 1, "timeout_ms": 1000,
            "failure_threshold": 1, "channels": [ch["id"]]})),
    )
    .await;
    assert_eq!(status, 201, "{m}");
    down(&t);
    // Wait until the notification exists and has failed at least once.
    let list_url = first.url("/api/v1/notifications");
    eventually(Duration::from_secs(20), "a failed delivery attempt", || {
        let (call, url) = (&call, list_url.clone());
        async move {
            let (_, body) = call(Method::GET, url, None).await;
            (body["items"][0]["attempts"].as_i64().unwrap_or(0) >= 1).then_some(())
        }
    })
    .await;
    first.kill();

    let hook = Sink::start_on(&format!("127.0.0.1:{port}")).await;
    let second = Pharos::start(&launch);
    let got = hook.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(got[0].json()["kind"], "incident.opened");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(hook.received().len(), 1, "delivered once after the restart");
    let (_, body) = call(Method::GET, second.url("/api/v1/notifications"), None).await;
    assert_eq!(body["total"], 1, "{body}");
    assert_eq!(body["items"][0]["status"], "delivered", "{body}");
    let _ = second.terminate();
}
