//! Uploaded plugins: metadata rows per workspace and component bytes deduplicated by digest.

use sqlx::any::AnyRow;

use super::rows::{self, get};
use super::{R, Store, StoreError, conflict};
use crate::model::{StoredPlugin, WorkspaceId};
use crate::runtime::Grants;

/// Columns of a plugin row.
const PLUGIN_COLUMNS: &str = "workspace_id, name, version, digest, kind, description, \
     config_schema, capabilities, grants, enabled, size, created_at";

/// Decodes a row of [`PLUGIN_COLUMNS`].
fn plugin_from_row(row: &AnyRow) -> R<StoredPlugin> {
    Ok(StoredPlugin {
        workspace_id: get(row, "plugins.workspace_id")?,
        name: get(row, "plugins.name")?,
        version: get(row, "plugins.version")?,
        digest: get(row, "plugins.digest")?,
        kind: get(row, "plugins.kind")?,
        description: get(row, "plugins.description")?,
        config_schema: rows::json(row, "plugins.config_schema")?,
        capabilities: rows::json(row, "plugins.capabilities")?,
        grants: rows::opt_json(row, "plugins.grants")?,
        enabled: rows::flag(row, "plugins.enabled")?,
        size: get(row, "plugins.size")?,
        created_at: rows::time(row, "plugins.created_at")?,
    })
}

impl Store {
    /// Stores an uploaded plugin and its bytes (bytes deduplicated by digest).
    /// `Conflict` when `name@version` exists in the workspace.
    pub async fn insert_plugin(&self, plugin: &StoredPlugin, bytes: &[u8]) -> R<()> {
        let taken = || format!("plugin {}@{}", plugin.name, plugin.version);
        let mut tx = self.begin_write().await?;
        let exists = sqlx::query(
            "SELECT 1 AS one FROM plugins WHERE workspace_id = $1 AND name = $2 AND version = $3",
        )
        .bind(plugin.workspace_id)
        .bind(plugin.name.as_str())
        .bind(plugin.version.as_str())
        .fetch_optional(tx.conn())
        .await?;
        if exists.is_some() {
            return Err(StoreError::Conflict(taken()));
        }
        sqlx::query(
            "INSERT INTO plugin_blobs (digest, bytes, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (digest) DO NOTHING",
        )
        .bind(plugin.digest.as_str())
        .bind(bytes)
        .bind(rows::ms(rows::now()))
        .execute(tx.conn())
        .await?;
        sqlx::query(&format!(
            "INSERT INTO plugins ({PLUGIN_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ))
        .bind(plugin.workspace_id)
        .bind(plugin.name.as_str())
        .bind(plugin.version.as_str())
        .bind(plugin.digest.as_str())
        .bind(plugin.kind.as_str())
        .bind(plugin.description.as_str())
        .bind(rows::to_json(
            &plugin.config_schema,
            "plugins.config_schema",
        )?)
        .bind(rows::to_json(&plugin.capabilities, "plugins.capabilities")?)
        .bind(
            plugin
                .grants
                .as_ref()
                .map(|g| rows::to_json(g, "plugins.grants"))
                .transpose()?,
        )
        .bind(i64::from(plugin.enabled))
        .bind(plugin.size)
        .bind(rows::ms(plugin.created_at))
        .execute(tx.conn())
        .await
        .map_err(|e| conflict(e, taken))?;
        tx.commit().await
    }

    /// Uploaded plugins of the workspace, by name then version.
    pub async fn list_plugins(&self, ws: WorkspaceId) -> R<Vec<StoredPlugin>> {
        let rows = sqlx::query(&format!(
            "SELECT {PLUGIN_COLUMNS} FROM plugins WHERE workspace_id = $1 ORDER BY name, version"
        ))
        .bind(ws)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(plugin_from_row).collect()
    }

    /// Every uploaded plugin of every workspace (start-up load).
    pub async fn all_plugins(&self) -> R<Vec<StoredPlugin>> {
        let rows = sqlx::query(&format!(
            "SELECT {PLUGIN_COLUMNS} FROM plugins ORDER BY workspace_id, name, version"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(plugin_from_row).collect()
    }

    /// One uploaded plugin.
    pub async fn get_plugin(
        &self,
        ws: WorkspaceId,
        name: &str,
        version: &str,
    ) -> R<Option<StoredPlugin>> {
        let row = sqlx::query(&format!(
            "SELECT {PLUGIN_COLUMNS} FROM plugins \
             WHERE workspace_id = $1 AND name = $2 AND version = $3"
        ))
        .bind(ws)
        .bind(name)
        .bind(version)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(plugin_from_row).transpose()
    }

    /// The component bytes stored under a digest.
    pub async fn plugin_bytes(&self, digest: &str) -> R<Option<Vec<u8>>> {
        let row = sqlx::query("SELECT bytes FROM plugin_blobs WHERE digest = $1")
            .bind(digest)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref()
            .map(|r| get(r, "plugin_blobs.bytes"))
            .transpose()
    }

    /// Enables or disables a plugin version; false when it does not exist.
    pub async fn set_plugin_enabled(
        &self,
        ws: WorkspaceId,
        name: &str,
        version: &str,
        enabled: bool,
    ) -> R<bool> {
        self.set_plugin_column(ws, name, version, "enabled", i64::from(enabled))
            .await
    }

    /// Replaces a plugin version's grants; false when it does not exist.
    pub async fn set_plugin_grants(
        &self,
        ws: WorkspaceId,
        name: &str,
        version: &str,
        grants: &Grants,
    ) -> R<bool> {
        let grants = rows::to_json(grants, "plugins.grants")?;
        self.set_plugin_column(ws, name, version, "grants", grants)
            .await
    }

    /// Sets one column of a plugin version's row; false when it does not exist.
    async fn set_plugin_column<T>(
        &self,
        ws: WorkspaceId,
        name: &str,
        version: &str,
        column: &'static str,
        value: T,
    ) -> R<bool>
    where
        T: for<'q> sqlx::Encode<'q, sqlx::Any> + sqlx::Type<sqlx::Any> + Send,
    {
        let sql = format!(
            "UPDATE plugins SET {column} = $1 WHERE workspace_id = $2 AND name = $3 AND version = $4"
        );
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(&sql)
            .bind(value)
            .bind(ws)
            .bind(name)
            .bind(version)
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes a plugin version (and its bytes when no other row shares the digest).
    pub async fn delete_plugin(&self, ws: WorkspaceId, name: &str, version: &str) -> R<bool> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "DELETE FROM plugins WHERE workspace_id = $1 AND name = $2 AND version = $3 \
             RETURNING digest",
        )
        .bind(ws)
        .bind(name)
        .bind(version)
        .fetch_optional(tx.conn())
        .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        let digest: String = get(&row, "plugins.digest")?;
        sqlx::query(
            "DELETE FROM plugin_blobs WHERE digest = $1 \
             AND NOT EXISTS (SELECT 1 FROM plugins WHERE digest = $1)",
        )
        .bind(digest.as_str())
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}
