//! The storage suite: every test runs against a real SQLite file (in a temporary directory)
//! and against a fresh real PostgreSQL database (see `support/db.rs`).

mod support;

use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use pharos::model::{
    AlertPolicy, CheckResult, DEFAULT_WORKSPACE, IdempotentResponse, LatencyBucket, Monitor,
    MonitorFilter, MonitorSpec, MonitorType, NewResult, Page, PushSchedule, ResultQuery, Scope,
    Status, StoredPlugin, Timestamp, Timings, Uptime,
};
use pharos::runtime::{Capability, Grants};
use pharos::store::{Backend, BulkAction, Store, StoreError};
use serde_json::json;
use support::db::{postgres_url, sqlite_url};

/// A store under test plus what is needed to look behind it.
struct Ctx {
    store: Store,
    url: String,
    _dir: Option<tempfile::TempDir>,
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

    /// A separate raw connection pool to the same database.
    async fn raw(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        sqlx::AnyPool::connect(&self.url).await.expect("raw pool")
    }

    /// One integer from a raw query.
    async fn scalar(&self, sql: &str) -> i64 {
        let pool = self.raw().await;
        let v: (i64,) = sqlx::query_as(sql).fetch_one(&pool).await.expect(sql);
        pool.close().await;
        v.0
    }

    /// Runs a raw statement.
    async fn exec(&self, sql: &str) {
        let pool = self.raw().await;
        sqlx::query(sql).execute(&pool).await.expect(sql);
        pool.close().await;
    }

    /// Creates a check monitor `name` (no tags) in the default workspace; its id.
    async fn monitor(&self, name: &str) -> i64 {
        self.create(&spec(name, &[])).await.id
    }

    /// Creates `spec` (no push token) in the default workspace.
    async fn create(&self, spec: &MonitorSpec) -> Monitor {
        self.store
            .create_monitor(DEFAULT_WORKSPACE, spec, None)
            .await
            .unwrap()
    }

    /// Creates check monitors `<prefix>0` … `<prefix>{n-1}` in one batch; their ids.
    async fn monitors(&self, prefix: &str, n: usize) -> Vec<i64> {
        let specs: Vec<_> = (0..n)
            .map(|i| (spec(&format!("{prefix}{i}"), &[]), None))
            .collect();
        self.store
            .create_monitors(DEFAULT_WORKSPACE, &specs)
            .await
            .unwrap()
            .iter()
            .map(|m| m.id)
            .collect()
    }

    /// Monitor `id` of the default workspace, which must exist.
    async fn get(&self, id: i64) -> Monitor {
        self.store
            .get_monitor(DEFAULT_WORKSPACE, id)
            .await
            .unwrap()
            .unwrap()
    }

    /// Inserts a batch of results, which must succeed.
    async fn insert(&self, results: &[NewResult]) {
        self.store.insert_results(results).await.unwrap();
    }

    /// A page of the default workspace's monitors matching `filter`.
    async fn list(&self, filter: &MonitorFilter, limit: i64, offset: i64) -> Page<Monitor> {
        self.store
            .list_monitors(DEFAULT_WORKSPACE, filter, limit, offset)
            .await
            .unwrap()
    }

    /// Results of monitor `id` (default workspace) matching `query`.
    async fn results(&self, id: i64, query: &ResultQuery) -> Page<CheckResult> {
        self.store
            .list_results(DEFAULT_WORKSPACE, id, query)
            .await
            .unwrap()
    }

    /// Uptime of monitor `id` (default workspace) over `[from, to)`.
    async fn uptime(&self, id: i64, from: Timestamp, to: Timestamp) -> Uptime {
        self.store
            .uptime(DEFAULT_WORKSPACE, id, from, to)
            .await
            .unwrap()
    }

    /// Latency buckets of monitor `id` (default workspace) over `[from, to)`.
    async fn latency(
        &self,
        id: i64,
        from: Timestamp,
        to: Timestamp,
        buckets: u32,
    ) -> Vec<LatencyBucket> {
        self.store
            .latency(DEFAULT_WORKSPACE, id, from, to, buckets)
            .await
            .unwrap()
    }

    /// Rows of `table` belonging to monitor `id`.
    async fn rows_of(&self, table: &str, id: i64) -> i64 {
        self.scalar(&format!(
            "SELECT COUNT(*) FROM {table} WHERE monitor_id = {id}"
        ))
        .await
    }
}

/// Generates `sqlite::<test>` and `postgres::<test>` for every suite function.
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
    migrations_are_idempotent,
    monitor_crud_and_revisions,
    monitor_filters_and_pagination,
    bulk_actions,
    tags_and_plugin_references,
    results_batch_and_deleted_monitors,
    live_state_transitions,
    result_list_filters,
    rollup_exactly_once,
    latency_buckets,
    uptime_counts,
    dashboard_counts,
    purge_and_sweep,
    plugins,
    api_keys,
    idempotency,
    workspace_scoping,
    odd_results_never_fail_a_batch,
    corrupt_rows_are_reported,
    concurrent_writers,
    insert_ten_thousand,
);

#[tokio::test]
async fn sqlite_creates_its_directory_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a b").join("c");
    let store = Store::connect(&sqlite_url(&nested)).await.expect("connect");
    assert!(nested.join("pharos.db").is_file());
    store.ping().await.unwrap();
    store.close().await;
    // The `sqlite:` form without slashes works too.
    let other = format!("sqlite:{}", dir.path().join("x.db").display());
    Store::connect(&other)
        .await
        .expect("sqlite: URL")
        .close()
        .await;
    assert!(dir.path().join("x.db").is_file());
}

#[tokio::test]
async fn sqlite_in_memory() {
    let store = Store::connect("sqlite::memory:").await.expect("connect");
    let m = store
        .create_monitor(DEFAULT_WORKSPACE, &spec("mem", &["x"]), None)
        .await
        .unwrap();
    store
        .insert_results(&[result(m.id, t0(), Status::Up, 2.0)])
        .await
        .unwrap();
    let got = store
        .get_monitor(DEFAULT_WORKSPACE, m.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.state.status, Some(Status::Up));
}

#[tokio::test]
async fn unsupported_urls_are_refused() {
    for url in ["mysql://localhost/db", "", "sqlite://"] {
        let e = Store::connect(url).await.unwrap_err();
        assert!(matches!(e, StoreError::UnsupportedUrl(_)), "{url}: {e:?}");
    }
}

/// 2024-01-01T00:00:00Z, a whole minute.
fn t0() -> Timestamp {
    DateTime::from_timestamp(1_704_067_200, 0).expect("t0")
}

fn secs(s: i64) -> Duration {
    Duration::seconds(s)
}

fn mins(m: i64) -> Duration {
    Duration::minutes(m)
}

fn spec(name: &str, tags: &[&str]) -> MonitorSpec {
    MonitorSpec {
        name: name.to_string(),
        kind: MonitorType::Check,
        plugin: Some("http".to_string()),
        config: json!({"url": "http://127.0.0.1:9/", "expect": [200, 204]}),
        interval_secs: 60,
        timeout_ms: 5000,
        enabled: true,
        tags: tags.iter().map(|t| t.to_string()).collect(),
        push: None,
        alert: AlertPolicy::default(),
    }
}

fn push_spec(name: &str) -> MonitorSpec {
    MonitorSpec {
        kind: MonitorType::Push,
        plugin: None,
        config: json!({}),
        push: Some(PushSchedule {
            cron: Some("0 */5 * * * *".to_string()),
            timezone: "Europe/Paris".to_string(),
            grace_secs: 30,
        }),
        ..spec(name, &[])
    }
}

fn result(monitor_id: i64, at: Timestamp, status: Status, latency_ms: f64) -> NewResult {
    NewResult {
        monitor_id,
        workspace_id: DEFAULT_WORKSPACE,
        region: "local".to_string(),
        started_at: at,
        status,
        latency_ms,
        message: format!("{} in {latency_ms} ms", status.as_str()),
        timings: Timings::default(),
        metrics: vec![],
        details: None,
        error_cause: None,
        ping: false,
    }
}

async fn migrations_are_idempotent(ctx: Ctx) {
    let m = ctx
        .store
        .create_monitor(DEFAULT_WORKSPACE, &spec("kept", &["a"]), None)
        .await
        .unwrap();
    // Connecting again applies nothing new and keeps the data.
    let again = Store::connect(&ctx.url).await.expect("second connect");
    again.ping().await.unwrap();
    let got = again.get_monitor(DEFAULT_WORKSPACE, m.id).await.unwrap();
    assert_eq!(got.as_ref(), Some(&m));
    assert_eq!(ctx.scalar("SELECT COUNT(*) FROM workspaces").await, 1);
    if again.backend() == Backend::Sqlite {
        let pool = ctx.raw().await;
        let mode: (String,) = sqlx::query_as("PRAGMA journal_mode")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(mode.0, "wal");
        pool.close().await;
    }
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations/sqlite"))
        .expect("migrations dir")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sql"))
        })
        .count();
    assert_eq!(
        ctx.scalar("SELECT COUNT(*) FROM _sqlx_migrations").await,
        i64::try_from(files).expect("count"),
        "each migration recorded once"
    );
    again.close().await;
}

async fn monitor_crud_and_revisions(ctx: Ctx) {
    let s = &ctx.store;
    let ws = DEFAULT_WORKSPACE;
    let created = ctx.create(&spec("Web", &["prod", "eu", "prod"])).await;
    assert_eq!(created.revision, 1);
    assert_eq!(
        created.spec.tags,
        vec!["eu", "prod"],
        "sorted, deduplicated"
    );
    assert_eq!(created.state, Default::default());
    assert_eq!(created.push_token, None);
    let got = ctx.get(created.id).await;
    assert_eq!(got, created, "what create returns is what is stored");

    let push = s
        .create_monitor(ws, &push_spec("Backup job"), Some("tok-123"))
        .await
        .unwrap();
    assert_eq!(push.spec.kind, MonitorType::Push);
    let by_token = s.monitor_by_push_token("tok-123").await.unwrap().unwrap();
    assert_eq!(by_token, push);
    assert_eq!(
        by_token.spec.push.as_ref().unwrap().timezone,
        "Europe/Paris"
    );
    assert!(s.monitor_by_push_token("nope").await.unwrap().is_none());
    let dup = s
        .create_monitor(ws, &push_spec("other"), Some("tok-123"))
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");

    let mut changed = spec("Web (renamed)", &["new"]);
    changed.interval_secs = 10;
    changed.enabled = false;
    changed.config = json!({"url": "http://127.0.0.1:9/x"});
    let updated = s
        .update_monitor(ws, created.id, &changed)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updated.revision, 2);
    assert_eq!(updated.spec, changed);
    assert!(updated.updated_at >= created.updated_at);
    assert_eq!(updated.created_at, created.created_at);
    assert!(
        s.update_monitor(ws, 999_999, &changed)
            .await
            .unwrap()
            .is_none()
    );

    assert!(
        s.set_push_token(ws, push.id, Some("tok-456"))
            .await
            .unwrap()
    );
    assert!(s.monitor_by_push_token("tok-123").await.unwrap().is_none());
    assert_eq!(
        s.monitor_by_push_token("tok-456")
            .await
            .unwrap()
            .unwrap()
            .revision,
        2
    );

    let batch = s
        .create_monitors(
            ws,
            &[
                (spec("b1", &[]), None),
                (push_spec("b2"), Some("tok-b2".to_string())),
            ],
        )
        .await
        .unwrap();
    assert_eq!(batch.len(), 2);
    assert!(batch[0].id < batch[1].id);
    // All or none: a conflicting token rolls the whole batch back.
    let before = s.all_monitors().await.unwrap().len();
    let failed = s
        .create_monitors(
            ws,
            &[
                (spec("c1", &[]), None),
                (push_spec("c2"), Some("tok-b2".to_string())),
            ],
        )
        .await;
    assert!(matches!(failed, Err(StoreError::Conflict(_))));
    assert_eq!(s.all_monitors().await.unwrap().len(), before);

    assert!(s.delete_monitor(ws, created.id).await.unwrap());
    assert!(s.get_monitor(ws, created.id).await.unwrap().is_none());
    assert!(!s.delete_monitor(ws, created.id).await.unwrap());
    let all = s.all_monitors().await.unwrap();
    assert_eq!(
        all.iter().map(|m| m.spec.name.as_str()).collect::<Vec<_>>(),
        vec!["Backup job", "b1", "b2"]
    );
    // Ids are never reused after a delete.
    let next = ctx.create(&spec("next", &[])).await;
    assert!(next.id > batch[1].id);
}

async fn monitor_filters_and_pagination(ctx: Ctx) {
    let mut ids = Vec::new();
    for i in 0..25 {
        let mut sp = spec(
            &format!("Service {i:02}"),
            if i % 2 == 0 { &["even"] } else { &["odd"] },
        );
        sp.enabled = i % 5 != 0;
        ids.push(ctx.create(&sp).await.id);
    }
    let odd = ctx.create(&spec("100%_Ünïcode\\Name", &["special"])).await;

    let all = ctx.list(&MonitorFilter::default(), 10, 0).await;
    assert_eq!(all.total, 26);
    assert_eq!(all.items.len(), 10);
    assert_eq!(all.items[0].id, ids[0]);
    let page3 = ctx.list(&MonitorFilter::default(), 10, 20).await;
    assert_eq!(page3.items.len(), 6);
    assert_eq!(page3.items.last().unwrap().id, odd.id);
    let beyond = ctx.list(&MonitorFilter::default(), 10, 100).await;
    assert_eq!((beyond.items.len(), beyond.total), (0, 26));

    let by_tag = MonitorFilter {
        tag: Some("even".into()),
        ..Default::default()
    };
    let even = ctx.list(&by_tag, 100, 0).await;
    assert_eq!(even.total, 13);
    assert!(even.items.iter().all(|m| m.spec.tags == vec!["even"]));

    let paused = MonitorFilter {
        enabled: Some(false),
        ..Default::default()
    };
    let p = ctx.list(&paused, 100, 0).await;
    assert_eq!(p.total, 5);
    assert!(p.items.iter().all(|m| !m.spec.enabled));
    let even_enabled = MonitorFilter {
        tag: Some("even".into()),
        enabled: Some(true),
        ..Default::default()
    };
    assert_eq!(ctx.list(&even_enabled, 100, 0).await.total, 10);

    let text = |t: &str| MonitorFilter {
        text: Some(t.to_string()),
        ..Default::default()
    };
    assert_eq!(ctx.list(&text("service 1"), 100, 0).await.total, 10);
    assert_eq!(ctx.list(&text("SERVICE 07"), 100, 0).await.total, 1);
    // LIKE wildcards are matched literally; matching is case-insensitive beyond ASCII.
    let hits = ctx.list(&text("%_ü"), 100, 0).await;
    assert_eq!(
        hits.items.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![odd.id]
    );
    assert_eq!(ctx.list(&text("0%"), 100, 0).await.total, 1);
    assert_eq!(ctx.list(&text("e_0"), 100, 0).await.total, 0);
    assert_eq!(ctx.list(&text("ÜNÏ"), 100, 0).await.total, 1);
    assert_eq!(ctx.list(&text("\\name"), 100, 0).await.total, 1);

    // Status filter reads the live state.
    ctx.insert(&[
        result(ids[1], t0(), Status::Down, 5.0),
        result(ids[2], t0(), Status::Up, 5.0),
        result(ids[3], t0(), Status::Down, 5.0),
    ])
    .await;
    let down = MonitorFilter {
        status: Some(Status::Down),
        ..Default::default()
    };
    let d = ctx.list(&down, 100, 0).await;
    assert_eq!(
        d.items.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![ids[1], ids[3]]
    );
    assert_eq!(d.items[0].state.status, Some(Status::Down));
    let down_odd = MonitorFilter {
        status: Some(Status::Down),
        tag: Some("odd".into()),
        text: Some("03".into()),
        enabled: Some(true),
    };
    assert_eq!(ctx.list(&down_odd, 100, 0).await.total, 1);
}

async fn bulk_actions(ctx: Ctx) {
    let s = &ctx.store;
    let ws = DEFAULT_WORKSPACE;
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(ctx.create(&spec(&format!("m{i}"), &["base"])).await.id);
    }
    let missing = 987_654;
    let done = s
        .bulk_monitors(ws, &[ids[0], ids[1], missing, ids[0]], &BulkAction::Disable)
        .await
        .unwrap();
    assert_eq!(done, vec![ids[0], ids[1]]);
    let m0 = ctx.get(ids[0]).await;
    assert!(!m0.spec.enabled);
    assert_eq!(m0.revision, 2);
    let done = s
        .bulk_monitors(ws, &[ids[0]], &BulkAction::Enable)
        .await
        .unwrap();
    assert_eq!(done, vec![ids[0]]);
    let m0 = ctx.get(ids[0]).await;
    assert!(m0.spec.enabled);
    assert_eq!(m0.revision, 3);

    let add = BulkAction::AddTags(vec!["x".into(), "base".into(), "a".into()]);
    assert_eq!(
        s.bulk_monitors(ws, &[ids[2], ids[3], missing], &add)
            .await
            .unwrap(),
        vec![ids[2], ids[3]]
    );
    let m2 = ctx.get(ids[2]).await;
    assert_eq!(m2.spec.tags, vec!["a", "base", "x"]);
    assert_eq!(m2.revision, 2);
    let remove = BulkAction::RemoveTags(vec!["base".into(), "zzz".into()]);
    assert_eq!(
        s.bulk_monitors(ws, &ids, &remove).await.unwrap(),
        ids.clone()
    );
    let m2 = ctx.get(ids[2]).await;
    assert_eq!(m2.spec.tags, vec!["a", "x"]);
    assert_eq!(m2.revision, 3);
    assert!(ctx.get(ids[1]).await.spec.tags.is_empty());

    assert!(
        s.bulk_monitors(ws, &[], &BulkAction::Delete)
            .await
            .unwrap()
            .is_empty()
    );
    let deleted = s
        .bulk_monitors(ws, &[ids[3], ids[1], missing], &BulkAction::Delete)
        .await
        .unwrap();
    assert_eq!(deleted, vec![ids[1], ids[3]]);
    let left: Vec<i64> = s
        .all_monitors()
        .await
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(left, vec![ids[0], ids[2]]);
    assert_eq!(ctx.rows_of("monitor_tags", ids[3]).await, 0, "tags cascade");

    // Many ids at once (more than one chunk).
    let many = ctx.monitors("bulk", 1100).await;
    let tagged = s
        .bulk_monitors(ws, &many, &BulkAction::AddTags(vec!["many".into()]))
        .await
        .unwrap();
    assert_eq!(tagged.len(), 1100);
    let tags = s.tags(ws).await.unwrap();
    assert!(tags.iter().any(|t| t.tag == "many" && t.monitors == 1100));
    assert_eq!(
        s.bulk_monitors(ws, &many, &BulkAction::Delete)
            .await
            .unwrap()
            .len(),
        1100
    );
}

async fn tags_and_plugin_references(ctx: Ctx) {
    let s = &ctx.store;
    let ws = DEFAULT_WORKSPACE;
    ctx.create(&spec("a", &["web", "prod"])).await;
    ctx.create(&spec("b", &["web"])).await;
    ctx.create(&spec("c", &[])).await;
    let tags = s.tags(ws).await.unwrap();
    let pairs: Vec<(&str, i64)> = tags.iter().map(|t| (t.tag.as_str(), t.monitors)).collect();
    assert_eq!(pairs, vec![("prod", 1), ("web", 2)]);

    let mut pinned = spec("pinned", &[]);
    pinned.plugin = Some("probe@1.2.0".into());
    ctx.create(&pinned).await;
    let mut other = spec("other version", &[]);
    other.plugin = Some("probe@1.3.0".into());
    ctx.create(&other).await;
    let mut follows = spec("follows", &[]);
    follows.plugin = Some("probe".into());
    ctx.create(&follows).await;
    ctx.create(&follows).await;

    assert_eq!(
        s.monitors_using_plugin(ws, "probe", "1.2.0").await.unwrap(),
        3
    );
    let usage = s.plugin_usage(ws, "probe", "1.2.0").await.unwrap();
    assert_eq!((usage.pinned, usage.unpinned), (1, 2));
    assert_eq!(
        s.monitors_using_plugin(ws, "probe", "9.9.9").await.unwrap(),
        2
    );
    assert_eq!(
        s.monitors_using_plugin(ws, "none", "1.0.0").await.unwrap(),
        0
    );
    assert_eq!(
        s.monitors_using_plugin(ws, "http", "0.1.0").await.unwrap(),
        3
    );
}

async fn results_batch_and_deleted_monitors(ctx: Ctx) {
    let s = &ctx.store;
    let ws = DEFAULT_WORKSPACE;
    let a = ctx.monitor("a").await;
    let b = ctx.monitor("b").await;
    let gone = ctx.monitor("gone").await;
    assert!(s.delete_monitor(ws, gone).await.unwrap());
    let never = 424_242;

    let mut batch = Vec::new();
    for i in 0..1500 {
        let mut r = result(
            if i % 2 == 0 { a } else { b },
            t0() + Duration::milliseconds(i * 100),
            Status::Up,
            10.0 + i as f64,
        );
        r.timings = Timings {
            dns_ms: Some(1.0),
            connect_ms: Some(2.0),
            tls_ms: None,
            first_byte_ms: Some(3.5),
            total_ms: Some(10.0),
        };
        r.metrics = vec![("http_status".into(), 200.0), ("bytes".into(), 1234.0)];
        r.details = Some(json!({"headers": {"server": "test"}, "i": i}).into());
        r.error_cause = (i == 7).then(|| "timeout".to_string());
        batch.push(r);
    }
    batch.push(result(gone, t0(), Status::Down, 1.0));
    batch.push(result(never, t0(), Status::Down, 1.0));
    s.insert_results(&batch)
        .await
        .expect("batch with unknown monitors");
    ctx.insert(&[]).await;
    s.insert_results(&[result(gone, t0(), Status::Up, 1.0)])
        .await
        .expect("batch of only unknown monitors");

    assert_eq!(ctx.scalar("SELECT COUNT(*) FROM results").await, 1500);
    assert_eq!(
        ctx.scalar(&format!(
            "SELECT COUNT(*) FROM results WHERE monitor_id IN ({gone}, {never})"
        ))
        .await,
        0
    );
    let q = ResultQuery {
        limit: 1000,
        ..Default::default()
    };
    let page = ctx.results(a, &q).await;
    assert_eq!(page.total, 750);
    assert_eq!(page.items.len(), 750);
    let oldest = page.items.last().unwrap();
    assert_eq!(oldest.started_at, t0());
    assert_eq!(oldest.region, "local");
    assert_eq!(oldest.timings.dns_ms, Some(1.0));
    assert_eq!(oldest.timings.tls_ms, None);
    assert_eq!(oldest.timings.first_byte_ms, Some(3.5));
    assert_eq!(oldest.metrics.get("http_status"), Some(&json!(200.0)));
    assert_eq!(oldest.metrics.len(), 2);
    assert_eq!(
        oldest.details,
        Some(json!({"headers": {"server": "test"}, "i": 0}))
    );
    assert_eq!(oldest.message, "up in 10 ms");
    let with_cause = ctx.results(b, &q).await;
    assert!(
        with_cause
            .items
            .iter()
            .any(|r| r.error_cause.as_deref() == Some("timeout"))
    );
    let state = ctx.get(a).await.state;
    assert_eq!(state.status, Some(Status::Up));
    assert_eq!(state.since, Some(t0()));
    assert_eq!(
        state.last_checked_at,
        Some(t0() + Duration::milliseconds(149_800))
    );
    assert_eq!(state.last_latency_ms, Some(1508.0));
}

async fn live_state_transitions(ctx: Ctx) {
    let s = &ctx.store;
    let ws = DEFAULT_WORKSPACE;
    let m = s
        .create_monitor(ws, &push_spec("job"), Some("t"))
        .await
        .unwrap()
        .id;
    let other = ctx.monitor("other").await;
    let state = || async { ctx.get(m).await.state };
    let ping = |at: Timestamp, status: Status| NewResult {
        ping: true,
        ..result(m, at, status, 0.0)
    };

    ctx.insert(&[ping(t0(), Status::Up)]).await;
    let st = state().await;
    assert_eq!(
        (st.status, st.since, st.last_checked_at, st.last_ping_at),
        (Some(Status::Up), Some(t0()), Some(t0()), Some(t0()))
    );

    ctx.insert(&[ping(t0() + secs(10), Status::Up)]).await;
    let st = state().await;
    assert_eq!(st.since, Some(t0()), "same status keeps since");
    assert_eq!(st.last_checked_at, Some(t0() + secs(10)));
    assert_eq!(st.last_ping_at, Some(t0() + secs(10)));

    let mut late = result(m, t0() + secs(20), Status::Down, 0.0);
    late.error_cause = Some("no_heartbeat".into());
    late.message = "no ping".into();
    ctx.insert(&[late, result(m, t0() + secs(30), Status::Down, 0.0)])
        .await;
    let st = state().await;
    assert_eq!(st.status, Some(Status::Down));
    assert_eq!(
        st.since,
        Some(t0() + secs(20)),
        "since = first result of the new status"
    );
    assert_eq!(st.last_checked_at, Some(t0() + secs(30)));
    assert_eq!(st.last_ping_at, Some(t0() + secs(10)), "not a ping");

    // An out-of-order older result does not move the state back, but a ping still counts.
    ctx.insert(&[ping(t0() + secs(5), Status::Up)]).await;
    let st = state().await;
    assert_eq!(st.status, Some(Status::Down));
    assert_eq!(st.since, Some(t0() + secs(20)));
    assert_eq!(st.last_ping_at, Some(t0() + secs(10)));
    ctx.insert(&[ping(t0() + secs(25), Status::Up)]).await;
    assert_eq!(state().await.last_ping_at, Some(t0() + secs(25)));
    assert_eq!(state().await.status, Some(Status::Down));

    // Unordered within one batch: applied in time order; the other monitor is independent.
    ctx.insert(&[
        result(m, t0() + secs(60), Status::Degraded, 7.0),
        result(other, t0() + secs(60), Status::Error, 1.0),
        result(m, t0() + secs(40), Status::Up, 5.0),
        result(m, t0() + secs(50), Status::Degraded, 6.0),
    ])
    .await;
    let st = state().await;
    assert_eq!(st.status, Some(Status::Degraded));
    assert_eq!(st.since, Some(t0() + secs(50)));
    assert_eq!(st.last_checked_at, Some(t0() + secs(60)));
    assert_eq!(st.last_latency_ms, Some(7.0));
    assert_eq!(st.last_message.as_deref(), Some("degraded in 7 ms"));
    let o = ctx.get(other).await.state;
    assert_eq!(
        (o.status, o.since),
        (Some(Status::Error), Some(t0() + secs(60)))
    );
    // Result writes never touch the config row.
    let monitor = ctx.get(m).await;
    assert_eq!(monitor.revision, 1);
}

async fn result_list_filters(ctx: Ctx) {
    let m = ctx.monitor("m").await;
    let statuses = [Status::Up, Status::Up, Status::Down, Status::Error];
    let batch: Vec<_> = (0..40)
        .map(|i| result(m, t0() + secs(i * 10), statuses[i as usize % 4], i as f64))
        .collect();
    ctx.insert(&batch).await;

    let q =
        |from: Option<i64>, to: Option<i64>, status: Option<Status>, limit, offset| ResultQuery {
            from: from.map(|x| t0() + secs(x)),
            to: to.map(|x| t0() + secs(x)),
            status,
            limit,
            offset,
        };
    let all = ctx.results(m, &q(None, None, None, 5, 0)).await;
    assert_eq!(all.total, 40);
    let times: Vec<_> = all.items.iter().map(|r| r.started_at).collect();
    assert_eq!(
        times,
        (0..5)
            .map(|i| t0() + secs(390 - i * 10))
            .collect::<Vec<_>>(),
        "newest first"
    );
    let page2 = ctx.results(m, &q(None, None, None, 5, 5)).await;
    assert_eq!(page2.items[0].started_at, t0() + secs(340));

    let range = ctx.results(m, &q(Some(100), Some(200), None, 100, 0)).await;
    assert_eq!(range.total, 10, "from inclusive, to exclusive");
    assert_eq!(range.items.first().unwrap().started_at, t0() + secs(190));
    assert_eq!(range.items.last().unwrap().started_at, t0() + secs(100));

    let down = ctx
        .results(m, &q(None, None, Some(Status::Down), 100, 0))
        .await;
    assert_eq!(down.total, 10);
    assert!(down.items.iter().all(|r| r.status == Status::Down));
    let combo = ctx
        .results(m, &q(Some(0), Some(200), Some(Status::Up), 3, 1))
        .await;
    assert_eq!(combo.total, 10);
    assert_eq!(combo.items.len(), 3);
    assert_eq!(combo.items[0].started_at, t0() + secs(160));
    let none = ctx.results(m + 1000, &q(None, None, None, 10, 0)).await;
    assert_eq!((none.total, none.items.len()), (0, 0));
}

async fn rollup_exactly_once(ctx: Ctx) {
    let s = &ctx.store;
    let m = ctx.monitor("m").await;
    // Nothing to roll up yet: no watermark is set.
    assert_eq!(s.rollup(t0() + mins(5)).await.unwrap(), 0);
    assert_eq!(ctx.scalar("SELECT COUNT(*) FROM meta").await, 0);

    let mut batch = Vec::new();
    for minute in 0..3 {
        for i in 0..6 {
            let status = if i == 5 { Status::Down } else { Status::Up };
            batch.push(result(m, t0() + mins(minute) + secs(i * 10), status, 100.0));
        }
    }
    let mut eu = result(m, t0() + secs(1), Status::Error, 3.0);
    eu.region = "eu".into();
    batch.push(eu);
    ctx.insert(&batch).await;

    // Minutes 0 and 1 are complete before t0+2m30s.
    assert_eq!(s.rollup(t0() + mins(2) + secs(30)).await.unwrap(), 2);
    assert_eq!(
        s.rollup(t0() + mins(2) + secs(30)).await.unwrap(),
        0,
        "exactly once"
    );
    assert_eq!(
        ctx.scalar("SELECT COUNT(*) FROM rollups").await,
        3,
        "two minutes + eu"
    );
    let watermark = (t0() + mins(2)).timestamp_millis();
    assert_eq!(
        ctx.scalar("SELECT CAST(value AS BIGINT) FROM meta WHERE key = 'rollup_watermark'")
            .await,
        watermark
    );
    assert_eq!(
        ctx.scalar(&format!(
            "SELECT up FROM rollups WHERE monitor_id = {m} AND region = 'local' AND minute = {}",
            t0().timestamp_millis()
        ))
        .await,
        5
    );

    // Uptime: rolled-up minutes from rollups, minute 2 from raw results.
    let u = ctx.uptime(m, t0(), t0() + mins(3)).await;
    assert_eq!((u.up, u.down, u.error, u.total), (15, 3, 1, 19));

    // A result arriving late for a rolled-up minute is not counted twice (nor at all).
    ctx.insert(&[result(m, t0() + mins(1) + secs(59), Status::Down, 1.0)])
        .await;
    let u2 = ctx.uptime(m, t0(), t0() + mins(3)).await;
    assert_eq!(u2, u);

    // Later: minute 2, then an empty stretch up to minute 10 in one go.
    assert_eq!(s.rollup(t0() + mins(10)).await.unwrap(), 8);
    assert_eq!(ctx.scalar("SELECT COUNT(*) FROM rollups").await, 4);
    let u3 = ctx.uptime(m, t0(), t0() + mins(3)).await;
    assert_eq!(
        u3, u,
        "minute 2 moved from raw to rollups without changing counts"
    );

    // A retry of already rolled-up minutes (watermark put back) upserts, never duplicates.
    ctx.exec(&format!(
        "UPDATE meta SET value = '{}' WHERE key = 'rollup_watermark'",
        t0().timestamp_millis()
    ))
    .await;
    assert_eq!(s.rollup(t0() + mins(10)).await.unwrap(), 10);
    assert_eq!(ctx.scalar("SELECT COUNT(*) FROM rollups").await, 4);
    let u4 = ctx.uptime(m, t0(), t0() + mins(3)).await;
    assert_eq!(
        (u4.up, u4.down, u4.total),
        (15, 4, 20),
        "recomputed from raw"
    );

    // Results after the watermark are read raw.
    ctx.insert(&[result(m, t0() + mins(10) + secs(5), Status::Up, 1.0)])
        .await;
    let u5 = ctx.uptime(m, t0(), t0() + mins(11)).await;
    assert_eq!(u5.total, 21);
}

async fn latency_buckets(ctx: Ctx) {
    let s = &ctx.store;
    let m = ctx.monitor("m").await;
    let mut batch = Vec::new();
    // Minute 0: 1..=100 ms, minute 1: 101..=200 ms (up, with phases), minute 3: down only.
    for v in 1..=200 {
        let minute = if v <= 100 { 0 } else { 1 };
        let mut r = result(
            m,
            t0() + mins(minute) + Duration::milliseconds(v * 250),
            Status::Up,
            v as f64,
        );
        r.timings.dns_ms = Some(5.0);
        r.timings.connect_ms = Some(if minute == 0 { 10.0 } else { 20.0 });
        batch.push(r);
    }
    for i in 0..10 {
        batch.push(result(m, t0() + mins(3) + secs(i), Status::Down, 10_000.0));
    }
    ctx.insert(&batch).await;
    assert_eq!(s.rollup(t0() + mins(2)).await.unwrap(), 2);
    // Minute 4, after the watermark: raw results 10, 20, …, 100 ms.
    let raw: Vec<_> = (1..=10)
        .map(|i| {
            result(
                m,
                t0() + mins(4) + secs(i),
                Status::Degraded,
                (i * 10) as f64,
            )
        })
        .collect();
    ctx.insert(&raw).await;

    let b = ctx.latency(m, t0(), t0() + mins(6), 6).await;
    assert_eq!(b.len(), 6, "fixed x-axis");
    for (i, bucket) in b.iter().enumerate() {
        assert_eq!(bucket.start, t0() + mins(i as i64));
        assert_eq!(bucket.end, t0() + mins(i as i64 + 1));
    }
    // One rolled-up minute: exact percentiles stored with the minute.
    assert_eq!(b[0].count, 100);
    assert_eq!(
        (b[0].p50_ms, b[0].p95_ms, b[0].p99_ms),
        (Some(50.0), Some(95.0), Some(99.0))
    );
    assert_eq!(
        (b[0].min_ms, b[0].max_ms, b[0].avg_ms),
        (Some(1.0), Some(100.0), Some(50.5))
    );
    assert_eq!(
        (b[0].dns_ms, b[0].connect_ms, b[0].tls_ms),
        (Some(5.0), Some(10.0), None)
    );
    assert_eq!(b[1].p50_ms, Some(150.0));
    // Empty minute, and a minute of down results only: counted, no latency figures.
    assert_eq!(
        (b[2].count, b[2].p50_ms, b[2].avg_ms, b[2].min_ms),
        (0, None, None, None)
    );
    assert_eq!((b[3].count, b[3].p99_ms, b[3].max_ms), (10, None, None));
    // Raw minute: exact.
    assert_eq!(b[4].count, 10);
    assert_eq!(
        (b[4].p50_ms, b[4].p95_ms, b[4].p99_ms),
        (Some(50.0), Some(100.0), Some(100.0))
    );
    assert_eq!(b[4].avg_ms, Some(55.0));
    assert_eq!(b[4].dns_ms, None);
    assert_eq!(b[5].count, 0);

    // Two-minute buckets merge the minutes' histograms: within the histogram resolution.
    let b = ctx.latency(m, t0(), t0() + mins(6), 3).await;
    assert_eq!(b.len(), 3);
    assert_eq!(b[0].end, t0() + mins(2));
    assert_eq!(b[0].count, 200);
    let near = |got: Option<f64>, exact: f64| {
        let g = got.expect("a percentile");
        assert!((g - exact).abs() / exact <= 0.045, "{g} vs exact {exact}");
    };
    near(b[0].p50_ms, 100.0);
    near(b[0].p95_ms, 190.0);
    near(b[0].p99_ms, 198.0);
    assert_eq!(
        (b[0].min_ms, b[0].max_ms, b[0].avg_ms),
        (Some(1.0), Some(200.0), Some(100.5))
    );
    assert_eq!(b[0].connect_ms, Some(15.0), "phase means weighted by count");
    assert_eq!(b[1].count, 10);
    assert_eq!(b[1].p50_ms, None);
    assert_eq!(b[2].p50_ms, Some(50.0));

    // About `buckets`: a whole number of minutes each, the last one cut at `to`.
    let b = ctx.latency(m, t0(), t0() + mins(6), 4).await;
    assert_eq!(b.len(), 3);
    let b = ctx
        .latency(m, t0() + secs(30), t0() + mins(5) + secs(30), 60)
        .await;
    assert_eq!(b.len(), 6, "minute buckets from the minute holding `from`");
    assert_eq!(b[0].start, t0());
    assert_eq!(b[5].end, t0() + mins(5) + secs(30));
    let day = ctx.latency(m, t0(), t0() + Duration::days(1), 60).await;
    assert_eq!(day.len(), 60);
    assert_eq!(day[0].end - day[0].start, mins(24));
    assert_eq!(day[0].count, 220, "every result of the first 24 minutes");
    // 210 latencies: 1..=200 and 10, 20, …, 100; the 105th is 96.
    near(day[0].p50_ms, 96.0);
    assert!(ctx.latency(m, t0(), t0(), 60).await.is_empty());
    assert_eq!(ctx.latency(m, t0(), t0() + mins(3), 0).await.len(), 1);
}

async fn uptime_counts(ctx: Ctx) {
    let s = &ctx.store;
    let m = ctx.monitor("m").await;
    let empty = ctx.uptime(m, t0(), t0() + mins(10)).await;
    assert_eq!((empty.total, empty.uptime_pct), (0, None));
    assert_eq!(empty.from, Some(t0()));
    let mut batch = Vec::new();
    for (i, status) in [
        Status::Up,
        Status::Up,
        Status::Up,
        Status::Degraded,
        Status::Down,
        Status::Error,
        Status::Error,
    ]
    .into_iter()
    .enumerate()
    {
        batch.push(result(m, t0() + secs(i as i64 * 20), status, 1.0));
    }
    ctx.insert(&batch).await;
    let u = ctx.uptime(m, t0(), t0() + mins(10)).await;
    assert_eq!(
        (u.up, u.degraded, u.down, u.error, u.total),
        (3, 1, 1, 2, 7)
    );
    assert_eq!(
        u.uptime_pct,
        Some(80.0),
        "errors are not counted against the target"
    );
    // The same after the minutes are rolled up.
    s.rollup(t0() + mins(5)).await.unwrap();
    assert_eq!(ctx.uptime(m, t0(), t0() + mins(10)).await, u);
    // Rolled-up minutes overlapping the range count whole (minute 1 holds 60 s … 100 s).
    let part = ctx.uptime(m, t0() + secs(100), t0() + mins(10)).await;
    assert_eq!((part.degraded, part.down, part.error), (1, 1, 2));
    // Only errors: no percentage.
    let e = ctx.uptime(m, t0() + mins(2), t0() + mins(10)).await;
    assert_eq!((e.error, e.total, e.uptime_pct), (1, 1, None));
    let raw_only = ctx.uptime(m, t0() + mins(5), t0() + mins(10)).await;
    assert_eq!(raw_only.total, 0);
}

async fn dashboard_counts(ctx: Ctx) {
    let ctx = &ctx;
    let s = &ctx.store;
    let ws = DEFAULT_WORKSPACE;
    let mk = |name: &'static str, enabled: bool| {
        let mut sp = spec(name, &[]);
        sp.enabled = enabled;
        async move { ctx.create(&sp).await.id }
    };
    let up = mk("up", true).await;
    let down = mk("down", true).await;
    let degraded = mk("degraded", true).await;
    let error = mk("error", true).await;
    let _pending = mk("pending", true).await;
    let paused = mk("paused", false).await;
    ctx.insert(&[
        result(up, t0(), Status::Up, 1.0),
        result(down, t0(), Status::Down, 1.0),
        result(degraded, t0(), Status::Degraded, 1.0),
        result(error, t0(), Status::Error, 1.0),
        result(paused, t0(), Status::Down, 1.0),
    ])
    .await;
    let d = s.dashboard_summary(ws).await.unwrap();
    assert_eq!((d.monitors, d.enabled, d.paused), (6, 5, 1));
    assert_eq!(
        (d.up, d.degraded, d.down, d.error, d.pending),
        (1, 1, 1, 1, 1)
    );
    let empty = s.dashboard_summary(77).await.unwrap();
    assert_eq!(empty, Default::default());
}

async fn purge_and_sweep(ctx: Ctx) {
    let s = &ctx.store;
    let ws = DEFAULT_WORKSPACE;
    let m = ctx.monitor("m").await;
    let doomed = ctx.monitor("doomed").await;
    let mut batch = Vec::new();
    for i in 0..5000 {
        batch.push(result(
            m,
            t0() + Duration::milliseconds(i * 100),
            Status::Up,
            1.0,
        ));
        batch.push(result(
            doomed,
            t0() + Duration::milliseconds(i * 100),
            Status::Up,
            1.0,
        ));
    }
    ctx.insert(&batch).await;
    assert_eq!(s.rollup(t0() + mins(10)).await.unwrap(), 10);
    let before = ctx.uptime(m, t0(), t0() + mins(10)).await;
    assert_eq!(before.up, 5000);

    // Older than t0+5m: 3000 results of each monitor.
    assert_eq!(s.purge_results(t0() + mins(5)).await.unwrap(), 6000);
    assert_eq!(ctx.scalar("SELECT COUNT(*) FROM results").await, 4000);
    assert_eq!(s.purge_results(t0() + mins(5)).await.unwrap(), 0);
    // Rollups are kept: uptime over the purged range is unchanged.
    assert_eq!(ctx.uptime(m, t0(), t0() + mins(10)).await, before);

    // A deleted monitor's results and rollups go too (in the background or at the next purge).
    assert!(s.delete_monitor(ws, doomed).await.unwrap());
    s.purge_results(t0() - Duration::days(1)).await.unwrap();
    assert_eq!(ctx.rows_of("results", doomed).await, 0);
    assert_eq!(ctx.rows_of("rollups", doomed).await, 0);
    assert_eq!(
        ctx.scalar("SELECT COUNT(*) FROM monitor_tombstones").await,
        0
    );
    assert_eq!(ctx.scalar("SELECT COUNT(*) FROM results").await, 2000);
    assert_eq!(ctx.uptime(m, t0(), t0() + mins(10)).await, before);
}

fn plugin(name: &str, version: &str, digest: &str) -> StoredPlugin {
    StoredPlugin {
        workspace_id: DEFAULT_WORKSPACE,
        name: name.to_string(),
        version: version.to_string(),
        digest: digest.to_string(),
        kind: "check".to_string(),
        description: format!("{name} probe"),
        config_schema: json!({"type": "object", "properties": {"host": {"type": "string"}}}),
        capabilities: vec!["http".into(), "dns".into()],
        grants: None,
        enabled: false,
        size: 4,
        created_at: t0(),
    }
}

async fn plugins(ctx: Ctx) {
    let s = &ctx.store;
    let ws = DEFAULT_WORKSPACE;
    let bytes = b"\0asm".to_vec();
    let p1 = plugin("probe", "1.0.0", "d1");
    s.insert_plugin(&p1, &bytes).await.unwrap();
    assert_eq!(
        s.get_plugin(ws, "probe", "1.0.0").await.unwrap(),
        Some(p1.clone())
    );
    let again = s.insert_plugin(&p1, &bytes).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let other_bytes = s
        .insert_plugin(&plugin("probe", "1.0.0", "d9"), b"zzzz")
        .await;
    assert!(matches!(other_bytes, Err(StoreError::Conflict(_))));
    assert_eq!(
        s.plugin_bytes("d9").await.unwrap(),
        None,
        "refused upload stores nothing"
    );

    // Same bytes under another version: stored once.
    s.insert_plugin(&plugin("probe", "1.1.0", "d1"), &bytes)
        .await
        .unwrap();
    s.insert_plugin(&plugin("alpha", "0.1.0", "d2"), b"\0asm2")
        .await
        .unwrap();
    assert_eq!(ctx.scalar("SELECT COUNT(*) FROM plugin_blobs").await, 2);
    assert_eq!(s.plugin_bytes("d1").await.unwrap(), Some(bytes.clone()));
    let names: Vec<String> = s
        .list_plugins(ws)
        .await
        .unwrap()
        .iter()
        .map(|p| format!("{}@{}", p.name, p.version))
        .collect();
    assert_eq!(names, vec!["alpha@0.1.0", "probe@1.0.0", "probe@1.1.0"]);
    assert_eq!(s.all_plugins().await.unwrap().len(), 3);

    let grants = Grants {
        capabilities: [Capability::Http].into_iter().collect(),
        allowed_hosts: Some(vec!["*.example.com".into(), "hooks.slack.com".into()]),
    };
    let set_enabled = |version: &'static str, on: bool| async move {
        s.set_plugin_enabled(ws, "probe", version, on)
            .await
            .unwrap()
    };
    let enabled = |version: &'static str| async move {
        s.get_plugin(ws, "probe", version)
            .await
            .unwrap()
            .unwrap()
            .enabled
    };
    assert!(
        s.set_plugin_grants(ws, "probe", "1.1.0", &grants)
            .await
            .unwrap()
    );
    assert!(set_enabled("1.1.0", true).await);
    assert!(!set_enabled("7.0.0", true).await);
    assert!(
        !s.set_plugin_grants(ws, "nope", "1.0.0", &grants)
            .await
            .unwrap()
    );
    let got = s.get_plugin(ws, "probe", "1.1.0").await.unwrap().unwrap();
    assert_eq!(got.grants, Some(grants));
    assert!(got.enabled);
    assert!(!enabled("1.0.0").await);
    assert!(set_enabled("1.1.0", false).await);
    assert!(!enabled("1.1.0").await);

    // Deleting one version keeps bytes another version shares; the last one takes them.
    assert!(s.delete_plugin(ws, "probe", "1.0.0").await.unwrap());
    assert!(!s.delete_plugin(ws, "probe", "1.0.0").await.unwrap());
    assert_eq!(s.plugin_bytes("d1").await.unwrap(), Some(bytes.clone()));
    assert!(s.delete_plugin(ws, "probe", "1.1.0").await.unwrap());
    assert_eq!(s.plugin_bytes("d1").await.unwrap(), None);
    assert_eq!(
        s.plugin_bytes("d2").await.unwrap(),
        Some(b"\0asm2".to_vec())
    );
    // A deleted version can be uploaded again.
    s.insert_plugin(&p1, &bytes).await.unwrap();
}

async fn api_keys(ctx: Ctx) {
    let s = &ctx.store;
    let ws = DEFAULT_WORKSPACE;
    assert_eq!(s.count_api_keys().await.unwrap(), 0);
    let admin = s
        .create_api_key(ws, "bootstrap", "phk_abcd", "hash-1", &[Scope::Admin])
        .await
        .unwrap();
    let reader = s
        .create_api_key(ws, "ci", "phk_efgh", "hash-2", &[Scope::Read, Scope::Write])
        .await
        .unwrap();
    assert_eq!(reader.scopes, vec![Scope::Read, Scope::Write]);
    assert_eq!((reader.last_used_at, reader.revoked_at), (None, None));
    let dup = s
        .create_api_key(ws, "dup", "phk_x", "hash-1", &[Scope::Read])
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))));
    assert_eq!(
        s.api_key_by_hash("hash-1").await.unwrap(),
        Some(admin.clone())
    );
    assert_eq!(s.api_key_by_hash("unknown").await.unwrap(), None);

    s.touch_api_key(reader.id, t0() + mins(1)).await.unwrap();
    s.touch_api_key(reader.id, t0()).await.unwrap();
    let used = s.api_key_by_hash("hash-2").await.unwrap().unwrap();
    assert_eq!(used.last_used_at, Some(t0() + mins(1)), "never moves back");

    assert!(s.revoke_api_key(ws, reader.id).await.unwrap());
    assert!(!s.revoke_api_key(ws, reader.id).await.unwrap());
    assert!(!s.revoke_api_key(ws, 9999).await.unwrap());
    assert!(
        !s.revoke_api_key(2, admin.id).await.unwrap(),
        "other workspace"
    );
    assert_eq!(s.api_key_by_hash("hash-2").await.unwrap(), None);
    let list = s.list_api_keys(ws).await.unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].id, admin.id);
    assert!(list[1].revoked_at.is_some());
    assert_eq!(s.count_api_keys().await.unwrap(), 2, "revoked keys count");
}

async fn idempotency(ctx: Ctx) {
    let s = &ctx.store;
    let ws = DEFAULT_WORKSPACE;
    let first = IdempotentResponse {
        request_hash: "h1".into(),
        status: 201,
        body: r#"{"items":[1,2]}"#.into(),
    };
    let second = IdempotentResponse {
        request_hash: "h2".into(),
        status: 400,
        body: "{}".into(),
    };
    let bulk = "POST /monitors/bulk";
    let recalled = || async { s.idempotent_response(ws, bulk, "k1").await.unwrap() };
    let remember = |route: &'static str, response: IdempotentResponse| async move {
        s.remember_response(ws, route, "k1", &response)
            .await
            .unwrap()
    };
    let purge = |before| async move { s.purge_idempotency(before).await.unwrap() };
    assert_eq!(recalled().await, None);
    assert_eq!(remember(bulk, first.clone()).await, None);
    assert_eq!(
        remember(bulk, second.clone()).await,
        Some(first.clone()),
        "the first response wins"
    );
    assert_eq!(recalled().await, Some(first.clone()));
    // Keys are per route.
    assert_eq!(remember("POST /monitors", second).await, None);
    assert_eq!(purge(Utc::now() - Duration::hours(1)).await, 0);
    assert_eq!(purge(Utc::now() + Duration::hours(1)).await, 2);
    assert_eq!(recalled().await, None);
}

async fn workspace_scoping(ctx: Ctx) {
    ctx.exec("INSERT INTO workspaces (id, name, created_at) VALUES (2, 'team-b', 0)")
        .await;
    let s = &ctx.store;
    let (one, two) = (DEFAULT_WORKSPACE, 2);
    let mine = s
        .create_monitor(one, &spec("mine", &["shared"]), None)
        .await
        .unwrap();
    let theirs = s
        .create_monitor(two, &spec("theirs", &["shared", "secret"]), None)
        .await
        .unwrap();
    assert_eq!(theirs.workspace_id, two);
    assert!(s.get_monitor(one, theirs.id).await.unwrap().is_none());
    assert_eq!(
        s.get_monitor(two, theirs.id).await.unwrap().unwrap(),
        theirs
    );
    let listed = s
        .list_monitors(one, &MonitorFilter::default(), 100, 0)
        .await
        .unwrap();
    assert_eq!(
        listed.items.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![mine.id]
    );
    assert_eq!(listed.total, 1);
    assert!(
        s.update_monitor(one, theirs.id, &spec("hijack", &[]))
            .await
            .unwrap()
            .is_none()
    );
    assert!(!s.delete_monitor(one, theirs.id).await.unwrap());
    for action in [
        BulkAction::Disable,
        BulkAction::Delete,
        BulkAction::AddTags(vec!["x".into()]),
    ] {
        assert!(
            s.bulk_monitors(one, &[theirs.id], &action)
                .await
                .unwrap()
                .is_empty()
        );
    }
    let tags = s.tags(one).await.unwrap();
    assert_eq!(tags.len(), 1);
    assert_eq!((tags[0].tag.as_str(), tags[0].monitors), ("shared", 1));
    assert_eq!(s.dashboard_summary(one).await.unwrap().monitors, 1);
    assert_eq!(
        s.all_monitors().await.unwrap().len(),
        2,
        "the scheduler sees all"
    );

    ctx.insert(&[result(theirs.id, t0(), Status::Down, 4.0)])
        .await;
    let q = ResultQuery {
        limit: 10,
        ..Default::default()
    };
    assert_eq!(s.list_results(one, theirs.id, &q).await.unwrap().total, 0);
    assert_eq!(s.list_results(two, theirs.id, &q).await.unwrap().total, 1);
    s.rollup(t0() + mins(1)).await.unwrap();
    assert_eq!(
        s.uptime(one, theirs.id, t0(), t0() + mins(1))
            .await
            .unwrap()
            .total,
        0
    );
    assert_eq!(
        s.uptime(two, theirs.id, t0(), t0() + mins(1))
            .await
            .unwrap()
            .total,
        1
    );
    let lat = s
        .latency(one, theirs.id, t0(), t0() + mins(1), 1)
        .await
        .unwrap();
    assert_eq!(lat[0].count, 0);
    assert_eq!(
        s.latency(two, theirs.id, t0(), t0() + mins(1), 1)
            .await
            .unwrap()[0]
            .count,
        1
    );

    let mut p = plugin("private", "1.0.0", "dd");
    p.workspace_id = two;
    s.insert_plugin(&p, b"x").await.unwrap();
    assert!(
        s.get_plugin(one, "private", "1.0.0")
            .await
            .unwrap()
            .is_none()
    );
    assert!(s.list_plugins(one).await.unwrap().is_empty());
    // The same name@version may exist in another workspace.
    s.insert_plugin(&plugin("private", "1.0.0", "dd"), b"x")
        .await
        .unwrap();
    assert_eq!(s.all_plugins().await.unwrap().len(), 2);

    let key = s
        .create_api_key(two, "b", "phk_b", "hash-b", &[Scope::Read])
        .await
        .unwrap();
    assert!(s.list_api_keys(one).await.unwrap().is_empty());
    assert_eq!(key.workspace_id, two);
    let resp = IdempotentResponse {
        request_hash: "h".into(),
        status: 200,
        body: "b".into(),
    };
    s.remember_response(two, "r", "k", &resp).await.unwrap();
    assert_eq!(s.idempotent_response(one, "r", "k").await.unwrap(), None);
}

async fn odd_results_never_fail_a_batch(ctx: Ctx) {
    let s = &ctx.store;
    let ws = DEFAULT_WORKSPACE;
    let m = ctx.monitor("m").await;
    let mut odd = result(m, t0(), Status::Error, f64::NAN);
    odd.message = "nul\0byte ünïcode".into();
    odd.region = "r\0".into();
    odd.timings.dns_ms = Some(f64::INFINITY);
    odd.metrics = vec![("nan".into(), f64::NAN), ("ok".into(), 2.0)];
    odd.details = Some(json!({"s": "nul\u{0}inside"}).into());
    odd.error_cause = Some("trap\0".into());
    ctx.insert(&[odd, result(m, t0() + secs(1), Status::Up, -5.0)])
        .await;
    let page = s
        .list_results(
            ws,
            m,
            &ResultQuery {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.total, 2);
    let r = &page.items[1];
    assert_eq!(r.message, "nulbyte ünïcode");
    assert_eq!(r.region, "r");
    assert_eq!(r.latency_ms, 0.0);
    assert_eq!(r.timings.dns_ms, None);
    assert_eq!(r.metrics.get("nan"), Some(&serde_json::Value::Null));
    assert_eq!(r.details, Some(json!({"s": "nul\u{0}inside"})));
    assert_eq!(r.error_cause.as_deref(), Some("trap"));
    assert_eq!(page.items[0].latency_ms, 0.0);
}

async fn corrupt_rows_are_reported(ctx: Ctx) {
    let s = &ctx.store;
    let ws = DEFAULT_WORKSPACE;
    let a = ctx.monitor("a").await;
    let b = ctx.monitor("b").await;
    ctx.exec(&format!(
        "UPDATE monitors SET config = '{{not json' WHERE id = {a}"
    ))
    .await;
    ctx.exec(&format!(
        "UPDATE monitor_state SET status = 'sideways' WHERE monitor_id = {b}"
    ))
    .await;
    let what = |r: Result<Option<pharos::model::Monitor>, StoreError>| match r {
        Err(StoreError::Corrupt { what, .. }) => what,
        other => panic!("expected Corrupt, got {other:?}"),
    };
    assert_eq!(what(s.get_monitor(ws, a).await), "monitors.config");
    assert_eq!(what(s.get_monitor(ws, b).await), "monitor_state.status");
    assert!(matches!(
        s.all_monitors().await,
        Err(StoreError::Corrupt { .. })
    ));
    ctx.exec("INSERT INTO meta (key, value) VALUES ('rollup_watermark', 'soon')")
        .await;
    let e = s.rollup(t0()).await.unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::Corrupt {
                what: "meta.value",
                ..
            }
        ),
        "{e:?}"
    );
}

async fn concurrent_writers(ctx: Ctx) {
    let s = &ctx.store;
    let ws = DEFAULT_WORKSPACE;
    let ids = ctx.monitors("m", 20).await;
    let key = s
        .create_api_key(ws, "k", "phk", "hash", &[Scope::Read])
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for w in 0..4i64 {
        let store = s.clone();
        let ids = ids.clone();
        tasks.push(tokio::spawn(async move {
            for b in 0..20i64 {
                let batch: Vec<_> = (0..100i64)
                    .map(|i| {
                        let at = t0() + Duration::milliseconds((w * 20 + b) * 100 + i);
                        result(ids[(i as usize) % ids.len()], at, Status::Up, 1.0)
                    })
                    .collect();
                store.insert_results(&batch).await.expect("insert");
            }
        }));
    }
    let store = s.clone();
    let ids2 = ids.clone();
    tasks.push(tokio::spawn(async move {
        for (i, id) in ids2.into_iter().enumerate() {
            let m = store
                .create_monitor(ws, &spec(&format!("new{i}"), &["t"]), None)
                .await
                .expect("create");
            store
                .update_monitor(ws, id, &spec("renamed", &["u"]))
                .await
                .expect("update");
            store
                .touch_api_key(key.id, Utc::now())
                .await
                .expect("touch");
            store
                .bulk_monitors(ws, &[m.id], &BulkAction::Delete)
                .await
                .expect("delete");
            store.rollup(t0() + mins(1)).await.expect("rollup");
        }
    }));
    for t in tasks {
        t.await.expect("task");
    }
    assert_eq!(ctx.scalar("SELECT COUNT(*) FROM results").await, 8000);
    assert_eq!(s.all_monitors().await.unwrap().len(), 20);
}

async fn insert_ten_thousand(ctx: Ctx) {
    let s = &ctx.store;
    let ids = ctx.monitors("m", 100).await;
    let batches: Vec<Vec<NewResult>> = (0..10)
        .map(|b| {
            (0..1000)
                .map(|i| {
                    let n = b * 1000 + i;
                    let mut r = result(
                        ids[n % ids.len()],
                        t0() + Duration::milliseconds(n as i64 * 10),
                        Status::Up,
                        n as f64 / 10.0,
                    );
                    r.timings.connect_ms = Some(1.0);
                    r.metrics = vec![("http_status".into(), 200.0)];
                    r
                })
                .collect()
        })
        .collect();
    let started = Instant::now();
    for batch in &batches {
        ctx.insert(batch).await;
    }
    let took = started.elapsed();
    eprintln!(
        "insert_ten_thousand[{:?}]: 10 000 results in batches of 1000 took {took:?} ({:.0}/s)",
        s.backend(),
        10_000.0 / took.as_secs_f64()
    );
    assert_eq!(ctx.scalar("SELECT COUNT(*) FROM results").await, 10_000);
    let started = Instant::now();
    assert_eq!(s.rollup(t0() + mins(3)).await.unwrap(), 3);
    eprintln!(
        "insert_ten_thousand[{:?}]: rollup of those 10 000 results took {:?}",
        s.backend(),
        started.elapsed()
    );
    let u = ctx.uptime(ids[0], t0(), t0() + mins(5)).await;
    assert_eq!(u.up, 100);
}
