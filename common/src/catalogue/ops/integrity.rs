//! What `chantal pool verify` and `chantal status` read: the pool's blobs (all, or those a
//! repository's versions reference), the pool's totals, and which versions of which
//! repositories reference a blob (to say what a damaged file breaks, and where to fetch it
//! again).

use super::super::db::{self, Store};
use super::blobs::wanted;
use crate::catalogue::model::{BlobRecord, BlobUse, Presence};
use crate::error::Result;
use crate::Sha256;

/// Files and bytes the pool holds, by its blob rows (on-demand blobs not fetched yet are not
/// in the pool).
pub fn pool_totals<S: Store>(s: &S) -> Result<(i64, i64)> {
    s.autocommit(|db| {
        db.one(
            "counting the pool's files",
            "SELECT count(*), CAST(coalesce(sum(size), 0) AS BIGINT) FROM blobs b
              WHERE NOT EXISTS (SELECT 1 FROM absent_blobs a WHERE a.sha256 = b.sha256)",
            &[],
            |r| Ok((r.i64(0)?, r.i64(1)?)),
        )
    })
}

/// Every blob the pool holds, or those some version of `repository` references (its
/// packages and repodata), ordered by path: the order of the pool's directories. With
/// `absent`, the on-demand blobs the pool does not hold yet instead.
pub fn pool_blobs<S: Store>(
    s: &S,
    repository: Option<&str>,
    absent: bool,
) -> Result<Vec<BlobRecord>> {
    let ctx = match (repository, absent) {
        (Some(r), false) => format!("listing the pool files of {r}"),
        (Some(r), true) => format!("listing the on-demand files {r} lacks"),
        (None, false) => "listing the pool files".to_string(),
        (None, true) => "listing the on-demand files the pool lacks".to_string(),
    };
    let read = |r: &dyn db::Row| {
        Ok(BlobRecord {
            sha256: r.sha256(0)?,
            size: r.i64(1)?,
            path: r.string(2)?,
        })
    };
    let held = if absent { "EXISTS" } else { "NOT EXISTS" };
    let held = format!("{held} (SELECT 1 FROM absent_blobs a WHERE a.sha256 = b.sha256)");
    s.autocommit(|db| match repository {
        None => db.all(
            &ctx,
            &format!("SELECT sha256, size, path FROM blobs b WHERE {held} ORDER BY path"),
            &[],
            read,
        ),
        Some(name) => db.all(
            &ctx,
            &format!(
                "SELECT b.sha256, b.size, b.path FROM blobs b
                  WHERE b.sha256 IN (
                        SELECT p.sha256 FROM repository_content c
                          JOIN repositories r ON r.id = c.repository_id
                          JOIN packages p ON p.id = c.package_id
                         WHERE r.name = $1
                        UNION
                        SELECT m.blob_sha256 FROM repository_metadata m
                          JOIN repositories r ON r.id = m.repository_id
                         WHERE r.name = $1)
                    AND {held}
                  ORDER BY b.path"
            ),
            &[name.into()],
            read,
        ),
    })
}

/// Of one version's packages, those the pool holds and those it does not hold yet
/// (on-demand packages no client has read), with their bytes.
pub fn version_presence<S: Store>(s: &S, repository: &str, version: i64) -> Result<Presence> {
    let sum = |what: &str| format!("CAST(coalesce(sum({what}), 0) AS BIGINT)");
    s.autocommit(|db| {
        db.one(
            &format!("counting the local packages of version {version} of {repository}"),
            &format!(
                "SELECT {}, {}, {}, {}
                   FROM repository_content c
                   JOIN repositories r ON r.id = c.repository_id
                   JOIN packages p ON p.id = c.package_id
                   LEFT JOIN absent_blobs a ON a.sha256 = p.sha256
                  WHERE r.name = $1 AND {}",
                sum("CASE WHEN a.sha256 IS NULL THEN 1 ELSE 0 END"),
                sum("CASE WHEN a.sha256 IS NULL THEN p.size_package ELSE 0 END"),
                sum("CASE WHEN a.sha256 IS NULL THEN 0 ELSE 1 END"),
                sum("CASE WHEN a.sha256 IS NULL THEN 0 ELSE p.size_package END"),
                super::in_version("c", "$2")
            ),
            &[repository.into(), version.into()],
            |r| {
                Ok(Presence {
                    local: r.i64(0)?,
                    local_bytes: r.i64(1)?,
                    absent: r.i64(2)?,
                    absent_bytes: r.i64(3)?,
                })
            },
        )
    })
}

/// Where each of `sha256s` is served: a row per repository range that holds it (package or
/// repodata file), by sha256, repository and first version.
pub fn blob_uses<S: Store>(s: &S, sha256s: &[&Sha256]) -> Result<Vec<BlobUse>> {
    let ctx = "looking up which versions reference damaged files";
    let hex: Vec<&str> = sha256s.iter().map(|s| s.as_str()).collect();
    db::read(s, ctx, |db| {
        wanted(db, ctx, &hex)?;
        db.all(
            ctx,
            "SELECT w.c, r.name, c.location_href, c.added_in, c.removed_in
               FROM wanted w
               JOIN packages p ON p.sha256 = w.c
               JOIN repository_content c ON c.package_id = p.id
               JOIN repositories r ON r.id = c.repository_id
             UNION ALL
             SELECT w.c, r.name, m.location_href, m.added_in, m.removed_in
               FROM wanted w
               JOIN repository_metadata m ON m.blob_sha256 = w.c
               JOIN repositories r ON r.id = m.repository_id
             ORDER BY 1, 2, 4",
            &[],
            |r| {
                Ok(BlobUse {
                    sha256: r.sha256(0)?,
                    repository: r.string(1)?,
                    href: r.string(2)?,
                    added_in: r.i64(3)?,
                    removed_in: r.opt_i64(4)?,
                })
            },
        )
    })
}
