-- Public status pages (SQLite flavour; keep in step with migrations/postgres/0003_status_pages.sql).
-- Times are epoch milliseconds, booleans 0/1.

-- A status page. The slug is unique across workspaces: `/status/{slug}` names no workspace.
CREATE TABLE status_pages (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id  INTEGER NOT NULL REFERENCES workspaces (id),
    slug          TEXT    NOT NULL UNIQUE, -- [a-z0-9-]{1,64}
    title         TEXT    NOT NULL,
    description   TEXT    NOT NULL,
    logo_url      TEXT,
    brand_color   TEXT,                    -- '#rrggbb'
    public        INTEGER NOT NULL,        -- 0: the public routes answer 404
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE INDEX status_pages_workspace ON status_pages (workspace_id, id);

-- Monitors curated onto a page under a public name; only these are visible publicly.
CREATE TABLE status_page_components (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    page_id      INTEGER NOT NULL REFERENCES status_pages (id) ON DELETE CASCADE,
    monitor_id   INTEGER NOT NULL REFERENCES monitors (id) ON DELETE CASCADE,
    public_name  TEXT    NOT NULL,
    group_name   TEXT    NOT NULL, -- '' = no group
    sort_order   INTEGER NOT NULL,
    UNIQUE (page_id, monitor_id)
);

CREATE INDEX status_page_components_page ON status_page_components (page_id, sort_order);
CREATE INDEX status_page_components_monitor ON status_page_components (monitor_id);

-- Human-written updates of an incident (investigating / identified / monitoring / resolved /
-- update). Only `public = 1` rows reach status pages.
CREATE TABLE incident_updates (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id  INTEGER NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    at           INTEGER NOT NULL,
    status       TEXT    NOT NULL,
    message      TEXT    NOT NULL,
    public       INTEGER NOT NULL,
    author       TEXT    NOT NULL -- 'key:<api key name>'
);

CREATE INDEX incident_updates_incident ON incident_updates (incident_id, at);
