//! Several hosts on one catalogue: one PostgreSQL database, one pool on shared storage, a
//! chantal-fs per host. On this one machine, "host A" and "host B" are two installations whose
//! `storage.base_path` are two bind mounts of one directory (the kernel here has no NFS client
//! or server, so NFS itself is not what is tested), sharing one database.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use chantal_tests::http::HttpServer;
use chantal_tests::mount::{wait_for, Mount};
use chantal_tests::repo::{
    pool_files, random_bytes, synthetic_repo, upstream_dir, SynthOptions, SynthPkg,
};
use chantal_tests::{Env, Run, TestDb};

/// A bind mount, unmounted when dropped.
struct BindMount(PathBuf);

impl BindMount {
    fn new(from: &Path, to: &Path) -> BindMount {
        std::fs::create_dir_all(to).unwrap();
        let ok = Command::new("mount")
            .arg("--bind")
            .arg(from)
            .arg(to)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount --bind {} {}", from.display(), to.display());
        BindMount(to.to_path_buf())
    }
}

impl Drop for BindMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Two installations sharing one database and, through two bind mounts, one storage
/// directory. Field order is drop order: the mounts go before the installations' directories.
struct Hosts {
    _mounts: Vec<BindMount>,
    a: Env,
    b: Env,
    _shared: tempfile::TempDir,
}

fn two_hosts(db: TestDb) -> Hosts {
    let shared = tempfile::Builder::new()
        .prefix("chantal-shared-")
        .tempdir()
        .unwrap();
    let second = db.shared();
    let a = Env::with_db(db);
    let b = Env::with_db(second);
    let mounts = vec![
        BindMount::new(shared.path(), &a.storage()),
        BindMount::new(shared.path(), &b.storage()),
    ];
    Hosts {
        _mounts: mounts,
        a,
        b,
        _shared: shared,
    }
}

impl Hosts {
    /// The same repository file on both hosts.
    fn repo(&self, name: &str, url: &str, extra: &str) {
        self.a.repo(name, url, extra);
        self.b.repo(name, url, extra);
    }
}

fn assert_pool_sound(env: &Env) {
    for (p, ok) in pool_files(&env.storage()) {
        assert!(ok, "{} does not match its name", p.display());
    }
}

fn fast(i: u64) -> SynthPkg {
    SynthPkg::new(&format!("fast{i}"), "noarch", random_bytes(2000, i))
}

#[test]
fn a_cleanup_on_one_host_never_takes_what_a_sync_on_another_reuses() {
    let root = upstream_dir();
    let server = HttpServer::start(root.path());
    let hosts = two_hosts(TestDb::postgres());
    hosts.repo("r", &server.url(""), "");
    hosts.a.chantal(&["init"]).ok();
    // u4a: fast1-4, then u4c: fast5 only. fast1-4 are now only in a version that is neither
    // latest nor a snapshot (and retired long enough ago to be collected).
    synthetic_repo(
        root.path(),
        &(1..=4).map(fast).collect::<Vec<_>>(),
        SynthOptions::default(),
    );
    hosts.a.chantal(&["repo", "sync", "--repo-id", "r"]).ok();
    synthetic_repo(root.path(), &[fast(5)], SynthOptions::default());
    hosts.a.chantal(&["repo", "sync", "--repo-id", "r"]).ok();
    hosts.a.age_retirements();

    // u4b: fast1-4 again plus a slow package. A's sync reuses fast1-4 from the pool while it
    // downloads the slow one; B cleans up meanwhile.
    let mut u4b: Vec<SynthPkg> = (1..=4).map(fast).collect();
    u4b.push(SynthPkg::new("slow", "noarch", random_bytes(6 << 20, 99)));
    synthetic_repo(root.path(), &u4b, SynthOptions::default());
    server.throttle(Some(2 << 20));
    let sync_a = hosts.a.spawn_sync("r");
    wait_for("A's download", || hosts.a.partial_bytes() > 1 << 20);
    let out = hosts.b.chantal(&["db", "cleanup", "--grace", "0"]).ok();
    assert!(
        out.starts_with("removed: 1 versions, 0 package rows, "),
        "{out}"
    );
    let run = Run(sync_a.wait_with_output().unwrap());
    let out = run.ok();
    assert!(out.starts_with("r: version 3: 5 added, 1 removed"), "{out}");
    assert_pool_sound(&hosts.a);
    // What A reused came from the pool, not from upstream.
    for i in 1..=4 {
        let path = format!("/Packages/fast{i}-1.0-1.noarch.rpm");
        assert_eq!(
            server.requests_for(&path).len(),
            1,
            "{path} fetched once, for u4a"
        );
    }
    let out = hosts.b.chantal(&["repo", "sync", "--repo-id", "r"]).ok();
    assert!(out.contains("up to date (version 3)"), "{out}");
}

#[test]
fn the_host_that_loses_the_lock_always_names_the_one_that_holds_it() {
    let root = upstream_dir();
    synthetic_repo(root.path(), &[fast(1)], SynthOptions::default());
    let server = HttpServer::start(root.path());
    let hosts = two_hosts(TestDb::postgres());
    hosts.repo("r3", &server.url(""), "");
    hosts.a.chantal(&["init"]).ok();
    // Each sync holds its lock for a while: the upstream answers slowly.
    server.delay(Some(Duration::from_millis(300)));
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string();
    for round in 0..15 {
        let barrier = Barrier::new(2);
        let race = |env: &Env| {
            barrier.wait();
            let child = env.spawn_sync("r3");
            let pid = child.id();
            (pid, Run(child.wait_with_output().unwrap()))
        };
        let runs = std::thread::scope(|s| {
            let a = s.spawn(|| race(&hosts.a));
            let b = s.spawn(|| race(&hosts.b));
            [a.join().unwrap(), b.join().unwrap()]
        });
        let winners: Vec<_> = runs.iter().filter(|(_, r)| r.code() == Some(0)).collect();
        let losers: Vec<_> = runs.iter().filter(|(_, r)| r.code() != Some(0)).collect();
        assert_eq!(winners.len(), 1, "round {round}: exactly one runs");
        let (winner_pid, _) = winners[0];
        let err = losers[0].1.stderr();
        let expected =
            format!("chantal: error: r3 is being synced by {host} pid {winner_pid} since ");
        assert!(
            err.lines()
                .any(|l| l.starts_with(&expected) && l.ends_with(" UTC")),
            "round {round}: {err}"
        );
    }
}

#[test]
fn both_frontends_show_a_commit_from_either_host_within_a_fifth_of_a_second() {
    use chantal_tests::repo::up;
    let upstream = upstream_dir();
    let sets: [&[&str]; 2] = [
        &["hello-1.0-1.noarch.rpm"],
        &["hello-1.1-1.noarch.rpm", "lib-1.0-1.x86_64.rpm"],
    ];
    up(upstream.path(), sets[0]);
    let hosts = two_hosts(TestDb::postgres());
    hosts.repo("f", &format!("file://{}", upstream.path().display()), "");
    hosts.a.chantal(&["init"]).ok();
    hosts.a.chantal(&["repo", "sync", "--repo-id", "f"]).ok();
    let mut mounts = [
        Mount::start(&hosts.a, "f/latest/repodata/repomd.xml"),
        Mount::start(&hosts.b, "f/latest/repodata/repomd.xml"),
    ];
    for round in 1..=4 {
        for m in &mounts {
            std::fs::read(m.path().join("f/latest/repodata/repomd.xml")).unwrap();
        }
        up(upstream.path(), sets[round % 2]);
        let syncing = if round % 2 == 0 { &hosts.a } else { &hosts.b };
        syncing.chantal(&["repo", "sync", "--repo-id", "f"]).ok();
        std::thread::sleep(Duration::from_millis(200));
        let expected = std::fs::read(upstream.path().join("repodata/repomd.xml")).unwrap();
        for (host, m) in ["A", "B"].iter().zip(&mounts) {
            assert_eq!(
                std::fs::read(m.path().join("f/latest/repodata/repomd.xml")).unwrap(),
                expected,
                "round {round}: frontend {host} is behind 0.2 s after the commit"
            );
        }
    }
    for m in &mut mounts {
        assert!(m.stop().success());
    }
}

#[test]
fn a_sync_killed_on_one_host_is_resumed_by_the_other() {
    let root = upstream_dir();
    let big = SynthPkg::new("big", "noarch", random_bytes(8 << 20, 5));
    synthetic_repo(
        root.path(),
        std::slice::from_ref(&big),
        SynthOptions::default(),
    );
    let server = HttpServer::start(root.path());
    let hosts = two_hosts(TestDb::postgres());
    hosts.repo("k", &server.url(""), "");
    hosts.a.chantal(&["init"]).ok();
    server.throttle(Some(2 << 20));
    let mut child = hosts.a.spawn_sync("k");
    wait_for("A's partial download", || hosts.a.partial_bytes() > 2 << 20);
    Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    let had = hosts.b.partial_bytes();
    assert!(had > 2 << 20, "B sees A's partial file");
    server.throttle(None);
    let out = hosts.b.chantal(&["repo", "sync", "--repo-id", "k"]).ok();
    assert!(out.starts_with("k: version 1: 1 added"), "{out}");
    assert!(out.contains("resumed from an earlier run"), "{out}");
    let last = server
        .requests_for(&format!("/{}", big.href()))
        .pop()
        .unwrap();
    assert!(
        last.range
            .as_deref()
            .is_some_and(|r| r.starts_with("bytes=")),
        "B resumed with a Range request: {last:?}"
    );
    assert_pool_sound(&hosts.b);
}

#[test]
fn a_catalogue_outage_is_logged_once_by_each_frontend_and_cached_trees_stay_served() {
    use chantal_tests::repo::up;
    let upstream = upstream_dir();
    up(
        upstream.path(),
        &["hello-1.0-1.noarch.rpm", "lib-1.0-1.x86_64.rpm"],
    );
    let cluster = chantal_tests::pg::Cluster::start();
    let hosts = two_hosts(TestDb::on(&cluster));
    hosts.repo("o", &format!("file://{}", upstream.path().display()), "");
    hosts.a.chantal(&["init"]).ok();
    hosts.a.chantal(&["repo", "sync", "--repo-id", "o"]).ok();
    let mut mounts = [
        Mount::start(&hosts.a, "o/latest/repodata/repomd.xml"),
        Mount::start(&hosts.b, "o/latest/repodata/repomd.xml"),
    ];
    let files: Vec<PathBuf> = mounts
        .iter()
        .flat_map(|m| {
            [
                m.path().join("o/latest/repodata/repomd.xml"),
                m.path().join("o/latest/Packages/lib-1.0-1.x86_64.rpm"),
            ]
        })
        .collect();
    for f in &files {
        std::fs::read(f).unwrap();
    }
    cluster.stop();
    let until = Instant::now() + Duration::from_secs(8);
    let mut reads = 0;
    while Instant::now() < until {
        for f in &files {
            std::fs::read(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            reads += 1;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    cluster.restart();
    for m in &mounts {
        wait_for("the frontend to see the catalogue again", || {
            m.log().contains("catalogue available again")
        });
    }
    assert!(reads > 100);
    for (host, m) in ["A", "B"].iter().zip(&mut mounts) {
        assert!(m.stop().success());
        let log = m.log();
        let noisy: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("ERROR") || l.contains("WARN"))
            .collect();
        assert_eq!(
            noisy.len(),
            1,
            "frontend {host}: one line when it starts:\n{log}"
        );
        assert!(
            noisy[0].contains("catalogue unavailable, serving cached trees only"),
            "{log}"
        );
        assert_eq!(log.matches("catalogue available again").count(), 1, "{log}");
    }
}
