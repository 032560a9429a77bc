//! Why a repodata document could not be read. The document's own faults (upstream's) and the
//! failures of the machine reading it (a disk error, a full spill file) are different errors:
//! an operator fixes the second, not the mirror.

use std::io;
use std::path::Path;

/// The error of the repodata parsers.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The document is malformed, hostile or inconsistent.
    #[error("{0}")]
    Invalid(String),
    /// Reading the stored file failed: a local I/O error, not the document's fault.
    #[error("cannot read: {0}")]
    Read(#[source] io::Error),
    /// The caller's handler of an entry failed (writing a spill file, a catalogue error...);
    /// passed through as it was.
    #[error(transparent)]
    Handler(#[from] crate::Error),
}

impl From<String> for ParseError {
    fn from(message: String) -> ParseError {
        ParseError::Invalid(message)
    }
}

impl From<&str> for ParseError {
    fn from(message: &str) -> ParseError {
        ParseError::Invalid(message.to_string())
    }
}

impl From<io::Error> for ParseError {
    /// An error from the file chantal stored is local; any other error of a reader below the
    /// parser (decompression, the size budget) is the document's.
    fn from(e: io::Error) -> ParseError {
        match super::decompress::storage_error(e) {
            Ok(local) => ParseError::Read(local),
            Err(content) => ParseError::Invalid(content.to_string()),
        }
    }
}

impl ParseError {
    /// The crate error for this failure of `file` (an href or URL, for the operator) stored at
    /// `path`.
    pub fn into_error(self, file: &str, path: &Path) -> crate::Error {
        match self {
            ParseError::Invalid(message) => crate::Error::Metadata {
                file: file.to_string(),
                message,
            },
            ParseError::Read(e) => crate::Error::io("cannot read", path, e),
            ParseError::Handler(e) => e,
        }
    }
}

/// For tests: the message of the [`ParseError::Invalid`] a parse ended with; success or any
/// other error fails the test.
#[cfg(test)]
pub trait Refused {
    fn refused(self) -> String;
}

#[cfg(test)]
impl<T: std::fmt::Debug> Refused for Result<T, ParseError> {
    fn refused(self) -> String {
        match self {
            Err(ParseError::Invalid(message)) => message,
            other => panic!("expected the document to be refused, got {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpm::{decompress, primary};
    use std::io::Read;

    /// A stored file whose disk fails after `good` bytes.
    struct FailingDisk {
        data: Vec<u8>,
        at: usize,
        good: usize,
    }

    impl Read for FailingDisk {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.at >= self.good {
                return Err(io::Error::from_raw_os_error(libc::EIO));
            }
            let n = buf
                .len()
                .min(self.good - self.at)
                .min(self.data.len() - self.at);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    fn gzip(text: &str) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut enc, text.as_bytes()).unwrap();
        enc.finish().unwrap()
    }

    const DOC: &str = r#"<metadata packages="1"><package type="rpm"><name>a</name><arch>noarch</arch><version epoch="0" ver="1" rel="1"/><checksum type="sha256">0000000000000000000000000000000000000000000000000000000000000000</checksum><location href="a.rpm"/><size package="1"/></package></metadata>"#;

    fn parse_stored(stored: impl Read + Send + 'static, size: u64) -> Result<u64, ParseError> {
        let (_, reader) = decompress::open(stored, size, Default::default())?;
        primary::parse(reader, |_, _| Ok(())).map(|s| s.parsed)
    }

    #[test]
    fn a_failing_disk_is_a_read_error_at_any_point() {
        let data = gzip(DOC);
        let size = data.len() as u64;
        assert_eq!(
            parse_stored(std::io::Cursor::new(data.clone()), size).unwrap(),
            1
        );
        for good in [0, 10, data.len() / 2] {
            let disk = FailingDisk {
                data: data.clone(),
                at: 0,
                good,
            };
            match parse_stored(disk, size) {
                Err(ParseError::Read(e)) => assert_eq!(e.raw_os_error(), Some(libc::EIO)),
                other => panic!("after {good} bytes: {other:?}"),
            }
        }
        // Plain (uncompressed) files go the same way.
        let disk = FailingDisk {
            data: DOC.as_bytes().to_vec(),
            at: 0,
            good: 30,
        };
        assert!(matches!(parse_stored(disk, 0), Err(ParseError::Read(_))));
    }

    #[test]
    fn corrupt_compressed_data_is_the_documents_fault() {
        let mut data = gzip(DOC);
        let n = data.len();
        for b in &mut data[12..n - 8] {
            *b ^= 0x5a;
        }
        let size = data.len() as u64;
        assert!(matches!(
            parse_stored(std::io::Cursor::new(data), size),
            Err(ParseError::Invalid(_))
        ),);
        let truncated = gzip(DOC)[..40].to_vec();
        assert!(matches!(
            parse_stored(std::io::Cursor::new(truncated), 40),
            Err(ParseError::Invalid(_))
        ));
    }

    #[test]
    fn a_handler_failure_is_passed_through_as_it_was() {
        let err = primary::parse(DOC.as_bytes(), |_, _| {
            Err(crate::Error::io(
                "cannot write",
                "/var/tmp/spill",
                io::Error::from_raw_os_error(libc::ENOSPC),
            )
            .into())
        })
        .unwrap_err();
        match err.into_error("primary.xml.gz", Path::new("/pool/x")) {
            crate::Error::Io { action, path, .. } => {
                assert_eq!(action, "cannot write");
                assert_eq!(path, Path::new("/var/tmp/spill"));
            }
            other => panic!("{other:?}"),
        }
    }
}
