//! Publishing: package rows (shared, immutable) and the one transaction that commits a new
//! version of a repository — content and repodata ranges, the version row, the latest
//! pointer, the retirement stamp of the version it replaces, and the readers' notification.

use super::super::db::{self, BlobLock, Conflict, Db, Done, Kind, Mode, Store, Val};
use super::seal;
use crate::catalogue::model::{CommitInput, CommitResult, NewMetadata, NewPackage};
use crate::error::{Error, Result};
use crate::tree::{check_layout, Role};

const PACKAGE_COLUMNS: &[(&str, Kind)] = &[
    ("sha256", Kind::Text),
    ("name", Kind::Text),
    ("epoch", Kind::Int8),
    ("version", Kind::Text),
    ("release", Kind::Text),
    ("arch", Kind::Text),
    ("checksum_type", Kind::Text),
    ("checksum", Kind::Text),
    ("size_package", Kind::Int8),
    ("size_installed", Kind::Int8),
    ("size_archive", Kind::Int8),
    ("time_file", Kind::Int8),
    ("time_build", Kind::Int8),
    ("sourcerpm", Kind::Text),
    ("primary_xml", Kind::Text),
    ("filelists_xml", Kind::Text),
    ("other_xml", Kind::Text),
];

/// Creates package rows (with their fragments) for blobs now in the pool; rows that exist
/// already are left as they are. Read lazily so fragments need not sit in memory. Package
/// rows are shared and immutable: creating them ahead of a version commit is harmless.
pub fn insert_packages<S: Store>(
    s: &S,
    packages: &mut dyn Iterator<Item = Result<NewPackage>>,
) -> Result<u64> {
    let ctx = "creating package rows";
    db::write(s, ctx, |db| {
        db.bulk_insert(
            ctx,
            "packages",
            PACKAGE_COLUMNS,
            Conflict::Ignore { key: "sha256" },
            &mut |sink| {
                for p in &mut *packages {
                    let p = p?;
                    sink.row(&[
                        (&p.sha256).into(),
                        Val::Str(&p.nevra.name),
                        Val::I64(p.nevra.epoch),
                        Val::Str(&p.nevra.version),
                        Val::Str(&p.nevra.release),
                        Val::Str(&p.nevra.arch),
                        Val::Str(&p.checksum_type),
                        Val::Str(&p.checksum),
                        Val::I64(p.size_package),
                        Val::OptI64(p.size_installed),
                        Val::OptI64(p.size_archive),
                        Val::OptI64(p.time_file),
                        Val::OptI64(p.time_build),
                        (&p.sourcerpm).into(),
                        Val::Str(&p.primary_xml),
                        (&p.filelists_xml).into(),
                        (&p.other_xml).into(),
                    ])?;
                }
                Ok(())
            },
        )
    })
}

/// Publishes a new version in one transaction. The version's paths are checked as a whole
/// first ([`check_layout`]): a tree that cannot be served is never published. When the
/// content and repodata equal the latest version's, nothing is written and the result has no
/// version.
pub fn commit_version<S: Store>(s: &S, input: CommitInput<'_>) -> Result<CommitResult> {
    let repo = input.repository;
    check_layout(
        input
            .content
            .iter()
            .map(|(_, href)| (href.as_str(), Role::Package))
            .chain(
                input
                    .metadata
                    .iter()
                    .map(|m| (m.location_href.as_str(), Role::Repodata)),
            ),
    )
    .map_err(|message| Error::Layout {
        repository: repo.to_string(),
        message,
    })?;
    let ctx = |what: &str| format!("committing {repo}: {what}");
    let mut placed = Vec::new();
    let result = s.transaction(&ctx("begin"), Mode::Write, |db| {
        let r = input.repository_id;
        // The seal records its blobs: the writers' lock on `blobs` is taken first, in the
        // order a cleanup takes its own (blobs, then rows), so the two never wait on each
        // other in a circle.
        db.lock_blobs(&ctx("locking blobs"), BlobLock::Writer)?;
        let latest = lock_repository(db, &ctx("locking the repository row"), r)?;
        let next: i64 = db.one(
            &ctx("numbering the version"),
            "SELECT coalesce(max(number), 0) + 1 FROM repository_versions WHERE repository_id = $1",
            &[r.into()],
            |row| row.i64(0),
        )?;
        let Applied {
            changed,
            counts,
            count,
            size,
        } = apply_version(db, &ctx, r, next, input.content, input.metadata)?;
        let (added, removed) = counts;
        let unchanged = count - added;
        if !changed && latest.is_some() {
            return Ok(Done::Rollback(CommitResult {
                version: None,
                added: 0,
                removed: 0,
                unchanged,
            }));
        }
        db.execute(
            &ctx("recording the version"),
            "INSERT INTO repository_versions
                 (repository_id, number, sync_id, package_count, total_size, repomd_revision)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                r.into(),
                next.into(),
                input.sync_id.into(),
                count.into(),
                size.into(),
                input.repomd_revision.into(),
            ],
        )?;
        switch_latest(db, &ctx, r, latest, next)?;
        seal::close_latest_manifest(db, &ctx("closing the previous manifest"), r, next)?;
        let sealing = std::time::Instant::now();
        let tree_id = seal::seal_in(
            db,
            &ctx("sealing"),
            r,
            repo,
            next,
            input.upstream_repomd.cloned(),
            input.seal,
            true,
            &mut placed,
        )?;
        tracing::debug!(
            "{repo}: version {next} sealed in {:.3} s, tree id {tree_id}",
            sealing.elapsed().as_secs_f64()
        );
        db.notify(&ctx("notifying"), &format!("{repo} {next}"))?;
        Ok(Done::Commit(CommitResult {
            version: Some(next),
            added,
            removed,
            unchanged,
        }))
    })?;
    for p in placed {
        (p.settle)()?;
    }
    Ok(result)
}

/// Locks the repository's row for the transaction (one version commit at a time) and returns
/// its latest version.
pub(super) fn lock_repository(db: &mut dyn Db, ctx: &str, r: i64) -> Result<Option<i64>> {
    db.one(
        ctx,
        &format!(
            "SELECT latest_version FROM repositories WHERE id = $1{}",
            db.dialect().for_update()
        ),
        &[r.into()],
        |row| row.opt_i64(0),
    )
}

/// Makes `next` the latest version. The previous latest is stamped with when it stopped
/// being it: chantal-fs serves it for a grace period more, and cleanup must keep it that long.
pub(super) fn switch_latest(
    db: &mut dyn Db,
    ctx: &dyn Fn(&str) -> String,
    r: i64,
    previous: Option<i64>,
    next: i64,
) -> Result<()> {
    let now = db.dialect().now();
    db.execute(
        &ctx("retiring the previous version"),
        &format!(
            "UPDATE repository_versions SET retired_at = {now}
              WHERE repository_id = $1 AND number = $2"
        ),
        &[r.into(), previous.into()],
    )?;
    db.execute(
        &ctx("switching latest"),
        "UPDATE repositories SET latest_version = $2 WHERE id = $1",
        &[r.into(), next.into()],
    )?;
    Ok(())
}

/// What [`apply_version`] did.
pub(super) struct Applied {
    /// Whether the content or repodata differ from the latest version's.
    pub changed: bool,
    /// Packages added and removed.
    pub counts: (i64, i64),
    /// Packages of the new version, and their bytes.
    pub count: i64,
    pub size: i64,
}

/// Stages the new version's content and repodata, checks every package has its row, and
/// writes the ranges that make version `next` hold exactly them.
pub(super) fn apply_version(
    db: &mut dyn Db,
    ctx: &dyn Fn(&str) -> String,
    r: i64,
    next: i64,
    content: &[(crate::Sha256, String)],
    metadata: &[NewMetadata],
) -> Result<Applied> {
    stage(db, &ctx("staging"), content, metadata)?;
    let missing: i64 = db.one(
        &ctx("checking package rows"),
        "SELECT count(*) FROM incoming_content c
          WHERE NOT EXISTS (SELECT 1 FROM packages p WHERE p.sha256 = c.sha256)",
        &[],
        |row| row.i64(0),
    )?;
    if missing > 0 {
        return Err(Error::Db {
            context: ctx("checking package rows"),
            reason: format!("{missing} packages of the new version have no package row"),
        });
    }
    let (changed, counts) = apply_ranges(db, ctx, r, next)?;
    let (count, size) = db.one(
        &ctx("counting"),
        "SELECT count(*), CAST(coalesce(sum(p.size_package), 0) AS BIGINT)
           FROM repository_content c JOIN packages p ON p.id = c.package_id
          WHERE c.repository_id = $1 AND c.removed_in IS NULL",
        &[r.into()],
        |row| Ok((row.i64(0)?, row.i64(1)?)),
    )?;
    Ok(Applied {
        changed,
        counts,
        count,
        size,
    })
}

/// The new version's content and repodata as temporary tables: `incoming_content` (sha256,
/// href), `incoming_metadata` (type, sha256, href) and `incoming_ids` (package id, href).
pub(super) fn stage(
    db: &mut dyn Db,
    ctx: &str,
    content: &[(crate::Sha256, String)],
    metadata: &[NewMetadata],
) -> Result<()> {
    let columns = [("sha256", Kind::Text), ("location_href", Kind::Text)];
    db.temp_table(ctx, "incoming_content", &columns, None)?;
    db.bulk_insert(
        ctx,
        "incoming_content",
        &columns,
        Conflict::None,
        &mut |sink| {
            for (sha, href) in content {
                sink.row(&[sha.into(), Val::Str(href)])?;
            }
            Ok(())
        },
    )?;
    let columns = [
        ("type", Kind::Text),
        ("blob_sha256", Kind::Text),
        ("location_href", Kind::Text),
    ];
    db.temp_table(ctx, "incoming_metadata", &columns, None)?;
    db.bulk_insert(
        ctx,
        "incoming_metadata",
        &columns,
        Conflict::None,
        &mut |sink| {
            for m in metadata {
                sink.row(&[
                    Val::Str(m.kind.as_str()),
                    (&m.blob_sha256).into(),
                    Val::Str(&m.location_href),
                ])?;
            }
            Ok(())
        },
    )?;
    let ids = [("package_id", Kind::Int8), ("location_href", Kind::Text)];
    db.temp_table(ctx, "incoming_ids", &ids, Some("package_id, location_href"))?;
    db.execute(
        ctx,
        "INSERT INTO incoming_ids
             SELECT DISTINCT p.id, c.location_href
               FROM incoming_content c JOIN packages p ON p.sha256 = c.sha256",
        &[],
    )?;
    db.analyze(ctx, "incoming_ids")
}

/// Retires the latest version's content and repodata rows that the new version lacks and
/// adds those it brings, as ranges starting at `next`. Returns whether anything changed, and
/// the packages added and removed.
pub(super) fn apply_ranges(
    db: &mut dyn Db,
    ctx: &dyn Fn(&str) -> String,
    r: i64,
    next: i64,
) -> Result<(bool, (i64, i64))> {
    let p = [Val::I64(r), Val::I64(next)];
    let removed = db.execute(
        &ctx("retiring content"),
        "UPDATE repository_content SET removed_in = $2
          WHERE repository_id = $1 AND removed_in IS NULL
            AND NOT EXISTS (SELECT 1 FROM incoming_ids i
                             WHERE i.package_id = repository_content.package_id
                               AND i.location_href = repository_content.location_href)",
        &p,
    )?;
    let added = db.execute(
        &ctx("adding content"),
        "INSERT INTO repository_content (repository_id, package_id, location_href, added_in)
         SELECT $1, i.package_id, i.location_href, $2 FROM incoming_ids i
          WHERE NOT EXISTS (SELECT 1 FROM repository_content rc
                             WHERE rc.repository_id = $1 AND rc.removed_in IS NULL
                               AND rc.package_id = i.package_id
                               AND rc.location_href = i.location_href)",
        &p,
    )?;
    // The manifest is not repodata: a version whose repodata and content are the latest's
    // is no new version, whatever its manifest would say.
    let meta_removed = db.execute(
        &ctx("retiring repodata"),
        &format!(
            "UPDATE repository_metadata SET removed_in = $2
          WHERE repository_id = $1 AND removed_in IS NULL
            AND type NOT IN ({})
            AND NOT EXISTS (SELECT 1 FROM incoming_metadata i
                             WHERE i.type = repository_metadata.type
                               AND i.blob_sha256 = repository_metadata.blob_sha256
                               AND i.location_href = repository_metadata.location_href)",
            seal::own_kinds()
        ),
        &p,
    )?;
    let meta_added = db.execute(
        &ctx("adding repodata"),
        "INSERT INTO repository_metadata (repository_id, type, blob_sha256, location_href, added_in)
         SELECT $1, i.type, i.blob_sha256, i.location_href, $2 FROM incoming_metadata i
          WHERE NOT EXISTS (SELECT 1 FROM repository_metadata m
                             WHERE m.repository_id = $1 AND m.removed_in IS NULL
                               AND m.type = i.type AND m.blob_sha256 = i.blob_sha256
                               AND m.location_href = i.location_href)",
        &p,
    )?;
    let changed = added + removed + meta_added + meta_removed > 0;
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    Ok((changed, (count(added), count(removed))))
}
