//! `download.policy: on_demand`: a sync fetches and commits metadata only; the catalogue knows
//! every package's size and sha256, the pool holds none of them until they are fetched
//! (`repo sync --download-missing`, a repository switched back to `immediate`, or a client's
//! first read through chantal-fs, which asks `chantal fetchd`).

use std::process::Command;
use std::time::{Duration, Instant};

use chantal_tests::http::{Fault, HttpServer};
use chantal_tests::mount::{wait_for, Mount};
use chantal_tests::repo::{
    createrepo, pool_files, random_bytes, sha256_hex, synthetic_repo, test_rpm, upstream_dir,
    SynthOptions, SynthPkg,
};
use chantal_tests::Env;

const RPMS: &[&str] = &[
    "hello-1.0-1.noarch.rpm",
    "lib-1.0-1.x86_64.rpm",
    "tool-2.0-1.x86_64.rpm",
];

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// Requests the upstream saw for package files.
fn package_requests(server: &HttpServer) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| r.path.ends_with(".rpm"))
        .count()
}

fn pool_rpms(env: &Env) -> usize {
    pool_files(&env.storage())
        .iter()
        .filter(|(p, _)| p.to_string_lossy().ends_with(".rpm"))
        .count()
}

fn absent(env: &Env) -> i64 {
    env.query_i64("SELECT count(*) FROM absent_blobs").unwrap()
}

#[test]
fn an_on_demand_sync_commits_metadata_only_and_download_missing_fills_it() {
    let dir = upstream_dir();
    let rpms: Vec<_> = RPMS.iter().map(|r| test_rpm(r)).collect();
    createrepo(dir.path(), &rpms, &[]);
    let server = HttpServer::start(dir.path());
    let env = Env::new();
    env.repo("r", &server.url("/"), "download:\n  policy: on_demand\n");
    env.chantal(&["init"]).ok();

    let plan = env
        .chantal(&["repo", "sync", "--repo-id", "r", "--dry-run"])
        .ok();
    assert!(
        plan.contains(
            "3 added, 0 removed, 0 unchanged, 3 on demand; would download 0 packages (0 B)"
        ),
        "{plan}"
    );
    let out = env.sync_snapshot("r", "s1");
    assert!(
        out.contains("3 added") && out.contains("3 on demand"),
        "{out}"
    );
    assert_eq!(
        package_requests(&server),
        0,
        "an on-demand sync fetched packages"
    );
    assert_eq!(pool_rpms(&env), 0);
    assert_eq!(env.latest_hrefs("r").len(), 3);
    assert_eq!(absent(&env), 3);

    // What the catalogue says: every package with its size, none of them local.
    let show = json(
        &env.chantal(&["repo", "show", "--repo-id", "r", "--format", "json"])
            .ok(),
    );
    let latest = &show["catalogue"]["latest_local"];
    assert_eq!(latest["local"], 0, "{show}");
    assert_eq!(latest["absent"], 3, "{show}");
    let bytes: u64 = rpms.iter().map(|p| p.metadata().unwrap().len()).sum();
    assert_eq!(latest["absent_bytes"], bytes, "{show}");
    assert_eq!(show["download"]["policy"], "on_demand", "{show}");
    let snap = &show["catalogue"]["snapshot_local"][0];
    assert_eq!((&snap["name"], &snap["absent"]), (&"s1".into(), &3.into()));
    let text = env.chantal(&["repo", "show", "--repo-id", "r"]).ok();
    assert!(
        text.contains("0 of 3 packages (0 B) in the pool, 3 (") && text.contains("on demand"),
        "{text}"
    );

    // Nothing to check for what is not there, and it is said; cleanup keeps the rows.
    let verify = env.chantal(&["pool", "verify"]).ok();
    assert!(
        verify.contains("skipped 3 on-demand packages not fetched yet"),
        "{verify}"
    );
    env.chantal(&["db", "cleanup"]).ok();
    assert_eq!(absent(&env), 3);
    // An unchanged upstream is a no-op, which fetches nothing either.
    let again = env.chantal(&["repo", "sync", "--repo-id", "r"]).ok();
    assert!(again.contains("up to date"), "{again}");
    assert_eq!(package_requests(&server), 0);

    // The export writes real files: refused, naming what to do.
    let export = env.storage().parent().unwrap().join("export");
    env.repo(
        "r",
        &server.url("/"),
        &format!(
            "download:\n  policy: on_demand\npublish:\n  latest_path: {}\n",
            export.join("latest").display()
        ),
    );
    let refused = env.chantal(&["repo", "sync", "--repo-id", "r"]);
    assert_ne!(refused.code(), Some(0));
    assert!(
        refused
            .stderr()
            .contains("3 of its packages are on demand and not fetched yet"),
        "{}",
        refused.stderr()
    );

    let filled = env
        .chantal(&["repo", "sync", "--repo-id", "r", "--download-missing"])
        .ok();
    assert!(filled.contains("fetched 3 on-demand packages"), "{filled}");
    assert!(filled.contains("exported version 1"), "{filled}");
    assert_eq!(package_requests(&server), 3);
    assert_eq!(absent(&env), 0);
    let pool = pool_files(&env.storage());
    assert_eq!(pool_rpms(&env), 3);
    assert!(pool.iter().all(|(_, ok)| *ok), "{pool:?}");
    let show = json(
        &env.chantal(&["repo", "show", "--repo-id", "r", "--format", "json"])
            .ok(),
    );
    assert_eq!(show["catalogue"]["latest_local"]["local"], 3, "{show}");
    assert_eq!(show["catalogue"]["latest_local"]["absent"], 0, "{show}");
    let verify = env.chantal(&["pool", "verify"]).ok();
    assert!(!verify.contains("on-demand"), "{verify}");
    // Filled already: a second run has nothing to fetch.
    let noop = env
        .chantal(&["repo", "sync", "--repo-id", "r", "--download-missing"])
        .ok();
    assert!(!noop.contains("fetched"), "{noop}");
    assert_eq!(package_requests(&server), 3);
}

#[test]
fn immediate_again_fills_in_and_packages_without_a_sha256_are_fetched_at_once() {
    let sha256_dir = upstream_dir();
    let sha1_dir = upstream_dir();
    let rpms: Vec<_> = RPMS.iter().map(|r| test_rpm(r)).collect();
    createrepo(sha256_dir.path(), &rpms, &[]);
    // A pool file is named by its sha256: a package listed with a sha1 cannot wait.
    createrepo(sha1_dir.path(), &rpms[..2], &["-s", "sha1"]);
    let a = HttpServer::start(sha256_dir.path());
    let b = HttpServer::start(sha1_dir.path());
    let env = Env::new();
    // The main configuration's default this time.
    env.download("  policy: on_demand\n");
    env.repo("a", &a.url("/"), "");
    env.repo("b", &b.url("/"), "");
    env.chantal(&["init"]).ok();
    env.chantal(&["repo", "sync", "--all"]).ok();
    assert_eq!(package_requests(&a), 0);
    assert_eq!(
        package_requests(&b),
        2,
        "sha1-listed packages must be fetched now"
    );
    assert_eq!(absent(&env), 1);
    // hello and lib are the same files in both: fetched for b, they are local for a too.
    let show = json(
        &env.chantal(&["repo", "show", "--repo-id", "a", "--format", "json"])
            .ok(),
    );
    assert_eq!(show["catalogue"]["latest_local"]["local"], 2, "{show}");
    assert_eq!(show["catalogue"]["latest_local"]["absent"], 1, "{show}");

    // Back to immediate for a: its next sync, a no-op upstream, fetches what is missing.
    env.repo("a", &a.url("/"), "download:\n  policy: immediate\n");
    let out = env.chantal(&["repo", "sync", "--repo-id", "a"]).ok();
    assert!(out.contains("up to date"), "{out}");
    assert_eq!(package_requests(&a), 1);
    assert_eq!(absent(&env), 0);
    assert_eq!(pool_rpms(&env), 3);
}

/// A running `chantal fetchd`; stopped when dropped.
struct Fetchd {
    child: Option<std::process::Child>,
    log: tempfile::NamedTempFile,
}

impl Fetchd {
    fn start(env: &Env) -> Fetchd {
        let log = tempfile::NamedTempFile::new().unwrap();
        let socket = env.storage().join("run/fetchd.sock");
        let child = env
            .chantal_cmd()
            .arg("fetchd")
            .stdout(std::process::Stdio::null())
            .stderr(log.reopen().unwrap())
            .spawn()
            .unwrap();
        wait_for("the fetcher's socket", || {
            std::os::unix::net::UnixStream::connect(&socket).is_ok()
        });
        Fetchd {
            child: Some(child),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap()
    }

    /// SIGKILL: no clean-up at all, as a crash or the OOM killer leaves it.
    fn kill(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

impl Drop for Fetchd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}

/// An on-demand repository of one large and one small synthetic package, synced, mounted.
struct Served {
    server: HttpServer,
    _dir: tempfile::TempDir,
    env: Env,
    mount: Mount,
    big: SynthPkg,
    small: SynthPkg,
    /// For an upstream that stops answering.
    third: SynthPkg,
}

const BIG: usize = 8 << 20;

fn served() -> Served {
    let dir = upstream_dir();
    let big = SynthPkg::new("big", "noarch", random_bytes(BIG, 7));
    let small = SynthPkg::new("small", "noarch", random_bytes(4096, 8));
    let third = SynthPkg::new("third", "noarch", random_bytes(4096, 9));
    synthetic_repo(
        dir.path(),
        &[big.clone(), small.clone(), third.clone()],
        SynthOptions::default(),
    );
    let server = HttpServer::start(dir.path());
    let env = Env::new();
    // Short timeouts and few retries: a dead upstream fails in seconds, not minutes.
    env.download("  timeout: 3\n  retries: 1\n");
    env.repo("r", &server.url("/"), "download:\n  policy: on_demand\n");
    env.chantal(&["init"]).ok();
    env.chantal(&["repo", "sync", "--repo-id", "r"]).ok();
    let mount = Mount::start(&env, "r/latest/repodata/repomd.xml");
    Served {
        server,
        _dir: dir,
        env,
        mount,
        big,
        small,
        third,
    }
}

impl Served {
    fn file(&self, p: &SynthPkg) -> std::path::PathBuf {
        self.mount.path().join("r/latest").join(p.href())
    }

    fn requests(&self, p: &SynthPkg) -> Vec<chantal_tests::http::Logged> {
        self.server.requests_for(&format!("/{}", p.href()))
    }

    fn in_pool(&self, p: &SynthPkg) -> bool {
        pool_files(&self.env.storage())
            .iter()
            .any(|(f, ok)| *ok && f.to_string_lossy().contains(&sha256_hex(&p.data)))
    }
}

/// Reads a whole file in a thread, with a bound: the mount must never hang a reader.
fn read_bounded(path: std::path::PathBuf) -> std::sync::mpsc::Receiver<std::io::Result<Vec<u8>>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(std::fs::read(&path));
    });
    rx
}

fn result_of(rx: &std::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>) -> std::io::Result<Vec<u8>> {
    rx.recv_timeout(Duration::from_secs(60))
        .expect("a read through the mount hung")
}

#[test]
fn chantal_fs_fetches_an_on_demand_package_once_for_twenty_readers() {
    let s = served();
    // Listed with its real size before anything is fetched.
    let meta = std::fs::metadata(s.file(&s.big)).unwrap();
    assert_eq!(meta.len(), BIG as u64);

    // No fetcher: EIO at once, said once in the log, never a hang.
    let err = result_of(&read_bounded(s.file(&s.small))).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    wait_for("the log line", || {
        s.mount.log().contains("is chantal fetchd running?")
    });

    let fetchd = Fetchd::start(&s.env);
    // Its socket is its user's only, and it answers only for files a version lists.
    use std::os::unix::fs::PermissionsExt;
    let socket = s.env.storage().join("run/fetchd.sock");
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let dir_mode = std::fs::metadata(socket.parent().unwrap())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o077, 0, "{dir_mode:o}");
    for (request, answer) in [
        (
            format!("{{\"sha256\":\"{}\"}}\n", "ab".repeat(32)),
            "no version in the catalogue lists",
        ),
        ("{\"sha256\":\"../../etc/passwd\"}\n".to_string(), "failed"),
        ("not json\n".to_string(), "bad request"),
    ] {
        use std::io::{Read, Write};
        let mut c = std::os::unix::net::UnixStream::connect(&socket).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(request.as_bytes()).unwrap();
        let mut got = String::new();
        c.read_to_string(&mut got).unwrap();
        assert!(got.contains(answer), "{request:?}: {got}");
    }
    assert_eq!(package_requests(&s.server), 0);
    // Slow enough that all twenty readers wait on the same download.
    s.server.throttle(Some(4 << 20));
    let readers: Vec<_> = (0..20).map(|_| read_bounded(s.file(&s.big))).collect();
    for r in &readers {
        let got = result_of(r).unwrap();
        assert!(got == s.big.data, "a reader got other bytes");
    }
    s.server.throttle(None);
    let requests = s.requests(&s.big);
    assert_eq!(
        requests.len(),
        1,
        "one upstream download for 20 readers: {requests:?}"
    );
    wait_for("the pool file", || s.in_pool(&s.big));
    wait_for("2 absent", || absent(&s.env) == 2);
    // Once complete it is an ordinary pool file: opened again, nothing is fetched.
    assert!(std::fs::read(s.file(&s.big)).unwrap() == s.big.data);
    assert_eq!(s.requests(&s.big).len(), 1);
    assert!(result_of(&read_bounded(s.file(&s.small))).unwrap() == s.small.data);
    wait_for("1 absent", || absent(&s.env) == 1);
    let verify = s.env.chantal(&["pool", "verify"]).ok();
    assert!(
        verify.contains("0 missing, 0 wrong size, 0 wrong hash"),
        "{verify}"
    );
    drop(fetchd);
}

#[test]
fn a_corrupt_or_vanished_upstream_file_reads_as_eio_and_nothing_enters_the_pool() {
    let s = served();
    let fetchd = Fetchd::start(&s.env);
    let path = format!("/{}", s.big.href());
    s.server.fail_always(&path, Some(Fault::Corrupt));
    let readers: Vec<_> = (0..3).map(|_| read_bounded(s.file(&s.big))).collect();
    for r in &readers {
        let err = result_of(r).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    }
    assert!(!s.in_pool(&s.big));
    assert_eq!(absent(&s.env), 3);
    // Logged once by each daemon, naming the URL.
    let log = fetchd.log();
    assert_eq!(log.matches("cannot fetch").count(), 1, "{log}");
    assert!(log.contains(&s.server.url(&path)), "{log}");

    // Upstream serves the right file again: a read at most 10 s later gets it.
    s.server.fail_always(&path, None);
    let fixed = Instant::now();
    loop {
        match result_of(&read_bounded(s.file(&s.big))) {
            Ok(data) => {
                assert!(data == s.big.data);
                break;
            }
            Err(_) => {
                assert!(fixed.elapsed() < Duration::from_secs(10), "still failing");
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
    wait_for("the pool file", || s.in_pool(&s.big));

    // Gone upstream: EIO after the configured retries, within the timeout.
    s.server
        .fail_always(&format!("/{}", s.small.href()), Some(Fault::Status(404)));
    let started = Instant::now();
    let err = result_of(&read_bounded(s.file(&s.small))).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(!s.in_pool(&s.small));

    // An upstream that drops every connection: EIO after the retries too.
    s.server
        .fail_always(&format!("/{}", s.third.href()), Some(Fault::Drop));
    let started = Instant::now();
    let err = result_of(&read_bounded(s.file(&s.third))).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(!s.in_pool(&s.third));
}

#[test]
fn a_killed_fetcher_resumes_the_download_with_a_range_request() {
    let s = served();
    let mut fetchd = Fetchd::start(&s.env);
    s.server.throttle(Some(1 << 20));
    let reader = read_bounded(s.file(&s.big));
    wait_for("a partial download", || s.env.partial_bytes() > 1 << 20);
    fetchd.kill();
    // Its reader learns at once that nobody is fetching any more.
    let err = result_of(&reader).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    s.server.throttle(None);
    let _fetchd = Fetchd::start(&s.env);
    assert!(result_of(&read_bounded(s.file(&s.big))).unwrap() == s.big.data);
    let requests = s.requests(&s.big);
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert!(
        requests[1]
            .range
            .as_deref()
            .is_some_and(|r| r.starts_with("bytes=") && !r.starts_with("bytes=0-")),
        "the second request resumes: {requests:?}"
    );
    wait_for("the pool file", || s.in_pool(&s.big));
}

/// Repository `r` at `url`, on demand, trusting `key`: initialised and synced (every package
/// listed, none fetched).
fn synced_on_demand(env: &Env, url: &str, key: &chantal_tests::signing::GpgKey) {
    env.repo(
        "r",
        url,
        &format!(
            "download:\n  policy: on_demand\nrpm:\n  gpgcheck: true\n  gpgkeys: [{}]\n",
            key.public.display()
        ),
    );
    env.chantal(&["init"]).ok();
    env.chantal(&["repo", "sync", "--repo-id", "r"]).ok();
}

/// `--download-missing` checks what it fetches, and the verifications go in with the files'
/// blob rows: a later sync that trusts the key need not read them again.
#[test]
fn download_missing_records_the_signatures_it_checked() {
    use chantal_tests::signing::GpgKey;
    let vendor = GpgKey::new("vendor", "rsa2048");
    let work = upstream_dir();
    let rpms = vendor.sign_rpms(
        &[
            test_rpm("hello-1.0-1.noarch.rpm"),
            test_rpm("tool-2.0-1.x86_64.rpm"),
        ],
        &work.path().join("v"),
    );
    let dir = upstream_dir();
    createrepo(dir.path(), &rpms, &[]);
    let server = HttpServer::start(dir.path());
    let env = Env::new();
    synced_on_demand(&env, &server.url("/"), &vendor);
    assert_eq!(absent(&env), 2);
    let verified = || {
        env.db.strings(
            "SELECT v.fingerprint || ' ' || s.key_ids FROM blob_verifications v \
             JOIN blob_signatures s ON s.blob_sha256 = v.blob_sha256",
            &[],
        )
    };
    assert!(verified().is_empty());
    env.chantal(&["repo", "sync", "--repo-id", "r", "--download-missing"])
        .ok();
    assert_eq!(absent(&env), 0);
    let row = format!("{} {}", vendor.fingerprint, vendor.key_id().to_lowercase());
    assert_eq!(verified(), vec![row.clone(), row]);
}

#[test]
fn dnf_installs_through_nginx_from_an_on_demand_repository_and_a_bad_signature_reads_as_eio() {
    use chantal_tests::nginx::Nginx;
    use chantal_tests::signing::GpgKey;
    let vendor = GpgKey::new("vendor", "rsa2048");
    let stranger = GpgKey::new("stranger", "rsa2048");
    let work = upstream_dir();
    let mut rpms = vendor.sign_rpms(
        &[test_rpm("hello-1.0-1.noarch.rpm")],
        &work.path().join("v"),
    );
    // Signed by a key the repository does not trust: listed, never served.
    rpms.extend(stranger.sign_rpms(&[test_rpm("lib-1.0-1.x86_64.rpm")], &work.path().join("s")));
    let dir = upstream_dir();
    createrepo(dir.path(), &rpms, &[]);
    // A real nginx as the upstream (the shipped site serves any directory).
    let upstream = Nginx::shipped(dir.path());
    let env = Env::new();
    synced_on_demand(&env, &upstream.url("/"), &vendor);
    assert_eq!(absent(&env), 2);
    let mount = Mount::start(&env, "r/latest/repodata/repomd.xml");
    let fetchd = Fetchd::start(&env);
    let mirror = Nginx::shipped(mount.path());

    let (cache, root) = (upstream_dir(), upstream_dir());
    let out =
        chantal_tests::dnf::command(&mirror.url("/r/latest/"), cache.path(), Some(root.path()))
            .args(["--nogpgcheck", "install", "hello"])
            .output()
            .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(root.path().join("usr").exists() || root.path().join("var/lib/rpm").exists());
    // hello was fetched on its first request (its pool name follows the verified read).
    wait_for("hello in the pool", || absent(&env) == 1);
    // Its verification is recorded with it: a sync that trusts the key need not read it.
    assert_eq!(
        env.db
            .strings("SELECT fingerprint FROM blob_verifications", &[]),
        vec![vendor.fingerprint.clone()]
    );

    // The stranger's package: EIO (nginx answers an error), nothing in the pool, logged once
    // with the package and the key.
    let lib = mount.path().join("r/latest/Packages/lib-1.0-1.x86_64.rpm");
    let err = result_of(&read_bounded(lib.clone())).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    assert!(result_of(&read_bounded(lib)).is_err());
    // nginx has sent its headers when the read fails: the client sees the response cut
    // short (or an error status), never the whole file, never a hang.
    let (status, complete) = get_once(&mirror.url("/r/latest/Packages/lib-1.0-1.x86_64.rpm"));
    assert!(
        status >= 500 || !complete,
        "nginx answered {status} in full"
    );
    assert_eq!(absent(&env), 1);
    let log = fetchd.log();
    assert_eq!(log.matches("signature check failed").count(), 1, "{log}");
    assert!(log.contains("lib-1.0-1.x86_64.rpm"), "{log}");
    let stranger_id = stranger.key_id().to_lowercase();
    assert!(log.to_lowercase().contains(&stranger_id), "{log}");
}

/// One GET with a bound: the status, and whether the body came in full (as long as its
/// Content-Length says).
fn get_once(url: &str) -> (u16, bool) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut s = std::net::TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    let text = String::from_utf8_lossy(&got);
    let status: u16 = text[9..12].parse().unwrap();
    let head_end = text.find("\r\n\r\n").map_or(got.len(), |i| i + 4);
    let length = text[..head_end].lines().find_map(|l| {
        l.to_ascii_lowercase()
            .strip_prefix("content-length:")
            .map(|v| v.trim().parse::<usize>().unwrap())
    });
    (status, length.is_some_and(|n| got.len() - head_end == n))
}
