//! The catalogue's rules and queries, written once for both backends over [`super::db::Db`]:
//! what a version commit checks and writes, what cleanup may delete, how the sync lock's
//! holder is recorded, and every query the commands and chantal-fs ask. SQL text is shared;
//! the few fragments that differ come from [`super::db::Dialect`].

pub(super) mod blobs;
pub(super) mod bundle;
pub(super) mod cleanup;
pub(super) mod commit;
pub(super) mod environments;
pub(super) mod integrity;
pub(super) mod packages;
pub(super) mod repositories;
pub(super) mod schema;
pub(super) mod seal;
pub(super) mod snapshots;
pub(super) mod sync;

/// Rows of a version: `added_in <= N < coalesce(removed_in, infinity)` for the table alias
/// `t` and the version `n` (a column or a placeholder).
pub(super) fn in_version(t: &str, n: &str) -> String {
    format!("{t}.added_in <= {n} AND ({t}.removed_in IS NULL OR {t}.removed_in > {n})")
}

/// A package identity from five columns starting at `first`, in the order name, epoch,
/// version, release, arch (every query that reads one selects them so).
pub(super) fn nevra(r: &dyn super::db::Row, first: usize) -> crate::Result<crate::rpm::Nevra> {
    Ok(crate::rpm::Nevra {
        name: r.string(first)?,
        epoch: r.i64(first + 1)?,
        version: r.string(first + 2)?,
        release: r.string(first + 3)?,
        arch: r.string(first + 4)?,
    })
}
