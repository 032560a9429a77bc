//! Shared core of chantal: configuration, the catalogue (embedded SQLite or PostgreSQL; all SQL
//! lives there), the sha256 pool, and the pieces `chantal` and `chantal-fs` both need.

pub mod bundle;
pub mod catalogue;
pub mod config;
pub mod diff;
pub mod error;
pub mod export;
pub mod fetch;
pub mod integrity;
pub mod limits;
pub mod logging;
pub mod names;
pub mod pool;
pub mod redact;
pub mod repodata;
pub mod retention;
pub mod rpm;
pub mod sha256;
pub mod tree;
pub mod tree_manifest;

pub use error::{Error, Result};
pub use sha256::Sha256;

/// How long a version that stopped being latest stays reachable under `latest/` (chantal-fs)
/// and as the previous exported tree: a client that fetched its repomd.xml just before the
/// switch can still fetch every file it names. Cleanup keeps such versions that long.
pub const SERVING_GRACE: std::time::Duration = std::time::Duration::from_secs(600);
