//! Applying migrations to a SQLite catalogue: each in its own `BEGIN IMMEDIATE` transaction,
//! which also serialises concurrent `db migrate` runs.

use rusqlite::TransactionBehavior;

use super::{db_err, time, SqliteStore, NOW};
use crate::catalogue::migrations::{Migration, SchemaStatus, MIGRATIONS};
use crate::error::Result;

impl SqliteStore {
    pub fn schema_status(&self) -> Result<SchemaStatus> {
        let conn = self.conn()?;
        let ctx = "reading the schema version";
        let exists: bool = conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_schema
                                 WHERE type = 'table' AND name = 'chantal_schema_migrations')",
                [],
                |r| r.get(0),
            )
            .map_err(db_err(ctx))?;
        let mut applied = Vec::new();
        if exists {
            let mut stmt = conn
                .prepare(
                    "SELECT version, name, applied_at FROM chantal_schema_migrations
                      ORDER BY version",
                )
                .map_err(db_err(ctx))?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, time(r.get(2)?))))
                .map_err(db_err(ctx))?;
            for row in rows {
                applied.push(row.map_err(db_err(ctx))?);
            }
        }
        Ok(SchemaStatus::from_applied(applied))
    }

    pub fn migrate(&self) -> Result<Vec<Migration>> {
        self.schema_status()?.check_not_newer()?;
        let mut conn = self.conn()?;
        let mut applied = Vec::new();
        for m in MIGRATIONS {
            let context = format!("applying migration {}", m.name);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_err(context.clone()))?;
            tx.execute_batch(&format!(
                "CREATE TABLE IF NOT EXISTS chantal_schema_migrations (
                     version     INTEGER PRIMARY KEY,
                     name        TEXT NOT NULL,
                     applied_at  INTEGER NOT NULL DEFAULT ({NOW})
                 ) STRICT"
            ))
            .map_err(db_err(context.clone()))?;
            let done: bool = tx
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM chantal_schema_migrations WHERE version = ?1)",
                    [m.version],
                    |r| r.get(0),
                )
                .map_err(db_err(context.clone()))?;
            if done {
                continue;
            }
            tx.execute_batch(m.sqlite)
                .map_err(db_err(context.clone()))?;
            tx.execute(
                "INSERT INTO chantal_schema_migrations (version, name) VALUES (?1, ?2)",
                (m.version, m.name),
            )
            .map_err(db_err(context.clone()))?;
            tx.commit().map_err(db_err(context))?;
            applied.push(*m);
        }
        Ok(applied)
    }
}
