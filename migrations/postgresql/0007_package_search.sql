-- chantal catalogue, schema version 7.

-- Packages a sync could not download or verify (committed without them with --allow-partial,
-- or nothing committed): for `repo show`, `chantal status` and the metrics file.
ALTER TABLE sync_history ADD COLUMN failed BIGINT NOT NULL DEFAULT 0;

-- `package search` by name glob ignores ASCII case: the range of names starting with the
-- glob's literal prefix, compared bytewise (as SQLite's default collation does), comes from
-- this index instead of a scan of every package row.
CREATE INDEX packages_lower_name ON packages ((lower(name) COLLATE "C"));
