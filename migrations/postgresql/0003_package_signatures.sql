-- chantal catalogue, schema version 3.

-- The issuer key ids of the OpenPGP signatures a package file carries (space-separated, in
-- header order), read when a sync checks the file (rpm.gpgcheck): for `snapshot show`.
CREATE TABLE blob_signatures (
    blob_sha256 TEXT PRIMARY KEY REFERENCES blobs (sha256) ON DELETE CASCADE,
    key_ids     TEXT NOT NULL
);

-- A package file whose signature by this trusted primary key (full fingerprint) verified,
-- payload digest included. Trust is per repository but a verification is a fact about the
-- file and the key: a later sync of any repository that trusts the key need not read the
-- file again.
CREATE TABLE blob_verifications (
    blob_sha256 TEXT NOT NULL REFERENCES blobs (sha256) ON DELETE CASCADE,
    fingerprint TEXT NOT NULL CHECK (fingerprint ~ '^[0-9A-F]{40}([0-9A-F]{24})?$'),
    verified_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (blob_sha256, fingerprint)
);
