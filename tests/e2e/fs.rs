//! chantal-fs on a real FUSE mount: the trees it serves equal the catalogue's versions byte for
//! byte, snapshots never change, latest follows a sync, writes fail with EROFS, dnf reads
//! through it, and SIGTERM leaves no mount behind.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chantal_tests::dnf::{materialize, repoquery};
use chantal_tests::mount::{wait_for, Mount};
use chantal_tests::repo::{test_rpm, up, upstream_dir};
use chantal_tests::trees::{files, read_consistent_snapshot_of_latest};
use chantal_tests::Env;

#[test]
fn serves_latest_and_snapshots_read_only() {
    let upstream = upstream_dir();
    up(
        upstream.path(),
        &["hello-1.0-1.noarch.rpm", "lib-1.0-1.x86_64.rpm"],
    );
    let env = Env::new();
    env.repo("r", &format!("file://{}", upstream.path().display()), "");
    // A repository whose only sync failed has no version: it does not appear.
    env.repo("broken", "file:///nonexistent/chantal-broken", "");
    env.chantal(&["init"]).ok();
    env.chantal(&["repo", "sync", "--repo-id", "broken"])
        .fails();
    env.chantal(&[
        "repo",
        "sync",
        "--repo-id",
        "r",
        "--create-snapshot",
        "--snapshot-name",
        "s1",
    ])
    .ok();
    let mut mount = Mount::start(&env, "r/latest/repodata/repomd.xml");
    let latest = mount.path().join("r/latest");
    let v1 = materialize(&env, "r", Some(1));
    assert_eq!(
        files(&latest),
        files(v1.path()),
        "latest = version 1, byte for byte"
    );
    assert_eq!(
        files(&mount.path().join("r/snapshots/s1")),
        files(v1.path())
    );
    let names: Vec<String> = std::fs::read_dir(mount.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["r"]);

    // Read-only: regular files 0444, directories 0555, owned by root; writes get EROFS.
    let rpm = latest.join("Packages/hello-1.0-1.noarch.rpm");
    let meta = std::fs::metadata(&rpm).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o444);
    assert_eq!(
        std::fs::metadata(&latest).unwrap().permissions().mode() & 0o777,
        0o555
    );
    assert_eq!(
        meta.len(),
        std::fs::metadata(test_rpm("hello-1.0-1.noarch.rpm"))
            .unwrap()
            .len()
    );
    for err in [
        std::fs::write(latest.join("new"), b"x").unwrap_err(),
        std::fs::OpenOptions::new()
            .write(true)
            .open(&rpm)
            .unwrap_err(),
        std::fs::remove_file(&rpm).unwrap_err(),
        std::fs::create_dir(latest.join("d")).unwrap_err(),
        std::fs::rename(&rpm, latest.join("moved.rpm")).unwrap_err(),
    ] {
        assert_eq!(err.raw_os_error(), Some(30), "EROFS expected: {err}");
    }

    // Clients fetching one package at once: every open of the file reads it whole.
    let want = std::fs::read(test_rpm("hello-1.0-1.noarch.rpm")).unwrap();
    let read_all = |f: &mut std::fs::File| {
        use std::io::Read;
        let mut v = Vec::new();
        f.read_to_end(&mut v).unwrap();
        v
    };
    let mut first = std::fs::File::open(&rpm).unwrap();
    let mut second = std::fs::File::open(&rpm).expect("a second open while the first is open");
    assert_eq!(read_all(&mut first), want);
    drop(first);
    let mut third = std::fs::File::open(&rpm).unwrap();
    assert_eq!(read_all(&mut second), want);
    assert_eq!(read_all(&mut third), want);
    drop((second, third));
    std::thread::scope(|scope| {
        let readers: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| (0..50).all(|_| std::fs::read(&rpm).unwrap() == want)))
            .collect();
        for r in readers {
            assert!(r.join().unwrap(), "a concurrent reader got other bytes");
        }
    });

    // dnf reads through the mount.
    assert_eq!(
        repoquery(&latest, "x86_64"),
        ["hello-0:1.0-1.noarch", "lib-0:1.0-1.x86_64"]
    );

    // A new sync: latest follows within seconds; the snapshot does not move; a file only the
    // previous version had stays reachable under latest/ for clients mid-update.
    up(
        upstream.path(),
        &["hello-1.1-1.noarch.rpm", "lib-1.0-1.x86_64.rpm"],
    );
    env.chantal(&["repo", "sync", "--repo-id", "r"]).ok();
    let new_rpm = latest.join("Packages/hello-1.1-1.noarch.rpm");
    let switched = Instant::now();
    wait_for("latest to follow the sync", || new_rpm.exists());
    assert!(
        switched.elapsed() < Duration::from_secs(2),
        "latest followed after {:?}",
        switched.elapsed()
    );
    let v2 = materialize(&env, "r", Some(2));
    // The kernel may keep a directory entry of version 1 for its 1 s TTL.
    let want = files(v2.path());
    wait_for("latest to equal version 2 throughout", || {
        files(&latest) == want
    });
    assert_eq!(
        files(&mount.path().join("r/snapshots/s1")),
        files(v1.path()),
        "snapshot unchanged"
    );
    assert_eq!(
        std::fs::read(&rpm).unwrap(),
        std::fs::read(test_rpm("hello-1.0-1.noarch.rpm")).unwrap(),
        "the previous version's package is still served during the grace period"
    );

    let status = mount.stop();
    assert!(status.success(), "{status:?}");
    assert!(!mount.mounted(), "SIGTERM leaves no mount behind");
}

#[test]
fn a_stale_mount_is_cleaned_up_and_an_outage_keeps_cached_trees_served() {
    let upstream = upstream_dir();
    up(
        upstream.path(),
        &["hello-1.0-1.noarch.rpm", "lib-1.0-1.x86_64.rpm"],
    );
    let cluster = chantal_tests::pg::Cluster::start();
    let env = Env::with_db(chantal_tests::TestDb::on(&cluster));
    env.repo("r", &format!("file://{}", upstream.path().display()), "");
    env.chantal(&["init"]).ok();
    env.chantal(&[
        "repo",
        "sync",
        "--repo-id",
        "r",
        "--create-snapshot",
        "--snapshot-name",
        "s1",
    ])
    .ok();
    // Latest moves on, so the snapshot is a version of its own, built only when asked for.
    up(
        upstream.path(),
        &["hello-1.1-1.noarch.rpm", "lib-1.0-1.x86_64.rpm"],
    );
    env.chantal(&["repo", "sync", "--repo-id", "r"]).ok();

    // kill -9 leaves a dead mount behind; the next start clears it and serves again.
    let mut first = Mount::start(&env, "r/latest/repodata/repomd.xml");
    let child = first.child.take().unwrap();
    Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status()
        .unwrap();
    let mut child = child;
    child.wait().unwrap();
    // (A directory read always reaches the daemon; attributes may come from the kernel cache.)
    let err = std::fs::read_dir(first.path()).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOTCONN), "{err}");
    let log = tempfile::NamedTempFile::new().unwrap();
    let second = Command::new(chantal_tests::bin("chantal-fs"))
        .arg("--config")
        .arg(env.config())
        .arg(first.path())
        .stdout(Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();
    first.child = Some(second);
    wait_for("the remount", || {
        std::fs::read(first.path().join("r/latest/repodata/repomd.xml")).is_ok()
    });

    // The catalogue goes away: what was already built keeps being served.
    let latest = first.path().join("r/latest");
    let before = files(&latest);
    cluster.stop();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(files(&latest), before, "cached latest tree still served");
    let snap = first.path().join("r/snapshots/s1/repodata/repomd.xml");
    for _ in 0..5 {
        match std::fs::read(&snap) {
            Ok(_) => panic!("an unbuilt tree cannot be served during an outage"),
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}"),
        }
    }
    cluster.restart();
    wait_for("service to recover", || std::fs::read(&snap).is_ok());
    let status = first.stop();
    assert!(status.success(), "{status:?}");
    assert!(!first.mounted());
    let log = std::fs::read_to_string(log.path()).unwrap();
    assert_eq!(
        log.matches("catalogue unavailable").count(),
        1,
        "one line per outage, not per request:\n{log}"
    );
    assert_eq!(log.matches("catalogue available again").count(), 1, "{log}");
}

/// An updateinfo with one advisory per (id, hello version).
fn updateinfo(advisories: &[(&str, &str)]) -> String {
    let mut doc = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<updates>\n");
    for (id, v) in advisories {
        doc.push_str(&format!(
            r#"  <update from="tests@chantal.invalid" status="final" type="bugfix" version="1">
    <id>{id}</id><title>hello {v}</title><issued date="2024-01-01 00:00:00"/>
    <pkglist><collection short="c"><name>c</name>
      <package name="hello" version="{v}" release="1" epoch="0" arch="noarch"><filename>hello-{v}-1.noarch.rpm</filename></package>
    </collection></pkglist>
  </update>
"#
        ));
    }
    doc.push_str("</updates>\n");
    doc
}

#[test]
fn nginx_serves_latest_and_a_snapshot_to_dnf() {
    use chantal_tests::dnf::{advisories, download, groups};
    use chantal_tests::nginx::Nginx;
    use chantal_tests::repo::{createrepo_with, COMPS};
    let upstream = upstream_dir();
    let rpms = |names: &[&str]| names.iter().map(|n| test_rpm(n)).collect::<Vec<_>>();
    createrepo_with(
        upstream.path(),
        &rpms(&[
            "hello-1.0-1.noarch.rpm",
            "tool-3.0-1.x86_64.rpm",
            "tool-2.0-1.aarch64.rpm",
        ]),
        COMPS,
        &updateinfo(&[("FS-1", "1.0")]),
    );
    let env = Env::new();
    env.repo(
        "web",
        &format!("file://{}", upstream.path().display()),
        "rpm:\n  architectures: [x86_64]\n",
    );
    env.chantal(&["init"]).ok();
    env.chantal(&[
        "repo",
        "sync",
        "--repo-id",
        "web",
        "--create-snapshot",
        "--snapshot-name",
        "s",
    ])
    .ok();
    let mut mount = Mount::start(&env, "web/latest/repodata/repomd.xml");
    let nginx = Nginx::shipped(mount.path());
    // The next sync moves latest on; the snapshot stays where it was.
    createrepo_with(
        upstream.path(),
        &rpms(&["hello-1.1-1.noarch.rpm", "tool-3.0-1.x86_64.rpm"]),
        COMPS,
        &updateinfo(&[("FS-1", "1.0"), ("FS-2", "1.1")]),
    );
    env.chantal(&["repo", "sync", "--repo-id", "web"]).ok();
    let new_hello = mount
        .path()
        .join("web/latest/Packages/hello-1.1-1.noarch.rpm");
    wait_for("latest to follow the sync", || new_hello.exists());
    // Past the kernel's 1 s entry cache, so nginx sees only version 2 under latest/.
    std::thread::sleep(Duration::from_millis(1100));

    let installed = [test_rpm("hello-1.0-1.noarch.rpm")];
    let cases = [
        (
            "/web/latest",
            2,
            "hello-1.1-1.noarch.rpm",
            vec!["FS-1", "FS-2"],
        ),
        (
            "/web/snapshots/s",
            1,
            "hello-1.0-1.noarch.rpm",
            vec!["FS-1"],
        ),
    ];
    for (path, version, hello, ids) in cases {
        let url = nginx.url(path);
        let expected = materialize(&env, "web", Some(version));
        let set = repoquery(&url, "x86_64");
        assert_eq!(set, repoquery(expected.path(), "x86_64"), "{path}");
        assert_eq!(
            set,
            [
                format!("hello-0:{}.noarch", &hello[6..hello.len() - 11]),
                "tool-1:3.0-1.x86_64".to_string()
            ],
            "{path}"
        );
        assert_eq!(advisories(&url, &installed), ids, "{path}");
        assert!(groups(&url).contains("Chantal test tools"), "{path}");
        for (spec, file) in [("tool", "tool-3.0-1.x86_64.rpm"), ("hello", hello)] {
            let dest = tempfile::tempdir().unwrap();
            let got = download(&url, spec, dest.path());
            assert_eq!(got.file_name().unwrap(), file, "{path}");
            assert_eq!(
                std::fs::read(&got).unwrap(),
                std::fs::read(test_rpm(file)).unwrap(),
                "{path}: {file} byte-identical through nginx and the mount"
            );
        }
    }
    drop(nginx);
    assert!(mount.stop().success());
}

#[test]
fn a_reader_never_sees_a_missing_or_mismatched_file_while_latest_switches() {
    let upstream = upstream_dir();
    let sets: [&[&str]; 2] = [
        &[
            "hello-1.0-1.noarch.rpm",
            "lib-1.0-1.x86_64.rpm",
            "tool-2.0-1.x86_64.rpm",
        ],
        &["hello-1.1-1.noarch.rpm", "tool-3.0-1.x86_64.rpm"],
    ];
    up(upstream.path(), sets[0]);
    let env = Env::new();
    env.repo("loop", &format!("file://{}", upstream.path().display()), "");
    env.chantal(&["init"]).ok();
    env.chantal(&["repo", "sync", "--repo-id", "loop"]).ok();
    // A second repository synced at the same time: two writers and the daemon's reads contend
    // for the catalogue (on SQLite, one file).
    let other = upstream_dir();
    up(other.path(), sets[1]);
    env.repo("other", &format!("file://{}", other.path().display()), "");
    let mut mount = Mount::start(&env, "loop/latest/repodata/repomd.xml");
    let latest = mount.path().join("loop/latest");
    let done = std::sync::atomic::AtomicBool::new(false);
    let quiet_sync = |repo: &str| {
        let run = env.chantal(&["repo", "sync", "--repo-id", repo, "-q"]);
        run.ok();
        assert_eq!(run.stderr(), "", "a sync of {repo} said something");
    };
    let (reads, syncs) = std::thread::scope(|scope| {
        let syncer = scope.spawn(|| {
            let mut n = 0;
            for round in 1..=8 {
                up(upstream.path(), sets[round % 2]);
                quiet_sync("loop");
                n += 1;
                std::thread::sleep(Duration::from_millis(300));
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            n
        });
        scope.spawn(|| {
            let mut round = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                round += 1;
                up(other.path(), sets[round % 2]);
                quiet_sync("other");
            }
        });
        let mut reads = 0;
        while !done.load(std::sync::atomic::Ordering::SeqCst) {
            match read_consistent_snapshot_of_latest(&latest) {
                Ok(_) => reads += 1,
                Err(e) => panic!("a reader saw a broken latest/: {e}"),
            }
        }
        (reads, syncer.join().unwrap())
    });
    assert_eq!(syncs, 8);
    assert!(reads > 8, "the reader ran {reads} times");
    assert_eq!(env.latest("loop"), Some(9));
    assert!(env.latest("other").unwrap() >= 2);
    assert!(mount.stop().success());
    let log = mount.log();
    assert!(
        !log.contains("locked") && !log.contains("ERROR") && !log.contains("WARN"),
        "{log}"
    );
}

/// Repository `r` (hello 1.0 from a local upstream), synced once: its upstream and catalogue.
fn hello_synced() -> (tempfile::TempDir, Env) {
    let upstream = upstream_dir();
    up(upstream.path(), &["hello-1.0-1.noarch.rpm"]);
    let env = Env::new();
    env.repo("r", &format!("file://{}", upstream.path().display()), "");
    env.chantal(&["init"]).ok();
    env.chantal(&["repo", "sync", "--repo-id", "r"]).ok();
    (upstream, env)
}

/// Lines of a `--verbose` daemon's log that are a LOOKUP of `name`.
fn lookups_of(log: &str, name: &str) -> usize {
    log.lines()
        .filter(|l| l.contains(" lookup ") && l.ends_with(&format!(" {name}")))
        .count()
}

#[test]
fn a_new_latest_is_given_to_the_kernel_before_its_readers_ask() {
    let (upstream, env) = hello_synced();
    let ready = "r/latest/repodata/repomd.xml";
    // The same catalogue mounted twice: prefilling (the default) and not.
    let prefilled = Mount::start_with(&env, ready, &["--verbose"]);
    let plain = Mount::start_with(&env, ready, &["--verbose", "--prefill-entries", "0"]);

    let new = [
        "hello-1.1-1.noarch.rpm",
        "lib-1.0-1.x86_64.rpm",
        "tool-2.0-1.x86_64.rpm",
    ];
    up(upstream.path(), &new);
    env.chantal(&["repo", "sync", "--repo-id", "r"]).ok();
    wait_for("the prefill", || prefilled.log().contains("r: prefilled "));
    wait_for("the other daemon to see version 2", || {
        plain.log().contains("r: latest is now version 2")
    });
    let log = prefilled.log();
    let line = log.lines().find(|l| l.contains("r: prefilled ")).unwrap();
    // Every file of version 2 and every directory above one.
    let v2 = materialize(&env, "r", Some(2));
    let paths: Vec<String> = files(v2.path()).into_iter().map(|(p, _)| p).collect();
    let dirs: std::collections::BTreeSet<&str> = paths
        .iter()
        .flat_map(|p| p.match_indices('/').map(move |(i, _)| &p[..i]))
        .collect();
    let want = paths.len() + dirs.len();
    assert!(
        line.contains(&format!("prefilled {want} entries of latest/")),
        "{line}"
    );

    // A reader's first open of each new package: the prefilled daemon is not asked for the
    // name, the other one is, and both serve the same bytes.
    for m in [&prefilled, &plain] {
        for rpm in new {
            let served = std::fs::read(m.path().join("r/latest/Packages").join(rpm)).unwrap();
            assert_eq!(served, std::fs::read(test_rpm(rpm)).unwrap(), "{rpm}");
        }
    }
    let (with, without) = (prefilled.log(), plain.log());
    for rpm in new {
        assert_eq!(lookups_of(&with, rpm), 0, "{rpm} was looked up:\n{with}");
        assert_eq!(lookups_of(&without, rpm), 1, "{rpm}:\n{without}");
    }
}

#[test]
fn a_thread_count_of_zero_is_refused_before_mounting() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(chantal_tests::bin("chantal-fs"))
        .args(["--threads", "0"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    let first = err.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("error: ") && first.contains("--threads"),
        "{err}"
    );
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(!mounts.contains(&format!(" {} ", dir.path().display())));
}

#[test]
fn a_directory_larger_than_one_kernel_buffer_lists_whole() {
    use chantal_tests::repo::{synth_pkgs, synthetic_repo, SynthOptions};
    use std::os::unix::fs::MetadataExt;
    let upstream = upstream_dir();
    // Hundreds of entries take many readdir calls, each resuming at an offset.
    let pkgs = synth_pkgs(700, 64);
    synthetic_repo(upstream.path(), &pkgs, SynthOptions::default());
    let env = Env::new();
    env.repo("many", &format!("file://{}", upstream.path().display()), "");
    env.chantal(&["init"]).ok();
    env.chantal(&["repo", "sync", "--repo-id", "many", "-q"])
        .ok();
    // One request thread: every readdir, lookup and open waits its turn, and still all is served.
    let mut mount = Mount::start_with(&env, "many/latest/repodata/repomd.xml", &["--threads", "1"]);
    // (The daemon logs its start line just after mounting, so it may trail the mount a little.)
    wait_for("the start line", || {
        mount.log().contains("(request threads: 1)")
    });
    let pid = mount.child.as_ref().unwrap().id();
    let request_threads = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter(|t| {
            let comm = std::fs::read_to_string(t.as_ref().unwrap().path().join("comm")).unwrap();
            // fuser names them fuser-0, fuser-1, ... (and its spawning thread fuser-bg).
            comm.strip_prefix("fuser-")
                .is_some_and(|n| n.trim().parse::<u32>().is_ok())
        })
        .count();
    assert_eq!(request_threads, 1);
    let dir = mount.path().join("many/latest/Packages");
    let mut listed: Vec<(String, u64, u64)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                m.len(),
                m.ino(),
            )
        })
        .collect();
    let mut inos: Vec<u64> = listed.iter().map(|x| x.2).collect();
    inos.sort();
    inos.dedup();
    assert_eq!(inos.len(), 700, "one inode per entry");
    listed.sort();
    let want: Vec<(String, u64)> = pkgs
        .iter()
        .map(|p| {
            let href = p.href();
            (href["Packages/".len()..].to_string(), p.data.len() as u64)
        })
        .collect();
    let got: Vec<(String, u64)> = listed.into_iter().map(|(n, l, _)| (n, l)).collect();
    assert_eq!(got, want);
    assert!(mount.stop().success());
}

/// Unmounted under the daemon (`fusermount3 -u` by hand): chantal-fs ends with an error that
/// says so, so its unit's Restart= mounts it again, instead of living on serving nothing.
#[test]
fn a_mount_removed_under_the_daemon_ends_it_with_an_error() {
    let (_upstream, env) = hello_synced();
    let mut mount = Mount::start(&env, "r/latest/repodata/repomd.xml");
    let status = Command::new("fusermount3")
        .arg("-u")
        .arg(mount.path())
        .status()
        .unwrap();
    assert!(status.success());
    let mut child = mount.child.take().unwrap();
    wait_for("chantal-fs to exit", || child.try_wait().unwrap().is_some());
    assert_eq!(child.wait().unwrap().code(), Some(1));
    assert!(
        mount
            .log()
            .contains("was unmounted by something else than chantal-fs: exiting"),
        "{}",
        mount.log()
    );
}
