//! Snapshots (names for repository versions) and what a version contains.

use super::super::db::{self, Row, Store};
use super::in_version;
use crate::catalogue::model::{SnapshotRecord, VersionInfo, VersionPackage};
use crate::error::{Error, Result};
use crate::rpm::MetadataKind;
use crate::tree::{Leaf, Tree, TreeBuilder};

fn snapshot(r: &dyn Row) -> Result<SnapshotRecord> {
    Ok(SnapshotRecord {
        repository: r.string(0)?,
        name: r.string(1)?,
        version: r.i64(2)?,
        packages: r.i64(3)?,
        total_size: r.i64(4)?,
        created_at: r.time(5)?,
        description: r.opt_string(6)?,
    })
}

/// Snapshots of one repository, or of all, ordered by repository then creation.
pub fn snapshots<S: Store>(s: &S, repository: Option<&str>) -> Result<Vec<SnapshotRecord>> {
    s.autocommit(|db| {
        db.all(
            "listing snapshots",
            "SELECT r.name, s.name, s.version, v.package_count, v.total_size,
                    s.created_at, s.description
               FROM snapshots s
               JOIN repositories r ON r.id = s.repository_id
               JOIN repository_versions v
                 ON v.repository_id = s.repository_id AND v.number = s.version
              WHERE CAST($1 AS TEXT) IS NULL OR r.name = $1
              ORDER BY r.name, s.created_at, s.name",
            &[repository.into()],
            snapshot,
        )
    })
}

/// Names the repository's latest version. O(1): one row. Fails if the name is not one a
/// snapshot may have, if the repository has no version yet, or if it already has a snapshot
/// of that name.
pub fn create_snapshot<S: Store>(
    s: &S,
    repository: &str,
    name: &str,
    description: Option<&str>,
) -> Result<SnapshotRecord> {
    let mut made = create_snapshots(s, &[repository], name, description)?;
    made.pop()
        .ok_or_else(|| Error::Internal("a snapshot set of one came back empty".into()))
}

/// Names the latest version of each repository `name`, in one transaction: all of them or,
/// if any precondition fails for one (no version yet, the name taken), none.
pub fn create_snapshots<S: Store>(
    s: &S,
    repositories: &[&str],
    name: &str,
    description: Option<&str>,
) -> Result<Vec<SnapshotRecord>> {
    crate::names::check_snapshot_name(name).map_err(Error::Invalid)?;
    if repositories.is_empty() {
        return Err(Error::Invalid(format!(
            "snapshot {name}: no repository to snapshot"
        )));
    }
    let ctx = format!("creating snapshot {name} of {}", repositories.join(", "));
    db::write(s, &ctx, |db| {
        repositories
            .iter()
            .map(|r| insert_snapshot(db, r, name, description))
            .collect()
    })
}

fn insert_snapshot(
    db: &mut dyn db::Db,
    repository: &str,
    name: &str,
    description: Option<&str>,
) -> Result<SnapshotRecord> {
    let ctx = format!("creating snapshot {name} of {repository}");
    let row = db.opt(
        &ctx,
        "SELECT id, latest_version FROM repositories WHERE name = $1",
        &[repository.into()],
        |r| Ok((r.i64(0)?, r.opt_i64(1)?)),
    )?;
    let (repo_id, latest) = row.unwrap_or((0, None));
    let Some(version) = latest else {
        return Err(Error::NoVersion {
            repository: repository.into(),
        });
    };
    let existing = db.opt(
        &ctx,
        "SELECT version FROM snapshots WHERE repository_id = $1 AND name = $2",
        &[repo_id.into(), name.into()],
        |r| r.i64(0),
    )?;
    if let Some(v) = existing {
        return Err(Error::SnapshotExists {
            repository: repository.into(),
            name: name.into(),
            version: v,
        });
    }
    db.one(
        &ctx,
        "INSERT INTO snapshots (repository_id, name, version, description)
         VALUES ($1, $2, $3, $4) RETURNING id",
        &[
            repo_id.into(),
            name.into(),
            version.into(),
            description.into(),
        ],
        |r| r.i64(0),
    )?;
    db.one(
        &ctx,
        "SELECT r.name, s.name, s.version, v.package_count, v.total_size,
                s.created_at, s.description
           FROM snapshots s
           JOIN repositories r ON r.id = s.repository_id
           JOIN repository_versions v
             ON v.repository_id = s.repository_id AND v.number = s.version
          WHERE s.repository_id = $1 AND s.name = $2",
        &[repo_id.into(), name.into()],
        snapshot,
    )
}

/// Removes a snapshot's name. Files are only ever removed by cleanup.
pub fn delete_snapshot<S: Store>(s: &S, repository: &str, name: &str) -> Result<bool> {
    Ok(!delete_snapshots(s, &[repository], name)?.is_empty())
}

/// Removes snapshot `name` from each of `repositories` that has it, in one transaction;
/// returns those it was removed from.
pub fn delete_snapshots<S: Store>(s: &S, repositories: &[&str], name: &str) -> Result<Vec<String>> {
    let ctx = format!("deleting snapshot {name} of {}", repositories.join(", "));
    db::write(s, &ctx, |db| {
        let mut gone = Vec::new();
        for r in repositories {
            let pointing = db.all(
                &ctx,
                "SELECT e.environment FROM environments e
                   JOIN snapshots s ON s.id = e.snapshot_id
                   JOIN repositories r ON r.id = s.repository_id
                  WHERE r.name = $1 AND s.name = $2
                  ORDER BY e.environment",
                &[(*r).into(), name.into()],
                |row| row.string(0),
            )?;
            if !pointing.is_empty() {
                return Err(Error::SnapshotInUse {
                    repository: r.to_string(),
                    name: name.into(),
                    environments: pointing,
                });
            }
            let n = db.execute(
                &ctx,
                "DELETE FROM snapshots
                  WHERE name = $2
                    AND repository_id = (SELECT id FROM repositories WHERE name = $1)",
                &[(*r).into(), name.into()],
            )?;
            if n > 0 {
                gone.push(r.to_string());
            }
        }
        Ok(gone)
    })
}

/// Every version the catalogue holds, of every repository, with when it was committed (when
/// it became latest), by repository then number.
pub fn versions<S: Store>(s: &S) -> Result<Vec<(String, i64, chrono::DateTime<chrono::Utc>)>> {
    s.autocommit(|db| {
        let order = db.dialect().collate_bytes();
        db.all(
            "listing versions",
            &format!(
                "SELECT r.name, v.number, v.created_at
                   FROM repository_versions v JOIN repositories r ON r.id = v.repository_id
                  ORDER BY r.name{order}, v.number"
            ),
            &[],
            |r| Ok((r.string(0)?, r.i64(1)?, r.time(2)?)),
        )
    })
}

/// A version's summary.
pub fn version_info<S: Store>(
    s: &S,
    repository: &str,
    version: i64,
) -> Result<Option<VersionInfo>> {
    s.autocommit(|db| {
        db.opt(
            &format!("reading version {version} of {repository}"),
            "SELECT r.name, v.number, v.package_count, v.total_size, v.created_at,
                    v.repomd_revision
               FROM repository_versions v JOIN repositories r ON r.id = v.repository_id
              WHERE r.name = $1 AND v.number = $2",
            &[repository.into(), version.into()],
            |r| {
                Ok(VersionInfo {
                    repository: r.string(0)?,
                    version: r.i64(1)?,
                    packages: r.i64(2)?,
                    total_size: r.i64(3)?,
                    created_at: r.time(4)?,
                    repomd_revision: r.opt_string(5)?,
                })
            },
        )
    })
}

/// Pool path and size of a version's repodata file of `kind` (e.g. `updateinfo`).
pub fn version_metadata<S: Store>(
    s: &S,
    repository: &str,
    version: i64,
    kind: &MetadataKind,
) -> Result<Option<(String, i64)>> {
    s.autocommit(|db| {
        db.opt(
            &format!("reading {kind} of version {version} of {repository}"),
            &format!(
                "SELECT b.path, b.size FROM repository_metadata m
                   JOIN repositories r ON r.id = m.repository_id
                   JOIN blobs b ON b.sha256 = m.blob_sha256
                  WHERE r.name = $1 AND m.type = $3 AND {}
                  LIMIT 1",
                in_version("m", "$2")
            ),
            &[repository.into(), version.into(), kind.as_str().into()],
            |r| Ok((r.string(0)?, r.i64(1)?)),
        )
    })
}

/// A version's installer tree: the metadata of kinds `treeinfo` (its description),
/// `extra_files` (productmd's list of extra files) and `tree` (every file they name).
pub fn version_installer_tree<S: Store>(
    s: &S,
    repository: &str,
    version: i64,
) -> Result<Vec<(String, crate::Sha256)>> {
    s.autocommit(|db| {
        let order = db.dialect().collate_bytes();
        db.all(
            &format!("listing the installer tree of version {version} of {repository}"),
            &format!(
                "SELECT m.location_href, m.blob_sha256 FROM repository_metadata m
                   JOIN repositories r ON r.id = m.repository_id
                  WHERE r.name = $1 AND m.type IN ({}) AND {}
                  ORDER BY m.location_href {order}",
                MetadataKind::sql_list(&[
                    MetadataKind::TreeInfo,
                    MetadataKind::ExtraFiles,
                    MetadataKind::TreeFile
                ]),
                in_version("m", "$2")
            ),
            &[repository.into(), version.into()],
            |r| Ok((r.string(0)?, r.sha256(1)?)),
        )
    })
}

/// Every package of a version, ordered by name, arch and EVR text.
pub fn version_packages<S: Store>(
    s: &S,
    repository: &str,
    version: i64,
) -> Result<Vec<VersionPackage>> {
    s.autocommit(|db| {
        let order = db.dialect().collate_bytes();
        db.all(
            &format!("listing version {version} of {repository}"),
            &format!(
                "SELECT p.name, p.epoch, p.version, p.release, p.arch, p.sha256, c.location_href
                   FROM repository_content c
                   JOIN repositories r ON r.id = c.repository_id
                   JOIN packages p ON p.id = c.package_id
                  WHERE r.name = $1 AND {}
                  ORDER BY p.name{order}, p.arch{order}, p.epoch, p.version{order},
                           p.release{order}, c.location_href{order}",
                in_version("c", "$2")
            ),
            &[repository.into(), version.into()],
            |r| {
                Ok(VersionPackage {
                    nevra: super::nevra(r, 0)?,
                    sha256: r.sha256(5)?,
                    location_href: r.string(6)?,
                })
            },
        )
    })
}

/// The signature key ids recorded for each package file of a version (those a sync with
/// `rpm.gpgcheck` checked), by sha256.
pub fn version_signers<S: Store>(
    s: &S,
    repository: &str,
    version: i64,
) -> Result<std::collections::HashMap<crate::Sha256, String>> {
    s.autocommit(|db| {
        let rows = db.all(
            &format!("reading the signers of version {version} of {repository}"),
            &format!(
                "SELECT p.sha256, g.key_ids
                   FROM repository_content c
                   JOIN repositories r ON r.id = c.repository_id
                   JOIN packages p ON p.id = c.package_id
                   JOIN blob_signatures g ON g.blob_sha256 = p.sha256
                  WHERE r.name = $1 AND {}",
                in_version("c", "$2")
            ),
            &[repository.into(), version.into()],
            |r| Ok((r.sha256(0)?, r.string(1)?)),
        )?;
        Ok(rows.into_iter().collect())
    })
}

/// The file tree of a version — packages at their hrefs plus repodata, each with its pool
/// path, size and mtime (a package's build time; repodata: the version's creation time,
/// rounded to the second) — what chantal-fs serves and the exporter writes. One query, whose
/// rows are consumed as they arrive.
pub fn version_tree<S: Store>(s: &S, repository: &str, version: i64) -> Result<Tree> {
    let ctx = format!("listing the files of version {version} of {repository}");
    db::read(s, &ctx, |db| {
        let d = db.dialect();
        if d == db::Dialect::Postgres {
            // The package -> blob hash join of a large version stays in memory.
            db.batch(&ctx, "SET LOCAL work_mem = '64MB'")?;
        }
        let mut tree = TreeBuilder::default();
        db.query(
            &ctx,
            &format!(
                "WITH v AS (SELECT r.id, v.number, {} AS t
                              FROM repositories r JOIN repository_versions v ON v.repository_id = r.id
                             WHERE r.name = $1 AND v.number = $2)
                 SELECT c.location_href, b.path, b.size, coalesce(p.time_build, v.t)
                   FROM v JOIN repository_content c ON c.repository_id = v.id AND {}
                   JOIN packages p ON p.id = c.package_id JOIN blobs b ON b.sha256 = p.sha256
                 UNION ALL
                 SELECT m.location_href, b.path, b.size, v.t
                   FROM v JOIN repository_metadata m ON m.repository_id = v.id AND {}
                   JOIN blobs b ON b.sha256 = m.blob_sha256",
                d.epoch_seconds("v.created_at"),
                in_version("c", "v.number"),
                in_version("m", "v.number"),
            ),
            &[repository.into(), version.into()],
            &mut |r| {
                tree.add(
                    &r.string(0)?,
                    Leaf {
                        pool_path: r.string(1)?,
                        size: u64::try_from(r.i64(2)?).unwrap_or(0),
                        mtime: r.i64(3)?,
                    },
                )
            },
        )?;
        Ok(tree.finish())
    })
}
