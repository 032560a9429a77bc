//! The `blobs` table: which files the pool holds.

use super::{db_err, PgStore};
use crate::catalogue::model::*;
use crate::error::Result;
use crate::pool::StoredBlob;

impl PgStore {
    /// Records a blob that is now in the pool. Recording it twice is harmless.
    pub fn record_blob(&self, blob: &StoredBlob) -> Result<()> {
        let mut conn = self.conn()?;
        let size = i64::try_from(blob.size).unwrap_or(i64::MAX);
        conn.execute(
            "INSERT INTO blobs (sha256, size, path) VALUES ($1, $2, $3)
             ON CONFLICT (sha256) DO UPDATE SET used_at = now()",
            &[&blob.sha256, &size, &blob.rel_path],
        )
        .map_err(db_err(format!("recording blob {}", blob.sha256)))?;
        Ok(())
    }

    /// The recorded blob with this sha256, if any.
    pub fn blob(&self, sha256: &str) -> Result<Option<BlobRecord>> {
        let mut conn = self.conn()?;
        let row = conn
            .query_opt(
                "SELECT sha256, size, path FROM blobs WHERE sha256 = $1",
                &[&sha256],
            )
            .map_err(db_err(format!("reading blob {sha256}")))?;
        Ok(row.map(|r| BlobRecord {
            sha256: r.get(0),
            size: r.get(1),
            path: r.get(2),
        }))
    }
}
