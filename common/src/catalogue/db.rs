//! What the catalogue's rules need from a database, and nothing more: statements with `$1`
//! placeholders, rows read by position, bulk inserts, temporary tables, and the few places
//! where PostgreSQL and SQLite must differ (the time "now", row locks, table locks,
//! notifications). The rules themselves (`ops/`) are written once over [`Db`]; each backend
//! supplies a [`Store`] that opens transactions and implements [`Db`] for its driver.

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};

/// The SQL dialect of a backend, for the few fragments that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dialect {
    Postgres,
    Sqlite,
}

impl Dialect {
    /// The current time, as the schema stores it.
    pub fn now(self) -> &'static str {
        match self {
            Dialect::Postgres => "now()",
            // Microseconds since the Unix epoch, UTC: the SQLite schema's time unit.
            Dialect::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)",
        }
    }

    /// Locks the rows a SELECT returns until the transaction ends (SQLite's write
    /// transaction already excludes every other writer).
    pub fn for_update(self) -> &'static str {
        match self {
            Dialect::Postgres => " FOR UPDATE",
            Dialect::Sqlite => "",
        }
    }

    /// Appended to an ORDER BY text column: compare bytes, as Rust does, whatever the
    /// database's collation.
    pub fn collate_bytes(self) -> &'static str {
        match self {
            Dialect::Postgres => " COLLATE \"C\"",
            // SQLite's default collation, BINARY, compares bytes.
            Dialect::Sqlite => "",
        }
    }

    /// A time column as whole seconds since the epoch, rounded to the nearest second.
    pub fn epoch_seconds(self, column: &str) -> String {
        match self {
            Dialect::Postgres => format!("CAST(extract(epoch FROM {column}) AS BIGINT)"),
            Dialect::Sqlite => format!("(({column} + 500000) / 1000000)"),
        }
    }
}

/// A value bound to a statement's placeholder, or written by a bulk insert.
#[derive(Debug, Clone, Copy)]
pub(super) enum Val<'a> {
    I64(i64),
    OptI64(Option<i64>),
    I32(i32),
    OptI32(Option<i32>),
    Str(&'a str),
    OptStr(Option<&'a str>),
    Time(DateTime<Utc>),
    OptTime(Option<DateTime<Utc>>),
}

impl From<i64> for Val<'_> {
    fn from(v: i64) -> Self {
        Val::I64(v)
    }
}
impl From<Option<i64>> for Val<'_> {
    fn from(v: Option<i64>) -> Self {
        Val::OptI64(v)
    }
}
impl From<i32> for Val<'_> {
    fn from(v: i32) -> Self {
        Val::I32(v)
    }
}
impl<'a> From<&'a str> for Val<'a> {
    fn from(v: &'a str) -> Self {
        Val::Str(v)
    }
}
impl<'a> From<&'a String> for Val<'a> {
    fn from(v: &'a String) -> Self {
        Val::Str(v)
    }
}
impl<'a> From<Option<&'a str>> for Val<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Val::OptStr(v)
    }
}
impl<'a> From<&'a Option<String>> for Val<'a> {
    fn from(v: &'a Option<String>) -> Self {
        Val::OptStr(v.as_deref())
    }
}
impl<'a> From<&'a crate::Sha256> for Val<'a> {
    fn from(v: &'a crate::Sha256) -> Self {
        Val::Str(v.as_str())
    }
}
impl<'a> From<&'a Option<crate::Sha256>> for Val<'a> {
    fn from(v: &'a Option<crate::Sha256>) -> Self {
        Val::OptStr(v.as_ref().map(crate::Sha256::as_str))
    }
}
impl From<DateTime<Utc>> for Val<'_> {
    fn from(v: DateTime<Utc>) -> Self {
        Val::Time(v)
    }
}

/// The type of a column a bulk insert writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Text,
    Int8,
    Int4,
    Time,
}

impl Kind {
    /// The column type in `d`'s schema.
    pub fn sql_type(self, d: Dialect) -> &'static str {
        match (self, d) {
            (Kind::Text, _) => "TEXT",
            (Kind::Int8, Dialect::Postgres) => "BIGINT",
            (Kind::Int4, Dialect::Postgres) => "INTEGER",
            (Kind::Time, Dialect::Postgres) => "TIMESTAMPTZ",
            // Times are microseconds since the epoch.
            (Kind::Int8 | Kind::Int4 | Kind::Time, Dialect::Sqlite) => "INTEGER",
        }
    }
}

/// `a TEXT, b BIGINT`: a table's column definitions.
pub(super) fn column_defs(columns: &[(&str, Kind)], d: Dialect) -> String {
    columns
        .iter()
        .map(|(n, k)| format!("{n} {}", k.sql_type(d)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `a, b`: a column list.
pub(super) fn column_names(columns: &[(&str, Kind)]) -> String {
    columns
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a bulk insert does with a row whose key is taken already.
#[derive(Debug, Clone, Copy)]
pub(super) enum Conflict<'a> {
    /// Nothing can conflict (a staging table).
    None,
    /// Keep the row there is (`key`: the unique columns).
    Ignore { key: &'a str },
    /// Update the row there is with `set` (`key`: the unique columns).
    Update { key: &'a str, set: &'a str },
}

/// How strongly a transaction holds the `blobs` table (PostgreSQL; SQLite's write
/// transaction excludes every other writer already).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BlobLock {
    /// A writer of blob rows (a sync reserving or recording): waits for a cleanup's batch.
    Writer,
    /// A cleanup deciding what goes: waits for, and excludes, every writer.
    Cleanup,
}

/// A row of a result, read by column position.
pub(super) trait Row {
    fn i64(&self, i: usize) -> Result<i64>;
    fn opt_i64(&self, i: usize) -> Result<Option<i64>>;
    fn i32(&self, i: usize) -> Result<i32>;
    fn opt_i32(&self, i: usize) -> Result<Option<i32>>;
    fn string(&self, i: usize) -> Result<String>;
    fn opt_string(&self, i: usize) -> Result<Option<String>>;
    fn time(&self, i: usize) -> Result<DateTime<Utc>>;
    fn opt_time(&self, i: usize) -> Result<Option<DateTime<Utc>>>;
    fn boolean(&self, i: usize) -> Result<bool>;

    /// A sha256 column: checked, so a damaged row is an error here rather than a path
    /// built from it later.
    fn sha256(&self, i: usize) -> Result<crate::Sha256> {
        let s = self.string(i)?;
        crate::Sha256::parse(&s).map_err(|reason| crate::Error::Db {
            context: format!("reading column {i} as a sha256"),
            reason,
        })
    }
    fn opt_sha256(&self, i: usize) -> Result<Option<crate::Sha256>> {
        match self.opt_string(i)? {
            None => Ok(None),
            Some(s) => crate::Sha256::parse(&s)
                .map(Some)
                .map_err(|reason| crate::Error::Db {
                    context: format!("reading column {i} as a sha256"),
                    reason,
                }),
        }
    }
}

/// The [`Row`] getters a driver answers with its own typed `get(i)` (each backend writes the
/// time ones, whose storage differs).
macro_rules! typed_getters {
    () => {
        fn i64(&self, i: usize) -> $crate::Result<i64> {
            self.get(i)
        }
        fn opt_i64(&self, i: usize) -> $crate::Result<Option<i64>> {
            self.get(i)
        }
        fn i32(&self, i: usize) -> $crate::Result<i32> {
            self.get(i)
        }
        fn opt_i32(&self, i: usize) -> $crate::Result<Option<i32>> {
            self.get(i)
        }
        fn string(&self, i: usize) -> $crate::Result<String> {
            self.get(i)
        }
        fn opt_string(&self, i: usize) -> $crate::Result<Option<String>> {
            self.get(i)
        }
        fn boolean(&self, i: usize) -> $crate::Result<bool> {
            self.get(i)
        }
    };
}
pub(super) use typed_getters;

/// Receives the rows of a bulk insert, one at a time.
pub(super) trait Sink {
    fn row(&mut self, values: &[Val<'_>]) -> Result<()>;
}

/// A connection or a transaction of either backend. Every method takes what chantal was
/// doing (`ctx`), for the error message.
pub(super) trait Db {
    fn dialect(&self) -> Dialect;

    /// Runs a statement; the number of rows it affected.
    fn execute(&mut self, ctx: &str, sql: &str, params: &[Val<'_>]) -> Result<u64>;

    /// Runs a query and hands its rows to `each` as they arrive.
    fn query(
        &mut self,
        ctx: &str,
        sql: &str,
        params: &[Val<'_>],
        each: &mut dyn FnMut(&dyn Row) -> Result<()>,
    ) -> Result<()>;

    /// Runs statements that take no parameters and return nothing.
    fn batch(&mut self, ctx: &str, sql: &str) -> Result<()>;

    /// Creates an empty temporary table (gone at the end of the transaction), with an index
    /// on `index` columns if given.
    fn temp_table(
        &mut self,
        ctx: &str,
        name: &str,
        columns: &[(&str, Kind)],
        index: Option<&str>,
    ) -> Result<()>;

    /// Inserts the rows `fill` gives into `table`, in bulk. Returns the rows inserted.
    fn bulk_insert(
        &mut self,
        ctx: &str,
        table: &str,
        columns: &[(&str, Kind)],
        conflict: Conflict<'_>,
        fill: &mut dyn FnMut(&mut dyn Sink) -> Result<()>,
    ) -> Result<u64>;

    /// Updates the planner's statistics of a table just filled (PostgreSQL).
    fn analyze(&mut self, ctx: &str, table: &str) -> Result<()>;

    /// Takes the `blobs` table lock of `lock`'s strength until the transaction ends.
    fn lock_blobs(&mut self, ctx: &str, lock: BlobLock) -> Result<()>;

    /// Tells readers that a new version was committed, when this transaction commits.
    fn notify(&mut self, ctx: &str, payload: &str) -> Result<()>;
}

impl dyn Db + '_ {
    /// The first row mapped by `f`, if any.
    pub fn opt<T>(
        &mut self,
        ctx: &str,
        sql: &str,
        params: &[Val<'_>],
        f: impl Fn(&dyn Row) -> Result<T>,
    ) -> Result<Option<T>> {
        let mut out = None;
        self.query(ctx, sql, params, &mut |r| {
            if out.is_none() {
                out = Some(f(r)?);
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// The one row mapped by `f`; an error if there is none.
    pub fn one<T>(
        &mut self,
        ctx: &str,
        sql: &str,
        params: &[Val<'_>],
        f: impl Fn(&dyn Row) -> Result<T>,
    ) -> Result<T> {
        self.opt(ctx, sql, params, f)?.ok_or_else(|| Error::Db {
            context: ctx.to_string(),
            reason: "the query returned no row".into(),
        })
    }

    /// Every row, mapped by `f`.
    pub fn all<T>(
        &mut self,
        ctx: &str,
        sql: &str,
        params: &[Val<'_>],
        f: impl Fn(&dyn Row) -> Result<T>,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        self.query(ctx, sql, params, &mut |r| {
            out.push(f(r)?);
            Ok(())
        })?;
        Ok(out)
    }
}

/// How a transaction ends when its work succeeded.
pub(super) enum Done<T> {
    Commit(T),
    Rollback(T),
}

/// What a transaction does first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Reads only: a consistent view.
    Read,
    /// Writes: SQLite takes the write lock at once (`BEGIN IMMEDIATE`), so writers wait for
    /// each other instead of failing.
    Write,
}

/// A backend: where transactions come from, and the locks that live outside them.
pub(super) trait Store: Sync {
    /// Runs `f` in one transaction. `Err`, or `Done::Rollback`, rolls it back.
    fn transaction<T>(
        &self,
        ctx: &str,
        mode: Mode,
        f: impl FnOnce(&mut dyn Db) -> Result<Done<T>>,
    ) -> Result<T>;

    /// Runs `f` on a connection outside any transaction (each statement on its own).
    fn autocommit<T>(&self, f: impl FnOnce(&mut dyn Db) -> Result<T>) -> Result<T>;

    /// Takes the repository's sync lock if it is free (PostgreSQL: a session advisory lock on
    /// a connection of its own; SQLite: an `flock`). Called inside a write transaction that
    /// serialises lock takers.
    fn take_sync_lock(&self, name: &str) -> Result<Option<super::SyncLock>>;

    /// Whether some process holds the repository's sync lock, never taking it.
    fn sync_lock_taken(&self, name: &str) -> Result<bool>;

    /// Takes the lock that keeps two cleanups apart, if it is free; held while the value lives.
    fn take_cleanup_lock(&self) -> Result<Option<Box<dyn std::any::Any>>>;
}

/// Shorthand for the common write transaction that commits what it did.
pub(super) fn write<S: Store, T>(
    store: &S,
    ctx: &str,
    f: impl FnOnce(&mut dyn Db) -> Result<T>,
) -> Result<T> {
    store.transaction(ctx, Mode::Write, |db| f(db).map(Done::Commit))
}

/// Shorthand for a read transaction.
pub(super) fn read<S: Store, T>(
    store: &S,
    ctx: &str,
    f: impl FnOnce(&mut dyn Db) -> Result<T>,
) -> Result<T> {
    store.transaction(ctx, Mode::Read, |db| f(db).map(Done::Commit))
}

/// A driver's error, with what chantal was doing.
pub(super) fn fail(ctx: &str, reason: impl std::fmt::Display) -> Error {
    Error::Db {
        context: ctx.to_string(),
        reason: reason.to_string(),
    }
}
