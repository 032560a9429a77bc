//! Environments: stable names that point at snapshots in several repositories and move in
//! one commit (`env promote`), their history and rollback, the snapshots they protect, and
//! the exporter's environment symlinks.

use chantal_tests::repo::{up, upstream_dir};
use chantal_tests::Env;

struct Fleet {
    env: Env,
    dirs: Vec<tempfile::TempDir>,
    export: tempfile::TempDir,
}

const REPOS: [&str; 2] = ["baseos", "appstream"];

fn fleet() -> Fleet {
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| upstream_dir()).collect();
    up(dirs[0].path(), &["hello-1.0-1.noarch.rpm"]);
    up(dirs[1].path(), &["tool-2.0-1.x86_64.rpm"]);
    let env = Env::new();
    let export = upstream_dir();
    env.write(
        "conf.d/00-environments.yaml",
        "environments: [test, prod]\n",
    );
    for (name, d) in REPOS.iter().zip(&dirs) {
        let e = export.path().join(name);
        env.repo(
            name,
            &format!("file://{}", d.path().display()),
            &format!(
                "publish:\n  snapshots_path: {}\n  environments_path: {}\n",
                e.join("snapshots").display(),
                e.join("env").display()
            ),
        );
    }
    env.chantal(&["init"]).ok();
    env.chantal(&[
        "repo",
        "sync",
        "--all",
        "--create-snapshot",
        "--snapshot-name",
        "2025-01",
    ])
    .ok();
    Fleet { env, dirs, export }
}

impl Fleet {
    /// environment -> (repository, snapshot) pairs, from `env list --format json`.
    fn points(&self, environment: &str) -> Vec<(String, String)> {
        let json: serde_json::Value =
            serde_json::from_str(&self.env.chantal(&["env", "list", "--format", "json"]).ok())
                .unwrap();
        json.as_array()
            .unwrap()
            .iter()
            .filter(|r| r["environment"] == environment)
            .map(|r| {
                (
                    r["repository"].as_str().unwrap().to_string(),
                    r["snapshot"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    fn link(&self, repo: &str, environment: &str) -> String {
        let target =
            std::fs::read_link(self.export.path().join(repo).join("env").join(environment))
                .unwrap();
        target.file_name().unwrap().to_string_lossy().into_owned()
    }
}

fn both(snapshot: &str) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = REPOS
        .iter()
        .map(|r| (r.to_string(), snapshot.to_string()))
        .collect();
    v.sort();
    v
}

#[test]
fn promote_copy_roll_back_and_protect() {
    let f = fleet();
    let env = &f.env;
    // A snapshot tree the link needs but that is missing is exported first.
    std::fs::remove_dir_all(f.export.path().join("baseos/snapshots/2025-01")).unwrap();
    env.chantal(&[
        "env",
        "promote",
        "--env",
        "test",
        "--snapshot",
        "2025-01",
        "--all",
    ])
    .ok();
    assert!(f
        .export
        .path()
        .join("baseos/env/test/repodata/repomd.xml")
        .is_file());
    let out = env
        .chantal(&["env", "promote", "--env", "prod", "--from", "test"])
        .ok();
    assert_eq!(
        out.lines()
            .filter(|l| l.contains("prod -> 2025-01"))
            .count(),
        2,
        "{out}"
    );
    assert_eq!(f.points("prod"), both("2025-01"));
    for r in REPOS {
        assert_eq!(f.link(r, "prod"), "2025-01");
        // The link serves the snapshot's exported tree.
        assert!(f
            .export
            .path()
            .join(r)
            .join("env/prod/repodata/repomd.xml")
            .is_file());
    }

    // Next month: new packages, a new set, test moves, prod stays until promoted.
    up(
        f.dirs[0].path(),
        &["hello-1.0-1.noarch.rpm", "hello-1.1-1.noarch.rpm"],
    );
    env.chantal(&[
        "repo",
        "sync",
        "--all",
        "--create-snapshot",
        "--snapshot-name",
        "2025-02",
    ])
    .ok();
    env.chantal(&[
        "env",
        "promote",
        "--env",
        "test",
        "--snapshot",
        "2025-02",
        "--all",
    ])
    .ok();
    assert_eq!(f.points("test"), both("2025-02"));
    assert_eq!(f.points("prod"), both("2025-01"));
    // What the promotion would bring, repository by repository, then in total.
    let diff = env
        .chantal(&[
            "snapshot", "diff", "--all", "--from", "2025-01", "--to", "2025-02",
        ])
        .ok();
    assert!(
        diff.contains("baseos: 2025-01 (version 1) -> 2025-02 (version 2): 1 added"),
        "{diff}"
    );
    assert!(diff.contains("+ hello-1.1-1.noarch"), "{diff}");
    assert!(
        diff.contains("appstream: 2025-01 (version 1) -> 2025-02 (version 1): 0 added"),
        "{diff}"
    );
    assert!(
        diff.ends_with(
            "total: 1 added, 0 removed, 0 updated, 0 advisories added in 2 repositories\n"
        ),
        "{diff}"
    );
    let json: serde_json::Value = serde_json::from_str(
        &env.chantal(&[
            "snapshot", "diff", "--all", "--from", "2025-01", "--to", "2025-02", "--format", "json",
        ])
        .ok(),
    )
    .unwrap();
    assert_eq!(json["totals"]["added"], 1);
    assert_eq!(json["repositories"].as_array().unwrap().len(), 2);
    env.chantal(&["env", "promote", "--env", "prod", "--from", "test"])
        .ok();
    assert_eq!(f.points("prod"), both("2025-02"));
    assert_eq!(f.link("baseos", "prod"), "2025-02");

    // Rollback in one command, and the history says what happened, newest first.
    let out = env
        .chantal(&["env", "promote", "--env", "prod", "--to-previous"])
        .ok();
    assert!(
        out.contains("baseos: prod -> 2025-01 (version 1), was 2025-02"),
        "{out}"
    );
    assert_eq!(f.points("prod"), both("2025-01"));
    assert_eq!(f.link("appstream", "prod"), "2025-01");
    let json: serde_json::Value = serde_json::from_str(
        &env.chantal(&["env", "history", "--env", "prod", "--format", "json"])
            .ok(),
    )
    .unwrap();
    let rows = json.as_array().unwrap();
    assert_eq!(rows.len(), 6, "{json}");
    assert!(rows[0]["source"]
        .as_str()
        .unwrap()
        .starts_with("rollback of promotion"));
    assert_eq!(rows[0]["snapshot"], "2025-01");
    assert_eq!(rows[0]["previous"], "2025-02");
    assert_eq!(rows[5]["source"], "environment test");
    assert!(rows[0]["set_by"].as_str().is_some_and(|u| !u.is_empty()));

    // A snapshot an environment points at stays.
    let err = env
        .chantal(&["snapshot", "delete", "--all", "--name", "2025-01"])
        .fails();
    assert!(err.contains("environment prod points at"), "{err}");
    assert_eq!(
        env.query_i64("SELECT count(*) FROM snapshots WHERE name = '2025-01'"),
        Some(2)
    );
    // ...and a cleanup keeps its version.
    env.age_retirements();
    env.chantal(&["db", "cleanup", "--grace", "0"]).ok();
    assert!(f
        .export
        .path()
        .join("baseos/env/prod/repodata/repomd.xml")
        .is_file());
    assert_eq!(
        env.query_i64(
            "SELECT count(*) FROM repository_versions v JOIN snapshots s
                ON s.repository_id = v.repository_id AND s.version = v.number
             WHERE s.name = '2025-01'"
        ),
        Some(2)
    );
}

#[test]
fn a_promotion_that_cannot_move_every_repository_moves_none() {
    let f = fleet();
    let env = &f.env;
    env.chantal(&[
        "env",
        "promote",
        "--env",
        "prod",
        "--snapshot",
        "2025-01",
        "--all",
    ])
    .ok();
    // A snapshot only one repository has.
    env.chantal(&[
        "snapshot",
        "create",
        "--repo-id",
        "baseos",
        "--name",
        "hotfix",
    ])
    .ok();
    let err = env
        .chantal(&[
            "env",
            "promote",
            "--env",
            "prod",
            "--snapshot",
            "hotfix",
            "--all",
        ])
        .fails();
    assert!(
        err.contains("appstream has no snapshot named hotfix: nothing promoted"),
        "{err}"
    );
    assert_eq!(f.points("prod"), both("2025-01"));
    // Unknown names are one clear line each.
    let err = env
        .chantal(&[
            "env",
            "promote",
            "--env",
            "staging",
            "--snapshot",
            "2025-01",
            "--all",
        ])
        .fails();
    assert!(
        err.contains("unknown environment staging (configured: test, prod)"),
        "{err}"
    );
    let err = env
        .chantal(&["env", "promote", "--env", "test", "--to-previous"])
        .fails();
    assert!(err.contains("test was never promoted"), "{err}");
    let err = env
        .chantal(&[
            "env",
            "promote",
            "--env",
            "test",
            "--from",
            "prod",
            "--repo-id",
            "nope",
        ])
        .fails();
    assert!(err.contains("nope"), "{err}");
    // A repository named twice moves once.
    env.chantal(&[
        "env",
        "promote",
        "--env",
        "test",
        "--snapshot",
        "hotfix",
        "--repo-id",
        "baseos",
        "--repo-id",
        "baseos",
    ])
    .ok();
    assert_eq!(
        f.points("test"),
        [("baseos".to_string(), "hotfix".to_string())]
    );
}

#[test]
fn chantal_fs_serves_env_links_that_switch_together_and_dnf_reads_through_them() {
    use chantal_tests::dnf::repoquery;
    use chantal_tests::mount::{wait_for, Mount};
    use chantal_tests::nginx::Nginx;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let f = fleet();
    let env = &f.env;
    // at/ names instants to the second: the next version a second later.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    up(
        f.dirs[0].path(),
        &["hello-1.0-1.noarch.rpm", "hello-1.1-1.noarch.rpm"],
    );
    up(
        f.dirs[1].path(),
        &["tool-2.0-1.x86_64.rpm", "tool-3.0-1.x86_64.rpm"],
    );
    env.chantal(&[
        "repo",
        "sync",
        "--all",
        "--create-snapshot",
        "--snapshot-name",
        "2025-02",
    ])
    .ok();
    env.chantal(&[
        "env",
        "promote",
        "--env",
        "prod",
        "--snapshot",
        "2025-01",
        "--all",
    ])
    .ok();
    let mount = Mount::start(env, "baseos/env/prod/repodata/repomd.xml");
    let root = mount.path().to_path_buf();
    // env/prod/ is a directory of its own (not a link into snapshots/), showing 2025-01.
    let meta = std::fs::symlink_metadata(root.join("baseos/env/prod")).unwrap();
    assert!(meta.is_dir(), "{meta:?}");
    let repomd = |repo: &str, snapshot: &str| {
        std::fs::read(
            root.join(repo)
                .join("snapshots")
                .join(snapshot)
                .join("repodata/repomd.xml"),
        )
        .unwrap()
    };
    let old: Vec<Vec<u8>> = REPOS.iter().map(|r| repomd(r, "2025-01")).collect();
    let new: Vec<Vec<u8>> = REPOS.iter().map(|r| repomd(r, "2025-02")).collect();
    assert!(old.iter().zip(&new).all(|(o, n)| o != n));
    assert_eq!(
        std::fs::read(root.join("baseos/env/prod/repodata/repomd.xml")).unwrap(),
        old[0]
    );

    // A reader reads both repositories' env/prod/repomd.xml in each pass, in alternating
    // order: whatever it read first, the second read is never older (one promotion moves
    // both at once).
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (stop, root, old, new) = (stop.clone(), root.clone(), old.clone(), new.clone());
        std::thread::spawn(move || {
            let (mut passes, mut mixed, mut switched) = (0u32, Vec::new(), 0u32);
            while !stop.load(Ordering::SeqCst) {
                let order: [usize; 2] = if passes % 2 == 0 { [0, 1] } else { [1, 0] };
                let mut state = Vec::new();
                for i in order {
                    let got =
                        std::fs::read(root.join(REPOS[i]).join("env/prod/repodata/repomd.xml"))
                            .unwrap();
                    state.push(if got == new[i] {
                        "new"
                    } else if got == old[i] {
                        "old"
                    } else {
                        "other"
                    });
                }
                if state == ["new", "old"] || state.contains(&"other") {
                    mixed.push(format!("pass {passes}: {state:?}"));
                }
                if state == ["new", "new"] {
                    switched += 1;
                }
                passes += 1;
            }
            (passes, mixed, switched)
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(300));
    env.chantal(&[
        "env",
        "promote",
        "--env",
        "prod",
        "--snapshot",
        "2025-02",
        "--all",
    ])
    .ok();
    wait_for("prod to switch in the mount", || {
        std::fs::read(root.join("appstream/env/prod/repodata/repomd.xml"))
            .is_ok_and(|r| r == new[1])
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    let (passes, mixed, switched) = reader.join().unwrap();
    assert!(
        mixed.is_empty(),
        "{} of {passes} passes mixed: {mixed:?}",
        mixed.len()
    );
    assert!(switched > 0, "no pass saw the new set ({passes} passes)");

    // dnf through nginx on env/prod/ sees the promoted set.
    let nginx = Nginx::shipped(&root);
    let set = repoquery(&nginx.url("/baseos/env/prod"), "x86_64");
    assert_eq!(set, ["hello-0:1.0-1.noarch", "hello-0:1.1-1.noarch"]);
    // Point in time: at/ lists when latest changed; the first instant serves version 1, at
    // its path under versions/, to dnf through nginx too.
    let mut instants: Vec<String> = std::fs::read_dir(root.join("baseos/at"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    instants.sort();
    assert_eq!(instants.len(), 2, "{instants:?}");
    assert_eq!(
        std::fs::read_link(root.join("baseos/at").join(&instants[0])).unwrap(),
        std::path::Path::new("../versions/1")
    );
    let set = repoquery(&nginx.url(&format!("/baseos/at/{}", instants[0])), "x86_64");
    assert_eq!(set, ["hello-0:1.0-1.noarch"]);
    let set = repoquery(&nginx.url("/baseos/versions/2"), "x86_64");
    assert_eq!(set, ["hello-0:1.0-1.noarch", "hello-0:1.1-1.noarch"]);
    assert!(
        !root.join("baseos/at/29991231T000000Z").exists(),
        "the future"
    );
    assert!(
        !root.join("baseos/at/20000101T000000Z").exists(),
        "before the first version"
    );
    drop(nginx);
    drop(mount);
}

#[test]
fn cleanup_keeps_versions_latest_within_keep_versions_for() {
    let f = fleet();
    let env = &f.env;
    // baseos gets versions 2 and 3; its version 1 and 2 are then neither latest nor named.
    up(f.dirs[0].path(), &["hello-1.1-1.noarch.rpm"]);
    env.chantal(&["repo", "sync", "--repo-id", "baseos"]).ok();
    up(f.dirs[0].path(), &["hello-2.0~rc1-1.noarch.rpm"]);
    env.chantal(&["repo", "sync", "--repo-id", "baseos"]).ok();
    env.chantal(&["snapshot", "delete", "--all", "--name", "2025-01"])
        .ok();
    env.age_retirements();
    let versions = || {
        env.query_i64(
            "SELECT count(*) FROM repository_versions v JOIN repositories r ON r.id = v.repository_id
              WHERE r.name = 'baseos'",
        )
    };
    assert_eq!(versions(), Some(3));
    // The command line's span: versions latest within the last hour stay, and it says so.
    let out = env
        .chantal(&["db", "cleanup", "--grace", "0", "--keep-versions-for", "1h"])
        .ok();
    assert!(
        out.contains("2 versions latest within keep_versions_for"),
        "{out}"
    );
    assert_eq!(versions(), Some(3));
    // The repository's own setting does the same.
    env.repo(
        "baseos",
        &format!("file://{}", f.dirs[0].path().display()),
        "retention:\n  keep_versions_for: 2d\n",
    );
    env.chantal(&["db", "cleanup", "--grace", "0"]).ok();
    assert_eq!(versions(), Some(3));
    // Without one, only latest is left.
    env.repo(
        "baseos",
        &format!("file://{}", f.dirs[0].path().display()),
        "",
    );
    env.chantal(&["db", "cleanup", "--grace", "0"]).ok();
    assert_eq!(versions(), Some(1));
}

fn history(env: &Env, environment: &str) -> Vec<serde_json::Value> {
    let json: serde_json::Value = serde_json::from_str(
        &env.chantal(&["env", "history", "--env", environment, "--format", "json"])
            .ok(),
    )
    .unwrap();
    json.as_array().unwrap().clone()
}

fn promote(env: &Env, args: &[&str]) -> String {
    let mut all = vec!["env", "promote"];
    all.extend_from_slice(args);
    env.chantal(&all).ok()
}

/// An environment removed from `environments:`, a repository that leaves an environment and
/// a repository removed from the configuration: each can be let go (`env unset`, `repo
/// forget`), after which their snapshots can be deleted and their files cleaned up.
#[test]
fn environments_and_repositories_that_left_the_configuration_can_be_let_go() {
    let f = fleet();
    let env = &f.env;
    for e in ["test", "prod"] {
        promote(env, &["--env", e, "--snapshot", "2025-01", "--all"]);
    }
    assert_eq!(f.link("baseos", "test"), "2025-01");
    // `test` leaves the configuration: still listed (marked), with its history.
    env.write("conf.d/00-environments.yaml", "environments: [prod]\n");
    let list = env.chantal(&["env", "list"]).ok();
    assert!(list.contains("test (not configured)"), "{list}");
    let json: serde_json::Value =
        serde_json::from_str(&env.chantal(&["env", "list", "--format", "json"]).ok()).unwrap();
    let test_rows: Vec<&serde_json::Value> = json
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["environment"] == "test")
        .collect();
    assert_eq!(test_rows.len(), 2);
    assert!(test_rows.iter().all(|r| r["configured"] == false));
    assert_eq!(history(env, "test").len(), 2);
    let err = env
        .chantal(&[
            "env",
            "promote",
            "--env",
            "test",
            "--snapshot",
            "2025-01",
            "--all",
        ])
        .fails();
    assert!(err.contains("unknown environment test"), "{err}");
    let err = env
        .chantal(&["snapshot", "delete", "--all", "--name", "2025-01"])
        .fails();
    assert!(
        err.contains("environments prod and test point at")
            || err.contains("environments test and prod point at"),
        "{err}"
    );
    // The way out: unset it everywhere, recorded like a promotion.
    let out = env
        .chantal(&["env", "unset", "--env", "test", "--all"])
        .ok();
    assert_eq!(out.matches("test unset, was 2025-01").count(), 2, "{out}");
    assert!(f.points("test").is_empty());
    let rows = history(env, "test");
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0]["source"], "unset");
    assert_eq!(rows[0]["snapshot"], serde_json::Value::Null);
    assert_eq!(rows[0]["previous"], "2025-01");
    assert_eq!(rows[0]["previous_version"], 1);
    for r in REPOS {
        assert!(
            std::fs::symlink_metadata(f.export.path().join(r).join("env/test")).is_err(),
            "{r}: the exported link of an unset environment stays"
        );
    }
    let err = env
        .chantal(&["env", "unset", "--env", "test", "--all"])
        .fails();
    assert!(
        err.contains("test: it is not configured and points nowhere"),
        "{err}"
    );
    let err = env
        .chantal(&["env", "unset", "--env", "prod", "--repo-id", "nosuch"])
        .fails();
    assert!(
        err.contains("environment prod points nowhere in nosuch"),
        "{err}"
    );
    let err = env
        .chantal(&["env", "unset", "--env", "staging", "--all"])
        .fails();
    assert!(err.contains("unknown environment staging"), "{err}");

    // appstream leaves the configuration while prod points in it.
    std::fs::remove_file(env.dir.path().join("conf.d/appstream.yaml")).unwrap();
    let err = env
        .chantal(&["repo", "forget", "--repo-id", "baseos"])
        .fails();
    assert!(err.contains("baseos is still configured"), "{err}");
    let err = env
        .chantal(&["repo", "forget", "--repo-id", "nosuch"])
        .fails();
    assert!(err.contains("nosuch is not in the catalogue"), "{err}");
    let out = env
        .chantal(&["env", "unset", "--env", "prod", "--repo-id", "appstream"])
        .ok();
    assert!(out.contains("appstream: prod unset, was 2025-01"), "{out}");
    assert_eq!(
        f.points("prod"),
        vec![("baseos".to_string(), "2025-01".to_string())]
    );
    // Forgetting it removes versions, snapshots and pointers; cleanup frees its files.
    let out = env
        .chantal(&["repo", "forget", "--repo-id", "appstream"])
        .ok();
    assert!(
        out.contains(
            "appstream: forgotten: 1 versions, 1 snapshots and 0 environment pointers removed"
        ),
        "{out}"
    );
    assert_eq!(env.latest("appstream"), None);
    assert_eq!(
        env.query_i64("SELECT count(*) FROM repositories WHERE name = 'appstream'"),
        Some(0)
    );
    let tool = |env: &Env| {
        chantal_tests::repo::pool_files(&env.storage())
            .iter()
            .any(|(p, _)| p.to_string_lossy().ends_with("tool-2.0-1.x86_64.rpm"))
    };
    assert!(tool(env));
    env.chantal(&["db", "cleanup", "--grace", "0"]).ok();
    assert!(!tool(env), "cleanup frees the forgotten repository's files");
    // prod still serves baseos; its snapshot can go once prod is unset there too.
    env.chantal(&["env", "unset", "--env", "prod", "--repo-id", "baseos"])
        .ok();
    env.chantal(&["snapshot", "delete", "--all", "--name", "2025-01"])
        .ok();
}

/// `--to-previous` and `--to-promotion` restore what was served, refuse when a snapshot name
/// now means other content, and `--from E --all` makes the environment identical to E.
#[test]
fn undoing_restores_what_was_served_or_refuses() {
    let f = fleet();
    let env = &f.env;
    up(
        f.dirs[0].path(),
        &["hello-1.0-1.noarch.rpm", "hello-1.1-1.noarch.rpm"],
    );
    env.chantal(&[
        "repo",
        "sync",
        "--all",
        "--create-snapshot",
        "--snapshot-name",
        "2025-02",
    ])
    .ok();
    promote(env, &["--env", "prod", "--snapshot", "2025-01", "--all"]);
    promote(env, &["--env", "prod", "--snapshot", "2025-02", "--all"]);
    let second = history(env, "prod")[0]["promotion"].as_i64().unwrap();
    // Undo twice: back, then forth.
    promote(env, &["--env", "prod", "--to-previous"]);
    assert_eq!(f.points("prod"), both("2025-01"));
    promote(env, &["--env", "prod", "--to-previous"]);
    assert_eq!(f.points("prod"), both("2025-02"));
    // 2025-01 is deleted and made again from the newer version: an undo to it is refused,
    // naming both versions, and nothing moves.
    env.chantal(&["snapshot", "delete", "--all", "--name", "2025-01"])
        .ok();
    env.chantal(&["snapshot", "create", "--all", "--name", "2025-01"])
        .ok();
    let err = env
        .chantal(&["env", "promote", "--env", "prod", "--to-previous"])
        .fails();
    assert!(
        err.contains("baseos: prod pointed at snapshot 2025-01 when it was version 1; 2025-01 is now version 2"),
        "{err}"
    );
    assert_eq!(f.points("prod"), both("2025-02"));
    assert_eq!(f.link("baseos", "prod"), "2025-02");
    // Any earlier state by its id: prod unset in appstream, then put back as promotion
    // `second` left it.
    env.chantal(&["env", "unset", "--env", "prod", "--repo-id", "appstream"])
        .ok();
    assert_eq!(
        f.points("prod"),
        vec![("baseos".to_string(), "2025-02".to_string())]
    );
    let out = promote(
        env,
        &["--env", "prod", "--to-promotion", &second.to_string()],
    );
    assert!(
        out.contains("appstream: prod -> 2025-02 (version 1)"),
        "{out}"
    );
    assert_eq!(f.points("prod"), both("2025-02"));
    assert_eq!(
        history(env, "prod")[0]["source"],
        format!("state after promotion {second}")
    );
    // A promotion of another environment is not one to restore.
    promote(
        env,
        &[
            "--env",
            "test",
            "--snapshot",
            "2025-02",
            "--repo-id",
            "baseos",
        ],
    );
    let other = history(env, "test")[0]["promotion"].as_i64().unwrap();
    let err = env
        .chantal(&[
            "env",
            "promote",
            "--env",
            "prod",
            "--to-promotion",
            &other.to_string(),
        ])
        .fails();
    assert!(
        err.contains(&format!("promotion {other} is not one of environment prod")),
        "{err}"
    );
    // --from test copies only where test points; with --all, prod ends identical to test.
    promote(env, &["--env", "prod", "--snapshot", "2025-01", "--all"]);
    promote(env, &["--env", "prod", "--from", "test"]);
    let mut want = vec![
        ("appstream".to_string(), "2025-01".to_string()),
        ("baseos".to_string(), "2025-02".to_string()),
    ];
    want.sort();
    assert_eq!(f.points("prod"), want);
    let out = promote(env, &["--env", "prod", "--from", "test", "--all"]);
    assert!(out.contains("appstream: prod unset, was 2025-01"), "{out}");
    assert_eq!(f.points("prod"), f.points("test"));
    assert!(std::fs::symlink_metadata(f.export.path().join("appstream/env/prod")).is_err());
}

/// A command killed between its commit and its export (a promotion) leaves the exported links
/// behind; the next command that writes the export puts them right first. Simulated here by
/// moving a link back and leaving a stale one, which is what such a kill leaves.
#[test]
fn exported_environment_links_are_reconciled_by_the_next_command() {
    let f = fleet();
    let env = &f.env;
    promote(env, &["--env", "prod", "--snapshot", "2025-01", "--all"]);
    env.chantal(&["snapshot", "create", "--all", "--name", "2025-02"])
        .ok();
    promote(env, &["--env", "prod", "--snapshot", "2025-02", "--all"]);
    let links = f.export.path().join("baseos/env");
    let snaps = f.export.path().join("baseos/snapshots");
    for (name, target) in [("prod", "2025-01"), ("test", "2025-01")] {
        let tmp = links.join(".tmp-link");
        std::os::unix::fs::symlink(snaps.join(target), &tmp).unwrap();
        std::fs::rename(&tmp, links.join(name)).unwrap();
    }
    for command in [
        vec![
            "snapshot",
            "create",
            "--repo-id",
            "appstream",
            "--name",
            "other",
        ],
        vec!["repo", "sync", "--repo-id", "appstream"],
        vec!["repo", "export", "--repo-id", "appstream"],
        vec![
            "snapshot",
            "delete",
            "--repo-id",
            "appstream",
            "--name",
            "other",
        ],
    ] {
        env.chantal(&command).ok();
        assert_eq!(f.link("baseos", "prod"), "2025-02", "after {command:?}");
        assert!(
            std::fs::symlink_metadata(links.join("test")).is_err(),
            "after {command:?}: the link of an environment that points nowhere stays"
        );
        // Broken again for the next command.
        let tmp = links.join(".tmp-link");
        std::os::unix::fs::symlink(snaps.join("2025-01"), &tmp).unwrap();
        std::fs::rename(&tmp, links.join("prod")).unwrap();
        std::os::unix::fs::symlink(snaps.join("2025-01"), links.join("test")).unwrap();
    }
}

/// The history names the user even when cron or systemd set no $USER; `repo client-config
/// --env` gives the one stanza a client keeps while the environment moves.
#[test]
fn history_names_the_user_and_client_config_follows_an_environment() {
    let f = fleet();
    let env = &f.env;
    let run = env
        .chantal_cmd()
        .args([
            "env",
            "promote",
            "--env",
            "prod",
            "--snapshot",
            "2025-01",
            "--all",
        ])
        .env_remove("USER")
        .env_remove("SUDO_USER")
        .env_remove("LOGNAME")
        .output()
        .unwrap();
    assert!(run.status.success());
    let me = String::from_utf8(
        std::process::Command::new("id")
            .arg("-un")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(history(env, "prod")[0]["set_by"], me.trim());
    let stanza = env
        .chantal(&[
            "repo",
            "client-config",
            "--repo-id",
            "baseos",
            "--env",
            "prod",
            "--base-url",
            "http://mirror.example/repos",
        ])
        .ok();
    assert!(
        stanza.starts_with("[baseos-prod]\nname=baseos prod (chantal mirror)\n"),
        "{stanza}"
    );
    assert!(
        stanza.contains("baseurl=http://mirror.example/repos/baseos/env/prod/"),
        "{stanza}"
    );
    let err = env
        .chantal(&[
            "repo",
            "client-config",
            "--repo-id",
            "baseos",
            "--env",
            "test",
            "--base-url",
            "http://mirror.example/repos",
        ])
        .fails();
    assert!(
        err.contains("environment test points nowhere in baseos yet"),
        "{err}"
    );
}
