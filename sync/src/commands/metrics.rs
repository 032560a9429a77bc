//! `metrics.textfile`: node_exporter's textfile collector format, rewritten after every sync
//! and `pool verify`. The figures come from the catalogue, so whichever command writes the
//! file, it describes every configured repository; the last `pool verify`'s figures are
//! carried over from the previous file by commands that did not verify. The file is replaced
//! atomically (a temporary file beside it, renamed), so the collector never reads half of it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use chrono::{DateTime, Utc};

use super::Context;
use chantal_common::catalogue::{Catalogue, SyncHealth, SyncRecord, SyncStatus};

/// What a `pool verify` found, for the metrics file.
pub struct VerifyFigures {
    pub files: usize,
    pub bytes: u64,
    /// Problems left (repaired ones not counted).
    pub errors: usize,
    pub at: DateTime<Utc>,
}

/// The prefix of the lines a `pool verify` writes (carried over by other commands).
const VERIFY_PREFIX: &str = "chantal_pool_verify_";

/// Rewrites `metrics.textfile` if configured. A failure is a warning: the work it reports on
/// is done and stays done.
pub fn write(ctx: &Context, catalogue: &Catalogue, verify: Option<&VerifyFigures>) {
    let Some(path) = &ctx.config.metrics.textfile else {
        return;
    };
    if let Err(e) = render(ctx, catalogue, verify, path).and_then(|text| replace(path, &text)) {
        crate::output::warn(format_args!(
            "metrics.textfile {}: not written: {e:#}",
            path.display()
        ));
    }
}

fn render(
    ctx: &Context,
    catalogue: &Catalogue,
    verify: Option<&VerifyFigures>,
    path: &Path,
) -> anyhow::Result<String> {
    let summaries: BTreeMap<String, _> = catalogue
        .repository_summaries()?
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect();
    let health: BTreeMap<String, SyncHealth> = catalogue
        .sync_health()?
        .into_iter()
        .map(|h| (h.repository.clone(), h))
        .collect();
    let mut m = Metrics::default();
    for repo in &ctx.config.repositories {
        let l = label(&repo.name);
        let s = summaries.get(&repo.name);
        let h = health.get(&repo.name);
        m.gauge(
            "chantal_repository_enabled",
            "Whether the repository is enabled (1) or not (0).",
            &l,
            u8::from(repo.enabled),
        );
        m.gauge(
            "chantal_repository_latest_version",
            "The repository's latest version number (0: none yet).",
            &l,
            s.and_then(|s| s.latest_version).unwrap_or(0),
        );
        m.gauge(
            "chantal_repository_latest_packages",
            "Packages in the repository's latest version.",
            &l,
            s.map_or(0, |s| s.packages),
        );
        m.gauge(
            "chantal_repository_latest_bytes",
            "Bytes of the packages in the repository's latest version.",
            &l,
            s.map_or(0, |s| s.total_size),
        );
        m.gauge(
            "chantal_repository_snapshots",
            "Snapshots of the repository.",
            &l,
            s.map_or(0, |s| s.snapshots),
        );
        let Some(h) = h else { continue };
        if let Some(ok) = &h.last_success {
            m.gauge(
                "chantal_sync_last_success_timestamp_seconds",
                "When the repository's last sync that ended well finished (Unix time).",
                &l,
                seconds(ok.finished_at.unwrap_or(ok.started_at)),
            );
        }
        if let Some(last) = &h.last_finished {
            attempt(&mut m, &l, last);
        }
    }
    let (files, bytes) = catalogue.pool_totals()?;
    m.gauge(
        "chantal_pool_files",
        "Files the pool holds (catalogue records).",
        "",
        files,
    );
    m.gauge(
        "chantal_pool_bytes",
        "Bytes the pool holds (catalogue records).",
        "",
        bytes,
    );
    let mut text = m.render();
    match verify {
        Some(v) => {
            let mut v_m = Metrics::default();
            v_m.gauge(
                "chantal_pool_verify_last_run_timestamp_seconds",
                "When the last `chantal pool verify` ran (Unix time).",
                "",
                seconds(v.at),
            );
            v_m.gauge(
                "chantal_pool_verify_files",
                "Files the last `chantal pool verify` checked.",
                "",
                v.files,
            );
            v_m.gauge(
                "chantal_pool_verify_bytes",
                "Bytes the last `chantal pool verify` checked.",
                "",
                v.bytes,
            );
            v_m.gauge("chantal_pool_verify_errors", "Problems the last `chantal pool verify` left (missing, damaged, unreferenced files).", "", v.errors);
            text.push_str(&v_m.render());
        }
        None => text.push_str(&carried_over(path)),
    }
    Ok(text)
}

/// The last finished run's figures.
fn attempt(m: &mut Metrics, l: &str, last: &SyncRecord) {
    let at = last.finished_at.unwrap_or(last.started_at);
    m.gauge(
        "chantal_sync_last_attempt_timestamp_seconds",
        "When the repository's last sync finished, however it ended (Unix time).",
        l,
        seconds(at),
    );
    for status in [
        SyncStatus::Success,
        SyncStatus::UpToDate,
        SyncStatus::Partial,
        SyncStatus::Failed,
        SyncStatus::Interrupted,
    ] {
        m.gauge(
            "chantal_sync_last_status",
            "How the repository's last sync ended: 1 for its status, 0 for the others.",
            &format!("{l},status=\"{}\"", status.as_str()),
            u8::from(last.status == status),
        );
    }
    let duration = at
        .signed_duration_since(last.started_at)
        .num_milliseconds()
        .max(0) as f64
        / 1000.0;
    m.gauge(
        "chantal_sync_last_duration_seconds",
        "How long the repository's last sync took.",
        l,
        duration,
    );
    m.gauge(
        "chantal_sync_last_packages_added",
        "Packages the last sync added to the repository.",
        l,
        last.added,
    );
    m.gauge(
        "chantal_sync_last_packages_removed",
        "Packages the last sync removed from the repository.",
        l,
        last.removed,
    );
    m.gauge(
        "chantal_sync_last_packages_failed",
        "Packages the last sync could not download or verify.",
        l,
        last.failed,
    );
    m.gauge(
        "chantal_sync_last_downloaded_bytes",
        "Bytes the last sync downloaded.",
        l,
        last.bytes_downloaded,
    );
}

/// The `pool verify` lines of the file as it is (with their HELP and TYPE lines).
fn carried_over(path: &Path) -> String {
    let Ok(old) = std::fs::read_to_string(path) else {
        return String::new();
    };
    let mut out = String::new();
    for line in old.lines() {
        let name = line
            .strip_prefix("# HELP ")
            .or_else(|| line.strip_prefix("# TYPE "))
            .unwrap_or(line);
        if name.starts_with(VERIFY_PREFIX) {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

fn replace(path: &Path, text: &str) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".chantal-metrics-")
        .tempfile_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    // node_exporter runs as another user.
    use std::os::unix::fs::PermissionsExt;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    tmp.persist(path)?;
    Ok(())
}

fn seconds(t: DateTime<Utc>) -> f64 {
    t.timestamp_micros() as f64 / 1e6
}

/// `repository="NAME"`, escaped as the exposition format wants.
fn label(repository: &str) -> String {
    let escaped = repository
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n");
    format!("repository=\"{escaped}\"")
}

/// The exposition text, each metric's HELP and TYPE written before its first sample (the
/// format wants a metric's samples together: callers add a metric for every repository in
/// turn, so samples are grouped here by name).
#[derive(Default)]
struct Metrics {
    order: Vec<&'static str>,
    samples: BTreeMap<&'static str, (&'static str, Vec<String>)>,
}

impl Metrics {
    fn gauge(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: &str,
        value: impl Into<Value>,
    ) {
        let value = value.into().0;
        let line = if labels.is_empty() {
            format!("{name} {value}")
        } else {
            format!("{name}{{{labels}}} {value}")
        };
        if !self.samples.contains_key(name) {
            self.order.push(name);
        }
        self.samples
            .entry(name)
            .or_insert((help, Vec::new()))
            .1
            .push(line);
    }

    fn render(&self) -> String {
        let mut out = String::new();
        for name in &self.order {
            if let Some((help, lines)) = self.samples.get(name) {
                let _ = writeln!(out, "# HELP {name} {help}");
                let _ = writeln!(out, "# TYPE {name} gauge");
                for l in lines {
                    let _ = writeln!(out, "{l}");
                }
            }
        }
        out
    }
}

/// A sample value as the exposition format writes it.
struct Value(String);

macro_rules! value_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Value {
                Value(v.to_string())
            }
        }
    )*};
}
value_from!(u8, i64, usize, u64);

impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value(format!("{v}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_of_a_metric_stay_together() {
        let mut m = Metrics::default();
        m.gauge("a", "A.", &label("r1"), 1u8);
        m.gauge("b", "B.", &label("r1"), 2.5);
        m.gauge("a", "A.", &label("r\"2"), 3i64);
        assert_eq!(
            m.render(),
            "# HELP a A.\n# TYPE a gauge\na{repository=\"r1\"} 1\na{repository=\"r\\\"2\"} 3\n\
             # HELP b B.\n# TYPE b gauge\nb{repository=\"r1\"} 2.5\n"
        );
    }

    #[test]
    fn verify_lines_are_carried_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chantal.prom");
        std::fs::write(
            &path,
            "# HELP chantal_pool_files x\n# TYPE chantal_pool_files gauge\nchantal_pool_files 3\n\
             # HELP chantal_pool_verify_errors y\n# TYPE chantal_pool_verify_errors gauge\nchantal_pool_verify_errors 2\n",
        )
        .unwrap();
        assert_eq!(
            carried_over(&path),
            "# HELP chantal_pool_verify_errors y\n# TYPE chantal_pool_verify_errors gauge\nchantal_pool_verify_errors 2\n"
        );
        assert_eq!(carried_over(&dir.path().join("none")), "");
    }
}
