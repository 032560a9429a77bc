//! Shared core of chantal: configuration, the PostgreSQL catalogue (all SQL lives there), the
//! sha256 pool, and the pieces `chantal` and `chantal-fs` both need.

pub mod catalogue;
pub mod config;
pub mod diff;
pub mod error;
pub mod export;
pub mod pool;
pub mod redact;
pub mod repodata;
pub mod retention;
pub mod rpm;
pub mod tree;

pub use error::{Error, Result};
