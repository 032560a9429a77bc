//! The next version as one value: every file it will hold — packages, repodata (upstream's or
//! chantal's own), the installer tree, the key file, the mirror's signature and key — with
//! its path, what it is, its sha256 and size where known, and where it comes from. Built by a
//! pure function from the plan and what the fetch found; its layout is checked once, here; the
//! dry run prints it; the engine executes its entries (downloads, generation, signing) and
//! commits it.

use std::borrow::Cow;

use chantal_common::catalogue::NewMetadata;
use chantal_common::repodata::{is_dropped, is_generated, PACKAGE_DOCUMENTS};
use chantal_common::rpm::treeinfo::{EXTRA_FILES, TREEINFO_NAMES};
use chantal_common::rpm::MetadataKind;
use chantal_common::tree::{check_layout, Role};
use chantal_common::Sha256;
use serde::Serialize;

use super::plan::{self, Plan};

/// Where a repomd.xml signature is served.
pub const REPOMD_ASC: &str = "repodata/repomd.xml.asc";
/// Where the mirror's public key is served (`publish.sign`).
pub const REPOMD_KEY: &str = "repodata/repomd.xml.key";
/// Where repomd.xml is.
pub const REPOMD: &str = "repodata/repomd.xml";

/// What a file of the version is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "is", content = "kind")]
pub enum FileKind {
    Package,
    Metadata(MetadataKind),
}

/// Where a file of the version comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The pool holds it: upstream lists it (or it is upstream's repodata, fetched with the
    /// metadata), or chantal stored it (the key file).
    Held,
    /// Upstream dropped it; retention keeps it from the latest version.
    Retain,
    /// Fetched from upstream by this sync.
    Download,
    /// Listed by upstream with its sha256 and size, fetched when a client first reads it
    /// (`download.policy: on_demand`).
    #[serde(rename = "on-demand")]
    OnDemand,
    /// Written by chantal for the version's package set (named by its content once written).
    Generate,
    /// Made by `publish.sign` over the version's repomd.xml.
    Sign,
}

/// One file of the next version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManifestEntry<'a> {
    /// Its path in the version's tree (borrowed from the plan and the fetch, as a package's
    /// href: 100,000 packages are not copied again); none for a file chantal generates,
    /// which is named by its sha256 under `repodata/` once written.
    pub path: Option<Cow<'a, str>>,
    #[serde(flatten)]
    pub kind: FileKind,
    pub source: Source,
    /// Known for what the pool holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<Sha256>,
    /// Known for packages (from primary.xml) and files whose metadata declares it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

impl ManifestEntry<'_> {
    /// Its path and what may lie there, for the layout check; none until it has a path.
    fn layout(&self) -> Option<(&str, Role)> {
        let path = self.path.as_deref()?;
        let role = match &self.kind {
            FileKind::Metadata(k) if !k.is_installer_tree() => Role::Repodata,
            // Installer-tree files may not live in repodata/ either.
            _ => Role::Package,
        };
        Some((path, role))
    }
}

/// Every file of the next version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionManifest<'a> {
    pub files: Vec<ManifestEntry<'a>>,
}

/// An upstream repodata file the pool holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldMeta<'a> {
    pub kind: &'a MetadataKind,
    pub href: &'a str,
    pub sha256: &'a Sha256,
    pub size: u64,
}

/// The installer tree, as the fetch found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeInput<'a> {
    /// The served `.treeinfo`'s sha256 (it is served at both names).
    pub treeinfo: &'a Sha256,
    pub extra_files: Option<&'a Sha256>,
    /// Each file it names: its path, its sha256 when the pool holds it, its declared size.
    pub files: Vec<(&'a str, Option<Sha256>, Option<u64>)>,
}

/// What the manifest is built from.
pub struct Inputs<'a> {
    pub plan: &'a Plan<'a>,
    /// The plan's downloads left for a client's first read, by entry index, with the sha256
    /// upstream lists.
    pub on_demand: std::collections::HashMap<usize, Sha256>,
    /// Upstream's repomd.xml and its verified signature, as the pool holds them.
    pub repomd: &'a Sha256,
    pub repomd_asc: Option<&'a Sha256>,
    /// Upstream's repodata files (every type repomd.xml lists).
    pub upstream: Vec<HeldMeta<'a>>,
    /// Whether chantal writes the repodata (the plan says so, or packages failed under
    /// `--allow-partial`).
    pub generate: bool,
    /// Whether the generated repodata has an updateinfo (upstream has one, or keep-all carries
    /// the previous one).
    pub updateinfo: bool,
    /// The key file clients import (`RPM-GPG-KEY-<repo>`) and its sha256.
    pub key_file: Option<(Cow<'a, str>, &'a Sha256)>,
    /// `publish.sign`: the mirror signs repomd.xml.
    pub sign: bool,
    pub tree: Option<TreeInput<'a>>,
}

/// The manifest for `inputs`.
pub fn build<'a>(inputs: &Inputs<'a>) -> VersionManifest<'a> {
    // Sized for everything pushed below too: growing past the packages would double the
    // vector (100,000 entries: 9.6 MB of empty slots at the sync's peak).
    let mut files: Vec<ManifestEntry> = Vec::with_capacity(
        inputs.plan.entries.len()
            + inputs.upstream.len()
            + inputs.tree.as_ref().map_or(0, |t| t.files.len() + 4)
            + 8,
    );
    files.extend(inputs.plan.entries.iter().enumerate().map(|(n, e)| {
        let on_demand = inputs.on_demand.get(&n);
        ManifestEntry {
            path: Some(Cow::Borrowed(e.href())),
            kind: FileKind::Package,
            source: match e.source {
                plan::Source::Download if on_demand.is_some() => Source::OnDemand,
                plan::Source::Download => Source::Download,
                plan::Source::Reuse => Source::Held,
                plan::Source::Retain => Source::Retain,
            },
            sha256: e.sha256.clone().or_else(|| on_demand.cloned()),
            size: Some(e.size()).filter(|&s| s > 0),
        }
    }));
    others(inputs, &mut files);
    VersionManifest { files }
}

/// The files of the manifest but the packages, in its order.
fn others<'a>(inputs: &Inputs<'a>, files: &mut Vec<ManifestEntry<'a>>) {
    if inputs.generate {
        generated_repodata(inputs, files);
    } else {
        upstream_repodata(inputs, files);
    }
    if inputs.sign {
        files.push(meta(
            MetadataKind::RepomdAsc,
            Some(REPOMD_ASC),
            Source::Sign,
            None,
            None,
        ));
        files.push(meta(
            MetadataKind::RepomdKey,
            Some(REPOMD_KEY),
            Source::Sign,
            None,
            None,
        ));
    }
    if let Some(t) = &inputs.tree {
        tree_files(t, files);
    }
    if let Some((href, sha256)) = &inputs.key_file {
        files.push(ManifestEntry {
            path: Some(href.clone()),
            ..meta(MetadataKind::GpgKey, None, Source::Held, Some(sha256), None)
        });
    }
}

/// [`VersionManifest::check`] of the manifest `inputs` make, without making its package
/// entries: the check needs only their hrefs, and at 100,000 packages the entries take 10 MB
/// at the metadata phase's peak (the draft plan's check).
pub fn check(inputs: &Inputs<'_>) -> Result<(), String> {
    let mut files = Vec::new();
    others(inputs, &mut files);
    check_layout(
        inputs
            .plan
            .entries
            .iter()
            .map(|e| (e.href(), Role::Package))
            .chain(files.iter().filter_map(ManifestEntry::layout)),
    )
}

fn meta<'a>(
    kind: MetadataKind,
    path: Option<&'a str>,
    source: Source,
    sha256: Option<&Sha256>,
    size: Option<u64>,
) -> ManifestEntry<'a> {
    ManifestEntry {
        path: path.map(Cow::Borrowed),
        kind: FileKind::Metadata(kind),
        source,
        sha256: sha256.cloned(),
        size,
    }
}

/// chantal's repodata for the set (named once written), with upstream's files of the types
/// it neither writes nor drops.
fn generated_repodata<'a>(inputs: &Inputs<'a>, files: &mut Vec<ManifestEntry<'a>>) {
    files.push(meta(
        MetadataKind::Repomd,
        Some(REPOMD),
        Source::Generate,
        None,
        None,
    ));
    for kind in PACKAGE_DOCUMENTS {
        files.push(meta(kind, None, Source::Generate, None, None));
    }
    if inputs.updateinfo {
        files.push(meta(
            MetadataKind::Updateinfo,
            None,
            Source::Generate,
            None,
            None,
        ));
    }
    for f in inputs
        .upstream
        .iter()
        .filter(|f| !is_generated(f.kind) && !is_dropped(f.kind))
    {
        files.push(meta(
            f.kind.clone(),
            Some(f.href),
            Source::Held,
            Some(f.sha256),
            Some(f.size),
        ));
    }
}

/// Upstream's repodata as it is, with its repomd.xml (and that file's signature, unless the
/// mirror signs instead).
fn upstream_repodata<'a>(inputs: &Inputs<'a>, files: &mut Vec<ManifestEntry<'a>>) {
    files.push(meta(
        MetadataKind::Repomd,
        Some(REPOMD),
        Source::Held,
        Some(inputs.repomd),
        None,
    ));
    if let (Some(asc), false) = (inputs.repomd_asc, inputs.sign) {
        files.push(meta(
            MetadataKind::RepomdAsc,
            Some(REPOMD_ASC),
            Source::Held,
            Some(asc),
            None,
        ));
    }
    for f in &inputs.upstream {
        files.push(meta(
            f.kind.clone(),
            Some(f.href),
            Source::Held,
            Some(f.sha256),
            Some(f.size),
        ));
    }
}

/// The installer tree: its description (at both names), extra_files.json and each file it
/// names, held or to download.
fn tree_files<'a>(t: &TreeInput<'a>, files: &mut Vec<ManifestEntry<'a>>) {
    for name in TREEINFO_NAMES {
        files.push(meta(
            MetadataKind::TreeInfo,
            Some(name),
            Source::Held,
            Some(t.treeinfo),
            None,
        ));
    }
    if let Some(x) = t.extra_files {
        files.push(meta(
            MetadataKind::ExtraFiles,
            Some(EXTRA_FILES),
            Source::Held,
            Some(x),
            None,
        ));
    }
    for (path, sha256, size) in &t.files {
        files.push(meta(
            MetadataKind::TreeFile,
            Some(path),
            if sha256.is_some() {
                Source::Held
            } else {
                Source::Download
            },
            sha256.as_ref(),
            *size,
        ));
    }
}

impl<'a> VersionManifest<'a> {
    /// The same manifest owning its paths, to outlive the plan it was made from.
    pub fn into_owned(self) -> VersionManifest<'static> {
        VersionManifest {
            files: self
                .files
                .into_iter()
                .map(|f| ManifestEntry {
                    path: f.path.map(|p| Cow::Owned(p.into_owned())),
                    kind: f.kind,
                    source: f.source,
                    sha256: f.sha256,
                    size: f.size,
                })
                .collect(),
        }
    }

    /// Whether the version's paths can form one tree (every path once, no file where a
    /// directory is needed, nothing but repodata in `repodata/`). The error names the paths
    /// involved. A sync checks with [`check`], before anything is fetched; the tests hold it
    /// to this.
    #[cfg(test)]
    pub fn check(&self) -> Result<(), String> {
        check_layout(self.files.iter().filter_map(ManifestEntry::layout))
    }

    /// After the downloads: each package's sha256 (by its index in the plan, the order the
    /// manifest lists packages in) from what arrived; packages that failed, or that the pool
    /// held but failed their signature check (`rejected`), leave the version.
    pub fn settle_packages(
        &mut self,
        downloaded: &std::collections::HashMap<usize, Sha256>,
        rejected: &std::collections::HashSet<usize>,
    ) {
        let mut index = 0;
        self.files.retain_mut(|f| {
            if f.kind != FileKind::Package {
                return true;
            }
            let i = index;
            index += 1;
            if rejected.contains(&i) {
                return false;
            }
            if f.sha256.is_none() {
                f.sha256 = downloaded.get(&i).cloned();
            }
            f.sha256.is_some()
        });
    }

    /// The version's packages: (sha256, path).
    pub fn content(&self) -> Vec<(Sha256, String)> {
        self.files
            .iter()
            .filter(|f| f.kind == FileKind::Package)
            .filter_map(|f| Some((f.sha256.clone()?, f.path.as_deref()?.to_string())))
            .collect()
    }

    /// The files chantal wrote for the version (`repodata::generate`'s rows) in place of the
    /// entries it planned to generate. Its rows for the types it carries over are the
    /// manifest's held entries already.
    pub fn fill_generated(&mut self, written: Vec<NewMetadata>) {
        self.files.retain(|f| f.source != Source::Generate);
        self.files.extend(
            written
                .into_iter()
                .filter(|m| m.kind == MetadataKind::Repomd || is_generated(&m.kind))
                .map(|m| ManifestEntry {
                    path: Some(Cow::Owned(m.location_href)),
                    kind: FileKind::Metadata(m.kind),
                    source: Source::Generate,
                    sha256: Some(m.blob_sha256),
                    size: None,
                }),
        );
    }

    /// The signature and key files `publish.sign` made.
    pub fn fill_signed(&mut self, asc: &Sha256, key: &Sha256) {
        for f in self.files.iter_mut().filter(|f| f.source == Source::Sign) {
            f.sha256 = Some(match f.kind {
                FileKind::Metadata(MetadataKind::RepomdKey) => key.clone(),
                _ => asc.clone(),
            });
        }
    }

    /// The sha256 of the version's repomd.xml, once known.
    pub fn repomd_sha256(&self) -> Option<&Sha256> {
        self.files
            .iter()
            .find(|f| f.kind == FileKind::Metadata(MetadataKind::Repomd))
            .and_then(|f| f.sha256.as_ref())
    }

    /// The files of `source`.
    #[cfg(test)]
    pub fn of(&self, source: Source) -> impl Iterator<Item = &ManifestEntry<'a>> {
        self.files.iter().filter(move |f| f.source == source)
    }

    /// The version's metadata rows: every file but the packages, once its path and sha256 are
    /// known (the executors fill in what chantal generates and signs).
    pub fn metadata_rows(&self) -> Vec<NewMetadata> {
        self.files
            .iter()
            .filter_map(|f| {
                let FileKind::Metadata(kind) = &f.kind else {
                    return None;
                };
                Some(NewMetadata {
                    kind: kind.clone(),
                    blob_sha256: f.sha256.clone()?,
                    location_href: f.path.as_deref()?.to_string(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashMap};

    use chantal_common::config::Retention;
    use chantal_common::rpm::{Checksum, Nevra, PrimaryPackage};

    use crate::engine::metadata::UpPkg;
    use proptest::prelude::*;

    use super::*;

    /// A stand-in sha256 named by a letter.
    fn sha(name: &str) -> Sha256 {
        Sha256::digest(name.as_bytes())
    }

    fn package(i: usize, href: &str) -> PrimaryPackage {
        PrimaryPackage {
            nevra: Nevra {
                name: format!("p{i}"),
                epoch: 0,
                version: "1".into(),
                release: "1".into(),
                arch: "noarch".into(),
            },
            checksum: Checksum::new("sha256", &format!("{i:064x}")).unwrap(),
            location_href: href.into(),
            location_base: None,
            size_package: 100,
            size_installed: None,
            size_archive: None,
            time_file: None,
            time_build: None,
            sourcerpm: None,
        }
    }

    /// A manifest of `hrefs` packages (those in `held` already in the pool), with upstream's
    /// repodata, maybe generated, signed, with a tree and a key file.
    #[derive(Debug)]
    struct Case {
        hrefs: Vec<String>,
        held: Vec<bool>,
        /// Of the packages not held, those left on demand.
        on_demand: Vec<bool>,
        generate: bool,
        sign: bool,
        asc: bool,
        tree: Vec<(String, bool)>,
        key: bool,
    }

    fn case() -> impl Strategy<Value = Case> {
        let path = "[a-c]{1,2}(/[a-c]{1,2}){0,2}\\.rpm";
        (
            prop::collection::btree_set(path, 0..8),
            prop::collection::vec(any::<bool>(), 8),
            prop::collection::vec(any::<bool>(), 8),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            prop::collection::btree_map("images/[a-c]{1,3}\\.img", any::<bool>(), 0..4),
            any::<bool>(),
        )
            .prop_map(
                |(hrefs, held, on_demand, generate, sign, asc, tree, key)| Case {
                    hrefs: hrefs.into_iter().collect(),
                    held,
                    on_demand,
                    generate,
                    sign,
                    asc,
                    tree: tree.into_iter().collect(),
                    key,
                },
            )
    }

    fn manifest_of(c: &Case) -> VersionManifest<'static> {
        let pkgs: Vec<UpPkg> = c
            .hrefs
            .iter()
            .enumerate()
            .map(|(i, h)| UpPkg::new(&package(i, h)).unwrap())
            .collect();
        let held: HashMap<String, plan::Held> = pkgs
            .iter()
            .zip(&c.held)
            .filter(|(_, h)| **h)
            .map(|(p, _)| {
                (
                    p.checksum_value().to_string(),
                    plan::Held {
                        sha256: Sha256::parse(p.checksum_value()).unwrap(),
                        has_row: true,
                    },
                )
            })
            .collect();
        let keeps = |_: &Nevra| true;
        let plan = plan::plan(&plan::Inputs {
            upstream: &pkgs,
            filtered: 0,
            excluded: 0,
            keeps: &keeps,
            previous: &[],
            retention: Retention {
                policy: chantal_common::config::Policy::Mirror,
                deleted_packages: Default::default(),
                keep_last: None,
                keep_versions_for: Default::default(),
            },
            held: &held,
        });
        let primary = MetadataKind::Primary;
        let group = MetadataKind::Other("group".into());
        let zck = MetadataKind::Other("primary_zck".into());
        let [sha_p, sha_g, sha_z, sha_a, sha_k, sha_t] = ["p", "g", "z", "a", "k", "t"].map(sha);
        let upstream = vec![
            HeldMeta {
                kind: &primary,
                href: "repodata/p.xml.gz",
                sha256: &sha_p,
                size: 1,
            },
            HeldMeta {
                kind: &group,
                href: "repodata/comps.xml",
                sha256: &sha_g,
                size: 1,
            },
            HeldMeta {
                kind: &zck,
                href: "repodata/p.xml.zck",
                sha256: &sha_z,
                size: 1,
            },
        ];
        // By plan entry; `c.on_demand` by upstream package.
        let on_demand: HashMap<usize, Sha256> = plan
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.source == plan::Source::Download)
            .filter_map(|(n, e)| {
                let u = e.upstream_package()?;
                Some((n, pkgs.iter().position(|p| std::ptr::eq(p, u))?))
            })
            .filter(|(_, u)| c.on_demand[*u])
            .map(|(n, u)| (n, Sha256::parse(pkgs[u].checksum_value()).unwrap()))
            .collect();
        let inputs = Inputs {
            plan: &plan,
            on_demand,
            repomd: &sha("r"),
            repomd_asc: c.asc.then_some(&sha_a),
            upstream,
            generate: c.generate,
            updateinfo: false,
            key_file: c.key.then_some(("RPM-GPG-KEY-r".into(), &sha_k)),
            sign: c.sign,
            tree: (!c.tree.is_empty()).then(|| TreeInput {
                treeinfo: &sha_t,
                extra_files: None,
                files: c
                    .tree
                    .iter()
                    .map(|(p, held)| (p.as_str(), held.then(|| sha("h")), None))
                    .collect(),
            }),
        };
        let m = build(&inputs);
        // The draft plan's check, which makes no package entries, judges the same.
        assert_eq!(check(&inputs), m.check());
        m.into_owned()
    }

    proptest! {
        /// Against naive models: every path once; a held file never downloaded; an on-demand
        /// one named by upstream's sha256; signing adds
        /// exactly the two signature files; every tree file is in it; a generated set carries
        /// no upstream package document and no zchunk variant.
        #[test]
        fn the_manifest_holds_every_file_once_and_from_the_right_source(c in case()) {
            let m = manifest_of(&c);
            let paths: Vec<&str> = m.files.iter().filter_map(|f| f.path.as_deref()).collect();
            let unique: BTreeSet<&str> = paths.iter().copied().collect();
            prop_assert_eq!(unique.len(), paths.len(), "{:?}", paths);
            for f in m.of(Source::Download) {
                prop_assert!(f.sha256.is_none(), "a held file is downloaded: {:?}", f);
            }
            for (i, (href, held)) in c.hrefs.iter().zip(&c.held).enumerate() {
                let f = m.files.iter().find(|f| f.path.as_deref() == Some(href.as_str())).unwrap();
                let want = match (*held, c.on_demand[i]) {
                    (true, _) => Source::Held,
                    (false, true) => Source::OnDemand,
                    (false, false) => Source::Download,
                };
                prop_assert_eq!(f.source, want);
                // An on-demand file is named by upstream's sha256 before anything is fetched.
                if want == Source::OnDemand {
                    let listed = package(i, href).checksum.value;
                    prop_assert_eq!(f.sha256.as_ref().map(Sha256::as_str), Some(listed.as_str()));
                }
            }
            let signed: Vec<&str> = m.of(Source::Sign).filter_map(|f| f.path.as_deref()).collect();
            if c.sign {
                prop_assert_eq!(signed, vec![REPOMD_ASC, REPOMD_KEY]);
            } else {
                prop_assert!(signed.is_empty());
            }
            let ascs = paths.iter().filter(|p| **p == REPOMD_ASC).count();
            prop_assert_eq!(ascs, usize::from(c.sign || (c.asc && !c.generate)));
            for (p, _) in &c.tree {
                prop_assert!(paths.contains(&p.as_str()), "tree file {} missing", p);
            }
            if c.generate {
                prop_assert!(!paths.contains(&"repodata/p.xml.gz"));
                prop_assert!(!paths.contains(&"repodata/p.xml.zck"));
                prop_assert!(paths.contains(&"repodata/comps.xml"));
            }
            prop_assert!(m.check().is_ok(), "{:?}", m.check());
        }

        /// What cannot be served is refused: a package inside repodata/, a file where another
        /// needs a directory, two files at one path.
        #[test]
        fn a_tree_that_cannot_be_served_is_refused(c in case(), bad in 0..3usize) {
            let mut m = manifest_of(&c);
            let entry = |p: &'static str| ManifestEntry {
                path: Some(p.into()),
                kind: FileKind::Package,
                source: Source::Download,
                sha256: None,
                size: None,
            };
            match bad {
                0 => m.files.push(entry("repodata/evil.rpm")),
                1 => {
                    m.files.push(entry("d.rpm"));
                    m.files.push(entry("d.rpm/x.rpm"));
                }
                _ => m.files.push(entry(REPOMD)),
            }
            prop_assert!(m.check().is_err());
        }
    }
}
