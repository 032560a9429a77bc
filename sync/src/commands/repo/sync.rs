//! `chantal repo sync`: one repository or all enabled ones, with a summary line each.

use chantal_common::catalogue::Catalogue;
use chantal_common::config::{DownloadPolicy, RepoConfig};
use chantal_common::pool::Pool;

use super::super::{metrics, Context};
use crate::cli::{Format, SyncArgs};
use crate::engine::{
    human_bytes, missing, Engine, Outcome, PlanView, Progress, Report, SyncError, SyncOptions,
};
use crate::{output, ExitStatus};

/// What the run over the repositories gathered.
struct Runs {
    status: ExitStatus,
    failed: Vec<String>,
    /// Repositories that synced well, for `--create-snapshot`'s set.
    to_snapshot: Vec<String>,
    /// `--dry-run --format json`: one plan per repository.
    plans: Vec<PlanView>,
}

impl Runs {
    fn fail(&mut self, repo: &str) {
        self.status = ExitStatus::Failure;
        self.failed.push(repo.to_string());
    }
}

pub fn run(ctx: &Context, args: &SyncArgs, verbose: bool) -> anyhow::Result<ExitStatus> {
    let repos: Vec<&RepoConfig> = match &args.repo_id {
        Some(name) => vec![ctx.config.repository(name)?],
        None => ctx
            .config
            .repositories
            .iter()
            .filter(|r| r.enabled)
            .collect(),
    };
    if repos.is_empty() {
        ctx.say("no enabled repositories configured");
        return Ok(ExitStatus::Success);
    }
    let catalogue = ctx.catalogue()?;
    let pool = Pool::new(&ctx.config.storage.base_path);
    if !pool.data_dir().join("sha256").is_dir() || !pool.tmp_dir().is_dir() {
        anyhow::bail!(
            "storage {} is not initialised: run `chantal init`",
            ctx.config.storage.base_path.display()
        );
    }
    let (rt, cancel) = super::super::engine_runtime()?;
    let progress = Progress::new(ctx.quiet, verbose);
    let engine = Engine {
        config: &ctx.config,
        catalogue: &catalogue,
        pool,
        rt: &rt,
        cancel: cancel.clone(),
        progress: &progress,
    };
    let opts = SyncOptions {
        allow_partial: args.allow_partial,
        dry_run: args.dry_run,
        plan_detail: verbose || args.format == Format::Json,
    };
    // A dry run writes nothing; any other run first puts the export's environment links right
    // if a killed command left them behind.
    let mut runs = Runs {
        status: if args.dry_run {
            ExitStatus::Success
        } else {
            super::super::publish::reconcile_environments(ctx, &catalogue)
        },
        failed: Vec::new(),
        to_snapshot: Vec::new(),
        plans: Vec::new(),
    };
    for repo in &repos {
        if cancel.is_cancelled() {
            break;
        }
        match engine.sync(repo, opts) {
            Ok(report) => {
                let report = match fill(ctx, &engine, repo, args, report, &mut runs) {
                    Ok(r) => r,
                    Err(SyncError::Interrupted) => {
                        output::err_line(format_args!(
                            "chantal: {}: {}",
                            repo.name,
                            SyncError::Interrupted
                        ));
                        metrics::write(ctx, &catalogue, None);
                        return Ok(ExitStatus::Interrupted);
                    }
                    Err(e) => {
                        output::error(&e);
                        runs.fail(&repo.name);
                        continue;
                    }
                };
                reported(ctx, &catalogue, repo, args, verbose, report, &mut runs)
            }
            Err(SyncError::Interrupted) => {
                output::err_line(format_args!(
                    "chantal: {}: {}",
                    repo.name,
                    SyncError::Interrupted
                ));
                if !args.dry_run {
                    metrics::write(ctx, &catalogue, None);
                }
                return Ok(ExitStatus::Interrupted);
            }
            Err(e) => {
                // The engine names the repository in every error (Engine::sync).
                output::error(&e);
                if let SyncError::PackagesFailed { failures, .. } = &e {
                    for (nevra, why) in failures {
                        output::err_line(format_args!("  {nevra}: {why}"));
                    }
                }
                runs.fail(&repo.name);
            }
        }
    }
    if args.create_snapshot && !runs.to_snapshot.is_empty() {
        snapshot_set(ctx, &catalogue, args, &mut runs);
    }
    if args.format == Format::Json {
        output::json(&mut output::Out, &serde_json::to_value(&runs.plans)?)?;
    }
    if !args.dry_run {
        metrics::write(ctx, &catalogue, None);
    }
    if repos.len() > 1 && args.format != Format::Json {
        let ok = repos.len() - runs.failed.len();
        if runs.failed.is_empty() {
            ctx.say(format!("synced {ok} repositories"));
        } else {
            output::err_line(format_args!(
                "chantal: {ok} of {} repositories synced; failed: {}",
                repos.len(),
                runs.failed.join(", ")
            ));
        }
    }
    Ok(runs.status)
}

/// `--download-missing`, or `download.policy: immediate` for a repository that has on-demand
/// packages from before: fetches what the pool lacks after the sync, before the export (which
/// needs every file). Packages that could not be fetched are listed on standard error and
/// make the exit status 2; the version stands, and they stay on demand.
fn fill(
    ctx: &Context,
    engine: &Engine<'_>,
    repo: &RepoConfig,
    args: &SyncArgs,
    mut report: Report,
    runs: &mut Runs,
) -> Result<Report, SyncError> {
    let synced = matches!(
        report.outcome,
        Outcome::NewVersion(_) | Outcome::UpToDate(_) | Outcome::Partial(_)
    );
    let wanted = args.download_missing
        || repo.download_policy(&ctx.config.download) == DownloadPolicy::Immediate;
    if !synced || !wanted || !engine.catalogue.any_absent()? {
        return Ok(report);
    }
    let started = std::time::Instant::now();
    let filled = missing::download_missing(engine, repo).map_err(|e| e.in_repo(&repo.name))?;
    if filled.fetched > 0 || !filled.failures.is_empty() {
        ctx.say(format!(
            "{}: fetched {} on-demand packages ({}) in {:.2} s",
            repo.name,
            filled.fetched,
            human_bytes(filled.bytes),
            started.elapsed().as_secs_f64()
        ));
    }
    if !filled.failures.is_empty() {
        // The version stands; what it lists stays on demand.
        output::error(format_args!(
            "{}: {} on-demand packages could not be fetched:",
            repo.name,
            filled.failures.len()
        ));
        for (href, why) in &filled.failures {
            output::err_line(format_args!("  {href}: {why}"));
        }
        if runs.status == ExitStatus::Success {
            runs.status = ExitStatus::Partial;
        }
    }
    report.bytes += filled.bytes;
    Ok(report)
}

/// Says what a repository's sync did, and what follows from it: its export, its place in the
/// snapshot set, and the failures a partial version left out.
fn reported(
    ctx: &Context,
    catalogue: &Catalogue,
    repo: &RepoConfig,
    args: &SyncArgs,
    verbose: bool,
    report: Report,
    runs: &mut Runs,
) {
    let snapshot_ok = !matches!(report.outcome, Outcome::DryRun { .. } | Outcome::Partial(_));
    let line = Summary::of(&report);
    match &report.outcome {
        Outcome::UpToDate(_) if args.dry_run && args.format == Format::Json => {
            let n = usize::try_from(report.unchanged).unwrap_or(0);
            runs.plans.push(PlanView::up_to_date(&repo.name, n));
        }
        Outcome::UpToDate(v) => ctx.say(format!(
            "{}: up to date ({}): {}, {} {}",
            repo.name,
            v.map_or_else(|| "no version yet".to_string(), |v| format!("version {v}")),
            line.counts,
            line.downloaded,
            line.took
        )),
        Outcome::NewVersion(v) | Outcome::Partial(v) => ctx.say(format!(
            "{}: version {v}: {}, {} {}",
            repo.name, line.counts, line.downloaded, line.took
        )),
        Outcome::DryRun { .. } => {
            let view = match report.plan {
                Some(ref view) => (**view).clone(),
                None => PlanView::up_to_date(&repo.name, 0),
            };
            if args.format == Format::Json {
                runs.plans.push(view);
            } else {
                dry_run_lines(ctx, repo, &report, &line, &view, verbose);
            }
        }
    }
    if args.create_snapshot && snapshot_ok {
        runs.to_snapshot.push(repo.name.clone());
    }
    if !matches!(report.outcome, Outcome::DryRun { .. }) {
        if let Err(e) = super::super::publish::publish(ctx, catalogue, repo, false) {
            output::error(format_args!("{}: export: {e}", repo.name));
            runs.fail(&repo.name);
        }
    }
    if let Outcome::Partial(_) = report.outcome {
        // Said even with -q: packages are missing from the version.
        output::error(format_args!(
            "{}: {} packages failed and are not in the version:",
            repo.name,
            report.failures.len()
        ));
        for (nevra, why) in &report.failures {
            output::err_line(format_args!("  {nevra}: {why}"));
        }
        if runs.status == ExitStatus::Success {
            runs.status = ExitStatus::Partial;
        }
        runs.failed.push(repo.name.clone());
    }
}

/// The parts of a summary line.
struct Summary {
    counts: String,
    downloaded: String,
    took: String,
    bytes: String,
}

impl Summary {
    fn of(report: &Report) -> Summary {
        let mut counts = format!(
            "{} added, {} removed, {} unchanged",
            report.added, report.removed, report.unchanged
        );
        if report.excluded > 0 {
            counts.push_str(&format!(", {} filtered out", report.excluded));
        }
        if report.on_demand > 0 {
            counts.push_str(&format!(", {} on demand", report.on_demand));
        }
        let bytes = human_bytes(report.bytes);
        let downloaded = if report.resumed > 0 {
            format!(
                "{bytes} downloaded, {} resumed from an earlier run,",
                human_bytes(report.resumed)
            )
        } else {
            format!("{bytes} downloaded")
        };
        Summary {
            counts,
            downloaded,
            took: format!("in {:.2} s", report.elapsed.as_secs_f64()),
            bytes,
        }
    }
}

/// A dry run's summary line and the plan's lines.
fn dry_run_lines(
    ctx: &Context,
    repo: &RepoConfig,
    report: &Report,
    line: &Summary,
    view: &PlanView,
    verbose: bool,
) {
    let Outcome::DryRun {
        to_download,
        in_pool,
        tree_files,
    } = report.outcome
    else {
        return;
    };
    let tree = if tree_files > 0 {
        format!(" and {tree_files} installer tree files")
    } else {
        String::new()
    };
    let rejected = if view.rejected.is_empty() {
        String::new()
    } else {
        format!(
            "; {} packages the pool holds fail the signature check: the sync would fail",
            view.rejected.len()
        )
    };
    ctx.say(format!(
        "{}: dry run: would be {}; would download {to_download} packages ({}){tree}, {in_pool} already in the pool{rejected}; planned {}",
        repo.name, line.counts, line.bytes, line.took
    ));
    for l in view.lines(verbose) {
        ctx.say(l);
    }
}

/// One snapshot set, in one commit, of every repository that synced well, then its export.
fn snapshot_set(ctx: &Context, catalogue: &Catalogue, args: &SyncArgs, runs: &mut Runs) {
    let made =
        super::super::sets::set_name(catalogue, &runs.to_snapshot, args.snapshot_name.as_deref())
            .and_then(|name| {
                super::super::sets::create_set(ctx, catalogue, &runs.to_snapshot, &name, None)
            });
    match made {
        Ok(set) => {
            for s in &set {
                let Ok(repo) = ctx.config.repository(&s.repository) else {
                    continue;
                };
                if let Err(e) = super::super::publish::publish(ctx, catalogue, repo, false) {
                    output::error(format_args!("{}: export: {e}", repo.name));
                    runs.status = ExitStatus::Failure;
                }
            }
        }
        Err(e) => {
            output::error(format_args!("snapshot: {e}"));
            runs.status = ExitStatus::Failure;
        }
    }
}
