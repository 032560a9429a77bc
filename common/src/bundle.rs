//! The air-gap bundle's portable form (docs/BUNDLES.md): what `chantal bundle create` writes
//! and `chantal bundle import` reads. A bundle is a directory:
//!
//! ```text
//! bundle.json            what it carries, and the sha256 of every file below but the blobs
//! bundle.json.asc        its signature, with publish.sign
//! rows/<repo>.json       each repository version's catalogue rows
//! packages.jsonl         the package rows (with their metadata fragments) those need, one
//!                        `NewPackage` row of the catalogue a line
//! blobs/sha256/ab/<hex>  the pool files, named by their sha256
//! ```
//!
//! `bundle.json` is written last: a directory without it is a bundle whose creation did not
//! finish. Its signature covers everything: the other files by their listed sha256, the blobs
//! by their names (checked while they are copied), the trees by their manifests' tree ids.

use serde::{Deserialize, Serialize};

use crate::Sha256;

/// The `format` this chantal writes and reads.
pub const FORMAT: &str = "chantal-bundle/1";
/// The index, at the bundle's root.
pub const INDEX: &str = "bundle.json";
/// The index's signature.
pub const INDEX_ASC: &str = "bundle.json.asc";
/// The package rows.
pub const PACKAGES: &str = "packages.jsonl";

/// `bundle.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Index {
    pub format: String,
    /// When it was made, RFC 3339 UTC.
    pub created: String,
    /// What was asked: `snapshot NAME` or `environment ENV`.
    pub selection: String,
    /// The snapshot set the bundle builds on (`--since`): the importing side must have it.
    pub since: Option<String>,
    pub repositories: Vec<RepoEntry>,
    /// Every file of the bundle but the blobs and the index itself.
    pub files: Vec<FileEntry>,
    /// How many blobs, and their bytes.
    pub blobs: u64,
    pub blob_bytes: u64,
}

/// One repository's version in the bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoEntry {
    pub name: String,
    pub version: i64,
    pub tree_id: Sha256,
    pub snapshot: SnapshotEntry,
    /// The environment that points at the snapshot (`--env`).
    pub environment: Option<String>,
    /// The base's snapshot of this repository (`--since`).
    pub base: Option<BaseEntry>,
    /// Its rows, relative to the bundle.
    pub rows: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotEntry {
    pub name: String,
    pub description: Option<String>,
    /// Seconds since the epoch.
    pub created: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaseEntry {
    pub snapshot: String,
    pub version: i64,
    pub tree_id: Sha256,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub path: String,
    pub sha256: Sha256,
    pub size: u64,
}

/// A repository version's catalogue rows (`rows/<repo>.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionRows {
    pub repository: String,
    pub version: i64,
    /// The version's creation, seconds since the epoch (its manifest says the same).
    pub created: i64,
    pub repomd_revision: Option<String>,
    /// (package sha256, location href).
    pub content: Vec<(Sha256, String)>,
    /// (type, blob sha256, location href): repodata, keys, installer tree, manifest.
    pub metadata: Vec<(String, Sha256, String)>,
    /// Every blob the version's tree uses.
    pub blobs: Vec<BlobEntry>,
}

/// A blob of a version: (sha256, size, the file name its pool path ends with).
pub type BlobEntry = (Sha256, u64, String);

/// Where a blob lies in a bundle.
pub fn blob_path(sha256: &Sha256) -> String {
    let hex = sha256.as_str();
    format!("blobs/sha256/{}/{hex}", &hex[..2])
}

/// Where a repository's rows lie in a bundle.
pub fn rows_path(repository: &str) -> String {
    format!("rows/{repository}.json")
}

impl Index {
    /// Reads an index that came from anywhere: its format must be this one, and every path it
    /// names a plain relative path inside the bundle.
    pub fn parse(bytes: &[u8]) -> Result<Index, String> {
        let index: Index = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if index.format != FORMAT {
            return Err(format!(
                "format {:?} is not {FORMAT:?}: a newer chantal made it",
                index.format
            ));
        }
        for path in index
            .files
            .iter()
            .map(|f| f.path.as_str())
            .chain(index.repositories.iter().map(|r| r.rows.as_str()))
        {
            crate::rpm::href::check(path)?;
            if crate::rpm::href::normalize(path) != path {
                return Err(format!("path {path:?} is not in canonical form"));
            }
        }
        for r in &index.repositories {
            crate::names::check_repo_name(&r.name)?;
            if !index.files.iter().any(|f| f.path == r.rows) {
                return Err(format!("{}: its rows {} are not listed", r.name, r.rows));
            }
        }
        Ok(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> Index {
        Index {
            format: FORMAT.into(),
            created: "2026-01-01T00:00:00Z".into(),
            selection: "snapshot jan".into(),
            since: None,
            repositories: vec![RepoEntry {
                name: "r".into(),
                version: 1,
                tree_id: Sha256::digest(b"t"),
                snapshot: SnapshotEntry {
                    name: "jan".into(),
                    description: None,
                    created: 0,
                },
                environment: None,
                base: None,
                rows: rows_path("r"),
            }],
            files: vec![FileEntry {
                path: rows_path("r"),
                sha256: Sha256::digest(b"rows"),
                size: 4,
            }],
            blobs: 0,
            blob_bytes: 0,
        }
    }

    #[test]
    fn hostile_indexes_are_refused() {
        let ok = serde_json::to_vec(&index()).unwrap();
        assert_eq!(Index::parse(&ok).unwrap(), index());
        let with = |f: &dyn Fn(&mut Index)| {
            let mut i = index();
            f(&mut i);
            Index::parse(&serde_json::to_vec(&i).unwrap()).unwrap_err()
        };
        assert!(with(&|i| i.files[0].path = "../../etc/shadow".into()).contains(".."));
        assert!(with(&|i| i.repositories[0].rows = "/etc/shadow".into()).contains("absolute"));
        assert!(with(&|i| i.repositories[0].name = "../x".into()).contains("x"));
        assert!(with(&|i| i.files.clear()).contains("not listed"));
        assert!(with(&|i| i.format = "chantal-bundle/9".into()).contains("newer chantal"));
    }

    #[test]
    fn blobs_are_named_by_their_hash() {
        let sha = Sha256::digest(b"x");
        assert_eq!(
            blob_path(&sha),
            format!("blobs/sha256/{}/{sha}", &sha.as_str()[..2])
        );
    }
}
