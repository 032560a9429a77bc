-- chantal catalogue, schema version 1.
-- A repository's content is never copied: rows carry the range of versions they belong to.
-- Version N of a repository holds the rows with added_in <= N < coalesce(removed_in, infinity).

-- Every file in the pool (packages and repodata), by content.
CREATE TABLE blobs (
    sha256      TEXT PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size        BIGINT NOT NULL CHECK (size >= 0),
    path        TEXT NOT NULL,               -- relative to <storage.base_path>/data
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX blobs_created_at ON blobs (created_at);

-- Other checksums of a blob (sha1, sha512 ...) as upstreams declare them, so a package listed
-- under any algorithm is recognised without downloading it again.
CREATE TABLE blob_checksums (
    checksum_type   TEXT NOT NULL,
    checksum        TEXT NOT NULL,
    sha256          TEXT NOT NULL REFERENCES blobs (sha256) ON DELETE CASCADE,
    PRIMARY KEY (checksum_type, checksum)
);
CREATE INDEX blob_checksums_sha256 ON blob_checksums (sha256);

CREATE TABLE repositories (
    id              BIGSERIAL PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9._-]+$'),
    type            TEXT NOT NULL,
    latest_version  BIGINT,                  -- NULL until the first successful sync
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE sync_history (
    id               BIGSERIAL PRIMARY KEY,
    repository_id    BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    started_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at      TIMESTAMPTZ,
    status           TEXT NOT NULL CHECK (status IN
                        ('running', 'success', 'up-to-date', 'partial', 'failed', 'interrupted')),
    host             TEXT NOT NULL,
    pid              INTEGER NOT NULL,
    version          BIGINT,                 -- the version this sync committed, if any
    added            BIGINT NOT NULL DEFAULT 0,
    removed          BIGINT NOT NULL DEFAULT 0,
    unchanged        BIGINT NOT NULL DEFAULT 0,
    bytes_downloaded BIGINT NOT NULL DEFAULT 0,
    error            TEXT,
    repomd_sha256    TEXT,                   -- sha256 of the upstream repomd.xml this sync read
    settings         TEXT                    -- the filter/retention settings it applied
);
CREATE INDEX sync_history_repository ON sync_history (repository_id, started_at DESC);

CREATE TABLE repository_versions (
    repository_id   BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    number          BIGINT NOT NULL CHECK (number >= 1),
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    sync_id         BIGINT REFERENCES sync_history (id) ON DELETE SET NULL,
    package_count   BIGINT NOT NULL DEFAULT 0,
    total_size      BIGINT NOT NULL DEFAULT 0,
    repomd_revision TEXT,
    PRIMARY KEY (repository_id, number)
);

-- One row per distinct RPM file, shared by every repository that contains it.
CREATE TABLE packages (
    id              BIGSERIAL PRIMARY KEY,
    sha256          TEXT NOT NULL UNIQUE REFERENCES blobs (sha256),
    name            TEXT NOT NULL,
    epoch           BIGINT NOT NULL DEFAULT 0,
    version         TEXT NOT NULL,
    release         TEXT NOT NULL,
    arch            TEXT NOT NULL,
    checksum_type   TEXT NOT NULL,           -- upstream's pkgid checksum (sha1, sha256, sha512)
    checksum        TEXT NOT NULL,
    size_package    BIGINT NOT NULL,
    size_installed  BIGINT,
    size_archive    BIGINT,
    time_file       BIGINT,
    time_build      BIGINT,
    sourcerpm       TEXT,
    primary_xml     TEXT NOT NULL,           -- the package's <package> element in primary.xml
    filelists_xml   TEXT,                    -- ... in filelists.xml
    other_xml       TEXT                     -- ... in other.xml
);
CREATE INDEX packages_checksum ON packages (checksum_type, checksum);
CREATE INDEX packages_name_arch ON packages (name, arch);

CREATE TABLE repository_content (
    repository_id   BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    package_id      BIGINT NOT NULL REFERENCES packages (id),
    location_href   TEXT NOT NULL,
    added_in        BIGINT NOT NULL,
    removed_in      BIGINT,
    CHECK (removed_in IS NULL OR removed_in > added_in)
);
CREATE INDEX repository_content_added ON repository_content (repository_id, added_in);
CREATE INDEX repository_content_current ON repository_content (repository_id) WHERE removed_in IS NULL;
CREATE INDEX repository_content_removed ON repository_content (repository_id, removed_in)
    WHERE removed_in IS NOT NULL;
CREATE INDEX repository_content_package ON repository_content (package_id);

-- Repodata files (repomd.xml included) of each version: upstream's verbatim or generated.
CREATE TABLE repository_metadata (
    repository_id   BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    type            TEXT NOT NULL,           -- 'repomd' for repomd.xml itself
    blob_sha256     TEXT NOT NULL REFERENCES blobs (sha256),
    location_href   TEXT NOT NULL,
    added_in        BIGINT NOT NULL,
    removed_in      BIGINT,
    CHECK (removed_in IS NULL OR removed_in > added_in)
);
CREATE INDEX repository_metadata_added ON repository_metadata (repository_id, added_in);
CREATE INDEX repository_metadata_blob ON repository_metadata (blob_sha256);

-- A snapshot is a name for a version: creating one copies nothing.
CREATE TABLE snapshots (
    id              BIGSERIAL PRIMARY KEY,
    repository_id   BIGINT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    name            TEXT NOT NULL CHECK (name ~ '^[A-Za-z0-9._-]+$'),
    version         BIGINT NOT NULL,
    description     TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (repository_id, name),
    FOREIGN KEY (repository_id, version)
        REFERENCES repository_versions (repository_id, number)
);
CREATE INDEX snapshots_name ON snapshots (name);
