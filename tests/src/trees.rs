//! Reading a published tree (a chantal-fs mount, an export) the way a client does.

use std::path::{Path, PathBuf};

/// Every file below `root` with the sha256 of its bytes, by relative path.
pub fn files(root: &Path) -> Vec<(String, String)> {
    use sha2::Digest;
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p: PathBuf = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                let bytes = std::fs::read(&p).unwrap();
                out.push((rel, hex::encode(sha2::Sha256::digest(&bytes))));
            }
        }
    }
    out.sort();
    out
}

/// Reads repomd.xml under `latest` and then every file it names, checking sizes and
/// checksums; returns the number of packages checked.
pub fn read_consistent_snapshot_of_latest(latest: &Path) -> Result<usize, String> {
    use chantal_common::rpm::{decompress, primary, RepoMd};
    use sha2::Digest;
    let repomd =
        std::fs::read(latest.join("repodata/repomd.xml")).map_err(|e| format!("repomd: {e}"))?;
    let md = RepoMd::parse(&repomd).map_err(|e| format!("repomd: {e}"))?;
    let mut primary_bytes = None;
    for r in &md.records {
        let data = std::fs::read(latest.join(&r.location_href))
            .map_err(|e| format!("{}: {e}", r.location_href))?;
        let sum = hex::encode(sha2::Sha256::digest(&data));
        if sum != r.checksum.value {
            return Err(format!("{}: checksum mismatch", r.location_href));
        }
        if r.kind == chantal_common::rpm::MetadataKind::Primary {
            primary_bytes = Some(data);
        }
    }
    let data = primary_bytes.ok_or("no primary")?;
    let size = data.len() as u64;
    let (_, reader) = decompress::open(std::io::Cursor::new(data), size, Default::default())
        .map_err(|e| e.to_string())?;
    let mut packages = Vec::new();
    primary::parse(reader, |p, _| {
        packages.push((p.location_href, p.checksum.value));
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    for (href, sum) in &packages {
        let bytes = std::fs::read(latest.join(href)).map_err(|e| format!("{href}: {e}"))?;
        if hex::encode(sha2::Sha256::digest(&bytes)) != *sum {
            return Err(format!("{href}: checksum mismatch"));
        }
    }
    Ok(packages.len())
}
