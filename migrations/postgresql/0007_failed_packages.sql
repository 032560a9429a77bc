-- chantal catalogue, schema version 7.

-- Packages a sync could not download or verify (committed without them with --allow-partial,
-- or nothing committed): for `repo show`, `chantal status` and the metrics file.
ALTER TABLE sync_history ADD COLUMN failed BIGINT NOT NULL DEFAULT 0;
