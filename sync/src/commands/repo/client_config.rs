//! `chantal repo client-config`: the dnf `.repo` stanza for a repository on this mirror.

use std::fmt::Write as _;

use chantal_common::rpm::MetadataKind;

use super::super::Context;
use crate::ExitStatus;

/// Which tree the stanza points at.
pub enum Tree<'a> {
    Latest,
    Snapshot(&'a str),
    /// `<repo>/env/<env>/`: it follows promotions.
    Env(&'a str),
}

pub fn run(
    ctx: &Context,
    repo_id: &str,
    which: Tree<'_>,
    base_url: Option<&str>,
) -> anyhow::Result<ExitStatus> {
    let repo = ctx.config.repository(repo_id)?;
    let base = base_url
        .map(|u| u.trim_end_matches('/').to_string())
        .or_else(|| repo.base_url.clone())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{repo_id}: give --base-url (where clients reach the mirror's trees) or set publish.base_url"
            )
        })?;
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        anyhow::bail!("--base-url {base:?}: use an http:// or https:// URL");
    }
    let catalogue = ctx.catalogue()?;
    // What the tree clients will read holds decides what they can check.
    let (version, tree) = match which {
        Tree::Snapshot(name) => {
            let s = catalogue
                .snapshots(Some(repo_id))?
                .into_iter()
                .find(|s| s.name == name)
                .ok_or_else(|| anyhow::anyhow!("{repo_id} has no snapshot named {name}"))?;
            (s.version, format!("{base}/{repo_id}/snapshots/{name}/"))
        }
        Tree::Env(env) => {
            ctx.check_env(env)?;
            // What it serves now; a promotion keeps the stanza, and the keys travel with each
            // snapshot.
            let p = catalogue
                .environments(Some(env))?
                .into_iter()
                .find(|p| p.repository == repo_id)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "environment {env} points nowhere in {repo_id} yet: promote a snapshot to it first"
                    )
                })?;
            (p.version, format!("{base}/{repo_id}/env/{env}/"))
        }
        Tree::Latest => {
            let v = catalogue
                .repository_summary(repo_id)?
                .and_then(|s| s.latest_version)
                .ok_or_else(|| anyhow::anyhow!("{repo_id} has no version yet: sync it first"))?;
            (v, format!("{base}/{repo_id}/latest/"))
        }
    };
    let has = |kind: MetadataKind| -> anyhow::Result<bool> {
        Ok(catalogue
            .version_metadata(repo_id, version, &kind)?
            .is_some())
    };
    let keys = has(MetadataKind::GpgKey)?;
    let signed = has(MetadataKind::RepomdAsc)?;
    let mirror_key = has(MetadataKind::RepomdKey)?;
    let mut gpgkeys = Vec::new();
    if keys {
        gpgkeys.push(format!("{tree}{}", crate::trust::key_file_href(repo_id)));
    }
    if mirror_key {
        gpgkeys.push(format!("{tree}repodata/repomd.xml.key"));
    }
    let (id, what) = match which {
        Tree::Snapshot(name) => (format!("{repo_id}-{name}"), format!(" snapshot {name}")),
        Tree::Env(env) => (format!("{repo_id}-{env}"), format!(" {env}")),
        Tree::Latest => (repo_id.to_string(), String::new()),
    };
    let mut out = String::new();
    let _ = writeln!(out, "[{id}]");
    let _ = writeln!(out, "name={repo_id}{what} (chantal mirror)");
    let _ = writeln!(out, "baseurl={tree}");
    let _ = writeln!(out, "enabled=1");
    let _ = writeln!(out, "gpgcheck={}", u8::from(keys));
    let _ = writeln!(
        out,
        "repo_gpgcheck={}",
        u8::from(signed && !gpgkeys.is_empty())
    );
    if !gpgkeys.is_empty() {
        let _ = writeln!(out, "gpgkey={}", gpgkeys.join(" "));
    }
    crate::output::line(out.trim_end());
    Ok(ExitStatus::Success)
}
