//! Publishing: package rows (shared, immutable) and the one transaction that commits a new
//! version of a repository: content and repodata ranges, the version row, the latest pointer
//! and a notification for chantal-fs.

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::Type;

use super::{db_err, PgStore};
use crate::catalogue::model::*;
use crate::error::{Error, Result};

impl PgStore {
    /// Creates package rows (with their fragments) for blobs now in the pool; rows that exist
    /// already are left as they are. Read lazily so fragments need not sit in memory. Package
    /// rows are shared and immutable: creating them ahead of a version commit is harmless.
    pub fn insert_packages(
        &self,
        packages: &mut dyn Iterator<Item = Result<NewPackage>>,
    ) -> Result<u64> {
        let ctx = |what: &str| format!("creating package rows: {what}");
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(db_err(ctx("begin")))?;
        tx.batch_execute(
            "CREATE TEMP TABLE incoming_packages (
                 sha256 text, name text, epoch int8, version text, release text, arch text,
                 checksum_type text, checksum text, size_package int8, size_installed int8,
                 size_archive int8, time_file int8, time_build int8, sourcerpm text,
                 primary_xml text, filelists_xml text, other_xml text) ON COMMIT DROP;",
        )
        .map_err(db_err(ctx("preparing")))?;
        let sink = tx
            .copy_in("COPY incoming_packages FROM STDIN (FORMAT binary)")
            .map_err(db_err(ctx("copying packages")))?;
        let mut w = BinaryCopyInWriter::new(
            sink,
            &[
                Type::TEXT,
                Type::TEXT,
                Type::INT8,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::INT8,
                Type::INT8,
                Type::INT8,
                Type::INT8,
                Type::INT8,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
            ],
        );
        for p in packages {
            let p = p?;
            w.write(&[
                &p.sha256,
                &p.name,
                &p.epoch,
                &p.version,
                &p.release,
                &p.arch,
                &p.checksum_type,
                &p.checksum,
                &p.size_package,
                &p.size_installed,
                &p.size_archive,
                &p.time_file,
                &p.time_build,
                &p.sourcerpm,
                &p.primary_xml,
                &p.filelists_xml,
                &p.other_xml,
            ])
            .map_err(db_err(ctx("copying packages")))?;
        }
        w.finish().map_err(db_err(ctx("copying packages")))?;

        let n = tx
            .execute(
                "INSERT INTO packages (sha256, name, epoch, version, release, arch, checksum_type,
                                       checksum, size_package, size_installed, size_archive,
                                       time_file, time_build, sourcerpm, primary_xml,
                                       filelists_xml, other_xml)
                 SELECT DISTINCT ON (sha256) * FROM incoming_packages ORDER BY sha256
                 ON CONFLICT (sha256) DO NOTHING",
                &[],
            )
            .map_err(db_err(ctx("inserting")))?;
        tx.commit().map_err(db_err(ctx("commit")))?;
        Ok(n)
    }

    /// Publishes a new version in one transaction: package rows, content and repodata rows
    /// (as ranges), the version row, the latest pointer, and a notification for chantal-fs.
    /// When the content and repodata equal the latest version's, nothing is written and the
    /// result has no version.
    pub fn commit_version(&self, input: CommitInput<'_>) -> Result<CommitResult> {
        let repo = input.repository;
        let ctx = |what: &str| format!("committing {repo}: {what}");
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(db_err(ctx("begin")))?;
        let latest: Option<i64> = tx
            .query_one(
                "SELECT latest_version FROM repositories WHERE id = $1 FOR UPDATE",
                &[&input.repository_id],
            )
            .map_err(db_err(ctx("locking the repository row")))?
            .get(0);
        let next: i64 = tx
            .query_one(
                "SELECT coalesce(max(number), 0) + 1 FROM repository_versions WHERE repository_id = $1",
                &[&input.repository_id],
            )
            .map_err(db_err(ctx("numbering the version")))?
            .get(0);
        tx.batch_execute(
            "CREATE TEMP TABLE incoming_content (sha256 text, location_href text) ON COMMIT DROP;
             CREATE TEMP TABLE incoming_metadata (type text, blob_sha256 text, location_href text)
                 ON COMMIT DROP;",
        )
        .map_err(db_err(ctx("preparing")))?;

        let sink = tx
            .copy_in("COPY incoming_content FROM STDIN (FORMAT binary)")
            .map_err(db_err(ctx("copying content")))?;
        let mut w = BinaryCopyInWriter::new(sink, &[Type::TEXT, Type::TEXT]);
        for (sha, href) in input.content {
            w.write(&[sha, href])
                .map_err(db_err(ctx("copying content")))?;
        }
        w.finish().map_err(db_err(ctx("copying content")))?;

        let kinds: Vec<&str> = input.metadata.iter().map(|m| m.kind.as_str()).collect();
        let blobs: Vec<&str> = input
            .metadata
            .iter()
            .map(|m| m.blob_sha256.as_str())
            .collect();
        let hrefs: Vec<&str> = input
            .metadata
            .iter()
            .map(|m| m.location_href.as_str())
            .collect();
        tx.execute(
            "INSERT INTO incoming_metadata SELECT * FROM unnest($1::text[], $2::text[], $3::text[])",
            &[&kinds, &blobs, &hrefs],
        )
        .map_err(db_err(ctx("staging repodata")))?;

        let r = &input.repository_id;
        tx.batch_execute(
            "CREATE TEMP TABLE incoming_ids ON COMMIT DROP AS
                 SELECT DISTINCT p.id AS package_id, c.location_href
                   FROM incoming_content c JOIN packages p ON p.sha256 = c.sha256;
             ANALYZE incoming_ids;",
        )
        .map_err(db_err(ctx("creating package rows")))?;
        let missing: i64 = tx
            .query_one(
                "SELECT count(*) FROM incoming_content c
                  WHERE NOT EXISTS (SELECT 1 FROM packages p WHERE p.sha256 = c.sha256)",
                &[],
            )
            .map_err(db_err(ctx("checking package rows")))?
            .get(0);
        if missing > 0 {
            return Err(Error::Db {
                context: ctx("checking package rows"),
                reason: format!("{missing} packages of the new version have no package row"),
            });
        }
        let removed = tx
            .execute(
                "UPDATE repository_content rc SET removed_in = $2
                  WHERE rc.repository_id = $1 AND rc.removed_in IS NULL
                    AND NOT EXISTS (SELECT 1 FROM incoming_ids i
                                     WHERE i.package_id = rc.package_id
                                       AND i.location_href = rc.location_href)",
                &[r, &next],
            )
            .map_err(db_err(ctx("retiring content")))?;
        let added = tx
            .execute(
                "INSERT INTO repository_content (repository_id, package_id, location_href, added_in)
                 SELECT $1, i.package_id, i.location_href, $2 FROM incoming_ids i
                  WHERE NOT EXISTS (SELECT 1 FROM repository_content rc
                                     WHERE rc.repository_id = $1 AND rc.removed_in IS NULL
                                       AND rc.package_id = i.package_id
                                       AND rc.location_href = i.location_href)",
                &[r, &next],
            )
            .map_err(db_err(ctx("adding content")))?;
        let meta_removed = tx
            .execute(
                "UPDATE repository_metadata m SET removed_in = $2
                  WHERE m.repository_id = $1 AND m.removed_in IS NULL
                    AND NOT EXISTS (SELECT 1 FROM incoming_metadata i
                                     WHERE i.type = m.type AND i.blob_sha256 = m.blob_sha256
                                       AND i.location_href = m.location_href)",
                &[r, &next],
            )
            .map_err(db_err(ctx("retiring repodata")))?;
        let meta_added = tx
            .execute(
                "INSERT INTO repository_metadata (repository_id, type, blob_sha256, location_href, added_in)
                 SELECT $1, i.type, i.blob_sha256, i.location_href, $2 FROM incoming_metadata i
                  WHERE NOT EXISTS (SELECT 1 FROM repository_metadata m
                                     WHERE m.repository_id = $1 AND m.removed_in IS NULL
                                       AND m.type = i.type AND m.blob_sha256 = i.blob_sha256
                                       AND m.location_href = i.location_href)",
                &[r, &next],
            )
            .map_err(db_err(ctx("adding repodata")))?;
        let (count, size): (i64, i64) = {
            let row = tx
                .query_one(
                    "SELECT count(*), coalesce(sum(p.size_package), 0)::int8
                       FROM repository_content c JOIN packages p ON p.id = c.package_id
                      WHERE c.repository_id = $1 AND c.removed_in IS NULL",
                    &[r],
                )
                .map_err(db_err(ctx("counting")))?;
            (row.get(0), row.get(1))
        };
        let added = i64::try_from(added).unwrap_or(i64::MAX);
        let removed = i64::try_from(removed).unwrap_or(i64::MAX);
        let unchanged = count - added;
        if added == 0 && removed == 0 && meta_added == 0 && meta_removed == 0 && latest.is_some() {
            tx.rollback().map_err(db_err(ctx("rollback")))?;
            return Ok(CommitResult {
                version: None,
                added: 0,
                removed: 0,
                unchanged,
            });
        }
        tx.execute(
            "INSERT INTO repository_versions
                 (repository_id, number, sync_id, package_count, total_size, repomd_revision)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                r,
                &next,
                &input.sync_id,
                &count,
                &size,
                &input.repomd_revision,
            ],
        )
        .map_err(db_err(ctx("recording the version")))?;
        // When the previous latest stopped being it: chantal-fs serves it for a grace period
        // more, and cleanup must keep it that long.
        tx.execute(
            "UPDATE repository_versions SET retired_at = now()
              WHERE repository_id = $1 AND number = $2",
            &[r, &latest],
        )
        .map_err(db_err(ctx("retiring the previous version")))?;
        tx.execute(
            "UPDATE repositories SET latest_version = $2 WHERE id = $1",
            &[r, &next],
        )
        .map_err(db_err(ctx("switching latest")))?;
        tx.execute(
            "SELECT pg_notify('chantal_latest', $1)",
            &[&format!("{repo} {next}")],
        )
        .map_err(db_err(ctx("notifying")))?;
        tx.commit().map_err(db_err(ctx("commit")))?;
        Ok(CommitResult {
            version: Some(next),
            added,
            removed,
            unchanged,
        })
    }
}
