//! `chantal repo list`: one row per configured repository.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::super::Context;
use super::yes_no;
use crate::cli::Format;
use crate::output::{self, Row};
use crate::ExitStatus;
use chantal_common::redact::redact_url;

#[derive(Debug, Serialize)]
struct RepoRow {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    enabled: bool,
    policy: String,
    upstream: String,
    #[serde(serialize_with = "output::rfc3339::option::serialize")]
    last_sync: Option<DateTime<Utc>>,
    latest_version: Option<i64>,
    packages: i64,
}

impl Row for RepoRow {
    const COLUMNS: &'static [(&'static str, &'static str)] = &[
        ("name", "NAME"),
        ("type", "TYPE"),
        ("enabled", "ENABLED"),
        ("policy", "POLICY"),
        ("upstream", "UPSTREAM"),
        ("last_sync", "LAST SYNC"),
        ("packages", "PACKAGES"),
    ];

    fn cell(&self, field: &str) -> String {
        match field {
            "name" => self.name.clone(),
            "type" => self.kind.clone(),
            "enabled" => yes_no(self.enabled).into(),
            "policy" => self.policy.clone(),
            "upstream" => self.upstream.clone(),
            "last_sync" => self
                .last_sync
                .map(|t| output::time(&t))
                .unwrap_or_else(|| "never".into()),
            _ => self.packages.to_string(),
        }
    }
}

pub fn list(ctx: &Context, format: Format) -> anyhow::Result<ExitStatus> {
    let summaries = ctx.catalogue()?.repository_summaries()?;
    let rows: Vec<RepoRow> = ctx
        .config
        .repositories
        .iter()
        .map(|r| {
            let s = summaries.iter().find(|s| s.name == r.name);
            RepoRow {
                name: r.name.clone(),
                kind: r.kind.to_string(),
                enabled: r.enabled,
                policy: r.retention.policy.to_string(),
                upstream: redact_url(&r.url),
                last_sync: s.and_then(|s| s.last_success),
                latest_version: s.and_then(|s| s.latest_version),
                packages: s.map_or(0, |s| s.packages),
            }
        })
        .collect();
    output::rows(format, &rows)?;
    Ok(ExitStatus::Success)
}
