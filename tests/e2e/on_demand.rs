//! `download.policy: on_demand`: a sync fetches and commits metadata only; the catalogue knows
//! every package's size and sha256, the pool holds none of them until they are fetched
//! (`repo sync --download-missing`, or a repository switched back to `immediate`).

use chantal_tests::http::HttpServer;
use chantal_tests::repo::{createrepo, pool_files, test_rpm, upstream_dir};
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
