//! chantal-fs: every repository's latest version and snapshots as a read-only file system.
//!
//! - [`view`]: what the mount shows (inodes, trees, the grace period under `latest/`), over a
//!   [`source::Source`], with no FUSE types: tested without a kernel.
//! - [`source`]: the catalogue as a source, an in-memory one, and the view's clock.
//! - [`open_files`]: file handles and FUSE passthrough backing ids, counted per inode.
//! - [`adapter`]: the thin fuser callbacks over the view and the open files.
//! - [`on_demand`]: reads of files the pool does not hold yet, asked of `chantal fetchd`.
//! - [`mount`]: stale and live mounts, detaching at shutdown.
//! - [`refresher`]: keeping the view current and the kernel's caches right.
//! - [`prefill`]: giving the kernel a new `latest/` tree's entries before its readers ask.

pub mod adapter;
pub mod mount;
pub mod on_demand;
pub mod open_files;
pub mod prefill;
pub mod refresher;
pub mod source;
pub mod view;
