//! Blob rows: which files the pool holds, which upstream checksums name them, and the
//! reservations that keep cleanup from collecting what a running sync reuses.

use std::collections::HashMap;

use super::super::db::{self, BlobLock, Conflict, Kind, Store, Val};
use crate::catalogue::model::StoredBlob;
use crate::catalogue::model::{BlobRecord, KnownBlob, NevraSize, SignatureRecord};
use crate::error::Result;
use crate::rpm::ChecksumType;
use crate::Sha256;

const BLOB_COLUMNS: &[(&str, Kind)] = &[
    ("sha256", Kind::Text),
    ("size", Kind::Int8),
    ("path", Kind::Text),
];

/// Records blobs now in the pool, with the upstream checksum each was verified against. A
/// blob recorded again counts as used now, so a cleanup cannot take it from under the sync
/// that brought it (see [`reserve_blobs`]).
pub fn record_blobs<S: Store>(
    s: &S,
    blobs: &[(StoredBlob, Option<(ChecksumType, String)>)],
) -> Result<()> {
    record_checked_blobs(s, blobs, &[])
}

/// [`record_blobs`], and in the same transaction what the files' signature checks found
/// ([`record_signatures`]' rows), each record naming one of `blobs`. A sync's downloads are
/// recorded so, batch by batch while the next files download, instead of all at its end.
pub fn record_checked_blobs<S: Store>(
    s: &S,
    blobs: &[(StoredBlob, Option<(ChecksumType, String)>)],
    signatures: &[SignatureRecord],
) -> Result<()> {
    if blobs.is_empty() {
        return Ok(());
    }
    let ctx = "recording blobs";
    db::write(s, ctx, |db| {
        insert_blob_rows(db, ctx, blobs)?;
        insert_signature_rows(db, ctx, &signatures.iter().collect::<Vec<_>>())?;
        // Those a fetcher or a `--download-missing` brought are absent no longer.
        if db
            .opt(ctx, "SELECT 1 FROM absent_blobs LIMIT 1", &[], |_| Ok(()))?
            .is_some()
        {
            let fetched: Vec<&str> = blobs.iter().map(|(b, _)| b.sha256.as_str()).collect();
            wanted(db, ctx, &fetched)?;
            db.execute(
                ctx,
                "DELETE FROM absent_blobs WHERE sha256 IN (SELECT c FROM wanted)",
                &[],
            )?;
        }
        record_checksums(db, blobs)
    })
}

/// Records blobs the pool does not hold yet (`download.policy: on_demand`): their rows, as
/// primary.xml gives size and sha256, and their `absent_blobs` rows. A blob recorded already
/// keeps its row; it is marked absent too, which is right when its file is missing, and
/// harmless when a writer placed it meanwhile (a reader finds the file, and the next
/// [`record_blobs`] of it clears the mark).
pub fn record_absent_blobs<S: Store>(
    s: &S,
    blobs: &[(StoredBlob, Option<(ChecksumType, String)>)],
) -> Result<()> {
    if blobs.is_empty() {
        return Ok(());
    }
    let ctx = "recording on-demand blobs";
    db::write(s, ctx, |db| {
        insert_blob_rows(db, ctx, blobs)?;
        db.bulk_insert(
            ctx,
            "absent_blobs",
            &[("sha256", Kind::Text)],
            Conflict::Ignore { key: "sha256" },
            &mut |sink| {
                for (b, _) in blobs {
                    sink.row(&[(&b.sha256).into()])?;
                }
                Ok(())
            },
        )?;
        record_checksums(db, blobs)
    })
}

/// The blobs' rows, each marked used now (with the blob table locked against cleanup).
pub(super) fn insert_blob_rows(
    db: &mut dyn db::Db,
    ctx: &str,
    blobs: &[(StoredBlob, Option<(ChecksumType, String)>)],
) -> Result<()> {
    db.lock_blobs(ctx, BlobLock::Writer)?;
    let set = format!("used_at = {}", db.dialect().now());
    db.bulk_insert(
        ctx,
        "blobs",
        BLOB_COLUMNS,
        Conflict::Update {
            key: "sha256",
            set: &set,
        },
        &mut |sink| {
            for (b, _) in blobs {
                let size = i64::try_from(b.size).unwrap_or(i64::MAX);
                sink.row(&[(&b.sha256).into(), Val::I64(size), Val::Str(&b.rel_path)])?;
            }
            Ok(())
        },
    )?;
    Ok(())
}

/// The upstream checksums (other than sha256) that name each blob.
fn record_checksums(
    db: &mut dyn db::Db,
    blobs: &[(StoredBlob, Option<(ChecksumType, String)>)],
) -> Result<()> {
    let other = |alt: &Option<(ChecksumType, String)>| {
        alt.as_ref()
            .is_some_and(|(k, _)| *k != ChecksumType::Sha256)
    };
    // Most upstreams list sha256 only: no staging table then (on PostgreSQL, a temporary
    // table created and dropped per adopted batch).
    if !blobs.iter().any(|(_, alt)| other(alt)) {
        return Ok(());
    }
    db.bulk_insert(
        "recording blob checksums",
        "blob_checksums",
        &[
            ("sha256", Kind::Text),
            ("checksum_type", Kind::Text),
            ("checksum", Kind::Text),
        ],
        Conflict::Ignore {
            key: "checksum_type, checksum",
        },
        &mut |sink| {
            for (b, alt) in blobs {
                if let Some((kind, value)) =
                    alt.as_ref().filter(|(k, _)| *k != ChecksumType::Sha256)
                {
                    sink.row(&[(&b.sha256).into(), Val::Str(kind.as_str()), Val::Str(value)])?;
                }
            }
            Ok(())
        },
    )?;
    Ok(())
}

/// Whether any blob is absent (on demand, not fetched yet): the common case, none, costs one
/// index probe.
pub fn any_absent<S: Store>(s: &S) -> Result<bool> {
    s.autocommit(|db| {
        Ok(db
            .opt(
                "looking for on-demand files",
                "SELECT 1 FROM absent_blobs LIMIT 1",
                &[],
                |_| Ok(()),
            )?
            .is_some())
    })
}

/// Records one blob that is now in the pool. Recording it twice is harmless.
pub fn record_blob<S: Store>(s: &S, blob: &StoredBlob) -> Result<()> {
    record_blobs(s, &[(blob.clone(), None)])
}

/// The recorded blob with this sha256, if any.
pub fn blob<S: Store>(s: &S, sha256: &Sha256) -> Result<Option<BlobRecord>> {
    s.autocommit(|db| {
        db.opt(
            &format!("reading blob {sha256}"),
            "SELECT sha256, size, path FROM blobs WHERE sha256 = $1",
            &[sha256.into()],
            |r| {
                Ok(BlobRecord {
                    sha256: r.sha256(0)?,
                    size: r.i64(1)?,
                    path: r.string(2)?,
                })
            },
        )
    })
}

/// Marks blobs a sync is about to reuse as used now, so that no cleanup collects them while
/// the sync runs, and returns those still recorded with whether each has a package row. A
/// blob missing from the answer was collected meanwhile: the sync fetches it again.
///
/// Cleanup decides what goes with the `blobs` table locked against writers; this waits for
/// such a batch and then sees its result, so a blob is either marked before cleanup looks at
/// it, or gone before the sync does.
pub fn reserve_blobs<S: Store>(s: &S, sha256s: &[&Sha256]) -> Result<HashMap<Sha256, bool>> {
    if sha256s.is_empty() {
        return Ok(HashMap::new());
    }
    let ctx = "reserving pool files for reuse";
    db::write(s, ctx, |db| {
        db.lock_blobs(ctx, BlobLock::Writer)?;
        wanted(db, ctx, sha256s)?;
        let now = db.dialect().now();
        // Rows locked in key order, as record_blobs writes them: two syncs never deadlock.
        db.query(
            ctx,
            &format!(
                "SELECT b.sha256 FROM blobs b JOIN wanted w ON w.c = b.sha256
                  ORDER BY b.sha256{}",
                db.dialect().for_update()
            ),
            &[],
            &mut |_| Ok(()),
        )?;
        db.execute(
            ctx,
            &format!("UPDATE blobs SET used_at = {now} WHERE sha256 IN (SELECT c FROM wanted)"),
            &[],
        )?;
        let found = db.all(
            ctx,
            "SELECT b.sha256, EXISTS (SELECT 1 FROM packages p WHERE p.sha256 = b.sha256)
               FROM blobs b JOIN wanted w ON w.c = b.sha256",
            &[],
            |r| Ok((r.sha256(0)?, r.boolean(1)?)),
        )?;
        Ok(found.into_iter().collect())
    })
}

/// A temporary table `wanted(c)` holding `values`.
pub(super) fn wanted<V: AsRef<str>>(db: &mut dyn db::Db, ctx: &str, values: &[V]) -> Result<()> {
    temp_values(db, ctx, "wanted", values)
}

/// A temporary table `table(c)` holding `values`.
fn temp_values<V: AsRef<str>>(
    db: &mut dyn db::Db,
    ctx: &str,
    table: &str,
    values: &[V],
) -> Result<()> {
    // No index: each join walks the table and probes the catalogue table's key, and indexing
    // 100,000 checksums cost SQLite as much time again as inserting them.
    db.temp_table(ctx, table, &[("c", Kind::Text)], None)?;
    db.bulk_insert(
        ctx,
        table,
        &[("c", Kind::Text)],
        Conflict::None,
        &mut |sink| {
            for v in values {
                sink.row(&[Val::Str(v.as_ref())])?;
            }
            Ok(())
        },
    )?;
    db.analyze(ctx, table)
}

/// For each upstream checksum of one algorithm, the blob the pool already holds, if any.
pub fn resolve_known<S: Store>(
    s: &S,
    kind: ChecksumType,
    checksums: &[&str],
) -> Result<HashMap<String, KnownBlob>> {
    let ctx = "looking up packages the pool already holds";
    db::read(s, ctx, |db| {
        wanted(db, ctx, checksums)?;
        let (sql, params): (&str, Vec<Val<'_>>) = if kind == ChecksumType::Sha256 {
            (
                "SELECT b.sha256, b.sha256, b.size, b.path,
                        EXISTS (SELECT 1 FROM packages p WHERE p.sha256 = b.sha256)
                   FROM wanted w JOIN blobs b ON b.sha256 = w.c",
                Vec::new(),
            )
        } else {
            (
                "SELECT x.checksum, b.sha256, b.size, b.path,
                        EXISTS (SELECT 1 FROM packages p WHERE p.sha256 = b.sha256)
                   FROM wanted w
                   JOIN blob_checksums x ON x.checksum_type = $1 AND x.checksum = w.c
                   JOIN blobs b ON b.sha256 = x.sha256",
                vec![Val::Str(kind.as_str())],
            )
        };
        let rows = db.all(ctx, sql, &params, |r| {
            Ok((
                r.string(0)?,
                KnownBlob {
                    sha256: r.sha256(1)?,
                    size: r.i64(2)?,
                    path: r.string(3)?,
                    has_package: r.boolean(4)?,
                },
            ))
        })?;
        Ok(rows.into_iter().collect())
    })
}

/// Pool blobs whose package has this NEVRA and size, for upstreams that list a file under a
/// checksum the catalogue has not seen: the caller verifies a candidate by hashing it.
/// Keys are [`NevraSize::key`].
pub fn candidates_by_nevra<S: Store>(
    s: &S,
    wanted: &[NevraSize],
) -> Result<Vec<(String, KnownBlob)>> {
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let ctx = "looking up pool files by name and version";
    let columns = [
        ("name", Kind::Text),
        ("epoch", Kind::Int8),
        ("version", Kind::Text),
        ("release", Kind::Text),
        ("arch", Kind::Text),
        ("size", Kind::Int8),
    ];
    db::read(s, ctx, |db| {
        db.temp_table(ctx, "wanted_nevras", &columns, None)?;
        db.bulk_insert(
            ctx,
            "wanted_nevras",
            &columns,
            Conflict::None,
            &mut |sink| {
                for w in wanted {
                    sink.row(&[
                        Val::Str(&w.nevra.name),
                        Val::I64(w.nevra.epoch),
                        Val::Str(&w.nevra.version),
                        Val::Str(&w.nevra.release),
                        Val::Str(&w.nevra.arch),
                        Val::I64(w.size),
                    ])?;
                }
                Ok(())
            },
        )?;
        db.analyze(ctx, "wanted_nevras")?;
        db.all(
            ctx,
            "SELECT p.name, p.epoch, p.version, p.release, p.arch, p.size_package,
                    b.sha256, b.size, b.path
               FROM wanted_nevras w
               JOIN packages p ON p.name = w.name AND p.arch = w.arch AND p.epoch = w.epoch
                              AND p.version = w.version AND p.release = w.release
                              AND p.size_package = w.size
               JOIN blobs b ON b.sha256 = p.sha256",
            &[],
            |r| {
                let key = NevraSize {
                    nevra: super::nevra(r, 0)?,
                    size: r.i64(5)?,
                }
                .key();
                Ok((
                    key,
                    KnownBlob {
                        sha256: r.sha256(6)?,
                        size: r.i64(7)?,
                        path: r.string(8)?,
                        has_package: true,
                    },
                ))
            },
        )
    })
}

/// Of `sha256s`, the blobs a signature by one of `fingerprints` was verified on.
pub fn verified_blobs<S: Store>(
    s: &S,
    sha256s: &[&Sha256],
    fingerprints: &[&str],
) -> Result<std::collections::HashSet<Sha256>> {
    if sha256s.is_empty() || fingerprints.is_empty() {
        return Ok(Default::default());
    }
    let ctx = "looking up packages whose signatures were verified";
    db::read(s, ctx, |db| {
        wanted(db, ctx, sha256s)?;
        temp_values(db, ctx, "trusted_keys", fingerprints)?;
        let rows = db.all(
            ctx,
            "SELECT DISTINCT v.blob_sha256 FROM wanted w
               JOIN blob_verifications v ON v.blob_sha256 = w.c
               JOIN trusted_keys t ON t.c = v.fingerprint",
            &[],
            |r| r.sha256(0),
        )?;
        Ok(rows.into_iter().collect())
    })
}

/// Records what signature checks found: each file's signature key ids, and the trusted key
/// whose signature verified on it. Files whose blob row is gone are skipped.
pub fn record_signatures<S: Store>(s: &S, checked: &[SignatureRecord]) -> Result<()> {
    if checked.is_empty() {
        return Ok(());
    }
    let ctx = "recording verified signatures";
    db::write(s, ctx, |db| {
        // Under the writers' lock, as blobs are recorded: no cleanup removes a blob between
        // the check below and the insert.
        db.lock_blobs(ctx, BlobLock::Writer)?;
        let shas: Vec<&Sha256> = checked.iter().map(|c| &c.sha256).collect();
        wanted(db, ctx, &shas)?;
        let present: std::collections::HashSet<Sha256> = db
            .all(
                ctx,
                "SELECT b.sha256 FROM wanted w JOIN blobs b ON b.sha256 = w.c",
                &[],
                |r| r.sha256(0),
            )?
            .into_iter()
            .collect();
        let rows: Vec<&SignatureRecord> = checked
            .iter()
            .filter(|c| present.contains(&c.sha256))
            .collect();
        insert_signature_rows(db, ctx, &rows)
    })
}

/// The rows of signature records whose blobs are recorded. Call under the writers' lock.
fn insert_signature_rows(db: &mut dyn db::Db, ctx: &str, rows: &[&SignatureRecord]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    db.bulk_insert(
        ctx,
        "blob_signatures",
        &[("blob_sha256", Kind::Text), ("key_ids", Kind::Text)],
        Conflict::Ignore { key: "blob_sha256" },
        &mut |sink| {
            for c in rows {
                sink.row(&[(&c.sha256).into(), Val::Str(&c.key_ids)])?;
            }
            Ok(())
        },
    )?;
    db.bulk_insert(
        ctx,
        "blob_verifications",
        &[("blob_sha256", Kind::Text), ("fingerprint", Kind::Text)],
        Conflict::Ignore {
            key: "blob_sha256, fingerprint",
        },
        &mut |sink| {
            for c in rows {
                if let Some(f) = &c.verified_by {
                    sink.row(&[(&c.sha256).into(), Val::Str(f)])?;
                }
            }
            Ok(())
        },
    )?;
    Ok(())
}
