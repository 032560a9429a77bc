//! A temporary file for package fragments, so parsing a huge primary/filelists/other keeps only
//! offsets in memory. Fragments are appended while parsing and read back by position at
//! commit time.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use chantal_common::Error;

/// Where a fragment lives in the spill file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    offset: u64,
    len: u32,
}

pub struct Spill {
    writer: BufWriter<File>,
    reader: File,
    len: u64,
    path: String,
}

impl Spill {
    /// An anonymous temporary file in `dir` (removed when dropped, or by the OS on a crash).
    pub fn new(dir: &Path) -> Result<Spill, Error> {
        let file = tempfile::tempfile_in(dir)
            .map_err(|e| Error::io("cannot create a temporary file in", dir, e))?;
        let reader = file
            .try_clone()
            .map_err(|e| Error::io("cannot open a temporary file in", dir, e))?;
        Ok(Spill {
            writer: BufWriter::with_capacity(1 << 20, file),
            reader,
            len: 0,
            path: dir.display().to_string(),
        })
    }

    /// Appends a fragment.
    pub fn push(&mut self, fragment: &str) -> Result<Span, Error> {
        let len = u32::try_from(fragment.len()).map_err(|_| Error::Metadata {
            file: "repodata".into(),
            message: format!("a package fragment of {} bytes is absurd", fragment.len()),
        })?;
        self.writer
            .write_all(fragment.as_bytes())
            .map_err(|e| Error::io("cannot write a temporary file in", &self.path, e))?;
        let span = Span {
            offset: self.len,
            len,
        };
        self.len += u64::from(len);
        Ok(span)
    }

    /// Makes everything pushed so far readable.
    pub fn flush(&mut self) -> Result<(), Error> {
        self.writer
            .flush()
            .map_err(|e| Error::io("cannot write a temporary file in", &self.path, e))
    }

    /// Reads a fragment back (after [`Spill::flush`]).
    pub fn get(&self, span: Span) -> Result<String, Error> {
        let mut buf = vec![0u8; span.len as usize];
        self.reader
            .read_exact_at(&mut buf, span.offset)
            .map_err(|e| Error::io("cannot read a temporary file in", &self.path, e))?;
        String::from_utf8(buf).map_err(|e| Error::Metadata {
            file: "repodata".into(),
            message: format!("fragment is not UTF-8: {e}"),
        })
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
}
