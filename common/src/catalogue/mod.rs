//! The catalogue: what every repository contained at every version, which files the pool holds,
//! snapshots and sync history. All SQL of the project lives below this module, behind methods
//! named for what they do, so that a second backend can slot in behind the same API.
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

pub use blobs::BlobRecord;
pub use cleanup::CleanupReport;
pub use commit::{CommitInput, CommitResult, NewMetadata, NewPackage};
pub use migrations::{Migration, SchemaStatus, MIGRATIONS};
pub use repositories::{RepoSummary, SyncRecord};
pub use snapshots::{SnapshotRecord, VersionInfo, VersionPackage};
pub use sync::{
    ContentItem, FragmentRow, KnownBlob, LatestListener, LatestState, NevraSize, RunningSync,
    SyncFinish, SyncLock,
};

type Manager = PostgresConnectionManager<NoTls>;
type Conn = r2d2::PooledConnection<Manager>;

/// How long to wait for the server before giving up, unless the URL says otherwise.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A handle on the catalogue database. Cheap to clone; safe to share between threads.
#[derive(Clone)]
pub struct Catalogue {
    pool: r2d2::Pool<Manager>,
    /// For connections that must not come from the pool (the sync lock's session).
    config: postgres::Config,
    host: String,
    database: String,
}

impl std::fmt::Debug for Catalogue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Catalogue({} on {})", self.database, self.host)
    }
}

impl Catalogue {
    /// Connects without looking at the schema (for `init` and `db` commands).
    pub fn connect(url: &str) -> Result<Catalogue> {
        Self::connect_waiting(url, CONNECT_TIMEOUT)
    }

    /// Like [`Catalogue::connect`], but a request waits at most `wait` for a connection once
    /// the server is gone: a daemon serving from caches (chantal-fs) wants to learn of an
    /// outage quickly rather than hold its callers for the default 10 s.
    pub fn connect_waiting(url: &str, wait: Duration) -> Result<Catalogue> {
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
        let pool = r2d2::Pool::builder()
            .max_size(8)
            .min_idle(Some(0))
            .connection_timeout(wait)
            .build_unchecked(PostgresConnectionManager::new(config.clone(), NoTls));
        Ok(Catalogue {
            pool,
            config,
            host,
            database,
        })
    }

    /// Connects and checks that the schema is exactly the one this binary knows.
    pub fn open(url: &str) -> Result<Catalogue> {
        Self::open_waiting(url, CONNECT_TIMEOUT)
    }

    /// [`Catalogue::open`] with [`Catalogue::connect_waiting`]'s bound on waiting.
    pub fn open_waiting(url: &str, wait: Duration) -> Result<Catalogue> {
        let catalogue = Self::connect_waiting(url, wait)?;
        catalogue.require_current_schema()?;
        Ok(catalogue)
    }

    /// "database on host", for messages.
    pub fn describe(&self) -> String {
        format!("{} on {}", self.database, self.host)
    }

    fn conn(&self) -> Result<Conn> {
        self.pool.get().map_err(|e| Error::Connect {
            host: self.host.clone(),
            database: self.database.clone(),
            reason: e.to_string(),
        })
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
