//! The thin adapter between fuser and [`View`]: each callback unpacks its arguments, asks the
//! view, and replies. File contents come from the pool file: through the kernel (FUSE
//! passthrough, one backing id per open inode) or with positional reads through a handle
//! opened once per `open`.

use std::ffi::OsStr;
use std::fs::File;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use fuser::{
    AccessFlags, BackingId, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags,
    Generation, INodeNo, InitFlags, IoctlFlags, KernelConfig, LockOwner, OpenFlags, ReplyAttr,
    ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyIoctl, ReplyLseek,
    ReplyOpen, ReplyXattr, Request,
};

use crate::on_demand::OnDemand;
use crate::open_files::{Backings, OpenFiles};
use crate::view::{Attr, Cache, Kind, View, ViewError};

/// How long the kernel may cache what may change unannounced (the repository and snapshot
/// lists, a snapshot's root).
const SHORT_TTL: Duration = Duration::from_secs(1);
/// ... the entries of `latest/`: the daemon invalidates them when latest moves, so this only
/// bounds how long a missed invalidation could last.
const LATEST_TTL: Duration = Duration::from_secs(10);
/// ... and what never changes (names and attributes inside a version).
const LONG_TTL: Duration = Duration::from_secs(3600);
/// ... and the entries of `env/<env>/`, which the kernel must not keep (see [`Cache::Never`]).
const NO_TTL: Duration = Duration::ZERO;

/// Files at least this large are read with FUSE passthrough (when the kernel offers it),
/// smaller ones through the daemon and the mount's page cache. By default every file: first
/// reads, what the daemon still sees behind nginx's open-file cache, are faster with
/// passthrough at every size, and the page cache holds one copy instead of two; a repeated
/// open of a small file is about 15 % faster through the page cache, which is what
/// `--passthrough-min-size` offers a client that opens files again and again
/// (docs/PERFORMANCE.md, "Serving through nginx", has the figures).
pub const PASSTHROUGH_MIN_SIZE: u64 = 0;

pub struct ChantalFs {
    view: Arc<View>,
    open: Arc<OpenFiles<BackingId>>,
    activity: Arc<Activity>,
    /// Whether the kernel accepted FUSE passthrough (reads then bypass this daemon).
    passthrough: AtomicBool,
    passthrough_min_size: u64,
    /// Files the pool does not hold yet, asked of the fetcher.
    on_demand: Arc<OnDemand<ReplyData>>,
}

impl ChantalFs {
    /// The open-file bookkeeping, for the shutdown to see what still needs the daemon.
    pub fn open_files(&self) -> Arc<OpenFiles<BackingId>> {
        Arc::clone(&self.open)
    }

    /// The requests under way, for the shutdown to wait for those only.
    pub fn activity(&self) -> Arc<Activity> {
        Arc::clone(&self.activity)
    }

    /// `passthrough_min_size`: files at least this large are read with passthrough when the
    /// kernel offers it. Files the pool lacks are asked of `on_demand`'s fetcher.
    pub fn new(
        view: Arc<View>,
        passthrough_min_size: u64,
        on_demand: Arc<OnDemand<ReplyData>>,
    ) -> ChantalFs {
        ChantalFs {
            view,
            open: Arc::default(),
            activity: Arc::default(),
            passthrough: AtomicBool::new(false),
            passthrough_min_size,
            on_demand,
        }
    }
}

impl ChantalFs {
    /// A read of a file the pool does not hold: answered by the fetch of its sha256 (from the
    /// pool name `<sha256>_<file name>`), now or as its bytes arrive.
    fn read_on_demand(&self, ino: u64, offset: u64, len: u32, reply: ReplyData) {
        let (path, size) = match (self.view.path(ino), self.view.getattr(ino)) {
            (Ok(p), Ok(a)) => (p, a.size),
            _ => {
                reply.error(Errno::EIO);
                return;
            }
        };
        let sha256 = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.split_once('_'))
            .map(|(sha, _)| sha)
            .filter(|sha| chantal_common::pool::is_sha256(sha));
        match sha256 {
            Some(sha) => self.on_demand.read(sha, size, offset, len, reply),
            None => {
                tracing::error!("{} is missing from the pool", path.display());
                reply.error(Errno::EIO);
            }
        }
    }
}

/// Requests being answered, and when the last one began: after SIGTERM detaches the mount, the
/// daemon answers what is under way (an open resolving its path when the detach came) and
/// exits as soon as the kernel has been quiet for a moment, instead of a fixed time.
#[derive(Debug)]
pub struct Activity {
    in_flight: std::sync::atomic::AtomicUsize,
    /// Milliseconds since `epoch` when the last request began.
    last: std::sync::atomic::AtomicU64,
    epoch: std::time::Instant,
}

impl Default for Activity {
    fn default() -> Self {
        Activity {
            in_flight: Default::default(),
            last: Default::default(),
            epoch: std::time::Instant::now(),
        }
    }
}

/// One request under way (dropped when it is answered).
pub struct Busy<'a>(&'a Activity);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Activity {
    fn enter(&self) -> Busy<'_> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::SeqCst);
        Busy(self)
    }

    /// Whether no request is under way and none began within `quiet`.
    pub fn quiet(&self, quiet: Duration) -> bool {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        let since = now.saturating_sub(self.last.load(Ordering::SeqCst));
        self.in_flight.load(Ordering::SeqCst) == 0 && u128::from(since) >= quiet.as_millis()
    }
}

/// Answers an open with the inode's registered backing id (one more user), or gives the
/// reply back. Called with the lock held, so a release cannot drop the id before the reply.
fn reuse_backing(
    backings: &mut Backings<'_, BackingId>,
    fh: u64,
    reply: ReplyOpen,
) -> Result<(), ReplyOpen> {
    match backings.share() {
        Some(id) => {
            // Passthrough with FOPEN_KEEP_CACHE makes opens fail.
            reply.opened_passthrough(FileHandle(fh), FopenFlags::empty(), id);
            Ok(())
        }
        None => Err(reply),
    }
}

fn errno(e: &ViewError) -> Errno {
    match e {
        ViewError::NotFound => Errno::ENOENT,
        ViewError::NotADirectory => Errno::ENOTDIR,
        ViewError::IsADirectory => Errno::EISDIR,
        ViewError::Unavailable => Errno::EIO,
    }
}

fn file_attr(a: &Attr) -> FileAttr {
    let mtime = UNIX_EPOCH + Duration::from_secs(u64::try_from(a.mtime).unwrap_or(0));
    let (kind, perm, nlink) = match a.kind {
        Kind::Dir => (FileType::Directory, 0o555, 2),
        Kind::File => (FileType::RegularFile, 0o444, 1),
        Kind::Symlink => (FileType::Symlink, 0o777, 1),
    };
    FileAttr {
        ino: INodeNo(a.ino),
        size: a.size,
        blocks: a.size.div_ceil(512),
        atime: mtime,
        mtime,
        ctime: mtime,
        crtime: mtime,
        kind,
        perm,
        nlink,
        uid: 0,
        gid: 0,
        rdev: 0,
        flags: 0,
        blksize: 4096,
    }
}

fn ttl(a: &Attr) -> &'static Duration {
    match a.cache {
        Cache::Short => &SHORT_TTL,
        Cache::Latest => &LATEST_TTL,
        Cache::Long => &LONG_TTL,
        Cache::Never => &NO_TTL,
    }
}

impl Filesystem for ChantalFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // Passthrough lets the kernel read pool files directly; a kernel without it (or a pool
        // on a stacked file system) gets the plain read path.
        // Listings carry attributes, so `ls -l` of a big Packages/ is not a lookup per entry.
        let _ = config.add_capabilities(InitFlags::FUSE_DO_READDIRPLUS);
        let ok = config.add_capabilities(InitFlags::FUSE_PASSTHROUGH).is_ok()
            && config.set_max_stack_depth(2).is_ok();
        self.passthrough.store(ok, Ordering::Relaxed);
        tracing::info!(
            "reads: {}",
            if ok {
                "FUSE passthrough"
            } else {
                "through the daemon"
            }
        );
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let _busy = self.activity.enter();
        let Some(name) = name.to_str() else {
            reply.error(Errno::ENOENT);
            return;
        };
        tracing::debug!("lookup {} {name}", parent.0);
        match self.view.lookup(parent.0, name) {
            Ok(a) => reply.entry(ttl(&a), &file_attr(&a), Generation(0)),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let _busy = self.activity.enter();
        match self.view.readlink(ino.0) {
            Ok(target) => reply.data(target.as_bytes()),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let _busy = self.activity.enter();
        match self.view.getattr(ino.0) {
            Ok(a) => reply.attr(ttl(&a), &file_attr(&a)),
            Err(e) => reply.error(errno(&e)),
        }
    }

    /// From `passthrough_min_size` up, files are read by the kernel from the pool file itself
    /// (passthrough): one copy in the page cache, no daemon read. Smaller ones are read
    /// through the daemon once and then kept in the mount's page cache across opens
    /// (FOPEN_KEEP_CACHE), so an open of a file read before costs one round trip and no file
    /// operation here, where a passthrough open costs a pool-file open and two kernel calls
    /// whenever no other open holds the inode.
    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let _busy = self.activity.enter();
        let fh = self.open.next_handle();
        let size = match self.view.getattr(ino.0) {
            Ok(a) if a.kind == Kind::File => a.size,
            Ok(a) if a.kind == Kind::Dir => {
                reply.error(Errno::EISDIR);
                return;
            }
            Ok(_) => {
                reply.error(Errno::EINVAL);
                return;
            }
            Err(e) => {
                reply.error(errno(&e));
                return;
            }
        };
        let passthrough =
            self.passthrough.load(Ordering::Relaxed) && size >= self.passthrough_min_size;
        if !passthrough {
            self.open.insert_file(fh);
            // Pool files never change: the page cache stays valid across opens. Not so while
            // a file is being fetched (on demand): its first bytes are read before the whole
            // is verified, and a fetch that fails must not leave them cached.
            let flags = match self.view.path(ino.0) {
                Ok(p) if p.exists() => FopenFlags::FOPEN_KEEP_CACHE,
                _ => FopenFlags::empty(),
            };
            reply.opened(FileHandle(fh), flags);
            return;
        }
        let reply = match reuse_backing(&mut self.open.backings(ino.0), fh, reply) {
            Ok(()) => return,
            Err(reply) => reply,
        };
        let path = match self.view.path(ino.0) {
            Ok(p) => p,
            Err(e) => {
                reply.error(errno(&e));
                return;
            }
        };
        let f = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Not in the pool (yet): read through the daemon, which asks the fetcher.
                // Opens after the file has arrived get passthrough. No page cache kept across
                // opens: bytes read before a fetch fails its verification must not outlive
                // it.
                self.open.insert_file(fh);
                reply.opened(FileHandle(fh), FopenFlags::empty());
                return;
            }
            Err(e) => {
                tracing::error!("cannot open {}: {e}", path.display());
                reply.error(Errno::EIO);
                return;
            }
        };
        let mut backings = self.open.backings(ino.0);
        // Another open of this inode may have registered one meanwhile.
        let reply = match reuse_backing(&mut backings, fh, reply) {
            Ok(()) => return,
            Err(reply) => reply,
        };
        match reply.open_backing(&f) {
            Ok(id) => {
                let id = backings.register(id);
                reply.opened_passthrough(FileHandle(fh), FopenFlags::empty(), id);
            }
            Err(e) => {
                tracing::warn!("passthrough refused ({e}): reading through the daemon");
                self.passthrough.store(false, Ordering::Relaxed);
                drop(backings);
                self.open.insert_file(fh);
                reply.opened(FileHandle(fh), FopenFlags::FOPEN_KEEP_CACHE);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let _busy = self.activity.enter();
        let Some(handle) = self.open.file(fh.0) else {
            reply.error(Errno::EIO);
            return;
        };
        let file = match handle.get_or_open(|| {
            let path = self
                .view
                .path(ino.0)
                .map_err(|e| std::io::Error::other(format!("inode {}: {e:?}", ino.0)))?;
            File::open(&path)
                .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
        }) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.read_on_demand(ino.0, offset, size, reply);
                return;
            }
            Err(e) => {
                tracing::error!("cannot open {e}");
                reply.error(Errno::EIO);
                return;
            }
        };
        let mut buf = vec![0u8; size as usize];
        match crate::on_demand::read_full(&file, &mut buf, offset) {
            Ok(filled) => reply.data(&buf[..filled]),
            Err(_) => reply.error(Errno::EIO),
        }
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.open.release(ino.0, fh.0);
        reply.ok();
    }

    /// Reading is allowed to all (the mount's ACL decides who reaches it at all); writing
    /// never, and packages are not programs.
    fn access(&self, _req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        let _busy = self.activity.enter();
        if mask.contains(AccessFlags::W_OK) {
            reply.error(Errno::EROFS);
        } else if mask.contains(AccessFlags::X_OK)
            && self.view.getattr(ino.0).is_ok_and(|a| a.kind == Kind::File)
        {
            reply.error(Errno::EACCES);
        } else {
            reply.ok();
        }
    }

    /// No file here is a terminal or a device; answered without a log line, since every
    /// `isatty()` on an open file lands here.
    #[allow(clippy::too_many_arguments)]
    fn ioctl(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: IoctlFlags,
        _cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: ReplyIoctl,
    ) {
        reply.error(Errno::ENOTTY);
    }

    // ENOSYS makes the kernel stop asking for these at all, keeping lookups and reads free of
    // round trips; there is nothing to flush on a read-only file system.
    fn getxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _size: u32,
        reply: ReplyXattr,
    ) {
        reply.error(Errno::ENOSYS);
    }

    /// Files have no holes: the kernel's own SEEK_DATA/SEEK_HOLE answer is right.
    fn lseek(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: i64,
        _whence: i32,
        reply: ReplyLseek,
    ) {
        reply.error(Errno::ENOSYS);
    }

    fn listxattr(&self, _req: &Request, _ino: INodeNo, _size: u32, reply: ReplyXattr) {
        reply.error(Errno::ENOSYS);
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::ENOSYS);
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let _busy = self.activity.enter();
        let listed = self.view.readdir(ino.0, offset, |attr, name, next| {
            reply.add(
                INodeNo(attr.ino),
                next,
                name,
                ttl(attr),
                &file_attr(attr),
                Generation(0),
            )
        });
        match listed {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let _busy = self.activity.enter();
        let listed = self.view.readdir(ino.0, offset, |attr, name, next| {
            let kind = match attr.kind {
                Kind::Dir => FileType::Directory,
                Kind::File => FileType::RegularFile,
                Kind::Symlink => FileType::Symlink,
            };
            reply.add(INodeNo(attr.ino), next, kind, name)
        });
        match listed {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }
}
