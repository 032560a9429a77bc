//! The embedded SQLite backend: the default for a single mirror host, a file below
//! `storage.base_path` in WAL mode so that chantal-fs reads while a sync writes.
//!
//! Writers take the database's write lock at `BEGIN IMMEDIATE` and wait for it (busy timeout)
//! rather than fail; readers never wait. What PostgreSQL does with server features has a local
//! counterpart here: the sync lock is an `flock` on a file beside the catalogue (released by
//! the kernel when the process dies), and LISTEN/NOTIFY is a poll of `PRAGMA data_version`.
//! This backend supplies only that, the connections and the driver glue ([`db::SqliteDb`]);
//! the rules are in `../ops/`.

mod db;

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OpenFlags};

use super::db::{fail, Db, Done, Mode, Store};
use super::SyncLock;
use crate::error::{Error, Result};
use db::SqliteDb;

/// How long a writer waits for another writer before giving up. Write transactions are short
/// (a batch of rows, one version commit), so reaching this means something is stuck.
const BUSY_TIMEOUT: Duration = Duration::from_secs(300);

/// Connections open at once (as the PostgreSQL backend's pool): a caller beyond them waits
/// for one, as long as a writer waits for the write lock.
const MAX_CONNECTIONS: u32 = 8;

/// How often a [`ChangeWatcher`] looks for commits of other connections.
const WATCH_INTERVAL: Duration = Duration::from_millis(50);

pub(super) struct SqliteStore {
    path: PathBuf,
    pool: r2d2::Pool<SqliteConnectionManager>,
}

impl SqliteStore {
    /// Opens the catalogue file; with `create`, creates it (and its directory) when missing.
    pub fn open(path: &Path, create: bool) -> Result<SqliteStore> {
        if !create && !path.exists() {
            return Err(Error::NoCatalogue { path: path.into() });
        }
        if create {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| Error::io("cannot create the catalogue directory", dir, e))?;
            }
        }
        check_local_file_system(path)?;
        // The pool's connections never create the file: the first one, here, may.
        let manager = SqliteConnectionManager::file(path)
            .with_flags(OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .with_init(configure);
        let store = SqliteStore {
            path: path.to_path_buf(),
            pool: r2d2::Pool::builder()
                .max_size(MAX_CONNECTIONS)
                .min_idle(Some(0))
                .connection_timeout(BUSY_TIMEOUT)
                .build_unchecked(manager),
        };
        let conn = store.new_connection(create)?;
        let mode = store.switch_to_wal(&conn)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Connect {
                host: "this host (SQLite)".into(),
                database: path.display().to_string(),
                reason: format!("cannot switch the journal to WAL mode (got {mode})"),
            });
        }
        Ok(store)
    }

    /// WAL is a property of the file: set once, kept by every later connection. Switching a
    /// new file needs it to itself, and when several processes open a new catalogue at once,
    /// SQLite answers "database is locked" at once rather than call the busy handler (two
    /// readers each waiting for the other's lock would wait forever), so that is retried here
    /// for as long as a writer would wait. Once the file is in WAL mode this is a plain read.
    fn switch_to_wal(&self, conn: &Connection) -> Result<String> {
        let deadline = Instant::now() + BUSY_TIMEOUT;
        loop {
            match conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0)) {
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::DatabaseBusy && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
                r => return r.map_err(self.connect_err()),
            }
        }
    }

    /// The catalogue file, for messages.
    pub fn describe(&self) -> String {
        self.path.display().to_string()
    }

    /// A connection of its own, outside the pool (the first, which may create the file; the
    /// change watcher's).
    fn new_connection(&self, create: bool) -> Result<Connection> {
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if create {
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
        }
        let mut conn =
            Connection::open_with_flags(&self.path, flags).map_err(self.connect_err())?;
        configure(&mut conn).map_err(self.connect_err())?;
        Ok(conn)
    }

    fn connect_err(&self) -> impl FnOnce(rusqlite::Error) -> Error + '_ {
        move |e| Error::Connect {
            host: "this host (SQLite)".into(),
            database: self.path.display().to_string(),
            reason: e.to_string(),
        }
    }

    /// A connection from the pool (dropped: back to it).
    fn conn(&self) -> Result<r2d2::PooledConnection<SqliteConnectionManager>> {
        self.pool.get().map_err(|e| Error::Connect {
            host: "this host (SQLite)".into(),
            database: self.path.display().to_string(),
            reason: e.to_string(),
        })
    }

    /// Copies the catalogue to `to` with SQLite's online backup API while other processes
    /// read and write it: all pages in one step, inside one read transaction (WAL mode lets
    /// writers go on meanwhile), so the copy is the state of one moment. It is written beside
    /// `to`, checked (`PRAGMA quick_check`), synced and renamed into place: `to` is either the
    /// old file or a complete new one. Returns the copy's size in bytes.
    pub fn backup(&self, to: &Path) -> Result<u64> {
        let fail = |reason: String| {
            Error::Invalid(format!(
                "backing up {} to {}: {reason}",
                self.path.display(),
                to.display()
            ))
        };
        let same = |a: &Path, b: &Path| match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        if same(&self.path, to) {
            return Err(fail("that is the catalogue itself".into()));
        }
        let dir = to
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tmp = tempfile::Builder::new()
            .prefix(".chantal-backup-")
            .tempfile_in(dir)
            .map_err(|e| Error::io("cannot create a temporary file in", dir, e))?;
        let src = self.conn()?;
        let mut dst = Connection::open(tmp.path()).map_err(|e| fail(e.to_string()))?;
        let deadline = Instant::now() + BUSY_TIMEOUT;
        {
            let backup =
                rusqlite::backup::Backup::new(&src, &mut dst).map_err(|e| fail(e.to_string()))?;
            loop {
                match backup.step(-1).map_err(|e| fail(e.to_string()))? {
                    rusqlite::backup::StepResult::Done => break,
                    _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                    other => return Err(fail(format!("the catalogue stayed busy ({other:?})"))),
                }
            }
        }
        // The copy is a single file: no -wal beside it to lose when it is moved.
        let check: String = dst
            .query_row("PRAGMA journal_mode = DELETE", [], |r| {
                r.get::<_, String>(0)
            })
            .and_then(|_| dst.query_row("PRAGMA quick_check", [], |r| r.get(0)))
            .map_err(|e| fail(e.to_string()))?;
        if check != "ok" {
            return Err(fail(format!("the copy does not check: {check}")));
        }
        dst.close().map_err(|(_, e)| fail(e.to_string()))?;
        let file = tmp.as_file();
        file.sync_all()
            .map_err(|e| Error::io("cannot sync", tmp.path(), e))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        tmp.persist(to)
            .map_err(|e| Error::io("cannot move the backup to", to, e.error))?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(size)
    }

    /// The directory of lock files beside the catalogue (`catalog.db-locks/`).
    fn lock_dir(&self) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push("-locks");
        self.path.with_file_name(name)
    }

    /// Takes an exclusive `flock` on `<lock dir>/<name>.lock` without waiting; `None` if another
    /// process (or another handle in this one) holds it.
    fn try_flock(&self, name: &str) -> Result<Option<std::fs::File>> {
        let dir = self.lock_dir();
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("cannot create", &dir, e))?;
        let path = dir.join(format!("{name}.lock"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o644)
            .open(&path)
            .map_err(|e| Error::io("cannot open the lock file", &path, e))?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(file)),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
            Err(e) => Err(Error::io("cannot lock", &path, e.into())),
        }
    }
}

/// Every connection's settings.
fn configure(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Every statement of the rules, prepared once per connection.
    conn.set_prepared_statement_cache_capacity(128);
    // FULL: a committed version survives a power cut, like PostgreSQL's default. The page
    // cache stays at SQLite's default (2 MB per connection): the kernel caches the file
    // anyway, and a larger one showed up as chantal-fs's resident memory (98 MB with a
    // 100,000-package tree at 64 MB, against 33 MB on PostgreSQL).
    // Temporary tables (the commit's incoming rows, the checksums a sync looks up) live in
    // SQLite's page cache and spill to an unlinked temporary file beyond it: in memory
    // they cost 65 MB more for a 100,000-package commit, and 15 MB for its lookup, for
    // 4 % of the time (contrib/bench, docs/PERFORMANCE.md).
    conn.execute_batch(
        "PRAGMA foreign_keys = ON;
         PRAGMA synchronous = FULL;
         PRAGMA temp_store = FILE;",
    )
}

/// Refuses a catalogue on a network or FUSE file system. SQLite's WAL mode keeps its lock
/// state in shared memory (the `-shm` file, mapped by every process): hosts that share a file
/// system over the network do not share that memory, so two of them would corrupt the
/// catalogue without any error. Several hosts share a PostgreSQL catalogue instead.
fn check_local_file_system(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Ok(st) = rustix::fs::statfs(dir) else {
        // Whatever stops statfs stops the open too, with a better message.
        return Ok(());
    };
    #[allow(clippy::unnecessary_cast)]
    let magic = st.f_type as i64;
    match network_file_system(magic) {
        Some(kind) => Err(Error::Invalid(format!(
            "the SQLite catalogue {} is on a {kind} file system, which cannot share SQLite's locks between hosts: keep storage.base_path (or the sqlite:// file) on a local disk, or set database.url to a PostgreSQL database for several hosts (docs/SCALE-OUT.md)",
            path.display()
        ))),
        None => Ok(()),
    }
}

/// The name of a network or FUSE file system by its statfs magic number (linux/magic.h and
/// the file systems' own headers).
pub(in crate::catalogue) fn network_file_system(magic: i64) -> Option<&'static str> {
    Some(match magic {
        0x6969 => "NFS",
        0xFF53_4D42 => "CIFS",
        0xFE53_4D42 => "SMB2",
        0x517B => "SMB",
        0x00C3_6400 => "Ceph",
        0x6573_5546 => "FUSE (GlusterFS, sshfs, s3fs, ceph-fuse...)",
        0x0102_1997 => "9p",
        0x5346_414F => "AFS",
        0x6B41_4653 => "AFS (kAFS)",
        0x0BD0_0BD0 => "Lustre",
        0x0116_1970 => "GFS2",
        0x7461_636F => "OCFS2",
        0x564C => "NCP",
        0x7375_7245 => "Coda",
        _ => return None,
    })
}

impl Store for SqliteStore {
    fn transaction<T>(
        &self,
        ctx: &str,
        mode: Mode,
        f: impl FnOnce(&mut dyn Db) -> Result<Done<T>>,
    ) -> Result<T> {
        let mut conn = self.conn()?;
        let behavior = match mode {
            Mode::Read => rusqlite::TransactionBehavior::Deferred,
            Mode::Write => rusqlite::TransactionBehavior::Immediate,
        };
        let tx = conn
            .transaction_with_behavior(behavior)
            .map_err(|e| fail(ctx, reason(&e)))?;
        let mut db = SqliteDb {
            conn: &tx,
            temp_tables: Vec::new(),
        };
        let result = f(&mut db);
        let temp_tables = std::mem::take(&mut db.temp_tables);
        let end = |tx: rusqlite::Transaction<'_>, commit: bool| {
            // The connection is reused: its temporary tables go with the transaction.
            for t in &temp_tables {
                tx.execute_batch(&format!("DROP TABLE IF EXISTS temp.{t}"))
                    .map_err(|e| fail(ctx, reason(&e)))?;
            }
            if commit { tx.commit() } else { tx.rollback() }.map_err(|e| fail(ctx, reason(&e)))
        };
        match result {
            Ok(Done::Commit(v)) => end(tx, true).map(|()| v),
            Ok(Done::Rollback(v)) => end(tx, false).map(|()| v),
            Err(e) => {
                let _ = end(tx, false);
                Err(e)
            }
        }
    }

    fn autocommit<T>(&self, f: impl FnOnce(&mut dyn Db) -> Result<T>) -> Result<T> {
        let conn = self.conn()?;
        f(&mut SqliteDb {
            conn: &conn,
            temp_tables: Vec::new(),
        })
    }

    /// An `flock` on `<catalogue>-locks/sync-<name>.lock`, which the kernel releases if the
    /// process dies.
    fn take_sync_lock(&self, name: &str) -> Result<Option<SyncLock>> {
        Ok(self.try_flock(&format!("sync-{name}"))?.map(SyncLock::file))
    }

    fn sync_lock_taken(&self, name: &str) -> Result<bool> {
        Ok(self.try_flock(&format!("sync-{name}"))?.is_none())
    }

    fn take_cleanup_lock(&self) -> Result<Option<Box<dyn std::any::Any>>> {
        Ok(self
            .try_flock("cleanup")?
            .map(|f| Box::new(f) as Box<dyn std::any::Any>))
    }
}

/// Polls `PRAGMA data_version`, which changes when another connection commits: the SQLite
/// counterpart of LISTEN/NOTIFY, costing one shared-memory read per poll.
pub(super) struct ChangeWatcher {
    conn: Connection,
    last: i64,
}

impl ChangeWatcher {
    fn data_version(conn: &Connection) -> Result<i64> {
        conn.query_row("PRAGMA data_version", [], |r| r.get(0))
            .map_err(|e| fail("watching for new versions", reason(&e)))
    }

    /// Waits up to `timeout`; true as soon as another connection committed something.
    pub fn wait(&mut self, timeout: Duration) -> Result<bool> {
        let deadline = Instant::now() + timeout;
        loop {
            let now = Self::data_version(&self.conn)?;
            if now != self.last {
                self.last = now;
                return Ok(true);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            std::thread::sleep(left.min(WATCH_INTERVAL));
        }
    }
}

impl SqliteStore {
    /// A dedicated connection watching for commits.
    pub fn listen_latest(&self) -> Result<super::LatestListener> {
        let conn = self.new_connection(false)?;
        let last = ChangeWatcher::data_version(&conn)?;
        Ok(super::LatestListener::sqlite(ChangeWatcher { conn, last }))
    }
}

/// The driver's message, with the one an operator may meet explained.
pub(super) fn reason(e: &rusqlite::Error) -> String {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy) | Some(rusqlite::ErrorCode::DatabaseLocked) => {
            format!(
                "{e} (another process kept the catalogue locked for more than {} s)",
                BUSY_TIMEOUT.as_secs()
            )
        }
        _ => e.to_string(),
    }
}

/// A stored time (microseconds since the epoch) as a UTC time.
pub(super) fn time(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

/// A time as stored.
fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

#[cfg(test)]
mod tests {
    #[test]
    fn network_and_fuse_file_systems_are_named() {
        use super::network_file_system as fs;
        assert_eq!(fs(0x6969), Some("NFS"));
        assert!(fs(0x6573_5546).unwrap().starts_with("FUSE"));
        assert!(fs(0xFF53_4D42).is_some() && fs(0x00C3_6400).is_some());
        // ext4, xfs, btrfs, tmpfs, overlayfs are local.
        for local in [0xEF53, 0x5846_5342, 0x9123_683E, 0x0102_1994, 0x794C_7630] {
            assert_eq!(fs(local), None, "{local:#x}");
        }
    }
}
