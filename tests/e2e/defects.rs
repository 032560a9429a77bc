//! Regression tests for the defects found by trying chantal as a new user and as a hostile
//! upstream: each test here failed on the code before its fix. Published data and security
//! first, then the commands' robustness, then the rough edges of the first hour.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chantal_tests::http::{Fault, HttpServer};
use chantal_tests::mount::{wait_for, Mount};
use chantal_tests::repo::{
    createrepo, pool_files, pool_paths, random_bytes, synth_pkgs, synthetic_repo, test_rpm, up,
    upstream_dir, SynthOptions, SynthPkg,
};
use chantal_tests::{Env, Run};

fn file_url(p: &Path) -> String {
    format!("file://{}", p.display())
}

/// The error lines of a run's stderr (log lines are separate).
fn error_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("chantal: error"))
        .collect()
}

fn sync(env: &Env, repo: &str) -> Run {
    env.chantal(&["repo", "sync", "--repo-id", repo])
}

/// Runs `script` with `sh -c` (pipefail on), with this installation's configuration.
fn shell(env: &Env, script: &str) -> Run {
    Run(Command::new("bash")
        .arg("-c")
        .arg(format!("set -o pipefail; {script}"))
        .env("CHANTAL", chantal_tests::bin("chantal"))
        .env("CHANTAL_CONFIG", env.config())
        .env_remove("CHANTAL_DATABASE_URL")
        .env_remove("RUST_LOG")
        .output()
        .unwrap())
}

// ---------------------------------------------------------------------------------------------
// 1. A set whose paths cannot form a tree is refused before commit.

#[test]
fn a_version_that_cannot_be_served_is_refused_and_the_previous_latest_stays_served() {
    let root = upstream_dir();
    let server = HttpServer::start(root.path());
    let good = synth_pkgs(2, 64);
    synthetic_repo(root.path(), &good, SynthOptions::default());
    let env = Env::new();
    let export = env.dir.path().join("export/h");
    env.repo(
        "h",
        &server.url(""),
        &format!("publish:\n  latest_path: {}\n", export.display()),
    );
    env.chantal(&["init"]).ok();
    sync(&env, "h").ok();
    let mut mount = Mount::start(&env, "h/latest/repodata/repomd.xml");
    let latest = mount.path().join("h/latest");
    let served = std::fs::read(latest.join("repodata/repomd.xml")).unwrap();

    // Each upstream below is self-consistent (every package downloads and verifies), but its
    // hrefs cannot all be files of one tree.
    let files = upstream_dir();
    let pkg = |name: &str, href: &str| {
        let p = SynthPkg::new(name, "noarch", random_bytes(100, name.len() as u64)).at(href);
        let file = files.path().join(name);
        std::fs::write(&file, &p.data).unwrap();
        server.serve_as(&format!("/{}", href.trim_start_matches("./")), &file);
        p
    };
    let cases: Vec<(Vec<SynthPkg>, &str)> = vec![
        (
            vec![pkg("a", "Packages/a.rpm"), pkg("b", "repodata")],
            "package href \"repodata\" lies in repodata/",
        ),
        (
            vec![pkg("c", "x.rpm"), pkg("d", "x.rpm/sub.rpm")],
            "\"x.rpm\" is a file, but \"x.rpm/sub.rpm\" needs it to be a directory",
        ),
        (
            vec![pkg("e", "Packages/e.rpm"), pkg("f", "./Packages//e.rpm")],
            "\"Packages/e.rpm\" and \"./Packages//e.rpm\" name the same file",
        ),
        (
            vec![pkg("g", "repodata/evil.rpm")],
            "package href \"repodata/evil.rpm\" lies in repodata/",
        ),
    ];
    for (pkgs, expected) in cases {
        synthetic_repo(
            root.path(),
            &pkgs,
            SynthOptions {
                write_packages: false,
                ..Default::default()
            },
        );
        let before = server.requests().len();
        let run = sync(&env, "h");
        let err = run.fails();
        assert_eq!(run.code(), Some(1), "{err}");
        let errors = error_lines(&err);
        assert_eq!(errors.len(), 1, "{err}");
        assert!(
            errors[0].starts_with("chantal: error: h: refusing to publish the new version: ")
                && errors[0].contains(expected)
                && errors[0].ends_with("nothing was committed"),
            "{err}"
        );
        // Refused before any package was fetched.
        assert!(
            server.requests()[before..].iter().all(|r| {
                r.path.starts_with("/repodata/") || r.path == "/.treeinfo" || r.path == "/treeinfo"
            }),
            "{:?}",
            &server.requests()[before..]
        );
        assert_eq!(env.latest("h"), Some(1), "{expected}");
        // The previous latest is still served, whole.
        let names: Vec<String> = std::fs::read_dir(&latest)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.contains(&"repodata".to_string()), "{names:?}");
        assert_eq!(
            std::fs::read(latest.join("repodata/repomd.xml")).unwrap(),
            served
        );
    }
    env.chantal(&["repo", "export", "--repo-id", "h"]).ok();
    assert_eq!(
        std::fs::read(export.join("repodata/repomd.xml")).unwrap(),
        served
    );
    assert!(mount.stop().success());
    assert!(!mount.log().contains("ERROR"), "{}", mount.log());
}

// ---------------------------------------------------------------------------------------------
// 2. Hrefs are literal paths: requested percent-encoded as dnf requests them, served as named.

#[test]
fn hrefs_are_literal_paths_fetched_exactly_as_dnf_fetches_them() {
    use chantal_tests::dnf::download;
    use chantal_tests::nginx::Nginx;
    // The upstream is /repo on the server; a secret lies beside it.
    let root = upstream_dir();
    let repo = root.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(root.path().join("secret.txt"), b"not for the mirror\n").unwrap();
    let server = HttpServer::start(root.path());
    up(&repo, &["hello-1.0-1.noarch.rpm"]);
    let env = Env::new();
    env.repo("lit", &server.url("/repo"), "");
    env.download("  retries: 0\n");
    env.chantal(&["init"]).ok();
    sync(&env, "lit").ok();

    // An href that decodes to ../../secret.txt, with the secret's true checksum and size.
    let secret = SynthPkg::new("secret", "noarch", b"not for the mirror\n".to_vec())
        .at(".%2e/.%2e/secret.txt");
    synthetic_repo(
        &repo,
        &[secret],
        SynthOptions {
            write_packages: false,
            ..Default::default()
        },
    );
    let err = sync(&env, "lit").fails();
    assert!(
        err.contains(&format!(
            "{}/.%252e/.%252e/secret.txt: HTTP 404",
            server.url("/repo")
        )),
        "{err}"
    );
    assert!(
        server.requests().iter().all(|r| r.path != "/secret.txt"),
        "a file outside the upstream was requested"
    );
    assert_eq!(env.latest("lit"), Some(1));

    // A file whose name holds a percent sign is fetched and served under that very name.
    std::fs::remove_dir_all(repo.join("repodata")).unwrap();
    let pkgs = repo.join("Packages");
    std::fs::remove_dir_all(&pkgs).unwrap();
    std::fs::create_dir_all(&pkgs).unwrap();
    let literal = "a%20b%41.rpm";
    std::fs::copy(test_rpm("hello-1.1-1.noarch.rpm"), pkgs.join(literal)).unwrap();
    let out = Command::new("createrepo_c")
        .args(["--quiet", "--no-database"])
        .arg(&repo)
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = sync(&env, "lit").ok();
    assert!(
        out.starts_with("lit: version 2: 1 added, 1 removed"),
        "{out}"
    );
    assert!(env
        .latest_hrefs("lit")
        .contains(&format!("Packages/{literal}")));
    assert_eq!(
        server
            .requests_for(&format!("/repo/Packages/{literal}"))
            .len(),
        1,
        "requested by its literal name"
    );

    // chantal-fs serves the literal name; dnf, through nginx, fetches the same bytes.
    let mut mount = Mount::start(&env, "lit/latest/repodata/repomd.xml");
    let served = mount.path().join("lit/latest/Packages").join(literal);
    wait_for("version 2 under latest/", || served.exists());
    assert_eq!(
        std::fs::read(&served).unwrap(),
        std::fs::read(test_rpm("hello-1.1-1.noarch.rpm")).unwrap()
    );
    let nginx = Nginx::shipped(mount.path());
    let dest = tempfile::tempdir().unwrap();
    let got = download(&nginx.url("/lit/latest"), "hello", dest.path());
    assert_eq!(got.file_name().unwrap(), literal);
    assert_eq!(
        std::fs::read(&got).unwrap(),
        std::fs::read(test_rpm("hello-1.1-1.noarch.rpm")).unwrap()
    );
    drop(nginx);
    assert!(mount.stop().success());
}

// ---------------------------------------------------------------------------------------------
// 3. Cleanup right after a sync keeps the previous latest served for the grace period.

#[test]
fn cleanup_right_after_a_sync_keeps_what_the_previous_latest_serves() {
    let upstream = upstream_dir();
    up(
        upstream.path(),
        &["hello-1.0-1.noarch.rpm", "lib-1.0-1.x86_64.rpm"],
    );
    let env = Env::new();
    env.repo("g", &file_url(upstream.path()), "");
    env.chantal(&["init"]).ok();
    sync(&env, "g").ok();
    let mut mount = Mount::start(&env, "g/latest/repodata/repomd.xml");
    let latest = mount.path().join("g/latest");
    let old = latest.join("Packages/hello-1.0-1.noarch.rpm");
    assert!(old.exists());
    up(upstream.path(), &["tool-2.0-1.x86_64.rpm"]);
    sync(&env, "g").ok();
    wait_for("latest to move", || {
        latest.join("Packages/tool-2.0-1.x86_64.rpm").exists()
    });

    for args in [vec!["db", "cleanup"], vec!["db", "cleanup", "--grace", "0"]] {
        let out = env.chantal(&args).ok();
        assert!(
            out.starts_with("removed: 0 versions, 0 package rows, 0 files")
                && out.contains("kept 1 versions latest until less than 10 min ago"),
            "{out}"
        );
        // A client that read version 1's repomd.xml still gets the files it names.
        assert_eq!(
            std::fs::read(&old).unwrap(),
            std::fs::read(test_rpm("hello-1.0-1.noarch.rpm")).unwrap()
        );
    }
    // Once the grace period is over, the version and its files go.
    env.age_retirements();
    let out = env.chantal(&["db", "cleanup", "--grace", "0"]).ok();
    assert!(
        // Its two packages, four repodata files and its manifest.
        out.starts_with("removed: 1 versions, 2 package rows, 7 files"),
        "{out}"
    );
    assert_eq!(
        pool_files(&env.storage())
            .iter()
            .filter(|(p, _)| p.to_string_lossy().ends_with(".rpm"))
            .count(),
        1
    );
    assert!(mount.stop().success());
}

// ---------------------------------------------------------------------------------------------
// 4. A decompression bomb with an honest open-size is refused within a bounded memory.

/// `len` bytes of text that gzip cannot squeeze much (16 letters at random: 4 bits a byte),
/// written to `w` in pieces.
fn write_incompressible(w: &mut impl Write, len: usize) {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut chunk = vec![0u8; 1 << 16];
    let mut left = len;
    while left > 0 {
        let n = left.min(chunk.len());
        for b in &mut chunk[..n] {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = b'a' + (x >> 60) as u8;
        }
        w.write_all(&chunk[..n]).unwrap();
        left -= n;
    }
}

#[test]
fn a_huge_element_is_refused_whatever_its_declared_sizes() {
    use sha2::{Digest, Sha256};
    let upstream = upstream_dir();
    let pkgs = synth_pkgs(1, 32);
    synthetic_repo(upstream.path(), &pkgs, SynthOptions::default());
    let env = Env::new();
    env.repo("bomb", &file_url(upstream.path()), "");
    env.chantal(&["init"]).ok();
    sync(&env, "bomb").ok();

    // primary.xml with one 40 MiB <description> (past the 16 MiB a package may take), its
    // open-size and checksums all true.
    let description = 40 << 20;
    let gz_path = upstream.path().join("primary.xml.gz");
    let mut plain = Sha256::new();
    let mut open_size = 0usize;
    {
        struct Tee<'a, W: Write>(&'a mut W, &'a mut Sha256, &'a mut usize);
        impl<W: Write> Write for Tee<'_, W> {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.1.update(b);
                *self.2 += b.len();
                self.0.write_all(b)?;
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                self.0.flush()
            }
        }
        let file = std::fs::File::create(&gz_path).unwrap();
        let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
        let mut w = Tee(&mut gz, &mut plain, &mut open_size);
        // A complete package otherwise (code without the limit would sync it).
        let payload = b"payload of huge";
        std::fs::write(upstream.path().join("Packages/huge.rpm"), payload).unwrap();
        write!(w, "<?xml version=\"1.0\"?>\n<metadata packages=\"1\"><package type=\"rpm\"><name>huge</name><arch>noarch</arch><version epoch=\"0\" ver=\"1\" rel=\"1\"/><checksum type=\"sha256\" pkgid=\"YES\">{}</checksum><description>", hex::encode(Sha256::digest(payload))).unwrap();
        write_incompressible(&mut w, description);
        writeln!(
            w,
            "</description><size package=\"{}\"/><location href=\"Packages/huge.rpm\"/></package></metadata>",
            payload.len()
        )
        .unwrap();
        gz.finish().unwrap();
    }
    let gz = std::fs::read(&gz_path).unwrap();
    let sum = hex::encode(Sha256::digest(&gz));
    let href = format!("repodata/{sum}-primary.xml.gz");
    std::fs::rename(&gz_path, upstream.path().join(&href)).unwrap();
    let repomd = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<repomd xmlns=\"http://linux.duke.edu/metadata/repo\">\n  <revision>2</revision>\n  <data type=\"primary\">\n    <checksum type=\"sha256\">{sum}</checksum>\n    <open-checksum type=\"sha256\">{}</open-checksum>\n    <location href=\"{href}\"/>\n    <size>{}</size>\n    <open-size>{open_size}</open-size>\n  </data>\n</repomd>\n",
        hex::encode(plain.finalize()),
        gz.len()
    );
    std::fs::write(upstream.path().join("repodata/repomd.xml"), repomd).unwrap();

    let run = sync(&env, "bomb");
    let err = run.fails();
    assert_eq!(run.code(), Some(1));
    let errors = error_lines(&err);
    assert_eq!(errors.len(), 1, "{err}");
    assert!(
        errors[0].contains("package 1 (huge): <description> makes it larger than 16 MiB"),
        "{err}"
    );
    assert_eq!(env.latest("bomb"), Some(1));
    let status = env.db.strings(
        "SELECT status FROM sync_history ORDER BY id DESC LIMIT 1",
        &[],
    );
    assert_eq!(status, ["failed"]);
}

// ---------------------------------------------------------------------------------------------
// 5. A killed or interrupted cleanup leaves nothing behind that the next one cannot finish.

/// Pool files that no blob row names (what a cleanup could never remove again).
fn orphans(env: &Env) -> Vec<String> {
    let recorded: std::collections::HashSet<String> = env
        .db
        .strings("SELECT path FROM blobs", &[])
        .into_iter()
        .collect();
    let data = env.storage().join("data");
    pool_files(&env.storage())
        .into_iter()
        .map(|(p, _)| {
            p.strip_prefix(&data)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|p| !recorded.contains(p))
        .collect()
}

/// Package files in the pool; called while a cleanup removes some.
fn rpm_count(env: &Env) -> usize {
    pool_paths(&env.storage())
        .iter()
        .filter(|p| p.to_string_lossy().ends_with(".rpm"))
        .count()
}

#[test]
fn a_killed_or_interrupted_cleanup_is_finished_by_the_next() {
    let upstream = upstream_dir();
    let env = Env::new();
    env.repo("c", &file_url(upstream.path()), "");
    env.chantal(&["init"]).ok();
    let mut seed = 0;
    // Each round leaves 3,000 unreferenced package files for a cleanup to remove.
    let mut garbage = |env: &Env| {
        seed += 1;
        let pkgs: Vec<SynthPkg> = (0..3000)
            .map(|i| {
                SynthPkg::new(
                    &format!("g{seed}x{i:04}"),
                    "noarch",
                    random_bytes(64, seed * 100_000 + i),
                )
            })
            .collect();
        synthetic_repo(upstream.path(), &pkgs, SynthOptions::default());
        sync(env, "c").ok();
        synthetic_repo(upstream.path(), &synth_pkgs(1, 16), SynthOptions::default());
        sync(env, "c").ok();
        env.age_retirements();
    };
    let cleanup = |env: &Env| {
        env.chantal_cmd()
            .args(["db", "cleanup", "--grace", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };

    // SIGKILL once the first files are gone.
    let mut killed_midway = false;
    for _ in 0..5 {
        garbage(&env);
        let before = rpm_count(&env);
        let mut child = cleanup(&env);
        let deadline = Instant::now() + Duration::from_secs(30);
        while rpm_count(&env) == before && Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                break;
            }
        }
        let _ = Command::new("kill")
            .args(["-KILL", &child.id().to_string()])
            .status();
        let _ = child.wait();
        let left = rpm_count(&env);
        assert!(orphans(&env).is_empty(), "{:?}", orphans(&env));
        let out = env.chantal(&["db", "cleanup", "--grace", "0"]).ok();
        assert_eq!(rpm_count(&env), 1, "{out}");
        assert!(orphans(&env).is_empty());
        if left > 1 && left < before {
            killed_midway = true;
            // The packages the killed run left, and the garbage version's repodata.
            let files: usize = out
                .split(", ")
                .find_map(|p| p.split_once(" files").and_then(|(n, _)| n.parse().ok()))
                .unwrap();
            assert!(
                files >= left - 1,
                "the next cleanup removes what the killed one left ({left}): {out}"
            );
            break;
        }
    }
    assert!(killed_midway, "no kill landed in the middle of a cleanup");

    // SIGINT stops it cleanly between batches: exit 130, and the next run finishes.
    garbage(&env);
    let before = rpm_count(&env);
    let child = cleanup(&env);
    while rpm_count(&env) == before {}
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let run = Run(child.wait_with_output().unwrap());
    if rpm_count(&env) > 1 {
        assert_eq!(run.code(), Some(130), "{}", run.stderr());
        assert!(
            run.stderr().contains("cleanup interrupted"),
            "{}",
            run.stderr()
        );
    }
    assert!(orphans(&env).is_empty());
    env.chantal(&["db", "cleanup", "--grace", "0"]).ok();
    assert_eq!(rpm_count(&env), 1);
    assert!(orphans(&env).is_empty());
    let out = sync(&env, "c").ok();
    assert!(out.contains("up to date"), "{out}");
}

// ---------------------------------------------------------------------------------------------
// 6. Reserved names.

#[test]
fn a_snapshot_cannot_be_called_latest() {
    let upstream = upstream_dir();
    up(upstream.path(), &["hello-1.0-1.noarch.rpm"]);
    let env = Env::new();
    env.repo("n", &file_url(upstream.path()), "");
    env.chantal(&["init"]).ok();
    sync(&env, "n").ok();
    for name in ["latest", "LATEST"] {
        let err = env
            .chantal(&["snapshot", "create", "--repo-id", "n", "--name", name])
            .fails();
        assert_eq!(
            error_lines(&err),
            [format!("chantal: error: \"{name}\" cannot name a snapshot: commands read \"latest\" as the repository's latest version")],
            "{err}"
        );
    }
    let err = env
        .chantal(&[
            "repo",
            "sync",
            "--repo-id",
            "n",
            "--create-snapshot",
            "--snapshot-name",
            "latest",
        ])
        .fails();
    assert!(err.contains("cannot name a snapshot"), "{err}");
    assert_eq!(
        env.query_i64("SELECT count(*) FROM snapshots"),
        Some(0),
        "nothing created"
    );
}

// ---------------------------------------------------------------------------------------------
// 7. A closed or full standard output.

#[test]
fn a_closed_pipe_ends_output_quietly_and_never_stops_the_work() {
    let upstream = upstream_dir();
    up(upstream.path(), &["hello-1.0-1.noarch.rpm"]);
    let env = Env::new();
    for i in 0..55 {
        env.repo(&format!("r{i:02}"), &file_url(upstream.path()), "");
    }
    env.chantal(&["init"]).ok();
    env.chantal(&[
        "repo",
        "sync",
        "--repo-id",
        "r00",
        "--create-snapshot",
        "--snapshot-name",
        "s",
    ])
    .ok();
    up(upstream.path(), &["hello-1.1-1.noarch.rpm"]);
    sync(&env, "r00").ok();
    for cmd in [
        "repo list",
        "repo list --format json",
        "snapshot list",
        "db status",
        "db status --format json",
        "snapshot show --name s --packages",
        "snapshot diff --repo-id r00 --from s --to latest",
        "repo show --repo-id r00",
    ] {
        for head in ["head -0", "head -1"] {
            for _ in 0..10 {
                let run = shell(&env, &format!("\"$CHANTAL\" {cmd} | {head} > /dev/null"));
                assert_eq!(run.code(), Some(0), "{cmd} | {head}: {}", run.stderr());
                assert_eq!(run.stderr(), "", "{cmd} | {head}");
            }
        }
    }

    // A sync whose reader is gone still commits, exports and goes on to the next repository.
    let export = env.dir.path().join("export");
    env.repo(
        "r01",
        &file_url(upstream.path()),
        &format!("publish:\n  latest_path: {}/r01\n", export.display()),
    );
    up(
        upstream.path(),
        &["hello-1.0-1.noarch.rpm", "lib-1.0-1.x86_64.rpm"],
    );
    let run = shell(&env, "\"$CHANTAL\" repo sync --all | head -0");
    assert_eq!(run.code(), Some(0), "{}", run.stderr());
    assert!(!run.stderr().contains("panicked"), "{}", run.stderr());
    for i in 0..55 {
        assert!(env.latest(&format!("r{i:02}")).is_some(), "r{i:02} synced");
    }
    assert!(export.join("r01/repodata/repomd.xml").exists(), "exported");

    // A full disk behind stdout: the work is done, then one clear error.
    up(upstream.path(), &["tool-2.0-1.x86_64.rpm"]);
    let run = shell(&env, "\"$CHANTAL\" repo sync --repo-id r02 > /dev/full");
    assert_eq!(run.code(), Some(1));
    assert_eq!(
        error_lines(&run.stderr()),
        ["chantal: error: cannot write to standard output: No space left on device (os error 28)"],
        "{}",
        run.stderr()
    );
    assert!(!run.stderr().contains("panicked"));
    assert_eq!(env.latest("r02"), Some(2), "the sync committed");
}

// ---------------------------------------------------------------------------------------------
// 8. chantal-fs on SIGTERM with a file open; a second daemon on a live mount.

#[test]
fn sigterm_detaches_the_mount_and_a_second_daemon_refuses_a_live_one() {
    let upstream = upstream_dir();
    up(upstream.path(), &["hello-1.0-1.noarch.rpm"]);
    let env = Env::new();
    env.repo("t", &file_url(upstream.path()), "");
    env.chantal(&["init"]).ok();
    sync(&env, "t").ok();
    let mut mount = Mount::start(&env, "t/latest/repodata/repomd.xml");

    // A second chantal-fs on the same mount point stops at once, naming the mount.
    let second = Command::new(chantal_tests::bin("chantal-fs"))
        .arg("--config")
        .arg(env.config())
        .arg(mount.path())
        .env_remove("CHANTAL_DATABASE_URL")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].starts_with(&format!(
            "chantal-fs: error: {} is already mounted (fuse",
            mount.path().display()
        )),
        "{err}"
    );

    // SIGTERM while a client holds a file open.
    let rpm = mount
        .path()
        .join("t/latest/Packages/hello-1.0-1.noarch.rpm");
    let mut open = std::fs::File::open(&rpm).unwrap();
    let pid = mount.child.as_ref().unwrap().id();
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    wait_for("the mount to be detached", || !mount.mounted());
    // New opens find no mount; the open file reads to the end.
    assert!(!rpm.exists());
    let mut data = Vec::new();
    std::io::Read::read_to_end(&mut open, &mut data).unwrap();
    assert_eq!(
        data,
        std::fs::read(test_rpm("hello-1.0-1.noarch.rpm")).unwrap()
    );
    drop(open);
    let mut child = mount.child.take().unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}: {}", mount.log());
    assert!(!mount.log().contains("WARN"), "{}", mount.log());
    assert!(!mount.log().contains("ERROR"), "{}", mount.log());
}

// ---------------------------------------------------------------------------------------------
// 9. latest/ shows a new version right after the sync that committed it.

#[test]
fn latest_is_visible_a_fifth_of_a_second_after_the_sync() {
    let upstream = upstream_dir();
    let sets: [&[&str]; 2] = [
        &["hello-1.0-1.noarch.rpm"],
        &["hello-1.1-1.noarch.rpm", "lib-1.0-1.x86_64.rpm"],
    ];
    up(upstream.path(), sets[0]);
    let env = Env::new();
    env.repo("v", &file_url(upstream.path()), "");
    env.chantal(&["init"]).ok();
    sync(&env, "v").ok();
    let mut mount = Mount::start(&env, "v/latest/repodata/repomd.xml");
    let repomd = mount.path().join("v/latest/repodata/repomd.xml");
    for round in 1..=6 {
        // Looked up and read often, so the kernel holds its entries.
        for _ in 0..5 {
            std::fs::read(&repomd).unwrap();
        }
        up(upstream.path(), sets[round % 2]);
        sync(&env, "v").ok();
        std::thread::sleep(Duration::from_millis(200));
        let expected = std::fs::read(upstream.path().join("repodata/repomd.xml")).unwrap();
        assert_eq!(
            std::fs::read(&repomd).unwrap(),
            expected,
            "round {round}: latest/ still shows the previous version 0.2 s after the sync"
        );
    }
    assert!(mount.stop().success());
}

// ---------------------------------------------------------------------------------------------
// Rough edges of the first hour.

#[test]
fn configuration_files_that_trip_newcomers() {
    let env = Env::new();
    // Empty: stop, naming the file.
    env.write("config.yaml", "# nothing yet\n");
    let err = env.chantal(&["repo", "list"]).fails();
    assert_eq!(
        error_lines(&err),
        [format!(
            "chantal: error: {}:1: the configuration file is empty: set at least storage.base_path (see contrib/examples/config.yaml)",
            env.config().display()
        )]
    );
    // A byte order mark is not YAML.
    env.write(
        "config.yaml",
        &format!(
            "\u{feff}include: conf.d/*.yaml\nstorage:\n  base_path: {}\n{}",
            env.storage().display(),
            env.database_yaml()
        ),
    );
    env.write(
        "conf.d/bom.yaml",
        "\u{feff}name: bom\nupstream:\n  url: file:///srv/x\n",
    );
    env.chantal(&["init"]).ok();
    let out = env.chantal(&["repo", "list"]).ok();
    assert!(out.contains("bom"), "{out}");
    // A name too long for a lock file is refused at load.
    let long = "x".repeat(65);
    env.write(
        "conf.d/bom.yaml",
        &format!("name: {long}\nupstream:\n  url: file:///srv/x\n"),
    );
    let err = env.chantal(&["repo", "list"]).fails();
    assert!(
        err.contains(&format!(
            "conf.d/bom.yaml:1: name: repository name \"{long}\" is 65 characters long: at most 64"
        )),
        "{err}"
    );
    // A syntax error names the key it is under, not `upstream.?`.
    env.write(
        "conf.d/bom.yaml",
        "name: r\nupstream:\n  url: file:///srv/x\n   bad: 1\n",
    );
    let err = env.chantal(&["repo", "list"]).fails();
    assert!(err.contains(":4: upstream: "), "{err}");
    assert!(!err.contains('?'), "{err}");
    // An empty included file is skipped with a warning.
    env.write("conf.d/bom.yaml", "");
    let run = env.chantal(&["repo", "list"]);
    run.ok();
    assert!(
        run.stderr()
            .contains("conf.d/bom.yaml: empty configuration file, ignored"),
        "{}",
        run.stderr()
    );
}

#[test]
fn upstream_errors_say_what_happened_and_to_which_repository() {
    let root = upstream_dir();
    let server = HttpServer::start(root.path());
    up(root.path(), &["hello-1.0-1.noarch.rpm"]);
    let env = Env::new();
    env.download("  retries: 0\n");
    env.repo("gone", "file:///nonexistent/chantal/repo", "");
    env.repo("redirect", &server.url(""), "");
    env.repo("ok", &file_url(root.path()), "");
    env.chantal(&["init"]).ok();
    server.fail_always(
        "/repodata/repomd.xml",
        Some(Fault::Redirect("file:///etc/passwd".into())),
    );
    let run = env.chantal(&["repo", "sync", "--all"]);
    let err = run.fails();
    let errors = error_lines(&err);
    assert_eq!(
        errors,
        [
            "chantal: error: gone: file:///nonexistent/chantal/repo/repodata/repomd.xml: no such file".to_string(),
            format!(
                "chantal: error: redirect: {}/repodata/repomd.xml: HTTP 302 redirect to file:// refused (file:///etc/passwd): chantal follows redirects only to http and https",
                server.url("")
            ),
        ],
        "{err}"
    );
    assert!(
        err.contains("1 of 3 repositories synced; failed: gone, redirect"),
        "{err}"
    );
    assert_eq!(env.latest("ok"), Some(1));
    // The top-level help knows both catalogues; snapshot show and delete explain --name.
    let help = env.chantal(&["--help"]).ok();
    assert!(
        !help.contains("PostgreSQL catalogue") && help.contains("SQLite"),
        "{help}"
    );
    for sub in ["show", "delete"] {
        let help = env.chantal(&["snapshot", sub, "--help"]).ok();
        // The option and its help on one line (the column width follows the longest
        // option of the command).
        assert!(
            help.lines().any(|l| {
                let l = l.trim();
                l.starts_with("--name <SNAPSHOT> ")
                    && l.trim_start_matches("--name <SNAPSHOT>").trim_start()
                        == "The snapshot's name"
            }),
            "{help}"
        );
    }
}

#[test]
fn interrupted_runs_are_shown_as_such_and_their_partial_files_swept() {
    let root = upstream_dir();
    let pkgs = vec![SynthPkg::new("big", "noarch", random_bytes(8 << 20, 7))];
    synthetic_repo(root.path(), &pkgs, SynthOptions::default());
    let server = HttpServer::start(root.path());
    server.throttle(Some(2 << 20));
    let env = Env::new();
    env.repo("i", &server.url(""), "");
    env.chantal(&["init"]).ok();
    let mut child = env.spawn_sync("i");
    wait_for("a partial download", || env.partial_bytes() > 2 << 20);
    Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    // The killed run is not "running": its lock is free.
    let show = env.chantal(&["repo", "show", "--repo-id", "i"]).ok();
    assert!(
        show.contains("interrupted") && !show.contains("running"),
        "{show}"
    );

    // A resumed download counts what came in this run and says what was resumed.
    let had = env.partial_bytes();
    server.throttle(None);
    let out = sync(&env, "i").ok();
    let resumed = chantal_bytes(had);
    assert!(
        out.contains(&format!(
            "downloaded, {resumed} resumed from an earlier run"
        )),
        "{out}"
    );

    // A partial file whose upstream moved on stays until cleanup sweeps it (past the grace,
    // and only if no running sync holds it).
    let stale = env.storage().join("data/tmp/pkg-sha256-0123.part");
    std::fs::write(&stale, b"").unwrap();
    let held = env.storage().join("data/tmp/pkg-sha256-4567.part");
    std::fs::write(&held, b"x").unwrap();
    let lock = std::fs::File::open(&held).unwrap();
    lock.lock().unwrap();
    let out = env.chantal(&["db", "cleanup"]).ok();
    assert!(out.contains(", 0 partial downloads"), "{out}");
    assert!(stale.exists());
    let out = env.chantal(&["db", "cleanup", "--grace", "0"]).ok();
    assert!(out.contains(", 1 partial downloads (0 B)"), "{out}");
    assert!(!stale.exists());
    assert!(held.exists(), "a locked partial file is kept");
    drop(lock);
}

/// How chantal prints a size (`1.5 MiB`).
fn chantal_bytes(n: u64) -> String {
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64;
    let mut unit = "B";
    for u in ["KiB", "MiB", "GiB", "TiB"] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

#[test]
fn createrepo_prints_no_error_lines() {
    // contrib/test.sh and quickstart.sh install rpm for createrepo_c; without it every run
    // prints "Unable to open /usr/lib/rpm/rpmrc".
    let dir = upstream_dir();
    std::fs::create_dir_all(dir.path().join("Packages")).unwrap();
    std::fs::copy(
        test_rpm("hello-1.0-1.noarch.rpm"),
        dir.path().join("Packages/hello-1.0-1.noarch.rpm"),
    )
    .unwrap();
    let out = Command::new("createrepo_c")
        .args(["--no-database"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    createrepo(dir.path(), &[test_rpm("hello-1.0-1.noarch.rpm")], &[]);
}

#[test]
fn a_sqlite_catalogue_on_a_fuse_file_system_is_refused() {
    // bindfs is a FUSE file system: as a network one would, it shares no SQLite memory
    // between hosts. (This machine has no NFS client to test NFS itself.)
    let real = upstream_dir();
    let fuse = upstream_dir();
    let ok = Command::new("bindfs")
        .arg(real.path())
        .arg(fuse.path())
        .status()
        .expect("bindfs (contrib/test.sh installs it)")
        .success();
    assert!(ok);
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("fusermount3").arg("-u").arg(self.0).status();
        }
    }
    let _unmount = Unmount(fuse.path());
    let env = Env::sqlite();
    env.write(
        "config.yaml",
        &format!(
            "include: conf.d/*.yaml\nstorage:\n  base_path: {}/storage\n",
            fuse.path().display()
        ),
    );
    let err = env.chantal(&["init"]).fails();
    assert_eq!(
        error_lines(&err),
        [format!(
            "chantal: error: the SQLite catalogue {}/storage/catalog.db is on a FUSE (GlusterFS, sshfs, s3fs, ceph-fuse...) file system, which cannot share SQLite's locks between hosts: keep storage.base_path (or the sqlite:// file) on a local disk, or set database.url to a PostgreSQL database for several hosts (docs/SCALE-OUT.md)",
            fuse.path().display()
        )],
        "{err}"
    );
}

/// A user's or a service's soft limit on open files is 1024 (systemd's default too): a sync
/// from a fast upstream kept up to 1,024 verified downloads open while they waited for the
/// pool, and failed with "Too many open files" on a large repository. Now the waiting files
/// stay within the limit in force, whatever it is.
#[test]
fn a_large_fast_sync_stays_within_a_low_open_files_limit() {
    let _exclusive = chantal_tests::exclusive();
    let root = upstream_dir();
    synthetic_repo(root.path(), &synth_pkgs(3000, 16), SynthOptions::default());
    let env = Env::new();
    env.repo("many", &format!("file://{}", root.path().display()), "");
    env.chantal(&["init"]).ok();
    // Soft and hard limit 300: chantal cannot raise it, and has 44 left for waiting files.
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("ulimit -Sn 300 && ulimit -Hn 300 && exec \"$@\"")
        .arg("sh")
        .arg(chantal_tests::bin("chantal"))
        .arg("--config")
        .arg(env.config())
        .args(["repo", "sync", "--repo-id", "many"])
        .env_remove("CHANTAL_CONFIG")
        .env_remove("CHANTAL_DATABASE_URL");
    let out = Run(cmd.output().unwrap()).ok();
    assert!(out.starts_with("many: version 1: 3000 added"), "{out}");
}
