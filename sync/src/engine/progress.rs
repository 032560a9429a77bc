//! Progress: a live bar during downloads on a terminal, plain log lines otherwise (cron, CI).
//! The engine reports through [`Progress`]; only this module knows about indicatif.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Cheap to clone: the download tasks, which run on the runtime's workers, each hold one.
#[derive(Clone)]
pub struct Progress(Arc<State>);

struct State {
    /// Whether a bar may be drawn (stderr is a terminal and output is not quiet).
    live: bool,
    /// The bar, while packages download.
    bar: Mutex<Option<ProgressBar>>,
    verbose: bool,
    done: AtomicU64,
    total: AtomicU64,
}

impl Progress {
    pub fn new(quiet: bool, verbose: bool) -> Progress {
        Progress(Arc::new(State {
            live: !quiet && std::io::stderr().is_terminal(),
            bar: Mutex::new(None),
            verbose,
            done: AtomicU64::new(0),
            total: AtomicU64::new(0),
        }))
    }

    fn with_bar(&self, f: impl FnOnce(&ProgressBar)) {
        if let Ok(guard) = self.0.bar.lock() {
            if let Some(bar) = guard.as_ref() {
                f(bar);
            }
        }
    }

    /// A new phase: one log line.
    pub fn phase(&self, line: &str) {
        tracing::info!("{line}");
    }

    /// The download phase starts: on a terminal, a bar with packages, bytes, rate and ETA.
    pub fn downloads(&self, repo: &str, packages: u64, bytes: u64) {
        self.0.done.store(0, Ordering::Relaxed);
        self.0.total.store(packages, Ordering::Relaxed);
        if !self.0.live || packages == 0 {
            return;
        }
        let bar = ProgressBar::with_draw_target(Some(bytes), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:.bold} {msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(repo.to_string());
        bar.set_message(format!("packages 0/{packages}"));
        bar.enable_steady_tick(Duration::from_millis(200));
        if let Ok(mut guard) = self.0.bar.lock() {
            *guard = Some(bar);
        }
    }

    /// A long task over `bytes` that is not a sync (`pool verify`): on a terminal, a bar
    /// with bytes, rate and ETA.
    pub fn task(&self, what: &str, bytes: u64) {
        if !self.0.live || bytes == 0 {
            return;
        }
        let bar = ProgressBar::with_draw_target(Some(bytes), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:.bold} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(what.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        if let Ok(mut guard) = self.0.bar.lock() {
            *guard = Some(bar);
        }
    }

    pub fn bytes(&self, n: u64) {
        self.with_bar(|bar| bar.inc(n));
    }

    /// One package finished (or failed).
    pub fn package(&self, nevra: &str, result: Result<u64, &str>) {
        let done = self.0.done.fetch_add(1, Ordering::Relaxed) + 1;
        let total = self.0.total.load(Ordering::Relaxed);
        self.with_bar(|bar| bar.set_message(format!("packages {done}/{total}")));
        if self.0.verbose {
            let line = match result {
                Ok(bytes) => format!("[{done}/{total}] {nevra} ({bytes} bytes)"),
                Err(e) => format!("[{done}/{total}] {nevra} FAILED: {e}"),
            };
            let mut printed = false;
            self.with_bar(|bar| {
                bar.suspend(|| tracing::info!("{line}"));
                printed = true;
            });
            if !printed {
                tracing::info!("{line}");
            }
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Ok(mut guard) = self.0.bar.lock() {
            if let Some(bar) = guard.take() {
                bar.finish_and_clear();
            }
        }
    }
}
