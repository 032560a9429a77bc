//! Checking the pool against the catalogue (`chantal pool verify`): each recorded file is
//! present, has its recorded size, and hashes to its sha256; every file below the pool's
//! `sha256/` tree has a record. Damaged files are moved aside, never deleted
//! ([`quarantine`]), so that a repair can put a verified copy in their place.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256 as Sha256Hasher};

use crate::catalogue::BlobRecord;
use crate::error::{Error, Result};
use crate::pool::Pool;
use crate::Sha256;

/// Read size: large enough that the disk, not the system calls, sets the pace.
const CHUNK: usize = 1 << 20;

/// What checking one recorded file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    Sound,
    Missing,
    /// Its size is not the recorded one (not hashed: it cannot match).
    WrongSize {
        actual: u64,
    },
    WrongHash {
        actual: Sha256,
    },
}

/// Checks one recorded file; `read` is called with each chunk's length (for progress). An
/// error is a file that exists but cannot be read (permissions, I/O errors).
pub fn check(pool: &Pool, blob: &BlobRecord, read: &dyn Fn(u64)) -> Result<Finding> {
    let path = pool.absolute(&blob.path);
    let mut file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Finding::Missing),
        Err(e) => return Err(Error::io("cannot open", path, e)),
    };
    let size = file
        .metadata()
        .map_err(|e| Error::io("cannot read the size of", &path, e))?
        .len();
    if i64::try_from(size).ok() != Some(blob.size) {
        read(blob.size.max(0) as u64);
        return Ok(Finding::WrongSize { actual: size });
    }
    let mut hasher = Sha256Hasher::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buf[..n]);
                read(n as u64);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("cannot read", path, e)),
        }
    }
    let actual = Sha256::from_hasher(hasher);
    Ok(if actual == blob.sha256 {
        Finding::Sound
    } else {
        Finding::WrongHash { actual }
    })
}

/// Files below the pool's `sha256/` tree whose relative path no record has, sorted. A sync
/// running meanwhile may be storing some of them (it records them when its downloads end).
pub fn unreferenced(pool: &Pool, recorded: &HashSet<&str>) -> Result<Vec<String>> {
    let root = pool.data_dir().join("sha256");
    let mut found = Vec::new();
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io("cannot list", &dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("cannot list", &dir, e))?;
            let kind = entry
                .file_type()
                .map_err(|e| Error::io("cannot stat", entry.path(), e))?;
            if kind.is_dir() {
                dirs.push(entry.path());
                continue;
            }
            let path = entry.path();
            let rel = path
                .strip_prefix(pool.data_dir())
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !recorded.contains(rel.as_str()) {
                found.push(rel);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Moves a damaged pool file out of the way, to `<data>/damaged/<name>` (with `.N` if that
/// is taken), and returns where; `None` if there was nothing to move. The pool never deletes
/// what it cannot prove worthless.
pub fn quarantine(pool: &Pool, rel_path: &str) -> Result<Option<PathBuf>> {
    let from = pool.absolute(rel_path);
    if !from.exists() {
        return Ok(None);
    }
    let dir = pool.data_dir().join("damaged");
    fs::create_dir_all(&dir).map_err(|e| Error::io("cannot create", &dir, e))?;
    let name = Path::new(rel_path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let mut to = dir.join(&name);
    let mut n = 1;
    while to.exists() {
        to = dir.join(format!("{name}.{n}"));
        n += 1;
    }
    fs::rename(&from, &to).map_err(|e| Error::io("cannot move aside", &from, e))?;
    Ok(Some(to))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(pool: &Pool, data: &[u8], name: &str) -> BlobRecord {
        let placed = pool.put_reader(data, name).unwrap();
        let blob = placed.blob.clone();
        pool.settle(placed).unwrap();
        BlobRecord {
            sha256: blob.sha256,
            size: blob.size as i64,
            path: blob.rel_path,
        }
    }

    #[test]
    fn findings() {
        let dir = tempfile::tempdir().unwrap();
        let pool = Pool::new(dir.path());
        pool.create_dirs().unwrap();
        let none = |_: u64| {};
        let a = put(&pool, b"hello world", "a.rpm");
        assert_eq!(check(&pool, &a, &none).unwrap(), Finding::Sound);

        // A flipped byte: same size, another hash.
        let path = pool.absolute(&a.path);
        fs::write(&path, b"hello World").unwrap();
        assert!(matches!(
            check(&pool, &a, &none).unwrap(),
            Finding::WrongHash { .. }
        ));
        fs::write(&path, b"hello").unwrap();
        assert_eq!(
            check(&pool, &a, &none).unwrap(),
            Finding::WrongSize { actual: 5 }
        );

        let moved = quarantine(&pool, &a.path).unwrap().unwrap();
        assert_eq!(fs::read(&moved).unwrap(), b"hello");
        assert_eq!(check(&pool, &a, &none).unwrap(), Finding::Missing);
        assert_eq!(quarantine(&pool, &a.path).unwrap(), None);

        let b = put(&pool, b"other", "b.rpm");
        let stray = put(&pool, b"stray", "c.rpm");
        let recorded: HashSet<&str> = [a.path.as_str(), b.path.as_str()].into();
        assert_eq!(unreferenced(&pool, &recorded).unwrap(), vec![stray.path]);
        // A second damaged copy of the same name does not overwrite the first.
        fs::write(pool.absolute(&a.path), b"x").unwrap();
        let again = quarantine(&pool, &a.path).unwrap().unwrap();
        assert_ne!(again, moved);
        assert_eq!(fs::read(&moved).unwrap(), b"hello");
    }
}
