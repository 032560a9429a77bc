//! The on-disk export of repositories that set `publish:`, as a service the commands share:
//! after a sync, a snapshot or a promotion, and on demand with `chantal repo export`. It knows
//! no command: each command calls it, never another command.

use chantal_common::catalogue::Catalogue;
use chantal_common::config::RepoConfig;
use chantal_common::export::{Exporter, DEFAULT_GRACE};

use super::Context;

fn exporter(ctx: &Context, repo: &RepoConfig) -> Option<Exporter> {
    repo.publish.as_ref().map(|p| Exporter {
        data: ctx.config.storage.base_path.join("data"),
        link: p.link,
        grace: DEFAULT_GRACE,
    })
}

/// Exports what is missing or out of date for `repo` (everything when `force`): latest when
/// its version changed or its tree is damaged, and each snapshot without a tree.
pub fn publish(
    ctx: &Context,
    catalogue: &Catalogue,
    repo: &RepoConfig,
    force: bool,
) -> anyhow::Result<()> {
    let (Some(publish), Some(ex)) = (repo.publish.as_ref(), exporter(ctx, repo)) else {
        return Ok(());
    };
    if let Some(latest_path) = &publish.latest_path {
        let latest = catalogue
            .repository_summary(&repo.name)?
            .and_then(|s| s.latest_version);
        match latest {
            Some(v) if force || !ex.latest_is(latest_path, v) => {
                complete(catalogue, &repo.name, v, "latest")?;
                let started = std::time::Instant::now();
                let tree = catalogue.version_tree(&repo.name, v)?;
                let p = ex.publish_latest(&tree, v, latest_path)?;
                if let Some(aside) = &p.migrated {
                    crate::output::err_line(format_args!(
                        "chantal: {}: {} was a directory: moved to {} (removed after the grace period); it is now a symlink",
                        repo.name,
                        latest_path.display(),
                        aside.display()
                    ));
                }
                ctx.say(format!(
                    "{}: exported version {v} to {} ({} files in {:.2} s)",
                    repo.name,
                    latest_path.display(),
                    p.files,
                    started.elapsed().as_secs_f64()
                ));
            }
            _ => {
                ex.sweep_latest(latest_path)?;
            }
        }
    }
    if let Some(dir) = &publish.snapshots_path {
        let snapshots = catalogue.snapshots(Some(&repo.name))?;
        for s in &snapshots {
            if force || !exported(dir, &s.name) {
                export_snapshot(ctx, catalogue, &ex, &repo.name, dir, &s.name, s.version)?;
            }
        }
        environment_links(ctx, catalogue, repo)?;
    }
    Ok(())
}

/// Brings every exported environment link in line with the catalogue, for each repository
/// that exports them: a command killed between its commit and its export (a promotion, say)
/// leaves links behind, and the next command that writes the export puts them right before
/// it does anything else. Errors are reported per repository; the result says whether there
/// were any.
pub fn reconcile_environments(ctx: &Context, catalogue: &Catalogue) -> crate::ExitStatus {
    let mut status = crate::ExitStatus::Success;
    for repo in ctx.config.repositories.iter().filter(|r| {
        r.publish
            .as_ref()
            .is_some_and(|p| p.environments_path.is_some())
    }) {
        if let Err(e) = environment_links(ctx, catalogue, repo) {
            crate::output::error(format_args!("{}: export: {e}", repo.name));
            status = crate::ExitStatus::Failure;
        }
    }
    status
}

/// `publish.environments_path/<env>` for each environment that points in `repo`, pointing at
/// its exported snapshot tree (exported first if missing); links of environments that point
/// nowhere in it any more are removed.
fn environment_links(
    ctx: &Context,
    catalogue: &Catalogue,
    repo: &RepoConfig,
) -> anyhow::Result<()> {
    let (Some(publish), Some(ex)) = (repo.publish.as_ref(), exporter(ctx, repo)) else {
        return Ok(());
    };
    let (Some(envs), Some(snaps)) = (&publish.environments_path, &publish.snapshots_path) else {
        return Ok(());
    };
    let pointers: Vec<_> = catalogue
        .environments(None)?
        .into_iter()
        .filter(|p| p.repository == repo.name)
        .collect();
    for p in &pointers {
        if !exported(snaps, &p.snapshot) {
            export_snapshot(
                ctx,
                catalogue,
                &ex,
                &repo.name,
                snaps,
                &p.snapshot,
                p.version,
            )?;
        }
        if let Some(target) = ex.link_environment(envs, &p.environment, snaps, &p.snapshot)? {
            ctx.say(format!(
                "{}: {} -> {}",
                repo.name,
                envs.join(&p.environment).display(),
                target.display()
            ));
        }
    }
    let keep: Vec<&str> = pointers.iter().map(|p| p.environment.as_str()).collect();
    for path in ex.unlink_environments(envs, snaps, &keep)? {
        ctx.say(format!(
            "{}: removed {} (the environment points nowhere in it)",
            repo.name,
            path.display()
        ));
    }
    Ok(())
}

/// Whether snapshot `name` has its tree under `dir` (a tree appears whole: it is written aside
/// and renamed into place).
fn exported(dir: &std::path::Path, name: &str) -> bool {
    dir.join(name).join("repodata/repomd.xml").is_file()
}

/// Writes `<dir>/<name>/`, the tree of `version`, and says so.
fn export_snapshot(
    ctx: &Context,
    catalogue: &Catalogue,
    ex: &Exporter,
    repo: &str,
    dir: &std::path::Path,
    name: &str,
    version: i64,
) -> anyhow::Result<()> {
    complete(catalogue, repo, version, &format!("snapshot {name}"))?;
    let tree = catalogue.version_tree(repo, version)?;
    let files = ex.publish_snapshot(&tree, dir, name)?;
    ctx.say(format!(
        "{repo}: exported snapshot {name} to {} ({files} files)",
        dir.join(name).display()
    ));
    Ok(())
}

/// The export writes real files: a version with on-demand packages no client has read yet
/// cannot be exported until they are fetched.
fn complete(catalogue: &Catalogue, repo: &str, version: i64, what: &str) -> anyhow::Result<()> {
    let p = catalogue.version_presence(repo, version)?;
    if p.absent > 0 {
        anyhow::bail!(
            "cannot export {what} (version {version}): {} of its packages are on demand and \
             not fetched yet (`chantal repo sync --repo-id {repo} --download-missing` fetches \
             them; chantal-fs serves them as they are read)",
            p.absent
        );
    }
    Ok(())
}

/// Removes a deleted snapshot's tree, if the repository exports snapshots.
pub fn unpublish_snapshot(ctx: &Context, repo: &str, name: &str) -> anyhow::Result<()> {
    let Ok(repo) = ctx.config.repository(repo) else {
        return Ok(());
    };
    if let (Some(dir), Some(ex)) = (
        repo.publish
            .as_ref()
            .and_then(|p| p.snapshots_path.as_ref()),
        exporter(ctx, repo),
    ) {
        if ex.remove_snapshot(dir, name)? {
            ctx.say(format!(
                "{}: removed {}",
                repo.name,
                dir.join(name).display()
            ));
        }
    }
    Ok(())
}
