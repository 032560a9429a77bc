//! What the configuration means: the effective values after includes, defaults and
//! overrides, as the rest of chantal reads them.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Where the configuration is read from when neither `--config` nor `$CHANTAL_CONFIG` says.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/chantal/config.yaml";
/// Environment variable that overrides `database.url`.
pub const DATABASE_URL_ENV: &str = "CHANTAL_DATABASE_URL";

/// The effective configuration after includes, defaults and overrides.
#[derive(Debug, Clone)]
pub struct Config {
    /// The main configuration file.
    pub path: PathBuf,
    pub storage: StorageConfig,
    pub database: DatabaseConfig,
    pub download: DownloadConfig,
    /// `environments:` (e.g. test, prod): stable names `env promote` points at snapshots.
    pub environments: Vec<String>,
    pub metrics: MetricsConfig,
    /// `fetch:`: where chantal fetchd listens for chantal-fs.
    pub fetch: FetchConfig,
    /// Repositories in the order their files were read.
    pub repositories: Vec<RepoConfig>,
    /// Non-fatal findings (an include glob that matched nothing).
    pub warnings: Vec<String>,
}

/// `metrics:`.
#[derive(Debug, Clone, Default)]
pub struct MetricsConfig {
    /// `metrics.textfile`: node_exporter's textfile collector format, rewritten atomically
    /// after every sync and `pool verify`.
    pub textfile: Option<PathBuf>,
}

/// `fetch:`.
#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// `fetch.socket`, default `<storage.base_path>/run/fetchd.sock`: chantal-fs asks chantal
    /// fetchd for on-demand packages here.
    pub socket: PathBuf,
}

/// `storage:`.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// Root of everything chantal keeps on disk; the pool lives in `<base_path>/data`.
    pub base_path: PathBuf,
}

/// `database:`.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// `sqlite:///path`, a `postgresql://` URL or a libpq `host=... dbname=...` string; `None`
    /// when unset (the embedded SQLite catalogue below `storage.base_path`).
    pub url: Option<String>,
    /// Where the URL came from, for messages ("config.yaml:7" or "$CHANTAL_DATABASE_URL").
    pub origin: String,
}

/// `download:`.
#[derive(Debug, Clone)]
pub struct DownloadConfig {
    pub workers: usize,
    pub retries: u32,
    /// Time allowed without progress on one request.
    pub timeout: Duration,
    pub proxy: Option<String>,
    /// The repositories' default (`download.policy`).
    pub policy: DownloadPolicy,
}

/// When a package's file is fetched (`download.policy`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DownloadPolicy {
    /// By `repo sync`, before the version is committed.
    #[default]
    Immediate,
    /// When a client first reads it (chantal-fs asks `chantal fetchd`); `repo sync` fetches
    /// metadata only.
    OnDemand,
}

impl fmt::Display for DownloadPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DownloadPolicy::Immediate => "immediate",
            DownloadPolicy::OnDemand => "on_demand",
        })
    }
}

/// What kind of repository a file describes. Only RPM/DNF repositories exist today.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RepoType {
    #[default]
    Rpm,
}

impl fmt::Display for RepoType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RepoType::Rpm => "rpm",
        })
    }
}

/// `90s`, `30m`, `1h`, `2d`, or a number of seconds.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 30m, 1h or 2d"))?;
    let per = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use s, m, h or d)")),
    };
    let secs = n
        .checked_mul(per)
        .ok_or_else(|| format!("{s:?} is too long a duration"))?;
    Ok(std::time::Duration::from_secs(secs))
}

/// The embedded catalogue's file name below `storage.base_path`.
pub const DEFAULT_SQLITE_FILE: &str = "catalog.db";

/// The URL of the default embedded catalogue below `base_path`.
pub fn default_database_url(base_path: &Path) -> String {
    format!("sqlite://{}", base_path.join(DEFAULT_SQLITE_FILE).display())
}

/// A span of time in the configuration: `90s`, `30m`, `1h`, `2d`, or a number of seconds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Span(pub Duration);

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Secs(n) => Ok(Span(Duration::from_secs(n))),
            Raw::Text(t) => parse_duration(&t)
                .map(Span)
                .map_err(serde::de::Error::custom),
        }
    }
}

impl Serialize for Span {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_u64(self.0.as_secs())
    }
}

/// `retention:`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    #[serde(default)]
    pub policy: Policy,
    #[serde(default)]
    pub deleted_packages: DeletedPackages,
    /// With `keep-last`: how many of the highest EVRs of each name.arch stay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_last: Option<u32>,
    /// `db cleanup` keeps every version that was latest within this span (so `at/<time>/`
    /// paths stay valid); 0 by default.
    #[serde(default)]
    pub keep_versions_for: Span,
}

/// `retention.policy`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    #[default]
    Mirror,
    NewestOnly,
    KeepAll,
    /// The `retention.keep_last` highest EVRs of each name.arch upstream has had.
    KeepLast,
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Policy::Mirror => "mirror",
            Policy::NewestOnly => "newest-only",
            Policy::KeepAll => "keep-all",
            Policy::KeepLast => "keep-last",
        })
    }
}

/// `filters:`: which packages a repository takes from upstream at all, by name.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    /// Globs on the package name; `None`: every name.
    pub include: Option<Vec<glob::Pattern>>,
    pub exclude: Vec<glob::Pattern>,
    /// Drop source packages even when `rpm.architectures` lists `src`.
    pub exclude_source: bool,
}

impl Filters {
    /// Whether a package of this name and architecture passes the filters.
    pub fn keeps(&self, name: &str, arch: &str) -> bool {
        if self.exclude_source && (arch == "src" || arch == "nosrc") {
            return false;
        }
        let included = self
            .include
            .as_ref()
            .is_none_or(|globs| globs.iter().any(|g| g.matches(name)));
        included && !self.exclude.iter().any(|g| g.matches(name))
    }

    /// Whether any filter is set.
    pub fn is_active(&self) -> bool {
        self.include.is_some() || !self.exclude.is_empty() || self.exclude_source
    }

    /// The filters as written, for the settings fingerprint and `repo show`.
    pub fn describe(&self) -> String {
        let list = |v: &[glob::Pattern]| {
            v.iter()
                .map(|p| p.as_str().to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        format!(
            "include={};exclude={};exclude_source={}",
            self.include
                .as_deref()
                .map_or_else(|| "*".to_string(), list),
            list(&self.exclude),
            u8::from(self.exclude_source)
        )
    }
}

/// `retention.deleted_packages`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeletedPackages {
    #[default]
    Remove,
    Keep,
}

impl fmt::Display for DeletedPackages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeletedPackages::Remove => "remove",
            DeletedPackages::Keep => "keep",
        })
    }
}

/// `rpm.installer_tree`: whether a sync mirrors the upstream's installer tree (`.treeinfo`,
/// `images/`, the files `extra_files.json` lists) when it has one.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstallerTree {
    #[default]
    Auto,
    Skip,
}

impl fmt::Display for InstallerTree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InstallerTree::Auto => "auto",
            InstallerTree::Skip => "skip",
        })
    }
}

/// `publish.link`: how exported trees refer to pool files.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkMode {
    #[default]
    Hardlink,
    Copy,
    Symlink,
}

impl fmt::Display for LinkMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LinkMode::Hardlink => "hardlink",
            LinkMode::Copy => "copy",
            LinkMode::Symlink => "symlink",
        })
    }
}

/// One configured repository.
#[derive(Debug, Clone)]
pub struct RepoConfig {
    pub name: String,
    pub kind: RepoType,
    pub enabled: bool,
    /// Base URL without trailing slash; `repodata/repomd.xml` is below it.
    pub url: String,
    /// Per-repository proxy, overriding `download.proxy`.
    pub proxy: Option<String>,
    /// `download.policy` of the repository's file, overriding the main configuration's.
    pub download_policy: Option<DownloadPolicy>,
    pub credentials: Credentials,
    pub rpm: RpmOptions,
    pub filters: Filters,
    pub retention: Retention,
    /// The on-disk export (`publish.latest_path` / `snapshots_path`).
    pub publish: Option<Publish>,
    /// `publish.sign`: sign every repomd.xml published.
    pub sign: Option<SignConfig>,
    /// `publish.base_url`: where clients reach the mirror's trees (`repo client-config`).
    pub base_url: Option<String>,
    /// The file this repository was defined in.
    pub source: PathBuf,
    /// The line of `name:` in that file.
    pub line: usize,
}

/// `credentials:`: how chantal authenticates to the upstream.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub auth: Auth,
    /// A private CA to trust instead of the system roots.
    pub ca_cert: Option<CredentialFile>,
}

/// The authentication part of `credentials:`.
#[derive(Debug, Clone)]
pub enum Auth {
    None,
    Basic {
        username: String,
        password: String,
    },
    ClientCert {
        cert: CredentialFile,
        key: CredentialFile,
    },
}

/// A file named by `credentials:`, with where it was named so a missing file is reported at
/// the right line when the repository is used.
#[derive(Debug, Clone)]
pub struct CredentialFile {
    pub path: PathBuf,
    pub key: &'static str,
    pub line: usize,
}

/// `rpm:`.
#[derive(Debug, Clone)]
pub struct RpmOptions {
    /// `None`: every architecture but source. Otherwise the listed ones plus `noarch`.
    pub architectures: Option<Vec<String>>,
    pub gpgcheck: bool,
    pub gpgkey_url: Option<String>,
    /// Where the repository's trusted keys come from: `gpgkey_url` first, then `gpgkeys`.
    pub keys: Vec<KeySource>,
    /// Full primary-key fingerprints (upper-case hex) the keys are limited to; empty: every
    /// key the sources hold.
    pub gpgkey_fingerprints: Vec<String>,
    pub repo_gpgcheck: bool,
    pub installer_tree: InstallerTree,
}

/// `publish.sign`: how repomd.xml gets the mirror's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignConfig {
    /// An OpenPGP secret key file, signed in process.
    Key {
        key: PathBuf,
        passphrase_file: Option<PathBuf>,
    },
    /// A command run with the file's path, writing the armored signature to stdout; the
    /// public key is served to clients and checks every signature it makes.
    Command {
        command: PathBuf,
        public_key: PathBuf,
        /// How long the command may run before it is killed (`publish.sign.timeout`).
        timeout: Duration,
    },
}

/// Default of `publish.sign.timeout`.
pub const SIGN_TIMEOUT: Duration = Duration::from_secs(60);

/// One place a repository's public keys are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// http(s):// (fetched with the repository's credentials and CA) or file://.
    Url(String),
    /// A local file, relative paths taken from the configuration file's directory.
    File(PathBuf),
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Url(u) => f.write_str(u),
            KeySource::File(p) => write!(f, "{}", p.display()),
        }
    }
}

impl RpmOptions {
    /// Whether syncs check anything against the repository's keys.
    pub fn checks_signatures(&self) -> bool {
        self.gpgcheck || self.repo_gpgcheck
    }

    /// Whether a package of architecture `arch` belongs in the repository: `noarch` always,
    /// source packages only when listed, others when listed or when no list is given.
    pub fn keeps_arch(&self, arch: &str) -> bool {
        let is_source = arch == "src" || arch == "nosrc";
        match &self.architectures {
            None => !is_source,
            Some(list) => arch == "noarch" || list.iter().any(|a| a == arch),
        }
    }
}

/// `publish:`: paths of the optional on-disk export.
#[derive(Debug, Clone)]
pub struct Publish {
    pub latest_path: Option<PathBuf>,
    pub snapshots_path: Option<PathBuf>,
    /// `<environments_path>/<env>`: a symlink to the exported snapshot the environment
    /// points at.
    pub environments_path: Option<PathBuf>,
    pub link: LinkMode,
}

impl RepoConfig {
    /// The proxy this repository's requests go through, if any.
    /// When this repository's packages are fetched: its own `download.policy`, else the main
    /// configuration's.
    pub fn download_policy(&self, download: &DownloadConfig) -> DownloadPolicy {
        self.download_policy.unwrap_or(download.policy)
    }

    pub fn effective_proxy<'a>(&'a self, download: &'a DownloadConfig) -> Option<&'a str> {
        self.proxy.as_deref().or(download.proxy.as_deref())
    }

    /// Every credentials file this repository names.
    pub fn credential_files(&self) -> Vec<&CredentialFile> {
        let mut files = Vec::new();
        if let Auth::ClientCert { cert, key } = &self.credentials.auth {
            files.push(cert);
            files.push(key);
        }
        files.extend(self.credentials.ca_cert.as_ref());
        files
    }

    /// Checks that every credentials file exists and is readable; the error names the
    /// configuration file, line and key. Called when the repository is used, not at load time,
    /// so one repository's missing certificate does not stop work on the others.
    pub fn check_credential_files(&self) -> Result<()> {
        for file in self.credential_files() {
            if let Err(err) = std::fs::File::open(&file.path) {
                return Err(Error::Config {
                    file: self.source.clone(),
                    line: file.line,
                    key: format!("credentials.{}", file.key),
                    message: format!("cannot read {}: {err}", file.path.display()),
                });
            }
        }
        Ok(())
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: None,
            origin: "unset".into(),
        }
    }
}
