//! `chantal status`: the whole mirror on one screen, and a health check. Exit status 1 when
//! an enabled repository's last sync failed, or its last success is older than `--max-age`
//! (or it never had one), so it serves as a Nagios/Icinga check and in a cron MAILTO.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Context;
use crate::cli::Format;
use crate::output::{self, Report};
use crate::ExitStatus;
use chantal_common::catalogue::{Catalogue, RepoSummary, SyncHealth, SyncRecord, SyncStatus};

/// A repository's health, judged from its sync history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum State {
    /// The last sync ended well, recently enough.
    Ok,
    /// The last sync ended well, but longer ago than `--max-age`.
    Stale,
    /// Every run since the last success failed or was interrupted.
    Failing {
        #[serde(
            rename = "failing_since",
            serialize_with = "output::rfc3339::serialize"
        )]
        since: DateTime<Utc>,
    },
    /// Enabled, and no run ever ended well.
    NeverSynced,
    /// `enabled: false`: not judged.
    Disabled,
}

impl State {
    pub fn healthy(&self) -> bool {
        matches!(self, State::Ok | State::Disabled)
    }
}

/// What the history says, with a run still marked running resolved: under way (its lock is
/// held) or dead (then it counts as interrupted).
#[derive(Debug, Clone, Default)]
pub struct History {
    /// The newest finished run (a dead one included, as interrupted).
    pub last_attempt: Option<SyncRecord>,
    /// End of the newest run that ended well.
    pub last_success: Option<DateTime<Utc>>,
    pub failing_since: Option<DateTime<Utc>>,
    /// The run under way.
    pub running: Option<SyncRecord>,
}

impl History {
    /// `health` as the catalogue has it; `held`: whether its newest run's process holds the
    /// repository's sync lock (asked only when that run is still marked running).
    pub fn resolve(health: SyncHealth, held: bool) -> History {
        let mut h = History {
            last_attempt: health.last_finished,
            last_success: health
                .last_success
                .and_then(|s| s.finished_at.or(Some(s.started_at))),
            failing_since: health.failing_since,
            running: None,
        };
        if health.newest.status == SyncStatus::Running {
            if held {
                h.running = Some(health.newest);
            } else {
                let mut dead = health.newest;
                dead.status = SyncStatus::Interrupted;
                dead.error
                    .get_or_insert_with(|| "the sync process ended without finishing".into());
                h.failing_since = Some(h.failing_since.unwrap_or(dead.started_at));
                h.last_attempt = Some(dead);
            }
        }
        h
    }

    /// The state of an enabled (or not) repository at `now`.
    pub fn state(&self, enabled: bool, max_age: Duration, now: DateTime<Utc>) -> State {
        if !enabled {
            return State::Disabled;
        }
        let last_failed = self
            .last_attempt
            .as_ref()
            .is_some_and(|a| matches!(a.status, SyncStatus::Failed | SyncStatus::Interrupted));
        match (self.last_success, last_failed, self.failing_since) {
            (_, true, Some(since)) => State::Failing { since },
            (None, _, _) => State::NeverSynced,
            (Some(at), _, _) => {
                let age = now.signed_duration_since(at).to_std().unwrap_or_default();
                if age > max_age {
                    State::Stale
                } else {
                    State::Ok
                }
            }
        }
    }
}

#[derive(Debug, Serialize)]
struct RepoStatus {
    name: String,
    enabled: bool,
    #[serde(flatten)]
    state: State,
    healthy: bool,
    #[serde(serialize_with = "output::rfc3339::option::serialize")]
    last_success: Option<DateTime<Utc>>,
    last_attempt: Option<Attempt>,
    /// The run under way.
    syncing: Option<Attempt>,
    latest_version: Option<i64>,
    packages: i64,
    bytes: i64,
    snapshots: i64,
    environments: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Attempt {
    status: &'static str,
    #[serde(serialize_with = "output::rfc3339::serialize")]
    started_at: DateTime<Utc>,
    #[serde(serialize_with = "output::rfc3339::option::serialize")]
    finished_at: Option<DateTime<Utc>>,
    host: String,
    pid: i32,
    error: Option<String>,
}

impl From<&SyncRecord> for Attempt {
    fn from(r: &SyncRecord) -> Attempt {
        Attempt {
            status: r.status.as_str(),
            started_at: r.started_at,
            finished_at: r.finished_at,
            host: r.host.clone(),
            pid: r.pid,
            error: r.error.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
struct Status {
    healthy: bool,
    max_age_seconds: u64,
    #[serde(serialize_with = "output::rfc3339::serialize")]
    checked_at: DateTime<Utc>,
    repositories: Vec<RepoStatus>,
    pool: Pool,
    catalogue: CatalogueInfo,
}

#[derive(Debug, Serialize)]
struct Pool {
    files: i64,
    bytes: i64,
}

#[derive(Debug, Serialize)]
struct CatalogueInfo {
    backend: &'static str,
    location: String,
    schema_version: i64,
}

pub fn run(ctx: &Context, max_age: Duration, format: Format) -> anyhow::Result<ExitStatus> {
    let catalogue = ctx.catalogue()?;
    let status = gather(ctx, &catalogue, max_age)?;
    output::report(format, &status)?;
    Ok(if status.healthy {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

fn gather(ctx: &Context, catalogue: &Catalogue, max_age: Duration) -> anyhow::Result<Status> {
    let now = Utc::now();
    let summaries: BTreeMap<String, RepoSummary> = catalogue
        .repository_summaries()?
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect();
    let mut histories: BTreeMap<String, SyncHealth> = catalogue
        .sync_health()?
        .into_iter()
        .map(|h| (h.repository.clone(), h))
        .collect();
    let mut environments: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in catalogue.environments(None)? {
        environments
            .entry(p.repository)
            .or_default()
            .push(format!("{}={}", p.environment, p.snapshot));
    }
    let mut repositories = Vec::new();
    for repo in &ctx.config.repositories {
        let history = match histories.remove(&repo.name) {
            Some(h) => {
                let held = h.newest.status == SyncStatus::Running
                    && catalogue.sync_lock_held(&repo.name)?;
                History::resolve(h, held)
            }
            None => History::default(),
        };
        let state = history.state(repo.enabled, max_age, now);
        let summary = summaries.get(&repo.name);
        repositories.push(RepoStatus {
            name: repo.name.clone(),
            enabled: repo.enabled,
            healthy: state.healthy(),
            state,
            last_success: history.last_success,
            last_attempt: history.last_attempt.as_ref().map(Attempt::from),
            syncing: history.running.as_ref().map(Attempt::from),
            latest_version: summary.and_then(|s| s.latest_version),
            packages: summary.map_or(0, |s| s.packages),
            bytes: summary.map_or(0, |s| s.total_size),
            snapshots: summary.map_or(0, |s| s.snapshots),
            environments: environments.remove(&repo.name).unwrap_or_default(),
        });
    }
    let (files, bytes) = catalogue.pool_totals()?;
    Ok(Status {
        healthy: repositories.iter().all(|r| r.healthy),
        max_age_seconds: max_age.as_secs(),
        checked_at: now,
        repositories,
        pool: Pool { files, bytes },
        catalogue: CatalogueInfo {
            backend: catalogue.backend_kind().id(),
            location: catalogue.describe(),
            schema_version: catalogue.schema_status()?.current,
        },
    })
}

/// "3h ago", "2d 4h ago", "just now".
fn ago(now: DateTime<Utc>, t: DateTime<Utc>) -> String {
    let secs = now.signed_duration_since(t).num_seconds().max(0);
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3_600, secs % 3_600 / 60);
    match (d, h, m) {
        (0, 0, 0) => "just now".into(),
        (0, 0, m) => format!("{m}m ago"),
        (0, h, m) => format!("{h}h {m}m ago"),
        (d, h, _) => format!("{d}d {h}h ago"),
    }
}

impl RepoStatus {
    fn state_text(&self, now: DateTime<Utc>) -> String {
        let mut s = match &self.state {
            State::Ok => "ok".to_string(),
            State::Stale => "stale".to_string(),
            State::Failing { since } => format!("failing since {}", output::time(since)),
            State::NeverSynced => "never synced".to_string(),
            State::Disabled => "disabled".to_string(),
        };
        if let Some(run) = &self.syncing {
            s.push_str(&format!(
                ", being synced by {} (pid {}) since {}",
                run.host,
                run.pid,
                ago(now, run.started_at)
            ));
        }
        s
    }
}

impl Report for Status {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        let now = self.checked_at;
        let header = [
            "REPOSITORY",
            "STATE",
            "LAST SUCCESS",
            "LAST ATTEMPT",
            "LATEST",
            "PACKAGES",
            "SIZE",
            "SNAPSHOTS",
            "ENVIRONMENTS",
        ];
        let rows: Vec<Vec<String>> = self
            .repositories
            .iter()
            .map(|r| {
                vec![
                    r.name.clone(),
                    r.state_text(now),
                    r.last_success
                        .map_or_else(|| "never".into(), |t| ago(now, t)),
                    r.last_attempt.as_ref().map_or_else(
                        || "never".into(),
                        |a| format!("{} ({})", ago(now, a.started_at), a.status),
                    ),
                    r.latest_version
                        .map_or_else(|| "-".into(), |v| format!("v{v}")),
                    r.packages.to_string(),
                    output::bytes(r.bytes),
                    r.snapshots.to_string(),
                    if r.environments.is_empty() {
                        "-".into()
                    } else {
                        r.environments.join(" ")
                    },
                ]
            })
            .collect();
        if rows.is_empty() {
            writeln!(out, "no repositories configured")?;
        } else {
            output::table(out, &header, &rows)?;
        }
        writeln!(out)?;
        writeln!(
            out,
            "pool:      {} files, {}",
            self.pool.files,
            output::bytes(self.pool.bytes)
        )?;
        writeln!(
            out,
            "catalogue: {} {}, schema version {}",
            match self.catalogue.backend {
                "sqlite" => "SQLite",
                _ => "PostgreSQL",
            },
            self.catalogue.location,
            self.catalogue.schema_version
        )?;
        let sick: Vec<&RepoStatus> = self.repositories.iter().filter(|r| !r.healthy).collect();
        if sick.is_empty() {
            writeln!(
                out,
                "healthy: every enabled repository synced well within {}",
                output::span(self.max_age_seconds)
            )?;
        } else {
            writeln!(
                out,
                "UNHEALTHY: {} of {} enabled repositories",
                sick.len(),
                self.repositories.iter().filter(|r| r.enabled).count()
            )?;
            for r in sick {
                let why = match (&r.state, &r.last_attempt) {
                    (State::Failing { .. }, Some(a)) => format!(
                        "last sync {}: {}",
                        a.status,
                        a.error.as_deref().unwrap_or("no error recorded")
                    ),
                    (State::Stale, _) => format!(
                        "last success {}, older than {}",
                        r.last_success
                            .map_or_else(|| "never".into(), |t| ago(now, t)),
                        output::span(self.max_age_seconds)
                    ),
                    _ => "no sync has ever ended well".into(),
                };
                writeln!(out, "  {}: {why}", r.name)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(status: SyncStatus, at: i64) -> SyncRecord {
        let t = DateTime::from_timestamp(at, 0).unwrap();
        SyncRecord {
            started_at: t,
            finished_at: (status != SyncStatus::Running).then_some(t),
            status,
            host: "h".into(),
            pid: 1,
            version: None,
            added: 0,
            removed: 0,
            unchanged: 0,
            bytes_downloaded: 0,
            error: None,
            excluded: 0,
            failed: 0,
        }
    }

    fn t(at: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(at, 0).unwrap()
    }

    const DAY: i64 = 86_400;
    const MAX: Duration = Duration::from_secs(2 * DAY as u64);

    fn health(runs: &[SyncRecord]) -> SyncHealth {
        let well = |r: &&SyncRecord| SyncStatus::ENDED_WELL.contains(&r.status);
        let last_success = runs.iter().rev().find(well).cloned();
        let after = runs.iter().rposition(|r| well(&r)).map_or(0, |i| i + 1);
        SyncHealth {
            repository: "r".into(),
            newest: runs.last().unwrap().clone(),
            last_finished: runs
                .iter()
                .rev()
                .find(|r| r.status != SyncStatus::Running)
                .cloned(),
            last_success,
            failing_since: runs[after..]
                .iter()
                .find(|r| matches!(r.status, SyncStatus::Failed | SyncStatus::Interrupted))
                .map(|r| r.started_at),
        }
    }

    #[test]
    fn states() {
        let now = t(10 * DAY);
        let judge = |runs: &[SyncRecord], held: bool| {
            History::resolve(health(runs), held).state(true, MAX, now)
        };
        use SyncStatus::*;
        assert_eq!(judge(&[run(Success, 9 * DAY)], false), State::Ok);
        assert_eq!(judge(&[run(UpToDate, 7 * DAY)], false), State::Stale);
        assert_eq!(judge(&[run(Partial, 9 * DAY)], false), State::Ok);
        assert_eq!(
            judge(
                &[
                    run(Success, DAY),
                    run(Failed, 2 * DAY),
                    run(Failed, 9 * DAY)
                ],
                false
            ),
            State::Failing { since: t(2 * DAY) }
        );
        // A failure followed by a success is history.
        assert_eq!(
            judge(&[run(Failed, 8 * DAY), run(Success, 9 * DAY)], false),
            State::Ok
        );
        assert_eq!(
            judge(&[run(Failed, 9 * DAY)], false),
            State::Failing { since: t(9 * DAY) }
        );
        // Under way: judged by what came before.
        assert_eq!(
            judge(&[run(Success, 9 * DAY), run(Running, 10 * DAY)], true),
            State::Ok
        );
        assert_eq!(judge(&[run(Running, 10 * DAY)], true), State::NeverSynced);
        // Marked running, but no process holds the lock: it died.
        assert_eq!(
            judge(&[run(Success, 9 * DAY), run(Running, 10 * DAY)], false),
            State::Failing { since: t(10 * DAY) }
        );
        assert_eq!(History::default().state(true, MAX, now), State::NeverSynced);
        assert_eq!(History::default().state(false, MAX, now), State::Disabled);
        assert!(State::Disabled.healthy() && !State::Stale.healthy());
    }

    #[test]
    fn ages() {
        let now = t(10 * DAY);
        assert_eq!(ago(now, now), "just now");
        assert_eq!(ago(now, t(10 * DAY - 150)), "2m ago");
        assert_eq!(ago(now, t(10 * DAY - 3 * 3600 - 60)), "3h 1m ago");
        assert_eq!(ago(now, t(7 * DAY - 3600)), "3d 1h ago");
        assert_eq!(ago(now, t(11 * DAY)), "just now");
    }
}
