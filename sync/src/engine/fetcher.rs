//! `chantal fetchd`'s work: one pool file fetched the first time a reader asks for it.
//!
//! A request names a blob by its sha256. It is answered only if a version of a configured
//! repository lists that file; the file is downloaded from that repository's upstream with
//! the sync's transport (credentials, proxy, retries, resume from a partial file), verified
//! (size, sha256, and the signature with `rpm.gpgcheck`) and only then given its pool name.
//! However many readers ask for one file at once, it is downloaded once: every request for a
//! sha256 being fetched follows the same [`State`]. A failure is remembered for
//! [`FAILURE_MEMORY`], so a burst of readers does not hammer a dead upstream, and logged once.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chantal_common::catalogue::{BlobUse, Catalogue};
use chantal_common::config::{Config, RepoConfig};
use chantal_common::fetch::Event;
use chantal_common::pool::Pool;
use chantal_common::rpm::href;
use chantal_common::Sha256;
use std::sync::Mutex;
use tokio::sync::watch;

use super::packages::open_partial;
use super::transport::{Expect, Transport};
use super::{signatures, Engine};
use crate::cancel::Cancel;
use crate::trust::{check_file, KeyRing};

/// How long a failed fetch is answered from memory: short, so a file upstream serves again
/// is fetched by a read a few seconds later.
pub const FAILURE_MEMORY: Duration = Duration::from_secs(5);

/// Bytes written between two progress reports to the readers.
const REPORT_EVERY: u64 = 1 << 20;

/// How far one fetch has got, as every request for its file sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    /// The partial file and the file's size, once the download has started.
    pub part: Option<(PathBuf, u64)>,
    /// Bytes of the partial file written.
    pub have: u64,
    /// The partial file is complete and verified.
    pub verified: bool,
    /// `Done` or `Failed`, at the end.
    pub end: Option<Event>,
}

/// The fetcher: configuration, catalogue, pool, and the fetches under way.
pub struct Fetcher {
    config: Arc<Config>,
    catalogue: Catalogue,
    pool: Pool,
    cancel: Cancel,
    /// Trusted keys of the repositories with `rpm.gpgcheck`, or why they could not be read.
    rings: HashMap<String, Result<Arc<KeyRing>, String>>,
    transports: Mutex<HashMap<String, Arc<Transport>>>,
    running: Mutex<HashMap<Sha256, watch::Receiver<State>>>,
    failed: Mutex<HashMap<Sha256, (Instant, String)>>,
}

impl Fetcher {
    /// Reads the trusted keys of every repository with `rpm.gpgcheck` (through `engine`,
    /// before the fetcher's own event loop runs).
    pub fn new(engine: &Engine<'_>, config: Arc<Config>) -> Fetcher {
        let mut rings = HashMap::new();
        for repo in config.repositories.iter().filter(|r| r.rpm.gpgcheck) {
            let ring = Transport::new(repo, &config.download, engine.cancel.clone())
                .and_then(|t| signatures::load_trust(engine, repo, &t))
                .map_err(|e| e.to_string())
                .and_then(|t| {
                    t.map(|t| t.ring)
                        .ok_or_else(|| "rpm.gpgcheck without trusted keys".to_string())
                });
            if let Err(e) = &ring {
                tracing::warn!("{}: its packages cannot be fetched: {e}", repo.name);
            }
            rings.insert(repo.name.clone(), ring);
        }
        Fetcher {
            catalogue: engine.catalogue.clone(),
            pool: engine.pool.clone(),
            cancel: engine.cancel.clone(),
            config,
            rings,
            transports: Mutex::default(),
            running: Mutex::default(),
            failed: Mutex::default(),
        }
    }

    /// Follows the fetch of `sha256`, starting it unless it is under way (or failed moments
    /// ago: then the answer is that failure).
    pub fn follow(self: &Arc<Self>, sha256: Sha256) -> watch::Receiver<State> {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(rx) = running.get(&sha256) {
            return rx.clone();
        }
        if let Some((at, reason)) = self
            .failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&sha256)
        {
            if at.elapsed() < FAILURE_MEMORY {
                let (_, rx) = watch::channel(State {
                    end: Some(Event::Failed {
                        reason: reason.clone(),
                    }),
                    ..State::default()
                });
                return rx;
            }
        }
        let (tx, rx) = watch::channel(State::default());
        running.insert(sha256.clone(), rx.clone());
        drop(running);
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let end = match me.fetch(&sha256, &tx).await {
                Ok(path) => {
                    me.failed
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&sha256);
                    Event::Done { path }
                }
                Err(reason) => {
                    // Logged once per failure; requests within FAILURE_MEMORY get it unlogged.
                    tracing::warn!("cannot fetch {sha256}: {reason}");
                    let mut failed = me.failed.lock().unwrap_or_else(|p| p.into_inner());
                    // Only failures still remembered are kept.
                    failed.retain(|_, (at, _)| at.elapsed() < FAILURE_MEMORY);
                    failed.insert(sha256.clone(), (Instant::now(), reason.clone()));
                    Event::Failed { reason }
                }
            };
            tx.send_modify(|s| s.end = Some(end));
            me.running
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&sha256);
        });
        rx
    }

    /// The file at its pool name: already there, or fetched from an upstream that lists it.
    async fn fetch(&self, sha256: &Sha256, tx: &watch::Sender<State>) -> Result<PathBuf, String> {
        let blob = {
            let (catalogue, sha) = (self.catalogue.clone(), sha256.clone());
            blocking(move || catalogue.blob(&sha)).await?
        };
        let Some(blob) = blob else {
            return Err("no version in the catalogue lists this file".into());
        };
        let size = u64::try_from(blob.size).unwrap_or(0);
        let path = self.pool.absolute(&blob.path);
        if std::fs::metadata(&path).is_ok_and(|m| m.len() == size) {
            return Ok(path);
        }
        let uses = {
            let (catalogue, sha) = (self.catalogue.clone(), sha256.clone());
            blocking(move || catalogue.blob_uses(&[&sha])).await?
        };
        let sources = sources(&self.config, &uses);
        if sources.is_empty() {
            return Err("no version of a configured repository lists this file".into());
        }
        let mut last = String::new();
        for (repo, href) in sources {
            match self
                .download(repo, href, sha256, size, &blob.path, tx)
                .await
            {
                Ok(()) => return Ok(path),
                Err(e) => last = format!("{}: {e}", repo.name),
            }
        }
        Err(last)
    }

    fn transport(&self, repo: &RepoConfig) -> Result<Arc<Transport>, String> {
        let mut transports = self.transports.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = transports.get(&repo.name) {
            return Ok(Arc::clone(t));
        }
        let t = Arc::new(
            Transport::new(repo, &self.config.download, self.cancel.clone())
                .map_err(|e| e.to_string())?,
        );
        transports.insert(repo.name.clone(), Arc::clone(&t));
        Ok(t)
    }

    /// Downloads `href` of `repo` into a partial file (resuming one a killed fetcher or sync
    /// left), reporting progress on `tx`, verifies it and puts it at `rel_path`.
    async fn download(
        &self,
        repo: &RepoConfig,
        href: &str,
        sha256: &Sha256,
        size: u64,
        rel_path: &str,
        tx: &watch::Sender<State>,
    ) -> Result<(), String> {
        let transport = self.transport(repo)?;
        let ring = match self.rings.get(&repo.name) {
            None => None,
            Some(Ok(ring)) => Some(Arc::clone(ring)),
            Some(Err(e)) => return Err(format!("its trusted keys: {e}")),
        };
        let tmp = self.pool.tmp_dir();
        // The sync names its partial files so: a fetch resumes what a sync left, and the other
        // way round. One that another process holds locked is not touched.
        let stable = tmp.join(format!("pkg-sha256-{sha256}.part"));
        let (part, mut file) = match open_partial(&stable, true).map_err(|e| e.to_string())? {
            Some(f) => (stable, f),
            None => {
                let private = tmp.join(format!(
                    "pkg-sha256-{sha256}.fetchd-{}.part",
                    std::process::id()
                ));
                let f = open_partial(&private, false)
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| format!("cannot lock {}", private.display()))?;
                (private, f)
            }
        };
        let have = |tx: &watch::Sender<State>| {
            let bytes = std::fs::metadata(&part).map_or(0, |m| m.len()).min(size);
            tx.send_if_modified(|s| {
                let changed = s.have != bytes;
                s.have = bytes;
                changed
            });
        };
        tx.send_modify(|s| s.part = Some((part.clone(), size)));
        have(tx);
        let expect = Expect::blob(sha256, size);
        // Reported per MiB written, not per chunk: every report wakes each follower, and
        // chunks are a few KiB.
        let unreported = std::sync::atomic::AtomicU64::new(0);
        let progress = |n: u64| {
            use std::sync::atomic::Ordering;
            if unreported.fetch_add(n, Ordering::Relaxed) + n >= REPORT_EVERY {
                unreported.store(0, Ordering::Relaxed);
                have(tx);
            }
        };
        transport
            .download(href, &part, &mut file, &expect, &progress)
            .await
            .map_err(|e| e.to_string())?;
        have(tx);
        // What the check found is recorded with the blob, as a sync's downloads are: a later
        // sync trusting the key need not read the file again.
        let mut verified = Vec::new();
        if let Some(ring) = ring {
            let outcome;
            (file, outcome) = blocking(move || {
                let outcome = check_file(&file, &ring);
                Ok((file, outcome))
            })
            .await?;
            match outcome {
                Ok(checked) => verified.push(checked.record(sha256)),
                Err(rejected) => {
                    drop(file);
                    let _ = std::fs::remove_file(&part);
                    return Err(format!(
                        "{}: signature check failed: {rejected}",
                        transport.url(href)
                    ));
                }
            }
        }
        // Readers may have the whole file now; giving it its pool name (a flush of its data
        // first) is no longer their wait.
        tx.send_modify(|s| s.verified = true);
        let (pool, catalogue) = (self.pool.clone(), self.catalogue.clone());
        // The name the catalogue recorded (another repository may list the file under
        // another one): the file must appear where readers look for it.
        let name = rel_path
            .rsplit('/')
            .next()
            .and_then(|n| n.split_once('_'))
            .map_or_else(|| href::file_name(href), |(_, n)| n)
            .to_string();
        let sha = sha256.clone();
        blocking(move || {
            // The data is on disk before the file has its pool name.
            file.sync_data()
                .map_err(|e| chantal_common::Error::io("cannot sync", &part, e))?;
            let placed = pool.place(&part, &sha, size, &name)?;
            pool.record_checked(&catalogue, vec![(placed, None)], &verified)?;
            drop(file);
            Ok(())
        })
        .await?;
        Ok(())
    }
}

/// Where to fetch a file from: each configured repository's href for it, those that latest
/// lists first, then by newest version.
fn sources<'a>(config: &'a Config, uses: &'a [BlobUse]) -> Vec<(&'a RepoConfig, &'a str)> {
    let mut ranked: Vec<(bool, i64, &RepoConfig, &str)> = uses
        .iter()
        .filter_map(|u| {
            let repo = config
                .repositories
                .iter()
                .find(|r| r.name == u.repository)?;
            Some((u.removed_in.is_none(), u.added_in, repo, u.href.as_str()))
        })
        .collect();
    ranked.sort_by_key(|r| std::cmp::Reverse((r.0, r.1)));
    let mut seen = std::collections::HashSet::new();
    ranked
        .into_iter()
        .filter(|(_, _, r, h)| seen.insert((r.name.as_str(), *h)))
        .map(|(_, _, r, h)| (r, h))
        .collect()
}

/// Runs blocking catalogue or file work off the event loop.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> chantal_common::Result<T> + Send + 'static,
) -> Result<T, String> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(format!("internal error: {e}")),
    }
}
