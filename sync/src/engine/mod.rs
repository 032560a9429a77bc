//! The sync engine: upstream repodata and packages into the pool, then one catalogue
//! transaction that publishes the new version. Phases run on the calling thread, which owns the
//! blocking catalogue client; network work runs on a tokio runtime in between.

mod cancel;
mod error;
mod metadata;
mod packages;
mod progress;
mod retry;
mod spill;
mod transport;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chantal_common::catalogue::{
    Catalogue, CommitInput, KnownBlob, NevraSize, NewMetadata, NewPackage, SyncStatus,
};
use chantal_common::config::{Config, Policy, RepoConfig};
use chantal_common::pool::{Pool, StoredBlob};
use chantal_common::retention::{self, Evra, Pick};
use chantal_common::rpm::{ChecksumType, RepoMd};
use chantal_common::Error;
use sha2::{Digest, Sha256};

pub use cancel::Cancel;
pub use error::SyncError;
pub use progress::Progress;

use error::Result;
use metadata::{MetaFile, Parsed};
use packages::{Adopter, Job};
use transport::{Transport, MAX_REPOMD};

/// What the caller needs for every repository it syncs.
pub struct Engine<'a> {
    pub config: &'a Config,
    pub catalogue: &'a Catalogue,
    pub pool: Pool,
    pub rt: &'a tokio::runtime::Runtime,
    pub cancel: Cancel,
    pub progress: &'a Progress,
}

/// Per-run choices.
#[derive(Debug, Clone, Copy, Default)]
pub struct SyncOptions {
    /// Commit a version without packages that failed, instead of committing nothing.
    pub allow_partial: bool,
    /// Stop after planning: no downloads, no commit, no sync history.
    pub dry_run: bool,
}

/// How a sync that did not fail ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A new version was committed.
    NewVersion(i64),
    /// Nothing changed upstream; latest stays as it is (`None`: the repository is empty).
    UpToDate(Option<i64>),
    /// `--allow-partial`: a version without the failed packages.
    Partial(i64),
    /// `--dry-run`: what a sync would do; `bytes` is what it would download.
    DryRun { to_download: usize, in_pool: usize },
}

/// What a sync did, for the summary line.
#[derive(Debug, Clone)]
pub struct Report {
    pub outcome: Outcome,
    pub added: i64,
    pub removed: i64,
    pub unchanged: i64,
    pub bytes: u64,
    /// Bytes of packages that earlier, interrupted runs had already fetched.
    pub resumed: u64,
    pub elapsed: Duration,
    pub failures: Vec<(String, String)>,
}

impl Engine<'_> {
    /// Syncs one repository: takes its lock, records the run in sync_history, and publishes a
    /// new version only if every step succeeded (or `allow_partial` says otherwise).
    pub fn sync(&self, repo: &RepoConfig, opts: SyncOptions) -> Result<Report> {
        let span = tracing::info_span!("sync", repo = %repo.name);
        let _guard = span.enter();
        let started = Instant::now();
        let transport = Arc::new(Transport::new(
            repo,
            &self.config.download,
            self.cancel.clone(),
        )?);
        let repo_id = self.catalogue.ensure_repository(&repo.name, "rpm")?;
        let _lock = match self
            .catalogue
            .try_lock_sync(&repo.name, &hostname(), pid())?
        {
            Ok(lock) => lock,
            Err(holder) => {
                return Err(SyncError::Locked {
                    repo: repo.name.clone(),
                    holder,
                })
            }
        };
        if opts.dry_run {
            let result = self.run(repo, repo_id, 0, &transport, opts, &mut Ledger::default());
            self.progress.finish();
            return result.map(|mut r| {
                r.elapsed = started.elapsed();
                r
            });
        }
        let sync_id = self.catalogue.start_sync(repo_id, &hostname(), pid())?;
        let mut ledger = Ledger::default();
        let result = self.run(repo, repo_id, sync_id, &transport, opts, &mut ledger);
        self.progress.finish();
        let finish = match &result {
            Ok(r) => chantal_common::catalogue::SyncFinish {
                status: match r.outcome {
                    Outcome::NewVersion(_) => SyncStatus::Success,
                    Outcome::UpToDate(_) | Outcome::DryRun { .. } => SyncStatus::UpToDate,
                    Outcome::Partial(_) => SyncStatus::Partial,
                },
                version: match r.outcome {
                    Outcome::NewVersion(v) | Outcome::Partial(v) => Some(v),
                    Outcome::UpToDate(_) | Outcome::DryRun { .. } => None,
                },
                added: r.added,
                removed: r.removed,
                unchanged: r.unchanged,
                bytes_downloaded: i64::try_from(r.bytes).unwrap_or(i64::MAX),
                error: (!r.failures.is_empty())
                    .then(|| format!("{} packages failed", r.failures.len())),
                repomd_sha256: match r.outcome {
                    Outcome::Partial(_) => None,
                    _ => ledger.repomd_sha256.clone(),
                },
                settings: Some(settings_fingerprint(repo)),
            },
            Err(e) => chantal_common::catalogue::SyncFinish {
                status: if matches!(e, SyncError::Interrupted) {
                    SyncStatus::Interrupted
                } else {
                    SyncStatus::Failed
                },
                bytes_downloaded: i64::try_from(ledger.bytes).unwrap_or(i64::MAX),
                error: Some(e.to_string()),
                ..Default::default()
            },
        };
        // With the catalogue unreachable, recording the failure would only wait out the
        // connection timeout once more; the next sync marks the row interrupted.
        let unreachable = matches!(&result, Err(SyncError::Common(Error::Connect { .. })));
        if !unreachable {
            if let Err(e) = self.catalogue.finish_sync(sync_id, &finish) {
                tracing::warn!("could not record the sync result: {e}");
            }
        }
        result.map(|mut r| {
            r.elapsed = started.elapsed();
            r
        })
    }

    fn run(
        &self,
        repo: &RepoConfig,
        repo_id: i64,
        sync_id: i64,
        transport: &Arc<Transport>,
        opts: SyncOptions,
        ledger: &mut Ledger,
    ) -> Result<Report> {
        let (catalogue, pool, progress) = (self.catalogue, &self.pool, self.progress);
        progress.phase(&format!(
            "metadata: fetching {}",
            transport.url("repodata/repomd.xml")
        ));
        let repomd = self
            .rt
            .block_on(transport.get_bytes("repodata/repomd.xml", MAX_REPOMD))?;
        let repomd_sha256 = hex::encode(Sha256::digest(&repomd));
        ledger.repomd_sha256 = Some(repomd_sha256.clone());
        let settings = settings_fingerprint(repo);
        let latest = catalogue.latest_state(repo_id)?;
        if latest.version.is_some()
            && latest.repomd_sha256.as_deref() == Some(repomd_sha256.as_str())
            && latest.settings.as_deref() == Some(settings.as_str())
            && self.pool_holds_latest(repo_id)?
        {
            let packages = catalogue
                .repository_summary(&repo.name)?
                .map_or(0, |s| s.packages);
            return Ok(Report::up_to_date(latest.version, packages));
        }
        let md = RepoMd::parse(&repomd).map_err(|e| Error::Metadata {
            file: transport.url("repodata/repomd.xml"),
            message: e,
        })?;
        let repomd_placed = pool.put_reader(&repomd[..], "repomd.xml")?;
        let repomd_blob = pool
            .record(catalogue, vec![(repomd_placed, None)])?
            .remove(0);
        let files = self.rt.block_on(metadata::fetch_files(
            transport.clone(),
            pool,
            catalogue,
            repo,
            &md.records,
            self.config.download.workers,
        ))?;
        self.check_cancel()?;
        let have_rows = catalogue.latest_checksums(repo_id)?;
        let parsed = metadata::parse(pool, &files, repo, &have_rows)?;
        tracing::debug!(
            "{} of package fragments kept for the commit",
            human_bytes(parsed.spill.len())
        );
        tracing::info!(
            "metadata: {} packages upstream, {} after the architecture filter{}",
            parsed.listed,
            parsed.listed - parsed.filtered,
            if parsed.duplicates > 0 {
                format!(", {} duplicates skipped", parsed.duplicates)
            } else {
                String::new()
            }
        );
        self.check_cancel()?;

        // Retention: which upstream packages the new version takes, and which of the latest
        // version's packages stay although upstream dropped them.
        let previous = catalogue.latest_content(repo_id)?;
        let up_items: Vec<Evra<'_>> = parsed
            .packages
            .iter()
            .map(|u| Evra {
                name: &u.p.name,
                arch: &u.p.arch,
                epoch: u.p.epoch,
                version: &u.p.version,
                release: &u.p.release,
            })
            .collect();
        let prev_items: Vec<Evra<'_>> = previous
            .iter()
            .map(|c| Evra {
                name: &c.name,
                arch: &c.arch,
                epoch: c.epoch,
                version: &c.version,
                release: &c.release,
            })
            .collect();
        let mut chosen = vec![false; parsed.packages.len()];
        let mut kept_previous: Vec<usize> = Vec::new();
        for pick in retention::plan(
            repo.retention.policy,
            repo.retention.deleted_packages,
            &up_items,
            &prev_items,
        ) {
            match pick {
                Pick::Upstream(i) => chosen[i] = true,
                Pick::Previous(i) => kept_previous.push(i),
            }
        }
        let all_upstream = chosen.iter().all(|c| *c);

        // The new version's paths as a whole, before anything is fetched: a set that could
        // not be served is refused now, not after the downloads. (Retained packages whose
        // href upstream now uses for another file give way below, so they are left out.)
        {
            use chantal_common::tree::{check_layout, Role};
            let upstream_hrefs: Vec<&str> = parsed
                .packages
                .iter()
                .zip(&chosen)
                .filter(|(_, c)| **c)
                .map(|(u, _)| u.p.location_href.as_str())
                .collect();
            let taken: HashSet<&str> = upstream_hrefs.iter().copied().collect();
            let retained = kept_previous
                .iter()
                .map(|&i| previous[i].location_href.as_str())
                .filter(|h| !taken.contains(h));
            let repodata = std::iter::once("repodata/repomd.xml")
                .chain(files.iter().map(|f| f.record.location_href.as_str()));
            check_layout(
                upstream_hrefs
                    .iter()
                    .copied()
                    .chain(retained)
                    .map(|h| (h, Role::Package))
                    .chain(repodata.map(|h| (h, Role::Repodata))),
            )
            .map_err(|message| Error::Layout {
                repository: repo.name.clone(),
                message,
            })?;
        }

        // Which packages does the pool already hold? Those found are reserved first, so no
        // cleanup (on any host) collects them while this sync downloads the rest.
        let known = self.resolve_known(&parsed)?;
        let reserved = if opts.dry_run {
            known
                .values()
                .map(|k| (k.sha256.clone(), k.has_package))
                .collect()
        } else {
            let wanted: HashSet<&str> = parsed
                .packages
                .iter()
                .zip(&chosen)
                .filter(|(_, c)| **c)
                .filter_map(|(u, _)| known.get(&u.p.checksum.value))
                .map(|k| k.sha256.as_str())
                .collect();
            catalogue.reserve_blobs(&wanted.into_iter().collect::<Vec<_>>())?
        };
        let mut sha: Vec<Option<String>> = vec![None; parsed.packages.len()];
        let mut has_row: Vec<bool> = vec![false; parsed.packages.len()];
        let mut jobs = Vec::new();
        let mut want_bytes = 0u64;
        for (i, u) in parsed.packages.iter().enumerate() {
            if !chosen[i] {
                continue;
            }
            let reuse = known.get(&u.p.checksum.value).and_then(|k| {
                let has_package = *reserved.get(&k.sha256)?;
                pool.absolute(&k.path).is_file().then_some((k, has_package))
            });
            match reuse {
                Some((k, has_package)) => {
                    sha[i] = Some(k.sha256.clone());
                    has_row[i] = has_package;
                }
                _ => {
                    want_bytes += u.p.size_package;
                    jobs.push(Job {
                        index: i,
                        package: &u.p,
                    });
                }
            }
        }
        if opts.dry_run {
            let latest_count = catalogue
                .repository_summary(&repo.name)?
                .map_or(0, |s| s.packages);
            let taken = chosen.iter().filter(|c| **c).count();
            let kept = parsed
                .packages
                .iter()
                .zip(&chosen)
                .filter(|(u, c)| **c && have_rows.contains(&u.p.checksum.value))
                .count()
                + kept_previous.len();
            let kept = i64::try_from(kept).unwrap_or(i64::MAX);
            return Ok(Report {
                outcome: Outcome::DryRun {
                    to_download: jobs.len(),
                    in_pool: taken - jobs.len(),
                },
                added: i64::try_from(taken + kept_previous.len()).unwrap_or(i64::MAX) - kept,
                removed: (latest_count - kept).max(0),
                unchanged: kept,
                bytes: want_bytes,
                resumed: 0,
                elapsed: Duration::ZERO,
                failures: Vec::new(),
            });
        }
        progress.phase(&format!(
            "packages: {} to download ({}), {} already in the pool",
            jobs.len(),
            human_bytes(want_bytes),
            chosen.iter().filter(|c| **c).count() - jobs.len()
        ));
        progress.downloads(&repo.name, jobs.len() as u64, want_bytes);
        let adopter = Adopter::new(pool.clone(), catalogue.clone());
        let done = self.rt.block_on(packages::download_all(
            transport.clone(),
            pool,
            &adopter,
            jobs,
            self.config.download.workers,
            progress,
        ));
        let adopted = adopter.finish();
        let mut failures = Vec::new();
        for d in done {
            // Bytes that crossed the wire count even for a package that then failed.
            ledger.bytes += d.transferred;
            ledger.resumed += d.resumed;
            match d.result {
                Ok(sha256) => sha[d.index] = Some(sha256),
                Err(e) => failures.push((parsed.packages[d.index].p.nevra(), e)),
            }
        }
        progress.finish();
        adopted?;
        // One journal commit makes every rename of this run durable, before a version refers
        // to the new files.
        pool.sync_filesystem()?;
        self.check_cancel()?;
        failures.sort();
        if !failures.is_empty() && !opts.allow_partial {
            return Err(SyncError::PackagesFailed {
                repo: repo.name.clone(),
                total: parsed.packages.len(),
                failures,
                latest: latest.version,
            });
        }

        progress.phase("commit: publishing the new version");
        let mut content: Vec<(String, String)> = parsed
            .packages
            .iter()
            .zip(&sha)
            .filter_map(|(u, s)| s.clone().map(|s| (s, u.p.location_href.clone())))
            .collect();
        let taken_hrefs: HashSet<&str> = content.iter().map(|(_, h)| h.as_str()).collect();
        let mut retained = Vec::new();
        for &i in &kept_previous {
            let c = &previous[i];
            if taken_hrefs.contains(c.location_href.as_str()) {
                tracing::warn!(
                    "{} now holds another file upstream: the retained older one is dropped",
                    c.location_href
                );
                continue;
            }
            retained.push((c.sha256.clone(), c.location_href.clone()));
        }
        content.extend(retained);
        let mut rows = new_package_rows(&parsed, &sha, &has_row);
        catalogue.insert_packages(&mut rows)?;
        // Upstream's repodata describes exactly upstream's set; anything else gets its own.
        let exact =
            all_upstream && kept_previous.is_empty() && parsed.filtered == 0 && failures.is_empty();
        let metadata = if exact {
            let mut m = vec![NewMetadata {
                kind: "repomd".into(),
                blob_sha256: repomd_blob.sha256.clone(),
                location_href: "repodata/repomd.xml".into(),
            }];
            m.extend(files.iter().map(|f: &MetaFile| NewMetadata {
                kind: f.record.kind.clone(),
                blob_sha256: f.blob.sha256.clone(),
                location_href: f.record.location_href.clone(),
            }));
            m
        } else {
            let previous_updateinfo = if repo.retention.policy == Policy::KeepAll {
                catalogue.latest_metadata_path(repo_id, "updateinfo")?
            } else {
                None
            };
            chantal_common::repodata::generate(
                pool,
                catalogue,
                &chantal_common::repodata::Inputs {
                    content: &content,
                    upstream: &files,
                    previous_updateinfo,
                    revision: md.revision.as_deref(),
                },
            )?
        };
        let result = catalogue.commit_version(CommitInput {
            repository_id: repo_id,
            repository: &repo.name,
            sync_id,
            content: &content,
            metadata: &metadata,
            repomd_revision: md.revision.as_deref(),
        })?;
        let outcome = match (result.version, failures.is_empty()) {
            (Some(v), true) => Outcome::NewVersion(v),
            (Some(v), false) => Outcome::Partial(v),
            (None, _) => Outcome::UpToDate(latest.version),
        };
        Ok(Report {
            outcome,
            added: result.added,
            removed: result.removed,
            unchanged: result.unchanged,
            bytes: ledger.bytes,
            resumed: ledger.resumed,
            elapsed: Duration::ZERO,
            failures,
        })
    }

    fn check_cancel(&self) -> Result<()> {
        if self.cancel.is_cancelled() {
            Err(SyncError::Interrupted)
        } else {
            Ok(())
        }
    }

    /// Whether every file of the latest version is in the pool with its recorded size.
    fn pool_holds_latest(&self, repo_id: i64) -> Result<bool> {
        for (path, size) in self.catalogue.latest_blob_paths(repo_id)? {
            match std::fs::metadata(self.pool.absolute(&path)) {
                Ok(m) if i64::try_from(m.len()).ok() == Some(size) => {}
                _ => {
                    tracing::info!("{path} is missing from the pool: syncing in full");
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// The pool's blob for each upstream checksum, from the catalogue, or for sha256 pkgids from
    /// the pool itself (a file a crashed run stored but did not record).
    fn resolve_known(&self, parsed: &Parsed) -> Result<HashMap<String, KnownBlob>> {
        let mut by_kind: HashMap<ChecksumType, Vec<&str>> = HashMap::new();
        for u in &parsed.packages {
            by_kind
                .entry(u.p.checksum.kind)
                .or_default()
                .push(u.p.checksum.value.as_str());
        }
        let mut known = HashMap::new();
        for (kind, values) in by_kind {
            let found = self.catalogue.resolve_known(kind, &values)?;
            if kind == ChecksumType::Sha256 {
                let mut adopted = Vec::new();
                for v in values.iter().filter(|v| !found.contains_key(**v)) {
                    if let Some(path) = self.pool.find(v)? {
                        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                        let rel = path
                            .strip_prefix(self.pool.data_dir())
                            .map(|p| p.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        let blob = StoredBlob {
                            sha256: v.to_string(),
                            size,
                            rel_path: rel.clone(),
                            written: false,
                        };
                        adopted.push((blob, None));
                        known.insert(
                            v.to_string(),
                            KnownBlob {
                                sha256: v.to_string(),
                                size: i64::try_from(size).unwrap_or(i64::MAX),
                                path: rel,
                                has_package: false,
                            },
                        );
                    }
                }
                self.catalogue.record_blobs(&adopted)?;
            }
            known.extend(found);
        }
        self.verify_candidates(parsed, &mut known)?;
        Ok(known)
    }

    /// For packages listed under a checksum the catalogue has not seen (a sha1 or sha512
    /// upstream of files the pool holds from a sha256 one), finds pool files with the same
    /// NEVRA and size and hashes them locally with the declared algorithm: a match is the same
    /// file, so it is not downloaded again.
    fn verify_candidates(
        &self,
        parsed: &Parsed,
        known: &mut HashMap<String, KnownBlob>,
    ) -> Result<()> {
        let key = |p: &chantal_common::rpm::PrimaryPackage| {
            format!(
                "{}-{}:{}-{}.{}/{}",
                p.name, p.epoch, p.version, p.release, p.arch, p.size_package
            )
        };
        let unresolved: Vec<&chantal_common::rpm::PrimaryPackage> = parsed
            .packages
            .iter()
            .map(|u| &u.p)
            .filter(|p| {
                p.checksum.kind != ChecksumType::Sha256 && !known.contains_key(&p.checksum.value)
            })
            .collect();
        let wanted: Vec<NevraSize> = unresolved
            .iter()
            .map(|p| NevraSize {
                name: p.name.clone(),
                epoch: p.epoch,
                version: p.version.clone(),
                release: p.release.clone(),
                arch: p.arch.clone(),
                size: i64::try_from(p.size_package).unwrap_or(i64::MAX),
            })
            .collect();
        let mut candidates: HashMap<String, Vec<KnownBlob>> = HashMap::new();
        for (k, blob) in self.catalogue.candidates_by_nevra(&wanted)? {
            candidates.entry(k).or_default().push(blob);
        }
        let mut adopted = Vec::new();
        for p in unresolved {
            for blob in candidates.get(&key(p)).into_iter().flatten() {
                let path = self.pool.absolute(&blob.path);
                let Ok(mut f) = std::fs::File::open(&path) else {
                    continue;
                };
                let mut h = chantal_common::rpm::checksum::Hasher::new(p.checksum.kind);
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    use std::io::Read;
                    match f.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => h.update(&buf[..n]),
                        Err(e) => return Err(Error::io("cannot read", &path, e).into()),
                    }
                }
                if h.finish() == p.checksum.value {
                    adopted.push((
                        StoredBlob {
                            sha256: blob.sha256.clone(),
                            size: u64::try_from(blob.size).unwrap_or(0),
                            rel_path: blob.path.clone(),
                            written: false,
                        },
                        Some((p.checksum.kind, p.checksum.value.clone())),
                    ));
                    known.insert(p.checksum.value.clone(), blob.clone());
                    break;
                }
            }
        }
        self.catalogue.record_blobs(&adopted)?;
        Ok(())
    }
}

/// Package rows to create, read from the spill one at a time.
fn new_package_rows<'a>(
    parsed: &'a Parsed,
    sha: &'a [Option<String>],
    has_row: &'a [bool],
) -> impl Iterator<Item = chantal_common::Result<NewPackage>> + 'a {
    parsed
        .packages
        .iter()
        .enumerate()
        .filter(move |(i, _)| sha[*i].is_some() && !has_row[*i])
        .filter_map(move |(i, u)| {
            // Packages without a spilled fragment are in the latest version: their row exists.
            let primary = u.primary?;
            let p = &u.p;
            let build = || -> chantal_common::Result<NewPackage> {
                Ok(NewPackage {
                    sha256: sha[i].clone().unwrap_or_default(),
                    name: p.name.clone(),
                    epoch: p.epoch,
                    version: p.version.clone(),
                    release: p.release.clone(),
                    arch: p.arch.clone(),
                    checksum_type: p.checksum.kind.as_str().to_string(),
                    checksum: p.checksum.value.clone(),
                    size_package: i64::try_from(p.size_package).unwrap_or(i64::MAX),
                    size_installed: p.size_installed.and_then(|s| i64::try_from(s).ok()),
                    size_archive: p.size_archive.and_then(|s| i64::try_from(s).ok()),
                    time_file: p.time_file,
                    time_build: p.time_build,
                    sourcerpm: p.sourcerpm.clone(),
                    primary_xml: parsed.spill.get(primary)?,
                    filelists_xml: u.filelists.map(|s| parsed.spill.get(s)).transpose()?,
                    other_xml: u.other.map(|s| parsed.spill.get(s)).transpose()?,
                })
            };
            Some(build())
        })
}

/// What a run accumulated, kept even when it fails.
#[derive(Default)]
struct Ledger {
    repomd_sha256: Option<String>,
    bytes: u64,
    resumed: u64,
}

impl Report {
    fn up_to_date(version: Option<i64>, packages: i64) -> Report {
        Report {
            outcome: Outcome::UpToDate(version),
            added: 0,
            removed: 0,
            unchanged: packages,
            bytes: 0,
            resumed: 0,
            elapsed: Duration::ZERO,
            failures: Vec::new(),
        }
    }
}

/// The settings that shape a version from upstream: a change makes the next sync recompute it
/// even when upstream did not change.
fn settings_fingerprint(repo: &RepoConfig) -> String {
    format!(
        "arch={};policy={};deleted={}",
        repo.rpm
            .architectures
            .as_ref()
            .map_or_else(|| "*".to_string(), |a| a.join(",")),
        repo.retention.policy,
        repo.retention.deleted_packages
    )
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

fn pid() -> i32 {
    i32::try_from(std::process::id()).unwrap_or(i32::MAX)
}

/// `1.5 GiB` and the like, for log lines.
pub fn human_bytes(n: u64) -> String {
    crate::output::bytes(i64::try_from(n).unwrap_or(i64::MAX))
}
