//! `chantal db migrate --to postgresql://…`: a SQLite catalogue with several repositories,
//! versions, snapshots, environments (with their history) and signature checks copied into
//! PostgreSQL, verified, and served from there unchanged.

use chantal_tests::repo::{up, upstream_dir};
use chantal_tests::{Env, TestDb};

/// What operators see, for comparison across backends.
fn views(env: &Env) -> Vec<String> {
    let mut out = vec![
        env.chantal(&["repo", "list", "--format", "json"]).ok(),
        env.chantal(&["snapshot", "list", "--format", "json"]).ok(),
    ];
    for (repo, snap) in [("a", "s1"), ("a", "s2"), ("b", "b1")] {
        out.push(
            env.chantal(&[
                "snapshot",
                "show",
                "--repo-id",
                repo,
                "--name",
                snap,
                "--packages",
                "--format",
                "json",
            ])
            .ok(),
        );
    }
    out.push(env.chantal(&["env", "list", "--format", "json"]).ok());
    out.push(
        env.chantal(&["env", "history", "--env", "prod", "--format", "json"])
            .ok(),
    );
    out.push(
        env.chantal(&["snapshot", "show", "--repo-id", "c", "--name", "c1"])
            .ok(),
    );
    out.push(
        env.chantal(&[
            "snapshot",
            "diff",
            "--repo-id",
            "a",
            "--from",
            "s1",
            "--to",
            "s2",
            "--format",
            "json",
        ])
        .ok(),
    );
    out
}

#[test]
fn a_sqlite_catalogue_moves_to_postgresql_intact() {
    let ua = upstream_dir();
    let ub = upstream_dir();
    up(
        ua.path(),
        &["hello-1.0-1.noarch.rpm", "lib-1.0-1.x86_64.rpm"],
    );
    up(
        ub.path(),
        &["tool-2.0-1.x86_64.rpm", "tool-2.0-1.aarch64.rpm"],
    );
    let env = Env::sqlite();
    env.repo("a", &format!("file://{}", ua.path().display()), "");
    env.repo(
        "b",
        &format!("file://{}", ub.path().display()),
        "rpm:\n  architectures: [x86_64]\n",
    );
    env.repo("never", "file:///nonexistent", "");
    // A repository whose packages are checked: signature and verification rows.
    let uc = upstream_dir();
    let trust = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../sync/src/trust/testdata");
    chantal_tests::repo::createrepo(uc.path(), &[trust.join("hello-signed-rsa.rpm")], &[]);
    env.repo(
        "c",
        &format!("file://{}", uc.path().display()),
        &format!(
            "rpm:\n  gpgcheck: true\n  gpgkeys: [{}]\n",
            trust.join("rsa.asc").display()
        ),
    );
    env.write(
        "conf.d/00-environments.yaml",
        "environments: [prod, test]\n",
    );
    env.chantal(&["init"]).ok();
    env.chantal(&["repo", "sync", "--repo-id", "c"]).ok();
    env.chantal(&["snapshot", "create", "--repo-id", "c", "--name", "c1"])
        .ok();
    env.chantal(&["repo", "sync", "--repo-id", "a"]).ok();
    env.chantal(&["repo", "sync", "--repo-id", "b"]).ok();
    env.chantal(&["snapshot", "create", "--repo-id", "a", "--name", "s1"])
        .ok();
    env.chantal(&["snapshot", "create", "--repo-id", "b", "--name", "b1"])
        .ok();
    up(
        ua.path(),
        &[
            "hello-1.1-1.noarch.rpm",
            "lib-1.0-1.x86_64.rpm",
            "tool-3.0-1.x86_64.rpm",
        ],
    );
    env.chantal(&["repo", "sync", "--repo-id", "a"]).ok();
    env.chantal(&["snapshot", "create", "--repo-id", "a", "--name", "s2"])
        .ok();
    up(ua.path(), &["hello-2.0~rc1-1.noarch.rpm"]);
    env.chantal(&["repo", "sync", "--repo-id", "a"]).ok();
    assert_eq!(env.latest("a"), Some(3));
    // Environments: promotions, an undo and an unset in the history.
    for args in [
        vec![
            "env",
            "promote",
            "--env",
            "prod",
            "--snapshot",
            "s1",
            "--repo-id",
            "a",
        ],
        vec![
            "env",
            "promote",
            "--env",
            "prod",
            "--snapshot",
            "s2",
            "--repo-id",
            "a",
        ],
        vec!["env", "promote", "--env", "prod", "--to-previous"],
        vec![
            "env",
            "promote",
            "--env",
            "test",
            "--snapshot",
            "c1",
            "--repo-id",
            "c",
        ],
        vec!["env", "unset", "--env", "test", "--all"],
        vec![
            "env",
            "promote",
            "--env",
            "prod",
            "--snapshot",
            "b1",
            "--repo-id",
            "b",
        ],
    ] {
        env.chantal(&args).ok();
    }
    let before = views(&env);

    let target = TestDb::postgres();
    let out = env.chantal(&["db", "migrate", "--to", &target.url]).ok();
    assert!(out.contains("copied packages: 7 rows"), "{out}");
    assert!(out.contains("copied snapshots: 4 rows"), "{out}");
    assert!(out.contains("copied environment_history: 6 rows"), "{out}");
    assert!(out.contains("copied blob_verifications: 1 rows"), "{out}");
    assert!(
        out.contains("verified: 3 repositories, 5 versions, 4 snapshots identical"),
        "{out}"
    );
    assert!(out.contains("set database.url"), "{out}");

    // Into a database that is not empty: refused, nothing written.
    let err = env.chantal(&["db", "migrate", "--to", &target.url]).fails();
    assert!(err.contains("is not empty (blobs has"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let err = env
        .chantal(&["db", "migrate", "--to", "sqlite:///tmp/x.db"])
        .fails();
    assert!(err.contains("needs a postgresql:// URL"), "{err}");

    // Switched to PostgreSQL: everything reads the same, and syncs go on from there.
    let pg = Env::with_db(target);
    std::fs::remove_dir_all(pg.dir.path().join("conf.d")).unwrap();
    std::fs::rename(env.dir.path().join("conf.d"), pg.dir.path().join("conf.d")).unwrap();
    pg.write(
        "config.yaml",
        &format!(
            "include: conf.d/*.yaml\nstorage:\n  base_path: {}\n{}",
            env.storage().display(),
            pg.database_yaml()
        ),
    );
    assert_eq!(views(&pg), before);
    let status = pg.chantal(&["db", "status"]).ok();
    assert!(
        status.starts_with("catalogue:       PostgreSQL"),
        "{status}"
    );
    up(ua.path(), &["hello-1.0-1.noarch.rpm"]);
    pg.chantal(&["repo", "sync", "--repo-id", "a"]).ok();
    assert_eq!(pg.latest("a"), Some(4));
    pg.chantal(&["snapshot", "create", "--repo-id", "a", "--name", "s4"])
        .ok();
    let err = pg.chantal(&["db", "migrate", "--to", &pg.db.url]).fails();
    assert!(err.contains("already uses PostgreSQL"), "{err}");
}
