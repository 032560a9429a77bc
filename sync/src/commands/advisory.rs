//! `chantal advisory search ID|--cve CVE`: which trees (latest, snapshots, environments) hold
//! the packages an advisory fixes, so "is prod patched against CVE-X?" is one command.

use std::collections::{BTreeMap, HashSet};
use std::io::{self, Write};

use serde::Serialize;

use super::served::Trees;
use super::updateinfo::for_each_advisory_in;
use super::Context;
use crate::cli::Format;
use crate::output::{self, Report};
use crate::ExitStatus;
use chantal_common::catalogue::{Catalogue, FoundPackage, PackageQuery};
use chantal_common::pool::Pool;
use chantal_common::rpm::evr::compare_evr;
use chantal_common::rpm::updateinfo::Advisory;
use chantal_common::rpm::{MetadataKind, Nevra};

/// What `advisory search` looks for.
pub enum Wanted<'a> {
    Id(&'a str),
    Cve(&'a str),
}

impl Wanted<'_> {
    fn matches(&self, a: &Advisory) -> bool {
        match self {
            Wanted::Id(id) => a.id.eq_ignore_ascii_case(id),
            Wanted::Cve(cve) => a.cves.iter().any(|c| c.eq_ignore_ascii_case(cve)),
        }
    }
}

#[derive(Debug, Serialize)]
struct Found {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    severity: String,
    title: String,
    cves: Vec<String>,
    repository: String,
    packages: Vec<String>,
    trees: Vec<TreeVerdict>,
}

#[derive(Debug, Serialize)]
struct TreeVerdict {
    /// `latest`, `snapshot NAME` or `environment NAME`.
    tree: String,
    version: i64,
    /// fixed, not-fixed, not-applicable (the tree has none of the packages).
    status: &'static str,
    /// What is missing: the fixed package and the newest the tree has.
    missing: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Findings(Vec<Found>);

pub fn search(
    ctx: &Context,
    wanted: &Wanted<'_>,
    repo_id: Option<&str>,
    format: Format,
) -> anyhow::Result<ExitStatus> {
    let catalogue = ctx.catalogue()?;
    let pool = Pool::new(&ctx.config.storage.base_path);
    let trees = Trees::load(&catalogue)?;
    let mut repos: Vec<String> = catalogue
        .repository_summaries()?
        .into_iter()
        .filter(|s| s.latest_version.is_some())
        .map(|s| s.name)
        .collect();
    if let Some(r) = repo_id {
        if !repos.iter().any(|n| n == r) {
            anyhow::bail!("unknown repository {r}: the catalogue has no version of it");
        }
        repos.retain(|n| n == r);
    }
    let mut found = Vec::new();
    for repo in &repos {
        let tree_list = trees_of(&trees, repo);
        for advisory in advisories(&catalogue, &pool, repo, &tree_list, wanted)? {
            found.push(judge(&catalogue, repo, &tree_list, advisory)?);
        }
    }
    if found.is_empty() {
        anyhow::bail!(
            "no advisory {} in the updateinfo of {}",
            match wanted {
                Wanted::Id(id) => id.to_string(),
                Wanted::Cve(cve) => format!("fixing {cve}"),
            },
            match repo_id {
                Some(r) => r.to_string(),
                None => "any repository's latest version, snapshot or environment".into(),
            }
        );
    }
    output::report(format, &Findings(found))?;
    Ok(ExitStatus::Success)
}

/// A repository's trees: latest, then its snapshots, then the environments pointing into it.
fn trees_of(trees: &Trees, repo: &str) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    if let Some(v) = trees.latest(repo) {
        out.push(("latest".to_string(), v));
    }
    for s in trees.snapshots.iter().filter(|s| s.repository == repo) {
        out.push((format!("snapshot {}", s.name), s.version));
    }
    for e in trees.environments.iter().filter(|e| e.repository == repo) {
        out.push((
            format!("environment {} (= {})", e.environment, e.snapshot),
            e.version,
        ));
    }
    out
}

/// The advisories `wanted` names in the updateinfo of any of the trees (each file read once;
/// the newest tree's copy of an advisory wins).
fn advisories(
    catalogue: &Catalogue,
    pool: &Pool,
    repo: &str,
    tree_list: &[(String, i64)],
    wanted: &Wanted<'_>,
) -> anyhow::Result<Vec<Advisory>> {
    let mut seen_files = HashSet::new();
    let mut by_id: BTreeMap<String, Advisory> = BTreeMap::new();
    for (_, version) in tree_list {
        let Some((path, size)) =
            catalogue.version_metadata(repo, *version, &MetadataKind::Updateinfo)?
        else {
            continue;
        };
        if !seen_files.insert(path.clone()) {
            continue;
        }
        for_each_advisory_in(pool, &path, size, |a| {
            if wanted.matches(&a) && !by_id.contains_key(&a.id) {
                by_id.insert(a.id.clone(), a);
            }
        })?;
    }
    Ok(by_id.into_values().collect())
}

fn judge(
    catalogue: &Catalogue,
    repo: &str,
    tree_list: &[(String, i64)],
    advisory: Advisory,
) -> anyhow::Result<Found> {
    let fixes: Vec<&Nevra> = advisory
        .packages
        .iter()
        .filter(|p| p.arch != "src")
        .collect();
    let mut names: Vec<&str> = fixes.iter().map(|p| p.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let have = if names.is_empty() {
        Vec::new()
    } else {
        catalogue.find_packages(&PackageQuery {
            names: &names,
            repository: Some(repo),
            ..Default::default()
        })?
    };
    let trees = tree_list
        .iter()
        .map(|(tree, version)| {
            let (status, missing) = verdict(&fixes, &have, repo, *version);
            TreeVerdict {
                tree: tree.clone(),
                version: *version,
                status,
                missing,
            }
        })
        .collect();
    Ok(Found {
        packages: advisory.packages.iter().map(|p| p.to_string()).collect(),
        id: advisory.id,
        kind: advisory.kind,
        severity: advisory.severity,
        title: advisory.title,
        cves: advisory.cves,
        repository: repo.to_string(),
        trees,
    })
}

/// Whether version `version` of `repo` holds each fixed package (or a newer one of the same
/// name and architecture). A package the version has no build of at all is not applicable.
fn verdict(
    fixes: &[&Nevra],
    have: &[FoundPackage],
    repo: &str,
    version: i64,
) -> (&'static str, Vec<String>) {
    let mut applicable = false;
    let mut missing = Vec::new();
    for fix in fixes {
        let held: Vec<&Nevra> = have
            .iter()
            .filter(|p| p.nevra.name == fix.name && p.nevra.arch == fix.arch)
            .filter(|p| {
                p.places
                    .iter()
                    .any(|pl| pl.repository == repo && pl.holds(version))
            })
            .map(|p| &p.nevra)
            .collect();
        let Some(newest) = held.iter().copied().max_by(|a, b| {
            compare_evr(
                (a.epoch, &a.version, &a.release),
                (b.epoch, &b.version, &b.release),
            )
        }) else {
            continue;
        };
        applicable = true;
        let new_enough = compare_evr(
            (newest.epoch, &newest.version, &newest.release),
            (fix.epoch, &fix.version, &fix.release),
        )
        .is_ge();
        if !new_enough {
            missing.push(format!("needs {fix}, has {newest}"));
        }
    }
    let status = match (applicable, missing.is_empty()) {
        (false, _) => "not-applicable",
        (true, true) => "fixed",
        (true, false) => "not-fixed",
    };
    (status, missing)
}

impl Report for Findings {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        for (i, f) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(out)?;
            }
            let mut what = vec![f.kind.as_str()];
            if !f.severity.is_empty() {
                what.push(&f.severity);
            }
            writeln!(out, "{} ({}) {}", f.id, what.join(", "), f.title)?;
            if !f.cves.is_empty() {
                writeln!(out, "  CVEs: {}", f.cves.join(" "))?;
            }
            let rows: Vec<Vec<String>> = f
                .trees
                .iter()
                .map(|t| {
                    vec![
                        f.repository.clone(),
                        t.tree.clone(),
                        t.version.to_string(),
                        match t.status {
                            "fixed" => "fixed".to_string(),
                            "not-applicable" => "not applicable".to_string(),
                            _ => format!("NOT FIXED: {}", t.missing.join("; ")),
                        },
                    ]
                })
                .collect();
            let mut table = Vec::new();
            output::table(
                &mut table,
                &["REPOSITORY", "TREE", "VERSION", "STATUS"],
                &rows,
            )?;
            for line in String::from_utf8_lossy(&table).lines() {
                writeln!(out, "  {line}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chantal_common::catalogue::PackagePlace;

    fn pkg(nevra: &str, added_in: i64, removed_in: Option<i64>) -> FoundPackage {
        FoundPackage {
            id: 0,
            nevra: Nevra::parse(nevra).unwrap(),
            sha256: chantal_common::Sha256::parse(&"0".repeat(64)).unwrap(),
            size: 0,
            build_time: None,
            primary_xml: None,
            places: vec![PackagePlace {
                repository: "r".into(),
                href: String::new(),
                added_in,
                removed_in,
            }],
        }
    }

    #[test]
    fn verdicts() {
        let fix = Nevra::parse("openssl-1.1-1.x86_64").unwrap();
        let other = Nevra::parse("curl-8.0-1.x86_64").unwrap();
        let have = [
            pkg("openssl-1.0-1.x86_64", 1, Some(3)),
            pkg("openssl-1.1-1.x86_64", 3, Some(4)),
            pkg("openssl-1.2-1.x86_64", 4, None),
            pkg("openssl-9.9-1.i686", 1, None),
        ];
        let fixes = [&fix, &other];
        assert_eq!(
            verdict(&fixes, &have, "r", 1),
            (
                "not-fixed",
                vec!["needs openssl-1.1-1.x86_64, has openssl-1.0-1.x86_64".to_string()]
            )
        );
        assert_eq!(verdict(&fixes, &have, "r", 3), ("fixed", vec![]));
        // A newer build than the fix counts.
        assert_eq!(verdict(&fixes, &have, "r", 4), ("fixed", vec![]));
        assert_eq!(
            verdict(&fixes, &have, "other", 4),
            ("not-applicable", vec![])
        );
        assert_eq!(
            verdict(&[&other], &have, "r", 4),
            ("not-applicable", vec![])
        );
    }
}
