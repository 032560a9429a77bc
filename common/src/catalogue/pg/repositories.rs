//! Repositories, their latest version and their sync history.

use super::{db_err, PgStore};
use crate::catalogue::model::*;
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

fn summary(row: &postgres::Row) -> RepoSummary {
    RepoSummary {
        name: row.get(0),
        kind: row.get(1),
        latest_version: row.get(2),
        packages: row.get(3),
        total_size: row.get(4),
        last_success: row.get(5),
        snapshots: row.get(6),
    }
}

impl PgStore {
    /// Every repository the catalogue has seen, by name.
    pub fn repository_summaries(&self) -> Result<Vec<RepoSummary>> {
        let mut conn = self.conn()?;
        let rows = conn
            .query(&format!("{SUMMARY_SELECT} ORDER BY r.name"), &[])
            .map_err(db_err("listing repositories"))?;
        Ok(rows.iter().map(summary).collect())
    }

    /// One repository, or `None` if it was never synced.
    pub fn repository_summary(&self, name: &str) -> Result<Option<RepoSummary>> {
        let mut conn = self.conn()?;
        let row = conn
            .query_opt(&format!("{SUMMARY_SELECT} WHERE r.name = $1"), &[&name])
            .map_err(db_err(format!("reading repository {name}")))?;
        Ok(row.as_ref().map(summary))
    }

    /// The newest `limit` syncs of a repository, newest first.
    pub fn recent_syncs(&self, name: &str, limit: i64) -> Result<Vec<SyncRecord>> {
        let mut conn = self.conn()?;
        let rows = conn
            .query(
                "SELECT h.started_at, h.finished_at, h.status, h.host, h.pid, h.version,
                        h.added, h.removed, h.unchanged, h.bytes_downloaded, h.error
                   FROM sync_history h JOIN repositories r ON r.id = h.repository_id
                  WHERE r.name = $1
                  ORDER BY h.started_at DESC, h.id DESC
                  LIMIT $2",
                &[&name, &limit],
            )
            .map_err(db_err(format!("reading the sync history of {name}")))?;
        Ok(rows
            .iter()
            .map(|r| SyncRecord {
                started_at: r.get(0),
                finished_at: r.get(1),
                status: r.get(2),
                host: r.get(3),
                pid: r.get(4),
                version: r.get(5),
                added: r.get(6),
                removed: r.get(7),
                unchanged: r.get(8),
                bytes_downloaded: r.get(9),
                error: r.get(10),
            })
            .collect())
    }
}
