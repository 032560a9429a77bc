//! `chantal-fs`: the read-only FUSE view of chantal's repositories.
//!
//! This release parses and checks its arguments and configuration only; serving arrives with
//! the FUSE daemon itself.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Serve every repository's latest version and snapshots as a read-only file system.
#[derive(Debug, Parser)]
#[command(name = "chantal-fs", version, max_term_width = 100)]
struct Cli {
    /// Configuration file.
    #[arg(
        long,
        env = "CHANTAL_CONFIG",
        default_value = chantal_common::config::DEFAULT_CONFIG_PATH,
        value_name = "FILE"
    )]
    config: PathBuf,

    /// Let other users (nginx) read the mount. On by default.
    #[arg(long, default_value_t = true, overrides_with = "no_allow_other")]
    allow_other: bool,

    /// Only the mounting user may read the mount.
    #[arg(long)]
    no_allow_other: bool,

    /// Log every lookup.
    #[arg(short, long)]
    verbose: bool,

    /// Where to mount.
    mountpoint: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(err) = chantal_common::config::Config::load(&cli.config) {
        eprintln!("chantal-fs: error: {err}");
        return ExitCode::from(1);
    }
    eprintln!(
        "chantal-fs: error: serving {} is not available in this release of chantal",
        cli.mountpoint.display()
    );
    ExitCode::from(1)
}
