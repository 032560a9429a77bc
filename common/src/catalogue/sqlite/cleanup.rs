//! Garbage collection, as in the PostgreSQL backend: rows first, in one transaction, then the
//! caller deletes the files. SQLite has one writer at a time, so a sync cannot commit in the
//! middle of it; blobs of the grace window or of a running sync are kept all the same.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::TransactionBehavior;

use super::{db_err, micros, query_all, time, SqliteStore};
use crate::catalogue::model::CleanupReport;
use crate::error::Result;

const NEEDED_VERSIONS: &str = "
    DROP TABLE IF EXISTS temp.keep_versions;
    CREATE TEMP TABLE keep_versions AS
        SELECT r.id AS repository_id, r.latest_version AS number
          FROM repositories r WHERE r.latest_version IS NOT NULL
        UNION
        SELECT s.repository_id, s.version FROM snapshots s;
    CREATE INDEX temp.keep_versions_key ON keep_versions (repository_id, number);";

impl SqliteStore {
    pub fn cleanup(&self, grace: Duration, dry_run: bool) -> Result<CleanupReport> {
        let ctx = "cleaning up the catalogue";
        let Some(_cleanup_lock) = self.try_flock("cleanup")? else {
            return Err(crate::Error::Missing(
                "another `chantal db cleanup` is running".into(),
            ));
        };
        let cutoff = micros(self.protection_cutoff(grace)?);
        let mut conn = self.conn()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_err(ctx))?;
        tx.execute_batch(NEEDED_VERSIONS).map_err(db_err(ctx))?;
        let versions = tx
            .execute(
                "DELETE FROM repository_versions
                  WHERE NOT EXISTS (SELECT 1 FROM keep_versions k
                                     WHERE k.repository_id = repository_versions.repository_id
                                       AND k.number = repository_versions.number)",
                [],
            )
            .map_err(db_err(ctx))?;
        let unneeded = |t: &str| {
            format!(
                "NOT EXISTS (SELECT 1 FROM keep_versions k
                              WHERE k.repository_id = {t}.repository_id
                                AND k.number >= {t}.added_in
                                AND ({t}.removed_in IS NULL OR k.number < {t}.removed_in))"
            )
        };
        let content_rows = tx
            .execute(
                &format!(
                    "DELETE FROM repository_content WHERE {}",
                    unneeded("repository_content")
                ),
                [],
            )
            .map_err(db_err(ctx))?;
        let metadata_rows = tx
            .execute(
                &format!(
                    "DELETE FROM repository_metadata WHERE {}",
                    unneeded("repository_metadata")
                ),
                [],
            )
            .map_err(db_err(ctx))?;
        let packages = tx
            .execute(
                "DELETE FROM packages
                  WHERE NOT EXISTS (SELECT 1 FROM repository_content c
                                     WHERE c.package_id = packages.id)
                    AND EXISTS (SELECT 1 FROM blobs b WHERE b.sha256 = packages.sha256
                                                        AND b.created_at < ?1)",
                [cutoff],
            )
            .map_err(db_err(ctx))?;
        let protected: i64 = tx
            .query_row(
                "SELECT count(*) FROM blobs b
                  WHERE b.created_at >= ?1
                    AND NOT EXISTS (SELECT 1 FROM packages p WHERE p.sha256 = b.sha256)
                    AND NOT EXISTS (SELECT 1 FROM repository_metadata m
                                     WHERE m.blob_sha256 = b.sha256)",
                [cutoff],
                |r| r.get(0),
            )
            .map_err(db_err(ctx))?;
        let removed: Vec<(String, i64)> = {
            query_all(
                &tx,
                "DELETE FROM blobs
                      WHERE created_at < ?1
                        AND NOT EXISTS (SELECT 1 FROM packages p WHERE p.sha256 = blobs.sha256)
                        AND NOT EXISTS (SELECT 1 FROM repository_metadata m
                                         WHERE m.blob_sha256 = blobs.sha256)
                     RETURNING path, size",
                [cutoff],
                ctx,
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?
        };
        tx.execute_batch("DROP TABLE temp.keep_versions")
            .map_err(db_err(ctx))?;
        let report = CleanupReport {
            versions: i64::try_from(versions).unwrap_or(i64::MAX),
            content_rows: i64::try_from(content_rows).unwrap_or(i64::MAX),
            metadata_rows: i64::try_from(metadata_rows).unwrap_or(i64::MAX),
            packages: i64::try_from(packages).unwrap_or(i64::MAX),
            blobs: i64::try_from(removed.len()).unwrap_or(i64::MAX),
            bytes: removed.iter().map(|r| r.1).sum(),
            paths: removed.into_iter().map(|r| r.0).collect(),
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
        let running: Vec<(String, i64)> = {
            let conn = self.conn()?;
            let ctx = "looking for running syncs";
            query_all(
                &conn,
                "SELECT r.name, h.started_at FROM sync_history h
                       JOIN repositories r ON r.id = h.repository_id
                      WHERE h.status = 'running'",
                [],
                ctx,
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?
        };
        for (name, started) in running {
            // A row whose lock we can take is a leftover of a dead process.
            match self.try_lock_sync(&name)? {
                Ok(lock) => drop(lock),
                Err(_) => cutoff = cutoff.min(time(started)),
            }
        }
        Ok(cutoff)
    }
}
