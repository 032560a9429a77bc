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
const GRACE: Duration = chantal_common::SERVING_GRACE;
/// How long a request that needs the catalogue waits for it before failing with EIO.
const CATALOGUE_WAIT: Duration = Duration::from_secs(2);
/// How often the catalogue is asked for new versions and snapshots.
const REFRESH: Duration = Duration::from_secs(1);
/// When latest moves, the kernel is told again this much later to forget the old entries: a
/// lookup answered just before the move (a tree being built) may have re-cached one.
const REINVALIDATE: Duration = Duration::from_secs(1);
/// After SIGTERM the mount is detached at once (new opens fail, open files keep working);
/// the daemon serves the open files this long at most, then exits.
const DRAIN: Duration = Duration::from_secs(30);

fn main() -> ExitCode {
    let cli = Cli::parse();
    // fuser's own unmount at the end of a session fails by design here (the mount was
    // detached on SIGTERM already) and would log that it did.
    let filter = if cli.verbose {
        "info,chantal_fs=debug,fuser::mnt=error"
    } else {
        "info,fuser::mnt=error"
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
        Ok(_) => {
            if let Some(m) = mounted_at(mountpoint) {
                anyhow::bail!(
                    "{} is already mounted ({}, source {}): stop whatever serves it (another chantal-fs?) first",
                    mountpoint.display(),
                    m.fstype,
                    m.source
                );
            }
            Ok(())
        }
    }
}

/// A mount found in /proc/self/mountinfo.
struct MountEntry {
    fstype: String,
    source: String,
}

/// The mount whose mount point is `path`, if any (a second daemon must not stack a mount on
/// a live one).
fn mounted_at(path: &Path) -> Option<MountEntry> {
    let path = std::fs::canonicalize(path).ok()?;
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    // "36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw": the mount point
    // is the fifth field (octal escapes for spaces and the like), then fstype and source
    // after the " - " separator.
    info.lines().rev().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let point = unescape_mountinfo(left.split(' ').nth(4)?);
        let mut right = right.split(' ');
        let (fstype, source) = (right.next()?, right.next()?);
        (Path::new(&point) == path).then(|| MountEntry {
            fstype: fstype.to_string(),
            source: unescape_mountinfo(source),
        })
    })
}

fn unescape_mountinfo(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 4 <= bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let v = (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Detaches the mount (MNT_DETACH): it leaves the directory tree at once, so new opens fail,
/// while files already open keep working until they are closed.
fn detach(mountpoint: &Path) -> anyhow::Result<()> {
    match rustix::mount::unmount(mountpoint, rustix::mount::UnmountFlags::DETACH) {
        Ok(()) => Ok(()),
        // Not root: fusermount3 may detach a FUSE mount of its user.
        Err(rustix::io::Errno::PERM) => {
            let ok = std::process::Command::new("fusermount3")
                .arg("-u")
                .arg("-z")
                .arg(mountpoint)
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                Ok(())
            } else {
                anyhow::bail!(
                    "cannot detach {}: fusermount3 -uz failed",
                    mountpoint.display()
                )
            }
        }
        Err(e) => anyhow::bail!("cannot detach {}: {e}", mountpoint.display()),
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
    let _ = view.refresh();
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
    let notifier = session.notifier();
    std::thread::spawn(move || {
        // A new version is announced by the commit itself (LISTEN/NOTIFY, or SQLite's
        // data_version); polling every second covers a lost connection and anything else.
        let mut listener = listen_from.listen_latest().ok();
        let mut again: Vec<(std::time::Instant, view::Invalidations)> = Vec::new();
        loop {
            match listener.as_mut().map(|l| l.wait(REFRESH.min(REINVALIDATE))) {
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    std::thread::sleep(REFRESH);
                    listener = listen_from.listen_latest().ok();
                }
            }
            let fresh = refresher.refresh();
            let now = std::time::Instant::now();
            let due: Vec<view::Invalidations> = {
                let (due, later): (Vec<_>, Vec<_>) =
                    again.drain(..).partition(|(at, _)| *at <= now);
                again = later;
                due.into_iter().map(|(_, i)| i).collect()
            };
            for (parent, name) in fresh.iter().chain(due.iter().flatten()) {
                // ENOENT: the kernel held no such entry; nothing to forget.
                let _ = notifier.inval_entry(fuser::INodeNo(*parent), std::ffi::OsStr::new(name));
            }
            if !fresh.is_empty() {
                again.push((now + REINVALIDATE, fresh));
            }
        }
    });
    let handle = signals.handle();
    if let Some(sig) = signals.forever().next() {
        tracing::info!(
            "signal {sig}: detaching {} (open files are served up to {} s more)",
            cli.mountpoint.display(),
            DRAIN.as_secs()
        );
    }
    detach(&cli.mountpoint)?;
    // The session ends when the kernel drops the detached mount: when its last open file is
    // closed. A second signal, or the drain time, ends the wait.
    let deadline = std::time::Instant::now() + DRAIN;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_on_signal = Arc::clone(&stop);
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            stop_on_signal.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    });
    while !session.guard.is_finished()
        && std::time::Instant::now() < deadline
        && !stop.load(std::sync::atomic::Ordering::SeqCst)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    handle.close();
    if !session.guard.is_finished() {
        tracing::warn!(
            "files under {} are still open: exiting anyway (their readers get an error)",
            cli.mountpoint.display()
        );
    }
    // The mount is detached already: dropping the session would try to unmount a path that
    // no longer holds it (and log that it could not).
    std::mem::forget(session);
    Ok(())
}
