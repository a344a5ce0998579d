//! Opening a store: URL handling, the connection pool, SQLite pragmas and migrations.

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sqlx::Executor;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::{Migration, MigrationType, Migrator};

use super::{Backend, R, Store, StoreError};

/// Connections of a SQLite pool (readers run in parallel in WAL mode; writers queue).
const SQLITE_CONNECTIONS: u32 = 8;
/// Connections of a PostgreSQL pool.
const POSTGRES_CONNECTIONS: u32 = 16;
/// How long to wait for a pooled connection before failing a query.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// Migrations of each backend, in order: (version, description, SQL). Add a line here with
/// every new file under `migrations/`; the checksum is the one `sqlx::migrate!` would compute.
const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "alerting",
        include_str!("../../../migrations/sqlite/0002_alerting.sql"),
    ),
    (
        3,
        "status_pages",
        include_str!("../../../migrations/sqlite/0003_status_pages.sql"),
    ),
];
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "alerting",
        include_str!("../../../migrations/postgres/0002_alerting.sql"),
    ),
    (
        3,
        "status_pages",
        include_str!("../../../migrations/postgres/0003_status_pages.sql"),
    ),
];

/// Opens the store behind `url`; see [`Store::connect`].
pub(super) async fn connect(url: &str) -> R<Store> {
    sqlx::any::install_default_drivers();
    let Target {
        backend,
        url,
        in_memory,
    } = normalise(url)?;
    let pool = match backend {
        Backend::Sqlite => {
            let mut options = AnyPoolOptions::new()
                .max_connections(SQLITE_CONNECTIONS)
                .acquire_timeout(ACQUIRE_TIMEOUT);
            if in_memory {
                // The database lives as long as its one connection: never recycle it.
                options = options
                    .max_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None);
            }
            let pool = options
                .after_connect(|conn, _meta| {
                    Box::pin(async move {
                        // foreign_keys=ON and a 5 s busy timeout are sqlx defaults; stated
                        // here so the requirement is visible.
                        conn.execute("PRAGMA busy_timeout = 5000").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                        Ok(())
                    })
                })
                .connect(&url)
                .await?;
            // WAL is a property of the database file: set it once, before other connections
            // exist (switching needs an exclusive lock that the busy handler cannot wait for).
            let mode: (String,) = sqlx::query_as("PRAGMA journal_mode = WAL")
                .fetch_one(&pool)
                .await?;
            if !in_memory && !mode.0.eq_ignore_ascii_case("wal") {
                tracing::warn!(mode = %mode.0, "SQLite did not switch to WAL journal mode");
            }
            pool
        }
        Backend::Postgres => {
            AnyPoolOptions::new()
                .max_connections(POSTGRES_CONNECTIONS)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect(&url)
                .await?
        }
    };
    migrator(backend).run(&pool).await?;
    sqlx::query(
        "INSERT INTO workspaces (id, name, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(crate::model::DEFAULT_WORKSPACE)
    .bind("default")
    .bind(super::rows::ms(super::rows::now()))
    .execute(&pool)
    .await?;
    Ok(Store {
        pool,
        backend,
        write_lock: Arc::new(tokio::sync::Mutex::new(())),
        sweeping: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        engine: super::engine::shared(),
    })
}

/// The embedded migrations of a backend.
fn migrator(backend: Backend) -> Migrator {
    let list = match backend {
        Backend::Sqlite => SQLITE_MIGRATIONS,
        Backend::Postgres => POSTGRES_MIGRATIONS,
    };
    let migrations = list
        .iter()
        .map(|(version, description, sql)| {
            Migration::new(
                *version,
                Cow::Borrowed(*description),
                MigrationType::Simple,
                Cow::Borrowed(*sql),
                false,
            )
        })
        .collect::<Vec<_>>();
    Migrator {
        migrations: Cow::Owned(migrations),
        // A database with migrations this binary does not know is newer: refuse it.
        ignore_missing: false,
        // PostgreSQL: an advisory lock, so nodes starting together migrate once.
        locking: true,
        no_tx: false,
    }
}

/// What to connect to.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    backend: Backend,
    url: String,
    /// An in-memory SQLite database: every connection would open its own, so the pool has one.
    in_memory: bool,
}

/// The backend of `url` and the URL to connect with. SQLite paths are made absolute, their
/// directory is created, and `mode=rwc` is added unless a mode is given.
fn normalise(url: &str) -> R<Target> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Target {
            backend: Backend::Postgres,
            url: url.to_string(),
            in_memory: false,
        });
    }
    let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return Err(StoreError::UnsupportedUrl(url.to_string()));
    };
    let (path, params) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    let in_memory =
        path == ":memory:" || params.is_some_and(|q| q.split('&').any(|kv| kv == "mode=memory"));
    if path.is_empty() && !in_memory {
        return Err(StoreError::UnsupportedUrl(url.to_string()));
    }
    let mut params: Vec<String> = params
        .map(|q| {
            q.split('&')
                .filter(|kv| !kv.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if in_memory {
        return Ok(Target {
            backend: Backend::Sqlite,
            url: url.to_string(),
            in_memory,
        });
    }
    let decoded = percent_decode(path);
    let file =
        std::path::absolute(Path::new(&decoded)).map_err(|source| StoreError::CreateDir {
            path: decoded.clone(),
            source,
        })?;
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
            path: dir.display().to_string(),
            source,
        })?;
    }
    if !params.iter().any(|kv| kv.starts_with("mode=")) {
        params.push("mode=rwc".to_string());
    }
    Ok(Target {
        backend: Backend::Sqlite,
        url: format!("sqlite://{}?{}", encode_path(&file), params.join("&")),
        in_memory: false,
    })
}

/// Percent-encodes the characters of a path that a URL would misread.
fn encode_path(path: &Path) -> String {
    let mut out = String::new();
    for c in path.to_string_lossy().chars() {
        match c {
            '%' | '?' | '#' | ' ' | '"' | '<' | '>' | '`' | '{' | '}' => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            c if c.is_control() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Decodes `%XX` escapes (invalid escapes are kept as they are).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_are_made_absolute_with_create_mode() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub dir/x.db");
        let t = normalise(&format!("sqlite://{}", file.display())).unwrap();
        assert_eq!(t.backend, Backend::Sqlite);
        assert!(!t.in_memory);
        let url = t.url;
        assert!(url.ends_with("sub%20dir/x.db?mode=rwc"), "{url}");
        assert!(dir.path().join("sub dir").is_dir());
        let url = normalise(&format!("sqlite:{}?mode=ro", file.display()))
            .unwrap()
            .url;
        assert!(url.ends_with("x.db?mode=ro"), "{url}");
    }

    #[test]
    fn other_urls() {
        let t = normalise("postgres://u@h/db").unwrap();
        assert_eq!(t.backend, Backend::Postgres);
        assert_eq!(t.url, "postgres://u@h/db");
        assert!(matches!(
            normalise("mysql://x"),
            Err(StoreError::UnsupportedUrl(_))
        ));
        assert!(matches!(
            normalise("sqlite://"),
            Err(StoreError::UnsupportedUrl(_))
        ));
        assert!(normalise("sqlite::memory:").unwrap().in_memory);
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b%2"), "a b%2");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
