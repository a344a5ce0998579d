-- Incidents, alerting, channels and maintenance windows (SQLite flavour; keep in step with
-- migrations/postgres/0002_alerting.sql). Times are epoch milliseconds, booleans 0/1.

-- Alert policy of a monitor.
ALTER TABLE monitors ADD COLUMN failure_threshold INTEGER NOT NULL DEFAULT 2;
ALTER TABLE monitors ADD COLUMN recovery_threshold INTEGER NOT NULL DEFAULT 1;
ALTER TABLE monitors ADD COLUMN renotify_interval_secs INTEGER NOT NULL DEFAULT 0;
ALTER TABLE monitors ADD COLUMN notify_recovery INTEGER NOT NULL DEFAULT 1;
-- `degraded` results open (degraded-severity) incidents only when this is 1.
ALTER TABLE monitors ADD COLUMN alert_on_degraded INTEGER NOT NULL DEFAULT 0;
-- `error` results (the check could not run) count as failing unless this is 0.
ALTER TABLE monitors ADD COLUMN error_counts_as_failure INTEGER NOT NULL DEFAULT 1;

-- Results produced while a maintenance window covered the monitor: stored, shown, but left
-- out of uptime and never alerting.
ALTER TABLE results ADD COLUMN maintenance INTEGER NOT NULL DEFAULT 0;
-- Results of the minute that were in maintenance (not counted in up/degraded/down/error).
ALTER TABLE rollups ADD COLUMN maintenance INTEGER NOT NULL DEFAULT 0;

-- Alert channels: a notifier plugin plus its config (secret fields sealed).
CREATE TABLE channels (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id       INTEGER NOT NULL REFERENCES workspaces (id),
    name               TEXT    NOT NULL,
    plugin             TEXT    NOT NULL, -- 'name' or 'name@version' of a notifier plugin
    config             TEXT    NOT NULL, -- JSON
    enabled            INTEGER NOT NULL,
    is_default         INTEGER NOT NULL, -- 1: bound to every monitor of the workspace
    tags               TEXT    NOT NULL, -- JSON array: bound to monitors carrying any of them
    storm_limit        INTEGER NOT NULL, -- notifications per storm window; 0 = no cap
    storm_window_secs  INTEGER NOT NULL,
    revision           INTEGER NOT NULL,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    UNIQUE (workspace_id, name)
);

-- Channels a monitor names explicitly.
CREATE TABLE monitor_channels (
    monitor_id  INTEGER NOT NULL REFERENCES monitors (id) ON DELETE CASCADE,
    channel_id  INTEGER NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    PRIMARY KEY (monitor_id, channel_id)
);

CREATE INDEX monitor_channels_channel ON monitor_channels (channel_id);

-- Parents of a monitor: while one is down the monitor's incidents are not notified.
CREATE TABLE monitor_dependencies (
    monitor_id  INTEGER NOT NULL REFERENCES monitors (id) ON DELETE CASCADE,
    parent_id   INTEGER NOT NULL REFERENCES monitors (id) ON DELETE CASCADE,
    PRIMARY KEY (monitor_id, parent_id)
);

CREATE INDEX monitor_dependencies_parent ON monitor_dependencies (parent_id);

-- Maintenance windows: one-off (starts_at..ends_at) or recurring (cron + duration in a zone,
-- optionally bounded by starts_at/ends_at), over monitors and tags.
CREATE TABLE maintenance_windows (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id   INTEGER NOT NULL REFERENCES workspaces (id),
    name           TEXT    NOT NULL,
    description    TEXT    NOT NULL,
    starts_at      INTEGER,
    ends_at        INTEGER,
    cron           TEXT,
    duration_secs  INTEGER,
    timezone       TEXT    NOT NULL,
    monitor_ids    TEXT    NOT NULL, -- JSON array of monitor ids
    tags           TEXT    NOT NULL, -- JSON array of tags
    enabled        INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);

CREATE INDEX maintenance_windows_workspace ON maintenance_windows (workspace_id, id);

-- The incident engine's state per monitor; updated in the transaction that stores results.
CREATE TABLE alert_state (
    monitor_id      INTEGER PRIMARY KEY REFERENCES monitors (id) ON DELETE CASCADE,
    last_result_at  INTEGER NOT NULL, -- started_at of the newest evaluated result
    level           TEXT    NOT NULL, -- 'ok' | 'degraded' | 'down' of that result
    fail_streak     INTEGER NOT NULL,
    pass_streak     INTEGER NOT NULL,
    streak_started_at INTEGER,         -- start of the first result of the current streak (failing or passing)
    streak_down     INTEGER NOT NULL, -- the current failing streak contains a 'down' level
    incident_id     INTEGER,          -- the open incident, if any
    flapping        INTEGER NOT NULL,
    changes         TEXT    NOT NULL  -- JSON array of recent level-change times, for flapping
);

-- Incidents. Kept when their monitor is deleted (the name is copied), for history.
CREATE TABLE incidents (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id      INTEGER NOT NULL REFERENCES workspaces (id),
    monitor_id        INTEGER NOT NULL,
    monitor_name      TEXT    NOT NULL,
    severity          TEXT    NOT NULL, -- 'down' | 'degraded'
    status            TEXT    NOT NULL, -- 'open' | 'resolved'
    cause             TEXT    NOT NULL,
    opened_at         INTEGER NOT NULL,
    resolved_at       INTEGER,
    acknowledged_at   INTEGER,
    acknowledged_by   TEXT,
    suppressed        TEXT,             -- why it is not notified: 'parent' | 'flapping' | NULL
    suppressed_by     INTEGER,          -- the parent monitor that was down
    opened_notified   INTEGER NOT NULL, -- 1 once its opening was sent to channels
    last_notified_at  INTEGER,          -- for reminders
    updated_at        INTEGER NOT NULL
);

CREATE INDEX incidents_workspace ON incidents (workspace_id, status, opened_at);
CREATE INDEX incidents_monitor ON incidents (monitor_id, opened_at);

-- The incident timeline: state changes, acknowledgements, notes, suppressed notifications.
-- (Notification attempts are their own table and merged in when the timeline is read.)
CREATE TABLE incident_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id  INTEGER NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    at           INTEGER NOT NULL,
    kind         TEXT    NOT NULL,
    actor        TEXT    NOT NULL, -- 'system' or 'key:<api key name>'
    message      TEXT    NOT NULL,
    data         TEXT              -- JSON
);

CREATE INDEX incident_events_incident ON incident_events (incident_id, at);

-- The outbox: one row per event and channel, written in the transaction of the transition.
CREATE TABLE notifications (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id     INTEGER NOT NULL,
    channel_id       INTEGER NOT NULL,
    incident_id      INTEGER,
    monitor_id       INTEGER,
    event            TEXT    NOT NULL, -- opened | resolved | escalated | reminder | flapping | flapping_ended | digest
    idempotency_key  TEXT    NOT NULL UNIQUE,
    payload          TEXT    NOT NULL, -- the event as JSON (see host/src/notify/event.rs)
    status           TEXT    NOT NULL, -- pending | delivered | failed | dead | held | digested
    attempts         INTEGER NOT NULL,
    next_attempt_at  INTEGER NOT NULL,
    lease_until      INTEGER,          -- claimed by a dispatcher until then
    created_at       INTEGER NOT NULL,
    delivered_at     INTEGER,
    last_error       TEXT,
    external_id      TEXT,
    digest_id        INTEGER           -- the digest that carried this held notification
);

CREATE INDEX notifications_due ON notifications (status, next_attempt_at);
CREATE INDEX notifications_incident ON notifications (incident_id);
CREATE INDEX notifications_channel ON notifications (channel_id, created_at);

-- Every delivery attempt.
CREATE TABLE notification_attempts (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    notification_id  INTEGER NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    attempt          INTEGER NOT NULL,
    started_at       INTEGER NOT NULL,
    duration_ms      REAL    NOT NULL,
    outcome          TEXT    NOT NULL, -- delivered | transient | permanent
    message          TEXT    NOT NULL,
    external_id      TEXT
);

CREATE INDEX notification_attempts_notification ON notification_attempts (notification_id, attempt);
