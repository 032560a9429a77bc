-- chantal catalogue, schema version 4.

-- Packages upstream listed that the repository's content filters (`filters:`) dropped in
-- this sync, for `repo show`.
ALTER TABLE sync_history ADD COLUMN excluded BIGINT NOT NULL DEFAULT 0;
