//! A temporary file for package fragments, so parsing a huge primary/filelists/other keeps only
//! offsets in memory. Fragments are appended while parsing and read back by position at
//! commit time.

use std::fs::File;
use std::io::Write;
use std::num::NonZeroU32;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::mpsc;

use chantal_common::Error;

/// Where a fragment lives in the spill file. Never empty, so that `Option<Span>` takes no
/// more room than a span (three per package, 100,000 packages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    offset: u64,
    len: NonZeroU32,
}

pub struct Spill {
    writer: Option<Writer>,
    reader: File,
    len: u64,
    path: String,
}

/// Size of the buffers handed to the writing thread.
const BUFFER: usize = 256 << 10;

/// Writes full buffers to the file on a thread of its own, so that the parser, on the sync's
/// critical path, only copies fragments into memory (the page-cache writes of a large
/// primary.xml's fragments cost it about 5 % of its time). At most four buffers exist: the
/// one being filled, two queued, one being written.
struct Writer {
    buf: Vec<u8>,
    full: mpsc::SyncSender<Vec<u8>>,
    thread: std::thread::JoinHandle<std::io::Result<()>>,
}

impl Writer {
    fn new(file: File) -> std::io::Result<Writer> {
        let (full, to_write) = mpsc::sync_channel::<Vec<u8>>(2);
        let thread = std::thread::Builder::new()
            .name("spill".into())
            .spawn(move || {
                for buf in to_write {
                    (&file).write_all(&buf)?;
                }
                Ok(())
            })?;
        Ok(Writer {
            buf: Vec::with_capacity(BUFFER),
            full,
            thread,
        })
    }

    /// Hands the buffer over; false when the thread stopped (on a write error).
    fn send(&mut self) -> bool {
        let next = Vec::with_capacity(BUFFER);
        self.full
            .send(std::mem::replace(&mut self.buf, next))
            .is_ok()
    }

    /// Writes what is left and waits for the thread: its error, if any.
    fn finish(mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            self.send();
        }
        drop(self.full);
        self.thread
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the spill writer panicked")))
    }
}

impl Spill {
    /// An anonymous temporary file in `dir` (removed when dropped, or by the OS on a crash).
    pub fn new(dir: &Path) -> Result<Spill, Error> {
        let file = tempfile::tempfile_in(dir)
            .map_err(|e| Error::io("cannot create a temporary file in", dir, e))?;
        let reader = file
            .try_clone()
            .map_err(|e| Error::io("cannot open a temporary file in", dir, e))?;
        let writer = Writer::new(file)
            .map_err(|e| Error::io("cannot start writing a temporary file in", dir, e))?;
        Ok(Spill {
            writer: Some(writer),
            reader,
            len: 0,
            path: dir.display().to_string(),
        })
    }

    /// Appends a fragment.
    pub fn push(&mut self, fragment: &str) -> Result<Span, Error> {
        self.push_parts(&[fragment.as_bytes()])
    }

    /// Appends one record made of `parts`, read back whole by [`Spill::get_bytes`].
    pub fn push_parts(&mut self, parts: &[&[u8]]) -> Result<Span, Error> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let len = u32::try_from(total)
            .ok()
            .and_then(NonZeroU32::new)
            .ok_or_else(|| Error::Metadata {
                file: "repodata".into(),
                message: format!("a package fragment of {total} bytes is absurd"),
            })?;
        let Some(writer) = self.writer.as_mut() else {
            return Err(self.write_error(std::io::Error::other("written after the flush")));
        };
        for part in parts {
            writer.buf.extend_from_slice(part);
        }
        if writer.buf.len() >= BUFFER && !writer.send() {
            return Err(match self.writer.take().map(Writer::finish) {
                Some(Err(e)) => self.write_error(e),
                _ => self.write_error(std::io::Error::other("the spill writer stopped")),
            });
        }
        let span = Span {
            offset: self.len,
            len,
        };
        self.len += u64::from(len.get());
        Ok(span)
    }

    /// Makes everything pushed so far readable; nothing can be pushed after.
    pub fn flush(&mut self) -> Result<(), Error> {
        match self.writer.take() {
            Some(writer) => writer.finish().map_err(|e| self.write_error(e)),
            None => Ok(()),
        }
    }

    fn write_error(&self, e: std::io::Error) -> Error {
        Error::io("cannot write a temporary file in", &self.path, e)
    }

    /// Reads a fragment back (after [`Spill::flush`]).
    pub fn get(&self, span: Span) -> Result<String, Error> {
        String::from_utf8(self.get_bytes(span)?).map_err(|e| Error::Metadata {
            file: "repodata".into(),
            message: format!("fragment is not UTF-8: {e}"),
        })
    }

    /// Reads a record back (after [`Spill::flush`]).
    pub fn get_bytes(&self, span: Span) -> Result<Vec<u8>, Error> {
        let mut buf = vec![0u8; span.len.get() as usize];
        self.reader
            .read_exact_at(&mut buf, span.offset)
            .map_err(|e| Error::io("cannot read a temporary file in", &self.path, e))?;
        Ok(buf)
    }

    /// Bytes spilled.
    pub fn len(&self) -> u64 {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spill::new(dir.path()).unwrap();
        let a = s.push("<package>a</package>").unwrap();
        let b = s.push("<package>ü</package>").unwrap();
        s.flush().unwrap();
        assert_eq!(s.get(b).unwrap(), "<package>ü</package>");
        assert_eq!(s.get(a).unwrap(), "<package>a</package>");
        assert_eq!(s.len(), 41);
    }

    #[test]
    fn records_and_their_limits() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spill::new(dir.path()).unwrap();
        let a = s.push_parts(&[b"ab", b"", b"c"]).unwrap();
        assert!(s.push("").is_err(), "an empty fragment has no span");
        assert!(s.push_parts(&[b"", b""]).is_err());
        s.flush().unwrap();
        assert_eq!(s.get_bytes(a).unwrap(), b"abc");
        assert_eq!(std::mem::size_of::<Option<Span>>(), 16);
    }
}
