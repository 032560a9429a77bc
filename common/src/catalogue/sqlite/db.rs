//! [`Db`] over a rusqlite connection: `$1` placeholders become `?1`, statements are prepared
//! once per connection (cached), times are microseconds since the epoch, and bulk inserts are
//! one prepared INSERT run per row (inside the caller's transaction, that is SQLite's fast
//! path). Temporary tables are dropped when the transaction ends: the connection is reused.

use std::borrow::Cow;

use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::Connection;

use super::super::db::{
    column_defs, column_names, fail, typed_getters, BlobLock, Conflict, Db, Dialect, Kind, Row,
    Sink, Val,
};
use super::{micros, reason, time};
use crate::error::Result;

pub(super) struct SqliteDb<'a> {
    pub conn: &'a Connection,
    /// Temporary tables created meanwhile, dropped by the store when the transaction ends.
    pub temp_tables: Vec<String>,
}

/// `$1` → `?1`: the statements of `ops/` are written with PostgreSQL's placeholders, which
/// SQLite reads as names.
fn placeholders(sql: &str) -> Cow<'_, str> {
    if !sql.contains('$') {
        return Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn sqlite(ctx: &str) -> impl FnOnce(rusqlite::Error) -> crate::Error + '_ {
    move |e| fail(ctx, reason(&e))
}

impl rusqlite::ToSql for Val<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Val::I64(v) => ToSqlOutput::Owned(Value::Integer(*v)),
            Val::OptI64(Some(v)) => ToSqlOutput::Owned(Value::Integer(*v)),
            Val::I32(v) | Val::OptI32(Some(v)) => ToSqlOutput::Owned(Value::Integer(i64::from(*v))),
            Val::Str(v) | Val::OptStr(Some(v)) => {
                ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes()))
            }
            Val::Time(t) | Val::OptTime(Some(t)) => ToSqlOutput::Owned(Value::Integer(micros(*t))),
            Val::OptI64(None) | Val::OptI32(None) | Val::OptStr(None) | Val::OptTime(None) => {
                ToSqlOutput::Owned(Value::Null)
            }
        })
    }
}

impl Db for SqliteDb<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn execute(&mut self, ctx: &str, sql: &str, values: &[Val<'_>]) -> Result<u64> {
        let mut stmt = self
            .conn
            .prepare_cached(&placeholders(sql))
            .map_err(sqlite(ctx))?;
        let n = stmt
            .execute(rusqlite::params_from_iter(values))
            .map_err(sqlite(ctx))?;
        Ok(n as u64)
    }

    fn query(
        &mut self,
        ctx: &str,
        sql: &str,
        values: &[Val<'_>],
        each: &mut dyn FnMut(&dyn Row) -> Result<()>,
    ) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare_cached(&placeholders(sql))
            .map_err(sqlite(ctx))?;
        let mut rows = stmt
            .query(rusqlite::params_from_iter(values))
            .map_err(sqlite(ctx))?;
        while let Some(r) = rows.next().map_err(sqlite(ctx))? {
            each(&SqliteRow(r))?;
        }
        Ok(())
    }

    fn batch(&mut self, ctx: &str, sql: &str) -> Result<()> {
        self.conn.execute_batch(sql).map_err(sqlite(ctx))
    }

    fn temp_table(
        &mut self,
        ctx: &str,
        name: &str,
        columns: &[(&str, Kind)],
        index: Option<&str>,
    ) -> Result<()> {
        let cols = column_defs(columns, Dialect::Sqlite);
        let mut sql =
            format!("DROP TABLE IF EXISTS temp.{name}; CREATE TEMP TABLE {name} ({cols});");
        if let Some(index) = index {
            sql.push_str(&format!(
                "CREATE INDEX temp.{name}_key ON {name} ({index});"
            ));
        }
        self.batch(ctx, &sql)?;
        if !self.temp_tables.iter().any(|t| t == name) {
            self.temp_tables.push(name.to_string());
        }
        Ok(())
    }

    fn bulk_insert(
        &mut self,
        ctx: &str,
        table: &str,
        columns: &[(&str, Kind)],
        conflict: Conflict<'_>,
        fill: &mut dyn FnMut(&mut dyn Sink) -> Result<()>,
    ) -> Result<u64> {
        let names = column_names(columns);
        let slots = (1..=columns.len())
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let on_conflict = match conflict {
            Conflict::None => String::new(),
            Conflict::Ignore { key } => format!(" ON CONFLICT ({key}) DO NOTHING"),
            Conflict::Update { key, set } => format!(" ON CONFLICT ({key}) DO UPDATE SET {set}"),
        };
        let stmt = self
            .conn
            .prepare_cached(&format!(
                "INSERT INTO {table} ({names}) VALUES ({slots}){on_conflict}"
            ))
            .map_err(sqlite(ctx))?;
        let mut sink = Inserting { stmt, ctx, n: 0 };
        fill(&mut sink)?;
        Ok(sink.n)
    }

    fn analyze(&mut self, _ctx: &str, _table: &str) -> Result<()> {
        Ok(())
    }

    fn lock_blobs(&mut self, _ctx: &str, _lock: BlobLock) -> Result<()> {
        // The write transaction (BEGIN IMMEDIATE) already excludes every other writer.
        Ok(())
    }

    fn notify(&mut self, _ctx: &str, _payload: &str) -> Result<()> {
        // Readers watch `PRAGMA data_version`, which every commit changes.
        Ok(())
    }
}

struct Inserting<'a, 'c> {
    stmt: rusqlite::CachedStatement<'c>,
    ctx: &'a str,
    n: u64,
}

impl Sink for Inserting<'_, '_> {
    fn row(&mut self, values: &[Val<'_>]) -> Result<()> {
        self.n += self
            .stmt
            .execute(rusqlite::params_from_iter(values))
            .map_err(sqlite(self.ctx))? as u64;
        Ok(())
    }
}

struct SqliteRow<'a>(&'a rusqlite::Row<'a>);

impl SqliteRow<'_> {
    fn get<T: rusqlite::types::FromSql>(&self, i: usize) -> Result<T> {
        self.0.get(i).map_err(sqlite("reading a row"))
    }
}

impl Row for SqliteRow<'_> {
    typed_getters!();
    fn time(&self, i: usize) -> Result<chrono::DateTime<chrono::Utc>> {
        Ok(time(self.get(i)?))
    }
    fn opt_time(&self, i: usize) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
        Ok(self.get::<Option<i64>>(i)?.map(time))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_become_sqlites() {
        assert_eq!(
            super::placeholders("a = $1 AND b = $12 OR c = '$'"),
            "a = ?1 AND b = ?12 OR c = '$'"
        );
        assert_eq!(super::placeholders("SELECT 1"), "SELECT 1");
    }
}
