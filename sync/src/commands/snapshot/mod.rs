//! `chantal snapshot ...`: names for repository versions, and what changed between them. A
//! file per subcommand with output; creating and deleting are here.

mod diff;
mod list;
mod show;

use chantal_common::catalogue::{Catalogue, SnapshotRecord};
use chantal_common::config::check_snapshot_name;

use super::Context;
use crate::ExitStatus;

pub use diff::diff;
pub use list::list;
pub use show::show;

pub fn create(
    ctx: &Context,
    repo: &str,
    name: &str,
    description: Option<&str>,
) -> anyhow::Result<ExitStatus> {
    let config = ctx.config.repository(repo)?;
    check_name(name)?;
    let catalogue = ctx.catalogue()?;
    let s = catalogue.create_snapshot(repo, name, description)?;
    ctx.say(format!(
        "{}: snapshot {} of version {} ({} packages)",
        s.repository, s.name, s.version, s.packages
    ));
    if let Err(e) = super::repo::export::publish(ctx, &catalogue, config, false) {
        crate::output::error(format_args!("{repo}: export: {e}"));
        return Ok(ExitStatus::Failure);
    }
    Ok(ExitStatus::Success)
}

/// The snapshot name `--create-snapshot` uses: the given one, or today's UTC date with `-2`,
/// `-3`... when taken.
pub fn create_after_sync(
    ctx: &Context,
    catalogue: &Catalogue,
    repo: &str,
    name: Option<&str>,
) -> anyhow::Result<SnapshotRecord> {
    let name = match name {
        Some(n) => {
            check_name(n)?;
            n.to_string()
        }
        None => {
            let base = chrono::Utc::now().format("%Y-%m-%d").to_string();
            let mut candidate = base.clone();
            let mut n = 1;
            while catalogue.snapshot_exists(repo, &candidate)? {
                n += 1;
                candidate = format!("{base}-{n}");
            }
            candidate
        }
    };
    let s = catalogue.create_snapshot(repo, &name, None)?;
    ctx.say(format!(
        "{}: snapshot {} of version {} ({} packages)",
        s.repository, s.name, s.version, s.packages
    ));
    Ok(s)
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

pub fn delete(ctx: &Context, name: &str, repo: Option<&str>) -> anyhow::Result<ExitStatus> {
    let catalogue = ctx.catalogue()?;
    let s = find(&catalogue, name, repo)?;
    catalogue.delete_snapshot(&s.repository, &s.name)?;
    ctx.say(format!(
        "{}: snapshot {} deleted (version {} stays until cleanup)",
        s.repository, s.name, s.version
    ));
    super::repo::export::unpublish_snapshot(ctx, &s.repository, &s.name)?;
    Ok(ExitStatus::Success)
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
