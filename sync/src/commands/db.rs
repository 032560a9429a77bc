//! `chantal db migrate` and `chantal db status`.

use serde_json::json;

use super::Context;
use crate::cli::Format;
use crate::output;
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
    let mut out = crate::output::Out;
    match format {
        Format::Json => output::json(
            &mut out,
            &json!({
                "backend": catalogue.backend_kind().id(),
                "database": catalogue.describe(),
                "schema_version": s.current,
                "latest_known": s.latest_known,
                "state": state,
                "applied": s.applied.iter().map(|(v, name, at)| json!({
                    "version": v, "name": name, "applied_at": at.to_rfc3339(),
                })).collect::<Vec<_>>(),
                "pending": s.pending.iter().map(|m| json!({
                    "version": m.version, "name": m.name,
                })).collect::<Vec<_>>(),
            }),
        )?,
        Format::Table => {
            use std::io::Write;
            writeln!(
                out,
                "catalogue:       {}, {}",
                catalogue.backend_kind().name(),
                catalogue.describe()
            )?;
            writeln!(
                out,
                "schema version:  {} ({state}; this chantal knows {})",
                s.current, s.latest_known
            )?;
            let pending: Vec<&str> = s.pending.iter().map(|m| m.name).collect();
            writeln!(
                out,
                "pending:         {}",
                if pending.is_empty() {
                    "none".to_string()
                } else {
                    pending.join(", ")
                }
            )?;
            for (_, name, at) in &s.applied {
                writeln!(out, "applied:         {name}  {}", output::time(at))?;
            }
        }
    }
    Ok(ExitStatus::Success)
}

pub fn cleanup(
    ctx: &Context,
    dry_run: bool,
    grace: std::time::Duration,
) -> anyhow::Result<ExitStatus> {
    let catalogue = ctx.catalogue()?;
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
