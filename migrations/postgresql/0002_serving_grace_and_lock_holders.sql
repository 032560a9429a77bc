-- chantal catalogue, schema version 2.

-- When a version stopped being latest: chantal-fs keeps serving it under latest/ for a grace
-- period (clients that read its repomd.xml finish their fetches), so cleanup must keep it that
-- long. NULL: still latest, or retired before this column existed (long ago).
ALTER TABLE repository_versions ADD COLUMN retired_at TIMESTAMPTZ;

-- When a sync last planned to reuse the blob (or recorded it again). Cleanup treats a blob as
-- new since the later of created_at and used_at, so a file a running sync counts on is never
-- collected under it.
ALTER TABLE blobs ADD COLUMN used_at TIMESTAMPTZ;

-- Who holds the repository's sync lock, written in the same serialised step that takes the
-- lock, so a sync refused the lock can always name the holder. Stale once the lock is free.
ALTER TABLE repositories ADD COLUMN sync_host TEXT;
ALTER TABLE repositories ADD COLUMN sync_pid INTEGER;
ALTER TABLE repositories ADD COLUMN sync_since TIMESTAMPTZ;
