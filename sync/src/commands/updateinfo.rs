//! Reading a version's updateinfo from the pool, for `snapshot diff` and `advisory search`.

use chantal_common::catalogue::Catalogue;
use chantal_common::pool::Pool;
use chantal_common::rpm::updateinfo::{self, Advisory};
use chantal_common::rpm::MetadataKind;

/// Calls `f` with each advisory of version `version` of `repo`, in document order; a version
/// without updateinfo has none.
pub fn for_each_advisory(
    catalogue: &Catalogue,
    pool: &Pool,
    repo: &str,
    version: i64,
    f: impl FnMut(Advisory),
) -> anyhow::Result<()> {
    match catalogue.version_metadata(repo, version, &MetadataKind::Updateinfo)? {
        Some((path, size)) => for_each_advisory_in(pool, &path, size, f),
        None => Ok(()),
    }
}

/// Calls `f` with each advisory of the updateinfo file at pool path `path` (`size` bytes).
pub fn for_each_advisory_in(
    pool: &Pool,
    path: &str,
    size: i64,
    mut f: impl FnMut(Advisory),
) -> anyhow::Result<()> {
    let full = pool.absolute(path);
    let file = std::fs::File::open(&full)
        .map_err(|e| chantal_common::Error::io("cannot open", &full, e))?;
    let (_, reader) = chantal_common::rpm::decompress::open(
        file,
        u64::try_from(size).unwrap_or(0),
        Default::default(),
    )
    .map_err(|e| chantal_common::rpm::ParseError::from(e).into_error(path, &full))?;
    updateinfo::parse(reader, |a| {
        f(a);
        Ok(())
    })
    .map_err(|e| e.into_error(path, &full))?;
    Ok(())
}
