//! The content-addressed pool: every file chantal keeps (packages and repodata) is stored once,
//! at `<base_path>/data/sha256/ab/cd/<sha256>_<filename>`, where `ab` and `cd` are the first two
//! pairs of hex digits of the file's sha256.
//!
//! A file only ever appears under its final name complete and hashed: writers stream into a
//! temporary file in `<base_path>/data/tmp` (the same file system, so the final link is
//! atomic), fsync it, and hard-link it into place. A blob that is already present is not
//! written again, and two writers racing on the same content both succeed with one file.
//!
//! The temporary name is kept until the catalogue has recorded the blob ([`Pool::record`]):
//! `chantal db cleanup` removes a file together with its old record, so a writer that found an
//! identical file in place (or linked its own over a name whose old record cleanup had just
//! claimed) checks after recording that the file is still there and restores it from the
//! temporary name if not. A recorded blob therefore always has its file.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256 as Sha256Hasher};

use crate::catalogue::{Catalogue, SignatureRecord};
use crate::error::{Error, Result};
use crate::rpm::ChecksumType;
use crate::Sha256;

/// Size of the buffer used to stream files through the hasher.
const CHUNK: usize = 256 * 1024;

/// The pool below one storage base path.
#[derive(Debug, Clone)]
pub struct Pool {
    data: PathBuf,
}

/// A file that is now in the pool (the catalogue's record of it).
pub use crate::catalogue::StoredBlob;

/// A file that has its pool name while its temporary name still exists: record it in the
/// catalogue, then settle it ([`Pool::record`] does both).
#[must_use = "a placed file must be recorded and settled"]
#[derive(Debug)]
pub struct Placed {
    pub blob: StoredBlob,
    source: Source,
}

#[derive(Debug)]
enum Source {
    /// A file the caller wrote (a download's partial file), removed when settled.
    Kept(PathBuf),
    /// A temporary file of the pool's own, removed when settled or dropped.
    Temp(tempfile::TempPath),
    /// Renamed into place (a file system without hard links): nothing to restore from.
    Gone,
}

impl Pool {
    /// The pool of the storage rooted at `base_path`.
    pub fn new(base_path: &Path) -> Pool {
        Pool {
            data: base_path.join("data"),
        }
    }

    /// `<base_path>/data`.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// Where temporary files are written before they are renamed into the pool.
    pub fn tmp_dir(&self) -> PathBuf {
        self.data.join("tmp")
    }

    /// The directories the pool needs, in creation order.
    pub fn directories(&self) -> Vec<PathBuf> {
        vec![self.data.clone(), self.data.join("sha256"), self.tmp_dir()]
    }

    /// Creates the pool's directories; returns those that did not exist before.
    pub fn create_dirs(&self) -> Result<Vec<PathBuf>> {
        let mut created = Vec::new();
        for dir in self.directories() {
            if !dir.is_dir() {
                fs::create_dir_all(&dir).map_err(|e| Error::io("cannot create", &dir, e))?;
                created.push(dir);
            }
        }
        Ok(created)
    }

    /// The relative pool path for a file with this hash and name.
    pub fn relative_path(sha256: &Sha256, filename: &str) -> Result<String> {
        check_filename(filename)?;
        let hex = sha256.as_str();
        Ok(format!(
            "sha256/{}/{}/{hex}_{filename}",
            &hex[0..2],
            &hex[2..4]
        ))
    }

    /// Absolute path of a relative pool path.
    pub fn absolute(&self, rel_path: &str) -> PathBuf {
        self.data.join(rel_path)
    }

    /// Streams `reader` into the pool as `filename`, hashing on the way.
    pub fn put_reader(&self, mut reader: impl Read, filename: &str) -> Result<Placed> {
        check_filename(filename)?;
        let tmp_dir = self.tmp_dir();
        let mut tmp = tempfile::Builder::new()
            .prefix(".put-")
            .tempfile_in(&tmp_dir)
            .map_err(|e| Error::io("cannot create a temporary file in", &tmp_dir, e))?;
        let mut hasher = Sha256Hasher::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io("cannot read the data for", filename, e)),
            };
            hasher.update(&buf[..n]);
            tmp.write_all(&buf[..n])
                .map_err(|e| Error::io("cannot write", tmp.path(), e))?;
            size += n as u64;
        }
        let sha256 = Sha256::from_hasher(hasher);
        self.adopt(tmp, &sha256, size, filename)
    }

    /// What a version commit writes its manifest with ([`crate::catalogue::Seal`]): each
    /// file put into the pool, recorded by the commit, settled after it.
    pub fn seal_writer(&self) -> impl Fn(&[u8], &str) -> Result<crate::catalogue::SealedFile> + '_ {
        move |bytes, name| {
            let placed = self.put_reader(bytes, name)?;
            let pool = self.clone();
            Ok(crate::catalogue::SealedFile {
                blob: placed.blob.clone(),
                path: self.absolute(&placed.blob.rel_path),
                settle: Box::new(move || pool.settle(placed).map(|_| ())),
            })
        }
    }

    /// Moves a complete temporary file whose hash and size the caller computed while writing it
    /// into the pool. The file must live in [`Pool::tmp_dir`].
    pub fn adopt(
        &self,
        tmp: tempfile::NamedTempFile,
        sha256: &Sha256,
        size: u64,
        filename: &str,
    ) -> Result<Placed> {
        let (file, path) = tmp.into_parts();
        let mut placed = self.adopt_file(&file, &path, sha256, size, filename)?;
        if matches!(placed.source, Source::Kept(_)) {
            // Keep the TempPath instead: a failure or a drop still removes the file.
            placed.source = Source::Temp(path);
        }
        if placed.blob.written {
            // A single put is durable on return: sync its directory entry too.
            self.sync_bucket(&placed.blob.rel_path)?;
        }
        Ok(placed)
    }

    /// [`Pool::adopt`] for a file known by path (a download's partial file): syncs its data,
    /// then [`Pool::place`]s it. The link becomes durable with [`Pool::sync_filesystem`].
    pub fn adopt_file(
        &self,
        file: &File,
        path: &Path,
        sha256: &Sha256,
        size: u64,
        filename: &str,
    ) -> Result<Placed> {
        file.sync_all()
            .map_err(|e| Error::io("cannot sync", path, e))?;
        self.place(path, sha256, size, filename)
    }

    /// Gives a complete, verified file whose data is already durable (synced by the caller,
    /// one file or a whole batch at once) its pool name, by a hard link: `path` stays until
    /// the blob is settled. If an identical blob is already present, nothing is written. The
    /// link is durable after [`Pool::sync_filesystem`]: call it before publishing anything
    /// that references the blob.
    pub fn place(&self, path: &Path, sha256: &Sha256, size: u64, filename: &str) -> Result<Placed> {
        let rel_path = Self::relative_path(sha256, filename)?;
        let dest = self.absolute(&rel_path);
        let bucket = dest.parent().unwrap_or(&self.data).to_path_buf();
        // A bucket this call creates holds nothing yet, so there is nothing to look for: in a
        // young pool most files open a bucket of their own.
        let existing = if self.create_bucket(&bucket)? {
            None
        } else {
            match fs::metadata(&dest) {
                Ok(m) => Some((dest.clone(), m.len())),
                Err(_) => self
                    .find(sha256)?
                    .and_then(|p| fs::metadata(&p).ok().map(|m| (p, m.len()))),
            }
        };
        let kept = |blob: StoredBlob| Placed {
            blob,
            source: Source::Kept(path.to_path_buf()),
        };
        if let Some((existing, existing_size)) = &existing {
            if *existing_size == size {
                let rel = existing
                    .strip_prefix(&self.data)
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or(rel_path);
                return Ok(kept(StoredBlob {
                    sha256: sha256.clone(),
                    size,
                    rel_path: rel,
                    written: false,
                }));
            }
        }
        let blob = StoredBlob {
            sha256: sha256.clone(),
            size,
            rel_path,
            written: true,
        };
        if existing.is_none() {
            match fs::hard_link(path, &dest) {
                Ok(()) => return Ok(kept(blob)),
                // Another writer of the same content got there first.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    return Ok(kept(StoredBlob {
                        written: false,
                        ..blob
                    }))
                }
                // A file system without hard links: rename instead.
                Err(_) => {}
            }
        }
        // Replacing a damaged file of the wrong size, or no hard links: the file moves.
        fs::rename(path, &dest)
            .map_err(|e| Error::io("cannot move a temporary file to", &dest, e))?;
        Ok(Placed {
            blob,
            source: Source::Gone,
        })
    }

    /// Creates the `ab/cd` directory `bucket` (and `ab` if need be); whether this call
    /// created it.
    fn create_bucket(&self, bucket: &Path) -> Result<bool> {
        let create = || match fs::create_dir(bucket) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        };
        match create() {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if let Some(parent) = bucket.parent() {
                    fs::create_dir_all(parent)
                        .map_err(|e| Error::io("cannot create", parent, e))?;
                }
                create()
            }
            other => other,
        }
        .map_err(|e| Error::io("cannot create", bucket, e))
    }

    /// Renames a complete, verified file whose data is durable into the pool, for a caller
    /// that has just found no file of this sha256 there and holds the blob against cleanup (a
    /// bundle import): one rename instead of a link now and an unlink at settling. The name
    /// is durable after [`Pool::sync_filesystem`].
    pub fn move_in(
        &self,
        path: &Path,
        sha256: &Sha256,
        size: u64,
        filename: &str,
    ) -> Result<Placed> {
        let rel_path = Self::relative_path(sha256, filename)?;
        let dest = self.absolute(&rel_path);
        let bucket = dest.parent().unwrap_or(&self.data).to_path_buf();
        fs::create_dir_all(&bucket).map_err(|e| Error::io("cannot create", &bucket, e))?;
        fs::rename(path, &dest)
            .map_err(|e| Error::io("cannot move a temporary file to", &dest, e))?;
        Ok(Placed {
            blob: StoredBlob {
                sha256: sha256.clone(),
                size,
                rel_path,
                written: true,
            },
            source: Source::Gone,
        })
    }

    /// Records placed blobs in the catalogue, with the upstream checksum each was verified
    /// against, then settles them: a pool file that a concurrent cleanup removed together with
    /// an older record of the same blob is restored from its temporary name (see the module
    /// documentation), and the temporary names go. Returns the blobs.
    pub fn record(
        &self,
        catalogue: &Catalogue,
        placed: Vec<(Placed, Option<(ChecksumType, String)>)>,
    ) -> Result<Vec<StoredBlob>> {
        self.record_checked(catalogue, placed, &[])
    }

    /// [`Pool::record`], with what the files' signature checks found, recorded in the same
    /// transaction as the blobs (each record names one of them).
    pub fn record_checked(
        &self,
        catalogue: &Catalogue,
        placed: Vec<(Placed, Option<(ChecksumType, String)>)>,
        signatures: &[SignatureRecord],
    ) -> Result<Vec<StoredBlob>> {
        let records: Vec<(StoredBlob, Option<(ChecksumType, String)>)> = placed
            .iter()
            .map(|(p, alt)| (p.blob.clone(), alt.clone()))
            .collect();
        catalogue.record_checked_blobs(&records, signatures)?;
        placed.into_iter().map(|(p, _)| self.settle(p)).collect()
    }

    /// After the catalogue recorded `placed`: makes sure its pool file exists (restoring it
    /// from the temporary name if a cleanup removed it meanwhile) and removes the temporary
    /// name. Once recorded, a blob is protected from cleanup, so this check is final.
    pub fn settle(&self, placed: Placed) -> Result<StoredBlob> {
        let Placed { blob, source } = placed;
        let dest = self.absolute(&blob.rel_path);
        let present = dest.is_file();
        match source {
            Source::Kept(path) => {
                if !present {
                    self.restore(&path, &dest)?;
                }
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io("cannot remove", &path, e)),
                }
            }
            Source::Temp(path) => {
                if !present {
                    self.restore(&path, &dest)?;
                }
                drop(path);
            }
            Source::Gone if !present => {
                return Err(Error::Raced(format!(
                    "{} was removed by a concurrent `chantal db cleanup` before it was recorded",
                    dest.display()
                )));
            }
            Source::Gone => {}
        }
        Ok(blob)
    }

    fn restore(&self, from: &Path, dest: &Path) -> Result<()> {
        tracing::info!(
            "{}: removed by a concurrent cleanup, restored from {}",
            dest.display(),
            from.display()
        );
        if let Some(bucket) = dest.parent() {
            fs::create_dir_all(bucket).map_err(|e| Error::io("cannot create", bucket, e))?;
        }
        match fs::hard_link(from, dest) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io("cannot restore", dest, e)),
        }
        let rel = dest
            .strip_prefix(&self.data)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.sync_bucket(&rel)
    }

    /// fsyncs the directory holding a pool file, making its name durable.
    fn sync_bucket(&self, rel_path: &str) -> Result<()> {
        let path = self.absolute(rel_path);
        if let Some(dir) = path.parent() {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| Error::io("cannot sync", dir, e))?;
        }
        Ok(())
    }

    /// Flushes everything written to the pool's file system (data and renames) in one journal
    /// commit: far cheaper than an fsync per file and directory.
    pub fn sync_filesystem(&self) -> Result<()> {
        let dir = File::open(&self.data).map_err(|e| Error::io("cannot open", &self.data, e))?;
        rustix::fs::syncfs(&dir)
            .map_err(|e| Error::io("cannot sync the file system of", &self.data, e.into()))
    }

    /// Removes what interrupted runs left in [`Pool::tmp_dir`]: partial downloads (`*.part`)
    /// untouched for longer than `grace` whose lock no running sync holds, and other
    /// temporary files untouched for longer than the larger of `grace` and an hour (a write
    /// in progress touches its file all the time). Returns the files and bytes removed (with
    /// `dry_run`, that would be).
    pub fn sweep_partials(&self, grace: std::time::Duration, dry_run: bool) -> Result<(u64, u64)> {
        const OTHER_MIN_AGE: std::time::Duration = std::time::Duration::from_secs(3600);
        let dir = self.tmp_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((0, 0)),
            Err(e) => return Err(Error::io("cannot list", &dir, e)),
        };
        let now = std::time::SystemTime::now();
        let (mut files, mut bytes) = (0u64, 0u64);
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("cannot list", &dir, e))?;
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            let age = meta
                .modified()
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .unwrap_or_default();
            let partial = path.extension().is_some_and(|e| e == "part");
            let min_age = if partial {
                grace
            } else {
                grace.max(OTHER_MIN_AGE)
            };
            if age <= min_age {
                continue;
            }
            // A running sync holds the lock of each partial file it works on.
            let Ok(file) = File::open(&path) else {
                continue;
            };
            if file.try_lock().is_err() {
                continue;
            }
            if !dry_run {
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(Error::io("cannot remove", &path, e)),
                }
            }
            files += 1;
            // A partial file that was already linked into the pool (a sync stopped between
            // placing and recording it, by a full disk say) frees nothing: its data stays under
            // the pool name.
            if std::os::unix::fs::MetadataExt::nlink(&meta) <= 1 {
                bytes += meta.len();
            }
        }
        Ok((files, bytes))
    }

    /// The pool file holding `sha256`, whatever name it was stored under.
    pub fn find(&self, sha256: &Sha256) -> Result<Option<PathBuf>> {
        let hex = sha256.as_str();
        let bucket = self.data.join("sha256").join(&hex[0..2]).join(&hex[2..4]);
        let entries = match fs::read_dir(&bucket) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("cannot list", &bucket, e)),
        };
        let prefix = format!("{sha256}_");
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("cannot list", &bucket, e))?;
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                return Ok(Some(entry.path()));
            }
        }
        Ok(None)
    }

    /// The pool files of many sha256s (in hex, as upstream lists them), for a sync's plan:
    /// the index in `hexes` of each one found, its sha256 and its file. A bucket that does not
    /// exist is known from one listing of its parent directory, instead of costing one failed
    /// look-up per file (100,000 of them for a large repository into a young pool), and only a
    /// name whose bucket exists is parsed.
    pub fn find_all(&self, hexes: &[&str]) -> Result<Vec<(usize, Sha256, PathBuf)>> {
        let root = self.data.join("sha256");
        let Some(tops) = list_names(&root)? else {
            return Ok(Vec::new());
        };
        // The `cd` buckets of each `ab` directory, listed when first asked.
        let mut buckets = std::collections::HashMap::new();
        let mut found = Vec::new();
        for (n, hex) in hexes.iter().enumerate() {
            let (Some(ab), Some(cd)) = (hex.get(0..2), hex.get(2..4)) else {
                continue;
            };
            if !tops.contains(ab) {
                continue;
            }
            let cds = match buckets.entry(ab) {
                std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(list_names(&root.join(ab))?.unwrap_or_default())
                }
            };
            if !cds.contains(cd) {
                continue;
            }
            let Ok(sha) = Sha256::parse(hex) else {
                continue;
            };
            if let Some(path) = self.find(&sha)? {
                found.push((n, sha, path));
            }
        }
        Ok(found)
    }

    /// Recomputes the hash of the blob at `rel_path` and checks it against its name.
    pub fn verify(&self, rel_path: &str) -> Result<()> {
        let path = self.absolute(rel_path);
        let expected = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.split('_').next())
            .filter(|s| is_sha256(s))
            .and_then(|s| Sha256::parse(s).ok())
            .ok_or_else(|| Error::BadFileName(rel_path.to_string()))?;
        let actual = sha256_file(&path)?;
        if actual == expected {
            Ok(())
        } else {
            Err(Error::HashMismatch {
                path,
                expected: expected.into_string(),
                actual: actual.into_string(),
            })
        }
    }
}

/// The names in directory `dir`, or `None` when it does not exist.
fn list_names(dir: &Path) -> Result<Option<std::collections::HashSet<String>>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("cannot list", dir, e)),
    };
    let mut names = std::collections::HashSet::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("cannot list", dir, e))?;
        names.insert(entry.file_name().to_string_lossy().into_owned());
    }
    Ok(Some(names))
}

/// The sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<Sha256> {
    let mut file = File::open(path).map_err(|e| Error::io("cannot open", path, e))?;
    let mut hasher = Sha256Hasher::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("cannot read", path, e)),
        }
    }
    Ok(Sha256::from_hasher(hasher))
}

/// Whether `s` is 64 lower-case hex digits.
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn check_filename(name: &str) -> Result<()> {
    if name.is_empty()
        || name == "."
        || name == ".."
        || name.contains('/')
        || name.contains('\0')
        || name.len() > 200
    {
        Err(Error::BadFileName(name.to_string()))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO_SHA: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    fn hello() -> Sha256 {
        Sha256::parse(HELLO_SHA).unwrap()
    }

    fn put(pool: &Pool, data: &[u8], name: &str) -> StoredBlob {
        pool.settle(pool.put_reader(data, name).unwrap()).unwrap()
    }

    fn pool() -> (tempfile::TempDir, Pool) {
        let dir = tempfile::tempdir().unwrap();
        let pool = Pool::new(dir.path());
        assert_eq!(pool.create_dirs().unwrap().len(), 3);
        assert!(pool.create_dirs().unwrap().is_empty());
        (dir, pool)
    }

    #[test]
    fn put_stores_under_hash_layout() {
        let (_d, pool) = pool();
        let blob = put(&pool, b"hello", "hello.rpm");
        assert_eq!(blob.sha256, HELLO_SHA);
        assert_eq!(blob.size, 5);
        assert!(blob.written);
        assert_eq!(blob.rel_path, format!("sha256/2c/f2/{HELLO_SHA}_hello.rpm"));
        assert_eq!(fs::read(pool.absolute(&blob.rel_path)).unwrap(), b"hello");
        pool.verify(&blob.rel_path).unwrap();
        assert_eq!(fs::read_dir(pool.tmp_dir()).unwrap().count(), 0);
    }

    #[test]
    fn find_all_finds_what_find_finds() {
        let (_d, pool) = pool();
        let sha = |s: &str| Sha256::parse(&format!("{s:0<64}")).unwrap();
        assert!(
            pool.find_all(&[hello().as_str()]).unwrap().is_empty(),
            "an empty pool"
        );
        let blob = put(&pool, b"hello", "hello.rpm");
        let wanted = [
            sha("00"),     // no `00/` at all
            sha("2cee"),   // `2c/` but no `2c/ee/`
            hello(),       // stored
            sha("2cf2ff"), // in hello's bucket, not stored
        ];
        let hexes: Vec<&str> = wanted.iter().map(Sha256::as_str).collect();
        let found = pool.find_all(&hexes).unwrap();
        assert_eq!(found, vec![(2, hello(), pool.absolute(&blob.rel_path))]);
        for (n, s) in wanted.iter().enumerate() {
            assert_eq!(
                pool.find(s).unwrap(),
                found
                    .iter()
                    .find(|(i, ..)| *i == n)
                    .map(|(.., p)| p.clone())
            );
        }
        // Names that are not sha256s are never found (nor a reason to fail).
        let odd = [
            "2c",
            "2cf2é",
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824x",
        ];
        assert!(pool.find_all(&odd).unwrap().is_empty());
    }

    #[test]
    fn put_dedups_identical_content() {
        let (_d, pool) = pool();
        let a = put(&pool, b"hello", "a.rpm");
        let b = put(&pool, b"hello", "b.rpm");
        assert!(!b.written);
        assert_eq!(a.rel_path, b.rel_path, "the existing file is reused");
        assert_eq!(fs::read_dir(pool.tmp_dir()).unwrap().count(), 0);
    }

    #[test]
    fn concurrent_puts_of_the_same_blob_both_succeed_with_one_file() {
        let (_d, pool) = pool();
        let data: Vec<u8> = (0..4_000_000u32).map(|i| (i % 251) as u8).collect();
        let results: Vec<StoredBlob> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| put(&pool, &data, "big.rpm")))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(results.iter().all(|r| r.sha256 == results[0].sha256));
        let bucket = pool.absolute(&results[0].rel_path);
        let files = fs::read_dir(bucket.parent().unwrap()).unwrap().count();
        assert_eq!(files, 1);
        assert_eq!(fs::read(&bucket).unwrap(), data);
        assert_eq!(fs::read_dir(pool.tmp_dir()).unwrap().count(), 0);
    }

    #[test]
    fn verify_detects_corruption() {
        let (_d, pool) = pool();
        let blob = put(&pool, b"hello", "x");
        fs::write(pool.absolute(&blob.rel_path), b"jello").unwrap();
        let err = pool.verify(&blob.rel_path).unwrap_err().to_string();
        assert!(err.contains(&format!("expected {HELLO_SHA}")), "{err}");
    }

    #[test]
    fn a_truncated_blob_is_replaced_not_trusted() {
        let (_d, pool) = pool();
        let blob = put(&pool, b"hello", "x");
        fs::write(pool.absolute(&blob.rel_path), b"he").unwrap();
        let again = put(&pool, b"hello", "x");
        assert!(again.written);
        pool.verify(&again.rel_path).unwrap();
    }

    #[test]
    fn a_file_removed_before_it_was_recorded_is_restored_when_settled() {
        let (_d, pool) = pool();
        // A cleanup removes the file between the put (which found or wrote it) and the
        // settle that follows the catalogue record.
        for present_before in [false, true] {
            if present_before {
                put(&pool, b"hello", "x");
            }
            let placed = pool.put_reader(&b"hello"[..], "x").unwrap();
            assert_eq!(placed.blob.written, !present_before);
            fs::remove_file(pool.absolute(&placed.blob.rel_path)).unwrap();
            let blob = pool.settle(placed).unwrap();
            pool.verify(&blob.rel_path).unwrap();
            assert_eq!(fs::read_dir(pool.tmp_dir()).unwrap().count(), 0);
            fs::remove_file(pool.absolute(&blob.rel_path)).unwrap();
        }
        // A download's partial file is linked, kept until settled, then removed.
        let part = pool.tmp_dir().join("pkg.part");
        fs::write(&part, b"hello").unwrap();
        let placed = pool.place(&part, &hello(), 5, "p.rpm").unwrap();
        assert!(part.exists());
        let blob = pool.settle(placed).unwrap();
        assert!(!part.exists());
        pool.verify(&blob.rel_path).unwrap();
    }

    #[test]
    fn a_swept_partial_file_linked_into_the_pool_frees_no_bytes() {
        let (_d, pool) = pool();
        fs::create_dir_all(pool.tmp_dir()).unwrap();
        // One partial download, and one a stopped sync had already linked into the pool.
        fs::write(pool.tmp_dir().join("a.part"), b"partial").unwrap();
        let linked = pool.tmp_dir().join("b.part");
        fs::write(&linked, b"hello").unwrap();
        // Placed and never recorded: the sync stopped there.
        let _unsettled = pool.place(&linked, &hello(), 5, "p.rpm").unwrap();
        // Older than a grace of 0.
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(
            pool.sweep_partials(std::time::Duration::ZERO, true)
                .unwrap(),
            (2, 7)
        );
        assert_eq!(
            pool.sweep_partials(std::time::Duration::ZERO, false)
                .unwrap(),
            (2, 7)
        );
        assert_eq!(fs::read_dir(pool.tmp_dir()).unwrap().count(), 0);
        pool.verify(&Pool::relative_path(&hello(), "p.rpm").unwrap())
            .unwrap();
    }

    #[test]
    fn hostile_names_are_refused() {
        let (_d, pool) = pool();
        for name in ["", "..", "../etc/passwd", "a/b"] {
            assert!(pool.put_reader(&b"x"[..], name).is_err(), "{name}");
        }
        assert!(Pool::relative_path(&hello(), "../a").is_err());
    }
}
