//! `chantal snapshot list`.

use serde_json::json;

use super::Context;
use crate::cli::Format;
use crate::output;
use crate::ExitStatus;

pub fn list(ctx: &Context, repo: Option<&str>, format: Format) -> anyhow::Result<ExitStatus> {
    if let Some(name) = repo {
        ctx.config.repository(name)?;
    }
    let snapshots = ctx.catalogue()?.snapshots(repo)?;
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => output::json(
            &mut out,
            &serde_json::Value::Array(
                snapshots
                    .iter()
                    .map(|s| {
                        json!({
                            "repository": s.repository,
                            "name": s.name,
                            "version": s.version,
                            "packages": s.packages,
                            "size": s.total_size,
                            "created_at": s.created_at.to_rfc3339(),
                            "description": s.description,
                        })
                    })
                    .collect(),
            ),
        )?,
        Format::Table => {
            let rows: Vec<Vec<String>> = snapshots
                .iter()
                .map(|s| {
                    vec![
                        s.repository.clone(),
                        s.name.clone(),
                        s.version.to_string(),
                        s.packages.to_string(),
                        output::bytes(s.total_size),
                        output::time(&s.created_at),
                        s.description.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            output::table(
                &mut out,
                &[
                    "REPOSITORY",
                    "NAME",
                    "VERSION",
                    "PACKAGES",
                    "SIZE",
                    "CREATED",
                    "DESCRIPTION",
                ],
                &rows,
            )?;
        }
    }
    Ok(ExitStatus::Success)
}
