//! The open-file bookkeeping behind the FUSE adapter: file handles read through the daemon,
//! and the kernel backing ids of FUSE passthrough, shared per inode and counted.
//!
//! The kernel refuses a second, different backing file for an inode that is open (that open
//! fails with EIO), so every open of an inode while it is open gets the same id; the id is
//! dropped (ending the kernel's use of it) when the last of those opens is released. Generic
//! over the id so the counting is tested without a kernel.

use std::collections::HashMap;
use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::{Mutex, MutexGuard};

/// A handle read through the daemon: its pool file is opened by the first read that needs
/// it. With the page cache kept across opens, a file read before is opened and released
/// without the daemon touching the pool at all.
#[derive(Default)]
pub struct DaemonFile(OnceLock<Arc<File>>);

impl DaemonFile {
    /// The open pool file, opened with `open` if no read of this handle did yet.
    pub fn get_or_open(
        &self,
        open: impl FnOnce() -> std::io::Result<File>,
    ) -> std::io::Result<Arc<File>> {
        if let Some(f) = self.0.get() {
            return Ok(Arc::clone(f));
        }
        let f = Arc::new(open()?);
        // Two reads racing both open it; one is kept.
        Ok(Arc::clone(self.0.get_or_init(|| f)))
    }
}

/// Open files, by handle and by inode.
pub struct OpenFiles<B> {
    /// Handles read through the daemon.
    files: Mutex<HashMap<u64, Arc<DaemonFile>>>,
    /// Passthrough: the inode's backing id and how many opens use it.
    backings: Mutex<HashMap<u64, (B, usize)>>,
    next_fh: AtomicU64,
}

impl<B> Default for OpenFiles<B> {
    fn default() -> Self {
        OpenFiles {
            files: Mutex::new(HashMap::new()),
            backings: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
        }
    }
}

/// The backing ids, locked: an open that finds its inode's id replies while the lock is
/// held, so a concurrent release cannot drop the id before the kernel has it.
pub struct Backings<'a, B>(MutexGuard<'a, HashMap<u64, (B, usize)>>);

impl<B> Backings<'_, B> {
    /// The inode's registered id, counting one more open.
    pub fn share(&mut self, ino: u64) -> Option<&B> {
        let (id, opens) = self.0.get_mut(&ino)?;
        *opens += 1;
        Some(id)
    }

    /// Registers a new id for the inode's first open.
    pub fn register(&mut self, ino: u64, id: B) -> &B {
        &self.0.entry(ino).or_insert((id, 1)).0
    }
}

impl<B> OpenFiles<B> {
    /// A new file handle number.
    pub fn next_handle(&self) -> u64 {
        self.next_fh.fetch_add(1, Ordering::Relaxed)
    }

    pub fn backings(&self) -> Backings<'_, B> {
        Backings(self.backings.lock())
    }

    /// Records a handle read through the daemon (its file not opened yet).
    pub fn insert_file(&self, fh: u64) {
        self.files.lock().insert(fh, Arc::default());
    }

    /// The file behind a handle read through the daemon.
    pub fn file(&self, fh: u64) -> Option<Arc<DaemonFile>> {
        self.files.lock().get(&fh).cloned()
    }

    /// Ends an open: a handle read through the daemon closes its file; any other handle was
    /// one of the inode's passthrough opens, and the last of those drops the id.
    pub fn release(&self, ino: u64, fh: u64) {
        if self.files.lock().remove(&fh).is_some() {
            return;
        }
        let mut backings = self.backings.lock();
        if let Some((_, opens)) = backings.get_mut(&ino) {
            *opens = opens.saturating_sub(1);
            if *opens == 0 {
                backings.remove(&ino);
            }
        }
    }

    /// Inodes with a backing id, and daemon-read handles. Only the latter need the daemon:
    /// a passthrough open reads the pool file through the kernel, daemon or not.
    pub fn counts(&self) -> (usize, usize) {
        (self.backings.lock().len(), self.files.lock().len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    /// An id whose drop is observable, as the kernel's is.
    struct Id(Rc<()>);

    #[test]
    fn one_backing_per_open_inode_dropped_with_its_last_open() {
        let open: OpenFiles<Id> = OpenFiles::default();
        let token = Rc::new(());
        let (a, b, c) = (open.next_handle(), open.next_handle(), open.next_handle());
        assert!(open.backings().share(7).is_none());
        open.backings().register(7, Id(Rc::clone(&token)));
        // A second open meanwhile registers nothing new.
        let mut backings = open.backings();
        assert!(backings.share(7).is_some());
        let again = Id(Rc::new(()));
        assert!(Rc::ptr_eq(&backings.register(7, again).0, &token));
        drop(backings);
        assert!(open.backings().share(7).is_some());
        assert_eq!(Rc::strong_count(&token), 2);
        open.release(7, a);
        open.release(7, b);
        assert_eq!(open.counts(), (1, 0), "one open left");
        open.release(7, c);
        assert_eq!(open.counts(), (0, 0));
        assert_eq!(Rc::strong_count(&token), 1, "the id is dropped");
        // A stray release does not underflow or touch another inode.
        open.release(7, 99);
        open.backings().register(8, Id(Rc::clone(&token)));
        open.release(7, 100);
        assert_eq!(open.counts(), (1, 0));
    }

    #[test]
    fn daemon_read_handles_are_not_passthrough_opens() {
        let open: OpenFiles<u32> = OpenFiles::default();
        open.backings().register(5, 1);
        let fh = open.next_handle();
        open.insert_file(fh);
        let file = open.file(fh).unwrap();
        let mut opened = 0;
        for _ in 0..2 {
            file.get_or_open(|| {
                opened += 1;
                tempfile::tempfile()
            })
            .unwrap();
        }
        assert_eq!(opened, 1, "the pool file is opened by the first read only");
        let failing = open.next_handle();
        open.insert_file(failing);
        let err = open
            .file(failing)
            .unwrap()
            .get_or_open(|| Err(std::io::ErrorKind::NotFound.into()));
        assert!(err.is_err());
        assert!(
            open.file(failing)
                .unwrap()
                .get_or_open(tempfile::tempfile)
                .is_ok(),
            "a failed open is tried again by the next read"
        );
        open.release(5, failing);
        open.release(5, fh);
        assert!(open.file(fh).is_none());
        assert_eq!(
            open.counts(),
            (1, 0),
            "the passthrough open of inode 5 is untouched"
        );
    }
}
