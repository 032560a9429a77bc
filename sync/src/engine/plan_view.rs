//! What `repo sync --dry-run` prints: the plan, as text or JSON from one serialisable value.

use serde::Serialize;

use super::human_bytes;
use super::plan::{Counts, Plan, Regenerate, Source};

/// One repository's plan, as printed.
#[derive(Debug, Clone, Serialize)]
pub struct PlanView {
    pub repository: String,
    /// Nothing changed upstream: no plan to make.
    pub up_to_date: bool,
    pub counts: Counts,
    /// `upstream`: its repodata is kept as it is; otherwise why chantal writes its own.
    pub repodata: String,
    pub packages: Vec<PackageView>,
    /// Packages of the latest version the new one would not hold.
    pub dropped: Vec<PackageView>,
    /// Installer tree files to fetch (those the pool does not hold).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tree: Vec<TreeFileView>,
    /// The variants the served `.treeinfo` lists, when upstream has a tree.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tree_variants: Option<Vec<String>>,
    /// `rpm.gpgcheck`: whether packages are checked (those the pool holds by the dry run
    /// itself; those to download only as they arrive, which a dry run does not do).
    pub gpgcheck: bool,
    /// Packages the pool holds that fail the signature check: the sync would reject them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<RejectedView>,
    /// Every file of the next version, where it comes from (with `-v`, and in JSON).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<super::manifest::VersionManifest<'static>>,
}

/// A package the sync would reject, and why.
#[derive(Debug, Clone, Serialize)]
pub struct RejectedView {
    pub nevra: String,
    pub reason: String,
}

/// One installer tree file to fetch.
#[derive(Debug, Clone, Serialize)]
pub struct TreeFileView {
    pub path: String,
    /// As extra_files.json declares it (`.treeinfo` declares no sizes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PackageView {
    pub href: String,
    pub nevra: String,
    /// download, reuse or retain (absent for dropped packages).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// Bytes to download.
    #[serde(skip_serializing_if = "is_zero")]
    pub size: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl PlanView {
    /// The view of a plan; with `detail`, every package is listed (else only the counts).
    pub fn new(
        repository: &str,
        plan: &Plan<'_>,
        previous: &[chantal_common::catalogue::VersionPackage],
        detail: bool,
    ) -> PlanView {
        PlanView {
            repository: repository.to_string(),
            up_to_date: false,
            counts: plan.counts,
            repodata: match plan.regenerate {
                None => "upstream".into(),
                Some(Regenerate::ArchitectureFilter) => {
                    "generated: the architecture filter drops packages".into()
                }
                Some(Regenerate::ContentFilter) => "generated: the filters drop packages".into(),
                Some(Regenerate::NotAllUpstream) => {
                    "generated: the policy takes fewer packages than upstream lists".into()
                }
                Some(Regenerate::Retained) => {
                    "generated: retention keeps packages upstream dropped".into()
                }
            },
            packages: if !detail {
                Vec::new()
            } else {
                plan.entries
                    .iter()
                    .map(|e| PackageView {
                        href: e.href().to_string(),
                        nevra: e.nevra().to_string(),
                        source: Some(e.source),
                        size: e.size(),
                    })
                    .collect()
            },
            dropped: if !detail {
                Vec::new()
            } else {
                plan.dropped
                    .iter()
                    .map(|&i| PackageView {
                        href: previous[i].location_href.clone(),
                        nevra: previous[i].nevra.to_string(),
                        source: None,
                        size: 0,
                    })
                    .collect()
            },
            tree: Vec::new(),
            tree_variants: None,
            gpgcheck: false,
            rejected: Vec::new(),
            manifest: None,
        }
    }

    /// A repository with nothing to do.
    pub fn up_to_date(repository: &str, unchanged: usize) -> PlanView {
        PlanView {
            repository: repository.to_string(),
            up_to_date: true,
            counts: Counts {
                unchanged,
                ..Counts::default()
            },
            repodata: "upstream".into(),
            packages: Vec::new(),
            dropped: Vec::new(),
            tree: Vec::new(),
            tree_variants: None,
            gpgcheck: false,
            rejected: Vec::new(),
            manifest: None,
        }
    }

    /// The plan's lines after the summary line; with `verbose`, every package.
    pub fn lines(&self, verbose: bool) -> Vec<String> {
        let c = &self.counts;
        let mut out = vec![
            format!(
                "  download  {} packages ({})",
                c.download,
                human_bytes(c.download_bytes)
            ),
            format!("  reuse     {} packages the pool holds", c.reuse),
            format!("  retain    {} packages upstream dropped", c.retain),
            format!("  drop      {} packages of the latest version", c.removed),
        ];
        // Only repositories whose filters removed something get the line.
        if c.excluded > 0 {
            out.push(format!(
                "  exclude   {} packages upstream lists (filters)",
                c.excluded
            ));
        }
        out.push(format!("  repodata  {}", self.repodata));
        if self.gpgcheck {
            out.push(format!(
                "  signatures checked for the {} packages the pool holds; the {} to download are checked as they arrive (a dry run downloads none)",
                c.reuse + c.retain,
                c.download
            ));
        }
        if !self.rejected.is_empty() {
            out.push(format!(
                "  reject    {} packages the pool holds fail the signature check: the sync would fail (--allow-partial: commit without them)",
                self.rejected.len()
            ));
            for r in &self.rejected {
                out.push(format!("  reject    {}: {}", r.nevra, r.reason));
            }
        }
        if let Some(variants) = &self.tree_variants {
            out.push(format!(
                "  tree      {} installer tree files to fetch; .treeinfo serves {}",
                self.tree.len(),
                if variants.is_empty() {
                    "no variant".to_string()
                } else {
                    variants.join(", ")
                }
            ));
            for f in &self.tree {
                let size = f
                    .size
                    .map(|s| format!(" ({})", human_bytes(s)))
                    .unwrap_or_default();
                out.push(format!("  fetch     {}{size}", f.path));
            }
        }
        if verbose {
            for p in &self.packages {
                let what = match p.source {
                    Some(Source::Download) => "download",
                    Some(Source::Reuse) => "reuse",
                    Some(Source::Retain) => "retain",
                    None => "",
                };
                let size = if p.size > 0 {
                    format!(" ({})", human_bytes(p.size))
                } else {
                    String::new()
                };
                out.push(format!("  {what:<9} {} {}{size}", p.href, p.nevra));
            }
            for p in &self.dropped {
                out.push(format!("  drop      {} {}", p.href, p.nevra));
            }
            // The version's other files, as the manifest lists them.
            for f in self.manifest.iter().flat_map(|m| &m.files) {
                let super::manifest::FileKind::Metadata(kind) = &f.kind else {
                    continue;
                };
                let source = match f.source {
                    super::manifest::Source::Held => "held",
                    super::manifest::Source::Retain => "retain",
                    super::manifest::Source::Download => "download",
                    super::manifest::Source::OnDemand => "on-demand",
                    super::manifest::Source::Generate => "generate",
                    super::manifest::Source::Sign => "sign",
                };
                out.push(format!(
                    "  {source:<9} {} ({kind})",
                    f.path
                        .as_deref()
                        .unwrap_or("repodata/<sha256>-… (named when written)")
                ));
            }
        }
        out
    }
}
