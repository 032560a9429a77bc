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
    let mut out = std::io::stdout().lock();
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
    let r = catalogue.cleanup(grace, dry_run)?;
    let mut failed = 0usize;
    if !dry_run {
        // The rows are gone: nothing can reference these files any more.
        for rel in &r.paths {
            let path = pool.absolute(rel);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    failed += 1;
                    eprintln!("chantal: warning: cannot remove {}: {e}", path.display());
                }
            }
        }
    }
    ctx.say(format!(
        "{}: {} versions, {} package rows, {} files ({}){}",
        if dry_run { "would remove" } else { "removed" },
        r.versions,
        r.packages,
        r.blobs,
        output::bytes(r.bytes),
        if r.protected > 0 {
            format!(
                "; kept {} newer files (grace {} s or a running sync)",
                r.protected,
                grace.as_secs()
            )
        } else {
            String::new()
        }
    ));
    Ok(if failed > 0 {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}
