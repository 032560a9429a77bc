//! A real chantal-fs mount for the tests.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Env;

/// A running chantal-fs; stopped (and the mount removed) when dropped.
pub struct Mount {
    /// The daemon (None once stopped; a test may replace it to remount).
    pub child: Option<Child>,
    dir: tempfile::TempDir,
    /// The daemon's stderr.
    log: tempfile::NamedTempFile,
}

impl Mount {
    /// Mounts with `env`'s configuration and waits for `ready` (a path below the mount).
    pub fn start(env: &Env, ready: &str) -> Mount {
        Mount::start_with(env, ready, &[])
    }

    /// The same, with more arguments for chantal-fs.
    pub fn start_with(env: &Env, ready: &str, args: &[&str]) -> Mount {
        let dir = tempfile::Builder::new()
            .prefix("chantal-mnt-")
            .tempdir()
            .unwrap();
        let log = tempfile::NamedTempFile::new().unwrap();
        let child = spawn(env, dir.path(), &log, args);
        let m = Mount {
            child: Some(child),
            dir,
            log,
        };
        wait_for("the mount", || m.path().join(ready).exists());
        m
    }

    /// Starts another daemon on this mount point (the previous one has detached it, and may
    /// still be serving its open files) and waits for `ready`.
    pub fn respawn(&mut self, env: &Env, ready: &str) {
        self.child = Some(spawn(env, self.path(), &self.log, &[]));
        wait_for("the new daemon", || self.path().join(ready).exists());
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    /// What the daemon logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap()
    }
    pub fn mounted(&self) -> bool {
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
        mounts.contains(&format!(" {} ", self.path().display()))
    }
    /// SIGTERM; returns the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        child.wait().unwrap()
    }
}

fn spawn(env: &Env, mountpoint: &Path, log: &tempfile::NamedTempFile, args: &[&str]) -> Child {
    Command::new(crate::bin("chantal-fs"))
        .arg("--config")
        .arg(env.config())
        .args(args)
        .arg(mountpoint)
        .env_remove("CHANTAL_DATABASE_URL")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap()
}

impl Drop for Mount {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
        if self.mounted() {
            let _ = Command::new("umount").arg("-l").arg(self.path()).status();
        }
    }
}

/// Polls `f` every 50 ms for up to 15 s.
pub fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
