//! Air-gap bundles: a connected chantal carries snapshot sets (whole, then incrementally) and
//! environment pointers into a disconnected one (on the other catalogue backend), which serves byte-identical trees that dnf and
//! `verify-tree` accept; tampered, incomplete, unsigned and killed bundles are refused with
//! nothing committed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use chantal_tests::dnf::repoquery;
use chantal_tests::mount::Mount;
use chantal_tests::nginx::Nginx;
use chantal_tests::repo::{createrepo, synth_pkgs, synthetic_repo, test_rpm, SynthOptions};
use chantal_tests::signing::GpgKey;
use chantal_tests::Env;

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// Every file below `root` (relative path -> sha256), `.chantal/` included.
fn tree(root: &Path) -> std::collections::BTreeMap<String, String> {
    chantal_tests::trees::files(root).into_iter().collect()
}

/// The files below `dir` (recursively).
fn count_files(dir: &Path) -> usize {
    if !dir.exists() {
        return 0;
    }
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                n += 1;
            }
        }
    }
    n
}

/// A disconnected site on the other backend than this run's (so a PostgreSQL run bundles
/// from PostgreSQL into SQLite, and a SQLite run the other way): the same repositories with an
/// unreachable upstream, disabled.
fn disconnected(repos: &[&str], envs: &[&str]) -> Env {
    use chantal_tests::db::{backend, Backend, TestDb};
    let env = match backend() {
        Backend::Postgres => Env::sqlite(),
        Backend::Sqlite => Env::with_db(TestDb::postgres()),
    };
    for r in repos {
        env.repo(r, "http://127.0.0.1:9/unreachable", "enabled: false\n");
    }
    if !envs.is_empty() {
        env.environments(envs);
    }
    env.chantal(&["init"]).ok();
    env
}

fn tree_id(env: &Env, repo: &str, snapshot: &str) -> String {
    json(
        &env.chantal(&[
            "snapshot",
            "show",
            "--name",
            snapshot,
            "--repo-id",
            repo,
            "--format",
            "json",
        ])
        .ok(),
    )["tree_id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn snapshot_sets_travel_whole_then_incrementally_and_are_served_identically() {
    let (up1, up2) = (
        chantal_tests::repo::upstream_dir(),
        chantal_tests::repo::upstream_dir(),
    );
    createrepo(
        up1.path(),
        &[
            test_rpm("hello-1.0-1.noarch.rpm"),
            test_rpm("lib-1.0-1.x86_64.rpm"),
        ],
        &[],
    );
    createrepo(up2.path(), &[test_rpm("tool-2.0-1.x86_64.rpm")], &[]);
    let a = Env::new();
    a.chantal(&["init"]).ok();
    let key = GpgKey::new("mirror", "ed25519");
    let secret = key.export_secret(&a.storage().join("../signing.asc"));
    let sign = format!("publish:\n  sign:\n    key: {}\n", secret.display());
    a.repo("r1", &format!("file://{}", up1.path().display()), &sign);
    a.repo("r2", &format!("file://{}", up2.path().display()), &sign);
    a.environments(&["prod"]);
    a.chantal(&["repo", "sync", "--all"]).ok();
    a.chantal(&["snapshot", "create", "--all", "--name", "jan"])
        .ok();
    let out_dir = tempfile::tempdir().unwrap();
    let full = out_dir.path().join("full");
    let made = a
        .chantal(&[
            "bundle",
            "create",
            "--output",
            full.to_str().unwrap(),
            "--snapshot",
            "jan",
            "--all",
        ])
        .ok();
    assert!(
        made.contains("snapshot jan (r1 version 1, r2 version 1)") && made.contains(", signed"),
        "{made}"
    );
    assert!(full.join("bundle.json.asc").is_file());

    let b = disconnected(&["r1", "r2"], &["prod"]);
    let pubkey = key.public.to_str().unwrap();
    // Signed by the mirror: another key is refused; a site without r2 is told to define it.
    let other = GpgKey::new("other", "ed25519");
    let err = b
        .chantal(&[
            "bundle",
            "import",
            full.to_str().unwrap(),
            "--key",
            other.public.to_str().unwrap(),
        ])
        .fails();
    assert!(err.contains("the signature does not verify"), "{err}");
    let lacking = disconnected(&["r1"], &["prod"]);
    let err = lacking
        .chantal(&["bundle", "import", full.to_str().unwrap()])
        .fails();
    assert!(
        err.contains("the bundle carries r2, which the configuration does not define"),
        "{err}"
    );
    assert_eq!(lacking.latest("r1"), None);
    assert_eq!(b.latest("r1"), None);
    let imported = b
        .chantal(&["bundle", "import", full.to_str().unwrap(), "--key", pubkey])
        .ok();
    assert!(
        imported.contains("r1: imported version 1")
            && imported.contains("r2: imported version 1")
            && imported.contains("2 versions imported"),
        "{imported}"
    );
    for r in ["r1", "r2"] {
        assert_eq!(tree_id(&a, r, "jan"), tree_id(&b, r, "jan"), "{r}");
    }
    // Twice: nothing changes, and it says so.
    let again = b
        .chantal(&["bundle", "import", full.to_str().unwrap(), "--key", pubkey])
        .ok();
    assert!(again.contains("nothing to import"), "{again}");
    assert_eq!(b.latest("r1"), Some(1));

    // February: r1 gains a package; only what January lacks travels.
    createrepo(
        up1.path(),
        &[
            test_rpm("hello-1.0-1.noarch.rpm"),
            test_rpm("lib-1.0-1.x86_64.rpm"),
            test_rpm("hello-1.1-1.noarch.rpm"),
        ],
        &[],
    );
    a.chantal(&["repo", "sync", "--all"]).ok();
    a.chantal(&["snapshot", "create", "--all", "--name", "feb"])
        .ok();
    let inc = out_dir.path().join("inc");
    let made = a
        .chantal(&[
            "bundle",
            "create",
            "--output",
            inc.to_str().unwrap(),
            "--snapshot",
            "feb",
            "--all",
            "--since",
            "jan",
        ])
        .ok();
    assert!(made.contains("since jan"), "{made}");
    let a_mount = Mount::start(&a, "r2/snapshots/feb/.chantal/manifest.json");
    let mut expected: BTreeSet<String> = BTreeSet::new();
    let mut base: BTreeSet<String> = BTreeSet::new();
    for r in ["r1", "r2"] {
        expected.extend(tree(&a_mount.path().join(r).join("snapshots/feb")).into_values());
        base.extend(tree(&a_mount.path().join(r).join("snapshots/jan")).into_values());
    }
    let new: BTreeSet<&String> = expected.difference(&base).collect();
    // r1: the new package, repomd.xml and its signature, primary, filelists and other, the
    // manifest and its signature (r2 did not change: its feb is its jan).
    assert_eq!(new.len(), 8, "{new:?}");
    assert_eq!(count_files(&inc.join("blobs")), new.len());

    // Without its base, the incremental bundle is refused, naming the base.
    let c = disconnected(&["r1", "r2"], &[]);
    let err = c
        .chantal(&["bundle", "import", inc.to_str().unwrap()])
        .fails();
    assert!(
        err.contains("builds on snapshot jan")
            && err.contains("import the bundle that carries it first"),
        "{err}"
    );
    assert_eq!(c.latest("r1"), None);

    let imported = b
        .chantal(&["bundle", "import", inc.to_str().unwrap(), "--key", pubkey])
        .ok();
    assert!(imported.contains("r1: imported version 2"), "{imported}");
    assert!(imported.contains("r2: snapshot feb named"), "{imported}");

    // The environment and its pointers travel too.
    a.promote("prod", "feb");
    let env_bundle = out_dir.path().join("env");
    a.chantal(&[
        "bundle",
        "create",
        "--output",
        env_bundle.to_str().unwrap(),
        "--env",
        "prod",
        "--since",
        "jan",
    ])
    .ok();
    let moved = b
        .chantal(&[
            "bundle",
            "import",
            env_bundle.to_str().unwrap(),
            "--key",
            pubkey,
        ])
        .ok();
    assert!(moved.contains("r1: environment prod -> feb"), "{moved}");

    // The disconnected side serves byte-identical trees: every file of every snapshot and
    // of the environment, the manifests included; verify-tree with the connected side's key
    // passes; dnf through nginx sees the same packages.
    let b_mount = Mount::start(&b, "r1/env/prod/.chantal/manifest.json");
    for r in ["r1", "r2"] {
        for t in ["snapshots/jan", "snapshots/feb", "env/prod", "latest"] {
            let (ta, tb) = (
                tree(&a_mount.path().join(r).join(t)),
                tree(&b_mount.path().join(r).join(t)),
            );
            assert!(!ta.is_empty());
            assert_eq!(ta, tb, "{r}/{t}");
            b.chantal(&[
                "verify-tree",
                b_mount.path().join(r).join(t).to_str().unwrap(),
                "--key",
                pubkey,
            ])
            .ok();
        }
    }
    let (na, nb) = (
        Nginx::shipped(a_mount.path()),
        Nginx::shipped(b_mount.path()),
    );
    for t in ["/r1/snapshots/jan", "/r1/env/prod", "/r2/snapshots/feb"] {
        let seen = repoquery(&nb.url(t), "x86_64");
        assert!(!seen.is_empty());
        assert_eq!(seen, repoquery(&na.url(t), "x86_64"), "{t}");
    }
    b.chantal(&[
        "verify-tree",
        &nb.url("/r1/snapshots/feb/"),
        "--key",
        pubkey,
    ])
    .ok();
}

/// A bundle of `n` synthetic packages of repository `r`, snapshot `jan`, made by `a`.
fn made_bundle(a: &Env, up: &Path, dir: &Path, n: usize, size: usize) -> PathBuf {
    synthetic_repo(up, &synth_pkgs(n, size), SynthOptions::default());
    a.repo("r", &format!("file://{}", up.display()), "");
    a.chantal(&["init"]).ok();
    a.chantal(&["repo", "sync", "--repo-id", "r"]).ok();
    a.chantal(&["snapshot", "create", "--repo-id", "r", "--name", "jan"])
        .ok();
    a.chantal(&[
        "bundle",
        "create",
        "--output",
        dir.to_str().unwrap(),
        "--snapshot",
        "jan",
        "--repo-id",
        "r",
    ])
    .ok();
    dir.to_path_buf()
}

fn copy_dir(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

/// What the disconnected side committed: (latest, snapshots).
fn committed(b: &Env) -> (Option<i64>, usize) {
    let snapshots = json(&b.chantal(&["snapshot", "list", "--format", "json"]).ok());
    (b.latest("r"), snapshots.as_array().map_or(0, Vec::len))
}

#[test]
fn tampered_incomplete_unsigned_and_killed_bundles_are_refused_and_nothing_is_committed() {
    let up = chantal_tests::repo::upstream_dir();
    let work = tempfile::tempdir().unwrap();
    let a = Env::new();
    let bundle = made_bundle(&a, up.path(), &work.path().join("b"), 120, 48 * 1024);
    let b = disconnected(&["r"], &[]);
    let import = |dir: &Path, extra: &[&str]| {
        let mut args = vec!["bundle", "import", dir.to_str().unwrap()];
        args.extend(extra);
        b.chantal(&args)
    };
    let blob = |dir: &Path| {
        let mut stack = vec![dir.join("blobs")];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if std::fs::metadata(&p).unwrap().len() > 1024 {
                    return p;
                }
            }
        }
        panic!("no blob");
    };

    // One byte of one package flipped: the file is named, nothing is committed, and the pool
    // holds nothing new.
    let tampered = work.path().join("tampered");
    copy_dir(&bundle, &tampered);
    let victim = blob(&tampered);
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&victim, &bytes).unwrap();
    let err = import(&tampered, &[]).fails();
    assert!(
        err.contains(&victim.display().to_string()) && err.contains("altered or damaged"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert_eq!(committed(&b), (None, 0));
    assert_eq!(count_files(&b.storage().join("data/sha256")), 0);

    // A blob missing.
    let incomplete = work.path().join("incomplete");
    copy_dir(&bundle, &incomplete);
    let victim = blob(&incomplete);
    std::fs::remove_file(&victim).unwrap();
    let err = import(&incomplete, &[]).fails();
    assert!(
        err.contains(&victim.display().to_string()) && err.contains("missing"),
        "{err}"
    );
    // Rows altered: their hash no longer matches the index.
    let rows = work.path().join("rows");
    copy_dir(&bundle, &rows);
    let file = rows.join("rows/r.json");
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replacen("p0001", "p0002", 1);
    std::fs::write(&file, text).unwrap();
    let err = import(&rows, &[]).fails();
    assert!(err.contains("rows/r.json: sha256"), "{err}");
    // Signatures: an unsigned bundle with --key, and a wrong key.
    let key = GpgKey::new("someone", "ed25519");
    let err = import(&bundle, &["--key", key.public.to_str().unwrap()]).fails();
    assert!(err.contains("--key asks for a signed bundle"), "{err}");
    assert_eq!(committed(&b), (None, 0));

    // create killed at any point: either a whole bundle or one import refuses as unfinished;
    // the next create finishes it. The delays count from when the output directory appears,
    // not from the start: on a loaded machine the process may take longer than all of them to
    // get that far, and a kill before it wrote anything tests nothing.
    let mut unfinished = 0;
    for delay_ms in [0u64, 5, 20, 60, 150] {
        let out = work.path().join(format!("killed-{delay_ms}"));
        let mut child = a
            .chantal_cmd()
            .args(["bundle", "create", "--output"])
            .arg(&out)
            .args(["--snapshot", "jan", "--repo-id", "r"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !out.exists()
            && child.try_wait().unwrap().is_none()
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_micros(200));
        }
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let finished = child.wait().unwrap().success();
        if !finished && out.exists() && !out.join("bundle.json").exists() {
            unfinished += 1;
            let err = import(&out, &[]).fails();
            assert!(err.contains("did not finish"), "{err}");
            assert_eq!(committed(&b), (None, 0));
        }
        if !out.join("bundle.json").exists() {
            a.chantal(&[
                "bundle",
                "create",
                "--output",
                out.to_str().unwrap(),
                "--snapshot",
                "jan",
                "--repo-id",
                "r",
            ])
            .ok();
        }
        // The same bundle but for the index's creation time.
        let without_index = |dir: &Path| {
            let mut t = tree(dir);
            t.remove("bundle.json");
            t
        };
        assert!(
            without_index(&out) == without_index(&bundle),
            "{delay_ms} ms"
        );
        let index = |dir: &Path| {
            let mut v = json(&std::fs::read_to_string(dir.join("bundle.json")).unwrap());
            v["created"] = serde_json::Value::Null;
            v
        };
        assert_eq!(index(&out), index(&bundle), "{delay_ms} ms");
    }

    assert!(unfinished > 0, "no create was killed before it finished");

    // import killed at any point: all or nothing, then the next import completes.
    for delay_ms in [0u64, 20, 50, 100, 200, 400] {
        let mut child = b
            .chantal_cmd()
            .args(["bundle", "import"])
            .arg(&bundle)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let finished = child.wait().unwrap().success();
        let state = committed(&b);
        assert!(
            state == (None, 0) || state == (Some(1), 1),
            "{delay_ms} ms: {state:?}"
        );
        if finished || state.0.is_some() {
            break;
        }
    }
    import(&bundle, &[]).ok();
    assert_eq!(committed(&b), (Some(1), 1));
    b.chantal(&["pool", "verify"]).ok();
    assert_eq!(tree_id(&a, "r", "jan"), tree_id(&b, "r", "jan"));
}
