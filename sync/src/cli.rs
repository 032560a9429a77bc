//! Command-line definitions. The doc comments are the help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// chantal mirrors RPM repositories into a deduplicated sha256 pool, records every sync as an
/// immutable version in its catalogue (an embedded SQLite file, or PostgreSQL for several
/// hosts), and keeps snapshots for patch management.
#[derive(Debug, Parser)]
#[command(
    name = "chantal",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Configuration file.
    #[arg(
        long,
        global = true,
        env = "CHANTAL_CONFIG",
        default_value = chantal_common::config::DEFAULT_CONFIG_PATH,
        value_name = "PATH"
    )]
    pub config: PathBuf,

    /// Print nothing but errors (for cron).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print more detail.
    #[arg(short, long, global = true)]
    pub verbose: bool,

    /// How log lines on standard error look: plain lines (journald, cron mail), or one JSON
    /// object per line (time, level, repo, phase, message) for log shippers.
    #[arg(long, global = true, value_enum, env = "CHANTAL_LOG_FORMAT", default_value_t = LogFormat::Human, value_name = "FORMAT")]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the storage directories and apply all database migrations (idempotent).
    Init,
    /// Configured repositories and their catalogue state.
    #[command(subcommand)]
    Repo(RepoCommand),
    /// Snapshots: names for repository versions.
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// The catalogue database's schema.
    #[command(subcommand)]
    Db(DbCommand),
    /// Environments (config `environments:`): stable URLs that point at snapshots and move in
    /// one commit.
    #[command(subcommand)]
    Env(EnvCommand),
    /// The pool of package and repodata files.
    #[command(subcommand)]
    Pool(PoolCommand),
    /// Serve chantal-fs's requests for on-demand packages (`download.policy: on_demand`):
    /// fetch each from an upstream that lists it, once however many readers wait, verify it
    /// and put it in the pool. Listens on `fetch.socket` (default
    /// <storage.base_path>/run/fetchd.sock), for this user and root only. Runs until SIGTERM.
    Fetchd,
    /// Air-gap bundles: snapshots, with their names and environment pointers, carried into a
    /// disconnected chantal in a directory, checked end to end.
    #[command(subcommand)]
    Bundle(BundleCommand),
    /// Check a tree chantal serves against its signed manifest (`.chantal/manifest.json`):
    /// with --key the manifest's signature, then every listed file's size and sha256, and in a
    /// directory that nothing unlisted lies beside them. TARGET is a directory (a chantal-fs
    /// mount's tree, an export, a copy) or the http(s) URL of a tree. Needs no configuration.
    /// Exit status 1 with one line per bad path when anything differs.
    VerifyTree {
        /// The tree: a directory, or an http:// or https:// URL.
        #[arg(value_name = "TARGET")]
        target: String,
        /// Require a signature by this OpenPGP public key (the mirror's `publish.sign` key, as
        /// served at repodata/repomd.xml.key).
        #[arg(long, value_name = "KEYFILE")]
        key: Option<PathBuf>,
        /// Trust only this PEM CA bundle for https:// targets.
        #[arg(long, value_name = "FILE")]
        ca_cert: Option<PathBuf>,
        /// Files checked at once (default: 8 over HTTP, the number of cores for a directory).
        #[arg(long, value_name = "N")]
        jobs: Option<usize>,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Print a completion script for a shell on standard output (bash:
    /// `chantal completions bash > /etc/bash_completion.d/chantal`).
    Completions {
        #[arg(value_enum, value_name = "SHELL")]
        shell: Shell,
    },
    /// Write the man pages (chantal.1 and one per command) into DIR, or with --markdown print
    /// the command reference (for packagers and docs/COMMANDS.md).
    #[command(hide = true)]
    Manpages {
        #[arg(value_name = "DIR", required_unless_present = "markdown")]
        dir: Option<PathBuf>,
        #[arg(long)]
        markdown: bool,
    },
    /// Packages the mirror holds, and where each is served.
    #[command(subcommand)]
    Package(PackageCommand),
    /// Advisories (the upstream's updateinfo) and which trees hold their fixes.
    #[command(subcommand)]
    Advisory(AdvisoryCommand),
    /// The whole mirror on one screen: per repository its last success and attempt, state,
    /// latest version, snapshots and environments; the pool and the catalogue. Exit status 1
    /// when an enabled repository's last sync failed or its last success is older than
    /// --max-age (a Nagios/Icinga check, or a cron job that mails only then).
    Status {
        /// How old the last successful sync of an enabled repository may be (e.g. 12h, 2d).
        #[arg(long, value_name = "DURATION", default_value = "2d", value_parser = parse_duration)]
        max_age: std::time::Duration,
        #[command(flatten)]
        format: FormatArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Write a bundle into DIR: bundle.json (what it carries), the versions' catalogue rows,
    /// their manifests and the pool files (with --since, only those the base snapshot set
    /// lacks); bundle.json.asc when publish.sign is set. bundle.json is written last: a
    /// directory without it is unfinished, and running the command again resumes.
    #[command(group(clap::ArgGroup::new("what").required(true).args(["snapshot", "env"])))]
    Create {
        /// The directory to write (created; it must not hold a bundle already).
        #[arg(long, value_name = "DIR")]
        output: PathBuf,
        /// The snapshot (set) to carry: of the repositories named by --repo-id, or --all.
        #[arg(long, value_name = "NAME", requires = "which")]
        snapshot: Option<String>,
        /// Every repository that has the snapshot.
        #[arg(long, group = "which")]
        all: bool,
        /// A repository whose snapshot to carry (repeat for a set).
        #[arg(long, value_name = "NAME", group = "which", action = clap::ArgAction::Append)]
        repo_id: Vec<String>,
        /// The snapshots an environment points at, and the pointers themselves.
        #[arg(long, value_name = "ENV", conflicts_with_all = ["snapshot", "all", "repo_id"])]
        env: Option<String>,
        /// A snapshot set the importing side has already (imported earlier): only the files
        /// it does not contain are carried.
        #[arg(long, value_name = "NAME")]
        since: Option<String>,
    },
    /// Import a bundle: check its signature (required with --key), that the base it builds on
    /// is here, and every blob's sha256 while copying it into the pool; then commit its
    /// versions and snapshots (and move its environments) in one transaction, all or nothing.
    /// Importing a bundle twice changes nothing.
    Import {
        /// The bundle's directory.
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// Require bundle.json signed by this OpenPGP public key (the connected mirror's
        /// publish.sign key, as it serves it at repodata/repomd.xml.key).
        #[arg(long, value_name = "KEYFILE")]
        key: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum PoolCommand {
    /// Rehash pool files against the catalogue: report missing files, wrong sizes and hashes,
    /// and (checking the whole pool) files no catalogue row records. Exit status 1 if
    /// anything is wrong. Removes nothing.
    Verify {
        /// Only the files some version of this repository references.
        #[arg(long, value_name = "NAME")]
        repo_id: Option<String>,
        /// Check this percentage of the files, chosen at random (e.g. 5 for a nightly spot
        /// check).
        #[arg(long, value_name = "PERCENT", value_parser = parse_percent)]
        sample: Option<f64>,
        /// Fetch each missing or damaged file again from an upstream whose latest version
        /// still lists it, verify it, and put it back (the damaged copy is moved to
        /// data/damaged/); list what cannot be repaired with what it breaks.
        #[arg(long)]
        repair: bool,
        #[command(flatten)]
        format: FormatArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum PackageCommand {
    /// Packages by name glob (`kernel*`, case-insensitive), by a capability they provide, or
    /// by a file they contain; newest first, each with the repositories, versions, snapshots
    /// and environments that serve it.
    #[command(group(clap::ArgGroup::new("what").required(true).multiple(true).args(["pattern", "provides", "file"])))]
    Search {
        /// A name glob: `*` and `?` as in the shell.
        #[arg(value_name = "PATTERN")]
        pattern: Option<String>,
        /// A capability, exactly as the package's metadata spells it (`libssl.so.3()(64bit)`).
        #[arg(long, value_name = "CAP")]
        provides: Option<String>,
        /// A path the package contains (`/usr/bin/curl`).
        #[arg(long, value_name = "PATH")]
        file: Option<String>,
        /// Only packages some version of this repository holds.
        #[arg(long, value_name = "NAME")]
        repo_id: Option<String>,
        #[command(flatten)]
        format: FormatArg,
    },
    /// One package: its metadata, sha256, signature, and every tree that serves it.
    Show {
        /// name-[epoch:]version-release.arch, as `package search` prints it.
        #[arg(value_name = "NEVRA")]
        nevra: String,
        #[command(flatten)]
        format: FormatArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdvisoryCommand {
    /// Find an advisory (by id, or by a CVE it fixes) in the updateinfo of latest, snapshots
    /// and environments, and say for each of those trees whether it holds the fixed packages
    /// (or newer).
    #[command(group(clap::ArgGroup::new("which").required(true).args(["id", "cve"])))]
    Search {
        /// The advisory's id (RHSA-2024:1234, FEDORA-EPEL-2024-…).
        #[arg(value_name = "ID")]
        id: Option<String>,
        /// A CVE the advisory names.
        #[arg(long, value_name = "CVE")]
        cve: Option<String>,
        /// Only this repository.
        #[arg(long, value_name = "NAME")]
        repo_id: Option<String>,
        #[command(flatten)]
        format: FormatArg,
    },
}

/// A percentage in (0, 100].
fn parse_percent(s: &str) -> Result<f64, String> {
    match s.trim_end_matches('%').parse::<f64>() {
        Ok(p) if p > 0.0 && p <= 100.0 => Ok(p),
        _ => Err(format!("{s:?} is not a percentage above 0 and at most 100")),
    }
}

#[derive(Debug, Subcommand)]
pub enum EnvCommand {
    /// Point an environment at a snapshot (or at what another environment points at, or back
    /// where it was) in every repository named, in one commit.
    #[command(group(clap::ArgGroup::new("target").required(true).args(["snapshot", "from", "to_previous", "to_promotion"])))]
    Promote {
        /// The environment, as `environments:` lists it.
        #[arg(long = "env", value_name = "ENV")]
        env: String,
        /// The snapshot to point at (with --all or --repo-id).
        #[arg(long, value_name = "SNAPSHOT")]
        snapshot: Option<String>,
        /// Copy what this environment points at (with --all: make ENV identical to it,
        /// unsetting ENV where it points nowhere).
        #[arg(long, value_name = "ENV")]
        from: Option<String>,
        /// Undo the environment's last promotion (twice: redo it). Refused where a snapshot
        /// name has since been given to another version.
        #[arg(long)]
        to_previous: bool,
        /// Put the environment back as promotion ID (`env history` shows ids) left it.
        #[arg(long, value_name = "ID")]
        to_promotion: Option<i64>,
        /// Every enabled repository that has a version (with --snapshot: each must have it).
        #[arg(long, conflicts_with = "repo_id")]
        all: bool,
        /// A repository; repeat for several.
        #[arg(long, value_name = "NAME")]
        repo_id: Vec<String>,
    },
    /// Make an environment point nowhere in the repositories named (recorded in the history
    /// like a promotion): the way out for an environment or repository that left the
    /// configuration, whose snapshots it would otherwise pin.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["repo_id", "all"])))]
    Unset {
        /// The environment (also one no longer configured).
        #[arg(long = "env", value_name = "ENV")]
        env: String,
        /// Every repository it points in.
        #[arg(long)]
        all: bool,
        /// A repository (also one no longer configured); repeat for several.
        #[arg(long, value_name = "NAME")]
        repo_id: Vec<String>,
    },
    /// Each environment x repository -> snapshot, with when and by whom it was set
    /// (environments no longer configured included, marked so).
    List(FormatArg),
    /// Every promotion of an environment, newest first.
    History {
        /// The environment (also one no longer configured that has a history).
        #[arg(long = "env", value_name = "ENV")]
        env: String,
        #[command(flatten)]
        format: FormatArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum RepoCommand {
    /// One row per configured repository.
    List(FormatArg),
    /// Mirror repositories: fetch metadata and new packages, then commit a new version.
    Sync(SyncArgs),
    /// (Re)write the on-disk export (publish.latest_path, publish.snapshots_path): latest
    /// and every snapshot, repairing damaged or deleted trees.
    Export(ExportArgs),
    /// Print a dnf .repo stanza for clients of this mirror: baseurl, and gpgcheck,
    /// repo_gpgcheck and gpgkey from what the served tree holds.
    ClientConfig {
        /// The repository.
        #[arg(long, value_name = "NAME")]
        repo_id: String,
        /// Point at this snapshot instead of latest.
        #[arg(long, value_name = "SNAPSHOT", conflicts_with = "env")]
        snapshot: Option<String>,
        /// Point at an environment (`<repo>/env/<ENV>/`): the one .repo file a client keeps
        /// while the environment is promoted.
        #[arg(long = "env", value_name = "ENV")]
        env: Option<String>,
        /// Where clients reach the mirror's root (the URL of the chantal-fs mount, or the
        /// nginx location serving it): baseurl is URL/REPO/latest/. Default: publish.base_url.
        #[arg(long, value_name = "URL")]
        base_url: Option<String>,
    },
    /// Remove a repository that is no longer configured from the catalogue: its versions,
    /// snapshots and environment pointers (the next `db cleanup` frees its files).
    Forget {
        /// The repository's name as the catalogue has it.
        #[arg(long, value_name = "NAME")]
        repo_id: String,
    },
    /// A repository's effective configuration (secrets masked) and catalogue state.
    Show {
        /// Repository name.
        #[arg(long, value_name = "NAME")]
        repo_id: String,
        #[command(flatten)]
        format: FormatArg,
    },
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["repo_id", "all"])))]
pub struct ExportArgs {
    /// The repository to export.
    #[arg(long, value_name = "NAME")]
    pub repo_id: Option<String>,

    /// Every repository that sets publish:.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["repo_id", "all"])))]
pub struct SyncArgs {
    /// The repository to sync.
    #[arg(long, value_name = "NAME")]
    pub repo_id: Option<String>,

    /// Sync every enabled repository, one after another; a failure does not stop the others.
    #[arg(long)]
    pub all: bool,

    /// Commit a version without the packages that failed (exit status 2) instead of committing
    /// nothing.
    #[arg(long, conflicts_with = "dry_run")]
    pub allow_partial: bool,

    /// Fetch and verify the metadata and plan the sync, but download no package and commit
    /// nothing; print what a sync would do.
    #[arg(long, conflicts_with = "create_snapshot")]
    pub dry_run: bool,

    /// Then download every package of the repository's versions that the pool does not hold
    /// yet (`download.policy: on_demand` packages no client has read). With `policy:
    /// immediate` every sync does this.
    #[arg(long, conflicts_with = "dry_run")]
    pub download_missing: bool,

    /// After a successful sync (also a no-op one), name the repository's latest version.
    #[arg(long)]
    pub create_snapshot: bool,

    /// The snapshot's name (default: today's date, YYYY-MM-DD in UTC, with -2, -3, ... if
    /// taken).
    #[arg(long, value_name = "SNAPSHOT", requires = "create_snapshot")]
    pub snapshot_name: Option<String>,

    /// How `--dry-run` prints its plan: a summary with what comes from where (`-v`: every
    /// package), or JSON.
    #[arg(long, value_enum, default_value_t = Format::Table, requires = "dry_run")]
    pub format: Format,
}

#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Name the current version of one repository, of several (a set, in one commit: all or
    /// none), or of every enabled repository that has a version (--all). Copies nothing.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["repo_id", "all"])))]
    Create {
        /// A repository; repeat for a set.
        #[arg(long, value_name = "NAME")]
        repo_id: Vec<String>,
        /// Every enabled repository that has a version.
        #[arg(long)]
        all: bool,
        /// The snapshot's name: letters, digits, '.', '_' and '-', at most 128; not `latest`.
        #[arg(long, value_name = "SNAPSHOT")]
        name: String,
        /// Free text shown by list and show.
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
    },
    /// Snapshots of one repository, or of all.
    List {
        /// Only this repository's snapshots.
        #[arg(long, value_name = "NAME")]
        repo_id: Option<String>,
        #[command(flatten)]
        format: FormatArg,
    },
    /// One snapshot: version, packages, size, per-architecture counts, repomd revision.
    Show {
        /// The snapshot's name.
        #[arg(long, value_name = "SNAPSHOT")]
        name: String,
        /// Needed when several repositories have a snapshot of that name.
        #[arg(long, value_name = "NAME", conflicts_with = "all")]
        repo_id: Option<String>,
        /// The whole set: the snapshot of that name in every repository that has it.
        #[arg(long)]
        all: bool,
        /// Also list every package (NEVRA and sha256).
        #[arg(long)]
        packages: bool,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Remove a snapshot's name; its files go only through `db cleanup`.
    Delete {
        /// The snapshot's name.
        #[arg(long, value_name = "SNAPSHOT")]
        name: String,
        /// Needed when several repositories have a snapshot of that name.
        #[arg(long, value_name = "NAME", conflicts_with = "all")]
        repo_id: Option<String>,
        /// Remove the name from every repository that has it, in one commit.
        #[arg(long)]
        all: bool,
    },
    /// Packages added, removed and updated between two snapshots (or `latest`).
    Diff {
        /// A snapshot name, or `latest`.
        #[arg(long, value_name = "SNAPSHOT")]
        from: String,
        /// A snapshot name, or `latest`.
        #[arg(long, value_name = "SNAPSHOT")]
        to: String,
        /// Needed when the names exist in several repositories, and with `latest`.
        #[arg(long, value_name = "NAME", conflicts_with = "all")]
        repo_id: Option<String>,
        /// Two snapshot sets: every repository that has both, then the totals.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        format: FormatArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Apply pending migrations and list what was applied; with --to, copy the embedded
    /// SQLite catalogue into an empty PostgreSQL database instead.
    Migrate {
        /// An empty PostgreSQL database to copy the SQLite catalogue into
        /// (postgresql://user@host/db). The copy is verified; then set database.url to it.
        #[arg(long, value_name = "URL")]
        to: Option<String>,
    },
    /// Show the schema version and pending migrations.
    Status(FormatArg),
    /// Copy the SQLite catalogue to PATH while syncs and chantal-fs use it (SQLite's online
    /// backup; PATH is replaced only by a complete, checked copy). For PostgreSQL use pg_dump.
    Backup {
        /// The file to write (in an existing directory, the catalogue's own file name).
        #[arg(value_name = "PATH")]
        path: PathBuf,
    },
    /// Remove versions that are neither latest, nor a snapshot, nor latest until less than 10
    /// minutes ago; then pool files and partial downloads nothing references any more.
    Cleanup {
        /// Report what would be removed; remove nothing.
        #[arg(long)]
        dry_run: bool,
        /// Never remove files stored more recently than this (e.g. 30m, 1h, 2d, 0).
        #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_duration)]
        grace: std::time::Duration,
        /// Keep every version that was latest within this span, in every repository (so
        /// `at/<time>/` paths stay valid); default: each repository's
        /// retention.keep_versions_for (0).
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        keep_versions_for: Option<std::time::Duration>,
    },
}

pub use chantal_common::config::parse_duration;

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172800)));
        assert!(parse_duration("99999999999999999d").is_err());
        assert!(parse_duration("1w").is_err());
        assert!(parse_duration("soon").is_err());
    }
}

#[derive(Debug, Args)]
pub struct FormatArg {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}
