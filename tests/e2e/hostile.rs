//! A hostile or broken upstream, found by trying: files larger than chantal accepts for them
//! (refused at the first answer, never retried), a local tree whose symlinks lead out of it,
//! and an installer description that is an HTML error page.

use std::path::Path;

use chantal_tests::http::HttpServer;
use chantal_tests::repo::{createrepo, test_rpm, upstream_dir};
use chantal_tests::Env;

fn initialised() -> Env {
    let env = Env::new();
    env.chantal(&["init"]).ok();
    env
}

fn sync(env: &Env, repo: &str) -> chantal_tests::Run {
    env.chantal(&["repo", "sync", "--repo-id", repo])
}

/// A key URL, a `.treeinfo` and an `extra_files.json` over their limits: one request each, one
/// line naming the URL and the limit, nothing committed, and the previous latest stays.
#[test]
fn files_over_their_limit_are_refused_at_once_without_retries() {
    let up = upstream_dir();
    createrepo(up.path(), &[test_rpm("hello-1.0-1.noarch.rpm")], &[]);
    let server = HttpServer::start(up.path());
    let env = initialised();
    env.repo("r", &server.url(""), "");
    sync(&env, "r").ok();
    assert_eq!(env.latest("r"), Some(1));
    // Each case: the file, its size, the repository's extra configuration.
    let big = |name: &str, len: usize| {
        std::fs::write(up.path().join(name), vec![b'x'; len]).unwrap();
    };
    let cases: [(&str, usize, String); 3] = [
        (
            "big.key",
            3 << 20,
            format!(
                "rpm:\n  gpgcheck: true\n  gpgkeys: [{}]\n",
                server.url("/big.key")
            ),
        ),
        (".treeinfo", 3 << 20, String::new()),
        ("extra_files.json", 6 << 20, String::new()),
    ];
    for (name, len, extra) in &cases {
        if *name == "extra_files.json" {
            // A real, small .treeinfo, so that extra_files.json is read.
            std::fs::write(
                up.path().join(".treeinfo"),
                "[header]\ntype = productmd.treeinfo\nversion = 1.2\n",
            )
            .unwrap();
        }
        big(name, *len);
        env.repo("r", &server.url(""), extra);
        let before = server.requests_for(&format!("/{name}")).len();
        let started = std::time::Instant::now();
        let err = sync(&env, "r").fails();
        let requests = server.requests_for(&format!("/{name}")).len() - before;
        assert_eq!(requests, 1, "{name} was requested {requests} times: {err}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(4),
            "{name}: {:?}",
            started.elapsed()
        );
        assert!(err.contains(&server.url(&format!("/{name}"))), "{err}");
        assert!(err.contains("bytes: refusing it"), "{err}");
        assert_eq!(env.latest("r"), Some(1), "{name}");
        std::fs::remove_file(up.path().join(name)).unwrap();
    }
    let _ = std::fs::remove_file(up.path().join(".treeinfo"));
    env.repo("r", &server.url(""), "");
    sync(&env, "r").ok();
}

/// A `file://` upstream whose tree holds symlinks: ones that stay inside are followed (DVD
/// trees have them), ones that lead out are refused — for a package, an installer image and
/// repodata itself — even when the file outside has the right checksum.
#[test]
fn a_local_tree_is_never_left_through_a_symlink() {
    use std::os::unix::fs::symlink;
    let outside = tempfile::tempdir().unwrap();
    let up = upstream_dir();
    createrepo(up.path(), &[test_rpm("hello-1.0-1.noarch.rpm")], &[]);
    let env = initialised();
    env.repo("r", &format!("file://{}", up.path().display()), "");
    sync(&env, "r").ok();
    let served = env.latest_hrefs("r");
    let package = served.iter().find(|h| h.ends_with(".rpm")).unwrap().clone();
    let pkg_path = up.path().join(&package);

    // Inside: the package moved to another directory of the tree, linked back (relative).
    let inside = up.path().join("pool");
    std::fs::create_dir_all(&inside).unwrap();
    std::fs::rename(&pkg_path, inside.join("hello.rpm")).unwrap();
    let depth = Path::new(&package).components().count() - 1;
    let rel = format!("{}pool/hello.rpm", "../".repeat(depth));
    symlink(&rel, &pkg_path).unwrap();
    let fresh = initialised();
    fresh.repo("r", &format!("file://{}", up.path().display()), "");
    sync(&fresh, "r").ok();
    assert_eq!(fresh.latest("r"), Some(1));

    // Outside: the same bytes, outside the tree.
    std::fs::remove_file(&pkg_path).unwrap();
    std::fs::rename(inside.join("hello.rpm"), outside.path().join("hello.rpm")).unwrap();
    symlink(outside.path().join("hello.rpm"), &pkg_path).unwrap();
    let env2 = initialised();
    env2.repo("r", &format!("file://{}", up.path().display()), "");
    let err = sync(&env2, "r").fails();
    assert!(err.contains("leads out of the upstream directory"), "{err}");
    assert!(err.contains(&package), "{err}");
    assert_eq!(env2.latest("r"), None);
    // A relative link that climbs out is the same.
    std::fs::remove_file(&pkg_path).unwrap();
    let climb = format!(
        "{}{}",
        "../".repeat(depth + 1 + up.path().components().count()),
        outside.path().join("hello.rpm").display()
    );
    symlink(&climb, &pkg_path).unwrap();
    assert!(std::fs::metadata(&pkg_path).is_ok(), "the link resolves");
    let err = sync(&env2, "r").fails();
    assert!(err.contains("leads out of the upstream directory"), "{err}");

    // repodata/ itself a link out of the tree: refused before anything is read.
    std::fs::remove_file(&pkg_path).unwrap();
    std::fs::rename(outside.path().join("hello.rpm"), &pkg_path).unwrap();
    let repodata = up.path().join("repodata");
    let moved = outside.path().join("repodata");
    std::fs::rename(&repodata, &moved).unwrap();
    symlink(&moved, &repodata).unwrap();
    let err = sync(&env2, "r").fails();
    assert!(err.contains("repodata/repomd.xml"), "{err}");
    assert!(err.contains("leads out of the upstream directory"), "{err}");
    // The first installation still serves what it had.
    assert_eq!(env.latest("r"), Some(1));

    // A FIFO where a package should be is refused, not waited on.
    std::fs::remove_file(&repodata).unwrap();
    std::fs::rename(&moved, &repodata).unwrap();
    std::fs::remove_file(&pkg_path).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(&pkg_path)
        .status()
        .unwrap();
    assert!(status.success());
    let err = sync(&env2, "r").fails();
    assert!(err.contains("not a regular file"), "{err}");
}

/// A `.treeinfo` that is an HTML page served with 200 (a "soft 404"), or empty: the error says
/// what it is and how to mirror the repository without an installer tree.
#[test]
fn a_soft_404_treeinfo_names_the_way_out() {
    let up = upstream_dir();
    createrepo(up.path(), &[test_rpm("hello-1.0-1.noarch.rpm")], &[]);
    let env = initialised();
    env.repo("r", &format!("file://{}", up.path().display()), "");
    for (body, what) in [
        (
            "<!DOCTYPE html>\n<html><head><title>Not Found</title></head><body>404</body></html>\n",
            "looks like an HTML page",
        ),
        ("", "is empty"),
    ] {
        std::fs::write(up.path().join(".treeinfo"), body).unwrap();
        let err = sync(&env, "r").fails();
        assert!(err.contains(".treeinfo"), "{err}");
        assert!(err.contains(what), "{err}");
        assert!(err.contains("rpm.installer_tree: skip"), "{err}");
        assert_eq!(env.latest("r"), None);
    }
    env.repo(
        "r",
        &format!("file://{}", up.path().display()),
        "rpm:\n  installer_tree: skip\n",
    );
    sync(&env, "r").ok();
    assert_eq!(env.latest("r"), Some(1));
}

/// An upstream repomd.xml that lists a type named like a file chantal adds itself
/// (`repomd_asc`, `gpgkey`, `tree`...): refused, or the version would pass for signed or
/// key-carrying, or list an installer tree it does not have.
#[test]
fn repodata_types_named_like_chantals_own_files_are_refused() {
    let up = upstream_dir();
    let env = initialised();
    env.repo("r", &format!("file://{}", up.path().display()), "");
    for own in ["repomd_asc", "gpgkey", "tree"] {
        createrepo(up.path(), &[test_rpm("hello-1.0-1.noarch.rpm")], &[]);
        let extra = up.path().join("extra.txt");
        std::fs::write(&extra, "not what it claims\n").unwrap();
        let out = std::process::Command::new("modifyrepo_c")
            .args(["--mdtype", own, "--no-compress"])
            .arg(&extra)
            .arg(up.path().join("repodata"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let err = sync(&env, "r").fails();
        assert!(
            err.contains(&format!(
                "type \"{own}\" is a name chantal gives its own files"
            )),
            "{err}"
        );
        assert_eq!(env.latest("r"), None);
    }
}

/// An upstream repodata file at the path the mirror's signing key takes
/// (`repodata/repomd.xml.key`): with `publish.sign` the version could not hold both, and the
/// layout check, on the whole manifest, refuses it before any package is downloaded.
#[test]
fn repodata_in_the_way_of_the_mirrors_key_is_refused_before_downloading() {
    let up = upstream_dir();
    createrepo(up.path(), &[test_rpm("hello-1.0-1.noarch.rpm")], &[]);
    let extra = up.path().join("repomd.xml.key");
    std::fs::write(&extra, "upstream's own file\n").unwrap();
    let out = std::process::Command::new("modifyrepo_c")
        .args([
            "--mdtype",
            "mirrorkey",
            "--no-compress",
            "--simple-md-filenames",
        ])
        .arg(&extra)
        .arg(up.path().join("repodata"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(up.path().join("repodata/repomd.xml.key").is_file());
    let server = HttpServer::start(up.path());
    let env = initialised();
    let key = chantal_tests::signing::GpgKey::new("mirror", "ed25519");
    let secret = key.export_secret(&env.storage().join("../signing.asc"));
    env.repo(
        "r",
        &server.url(""),
        &format!("publish:\n  sign:\n    key: {}\n", secret.display()),
    );
    let err = sync(&env, "r").fails();
    assert!(err.contains("refusing to publish the new version"), "{err}");
    assert!(err.contains("repodata/repomd.xml.key"), "{err}");
    let packages = server
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/Packages/"))
        .count();
    assert_eq!(packages, 0, "packages were downloaded before the refusal");
    assert_eq!(env.latest("r"), None);
    // The dry run shows the version's files, where each comes from.
    env.repo("r", &server.url(""), "");
    let json: serde_json::Value = serde_json::from_str(
        &env.chantal(&[
            "repo",
            "sync",
            "--repo-id",
            "r",
            "--dry-run",
            "--format",
            "json",
        ])
        .ok(),
    )
    .unwrap();
    let files = json[0]["manifest"]["files"].as_array().unwrap();
    let of = |path: &str| files.iter().find(|f| f["path"] == path).cloned();
    assert_eq!(
        of("Packages/hello-1.0-1.noarch.rpm").unwrap()["source"],
        "download"
    );
    assert_eq!(
        of("Packages/hello-1.0-1.noarch.rpm").unwrap()["is"],
        "package"
    );
    let repomd = of("repodata/repomd.xml").unwrap();
    assert_eq!(
        (repomd["source"].clone(), repomd["kind"].clone()),
        ("held".into(), "repomd".into())
    );
    assert_eq!(of("repodata/repomd.xml.key").unwrap()["kind"], "mirrorkey");
}
