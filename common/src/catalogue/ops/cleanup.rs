//! Garbage collection: versions no longer needed, then package rows and pool files nothing
//! references.
//!
//! Safe against the syncs running beside it, on any host: every statement that decides what
//! goes runs with the `blobs` table locked against writers, and a sync marks the blobs it
//! reuses ([`super::blobs::reserve_blobs`]) or records those it brings in, both of which
//! refresh `used_at`, under the writers' lock. So a blob is either marked before cleanup looks
//! (and kept) or gone before the sync looks (and fetched again). Files go before their rows,
//! inside the batch's transaction: a crash leaves rows whose files are gone, which the next
//! cleanup removes; never a file no row names.

use chrono::{DateTime, Utc};

use super::super::db::{self, BlobLock, Conflict, Db, Done, Kind, Mode, Store, Val};
use crate::catalogue::model::{CleanupReport, CleanupRun, SyncStatus};
use crate::error::Result;

/// Pool files removed per transaction (each holds the writers' lock while its files go).
const BATCH: i64 = 512;

/// Blobs nothing references that were neither stored nor reused since `$1`.
const COLLECTABLE: &str = "b.created_at < $1 AND (b.used_at IS NULL OR b.used_at < $1)
     AND NOT EXISTS (SELECT 1 FROM packages p WHERE p.sha256 = b.sha256)
     AND NOT EXISTS (SELECT 1 FROM repository_metadata m WHERE m.blob_sha256 = b.sha256)
     AND NOT EXISTS (SELECT 1 FROM cleanup_skipped k WHERE k.sha256 = b.sha256)";

/// `span` before `now`, saturating: a span reaching before the epoch (`--grace 99999999999d`,
/// a "forever" in `keep_versions_for`) means the epoch, before anything the catalogue holds,
/// which both databases can store.
pub(crate) fn span_before(now: DateTime<Utc>, span: std::time::Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(span)
        .ok()
        .and_then(|d| now.checked_sub_signed(d))
        .filter(|t| *t > DateTime::UNIX_EPOCH)
        .unwrap_or(DateTime::UNIX_EPOCH)
}

/// The database's clock.
fn database_now<S: Store>(s: &S) -> Result<DateTime<Utc>> {
    s.autocommit(|db| {
        let sql = format!("SELECT {}", db.dialect().now());
        db.one("reading the database's clock", &sql, &[], |r| r.time(0))
    })
}

pub fn cleanup<S: Store>(s: &S, run: CleanupRun<'_>) -> Result<CleanupReport> {
    let ctx = "cleaning up the catalogue";
    let Some(_lock) = s.take_cleanup_lock()? else {
        return Err(crate::Error::Busy(
            "another `chantal db cleanup` is running".into(),
        ));
    };
    // Every time the cleanup compares is one the database stamped (commits, retirements, blob
    // use): the cutoffs are taken from the database's clock too, so a host whose clock is off
    // (several hosts share one PostgreSQL) moves no protection window.
    let now = database_now(s)?;
    let cutoff = protection_cutoff(s, now, run.grace)?;
    let serving_cutoff = span_before(now, crate::SERVING_GRACE);
    let dry_run = run.dry_run;
    let mut report = s.transaction(ctx, Mode::Write, |db| {
        let report =
            versions_and_rows(db, ctx, now, cutoff, serving_cutoff, run.keep_versions_for)?;
        Ok(if dry_run {
            Done::Rollback(report)
        } else {
            Done::Commit(report)
        })
    })?;
    if dry_run {
        return Ok(report);
    }
    // The first transaction counted what the batches would remove; now count what they do.
    report.blobs = 0;
    report.bytes = 0;
    // Files, a batch at a time: each file goes before its row, in the row's transaction.
    let mut skipped: Vec<String> = Vec::new();
    let remove = run.remove;
    loop {
        if (run.stop)() {
            report.interrupted = true;
            break;
        }
        let batch = db::write(s, ctx, |db| {
            db.lock_blobs(ctx, BlobLock::Cleanup)?;
            skipped_table(db, ctx, &skipped)?;
            let rows = db.all(
                ctx,
                &format!(
                    "SELECT b.sha256, b.path, b.size FROM blobs b WHERE {COLLECTABLE}
                      ORDER BY b.sha256 LIMIT {BATCH}"
                ),
                &[cutoff.into()],
                |r| Ok((r.string(0)?, r.string(1)?, r.i64(2)?)),
            )?;
            let mut done = Batch {
                selected: rows.len(),
                ..Batch::default()
            };
            for (sha, path, size) in rows {
                match remove(&path) {
                    Ok(()) => {
                        db.execute(ctx, "DELETE FROM blobs WHERE sha256 = $1", &[(&sha).into()])?;
                        done.removed += 1;
                        done.bytes += size;
                    }
                    Err(e) => done.failed.push((sha, path, e.to_string())),
                }
            }
            Ok(done)
        })?;
        report.blobs += batch.removed;
        report.bytes += batch.bytes;
        for (sha, path, why) in batch.failed {
            skipped.push(sha);
            report.failed.push((path, why));
        }
        if batch.selected == 0 {
            break;
        }
    }
    Ok(report)
}

/// What one batch of file removals did.
#[derive(Default)]
struct Batch {
    selected: usize,
    removed: i64,
    bytes: i64,
    failed: Vec<(String, String, String)>,
}

/// The blobs whose files would not go (a permission problem): left out of later batches.
fn skipped_table(db: &mut dyn Db, ctx: &str, skipped: &[String]) -> Result<()> {
    db.temp_table(ctx, "cleanup_skipped", &[("sha256", Kind::Text)], None)?;
    db.bulk_insert(
        ctx,
        "cleanup_skipped",
        &[("sha256", Kind::Text)],
        Conflict::None,
        &mut |sink| {
            for sha in skipped {
                sink.row(&[Val::Str(sha)])?;
            }
            Ok(())
        },
    )?;
    Ok(())
}

/// Fills `keep_versions` with every version that stays: latest, snapshots', those retired
/// within the serving grace (`serving_cutoff`) and those within their repository's
/// `keep_versions_for` (`windows`, counted back from the database's `now`).
fn keep_versions(
    db: &mut dyn Db,
    ctx: &str,
    now: DateTime<Utc>,
    serving_cutoff: DateTime<Utc>,
    windows: &[(String, std::time::Duration)],
) -> Result<()> {
    // Each repository's keep_versions_for, as the time since which a retired version stays.
    db.temp_table(
        ctx,
        "keep_windows",
        &[("name", Kind::Text), ("since", Kind::Time)],
        None,
    )?;
    db.bulk_insert(
        ctx,
        "keep_windows",
        &[("name", Kind::Text), ("since", Kind::Time)],
        Conflict::None,
        &mut |sink| {
            for (name, span) in windows.iter().filter(|(_, d)| !d.is_zero()) {
                let since = span_before(now, *span);
                sink.row(&[Val::Str(name), Val::Time(since)])?;
            }
            Ok(())
        },
    )?;
    db.temp_table(
        ctx,
        "keep_versions",
        &[("repository_id", Kind::Int8), ("number", Kind::Int8)],
        Some("repository_id, number"),
    )?;
    db.execute(
        ctx,
        "INSERT INTO keep_versions
             SELECT r.id, r.latest_version FROM repositories r WHERE r.latest_version IS NOT NULL
             UNION
             SELECT s.repository_id, s.version FROM snapshots s
             UNION
             SELECT v.repository_id, v.number FROM repository_versions v WHERE v.retired_at >= $1
             UNION
             SELECT v.repository_id, v.number FROM repository_versions v
               JOIN repositories r ON r.id = v.repository_id
               JOIN keep_windows w ON w.name = r.name
              WHERE v.retired_at >= w.since",
        &[serving_cutoff.into()],
    )?;
    db.analyze(ctx, "keep_versions")?;
    Ok(())
}

/// The first transaction: versions that are neither latest, nor a snapshot, nor latest until
/// less than the serving grace period ago; the range rows only they needed; package rows
/// nothing references whose blob is old. With `blobs` locked against writers, so a package
/// a sync has just reserved stays.
fn versions_and_rows(
    db: &mut dyn Db,
    ctx: &str,
    now: DateTime<Utc>,
    cutoff: DateTime<Utc>,
    serving_cutoff: DateTime<Utc>,
    windows: &[(String, std::time::Duration)],
) -> Result<CleanupReport> {
    db.lock_blobs(ctx, BlobLock::Cleanup)?;
    keep_versions(db, ctx, now, serving_cutoff, windows)?;
    let mut report = CleanupReport {
        serving: db.one(
            ctx,
            "SELECT count(*) FROM repository_versions v
              WHERE v.retired_at >= $1
                AND NOT EXISTS (SELECT 1 FROM repositories r
                                 WHERE r.id = v.repository_id AND r.latest_version = v.number)
                AND NOT EXISTS (SELECT 1 FROM snapshots s
                                 WHERE s.repository_id = v.repository_id AND s.version = v.number)",
            &[serving_cutoff.into()],
            |r| r.i64(0),
        )?,
        windowed: db.one(
            ctx,
            "SELECT count(*) FROM repository_versions v
               JOIN repositories r ON r.id = v.repository_id
               JOIN keep_windows w ON w.name = r.name
              WHERE v.retired_at >= w.since AND v.retired_at < $1
                AND r.latest_version <> v.number
                AND NOT EXISTS (SELECT 1 FROM snapshots s
                                 WHERE s.repository_id = v.repository_id AND s.version = v.number)",
            &[serving_cutoff.into()],
            |r| r.i64(0),
        )?,
        ..CleanupReport::default()
    };
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    report.versions = count(db.execute(
        ctx,
        "DELETE FROM repository_versions
          WHERE NOT EXISTS (SELECT 1 FROM keep_versions k
                             WHERE k.repository_id = repository_versions.repository_id
                               AND k.number = repository_versions.number)",
        &[],
    )?);
    for (table, field) in [
        ("repository_content", &mut report.content_rows),
        ("repository_metadata", &mut report.metadata_rows),
    ] {
        *field = count(db.execute(
            ctx,
            &format!(
                "DELETE FROM {table}
                  WHERE NOT EXISTS (SELECT 1 FROM keep_versions k
                                     WHERE k.repository_id = {table}.repository_id
                                       AND k.number >= {table}.added_in
                                       AND ({table}.removed_in IS NULL
                                            OR k.number < {table}.removed_in))"
            ),
            &[],
        )?);
    }
    // A package row goes with its blob's protection: one a running sync reserved stays.
    report.packages = count(db.execute(
        ctx,
        "DELETE FROM packages
          WHERE NOT EXISTS (SELECT 1 FROM repository_content c WHERE c.package_id = packages.id)
            AND EXISTS (SELECT 1 FROM blobs b WHERE b.sha256 = packages.sha256
                           AND b.created_at < $1 AND (b.used_at IS NULL OR b.used_at < $1))",
        &[cutoff.into()],
    )?);
    report.protected = db.one(
        ctx,
        "SELECT count(*) FROM blobs b
          WHERE (b.created_at >= $1 OR b.used_at >= $1)
            AND NOT EXISTS (SELECT 1 FROM packages p WHERE p.sha256 = b.sha256)
            AND NOT EXISTS (SELECT 1 FROM repository_metadata m WHERE m.blob_sha256 = b.sha256)",
        &[cutoff.into()],
        |r| r.i64(0),
    )?;
    // What the batches would remove (reported by a dry run; a real run counts as it goes).
    skipped_table(db, ctx, &[])?;
    let (blobs, bytes) = db.one(
        ctx,
        &format!(
            "SELECT count(*), CAST(coalesce(sum(b.size), 0) AS BIGINT) FROM blobs b
              WHERE {COLLECTABLE}"
        ),
        &[cutoff.into()],
        |r| Ok((r.i64(0)?, r.i64(1)?)),
    )?;
    report.blobs = blobs;
    report.bytes = bytes;
    Ok(report)
}

/// Blobs stored or reused after this are kept: the grace window, or the start of the oldest
/// sync that is really still running (its lock is held), whichever is earlier.
fn protection_cutoff<S: Store>(
    s: &S,
    now: DateTime<Utc>,
    grace: std::time::Duration,
) -> Result<DateTime<Utc>> {
    let mut cutoff = span_before(now, grace);
    let running = s.autocommit(|db| {
        db.all(
            "looking for running syncs",
            &format!(
                "SELECT r.name, h.started_at FROM sync_history h
                   JOIN repositories r ON r.id = h.repository_id
                  WHERE h.status = '{}'",
                SyncStatus::Running
            ),
            &[],
            |r| Ok((r.string(0)?, r.time(1)?)),
        )
    })?;
    for (name, started) in running {
        // A row whose lock nobody holds is a leftover of a dead process.
        if super::sync::sync_lock_held(s, &name)? {
            cutoff = cutoff.min(started);
        }
    }
    Ok(cutoff)
}

#[cfg(test)]
mod tests {
    use super::span_before;
    use chrono::{DateTime, Utc};
    use std::time::Duration;

    #[test]
    fn spans_before_now_saturate_at_the_epoch() {
        let now = Utc::now();
        assert_eq!(span_before(now, Duration::ZERO), now);
        assert_eq!(
            span_before(now, Duration::from_secs(3600)),
            now - chrono::Duration::hours(1)
        );
        for huge in [
            Duration::from_secs(100_000_000 * 86_400),
            Duration::from_secs(99_999_999_999 * 86_400),
            Duration::MAX,
        ] {
            assert_eq!(span_before(now, huge), DateTime::<Utc>::UNIX_EPOCH);
        }
    }
}
