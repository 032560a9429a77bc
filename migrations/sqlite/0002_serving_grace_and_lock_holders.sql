-- chantal catalogue, schema version 2, SQLite dialect (see ../postgresql/ for the comments).
-- Times are INTEGER microseconds since the Unix epoch (UTC).

ALTER TABLE repository_versions ADD COLUMN retired_at INTEGER;
ALTER TABLE blobs ADD COLUMN used_at INTEGER;
ALTER TABLE repositories ADD COLUMN sync_host TEXT;
ALTER TABLE repositories ADD COLUMN sync_pid INTEGER;
ALTER TABLE repositories ADD COLUMN sync_since INTEGER;
