//! The sync engine: upstream repodata and packages into the pool, then one catalogue
//! transaction that publishes the new version. Phases run on the calling thread, which owns the
//! blocking catalogue client; network work runs on a tokio runtime in between.

mod error;
pub mod fetcher;
pub mod manifest;
mod metadata;
pub mod missing;
mod packages;
pub mod plan;
pub mod plan_view;
mod progress;
pub mod refetch;
mod retry;
mod settings;
mod signatures;
mod spill;
mod transport;
mod tree;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chantal_common::catalogue::{
    Catalogue, CommitInput, ContentItem, KnownBlob, LatestState, NevraSize, NewPackage, Seal,
    SyncStatus,
};
use chantal_common::config::{Config, DownloadPolicy, InstallerTree, Policy, RepoConfig};
use chantal_common::pool::{Pool, StoredBlob};
use chantal_common::rpm::repomd::MAX_METADATA_SIZE;
use chantal_common::rpm::{ChecksumType, MetadataKind, RepoMd};
use chantal_common::{Error, Sha256};

pub use crate::cancel::Cancel;
pub use error::SyncError;
pub use progress::Progress;
pub(crate) use transport::chain as error_chain;

use error::Result;
use metadata::{MetaFile, Parsed, RowFields, UpPkg};
use packages::{Adopter, Job};
pub use plan::Plan;
pub use plan_view::PlanView;
use settings::SyncSettings;
use signatures::Trust;
use spill::{Span, Spill};
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
    /// With `dry_run`: the plan lists every package, not only the counts.
    pub plan_detail: bool,
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
    DryRun {
        to_download: usize,
        in_pool: usize,
        /// Installer tree files it would fetch.
        tree_files: usize,
    },
}

/// What a sync did, for the summary line.
#[derive(Debug, Clone)]
pub struct Report {
    pub outcome: Outcome,
    pub added: i64,
    pub removed: i64,
    pub unchanged: i64,
    /// Upstream packages the content filters dropped.
    pub excluded: i64,
    pub bytes: u64,
    /// Bytes of packages that earlier, interrupted runs had already fetched.
    pub resumed: u64,
    /// Packages of the new version left for a client's first read (`on_demand`).
    pub on_demand: usize,
    pub elapsed: Duration,
    pub failures: Vec<(String, String)>,
    /// `--dry-run`: the plan, for printing.
    pub plan: Option<Box<PlanView>>,
}

impl Engine<'_> {
    /// Syncs one repository: takes its lock, records the run in sync_history, and publishes a
    /// new version only if every step succeeded (or `allow_partial` says otherwise).
    pub fn sync(&self, repo: &RepoConfig, opts: SyncOptions) -> Result<Report> {
        self.sync_recorded(repo, opts)
            .map_err(|e| e.in_repo(&repo.name))
    }

    /// [`Engine::sync`], recording the run in the catalogue (errors as they are: the history
    /// is per repository already).
    fn sync_recorded(&self, repo: &RepoConfig, opts: SyncOptions) -> Result<Report> {
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
                settings: ledger.settings.clone(),
                excluded: r.excluded,
                failed: i64::try_from(r.failures.len()).unwrap_or(i64::MAX),
            },
            Err(e) => chantal_common::catalogue::SyncFinish {
                status: if matches!(e, SyncError::Interrupted) {
                    SyncStatus::Interrupted
                } else {
                    SyncStatus::Failed
                },
                bytes_downloaded: i64::try_from(ledger.bytes).unwrap_or(i64::MAX),
                error: Some(e.to_string()),
                failed: match e {
                    SyncError::PackagesFailed { failures, .. } => {
                        i64::try_from(failures.len()).unwrap_or(i64::MAX)
                    }
                    _ => 0,
                },
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
        let signer = repo
            .sign
            .as_ref()
            .map(crate::trust::RepoSigner::load)
            .transpose()
            .map_err(|reason| SyncError::Sign {
                repo: repo.name.clone(),
                reason,
            })?;
        if !opts.dry_run {
            let sealed = self.with_seal(signer.as_ref(), |seal| {
                self.catalogue.seal_missing(repo_id, &repo.name, seal)
            })?;
            if sealed > 0 {
                tracing::info!(
                    "{}: wrote the manifest of {sealed} older versions",
                    repo.name
                );
            }
        }
        let mut upstream = {
            let _phase = tracing::info_span!("fetch").entered();
            let trust = signatures::load_trust(self, repo, transport)?;
            match self.fetch(repo, repo_id, transport, trust, signer, ledger)? {
                Fetched::UpToDate(report) => return Ok(report),
                Fetched::Upstream(u) => u,
            }
        };
        let latest = self.catalogue.latest_state(repo_id)?;
        let previous = self.catalogue.latest_content(repo_id)?;
        let plan = {
            let _phase = tracing::info_span!("plan").entered();
            let packages = &upstream.parsed.packages;
            self.plan(repo, repo_id, &upstream, packages, &previous, opts)?
        };
        if opts.dry_run {
            let mut view = PlanView::new(&repo.name, &plan, &previous, opts.plan_detail);
            if let Some(t) = &upstream.tree {
                view.tree = tree::tree_to_fetch(self, &t.tree)?
                    .into_iter()
                    .map(|f| plan_view::TreeFileView {
                        path: f.path.clone(),
                        size: f.size,
                    })
                    .collect();
                view.tree_variants = Some(t.tree.variants.clone());
            }
            // What the pool holds is checked as a sync would (local reads, no download), so
            // a package the sync would reject is not counted as added without a word.
            if let Some(t) = upstream.trust.as_ref().filter(|_| repo.rpm.gpgcheck) {
                view.gpgcheck = true;
                let (_, failures) = signatures::check_held(self, &plan, &t.ring)?;
                view.rejected = failures
                    .into_iter()
                    .map(|(i, reason)| plan_view::RejectedView {
                        nevra: plan.entries[i].nevra().to_string(),
                        reason,
                    })
                    .collect();
            }
            if opts.plan_detail {
                view.manifest = Some(
                    manifest::build(&self.manifest_inputs(
                        repo,
                        repo_id,
                        &upstream,
                        &plan,
                        plan.regenerate.is_some(),
                        true,
                    )?)
                    .into_owned(),
                );
            }
            let on_demand = self.on_demand(repo, &plan);
            let mut report = Report::dry_run(&plan, view);
            report.on_demand = on_demand.len();
            report.bytes -= on_demand
                .keys()
                .map(|&n| plan.entries[n].size())
                .sum::<u64>();
            if let Outcome::DryRun { to_download, .. } = &mut report.outcome {
                *to_download -= on_demand.len();
            }
            return Ok(report);
        }
        let executed = {
            let _phase = tracing::info_span!("download").entered();
            if let Some(t) = upstream.tree.as_mut() {
                let moved = tree::fetch_tree_files(self, repo, transport, t)?;
                ledger.bytes += moved.bytes;
                ledger.resumed += moved.resumed;
            }
            self.execute(repo, &upstream, &plan, transport, ledger)?
        };
        let _phase = tracing::info_span!("commit").entered();
        self.commit(
            repo, repo_id, sync_id, &upstream, &plan, executed, latest, opts, ledger,
        )
    }

    /// repomd.xml, then (unless nothing changed) every repodata file, verified, and the
    /// parsed package lists.
    fn fetch(
        &self,
        repo: &RepoConfig,
        repo_id: i64,
        transport: &Arc<Transport>,
        trust: Option<Trust>,
        signer: Option<crate::trust::RepoSigner>,
        ledger: &mut Ledger,
    ) -> Result<Fetched> {
        let (catalogue, pool, progress) = (self.catalogue, &self.pool, self.progress);
        progress.phase(&format!(
            "metadata: fetching {}",
            transport.url("repodata/repomd.xml")
        ));
        let repomd = self
            .rt
            .block_on(transport.get_bytes("repodata/repomd.xml", MAX_REPOMD))?;
        let repomd_sha256 = Sha256::digest(&repomd);
        ledger.repomd_sha256 = Some(repomd_sha256.clone());
        // Before anything else is fetched: repodata whose signature fails is not read at all.
        let repomd_asc = match &trust {
            Some(t) if repo.rpm.repo_gpgcheck => Some(signatures::check_repomd_signature(
                self, t, transport, &repomd,
            )?),
            _ => None,
        };
        let found_tree = match repo.rpm.installer_tree {
            InstallerTree::Auto => tree::find_tree(self, transport)?,
            InstallerTree::Skip => None,
        };
        let mut settings = SyncSettings::new(repo, trust.as_ref(), signer.as_ref());
        // The tree decides the version as much as repomd.xml does: a changed image with an
        // unchanged repomd.xml is a new version.
        if let Some(t) = &found_tree {
            settings = settings.with_tree(&t.fingerprint);
        }
        let settings = settings.encode();
        ledger.settings = Some(settings.clone());
        if let Some(report) = self.unchanged(repo, repo_id, &repomd_sha256, &settings)? {
            return Ok(Fetched::UpToDate(report));
        }
        let md = RepoMd::parse(&repomd).map_err(|e| Error::Metadata {
            file: transport.url("repodata/repomd.xml"),
            message: e.to_string(),
        })?;
        // Stored only now that a version may be made: a no-op sync writes nothing.
        let repomd_blob = self.store(&repomd, "repomd.xml")?;
        let repomd_asc = repomd_asc
            .map(|asc| self.store(&asc, "repomd.xml.asc"))
            .transpose()?;
        let key_blob = trust
            .as_ref()
            .map(|t| {
                self.store(
                    t.armored.as_bytes(),
                    &crate::trust::key_file_href(&repo.name),
                )
            })
            .transpose()?;
        let (files, moved) = self.rt.block_on(metadata::fetch_files(
            transport.clone(),
            pool,
            catalogue,
            repo,
            &md.records,
            self.config.download.workers,
            MAX_METADATA_SIZE,
        ))?;
        ledger.bytes += moved.bytes;
        ledger.resumed += moved.resumed;
        // Its files are fetched with the packages, once the version's layout is checked.
        let tree = found_tree.map(|t| tree::store_tree(self, t)).transpose()?;
        self.check_cancel()?;
        let have_rows = catalogue.latest_checksums(repo_id)?;
        let parsed = metadata::parse(pool, &files, repo, &have_rows)?;
        parsed.log();
        self.check_cancel()?;
        Ok(Fetched::Upstream(Box::new(Upstream {
            revision: md.revision,
            repomd_blob,
            repomd_asc,
            trust,
            key_blob,
            signer,
            files,
            tree,
            parsed,
        })))
    }

    /// The latest version's report when it came from this very repomd.xml with these very
    /// settings and the pool still holds its files: nothing to do.
    fn unchanged(
        &self,
        repo: &RepoConfig,
        repo_id: i64,
        repomd_sha256: &Sha256,
        settings: &str,
    ) -> Result<Option<Report>> {
        let latest = self.catalogue.latest_state(repo_id)?;
        if latest.version.is_some()
            && latest.repomd_sha256.as_ref() == Some(repomd_sha256)
            && latest.settings.as_deref() == Some(settings)
            && self.pool_holds_latest(repo, repo_id)?
        {
            let packages = self
                .catalogue
                .repository_summary(&repo.name)?
                .map_or(0, |s| s.packages);
            return Ok(Some(Report::up_to_date(latest.version, packages)));
        }
        Ok(None)
    }

    /// The plan (see [`plan`]). What the pool holds is looked up, then reserved, so no
    /// cleanup (on any host) collects it while this sync downloads the rest; a file lost
    /// meanwhile is planned for download instead.
    fn plan<'a>(
        &self,
        repo: &RepoConfig,
        repo_id: i64,
        upstream: &Upstream,
        packages: &'a [UpPkg],
        previous: &'a [ContentItem],
        opts: SyncOptions,
    ) -> Result<Plan<'a>> {
        let (catalogue, pool) = (self.catalogue, &self.pool);
        let known = self.resolve_known(&upstream.parsed)?;
        let held_if = |ok: &dyn Fn(&KnownBlob) -> bool| -> HashMap<String, plan::Held> {
            known
                .iter()
                .filter(|(_, k)| ok(k))
                .map(|(checksum, k)| {
                    (
                        checksum.clone(),
                        plan::Held {
                            sha256: k.sha256.clone(),
                            has_row: k.has_package,
                        },
                    )
                })
                .collect()
        };
        let keeps = |n: &chantal_common::rpm::Nevra| {
            repo.rpm.keeps_arch(&n.arch) && repo.filters.keeps(&n.name, &n.arch)
        };
        let plan_with = |held: &HashMap<String, plan::Held>| {
            plan::plan(&plan::Inputs {
                upstream: packages,
                filtered: upstream.parsed.filtered,
                excluded: upstream.parsed.excluded,
                keeps: &keeps,
                previous,
                retention: repo.retention,
                held,
            })
        };
        // The draft (everything known counts as held) only decides what to reserve: it is
        // dropped before the plan that counts is made.
        let wanted: Vec<Sha256> = {
            let draft_held = held_if(&|_| true);
            let draft = plan_with(&draft_held);
            // The new version's files as a whole, before anything is fetched: a set that
            // could not be served is refused now, not after the downloads.
            let inputs = self.manifest_inputs(
                repo,
                repo_id,
                upstream,
                &draft,
                draft.regenerate.is_some(),
                false,
            )?;
            manifest::check(&inputs).map_err(|message| Error::Layout {
                repository: repo.name.clone(),
                message,
            })?;
            draft
                .entries
                .into_iter()
                .filter(|e| e.source == plan::Source::Reuse)
                .filter_map(|e| e.sha256)
                .collect()
        };
        let reserved = if opts.dry_run {
            None
        } else {
            let wanted: Vec<&Sha256> = wanted.iter().collect();
            Some(catalogue.reserve_blobs(&wanted)?)
        };
        drop(wanted);
        let mut held = held_if(&|k| {
            let reserved = reserved.as_ref().is_none_or(|r| r.contains_key(&k.sha256));
            reserved && pool.absolute(&k.path).is_file()
        });
        if let Some(r) = &reserved {
            // The row may have gone meanwhile: the reservation's answer is the one to trust.
            for h in held.values_mut() {
                if let Some(has_row) = r.get(&h.sha256) {
                    h.has_row = *has_row;
                }
            }
        }
        let plan = plan_with(&held);
        for &i in &plan.displaced {
            tracing::warn!(
                "{} now holds another file upstream: the retained older one is dropped",
                previous[i].location_href
            );
        }
        Ok(plan)
    }

    /// What the next version's files (see [`manifest`]) are made from: the plan's packages,
    /// upstream's repodata or what chantal will `generate`, the signature files, the
    /// installer tree and the key file. With `holdings`, the tree files the pool holds already
    /// are looked up (they are fetched otherwise).
    fn manifest_inputs<'a>(
        &self,
        repo: &RepoConfig,
        repo_id: i64,
        upstream: &'a Upstream,
        plan: &'a Plan<'a>,
        generate: bool,
        holdings: bool,
    ) -> Result<manifest::Inputs<'a>> {
        let key_href = crate::trust::key_file_href(&repo.name);
        let updateinfo = upstream
            .files
            .iter()
            .any(|f| f.record.kind == MetadataKind::Updateinfo)
            || (generate
                && repo.retention.policy == Policy::KeepAll
                && self
                    .catalogue
                    .latest_metadata_path(repo_id, &MetadataKind::Updateinfo)?
                    .is_some());
        let tree = match &upstream.tree {
            None => None,
            Some(t) => Some(t.manifest_input(if holdings && !t.fetched() {
                Some(tree::tree_holdings(self, &t.tree)?)
            } else {
                None
            })),
        };
        let on_demand = self.on_demand(repo, plan);
        Ok(manifest::Inputs {
            plan,
            on_demand,
            repomd: &upstream.repomd_blob.sha256,
            repomd_asc: upstream.repomd_asc.as_ref().map(|b| &b.sha256),
            upstream: upstream
                .files
                .iter()
                .map(|f| manifest::HeldMeta {
                    kind: &f.record.kind,
                    href: &f.record.location_href,
                    sha256: &f.blob.sha256,
                    size: f.blob.size,
                })
                .collect(),
            generate,
            updateinfo,
            key_file: upstream
                .key_blob
                .as_ref()
                .map(|b| (key_href.into(), &b.sha256)),
            sign: upstream.signer.is_some(),
            tree,
        })
    }

    /// With `download.policy: on_demand`, the plan's downloads that wait for a client's first
    /// read instead (by entry index): those upstream lists with a sha256.
    fn on_demand(&self, repo: &RepoConfig, plan: &Plan<'_>) -> HashMap<usize, Sha256> {
        if repo.download_policy(&self.config.download) != DownloadPolicy::OnDemand {
            return HashMap::new();
        }
        plan.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.source == plan::Source::Download)
            .filter_map(|(n, e)| {
                let p = e.upstream_package()?;
                Some((
                    n,
                    packages::on_demand_sha256(p.checksum_kind(), p.checksum_value())?,
                ))
            })
            .collect()
    }

    /// Downloads what the plan says, in parallel; every verified file goes into the pool.
    fn execute(
        &self,
        repo: &RepoConfig,
        upstream: &Upstream,
        plan: &Plan,
        transport: &Arc<Transport>,
        ledger: &mut Ledger,
    ) -> Result<Executed> {
        let (catalogue, pool, progress) = (self.catalogue, &self.pool, self.progress);
        let jobs: Vec<Job> = plan
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.source == plan::Source::Download)
            .filter_map(|(n, e)| Some(e.upstream_package()?.job(n)))
            .collect();
        let (jobs, on_demand) = match repo.download_policy(&self.config.download) {
            DownloadPolicy::Immediate => (jobs, HashMap::new()),
            DownloadPolicy::OnDemand => {
                let (deferred, jobs) = packages::defer(catalogue, jobs)?;
                (jobs, deferred)
            }
        };
        // The files the pool holds are checked first: it is local work, and a failure there
        // is known before the downloads start.
        let ring = upstream
            .trust
            .as_ref()
            .filter(|_| repo.rpm.gpgcheck)
            .map(|t| Arc::clone(&t.ring));
        let (held_signatures, held_failures) = match &ring {
            Some(ring) => signatures::check_held(self, plan, ring)?,
            None => (Vec::new(), Vec::new()),
        };
        let download_bytes: u64 = jobs.iter().map(|j| j.size).sum();
        let on_demand_note = if on_demand.is_empty() {
            String::new()
        } else {
            format!(", {} on demand (fetched when first read)", on_demand.len())
        };
        progress.phase(&format!(
            "packages: {} to download ({}), {} already in the pool{on_demand_note}",
            jobs.len(),
            human_bytes(download_bytes),
            plan.counts.reuse
        ));
        progress.downloads(&repo.name, jobs.len() as u64, download_bytes);
        let (recorded, recorded_rx) = std::sync::mpsc::channel();
        let adopter = Adopter::new(pool.clone(), catalogue.clone(), Some(recorded));
        let (done, adopted, early_rows) = std::thread::scope(|scope| {
            let rows =
                scope.spawn(|| early_package_rows(catalogue, &upstream.parsed, plan, recorded_rx));
            let done = self.rt.block_on(packages::download_all(
                transport.clone(),
                pool,
                &adopter,
                jobs,
                self.config.download.workers,
                ring,
                progress,
            ));
            // The adopter's end closes the channel, which ends the rows thread.
            let adopted = adopter.finish();
            (done, adopted, rows.join().unwrap_or_default())
        });
        let deferred = on_demand.len();
        let mut downloaded = on_demand;
        let mut failures = Vec::new();
        let mut rejected = std::collections::HashSet::new();
        for (i, reason) in held_failures {
            rejected.insert(i);
            failures.push((plan.entries[i].nevra().to_string(), reason));
        }
        for d in done {
            // Bytes that crossed the wire count even for a package that then failed.
            ledger.bytes += d.transferred;
            ledger.resumed += d.resumed;
            match d.result {
                Ok(sha256) => {
                    // Its signature rows went in with its blob row (the adopter's batch).
                    if let Some(c) = &d.checked {
                        signatures::log_notes(&plan.entries[d.index].nevra().to_string(), c);
                    }
                    downloaded.insert(d.index, sha256);
                }
                Err(e) => failures.push((plan.entries[d.index].nevra().to_string(), e)),
            }
        }
        progress.finish();
        adopted?;
        // What the checks of the files the pool held found (the downloads' went in with their
        // blob rows), recorded whatever the sync's outcome: a rerun need not read them again.
        catalogue.record_signatures(&held_signatures)?;
        // One journal commit makes every link of this run durable, before a version refers
        // to the new files.
        pool.sync_filesystem()?;
        self.check_cancel()?;
        failures.sort();
        Ok(Executed {
            downloaded,
            deferred,
            early_rows,
            rejected,
            failures,
        })
    }

    /// Package rows, repodata (upstream's, or written for the set) and the one transaction
    /// that publishes the version.
    #[allow(clippy::too_many_arguments)]
    fn commit(
        &self,
        repo: &RepoConfig,
        repo_id: i64,
        sync_id: i64,
        upstream: &Upstream,
        plan: &Plan,
        executed: Executed,
        latest: LatestState,
        opts: SyncOptions,
        ledger: &Ledger,
    ) -> Result<Report> {
        let (catalogue, pool, progress) = (self.catalogue, &self.pool, self.progress);
        let Executed {
            downloaded,
            deferred,
            early_rows,
            rejected,
            failures,
        } = executed;
        if !failures.is_empty() && !opts.allow_partial {
            return Err(SyncError::PackagesFailed {
                repo: repo.name.clone(),
                total: plan.entries.len(),
                failures,
                latest: latest.version,
            });
        }
        progress.phase("commit: publishing the new version");
        // Upstream's repodata describes exactly upstream's set; anything else gets its own.
        let generate = plan.regenerate.is_some() || !failures.is_empty();
        let inputs = self.manifest_inputs(repo, repo_id, upstream, plan, generate, false)?;
        let mut manifest = manifest::build(&inputs);
        manifest.settle_packages(&downloaded, &rejected);
        let content = manifest.content();
        // The file of each plan entry still without a package row: known from the start, or
        // downloaded now.
        let sha: Vec<Option<&Sha256>> = plan
            .entries
            .iter()
            .enumerate()
            .map(|(n, e)| {
                if rejected.contains(&n) || early_rows.contains(&n) {
                    return None;
                }
                e.sha256.as_ref().or(downloaded.get(&n))
            })
            .collect();
        let mut rows = new_package_rows(&upstream.parsed, plan, &sha);
        catalogue.insert_packages(&mut rows)?;
        // The executors of what is not in the pool yet: chantal's repodata, then its signature.
        if generate {
            if upstream.repomd_asc.is_some() && upstream.signer.is_none() {
                tracing::warn!("{}: {}", repo.name, crate::trust::REPODATA_UNSIGNED);
            }
            let previous_updateinfo = if repo.retention.policy == Policy::KeepAll {
                catalogue.latest_metadata_path(repo_id, &MetadataKind::Updateinfo)?
            } else {
                None
            };
            manifest.fill_generated(chantal_common::repodata::generate(
                pool,
                catalogue,
                &chantal_common::repodata::Inputs {
                    content: &content,
                    upstream: &upstream.files,
                    previous_updateinfo,
                    revision: upstream.revision.as_deref(),
                },
            )?);
        }
        if let Some(signer) = &upstream.signer {
            let repomd = manifest.repomd_sha256().cloned();
            let (asc, key) = signatures::sign_repomd(self, repo, repo_id, signer, repomd.as_ref())?;
            manifest.fill_signed(&asc, &key);
        }
        let metadata = manifest.metadata_rows();
        let result = self.with_seal(upstream.signer.as_ref(), |seal| {
            catalogue.commit_version(CommitInput {
                repository_id: repo_id,
                repository: &repo.name,
                sync_id,
                content: &content,
                metadata: &metadata,
                repomd_revision: upstream.revision.as_deref(),
                upstream_repomd: ledger.repomd_sha256.as_ref(),
                seal,
            })
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
            excluded: i64::try_from(plan.counts.excluded).unwrap_or(i64::MAX),
            bytes: ledger.bytes,
            resumed: ledger.resumed,
            on_demand: deferred,
            elapsed: Duration::ZERO,
            failures,
            plan: None,
        })
    }

    /// Runs `f` with how this sync seals a version: the manifest goes to the pool, signed by
    /// `signer` (killed with the sync when it is a command) when there is one.
    fn with_seal<T>(
        &self,
        signer: Option<&crate::trust::RepoSigner>,
        f: impl FnOnce(&Seal<'_>) -> T,
    ) -> T {
        let sign = |path: &std::path::Path, data: &[u8]| match signer {
            Some(s) => s.sign(path, data, &self.cancel).map_err(|e| e.to_string()),
            None => Err("no signing key".to_string()),
        };
        let write = self.pool.seal_writer();
        f(&Seal {
            write: &write,
            sign: signer.map(|_| &sign as _),
        })
    }

    /// Stores a small file (repodata, a key, a signature) in the pool and records it.
    pub(super) fn store(&self, bytes: &[u8], name: &str) -> Result<StoredBlob> {
        let placed = self.pool.put_reader(bytes, name)?;
        Ok(self
            .pool
            .record(self.catalogue, vec![(placed, None)])?
            .remove(0))
    }

    fn check_cancel(&self) -> Result<()> {
        if self.cancel.is_cancelled() {
            Err(SyncError::Interrupted)
        } else {
            Ok(())
        }
    }

    /// Whether every file of the latest version is in the pool with its recorded size (but
    /// for on-demand packages not fetched yet, unless the policy is `immediate` again: then
    /// the sync fetches them).
    fn pool_holds_latest(&self, repo: &RepoConfig, repo_id: i64) -> Result<bool> {
        let immediate = repo.download_policy(&self.config.download) == DownloadPolicy::Immediate;
        for (path, size) in self.catalogue.latest_blob_paths(repo_id, immediate)? {
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
                .entry(u.checksum_kind())
                .or_default()
                .push(u.checksum_value());
        }
        let mut known = HashMap::new();
        for (kind, values) in by_kind {
            let found = self.catalogue.resolve_known(kind, &values)?;
            if kind == ChecksumType::Sha256 {
                let mut adopted = Vec::new();
                let unknown: Vec<&str> = values
                    .iter()
                    .filter(|v| !found.contains_key(**v))
                    .copied()
                    .collect();
                for (n, sha, path) in self.pool.find_all(&unknown)? {
                    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                    let rel = path
                        .strip_prefix(self.pool.data_dir())
                        .map(|p| p.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    let blob = StoredBlob {
                        sha256: sha.clone(),
                        size,
                        rel_path: rel.clone(),
                        written: false,
                    };
                    adopted.push((blob, None));
                    known.insert(
                        unknown[n].to_string(),
                        KnownBlob {
                            sha256: sha,
                            size: i64::try_from(size).unwrap_or(i64::MAX),
                            path: rel,
                            has_package: false,
                        },
                    );
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
        let unresolved: Vec<&UpPkg> = parsed
            .packages
            .iter()
            .filter(|p| {
                p.checksum_kind() != ChecksumType::Sha256 && !known.contains_key(p.checksum_value())
            })
            .collect();
        let wanted: Vec<NevraSize> = unresolved
            .iter()
            .map(|p| NevraSize {
                nevra: p.nevra().to_nevra(),
                size: i64::try_from(p.size_package).unwrap_or(i64::MAX),
            })
            .collect();
        let mut candidates: HashMap<String, Vec<KnownBlob>> = HashMap::new();
        for (k, blob) in self.catalogue.candidates_by_nevra(&wanted)? {
            candidates.entry(k).or_default().push(blob);
        }
        let mut adopted = Vec::new();
        for (p, w) in unresolved.iter().zip(&wanted) {
            for blob in candidates.get(&w.key()).into_iter().flatten() {
                let path = self.pool.absolute(&blob.path);
                let Ok(mut f) = std::fs::File::open(&path) else {
                    continue;
                };
                let mut h = chantal_common::rpm::checksum::Hasher::new(p.checksum_kind());
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    use std::io::Read;
                    match f.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => h.update(&buf[..n]),
                        Err(e) => return Err(Error::io("cannot read", &path, e).into()),
                    }
                }
                if h.finish() == p.checksum_value() {
                    adopted.push((
                        StoredBlob {
                            sha256: blob.sha256.clone(),
                            size: u64::try_from(blob.size).unwrap_or(0),
                            rel_path: blob.path.clone(),
                            written: false,
                        },
                        Some((p.checksum_kind(), p.checksum_value().to_string())),
                    ));
                    known.insert(p.checksum_value().to_string(), blob.clone());
                    break;
                }
            }
        }
        self.catalogue.record_blobs(&adopted)?;
        Ok(())
    }
}

/// Package rows to create (for files whose row does not exist yet), read from the spill one
/// at a time.
fn new_package_rows<'a>(
    parsed: &'a Parsed,
    plan: &'a Plan<'a>,
    sha: &'a [Option<&'a Sha256>],
) -> impl Iterator<Item = chantal_common::Result<NewPackage>> + 'a {
    plan.entries
        .iter()
        .zip(sha)
        .filter_map(move |(e, s)| package_row(parsed, e, (*s)?))
}

/// The package row of plan entry `e` as the file `sha` (its fragments read back from the
/// spill), unless the catalogue has it already.
fn package_row(
    parsed: &Parsed,
    e: &plan::Entry<'_>,
    sha: &Sha256,
) -> Option<chantal_common::Result<NewPackage>> {
    if e.has_row {
        return None;
    }
    let u = e.upstream_package()?;
    // Packages without a spilled fragment are in the latest version: their row exists.
    let primary = u.primary?;
    let build = || -> chantal_common::Result<NewPackage> {
        let (row, primary_xml) = RowFields::read(&parsed.spills.primary, primary)?;
        Ok(NewPackage {
            sha256: sha.clone(),
            nevra: u.nevra().to_nevra(),
            checksum_type: u.checksum_kind().as_str().to_string(),
            checksum: u.checksum_value().to_string(),
            size_package: i64::try_from(u.size_package).unwrap_or(i64::MAX),
            size_installed: row.size_installed.and_then(|s| i64::try_from(s).ok()),
            size_archive: row.size_archive.and_then(|s| i64::try_from(s).ok()),
            time_file: row.time_file,
            time_build: row.time_build,
            sourcerpm: row.sourcerpm,
            primary_xml,
            filelists_xml: fragment(&parsed.spills.filelists, u.filelists)?,
            other_xml: fragment(&parsed.spills.other, u.other)?,
        })
    };
    Some(build())
}

/// The fragment at `span` of a spill that has it.
fn fragment(spill: &Option<Spill>, span: Option<Span>) -> chantal_common::Result<Option<String>> {
    match (spill, span) {
        (Some(spill), Some(span)) => spill.get(span).map(Some),
        _ => Ok(None),
    }
}

/// While the packages download: creates the rows of those whose blobs each batch recorded,
/// work the commit would otherwise do after the last download (package rows are shared and
/// immutable, and protected from cleanup with their blobs). Returns the plan entries given a
/// row. A failure ends it early: the commit creates whatever rows are missing.
fn early_package_rows(
    catalogue: &Catalogue,
    parsed: &Parsed,
    plan: &Plan<'_>,
    recorded: std::sync::mpsc::Receiver<packages::Recorded>,
) -> std::collections::HashSet<usize> {
    let mut done = std::collections::HashSet::new();
    while let Ok(first) = recorded.recv() {
        // Batches that arrived meanwhile go in the same transaction.
        let batches: Vec<packages::Recorded> =
            std::iter::once(first).chain(recorded.try_iter()).collect();
        let batch: Vec<(usize, &Sha256)> = batches
            .iter()
            .flatten()
            .map(|(n, sha)| (*n, sha))
            .filter(|(n, _)| plan.entries.get(*n).is_some_and(|e| !e.has_row))
            .collect();
        let mut rows = batch
            .iter()
            .filter_map(|(n, sha)| package_row(parsed, &plan.entries[*n], sha));
        match catalogue.insert_packages(&mut rows) {
            Ok(_) => done.extend(batch.iter().map(|(n, _)| *n)),
            Err(e) => {
                tracing::debug!("package rows ahead of the commit: {e}");
                break;
            }
        }
    }
    done
}

/// What the fetch phase brought: nothing to do, or upstream's metadata, verified and parsed.
enum Fetched {
    UpToDate(Report),
    Upstream(Box<Upstream>),
}

/// Upstream's metadata, in the pool and parsed.
struct Upstream {
    revision: Option<String>,
    repomd_blob: StoredBlob,
    /// Upstream's verified signature of repomd.xml (`rpm.repo_gpgcheck`).
    repomd_asc: Option<StoredBlob>,
    /// The repository's keys, when it has any, and their armored file in the pool.
    trust: Option<Trust>,
    key_blob: Option<StoredBlob>,
    /// `publish.sign`.
    signer: Option<crate::trust::RepoSigner>,
    files: Vec<MetaFile>,
    /// The installer tree, when upstream has one (and `rpm.installer_tree` is `auto`).
    tree: Option<tree::Stored>,
    parsed: Parsed,
}

/// What the downloads did: the sha256 of each entry (by index in the plan) that arrived,
/// the held entries whose signature check failed, and the packages that failed, with why.
struct Executed {
    /// The file of each plan entry fetched now, or left for a client's first read.
    downloaded: HashMap<usize, Sha256>,
    /// How many of those are on demand (not in the pool yet).
    deferred: usize,
    /// Plan entries whose package rows were created during the downloads.
    early_rows: std::collections::HashSet<usize>,
    rejected: std::collections::HashSet<usize>,
    failures: Vec<(String, String)>,
}

/// What a run accumulated, kept even when it fails.
#[derive(Default)]
struct Ledger {
    repomd_sha256: Option<Sha256>,
    /// [`SyncSettings::encode`], once the keys are known.
    settings: Option<String>,
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
            excluded: 0,
            bytes: 0,
            resumed: 0,
            on_demand: 0,
            elapsed: Duration::ZERO,
            failures: Vec::new(),
            plan: None,
        }
    }

    fn dry_run(plan: &Plan<'_>, view: PlanView) -> Report {
        let c = plan.counts;
        let n = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
        Report {
            outcome: Outcome::DryRun {
                to_download: c.download,
                in_pool: c.reuse,
                tree_files: view.tree.len(),
            },
            added: n(c.added),
            removed: n(c.removed),
            unchanged: n(c.unchanged),
            excluded: n(c.excluded),
            bytes: c.download_bytes,
            resumed: 0,
            on_demand: 0,
            elapsed: Duration::ZERO,
            failures: Vec::new(),
            plan: Some(Box::new(view)),
        }
    }
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

pub fn pid() -> i32 {
    i32::try_from(std::process::id()).unwrap_or(i32::MAX)
}

/// `1.5 GiB` and the like, for log lines.
pub fn human_bytes(n: u64) -> String {
    crate::output::bytes(i64::try_from(n).unwrap_or(i64::MAX))
}
