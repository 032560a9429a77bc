//! `chantal package search` and `package show`: which packages the mirror has, and every tree
//! (latest, versions, snapshots, environments) that serves each.

use std::cmp::Ordering;
use std::io::{self, Write};

use serde::Serialize;

use super::served::{Served, Trees};
use super::Context;
use crate::cli::Format;
use crate::output::{self, Report};
use crate::ExitStatus;
use chantal_common::catalogue::{FoundPackage, PackageQuery};
use chantal_common::rpm::evr::compare_evr;
use chantal_common::rpm::Nevra;

/// What `package search` was asked.
pub struct Search<'a> {
    pub pattern: Option<&'a str>,
    pub provides: Option<&'a str>,
    pub file: Option<&'a str>,
    pub repo_id: Option<&'a str>,
    pub format: Format,
}

#[derive(Debug, Serialize)]
struct Hit {
    nevra: String,
    name: String,
    epoch: i64,
    version: String,
    release: String,
    arch: String,
    sha256: String,
    size: i64,
    served: Vec<ServedAt>,
}

#[derive(Debug, Serialize)]
struct ServedAt {
    #[serde(flatten)]
    served: Served,
    /// Where those versions serve it.
    href: String,
}

#[derive(Debug, Serialize)]
struct Hits(Vec<Hit>);

/// Newest first within a name: by name, then EVR descending, then architecture.
fn newest_first(a: &Nevra, b: &Nevra) -> Ordering {
    a.name
        .cmp(&b.name)
        .then_with(|| {
            compare_evr(
                (b.epoch, &b.version, &b.release),
                (a.epoch, &a.version, &a.release),
            )
        })
        .then_with(|| a.arch.cmp(&b.arch))
}

fn hit(p: &FoundPackage, trees: &Trees) -> Hit {
    let served = p
        .places
        .iter()
        .filter_map(|place| {
            trees
                .served(&place.repository, |v| place.holds(v))
                .map(|served| ServedAt {
                    served,
                    href: place.href.clone(),
                })
        })
        .collect();
    Hit {
        nevra: p.nevra.to_string(),
        name: p.nevra.name.clone(),
        epoch: p.nevra.epoch,
        version: p.nevra.version.clone(),
        release: p.nevra.release.clone(),
        arch: p.nevra.arch.clone(),
        sha256: p.sha256.to_string(),
        size: p.size,
        served,
    }
}

pub fn search(ctx: &Context, args: &Search<'_>) -> anyhow::Result<ExitStatus> {
    if args.pattern.is_none() && args.provides.is_none() && args.file.is_none() {
        anyhow::bail!("give a name PATTERN, --provides CAP or --file PATH");
    }
    let catalogue = ctx.catalogue()?;
    if let Some(r) = args.repo_id {
        if catalogue.repository_summary(r)?.is_none() {
            anyhow::bail!("unknown repository {r}: the catalogue has no version of it");
        }
    }
    let mut found = catalogue.find_packages(&PackageQuery {
        name_glob: args.pattern,
        provides: args.provides,
        file: args.file,
        repository: args.repo_id,
        ..Default::default()
    })?;
    found.sort_by(|a, b| newest_first(&a.nevra, &b.nevra));
    let trees = Trees::load(&catalogue)?;
    let hits: Vec<Hit> = found
        .iter()
        .map(|p| hit(p, &trees))
        .filter(|h| !h.served.is_empty())
        .collect();
    let none = hits.is_empty();
    if none && args.format == Format::Table {
        output::warn("no package matches");
    }
    output::report(args.format, &Hits(hits))?;
    // As grep: 1 when nothing matched, so scripts can test for a package.
    Ok(if none {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

impl Report for Hits {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        for h in &self.0 {
            writeln!(out, "{}", h.nevra)?;
            for s in &h.served {
                writeln!(out, "  {}", s.served.describe())?;
            }
        }
        Ok(())
    }
}

#[derive(Debug, Serialize)]
struct Shown {
    #[serde(flatten)]
    hit: Hit,
    build_time: Option<String>,
    summary: String,
    description: String,
    url: String,
    license: String,
    vendor: String,
    packager: String,
    sourcerpm: String,
    /// Issuer key ids of its signatures; `None`: never checked (no `rpm.gpgcheck`).
    signature_key_ids: Option<String>,
    /// Fingerprints of the trusted keys that verified it.
    verified_by: Vec<String>,
}

pub fn show(ctx: &Context, nevra: &str, format: Format) -> anyhow::Result<ExitStatus> {
    let wanted = Nevra::parse(nevra).ok_or_else(|| {
        anyhow::anyhow!("{nevra:?} is not a NEVRA: name-[epoch:]version-release.arch")
    })?;
    let catalogue = ctx.catalogue()?;
    let found = catalogue.find_packages(&PackageQuery {
        nevra: Some(&wanted),
        with_fragment: true,
        ..Default::default()
    })?;
    if found.is_empty() {
        anyhow::bail!(
            "no package {nevra} in any repository (try `chantal package search {}`)",
            wanted.name
        );
    }
    let trees = Trees::load(&catalogue)?;
    let mut shown = Vec::new();
    // Two files may share a NEVRA (rebuilt, resigned): each is shown.
    for p in &found {
        let d = chantal_common::rpm::primary::describe(p.primary_xml.as_deref().unwrap_or(""));
        let (key_ids, verified) = catalogue.package_signature(&p.sha256)?;
        shown.push(Shown {
            hit: hit(p, &trees),
            build_time: p
                .build_time
                .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
                .map(|t| t.to_rfc3339()),
            summary: d.summary,
            description: d.description,
            url: d.url,
            license: d.license,
            vendor: d.vendor,
            packager: d.packager,
            sourcerpm: d.sourcerpm,
            signature_key_ids: key_ids,
            verified_by: verified,
        });
    }
    output::report(format, &ShownAll(shown))?;
    Ok(ExitStatus::Success)
}

#[derive(Debug, Serialize)]
struct ShownAll(Vec<Shown>);

impl Report for ShownAll {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(out)?;
            }
            let h = &s.hit;
            writeln!(out, "{}", h.nevra)?;
            let mut field = |k: &str, v: &str| -> io::Result<()> {
                if v.is_empty() {
                    return Ok(());
                }
                writeln!(out, "  {k:<11} {v}")
            };
            field("summary:", &s.summary)?;
            field("sha256:", &h.sha256)?;
            field("size:", &output::bytes(h.size))?;
            field("built:", s.build_time.as_deref().unwrap_or(""))?;
            field("license:", &s.license)?;
            field("url:", &s.url)?;
            field("vendor:", &s.vendor)?;
            field("packager:", &s.packager)?;
            field("source rpm:", &s.sourcerpm)?;
            let signed = match (&s.signature_key_ids, s.verified_by.is_empty()) {
                (None, _) => "not checked (rpm.gpgcheck is off)".to_string(),
                (Some(ids), _) if ids.is_empty() => "unsigned".to_string(),
                (Some(ids), true) => format!("key ids {ids}, not verified"),
                (Some(ids), false) => {
                    format!("key ids {ids}, verified by {}", s.verified_by.join(" "))
                }
            };
            field("signature:", &signed)?;
            for served in &h.served {
                writeln!(
                    out,
                    "  served by   {} at {}",
                    served.served.describe(),
                    served.href
                )?;
            }
            if !s.description.is_empty() {
                writeln!(out)?;
                for line in s.description.lines() {
                    writeln!(out, "  {line}")?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_first_within_a_name() {
        let mut v = [
            Nevra::parse("b-1.0-1.noarch").unwrap(),
            Nevra::parse("a-1.9-1.x86_64").unwrap(),
            Nevra::parse("a-1.10-1.x86_64").unwrap(),
            Nevra::parse("a-1:0.1-1.x86_64").unwrap(),
        ];
        v.sort_by(newest_first);
        let names: Vec<String> = v.iter().map(|n| n.to_string()).collect();
        assert_eq!(
            names,
            [
                "a-1:0.1-1.x86_64",
                "a-1.10-1.x86_64",
                "a-1.9-1.x86_64",
                "b-1.0-1.noarch"
            ]
        );
    }
}
