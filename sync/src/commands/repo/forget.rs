//! `chantal repo forget`: a repository that left the configuration leaves the catalogue too.
//! Until then its versions, snapshots and environment pointers stay (chantal-fs serves them,
//! cleanup keeps their files): removing a file from `conf.d/` never deletes anything.

use super::super::Context;
use crate::ExitStatus;

pub fn forget(ctx: &Context, name: &str) -> anyhow::Result<ExitStatus> {
    if let Ok(r) = ctx.config.repository(name) {
        anyhow::bail!(
            "{name} is still configured ({}:{}): remove it from the configuration first",
            r.source.display(),
            r.line
        );
    }
    let catalogue = ctx.catalogue()?;
    if catalogue.repository_summary(name)?.is_none() {
        anyhow::bail!("{name} is not in the catalogue: nothing to forget");
    }
    // No sync of it may be half-way (on any host sharing the catalogue).
    let _lock =
        match catalogue.try_lock_sync(name, &crate::engine::hostname(), crate::engine::pid())? {
            Ok(lock) => lock,
            Err(holder) => {
                return Err(crate::engine::SyncError::Locked {
                    repo: name.to_string(),
                    holder,
                }
                .into())
            }
        };
    let r = catalogue.forget_repository(name)?;
    ctx.say(format!(
        "{name}: forgotten: {} versions, {} snapshots and {} environment pointers removed; `chantal db cleanup` frees the files only it used",
        r.versions, r.snapshots, r.environments
    ));
    Ok(ExitStatus::Success)
}
