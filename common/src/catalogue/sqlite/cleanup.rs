//! Garbage collection, as in the PostgreSQL backend (see its module for why it is safe beside
//! running syncs): versions, rows and package rows in one transaction, then pool files in
//! batches, each file removed before its row inside the row's transaction. SQLite has one
//! writer at a time, so every write transaction here already excludes the syncs' reservations
//! and records; blobs of the grace window or of a running sync are kept all the same.

use chrono::{DateTime, Utc};
use rusqlite::TransactionBehavior;

use super::{db_err, micros, query_all, time, SqliteStore};
use crate::catalogue::model::{CleanupReport, CleanupRun};
use crate::error::Result;

/// Pool files removed per transaction (each holds the write lock while its files go).
const BATCH: i64 = 512;

/// Blobs nothing references that were neither stored nor reused since `?1`.
const COLLECTABLE: &str = "b.created_at < ?1 AND (b.used_at IS NULL OR b.used_at < ?1)
     AND NOT EXISTS (SELECT 1 FROM packages p WHERE p.sha256 = b.sha256)
     AND NOT EXISTS (SELECT 1 FROM repository_metadata m WHERE m.blob_sha256 = b.sha256)";

const NEEDED_VERSIONS: &str = "
    DROP TABLE IF EXISTS temp.keep_versions;
    CREATE TEMP TABLE keep_versions (repository_id INTEGER, number INTEGER);";

impl SqliteStore {
    pub fn cleanup(&self, run: CleanupRun<'_>) -> Result<CleanupReport> {
        let ctx = "cleaning up the catalogue";
        let Some(_cleanup_lock) = self.try_flock("cleanup")? else {
            return Err(crate::Error::Missing(
                "another `chantal db cleanup` is running".into(),
            ));
        };
        let cutoff = micros(self.protection_cutoff(run.grace)?);
        let serving_cutoff = micros(
            Utc::now()
                - chrono::Duration::from_std(crate::SERVING_GRACE).unwrap_or(chrono::Duration::MAX),
        );
        let mut report = CleanupReport::default();
        let mut conn = self.conn()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_err(ctx))?;
        tx.execute_batch(NEEDED_VERSIONS).map_err(db_err(ctx))?;
        tx.execute(
            "INSERT INTO keep_versions
                 SELECT r.id, r.latest_version FROM repositories r
                  WHERE r.latest_version IS NOT NULL
                 UNION
                 SELECT s.repository_id, s.version FROM snapshots s
                 UNION
                 SELECT v.repository_id, v.number FROM repository_versions v
                  WHERE v.retired_at >= ?1",
            [serving_cutoff],
        )
        .map_err(db_err(ctx))?;
        tx.execute_batch(
            "CREATE INDEX temp.keep_versions_key ON keep_versions (repository_id, number);",
        )
        .map_err(db_err(ctx))?;
        report.serving = tx
            .query_row(
                "SELECT count(*) FROM repository_versions v
                  WHERE v.retired_at >= ?1
                    AND NOT EXISTS (SELECT 1 FROM repositories r
                                     WHERE r.id = v.repository_id AND r.latest_version = v.number)
                    AND NOT EXISTS (SELECT 1 FROM snapshots s
                                     WHERE s.repository_id = v.repository_id
                                       AND s.version = v.number)",
                [serving_cutoff],
                |r| r.get(0),
            )
            .map_err(db_err(ctx))?;
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
        // A package row goes with its blob's protection: one a running sync reserved stays.
        let packages = tx
            .execute(
                "DELETE FROM packages
                  WHERE NOT EXISTS (SELECT 1 FROM repository_content c
                                     WHERE c.package_id = packages.id)
                    AND EXISTS (SELECT 1 FROM blobs b WHERE b.sha256 = packages.sha256
                                   AND b.created_at < ?1
                                   AND (b.used_at IS NULL OR b.used_at < ?1))",
                [cutoff],
            )
            .map_err(db_err(ctx))?;
        report.protected = tx
            .query_row(
                "SELECT count(*) FROM blobs b
                  WHERE (b.created_at >= ?1 OR b.used_at >= ?1)
                    AND NOT EXISTS (SELECT 1 FROM packages p WHERE p.sha256 = b.sha256)
                    AND NOT EXISTS (SELECT 1 FROM repository_metadata m
                                     WHERE m.blob_sha256 = b.sha256)",
                [cutoff],
                |r| r.get(0),
            )
            .map_err(db_err(ctx))?;
        tx.execute_batch("DROP TABLE temp.keep_versions")
            .map_err(db_err(ctx))?;
        report.versions = i64::try_from(versions).unwrap_or(i64::MAX);
        report.content_rows = i64::try_from(content_rows).unwrap_or(i64::MAX);
        report.metadata_rows = i64::try_from(metadata_rows).unwrap_or(i64::MAX);
        report.packages = i64::try_from(packages).unwrap_or(i64::MAX);
        if run.dry_run {
            let (blobs, bytes) = tx
                .query_row(
                    &format!(
                        "SELECT count(*), coalesce(sum(b.size), 0) FROM blobs b WHERE {COLLECTABLE}"
                    ),
                    [cutoff],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(db_err(ctx))?;
            report.blobs = blobs;
            report.bytes = bytes;
            tx.rollback().map_err(db_err(ctx))?;
            return Ok(report);
        }
        tx.commit().map_err(db_err(ctx))?;

        // Files, a batch at a time: each file goes before its row, in the row's transaction.
        let mut failed: Vec<String> = Vec::new();
        loop {
            if (run.stop)() {
                report.interrupted = true;
                break;
            }
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_err(ctx))?;
            // Files that would not go are left out by sha256 (few: a permission problem).
            let skip = failed
                .iter()
                .map(|s| format!("'{s}'"))
                .collect::<Vec<_>>()
                .join(",");
            let rows: Vec<(String, String, i64)> = query_all(
                &tx,
                &format!(
                    "SELECT b.sha256, b.path, b.size FROM blobs b
                      WHERE {COLLECTABLE} AND b.sha256 NOT IN ({skip})
                      ORDER BY b.sha256 LIMIT {BATCH}"
                ),
                [cutoff],
                ctx,
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            if rows.is_empty() {
                break;
            }
            let mut removed = 0i64;
            {
                let mut delete = tx
                    .prepare("DELETE FROM blobs WHERE sha256 = ?1")
                    .map_err(db_err(ctx))?;
                for (sha, path, size) in rows {
                    match (run.remove)(&path) {
                        Ok(()) => {
                            delete.execute([&sha]).map_err(db_err(ctx))?;
                            report.bytes += size;
                            removed += 1;
                        }
                        Err(e) => {
                            report.failed.push((path, e.to_string()));
                            failed.push(sha);
                        }
                    }
                }
            }
            tx.commit().map_err(db_err(ctx))?;
            report.blobs += removed;
        }
        Ok(report)
    }

    /// Blobs stored or reused after this are kept: the grace window, or the start of the
    /// oldest sync that is really still running (its lock is held), whichever is earlier.
    fn protection_cutoff(&self, grace: std::time::Duration) -> Result<DateTime<Utc>> {
        let grace = chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
        let mut cutoff = Utc::now() - grace;
        let running: Vec<(String, i64)> = {
            let conn = self.conn()?;
            query_all(
                &conn,
                "SELECT r.name, h.started_at FROM sync_history h
                       JOIN repositories r ON r.id = h.repository_id
                      WHERE h.status = 'running'",
                [],
                "looking for running syncs",
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?
        };
        for (name, started) in running {
            // A row whose lock nobody holds is a leftover of a dead process.
            if self.sync_lock_held(&name)? {
                cutoff = cutoff.min(time(started));
            }
        }
        Ok(cutoff)
    }
}
