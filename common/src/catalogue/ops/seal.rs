//! Sealing a version: its tree manifest ([`crate::tree_manifest`]), and with `publish.sign`
//! the manifest's signature, written to the pool and recorded as the version's metadata of
//! kinds `tree_manifest` and `tree_manifest_asc` at `.chantal/`. A commit seals its version in
//! its own transaction, so no version is ever served without its manifest; versions made
//! before manifests existed are sealed by [`seal_missing`].

use std::collections::HashMap;

use super::super::db::{self, Db, Store};
use super::in_version;
use crate::catalogue::model::{Seal, SealedFile};
use crate::error::{Error, Result};
use crate::rpm::MetadataKind;
use crate::tree_manifest::{ManifestFile, TreeManifest, MANIFEST_ASC_PATH, MANIFEST_PATH};
use crate::Sha256;

/// `'tree_manifest', 'tree_manifest_asc'`, for SQL.
pub(super) fn own_kinds() -> String {
    MetadataKind::sql_list(&[MetadataKind::TreeManifest, MetadataKind::TreeManifestAsc])
}

/// Closes the range of the latest version's manifest (and signature) at `next`: from now on
/// it covers that version alone.
pub(super) fn close_latest_manifest(db: &mut dyn Db, ctx: &str, r: i64, next: i64) -> Result<()> {
    db.execute(
        ctx,
        &format!(
            "UPDATE repository_metadata SET removed_in = $2
              WHERE repository_id = $1 AND removed_in IS NULL AND type IN ({})",
            own_kinds()
        ),
        &[r.into(), next.into()],
    )?;
    Ok(())
}

/// Every file of version `number` of repository `r` but the manifest's own, with its sha256
/// and size.
pub(super) fn version_files(
    db: &mut dyn Db,
    ctx: &str,
    r: i64,
    number: i64,
) -> Result<Vec<ManifestFile>> {
    let mut files = Vec::new();
    db.query(
        ctx,
        &format!(
            "SELECT c.location_href, p.sha256, b.size
               FROM repository_content c
               JOIN packages p ON p.id = c.package_id JOIN blobs b ON b.sha256 = p.sha256
              WHERE c.repository_id = $1 AND {}
             UNION ALL
             SELECT m.location_href, m.blob_sha256, b.size
               FROM repository_metadata m JOIN blobs b ON b.sha256 = m.blob_sha256
              WHERE m.repository_id = $1 AND {} AND m.type NOT IN ({})",
            in_version("c", "$2"),
            in_version("m", "$2"),
            own_kinds(),
        ),
        &[r.into(), number.into()],
        &mut |row| {
            files.push(ManifestFile {
                path: row.string(0)?,
                sha256: row.sha256(1)?,
                size: u64::try_from(row.i64(2)?).unwrap_or(0),
            });
            Ok(())
        },
    )?;
    Ok(files)
}

/// Writes the manifest of version `number` (and its signature) to the pool and records them
/// as the version's; `open` leaves their range open (the latest version: the next commit
/// closes it), otherwise it covers this version alone. The placed files are pushed to
/// `placed`, to be settled once the transaction has committed. Returns the tree id.
#[allow(clippy::too_many_arguments)]
pub(super) fn seal_in(
    db: &mut dyn Db,
    ctx: &str,
    r: i64,
    repository: &str,
    number: i64,
    upstream_repomd: Option<Sha256>,
    seal: &Seal<'_>,
    open: bool,
    placed: &mut Vec<SealedFile>,
) -> Result<Sha256> {
    let files = version_files(db, ctx, r, number)?;
    let created: i64 = db.one(
        ctx,
        &format!(
            "SELECT {} FROM repository_versions WHERE repository_id = $1 AND number = $2",
            db.dialect().epoch_seconds("created_at")
        ),
        &[r.into(), number.into()],
        |row| row.i64(0),
    )?;
    let bytes = TreeManifest::new(repository, number, created, upstream_repomd, files).to_bytes();
    let manifest = (seal.write)(&bytes, "manifest.json")?;
    let tree_id = manifest.blob.sha256.clone();
    let mut rows = vec![(MetadataKind::TreeManifest, MANIFEST_PATH, manifest)];
    if let Some(sign) = seal.sign {
        let asc = sign(&rows[0].2.path, &bytes).map_err(|e| Error::Seal {
            repository: repository.to_string(),
            version: number,
            reason: e.to_string(),
        })?;
        let asc = (seal.write)(&asc, "manifest.json.asc")?;
        rows.push((MetadataKind::TreeManifestAsc, MANIFEST_ASC_PATH, asc));
    }
    let blobs: Vec<_> = rows
        .iter()
        .map(|(_, _, p)| (p.blob.clone(), None))
        .collect();
    super::blobs::insert_blob_rows(db, ctx, &blobs)?;
    let end = if open { None } else { Some(number + 1) };
    for (kind, href, p) in &rows {
        db.execute(
            ctx,
            "INSERT INTO repository_metadata
                 (repository_id, type, blob_sha256, location_href, added_in, removed_in)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                r.into(),
                kind.as_str().into(),
                (&p.blob.sha256).into(),
                (*href).into(),
                number.into(),
                end.into(),
            ],
        )?;
    }
    placed.extend(rows.into_iter().map(|(_, _, p)| p));
    Ok(tree_id)
}

/// Seals every version of the repository that has no manifest (made before manifests
/// existed), one transaction each; returns how many. Their upstream repomd.xml is the one the
/// sync that made them read.
pub fn seal_missing<S: Store>(
    s: &S,
    repository_id: i64,
    repository: &str,
    seal: &Seal<'_>,
) -> Result<u64> {
    let ctx = format!("sealing the older versions of {repository}");
    let pending: Vec<(i64, Option<Sha256>, bool)> = s.autocommit(|db| {
        db.all(
            &ctx,
            &format!(
                "SELECT v.number, h.repomd_sha256, r.latest_version
                   FROM repository_versions v
                   JOIN repositories r ON r.id = v.repository_id
                   LEFT JOIN sync_history h ON h.id = v.sync_id
                  WHERE v.repository_id = $1
                    AND NOT EXISTS (SELECT 1 FROM repository_metadata m
                                     WHERE m.repository_id = v.repository_id
                                       AND m.type = '{}' AND {})
                  ORDER BY v.number",
                MetadataKind::TreeManifest.as_str(),
                in_version("m", "v.number")
            ),
            &[repository_id.into()],
            |row| {
                let upstream = row.opt_string(1)?.and_then(|s| Sha256::parse(&s).ok());
                let number = row.i64(0)?;
                Ok((number, upstream, row.opt_i64(2)? == Some(number)))
            },
        )
    })?;
    let mut sealed = 0;
    for (number, upstream, latest) in pending {
        let mut placed = Vec::new();
        db::write(s, &ctx, |db| {
            seal_in(
                db,
                &ctx,
                repository_id,
                repository,
                number,
                upstream,
                seal,
                latest,
                &mut placed,
            )
        })?;
        for p in placed {
            (p.settle)()?;
        }
        sealed += 1;
    }
    Ok(sealed)
}

/// The tree id of each version of `repository` that has one.
pub fn tree_ids<S: Store>(s: &S, repository: &str) -> Result<HashMap<i64, Sha256>> {
    s.autocommit(|db| {
        let rows = db.all(
            &format!("reading the tree ids of {repository}"),
            &format!(
                "SELECT v.number, m.blob_sha256
                   FROM repositories r
                   JOIN repository_versions v ON v.repository_id = r.id
                   JOIN repository_metadata m ON m.repository_id = r.id AND m.type = '{}'
                    AND {}
                  WHERE r.name = $1",
                MetadataKind::TreeManifest.as_str(),
                in_version("m", "v.number")
            ),
            &[repository.into()],
            |row| Ok((row.i64(0)?, row.sha256(1)?)),
        )?;
        Ok(rows.into_iter().collect())
    })
}
