//! The schema: which migrations are applied, and applying the rest, each in its own
//! transaction (serialised between concurrent runs: an advisory lock on PostgreSQL, the write
//! lock on SQLite).

use super::super::db::{Dialect, Done, Mode, Store};
use crate::catalogue::migrations::{Migration, SchemaStatus, MIGRATIONS};
use crate::error::Result;

/// Arbitrary constant for the advisory lock that serialises concurrent `db migrate` runs on
/// PostgreSQL ("chantal\0").
const MIGRATION_LOCK: i64 = 0x6368_616e_7461_6c00;

fn schema_table(d: Dialect) -> String {
    match d {
        Dialect::Postgres => "CREATE TABLE IF NOT EXISTS chantal_schema_migrations (
                version     BIGINT PRIMARY KEY,
                name        TEXT NOT NULL,
                applied_at  TIMESTAMPTZ NOT NULL DEFAULT now()
            )"
        .into(),
        Dialect::Sqlite => format!(
            "CREATE TABLE IF NOT EXISTS chantal_schema_migrations (
                version     INTEGER PRIMARY KEY,
                name        TEXT NOT NULL,
                applied_at  INTEGER NOT NULL DEFAULT ({})
            ) STRICT",
            d.now()
        ),
    }
}

fn table_exists(d: Dialect) -> &'static str {
    match d {
        Dialect::Postgres => "SELECT to_regclass('chantal_schema_migrations') IS NOT NULL",
        Dialect::Sqlite => {
            "SELECT EXISTS (SELECT 1 FROM sqlite_schema
                             WHERE type = 'table' AND name = 'chantal_schema_migrations')"
        }
    }
}

/// Reads the schema table (absent means version 0).
pub fn schema_status<S: Store>(s: &S) -> Result<SchemaStatus> {
    let ctx = "reading the schema version";
    s.autocommit(|db| {
        let exists = db.one(ctx, table_exists(db.dialect()), &[], |r| r.boolean(0))?;
        let applied = if exists {
            db.all(
                ctx,
                "SELECT version, name, applied_at FROM chantal_schema_migrations ORDER BY version",
                &[],
                |r| Ok((r.i64(0)?, r.string(1)?, r.time(2)?)),
            )?
        } else {
            Vec::new()
        };
        Ok(SchemaStatus::from_applied(applied))
    })
}

/// Applies every pending migration, each in its own transaction, and returns those applied.
/// Safe to run concurrently: each run waits for the others and re-checks.
pub fn migrate<S: Store>(s: &S) -> Result<Vec<Migration>> {
    schema_status(s)?.check_not_newer()?;
    let mut applied = Vec::new();
    for m in MIGRATIONS {
        let ctx = format!("applying migration {}", m.name);
        let done = s.transaction(&ctx, Mode::Write, |db| {
            let d = db.dialect();
            if d == Dialect::Postgres {
                db.execute(
                    &ctx,
                    "SELECT pg_advisory_xact_lock($1)",
                    &[MIGRATION_LOCK.into()],
                )?;
            }
            db.batch(&ctx, &schema_table(d))?;
            let applied = db
                .opt(
                    &ctx,
                    "SELECT version FROM chantal_schema_migrations WHERE version = $1",
                    &[m.version.into()],
                    |r| r.i64(0),
                )?
                .is_some();
            if applied {
                return Ok(Done::Rollback(false));
            }
            db.batch(
                &ctx,
                match d {
                    Dialect::Postgres => m.postgresql,
                    Dialect::Sqlite => m.sqlite,
                },
            )?;
            db.execute(
                &ctx,
                "INSERT INTO chantal_schema_migrations (version, name) VALUES ($1, $2)",
                &[m.version.into(), m.name.into()],
            )?;
            Ok(Done::Commit(true))
        })?;
        if done {
            applied.push(*m);
        }
    }
    Ok(applied)
}
