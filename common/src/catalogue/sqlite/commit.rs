//! Publishing: package rows (shared, immutable) and the one transaction that commits a new
//! version of a repository: content and repodata ranges, the version row and the latest
//! pointer. Readers notice the commit through `PRAGMA data_version`.

use rusqlite::TransactionBehavior;

use super::{db_err, SqliteStore, NOW};
use crate::catalogue::model::{CommitInput, CommitResult, NewPackage};
use crate::error::{Error, Result};

impl SqliteStore {
    pub fn insert_packages(
        &self,
        packages: &mut dyn Iterator<Item = Result<NewPackage>>,
    ) -> Result<u64> {
        let ctx = |what: &str| format!("creating package rows: {what}");
        let mut conn = self.conn()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_err(ctx("begin")))?;
        let mut n = 0u64;
        {
            let mut stmt = tx
                .prepare(
                    "INSERT INTO packages (sha256, name, epoch, version, release, arch,
                                           checksum_type, checksum, size_package, size_installed,
                                           size_archive, time_file, time_build, sourcerpm,
                                           primary_xml, filelists_xml, other_xml)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,
                             ?16, ?17)
                     ON CONFLICT (sha256) DO NOTHING",
                )
                .map_err(db_err(ctx("preparing")))?;
            for p in packages {
                let p = p?;
                n += stmt
                    .execute(rusqlite::params![
                        p.sha256,
                        p.name,
                        p.epoch,
                        p.version,
                        p.release,
                        p.arch,
                        p.checksum_type,
                        p.checksum,
                        p.size_package,
                        p.size_installed,
                        p.size_archive,
                        p.time_file,
                        p.time_build,
                        p.sourcerpm,
                        p.primary_xml,
                        p.filelists_xml,
                        p.other_xml,
                    ])
                    .map_err(db_err(ctx("inserting")))? as u64;
            }
        }
        tx.commit().map_err(db_err(ctx("commit")))?;
        Ok(n)
    }

    pub fn commit_version(&self, input: CommitInput<'_>) -> Result<CommitResult> {
        let repo = input.repository;
        let ctx = |what: &str| format!("committing {repo}: {what}");
        let mut conn = self.conn()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_err(ctx("begin")))?;
        let r = input.repository_id;
        let latest: Option<i64> = tx
            .query_row(
                "SELECT latest_version FROM repositories WHERE id = ?1",
                [r],
                |row| row.get(0),
            )
            .map_err(db_err(ctx("reading the repository row")))?;
        let next: i64 = tx
            .query_row(
                "SELECT coalesce(max(number), 0) + 1 FROM repository_versions
                  WHERE repository_id = ?1",
                [r],
                |row| row.get(0),
            )
            .map_err(db_err(ctx("numbering the version")))?;
        // Temporary tables live with the connection, which is reused: start from scratch.
        tx.execute_batch(
            "DROP TABLE IF EXISTS temp.incoming_content;
             DROP TABLE IF EXISTS temp.incoming_metadata;
             DROP TABLE IF EXISTS temp.incoming_ids;
             CREATE TEMP TABLE incoming_content (sha256 TEXT, location_href TEXT);
             CREATE TEMP TABLE incoming_metadata (type TEXT, blob_sha256 TEXT, location_href TEXT);",
        )
        .map_err(db_err(ctx("preparing")))?;
        {
            let mut stmt = tx
                .prepare("INSERT INTO incoming_content VALUES (?1, ?2)")
                .map_err(db_err(ctx("staging content")))?;
            for (sha, href) in input.content {
                stmt.execute((sha, href))
                    .map_err(db_err(ctx("staging content")))?;
            }
            let mut stmt = tx
                .prepare("INSERT INTO incoming_metadata VALUES (?1, ?2, ?3)")
                .map_err(db_err(ctx("staging repodata")))?;
            for m in input.metadata {
                stmt.execute((&m.kind, &m.blob_sha256, &m.location_href))
                    .map_err(db_err(ctx("staging repodata")))?;
            }
        }
        tx.execute_batch(
            "CREATE TEMP TABLE incoming_ids AS
                 SELECT DISTINCT p.id AS package_id, c.location_href
                   FROM incoming_content c JOIN packages p ON p.sha256 = c.sha256;
             CREATE INDEX temp.incoming_ids_key ON incoming_ids (package_id, location_href);",
        )
        .map_err(db_err(ctx("matching package rows")))?;
        let missing: i64 = tx
            .query_row(
                "SELECT count(*) FROM incoming_content c
                  WHERE NOT EXISTS (SELECT 1 FROM packages p WHERE p.sha256 = c.sha256)",
                [],
                |row| row.get(0),
            )
            .map_err(db_err(ctx("checking package rows")))?;
        if missing > 0 {
            return Err(Error::Db {
                context: ctx("checking package rows"),
                reason: format!("{missing} packages of the new version have no package row"),
            });
        }
        let removed = tx
            .execute(
                "UPDATE repository_content SET removed_in = ?2
                  WHERE repository_id = ?1 AND removed_in IS NULL
                    AND NOT EXISTS (SELECT 1 FROM incoming_ids i
                                     WHERE i.package_id = repository_content.package_id
                                       AND i.location_href = repository_content.location_href)",
                (r, next),
            )
            .map_err(db_err(ctx("retiring content")))?;
        let added = tx
            .execute(
                "INSERT INTO repository_content (repository_id, package_id, location_href, added_in)
                 SELECT ?1, i.package_id, i.location_href, ?2 FROM incoming_ids i
                  WHERE NOT EXISTS (SELECT 1 FROM repository_content rc
                                     WHERE rc.repository_id = ?1 AND rc.removed_in IS NULL
                                       AND rc.package_id = i.package_id
                                       AND rc.location_href = i.location_href)",
                (r, next),
            )
            .map_err(db_err(ctx("adding content")))?;
        let meta_removed = tx
            .execute(
                "UPDATE repository_metadata SET removed_in = ?2
                  WHERE repository_id = ?1 AND removed_in IS NULL
                    AND NOT EXISTS (SELECT 1 FROM incoming_metadata i
                                     WHERE i.type = repository_metadata.type
                                       AND i.blob_sha256 = repository_metadata.blob_sha256
                                       AND i.location_href = repository_metadata.location_href)",
                (r, next),
            )
            .map_err(db_err(ctx("retiring repodata")))?;
        let meta_added = tx
            .execute(
                "INSERT INTO repository_metadata (repository_id, type, blob_sha256, location_href, added_in)
                 SELECT ?1, i.type, i.blob_sha256, i.location_href, ?2 FROM incoming_metadata i
                  WHERE NOT EXISTS (SELECT 1 FROM repository_metadata m
                                     WHERE m.repository_id = ?1 AND m.removed_in IS NULL
                                       AND m.type = i.type AND m.blob_sha256 = i.blob_sha256
                                       AND m.location_href = i.location_href)",
                (r, next),
            )
            .map_err(db_err(ctx("adding repodata")))?;
        let (count, size): (i64, i64) = tx
            .query_row(
                "SELECT count(*), coalesce(sum(p.size_package), 0)
                   FROM repository_content c JOIN packages p ON p.id = c.package_id
                  WHERE c.repository_id = ?1 AND c.removed_in IS NULL",
                [r],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .map_err(db_err(ctx("counting")))?;
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
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            (r, next, input.sync_id, count, size, input.repomd_revision),
        )
        .map_err(db_err(ctx("recording the version")))?;
        // When the previous latest stopped being it: chantal-fs serves it for a grace period
        // more, and cleanup must keep it that long.
        tx.execute(
            &format!(
                "UPDATE repository_versions SET retired_at = {NOW}
                  WHERE repository_id = ?1 AND number = ?2"
            ),
            (r, latest),
        )
        .map_err(db_err(ctx("retiring the previous version")))?;
        tx.execute(
            "UPDATE repositories SET latest_version = ?2 WHERE id = ?1",
            (r, next),
        )
        .map_err(db_err(ctx("switching latest")))?;
        tx.execute_batch(
            "DROP TABLE temp.incoming_content; DROP TABLE temp.incoming_metadata;
             DROP TABLE temp.incoming_ids;",
        )
        .map_err(db_err(ctx("dropping staging tables")))?;
        tx.commit().map_err(db_err(ctx("commit")))?;
        Ok(CommitResult {
            version: Some(next),
            added,
            removed,
            unchanged,
        })
    }
}
