//! Repositories, their latest version and their sync history.

use rusqlite::OptionalExtension;

use super::{db_err, query_all, time, SqliteStore};
use crate::catalogue::model::{RepoSummary, SyncRecord};
use crate::error::Result;

const SUMMARY_SELECT: &str = "
    SELECT r.name, r.type, r.latest_version,
           coalesce(v.package_count, 0), coalesce(v.total_size, 0),
           (SELECT max(h.finished_at) FROM sync_history h
             WHERE h.repository_id = r.id AND h.status IN ('success', 'up-to-date', 'partial')),
           (SELECT count(*) FROM snapshots s WHERE s.repository_id = r.id)
      FROM repositories r
      LEFT JOIN repository_versions v
             ON v.repository_id = r.id AND v.number = r.latest_version";

fn summary(row: &rusqlite::Row<'_>) -> rusqlite::Result<RepoSummary> {
    Ok(RepoSummary {
        name: row.get(0)?,
        kind: row.get(1)?,
        latest_version: row.get(2)?,
        packages: row.get(3)?,
        total_size: row.get(4)?,
        last_success: row.get::<_, Option<i64>>(5)?.map(time),
        snapshots: row.get(6)?,
    })
}

impl SqliteStore {
    pub fn repository_summaries(&self) -> Result<Vec<RepoSummary>> {
        let conn = self.conn()?;
        let ctx = "listing repositories";
        query_all(
            &conn,
            &format!("{SUMMARY_SELECT} ORDER BY r.name"),
            [],
            ctx,
            summary,
        )
    }

    pub fn repository_summary(&self, name: &str) -> Result<Option<RepoSummary>> {
        let conn = self.conn()?;
        conn.query_row(
            &format!("{SUMMARY_SELECT} WHERE r.name = ?1"),
            [name],
            summary,
        )
        .optional()
        .map_err(db_err(format!("reading repository {name}")))
    }

    pub fn recent_syncs(&self, name: &str, limit: i64) -> Result<Vec<SyncRecord>> {
        let conn = self.conn()?;
        query_all(
            &conn,
            "SELECT h.started_at, h.finished_at, h.status, h.host, h.pid, h.version,
                        h.added, h.removed, h.unchanged, h.bytes_downloaded, h.error
                   FROM sync_history h JOIN repositories r ON r.id = h.repository_id
                  WHERE r.name = ?1
                  ORDER BY h.started_at DESC, h.id DESC
                  LIMIT ?2",
            (name, limit),
            &format!("reading the sync history of {name}"),
            |r| {
                Ok(SyncRecord {
                    started_at: time(r.get(0)?),
                    finished_at: r.get::<_, Option<i64>>(1)?.map(time),
                    status: r.get(2)?,
                    host: r.get(3)?,
                    pid: r.get(4)?,
                    version: r.get(5)?,
                    added: r.get(6)?,
                    removed: r.get(7)?,
                    unchanged: r.get(8)?,
                    bytes_downloaded: r.get(9)?,
                    error: r.get(10)?,
                })
            },
        )
    }
}
