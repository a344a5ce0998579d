//! Responses remembered per `Idempotency-Key`, workspace and route.

use sqlx::any::AnyRow;

use super::rows::{self, get};
use super::{R, Store};
use crate::model::{IdempotentResponse, Timestamp, WorkspaceId};

/// Decodes a remembered response.
fn response_from_row(row: &AnyRow) -> R<IdempotentResponse> {
    let status: i64 = get(row, "idempotency.status")?;
    Ok(IdempotentResponse {
        request_hash: get(row, "idempotency.request_hash")?,
        status: u16::try_from(status)
            .map_err(|_| rows::corrupt("idempotency.status", format!("status {status}")))?,
        body: get(row, "idempotency.body")?,
    })
}

/// The response remembered for `(ws, route, key)`, read through `executor`.
async fn find_response<'e, E>(
    executor: E,
    ws: WorkspaceId,
    route: &str,
    key: &str,
) -> R<Option<IdempotentResponse>>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let row = sqlx::query(
        "SELECT request_hash, status, body FROM idempotency \
         WHERE workspace_id = $1 AND route = $2 AND key = $3",
    )
    .bind(ws)
    .bind(route)
    .bind(key)
    .fetch_optional(executor)
    .await?;
    row.as_ref().map(response_from_row).transpose()
}

impl Store {
    /// The response remembered for an idempotency key (per workspace and route).
    pub async fn idempotent_response(
        &self,
        ws: WorkspaceId,
        route: &str,
        key: &str,
    ) -> R<Option<IdempotentResponse>> {
        find_response(&self.pool, ws, route, key).await
    }

    /// Remembers a response for an idempotency key; an existing entry wins (returns it).
    pub async fn remember_response(
        &self,
        ws: WorkspaceId,
        route: &str,
        key: &str,
        response: &IdempotentResponse,
    ) -> R<Option<IdempotentResponse>> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "INSERT INTO idempotency (workspace_id, route, key, request_hash, status, body, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (workspace_id, route, key) DO NOTHING",
        )
        .bind(ws)
        .bind(route)
        .bind(key)
        .bind(response.request_hash.as_str())
        .bind(i64::from(response.status))
        .bind(rows::clean_text(&response.body).into_owned())
        .bind(rows::ms(rows::now()))
        .execute(tx.conn())
        .await?;
        let existing = if done.rows_affected() == 0 {
            find_response(tx.conn(), ws, route, key).await?
        } else {
            None
        };
        tx.commit().await?;
        Ok(existing)
    }

    /// Forgets idempotency keys older than `before`.
    pub async fn purge_idempotency(&self, before: Timestamp) -> R<u64> {
        self.delete_in_chunks(
            "DELETE FROM idempotency WHERE (workspace_id, route, key) IN \
             (SELECT workspace_id, route, key FROM idempotency WHERE created_at < $1 LIMIT $2)",
            before,
        )
        .await
    }
}
