//! Persistence behind one type for both backends: SQLite (embedded default, WAL) and
//! PostgreSQL. Queries are written once against sqlx's `Any` driver with `$N` placeholders,
//! which both backends accept; migrations live in `migrations/sqlite` and `migrations/postgres`.
//!
//! Times are stored as milliseconds since the Unix epoch (BIGINT), JSON as TEXT, booleans as
//! 0/1 integers, so the same query text and decoding serve both backends.
//!
//! Layout: `connect` (URLs, pool, pragmas, migrations), `monitors` (config rows, tags,
//! dashboard), `results` (batch writer, live state, result list, purge), `rollup` (per-minute
//! rollups, latency chart, uptime) with `histogram`, `plugins`, `keys` (API keys),
//! `idempotency`, `channels` (alert channels and their bindings), `maintenance` (maintenance
//! windows), `status_pages` (status pages, components, incident updates), and `rows`
//! (decoding helpers).

mod channels;
mod connect;
pub mod dashboard;
mod engine;
mod histogram;
mod idempotency;
mod incidents;
mod keys;
mod maintenance;
mod monitors;
mod outbox;
mod plugins;
mod results;
mod rollup;
mod rows;
mod status_pages;

use std::sync::Arc;

use crate::model::Timestamp;

pub use channels::ChannelFilter;
pub use incidents::Acknowledged;
pub use monitors::{PluginUsage, dependency_cycle};
pub use outbox::{AttemptOutcome, Claimed, DeliveryRecord, NotificationFilter};

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// What can go wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL is neither `sqlite:` nor `postgres:`/`postgresql:`.
    #[error("unsupported database URL `{0}` (expected sqlite://… or postgres://…)")]
    UnsupportedUrl(String),
    /// The SQLite database file or its directory could not be created.
    #[error("cannot create the database directory {path}: {source}")]
    CreateDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Connecting or a query failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A unique constraint was violated (e.g. `name@version` already stored).
    #[error("already exists: {0}")]
    Conflict(String),
    /// A stored value could not be decoded (corrupt JSON, unknown enum value).
    #[error("corrupt stored value in {what}: {detail}")]
    Corrupt { what: &'static str, detail: String },
    /// A monitor names a channel that is not one of its workspace's.
    #[error("no channel {0} in this workspace")]
    UnknownChannel(i64),
    /// A monitor depends on a monitor that is not one of its workspace's.
    #[error("no monitor {0} in this workspace")]
    UnknownMonitor(i64),
    /// Saving these dependencies would close a cycle; the path from the monitor back to
    /// itself (first = last).
    #[error("dependency cycle through monitors {0:?}")]
    DependencyCycle(Vec<i64>),
}

/// Bulk actions on monitors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BulkAction {
    Enable,
    Disable,
    Delete,
    AddTags(Vec<String>),
    RemoveTags(Vec<String>),
}

/// The store. Cheap to clone (a pool handle).
#[derive(Clone)]
pub struct Store {
    pool: sqlx::AnyPool,
    backend: Backend,
    /// SQLite allows one writer at a time: write transactions of this process queue here
    /// instead of failing with `SQLITE_BUSY` (PostgreSQL does not use it).
    write_lock: Arc<tokio::sync::Mutex<()>>,
    /// Set while a background sweep removes the results of deleted monitors.
    sweeping: Arc<std::sync::atomic::AtomicBool>,
    /// Incident engine settings and the outbox signal.
    engine: Arc<engine::EngineShared>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish()
    }
}

type R<T> = Result<T, StoreError>;

/// Rows per multi-row statement and ids per `IN (…)` list: keeps every statement well under
/// SQLite's 32 766 and PostgreSQL's 65 535 bind parameters.
const CHUNK: usize = 1000;

/// Rows deleted per statement by purges, so SQLite's write lock is never held for long.
const DELETE_CHUNK: usize = 2000;

/// A write transaction; on SQLite it also holds the process-wide writer slot.
struct WriteTx {
    /// Declared first so it is dropped (rolled back) before the writer slot is released.
    tx: sqlx::Transaction<'static, sqlx::Any>,
    _slot: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl WriteTx {
    /// The connection to run statements on.
    fn conn(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.tx
    }

    /// Commits the transaction, then releases the writer slot.
    async fn commit(self) -> R<()> {
        self.tx.commit().await?;
        Ok(())
    }
}

impl Store {
    /// Connects (creating a SQLite file and its directory if needed), applies migrations and
    /// makes sure the default workspace exists. SQLite runs in WAL mode with a busy timeout.
    pub async fn connect(url: &str) -> R<Store> {
        connect::connect(url).await
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Cheap round trip for `/readyz`.
    pub async fn ping(&self) -> R<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes the pool after in-flight queries finish.
    pub async fn close(&self) {
        self.pool.close().await
    }

    /// Starts a write transaction: on SQLite after taking the writer slot and with
    /// `BEGIN IMMEDIATE`, so the write lock is taken up front rather than on the first write
    /// (a deferred upgrade can fail with `SQLITE_BUSY` without waiting).
    async fn begin_write(&self) -> R<WriteTx> {
        match self.backend {
            Backend::Sqlite => {
                let slot = self.write_lock.clone().lock_owned().await;
                let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
                Ok(WriteTx {
                    tx,
                    _slot: Some(slot),
                })
            }
            Backend::Postgres => Ok(WriteTx {
                tx: self.pool.begin().await?,
                _slot: None,
            }),
        }
    }

    /// Runs `delete_sql` (`$1` = `before` in ms, `$2` = [`DELETE_CHUNK`]) in short
    /// transactions until a run deletes fewer than a chunk; returns the rows deleted.
    async fn delete_in_chunks(&self, delete_sql: &str, before: Timestamp) -> R<u64> {
        let before = rows::ms(before);
        let mut total = 0;
        loop {
            let mut tx = self.begin_write().await?;
            let done = sqlx::query(delete_sql)
                .bind(before)
                .bind(DELETE_CHUNK as i64)
                .execute(tx.conn())
                .await?;
            tx.commit().await?;
            total += done.rows_affected();
            if done.rows_affected() < DELETE_CHUNK as u64 {
                return Ok(total);
            }
        }
    }
}

/// `$first, $first+1, …` for `n` bind parameters.
fn placeholders(first: usize, n: usize) -> String {
    let mut s = String::with_capacity(n * 6);
    for i in 0..n {
        if i > 0 {
            s.push_str(", ");
        }
        s.push('$');
        s.push_str(&(first + i).to_string());
    }
    s
}

/// The parameter list of a statement whose only parameters are these `n`, in order.
///
/// SQLite gets anonymous `?` placeholders: it resolves each named `$N` with a linear search of
/// the statement's names, which makes a 15 000-parameter insert take hundreds of milliseconds
/// instead of a few. (sqlx numbers `?` by position only, so never mix them with `$N`.)
fn params(backend: Backend, n: usize) -> String {
    match backend {
        Backend::Postgres => placeholders(1, n),
        Backend::Sqlite => {
            let mut s = String::with_capacity(n * 3);
            for i in 0..n {
                s.push_str(if i == 0 { "?" } else { ", ?" });
            }
            s
        }
    }
}

/// `(…), (…), …`: `rows` groups of `width` parameters for a multi-row `VALUES` whose only
/// parameters these are (see [`params`]).
fn value_rows(backend: Backend, rows: usize, width: usize) -> String {
    let mut s = String::with_capacity(rows * width * 6);
    for r in 0..rows {
        if r > 0 {
            s.push_str(", ");
        }
        s.push('(');
        match backend {
            Backend::Postgres => s.push_str(&placeholders(1 + r * width, width)),
            Backend::Sqlite => s.push_str(&params(Backend::Sqlite, width)),
        }
        s.push(')');
    }
    s
}

/// Maps a unique-constraint violation to [`StoreError::Conflict`] with `what` as message.
fn conflict(e: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what()),
        _ => StoreError::Database(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholder_lists() {
        assert_eq!(placeholders(3, 3), "$3, $4, $5");
        assert_eq!(placeholders(1, 0), "");
        assert_eq!(value_rows(Backend::Postgres, 2, 2), "($1, $2), ($3, $4)");
        assert_eq!(value_rows(Backend::Sqlite, 2, 2), "(?, ?), (?, ?)");
        assert_eq!(params(Backend::Sqlite, 3), "?, ?, ?");
        assert_eq!(params(Backend::Postgres, 2), "$1, $2");
    }
}
