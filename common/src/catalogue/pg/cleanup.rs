//! Garbage collection: versions no longer needed, then package rows and pool files nothing
//! references. Safe by construction: rows go first, in one transaction, and the foreign keys
//! (content -> packages -> blobs) make any sync that raced with it fail its commit rather than
//! publish a missing file; files of blobs created within the grace window, or since the start of
//! a sync that is still running, are never touched.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{db_err, PgStore};
use crate::catalogue::model::*;
use crate::error::Result;

/// Arbitrary constant for the advisory lock that keeps two cleanups apart.
const CLEANUP_LOCK: i64 = 0x6368_616e_7461_6c01;

const NEEDED_VERSIONS: &str = "
    CREATE TEMP TABLE keep_versions ON COMMIT DROP AS
        SELECT r.id AS repository_id, r.latest_version AS number
          FROM repositories r WHERE r.latest_version IS NOT NULL
        UNION
        SELECT s.repository_id, s.version FROM snapshots s;
    CREATE INDEX ON keep_versions (repository_id, number);
    ANALYZE keep_versions;";

impl PgStore {
    /// Removes versions that are neither latest nor a snapshot, the rows only they needed,
    /// package rows and blob rows nothing references. Returns the pool paths to delete.
    pub fn cleanup(&self, grace: Duration, dry_run: bool) -> Result<CleanupReport> {
        let mut conn = self.conn()?;
        let ctx = "cleaning up the catalogue";
        let mut tx = conn.transaction().map_err(db_err(ctx))?;
        let got: bool = tx
            .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&CLEANUP_LOCK])
            .map_err(db_err(ctx))?
            .get(0);
        if !got {
            return Err(crate::Error::Missing(
                "another `chantal db cleanup` is running".into(),
            ));
        }
        let cutoff = self.protection_cutoff(grace)?;
        tx.batch_execute(NEEDED_VERSIONS).map_err(db_err(ctx))?;
        let versions = tx
            .execute(
                "DELETE FROM repository_versions v
                  WHERE NOT EXISTS (SELECT 1 FROM keep_versions k
                                     WHERE k.repository_id = v.repository_id
                                       AND k.number = v.number)",
                &[],
            )
            .map_err(db_err(ctx))?;
        let unneeded = "NOT EXISTS (SELECT 1 FROM keep_versions k
                                     WHERE k.repository_id = t.repository_id
                                       AND k.number >= t.added_in
                                       AND (t.removed_in IS NULL OR k.number < t.removed_in))";
        let content_rows = tx
            .execute(
                &format!("DELETE FROM repository_content t WHERE {unneeded}"),
                &[],
            )
            .map_err(db_err(ctx))?;
        let metadata_rows = tx
            .execute(
                &format!("DELETE FROM repository_metadata t WHERE {unneeded}"),
                &[],
            )
            .map_err(db_err(ctx))?;
        let packages = tx
            .execute(
                "DELETE FROM packages p
                  WHERE NOT EXISTS (SELECT 1 FROM repository_content c WHERE c.package_id = p.id)
                    AND EXISTS (SELECT 1 FROM blobs b WHERE b.sha256 = p.sha256
                                                        AND b.created_at < $1)",
                &[&cutoff],
            )
            .map_err(db_err(ctx))?;
        let protected: i64 = tx
            .query_one(
                "SELECT count(*) FROM blobs b
                  WHERE b.created_at >= $1
                    AND NOT EXISTS (SELECT 1 FROM packages p WHERE p.sha256 = b.sha256)
                    AND NOT EXISTS (SELECT 1 FROM repository_metadata m WHERE m.blob_sha256 = b.sha256)",
                &[&cutoff],
            )
            .map_err(db_err(ctx))?
            .get(0);
        let rows = tx
            .query(
                "DELETE FROM blobs b
                  WHERE b.created_at < $1
                    AND NOT EXISTS (SELECT 1 FROM packages p WHERE p.sha256 = b.sha256)
                    AND NOT EXISTS (SELECT 1 FROM repository_metadata m WHERE m.blob_sha256 = b.sha256)
                 RETURNING b.path, b.size",
                &[&cutoff],
            )
            .map_err(db_err(ctx))?;
        let report = CleanupReport {
            versions: i64::try_from(versions).unwrap_or(i64::MAX),
            content_rows: i64::try_from(content_rows).unwrap_or(i64::MAX),
            metadata_rows: i64::try_from(metadata_rows).unwrap_or(i64::MAX),
            packages: i64::try_from(packages).unwrap_or(i64::MAX),
            blobs: i64::try_from(rows.len()).unwrap_or(i64::MAX),
            bytes: rows.iter().map(|r| r.get::<_, i64>(1)).sum(),
            paths: rows.iter().map(|r| r.get(0)).collect(),
            protected,
        };
        if dry_run {
            tx.rollback().map_err(db_err(ctx))?;
        } else {
            tx.commit().map_err(db_err(ctx))?;
        }
        Ok(report)
    }

    /// Blobs created after this are kept: the grace window, or the start of the oldest sync
    /// that is really still running (its lock is held), whichever is earlier.
    fn protection_cutoff(&self, grace: Duration) -> Result<DateTime<Utc>> {
        let grace = chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
        let mut cutoff = Utc::now() - grace;
        let mut conn = self.conn()?;
        let running = conn
            .query(
                "SELECT r.name, h.started_at FROM sync_history h
                   JOIN repositories r ON r.id = h.repository_id
                  WHERE h.status = 'running'",
                &[],
            )
            .map_err(db_err("looking for running syncs"))?;
        for row in running {
            let name: String = row.get(0);
            let started: DateTime<Utc> = row.get(1);
            // A row whose lock we can take is a leftover of a dead process.
            match self.try_lock_sync(&name)? {
                Ok(lock) => drop(lock),
                Err(_) => cutoff = cutoff.min(started),
            }
        }
        Ok(cutoff)
    }
}
