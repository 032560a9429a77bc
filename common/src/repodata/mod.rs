//! Repodata for a version whose package set is not upstream's (an architecture filter, a
//! retention policy, `--allow-partial`): primary, filelists and other written from the stored
//! fragments; updateinfo filtered to advisories that still name a package of the set (under
//! keep-all, accumulated by id across syncs); comps, productid, modules and other types carried
//! over verbatim; sqlite and zchunk variants dropped; a repomd.xml that lists it all.

use std::collections::HashSet;

use crate::catalogue::{Catalogue, FragmentRow, NewMetadata};
use crate::error::{Error, Result};
use crate::pool::{Placed, Pool, StoredBlob};
use crate::rpm::repomd::RepoMdRecord;
use crate::rpm::updateinfo::{self, Advisory, AdvisoryPackage};
pub mod writer;

use crate::rpm::Nevra;
use crate::rpm::{decompress, ChecksumType, MetadataKind, ParseError};
use crate::Sha256;
use writer::{escape_attr, relocate, DocWriter, OutCompression, RepoFile, RepomdEntry};

/// An upstream repodata file that is in the pool.
#[derive(Debug, Clone)]
pub struct UpstreamFile {
    pub record: RepoMdRecord,
    pub blob: StoredBlob,
}

/// What the generated repodata is for.
pub struct Inputs<'a> {
    /// The version's packages: (sha256, location href).
    pub content: &'a [(Sha256, String)],
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
    let upstream_primary = inputs
        .upstream
        .iter()
        .find(|f| f.record.kind == MetadataKind::Primary);
    // Upstream's primary timestamp when there is one, so the same set from the same upstream
    // gives byte-identical repodata (and a sync that changes nothing commits nothing).
    let now = upstream_primary
        .and_then(|f| f.record.timestamp)
        .unwrap_or_else(|| chrono::Utc::now().timestamp());
    let compression = match upstream_primary.map(|f| f.record.location_href.ends_with(".zst")) {
        Some(true) => OutCompression::Zstd,
        _ => OutCompression::Gzip,
    };
    let (mut files, set) =
        write_package_documents(pool, catalogue, inputs.content, compression, now)?;
    let upstream_ui = inputs
        .upstream
        .iter()
        .find(|f| f.record.kind == MetadataKind::Updateinfo);
    let sources: Vec<(String, u64)> = upstream_ui
        .map(|f| (f.blob.rel_path.clone(), f.blob.size))
        .into_iter()
        .chain(inputs.previous_updateinfo.iter().map(|p| (p.clone(), 0)))
        .collect();
    if !sources.is_empty() {
        files.push(write_updateinfo(pool, &sources, &set, compression, now)?);
    }

    let (carried_entries, carried) = carried_over(inputs.upstream, now);
    let entries: Vec<RepomdEntry> = files
        .iter()
        .map(|(f, _)| RepomdEntry {
            kind: f.kind.clone(),
            location_href: f.location_href.clone(),
            sha256: f.blob.sha256.clone(),
            size: f.blob.size,
            open_sha256: f.open_sha256.clone(),
            open_size: f.open_size,
            timestamp: f.timestamp,
        })
        .chain(carried_entries)
        .collect();
    let revision = inputs
        .revision
        .map(str::to_string)
        .unwrap_or_else(|| now.to_string());
    let repomd = writer::repomd_xml(&revision, &entries);
    let repomd_placed = pool.put_reader(repomd.as_bytes(), "repomd.xml")?;
    let repomd_blob = repomd_placed.blob.clone();
    let (files, mut placed): (Vec<RepoFile>, Vec<_>) =
        files.into_iter().map(|(f, p)| (f, (p, None))).unzip();
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
    out.extend(carried);
    Ok(out)
}

/// A file written here, in the pool but not yet recorded.
type Written = (RepoFile, Placed);

/// primary, filelists and other for the version's packages, from their stored fragments in
/// one pass, and the set of NEVRAs they describe (for the advisories).
fn write_package_documents(
    pool: &Pool,
    catalogue: &Catalogue,
    content: &[(Sha256, String)],
    compression: OutCompression,
    now: i64,
) -> Result<(Vec<Written>, HashSet<Nevra>)> {
    let n = content.len();
    let mut docs = Vec::new();
    for kind in PACKAGE_DOCUMENTS {
        let mut w = DocWriter::new(pool, kind.clone(), compression)?;
        w.write(&writer::header(&kind, n))?;
        docs.push(w);
    }
    let mut set: HashSet<Nevra> = HashSet::with_capacity(n);
    catalogue.for_each_fragment(content, |row: FragmentRow| {
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
    for (kind, mut w) in PACKAGE_DOCUMENTS.iter().zip(docs) {
        w.write(writer::footer(kind))?;
        files.push(w.finish(pool, now)?);
    }
    Ok((files, set))
}

/// The advisories of `sources` (pool path and size of upstream's updateinfo and, under
/// keep-all, the latest version's) that still name a package of `set`, each once.
fn write_updateinfo(
    pool: &Pool,
    sources: &[(String, u64)],
    set: &HashSet<Nevra>,
    compression: OutCompression,
    now: i64,
) -> Result<Written> {
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
    for (rel, size) in sources {
        let path = pool.absolute(rel);
        let file = std::fs::File::open(&path).map_err(|e| Error::io("cannot open", &path, e))?;
        let size = if *size == 0 {
            file.metadata().map(|m| m.len()).unwrap_or(1)
        } else {
            *size
        };
        let (_, reader) = decompress::open(file, size, Default::default())
            .map_err(|e| ParseError::from(e).into_error(rel, &path))?;
        updateinfo::parse(reader, |a| keep(a, &mut w)).map_err(|e| e.into_error(rel, &path))?;
    }
    w.write(updateinfo::FOOTER)?;
    w.finish(pool, now)
}

/// Upstream's files of the types chantal neither writes nor drops (comps, modules...): their
/// repomd.xml entries and their rows, as upstream has them.
fn carried_over(upstream: &[UpstreamFile], now: i64) -> (Vec<RepomdEntry>, Vec<NewMetadata>) {
    upstream
        .iter()
        .filter(|f| !is_generated(&f.record.kind) && !is_dropped(&f.record.kind))
        .map(|f| {
            let entry = RepomdEntry {
                kind: f.record.kind.clone(),
                location_href: f.record.location_href.clone(),
                sha256: f.blob.sha256.clone(),
                size: f.blob.size,
                open_sha256: f
                    .record
                    .open_checksum
                    .as_ref()
                    .filter(|c| c.kind == ChecksumType::Sha256)
                    .and_then(|c| Sha256::parse(&c.value).ok()),
                open_size: f.record.open_size,
                timestamp: f.record.timestamp.unwrap_or(now),
            };
            let row = NewMetadata {
                kind: f.record.kind.clone(),
                blob_sha256: f.blob.sha256.clone(),
                location_href: f.record.location_href.clone(),
            };
            (entry, row)
        })
        .unzip()
}
