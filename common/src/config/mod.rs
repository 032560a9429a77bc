//! Configuration: where it is read from, what it means, and every mistake reported as one line
//! naming the file, the line and the key.
//!
//! The main file holds global settings and `include:` globs; each included file holds either
//! global settings (the same keys; later files override earlier ones key by key) or exactly one
//! repository (a file with a top-level `name:`). Relative paths are taken relative to the
//! directory of the file that names them.

mod file;
mod load;
mod locate;
mod repo;
#[cfg(test)]
mod tests;
mod types;
mod yaml;

pub use file::{
    check_repo_name, check_snapshot_name, valid_name, MAX_REPO_NAME, MAX_SNAPSHOT_NAME,
    RESERVED_SNAPSHOT_NAMES,
};
pub use types::*;
