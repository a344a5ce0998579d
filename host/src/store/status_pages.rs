//! Status pages: pages, their curated components, public incident updates, and the reads the
//! public page is computed from (live state, daily counts from rollups, incidents).
//!
//! Slugs are unique across the installation (`/status/{slug}` names no workspace); a taken
//! slug is [`StoreError::Conflict`]. Components cascade with their page and their monitor.

use std::collections::HashMap;

use sqlx::any::AnyRow;

use super::rows::{self, get};
use super::{R, Store, StoreError, conflict, placeholders};
use crate::model::{IncidentStatus, Severity, Timestamp, WorkspaceId};
use crate::status::types::{
    Component, ComponentSpec, DayCounts, IncidentSummary, IncidentUpdate, IncidentUpdateSpec,
    LiveState, StatusPage, StatusPageSpec, UpdateStatus,
};

/// Milliseconds per day.
const DAY: i64 = 86_400_000;

/// Columns of a page row as [`page_from_row`] reads them.
const PAGE_COLUMNS: &str = "id, workspace_id, slug, title, description, logo_url, brand_color, \
     public, created_at, updated_at";

/// Columns of a component row as [`component_from_row`] reads them.
const COMPONENT_COLUMNS: &str = "id, page_id, monitor_id, public_name, group_name, sort_order";

fn page_from_row(row: &AnyRow) -> R<StatusPage> {
    Ok(StatusPage {
        id: get(row, "status_pages.id")?,
        workspace_id: get(row, "status_pages.workspace_id")?,
        spec: StatusPageSpec {
            slug: get(row, "status_pages.slug")?,
            title: get(row, "status_pages.title")?,
            description: get(row, "status_pages.description")?,
            logo_url: get(row, "status_pages.logo_url")?,
            brand_color: get(row, "status_pages.brand_color")?,
            public: rows::flag(row, "status_pages.public")?,
        },
        created_at: rows::time(row, "status_pages.created_at")?,
        updated_at: rows::time(row, "status_pages.updated_at")?,
    })
}

fn component_from_row(row: &AnyRow) -> R<Component> {
    Ok(Component {
        id: get(row, "status_page_components.id")?,
        page_id: get(row, "status_page_components.page_id")?,
        spec: ComponentSpec {
            monitor_id: get(row, "status_page_components.monitor_id")?,
            public_name: get(row, "status_page_components.public_name")?,
            group: get(row, "status_page_components.group_name")?,
            order: get(row, "status_page_components.sort_order")?,
        },
    })
}

fn update_from_row(row: &AnyRow) -> R<IncidentUpdate> {
    let status: String = get(row, "incident_updates.status")?;
    Ok(IncidentUpdate {
        id: get(row, "incident_updates.id")?,
        incident_id: get(row, "incident_updates.incident_id")?,
        at: rows::time(row, "incident_updates.at")?,
        status: UpdateStatus::parse(&status)
            .ok_or_else(|| rows::corrupt("incident_updates.status", status))?,
        message: get(row, "incident_updates.message")?,
        public: rows::flag(row, "incident_updates.public")?,
        author: get(row, "incident_updates.author")?,
    })
}

fn slug_taken(slug: &str) -> impl FnOnce() -> String + '_ {
    move || format!("status page slug `{slug}`")
}

impl Store {
    /// Inserts a status page (validated by the caller); `Conflict` when the slug is taken.
    pub async fn create_status_page(
        &self,
        ws: WorkspaceId,
        spec: &StatusPageSpec,
    ) -> R<StatusPage> {
        let now = rows::now();
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "INSERT INTO status_pages (workspace_id, slug, title, description, logo_url, \
             brand_color, public, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING id",
        )
        .bind(ws)
        .bind(spec.slug.as_str())
        .bind(spec.title.as_str())
        .bind(spec.description.as_str())
        .bind(spec.logo_url.as_deref())
        .bind(spec.brand_color.as_deref())
        .bind(i64::from(spec.public))
        .bind(rows::ms(now))
        .fetch_one(tx.conn())
        .await
        .map_err(|e| conflict(e, slug_taken(&spec.slug)))?;
        let id: i64 = get(&row, "status_pages.id")?;
        tx.commit().await?;
        Ok(StatusPage {
            id,
            workspace_id: ws,
            spec: spec.clone(),
            created_at: now,
            updated_at: now,
        })
    }

    /// One status page of the workspace.
    pub async fn get_status_page(&self, ws: WorkspaceId, id: i64) -> R<Option<StatusPage>> {
        let sql =
            format!("SELECT {PAGE_COLUMNS} FROM status_pages WHERE workspace_id = $1 AND id = $2");
        let row = sqlx::query(&sql)
            .bind(ws)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(page_from_row).transpose()
    }

    /// The status page with this slug, in any workspace (for the public routes).
    pub async fn status_page_by_slug(&self, slug: &str) -> R<Option<StatusPage>> {
        let sql = format!("SELECT {PAGE_COLUMNS} FROM status_pages WHERE slug = $1");
        let row = sqlx::query(&sql)
            .bind(slug)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(page_from_row).transpose()
    }

    /// Every status page of the workspace, by id.
    pub async fn list_status_pages(&self, ws: WorkspaceId) -> R<Vec<StatusPage>> {
        let sql =
            format!("SELECT {PAGE_COLUMNS} FROM status_pages WHERE workspace_id = $1 ORDER BY id");
        let rows = sqlx::query(&sql).bind(ws).fetch_all(&self.pool).await?;
        rows.iter().map(page_from_row).collect()
    }

    /// Replaces a page's definition; `None` when it does not exist, `Conflict` when the new
    /// slug is taken.
    pub async fn update_status_page(
        &self,
        ws: WorkspaceId,
        id: i64,
        spec: &StatusPageSpec,
    ) -> R<Option<StatusPage>> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE status_pages SET slug = $1, title = $2, description = $3, logo_url = $4, \
             brand_color = $5, public = $6, updated_at = $7 WHERE workspace_id = $8 AND id = $9",
        )
        .bind(spec.slug.as_str())
        .bind(spec.title.as_str())
        .bind(spec.description.as_str())
        .bind(spec.logo_url.as_deref())
        .bind(spec.brand_color.as_deref())
        .bind(i64::from(spec.public))
        .bind(rows::ms(rows::now()))
        .bind(ws)
        .bind(id)
        .execute(tx.conn())
        .await
        .map_err(|e| conflict(e, slug_taken(&spec.slug)))?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        tx.commit().await?;
        self.get_status_page(ws, id).await
    }

    /// Deletes a page and its components; false when it did not exist.
    pub async fn delete_status_page(&self, ws: WorkspaceId, id: i64) -> R<bool> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("DELETE FROM status_pages WHERE workspace_id = $1 AND id = $2")
            .bind(ws)
            .bind(id)
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// The components of a page, in display order (order, then id).
    pub async fn status_page_components(&self, page_id: i64) -> R<Vec<Component>> {
        let sql = format!(
            "SELECT {COMPONENT_COLUMNS} FROM status_page_components WHERE page_id = $1 \
             ORDER BY sort_order, id"
        );
        let rows = sqlx::query(&sql)
            .bind(page_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(component_from_row).collect()
    }

    /// Adds a component (monitor checked by the caller); with `append` its order is one past
    /// the last component's, otherwise `spec.order`.
    /// `Conflict` when the monitor is already on the page.
    pub async fn add_status_page_component(
        &self,
        page_id: i64,
        spec: &ComponentSpec,
        append: bool,
    ) -> R<Component> {
        let mut tx = self.begin_write().await?;
        let order = if append {
            let row = sqlx::query(
                "SELECT CAST(COALESCE(MAX(sort_order), -1) + 1 AS BIGINT) AS n \
                 FROM status_page_components WHERE page_id = $1",
            )
            .bind(page_id)
            .fetch_one(tx.conn())
            .await?;
            get::<i64>(&row, "status_page_components.n")?
        } else {
            spec.order
        };
        let row = sqlx::query(
            "INSERT INTO status_page_components (page_id, monitor_id, public_name, group_name, \
             sort_order) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(page_id)
        .bind(spec.monitor_id)
        .bind(spec.public_name.as_str())
        .bind(spec.group.as_str())
        .bind(order)
        .fetch_one(tx.conn())
        .await
        .map_err(|e| {
            conflict(e, || {
                format!("monitor {} is already on this page", spec.monitor_id)
            })
        })?;
        let id: i64 = get(&row, "status_page_components.id")?;
        touch_page(tx.conn(), page_id).await?;
        tx.commit().await?;
        Ok(Component {
            id,
            page_id,
            spec: ComponentSpec {
                order,
                ..spec.clone()
            },
        })
    }

    /// Replaces every component of a page (validated by the caller, no duplicate monitors).
    pub async fn replace_status_page_components(
        &self,
        page_id: i64,
        specs: &[ComponentSpec],
    ) -> R<Vec<Component>> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM status_page_components WHERE page_id = $1")
            .bind(page_id)
            .execute(tx.conn())
            .await?;
        for spec in specs {
            sqlx::query(
                "INSERT INTO status_page_components (page_id, monitor_id, public_name, \
                 group_name, sort_order) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(page_id)
            .bind(spec.monitor_id)
            .bind(spec.public_name.as_str())
            .bind(spec.group.as_str())
            .bind(spec.order)
            .execute(tx.conn())
            .await
            .map_err(|e| conflict(e, || format!("monitor {} is listed twice", spec.monitor_id)))?;
        }
        touch_page(tx.conn(), page_id).await?;
        tx.commit().await?;
        self.status_page_components(page_id).await
    }

    /// Removes one component of a page; false when it did not exist.
    pub async fn delete_status_page_component(&self, page_id: i64, id: i64) -> R<bool> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("DELETE FROM status_page_components WHERE page_id = $1 AND id = $2")
            .bind(page_id)
            .bind(id)
            .execute(tx.conn())
            .await?;
        if done.rows_affected() > 0 {
            touch_page(tx.conn(), page_id).await?;
        }
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Adds an update to an incident of the workspace; `None` when there is no such incident.
    pub async fn add_incident_update(
        &self,
        ws: WorkspaceId,
        incident_id: i64,
        spec: &IncidentUpdateSpec,
        author: &str,
    ) -> R<Option<IncidentUpdate>> {
        let now = rows::now();
        let mut tx = self.begin_write().await?;
        let exists = sqlx::query("SELECT id FROM incidents WHERE workspace_id = $1 AND id = $2")
            .bind(ws)
            .bind(incident_id)
            .fetch_optional(tx.conn())
            .await?;
        if exists.is_none() {
            return Ok(None);
        }
        let row = sqlx::query(
            "INSERT INTO incident_updates (incident_id, at, status, message, public, author) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(incident_id)
        .bind(rows::ms(now))
        .bind(spec.status.as_str())
        .bind(spec.message.as_str())
        .bind(i64::from(spec.public))
        .bind(author)
        .fetch_one(tx.conn())
        .await?;
        let id: i64 = get(&row, "incident_updates.id")?;
        tx.commit().await?;
        Ok(Some(IncidentUpdate {
            id,
            incident_id,
            at: now,
            status: spec.status,
            message: spec.message.clone(),
            public: spec.public,
            author: author.to_string(),
        }))
    }

    /// Updates of these incidents (only public ones when `public_only`), oldest first.
    pub async fn incident_updates(
        &self,
        incident_ids: &[i64],
        public_only: bool,
    ) -> R<Vec<IncidentUpdate>> {
        if incident_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for chunk in incident_ids.chunks(super::CHUNK) {
            let sql = format!(
                "SELECT id, incident_id, at, status, message, public, author \
                 FROM incident_updates WHERE incident_id IN ({}){} ORDER BY at, id",
                placeholders(1, chunk.len()),
                if public_only { " AND public = 1" } else { "" }
            );
            let mut q = sqlx::query(&sql).persistent(false);
            for id in chunk {
                q = q.bind(*id);
            }
            for row in q.fetch_all(&self.pool).await? {
                out.push(update_from_row(&row)?);
            }
        }
        out.sort_by_key(|u| (u.at, u.id));
        Ok(out)
    }

    /// Live status, enabled flag and tags of these monitors of the workspace.
    pub async fn status_live_states(&self, ws: WorkspaceId, ids: &[i64]) -> R<Vec<LiveState>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT m.id, m.enabled, s.status FROM monitors m \
             LEFT JOIN monitor_state s ON s.monitor_id = m.id \
             WHERE m.workspace_id = $1 AND m.id IN ({})",
            placeholders(2, ids.len())
        );
        let mut q = sqlx::query(&sql).persistent(false).bind(ws);
        for id in ids {
            q = q.bind(*id);
        }
        let mut states = Vec::with_capacity(ids.len());
        for row in q.fetch_all(&self.pool).await? {
            states.push(LiveState {
                monitor_id: get(&row, "monitors.id")?,
                status: rows::opt_status_col(&row, "monitor_state.status")?,
                enabled: rows::flag(&row, "monitors.enabled")?,
                tags: Vec::new(),
            });
        }
        let sql = format!(
            "SELECT monitor_id, tag FROM monitor_tags WHERE monitor_id IN ({})",
            placeholders(1, ids.len())
        );
        let mut q = sqlx::query(&sql).persistent(false);
        for id in ids {
            q = q.bind(*id);
        }
        let mut tags: HashMap<i64, Vec<String>> = HashMap::new();
        for row in q.fetch_all(&self.pool).await? {
            tags.entry(get(&row, "monitor_tags.monitor_id")?)
                .or_default()
                .push(get(&row, "monitor_tags.tag")?);
        }
        for s in &mut states {
            s.tags = tags.remove(&s.monitor_id).unwrap_or_default();
        }
        Ok(states)
    }

    /// Result counts per monitor and UTC day (days since the epoch) over `[from, to)`:
    /// rolled-up minutes from `rollups`, later results from `results` (as
    /// [`Store::uptime`] does). Results in maintenance count only in `maintenance`.
    pub async fn status_daily_counts(
        &self,
        ids: &[i64],
        from: Timestamp,
        to: Timestamp,
    ) -> R<HashMap<(i64, i64), DayCounts>> {
        let mut out: HashMap<(i64, i64), DayCounts> = HashMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        let (from_ms, to_ms) = (rows::ms(from), rows::ms(to));
        let watermark = self.rollup_watermark().await?.unwrap_or(i64::MIN);
        let n = ids.len();
        if watermark > from_ms && to_ms > from_ms {
            let sql = format!(
                "SELECT monitor_id, CAST(minute / {DAY} AS BIGINT) AS day, \
                 CAST(SUM(up) AS BIGINT) AS up, CAST(SUM(degraded) AS BIGINT) AS degraded, \
                 CAST(SUM(down) AS BIGINT) AS down, CAST(SUM(error) AS BIGINT) AS error, \
                 CAST(SUM(maintenance) AS BIGINT) AS maintenance FROM rollups \
                 WHERE monitor_id IN ({}) AND minute >= ${} AND minute < ${} \
                 GROUP BY monitor_id, CAST(minute / {DAY} AS BIGINT)",
                placeholders(1, n),
                n + 1,
                n + 2
            );
            let mut q = sqlx::query(&sql).persistent(false);
            for id in ids {
                q = q.bind(*id);
            }
            for row in q
                .bind(from_ms)
                .bind(watermark.min(to_ms))
                .fetch_all(&self.pool)
                .await?
            {
                let key = (get(&row, "rollups.monitor_id")?, get(&row, "rollups.day")?);
                out.entry(key).or_default().add(&DayCounts {
                    up: get(&row, "rollups.up")?,
                    degraded: get(&row, "rollups.degraded")?,
                    down: get(&row, "rollups.down")?,
                    error: get(&row, "rollups.error")?,
                    maintenance: get(&row, "rollups.maintenance")?,
                });
            }
        }
        let sql = format!(
            "SELECT monitor_id, CAST(started_at / {DAY} AS BIGINT) AS day, status, maintenance, \
             COUNT(*) AS n FROM results WHERE monitor_id IN ({}) AND started_at >= ${} \
             AND started_at < ${} \
             GROUP BY monitor_id, CAST(started_at / {DAY} AS BIGINT), status, maintenance",
            placeholders(1, n),
            n + 1,
            n + 2
        );
        let mut q = sqlx::query(&sql).persistent(false);
        for id in ids {
            q = q.bind(*id);
        }
        for row in q
            .bind(from_ms.max(watermark))
            .bind(to_ms)
            .fetch_all(&self.pool)
            .await?
        {
            let key = (get(&row, "results.monitor_id")?, get(&row, "results.day")?);
            let count: i64 = get(&row, "results.n")?;
            let c = out.entry(key).or_default();
            if rows::flag(&row, "results.maintenance")? {
                c.maintenance += count;
                continue;
            }
            match rows::status_col(&row, "results.status")? {
                crate::model::Status::Up => c.up += count,
                crate::model::Status::Degraded => c.degraded += count,
                crate::model::Status::Down => c.down += count,
                crate::model::Status::Error => c.error += count,
            }
        }
        Ok(out)
    }

    /// Incidents of these monitors of the workspace that are open, or were resolved at or
    /// after `since`; newest first, at most `limit`. Only public-safe columns are read.
    pub async fn status_incidents(
        &self,
        ws: WorkspaceId,
        ids: &[i64],
        since: Timestamp,
        limit: i64,
    ) -> R<Vec<IncidentSummary>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let n = ids.len();
        let sql = format!(
            "SELECT id, monitor_id, severity, status, opened_at, resolved_at FROM incidents \
             WHERE workspace_id = $1 AND monitor_id IN ({}) \
             AND (resolved_at IS NULL OR resolved_at >= ${}) \
             ORDER BY opened_at DESC, id DESC LIMIT ${}",
            placeholders(2, n),
            n + 2,
            n + 3
        );
        let mut q = sqlx::query(&sql).persistent(false).bind(ws);
        for id in ids {
            q = q.bind(*id);
        }
        let rows = q
            .bind(rows::ms(since))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let severity: String = get(row, "incidents.severity")?;
                let status: String = get(row, "incidents.status")?;
                Ok(IncidentSummary {
                    id: get(row, "incidents.id")?,
                    monitor_id: get(row, "incidents.monitor_id")?,
                    severity: match severity.as_str() {
                        "down" => Severity::Down,
                        "degraded" => Severity::Degraded,
                        _ => return Err(rows::corrupt("incidents.severity", severity)),
                    },
                    status: match status.as_str() {
                        "open" => IncidentStatus::Open,
                        "resolved" => IncidentStatus::Resolved,
                        _ => return Err(rows::corrupt("incidents.status", status)),
                    },
                    opened_at: rows::time(row, "incidents.opened_at")?,
                    resolved_at: rows::opt_time(row, "incidents.resolved_at")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()
    }
}

/// Moves a page's `updated_at` to now (component edits change the page).
async fn touch_page(conn: &mut sqlx::AnyConnection, page_id: i64) -> R<()> {
    sqlx::query("UPDATE status_pages SET updated_at = $1 WHERE id = $2")
        .bind(rows::ms(rows::now()))
        .bind(page_id)
        .execute(conn)
        .await?;
    Ok(())
}
