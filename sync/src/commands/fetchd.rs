//! `chantal fetchd`: the fetcher chantal-fs asks for on-demand packages, on a Unix socket
//! (`fetch.socket`, default `<storage.base_path>/run/fetchd.sock`) that only its own user (and
//! root) may use. It holds the repositories' credentials; chantal-fs holds none and never
//! speaks to the network.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use chantal_common::fetch::{Event, Request, MAX_REQUEST};
use chantal_common::pool::Pool;
use chantal_common::Sha256;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use super::Context;
use crate::engine::fetcher::{Fetcher, State};
use crate::engine::{Engine, Progress};
use crate::ExitStatus;

pub fn run(ctx: &Context) -> anyhow::Result<ExitStatus> {
    let catalogue = ctx.catalogue()?;
    let pool = Pool::new(&ctx.config.storage.base_path);
    if !pool.tmp_dir().is_dir() {
        anyhow::bail!(
            "storage {} is not initialised: run `chantal init`",
            ctx.config.storage.base_path.display()
        );
    }
    let (rt, cancel) = super::engine_runtime()?;
    let progress = Progress::new(true, false);
    let engine = Engine {
        config: &ctx.config,
        catalogue: &catalogue,
        pool,
        rt: &rt,
        cancel: cancel.clone(),
        progress: &progress,
    };
    let fetcher = Arc::new(Fetcher::new(&engine, Arc::new(ctx.config.clone())));
    let socket = &ctx.config.fetch.socket;
    let listener = rt.block_on(async { bind(socket) })?;
    tracing::info!("serving {}", socket.display());
    rt.block_on(async {
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        let fetcher = Arc::clone(&fetcher);
                        tokio::spawn(async move { serve(stream, fetcher).await });
                    }
                    Err(e) => tracing::warn!("{}: accept: {e}", socket.display()),
                },
            }
        }
    });
    let _ = std::fs::remove_file(socket);
    // Downloads under way stop at the cancellation; their partial files stay for the next.
    rt.shutdown_timeout(std::time::Duration::from_secs(5));
    Ok(ExitStatus::Success)
}

/// Listens on `socket`, readable and writable by this user only, in a directory made for it
/// if missing (mode 0700). A socket file nobody answers on is a dead fetcher's: replaced.
fn bind(socket: &Path) -> anyhow::Result<UnixListener> {
    if let Some(dir) = socket.parent() {
        if !dir.is_dir() {
            std::fs::create_dir_all(dir)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| anyhow::anyhow!("cannot restrict {}: {e}", dir.display()))?;
        }
    }
    if socket.exists() {
        if std::os::unix::net::UnixStream::connect(socket).is_ok() {
            anyhow::bail!("another chantal fetchd serves {}", socket.display());
        }
        std::fs::remove_file(socket)
            .map_err(|e| anyhow::anyhow!("cannot remove the stale {}: {e}", socket.display()))?;
    }
    // Created with no access for others at all, not opened up and then narrowed.
    let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o177));
    let bound = UnixListener::bind(socket);
    rustix::process::umask(old);
    bound.map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", socket.display()))
}

/// One request: its file's events until the last.
async fn serve(stream: UnixStream, fetcher: Arc<Fetcher>) {
    // The socket's mode keeps others out; the peer's uid is checked all the same.
    let me = rustix::process::geteuid().as_raw();
    match stream.peer_cred() {
        Ok(c) if c.uid() == me || c.uid() == 0 => {}
        Ok(c) => {
            tracing::warn!("refused a request from uid {}", c.uid());
            return;
        }
        Err(e) => {
            tracing::warn!("refused a request: {e}");
            return;
        }
    }
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read.take(MAX_REQUEST as u64));
    if reader.read_line(&mut line).await.is_err() {
        return;
    }
    let sha256 = match Request::parse(&line).and_then(|r| Sha256::parse(&r.sha256)) {
        Ok(s) => s,
        Err(reason) => {
            let _ = write
                .write_all(Event::Failed { reason }.line().as_bytes())
                .await;
            return;
        }
    };
    let mut rx = fetcher.follow(sha256);
    let mut sent = State::default();
    loop {
        let now = rx.borrow_and_update().clone();
        let mut out = String::new();
        if sent.part.is_none() {
            if let Some((path, size)) = &now.part {
                out.push_str(
                    &Event::Part {
                        path: path.clone(),
                        size: *size,
                    }
                    .line(),
                );
            }
        }
        if now.part.is_some() && now.have != sent.have {
            out.push_str(&Event::Have { bytes: now.have }.line());
        }
        if now.verified && !sent.verified {
            out.push_str(&Event::Verified.line());
        }
        if let Some(end) = &now.end {
            out.push_str(&end.line());
        }
        // A reader that went away (its client gave up) stops only its own stream.
        if !out.is_empty() && write.write_all(out.as_bytes()).await.is_err() {
            return;
        }
        if now.end.is_some() {
            return;
        }
        sent = now;
        if rx.changed().await.is_err() {
            let _ = write
                .write_all(
                    Event::Failed {
                        reason: "the fetcher stopped".into(),
                    }
                    .line()
                    .as_bytes(),
                )
                .await;
            return;
        }
    }
}
