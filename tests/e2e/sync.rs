//! `chantal repo sync` end to end: real upstreams (createrepo_c over real RPMs, synthetic
//! repodata), an HTTP server with injected faults, nginx with TLS client certificates, a real
//! PostgreSQL, and the real binary.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use chantal_tests::http::{Fault, HttpServer};
use chantal_tests::nginx::{certs, Nginx, NginxOptions};
use chantal_tests::repo::{
    createrepo, fixture_rpms, fixtures, pool_files, random_bytes, recompress_zstd, repodata_tree,
    synthetic_repo, test_rpm, test_rpms, upstream_dir, SynthOptions, SynthPkg,
};
use chantal_tests::{Env, Run};

fn file_url(p: &Path) -> String {
    format!("file://{}", p.display())
}

fn assert_pool_sound(env: &Env) {
    let files = pool_files(&env.storage());
    assert!(!files.is_empty());
    for (p, ok) in &files {
        assert!(ok, "{} does not match its name", p.display());
    }
}

/// The error lines of a run's stderr (log lines are separate).
fn error_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("chantal: error"))
        .collect()
}

fn init(env: &Env) {
    env.chantal(&["init"]).ok();
}

#[test]
fn file_sync_filters_architectures_and_noop_resync_is_cheap() {
    let up = upstream_dir();
    createrepo(up.path(), &test_rpms(), &[]);
    let env = Env::new();
    env.repo(
        "local",
        &file_url(up.path()),
        "rpm:\n  architectures: [x86_64]\n",
    );
    init(&env);

    let plan = env
        .chantal(&["repo", "sync", "--repo-id", "local", "--dry-run"])
        .ok();
    assert!(
        plan.starts_with(
            "local: dry run: would be 6 added, 0 removed, 0 unchanged; would download 6 packages"
        ),
        "{plan}"
    );
    let lines: Vec<&str> = plan.lines().skip(1).collect();
    assert_eq!(lines.len(), 5, "{plan}");
    assert!(lines[0].starts_with("  download  6 packages ("), "{plan}");
    assert_eq!(
        &lines[1..],
        [
            "  reuse     0 packages the pool holds",
            "  retain    0 packages upstream dropped",
            "  drop      0 packages of the latest version",
            "  repodata  generated: the architecture filter drops packages",
        ]
    );
    let json = env
        .chantal(&[
            "repo",
            "sync",
            "--repo-id",
            "local",
            "--dry-run",
            "--format",
            "json",
        ])
        .ok();
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let view = &json[0];
    assert_eq!(view["repository"], "local");
    assert_eq!(view["up_to_date"], false);
    assert_eq!(view["counts"]["download"], 6);
    assert_eq!(view["counts"]["added"], 6);
    assert_eq!(
        view["repodata"],
        "generated: the architecture filter drops packages"
    );
    let planned: Vec<(&str, &str)> = view["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["href"].as_str().unwrap(), p["source"].as_str().unwrap()))
        .collect();
    assert!(planned.iter().all(|(_, s)| *s == "download"), "{view}");
    assert!(
        planned.contains(&("Packages/tool-3.0-1.x86_64.rpm", "download")),
        "{view}"
    );
    let verbose = env
        .chantal(&["repo", "sync", "--repo-id", "local", "--dry-run", "-v"])
        .ok();
    assert!(
        verbose
            .lines()
            .any(|l| l.starts_with("  download  Packages/lib-1.0-1.x86_64.rpm lib-1.0-1.x86_64 (")),
        "{verbose}"
    );
    assert_eq!(env.latest("local"), None);
    assert_eq!(env.query_i64("SELECT count(*) FROM sync_history"), Some(0));
    assert!(pool_files(&env.storage())
        .iter()
        .all(|(p, _)| !p.to_string_lossy().ends_with(".rpm")));

    let out = env.chantal(&["repo", "sync", "--repo-id", "local"]).ok();
    assert!(
        out.starts_with("local: version 1: 6 added, 0 removed, 0 unchanged"),
        "{out}"
    );
    assert_eq!(
        env.latest_hrefs("local"),
        [
            "Packages/hello-1.0-1.noarch.rpm",
            "Packages/hello-1.1-1.noarch.rpm",
            "Packages/hello-2.0~rc1-1.noarch.rpm",
            "Packages/lib-1.0-1.x86_64.rpm",
            "Packages/tool-2.0-1.x86_64.rpm",
            "Packages/tool-3.0-1.x86_64.rpm",
        ]
    );
    assert_pool_sound(&env);
    let metadata =
        env.query_i64("SELECT count(*) FROM repository_metadata WHERE removed_in IS NULL");
    assert_eq!(
        metadata,
        Some(5),
        "repomd + primary + filelists + other + the tree manifest"
    );

    let again = env.chantal(&["repo", "sync", "--repo-id", "local"]).ok();
    assert!(
        again.starts_with(
            "local: up to date (version 1): 0 added, 0 removed, 6 unchanged, 0 B downloaded in "
        ),
        "{again}"
    );
    assert_eq!(env.latest("local"), Some(1));
    let json = env
        .chantal(&[
            "repo",
            "sync",
            "--repo-id",
            "local",
            "--dry-run",
            "--format",
            "json",
        ])
        .ok();
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json[0]["up_to_date"], true, "{json}");
    assert_eq!(json[0]["counts"]["unchanged"], 6, "{json}");

    // Listing source packages is a settings change: the next sync recomputes.
    env.repo(
        "local",
        &file_url(up.path()),
        "rpm:\n  architectures: [x86_64, src]\n",
    );
    let out = env
        .chantal(&["repo", "sync", "--repo-id", "local", "-q"])
        .ok();
    assert_eq!(out, "", "quiet prints nothing on success");
    assert_eq!(env.latest("local"), Some(2));
    assert!(env
        .latest_hrefs("local")
        .contains(&"Packages/tool-3.0-1.src.rpm".to_string()));

    let show = env.chantal(&["repo", "show", "--repo-id", "local"]).ok();
    assert!(show.contains("latest version: 2"), "{show}");
    assert!(
        show.contains("up-to-date") && show.contains("success"),
        "{show}"
    );
}

#[test]
fn upstream_changes_make_new_versions() {
    let up = upstream_dir();
    createrepo(
        up.path(),
        &[
            test_rpm("hello-1.0-1.noarch.rpm"),
            test_rpm("lib-1.0-1.x86_64.rpm"),
        ],
        &[],
    );
    let env = Env::new();
    env.repo("r", &file_url(up.path()), "");
    init(&env);
    env.chantal(&["repo", "sync", "--repo-id", "r"]).ok();
    createrepo(
        up.path(),
        &[
            test_rpm("hello-1.1-1.noarch.rpm"),
            test_rpm("lib-1.0-1.x86_64.rpm"),
        ],
        &[],
    );
    let out = env.chantal(&["repo", "sync", "--repo-id", "r"]).ok();
    assert!(
        out.starts_with("r: version 2: 1 added, 1 removed, 1 unchanged"),
        "{out}"
    );
    // Version 1 is still intact in the catalogue: ranges, not copies.
    let v1 = env.query_i64(
        "SELECT count(*) FROM repository_content WHERE added_in <= 1 AND coalesce(removed_in, 99) > 1",
    );
    assert_eq!(v1, Some(2));
}

#[test]
fn http_sync_survives_errors_resets_and_truncation() {
    let up = upstream_dir();
    createrepo(up.path(), &fixture_rpms(), &[]);
    let server = HttpServer::start(up.path());
    let env = Env::new();
    env.download("  retries: 4\n");
    env.repo("web", &server.url(""), "");
    init(&env);
    server.fail_next("/repodata/repomd.xml", &[Fault::Status(503)]);
    server.fail_next(
        "/Packages/Archer-3.4.5-6.x86_64.rpm",
        &[Fault::Status(500), Fault::Status(502)],
    );
    server.fail_next("/Packages/fake_bash-1.1.1-1.x86_64.rpm", &[Fault::Drop]);
    server.fail_next(
        "/Packages/super_kernel-6.0.1-2.x86_64.rpm",
        &[Fault::Truncate(1000)],
    );
    server.fail_next("/Packages/Rimmer-1.0.2-2.x86_64.rpm", &[Fault::Status(429)]);

    let out = env.chantal(&["repo", "sync", "--repo-id", "web"]).ok();
    assert!(out.starts_with("web: version 1: 11 added"), "{out}");
    assert_pool_sound(&env);
    assert_eq!(
        server
            .requests_for("/Packages/Archer-3.4.5-6.x86_64.rpm")
            .len(),
        3
    );
    let sk = server.requests_for("/Packages/super_kernel-6.0.1-2.x86_64.rpm");
    assert_eq!(sk.len(), 2, "{sk:?}");
    assert_eq!(
        sk[1].range.as_deref(),
        Some("bytes=1000-"),
        "resumed with Range: {sk:?}"
    );
    assert_eq!(sk[1].status, 206);

    // A no-op resync is one request for repomd.xml, and the two that look for an installer
    // tree (this upstream has none).
    let before = server.requests().len();
    let again = env.chantal(&["repo", "sync", "--repo-id", "web"]).ok();
    assert!(again.contains("up to date"), "{again}");
    let paths: Vec<String> = server.requests()[before..]
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(paths, ["/repodata/repomd.xml", "/.treeinfo", "/treeinfo"]);
}

#[test]
fn corrupted_package_commits_nothing_unless_partial_is_allowed() {
    let up = upstream_dir();
    createrepo(up.path(), &[test_rpm("hello-1.0-1.noarch.rpm")], &[]);
    let server = HttpServer::start(up.path());
    let env = Env::new();
    env.download("  retries: 1\n");
    env.repo("c", &server.url("/"), "");
    init(&env);
    env.chantal(&["repo", "sync", "--repo-id", "c"]).ok();

    createrepo(
        up.path(),
        &[
            test_rpm("hello-1.0-1.noarch.rpm"),
            test_rpm("lib-1.0-1.x86_64.rpm"),
            test_rpm("tool-2.0-1.x86_64.rpm"),
        ],
        &[],
    );
    server.fail_always("/Packages/lib-1.0-1.x86_64.rpm", Some(Fault::Corrupt));
    let run = env.chantal(&["repo", "sync", "--repo-id", "c"]);
    let err = run.fails();
    assert_eq!(run.code(), Some(1));
    assert!(
        err.contains("c: 1 of 3 packages failed, nothing committed (latest stays version 1)"),
        "{err}"
    );
    assert!(
        err.contains("lib-1.0-1.x86_64: ") && err.contains("checksum mismatch"),
        "{err}"
    );
    assert_eq!(env.latest("c"), Some(1));
    assert_pool_sound(&env);
    // The good new package was kept for the next run; the bad one never entered the pool.
    let names: Vec<String> = pool_files(&env.storage())
        .iter()
        .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().any(|n| n.ends_with("_tool-2.0-1.x86_64.rpm")),
        "{names:?}"
    );
    assert!(
        !names.iter().any(|n| n.ends_with("_lib-1.0-1.x86_64.rpm")),
        "{names:?}"
    );
    // The good package's row was created while the packages downloaded, not by the commit
    // that never came; the bad one has none.
    let rows = |name: &str| {
        env.query_i64(&format!(
            "SELECT count(*) FROM packages WHERE name = '{name}'"
        ))
    };
    assert_eq!((rows("tool"), rows("lib")), (Some(1), Some(0)));
    let tmp: Vec<_> = std::fs::read_dir(env.storage().join("data/tmp"))
        .unwrap()
        .collect();
    assert!(
        tmp.iter().all(|e| !e
            .as_ref()
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains("pkg-sha256")
            || !e.as_ref().unwrap().path().exists()),
        "no corrupt partial kept"
    );
    let history = env.chantal(&["repo", "show", "--repo-id", "c"]).ok();
    assert!(history.contains("failed"), "{history}");

    let run = env.chantal(&["repo", "sync", "--repo-id", "c", "--allow-partial"]);
    assert_eq!(run.code(), Some(2), "{}", run.stderr());
    assert!(
        run.stdout()
            .starts_with("c: version 2: 1 added, 0 removed, 1 unchanged"),
        "{}",
        run.stdout()
    );
    assert!(
        run.stderr().contains("lib-1.0-1.x86_64"),
        "{}",
        run.stderr()
    );
    assert!(!env
        .latest_hrefs("c")
        .contains(&"Packages/lib-1.0-1.x86_64.rpm".to_string()));

    // Once upstream serves it correctly, a normal sync completes the set.
    server.fail_always("/Packages/lib-1.0-1.x86_64.rpm", None);
    let out = env.chantal(&["repo", "sync", "--repo-id", "c"]).ok();
    assert!(out.starts_with("c: version 3: 1 added"), "{out}");
}

#[test]
fn client_errors_are_not_retried_and_name_the_url() {
    let up = upstream_dir();
    createrepo(up.path(), &[test_rpm("hello-1.0-1.noarch.rpm")], &[]);
    let server = HttpServer::start(up.path());
    let env = Env::new();
    env.repo("nf", &server.url("/nothing-here"), "");
    init(&env);
    let err = env.chantal(&["repo", "sync", "--repo-id", "nf"]).fails();
    assert!(
        err.contains(&format!(
            "{}/repodata/repomd.xml: HTTP 404",
            server.url("/nothing-here")
        )),
        "{err}"
    );
    assert_eq!(server.requests().len(), 1, "404 is not retried");
    assert_eq!(env.latest("nf"), None);

    server.require_basic("mirror", "s3cret");
    env.repo(
        "auth",
        &server.url(""),
        "credentials:\n  type: basic\n  username: mirror\n  password: wrong\n",
    );
    let err = env.chantal(&["repo", "sync", "--repo-id", "auth"]).fails();
    assert!(
        err.contains("HTTP 401 (unauthorized: check credentials)"),
        "{err}"
    );
    assert!(!err.contains("wrong"), "password leaked: {err}");
    env.repo(
        "auth",
        &server.url(""),
        "credentials:\n  type: basic\n  username: mirror\n  password: s3cret\n",
    );
    env.chantal(&["repo", "sync", "--repo-id", "auth"]).ok();
}

#[test]
fn dead_server_is_a_clear_error() {
    let env = Env::new();
    env.download("  retries: 1\n");
    env.repo("dead", "http://127.0.0.1:1/repo", "");
    init(&env);
    let run = env.chantal(&["repo", "sync", "--repo-id", "dead"]);
    let err = run.fails();
    let errors = error_lines(&err);
    assert_eq!(errors.len(), 1, "{err}");
    assert!(
        errors[0]
            .starts_with("chantal: error: dead: http://127.0.0.1:1/repo/repodata/repomd.xml: "),
        "{err}"
    );
    assert!(errors[0].contains("Connection refused"), "{err}");
}

#[test]
fn shared_packages_are_stored_and_fetched_once() {
    let a = upstream_dir();
    let b = upstream_dir();
    createrepo(a.path(), &test_rpms(), &["-s", "sha256"]);
    // The same files listed under sha1 and sha512 checksums, compressed differently.
    createrepo(
        b.path(),
        &test_rpms(),
        &["-s", "sha1", "--general-compress-type", "xz"],
    );
    let c = upstream_dir();
    createrepo(
        c.path(),
        &test_rpms(),
        &["-s", "sha512", "--repomd-checksum", "sha256"],
    );
    recompress_zstd(c.path());
    let server = HttpServer::start(b.path());
    let env = Env::new();
    env.repo("a", &file_url(a.path()), "");
    env.repo("b", &server.url(""), "");
    env.repo("c", &file_url(c.path()), "");
    init(&env);
    let out = env.chantal(&["repo", "sync", "--repo-id", "a"]).ok();
    assert!(out.contains("version 1: 7 added"), "{out}");
    let files = pool_files(&env.storage()).len();
    let out = env.chantal(&["repo", "sync", "--repo-id", "b"]).ok();
    // Only its repodata is downloaded (the summary counts those bytes too).
    assert!(
        out.contains("version 1: 7 added, 0 removed, 0 unchanged, "),
        "{out}"
    );
    let pkg_requests = server
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/Packages/"))
        .count();
    assert_eq!(pkg_requests, 0, "packages the pool holds are not requested");
    let out = env.chantal(&["repo", "sync", "--repo-id", "c"]).ok();
    assert!(out.contains("version 1: 7 added"), "{out}");
    // The three repositories share one copy of each package; only repodata was added.
    let rpms = pool_files(&env.storage())
        .iter()
        .filter(|(p, _)| p.to_string_lossy().ends_with(".rpm"))
        .count();
    assert_eq!(rpms, 7);
    assert!(pool_files(&env.storage()).len() > files);
    assert_eq!(env.query_i64("SELECT count(*) FROM packages"), Some(7));
    assert_pool_sound(&env);
}

#[test]
fn every_repodata_compression_and_checksum_is_read() {
    let env = Env::new();
    init(&env);
    let mut dirs = Vec::new();
    for (i, (sum, comp)) in [
        ("sha1", "bz2"),
        ("sha512", "gz"),
        ("sha256", "xz"),
        ("sha256", "zstd"),
    ]
    .iter()
    .enumerate()
    {
        let up = upstream_dir();
        // Debian's createrepo_c has no zstd: recompress its gzip output instead.
        let gen = if *comp == "zstd" { "gz" } else { comp };
        let repomd_sum = if *comp == "zstd" { "sha256" } else { sum };
        createrepo(
            up.path(),
            &fixture_rpms(),
            &[
                "-s",
                sum,
                "--repomd-checksum",
                repomd_sum,
                "--general-compress-type",
                gen,
            ],
        );
        if *comp == "zstd" {
            recompress_zstd(up.path());
        }
        let name = format!("r{i}");
        env.repo(&name, &file_url(up.path()), "");
        let out = env.chantal(&["repo", "sync", "--repo-id", &name]).ok();
        assert!(out.contains("version 1: 11 added"), "{sum}/{comp}: {out}");
        dirs.push(up);
    }
    assert_pool_sound(&env);
}

fn big_upstream(dir: &Path) -> SynthPkg {
    let pkg = SynthPkg::new("big", "x86_64", random_bytes(12 << 20, 7));
    synthetic_repo(
        dir,
        &[
            pkg.clone(),
            SynthPkg::new("small", "noarch", random_bytes(1000, 1)),
        ],
        SynthOptions::default(),
    );
    pkg
}

/// The size of the largest partial download in the pool's `data/tmp`. A sync running
/// meanwhile removes partial files as it adopts them: one gone between the listing and its
/// `stat` is skipped.
fn partial_size(env: &Env) -> u64 {
    std::fs::read_dir(env.storage().join("data/tmp"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("pkg-"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .max()
        .unwrap_or(0)
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn kill_9_mid_download_resumes_with_range() {
    let up = upstream_dir();
    let pkg = big_upstream(up.path());
    let server = HttpServer::start(up.path());
    server.throttle(Some(4 << 20));
    let env = Env::new();
    env.repo("big", &server.url(""), "");
    init(&env);
    let mut child = env.spawn_sync("big");
    wait_for("a partial download", || partial_size(&env) > 1 << 20);
    Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    let kept = partial_size(&env);
    assert!(kept > 1 << 20 && kept < 12 << 20, "{kept}");
    assert_eq!(env.latest("big"), None, "nothing committed");

    server.throttle(None);
    let out = env.chantal(&["repo", "sync", "--repo-id", "big"]).ok();
    assert!(out.starts_with("big: version 1: 2 added"), "{out}");
    let reqs = server.requests_for(&format!("/{}", pkg.href()));
    let last = reqs.last().unwrap();
    let from: u64 = last
        .range
        .as_deref()
        .unwrap()
        .trim_start_matches("bytes=")
        .trim_end_matches('-')
        .parse()
        .unwrap();
    assert!(from >= kept.min(1 << 20), "resumed from {from}: {reqs:?}");
    assert_eq!(last.status, 206);
    assert_pool_sound(&env);
    assert_eq!(partial_size(&env), 0, "partial file moved into the pool");
    let show = env.chantal(&["repo", "show", "--repo-id", "big"]).ok();
    assert!(
        show.contains("interrupted") && show.contains("killed or crashed"),
        "{show}"
    );
}

#[test]
fn sigterm_stops_cleanly_and_keeps_partials() {
    let up = upstream_dir();
    big_upstream(up.path());
    let server = HttpServer::start(up.path());
    server.throttle(Some(4 << 20));
    let env = Env::new();
    env.repo("big", &server.url(""), "");
    init(&env);
    let child = env.spawn_sync("big");
    wait_for("a partial download", || partial_size(&env) > 1 << 20);
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let run = Run(child.wait_with_output().unwrap());
    assert_eq!(run.code(), Some(130), "{}", run.stderr());
    assert!(run.stderr().contains("interrupted"), "{}", run.stderr());
    assert!(partial_size(&env) > 1 << 20, "partial kept for resume");
    assert_eq!(env.latest("big"), None);
    let status = env.db.strings(
        "SELECT status FROM sync_history ORDER BY id DESC LIMIT 1",
        &[],
    )[0]
    .clone();
    assert_eq!(status, "interrupted");
}

#[test]
fn a_second_sync_of_the_same_repository_is_refused() {
    let up = upstream_dir();
    big_upstream(up.path());
    let server = HttpServer::start(up.path());
    server.throttle(Some(2 << 20));
    let env = Env::new();
    env.repo("big", &server.url(""), "");
    init(&env);
    let mut first = env.spawn_sync("big");
    wait_for("the first sync to download", || partial_size(&env) > 0);
    let started = Instant::now();
    let run = env.chantal(&["repo", "sync", "--repo-id", "big"]);
    let err = run.fails();
    assert!(started.elapsed() < Duration::from_secs(5));
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert!(
        err.contains(&format!(
            "big is being synced by {} pid {} since ",
            host.trim(),
            first.id()
        )),
        "{err}"
    );
    Command::new("kill")
        .args(["-9", &first.id().to_string()])
        .status()
        .unwrap();
    first.wait().unwrap();
    // The killed sync's lock went with it.
    let cat = chantal_common::catalogue::Catalogue::open(&env.db.url).unwrap();
    assert!(!cat.sync_lock_held("big").unwrap());
    assert!(cat.try_lock_sync("big", "test", 1).unwrap().is_ok());
}

fn hostile(env: &Env, name: &str, pkgs: &[SynthPkg], opts: SynthOptions) -> String {
    let up = upstream_dir();
    synthetic_repo(up.path(), pkgs, opts);
    env.repo(name, &file_url(up.path()), "");
    let run = env.chantal(&["repo", "sync", "--repo-id", name]);
    let err = run.fails();
    assert_eq!(run.code(), Some(1));
    assert_eq!(env.latest(name), None, "{name}: nothing committed");
    err
}

#[test]
fn hostile_metadata_is_refused_with_a_clear_error() {
    let env = Env::new();
    init(&env);
    let pkg = SynthPkg::new("p", "noarch", b"payload".to_vec());
    let href = pkg.href();
    // Each case rewrites the generated primary.xml (or replaces it) before it is compressed.
    let rewrite = |from: String, to: String| SynthOptions {
        primary_hook: Box::new(move |s| s.replace(&from, &to)),
        ..Default::default()
    };
    let cases: Vec<(&str, SynthOptions, &str)> = vec![
        (
            "absolute",
            rewrite(href.clone(), "/etc/passwd".into()),
            "absolute location href \"/etc/passwd\"",
        ),
        (
            "dotdot",
            rewrite(href.clone(), "../../../../tmp/evil.rpm".into()),
            "contains '..'",
        ),
        (
            "xmlbase",
            rewrite(
                "<location href".into(),
                "<location xml:base=\"http://evil.example/\" href".into(),
            ),
            "xml:base \"http://evil.example/\" points outside the repository",
        ),
        (
            "size",
            rewrite(
                "package=\"7\"".into(),
                "package=\"99999999999999999\"".into(),
            ),
            "absurdly large",
        ),
        (
            "entity",
            SynthOptions {
                primary_hook: Box::new(|s| {
                    s.replacen(
                        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
                        "<?xml version=\"1.0\"?><!DOCTYPE metadata [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>",
                        1,
                    )
                    .replace("<name>p</name>", "<name>&xxe;</name>")
                }),
                ..Default::default()
            },
            "DTD",
        ),
        (
            "bomb",
            SynthOptions {
                primary_bytes: Some(zstd_bomb()),
                ..Default::default()
            },
            "decompression bomb",
        ),
        (
            "truncated",
            SynthOptions {
                primary_hook: Box::new(|s| s[..s.len() / 2].to_string()),
                ..Default::default()
            },
            "primary.xml.gz: ",
        ),
    ];
    for (name, opts, expected) in cases {
        let err = hostile(&env, name, std::slice::from_ref(&pkg), opts);
        let errors = error_lines(&err);
        assert_eq!(errors.len(), 1, "{name}: {err}");
        assert!(errors[0].contains(expected), "{name}: {err}");
    }
    assert!(!Path::new("/tmp/evil.rpm").exists());
    for (p, ok) in pool_files(&env.storage()) {
        assert!(ok, "{}", p.display());
    }

    // repomd.xml that is not XML at all (an HTML error page, say).
    let up = upstream_dir();
    synthetic_repo(
        up.path(),
        std::slice::from_ref(&pkg),
        SynthOptions::default(),
    );
    std::fs::write(
        up.path().join("repodata/repomd.xml"),
        "<html><body>502 Bad Gateway</body></html>",
    )
    .unwrap();
    env.repo("html", &file_url(up.path()), "");
    let err = env.chantal(&["repo", "sync", "--repo-id", "html"]).fails();
    assert!(
        err.contains("repodata/repomd.xml: root element is <html>, not <repomd>"),
        "{err}"
    );
}

fn zstd_bomb() -> Vec<u8> {
    let mut xml = String::from("<?xml version=\"1.0\"?>\n<metadata packages=\"1\">\n");
    xml.push_str(&" ".repeat(256 << 20));
    xml.push_str("</metadata>\n");
    zstd::encode_all(xml.as_bytes(), 19).unwrap()
}

#[test]
fn createrepo_c_malformed_files_give_clear_errors() {
    let env = Env::new();
    init(&env);
    let dir = fixtures().join("createrepo_c/modified_repo_files");
    for (file, expected) in [
        ("error_00-primary.xml", "no checksum type"),
        ("long_primary.xml", ""),
        ("repo_01_ampersand-primary.xml", ""),
    ] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        let up = upstream_dir();
        synthetic_repo(
            up.path(),
            &[],
            SynthOptions {
                primary_hook: Box::new(move |_| text.clone()),
                write_packages: false,
                ..Default::default()
            },
        );
        let name = file.split('.').next().unwrap().replace('_', "-");
        env.repo(&name, &file_url(up.path()), "");
        let run = env.chantal(&["repo", "sync", "--repo-id", &name]);
        let err = run.stderr();
        assert!(
            !run.0.status.success(),
            "{file}: metadata without package files must fail"
        );
        assert_eq!(
            err.lines()
                .filter(|l| l.starts_with("chantal: error"))
                .count(),
            1,
            "{file}: {err}"
        );
        assert!(err.contains(expected), "{file}: {err}");
        assert!(!err.contains("panicked"), "{file}: {err}");
    }
}

#[test]
fn sync_all_continues_past_a_failing_repository() {
    let up = upstream_dir();
    createrepo(up.path(), &[test_rpm("hello-1.0-1.noarch.rpm")], &[]);
    let env = Env::new();
    env.download("  retries: 0\n");
    env.repo("a-good", &file_url(up.path()), "");
    env.repo("b-broken", "file:///nonexistent/chantal-repo", "");
    env.repo("c-good", &file_url(up.path()), "");
    env.repo("d-off", "file:///nonexistent/off", "enabled: false\n");
    init(&env);
    let run = env.chantal(&["repo", "sync", "--all"]);
    let err = run.fails();
    assert_eq!(run.code(), Some(1));
    assert!(
        run.stdout().contains("a-good: version 1") && run.stdout().contains("c-good: version 1"),
        "{}",
        run.stdout()
    );
    assert!(
        err.contains("b-broken") && err.contains("2 of 3 repositories synced; failed: b-broken"),
        "{err}"
    );
    assert_eq!(env.latest("d-off"), None);
}

#[test]
fn tls_client_certificates() {
    let up = upstream_dir();
    createrepo(up.path(), &[test_rpm("hello-1.0-1.noarch.rpm")], &[]);
    let nginx = Nginx::start(
        up.path(),
        &NginxOptions {
            client_cert: true,
            ..Default::default()
        },
    );
    let c = certs();
    let env = Env::new();
    env.download("  retries: 0\n");
    init(&env);
    let cred = |cert: &Path, key: &Path, ca: &Path| {
        format!(
            "credentials:\n  type: client_cert\n  cert: {}\n  key: {}\n  ca_cert: {}\n",
            cert.display(),
            key.display(),
            ca.display()
        )
    };
    env.repo(
        "ok",
        &nginx.url("/"),
        &cred(&c.client_cert, &c.client_key, &c.ca),
    );
    let out = env.chantal(&["repo", "sync", "--repo-id", "ok"]).ok();
    assert!(out.starts_with("ok: version 1: 1 added"), "{out}");

    env.repo(
        "missing",
        &nginx.url("/"),
        &format!("credentials:\n  ca_cert: {}\n", c.ca.display()),
    );
    let err = env
        .chantal(&["repo", "sync", "--repo-id", "missing"])
        .fails();
    assert!(
        err.contains("HTTP 400 (bad request: a server that requires a client certificate"),
        "{err}"
    );

    env.repo(
        "wrong",
        &nginx.url("/"),
        &cred(&c.wrong_client_cert, &c.wrong_client_key, &c.ca),
    );
    let err = env.chantal(&["repo", "sync", "--repo-id", "wrong"]).fails();
    assert!(
        err.contains("HTTP 400") || err.contains("rejected the client certificate"),
        "{err}"
    );

    env.repo(
        "noca",
        &nginx.url("/"),
        &cred(&c.client_cert, &c.client_key, &c.other_ca),
    );
    let err = env.chantal(&["repo", "sync", "--repo-id", "noca"]).fails();
    assert!(err.contains("not signed by a trusted CA"), "{err}");

    let key = c.dir.join("absent-key.pem");
    env.repo("nokey", &nginx.url("/"), &cred(&c.client_cert, &key, &c.ca));
    let err = env.chantal(&["repo", "sync", "--repo-id", "nokey"]).fails();
    assert!(
        err.contains("nokey.yaml:") && err.contains("credentials.key: cannot read"),
        "{err}"
    );
}

#[test]
fn tls_basic_auth_with_private_ca() {
    let up = upstream_dir();
    createrepo(up.path(), &[test_rpm("hello-1.0-1.noarch.rpm")], &[]);
    let nginx = Nginx::start(
        up.path(),
        &NginxOptions {
            basic: Some(("mirror".into(), "pa55".into())),
            ..Default::default()
        },
    );
    let env = Env::new();
    env.download("  retries: 0\n");
    init(&env);
    let ca = certs().ca.display().to_string();
    env.repo(
        "right",
        &nginx.url(""),
        &format!(
            "credentials:\n  type: basic\n  username: mirror\n  password: pa55\n  ca_cert: {ca}\n"
        ),
    );
    env.chantal(&["repo", "sync", "--repo-id", "right"]).ok();
    env.repo(
        "wrong",
        &nginx.url(""),
        &format!(
            "credentials:\n  type: basic\n  username: mirror\n  password: nope\n  ca_cert: {ca}\n"
        ),
    );
    let err = env.chantal(&["repo", "sync", "--repo-id", "wrong"]).fails();
    assert!(err.contains("HTTP 401"), "{err}");
}

/// A tmpfs mounted for one test (the tests run as root) and unmounted when dropped.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn new(size: &str) -> Tmpfs {
        let dir = tempfile::Builder::new()
            .prefix("chantal-tmpfs-")
            .tempdir()
            .unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap()
            .success();
        assert!(ok, "mounting a tmpfs needs root");
        Tmpfs(dir)
    }
    fn path(&self) -> &Path {
        self.0.path()
    }
    fn remount_ro(&self) {
        let ok = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(self.path())
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.path()).status();
    }
}

fn env_with_storage(storage: &Path) -> Env {
    let env = Env::new();
    env.write(
        "config.yaml",
        &format!(
            "include: conf.d/*.yaml\nstorage:\n  base_path: {}\ndatabase:\n  url: \"{}\"\n",
            storage.display(),
            // Named explicitly: the SQLite default would follow the storage onto the small disk.
            env.db.url
        ),
    );
    env
}

#[test]
fn a_full_disk_fails_cleanly() {
    let up = upstream_dir();
    big_upstream(up.path());
    let disk = Tmpfs::new("6m");
    let env = env_with_storage(disk.path());
    env.download("  retries: 0\n");
    env.repo("big", &file_url(up.path()), "");
    init(&env);
    let run = env.chantal(&["repo", "sync", "--repo-id", "big"]);
    let err = run.fails();
    assert_eq!(run.code(), Some(1));
    assert!(
        // Which downloads hit the full disk depends on their order: one or both.
        err.contains(" of 2 packages failed, nothing committed"),
        "{err}"
    );
    assert!(err.contains("No space left on device"), "{err}");
    assert_eq!(env.latest("big"), None);
    for (p, ok) in pool_files(disk.path()) {
        assert!(ok, "{} does not match its name", p.display());
    }
}

/// The disk filling up while the package list is parsed is a local I/O error naming the
/// temporary file, not a fault of upstream's primary.xml.
#[test]
fn a_full_disk_while_parsing_is_not_blamed_on_upstream() {
    let primary = std::fs::read_dir(fixtures().join("cs9/appstream/repodata"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with("-primary.xml.gz"))
        .unwrap();
    let tree = repodata_tree(&[("primary", &primary)]);
    let upstream = tree.path();
    // The repodata (3.6 MB) fits; the fragments kept for the commit (some 40 MB) do not.
    let disk = Tmpfs::new("12m");
    let env = env_with_storage(disk.path());
    env.repo("appstream", &file_url(upstream), "");
    init(&env);
    let run = env.chantal(&["repo", "sync", "--repo-id", "appstream"]);
    let err = run.fails();
    let errors = error_lines(&err);
    assert_eq!(errors.len(), 1, "{err}");
    assert!(
        errors[0].starts_with(&format!(
            "chantal: error: appstream: cannot write a temporary file in {}",
            disk.path().display()
        )),
        "{err}"
    );
    assert!(errors[0].contains("No space left on device"), "{err}");
    assert!(!errors[0].contains("primary.xml"), "{err}");
    assert_eq!(env.latest("appstream"), None);
}

#[test]
fn an_unwritable_pool_fails_cleanly() {
    let up = upstream_dir();
    createrepo(up.path(), &[test_rpm("hello-1.0-1.noarch.rpm")], &[]);
    let disk = Tmpfs::new("16m");
    let env = env_with_storage(disk.path());
    env.repo("ro", &file_url(up.path()), "");
    init(&env);
    disk.remount_ro();
    let run = env.chantal(&["repo", "sync", "--repo-id", "ro"]);
    let err = run.fails();
    let errors = error_lines(&err);
    assert_eq!(errors.len(), 1, "{err}");
    assert!(errors[0].contains("Read-only file system"), "{err}");
    assert!(
        errors[0].contains(&disk.path().display().to_string()),
        "{err}"
    );
    assert_eq!(env.latest("ro"), None);
}

#[test]
fn the_catalogue_going_away_mid_sync_commits_nothing() {
    let up = upstream_dir();
    big_upstream(up.path());
    let server = HttpServer::start(up.path());
    server.throttle(Some(6 << 20));
    let cluster = chantal_tests::pg::Cluster::start();
    let env = Env::with_db(chantal_tests::TestDb::on(&cluster));
    env.repo("big", &server.url(""), "");
    init(&env);
    // The test cluster commits asynchronously: make the schema durable before the crash.
    env.db.execute_batch("CHECKPOINT");
    let child = env.spawn_sync("big");
    wait_for("a partial download", || partial_size(&env) > 1 << 20);
    cluster.stop();
    let run = Run(child.wait_with_output().unwrap());
    let err = run.fails();
    assert_eq!(run.code(), Some(1));
    let errors = error_lines(&err);
    assert_eq!(errors.len(), 1, "{err}");
    assert!(
        errors[0].contains("cannot connect to the catalogue database"),
        "{err}"
    );
    for (p, ok) in pool_files(&env.storage()) {
        assert!(ok, "{} does not match its name", p.display());
    }
    cluster.restart();
    assert_eq!(env.latest("big"), None, "nothing committed");
    server.throttle(None);
    let out = env.chantal(&["repo", "sync", "--repo-id", "big"]).ok();
    assert!(out.starts_with("big: version 1: 2 added"), "{out}");
}

#[test]
fn packages_listed_twice_are_synced_once() {
    let up = upstream_dir();
    let src = fixtures().join("createrepo_c/repo_with_duplicate_packages/repodata");
    std::fs::create_dir_all(up.path().join("repodata")).unwrap();
    for f in std::fs::read_dir(&src).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), up.path().join("repodata").join(f.file_name())).unwrap();
    }
    for rpm in [
        "fake_bash-1.1.1-1.x86_64.rpm",
        "super_kernel-6.0.1-2.x86_64.rpm",
    ] {
        std::fs::copy(
            fixtures().join("createrepo_c/packages").join(rpm),
            up.path().join(rpm),
        )
        .unwrap();
    }
    let env = Env::new();
    env.repo("dup", &file_url(up.path()), "");
    init(&env);
    let run = env.chantal(&["repo", "sync", "--repo-id", "dup"]);
    let out = run.ok();
    assert!(out.starts_with("dup: version 1: 2 added"), "{out}");
    let err = run.stderr();
    assert!(
        err.contains("fake_bash-1.1.1-1.x86_64.rpm is listed more than once upstream"),
        "{err}"
    );
    assert!(err.contains("2 duplicates skipped"), "{err}");
    assert_eq!(
        env.latest_hrefs("dup"),
        [
            "fake_bash-1.1.1-1.x86_64.rpm",
            "super_kernel-6.0.1-2.x86_64.rpm"
        ]
    );
}

#[test]
fn downloads_go_through_the_configured_proxy() {
    let up = upstream_dir();
    createrepo(up.path(), &[test_rpm("hello-1.0-1.noarch.rpm")], &[]);
    // The "proxy" serves the upstream's files for absolute-form requests; the upstream host
    // itself does not resolve, so only the proxy path can work.
    let proxy = HttpServer::start(up.path());
    let env = Env::new();
    let port = proxy.url("").rsplit(':').next().unwrap().to_string();
    env.download(&format!(
        "  retries: 0\n  proxy: http://pxuser:pxpass@127.0.0.1:{port}\n"
    ));
    env.repo(
        "viaproxy",
        "http://upstream.chantal.invalid",
        "credentials:\n  type: basic\n  username: mirror\n  password: s3cret\n",
    );
    init(&env);
    env.chantal(&["repo", "sync", "--repo-id", "viaproxy"]).ok();
    let reqs = proxy.requests();
    assert!(!reqs.is_empty());
    for r in &reqs {
        assert!(
            r.target.starts_with("http://upstream.chantal.invalid/"),
            "{r:?}"
        );
        assert_eq!(
            r.proxy_authorization.as_deref(),
            Some(chantal_tests::http::basic_header("pxuser", "pxpass").as_str()),
            "{r:?}"
        );
        assert_eq!(
            r.authorization.as_deref(),
            Some(chantal_tests::http::basic_header("mirror", "s3cret").as_str()),
            "upstream credentials go to the upstream, proxy credentials only to the proxy: {r:?}"
        );
    }
    let show = env.chantal(&["repo", "show", "--repo-id", "viaproxy"]).ok();
    assert!(show.contains("http://pxuser:****@127.0.0.1:"), "{show}");
    assert!(!show.contains("pxpass"), "{show}");
}

#[test]
fn a_server_ignoring_range_gets_a_fresh_download() {
    let up = upstream_dir();
    let pkg = big_upstream(up.path());
    let server = HttpServer::start(up.path());
    let env = Env::new();
    env.download("  retries: 2\n");
    env.repo("norange", &server.url(""), "");
    init(&env);
    let path = format!("/{}", pkg.href());
    server.ignore_range(true);
    server.fail_next(&path, &[Fault::Truncate(3 << 20)]);
    let out = env.chantal(&["repo", "sync", "--repo-id", "norange"]).ok();
    assert!(out.starts_with("norange: version 1: 2 added"), "{out}");
    let reqs = server.requests_for(&path);
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert_eq!(reqs[1].range.as_deref(), Some("bytes=3145728-"));
    assert_eq!(reqs[1].status, 200, "the server sent the whole file again");
    assert_pool_sound(&env);
}

#[test]
fn cleanup_during_a_running_sync_keeps_its_files() {
    let up = upstream_dir();
    big_upstream(up.path());
    let server = HttpServer::start(up.path());
    server.throttle(Some(6 << 20));
    let env = Env::new();
    env.repo("big", &server.url(""), "");
    init(&env);
    let child = env.spawn_sync("big");
    // The small package and the metadata are in the pool and recorded; the big one downloads.
    wait_for("a partial download", || partial_size(&env) > 1 << 20);
    let out = env.chantal(&["db", "cleanup", "--grace", "0"]).ok();
    assert!(
        out.contains("removed: 0 versions, 0 package rows, 0 files"),
        "{out}"
    );
    let run = Run(child.wait_with_output().unwrap());
    assert!(run.0.status.success(), "{}", run.stderr());
    assert!(
        run.stdout().starts_with("big: version 1: 2 added"),
        "{}",
        run.stdout()
    );
    assert_pool_sound(&env);
    let again = env.chantal(&["repo", "sync", "--repo-id", "big"]).ok();
    assert!(again.contains("up to date"), "{again}");
}

/// A server that asks to wait (429/503 with Retry-After) is waited for, up to
/// download.timeout; a failure that outlasts the retries says how many there were.
#[test]
fn retry_after_is_honoured_and_the_last_error_counts_the_retries() {
    let up = upstream_dir();
    createrepo(up.path(), &[test_rpm("hello-1.0-1.noarch.rpm")], &[]);
    let server = HttpServer::start(up.path());
    let env = Env::new();
    env.download("  retries: 2\n");
    env.repo("web", &server.url(""), "");
    init(&env);
    server.fail_next(
        "/repodata/repomd.xml",
        &[Fault::RetryAfter(503, "2".into())],
    );
    server.fail_next(
        "/Packages/hello-1.0-1.noarch.rpm",
        &[Fault::RetryAfter(429, "1".into())],
    );
    env.chantal(&["repo", "sync", "--repo-id", "web"]).ok();
    for (path, asked) in [
        ("/repodata/repomd.xml", 2),
        ("/Packages/hello-1.0-1.noarch.rpm", 1),
    ] {
        let seen = server.requests_for(path);
        assert_eq!(seen.len(), 2, "{path}: {seen:?}");
        // The retry came no sooner than the server asked (the backoff alone is 125-250 ms).
        assert!(
            seen[1].at.duration_since(seen[0].at) >= Duration::from_secs(asked),
            "{path}"
        );
    }
    // Always unavailable: two retries, then one line that says so.
    createrepo(
        up.path(),
        &[
            test_rpm("hello-1.0-1.noarch.rpm"),
            test_rpm("lib-1.0-1.x86_64.rpm"),
        ],
        &[],
    );
    server.fail_always("/Packages/lib-1.0-1.x86_64.rpm", Some(Fault::Status(503)));
    let err = env.chantal(&["repo", "sync", "--repo-id", "web"]).fails();
    assert!(
        err.contains("HTTP 503 (server error), after 2 retries"),
        "{err}"
    );
    assert_eq!(
        server.requests_for("/Packages/lib-1.0-1.x86_64.rpm").len(),
        3
    );
}
