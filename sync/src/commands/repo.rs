//! `chantal repo list` and `chantal repo show`.

use std::io::Write;

use chantal_common::catalogue::{RepoSummary, SyncRecord};
use chantal_common::config::{Auth, CredentialFile, DownloadConfig, RepoConfig};
use chantal_common::redact::redact_url;
use serde_json::{json, Value};

use super::Context;
use crate::cli::Format;
use crate::output;
use crate::ExitStatus;

/// How many syncs `repo show` lists.
const RECENT_SYNCS: i64 = 10;

/// What `password` values are replaced with.
const MASK: &str = "********";

pub fn list(ctx: &Context, format: Format) -> anyhow::Result<ExitStatus> {
    let summaries = ctx.catalogue()?.repository_summaries()?;
    let state = |name: &str| summaries.iter().find(|s| s.name == name);
    let mut out = crate::output::Out;
    let repos = &ctx.config.repositories;
    match format {
        Format::Json => {
            let rows = repos
                .iter()
                .map(|r| {
                    let s = state(&r.name);
                    json!({
                        "name": r.name,
                        "type": r.kind.to_string(),
                        "enabled": r.enabled,
                        "policy": r.retention.policy.to_string(),
                        "upstream": redact_url(&r.url),
                        "last_sync": s.and_then(|s| s.last_success).map(|t| t.to_rfc3339()),
                        "latest_version": s.and_then(|s| s.latest_version),
                        "packages": s.map(|s| s.packages).unwrap_or(0),
                    })
                })
                .collect();
            output::json(&mut out, &Value::Array(rows))?;
        }
        Format::Table => {
            let rows: Vec<Vec<String>> = repos
                .iter()
                .map(|r| {
                    let s = state(&r.name);
                    vec![
                        r.name.clone(),
                        r.kind.to_string(),
                        yes_no(r.enabled).into(),
                        r.retention.policy.to_string(),
                        redact_url(&r.url),
                        s.and_then(|s| s.last_success)
                            .map(|t| output::time(&t))
                            .unwrap_or_else(|| "never".into()),
                        s.map(|s| s.packages).unwrap_or(0).to_string(),
                    ]
                })
                .collect();
            output::table(
                &mut out,
                &[
                    "NAME",
                    "TYPE",
                    "ENABLED",
                    "POLICY",
                    "UPSTREAM",
                    "LAST SYNC",
                    "PACKAGES",
                ],
                &rows,
            )?;
        }
    }
    Ok(ExitStatus::Success)
}

pub fn show(ctx: &Context, name: &str, format: Format) -> anyhow::Result<ExitStatus> {
    let repo = ctx.config.repository(name)?;
    let catalogue = ctx.catalogue()?;
    let summary = catalogue.repository_summary(name)?;
    let mut syncs = catalogue.recent_syncs(name, RECENT_SYNCS)?;
    // A run still marked running whose lock nobody holds was killed or crashed; the next
    // sync records that, but it is true already.
    use chantal_common::catalogue::SyncStatus;
    if syncs.iter().any(|s| s.status == SyncStatus::Running) && !catalogue.sync_lock_held(name)? {
        for s in syncs.iter_mut().filter(|s| s.status == SyncStatus::Running) {
            s.status = SyncStatus::Interrupted;
            s.error
                .get_or_insert_with(|| "the sync process ended without finishing".into());
        }
    }
    let view = effective_config(repo, &ctx.config.download);
    let mut out = crate::output::Out;
    match format {
        Format::Json => {
            let mut v = view;
            v["catalogue"] = catalogue_json(summary.as_ref(), &syncs);
            v["catalogue"]["backend"] = json!(catalogue.backend_kind().id());
            v["catalogue"]["database"] = json!(catalogue.describe());
            output::json(&mut out, &v)?;
        }
        Format::Table => {
            print_config(&mut out, repo, &ctx.config.download)?;
            let database = format!(
                "{}, {}",
                catalogue.backend_kind().name(),
                catalogue.describe()
            );
            print_catalogue(&mut out, &database, summary.as_ref(), &syncs)?;
        }
    }
    Ok(ExitStatus::Success)
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// The state of a credentials file, without ever reading its contents into the output.
fn file_state(f: &CredentialFile) -> String {
    match std::fs::File::open(&f.path) {
        Ok(_) => "readable".into(),
        Err(e) => format!("NOT READABLE: {e}"),
    }
}

/// The repository's effective configuration with secrets masked: passwords replaced, URLs
/// redacted, key files named by path only.
fn effective_config(r: &RepoConfig, download: &DownloadConfig) -> Value {
    let file = |f: &CredentialFile| json!({"path": f.path, "state": file_state(f)});
    let credentials = match &r.credentials.auth {
        Auth::None => json!({"type": "none"}),
        Auth::Basic { username, .. } => {
            json!({"type": "basic", "username": username, "password": MASK})
        }
        Auth::ClientCert { cert, key } => {
            json!({"type": "client_cert", "cert": file(cert), "key": file(key)})
        }
    };
    let mut credentials = credentials;
    if let Some(ca) = &r.credentials.ca_cert {
        credentials["ca_cert"] = file(ca);
    }
    json!({
        "name": r.name,
        "type": r.kind.to_string(),
        "enabled": r.enabled,
        "source": format!("{}:{}", r.source.display(), r.line),
        "upstream": {
            "url": redact_url(&r.url),
            "proxy": r.effective_proxy(download).map(redact_url),
        },
        "credentials": credentials,
        "rpm": {
            "architectures": r.rpm.architectures,
            "gpgcheck": r.rpm.gpgcheck,
            "gpgkey_url": r.rpm.gpgkey_url,
        },
        "retention": {
            "policy": r.retention.policy.to_string(),
            "deleted_packages": r.retention.deleted_packages.to_string(),
        },
        "publish": r.publish.as_ref().map(|p| json!({
            "latest_path": p.latest_path,
            "snapshots_path": p.snapshots_path,
            "link": p.link.to_string(),
        })),
        "download": {
            "workers": download.workers,
            "retries": download.retries,
            "timeout": download.timeout.as_secs(),
        },
    })
}

fn print_config(
    out: &mut impl Write,
    r: &RepoConfig,
    download: &DownloadConfig,
) -> std::io::Result<()> {
    let mut line = |k: &str, v: String| writeln!(out, "{:<18}{v}", format!("{k}:"));
    line("name", r.name.clone())?;
    line("type", r.kind.to_string())?;
    line("enabled", yes_no(r.enabled).into())?;
    line("defined in", format!("{}:{}", r.source.display(), r.line))?;
    line("upstream", redact_url(&r.url))?;
    let proxy = match (&r.proxy, &download.proxy) {
        (Some(p), _) => redact_url(p),
        (None, Some(p)) => format!("{} (download.proxy)", redact_url(p)),
        (None, None) => "none".into(),
    };
    line("proxy", proxy)?;
    match &r.credentials.auth {
        Auth::None => line("credentials", "none".into())?,
        Auth::Basic { username, .. } => {
            line("credentials", "basic".into())?;
            line("  username", username.clone())?;
            line("  password", MASK.into())?;
        }
        Auth::ClientCert { cert, key } => {
            line("credentials", "client_cert".into())?;
            line(
                "  cert",
                format!("{} ({})", cert.path.display(), file_state(cert)),
            )?;
            line(
                "  key",
                format!("{} ({})", key.path.display(), file_state(key)),
            )?;
        }
    }
    if let Some(ca) = &r.credentials.ca_cert {
        line(
            "  ca_cert",
            format!("{} ({})", ca.path.display(), file_state(ca)),
        )?;
    }
    line(
        "architectures",
        match &r.rpm.architectures {
            None => "all but source".into(),
            Some(list) => format!("{} (noarch always)", list.join(", ")),
        },
    )?;
    line("gpgcheck", yes_no(r.rpm.gpgcheck).into())?;
    if let Some(url) = &r.rpm.gpgkey_url {
        line("gpgkey_url", redact_url(url))?;
    }
    line(
        "retention",
        format!(
            "{}, deleted packages: {}",
            r.retention.policy, r.retention.deleted_packages
        ),
    )?;
    if let Some(p) = &r.publish {
        if let Some(l) = &p.latest_path {
            line("publish latest", l.display().to_string())?;
        }
        if let Some(s) = &p.snapshots_path {
            line("publish snapshots", s.display().to_string())?;
        }
        line("publish link", p.link.to_string())?;
    }
    line(
        "download",
        format!(
            "{} workers, {} retries, {} s timeout",
            download.workers,
            download.retries,
            download.timeout.as_secs()
        ),
    )
}

fn catalogue_json(summary: Option<&RepoSummary>, syncs: &[SyncRecord]) -> Value {
    json!({
        "latest_version": summary.and_then(|s| s.latest_version),
        "packages": summary.map(|s| s.packages).unwrap_or(0),
        "size": summary.map(|s| s.total_size).unwrap_or(0),
        "snapshots": summary.map(|s| s.snapshots).unwrap_or(0),
        "last_sync": summary.and_then(|s| s.last_success).map(|t| t.to_rfc3339()),
        "recent_syncs": syncs.iter().map(|h| json!({
            "started_at": h.started_at.to_rfc3339(),
            "finished_at": h.finished_at.map(|t| t.to_rfc3339()),
            "status": h.status.as_str(),
            "host": h.host,
            "pid": h.pid,
            "version": h.version,
            "added": h.added,
            "removed": h.removed,
            "unchanged": h.unchanged,
            "bytes_downloaded": h.bytes_downloaded,
            "error": h.error,
        })).collect::<Vec<_>>(),
    })
}

fn print_catalogue(
    out: &mut impl Write,
    database: &str,
    summary: Option<&RepoSummary>,
    syncs: &[SyncRecord],
) -> std::io::Result<()> {
    writeln!(out)?;
    writeln!(out, "database:         {database}")?;
    match summary.filter(|s| s.latest_version.is_some()) {
        None => writeln!(out, "catalogue:        never synced successfully")?,
        Some(s) => {
            writeln!(out, "catalogue:")?;
            let mut line = |k: &str, v: String| writeln!(out, "  {:<16}{v}", format!("{k}:"));
            line(
                "latest version",
                s.latest_version.map(|v| v.to_string()).unwrap_or_default(),
            )?;
            line(
                "packages",
                format!("{} ({})", s.packages, output::bytes(s.total_size)),
            )?;
            line("snapshots", s.snapshots.to_string())?;
            line(
                "last sync",
                s.last_success
                    .map(|t| output::time(&t))
                    .unwrap_or_else(|| "never".into()),
            )?;
        }
    }
    if !syncs.is_empty() {
        writeln!(out, "\nrecent syncs:")?;
        let rows: Vec<Vec<String>> = syncs
            .iter()
            .map(|h| {
                vec![
                    output::time(&h.started_at),
                    h.status.to_string(),
                    h.version
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "-".into()),
                    format!("+{} -{} ={}", h.added, h.removed, h.unchanged),
                    output::bytes(h.bytes_downloaded),
                    h.error.clone().unwrap_or_default(),
                ]
            })
            .collect();
        output::table(
            out,
            &[
                "STARTED",
                "STATUS",
                "VERSION",
                "PACKAGES",
                "DOWNLOADED",
                "ERROR",
            ],
            &rows,
        )?;
    }
    Ok(())
}
