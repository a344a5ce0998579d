//! Maintenance windows: create, read, list, update, delete. Monitor ids and tags are JSON
//! arrays in the row; when a window is active is decided in Rust (`crate::maintenance`).

use sqlx::any::AnyRow;

use super::rows::{self, get};
use super::{R, Store};
use crate::model::{MaintenanceSpec, MaintenanceWindow, WorkspaceId};

/// Columns of a window row, over `maintenance_windows w`, as [`window_from_row`] reads them.
pub(super) const WINDOW_COLUMNS: &str = "w.id, w.workspace_id, w.name, w.description, \
     w.starts_at, w.ends_at, w.cron, w.duration_secs, w.timezone, w.monitor_ids, w.tags, \
     w.enabled, w.created_at, w.updated_at";

/// Decodes a row of [`WINDOW_COLUMNS`] (column names without the `w.` prefix).
pub(super) fn window_from_row(row: &AnyRow) -> R<MaintenanceWindow> {
    let duration_secs = match get::<Option<i64>>(row, "maintenance_windows.duration_secs")? {
        None => None,
        Some(v) => Some(u32::try_from(v).map_err(|_| {
            rows::corrupt(
                "maintenance_windows.duration_secs",
                format!("{v} does not fit 0..=4294967295"),
            )
        })?),
    };
    Ok(MaintenanceWindow {
        id: get(row, "maintenance_windows.id")?,
        workspace_id: get(row, "maintenance_windows.workspace_id")?,
        spec: MaintenanceSpec {
            name: get(row, "maintenance_windows.name")?,
            description: get(row, "maintenance_windows.description")?,
            starts_at: rows::opt_time(row, "maintenance_windows.starts_at")?,
            ends_at: rows::opt_time(row, "maintenance_windows.ends_at")?,
            cron: get(row, "maintenance_windows.cron")?,
            duration_secs,
            timezone: get(row, "maintenance_windows.timezone")?,
            monitor_ids: rows::json(row, "maintenance_windows.monitor_ids")?,
            tags: rows::json(row, "maintenance_windows.tags")?,
            enabled: rows::flag(row, "maintenance_windows.enabled")?,
        },
        created_at: rows::time(row, "maintenance_windows.created_at")?,
        updated_at: rows::time(row, "maintenance_windows.updated_at")?,
    })
}

/// Binds a spec's columns in this order: name, description, starts_at, ends_at, cron,
/// duration_secs, timezone, monitor_ids, tags, enabled.
fn bind_window<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    spec: &'q MaintenanceSpec,
) -> R<sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>> {
    Ok(q.bind(spec.name.as_str())
        .bind(spec.description.as_str())
        .bind(spec.starts_at.map(rows::ms))
        .bind(spec.ends_at.map(rows::ms))
        .bind(spec.cron.as_deref())
        .bind(spec.duration_secs.map(i64::from))
        .bind(spec.timezone.as_str())
        .bind(rows::to_json(
            &spec.monitor_ids,
            "maintenance_windows.monitor_ids",
        )?)
        .bind(rows::to_json(&spec.tags, "maintenance_windows.tags")?)
        .bind(i64::from(spec.enabled)))
}

impl Store {
    /// Inserts a maintenance window (validated by the caller).
    pub async fn create_maintenance_window(
        &self,
        ws: WorkspaceId,
        spec: &MaintenanceSpec,
    ) -> R<MaintenanceWindow> {
        let now = rows::now();
        let at = rows::ms(now);
        let mut tx = self.begin_write().await?;
        let q = sqlx::query(
            "INSERT INTO maintenance_windows (workspace_id, name, description, starts_at, \
             ends_at, cron, duration_secs, timezone, monitor_ids, tags, enabled, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) \
             RETURNING id",
        )
        .bind(ws);
        let row = bind_window(q, spec)?.bind(at).fetch_one(tx.conn()).await?;
        let id: i64 = get(&row, "maintenance_windows.id")?;
        tx.commit().await?;
        Ok(MaintenanceWindow {
            id,
            workspace_id: ws,
            spec: spec.clone(),
            created_at: now,
            updated_at: now,
        })
    }

    /// One maintenance window of the workspace.
    pub async fn get_maintenance_window(
        &self,
        ws: WorkspaceId,
        id: i64,
    ) -> R<Option<MaintenanceWindow>> {
        let sql = format!(
            "SELECT {WINDOW_COLUMNS} FROM maintenance_windows w \
             WHERE w.workspace_id = $1 AND w.id = $2"
        );
        let row = sqlx::query(&sql)
            .bind(ws)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(window_from_row).transpose()
    }

    /// Every maintenance window of the workspace, by id (a workspace has few; the API filters
    /// by `active` and pages in memory).
    pub async fn list_maintenance_windows(&self, ws: WorkspaceId) -> R<Vec<MaintenanceWindow>> {
        let sql = format!(
            "SELECT {WINDOW_COLUMNS} FROM maintenance_windows w WHERE w.workspace_id = $1 \
             ORDER BY w.id"
        );
        let rows = sqlx::query(&sql).bind(ws).fetch_all(&self.pool).await?;
        rows.iter().map(window_from_row).collect()
    }

    /// Replaces a window's spec; `None` when it does not exist.
    pub async fn update_maintenance_window(
        &self,
        ws: WorkspaceId,
        id: i64,
        spec: &MaintenanceSpec,
    ) -> R<Option<MaintenanceWindow>> {
        let mut tx = self.begin_write().await?;
        let q = sqlx::query(
            "UPDATE maintenance_windows SET name = $1, description = $2, starts_at = $3, \
             ends_at = $4, cron = $5, duration_secs = $6, timezone = $7, monitor_ids = $8, \
             tags = $9, enabled = $10, updated_at = $11 WHERE workspace_id = $12 AND id = $13",
        );
        let done = bind_window(q, spec)?
            .bind(rows::ms(rows::now()))
            .bind(ws)
            .bind(id)
            .execute(tx.conn())
            .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        tx.commit().await?;
        self.get_maintenance_window(ws, id).await
    }

    /// Deletes a window; false when it did not exist.
    pub async fn delete_maintenance_window(&self, ws: WorkspaceId, id: i64) -> R<bool> {
        let mut tx = self.begin_write().await?;
        let done =
            sqlx::query("DELETE FROM maintenance_windows WHERE workspace_id = $1 AND id = $2")
                .bind(ws)
                .bind(id)
                .execute(tx.conn())
                .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }
}
