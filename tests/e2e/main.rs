//! chantal end to end: the real binaries against a real PostgreSQL or the embedded SQLite
//! catalogue, real HTTP(S) upstreams on 127.0.0.1, a real FUSE mount, nginx and dnf. One test
//! binary (it links once), a module per story.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bundles;
mod catalogue;
mod cleanup;
mod cli;
mod copy;
mod defects;
mod environments;
mod export;
mod fs;
mod hostile;
mod hosts;
mod installer;
mod on_demand;
mod operations;
mod packages;
mod provenance;
mod retention;
mod serving;
mod signatures;
mod snapshots;
mod sync;
mod unprivileged;
mod upgrade;
