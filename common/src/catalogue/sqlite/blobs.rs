//! The `blobs` table: which files the pool holds.

use rusqlite::OptionalExtension;

use super::{db_err, SqliteStore, NOW};
use crate::catalogue::model::BlobRecord;
use crate::error::Result;
use crate::pool::StoredBlob;

impl SqliteStore {
    pub fn record_blob(&self, blob: &StoredBlob) -> Result<()> {
        let conn = self.conn()?;
        let size = i64::try_from(blob.size).unwrap_or(i64::MAX);
        conn.execute(
            &format!(
                "INSERT INTO blobs (sha256, size, path) VALUES (?1, ?2, ?3)
                 ON CONFLICT (sha256) DO UPDATE SET used_at = {NOW}"
            ),
            (&blob.sha256, size, &blob.rel_path),
        )
        .map_err(db_err(format!("recording blob {}", blob.sha256)))?;
        Ok(())
    }

    pub fn blob(&self, sha256: &str) -> Result<Option<BlobRecord>> {
        let conn = self.conn()?;
        conn.query_row(
            "SELECT sha256, size, path FROM blobs WHERE sha256 = ?1",
            [sha256],
            |r| {
                Ok(BlobRecord {
                    sha256: r.get(0)?,
                    size: r.get(1)?,
                    path: r.get(2)?,
                })
            },
        )
        .optional()
        .map_err(db_err(format!("reading blob {sha256}")))
    }
}
