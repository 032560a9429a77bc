//! Test upstream repositories: real RPMs run through createrepo_c, and synthetic repodata
//! (any file as a "package", with hooks to make the metadata hostile).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// An empty directory for an upstream repository, removed when dropped.
pub fn upstream_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("chantal-up-")
        .tempdir()
        .unwrap()
}

/// Makes `dir` a repository of the project's test RPMs named `rpms` (replacing its repodata).
pub fn up(dir: &Path, rpms: &[&str]) {
    let files: Vec<_> = rpms.iter().map(|r| test_rpm(r)).collect();
    createrepo(dir, &files, &[]);
}

/// The real-world test data the project carries (`tests/fixtures/`, see its README).
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// createrepo_c's edge-case RPMs from the fixtures.
pub fn fixture_rpms() -> Vec<PathBuf> {
    rpms_in(&fixtures().join("createrepo_c/packages"))
}

/// The project's own test RPMs (`contrib/testdata/build-test-rpms.sh`).
pub fn test_rpms() -> Vec<PathBuf> {
    rpms_in(&Path::new(env!("CARGO_MANIFEST_DIR")).join("data/rpms"))
}

/// One of the project's test RPMs by file name.
pub fn test_rpm(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/rpms")
        .join(name);
    assert!(p.is_file(), "{} missing", p.display());
    p
}

fn rpms_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rpm"))
        .collect();
    v.sort();
    v
}

/// Copies `rpms` into `dir/Packages` and runs createrepo_c with `args` (e.g. `-s sha1`,
/// `--general-compress-type xz`). Replaces any previous repodata.
pub fn createrepo(dir: &Path, rpms: &[PathBuf], args: &[&str]) {
    let pkgs = dir.join("Packages");
    let _ = std::fs::remove_dir_all(&pkgs);
    let _ = std::fs::remove_dir_all(dir.join("repodata"));
    std::fs::create_dir_all(&pkgs).unwrap();
    for r in rpms {
        std::fs::copy(r, pkgs.join(r.file_name().unwrap())).unwrap();
    }
    let mut cmd = Command::new("createrepo_c");
    cmd.arg("--quiet");
    if !args.contains(&"--database") {
        cmd.arg("--no-database");
    }
    let out = cmd
        .args(args)
        .arg(dir)
        .output()
        .expect("createrepo_c (install createrepo-c)");
    assert!(
        out.status.success(),
        "createrepo_c: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A comps file with one group, "Chantal test tools" (`chantal-tools`: `tool`).
pub const COMPS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE comps PUBLIC "-//Red Hat, Inc.//DTD Comps info//EN" "comps.dtd">
<comps>
  <group>
    <id>chantal-tools</id>
    <name>Chantal test tools</name>
    <description>Tools for tests</description>
    <default>false</default>
    <uservisible>true</uservisible>
    <packagelist><packagereq type="mandatory">tool</packagereq></packagelist>
  </group>
</comps>
"#;

/// [`createrepo`] with a comps file, then an updateinfo added with modifyrepo_c.
pub fn createrepo_with(dir: &Path, rpms: &[PathBuf], comps: &str, updateinfo: &str) {
    std::fs::write(dir.join("comps.xml"), comps).unwrap();
    createrepo(dir, rpms, &["-g", "comps.xml"]);
    std::fs::write(dir.join("updateinfo.xml"), updateinfo).unwrap();
    let ok = Command::new("modifyrepo_c")
        .args(["--mdtype=updateinfo"])
        .arg(dir.join("updateinfo.xml"))
        .arg(dir.join("repodata"))
        .output()
        .unwrap()
        .status
        .success();
    assert!(ok, "modifyrepo_c");
}

/// A file to publish as a package in a synthetic repository.
#[derive(Debug, Clone)]
pub struct SynthPkg {
    pub name: String,
    pub arch: String,
    pub version: String,
    pub release: String,
    pub data: Vec<u8>,
    /// The location href, when not the usual `Packages/<nevra>.rpm` (a hostile one).
    pub location: Option<String>,
}

impl SynthPkg {
    pub fn new(name: &str, arch: &str, data: Vec<u8>) -> SynthPkg {
        SynthPkg {
            name: name.into(),
            arch: arch.into(),
            version: "1.0".into(),
            release: "1".into(),
            data,
            location: None,
        }
    }

    /// The same package listed at `href` (XML-escaped as it is written into primary.xml).
    pub fn at(mut self, href: &str) -> SynthPkg {
        self.location = Some(href.into());
        self
    }

    pub fn href(&self) -> String {
        self.location.clone().unwrap_or_else(|| {
            format!(
                "Packages/{}-{}-{}.{}.rpm",
                self.name, self.version, self.release, self.arch
            )
        })
    }
}

/// `n` noarch packages `p0000`, `p0001`..., of `min_len + i` pseudo-random bytes each.
pub fn synth_pkgs(n: usize, min_len: usize) -> Vec<SynthPkg> {
    (0..n)
        .map(|i| {
            SynthPkg::new(
                &format!("p{i:04}"),
                "noarch",
                random_bytes(min_len + i, i as u64),
            )
        })
        .collect()
}

/// Pseudo-random bytes (deterministic per seed).
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// The sha256 of `data`, in hex.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn sha256(data: &[u8]) -> String {
    sha256_hex(data)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// How a synthetic repository is written.
pub struct SynthOptions {
    /// Rewrites primary.xml before compression (to make it hostile).
    pub primary_hook: Box<dyn Fn(String) -> String>,
    /// Replaces the compressed primary file entirely (e.g. a decompression bomb).
    pub primary_bytes: Option<Vec<u8>>,
    /// Extra text inside <data type="primary"> (e.g. an open-size).
    pub primary_extra: String,
    /// Write packages' files (false: metadata only).
    pub write_packages: bool,
}

impl Default for SynthOptions {
    fn default() -> Self {
        SynthOptions {
            primary_hook: Box::new(|s| s),
            primary_bytes: None,
            primary_extra: String::new(),
            write_packages: true,
        }
    }
}

/// Writes `pkgs` and hand-made repodata (primary, filelists, other; sha256) under `dir`.
pub fn synthetic_repo(dir: &Path, pkgs: &[SynthPkg], opts: SynthOptions) {
    let _ = std::fs::remove_dir_all(dir.join("repodata"));
    std::fs::create_dir_all(dir.join("repodata")).unwrap();
    let mut primary = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<metadata xmlns=\"http://linux.duke.edu/metadata/common\" xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\" packages=\"{}\">\n",
        pkgs.len()
    );
    let mut filelists = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<filelists xmlns=\"http://linux.duke.edu/metadata/filelists\" packages=\"{}\">\n",
        pkgs.len()
    );
    let mut other = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<otherdata xmlns=\"http://linux.duke.edu/metadata/other\" packages=\"{}\">\n",
        pkgs.len()
    );
    for p in pkgs {
        let href = p.href();
        let href_xml = href
            .replace('&', "&amp;")
            .replace('"', "&quot;")
            .replace('<', "&lt;");
        if opts.write_packages {
            let path = dir.join(&href);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &p.data).unwrap();
        }
        let id = sha256(&p.data);
        primary.push_str(&format!(
            "<package type=\"rpm\">\n  <name>{n}</name>\n  <arch>{a}</arch>\n  <version epoch=\"0\" ver=\"{v}\" rel=\"{r}\"/>\n  <checksum type=\"sha256\" pkgid=\"YES\">{id}</checksum>\n  <summary>synthetic {n}</summary>\n  <description>synthetic</description>\n  <packager></packager>\n  <url></url>\n  <time file=\"1700000000\" build=\"1700000000\"/>\n  <size package=\"{s}\" installed=\"{s}\" archive=\"{s}\"/>\n  <location href=\"{href_xml}\"/>\n  <format>\n    <rpm:license>MIT</rpm:license>\n    <rpm:sourcerpm>{n}-{v}-{r}.src.rpm</rpm:sourcerpm>\n    <rpm:provides>\n      <rpm:entry name=\"{n}\" flags=\"EQ\" epoch=\"0\" ver=\"{v}\" rel=\"{r}\"/>\n    </rpm:provides>\n  </format>\n</package>\n",
            n = p.name, a = p.arch, v = p.version, r = p.release, s = p.data.len()
        ));
        filelists.push_str(&format!(
            "<package pkgid=\"{id}\" name=\"{}\" arch=\"{}\">\n  <version epoch=\"0\" ver=\"{}\" rel=\"{}\"/>\n  <file>/usr/share/{}</file>\n</package>\n",
            p.name, p.arch, p.version, p.release, p.name
        ));
        other.push_str(&format!(
            "<package pkgid=\"{id}\" name=\"{}\" arch=\"{}\">\n  <version epoch=\"0\" ver=\"{}\" rel=\"{}\"/>\n</package>\n",
            p.name, p.arch, p.version, p.release
        ));
    }
    primary.push_str("</metadata>\n");
    filelists.push_str("</filelists>\n");
    other.push_str("</otherdata>\n");
    let primary = (opts.primary_hook)(primary);
    let primary_gz = opts
        .primary_bytes
        .unwrap_or_else(|| gzip(primary.as_bytes()));
    let mut repomd = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<repomd xmlns=\"http://linux.duke.edu/metadata/repo\" xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\">\n  <revision>1700000000</revision>\n",
    );
    for (kind, data, extra) in [
        ("primary", primary_gz, opts.primary_extra.as_str()),
        ("filelists", gzip(filelists.as_bytes()), ""),
        ("other", gzip(other.as_bytes()), ""),
    ] {
        let sum = sha256(&data);
        let href = format!("repodata/{sum}-{kind}.xml.gz");
        std::fs::write(dir.join(&href), &data).unwrap();
        repomd.push_str(&format!(
            "  <data type=\"{kind}\">\n    <checksum type=\"sha256\">{sum}</checksum>\n    <location href=\"{href}\"/>\n    <timestamp>1700000000</timestamp>\n    <size>{}</size>\n{extra}  </data>\n",
            data.len()
        ));
    }
    repomd.push_str("</repomd>\n");
    std::fs::write(dir.join("repodata/repomd.xml"), repomd).unwrap();
}

/// The paths of the pool's files, read while another process may be removing some (a
/// cleanup running): a file or directory gone between its listing and its reading is skipped.
pub fn pool_paths(storage: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![storage.join("data/sha256")];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(_) => out.push(e.path()),
                Err(_) => {}
            }
        }
    }
    out.sort();
    out
}

/// Every file in the pool and whether its content matches the sha256 in its name.
pub fn pool_files(storage: &Path) -> Vec<(PathBuf, bool)> {
    pool_paths(storage)
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let expected = name.split('_').next().unwrap_or("").to_string();
            let ok = sha256(&std::fs::read(&p).unwrap()) == expected;
            (p, ok)
        })
        .collect()
}

/// Rewrites a createrepo_c repository's gzip repodata as zstd (as Fedora's createrepo_c writes
/// it), updating repomd.xml's checksums, sizes and names.
pub fn recompress_zstd(dir: &Path) {
    use std::io::Read;
    let repomd_path = dir.join("repodata/repomd.xml");
    let mut repomd = std::fs::read_to_string(&repomd_path).unwrap();
    let hrefs: Vec<String> = repomd
        .split("<location href=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_string())
        .filter(|h| h.ends_with(".gz"))
        .collect();
    for href in hrefs {
        let gz = std::fs::read(dir.join(&href)).unwrap();
        let mut plain = Vec::new();
        flate2::read::MultiGzDecoder::new(&gz[..])
            .read_to_end(&mut plain)
            .unwrap();
        let zst = zstd::encode_all(&plain[..], 3).unwrap();
        let old_sum = sha256(&gz);
        let new_sum = sha256(&zst);
        let new_href = href.replace(&old_sum, &new_sum).replace(".gz", ".zst");
        std::fs::write(dir.join(&new_href), &zst).unwrap();
        std::fs::remove_file(dir.join(&href)).unwrap();
        repomd = repomd
            .replace(&href, &new_href)
            .replace(&old_sum, &new_sum)
            .replace(
                &format!("<size>{}</size>", gz.len()),
                &format!("<size>{}</size>", zst.len()),
            );
    }
    std::fs::write(repomd_path, repomd).unwrap();
}

/// A repository of only the given repodata files (kind, file), with its repomd.xml.
pub fn repodata_tree(files: &[(&str, &Path)]) -> tempfile::TempDir {
    use chantal_common::repodata::writer::{repomd_xml, RepomdEntry};
    let dir = tempfile::Builder::new()
        .prefix("chantal-rt-")
        .tempdir()
        .unwrap();
    std::fs::create_dir_all(dir.path().join("repodata")).unwrap();
    let mut entries = Vec::new();
    for (kind, path) in files {
        let data = std::fs::read(path).unwrap();
        let href = format!("repodata/{}", path.file_name().unwrap().to_string_lossy());
        std::fs::write(dir.path().join(&href), &data).unwrap();
        entries.push(RepomdEntry {
            kind: chantal_common::rpm::MetadataKind::parse(kind),
            location_href: href,
            sha256: chantal_common::Sha256::digest(&data),
            size: data.len() as u64,
            open_sha256: None,
            open_size: None,
            timestamp: 1700000000,
        });
    }
    std::fs::write(
        dir.path().join("repodata/repomd.xml"),
        repomd_xml("1", &entries),
    )
    .unwrap();
    dir
}
