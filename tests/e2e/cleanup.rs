//! `chantal db cleanup`: versions that are neither latest nor a snapshot go, then the files only
//! they needed; nothing a remaining version or snapshot references is ever touched.

use chantal_tests::repo::{createrepo, pool_files, test_rpms, up, upstream_dir};
use chantal_tests::Env;

fn rpm_files(env: &Env) -> Vec<String> {
    let mut v: Vec<String> = pool_files(&env.storage())
        .iter()
        .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".rpm"))
        .map(|n| n.split_once('_').unwrap().1.to_string())
        .collect();
    v.sort();
    v
}

/// Every file of every version still named (latest or snapshot) is present and sound.
fn assert_referenced_files_sound(env: &Env) {
    let rows = env.db.strings(
            "WITH keep AS (SELECT id AS repository_id, latest_version AS number FROM repositories
                            WHERE latest_version IS NOT NULL
                           UNION SELECT repository_id, version FROM snapshots)
             SELECT b.path FROM keep k JOIN repository_content c ON c.repository_id = k.repository_id
                AND c.added_in <= k.number AND (c.removed_in IS NULL OR c.removed_in > k.number)
               JOIN packages p ON p.id = c.package_id JOIN blobs b ON b.sha256 = p.sha256
             UNION
             SELECT b.path FROM keep k JOIN repository_metadata m ON m.repository_id = k.repository_id
                AND m.added_in <= k.number AND (m.removed_in IS NULL OR m.removed_in > k.number)
               JOIN blobs b ON b.sha256 = m.blob_sha256",
        &[],
    );
    assert!(!rows.is_empty());
    let data = env.storage().join("data");
    let sound: std::collections::HashMap<_, _> = pool_files(&env.storage()).into_iter().collect();
    for r in rows {
        let path = data.join(r);
        assert_eq!(
            sound.get(&path),
            Some(&true),
            "{} missing or corrupt",
            path.display()
        );
    }
}

#[test]
fn cleanup_keeps_latest_and_snapshots_and_frees_the_rest() {
    let dir = upstream_dir();
    let env = Env::new();
    env.repo("r", &format!("file://{}", dir.path().display()), "");
    env.chantal(&["init"]).ok();
    up(
        dir.path(),
        &["hello-1.0-1.noarch.rpm", "lib-1.0-1.x86_64.rpm"],
    );
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
    up(
        dir.path(),
        &["lib-1.0-1.x86_64.rpm", "tool-2.0-1.x86_64.rpm"],
    );
    env.chantal(&["repo", "sync", "--repo-id", "r"]).ok();
    up(
        dir.path(),
        &["tool-2.0-1.x86_64.rpm", "tool-3.0-1.x86_64.rpm"],
    );
    env.chantal(&["repo", "sync", "--repo-id", "r"]).ok();
    let all = rpm_files(&env);
    assert_eq!(all.len(), 4);

    // Version 2 was latest until a moment ago: chantal-fs may still serve it under latest/.
    let out = env.chantal(&["db", "cleanup", "--grace", "0"]).ok();
    assert!(
        out.starts_with("removed: 0 versions, 0 package rows, 0 files")
            && out.contains("kept 1 versions latest until less than 10 min ago"),
        "{out}"
    );
    env.age_retirements();
    // The default grace window protects everything just stored.
    let out = env.chantal(&["db", "cleanup"]).ok();
    assert!(
        out.starts_with("removed: 1 versions, 0 package rows, 0 files"),
        "{out}"
    );
    assert!(out.contains("kept"), "{out}");

    let out = env
        .chantal(&["db", "cleanup", "--grace", "0", "--dry-run"])
        .ok();
    assert!(out.starts_with("would remove: 0 versions"), "{out}");
    assert_eq!(
        rpm_files(&env),
        all,
        "version 1 is a snapshot: its files stay"
    );
    assert_referenced_files_sound(&env);

    env.chantal(&["snapshot", "delete", "--name", "s1"]).ok();
    let out = env
        .chantal(&["db", "cleanup", "--grace", "0", "--dry-run"])
        .ok();
    assert!(
        out.starts_with("would remove: 1 versions, 2 package rows, "),
        "{out}"
    );
    assert_eq!(rpm_files(&env), all, "a dry run removes nothing");
    let out = env.chantal(&["db", "cleanup", "--grace", "0"]).ok();
    assert!(
        out.starts_with("removed: 1 versions, 2 package rows, "),
        "{out}"
    );
    assert_eq!(
        rpm_files(&env),
        ["tool-2.0-1.x86_64.rpm", "tool-3.0-1.x86_64.rpm"]
    );
    assert_referenced_files_sound(&env);
    let again = env.chantal(&["db", "cleanup", "--grace", "0"]).ok();
    assert!(
        again.starts_with("removed: 0 versions, 0 package rows, 0 files"),
        "{again}"
    );
    // The latest version still syncs as a no-op: nothing it needs was lost.
    let out = env.chantal(&["repo", "sync", "--repo-id", "r"]).ok();
    assert!(out.contains("up to date"), "{out}");
}

/// A small deterministic generator, so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn randomized_syncs_snapshots_and_cleanups_never_lose_a_referenced_file() {
    let rpms = test_rpms();
    let dir = upstream_dir();
    let env = Env::new();
    env.repo("a", &format!("file://{}", dir.path().display()), "");
    env.repo(
        "b",
        &format!("file://{}", dir.path().display()),
        "retention:\n  policy: keep-all\n",
    );
    env.chantal(&["init"]).ok();
    let mut rng = Rng(0x5eed_c4a7_7a11_u64);
    let mut snapshots: Vec<(String, String)> = Vec::new();
    let mut synced = false;
    for step in 0..30 {
        match rng.below(4) {
            0 | 1 => {
                let subset: Vec<_> = rpms.iter().filter(|_| rng.below(2) == 0).cloned().collect();
                createrepo(dir.path(), &subset, &[]);
                env.chantal(&["repo", "sync", "--all", "-q"]).ok();
                synced = true;
            }
            2 if synced => {
                let repo = if rng.below(2) == 0 { "a" } else { "b" };
                let name = format!("s{step}");
                env.chantal(&["snapshot", "create", "--repo-id", repo, "--name", &name])
                    .ok();
                snapshots.push((repo.to_string(), name));
            }
            3 if !snapshots.is_empty() && rng.below(2) == 0 => {
                let i = usize::try_from(rng.below(snapshots.len() as u64)).unwrap();
                let (repo, name) = snapshots.remove(i);
                env.chantal(&["snapshot", "delete", "--repo-id", &repo, "--name", &name])
                    .ok();
            }
            _ => {
                if rng.below(2) == 0 {
                    env.age_retirements();
                }
                env.chantal(&["db", "cleanup", "--grace", "0", "-q"]).ok();
            }
        }
        if synced {
            assert_referenced_files_sound(&env);
        }
    }
    env.age_retirements();
    env.chantal(&["db", "cleanup", "--grace", "0", "-q"]).ok();
    assert_referenced_files_sound(&env);
}

/// "Forever" spelled as a huge duration (flag or configuration) keeps everything; it never
/// panics.
#[test]
fn a_forever_grace_or_window_keeps_everything_and_never_panics() {
    let dir = upstream_dir();
    let env = Env::new();
    env.repo(
        "r",
        &format!("file://{}", dir.path().display()),
        "retention:\n  keep_versions_for: 99999999999d\n",
    );
    env.chantal(&["init"]).ok();
    up(dir.path(), &["hello-1.0-1.noarch.rpm"]);
    env.chantal(&["repo", "sync", "--repo-id", "r"]).ok();
    up(dir.path(), &["hello-1.1-1.noarch.rpm"]);
    env.chantal(&["repo", "sync", "--repo-id", "r"]).ok();
    for args in [
        vec!["db", "cleanup"],
        vec!["db", "cleanup", "--keep-versions-for", "100000000d"],
        vec!["db", "cleanup", "--grace", "99999999999d"],
        vec![
            "db",
            "cleanup",
            "--grace",
            "99999999999d",
            "--keep-versions-for",
            "99999999999d",
        ],
    ] {
        let run = env.chantal(&args);
        assert_eq!(run.code(), Some(0), "{args:?}: {}", run.stderr());
    }
    assert_eq!(
        rpm_files(&env),
        ["hello-1.0-1.noarch.rpm", "hello-1.1-1.noarch.rpm"]
    );
}

/// Several hosts share one PostgreSQL catalogue, and a host's clock may be off: cleanup takes
/// its windows from the database's clock, which stamped every time it compares. A host a day
/// ahead (libfaketime) would otherwise see the version retired a moment ago as retired a day
/// ago, and every file as older than any grace.
#[test]
fn cleanup_windows_follow_the_databases_clock_not_the_hosts() {
    let dir = upstream_dir();
    // Skew matters only where the database has a clock of its own.
    let env = Env::with_db(chantal_tests::TestDb::postgres());
    env.repo("r", &format!("file://{}", dir.path().display()), "");
    env.chantal(&["init"]).ok();
    up(dir.path(), &["hello-1.0-1.noarch.rpm"]);
    env.chantal(&["repo", "sync", "--repo-id", "r"]).ok();
    up(dir.path(), &["hello-1.1-1.noarch.rpm"]);
    env.chantal(&["repo", "sync", "--repo-id", "r"]).ok();
    let skewed = |args: &[&str]| {
        let out = std::process::Command::new("faketime")
            .args(["-f", "+1d"])
            .arg(chantal_tests::bin("chantal"))
            .arg("--config")
            .arg(env.config())
            .args(args)
            .env_remove("CHANTAL_DATABASE_URL")
            .output()
            .expect("faketime (install faketime: contrib/test.sh does)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let out = skewed(&["db", "cleanup", "--grace", "1h"]);
    assert!(out.contains("0 versions"), "{out}");
    assert_eq!(
        rpm_files(&env),
        ["hello-1.0-1.noarch.rpm", "hello-1.1-1.noarch.rpm"],
        "a version retired a moment ago (by the database's clock) stays served"
    );
    // Once the serving grace has really passed, the same skewed host removes it.
    env.age_retirements();
    skewed(&["db", "cleanup", "--grace", "0"]);
    assert_eq!(rpm_files(&env), ["hello-1.1-1.noarch.rpm"]);
}
