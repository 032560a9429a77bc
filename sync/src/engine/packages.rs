//! The package phase: download every package the pool lacks, in parallel, each streamed to a
//! partial file (kept for resume) and verified. Verified files go to the [`Adopter`], which
//! makes a batch durable with one file-system sync, moves it into the pool and records it in
//! the catalogue, so an interrupted sync loses no finished download and no file ever sits under
//! its pool name before its data is on disk.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use chantal_common::catalogue::{Catalogue, SignatureRecord};
use chantal_common::pool::{Pool, StoredBlob};
use chantal_common::rpm::primary::MAX_PACKAGE_SIZE;
use chantal_common::rpm::{href, Checksum, ChecksumType};
use chantal_common::Error;
use chantal_common::Sha256;
use futures_util::stream::{self, StreamExt};

use super::error::SyncError;
use super::progress::Progress;
use super::transport::{Downloaded, Expect, Transport};
use crate::trust::{check_file, Checked, KeyRing};

/// Files moved into the pool per file-system sync (and recorded per catalogue round trip).
const BATCH: usize = 256;
/// Files at least this large flush their data as soon as they are verified.
const EARLY_FLUSH: u64 = 16 << 20;
/// Longest a verified file waits for its batch.
const BATCH_WAIT: Duration = Duration::from_millis(100);
/// Verified files waiting for the adopter at most (each holds an open descriptor): a fast
/// upstream (file://, a LAN mirror) must not outrun the pool's batches into EMFILE. Within
/// half the open-files limit left after 256 for everything else (the binaries raise the soft
/// limit to the hard one at start; where that stays 1024, 384 wait).
fn max_pending() -> usize {
    let limit = chantal_common::limits::open_files_limit();
    let room = usize::try_from(limit.saturating_sub(256) / 2).unwrap_or(usize::MAX);
    room.clamp(16, 4 * BATCH)
}

/// One package to fetch: its index (in the plan, or the caller's list), what progress calls
/// it, and where upstream lists it with which size and checksum. Owned: it travels to the
/// runtime's worker threads.
pub struct Job {
    pub index: usize,
    pub label: String,
    pub href: String,
    pub checksum: Checksum,
    pub size: u64,
}

/// What became of a job: the file's sha256, or why it failed.
pub struct Done {
    pub index: usize,
    pub result: Result<Sha256, String>,
    /// The signature check it passed (`rpm.gpgcheck`).
    pub checked: Option<Checked>,
    /// Bytes transferred in this run, and bytes an earlier run had fetched (resumed).
    pub transferred: u64,
    pub resumed: u64,
}

/// A verified download waiting to be moved into the pool. Holding `file` holds the partial
/// file's lock.
struct Pending {
    /// The job's index.
    index: usize,
    part: PathBuf,
    file: File,
    /// Released when the file has been adopted (or given up).
    _slot: tokio::sync::OwnedSemaphorePermit,
    sha256: Sha256,
    size: u64,
    name: String,
    checksum: (ChecksumType, String),
    checked: Option<Checked>,
}

/// Moves verified downloads into the pool in batches, on a thread of its own (the catalogue
/// client is blocking).
pub struct Adopter {
    tx: Option<mpsc::Sender<Pending>>,
    slots: Arc<tokio::sync::Semaphore>,
    handle: Option<std::thread::JoinHandle<Result<Vec<StoredBlob>, Error>>>,
}

/// The jobs (index and sha256) of a batch the catalogue has just recorded.
pub type Recorded = Vec<(usize, Sha256)>;

impl Adopter {
    /// An adopter; `recorded`, if given, hears of every batch once its blobs are recorded.
    pub fn new(
        pool: Pool,
        catalogue: Catalogue,
        recorded: Option<mpsc::Sender<Recorded>>,
    ) -> Adopter {
        let (tx, rx) = mpsc::channel::<Pending>();
        let handle = std::thread::spawn(move || {
            let mut batch: Vec<Pending> = Vec::new();
            let mut stored = Vec::new();
            let mut first_error: Option<Error> = None;
            loop {
                let closed = match rx.recv_timeout(BATCH_WAIT) {
                    Ok(p) => {
                        batch.push(p);
                        if batch.len() < BATCH {
                            continue;
                        }
                        false
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => false,
                    Err(mpsc::RecvTimeoutError::Disconnected) => true,
                };
                if !batch.is_empty() {
                    let taken = std::mem::take(&mut batch);
                    // After a failure the rest stay as partial files for the next run.
                    if first_error.is_none() {
                        let indices: Vec<usize> = taken.iter().map(|p| p.index).collect();
                        match adopt_batch(&pool, &catalogue, taken) {
                            Ok(blobs) => {
                                if let Some(recorded) = &recorded {
                                    let batch = indices
                                        .into_iter()
                                        .zip(blobs.iter().map(|b| b.sha256.clone()))
                                        .collect();
                                    // The listener only gets ahead with work the commit
                                    // does anyway: one that went away changes nothing.
                                    let _ = recorded.send(batch);
                                }
                                stored.extend(blobs)
                            }
                            Err(e) => first_error = Some(e),
                        }
                    }
                }
                if closed {
                    break;
                }
            }
            first_error.map_or(Ok(stored), Err)
        });
        Adopter {
            tx: Some(tx),
            slots: Arc::new(tokio::sync::Semaphore::new(max_pending())),
            handle: Some(handle),
        }
    }

    fn sender(&self) -> Option<mpsc::Sender<Pending>> {
        self.tx.clone()
    }

    /// Waits for the last batch; returns every blob moved into the pool, or the first error.
    pub fn finish(mut self) -> Result<Vec<StoredBlob>, Error> {
        self.tx.take();
        match self.handle.take().map(|h| h.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(Error::Internal("the pool adopter thread panicked".into())),
            None => Ok(Vec::new()),
        }
    }
}

fn adopt_batch(
    pool: &Pool,
    catalogue: &Catalogue,
    batch: Vec<Pending>,
) -> Result<Vec<StoredBlob>, Error> {
    // One sync makes the data of the whole batch durable before any of it gets a pool name.
    pool.sync_filesystem()?;
    let mut placed = Vec::with_capacity(batch.len());
    let mut locks = Vec::with_capacity(batch.len());
    // What the files' signature checks found goes in with their blob rows: recorded while
    // the next files download, not all at the sync's end.
    let signatures: Vec<SignatureRecord> = batch
        .iter()
        .filter_map(|p| Some(p.checked.as_ref()?.record(&p.sha256)))
        .collect();
    for p in batch {
        placed.push((
            pool.place(&p.part, &p.sha256, p.size, &p.name)?,
            Some(p.checksum),
        ));
        // The partial files stay locked until recorded and settled (they are the copies a
        // settle restores from).
        locks.push(p.file);
    }
    let stored = pool.record_checked(catalogue, placed, &signatures)?;
    drop(locks);
    Ok(stored)
}

/// `download.policy: on_demand`: of `jobs`, the packages upstream lists with a sha256 are
/// recorded as absent blobs (primary.xml's size and sha256; chantal fetchd brings the file when
/// a client first reads it) and returned by plan index; the rest are returned to be fetched
/// now, since the pool names a file by its sha256 and only a download tells that of a package
/// listed under another checksum.
/// The pool name of a package listed under `checksum`, known before any download: its sha256
/// when upstream lists one. What `download.policy: on_demand` can leave for later.
pub fn on_demand_sha256(kind: ChecksumType, value: &str) -> Option<Sha256> {
    (kind == ChecksumType::Sha256)
        .then(|| Sha256::parse(value).ok())
        .flatten()
}

pub fn defer(
    catalogue: &Catalogue,
    jobs: Vec<Job>,
) -> Result<(std::collections::HashMap<usize, Sha256>, Vec<Job>), SyncError> {
    let mut deferred = std::collections::HashMap::new();
    let mut blobs = Vec::new();
    let mut now = Vec::new();
    for job in jobs {
        let Some(sha256) = on_demand_sha256(job.checksum.kind, &job.checksum.value) else {
            now.push(job);
            continue;
        };
        let rel_path = Pool::relative_path(&sha256, href::file_name(&job.href))?;
        blobs.push((
            StoredBlob {
                sha256: sha256.clone(),
                size: job.size,
                rel_path,
                written: false,
            },
            None,
        ));
        deferred.insert(job.index, sha256);
    }
    if !now.is_empty() {
        tracing::info!(
            "{} packages are listed under {} checksums, not sha256: fetched now (an on-demand \
             file is named by its sha256, which only the download tells)",
            now.len(),
            now[0].checksum.kind
        );
    }
    catalogue.record_absent_blobs(&blobs)?;
    Ok((deferred, now))
}

/// Downloads every job with `workers` in parallel and hands verified files to `adopter`.
/// Returns one [`Done`] per job that ran (all of them unless interrupted).
///
/// Each download is a task of its own on the runtime's worker threads: creating, writing and
/// hashing thousands of small files is per-file kernel work that one thread polling every
/// download would serialise (the bound of a cold sync of many small packages).
pub async fn download_all(
    transport: Arc<Transport>,
    pool: &Pool,
    adopter: &Adopter,
    jobs: Vec<Job>,
    workers: usize,
    ring: Option<Arc<KeyRing>>,
    progress: &Progress,
) -> Vec<Done> {
    let span = tracing::Span::current();
    stream::iter(jobs)
        .map(|job| {
            let (transport, pool, ring) = (transport.clone(), pool.clone(), ring.clone());
            let (progress, sender) = (progress.clone(), adopter.sender());
            let slots = Arc::clone(&adopter.slots);
            let index = job.index;
            let task = tokio::spawn(tracing::Instrument::instrument(
                async move {
                    let fetched = match slots.acquire_owned().await {
                        Ok(slot) => fetch_one(&transport, &pool, &job, ring, &progress, slot).await,
                        Err(_) => Err(SyncError::Interrupted),
                    };
                    finish_one(job, fetched, sender, &progress)
                },
                span.clone(),
            ));
            async move {
                task.await.unwrap_or_else(|e| Done {
                    index,
                    result: Err(format!("the download task failed: {e}")),
                    checked: None,
                    transferred: 0,
                    resumed: 0,
                })
            }
        })
        .buffer_unordered(workers.max(1))
        .collect()
        .await
}

/// Hands a verified download to the adopter and reports it.
fn finish_one(
    job: Job,
    fetched: Result<(Pending, Downloaded), SyncError>,
    sender: Option<mpsc::Sender<Pending>>,
    progress: &Progress,
) -> Done {
    let (mut transferred, mut resumed) = (0, 0);
    let mut checked = None;
    let result = match fetched {
        Ok((pending, d)) => {
            (transferred, resumed) = (d.transferred, d.resumed);
            let sha256 = pending.sha256.clone();
            checked = pending.checked.clone();
            progress.package(&job.label, Ok(pending.size));
            match sender.map(|s| s.send(pending).is_ok()) {
                Some(true) => Ok(sha256),
                _ => Err("the pool adopter stopped".to_string()),
            }
        }
        Err(SyncError::Interrupted) => Err("interrupted".to_string()),
        Err(e) => {
            let msg = e.to_string();
            progress.package(&job.label, Err(&msg));
            Err(msg)
        }
    };
    Done {
        index: job.index,
        result,
        checked,
        transferred,
        resumed,
    }
}

async fn fetch_one(
    transport: &Transport,
    pool: &Pool,
    p: &Job,
    ring: Option<Arc<KeyRing>>,
    progress: &Progress,
    slot: tokio::sync::OwnedSemaphorePermit,
) -> Result<(Pending, Downloaded), SyncError> {
    let tmp = pool.tmp_dir();
    let stable = tmp.join(format!("pkg-{}-{}.part", p.checksum.kind, p.checksum.value));
    // Another repository's sync may be fetching the same file into the same partial path: the
    // lock decides who resumes it; the other downloads to a private name.
    let (part, mut file) = match open_partial(&stable, true)? {
        Some(f) => (stable, f),
        None => {
            let private = tmp.join(format!(
                "pkg-{}-{}.{}.part",
                p.checksum.kind,
                p.checksum.value,
                std::process::id()
            ));
            let f = open_partial(&private, false)?.ok_or_else(|| SyncError::Transport {
                url: p.href.to_string(),
                reason: format!("cannot lock {}", private.display()),
            })?;
            (private, f)
        }
    };
    let expect = Expect {
        size: Some(p.size),
        checksum: p.checksum.clone(),
        max_size: MAX_PACKAGE_SIZE,
    };
    let d = transport
        .download(&p.href, &part, &mut file, &expect, &|n| progress.bytes(n))
        .await?;
    // Checked before it can get a pool name: a file that fails never enters the pool, and
    // its partial file goes (it is complete and verified; only its signature is wrong).
    let checked = match ring {
        None => None,
        Some(ring) => {
            // The descriptor goes to the check and comes back with its verdict.
            let outcome;
            (file, outcome) = tokio::task::spawn_blocking(move || {
                let outcome = check_file(&file, &ring);
                (file, outcome)
            })
            .await
            .map_err(|e| SyncError::Transport {
                url: p.href.to_string(),
                reason: e.to_string(),
            })?;
            match outcome {
                Ok(c) => Some(c),
                Err(rejected) => {
                    drop(file);
                    let _ = std::fs::remove_file(&part);
                    return Err(SyncError::Signature {
                        url: transport.url(&p.href),
                        reason: rejected.to_string(),
                    });
                }
            }
        }
    };
    // A large file's data is flushed here, overlapping the other downloads, rather than all
    // at once in the batch sync (which stays cheap for the many small files).
    if d.size >= EARLY_FLUSH {
        let f = file
            .try_clone()
            .map_err(|e| SyncError::Common(Error::io("cannot open", &part, e)))?;
        let path = part.clone();
        tokio::task::spawn_blocking(move || f.sync_data())
            .await
            .map_err(|e| SyncError::Transport {
                url: p.href.to_string(),
                reason: e.to_string(),
            })?
            .map_err(|e| SyncError::Common(Error::io("cannot sync", &path, e)))?;
    }
    Ok((
        Pending {
            index: p.index,
            part,
            file,
            _slot: slot,
            sha256: d.sha256.clone(),
            size: d.size,
            name: href::file_name(&p.href).to_string(),
            checksum: (p.checksum.kind, p.checksum.value.clone()),
            checked,
        },
        d,
    ))
}

/// Opens (creating) a partial file for reading and writing with an exclusive lock. `None` when
/// `shared` and another process holds the lock.
pub(super) fn open_partial(path: &Path, shared: bool) -> Result<Option<File>, SyncError> {
    // One creation at a time: the downloads run on several threads, and on ext4 without a
    // journal, threads creating files in one directory at once made each creation scan
    // inode after inode (`recently_deleted`): 17 % of the download threads' time on a cold
    // sync of 3,000 small packages, against 0.2 % with this lock.
    static CREATING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let open = || {
        let _one = CREATING.lock().unwrap_or_else(|e| e.into_inner());
        OpenOptions::new()
            .create(true)
            .truncate(!shared)
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| SyncError::Common(Error::io("cannot create", path, e)))
    };
    let f = open()?;
    if f.try_lock().is_err() {
        return Ok(None);
    }
    // A partial file is hard-linked into the pool until its blob is recorded; one a killed
    // run left linked must not be written through (that would write into the pool file).
    use std::os::unix::fs::MetadataExt;
    if f.metadata().is_ok_and(|m| m.nlink() > 1) {
        std::fs::remove_file(path)
            .map_err(|e| SyncError::Common(Error::io("cannot remove", path, e)))?;
        drop(f);
        let f = open()?;
        return Ok(f.try_lock().is_ok().then_some(f));
    }
    Ok(Some(f))
}
