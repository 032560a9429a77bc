//! The catalogue: what every repository contained at every version, which files the pool holds,
//! snapshots and sync history. All SQL of the project lives below this module, behind methods
//! named for what they do.
//!
//! Two backends implement the same API: an embedded SQLite file (the default, when
//! `database.url` is absent or `sqlite://…`) for a single mirror host, and PostgreSQL
//! (`postgresql://…` or a libpq `host=… dbname=…` string) for sites with several hosts. Both
//! apply the same numbered migrations and give the same results and errors; [`copy`] moves a
//! catalogue from one to the other.

pub mod copy;
mod db;
mod migrations;
mod model;
mod ops;
mod pg;
mod sqlite;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::rpm::ChecksumType;

pub use migrations::{Migration, SchemaStatus, MIGRATIONS};
pub use model::{
    BlobRecord, BlobUse, CleanupReport, CleanupRun, CommitInput, CommitResult, ContentItem,
    EnvChange, EnvPointer, ForgetReport, FoundPackage, FragmentRow, ImportInput, ImportReport,
    ImportVersion, KnownBlob, LatestState, NevraSize, NewMetadata, NewPackage, PackagePlace,
    PackageQuery, Presence, PromoteInput, PromoteTarget, Promotion, RepoSummary, RunningSync, Seal,
    SealedFile, SignatureRecord, SnapshotRecord, StoredBlob, SyncFinish, SyncHealth, SyncRecord,
    SyncStatus, VersionInfo, VersionPackage,
};

/// How long to wait for the database before giving up, unless told otherwise.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Which database holds the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Sqlite,
    Postgres,
}

impl BackendKind {
    /// The name operators know it by ("SQLite", "PostgreSQL").
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Sqlite => "SQLite",
            BackendKind::Postgres => "PostgreSQL",
        }
    }

    /// The lower-case name used in JSON output and URLs.
    pub fn id(self) -> &'static str {
        match self {
            BackendKind::Sqlite => "sqlite",
            BackendKind::Postgres => "postgresql",
        }
    }
}

/// What a `database.url` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection string (URL or libpq keywords).
    Postgres(String),
}

impl Target {
    /// Parses `sqlite:///path`, `postgresql://…`/`postgres://…` or `host=… dbname=…`.
    pub fn parse(url: &str) -> Result<Target> {
        if let Some(rest) = url.strip_prefix("sqlite://") {
            // A relative path would depend on the directory cron or systemd starts in.
            if !rest.starts_with('/') {
                return Err(Error::BadDatabaseUrl {
                    url: url.into(),
                    reason: "a SQLite URL names a file by its absolute path, as in sqlite:///var/lib/chantal/catalog.db".into(),
                });
            }
            return Ok(Target::Sqlite(PathBuf::from(rest)));
        }
        if url.starts_with("postgresql://")
            || url.starts_with("postgres://")
            || !url.contains("://")
        {
            return Ok(Target::Postgres(url.to_string()));
        }
        let scheme = url.split("://").next().unwrap_or(url);
        Err(Error::DatabaseScheme {
            scheme: scheme.into(),
        })
    }
}

/// A handle on the catalogue database. Cheap to clone; safe to share between threads.
#[derive(Clone)]
pub struct Catalogue {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Postgres(Arc<pg::PgStore>),
    Sqlite(Arc<sqlite::SqliteStore>),
}

impl std::fmt::Debug for Catalogue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Catalogue({}, {})",
            self.backend_kind().name(),
            self.describe()
        )
    }
}

impl Catalogue {
    /// Connects without looking at the schema (for `init` and `db` commands). A SQLite file
    /// that does not exist yet is created.
    pub fn connect(url: &str) -> Result<Catalogue> {
        Self::connect_waiting(url, CONNECT_TIMEOUT)
    }

    /// Like [`Catalogue::connect`], but a request waits at most `wait` for a connection once
    /// the server is gone: a daemon serving from caches (chantal-fs) wants to learn of an
    /// outage quickly rather than hold its callers for the default 10 s.
    pub fn connect_waiting(url: &str, wait: Duration) -> Result<Catalogue> {
        Self::connect_target(url, wait, true)
    }

    /// Like [`Catalogue::connect`], but a SQLite file must exist already: for commands that
    /// only look (`db status`), which should not leave an empty catalogue behind.
    pub fn connect_existing(url: &str) -> Result<Catalogue> {
        Self::connect_target(url, CONNECT_TIMEOUT, false)
    }

    fn connect_target(url: &str, wait: Duration, create: bool) -> Result<Catalogue> {
        let backend = match Target::parse(url)? {
            Target::Postgres(url) => Backend::Postgres(Arc::new(pg::PgStore::connect(&url, wait)?)),
            Target::Sqlite(path) => {
                Backend::Sqlite(Arc::new(sqlite::SqliteStore::open(&path, create)?))
            }
        };
        Ok(Catalogue { backend })
    }

    /// Connects and checks that the schema is exactly the one this binary knows.
    pub fn open(url: &str) -> Result<Catalogue> {
        Self::open_waiting(url, CONNECT_TIMEOUT)
    }

    /// [`Catalogue::open`] with [`Catalogue::connect_waiting`]'s bound on waiting. A SQLite
    /// catalogue must exist already (`chantal init` creates it).
    pub fn open_waiting(url: &str, wait: Duration) -> Result<Catalogue> {
        let catalogue = Self::connect_target(url, wait, false)?;
        catalogue.require_current_schema()?;
        Ok(catalogue)
    }

    /// Which database this is.
    pub fn backend_kind(&self) -> BackendKind {
        match &self.backend {
            Backend::Postgres(_) => BackendKind::Postgres,
            Backend::Sqlite(_) => BackendKind::Sqlite,
        }
    }

    /// "database on host" or the SQLite file, for messages.
    pub fn describe(&self) -> String {
        match &self.backend {
            Backend::Postgres(b) => b.describe(),
            Backend::Sqlite(b) => b.describe(),
        }
    }

    /// Fails unless the schema is exactly at the version this binary knows.
    pub fn require_current_schema(&self) -> Result<()> {
        self.schema_status()?.require_current()
    }

    /// Copies a SQLite catalogue to `to` while syncs and chantal-fs use it (SQLite's online
    /// backup; atomic: `to` is replaced only by a complete, checked copy) and returns its
    /// size. A PostgreSQL catalogue is refused: pg_dump does that job.
    pub fn backup(&self, to: &std::path::Path) -> Result<u64> {
        match &self.backend {
            Backend::Sqlite(b) => b.backup(to),
            Backend::Postgres(b) => Err(Error::Invalid(format!(
                "the catalogue is the PostgreSQL database {}: back it up with pg_dump \
                 (pg_dump -Fc -f chantal.dump DBNAME), which copies it consistently while it is used",
                b.describe()
            ))),
        }
    }

    /// Whether `repository` has a snapshot called `name`.
    pub fn snapshot_exists(&self, repository: &str, name: &str) -> Result<bool> {
        Ok(self
            .snapshots(Some(repository))?
            .iter()
            .any(|s| s.name == name))
    }
}

/// The catalogue API. Each method's rules are written once, in `ops/`, generic over the
/// backend's [`db::Store`]; this writes the dispatch to the backend at hand.
macro_rules! catalogue_api {
    ($( $(#[$doc:meta])* fn $name:ident(&self $(, $arg:ident : $ty:ty)* $(,)?) -> $ret:ty = $rule:path; )*) => {
        impl Catalogue {
            $(
                $(#[$doc])*
                pub fn $name(&self $(, $arg: $ty)*) -> $ret {
                    match &self.backend {
                        Backend::Postgres(b) => $rule(&**b $(, $arg)*),
                        Backend::Sqlite(b) => $rule(&**b $(, $arg)*),
                    }
                }
            )*
        }
    };
}

catalogue_api! {
    /// Reads the schema table (absent means version 0).
    fn schema_status(&self) -> Result<SchemaStatus> = ops::schema::schema_status;
    /// Applies every pending migration, each in its own transaction, and returns those
    /// applied. Safe to run concurrently.
    fn migrate(&self) -> Result<Vec<Migration>> = ops::schema::migrate;

    /// Records a blob that is now in the pool. Recording it twice is harmless.
    fn record_blob(&self, blob: &StoredBlob) -> Result<()> = ops::blobs::record_blob;
    /// The recorded blob with this sha256, if any.
    fn blob(&self, sha256: &crate::Sha256) -> Result<Option<BlobRecord>> = ops::blobs::blob;
    /// Records blobs now in the pool, with the upstream checksum each was verified against.
    fn record_blobs(&self, blobs: &[(StoredBlob, Option<(ChecksumType, String)>)]) -> Result<()> = ops::blobs::record_blobs;
    /// Records blobs now in the pool and, in the same transaction, what their signature
    /// checks found: each record names one of `blobs`.
    fn record_checked_blobs(&self, blobs: &[(StoredBlob, Option<(ChecksumType, String)>)], signatures: &[SignatureRecord]) -> Result<()> = ops::blobs::record_checked_blobs;
    /// Records blobs the pool does not hold yet (on-demand packages), as absent.
    fn record_absent_blobs(&self, blobs: &[(StoredBlob, Option<(ChecksumType, String)>)]) -> Result<()> = ops::blobs::record_absent_blobs;
    /// Whether any blob is absent (an on-demand package not fetched yet).
    fn any_absent(&self) -> Result<bool> = ops::blobs::any_absent;
    /// Marks blobs a sync is about to reuse as used now (no cleanup collects them while it
    /// runs) and returns those still recorded, with whether each has a package row.
    fn reserve_blobs(&self, sha256s: &[&crate::Sha256]) -> Result<std::collections::HashMap<crate::Sha256, bool>> = ops::blobs::reserve_blobs;
    /// For each upstream checksum of one algorithm, the blob the pool already holds, if any.
    fn resolve_known(&self, kind: ChecksumType, checksums: &[&str]) -> Result<std::collections::HashMap<String, KnownBlob>> = ops::blobs::resolve_known;
    /// Pool blobs whose package has this NEVRA and size, for upstreams that list a file under
    /// a checksum the catalogue has not seen: the caller verifies a candidate by hashing it.
    /// Keys are [`NevraSize::key`].
    fn candidates_by_nevra(&self, wanted: &[NevraSize]) -> Result<Vec<(String, KnownBlob)>> = ops::blobs::candidates_by_nevra;
    /// Of `sha256s`, the blobs a signature by one of `fingerprints` was verified on.
    fn verified_blobs(&self, sha256s: &[&crate::Sha256], fingerprints: &[&str]) -> Result<std::collections::HashSet<crate::Sha256>> = ops::blobs::verified_blobs;
    /// Records what signature checks found (key ids, and the trusted key that verified).
    fn record_signatures(&self, checked: &[SignatureRecord]) -> Result<()> = ops::blobs::record_signatures;

    /// Every repository the catalogue has seen, by name.
    fn repository_summaries(&self) -> Result<Vec<RepoSummary>> = ops::repositories::repository_summaries;
    /// One repository, or `None` if it was never synced.
    fn repository_summary(&self, name: &str) -> Result<Option<RepoSummary>> = ops::repositories::repository_summary;
    /// The newest `limit` syncs of a repository, newest first.
    fn recent_syncs(&self, name: &str, limit: i64) -> Result<Vec<SyncRecord>> = ops::repositories::recent_syncs;
    /// The repository's id, creating its row on first use.
    fn ensure_repository(&self, name: &str, kind: &str) -> Result<i64> = ops::repositories::ensure_repository;
    /// Removes a repository (no longer configured) from the catalogue in one transaction: its
    /// environment pointers, snapshots, versions and history. Hold its sync lock. The next
    /// cleanup frees the pool files only it needed.
    fn forget_repository(&self, name: &str) -> Result<ForgetReport> = ops::repositories::forget_repository;

    /// Per repository with a sync history: its newest run, newest finished run, last run
    /// that ended well, and when the first failure since started (for `chantal status`).
    fn sync_health(&self) -> Result<Vec<SyncHealth>> = ops::repositories::sync_health;

    /// Files and bytes the pool holds (on-demand blobs not fetched yet are not counted).
    fn pool_totals(&self) -> Result<(i64, i64)> = ops::integrity::pool_totals;
    /// Every blob the pool holds, or those some version of `repository` references, ordered
    /// by path; with `absent`, the on-demand blobs it does not hold yet instead.
    fn pool_blobs(&self, repository: Option<&str>, absent: bool) -> Result<Vec<BlobRecord>> = ops::integrity::pool_blobs;
    /// Of one version's packages, those the pool holds and those it does not hold yet.
    fn version_presence(&self, repository: &str, version: i64) -> Result<Presence> = ops::integrity::version_presence;
    /// The version ranges of every repository that serve each of `sha256s`.
    fn blob_uses(&self, sha256s: &[&crate::Sha256]) -> Result<Vec<BlobUse>> = ops::integrity::blob_uses;

    /// Packages matching `query`, each with every repository range that serves it, in no
    /// particular order.
    fn find_packages(&self, query: &PackageQuery<'_>) -> Result<Vec<FoundPackage>> = ops::packages::find_packages;
    /// The issuer key ids recorded for a package file's signatures (`None`: never checked)
    /// and the fingerprints of the trusted keys that verified them.
    fn package_signature(&self, sha256: &crate::Sha256) -> Result<(Option<String>, Vec<String>)> = ops::packages::package_signature;

    /// Takes the repository's sync lock and records `host` and `pid` as its holder in the same
    /// serialised step, or says who holds it (`None` only for a holder that recorded nothing).
    /// The lock is released when the returned guard drops or the process dies, however it
    /// dies.
    fn try_lock_sync(&self, name: &str, host: &str, pid: i32) -> Result<std::result::Result<SyncLock, Option<RunningSync>>> = ops::sync::try_lock_sync;
    /// Whether a process holds the repository's sync lock, without taking it.
    fn sync_lock_held(&self, name: &str) -> Result<bool> = ops::sync::sync_lock_held;
    /// Records the start of a sync. Call with the lock held: any other `running` row of the
    /// repository is then a leftover of a process that died, and is marked so.
    fn start_sync(&self, repository_id: i64, host: &str, pid: i32) -> Result<i64> = ops::sync::start_sync;
    /// Records how a sync ended.
    fn finish_sync(&self, sync_id: i64, f: &SyncFinish) -> Result<()> = ops::sync::finish_sync;
    /// The latest version and the upstream state it came from: the most recent sync that
    /// ended well. A partial sync records no repomd checksum, so the next run never takes it
    /// for a complete one.
    fn latest_state(&self, repository_id: i64) -> Result<LatestState> = ops::sync::latest_state;
    /// Checksums (upstream pkgid and sha256) of the packages in the latest version: these
    /// already have package rows, so a sync need not keep their fragments.
    fn latest_checksums(&self, repository_id: i64) -> Result<std::collections::HashSet<String>> = ops::sync::latest_checksums;
    /// Pool paths of every blob the latest version references (packages and repodata).
    /// With `with_absent`, also the on-demand packages the pool does not hold yet.
    fn latest_blob_paths(&self, repository_id: i64, with_absent: bool) -> Result<Vec<(String, i64)>> = ops::sync::latest_blob_paths;
    /// The latest version's packages with their identity, for retention.
    fn latest_content(&self, repository_id: i64) -> Result<Vec<ContentItem>> = ops::sync::latest_content;
    /// Streams the stored fragments of `content` ((sha256, href) pairs), ordered by href, to
    /// `f`: rows arrive one at a time, so memory does not grow with the repository.
    fn for_each_fragment(&self, content: &[(crate::Sha256, String)], f: impl FnMut(FragmentRow) -> Result<()>) -> Result<()> = ops::sync::for_each_fragment;
    /// The pool path of the latest version's repodata file of `kind`, if any.
    fn latest_metadata_path(&self, repository_id: i64, kind: &crate::rpm::MetadataKind) -> Result<Option<String>> = ops::sync::latest_metadata_path;
    /// The sha256 of each of the latest version's repodata files, by kind.
    fn latest_metadata_blobs(&self, repository_id: i64) -> Result<std::collections::HashMap<crate::rpm::MetadataKind, crate::Sha256>> = ops::sync::latest_metadata_blobs;

    /// Creates package rows (with their fragments) for blobs now in the pool; rows that exist
    /// already are left as they are. Read lazily so fragments need not sit in memory.
    fn insert_packages(&self, packages: &mut dyn Iterator<Item = Result<NewPackage>>) -> Result<u64> = ops::commit::insert_packages;
    /// Publishes a new version in one transaction: content and repodata rows (as ranges), the
    /// version row and the latest pointer (the version it replaces is stamped as retired, for
    /// the serving grace period). When the content and repodata equal the latest version's,
    /// nothing is written and the result has no version. The version's paths are checked as
    /// a whole first ([`crate::tree::check_layout`]): a tree that cannot be served is never
    /// published.
    fn commit_version(&self, input: CommitInput<'_>) -> Result<CommitResult> = ops::commit::commit_version;

    /// Moves an environment (in every repository the input names) in one transaction, and
    /// records it; readers hear of it when it commits.
    fn promote(&self, input: PromoteInput<'_>) -> Result<Promotion> = ops::environments::promote;
    /// Where environments point: every environment, or one; by environment then repository.
    fn environments(&self, environment: Option<&str>) -> Result<Vec<EnvPointer>> = ops::environments::environments;
    /// Every promotion of an environment, newest first.
    fn environment_history(&self, environment: &str) -> Result<Vec<Promotion>> = ops::environments::environment_history;

    /// Snapshots of one repository, or of all, ordered by repository then creation.
    fn snapshots(&self, repository: Option<&str>) -> Result<Vec<SnapshotRecord>> = ops::snapshots::snapshots;
    /// Names the repository's latest version. O(1): one row. Fails if the name is not one a
    /// snapshot may have ([`crate::names::check_snapshot_name`]), if the repository has no
    /// version yet, or if it already has a snapshot of that name.
    fn create_snapshot(&self, repository: &str, name: &str, description: Option<&str>) -> Result<SnapshotRecord> = ops::snapshots::create_snapshot;
    /// Names the latest version of each repository, in one transaction: all or none (a
    /// repository without a version, or one with a snapshot of that name, refuses the set).
    fn create_snapshots(&self, repositories: &[&str], name: &str, description: Option<&str>) -> Result<Vec<SnapshotRecord>> = ops::snapshots::create_snapshots;
    /// Removes a snapshot's name. Files are only ever removed by cleanup.
    fn delete_snapshot(&self, repository: &str, name: &str) -> Result<bool> = ops::snapshots::delete_snapshot;
    /// Removes snapshot `name` from each repository that has it, in one transaction; returns
    /// those it was removed from.
    fn delete_snapshots(&self, repositories: &[&str], name: &str) -> Result<Vec<String>> = ops::snapshots::delete_snapshots;
    /// Every version of every repository, with its commit time, by repository then number.
    fn versions(&self) -> Result<Vec<(String, i64, chrono::DateTime<chrono::Utc>)>> = ops::snapshots::versions;
    /// A version's summary.
    fn version_info(&self, repository: &str, version: i64) -> Result<Option<VersionInfo>> = ops::snapshots::version_info;
    /// Pool path and size of a version's repodata file of `kind` (e.g. `updateinfo`).
    fn version_metadata(&self, repository: &str, version: i64, kind: &crate::rpm::MetadataKind) -> Result<Option<(String, i64)>> = ops::snapshots::version_metadata;
    /// A version's installer-tree files (`.treeinfo`, `extra_files.json` and what they name):
    /// `(path, sha256)`, ordered by path.
    fn version_installer_tree(&self, repository: &str, version: i64) -> Result<Vec<(String, crate::Sha256)>> = ops::snapshots::version_installer_tree;
    /// Every package of a version, ordered by name, arch and EVR text.
    fn version_packages(&self, repository: &str, version: i64) -> Result<Vec<VersionPackage>> = ops::snapshots::version_packages;
    /// The signature key ids recorded for each package file of a version, by sha256.
    fn version_signers(&self, repository: &str, version: i64) -> Result<std::collections::HashMap<crate::Sha256, String>> = ops::snapshots::version_signers;
    /// The file tree of a version of a repository — packages at their hrefs plus repodata,
    /// each with its pool path, size and mtime (a package's build time; repodata: the
    /// version's creation time) — what chantal-fs serves and the exporter writes.
    fn version_tree(&self, repository: &str, version: i64) -> Result<crate::tree::Tree> = ops::snapshots::version_tree;
    /// Seals every version of the repository that has no manifest yet (made before chantal
    /// wrote manifests), one transaction each; returns how many.
    fn seal_missing(&self, repository_id: i64, repository: &str, seal: &Seal<'_>) -> Result<u64> = ops::seal::seal_missing;
    /// A version's rows in portable form (a bundle's), and how many of its packages are on
    /// demand (not in the pool yet).
    fn version_rows(&self, repository: &str, version: i64) -> Result<(crate::bundle::VersionRows, u64)> = ops::bundle::version_rows;
    /// Streams the package rows of these sha256s (those the catalogue has), by sha256.
    fn for_each_package(&self, sha256s: &[crate::Sha256], f: impl FnMut(NewPackage) -> Result<()>) -> Result<()> = ops::bundle::for_each_package;
    /// Commits a bundle's versions, snapshots and environment pointers in one transaction.
    fn import_versions(&self, input: &ImportInput<'_>) -> Result<ImportReport> = ops::bundle::import_versions;
    /// The tree id (the manifest's sha256) of each version of `repository` that has one.
    fn tree_ids(&self, repository: &str) -> Result<std::collections::HashMap<i64, crate::Sha256>> = ops::seal::tree_ids;

    /// Removes versions that are neither latest, nor a snapshot, nor latest until less than
    /// [`crate::SERVING_GRACE`] ago; the rows only they needed; package rows nothing
    /// references; then, in batches, pool files nothing references that were neither stored
    /// nor reused within the grace window or since a running sync started, each with its row
    /// in one transaction (file first, so a crash leaves the row and the next run finishes).
    fn cleanup(&self, run: CleanupRun<'_>) -> Result<CleanupReport> = ops::cleanup::cleanup;
}

impl Catalogue {
    /// Something that wakes readers (chantal-fs) soon after a new version is committed.
    pub fn listen_latest(&self) -> Result<LatestListener> {
        match &self.backend {
            Backend::Postgres(b) => b.listen_latest(),
            Backend::Sqlite(b) => b.listen_latest(),
        }
    }
}

/// Holds a repository's sync lock until dropped. PostgreSQL: a session-level advisory lock on a
/// connection of its own; SQLite: an `flock` on a file beside the catalogue. Either way the
/// kernel or the server releases it when the process dies, however it dies.
pub struct SyncLock {
    held: Held,
}

enum Held {
    Postgres(Box<postgres::Client>),
    File(#[allow(dead_code)] std::fs::File),
}

impl Drop for SyncLock {
    fn drop(&mut self) {
        // The server drops a session's advisory locks when its backend process ends, a moment
        // after the client closes the connection: release it explicitly, so the next sync of
        // the repository (right after this one) finds it free.
        if let Held::Postgres(client) = &mut self.held {
            let _ = client.batch_execute("SELECT pg_advisory_unlock_all()");
        }
    }
}

impl SyncLock {
    fn postgres(client: postgres::Client) -> SyncLock {
        SyncLock {
            held: Held::Postgres(Box::new(client)),
        }
    }

    fn file(file: std::fs::File) -> SyncLock {
        SyncLock {
            held: Held::File(file),
        }
    }
}

/// Wakes readers when a new version may have been committed: LISTEN/NOTIFY on PostgreSQL,
/// a cheap poll of `PRAGMA data_version` on SQLite.
pub struct LatestListener {
    inner: Listening,
}

enum Listening {
    Postgres(Box<postgres::Client>),
    Sqlite(sqlite::ChangeWatcher),
}

impl LatestListener {
    fn postgres(client: postgres::Client) -> LatestListener {
        LatestListener {
            inner: Listening::Postgres(Box::new(client)),
        }
    }

    fn sqlite(watcher: sqlite::ChangeWatcher) -> LatestListener {
        LatestListener {
            inner: Listening::Sqlite(watcher),
        }
    }

    /// Waits up to `timeout`; true if something was (or may have been) committed meanwhile.
    pub fn wait(&mut self, timeout: Duration) -> Result<bool> {
        match &mut self.inner {
            Listening::Postgres(client) => pg::wait_notifications(client, timeout),
            Listening::Sqlite(watcher) => watcher.wait(timeout),
        }
    }
}
