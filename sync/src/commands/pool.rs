//! `chantal pool verify`: rehashes pool files against the catalogue, lists what is missing,
//! damaged or unrecorded, and with `--repair` fetches damaged files again from an upstream
//! whose latest version still lists them. Exit status 1 while anything is wrong.

use std::collections::HashSet;
use std::io::{self, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;

use super::metrics;
use super::served::Trees;
use super::Context;
use crate::cli::Format;
use crate::engine::refetch::refetch;
use crate::engine::{Engine, Progress};
use crate::output::{self, Report};
use crate::ExitStatus;
use chantal_common::catalogue::{BlobRecord, BlobUse, Catalogue};
use chantal_common::integrity::{self, Finding};
use chantal_common::pool::Pool;

/// What `pool verify` was asked.
pub struct Verify<'a> {
    pub repo_id: Option<&'a str>,
    /// Check this percentage of the files, chosen at random.
    pub sample: Option<f64>,
    pub repair: bool,
    pub format: Format,
    pub verbose: bool,
}

#[derive(Debug, Serialize)]
struct Problem {
    path: String,
    sha256: Option<String>,
    /// missing, wrong-size, wrong-hash, unreadable, unreferenced.
    problem: &'static str,
    detail: Option<String>,
    repaired: bool,
    /// The URL a repaired file came from.
    repaired_from: Option<String>,
    /// Where the damaged copy was moved.
    quarantined: Option<String>,
    repair_error: Option<String>,
    /// The versions, snapshots and environments that serve the file.
    breaks: Vec<String>,
}

#[derive(Debug, Serialize)]
struct VerifyReport {
    ok: bool,
    files_checked: usize,
    bytes_checked: u64,
    seconds: f64,
    /// Whether files nothing records were looked for (only when checking the whole pool).
    looked_for_unreferenced: bool,
    /// On-demand packages the pool does not hold yet (not checked: nothing to check).
    not_fetched: usize,
    problems: Vec<Problem>,
}

pub fn verify(ctx: &Context, args: &Verify<'_>) -> anyhow::Result<ExitStatus> {
    let catalogue = ctx.catalogue()?;
    let pool = Pool::new(&ctx.config.storage.base_path);
    if !pool.data_dir().join("sha256").is_dir() {
        anyhow::bail!(
            "storage {} is not initialised: run `chantal init`",
            ctx.config.storage.base_path.display()
        );
    }
    if let Some(r) = args.repo_id {
        if catalogue.repository_summary(r)?.is_none() {
            anyhow::bail!("unknown repository {r}: the catalogue has no version of it");
        }
    }
    let mut blobs = catalogue.pool_blobs(args.repo_id, false)?;
    // On-demand packages not fetched yet have no file to check: counted, and said so.
    let absent = catalogue.pool_blobs(args.repo_id, true)?;
    let whole = args.repo_id.is_none() && args.sample.is_none();
    // A file a fetcher has just placed is recorded, even while its row still says absent.
    let recorded: Option<Vec<String>> = whole.then(|| {
        blobs
            .iter()
            .chain(&absent)
            .map(|b| b.path.clone())
            .collect()
    });
    if let Some(percent) = args.sample {
        blobs = sample(blobs, percent);
    }
    let bytes: u64 = blobs.iter().map(|b| b.size.max(0) as u64).sum();
    let progress = Progress::new(ctx.quiet || args.format == Format::Json, args.verbose);
    progress.task("verifying", bytes);
    let started = Instant::now();
    let findings = check_all(&pool, &blobs, &progress);
    progress.finish();
    let seconds = started.elapsed().as_secs_f64();

    let mut problems = Vec::new();
    let mut damaged = Vec::new();
    for (blob, finding) in blobs.iter().zip(findings) {
        let (problem, detail) = match finding {
            Ok(Finding::Sound) => continue,
            Ok(Finding::Missing) => ("missing", None),
            Ok(Finding::WrongSize { actual }) => (
                "wrong-size",
                Some(format!("{actual} bytes, recorded {}", blob.size)),
            ),
            Ok(Finding::WrongHash { actual }) => (
                "wrong-hash",
                Some(format!("its content hashes to {actual}")),
            ),
            Err(e) => ("unreadable", Some(e.to_string())),
        };
        damaged.push(blob);
        problems.push(Problem {
            path: blob.path.clone(),
            sha256: Some(blob.sha256.to_string()),
            problem,
            detail,
            repaired: false,
            repaired_from: None,
            quarantined: None,
            repair_error: None,
            breaks: Vec::new(),
        });
    }
    if !damaged.is_empty() {
        let shas: Vec<_> = damaged.iter().map(|b| &b.sha256).collect();
        let uses = catalogue.blob_uses(&shas)?;
        if args.repair {
            repair(ctx, &catalogue, &pool, &damaged, &uses, &mut problems)?;
        }
        describe_breakage(&catalogue, &uses, &mut problems)?;
    }
    if let Some(recorded) = &recorded {
        let set: HashSet<&str> = recorded.iter().map(String::as_str).collect();
        for path in integrity::unreferenced(&pool, &set)? {
            problems.push(Problem {
                path,
                sha256: None,
                problem: "unreferenced",
                detail: Some(
                    "no catalogue row records it (left by a sync killed before it recorded \
                     its downloads, or put there by hand; a sync running now may still record it)"
                        .into(),
                ),
                repaired: false,
                repaired_from: None,
                quarantined: None,
                repair_error: None,
                breaks: Vec::new(),
            });
        }
    }
    let report = VerifyReport {
        ok: problems.iter().all(|p| p.repaired),
        files_checked: blobs.len(),
        bytes_checked: bytes,
        seconds,
        looked_for_unreferenced: whole,
        not_fetched: absent.len(),
        problems,
    };
    output::report(args.format, &report)?;
    metrics::write(
        ctx,
        &catalogue,
        Some(&metrics::VerifyFigures {
            files: report.files_checked,
            bytes: report.bytes_checked,
            errors: report.problems.iter().filter(|p| !p.repaired).count(),
            at: chrono::Utc::now(),
        }),
    );
    Ok(if report.ok {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

/// `percent` of `blobs`, at random (at least one when there are any).
fn sample(mut blobs: Vec<BlobRecord>, percent: f64) -> Vec<BlobRecord> {
    let keep = ((blobs.len() as f64) * percent / 100.0).ceil() as usize;
    fastrand::shuffle(&mut blobs);
    blobs.truncate(keep.min(blobs.len()));
    blobs.sort_by(|a, b| a.path.cmp(&b.path));
    blobs
}

/// Checks every blob, on as many threads as there are cores (hashing is the bottleneck when
/// the files are cached or on a fast disk), in the input's order.
fn check_all(
    pool: &Pool,
    blobs: &[BlobRecord],
    progress: &Progress,
) -> Vec<chantal_common::Result<Finding>> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8);
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<chantal_common::Result<Finding>>>> =
        Mutex::new((0..blobs.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(blob) = blobs.get(i) else { break };
                let finding = integrity::check(pool, blob, &|n| progress.bytes(n));
                if let Ok(mut r) = results.lock() {
                    r[i] = Some(finding);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                Err(chantal_common::Error::Invalid(
                    "internal error: a file was not checked".into(),
                ))
            })
        })
        .collect()
}

/// Fetches each damaged file again from a configured repository whose latest version lists
/// it, trying each in turn.
fn repair(
    ctx: &Context,
    catalogue: &Catalogue,
    pool: &Pool,
    damaged: &[&BlobRecord],
    uses: &[BlobUse],
    problems: &mut [Problem],
) -> anyhow::Result<()> {
    let (rt, cancel) = super::engine_runtime()?;
    let progress = Progress::new(true, false);
    let engine = Engine {
        config: &ctx.config,
        catalogue,
        pool: pool.clone(),
        rt: &rt,
        cancel,
        progress: &progress,
    };
    for (blob, problem) in damaged.iter().zip(problems.iter_mut()) {
        let sources: Vec<(&BlobUse, _)> = uses
            .iter()
            .filter(|u| u.sha256 == blob.sha256 && u.removed_in.is_none())
            .filter_map(|u| {
                ctx.config
                    .repositories
                    .iter()
                    .find(|r| r.name == u.repository)
                    .map(|r| (u, r))
            })
            .collect();
        if sources.is_empty() {
            problem.repair_error = Some(
                "no configured repository's latest version lists it: its upstream may have \
                 dropped it"
                    .into(),
            );
            continue;
        }
        let mut errors = Vec::new();
        for (u, repo) in sources {
            match refetch(
                &engine,
                repo,
                &u.href,
                &blob.path,
                &blob.sha256,
                blob.size.max(0) as u64,
            ) {
                Ok(done) => {
                    problem.repaired = true;
                    problem.repaired_from = Some(done.url);
                    problem.quarantined = done.quarantined.map(|p| p.display().to_string());
                    break;
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        if !problem.repaired {
            problem.repair_error = Some(errors.join("; "));
        }
    }
    Ok(())
}

/// For each file not repaired: the versions, snapshots and environments that serve it, so
/// the operator knows what a client of those trees would miss.
fn describe_breakage(
    catalogue: &Catalogue,
    uses: &[BlobUse],
    problems: &mut [Problem],
) -> anyhow::Result<()> {
    if problems.iter().all(|p| p.repaired) {
        return Ok(());
    }
    let trees = Trees::load(catalogue)?;
    for problem in problems.iter_mut().filter(|p| !p.repaired) {
        let Some(sha) = &problem.sha256 else { continue };
        for u in uses.iter().filter(|u| u.sha256.as_str() == sha) {
            let holds = |v: i64| v >= u.added_in && u.removed_in.is_none_or(|r| v < r);
            if let Some(served) = trees.served(&u.repository, holds) {
                problem.breaks.push(served.describe());
            }
        }
    }
    Ok(())
}

impl Report for VerifyReport {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        for p in &self.problems {
            let label = match p.problem {
                "missing" => "MISSING",
                "wrong-size" => "WRONG SIZE",
                "wrong-hash" => "WRONG HASH",
                "unreadable" => "UNREADABLE",
                _ => "UNREFERENCED",
            };
            match &p.detail {
                Some(d) => writeln!(out, "{label:<12}  {}: {d}", p.path)?,
                None => writeln!(out, "{label:<12}  {}", p.path)?,
            }
            if let Some(url) = &p.repaired_from {
                writeln!(out, "  repaired from {url}")?;
            }
            if let Some(q) = &p.quarantined {
                writeln!(out, "  damaged copy moved to {q}")?;
            }
            if let Some(e) = &p.repair_error {
                writeln!(out, "  not repaired: {e}")?;
            }
            for b in &p.breaks {
                writeln!(out, "  serves {b}")?;
            }
        }
        let rate = if self.seconds > 0.0 {
            format!(
                ", {}/s",
                output::bytes((self.bytes_checked as f64 / self.seconds) as i64)
            )
        } else {
            String::new()
        };
        let count = |kind: &str| self.problems.iter().filter(|p| p.problem == kind).count();
        let repaired = self.problems.iter().filter(|p| p.repaired).count();
        writeln!(
            out,
            "verified {} files ({}) in {:.1} s{rate}: {} missing, {} wrong size, {} wrong hash, {} unreadable{}{}",
            self.files_checked,
            output::bytes(self.bytes_checked as i64),
            self.seconds,
            count("missing"),
            count("wrong-size"),
            count("wrong-hash"),
            count("unreadable"),
            if self.looked_for_unreferenced {
                format!(", {} unreferenced", count("unreferenced"))
            } else {
                String::new()
            },
            if repaired > 0 {
                format!("; {repaired} repaired")
            } else {
                String::new()
            }
        )?;
        if self.not_fetched > 0 {
            writeln!(
                out,
                "skipped {} on-demand packages not fetched yet (nothing to check until a \
                 client reads them or `repo sync --download-missing`)",
                self.not_fetched
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples() {
        let blobs: Vec<BlobRecord> = (0..200)
            .map(|i| BlobRecord {
                sha256: chantal_common::Sha256::parse(&format!("{i:064x}")).unwrap(),
                size: 1,
                path: format!("p{i:03}"),
            })
            .collect();
        let s = sample(blobs.clone(), 10.0);
        assert_eq!(s.len(), 20);
        assert!(s.windows(2).all(|w| w[0].path < w[1].path));
        assert_eq!(sample(blobs.clone(), 100.0).len(), 200);
        assert_eq!(sample(blobs[..3].to_vec(), 1.0).len(), 1);
    }
}
