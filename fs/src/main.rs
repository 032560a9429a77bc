//! `chantal-fs`: the read-only FUSE view of chantal's repositories. The command line, the
//! refresher thread and shutdown; everything else is in the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use chantal_common::catalogue::Catalogue;
use chantal_fs::adapter;
use chantal_fs::mount::{clear_stale_mount, detach};
use chantal_fs::on_demand::OnDemand;
use chantal_fs::prefill::{self, Prefiller};
use chantal_fs::refresher::{Kernel, Refresher, REFRESH};
use chantal_fs::source::SystemClock;
use chantal_fs::view::{self, View};
use clap::Parser;
use signal_hook::consts::{SIGINT, SIGTERM};

/// Serve every repository's versions as a read-only file system: MOUNTPOINT/<repo>/latest/,
/// snapshots/<name>/, env/<env>/ (the snapshot an environment points at), versions/<N>/ and
/// at/<YYYYMMDDTHHMMSSZ> (the version latest at that instant, UTC).
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

    /// How log lines on standard error look: plain lines (journald), or one JSON object per
    /// line (time, level, repo, phase, message) for log shippers.
    #[arg(long, env = "CHANTAL_LOG_FORMAT", default_value = "human", value_name = "FORMAT",
          value_parser = ["human", "json"])]
    log_format: String,

    /// Print the man page (roff) on standard output and exit: for packagers.
    #[arg(long, hide = true)]
    man_page: bool,

    /// Threads answering the kernel's requests (each request wakes one). On a 2-CPU virtual
    /// machine 4 read many small files fastest without halt polling, 2 with it (see
    /// docs/PERFORMANCE.md).
    #[arg(long, value_name = "N", default_value_t = 4,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: u16,

    /// Files at least this large (bytes) are read with FUSE passthrough, straight from the
    /// pool file; smaller ones through the daemon once, then from the mount's page cache
    /// (faster for a client that opens the same small files again and again without keeping
    /// them open). 0, the default: passthrough for every file.
    #[arg(long, value_name = "BYTES", default_value_t = adapter::PASSTHROUGH_MIN_SIZE)]
    passthrough_min_size: u64,

    /// When the latest/ of a repository read through the mount moves, give the kernel at
    /// most N entries of the new tree before readers ask for them (a listing of the tree
    /// through the mount), so that a first open of a new file costs one request to the daemon
    /// instead of two. Each entry holds about 1.1 KB of kernel memory, reclaimable, until
    /// latest moves again. 0 turns it off.
    #[arg(long, value_name = "N", default_value_t = prefill::DEFAULT_LIMIT)]
    prefill_entries: usize,

    /// Where to mount.
    #[arg(required_unless_present = "man_page")]
    mountpoint: Option<PathBuf>,
}

/// How long a request that needs the catalogue waits for it before failing with EIO.
const CATALOGUE_WAIT: Duration = Duration::from_secs(2);
/// After SIGTERM the mount is detached at once (new opens fail, open files keep working);
/// the daemon serves the files read through it this long at most, then exits. Files opened
/// with passthrough need no daemon: the kernel reads them from the pool file to the end.
const DRAIN: Duration = Duration::from_secs(30);
/// ... and until requests already under way when the mount was detached (an open resolving its
/// path) are answered: until no request is under way and none began for QUIET, at most SETTLE.
const SETTLE: Duration = Duration::from_millis(200);
const QUIET: Duration = Duration::from_millis(20);
/// How often the main thread looks for a signal, and whether the mount is still there.
const WATCH: Duration = Duration::from_millis(100);

fn init_human(filter: tracing_subscriber::EnvFilter) {
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    chantal_common::limits::raise_open_files();
    if cli.man_page {
        use clap::CommandFactory;
        let mut out = Vec::new();
        return match clap_mangen::Man::new(Cli::command()).render(&mut out) {
            Ok(()) => {
                use std::io::Write;
                let _ = std::io::stdout().write_all(&out);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("chantal-fs: error: {e}");
                ExitCode::from(1)
            }
        };
    }
    // fuser's own unmount at the end of a session fails by design here (the mount was
    // detached on SIGTERM already) and would log that it did.
    let filter = if cli.verbose {
        "info,chantal_fs=debug,fuser::mnt=error"
    } else {
        "info,fuser::mnt=error"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    if cli.log_format == "json" {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        tracing_subscriber::registry()
            .with(filter)
            .with(chantal_common::logging::JsonLines::stderr())
            .init();
    } else {
        init_human(filter);
    }
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if cli.log_format == "json" => {
            tracing::error!("{e}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("chantal-fs: error: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let mountpoint = cli
        .mountpoint
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("no mount point given"))?;
    let config = chantal_common::config::Config::load(&cli.config)?;
    let catalogue = Catalogue::open_waiting(&config.database_url(), CATALOGUE_WAIT)?;
    let catalogue_for_listening = catalogue.clone();
    clear_stale_mount(mountpoint)?;
    let view = Arc::new(View::new(
        Arc::new(catalogue),
        config.storage.base_path.join("data"),
        view::Options::default().fresh_inodes(),
        Arc::new(SystemClock),
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
    // A fetch that reports nothing for longer than the fetcher's own per-request timeout
    // (and a margin for its retries' pauses) has failed.
    let on_demand = Arc::new(OnDemand::new(
        config.fetch.socket.clone(),
        config.download.timeout + Duration::from_secs(30),
    ));
    let fs = adapter::ChantalFs::new(Arc::clone(&view), cli.passthrough_min_size, on_demand);
    let open_files = fs.open_files();
    let activity = fs.activity();
    let session = fuser::spawn_mount(fs, mountpoint, &mount)
        .map_err(|e| anyhow::anyhow!("cannot mount {}: {e}", mountpoint.display()))?;
    tracing::info!(
        "serving {} (request threads: {})",
        mountpoint.display(),
        cli.threads
    );
    let notifier = session.notifier();
    let prefill = if cli.prefill_entries > 0 {
        Some(Prefiller::spawn(
            mountpoint.to_path_buf(),
            cli.prefill_entries,
        )?)
    } else {
        None
    };
    let mut refresher = Refresher::new(Arc::clone(&view), std::time::Instant::now());
    std::thread::spawn(move || {
        // A new version is announced by the commit itself (LISTEN/NOTIFY, or SQLite's
        // data_version); the refresher asks every second anyway, which covers a lost
        // connection and anything else.
        let kernel = Notifier { notifier, prefill };
        let mut listener = catalogue_for_listening.listen_latest().ok();
        loop {
            let timeout = refresher
                .next_wake()
                .saturating_duration_since(std::time::Instant::now());
            let announced = match listener.as_mut().map(|l| l.wait(timeout)) {
                Some(Ok(announced)) => announced,
                Some(Err(_)) | None => {
                    std::thread::sleep(REFRESH);
                    listener = catalogue_for_listening.listen_latest().ok();
                    true
                }
            };
            refresher.turn(announced, std::time::Instant::now(), &kernel);
        }
    });
    let handle = signals.handle();
    // Until a signal, or until the mount goes away under the daemon (`fusermount3 -u`, `umount
    // -l`): a daemon serving nothing must not look alive, so it ends with an error and its
    // unit's Restart= mounts it again.
    let signal = loop {
        if let Some(sig) = signals.pending().next() {
            break sig;
        }
        if session.guard.is_finished() {
            handle.close();
            std::mem::forget(session);
            anyhow::bail!(
                "{} was unmounted by something else than chantal-fs: exiting",
                mountpoint.display()
            );
        }
        std::thread::sleep(WATCH);
    };
    tracing::info!(
        "signal {signal}: detaching {} (files open through the daemon are served up to {} s more)",
        mountpoint.display(),
        DRAIN.as_secs()
    );
    detach(mountpoint)?;
    // The session ends when the kernel drops the detached mount: when its last open file is
    // closed. The wait also ends when no open file needs the daemon (nginx keeps files open
    // between requests: waiting for them would stop every restart for the whole drain time),
    // on a second signal, or after the drain time.
    let deadline = std::time::Instant::now() + DRAIN;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_on_signal = Arc::clone(&stop);
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            stop_on_signal.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let settle = std::time::Instant::now() + SETTLE;
    while !session.guard.is_finished()
        && (open_files.counts().1 > 0
            || (std::time::Instant::now() < settle && !activity.quiet(QUIET)))
        && std::time::Instant::now() < deadline
        && !stop.load(std::sync::atomic::Ordering::SeqCst)
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    handle.close();
    let (passthrough, through_daemon) = open_files.counts();
    if !session.guard.is_finished() && through_daemon > 0 {
        tracing::warn!(
            "{through_daemon} files read through the daemon are still open under {}: exiting anyway (their readers get an error)",
            mountpoint.display()
        );
    } else if !session.guard.is_finished() && passthrough > 0 {
        tracing::info!(
            "exiting: what is still open under {} ({passthrough} files) reads straight from the pool",
            mountpoint.display()
        );
    }
    // The mount is detached already: dropping the session would try to unmount a path that
    // no longer holds it (and log that it could not).
    std::mem::forget(session);
    Ok(())
}

/// The kernel as the refresher sees it: fuser's notifier, and the prefilling thread (none
/// with `--prefill-entries 0`).
struct Notifier {
    notifier: fuser::Notifier,
    prefill: Option<std::sync::mpsc::Sender<String>>,
}

impl Kernel for Notifier {
    fn forget(&self, parent: u64, name: &str) {
        // ENOENT: the kernel held no such entry; nothing to forget.
        let _ = self
            .notifier
            .inval_entry(fuser::INodeNo(parent), std::ffi::OsStr::new(name));
    }

    fn prefill(&self, repo: &str) {
        if let Some(tx) = &self.prefill {
            let _ = tx.send(repo.to_string());
        }
    }
}
