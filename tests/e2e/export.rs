//! The hardlink export: real files sharing the pool's inodes, switched atomically, served by
//! nginx to dnf, identical to chantal-fs's view, repaired by `repo export`, never half-published.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use chantal_tests::dnf::{materialize, repoquery};
use chantal_tests::mount::Mount;
use chantal_tests::repo::{synth_pkgs, synthetic_repo, up, upstream_dir, SynthOptions};
use chantal_tests::trees::{files, read_consistent_snapshot_of_latest};
use chantal_tests::Env;

/// Every file below `root` (following the top symlink) with its inode.
fn inodes(root: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p: PathBuf = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.push((rel, m.ino()));
            }
        }
    }
    out.sort();
    out
}

fn publish_yaml(root: &Path, extra: &str) -> String {
    format!(
        "publish:\n  latest_path: {}\n  snapshots_path: {}\n{extra}",
        root.join("r").display(),
        root.join("r-snapshots").display()
    )
}

#[test]
fn exports_hardlinks_that_nginx_serves_to_dnf_and_equal_chantal_fs() {
    use chantal_tests::nginx::Nginx;
    let upstream = upstream_dir();
    up(
        upstream.path(),
        &[
            "hello-1.0-1.noarch.rpm",
            "lib-1.0-1.x86_64.rpm",
            "tool-2.0-1.aarch64.rpm",
        ],
    );
    let env = Env::new();
    let publ = env.storage().parent().unwrap().join("published");
    env.repo(
        "r",
        &format!("file://{}", upstream.path().display()),
        &publish_yaml(&publ, ""),
    );
    env.chantal(&["init"]).ok();
    let out = env
        .chantal(&[
            "repo",
            "sync",
            "--repo-id",
            "r",
            "--create-snapshot",
            "--snapshot-name",
            "s1",
        ])
        .ok();
    assert!(out.contains("exported version 1"), "{out}");
    let latest = publ.join("r");
    assert!(std::fs::symlink_metadata(&latest)
        .unwrap()
        .file_type()
        .is_symlink());

    // Every file is a hardlink of its pool file (a materialised tree links the same inodes).
    let v1 = materialize(&env, "r", Some(1));
    assert_eq!(inodes(&latest.join(".")), inodes(v1.path()));
    assert_eq!(inodes(&publ.join("r-snapshots/s1")), inodes(v1.path()));

    up(
        upstream.path(),
        &["hello-1.1-1.noarch.rpm", "lib-1.0-1.x86_64.rpm"],
    );
    env.chantal(&["repo", "sync", "--repo-id", "r"]).ok();
    let v2 = materialize(&env, "r", Some(2));
    assert_eq!(inodes(&latest.join(".")), inodes(v2.path()));
    assert_eq!(
        inodes(&publ.join("r-snapshots/s1")),
        inodes(v1.path()),
        "snapshot unchanged"
    );
    let kept = std::fs::read_dir(&publ)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".r.v")
        })
        .count();
    assert_eq!(kept, 2, "the previous tree stays for the grace period");

    // nginx -> dnf: exactly the expected sets.
    let nginx = Nginx::shipped(&publ);
    assert_eq!(
        repoquery(&nginx.url("/r/"), "x86_64"),
        ["hello-0:1.1-1.noarch", "lib-0:1.0-1.x86_64"]
    );
    assert_eq!(
        repoquery(&nginx.url("/r-snapshots/s1/"), "x86_64"),
        ["hello-0:1.0-1.noarch", "lib-0:1.0-1.x86_64"]
    );
    drop(nginx);

    // The same paths and bytes as chantal-fs serves.
    let mut mount = Mount::start(&env, "r/latest/repodata/repomd.xml");
    let same = files(&mount.path().join("r/latest")) == files(&latest.join("."))
        && files(&mount.path().join("r/snapshots/s1")) == files(&publ.join("r-snapshots/s1"));
    assert!(mount.stop().success());
    assert!(same, "export and chantal-fs differ");

    // A deleted tree is repaired; a deleted snapshot's tree goes.
    std::fs::remove_file(publ.join("r-snapshots/s1/repodata/repomd.xml")).unwrap();
    std::fs::remove_dir_all(latest.join("Packages")).unwrap();
    env.chantal(&["repo", "export", "--repo-id", "r"]).ok();
    assert_eq!(inodes(&latest.join(".")), inodes(v2.path()));
    assert_eq!(inodes(&publ.join("r-snapshots/s1")), inodes(v1.path()));
    env.chantal(&["snapshot", "delete", "--name", "s1", "--repo-id", "r"])
        .ok();
    assert!(!publ.join("r-snapshots/s1").exists());
}

#[test]
fn a_real_directory_is_migrated_and_other_file_systems_need_copy() {
    let upstream = upstream_dir();
    up(upstream.path(), &["hello-1.0-1.noarch.rpm"]);
    let env = Env::new();
    let publ = env.storage().parent().unwrap().join("published");
    std::fs::create_dir_all(publ.join("r/old-layout")).unwrap();
    let url = format!("file://{}", upstream.path().display());
    env.repo("r", &url, &publish_yaml(&publ, ""));
    env.chantal(&["init"]).ok();
    let run = env.chantal(&["repo", "sync", "--repo-id", "r"]);
    run.ok();
    assert!(run.stderr().contains("was a directory"), "{}", run.stderr());
    assert!(std::fs::symlink_metadata(publ.join("r"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(publ.join("r/repodata/repomd.xml").is_file());

    // /dev/shm is another file system (tmpfs): hardlinks cannot work there.
    let shm = tempfile::tempdir_in("/dev/shm").unwrap();
    env.repo("r", &url, &publish_yaml(shm.path(), ""));
    let err = env.chantal(&["repo", "export", "--repo-id", "r"]).fails();
    assert!(
        err.contains("different file system") && err.contains(&shm.path().display().to_string()),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    env.repo("r", &url, &publish_yaml(shm.path(), "  link: copy\n"));
    env.chantal(&["repo", "export", "--repo-id", "r"]).ok();
    assert_eq!(files(&shm.path().join("r/.")), files(&publ.join("r/.")));
}

#[test]
fn readers_never_see_a_gap_and_a_killed_export_leaves_latest_served() {
    let upstream = upstream_dir();
    let pkgs = synth_pkgs(600, 200);
    synthetic_repo(upstream.path(), &pkgs, SynthOptions::default());
    let env = Env::new();
    let publ = env.storage().parent().unwrap().join("published");
    env.repo(
        "r",
        &format!("file://{}", upstream.path().display()),
        &publish_yaml(&publ, ""),
    );
    env.chantal(&["init"]).ok();
    env.chantal(&["repo", "sync", "--repo-id", "r", "-q"]).ok();
    let latest = publ.join("r");
    let done = std::sync::atomic::AtomicBool::new(false);
    let reads = std::thread::scope(|scope| {
        scope.spawn(|| {
            for _ in 0..6 {
                env.chantal(&["repo", "export", "--repo-id", "r", "-q"])
                    .ok();
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        let mut reads = 0;
        while !done.load(std::sync::atomic::Ordering::SeqCst) {
            match read_consistent_snapshot_of_latest(&latest) {
                Ok(n) => assert_eq!(n, 600),
                Err(e) => panic!("a reader saw a broken export: {e}"),
            }
            reads += 1;
        }
        reads
    });
    assert!(reads > 1, "{reads}");

    // kill -9 at different moments of an export: latest stays whole; the next run cleans up.
    for delay in [5u64, 20, 60] {
        let mut child = env.chantal_cmd();
        let mut child = child
            .args(["repo", "export", "--repo-id", "r", "-q"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(read_consistent_snapshot_of_latest(&latest), Ok(600));
    }
    env.chantal(&["repo", "export", "--repo-id", "r", "-q"])
        .ok();
    let names: Vec<String> = std::fs::read_dir(&publ)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".partial.") || n.contains(".link."))
        .collect();
    assert!(names.is_empty(), "leftovers: {names:?}");
    assert_eq!(read_consistent_snapshot_of_latest(&latest), Ok(600));
}
