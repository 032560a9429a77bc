//! `chantal repo export`: the on-disk export of every repository that sets `publish:`,
//! rewritten in full.

use chantal_common::config::RepoConfig;

use super::super::publish::{publish, reconcile_environments};
use super::super::Context;
use crate::cli::ExportArgs;
use crate::ExitStatus;

/// `chantal repo export`: (re)materialises latest and every snapshot.
pub fn run(ctx: &Context, args: &ExportArgs) -> anyhow::Result<ExitStatus> {
    let repos: Vec<&RepoConfig> = match &args.repo_id {
        Some(name) => {
            let r = ctx.config.repository(name)?;
            if r.publish.is_none() {
                anyhow::bail!("{name}: nothing to export: set publish.latest_path and/or publish.snapshots_path");
            }
            vec![r]
        }
        None => ctx
            .config
            .repositories
            .iter()
            .filter(|r| r.publish.is_some())
            .collect(),
    };
    if repos.is_empty() {
        ctx.say("no repository sets publish:");
        return Ok(ExitStatus::Success);
    }
    let catalogue = ctx.catalogue()?;
    let mut status = reconcile_environments(ctx, &catalogue);
    for repo in repos {
        if let Err(e) = publish(ctx, &catalogue, repo, true) {
            crate::output::error(format_args!("{}: export: {e}", repo.name));
            status = ExitStatus::Failure;
        }
    }
    Ok(status)
}
