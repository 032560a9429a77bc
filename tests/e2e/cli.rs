//! The `chantal` binary end to end: init, db, repo list/show, snapshot list, errors.

use chantal_tests::Env;

fn repo_yaml(name: &str, extra: &str) -> String {
    format!("name: {name}\ntype: rpm\nupstream:\n  url: https://mirror.example/{name}/\n{extra}")
}

#[test]
fn init_is_idempotent() {
    let env = Env::new();
    let first = env.chantal(&["init"]).ok();
    assert!(
        first.contains(&format!("created {}", env.storage().display())),
        "{first}"
    );
    assert!(first.contains("data/sha256"), "{first}");
    assert!(first.contains("applied migration 0001_initial"), "{first}");
    assert!(env.storage().join("data/sha256").is_dir());
    assert!(env.storage().join("data/tmp").is_dir());

    let second = env.chantal(&["init"]).ok();
    assert!(second.starts_with("nothing to do"), "{second}");
    assert!(
        !second.contains("created") && !second.contains("applied"),
        "{second}"
    );
    assert_eq!(env.chantal(&["-q", "init"]).ok(), "");
}

#[test]
fn commands_refuse_an_unmigrated_catalogue() {
    let env = Env::new();
    env.write("conf.d/a.yaml", &repo_yaml("a", ""));
    let err = env.chantal(&["repo", "list"]).fails();
    if env.db.backend() == chantal_tests::Backend::Sqlite {
        // No catalogue file yet: init creates it.
        assert_eq!(
            err.trim(),
            format!(
                "chantal: error: no catalogue at {}: run `chantal init` first",
                env.storage().join("catalog.db").display()
            )
        );
        // `db status` does not create it either.
        let err = env.chantal(&["db", "status"]).fails();
        assert!(err.contains("run `chantal init` first"), "{err}");
        assert!(!env.storage().exists());
        // An empty file is an unmigrated catalogue.
        std::fs::create_dir_all(env.storage()).unwrap();
        std::fs::write(env.storage().join("catalog.db"), "").unwrap();
    }
    let err = env.chantal(&["repo", "list"]).fails();
    assert!(err.contains("run `chantal db migrate`"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn db_status_and_migrate() {
    let env = Env::new();
    if env.db.backend() == chantal_tests::Backend::Sqlite {
        // `db status` only reads an existing file (an empty one is an empty catalogue).
        std::fs::create_dir_all(env.storage()).unwrap();
        std::fs::write(env.storage().join("catalog.db"), "").unwrap();
    }
    let status = env.chantal(&["db", "status"]).ok();
    assert!(status.contains("schema version:  0"), "{status}");
    assert!(
        status.contains("pending:         0001_initial, 0002_serving_grace_and_lock_holders"),
        "{status}"
    );

    let migrated = env.chantal(&["db", "migrate"]).ok();
    assert_eq!(
        migrated.trim(),
        "applied migration 0001_initial\napplied migration 0002_serving_grace_and_lock_holders\n\
         applied migration 0003_package_signatures\napplied migration 0004_filter_counts\n\
         applied migration 0005_environments\napplied migration 0006_environment_unset_and_versions\n\
         applied migration 0007_package_search\napplied migration 0008_on_demand"
    );
    let again = env.chantal(&["db", "migrate"]).ok();
    assert_eq!(again.trim(), "schema is up to date (version 8)");

    let status = env.chantal(&["db", "status"]).ok();
    assert!(
        status.contains("schema version:  8 (up to date"),
        "{status}"
    );
    assert!(status.contains("pending:         none"), "{status}");
    assert!(status.contains("applied:         0001_initial"), "{status}");

    let json: serde_json::Value =
        serde_json::from_str(&env.chantal(&["db", "status", "--format", "json"]).ok()).unwrap();
    assert_eq!(json["schema_version"], 8);
    assert_eq!(json["pending"].as_array().unwrap().len(), 0);
    match env.db.backend() {
        chantal_tests::Backend::Postgres => {
            assert_eq!(json["backend"], "postgresql");
            assert!(
                status.starts_with("catalogue:       PostgreSQL, "),
                "{status}"
            );
        }
        chantal_tests::Backend::Sqlite => {
            assert_eq!(json["backend"], "sqlite");
            let file = env.storage().join("catalog.db");
            assert_eq!(json["database"], file.display().to_string());
            assert!(
                status.starts_with(&format!("catalogue:       SQLite, {}\n", file.display())),
                "{status}"
            );
        }
    }
}

#[test]
fn repo_list_shows_config_and_catalogue_state() {
    let env = Env::new();
    env.write(
        "conf.d/10-epel.yaml",
        &repo_yaml("epel9", "retention:\n  policy: newest-only\n"),
    );
    env.write(
        "conf.d/20-local.yaml",
        "name: local\nenabled: false\nupstream:\n  url: file:///srv/local\n",
    );
    env.chantal(&["init"]).ok();

    let table = env.chantal(&["repo", "list"]).ok();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].starts_with("NAME"), "{table}");
    for col in [
        "TYPE",
        "ENABLED",
        "POLICY",
        "UPSTREAM",
        "LAST SYNC",
        "PACKAGES",
    ] {
        assert!(lines[0].contains(col), "{table}");
    }
    assert!(lines[1].starts_with("epel9"), "{table}");
    assert!(
        lines[1].contains("newest-only") && lines[1].contains("never"),
        "{table}"
    );
    assert!(lines[1].contains("https://mirror.example/epel9"), "{table}");
    assert!(
        lines[2].starts_with("local") && lines[2].contains(" no "),
        "{table}"
    );

    // A repository as a finished sync leaves it: version 1 with 2 packages.
    env.db.execute_batch(&format!(
        "INSERT INTO repositories (name, type, latest_version) VALUES ('epel9', 'rpm', 1);
         INSERT INTO sync_history (repository_id, started_at, finished_at, status, host, pid, version, added)
              SELECT id, {}, {}, 'success', 'h', 1, 1, 2
                FROM repositories;
         INSERT INTO repository_versions (repository_id, number, package_count, total_size)
              SELECT id, 1, 2, 4096 FROM repositories;",
        env.db.timestamp("2026-01-02 03:04:05"),
        env.db.timestamp("2026-01-02 03:05:06"),
    ));
    let table = env.chantal(&["repo", "list"]).ok();
    let epel = table.lines().nth(1).unwrap();
    assert!(epel.contains("2026-01-02 03:05:06 UTC"), "{table}");
    assert!(epel.trim_end().ends_with(" 2"), "{table}");

    let json: serde_json::Value =
        serde_json::from_str(&env.chantal(&["repo", "list", "--format", "json"]).ok()).unwrap();
    let rows = json.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["name"], "epel9");
    assert_eq!(rows[0]["packages"], 2);
    assert_eq!(rows[0]["latest_version"], 1);
    assert_eq!(rows[0]["last_sync"], "2026-01-02T03:05:06+00:00");
    assert_eq!(rows[1]["enabled"], false);
    assert_eq!(rows[1]["last_sync"], serde_json::Value::Null);
}

#[test]
fn repo_show_masks_secrets() {
    let env = Env::new();
    let key = env.write(
        "pki/123-key.pem",
        "-----BEGIN PRIVATE KEY-----\nSECRETKEYMATERIAL\n",
    );
    env.write("pki/123.pem", "-----BEGIN CERTIFICATE-----\nCERTMATERIAL\n");
    env.write(
        "conf.d/rhel.yaml",
        &repo_yaml(
            "rhel9",
            &format!(
                "credentials:\n  type: client_cert\n  cert: ../pki/123.pem\n  key: {}\n  ca_cert: /nonexistent/ca.pem\n",
                key.display()
            ),
        ),
    );
    env.write(
        "conf.d/basic.yaml",
        &repo_yaml(
            "vendor",
            "credentials:\n  type: basic\n  username: alice\n  password: hunter2\nrpm:\n  gpgkey_url: https://keys:k3yPass@keys.example/RPM-GPG-KEY\n",
        ),
    );
    env.write(
        "conf.d/proxy.yaml",
        "download:\n  proxy: http://bob:pr0xyPass@proxy:3128\n",
    );
    env.chantal(&["init"]).ok();

    let rhel = env.chantal(&["repo", "show", "--repo-id", "rhel9"]).ok();
    assert!(rhel.contains("123-key.pem (readable)"), "{rhel}");
    assert!(rhel.contains("/nonexistent/ca.pem (NOT READABLE"), "{rhel}");
    assert!(rhel.contains("never synced"), "{rhel}");
    assert!(
        rhel.contains("http://bob:****@proxy:3128 (download.proxy)"),
        "{rhel}"
    );
    for secret in ["SECRETKEYMATERIAL", "CERTMATERIAL", "pr0xyPass"] {
        assert!(!rhel.contains(secret), "{secret} leaked:\n{rhel}");
    }

    let vendor = env.chantal(&["repo", "show", "--repo-id", "vendor"]).ok();
    assert!(
        vendor.contains("alice") && vendor.contains("********"),
        "{vendor}"
    );
    assert!(!vendor.contains("hunter2"), "{vendor}");
    assert!(!vendor.contains("k3yPass"), "{vendor}");

    let json = env
        .chantal(&["repo", "show", "--repo-id", "vendor", "--format", "json"])
        .ok();
    assert!(
        !json.contains("hunter2") && !json.contains("pr0xyPass") && !json.contains("k3yPass"),
        "{json}"
    );
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["credentials"]["password"], "********");
    assert_eq!(v["catalogue"]["latest_version"], serde_json::Value::Null);
    // Which catalogue answered.
    let (id, line) = match env.db.backend() {
        chantal_tests::Backend::Postgres => {
            ("postgresql", "database:         PostgreSQL, ".to_string())
        }
        chantal_tests::Backend::Sqlite => (
            "sqlite",
            format!(
                "database:         SQLite, {}\n",
                env.storage().join("catalog.db").display()
            ),
        ),
    };
    assert_eq!(v["catalogue"]["backend"], id);
    assert!(rhel.contains(&line), "{rhel}");
    assert_eq!(v["retention"]["policy"], "mirror");

    let err = env.chantal(&["repo", "show", "--repo-id", "nope"]).fails();
    assert_eq!(
        err.trim(),
        "chantal: error: unknown repository 'nope' (configured: vendor, rhel9)"
    );
}

#[test]
fn configuration_errors_are_one_line() {
    let env = Env::new();
    env.write(
        "conf.d/bad.yaml",
        &repo_yaml("bad", "retention:\n  policy: sometimes\n"),
    );
    let run = env.chantal(&["repo", "list"]);
    let err = run.fails();
    assert_eq!(run.code(), Some(1));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("conf.d/bad.yaml:6: retention.policy: unknown variant `sometimes`"),
        "{err}"
    );
}

#[test]
fn include_matching_nothing_warns_but_works() {
    let env = Env::new();
    env.write(
        "config.yaml",
        &format!(
            "include: [conf.d/*.yaml, extra.d/*.yaml]\nstorage:\n  base_path: {}\n{}",
            env.storage().display(),
            env.database_yaml()
        ),
    );
    env.write("conf.d/a.yaml", &repo_yaml("a", ""));
    let run = env.chantal(&["init"]);
    run.ok();
    assert!(
        run.stderr().contains("warning:") && run.stderr().contains("extra.d/*.yaml"),
        "{}",
        run.stderr()
    );
    let quiet = env.chantal(&["-q", "repo", "list"]);
    quiet.ok();
    assert_eq!(quiet.stderr(), "");
}

#[test]
fn unreachable_database_is_one_line() {
    let env = Env::new();
    env.write("conf.d/a.yaml", &repo_yaml("a", ""));
    let mut cmd = env.chantal_cmd();
    cmd.env(
        "CHANTAL_DATABASE_URL",
        "postgresql://chantal@127.0.0.1:1/prod",
    )
    .args(["repo", "list"]);
    let run = chantal_tests::Run(cmd.output().unwrap());
    let err = run.fails();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("cannot connect to the catalogue database 'prod' on 127.0.0.1:1"),
        "{err}"
    );
}

#[test]
fn missing_config_file_is_one_line() {
    let run = chantal_tests::Run(
        std::process::Command::new(chantal_tests::bin("chantal"))
            .args(["--config", "/nonexistent/chantal.yaml", "repo", "list"])
            .output()
            .unwrap(),
    );
    let err = run.fails();
    assert_eq!(
        err.trim(),
        "chantal: error: cannot read configuration file /nonexistent/chantal.yaml: No such file or directory (os error 2)"
    );
}

#[test]
fn config_from_environment() {
    let env = Env::new();
    env.write("conf.d/a.yaml", &repo_yaml("from-env", ""));
    let mut cmd = std::process::Command::new(chantal_tests::bin("chantal"));
    cmd.env("CHANTAL_CONFIG", env.config())
        .env_remove("CHANTAL_DATABASE_URL")
        .args(["init"]);
    assert!(cmd.status().unwrap().success());
    let mut cmd = std::process::Command::new(chantal_tests::bin("chantal"));
    let out = cmd
        .env("CHANTAL_CONFIG", env.config())
        .args(["repo", "list"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("from-env"));
}

#[test]
fn snapshot_list_and_help() {
    let env = Env::new();
    env.chantal(&["init"]).ok();
    let table = env.chantal(&["snapshot", "list"]).ok();
    assert!(table.starts_with("REPOSITORY  NAME  VERSION"), "{table}");
    assert_eq!(table.lines().count(), 1);
    assert_eq!(
        env.chantal(&["snapshot", "list", "--format", "json"])
            .ok()
            .trim(),
        "[]"
    );

    let help = env.chantal(&["--help"]).ok();
    for group in ["init", "repo", "snapshot", "db"] {
        assert!(help.contains(&format!("\n  {group} ")), "{help}");
    }
    let version = env.chantal(&["--version"]).ok();
    assert!(version.starts_with("chantal "), "{version}");
}
