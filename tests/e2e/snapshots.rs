//! Snapshots end to end: create (O(1)), list, show, delete, diff, `repo sync --create-snapshot`,
//! and immutability across later syncs.

use chantal_tests::repo::{up, upstream_dir};
use chantal_tests::Env;

fn setup() -> (Env, tempfile::TempDir) {
    let dir = upstream_dir();
    up(
        dir.path(),
        &[
            "hello-1.0-1.noarch.rpm",
            "lib-1.0-1.x86_64.rpm",
            "tool-2.0-1.x86_64.rpm",
        ],
    );
    let env = Env::new();
    env.repo("r", &format!("file://{}", dir.path().display()), "");
    env.chantal(&["init"]).ok();
    env.chantal(&["repo", "sync", "--repo-id", "r"]).ok();
    (env, dir)
}

#[test]
fn create_list_show_delete() {
    let (env, _up) = setup();
    let rows_before = env.query_i64("SELECT count(*) FROM repository_content");
    let out = env
        .chantal(&[
            "snapshot",
            "create",
            "--repo-id",
            "r",
            "--name",
            "2025-01-patch",
            "--description",
            "January",
        ])
        .ok();
    assert_eq!(
        out.trim(),
        "r: snapshot 2025-01-patch of version 1 (3 packages)"
    );
    assert_eq!(
        env.query_i64("SELECT count(*) FROM repository_content"),
        rows_before,
        "a snapshot copies no rows"
    );

    let list = env.chantal(&["snapshot", "list"]).ok();
    let line = list.lines().nth(1).unwrap();
    assert!(
        line.starts_with("r           2025-01-patch  1        3"),
        "{list}"
    );
    assert!(line.ends_with("January"), "{list}");

    let show = env
        .chantal(&["snapshot", "show", "--name", "2025-01-patch", "--packages"])
        .ok();
    assert!(
        show.contains("architectures:  noarch 1, x86_64 2"),
        "{show}"
    );
    assert!(
        show.lines()
            .any(|l| l.starts_with("repomd revision: ") && l.len() > 17),
        "{show}"
    );
    assert!(show.contains("hello-1.0-1.noarch"), "{show}");
    let json: serde_json::Value = serde_json::from_str(
        &env.chantal(&[
            "snapshot",
            "show",
            "--name",
            "2025-01-patch",
            "--packages",
            "--format",
            "json",
        ])
        .ok(),
    )
    .unwrap();
    assert_eq!(json["version"], 1);
    assert_eq!(json["package_list"].as_array().unwrap().len(), 3);
    assert_eq!(
        json["package_list"][0]["sha256"].as_str().unwrap().len(),
        64
    );

    let err = env
        .chantal(&[
            "snapshot",
            "create",
            "--repo-id",
            "r",
            "--name",
            "2025-01-patch",
        ])
        .fails();
    assert!(
        err.contains("r already has a snapshot named 2025-01-patch (version 1)"),
        "{err}"
    );
    let err = env
        .chantal(&["snapshot", "create", "--repo-id", "r", "--name", "bad/name"])
        .fails();
    assert!(err.contains("invalid snapshot name"), "{err}");

    let out = env
        .chantal(&["snapshot", "delete", "--name", "2025-01-patch"])
        .ok();
    assert!(out.contains("r: snapshot 2025-01-patch deleted"), "{out}");
    assert_eq!(
        env.chantal(&["snapshot", "list", "--format", "json"])
            .ok()
            .trim(),
        "[]"
    );
    let err = env
        .chantal(&["snapshot", "delete", "--name", "2025-01-patch"])
        .fails();
    assert!(err.contains("no snapshot named 2025-01-patch"), "{err}");
}

#[test]
fn snapshots_do_not_change_when_latest_does_and_diff_says_how() {
    let (env, upstream) = setup();
    env.chantal(&["snapshot", "create", "--repo-id", "r", "--name", "before"])
        .ok();
    up(
        upstream.path(),
        &[
            "hello-1.1-1.noarch.rpm",
            "tool-3.0-1.x86_64.rpm",
            "tool-2.0-1.aarch64.rpm",
        ],
    );
    env.chantal(&["repo", "sync", "--repo-id", "r"]).ok();
    env.chantal(&["snapshot", "create", "--repo-id", "r", "--name", "after"])
        .ok();

    let before = env
        .chantal(&["snapshot", "show", "--name", "before", "--packages"])
        .ok();
    for p in [
        "hello-1.0-1.noarch",
        "lib-1.0-1.x86_64",
        "tool-2.0-1.x86_64",
    ] {
        assert!(before.contains(p), "{before}");
    }
    assert!(!before.contains("hello-1.1-1"), "{before}");

    let diff = env
        .chantal(&["snapshot", "diff", "--from", "before", "--to", "after"])
        .ok();
    assert!(
        diff.starts_with(
            "r: before (version 1) -> after (version 2): 1 added, 1 removed, 2 updated, 0 advisories added"
        ),
        "{diff}"
    );
    assert!(diff.contains("+ tool-2.0-1.aarch64"), "{diff}");
    assert!(diff.contains("- lib-1.0-1.x86_64"), "{diff}");
    assert!(diff.contains("> hello.noarch 1.0-1 -> 1.1-1"), "{diff}");
    assert!(diff.contains("> tool.x86_64 2.0-1 -> 1:3.0-1"), "{diff}");

    let same = env
        .chantal(&["snapshot", "diff", "--from", "after", "--to", "latest"])
        .ok();
    assert!(same.contains("0 added, 0 removed, 0 updated"), "{same}");
    let json: serde_json::Value = serde_json::from_str(
        &env.chantal(&[
            "snapshot", "diff", "--from", "latest", "--to", "before", "--format", "json",
        ])
        .ok(),
    )
    .unwrap();
    assert_eq!(json["added"], serde_json::json!(["lib-1.0-1.x86_64"]));
    assert_eq!(json["updated"][0]["downgrade"], true);
}

#[test]
fn sync_create_snapshot_names_by_date_and_counts_up() {
    let (env, _up) = setup();
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let out = env
        .chantal(&["repo", "sync", "--repo-id", "r", "--create-snapshot"])
        .ok();
    assert!(out.contains("up to date"), "{out}");
    assert!(
        out.contains(&format!("r: snapshot {today} of version 1")),
        "{out}"
    );
    let out = env
        .chantal(&["repo", "sync", "--repo-id", "r", "--create-snapshot"])
        .ok();
    assert!(
        out.contains(&format!("r: snapshot {today}-2 of version 1")),
        "{out}"
    );
    let out = env
        .chantal(&[
            "repo",
            "sync",
            "--repo-id",
            "r",
            "--create-snapshot",
            "--snapshot-name",
            "monthly",
        ])
        .ok();
    assert!(out.contains("r: snapshot monthly of version 1"), "{out}");
    let err = env
        .chantal(&["repo", "sync", "--repo-id", "r", "--snapshot-name", "x"])
        .fails();
    assert!(err.contains("--create-snapshot"), "{err}");
}

#[test]
fn ambiguous_names_need_a_repository() {
    let (env, upstream) = setup();
    env.repo("s", &format!("file://{}", upstream.path().display()), "");
    env.chantal(&["repo", "sync", "--repo-id", "s"]).ok();
    for repo in ["r", "s"] {
        env.chantal(&[
            "snapshot",
            "create",
            "--repo-id",
            repo,
            "--name",
            "2025-01-patch",
        ])
        .ok();
    }
    let err = env
        .chantal(&["snapshot", "show", "--name", "2025-01-patch"])
        .fails();
    assert!(
        err.contains(
            "snapshot 2025-01-patch exists in several repositories (r, s): pass --repo-id"
        ),
        "{err}"
    );
    env.chantal(&[
        "snapshot",
        "show",
        "--name",
        "2025-01-patch",
        "--repo-id",
        "s",
    ])
    .ok();
    let err = env
        .chantal(&["snapshot", "diff", "--from", "latest", "--to", "latest"])
        .fails();
    assert!(err.contains("`latest` needs --repo-id"), "{err}");

    env.repo("never", "file:///nonexistent/never", "");
    let err = env
        .chantal(&["snapshot", "create", "--repo-id", "never", "--name", "x"])
        .fails();
    assert!(err.contains("never has no version yet"), "{err}");
}

#[test]
fn snapshot_sets_are_made_and_removed_in_one_commit_or_not_at_all() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| upstream_dir()).collect();
    up(dirs[0].path(), &["hello-1.0-1.noarch.rpm"]);
    up(dirs[1].path(), &["lib-1.0-1.x86_64.rpm"]);
    up(dirs[2].path(), &["tool-2.0-1.x86_64.rpm"]);
    let env = Env::new();
    for (name, d) in ["baseos", "appstream", "epel"].iter().zip(&dirs) {
        env.repo(name, &format!("file://{}", d.path().display()), "");
    }
    // A repository that never synced is left out of --all, with a warning.
    env.repo("vendor", "file:///nonexistent/vendor", "");
    env.chantal(&["init"]).ok();
    for r in ["baseos", "appstream", "epel"] {
        env.chantal(&["repo", "sync", "--repo-id", r]).ok();
    }
    let count = |name: &str| {
        env.db
            .i64(
                "SELECT count(*) FROM snapshots WHERE name = $1",
                &[name.into()],
            )
            .unwrap()
    };

    let run = env.chantal(&["snapshot", "create", "--all", "--name", "2025-01"]);
    let out = run.ok();
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(
        run.stderr().contains("vendor: no version yet"),
        "{}",
        run.stderr()
    );
    assert_eq!(count("2025-01"), 3);
    // A repository named twice is one member of the set.
    env.chantal(&[
        "snapshot",
        "create",
        "--repo-id",
        "baseos",
        "--repo-id",
        "baseos",
        "--name",
        "dup",
    ])
    .ok();
    assert_eq!(count("dup"), 1);

    // A name taken in one repository refuses the whole set.
    env.chantal(&[
        "snapshot",
        "create",
        "--repo-id",
        "epel",
        "--name",
        "2025-02",
    ])
    .ok();
    let err = env
        .chantal(&[
            "snapshot",
            "create",
            "--repo-id",
            "baseos",
            "--repo-id",
            "appstream",
            "--repo-id",
            "epel",
            "--name",
            "2025-02",
        ])
        .fails();
    assert!(
        err.contains("epel") && err.contains("no snapshot was created in any of the 3"),
        "{err}"
    );
    assert_eq!(count("2025-02"), 1);

    // repo sync --all --create-snapshot: one set, at the end, of what synced.
    let out = env
        .chantal(&[
            "repo",
            "sync",
            "--all",
            "--create-snapshot",
            "--snapshot-name",
            "2025-03",
        ])
        .0;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "vendor fails: {stdout}");
    assert_eq!(count("2025-03"), 3);
    let repos = env.db.strings(
        "SELECT r.name FROM snapshots s JOIN repositories r ON r.id = s.repository_id
          WHERE s.name = '2025-03' ORDER BY r.name",
        &[],
    );
    assert_eq!(repos, ["appstream", "baseos", "epel"]);

    // show --all: the set, one repository after another.
    let show = env
        .chantal(&["snapshot", "show", "--all", "--name", "2025-03"])
        .ok();
    assert_eq!(show.matches("snapshot:       2025-03").count(), 3, "{show}");
    let json: serde_json::Value = serde_json::from_str(
        &env.chantal(&[
            "snapshot", "show", "--all", "--name", "2025-03", "--format", "json",
        ])
        .ok(),
    )
    .unwrap();
    assert_eq!(json.as_array().unwrap().len(), 3);

    // delete --all removes the name everywhere, in one commit.
    let out = env
        .chantal(&["snapshot", "delete", "--all", "--name", "2025-01"])
        .ok();
    assert_eq!(out.lines().count(), 3, "{out}");
    assert_eq!(count("2025-01"), 0);
    let err = env
        .chantal(&["snapshot", "delete", "--all", "--name", "2025-01"])
        .fails();
    assert!(err.contains("no snapshot named 2025-01"), "{err}");
}
