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
use chantal_common::rpm::{
    fragments, href, primary, Checksum, ChecksumType, HasNevra, NevraRef, ParseError,
    PrimaryPackage,
};
use chantal_common::{Error, Sha256};
use futures_util::stream::{self, StreamExt, TryStreamExt};

use super::error::{Result, SyncError};
use super::packages::Job;
use super::spill::{Span, Spill};
use super::transport::{Expect, Transport};

/// One package of the upstream, after the architecture filter: what the plan, the downloads
/// and the commit need of it, its strings in one allocation (name, version, release, arch,
/// href, checksum). What only a new package row needs (see [`RowFields`]) travels in the
/// primary spill with the fragment instead. At 100,000 packages this is 10 MB of records and
/// one string each, where the parser's own `PrimaryPackage` would take 35 MB and eight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpPkg {
    text: Box<str>,
    /// Where each string but the last ends in `text`.
    ends: [u32; 5],
    epoch: i64,
    kind: ChecksumType,
    pub size_package: u64,
    /// The package's [`RowFields`] and primary.xml fragment, when it has no row yet.
    pub primary: Option<Span>,
    pub filelists: Option<Span>,
    pub other: Option<Span>,
}

impl UpPkg {
    /// What is kept of `p`, without fragments; none if its strings together pass 4 GiB
    /// (no document within the parsers' limits has such a package).
    pub fn new(p: &PrimaryPackage) -> Option<UpPkg> {
        let n = &p.nevra;
        let parts = [
            n.name.as_str(),
            &n.version,
            &n.release,
            &n.arch,
            &p.location_href,
            &p.checksum.value,
        ];
        let mut text = String::with_capacity(parts.iter().map(|s| s.len()).sum());
        let mut ends = [0u32; 5];
        for (i, part) in parts.iter().enumerate() {
            text.push_str(part);
            if let Some(end) = ends.get_mut(i) {
                *end = u32::try_from(text.len()).ok()?;
            }
        }
        u32::try_from(text.len()).ok()?;
        Some(UpPkg {
            text: text.into_boxed_str(),
            ends,
            epoch: n.epoch,
            kind: p.checksum.kind,
            size_package: p.size_package,
            primary: None,
            filelists: None,
            other: None,
        })
    }

    /// String `i` of `text`.
    fn part(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        let end = self.ends.get(i).map_or(self.text.len(), |&e| e as usize);
        self.text.get(start..end).unwrap_or_default()
    }

    pub fn nevra(&self) -> NevraRef<'_> {
        NevraRef {
            name: self.part(0),
            epoch: self.epoch,
            version: self.part(1),
            release: self.part(2),
            arch: self.part(3),
        }
    }

    pub fn href(&self) -> &str {
        self.part(4)
    }

    /// The pkgid: upstream's checksum of the file.
    pub fn checksum_value(&self) -> &str {
        self.part(5)
    }

    pub fn checksum_kind(&self) -> ChecksumType {
        self.kind
    }

    pub fn checksum(&self) -> Checksum {
        Checksum {
            kind: self.kind,
            value: self.checksum_value().to_string(),
        }
    }

    /// This package to fetch, as plan entry `index`.
    pub fn job(&self, index: usize) -> Job {
        Job {
            index,
            label: self.nevra().to_string(),
            href: self.href().to_string(),
            checksum: self.checksum(),
            size: self.size_package,
        }
    }
}

impl HasNevra for UpPkg {
    fn nevra_ref(&self) -> NevraRef<'_> {
        self.nevra()
    }
}

/// What a new package row takes from primary.xml beyond [`UpPkg`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowFields {
    pub size_installed: Option<u64>,
    pub size_archive: Option<u64>,
    pub time_file: Option<i64>,
    pub time_build: Option<i64>,
    pub sourcerpm: Option<String>,
}

impl RowFields {
    /// Spills `p`'s row fields and its fragment as one record: a byte of flags (which values
    /// are present), the four numbers (8 bytes each, little-endian), the source RPM's length
    /// (4 bytes) and bytes, the fragment.
    pub fn spill(
        p: &PrimaryPackage,
        spill: &mut Spill,
        fragment: &str,
    ) -> chantal_common::Result<Span> {
        let numbers = [
            p.size_installed,
            p.size_archive,
            p.time_file.map(|t| t as u64),
            p.time_build.map(|t| t as u64),
        ];
        let mut head = [0u8; HEAD];
        for (i, n) in numbers.iter().enumerate() {
            if let Some(n) = n {
                head[0] |= 1 << i;
                head[1 + 8 * i..9 + 8 * i].copy_from_slice(&n.to_le_bytes());
            }
        }
        let source = p.sourcerpm.as_deref().unwrap_or_default().as_bytes();
        if p.sourcerpm.is_some() {
            head[0] |= 1 << 4;
        }
        let source_len = u32::try_from(source.len()).map_err(|_| Error::Metadata {
            file: "primary.xml".into(),
            message: "a source RPM name of absurd length".into(),
        })?;
        head[33..].copy_from_slice(&source_len.to_le_bytes());
        spill.push_parts(&[&head, source, fragment.as_bytes()])
    }

    /// The fields and the fragment of a record [`RowFields::spill`] wrote.
    pub fn read(spill: &Spill, span: Span) -> chantal_common::Result<(RowFields, String)> {
        let damaged = || Error::Metadata {
            file: "primary.xml".into(),
            message: "a spilled package record is damaged".into(),
        };
        let mut bytes = spill.get_bytes(span)?;
        let head: [u8; HEAD] = bytes
            .get(..HEAD)
            .and_then(|h| h.try_into().ok())
            .ok_or_else(damaged)?;
        let number = |i: usize| {
            (head[0] & (1 << i) != 0).then(|| {
                let mut b = [0u8; 8];
                b.copy_from_slice(&head[1 + 8 * i..9 + 8 * i]);
                u64::from_le_bytes(b)
            })
        };
        let mut len = [0u8; 4];
        len.copy_from_slice(&head[33..]);
        let source_end = usize::try_from(u32::from_le_bytes(len))
            .ok()
            .and_then(|l| l.checked_add(HEAD))
            .filter(|&end| end <= bytes.len())
            .ok_or_else(damaged)?;
        let fragment = bytes.split_off(source_end);
        let source = String::from_utf8(bytes.split_off(HEAD)).map_err(|_| damaged())?;
        let fragment = String::from_utf8(fragment).map_err(|_| damaged())?;
        let fields = RowFields {
            size_installed: number(0),
            size_archive: number(1),
            time_file: number(2).map(|t| t as i64),
            time_build: number(3).map(|t| t as i64),
            sourcerpm: (head[0] & (1 << 4) != 0).then_some(source),
        };
        Ok((fields, fragment))
    }
}

/// A spilled record's fixed part: flags, four numbers, the source RPM's length.
const HEAD: usize = 1 + 4 * 8 + 4;

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
        let (filelists, other) = (filelists?, other?);
        for u in parsed.packages.iter_mut().filter(|u| u.primary.is_some()) {
            let key = keys.key(u.checksum_value());
            u.filelists = filelists.as_ref().and_then(|s| s.find(key));
            u.other = other.as_ref().and_then(|s| s.find(key));
        }
        spills.filelists = filelists.map(|s| s.spill);
        spills.other = other.map(|s| s.spill);
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
            let mut kept = UpPkg::new(&p).ok_or("a package's names of absurd length")?;
            if !have_rows.contains(&p.checksum.value) {
                kept.primary = Some(RowFields::spill(&p, spill, fragment)?);
            }
            packages.push(kept);
            Ok(())
        },
    )
    .map_err(|e| e.into_error(&what, &stored))?;
    let (duplicates, same_nevra) = drop_duplicates(&mut out.packages);
    out.duplicates = duplicates;
    out.same_nevra = same_nevra;
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
    /// The first fragment of the pkgid `key` stands for.
    fn find(&self, key: u128) -> Option<Span> {
        let at = self.fragments.partition_point(|&(k, _)| k < key);
        self.fragments
            .get(at)
            .and_then(|&(k, span)| (k == key).then_some(span))
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

/// Drops every listing of an href after its first (upstream's order kept otherwise), warning
/// of each in upstream's order, and counts the packages left that share the NEVRA of an
/// earlier one. By sorting indices once the document is read rather than by hashing as
/// packages come: 9 bytes per package, where two hash maps of 100,000 took 2.2 MB each at
/// the metadata phase's peak. Returns (listings dropped, packages sharing a NEVRA).
fn drop_duplicates(packages: &mut Vec<UpPkg>) -> (usize, usize) {
    let mut order: Vec<usize> = (0..packages.len()).collect();
    // Of equal hrefs, the first listed comes first.
    order.sort_unstable_by(|&a, &b| packages[a].href().cmp(packages[b].href()).then(a.cmp(&b)));
    let mut dropped = vec![false; packages.len()];
    for pair in order.windows(2) {
        if let [first, next] = *pair {
            if packages[first].href() == packages[next].href() {
                dropped[next] = true;
            }
        }
    }
    let mut duplicates = 0;
    for (p, _) in packages.iter().zip(&dropped).filter(|(_, &d)| d) {
        duplicates += 1;
        tracing::warn!(
            "{} is listed more than once upstream: keeping the first entry",
            p.href()
        );
    }
    let mut next = dropped.iter();
    packages.retain(|_| next.next() == Some(&false));
    drop(dropped);
    order.truncate(packages.len());
    for (i, slot) in order.iter_mut().enumerate() {
        *slot = i;
    }
    let identity = |i: usize| {
        let n = packages[i].nevra();
        (n.name, n.epoch, n.version, n.release, n.arch)
    };
    order.sort_unstable_by(|&a, &b| identity(a).cmp(&identity(b)));
    let same_nevra = order
        .windows(2)
        .filter(|pair| matches!(**pair, [a, b] if identity(a) == identity(b)))
        .count();
    (duplicates, same_nevra)
}

#[cfg(test)]
mod tests {
    use chantal_common::rpm::Nevra;
    use proptest::prelude::*;

    use super::*;

    fn package(
        name: &str,
        epoch: i64,
        href: &str,
        numbers: [Option<i64>; 4],
        sourcerpm: Option<String>,
    ) -> PrimaryPackage {
        PrimaryPackage {
            nevra: Nevra::new(name, epoch, "1.0", "1.el9", "x86_64"),
            checksum: Checksum::new("sha256", &"ab".repeat(32)).unwrap(),
            location_href: href.into(),
            location_base: None,
            size_package: 7,
            size_installed: numbers[0].map(|n| n as u64),
            size_archive: numbers[1].map(|n| n as u64),
            time_file: numbers[2],
            time_build: numbers[3],
            sourcerpm,
        }
    }

    proptest! {
        /// What a row needs comes back from the spill as it went in, beside its fragment.
        #[test]
        fn row_fields_come_back_from_the_spill(
            numbers in proptest::array::uniform4(proptest::option::of(any::<i64>())),
            sourcerpm in proptest::option::of("\\PC{0,40}"),
            fragment in "\\PC{1,200}",
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut spill = Spill::new(dir.path()).unwrap();
            let p = package("a", 0, "Packages/a.rpm", numbers, sourcerpm.clone());
            let span = RowFields::spill(&p, &mut spill, &fragment).unwrap();
            spill.flush().unwrap();
            let (row, text) = RowFields::read(&spill, span).unwrap();
            prop_assert_eq!(text, fragment);
            prop_assert_eq!(row, RowFields {
                size_installed: p.size_installed,
                size_archive: p.size_archive,
                time_file: p.time_file,
                time_build: p.time_build,
                sourcerpm,
            });
        }

        /// Duplicates are dropped and counted as a naive pass in upstream order would: the
        /// first listing of an href stays, and every later package sharing a kept one's NEVRA
        /// is counted once.
        #[test]
        fn duplicates_go_as_a_naive_pass_would_drop_them(
            listed in proptest::collection::vec(
                (0usize..3, 0i64..2, 0usize..3, 0usize..4), 0..40),
        ) {
            let names = ["a", "b", "a.b"];
            let versions = ["1", "1.0", "2"];
            let hrefs = ["P/a.rpm", "P/b.rpm", "a.rpm", "P/a.rpm "];
            let made: Vec<PrimaryPackage> = listed
                .iter()
                .map(|&(n, e, v, h)| {
                    let mut p = package(names[n], e, hrefs[h], [None; 4], None);
                    p.nevra.version = versions[v].into();
                    p
                })
                .collect();
            let mut packages: Vec<UpPkg> = made.iter().map(|p| UpPkg::new(p).unwrap()).collect();
            let (duplicates, same_nevra) = drop_duplicates(&mut packages);

            let mut hrefs_seen = HashSet::new();
            let mut nevras_seen = HashSet::new();
            let (mut naive_duplicates, mut naive_same) = (0, 0);
            let mut kept = Vec::new();
            for p in &made {
                if !hrefs_seen.insert(p.location_href.clone()) {
                    naive_duplicates += 1;
                    continue;
                }
                if !nevras_seen.insert(p.nevra.clone()) {
                    naive_same += 1;
                }
                kept.push(UpPkg::new(p).unwrap());
            }
            prop_assert_eq!(packages, kept);
            prop_assert_eq!((duplicates, same_nevra), (naive_duplicates, naive_same));
        }

        /// A kept package reads back the strings of the one it was made from.
        #[test]
        fn a_kept_package_keeps_its_identity(
            name in "\\PC{1,30}", epoch in 0i64..5, href in "\\PC{1,60}",
        ) {
            let p = package(&name, epoch, &href, [None; 4], None);
            let u = UpPkg::new(&p).unwrap();
            prop_assert_eq!(u.nevra(), p.nevra.borrowed());
            prop_assert_eq!(u.href(), href.as_str());
            prop_assert_eq!(u.checksum(), p.checksum.clone());
            prop_assert_eq!(u.size_package, 7);
        }
    }

    #[test]
    fn a_damaged_record_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let mut spill = Spill::new(dir.path()).unwrap();
        let short = spill.push("too short").unwrap();
        let mut head = [0u8; HEAD];
        head[33..].copy_from_slice(&u32::MAX.to_le_bytes());
        let long = spill.push_parts(&[&head, b"x"]).unwrap();
        spill.flush().unwrap();
        for span in [short, long] {
            let err = RowFields::read(&spill, span).unwrap_err().to_string();
            assert!(err.contains("damaged"), "{err}");
        }
    }
}
