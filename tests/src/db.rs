//! The catalogue database of a test, on the backend the run is for: `$CHANTAL_TEST_BACKEND`
//! is `postgresql` (the default) or `sqlite`, and the test command runs the suite once per
//! backend. Assertions that look into the catalogue go through [`TestDb::query`], whose SQL is
//! written once (with `$1` placeholders) for both.

use std::path::{Path, PathBuf};

use crate::pg::{Cluster, PgDb};

/// Names the backend a test run is for.
pub const BACKEND_ENV: &str = "CHANTAL_TEST_BACKEND";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// The backend of this run.
pub fn backend() -> Backend {
    match std::env::var(BACKEND_ENV).as_deref() {
        Ok("sqlite") => Backend::Sqlite,
        Ok("postgresql") | Ok("") | Err(_) => Backend::Postgres,
        Ok(other) => panic!("{BACKEND_ENV}={other}: expected postgresql or sqlite"),
    }
}

/// A catalogue database for one test.
pub struct TestDb {
    /// What goes into `database.url` (for SQLite, also what the default resolves to).
    pub url: String,
    /// Whether the configuration must name it; false for the embedded default.
    pub explicit: bool,
    inner: Inner,
}

enum Inner {
    Postgres(PgDb),
    Sqlite {
        path: PathBuf,
        _dir: Option<tempfile::TempDir>,
    },
}

/// One value of a result row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    Null,
    Int(i64),
    Text(String),
}

impl Cell {
    pub fn i64(&self) -> Option<i64> {
        match self {
            Cell::Null => None,
            Cell::Int(i) => Some(*i),
            Cell::Text(t) => panic!("expected an integer, got {t:?}"),
        }
    }
    pub fn text(&self) -> String {
        match self {
            Cell::Text(t) => t.clone(),
            other => panic!("expected text, got {other:?}"),
        }
    }
}

/// A query parameter.
pub enum Param<'a> {
    Text(&'a str),
    Int(i64),
}

impl<'a> From<&'a str> for Param<'a> {
    fn from(s: &'a str) -> Self {
        Param::Text(s)
    }
}

impl From<i64> for Param<'_> {
    fn from(i: i64) -> Self {
        Param::Int(i)
    }
}

impl TestDb {
    /// A fresh database on this run's backend, named in the configuration.
    pub fn new() -> TestDb {
        match backend() {
            Backend::Postgres => Self::postgres(),
            Backend::Sqlite => Self::sqlite_file(),
        }
    }

    /// A fresh catalogue on each backend, PostgreSQL then SQLite, whatever the run's backend:
    /// for tests of the catalogue's rules, which must hold on both, in one test process.
    pub fn each_backend() -> [TestDb; 2] {
        [Self::postgres(), Self::sqlite_file()]
    }

    /// A fresh SQLite file in a directory of its own, named in the configuration.
    pub fn sqlite_file() -> TestDb {
        let dir = tempfile::Builder::new()
            .prefix("chantal-db-")
            .tempdir()
            .unwrap();
        let path = dir.path().join("catalog.db");
        TestDb {
            url: format!("sqlite://{}", path.display()),
            explicit: true,
            inner: Inner::Sqlite {
                path,
                _dir: Some(dir),
            },
        }
    }

    /// A fresh PostgreSQL database whatever the run's backend.
    pub fn postgres() -> TestDb {
        Self::from_pg(PgDb::new())
    }

    /// The `postgres` database of a private cluster.
    pub fn on(cluster: &Cluster) -> TestDb {
        Self::from_pg(PgDb::on(cluster))
    }

    fn from_pg(db: PgDb) -> TestDb {
        TestDb {
            url: db.url.clone(),
            explicit: true,
            inner: Inner::Postgres(db),
        }
    }

    /// The same PostgreSQL database, for a second installation (another "host") that shares
    /// it; the database stays until the original is dropped.
    pub fn shared(&self) -> TestDb {
        match &self.inner {
            Inner::Postgres(db) => Self::from_pg(PgDb {
                name: String::new(),
                url: db.url.clone(),
            }),
            Inner::Sqlite { .. } => panic!("only a PostgreSQL catalogue is shared by hosts"),
        }
    }

    /// The embedded default of an installation whose storage is `base_path`: not named in
    /// the configuration.
    pub fn sqlite_default(base_path: &Path) -> TestDb {
        let path = base_path.join("catalog.db");
        TestDb {
            url: format!("sqlite://{}", path.display()),
            explicit: false,
            inner: Inner::Sqlite { path, _dir: None },
        }
    }

    pub fn backend(&self) -> Backend {
        match self.inner {
            Inner::Postgres(_) => Backend::Postgres,
            Inner::Sqlite { .. } => Backend::Sqlite,
        }
    }

    /// Runs `sql` (placeholders `$1`, `$2`, …) and returns every row.
    pub fn query(&self, sql: &str, params: &[Param<'_>]) -> Vec<Vec<Cell>> {
        match &self.inner {
            Inner::Postgres(db) => {
                let mut client = postgres::Client::connect(&db.url, postgres::NoTls).unwrap();
                let values: Vec<Box<dyn postgres::types::ToSql + Sync>> = params
                    .iter()
                    .map(|p| -> Box<dyn postgres::types::ToSql + Sync> {
                        match p {
                            Param::Text(s) => Box::new(s.to_string()),
                            Param::Int(i) => Box::new(*i),
                        }
                    })
                    .collect();
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                    values.iter().map(|v| v.as_ref()).collect();
                let rows = client
                    .query(sql, &refs)
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
                rows.iter()
                    .map(|r| {
                        (0..r.len())
                            .map(|i| {
                                use postgres::types::Type;
                                let ty = r.columns()[i].type_().clone();
                                if ty == Type::INT8 {
                                    r.get::<_, Option<i64>>(i).map_or(Cell::Null, Cell::Int)
                                } else if ty == Type::INT4 {
                                    r.get::<_, Option<i32>>(i)
                                        .map_or(Cell::Null, |v| Cell::Int(v.into()))
                                } else if ty == Type::BOOL {
                                    r.get::<_, Option<bool>>(i)
                                        .map_or(Cell::Null, |v| Cell::Int(v.into()))
                                } else {
                                    r.get::<_, Option<String>>(i).map_or(Cell::Null, Cell::Text)
                                }
                            })
                            .collect()
                    })
                    .collect()
            }
            Inner::Sqlite { path, .. } => {
                let conn = rusqlite::Connection::open(path).unwrap();
                conn.busy_timeout(std::time::Duration::from_secs(60))
                    .unwrap();
                let sql = sqlite_placeholders(sql);
                let mut stmt = conn.prepare(&sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
                let n = stmt.column_count();
                let values: Vec<rusqlite::types::Value> = params
                    .iter()
                    .map(|p| match p {
                        Param::Text(s) => rusqlite::types::Value::Text(s.to_string()),
                        Param::Int(i) => rusqlite::types::Value::Integer(*i),
                    })
                    .collect();
                let mut rows = stmt
                    .query(rusqlite::params_from_iter(values))
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
                let mut out = Vec::new();
                while let Some(r) = rows.next().unwrap() {
                    out.push(
                        (0..n)
                            .map(|i| match r.get_ref(i).unwrap() {
                                rusqlite::types::ValueRef::Null => Cell::Null,
                                rusqlite::types::ValueRef::Integer(v) => Cell::Int(v),
                                rusqlite::types::ValueRef::Text(t) => {
                                    Cell::Text(String::from_utf8_lossy(t).into_owned())
                                }
                                other => panic!("unexpected value {other:?} in {sql}"),
                            })
                            .collect(),
                    );
                }
                out
            }
        }
    }

    /// The first column of every row, as text.
    pub fn strings(&self, sql: &str, params: &[Param<'_>]) -> Vec<String> {
        self.query(sql, params)
            .iter()
            .map(|r| r[0].text())
            .collect()
    }

    /// The first column of the first row as an integer (NULL or no row: None).
    pub fn i64(&self, sql: &str, params: &[Param<'_>]) -> Option<i64> {
        self.query(sql, params).first().and_then(|r| r[0].i64())
    }

    /// Runs statements that return nothing.
    pub fn execute_batch(&self, sql: &str) {
        match &self.inner {
            Inner::Postgres(db) => postgres::Client::connect(&db.url, postgres::NoTls)
                .unwrap()
                .batch_execute(sql)
                .unwrap_or_else(|e| panic!("{sql}: {e}")),
            Inner::Sqlite { path, .. } => {
                let conn = rusqlite::Connection::open(path).unwrap();
                conn.busy_timeout(std::time::Duration::from_secs(60))
                    .unwrap();
                conn.execute_batch(sql)
                    .unwrap_or_else(|e| panic!("{sql}: {e}"))
            }
        }
    }

    /// A timestamp literal in the backend's storage format (`2026-01-02 03:04:05` UTC).
    pub fn timestamp(&self, utc: &str) -> String {
        match self.inner {
            Inner::Postgres(_) => format!("'{utc}+00'"),
            Inner::Sqlite { .. } => format!("(unixepoch('{utc}') * 1000000)"),
        }
    }
}

impl Default for TestDb {
    fn default() -> Self {
        Self::new()
    }
}

/// `$1` → `?1`: the same SQL text for both drivers.
fn sqlite_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(|d| d.is_ascii_digit()) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders() {
        assert_eq!(
            super::sqlite_placeholders("a = $1 AND b = $12 AND c = '$x'"),
            "a = ?1 AND b = ?12 AND c = '$x'"
        );
    }
}
