//! `chantal snapshot list`.

use chantal_common::catalogue::SnapshotRecord;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::super::Context;
use crate::cli::Format;
use crate::output::{self, Row};
use crate::ExitStatus;

/// A snapshot, as listed (and as `snapshot show` starts).
#[derive(Debug, Serialize)]
pub struct SnapshotRow {
    pub repository: String,
    pub name: String,
    pub version: i64,
    pub packages: i64,
    /// Bytes of its packages.
    pub size: i64,
    #[serde(serialize_with = "output::rfc3339::serialize")]
    pub created_at: DateTime<Utc>,
    pub description: Option<String>,
}

impl SnapshotRow {
    pub fn of(s: SnapshotRecord) -> SnapshotRow {
        SnapshotRow {
            repository: s.repository,
            name: s.name,
            version: s.version,
            packages: s.packages,
            size: s.total_size,
            created_at: s.created_at,
            description: s.description,
        }
    }
}

impl Row for SnapshotRow {
    const COLUMNS: &'static [(&'static str, &'static str)] = &[
        ("repository", "REPOSITORY"),
        ("name", "NAME"),
        ("version", "VERSION"),
        ("packages", "PACKAGES"),
        ("size", "SIZE"),
        ("created_at", "CREATED"),
        ("description", "DESCRIPTION"),
    ];

    fn cell(&self, field: &str) -> String {
        match field {
            "repository" => self.repository.clone(),
            "name" => self.name.clone(),
            "version" => self.version.to_string(),
            "packages" => self.packages.to_string(),
            "size" => output::bytes(self.size),
            "created_at" => output::time(&self.created_at),
            _ => self.description.clone().unwrap_or_default(),
        }
    }
}

pub fn list(ctx: &Context, repo: Option<&str>, format: Format) -> anyhow::Result<ExitStatus> {
    if let Some(name) = repo {
        ctx.config.repository(name)?;
    }
    let rows: Vec<SnapshotRow> = ctx
        .catalogue()?
        .snapshots(repo)?
        .into_iter()
        .map(SnapshotRow::of)
        .collect();
    output::rows(format, &rows)?;
    Ok(ExitStatus::Success)
}
