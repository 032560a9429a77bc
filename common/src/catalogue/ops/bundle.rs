//! Air-gap bundles ([`crate::bundle`]): reading a version's rows in portable form, and the one
//! transaction that imports a bundle's versions, snapshots and environment pointers.

use super::super::db::{self, Kind, Store, Val};
use super::commit::{apply_version, lock_repository, switch_latest, Applied};
use super::environments::promote_in;
use super::{in_version, seal};
use crate::bundle::VersionRows;
use crate::catalogue::model::{
    ImportInput, ImportReport, NewMetadata, NewPackage, PromoteInput, PromoteTarget,
};
use crate::error::{Error, Result};
use crate::rpm::MetadataKind;
use crate::Sha256;

/// A version's rows in portable form, and how many of its packages are on demand (not in the
/// pool yet).
pub fn version_rows<S: Store>(s: &S, repository: &str, version: i64) -> Result<(VersionRows, u64)> {
    let ctx = format!("reading the rows of version {version} of {repository}");
    db::read(s, &ctx, |db| {
        let d = db.dialect();
        let order = d.collate_bytes();
        let head = db.opt(
            &ctx,
            &format!(
                "SELECT r.id, {}, v.repomd_revision FROM repositories r
                   JOIN repository_versions v ON v.repository_id = r.id
                  WHERE r.name = $1 AND v.number = $2",
                d.epoch_seconds("v.created_at")
            ),
            &[repository.into(), version.into()],
            |r| Ok((r.i64(0)?, r.i64(1)?, r.opt_string(2)?)),
        )?;
        let Some((r, created, repomd_revision)) = head else {
            return Err(Error::Invalid(format!(
                "{repository} has no version {version}"
            )));
        };
        let p = [Val::I64(r), Val::I64(version)];
        let content = db.all(
            &ctx,
            &format!(
                "SELECT p.sha256, c.location_href FROM repository_content c
                   JOIN packages p ON p.id = c.package_id
                  WHERE c.repository_id = $1 AND {}
                  ORDER BY c.location_href{order}",
                in_version("c", "$2")
            ),
            &p,
            |row| Ok((row.sha256(0)?, row.string(1)?)),
        )?;
        let metadata = db.all(
            &ctx,
            &format!(
                "SELECT m.type, m.blob_sha256, m.location_href FROM repository_metadata m
                  WHERE m.repository_id = $1 AND {}
                  ORDER BY m.location_href{order}, m.type",
                in_version("m", "$2")
            ),
            &p,
            |row| Ok((row.string(0)?, row.sha256(1)?, row.string(2)?)),
        )?;
        let mut blobs = db.all(
            &ctx,
            &format!(
                "SELECT b.sha256, b.size, b.path FROM repository_content c
                   JOIN packages p ON p.id = c.package_id JOIN blobs b ON b.sha256 = p.sha256
                  WHERE c.repository_id = $1 AND {}
                 UNION
                 SELECT b.sha256, b.size, b.path FROM repository_metadata m
                   JOIN blobs b ON b.sha256 = m.blob_sha256
                  WHERE m.repository_id = $1 AND {}",
                in_version("c", "$2"),
                in_version("m", "$2")
            ),
            &p,
            |row| {
                let path = row.string(2)?;
                // `sha256/ab/cd/<hex>_<file name>`: the name is what the importer's pool
                // calls it too.
                let name = path
                    .rsplit('/')
                    .next()
                    .and_then(|f| f.split_once('_'))
                    .map(|(_, n)| n.to_string())
                    .unwrap_or_else(|| "blob".to_string());
                Ok((
                    row.sha256(0)?,
                    u64::try_from(row.i64(1)?).unwrap_or(0),
                    name,
                ))
            },
        )?;
        blobs.sort();
        let absent = db.one(
            &ctx,
            &format!(
                "SELECT count(*) FROM repository_content c
                   JOIN packages p ON p.id = c.package_id
                   JOIN absent_blobs a ON a.sha256 = p.sha256
                  WHERE c.repository_id = $1 AND {}",
                in_version("c", "$2")
            ),
            &p,
            |row| row.i64(0),
        )?;
        Ok((
            VersionRows {
                repository: repository.to_string(),
                version,
                created,
                repomd_revision,
                content,
                metadata,
                blobs,
            },
            u64::try_from(absent).unwrap_or(0),
        ))
    })
}

/// Streams the package rows of `sha256s` (those the catalogue has) to `f`.
pub fn for_each_package<S: Store>(
    s: &S,
    sha256s: &[Sha256],
    mut f: impl FnMut(NewPackage) -> Result<()>,
) -> Result<()> {
    let ctx = "reading package rows";
    db::read(s, ctx, |db| {
        db.temp_table(ctx, "wanted_packages", &[("sha256", Kind::Text)], None)?;
        db.bulk_insert(
            ctx,
            "wanted_packages",
            &[("sha256", Kind::Text)],
            db::Conflict::None,
            &mut |sink| {
                for sha in sha256s {
                    sink.row(&[sha.into()])?;
                }
                Ok(())
            },
        )?;
        db.query(
            ctx,
            "SELECT p.sha256, p.name, p.epoch, p.version, p.release, p.arch, p.checksum_type,
                    p.checksum, p.size_package, p.size_installed, p.size_archive, p.time_file,
                    p.time_build, p.sourcerpm, p.primary_xml, p.filelists_xml, p.other_xml
               FROM packages p WHERE p.sha256 IN (SELECT sha256 FROM wanted_packages)
              ORDER BY p.sha256",
            &[],
            &mut |r| {
                f(NewPackage {
                    sha256: r.sha256(0)?,
                    nevra: super::nevra(r, 1)?,
                    checksum_type: r.string(6)?,
                    checksum: r.string(7)?,
                    size_package: r.i64(8)?,
                    size_installed: r.opt_i64(9)?,
                    size_archive: r.opt_i64(10)?,
                    time_file: r.opt_i64(11)?,
                    time_build: r.opt_i64(12)?,
                    sourcerpm: r.opt_string(13)?,
                    primary_xml: r.string(14)?,
                    filelists_xml: r.opt_string(15)?,
                    other_xml: r.opt_string(16)?,
                })
            },
        )
    })
}

/// Commits a bundle's versions, snapshots and environment pointers in one transaction: all
/// of them, or (any check failing) none. A version already here with the same tree, a
/// snapshot already naming it, an environment already pointing there: left as they are.
pub fn import_versions<S: Store>(s: &S, input: &ImportInput<'_>) -> Result<ImportReport> {
    let ctx = |what: &str| format!("importing the bundle: {what}");
    db::write(s, &ctx("begin"), |db| {
        let mut report = ImportReport::default();
        for v in &input.versions {
            let rows = v.rows;
            let (repo, number) = (rows.repository.as_str(), rows.version);
            let ctx = |what: &str| format!("importing version {number} of {repo}: {what}");
            let r: i64 = db
                .opt(
                    &ctx("finding the repository"),
                    "SELECT id FROM repositories WHERE name = $1",
                    &[repo.into()],
                    |row| row.i64(0),
                )?
                .ok_or_else(|| Error::Invalid(format!("{repo} is not in the catalogue")))?;
            lock_repository(db, &ctx("locking the repository row"), r)?;
            let here = db.opt(
                &ctx("reading the tree id"),
                &format!(
                    "SELECT m.blob_sha256 FROM repository_versions v
                       LEFT JOIN repository_metadata m
                         ON m.repository_id = v.repository_id AND m.type = '{}'
                        AND {}
                      WHERE v.repository_id = $1 AND v.number = $2",
                    MetadataKind::TreeManifest.as_str(),
                    in_version("m", "v.number")
                ),
                &[r.into(), number.into()],
                |row| row.opt_string(0),
            )?;
            match here {
                Some(Some(id)) if id == v.tree_id.as_str() => {
                    report.present.push((repo.to_string(), number));
                }
                Some(id) => {
                    return Err(Error::Invalid(format!(
                        "{repo} has a version {number} of its own here (tree id {}), not the bundle's ({}): refusing to import",
                        id.as_deref().unwrap_or("none"),
                        v.tree_id
                    )))
                }
                None => {
                    import_one(db, &ctx, r, v)?;
                    report.imported.push((repo.to_string(), number));
                }
            }
            let snapshot = &v.snapshot;
            let named = db.opt(
                &ctx("reading the snapshot"),
                "SELECT version FROM snapshots WHERE repository_id = $1 AND name = $2",
                &[r.into(), snapshot.name.as_str().into()],
                |row| row.i64(0),
            )?;
            match named {
                Some(n) if n == number => {}
                Some(n) => {
                    return Err(Error::Invalid(format!(
                        "{repo} has a snapshot {} here already, of version {n}, not {number}: refusing to import",
                        snapshot.name
                    )))
                }
                None => {
                    let created = chrono::DateTime::from_timestamp(snapshot.created, 0)
                        .unwrap_or_default();
                    db.execute(
                        &ctx("naming the snapshot"),
                        "INSERT INTO snapshots (repository_id, name, version, description, created_at)
                         VALUES ($1, $2, $3, $4, $5)",
                        &[
                            r.into(),
                            snapshot.name.as_str().into(),
                            number.into(),
                            snapshot.description.as_deref().into(),
                            created.into(),
                        ],
                    )?;
                    report.snapshots.push((repo.to_string(), snapshot.name.clone()));
                }
            }
            db.notify(&ctx("notifying"), &format!("{repo} {number}"))?;
        }
        // Environments: one promotion per (environment, snapshot name), of the repositories
        // not pointing there already.
        let mut moves: std::collections::BTreeMap<(&str, &str), Vec<&str>> = Default::default();
        for (env, repo, snapshot) in &input.environments {
            let already = db.opt(
                &ctx("reading environments"),
                "SELECT 1 FROM environments e
                   JOIN repositories r ON r.id = e.repository_id
                   JOIN snapshots s ON s.id = e.snapshot_id
                  WHERE e.environment = $1 AND r.name = $2 AND s.name = $3",
                &[
                    env.as_str().into(),
                    repo.as_str().into(),
                    snapshot.as_str().into(),
                ],
                |_| Ok(()),
            )?;
            if already.is_none() {
                moves
                    .entry((env.as_str(), snapshot.as_str()))
                    .or_default()
                    .push(repo.as_str());
            }
        }
        for ((env, snapshot), repositories) in moves {
            let p = promote_in(
                db,
                &ctx("moving environments"),
                PromoteInput {
                    environment: env,
                    target: PromoteTarget::Snapshot(snapshot),
                    repositories: &repositories,
                    exact: false,
                    set_by: input.set_by,
                },
            )?;
            report.promotions.push(p);
        }
        Ok(report)
    })
}

/// Version `v.rows.version` of repository `r`, which has no such version yet: its ranges,
/// its row, latest moved to it; then checked against its manifest.
fn import_one(
    db: &mut dyn db::Db,
    ctx: &dyn Fn(&str) -> String,
    r: i64,
    v: &crate::catalogue::model::ImportVersion<'_>,
) -> Result<()> {
    let rows = v.rows;
    let (repo, number) = (rows.repository.as_str(), rows.version);
    let (latest, max): (Option<i64>, i64) = db.one(
        &ctx("numbering"),
        "SELECT r.latest_version, coalesce((SELECT max(number) FROM repository_versions
                                             WHERE repository_id = r.id), 0)
           FROM repositories r WHERE r.id = $1",
        &[r.into()],
        |row| Ok((row.opt_i64(0)?, row.i64(1)?)),
    )?;
    if max >= number {
        return Err(Error::Invalid(format!(
            "{repo}: the bundle's version {number} is older than version {max} here: import bundles in the order they were made"
        )));
    }
    // Before the ranges: the bundle's own manifest rows come in with the repodata.
    seal::close_latest_manifest(db, &ctx("closing the previous manifest"), r, number)?;
    let metadata: Vec<NewMetadata> = rows
        .metadata
        .iter()
        .map(|(kind, sha, href)| NewMetadata {
            kind: MetadataKind::parse(kind),
            blob_sha256: sha.clone(),
            location_href: href.clone(),
        })
        .collect();
    let Applied { count, size, .. } = apply_version(db, ctx, r, number, &rows.content, &metadata)?;
    let created = chrono::DateTime::from_timestamp(rows.created, 0).unwrap_or_default();
    db.execute(
        &ctx("recording the version"),
        "INSERT INTO repository_versions
             (repository_id, number, created_at, package_count, total_size, repomd_revision)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            r.into(),
            number.into(),
            created.into(),
            count.into(),
            size.into(),
            rows.repomd_revision.as_deref().into(),
        ],
    )?;
    switch_latest(db, ctx, r, latest, number)?;
    // What the rows made must be what the signed manifest lists, file for file.
    let mut files = seal::version_files(db, &ctx("checking the tree"), r, number)?;
    for f in &mut files {
        if let std::borrow::Cow::Owned(p) = crate::rpm::href::normalize(&f.path) {
            f.path = p;
        }
    }
    files.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    if files != v.manifest.files {
        let differs = files
            .iter()
            .zip(&v.manifest.files)
            .find(|(a, b)| a != b)
            .map_or_else(
                || {
                    format!(
                        "{} files, the manifest lists {}",
                        files.len(),
                        v.manifest.files.len()
                    )
                },
                |(a, _)| format!("{} differs", a.path),
            );
        return Err(Error::Invalid(format!(
            "{repo}: the bundle's rows of version {number} do not make the tree its manifest lists ({differs}): refusing to import"
        )));
    }
    Ok(())
}
