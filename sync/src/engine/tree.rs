//! Installer trees in a sync, run by the engine (functions over it, not extensions of it):
//! fetching the upstream's `.treeinfo` and `extra_files.json` (their format and checks are
//! `chantal_common::rpm::treeinfo`'s), storing the served description, and fetching the files
//! the manifest lists for the tree.

use std::collections::BTreeMap;
use std::sync::Arc;

use chantal_common::config::RepoConfig;
use chantal_common::pool::StoredBlob;
use chantal_common::rpm::checksum::ChecksumType;
use chantal_common::rpm::repomd::RepoMdRecord;
use chantal_common::rpm::treeinfo::{
    parse, Tree, TreeFile, EXTRA_FILES, MAX_EXTRA_FILES, MAX_TREEINFO, MAX_TREE_FILE,
    TREEINFO_NAMES,
};
use chantal_common::rpm::MetadataKind;
use chantal_common::{Error, Sha256};
use sha2::{Digest, Sha256 as Sha256Hasher};

use super::error::Result;
use super::manifest::TreeInput;
use super::metadata::MetaFile;
use super::transport::Transport;
use super::Engine;

/// The upstream's installer tree, fetched and checked; nothing of it is stored yet.
pub(super) struct Found {
    /// The name the upstream gave its description (`.treeinfo`, else `treeinfo`).
    name: &'static str,
    tree: Tree,
    extra_files: Option<Vec<u8>>,
    /// Over upstream's `.treeinfo` and `extra_files.json`: when it changes, the next version
    /// differs even if repomd.xml did not.
    pub fingerprint: String,
}

/// The installer tree of the version being made, in the pool.
pub(super) struct Stored {
    treeinfo: StoredBlob,
    extra_files: Option<StoredBlob>,
    files: Vec<MetaFile>,
    /// Every file the tree names (on a dry run, only these are known).
    pub tree: Tree,
}

impl Stored {
    /// Whether the files the tree names are in the pool (fetched, or found there).
    pub fn fetched(&self) -> bool {
        self.files.len() == self.tree.files.len()
    }

    /// The tree as the manifest lists it: the served description, extra_files.json, and each
    /// file with its sha256 once fetched (or, before, when `holdings` says the pool has it).
    pub fn manifest_input(
        &self,
        holdings: Option<std::collections::HashMap<String, Sha256>>,
    ) -> TreeInput<'_> {
        let fetched: std::collections::HashMap<&str, &Sha256> = self
            .files
            .iter()
            .map(|f| (f.record.location_href.as_str(), &f.blob.sha256))
            .collect();
        TreeInput {
            treeinfo: &self.treeinfo.sha256,
            extra_files: self.extra_files.as_ref().map(|b| &b.sha256),
            files: self
                .tree
                .files
                .iter()
                .map(|f| {
                    let sha = fetched
                        .get(f.path.as_str())
                        .map(|s| (*s).clone())
                        .or_else(|| holdings.as_ref().and_then(|h| h.get(&f.path)).cloned());
                    (f.path.as_str(), sha, f.size)
                })
                .collect(),
        }
    }
}

/// Fetches and checks the upstream's `.treeinfo` (else `treeinfo`) and its
/// `extra_files.json`; None if the upstream has no tree.
pub(super) fn find_tree(engine: &Engine<'_>, transport: &Transport) -> Result<Option<Found>> {
    let mut found = None;
    for name in TREEINFO_NAMES {
        match engine.rt.block_on(transport.get_bytes(name, MAX_TREEINFO)) {
            Ok(bytes) => {
                found = Some((name, bytes));
                break;
            }
            Err(e) if e.is_absent() => tracing::debug!("no {name} upstream: {e}"),
            Err(e) => return Err(e),
        }
    }
    let Some((name, treeinfo)) = found else {
        return Ok(None);
    };
    let extra_files = match engine
        .rt
        .block_on(transport.get_bytes(EXTRA_FILES, MAX_EXTRA_FILES))
    {
        Ok(bytes) => Some(bytes),
        Err(e) if e.is_absent() => None,
        Err(e) => return Err(e),
    };
    let tree = parse(&treeinfo, extra_files.as_deref()).map_err(|message| Error::Metadata {
        // An error in extra_files.json names that file, not the .treeinfo.
        file: if message.starts_with("extra_files.json") {
            transport.url(EXTRA_FILES)
        } else {
            transport.url(name)
        },
        message: format!(
            "installer tree refused: {message} (to mirror the repository without its installer tree, set rpm.installer_tree: skip)"
        ),
    })?;
    let mut h = Sha256Hasher::new();
    h.update(&treeinfo);
    h.update([0]);
    h.update(extra_files.as_deref().unwrap_or_default());
    tracing::info!(
        "installer tree: {name}, {} files, variants served: {}{}",
        tree.files.len(),
        if tree.variants.is_empty() {
            "none".to_string()
        } else {
            tree.variants.join(", ")
        },
        if tree.dropped_variants.is_empty() {
            String::new()
        } else {
            format!(
                " (left out, their repository is elsewhere: {})",
                tree.dropped_variants.join(", ")
            )
        }
    );
    Ok(Some(Found {
        name,
        tree,
        extra_files,
        fingerprint: hex::encode(h.finalize()),
    }))
}

/// Stores the served description and extra_files.json (small); the files they name are
/// fetched by [`Engine::fetch_tree_files`].
pub(super) fn store_tree(engine: &Engine<'_>, found: Found) -> Result<Stored> {
    let treeinfo = engine.store(&found.tree.served, found.name)?;
    let extra_files = found
        .extra_files
        .as_deref()
        .map(|b| engine.store(b, EXTRA_FILES))
        .transpose()?;
    Ok(Stored {
        treeinfo,
        extra_files,
        files: Vec::new(),
        tree: found.tree,
    })
}

/// Fetches every file the tree names that the pool lacks, verified, in parallel, and
/// resumable like repodata; returns the bytes moved, for the summary.
pub(super) fn fetch_tree_files(
    engine: &Engine<'_>,
    repo: &RepoConfig,
    transport: &Arc<Transport>,
    stored: &mut Stored,
) -> Result<super::metadata::Transferred> {
    let records: Vec<RepoMdRecord> = stored
        .tree
        .files
        .iter()
        .map(|f| RepoMdRecord {
            kind: MetadataKind::TreeFile,
            location_href: f.path.clone(),
            location_base: None,
            checksum: f.checksum.clone(),
            open_checksum: None,
            size: f.size,
            open_size: None,
            timestamp: None,
        })
        .collect();
    engine
        .progress
        .phase(&format!("installer tree: {} files", records.len()));
    let (files, moved) = engine.rt.block_on(super::metadata::fetch_files(
        transport.clone(),
        &engine.pool,
        engine.catalogue,
        repo,
        &records,
        engine.config.download.workers,
        MAX_TREE_FILE,
    ))?;
    stored.files = files;
    Ok(moved)
}

/// The tree files the pool holds: path -> sha256.
pub(super) fn tree_holdings(
    engine: &Engine<'_>,
    tree: &Tree,
) -> Result<std::collections::HashMap<String, Sha256>> {
    let known = tree_known(engine, tree)?;
    Ok(tree
        .files
        .iter()
        .filter_map(|f| {
            let k = known.get(&f.checksum.value)?;
            engine
                .pool
                .absolute(&k.path)
                .is_file()
                .then(|| (f.path.clone(), k.sha256.clone()))
        })
        .collect())
}

/// The pool's blobs for the tree's checksums, one query per checksum type.
fn tree_known(
    engine: &Engine<'_>,
    tree: &Tree,
) -> Result<std::collections::HashMap<String, chantal_common::catalogue::KnownBlob>> {
    let mut by_kind: BTreeMap<&str, (ChecksumType, Vec<&str>)> = BTreeMap::new();
    for f in &tree.files {
        by_kind
            .entry(f.checksum.kind.as_str())
            .or_insert((f.checksum.kind, Vec::new()))
            .1
            .push(f.checksum.value.as_str());
    }
    let mut known = std::collections::HashMap::new();
    for (kind, values) in by_kind.into_values() {
        known.extend(engine.catalogue.resolve_known(kind, &values)?);
    }
    Ok(known)
}

/// The tree files a sync would fetch: those the pool does not hold.
pub(super) fn tree_to_fetch<'t>(engine: &Engine<'_>, tree: &'t Tree) -> Result<Vec<&'t TreeFile>> {
    let held = tree_holdings(engine, tree)?;
    Ok(tree
        .files
        .iter()
        .filter(|f| !held.contains_key(&f.path))
        .collect())
}
