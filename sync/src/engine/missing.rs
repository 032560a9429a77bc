//! Filling in on-demand packages (`repo sync --download-missing`, or a repository switched back
//! to `download.policy: immediate`): every package some version of the repository lists that
//! the pool does not hold yet is downloaded as a sync downloads, verified (sha256, size, and
//! the signature with `rpm.gpgcheck`) and moved into the pool, where its absent mark goes.

use std::collections::HashMap;
use std::sync::Arc;

use chantal_common::config::RepoConfig;
use chantal_common::rpm::{Checksum, ChecksumType};
use chantal_common::Sha256;

use super::packages::{self, Adopter, Job};
use super::transport::Transport;
use super::{signatures, Engine, Result};

/// What a fill did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Filled {
    /// Packages now in the pool.
    pub fetched: usize,
    pub bytes: u64,
    /// Packages that could not be fetched, with why (by href).
    pub failures: Vec<(String, String)>,
}

/// Downloads every package of `repo`'s versions that the pool lacks.
pub fn download_missing(engine: &Engine<'_>, repo: &RepoConfig) -> Result<Filled> {
    let (catalogue, pool, progress) = (engine.catalogue, &engine.pool, engine.progress);
    let absent = catalogue.pool_blobs(Some(&repo.name), true)?;
    if absent.is_empty() {
        return Ok(Filled::default());
    }
    let shas: Vec<&Sha256> = absent.iter().map(|b| &b.sha256).collect();
    // Where this repository lists each file: latest's href first, else the newest version's.
    let mut at: HashMap<&Sha256, (i64, i64, &str)> = HashMap::new();
    let uses = catalogue.blob_uses(&shas)?;
    for u in uses.iter().filter(|u| u.repository == repo.name) {
        let rank = (
            u.removed_in.unwrap_or(i64::MAX),
            u.added_in,
            u.href.as_str(),
        );
        let best = at.entry(&u.sha256).or_insert(rank);
        if rank > *best {
            *best = rank;
        }
    }
    let wanted: Vec<(&str, Checksum, u64)> = absent
        .iter()
        .filter_map(|b| {
            let (_, _, href) = at.get(&b.sha256)?;
            let checksum = Checksum {
                kind: ChecksumType::Sha256,
                value: b.sha256.to_string(),
            };
            Some((*href, checksum, u64::try_from(b.size).unwrap_or(0)))
        })
        .collect();
    let jobs: Vec<Job> = wanted
        .iter()
        .enumerate()
        .map(|(index, (href, checksum, size))| Job {
            index,
            label: href.to_string(),
            href: href.to_string(),
            checksum: checksum.clone(),
            size: *size,
        })
        .collect();
    let transport = Arc::new(Transport::new(
        repo,
        &engine.config.download,
        engine.cancel.clone(),
    )?);
    let ring = if repo.rpm.gpgcheck {
        signatures::load_trust(engine, repo, &transport)?.map(|t| t.ring)
    } else {
        None
    };
    let bytes: u64 = jobs.iter().map(|j| j.size).sum();
    progress.phase(&format!(
        "packages: {} on-demand packages to download ({})",
        jobs.len(),
        super::human_bytes(bytes)
    ));
    progress.downloads(&repo.name, jobs.len() as u64, bytes);
    let adopter = Adopter::new(pool.clone(), catalogue.clone(), None);
    let done = engine.rt.block_on(packages::download_all(
        transport,
        pool,
        &adopter,
        jobs,
        engine.config.download.workers,
        ring,
        progress,
    ));
    let adopted = adopter.finish();
    progress.finish();
    adopted?;
    // What was fetched before a signal is in the pool; the rest stays on demand.
    if engine.cancel.is_cancelled() {
        return Err(super::SyncError::Interrupted);
    }
    let mut filled = Filled::default();
    // Signature rows went in with each file's blob row (the adopter's batches).
    for d in done {
        filled.bytes += d.transferred;
        match d.result {
            Ok(_) => filled.fetched += 1,
            Err(e) => filled.failures.push((wanted[d.index].0.to_string(), e)),
        }
    }
    pool.sync_filesystem()?;
    filled.failures.sort();
    Ok(filled)
}
