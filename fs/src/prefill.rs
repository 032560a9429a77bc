//! Prefilling the kernel's entries of a new `latest/` tree: the daemon lists the tree through
//! its own mount, and since every listing is a READDIRPLUS, the kernel creates an entry and an
//! inode for each name it is given. A reader's first open of a file of the new version then
//! finds its name in the kernel's cache and costs one request (OPEN) instead of two (LOOKUP,
//! OPEN). Each entry costs about 1.1 KB of kernel memory (docs/PERFORMANCE.md), reclaimable
//! like any unused directory entry, and freed when latest moves again; the walk stops at a
//! bound.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender};
use std::time::Instant;

/// By default, at most this many entries of each new `latest/` tree are prefilled (about
/// 110 MB of reclaimable kernel memory).
pub const DEFAULT_LIMIT: usize = 100_000;

/// What one walk did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Walked {
    /// Names listed (each now an entry in the kernel's cache, on a FUSE mount).
    pub entries: usize,
    /// Whether the walk stopped at the bound with names left unlisted.
    pub truncated: bool,
}

/// Lists `root` and every directory below it, breadth first, until `limit` names have been
/// listed. Only the listings matter: nothing is opened or stat'ed, since the directory
/// entries' types come with the listing. Fails on the first listing that fails (the mount
/// detached, the tree moved on).
pub fn walk(root: &Path, limit: usize) -> std::io::Result<Walked> {
    let mut queue = std::collections::VecDeque::from([root.to_path_buf()]);
    let mut entries = 0usize;
    while let Some(dir) = queue.pop_front() {
        for entry in std::fs::read_dir(&dir)? {
            if entries == limit {
                return Ok(Walked {
                    entries,
                    truncated: true,
                });
            }
            let entry = entry?;
            entries += 1;
            if entry.file_type()?.is_dir() {
                queue.push_back(entry.path());
            }
        }
    }
    Ok(Walked {
        entries,
        truncated: false,
    })
}

/// The prefilling thread's side: the mount, and the bound of each walk.
pub struct Prefiller {
    mountpoint: PathBuf,
    limit: usize,
}

impl Prefiller {
    /// Starts the thread walking `<mountpoint>/<repo>/latest/` for each repository sent on the
    /// returned channel, at most `limit` entries each. Repositories sent while a walk is under
    /// way are walked once after it, however often they were sent.
    pub fn spawn(mountpoint: PathBuf, limit: usize) -> std::io::Result<Sender<String>> {
        let (tx, rx) = std::sync::mpsc::channel();
        let p = Prefiller { mountpoint, limit };
        std::thread::Builder::new()
            .name("prefill".into())
            .spawn(move || p.run(&rx))?;
        Ok(tx)
    }

    fn run(&self, rx: &Receiver<String>) {
        while let Ok(first) = rx.recv() {
            let mut repos = BTreeSet::from([first]);
            repos.extend(rx.try_iter());
            for repo in repos {
                self.prefill(&repo);
            }
        }
    }

    fn prefill(&self, repo: &str) {
        let started = Instant::now();
        let root = self.mountpoint.join(repo).join("latest");
        match walk(&root, self.limit) {
            Ok(w) => tracing::info!(
                "{repo}: prefilled {} entries of latest/ in {:.2} s{}",
                w.entries,
                started.elapsed().as_secs_f64(),
                if w.truncated {
                    " (stopped at --prefill-entries)"
                } else {
                    ""
                }
            ),
            // The mount going away (shutdown) or the tree moving on: nothing to prefill.
            Err(e) => tracing::debug!("{repo}: prefilling latest/ stopped: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (dir, files) in [("Packages", 5), ("repodata", 3), ("images/pxeboot", 2)] {
            std::fs::create_dir_all(d.path().join(dir)).unwrap();
            for i in 0..files {
                std::fs::write(d.path().join(dir).join(format!("f{i}")), b"x").unwrap();
            }
        }
        d
    }

    #[test]
    fn a_walk_lists_every_name_once_and_stops_at_its_bound() {
        let d = tree();
        // Packages, repodata, images; 5 + 3 files; pxeboot; its 2 files.
        assert_eq!(
            walk(d.path(), 1000).unwrap(),
            Walked {
                entries: 14,
                truncated: false
            }
        );
        assert_eq!(
            walk(d.path(), 14).unwrap(),
            Walked {
                entries: 14,
                truncated: false
            },
            "exactly the bound, nothing left"
        );
        let w = walk(d.path(), 4).unwrap();
        assert_eq!(
            w,
            Walked {
                entries: 4,
                truncated: true
            }
        );
        assert_eq!(walk(d.path(), 0).unwrap().entries, 0);
    }

    #[test]
    fn a_tree_that_is_gone_fails_the_walk() {
        let d = tree();
        let gone = d.path().join("nothing");
        assert_eq!(
            walk(&gone, 10).unwrap_err().kind(),
            std::io::ErrorKind::NotFound
        );
    }
}
