//! `chantal verify-tree TARGET`: checks a served tree against its manifest
//! (`.chantal/manifest.json`), trusting neither the mirror nor the copy: with `--key`, the
//! manifest's signature first; then every listed file's size and sha256; and in a directory,
//! that nothing unlisted lies beside them. Needs no configuration: it runs on a client, on an
//! auditor's laptop, or against another site's mirror.

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use chantal_common::tree_manifest::{
    is_own, ManifestFile, TreeManifest, MANIFEST_ASC_PATH, MANIFEST_PATH,
};
use chantal_common::Sha256;
use futures_util::StreamExt;
use serde::Serialize;

use crate::cli::Format;
use crate::engine::{error_chain, Progress};
use crate::output::{self, Report};
use crate::ExitStatus;

/// The largest manifest read (a 100,000-package tree's is about 15 MB).
const MAX_MANIFEST: u64 = 512 << 20;
/// The largest signature read.
const MAX_SIGNATURE: u64 = 1 << 20;

/// What `verify-tree` was asked.
pub struct Args<'a> {
    pub target: &'a str,
    pub key: Option<&'a Path>,
    pub ca_cert: Option<&'a Path>,
    pub jobs: usize,
    pub format: Format,
    pub quiet: bool,
    pub verbose: bool,
}

/// Where the tree is.
enum Target {
    Dir(PathBuf),
    Web {
        base: String,
        client: reqwest::Client,
    },
}

/// What is wrong with one path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "problem")]
enum Problem {
    Missing,
    WrongSize { size: u64, expected: u64 },
    WrongHash { sha256: Sha256, expected: Sha256 },
    Unlisted,
    Unreadable { reason: String },
}

#[derive(Debug, Serialize)]
struct Bad {
    path: String,
    #[serde(flatten)]
    problem: Problem,
}

#[derive(Debug, Serialize)]
struct Verdict {
    target: String,
    repository: String,
    version: i64,
    created: String,
    tree_id: Sha256,
    /// `good` (checked with --key), or `unchecked`.
    signature: &'static str,
    /// The fingerprint of the key that made the signature, when checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    signed_by: Option<String>,
    files: usize,
    bytes: u64,
    /// Whether unlisted files were looked for (a directory; HTTP cannot list).
    listed_checked: bool,
    ok: bool,
    problems: Vec<Bad>,
}

impl Report for Verdict {
    fn text(&self, out: &mut dyn Write) -> io::Result<()> {
        for b in &self.problems {
            let what = match &b.problem {
                Problem::Missing => "missing".to_string(),
                Problem::WrongSize { size, expected } => {
                    format!("size {size}, the manifest says {expected}")
                }
                Problem::WrongHash { sha256, expected } => {
                    format!("sha256 {sha256}, the manifest says {expected}")
                }
                Problem::Unlisted => "not in the manifest".to_string(),
                Problem::Unreadable { reason } => format!("cannot read: {reason}"),
            };
            writeln!(out, "{}: {what}", b.path)?;
        }
        if self.ok {
            let signature = match &self.signed_by {
                Some(fp) => format!("signature good (key {fp})"),
                None => "signature not checked (no --key)".to_string(),
            };
            writeln!(
                out,
                "{}: {} version {}, tree id {}: {} files ({}) match the manifest; {signature}",
                self.target,
                self.repository,
                self.version,
                self.tree_id,
                self.files,
                output::bytes(i64::try_from(self.bytes).unwrap_or(i64::MAX)),
            )?;
        }
        Ok(())
    }
}

pub fn run(args: &Args<'_>) -> anyhow::Result<ExitStatus> {
    let target = open_target(args)?;
    let (rt, cancel) = super::engine_runtime()?;
    let manifest_bytes = rt.block_on(read_small(&target, MANIFEST_PATH, MAX_MANIFEST))?;
    let manifest_bytes = manifest_bytes.ok_or_else(|| {
        anyhow::anyhow!(
            "{}: no manifest (a tree chantal serves has one)",
            location(&target, MANIFEST_PATH)
        )
    })?;
    let signed_by = match args.key {
        None => None,
        Some(key) => {
            let keys = std::fs::read(key)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", key.display()))?;
            let ring = crate::trust::KeyRing::from_files(&[(key.display().to_string(), keys)], &[])
                .map_err(|e| anyhow::anyhow!("{}: {e}", key.display()))?;
            let asc = rt
                .block_on(read_small(&target, MANIFEST_ASC_PATH, MAX_SIGNATURE))?
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "{}: no signature, and --key asks for one",
                        location(&target, MANIFEST_ASC_PATH)
                    )
                })?;
            let fingerprint = ring.verify_detached(&asc, &manifest_bytes).map_err(|e| {
                anyhow::anyhow!(
                    "{}: the manifest's signature does not verify with {}: {e}",
                    location(&target, MANIFEST_ASC_PATH),
                    key.display()
                )
            })?;
            Some(fingerprint)
        }
    };
    let manifest = TreeManifest::parse(&manifest_bytes)
        .map_err(|e| anyhow::anyhow!("{}: {e}", location(&target, MANIFEST_PATH)))?;
    let progress = Progress::new(args.quiet || args.format == Format::Json, args.verbose);
    progress.task("verifying", manifest.bytes());
    let mut problems = match &target {
        Target::Dir(root) => check_dir(root, &manifest.files, &progress, args.jobs),
        Target::Web { base, client } => rt.block_on(check_web(
            client,
            base,
            &manifest.files,
            &progress,
            args.jobs,
        )),
    };
    progress.finish();
    if cancel.is_cancelled() {
        return Ok(ExitStatus::Interrupted);
    }
    if let Target::Dir(root) = &target {
        problems.extend(unlisted(root, &manifest.files)?);
    }
    problems.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    let verdict = Verdict {
        target: args.target.to_string(),
        repository: manifest.repository.clone(),
        version: manifest.version,
        created: manifest.created.clone(),
        tree_id: Sha256::digest(&manifest_bytes),
        signature: if signed_by.is_some() {
            "good"
        } else {
            "unchecked"
        },
        signed_by,
        files: manifest.files.len(),
        bytes: manifest.bytes(),
        listed_checked: matches!(target, Target::Dir(_)),
        ok: problems.is_empty(),
        problems,
    };
    if verdict.ok && args.quiet && args.format != Format::Json {
        return Ok(ExitStatus::Success);
    }
    output::report(args.format, &verdict)?;
    if verdict.ok {
        return Ok(ExitStatus::Success);
    }
    output::error(format_args!(
        "{}: {} of {} paths do not match the manifest",
        args.target,
        verdict.problems.len(),
        verdict.files
    ));
    Ok(ExitStatus::Failure)
}

fn open_target(args: &Args<'_>) -> anyhow::Result<Target> {
    let t = args.target;
    if t.starts_with("http://") || t.starts_with("https://") {
        static CRYPTO: std::sync::Once = std::sync::Once::new();
        CRYPTO.call_once(|| {
            let _ = rustls::crypto::ring::default_provider().install_default();
        });
        let mut b = reqwest::Client::builder()
            .http1_only()
            .connect_timeout(std::time::Duration::from_secs(30))
            .read_timeout(std::time::Duration::from_secs(300))
            .pool_max_idle_per_host(args.jobs)
            .user_agent(concat!("chantal/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = args.ca_cert {
            let pem = std::fs::read(ca)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", ca.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| anyhow::anyhow!("{} is not a PEM certificate: {e}", ca.display()))?;
            b = b.tls_certs_only(certs);
        }
        let client = b
            .build()
            .map_err(|e| anyhow::anyhow!("cannot set up HTTP: {e}"))?;
        return Ok(Target::Web {
            base: format!("{}/", t.trim_end_matches('/')),
            client,
        });
    }
    if t.contains("://") {
        anyhow::bail!("{t}: a tree is a directory or an http(s):// URL");
    }
    let root = PathBuf::from(t);
    if !root.is_dir() {
        anyhow::bail!("{t}: not a directory");
    }
    Ok(Target::Dir(root))
}

fn location(target: &Target, path: &str) -> String {
    match target {
        Target::Dir(root) => root.join(path).display().to_string(),
        Target::Web { base, .. } => format!("{base}{}", chantal_common::rpm::href::url_path(path)),
    }
}

/// A small file of the tree (the manifest, its signature), or none when it does not exist.
async fn read_small(target: &Target, path: &str, max: u64) -> anyhow::Result<Option<Vec<u8>>> {
    let at = location(target, path);
    let too_large = || anyhow::anyhow!("{at}: larger than {max} bytes");
    match target {
        Target::Dir(root) => {
            let file = match std::fs::File::open(root.join(path)) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => anyhow::bail!("{at}: cannot read: {e}"),
            };
            let mut bytes = Vec::new();
            file.take(max + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| anyhow::anyhow!("{at}: cannot read: {e}"))?;
            if bytes.len() as u64 > max {
                return Err(too_large());
            }
            Ok(Some(bytes))
        }
        Target::Web { client, .. } => {
            let resp = client
                .get(&at)
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("{at}: {}", error_chain(&e)))?;
            if resp.status() == reqwest::StatusCode::NOT_FOUND {
                return Ok(None);
            }
            if !resp.status().is_success() {
                anyhow::bail!("{at}: HTTP status {}", resp.status());
            }
            let mut body = resp.bytes_stream();
            let mut bytes = Vec::new();
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| anyhow::anyhow!("{at}: {}", error_chain(&e)))?;
                bytes.extend_from_slice(&chunk);
                if bytes.len() as u64 > max {
                    return Err(too_large());
                }
            }
            Ok(Some(bytes))
        }
    }
}

/// The verdict on one file from what was read: `read` bytes hashing to `sha256`.
fn judge(f: &ManifestFile, read: u64, sha256: Sha256) -> Option<Problem> {
    if read != f.size {
        Some(Problem::WrongSize {
            size: read,
            expected: f.size,
        })
    } else if sha256 != f.sha256 {
        Some(Problem::WrongHash {
            sha256,
            expected: f.sha256.clone(),
        })
    } else {
        None
    }
}

/// Checks every listed file below `root`, on `jobs` threads.
fn check_dir(root: &Path, files: &[ManifestFile], progress: &Progress, jobs: usize) -> Vec<Bad> {
    let next = AtomicUsize::new(0);
    let bad = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(f) = files.get(i) else { break };
                if let Some(problem) = check_file(&root.join(&f.path), f, progress) {
                    if let Ok(mut b) = bad.lock() {
                        b.push(Bad {
                            path: f.path.clone(),
                            problem,
                        });
                    }
                }
            });
        }
    });
    bad.into_inner().unwrap_or_else(|p| p.into_inner())
}

fn check_file(path: &Path, f: &ManifestFile, progress: &Progress) -> Option<Problem> {
    use sha2::Digest;
    let unreadable = |e: io::Error| Problem::Unreadable {
        reason: e.to_string(),
    };
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Some(Problem::Missing),
        Err(e) => return Some(unreadable(e)),
    };
    match file.metadata() {
        Ok(m) if !m.is_file() => {
            return Some(Problem::Unreadable {
                reason: "not a regular file".into(),
            })
        }
        // Not hashed: the size already says it differs.
        Ok(m) if m.len() != f.size => {
            return Some(Problem::WrongSize {
                size: m.len(),
                expected: f.size,
            })
        }
        Ok(_) => {}
        Err(e) => return Some(unreadable(e)),
    }
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut read = 0u64;
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buf[..n]);
                read += n as u64;
                progress.bytes(n as u64);
                if read > f.size {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Some(unreadable(e)),
        }
    }
    judge(f, read, Sha256::from_hasher(hasher))
}

/// Checks every listed file below `base` over HTTP, `jobs` at a time; a body is read no
/// further than the listed size allows.
async fn check_web(
    client: &reqwest::Client,
    base: &str,
    files: &[ManifestFile],
    progress: &Progress,
    jobs: usize,
) -> Vec<Bad> {
    futures_util::stream::iter(files)
        .map(|f| async move {
            let url = format!("{base}{}", chantal_common::rpm::href::url_path(&f.path));
            fetch_one(client, &url, f, progress)
                .await
                .map(|problem| Bad {
                    path: f.path.clone(),
                    problem,
                })
        })
        .buffer_unordered(jobs.max(1))
        .filter_map(|b| async move { b })
        .collect()
        .await
}

async fn fetch_one(
    client: &reqwest::Client,
    url: &str,
    f: &ManifestFile,
    progress: &Progress,
) -> Option<Problem> {
    use sha2::Digest;
    let unreadable = |e: &reqwest::Error| Problem::Unreadable {
        reason: error_chain(e),
    };
    let resp = match client.get(url).send().await {
        Ok(r) => r,
        Err(e) => return Some(unreadable(&e)),
    };
    if resp.status() == reqwest::StatusCode::NOT_FOUND {
        return Some(Problem::Missing);
    }
    if !resp.status().is_success() {
        return Some(Problem::Unreadable {
            reason: format!("HTTP status {}", resp.status()),
        });
    }
    if let Some(len) = resp.content_length().filter(|&l| l != f.size) {
        return Some(Problem::WrongSize {
            size: len,
            expected: f.size,
        });
    }
    let mut hasher = sha2::Sha256::new();
    let mut read = 0u64;
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => return Some(unreadable(&e)),
        };
        hasher.update(&chunk);
        read += chunk.len() as u64;
        progress.bytes(chunk.len() as u64);
        if read > f.size {
            break;
        }
    }
    judge(f, read, Sha256::from_hasher(hasher))
}

/// Every entry below `root` that the manifest does not list (but the manifest's own files),
/// symbolic links and other non-files included. Directories are not entries of the manifest:
/// only what they hold is judged.
fn unlisted(root: &Path, files: &[ManifestFile]) -> anyhow::Result<Vec<Bad>> {
    let listed: HashSet<&str> = files.iter().map(|f| f.path.as_str()).collect();
    let mut bad = Vec::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = stack.pop() {
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| anyhow::anyhow!("cannot list {}: {e}", dir.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| anyhow::anyhow!("cannot list {}: {e}", dir.display()))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let rel = if prefix.is_empty() {
                name.to_string()
            } else {
                format!("{prefix}/{name}")
            };
            let kind = entry
                .file_type()
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", entry.path().display()))?;
            if kind.is_dir() {
                stack.push((entry.path(), rel));
            } else if !listed.contains(rel.as_str()) && !is_own(&rel) {
                bad.push(Bad {
                    path: rel,
                    problem: Problem::Unlisted,
                });
            }
        }
    }
    Ok(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(path: &str, data: &[u8]) -> ManifestFile {
        ManifestFile {
            path: path.into(),
            sha256: Sha256::digest(data),
            size: data.len() as u64,
        }
    }

    #[test]
    fn a_directory_is_judged_file_by_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("Packages/a")).unwrap();
        std::fs::create_dir_all(root.join(".chantal")).unwrap();
        std::fs::write(root.join("Packages/a/good.rpm"), b"good").unwrap();
        std::fs::write(root.join("Packages/a/flipped.rpm"), b"bXd").unwrap();
        std::fs::write(root.join("short.rpm"), b"ab").unwrap();
        std::fs::write(root.join("extra.rpm"), b"x").unwrap();
        std::fs::write(root.join(MANIFEST_PATH), b"{}").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("link")).unwrap();
        let files = vec![
            listed("Packages/a/flipped.rpm", b"bad"),
            listed("Packages/a/good.rpm", b"good"),
            listed("gone.rpm", b"x"),
            listed("short.rpm", b"abc"),
        ];
        let progress = Progress::new(true, false);
        let mut bad = check_dir(root, &files, &progress, 3);
        bad.extend(unlisted(root, &files).unwrap());
        bad.sort_by(|a, b| a.path.cmp(&b.path));
        let got: Vec<(&str, &Problem)> =
            bad.iter().map(|b| (b.path.as_str(), &b.problem)).collect();
        assert_eq!(
            got,
            [
                (
                    "Packages/a/flipped.rpm",
                    &Problem::WrongHash {
                        sha256: Sha256::digest(b"bXd"),
                        expected: Sha256::digest(b"bad")
                    }
                ),
                ("extra.rpm", &Problem::Unlisted),
                ("gone.rpm", &Problem::Missing),
                ("link", &Problem::Unlisted),
                (
                    "short.rpm",
                    &Problem::WrongSize {
                        size: 2,
                        expected: 3
                    }
                ),
            ]
        );
    }
}
