//! The PostgreSQL backend: for sites with several hosts (a shared pool, several chantal-fs
//! frontends, syncs on more than one machine) and for large installations.
//!
//! Connections come from an r2d2 pool of blocking `postgres` clients. Callers inside a tokio
//! runtime must use `spawn_blocking` (the driver starts its own runtime). This backend
//! supplies only the connections, the driver glue ([`db::PgDb`]) and the locks that live
//! outside transactions (session advisory locks, LISTEN); the rules are in `../ops/`.

mod db;

use std::str::FromStr;
use std::time::Duration;

use postgres::config::Host;
use postgres::NoTls;
use r2d2_postgres::PostgresConnectionManager;

use super::db::{fail, Db, Done, Mode, Store};
use super::{LatestListener, SyncLock};
use crate::error::{db_reason, Error, Result};
use db::PgDb;

/// The advisory lock key of a repository's sync lock (`$1`: its name).
const SYNC_LOCK_KEY: &str = "hashtextextended('chantal-sync/' || $1, 0)";
/// Arbitrary constant for the advisory lock that keeps two cleanups apart.
const CLEANUP_LOCK: i64 = 0x6368_616e_7461_6c01;

type Manager = PostgresConnectionManager<NoTls>;
type Conn = r2d2::PooledConnection<Manager>;

/// How long to wait for the server before giving up, unless the URL says otherwise.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) struct PgStore {
    pool: r2d2::Pool<Manager>,
    /// The pool's latest failure to connect (r2d2 itself would log every attempt, several
    /// a second during an outage, and report only "timed out").
    last_error: std::sync::Arc<std::sync::Mutex<Option<String>>>,
    /// For connections that must not come from the pool (the sync lock's session, LISTEN).
    config: postgres::Config,
    host: String,
    database: String,
}

impl PgStore {
    /// Connects; a request waits at most `wait` for a connection once the server is gone.
    pub fn connect(url: &str, wait: Duration) -> Result<PgStore> {
        let mut config = postgres::Config::from_str(url).map_err(|e| Error::BadDatabaseUrl {
            url: crate::redact::redact_url(url),
            reason: e.to_string(),
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(wait.min(CONNECT_TIMEOUT));
        }
        if config.get_options().is_none() {
            // Server notices ("relation ... already exists, skipping") are not for operators.
            config.options("-c client_min_messages=warning");
        }
        if config.get_application_name().is_none() {
            config.application_name("chantal");
        }
        // Notices ("terminating connection due to immediate shutdown") are for the server's
        // log, not ours: an outage is reported once, by whoever meets it.
        config.notice_callback(|notice| {
            tracing::debug!("PostgreSQL {}: {}", notice.severity(), notice.message());
        });
        let host = describe_host(&config);
        let database = config
            .get_dbname()
            .or(config.get_user())
            .unwrap_or("postgres")
            .to_string();
        // One direct attempt first: r2d2 would retry until its own timeout and then report
        // only "timed out", hiding the server's reason.
        let probe = config.connect(NoTls).map_err(|e| Error::Connect {
            host: host.clone(),
            database: database.clone(),
            reason: db_reason(&e),
        })?;
        drop(probe);
        let last_error = std::sync::Arc::new(std::sync::Mutex::new(None));
        let pool = r2d2::Pool::builder()
            .max_size(8)
            .min_idle(Some(0))
            .connection_timeout(wait)
            .error_handler(Box::new(KeepLastError(std::sync::Arc::clone(&last_error))))
            .build_unchecked(PostgresConnectionManager::new(config.clone(), NoTls));
        Ok(PgStore {
            pool,
            last_error,
            config,
            host,
            database,
        })
    }

    /// "database on host", for messages.
    pub fn describe(&self) -> String {
        format!("{} on {}", self.database, self.host)
    }

    fn conn(&self) -> Result<Conn> {
        self.pool.get().map_err(|e| Error::Connect {
            host: self.host.clone(),
            database: self.database.clone(),
            reason: self
                .last_error
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take()
                .unwrap_or_else(|| e.to_string()),
        })
    }

    /// A connection outside the pool, for a session that must end with the process.
    pub(in crate::catalogue) fn dedicated(&self) -> Result<postgres::Client> {
        self.config.connect(NoTls).map_err(|e| Error::Connect {
            host: self.host.clone(),
            database: self.database.clone(),
            reason: db_reason(&e),
        })
    }
}

impl Store for PgStore {
    fn transaction<T>(
        &self,
        ctx: &str,
        _mode: Mode,
        f: impl FnOnce(&mut dyn Db) -> Result<Done<T>>,
    ) -> Result<T> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(|e| fail(ctx, db_reason(&e)))?;
        // An error drops the transaction, which rolls it back.
        match f(&mut PgDb(&mut tx))? {
            Done::Commit(v) => {
                tx.commit().map_err(|e| fail(ctx, db_reason(&e)))?;
                Ok(v)
            }
            Done::Rollback(v) => {
                tx.rollback().map_err(|e| fail(ctx, db_reason(&e)))?;
                Ok(v)
            }
        }
    }

    fn autocommit<T>(&self, f: impl FnOnce(&mut dyn Db) -> Result<T>) -> Result<T> {
        let mut conn = self.conn()?;
        f(&mut PgDb(&mut *conn))
    }

    /// A session-level advisory lock on a connection of its own: released when the lock is
    /// dropped, or by the server if the process dies.
    fn take_sync_lock(&self, name: &str) -> Result<Option<SyncLock>> {
        let ctx = format!("locking repository {name}");
        let mut client = self.dedicated()?;
        let got = client
            .query_one(
                &format!("SELECT pg_try_advisory_lock({SYNC_LOCK_KEY})"),
                &[&name],
            )
            .map_err(|e| fail(&ctx, db_reason(&e)))?
            .get::<_, bool>(0);
        Ok(got.then(|| SyncLock::postgres(client)))
    }

    fn sync_lock_taken(&self, name: &str) -> Result<bool> {
        // A bigint advisory key shows in pg_locks as its two halves, objsubid 1.
        self.autocommit(|db| {
            db.one(
                &format!("looking whether {name} is being synced"),
                &format!(
                    "SELECT EXISTS (SELECT 1 FROM pg_locks l
                                     WHERE l.locktype = 'advisory' AND l.granted
                                       AND l.objsubid = 1
                                       AND l.database = (SELECT oid FROM pg_database
                                                          WHERE datname = current_database())
                                       AND ((l.classid::int8 << 32) | l.objid::int8)
                                           = {SYNC_LOCK_KEY})"
                ),
                &[name.into()],
                |r| r.boolean(0),
            )
        })
    }

    fn take_cleanup_lock(&self) -> Result<Option<Box<dyn std::any::Any>>> {
        let mut client = self.dedicated()?;
        let got = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&CLEANUP_LOCK])
            .map_err(|e| fail("cleaning up the catalogue", db_reason(&e)))?
            .get::<_, bool>(0);
        Ok(got.then(|| Box::new(client) as Box<dyn std::any::Any>))
    }
}

impl PgStore {
    /// A dedicated connection listening on `chantal_latest`.
    pub fn listen_latest(&self) -> Result<LatestListener> {
        let mut client = self.dedicated()?;
        client
            .batch_execute("LISTEN chantal_latest")
            .map_err(|e| fail("listening for new versions", db_reason(&e)))?;
        Ok(LatestListener::postgres(client))
    }
}

/// Waits up to `timeout` on a connection that listens on `chantal_latest`; true if at least one
/// new version was announced (all pending notifications are consumed).
pub(super) fn wait_notifications(
    client: &mut postgres::Client,
    timeout: std::time::Duration,
) -> Result<bool> {
    use postgres::fallible_iterator::FallibleIterator;
    let ctx = "waiting for notifications";
    let mut notifications = client.notifications();
    // The first wait blocks up to `timeout`; then drain what is queued without waiting.
    let first = notifications
        .timeout_iter(timeout)
        .next()
        .map_err(|e| fail(ctx, db_reason(&e)))?;
    let got = first.is_some();
    if got {
        while notifications
            .iter()
            .next()
            .map_err(|e| fail(ctx, db_reason(&e)))?
            .is_some()
        {}
    }
    Ok(got)
}

/// Keeps the pool's connection errors for the caller's message instead of logging each one.
#[derive(Debug)]
struct KeepLastError(std::sync::Arc<std::sync::Mutex<Option<String>>>);

impl r2d2::HandleError<postgres::Error> for KeepLastError {
    fn handle_error(&self, error: postgres::Error) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(db_reason(&error));
    }
}

fn describe_host(config: &postgres::Config) -> String {
    let port = config.get_ports().first().copied().unwrap_or(5432);
    match config.get_hosts().first() {
        Some(Host::Tcp(h)) => format!("{h}:{port}"),
        Some(Host::Unix(p)) => format!("{} (unix socket, port {port})", p.display()),
        None => format!("localhost:{port}"),
    }
}
