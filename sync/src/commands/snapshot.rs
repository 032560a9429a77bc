//! `chantal snapshot ...`: names for repository versions, and what changed between them.

use std::collections::BTreeMap;
use std::io::Write;

use chantal_common::catalogue::{Catalogue, SnapshotRecord};
use chantal_common::config::check_snapshot_name;
use chantal_common::diff::diff as version_diff;
use serde_json::{json, Value};

use super::Context;
use crate::cli::Format;
use crate::output;
use crate::ExitStatus;

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
    if let Err(e) = super::export::publish(ctx, &catalogue, config, false) {
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

pub fn list(ctx: &Context, repo: Option<&str>, format: Format) -> anyhow::Result<ExitStatus> {
    if let Some(name) = repo {
        ctx.config.repository(name)?;
    }
    let snapshots = ctx.catalogue()?.snapshots(repo)?;
    let mut out = crate::output::Out;
    match format {
        Format::Json => output::json(
            &mut out,
            &Value::Array(snapshots.iter().map(snapshot_json).collect()),
        )?,
        Format::Table => {
            let rows: Vec<Vec<String>> = snapshots
                .iter()
                .map(|s| {
                    vec![
                        s.repository.clone(),
                        s.name.clone(),
                        s.version.to_string(),
                        s.packages.to_string(),
                        output::bytes(s.total_size),
                        output::time(&s.created_at),
                        s.description.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            output::table(
                &mut out,
                &[
                    "REPOSITORY",
                    "NAME",
                    "VERSION",
                    "PACKAGES",
                    "SIZE",
                    "CREATED",
                    "DESCRIPTION",
                ],
                &rows,
            )?;
        }
    }
    Ok(ExitStatus::Success)
}

fn snapshot_json(s: &SnapshotRecord) -> Value {
    json!({
        "repository": s.repository,
        "name": s.name,
        "version": s.version,
        "packages": s.packages,
        "size": s.total_size,
        "created_at": s.created_at.to_rfc3339(),
        "description": s.description,
    })
}

pub fn show(
    ctx: &Context,
    name: &str,
    repo: Option<&str>,
    packages: bool,
    format: Format,
) -> anyhow::Result<ExitStatus> {
    let catalogue = ctx.catalogue()?;
    let s = find(&catalogue, name, repo)?;
    let info = catalogue.version_info(&s.repository, s.version)?;
    let pkgs = catalogue.version_packages(&s.repository, s.version)?;
    let mut per_arch: BTreeMap<&str, usize> = BTreeMap::new();
    for p in &pkgs {
        *per_arch.entry(p.nevra.arch.as_str()).or_default() += 1;
    }
    let revision = info.as_ref().and_then(|i| i.repomd_revision.clone());
    let mut out = crate::output::Out;
    match format {
        Format::Json => {
            let mut v = snapshot_json(&s);
            v["architectures"] = json!(per_arch);
            v["repomd_revision"] = json!(revision);
            if packages {
                v["package_list"] = Value::Array(
                    pkgs.iter()
                        .map(|p| json!({"nevra": p.nevra.to_string(), "sha256": p.sha256, "location": p.location_href}))
                        .collect(),
                );
            }
            output::json(&mut out, &v)?;
        }
        Format::Table => {
            let mut line = |k: &str, v: String| writeln!(out, "{:<16}{v}", format!("{k}:"));
            line("repository", s.repository.clone())?;
            line("snapshot", s.name.clone())?;
            line("version", s.version.to_string())?;
            line(
                "packages",
                format!("{} ({})", s.packages, output::bytes(s.total_size)),
            )?;
            line(
                "architectures",
                per_arch
                    .iter()
                    .map(|(a, n)| format!("{a} {n}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            )?;
            line("repomd revision", revision.unwrap_or_else(|| "-".into()))?;
            line("created", output::time(&s.created_at))?;
            line("description", s.description.clone().unwrap_or_default())?;
            if packages {
                writeln!(out)?;
                let rows: Vec<Vec<String>> = pkgs
                    .iter()
                    .map(|p| vec![p.nevra.to_string(), p.sha256.clone()])
                    .collect();
                output::table(&mut out, &["NEVRA", "SHA256"], &rows)?;
            }
        }
    }
    Ok(ExitStatus::Success)
}

pub fn delete(ctx: &Context, name: &str, repo: Option<&str>) -> anyhow::Result<ExitStatus> {
    let catalogue = ctx.catalogue()?;
    let s = find(&catalogue, name, repo)?;
    catalogue.delete_snapshot(&s.repository, &s.name)?;
    ctx.say(format!(
        "{}: snapshot {} deleted (version {} stays until cleanup)",
        s.repository, s.name, s.version
    ));
    super::export::unpublish_snapshot(ctx, &s.repository, &s.name)?;
    Ok(ExitStatus::Success)
}

/// Resolves `latest` or a snapshot name to (repository, version, label).
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
            let (r, _) = resolve(&catalogue, to, None)?;
            resolve(&catalogue, from, Some(&r))?
        }
        _ => resolve(&catalogue, from, repo)?,
    };
    let (repo_b, vb) = resolve(&catalogue, to, Some(repo.unwrap_or(&repo_a)))?;
    if repo_a != repo_b {
        anyhow::bail!("{from} is of {repo_a} and {to} of {repo_b}: compare within one repository");
    }
    let d = version_diff(
        &catalogue.version_packages(&repo_a, va)?,
        &catalogue.version_packages(&repo_b, vb)?,
    );
    let pool = chantal_common::pool::Pool::new(&ctx.config.storage.base_path);
    let before = advisory_ids(&catalogue, &pool, &repo_a, va)?;
    let advisories: Vec<String> = advisory_ids(&catalogue, &pool, &repo_b, vb)?
        .into_iter()
        .filter(|id| !before.contains(id))
        .collect();
    let mut out = crate::output::Out;
    match format {
        Format::Json => output::json(
            &mut out,
            &json!({
                "repository": repo_a,
                "from": {"name": from, "version": va},
                "to": {"name": to, "version": vb},
                "added": d.added,
                "removed": d.removed,
                "updated": d.updated.iter().map(|u| json!({
                    "name": u.name, "arch": u.arch, "from": u.from, "to": u.to,
                    "downgrade": u.downgrade,
                })).collect::<Vec<_>>(),
                "advisories_added": advisories,
            }),
        )?,
        Format::Table => {
            writeln!(
                out,
                "{repo_a}: {from} (version {va}) -> {to} (version {vb}): {} added, {} removed, {} updated, {} advisories added",
                d.added.len(),
                d.removed.len(),
                d.updated.len(),
                advisories.len()
            )?;
            for a in &d.added {
                writeln!(out, "+ {a}")?;
            }
            for r in &d.removed {
                writeln!(out, "- {r}")?;
            }
            for u in &d.updated {
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
            for a in &advisories {
                writeln!(out, "! {a}")?;
            }
        }
    }
    Ok(ExitStatus::Success)
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
    )?;
    let mut ids = Vec::new();
    chantal_common::rpm::updateinfo::parse(reader, |a| {
        ids.push(a.id);
        Ok(())
    })
    .map_err(|e| e.into_error(&path, &full))?;
    Ok(ids)
}
