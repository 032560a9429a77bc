//! Serving at fleet scale: nginx as `contrib/nginx/chantal.conf` ships it (files kept open
//! between requests) in front of chantal-fs, and what chantal-fs keeps in the kernel's caches.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chantal_tests::mount::Mount;
use chantal_tests::nginx::{Client, Nginx};
use chantal_tests::repo::{synth_pkgs, synthetic_repo, upstream_dir, SynthOptions, SynthPkg};
use chantal_tests::Env;

/// How soon after a commit every client must get the new repomd.xml.
const FRESH: Duration = Duration::from_millis(200);

/// One response: when its request was sent, its status, and which version's repomd.xml it
/// was (None: none of them).
type Seen = (Instant, u16, Option<usize>);

/// A fleet hammers latest/repodata/repomd.xml through nginx while syncs commit version after
/// version. Every response must be a committed version's repomd.xml, whole, and none may be
/// older than the version whose sync had finished 0.2 s before the request was sent (a sync
/// exits after its commit, so this is at least as lenient as measuring from the commit).
#[test]
fn repomd_through_nginx_follows_every_commit_within_a_fifth_of_a_second() {
    let _exclusive = chantal_tests::exclusive();
    const VERSIONS: usize = 8;
    let env = Env::new();
    let up = upstream_dir();
    let pkgs = synth_pkgs(VERSIONS + 1, 64);
    let publish = |k: usize| -> Vec<u8> {
        synthetic_repo(up.path(), &pkgs[..=k], SynthOptions::default());
        std::fs::read(up.path().join("repodata/repomd.xml")).unwrap()
    };
    let bodies: Arc<Mutex<Vec<Vec<u8>>>> = Arc::new(Mutex::new(vec![publish(0)]));
    env.repo("r", &format!("file://{}", up.path().display()), "");
    env.chantal(&["init"]).ok();
    env.chantal(&["repo", "sync", "--repo-id", "r"]).ok();
    let mount = Mount::start(&env, "r/latest/repodata/repomd.xml");
    let nginx = Nginx::shipped(mount.path());
    let path = "/r/latest/repodata/repomd.xml";
    assert_eq!(
        Client::connect(&nginx).get(path),
        (200, bodies.lock().unwrap()[0].clone()),
        "the upstream's repomd.xml is served as it is"
    );

    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (stop, bodies) = (Arc::clone(&stop), Arc::clone(&bodies));
            let mut client = Client::connect(&nginx);
            std::thread::spawn(move || {
                let mut seen: Vec<Seen> = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let sent = Instant::now();
                    let (status, body) = client.get(path);
                    let which = bodies.lock().unwrap().iter().position(|b| *b == body);
                    seen.push((sent, status, which));
                }
                seen
            })
        })
        .collect();

    // When each version's sync had finished (version 0's before the readers started).
    let mut committed = vec![Instant::now()];
    for k in 1..=VERSIONS {
        let body = publish(k);
        bodies.lock().unwrap().push(body);
        env.chantal(&["repo", "sync", "--repo-id", "r"]).ok();
        committed.push(Instant::now());
        // Long enough that every version must be seen after its 0.2 s.
        std::thread::sleep(Duration::from_millis(500));
    }
    stop.store(true, Ordering::Relaxed);
    let seen: Vec<Seen> = readers
        .into_iter()
        .flat_map(|r| r.join().unwrap())
        .collect();

    let mut per_version = vec![0usize; VERSIONS + 1];
    let mut stale = Vec::new();
    for (sent, status, which) in &seen {
        assert_eq!(*status, 200, "a request during the syncs failed");
        let which = which.expect("a response that is no committed version's repomd.xml");
        per_version[which] += 1;
        let due = committed
            .iter()
            .rposition(|done| *done + FRESH <= *sent)
            .unwrap_or(0);
        if which < due {
            stale.push((which, due, sent.duration_since(committed[due])));
        }
    }
    assert!(
        stale.is_empty(),
        "{} of {} responses were older than the version committed more than {FRESH:?} before \
         (version served, version due, time since that commit): {:?}",
        stale.len(),
        seen.len(),
        &stale[..stale.len().min(10)]
    );
    assert!(
        per_version.iter().all(|n| *n > 0),
        "every version is served in its turn: {per_version:?}"
    );
}

/// With `--passthrough-min-size`, small files are read through the daemon once and then kept
/// in the mount's page cache; large ones are read by the kernel straight from the pool file
/// (passthrough, when the kernel offers it). Seen by changing the pool files in place after a
/// first read (never done outside a test: it breaks the pool's promise), through nginx like a
/// client.
#[test]
fn small_files_stay_in_the_page_cache_and_large_ones_read_the_pool_file() {
    let env = Env::new();
    let up = upstream_dir();
    let small = SynthPkg::new("small", "noarch", vec![b's'; 8 * 1024]);
    let large = SynthPkg::new("large", "noarch", vec![b'l'; 2 * 1024 * 1024]);
    synthetic_repo(
        up.path(),
        &[small.clone(), large.clone()],
        SynthOptions::default(),
    );
    env.repo("r", &format!("file://{}", up.path().display()), "");
    env.chantal(&["init"]).ok();
    env.chantal(&["repo", "sync", "--repo-id", "r"]).ok();
    let mount = Mount::start_with(
        &env,
        "r/latest/repodata/repomd.xml",
        &["--passthrough-min-size", "1048576"],
    );
    let nginx = Nginx::shipped(mount.path());
    let mut client = Client::connect(&nginx);
    for p in [&small, &large] {
        let (status, body) = client.get(&format!("/r/latest/{}", p.href()));
        assert_eq!((status, body.len()), (200, p.data.len()), "{}", p.href());
        assert!(body == p.data, "{} served as synced", p.href());
    }
    // Overwrite both pool files in place (same inode, same size).
    for (p, byte) in [(&small, b'S'), (&large, b'L')] {
        let pool = chantal_tests::repo::pool_files(&env.storage())
            .into_iter()
            .map(|(path, _)| path)
            .find(|path| {
                path.to_string_lossy()
                    .ends_with(&format!("_{}", file_name(p)))
            })
            .unwrap();
        std::fs::write(&pool, vec![byte; p.data.len()]).unwrap();
    }
    // A second nginx: nothing kept open from the first requests.
    drop(client);
    drop(nginx);
    let nginx = Nginx::shipped(mount.path());
    let mut client = Client::connect(&nginx);
    let (_, body) = client.get(&format!("/r/latest/{}", small.href()));
    assert!(
        body == small.data,
        "a small file read before comes from the page cache, not the daemon"
    );
    let (_, body) = client.get(&format!("/r/latest/{}", large.href()));
    if mount.log().contains("reads: FUSE passthrough") {
        assert!(
            body.iter().all(|b| *b == b'L'),
            "a large file is read from the pool file itself"
        );
    } else {
        assert!(
            mount.log().contains("reads: through the daemon"),
            "{}",
            mount.log()
        );
    }
}

fn file_name(p: &SynthPkg) -> String {
    p.href().rsplit('/').next().unwrap().to_string()
}

/// chantal-fs restarts while nginx keeps its files open, and a sync commits meanwhile. The
/// new daemon numbers every file anew: had it given the new repomd.xml the number the old
/// daemon gave the previous one (same tree shape, same place), nginx, which knows a kept file
/// by its inode number alone, would go on serving the previous repomd.xml from its
/// descriptor of the old mount.
#[test]
fn nginx_follows_a_chantal_fs_restart_and_the_commit_made_meanwhile() {
    let env = Env::new();
    let up = upstream_dir();
    let v1 = synth_pkgs(3, 4096);
    // The same names and sizes with other bytes: the same tree, other checksums.
    let v2: Vec<SynthPkg> = v1
        .iter()
        .enumerate()
        .map(|(i, p)| SynthPkg {
            data: chantal_tests::repo::random_bytes(p.data.len(), 1000 + i as u64),
            ..p.clone()
        })
        .collect();
    synthetic_repo(up.path(), &v1, SynthOptions::default());
    env.repo("r", &format!("file://{}", up.path().display()), "");
    env.chantal(&["init"]).ok();
    env.chantal(&["repo", "sync", "--repo-id", "r"]).ok();
    let ready = "r/latest/repodata/repomd.xml";
    let mut mount = Mount::start(&env, ready);
    let nginx = Nginx::shipped(mount.path());
    let fetch_all = |client: &mut Client, pkgs: &[SynthPkg]| {
        let repomd = std::fs::read(up.path().join("repodata/repomd.xml")).unwrap();
        assert!(
            client.get("/r/latest/repodata/repomd.xml") == (200, repomd),
            "latest/repodata/repomd.xml is the latest version's"
        );
        for p in pkgs {
            let (status, body) = client.get(&format!("/r/latest/{}", p.href()));
            assert_eq!(status, 200, "{}", p.href());
            assert!(body == p.data, "{}", p.href());
        }
    };
    let mut client = Client::connect(&nginx);
    fetch_all(&mut client, &v1);

    // SIGTERM detaches the mount; nginx still holds the old daemon's files (read through the
    // kernel, so the old daemon may exit at once).
    let old = mount.child.take().unwrap();
    let kill = |pid: u32| {
        std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
    };
    kill(old.id());
    chantal_tests::mount::wait_for("the detach", || !mount.mounted());
    synthetic_repo(up.path(), &v2, SynthOptions::default());
    env.chantal(&["repo", "sync", "--repo-id", "r"]).ok();
    mount.respawn(&env, ready);
    fetch_all(&mut client, &v2);
    // Once the old daemon is gone (a second signal would end a drain), nothing fails.
    kill(old.id());
    let mut old = old;
    assert!(old.wait().unwrap().success());
    fetch_all(&mut client, &v2);
}

/// SIGTERM while nginx keeps files open: with passthrough the daemon exits at once and the
/// open files read on; a file read through the daemon holds it until it is closed.
#[test]
fn a_stop_waits_only_for_files_read_through_the_daemon() {
    let env = Env::new();
    let up = upstream_dir();
    let pkgs = synth_pkgs(1, 64 * 1024);
    synthetic_repo(up.path(), &pkgs, SynthOptions::default());
    env.repo("r", &format!("file://{}", up.path().display()), "");
    env.chantal(&["init"]).ok();
    env.chantal(&["repo", "sync", "--repo-id", "r"]).ok();
    let ready = "r/latest/repodata/repomd.xml";
    for (args, waits) in [
        (&[][..], false),
        (&["--passthrough-min-size", "1048576"][..], true),
    ] {
        let mut mount = Mount::start_with(&env, ready, args);
        let passthrough = mount.log().contains("reads: FUSE passthrough");
        let path = mount.path().join("r/latest").join(pkgs[0].href());
        let mut open = std::fs::File::open(&path).unwrap();
        let mut child = mount.child.take().unwrap();
        std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        chantal_tests::mount::wait_for("the detach", || !mount.mounted());
        std::thread::sleep(Duration::from_millis(500));
        let exited = child.try_wait().unwrap().is_some();
        if passthrough {
            assert_eq!(exited, !waits, "{args:?}: {}", mount.log());
        }
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut open, &mut data).unwrap();
        assert!(
            data == pkgs[0].data,
            "{args:?}: the open file reads to the end"
        );
        drop(open);
        let status = child.wait().unwrap();
        assert!(status.success(), "{status:?}");
        assert!(!mount.log().contains("WARN"), "{}", mount.log());
    }
}

/// Through env/<env>: a promotion is served from the next requests on, as fast as latest
/// follows a commit, and a client that read the previous snapshot's repomd.xml still finds
/// what it names, at every depth (this repository is flat: its packages sit at the tree's
/// root); the snapshots themselves answer only their own names meanwhile.
#[test]
fn nginx_through_an_environment_follows_a_promotion() {
    let _exclusive = chantal_tests::exclusive();
    let env = Env::new();
    let up = upstream_dir();
    let pkgs: Vec<_> = synth_pkgs(2, 256)
        .into_iter()
        .map(|p| {
            let flat = format!("{}-1.0-1.noarch.rpm", p.name);
            p.at(&flat)
        })
        .collect();
    env.write("conf.d/00-environments.yaml", "environments: [prod]\n");
    env.repo("r", &format!("file://{}", up.path().display()), "");
    env.chantal(&["init"]).ok();
    let (mut repomds, mut primaries) = (Vec::new(), Vec::new());
    for (k, name) in ["s1", "s2"].iter().enumerate() {
        // s1 holds the first package, s2 only the second.
        synthetic_repo(up.path(), &pkgs[k..=k], SynthOptions::default());
        repomds.push(std::fs::read(up.path().join("repodata/repomd.xml")).unwrap());
        let primary = std::fs::read_dir(up.path().join("repodata"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .find(|n| n.ends_with("-primary.xml.gz"))
            .unwrap();
        let bytes = std::fs::read(up.path().join("repodata").join(&primary)).unwrap();
        primaries.push((format!("repodata/{primary}"), bytes));
        env.chantal(&[
            "repo",
            "sync",
            "--repo-id",
            "r",
            "--create-snapshot",
            "--snapshot-name",
            name,
        ])
        .ok();
    }
    env.chantal(&[
        "env",
        "promote",
        "--env",
        "prod",
        "--snapshot",
        "s1",
        "--repo-id",
        "r",
    ])
    .ok();
    let mount = Mount::start(&env, "r/env/prod/repodata/repomd.xml");
    let nginx = Nginx::shipped(mount.path());
    let mut client = Client::connect(&nginx);
    let path = "/r/env/prod/repodata/repomd.xml";
    for _ in 0..50 {
        assert!(client.get(path) == (200, repomds[0].clone()));
    }
    env.chantal(&[
        "env",
        "promote",
        "--env",
        "prod",
        "--snapshot",
        "s2",
        "--repo-id",
        "r",
    ])
    .ok();
    let promoted = Instant::now();
    let mut old_after = None;
    loop {
        let sent = Instant::now();
        let got = client.get(path);
        assert_eq!(got.0, 200);
        if got.1 == repomds[1] {
            break;
        }
        assert!(got.1 == repomds[0], "a response that is neither snapshot's");
        old_after = Some(sent.duration_since(promoted));
        assert!(
            sent.duration_since(promoted) < Duration::from_secs(5),
            "env/prod still served s1 5 s after the promotion"
        );
    }
    assert!(
        old_after.is_none_or(|t| t <= FRESH),
        "s1 was still served {old_after:?} after the promotion"
    );
    // A client that read s1's repomd.xml just before finds what it names, for the grace
    // period, as under latest/; s2's own files are there too.
    let packages = pkgs.iter().map(|p| (p.href(), p.data.clone()));
    for (href, bytes) in primaries.iter().cloned().chain(packages) {
        assert!(
            client.get(&format!("/r/env/prod/{href}")) == (200, bytes.clone()),
            "{href} through env/prod/ after the promotion"
        );
    }
    // A snapshot is exactly what was frozen: s2 does not answer s1's names.
    for href in [primaries[0].0.clone(), pkgs[0].href()] {
        assert_eq!(
            client.get(&format!("/r/snapshots/s2/{href}")).0,
            404,
            "snapshots/s2/{href}"
        );
        assert_eq!(client.get(&format!("/r/snapshots/s1/{href}")).0, 200);
    }
    assert_eq!(
        client.get(&format!("/r/snapshots/s1/{}", pkgs[1].href())).0,
        404
    );
}

/// A restart as systemd does it (SIGTERM, wait for the exit, start again) while clients keep
/// requesting through nginx, and once more while nginx only holds files open: the old daemon
/// detaches at once and exits 0; requests that come while no daemon has the mount point are
/// answered 404, every other answer is whole and right. What it costs in time and 404s is
/// measured by contrib/bench/restart-bench.sh (figures in docs/PERFORMANCE.md).
#[test]
fn a_restart_under_load_costs_only_the_gap_between_two_daemons() {
    let _exclusive = chantal_tests::exclusive();
    let env = Env::new();
    let up = upstream_dir();
    let pkgs = synth_pkgs(16, 4096);
    synthetic_repo(up.path(), &pkgs, SynthOptions::default());
    env.repo("r", &format!("file://{}", up.path().display()), "");
    env.chantal(&["init"]).ok();
    env.chantal(&["repo", "sync", "--repo-id", "r"]).ok();
    let ready = "r/latest/repodata/repomd.xml";
    let mut mount = Mount::start(&env, ready);
    let nginx = Nginx::shipped(mount.path());
    let restart = |mount: &mut Mount| {
        let mut old = mount.child.take().unwrap();
        let signalled = Instant::now();
        std::process::Command::new("kill")
            .args(["-TERM", &old.id().to_string()])
            .status()
            .unwrap();
        assert!(old.wait().unwrap().success());
        let exited = signalled.elapsed();
        mount.respawn(&env, ready);
        (exited, signalled.elapsed())
    };
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let (stop, pkgs) = (stop.clone(), pkgs.clone());
            let mut client = Client::connect(&nginx);
            std::thread::spawn(move || {
                let mut seen: Vec<u16> = Vec::new();
                let mut i = c;
                while !stop.load(Ordering::SeqCst) {
                    let p = &pkgs[i % pkgs.len()];
                    let (status, body) = client.get(&format!("/r/latest/{}", p.href()));
                    assert!(
                        status != 200 || body == p.data,
                        "a wrong body for {}",
                        p.href()
                    );
                    seen.push(status);
                    i += 1;
                }
                seen
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut timings = Vec::new();
    for _ in 0..3 {
        timings.push(restart(&mut mount));
        std::thread::sleep(Duration::from_millis(300));
    }
    stop.store(true, Ordering::SeqCst);
    let seen: Vec<u16> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    assert!(
        seen.iter().all(|s| *s == 200 || *s == 404),
        "only 404 while no daemon serves"
    );
    // With nobody requesting, nginx still holds files of the old mount open.
    let mut client = Client::connect(&nginx);
    for p in &pkgs {
        assert_eq!(client.get(&format!("/r/latest/{}", p.href())).0, 200);
    }
    let idle = restart(&mut mount);
    for p in &pkgs {
        let (status, body) = client.get(&format!("/r/latest/{}", p.href()));
        assert!(
            status == 200 && body == p.data,
            "{} after the restart",
            p.href()
        );
    }
    eprintln!(
        "restarts under load (exit after SIGTERM, serving again): {timings:?}, {} of {} requests answered 404; idle: {idle:?}",
        seen.iter().filter(|s| **s == 404).count(),
        seen.len()
    );
    assert!(!mount.log().contains("WARN"), "{}", mount.log());
}

/// The DOM a real browser (Debian's Chromium, headless) builds from `url`.
fn browse(url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(chantal_tests::chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=2000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "chromium {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The links of a directory listing, as the browser parsed them.
fn links(dom: &str) -> Vec<String> {
    dom.split("<a href=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .filter(|h| *h != "../")
        .map(String::from)
        .collect()
}

/// The URL the quickstart prints is a page a person can browse: every level of the tree,
/// environments, versions and points in time included, in a real browser.
#[test]
fn the_served_tree_is_browsable_in_a_browser() {
    let _exclusive = chantal_tests::exclusive();
    let env = Env::new();
    let up = upstream_dir();
    synthetic_repo(up.path(), &synth_pkgs(3, 64), SynthOptions::default());
    env.environments(&["prod"]);
    env.repo("r", &format!("file://{}", up.path().display()), "");
    env.chantal(&["init"]).ok();
    env.sync_snapshot("r", "s1");
    env.promote("prod", "s1");
    let mount = Mount::start(&env, "r/env/prod/repodata/repomd.xml");
    let nginx = Nginx::shipped(mount.path());
    assert_eq!(
        Client::connect(&nginx).get("/").0,
        200,
        "the root is a listing, not a 403"
    );

    let root = browse(&nginx.url("/"));
    assert!(root.contains("Index of /"), "{root}");
    assert_eq!(links(&root), ["r/"]);
    let repo = links(&browse(&nginx.url("/r/")));
    for dir in ["latest/", "snapshots/", "env/", "versions/", "at/"] {
        assert!(repo.contains(&dir.to_string()), "{dir} in {repo:?}");
    }
    assert_eq!(links(&browse(&nginx.url("/r/env/"))), ["prod/"]);
    assert_eq!(links(&browse(&nginx.url("/r/snapshots/"))), ["s1/"]);
    assert_eq!(links(&browse(&nginx.url("/r/versions/"))), ["1/"]);
    let at = links(&browse(&nginx.url("/r/at/")));
    assert_eq!(at.len(), 1, "{at:?}");
    let latest = links(&browse(&nginx.url("/r/latest/")));
    assert!(latest.contains(&"repodata/".to_string()), "{latest:?}");
    let packages = links(&browse(&nginx.url("/r/latest/Packages/")));
    assert_eq!(packages.len(), 3, "{packages:?}");
    assert!(packages.iter().all(|p| p.ends_with(".rpm")), "{packages:?}");
    let prod = links(&browse(&nginx.url("/r/env/prod/repodata/")));
    assert!(prod.iter().any(|p| p == "repomd.xml"), "{prod:?}");
}
