//! [`Db`] over the blocking `postgres` client: parameters bound by their own type, rows read
//! with the driver's checks, bulk inserts by binary COPY (through a staging table when rows
//! may conflict).

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{IsNull, ToSql, Type};
use postgres::GenericClient;

use super::super::db::{
    column_defs, column_names, fail, typed_getters, BlobLock, Conflict, Db, Dialect, Kind, Row,
    Sink, Val,
};
use crate::error::{db_reason, Error, Result};

/// A client or a transaction, as [`Db`].
pub(super) struct PgDb<'a, C: GenericClient>(pub &'a mut C);

fn pg(ctx: &str) -> impl FnOnce(postgres::Error) -> Error + '_ {
    move |e| fail(ctx, db_reason(&e))
}

fn params<'a>(values: &'a [Val<'a>]) -> Vec<&'a (dyn ToSql + Sync)> {
    values.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

fn pg_type(k: Kind) -> Type {
    match k {
        Kind::Text => Type::TEXT,
        Kind::Int8 => Type::INT8,
        Kind::Int4 => Type::INT4,
        Kind::Time => Type::TIMESTAMPTZ,
    }
}

impl<C: GenericClient> PgDb<'_, C> {
    /// COPY `fill`'s rows into `table`.
    fn copy(
        &mut self,
        ctx: &str,
        table: &str,
        columns: &[(&str, Kind)],
        fill: &mut dyn FnMut(&mut dyn Sink) -> Result<()>,
    ) -> Result<u64> {
        let sink = self
            .0
            .copy_in(&format!(
                "COPY {table} ({}) FROM STDIN (FORMAT binary)",
                column_names(columns)
            ))
            .map_err(pg(ctx))?;
        let types: Vec<Type> = columns.iter().map(|(_, k)| pg_type(*k)).collect();
        let mut writer = Copying {
            writer: BinaryCopyInWriter::new(sink, &types),
            ctx,
        };
        fill(&mut writer)?;
        writer.writer.finish().map_err(pg(ctx))
    }
}

struct Copying<'a, 'c> {
    writer: BinaryCopyInWriter<'c>,
    ctx: &'a str,
}

impl Sink for Copying<'_, '_> {
    fn row(&mut self, values: &[Val<'_>]) -> Result<()> {
        self.writer.write(&params(values)).map_err(pg(self.ctx))
    }
}

impl<C: GenericClient> Db for PgDb<'_, C> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn execute(&mut self, ctx: &str, sql: &str, values: &[Val<'_>]) -> Result<u64> {
        self.0.execute(sql, &params(values)).map_err(pg(ctx))
    }

    fn query(
        &mut self,
        ctx: &str,
        sql: &str,
        values: &[Val<'_>],
        each: &mut dyn FnMut(&dyn Row) -> Result<()>,
    ) -> Result<()> {
        let mut rows = self.0.query_raw(sql, params(values)).map_err(pg(ctx))?;
        while let Some(r) = rows.next().map_err(pg(ctx))? {
            each(&PgRow(&r))?;
        }
        Ok(())
    }

    fn batch(&mut self, ctx: &str, sql: &str) -> Result<()> {
        self.0.batch_execute(sql).map_err(pg(ctx))
    }

    fn temp_table(
        &mut self,
        ctx: &str,
        name: &str,
        columns: &[(&str, Kind)],
        index: Option<&str>,
    ) -> Result<()> {
        let cols = column_defs(columns, Dialect::Postgres);
        let mut sql = format!(
            "DROP TABLE IF EXISTS pg_temp.{name};
             CREATE TEMP TABLE {name} ({cols}) ON COMMIT DROP;"
        );
        if let Some(index) = index {
            sql.push_str(&format!("CREATE INDEX ON {name} ({index});"));
        }
        self.batch(ctx, &sql)
    }

    fn bulk_insert(
        &mut self,
        ctx: &str,
        table: &str,
        columns: &[(&str, Kind)],
        conflict: Conflict<'_>,
        fill: &mut dyn FnMut(&mut dyn Sink) -> Result<()>,
    ) -> Result<u64> {
        let (key, action) = match conflict {
            Conflict::None => return self.copy(ctx, table, columns, fill),
            Conflict::Ignore { key } => (key, "DO NOTHING".to_string()),
            Conflict::Update { key, set } => (key, format!("DO UPDATE SET {set}")),
        };
        // COPY cannot skip conflicting rows: stage them, then insert once per key, in key
        // order (two writers of the same keys then lock rows in the same order).
        let stage = format!("stage_{table}");
        self.temp_table(ctx, &stage, columns, None)?;
        self.copy(ctx, &stage, columns, fill)?;
        let cols = column_names(columns);
        self.execute(
            ctx,
            &format!(
                "INSERT INTO {table} ({cols})
                 SELECT DISTINCT ON ({key}) {cols} FROM {stage} ORDER BY {key}
                 ON CONFLICT ({key}) {action}"
            ),
            &[],
        )
    }

    fn analyze(&mut self, ctx: &str, table: &str) -> Result<()> {
        self.batch(ctx, &format!("ANALYZE {table}"))
    }

    fn lock_blobs(&mut self, ctx: &str, lock: BlobLock) -> Result<()> {
        // A cleanup's SHARE ROW EXCLUSIVE conflicts with the writers' ROW EXCLUSIVE (and with
        // itself), not with readers or the key-share locks of foreign-key checks.
        let mode = match lock {
            BlobLock::Writer => "ROW EXCLUSIVE",
            BlobLock::Cleanup => "SHARE ROW EXCLUSIVE",
        };
        self.batch(ctx, &format!("LOCK TABLE blobs IN {mode} MODE"))
    }

    fn notify(&mut self, ctx: &str, payload: &str) -> Result<()> {
        self.execute(
            ctx,
            "SELECT pg_notify('chantal_latest', $1)",
            &[payload.into()],
        )
        .map(|_| ())
    }
}

struct PgRow<'a>(&'a postgres::Row);

impl PgRow<'_> {
    fn get<'b, T: postgres::types::FromSql<'b>>(&'b self, i: usize) -> Result<T> {
        self.0
            .try_get(i)
            .map_err(|e| fail("reading a row", db_reason(&e)))
    }
}

impl Row for PgRow<'_> {
    typed_getters!();
    fn time(&self, i: usize) -> Result<chrono::DateTime<chrono::Utc>> {
        self.get(i)
    }
    fn opt_time(&self, i: usize) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
        self.get(i)
    }
}

impl ToSql for Val<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Val::I64(v) => v.to_sql(ty, out),
            Val::OptI64(v) => v.to_sql(ty, out),
            Val::I32(v) => v.to_sql(ty, out),
            Val::OptI32(v) => v.to_sql(ty, out),
            Val::Str(v) => v.to_sql(ty, out),
            Val::OptStr(v) => v.to_sql(ty, out),
            Val::Time(v) => v.to_sql(ty, out),
            Val::OptTime(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        // Checked per value, by the variant's own type, in to_sql_checked.
        true
    }

    fn to_sql_checked(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Val::I64(v) => v.to_sql_checked(ty, out),
            Val::OptI64(v) => v.to_sql_checked(ty, out),
            Val::I32(v) => v.to_sql_checked(ty, out),
            Val::OptI32(v) => v.to_sql_checked(ty, out),
            Val::Str(v) => v.to_sql_checked(ty, out),
            Val::OptStr(v) => v.to_sql_checked(ty, out),
            Val::Time(v) => v.to_sql_checked(ty, out),
            Val::OptTime(v) => v.to_sql_checked(ty, out),
        }
    }
}
