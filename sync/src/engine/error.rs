//! The sync engine's error type. Each variant names the repository, URL or file concerned.

use chantal_common::catalogue::RunningSync;

/// Everything that can stop or spoil a sync.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Common(#[from] chantal_common::Error),

    /// The upstream answered with an HTTP status that retrying will not fix (or retries ran
    /// out).
    #[error("{url}: HTTP {status}{hint}")]
    Status {
        url: String,
        status: u16,
        hint: &'static str,
        /// What the server's `Retry-After` asked for (429, 503).
        retry_after: Option<std::time::Duration>,
    },

    /// A local upstream tree does not have this file.
    #[error("{url}: no such file")]
    NotFound { url: String },

    /// The upstream cannot give this file, and retrying will not change it: a local file that
    /// cannot be read, a redirect chantal will not follow.
    #[error("{url}: {reason}")]
    Refused { url: String, reason: String },

    /// The upstream offers a file larger than chantal accepts for it: refused, and not retried
    /// (the same request gets the same file).
    #[error("{url}: larger than {max} bytes: refusing it")]
    TooLarge { url: String, max: u64 },

    /// The request did not complete (connection, TLS, timeout, truncated body).
    #[error("{url}: {reason}")]
    Transport { url: String, reason: String },

    /// Downloaded content does not match what the metadata declares.
    #[error("{url}: {what} mismatch: expected {expected}, got {actual}")]
    Verify {
        url: String,
        what: &'static str,
        expected: String,
        actual: String,
    },

    /// The repository's TLS or credentials setup is unusable.
    #[error("{repo}: {reason}")]
    Setup { repo: String, reason: String },

    /// The repository's trusted keys cannot be read, or do not hold what the configuration
    /// pins.
    #[error("{repo}: trusted keys: {reason}")]
    Keys { repo: String, reason: String },

    /// `rpm.repo_gpgcheck`: repomd.xml's detached signature is missing or does not verify.
    #[error("{url}: {reason}")]
    RepoSignature { url: String, reason: String },

    /// `publish.sign`: the key cannot be used, or signing repomd.xml failed.
    #[error("{repo}: signing repomd.xml: {reason}")]
    Sign { repo: String, reason: String },

    /// `rpm.gpgcheck`: a package is unsigned, signed by a key the repository does not trust,
    /// or its signature or payload digest does not verify.
    #[error("{url}: signature check failed: {reason}")]
    Signature { url: String, reason: String },

    /// Another process holds the repository's sync lock.
    #[error("{repo} is being synced by {}", holder.as_ref().map(|h| format!("{} pid {} since {}", h.host, h.pid, h.started_at.format("%Y-%m-%d %H:%M:%S UTC"))).unwrap_or_else(|| "another process".into()))]
    Locked {
        repo: String,
        holder: Option<RunningSync>,
    },

    /// Some packages could not be downloaded or verified; nothing was committed.
    #[error("{repo}: {} of {total} packages failed, nothing committed{}", failures.len(), latest.map(|v| format!(" (latest stays version {v})")).unwrap_or_default())]
    PackagesFailed {
        repo: String,
        total: usize,
        failures: Vec<(String, String)>,
        latest: Option<i64>,
    },

    /// SIGINT or SIGTERM: stopped cleanly, nothing committed, partial downloads kept.
    #[error("interrupted: nothing committed, partial downloads kept for the next run")]
    Interrupted,

    /// A request's final error after retries.
    #[error("{source}, after {retries} retries")]
    Retried {
        retries: u32,
        #[source]
        source: Box<SyncError>,
    },

    /// An error of the sync of `repo` that does not name it by itself.
    #[error("{repo}: {source}")]
    InRepo {
        repo: String,
        #[source]
        source: Box<SyncError>,
    },
}

impl SyncError {
    /// The error as the sync of `repo` reports it: named by its repository once (in `--all`,
    /// a URL alone does not say which). Interrupted stays as it is: it ends the whole run.
    pub fn in_repo(self, repo: &str) -> SyncError {
        use chantal_common::Error as C;
        match self {
            SyncError::Setup { .. }
            | SyncError::Keys { .. }
            | SyncError::Sign { .. }
            | SyncError::Locked { .. }
            | SyncError::PackagesFailed { .. }
            | SyncError::Interrupted
            | SyncError::InRepo { .. }
            | SyncError::Common(
                C::NoVersion { .. }
                | C::SnapshotExists { .. }
                | C::SnapshotInUse { .. }
                | C::Layout { .. },
            ) => self,
            other => SyncError::InRepo {
                repo: repo.to_string(),
                source: Box::new(other),
            },
        }
    }

    /// Whether retrying the request may help.
    pub fn is_retryable(&self) -> bool {
        match self {
            SyncError::Status { status, .. } => *status == 429 || *status >= 500,
            SyncError::Transport { .. } => true,
            _ => false,
        }
    }

    /// How long the server asked to wait before the next attempt, if it did.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            SyncError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The upstream does not give this optional file: a local tree without it, or an HTTP
    /// client error (404, and the 403 that object stores answer for a missing key) other than
    /// a timeout or rate limit.
    pub fn is_absent(&self) -> bool {
        match self {
            SyncError::Status { status, .. } => {
                (400..500).contains(status) && !matches!(*status, 408 | 429)
            }
            SyncError::NotFound { .. } => true,
            _ => false,
        }
    }
}

pub type Result<T, E = SyncError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::SyncError;

    #[test]
    fn a_sync_error_names_its_repository_once() {
        let url = SyncError::NotFound {
            url: "file:///srv/dvd/repodata/repomd.xml".into(),
        };
        assert_eq!(
            url.in_repo("dvd").to_string(),
            "dvd: file:///srv/dvd/repodata/repomd.xml: no such file"
        );
        let named = SyncError::Setup {
            repo: "dvd".into(),
            reason: "no CA".into(),
        };
        assert_eq!(
            named.in_repo("dvd").in_repo("dvd").to_string(),
            "dvd: no CA"
        );
        assert!(matches!(
            SyncError::Interrupted.in_repo("dvd"),
            SyncError::Interrupted
        ));
    }
}
