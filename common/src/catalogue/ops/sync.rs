//! What a sync needs from the catalogue: the per-repository lock and its holder, the sync
//! history, and what the latest version holds.

use std::collections::HashSet;

use super::super::db::{self, Db, Kind, Store, Val};
use super::super::SyncLock;
use crate::catalogue::model::{
    ContentItem, FragmentRow, LatestState, RunningSync, SyncFinish, SyncStatus,
};
use crate::error::Result;
use crate::rpm::MetadataKind;

/// Takes the repository's sync lock and records `host` and `pid` as its holder, or reads who
/// holds it. Lock takers of one repository are serialised (its row locked, or SQLite's write
/// lock), so the holder read is always the one that holds the lock.
pub fn try_lock_sync<S: Store>(
    s: &S,
    name: &str,
    host: &str,
    pid: i32,
) -> Result<std::result::Result<SyncLock, Option<RunningSync>>> {
    let ctx = format!("locking repository {name}");
    db::write(s, &ctx, |db| {
        serialise_lock_takers(db, &ctx, name)?;
        match s.take_sync_lock(name)? {
            Some(lock) => {
                let now = db.dialect().now();
                db.execute(
                    &format!("recording who syncs {name}"),
                    &format!(
                        "UPDATE repositories SET sync_host = $2, sync_pid = $3, sync_since = {now}
                          WHERE name = $1"
                    ),
                    &[name.into(), host.into(), pid.into()],
                )?;
                Ok(Ok(lock))
            }
            None => {
                let holder = db.opt(
                    &format!("reading who syncs {name}"),
                    "SELECT sync_host, sync_pid, sync_since FROM repositories WHERE name = $1",
                    &[name.into()],
                    |r| {
                        Ok(match (r.opt_string(0)?, r.opt_i32(1)?, r.opt_time(2)?) {
                            (Some(host), Some(pid), Some(started_at)) => Some(RunningSync {
                                host,
                                pid,
                                started_at,
                            }),
                            _ => None,
                        })
                    },
                )?;
                Ok(Err(holder.flatten()))
            }
        }
    })
}

/// Whether a process holds the repository's sync lock, without taking it. Serialised with
/// lock takers, so a sync starting meanwhile is never turned away.
pub fn sync_lock_held<S: Store>(s: &S, name: &str) -> Result<bool> {
    let ctx = format!("looking whether {name} is being synced");
    db::write(s, &ctx, |db| {
        serialise_lock_takers(db, &ctx, name)?;
        s.sync_lock_taken(name)
    })
}

fn serialise_lock_takers(db: &mut dyn Db, ctx: &str, name: &str) -> Result<()> {
    let sql = format!(
        "SELECT id FROM repositories WHERE name = $1{}",
        db.dialect().for_update()
    );
    db.query(ctx, &sql, &[name.into()], &mut |_| Ok(()))
}

/// Records the start of a sync. Call with the lock held: any other `running` row of the
/// repository is then a leftover of a process that died, and is marked so.
pub fn start_sync<S: Store>(s: &S, repository_id: i64, host: &str, pid: i32) -> Result<i64> {
    let ctx = "recording the sync start";
    db::write(s, ctx, |db| {
        let now = db.dialect().now();
        db.execute(
            "closing stale sync records",
            &format!(
                "UPDATE sync_history SET status = '{}', finished_at = {now},
                        error = 'the sync process ended without finishing (killed or crashed)'
                  WHERE repository_id = $1 AND status = '{}'",
                SyncStatus::Interrupted,
                SyncStatus::Running
            ),
            &[repository_id.into()],
        )?;
        db.one(
            ctx,
            &format!(
                "INSERT INTO sync_history (repository_id, status, host, pid)
                 VALUES ($1, '{}', $2, $3) RETURNING id",
                SyncStatus::Running
            ),
            &[repository_id.into(), host.into(), pid.into()],
            |r| r.i64(0),
        )
    })
}

/// Records how a sync ended.
pub fn finish_sync<S: Store>(s: &S, sync_id: i64, f: &SyncFinish) -> Result<()> {
    s.autocommit(|db| {
        let now = db.dialect().now();
        db.execute(
            "recording the sync result",
            &format!(
                "UPDATE sync_history SET finished_at = {now}, status = $2, version = $3,
                        added = $4, removed = $5, unchanged = $6, bytes_downloaded = $7,
                        error = $8, repomd_sha256 = $9, settings = $10, excluded = $11,
                        failed = $12
                  WHERE id = $1"
            ),
            &[
                sync_id.into(),
                f.status.as_str().into(),
                f.version.into(),
                f.added.into(),
                f.removed.into(),
                f.unchanged.into(),
                f.bytes_downloaded.into(),
                (&f.error).into(),
                (&f.repomd_sha256).into(),
                (&f.settings).into(),
                f.excluded.into(),
                f.failed.into(),
            ],
        )?;
        Ok(())
    })
}

/// The latest version and the upstream state it came from: the most recent sync that ended
/// well. A partial sync records no repomd checksum, so the next run never takes it for a
/// complete one.
pub fn latest_state<S: Store>(s: &S, repository_id: i64) -> Result<LatestState> {
    s.autocommit(|db| {
        db.one(
            "reading the latest version",
            &format!(
                "WITH h AS (SELECT repomd_sha256, settings FROM sync_history
                             WHERE repository_id = $1 AND status IN ({})
                             ORDER BY finished_at DESC, id DESC LIMIT 1)
                 SELECT r.latest_version, h.repomd_sha256, h.settings
                   FROM repositories r LEFT JOIN h ON true
                  WHERE r.id = $1",
                SyncStatus::sql_list(&SyncStatus::ENDED_WELL)
            ),
            &[repository_id.into()],
            |r| {
                Ok(LatestState {
                    version: r.opt_i64(0)?,
                    repomd_sha256: r.opt_sha256(1)?,
                    settings: r.opt_string(2)?,
                })
            },
        )
    })
}

/// Checksums (upstream pkgid and sha256) of the packages in the latest version: these
/// already have package rows, so a sync need not keep their fragments.
pub fn latest_checksums<S: Store>(s: &S, repository_id: i64) -> Result<HashSet<String>> {
    s.autocommit(|db| {
        let mut set = HashSet::new();
        db.query(
            "reading the latest version's packages",
            "SELECT p.checksum, p.sha256 FROM repository_content c
               JOIN packages p ON p.id = c.package_id
              WHERE c.repository_id = $1 AND c.removed_in IS NULL",
            &[repository_id.into()],
            &mut |r| {
                set.insert(r.string(0)?);
                set.insert(r.string(1)?);
                Ok(())
            },
        )?;
        Ok(set)
    })
}

/// Pool paths of every blob the latest version references (packages and repodata).
pub fn latest_blob_paths<S: Store>(
    s: &S,
    repository_id: i64,
    with_absent: bool,
) -> Result<Vec<(String, i64)>> {
    let absent = if with_absent {
        ""
    } else {
        " AND NOT EXISTS (SELECT 1 FROM absent_blobs a WHERE a.sha256 = b.sha256)"
    };
    s.autocommit(|db| {
        db.all(
            "listing the latest version's files",
            &format!(
                "SELECT b.path, b.size FROM repository_content c
               JOIN packages p ON p.id = c.package_id
               JOIN blobs b ON b.sha256 = p.sha256
              WHERE c.repository_id = $1 AND c.removed_in IS NULL{absent}
             UNION ALL
             SELECT b.path, b.size FROM repository_metadata m
               JOIN blobs b ON b.sha256 = m.blob_sha256
              WHERE m.repository_id = $1 AND m.removed_in IS NULL"
            ),
            &[repository_id.into()],
            |r| Ok((r.string(0)?, r.i64(1)?)),
        )
    })
}

/// The latest version's packages with their identity, for retention.
pub fn latest_content<S: Store>(s: &S, repository_id: i64) -> Result<Vec<ContentItem>> {
    s.autocommit(|db| {
        let order = db.dialect().collate_bytes();
        db.all(
            "reading the latest version's packages",
            &format!(
                "SELECT p.sha256, c.location_href, p.name, p.epoch, p.version, p.release, p.arch
                   FROM repository_content c JOIN packages p ON p.id = c.package_id
                  WHERE c.repository_id = $1 AND c.removed_in IS NULL
                  ORDER BY c.location_href{order}"
            ),
            &[repository_id.into()],
            |r| {
                Ok(ContentItem {
                    sha256: r.sha256(0)?,
                    location_href: r.string(1)?,
                    nevra: super::nevra(r, 2)?,
                })
            },
        )
    })
}

/// Streams the stored fragments of `content` ((sha256, href) pairs), ordered by href (byte
/// order, on either backend), to `f`: rows arrive one at a time, so memory does not grow with
/// the repository.
pub fn for_each_fragment<S: Store>(
    s: &S,
    content: &[(crate::Sha256, String)],
    mut f: impl FnMut(FragmentRow) -> Result<()>,
) -> Result<()> {
    let ctx = "reading package fragments";
    db::read(s, ctx, |db| {
        db.temp_table(
            ctx,
            "wanted_fragments",
            &[("sha256", Kind::Text), ("href", Kind::Text)],
            None,
        )?;
        db.bulk_insert(
            ctx,
            "wanted_fragments",
            &[("sha256", Kind::Text), ("href", Kind::Text)],
            db::Conflict::None,
            &mut |sink| {
                for (sha, href) in content {
                    sink.row(&[sha.into(), Val::Str(href)])?;
                }
                Ok(())
            },
        )?;
        db.analyze(ctx, "wanted_fragments")?;
        let order = db.dialect().collate_bytes();
        db.query(
            ctx,
            &format!(
                "SELECT w.href, p.checksum, p.name, p.epoch, p.version, p.release, p.arch,
                        p.primary_xml, p.filelists_xml, p.other_xml
                   FROM wanted_fragments w JOIN packages p ON p.sha256 = w.sha256
                  ORDER BY w.href{order}"
            ),
            &[],
            &mut |r| {
                f(FragmentRow {
                    location_href: r.string(0)?,
                    pkgid: r.string(1)?,
                    nevra: super::nevra(r, 2)?,
                    primary_xml: r.string(7)?,
                    filelists_xml: r.opt_string(8)?,
                    other_xml: r.opt_string(9)?,
                })
            },
        )
    })
}

/// The pool path of the latest version's repodata file of `kind`, if any.
pub fn latest_metadata_path<S: Store>(
    s: &S,
    repository_id: i64,
    kind: &MetadataKind,
) -> Result<Option<String>> {
    s.autocommit(|db| {
        db.opt(
            &format!("reading the latest {kind}"),
            "SELECT b.path FROM repository_metadata m JOIN blobs b ON b.sha256 = m.blob_sha256
              WHERE m.repository_id = $1 AND m.type = $2 AND m.removed_in IS NULL
              LIMIT 1",
            &[repository_id.into(), kind.as_str().into()],
            |r| r.string(0),
        )
    })
}

/// The sha256 of each of the latest version's repodata files, by kind.
pub fn latest_metadata_blobs<S: Store>(
    s: &S,
    repository_id: i64,
) -> Result<std::collections::HashMap<MetadataKind, crate::Sha256>> {
    s.autocommit(|db| {
        let rows = db.all(
            "reading the latest repodata",
            "SELECT m.type, m.blob_sha256 FROM repository_metadata m
              WHERE m.repository_id = $1 AND m.removed_in IS NULL",
            &[repository_id.into()],
            |r| Ok((MetadataKind::parse(&r.string(0)?), r.sha256(1)?)),
        )?;
        Ok(rows.into_iter().collect())
    })
}
