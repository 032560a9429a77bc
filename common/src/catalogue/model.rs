//! The values the catalogue API takes and returns, the same for every backend.

use chrono::{DateTime, Utc};

use crate::rpm::Nevra;
use crate::Sha256;

/// Of a version's packages, those the pool holds and those it does not hold yet (on-demand
/// packages no client has read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Presence {
    pub local: i64,
    pub local_bytes: i64,
    pub absent: i64,
    pub absent_bytes: i64,
}

/// A blob as the catalogue records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRecord {
    pub sha256: Sha256,
    pub size: i64,
    /// Relative to `<base_path>/data`.
    pub path: String,
}

/// A range of versions of a repository that serves a blob: a package or repodata row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobUse {
    pub sha256: Sha256,
    pub repository: String,
    /// Where the versions serve it, and where the upstream listed it.
    pub href: String,
    /// The first version that holds it.
    pub added_in: i64,
    /// The first version that no longer does (`None`: latest still holds it).
    pub removed_in: Option<i64>,
}

/// What `find_packages` looks for; every condition given must hold.
#[derive(Debug, Clone, Copy, Default)]
pub struct PackageQuery<'a> {
    /// A name glob (`*`, `?`), matched without regard to ASCII case.
    pub name_glob: Option<&'a str>,
    /// Exact names (any of them).
    pub names: &'a [&'a str],
    pub nevra: Option<&'a crate::rpm::Nevra>,
    /// A capability the package provides, exactly as its metadata spells it.
    pub provides: Option<&'a str>,
    /// A path the package contains (from primary.xml and filelists.xml).
    pub file: Option<&'a str>,
    /// Only packages some version of this repository holds.
    pub repository: Option<&'a str>,
    /// Also return the package's primary.xml fragment.
    pub with_fragment: bool,
}

/// A package row and every repository range that serves it.
#[derive(Debug, Clone)]
pub struct FoundPackage {
    pub id: i64,
    pub nevra: crate::rpm::Nevra,
    pub sha256: Sha256,
    pub size: i64,
    pub build_time: Option<i64>,
    pub primary_xml: Option<String>,
    pub places: Vec<PackagePlace>,
}

/// Versions `added_in <= N < removed_in` of a repository serve a package at `href`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackagePlace {
    pub repository: String,
    pub href: String,
    pub added_in: i64,
    pub removed_in: Option<i64>,
}

impl PackagePlace {
    /// Whether version `v` of the repository holds the package.
    pub fn holds(&self, v: i64) -> bool {
        v >= self.added_in && self.removed_in.is_none_or(|r| v < r)
    }
}

/// What a cleanup removed (or, with `dry_run`, would remove).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanupReport {
    pub versions: i64,
    pub content_rows: i64,
    pub metadata_rows: i64,
    pub packages: i64,
    /// Pool files removed, with their rows.
    pub blobs: i64,
    pub bytes: i64,
    /// Blobs kept only because of the grace window or a running sync.
    pub protected: i64,
    /// Versions kept only because they were latest until less than the serving grace period
    /// ago (clients that read their repomd.xml may still fetch their files).
    pub serving: i64,
    /// Versions kept only because they were latest within their repository's
    /// `keep_versions_for`.
    pub windowed: i64,
    /// Files that could not be removed, with why: their rows stay, so the next cleanup tries
    /// again.
    pub failed: Vec<(String, String)>,
    /// Stopped early when asked to (SIGINT/SIGTERM): what was done is complete and
    /// consistent, and the next cleanup goes on from there.
    pub interrupted: bool,
}

/// How a cleanup runs.
pub struct CleanupRun<'a> {
    /// Files stored or reused more recently than this are kept.
    pub grace: std::time::Duration,
    /// Count what would go; remove nothing.
    pub dry_run: bool,
    /// Removes one pool file (path relative to `<base_path>/data`); called inside the
    /// transaction that deletes its row, so a crash leaves the row and the next run retries.
    /// A file that is already gone is success.
    pub remove: &'a mut dyn FnMut(&str) -> std::io::Result<()>,
    /// Checked between batches: true stops the cleanup after the current batch.
    pub stop: &'a dyn Fn() -> bool,
    /// Per repository: keep every version that was latest within this span.
    pub keep_versions_for: &'a [(String, std::time::Duration)],
}

/// A package row to create (the blob is already in the pool). A bundle's `packages.jsonl`
/// carries these, one JSON object a line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPackage {
    pub sha256: Sha256,
    pub nevra: Nevra,
    pub checksum_type: String,
    pub checksum: String,
    pub size_package: i64,
    pub size_installed: Option<i64>,
    pub size_archive: Option<i64>,
    pub time_file: Option<i64>,
    pub time_build: Option<i64>,
    pub sourcerpm: Option<String>,
    pub primary_xml: String,
    pub filelists_xml: Option<String>,
    pub other_xml: Option<String>,
}

/// A repodata file of the new version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMetadata {
    pub kind: crate::rpm::MetadataKind,
    pub blob_sha256: Sha256,
    pub location_href: String,
}

/// Everything the commit of a new version needs.
pub struct CommitInput<'a> {
    pub repository_id: i64,
    pub repository: &'a str,
    pub sync_id: i64,
    /// The complete content of the new version: (package sha256, location href).
    pub content: &'a [(Sha256, String)],
    /// The complete repodata of the new version.
    pub metadata: &'a [NewMetadata],
    pub repomd_revision: Option<&'a str>,
    /// The sha256 of the upstream repomd.xml the version was made from (for its manifest).
    pub upstream_repomd: Option<&'a Sha256>,
    /// Where the version's manifest goes, and who signs it.
    pub seal: &'a Seal<'a>,
}

/// How a version is sealed ([`crate::tree_manifest`]): where its manifest is written (the
/// pool, through its `seal_writer`), and with `publish.sign` the signer, which
/// returns the armored detached signature of the bytes given (which are the content of the
/// file at the path given).
pub struct Seal<'a> {
    pub write: &'a SealWriter<'a>,
    pub sign: Option<&'a Signer<'a>>,
}

/// Writes bytes into the pool as a file of the name given.
pub type SealWriter<'a> = dyn Fn(&[u8], &str) -> Result<SealedFile, crate::Error> + 'a;
/// Signs bytes (the content of the file at the path given): the armored detached signature.
pub type Signer<'a> = dyn Fn(&std::path::Path, &[u8]) -> Result<Vec<u8>, String> + 'a;

/// A file a seal wrote: recorded in the commit's transaction, settled once it committed.
pub struct SealedFile {
    pub blob: StoredBlob,
    /// Where it is.
    pub path: std::path::PathBuf,
    /// Run after the transaction committed (the pool drops the file's temporary name).
    pub settle: Box<dyn FnOnce() -> Result<(), crate::Error>>,
}

/// What the commit did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CommitResult {
    /// The new version, or `None` when nothing changed.
    pub version: Option<i64>,
    pub added: i64,
    pub removed: i64,
    pub unchanged: i64,
}

/// What the catalogue knows of one repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoSummary {
    pub name: String,
    pub kind: String,
    pub latest_version: Option<i64>,
    /// Packages in the latest version (0 before the first sync).
    pub packages: i64,
    /// Bytes of those packages.
    pub total_size: i64,
    /// End of the last sync that succeeded (changed something or found nothing to do).
    pub last_success: Option<DateTime<Utc>>,
    /// Snapshots of this repository.
    pub snapshots: i64,
}

/// How a sync run stands or ended (`sync_history.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SyncStatus {
    /// Started and not finished: running, or killed (then its lock is free).
    #[default]
    Running,
    /// Committed a new version.
    Success,
    /// Nothing changed upstream.
    UpToDate,
    /// Committed a version without the packages that failed (`--allow-partial`).
    Partial,
    Failed,
    /// Stopped by a signal, or found dead by the next run.
    Interrupted,
}

impl SyncStatus {
    /// Every status, as the schema's CHECK lists them.
    pub const ALL: [SyncStatus; 6] = [
        SyncStatus::Running,
        SyncStatus::Success,
        SyncStatus::UpToDate,
        SyncStatus::Partial,
        SyncStatus::Failed,
        SyncStatus::Interrupted,
    ];

    /// The runs whose result a later sync may build on ("up to date" compares against them).
    pub const ENDED_WELL: [SyncStatus; 3] = [
        SyncStatus::Success,
        SyncStatus::UpToDate,
        SyncStatus::Partial,
    ];

    /// The name stored in the catalogue and shown by `repo show`.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncStatus::Running => "running",
            SyncStatus::Success => "success",
            SyncStatus::UpToDate => "up-to-date",
            SyncStatus::Partial => "partial",
            SyncStatus::Failed => "failed",
            SyncStatus::Interrupted => "interrupted",
        }
    }

    /// The status stored as `s`.
    pub fn parse(s: &str) -> Option<SyncStatus> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// `'success', 'up-to-date', 'partial'`: a list for SQL's `IN (...)`.
    pub fn sql_list(statuses: &[SyncStatus]) -> String {
        statuses
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl std::fmt::Display for SyncStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of sync history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRecord {
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub status: SyncStatus,
    pub host: String,
    pub pid: i32,
    pub version: Option<i64>,
    pub added: i64,
    pub removed: i64,
    pub unchanged: i64,
    pub bytes_downloaded: i64,
    pub error: Option<String>,
    /// Upstream packages the content filters dropped.
    pub excluded: i64,
    /// Packages that could not be downloaded or verified.
    pub failed: i64,
}

/// A repository's sync history as `chantal status` judges it.
#[derive(Debug, Clone)]
pub struct SyncHealth {
    pub repository: String,
    /// The newest run: `running` while one is under way, or if its process died.
    pub newest: SyncRecord,
    /// The newest run that finished.
    pub last_finished: Option<SyncRecord>,
    /// The newest run that ended well (success, up to date, partial).
    pub last_success: Option<SyncRecord>,
    /// When the first failed or interrupted run after the last success started.
    pub failing_since: Option<DateTime<Utc>>,
}

/// One snapshot with the size of the version it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRecord {
    pub repository: String,
    pub name: String,
    pub version: i64,
    pub packages: i64,
    pub total_size: i64,
    pub created_at: DateTime<Utc>,
    pub description: Option<String>,
}

/// One package of a version, as `snapshot show --packages` and `snapshot diff` need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionPackage {
    pub nevra: Nevra,
    pub sha256: Sha256,
    pub location_href: String,
}

/// What `env promote` moves an environment to.
#[derive(Debug, Clone, Copy)]
pub enum PromoteTarget<'a> {
    /// The snapshot of this name, in each repository named.
    Snapshot(&'a str),
    /// What another environment points at.
    From(&'a str),
    /// What the environment pointed at before its last promotion (pointing nowhere, where it
    /// did).
    Previous,
    /// The environment as promotion N (one of its own) left it.
    Promotion(i64),
    /// Nowhere: the environment's pointers go (`env unset`).
    Unset,
}

/// One promotion to make.
#[derive(Debug, Clone, Copy)]
pub struct PromoteInput<'a> {
    pub environment: &'a str,
    pub target: PromoteTarget<'a>,
    /// The repositories to move; empty: every repository the target concerns (where the
    /// source points for `From`, where the environment points for `Unset`, those the
    /// restored promotions moved for `Previous` and `Promotion`).
    pub repositories: &'a [&'a str],
    /// With `From`: make the environment identical to the source, unsetting it where the
    /// source points nowhere.
    pub exact: bool,
    /// Who promotes (a user name).
    pub set_by: &'a str,
}

/// A promotion made (or read from the history).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Promotion {
    pub id: i64,
    pub environment: String,
    /// `snapshot N`, `environment E`, `rollback of promotion P`, `state after promotion P`
    /// or `unset`.
    pub source: String,
    pub set_at: DateTime<Utc>,
    pub set_by: String,
    pub changes: Vec<EnvChange>,
}

/// What a promotion did to one repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvChange {
    pub repository: String,
    /// The snapshot set and its version; none when the promotion unset the environment.
    pub snapshot: Option<String>,
    pub version: Option<i64>,
    /// The snapshot the environment pointed at before, if any, and the version it had then
    /// (unknown for a few rows recorded before versions were).
    pub previous: Option<String>,
    pub previous_version: Option<i64>,
}

/// A file that is now in the pool, as the catalogue records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    pub sha256: Sha256,
    pub size: u64,
    /// Path relative to `<base_path>/data` (what the catalogue records).
    pub rel_path: String,
    /// False when an identical file was already present and nothing was written.
    pub written: bool,
}

/// What `repo forget` removed from the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ForgetReport {
    pub versions: i64,
    pub snapshots: i64,
    pub environments: i64,
}

/// Where an environment points in one repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvPointer {
    pub environment: String,
    pub repository: String,
    pub snapshot: String,
    pub version: i64,
    pub set_at: DateTime<Utc>,
    pub set_by: String,
    pub promotion: i64,
}

/// What a signature check found on a package file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureRecord {
    pub sha256: Sha256,
    /// The issuer key ids of its signatures, space-separated.
    pub key_ids: String,
    /// The trusted primary key (full fingerprint) whose signature verified, if one did.
    pub verified_by: Option<String>,
}

/// A version of a repository and what describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionInfo {
    pub repository: String,
    pub version: i64,
    pub packages: i64,
    pub total_size: i64,
    pub created_at: DateTime<Utc>,
    pub repomd_revision: Option<String>,
}

/// Who holds a repository's sync lock, as far as the history says.
#[derive(Debug, Clone)]
pub struct RunningSync {
    pub host: String,
    pub pid: i32,
    pub started_at: DateTime<Utc>,
}

/// What the last successful sync left behind.
#[derive(Debug, Clone, Default)]
pub struct LatestState {
    pub version: Option<i64>,
    /// sha256 of the upstream repomd.xml the latest version came from.
    pub repomd_sha256: Option<Sha256>,
    /// The filter/retention settings it was computed with.
    pub settings: Option<String>,
}

/// A blob the pool already holds for an upstream checksum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownBlob {
    pub sha256: Sha256,
    pub size: i64,
    pub path: String,
    /// Whether a `packages` row (with fragments) exists for it.
    pub has_package: bool,
}

/// How a sync ended, for `sync_history`.
#[derive(Debug, Clone, Default)]
pub struct SyncFinish {
    pub status: SyncStatus,
    pub version: Option<i64>,
    pub added: i64,
    pub removed: i64,
    pub unchanged: i64,
    pub bytes_downloaded: i64,
    pub error: Option<String>,
    pub repomd_sha256: Option<Sha256>,
    pub settings: Option<String>,
    /// Upstream packages the content filters dropped.
    pub excluded: i64,
    /// Packages that could not be downloaded or verified.
    pub failed: i64,
}

/// A package's identity and size, for finding the same file under another checksum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NevraSize {
    pub nevra: Nevra,
    pub size: i64,
}

impl NevraSize {
    /// `name-epoch:version-release.arch/size`: how candidates are matched to the packages
    /// asked for.
    pub fn key(&self) -> String {
        let n = &self.nevra;
        format!(
            "{}-{}:{}-{}.{}/{}",
            n.name, n.epoch, n.version, n.release, n.arch, self.size
        )
    }
}

pub type ContentItem = VersionPackage;

/// A package's stored metadata, for writing repodata.
#[derive(Debug, Clone)]
pub struct FragmentRow {
    pub location_href: String,
    pub pkgid: String,
    pub nevra: Nevra,
    pub primary_xml: String,
    pub filelists_xml: Option<String>,
    pub other_xml: Option<String>,
}

/// One version a bundle carries, checked by the caller against the bundle's signed index.
pub struct ImportVersion<'a> {
    pub rows: &'a crate::bundle::VersionRows,
    /// The tree id the index names (the carried manifest's sha256).
    pub tree_id: &'a Sha256,
    /// The carried manifest: the imported tree must be exactly what it lists.
    pub manifest: &'a crate::tree_manifest::TreeManifest,
    pub snapshot: &'a crate::bundle::SnapshotEntry,
}

/// What a bundle import commits, in one transaction.
pub struct ImportInput<'a> {
    pub versions: Vec<ImportVersion<'a>>,
    /// (environment, repository, snapshot name) pointers to set.
    pub environments: Vec<(String, String, String)>,
    /// Who imports (recorded with the environments' promotions).
    pub set_by: &'a str,
}

/// What a bundle import did.
#[derive(Debug, Default)]
pub struct ImportReport {
    /// (repository, version) committed now.
    pub imported: Vec<(String, i64)>,
    /// (repository, version) that were here already, with the same tree.
    pub present: Vec<(String, i64)>,
    /// (repository, snapshot name) named now.
    pub snapshots: Vec<(String, String)>,
    pub promotions: Vec<Promotion>,
}
