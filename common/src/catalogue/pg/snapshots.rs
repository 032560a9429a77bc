//! Snapshots: names for repository versions.

use super::{db_err, PgStore};
use crate::catalogue::model::*;
use crate::error::{Error, Result};

impl PgStore {
    /// Snapshots of one repository, or of all, ordered by repository then creation.
    pub fn snapshots(&self, repository: Option<&str>) -> Result<Vec<SnapshotRecord>> {
        let mut conn = self.conn()?;
        let rows = conn
            .query(
                "SELECT r.name, s.name, s.version, v.package_count, v.total_size,
                        s.created_at, s.description
                   FROM snapshots s
                   JOIN repositories r ON r.id = s.repository_id
                   JOIN repository_versions v
                     ON v.repository_id = s.repository_id AND v.number = s.version
                  WHERE $1::text IS NULL OR r.name = $1
                  ORDER BY r.name, s.created_at, s.name",
                &[&repository],
            )
            .map_err(db_err("listing snapshots"))?;
        Ok(rows
            .iter()
            .map(|r| SnapshotRecord {
                repository: r.get(0),
                name: r.get(1),
                version: r.get(2),
                packages: r.get(3),
                total_size: r.get(4),
                created_at: r.get(5),
                description: r.get(6),
            })
            .collect())
    }
}

impl PgStore {
    /// Names the repository's latest version. O(1): one row. Fails if the repository has no
    /// version yet or already has a snapshot of that name.
    pub fn create_snapshot(
        &self,
        repository: &str,
        name: &str,
        description: Option<&str>,
    ) -> Result<SnapshotRecord> {
        let mut conn = self.conn()?;
        let ctx = format!("creating snapshot {name} of {repository}");
        let mut tx = conn.transaction().map_err(db_err(ctx.clone()))?;
        let row = tx
            .query_opt(
                "SELECT id, latest_version FROM repositories WHERE name = $1",
                &[&repository],
            )
            .map_err(db_err(ctx.clone()))?;
        let (repo_id, latest): (i64, Option<i64>) = match row {
            Some(r) => (r.get(0), r.get(1)),
            None => (0, None),
        };
        let Some(version) = latest else {
            return Err(Error::Missing(format!(
                "{repository} has no version yet: sync it before taking a snapshot"
            )));
        };
        let existing = tx
            .query_opt(
                "SELECT version FROM snapshots WHERE repository_id = $1 AND name = $2",
                &[&repo_id, &name],
            )
            .map_err(db_err(ctx.clone()))?;
        if let Some(r) = existing {
            let v: i64 = r.get(0);
            return Err(Error::Missing(format!(
                "{repository} already has a snapshot named {name} (version {v})"
            )));
        }
        tx.execute(
            "INSERT INTO snapshots (repository_id, name, version, description)
             VALUES ($1, $2, $3, $4)",
            &[&repo_id, &name, &version, &description],
        )
        .map_err(db_err(ctx.clone()))?;
        tx.commit().map_err(db_err(ctx))?;
        let mut found = self.snapshots(Some(repository))?;
        found.retain(|s| s.name == name);
        found
            .pop()
            .ok_or_else(|| Error::Missing(format!("snapshot {name} vanished after creation")))
    }

    /// Removes a snapshot's name. Files are only ever removed by cleanup.
    pub fn delete_snapshot(&self, repository: &str, name: &str) -> Result<bool> {
        let mut conn = self.conn()?;
        let n = conn
            .execute(
                "DELETE FROM snapshots s USING repositories r
                  WHERE r.id = s.repository_id AND r.name = $1 AND s.name = $2",
                &[&repository, &name],
            )
            .map_err(db_err(format!("deleting snapshot {name} of {repository}")))?;
        Ok(n > 0)
    }

    /// A version's summary.
    pub fn version_info(&self, repository: &str, version: i64) -> Result<Option<VersionInfo>> {
        let mut conn = self.conn()?;
        let row = conn
            .query_opt(
                "SELECT r.name, v.number, v.package_count, v.total_size, v.created_at,
                        v.repomd_revision
                   FROM repository_versions v JOIN repositories r ON r.id = v.repository_id
                  WHERE r.name = $1 AND v.number = $2",
                &[&repository, &version],
            )
            .map_err(db_err(format!("reading version {version} of {repository}")))?;
        Ok(row.map(|r| VersionInfo {
            repository: r.get(0),
            version: r.get(1),
            packages: r.get(2),
            total_size: r.get(3),
            created_at: r.get(4),
            repomd_revision: r.get(5),
        }))
    }

    /// Pool path and size of a version's repodata file of `kind` (e.g. `updateinfo`).
    pub fn version_metadata(
        &self,
        repository: &str,
        version: i64,
        kind: &str,
    ) -> Result<Option<(String, i64)>> {
        let mut conn = self.conn()?;
        let row = conn
            .query_opt(
                "SELECT b.path, b.size FROM repository_metadata m
                   JOIN repositories r ON r.id = m.repository_id
                   JOIN blobs b ON b.sha256 = m.blob_sha256
                  WHERE r.name = $1 AND m.type = $3 AND m.added_in <= $2
                    AND (m.removed_in IS NULL OR m.removed_in > $2)
                  LIMIT 1",
                &[&repository, &version, &kind],
            )
            .map_err(db_err(format!(
                "reading {kind} of version {version} of {repository}"
            )))?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    /// Every package of a version, ordered by name, arch and EVR text.
    pub fn version_packages(&self, repository: &str, version: i64) -> Result<Vec<VersionPackage>> {
        let mut conn = self.conn()?;
        let rows = conn
            .query(
                "SELECT p.name, p.epoch, p.version, p.release, p.arch, p.sha256, c.location_href
                   FROM repository_content c
                   JOIN repositories r ON r.id = c.repository_id
                   JOIN packages p ON p.id = c.package_id
                  WHERE r.name = $1 AND c.added_in <= $2
                    AND (c.removed_in IS NULL OR c.removed_in > $2)
                  ORDER BY p.name, p.arch, p.epoch, p.version, p.release, c.location_href",
                &[&repository, &version],
            )
            .map_err(db_err(format!("listing version {version} of {repository}")))?;
        Ok(rows
            .iter()
            .map(|r| VersionPackage {
                name: r.get(0),
                epoch: r.get(1),
                version: r.get(2),
                release: r.get(3),
                arch: r.get(4),
                sha256: r.get(5),
                location_href: r.get(6),
            })
            .collect())
    }

    /// The file tree of a version of a repository — packages at their hrefs plus repodata,
    /// each with its pool path, size and mtime (a package's build time; repodata: the
    /// version's creation time) — what chantal-fs serves and the exporter writes. One query,
    /// whose rows are consumed as they arrive.
    pub fn version_tree(&self, repository: &str, version: i64) -> Result<crate::tree::Tree> {
        use postgres::fallible_iterator::FallibleIterator;
        let context = || format!("listing the files of version {version} of {repository}");
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(db_err(context()))?;
        // The package -> blob hash join of a large version stays in memory.
        tx.batch_execute("SET LOCAL work_mem = '64MB'")
            .map_err(db_err(context()))?;
        let params: [&(dyn postgres::types::ToSql + Sync); 2] = [&repository, &version];
        let mut rows = tx
            .query_raw(
                "WITH v AS (SELECT r.id, v.number, extract(epoch FROM v.created_at)::int8 AS t
                              FROM repositories r JOIN repository_versions v ON v.repository_id = r.id
                             WHERE r.name = $1 AND v.number = $2)
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
                params,
            )
            .map_err(db_err(context()))?;
        let mut tree = crate::tree::TreeBuilder::default();
        while let Some(r) = rows.next().map_err(db_err(context()))? {
            tree.add(
                r.get(0),
                crate::tree::Leaf {
                    pool_path: r.get(1),
                    size: u64::try_from(r.get::<_, i64>(2)).unwrap_or(0),
                    mtime: r.get(3),
                },
            )?;
        }
        Ok(tree.finish())
    }
}
