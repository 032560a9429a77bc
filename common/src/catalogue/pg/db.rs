//! [`Db`] over the blocking `postgres` client: parameters bound by their own type, rows read
//! with the driver's checks, bulk inserts by binary COPY. Rows that may conflict go in as
//! arrays (`unnest`) when they are few, and through a staging table when they are many.

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
        let mut writer = Copying::start(&mut *self.0, ctx, table, columns)?;
        fill(&mut writer)?;
        writer.writer.finish().map_err(pg(ctx))
    }
}

/// `DROP` and `CREATE` of a temporary table that lives until the transaction ends.
fn temp_table_sql(name: &str, columns: &[(&str, Kind)], index: Option<&str>) -> String {
    let cols = column_defs(columns, Dialect::Postgres);
    let mut sql = format!(
        "DROP TABLE IF EXISTS pg_temp.{name};
         CREATE TEMP TABLE {name} ({cols}) ON COMMIT DROP;"
    );
    if let Some(index) = index {
        sql.push_str(&format!("CREATE INDEX ON {name} ({index});"));
    }
    sql
}

struct Copying<'a, 'c> {
    writer: BinaryCopyInWriter<'c>,
    ctx: &'a str,
}

impl<'a, 'c> Copying<'a, 'c> {
    /// A binary COPY into `table` over `client`, which it holds until finished.
    fn start<C: GenericClient>(
        client: &'c mut C,
        ctx: &'a str,
        table: &str,
        columns: &[(&str, Kind)],
    ) -> Result<Self> {
        let sink = client
            .copy_in(&format!(
                "COPY {table} ({}) FROM STDIN (FORMAT binary)",
                column_names(columns)
            ))
            .map_err(pg(ctx))?;
        let types: Vec<Type> = columns.iter().map(|(_, k)| pg_type(*k)).collect();
        Ok(Copying {
            writer: BinaryCopyInWriter::new(sink, &types),
            ctx,
        })
    }
}

/// A conflicting bulk insert of at most this many rows (and bytes) is sent as one array per
/// column, `INSERT … SELECT … FROM unnest(…)`: no staging table, whose `CREATE` and `DROP`
/// are catalogue writes on every batch a sync records (256 rows), about a fifth of the
/// backend's time in a small-package sync (docs/PERFORMANCE.md). Beyond either limit the
/// rows held so far and the rest stream through COPY into a staging table, so memory stays
/// bounded whatever the caller sends.
const ARRAY_ROWS: usize = 1024;
const ARRAY_BYTES: usize = 8 << 20;

/// One column's values, held for an array parameter.
enum Column {
    Text(Vec<Option<String>>),
    Int8(Vec<Option<i64>>),
    Int4(Vec<Option<i32>>),
    Time(Vec<Option<chrono::DateTime<chrono::Utc>>>),
}

impl Column {
    fn new(kind: Kind) -> Self {
        match kind {
            Kind::Text => Column::Text(Vec::new()),
            Kind::Int8 => Column::Int8(Vec::new()),
            Kind::Int4 => Column::Int4(Vec::new()),
            Kind::Time => Column::Time(Vec::new()),
        }
    }

    /// Adds `v`, returning the bytes of text it holds; `None` if `v` is not of this column's
    /// type.
    fn push(&mut self, v: &Val<'_>) -> Option<usize> {
        // A value is its optional form with something in it.
        let v = match *v {
            Val::Str(s) => Val::OptStr(Some(s)),
            Val::I64(n) => Val::OptI64(Some(n)),
            Val::I32(n) => Val::OptI32(Some(n)),
            Val::Time(t) => Val::OptTime(Some(t)),
            optional => optional,
        };
        match (self, v) {
            (Column::Text(c), Val::OptStr(s)) => {
                c.push(s.map(str::to_owned));
                return Some(s.map_or(0, str::len));
            }
            (Column::Int8(c), Val::OptI64(n)) => c.push(n),
            (Column::Int4(c), Val::OptI32(n)) => c.push(n),
            (Column::Time(c), Val::OptTime(t)) => c.push(t),
            _ => return None,
        }
        Some(0)
    }

    fn len(&self) -> usize {
        match self {
            Column::Text(c) => c.len(),
            Column::Int8(c) => c.len(),
            Column::Int4(c) => c.len(),
            Column::Time(c) => c.len(),
        }
    }

    /// Row `i`, as COPY writes it.
    fn val(&self, i: usize) -> Val<'_> {
        match self {
            Column::Text(c) => Val::OptStr(c.get(i).and_then(Option::as_deref)),
            Column::Int8(c) => Val::OptI64(c.get(i).copied().flatten()),
            Column::Int4(c) => Val::OptI32(c.get(i).copied().flatten()),
            Column::Time(c) => Val::OptTime(c.get(i).copied().flatten()),
        }
    }

    fn param(&self) -> &(dyn ToSql + Sync) {
        match self {
            Column::Text(c) => c,
            Column::Int8(c) => c,
            Column::Int4(c) => c,
            Column::Time(c) => c,
        }
    }
}

/// The array type of a column of `k`, for the casts of `unnest`'s parameters.
fn array_type(k: Kind) -> &'static str {
    match k {
        Kind::Text => "text[]",
        Kind::Int8 => "bigint[]",
        Kind::Int4 => "integer[]",
        Kind::Time => "timestamptz[]",
    }
}

/// How many rows `held` holds: each column has a value per row.
fn held_rows(held: &[Column]) -> usize {
    held.first().map_or(0, Column::len)
}

/// The sink of a conflicting bulk insert: holds rows as columns until they pass
/// [`ARRAY_ROWS`] or [`ARRAY_BYTES`], then creates the staging table and streams the held
/// rows and the rest into it.
struct Staging<'a, 'c, C: GenericClient> {
    /// Until the staging table is made.
    client: Option<&'c mut C>,
    ctx: &'a str,
    stage: &'a str,
    columns: &'a [(&'a str, Kind)],
    held: Vec<Column>,
    bytes: usize,
    copying: Option<Copying<'a, 'c>>,
}

impl<'a, 'c, C: GenericClient> Staging<'a, 'c, C> {
    /// Creates the staging table and copies the held rows into it.
    fn spill(&mut self, client: &'c mut C) -> Result<()> {
        client
            .batch_execute(&temp_table_sql(self.stage, self.columns, None))
            .map_err(pg(self.ctx))?;
        let mut copying = Copying::start(client, self.ctx, self.stage, self.columns)?;
        let rows = held_rows(&self.held);
        let mut row = Vec::with_capacity(self.held.len());
        for i in 0..rows {
            row.clear();
            row.extend(self.held.iter().map(|c| c.val(i)));
            copying.row(&row)?;
        }
        self.held.clear();
        self.copying = Some(copying);
        Ok(())
    }
}

impl<C: GenericClient> Sink for Staging<'_, '_, C> {
    fn row(&mut self, values: &[Val<'_>]) -> Result<()> {
        if let Some(copying) = &mut self.copying {
            return copying.row(values);
        }
        if values.len() != self.held.len() {
            return Err(fail(
                self.ctx,
                format!(
                    "a row of {} values for {} columns",
                    values.len(),
                    self.held.len()
                ),
            ));
        }
        for ((column, v), (name, _)) in self.held.iter_mut().zip(values).zip(self.columns) {
            self.bytes += column.push(v).ok_or_else(|| {
                fail(
                    self.ctx,
                    format!("a value of the wrong type for column {name}"),
                )
            })?;
        }
        let rows = held_rows(&self.held);
        if rows > ARRAY_ROWS || self.bytes > ARRAY_BYTES {
            if let Some(client) = self.client.take() {
                self.spill(client)?;
            }
        }
        Ok(())
    }
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
        self.batch(ctx, &temp_table_sql(name, columns, index))
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
        // COPY cannot skip conflicting rows: the rows go in as arrays or through a staging
        // table, then are inserted once per key, in key order (two writers of the same keys
        // then lock rows in the same order).
        let stage = format!("stage_{table}");
        let held = {
            let mut sink = Staging {
                client: Some(&mut *self.0),
                ctx,
                stage: &stage,
                columns,
                held: columns.iter().map(|&(_, k)| Column::new(k)).collect(),
                bytes: 0,
                copying: None,
            };
            fill(&mut sink)?;
            match sink.copying {
                Some(copying) => {
                    copying.writer.finish().map_err(pg(ctx))?;
                    None
                }
                None => Some(sink.held),
            }
        };
        let cols = column_names(columns);
        let insert = |source: &str| {
            format!(
                "INSERT INTO {table} ({cols})
                 SELECT DISTINCT ON ({key}) {cols} FROM {source} ORDER BY {key}
                 ON CONFLICT ({key}) {action}"
            )
        };
        match held {
            None => self.execute(ctx, &insert(&stage), &[]),
            Some(held) if held_rows(&held) == 0 => Ok(0),
            Some(held) => {
                let arrays = columns
                    .iter()
                    .enumerate()
                    .map(|(i, &(_, k))| format!("${}::{}", i + 1, array_type(k)))
                    .collect::<Vec<_>>()
                    .join(", ");
                let params: Vec<&(dyn ToSql + Sync)> = held.iter().map(Column::param).collect();
                self.0
                    .execute(&insert(&format!("unnest({arrays}) AS u ({cols})")), &params)
                    .map_err(pg(ctx))
            }
        }
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
