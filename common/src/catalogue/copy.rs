//! `chantal db migrate --to postgresql://…`: copies a SQLite catalogue into an empty PostgreSQL
//! database, for the day a site outgrows one host. Every table is streamed in one PostgreSQL
//! transaction (a failure leaves the target as empty as it was), ids are kept, sequences moved
//! past them, and the result is verified through the catalogue API: every repository's
//! summary, snapshots, and each version's package set and file tree must be equal.

use std::time::Duration;

use chrono::{DateTime, Utc};
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};

use super::{sqlite, Backend, Catalogue};
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

#[derive(Clone, Copy)]
enum Col {
    Text,
    Int8,
    Int4,
    /// Microseconds in SQLite, TIMESTAMPTZ in PostgreSQL.
    Time,
}

/// Tables in foreign-key order, with their columns as both schemas name them.
const TABLES: &[(&str, &[(&str, Col)])] = &[
    (
        "blobs",
        &[
            ("sha256", Col::Text),
            ("size", Col::Int8),
            ("path", Col::Text),
            ("created_at", Col::Time),
            ("used_at", Col::Time),
        ],
    ),
    (
        "blob_checksums",
        &[
            ("checksum_type", Col::Text),
            ("checksum", Col::Text),
            ("sha256", Col::Text),
        ],
    ),
    (
        "repositories",
        &[
            ("id", Col::Int8),
            ("name", Col::Text),
            ("type", Col::Text),
            ("latest_version", Col::Int8),
            ("created_at", Col::Time),
            ("sync_host", Col::Text),
            ("sync_pid", Col::Int4),
            ("sync_since", Col::Time),
        ],
    ),
    (
        "sync_history",
        &[
            ("id", Col::Int8),
            ("repository_id", Col::Int8),
            ("started_at", Col::Time),
            ("finished_at", Col::Time),
            ("status", Col::Text),
            ("host", Col::Text),
            ("pid", Col::Int4),
            ("version", Col::Int8),
            ("added", Col::Int8),
            ("removed", Col::Int8),
            ("unchanged", Col::Int8),
            ("bytes_downloaded", Col::Int8),
            ("error", Col::Text),
            ("repomd_sha256", Col::Text),
            ("settings", Col::Text),
        ],
    ),
    (
        "repository_versions",
        &[
            ("repository_id", Col::Int8),
            ("number", Col::Int8),
            ("created_at", Col::Time),
            ("sync_id", Col::Int8),
            ("package_count", Col::Int8),
            ("total_size", Col::Int8),
            ("repomd_revision", Col::Text),
            ("retired_at", Col::Time),
        ],
    ),
    (
        "packages",
        &[
            ("id", Col::Int8),
            ("sha256", Col::Text),
            ("name", Col::Text),
            ("epoch", Col::Int8),
            ("version", Col::Text),
            ("release", Col::Text),
            ("arch", Col::Text),
            ("checksum_type", Col::Text),
            ("checksum", Col::Text),
            ("size_package", Col::Int8),
            ("size_installed", Col::Int8),
            ("size_archive", Col::Int8),
            ("time_file", Col::Int8),
            ("time_build", Col::Int8),
            ("sourcerpm", Col::Text),
            ("primary_xml", Col::Text),
            ("filelists_xml", Col::Text),
            ("other_xml", Col::Text),
        ],
    ),
    (
        "repository_content",
        &[
            ("repository_id", Col::Int8),
            ("package_id", Col::Int8),
            ("location_href", Col::Text),
            ("added_in", Col::Int8),
            ("removed_in", Col::Int8),
        ],
    ),
    (
        "repository_metadata",
        &[
            ("repository_id", Col::Int8),
            ("type", Col::Text),
            ("blob_sha256", Col::Text),
            ("location_href", Col::Text),
            ("added_in", Col::Int8),
            ("removed_in", Col::Int8),
        ],
    ),
    (
        "snapshots",
        &[
            ("id", Col::Int8),
            ("repository_id", Col::Int8),
            ("name", Col::Text),
            ("version", Col::Int8),
            ("description", Col::Text),
            ("created_at", Col::Time),
        ],
    ),
];

/// Tables whose `id` comes from a sequence in PostgreSQL.
const SERIAL_TABLES: &[&str] = &["repositories", "sync_history", "packages", "snapshots"];

/// Copies `source` (a SQLite catalogue at the current schema) into the PostgreSQL database at
/// `target_url`, which must be empty (no tables, or chantal's schema without rows). `progress`
/// hears each table as it is copied.
pub fn sqlite_to_postgres(
    source: &Catalogue,
    target_url: &str,
    progress: &mut dyn FnMut(&str, u64),
) -> Result<CopyReport> {
    let Backend::Sqlite(src) = &source.backend else {
        return Err(Error::Missing(
            "`db migrate --to` copies the embedded SQLite catalogue; this configuration already uses PostgreSQL".into(),
        ));
    };
    source.require_current_schema()?;
    let target = match super::Target::parse(target_url)? {
        super::Target::Postgres(url) => Catalogue::connect_waiting(&url, Duration::from_secs(10))?,
        super::Target::Sqlite(_) => {
            return Err(Error::Missing(
                "`db migrate --to` needs a postgresql:// URL".into(),
            ))
        }
    };
    let Backend::Postgres(dst) = &target.backend else {
        return Err(Error::Missing(
            "`db migrate --to` needs a postgresql:// URL".into(),
        ));
    };
    target.migrate()?;
    target.require_current_schema()?;

    let mut report = CopyReport::default();
    let mut client = dst.dedicated()?;
    let ctx = |what: &str| format!("copying the catalogue to {}: {what}", target.describe());
    let pg_err = |what: &str| {
        let c = ctx(what);
        move |e: postgres::Error| Error::db(c, &e)
    };
    let mut tx = client.transaction().map_err(pg_err("begin"))?;
    for (table, _) in TABLES {
        let rows: i64 = tx
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .map_err(pg_err("checking that the target is empty"))?
            .get(0);
        if rows > 0 {
            return Err(Error::Missing(format!(
                "the target database {} is not empty ({table} has {rows} rows): copy into a new database",
                target.describe()
            )));
        }
    }
    src.read_all(&mut |table, columns, rows| {
        let types: Vec<Type> = columns
            .iter()
            .map(|(_, c)| match c {
                Col::Text => Type::TEXT,
                Col::Int8 => Type::INT8,
                Col::Int4 => Type::INT4,
                Col::Time => Type::TIMESTAMPTZ,
            })
            .collect();
        let names: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
        let sink = tx
            .copy_in(&format!(
                "COPY {table} ({}) FROM STDIN (FORMAT binary)",
                names.join(", ")
            ))
            .map_err(pg_err(table))?;
        let mut writer = BinaryCopyInWriter::new(sink, &types);
        let mut n = 0u64;
        while let Some(row) = rows.next()? {
            let values: Vec<Box<dyn ToSql + Sync>> = columns
                .iter()
                .enumerate()
                .map(|(i, (_, c))| row.value(i, *c))
                .collect::<Result<_>>()?;
            let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref()).collect();
            writer.write(&refs).map_err(pg_err(table))?;
            n += 1;
        }
        writer.finish().map_err(pg_err(table))?;
        progress(table, n);
        report.tables.push((table, n));
        Ok(())
    })?;
    for table in SERIAL_TABLES {
        tx.execute(
            &format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'),
                               coalesce((SELECT max(id) FROM {table}), 0) + 1, false)"
            ),
            &[],
        )
        .map_err(pg_err("moving sequences past the copied ids"))?;
    }
    tx.commit().map_err(pg_err("commit"))?;
    verify(source, &target, &mut report)?;
    Ok(report)
}

/// Compares what the catalogue API answers on both sides.
fn verify(source: &Catalogue, target: &Catalogue, report: &mut CopyReport) -> Result<()> {
    let mismatch = |what: String| {
        Error::Missing(format!(
            "the copy in {} differs from the source: {what}; the target was left as copied for inspection",
            target.describe()
        ))
    };
    let repos = source.repository_summaries()?;
    if target.repository_summaries()? != repos {
        return Err(mismatch("repository summaries".into()));
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
            report.versions_verified += 1;
        }
    }
    Ok(())
}

/// One source row, read by column kind.
trait SourceRow {
    fn value(&self, i: usize, col: Col) -> Result<Box<dyn ToSql + Sync>>;
}

/// Rows of one table, read one at a time.
trait SourceRows {
    fn next(&mut self) -> Result<Option<&dyn SourceRow>>;
}

impl sqlite::SqliteStore {
    /// Streams every table of [`TABLES`] to `each`, all from one read transaction.
    fn read_all(&self, each: &mut TableSink<'_>) -> Result<()> {
        self.with_read_transaction(&mut |tx| {
            for (table, columns) in TABLES {
                let names: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
                let sql = format!("SELECT {} FROM {table}", names.join(", "));
                let mut stmt = tx
                    .prepare(&sql)
                    .map_err(sqlite::db_err(format!("reading {table}")))?;
                let rows = stmt
                    .query([])
                    .map_err(sqlite::db_err(format!("reading {table}")))?;
                let mut rows = SqliteRows { rows, table };
                each(table, columns, &mut rows)?;
            }
            Ok(())
        })
    }
}

/// Receives one table: its name, its columns and its rows.
type TableSink<'a> =
    dyn FnMut(&'static str, &[(&'static str, Col)], &mut dyn SourceRows) -> Result<()> + 'a;

struct SqliteRows<'s> {
    rows: rusqlite::Rows<'s>,
    table: &'static str,
}

impl SourceRows for SqliteRows<'_> {
    fn next(&mut self) -> Result<Option<&dyn SourceRow>> {
        let table = self.table;
        Ok(self
            .rows
            .next()
            .map_err(sqlite::db_err(format!("reading {table}")))?
            .map(|r| r as &dyn SourceRow))
    }
}

impl SourceRow for rusqlite::Row<'_> {
    fn value(&self, i: usize, col: Col) -> Result<Box<dyn ToSql + Sync>> {
        let err = sqlite::db_err("reading a row to copy");
        Ok(match col {
            Col::Text => Box::new(self.get::<_, Option<String>>(i).map_err(err)?),
            Col::Int8 => Box::new(self.get::<_, Option<i64>>(i).map_err(err)?),
            Col::Int4 => Box::new(self.get::<_, Option<i32>>(i).map_err(err)?),
            Col::Time => Box::new(
                self.get::<_, Option<i64>>(i)
                    .map_err(err)?
                    .map(sqlite::time) as Option<DateTime<Utc>>,
            ),
        })
    }
}
