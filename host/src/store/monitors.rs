//! Monitor definitions: create, read, list with filters, update, delete, bulk actions, tags,
//! plugin references and the dashboard counts. Tags live only in `monitor_tags`; the alert
//! policy is columns of `monitors` plus the `monitor_channels` and `monitor_dependencies`
//! links, saved in the transaction of the monitor.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::Ordering;

use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use super::rows::{self, get};
use super::{
    Backend, BulkAction, CHUNK, R, Store, StoreError, WriteTx, conflict, params, placeholders,
    value_rows,
};
use crate::model::{
    AlertPolicy, DashboardSummary, Monitor, MonitorFilter, MonitorSpec, MonitorState, Page,
    TagCount, WorkspaceId,
};

/// Columns of a monitor with its live state, from [`MONITOR_FROM`].
const MONITOR_COLUMNS: &str = "m.id, m.workspace_id, m.name, m.kind, m.plugin, m.config, \
     m.interval_secs, m.timeout_ms, m.enabled, m.push, m.push_token, m.revision, m.created_at, \
     m.updated_at, m.failure_threshold, m.recovery_threshold, m.renotify_interval_secs, \
     m.notify_recovery, m.alert_on_degraded, m.error_counts_as_failure, s.status, s.since, s.last_checked_at, s.last_latency_ms, s.last_message, \
     s.last_ping_at";
const MONITOR_FROM: &str = "monitors m LEFT JOIN monitor_state s ON s.monitor_id = m.id";

/// How many monitors reference a plugin version, by kind of reference.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PluginUsage {
    /// Monitors whose `plugin` is exactly `name@version`.
    pub pinned: i64,
    /// Monitors whose `plugin` is the bare `name` (they follow the latest enabled version).
    pub unpinned: i64,
}

/// A bind value of a dynamically built query.
enum Arg {
    Int(i64),
    Text(String),
}

/// Binds a spec's columns in table order: name, name_search, kind, plugin, config,
/// interval_secs, timeout_ms, enabled, push, then the policy: failure_threshold,
/// recovery_threshold, renotify_interval_secs, notify_recovery, alert_on_degraded,
/// error_counts_as_failure.
fn bind_spec<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    spec: &'q MonitorSpec,
) -> R<sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>> {
    Ok(q.bind(spec.name.as_str())
        .bind(spec.name.to_lowercase())
        .bind(spec.kind.as_str())
        .bind(spec.plugin.as_deref())
        .bind(rows::to_json(&spec.config, "monitors.config")?)
        .bind(i64::from(spec.interval_secs))
        .bind(i64::from(spec.timeout_ms))
        .bind(i64::from(spec.enabled))
        .bind(
            spec.push
                .as_ref()
                .map(|p| rows::to_json(p, "monitors.push"))
                .transpose()?,
        )
        .bind(i64::from(spec.alert.failure_threshold))
        .bind(i64::from(spec.alert.recovery_threshold))
        .bind(i64::from(spec.alert.renotify_interval_secs))
        .bind(i64::from(spec.alert.notify_recovery))
        .bind(i64::from(spec.alert.alert_on_degraded))
        .bind(i64::from(spec.alert.error_counts_as_failure)))
}

/// Binds `args` in order.
fn bind_all<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    args: &'q [Arg],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for a in args {
        q = match a {
            Arg::Int(v) => q.bind(*v),
            Arg::Text(v) => q.bind(v.as_str()),
        };
    }
    q
}

/// Tags as stored: sorted and deduplicated.
fn normalise_tags(tags: &[String]) -> Vec<String> {
    tags.iter()
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// `%…%` LIKE pattern matching `text` literally (with `\` as escape character).
fn like_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '\\' | '%' | '_') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// What a monitor row is completed with from other tables.
#[derive(Default)]
struct Links {
    tags: Vec<String>,
    channels: Vec<i64>,
    depends_on: Vec<i64>,
}

/// Decodes a row of [`MONITOR_COLUMNS`].
fn monitor_from_row(row: &AnyRow, links: Links) -> R<Monitor> {
    let kind: String = get(row, "monitors.kind")?;
    Ok(Monitor {
        id: get(row, "monitors.id")?,
        workspace_id: get(row, "monitors.workspace_id")?,
        spec: MonitorSpec {
            name: get(row, "monitors.name")?,
            kind: rows::monitor_type(&kind, "monitors.kind")?,
            plugin: get(row, "monitors.plugin")?,
            config: rows::json(row, "monitors.config")?,
            interval_secs: rows::u32_col(row, "monitors.interval_secs")?,
            timeout_ms: rows::u32_col(row, "monitors.timeout_ms")?,
            enabled: rows::flag(row, "monitors.enabled")?,
            tags: links.tags,
            push: rows::opt_json(row, "monitors.push")?,
            alert: AlertPolicy {
                failure_threshold: rows::u32_col(row, "monitors.failure_threshold")?,
                recovery_threshold: rows::u32_col(row, "monitors.recovery_threshold")?,
                renotify_interval_secs: rows::u32_col(row, "monitors.renotify_interval_secs")?,
                notify_recovery: rows::flag(row, "monitors.notify_recovery")?,
                alert_on_degraded: rows::flag(row, "monitors.alert_on_degraded")?,
                error_counts_as_failure: rows::flag(row, "monitors.error_counts_as_failure")?,
                channels: links.channels,
                depends_on: links.depends_on,
            },
        },
        push_token: get(row, "monitors.push_token")?,
        state: MonitorState {
            status: rows::opt_status_col(row, "monitor_state.status")?,
            since: rows::opt_time(row, "monitor_state.since")?,
            last_checked_at: rows::opt_time(row, "monitor_state.last_checked_at")?,
            last_latency_ms: get(row, "monitor_state.last_latency_ms")?,
            last_message: get(row, "monitor_state.last_message")?,
            last_ping_at: rows::opt_time(row, "monitor_state.last_ping_at")?,
        },
        created_at: rows::time(row, "monitors.created_at")?,
        updated_at: rows::time(row, "monitors.updated_at")?,
        revision: get(row, "monitors.revision")?,
    })
}

/// `(monitor_id, value)` pairs of a link table for the given monitors (all monitors when `ids`
/// is `None`), grouped by monitor and sorted by value. `table`, `key` and `value` are
/// constants of this module.
async fn load_links<T>(
    conn: &mut AnyConnection,
    backend: Backend,
    (table, key, value): (&'static str, &'static str, &'static str),
    ids: Option<&[i64]>,
) -> R<HashMap<i64, Vec<T>>>
where
    T: for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    let mut out: HashMap<i64, Vec<T>> = HashMap::new();
    let mut add = |rows: Vec<AnyRow>| -> R<()> {
        for row in rows {
            let id: i64 = get(&row, key)?;
            out.entry(id).or_default().push(get(&row, value)?);
        }
        Ok(())
    };
    let column = |what: &'static str| what.rsplit('.').next().unwrap_or(what);
    let select = format!(
        "SELECT {k}, {v} FROM {table}",
        k = column(key),
        v = column(value)
    );
    let order = format!("ORDER BY {}, {}", column(key), column(value));
    match ids {
        None => {
            let sql = format!("{select} {order}");
            add(sqlx::query(&sql).fetch_all(&mut *conn).await?)?;
        }
        Some(ids) => {
            for chunk in ids.chunks(CHUNK) {
                let sql = format!(
                    "{select} WHERE {} IN ({}) {order}",
                    column(key),
                    params(backend, chunk.len())
                );
                let mut q = sqlx::query(&sql).persistent(false);
                for id in chunk {
                    q = q.bind(*id);
                }
                add(q.fetch_all(&mut *conn).await?)?;
            }
        }
    }
    Ok(out)
}

const TAGS: (&str, &str, &str) = (
    "monitor_tags",
    "monitor_tags.monitor_id",
    "monitor_tags.tag",
);
const CHANNELS: (&str, &str, &str) = (
    "monitor_channels",
    "monitor_channels.monitor_id",
    "monitor_channels.channel_id",
);
const PARENTS: (&str, &str, &str) = (
    "monitor_dependencies",
    "monitor_dependencies.monitor_id",
    "monitor_dependencies.parent_id",
);

/// Decodes monitor rows and attaches their tags, channels and parents.
async fn monitors_with_tags(
    conn: &mut AnyConnection,
    backend: Backend,
    rows: Vec<AnyRow>,
    all: bool,
) -> R<Vec<Monitor>> {
    let ids = rows
        .iter()
        .map(|r| get::<i64>(r, "monitors.id"))
        .collect::<R<Vec<_>>>()?;
    let only = if all { None } else { Some(ids.as_slice()) };
    let mut tags = load_links::<String>(conn, backend, TAGS, only).await?;
    let mut channels = load_links::<i64>(conn, backend, CHANNELS, only).await?;
    let mut parents = load_links::<i64>(conn, backend, PARENTS, only).await?;
    rows.iter()
        .zip(ids)
        .map(|(row, id)| {
            let links = Links {
                tags: tags.remove(&id).unwrap_or_default(),
                channels: channels.remove(&id).unwrap_or_default(),
                depends_on: parents.remove(&id).unwrap_or_default(),
            };
            monitor_from_row(row, links)
        })
        .collect()
}

/// Replaces the tags of a monitor.
async fn write_tags(conn: &mut AnyConnection, backend: Backend, id: i64, tags: &[String]) -> R<()> {
    sqlx::query("DELETE FROM monitor_tags WHERE monitor_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    for chunk in tags.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO monitor_tags (monitor_id, tag) VALUES {}",
            value_rows(backend, chunk.len(), 2)
        );
        let mut q = sqlx::query(&sql).persistent(false);
        for tag in chunk {
            q = q.bind(id).bind(tag.as_str());
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

impl Store {
    /// Inserts a monitor; `push_token` is set for push monitors.
    pub async fn create_monitor(
        &self,
        ws: WorkspaceId,
        spec: &MonitorSpec,
        push_token: Option<&str>,
    ) -> R<Monitor> {
        let mut created = self
            .create_monitors(ws, &[(spec.clone(), push_token.map(str::to_string))])
            .await?;
        created
            .pop()
            .ok_or_else(|| rows::corrupt("monitors", "insert returned no row"))
    }

    /// Inserts several monitors in one transaction (all or none).
    pub async fn create_monitors(
        &self,
        ws: WorkspaceId,
        specs: &[(MonitorSpec, Option<String>)],
    ) -> R<Vec<Monitor>> {
        let now = rows::now();
        let at = rows::ms(now);
        let mut tx = self.begin_write().await?;
        let mut out = Vec::with_capacity(specs.len());
        for (spec, token) in specs {
            let tags = normalise_tags(&spec.tags);
            let query = sqlx::query(
                "INSERT INTO monitors (workspace_id, name, name_search, kind, plugin, config, \
                 interval_secs, timeout_ms, enabled, push, failure_threshold, \
                 recovery_threshold, renotify_interval_secs, notify_recovery, \
                 alert_on_degraded, error_counts_as_failure, push_token, revision, created_at, \
                 updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
                 $17, 1, $18, $18) RETURNING id",
            )
            .bind(ws);
            let row = bind_spec(query, spec)?
                .bind(token.as_deref())
                .bind(at)
                .fetch_one(tx.conn())
                .await
                .map_err(|e| conflict(e, || "a monitor with this push token".to_string()))?;
            let id: i64 = get(&row, "monitors.id")?;
            write_tags(tx.conn(), self.backend, id, &tags).await?;
            // A new monitor has no children yet, so its parents cannot close a cycle.
            let alert = self
                .write_links(&mut tx, ws, id, &spec.alert, false)
                .await?;
            sqlx::query("INSERT INTO monitor_state (monitor_id) VALUES ($1)")
                .bind(id)
                .execute(tx.conn())
                .await?;
            out.push(Monitor {
                id,
                workspace_id: ws,
                spec: MonitorSpec {
                    tags,
                    alert,
                    ..spec.clone()
                },
                push_token: token.clone(),
                state: MonitorState::default(),
                created_at: now,
                updated_at: now,
                revision: 1,
            });
        }
        tx.commit().await?;
        Ok(out)
    }

    /// One monitor of the workspace.
    pub async fn get_monitor(&self, ws: WorkspaceId, id: i64) -> R<Option<Monitor>> {
        self.one_monitor(
            "m.workspace_id = $1 AND m.id = $2",
            &[Arg::Int(ws), Arg::Int(id)],
        )
        .await
    }

    /// The monitor matching `condition` (over [`MONITOR_FROM`], parameters `args`).
    async fn one_monitor(&self, condition: &str, args: &[Arg]) -> R<Option<Monitor>> {
        let mut conn = self.pool.acquire().await?;
        let sql = format!("SELECT {MONITOR_COLUMNS} FROM {MONITOR_FROM} WHERE {condition}");
        let Some(row) = bind_all(sqlx::query(&sql), args)
            .fetch_optional(&mut *conn)
            .await?
        else {
            return Ok(None);
        };
        Ok(
            monitors_with_tags(&mut conn, self.backend, vec![row], false)
                .await?
                .pop(),
        )
    }

    /// Monitors of the workspace matching `filter`, ordered by id.
    pub async fn list_monitors(
        &self,
        ws: WorkspaceId,
        filter: &MonitorFilter,
        limit: i64,
        offset: i64,
    ) -> R<Page<Monitor>> {
        let mut args = vec![Arg::Int(ws)];
        let mut clauses = vec!["m.workspace_id = $1".to_string()];
        if let Some(tag) = &filter.tag {
            args.push(Arg::Text(tag.clone()));
            clauses.push(format!(
                "EXISTS (SELECT 1 FROM monitor_tags t WHERE t.monitor_id = m.id AND t.tag = ${})",
                args.len()
            ));
        }
        if let Some(status) = filter.status {
            args.push(Arg::Text(status.as_str().to_string()));
            clauses.push(format!("s.status = ${}", args.len()));
        }
        if let Some(enabled) = filter.enabled {
            args.push(Arg::Int(i64::from(enabled)));
            clauses.push(format!("m.enabled = ${}", args.len()));
        }
        if let Some(text) = filter.text.as_deref().filter(|t| !t.is_empty()) {
            args.push(Arg::Text(like_pattern(text)));
            clauses.push(format!("m.name_search LIKE ${} ESCAPE '\\'", args.len()));
        }
        let filter_sql = clauses.join(" AND ");
        let mut conn = self.pool.acquire().await?;
        let count_sql = format!("SELECT COUNT(*) AS n FROM {MONITOR_FROM} WHERE {filter_sql}");
        let total_row = bind_all(sqlx::query(&count_sql), &args)
            .fetch_one(&mut *conn)
            .await?;
        let total: i64 = get(&total_row, "monitors.n")?;
        let page_sql = format!(
            "SELECT {MONITOR_COLUMNS} FROM {MONITOR_FROM} WHERE {filter_sql} ORDER BY m.id \
             LIMIT ${} OFFSET ${}",
            args.len() + 1,
            args.len() + 2
        );
        let rows = bind_all(sqlx::query(&page_sql), &args)
            .bind(limit.max(0))
            .bind(offset.max(0))
            .fetch_all(&mut *conn)
            .await?;
        let items = monitors_with_tags(&mut conn, self.backend, rows, false).await?;
        Ok(Page { items, total })
    }

    /// Replaces the spec, bumping `revision`; `None` when the monitor does not exist.
    pub async fn update_monitor(
        &self,
        ws: WorkspaceId,
        id: i64,
        spec: &MonitorSpec,
    ) -> R<Option<Monitor>> {
        let mut tx = self.begin_write().await?;
        if !spec.alert.depends_on.is_empty() {
            self.lock_dependencies(&mut tx, ws).await?;
        }
        let query = sqlx::query(
            "UPDATE monitors SET name = $1, name_search = $2, kind = $3, plugin = $4, \
             config = $5, interval_secs = $6, timeout_ms = $7, enabled = $8, push = $9, \
             failure_threshold = $10, recovery_threshold = $11, renotify_interval_secs = $12, \
             notify_recovery = $13, alert_on_degraded = $14, error_counts_as_failure = $15, \
             revision = revision + 1, updated_at = $16 \
             WHERE workspace_id = $17 AND id = $18",
        );
        let done = bind_spec(query, spec)?
            .bind(rows::ms(rows::now()))
            .bind(ws)
            .bind(id)
            .execute(tx.conn())
            .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        write_tags(tx.conn(), self.backend, id, &normalise_tags(&spec.tags)).await?;
        self.write_links(&mut tx, ws, id, &spec.alert, true).await?;
        tx.commit().await?;
        self.get_monitor(ws, id).await
    }

    /// On PostgreSQL, serialises changes of the workspace's dependency graph until the
    /// transaction ends, so two concurrent updates cannot close a cycle together (SQLite
    /// writers are serialised already).
    async fn lock_dependencies(&self, tx: &mut WriteTx, ws: WorkspaceId) -> R<()> {
        if self.backend == Backend::Postgres {
            // The void result is wrapped: the Any driver cannot decode `void`.
            sqlx::query("SELECT 1 AS locked FROM (SELECT pg_advisory_xact_lock($1)) AS l")
                .bind(DEPENDENCY_LOCK ^ ws)
                .fetch_one(tx.conn())
                .await?;
        }
        Ok(())
    }

    /// Replaces a monitor's channel and parent links; returns the policy as stored (ids sorted,
    /// without duplicates). Channels and parents must be of the workspace; with `check_cycle`
    /// the parents must not lead back to the monitor.
    async fn write_links(
        &self,
        tx: &mut WriteTx,
        ws: WorkspaceId,
        id: i64,
        alert: &AlertPolicy,
        check_cycle: bool,
    ) -> R<AlertPolicy> {
        let channels = sorted_unique(&alert.channels);
        let parents = sorted_unique(&alert.depends_on);
        let found = super::channels::existing_channel_ids(tx.conn(), ws, &channels).await?;
        if let Some(missing) = channels.iter().find(|c| !found.contains(c)) {
            return Err(StoreError::UnknownChannel(*missing));
        }
        if parents.contains(&id) {
            return Err(StoreError::DependencyCycle(vec![id, id]));
        }
        let mut found = Vec::with_capacity(parents.len());
        for chunk in parents.chunks(CHUNK) {
            found.extend(self.existing_ids(tx, ws, chunk, false).await?);
        }
        if let Some(missing) = parents.iter().find(|p| !found.contains(p)) {
            return Err(StoreError::UnknownMonitor(*missing));
        }
        if check_cycle && !parents.is_empty() {
            let edges = dependency_edges(tx.conn(), ws).await?;
            if let Some(cycle) = dependency_cycle(&edges, id, &parents) {
                return Err(StoreError::DependencyCycle(cycle));
            }
        }
        for (table, values) in [
            ("monitor_channels", &channels),
            ("monitor_dependencies", &parents),
        ] {
            let column = if table == "monitor_channels" {
                "channel_id"
            } else {
                "parent_id"
            };
            sqlx::query(&format!("DELETE FROM {table} WHERE monitor_id = $1"))
                .bind(id)
                .execute(tx.conn())
                .await?;
            for chunk in values.chunks(CHUNK) {
                let sql = format!(
                    "INSERT INTO {table} (monitor_id, {column}) VALUES {}",
                    value_rows(self.backend, chunk.len(), 2)
                );
                let mut q = sqlx::query(&sql).persistent(false);
                for v in chunk {
                    q = q.bind(id).bind(*v);
                }
                q.execute(tx.conn()).await?;
            }
        }
        Ok(AlertPolicy {
            channels,
            depends_on: parents,
            ..alert.clone()
        })
    }

    /// The ids among `ids` that are channels of the workspace.
    pub async fn channel_ids_in(&self, ws: WorkspaceId, ids: &[i64]) -> R<Vec<i64>> {
        let mut conn = self.pool.acquire().await?;
        super::channels::existing_channel_ids(&mut conn, ws, ids).await
    }

    /// The ids among `ids` that are monitors of the workspace.
    pub async fn monitor_ids_in(&self, ws: WorkspaceId, ids: &[i64]) -> R<Vec<i64>> {
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK) {
            let sql = format!(
                "SELECT id FROM monitors WHERE workspace_id = $1 AND id IN ({})",
                placeholders(2, chunk.len())
            );
            let mut q = sqlx::query(&sql).persistent(false).bind(ws);
            for id in chunk {
                q = q.bind(*id);
            }
            found.extend(ids_of(q.fetch_all(&self.pool).await?)?);
        }
        Ok(found)
    }

    /// Every `(monitor, parent)` dependency of the workspace.
    pub async fn dependency_edges(&self, ws: WorkspaceId) -> R<Vec<(i64, i64)>> {
        let mut conn = self.pool.acquire().await?;
        dependency_edges(&mut conn, ws).await
    }

    /// Sets or clears the push token of a monitor (e.g. when its type changes);
    /// false when the monitor does not exist.
    pub async fn set_push_token(&self, ws: WorkspaceId, id: i64, token: Option<&str>) -> R<bool> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE monitors SET push_token = $1, revision = revision + 1, updated_at = $2 \
             WHERE workspace_id = $3 AND id = $4",
        )
        .bind(token)
        .bind(rows::ms(rows::now()))
        .bind(ws)
        .bind(id)
        .execute(tx.conn())
        .await
        .map_err(|e| conflict(e, || "a monitor with this push token".to_string()))?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes a monitor with its results and state; false when it did not exist.
    ///
    /// The monitor, its tags and state go in one transaction; its results and rollups are
    /// removed afterwards in the background in small chunks (they are invisible meanwhile, and
    /// a sweep left unfinished resumes with the next [`Store::purge_results`]).
    pub async fn delete_monitor(&self, ws: WorkspaceId, id: i64) -> R<bool> {
        let deleted = self.bulk_monitors(ws, &[id], &BulkAction::Delete).await?;
        Ok(!deleted.is_empty())
    }

    /// Applies a bulk action in one transaction; returns the ids that existed and were changed.
    pub async fn bulk_monitors(
        &self,
        ws: WorkspaceId,
        ids: &[i64],
        action: &BulkAction,
    ) -> R<Vec<i64>> {
        let ids: Vec<i64> = ids
            .iter()
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let now = rows::ms(rows::now());
        let mut tx = self.begin_write().await?;
        let mut changed = Vec::new();
        for chunk in ids.chunks(CHUNK) {
            let found = match action {
                BulkAction::Enable | BulkAction::Disable => {
                    let enabled = i64::from(matches!(action, BulkAction::Enable));
                    let sql = format!(
                        "UPDATE monitors SET enabled = $1, revision = revision + 1, \
                         updated_at = $2 WHERE workspace_id = $3 AND id IN ({}) RETURNING id",
                        placeholders(4, chunk.len())
                    );
                    let mut q = sqlx::query(&sql)
                        .persistent(false)
                        .bind(enabled)
                        .bind(now)
                        .bind(ws);
                    for id in chunk {
                        q = q.bind(*id);
                    }
                    ids_of(q.fetch_all(tx.conn()).await?)?
                }
                BulkAction::Delete => self.delete_chunk(&mut tx, ws, chunk, now).await?,
                BulkAction::AddTags(tags) | BulkAction::RemoveTags(tags) => {
                    let found = self.existing_ids(&mut tx, ws, chunk, false).await?;
                    if found.is_empty() {
                        continue;
                    }
                    let tags = normalise_tags(tags);
                    if matches!(action, BulkAction::AddTags(_)) {
                        add_tags(tx.conn(), self.backend, &found, &tags).await?;
                    } else {
                        remove_tags(tx.conn(), self.backend, &found, &tags).await?;
                    }
                    let sql = format!(
                        "UPDATE monitors SET revision = revision + 1, updated_at = $1 \
                         WHERE id IN ({})",
                        placeholders(2, found.len())
                    );
                    let mut q = sqlx::query(&sql).persistent(false).bind(now);
                    for id in &found {
                        q = q.bind(*id);
                    }
                    q.execute(tx.conn()).await?;
                    found
                }
            };
            changed.extend(found);
        }
        tx.commit().await?;
        changed.sort_unstable();
        if matches!(action, BulkAction::Delete) && !changed.is_empty() {
            self.spawn_sweep();
        }
        Ok(changed)
    }

    /// The ids among `chunk` that are monitors of the workspace. On PostgreSQL the rows are
    /// locked in id order until the transaction ends: `for_delete` takes `FOR UPDATE`,
    /// otherwise `FOR KEY SHARE` (which still lets result batches through).
    async fn existing_ids(
        &self,
        tx: &mut WriteTx,
        ws: WorkspaceId,
        chunk: &[i64],
        for_delete: bool,
    ) -> R<Vec<i64>> {
        let lock = match (self.backend, for_delete) {
            (Backend::Postgres, true) => " ORDER BY id FOR UPDATE",
            (Backend::Postgres, false) => " ORDER BY id FOR KEY SHARE",
            (Backend::Sqlite, _) => "",
        };
        let sql = format!(
            "SELECT id FROM monitors WHERE workspace_id = $1 AND id IN ({}){lock}",
            placeholders(2, chunk.len())
        );
        let mut q = sqlx::query(&sql).persistent(false).bind(ws);
        for id in chunk {
            q = q.bind(*id);
        }
        ids_of(q.fetch_all(tx.conn()).await?)
    }

    /// Deletes monitors (tags and state cascade) and leaves tombstones for the sweeper.
    async fn delete_chunk(
        &self,
        tx: &mut WriteTx,
        ws: WorkspaceId,
        chunk: &[i64],
        now: i64,
    ) -> R<Vec<i64>> {
        // Rows are locked in id order first so concurrent result batches (which lock the
        // same rows in id order) cannot deadlock with this delete.
        let found = self.existing_ids(tx, ws, chunk, true).await?;
        if found.is_empty() {
            return Ok(found);
        }
        let sql = format!(
            "DELETE FROM monitors WHERE id IN ({})",
            params(self.backend, found.len())
        );
        let mut q = sqlx::query(&sql).persistent(false);
        for id in &found {
            q = q.bind(*id);
        }
        q.execute(tx.conn()).await?;
        let sql = format!(
            "INSERT INTO monitor_tombstones (monitor_id, deleted_at) VALUES {} \
             ON CONFLICT (monitor_id) DO NOTHING",
            value_rows(self.backend, found.len(), 2)
        );
        let mut q = sqlx::query(&sql).persistent(false);
        for id in &found {
            q = q.bind(*id).bind(now);
        }
        q.execute(tx.conn()).await?;
        super::incidents::close_for_deleted(tx.conn(), self.backend, &found, now).await?;
        Ok(found)
    }

    /// Starts a background sweep of deleted monitors' results unless one is running.
    fn spawn_sweep(&self) {
        if self.sweeping.swap(true, Ordering::AcqRel) {
            return;
        }
        let store = self.clone();
        tokio::spawn(async move {
            if let Err(e) = store.sweep_deleted().await {
                tracing::warn!(error = %e, "removing results of deleted monitors failed; retried at the next purge");
            }
            store.sweeping.store(false, Ordering::Release);
        });
    }

    /// Every monitor of every workspace (the scheduler's start-up load).
    pub async fn all_monitors(&self) -> R<Vec<Monitor>> {
        let mut conn = self.pool.acquire().await?;
        let sql = format!("SELECT {MONITOR_COLUMNS} FROM {MONITOR_FROM} ORDER BY m.id");
        let rows = sqlx::query(&sql).fetch_all(&mut *conn).await?;
        monitors_with_tags(&mut conn, self.backend, rows, true).await
    }

    /// The monitor whose push token this is.
    pub async fn monitor_by_push_token(&self, token: &str) -> R<Option<Monitor>> {
        self.one_monitor("m.push_token = $1", &[Arg::Text(token.to_string())])
            .await
    }

    /// Tags in use in the workspace with their monitor counts, by name.
    pub async fn tags(&self, ws: WorkspaceId) -> R<Vec<TagCount>> {
        let rows = sqlx::query(
            "SELECT t.tag, COUNT(*) AS monitors FROM monitor_tags t \
             JOIN monitors m ON m.id = t.monitor_id WHERE m.workspace_id = $1 \
             GROUP BY t.tag ORDER BY t.tag",
        )
        .bind(ws)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(TagCount {
                    tag: get(row, "monitor_tags.tag")?,
                    monitors: get(row, "monitor_tags.monitors")?,
                })
            })
            .collect()
    }

    /// Monitors of the workspace using a plugin: `name` or `name@version` references.
    pub async fn monitors_using_plugin(
        &self,
        ws: WorkspaceId,
        name: &str,
        version: &str,
    ) -> R<i64> {
        let usage = self.plugin_usage(ws, name, version).await?;
        Ok(usage.pinned + usage.unpinned)
    }

    /// Monitors of the workspace referencing `name@version` (pinned) and bare `name`
    /// (unpinned), counted apart; the catalog decides whether unpinned ones matter.
    pub async fn plugin_usage(&self, ws: WorkspaceId, name: &str, version: &str) -> R<PluginUsage> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(CASE WHEN plugin = $2 THEN 1 ELSE 0 END), 0) AS BIGINT) \
             AS pinned, \
             CAST(COALESCE(SUM(CASE WHEN plugin = $3 THEN 1 ELSE 0 END), 0) AS BIGINT) \
             AS unpinned \
             FROM monitors WHERE workspace_id = $1 AND plugin IN ($2, $3)",
        )
        .bind(ws)
        .bind(format!("{name}@{version}"))
        .bind(name)
        .fetch_one(&self.pool)
        .await?;
        Ok(PluginUsage {
            pinned: get(&row, "monitors.pinned")?,
            unpinned: get(&row, "monitors.unpinned")?,
        })
    }

    /// Monitor counts by live status. `up`, `degraded`, `down`, `error` and `pending` count
    /// enabled monitors only (so they add up to `enabled`); paused ones are only `paused`.
    pub async fn dashboard_summary(&self, ws: WorkspaceId) -> R<DashboardSummary> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS monitors, \
             CAST(COALESCE(SUM(CASE WHEN m.enabled = 1 THEN 1 ELSE 0 END), 0) AS BIGINT) AS enabled, \
             CAST(COALESCE(SUM(CASE WHEN m.enabled = 1 AND s.status = 'up' THEN 1 ELSE 0 END), 0) AS BIGINT) AS up, \
             CAST(COALESCE(SUM(CASE WHEN m.enabled = 1 AND s.status = 'degraded' THEN 1 ELSE 0 END), 0) AS BIGINT) AS degraded, \
             CAST(COALESCE(SUM(CASE WHEN m.enabled = 1 AND s.status = 'down' THEN 1 ELSE 0 END), 0) AS BIGINT) AS down, \
             CAST(COALESCE(SUM(CASE WHEN m.enabled = 1 AND s.status = 'error' THEN 1 ELSE 0 END), 0) AS BIGINT) AS error, \
             CAST(COALESCE(SUM(CASE WHEN m.enabled = 1 AND s.status IS NULL THEN 1 ELSE 0 END), 0) AS BIGINT) AS pending \
             FROM monitors m LEFT JOIN monitor_state s ON s.monitor_id = m.id \
             WHERE m.workspace_id = $1",
        )
        .bind(ws)
        .fetch_one(&self.pool)
        .await?;
        let monitors: i64 = get(&row, "dashboard.monitors")?;
        let enabled: i64 = get(&row, "dashboard.enabled")?;
        Ok(DashboardSummary {
            monitors,
            enabled,
            paused: monitors - enabled,
            up: get(&row, "dashboard.up")?,
            degraded: get(&row, "dashboard.degraded")?,
            down: get(&row, "dashboard.down")?,
            error: get(&row, "dashboard.error")?,
            pending: get(&row, "dashboard.pending")?,
        })
    }
}

/// Key of the PostgreSQL advisory lock over a workspace's dependency graph (xor the workspace).
const DEPENDENCY_LOCK: i64 = 0x5048_4152_4f53_0000;

/// Ids sorted, without duplicates.
fn sorted_unique(ids: &[i64]) -> Vec<i64> {
    ids.iter()
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Every `(monitor, parent)` dependency of the workspace.
async fn dependency_edges(conn: &mut AnyConnection, ws: WorkspaceId) -> R<Vec<(i64, i64)>> {
    let rows = sqlx::query(
        "SELECT d.monitor_id, d.parent_id FROM monitor_dependencies d \
         JOIN monitors m ON m.id = d.monitor_id WHERE m.workspace_id = $1",
    )
    .bind(ws)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                get(r, "monitor_dependencies.monitor_id")?,
                get(r, "monitor_dependencies.parent_id")?,
            ))
        })
        .collect()
}

/// The cycle that giving `monitor` the parents `parents` would close, given the other
/// `(monitor, parent)` edges (the monitor's current edges are ignored): the path
/// `monitor → … → monitor`, or `None`.
pub fn dependency_cycle(edges: &[(i64, i64)], monitor: i64, parents: &[i64]) -> Option<Vec<i64>> {
    if parents.contains(&monitor) {
        return Some(vec![monitor, monitor]);
    }
    let mut graph: HashMap<i64, Vec<i64>> = HashMap::new();
    for (child, parent) in edges {
        if *child != monitor {
            graph.entry(*child).or_default().push(*parent);
        }
    }
    // Depth-first from each new parent, remembering how each node was reached.
    let mut came_from: HashMap<i64, i64> = HashMap::new();
    let mut seen: HashSet<i64> = HashSet::new();
    let mut stack: Vec<i64> = Vec::new();
    for p in parents {
        if seen.insert(*p) {
            came_from.insert(*p, monitor);
            stack.push(*p);
        }
    }
    while let Some(node) = stack.pop() {
        for next in graph.get(&node).into_iter().flatten() {
            if *next == monitor {
                let mut path = vec![monitor, node];
                let mut at = node;
                while let Some(prev) = came_from.get(&at).copied() {
                    path.push(prev);
                    if prev == monitor {
                        break;
                    }
                    at = prev;
                }
                path.reverse();
                return Some(path);
            }
            if seen.insert(*next) {
                came_from.insert(*next, node);
                stack.push(*next);
            }
        }
    }
    None
}

/// The `id` column of every row.
fn ids_of(rows: Vec<AnyRow>) -> R<Vec<i64>> {
    rows.iter().map(|r| get(r, "monitors.id")).collect()
}

/// Adds `tags` to every monitor of `ids` (existing pairs are kept).
async fn add_tags(
    conn: &mut AnyConnection,
    backend: Backend,
    ids: &[i64],
    tags: &[String],
) -> R<()> {
    let pairs: Vec<(i64, &str)> = ids
        .iter()
        .flat_map(|id| tags.iter().map(move |t| (*id, t.as_str())))
        .collect();
    for chunk in pairs.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO monitor_tags (monitor_id, tag) VALUES {} \
             ON CONFLICT (monitor_id, tag) DO NOTHING",
            value_rows(backend, chunk.len(), 2)
        );
        let mut q = sqlx::query(&sql).persistent(false);
        for (id, tag) in chunk {
            q = q.bind(*id).bind(*tag);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Removes `tags` from every monitor of `ids`.
async fn remove_tags(
    conn: &mut AnyConnection,
    backend: Backend,
    ids: &[i64],
    tags: &[String],
) -> R<()> {
    for tag_chunk in tags.chunks(CHUNK / 2) {
        let sql = format!(
            "DELETE FROM monitor_tags WHERE monitor_id IN ({}) AND tag IN ({})",
            params(backend, ids.len()),
            match backend {
                Backend::Postgres => placeholders(1 + ids.len(), tag_chunk.len()),
                Backend::Sqlite => params(backend, tag_chunk.len()),
            }
        );
        let mut q = sqlx::query(&sql).persistent(false);
        for id in ids {
            q = q.bind(*id);
        }
        for tag in tag_chunk {
            q = q.bind(tag.as_str());
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("Web_1%"), "%web\\_1\\%%");
        assert_eq!(like_pattern("a\\b"), "%a\\\\b%");
    }

    #[test]
    fn dependency_cycles_are_found_with_their_path() {
        // 2 → 1, 3 → 2 (child → parent).
        let edges = [(2, 1), (3, 2)];
        assert_eq!(dependency_cycle(&edges, 1, &[3]), Some(vec![1, 3, 2, 1]));
        assert_eq!(dependency_cycle(&edges, 1, &[2]), Some(vec![1, 2, 1]));
        assert_eq!(dependency_cycle(&edges, 1, &[1]), Some(vec![1, 1]));
        assert_eq!(dependency_cycle(&edges, 3, &[1]), None);
        assert_eq!(dependency_cycle(&edges, 4, &[3, 2]), None);
        // The monitor's own current edges are replaced, not followed: 1 → 5 goes away.
        assert_eq!(
            dependency_cycle(&[(1, 5), (5, 6)], 5, &[1]),
            Some(vec![5, 1, 5])
        );
        assert_eq!(dependency_cycle(&[(5, 1)], 5, &[1]), None);
    }

    #[test]
    fn tags_are_sorted_and_unique() {
        let t = normalise_tags(&["b".into(), "a".into(), "b".into()]);
        assert_eq!(t, vec!["a".to_string(), "b".to_string()]);
    }
}
