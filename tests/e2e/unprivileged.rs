//! The main path as a user without privileges who owns the storage directory: init, sync,
//! snapshot, status, verify, search, backup, and chantal-fs mounting through fusermount3 and
//! serving the tree to that user. Run as root (CI), the commands run as a system user
//! `chantal-e2e` made for this; run as anyone else, as that user.

use std::path::Path;
use std::process::{Command, Output};

use chantal_tests::db::Backend;
use chantal_tests::mount::wait_for;
use chantal_tests::repo::{up, upstream_dir};
use chantal_tests::{bin, Env};

const USER: &str = "chantal-e2e";

fn root() -> bool {
    let id = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&id.stdout).trim() == "0"
}

/// The user the commands run as; made once when running as root.
fn ensure_user() {
    if !root() {
        return;
    }
    let exists = Command::new("getent")
        .args(["passwd", USER])
        .output()
        .unwrap()
        .status
        .success();
    if !exists {
        // Two tests at once may both try: one wins, the other finds it made.
        let _ = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                USER,
            ])
            .status();
    }
}

/// `program args` as the unprivileged user.
fn as_user(program: &Path) -> Command {
    if root() {
        let mut c = Command::new("runuser");
        c.args(["-u", USER, "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn chown_to_user(path: &Path) {
    if root() {
        let ok = Command::new("chown")
            .args(["-R", &format!("{USER}:")])
            .arg(path)
            .status()
            .unwrap()
            .success();
        assert!(ok, "chown {}", path.display());
    }
}

fn open_up(path: &Path) {
    let ok = Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "chmod {}", path.display());
}

fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_main_path_works_for_a_user_who_owns_the_storage() {
    ensure_user();
    let dir = upstream_dir();
    up(
        dir.path(),
        &["hello-1.0-1.noarch.rpm", "lib-1.0-1.x86_64.rpm"],
    );
    open_up(dir.path());
    let env = Env::new();
    env.repo("r", &format!("file://{}", dir.path().display()), "");
    open_up(env.dir.path());
    std::fs::create_dir_all(env.storage()).unwrap();
    chown_to_user(&env.storage());
    let chantal = |args: &[&str]| {
        as_user(&bin("chantal"))
            .arg("--config")
            .arg(env.config())
            .args(args)
            .env_remove("CHANTAL_CONFIG")
            .env_remove("CHANTAL_DATABASE_URL")
            .output()
            .unwrap()
    };
    ok(chantal(&["init"]), "init");
    let out = ok(
        chantal(&[
            "repo",
            "sync",
            "--repo-id",
            "r",
            "--create-snapshot",
            "--snapshot-name",
            "s1",
        ]),
        "sync",
    );
    assert!(out.contains("r: version 1"), "{out}");
    ok(chantal(&["status"]), "status");
    ok(chantal(&["pool", "verify"]), "pool verify");
    let out = ok(chantal(&["package", "search", "hello"]), "package search");
    assert!(out.contains("hello-1.0-1.noarch"), "{out}");
    ok(chantal(&["snapshot", "list"]), "snapshot list");
    ok(chantal(&["db", "cleanup", "--dry-run"]), "db cleanup");
    if env.db.backend() == Backend::Sqlite {
        let backup = env.storage().join("backup.db");
        ok(
            chantal(&["db", "backup", backup.to_str().unwrap()]),
            "db backup",
        );
    }
    // Nothing the user's commands wrote belongs to anyone else.
    if root() {
        let foreign = Command::new("find")
            .arg(env.storage())
            .args(["-not", "-user", USER])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&foreign.stdout),
            "",
            "files not owned by {USER}"
        );
    }

    // chantal-fs as that user: fusermount3 mounts (without allow_other, which needs
    // user_allow_other in /etc/fuse.conf), and FUSE passthrough, which needs CAP_SYS_ADMIN, is
    // refused: files are read through the daemon.
    let mnt = env.dir.path().join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    chown_to_user(&mnt);
    let log = env.dir.path().join("fs.log");
    let log_file = std::fs::File::create(&log).unwrap();
    let mut fs = as_user(&bin("chantal-fs"))
        .arg("--config")
        .arg(env.config())
        .arg("--no-allow-other")
        .arg(&mnt)
        .env_remove("CHANTAL_CONFIG")
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .spawn()
        .unwrap();
    let repomd = mnt.join("r/latest/repodata/repomd.xml");
    let read = |path: &Path| {
        as_user(Path::new("/usr/bin/cat"))
            .arg(path)
            .output()
            .unwrap()
    };
    wait_for("the unprivileged mount", || read(&repomd).status.success());
    let served = ok(read(&repomd), "reading repomd.xml through the mount");
    assert_eq!(
        served,
        std::fs::read_to_string(dir.path().join("repodata/repomd.xml")).unwrap()
    );
    let rpm = mnt.join("r/snapshots/s1/Packages/hello-1.0-1.noarch.rpm");
    let bytes = as_user(Path::new("/usr/bin/cat"))
        .arg(&rpm)
        .output()
        .unwrap();
    assert!(
        bytes.status.success(),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    assert_eq!(
        bytes.stdout,
        std::fs::read(dir.path().join("Packages/hello-1.0-1.noarch.rpm")).unwrap()
    );
    // SIGTERM to the daemon (not to runuser, which would kill it 2 s later): it detaches its
    // mount (through fusermount3) and exits.
    let daemon = if root() {
        let children = Command::new("pgrep")
            .args(["-P", &fs.id().to_string()])
            .output()
            .unwrap();
        String::from_utf8_lossy(&children.stdout).trim().to_string()
    } else {
        fs.id().to_string()
    };
    assert!(
        !daemon.is_empty(),
        "no chantal-fs process under {}",
        fs.id()
    );
    let ok_kill = Command::new("kill")
        .args(["-TERM", &daemon])
        .status()
        .unwrap()
        .success();
    assert!(ok_kill);
    let status = fs.wait().unwrap();
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(
        !mounts.contains(mnt.to_str().unwrap()),
        "still mounted: {}",
        std::fs::read_to_string(&log).unwrap()
    );
}
