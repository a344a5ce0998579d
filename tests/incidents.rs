//! The incident engine and the incidents API, on SQLite and PostgreSQL.
//!
//! The engine tests drive `Store::insert_results` with synthetic results at chosen times and
//! look at incidents, timelines, outbox rows and results through the store and raw SQL. The API
//! tests start the real server in-process, create monitors and results through its store (the
//! scheduler does not know these monitors, so nothing else writes results) and call the
//! incident routes over HTTP.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use chrono::{DateTime, TimeDelta};
use pharos::config::ServeConfig;
use pharos::incidents::EngineSettings;
use pharos::model::{
    AlertPolicy, ChannelSpec, DEFAULT_WORKSPACE, Incident, IncidentFilter, IncidentStatus,
    MaintenanceSpec, MonitorSpec, MonitorType, NewResult, ResultQuery, Severity, Status, Timestamp,
    Timings,
};
use pharos::runtime::RuntimeConfig;
use pharos::store::{Backend, BulkAction, Store};
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::Row;
use support::db::{postgres_url, sqlite_url};

use Status::{Degraded, Down, Error, Up};

/// A store under test plus what is needed to look behind it.
struct Ctx {
    store: Store,
    url: String,
    _dir: Option<tempfile::TempDir>,
}

/// One outbox row.
#[derive(Debug, Clone)]
struct Outbox {
    channel_id: i64,
    incident_id: Option<i64>,
    event: String,
    key: String,
    payload: Value,
    status: String,
    attempts: i64,
}

impl Ctx {
    async fn sqlite() -> Ctx {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = sqlite_url(dir.path());
        let store = Store::connect(&url).await.expect("connect sqlite");
        assert_eq!(store.backend(), Backend::Sqlite);
        Ctx {
            store,
            url,
            _dir: Some(dir),
        }
    }

    async fn postgres() -> Option<Ctx> {
        let url = postgres_url().await?;
        let store = Store::connect(&url).await.expect("connect postgres");
        assert_eq!(store.backend(), Backend::Postgres);
        Some(Ctx {
            store,
            url,
            _dir: None,
        })
    }

    /// Rows of a raw query on a separate pool.
    async fn rows(&self, sql: &str) -> Vec<sqlx::any::AnyRow> {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&self.url).await.expect("raw pool");
        let rows = sqlx::query(sql).fetch_all(&pool).await.expect(sql);
        pool.close().await;
        rows
    }

    /// Runs a raw statement.
    async fn exec(&self, sql: &str) {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&self.url).await.expect("raw pool");
        sqlx::query(sql).execute(&pool).await.expect(sql);
        pool.close().await;
    }

    /// One integer from a raw query.
    async fn scalar(&self, sql: &str) -> i64 {
        self.rows(sql).await[0].try_get::<i64, _>(0).expect(sql)
    }

    /// Creates a check monitor with tags and an alert policy; its id.
    async fn monitor(&self, name: &str, tags: &[&str], alert: AlertPolicy) -> i64 {
        self.store
            .create_monitor(DEFAULT_WORKSPACE, &spec(name, tags, alert), None)
            .await
            .expect("create monitor")
            .id
    }

    /// Creates a channel; its id.
    async fn channel(&self, name: &str, default: bool, tags: &[&str], enabled: bool) -> i64 {
        let spec = ChannelSpec {
            name: name.to_string(),
            plugin: "webhook".to_string(),
            config: json!({"url": "http://127.0.0.1:9/hook"}),
            enabled,
            is_default: default,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            storm_limit: 0,
            storm_window_secs: 300,
        };
        self.store
            .create_channel(DEFAULT_WORKSPACE, &spec)
            .await
            .expect("create channel")
            .id
    }

    /// Stores results (one batch).
    async fn feed(&self, results: &[NewResult]) {
        self.store.insert_results(results).await.expect("insert");
    }

    /// Stores one result per `(minute, status)` of monitor `id`, one batch each.
    async fn feed_each(&self, id: i64, results: &[(i64, Status)]) {
        for (minute, status) in results {
            self.feed(&[res(id, *minute, *status)]).await;
        }
    }

    /// Incidents of a monitor, oldest first.
    async fn incidents(&self, monitor: i64) -> Vec<Incident> {
        let mut items = self
            .store
            .list_incidents(
                DEFAULT_WORKSPACE,
                &IncidentFilter {
                    monitor_id: Some(monitor),
                    limit: 500,
                    ..IncidentFilter::default()
                },
            )
            .await
            .expect("list incidents")
            .items;
        items.reverse();
        items
    }

    /// Kinds of an incident's timeline, oldest first.
    async fn kinds(&self, incident: i64) -> Vec<String> {
        self.store
            .incident_timeline(DEFAULT_WORKSPACE, incident)
            .await
            .expect("timeline")
            .into_iter()
            .map(|e| e.kind)
            .collect()
    }

    /// Outbox rows of a monitor, in insertion order (keys checked unique).
    async fn outbox(&self, monitor: i64) -> Vec<Outbox> {
        let rows = self
            .rows(&format!(
                "SELECT channel_id, incident_id, event, idempotency_key, payload, status, \
                 attempts FROM notifications WHERE monitor_id = {monitor} ORDER BY id"
            ))
            .await;
        let out: Vec<Outbox> = rows
            .iter()
            .map(|r| Outbox {
                channel_id: r.try_get("channel_id").expect("channel_id"),
                incident_id: r.try_get("incident_id").expect("incident_id"),
                event: r.try_get("event").expect("event"),
                key: r.try_get("idempotency_key").expect("key"),
                payload: serde_json::from_str(&r.try_get::<String, _>("payload").expect("p"))
                    .expect("payload JSON"),
                status: r.try_get("status").expect("status"),
                attempts: r.try_get("attempts").expect("attempts"),
            })
            .collect();
        let keys: std::collections::BTreeSet<&str> = out.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(
            keys.len(),
            out.len(),
            "idempotency keys are unique: {out:?}"
        );
        out
    }

    /// `(event, channel)` pairs of a monitor's outbox, sorted.
    async fn sent(&self, monitor: i64) -> Vec<(String, i64)> {
        let mut v: Vec<(String, i64)> = self
            .outbox(monitor)
            .await
            .into_iter()
            .map(|o| (o.event, o.channel_id))
            .collect();
        v.sort();
        v
    }
}

/// Generates `sqlite::<test>` and `postgres::<test>` for every engine test.
macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Ctx::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(ctx) = super::Ctx::postgres().await else { return };
                    super::$name(ctx).await;
                }
            )*
        }
    };
}

suite!(
    confirmation_recovery_and_one_row_per_bound_channel,
    recovery_threshold_dates_the_resolution,
    degraded_alerting_and_escalation,
    ignored_errors,
    flapping_suppresses_and_settles,
    engine_settings_apply,
    maintenance_marks_results_and_never_alerts,
    parent_down_suppresses_child_until_it_recovers,
    stale_results_do_not_override_newer_ones,
    batches_are_evaluated_in_time_order,
    paused_monitors_are_not_evaluated,
    state_survives_a_restart,
    concurrent_batches_open_one_incident,
    acknowledgement_and_notes,
    mass_outage_in_one_batch,
    deleting_a_monitor_closes_its_incident,
    odd_engine_state_never_fails_a_batch,
);

/// 2024-01-01T00:00:00Z.
fn t0() -> Timestamp {
    DateTime::from_timestamp(1_704_067_200, 0).expect("t0")
}

/// `t0` plus `minute` minutes.
fn at(minute: i64) -> Timestamp {
    t0() + TimeDelta::minutes(minute)
}

fn ms(minute: i64) -> i64 {
    at(minute).timestamp_millis()
}

fn spec(name: &str, tags: &[&str], alert: AlertPolicy) -> MonitorSpec {
    MonitorSpec {
        name: name.to_string(),
        kind: MonitorType::Check,
        plugin: Some("http".to_string()),
        config: json!({"url": "http://127.0.0.1:9/"}),
        interval_secs: 60,
        timeout_ms: 5000,
        enabled: true,
        tags: tags.iter().map(|t| t.to_string()).collect(),
        push: None,
        alert,
    }
}

/// A policy: failure and recovery thresholds, otherwise the defaults.
fn policy(failure: u32, recovery: u32) -> AlertPolicy {
    AlertPolicy {
        failure_threshold: failure,
        recovery_threshold: recovery,
        ..AlertPolicy::default()
    }
}

/// A result of monitor `id` at minute `minute` with a message naming both.
fn res(id: i64, minute: i64, status: Status) -> NewResult {
    NewResult {
        monitor_id: id,
        workspace_id: DEFAULT_WORKSPACE,
        region: "local".to_string(),
        started_at: at(minute),
        status,
        latency_ms: 12.5,
        message: format!("{} at minute {minute}", status.as_str()),
        timings: Timings::default(),
        metrics: vec![],
        details: None,
        error_cause: None,
        ping: false,
    }
}

async fn confirmation_recovery_and_one_row_per_bound_channel(ctx: Ctx) {
    let default = ctx.channel("all", true, &[], true).await;
    let named = ctx.channel("named", false, &[], true).await;
    let tagged = ctx.channel("prod-team", false, &["prod"], true).await;
    let _other_tag = ctx.channel("staging-team", false, &["staging"], true).await;
    let _disabled = ctx.channel("off", true, &[], false).await;
    let id = ctx
        .monitor(
            "api",
            &["prod", "web"],
            AlertPolicy {
                channels: vec![named],
                ..policy(2, 1)
            },
        )
        .await;
    let bound = {
        let mut v = vec![default, named, tagged];
        v.sort();
        v
    };

    ctx.feed_each(id, &[(0, Up), (1, Down)]).await;
    assert!(
        ctx.incidents(id).await.is_empty(),
        "one failure is not enough"
    );
    assert_eq!(ctx.store.open_incident_for(id).await.expect("query"), None);
    ctx.feed_each(id, &[(2, Down)]).await;
    let incidents = ctx.incidents(id).await;
    assert_eq!(incidents.len(), 1);
    let inc = &incidents[0];
    assert_eq!(inc.status, IncidentStatus::Open);
    assert_eq!(inc.severity, Severity::Down);
    assert_eq!(inc.opened_at, at(1), "dated from the first failure");
    assert_eq!(inc.cause, "down at minute 2");
    assert_eq!(inc.monitor_name, "api");
    assert_eq!(inc.suppressed, None);
    assert_eq!(
        ctx.store
            .open_incident_for(id)
            .await
            .expect("query")
            .map(|i| i.id),
        Some(inc.id)
    );
    let rows = ctx.outbox(id).await;
    assert_eq!(
        rows.iter().map(|o| o.channel_id).collect::<Vec<_>>(),
        bound,
        "default, named and tag-bound channels; not the other tag, not the disabled one"
    );
    for o in &rows {
        assert_eq!(o.event, "opened");
        assert_eq!(o.status, "pending");
        assert_eq!(o.attempts, 0);
        assert_eq!(o.incident_id, Some(inc.id));
        assert!(
            o.key.starts_with(&format!("pharos-{}-opened-", inc.id))
                && o.key.ends_with(&format!("-c{}", o.channel_id)),
            "{}",
            o.key
        );
        let p = &o.payload;
        assert_eq!(p["kind"], "incident.opened");
        assert_eq!(p["occurred_at"], ms(2));
        assert_eq!(p["since"], ms(1));
        assert_eq!(p["status"], "down");
        assert_eq!(p["cause"], "down at minute 2");
        assert_eq!(p["monitor"]["id"], id);
        assert_eq!(p["monitor"]["name"], "api");
        assert_eq!(p["monitor"]["type"], "check");
        assert_eq!(p["monitor"]["plugin"], "http");
        assert_eq!(p["monitor"]["tags"], json!(["prod", "web"]));
        assert_eq!(p["incident"]["id"], inc.id);
        assert_eq!(p["incident"]["status"], "open");
        assert_eq!(p["incident"]["severity"], "down");
        assert_eq!(p["incident"]["opened_at"], ms(1));
        assert_eq!(p["incident"]["acknowledged"], false);
    }

    // More failures: nothing new.
    ctx.feed_each(id, &[(3, Down), (4, Error)]).await;
    assert_eq!(ctx.outbox(id).await.len(), 3);

    ctx.feed_each(id, &[(5, Up)]).await;
    let inc = ctx.incidents(id).await.remove(0);
    assert_eq!(inc.status, IncidentStatus::Resolved);
    assert_eq!(inc.resolved_at, Some(at(5)));
    assert_eq!(ctx.store.open_incident_for(id).await.expect("q"), None);
    let rows = ctx.outbox(id).await;
    let resolved: Vec<&Outbox> = rows.iter().filter(|o| o.event == "resolved").collect();
    assert_eq!(
        resolved.iter().map(|o| o.channel_id).collect::<Vec<_>>(),
        bound
    );
    assert_eq!(resolved[0].payload["kind"], "incident.resolved");
    assert_eq!(resolved[0].payload["incident"]["status"], "resolved");
    assert_eq!(resolved[0].payload["incident"]["resolved_at"], ms(5));
    assert_eq!(resolved[0].payload["since"], ms(5));
    assert_eq!(ctx.kinds(inc.id).await, vec!["opened", "resolved"]);

    // Passing results change nothing; a new streak opens a new incident.
    ctx.feed_each(id, &[(6, Up), (7, Down), (8, Down)]).await;
    let incidents = ctx.incidents(id).await;
    assert_eq!(incidents.len(), 2);
    assert_eq!(incidents[1].opened_at, at(7));
    assert_eq!(ctx.outbox(id).await.len(), 9);
    assert_eq!(
        ctx.scalar("SELECT COUNT(DISTINCT idempotency_key) FROM notifications")
            .await,
        ctx.scalar("SELECT COUNT(*) FROM notifications").await
    );
}

async fn recovery_threshold_dates_the_resolution(ctx: Ctx) {
    ctx.channel("all", true, &[], true).await;
    let id = ctx.monitor("db", &[], policy(1, 3)).await;
    ctx.feed_each(id, &[(0, Down), (1, Up), (2, Up)]).await;
    assert_eq!(ctx.incidents(id).await[0].status, IncidentStatus::Open);
    // A failure restarts the count.
    ctx.feed_each(id, &[(3, Down), (4, Up), (5, Up)]).await;
    assert_eq!(ctx.incidents(id).await[0].status, IncidentStatus::Open);
    ctx.feed_each(id, &[(6, Up)]).await;
    let inc = ctx.incidents(id).await.remove(0);
    assert_eq!(inc.status, IncidentStatus::Resolved);
    assert_eq!(
        inc.resolved_at,
        Some(at(4)),
        "first passing result of the streak"
    );
    assert_eq!(inc.opened_at, at(0));
    let sent = ctx.sent(id).await;
    assert_eq!(sent.len(), 2, "{sent:?}");

    // notify_recovery = false: the opening is sent, the resolution is not.
    let quiet = ctx
        .monitor(
            "quiet",
            &[],
            AlertPolicy {
                notify_recovery: false,
                ..policy(1, 1)
            },
        )
        .await;
    ctx.feed_each(quiet, &[(0, Down), (1, Up)]).await;
    assert_eq!(
        ctx.incidents(quiet).await[0].status,
        IncidentStatus::Resolved
    );
    let events: Vec<String> = ctx.sent(quiet).await.into_iter().map(|s| s.0).collect();
    assert_eq!(events, vec!["opened"]);
}

async fn degraded_alerting_and_escalation(ctx: Ctx) {
    ctx.channel("all", true, &[], true).await;
    let lenient = ctx.monitor("lenient", &[], policy(2, 1)).await;
    ctx.feed_each(lenient, &[(0, Degraded), (1, Degraded), (2, Degraded)])
        .await;
    assert!(
        ctx.incidents(lenient).await.is_empty(),
        "degraded passes by default"
    );

    let strict = ctx
        .monitor(
            "strict",
            &[],
            AlertPolicy {
                alert_on_degraded: true,
                ..policy(2, 1)
            },
        )
        .await;
    ctx.feed_each(strict, &[(0, Degraded), (1, Degraded)]).await;
    let inc = ctx.incidents(strict).await.remove(0);
    assert_eq!(inc.severity, Severity::Degraded);
    ctx.feed_each(strict, &[(2, Down)]).await;
    let inc = ctx.incidents(strict).await.remove(0);
    assert_eq!(inc.severity, Severity::Down);
    assert_eq!(inc.status, IncidentStatus::Open);
    let rows = ctx.outbox(strict).await;
    assert_eq!(
        rows.iter().map(|o| o.event.as_str()).collect::<Vec<_>>(),
        vec!["opened", "escalated"]
    );
    assert_eq!(rows[0].payload["incident"]["severity"], "degraded");
    assert_eq!(rows[1].payload["kind"], "incident.escalated");
    assert_eq!(rows[1].payload["incident"]["severity"], "down");
    // Degraded again does not de-escalate or notify.
    ctx.feed_each(strict, &[(3, Degraded), (4, Up)]).await;
    assert_eq!(
        ctx.kinds(inc.id).await,
        vec!["opened", "escalated", "resolved"]
    );
    assert_eq!(ctx.outbox(strict).await.len(), 3);

    // A streak with a `down` in it opens as `down`.
    let mixed = ctx
        .monitor(
            "mixed",
            &[],
            AlertPolicy {
                alert_on_degraded: true,
                ..policy(3, 1)
            },
        )
        .await;
    ctx.feed(&[
        res(mixed, 0, Degraded),
        res(mixed, 1, Down),
        res(mixed, 2, Degraded),
    ])
    .await;
    assert_eq!(ctx.incidents(mixed).await[0].severity, Severity::Down);
}

async fn ignored_errors(ctx: Ctx) {
    let id = ctx
        .monitor(
            "flaky-probe",
            &[],
            AlertPolicy {
                error_counts_as_failure: false,
                ..policy(2, 1)
            },
        )
        .await;
    ctx.feed_each(id, &[(0, Error), (1, Error), (2, Error), (3, Error)])
        .await;
    assert!(ctx.incidents(id).await.is_empty());
    // Errors neither count nor break a failing streak.
    ctx.feed_each(id, &[(4, Down), (5, Error), (6, Down)]).await;
    let incidents = ctx.incidents(id).await;
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].opened_at, at(4));

    // By default errors count as failures (severity down).
    let strict = ctx.monitor("strict", &[], policy(2, 1)).await;
    ctx.feed_each(strict, &[(0, Error), (1, Error)]).await;
    assert_eq!(ctx.incidents(strict).await[0].severity, Severity::Down);
}

async fn flapping_suppresses_and_settles(ctx: Ctx) {
    let channel = ctx.channel("all", true, &[], true).await;
    let id = ctx.monitor("flappy", &[], policy(1, 1)).await;
    // Changes at minutes 2..=7: the sixth (minute 7) exceeds the default 5 in 10 minutes.
    ctx.feed_each(
        id,
        &[
            (1, Up),
            (2, Down),
            (3, Up),
            (4, Down),
            (5, Up),
            (6, Down),
            (7, Up),
            (8, Down),
        ],
    )
    .await;
    let incidents = ctx.incidents(id).await;
    assert_eq!(incidents.len(), 4);
    let events: Vec<String> = ctx.outbox(id).await.into_iter().map(|o| o.event).collect();
    assert_eq!(
        events,
        vec![
            "opened", "resolved", "opened", "resolved", "opened", "flapping"
        ],
        "the resolution at minute 7 and the opening at minute 8 are held back"
    );
    assert_eq!(
        ctx.kinds(incidents[2].id).await,
        vec!["opened", "flapping_started", "resolved", "suppressed"]
    );
    let last = &incidents[3];
    assert_eq!(last.suppressed.as_deref(), Some("flapping"));
    assert_eq!(ctx.kinds(last.id).await, vec!["opened", "suppressed"]);
    let timeline = ctx
        .store
        .incident_timeline(DEFAULT_WORKSPACE, last.id)
        .await
        .expect("timeline");
    assert_eq!(
        timeline[1].data.as_ref().expect("data")["reason"],
        "flapping"
    );
    assert_eq!(timeline[1].data.as_ref().expect("data")["event"], "opened");
    let flapping = ctx.outbox(id).await.remove(5);
    assert_eq!(flapping.payload["kind"], "monitor.flapping");
    assert_eq!(flapping.channel_id, channel);
    assert_eq!(flapping.payload["incident"]["id"], incidents[2].id);

    // Staying down: the changes leave the window; at 2 or fewer (minute 16) it settles.
    for minute in 9..=15 {
        ctx.feed_each(id, &[(minute, Down)]).await;
    }
    assert_eq!(ctx.outbox(id).await.len(), 6, "still flapping");
    ctx.feed_each(id, &[(16, Down)]).await;
    let rows = ctx.outbox(id).await;
    assert_eq!(rows.len(), 7);
    let ended = &rows[6];
    assert_eq!(ended.event, "flapping_ended");
    assert_eq!(ended.payload["kind"], "monitor.flapping_ended");
    assert_eq!(ended.payload["status"], "down");
    assert_eq!(ended.payload["incident"]["id"], last.id);
    assert_eq!(ended.payload["incident"]["status"], "open");
    let last = ctx.incidents(id).await.remove(3);
    assert_eq!(
        last.suppressed, None,
        "covered by the flapping_ended notification"
    );
    assert_eq!(
        ctx.kinds(last.id).await,
        vec!["opened", "suppressed", "flapping_ended"]
    );
    // Its resolution is notified like any other.
    ctx.feed_each(id, &[(17, Up)]).await;
    let rows = ctx.outbox(id).await;
    assert_eq!(rows.last().map(|o| o.event.as_str()), Some("resolved"));
    assert_eq!(
        rows.iter().filter(|o| o.event == "flapping").count(),
        1,
        "one flapping notification per episode"
    );
}

async fn engine_settings_apply(ctx: Ctx) {
    assert_eq!(ctx.store.engine_settings(), EngineSettings::default());
    ctx.store.set_engine_settings(EngineSettings {
        flap_threshold: 2,
        flap_window: Duration::from_secs(300),
    });
    // Clones share the settings.
    assert_eq!(ctx.store.clone().engine_settings().flap_threshold, 2);
    ctx.channel("all", true, &[], true).await;
    let id = ctx.monitor("twitchy", &[], policy(5, 1)).await;
    ctx.feed_each(id, &[(0, Up), (1, Down), (2, Up), (3, Down)])
        .await;
    let events: Vec<String> = ctx.outbox(id).await.into_iter().map(|o| o.event).collect();
    assert_eq!(events, vec!["flapping"]);
    assert_eq!(
        ctx.scalar(&format!(
            "SELECT flapping FROM alert_state WHERE monitor_id = {id}"
        ))
        .await,
        1
    );
    // Five minutes later the changes are out of the window.
    ctx.feed_each(id, &[(9, Down)]).await;
    let events: Vec<String> = ctx.outbox(id).await.into_iter().map(|o| o.event).collect();
    assert_eq!(events, vec!["flapping", "flapping_ended"]);
}

async fn maintenance_marks_results_and_never_alerts(ctx: Ctx) {
    ctx.channel("all", true, &[], true).await;
    let id = ctx.monitor("db", &["db"], policy(2, 1)).await;
    let by_id = ctx.monitor("cache", &[], policy(2, 1)).await;
    let uncovered = ctx.monitor("web", &["web"], policy(2, 1)).await;
    let window = |name: &str, monitor_ids: Vec<i64>, tags: Vec<String>, enabled| MaintenanceSpec {
        name: name.to_string(),
        description: String::new(),
        starts_at: Some(at(10)),
        ends_at: Some(at(20)),
        cron: None,
        duration_secs: None,
        timezone: "UTC".to_string(),
        monitor_ids,
        tags,
        enabled,
    };
    ctx.store
        .create_maintenance_window(
            DEFAULT_WORKSPACE,
            &window("db upgrade", vec![], vec!["db".into()], true),
        )
        .await
        .expect("window");
    ctx.store
        .create_maintenance_window(
            DEFAULT_WORKSPACE,
            &window("cache", vec![by_id], vec![], true),
        )
        .await
        .expect("window");
    ctx.store
        .create_maintenance_window(
            DEFAULT_WORKSPACE,
            &window("off", vec![uncovered], vec!["web".into()], false),
        )
        .await
        .expect("window");

    let mut batch = Vec::new();
    for m in [id, by_id, uncovered] {
        for minute in [9, 10, 11, 12, 19] {
            batch.push(res(m, minute, if minute == 9 { Up } else { Down }));
        }
    }
    ctx.feed(&batch).await;
    assert!(ctx.incidents(id).await.is_empty(), "covered by tag");
    assert!(ctx.incidents(by_id).await.is_empty(), "covered by id");
    assert_eq!(
        ctx.incidents(uncovered).await.len(),
        1,
        "a disabled window covers nothing"
    );
    let results = ctx
        .store
        .list_results(
            DEFAULT_WORKSPACE,
            id,
            &ResultQuery {
                limit: 100,
                ..ResultQuery::default()
            },
        )
        .await
        .expect("results");
    let flags: Vec<(i64, bool)> = results
        .items
        .iter()
        .map(|r| ((r.started_at - t0()).num_minutes(), r.maintenance))
        .collect();
    assert_eq!(
        flags,
        vec![(19, true), (12, true), (11, true), (10, true), (9, false)],
        "the window is [10, 20)"
    );
    // The live state still follows every result.
    let live = ctx
        .store
        .get_monitor(DEFAULT_WORKSPACE, id)
        .await
        .expect("get")
        .expect("monitor");
    assert_eq!(live.state.status, Some(Down));

    // After the window the streak starts afresh.
    ctx.feed_each(id, &[(20, Down)]).await;
    assert!(ctx.incidents(id).await.is_empty());
    ctx.feed_each(id, &[(21, Down)]).await;
    let incidents = ctx.incidents(id).await;
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].opened_at, at(20));

    // Uptime leaves maintenance out, from raw results and from rollups alike.
    let check = |u: pharos::model::Uptime| {
        assert_eq!(
            (u.up, u.down, u.maintenance, u.total),
            (1, 2, 4, 3),
            "{u:?}"
        );
        assert!(
            u.uptime_pct.is_some_and(|p| (p - 100.0 / 3.0).abs() < 1e-9),
            "{u:?}"
        );
    };
    check(
        ctx.store
            .uptime(DEFAULT_WORKSPACE, id, at(0), at(30))
            .await
            .expect("uptime"),
    );
    ctx.store.rollup(at(40)).await.expect("rollup");
    assert_eq!(
        ctx.scalar(&format!(
            "SELECT CAST(SUM(maintenance) AS BIGINT) FROM rollups WHERE monitor_id = {id}"
        ))
        .await,
        4
    );
    check(
        ctx.store
            .uptime(DEFAULT_WORKSPACE, id, at(0), at(30))
            .await
            .expect("uptime"),
    );
    // The chart still counts every result.
    let buckets = ctx
        .store
        .latency(DEFAULT_WORKSPACE, id, at(0), at(30), 1)
        .await
        .expect("latency");
    assert_eq!(buckets[0].count, 7);
}

async fn parent_down_suppresses_child_until_it_recovers(ctx: Ctx) {
    let channel = ctx.channel("all", true, &[], true).await;
    let router = ctx.monitor("router", &[], policy(2, 1)).await;
    let app = ctx
        .monitor(
            "app",
            &[],
            AlertPolicy {
                depends_on: vec![router],
                ..policy(2, 1)
            },
        )
        .await;
    // Parent and child fail together, in one batch: the parent's first failure is seen
    // before the child's incident opens.
    ctx.feed(&[
        res(app, 1, Down),
        res(router, 1, Down),
        res(app, 2, Down),
        res(router, 2, Down),
    ])
    .await;
    let child = ctx.incidents(app).await.remove(0);
    assert_eq!(child.suppressed.as_deref(), Some("parent"));
    assert_eq!(child.suppressed_by, Some(router));
    assert!(ctx.outbox(app).await.is_empty(), "suppressed: nothing sent");
    assert_eq!(
        ctx.sent(router).await,
        vec![("opened".to_string(), channel)]
    );
    let timeline = ctx
        .store
        .incident_timeline(DEFAULT_WORKSPACE, child.id)
        .await
        .expect("timeline");
    assert_eq!(timeline[1].kind, "suppressed");
    assert!(
        timeline[1].message.contains("router"),
        "{}",
        timeline[1].message
    );
    assert_eq!(
        timeline[1].data.as_ref().expect("data")["parent_id"],
        router
    );

    // Still down while the parent is: nothing. The parent recovers; the child does not.
    ctx.feed(&[res(app, 3, Down), res(router, 3, Down)]).await;
    assert!(ctx.outbox(app).await.is_empty());
    ctx.feed(&[res(router, 4, Up)]).await;
    ctx.feed(&[res(app, 4, Down)]).await;
    let rows = ctx.outbox(app).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].event, "opened");
    assert_eq!(rows[0].payload["incident"]["id"], child.id);
    assert_eq!(rows[0].payload["since"], ms(1));
    let child = ctx.incidents(app).await.remove(0);
    assert_eq!(child.suppressed, None);
    assert_eq!(
        ctx.kinds(child.id).await,
        vec!["opened", "suppressed", "parent_recovered"]
    );
    // Only once; its resolution is notified since its opening was.
    ctx.feed(&[res(app, 5, Down)]).await;
    ctx.feed(&[res(app, 6, Up)]).await;
    let events: Vec<String> = ctx.outbox(app).await.into_iter().map(|o| o.event).collect();
    assert_eq!(events, vec!["opened", "resolved"]);

    // A child whose parent is down and which recovers with it is never notified.
    ctx.feed(&[res(router, 10, Down), res(app, 10, Down)]).await;
    ctx.feed(&[res(app, 11, Down)]).await;
    let second = ctx.incidents(app).await.remove(1);
    assert_eq!(second.suppressed.as_deref(), Some("parent"));
    ctx.feed(&[res(router, 12, Up), res(app, 12, Up)]).await;
    let second = ctx.incidents(app).await.remove(1);
    assert_eq!(second.status, IncidentStatus::Resolved);
    assert_eq!(
        ctx.outbox(app).await.len(),
        2,
        "nothing for the second incident"
    );
}

async fn stale_results_do_not_override_newer_ones(ctx: Ctx) {
    let id = ctx.monitor("api", &[], policy(1, 1)).await;
    ctx.feed_each(id, &[(10, Up)]).await;
    // A late failing result from before the success, and one at the same time.
    ctx.feed_each(id, &[(5, Down), (10, Down)]).await;
    assert!(ctx.incidents(id).await.is_empty());
    assert_eq!(
        ctx.scalar(&format!(
            "SELECT COUNT(*) FROM results WHERE monitor_id = {id}"
        ))
        .await,
        3,
        "stored all the same"
    );
    assert_eq!(
        ctx.scalar(&format!(
            "SELECT last_result_at FROM alert_state WHERE monitor_id = {id}"
        ))
        .await,
        ms(10)
    );
    ctx.feed_each(id, &[(11, Down)]).await;
    assert_eq!(ctx.incidents(id).await.len(), 1);
}

async fn batches_are_evaluated_in_time_order(ctx: Ctx) {
    ctx.channel("all", true, &[], true).await;
    let id = ctx.monitor("api", &[], policy(2, 1)).await;
    // Out of order in the batch: down at 1 and 2, up at 3.
    ctx.feed(&[res(id, 3, Up), res(id, 1, Down), res(id, 2, Down)])
        .await;
    let inc = ctx.incidents(id).await.remove(0);
    assert_eq!(inc.opened_at, at(1));
    assert_eq!(inc.resolved_at, Some(at(3)));
    let events: Vec<String> = ctx.outbox(id).await.into_iter().map(|o| o.event).collect();
    assert_eq!(events, vec!["opened", "resolved"]);
    // Results of a deleted monitor in a batch are dropped, the others evaluated.
    let gone = ctx.monitor("gone", &[], policy(1, 1)).await;
    ctx.store
        .delete_monitor(DEFAULT_WORKSPACE, gone)
        .await
        .expect("delete");
    ctx.feed(&[res(gone, 5, Down), res(id, 5, Down), res(id, 6, Down)])
        .await;
    assert_eq!(ctx.incidents(id).await.len(), 2);
    assert!(ctx.incidents(gone).await.is_empty());
}

async fn paused_monitors_are_not_evaluated(ctx: Ctx) {
    let id = ctx.monitor("paused", &[], policy(1, 1)).await;
    ctx.store
        .bulk_monitors(DEFAULT_WORKSPACE, &[id], &BulkAction::Disable)
        .await
        .expect("disable");
    ctx.feed_each(id, &[(0, Down), (1, Down)]).await;
    assert!(ctx.incidents(id).await.is_empty());
    assert_eq!(
        ctx.scalar(&format!(
            "SELECT COUNT(*) FROM alert_state WHERE monitor_id = {id}"
        ))
        .await,
        0
    );
    assert_eq!(
        ctx.scalar(&format!(
            "SELECT COUNT(*) FROM results WHERE monitor_id = {id}"
        ))
        .await,
        2
    );
    ctx.store
        .bulk_monitors(DEFAULT_WORKSPACE, &[id], &BulkAction::Enable)
        .await
        .expect("enable");
    ctx.feed_each(id, &[(2, Down)]).await;
    assert_eq!(ctx.incidents(id).await[0].opened_at, at(2));
}

async fn state_survives_a_restart(ctx: Ctx) {
    ctx.channel("all", true, &[], true).await;
    let id = ctx.monitor("api", &[], policy(3, 1)).await;
    ctx.feed_each(id, &[(0, Down), (1, Down)]).await;
    ctx.store.close().await;

    let store = Store::connect(&ctx.url).await.expect("reconnect");
    let ctx = Ctx { store, ..ctx };
    ctx.feed_each(id, &[(2, Down)]).await;
    let inc = ctx.incidents(id).await.remove(0);
    assert_eq!(
        inc.opened_at,
        at(0),
        "the streak continued across the restart"
    );
    // Re-delivering an already evaluated batch (e.g. a retry) evaluates nothing again.
    ctx.feed_each(id, &[(2, Down)]).await;
    assert_eq!(ctx.outbox(id).await.len(), 1);
    ctx.store.close().await;
    let store = Store::connect(&ctx.url).await.expect("reconnect");
    let ctx = Ctx { store, ..ctx };
    ctx.feed_each(id, &[(3, Up)]).await;
    let events: Vec<String> = ctx.outbox(id).await.into_iter().map(|o| o.event).collect();
    assert_eq!(events, vec!["opened", "resolved"]);
}

async fn concurrent_batches_open_one_incident(ctx: Ctx) {
    ctx.channel("all", true, &[], true).await;
    let id = ctx.monitor("busy", &[], policy(2, 1)).await;
    let mut tasks = Vec::new();
    for minute in 0..12 {
        let store = ctx.store.clone();
        tasks.push(tokio::spawn(async move {
            store.insert_results(&[res(id, minute, Down)]).await
        }));
    }
    for t in tasks {
        t.await.expect("join").expect("insert");
    }
    // Whatever the commit order, batches were evaluated one after the other (a batch older
    // than one committed before it is stale): at most one incident so far.
    assert!(ctx.incidents(id).await.len() <= 1);
    ctx.feed_each(id, &[(20, Down)]).await;
    let incidents = ctx.incidents(id).await;
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert_eq!(ctx.outbox(id).await.len(), 1);
    assert_eq!(
        ctx.scalar(&format!(
            "SELECT COUNT(*) FROM results WHERE monitor_id = {id}"
        ))
        .await,
        13
    );
}

async fn acknowledgement_and_notes(ctx: Ctx) {
    use pharos::store::Acknowledged;
    let id = ctx.monitor("api", &[], policy(1, 1)).await;
    ctx.feed_each(id, &[(0, Down)]).await;
    let inc = ctx.incidents(id).await.remove(0);
    let done = ctx
        .store
        .acknowledge_incident(DEFAULT_WORKSPACE, inc.id, "key:ops", Some("on it"))
        .await
        .expect("ack");
    let Acknowledged::Done(acked) = done else {
        panic!("not acknowledged: {done:?}")
    };
    assert_eq!(acked.acknowledged_by.as_deref(), Some("key:ops"));
    assert!(acked.acknowledged_at.is_some());
    assert!(matches!(
        ctx.store
            .acknowledge_incident(DEFAULT_WORKSPACE, inc.id, "key:other", None)
            .await
            .expect("ack"),
        Acknowledged::Already(_)
    ));
    assert_eq!(
        ctx.store
            .acknowledge_incident(DEFAULT_WORKSPACE + 1, inc.id, "key:x", None)
            .await
            .expect("ack"),
        Acknowledged::NotFound,
        "other workspace"
    );
    let note = ctx
        .store
        .add_incident_note(DEFAULT_WORKSPACE, inc.id, "key:ops", "restarted the pod")
        .await
        .expect("note")
        .expect("found");
    assert_eq!(note.kind, "note");
    assert!(
        ctx.store
            .add_incident_note(DEFAULT_WORKSPACE, 999_999, "key:ops", "x")
            .await
            .expect("note")
            .is_none()
    );
    // The engine's later events carry the acknowledgement.
    ctx.channel("all", true, &[], true).await;
    ctx.feed_each(id, &[(1, Up)]).await;
    let rows = ctx.outbox(id).await;
    assert_eq!(rows[0].payload["incident"]["acknowledged"], true);
    assert!(matches!(
        ctx.store
            .acknowledge_incident(DEFAULT_WORKSPACE, inc.id, "key:ops", None)
            .await
            .expect("ack"),
        Acknowledged::Resolved(_)
    ));
    let timeline = ctx
        .store
        .incident_timeline(DEFAULT_WORKSPACE, inc.id)
        .await
        .expect("timeline");
    // Engine entries carry result times (2024 here), people's entries the wall clock.
    let kinds: Vec<&str> = timeline.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, vec!["opened", "resolved", "acknowledged", "note"]);
    assert!(timeline.windows(2).all(|w| w[0].at <= w[1].at));
    assert_eq!(timeline[2].actor, "key:ops");
    assert_eq!(timeline[2].message, "Acknowledged by key:ops: on it");
    assert_eq!(timeline[3].message, "restarted the pod");
    assert_eq!(timeline[0].actor, "system");
    assert!(
        ctx.store
            .incident_timeline(DEFAULT_WORKSPACE + 1, inc.id)
            .await
            .expect("timeline")
            .is_empty()
    );
}

async fn deleting_a_monitor_closes_its_incident(ctx: Ctx) {
    ctx.channel("all", true, &[], true).await;
    let id = ctx.monitor("doomed", &[], policy(1, 1)).await;
    let kept = ctx.monitor("kept", &[], policy(1, 1)).await;
    ctx.feed(&[res(id, 0, Down), res(kept, 0, Down)]).await;
    let inc = ctx.incidents(id).await.remove(0);
    ctx.store
        .delete_monitor(DEFAULT_WORKSPACE, id)
        .await
        .expect("delete");
    let closed = ctx
        .store
        .get_incident(DEFAULT_WORKSPACE, inc.id)
        .await
        .expect("get")
        .expect("kept for history");
    assert_eq!(closed.status, IncidentStatus::Resolved);
    assert_eq!(closed.monitor_name, "doomed");
    assert!(closed.resolved_at.is_some());
    let timeline = ctx
        .store
        .incident_timeline(DEFAULT_WORKSPACE, inc.id)
        .await
        .expect("timeline");
    assert_eq!(
        timeline.last().map(|e| e.message.as_str()),
        Some("Closed: the monitor was deleted")
    );
    let events: Vec<String> = ctx.outbox(id).await.into_iter().map(|o| o.event).collect();
    assert_eq!(
        events,
        vec!["opened"],
        "no recovery message for a deleted monitor"
    );
    assert_eq!(
        ctx.incidents(kept).await[0].status,
        IncidentStatus::Open,
        "other monitors' incidents stay open"
    );
}

async fn odd_engine_state_never_fails_a_batch(ctx: Ctx) {
    let id = ctx.monitor("odd", &["x"], policy(2, 1)).await;
    // A window that cannot be read is skipped, not fatal.
    ctx.exec(
        "INSERT INTO maintenance_windows (workspace_id, name, description, starts_at, ends_at, \
         cron, duration_secs, timezone, monitor_ids, tags, enabled, created_at, updated_at) \
         VALUES (1, 'broken', '', 0, 9999999999999, NULL, NULL, 'UTC', 'oops', '[\"x\"]', 1, 0, 0)",
    )
    .await;
    ctx.feed_each(id, &[(0, Down)]).await;
    ctx.exec(&format!(
        "UPDATE alert_state SET changes = 'not json', level = 'sideways' WHERE monitor_id = {id}"
    ))
    .await;
    // The unreadable level restarts the streak: one failure again, no incident yet.
    ctx.feed_each(id, &[(1, Down)]).await;
    assert!(ctx.incidents(id).await.is_empty());
    ctx.feed_each(id, &[(2, Down)]).await;
    assert_eq!(ctx.incidents(id).await[0].opened_at, at(1));
    // A last evaluated time far in the future (a clock that ran ahead) is not trusted.
    let future = chrono::Utc::now().timestamp_millis() + 86_400_000;
    ctx.exec(&format!(
        "UPDATE alert_state SET last_result_at = {future} WHERE monitor_id = {id}"
    ))
    .await;
    ctx.feed_each(id, &[(3, Up)]).await;
    assert_eq!(ctx.incidents(id).await[0].status, IncidentStatus::Resolved);
    assert_eq!(
        ctx.scalar(&format!(
            "SELECT COUNT(*) FROM results WHERE monitor_id = {id} AND maintenance = 1"
        ))
        .await,
        0
    );
}

async fn mass_outage_in_one_batch(ctx: Ctx) {
    let a = ctx.channel("pager", true, &[], true).await;
    let b = ctx.channel("chat", false, &["fleet"], true).await;
    let specs: Vec<(MonitorSpec, Option<String>)> = (0..1000)
        .map(|i| (spec(&format!("node-{i}"), &["fleet"], policy(1, 1)), None))
        .collect();
    let ids: Vec<i64> = ctx
        .store
        .create_monitors(DEFAULT_WORKSPACE, &specs)
        .await
        .expect("create")
        .iter()
        .map(|m| m.id)
        .collect();
    let down: Vec<NewResult> = ids.iter().map(|id| res(*id, 1, Down)).collect();
    let started = std::time::Instant::now();
    ctx.feed(&down).await;
    let took = started.elapsed();
    let up: Vec<NewResult> = ids.iter().map(|id| res(*id, 2, Up)).collect();
    let started = std::time::Instant::now();
    ctx.feed(&up).await;
    eprintln!(
        "mass_outage[{:?}]: 1000 incidents opened in one batch in {took:?}, resolved in {:?}",
        ctx.store.backend(),
        started.elapsed()
    );
    assert_eq!(
        ctx.scalar("SELECT COUNT(*) FROM incidents WHERE status = 'resolved'")
            .await,
        1000
    );
    for (channel, n) in [(a, 2000), (b, 2000)] {
        assert_eq!(
            ctx.scalar(&format!(
                "SELECT COUNT(*) FROM notifications WHERE channel_id = {channel}"
            ))
            .await,
            n
        );
    }
    assert_eq!(
        ctx.scalar("SELECT COUNT(DISTINCT idempotency_key) FROM notifications")
            .await,
        4000
    );
}

// ---------------------------------------------------------------------------------------------
// The incidents API over HTTP.

/// The bootstrap admin token of the API test servers.
const ADMIN: &str = "phk_test_admin_token_0123456789abcdefghijklmn";

/// A server started for one test.
struct TestServer {
    server: Option<pharos::server::RunningServer>,
    base: String,
    http: reqwest::Client,
    url: String,
    _dir: tempfile::TempDir,
}

impl TestServer {
    async fn start(database_url: Option<String>) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("pharos.db").display()));
        let config = ServeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: dir.path().to_path_buf(),
            database_url: Some(url.clone()),
            admin_token: Some(ADMIN.to_string()),
            allow_private_targets: true,
            shutdown_grace_secs: 5,
            runtime: RuntimeConfig {
                max_instances: Some(16),
                ..RuntimeConfig::default()
            },
            ..ServeConfig::default()
        };
        let server = pharos::server::start(config).await.expect("server starts");
        TestServer {
            base: format!("http://{}", server.addr()),
            server: Some(server),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client"),
            url,
            _dir: dir,
        }
    }

    fn store(&self) -> &Store {
        &self.server.as_ref().expect("running").app().store
    }

    async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }

    /// A request as `key`; (status, JSON body or null).
    async fn call(
        &self,
        key: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, body)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.call(ADMIN, Method::GET, path, None).await
    }

    /// Creates an API key with `scopes`; its secret.
    async fn key(&self, name: &str, scopes: &[&str]) -> String {
        let (status, body) = self
            .call(
                ADMIN,
                Method::POST,
                "/api/v1/api-keys",
                Some(json!({"name": name, "scopes": scopes})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["key"].as_str().expect("key").to_string()
    }

    /// Runs a raw statement on the server's database.
    async fn exec(&self, sql: &str) {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&self.url).await.expect("raw pool");
        sqlx::query(sql).execute(&pool).await.expect(sql);
        pool.close().await;
    }
}

/// Asserts an error envelope.
#[track_caller]
fn assert_error(resp: &(u16, Value), status: u16, code: &str, field: Option<&str>) {
    assert_eq!(resp.0, status, "{}", resp.1);
    assert_eq!(resp.1["error"]["code"], code, "{}", resp.1);
    if let Some(f) = field {
        assert_eq!(resp.1["error"]["field"], f, "{}", resp.1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_sqlite() {
    let s = TestServer::start(None).await;
    api_routes(&s).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_postgres() {
    let Some(url) = postgres_url().await else {
        return;
    };
    let s = TestServer::start(Some(url)).await;
    api_routes(&s).await;
    s.stop().await;
}

async fn api_routes(s: &TestServer) {
    let store = s.store();
    // A disabled channel gets no rows; an enabled one whose plugin does not exist gets rows
    // that the dispatcher cannot deliver (nothing leaves the machine).
    s.exec(
        "INSERT INTO channels (workspace_id, name, plugin, config, enabled, is_default, tags, \
         storm_limit, storm_window_secs, revision, created_at, updated_at) VALUES \
         (1, 'ops', 'no-such-notifier', '{}', 1, 1, '[]', 0, 300, 1, 0, 0)",
    )
    .await;
    let api = store
        .create_monitor(DEFAULT_WORKSPACE, &spec("api", &[], policy(1, 1)), None)
        .await
        .expect("monitor")
        .id;
    let db = store
        .create_monitor(
            DEFAULT_WORKSPACE,
            &spec(
                "db",
                &[],
                AlertPolicy {
                    alert_on_degraded: true,
                    ..policy(1, 1)
                },
            ),
            None,
        )
        .await
        .expect("monitor")
        .id;
    // api: an incident opened at 0 and resolved at 5; then one open since 10.
    // db: a degraded incident open since 3.
    // One batch, so the service's rollup job cannot move its watermark past minute 10 between
    // two inserts: a result that arrives older than the watermark is not counted by `uptime`
    // (a known gap of late results, noted on the issue tracker).
    store
        .insert_results(&[
            res(api, 0, Down),
            res(db, 3, Degraded),
            res(api, 5, Up),
            res(api, 10, Down),
        ])
        .await
        .expect("insert");

    // List, newest first, with filters.
    let (status, body) = s.get("/api/v1/incidents").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["total"], 3);
    assert_eq!(body["limit"], 50);
    let items = body["items"].as_array().expect("items");
    let opened: Vec<&str> = items
        .iter()
        .map(|i| i["opened_at"].as_str().expect("t"))
        .collect();
    assert_eq!(
        opened,
        vec![
            "2024-01-01T00:10:00Z",
            "2024-01-01T00:03:00Z",
            "2024-01-01T00:00:00Z"
        ]
    );
    let open_api = items[0]["id"].as_i64().expect("id");
    let resolved_api = items[2]["id"].as_i64().expect("id");
    assert_eq!(items[2]["status"], "resolved");
    assert_eq!(items[2]["resolved_at"], "2024-01-01T00:05:00Z");
    let total = |q: &'static str| async move {
        s.get(&format!("/api/v1/incidents?{q}")).await.1["total"].clone()
    };
    assert_eq!(total("status=open").await, 2);
    assert_eq!(total("status=resolved").await, 1);
    assert_eq!(total("severity=degraded").await, 1);
    assert_eq!(
        s.get(&format!("/api/v1/incidents?monitor_id={api}"))
            .await
            .1["total"],
        2
    );
    // Overlapping [6, 8): only db's incident (api's first resolved at 5, second opened at 10).
    assert_eq!(
        total("from=2024-01-01T00:06:00Z&to=2024-01-01T00:08:00Z").await,
        1
    );
    assert_eq!(total("from=2024-01-01T00:04:00Z").await, 3);
    assert_eq!(total("limit=1&offset=1").await, 3);
    let page = s.get("/api/v1/incidents?limit=1&offset=1").await.1;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1));
    assert_error(
        &s.get("/api/v1/incidents?status=closed").await,
        400,
        "VALIDATION_FAILED",
        Some("/status"),
    );
    assert_error(
        &s.get("/api/v1/incidents?severity=bad").await,
        400,
        "VALIDATION_FAILED",
        Some("/severity"),
    );
    assert_error(
        &s.get("/api/v1/incidents?from=2024-01-02T00:00:00Z&to=2024-01-01T00:00:00Z")
            .await,
        400,
        "VALIDATION_FAILED",
        Some("/from"),
    );
    assert_error(
        &s.get("/api/v1/incidents?limit=0").await,
        400,
        "VALIDATION_FAILED",
        Some("/limit"),
    );
    assert_error(
        &s.get("/api/v1/incidents?monitor_id=0").await,
        400,
        "VALIDATION_FAILED",
        Some("/monitor_id"),
    );
    assert_error(
        &s.get("/api/v1/incidents?bogus=1").await,
        400,
        "VALIDATION_FAILED",
        Some("/bogus"),
    );

    // One incident with its timeline. (The server's dispatcher tries to deliver the
    // notifications; its attempts show up as `notification` entries and are left aside here.)
    let (status, body) = s.get(&format!("/api/v1/incidents/{resolved_api}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["incident"]["monitor_name"], "api");
    let kinds: Vec<&str> = body["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .map(|e| e["kind"].as_str().expect("kind"))
        .filter(|k| *k != "notification")
        .collect();
    assert_eq!(kinds, vec!["opened", "resolved"]);
    assert_error(
        &s.get("/api/v1/incidents/999999").await,
        404,
        "INCIDENT_NOT_FOUND",
        None,
    );
    assert_error(
        &s.get("/api/v1/incidents/abc").await,
        404,
        "NOT_FOUND",
        None,
    );

    // Delivery attempts show on the timeline.
    let (status, notes) = s
        .get(&format!("/api/v1/incidents/{open_api}/notifications"))
        .await;
    assert_eq!(status, 200, "{notes}");
    assert_eq!(notes["total"], 1);
    assert_eq!(notes["items"][0]["event"], "opened");
    let notification = notes["items"][0]["id"].as_i64().expect("id");
    s.exec(&format!(
        "INSERT INTO notification_attempts (notification_id, attempt, started_at, duration_ms, \
         outcome, message, external_id) VALUES ({notification}, 1, {}, 12.5, 'delivered', \
         'HTTP 200', NULL)",
        ms(10) + 1000
    ))
    .await;
    let (_, body) = s.get(&format!("/api/v1/incidents/{open_api}")).await;
    let timeline = body["timeline"].as_array().expect("timeline");
    let attempt = timeline
        .iter()
        .find(|e| {
            e["kind"] == "notification"
                && e["data"]["attempt"] == 1
                && e["data"]["outcome"] == "delivered"
        })
        .unwrap_or_else(|| panic!("attempt on the timeline: {body}"));
    assert_eq!(
        attempt["message"],
        "no-such-notifier \"ops\": opened delivered (HTTP 200)"
    );
    assert_eq!(attempt["data"]["notification_id"], notification);
    assert_eq!(timeline[0]["kind"], "opened");
    assert_error(
        &s.get("/api/v1/incidents/999999/notifications").await,
        404,
        "INCIDENT_NOT_FOUND",
        None,
    );

    // Acknowledge: write scope, once, open incidents only.
    let reader = s.key("dashboard", &["read"]).await;
    let writer = s.key("oncall", &["write"]).await;
    let ack = format!("/api/v1/incidents/{open_api}/acknowledge");
    assert_error(
        &s.call(&reader, Method::POST, &ack, None).await,
        403,
        "FORBIDDEN",
        None,
    );
    assert_error(
        &s.call(
            &writer,
            Method::POST,
            &ack,
            Some(json!({"note": "x", "extra": 1})),
        )
        .await,
        400,
        "VALIDATION_FAILED",
        Some("/extra"),
    );
    assert_error(
        &s.call(
            &writer,
            Method::POST,
            &ack,
            Some(json!({"note": "x".repeat(4001)})),
        )
        .await,
        400,
        "VALIDATION_FAILED",
        Some("/note"),
    );
    let (status, body) = s
        .call(
            &writer,
            Method::POST,
            &ack,
            Some(json!({"note": "looking"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["acknowledged_by"], "key:oncall");
    assert!(body["acknowledged_at"].is_string());
    let again = s.call(&writer, Method::POST, &ack, None).await;
    assert_error(&again, 409, "INCIDENT_ALREADY_ACKNOWLEDGED", None);
    assert_eq!(again.1["error"]["details"]["acknowledged_by"], "key:oncall");
    // Without a body at all.
    let db_incident =
        s.get(&format!("/api/v1/incidents?monitor_id={db}")).await.1["items"][0]["id"]
            .as_i64()
            .expect("id");
    let (status, body) = s
        .call(
            &writer,
            Method::POST,
            &format!("/api/v1/incidents/{db_incident}/acknowledge"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_error(
        &s.call(
            &writer,
            Method::POST,
            &format!("/api/v1/incidents/{resolved_api}/acknowledge"),
            None,
        )
        .await,
        409,
        "INCIDENT_RESOLVED",
        None,
    );
    assert_error(
        &s.call(
            &writer,
            Method::POST,
            "/api/v1/incidents/999999/acknowledge",
            None,
        )
        .await,
        404,
        "INCIDENT_NOT_FOUND",
        None,
    );

    // Notes, on open and resolved incidents.
    let notes_path = format!("/api/v1/incidents/{resolved_api}/notes");
    let resp = s
        .http
        .post(format!("{}{notes_path}", s.base))
        .bearer_auth(&writer)
        .json(&json!({"message": "  post-mortem: DNS  "}))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 201);
    assert_eq!(
        resp.headers().get("location").and_then(|v| v.to_str().ok()),
        Some(format!("/api/v1/incidents/{resolved_api}").as_str())
    );
    let entry: Value = resp.json().await.expect("json");
    assert_eq!(entry["kind"], "note");
    assert_eq!(entry["actor"], "key:oncall");
    assert_eq!(entry["message"], "post-mortem: DNS");
    assert_error(
        &s.call(
            &writer,
            Method::POST,
            &notes_path,
            Some(json!({"message": "  "})),
        )
        .await,
        400,
        "VALIDATION_FAILED",
        Some("/message"),
    );
    assert_error(
        &s.call(&writer, Method::POST, &notes_path, Some(json!({})))
            .await,
        400,
        "VALIDATION_FAILED",
        Some("/message"),
    );
    assert_error(
        &s.call(
            &reader,
            Method::POST,
            &notes_path,
            Some(json!({"message": "x"})),
        )
        .await,
        403,
        "FORBIDDEN",
        None,
    );
    assert_error(
        &s.call(
            &writer,
            Method::POST,
            "/api/v1/incidents/999999/notes",
            Some(json!({"message": "x"})),
        )
        .await,
        404,
        "INCIDENT_NOT_FOUND",
        None,
    );
    let (_, body) = s
        .call(
            &reader,
            Method::GET,
            &format!("/api/v1/incidents/{resolved_api}"),
            None,
        )
        .await;
    let kinds: Vec<&str> = body["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .map(|e| e["kind"].as_str().expect("kind"))
        .filter(|k| *k != "notification")
        .collect();
    assert_eq!(kinds, vec!["opened", "resolved", "note"]);
    let (_, body) = s.get(&format!("/api/v1/incidents/{open_api}")).await;
    assert!(
        body["timeline"]
            .as_array()
            .expect("timeline")
            .iter()
            .any(|e| e["kind"] == "acknowledged"
                && e["message"] == "Acknowledged by key:oncall: looking"),
        "{body}"
    );

    // Results listed with their maintenance flag; uptime with the maintenance count.
    let (_, body) = s.get(&format!("/api/v1/monitors/{api}/results")).await;
    assert_eq!(body["items"][0]["maintenance"], false);
    let (_, body) = s
        .get(&format!(
            "/api/v1/monitors/{api}/uptime?from=2024-01-01T00:00:00Z&to=2024-01-01T01:00:00Z"
        ))
        .await;
    assert_eq!(body["maintenance"], 0);
    assert_eq!(body["down"], 2);
}
