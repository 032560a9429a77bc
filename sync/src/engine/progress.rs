//! Progress: a live bar on a terminal, plain log lines otherwise (cron, CI). The engine reports
//! through [`Progress`]; only this module knows about indicatif.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    bar: Option<ProgressBar>,
    verbose: bool,
    done: AtomicU64,
    total: AtomicU64,
}

impl Progress {
    /// A bar only when stderr is a terminal and output is not quiet.
    pub fn new(quiet: bool, verbose: bool) -> Progress {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:.bold} {msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress {
            bar,
            verbose,
            done: AtomicU64::new(0),
            total: AtomicU64::new(0),
        }
    }

    /// A new phase ("metadata", "packages", "commit"), and the log line that describes it.
    pub fn phase(&self, repo: &str, phase: &str, line: &str) {
        match &self.bar {
            Some(bar) => {
                bar.set_prefix(repo.to_string());
                bar.set_message(phase.to_string());
                bar.suspend(|| tracing::info!("{line}"));
            }
            None => tracing::info!("{line}"),
        }
    }

    /// The download phase starts.
    pub fn downloads(&self, packages: u64, bytes: u64) {
        self.done.store(0, Ordering::Relaxed);
        self.total.store(packages, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.set_length(bytes);
            bar.set_position(0);
            bar.set_message(format!("packages 0/{packages}"));
        }
    }

    pub fn bytes(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    /// One package finished (or failed).
    pub fn package(&self, nevra: &str, result: Result<u64, &str>) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        let total = self.total.load(Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.set_message(format!("packages {done}/{total}"));
        }
        if self.verbose {
            let line = match result {
                Ok(bytes) => format!("[{done}/{total}] {nevra} ({bytes} bytes)"),
                Err(e) => format!("[{done}/{total}] {nevra} FAILED: {e}"),
            };
            match &self.bar {
                Some(bar) => bar.suspend(|| eprintln!("{line}")),
                None => tracing::info!("{line}"),
            }
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
