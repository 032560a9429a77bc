//! The sync plan: from what upstream lists, what the latest version holds, the retention
//! policy and what the pool holds, what the new version will be and where each of its files
//! comes from. A pure function: no network, no catalogue, no disk, so the decisions that
//! publish or drop packages are tested directly (here, against naive models).

use std::collections::{HashMap, HashSet};

use chantal_common::catalogue::VersionPackage;
use chantal_common::config::Retention;
use chantal_common::retention::{self, Pick};
use chantal_common::rpm::{ChecksumType, Nevra, NevraRef};
use chantal_common::Sha256;
use serde::Serialize;

use super::metadata::UpPkg;

/// What the plan is made from (`'a`: what the plan's entries borrow).
pub struct Inputs<'a, 'h> {
    /// Upstream's packages after the architecture filter (and duplicate hrefs dropped).
    pub upstream: &'a [UpPkg],
    /// Upstream packages the architecture filter dropped.
    pub filtered: usize,
    /// Upstream packages the content filters (`filters:`) dropped.
    pub excluded: usize,
    /// Whether a package passes the architecture and content filters: a package of the
    /// latest version that no longer does is not retained.
    pub keeps: &'h dyn Fn(&Nevra) -> bool,
    /// The latest version's packages.
    pub previous: &'a [VersionPackage],
    pub retention: Retention,
    /// Files the pool holds for this sync (reserved and present), by upstream checksum.
    pub held: &'h HashMap<String, Held>,
}

/// A file the pool holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub sha256: Sha256,
    /// Whether its package row (with fragments) exists already.
    pub has_row: bool,
}

/// Where a file of the new version comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Fetched from upstream.
    Download,
    /// Upstream lists it and the pool holds it already.
    Reuse,
    /// Upstream dropped it; retention keeps it from the latest version.
    Retain,
}

/// One package of the new version (its href and NEVRA borrowed from the inputs: a plan of
/// 100,000 packages costs no copy of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The package, as upstream lists it or the latest version holds it.
    pub package: Package<'a>,
    pub source: Source,
    /// The file's sha256, when the pool holds it (reused or retained).
    pub sha256: Option<Sha256>,
    /// Whether its package row exists (retained and reused-with-row files).
    pub has_row: bool,
}

/// Where an entry's package is described.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Package<'a> {
    Upstream(&'a UpPkg),
    Previous(&'a VersionPackage),
}

impl<'a> Entry<'a> {
    /// Bytes to download (0 unless [`Source::Download`]): read from the package, so that an
    /// entry stays at 40 bytes.
    pub fn size(&self) -> u64 {
        match (self.source, self.package) {
            (Source::Download, Package::Upstream(u)) => u.size_package,
            _ => 0,
        }
    }

    pub fn href(&self) -> &'a str {
        match self.package {
            Package::Upstream(u) => u.href(),
            Package::Previous(p) => &p.location_href,
        }
    }

    /// Upstream's description of the package (none when retained).
    pub fn upstream_package(&self) -> Option<&'a UpPkg> {
        match self.package {
            Package::Upstream(u) => Some(u),
            Package::Previous(_) => None,
        }
    }

    pub fn nevra(&self) -> NevraRef<'a> {
        match self.package {
            Package::Upstream(u) => u.nevra(),
            Package::Previous(p) => p.nevra.borrowed(),
        }
    }
}

/// Why chantal writes the new version's repodata instead of keeping upstream's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Regenerate {
    /// `rpm.architectures` dropped some of upstream's packages.
    ArchitectureFilter,
    /// `filters:` dropped some of upstream's packages.
    ContentFilter,
    /// The policy takes fewer packages than upstream lists (newest-only).
    NotAllUpstream,
    /// Retention keeps packages upstream no longer lists.
    Retained,
}

/// The counts a summary line needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Packages of the new version that the latest one lacks (by file and href).
    pub added: usize,
    /// Packages of the latest version the new one lacks.
    pub removed: usize,
    pub unchanged: usize,
    pub download: usize,
    pub download_bytes: u64,
    pub reuse: usize,
    pub retain: usize,
    /// Upstream packages the content filters dropped.
    pub excluded: usize,
}

/// What a sync will do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan<'a> {
    /// The new version's packages: upstream's picks in upstream order, then the retained ones.
    pub entries: Vec<Entry<'a>>,
    /// Indices in [`Inputs::previous`] of the packages the new version drops.
    pub dropped: Vec<usize>,
    /// Indices in [`Inputs::previous`] of packages retention would keep whose href upstream
    /// now uses for another file: the newer file wins.
    pub displaced: Vec<usize>,
    /// `None`: upstream's repodata describes the new version exactly and is kept verbatim.
    pub regenerate: Option<Regenerate>,
    pub counts: Counts,
}

/// The plan for `inputs`.
pub fn plan<'a>(inputs: &Inputs<'a, '_>) -> Plan<'a> {
    // Only what still passes the filters can be retained.
    let eligible: Vec<usize> = (0..inputs.previous.len())
        .filter(|&i| (inputs.keeps)(&inputs.previous[i].nevra))
        .collect();
    let previous_eligible: Vec<&Nevra> = eligible
        .iter()
        .map(|&i| &inputs.previous[i].nevra)
        .collect();
    let picks = retention::plan(inputs.retention, inputs.upstream, &previous_eligible);
    drop(previous_eligible);
    let mut entries = Vec::with_capacity(picks.len());
    let mut retained = Vec::new();
    for pick in picks {
        match pick {
            Pick::Upstream(i) => {
                let u: &'a UpPkg = &inputs.upstream[i];
                let held = inputs.held.get(u.checksum_value());
                entries.push(Entry {
                    package: Package::Upstream(u),
                    source: if held.is_some() {
                        Source::Reuse
                    } else {
                        Source::Download
                    },
                    sha256: held.map(|h| h.sha256.clone()),
                    has_row: held.is_some_and(|h| h.has_row),
                });
            }
            Pick::Previous(k) => retained.push(eligible[k]),
        }
    }
    // Only when something is retained: for a mirror these sets would cost megabytes at
    // 100,000 packages for nothing.
    let taken: HashSet<&str> = if retained.is_empty() {
        HashSet::new()
    } else {
        entries.iter().map(Entry::href).collect()
    };
    let (kept, displaced): (Vec<usize>, Vec<usize>) = retained
        .into_iter()
        .partition(|&i| !taken.contains(inputs.previous[i].location_href.as_str()));
    drop(taken);
    for &i in &kept {
        let p: &'a VersionPackage = &inputs.previous[i];
        entries.push(Entry {
            package: Package::Previous(p),
            source: Source::Retain,
            sha256: Some(p.sha256.clone()),
            has_row: true,
        });
    }
    let regenerate = if inputs.filtered > 0 {
        Some(Regenerate::ArchitectureFilter)
    } else if inputs.excluded > 0 {
        Some(Regenerate::ContentFilter)
    } else if entries.len() - kept.len() < inputs.upstream.len() {
        Some(Regenerate::NotAllUpstream)
    } else if !kept.is_empty() {
        Some(Regenerate::Retained)
    } else {
        None
    };

    // Against the latest version, by (file, href): a file to download is known by its
    // checksum when upstream lists sha256 (the pool may lack a file latest has).
    let before: HashSet<(&str, &str)> = inputs
        .previous
        .iter()
        .map(|p| (p.sha256.as_str(), p.location_href.as_str()))
        .collect();
    // What of the latest version the new one keeps: at most all of it.
    let mut in_new: HashSet<(&str, &str)> = HashSet::with_capacity(before.len());
    let mut counts = Counts::default();
    for e in &entries {
        let sha = e.sha256.as_ref().map(Sha256::as_str).or_else(|| {
            let u = e.upstream_package()?;
            (u.checksum_kind() == ChecksumType::Sha256).then_some(u.checksum_value())
        });
        match sha {
            Some(sha) if before.contains(&(sha, e.href())) => {
                counts.unchanged += 1;
                in_new.insert((sha, e.href()));
            }
            _ => counts.added += 1,
        }
        match e.source {
            Source::Download => {
                counts.download += 1;
                counts.download_bytes += e.size();
            }
            Source::Reuse => counts.reuse += 1,
            Source::Retain => counts.retain += 1,
        }
    }
    let dropped: Vec<usize> = inputs
        .previous
        .iter()
        .enumerate()
        .filter(|(_, p)| !in_new.contains(&(p.sha256.as_str(), p.location_href.as_str())))
        .map(|(i, _)| i)
        .collect();
    counts.removed = dropped.len();
    counts.excluded = inputs.excluded;
    Plan {
        entries,
        dropped,
        displaced,
        regenerate,
        counts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chantal_common::config::{DeletedPackages, Policy};
    use chantal_common::rpm::evr::compare_evr;
    use chantal_common::rpm::{Checksum, PrimaryPackage};
    use proptest::prelude::*;

    /// A package file: its NEVRA and a content tag (a rebuild of one NEVRA is another file).
    #[derive(Debug, Clone, PartialEq, Eq, Hash)]
    struct File {
        nevra: Nevra,
        build: u8,
        /// Published under its bare name, as some vendors do: releases share one href.
        bare: bool,
    }

    impl File {
        fn sha(&self) -> String {
            let mut s = format!("{:x}", hash(&(self.nevra.to_string(), self.build)));
            while s.len() < 64 {
                s.push('0');
            }
            s
        }
        fn sha256(&self) -> Sha256 {
            Sha256::parse(&self.sha()).unwrap()
        }
        /// Real repositories name a file after its NEVRA.
        fn href(&self) -> String {
            if self.bare {
                format!("Packages/{}.rpm", self.nevra.name)
            } else {
                format!("Packages/{}.rpm", self.nevra)
            }
        }
        fn primary(&self) -> PrimaryPackage {
            PrimaryPackage {
                nevra: self.nevra.clone(),
                checksum: Checksum::new("sha256", &self.sha()).unwrap(),
                location_href: self.href(),
                location_base: None,
                size_package: 100 + u64::from(self.build),
                size_installed: None,
                size_archive: None,
                time_file: None,
                time_build: None,
                sourcerpm: None,
            }
        }
        fn version_package(&self) -> VersionPackage {
            VersionPackage {
                nevra: self.nevra.clone(),
                sha256: self.sha256(),
                location_href: self.href(),
            }
        }
    }

    fn hash<T: std::hash::Hash>(t: &T) -> u64 {
        use std::hash::{BuildHasher, BuildHasherDefault};
        BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(t)
    }

    fn nevra() -> impl Strategy<Value = Nevra> {
        (
            prop::sample::select(vec!["a", "b", "c"]),
            0i64..2,
            prop::sample::select(vec!["1.0", "1.1", "1.10", "2.0~rc1", "2.0", "10"]),
            prop::sample::select(vec!["1", "2"]),
            prop::sample::select(vec!["x86_64", "noarch"]),
        )
            .prop_map(|(n, e, v, r, a)| Nevra::new(n, e, v, r, a))
    }

    /// Distinct hrefs within one list, as a parsed upstream has (duplicates are dropped).
    fn files() -> impl Strategy<Value = Vec<File>> {
        prop::collection::vec((nevra(), 0u8..2, prop::bool::weighted(0.2)), 0..12).prop_map(|v| {
            let mut seen = HashSet::new();
            v.into_iter()
                .map(|(nevra, build, bare)| File { nevra, build, bare })
                .filter(|f| seen.insert(f.href()))
                .collect()
        })
    }

    fn retention() -> impl Strategy<Value = Retention> {
        (
            prop::sample::select(vec![
                Policy::Mirror,
                Policy::NewestOnly,
                Policy::KeepAll,
                Policy::KeepLast,
            ]),
            prop::sample::select(vec![DeletedPackages::Remove, DeletedPackages::Keep]),
            1u32..4,
        )
            .prop_map(|(policy, deleted_packages, n)| Retention {
                policy,
                deleted_packages,
                keep_last: (policy == Policy::KeepLast).then_some(n),
                keep_versions_for: Default::default(),
            })
    }

    #[derive(Debug)]
    struct Case {
        upstream: Vec<File>,
        previous: Vec<File>,
        held: HashMap<String, Held>,
        retention: Retention,
        filtered: usize,
        /// A name the filters now exclude (the parser drops it from upstream; the plan must
        /// not retain it from the latest version).
        excluded_name: Option<String>,
    }

    impl Case {
        fn keeps(&self, n: &Nevra) -> bool {
            self.excluded_name.as_deref() != Some(n.name.as_str())
        }
    }

    fn case() -> impl Strategy<Value = Case> {
        (
            files(),
            files(),
            retention(),
            0usize..2,
            any::<u64>(),
            prop::option::weighted(0.3, prop::sample::select(vec!["a", "b"])),
        )
            .prop_map(
                |(upstream, previous, retention, filtered, seed, excluded_name)| {
                    let excluded_name = excluded_name.map(str::to_string);
                    // As the parser would: upstream without the excluded name.
                    let upstream: Vec<File> = upstream
                        .into_iter()
                        .filter(|f| excluded_name.as_deref() != Some(f.nevra.name.as_str()))
                        .collect();
                    // The pool holds what the latest version has, and some of the rest.
                    let held = upstream
                        .iter()
                        .chain(&previous)
                        .filter(|f| previous.contains(f) || hash(&(seed, f.sha())) % 2 == 0)
                        .map(|f| {
                            (
                                f.sha(),
                                Held {
                                    sha256: f.sha256(),
                                    has_row: previous.contains(f),
                                },
                            )
                        })
                        .collect();
                    Case {
                        upstream,
                        previous,
                        held,
                        retention,
                        filtered,
                        excluded_name,
                    }
                },
            )
    }

    /// The parsed inputs a case stands for, which the plan borrows.
    struct Built {
        primaries: Vec<UpPkg>,
        previous: Vec<VersionPackage>,
    }

    impl Built {
        fn new(c: &Case) -> Built {
            Built {
                primaries: c
                    .upstream
                    .iter()
                    .map(|f| UpPkg::new(&f.primary()).unwrap())
                    .collect(),
                previous: c.previous.iter().map(File::version_package).collect(),
            }
        }

        /// The index in the case's upstream of an entry's package (none when retained).
        fn index(&self, e: &Entry<'_>) -> Option<usize> {
            let u = e.upstream_package()?;
            self.primaries.iter().position(|p| std::ptr::eq(p, u))
        }

        fn plan<'a>(&'a self, c: &Case) -> Plan<'a> {
            let upstream = &self.primaries;
            let keeps = |n: &Nevra| c.keeps(n);
            plan(&Inputs {
                upstream,
                filtered: c.filtered,
                excluded: usize::from(c.excluded_name.is_some()),
                keeps: &keeps,
                previous: &self.previous,
                retention: c.retention,
                held: &c.held,
            })
        }
    }

    /// The naive newest-only: for each name.arch, the upstream files whose EVR no other
    /// upstream file of that name.arch beats.
    fn naive_newest(upstream: &[File]) -> HashSet<Nevra> {
        let mut out = HashSet::new();
        for f in upstream {
            let beaten = upstream.iter().any(|g| {
                g.nevra.name_arch() == f.nevra.name_arch()
                    && compare_evr(g.nevra.evr(), f.nevra.evr()).is_gt()
            });
            if !beaten {
                out.insert(f.nevra.clone());
            }
        }
        out
    }

    /// The naive keep-last: among upstream's packages and the latest version's (those still
    /// passing the filters; with remove, only of name.archs upstream still has), those whose
    /// EVR is among the `n` highest distinct EVRs of their name.arch. A retained file gives
    /// way to a taken upstream file at its href, and to upstream's file of its NEVRA.
    fn naive_keep_last(c: &Case, n: usize) -> HashSet<Nevra> {
        let names: HashSet<(&str, &str)> = c.upstream.iter().map(|f| f.nevra.name_arch()).collect();
        let keep_vanished = c.retention.deleted_packages == DeletedPackages::Keep;
        let candidates: Vec<&File> = c
            .upstream
            .iter()
            .chain(c.previous.iter().filter(|f| {
                c.keeps(&f.nevra) && (keep_vanished || names.contains(&f.nevra.name_arch()))
            }))
            .collect();
        let top = |f: &File| {
            let mut higher: Vec<&Nevra> = candidates
                .iter()
                .map(|g| &g.nevra)
                .filter(|g| {
                    g.name_arch() == f.nevra.name_arch()
                        && compare_evr(g.evr(), f.nevra.evr()).is_gt()
                })
                .collect();
            higher.sort_by(|a, b| compare_evr(a.evr(), b.evr()));
            higher.dedup_by(|a, b| compare_evr(a.evr(), b.evr()).is_eq());
            higher.len() < n
        };
        let taken: Vec<&File> = c.upstream.iter().filter(|f| top(f)).collect();
        let mut out: HashSet<Nevra> = taken.iter().map(|f| f.nevra.clone()).collect();
        for f in c
            .previous
            .iter()
            .filter(|f| candidates.contains(f) && top(f))
        {
            let href_taken = taken.iter().any(|u| u.href() == f.href());
            let upstream_has = c.upstream.iter().any(|u| u.nevra == f.nevra);
            if !href_taken && !upstream_has {
                out.insert(f.nevra.clone());
            }
        }
        out
    }

    /// A plan holds one entry per package: at 100,000 packages, each 8 bytes is 0.8 MB of
    /// the metadata phase's peak.
    #[test]
    fn an_entry_is_small() {
        assert_eq!(std::mem::size_of::<Entry<'_>>(), 40);
    }

    proptest! {
        #[test]
        fn every_package_is_downloaded_or_reused_or_retained_as_the_pool_says(c in case()) {
            let b = Built::new(&c);
            let p = b.plan(&c);
            for e in &p.entries {
                match e.source {
                    Source::Download => {
                        let u = &c.upstream[b.index(e).unwrap()];
                        prop_assert!(!c.held.contains_key(&u.sha()));
                        prop_assert!(e.sha256.is_none());
                    }
                    Source::Reuse => {
                        let u = &c.upstream[b.index(e).unwrap()];
                        prop_assert_eq!(e.sha256.as_ref(), Some(&c.held[&u.sha()].sha256));
                    }
                    Source::Retain => {
                        prop_assert!(e.upstream_package().is_none());
                        prop_assert!(c.previous.iter().any(|f| Some(f.sha256()) == e.sha256));
                    }
                }
            }
            prop_assert_eq!(
                p.counts.download + p.counts.reuse + p.counts.retain,
                p.entries.len()
            );
            prop_assert_eq!(p.counts.added + p.counts.unchanged, p.entries.len());
            prop_assert_eq!(p.counts.unchanged + p.counts.removed, c.previous.len());
        }

        #[test]
        fn hrefs_are_unique(c in case()) {
            let b = Built::new(&c);
            let p = b.plan(&c);
            let hrefs: HashSet<&str> = p.entries.iter().map(Entry::href).collect();
            prop_assert_eq!(hrefs.len(), p.entries.len());
        }

        #[test]
        fn upstreams_repodata_is_kept_exactly_when_the_set_is_upstreams(c in case()) {
            let b = Built::new(&c);
            let p = b.plan(&c);
            let from_upstream: HashSet<usize> = p.entries.iter().filter_map(|e| b.index(e)).collect();
            let exact = c.filtered == 0
                && c.excluded_name.is_none()
                && from_upstream.len() == c.upstream.len()
                && p.entries.len() == c.upstream.len();
            prop_assert_eq!(p.regenerate.is_none(), exact);
        }

        #[test]
        fn each_policy_takes_what_its_model_takes(c in case()) {
            let b = Built::new(&c);
            let p = b.plan(&c);
            let taken: HashSet<Nevra> = p.entries.iter().filter(|e| e.upstream_package().is_some())
                .map(|e| e.nevra().to_nevra()).collect();
            let all: HashSet<Nevra> = c.upstream.iter().map(|f| f.nevra.clone()).collect();
            let new: HashSet<(Sha256, String)> = p.entries.iter()
                .map(|e| (e.sha256.clone().unwrap_or_else(|| c.upstream[b.index(e).unwrap()].sha256()), e.href().to_string()))
                .collect();
            // Nothing the filters exclude is in the new version, from upstream or retained.
            for e in &p.entries {
                prop_assert!(c.keeps(&e.nevra().to_nevra()), "{} passed the filters", e.nevra());
            }
            match c.retention.policy {
                // mirror = upstream after the architecture filter
                Policy::Mirror | Policy::KeepAll => prop_assert_eq!(&taken, &all),
                // newest-only keeps exactly the highest EVR per name.arch
                Policy::NewestOnly => prop_assert_eq!(&taken, &naive_newest(&c.upstream)),
                Policy::KeepLast => {
                    let n = c.retention.keep_last.unwrap() as usize;
                    let everything: HashSet<Nevra> = p.entries.iter().map(|e| e.nevra().to_nevra()).collect();
                    prop_assert_eq!(everything, naive_keep_last(&c, n));
                }
            }
            if c.retention.policy == Policy::KeepLast {
                return Ok(());
            }
            let keeps_dropped = c.retention.policy == Policy::KeepAll
                || c.retention.deleted_packages == DeletedPackages::Keep;
            let hrefs_upstream: HashSet<String> = c.upstream.iter().map(File::href).collect();
            for f in &c.previous {
                let displaced = hrefs_upstream.contains(&f.href()) && !c.upstream.contains(f);
                let in_new = new.contains(&(f.sha256(), f.href()));
                let vanished = !all.contains(&f.nevra);
                if !c.keeps(&f.nevra) {
                    prop_assert!(!in_new, "{} is filtered out and stayed", f.nevra);
                    continue;
                }
                // keep-all never drops a package (but one whose href upstream now uses for
                // another; a package upstream moved or rebuilt is kept as upstream has it)
                if c.retention.policy == Policy::KeepAll && !displaced {
                    prop_assert!(p.entries.iter().any(|e| e.nevra() == f.nevra.borrowed()), "keep-all dropped {}", f.nevra);
                }
                // deleted_packages: keep keeps what vanished
                if keeps_dropped && vanished && !displaced && c.retention.policy != Policy::NewestOnly {
                    prop_assert!(in_new, "{} vanished and was not kept", f.nevra);
                }
                // remove: nothing upstream dropped stays
                if !keeps_dropped && vanished {
                    prop_assert!(!in_new, "{} vanished and stayed", f.nevra);
                }
            }
            // newest-only with keep: of each name.arch upstream no longer has at all, one file
            // of the highest EVR the latest version held, unless upstream now uses its href.
            if c.retention.policy == Policy::NewestOnly && keeps_dropped {
                let upstream_names: HashSet<(&str, &str)> =
                    c.upstream.iter().map(|u| u.nevra.name_arch()).collect();
                let gone: HashSet<(&str, &str)> = c.previous.iter().filter(|f| c.keeps(&f.nevra)).map(|f| f.nevra.name_arch())
                    .filter(|na| !upstream_names.contains(na)).collect();
                for na in gone {
                    let mine: Vec<&File> = c.previous.iter().filter(|f| f.nevra.name_arch() == na).collect();
                    let top = mine.iter().map(|f| &f.nevra)
                        .max_by(|a, b| compare_evr(a.evr(), b.evr())).unwrap();
                    let kept: Vec<&Entry> = p.entries.iter()
                        .filter(|e| e.source == Source::Retain && e.nevra().name_arch() == na).collect();
                    prop_assert!(kept.len() <= 1, "{:?} kept {} times", na, kept.len());
                    match kept.first() {
                        Some(e) => prop_assert!(compare_evr(e.nevra().evr(), top.evr()).is_eq()),
                        None => prop_assert!(mine.iter().any(|f| compare_evr(f.nevra.evr(), top.evr()).is_eq()
                            && hrefs_upstream.contains(&f.href())), "{:?} vanished and was not kept", na),
                    }
                }
            }
        }
    }

    #[test]
    fn a_retained_package_gives_way_to_a_new_file_at_its_href() {
        // Some vendors publish each release under one file name.
        let old = File {
            nevra: Nevra::parse("a-1.0-1.noarch").unwrap(),
            build: 0,
            bare: true,
        };
        let new = File {
            nevra: Nevra::parse("a-2.0-1.noarch").unwrap(),
            build: 0,
            bare: true,
        };
        let upstream = [UpPkg::new(&new.primary()).unwrap()];
        let previous = [old.version_package()];
        let p = plan(&Inputs {
            upstream: &upstream,
            filtered: 0,
            excluded: 0,
            keeps: &|_| true,
            previous: &previous,
            retention: Retention {
                policy: Policy::KeepAll,
                deleted_packages: DeletedPackages::Remove,
                keep_last: None,
                keep_versions_for: Default::default(),
            },
            held: &HashMap::new(),
        });
        assert_eq!(p.entries.len(), 1);
        assert_eq!(p.entries[0].source, Source::Download);
        assert_eq!(p.entries[0].nevra(), new.nevra.borrowed());
        assert_eq!(p.displaced, vec![0]);
        assert_eq!(p.dropped, vec![0]);
        assert_eq!(p.regenerate, None);
        assert_eq!(
            p.counts,
            Counts {
                added: 1,
                removed: 1,
                download: 1,
                download_bytes: 100,
                ..Counts::default()
            }
        );
    }
}
