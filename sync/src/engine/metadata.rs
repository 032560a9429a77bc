//! The metadata phase: fetch every file repomd.xml lists into the pool (verified), then parse
//! primary, filelists and other in one streaming pass each, keeping compact package records in
//! memory and fragments in a spill file.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use chantal_common::catalogue::{Catalogue, KnownBlob};
use chantal_common::config::RepoConfig;
use chantal_common::pool::{Placed, Pool, StoredBlob};
use chantal_common::rpm::decompress::{self, Limits};
use chantal_common::rpm::repomd::RepoMdRecord;
use chantal_common::rpm::MetadataKind;
use chantal_common::rpm::{fragments, href, primary, ChecksumType, ParseError, PrimaryPackage};
use chantal_common::{Error, Sha256};
use futures_util::stream::{self, StreamExt, TryStreamExt};

use super::error::{Result, SyncError};
use super::spill::{Span, Spill};
use super::transport::{Expect, Transport};

/// One package of the upstream, after the architecture filter.
pub struct UpPkg {
    pub p: PrimaryPackage,
    pub primary: Option<Span>,
    pub filelists: Option<Span>,
    pub other: Option<Span>,
}

/// Where the fragments of [`UpPkg`]'s spans are: one spill file per repodata file.
pub struct Spills {
    pub primary: Spill,
    pub filelists: Option<Spill>,
    pub other: Option<Spill>,
}

impl Spills {
    /// Bytes spilled.
    pub fn len(&self) -> u64 {
        self.primary.len()
            + self.filelists.as_ref().map_or(0, Spill::len)
            + self.other.as_ref().map_or(0, Spill::len)
    }
}

/// The parsed upstream.
pub struct Parsed {
    pub packages: Vec<UpPkg>,
    pub spills: Spills,
    /// Packages primary.xml lists.
    pub listed: usize,
    /// Dropped by `rpm.architectures`.
    pub filtered: usize,
    /// Packages the content filters dropped.
    pub excluded: usize,
    /// Dropped as repeats of a location href listed before.
    pub duplicates: usize,
}

impl Parsed {
    /// What the parse found, for the log.
    pub fn log(&self) {
        tracing::debug!(
            "{} of package fragments kept for the commit",
            super::human_bytes(self.spills.len())
        );
        tracing::info!(
            "metadata: {} packages upstream, {} after the architecture filter{}",
            self.listed,
            self.listed - self.filtered,
            if self.duplicates > 0 {
                format!(", {} duplicates skipped", self.duplicates)
            } else {
                String::new()
            }
        );
    }
}

/// A repodata file now in the pool.
pub use chantal_common::repodata::UpstreamFile as MetaFile;

fn meta_err(file: &str, message: impl Into<String>) -> SyncError {
    SyncError::Common(Error::Metadata {
        file: file.to_string(),
        message: message.into(),
    })
}

/// Checks an `xml:base`: only the repository's own URL is accepted.
pub fn check_base(repo: &RepoConfig, what: &str, base: Option<&str>) -> Result<()> {
    match base {
        Some(b) if b.trim_end_matches('/') != repo.url.trim_end_matches('/') => Err(meta_err(
            what,
            format!(
                "xml:base {b:?} points outside the repository: refusing to fetch from elsewhere"
            ),
        )),
        _ => Ok(()),
    }
}

/// Fetches every listed file (repodata, or an installer tree's) that the pool lacks, none
/// larger than `max_size`, verifies it, stores and records it.
pub async fn fetch_files(
    transport: Arc<Transport>,
    pool: &Pool,
    catalogue: &Catalogue,
    repo: &RepoConfig,
    records: &[RepoMdRecord],
    workers: usize,
    max_size: u64,
) -> Result<(Vec<MetaFile>, Transferred)> {
    for r in records {
        check_base(repo, &r.location_href, r.location_base.as_deref())?;
    }
    let known = held_files(catalogue, records).await?;
    let tmp = pool.tmp_dir();
    let fetched = stream::iter(records.iter().cloned())
        .map(|record| {
            let known = known.get(&record.checksum.value).cloned();
            fetch_file(
                transport.clone(),
                pool.clone(),
                tmp.clone(),
                record,
                known,
                max_size,
            )
        })
        // In repomd.xml's order, whichever finishes first: what the plan shows is the same
        // from run to run.
        .buffered(workers.max(1))
        .try_collect::<Vec<_>>()
        .await?;
    pool.sync_filesystem()?;
    let mut files = Vec::with_capacity(fetched.len());
    let mut placed = Vec::new();
    let mut locks = Vec::new();
    let mut total = Transferred::default();
    for (f, p, moved) in fetched {
        total.bytes += moved.bytes;
        total.resumed += moved.resumed;
        if let Some((p, lock)) = p {
            placed.push((
                p,
                Some((f.record.checksum.kind, f.record.checksum.value.clone())),
            ));
            locks.push(lock);
        }
        files.push(f);
    }
    let (cat, pool) = (catalogue.clone(), pool.clone());
    tokio::task::spawn_blocking(move || pool.record(&cat, placed).map(|_| drop(locks)))
        .await
        .map_err(|e| meta_err("repodata", e.to_string()))??;
    Ok((files, total))
}

/// The pool's blobs for the records' checksums, by checksum, reserved before use so that no
/// cleanup collects them while this sync runs.
async fn held_files(
    catalogue: &Catalogue,
    records: &[RepoMdRecord],
) -> Result<HashMap<String, KnownBlob>> {
    let mut known: HashMap<String, KnownBlob> = HashMap::new();
    let mut by_kind: HashMap<ChecksumType, Vec<String>> = HashMap::new();
    for r in records {
        by_kind
            .entry(r.checksum.kind)
            .or_default()
            .push(r.checksum.value.clone());
    }
    for (kind, values) in by_kind {
        let cat = catalogue.clone();
        let found = tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = values.iter().map(String::as_str).collect();
            cat.resolve_known(kind, &refs)
        })
        .await
        .map_err(|e| meta_err("repomd.xml", e.to_string()))??;
        known.extend(found);
    }
    let cat = catalogue.clone();
    let shas: Vec<Sha256> = known.values().map(|k| k.sha256.clone()).collect();
    let reserved = tokio::task::spawn_blocking(move || {
        let refs: Vec<&Sha256> = shas.iter().collect();
        cat.reserve_blobs(&refs)
    })
    .await
    .map_err(|e| meta_err("repomd.xml", e.to_string()))??;
    known.retain(|_, k| reserved.contains_key(&k.sha256));
    Ok(known)
}

/// One file: the pool's copy when it still has it, else downloaded (resuming a partial file
/// an earlier run left), verified and placed in the pool; the placed file comes back with its
/// partial file's lock, held until it is recorded.
async fn fetch_file(
    transport: Arc<Transport>,
    pool: Pool,
    tmp: std::path::PathBuf,
    record: RepoMdRecord,
    known: Option<KnownBlob>,
    max_size: u64,
) -> Result<(MetaFile, Option<(Placed, File)>, Transferred)> {
    if let Some(k) = known {
        if pool.absolute(&k.path).is_file() {
            let blob = StoredBlob {
                sha256: k.sha256,
                size: u64::try_from(k.size).unwrap_or(0),
                rel_path: k.path,
                written: false,
            };
            return Ok((MetaFile { record, blob }, None, Transferred::default()));
        }
    }
    // Another repository's sync may fetch the same file (identical repodata) at the same
    // time: whoever holds the lock on the shared name resumes it, the other downloads to a
    // private one, as for packages.
    let stable = tmp.join(format!("meta-{}.part", record.checksum.value));
    let (part, mut file) = match super::packages::open_partial(&stable, true)? {
        Some(f) => (stable, f),
        None => {
            let private = tmp.join(format!(
                "meta-{}.{}.part",
                record.checksum.value,
                std::process::id()
            ));
            let f = super::packages::open_partial(&private, false)?.ok_or_else(|| {
                meta_err(
                    &record.location_href,
                    format!("cannot lock {}", private.display()),
                )
            })?;
            (private, f)
        }
    };
    let expect = Expect {
        size: record.size,
        checksum: record.checksum.clone(),
        max_size,
    };
    let d = transport
        .download(&record.location_href, &part, &mut file, &expect, &|_| {})
        .await?;
    let name = href::file_name(&record.location_href).to_string();
    let placed = tokio::task::spawn_blocking(move || {
        // The partial file stays locked until it is recorded and settled.
        pool.adopt_file(&file, &part, &d.sha256, d.size, &name)
            .map(|p| (p, file))
    })
    .await
    .map_err(|e| meta_err(&record.location_href, e.to_string()))??;
    let blob = placed.0.blob.clone();
    let moved = Transferred {
        bytes: d.transferred,
        resumed: d.resumed,
    };
    Ok((MetaFile { record, blob }, Some(placed), moved))
}

/// Bytes a fetch moved in this run, and bytes an earlier run had fetched (resumed).
#[derive(Debug, Default, Clone, Copy)]
pub struct Transferred {
    pub bytes: u64,
    pub resumed: u64,
}

fn hash<T: std::hash::Hash + ?Sized>(t: &T) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault};
    BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(t)
}

fn open_decompressed(pool: &Pool, f: &MetaFile) -> Result<Box<dyn std::io::BufRead + Send>> {
    let path = pool.absolute(&f.blob.rel_path);
    let file = File::open(&path).map_err(|e| Error::io("cannot open", &path, e))?;
    let defaults = Limits::default();
    let limits = Limits {
        max_output: f
            .record
            .open_size
            .map_or(defaults.max_output, |s| s.min(defaults.max_output)),
        ..defaults
    };
    let (_, reader) = decompress::open(file, f.blob.size, limits)
        .map_err(|e| ParseError::from(e).into_error(&f.record.location_href, &path))?;
    Ok(decompress::read_ahead(reader).map_err(|e| Error::io("cannot read", &path, e))?)
}

/// Parses the fetched repodata: primary.xml on this thread, filelists.xml and other.xml each on
/// a thread of its own at the same time (each with its own decompression thread), so the phase
/// takes about as long as its longest file, not their sum. Packages whose checksum is in
/// `have_rows` already have package rows, so their fragments are not kept.
pub fn parse(
    pool: &Pool,
    files: &[MetaFile],
    repo: &RepoConfig,
    have_rows: &HashSet<String>,
) -> Result<Parsed> {
    let primary_file = files
        .iter()
        .find(|f| f.record.kind == MetadataKind::Primary)
        .ok_or_else(|| meta_err("repomd.xml", "no primary metadata"))?;
    let keys = PkgidKeys::default();
    // Set once the fragments are not wanted (primary failed, or every package has its row):
    // the scans stop at their next package and their outcome is ignored.
    let unwanted = AtomicBool::new(false);
    let scan = |kind: MetadataKind| -> Result<Option<Scanned>> {
        match files.iter().find(|f| f.record.kind == kind) {
            Some(f) => scan_fragments(pool, f, have_rows, &keys, &unwanted),
            None => Ok(None),
        }
    };
    let (primary, filelists, other) = std::thread::scope(|s| -> Result<_> {
        let spawn = |name: &str, kind| {
            let span = tracing::Span::current();
            std::thread::Builder::new()
                .name(name.to_string())
                .spawn_scoped(s, move || span.in_scope(|| scan(kind)))
                .map_err(|e| {
                    unwanted.store(true, Ordering::Relaxed);
                    meta_err(name, format!("cannot start a thread: {e}"))
                })
        };
        let filelists = spawn("filelists", MetadataKind::Filelists)?;
        let other = spawn("otherdata", MetadataKind::OtherData)?;
        let primary = (|| -> Result<_> {
            let mut spill = Spill::new(&pool.tmp_dir())?;
            let parsed = parse_primary(pool, primary_file, repo, have_rows, &mut spill)?;
            spill.flush()?;
            Ok((spill, parsed))
        })();
        let any_without_row = primary
            .as_ref()
            .is_ok_and(|(_, p)| p.packages.iter().any(|u| u.primary.is_some()));
        if !any_without_row {
            unwanted.store(true, Ordering::Relaxed);
        }
        let joined = |h: std::thread::ScopedJoinHandle<'_, Result<Option<Scanned>>>| {
            h.join()
                .map_err(|_| meta_err("repodata", "a metadata thread panicked"))
        };
        Ok((primary, joined(filelists)?, joined(other)?))
    })?;
    let (primary_spill, mut parsed) = primary?;
    let mut spills = Spills {
        primary: primary_spill,
        filelists: None,
        other: None,
    };
    // When nothing needs a fragment, whatever the scans found (or failed on) is not used.
    if !unwanted.load(Ordering::Relaxed) {
        let wanted: Vec<Option<u128>> = parsed
            .packages
            .iter()
            .map(|u| u.primary.map(|_| keys.key(&u.p.checksum.value)))
            .collect();
        if let Some(scanned) = filelists? {
            spills.filelists =
                Some(scanned.attach(&mut parsed.packages, &wanted, |u| &mut u.filelists));
        }
        if let Some(scanned) = other? {
            spills.other = Some(scanned.attach(&mut parsed.packages, &wanted, |u| &mut u.other));
        }
    }
    if parsed.same_nevra > 0 {
        tracing::warn!(
            "{} packages have the NEVRA of another package at a different location: \
             all are kept, as upstream lists them",
            parsed.same_nevra
        );
    }
    Ok(Parsed {
        packages: parsed.packages,
        spills,
        listed: parsed.listed,
        filtered: parsed.filtered,
        excluded: parsed.excluded,
        duplicates: parsed.duplicates,
    })
}

/// primary.xml's packages, as the repository's filters keep them.
struct PrimaryParsed {
    packages: Vec<UpPkg>,
    listed: usize,
    filtered: usize,
    excluded: usize,
    duplicates: usize,
    same_nevra: usize,
}

/// Reads primary.xml: each package's `xml:base` checked, those the architectures and filters
/// drop counted and forgotten, a second listing of an href dropped, and the fragment of each
/// package without a row spilled.
fn parse_primary(
    pool: &Pool,
    primary_file: &MetaFile,
    repo: &RepoConfig,
    have_rows: &HashSet<String>,
    spill: &mut Spill,
) -> Result<PrimaryParsed> {
    let mut out = PrimaryParsed {
        packages: Vec::new(),
        listed: 0,
        filtered: 0,
        excluded: 0,
        duplicates: 0,
        same_nevra: 0,
    };
    let packages = &mut out.packages;
    // Keyed by hash and checked against `packages` on a hit: exact, without a second copy of
    // every href and NEVRA.
    let mut seen_nevra = ByHash::default();
    let mut seen_href = ByHash::default();
    let what = primary_file.record.location_href.clone();
    let stored = pool.absolute(&primary_file.blob.rel_path);
    // Sized once from the declared count (a package takes a few hundred bytes of XML at the
    // least, which bounds a lying count by the file's size), instead of doubling: at 100,000
    // packages the doubled vector held 31,000 empty slots of 350 bytes.
    let most = primary_file
        .record
        .open_size
        .unwrap_or(primary_file.blob.size.saturating_mul(20))
        / 200;
    let declared = std::cell::Cell::new(0usize);
    let on_declared = |n: u64| declared.set(usize::try_from(n.min(most)).unwrap_or(0));
    let stats = primary::parse_counted(
        open_decompressed(pool, primary_file)?,
        on_declared,
        |p, fragment| {
            if packages.capacity() == 0 {
                packages.reserve_exact(declared.get());
            }
            if let Some(base) = p.location_base.as_deref() {
                check_base(repo, &p.location_href, Some(base))
                    .map_err(|e| ParseError::Invalid(e.to_string()))?;
            }
            if !repo.rpm.keeps_arch(&p.nevra.arch) {
                out.filtered += 1;
                return Ok(());
            }
            // Filtered out before anything of it is kept: never planned, never downloaded.
            if !repo.filters.keeps(&p.nevra.name, &p.nevra.arch) {
                out.excluded += 1;
                return Ok(());
            }
            let index = packages.len();
            let href_hash = hash(&p.location_href);
            if seen_href
                .get(href_hash)
                .any(|i| packages[i].p.location_href == p.location_href)
            {
                out.duplicates += 1;
                tracing::warn!(
                    "{} is listed more than once upstream: keeping the first entry",
                    p.location_href
                );
                return Ok(());
            }
            seen_href.insert(href_hash, index);
            let nevra_hash = hash(&p.nevra);
            if seen_nevra
                .get(nevra_hash)
                .any(|i| packages[i].p.nevra == p.nevra)
            {
                out.same_nevra += 1;
            }
            seen_nevra.insert(nevra_hash, index);
            let primary = if have_rows.contains(&p.checksum.value) {
                None
            } else {
                Some(spill.push(fragment)?)
            };
            packages.push(UpPkg {
                p,
                primary,
                filelists: None,
                other: None,
            });
            Ok(())
        },
    )
    .map_err(|e| e.into_error(&what, &stored))?;
    out.listed = usize::try_from(stats.parsed).unwrap_or(usize::MAX);
    Ok(out)
}

/// The keys fragments are matched to packages by: a 128-bit hash of the pkgid, keyed at random
/// for each run, so that no upstream can make two pkgids collide, and a key costs 16 bytes
/// where the pkgid would take 64 or more.
#[derive(Default)]
struct PkgidKeys {
    high: std::hash::RandomState,
    low: std::hash::RandomState,
}

impl PkgidKeys {
    fn key(&self, pkgid: &str) -> u128 {
        use std::hash::BuildHasher;
        (u128::from(self.high.hash_one(pkgid)) << 64) | u128::from(self.low.hash_one(pkgid))
    }
}

/// The fragments of filelists.xml or other.xml that may be wanted, spilled, with their keys,
/// sorted by key (of the fragments of one pkgid, the first in the document first).
struct Scanned {
    spill: Spill,
    fragments: Vec<(u128, Span)>,
}

impl Scanned {
    /// Gives each package the first fragment of its pkgid, if `wanted` has its key (those whose
    /// primary fragment was spilled, without a row); the spill holding them comes back.
    fn attach(
        self,
        packages: &mut [UpPkg],
        wanted: &[Option<u128>],
        slot: impl Fn(&mut UpPkg) -> &mut Option<Span>,
    ) -> Spill {
        for (u, key) in packages.iter_mut().zip(wanted) {
            let Some(key) = *key else { continue };
            let at = self.fragments.partition_point(|&(k, _)| k < key);
            if let Some(&(k, span)) = self.fragments.get(at) {
                if k == key {
                    *slot(u) = Some(span);
                }
            }
        }
        self.spill
    }
}

/// Reads filelists.xml or other.xml, spilling the fragments of packages that may need them
/// (those without a row already). Stops early, with an error that is ignored, once `unwanted`
/// is set.
fn scan_fragments(
    pool: &Pool,
    f: &MetaFile,
    have_rows: &HashSet<String>,
    keys: &PkgidKeys,
    unwanted: &AtomicBool,
) -> Result<Option<Scanned>> {
    let root = if f.record.kind == MetadataKind::Filelists {
        "filelists"
    } else {
        "otherdata"
    };
    let what = f.record.location_href.clone();
    let stored = pool.absolute(&f.blob.rel_path);
    let mut spill = Spill::new(&pool.tmp_dir())?;
    let mut fragments = Vec::new();
    fragments::parse(open_decompressed(pool, f)?, root, |fragment| {
        if unwanted.load(Ordering::Relaxed) {
            return Err(ParseError::Invalid("not wanted any more".into()));
        }
        // Not filtered by the fragment's own name and arch: primary's decide, and a package
        // primary keeps must find its fragments whatever these attributes say.
        if have_rows.contains(fragment.pkgid) {
            return Ok(());
        }
        fragments.push((keys.key(fragment.pkgid), spill.push(fragment.text)?));
        Ok(())
    })
    .map_err(|e| e.into_error(&what, &stored))?;
    spill.flush()?;
    // Here, on this thread, rather than on the one reading primary.xml, which finishes last.
    // Stable: of the fragments of one pkgid, the first in the document stays first.
    fragments.sort_by_key(|&(key, _)| key);
    Ok(Some(Scanned { spill, fragments }))
}

/// Package indices by a 64-bit hash of a key, the caller comparing the keys themselves: exact
/// without a second copy of every key, and one small entry per package (a vector per entry
/// cost 60 bytes of heap each, three maps of 100,000 at the metadata phase's peak).
#[derive(Default)]
struct ByHash {
    first: HashMap<u64, u32>,
    /// The rare further indices under a hash already taken.
    more: HashMap<u64, Vec<u32>>,
}

impl ByHash {
    fn get(&self, hash: u64) -> impl Iterator<Item = usize> + '_ {
        self.first
            .get(&hash)
            .into_iter()
            .chain(self.more.get(&hash).into_iter().flatten())
            .map(|&i| i as usize)
    }

    fn insert(&mut self, hash: u64, index: usize) {
        // More than 4 billion packages cannot come from one primary.xml within the limits.
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        match self.first.entry(hash) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(index);
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                self.more.entry(hash).or_default().push(index)
            }
        }
    }
}
