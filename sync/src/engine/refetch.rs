//! Fetching one pool file again from an upstream that lists it (`chantal pool verify
//! --repair`): downloaded under the upstream's rules (credentials, proxy, retries, the
//! upstream tree's confinement), verified against the recorded size and sha256, and only then
//! put in place of the damaged file, which is moved aside, never deleted.

use std::path::PathBuf;

use chantal_common::config::RepoConfig;
use chantal_common::{integrity, Sha256};

use super::transport::{Expect, Transport};
use super::{Engine, Result, SyncError};

/// A file fetched again and back in the pool.
#[derive(Debug)]
pub struct Refetched {
    /// What the upstream URL was (credentials redacted).
    pub url: String,
    /// Where the damaged file went, if there was one.
    pub quarantined: Option<PathBuf>,
}

/// Fetches `href` below `repo`'s upstream, checks it is the blob recorded at `rel_path` with
/// `sha256` and `size`, and puts it there.
pub fn refetch(
    engine: &Engine<'_>,
    repo: &RepoConfig,
    href: &str,
    rel_path: &str,
    sha256: &Sha256,
    size: u64,
) -> Result<Refetched> {
    let transport = Transport::new(repo, &engine.config.download, engine.cancel.clone())?;
    let url = transport.url(href);
    let tmp_dir = engine.pool.tmp_dir();
    let tmp = tempfile::Builder::new()
        .prefix(".repair-")
        .tempfile_in(&tmp_dir)
        .map_err(|e| chantal_common::Error::io("cannot create a temporary file in", &tmp_dir, e))?;
    let mut file = tmp
        .as_file()
        .try_clone()
        .map_err(|e| chantal_common::Error::io("cannot open", tmp.path(), e))?;
    let expect = Expect::blob(sha256, size);
    let got =
        engine
            .rt
            .block_on(transport.download(href, tmp.path(), &mut file, &expect, &|_| {}))?;
    if &got.sha256 != sha256 || got.size != size {
        return Err(SyncError::Verify {
            url,
            what: "sha256",
            expected: sha256.to_string(),
            actual: got.sha256.to_string(),
        });
    }
    let quarantined = integrity::quarantine(&engine.pool, rel_path)?;
    let filename = rel_path
        .rsplit('/')
        .next()
        .and_then(|n| n.split_once('_'))
        .map(|(_, name)| name)
        .unwrap_or("file");
    let placed = engine.pool.adopt(tmp, sha256, size, filename)?;
    engine.pool.record(engine.catalogue, vec![(placed, None)])?;
    Ok(Refetched { url, quarantined })
}
