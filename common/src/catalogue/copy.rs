//! `chantal db migrate --to postgresql://…`: copies a SQLite catalogue into an empty PostgreSQL
//! database, for the day a site outgrows one host. Every table is streamed in one PostgreSQL
//! transaction (a failure leaves the target as empty as it was), ids are kept, sequences moved
//! past them, and the result is verified through the catalogue API: every repository's
//! summary, snapshots, and each version's package set and file tree must be equal.

use std::time::Duration;

use super::db::{self, Conflict, Kind, Row, Val};
use super::{Backend, Catalogue};
use crate::error::{Error, Result};

/// What a copy moved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyReport {
    /// Rows per table, in copy order.
    pub tables: Vec<(&'static str, u64)>,
    pub repositories: usize,
    /// Repository versions compared after the copy.
    pub versions_verified: usize,
    pub snapshots: usize,
}

/// Tables in foreign-key order, with their columns as both schemas name them.
const TABLES: &[(&str, &[(&str, Kind)])] = &[
    (
        "blobs",
        &[
            ("sha256", Kind::Text),
            ("size", Kind::Int8),
            ("path", Kind::Text),
            ("created_at", Kind::Time),
            ("used_at", Kind::Time),
        ],
    ),
    (
        "absent_blobs",
        &[("sha256", Kind::Text), ("created_at", Kind::Time)],
    ),
    (
        "blob_checksums",
        &[
            ("checksum_type", Kind::Text),
            ("checksum", Kind::Text),
            ("sha256", Kind::Text),
        ],
    ),
    (
        "blob_signatures",
        &[("blob_sha256", Kind::Text), ("key_ids", Kind::Text)],
    ),
    (
        "blob_verifications",
        &[
            ("blob_sha256", Kind::Text),
            ("fingerprint", Kind::Text),
            ("verified_at", Kind::Time),
        ],
    ),
    (
        "repositories",
        &[
            ("id", Kind::Int8),
            ("name", Kind::Text),
            ("type", Kind::Text),
            ("latest_version", Kind::Int8),
            ("created_at", Kind::Time),
            ("sync_host", Kind::Text),
            ("sync_pid", Kind::Int4),
            ("sync_since", Kind::Time),
        ],
    ),
    (
        "sync_history",
        &[
            ("id", Kind::Int8),
            ("repository_id", Kind::Int8),
            ("started_at", Kind::Time),
            ("finished_at", Kind::Time),
            ("status", Kind::Text),
            ("host", Kind::Text),
            ("pid", Kind::Int4),
            ("version", Kind::Int8),
            ("added", Kind::Int8),
            ("removed", Kind::Int8),
            ("unchanged", Kind::Int8),
            ("bytes_downloaded", Kind::Int8),
            ("error", Kind::Text),
            ("repomd_sha256", Kind::Text),
            ("settings", Kind::Text),
            ("excluded", Kind::Int8),
            ("failed", Kind::Int8),
        ],
    ),
    (
        "repository_versions",
        &[
            ("repository_id", Kind::Int8),
            ("number", Kind::Int8),
            ("created_at", Kind::Time),
            ("sync_id", Kind::Int8),
            ("package_count", Kind::Int8),
            ("total_size", Kind::Int8),
            ("repomd_revision", Kind::Text),
            ("retired_at", Kind::Time),
        ],
    ),
    (
        "packages",
        &[
            ("id", Kind::Int8),
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
        ],
    ),
    (
        "repository_content",
        &[
            ("repository_id", Kind::Int8),
            ("package_id", Kind::Int8),
            ("location_href", Kind::Text),
            ("added_in", Kind::Int8),
            ("removed_in", Kind::Int8),
        ],
    ),
    (
        "repository_metadata",
        &[
            ("repository_id", Kind::Int8),
            ("type", Kind::Text),
            ("blob_sha256", Kind::Text),
            ("location_href", Kind::Text),
            ("added_in", Kind::Int8),
            ("removed_in", Kind::Int8),
        ],
    ),
    (
        "snapshots",
        &[
            ("id", Kind::Int8),
            ("repository_id", Kind::Int8),
            ("name", Kind::Text),
            ("version", Kind::Int8),
            ("description", Kind::Text),
            ("created_at", Kind::Time),
        ],
    ),
    (
        "promotions",
        &[
            ("id", Kind::Int8),
            ("environment", Kind::Text),
            ("source", Kind::Text),
            ("set_at", Kind::Time),
            ("set_by", Kind::Text),
        ],
    ),
    (
        "environments",
        &[
            ("environment", Kind::Text),
            ("repository_id", Kind::Int8),
            ("snapshot_id", Kind::Int8),
            ("promotion_id", Kind::Int8),
        ],
    ),
    (
        "environment_history",
        &[
            ("promotion_id", Kind::Int8),
            ("repository_id", Kind::Int8),
            ("snapshot_name", Kind::Text),
            ("version", Kind::Int8),
            ("previous_name", Kind::Text),
            ("previous_version", Kind::Int8),
        ],
    ),
];

/// Every table the copy carries, with its columns in the order it copies them: what a test
/// compares with both backends' migrated schemas, so that a column a migration adds cannot be
/// left behind by `db migrate --to`.
pub fn copied_tables() -> Vec<(&'static str, Vec<&'static str>)> {
    TABLES
        .iter()
        .map(|(t, cols)| (*t, cols.iter().map(|(c, _)| *c).collect()))
        .collect()
}

/// Tables whose `id` comes from a sequence in PostgreSQL.
const SERIAL_TABLES: &[&str] = &[
    "repositories",
    "sync_history",
    "packages",
    "snapshots",
    "promotions",
];

/// Copies `source` (a SQLite catalogue at the current schema) into the PostgreSQL database at
/// `target_url`, which must be empty (no tables, or chantal's schema without rows). `progress`
/// hears each table as it is copied.
pub fn sqlite_to_postgres(
    source: &Catalogue,
    target_url: &str,
    progress: &mut dyn FnMut(&str, u64),
) -> Result<CopyReport> {
    let Backend::Sqlite(src) = &source.backend else {
        return Err(Error::Unsupported(
            "`db migrate --to` copies the embedded SQLite catalogue; this configuration already uses PostgreSQL".into(),
        ));
    };
    source.require_current_schema()?;
    let target = match super::Target::parse(target_url)? {
        super::Target::Postgres(url) => Catalogue::connect_waiting(&url, Duration::from_secs(10))?,
        super::Target::Sqlite(_) => {
            return Err(Error::Unsupported(
                "`db migrate --to` needs a postgresql:// URL".into(),
            ))
        }
    };
    let Backend::Postgres(dst) = &target.backend else {
        return Err(Error::Unsupported(
            "`db migrate --to` needs a postgresql:// URL".into(),
        ));
    };
    target.migrate()?;
    target.require_current_schema()?;

    let mut report = CopyReport::default();
    let ctx = format!("copying the catalogue to {}", target.describe());
    db::write(&**dst, &ctx, |pg| {
        for (table, _) in TABLES {
            let rows = pg.one(&ctx, &format!("SELECT count(*) FROM {table}"), &[], |r| {
                r.i64(0)
            })?;
            if rows > 0 {
                return Err(Error::TargetNotEmpty {
                    target: target.describe(),
                    table: table.to_string(),
                    rows,
                });
            }
        }
        // Every table from one read transaction of the source: a consistent copy.
        db::read(&**src, "reading the SQLite catalogue", |lite| {
            for (table, columns) in TABLES {
                let names: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
                let select = format!("SELECT {} FROM {table}", names.join(", "));
                let n = pg.bulk_insert(&ctx, table, columns, Conflict::None, &mut |sink| {
                    lite.query(&ctx, &select, &[], &mut |row| {
                        let values = columns
                            .iter()
                            .enumerate()
                            .map(|(i, (_, k))| Owned::read(row, i, *k))
                            .collect::<Result<Vec<_>>>()?;
                        let vals: Vec<Val<'_>> = values.iter().map(Owned::val).collect();
                        sink.row(&vals)
                    })
                })?;
                progress(table, n);
                report.tables.push((table, n));
            }
            Ok(())
        })?;
        for table in SERIAL_TABLES {
            pg.execute(
                &ctx,
                &format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'),
                                   coalesce((SELECT max(id) FROM {table}), 0) + 1, false)"
                ),
                &[],
            )?;
        }
        Ok(())
    })?;
    verify(source, &target, &mut report)?;
    Ok(report)
}

/// Compares what the catalogue API answers on both sides.
fn verify(source: &Catalogue, target: &Catalogue, report: &mut CopyReport) -> Result<()> {
    let mismatch = |what: String| Error::CopyMismatch {
        target: target.describe(),
        what,
    };
    // Every table holds as many rows on both sides ...
    let (rows, copied) = (row_counts(source)?, row_counts(target)?);
    for ((table, n), (_, m)) in rows.iter().zip(&copied) {
        if n != m {
            return Err(mismatch(format!("{table}: {n} rows, {m} copied")));
        }
    }
    // ... and what the API answers from them is the same.
    let repos = source.repository_summaries()?;
    if target.repository_summaries()? != repos {
        return Err(mismatch("repository summaries".into()));
    }
    if target.environments(None)? != source.environments(None)? {
        return Err(mismatch("environments".into()));
    }
    for env in promoted_environments(source)? {
        if target.environment_history(&env)? != source.environment_history(&env)? {
            return Err(mismatch(format!("the history of environment {env}")));
        }
    }
    report.repositories = repos.len();
    let snapshots = source.snapshots(None)?;
    if target.snapshots(None)? != snapshots {
        return Err(mismatch("snapshots".into()));
    }
    report.snapshots = snapshots.len();
    for repo in &repos {
        for version in 1..=repo.latest_version.unwrap_or(0) {
            let info = source.version_info(&repo.name, version)?;
            if target.version_info(&repo.name, version)? != info {
                return Err(mismatch(format!("version {version} of {}", repo.name)));
            }
            if info.is_none() {
                continue;
            }
            let sorted = |mut v: Vec<super::VersionPackage>| {
                v.sort_by(|a, b| (&a.location_href, &a.sha256).cmp(&(&b.location_href, &b.sha256)));
                v
            };
            if sorted(source.version_packages(&repo.name, version)?)
                != sorted(target.version_packages(&repo.name, version)?)
            {
                return Err(mismatch(format!(
                    "the packages of version {version} of {}",
                    repo.name
                )));
            }
            let files = |t: crate::tree::Tree| -> Vec<(String, String, u64, i64)> {
                t.files()
                    .into_iter()
                    .map(|(p, l)| (p, l.pool_path.clone(), l.size, l.mtime))
                    .collect()
            };
            if files(source.version_tree(&repo.name, version)?)
                != files(target.version_tree(&repo.name, version)?)
            {
                return Err(mismatch(format!(
                    "the files of version {version} of {}",
                    repo.name
                )));
            }
            if source.version_signers(&repo.name, version)?
                != target.version_signers(&repo.name, version)?
            {
                return Err(mismatch(format!(
                    "the signatures of version {version} of {}",
                    repo.name
                )));
            }
            report.versions_verified += 1;
        }
    }
    Ok(())
}

/// A nullable value read from the source, to write to the target.
enum Owned {
    Text(Option<String>),
    Int8(Option<i64>),
    Int4(Option<i32>),
    Time(Option<chrono::DateTime<chrono::Utc>>),
}

impl Owned {
    fn read(row: &dyn Row, i: usize, kind: Kind) -> Result<Owned> {
        Ok(match kind {
            Kind::Text => Owned::Text(row.opt_string(i)?),
            Kind::Int8 => Owned::Int8(row.opt_i64(i)?),
            Kind::Int4 => Owned::Int4(row.opt_i32(i)?),
            Kind::Time => Owned::Time(row.opt_time(i)?),
        })
    }

    fn val(&self) -> Val<'_> {
        match self {
            Owned::Text(v) => Val::OptStr(v.as_deref()),
            Owned::Int8(v) => Val::OptI64(*v),
            Owned::Int4(v) => Val::OptI32(*v),
            Owned::Time(v) => Val::OptTime(*v),
        }
    }
}

/// Rows in each copied table, in copy order.
fn row_counts(c: &Catalogue) -> Result<Vec<(&'static str, i64)>> {
    let count = |db: &mut dyn db::Db| {
        TABLES
            .iter()
            .map(|(table, _)| {
                db.one(
                    "counting rows to verify the copy",
                    &format!("SELECT count(*) FROM {table}"),
                    &[],
                    |r| r.i64(0),
                )
                .map(|n| (*table, n))
            })
            .collect::<Result<Vec<_>>>()
    };
    match &c.backend {
        Backend::Postgres(b) => db::read(&**b, "counting rows", count),
        Backend::Sqlite(b) => db::read(&**b, "counting rows", count),
    }
}

/// Every environment that was ever promoted (also those that point nowhere now).
fn promoted_environments(c: &Catalogue) -> Result<Vec<String>> {
    let list = |db: &mut dyn db::Db| {
        db.all(
            "listing promoted environments",
            "SELECT DISTINCT environment FROM promotions ORDER BY environment",
            &[],
            |r| r.string(0),
        )
    };
    match &c.backend {
        Backend::Postgres(b) => db::read(&**b, "listing environments", list),
        Backend::Sqlite(b) => db::read(&**b, "listing environments", list),
    }
}
