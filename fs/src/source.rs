//! Where the view gets what it shows, and its clock: the catalogue and the system clock in
//! the daemon; an in-memory source and a hand-moved clock in tests, so the view's rules
//! (stable inodes, immutable snapshots, the grace period under `latest/`) are tested without
//! a kernel or a database.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chantal_common::catalogue::Catalogue;
use chantal_common::tree::{Leaf, Tree};
use chantal_common::{Error, Result};
use parking_lot::Mutex;

/// What the top of the mount lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// Every repository with its latest version (none before its first sync).
    pub repositories: Vec<(String, Option<i64>)>,
    /// Every snapshot: (repository, name, version).
    pub snapshots: Vec<(String, String, i64)>,
    /// Where each environment points: (repository, environment, the version of its snapshot).
    pub environments: Vec<(String, String, i64)>,
    /// Every version the catalogue holds: (repository, number, commit time in seconds since
    /// the epoch, UTC), for `versions/` and `at/`.
    pub versions: Vec<(String, i64, i64)>,
}

/// What the view reads.
pub trait Source: Send + Sync {
    fn listing(&self) -> Result<Listing>;
    /// The files of one version (a version never changes, so the view caches this).
    fn version_tree(&self, repository: &str, version: i64) -> Result<Tree>;
}

impl Source for Catalogue {
    fn listing(&self) -> Result<Listing> {
        let repositories = self
            .repository_summaries()?
            .into_iter()
            .map(|s| (s.name, s.latest_version))
            .collect();
        let snapshots = self
            .snapshots(None)?
            .into_iter()
            .map(|s| (s.repository, s.name, s.version))
            .collect();
        let environments = self
            .environments(None)?
            .into_iter()
            .map(|e| (e.repository, e.environment, e.version))
            .collect();
        let versions = Catalogue::versions(self)?
            .into_iter()
            .map(|(r, n, at)| (r, n, at.timestamp()))
            .collect();
        Ok(Listing {
            repositories,
            snapshots,
            environments,
            versions,
        })
    }

    fn version_tree(&self, repository: &str, version: i64) -> Result<Tree> {
        Catalogue::version_tree(self, repository, version)
    }
}

/// The view's notion of now: monotonic for grace deadlines, and the wall clock (seconds since
/// the epoch, UTC) for `at/`, where an instant in the future does not exist yet.
pub trait Clock: Send + Sync {
    fn now(&self) -> Instant;
    fn wall(&self) -> i64;
}

/// The system's clocks.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn wall(&self) -> i64 {
        chrono::Utc::now().timestamp()
    }
}

/// A clock that moves only when told to (its wall clock starts at the system's).
pub struct ManualClock {
    start: Instant,
    wall_start: i64,
    millis: AtomicU64,
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock {
            start: Instant::now(),
            wall_start: chrono::Utc::now().timestamp(),
            millis: AtomicU64::new(0),
        }
    }
}

impl ManualClock {
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.millis.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.start + Duration::from_millis(self.millis.load(Ordering::SeqCst))
    }

    fn wall(&self) -> i64 {
        let secs = i64::try_from(self.millis.load(Ordering::SeqCst) / 1000).unwrap_or(i64::MAX);
        self.wall_start.saturating_add(secs)
    }
}

/// When [`MemorySource::publish`] says version N was committed: this plus N hours
/// (2023-11-14T22:13:20Z for version 0).
pub const MEMORY_EPOCH: i64 = 1_700_000_000;

/// A catalogue held in memory: versions as file lists, snapshots, and an outage switch.
#[derive(Default)]
pub struct MemorySource {
    state: Mutex<Memory>,
    builds: AtomicUsize,
}

#[derive(Default)]
struct Memory {
    latest: BTreeMap<String, Option<i64>>,
    versions: HashMap<(String, i64), Vec<(String, Leaf)>>,
    snapshots: BTreeMap<(String, String), i64>,
    /// (repository, environment) -> snapshot name.
    environments: BTreeMap<(String, String), String>,
    /// (repository, version) -> commit time, seconds since the epoch.
    committed: BTreeMap<(String, i64), i64>,
    down: bool,
}

impl MemorySource {
    /// Adds version `version` of `repository` with these files and makes it latest.
    pub fn publish(&self, repository: &str, version: i64, files: Vec<(String, Leaf)>) {
        let mut m = self.state.lock();
        m.versions.insert((repository.to_string(), version), files);
        m.latest.insert(repository.to_string(), Some(version));
        m.committed.insert(
            (repository.to_string(), version),
            MEMORY_EPOCH + 3600 * version,
        );
    }

    /// Sets when a version was committed (seconds since the epoch).
    pub fn set_committed(&self, repository: &str, version: i64, at: i64) {
        self.state
            .lock()
            .committed
            .insert((repository.to_string(), version), at);
    }

    /// Removes a version, as cleanup does (its snapshots and environments must be gone).
    pub fn forget_version(&self, repository: &str, version: i64) {
        let mut m = self.state.lock();
        m.versions.remove(&(repository.to_string(), version));
        m.committed.remove(&(repository.to_string(), version));
    }

    pub fn snapshot(&self, repository: &str, name: &str, version: i64) {
        self.state
            .lock()
            .snapshots
            .insert((repository.to_string(), name.to_string()), version);
    }

    pub fn delete_snapshot(&self, repository: &str, name: &str) {
        self.state
            .lock()
            .snapshots
            .remove(&(repository.to_string(), name.to_string()));
    }

    /// Points an environment at a snapshot of the repository.
    pub fn promote(&self, repository: &str, environment: &str, snapshot: &str) {
        self.state.lock().environments.insert(
            (repository.to_string(), environment.to_string()),
            snapshot.to_string(),
        );
    }

    /// Removes an environment's pointer in the repository (`env unset`).
    pub fn unset(&self, repository: &str, environment: &str) {
        self.state
            .lock()
            .environments
            .remove(&(repository.to_string(), environment.to_string()));
    }

    /// While down, every request fails as a lost database connection does.
    pub fn set_down(&self, down: bool) {
        self.state.lock().down = down;
    }

    /// How many trees were built (the view should build each version once while cached).
    pub fn builds(&self) -> usize {
        self.builds.load(Ordering::SeqCst)
    }

    fn check_up(m: &Memory) -> Result<()> {
        if m.down {
            Err(Error::Connect {
                host: "memory".into(),
                database: "test".into(),
                reason: "down".into(),
            })
        } else {
            Ok(())
        }
    }
}

impl Source for MemorySource {
    fn listing(&self) -> Result<Listing> {
        let m = self.state.lock();
        Self::check_up(&m)?;
        Ok(Listing {
            repositories: m.latest.iter().map(|(r, v)| (r.clone(), *v)).collect(),
            snapshots: m
                .snapshots
                .iter()
                .map(|((r, s), v)| (r.clone(), s.clone(), *v))
                .collect(),
            environments: m
                .environments
                .iter()
                .filter_map(|((r, e), s)| {
                    let v = m.snapshots.get(&(r.clone(), s.clone()))?;
                    Some((r.clone(), e.clone(), *v))
                })
                .collect(),
            versions: m
                .committed
                .iter()
                .map(|((r, v), t)| (r.clone(), *v, *t))
                .collect(),
        })
    }

    fn version_tree(&self, repository: &str, version: i64) -> Result<Tree> {
        let files = {
            let m = self.state.lock();
            Self::check_up(&m)?;
            m.versions
                .get(&(repository.to_string(), version))
                .cloned()
                .unwrap_or_default()
        };
        self.builds.fetch_add(1, Ordering::SeqCst);
        Tree::build(files)
    }
}
