//! Reading compressed repodata (gz, xz, zstd, bz2, or plain) with a bound on how much it may
//! expand, so a decompression bomb ends in an error instead of filling memory or disk.

use std::io::{self, BufRead, BufReader, Read};

/// Compression of a repodata file, detected from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Xz,
    Zstd,
    Bzip2,
}

impl Compression {
    /// Detects the format from magic bytes.
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            Compression::Xz
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else if head.starts_with(b"BZh") {
            Compression::Bzip2
        } else {
            Compression::None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gz",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
            Compression::Bzip2 => "bz2",
        }
    }
}

/// How far a file may expand.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Absolute cap on the decompressed size.
    pub max_output: u64,
    /// Cap on decompressed / compressed size (only checked once past 1 MiB of output).
    pub max_ratio: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            // A real primary.xml of a huge repository is a few GiB at most.
            max_output: 16 << 30,
            // Real repodata compresses 5–30×; generated repetitive XML reaches ~200× with zstd.
            max_ratio: 1000,
        }
    }
}

/// Opens `reader` (compressed size `input_size`) for reading its decompressed content.
/// `reader` is local storage: its own errors stay recognisable (see [`storage_error`]) through
/// the decompressors, which pass them on unchanged.
pub fn open(
    reader: impl Read + Send + 'static,
    input_size: u64,
    limits: Limits,
) -> io::Result<(Compression, Box<dyn BufRead + Send>)> {
    let mut buffered = BufReader::with_capacity(256 * 1024, Storage(reader));
    let compression = Compression::detect(buffered.fill_buf()?);
    let inner: Box<dyn Read + Send> = match compression {
        Compression::None => Box::new(buffered),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
        Compression::Xz => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(buffered)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(buffered)?),
        Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(buffered)),
    };
    let max = limits.max_output.min(
        input_size
            .max(1)
            .saturating_mul(limits.max_ratio)
            .max(1 << 20),
    );
    Ok((
        compression,
        Box::new(BufReader::with_capacity(
            256 * 1024,
            Bounded {
                inner,
                read: 0,
                max,
            },
        )),
    ))
}

/// Marks the errors of the stored file itself, as opposed to those of its content.
struct Storage<R>(R);

#[derive(Debug)]
struct StorageFailure(io::Error);

impl std::fmt::Display for StorageFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for StorageFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl<R: Read> Read for Storage<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).map_err(|e| {
            if e.kind() == io::ErrorKind::Interrupted {
                e
            } else {
                io::Error::new(e.kind(), StorageFailure(e))
            }
        })
    }
}

/// `Ok(cause)` when `e` came from the stored file below [`open`]'s reader (a local I/O
/// error), `Err(e)` when it came from the content (corrupt or oversized compressed data).
pub fn storage_error(e: io::Error) -> Result<io::Error, io::Error> {
    if is_storage_error(&e) {
        match e
            .into_inner()
            .map(|inner| inner.downcast::<StorageFailure>())
        {
            Some(Ok(failure)) => Ok(failure.0),
            // Unreachable after the check above; keep the error as the content's.
            Some(Err(inner)) => Err(io::Error::other(inner)),
            None => Err(io::Error::other("unknown read error")),
        }
    } else {
        Err(e)
    }
}

/// Whether `e` came from the stored file below [`open`]'s reader.
pub fn is_storage_error(e: &io::Error) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.is::<StorageFailure>())
}

/// Fails with `InvalidData` once more than `max` bytes came out.
struct Bounded<R> {
    inner: R,
    read: u64,
    max: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "decompressed data exceeds {} bytes: refusing a likely decompression bomb",
                    self.max
                ),
            ));
        }
        Ok(n)
    }
}

/// Chunks a [`read_ahead`] thread hands over: small enough to stay below glibc's mmap
/// threshold (each chunk reuses heap memory instead of costing an mmap and page faults), and
/// few, so at most `AHEAD` × `CHUNK` bytes wait.
const CHUNK: usize = 64 << 10;
const AHEAD: usize = 8;

/// `input` read on a thread of its own, `AHEAD` chunks ahead of the reader: decompressing one
/// file then runs beside the parse of what it produced (two cores: the parse costs about what
/// the decompression costs). Errors arrive in order, as they were; dropping the reader stops
/// the thread at its next chunk.
pub fn read_ahead(mut input: Box<dyn BufRead + Send>) -> io::Result<Box<dyn BufRead + Send>> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<io::Result<Vec<u8>>>(AHEAD);
    std::thread::Builder::new()
        .name("read-ahead".into())
        .spawn(move || loop {
            let mut chunk = Vec::with_capacity(CHUNK);
            let got = (&mut input).take(CHUNK as u64).read_to_end(&mut chunk);
            // The bytes read before an error go first; an empty chunk is the end.
            let last = !matches!(got, Ok(n) if n > 0);
            if !(chunk.is_empty() && got.is_err()) && tx.send(Ok(chunk)).is_err() {
                return;
            }
            if let Err(e) = got {
                let _ = tx.send(Err(e));
            }
            if last {
                return;
            }
        })?;
    Ok(Box::new(Ahead {
        rx,
        chunk: Vec::new(),
        pos: 0,
        done: false,
    }))
}

struct Ahead {
    rx: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    pos: usize,
    done: bool,
}

impl Read for Ahead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        read_from_buf(self, buf)
    }
}

/// `Read::read` for a reader whose buffer is the source (`BufRead` first).
pub(super) fn read_from_buf(r: &mut impl BufRead, out: &mut [u8]) -> io::Result<usize> {
    let n = {
        let have = r.fill_buf()?;
        let n = have.len().min(out.len());
        out[..n].copy_from_slice(&have[..n]);
        n
    };
    r.consume(n);
    Ok(n)
}

impl BufRead for Ahead {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos == self.chunk.len() && !self.done {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.done = chunk.is_empty();
                    self.chunk = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                // The thread ended without a last (empty) chunk: it panicked.
                Err(_) => {
                    self.done = true;
                    return Err(io::Error::other("the read-ahead thread died"));
                }
            }
        }
        Ok(&self.chunk[self.pos..])
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.chunk.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn fixture(name: &str) -> std::fs::File {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/createrepo_c/compressed_files")
            .join(name);
        std::fs::File::open(p).unwrap()
    }

    #[test]
    fn reads_every_repodata_compression() {
        let mut plain = String::new();
        fixture("00_plain.txt").read_to_string(&mut plain).unwrap();
        for (name, kind) in [
            ("00_plain.txt", Compression::None),
            ("00_plain.txt.gz", Compression::Gzip),
            ("00_plain.txt.xz", Compression::Xz),
            ("00_plain.txt.zst", Compression::Zstd),
            ("00_plain.txt.bz2", Compression::Bzip2),
        ] {
            let f = fixture(name);
            let size = f.metadata().unwrap().len();
            let (c, mut r) = open(f, size, Limits::default()).unwrap();
            assert_eq!(c, kind, "{name}");
            let mut out = String::new();
            r.read_to_string(&mut out).unwrap();
            assert_eq!(out, plain, "{name}");
        }
    }

    #[test]
    fn bombs_are_stopped() {
        let zeros = vec![0u8; 64 << 20];
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut enc, &zeros).unwrap();
        let gz = enc.finish().unwrap();
        let size = gz.len() as u64;
        let (_, mut r) = open(std::io::Cursor::new(gz), size, Limits::default()).unwrap();
        let err = std::io::copy(&mut r, &mut std::io::sink()).unwrap_err();
        assert!(err.to_string().contains("decompression bomb"), "{err}");
    }

    #[test]
    fn read_ahead_passes_bytes_and_errors_on_unchanged() {
        // 1 MiB of varied bytes, several chunks and a ragged end.
        let data: Vec<u8> = (0..(1u32 << 20) + 12345)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let mut r = read_ahead(Box::new(std::io::Cursor::new(data.clone()))).unwrap();
        let mut got = Vec::new();
        // Small reads across chunk boundaries, then the rest.
        let mut small = [0u8; 1000];
        r.read_exact(&mut small).unwrap();
        got.extend_from_slice(&small);
        r.read_to_end(&mut got).unwrap();
        assert_eq!(got, data);
        assert_eq!(r.fill_buf().unwrap(), b"");
        // An error midway arrives after the bytes before it, as the same error.
        let failing = std::io::Cursor::new(vec![7u8; 100_000]).chain(Storage(FailingRead));
        let mut r = read_ahead(Box::new(BufReader::new(failing))).unwrap();
        let mut got = Vec::new();
        let err = r.read_to_end(&mut got).unwrap_err();
        assert_eq!(got.len(), 100_000);
        assert!(is_storage_error(&err), "{err}");
        // A bomb is still one.
        let zeros = vec![0u8; 64 << 20];
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut enc, &zeros).unwrap();
        let gz = enc.finish().unwrap();
        let size = gz.len() as u64;
        let (_, r) = open(std::io::Cursor::new(gz), size, Limits::default()).unwrap();
        let err = std::io::copy(&mut read_ahead(r).unwrap(), &mut std::io::sink()).unwrap_err();
        assert!(err.to_string().contains("decompression bomb"), "{err}");
    }

    struct FailingRead;

    impl Read for FailingRead {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::other("disk on fire"))
        }
    }
}
