//! Repodata for a version whose package set is not upstream's (an architecture filter, a
//! retention policy, `--allow-partial`): primary, filelists and other written from the stored
//! fragments; updateinfo filtered to advisories that still name a package of the set (under
//! keep-all, accumulated by id across syncs); comps, productid, modules and other types carried
//! over verbatim; sqlite and zchunk variants dropped; a repomd.xml that lists it all.

use std::collections::HashSet;

use crate::catalogue::{Catalogue, FragmentRow, NewMetadata};
use crate::error::{Error, Result};
use crate::pool::{Pool, StoredBlob};
use crate::rpm::repomd::RepoMdRecord;
use crate::rpm::updateinfo::{self, Advisory, AdvisoryPackage};
pub mod writer;

use crate::rpm::Nevra;
use crate::rpm::{decompress, ChecksumType, MetadataKind, ParseError};
use writer::{escape_attr, relocate, DocWriter, OutCompression, RepomdEntry};

/// An upstream repodata file that is in the pool.
#[derive(Debug, Clone)]
pub struct UpstreamFile {
    pub record: RepoMdRecord,
    pub blob: StoredBlob,
}

/// What the generated repodata is for.
pub struct Inputs<'a> {
    /// The version's packages: (sha256, location href).
    pub content: &'a [(String, String)],
    /// Upstream's repodata files of this sync.
    pub upstream: &'a [UpstreamFile],
    /// The latest version's updateinfo (pool path), to accumulate advisories under keep-all.
    pub previous_updateinfo: Option<String>,
    pub revision: Option<&'a str>,
}

/// The documents written here from the version's packages.
pub const PACKAGE_DOCUMENTS: [MetadataKind; 3] = [
    MetadataKind::Primary,
    MetadataKind::Filelists,
    MetadataKind::OtherData,
];

/// Whether chantal writes files of this type for a package set (instead of carrying
/// upstream's).
pub fn is_generated(kind: &MetadataKind) -> bool {
    PACKAGE_DOCUMENTS.contains(kind) || *kind == MetadataKind::Updateinfo
}

/// The sqlite and zchunk variants (`primary_db`, `filelists_zck`...): not written, so dropped.
pub fn is_dropped(kind: &MetadataKind) -> bool {
    let s = kind.as_str();
    s.ends_with("_db") || s.ends_with("_zck")
}

/// Writes the repodata and returns its files (repomd.xml first), recorded as blobs.
pub fn generate(
    pool: &Pool,
    catalogue: &Catalogue,
    inputs: &Inputs<'_>,
) -> Result<Vec<NewMetadata>> {
    // Upstream's primary timestamp when there is one, so the same set from the same upstream
    // gives byte-identical repodata (and a sync that changes nothing commits nothing).
    let now = inputs
        .upstream
        .iter()
        .find(|f| f.record.kind == MetadataKind::Primary)
        .and_then(|f| f.record.timestamp)
        .unwrap_or_else(|| chrono::Utc::now().timestamp());
    let compression = match inputs
        .upstream
        .iter()
        .find(|f| f.record.kind == MetadataKind::Primary)
        .map(|f| f.record.location_href.ends_with(".zst"))
    {
        Some(true) => OutCompression::Zstd,
        _ => OutCompression::Gzip,
    };
    let n = inputs.content.len();
    let mut docs = Vec::new();
    for kind in PACKAGE_DOCUMENTS {
        let mut w = DocWriter::new(pool, kind.clone(), compression)?;
        w.write(&writer::header(&kind, n))?;
        docs.push(w);
    }
    let mut set: HashSet<Nevra> = HashSet::with_capacity(n);
    catalogue.for_each_fragment(inputs.content, |row: FragmentRow| {
        docs[0].write(&relocate(&row.primary_xml, &row.location_href))?;
        docs[0].write("\n")?;
        let minimal = || {
            format!(
                "<package pkgid=\"{}\" name=\"{}\" arch=\"{}\">\n  <version epoch=\"{}\" ver=\"{}\" rel=\"{}\"/>\n</package>",
                escape_attr(&row.pkgid),
                escape_attr(&row.nevra.name),
                escape_attr(&row.nevra.arch),
                row.nevra.epoch,
                escape_attr(&row.nevra.version),
                escape_attr(&row.nevra.release)
            )
        };
        docs[1].write(&row.filelists_xml.clone().unwrap_or_else(minimal))?;
        docs[1].write("\n")?;
        docs[2].write(&row.other_xml.clone().unwrap_or_else(minimal))?;
        docs[2].write("\n")?;
        set.insert(row.nevra);
        Ok(())
    })?;
    let mut files = Vec::new();
    let mut placed = Vec::new();
    for (kind, mut w) in PACKAGE_DOCUMENTS.iter().zip(docs) {
        w.write(writer::footer(kind))?;
        let (file, p) = w.finish(pool, now)?;
        files.push(file);
        placed.push((p, None));
    }

    // Advisories that still name a package of the set.
    let upstream_ui = inputs
        .upstream
        .iter()
        .find(|f| f.record.kind == MetadataKind::Updateinfo);
    if upstream_ui.is_some() || inputs.previous_updateinfo.is_some() {
        let mut w = DocWriter::new(pool, MetadataKind::Updateinfo, compression)?;
        w.write(updateinfo::HEADER)?;
        let mut seen: HashSet<String> = HashSet::new();
        let mut keep = |a: Advisory, w: &mut DocWriter| -> std::result::Result<(), ParseError> {
            let relevant = a.packages.iter().any(|p: &AdvisoryPackage| set.contains(p));
            if relevant && seen.insert(a.id.clone()) {
                w.write("  ")?;
                w.write(&a.fragment)?;
                w.write("\n")?;
            }
            Ok(())
        };
        let sources: Vec<(String, u64)> = upstream_ui
            .map(|f| (f.blob.rel_path.clone(), f.blob.size))
            .into_iter()
            .chain(inputs.previous_updateinfo.iter().map(|p| (p.clone(), 0)))
            .collect();
        for (rel, size) in sources {
            let path = pool.absolute(&rel);
            let file =
                std::fs::File::open(&path).map_err(|e| Error::io("cannot open", &path, e))?;
            let size = if size == 0 {
                file.metadata().map(|m| m.len()).unwrap_or(1)
            } else {
                size
            };
            let (_, reader) = decompress::open(file, size, Default::default())
                .map_err(|e| ParseError::from(e).into_error(&rel, &path))?;
            updateinfo::parse(reader, |a| keep(a, &mut w))
                .map_err(|e| e.into_error(&rel, &path))?;
        }
        w.write(updateinfo::FOOTER)?;
        let (file, p) = w.finish(pool, now)?;
        files.push(file);
        placed.push((p, None));
    }

    let mut entries: Vec<RepomdEntry> = files
        .iter()
        .map(|f| RepomdEntry {
            kind: f.kind.clone(),
            location_href: f.location_href.clone(),
            sha256: f.blob.sha256.clone(),
            size: f.blob.size,
            open_sha256: f.open_sha256.clone(),
            open_size: f.open_size,
            timestamp: f.timestamp,
        })
        .collect();
    let mut carried: Vec<(MetadataKind, StoredBlob, String)> = Vec::new();
    for f in inputs.upstream {
        let kind = &f.record.kind;
        if is_generated(kind) || is_dropped(kind) {
            continue;
        }
        entries.push(RepomdEntry {
            kind: kind.clone(),
            location_href: f.record.location_href.clone(),
            sha256: f.blob.sha256.clone(),
            size: f.blob.size,
            open_sha256: f
                .record
                .open_checksum
                .as_ref()
                .filter(|c| c.kind == ChecksumType::Sha256)
                .map(|c| c.value.clone()),
            open_size: f.record.open_size,
            timestamp: f.record.timestamp.unwrap_or(now),
        });
        carried.push((kind.clone(), f.blob.clone(), f.record.location_href.clone()));
    }
    let revision = inputs
        .revision
        .map(str::to_string)
        .unwrap_or_else(|| now.to_string());
    let repomd = writer::repomd_xml(&revision, &entries);
    let repomd_placed = pool.put_reader(repomd.as_bytes(), "repomd.xml")?;
    let repomd_blob = repomd_placed.blob.clone();
    placed.push((repomd_placed, None));
    pool.record(catalogue, placed)?;

    let mut out = vec![NewMetadata {
        kind: MetadataKind::Repomd,
        blob_sha256: repomd_blob.sha256,
        location_href: "repodata/repomd.xml".into(),
    }];
    out.extend(files.into_iter().map(|f| NewMetadata {
        kind: f.kind,
        blob_sha256: f.blob.sha256,
        location_href: f.location_href,
    }));
    out.extend(carried.into_iter().map(|(kind, blob, href)| NewMetadata {
        kind,
        blob_sha256: blob.sha256,
        location_href: href,
    }));
    Ok(out)
}
