//! The difference between two versions of a repository, per name.arch: packages added,
//! removed, and updated (old EVR → new EVR), ordered by rpm's version comparison.

use std::collections::BTreeMap;

use crate::catalogue::VersionPackage;
use crate::rpm::evr::compare_evr;

/// `[epoch:]version-release`.
pub fn evr(p: &VersionPackage) -> String {
    if p.nevra.epoch == 0 {
        format!("{}-{}", p.nevra.version, p.nevra.release)
    } else {
        format!("{}:{}-{}", p.nevra.epoch, p.nevra.version, p.nevra.release)
    }
}

/// One name.arch whose single EVR changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    pub name: String,
    pub arch: String,
    pub from: String,
    pub to: String,
    /// True when the new EVR is older (a rollback upstream).
    pub downgrade: bool,
}

/// What changed from one version to another.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    /// NEVRAs only in the newer version (beyond those counted as updates).
    pub added: Vec<String>,
    /// NEVRAs only in the older version (beyond those counted as updates).
    pub removed: Vec<String>,
    pub updated: Vec<Update>,
}

/// Compares two versions' package lists.
pub fn diff(from: &[VersionPackage], to: &[VersionPackage]) -> Diff {
    type Key = (String, String);
    let mut groups: BTreeMap<Key, (Vec<&VersionPackage>, Vec<&VersionPackage>)> = BTreeMap::new();
    for p in from {
        groups
            .entry((p.nevra.name.clone(), p.nevra.arch.clone()))
            .or_default()
            .0
            .push(p);
    }
    for p in to {
        groups
            .entry((p.nevra.name.clone(), p.nevra.arch.clone()))
            .or_default()
            .1
            .push(p);
    }
    let key = |p: &&VersionPackage| {
        (
            p.nevra.epoch,
            p.nevra.version.clone(),
            p.nevra.release.clone(),
        )
    };
    let mut out = Diff::default();
    for ((name, arch), (old, new)) in groups {
        let gone: Vec<&VersionPackage> = old
            .iter()
            .filter(|o| !new.iter().any(|n| key(n) == key(o)))
            .copied()
            .collect();
        let came: Vec<&VersionPackage> = new
            .iter()
            .filter(|n| !old.iter().any(|o| key(o) == key(n)))
            .copied()
            .collect();
        if let ([o], [n]) = (gone.as_slice(), came.as_slice()) {
            out.updated.push(Update {
                name,
                arch,
                from: evr(o),
                to: evr(n),
                downgrade: compare_evr(
                    (n.nevra.epoch, &n.nevra.version, &n.nevra.release),
                    (o.nevra.epoch, &o.nevra.version, &o.nevra.release),
                )
                .is_lt(),
            });
            continue;
        }
        out.removed.extend(gone.iter().map(|p| p.nevra.to_string()));
        out.added.extend(came.iter().map(|p| p.nevra.to_string()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vp(name: &str, epoch: i64, v: &str, r: &str, arch: &str) -> VersionPackage {
        VersionPackage {
            nevra: crate::rpm::Nevra::new(name, epoch, v, r, arch),
            sha256: crate::Sha256::digest(b""),
            location_href: String::new(),
        }
    }

    #[test]
    fn added_removed_updated_per_name_arch() {
        let from = vec![
            vp("a", 0, "1.0", "1", "noarch"),
            vp("b", 0, "1.0", "1", "x86_64"),
            vp("c", 0, "2.0", "1", "noarch"),
            vp("k", 0, "5.14", "1", "x86_64"),
            vp("same", 0, "1", "1", "noarch"),
        ];
        let to = vec![
            vp("a", 0, "1.1", "1", "noarch"),
            vp("c", 0, "2.0~rc1", "1", "noarch"),
            vp("d", 1, "0.1", "1", "noarch"),
            vp("k", 0, "5.14", "1", "x86_64"),
            vp("k", 0, "5.15", "1", "x86_64"),
            vp("same", 0, "1", "1", "noarch"),
        ];
        let d = diff(&from, &to);
        assert_eq!(d.added, vec!["d-1:0.1-1.noarch", "k-5.15-1.x86_64"]);
        assert_eq!(d.removed, vec!["b-1.0-1.x86_64"]);
        assert_eq!(
            d.updated,
            vec![
                Update {
                    name: "a".into(),
                    arch: "noarch".into(),
                    from: "1.0-1".into(),
                    to: "1.1-1".into(),
                    downgrade: false
                },
                Update {
                    name: "c".into(),
                    arch: "noarch".into(),
                    from: "2.0-1".into(),
                    to: "2.0~rc1-1".into(),
                    downgrade: true
                },
            ]
        );
        assert_eq!(diff(&to, &to), Diff::default());
    }
}
