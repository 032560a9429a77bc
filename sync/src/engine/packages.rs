//! The package phase: download every package the pool lacks, in parallel, each streamed to a
//! partial file (kept for resume), verified, and moved into the pool; blobs are recorded in
//! the catalogue in batches as they land, so an interrupted sync loses no finished download.

use std::fs::{File, OpenOptions};
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use chantal_common::catalogue::Catalogue;
use chantal_common::pool::{Pool, StoredBlob};
use chantal_common::rpm::primary::MAX_PACKAGE_SIZE;
use chantal_common::rpm::{href, ChecksumType, PrimaryPackage};
use chantal_common::Error;
use futures_util::stream::{self, StreamExt};

use super::error::SyncError;
use super::progress::Progress;
use super::transport::{Expect, Transport};

/// Blobs recorded per catalogue round trip.
const RECORD_BATCH: usize = 500;

/// One package to fetch.
pub struct Job {
    pub index: usize,
    pub package: PrimaryPackage,
}

/// What became of a job.
pub struct Done {
    pub index: usize,
    pub result: Result<(StoredBlob, u64), String>,
}

type Record = (StoredBlob, Option<(ChecksumType, String)>);

/// Records blobs on a thread of its own (the catalogue client is blocking).
pub struct Recorder {
    tx: Option<mpsc::Sender<Record>>,
    handle: Option<std::thread::JoinHandle<Result<(), Error>>>,
}

impl Recorder {
    pub fn new(catalogue: Catalogue) -> Recorder {
        let (tx, rx) = mpsc::channel::<Record>();
        let handle = std::thread::spawn(move || {
            let mut batch = Vec::new();
            let mut first_error = None;
            loop {
                match rx.recv_timeout(Duration::from_millis(200)) {
                    Ok(r) => {
                        batch.push(r);
                        if batch.len() < RECORD_BATCH {
                            continue;
                        }
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        if let Err(e) = catalogue.record_blobs(&batch) {
                            first_error.get_or_insert(e);
                        }
                        break;
                    }
                }
                if !batch.is_empty() {
                    if let Err(e) = catalogue.record_blobs(&batch) {
                        first_error.get_or_insert(e);
                    }
                    batch.clear();
                }
            }
            first_error.map_or(Ok(()), Err)
        });
        Recorder {
            tx: Some(tx),
            handle: Some(handle),
        }
    }

    fn sender(&self) -> Option<mpsc::Sender<Record>> {
        self.tx.clone()
    }

    /// Flushes and reports the first recording error, if any.
    pub fn finish(mut self) -> Result<(), Error> {
        self.tx.take();
        match self.handle.take().map(|h| h.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(Error::Missing("the blob recorder thread panicked".into())),
            None => Ok(()),
        }
    }
}

/// Downloads every job with `workers` in parallel. Returns one [`Done`] per job that ran (all of
/// them unless interrupted).
pub async fn download_all(
    transport: Arc<Transport>,
    pool: &Pool,
    recorder: &Recorder,
    jobs: Vec<Job>,
    workers: usize,
    progress: &Progress,
) -> Vec<Done> {
    stream::iter(jobs)
        .map(|job| {
            let transport = transport.clone();
            let sender = recorder.sender();
            async move {
                let nevra = job.package.nevra();
                let result = fetch_one(&transport, pool, &job.package, progress).await;
                let result = match result {
                    Ok((blob, transferred)) => {
                        if let Some(s) = sender {
                            let c = &job.package.checksum;
                            let _ = s.send((blob.clone(), Some((c.kind, c.value.clone()))));
                        }
                        progress.package(&nevra, Ok(blob.size));
                        Ok((blob, transferred))
                    }
                    Err(SyncError::Interrupted) => Err("interrupted".to_string()),
                    Err(e) => {
                        let msg = e.to_string();
                        progress.package(&nevra, Err(&msg));
                        Err(msg)
                    }
                };
                Done {
                    index: job.index,
                    result,
                }
            }
        })
        .buffer_unordered(workers.max(1))
        .collect()
        .await
}

async fn fetch_one(
    transport: &Transport,
    pool: &Pool,
    p: &PrimaryPackage,
    progress: &Progress,
) -> Result<(StoredBlob, u64), SyncError> {
    let tmp = pool.tmp_dir();
    let stable = tmp.join(format!("pkg-{}-{}.part", p.checksum.kind, p.checksum.value));
    // Another repository's sync may be fetching the same file into the same partial path: the
    // lock decides who resumes it; the other downloads to a private name.
    let (part, _lock) = match lock_partial(&stable) {
        Some(lock) => (stable, Some(lock)),
        None => (
            tmp.join(format!(
                "pkg-{}-{}.{}.part",
                p.checksum.kind,
                p.checksum.value,
                std::process::id()
            )),
            None,
        ),
    };
    let expect = Expect {
        size: Some(p.size_package),
        checksum: p.checksum.clone(),
        max_size: MAX_PACKAGE_SIZE,
    };
    let d = transport
        .download(&p.location_href, &part, &expect, &|n| progress.bytes(n))
        .await?;
    let name = href::file_name(&p.location_href).to_string();
    let pool = pool.clone();
    let blob = tokio::task::spawn_blocking(move || {
        let f = File::open(&part).map_err(|e| Error::io("cannot open", &part, e))?;
        pool.adopt_file(&f, &part, &d.sha256, d.size, &name)
    })
    .await
    .map_err(|e| SyncError::Transport {
        url: p.location_href.clone(),
        reason: e.to_string(),
    })??;
    Ok((blob, d.transferred))
}

/// An exclusive lock on the partial file, or `None` if another process holds it.
fn lock_partial(path: &PathBuf) -> Option<File> {
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .ok()?;
    f.try_lock().ok()?;
    Some(f)
}
