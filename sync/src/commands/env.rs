//! `chantal env promote | unset | list | history`.

use chantal_common::catalogue::{EnvPointer, PromoteInput, PromoteTarget, Promotion};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Context;
use crate::cli::Format;
use crate::output::{self, Row};
use crate::ExitStatus;

/// What `--snapshot`, `--from`, `--to-previous` or `--to-promotion` asked for.
pub enum Target<'a> {
    Snapshot(&'a str),
    From(&'a str),
    Previous,
    Promotion(i64),
}

pub fn promote(
    ctx: &Context,
    env: &str,
    target: Target<'_>,
    all: bool,
    repo_ids: &[String],
) -> anyhow::Result<ExitStatus> {
    ctx.check_env(env)?;
    let catalogue = ctx.catalogue()?;
    if let Target::From(other) = target {
        // A source no longer configured may still be copied while it points somewhere.
        if catalogue.environments(Some(other))?.is_empty() {
            ctx.check_env(other)?;
        }
        if other == env {
            anyhow::bail!("--from {other}: an environment cannot be promoted from itself");
        }
    }
    for r in repo_ids {
        ctx.config.repository(r)?;
    }
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
    // `--from E --all`: identical to E, every repository considered (the catalogue knows
    // where each of the two environments points).
    let exact = all && matches!(target, Target::From(_));
    let (refs, target) = match target {
        Target::Snapshot(s) => (refs, PromoteTarget::Snapshot(s)),
        Target::From(f) => (
            if exact { Vec::new() } else { refs },
            PromoteTarget::From(f),
        ),
        Target::Previous => (refs, PromoteTarget::Previous),
        Target::Promotion(id) => (refs, PromoteTarget::Promotion(id)),
    };
    move_env(ctx, &catalogue, env, target, &refs, exact)
}

/// `chantal env unset`: the environment points nowhere in the repositories named (or in
/// every one it points in). Works for environments and repositories no longer configured:
/// it is how their snapshots are released.
pub fn unset(
    ctx: &Context,
    env: &str,
    all: bool,
    repo_ids: &[String],
) -> anyhow::Result<ExitStatus> {
    let catalogue = ctx.catalogue()?;
    if catalogue.environments(Some(env))?.is_empty() {
        if !ctx.config.environments.iter().any(|e| e == env) {
            anyhow::bail!("unknown environment {env}: it is not configured and points nowhere");
        }
        anyhow::bail!("environment {env} points nowhere: nothing to unset");
    }
    let mut seen = std::collections::HashSet::new();
    let refs: Vec<&str> = if all {
        Vec::new()
    } else {
        repo_ids
            .iter()
            .map(String::as_str)
            .filter(|r| seen.insert(*r))
            .collect()
    };
    move_env(ctx, &catalogue, env, PromoteTarget::Unset, &refs, false)
}

/// Records the move in one commit, says what moved, and brings the export's links along.
fn move_env(
    ctx: &Context,
    catalogue: &chantal_common::catalogue::Catalogue,
    env: &str,
    target: PromoteTarget<'_>,
    repositories: &[&str],
    exact: bool,
) -> anyhow::Result<ExitStatus> {
    // A killed earlier command may have left the export's links behind the catalogue.
    let mut status = super::publish::reconcile_environments(ctx, catalogue);
    let user = user_name();
    let p = catalogue.promote(PromoteInput {
        environment: env,
        target,
        repositories,
        exact,
        set_by: &user,
    })?;
    for c in &p.changes {
        let was = c
            .previous
            .as_deref()
            .map(|p| format!(", was {p}"))
            .unwrap_or_default();
        match (&c.snapshot, c.version) {
            (Some(s), Some(v)) => {
                ctx.say(format!("{}: {env} -> {s} (version {v}){was}", c.repository));
            }
            _ => ctx.say(format!("{}: {env} unset{was}", c.repository)),
        }
    }
    for c in &p.changes {
        let Ok(repo) = ctx.config.repository(&c.repository) else {
            continue;
        };
        // Exports a snapshot tree the link would need and is missing, then the links.
        if let Err(e) = super::publish::publish(ctx, catalogue, repo, false) {
            output::error(format_args!("{}: export: {e}", c.repository));
            status = ExitStatus::Failure;
        }
    }
    Ok(status)
}

/// Who promotes, for the history: the invoking user behind sudo, else the login name, else
/// (cron, systemd: no such variables) the name of the process's user.
pub(super) fn user_name() -> String {
    ["SUDO_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(uid_name)
}

/// The name `/etc/passwd` gives the real user id, else `uid N`.
fn uid_name() -> String {
    let uid = rustix::process::getuid().as_raw();
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?;
                (f.nth(1)? == uid.to_string()).then(|| name.to_string())
            })
        })
        .unwrap_or_else(|| format!("uid {uid}"))
}

#[derive(Debug, Serialize)]
struct PointerRow {
    environment: String,
    /// Whether `environments:` still lists it (else only `env unset` can move it).
    configured: bool,
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
            "environment" if !self.configured => {
                format!("{} (not configured)", self.environment)
            }
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
    fn of(p: EnvPointer, configured: bool) -> PointerRow {
        PointerRow {
            configured,
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
        .map(|p| {
            let configured = ctx.config.environments.contains(&p.environment);
            PointerRow::of(p, configured)
        })
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
    /// None: the promotion unset the environment there.
    snapshot: Option<String>,
    version: Option<i64>,
    previous: Option<String>,
    previous_version: Option<i64>,
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
            "snapshot" => match (&self.snapshot, self.version) {
                (Some(s), Some(v)) => format!("{s} (v{v})"),
                _ => "(unset)".into(),
            },
            _ => match (&self.previous, self.previous_version) {
                (Some(p), Some(v)) => format!("{p} (v{v})"),
                (Some(p), None) => p.clone(),
                (None, _) => "-".into(),
            },
        }
    }
}

pub fn history(ctx: &Context, env: &str, format: Format) -> anyhow::Result<ExitStatus> {
    let catalogue = ctx.catalogue()?;
    let history = catalogue.environment_history(env)?;
    // An environment no longer configured still has its history.
    if history.is_empty() {
        ctx.check_env(env)?;
    }
    let rows: Vec<ChangeRow> = history
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
                previous_version: c.previous_version,
            })
        })
        .collect();
    output::rows(format, &rows)?;
    Ok(ExitStatus::Success)
}
