//! `chantal bundle create` and `chantal bundle import`: snapshots carried into a disconnected
//! site (docs/BUNDLES.md). A bundle holds the versions' catalogue rows in portable form, their
//! manifests (as blobs, named by the tree ids) and the pool files the importing side lacks;
//! its index is signed with `publish.sign`. The import checks the signature, the base, and
//! every byte while copying, then commits everything in one transaction, or nothing.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufRead, BufWriter, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use anyhow::Context as _;
use chantal_common::bundle::{
    blob_path, rows_path, BaseEntry, BlobEntry, FileEntry, Index, RepoEntry, SnapshotEntry,
    VersionRows, FORMAT, INDEX, INDEX_ASC, PACKAGES,
};
use chantal_common::catalogue::{
    Catalogue, ImportInput, ImportVersion, NewPackage, SnapshotRecord,
};
use chantal_common::pool::Pool;
use chantal_common::rpm::MetadataKind;
use chantal_common::tree_manifest::TreeManifest;
use chantal_common::Sha256;
use sha2::Digest;

use super::Context;
use crate::engine::{Cancel, Progress};
use crate::ExitStatus;

/// The largest index, rows file or manifest read into memory.
const MAX_DOCUMENT: u64 = 1 << 30;
/// Copy buffer.
const CHUNK: usize = 256 * 1024;

/// What `bundle create` was asked.
pub struct CreateArgs<'a> {
    pub output: &'a Path,
    pub snapshot: Option<&'a str>,
    pub all: bool,
    pub repo_ids: &'a [String],
    pub env: Option<&'a str>,
    pub since: Option<&'a str>,
    pub verbose: bool,
}

/// The snapshots a bundle carries, each with the environment that points at it (`--env`).
type Chosen = Vec<(SnapshotRecord, Option<String>)>;

/// A blob copied into the pool's temporary directory and checked, not placed yet.
type Staged<'b> = (&'b BlobEntry, tempfile::TempPath);

/// One repository's part of a bundle being made.
struct Part {
    snapshot: SnapshotRecord,
    environment: Option<String>,
    rows: VersionRows,
    tree_id: Sha256,
    base: Option<(BaseEntry, VersionRows)>,
}

pub fn create(ctx: &Context, args: &CreateArgs<'_>) -> anyhow::Result<ExitStatus> {
    let catalogue = ctx.catalogue()?;
    let pool = Pool::new(&ctx.config.storage.base_path);
    let (selection, chosen) = select(ctx, &catalogue, args)?;
    let out = args.output;
    if out.join(INDEX).exists() {
        anyhow::bail!(
            "{} holds a bundle already: choose another --output",
            out.display()
        );
    }
    let signer = signer(ctx, chosen.iter().map(|(s, _)| s.repository.as_str()))?;
    let mut parts = Vec::new();
    for (snapshot, environment) in chosen {
        let repo = snapshot.repository.clone();
        let (rows, absent) = catalogue.version_rows(&repo, snapshot.version)?;
        if absent > 0 {
            anyhow::bail!(
                "{repo}: snapshot {} has {absent} packages not fetched yet (download.policy: on_demand): run `chantal repo sync --repo-id {repo} --download-missing` first",
                snapshot.name
            );
        }
        let tree_id = tree_id_of(&rows).ok_or_else(|| {
            anyhow::anyhow!(
                "{repo}: version {} has no manifest yet: run `chantal repo sync --repo-id {repo}` once to write it",
                snapshot.version
            )
        })?;
        let base = match args.since {
            None => None,
            Some(base) => {
                let b = catalogue
                    .snapshots(Some(&repo))?
                    .into_iter()
                    .find(|s| s.name == base)
                    .ok_or_else(|| anyhow::anyhow!("{repo} has no snapshot {base} (--since)"))?;
                let (base_rows, _) = catalogue.version_rows(&repo, b.version)?;
                let base_tree = tree_id_of(&base_rows).ok_or_else(|| {
                    anyhow::anyhow!(
                        "{repo}: version {} (snapshot {base}) has no manifest yet: run `chantal repo sync --repo-id {repo}` once to write it",
                        b.version
                    )
                })?;
                Some((
                    BaseEntry {
                        snapshot: base.to_string(),
                        version: b.version,
                        tree_id: base_tree,
                    },
                    base_rows,
                ))
            }
        };
        parts.push(Part {
            snapshot,
            environment,
            rows,
            tree_id,
            base,
        });
    }

    std::fs::create_dir_all(out.join("rows"))
        .with_context(|| format!("cannot create {}", out.display()))?;
    let mut files = Vec::new();
    let mut repositories = Vec::new();
    for p in &parts {
        let rel = rows_path(&p.rows.repository);
        let bytes = serde_json::to_vec(&p.rows)?;
        write_file(out, &rel, &bytes)?;
        files.push(FileEntry {
            path: rel.clone(),
            sha256: Sha256::digest(&bytes),
            size: bytes.len() as u64,
        });
        repositories.push(RepoEntry {
            name: p.rows.repository.clone(),
            version: p.rows.version,
            tree_id: p.tree_id.clone(),
            snapshot: SnapshotEntry {
                name: p.snapshot.name.clone(),
                description: p.snapshot.description.clone(),
                created: p.snapshot.created_at.timestamp(),
            },
            environment: p.environment.clone(),
            base: p.base.as_ref().map(|(b, _)| b.clone()),
            rows: rel,
        });
    }

    // Only what the base does not hold travels.
    let in_base: HashSet<&Sha256> = parts
        .iter()
        .filter_map(|p| p.base.as_ref())
        .flat_map(|(_, rows)| rows.blobs.iter().map(|(sha, _, _)| sha))
        .collect();
    let packages: BTreeSet<Sha256> = parts
        .iter()
        .flat_map(|p| p.rows.content.iter().map(|(sha, _)| sha))
        .filter(|sha| !in_base.contains(sha))
        .cloned()
        .collect();
    let packages: Vec<Sha256> = packages.into_iter().collect();
    files.push(write_packages(&catalogue, out, &packages)?);
    let mut blobs: Vec<BlobEntry> = parts
        .iter()
        .flat_map(|p| p.rows.blobs.iter())
        .filter(|(sha, _, _)| !in_base.contains(sha))
        .cloned()
        .collect();
    blobs.sort();
    blobs.dedup_by(|a, b| a.0 == b.0);
    let skipped: usize = parts
        .iter()
        .flat_map(|p| p.rows.blobs.iter())
        .filter(|(sha, _, _)| in_base.contains(sha))
        .map(|(sha, _, _)| sha)
        .collect::<HashSet<_>>()
        .len();
    let bytes: u64 = blobs.iter().map(|(_, size, _)| size).sum();
    // The runtime only hears SIGINT/SIGTERM for `cancel`: it must live as long as the work.
    let (_signals, cancel) = super::engine_runtime()?;
    let progress = Progress::new(ctx.quiet, args.verbose);
    progress.task("bundling", bytes);
    let copied = copy_out(&pool, out, &blobs, &progress, &cancel);
    progress.finish();
    if cancel.is_cancelled() {
        return Ok(ExitStatus::Interrupted);
    }
    copied?;

    let index = Index {
        format: FORMAT.to_string(),
        created: chantal_common::tree_manifest::rfc3339(chrono::Utc::now().timestamp()),
        selection,
        since: args.since.map(str::to_string),
        repositories,
        files,
        blobs: blobs.len() as u64,
        blob_bytes: bytes,
    };
    let index_bytes = serde_json::to_vec_pretty(&index)?;
    // Everything the index names is on disk for good before the index says it is there.
    sync_fs(out)?;
    let tmp = out.join(format!(".{INDEX}.tmp"));
    std::fs::write(&tmp, &index_bytes)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    if let Some(signer) = &signer {
        let asc = signer
            .sign(&tmp, &index_bytes, &cancel)
            .map_err(|e| anyhow::anyhow!("signing {}: {e}", out.join(INDEX).display()))?;
        write_file(out, INDEX_ASC, &asc)?;
    }
    sync_fs(out)?;
    std::fs::rename(&tmp, out.join(INDEX))
        .with_context(|| format!("cannot write {}", out.join(INDEX).display()))?;
    sync_fs(out)?;
    ctx.say(format_args!(
        "bundle {}: {} ({}){}: {} files ({}){}{}",
        out.display(),
        index.selection,
        index
            .repositories
            .iter()
            .map(|r| format!("{} version {}", r.name, r.version))
            .collect::<Vec<_>>()
            .join(", "),
        args.since
            .map(|b| format!(" since {b}"))
            .unwrap_or_default(),
        blobs.len(),
        crate::output::bytes(i64::try_from(bytes).unwrap_or(i64::MAX)),
        if args.since.is_some() {
            format!(", {skipped} files the base holds left out")
        } else {
            String::new()
        },
        if signer.is_some() { ", signed" } else { "" },
    ));
    Ok(ExitStatus::Success)
}

/// The snapshots the bundle carries, with the environment pointing at each (`--env`), and how
/// the index describes the choice.
fn select(
    ctx: &Context,
    catalogue: &Catalogue,
    args: &CreateArgs<'_>,
) -> anyhow::Result<(String, Chosen)> {
    let all_snapshots = catalogue.snapshots(None)?;
    if let Some(env) = args.env {
        ctx.check_env(env)?;
        let mut chosen = Vec::new();
        for p in catalogue.environments(Some(env))? {
            let s = all_snapshots
                .iter()
                .find(|s| s.repository == p.repository && s.name == p.snapshot)
                .cloned()
                .ok_or_else(|| {
                    anyhow::anyhow!("{}: snapshot {} is gone", p.repository, p.snapshot)
                })?;
            chosen.push((s, Some(env.to_string())));
        }
        if chosen.is_empty() {
            anyhow::bail!("environment {env} points nowhere: nothing to bundle");
        }
        return Ok((format!("environment {env}"), chosen));
    }
    let Some(name) = args.snapshot else {
        anyhow::bail!("name --snapshot NAME or --env ENV");
    };
    let of_name: Vec<&SnapshotRecord> = all_snapshots.iter().filter(|s| s.name == name).collect();
    let chosen: Vec<SnapshotRecord> = if args.all {
        of_name.into_iter().cloned().collect()
    } else {
        args.repo_ids
            .iter()
            .map(|r| {
                of_name
                    .iter()
                    .find(|s| &s.repository == r)
                    .map(|s| (*s).clone())
                    .ok_or_else(|| anyhow::anyhow!("{r} has no snapshot {name}"))
            })
            .collect::<anyhow::Result<_>>()?
    };
    if chosen.is_empty() {
        anyhow::bail!("no repository has a snapshot {name}");
    }
    Ok((
        format!("snapshot {name}"),
        chosen.into_iter().map(|s| (s, None)).collect(),
    ))
}

/// The signer of the bundle: `publish.sign` of its repositories, which must agree.
fn signer<'a>(
    ctx: &Context,
    repositories: impl Iterator<Item = &'a str>,
) -> anyhow::Result<Option<crate::trust::RepoSigner>> {
    let mut configs = Vec::new();
    for name in repositories {
        let sign = ctx
            .config
            .repositories
            .iter()
            .find(|r| r.name == name)
            .and_then(|r| r.sign.clone());
        if !configs.contains(&sign) {
            configs.push(sign);
        }
    }
    match configs.as_slice() {
        [Some(cfg)] => Ok(Some(
            crate::trust::RepoSigner::load(cfg).map_err(anyhow::Error::msg)?,
        )),
        [None] | [] => Ok(None),
        _ => anyhow::bail!(
            "the bundle's repositories have different publish.sign settings: bundle them separately"
        ),
    }
}

fn tree_id_of(rows: &VersionRows) -> Option<Sha256> {
    rows.metadata
        .iter()
        .find(|(kind, _, _)| MetadataKind::parse(kind) == MetadataKind::TreeManifest)
        .map(|(_, sha, _)| sha.clone())
}

/// Writes a small file of the bundle under a temporary name, then renames it.
fn write_file(out: &Path, rel: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let dest = out.join(rel);
    let tmp = dest.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &dest).with_context(|| format!("cannot write {}", dest.display()))
}

/// A writer that hashes and counts what goes through it.
struct Hashing<W> {
    inner: W,
    hasher: sha2::Sha256,
    size: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// `packages.jsonl`: the rows of `packages`, one JSON object a line, streamed.
fn write_packages(
    catalogue: &Catalogue,
    out: &Path,
    packages: &[Sha256],
) -> anyhow::Result<FileEntry> {
    let dest = out.join(PACKAGES);
    let tmp = dest.with_extension("tmp");
    let file = File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    let mut w = Hashing {
        inner: BufWriter::new(file),
        hasher: sha2::Sha256::new(),
        size: 0,
    };
    let mut written = 0usize;
    catalogue.for_each_package(packages, |p| {
        let io = |e: io::Error| chantal_common::Error::io("cannot write", &tmp, e);
        serde_json::to_writer(&mut w, &p).map_err(|e| io(io::Error::other(e)))?;
        w.write_all(b"\n").map_err(io)?;
        written += 1;
        Ok(())
    })?;
    if written != packages.len() {
        anyhow::bail!(
            "the catalogue has {written} of the {} package rows the bundle needs",
            packages.len()
        );
    }
    w.flush()
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    let entry = FileEntry {
        path: PACKAGES.to_string(),
        sha256: Sha256::from_hasher(w.hasher),
        size: w.size,
    };
    std::fs::rename(&tmp, &dest).with_context(|| format!("cannot write {}", dest.display()))?;
    Ok(entry)
}

/// Copies `blobs` from the pool into the bundle, checking each one's hash on the way (a
/// damaged pool file is named, not carried). A blob already in place (a killed earlier run)
/// is kept.
fn copy_out(
    pool: &Pool,
    out: &Path,
    blobs: &[BlobEntry],
    progress: &Progress,
    cancel: &Cancel,
) -> anyhow::Result<()> {
    parallel(blobs, cancel, |(sha, size, name)| {
        let dest = out.join(blob_path(sha));
        if std::fs::metadata(&dest).is_ok_and(|m| m.len() == *size) {
            progress.bytes(*size);
            return Ok(());
        }
        let rel = Pool::relative_path(sha, name)?;
        let src = pool.absolute(&rel);
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let tmp = dest.with_extension("part");
        let mut reader =
            File::open(&src).with_context(|| format!("cannot read {}", src.display()))?;
        let mut writer =
            File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
        let (got, read) = copy_hashing(&mut reader, &mut writer, progress, cancel)
            .with_context(|| format!("copying {} to {}", src.display(), tmp.display()))?;
        if got != *sha || read != *size {
            let _ = std::fs::remove_file(&tmp);
            anyhow::bail!(
                "{}: sha256 {got} ({read} bytes), the catalogue records {sha} ({size} bytes): run `chantal pool verify --repair`",
                src.display()
            );
        }
        std::fs::rename(&tmp, &dest).with_context(|| format!("cannot write {}", dest.display()))
    })
}

/// Runs `f` over `items` on as many threads as there are cores (at most 4), stopping at the
/// first error or when cancelled.
fn parallel<T: Sync>(
    items: &[T],
    cancel: &Cancel,
    f: impl Fn(&T) -> anyhow::Result<()> + Sync,
) -> anyhow::Result<()> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4);
    let next = AtomicUsize::new(0);
    let failed: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                if cancel.is_cancelled() || failed.lock().map_or(true, |f| f.is_some()) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                if let Err(e) = f(item) {
                    if let Ok(mut slot) = failed.lock() {
                        slot.get_or_insert(e);
                    }
                    break;
                }
            });
        }
    });
    match failed.into_inner() {
        Ok(Some(e)) => Err(e),
        Ok(None) => Ok(()),
        Err(_) => Err(anyhow::anyhow!("internal error: a copying thread panicked")),
    }
}

/// Copies `reader` to `writer`, hashing every byte; returns the sha256 and the byte count.
fn copy_hashing(
    reader: &mut impl Read,
    writer: &mut impl Write,
    progress: &Progress,
    cancel: &Cancel,
) -> io::Result<(Sha256, u64)> {
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        if cancel.is_cancelled() {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"));
        }
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        writer.write_all(&buf[..n])?;
        total += n as u64;
        progress.bytes(n as u64);
    }
    writer.flush()?;
    Ok((Sha256::from_hasher(hasher), total))
}

/// One `syncfs` for everything written below `dir`.
fn sync_fs(dir: &Path) -> anyhow::Result<()> {
    let d = File::open(dir).with_context(|| format!("cannot open {}", dir.display()))?;
    rustix::fs::syncfs(&d).with_context(|| format!("cannot sync {}", dir.display()))
}

/// Reads a document of the bundle (at most [`MAX_DOCUMENT`] bytes); none when missing.
fn read_document(path: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
    };
    let mut bytes = Vec::new();
    file.take(MAX_DOCUMENT + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() as u64 > MAX_DOCUMENT {
        anyhow::bail!("{}: larger than {MAX_DOCUMENT} bytes", path.display());
    }
    Ok(Some(bytes))
}

/// The sha256 and size of a file, streamed.
fn hash_file(path: &Path) -> io::Result<(Sha256, u64)> {
    let mut f = File::open(path)?;
    let mut sink = io::sink();
    copy_hashing(
        &mut f,
        &mut sink,
        &Progress::new(true, false),
        &Cancel::default(),
    )
}

pub fn import(
    ctx: &Context,
    dir: &Path,
    key: Option<&Path>,
    verbose: bool,
) -> anyhow::Result<ExitStatus> {
    let at = |rel: &str| dir.join(rel);
    let index_bytes = read_document(&at(INDEX))?.ok_or_else(|| {
        anyhow::anyhow!(
            "{}: missing: not a bundle, or `bundle create` did not finish (run it again)",
            at(INDEX).display()
        )
    })?;
    if let Some(key) = key {
        let keys = std::fs::read(key).with_context(|| format!("cannot read {}", key.display()))?;
        let ring = crate::trust::KeyRing::from_files(&[(key.display().to_string(), keys)], &[])
            .map_err(|e| anyhow::anyhow!("{}: {e}", key.display()))?;
        let asc = read_document(&at(INDEX_ASC))?.ok_or_else(|| {
            anyhow::anyhow!(
                "{}: missing, and --key asks for a signed bundle",
                at(INDEX_ASC).display()
            )
        })?;
        ring.verify_detached(&asc, &index_bytes).map_err(|e| {
            anyhow::anyhow!(
                "{}: the signature does not verify with {}: {e}",
                at(INDEX_ASC).display(),
                key.display()
            )
        })?;
    }
    let index =
        Index::parse(&index_bytes).map_err(|e| anyhow::anyhow!("{}: {e}", at(INDEX).display()))?;
    // Every document the index names, byte for byte, before any is read.
    for f in &index.files {
        let (sha, size) = hash_file(&at(&f.path)).map_err(|e| {
            anyhow::anyhow!(
                "{}: {}: the bundle is incomplete or damaged",
                at(&f.path).display(),
                if e.kind() == io::ErrorKind::NotFound {
                    "missing".to_string()
                } else {
                    e.to_string()
                }
            )
        })?;
        if sha != f.sha256 || size != f.size {
            anyhow::bail!(
                "{}: sha256 {sha} ({size} bytes), bundle.json says {} ({} bytes): the bundle was altered or damaged",
                at(&f.path).display(),
                f.sha256,
                f.size
            );
        }
    }
    for r in &index.repositories {
        if !ctx.config.repositories.iter().any(|c| c.name == r.name) {
            anyhow::bail!(
                "the bundle carries {}, which the configuration does not define: add it (its upstream may be unreachable; enabled: false is fine)",
                r.name
            );
        }
        if let Some(env) = &r.environment {
            ctx.check_env(env)?;
        }
    }
    let catalogue = ctx.catalogue()?;
    let pool = Pool::new(&ctx.config.storage.base_path);
    let mut rows = Vec::new();
    for r in &index.repositories {
        let bytes = read_document(&at(&r.rows))?.unwrap_or_default();
        let v: VersionRows = serde_json::from_slice(&bytes)
            .map_err(|e| anyhow::anyhow!("{}: {e}", at(&r.rows).display()))?;
        if v.repository != r.name || v.version != r.version {
            anyhow::bail!(
                "{}: rows of {} version {}, bundle.json says {} version {}",
                at(&r.rows).display(),
                v.repository,
                v.version,
                r.name,
                r.version
            );
        }
        if tree_id_of(&v).as_ref() != Some(&r.tree_id) {
            anyhow::bail!(
                "{}: its manifest is not the tree id bundle.json names",
                at(&r.rows).display()
            );
        }
        if let Some(base) = &r.base {
            let here = catalogue.snapshots(Some(&r.name))?;
            let tree_ids = catalogue.tree_ids(&r.name)?;
            let found = here.iter().find(|s| s.name == base.snapshot);
            if found.map(|s| s.version) != Some(base.version)
                || tree_ids.get(&base.version) != Some(&base.tree_id)
            {
                anyhow::bail!(
                    "{}: the bundle builds on snapshot {} (version {}, tree id {}), which is not here: import the bundle that carries it first",
                    r.name,
                    base.snapshot,
                    base.version,
                    base.tree_id
                );
            }
        }
        rows.push(v);
    }

    // What is here already.
    let mut pending = Vec::new();
    for (r, v) in index.repositories.iter().zip(&rows) {
        catalogue.ensure_repository(&r.name, "rpm")?;
        let present = catalogue.tree_ids(&r.name)?.get(&r.version) == Some(&r.tree_id);
        if !present {
            pending.push(v);
        }
    }
    let mut needed: Vec<&BlobEntry> = pending.iter().flat_map(|v| v.blobs.iter()).collect();
    needed.sort();
    needed.dedup_by(|a, b| a.0 == b.0);
    // What the pool holds already is reserved, as a sync reserves what it reuses: no cleanup
    // collects it before the versions that need it are committed.
    let recorded = catalogue.reserve_blobs(&needed.iter().map(|b| &b.0).collect::<Vec<_>>())?;
    let mut missing = Vec::new();
    for b in needed {
        if !(recorded.contains_key(&b.0) && pool_holds(&pool, b)?) {
            missing.push(b);
        }
    }
    for b in &missing {
        if !at(&blob_path(&b.0)).is_file() {
            anyhow::bail!(
                "{}: missing: the bundle is incomplete{}",
                at(&blob_path(&b.0)).display(),
                if index.since.is_some() {
                    " (or its base is not wholly here)"
                } else {
                    ""
                }
            );
        }
    }
    let bytes: u64 = missing.iter().map(|b| b.1).sum();
    // The runtime only hears SIGINT/SIGTERM for `cancel`: it must live as long as the work.
    let (_signals, cancel) = super::engine_runtime()?;
    let progress = Progress::new(ctx.quiet, verbose);
    progress.task("importing", bytes);
    let staged = stage_blobs(&pool, dir, &missing, &progress, &cancel);
    progress.finish();
    if cancel.is_cancelled() {
        return Ok(ExitStatus::Interrupted);
    }
    let staged = staged?;
    // Verified, all of them: now they become pool files.
    pool.sync_filesystem()?;
    let placed = Mutex::new(Vec::with_capacity(staged.len()));
    // Not cut short by a signal: every staged file gets its name, or the import fails.
    parallel(&staged, &Cancel::default(), |(b, tmp)| {
        let p = pool.move_in(tmp, &b.0, b.1, &b.2)?;
        if let Ok(mut v) = placed.lock() {
            v.push((p, None));
        }
        Ok(())
    })?;
    let placed = placed.into_inner().unwrap_or_else(|p| p.into_inner());
    pool.sync_filesystem()?;
    pool.record(&catalogue, placed)?;
    // Their temporary names were moved into the pool.
    for (_, tmp) in staged {
        let _ = tmp.keep();
    }

    // Package rows, streamed from the verified file.
    let file = File::open(at(PACKAGES))
        .with_context(|| format!("cannot read {}", at(PACKAGES).display()))?;
    let mut lines = io::BufReader::new(file).lines().enumerate();
    let path = at(PACKAGES);
    let mut packages = std::iter::from_fn(|| {
        let (n, line) = lines.next()?;
        Some(
            line.map_err(|e| chantal_common::Error::io("cannot read", &path, e))
                .and_then(|l| {
                    serde_json::from_str::<NewPackage>(&l).map_err(|e| {
                        chantal_common::Error::Metadata {
                            file: format!("{}:{}", path.display(), n + 1),
                            message: e.to_string(),
                        }
                    })
                }),
        )
    });
    catalogue.insert_packages(&mut packages)?;

    let mut manifests = HashMap::new();
    for r in &index.repositories {
        let bytes = read_manifest(&catalogue, &pool, dir, &r.tree_id)?;
        let m = TreeManifest::parse(&bytes)
            .map_err(|e| anyhow::anyhow!("{}: manifest {}: {e}", r.name, r.tree_id))?;
        if m.repository != r.name || m.version != r.version {
            anyhow::bail!(
                "{}: manifest {} is of {} version {}",
                r.name,
                r.tree_id,
                m.repository,
                m.version
            );
        }
        manifests.insert(r.name.clone(), m);
    }
    let user = super::env::user_name();
    let input = ImportInput {
        versions: index
            .repositories
            .iter()
            .zip(&rows)
            .map(|(r, v)| ImportVersion {
                rows: v,
                tree_id: &r.tree_id,
                manifest: &manifests[&r.name],
                snapshot: &r.snapshot,
            })
            .collect(),
        environments: index
            .repositories
            .iter()
            .filter_map(|r| {
                r.environment
                    .clone()
                    .map(|e| (e, r.name.clone(), r.snapshot.name.clone()))
            })
            .collect(),
        set_by: &user,
    };
    let report = catalogue.import_versions(&input)?;
    for (repo, version) in &report.imported {
        let r = index.repositories.iter().find(|r| &r.name == repo);
        ctx.say(format_args!(
            "{repo}: imported version {version} (tree id {}), snapshot {}",
            r.map(|r| r.tree_id.to_string()).unwrap_or_default(),
            r.map(|r| r.snapshot.name.as_str()).unwrap_or_default()
        ));
    }
    for (repo, snapshot) in &report.snapshots {
        if !report.imported.iter().any(|(r, _)| r == repo) {
            ctx.say(format_args!("{repo}: snapshot {snapshot} named"));
        }
    }
    for p in &report.promotions {
        for c in &p.changes {
            ctx.say(format_args!(
                "{}: environment {} -> {}",
                c.repository,
                p.environment,
                c.snapshot.as_deref().unwrap_or("-")
            ));
        }
    }
    if report.imported.is_empty() && report.snapshots.is_empty() && report.promotions.is_empty() {
        ctx.say(format_args!(
            "{}: nothing to import: its versions, snapshots and environments are here already",
            dir.display()
        ));
    } else {
        ctx.say(format_args!(
            "{}: {} versions imported, {} files ({}) copied into the pool",
            dir.display(),
            report.imported.len(),
            missing.len(),
            crate::output::bytes(i64::try_from(bytes).unwrap_or(i64::MAX))
        ));
    }
    Ok(ExitStatus::Success)
}

/// Whether the pool holds the blob with its size: under the name the bundle gives it (the
/// usual case), or any other.
fn pool_holds(pool: &Pool, b: &BlobEntry) -> anyhow::Result<bool> {
    let size_ok = |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.len() == b.1);
    if size_ok(&pool.absolute(&Pool::relative_path(&b.0, &b.2)?)) {
        return Ok(true);
    }
    Ok(pool.find(&b.0)?.is_some_and(|p| size_ok(&p)))
}

/// A manifest's bytes: from the bundle, or from the pool when the base brought it.
fn read_manifest(
    catalogue: &Catalogue,
    pool: &Pool,
    dir: &Path,
    tree_id: &Sha256,
) -> anyhow::Result<Vec<u8>> {
    let path = match catalogue.blob(tree_id)? {
        Some(rec) => pool.absolute(&rec.path),
        None => dir.join(blob_path(tree_id)),
    };
    let bytes =
        read_document(&path)?.ok_or_else(|| anyhow::anyhow!("{}: missing", path.display()))?;
    if Sha256::digest(&bytes) != *tree_id {
        anyhow::bail!("{}: not the manifest {tree_id}", path.display());
    }
    Ok(bytes)
}

/// Copies each blob from the bundle into the pool's temporary directory, hashing every byte;
/// a blob whose bytes are not its name is refused, naming its file. Nothing is placed here:
/// a refusal leaves the pool as it was.
fn stage_blobs<'b>(
    pool: &Pool,
    dir: &Path,
    blobs: &[&'b BlobEntry],
    progress: &Progress,
    cancel: &Cancel,
) -> anyhow::Result<Vec<Staged<'b>>> {
    let staged = Mutex::new(Vec::with_capacity(blobs.len()));
    let tmp_dir = pool.tmp_dir();
    parallel(blobs, cancel, |b| {
        let src = dir.join(blob_path(&b.0));
        let mut reader =
            File::open(&src).with_context(|| format!("cannot read {}", src.display()))?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".import-")
            .tempfile_in(&tmp_dir)
            .with_context(|| format!("cannot create a file in {}", tmp_dir.display()))?;
        let (sha, size) = copy_hashing(&mut reader, tmp.as_file_mut(), progress, cancel)
            .with_context(|| format!("copying {}", src.display()))?;
        if size != b.1 || sha != b.0 {
            anyhow::bail!(
                "{}: sha256 {sha} ({size} bytes), expected {} ({} bytes): the bundle was altered or damaged; nothing was imported",
                src.display(),
                b.0,
                b.1
            );
        }
        let path = tmp.into_temp_path();
        if let Ok(mut s) = staged.lock() {
            s.push((*b, path));
        }
        Ok(())
    })?;
    Ok(staged.into_inner().unwrap_or_else(|p| p.into_inner()))
}
