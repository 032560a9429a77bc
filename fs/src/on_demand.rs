//! Reads of files the pool does not hold yet (`download.policy: on_demand`): the first read
//! asks `chantal fetchd` for the file over its Unix socket, once per file however many
//! readers wait; each read is answered as soon as the bytes it needs are written (a large
//! file streams to its first reader while the rest arrives), and the read that reaches the
//! file's end only once the fetcher has verified the whole (before it gets its pool name). A mismatch,
//! an unreachable upstream or no fetcher at all answers EIO to every waiting reader, never a
//! short read and never a hang. chantal-fs itself never speaks to the network.
//!
//! Replies are sent from the thread that follows the fetch, so a read waiting for bytes holds
//! none of the daemon's request threads.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::FileExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chantal_common::fetch::{Event, Request};
use parking_lot::Mutex;

/// How a read is answered: fuser's reply, or a test's.
pub trait ReadReply: Send + 'static {
    fn data(self, bytes: &[u8]);
    fn eio(self);
}

impl ReadReply for fuser::ReplyData {
    fn data(self, bytes: &[u8]) {
        fuser::ReplyData::data(self, bytes);
    }
    fn eio(self) {
        self.error(fuser::Errno::EIO);
    }
}

/// How long the same failure is logged only once per file.
const LOG_ONCE: Duration = Duration::from_secs(10);

/// Whether a read of `len` bytes at `offset` of a file of `size` can be answered with `have`
/// bytes written, and whether the whole file is verified (`done`). The read that reaches the
/// end waits for the verification: a reader never gets the last byte of a file that will
/// turn out wrong.
pub fn ready(offset: u64, len: u32, size: u64, have: u64, done: bool) -> Option<u64> {
    let end = offset.saturating_add(u64::from(len)).min(size);
    if done {
        return Some(end);
    }
    (end < size && have >= end).then_some(end)
}

/// The fetches under way, by sha256.
pub struct OnDemand<R: ReadReply> {
    socket: PathBuf,
    /// A fetch that reports nothing for this long has failed.
    silence: Duration,
    fetches: Mutex<HashMap<String, Arc<Fetch<R>>>>,
    logged: Mutex<HashMap<String, Instant>>,
}

struct Fetch<R> {
    sha256: String,
    size: u64,
    state: Mutex<FetchState<R>>,
}

struct FetchState<R> {
    part: Option<Arc<File>>,
    have: u64,
    /// The partial file is complete and verified: every read may be answered from it.
    verified: bool,
    /// The verified pool file, or why there is none.
    done: Option<Result<Arc<File>, String>>,
    waiting: Vec<(u64, u32, R)>,
}

impl<R: ReadReply> OnDemand<R> {
    /// Asks the fetcher at `socket`; gives up on a fetch that reports nothing for `silence`.
    pub fn new(socket: PathBuf, silence: Duration) -> OnDemand<R> {
        OnDemand {
            socket,
            silence,
            fetches: Mutex::new(HashMap::new()),
            logged: Mutex::new(HashMap::new()),
        }
    }

    /// Answers a read of the pool file `sha256` (of `size` bytes): now if the fetch has got
    /// that far, else when it does.
    pub fn read(self: &Arc<Self>, sha256: &str, size: u64, offset: u64, len: u32, reply: R) {
        let fetch = {
            let mut fetches = self.fetches.lock();
            match fetches.get(sha256) {
                Some(f) => Arc::clone(f),
                None => {
                    let f = Arc::new(Fetch {
                        sha256: sha256.to_string(),
                        size,
                        state: Mutex::new(FetchState {
                            part: None,
                            have: 0,
                            verified: false,
                            done: None,
                            waiting: Vec::new(),
                        }),
                    });
                    fetches.insert(sha256.to_string(), Arc::clone(&f));
                    let (me, follow) = (Arc::clone(self), Arc::clone(&f));
                    let spawned = std::thread::Builder::new()
                        .name("chantal-fetch".into())
                        .spawn(move || me.follow(&follow));
                    if let Err(e) = spawned {
                        fetches.remove(sha256);
                        drop(fetches);
                        self.log_once(sha256, &format!("cannot start a thread: {e}"));
                        reply.eio();
                        return;
                    }
                    f
                }
            }
        };
        let mut state = fetch.state.lock();
        state.waiting.push((offset, len, reply));
        serve(&fetch, &mut state);
    }

    /// Follows one fetch to its end, answering reads as the bytes come.
    fn follow(&self, fetch: &Arc<Fetch<R>>) {
        let outcome = self.talk(fetch);
        let mut state = fetch.state.lock();
        if let Err(reason) = &outcome {
            self.log_once(&fetch.sha256, reason);
        }
        state.done = Some(outcome);
        serve(fetch, &mut state);
        // Readers that come later find the file in the pool, or ask again.
        self.fetches.lock().remove(&fetch.sha256);
    }

    /// The conversation with the fetcher: the verified pool file, or why not.
    fn talk(&self, fetch: &Arc<Fetch<R>>) -> Result<Arc<File>, String> {
        let mut stream = UnixStream::connect(&self.socket).map_err(|e| {
            format!(
                "no fetcher answers on {} ({e}): is chantal fetchd running?",
                self.socket.display()
            )
        })?;
        let silent = |e: std::io::Error| format!("the fetcher: {e}");
        stream
            .set_read_timeout(Some(self.silence))
            .map_err(silent)?;
        let request = Request {
            sha256: fetch.sha256.clone(),
        };
        stream
            .write_all(request.line().as_bytes())
            .map_err(silent)?;
        let mut lines = BufReader::new(stream);
        let mut line = String::new();
        loop {
            line.clear();
            match lines.read_line(&mut line) {
                Ok(0) => return Err("the fetcher stopped answering".into()),
                Ok(_) => {}
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    return Err(format!(
                        "no progress from the fetcher in {} s",
                        self.silence.as_secs()
                    ))
                }
                Err(e) => return Err(silent(e)),
            }
            match Event::parse(&line)? {
                Event::Part { path, size } => {
                    if size != fetch.size {
                        return Err(format!(
                            "the fetcher writes {size} bytes, the catalogue says {}",
                            fetch.size
                        ));
                    }
                    let part = open(&path)?;
                    fetch.state.lock().part = Some(Arc::new(part));
                }
                Event::Have { bytes } => {
                    let mut state = fetch.state.lock();
                    state.have = bytes.min(fetch.size);
                    serve(fetch, &mut state);
                }
                Event::Verified => {
                    let mut state = fetch.state.lock();
                    state.have = fetch.size;
                    state.verified = true;
                    serve(fetch, &mut state);
                }
                Event::Done { path } => return open(&path).map(Arc::new),
                Event::Failed { reason } => return Err(reason),
            }
        }
    }

    fn log_once(&self, sha256: &str, reason: &str) {
        let mut logged = self.logged.lock();
        let now = Instant::now();
        logged.retain(|_, at| now.duration_since(*at) < LOG_ONCE);
        if !logged.contains_key(sha256) {
            logged.insert(sha256.to_string(), now);
            tracing::error!("on-demand file {sha256}: {reason}");
        }
    }
}

fn open(path: &Path) -> Result<File, String> {
    File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))
}

/// Answers every waiting read the state allows, and on failure every waiting read with EIO.
fn serve<R: ReadReply>(fetch: &Fetch<R>, state: &mut FetchState<R>) {
    let failed = matches!(state.done, Some(Err(_)));
    // Verified: the whole file may be read, from the partial file until it has its pool name.
    let done = matches!(state.done, Some(Ok(_))) || (state.verified && state.part.is_some());
    let waiting = std::mem::take(&mut state.waiting);
    for (offset, len, reply) in waiting {
        if failed {
            reply.eio();
            continue;
        }
        let Some(end) = ready(offset, len, fetch.size, state.have, done) else {
            state.waiting.push((offset, len, reply));
            continue;
        };
        let file = match (&state.done, &state.part) {
            (Some(Ok(f)), _) | (None, Some(f)) => Arc::clone(f),
            _ => {
                state.waiting.push((offset, len, reply));
                continue;
            }
        };
        let want = usize::try_from(end.saturating_sub(offset)).unwrap_or(0);
        if want == 0 {
            reply.data(&[]);
            continue;
        }
        let mut buf = vec![0u8; want];
        match read_full(&file, &mut buf, offset) {
            Ok(n) if n == want => reply.data(&buf),
            // A download that restarted rewrites the file from its start: the bytes come
            // again (the same file's), and the read waits for them.
            Ok(_) if !done => state.waiting.push((offset, len, reply)),
            _ => reply.eio(),
        }
    }
}

/// Reads `buf.len()` bytes at `offset`, or fewer at the end of the file.
pub fn read_full(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Against the rule itself: an answer never covers bytes not written, never the last
        /// byte before verification, and a verified file answers every read.
        #[test]
        fn a_read_is_answered_only_with_written_bytes(
            size in 0u64..1000, offset in 0u64..1100, len in 0u32..300,
            have in 0u64..1000, done: bool,
        ) {
            let have = have.min(size);
            match ready(offset, len, size, have, done) {
                Some(end) => {
                    prop_assert!(end <= size);
                    prop_assert!(done || end <= have);
                    prop_assert!(done || end < size);
                }
                None => prop_assert!(!done),
            }
            if done {
                prop_assert!(ready(offset, len, size, have, done).is_some());
            }
        }
    }

    struct Got(std::sync::mpsc::Sender<Option<Vec<u8>>>);
    impl ReadReply for Got {
        fn data(self, bytes: &[u8]) {
            let _ = self.0.send(Some(bytes.to_vec()));
        }
        fn eio(self) {
            let _ = self.0.send(None);
        }
    }

    #[test]
    fn without_a_fetcher_a_read_fails_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let od: Arc<OnDemand<Got>> = Arc::new(OnDemand::new(
            dir.path().join("none.sock"),
            Duration::from_secs(5),
        ));
        let (tx, rx) = std::sync::mpsc::channel();
        od.read(&"a".repeat(64), 10, 0, 10, Got(tx));
        let got = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(got, None);
    }
}
