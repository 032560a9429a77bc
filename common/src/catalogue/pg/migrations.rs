//! Applying migrations to PostgreSQL: each in its own transaction, serialised between
//! concurrent runs by an advisory lock.

use super::{db_err, PgStore};
use crate::catalogue::migrations::{Migration, SchemaStatus, MIGRATIONS};
use crate::error::Result;

/// Arbitrary constant for the advisory lock that serialises concurrent `db migrate` runs.
const MIGRATION_LOCK: i64 = 0x6368_616e_7461_6c00; // "chantal\0"

const CREATE_SCHEMA_TABLE: &str = "CREATE TABLE IF NOT EXISTS chantal_schema_migrations (
    version     BIGINT PRIMARY KEY,
    name        TEXT NOT NULL,
    applied_at  TIMESTAMPTZ NOT NULL DEFAULT now()
)";

impl PgStore {
    /// Reads the schema table (absent means version 0).
    pub fn schema_status(&self) -> Result<SchemaStatus> {
        let mut conn = self.conn()?;
        let exists: bool = conn
            .query_one(
                "SELECT to_regclass('chantal_schema_migrations') IS NOT NULL",
                &[],
            )
            .map_err(db_err("reading the schema version"))?
            .get(0);
        let applied = if exists {
            conn.query(
                "SELECT version, name, applied_at FROM chantal_schema_migrations ORDER BY version",
                &[],
            )
            .map_err(db_err("reading the schema version"))?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect()
        } else {
            Vec::new()
        };
        Ok(SchemaStatus::from_applied(applied))
    }

    /// Applies every pending migration, each in its own transaction, and returns those applied.
    /// Safe to run concurrently: an advisory lock serialises the runs and each re-checks.
    pub fn migrate(&self) -> Result<Vec<Migration>> {
        self.schema_status()?.check_not_newer()?;
        let mut conn = self.conn()?;
        let mut applied = Vec::new();
        for m in MIGRATIONS {
            let context = format!("applying migration {}", m.name);
            let mut tx = conn.transaction().map_err(db_err(context.clone()))?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                .map_err(db_err(context.clone()))?;
            tx.batch_execute(CREATE_SCHEMA_TABLE)
                .map_err(db_err(context.clone()))?;
            let done = tx
                .query_opt(
                    "SELECT 1 FROM chantal_schema_migrations WHERE version = $1",
                    &[&m.version],
                )
                .map_err(db_err(context.clone()))?
                .is_some();
            if done {
                continue;
            }
            tx.batch_execute(m.postgresql)
                .map_err(db_err(context.clone()))?;
            tx.execute(
                "INSERT INTO chantal_schema_migrations (version, name) VALUES ($1, $2)",
                &[&m.version, &m.name],
            )
            .map_err(db_err(context.clone()))?;
            tx.commit().map_err(db_err(context))?;
            applied.push(*m);
        }
        Ok(applied)
    }
}
