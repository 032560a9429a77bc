//! `chantal repo show`: a repository's effective configuration (secrets masked: passwords
//! replaced, URLs redacted, key files named by path only) and its catalogue state.

use std::io::{self, Write};
use std::path::PathBuf;

use chantal_common::catalogue::{Presence, SyncRecord, SyncStatus};
use chantal_common::config::{
    Auth, CredentialFile, DownloadPolicy, InstallerTree, RepoConfig, SignConfig,
};
use chantal_common::redact::redact_url;
use chantal_common::rpm::MetadataKind;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::super::Context;
use super::yes_no;
use crate::cli::Format;
use crate::output::{self, Report, Row};
use crate::ExitStatus;

/// How many syncs `repo show` lists.
const RECENT_SYNCS: i64 = 10;

/// What `password` values are replaced with.
const MASK: &str = "********";

#[derive(Debug, Serialize)]
struct RepoShow {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    enabled: bool,
    /// `file:line` of the definition.
    source: String,
    upstream: Upstream,
    credentials: Credentials,
    rpm: Rpm,
    retention: Retention,
    #[serde(skip_serializing_if = "Option::is_none")]
    filters: Option<FiltersView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    publish: Option<Publish>,
    download: Download,
    catalogue: CatalogueState,
    /// What the operator should know about this repository's setup.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Upstream {
    url: String,
    proxy: Option<String>,
    /// The proxy is `download.proxy`, not the repository's own.
    #[serde(skip)]
    proxy_is_global: bool,
}

#[derive(Debug, Serialize)]
struct Credentials {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cert: Option<FileState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<FileState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ca_cert: Option<FileState>,
}

/// A credentials file by path, and whether chantal can read it (never its contents).
#[derive(Debug, Serialize)]
struct FileState {
    path: PathBuf,
    state: String,
}

impl FileState {
    fn of(f: &CredentialFile) -> FileState {
        FileState {
            path: f.path.clone(),
            state: match std::fs::File::open(&f.path) {
                Ok(_) => "readable".into(),
                Err(e) => format!("NOT READABLE: {e}"),
            },
        }
    }

    fn text(&self) -> String {
        format!("{} ({})", self.path.display(), self.state)
    }
}

#[derive(Debug, Serialize)]
struct Rpm {
    architectures: Option<Vec<String>>,
    gpgcheck: bool,
    repo_gpgcheck: bool,
    gpgkey_url: Option<String>,
    /// Every key source, `gpgkey_url` first.
    gpgkeys: Vec<String>,
    gpgkey_fingerprints: Vec<String>,
    /// `auto` or `skip`.
    installer_tree: InstallerTree,
}

#[derive(Debug, Serialize)]
struct Retention {
    policy: String,
    deleted_packages: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    keep_last: Option<u32>,
    /// Seconds (0: none).
    keep_versions_for: u64,
}

#[derive(Debug, Serialize)]
struct FiltersView {
    include: Option<Vec<String>>,
    exclude: Vec<String>,
    exclude_source: bool,
}

/// `publish:`: the export, signing and the URL clients use; each part only when set.
#[derive(Debug, Serialize)]
struct Publish {
    #[serde(skip_serializing_if = "Option::is_none")]
    latest_path: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    snapshots_path: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    environments_path: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    link: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sign: Option<Sign>,
    #[serde(skip_serializing_if = "Option::is_none")]
    base_url: Option<String>,
}

/// `publish.sign`, by file path (never the key itself).
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Sign {
    Key {
        key: PathBuf,
        passphrase_file: Option<PathBuf>,
    },
    Command {
        command: PathBuf,
        public_key: PathBuf,
        /// Seconds.
        timeout: u64,
    },
}

#[derive(Debug, Serialize)]
struct Download {
    policy: DownloadPolicy,
    workers: usize,
    retries: u32,
    /// Seconds.
    timeout: u64,
}

#[derive(Debug, Serialize)]
struct CatalogueState {
    /// The backend's id (`sqlite`, `postgresql`).
    backend: &'static str,
    #[serde(skip)]
    backend_name: &'static str,
    database: String,
    latest_version: Option<i64>,
    /// The sha256 of latest's manifest (`.chantal/manifest.json`).
    latest_tree_id: Option<chantal_common::Sha256>,
    packages: i64,
    size: i64,
    snapshots: i64,
    /// Of latest's packages, those the pool holds and those on demand (not fetched yet).
    latest_local: Option<Presence>,
    /// The same for each snapshot.
    snapshot_local: Vec<SnapshotPresence>,
    #[serde(serialize_with = "output::rfc3339::option::serialize")]
    last_sync: Option<DateTime<Utc>>,
    recent_syncs: Vec<SyncRow>,
}

#[derive(Debug, Serialize)]
struct SnapshotPresence {
    name: String,
    version: i64,
    tree_id: Option<chantal_common::Sha256>,
    #[serde(flatten)]
    presence: Presence,
}

#[derive(Debug, Serialize)]
struct SyncRow {
    #[serde(serialize_with = "output::rfc3339::serialize")]
    started_at: DateTime<Utc>,
    #[serde(serialize_with = "output::rfc3339::option::serialize")]
    finished_at: Option<DateTime<Utc>>,
    status: &'static str,
    host: String,
    pid: i32,
    version: Option<i64>,
    added: i64,
    removed: i64,
    unchanged: i64,
    bytes_downloaded: i64,
    error: Option<String>,
    /// Upstream packages the content filters dropped.
    excluded: i64,
    /// Packages that could not be downloaded or verified.
    failed: i64,
}

impl Row for SyncRow {
    const COLUMNS: &'static [(&'static str, &'static str)] = &[
        ("started_at", "STARTED"),
        ("status", "STATUS"),
        ("version", "VERSION"),
        ("added", "PACKAGES"),
        ("bytes_downloaded", "DOWNLOADED"),
        ("error", "ERROR"),
    ];

    fn cell(&self, field: &str) -> String {
        match field {
            "started_at" => output::time(&self.started_at),
            "status" => self.status.into(),
            "version" => self.version.map_or_else(|| "-".into(), |v| v.to_string()),
            "added" if self.excluded > 0 => format!(
                "+{} -{} ={} ({} filtered out)",
                self.added, self.removed, self.unchanged, self.excluded
            ),
            "added" => format!("+{} -{} ={}", self.added, self.removed, self.unchanged),
            "bytes_downloaded" => output::bytes(self.bytes_downloaded),
            _ => self.error.clone().unwrap_or_default(),
        }
    }
}

impl SyncRow {
    fn of(h: SyncRecord) -> SyncRow {
        SyncRow {
            started_at: h.started_at,
            finished_at: h.finished_at,
            status: h.status.as_str(),
            host: h.host,
            pid: h.pid,
            version: h.version,
            added: h.added,
            removed: h.removed,
            unchanged: h.unchanged,
            bytes_downloaded: h.bytes_downloaded,
            error: h.error,
            excluded: h.excluded,
            failed: h.failed,
        }
    }
}

impl Publish {
    /// What `publish:` sets, when it sets anything.
    fn of(r: &RepoConfig) -> Option<Publish> {
        (r.publish.is_some() || r.sign.is_some() || r.base_url.is_some()).then(|| {
            let export = r.publish.as_ref();
            Publish {
                latest_path: export.and_then(|p| p.latest_path.clone()),
                snapshots_path: export.and_then(|p| p.snapshots_path.clone()),
                environments_path: export.and_then(|p| p.environments_path.clone()),
                link: export.map(|p| p.link.to_string()),
                sign: r.sign.as_ref().map(|s| match s {
                    SignConfig::Key {
                        key,
                        passphrase_file,
                    } => Sign::Key {
                        key: key.clone(),
                        passphrase_file: passphrase_file.clone(),
                    },
                    SignConfig::Command {
                        command,
                        public_key,
                        timeout,
                    } => Sign::Command {
                        command: command.clone(),
                        public_key: public_key.clone(),
                        timeout: timeout.as_secs(),
                    },
                }),
                base_url: r.base_url.clone(),
            }
        })
    }
}

impl Credentials {
    /// The credentials by kind and file, never a secret.
    fn of(r: &RepoConfig) -> Credentials {
        let file = |f: &Option<CredentialFile>| f.as_ref().map(FileState::of);
        let mut credentials = Credentials {
            kind: "none",
            username: None,
            password: None,
            cert: None,
            key: None,
            ca_cert: file(&r.credentials.ca_cert),
        };
        match &r.credentials.auth {
            Auth::None => {}
            Auth::Basic { username, .. } => {
                credentials.kind = "basic";
                credentials.username = Some(username.clone());
                credentials.password = Some(MASK);
            }
            Auth::ClientCert { cert, key } => {
                credentials.kind = "client_cert";
                credentials.cert = Some(FileState::of(cert));
                credentials.key = Some(FileState::of(key));
            }
        }
        credentials
    }
}

pub fn show(ctx: &Context, name: &str, format: Format) -> anyhow::Result<ExitStatus> {
    let r = ctx.config.repository(name)?;
    let download = &ctx.config.download;
    let catalogue = ctx.catalogue()?;
    let summary = catalogue.repository_summary(name)?;
    let mut syncs = catalogue.recent_syncs(name, RECENT_SYNCS)?;
    // A run still marked running whose lock nobody holds was killed or crashed; the next
    // sync records that, but it is true already.
    if syncs.iter().any(|s| s.status == SyncStatus::Running) && !catalogue.sync_lock_held(name)? {
        for s in syncs.iter_mut().filter(|s| s.status == SyncStatus::Running) {
            s.status = SyncStatus::Interrupted;
            s.error
                .get_or_insert_with(|| "the sync process ended without finishing".into());
        }
    }
    let summary = summary.as_ref();
    let latest_local = match summary.and_then(|s| s.latest_version) {
        Some(v) => Some(catalogue.version_presence(name, v)?),
        None => None,
    };
    let tree_ids = catalogue.tree_ids(name)?;
    let mut snapshot_local = Vec::new();
    for snap in catalogue.snapshots(Some(name))? {
        snapshot_local.push(SnapshotPresence {
            tree_id: tree_ids.get(&snap.version).cloned(),
            presence: catalogue.version_presence(name, snap.version)?,
            name: snap.name,
            version: snap.version,
        });
    }
    let mut warnings = Vec::new();
    if let Some(latest) = summary.and_then(|s| s.latest_version) {
        if r.rpm.repo_gpgcheck
            && r.sign.is_none()
            && catalogue
                .version_metadata(name, latest, &MetadataKind::RepomdAsc)?
                .is_none()
        {
            warnings.push(crate::trust::REPODATA_UNSIGNED.to_string());
        }
    }
    let view = RepoShow {
        name: r.name.clone(),
        kind: r.kind.to_string(),
        enabled: r.enabled,
        source: format!("{}:{}", r.source.display(), r.line),
        upstream: Upstream {
            url: redact_url(&r.url),
            proxy: r.effective_proxy(download).map(redact_url),
            proxy_is_global: r.proxy.is_none() && download.proxy.is_some(),
        },
        credentials: Credentials::of(r),
        rpm: Rpm {
            architectures: r.rpm.architectures.clone(),
            gpgcheck: r.rpm.gpgcheck,
            repo_gpgcheck: r.rpm.repo_gpgcheck,
            gpgkey_url: r.rpm.gpgkey_url.as_deref().map(redact_url),
            gpgkeys: r
                .rpm
                .keys
                .iter()
                .map(|k| redact_url(&k.to_string()))
                .collect(),
            gpgkey_fingerprints: r.rpm.gpgkey_fingerprints.clone(),
            installer_tree: r.rpm.installer_tree,
        },
        retention: Retention {
            policy: r.retention.policy.to_string(),
            deleted_packages: r.retention.deleted_packages.to_string(),
            keep_last: r.retention.keep_last,
            keep_versions_for: r.retention.keep_versions_for.0.as_secs(),
        },
        filters: r.filters.is_active().then(|| FiltersView {
            include: r
                .filters
                .include
                .as_ref()
                .map(|v| v.iter().map(|g| g.as_str().to_string()).collect()),
            exclude: r
                .filters
                .exclude
                .iter()
                .map(|g| g.as_str().to_string())
                .collect(),
            exclude_source: r.filters.exclude_source,
        }),
        publish: Publish::of(r),
        download: Download {
            policy: r.download_policy(download),
            workers: download.workers,
            retries: download.retries,
            timeout: download.timeout.as_secs(),
        },
        catalogue: CatalogueState {
            backend: catalogue.backend_kind().id(),
            backend_name: catalogue.backend_kind().name(),
            database: catalogue.describe(),
            latest_version: summary.and_then(|s| s.latest_version),
            latest_tree_id: summary
                .and_then(|s| s.latest_version)
                .and_then(|v| tree_ids.get(&v).cloned()),
            packages: summary.map_or(0, |s| s.packages),
            size: summary.map_or(0, |s| s.total_size),
            snapshots: summary.map_or(0, |s| s.snapshots),
            latest_local,
            snapshot_local,
            last_sync: summary.and_then(|s| s.last_success),
            recent_syncs: syncs.into_iter().map(SyncRow::of).collect(),
        },
        warnings,
    };
    output::report(format, &view)?;
    Ok(ExitStatus::Success)
}

impl Report for RepoShow {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        kv(out, "name", &self.name)?;
        kv(out, "type", &self.kind)?;
        kv(out, "enabled", yes_no(self.enabled))?;
        kv(out, "defined in", &self.source)?;
        kv(out, "upstream", &self.upstream.url)?;
        let proxy = match (&self.upstream.proxy, self.upstream.proxy_is_global) {
            (Some(p), false) => p.clone(),
            (Some(p), true) => format!("{p} (download.proxy)"),
            (None, _) => "none".into(),
        };
        kv(out, "proxy", &proxy)?;
        self.credentials.text(out)?;
        self.rpm_text(out)?;
        if let Some(p) = &self.publish {
            p.text(out)?;
        }
        let d = &self.download;
        kv(
            out,
            "download",
            &format!(
                "{}, {} workers, {} retries, {} s timeout",
                d.policy, d.workers, d.retries, d.timeout
            ),
        )?;
        self.catalogue.text(out)?;
        for w in &self.warnings {
            writeln!(out, "\nwarning: {w}")?;
        }
        Ok(())
    }
}

/// One `key: value` line of `repo show`.
fn kv(out: &mut dyn Write, k: &str, v: &str) -> io::Result<()> {
    writeln!(out, "{:<18}{v}", format!("{k}:"))
}

impl Credentials {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        let c = self;
        kv(out, "credentials", c.kind)?;
        if let Some(u) = &c.username {
            kv(out, "  username", u)?;
        }
        if let Some(p) = c.password {
            kv(out, "  password", p)?;
        }
        for (k, f) in [
            ("  cert", &c.cert),
            ("  key", &c.key),
            ("  ca_cert", &c.ca_cert),
        ] {
            if let Some(f) = f {
                kv(out, k, &f.text())?;
            }
        }
        Ok(())
    }
}

impl RepoShow {
    /// What decides the versions: architectures, trust, retention, filters.
    fn rpm_text(&self, out: &mut dyn Write) -> io::Result<()> {
        kv(
            out,
            "architectures",
            &match &self.rpm.architectures {
                None => "all but source".into(),
                Some(list) => format!("{} (noarch always)", list.join(", ")),
            },
        )?;
        kv(out, "gpgcheck", yes_no(self.rpm.gpgcheck))?;
        if self.rpm.repo_gpgcheck {
            kv(out, "repo_gpgcheck", yes_no(true))?;
        }
        kv(out, "installer tree", &self.rpm.installer_tree.to_string())?;
        if let Some(url) = &self.rpm.gpgkey_url {
            kv(out, "gpgkey_url", url)?;
        }
        for k in self
            .rpm
            .gpgkeys
            .iter()
            .skip(usize::from(self.rpm.gpgkey_url.is_some()))
        {
            kv(out, "gpgkey", k)?;
        }
        if !self.rpm.gpgkey_fingerprints.is_empty() {
            kv(out, "pinned keys", &self.rpm.gpgkey_fingerprints.join(", "))?;
        }
        kv(
            out,
            "retention",
            &format!(
                "{}{}, deleted packages: {}",
                self.retention.policy,
                self.retention
                    .keep_last
                    .map(|n| format!(" {n}"))
                    .unwrap_or_default(),
                self.retention.deleted_packages
            ),
        )?;
        if self.retention.keep_versions_for > 0 {
            kv(
                out,
                "keep versions for",
                &output::span(self.retention.keep_versions_for),
            )?;
        }
        if let Some(f) = &self.filters {
            let mut parts = Vec::new();
            if let Some(i) = &f.include {
                parts.push(format!("include {}", i.join(" ")));
            }
            if !f.exclude.is_empty() {
                parts.push(format!("exclude {}", f.exclude.join(" ")));
            }
            if f.exclude_source {
                parts.push("no source packages".into());
            }
            kv(out, "filters", &parts.join("; "))?;
        }
        Ok(())
    }
}

impl Publish {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        let p = self;
        if let Some(l) = &p.latest_path {
            kv(out, "publish latest", &l.display().to_string())?;
        }
        if let Some(s) = &p.snapshots_path {
            kv(out, "publish snapshots", &s.display().to_string())?;
        }
        if let Some(e) = &p.environments_path {
            kv(out, "publish envs", &e.display().to_string())?;
        }
        if let Some(l) = &p.link {
            kv(out, "publish link", l)?;
        }
        match &p.sign {
            Some(Sign::Key {
                key,
                passphrase_file,
            }) => kv(
                out,
                "sign",
                &format!(
                    "key {}{}",
                    key.display(),
                    passphrase_file
                        .as_ref()
                        .map(|f| format!(" (passphrase in {})", f.display()))
                        .unwrap_or_default()
                ),
            )?,
            Some(Sign::Command {
                command,
                public_key,
                timeout,
            }) => kv(
                out,
                "sign",
                &format!(
                    "command {} (public key {}, timeout {})",
                    command.display(),
                    public_key.display(),
                    output::span(*timeout)
                ),
            )?,
            None => {}
        }
        if let Some(u) = &p.base_url {
            kv(out, "base url", u)?;
        }
        Ok(())
    }
}

/// "6 of 6 packages (12 KiB) in the pool", and what is on demand.
fn local(p: &Presence) -> String {
    let mut s = format!(
        "{} of {} packages ({}) in the pool",
        p.local,
        p.local + p.absent,
        output::bytes(p.local_bytes)
    );
    if p.absent > 0 {
        s.push_str(&format!(
            ", {} ({}) on demand, not fetched yet",
            p.absent,
            output::bytes(p.absent_bytes)
        ));
    }
    s
}

impl CatalogueState {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out)?;
        writeln!(
            out,
            "database:         {}, {}",
            self.backend_name, self.database
        )?;
        match self.latest_version {
            None => writeln!(out, "catalogue:        never synced successfully")?,
            Some(v) => {
                writeln!(out, "catalogue:")?;
                let mut line = |k: &str, v: String| writeln!(out, "  {:<16}{v}", format!("{k}:"));
                line("latest version", v.to_string())?;
                if let Some(id) = &self.latest_tree_id {
                    line("tree id", id.to_string())?;
                }
                line(
                    "packages",
                    format!("{} ({})", self.packages, output::bytes(self.size)),
                )?;
                if let Some(p) = &self.latest_local {
                    line("local", local(p))?;
                }
                line("snapshots", self.snapshots.to_string())?;
                for snap in &self.snapshot_local {
                    line(
                        &format!("  {}", snap.name),
                        format!("version {}, {}", snap.version, local(&snap.presence)),
                    )?;
                }
                line(
                    "last sync",
                    self.last_sync
                        .map(|t| output::time(&t))
                        .unwrap_or_else(|| "never".into()),
                )?;
            }
        }
        if !self.recent_syncs.is_empty() {
            writeln!(out, "\nrecent syncs:")?;
            output::write_table(out, &self.recent_syncs)?;
        }
        Ok(())
    }
}
