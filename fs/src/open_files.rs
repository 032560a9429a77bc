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

/// How many locks the backing ids are spread over. Their holders make system calls (the
/// kernel's backing-id `ioctl`s, the reply): with one lock, the request threads of a cold
/// start queued behind each other and spun (`sched_yield`, about four per file opened).
const SHARDS: usize = 64;

/// An inode's backing id and how many opens use it.
type Shard<B> = HashMap<u64, (B, usize)>;

/// Open files, by handle and by inode.
pub struct OpenFiles<B> {
    /// Handles read through the daemon.
    files: Mutex<HashMap<u64, Arc<DaemonFile>>>,
    /// Passthrough: the backing ids, each inode's in the shard its number picks.
    backings: [Mutex<Shard<B>>; SHARDS],
    next_fh: AtomicU64,
}

impl<B> Default for OpenFiles<B> {
    fn default() -> Self {
        OpenFiles {
            files: Mutex::new(HashMap::new()),
            backings: std::array::from_fn(|_| Mutex::new(HashMap::new())),
            next_fh: AtomicU64::new(1),
        }
    }
}

/// One inode's backing id, locked: an open that finds the id replies while the lock is
/// held, so a concurrent release cannot drop the id before the kernel has it.
pub struct Backings<'a, B> {
    shard: MutexGuard<'a, Shard<B>>,
    ino: u64,
}

impl<B> Backings<'_, B> {
    /// The inode's registered id, counting one more open.
    pub fn share(&mut self) -> Option<&B> {
        let (id, opens) = self.shard.get_mut(&self.ino)?;
        *opens += 1;
        Some(id)
    }

    /// Registers a new id for the inode's first open.
    pub fn register(&mut self, id: B) -> &B {
        &self.shard.entry(self.ino).or_insert((id, 1)).0
    }
}

impl<B> OpenFiles<B> {
    /// A new file handle number.
    pub fn next_handle(&self) -> u64 {
        self.next_fh.fetch_add(1, Ordering::Relaxed)
    }

    /// The inode's backing id, locked (only the inodes that share its lock wait meanwhile).
    pub fn backings(&self, ino: u64) -> Backings<'_, B> {
        Backings {
            shard: self.shard(ino).lock(),
            ino,
        }
    }

    fn shard(&self, ino: u64) -> &Mutex<Shard<B>> {
        // Inode numbers are handed out in sequence: consecutive ones land in different shards.
        &self.backings[(ino % SHARDS as u64) as usize]
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
        let mut backings = self.shard(ino).lock();
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
        let passthrough = self.backings.iter().map(|s| s.lock().len()).sum();
        (passthrough, self.files.lock().len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::rc::Rc;

    /// An id whose drop is observable, as the kernel's is.
    struct Id(Rc<()>);

    #[test]
    fn one_backing_per_open_inode_dropped_with_its_last_open() {
        let open: OpenFiles<Id> = OpenFiles::default();
        let token = Rc::new(());
        let (a, b, c) = (open.next_handle(), open.next_handle(), open.next_handle());
        assert!(open.backings(7).share().is_none());
        open.backings(7).register(Id(Rc::clone(&token)));
        // A second open meanwhile registers nothing new.
        let mut backings = open.backings(7);
        assert!(backings.share().is_some());
        let again = Id(Rc::new(()));
        assert!(Rc::ptr_eq(&backings.register(again).0, &token));
        drop(backings);
        assert!(open.backings(7).share().is_some());
        assert_eq!(Rc::strong_count(&token), 2);
        open.release(7, a);
        open.release(7, b);
        assert_eq!(open.counts(), (1, 0), "one open left");
        open.release(7, c);
        assert_eq!(open.counts(), (0, 0));
        assert_eq!(Rc::strong_count(&token), 1, "the id is dropped");
        // A stray release does not underflow or touch another inode.
        open.release(7, 99);
        open.backings(8).register(Id(Rc::clone(&token)));
        open.release(7, 100);
        assert_eq!(open.counts(), (1, 0));
    }

    #[test]
    fn an_inode_locked_does_not_hold_up_the_opens_of_the_next() {
        let open: std::sync::Arc<OpenFiles<u32>> = std::sync::Arc::default();
        // Held, as by an open in the middle of its `ioctl` and reply...
        let _held = open.backings(7);
        let (tx, rx) = std::sync::mpsc::channel();
        let other = std::sync::Arc::clone(&open);
        std::thread::spawn(move || {
            // ...inodes handed out next to it (a tree's files are numbered in a row) go on.
            for ino in [8, 9, 6, 7 + SHARDS as u64 + 1] {
                other.backings(ino).register(1);
            }
            let _ = tx.send(());
        });
        // A lock taken wrongly would wait for ever: the bound only turns that into a failure.
        assert!(
            rx.recv_timeout(std::time::Duration::from_secs(30)).is_ok(),
            "opens of other inodes waited for inode 7's lock"
        );
    }

    #[derive(Debug, Clone)]
    enum Op {
        Open(u64),
        Release(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        // Few inodes, several per shard (0..200 over 64 shards): opens of one inode overlap.
        prop_oneof![
            (0u64..200).prop_map(Op::Open),
            any::<usize>().prop_map(Op::Release),
        ]
    }

    proptest! {
        /// Against a naive model (opens per inode): each open inode has one id, shared by its
        /// opens, dropped with the last of them, whatever the order and shard.
        #[test]
        fn backing_ids_follow_a_count_of_opens_per_inode(ops in proptest::collection::vec(op(), 0..300)) {
            let open: OpenFiles<Id> = OpenFiles::default();
            let mut model: HashMap<u64, usize> = HashMap::new();
            let mut ids: HashMap<u64, Rc<()>> = HashMap::new();
            let mut handles: Vec<(u64, u64)> = Vec::new();
            for op in ops {
                match op {
                    Op::Open(ino) => {
                        let fh = open.next_handle();
                        let mut b = open.backings(ino);
                        let shared = b.share().map(|id| Rc::clone(&id.0));
                        match shared {
                            Some(token) => {
                                prop_assert!(Rc::ptr_eq(&token, &ids[&ino]), "inode {} has one id", ino);
                            }
                            None => {
                                prop_assert_eq!(model.get(&ino), None, "inode {} was open", ino);
                                let token = Rc::new(());
                                b.register(Id(Rc::clone(&token)));
                                ids.insert(ino, token);
                            }
                        }
                        *model.entry(ino).or_default() += 1;
                        handles.push((ino, fh));
                    }
                    Op::Release(i) if !handles.is_empty() => {
                        let (ino, fh) = handles.swap_remove(i % handles.len());
                        open.release(ino, fh);
                        let n = model.get_mut(&ino).map(|n| { *n -= 1; *n });
                        if n == Some(0) {
                            model.remove(&ino);
                            let token = ids.remove(&ino).unwrap();
                            prop_assert_eq!(Rc::strong_count(&token), 1, "inode {}'s id is dropped", ino);
                        }
                    }
                    Op::Release(_) => {}
                }
                prop_assert_eq!(open.counts(), (model.len(), 0));
            }
            for (ino, token) in &ids {
                prop_assert_eq!(Rc::strong_count(token), 2, "inode {}'s id is held while open", ino);
            }
        }
    }

    #[test]
    fn daemon_read_handles_are_not_passthrough_opens() {
        let open: OpenFiles<u32> = OpenFiles::default();
        open.backings(5).register(1);
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
