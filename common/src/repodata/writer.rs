//! Writing repodata: primary, filelists and other from stored package fragments, and
//! repomd.xml with checksums, open checksums, sizes and timestamps. Each document streams
//! through a compressor into a pool file, hashed on the way; nothing is held whole in memory.

use std::io::{self, Write};

use sha2::{Digest, Sha256 as Sha256Hasher};

use crate::error::{Error, Result};
use crate::pool::{Placed, Pool, StoredBlob};
use crate::rpm::MetadataKind;
use crate::Sha256;

/// Compression of generated files: gzip, or zstd where upstream used it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutCompression {
    Gzip,
    Zstd,
}

impl OutCompression {
    fn extension(self) -> &'static str {
        match self {
            OutCompression::Gzip => "gz",
            OutCompression::Zstd => "zst",
        }
    }
}

/// A repodata file now in the pool, with what repomd.xml says of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoFile {
    pub kind: MetadataKind,
    /// `repodata/<sha256>-<kind>.xml.gz` and the like.
    pub location_href: String,
    pub blob: StoredBlob,
    pub open_sha256: Option<Sha256>,
    pub open_size: Option<u64>,
    pub timestamp: i64,
}

/// Passes bytes to `inner`, hashing and counting them.
struct Hashing<W> {
    inner: W,
    hasher: Sha256Hasher,
    len: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

enum Encoder {
    Gzip(flate2::write::GzEncoder<Hashing<io::BufWriter<tempfile::NamedTempFile>>>),
    Zstd(zstd::stream::write::Encoder<'static, Hashing<io::BufWriter<tempfile::NamedTempFile>>>),
}

/// One XML document being written.
pub struct DocWriter {
    kind: MetadataKind,
    compression: OutCompression,
    encoder: Encoder,
    open: Sha256Hasher,
    open_len: u64,
}

impl DocWriter {
    /// Starts a document of `kind` (`primary`, `filelists`, `other`, `updateinfo`).
    pub fn new(pool: &Pool, kind: MetadataKind, compression: OutCompression) -> Result<DocWriter> {
        let dir = pool.tmp_dir();
        let tmp = tempfile::Builder::new()
            .prefix(".repodata-")
            .tempfile_in(&dir)
            .map_err(|e| Error::io("cannot create a temporary file in", &dir, e))?;
        let sink = Hashing {
            inner: io::BufWriter::with_capacity(1 << 20, tmp),
            hasher: Sha256Hasher::new(),
            len: 0,
        };
        let encoder = match compression {
            OutCompression::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                sink,
                flate2::Compression::new(6),
            )),
            OutCompression::Zstd => Encoder::Zstd(
                zstd::stream::write::Encoder::new(sink, 3)
                    .map_err(|e| Error::io("cannot start zstd in", &dir, e))?,
            ),
        };
        Ok(DocWriter {
            kind,
            compression,
            encoder,
            open: Sha256Hasher::new(),
            open_len: 0,
        })
    }

    /// Appends text.
    pub fn write(&mut self, text: &str) -> Result<()> {
        self.open.update(text.as_bytes());
        self.open_len += text.len() as u64;
        let r = match &mut self.encoder {
            Encoder::Gzip(e) => e.write_all(text.as_bytes()),
            Encoder::Zstd(e) => e.write_all(text.as_bytes()),
        };
        r.map_err(|e| Error::io("cannot write repodata", self.kind.as_str(), e))
    }

    /// Completes the file and stores it in the pool as `<sha256>-<kind>.xml.<ext>`; the caller
    /// records the [`Placed`] file ([`Pool::record`]).
    pub fn finish(self, pool: &Pool, timestamp: i64) -> Result<(RepoFile, Placed)> {
        let kind = self.kind.to_string();
        let io_err = |e: io::Error| Error::io("cannot write repodata", kind.clone(), e);
        let sink = match self.encoder {
            Encoder::Gzip(e) => e.finish().map_err(io_err)?,
            Encoder::Zstd(e) => e.finish().map_err(io_err)?,
        };
        let sha256 = Sha256::from_hasher(sink.hasher);
        let size = sink.len;
        let tmp = sink
            .inner
            .into_inner()
            .map_err(|e| io_err(e.into_error()))?;
        let name = format!(
            "{sha256}-{}.xml.{}",
            self.kind,
            self.compression.extension()
        );
        let placed = pool.adopt(tmp, &sha256, size, &name)?;
        let file = RepoFile {
            kind: self.kind,
            location_href: format!("repodata/{name}"),
            blob: placed.blob.clone(),
            open_sha256: Some(Sha256::from_hasher(self.open)),
            open_size: Some(self.open_len),
            timestamp,
        };
        Ok((file, placed))
    }
}

/// Escapes text for an XML attribute value.
pub fn escape_attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// A primary `<package>` fragment with its `<location>` pointing at `href` (and no
/// `xml:base`): the same file may sit at another path in this repository than in the one it
/// was first seen in.
pub fn relocate(fragment: &str, href: &str) -> String {
    let Some(start) = fragment.find("<location") else {
        return fragment.to_string();
    };
    let Some(len) = fragment[start..].find('>') else {
        return fragment.to_string();
    };
    let end = start + len + 1;
    let close = if fragment[..end].ends_with("/>") {
        "/>"
    } else {
        ">"
    };
    format!(
        "{}<location href=\"{}\"{close}{}",
        &fragment[..start],
        escape_attr(href),
        &fragment[end..]
    )
}

/// One `<data>` entry of repomd.xml.
#[derive(Debug, Clone)]
pub struct RepomdEntry {
    pub kind: MetadataKind,
    pub location_href: String,
    pub sha256: Sha256,
    pub size: u64,
    pub open_sha256: Option<Sha256>,
    pub open_size: Option<u64>,
    pub timestamp: i64,
}

/// The text of a repomd.xml listing `entries`.
pub fn repomd_xml(revision: &str, entries: &[RepomdEntry]) -> String {
    let mut x = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<repomd xmlns=\"http://linux.duke.edu/metadata/repo\" xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\">\n",
    );
    x.push_str(&format!(
        "  <revision>{}</revision>\n",
        escape_attr(revision)
    ));
    for e in entries {
        x.push_str(&format!(
            "  <data type=\"{}\">\n",
            escape_attr(e.kind.as_str())
        ));
        x.push_str(&format!(
            "    <checksum type=\"sha256\">{}</checksum>\n",
            e.sha256
        ));
        if let Some(o) = &e.open_sha256 {
            x.push_str(&format!(
                "    <open-checksum type=\"sha256\">{o}</open-checksum>\n"
            ));
        }
        x.push_str(&format!(
            "    <location href=\"{}\"/>\n",
            escape_attr(&e.location_href)
        ));
        x.push_str(&format!("    <timestamp>{}</timestamp>\n", e.timestamp));
        x.push_str(&format!("    <size>{}</size>\n", e.size));
        if let Some(s) = e.open_size {
            x.push_str(&format!("    <open-size>{s}</open-size>\n"));
        }
        x.push_str("  </data>\n");
    }
    x.push_str("</repomd>\n");
    x
}

/// Opening lines of the three package documents.
pub fn header(kind: &MetadataKind, packages: usize) -> String {
    match kind {
        MetadataKind::Primary => format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<metadata xmlns=\"http://linux.duke.edu/metadata/common\" xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\" packages=\"{packages}\">\n"),
        MetadataKind::Filelists => format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<filelists xmlns=\"http://linux.duke.edu/metadata/filelists\" packages=\"{packages}\">\n"),
        _ => format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<otherdata xmlns=\"http://linux.duke.edu/metadata/other\" packages=\"{packages}\">\n"),
    }
}

/// Closing line of a package document.
pub fn footer(kind: &MetadataKind) -> &'static str {
    match kind {
        MetadataKind::Primary => "</metadata>\n",
        MetadataKind::Filelists => "</filelists>\n",
        _ => "</otherdata>\n",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relocation_rewrites_only_the_location() {
        let f = "<package type=\"rpm\"><name>a</name><location xml:base=\"http://x/\" href=\"old/a.rpm\"/><format/></package>";
        assert_eq!(
            relocate(f, "Packages/a&b.rpm"),
            "<package type=\"rpm\"><name>a</name><location href=\"Packages/a&amp;b.rpm\"/><format/></package>"
        );
        assert_eq!(relocate("<package/>", "x"), "<package/>");
    }

    #[test]
    fn documents_round_trip_through_the_pool() {
        let dir = tempfile::tempdir().unwrap();
        let pool = Pool::new(dir.path());
        pool.create_dirs().unwrap();
        for c in [OutCompression::Gzip, OutCompression::Zstd] {
            let mut w = DocWriter::new(&pool, MetadataKind::Primary, c).unwrap();
            w.write(&header(&MetadataKind::Primary, 0)).unwrap();
            w.write(footer(&MetadataKind::Primary)).unwrap();
            let (f, placed) = w.finish(&pool, 1700000000).unwrap();
            pool.settle(placed).unwrap();
            pool.verify(&f.blob.rel_path).unwrap();
            let file = std::fs::File::open(pool.absolute(&f.blob.rel_path)).unwrap();
            let (_, mut r) =
                crate::rpm::decompress::open(file, f.blob.size, Default::default()).unwrap();
            let mut text = String::new();
            std::io::Read::read_to_string(&mut r, &mut text).unwrap();
            assert_eq!(
                text,
                format!(
                    "{}{}",
                    header(&MetadataKind::Primary, 0),
                    footer(&MetadataKind::Primary)
                )
            );
            assert_eq!(f.open_size, Some(text.len() as u64));
            assert!(f
                .location_href
                .starts_with(&format!("repodata/{}-primary.xml.", f.blob.sha256)));
        }
        let md = repomd_xml("7", &[]);
        crate::rpm::RepoMd::parse(md.as_bytes()).unwrap_err();
    }
}
