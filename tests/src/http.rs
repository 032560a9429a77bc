//! A small HTTP/1.1 server on 127.0.0.1 for sync tests: serves a directory with Range support,
//! logs every request, and injects faults on demand (status codes, dropped connections,
//! truncated or corrupted bodies, throttling, basic auth).

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A fault to inject into the next request for a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and no body.
    Status(u16),
    /// Close the connection without answering.
    Drop,
    /// Announce the full length, send this many bytes, close.
    Truncate(u64),
    /// Send the body with one byte changed.
    Corrupt,
    /// Answer 302 with this Location.
    Redirect(String),
    /// Answer this status with this `Retry-After` header.
    RetryAfter(u16, String),
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Logged {
    /// The path, percent-decoded as a web server decodes it (also for proxy-style requests,
    /// `GET http://host/path`).
    pub path: String,
    /// The request target exactly as sent.
    pub target: String,
    pub range: Option<String>,
    pub status: u16,
    pub authorization: Option<String>,
    pub proxy_authorization: Option<String>,
    /// When it came.
    pub at: std::time::Instant,
}

#[derive(Default)]
struct State {
    faults: HashMap<String, VecDeque<Fault>>,
    /// Faults applied to every request for the path.
    permanent: HashMap<String, Fault>,
    log: Vec<Logged>,
    throttle: Option<u64>,
    basic: Option<String>,
    ignore_range: bool,
    /// URL paths answered with another file than the root's (a hostile upstream's layout).
    aliases: HashMap<String, PathBuf>,
    /// Waited before every answer (a slow upstream).
    delay: Option<Duration>,
}

pub struct HttpServer {
    addr: SocketAddr,
    root: PathBuf,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl HttpServer {
    /// Serves `root` on a free port of 127.0.0.1.
    pub fn start(root: impl Into<PathBuf>) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let root = root.into();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s, st) = (root.clone(), state.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (r, s) = (r.clone(), s.clone());
                std::thread::spawn(move || {
                    let _ = handle(conn, &r, &s);
                });
            }
        });
        HttpServer {
            addr,
            root,
            state,
            stop,
        }
    }

    /// `http://127.0.0.1:PORT` + `path` (path starts with `/`, or is empty).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn root(&self) -> &PathBuf {
        &self.root
    }

    /// Queues faults for the next requests of `path` (URL path, e.g. `/Packages/a.rpm`).
    pub fn fail_next(&self, path: &str, faults: &[Fault]) {
        let mut s = self.state.lock().unwrap();
        s.faults
            .entry(path.to_string())
            .or_default()
            .extend(faults.iter().cloned());
    }

    /// Applies `fault` to every request of `path` until cleared with `None`.
    pub fn fail_always(&self, path: &str, fault: Option<Fault>) {
        let mut s = self.state.lock().unwrap();
        match fault {
            Some(f) => s.permanent.insert(path.to_string(), f),
            None => s.permanent.remove(path),
        };
    }

    /// Limits every response to about `bytes_per_sec` (None: unlimited).
    pub fn throttle(&self, bytes_per_sec: Option<u64>) {
        self.state.lock().unwrap().throttle = bytes_per_sec;
    }

    /// Answers every request with the whole file, as servers without Range support do.
    pub fn ignore_range(&self, ignore: bool) {
        self.state.lock().unwrap().ignore_range = ignore;
    }

    /// Answers requests for the (decoded) URL path `path` with `file`, whatever the root holds.
    pub fn serve_as(&self, path: &str, file: impl Into<PathBuf>) {
        self.state
            .lock()
            .unwrap()
            .aliases
            .insert(path.to_string(), file.into());
    }

    /// Waits this long before answering each request (None: answer at once).
    pub fn delay(&self, delay: Option<Duration>) {
        self.state.lock().unwrap().delay = delay;
    }

    /// Requires HTTP basic authentication with these credentials.
    pub fn require_basic(&self, user: &str, password: &str) {
        self.state.lock().unwrap().basic = Some(basic_header(user, password));
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Logged> {
        self.state.lock().unwrap().log.clone()
    }

    /// Requests for one path.
    pub fn requests_for(&self, path: &str) -> Vec<Logged> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }
}

/// The `Authorization: Basic ...` value for these credentials.
pub fn basic_header(user: &str, password: &str) -> String {
    use std::fmt::Write as _;
    let raw = format!("{user}:{password}");
    let mut b64 = String::new();
    for chunk in raw.as_bytes().chunks(3) {
        const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                let _ = write!(b64, "=");
            }
        }
    }
    format!("Basic {b64}")
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn handle(conn: TcpStream, root: &std::path::Path, state: &Mutex<State>) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut conn = conn;
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    // A forward proxy gets absolute URLs: serve them from the same root.
    let raw_path = match target.split_once("://") {
        Some((_, rest)) => rest
            .find('/')
            .map_or("/".to_string(), |i| rest[i..].to_string()),
        None => target.clone(),
    };
    let path = percent_decode(raw_path.split('?').next().unwrap_or("/"));
    let mut range = None;
    let mut auth = None;
    let mut proxy_auth = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            match k.trim().to_ascii_lowercase().as_str() {
                "range" => range = Some(v.trim().to_string()),
                "authorization" => auth = Some(v.trim().to_string()),
                "proxy-authorization" => proxy_auth = Some(v.trim().to_string()),
                _ => {}
            }
        }
    }
    let (fault, throttle, basic, ignore_range, alias) = {
        let mut s = state.lock().unwrap();
        let fault = s
            .faults
            .get_mut(&path)
            .and_then(VecDeque::pop_front)
            .or_else(|| s.permanent.get(&path).cloned());
        let alias = s.aliases.get(&path).cloned();
        let delay = s.delay;
        let answer = (fault, s.throttle, s.basic.clone(), s.ignore_range, alias);
        drop(s);
        if let Some(d) = delay {
            std::thread::sleep(d);
        }
        answer
    };
    let log = |status: u16| {
        state.lock().unwrap().log.push(Logged {
            path: path.clone(),
            target: target.clone(),
            range: range.clone(),
            status,
            authorization: auth.clone(),
            proxy_authorization: proxy_auth.clone(),
            at: std::time::Instant::now(),
        })
    };
    if let Some(expected) = basic {
        if auth.as_deref() != Some(expected.as_str()) {
            log(401);
            return respond(
                &mut conn,
                401,
                &[("WWW-Authenticate", "Basic realm=\"t\"".into())],
                b"",
            );
        }
    }
    match fault {
        Some(Fault::Status(code)) => {
            log(code);
            return respond(&mut conn, code, &[], b"");
        }
        Some(Fault::Drop) => {
            log(0);
            return Ok(());
        }
        Some(Fault::Redirect(location)) => {
            log(302);
            return respond(&mut conn, 302, &[("Location", location)], b"");
        }
        Some(Fault::RetryAfter(code, after)) => {
            log(code);
            return respond(&mut conn, code, &[("Retry-After", after)], b"");
        }
        _ => {}
    }
    let rel = path.trim_start_matches('/');
    let file = alias.unwrap_or_else(|| root.join(rel));
    if rel.split('/').any(|s| s == "..") || !file.is_file() {
        log(404);
        return respond(&mut conn, 404, &[], b"not found");
    }
    let mut body = std::fs::read(&file)?;
    if fault == Some(Fault::Corrupt) && !body.is_empty() {
        let i = body.len() / 2;
        body[i] ^= 0xff;
    }
    let total = body.len() as u64;
    let mut start = 0u64;
    let mut status = 200;
    let mut headers = vec![("Accept-Ranges", "bytes".to_string())];
    let honoured = if ignore_range { None } else { range.as_deref() };
    if let Some(r) = honoured.and_then(|r| r.strip_prefix("bytes=")) {
        let from: u64 = r.split('-').next().unwrap_or("0").parse().unwrap_or(0);
        if from >= total {
            log(416);
            return respond(
                &mut conn,
                416,
                &[("Content-Range", format!("bytes */{total}"))],
                b"",
            );
        }
        start = from;
        status = 206;
        headers.push((
            "Content-Range",
            format!("bytes {from}-{}/{total}", total - 1),
        ));
    }
    log(status);
    let body = &body[usize::try_from(start).unwrap()..];
    let send = match fault {
        Some(Fault::Truncate(n)) => &body[..usize::try_from(n).unwrap().min(body.len())],
        _ => body,
    };
    write_head(&mut conn, status, &headers, body.len() as u64)?;
    match throttle {
        None => conn.write_all(send)?,
        Some(rate) => {
            let chunk = 16 * 1024;
            for piece in send.chunks(chunk) {
                conn.write_all(piece)?;
                std::thread::sleep(Duration::from_secs_f64(piece.len() as f64 / rate as f64));
            }
        }
    }
    conn.flush()?;
    // Drain so the client never sees a reset while it still sends.
    let _ = conn.shutdown(std::net::Shutdown::Write);
    let mut sink = [0u8; 256];
    let _ = reader.read(&mut sink);
    Ok(())
}

/// `%xx` sequences to bytes, as nginx and Apache decode a request path.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' {
            if let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            ) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn write_head(
    conn: &mut TcpStream,
    status: u16,
    headers: &[(&str, String)],
    len: u64,
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} X\r\nContent-Length: {len}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes())
}

fn respond(
    conn: &mut TcpStream,
    status: u16,
    headers: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<()> {
    write_head(conn, status, headers, body.len() as u64)?;
    conn.write_all(body)?;
    conn.flush()
}
