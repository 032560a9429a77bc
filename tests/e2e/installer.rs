//! Installer trees: a BaseOS-style upstream with `.treeinfo` (written by productmd), images
//! of a few MiB, a variant in another repository and `extra_files.json`, mirrored, served
//! through chantal-fs, nginx and the export, and refused when hostile.

use std::path::Path;
use std::process::Command;

use chantal_tests::mount::Mount;
use chantal_tests::nginx::{Client, Nginx};
use chantal_tests::repo::{random_bytes, synth_pkgs, synthetic_repo, upstream_dir, SynthOptions};
use chantal_tests::Env;

const IMAGES: [(&str, usize); 5] = [
    ("images/pxeboot/vmlinuz", 3 << 20),
    ("images/pxeboot/initrd.img", 5 << 20),
    ("images/boot.iso", 4 << 20),
    ("images/efiboot.img", 1 << 20),
    ("images/install.img", 6 << 20),
];

/// The Python with productmd (contrib/test.sh makes a virtual environment for it).
fn python() -> String {
    std::env::var("CHANTAL_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn productmd(args: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/treeinfo.py");
    let out = Command::new(python())
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "productmd {args:?} (install it: contrib/test.sh does): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn sha256(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// Writes the images (seeded: another seed changes them), and through productmd `.treeinfo` and
/// `extra_files.json` (EULA and a key file).
fn write_tree(dir: &Path, seed: u64) {
    for (i, (path, len)) in IMAGES.iter().enumerate() {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, random_bytes(*len, seed * 100 + i as u64)).unwrap();
    }
    productmd(&["make", dir.to_str().unwrap()]);
    for (name, text) in [("EULA", "the EULA\n"), ("RPM-GPG-KEY-test", "a key\n")] {
        std::fs::write(dir.join(name), text).unwrap();
    }
    productmd(&["extra", dir.to_str().unwrap(), "EULA", "RPM-GPG-KEY-test"]);
}

fn served_files() -> Vec<&'static str> {
    IMAGES
        .iter()
        .map(|(p, _)| *p)
        .chain(["EULA", "RPM-GPG-KEY-test", "extra_files.json"])
        .collect()
}

struct Fixture {
    env: Env,
    up: tempfile::TempDir,
    export: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let env = Env::new();
    let up = upstream_dir();
    let export = upstream_dir();
    synthetic_repo(up.path(), &synth_pkgs(3, 512), SynthOptions::default());
    write_tree(up.path(), 1);
    env.repo(
        "baseos",
        &format!("file://{}", up.path().display()),
        &format!(
            "publish:\n  latest_path: {}/latest\n  snapshots_path: {}/snapshots\n",
            export.path().display(),
            export.path().display()
        ),
    );
    env.chantal(&["init"]).ok();
    Fixture { env, up, export }
}

fn curl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("curl")
        .args(["-sS", "--fail"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn a_tree_is_mirrored_served_byte_identical_and_lists_only_its_own_variants() {
    let f = fixture();
    let env = &f.env;
    // The dry run lists what it would fetch and counts it on its summary line.
    let plan = env
        .chantal(&["repo", "sync", "--repo-id", "baseos", "--dry-run"])
        .ok();
    assert!(plan.contains("and 7 installer tree files"), "{plan}");
    assert!(plan.contains(".treeinfo serves BaseOS"), "{plan}");
    assert!(plan.contains("fetch     images/install.img"), "{plan}");
    env.chantal(&[
        "repo",
        "sync",
        "--repo-id",
        "baseos",
        "--create-snapshot",
        "--snapshot-name",
        "s1",
    ])
    .ok();
    let mount = Mount::start(env, "baseos/latest/repodata/repomd.xml");
    let nginx = Nginx::shipped(mount.path());
    let mut client = Client::connect(&nginx);
    for root in ["/baseos/latest", "/baseos/snapshots/s1"] {
        for path in served_files() {
            let want = std::fs::read(f.up.path().join(path)).unwrap();
            let (status, body) = client.get(&format!("{root}/{path}"));
            assert_eq!(status, 200, "{root}/{path}");
            assert!(body == want, "{root}/{path} through nginx and chantal-fs");
            let exported =
                std::fs::read(f.export.path().join(&root["/baseos/".len()..]).join(path)).unwrap();
            assert!(exported == want, "{path} in the export");
        }
    }
    // The served .treeinfo: productmd reads and validates it, and it lists BaseOS only.
    let (status, treeinfo) = client.get("/baseos/latest/.treeinfo");
    assert_eq!(status, 200);
    let (_, legacy) = client.get("/baseos/latest/treeinfo");
    assert!(legacy == treeinfo, "treeinfo is the same file");
    let served = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(served.path(), &treeinfo).unwrap();
    assert_eq!(
        productmd(&["check", served.path().to_str().unwrap()]).trim(),
        r#"["BaseOS"]"#
    );
    let text = String::from_utf8(treeinfo).unwrap();
    assert!(
        !text.contains("appstream"),
        "nothing names the other repository:\n{text}"
    );
    // PXE: the kernel and initrd in pieces, as boot loaders fetch them.
    for path in ["images/pxeboot/vmlinuz", "images/pxeboot/initrd.img"] {
        let want = std::fs::read(f.up.path().join(path)).unwrap();
        let url = nginx.url(&format!("/baseos/latest/{path}"));
        assert_eq!(curl(&["-r", "0-4095", &url]), want[..4096]);
        assert_eq!(curl(&["-r", "1048576-", &url]), want[1048576..]);
        assert_eq!(curl(&["-r", "-100", &url]), want[want.len() - 100..]);
    }
    drop(client);
    drop(nginx);
    drop(mount);

    // An image changes upstream, repomd.xml does not: a new version, and the snapshot keeps
    // the tree it was made with.
    let repomd = std::fs::read(f.up.path().join("repodata/repomd.xml")).unwrap();
    std::fs::write(
        f.up.path().join("images/boot.iso"),
        random_bytes(4 << 20, 999),
    )
    .unwrap();
    productmd(&["make", f.up.path().to_str().unwrap()]);
    assert_eq!(
        std::fs::read(f.up.path().join("repodata/repomd.xml")).unwrap(),
        repomd
    );
    let v1 = env.latest("baseos").unwrap();
    let out = env.chantal(&["repo", "sync", "--repo-id", "baseos"]).ok();
    assert_eq!(env.latest("baseos"), Some(v1 + 1), "{out}");
    // The summary counts the image and the new .treeinfo it fetched.
    assert!(out.contains("4.0 MiB downloaded"), "{out}");
    assert!(
        std::fs::read(f.export.path().join("latest/images/boot.iso")).unwrap()
            == std::fs::read(f.up.path().join("images/boot.iso")).unwrap()
    );
    assert!(
        std::fs::read(f.export.path().join("snapshots/s1/images/boot.iso")).unwrap()
            != std::fs::read(f.up.path().join("images/boot.iso")).unwrap()
    );
    let diff = env
        .chantal(&[
            "snapshot",
            "diff",
            "--from",
            "s1",
            "--to",
            "latest",
            "--repo-id",
            "baseos",
        ])
        .ok();
    // .treeinfo and its alias treeinfo are one file: one change.
    assert!(diff.contains("installer tree: 2 files changed"), "{diff}");
    assert!(diff.contains("tree changed images/boot.iso"), "{diff}");
    assert!(diff.contains("tree changed .treeinfo"), "{diff}");
    assert!(!diff.contains("tree changed treeinfo"), "{diff}");
    // Nothing changed since: up to date.
    let out = env.chantal(&["repo", "sync", "--repo-id", "baseos"]).ok();
    assert!(out.contains("up to date"), "{out}");
}

#[test]
fn hostile_trees_are_refused_and_the_previous_latest_stays() {
    let f = fixture();
    let env = &f.env;
    env.chantal(&["repo", "sync", "--repo-id", "baseos"]).ok();
    let v1 = env.latest("baseos").unwrap();
    let good = std::fs::read_to_string(f.up.path().join(".treeinfo")).unwrap();
    let served = std::fs::read(f.export.path().join("latest/.treeinfo")).unwrap();
    let install = format!(
        "images/install.img = sha256:{}\n",
        sha256(&std::fs::read(f.up.path().join("images/install.img")).unwrap())
    );
    let cases: Vec<(String, &str)> = vec![
        (
            good.replace("mainimage = images/install.img", "mainimage = /etc/passwd"),
            "absolute",
        ),
        (
            good.replace(
                "mainimage = images/install.img",
                "mainimage = images/../../secret",
            ),
            "'..'",
        ),
        (
            good.replace(
                "mainimage = images/install.img",
                "mainimage = images\\install.img",
            ),
            "outside",
        ),
        (
            good.replace("[stage2]", "[stage2]\nmainimage = images/x.img\n[stage2]"),
            "duplicate section",
        ),
        (
            good.replace(&install, "images/install.img = sha256:abc\n"),
            "not a sha256 checksum",
        ),
        (
            good.replace(
                &install,
                &format!("images/install.img = sha256:{}\n", "0".repeat(64)),
            ),
            "checksum mismatch",
        ),
    ];
    for (text, why) in cases {
        std::fs::write(f.up.path().join(".treeinfo"), &text).unwrap();
        let err = env
            .chantal(&["repo", "sync", "--repo-id", "baseos"])
            .fails();
        assert!(err.contains(why), "expected {why:?}: {err}");
        assert!(
            err.contains(".treeinfo") || err.contains("install.img"),
            "{err}"
        );
        assert_eq!(env.latest("baseos"), Some(v1), "nothing published: {why}");
        assert!(
            std::fs::read(f.export.path().join("latest/.treeinfo")).unwrap() == served,
            "the previous tree is still served"
        );
    }
    // A NUL byte; an image beyond the bound extra_files.json may declare.
    let mut nul = good.clone().into_bytes();
    let at = good.find("mainimage = ").unwrap() + "mainimage = ".len();
    nul.insert(at, 0);
    std::fs::write(f.up.path().join(".treeinfo"), &nul).unwrap();
    let err = env
        .chantal(&["repo", "sync", "--repo-id", "baseos"])
        .fails();
    assert!(err.contains("NUL"), "{err}");
    std::fs::write(f.up.path().join(".treeinfo"), &good).unwrap();
    std::fs::write(
        f.up.path().join("extra_files.json"),
        format!(
            r#"{{"data": [{{"file": "huge.iso", "size": {}, "checksums": {{"sha256": "{}"}}}}]}}"#,
            5u64 << 30,
            "0".repeat(64)
        ),
    )
    .unwrap();
    let err = env
        .chantal(&["repo", "sync", "--repo-id", "baseos"])
        .fails();
    assert!(err.contains("huge.iso declares"), "{err}");
    // The error names the file that says so, and the way out.
    assert!(
        err.contains("/extra_files.json: installer tree refused"),
        "{err}"
    );
    assert!(!err.contains(".treeinfo: installer tree refused"), "{err}");
    assert!(err.contains("rpm.installer_tree: skip"), "{err}");
    assert_eq!(env.latest("baseos"), Some(v1));
}

#[test]
fn installer_tree_skip_mirrors_the_repository_alone() {
    let f = fixture();
    let env = &f.env;
    env.repo(
        "baseos",
        &format!("file://{}", f.up.path().display()),
        &format!(
            "rpm:\n  installer_tree: skip\npublish:\n  latest_path: {}/latest\n",
            f.export.path().display()
        ),
    );
    env.chantal(&["repo", "sync", "--repo-id", "baseos"]).ok();
    assert!(f.export.path().join("latest/repodata/repomd.xml").is_file());
    assert!(!f.export.path().join("latest/.treeinfo").exists());
    assert!(!f.export.path().join("latest/images").exists());
    let err = env
        .chantal(&["repo", "sync", "--repo-id", "baseos", "--dry-run"])
        .ok();
    assert!(!err.contains("installer tree"), "{err}");
}

/// A tree whose extra_files.json claims a package's path is refused with the layout check,
/// before any image is requested (an HTTP upstream, so the requests can be seen).
#[test]
fn a_tree_file_at_a_package_path_is_refused_before_any_image_is_fetched() {
    let env = Env::new();
    let up = upstream_dir();
    let pkgs = synth_pkgs(2, 512);
    synthetic_repo(up.path(), &pkgs, SynthOptions::default());
    write_tree(up.path(), 1);
    let href = pkgs[0].href();
    std::fs::write(
        up.path().join("extra_files.json"),
        format!(
            r#"{{"data": [{{"file": "{href}", "size": {}, "checksums": {{"sha256": "{}"}}}}]}}"#,
            pkgs[0].data.len(),
            sha256(&pkgs[0].data)
        ),
    )
    .unwrap();
    let server = chantal_tests::http::HttpServer::start(up.path());
    env.repo("b", &server.url(""), "");
    env.chantal(&["init"]).ok();
    let err = env.chantal(&["repo", "sync", "--repo-id", "b"]).fails();
    assert!(
        err.contains("refusing to publish") && err.contains(&href),
        "{err}"
    );
    let requested: Vec<String> = server.requests().iter().map(|r| r.path.clone()).collect();
    assert!(
        !requested.iter().any(|p| p.starts_with("/images/")),
        "{requested:?}"
    );
    assert_eq!(env.latest("b"), None);
}

/// A server error on `.treeinfo` fails the sync (the tree may still be there: a version
/// without it would drop it), with one line naming the URL; a 403 for it, as object stores
/// answer for a missing key, means no tree.
#[test]
fn a_server_error_on_the_tree_fails_the_sync_and_a_403_means_no_tree() {
    use chantal_tests::http::{Fault, HttpServer};
    let env = Env::new();
    let up = upstream_dir();
    synthetic_repo(up.path(), &synth_pkgs(2, 512), SynthOptions::default());
    write_tree(up.path(), 1);
    let server = HttpServer::start(up.path());
    env.download("  retries: 0\n");
    env.repo("b", &server.url(""), "");
    env.chantal(&["init"]).ok();
    env.chantal(&["repo", "sync", "--repo-id", "b"]).ok();
    let v1 = env.latest("b").unwrap();
    write_tree(up.path(), 2);
    server.fail_always("/.treeinfo", Some(Fault::Status(503)));
    let run = env.chantal(&["repo", "sync", "--repo-id", "b"]);
    let err = run.fails();
    assert_eq!(run.code(), Some(1), "{err}");
    assert!(
        err.lines().any(|l| l.starts_with("chantal: error: b: ")
            && l.contains(&server.url("/.treeinfo"))
            && l.contains("HTTP 503")),
        "{err}"
    );
    assert_eq!(env.latest("b"), Some(v1), "nothing committed");
    server.fail_always("/.treeinfo", Some(Fault::Status(403)));
    server.fail_always("/treeinfo", Some(Fault::Status(403)));
    env.chantal(&["repo", "sync", "--repo-id", "b"]).ok();
    assert_eq!(env.latest("b"), Some(v1 + 1), "a version without the tree");
}
