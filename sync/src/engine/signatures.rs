//! The sync's trust steps, run by the engine (functions over it, not extensions of it): the
//! repository's keys fetched and stored for the version, repomd.xml's detached signature
//! (`rpm.repo_gpgcheck`), the signatures of packages the pool already holds (`rpm.gpgcheck`;
//! downloads are checked as they arrive, in [`super::packages`]), and the executor of the
//! manifest's signature entries (`publish.sign`).

use std::collections::HashSet;
use std::sync::Arc;

use chantal_common::catalogue::SignatureRecord;
use chantal_common::config::{KeySource, RepoConfig};
use chantal_common::rpm::MetadataKind;
use chantal_common::Sha256;
use futures_util::stream::{self, StreamExt};

use super::error::{Result, SyncError};
use super::plan::{Plan, Source};
use super::transport::Transport;
use super::Engine;
use crate::trust::{self, check_package, Checked, KeyRing, RepoSigner, SignError};

/// Largest repomd.xml.asc accepted.
const MAX_SIGNATURE_FILE: u64 = 64 << 10;

/// What checking the held files found: new records, and by plan index the files that failed.
pub type Held = (Vec<SignatureRecord>, Vec<(usize, String)>);

/// What a repository trusts in this sync.
pub struct Trust {
    pub ring: Arc<KeyRing>,
    /// The armored key file, part of every version of the repository: stored in the pool only
    /// when a version is made (a no-op sync writes nothing).
    pub armored: String,
    /// Its sha256, for the settings fingerprint.
    pub sha256: Sha256,
}

/// Says, with `-v`, which signatures of a package that passed did not count.
pub fn log_notes(nevra: &str, checked: &Checked) {
    for n in &checked.notes {
        tracing::debug!("{nevra}: signature {}: {}", n.key_id, n.detail);
    }
}

/// Fetches every key source of the repository (at each sync: a rotated key takes effect
/// at once) and keeps the pinned keys.
pub(super) fn load_trust(
    engine: &Engine<'_>,
    repo: &RepoConfig,
    transport: &Transport,
) -> Result<Option<Trust>> {
    if repo.rpm.keys.is_empty() {
        return Ok(None);
    }
    let keys_err = |reason: String| SyncError::Keys {
        repo: repo.name.clone(),
        reason,
    };
    let mut files = Vec::new();
    for source in &repo.rpm.keys {
        let bytes = match source {
            KeySource::Url(u) => engine
                .rt
                .block_on(transport.get_url(u, trust::MAX_KEY_FILE))
                .map_err(|e| keys_err(e.to_string()))?,
            KeySource::File(p) => read_bounded(p, trust::MAX_KEY_FILE)
                .map_err(|e| keys_err(format!("{}: {e}", p.display())))?,
        };
        let name = match source {
            KeySource::Url(u) => chantal_common::redact::redact_url(u),
            KeySource::File(p) => p.display().to_string(),
        };
        files.push((name, bytes));
    }
    let ring = KeyRing::from_files(&files, &repo.rpm.gpgkey_fingerprints).map_err(keys_err)?;
    let armored = ring.armored();
    let sha256 = Sha256::digest(armored.as_bytes());
    tracing::debug!(
        "trusted keys: {}",
        ring.keys
            .iter()
            .map(|k| k.fingerprint.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(Some(Trust {
        ring: Arc::new(ring),
        armored,
        sha256,
    }))
}

/// `rpm.repo_gpgcheck`: upstream's `repodata/repomd.xml.asc` must verify over `repomd`
/// with a trusted key. Returns the signature file.
pub(super) fn check_repomd_signature(
    engine: &Engine<'_>,
    trust: &Trust,
    transport: &Transport,
    repomd: &[u8],
) -> Result<Vec<u8>> {
    let rel = "repodata/repomd.xml.asc";
    let url = transport.url(rel);
    let asc = engine
        .rt
        .block_on(transport.get_bytes(rel, MAX_SIGNATURE_FILE))
        .map_err(|e| SyncError::RepoSignature {
            url: url.clone(),
            reason: format!("rpm.repo_gpgcheck needs repomd.xml's signature: {e}"),
        })?;
    let by =
        trust
            .ring
            .verify_detached(&asc, repomd)
            .map_err(|reason| SyncError::RepoSignature {
                url: url.clone(),
                reason: format!("repomd.xml: {reason}"),
            })?;
    tracing::debug!("repomd.xml signed by {by}");
    Ok(asc)
}

/// `publish.sign`, the executor of the manifest's signature entries: the mirror's
/// signature of the version's repomd.xml (`repomd_sha`) and its public key, stored in the
/// pool; returns their sha256 (signature, key). The latest version's signature is kept
/// when it signs the same repomd.xml with the same key, so an unchanged repository
/// commits nothing.
pub(super) fn sign_repomd(
    engine: &Engine<'_>,
    repo: &RepoConfig,
    repo_id: i64,
    signer: &RepoSigner,
    repomd_sha: Option<&Sha256>,
) -> Result<(Sha256, Sha256)> {
    let fail = |reason: String| SyncError::Sign {
        repo: repo.name.clone(),
        reason,
    };
    let Some(repomd_sha) = repomd_sha else {
        return Err(fail("the version has no repomd.xml".into()));
    };
    let key_blob = engine.store(signer.public_key.as_bytes(), "repomd.xml.key")?;
    let latest = engine.catalogue.latest_metadata_blobs(repo_id)?;
    let asc_sha = match (
        latest.get(&MetadataKind::Repomd),
        latest.get(&MetadataKind::RepomdKey),
        latest.get(&MetadataKind::RepomdAsc),
    ) {
        (Some(r), Some(k), Some(a)) if r == repomd_sha && *k == key_blob.sha256 => a.clone(),
        _ => {
            let record = engine
                .catalogue
                .blob(repomd_sha)?
                .ok_or_else(|| fail("repomd.xml is not in the pool".into()))?;
            let path = engine.pool.absolute(&record.path);
            let data = std::fs::read(&path)
                .map_err(|e| chantal_common::Error::io("cannot read", &path, e))?;
            let asc = signer
                .sign(&path, &data, &engine.cancel)
                .map_err(|e| match e {
                    SignError::Interrupted => SyncError::Interrupted,
                    SignError::Failed(reason) => fail(reason),
                })?;
            engine.store(&asc, "repomd.xml.asc")?.sha256
        }
    };
    Ok((asc_sha, key_blob.sha256))
}

/// Checks every package of the plan the pool already holds (reused or retained) against
/// the repository's keys, reading the pool's file unless the catalogue records a
/// verification by one of those keys. Returns the new records and, by plan index, the
/// packages that failed.
pub(super) fn check_held(
    engine: &Engine<'_>,
    plan: &Plan<'_>,
    ring: &Arc<KeyRing>,
) -> Result<Held> {
    let held: Vec<(usize, &Sha256)> = plan
        .entries
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e.source, Source::Reuse | Source::Retain))
        .filter_map(|(i, e)| Some((i, e.sha256.as_ref()?)))
        .collect();
    let shas: Vec<&Sha256> = held.iter().map(|(_, s)| *s).collect();
    let verified: HashSet<Sha256> = engine
        .catalogue
        .verified_blobs(&shas, &ring.fingerprints())?;
    let todo: Vec<(usize, Sha256)> = held
        .iter()
        .filter(|(_, s)| !verified.contains(*s))
        .map(|(i, s)| (*i, (*s).clone()))
        .collect();
    if todo.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    engine.progress.phase(&format!(
        "signatures: checking {} packages the pool holds",
        todo.len()
    ));
    let pool = engine.pool.clone();
    let results = engine.rt.block_on(
        stream::iter(todo)
            .map(|(i, sha)| {
                let (pool, ring) = (pool.clone(), Arc::clone(ring));
                async move {
                    let outcome = tokio::task::spawn_blocking(move || {
                        let path = pool
                            .find(&sha)
                            .ok()
                            .flatten()
                            .ok_or_else(|| "the pool no longer holds the file".to_string())?;
                        check_package(&path, &ring)
                            .map(|c| (sha, c))
                            .map_err(|r| r.to_string())
                    })
                    .await
                    .unwrap_or_else(|e| Err(e.to_string()));
                    (i, outcome)
                }
            })
            .buffer_unordered(engine.config.download.workers.max(1))
            .collect::<Vec<_>>(),
    );
    let mut records = Vec::new();
    let mut failures = Vec::new();
    for (i, outcome) in results {
        match outcome {
            Ok((sha, checked)) => {
                log_notes(&plan.entries[i].nevra().to_string(), &checked);
                records.push(checked.record(&sha));
            }
            Err(reason) => failures.push((i, format!("signature check failed: {reason}"))),
        }
    }
    Ok((records, failures))
}

/// A local file of at most `max` bytes.
fn read_bounded(path: &std::path::Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(max + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(std::io::Error::other(format!(
            "larger than {max} bytes: refusing it"
        )));
    }
    Ok(bytes)
}
