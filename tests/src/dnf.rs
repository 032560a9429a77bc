//! A real dnf as the client: a repository version materialised from the catalogue into a
//! directory (hardlinks into the pool: repodata plus packages at their hrefs), and the dnf
//! queries the tests compare against the catalogue.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Env;

/// Hardlinks a version's files (latest when `version` is None) into a new directory.
pub fn materialize(env: &Env, repo: &str, version: Option<i64>) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("chantal-tree-")
        .tempdir()
        .unwrap();
    let v: i64 = match version {
        Some(v) => v,
        None => env.latest(repo).unwrap(),
    };
    let rows = env.db.query(
        "SELECT c.location_href, b.path FROM repository_content c
           JOIN repositories r ON r.id = c.repository_id
           JOIN packages p ON p.id = c.package_id JOIN blobs b ON b.sha256 = p.sha256
          WHERE r.name = $1 AND c.added_in <= $2 AND (c.removed_in IS NULL OR c.removed_in > $2)
         UNION ALL
         SELECT m.location_href, b.path FROM repository_metadata m
           JOIN repositories r ON r.id = m.repository_id JOIN blobs b ON b.sha256 = m.blob_sha256
          WHERE r.name = $1 AND m.added_in <= $2 AND (m.removed_in IS NULL OR m.removed_in > $2)",
        &[repo.into(), v.into()],
    );
    let data = env.storage().join("data");
    for r in rows {
        let href = r[0].text();
        let path = r[1].text();
        let dest = dir.path().join(&href);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::hard_link(data.join(&path), &dest).unwrap();
    }
    dir
}

/// Where dnf finds a repository: a directory (`file://`) or a URL (`http://…`).
pub trait Base {
    fn base_url(&self) -> String;
}

impl Base for Path {
    fn base_url(&self) -> String {
        format!("file://{}", self.display())
    }
}

impl Base for PathBuf {
    fn base_url(&self) -> String {
        self.as_path().base_url()
    }
}

impl Base for str {
    fn base_url(&self) -> String {
        self.to_string()
    }
}

impl Base for String {
    fn base_url(&self) -> String {
        self.clone()
    }
}

/// `dnf` with a private cache, no system repositories, and the repository at `tree` as repo
/// `t` (optionally against a private install root).
pub fn command(tree: &(impl Base + ?Sized), cache: &Path, root: Option<&Path>) -> Command {
    let mut c = Command::new("dnf");
    c.args(["-q", "-y", "--releasever=9", "--setopt=reposdir=/dev/null"])
        .arg(format!("--setopt=cachedir={}", cache.display()))
        .arg(format!("--repofrompath=t,{}", tree.base_url()))
        .arg("--repo=t");
    if let Some(r) = root {
        c.arg(format!("--installroot={}", r.display()));
    }
    c
}

fn run(mut c: Command) -> String {
    let out = c.output().expect("dnf (install dnf and dnf-plugins-core)");
    assert!(
        out.status.success(),
        "{c:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `name-epoch:version-release.arch` of every package dnf sees for `arch` (and noarch).
pub fn repoquery(tree: &(impl Base + ?Sized), arch: &str) -> Vec<String> {
    let cache = tempfile::tempdir().unwrap();
    let mut c = command(tree, cache.path(), None);
    c.arg(format!("--forcearch={arch}")).args([
        "repoquery",
        "--qf",
        "%{name}-%{epoch}:%{version}-%{release}.%{arch}",
    ]);
    // repoquery lists every architecture: keep the view of an `arch` machine.
    let mut v: Vec<String> = run(c)
        .lines()
        .filter(|l| l.ends_with(&format!(".{arch}")) || l.ends_with(".noarch"))
        .map(str::to_string)
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Advisory ids `dnf updateinfo list --all` shows with `installed` in a private rpmdb.
pub fn advisories(tree: &(impl Base + ?Sized), installed: &[PathBuf]) -> Vec<String> {
    let cache = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let ok = Command::new("rpm")
        .arg("--root")
        .arg(root.path())
        .arg("--initdb")
        .status()
        .unwrap()
        .success();
    assert!(ok);
    if !installed.is_empty() {
        let out = Command::new("rpm")
            .arg("--root")
            .arg(root.path())
            .args(["-i", "--justdb", "--nodeps"])
            .args(installed)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut c = command(tree, cache.path(), Some(root.path()));
    c.args(["updateinfo", "list", "--all"]);
    let mut ids: Vec<String> = run(c)
        .lines()
        .filter_map(|l| {
            l.trim_start_matches(['i', ' '])
                .split_whitespace()
                .next()
                .map(str::to_string)
        })
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// Group names `dnf group list --hidden` shows.
pub fn groups(tree: &(impl Base + ?Sized)) -> String {
    let cache = tempfile::tempdir().unwrap();
    let mut c = command(tree, cache.path(), None);
    c.args(["group", "list", "--hidden"]);
    run(c)
}

/// Downloads a package with dnf into `dest` and returns the file's path.
pub fn download(tree: &(impl Base + ?Sized), spec: &str, dest: &Path) -> PathBuf {
    let cache = tempfile::tempdir().unwrap();
    let mut c = command(tree, cache.path(), None);
    c.args(["download", "--forcearch=x86_64"])
        .arg(format!("--destdir={}", dest.display()))
        .arg(spec);
    run(c);
    let mut files: Vec<PathBuf> = std::fs::read_dir(dest)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.pop().expect("dnf downloaded nothing")
}
