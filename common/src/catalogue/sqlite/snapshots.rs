//! Snapshots (names for repository versions) and what a version contains.

use rusqlite::{OptionalExtension, TransactionBehavior};

use super::{db_err, query_all, time, SqliteStore};
use crate::catalogue::model::{SnapshotRecord, VersionInfo, VersionPackage};
use crate::error::{Error, Result};

impl SqliteStore {
    pub fn snapshots(&self, repository: Option<&str>) -> Result<Vec<SnapshotRecord>> {
        let conn = self.conn()?;
        let ctx = "listing snapshots";
        query_all(
            &conn,
            "SELECT r.name, s.name, s.version, v.package_count, v.total_size,
                        s.created_at, s.description
                   FROM snapshots s
                   JOIN repositories r ON r.id = s.repository_id
                   JOIN repository_versions v
                     ON v.repository_id = s.repository_id AND v.number = s.version
                  WHERE ?1 IS NULL OR r.name = ?1
                  ORDER BY r.name, s.created_at, s.name",
            [repository],
            ctx,
            |r| {
                Ok(SnapshotRecord {
                    repository: r.get(0)?,
                    name: r.get(1)?,
                    version: r.get(2)?,
                    packages: r.get(3)?,
                    total_size: r.get(4)?,
                    created_at: time(r.get(5)?),
                    description: r.get(6)?,
                })
            },
        )
    }

    pub fn create_snapshot(
        &self,
        repository: &str,
        name: &str,
        description: Option<&str>,
    ) -> Result<SnapshotRecord> {
        let ctx = format!("creating snapshot {name} of {repository}");
        {
            let mut conn = self.conn()?;
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_err(ctx.clone()))?;
            let row: Option<(i64, Option<i64>)> = tx
                .query_row(
                    "SELECT id, latest_version FROM repositories WHERE name = ?1",
                    [repository],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(db_err(ctx.clone()))?;
            let (repo_id, latest) = row.unwrap_or((0, None));
            let Some(version) = latest else {
                return Err(Error::Missing(format!(
                    "{repository} has no version yet: sync it before taking a snapshot"
                )));
            };
            let existing: Option<i64> = tx
                .query_row(
                    "SELECT version FROM snapshots WHERE repository_id = ?1 AND name = ?2",
                    (repo_id, name),
                    |r| r.get(0),
                )
                .optional()
                .map_err(db_err(ctx.clone()))?;
            if let Some(v) = existing {
                return Err(Error::Missing(format!(
                    "{repository} already has a snapshot named {name} (version {v})"
                )));
            }
            tx.execute(
                "INSERT INTO snapshots (repository_id, name, version, description)
                 VALUES (?1, ?2, ?3, ?4)",
                (repo_id, name, version, description),
            )
            .map_err(db_err(ctx.clone()))?;
            tx.commit().map_err(db_err(ctx))?;
        }
        let mut found = self.snapshots(Some(repository))?;
        found.retain(|s| s.name == name);
        found
            .pop()
            .ok_or_else(|| Error::Missing(format!("snapshot {name} vanished after creation")))
    }

    pub fn delete_snapshot(&self, repository: &str, name: &str) -> Result<bool> {
        let conn = self.conn()?;
        let n = conn
            .execute(
                "DELETE FROM snapshots
                  WHERE name = ?2
                    AND repository_id = (SELECT id FROM repositories WHERE name = ?1)",
                (repository, name),
            )
            .map_err(db_err(format!("deleting snapshot {name} of {repository}")))?;
        Ok(n > 0)
    }

    pub fn version_info(&self, repository: &str, version: i64) -> Result<Option<VersionInfo>> {
        let conn = self.conn()?;
        conn.query_row(
            "SELECT r.name, v.number, v.package_count, v.total_size, v.created_at,
                    v.repomd_revision
               FROM repository_versions v JOIN repositories r ON r.id = v.repository_id
              WHERE r.name = ?1 AND v.number = ?2",
            (repository, version),
            |r| {
                Ok(VersionInfo {
                    repository: r.get(0)?,
                    version: r.get(1)?,
                    packages: r.get(2)?,
                    total_size: r.get(3)?,
                    created_at: time(r.get(4)?),
                    repomd_revision: r.get(5)?,
                })
            },
        )
        .optional()
        .map_err(db_err(format!("reading version {version} of {repository}")))
    }

    pub fn version_metadata(
        &self,
        repository: &str,
        version: i64,
        kind: &str,
    ) -> Result<Option<(String, i64)>> {
        let conn = self.conn()?;
        conn.query_row(
            "SELECT b.path, b.size FROM repository_metadata m
               JOIN repositories r ON r.id = m.repository_id
               JOIN blobs b ON b.sha256 = m.blob_sha256
              WHERE r.name = ?1 AND m.type = ?3 AND m.added_in <= ?2
                AND (m.removed_in IS NULL OR m.removed_in > ?2)
              LIMIT 1",
            (repository, version, kind),
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(db_err(format!(
            "reading {kind} of version {version} of {repository}"
        )))
    }

    pub fn version_packages(&self, repository: &str, version: i64) -> Result<Vec<VersionPackage>> {
        let conn = self.conn()?;
        query_all(
            &conn,
            "SELECT p.name, p.epoch, p.version, p.release, p.arch, p.sha256, c.location_href
                   FROM repository_content c
                   JOIN repositories r ON r.id = c.repository_id
                   JOIN packages p ON p.id = c.package_id
                  WHERE r.name = ?1 AND c.added_in <= ?2
                    AND (c.removed_in IS NULL OR c.removed_in > ?2)
                  ORDER BY p.name, p.arch, p.epoch, p.version, p.release, c.location_href",
            (repository, version),
            &format!("listing version {version} of {repository}"),
            |r| {
                Ok(VersionPackage {
                    name: r.get(0)?,
                    epoch: r.get(1)?,
                    version: r.get(2)?,
                    release: r.get(3)?,
                    arch: r.get(4)?,
                    sha256: r.get(5)?,
                    location_href: r.get(6)?,
                })
            },
        )
    }

    pub fn version_tree(&self, repository: &str, version: i64) -> Result<crate::tree::Tree> {
        let context = || format!("listing the files of version {version} of {repository}");
        let conn = self.conn()?;
        // Repodata mtime: the version's creation time rounded to the second, as PostgreSQL's
        // `extract(epoch …)::int8` rounds.
        let mut stmt = conn
            .prepare_cached(
                "WITH v AS (SELECT r.id, v.number, (v.created_at + 500000) / 1000000 AS t
                              FROM repositories r JOIN repository_versions v ON v.repository_id = r.id
                             WHERE r.name = ?1 AND v.number = ?2)
                 SELECT c.location_href, b.path, b.size, coalesce(p.time_build, v.t)
                   FROM v JOIN repository_content c ON c.repository_id = v.id
                         AND c.added_in <= v.number
                         AND (c.removed_in IS NULL OR c.removed_in > v.number)
                   JOIN packages p ON p.id = c.package_id JOIN blobs b ON b.sha256 = p.sha256
                 UNION ALL
                 SELECT m.location_href, b.path, b.size, v.t
                   FROM v JOIN repository_metadata m ON m.repository_id = v.id
                         AND m.added_in <= v.number
                         AND (m.removed_in IS NULL OR m.removed_in > v.number)
                   JOIN blobs b ON b.sha256 = m.blob_sha256",
            )
            .map_err(db_err(context()))?;
        let mut rows = stmt
            .query((repository, version))
            .map_err(db_err(context()))?;
        let mut tree = crate::tree::TreeBuilder::default();
        while let Some(r) = rows.next().map_err(db_err(context()))? {
            let field = |e| db_err(context())(e);
            let href: String = r.get(0).map_err(field)?;
            tree.add(
                &href,
                crate::tree::Leaf {
                    pool_path: r.get(1).map_err(field)?,
                    size: u64::try_from(r.get::<_, i64>(2).map_err(field)?).unwrap_or(0),
                    mtime: r.get(3).map_err(field)?,
                },
            )?;
        }
        Ok(tree.finish())
    }
}
