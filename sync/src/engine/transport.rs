//! Fetching from the upstream: http/https through reqwest (rustls; client certificates, private
//! CAs, basic auth, proxies) or a local `file://` tree. Retries with backoff, resumes partial
//! downloads with Range requests, and verifies size and checksum while streaming.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Once;

use chantal_common::config::{Auth, DownloadConfig, KeySource, RepoConfig};
use chantal_common::redact::redact_url;
use chantal_common::rpm::checksum::{Checksum, DualHasher};
use chantal_common::rpm::href;
use chantal_common::Sha256;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::error::{Result, SyncError};
use super::retry::Retries;
use crate::cancel::Cancel;

/// Largest repomd.xml accepted.
pub const MAX_REPOMD: u64 = 16 << 20;

/// What a download must turn out to be.
#[derive(Debug, Clone)]
pub struct Expect {
    pub size: Option<u64>,
    pub checksum: Checksum,
    /// Refuse bodies larger than this when no size is declared.
    pub max_size: u64,
}

impl Expect {
    /// A pool file whose size and sha256 the catalogue knows.
    pub fn blob(sha256: &Sha256, size: u64) -> Expect {
        Expect {
            size: Some(size),
            checksum: Checksum {
                kind: chantal_common::rpm::ChecksumType::Sha256,
                value: sha256.to_string(),
            },
            max_size: size,
        }
    }
}

/// A verified download, still at its partial path.
#[derive(Debug, Clone)]
pub struct Downloaded {
    pub sha256: Sha256,
    pub size: u64,
    /// Bytes that came over the wire in this run, over every attempt (a retry's bytes too).
    pub transferred: u64,
    /// Bytes of the file that an earlier run had already fetched (a resumed partial file).
    pub resumed: u64,
}

/// What the attempts of one download did, for [`Downloaded`].
#[derive(Default)]
struct Tally {
    transferred: AtomicU64,
    /// The partial file an earlier run left was thrown away (the server ignored the range,
    /// or the data did not verify).
    restarted: AtomicBool,
}

pub struct Transport {
    kind: Kind,
    /// For key files on the web when the upstream is a local tree.
    key_client: Option<(reqwest::Client, Option<(String, String)>)>,
    base: String,
    retries: u32,
    /// The longest wait a server's Retry-After may ask for: `download.timeout`.
    retry_cap: std::time::Duration,
    cancel: Cancel,
}

/// Where a small file fetched whole comes from.
enum Whole<'a> {
    /// A file named by the configuration (a key file): any local path.
    Local(PathBuf),
    /// A file of the local upstream tree: (its root, the path below it).
    Beneath(&'a Path, String),
    /// The client, its basic credentials, and the URL to request.
    Web(&'a reqwest::Client, &'a Option<(String, String)>, String),
}

enum Kind {
    Http {
        client: reqwest::Client,
        basic: Option<(String, String)>,
    },
    File {
        root: PathBuf,
    },
}

static CRYPTO: Once = Once::new();

impl Transport {
    /// A transport for `repo`. Reads credential files (errors name the config file and line).
    pub fn new(repo: &RepoConfig, download: &DownloadConfig, cancel: Cancel) -> Result<Transport> {
        // Key files may live on the web even when the packages are a local tree.
        let web_keys = repo.rpm.keys.iter().any(|k| {
            matches!(k, KeySource::Url(u) if u.starts_with("http://") || u.starts_with("https://"))
        });
        let (kind, key_client) = if let Some(path) = repo.url.strip_prefix("file://") {
            let web = if web_keys {
                Some(web_client(repo, download)?)
            } else {
                None
            };
            (
                Kind::File {
                    root: PathBuf::from(path),
                },
                web,
            )
        } else {
            let (client, basic) = web_client(repo, download)?;
            (Kind::Http { client, basic }, None)
        };
        Ok(Transport {
            kind,
            key_client,
            base: repo.url.clone(),
            retries: download.retries,
            retry_cap: download.timeout,
            cancel,
        })
    }

    /// Full URL of a path below the repository, as requested (for messages: credentials
    /// redacted). A local tree's files are named by their literal path.
    pub fn url(&self, rel: &str) -> String {
        match &self.kind {
            Kind::File { .. } => format!("{}/{}", self.base, href::normalize(rel)),
            Kind::Http { .. } => redact_url(&self.raw_url(rel)),
        }
    }

    /// Fetches a small file whole (repomd.xml), with retries.
    pub async fn get_bytes(&self, rel: &str, max: u64) -> Result<Vec<u8>> {
        let from = match &self.kind {
            Kind::File { root } => Whole::Beneath(root, href::normalize(rel).into_owned()),
            Kind::Http { client, basic } => Whole::Web(client, basic, self.raw_url(rel)),
        };
        self.get_whole(from, &self.url(rel), max).await
    }

    /// Fetches a small file whole at an absolute URL (a key file), with retries: file://
    /// read locally, http(s) with this repository's client (credentials, CA, proxy).
    pub async fn get_url(&self, raw: &str, max: u64) -> Result<Vec<u8>> {
        let url = redact_url(raw);
        let from = match (raw.strip_prefix("file://"), &self.kind, &self.key_client) {
            (Some(path), _, _) => Whole::Local(PathBuf::from(path)),
            (None, Kind::Http { client, basic }, _)
            | (None, Kind::File { .. }, Some((client, basic))) => {
                Whole::Web(client, basic, raw.to_string())
            }
            (None, Kind::File { .. }, None) => {
                return Err(SyncError::Refused {
                    url,
                    reason: "not an http(s):// or file:// URL".into(),
                })
            }
        };
        self.get_whole(from, &url, max).await
    }

    async fn get_whole(&self, from: Whole<'_>, url: &str, max: u64) -> Result<Vec<u8>> {
        let mut retries = Retries::new(self.retries, self.retry_cap);
        loop {
            let result = match &from {
                Whole::Local(path) => File::open(path)
                    .map_err(|e| local_err(url, &e))
                    .and_then(|f| read_local(f, url, max)),
                Whole::Beneath(root, rel) => {
                    open_beneath(root, rel, url).and_then(|f| read_local(f, url, max))
                }
                Whole::Web(client, basic, raw) => self.get_http(client, basic, raw, url, max).await,
            };
            match result {
                Err(e) => match retries.next(&e) {
                    Some(wait) => {
                        tracing::debug!("retry {}/{} after: {e}", retries.done(), self.retries);
                        self.sleep(wait).await?;
                    }
                    None => return Err(retries.give_up(e)),
                },
                ok => return ok,
            }
        }
    }

    async fn get_http(
        &self,
        client: &reqwest::Client,
        basic: &Option<(String, String)>,
        raw_url: &str,
        url: &str,
        max: u64,
    ) -> Result<Vec<u8>> {
        let resp = request(client, basic, raw_url, None)
            .send()
            .await
            .map_err(|e| transport_err(url, &e))?;
        check_response(url, &resp)?;
        let too_large = || SyncError::TooLarge {
            url: url.into(),
            max,
        };
        // A declared length says it before a byte is read.
        if resp.content_length().is_some_and(|n| n > max) {
            return Err(too_large());
        }
        let mut resp = resp;
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| transport_err(url, &e))? {
            body.extend_from_slice(&chunk);
            if body.len() as u64 > max {
                return Err(too_large());
            }
        }
        Ok(body)
    }

    /// The URL to request: the href's literal path percent-encoded as librepo encodes it,
    /// so chantal fetches exactly the file dnf would (`a%20b.rpm` is requested as
    /// `a%2520b.rpm`), and nothing in it can climb out of the repository.
    fn raw_url(&self, rel: &str) -> String {
        format!("{}/{}", self.base, href::url_path(rel))
    }

    async fn sleep(&self, wait: std::time::Duration) -> Result<()> {
        tokio::select! {
            _ = tokio::time::sleep(wait) => Ok(()),
            _ = self.cancel.cancelled() => Err(SyncError::Interrupted),
        }
    }

    /// Downloads `rel` into the partial file `part`, resuming what a previous attempt or run
    /// left there, retrying transient failures, and verifying size and checksum. `progress`
    /// is called with each chunk's length.
    /// `file` is `part`, opened for reading and writing (and locked by the caller); it is
    /// left holding the verified content.
    pub async fn download(
        &self,
        rel: &str,
        part: &Path,
        file: &mut File,
        expect: &Expect,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<Downloaded> {
        let url = self.url(rel);
        let mut retries = Retries::new(self.retries, self.retry_cap);
        let mut restarted = false;
        let had = file.metadata().map(|m| m.len()).unwrap_or(0);
        let tally = Tally::default();
        let counted = |n: u64| {
            tally.transferred.fetch_add(n, Ordering::Relaxed);
            progress(n);
        };
        loop {
            if self.cancel.is_cancelled() {
                return Err(SyncError::Interrupted);
            }
            let result = match &self.kind {
                Kind::File { root } => {
                    let out = file.try_clone().map_err(|e| {
                        SyncError::Common(chantal_common::Error::io("cannot open", part, e))
                    })?;
                    let (root, src, part, expect, task_url, cancel) = (
                        root.clone(),
                        href::normalize(rel).into_owned(),
                        part.to_path_buf(),
                        expect.clone(),
                        url.clone(),
                        self.cancel.clone(),
                    );
                    let progress_total = tokio::task::spawn_blocking(move || {
                        copy_local(&root, &src, out, &part, &expect, &task_url, &cancel)
                    })
                    .await
                    .map_err(|e| SyncError::Transport {
                        url: url.clone(),
                        reason: e.to_string(),
                    })?;
                    if let Ok(d) = &progress_total {
                        counted(d.transferred);
                    }
                    progress_total
                }
                Kind::Http { client, basic } => {
                    self.attempt_http(
                        client, basic, rel, &url, part, file, expect, &counted, &tally,
                    )
                    .await
                }
            };
            match result {
                Ok(d) => {
                    let kept_prefix = matches!(self.kind, Kind::Http { .. })
                        && !tally.restarted.load(Ordering::Relaxed);
                    return Ok(Downloaded {
                        transferred: tally.transferred.load(Ordering::Relaxed),
                        resumed: if kept_prefix { had.min(d.size) } else { 0 },
                        ..d
                    });
                }
                // Data that does not verify may be a stale resumed prefix or a glitch: start
                // over from nothing once, then give up. The partial file never survives it.
                Err(e @ SyncError::Verify { .. }) => {
                    if restarted {
                        let _ = std::fs::remove_file(part);
                        return Err(e);
                    }
                    let _ = file.set_len(0);
                    tally.restarted.store(true, Ordering::Relaxed);
                    restarted = true;
                }
                Err(e) => match retries.next(&e) {
                    Some(wait) => {
                        tracing::debug!(
                            "{url}: retry {}/{} after: {e}",
                            retries.done(),
                            self.retries
                        );
                        self.sleep(wait).await?;
                    }
                    None => return Err(retries.give_up(e)),
                },
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn attempt_http(
        &self,
        client: &reqwest::Client,
        basic: &Option<(String, String)>,
        rel: &str,
        url: &str,
        part: &Path,
        file: &mut File,
        expect: &Expect,
        progress: &(dyn Fn(u64) + Send + Sync),
        tally: &Tally,
    ) -> Result<Downloaded> {
        let io_err = |e: std::io::Error| {
            SyncError::Common(chantal_common::Error::io("cannot write", part, e))
        };
        let mut have = file.metadata().map_err(io_err)?.len();
        if expect.size.is_some_and(|s| have > s) {
            file.set_len(0).map_err(io_err)?;
            tally.restarted.store(true, Ordering::Relaxed);
            have = 0;
        }
        let mut hasher = DualHasher::new(expect.checksum.kind);
        if have > 0 {
            rehash_prefix(file, have, &mut hasher).map_err(io_err)?;
        }
        let range = (have > 0).then(|| format!("bytes={have}-"));
        let resp = request(client, basic, &self.raw_url(rel), range.as_deref())
            .send()
            .await
            .map_err(|e| transport_err(url, &e))?;
        let status = resp.status().as_u16();
        match status {
            206 if have > 0 && content_range_start(&resp) == Some(have) => {
                tracing::debug!("{url}: resuming at byte {have}");
            }
            416 if have > 0 => {
                // Nothing left to send: the partial file may already be complete.
                let (sha256, declared) = hasher.finish();
                return finish(url, expect, sha256, declared, have, 0);
            }
            200 | 206 => {
                if have > 0 {
                    tracing::debug!("{url}: server ignored the range request, starting over");
                    tally.restarted.store(true, Ordering::Relaxed);
                }
                if have > 0 {
                    // Only when there is something to cut: on ext4 any truncation to zero
                    // makes the last close flush the file at once (auto_da_alloc), one
                    // synchronous writeback per package instead of the flusher's batches.
                    file.set_len(0).map_err(io_err)?;
                }
                file.seek(SeekFrom::Start(0)).map_err(io_err)?;
                hasher = DualHasher::new(expect.checksum.kind);
                have = 0;
                if status == 206 {
                    // A 206 for a request without Range, or for the wrong offset.
                    return Err(SyncError::Transport {
                        url: url.into(),
                        reason: "unexpected partial content".into(),
                    });
                }
            }
            _ => check_response(url, &resp)?,
        }
        let limit = expect.size.unwrap_or(expect.max_size);
        if let Some(len) = resp.content_length() {
            if have + len > limit {
                return Err(SyncError::Verify {
                    url: url.into(),
                    what: "size",
                    expected: limit.to_string(),
                    actual: format!("{} (announced)", have + len),
                });
            }
        }
        file.seek(SeekFrom::End(0)).map_err(io_err)?;
        let mut resp = resp;
        let mut transferred = 0u64;
        loop {
            let chunk = tokio::select! {
                c = resp.chunk() => c.map_err(|e| transport_err(url, &e))?,
                _ = self.cancel.cancelled() => return Err(SyncError::Interrupted),
            };
            let Some(chunk) = chunk else { break };
            have += chunk.len() as u64;
            if have > limit {
                return Err(SyncError::Verify {
                    url: url.into(),
                    what: "size",
                    expected: limit.to_string(),
                    actual: format!("more than {limit}"),
                });
            }
            hasher.update(&chunk);
            file.write_all(&chunk).map_err(io_err)?;
            transferred += chunk.len() as u64;
            progress(chunk.len() as u64);
        }
        if expect.size.is_some_and(|s| have < s) {
            return Err(SyncError::Transport {
                url: url.into(),
                reason: format!("body truncated at {have} of {} bytes", limit),
            });
        }
        let (sha256, declared) = hasher.finish();
        finish(url, expect, sha256, declared, have, transferred)
    }
}

fn finish(
    url: &str,
    expect: &Expect,
    sha256: Sha256,
    declared: Checksum,
    size: u64,
    transferred: u64,
) -> Result<Downloaded> {
    if let Some(s) = expect.size {
        if s != size {
            return Err(SyncError::Verify {
                url: url.into(),
                what: "size",
                expected: s.to_string(),
                actual: size.to_string(),
            });
        }
    }
    if declared.value != expect.checksum.value {
        return Err(SyncError::Verify {
            url: url.into(),
            what: "checksum",
            expected: expect.checksum.to_string(),
            actual: declared.to_string(),
        });
    }
    Ok(Downloaded {
        sha256,
        size,
        transferred,
        resumed: 0,
    })
}

fn request(
    client: &reqwest::Client,
    basic: &Option<(String, String)>,
    url: &str,
    range: Option<&str>,
) -> reqwest::RequestBuilder {
    let mut r = client.get(url);
    if let Some((u, p)) = basic {
        r = r.basic_auth(u, Some(p));
    }
    if let Some(range) = range {
        r = r.header(reqwest::header::RANGE, range);
    }
    r
}

fn content_range_start(resp: &reqwest::Response) -> Option<u64> {
    let v = resp
        .headers()
        .get(reqwest::header::CONTENT_RANGE)?
        .to_str()
        .ok()?;
    let rest = v.strip_prefix("bytes ")?;
    rest.split('-').next()?.trim().parse().ok()
}

/// Fails unless the response is a success. A redirect that was not followed (reqwest follows
/// http and https ones) names where it pointed: a remote server must not send chantal to a
/// local file.
fn check_response(url: &str, resp: &reqwest::Response) -> Result<()> {
    let status = resp.status().as_u16();
    if (300..400).contains(&status) {
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let scheme = location
            .split_once("://")
            .map(|(s, _)| s.to_ascii_lowercase());
        let reason = match scheme.as_deref() {
            Some("http") | Some("https") => {
                format!(
                    "HTTP {status} redirect to {} not followed: too many redirects",
                    redact_url(location)
                )
            }
            Some(other) => format!(
                "HTTP {status} redirect to {other}:// refused ({}): chantal follows redirects only to http and https",
                redact_url(location)
            ),
            None if location.is_empty() => format!("HTTP {status} redirect without a Location"),
            None => format!("HTTP {status} redirect to {location:?} not followed"),
        };
        return Err(SyncError::Refused {
            url: url.into(),
            reason,
        });
    }
    let retry_after = matches!(status, 429 | 503)
        .then(|| resp.headers().get(reqwest::header::RETRY_AFTER))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, chrono::Utc::now()));
    check_status(url, status, retry_after)
}

/// `Retry-After`: a number of seconds, or an HTTP date (how long until then; a date in the
/// past means now).
fn parse_retry_after(
    value: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<std::time::Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(std::time::Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    Some(
        (at.with_timezone(&chrono::Utc) - now)
            .to_std()
            .unwrap_or_default(),
    )
}

fn check_status(url: &str, status: u16, retry_after: Option<std::time::Duration>) -> Result<()> {
    let hint = match status {
        200..=299 => return Ok(()),
        400 => " (bad request: a server that requires a client certificate answers this when none was sent)",
        401 => " (unauthorized: check credentials)",
        403 => " (forbidden: check credentials or the entitlement)",
        404 => " (not found)",
        429 => " (too many requests)",
        500..=599 => " (server error)",
        _ => "",
    };
    Err(SyncError::Status {
        url: url.into(),
        status,
        hint,
        retry_after,
    })
}

/// Joins an error and its causes, without repeating a cause already in the text.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

fn transport_err(url: &str, e: &reqwest::Error) -> SyncError {
    let detail = chain(e);
    let reason = if detail.contains("UnknownIssuer") {
        format!("TLS: the server's certificate is not signed by a trusted CA (set credentials.ca_cert): {detail}")
    } else if detail.contains("CertificateRequired") || detail.contains("certificate required") {
        format!("TLS: the server requires a client certificate (credentials.type: client_cert): {detail}")
    } else if detail.contains("UnknownCA")
        || detail.contains("BadCertificate")
        || detail.contains("bad certificate")
        || detail.contains("unknown ca")
    {
        format!("TLS: the server rejected the client certificate: {detail}")
    } else if e.is_timeout() {
        format!("timed out: {detail}")
    } else {
        detail
    };
    SyncError::Transport {
        url: url.into(),
        reason,
    }
}

fn rehash_prefix(file: &mut File, len: u64, hasher: &mut DualHasher) -> std::io::Result<()> {
    file.seek(SeekFrom::Start(0))?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut left = len;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = file.read(&mut buf[..want])?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        left -= n as u64;
    }
    Ok(())
}

/// The HTTP client for a repository: its proxy, CA, and credentials (basic ones are returned
/// to go with each request).
fn web_client(
    repo: &RepoConfig,
    download: &DownloadConfig,
) -> Result<(reqwest::Client, Option<(String, String)>)> {
    let setup = |reason: String| SyncError::Setup {
        repo: repo.name.clone(),
        reason,
    };
    repo.check_credential_files()?;
    CRYPTO.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    let mut b = reqwest::Client::builder()
        // HTTP/2 would multiplex every parallel download over one connection.
        .http1_only()
        .connect_timeout(download.timeout.min(std::time::Duration::from_secs(30)))
        .read_timeout(download.timeout)
        .pool_max_idle_per_host(download.workers)
        // A redirect elsewhere than http(s) comes back as the 3xx it is, for
        // check_response to refuse by name.
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            let web = matches!(attempt.url().scheme(), "http" | "https");
            if !web || attempt.previous().len() >= 10 {
                attempt.stop()
            } else {
                attempt.follow()
            }
        }))
        .user_agent(concat!("chantal/", env!("CARGO_PKG_VERSION")));
    if let Some(proxy) = repo.effective_proxy(download) {
        let p = reqwest::Proxy::all(proxy)
            .map_err(|e| setup(format!("proxy {}: {e}", redact_url(proxy))))?;
        b = b.proxy(p);
    }
    if let Some(ca) = &repo.credentials.ca_cert {
        let pem = std::fs::read(&ca.path)
            .map_err(|e| setup(format!("cannot read {}: {e}", ca.path.display())))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            setup(format!(
                "{} is not a PEM certificate: {e}",
                ca.path.display()
            ))
        })?;
        b = b.tls_certs_only(certs);
    }
    let mut basic = None;
    match &repo.credentials.auth {
        Auth::None => {}
        Auth::Basic { username, password } => {
            basic = Some((username.clone(), password.clone()));
        }
        Auth::ClientCert { cert, key } => {
            let mut pem = std::fs::read(&cert.path)
                .map_err(|e| setup(format!("cannot read {}: {e}", cert.path.display())))?;
            pem.push(b'\n');
            pem.extend(
                std::fs::read(&key.path)
                    .map_err(|e| setup(format!("cannot read {}: {e}", key.path.display())))?,
            );
            let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                setup(format!(
                    "client certificate {} / key {} unusable: {e}",
                    cert.path.display(),
                    key.path.display()
                ))
            })?;
            b = b.identity(identity);
        }
    }
    let client = b
        .build()
        .map_err(|e| setup(format!("cannot set up HTTP: {}", chain(&e))))?;
    Ok((client, basic))
}

/// O_NONBLOCK, as the platform spells it.
fn libc_nonblock() -> i32 {
    i32::try_from(rustix::fs::OFlags::NONBLOCK.bits()).unwrap_or(0)
}

/// The whole of a local file of at most `max` bytes.
fn read_local(file: File, url: &str, max: u64) -> Result<Vec<u8>> {
    let too_large = || SyncError::TooLarge {
        url: url.into(),
        max,
    };
    let meta = file.metadata().map_err(|e| local_err(url, &e))?;
    if meta.len() > max {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| local_err(url, &e))?;
    // It may have grown since.
    if bytes.len() as u64 > max {
        return Err(too_large());
    }
    Ok(bytes)
}

/// Opens `rel` (an href, normalized) below the local upstream tree `root`, never leaving it:
/// a symlink that resolves inside the tree is followed (DVD and ISO trees carry some), one that
/// leads out of it — or is absolute — is refused, as `..` in an href is. With openat2's
/// RESOLVE_BENEATH (Linux 5.6+) the kernel checks every step; on older kernels the file is
/// opened and the path the kernel opened is checked instead. Only a regular file is taken
/// (opened without blocking, so a FIFO in the tree cannot hang the sync).
fn open_beneath(root: &Path, rel: &str, url: &str) -> Result<File> {
    let file = open_beneath_any(root, rel, url)?;
    let meta = file.metadata().map_err(|e| local_err(url, &e))?;
    if !meta.is_file() {
        return Err(SyncError::Refused {
            url: url.into(),
            reason: "not a regular file: refusing it".into(),
        });
    }
    Ok(file)
}

fn open_beneath_any(root: &Path, rel: &str, url: &str) -> Result<File> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let escapes = || SyncError::Refused {
        url: url.into(),
        reason: "leads out of the upstream directory (a symlink to somewhere else?): refusing it"
            .into(),
    };
    let dir = File::open(root).map_err(|e| local_err(url, &e))?;
    match rustix::fs::openat2(
        &dir,
        rel,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(fd) => Ok(File::from(fd)),
        Err(rustix::io::Errno::XDEV) => Err(escapes()),
        Err(rustix::io::Errno::NOSYS) => {
            use std::os::fd::AsRawFd;
            use std::os::unix::fs::OpenOptionsExt;
            let file = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc_nonblock())
                .open(root.join(rel))
                .map_err(|e| local_err(url, &e))?;
            let opened = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
                .map_err(|e| local_err(url, &e))?;
            let root = std::fs::canonicalize(root).map_err(|e| local_err(url, &e))?;
            if opened.starts_with(&root) {
                Ok(file)
            } else {
                Err(escapes())
            }
        }
        Err(e) => Err(local_err(url, &e.into())),
    }
}

/// A local tree's error, as it is: no such file, permission denied... (never retried).
fn local_err(url: &str, e: &std::io::Error) -> SyncError {
    match e.kind() {
        std::io::ErrorKind::NotFound => SyncError::NotFound { url: url.into() },
        _ => SyncError::Refused {
            url: url.into(),
            reason: e.to_string(),
        },
    }
}

fn copy_local(
    root: &Path,
    src: &str,
    mut out: File,
    part: &Path,
    expect: &Expect,
    url: &str,
    cancel: &Cancel,
) -> Result<Downloaded> {
    let mut input = open_beneath(root, src, url)?;
    let io_err =
        |e: std::io::Error| SyncError::Common(chantal_common::Error::io("cannot write", part, e));
    // An empty file is not truncated: see `attempt_http`.
    if out.metadata().map_err(io_err)?.len() > 0 {
        out.set_len(0).map_err(io_err)?;
    }
    out.seek(SeekFrom::Start(0)).map_err(io_err)?;
    let limit = expect.size.unwrap_or(expect.max_size);
    let mut hasher = DualHasher::new(expect.checksum.kind);
    // Sized to the file (at most 1 MiB): a zeroed 1 MiB buffer per package cost more than
    // copying a small package.
    let want = expect.size.unwrap_or(1 << 20).clamp(8 << 10, 1 << 20);
    let mut buf = vec![0u8; usize::try_from(want).unwrap_or(1 << 20)];
    let mut size = 0u64;
    loop {
        if cancel.is_cancelled() {
            return Err(SyncError::Interrupted);
        }
        let n = input.read(&mut buf).map_err(|e| local_err(url, &e))?;
        if n == 0 {
            break;
        }
        size += n as u64;
        if size > limit {
            return Err(SyncError::Verify {
                url: url.into(),
                what: "size",
                expected: limit.to_string(),
                actual: format!("more than {limit}"),
            });
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(io_err)?;
    }
    let (sha256, declared) = hasher.finish();
    finish(url, expect, sha256, declared, size, size)
}

#[cfg(test)]
mod retry_after_tests {
    use super::parse_retry_after;
    use std::time::Duration;

    #[test]
    fn seconds_or_an_http_date() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-06T10:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Dec 2026 10:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Dec 2026 09:00:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past: now"
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
