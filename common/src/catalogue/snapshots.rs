//! Snapshots: names for repository versions.

use chrono::{DateTime, Utc};

use super::{db_err, Catalogue};
use crate::error::Result;

/// One snapshot with the size of the version it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRecord {
    pub repository: String,
    pub name: String,
    pub version: i64,
    pub packages: i64,
    pub total_size: i64,
    pub created_at: DateTime<Utc>,
    pub description: Option<String>,
}

impl Catalogue {
    /// Snapshots of one repository, or of all, ordered by repository then creation.
    pub fn snapshots(&self, repository: Option<&str>) -> Result<Vec<SnapshotRecord>> {
        let mut conn = self.conn()?;
        let rows = conn
            .query(
                "SELECT r.name, s.name, s.version, v.package_count, v.total_size,
                        s.created_at, s.description
                   FROM snapshots s
                   JOIN repositories r ON r.id = s.repository_id
                   JOIN repository_versions v
                     ON v.repository_id = s.repository_id AND v.number = s.version
                  WHERE $1::text IS NULL OR r.name = $1
                  ORDER BY r.name, s.created_at, s.name",
                &[&repository],
            )
            .map_err(db_err("listing snapshots"))?;
        Ok(rows
            .iter()
            .map(|r| SnapshotRecord {
                repository: r.get(0),
                name: r.get(1),
                version: r.get(2),
                packages: r.get(3),
                total_size: r.get(4),
                created_at: r.get(5),
                description: r.get(6),
            })
            .collect())
    }
}
