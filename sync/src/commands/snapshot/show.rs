//! `chantal snapshot show`.

use std::collections::BTreeMap;
use std::io::{self, Write};

use chantal_common::Sha256;
use serde::Serialize;

use super::super::Context;
use super::list::SnapshotRow;
use crate::cli::Format;
use crate::output::{self, Report, Row};
use crate::ExitStatus;

#[derive(Debug, Serialize)]
struct SnapshotShow {
    #[serde(flatten)]
    snapshot: SnapshotRow,
    /// Packages per architecture.
    architectures: BTreeMap<String, usize>,
    repomd_revision: Option<String>,
    /// The sha256 of the version's manifest (`.chantal/manifest.json`); none for a version
    /// made before manifests existed whose repository has not synced since.
    tree_id: Option<Sha256>,
    /// With `--packages`.
    #[serde(skip_serializing_if = "Option::is_none")]
    package_list: Option<Vec<PackageRow>>,
}

#[derive(Debug, Serialize)]
struct PackageRow {
    nevra: String,
    sha256: Sha256,
    location: String,
    /// Issuer key ids of the package's signatures, as a sync with `rpm.gpgcheck` read them
    /// (empty when no sync checked it).
    key_ids: Vec<String>,
}

impl Row for PackageRow {
    const COLUMNS: &'static [(&'static str, &'static str)] = &[
        ("nevra", "NEVRA"),
        ("sha256", "SHA256"),
        ("key_ids", "KEY IDS"),
    ];

    fn cell(&self, field: &str) -> String {
        match field {
            "nevra" => self.nevra.clone(),
            "sha256" => self.sha256.to_string(),
            _ if self.key_ids.is_empty() => "-".into(),
            _ => self.key_ids.join(","),
        }
    }
}

pub fn show(
    ctx: &Context,
    name: &str,
    repo: Option<&str>,
    all: bool,
    packages: bool,
    format: Format,
) -> anyhow::Result<ExitStatus> {
    let catalogue = ctx.catalogue()?;
    if !all {
        let s = super::find(&catalogue, name, repo)?;
        output::report(format, &view(&catalogue, s, packages)?)?;
        return Ok(ExitStatus::Success);
    }
    let set: Vec<SnapshotShow> = catalogue
        .snapshots(None)?
        .into_iter()
        .filter(|s| s.name == name)
        .map(|s| view(&catalogue, s, packages))
        .collect::<anyhow::Result<_>>()?;
    if set.is_empty() {
        anyhow::bail!("no snapshot named {name}");
    }
    output::report(format, &ShowSet(set))?;
    Ok(ExitStatus::Success)
}

/// `snapshot show --all`: each repository's, one after another (JSON: an array).
#[derive(Debug, Serialize)]
#[serde(transparent)]
struct ShowSet(Vec<SnapshotShow>);

impl Report for ShowSet {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(out)?;
            }
            s.text(out)?;
        }
        Ok(())
    }
}

fn view(
    catalogue: &chantal_common::catalogue::Catalogue,
    s: chantal_common::catalogue::SnapshotRecord,
    packages: bool,
) -> anyhow::Result<SnapshotShow> {
    let info = catalogue.version_info(&s.repository, s.version)?;
    let pkgs = catalogue.version_packages(&s.repository, s.version)?;
    let mut architectures: BTreeMap<String, usize> = BTreeMap::new();
    for p in &pkgs {
        *architectures.entry(p.nevra.arch.clone()).or_default() += 1;
    }
    let signers = if packages {
        catalogue.version_signers(&s.repository, s.version)?
    } else {
        Default::default()
    };
    let tree_id = catalogue.tree_ids(&s.repository)?.remove(&s.version);
    Ok(SnapshotShow {
        tree_id,
        snapshot: SnapshotRow::of(s),
        architectures,
        repomd_revision: info.and_then(|i| i.repomd_revision),
        package_list: packages.then(|| {
            pkgs.into_iter()
                .map(|p| PackageRow {
                    nevra: p.nevra.to_string(),
                    key_ids: signers
                        .get(&p.sha256)
                        .map(|k| k.split_whitespace().map(str::to_string).collect())
                        .unwrap_or_default(),
                    sha256: p.sha256,
                    location: p.location_href,
                })
                .collect()
        }),
    })
}

impl Report for SnapshotShow {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        let s = &self.snapshot;
        // At least one space after the longest label.
        let mut line = |k: &str, v: String| writeln!(out, "{:<15} {v}", format!("{k}:"));
        line("repository", s.repository.clone())?;
        line("snapshot", s.name.clone())?;
        line("version", s.version.to_string())?;
        line(
            "packages",
            format!("{} ({})", s.packages, output::bytes(s.size)),
        )?;
        line(
            "architectures",
            self.architectures
                .iter()
                .map(|(a, n)| format!("{a} {n}"))
                .collect::<Vec<_>>()
                .join(", "),
        )?;
        line(
            "repomd revision",
            self.repomd_revision.clone().unwrap_or_else(|| "-".into()),
        )?;
        line(
            "tree id",
            self.tree_id.as_ref().map_or_else(
                || "- (sync the repository to write it)".into(),
                Sha256::to_string,
            ),
        )?;
        line("created", output::time(&s.created_at))?;
        line("description", s.description.clone().unwrap_or_default())?;
        if let Some(list) = &self.package_list {
            writeln!(out)?;
            output::write_table(out, list)?;
        }
        Ok(())
    }
}
