//! Schema migrations: numbered `.sql` files, one per change, embedded at build time, applied in
//! order, each in its own transaction, and recorded in `chantal_schema_migrations`. Every
//! migration exists once per backend (`migrations/postgresql/`, `migrations/sqlite/`) under the
//! same number and name, so both schemas move in step.

use crate::error::{Error, Result};

/// One migration, in both dialects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub postgresql: &'static str,
    pub sqlite: &'static str,
}

/// Every migration this binary knows, in order. A test checks this list against the files in
/// `migrations/` so that a new file cannot be forgotten here or for one backend.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_initial",
        postgresql: include_str!("../../../migrations/postgresql/0001_initial.sql"),
        sqlite: include_str!("../../../migrations/sqlite/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "0002_serving_grace_and_lock_holders",
        postgresql: include_str!(
            "../../../migrations/postgresql/0002_serving_grace_and_lock_holders.sql"
        ),
        sqlite: include_str!("../../../migrations/sqlite/0002_serving_grace_and_lock_holders.sql"),
    },
    Migration {
        version: 3,
        name: "0003_package_signatures",
        postgresql: include_str!("../../../migrations/postgresql/0003_package_signatures.sql"),
        sqlite: include_str!("../../../migrations/sqlite/0003_package_signatures.sql"),
    },
    Migration {
        version: 4,
        name: "0004_filter_counts",
        postgresql: include_str!("../../../migrations/postgresql/0004_filter_counts.sql"),
        sqlite: include_str!("../../../migrations/sqlite/0004_filter_counts.sql"),
    },
    Migration {
        version: 5,
        name: "0005_environments",
        postgresql: include_str!("../../../migrations/postgresql/0005_environments.sql"),
        sqlite: include_str!("../../../migrations/sqlite/0005_environments.sql"),
    },
    Migration {
        version: 6,
        name: "0006_environment_unset_and_versions",
        postgresql: include_str!(
            "../../../migrations/postgresql/0006_environment_unset_and_versions.sql"
        ),
        sqlite: include_str!("../../../migrations/sqlite/0006_environment_unset_and_versions.sql"),
    },
    Migration {
        version: 7,
        name: "0007_package_search",
        postgresql: include_str!("../../../migrations/postgresql/0007_package_search.sql"),
        sqlite: include_str!("../../../migrations/sqlite/0007_package_search.sql"),
    },
    Migration {
        version: 8,
        name: "0008_on_demand",
        postgresql: include_str!("../../../migrations/postgresql/0008_on_demand.sql"),
        sqlite: include_str!("../../../migrations/sqlite/0008_on_demand.sql"),
    },
];

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

impl SchemaStatus {
    /// The status given the applied migrations a backend read from its schema table.
    pub(super) fn from_applied(applied: Vec<(i64, String, chrono::DateTime<chrono::Utc>)>) -> Self {
        let current = applied.iter().map(|a| a.0).max().unwrap_or(0);
        SchemaStatus {
            current,
            latest_known: latest_known(),
            pending: MIGRATIONS
                .iter()
                .filter(|m| !applied.iter().any(|a| a.0 == m.version))
                .copied()
                .collect(),
            applied,
        }
    }

    /// Fails unless the schema is exactly at the version this binary knows.
    pub fn require_current(&self) -> Result<()> {
        let expected = self.latest_known;
        if self.current > expected {
            Err(Error::SchemaTooNew {
                current: self.current,
                expected,
            })
        } else if self.current < expected || !self.pending.is_empty() {
            Err(Error::SchemaOutdated {
                current: self.current,
                expected,
            })
        } else {
            Ok(())
        }
    }

    /// Refuses to migrate a schema newer than this binary.
    pub(super) fn check_not_newer(&self) -> Result<()> {
        if self.current > self.latest_known {
            return Err(Error::SchemaTooNew {
                current: self.current,
                expected: self.latest_known,
            });
        }
        Ok(())
    }
}

fn latest_known() -> i64 {
    MIGRATIONS.iter().map(|m| m.version).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::MIGRATIONS;

    fn sql_files(backend: &str) -> Vec<String> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../migrations")
            .join(backend);
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        files
    }

    #[test]
    fn every_migration_file_is_registered_in_order_for_both_backends() {
        let names: Vec<String> = MIGRATIONS
            .iter()
            .map(|m| format!("{}.sql", m.name))
            .collect();
        assert_eq!(sql_files("postgresql"), names);
        assert_eq!(sql_files("sqlite"), names);
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1);
            assert!(m.name.starts_with(&format!("{:04}_", m.version)));
        }
    }
}
