//! What chantal-fs shows, computed from the catalogue, with no FUSE types:
//!
//! ```text
//! /                                   repositories that have a version
//! /<repo>/latest/                     the latest version's tree
//! /<repo>/snapshots/<name>/           a snapshot's tree
//! /<repo>/env/<env>/                  the tree of the snapshot the environment points
//!                                     at (it moves in one refresh for every repository
//!                                     of a promotion)
//! /<repo>/versions/<N>/               every version the catalogue still holds
//! /<repo>/at/<YYYYMMDDTHHMMSSZ>       a symlink to ../versions/<N>, the version that was
//!                                     latest at that instant (UTC); listed: the instants
//!                                     at which latest changed
//! ```
//!
//! Inode numbers are stable for the life of the mount: fixed nodes (root, repository,
//! `latest`, `snapshots`, snapshot directories) are numbered as they are first seen; a version's
//! tree gets a base number per context ([`Ctx`]: under `latest/`, under one environment, or
//! frozen: under a snapshot or `versions/<N>/`) the first time it is shown there, its nodes are
//! `base + index`, and since a version never changes, rebuilding an evicted tree yields the same
//! numbers.
//!
//! Under `latest/` and `env/<env>/` (the moving contexts) a lookup that misses in one version, at
//! any depth, is tried in the version the context shows now and in those it showed until
//! recently, so a client holding a directory of the previous version or reading files named by
//! the previous repomd.xml still finds them. A frozen tree answers only its own names.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chantal_common::tree::{Node, Tree, ROOT};
use parking_lot::{Mutex, MutexGuard};

use crate::source::{Clock, Source};

#[cfg(test)]
mod reftest;
#[cfg(test)]
pub(crate) mod tests;

/// How a view behaves.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// How long a version that stopped being latest stays reachable under `latest/`.
    pub grace: Duration,
    /// Trees kept built at once (least recently used ones are rebuilt when asked for again).
    pub cached_trees: usize,
    /// Where this mount's tree node numbers start (at least 2^32; see [`Options::fresh_inodes`]).
    pub tree_inodes_from: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            grace: chantal_common::SERVING_GRACE,
            cached_trees: 32,
            tree_inodes_from: TREE_BASE,
        }
    }
}

impl Options {
    /// Tree node numbers from a random start, so that a restarted daemon numbers every file
    /// differently from the one before. nginx knows a file it keeps open by its inode number
    /// alone: were `latest/repodata/repomd.xml` given the same number again, nginx would keep
    /// serving its descriptor of the old, detached mount until that daemon is gone, and then
    /// fail, instead of opening the new one.
    pub fn fresh_inodes(self) -> Options {
        use std::hash::BuildHasher;
        let random = std::collections::hash_map::RandomState::new().hash_one(std::process::id());
        Options {
            tree_inodes_from: TREE_BASE + (random % TREE_STARTS) * TREE_SPAN,
            ..self
        }
    }
}

/// Tree node numbers start at or above this, above every fixed node.
const TREE_BASE: u64 = 1 << 32;
/// How many tree node numbers a mount may give out ...
const TREE_SPAN: u64 = 1 << 40;
/// ... and how many such ranges it may start at (the top one ends below 2^64).
const TREE_STARTS: u64 = 1 << 23;

/// The kind of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    /// A point in time (`at/<instant>`): its target is [`View::readlink`]'s.
    Symlink,
}

/// Where a version's tree is shown, which decides its inode numbers and whether a name it lacks
/// may be answered from another version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Ctx {
    /// `latest/`: moves with every sync.
    Latest,
    /// `env/<env>/`: moves with every promotion.
    Env(String),
    /// A snapshot or `versions/<N>/`: exactly the version's files, always.
    Frozen,
}

impl Ctx {
    fn moves(&self) -> bool {
        !matches!(self, Ctx::Frozen)
    }
}

/// What getattr needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr {
    pub ino: u64,
    pub kind: Kind,
    pub size: u64,
    pub mtime: i64,
    pub cache: Cache,
}

/// How long the kernel may keep an entry and its attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cache {
    /// The fixed directories and a snapshot's root (a snapshot may be deleted and its name
    /// given to another version): ask again soon.
    Short,
    /// An entry of `latest/` (`latest/repodata`): it changes only when latest moves, and then
    /// the daemon tells the kernel to forget it ([`View::refresh`]).
    Latest,
    /// An entry of `env/<env>/`: not kept by the kernel at all. A promotion must switch every
    /// repository in the same instant, and the kernel can only be told to forget entries one
    /// after another (a reader then sees one repository promoted and the next not), so each
    /// path walk through `env/<env>/` asks the daemon, where one refresh switches them all.
    Never,
    /// Inside a version: a version never changes, so a name in one of its directories always
    /// means the same node, under `latest/` as under a snapshot.
    Long,
}

/// Why a request fails (the adapter maps these to errnos).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewError {
    NotFound,
    NotADirectory,
    IsADirectory,
    /// The catalogue could not be asked (outage): EIO.
    Unavailable,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Fixed {
    Root,
    Repo(String),
    Latest(String),
    Snapshots(String),
    Snapshot(String, String),
    Envs(String),
    Env(String, String),
    Versions(String),
    Version(String, i64),
    Ats(String),
    /// Every instant that names version N: one node per version.
    At(String, i64),
}

/// How `at/` names an instant.
const AT_FORMAT: &str = "%Y%m%dT%H%M%SZ";

#[derive(Debug, Default, Clone)]
struct RepoState {
    latest: Option<i64>,
    snapshots: BTreeMap<String, i64>,
    /// environment -> the version of the snapshot it points at.
    environments: BTreeMap<String, i64>,
    /// version -> commit time (seconds since the epoch).
    versions: BTreeMap<i64, i64>,
}

impl RepoState {
    /// The version that was latest at `t` (seconds since the epoch): the last committed at or
    /// before it. None before the first version, and for an instant after `now`.
    fn at(&self, t: i64, now: i64) -> Option<i64> {
        if t > now {
            return None;
        }
        self.versions
            .iter()
            .filter(|(_, at)| **at <= t)
            .max_by_key(|(v, at)| (**at, **v))
            .map(|(v, _)| *v)
    }
}

struct State {
    repos: BTreeMap<String, RepoState>,
    fixed: HashMap<Fixed, u64>,
    fixed_by_ino: Vec<Fixed>,
    /// (repo, version, context) -> base inode.
    bases: HashMap<(String, i64, Ctx), u64>,
    /// base -> (repo, version, context, node count): an inode back to its tree.
    by_base: BTreeMap<u64, (String, i64, Ctx, u64)>,
    next_base: u64,
    trees: lru::LruCache<(String, i64), Arc<Tree>>,
    /// (repo, moving context, version, until): versions `latest/` or an environment showed
    /// until recently, still reachable there until the deadline, so a client that read the old
    /// repomd.xml gets the files it names.
    retiring: Vec<(String, Ctx, i64, Instant)>,
    /// Names given out in each repository's `latest/` (the kernel may hold entries for them)
    /// since latest last moved.
    latest_names: HashMap<String, BTreeSet<String>>,
    /// Repositories whose `latest/` root had a name looked up since latest last moved: where
    /// readers come, so where the next tree is given to the kernel ahead of them. Listings do
    /// not count: the daemon's own prefill lists the tree, and must not keep itself going.
    latest_read: HashSet<String>,
    outage: Option<Outage>,
}

/// A catalogue outage in progress: logged when it starts, reminded of at most once a minute,
/// and when it ends.
struct Outage {
    since: Instant,
    reminded: Instant,
}

/// How often a continuing outage is logged again.
const OUTAGE_REMINDER: Duration = Duration::from_secs(60);

/// What the kernel must forget after a refresh.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Invalidations {
    /// `(directory inode, name)` entries that now mean something else.
    pub entries: Vec<(u64, String)>,
    /// Repositories whose `latest/` moved to another version after readers had looked into
    /// it: once the old entries are forgotten for good, the kernel may be given the new
    /// tree's ahead of its readers.
    pub latest_moved: Vec<String>,
}

impl Invalidations {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.latest_moved.is_empty()
    }
}

/// The view over a [`Source`] (the catalogue).
pub struct View {
    source: Arc<dyn Source>,
    clock: Arc<dyn Clock>,
    /// `<base_path>/data`.
    data: PathBuf,
    grace: Duration,
    state: Mutex<State>,
}

/// A node of a version tree, in its context.
struct NodeRef {
    tree: Arc<Tree>,
    base: u64,
    index: usize,
    repo: String,
    version: i64,
    ctx: Ctx,
}

/// The root's inode (FUSE's fixed number).
pub const ROOT_INO: u64 = 1;

impl View {
    pub fn new(
        source: Arc<dyn Source>,
        data: PathBuf,
        options: Options,
        clock: Arc<dyn Clock>,
    ) -> View {
        let mut state = State {
            repos: BTreeMap::new(),
            fixed: HashMap::new(),
            fixed_by_ino: vec![Fixed::Root, Fixed::Root],
            bases: HashMap::new(),
            by_base: BTreeMap::new(),
            next_base: options.tree_inodes_from.max(TREE_BASE),
            trees: lru::LruCache::new(
                std::num::NonZeroUsize::new(options.cached_trees)
                    .unwrap_or(std::num::NonZeroUsize::MIN),
            ),
            retiring: Vec::new(),
            latest_names: HashMap::new(),
            latest_read: HashSet::new(),
            outage: None,
        };
        state.fixed.insert(Fixed::Root, ROOT_INO);
        View {
            source,
            clock,
            data,
            grace: options.grace,
            state: Mutex::new(state),
        }
    }

    /// Drops every built tree; each is rebuilt, with the same inode numbers, when next asked
    /// for.
    pub fn forget_trees(&self) {
        self.lock().trees.clear();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }

    /// Reloads repositories, latest versions and snapshots (one query each) and returns the
    /// kernel entries that latest's move made wrong. On a catalogue outage the previous state
    /// stays; the outage is logged when it starts, once a minute while it lasts, and when it
    /// ends.
    pub fn refresh(&self) -> Invalidations {
        let listing = self.source.listing();
        let now = self.clock.now();
        let mut st = self.lock();
        let listing = match listing {
            Ok(l) => l,
            Err(e) => {
                Self::outage(&mut st, &e, now);
                return Invalidations::default();
            }
        };
        if let Some(o) = st.outage.take() {
            tracing::info!(
                "catalogue available again after {:.1} s",
                now.duration_since(o.since).as_secs_f64()
            );
        }
        let mut repos: BTreeMap<String, RepoState> = BTreeMap::new();
        for (name, latest) in listing.repositories {
            repos.entry(name).or_default().latest = latest;
        }
        for (repository, name, version) in listing.snapshots {
            repos
                .entry(repository)
                .or_default()
                .snapshots
                .insert(name, version);
        }
        for (repository, environment, version) in listing.environments {
            repos
                .entry(repository)
                .or_default()
                .environments
                .insert(environment, version);
        }
        for (repository, version, at) in listing.versions {
            repos
                .entry(repository)
                .or_default()
                .versions
                .insert(version, at);
        }
        // A repository appears once it has a version (a first sync that failed leaves a row).
        repos.retain(|_, r| r.latest.is_some() || !r.snapshots.is_empty());
        let deadline = now + self.grace;
        let mut invalidate = Invalidations::default();
        let mut moved = Vec::new();
        let mut unset = Vec::new();
        for (name, new) in &repos {
            if let Some(old) = st.repos.get(name) {
                // An environment that moved keeps serving what it showed for the grace period
                // (its entries are never kept by the kernel: nothing to invalidate). One that
                // was unset is gone at once, with what it showed before.
                for (env, was) in &old.environments {
                    match new.environments.get(env) {
                        Some(is) if is != was => {
                            moved.push((name.clone(), Ctx::Env(env.clone()), *was, deadline));
                        }
                        Some(_) => {}
                        None => unset.push((name.clone(), Ctx::Env(env.clone()))),
                    }
                }
            }
            if let Some(old) = st.repos.get(name).and_then(|r| r.latest) {
                if new.latest != Some(old) {
                    tracing::info!(
                        "{name}: latest is now version {}",
                        new.latest.map_or_else(|| "-".into(), |v| v.to_string())
                    );
                    moved.push((name.clone(), Ctx::Latest, old, deadline));
                    let names = st.latest_names.remove(name).unwrap_or_default();
                    // Only where readers came before: a repository nobody reads through this
                    // mount costs no kernel memory.
                    if st.latest_read.remove(name) && new.latest.is_some() {
                        invalidate.latest_moved.push(name.clone());
                    }
                    if let Some(ino) = st.fixed.get(&Fixed::Latest(name.clone())) {
                        invalidate
                            .entries
                            .extend(names.into_iter().map(|n| (*ino, n)));
                    }
                }
            }
        }
        st.retiring.retain(|(r, c, _, until)| {
            *until > now && !unset.iter().any(|u| u.0 == *r && u.1 == *c)
        });
        st.retiring.extend(moved);
        st.repos = repos;
        invalidate
    }

    /// Logs an outage: its start, then at most one reminder a minute.
    fn outage(st: &mut State, e: &chantal_common::Error, now: Instant) {
        match &mut st.outage {
            None => {
                tracing::error!("catalogue unavailable, serving cached trees only: {e}");
                st.outage = Some(Outage {
                    since: now,
                    reminded: now,
                });
            }
            Some(o) if now.duration_since(o.reminded) >= OUTAGE_REMINDER => {
                tracing::warn!(
                    "catalogue still unavailable after {} s, serving cached trees only: {e}",
                    now.duration_since(o.since).as_secs()
                );
                o.reminded = now;
            }
            Some(_) => {}
        }
    }

    /// Remembers the names of a version's root shown under `latest/`, so they can be
    /// invalidated when latest moves.
    fn shown_in_latest(st: &mut State, repo: &str, tree: &Tree) {
        let names = st.latest_names.entry(repo.to_string()).or_default();
        for (name, _) in tree.entries(ROOT) {
            if !names.contains(name) {
                names.insert(name.clone());
            }
        }
    }

    fn fixed_ino(st: &mut State, node: Fixed) -> u64 {
        if let Some(i) = st.fixed.get(&node) {
            return *i;
        }
        let ino = st.fixed_by_ino.len() as u64;
        st.fixed_by_ino.push(node.clone());
        st.fixed.insert(node, ino);
        ino
    }

    /// The tree of (repo, version), built from the catalogue if not cached. The state lock is
    /// released while the catalogue is asked, so requests for cached trees never wait on the
    /// database.
    fn cached_tree(
        &self,
        st: &mut MutexGuard<'_, State>,
        repo: &str,
        version: i64,
    ) -> Result<Arc<Tree>, ViewError> {
        let key = (repo.to_string(), version);
        Ok(match st.trees.get(&key) {
            Some(t) => Arc::clone(t),
            None => {
                // During a known outage, fail at once (EIO) instead of waiting for a
                // connection on every request.
                if st.outage.is_some() {
                    return Err(ViewError::Unavailable);
                }
                let started = Instant::now();
                let built = MutexGuard::unlocked(st, || self.source.version_tree(repo, version));
                let tree = match built {
                    Ok(t) => Arc::new(t),
                    Err(e @ chantal_common::Error::Metadata { .. }) => {
                        tracing::error!("{repo} version {version}: {e}");
                        return Err(ViewError::Unavailable);
                    }
                    Err(e) => {
                        // Logged once; the refresher reminds and says when it is over.
                        Self::outage(st, &e, self.clock.now());
                        return Err(ViewError::Unavailable);
                    }
                };
                tracing::debug!(
                    "{repo} version {version}: {} nodes built in {:?}",
                    tree.len(),
                    started.elapsed()
                );
                // Another request may have built it meanwhile; both are identical.
                st.trees.put(key, Arc::clone(&tree));
                tree
            }
        })
    }

    /// The tree of (repo, version) and its base inode in a context, numbering the context the
    /// first time it is shown.
    fn tree(
        &self,
        st: &mut MutexGuard<'_, State>,
        repo: &str,
        version: i64,
        ctx: &Ctx,
    ) -> Result<(Arc<Tree>, u64), ViewError> {
        let tree = self.cached_tree(st, repo, version)?;
        let bkey = (repo.to_string(), version, ctx.clone());
        let base = match st.bases.get(&bkey) {
            Some(b) => *b,
            None => {
                let b = st.next_base;
                st.next_base += tree.len() as u64 + 1;
                st.by_base.insert(
                    b,
                    (repo.to_string(), version, ctx.clone(), tree.len() as u64),
                );
                st.bases.insert(bkey, b);
                b
            }
        };
        Ok((tree, base))
    }

    /// Which tree node an inode is, in its context.
    fn tree_node(&self, st: &mut MutexGuard<'_, State>, ino: u64) -> Result<NodeRef, ViewError> {
        let (base, (repo, version, ctx, len)) = st
            .by_base
            .range(..=ino)
            .next_back()
            .map(|(b, v)| (*b, v.clone()))
            .ok_or(ViewError::NotFound)?;
        let index = ino - base;
        if index >= len {
            return Err(ViewError::NotFound);
        }
        // The inode's context already has its base: only the tree is needed.
        let tree = self.cached_tree(st, &repo, version)?;
        Ok(NodeRef {
            tree,
            base,
            index: usize::try_from(index).unwrap_or(usize::MAX),
            repo,
            version,
            ctx,
        })
    }

    fn dir_attr(ino: u64) -> Attr {
        Attr {
            ino,
            kind: Kind::Dir,
            size: 0,
            mtime: 0,
            cache: Cache::Short,
        }
    }

    fn node_attr(tree: &Tree, base: u64, index: usize, cache: Cache) -> Result<Attr, ViewError> {
        let ino = base + index as u64;
        match tree.node(index).ok_or(ViewError::NotFound)? {
            Node::Dir { .. } => Ok(Attr {
                cache,
                ..Self::dir_attr(ino)
            }),
            Node::File { leaf, .. } => Ok(Attr {
                ino,
                kind: Kind::File,
                size: leaf.size,
                mtime: leaf.mtime,
                cache,
            }),
        }
    }

    /// How the entries of a version's root may be cached: under `latest/` until latest moves
    /// (then invalidated), under `env/<env>/` not at all, under a snapshot briefly (its name
    /// may be given to another version).
    fn root_cache(ctx: &Ctx) -> Cache {
        match ctx {
            Ctx::Latest => Cache::Latest,
            Ctx::Env(_) => Cache::Never,
            Ctx::Frozen => Cache::Short,
        }
    }

    /// The version a fixed directory shows, if it is a version root, in its context.
    fn version_of(st: &State, node: &Fixed) -> Option<(String, i64, Ctx)> {
        match node {
            Fixed::Latest(r) => st.repos.get(r)?.latest.map(|v| (r.clone(), v, Ctx::Latest)),
            Fixed::Env(r, e) => st
                .repos
                .get(r)?
                .environments
                .get(e)
                .map(|v| (r.clone(), *v, Ctx::Env(e.clone()))),
            Fixed::Snapshot(r, s) => st
                .repos
                .get(r)?
                .snapshots
                .get(s)
                .map(|v| (r.clone(), *v, Ctx::Frozen)),
            // The same immutable context as a snapshot of that version: the same inodes.
            Fixed::Version(r, n) => st
                .repos
                .get(r)?
                .versions
                .contains_key(n)
                .then(|| (r.clone(), *n, Ctx::Frozen)),
            _ => None,
        }
    }

    /// `name` in directory `parent`.
    pub fn lookup(&self, parent: u64, name: &str) -> Result<Attr, ViewError> {
        let mut st = self.lock();
        if parent >= TREE_BASE {
            let n = self.tree_node(&mut st, parent)?;
            if let Some(child) = n.tree.lookup(n.index, name) {
                return Self::node_attr(&n.tree, n.base, child, Cache::Long);
            }
            if n.ctx.moves() {
                if let Some(dir) = n.tree.path(n.index) {
                    let path = if dir.is_empty() {
                        name.to_string()
                    } else {
                        format!("{dir}/{name}")
                    };
                    if let Some(a) = self.fallback(&mut st, &n.repo, &n.ctx, n.version, &path)? {
                        return Ok(a);
                    }
                }
            }
            return Err(ViewError::NotFound);
        }
        let node = st
            .fixed_by_ino
            .get(usize::try_from(parent).unwrap_or(usize::MAX))
            .cloned()
            .ok_or(ViewError::NotFound)?;
        let child = match &node {
            Fixed::Root => st.repos.get(name).map(|_| Fixed::Repo(name.to_string())),
            Fixed::Repo(r) => match name {
                "latest" if st.repos.get(r).is_some_and(|x| x.latest.is_some()) => {
                    Some(Fixed::Latest(r.clone()))
                }
                "snapshots" => Some(Fixed::Snapshots(r.clone())),
                "env" if st.repos.get(r).is_some_and(|x| !x.environments.is_empty()) => {
                    Some(Fixed::Envs(r.clone()))
                }
                "versions" => Some(Fixed::Versions(r.clone())),
                "at" => Some(Fixed::Ats(r.clone())),
                _ => None,
            },
            Fixed::Versions(r) => name
                .parse::<i64>()
                .ok()
                .filter(|n| n.to_string() == name)
                .filter(|n| st.repos.get(r).is_some_and(|x| x.versions.contains_key(n)))
                .map(|n| Fixed::Version(r.clone(), n)),
            // Only the canonical spelling: chrono's parser also takes surrounding blanks, and
            // one path must not have several names.
            Fixed::Ats(r) => chrono::NaiveDateTime::parse_from_str(name, AT_FORMAT)
                .ok()
                .filter(|t| t.format(AT_FORMAT).to_string() == name)
                .and_then(|t| {
                    st.repos
                        .get(r)?
                        .at(t.and_utc().timestamp(), self.clock.wall())
                })
                .map(|n| Fixed::At(r.clone(), n)),
            Fixed::Snapshots(r) => st
                .repos
                .get(r)
                .filter(|x| x.snapshots.contains_key(name))
                .map(|_| Fixed::Snapshot(r.clone(), name.to_string())),
            Fixed::Envs(r) => st
                .repos
                .get(r)
                .filter(|x| x.environments.contains_key(name))
                .map(|_| Fixed::Env(r.clone(), name.to_string())),
            Fixed::Latest(_)
            | Fixed::Snapshot(..)
            | Fixed::Version(..)
            | Fixed::Env(..)
            | Fixed::At(..) => None,
        };
        if let Some(child) = child {
            let ino = Self::fixed_ino(&mut st, child.clone());
            return Ok(Self::fixed_attr(ino, &child));
        }
        let (repo, version, ctx) = Self::version_of(&st, &node).ok_or(ViewError::NotFound)?;
        let (tree, base) = self.tree(&mut st, &repo, version, &ctx)?;
        if ctx == Ctx::Latest {
            Self::shown_in_latest(&mut st, &repo, &tree);
            if !st.latest_read.contains(&repo) {
                st.latest_read.insert(repo.clone());
            }
        }
        if let Some(child) = tree.lookup(ROOT, name) {
            return Self::node_attr(&tree, base, child, Self::root_cache(&ctx));
        }
        if ctx.moves() {
            if let Some(a) = self.fallback(&mut st, &repo, &ctx, version, name)? {
                return Ok(a);
            }
        }
        Err(ViewError::NotFound)
    }

    /// `path` (from a version's root) in a moving context's other versions: the one it shows
    /// now first, then those it showed until recently, newest first. Found nodes stay in the
    /// context, so a directory of the previous version found this way resolves on in the same
    /// way below it.
    fn fallback(
        &self,
        st: &mut MutexGuard<'_, State>,
        repo: &str,
        ctx: &Ctx,
        tried: i64,
        path: &str,
    ) -> Result<Option<Attr>, ViewError> {
        let now = self.clock.now();
        let current = st.repos.get(repo).and_then(|r| match ctx {
            Ctx::Latest => r.latest,
            Ctx::Env(e) => r.environments.get(e).copied(),
            Ctx::Frozen => None,
        });
        let mut versions: Vec<i64> = current.into_iter().collect();
        versions.extend(
            st.retiring
                .iter()
                .rev()
                .filter(|(r, c, _, until)| r == repo && c == ctx && *until > now)
                .map(|(_, _, v, _)| *v),
        );
        versions.retain(|v| *v != tried);
        let mut seen = BTreeSet::new();
        versions.retain(|v| seen.insert(*v));
        for v in versions {
            // A version cleanup removed has no tree any more.
            if !st
                .repos
                .get(repo)
                .is_some_and(|r| r.versions.contains_key(&v))
            {
                continue;
            }
            let (tree, base) = self.tree(st, repo, v, ctx)?;
            if let Some(node) = tree.resolve(path) {
                // A file of another version answers this name only for now.
                return Self::node_attr(&tree, base, node, Cache::Short).map(Some);
            }
        }
        Ok(None)
    }

    pub fn getattr(&self, ino: u64) -> Result<Attr, ViewError> {
        let mut st = self.lock();
        if ino >= TREE_BASE {
            let n = self.tree_node(&mut st, ino)?;
            return Self::node_attr(&n.tree, n.base, n.index, Cache::Long);
        }
        if ino < ROOT_INO {
            return Err(ViewError::NotFound);
        }
        let node = st
            .fixed_by_ino
            .get(usize::try_from(ino).unwrap_or(usize::MAX))
            .cloned()
            .ok_or(ViewError::NotFound)?;
        Ok(Self::fixed_attr(ino, &node))
    }

    /// A fixed node's attributes: a directory, or a point in time's symlink (its size is its
    /// target's length).
    fn fixed_attr(ino: u64, node: &Fixed) -> Attr {
        match node {
            Fixed::At(_, n) => Attr {
                ino,
                kind: Kind::Symlink,
                size: Self::version_target(*n).len() as u64,
                mtime: 0,
                cache: Cache::Short,
            },
            _ => Self::dir_attr(ino),
        }
    }

    fn version_target(n: i64) -> String {
        format!("../versions/{n}")
    }

    /// Where a point in time's symlink points: `../versions/<N>`.
    pub fn readlink(&self, ino: u64) -> Result<String, ViewError> {
        let st = self.lock();
        match st
            .fixed_by_ino
            .get(usize::try_from(ino).unwrap_or(usize::MAX))
        {
            Some(Fixed::At(_, n)) => Ok(Self::version_target(*n)),
            Some(_) | None => Err(ViewError::NotFound),
        }
    }

    /// A directory's entries with their attributes, `.` and `..` first, from position `offset`
    /// on: `add(attr, name, next offset)` is called for each until it returns true (the
    /// kernel's buffer is full). No allocation per entry and no walk over the entries before
    /// `offset`, so `ls -l` of a 50,000-entry `Packages/` costs one pass over it.
    pub fn readdir(
        &self,
        ino: u64,
        offset: u64,
        mut add: impl FnMut(&Attr, &str, u64) -> bool,
    ) -> Result<(), ViewError> {
        let mut st = self.lock();
        let skip = usize::try_from(offset).unwrap_or(usize::MAX);
        let tree_dir = if ino >= TREE_BASE {
            let n = self.tree_node(&mut st, ino)?;
            Some((n.tree, n.base, n.index, Cache::Long))
        } else {
            let node = st
                .fixed_by_ino
                .get(usize::try_from(ino).unwrap_or(usize::MAX))
                .cloned()
                .ok_or(ViewError::NotFound)?;
            match Self::version_of(&st, &node) {
                Some((repo, version, ctx)) => {
                    let (tree, base) = self.tree(&mut st, &repo, version, &ctx)?;
                    if ctx == Ctx::Latest {
                        Self::shown_in_latest(&mut st, &repo, &tree);
                    }
                    Some((tree, base, ROOT, Self::root_cache(&ctx)))
                }
                None => None,
            }
        };
        if let Some((tree, base, index, cache)) = tree_dir {
            // The tree is immutable and held by its Arc: no lock needed to walk it.
            drop(st);
            return Self::readdir_tree(&tree, base, index, cache, skip, add);
        }
        let node = st
            .fixed_by_ino
            .get(usize::try_from(ino).unwrap_or(usize::MAX))
            .cloned()
            .ok_or(ViewError::NotFound)?;
        let children = Self::fixed_children(&st, &node)?;
        let me = Self::dir_attr(ino);
        let mut all = vec![(me, ".".to_string()), (me, "..".to_string())];
        for (child, name) in children {
            let ino = Self::fixed_ino(&mut st, child.clone());
            all.push((Self::fixed_attr(ino, &child), name));
        }
        drop(st);
        for (i, (attr, name)) in all.iter().enumerate().skip(skip) {
            if add(attr, name, i as u64 + 1) {
                break;
            }
        }
        Ok(())
    }

    /// A directory of a version's tree, from entry `skip` on.
    fn readdir_tree(
        tree: &Tree,
        base: u64,
        index: usize,
        cache: Cache,
        skip: usize,
        mut add: impl FnMut(&Attr, &str, u64) -> bool,
    ) -> Result<(), ViewError> {
        let me = Self::node_attr(tree, base, index, cache)?;
        if me.kind != Kind::Dir {
            return Err(ViewError::NotADirectory);
        }
        let entries = tree.entries(index);
        for i in skip..entries.len() + 2 {
            let full = match i {
                0 => add(&me, ".", 1),
                1 => add(&me, "..", 2),
                _ => {
                    let (name, n) = &entries[i - 2];
                    let attr = Self::node_attr(tree, base, *n, cache)?;
                    add(&attr, name, i as u64 + 1)
                }
            };
            if full {
                break;
            }
        }
        Ok(())
    }

    /// The entries of a directory of the fixed layout (above the versions' trees), by name.
    fn fixed_children(st: &State, node: &Fixed) -> Result<Vec<(Fixed, String)>, ViewError> {
        let repo = |r: &String| st.repos.get(r);
        Ok(match node {
            Fixed::Root => st
                .repos
                .keys()
                .map(|r| (Fixed::Repo(r.clone()), r.clone()))
                .collect(),
            Fixed::Repo(r) => {
                let mut v = Vec::new();
                if repo(r).is_some_and(|x| x.latest.is_some()) {
                    v.push((Fixed::Latest(r.clone()), "latest".to_string()));
                }
                v.push((Fixed::Snapshots(r.clone()), "snapshots".to_string()));
                if repo(r).is_some_and(|x| !x.environments.is_empty()) {
                    v.push((Fixed::Envs(r.clone()), "env".to_string()));
                }
                v.push((Fixed::Versions(r.clone()), "versions".to_string()));
                v.push((Fixed::Ats(r.clone()), "at".to_string()));
                v
            }
            Fixed::Versions(r) => repo(r)
                .map(|x| {
                    x.versions
                        .keys()
                        .map(|n| (Fixed::Version(r.clone(), *n), n.to_string()))
                        .collect()
                })
                .unwrap_or_default(),
            // The instants at which latest changed: each version's commit time, to the second
            // (of versions committed within one second, the last one).
            Fixed::Ats(r) => repo(r)
                .map(|x| {
                    let mut by_second: BTreeMap<i64, i64> = BTreeMap::new();
                    for (n, at) in &x.versions {
                        let v = by_second.entry(*at).or_insert(*n);
                        *v = (*v).max(*n);
                    }
                    by_second
                        .into_iter()
                        .filter_map(|(at, n)| {
                            let t = chrono::DateTime::from_timestamp(at, 0)?;
                            Some((Fixed::At(r.clone(), n), t.format(AT_FORMAT).to_string()))
                        })
                        .collect()
                })
                .unwrap_or_default(),
            Fixed::Envs(r) => repo(r)
                .map(|x| {
                    x.environments
                        .keys()
                        .map(|e| (Fixed::Env(r.clone(), e.clone()), e.clone()))
                        .collect()
                })
                .unwrap_or_default(),
            Fixed::Snapshots(r) => repo(r)
                .map(|x| {
                    x.snapshots
                        .keys()
                        .map(|s| (Fixed::Snapshot(r.clone(), s.clone()), s.clone()))
                        .collect()
                })
                .unwrap_or_default(),
            // Version roots were handled above; one whose version is gone is empty.
            Fixed::Latest(_) | Fixed::Snapshot(..) | Fixed::Version(..) | Fixed::Env(..) => {
                Vec::new()
            }
            Fixed::At(..) => return Err(ViewError::NotADirectory),
        })
    }

    /// The pool file behind a file inode.
    pub fn path(&self, ino: u64) -> Result<PathBuf, ViewError> {
        let mut st = self.lock();
        if ino < TREE_BASE {
            return Err(ViewError::IsADirectory);
        }
        let n = self.tree_node(&mut st, ino)?;
        match n.tree.node(n.index) {
            Some(Node::File { leaf, .. }) => Ok(self.data.join(&leaf.pool_path)),
            Some(Node::Dir { .. }) => Err(ViewError::IsADirectory),
            None => Err(ViewError::NotFound),
        }
    }
}
