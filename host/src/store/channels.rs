//! Alert channels: create, read, list with filters, update (revision bump), delete (bindings
//! cascade), and the channels bound to a monitor (explicit ∪ default ∪ tag-scoped).

use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use super::rows::{self, get};
use super::{R, Store, conflict, placeholders};
use crate::model::{Channel, ChannelSpec, Page, WorkspaceId};

/// Columns of a channel row, over `channels c`, in the order [`channel_from_row`] reads them.
pub(super) const CHANNEL_COLUMNS: &str = "c.id, c.workspace_id, c.name, c.plugin, c.config, \
     c.enabled, c.is_default, c.tags, c.storm_limit, c.storm_window_secs, c.revision, \
     c.created_at, c.updated_at";

/// Filters of the channel list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelFilter {
    /// Channels whose plugin reference is exactly this, or this name with any `@version`.
    pub plugin: Option<String>,
    pub enabled: Option<bool>,
}

/// Decodes a row of [`CHANNEL_COLUMNS`] (column names without the `c.` prefix).
pub(super) fn channel_from_row(row: &AnyRow) -> R<Channel> {
    Ok(Channel {
        id: get(row, "channels.id")?,
        workspace_id: get(row, "channels.workspace_id")?,
        spec: ChannelSpec {
            name: get(row, "channels.name")?,
            plugin: get(row, "channels.plugin")?,
            config: rows::json(row, "channels.config")?,
            enabled: rows::flag(row, "channels.enabled")?,
            is_default: rows::flag(row, "channels.is_default")?,
            tags: rows::json(row, "channels.tags")?,
            storm_limit: rows::u32_col(row, "channels.storm_limit")?,
            storm_window_secs: rows::u32_col(row, "channels.storm_window_secs")?,
        },
        revision: get(row, "channels.revision")?,
        created_at: rows::time(row, "channels.created_at")?,
        updated_at: rows::time(row, "channels.updated_at")?,
    })
}

/// The conflict reported when a channel name is taken.
fn name_taken(spec: &ChannelSpec) -> impl FnOnce() -> String + '_ {
    || format!("a channel named `{}`", spec.name)
}

/// Channels of the workspace whose id is among `ids` (the ids that exist, in no order).
pub(super) async fn existing_channel_ids(
    conn: &mut AnyConnection,
    ws: WorkspaceId,
    ids: &[i64],
) -> R<Vec<i64>> {
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(super::CHUNK) {
        let sql = format!(
            "SELECT id FROM channels WHERE workspace_id = $1 AND id IN ({})",
            placeholders(2, chunk.len())
        );
        let mut q = sqlx::query(&sql).persistent(false).bind(ws);
        for id in chunk {
            q = q.bind(*id);
        }
        for row in q.fetch_all(&mut *conn).await? {
            found.push(get::<i64>(&row, "channels.id")?);
        }
    }
    Ok(found)
}

impl Store {
    /// Inserts a channel (config as given: secrets already sealed); a taken name is
    /// [`super::StoreError::Conflict`].
    pub async fn create_channel(&self, ws: WorkspaceId, spec: &ChannelSpec) -> R<Channel> {
        let now = rows::now();
        let at = rows::ms(now);
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "INSERT INTO channels (workspace_id, name, plugin, config, enabled, is_default, \
             tags, storm_limit, storm_window_secs, revision, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $10) RETURNING id",
        )
        .bind(ws)
        .bind(spec.name.as_str())
        .bind(spec.plugin.as_str())
        .bind(rows::to_json(&spec.config, "channels.config")?)
        .bind(i64::from(spec.enabled))
        .bind(i64::from(spec.is_default))
        .bind(rows::to_json(&spec.tags, "channels.tags")?)
        .bind(i64::from(spec.storm_limit))
        .bind(i64::from(spec.storm_window_secs))
        .bind(at)
        .fetch_one(tx.conn())
        .await
        .map_err(|e| conflict(e, name_taken(spec)))?;
        let id: i64 = get(&row, "channels.id")?;
        tx.commit().await?;
        Ok(Channel {
            id,
            workspace_id: ws,
            spec: spec.clone(),
            revision: 1,
            created_at: now,
            updated_at: now,
        })
    }

    /// One channel of the workspace.
    pub async fn get_channel(&self, ws: WorkspaceId, id: i64) -> R<Option<Channel>> {
        let sql = format!(
            "SELECT {CHANNEL_COLUMNS} FROM channels c WHERE c.workspace_id = $1 AND c.id = $2"
        );
        let row = sqlx::query(&sql)
            .bind(ws)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(channel_from_row).transpose()
    }

    /// Channels of the workspace matching `filter`, ordered by id.
    pub async fn list_channels(
        &self,
        ws: WorkspaceId,
        filter: &ChannelFilter,
        limit: i64,
        offset: i64,
    ) -> R<Page<Channel>> {
        let mut clauses = vec!["c.workspace_id = $1".to_string()];
        let mut texts: Vec<String> = Vec::new();
        let mut n = 1;
        if let Some(plugin) = &filter.plugin {
            if plugin.contains('@') {
                n += 1;
                clauses.push(format!("c.plugin = ${n}"));
                texts.push(plugin.clone());
            } else {
                // `name` or `name@<any version>`.
                clauses.push(format!(
                    "(c.plugin = ${} OR substr(c.plugin, 1, length(${})) = ${})",
                    n + 1,
                    n + 2,
                    n + 2
                ));
                n += 2;
                texts.push(plugin.clone());
                texts.push(format!("{plugin}@"));
            }
        }
        let enabled_clause = filter
            .enabled
            .map(|e| format!(" AND c.enabled = {}", i64::from(e)))
            .unwrap_or_default();
        let where_sql = format!("{}{enabled_clause}", clauses.join(" AND "));
        let mut conn = self.pool.acquire().await?;
        let count_sql = format!("SELECT COUNT(*) AS n FROM channels c WHERE {where_sql}");
        let mut q = sqlx::query(&count_sql).bind(ws);
        for t in &texts {
            q = q.bind(t.as_str());
        }
        let total: i64 = get(&q.fetch_one(&mut *conn).await?, "channels.n")?;
        let page_sql = format!(
            "SELECT {CHANNEL_COLUMNS} FROM channels c WHERE {where_sql} ORDER BY c.id \
             LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2
        );
        let mut q = sqlx::query(&page_sql).bind(ws);
        for t in &texts {
            q = q.bind(t.as_str());
        }
        let rows = q
            .bind(limit.max(0))
            .bind(offset.max(0))
            .fetch_all(&mut *conn)
            .await?;
        let items = rows.iter().map(channel_from_row).collect::<R<Vec<_>>>()?;
        Ok(Page { items, total })
    }

    /// Replaces a channel's spec, bumping `revision`; `None` when it does not exist; a taken
    /// name is [`super::StoreError::Conflict`].
    pub async fn update_channel(
        &self,
        ws: WorkspaceId,
        id: i64,
        spec: &ChannelSpec,
    ) -> R<Option<Channel>> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE channels SET name = $1, plugin = $2, config = $3, enabled = $4, \
             is_default = $5, tags = $6, storm_limit = $7, storm_window_secs = $8, \
             revision = revision + 1, updated_at = $9 WHERE workspace_id = $10 AND id = $11",
        )
        .bind(spec.name.as_str())
        .bind(spec.plugin.as_str())
        .bind(rows::to_json(&spec.config, "channels.config")?)
        .bind(i64::from(spec.enabled))
        .bind(i64::from(spec.is_default))
        .bind(rows::to_json(&spec.tags, "channels.tags")?)
        .bind(i64::from(spec.storm_limit))
        .bind(i64::from(spec.storm_window_secs))
        .bind(rows::ms(rows::now()))
        .bind(ws)
        .bind(id)
        .execute(tx.conn())
        .await
        .map_err(|e| conflict(e, name_taken(spec)))?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        tx.commit().await?;
        self.get_channel(ws, id).await
    }

    /// Deletes a channel; its monitor bindings go with it. False when it did not exist.
    pub async fn delete_channel(&self, ws: WorkspaceId, id: i64) -> R<bool> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("DELETE FROM channels WHERE workspace_id = $1 AND id = $2")
            .bind(ws)
            .bind(id)
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// The enabled channels notified for a monitor: the ones it names, the workspace's default
    /// channels and those scoped to any of `tags`; each once, by id. (The same rule the
    /// incident engine applies, from `engine::bindings`.)
    pub async fn channels_for_monitor(
        &self,
        ws: WorkspaceId,
        monitor_id: i64,
        tags: &[String],
    ) -> R<Vec<Channel>> {
        let mut conn = self.pool.acquire().await?;
        let explicit =
            super::engine::bindings::explicit_channels(&mut conn, self.backend, &[monitor_id])
                .await?;
        let bound: Vec<i64> = super::engine::bindings::enabled_channels(&mut conn, ws)
            .await?
            .iter()
            .filter(|c| c.binds(explicit.get(&monitor_id), tags))
            .map(|c| c.id)
            .collect();
        drop(conn);
        let mut out = Vec::with_capacity(bound.len());
        for id in bound {
            if let Some(c) = self.get_channel(ws, id).await? {
                out.push(c);
            }
        }
        Ok(out)
    }
}
