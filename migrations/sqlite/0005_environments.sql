-- chantal catalogue, schema version 5, SQLite dialect (see ../postgresql/ for the comments).

CREATE TABLE promotions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    environment TEXT NOT NULL,
    source      TEXT NOT NULL,
    set_at      INTEGER NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)),
    set_by      TEXT NOT NULL
) STRICT;
CREATE INDEX promotions_environment ON promotions (environment, id);

CREATE TABLE environments (
    environment   TEXT NOT NULL,
    repository_id INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    snapshot_id   INTEGER NOT NULL REFERENCES snapshots (id),
    promotion_id  INTEGER NOT NULL REFERENCES promotions (id),
    PRIMARY KEY (environment, repository_id)
) STRICT;
CREATE INDEX environments_snapshot ON environments (snapshot_id);

CREATE TABLE environment_history (
    promotion_id  INTEGER NOT NULL REFERENCES promotions (id) ON DELETE CASCADE,
    repository_id INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    snapshot_name TEXT NOT NULL,
    version       INTEGER NOT NULL,
    previous_name TEXT,
    PRIMARY KEY (promotion_id, repository_id)
) STRICT;
