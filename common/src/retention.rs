//! Retention: which packages a repository's next version holds, from what upstream lists now
//! and what the latest version held. A pure function, so every policy is tested on its own.
//!
//! - `mirror`: upstream's set (after the architecture filter).
//! - `newest-only`: the newest EVR of each name.arch upstream has now.
//! - `keep-all`: everything ever seen accumulates.
//! - `keep-last` N: the N highest EVRs of each name.arch upstream has had (what it lists now
//!   and what the latest version kept); with `deleted_packages: remove`, a name.arch upstream
//!   no longer has at all goes.
//! - `deleted_packages: keep`: what upstream dropped stays (for newest-only: the last newest
//!   version of a name.arch that vanished upstream).

use std::collections::{HashMap, HashSet};

use crate::config::{DeletedPackages, Policy, Retention};
use crate::rpm::evr::compare_evr;
use crate::rpm::{HasNevra, NevraRef};

/// Where a package of the next version comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pick {
    /// Index into the upstream list.
    Upstream(usize),
    /// Index into the previous version's list (a package upstream no longer has).
    Previous(usize),
}

/// The next version's packages, in upstream order, then previous order. Any package record
/// will do as input, so that no list of 100,000 identities is made for it.
pub fn plan<U: HasNevra, P: HasNevra>(
    retention: Retention,
    upstream: &[U],
    previous: &[P],
) -> Vec<Pick> {
    let (policy, deleted) = (retention.policy, retention.deleted_packages);
    if policy == Policy::KeepLast {
        return keep_last(
            retention.keep_last.unwrap_or(1) as usize,
            deleted,
            upstream,
            previous,
        );
    }
    let mut picks: Vec<Pick> = match policy {
        Policy::Mirror | Policy::KeepAll | Policy::KeepLast => {
            (0..upstream.len()).map(Pick::Upstream).collect()
        }
        Policy::NewestOnly => newest(upstream).into_iter().map(Pick::Upstream).collect(),
    };
    let keep_dropped = policy == Policy::KeepAll || deleted == DeletedPackages::Keep;
    if keep_dropped {
        let upstream_nevras: HashSet<NevraRef> = upstream.iter().map(U::nevra_ref).collect();
        let gone = previous
            .iter()
            .map(P::nevra_ref)
            .enumerate()
            .filter(|(_, p)| !upstream_nevras.contains(p));
        match policy {
            // keep-all keeps every version; mirror/keep keeps what upstream dropped.
            Policy::KeepAll | Policy::Mirror | Policy::KeepLast => {
                picks.extend(gone.map(|(i, _)| Pick::Previous(i)))
            }
            // newest-only/keep: only name.archs upstream no longer has at all, and of those
            // only the newest the previous version held.
            Policy::NewestOnly => {
                let upstream_names: HashSet<(&str, &str)> =
                    upstream.iter().map(|u| u.nevra_ref().name_arch()).collect();
                let vanished: Vec<usize> = gone
                    .filter(|(_, p)| !upstream_names.contains(&p.name_arch()))
                    .map(|(i, _)| i)
                    .collect();
                let subset: Vec<NevraRef> =
                    vanished.iter().map(|&i| previous[i].nevra_ref()).collect();
                picks.extend(
                    newest(&subset)
                        .into_iter()
                        .map(|k| Pick::Previous(vanished[k])),
                );
            }
        }
    }
    picks.sort();
    picks.dedup();
    picks
}

/// keep-last: of upstream's packages and the previous version's (one file per NEVRA,
/// upstream's first), the `n` highest EVRs of each name.arch.
fn keep_last<U: HasNevra, P: HasNevra>(
    n: usize,
    deleted: DeletedPackages,
    upstream: &[U],
    previous: &[P],
) -> Vec<Pick> {
    let upstream_nevras: HashSet<NevraRef> = upstream.iter().map(U::nevra_ref).collect();
    let upstream_names: HashSet<(&str, &str)> =
        upstream_nevras.iter().map(NevraRef::name_arch).collect();
    let mut by_name: HashMap<(&str, &str), Vec<(Pick, NevraRef)>> = HashMap::new();
    for (i, u) in upstream.iter().map(U::nevra_ref).enumerate() {
        by_name
            .entry(u.name_arch())
            .or_default()
            .push((Pick::Upstream(i), u));
    }
    for (i, p) in previous.iter().map(P::nevra_ref).enumerate() {
        let vanished = !upstream_names.contains(&p.name_arch());
        if upstream_nevras.contains(&p) || (vanished && deleted == DeletedPackages::Remove) {
            continue;
        }
        by_name
            .entry(p.name_arch())
            .or_default()
            .push((Pick::Previous(i), p));
    }
    let mut picks = Vec::new();
    for (_, mut versions) in by_name {
        // Highest EVR first; among equal EVRs (rebuilds under one NEVRA), upstream's first.
        versions.sort_by(|a, b| compare_evr(b.1.evr(), a.1.evr()).then(a.0.cmp(&b.0)));
        let mut distinct = 0;
        let mut last: Option<NevraRef> = None;
        for (pick, nevra) in versions {
            if last.is_none_or(|l| compare_evr(l.evr(), nevra.evr()).is_ne()) {
                distinct += 1;
                last = Some(nevra);
            }
            if distinct > n {
                break;
            }
            picks.push(pick);
        }
    }
    picks.sort();
    picks.dedup();
    picks
}

/// Indices of the newest EVR per name.arch (the first listed wins a tie).
fn newest<T: HasNevra>(items: &[T]) -> Vec<usize> {
    let mut best: HashMap<(&str, &str), usize> = HashMap::new();
    for (i, it) in items.iter().map(T::nevra_ref).enumerate() {
        best.entry(it.name_arch())
            .and_modify(|b| {
                if compare_evr(it.evr(), items[*b].nevra_ref().evr()).is_gt() {
                    *b = i;
                }
            })
            .or_insert(i);
    }
    let mut v: Vec<usize> = best.into_values().collect();
    v.sort_unstable();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpm::Nevra;

    fn p(s: &str) -> Nevra {
        Nevra::parse(s).unwrap()
    }

    /// Runs the policy over upstream snapshots v1, v2, ... and returns each version's set.
    fn sequence(policy: Policy, deleted: DeletedPackages, steps: &[&[&str]]) -> Vec<Vec<String>> {
        sequence_with(
            Retention {
                policy,
                deleted_packages: deleted,
                keep_last: None,
                keep_versions_for: Default::default(),
            },
            steps,
        )
    }

    fn sequence_with(retention: Retention, steps: &[&[&str]]) -> Vec<Vec<String>> {
        let mut latest: Vec<String> = Vec::new();
        let mut out = Vec::new();
        for step in steps {
            let up: Vec<Nevra> = step.iter().map(|s| p(s)).collect();
            let prev_owned = latest.clone();
            let prev: Vec<Nevra> = prev_owned.iter().map(|s| p(s)).collect();
            let up: Vec<NevraRef> = up.iter().map(Nevra::borrowed).collect();
            let prev: Vec<NevraRef> = prev.iter().map(Nevra::borrowed).collect();
            let mut next: Vec<String> = plan(retention, &up, &prev)
                .into_iter()
                .map(|pick| match pick {
                    Pick::Upstream(i) => step[i].to_string(),
                    Pick::Previous(i) => prev_owned[i].clone(),
                })
                .collect();
            next.sort();
            latest = next.clone();
            out.push(next);
        }
        out
    }

    const V1: &[&str] = &["a-1.0-1.noarch", "b-1.0-1.x86_64", "c-2.0~rc1-1.noarch"];
    const V2: &[&str] = &[
        "a-1.0-1.noarch",
        "a-1.1-1.noarch",
        "b-1.0-1.x86_64",
        "c-2.0-1.noarch",
        "c-2.0~rc1-1.noarch",
    ];
    // b vanished; a's epoch bump makes 0.9 newest; c keeps only its rc.
    const V3: &[&str] = &["a-1:0.9-1.noarch", "a-1.1-1.noarch", "c-2.0~rc1-1.noarch"];

    fn s(v: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = v.iter().map(|x| x.to_string()).collect();
        v.sort();
        v
    }

    #[test]
    fn mirror_remove_is_upstream() {
        let r = sequence(Policy::Mirror, DeletedPackages::Remove, &[V1, V2, V3]);
        assert_eq!(r, vec![s(V1), s(V2), s(V3)]);
    }

    #[test]
    fn mirror_keep_keeps_what_upstream_dropped() {
        let r = sequence(Policy::Mirror, DeletedPackages::Keep, &[V1, V2, V3]);
        assert_eq!(r[1], s(V2));
        assert_eq!(
            r[2],
            s(&[
                "a-1.0-1.noarch",
                "a-1:0.9-1.noarch",
                "a-1.1-1.noarch",
                "b-1.0-1.x86_64",
                "c-2.0-1.noarch",
                "c-2.0~rc1-1.noarch",
            ])
        );
    }

    #[test]
    fn newest_only_remove() {
        let r = sequence(Policy::NewestOnly, DeletedPackages::Remove, &[V1, V2, V3]);
        assert_eq!(r[0], s(V1));
        assert_eq!(
            r[1],
            s(&["a-1.1-1.noarch", "b-1.0-1.x86_64", "c-2.0-1.noarch"]),
            "2.0 beats 2.0~rc1"
        );
        assert_eq!(
            r[2],
            s(&["a-1:0.9-1.noarch", "c-2.0~rc1-1.noarch"]),
            "the epoch wins; upstream's rc is all it has now"
        );
    }

    #[test]
    fn newest_only_keep_keeps_the_last_newest_of_a_vanished_name() {
        let r = sequence(Policy::NewestOnly, DeletedPackages::Keep, &[V1, V2, V3]);
        assert_eq!(
            r[2],
            s(&["a-1:0.9-1.noarch", "b-1.0-1.x86_64", "c-2.0~rc1-1.noarch"]),
            "b stays at its last newest; c follows upstream back to the rc"
        );
    }

    #[test]
    fn keep_all_accumulates() {
        for deleted in [DeletedPackages::Remove, DeletedPackages::Keep] {
            let r = sequence(Policy::KeepAll, deleted, &[V1, V2, V3]);
            assert_eq!(r[1], s(V2));
            assert_eq!(
                r[2],
                s(&[
                    "a-1.0-1.noarch",
                    "a-1:0.9-1.noarch",
                    "a-1.1-1.noarch",
                    "b-1.0-1.x86_64",
                    "c-2.0-1.noarch",
                    "c-2.0~rc1-1.noarch",
                ])
            );
        }
    }

    #[test]
    fn architectures_are_separate_streams() {
        let up = [
            p("t-2.0-1.x86_64"),
            p("t-1.0-1.aarch64"),
            p("t-1.0-1.x86_64"),
        ];
        let up: Vec<NevraRef> = up.iter().map(Nevra::borrowed).collect();
        let newest_only = Retention {
            policy: Policy::NewestOnly,
            ..Default::default()
        };
        let picks = plan::<_, Nevra>(newest_only, &up, &[]);
        assert_eq!(picks, vec![Pick::Upstream(0), Pick::Upstream(1)]);
    }

    fn keep_last(n: u32, deleted: DeletedPackages) -> Retention {
        Retention {
            policy: Policy::KeepLast,
            deleted_packages: deleted,
            keep_last: Some(n),
            keep_versions_for: Default::default(),
        }
    }

    #[test]
    fn keep_last_keeps_the_highest_evrs_upstream_has_had() {
        let r = sequence_with(keep_last(2, DeletedPackages::Remove), &[V1, V2, V3]);
        assert_eq!(r[0], s(V1));
        assert_eq!(
            r[1],
            s(&[
                "a-1.0-1.noarch",
                "a-1.1-1.noarch",
                "b-1.0-1.x86_64",
                "c-2.0-1.noarch",
                "c-2.0~rc1-1.noarch",
            ])
        );
        // a: the epoch bump and 1.1 beat 1.0; b vanished upstream (remove); c keeps 2.0,
        // which upstream dropped, above the rc it lists again.
        assert_eq!(
            r[2],
            s(&[
                "a-1:0.9-1.noarch",
                "a-1.1-1.noarch",
                "c-2.0-1.noarch",
                "c-2.0~rc1-1.noarch",
            ])
        );
        let one = sequence_with(keep_last(1, DeletedPackages::Keep), &[V1, V2, V3]);
        assert_eq!(
            one[2],
            s(&["a-1:0.9-1.noarch", "b-1.0-1.x86_64", "c-2.0-1.noarch"]),
            "keep: b stays; 2.0 stays the highest c upstream has had"
        );
    }

    #[test]
    fn keep_last_large_enough_is_keep_all_for_names_upstream_has() {
        let r = sequence_with(keep_last(10, DeletedPackages::Keep), &[V1, V2, V3]);
        let all = sequence(Policy::KeepAll, DeletedPackages::Keep, &[V1, V2, V3]);
        assert_eq!(r, all);
    }
}
