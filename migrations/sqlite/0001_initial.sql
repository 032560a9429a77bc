-- chantal catalogue, schema version 1, SQLite dialect (see ../postgresql/ for the reference).
-- Same tables, columns, keys and indexes. Differences: timestamps are INTEGER microseconds since
-- the Unix epoch (UTC); ids are INTEGER PRIMARY KEY AUTOINCREMENT (never reused, like a
-- sequence); the name/sha256 checks use GLOB instead of regular expressions; tables are STRICT.
-- Version N of a repository holds the rows with added_in <= N < coalesce(removed_in, infinity).

CREATE TABLE blobs (
    sha256      TEXT PRIMARY KEY CHECK (length(sha256) = 64 AND sha256 NOT GLOB '*[^0-9a-f]*'),
    size        INTEGER NOT NULL CHECK (size >= 0),
    path        TEXT NOT NULL,
    created_at  INTEGER NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER))
) STRICT;
CREATE INDEX blobs_created_at ON blobs (created_at);

CREATE TABLE blob_checksums (
    checksum_type   TEXT NOT NULL,
    checksum        TEXT NOT NULL,
    sha256          TEXT NOT NULL REFERENCES blobs (sha256) ON DELETE CASCADE,
    PRIMARY KEY (checksum_type, checksum)
) STRICT;
CREATE INDEX blob_checksums_sha256 ON blob_checksums (sha256);

CREATE TABLE repositories (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT NOT NULL UNIQUE
                        CHECK (length(name) > 0 AND name NOT GLOB '*[^A-Za-z0-9._-]*'),
    type            TEXT NOT NULL,
    latest_version  INTEGER,
    created_at      INTEGER NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER))
) STRICT;

CREATE TABLE sync_history (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    repository_id    INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    started_at       INTEGER NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)),
    finished_at      INTEGER,
    status           TEXT NOT NULL CHECK (status IN
                        ('running', 'success', 'up-to-date', 'partial', 'failed', 'interrupted')),
    host             TEXT NOT NULL,
    pid              INTEGER NOT NULL,
    version          INTEGER,
    added            INTEGER NOT NULL DEFAULT 0,
    removed          INTEGER NOT NULL DEFAULT 0,
    unchanged        INTEGER NOT NULL DEFAULT 0,
    bytes_downloaded INTEGER NOT NULL DEFAULT 0,
    error            TEXT,
    repomd_sha256    TEXT,
    settings         TEXT
) STRICT;
CREATE INDEX sync_history_repository ON sync_history (repository_id, started_at DESC);

CREATE TABLE repository_versions (
    repository_id   INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    number          INTEGER NOT NULL CHECK (number >= 1),
    created_at      INTEGER NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)),
    sync_id         INTEGER REFERENCES sync_history (id) ON DELETE SET NULL,
    package_count   INTEGER NOT NULL DEFAULT 0,
    total_size      INTEGER NOT NULL DEFAULT 0,
    repomd_revision TEXT,
    PRIMARY KEY (repository_id, number)
) STRICT;

CREATE TABLE packages (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    sha256          TEXT NOT NULL UNIQUE REFERENCES blobs (sha256),
    name            TEXT NOT NULL,
    epoch           INTEGER NOT NULL DEFAULT 0,
    version         TEXT NOT NULL,
    release         TEXT NOT NULL,
    arch            TEXT NOT NULL,
    checksum_type   TEXT NOT NULL,
    checksum        TEXT NOT NULL,
    size_package    INTEGER NOT NULL,
    size_installed  INTEGER,
    size_archive    INTEGER,
    time_file       INTEGER,
    time_build      INTEGER,
    sourcerpm       TEXT,
    primary_xml     TEXT NOT NULL,
    filelists_xml   TEXT,
    other_xml       TEXT
) STRICT;
CREATE INDEX packages_checksum ON packages (checksum_type, checksum);
CREATE INDEX packages_name_arch ON packages (name, arch);

CREATE TABLE repository_content (
    repository_id   INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    package_id      INTEGER NOT NULL REFERENCES packages (id),
    location_href   TEXT NOT NULL,
    added_in        INTEGER NOT NULL,
    removed_in      INTEGER,
    CHECK (removed_in IS NULL OR removed_in > added_in)
) STRICT;
CREATE INDEX repository_content_added ON repository_content (repository_id, added_in);
CREATE INDEX repository_content_current ON repository_content (repository_id) WHERE removed_in IS NULL;
CREATE INDEX repository_content_removed ON repository_content (repository_id, removed_in)
    WHERE removed_in IS NOT NULL;
CREATE INDEX repository_content_package ON repository_content (package_id);

CREATE TABLE repository_metadata (
    repository_id   INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    type            TEXT NOT NULL,
    blob_sha256     TEXT NOT NULL REFERENCES blobs (sha256),
    location_href   TEXT NOT NULL,
    added_in        INTEGER NOT NULL,
    removed_in      INTEGER,
    CHECK (removed_in IS NULL OR removed_in > added_in)
) STRICT;
CREATE INDEX repository_metadata_added ON repository_metadata (repository_id, added_in);
CREATE INDEX repository_metadata_blob ON repository_metadata (blob_sha256);

CREATE TABLE snapshots (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    repository_id   INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    name            TEXT NOT NULL CHECK (length(name) > 0 AND name NOT GLOB '*[^A-Za-z0-9._-]*'),
    version         INTEGER NOT NULL,
    description     TEXT,
    created_at      INTEGER NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)),
    UNIQUE (repository_id, name),
    FOREIGN KEY (repository_id, version)
        REFERENCES repository_versions (repository_id, number)
) STRICT;
CREATE INDEX snapshots_name ON snapshots (name);
