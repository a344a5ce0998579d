//! Databases for tests: a SQLite file in a temporary directory, or a fresh PostgreSQL database.
//!
//! PostgreSQL comes from `PHAROS_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`); every call creates its own database
//! `pharos_t_<random>` there. When the server is unreachable the PostgreSQL tests are skipped
//! with one line on stderr, except under `CI=true`, where that is a test failure.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::Connection;

/// Default server for the PostgreSQL tests.
const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The URL of a SQLite database file inside `dir`.
pub fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("pharos.db").display())
}

/// The URL of a fresh, empty PostgreSQL database, or `None` (after saying so once) when no
/// server is reachable outside CI. Panics when unreachable under `CI=true`.
pub async fn postgres_url() -> Option<String> {
    let base = std::env::var("PHAROS_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.into());
    let mut conn =
        match tokio::time::timeout(Duration::from_secs(10), sqlx::PgConnection::connect(&base))
            .await
        {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return unreachable(&base, &e.to_string()),
            Err(_) => return unreachable(&base, "timed out after 10 s"),
        };
    drop_stale(&mut conn).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let name = format!("pharos_t_{now}_{:08x}", rand::random::<u32>());
    sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap_or_else(|e| panic!("creating test database {name} on {base}: {e}"));
    let _ = conn.close().await;
    let mut url = url::Url::parse(&base).expect("PHAROS_TEST_DATABASE_URL is a URL");
    url.set_path(&format!("/{name}"));
    Some(url.to_string())
}

/// Best effort, once per test binary: drops test databases created more than six hours ago
/// (their names carry the creation time), so repeated runs do not pile them up.
async fn drop_stale(conn: &mut sqlx::PgConnection) {
    static DONE: AtomicBool = AtomicBool::new(false);
    if DONE.swap(true, Ordering::Relaxed) {
        return;
    }
    let Ok(names) = sqlx::query_scalar::<_, String>(
        "SELECT datname FROM pg_database WHERE datname LIKE 'pharos\\_t\\_%'",
    )
    .fetch_all(&mut *conn)
    .await
    else {
        return;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    for name in names {
        let created = name
            .strip_prefix("pharos_t_")
            .and_then(|rest| rest.split('_').next())
            .and_then(|secs| secs.parse::<u64>().ok());
        if created.is_some_and(|c| c + 6 * 3600 < now) {
            let sql = format!("DROP DATABASE IF EXISTS \"{name}\"");
            let _ = sqlx::Executor::execute(&mut *conn, sql.as_str()).await;
        }
    }
}

/// Fails under CI, otherwise prints one warning per test binary and skips.
fn unreachable(base: &str, why: &str) -> Option<String> {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("PostgreSQL at {base} is unreachable under CI=true: {why}");
    }
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::Relaxed) {
        // Straight to the stderr file descriptor: the test harness would swallow `eprintln!`
        // of a passing test.
        let line = format!(
            "!!! SKIPPING PostgreSQL tests: {base} is unreachable ({why}); set \
             PHAROS_TEST_DATABASE_URL or start PostgreSQL (CI=true makes this a failure) !!!\n"
        );
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
    None
}
