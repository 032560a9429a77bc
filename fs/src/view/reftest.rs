//! A reference model of the view, in the spirit of mountpoint-s3's reftests: random sequences
//! of syncs, snapshots, snapshot deletes, cache evictions, refreshes and time passing, each
//! followed by checks against a naive model of what the mount must show:
//!
//! - inode numbers never change: a fixed directory, and a path of a version in its context
//!   (under `latest/`, or under a snapshot), always has the number it first had;
//! - a snapshot's tree is exactly its version's files, whatever happened since;
//! - `latest/` lists exactly the latest version, and under it every file of any version that
//!   was latest within the grace period still resolves (a client that read that version's
//!   repomd.xml gets what it names), unless another of them has a directory by that name;
//!   a file of no such version does not;
//! - `env/<env>/` does the same for the snapshots an environment pointed at: it lists the
//!   snapshot it points at now, and resolves the files of those it pointed at within the grace
//!   period; an unset environment is gone;
//! - a snapshot's tree (and `versions/<N>/`) answers no name outside its version;
//! - `versions/` lists exactly the versions cleanup kept, each its version's files, and `at/`
//!   lists their commit instants, each naming the version latest then.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use proptest::prelude::*;

use super::tests::{leaf, Fixture};
use super::*;

const REPOS: [&str; 2] = ["r", "q"];
const SNAPSHOTS: [&str; 3] = ["s1", "s2", "s3"];
const ENVS: [&str; 2] = ["test", "prod"];
/// Paths a version may hold; "x" and "x/d.rpm" never together (the sync refuses that), but
/// in successive versions, so a lookup under `latest/` may cross a file that was a directory.
const UNIVERSE: [&str; 6] = [
    "Packages/a.rpm",
    "Packages/b.rpm",
    "Packages/sub/c.rpm",
    "x",
    "x/d.rpm",
    "e.rpm",
];
const REPOMD: &str = "repodata/repomd.xml";
const GRACE_SECS: u64 = 600;

#[derive(Debug, Clone)]
enum Op {
    /// A sync committing a new version with these paths of [`UNIVERSE`].
    Sync(usize, Vec<bool>),
    Snapshot(usize, usize),
    DeleteSnapshot(usize, usize),
    /// `env promote`: (repository, environment, snapshot).
    Promote(usize, usize, usize),
    /// `env unset`: (repository, environment).
    Unset(usize, usize),
    /// `db cleanup` in a repository: versions neither latest, nor latest within the grace
    /// period, nor a snapshot's go; then a refresh.
    Cleanup(usize),
    Evict,
    Refresh,
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..REPOS.len(), prop::collection::vec(any::<bool>(), UNIVERSE.len()))
            .prop_map(|(r, v)| Op::Sync(r, v)),
        2 => (0..REPOS.len(), 0..SNAPSHOTS.len()).prop_map(|(r, s)| Op::Snapshot(r, s)),
        1 => (0..REPOS.len(), 0..SNAPSHOTS.len()).prop_map(|(r, s)| Op::DeleteSnapshot(r, s)),
        2 => (0..REPOS.len(), 0..ENVS.len(), 0..SNAPSHOTS.len())
            .prop_map(|(r, e, s)| Op::Promote(r, e, s)),
        1 => (0..REPOS.len(), 0..ENVS.len()).prop_map(|(r, e)| Op::Unset(r, e)),
        1 => (0..REPOS.len()).prop_map(Op::Cleanup),
        1 => Just(Op::Evict),
        4 => Just(Op::Refresh),
        2 => (0u64..400).prop_map(Op::Advance),
    ]
}

/// A path's size: the same bytes at the same href in every version, as package files are;
/// repomd.xml differs per version.
fn size_of(path: &str, version: i64) -> u64 {
    if path == REPOMD {
        1000 + version as u64
    } else {
        10 + path.len() as u64
    }
}

#[derive(Default)]
struct Model {
    /// Each repository's versions (number = index + 1): its paths.
    versions: BTreeMap<&'static str, Vec<BTreeSet<String>>>,
    /// What the source holds now.
    snapshots: BTreeMap<(&'static str, &'static str), i64>,
    /// What the view was last shown (by a refresh): latest per repository, and snapshots.
    seen_latest: BTreeMap<&'static str, i64>,
    seen_snapshots: BTreeMap<(&'static str, &'static str), i64>,
    /// Where environments point in the source: (repository, environment) -> snapshot.
    envs: BTreeMap<(&'static str, &'static str), &'static str>,
    /// ... and the versions the view was last shown.
    seen_envs: BTreeMap<(&'static str, &'static str), i64>,
    /// Versions that stopped being latest, with the model time until which they are served.
    retiring: Vec<(&'static str, i64, u64)>,
    /// The same for environments: (repository, environment, version, until).
    env_retiring: Vec<(&'static str, &'static str, i64, u64)>,
    /// Versions cleanup removed.
    removed: BTreeSet<(&'static str, i64)>,
    /// When each version stopped being latest in the source (model ms): the catalogue stamps
    /// that at the commit, and cleanup keeps it for the grace period.
    retired_at: BTreeMap<(&'static str, i64), u64>,
    now_ms: u64,
    /// The inode each (context path) was first given.
    inodes: HashMap<String, u64>,
}

impl Model {
    fn latest(&self, repo: &str) -> Option<i64> {
        self.versions
            .get(repo)
            .map(|v| v.len() as i64)
            .filter(|n| *n > 0)
    }

    fn files(&self, repo: &str, version: i64) -> &BTreeSet<String> {
        &self.versions[repo][usize::try_from(version - 1).unwrap()]
    }

    /// Versions whose files `latest/` must still resolve.
    fn served_under_latest(&self, repo: &str) -> Vec<i64> {
        let mut v: Vec<i64> = self.seen_latest.get(repo).copied().into_iter().collect();
        v.extend(
            self.retiring
                .iter()
                .filter(|(r, _, until)| *r == repo && *until > self.now_ms)
                .map(|(_, v, _)| *v),
        );
        // A version cleanup removed is gone (the daemon, which hears of a move within a
        // second, never sees cleanup take one it still serves; the model may refresh later).
        v.retain(|v| !self.removed(repo, *v));
        v
    }

    /// Whether cleanup removed the version.
    fn removed(&self, repo: &str, version: i64) -> bool {
        self.removed
            .iter()
            .any(|(r, v)| *r == repo && *v == version)
    }

    /// Versions whose files `env/<env>/` must still resolve.
    fn served_under_env(&self, repo: &str, env: &str) -> Vec<i64> {
        let mut v: Vec<i64> = self
            .seen_envs
            .get(&(repo, env))
            .copied()
            .into_iter()
            .collect();
        v.extend(
            self.env_retiring
                .iter()
                .filter(|(r, e, _, until)| *r == repo && *e == env && *until > self.now_ms)
                .map(|(_, _, v, _)| *v),
        );
        // What cleanup removed is no longer served (it keeps only latest's recent versions).
        v.retain(|v| !self.removed(repo, *v));
        v
    }
}

fn apply(f: &Fixture, m: &mut Model, op: &Op) {
    match op {
        Op::Sync(r, pick) => {
            let repo = REPOS[*r];
            let mut paths: BTreeSet<String> = UNIVERSE
                .iter()
                .zip(pick)
                .filter(|(_, p)| **p)
                .map(|(h, _)| h.to_string())
                .collect();
            if paths.contains("x") {
                paths.remove("x/d.rpm");
            }
            paths.insert(REPOMD.to_string());
            let versions = m.versions.entry(repo).or_default();
            versions.push(paths.clone());
            let v = versions.len() as i64;
            if v > 1 {
                m.retired_at.insert((repo, v - 1), m.now_ms);
            }
            f.source.publish(
                repo,
                v,
                paths
                    .iter()
                    .map(|p| {
                        let mut l = leaf(p, size_of(p, v));
                        l.1.pool_path = format!("{repo}/{v}/{p}");
                        l
                    })
                    .collect(),
            );
        }
        Op::Snapshot(r, s) => {
            let (repo, name) = (REPOS[*r], SNAPSHOTS[*s]);
            // The catalogue refuses a taken name and a repository without a version.
            if let (Some(v), false) = (m.latest(repo), m.snapshots.contains_key(&(repo, name))) {
                m.snapshots.insert((repo, name), v);
                f.source.snapshot(repo, name, v);
            }
        }
        Op::DeleteSnapshot(r, s) => {
            let (repo, name) = (REPOS[*r], SNAPSHOTS[*s]);
            // The catalogue refuses to delete a snapshot an environment points at.
            if !m.envs.iter().any(|((r, _), s)| *r == repo && *s == name) {
                m.snapshots.remove(&(repo, name));
                f.source.delete_snapshot(repo, name);
            }
        }
        Op::Promote(r, e, s) => {
            let (repo, env, name) = (REPOS[*r], ENVS[*e], SNAPSHOTS[*s]);
            if m.snapshots.contains_key(&(repo, name)) {
                m.envs.insert((repo, env), name);
                f.source.promote(repo, env, name);
            }
        }
        Op::Unset(r, e) => {
            let (repo, env) = (REPOS[*r], ENVS[*e]);
            m.envs.remove(&(repo, env));
            f.source.unset(repo, env);
        }
        Op::Cleanup(r) => {
            let repo = REPOS[*r];
            let Some(latest) = m.latest(repo) else { return };
            // As the catalogue's cleanup: what the source holds now decides (snapshots,
            // pointers), and versions latest within the grace period stay.
            let kept = |v: i64| {
                v == latest
                    || m.snapshots.iter().any(|((r, _), s)| *r == repo && *s == v)
                    || m.retired_at
                        .get(&(repo, v))
                        .is_some_and(|at| at + GRACE_SECS * 1000 > m.now_ms)
            };
            for v in 1..latest {
                if !kept(v) && !m.removed(repo, v) {
                    m.removed.insert((repo, v));
                    f.source.forget_version(repo, v);
                }
            }
            // chantal-fs hears of it within a second; the model does not look in between.
            apply(f, m, &Op::Refresh);
        }
        Op::Evict => f.view.forget_trees(),
        Op::Refresh => {
            let _ = f.view.refresh();
            for repo in REPOS {
                let Some(now) = m.latest(repo) else { continue };
                if let Some(old) = m.seen_latest.insert(repo, now) {
                    if old != now {
                        m.retiring.push((repo, old, m.now_ms + GRACE_SECS * 1000));
                    }
                }
            }
            m.seen_snapshots = m.snapshots.clone();
            let envs: BTreeMap<_, i64> = m
                .envs
                .iter()
                .map(|(k, s)| (*k, m.snapshots[&(k.0, *s)]))
                .collect();
            for (&(repo, env), &now) in &envs {
                if let Some(&old) = m.seen_envs.get(&(repo, env)) {
                    if old != now {
                        m.env_retiring
                            .push((repo, env, old, m.now_ms + GRACE_SECS * 1000));
                    }
                }
            }
            // An unset environment is gone at once, grace and all.
            m.env_retiring
                .retain(|(r, e, _, _)| envs.contains_key(&(*r, *e)));
            m.seen_envs = envs;
        }
        Op::Advance(secs) => {
            f.clock.advance(Duration::from_secs(*secs));
            m.now_ms += secs * 1000;
        }
    }
}

/// Every file below `path` by readdir, each checked to resolve by lookup to the same node.
fn walk(f: &Fixture, path: &str) -> Result<BTreeMap<String, Attr>, TestCaseError> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![String::new()];
    while let Some(dir) = dirs.pop() {
        let full = if dir.is_empty() {
            path.to_string()
        } else {
            format!("{path}/{dir}")
        };
        let ino = f
            .resolve(&full)
            .map_err(|e| TestCaseError::fail(format!("{full}: {e:?}")))?
            .ino;
        let mut entries = Vec::new();
        f.view
            .readdir(ino, 2, |a, name, _| {
                entries.push((*a, name.to_string()));
                false
            })
            .map_err(|e| TestCaseError::fail(format!("readdir {full}: {e:?}")))?;
        for (a, name) in entries {
            let rel = if dir.is_empty() {
                name
            } else {
                format!("{dir}/{name}")
            };
            let looked = f.resolve(&format!("{path}/{rel}"));
            prop_assert_eq!(looked.map(|l| l.ino), Ok(a.ino), "{}/{}", path, rel);
            match a.kind {
                Kind::Dir => dirs.push(rel),
                Kind::File => {
                    out.insert(rel, a);
                }
                // Version trees hold no links: only env/ does.
                Kind::Symlink => prop_assert!(false, "a symlink in a version tree: {}", rel),
            }
        }
    }
    Ok(out)
}

/// The inode of `key` is the one it had first.
fn same_inode(m: &mut Model, key: String, ino: u64) -> Result<(), TestCaseError> {
    let first = *m.inodes.entry(key.clone()).or_insert(ino);
    prop_assert_eq!(first, ino, "inode of {} changed", key);
    Ok(())
}

fn check(f: &Fixture, m: &mut Model) -> Result<(), TestCaseError> {
    for repo in REPOS {
        let Some(&latest) = m.seen_latest.get(repo) else {
            prop_assert!(
                f.resolve(repo).is_err(),
                "{} shown before its first version",
                repo
            );
            continue;
        };
        for fixed in [
            repo.to_string(),
            format!("{repo}/latest"),
            format!("{repo}/snapshots"),
        ] {
            let ino = f
                .resolve(&fixed)
                .map_err(|e| TestCaseError::fail(format!("{fixed}: {e:?}")))?
                .ino;
            same_inode(m, fixed, ino)?;
        }
        // latest/ lists exactly the latest version.
        let listed = walk(f, &format!("{repo}/latest"))?;
        let want = m.files(repo, latest).clone();
        prop_assert_eq!(listed.keys().cloned().collect::<BTreeSet<_>>(), want);
        for (path, a) in &listed {
            prop_assert_eq!(a.size, size_of(path, latest));
            same_inode(m, format!("{repo}@{latest}/latest/{path}"), a.ino)?;
        }
        // Every file of a version served within the grace period resolves under latest/;
        // nothing else does.
        served_within_grace(
            f,
            m,
            &format!("{repo}/latest"),
            repo,
            &m.served_under_latest(repo),
        )?;
        for env in ENVS {
            let root = format!("{repo}/env/{env}");
            let Some(&v) = m.seen_envs.get(&(repo, env)) else {
                prop_assert!(f.resolve(&root).is_err(), "{} shown though unset", root);
                continue;
            };
            let ino = f
                .resolve(&root)
                .map_err(|e| TestCaseError::fail(format!("{root}: {e:?}")))?
                .ino;
            same_inode(m, root.clone(), ino)?;
            let listed = walk(f, &root)?;
            prop_assert_eq!(
                listed.keys().cloned().collect::<BTreeSet<_>>(),
                m.files(repo, v).clone()
            );
            for (path, a) in &listed {
                prop_assert_eq!(a.size, size_of(path, v));
                same_inode(m, format!("{repo}@{v}/env/{env}/{path}"), a.ino)?;
            }
            served_within_grace(f, m, &root, repo, &m.served_under_env(repo, env))?;
        }
    }
    // A snapshot's tree is its version's, always.
    for (&(repo, name), &v) in &m.seen_snapshots.clone() {
        let root = format!("{repo}/snapshots/{name}");
        let ino = f
            .resolve(&root)
            .map_err(|e| TestCaseError::fail(format!("{root}: {e:?}")))?
            .ino;
        same_inode(m, root.clone(), ino)?;
        let listed = walk(f, &root)?;
        prop_assert_eq!(
            listed.keys().cloned().collect::<BTreeSet<_>>(),
            m.files(repo, v).clone()
        );
        for (path, a) in &listed {
            prop_assert_eq!(a.size, size_of(path, v));
            // Every snapshot of one version shares the version's numbers.
            same_inode(m, format!("{repo}@{v}/snapshot/{path}"), a.ino)?;
            prop_assert_eq!(
                f.view
                    .path(a.ino)
                    .map_err(|e| TestCaseError::fail(format!("{e:?}")))?,
                std::path::PathBuf::from(format!("/data/{repo}/{v}/{path}"))
            );
        }
    }
    // versions/ lists what cleanup kept, each version's files; at/ names them by instant.
    for repo in REPOS {
        let Some(&latest) = m.seen_latest.get(repo) else {
            continue;
        };
        let kept: Vec<i64> = (1..=latest).filter(|v| !m.removed(repo, *v)).collect();
        let listed = f
            .list(&format!("{repo}/versions"), 3)
            .map_err(|e| TestCaseError::fail(format!("{repo}/versions: {e:?}")))?;
        prop_assert_eq!(
            listed,
            kept.iter().map(|v| v.to_string()).collect::<Vec<_>>(),
            "{}/versions",
            repo
        );
        for v in &kept {
            let root = format!("{repo}/versions/{v}");
            let files = walk(f, &root)?;
            prop_assert_eq!(
                files.keys().cloned().collect::<BTreeSet<_>>(),
                m.files(repo, *v).clone()
            );
            for (path, a) in &files {
                // The same immutable context as a snapshot of the version.
                same_inode(m, format!("{repo}@{v}/snapshot/{path}"), a.ino)?;
            }
            let at = crate::source::MEMORY_EPOCH + 3600 * v;
            let name = chrono::DateTime::from_timestamp(at, 0)
                .map(|t| t.format(AT_FORMAT).to_string())
                .unwrap_or_default();
            let link = f
                .resolve(&format!("{repo}/at/{name}"))
                .and_then(|a| f.view.readlink(a.ino))
                .map_err(|e| TestCaseError::fail(format!("{repo}/at/{name}: {e:?}")))?;
            prop_assert_eq!(link, format!("../versions/{v}"));
        }
        for v in (1..=latest).filter(|v| m.removed(repo, *v)) {
            let gone = format!("{repo}/versions/{v}");
            prop_assert!(f.resolve(&gone).is_err(), "{} outlived cleanup", gone);
        }
        prop_assert_eq!(
            f.list(&format!("{repo}/at"), 3)
                .map_err(|e| TestCaseError::fail(format!("{e:?}")))?
                .len(),
            kept.len()
        );
    }
    // ... and answers no other name, whatever environments did around it.
    for (&(repo, name), &v) in &m.seen_snapshots {
        served_within_grace(f, m, &format!("{repo}/snapshots/{name}"), repo, &[v])?;
    }
    for repo in REPOS {
        for name in SNAPSHOTS {
            if !m.seen_snapshots.contains_key(&(repo, name)) && m.seen_latest.contains_key(repo) {
                let path = format!("{repo}/snapshots/{name}");
                prop_assert!(f.resolve(&path).is_err(), "{} outlived its deletion", path);
            }
        }
    }
    Ok(())
}

/// Under `root`, every path of [`UNIVERSE`] that one of `served`'s versions holds resolves to
/// a file (or, where another of them has a directory there, to that directory), and no other
/// path resolves to a file.
fn served_within_grace(
    f: &Fixture,
    m: &Model,
    root: &str,
    repo: &str,
    served: &[i64],
) -> Result<(), TestCaseError> {
    for path in UNIVERSE.iter().map(|s| s.to_string()) {
        let holders: Vec<i64> = served
            .iter()
            .copied()
            .filter(|v| m.files(repo, *v).contains(&path))
            .collect();
        let got = f.resolve(&format!("{root}/{path}"));
        // A name cannot be a file and a directory at once: where another served version
        // has a directory at the path, the directory may answer.
        let a_dir_elsewhere = served.iter().any(|v| {
            let prefix = format!("{path}/");
            m.files(repo, *v).iter().any(|p| p.starts_with(&prefix))
        });
        match (holders.is_empty(), got) {
            (false, Ok(a)) if a.kind == Kind::Dir && a_dir_elsewhere => {}
            (false, Ok(a)) => {
                prop_assert_eq!(a.kind, Kind::File, "{}", path);
                prop_assert_eq!(a.size, size_of(&path, 0));
            }
            (false, Err(e)) => {
                return Err(TestCaseError::fail(format!(
                    "{root}/{path} of versions {holders:?} (served within the grace period): {e:?}"
                )))
            }
            (true, Ok(a)) if a.kind == Kind::File => {
                return Err(TestCaseError::fail(format!(
                    "{root}/{path} resolves though no version served there holds it"
                )))
            }
            _ => {}
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn the_view_matches_its_reference_model(ops in prop::collection::vec(op(), 1..40)) {
        // Two trees cached at most: evictions happen all along, not only on Op::Evict.
        let f = Fixture::new(2);
        let mut m = Model::default();
        for op in &ops {
            apply(&f, &mut m, op);
            check(&f, &mut m)?;
        }
    }
}
