//! `chantal snapshot diff`: what changed between two versions (snapshots or `latest`).

use std::io::{self, Write};

use chantal_common::catalogue::Catalogue;
use chantal_common::diff::diff as version_diff;
use chantal_common::Sha256;
use serde::Serialize;

use super::super::updateinfo::for_each_advisory;
use super::super::Context;
use crate::cli::Format;
use crate::output::{self, Report};
use crate::ExitStatus;

#[derive(Debug, Serialize)]
struct DiffView {
    repository: String,
    from: Side,
    to: Side,
    added: Vec<String>,
    removed: Vec<String>,
    updated: Vec<Updated>,
    advisories_added: Vec<String>,
    /// Installer tree files (`.treeinfo`, images...) added, removed or changed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tree: Vec<TreeChange>,
}

#[derive(Debug, Serialize)]
struct TreeChange {
    path: String,
    /// added, removed or changed
    change: &'static str,
}

/// What changed in the installer tree between two versions, by path. The tree's description
/// is served under two names (`.treeinfo` and its alias `treeinfo`, the same file): it counts
/// once, as `.treeinfo`.
fn tree_changes(a: Vec<(String, Sha256)>, b: Vec<(String, Sha256)>) -> Vec<TreeChange> {
    let files = |v: Vec<(String, Sha256)>| -> std::collections::BTreeMap<String, Sha256> {
        let mut m: std::collections::BTreeMap<String, Sha256> = v.into_iter().collect();
        if m.contains_key("treeinfo") && m.get("treeinfo") == m.get(".treeinfo") {
            m.remove("treeinfo");
        }
        m
    };
    let (a, b) = (files(a), files(b));
    let mut paths: Vec<&String> = a.keys().chain(b.keys()).collect();
    paths.sort();
    paths.dedup();
    paths
        .into_iter()
        .filter_map(|p| {
            let change = match (a.get(p), b.get(p)) {
                (None, Some(_)) => "added",
                (Some(_), None) => "removed",
                (Some(x), Some(y)) if x != y => "changed",
                _ => return None,
            };
            Some(TreeChange {
                path: p.clone(),
                change,
            })
        })
        .collect()
}

/// One side of the comparison: what was asked for, and the version it is.
#[derive(Debug, Serialize)]
struct Side {
    name: String,
    version: i64,
}

#[derive(Debug, Serialize)]
struct Updated {
    name: String,
    arch: String,
    from: String,
    to: String,
    downgrade: bool,
}

pub fn diff(
    ctx: &Context,
    from: &str,
    to: &str,
    repo: Option<&str>,
    format: Format,
) -> anyhow::Result<ExitStatus> {
    let catalogue = ctx.catalogue()?;
    // A snapshot name pins the repository for `latest` on the other side.
    let (repo_a, va) = match (from, repo) {
        ("latest", None) => {
            let (r, _) = super::resolve(&catalogue, to, None)?;
            super::resolve(&catalogue, from, Some(&r))?
        }
        _ => super::resolve(&catalogue, from, repo)?,
    };
    let (repo_b, vb) = super::resolve(&catalogue, to, Some(repo.unwrap_or(&repo_a)))?;
    if repo_a != repo_b {
        anyhow::bail!("{from} is of {repo_a} and {to} of {repo_b}: compare within one repository");
    }
    let pool = chantal_common::pool::Pool::new(&ctx.config.storage.base_path);
    let view = diff_one(&catalogue, &pool, &repo_a, (from, va), (to, vb))?;
    output::report(format, &view)?;
    Ok(ExitStatus::Success)
}

/// One repository's diff between two of its versions (`(name asked for, version)` each).
fn diff_one(
    catalogue: &Catalogue,
    pool: &chantal_common::pool::Pool,
    repo: &str,
    (from, va): (&str, i64),
    (to, vb): (&str, i64),
) -> anyhow::Result<DiffView> {
    let d = version_diff(
        &catalogue.version_packages(repo, va)?,
        &catalogue.version_packages(repo, vb)?,
    );
    let before = advisory_ids(catalogue, pool, repo, va)?;
    let advisories_added: Vec<String> = advisory_ids(catalogue, pool, repo, vb)?
        .into_iter()
        .filter(|id| !before.contains(id))
        .collect();
    let tree = tree_changes(
        catalogue.version_installer_tree(repo, va)?,
        catalogue.version_installer_tree(repo, vb)?,
    );
    Ok(DiffView {
        repository: repo.to_string(),
        from: Side {
            name: from.to_string(),
            version: va,
        },
        to: Side {
            name: to.to_string(),
            version: vb,
        },
        added: d.added,
        removed: d.removed,
        updated: d
            .updated
            .into_iter()
            .map(|u| Updated {
                name: u.name,
                arch: u.arch,
                from: u.from,
                to: u.to,
                downgrade: u.downgrade,
            })
            .collect(),
        advisories_added,
        tree,
    })
}

/// Two snapshot sets (or a set and `latest`), repository by repository, then the totals.
#[derive(Debug, Serialize)]
struct SetDiff {
    repositories: Vec<DiffView>,
    totals: Totals,
}

#[derive(Debug, Default, Serialize)]
struct Totals {
    repositories: usize,
    added: usize,
    removed: usize,
    updated: usize,
    advisories_added: usize,
}

pub fn diff_sets(
    ctx: &Context,
    from: &str,
    to: &str,
    format: Format,
) -> anyhow::Result<ExitStatus> {
    let catalogue = ctx.catalogue()?;
    let pool = chantal_common::pool::Pool::new(&ctx.config.storage.base_path);
    let snapshots = catalogue.snapshots(None)?;
    let version = |repo: &str, name: &str| -> anyhow::Result<Option<i64>> {
        if name == "latest" {
            return Ok(catalogue
                .repository_summary(repo)?
                .and_then(|s| s.latest_version));
        }
        Ok(snapshots
            .iter()
            .find(|s| s.repository == repo && s.name == name)
            .map(|s| s.version))
    };
    let mut repos: Vec<String> = snapshots
        .iter()
        .filter(|s| s.name == from || s.name == to)
        .map(|s| s.repository.clone())
        .collect();
    repos.sort();
    repos.dedup();
    let mut set = SetDiff {
        repositories: Vec::new(),
        totals: Totals::default(),
    };
    for repo in repos {
        match (version(&repo, from)?, version(&repo, to)?) {
            (Some(va), Some(vb)) => {
                let d = diff_one(&catalogue, &pool, &repo, (from, va), (to, vb))?;
                let t = &mut set.totals;
                t.repositories += 1;
                t.added += d.added.len();
                t.removed += d.removed.len();
                t.updated += d.updated.len();
                t.advisories_added += d.advisories_added.len();
                set.repositories.push(d);
            }
            (a, _) => output::warn(format_args!(
                "{repo}: no {}: not compared",
                if a.is_none() { from } else { to }
            )),
        }
    }
    if set.repositories.is_empty() {
        anyhow::bail!("no repository has both {from} and {to}");
    }
    output::report(format, &set)?;
    Ok(ExitStatus::Success)
}

impl Report for SetDiff {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        for d in &self.repositories {
            d.text(out)?;
        }
        let t = &self.totals;
        writeln!(
            out,
            "total: {} added, {} removed, {} updated, {} advisories added in {} repositories",
            t.added, t.removed, t.updated, t.advisories_added, t.repositories
        )
    }
}

impl Report for DiffView {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(
            out,
            "{}: {} (version {}) -> {} (version {}): {} added, {} removed, {} updated, {} advisories added",
            self.repository,
            self.from.name,
            self.from.version,
            self.to.name,
            self.to.version,
            self.added.len(),
            self.removed.len(),
            self.updated.len(),
            self.advisories_added.len()
        )?;
        if !self.tree.is_empty() {
            writeln!(
                out,
                "{}: installer tree: {} files changed",
                self.repository,
                self.tree.len()
            )?;
        }
        for a in &self.added {
            writeln!(out, "+ {a}")?;
        }
        for r in &self.removed {
            writeln!(out, "- {r}")?;
        }
        for u in &self.updated {
            writeln!(
                out,
                "{} {}.{} {} -> {}",
                if u.downgrade { "<" } else { ">" },
                u.name,
                u.arch,
                u.from,
                u.to
            )?;
        }
        for a in &self.advisories_added {
            writeln!(out, "! {a}")?;
        }
        for t in &self.tree {
            writeln!(out, "tree {:<7} {}", t.change, t.path)?;
        }
        Ok(())
    }
}

/// Advisory ids in a version's updateinfo, in document order.
fn advisory_ids(
    catalogue: &Catalogue,
    pool: &chantal_common::pool::Pool,
    repo: &str,
    version: i64,
) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::new();
    for_each_advisory(catalogue, pool, repo, version, |a| ids.push(a.id))?;
    Ok(ids)
}
