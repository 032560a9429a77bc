-- chantal catalogue, schema version 6, SQLite dialect (see ../postgresql/ for the comments).
-- SQLite cannot drop a NOT NULL constraint: the table is rebuilt.

CREATE TABLE environment_history_v6 (
    promotion_id     INTEGER NOT NULL REFERENCES promotions (id) ON DELETE CASCADE,
    repository_id    INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    snapshot_name    TEXT,
    version          INTEGER,
    previous_name    TEXT,
    previous_version INTEGER,
    PRIMARY KEY (promotion_id, repository_id)
) STRICT;

INSERT INTO environment_history_v6
       (promotion_id, repository_id, snapshot_name, version, previous_name, previous_version)
SELECT h.promotion_id, h.repository_id, h.snapshot_name, h.version, h.previous_name,
       CASE WHEN h.previous_name IS NULL THEN NULL ELSE (
           SELECT h2.version FROM environment_history h2
             JOIN promotions p2 ON p2.id = h2.promotion_id
             JOIN promotions p ON p.id = h.promotion_id
            WHERE h2.repository_id = h.repository_id
              AND h2.promotion_id < h.promotion_id
              AND p2.environment = p.environment
            ORDER BY h2.promotion_id DESC
            LIMIT 1) END
  FROM environment_history h;

DROP TABLE environment_history;
ALTER TABLE environment_history_v6 RENAME TO environment_history;
