//! Schema migrations: numbered `.sql` files in the workspace's `migrations/` directory, embedded
//! at build time, applied in order, each in its own transaction, and recorded in
//! `chantal_schema_migrations`.

use super::{db_err, Catalogue};
use crate::error::{Error, Result};

/// One migration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration this binary knows, in order. A test checks this list against the files in
/// `migrations/` so that a new file cannot be forgotten here.
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "0001_initial",
    sql: include_str!("../../../migrations/0001_initial.sql"),
}];

/// Arbitrary constant for the advisory lock that serialises concurrent `db migrate` runs.
const MIGRATION_LOCK: i64 = 0x6368_616e_7461_6c00; // "chantal\0"

/// Where the schema stands relative to this binary.
#[derive(Debug, Clone)]
pub struct SchemaStatus {
    /// Highest applied version (0 for an empty database).
    pub current: i64,
    /// Highest version this binary knows.
    pub latest_known: i64,
    /// Applied migrations with their application time.
    pub applied: Vec<(i64, String, chrono::DateTime<chrono::Utc>)>,
    /// Known migrations not yet applied.
    pub pending: Vec<Migration>,
}

const CREATE_SCHEMA_TABLE: &str = "CREATE TABLE IF NOT EXISTS chantal_schema_migrations (
    version     BIGINT PRIMARY KEY,
    name        TEXT NOT NULL,
    applied_at  TIMESTAMPTZ NOT NULL DEFAULT now()
)";

impl Catalogue {
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
        let applied: Vec<(i64, String, chrono::DateTime<chrono::Utc>)> = if exists {
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
        let current = applied.iter().map(|a| a.0).max().unwrap_or(0);
        Ok(SchemaStatus {
            current,
            latest_known: latest_known(),
            pending: MIGRATIONS
                .iter()
                .filter(|m| !applied.iter().any(|a| a.0 == m.version))
                .copied()
                .collect(),
            applied,
        })
    }

    /// Fails unless the schema is exactly at the version this binary knows.
    pub fn require_current_schema(&self) -> Result<()> {
        let status = self.schema_status()?;
        let expected = status.latest_known;
        if status.current > expected {
            Err(Error::SchemaTooNew {
                current: status.current,
                expected,
            })
        } else if status.current < expected || !status.pending.is_empty() {
            Err(Error::SchemaOutdated {
                current: status.current,
                expected,
            })
        } else {
            Ok(())
        }
    }

    /// Applies every pending migration, each in its own transaction, and returns those applied.
    /// Safe to run concurrently: an advisory lock serialises the runs and each re-checks.
    pub fn migrate(&self) -> Result<Vec<Migration>> {
        let status = self.schema_status()?;
        if status.current > status.latest_known {
            return Err(Error::SchemaTooNew {
                current: status.current,
                expected: status.latest_known,
            });
        }
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
            tx.batch_execute(m.sql).map_err(db_err(context.clone()))?;
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

fn latest_known() -> i64 {
    MIGRATIONS.iter().map(|m| m.version).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::MIGRATIONS;

    #[test]
    fn every_migration_file_is_registered_in_order() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        let names: Vec<String> = MIGRATIONS
            .iter()
            .map(|m| format!("{}.sql", m.name))
            .collect();
        assert_eq!(files, names);
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1);
            assert!(m.name.starts_with(&format!("{:04}_", m.version)));
        }
    }
}
