//! Check results: the batch writer with the live-state update and the incident engine
//! (`engine.rs`), the result list, the retention purge and the sweep of deleted monitors'
//! results.

use std::collections::{BTreeSet, HashMap};

use sqlx::any::AnyRow;

use super::engine::{ENGINE_COLUMNS, ENGINE_JOINS, Engine, EngineMonitor};
use super::rows::{self, clean_text, get};
use super::{Backend, CHUNK, DELETE_CHUNK, R, Store, params, placeholders, value_rows};
use crate::model::{CheckResult, NewResult, Page, ResultQuery, Status, Timings, WorkspaceId};

/// Columns written per result.
const RESULT_WIDTH: usize = 16;
/// Columns written per live-state row.
const STATE_WIDTH: usize = 7;

/// Live state of one monitor while a batch is applied (times in epoch ms).
#[derive(Debug, Clone, Default)]
struct LiveState {
    workspace_id: i64,
    status: Option<Status>,
    since: Option<i64>,
    last_checked_at: Option<i64>,
    last_latency_ms: Option<f64>,
    last_message: Option<String>,
    last_ping_at: Option<i64>,
}

impl LiveState {
    /// Applies one result; results older than the latest check only move `last_ping_at`.
    fn apply(&mut self, r: &NewResult) {
        let t = rows::ms(r.started_at);
        if r.ping {
            self.last_ping_at = Some(self.last_ping_at.map_or(t, |p| p.max(t)));
        }
        if self.last_checked_at.is_some_and(|c| t < c) {
            return;
        }
        if self.status != Some(r.status) {
            self.status = Some(r.status);
            self.since = Some(t);
        }
        self.last_checked_at = Some(t);
        self.last_latency_ms = Some(finite_latency(r.latency_ms));
        self.last_message = Some(clean_text(&r.message).into_owned());
    }
}

/// A latency the database can store (SQLite turns NaN into NULL): non-finite or negative → 0.
fn finite_latency(v: f64) -> f64 {
    if v.is_finite() && v >= 0.0 { v } else { 0.0 }
}

/// An optional phase timing the database can store.
fn finite(v: Option<f64>) -> Option<f64> {
    v.filter(|x| x.is_finite())
}

/// The metrics of a result as a JSON object (non-finite values become `null`).
fn metrics_json(metrics: &[(String, f64)]) -> String {
    let map: serde_json::Map<String, serde_json::Value> = metrics
        .iter()
        .map(|(k, v)| {
            let value = serde_json::Number::from_f64(*v)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null);
            (k.clone(), value)
        })
        .collect();
    serde_json::Value::Object(map).to_string()
}

/// Decodes a stored result row.
fn result_from_row(row: &AnyRow) -> R<CheckResult> {
    Ok(CheckResult {
        id: get(row, "results.id")?,
        monitor_id: get(row, "results.monitor_id")?,
        region: get(row, "results.region")?,
        started_at: rows::time(row, "results.started_at")?,
        status: rows::status_col(row, "results.status")?,
        latency_ms: get(row, "results.latency_ms")?,
        message: get(row, "results.message")?,
        timings: Timings {
            dns_ms: get(row, "results.dns_ms")?,
            connect_ms: get(row, "results.connect_ms")?,
            tls_ms: get(row, "results.tls_ms")?,
            first_byte_ms: get(row, "results.first_byte_ms")?,
            total_ms: get(row, "results.total_ms")?,
        },
        metrics: rows::json(row, "results.metrics")?,
        details: rows::opt_json(row, "results.details")?,
        error_cause: get(row, "results.error_cause")?,
        maintenance: rows::flag(row, "results.maintenance")?,
    })
}

/// Binds the parameters of a result-list filter built by [`Store::list_results`].
fn bind_result_filter<'q>(
    sql: &'q str,
    monitor_id: i64,
    ws: WorkspaceId,
    times: &[i64],
    status: Option<&'static str>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    let mut q = sqlx::query(sql).bind(monitor_id).bind(ws);
    for t in times {
        q = q.bind(*t);
    }
    if let Some(s) = status {
        q = q.bind(s);
    }
    q
}

impl Store {
    /// Stores a batch of results in one transaction, updates each monitor's live state
    /// (status, since, last check, last ping) and runs the incident engine over them. Results
    /// of deleted monitors are dropped.
    ///
    /// `since` moves only when the status changes; a result older than the monitor's latest
    /// check is stored but leaves the state alone (except `last_ping_at` for pings). Text
    /// loses NUL characters and non-finite numbers are stored as 0 / null, so one odd result
    /// never fails a batch.
    ///
    /// The engine, in `started_at` order: a result covered by an enabled maintenance window
    /// of its workspace (by monitor id or tag) is stored with `maintenance = 1` and not
    /// evaluated; results of paused monitors, results not newer than the last evaluated one
    /// and ignored `error` results are stored only; the rest move the monitor's alert state
    /// and may open, escalate or resolve incidents, with their timeline entries and one
    /// outbox row per bound channel, all in this transaction (see `incidents::machine`).
    /// [`Store::outbox_written`] wakes after a batch that wrote notifications.
    pub async fn insert_results(&self, batch: &[NewResult]) -> R<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = batch
            .iter()
            .map(|r| r.monitor_id)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut tx = self.begin_write().await?;

        // On PostgreSQL the monitors are locked first (in id order, like deletes), so none
        // can be deleted before this batch commits and concurrent batches of the same
        // monitors evaluate one after the other. The state is read by a later statement, so
        // it sees what a batch that held the lock before committed.
        if self.backend == Backend::Postgres {
            for chunk in ids.chunks(CHUNK) {
                let sql = format!(
                    "SELECT id FROM monitors WHERE id IN ({}) ORDER BY id FOR NO KEY UPDATE",
                    params(self.backend, chunk.len())
                );
                let mut q = sqlx::query(&sql).persistent(chunk.len() == CHUNK);
                for id in chunk {
                    q = q.bind(*id);
                }
                q.fetch_all(tx.conn()).await?;
            }
        }
        // Monitors that still exist, with their live state and the engine's state.
        let now = Engine::clock();
        let mut states: HashMap<i64, LiveState> = HashMap::with_capacity(ids.len());
        let mut monitors: HashMap<i64, EngineMonitor> = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK) {
            let sql = format!(
                "SELECT m.id, m.workspace_id, s.status, s.since, s.last_checked_at, \
                 s.last_latency_ms, s.last_message, s.last_ping_at, {ENGINE_COLUMNS} \
                 FROM monitors m LEFT JOIN monitor_state s ON s.monitor_id = m.id \
                 {ENGINE_JOINS} WHERE m.id IN ({})",
                params(self.backend, chunk.len())
            );
            let mut q = sqlx::query(&sql).persistent(chunk.len() == CHUNK);
            for id in chunk {
                q = q.bind(*id);
            }
            for row in q.fetch_all(tx.conn()).await? {
                let id: i64 = get(&row, "monitors.id")?;
                let state = LiveState {
                    workspace_id: get(&row, "monitors.workspace_id")?,
                    status: rows::opt_status_col(&row, "monitor_state.status")?,
                    since: get(&row, "monitor_state.since")?,
                    last_checked_at: get(&row, "monitor_state.last_checked_at")?,
                    last_latency_ms: get(&row, "monitor_state.last_latency_ms")?,
                    last_message: get(&row, "monitor_state.last_message")?,
                    last_ping_at: get(&row, "monitor_state.last_ping_at")?,
                };
                let engine = EngineMonitor::from_row(&row, id, state.workspace_id, now)?;
                monitors.insert(id, engine);
                states.insert(id, state);
            }
        }
        let kept: Vec<&NewResult> = batch
            .iter()
            .filter(|r| states.contains_key(&r.monitor_id))
            .collect();
        if kept.len() < batch.len() {
            tracing::debug!(
                dropped = batch.len() - kept.len(),
                "results of deleted monitors dropped"
            );
        }
        if kept.is_empty() {
            return Ok(());
        }

        // Everything the engine reads is loaded before this batch changes anything.
        let mut engine = Engine::new(self.backend, self.engine_settings(), now, monitors);
        engine.load(tx.conn()).await?;
        let maintenance: Vec<bool> = kept.iter().map(|r| engine.in_maintenance(r)).collect();

        for (chunk, flags) in kept.chunks(CHUNK).zip(maintenance.chunks(CHUNK)) {
            let sql = format!(
                "INSERT INTO results (monitor_id, workspace_id, region, started_at, status, \
                 latency_ms, message, dns_ms, connect_ms, tls_ms, first_byte_ms, total_ms, \
                 metrics, details, error_cause, maintenance) VALUES {}",
                value_rows(self.backend, chunk.len(), RESULT_WIDTH)
            );
            let mut q = sqlx::query(&sql).persistent(chunk.len() == CHUNK);
            for (r, in_maintenance) in chunk.iter().zip(flags) {
                let ws = states
                    .get(&r.monitor_id)
                    .map_or(r.workspace_id, |s| s.workspace_id);
                q = q
                    .bind(r.monitor_id)
                    .bind(ws)
                    .bind(clean_text(&r.region).into_owned())
                    .bind(rows::ms(r.started_at))
                    .bind(r.status.as_str())
                    .bind(finite_latency(r.latency_ms))
                    .bind(clean_text(&r.message).into_owned())
                    .bind(finite(r.timings.dns_ms))
                    .bind(finite(r.timings.connect_ms))
                    .bind(finite(r.timings.tls_ms))
                    .bind(finite(r.timings.first_byte_ms))
                    .bind(finite(r.timings.total_ms))
                    .bind(metrics_json(&r.metrics))
                    .bind(r.details.as_ref().map(|d| d.get()))
                    .bind(r.error_cause.as_deref().map(|c| clean_text(c).into_owned()))
                    .bind(i64::from(*in_maintenance));
            }
            q.execute(tx.conn()).await?;
        }

        engine.evaluate(tx.conn(), &kept, &maintenance).await?;
        engine.save(tx.conn()).await?;

        // Live state: apply each monitor's results in time order (stable for equal times).
        let mut ordered = kept;
        ordered.sort_by_key(|r| (r.monitor_id, r.started_at));
        let mut touched: Vec<(i64, LiveState)> = Vec::new();
        for r in ordered {
            match touched.last_mut() {
                Some((id, state)) if *id == r.monitor_id => state.apply(r),
                _ => {
                    let mut state = states.remove(&r.monitor_id).unwrap_or_default();
                    state.apply(r);
                    touched.push((r.monitor_id, state));
                }
            }
        }
        for chunk in touched.chunks(CHUNK) {
            let sql = format!(
                "INSERT INTO monitor_state (monitor_id, status, since, last_checked_at, \
                 last_latency_ms, last_message, last_ping_at) VALUES {} \
                 ON CONFLICT (monitor_id) DO UPDATE SET status = excluded.status, \
                 since = excluded.since, last_checked_at = excluded.last_checked_at, \
                 last_latency_ms = excluded.last_latency_ms, \
                 last_message = excluded.last_message, last_ping_at = excluded.last_ping_at",
                value_rows(self.backend, chunk.len(), STATE_WIDTH)
            );
            let mut q = sqlx::query(&sql).persistent(chunk.len() == CHUNK);
            for (id, s) in chunk {
                q = q
                    .bind(*id)
                    .bind(s.status.map(Status::as_str))
                    .bind(s.since)
                    .bind(s.last_checked_at)
                    .bind(s.last_latency_ms)
                    .bind(s.last_message.as_deref())
                    .bind(s.last_ping_at);
            }
            q.execute(tx.conn()).await?;
        }
        tx.commit().await?;
        if engine.notifications() > 0 {
            self.signal_outbox();
        }
        Ok(())
    }

    /// Results of one monitor, newest first.
    pub async fn list_results(
        &self,
        ws: WorkspaceId,
        monitor_id: i64,
        query: &ResultQuery,
    ) -> R<Page<CheckResult>> {
        let mut filter = String::from("monitor_id = $1 AND workspace_id = $2");
        let mut times: Vec<i64> = Vec::new();
        if let Some(from) = query.from {
            times.push(rows::ms(from));
            filter.push_str(&format!(" AND started_at >= ${}", 2 + times.len()));
        }
        if let Some(to) = query.to {
            times.push(rows::ms(to));
            filter.push_str(&format!(" AND started_at < ${}", 2 + times.len()));
        }
        let mut next = 3 + times.len();
        if query.status.is_some() {
            filter.push_str(&format!(" AND status = ${next}"));
            next += 1;
        }
        let status = query.status.map(Status::as_str);
        let bind = |sql| bind_result_filter(sql, monitor_id, ws, &times, status);
        let count_sql = format!("SELECT COUNT(*) AS n FROM results WHERE {filter}");
        let count_row = bind(&count_sql).fetch_one(&self.pool).await?;
        let total: i64 = get(&count_row, "results.n")?;
        let page_sql = format!(
            "SELECT id, monitor_id, region, started_at, status, latency_ms, message, dns_ms, \
             connect_ms, tls_ms, first_byte_ms, total_ms, metrics, details, error_cause, \
             maintenance FROM results WHERE {filter} ORDER BY started_at DESC, id DESC \
             LIMIT ${next} OFFSET ${}",
            next + 1
        );
        let rows = bind(&page_sql)
            .bind(query.limit.max(0))
            .bind(query.offset.max(0))
            .fetch_all(&self.pool)
            .await?;
        let items = rows.iter().map(result_from_row).collect::<R<Vec<_>>>()?;
        Ok(Page { items, total })
    }

    /// Deletes raw results older than `before` (rollups are kept); returns rows deleted.
    ///
    /// Works in chunks of short write transactions, and finishes removing the results and
    /// rollups of deleted monitors (counted in the total).
    pub async fn purge_results(&self, before: crate::model::Timestamp) -> R<u64> {
        let before = rows::ms(before);
        let mut deleted = 0;
        loop {
            let ids = self
                .ids(
                    "SELECT id FROM results WHERE started_at < $1 ORDER BY started_at LIMIT $2",
                    before,
                )
                .await?;
            if ids.is_empty() {
                break;
            }
            deleted += self.delete_ids("results", "id", &ids).await?;
        }
        deleted += self.sweep_deleted().await?;
        Ok(deleted)
    }

    /// Removes the results and rollups of deleted monitors in chunks, then their tombstones;
    /// returns the results deleted.
    pub(super) async fn sweep_deleted(&self) -> R<u64> {
        let mut deleted = 0;
        loop {
            let rows = sqlx::query(
                "SELECT monitor_id FROM monitor_tombstones ORDER BY monitor_id LIMIT 100",
            )
            .fetch_all(&self.pool)
            .await?;
            if rows.is_empty() {
                return Ok(deleted);
            }
            for row in rows {
                let monitor: i64 = get(&row, "monitor_tombstones.monitor_id")?;
                loop {
                    let ids = self
                        .ids(
                            "SELECT id FROM results WHERE monitor_id = $1 LIMIT $2",
                            monitor,
                        )
                        .await?;
                    if ids.is_empty() {
                        break;
                    }
                    deleted += self.delete_ids("results", "id", &ids).await?;
                }
                loop {
                    let minutes = self
                        .ids(
                            "SELECT DISTINCT minute AS id FROM rollups WHERE monitor_id = $1 \
                             LIMIT $2",
                            monitor,
                        )
                        .await?;
                    if minutes.is_empty() {
                        break;
                    }
                    let mut tx = self.begin_write().await?;
                    let sql = format!(
                        "DELETE FROM rollups WHERE monitor_id = $1 AND minute IN ({})",
                        placeholders(2, minutes.len())
                    );
                    let mut q = sqlx::query(&sql).persistent(false).bind(monitor);
                    for m in &minutes {
                        q = q.bind(*m);
                    }
                    q.execute(tx.conn()).await?;
                    tx.commit().await?;
                }
                let mut tx = self.begin_write().await?;
                sqlx::query("DELETE FROM monitor_tombstones WHERE monitor_id = $1")
                    .bind(monitor)
                    .execute(tx.conn())
                    .await?;
                tx.commit().await?;
            }
        }
    }

    /// Up to [`DELETE_CHUNK`] ids from `sql` (parameters: `$1` = `arg`, `$2` = the limit).
    async fn ids(&self, sql: &str, arg: i64) -> R<Vec<i64>> {
        let rows = sqlx::query(sql)
            .bind(arg)
            .bind(DELETE_CHUNK as i64)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| get(r, "results.id")).collect()
    }

    /// Deletes the rows of `table` whose `column` is one of `ids`, in one short transaction.
    async fn delete_ids(&self, table: &str, column: &str, ids: &[i64]) -> R<u64> {
        let mut total = 0;
        for chunk in ids.chunks(CHUNK) {
            let mut tx = self.begin_write().await?;
            let sql = format!(
                "DELETE FROM {table} WHERE {column} IN ({})",
                params(self.backend, chunk.len())
            );
            let mut q = sqlx::query(&sql).persistent(false);
            for id in chunk {
                q = q.bind(*id);
            }
            total += q.execute(tx.conn()).await?.rows_affected();
            tx.commit().await?;
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_become_a_json_object() {
        let j = metrics_json(&[("a".into(), 1.5), ("nan".into(), f64::NAN)]);
        assert_eq!(j, r#"{"a":1.5,"nan":null}"#);
    }

    #[test]
    fn odd_numbers_are_made_storable() {
        assert_eq!(finite_latency(f64::NAN), 0.0);
        assert_eq!(finite_latency(-1.0), 0.0);
        assert_eq!(finite_latency(12.5), 12.5);
        assert_eq!(finite(Some(f64::INFINITY)), None);
    }
}
