//! `chantal snapshot ...`: names for repository versions, and what changed between them. A
//! file per subcommand with output; creating and deleting are here.

mod diff;
mod list;
mod show;

use chantal_common::catalogue::{Catalogue, SnapshotRecord};

use super::publish::{publish, reconcile_environments, unpublish_snapshot};
use super::sets::{check_name, create_set};
use super::Context;
use crate::ExitStatus;

pub use diff::{diff, diff_sets};
pub use list::list;
pub use show::show;

pub fn create(
    ctx: &Context,
    repos: &[String],
    all: bool,
    name: &str,
    description: Option<&str>,
) -> anyhow::Result<ExitStatus> {
    check_name(name)?;
    let catalogue = ctx.catalogue()?;
    let names: Vec<String> = if all {
        let mut with_version = Vec::new();
        for r in ctx.config.repositories.iter().filter(|r| r.enabled) {
            let has = catalogue
                .repository_summary(&r.name)?
                .is_some_and(|s| s.latest_version.is_some());
            if has {
                with_version.push(r.name.clone());
            } else {
                crate::output::warn(format_args!("{}: no version yet: not in the set", r.name));
            }
        }
        with_version
    } else {
        let mut named = Vec::new();
        for r in repos {
            ctx.config.repository(r)?;
            // `--repo-id A --repo-id A` names A once.
            if !named.contains(r) {
                named.push(r.clone());
            }
        }
        named
    };
    // The export's environment links first, if a killed command left them behind.
    let mut status = reconcile_environments(ctx, &catalogue);
    let set = create_set(ctx, &catalogue, &names, name, description)?;
    for s in &set {
        let config = ctx.config.repository(&s.repository)?;
        if let Err(e) = publish(ctx, &catalogue, config, false) {
            crate::output::error(format_args!("{}: export: {e}", s.repository));
            status = ExitStatus::Failure;
        }
    }
    Ok(status)
}

/// Finds the one snapshot called `name` (in `repo` if given), or says why not.
fn find(catalogue: &Catalogue, name: &str, repo: Option<&str>) -> anyhow::Result<SnapshotRecord> {
    let mut found: Vec<SnapshotRecord> = catalogue
        .snapshots(repo)?
        .into_iter()
        .filter(|s| s.name == name)
        .collect();
    match found.len() {
        0 => match repo {
            Some(r) => anyhow::bail!("{r} has no snapshot named {name}"),
            None => anyhow::bail!("no snapshot named {name}"),
        },
        1 => Ok(found.remove(0)),
        _ => anyhow::bail!(
            "snapshot {name} exists in several repositories ({}): pass --repo-id",
            found
                .iter()
                .map(|s| s.repository.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

pub fn delete(
    ctx: &Context,
    name: &str,
    repo: Option<&str>,
    all: bool,
) -> anyhow::Result<ExitStatus> {
    let catalogue = ctx.catalogue()?;
    let found: Vec<SnapshotRecord> = if all {
        let set: Vec<SnapshotRecord> = catalogue
            .snapshots(None)?
            .into_iter()
            .filter(|s| s.name == name)
            .collect();
        if set.is_empty() {
            anyhow::bail!("no snapshot named {name}");
        }
        set
    } else {
        vec![find(&catalogue, name, repo)?]
    };
    let repos: Vec<&str> = found.iter().map(|s| s.repository.as_str()).collect();
    let status = reconcile_environments(ctx, &catalogue);
    let gone = catalogue.delete_snapshots(&repos, name)?;
    for s in found.iter().filter(|s| gone.contains(&s.repository)) {
        ctx.say(format!(
            "{}: snapshot {} deleted (version {} stays until cleanup)",
            s.repository, s.name, s.version
        ));
        unpublish_snapshot(ctx, &s.repository, &s.name)?;
    }
    Ok(status)
}

/// Resolves `latest` or a snapshot name to (repository, version).
fn resolve(
    catalogue: &Catalogue,
    which: &str,
    repo: Option<&str>,
) -> anyhow::Result<(String, i64)> {
    if which == "latest" {
        let Some(repo) = repo else {
            anyhow::bail!("`latest` needs --repo-id");
        };
        let version = catalogue
            .repository_summary(repo)?
            .and_then(|s| s.latest_version)
            .ok_or_else(|| anyhow::anyhow!("{repo} has no version yet"))?;
        return Ok((repo.to_string(), version));
    }
    let s = find(catalogue, which, repo)?;
    Ok((s.repository, s.version))
}
