//! The limit on open files. systemd gives services, and login sessions give users, a soft limit
//! of 1024 with a hard limit far above it (524,288 on systemd's defaults), expecting programs
//! that need more to raise their own soft limit, as Go's runtime does at start. A sync holds a
//! descriptor per verified download waiting for its batch (each keeps its partial file's lock),
//! and chantal-fs one per file served through it, so both raise it.

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

/// Raises the soft limit on open files to the hard limit; returns the soft limit now in force.
/// A refusal leaves the limit as it was.
pub fn raise_open_files() -> u64 {
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            },
        );
    }
    open_files_limit()
}

/// The soft limit on open files (`u64::MAX` when unlimited).
pub fn open_files_limit() -> u64 {
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    #[test]
    fn raising_never_lowers() {
        let before = super::open_files_limit();
        assert!(super::raise_open_files() >= before);
    }
}
