//! `chantal snapshot ...`: names for repository versions, and what changed between them. A
//! file per subcommand with output; creating and deleting are here.

mod diff;
mod list;
mod show;

use chantal_common::catalogue::{Catalogue, SnapshotRecord};
use chantal_common::config::check_snapshot_name;

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
    let mut status = super::repo::export::reconcile_environments(ctx, &catalogue);
    let set = create_set(ctx, &catalogue, &names, name, description)?;
    for s in &set {
        let config = ctx.config.repository(&s.repository)?;
        if let Err(e) = super::repo::export::publish(ctx, &catalogue, config, false) {
            crate::output::error(format_args!("{}: export: {e}", s.repository));
            status = ExitStatus::Failure;
        }
    }
    Ok(status)
}

/// Creates snapshot `name` in every repository of `names` in one commit and says so, a line
/// per repository; refused as a whole, naming why, when any of them cannot take it.
pub fn create_set(
    ctx: &Context,
    catalogue: &Catalogue,
    names: &[String],
    name: &str,
    description: Option<&str>,
) -> anyhow::Result<Vec<SnapshotRecord>> {
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let set = catalogue
        .create_snapshots(&refs, name, description)
        .map_err(|e| match refs.len() {
            0 | 1 => anyhow::Error::from(e),
            n => anyhow::anyhow!("{e}: no snapshot was created in any of the {n} repositories"),
        })?;
    for s in &set {
        ctx.say(format!(
            "{}: snapshot {} of version {} ({} packages)",
            s.repository, s.name, s.version, s.packages
        ));
    }
    Ok(set)
}

/// The name `repo sync --create-snapshot` gives its set: the given one, or today's UTC date
/// with `-2`, `-3`... when any repository of the set has it.
pub fn set_name(
    catalogue: &Catalogue,
    repos: &[String],
    name: Option<&str>,
) -> anyhow::Result<String> {
    if let Some(n) = name {
        check_name(n)?;
        return Ok(n.to_string());
    }
    let base = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let mut candidate = base.clone();
    let mut n = 1;
    loop {
        let mut taken = false;
        for r in repos {
            taken |= catalogue.snapshot_exists(r, &candidate)?;
        }
        if !taken {
            return Ok(candidate);
        }
        n += 1;
        candidate = format!("{base}-{n}");
    }
}

fn check_name(name: &str) -> anyhow::Result<()> {
    check_snapshot_name(name).map_err(anyhow::Error::msg)
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
    let status = super::repo::export::reconcile_environments(ctx, &catalogue);
    let gone = catalogue.delete_snapshots(&repos, name)?;
    for s in found.iter().filter(|s| gone.contains(&s.repository)) {
        ctx.say(format!(
            "{}: snapshot {} deleted (version {} stays until cleanup)",
            s.repository, s.name, s.version
        ));
        super::repo::export::unpublish_snapshot(ctx, &s.repository, &s.name)?;
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
