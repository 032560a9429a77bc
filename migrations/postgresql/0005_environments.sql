-- chantal catalogue, schema version 5.

-- One `env promote`: which environment moved, when, by whom, and from what (a snapshot name,
-- another environment, or a rollback). Every repository it moves is moved in its transaction.
CREATE TABLE promotions (
    id          BIGSERIAL PRIMARY KEY,
    environment TEXT NOT NULL,
    source      TEXT NOT NULL,
    set_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    set_by      TEXT NOT NULL
);
CREATE INDEX promotions_environment ON promotions (environment, id);

-- Where each environment points in each repository: a snapshot, which cannot be deleted
-- (nor its version collected) while an environment points at it.
CREATE TABLE environments (
    environment   TEXT NOT NULL,
    repository_id BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    snapshot_id   BIGINT NOT NULL REFERENCES snapshots (id),
    promotion_id  BIGINT NOT NULL REFERENCES promotions (id),
    PRIMARY KEY (environment, repository_id)
);
CREATE INDEX environments_snapshot ON environments (snapshot_id);

-- What each promotion did to each repository: the snapshot it set, and the one it replaced
-- (NULL: the environment did not point anywhere in that repository yet).
CREATE TABLE environment_history (
    promotion_id  BIGINT NOT NULL REFERENCES promotions (id) ON DELETE CASCADE,
    repository_id BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    snapshot_name TEXT NOT NULL,
    version       BIGINT NOT NULL,
    previous_name TEXT,
    PRIMARY KEY (promotion_id, repository_id)
);
