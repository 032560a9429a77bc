//! Configuration: where it is read from, what it means, and every mistake reported as one line
//! naming the file, the line and the key.
//!
//! The main file holds global settings and `include:` globs; each included file holds either
//! global settings (the same keys; later files override earlier ones key by key) or exactly one
//! repository (a file with a top-level `name:`). Relative paths are taken relative to the
//! directory of the file that names them.

mod file;
mod locate;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
pub use file::{
    check_repo_name, check_snapshot_name, valid_name, MAX_REPO_NAME, MAX_SNAPSHOT_NAME,
    RESERVED_SNAPSHOT_NAMES,
};
use file::{CredentialsType, GlobalFile, RepoFile};

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
    /// Repositories in the order their files were read.
    pub repositories: Vec<RepoConfig>,
    /// Non-fatal findings (an include glob that matched nothing).
    pub warnings: Vec<String>,
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

impl Config {
    /// Reads `path` and everything it includes. `$CHANTAL_DATABASE_URL`, when set and not
    /// empty, replaces `database.url`.
    pub fn load(path: &Path) -> Result<Config> {
        let env_url = std::env::var(DATABASE_URL_ENV)
            .ok()
            .filter(|s| !s.is_empty());
        Self::load_with_database_override(path, env_url)
    }

    /// [`Config::load`] with the environment override passed in (tests set it explicitly).
    pub fn load_with_database_override(path: &Path, env_url: Option<String>) -> Result<Config> {
        let text = read(path)?;
        if is_empty(&text) {
            // Running on defaults from an empty file is never what was meant (a truncated
            // copy, a template not filled in).
            return Err(Error::Config {
                file: path.to_path_buf(),
                line: 1,
                key: String::new(),
                message: "the configuration file is empty: set at least storage.base_path (see contrib/examples/config.yaml)".into(),
            });
        }
        let main: GlobalFile = parse(path, &text)?;
        let mut globals = Globals::default();
        globals.apply(path, &text, &main);

        let mut warnings = Vec::new();
        let mut repositories: Vec<RepoConfig> = Vec::new();
        let mut seen: HashMap<String, (PathBuf, usize)> = HashMap::new();
        let base_dir = parent_dir(path);
        if let Some(include) = &main.include {
            for pattern in include.patterns() {
                for file in expand_include(path, &text, &base_dir, pattern, &mut warnings)? {
                    let text = read(&file)?;
                    if is_empty(&text) {
                        warnings.push(format!(
                            "{}: empty configuration file, ignored",
                            file.display()
                        ));
                        continue;
                    }
                    if is_repository_file(&text) {
                        let repo = parse_repo(&file, &text)?;
                        if let Some((first, line)) = seen.get(&repo.name) {
                            return Err(Error::Config {
                                file: file.clone(),
                                line: repo.line,
                                key: "name".into(),
                                message: format!(
                                    "duplicate repository name '{}' (first defined at {}:{line})",
                                    repo.name,
                                    first.display()
                                ),
                            });
                        }
                        seen.insert(repo.name.clone(), (file.clone(), repo.line));
                        repositories.push(repo);
                    } else {
                        let global: GlobalFile = parse(&file, &text)?;
                        if global.include.is_some() {
                            return Err(Error::Config {
                                line: locate::line_of(&text, &["include"]),
                                file,
                                key: "include".into(),
                                message: "include is only allowed in the main configuration file"
                                    .into(),
                            });
                        }
                        globals.apply(&file, &text, &global);
                    }
                }
            }
        }

        let environments = match globals.environments.take() {
            None => Vec::new(),
            Some((names, file, line)) => {
                let mut seen = std::collections::HashSet::new();
                for n in &names {
                    let bad = crate::names::check_env_name(n).err().or_else(|| {
                        (!seen.insert(n.as_str())).then(|| format!("{n:?} is listed twice"))
                    });
                    if let Some(message) = bad {
                        return Err(Error::Config {
                            file,
                            line,
                            key: "environments".into(),
                            message,
                        });
                    }
                }
                names
            }
        };
        let database = match env_url {
            Some(url) => DatabaseConfig {
                url: Some(url),
                origin: format!("${DATABASE_URL_ENV}"),
            },
            None => globals.database,
        };
        Ok(Config {
            path: path.to_path_buf(),
            storage: StorageConfig {
                base_path: globals
                    .base_path
                    .unwrap_or_else(|| PathBuf::from("/var/lib/chantal")),
            },
            database,
            download: DownloadConfig {
                workers: usize::try_from(globals.workers.unwrap_or(10)).unwrap_or(usize::MAX),
                retries: globals.retries.unwrap_or(5),
                timeout: Duration::from_secs(globals.timeout.unwrap_or(300)),
                proxy: globals.proxy,
            },
            environments,
            repositories,
            warnings,
        })
    }

    /// The repository called `name`, or an error listing the configured ones.
    pub fn repository(&self, name: &str) -> Result<&RepoConfig> {
        self.repositories
            .iter()
            .find(|r| r.name == name)
            .ok_or_else(|| Error::UnknownRepository {
                name: name.to_string(),
                known: self.repositories.iter().map(|r| r.name.clone()).collect(),
            })
    }

    /// The catalogue's URL: `database.url` (or `$CHANTAL_DATABASE_URL`) when set, otherwise
    /// the embedded SQLite file `<storage.base_path>/catalog.db`.
    pub fn database_url(&self) -> String {
        self.database
            .url
            .clone()
            .unwrap_or_else(|| default_database_url(&self.storage.base_path))
    }
}

impl RepoConfig {
    /// The proxy this repository's requests go through, if any.
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

/// Global settings merged across files, key by key, later files winning.
#[derive(Default)]
struct Globals {
    base_path: Option<PathBuf>,
    database: DatabaseConfig,
    workers: Option<u64>,
    retries: Option<u32>,
    timeout: Option<u64>,
    proxy: Option<String>,
    /// `environments:`, with the file and line that set it last.
    environments: Option<(Vec<String>, PathBuf, usize)>,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: None,
            origin: "unset".into(),
        }
    }
}

impl Globals {
    fn apply(&mut self, file: &Path, text: &str, g: &GlobalFile) {
        let dir = parent_dir(file);
        if let Some(p) = g.storage.as_ref().and_then(|s| s.base_path.as_ref()) {
            self.base_path = Some(dir.join(p));
        }
        if let Some(url) = g.database.as_ref().and_then(|d| d.url.as_ref()) {
            self.database = DatabaseConfig {
                url: Some(url.clone()),
                origin: format!(
                    "{}:{}",
                    file.display(),
                    locate::line_of(text, &["database", "url"])
                ),
            };
        }
        if let Some(e) = &g.environments {
            self.environments = Some((
                e.clone(),
                file.to_path_buf(),
                locate::line_of(text, &["environments"]),
            ));
        }
        if let Some(d) = &g.download {
            self.workers = d.workers.map(|w| w.0).or(self.workers);
            self.retries = d.retries.or(self.retries);
            self.timeout = d.timeout.map(|t| t.0).or(self.timeout);
            self.proxy = d.proxy.as_ref().map(|p| p.0.clone()).or(self.proxy.take());
        }
    }
}

/// Reads a configuration file. A UTF-8 byte order mark (editors on other systems write one)
/// is not part of the YAML.
fn read(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::ConfigRead {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    })
}

/// Whether a file holds nothing but white space and comments.
fn is_empty(text: &str) -> bool {
    text.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#') || t == "---"
    })
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Deserialises `text`, turning serde's error into one line with file, line and key path.
fn parse<T: serde::de::DeserializeOwned + Default>(file: &Path, text: &str) -> Result<T> {
    // An empty file (or one with only comments) is an empty mapping, not an error.
    if is_empty(text) {
        return Ok(T::default());
    }
    parse_strict(file, text)
}

fn parse_strict<T: serde::de::DeserializeOwned>(file: &Path, text: &str) -> Result<T> {
    let de = serde_yaml::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|err| {
        // serde_path_to_error writes `?` for a part of the path it could not name (a syntax
        // error inside a mapping): the known part is the key to report.
        let key = err
            .path()
            .to_string()
            .split('.')
            .filter(|part| !part.is_empty() && *part != "?")
            .collect::<Vec<_>>()
            .join(".");
        let inner = err.into_inner();
        let line = inner.location().map(|l| l.line()).unwrap_or_else(|| {
            let parts: Vec<&str> = key.split('.').collect();
            locate::line_of(text, &parts)
        });
        Error::Config {
            file: file.to_path_buf(),
            line,
            message: clean_serde_message(&inner.to_string(), &key),
            key,
        }
    })
}

/// serde_yaml appends " at line L column C" and sometimes prefixes the key path; both are
/// already in our own error format.
fn clean_serde_message(msg: &str, key: &str) -> String {
    let msg = match msg.rfind(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    };
    let msg = match msg.split_once(": ") {
        Some((path, rest))
            if !path.is_empty()
                && (key == path || key.starts_with(&format!("{path}.")))
                && !path.contains(' ') =>
        {
            rest
        }
        _ => msg,
    };
    msg.replace('\n', " ")
}

fn is_repository_file(text: &str) -> bool {
    // Only a top-level `name:` makes a repository file; matching the raw line keeps this cheap
    // and tolerant of files that do not parse (they are then parsed strictly and reported).
    text.lines().any(|l| {
        l.strip_prefix("name")
            .is_some_and(|rest| rest.trim_start().starts_with(':'))
    })
}

fn expand_include(
    main: &Path,
    main_text: &str,
    base_dir: &Path,
    pattern: &str,
    warnings: &mut Vec<String>,
) -> Result<Vec<PathBuf>> {
    let line = locate::line_of(main_text, &["include"]);
    let full = if Path::new(pattern).is_absolute() {
        PathBuf::from(pattern)
    } else {
        base_dir.join(pattern)
    };
    let full = full.to_string_lossy().into_owned();
    let paths = glob::glob(&full).map_err(|e| Error::Config {
        file: main.to_path_buf(),
        line,
        key: "include".into(),
        message: format!("invalid glob {pattern:?}: {e}"),
    })?;
    let mut files = Vec::new();
    for entry in paths {
        let path = entry.map_err(|e| Error::Config {
            file: main.to_path_buf(),
            line,
            key: "include".into(),
            message: format!("cannot read {}: {}", e.path().display(), e.error()),
        })?;
        if path.is_file() {
            files.push(path);
        }
    }
    if files.is_empty() {
        warnings.push(format!(
            "{}:{line}: include: {pattern:?} matches no file",
            main.display()
        ));
    }
    files.sort();
    Ok(files)
}

/// `rpm.gpgkey_url`, `rpm.gpgkeys` and `rpm.gpgkey_fingerprints`, checked together: a check
/// asked for without a key to check against is an error here, not a sync that passes nothing.
fn parse_keys(
    rpm: &file::RpmFile,
    dir: &Path,
    fail: &dyn Fn(&[&str], String) -> Error,
) -> Result<(Vec<KeySource>, Vec<String>)> {
    let mut keys = Vec::new();
    let url_source = |s: &str, key: &str| -> Result<KeySource> {
        match s.split_once("://") {
            Some((scheme, rest)) => {
                if !matches!(scheme, "http" | "https" | "file") || rest.is_empty() {
                    return Err(fail(
                        &["rpm", key],
                        format!("{s:?}: use an http://, https:// or file:// URL, or a path"),
                    ));
                }
                Ok(KeySource::Url(s.to_string()))
            }
            None if s.is_empty() => Err(fail(&["rpm", key], "empty key location".into())),
            None => Ok(KeySource::File(dir.join(s))),
        }
    };
    if let Some(u) = &rpm.gpgkey_url {
        if !u.contains("://") {
            return Err(fail(
                &["rpm", "gpgkey_url"],
                format!("{u:?} is not a URL (a local file goes in rpm.gpgkeys)"),
            ));
        }
        keys.push(url_source(u, "gpgkey_url")?);
    }
    for k in &rpm.gpgkeys {
        keys.push(url_source(k, "gpgkeys")?);
    }
    let mut pins = Vec::new();
    for f in &rpm.gpgkey_fingerprints {
        let hex: String = f.chars().filter(|c| !c.is_whitespace()).collect();
        if !matches!(hex.len(), 40 | 64) || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(fail(
                &["rpm", "gpgkey_fingerprints"],
                format!("{f:?} is not a full key fingerprint (40 or 64 hex digits)"),
            ));
        }
        pins.push(hex.to_ascii_uppercase());
    }
    if keys.is_empty() {
        for (key, set) in [
            ("gpgcheck", rpm.gpgcheck),
            ("repo_gpgcheck", rpm.repo_gpgcheck),
            ("gpgkey_fingerprints", !pins.is_empty()),
        ] {
            if set {
                return Err(fail(
                    &["rpm", key],
                    "no key to check against: set rpm.gpgkey_url or rpm.gpgkeys".into(),
                ));
            }
        }
    }
    Ok((keys, pins))
}

/// `publish.sign`: a key file (with an optional passphrase file) or a command with its public
/// key, not both.
fn parse_sign(
    sf: &file::SignFile,
    dir: &Path,
    fail: &dyn Fn(&[&str], String) -> Error,
) -> Result<SignConfig> {
    match (&sf.key, &sf.command) {
        (Some(key), None) => {
            if sf.public_key.is_some() {
                return Err(fail(
                    &["publish", "sign", "public_key"],
                    "public_key goes with command; a key file holds its public key".into(),
                ));
            }
            if sf.timeout.is_some() {
                return Err(fail(
                    &["publish", "sign", "timeout"],
                    "timeout goes with command: a key file signs in process".into(),
                ));
            }
            Ok(SignConfig::Key {
                key: dir.join(key),
                passphrase_file: sf.passphrase_file.as_ref().map(|p| dir.join(p)),
            })
        }
        (None, Some(command)) => {
            if sf.passphrase_file.is_some() {
                return Err(fail(
                    &["publish", "sign", "passphrase_file"],
                    "passphrase_file goes with key, not command".into(),
                ));
            }
            let public_key = sf.public_key.as_ref().ok_or_else(|| {
                fail(
                    &["publish", "sign", "command"],
                    "command needs public_key: the key clients check its signatures with".into(),
                )
            })?;
            let timeout = sf.timeout.map_or(SIGN_TIMEOUT, |t| t.0);
            if timeout.is_zero() {
                return Err(fail(
                    &["publish", "sign", "timeout"],
                    "must be longer than 0 (e.g. 60s, 5m)".into(),
                ));
            }
            Ok(SignConfig::Command {
                command: dir.join(command),
                public_key: dir.join(public_key),
                timeout,
            })
        }
        (Some(_), Some(_)) => Err(fail(
            &["publish", "sign"],
            "set key or command, not both".into(),
        )),
        (None, None) => Err(fail(&["publish", "sign"], "set key or command".into())),
    }
}

fn parse_repo(file: &Path, text: &str) -> Result<RepoConfig> {
    let raw: RepoFile = parse_strict(file, text)?;
    let dir = parent_dir(file);
    let at = |path: &[&str]| locate::line_of(text, path);
    let fail = |path: &[&str], message: String| Error::Config {
        file: file.to_path_buf(),
        line: at(path),
        key: path.join("."),
        message,
    };
    let cred_file = |key: &'static str, p: &PathBuf| CredentialFile {
        path: dir.join(p),
        key,
        line: at(&["credentials", key]),
    };
    let c = &raw.credentials;
    let auth = match c.kind {
        CredentialsType::None => {
            for (key, present) in [
                ("username", c.username.is_some()),
                ("password", c.password.is_some()),
                ("cert", c.cert.is_some()),
                ("key", c.key.is_some()),
            ] {
                if present {
                    return Err(fail(
                        &["credentials", key],
                        "set credentials.type (basic or client_cert) to use this key".into(),
                    ));
                }
            }
            Auth::None
        }
        CredentialsType::Basic => {
            if c.cert.is_some() || c.key.is_some() {
                return Err(fail(
                    &["credentials", if c.cert.is_some() { "cert" } else { "key" }],
                    "cert and key belong to type client_cert, not basic".into(),
                ));
            }
            let username = c.username.clone().ok_or_else(|| {
                fail(
                    &["credentials", "username"],
                    "type basic needs username".into(),
                )
            })?;
            let password = c.password.clone().ok_or_else(|| {
                fail(
                    &["credentials", "password"],
                    "type basic needs password".into(),
                )
            })?;
            Auth::Basic { username, password }
        }
        CredentialsType::ClientCert => {
            if c.username.is_some() || c.password.is_some() {
                return Err(fail(
                    &[
                        "credentials",
                        if c.username.is_some() {
                            "username"
                        } else {
                            "password"
                        },
                    ],
                    "username and password belong to type basic, not client_cert".into(),
                ));
            }
            let cert = c.cert.as_ref().ok_or_else(|| {
                fail(
                    &["credentials", "cert"],
                    "type client_cert needs cert".into(),
                )
            })?;
            let key = c.key.as_ref().ok_or_else(|| {
                fail(&["credentials", "key"], "type client_cert needs key".into())
            })?;
            Auth::ClientCert {
                cert: cred_file("cert", cert),
                key: cred_file("key", key),
            }
        }
    };
    let (keys, gpgkey_fingerprints) = parse_keys(&raw.rpm, &dir, &fail)?;
    let globs = |key: &str, list: &[String]| -> Result<Vec<glob::Pattern>> {
        list.iter()
            .map(|g| {
                glob::Pattern::new(g)
                    .map_err(|e| fail(&["filters", key], format!("{g:?} is not a glob: {e}")))
            })
            .collect()
    };
    // An empty include list keeps nothing: a templated `include: []` would empty the
    // repository at its next sync. Leave the key out to take every name.
    if raw.filters.include.as_ref().is_some_and(Vec::is_empty) {
        return Err(fail(
            &["filters", "include"],
            "an empty list would keep no package: list name globs, or remove the key to keep every name".into(),
        ));
    }
    let filters = Filters {
        include: raw
            .filters
            .include
            .as_deref()
            .map(|l| globs("include", l))
            .transpose()?,
        exclude: globs("exclude", &raw.filters.exclude)?,
        exclude_source: raw.filters.exclude_source,
    };
    match (raw.retention.policy, raw.retention.keep_last) {
        (Policy::KeepLast, None) => {
            return Err(fail(
                &["retention", "policy"],
                "keep-last needs retention.keep_last (how many versions of each package)".into(),
            ))
        }
        (Policy::KeepLast, Some(0)) => {
            return Err(fail(
                &["retention", "keep_last"],
                "keep at least 1 version of each package".into(),
            ))
        }
        (Policy::KeepLast, Some(_)) | (_, None) => {}
        (_, Some(_)) => {
            return Err(fail(
                &["retention", "keep_last"],
                "keep_last goes with policy: keep-last".into(),
            ))
        }
    }
    let (mut sign, mut base_url) = (None, None);
    let publish = match raw.publish {
        None => None,
        Some(p) => {
            if p.latest_path.is_none()
                && p.snapshots_path.is_none()
                && p.sign.is_none()
                && p.base_url.is_none()
            {
                return Err(fail(
                    &["publish"],
                    "set latest_path, snapshots_path, sign or base_url, or remove publish".into(),
                ));
            }
            if let Some(sf) = &p.sign {
                sign = Some(parse_sign(sf, &dir, &fail)?);
            }
            if let Some(u) = &p.base_url {
                if !(u.starts_with("http://") || u.starts_with("https://")) {
                    return Err(fail(
                        &["publish", "base_url"],
                        format!("{u:?}: use an http:// or https:// URL"),
                    ));
                }
                base_url = Some(u.trim_end_matches('/').to_string());
            }
            if p.environments_path.is_some() && p.snapshots_path.is_none() {
                return Err(fail(
                    &["publish", "environments_path"],
                    "environments_path links to exported snapshots: set snapshots_path too".into(),
                ));
            }
            (p.latest_path.is_some() || p.snapshots_path.is_some()).then(|| Publish {
                latest_path: p.latest_path.map(|x| dir.join(x)),
                snapshots_path: p.snapshots_path.map(|x| dir.join(x)),
                environments_path: p.environments_path.map(|x| dir.join(x)),
                link: p.link,
            })
        }
    };
    Ok(RepoConfig {
        line: at(&["name"]),
        name: raw.name.into_string(),
        kind: raw.kind,
        enabled: raw.enabled,
        url: raw.upstream.url.0,
        proxy: raw.upstream.proxy.map(|p| p.0),
        credentials: Credentials {
            auth,
            ca_cert: c.ca_cert.as_ref().map(|p| cred_file("ca_cert", p)),
        },
        rpm: RpmOptions {
            architectures: raw
                .rpm
                .architectures
                .map(|v| v.into_iter().map(|a| a.0).collect()),
            gpgcheck: raw.rpm.gpgcheck,
            keys,
            gpgkey_fingerprints,
            repo_gpgcheck: raw.rpm.repo_gpgcheck,
            gpgkey_url: raw.rpm.gpgkey_url,
            installer_tree: raw.rpm.installer_tree,
        },
        filters,
        retention: raw.retention,
        publish,
        sign,
        base_url,
        source: file.to_path_buf(),
    })
}
