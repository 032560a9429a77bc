-- chantal catalogue, schema version 8.

-- Blobs the catalogue lists but the pool does not hold yet: packages of repositories with
-- `download.policy: on_demand`, whose size and sha256 come from primary.xml. `chantal fetchd`
-- fetches one when a client first reads it, and deletes its row here once the file has its
-- pool name; `repo sync --download-missing` does the same for all of them. Every other blob
-- row has its file.
CREATE TABLE absent_blobs (
    sha256      TEXT PRIMARY KEY REFERENCES blobs (sha256) ON DELETE CASCADE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
