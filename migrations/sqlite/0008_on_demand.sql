-- chantal catalogue, schema version 8, SQLite dialect (see ../postgresql/ for the comments).

CREATE TABLE absent_blobs (
    sha256      TEXT PRIMARY KEY REFERENCES blobs (sha256) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER))
) STRICT;
