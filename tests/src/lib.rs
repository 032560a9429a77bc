//! Test support for chantal's end-to-end tests: a catalogue per test on the run's backend (a
//! real PostgreSQL — a throwaway cluster per test process, or `$CHANTAL_TEST_DATABASE_URL` — or
//! the embedded SQLite default, see [`db`]), and helpers to run the real binaries against a
//! temporary configuration.
//!
//! Failing loudly is this crate's job, so panics are how it reports a broken setup.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod db;
pub mod dnf;
pub mod http;
pub mod mount;
pub mod nginx;
pub mod pg;
pub mod repo;
pub mod signing;
pub mod trees;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub use db::{Backend, Param, TestDb};

/// Path of a binary built by this workspace (`cargo build` puts it beside the test's `deps/`).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --workspace` before the end-to-end tests",
        path.display()
    );
    path
}

/// A temporary chantal installation: a config directory, a storage directory and a database.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub db: TestDb,
}

impl Env {
    /// A fresh installation whose `config.yaml` includes `conf.d/*.yaml`, on the run's
    /// backend: a PostgreSQL database, or (SQLite) no `database:` at all, so that the embedded
    /// default below the storage directory is what the binaries use.
    pub fn new() -> Env {
        match db::backend() {
            Backend::Postgres => Self::with_db(TestDb::new()),
            Backend::Sqlite => Self::sqlite(),
        }
    }

    /// A fresh installation on the embedded SQLite default, whatever the run's backend.
    pub fn sqlite() -> Env {
        let dir = tempdir();
        let db = TestDb::sqlite_default(&dir.path().join("storage"));
        Self::setup(dir, db)
    }

    /// A fresh installation on a given database.
    pub fn with_db(db: TestDb) -> Env {
        Self::setup(tempdir(), db)
    }

    fn setup(dir: tempfile::TempDir, db: TestDb) -> Env {
        let env = Env { dir, db };
        env.write(
            "config.yaml",
            &format!(
                "include: conf.d/*.yaml\nstorage:\n  base_path: {}\n{}",
                env.storage().display(),
                env.database_yaml()
            ),
        );
        std::fs::create_dir_all(env.dir.path().join("conf.d")).unwrap();
        env
    }

    /// The `database:` section of this installation's config (empty for the embedded default).
    pub fn database_yaml(&self) -> String {
        if self.db.explicit {
            format!("database:\n  url: \"{}\"\n", self.db.url)
        } else {
            String::new()
        }
    }

    /// Where this installation keeps its pool.
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("config.yaml")
    }

    /// Writes a file below the installation's directory.
    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    /// A `chantal` command with this installation's config and a clean environment.
    pub fn chantal_cmd(&self) -> Command {
        let mut cmd = Command::new(bin("chantal"));
        cmd.arg("--config")
            .arg(self.config())
            .env_remove("CHANTAL_CONFIG")
            .env_remove("CHANTAL_DATABASE_URL")
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1");
        cmd
    }

    /// Writes `conf.d/NAME.yaml` for a repository at `url` with extra YAML lines.
    pub fn repo(&self, name: &str, url: &str, extra: &str) {
        self.write(
            &format!("conf.d/{name}.yaml"),
            &format!("name: {name}\nupstream:\n  url: {url}\n{extra}"),
        );
    }

    /// Adds `environments: [NAMES]` to the main configuration.
    pub fn environments(&self, names: &[&str]) {
        let config = std::fs::read_to_string(self.config()).unwrap();
        self.write(
            "config.yaml",
            &format!("{config}environments: [{}]\n", names.join(", ")),
        );
    }

    /// `chantal repo sync --repo-id REPO --create-snapshot --snapshot-name NAME`, which must
    /// succeed; its standard output.
    pub fn sync_snapshot(&self, repo: &str, name: &str) -> String {
        self.chantal(&[
            "repo",
            "sync",
            "--repo-id",
            repo,
            "--create-snapshot",
            "--snapshot-name",
            name,
        ])
        .ok()
    }

    /// `chantal env promote --env ENV --snapshot SNAPSHOT --all`, which must succeed.
    pub fn promote(&self, env: &str, snapshot: &str) {
        self.chantal(&[
            "env",
            "promote",
            "--env",
            env,
            "--snapshot",
            snapshot,
            "--all",
        ])
        .ok();
    }

    /// Sets `download:` settings (fewer retries keep failure tests fast).
    pub fn download(&self, yaml: &str) {
        self.write("conf.d/00-download.yaml", &format!("download:\n{yaml}"));
    }

    /// Moves every version's retirement 11 minutes into the past, as if the serving grace
    /// period (10 minutes) had passed since latest last moved.
    pub fn age_retirements(&self) {
        self.db.execute_batch(match self.db.backend() {
            Backend::Postgres => {
                "UPDATE repository_versions SET retired_at = retired_at - interval '11 minutes'"
            }
            Backend::Sqlite => "UPDATE repository_versions SET retired_at = retired_at - 660000000",
        });
    }

    /// A catalogue query returning one i64 (or NULL as None).
    pub fn query_i64(&self, sql: &str) -> Option<i64> {
        self.db.i64(sql, &[])
    }

    /// The latest version of a repository.
    pub fn latest(&self, repo: &str) -> Option<i64> {
        self.db.i64(
            "SELECT latest_version FROM repositories WHERE name = $1",
            &[repo.into()],
        )
    }

    /// Location hrefs in a repository's latest version, sorted.
    pub fn latest_hrefs(&self, repo: &str) -> Vec<String> {
        let mut v = self.db.strings(
            "SELECT c.location_href FROM repository_content c JOIN repositories r ON r.id = c.repository_id
              WHERE r.name = $1 AND c.removed_in IS NULL",
            &[repo.into()],
        );
        v.sort();
        v
    }

    /// Starts `chantal repo sync --repo-id REPO` with its output captured.
    pub fn spawn_sync(&self, repo: &str) -> std::process::Child {
        self.chantal_cmd()
            .args(["repo", "sync", "--repo-id", repo])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Bytes of partial downloads (`*.part`) in the storage's temporary directory.
    pub fn partial_bytes(&self) -> u64 {
        std::fs::read_dir(self.storage().join("data/tmp"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.path().extension().is_some_and(|x| x == "part"))
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    }

    /// Runs `chantal ARGS` and returns its output.
    pub fn chantal(&self, args: &[&str]) -> Run {
        Run(self.chantal_cmd().args(args).output().unwrap())
    }
}

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("chantal-e2e-")
        .tempdir()
        .unwrap()
}

impl Default for Env {
    fn default() -> Self {
        Self::new()
    }
}

/// The outcome of running a binary, with assertions that print everything on failure.
pub struct Run(pub Output);

impl Run {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
    pub fn code(&self) -> Option<i32> {
        self.0.status.code()
    }
    /// Asserts exit status 0 and returns stdout.
    pub fn ok(&self) -> String {
        assert!(
            self.0.status.success(),
            "expected success, got {:?}\nstdout:\n{}\nstderr:\n{}",
            self.0.status,
            self.stdout(),
            self.stderr()
        );
        self.stdout()
    }
    /// Asserts a non-zero exit and returns stderr.
    pub fn fails(&self) -> String {
        assert!(
            !self.0.status.success(),
            "expected failure, got success\nstdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        self.stderr()
    }
}

/// Debian's Chromium, for tests of what a browser sees (`contrib/test.sh` installs it).
pub fn chromium() -> PathBuf {
    for p in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(p).is_file() {
            return PathBuf::from(p);
        }
    }
    panic!("chromium is missing: contrib/test.sh installs it (Debian package chromium)")
}

/// The suite runs two tests at a time. Tests that measure how soon something happens (a
/// promotion or commit reaching nginx within 0.2 s) hold this, and so do the tests that keep
/// both CPUs busy (a browser, a sync of thousands of packages), so that no such pair runs at
/// once and a latency test never measures a neighbour's load.
pub fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}
