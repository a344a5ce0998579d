//! API keys: stored by the sha256 hex of their secret, never the secret itself.

use sqlx::any::AnyRow;

use super::rows::{self, get};
use super::{R, Store, conflict};
use crate::model::{ApiKey, Scope, Timestamp, WorkspaceId};

/// Columns of a key row.
const KEY_COLUMNS: &str =
    "id, workspace_id, name, prefix, scopes, created_at, last_used_at, revoked_at";

/// Decodes a row of [`KEY_COLUMNS`].
fn key_from_row(row: &AnyRow) -> R<ApiKey> {
    let names: Vec<String> = rows::json(row, "api_keys.scopes")?;
    let scopes = names
        .iter()
        .map(|s| rows::scope(s, "api_keys.scopes"))
        .collect::<R<Vec<_>>>()?;
    Ok(ApiKey {
        id: get(row, "api_keys.id")?,
        workspace_id: get(row, "api_keys.workspace_id")?,
        name: get(row, "api_keys.name")?,
        prefix: get(row, "api_keys.prefix")?,
        scopes,
        created_at: rows::time(row, "api_keys.created_at")?,
        last_used_at: rows::opt_time(row, "api_keys.last_used_at")?,
        revoked_at: rows::opt_time(row, "api_keys.revoked_at")?,
    })
}

impl Store {
    /// Stores a new key by the sha256 hex of its secret.
    pub async fn create_api_key(
        &self,
        ws: WorkspaceId,
        name: &str,
        prefix: &str,
        secret_hash: &str,
        scopes: &[Scope],
    ) -> R<ApiKey> {
        let names: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(&format!(
            "INSERT INTO api_keys (workspace_id, name, prefix, secret_hash, scopes, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {KEY_COLUMNS}"
        ))
        .bind(ws)
        .bind(name)
        .bind(prefix)
        .bind(secret_hash)
        .bind(rows::to_json(&names, "api_keys.scopes")?)
        .bind(rows::ms(rows::now()))
        .fetch_one(tx.conn())
        .await
        .map_err(|e| conflict(e, || "an API key with this secret".to_string()))?;
        let key = key_from_row(&row)?;
        tx.commit().await?;
        Ok(key)
    }

    /// The unrevoked key with this secret hash.
    pub async fn api_key_by_hash(&self, secret_hash: &str) -> R<Option<ApiKey>> {
        let row = sqlx::query(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE secret_hash = $1 AND revoked_at IS NULL"
        ))
        .bind(secret_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(key_from_row).transpose()
    }

    /// Keys of the workspace, revoked ones included, by id.
    pub async fn list_api_keys(&self, ws: WorkspaceId) -> R<Vec<ApiKey>> {
        let rows = sqlx::query(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE workspace_id = $1 ORDER BY id"
        ))
        .bind(ws)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(key_from_row).collect()
    }

    /// Revokes a key; false when it does not exist or was already revoked.
    pub async fn revoke_api_key(&self, ws: WorkspaceId, id: i64) -> R<bool> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at = $1 \
             WHERE workspace_id = $2 AND id = $3 AND revoked_at IS NULL",
        )
        .bind(rows::ms(rows::now()))
        .bind(ws)
        .bind(id)
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Number of keys ever created (revoked included): zero means a first start.
    pub async fn count_api_keys(&self) -> R<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM api_keys")
            .fetch_one(&self.pool)
            .await?;
        get(&row, "api_keys.n")
    }

    /// Records when a key was last used (never moves the time backwards).
    pub async fn touch_api_key(&self, id: i64, at: Timestamp) -> R<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE api_keys SET last_used_at = $1 \
             WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)",
        )
        .bind(rows::ms(at))
        .bind(id)
        .execute(tx.conn())
        .await?;
        tx.commit().await
    }
}
