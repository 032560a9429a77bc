//! `chantal-fs`: the read-only FUSE view of chantal's repositories.

mod fuse;
mod view;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use chantal_common::catalogue::Catalogue;
use clap::Parser;
use signal_hook::consts::{SIGINT, SIGTERM};

/// Serve every repository's latest version and snapshots as a read-only file system:
/// MOUNTPOINT/<repo>/latest/ and MOUNTPOINT/<repo>/snapshots/<name>/.
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

    /// Only the mounting user may read the mount (by default everyone may, e.g. nginx).
    #[arg(long)]
    no_allow_other: bool,

    /// Log every lookup.
    #[arg(short, long)]
    verbose: bool,

    /// Threads answering the kernel's requests (each request wakes one). On a 2-CPU virtual
    /// machine 4 read many small files fastest without halt polling, 2 with it (see
    /// docs/PERFORMANCE.md).
    #[arg(long, value_name = "N", default_value_t = 4,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: u16,

    /// Where to mount.
    mountpoint: PathBuf,
}

/// How long a version that stopped being latest stays reachable under `latest/`.
const GRACE: Duration = Duration::from_secs(600);
/// How long a request that needs the catalogue waits for it before failing with EIO.
const CATALOGUE_WAIT: Duration = Duration::from_secs(2);
/// How often the catalogue is asked for new versions and snapshots.
const REFRESH: Duration = Duration::from_secs(1);

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = if cli.verbose {
        "info,chantal_fs=debug"
    } else {
        "info"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chantal-fs: error: {e}");
            ExitCode::from(1)
        }
    }
}

/// A mount left behind by a daemon that died answers "transport endpoint is not connected":
/// unmount it so this one can take its place.
fn clear_stale_mount(mountpoint: &Path) -> anyhow::Result<()> {
    // A directory read always reaches the file system; a stat may be answered from the
    // kernel's attribute cache even when the daemon is gone.
    match std::fs::read_dir(mountpoint).and_then(|_| std::fs::metadata(mountpoint)) {
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
            tracing::warn!(
                "{}: stale mount of a dead daemon, unmounting it",
                mountpoint.display()
            );
            let ok = std::process::Command::new("umount")
                .arg("-l")
                .arg(mountpoint)
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if !ok {
                anyhow::bail!(
                    "{} is a stale mount and could not be unmounted: run `umount -l {}`",
                    mountpoint.display(),
                    mountpoint.display()
                );
            }
            Ok(())
        }
        Err(e) => anyhow::bail!("cannot use mount point {}: {e}", mountpoint.display()),
        Ok(m) if !m.is_dir() => anyhow::bail!("{} is not a directory", mountpoint.display()),
        Ok(_) => Ok(()),
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let config = chantal_common::config::Config::load(&cli.config)?;
    let catalogue = Catalogue::open_waiting(&config.database_url(), CATALOGUE_WAIT)?;
    let catalogue_for_listening = catalogue.clone();
    clear_stale_mount(&cli.mountpoint)?;
    let view = Arc::new(view::View::new(
        catalogue,
        config.storage.base_path.join("data"),
        GRACE,
    ));
    view.refresh();
    // Signals are taken before mounting so none is lost; the handler thread only sets state.
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])?;
    let mut mount = fuser::Config::default();
    mount.mount_options.extend([
        fuser::MountOption::RO,
        fuser::MountOption::FSName("chantal".into()),
        fuser::MountOption::NoDev,
        fuser::MountOption::NoSuid,
    ]);
    mount.acl = if cli.no_allow_other {
        fuser::SessionACL::Owner
    } else {
        fuser::SessionACL::All
    };
    // The default is more threads than cores: a release or a tree build in one thread must not
    // hold up the lookups and opens of another client (measured on a 2-core virtual machine
    // without halt polling: 4 beat 1 and 2; with halt polling 2 beat 4).
    mount.n_threads = Some(usize::from(cli.threads));
    let session = fuser::spawn_mount(
        fuse::ChantalFs::new(Arc::clone(&view)),
        &cli.mountpoint,
        &mount,
    )
    .map_err(|e| anyhow::anyhow!("cannot mount {}: {e}", cli.mountpoint.display()))?;
    tracing::info!(
        "serving {} (request threads: {})",
        cli.mountpoint.display(),
        cli.threads
    );
    let refresher = Arc::clone(&view);
    let listen_from = catalogue_for_listening;
    std::thread::spawn(move || {
        // A new version is announced by the commit itself (LISTEN/NOTIFY); polling every
        // second covers a lost connection and anything else.
        let mut listener = listen_from.listen_latest().ok();
        loop {
            match listener.as_mut().map(|l| l.wait(REFRESH)) {
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    std::thread::sleep(REFRESH);
                    listener = listen_from.listen_latest().ok();
                }
            }
            refresher.refresh();
        }
    });
    if let Some(sig) = signals.forever().next() {
        tracing::info!("signal {sig}: unmounting {}", cli.mountpoint.display());
    }
    session
        .umount_and_join()
        .map_err(|e| anyhow::anyhow!("cannot unmount {}: {e}", cli.mountpoint.display()))?;
    Ok(())
}
