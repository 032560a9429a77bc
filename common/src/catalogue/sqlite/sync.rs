//! What a sync needs from the catalogue: the per-repository lock, sync history, which upstream
//! packages the pool already holds, and the bulk writes of blob rows.

use std::collections::{HashMap, HashSet};

use rusqlite::{OptionalExtension, TransactionBehavior};

use super::{db_err, query_all, time, SqliteStore, NOW};
use crate::catalogue::model::{
    ContentItem, FragmentRow, KnownBlob, LatestState, NevraSize, RunningSync, SyncFinish,
};
use crate::catalogue::SyncLock;
use crate::error::Result;
use crate::pool::StoredBlob;
use crate::rpm::ChecksumType;

impl SqliteStore {
    pub fn ensure_repository(&self, name: &str, kind: &str) -> Result<i64> {
        let conn = self.conn()?;
        conn.query_row(
            "INSERT INTO repositories (name, type) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET type = excluded.type
             RETURNING id",
            (name, kind),
            |r| r.get(0),
        )
        .map_err(db_err(format!("registering repository {name}")))
    }

    pub fn try_lock_sync(
        &self,
        name: &str,
        host: &str,
        pid: i32,
    ) -> Result<std::result::Result<SyncLock, Option<RunningSync>>> {
        let ctx = || format!("locking repository {name}");
        // The write transaction serialises lock takers (and probes): the holder is recorded
        // before anyone else can find the lock taken.
        let mut conn = self.conn()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_err(ctx()))?;
        let result = match self.try_flock(&format!("sync-{name}"))? {
            Some(file) => {
                tx.execute(
                    &format!(
                        "UPDATE repositories SET sync_host = ?2, sync_pid = ?3, sync_since = {NOW}
                          WHERE name = ?1"
                    ),
                    (name, host, pid),
                )
                .map_err(db_err(format!("recording who syncs {name}")))?;
                Ok(SyncLock::file(file))
            }
            None => {
                let holder = tx
                    .query_row(
                        "SELECT sync_host, sync_pid, sync_since FROM repositories WHERE name = ?1",
                        [name],
                        |r| {
                            Ok((
                                r.get::<_, Option<String>>(0)?,
                                r.get::<_, Option<i32>>(1)?,
                                r.get::<_, Option<i64>>(2)?,
                            ))
                        },
                    )
                    .optional()
                    .map_err(db_err(format!("reading who syncs {name}")))?;
                Err(holder.and_then(|(host, pid, since)| {
                    Some(RunningSync {
                        host: host?,
                        pid: pid?,
                        started_at: time(since?),
                    })
                }))
            }
        };
        tx.commit().map_err(db_err(ctx()))?;
        Ok(result)
    }

    pub fn sync_lock_held(&self, name: &str) -> Result<bool> {
        let ctx = || format!("looking whether {name} is being synced");
        // Under the write lock, like lock takers: a sync starting meanwhile waits for this
        // probe instead of finding its lock taken.
        let mut conn = self.conn()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_err(ctx()))?;
        let held = self.try_flock(&format!("sync-{name}"))?.is_none();
        tx.commit().map_err(db_err(ctx()))?;
        Ok(held)
    }

    pub fn reserve_blobs(&self, sha256s: &[&str]) -> Result<HashMap<String, bool>> {
        let ctx = "reserving pool files for reuse";
        let mut conn = self.conn()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_err(ctx))?;
        let mut found = HashMap::new();
        {
            let mut touch = tx
                .prepare(&format!(
                    "UPDATE blobs SET used_at = {NOW} WHERE sha256 = ?1
                     RETURNING EXISTS (SELECT 1 FROM packages p WHERE p.sha256 = blobs.sha256)"
                ))
                .map_err(db_err(ctx))?;
            for sha in sha256s {
                if let Some(has_package) = touch
                    .query_row([sha], |r| r.get::<_, bool>(0))
                    .optional()
                    .map_err(db_err(ctx))?
                {
                    found.insert((*sha).to_string(), has_package);
                }
            }
        }
        tx.commit().map_err(db_err(ctx))?;
        Ok(found)
    }

    pub fn start_sync(&self, repository_id: i64, host: &str, pid: i32) -> Result<i64> {
        let mut conn = self.conn()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_err("recording the sync start"))?;
        tx.execute(
            &format!(
                "UPDATE sync_history SET status = 'interrupted', finished_at = {NOW},
                        error = 'the sync process ended without finishing (killed or crashed)'
                  WHERE repository_id = ?1 AND status = 'running'"
            ),
            [repository_id],
        )
        .map_err(db_err("closing stale sync records"))?;
        let id = tx
            .query_row(
                "INSERT INTO sync_history (repository_id, status, host, pid)
                 VALUES (?1, 'running', ?2, ?3) RETURNING id",
                (repository_id, host, pid),
                |r| r.get(0),
            )
            .map_err(db_err("recording the sync start"))?;
        tx.commit().map_err(db_err("recording the sync start"))?;
        Ok(id)
    }

    pub fn finish_sync(&self, sync_id: i64, f: &SyncFinish) -> Result<()> {
        let conn = self.conn()?;
        conn.execute(
            &format!(
                "UPDATE sync_history SET finished_at = {NOW}, status = ?2, version = ?3,
                        added = ?4, removed = ?5, unchanged = ?6, bytes_downloaded = ?7,
                        error = ?8, repomd_sha256 = ?9, settings = ?10
                  WHERE id = ?1"
            ),
            rusqlite::params![
                sync_id,
                f.status,
                f.version,
                f.added,
                f.removed,
                f.unchanged,
                f.bytes_downloaded,
                f.error,
                f.repomd_sha256,
                f.settings,
            ],
        )
        .map_err(db_err("recording the sync result"))?;
        Ok(())
    }

    pub fn latest_state(&self, repository_id: i64) -> Result<LatestState> {
        let conn = self.conn()?;
        conn.query_row(
            "WITH h AS (SELECT repomd_sha256, settings FROM sync_history
                         WHERE repository_id = ?1
                           AND status IN ('success', 'up-to-date', 'partial')
                         ORDER BY finished_at DESC, id DESC LIMIT 1)
             SELECT r.latest_version, h.repomd_sha256, h.settings
               FROM repositories r LEFT JOIN h ON true
              WHERE r.id = ?1",
            [repository_id],
            |r| {
                Ok(LatestState {
                    version: r.get(0)?,
                    repomd_sha256: r.get(1)?,
                    settings: r.get(2)?,
                })
            },
        )
        .map_err(db_err("reading the latest version"))
    }

    pub fn latest_checksums(&self, repository_id: i64) -> Result<HashSet<String>> {
        let conn = self.conn()?;
        let ctx = "reading the latest version's packages";
        let mut stmt = conn
            .prepare(
                "SELECT p.checksum, p.sha256 FROM repository_content c
                   JOIN packages p ON p.id = c.package_id
                  WHERE c.repository_id = ?1 AND c.removed_in IS NULL",
            )
            .map_err(db_err(ctx))?;
        let mut rows = stmt.query([repository_id]).map_err(db_err(ctx))?;
        let mut set = HashSet::new();
        while let Some(r) = rows.next().map_err(db_err(ctx))? {
            set.insert(r.get::<_, String>(0).map_err(db_err(ctx))?);
            set.insert(r.get::<_, String>(1).map_err(db_err(ctx))?);
        }
        Ok(set)
    }

    pub fn latest_blob_paths(&self, repository_id: i64) -> Result<Vec<(String, i64)>> {
        let conn = self.conn()?;
        let ctx = "listing the latest version's files";
        query_all(
            &conn,
            "SELECT b.path, b.size FROM repository_content c
                   JOIN packages p ON p.id = c.package_id
                   JOIN blobs b ON b.sha256 = p.sha256
                  WHERE c.repository_id = ?1 AND c.removed_in IS NULL
                 UNION ALL
                 SELECT b.path, b.size FROM repository_metadata m
                   JOIN blobs b ON b.sha256 = m.blob_sha256
                  WHERE m.repository_id = ?1 AND m.removed_in IS NULL",
            [repository_id],
            ctx,
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    pub fn resolve_known(
        &self,
        kind: ChecksumType,
        checksums: &[&str],
    ) -> Result<HashMap<String, KnownBlob>> {
        let ctx = "looking up packages the pool already holds";
        let mut conn = self.conn()?;
        // One read transaction: a consistent view, and no per-lookup locking.
        let tx = conn.transaction().map_err(db_err(ctx))?;
        let sql = if kind == ChecksumType::Sha256 {
            "SELECT b.sha256, b.size, b.path,
                    EXISTS (SELECT 1 FROM packages p WHERE p.sha256 = b.sha256)
               FROM blobs b WHERE b.sha256 = ?1"
        } else {
            "SELECT b.sha256, b.size, b.path,
                    EXISTS (SELECT 1 FROM packages p WHERE p.sha256 = b.sha256)
               FROM blob_checksums x JOIN blobs b ON b.sha256 = x.sha256
              WHERE x.checksum = ?1 AND x.checksum_type = ?2"
        };
        let mut found = HashMap::new();
        {
            let mut stmt = tx.prepare(sql).map_err(db_err(ctx))?;
            for &c in checksums {
                let known = |r: &rusqlite::Row<'_>| {
                    Ok(KnownBlob {
                        sha256: r.get(0)?,
                        size: r.get(1)?,
                        path: r.get(2)?,
                        has_package: r.get(3)?,
                    })
                };
                let hit = if kind == ChecksumType::Sha256 {
                    stmt.query_row([c], known)
                } else {
                    stmt.query_row((c, kind.as_str()), known)
                }
                .optional()
                .map_err(db_err(ctx))?;
                if let Some(known) = hit {
                    found.insert(c.to_string(), known);
                }
            }
        }
        tx.finish().map_err(db_err(ctx))?;
        Ok(found)
    }

    pub fn candidates_by_nevra(&self, wanted: &[NevraSize]) -> Result<Vec<(String, KnownBlob)>> {
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let ctx = "looking up pool files by name and version";
        let mut conn = self.conn()?;
        let tx = conn.transaction().map_err(db_err(ctx))?;
        let mut out = Vec::new();
        {
            let mut stmt = tx
                .prepare(
                    "SELECT p.name || '-' || p.epoch || ':' || p.version || '-' || p.release || '.'
                            || p.arch || '/' || p.size_package, b.sha256, b.size, b.path
                       FROM packages p JOIN blobs b ON b.sha256 = p.sha256
                      WHERE p.name = ?1 AND p.arch = ?5 AND p.epoch = ?2 AND p.version = ?3
                        AND p.release = ?4 AND p.size_package = ?6",
                )
                .map_err(db_err(ctx))?;
            for w in wanted {
                let rows = stmt
                    .query_map(
                        (&w.name, w.epoch, &w.version, &w.release, &w.arch, w.size),
                        |r| {
                            Ok((
                                r.get(0)?,
                                KnownBlob {
                                    sha256: r.get(1)?,
                                    size: r.get(2)?,
                                    path: r.get(3)?,
                                    has_package: true,
                                },
                            ))
                        },
                    )
                    .map_err(db_err(ctx))?;
                for row in rows {
                    out.push(row.map_err(db_err(ctx))?);
                }
            }
        }
        tx.finish().map_err(db_err(ctx))?;
        Ok(out)
    }

    pub fn latest_content(&self, repository_id: i64) -> Result<Vec<ContentItem>> {
        let conn = self.conn()?;
        let ctx = "reading the latest version's packages";
        query_all(
            &conn,
            "SELECT p.sha256, c.location_href, p.name, p.epoch, p.version, p.release, p.arch
                   FROM repository_content c JOIN packages p ON p.id = c.package_id
                  WHERE c.repository_id = ?1 AND c.removed_in IS NULL
                  ORDER BY c.location_href",
            [repository_id],
            ctx,
            |r| {
                Ok(ContentItem {
                    sha256: r.get(0)?,
                    location_href: r.get(1)?,
                    name: r.get(2)?,
                    epoch: r.get(3)?,
                    version: r.get(4)?,
                    release: r.get(5)?,
                    arch: r.get(6)?,
                })
            },
        )
    }

    pub fn for_each_fragment(
        &self,
        content: &[(String, String)],
        mut f: impl FnMut(FragmentRow) -> Result<()>,
    ) -> Result<()> {
        let ctx = "reading package fragments";
        // Ordered by href like the PostgreSQL query; each row is a primary-key lookup.
        let mut order: Vec<&(String, String)> = content.iter().collect();
        order.sort_by(|a, b| a.1.cmp(&b.1));
        let mut conn = self.conn()?;
        let tx = conn.transaction().map_err(db_err(ctx))?;
        {
            let mut stmt = tx
                .prepare(
                    "SELECT checksum, name, arch, epoch, version, release,
                            primary_xml, filelists_xml, other_xml
                       FROM packages WHERE sha256 = ?1",
                )
                .map_err(db_err(ctx))?;
            for (sha, href) in order {
                let row = stmt
                    .query_row([sha], |r| {
                        Ok(FragmentRow {
                            location_href: href.clone(),
                            pkgid: r.get(0)?,
                            name: r.get(1)?,
                            arch: r.get(2)?,
                            epoch: r.get(3)?,
                            version: r.get(4)?,
                            release: r.get(5)?,
                            primary_xml: r.get(6)?,
                            filelists_xml: r.get(7)?,
                            other_xml: r.get(8)?,
                        })
                    })
                    .optional()
                    .map_err(db_err(ctx))?;
                if let Some(row) = row {
                    f(row)?;
                }
            }
        }
        tx.finish().map_err(db_err(ctx))?;
        Ok(())
    }

    pub fn latest_metadata_path(&self, repository_id: i64, kind: &str) -> Result<Option<String>> {
        let conn = self.conn()?;
        conn.query_row(
            "SELECT b.path FROM repository_metadata m JOIN blobs b ON b.sha256 = m.blob_sha256
              WHERE m.repository_id = ?1 AND m.type = ?2 AND m.removed_in IS NULL
              LIMIT 1",
            (repository_id, kind),
            |r| r.get(0),
        )
        .optional()
        .map_err(db_err(format!("reading the latest {kind}")))
    }

    pub fn record_blobs(
        &self,
        blobs: &[(StoredBlob, Option<(ChecksumType, String)>)],
    ) -> Result<()> {
        if blobs.is_empty() {
            return Ok(());
        }
        let ctx = "recording blobs";
        let mut conn = self.conn()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_err(ctx))?;
        {
            let mut blob = tx
                .prepare(&format!(
                    "INSERT INTO blobs (sha256, size, path) VALUES (?1, ?2, ?3)
                     ON CONFLICT (sha256) DO UPDATE SET used_at = {NOW}"
                ))
                .map_err(db_err(ctx))?;
            let mut alt = tx
                .prepare(
                    "INSERT INTO blob_checksums (sha256, checksum_type, checksum)
                     VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                )
                .map_err(db_err(ctx))?;
            for (b, other) in blobs {
                let size = i64::try_from(b.size).unwrap_or(i64::MAX);
                blob.execute((&b.sha256, size, &b.rel_path))
                    .map_err(db_err(ctx))?;
                if let Some((kind, value)) =
                    other.as_ref().filter(|(k, _)| *k != ChecksumType::Sha256)
                {
                    alt.execute((&b.sha256, kind.as_str(), value))
                        .map_err(db_err("recording blob checksums"))?;
                }
            }
        }
        tx.commit().map_err(db_err(ctx))?;
        Ok(())
    }
}
