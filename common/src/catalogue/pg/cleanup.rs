//! Garbage collection: versions no longer needed, then package rows and pool files nothing
//! references.
//!
//! Safe against the syncs running beside it, on any host: every statement that decides what
//! goes runs with the `blobs` table locked against writers (SHARE ROW EXCLUSIVE), and a sync
//! marks the blobs it reuses ([`PgStore::reserve_blobs`]) or records those it brings in, both
//! of which refresh `used_at`, under the matching ROW EXCLUSIVE lock. So a blob is either
//! marked before cleanup looks (and kept) or after a batch removed it (and the sync, seeing it
//! gone, fetches it again). Files go before their rows, inside the batch's transaction: a
//! crash leaves rows whose files are gone, which the next cleanup removes; never a file no row
//! names.

use chrono::{DateTime, Utc};

use super::{db_err, PgStore};
use crate::catalogue::model::*;
use crate::error::Result;

/// Arbitrary constant for the advisory lock that keeps two cleanups apart.
const CLEANUP_LOCK: i64 = 0x6368_616e_7461_6c01;

/// Pool files removed per transaction.
const BATCH: i64 = 512;

/// Blobs nothing references that were neither stored nor reused since `$1`.
const COLLECTABLE: &str = "b.created_at < $1 AND (b.used_at IS NULL OR b.used_at < $1)
     AND NOT EXISTS (SELECT 1 FROM packages p WHERE p.sha256 = b.sha256)
     AND NOT EXISTS (SELECT 1 FROM repository_metadata m WHERE m.blob_sha256 = b.sha256)";

impl PgStore {
    pub fn cleanup(&self, run: CleanupRun<'_>) -> Result<CleanupReport> {
        let ctx = "cleaning up the catalogue";
        // Held on a connection of its own for the whole run (several transactions).
        let mut lock = self.dedicated()?;
        let got: bool = lock
            .query_one("SELECT pg_try_advisory_lock($1)", &[&CLEANUP_LOCK])
            .map_err(db_err(ctx))?
            .get(0);
        if !got {
            return Err(crate::Error::Missing(
                "another `chantal db cleanup` is running".into(),
            ));
        }
        let cutoff = self.protection_cutoff(run.grace)?;
        let serving_cutoff = Utc::now()
            - chrono::Duration::from_std(crate::SERVING_GRACE).unwrap_or(chrono::Duration::MAX);
        let mut conn = self.conn()?;
        let mut report = CleanupReport::default();

        // Versions, their rows and package rows, in one transaction.
        let mut tx = conn.transaction().map_err(db_err(ctx))?;
        tx.batch_execute(
            "LOCK TABLE blobs IN SHARE ROW EXCLUSIVE MODE;
             CREATE TEMP TABLE keep_versions (repository_id int8, number int8) ON COMMIT DROP;",
        )
        .map_err(db_err(ctx))?;
        tx.execute(
            "INSERT INTO keep_versions
                 SELECT r.id, r.latest_version FROM repositories r
                  WHERE r.latest_version IS NOT NULL
                 UNION
                 SELECT s.repository_id, s.version FROM snapshots s
                 UNION
                 SELECT v.repository_id, v.number FROM repository_versions v
                  WHERE v.retired_at >= $1",
            &[&serving_cutoff],
        )
        .map_err(db_err(ctx))?;
        tx.batch_execute(
            "CREATE INDEX ON keep_versions (repository_id, number); ANALYZE keep_versions;",
        )
        .map_err(db_err(ctx))?;
        report.serving = tx
            .query_one(
                "SELECT count(*) FROM repository_versions v
                  WHERE v.retired_at >= $1
                    AND NOT EXISTS (SELECT 1 FROM repositories r
                                     WHERE r.id = v.repository_id AND r.latest_version = v.number)
                    AND NOT EXISTS (SELECT 1 FROM snapshots s
                                     WHERE s.repository_id = v.repository_id
                                       AND s.version = v.number)",
                &[&serving_cutoff],
            )
            .map_err(db_err(ctx))?
            .get(0);
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
        // A package row goes with its blob's protection: one a running sync reserved stays.
        let packages = tx
            .execute(
                "DELETE FROM packages p
                  WHERE NOT EXISTS (SELECT 1 FROM repository_content c WHERE c.package_id = p.id)
                    AND EXISTS (SELECT 1 FROM blobs b WHERE b.sha256 = p.sha256
                                   AND b.created_at < $1
                                   AND (b.used_at IS NULL OR b.used_at < $1))",
                &[&cutoff],
            )
            .map_err(db_err(ctx))?;
        report.protected = tx
            .query_one(
                "SELECT count(*) FROM blobs b
                  WHERE (b.created_at >= $1 OR b.used_at >= $1)
                    AND NOT EXISTS (SELECT 1 FROM packages p WHERE p.sha256 = b.sha256)
                    AND NOT EXISTS (SELECT 1 FROM repository_metadata m WHERE m.blob_sha256 = b.sha256)",
                &[&cutoff],
            )
            .map_err(db_err(ctx))?
            .get(0);
        report.versions = i64::try_from(versions).unwrap_or(i64::MAX);
        report.content_rows = i64::try_from(content_rows).unwrap_or(i64::MAX);
        report.metadata_rows = i64::try_from(metadata_rows).unwrap_or(i64::MAX);
        report.packages = i64::try_from(packages).unwrap_or(i64::MAX);
        if run.dry_run {
            let row = tx
                .query_one(
                    &format!(
                        "SELECT count(*), coalesce(sum(b.size), 0)::int8 FROM blobs b
                          WHERE {COLLECTABLE}"
                    ),
                    &[&cutoff],
                )
                .map_err(db_err(ctx))?;
            report.blobs = row.get(0);
            report.bytes = row.get(1);
            tx.rollback().map_err(db_err(ctx))?;
            return Ok(report);
        }
        tx.commit().map_err(db_err(ctx))?;

        // Files, a batch at a time: each file goes before its row, in the row's transaction.
        let mut failed_shas: Vec<String> = Vec::new();
        loop {
            if (run.stop)() {
                report.interrupted = true;
                break;
            }
            let mut tx = conn.transaction().map_err(db_err(ctx))?;
            tx.batch_execute("LOCK TABLE blobs IN SHARE ROW EXCLUSIVE MODE")
                .map_err(db_err(ctx))?;
            let rows = tx
                .query(
                    &format!(
                        "SELECT b.sha256, b.path, b.size FROM blobs b
                          WHERE {COLLECTABLE} AND NOT (b.sha256 = ANY($2))
                          ORDER BY b.sha256 LIMIT {BATCH}"
                    ),
                    &[&cutoff, &failed_shas],
                )
                .map_err(db_err(ctx))?;
            if rows.is_empty() {
                break;
            }
            let mut gone: Vec<String> = Vec::with_capacity(rows.len());
            for r in &rows {
                let (sha, path, size): (String, String, i64) = (r.get(0), r.get(1), r.get(2));
                match (run.remove)(&path) {
                    Ok(()) => {
                        report.bytes += size;
                        gone.push(sha);
                    }
                    Err(e) => {
                        report.failed.push((path, e.to_string()));
                        failed_shas.push(sha);
                    }
                }
            }
            tx.execute("DELETE FROM blobs WHERE sha256 = ANY($1)", &[&gone])
                .map_err(db_err(ctx))?;
            tx.commit().map_err(db_err(ctx))?;
            report.blobs += i64::try_from(gone.len()).unwrap_or(i64::MAX);
        }
        Ok(report)
    }

    /// Blobs stored or reused after this are kept: the grace window, or the start of the
    /// oldest sync that is really still running (its lock is held), whichever is earlier.
    fn protection_cutoff(&self, grace: std::time::Duration) -> Result<DateTime<Utc>> {
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
            // A row whose lock nobody holds is a leftover of a dead process.
            if self.sync_lock_held(&name)? {
                cutoff = cutoff.min(started);
            }
        }
        Ok(cutoff)
    }
}
