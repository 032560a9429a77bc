//! What a sync needs from the catalogue: the per-repository lock, sync history, which upstream
//! packages the pool already holds, and the one transaction that publishes a new version.

use std::collections::HashMap;

use super::{db_err, PgStore};
use crate::catalogue::model::*;
use crate::catalogue::{LatestListener, SyncLock};
use crate::error::Result;
use crate::pool::StoredBlob;
use crate::rpm::ChecksumType;

const LOCK_KEY: &str = "hashtextextended('chantal-sync/' || $1, 0)";

impl PgStore {
    /// The repository's id, creating its row on first use.
    pub fn ensure_repository(&self, name: &str, kind: &str) -> Result<i64> {
        let mut conn = self.conn()?;
        let row = conn
            .query_one(
                "INSERT INTO repositories (name, type) VALUES ($1, $2)
                 ON CONFLICT (name) DO UPDATE SET type = EXCLUDED.type
                 RETURNING id",
                &[&name, &kind],
            )
            .map_err(db_err(format!("registering repository {name}")))?;
        Ok(row.get(0))
    }

    /// Takes the repository's sync lock, recording `host` and `pid` as its holder in the same
    /// step, or says who holds it. Lock takers of one repository are serialised on its row, so
    /// the holder named is always the one that holds the lock.
    pub fn try_lock_sync(
        &self,
        name: &str,
        host: &str,
        pid: i32,
    ) -> Result<std::result::Result<SyncLock, Option<RunningSync>>> {
        let ctx = || format!("locking repository {name}");
        let mut client = self.dedicated()?;
        let holder = {
            let mut tx = client.transaction().map_err(db_err(ctx()))?;
            tx.query(
                "SELECT 1 FROM repositories WHERE name = $1 FOR UPDATE",
                &[&name],
            )
            .map_err(db_err(ctx()))?;
            let got: bool = tx
                .query_one(
                    &format!("SELECT pg_try_advisory_lock({LOCK_KEY})"),
                    &[&name],
                )
                .map_err(db_err(ctx()))?
                .get(0);
            let holder = if got {
                // The session lock outlives this transaction; a failure below drops the
                // connection, and the lock with it.
                tx.execute(
                    "UPDATE repositories SET sync_host = $2, sync_pid = $3, sync_since = now()
                      WHERE name = $1",
                    &[&name, &host, &pid],
                )
                .map_err(db_err(format!("recording who syncs {name}")))?;
                None
            } else {
                let row = tx
                    .query_opt(
                        "SELECT sync_host, sync_pid, sync_since FROM repositories
                          WHERE name = $1",
                        &[&name],
                    )
                    .map_err(db_err(format!("reading who syncs {name}")))?;
                Some(row.and_then(|r| {
                    Some(RunningSync {
                        host: r.get::<_, Option<String>>(0)?,
                        pid: r.get::<_, Option<i32>>(1)?,
                        started_at: r.get::<_, Option<chrono::DateTime<chrono::Utc>>>(2)?,
                    })
                }))
            };
            tx.commit().map_err(db_err(ctx()))?;
            holder
        };
        Ok(match holder {
            None => Ok(SyncLock::postgres(client)),
            Some(h) => Err(h),
        })
    }

    /// Whether some process holds the repository's sync lock, without taking it (a probe that
    /// took it, even for an instant, could turn a starting sync away).
    pub fn sync_lock_held(&self, name: &str) -> Result<bool> {
        let mut conn = self.conn()?;
        // A bigint advisory key shows in pg_locks as its two halves, objsubid 1.
        let row = conn
            .query_one(
                &format!(
                    "SELECT EXISTS (SELECT 1 FROM pg_locks l
                                     WHERE l.locktype = 'advisory' AND l.granted
                                       AND l.objsubid = 1
                                       AND l.database = (SELECT oid FROM pg_database
                                                          WHERE datname = current_database())
                                       AND ((l.classid::int8 << 32) | l.objid::int8)
                                           = {LOCK_KEY})"
                ),
                &[&name],
            )
            .map_err(db_err(format!("looking whether {name} is being synced")))?;
        Ok(row.get(0))
    }

    /// Records the start of a sync. Call with the lock held: any other `running` row of the
    /// repository is then a leftover of a process that died, and is marked so.
    pub fn start_sync(&self, repository_id: i64, host: &str, pid: i32) -> Result<i64> {
        let mut conn = self.conn()?;
        conn.execute(
            "UPDATE sync_history SET status = 'interrupted', finished_at = now(),
                    error = 'the sync process ended without finishing (killed or crashed)'
              WHERE repository_id = $1 AND status = 'running'",
            &[&repository_id],
        )
        .map_err(db_err("closing stale sync records"))?;
        let row = conn
            .query_one(
                "INSERT INTO sync_history (repository_id, status, host, pid)
                 VALUES ($1, 'running', $2, $3) RETURNING id",
                &[&repository_id, &host, &pid],
            )
            .map_err(db_err("recording the sync start"))?;
        Ok(row.get(0))
    }

    /// Records how a sync ended.
    pub fn finish_sync(&self, sync_id: i64, f: &SyncFinish) -> Result<()> {
        let mut conn = self.conn()?;
        conn.execute(
            "UPDATE sync_history SET finished_at = now(), status = $2, version = $3,
                    added = $4, removed = $5, unchanged = $6, bytes_downloaded = $7,
                    error = $8, repomd_sha256 = $9, settings = $10
              WHERE id = $1",
            &[
                &sync_id,
                &f.status,
                &f.version,
                &f.added,
                &f.removed,
                &f.unchanged,
                &f.bytes_downloaded,
                &f.error,
                &f.repomd_sha256,
                &f.settings,
            ],
        )
        .map_err(db_err("recording the sync result"))?;
        Ok(())
    }

    /// The latest version and the upstream state it came from: the most recent sync that
    /// ended well. A partial sync records no repomd checksum, so the next run never takes it
    /// for a complete one.
    pub fn latest_state(&self, repository_id: i64) -> Result<LatestState> {
        let mut conn = self.conn()?;
        let row = conn
            .query_one(
                "SELECT r.latest_version, h.repomd_sha256, h.settings
                   FROM repositories r
                   LEFT JOIN LATERAL (
                        SELECT repomd_sha256, settings FROM sync_history
                         WHERE repository_id = r.id
                           AND status IN ('success', 'up-to-date', 'partial')
                         ORDER BY finished_at DESC, id DESC LIMIT 1) h ON true
                  WHERE r.id = $1",
                &[&repository_id],
            )
            .map_err(db_err("reading the latest version"))?;
        Ok(LatestState {
            version: row.get(0),
            repomd_sha256: row.get(1),
            settings: row.get(2),
        })
    }

    /// Checksums (upstream pkgid and sha256) of the packages in the latest version: these
    /// already have package rows, so a sync need not keep their fragments.
    pub fn latest_checksums(
        &self,
        repository_id: i64,
    ) -> Result<std::collections::HashSet<String>> {
        let mut conn = self.conn()?;
        let rows = conn
            .query(
                "SELECT p.checksum, p.sha256 FROM repository_content c
                   JOIN packages p ON p.id = c.package_id
                  WHERE c.repository_id = $1 AND c.removed_in IS NULL",
                &[&repository_id],
            )
            .map_err(db_err("reading the latest version's packages"))?;
        let mut set = std::collections::HashSet::with_capacity(rows.len() * 2);
        for r in rows {
            set.insert(r.get::<_, String>(0));
            set.insert(r.get::<_, String>(1));
        }
        Ok(set)
    }

    /// Pool paths of every blob the latest version references (packages and repodata).
    pub fn latest_blob_paths(&self, repository_id: i64) -> Result<Vec<(String, i64)>> {
        let mut conn = self.conn()?;
        let rows = conn
            .query(
                "SELECT b.path, b.size FROM repository_content c
                   JOIN packages p ON p.id = c.package_id
                   JOIN blobs b ON b.sha256 = p.sha256
                  WHERE c.repository_id = $1 AND c.removed_in IS NULL
                 UNION ALL
                 SELECT b.path, b.size FROM repository_metadata m
                   JOIN blobs b ON b.sha256 = m.blob_sha256
                  WHERE m.repository_id = $1 AND m.removed_in IS NULL",
                &[&repository_id],
            )
            .map_err(db_err("listing the latest version's files"))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// For each upstream checksum of one algorithm, the blob the pool already holds, if any.
    pub fn resolve_known(
        &self,
        kind: ChecksumType,
        checksums: &[&str],
    ) -> Result<HashMap<String, KnownBlob>> {
        let mut conn = self.conn()?;
        let sql = if kind == ChecksumType::Sha256 {
            "SELECT b.sha256, b.sha256, b.size, b.path, p.id IS NOT NULL
               FROM unnest($1::text[]) AS u(c)
               JOIN blobs b ON b.sha256 = u.c
               LEFT JOIN packages p ON p.sha256 = b.sha256"
        } else {
            "SELECT x.checksum, b.sha256, b.size, b.path, p.id IS NOT NULL
               FROM unnest($1::text[]) AS u(c)
               JOIN blob_checksums x ON x.checksum_type = $2 AND x.checksum = u.c
               JOIN blobs b ON b.sha256 = x.sha256
               LEFT JOIN packages p ON p.sha256 = b.sha256"
        };
        let kind_name = kind.as_str();
        let rows = if kind == ChecksumType::Sha256 {
            conn.query(sql, &[&checksums])
        } else {
            conn.query(sql, &[&checksums, &kind_name])
        }
        .map_err(db_err("looking up packages the pool already holds"))?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    r.get::<_, String>(0),
                    KnownBlob {
                        sha256: r.get(1),
                        size: r.get(2),
                        path: r.get(3),
                        has_package: r.get(4),
                    },
                )
            })
            .collect())
    }

    /// Pool blobs whose package has this NEVRA and size, for upstreams that list a file under
    /// a checksum the catalogue has not seen: the caller verifies a candidate by hashing it.
    /// Keys are `name-epoch:version-release.arch/size`.
    pub fn candidates_by_nevra(&self, wanted: &[NevraSize]) -> Result<Vec<(String, KnownBlob)>> {
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let names: Vec<&str> = wanted.iter().map(|w| w.name.as_str()).collect();
        let epochs: Vec<i64> = wanted.iter().map(|w| w.epoch).collect();
        let versions: Vec<&str> = wanted.iter().map(|w| w.version.as_str()).collect();
        let releases: Vec<&str> = wanted.iter().map(|w| w.release.as_str()).collect();
        let arches: Vec<&str> = wanted.iter().map(|w| w.arch.as_str()).collect();
        let sizes: Vec<i64> = wanted.iter().map(|w| w.size).collect();
        let mut conn = self.conn()?;
        let rows = conn
            .query(
                "SELECT p.name || '-' || p.epoch || ':' || p.version || '-' || p.release || '.'
                        || p.arch || '/' || p.size_package, b.sha256, b.size, b.path
                   FROM unnest($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::int8[])
                        AS w(name, epoch, version, release, arch, size)
                   JOIN packages p ON p.name = w.name AND p.epoch = w.epoch
                                  AND p.version = w.version AND p.release = w.release
                                  AND p.arch = w.arch AND p.size_package = w.size
                   JOIN blobs b ON b.sha256 = p.sha256",
                &[&names, &epochs, &versions, &releases, &arches, &sizes],
            )
            .map_err(db_err("looking up pool files by name and version"))?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    r.get(0),
                    KnownBlob {
                        sha256: r.get(1),
                        size: r.get(2),
                        path: r.get(3),
                        has_package: true,
                    },
                )
            })
            .collect())
    }

    /// The latest version's packages with their identity, for retention.
    pub fn latest_content(&self, repository_id: i64) -> Result<Vec<ContentItem>> {
        let mut conn = self.conn()?;
        let rows = conn
            .query(
                "SELECT p.sha256, c.location_href, p.name, p.epoch, p.version, p.release, p.arch
                   FROM repository_content c JOIN packages p ON p.id = c.package_id
                  WHERE c.repository_id = $1 AND c.removed_in IS NULL
                  ORDER BY c.location_href",
                &[&repository_id],
            )
            .map_err(db_err("reading the latest version's packages"))?;
        Ok(rows
            .iter()
            .map(|r| ContentItem {
                sha256: r.get(0),
                location_href: r.get(1),
                name: r.get(2),
                epoch: r.get(3),
                version: r.get(4),
                release: r.get(5),
                arch: r.get(6),
            })
            .collect())
    }

    /// Streams the stored fragments of `content` ((sha256, href) pairs), ordered by href, to
    /// `f`: rows arrive one at a time, so memory does not grow with the repository.
    pub fn for_each_fragment(
        &self,
        content: &[(String, String)],
        mut f: impl FnMut(FragmentRow) -> Result<()>,
    ) -> Result<()> {
        let shas: Vec<&str> = content.iter().map(|c| c.0.as_str()).collect();
        let hrefs: Vec<&str> = content.iter().map(|c| c.1.as_str()).collect();
        let mut conn = self.conn()?;
        let params: [&(dyn postgres::types::ToSql + Sync); 2] = [&shas, &hrefs];
        let rows = conn
            .query_raw(
                "SELECT c.href, p.checksum, p.name, p.arch, p.epoch, p.version, p.release,
                        p.primary_xml, p.filelists_xml, p.other_xml
                   FROM unnest($1::text[], $2::text[]) AS c(sha, href)
                   JOIN packages p ON p.sha256 = c.sha
                  ORDER BY c.href",
                params,
            )
            .map_err(db_err("reading package fragments"))?;
        let mut rows = rows;
        use postgres::fallible_iterator::FallibleIterator;
        while let Some(r) = rows.next().map_err(db_err("reading package fragments"))? {
            f(FragmentRow {
                location_href: r.get(0),
                pkgid: r.get(1),
                name: r.get(2),
                arch: r.get(3),
                epoch: r.get(4),
                version: r.get(5),
                release: r.get(6),
                primary_xml: r.get(7),
                filelists_xml: r.get(8),
                other_xml: r.get(9),
            })?;
        }
        Ok(())
    }

    /// The pool path of the latest version's repodata file of `kind`, if any.
    pub fn latest_metadata_path(&self, repository_id: i64, kind: &str) -> Result<Option<String>> {
        let mut conn = self.conn()?;
        let row = conn
            .query_opt(
                "SELECT b.path FROM repository_metadata m JOIN blobs b ON b.sha256 = m.blob_sha256
                  WHERE m.repository_id = $1 AND m.type = $2 AND m.removed_in IS NULL
                  LIMIT 1",
                &[&repository_id, &kind],
            )
            .map_err(db_err(format!("reading the latest {kind}")))?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Marks blobs a sync is about to reuse as used now, so that no cleanup collects them
    /// while the sync runs, and returns those still recorded with whether each has a package
    /// row. A blob missing from the answer was collected meanwhile: the sync fetches it again.
    pub fn reserve_blobs(&self, sha256s: &[&str]) -> Result<HashMap<String, bool>> {
        if sha256s.is_empty() {
            return Ok(HashMap::new());
        }
        let ctx = "reserving pool files for reuse";
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(db_err(ctx))?;
        // Waits for a cleanup batch in progress; the statements below then see its result.
        tx.batch_execute("LOCK TABLE blobs IN ROW EXCLUSIVE MODE")
            .map_err(db_err(ctx))?;
        // Rows are locked in key order, as record_blobs does, so two syncs never deadlock.
        tx.execute(
            "UPDATE blobs SET used_at = now()
              WHERE sha256 IN (SELECT sha256 FROM blobs WHERE sha256 = ANY($1)
                                ORDER BY sha256 FOR UPDATE)",
            &[&sha256s],
        )
        .map_err(db_err(ctx))?;
        let rows = tx
            .query(
                "SELECT b.sha256, EXISTS (SELECT 1 FROM packages p WHERE p.sha256 = b.sha256)
                   FROM blobs b WHERE b.sha256 = ANY($1)",
                &[&sha256s],
            )
            .map_err(db_err(ctx))?;
        tx.commit().map_err(db_err(ctx))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Records blobs now in the pool, with the upstream checksum each was verified against.
    pub fn record_blobs(
        &self,
        blobs: &[(StoredBlob, Option<(ChecksumType, String)>)],
    ) -> Result<()> {
        if blobs.is_empty() {
            return Ok(());
        }
        let mut sha = Vec::with_capacity(blobs.len());
        let mut size = Vec::with_capacity(blobs.len());
        let mut path = Vec::with_capacity(blobs.len());
        let mut alt_sha = Vec::new();
        let mut alt_kind = Vec::new();
        let mut alt_value = Vec::new();
        for (b, alt) in blobs {
            sha.push(b.sha256.as_str());
            size.push(i64::try_from(b.size).unwrap_or(i64::MAX));
            path.push(b.rel_path.as_str());
            if let Some((kind, value)) = alt.as_ref().filter(|(k, _)| *k != ChecksumType::Sha256) {
                alt_sha.push(b.sha256.as_str());
                alt_kind.push(kind.as_str());
                alt_value.push(value.as_str());
            }
        }
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(db_err("recording blobs"))?;
        tx.execute(
            // In key order: two syncs recording the same blobs at once then take their row
            // locks in the same order instead of deadlocking. A blob recorded again counts as
            // used now, so a cleanup cannot take it from under the sync that brought it.
            "INSERT INTO blobs (sha256, size, path)
             SELECT DISTINCT ON (s) s, z, p FROM unnest($1::text[], $2::int8[], $3::text[])
                    AS u(s, z, p) ORDER BY s
             ON CONFLICT (sha256) DO UPDATE SET used_at = now()",
            &[&sha, &size, &path],
        )
        .map_err(db_err("recording blobs"))?;
        if !alt_sha.is_empty() {
            tx.execute(
                "INSERT INTO blob_checksums (sha256, checksum_type, checksum)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ORDER BY 2, 3
                 ON CONFLICT DO NOTHING",
                &[&alt_sha, &alt_kind, &alt_value],
            )
            .map_err(db_err("recording blob checksums"))?;
        }
        tx.commit().map_err(db_err("recording blobs"))?;
        Ok(())
    }
}

/// Waits up to `timeout` on a connection that listens on `chantal_latest`; true if at least one
/// new version was announced (all pending notifications are consumed).
pub(in crate::catalogue) fn wait_notifications(
    client: &mut postgres::Client,
    timeout: std::time::Duration,
) -> Result<bool> {
    use postgres::fallible_iterator::FallibleIterator;
    let mut notifications = client.notifications();
    // The first wait blocks up to `timeout`; then drain what is queued without waiting.
    let first = notifications
        .timeout_iter(timeout)
        .next()
        .map_err(db_err("waiting for notifications"))?;
    let got = first.is_some();
    if got {
        while notifications
            .iter()
            .next()
            .map_err(db_err("waiting for notifications"))?
            .is_some()
        {}
    }
    Ok(got)
}

impl PgStore {
    /// A dedicated connection listening on `chantal_latest`.
    pub fn listen_latest(&self) -> Result<LatestListener> {
        let mut client = self.dedicated()?;
        client
            .batch_execute("LISTEN chantal_latest")
            .map_err(db_err("listening for new versions"))?;
        Ok(LatestListener::postgres(client))
    }
}
