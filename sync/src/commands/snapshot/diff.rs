//! `chantal snapshot diff`: what changed between two versions (snapshots or `latest`).

use std::io::{self, Write};

use chantal_common::catalogue::Catalogue;
use chantal_common::diff::diff as version_diff;
use serde::Serialize;

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
    let d = version_diff(
        &catalogue.version_packages(&repo_a, va)?,
        &catalogue.version_packages(&repo_b, vb)?,
    );
    let pool = chantal_common::pool::Pool::new(&ctx.config.storage.base_path);
    let before = advisory_ids(&catalogue, &pool, &repo_a, va)?;
    let advisories_added: Vec<String> = advisory_ids(&catalogue, &pool, &repo_b, vb)?
        .into_iter()
        .filter(|id| !before.contains(id))
        .collect();
    let view = DiffView {
        repository: repo_a,
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
    };
    output::report(format, &view)?;
    Ok(ExitStatus::Success)
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
    let Some((path, size)) = catalogue.version_metadata(repo, version, "updateinfo")? else {
        return Ok(Vec::new());
    };
    let full = pool.absolute(&path);
    let file = std::fs::File::open(&full)
        .map_err(|e| chantal_common::Error::io("cannot open", &full, e))?;
    let (_, reader) = chantal_common::rpm::decompress::open(
        file,
        u64::try_from(size).unwrap_or(0),
        Default::default(),
    )
    .map_err(|e| chantal_common::rpm::ParseError::from(e).into_error(&path, &full))?;
    let mut ids = Vec::new();
    chantal_common::rpm::updateinfo::parse(reader, |a| {
        ids.push(a.id);
        Ok(())
    })
    .map_err(|e| e.into_error(&path, &full))?;
    Ok(ids)
}
