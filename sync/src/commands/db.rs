//! `chantal db migrate` and `chantal db status`.

use std::io::{self, Write};

use serde::Serialize;

use super::Context;
use crate::cli::Format;
use crate::output::{self, Report};
use crate::ExitStatus;

pub fn migrate(ctx: &Context) -> anyhow::Result<ExitStatus> {
    let catalogue = ctx.catalogue_unchecked()?;
    let applied = catalogue.migrate()?;
    if applied.is_empty() {
        let version = catalogue.schema_status()?.current;
        ctx.say(format!("schema is up to date (version {version})"));
    }
    for m in &applied {
        ctx.say(format!("applied migration {}", m.name));
    }
    Ok(ExitStatus::Success)
}

/// `db migrate --to URL`: copies the SQLite catalogue into an empty PostgreSQL database and
/// verifies the copy. The configuration is left alone: the operator switches `database.url`.
pub fn copy_to(ctx: &Context, url: &str) -> anyhow::Result<ExitStatus> {
    let source = ctx.catalogue()?;
    let report =
        chantal_common::catalogue::copy::sqlite_to_postgres(&source, url, &mut |table, rows| {
            ctx.say(format!("copied {table}: {rows} rows"));
        })?;
    ctx.say(format!(
        "verified: {} repositories, {} versions, {} snapshots identical in {}",
        report.repositories,
        report.versions_verified,
        report.snapshots,
        chantal_common::redact::redact_url(url)
    ));
    ctx.say(format!(
        "to switch, set database.url in {} to this database (the SQLite file {} is left as it was)",
        ctx.config.path.display(),
        source.describe()
    ));
    Ok(ExitStatus::Success)
}

#[derive(Debug, Serialize)]
struct DbStatus {
    /// The backend's id (`sqlite`, `postgresql`).
    backend: &'static str,
    #[serde(skip)]
    backend_name: &'static str,
    database: String,
    schema_version: i64,
    latest_known: i64,
    state: &'static str,
    applied: Vec<Applied>,
    pending: Vec<Pending>,
}

#[derive(Debug, Serialize)]
struct Applied {
    version: i64,
    name: String,
    #[serde(serialize_with = "output::rfc3339::serialize")]
    applied_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Serialize)]
struct Pending {
    version: i64,
    name: &'static str,
}

pub fn status(ctx: &Context, format: Format) -> anyhow::Result<ExitStatus> {
    let catalogue = ctx.catalogue_existing()?;
    let s = catalogue.schema_status()?;
    let state = if s.current > s.latest_known {
        "newer than this chantal: upgrade chantal"
    } else if s.pending.is_empty() {
        "up to date"
    } else {
        "outdated: run `chantal db migrate`"
    };
    let view = DbStatus {
        backend: catalogue.backend_kind().id(),
        backend_name: catalogue.backend_kind().name(),
        database: catalogue.describe(),
        schema_version: s.current,
        latest_known: s.latest_known,
        state,
        applied: s
            .applied
            .into_iter()
            .map(|(version, name, applied_at)| Applied {
                version,
                name,
                applied_at,
            })
            .collect(),
        pending: s
            .pending
            .iter()
            .map(|m| Pending {
                version: m.version,
                name: m.name,
            })
            .collect(),
    };
    output::report(format, &view)?;
    Ok(ExitStatus::Success)
}

impl Report for DbStatus {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(
            out,
            "catalogue:       {}, {}",
            self.backend_name, self.database
        )?;
        writeln!(
            out,
            "schema version:  {} ({}; this chantal knows {})",
            self.schema_version, self.state, self.latest_known
        )?;
        let pending: Vec<&str> = self.pending.iter().map(|m| m.name).collect();
        writeln!(
            out,
            "pending:         {}",
            if pending.is_empty() {
                "none".to_string()
            } else {
                pending.join(", ")
            }
        )?;
        for a in &self.applied {
            writeln!(
                out,
                "applied:         {}  {}",
                a.name,
                output::time(&a.applied_at)
            )?;
        }
        Ok(())
    }
}

pub fn cleanup(
    ctx: &Context,
    dry_run: bool,
    grace: std::time::Duration,
    keep_versions_for: Option<std::time::Duration>,
) -> anyhow::Result<ExitStatus> {
    let catalogue = ctx.catalogue()?;
    let windows: Vec<(String, std::time::Duration)> = ctx
        .config
        .repositories
        .iter()
        .map(|r| {
            (
                r.name.clone(),
                keep_versions_for.unwrap_or(r.retention.keep_versions_for.0),
            )
        })
        .collect();
    let pool = chantal_common::pool::Pool::new(&ctx.config.storage.base_path);
    // SIGINT/SIGTERM stop it between batches: everything done so far is consistent.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let cancel = crate::engine::Cancel::default();
    cancel.on_signals(&rt);
    let mut remove = |rel: &str| match std::fs::remove_file(pool.absolute(rel)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    };
    let r = catalogue.cleanup(chantal_common::catalogue::CleanupRun {
        grace,
        dry_run,
        remove: &mut remove,
        stop: &|| cancel.is_cancelled(),
        keep_versions_for: &windows,
    })?;
    let (partials, partial_bytes) = if r.interrupted {
        (0, 0)
    } else {
        pool.sweep_partials(grace, dry_run)?
    };
    for (path, why) in &r.failed {
        crate::output::warn(format_args!(
            "cannot remove {}: {why}",
            pool.absolute(path).display()
        ));
    }
    let mut kept = Vec::new();
    if r.protected > 0 {
        kept.push(format!(
            "{} newer files (grace {} s or a running sync)",
            r.protected,
            grace.as_secs()
        ));
    }
    if r.windowed > 0 {
        kept.push(format!(
            "{} versions latest within keep_versions_for",
            r.windowed
        ));
    }
    if r.serving > 0 {
        kept.push(format!(
            "{} versions latest until less than {} min ago (still served under latest/)",
            r.serving,
            chantal_common::SERVING_GRACE.as_secs() / 60
        ));
    }
    ctx.say(format!(
        "{}: {} versions, {} package rows, {} files ({}), {} partial downloads ({}){}",
        if dry_run { "would remove" } else { "removed" },
        r.versions,
        r.packages,
        r.blobs,
        output::bytes(r.bytes),
        partials,
        output::bytes(i64::try_from(partial_bytes).unwrap_or(i64::MAX)),
        if kept.is_empty() {
            String::new()
        } else {
            format!("; kept {}", kept.join(" and "))
        }
    ));
    if r.interrupted {
        crate::output::warn(format_args!(
            "cleanup interrupted: what was removed is consistent; run it again to finish"
        ));
        return Ok(ExitStatus::Interrupted);
    }
    Ok(if r.failed.is_empty() {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

/// `db backup PATH`: a consistent copy of the SQLite catalogue, taken while it is in use.
pub fn backup(ctx: &Context, path: &std::path::Path) -> anyhow::Result<ExitStatus> {
    let catalogue = ctx.catalogue_existing()?;
    let target = if path.is_dir() {
        let url = ctx.config.database_url();
        let name = match chantal_common::catalogue::Target::parse(&url)? {
            chantal_common::catalogue::Target::Sqlite(p) => p
                .file_name()
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| "catalog.db".into()),
            chantal_common::catalogue::Target::Postgres(_) => "catalog.db".into(),
        };
        path.join(name)
    } else {
        path.to_path_buf()
    };
    let size = catalogue.backup(&target)?;
    ctx.say(format_args!(
        "backed up {} to {} ({})",
        catalogue.describe(),
        target.display(),
        crate::output::bytes(size as i64)
    ));
    Ok(ExitStatus::Success)
}
