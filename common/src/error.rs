//! The one error type of `chantal-common`. Every variant names what it was about (file, repository,
//! database, blob) so that a single line tells an operator where to look.

use std::path::PathBuf;

/// Errors raised by configuration loading, the catalogue and the pool.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration file is wrong. `line` is 1-based; `key` is the dotted key path.
    #[error("{}:{line}: {}{message}", file.display(), key_prefix(key))]
    Config {
        file: PathBuf,
        line: usize,
        key: String,
        message: String,
    },

    /// A configuration file could not be read at all.
    #[error("cannot read configuration file {}: {source}", path.display())]
    ConfigRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A repository name was asked for that no configuration file defines.
    #[error("unknown repository '{name}' (configured: {})", if known.is_empty() { "none".to_string() } else { known.join(", ") })]
    UnknownRepository { name: String, known: Vec<String> },

    /// A name or value given on the command line is unusable (a reserved snapshot name...).
    #[error("{0}")]
    Invalid(String),

    /// The catalogue file does not exist (and the command does not create it).
    #[error("no catalogue at {}: run `chantal init` first", path.display())]
    NoCatalogue { path: PathBuf },

    /// `database.url` (or `--to`) cannot name a catalogue.
    #[error("invalid database URL {url}: {reason}")]
    BadDatabaseUrl { url: String, reason: String },

    /// `database.url` names a kind of database chantal does not speak.
    #[error("unsupported database URL scheme '{scheme}://' (use sqlite:///path/to/catalog.db or postgresql://…)")]
    DatabaseScheme { scheme: String },

    /// A snapshot needs a version to freeze.
    #[error("{repository} has no version yet: sync it before taking a snapshot")]
    NoVersion { repository: String },

    /// A snapshot name is already used in the repository.
    #[error("{repository} already has a snapshot named {name} (version {version})")]
    SnapshotExists {
        repository: String,
        name: String,
        version: i64,
    },

    /// An environment points at the snapshot, so it must stay.
    #[error("{repository}: snapshot {name} is what {} {} at: promote {} to another snapshot (or `chantal env unset`) first", if environments.len() == 1 { "environment" } else { "environments" }, if environments.len() == 1 { format!("{} points", environments.join("")) } else { format!("{} point", environments.join(" and ")) }, if environments.len() == 1 { "it" } else { "them" })]
    SnapshotInUse {
        repository: String,
        name: String,
        environments: Vec<String>,
    },

    /// Another process holds a lock this command needs; running again later is the remedy.
    #[error("{0}")]
    Busy(String),

    /// A concurrent process changed what this one was about to record; running again is safe.
    #[error("{0}: run again")]
    Raced(String),

    /// The command does not apply to this setup (a copy from PostgreSQL, into SQLite...).
    #[error("{0}")]
    Unsupported(String),

    /// `db migrate --to` refuses a target that already holds data.
    #[error("the target database {target} is not empty ({table} has {rows} rows): copy into a new database")]
    TargetNotEmpty {
        target: String,
        table: String,
        rows: i64,
    },

    /// `db migrate --to` read back something other than what it copied.
    #[error("the copy in {target} differs from the source: {what}; the target was left as copied for inspection")]
    CopyMismatch { target: String, what: String },

    /// A worker thread of chantal's own died; a bug, reported rather than hidden.
    #[error("internal error: {0}")]
    Internal(String),

    /// The database could not be reached or refused the connection.
    #[error("cannot connect to the catalogue database '{database}' on {host}: {reason}")]
    Connect {
        host: String,
        database: String,
        reason: String,
    },

    /// A query failed. `context` says what chantal was doing.
    #[error("catalogue: {context}: {reason}")]
    Db { context: String, reason: String },

    /// The schema is older than this binary knows.
    #[error("the catalogue schema is at version {current}, this chantal needs {expected}: run `chantal db migrate`")]
    SchemaOutdated { current: i64, expected: i64 },

    /// The schema is newer than this binary knows.
    #[error("the catalogue schema is at version {current}, newer than this chantal knows ({expected}): upgrade chantal")]
    SchemaTooNew { current: i64, expected: i64 },

    /// A file-system operation on the pool or storage failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A blob's content does not match its name.
    #[error("blob {} has sha256 {actual}, expected {expected}", path.display())]
    HashMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },

    /// Upstream metadata is malformed, hostile or inconsistent. `file` names the metadata file
    /// (its location href or URL).
    #[error("{file}: {message}")]
    Metadata { file: String, message: String },

    /// A version's files do not form a tree that can be served (two files at one path, a file
    /// that is also a directory, a package in `repodata/`): refused before anything is
    /// published, so the previous version stays latest.
    #[error("{repository}: refusing to publish the new version: {message}; nothing was committed")]
    Layout { repository: String, message: String },

    /// A name that would escape its directory or is otherwise unusable as a pool file name.
    #[error("invalid file name for the pool: {0:?}")]
    BadFileName(String),

    /// An export cannot be written where it is configured to go.
    /// Writing or signing a version's manifest failed.
    #[error("{repository}: sealing version {version}: {reason}")]
    Seal {
        repository: String,
        version: i64,
        reason: String,
    },

    #[error("{path}: {message}")]
    Export { path: PathBuf, message: String },
}

fn key_prefix(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!("{key}: ")
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Builds an [`Error::Io`] from an action phrase ("cannot create") and a path.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// Builds an [`Error::Db`] from what was being done and the driver's error.
    pub fn db(context: impl Into<String>, err: &postgres::Error) -> Self {
        Error::Db {
            context: context.into(),
            reason: db_reason(err),
        }
    }
}

/// The most useful one-line description of a driver error: the server's message when there is
/// one, otherwise the innermost cause (the driver's own Display is often just "db error").
pub fn db_reason(err: &postgres::Error) -> String {
    if let Some(db) = err.as_db_error() {
        return db.message().to_string();
    }
    let mut reason = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        reason = s.to_string();
        source = s.source();
    }
    reason
}
