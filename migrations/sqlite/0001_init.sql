-- Pharos schema, SQLite flavour (keep in step with migrations/postgres/0001_init.sql).
-- Times are milliseconds since the Unix epoch, booleans 0/1, JSON documents TEXT.
-- Declared types stay within INTEGER / REAL / TEXT / BLOB so sqlx's Any driver decodes them.

CREATE TABLE workspaces (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

INSERT INTO workspaces (id, name, created_at)
VALUES (1, 'default', CAST(strftime('%s', 'now') AS INTEGER) * 1000);

-- Monitor definitions (config rows). Ids are never reused (AUTOINCREMENT), so results of a
-- deleted monitor can never attach to a new one.
CREATE TABLE monitors (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id   INTEGER NOT NULL REFERENCES workspaces (id),
    name           TEXT    NOT NULL,
    name_search    TEXT    NOT NULL, -- lowercased name, for case-insensitive text search
    kind           TEXT    NOT NULL, -- 'check' | 'push'
    plugin         TEXT,             -- 'name' or 'name@version'
    config         TEXT    NOT NULL, -- JSON
    interval_secs  INTEGER NOT NULL,
    timeout_ms     INTEGER NOT NULL,
    enabled        INTEGER NOT NULL, -- 0 | 1
    push           TEXT,             -- JSON PushSchedule
    push_token     TEXT UNIQUE,
    revision       INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);

CREATE INDEX monitors_workspace ON monitors (workspace_id, id);
CREATE INDEX monitors_plugin ON monitors (workspace_id, plugin);

CREATE TABLE monitor_tags (
    monitor_id  INTEGER NOT NULL REFERENCES monitors (id) ON DELETE CASCADE,
    tag         TEXT    NOT NULL,
    PRIMARY KEY (monitor_id, tag)
);

CREATE INDEX monitor_tags_tag ON monitor_tags (tag, monitor_id);

-- Live state, written with every result batch; kept apart so result writes never touch
-- config rows.
CREATE TABLE monitor_state (
    monitor_id       INTEGER PRIMARY KEY REFERENCES monitors (id) ON DELETE CASCADE,
    status           TEXT,
    since            INTEGER,
    last_checked_at  INTEGER,
    last_latency_ms  REAL,
    last_message     TEXT,
    last_ping_at     INTEGER
);

CREATE INDEX monitor_state_status ON monitor_state (status);

-- Raw results, append-only. No foreign key: batches for deleted monitors are filtered by the
-- writer, and a deleted monitor's results are removed in chunks afterwards.
CREATE TABLE results (
    id             INTEGER PRIMARY KEY,
    monitor_id     INTEGER NOT NULL,
    workspace_id   INTEGER NOT NULL,
    region         TEXT    NOT NULL,
    started_at     INTEGER NOT NULL,
    status         TEXT    NOT NULL,
    latency_ms     REAL    NOT NULL,
    message        TEXT    NOT NULL,
    dns_ms         REAL,
    connect_ms     REAL,
    tls_ms         REAL,
    first_byte_ms  REAL,
    total_ms       REAL,
    metrics        TEXT    NOT NULL, -- JSON object name -> number
    details        TEXT,             -- JSON
    error_cause    TEXT
);

CREATE INDEX results_monitor_time ON results (monitor_id, started_at);
CREATE INDEX results_time ON results (started_at);

-- Monitors deleted whose results and rollups are still being removed (in small chunks, so
-- a monitor with millions of results never holds the write lock for long).
CREATE TABLE monitor_tombstones (
    monitor_id  INTEGER PRIMARY KEY,
    deleted_at  INTEGER NOT NULL
);

-- One row per monitor, region and minute (minute = start of the minute, epoch ms).
-- Latency figures cover `up` and `degraded` results; `hist` is the latency histogram of the
-- minute as JSON `[[bucket, count], …]` (see host/src/store/histogram.rs).
CREATE TABLE rollups (
    monitor_id        INTEGER NOT NULL,
    region            TEXT    NOT NULL,
    minute            INTEGER NOT NULL,
    up                INTEGER NOT NULL,
    degraded          INTEGER NOT NULL,
    down              INTEGER NOT NULL,
    error             INTEGER NOT NULL,
    lat_count         INTEGER NOT NULL,
    lat_sum           REAL    NOT NULL,
    lat_min           REAL,
    lat_max           REAL,
    p50               REAL,
    p95               REAL,
    p99               REAL,
    dns_sum           REAL    NOT NULL,
    dns_count         INTEGER NOT NULL,
    connect_sum       REAL    NOT NULL,
    connect_count     INTEGER NOT NULL,
    tls_sum           REAL    NOT NULL,
    tls_count         INTEGER NOT NULL,
    first_byte_sum    REAL    NOT NULL,
    first_byte_count  INTEGER NOT NULL,
    hist              TEXT    NOT NULL,
    PRIMARY KEY (monitor_id, minute, region)
);

CREATE INDEX rollups_minute ON rollups (minute);

-- Small key/value facts (the rollup watermark).
CREATE TABLE meta (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);

CREATE TABLE plugins (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id   INTEGER NOT NULL REFERENCES workspaces (id),
    name           TEXT    NOT NULL,
    version        TEXT    NOT NULL,
    digest         TEXT    NOT NULL,
    kind           TEXT    NOT NULL,
    description    TEXT    NOT NULL,
    config_schema  TEXT    NOT NULL, -- JSON
    capabilities   TEXT    NOT NULL, -- JSON array
    grants         TEXT,             -- JSON Grants, NULL until granted
    enabled        INTEGER NOT NULL,
    size           INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    UNIQUE (workspace_id, name, version)
);

CREATE INDEX plugins_digest ON plugins (digest);

CREATE TABLE plugin_blobs (
    digest      TEXT    PRIMARY KEY,
    bytes       BLOB    NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id  INTEGER NOT NULL REFERENCES workspaces (id),
    name          TEXT    NOT NULL,
    prefix        TEXT    NOT NULL,
    secret_hash   TEXT    NOT NULL UNIQUE,
    scopes        TEXT    NOT NULL, -- JSON array
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER,
    revoked_at    INTEGER
);

CREATE TABLE idempotency (
    workspace_id  INTEGER NOT NULL REFERENCES workspaces (id),
    route         TEXT    NOT NULL,
    key           TEXT    NOT NULL,
    request_hash  TEXT    NOT NULL,
    status        INTEGER NOT NULL,
    body          TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, route, key)
);

CREATE INDEX idempotency_created ON idempotency (created_at);
