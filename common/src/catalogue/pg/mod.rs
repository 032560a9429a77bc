//! The PostgreSQL backend: for sites with several hosts (a shared pool, several chantal-fs
//! frontends, syncs on more than one machine) and for large installations.
//!
//! Connections come from an r2d2 pool of blocking `postgres` clients. Callers inside a tokio
//! runtime must use `spawn_blocking` (the driver starts its own runtime).

mod blobs;
mod cleanup;
mod commit;
mod migrations;
mod repositories;
mod snapshots;
mod sync;

use std::str::FromStr;
use std::time::Duration;

use postgres::config::Host;
use postgres::NoTls;
use r2d2_postgres::PostgresConnectionManager;

use crate::error::{db_reason, Error, Result};

pub(super) use sync::wait_notifications;

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
        let mut config = postgres::Config::from_str(url).map_err(|e| {
            Error::Missing(format!(
                "invalid database URL {}: {e}",
                crate::redact::redact_url(url)
            ))
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

/// Maps a driver error to [`Error::Db`] with what was being done.
fn db_err(context: impl Into<String>) -> impl FnOnce(postgres::Error) -> Error {
    let context = context.into();
    move |e| Error::db(context, &e)
}
