-- chantal catalogue, schema version 3, SQLite dialect (see ../postgresql/ for the comments).

CREATE TABLE blob_signatures (
    blob_sha256 TEXT PRIMARY KEY REFERENCES blobs (sha256) ON DELETE CASCADE,
    key_ids     TEXT NOT NULL
) STRICT;

CREATE TABLE blob_verifications (
    blob_sha256 TEXT NOT NULL REFERENCES blobs (sha256) ON DELETE CASCADE,
    fingerprint TEXT NOT NULL CHECK (length(fingerprint) IN (40, 64)
                                     AND fingerprint NOT GLOB '*[^0-9A-F]*'),
    verified_at INTEGER NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)),
    PRIMARY KEY (blob_sha256, fingerprint)
) STRICT;
