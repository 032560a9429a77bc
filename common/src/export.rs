//! The on-disk export: a version's tree written as real files (hardlinks into the pool by
//! default) for sites that cannot run chantal-fs or that rsync the tree elsewhere.
//!
//! `latest_path` is a symlink to a sibling directory `.<name>.v<version>.<millis>`; a new tree
//! is built beside it as `.<name>.partial.<pid>`, renamed into place, and the symlink is
//! replaced with one `rename`, so a reader sees the old tree or the new one, never a mix or a
//! gap. The previous tree is kept for a grace period (its directory's mtime says when it was
//! retired) and removed by the first export after that. Leftovers of a killed export are
//! removed by the next one; a lock file beside the trees keeps two exports apart.
//!
//! Snapshots go to `<snapshots_path>/<name>/`, built the same way and swapped in with
//! `renameat2(RENAME_EXCHANGE)` when a tree is already there (a repair).
//!
//! Environments are `<environments_path>/<env>`: a symlink to `<snapshots_path>/<snapshot>`,
//! replaced with one `rename`, and removed when the environment points nowhere any more.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::LinkMode;
use crate::error::{Error, Result};
use crate::tree::Tree;

/// How long a tree that stopped being latest stays on disk: as long as chantal-fs serves a
/// retired latest.
pub const DEFAULT_GRACE: Duration = crate::SERVING_GRACE;

/// Writes trees from the pool at `data` (`<base_path>/data`).
#[derive(Debug, Clone)]
pub struct Exporter {
    pub data: PathBuf,
    pub link: LinkMode,
    pub grace: Duration,
}

/// What [`Exporter::publish_latest`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The directory `latest_path` now points to.
    pub tree: PathBuf,
    pub files: usize,
    /// A real directory found at `latest_path` (an older setup), moved aside.
    pub migrated: Option<PathBuf>,
    /// Trees and leftovers removed.
    pub removed: Vec<PathBuf>,
}

fn export_err(path: &Path, message: impl Into<String>) -> Error {
    Error::Export {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

fn millis() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// Holds an exclusive lock on `path` (created if missing) until dropped.
fn lock(path: &Path) -> Result<File> {
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| Error::io("cannot create", path, e))?;
    f.lock().map_err(|e| Error::io("cannot lock", path, e))?;
    Ok(f)
}

/// Marks a directory as retired now (its mtime), for the grace period.
fn touch(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|f| f.set_modified(SystemTime::now()))
        .map_err(|e| Error::io("cannot touch", dir, e))
}

fn remove_tree(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
    .map_err(|e| Error::io("cannot remove", path, e))
}

/// Atomically swaps two paths (both must exist).
fn exchange(a: &Path, b: &Path) -> Result<()> {
    rustix::fs::renameat_with(
        rustix::fs::CWD,
        a,
        rustix::fs::CWD,
        b,
        rustix::fs::RenameFlags::EXCHANGE,
    )
    .map_err(|e| Error::io("cannot swap into place", b, e.into()))
}

impl Exporter {
    /// Refuses hardlinks across file systems before anything is written, naming both paths.
    fn check_same_fs(&self, dest_dir: &Path) -> Result<()> {
        if self.link != LinkMode::Hardlink {
            return Ok(());
        }
        let pool = fs::metadata(&self.data).map_err(|e| Error::io("cannot stat", &self.data, e))?;
        let dest = fs::metadata(dest_dir).map_err(|e| Error::io("cannot stat", dest_dir, e))?;
        if pool.dev() != dest.dev() {
            return Err(export_err(
                dest_dir,
                format!(
                    "on a different file system than the pool {}: hardlinks are impossible; \
                     set publish.link: copy (or symlink)",
                    self.data.display()
                ),
            ));
        }
        Ok(())
    }

    /// Writes every file of `tree` below `dest` (created; must not exist).
    fn write_tree(&self, tree: &Tree, dest: &Path) -> Result<usize> {
        fs::create_dir(dest).map_err(|e| Error::io("cannot create", dest, e))?;
        let files = tree.files();
        let mut made: Option<PathBuf> = None;
        for (path, leaf) in &files {
            let to = dest.join(path);
            if let Some(parent) = to.parent() {
                // Files come in path order: one create_dir_all per directory.
                if made.as_deref() != Some(parent) {
                    fs::create_dir_all(parent)
                        .map_err(|e| Error::io("cannot create", parent, e))?;
                    made = Some(parent.to_path_buf());
                }
            }
            let from = self.data.join(&leaf.pool_path);
            let done = match self.link {
                LinkMode::Hardlink => fs::hard_link(&from, &to),
                LinkMode::Copy => fs::copy(&from, &to).map(|_| ()),
                LinkMode::Symlink => std::os::unix::fs::symlink(&from, &to),
            };
            done.map_err(|e| {
                if e.raw_os_error() == Some(rustix::io::Errno::XDEV.raw_os_error()) {
                    export_err(
                        &to,
                        format!(
                            "cannot hardlink {}: different file systems; set publish.link: \
                             copy (or symlink)",
                            from.display()
                        ),
                    )
                } else {
                    Error::io("cannot write", &to, e)
                }
            })?;
        }
        Ok(files.len())
    }

    /// Publishes `tree` (version `version`) at `latest`: builds it beside, switches the
    /// symlink with one rename, and removes trees retired longer than the grace period.
    pub fn publish_latest(&self, tree: &Tree, version: i64, latest: &Path) -> Result<Published> {
        let (parent, base) = match (latest.parent(), latest.file_name()) {
            (Some(p), Some(b)) => (p, b.to_string_lossy().into_owned()),
            _ => return Err(export_err(latest, "not a usable path for latest_path")),
        };
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        fs::create_dir_all(parent).map_err(|e| Error::io("cannot create", parent, e))?;
        let _lock = lock(&parent.join(format!(".{base}.lock")))?;
        self.check_same_fs(parent)?;
        let mut removed = self.sweep(parent, &base, None)?;

        let partial = parent.join(format!(".{base}.partial.{}", std::process::id()));
        let files = self.write_tree(tree, &partial)?;
        let name = format!(".{base}.v{version}.{}", millis());
        let final_dir = parent.join(&name);
        fs::rename(&partial, &final_dir).map_err(|e| Error::io("cannot rename", &partial, e))?;
        let link = parent.join(format!(".{base}.link.{}", std::process::id()));
        remove_tree(&link)?;
        std::os::unix::fs::symlink(&name, &link)
            .map_err(|e| Error::io("cannot create", &link, e))?;

        let mut migrated = None;
        match fs::symlink_metadata(latest) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::rename(&link, latest).map_err(|e| Error::io("cannot rename", &link, e))?;
            }
            Err(e) => return Err(Error::io("cannot stat", latest, e)),
            Ok(m) if m.file_type().is_symlink() => {
                let old = fs::read_link(latest).ok();
                fs::rename(&link, latest).map_err(|e| Error::io("cannot rename", &link, e))?;
                if let Some(old) = old {
                    let old = parent.join(old);
                    if old.is_dir() && old != final_dir {
                        touch(&old)?;
                    }
                }
            }
            Ok(m) if m.is_dir() => {
                // An export from an older setup: swap the symlink in atomically, keep the old
                // directory aside for the grace period like any retired tree.
                exchange(&link, latest)?;
                let aside = parent.join(format!(".{base}.legacy.{}", millis()));
                fs::rename(&link, &aside).map_err(|e| Error::io("cannot rename", &link, e))?;
                touch(&aside)?;
                migrated = Some(aside);
            }
            Ok(_) => {
                remove_tree(&link)?;
                return Err(export_err(
                    latest,
                    "exists and is neither a directory nor a symlink; remove it",
                ));
            }
        }
        removed.extend(self.sweep(parent, &base, Some(&name))?);
        Ok(Published {
            tree: final_dir,
            files,
            migrated,
            removed,
        })
    }

    /// Removes leftovers of killed exports, and retired trees past the grace period (not the
    /// current one). Called with the lock held.
    fn sweep(&self, parent: &Path, base: &str, current: Option<&str>) -> Result<Vec<PathBuf>> {
        let current = match current {
            Some(c) => Some(c.to_string()),
            None => fs::read_link(parent.join(base))
                .ok()
                .map(|p| p.to_string_lossy().into_owned()),
        };
        let prefix = format!(".{base}.");
        let entries = fs::read_dir(parent).map_err(|e| Error::io("cannot list", parent, e))?;
        let now = SystemTime::now();
        let mut removed = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("cannot list", parent, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(rest) = name.strip_prefix(&prefix) else {
                continue;
            };
            if rest == "lock" || Some(&name) == current.as_ref() {
                continue;
            }
            let path = entry.path();
            // Exactly our names (`partial.<pid>`, `v<version>.<millis>`...): a repository
            // called `<base>.something` beside this one is not ours to touch.
            let numbered = |tag: &str| {
                rest.strip_prefix(tag).is_some_and(|n| {
                    n.split('.').count() <= 2
                        && n.split('.')
                            .all(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
                })
            };
            let stale = if numbered("partial.") || numbered("link.") {
                true
            } else if numbered("v") || numbered("legacy.") {
                let retired = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .unwrap_or(UNIX_EPOCH);
                now.duration_since(retired).unwrap_or_default() >= self.grace
            } else {
                false
            };
            if stale {
                remove_tree(&path)?;
                removed.push(path);
            }
        }
        Ok(removed)
    }

    /// Whether `latest` points at an export of `version` that still has its repomd.xml.
    pub fn latest_is(&self, latest: &Path, version: i64) -> bool {
        let base = latest
            .file_name()
            .map(|b| b.to_string_lossy().into_owned())
            .unwrap_or_default();
        fs::read_link(latest).is_ok_and(|t| {
            t.to_string_lossy()
                .starts_with(&format!(".{base}.v{version}."))
        }) && latest.join("repodata/repomd.xml").is_file()
    }

    /// Removes leftovers and trees retired past the grace period beside `latest`, without
    /// exporting anything.
    pub fn sweep_latest(&self, latest: &Path) -> Result<Vec<PathBuf>> {
        let (Some(parent), Some(base)) = (latest.parent(), latest.file_name()) else {
            return Ok(Vec::new());
        };
        if !parent.is_dir() {
            return Ok(Vec::new());
        }
        let base = base.to_string_lossy().into_owned();
        let _lock = lock(&parent.join(format!(".{base}.lock")))?;
        self.sweep(parent, &base, None)
    }

    /// Writes `tree` at `<dir>/<name>/`, replacing (atomically) whatever is there.
    pub fn publish_snapshot(&self, tree: &Tree, dir: &Path, name: &str) -> Result<usize> {
        fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
        let _lock = lock(&dir.join(".chantal.lock"))?;
        self.check_same_fs(dir)?;
        self.sweep_snapshots(dir)?;
        let partial = dir.join(format!(".{name}.partial.{}", std::process::id()));
        let files = self.write_tree(tree, &partial)?;
        let target = dir.join(name);
        if fs::symlink_metadata(&target).is_ok() {
            exchange(&partial, &target)?;
            remove_tree(&partial)?;
        } else {
            fs::rename(&partial, &target).map_err(|e| Error::io("cannot rename", &partial, e))?;
        }
        Ok(files)
    }

    /// Removes `<dir>/<name>/` (moved aside first, so it vanishes at once). Returns whether it
    /// existed.
    pub fn remove_snapshot(&self, dir: &Path, name: &str) -> Result<bool> {
        let target = dir.join(name);
        if fs::symlink_metadata(&target).is_err() {
            return Ok(false);
        }
        let _lock = lock(&dir.join(".chantal.lock"))?;
        let aside = dir.join(format!(".{name}.deleted.{}", std::process::id()));
        fs::rename(&target, &aside).map_err(|e| Error::io("cannot rename", &target, e))?;
        remove_tree(&aside)?;
        Ok(true)
    }

    /// Points `<envs>/<env>` at `<snaps>/<snapshot>`, switched in one rename (a reader sees
    /// the old tree or the new one, never neither). Returns the target when the link moved.
    pub fn link_environment(
        &self,
        envs: &Path,
        env: &str,
        snaps: &Path,
        snapshot: &str,
    ) -> Result<Option<PathBuf>> {
        fs::create_dir_all(envs).map_err(|e| Error::io("cannot create", envs, e))?;
        let link = envs.join(env);
        let target = snaps.join(snapshot);
        if fs::read_link(&link).is_ok_and(|t| t == target) {
            return Ok(None);
        }
        let tmp = envs.join(format!(".{env}.{}.tmp", std::process::id()));
        let _ = fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&target, &tmp)
            .map_err(|e| Error::io("cannot create", &tmp, e))?;
        fs::rename(&tmp, &link).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            Error::io("cannot switch", &link, e)
        })?;
        Ok(Some(target))
    }

    /// Removes the links in `envs` into `snaps` of environments not in `keep` (they point
    /// nowhere in the repository any more); only symlinks into `snaps` are touched, whatever
    /// else the directory holds. Returns those removed.
    pub fn unlink_environments(
        &self,
        envs: &Path,
        snaps: &Path,
        keep: &[&str],
    ) -> Result<Vec<PathBuf>> {
        let entries = match fs::read_dir(envs) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("cannot list", envs, e)),
        };
        let mut removed = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || keep.contains(&name.as_str()) {
                continue;
            }
            let path = entry.path();
            let Ok(target) = fs::read_link(&path) else {
                continue;
            };
            if target.parent() == Some(snaps) {
                fs::remove_file(&path).map_err(|e| Error::io("cannot remove", &path, e))?;
                removed.push(path);
            }
        }
        Ok(removed)
    }

    /// Leftovers of killed snapshot exports and deletions.
    fn sweep_snapshots(&self, dir: &Path) -> Result<()> {
        let entries = fs::read_dir(dir).map_err(|e| Error::io("cannot list", dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("cannot list", dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && (name.contains(".partial.") || name.contains(".deleted.")) {
                remove_tree(&entry.path())?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::Leaf;

    fn setup(files: &[(&str, &str)]) -> (tempfile::TempDir, Exporter, Tree) {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        fs::create_dir_all(data.join("p")).unwrap();
        let mut list = Vec::new();
        for (href, content) in files {
            let pool_path = format!("p/{}", href.replace('/', "_"));
            fs::write(data.join(&pool_path), content).unwrap();
            list.push((
                href.to_string(),
                Leaf {
                    pool_path,
                    size: content.len() as u64,
                    mtime: 1,
                },
            ));
        }
        let ex = Exporter {
            data,
            link: LinkMode::Hardlink,
            grace: Duration::from_secs(600),
        };
        (tmp, ex, Tree::build(list).unwrap())
    }

    #[test]
    fn latest_is_a_symlink_switched_to_each_new_tree() {
        let (tmp, mut ex, t1) = setup(&[("repodata/repomd.xml", "1"), ("Packages/a.rpm", "a")]);
        let latest = tmp.path().join("pub/repo");
        let p1 = ex.publish_latest(&t1, 1, &latest).unwrap();
        assert_eq!(p1.files, 2);
        assert!(fs::symlink_metadata(&latest)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(
            fs::read_to_string(latest.join("Packages/a.rpm")).unwrap(),
            "a"
        );
        assert_eq!(
            fs::metadata(latest.join("Packages/a.rpm")).unwrap().ino(),
            fs::metadata(ex.data.join("p/Packages_a.rpm"))
                .unwrap()
                .ino()
        );
        let p2 = ex.publish_latest(&t1, 2, &latest).unwrap();
        assert!(
            p1.tree.is_dir(),
            "the previous tree stays for the grace period"
        );
        assert_eq!(
            fs::read_link(&latest).unwrap(),
            p2.tree.file_name().unwrap()
        );
        ex.grace = Duration::ZERO;
        let p3 = ex.publish_latest(&t1, 3, &latest).unwrap();
        assert!(!p1.tree.exists() && !p2.tree.exists(), "{:?}", p3.removed);
    }

    #[test]
    fn leftovers_are_removed_and_a_real_directory_is_migrated() {
        let (tmp, ex, t1) = setup(&[("repodata/repomd.xml", "1")]);
        let latest = tmp.path().join("repo");
        fs::create_dir_all(latest.join("old")).unwrap();
        let leftover = tmp.path().join(".repo.partial.99999");
        fs::create_dir_all(leftover.join("x")).unwrap();
        let p = ex.publish_latest(&t1, 1, &latest).unwrap();
        assert!(!leftover.exists());
        let aside = p.migrated.unwrap();
        assert!(aside.join("old").is_dir());
        assert_eq!(
            fs::read_to_string(latest.join("repodata/repomd.xml")).unwrap(),
            "1"
        );
    }

    #[test]
    fn snapshots_are_written_replaced_and_removed() {
        let (tmp, ex, t1) = setup(&[("repodata/repomd.xml", "1")]);
        let dir = tmp.path().join("snaps");
        ex.publish_snapshot(&t1, &dir, "s").unwrap();
        fs::remove_file(dir.join("s/repodata/repomd.xml")).unwrap();
        ex.publish_snapshot(&t1, &dir, "s").unwrap();
        assert_eq!(
            fs::read_to_string(dir.join("s/repodata/repomd.xml")).unwrap(),
            "1"
        );
        assert!(ex.remove_snapshot(&dir, "s").unwrap());
        assert!(!dir.join("s").exists());
        assert!(!ex.remove_snapshot(&dir, "s").unwrap());
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [".chantal.lock"]);
    }

    #[test]
    fn environment_links_switch_and_go_with_their_environment() {
        let (tmp, ex, t1) = setup(&[("repodata/repomd.xml", "1")]);
        let (snaps, envs) = (tmp.path().join("snaps"), tmp.path().join("env"));
        for s in ["a", "b"] {
            ex.publish_snapshot(&t1, &snaps, s).unwrap();
        }
        assert_eq!(
            ex.link_environment(&envs, "prod", &snaps, "a").unwrap(),
            Some(snaps.join("a"))
        );
        assert_eq!(
            ex.link_environment(&envs, "prod", &snaps, "a").unwrap(),
            None
        );
        ex.link_environment(&envs, "prod", &snaps, "b").unwrap();
        ex.link_environment(&envs, "test", &snaps, "a").unwrap();
        assert_eq!(fs::read_link(envs.join("prod")).unwrap(), snaps.join("b"));
        // A link somewhere else and a plain file are not this repository's to remove.
        std::os::unix::fs::symlink("/elsewhere", envs.join("other")).unwrap();
        fs::write(envs.join("README"), "x").unwrap();
        assert_eq!(
            ex.unlink_environments(&envs, &snaps, &["prod"]).unwrap(),
            [envs.join("test")]
        );
        let mut names: Vec<_> = fs::read_dir(&envs)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["README", "other", "prod"]);
    }
}
