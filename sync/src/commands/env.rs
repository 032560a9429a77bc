//! `chantal env promote | list | history`.

use chantal_common::catalogue::{EnvPointer, PromoteInput, PromoteTarget, Promotion};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Context;
use crate::cli::Format;
use crate::output::{self, Row};
use crate::ExitStatus;

/// What `--snapshot`, `--from` or `--to-previous` asked for.
pub enum Target<'a> {
    Snapshot(&'a str),
    From(&'a str),
    Previous,
}

pub fn promote(
    ctx: &Context,
    env: &str,
    target: Target<'_>,
    all: bool,
    repo_ids: &[String],
) -> anyhow::Result<ExitStatus> {
    check_env(ctx, env)?;
    if let Target::From(other) = target {
        check_env(ctx, other)?;
        if other == env {
            anyhow::bail!("--from {other}: an environment cannot be promoted from itself");
        }
    }
    for r in repo_ids {
        ctx.config.repository(r)?;
    }
    let catalogue = ctx.catalogue()?;
    let mut repos: Vec<String> = repo_ids.to_vec();
    if all {
        for r in ctx.config.repositories.iter().filter(|r| r.enabled) {
            let has = catalogue
                .repository_summary(&r.name)?
                .is_some_and(|s| s.latest_version.is_some());
            if has {
                repos.push(r.name.clone());
            }
        }
    }
    if let Target::Snapshot(name) = target {
        if repos.is_empty() {
            anyhow::bail!("--snapshot {name}: name the repositories (--repo-id, or --all)");
        }
    }
    // `--repo-id A --repo-id A` names A once.
    let mut seen = std::collections::HashSet::new();
    repos.retain(|r| seen.insert(r.clone()));
    let refs: Vec<&str> = repos.iter().map(String::as_str).collect();
    let user = user_name();
    let p = catalogue.promote(PromoteInput {
        environment: env,
        target: match target {
            Target::Snapshot(s) => PromoteTarget::Snapshot(s),
            Target::From(f) => PromoteTarget::From(f),
            Target::Previous => PromoteTarget::Previous,
        },
        repositories: &refs,
        set_by: &user,
    })?;
    for c in &p.changes {
        ctx.say(format!(
            "{}: {env} -> {} (version {}){}",
            c.repository,
            c.snapshot,
            c.version,
            c.previous
                .as_deref()
                .map(|p| format!(", was {p}"))
                .unwrap_or_default()
        ));
    }
    let mut status = ExitStatus::Success;
    for c in &p.changes {
        let Ok(repo) = ctx.config.repository(&c.repository) else {
            continue;
        };
        // Exports a snapshot tree the link would need and is missing, then the links.
        if let Err(e) = super::repo::export::publish(ctx, &catalogue, repo, false) {
            output::error(format_args!("{}: export: {e}", c.repository));
            status = ExitStatus::Failure;
        }
    }
    Ok(status)
}

fn check_env(ctx: &Context, env: &str) -> anyhow::Result<()> {
    if ctx.config.environments.iter().any(|e| e == env) {
        return Ok(());
    }
    if ctx.config.environments.is_empty() {
        anyhow::bail!(
            "unknown environment {env}: the configuration lists none (environments: [test, prod])"
        );
    }
    anyhow::bail!(
        "unknown environment {env} (configured: {})",
        ctx.config.environments.join(", ")
    )
}

/// Who promotes, for the history: the invoking user behind sudo, else the login name.
fn user_name() -> String {
    ["SUDO_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

#[derive(Debug, Serialize)]
struct PointerRow {
    environment: String,
    repository: String,
    snapshot: String,
    version: i64,
    #[serde(serialize_with = "output::rfc3339::serialize")]
    set_at: DateTime<Utc>,
    set_by: String,
    promotion: i64,
}

impl Row for PointerRow {
    const COLUMNS: &'static [(&'static str, &'static str)] = &[
        ("environment", "ENVIRONMENT"),
        ("repository", "REPOSITORY"),
        ("snapshot", "SNAPSHOT"),
        ("version", "VERSION"),
        ("set_at", "SET"),
        ("set_by", "BY"),
    ];

    fn cell(&self, field: &str) -> String {
        match field {
            "environment" => self.environment.clone(),
            "repository" => self.repository.clone(),
            "snapshot" => self.snapshot.clone(),
            "version" => self.version.to_string(),
            "set_at" => output::time(&self.set_at),
            _ => self.set_by.clone(),
        }
    }
}

impl PointerRow {
    fn of(p: EnvPointer) -> PointerRow {
        PointerRow {
            environment: p.environment,
            repository: p.repository,
            snapshot: p.snapshot,
            version: p.version,
            set_at: p.set_at,
            set_by: p.set_by,
            promotion: p.promotion,
        }
    }
}

pub fn list(ctx: &Context, format: Format) -> anyhow::Result<ExitStatus> {
    let catalogue = ctx.catalogue()?;
    let rows: Vec<PointerRow> = catalogue
        .environments(None)?
        .into_iter()
        .map(PointerRow::of)
        .collect();
    output::rows(format, &rows)?;
    Ok(ExitStatus::Success)
}

#[derive(Debug, Serialize)]
struct ChangeRow {
    promotion: i64,
    #[serde(serialize_with = "output::rfc3339::serialize")]
    set_at: DateTime<Utc>,
    set_by: String,
    source: String,
    repository: String,
    snapshot: String,
    version: i64,
    previous: Option<String>,
}

impl Row for ChangeRow {
    const COLUMNS: &'static [(&'static str, &'static str)] = &[
        ("promotion", "PROMOTION"),
        ("set_at", "SET"),
        ("set_by", "BY"),
        ("source", "FROM"),
        ("repository", "REPOSITORY"),
        ("snapshot", "SNAPSHOT"),
        ("previous", "WAS"),
    ];

    fn cell(&self, field: &str) -> String {
        match field {
            "promotion" => self.promotion.to_string(),
            "set_at" => output::time(&self.set_at),
            "set_by" => self.set_by.clone(),
            "source" => self.source.clone(),
            "repository" => self.repository.clone(),
            "snapshot" => self.snapshot.clone(),
            _ => self.previous.clone().unwrap_or_else(|| "-".into()),
        }
    }
}

pub fn history(ctx: &Context, env: &str, format: Format) -> anyhow::Result<ExitStatus> {
    check_env(ctx, env)?;
    let catalogue = ctx.catalogue()?;
    let rows: Vec<ChangeRow> = catalogue
        .environment_history(env)?
        .into_iter()
        .flat_map(|p: Promotion| {
            let (id, at, by, source) = (p.id, p.set_at, p.set_by, p.source);
            p.changes.into_iter().map(move |c| ChangeRow {
                promotion: id,
                set_at: at,
                set_by: by.clone(),
                source: source.clone(),
                repository: c.repository,
                snapshot: c.snapshot,
                version: c.version,
                previous: c.previous,
            })
        })
        .collect();
    output::rows(format, &rows)?;
    Ok(ExitStatus::Success)
}
