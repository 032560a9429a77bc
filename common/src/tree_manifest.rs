//! A version's signed statement of its tree: every file chantal-fs and the exporter serve for
//! it, with its size and sha256, in one canonical JSON document whose sha256 is the version's
//! *tree id*. Served at `.chantal/manifest.json` (and its signature, with `publish.sign`, at
//! `.chantal/manifest.json.asc`) in every tree; neither is listed in the manifest.
//!
//! The encoding is fixed so that one version has exactly one manifest, on any host and
//! backend (docs/MANIFEST.md): JSON without insignificant whitespace, object keys in byte
//! order, strings escaped as RFC 8785 (JCS) does, integers in decimal, files sorted by path in
//! byte order, UTF-8. Only strings, integers, null, arrays and objects occur, so it is
//! exactly RFC 8785's form.

use serde::{Deserialize, Serialize};

use crate::rpm::href;
use crate::Sha256;

/// Where the manifest is served in a tree.
pub const MANIFEST_PATH: &str = ".chantal/manifest.json";
/// Where its detached signature is served.
pub const MANIFEST_ASC_PATH: &str = ".chantal/manifest.json.asc";
/// The directory that holds them; nothing else may live there.
pub const DIR: &str = ".chantal";
/// The `format` this chantal writes and reads.
pub const FORMAT: &str = "chantal-manifest/1";

/// The manifest. Fields are declared in byte order: serde writes them in declaration order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreeManifest {
    /// The version's creation time, RFC 3339 in UTC to the second (`2026-01-31T02:00:00Z`).
    pub created: String,
    pub files: Vec<ManifestFile>,
    pub format: String,
    pub repository: String,
    /// The sha256 of the upstream repomd.xml the version was made from, when one was.
    pub upstream_repomd_sha256: Option<Sha256>,
    pub version: i64,
}

/// One file of the tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestFile {
    /// Relative to the tree's root, normalised (no `.`, no empty segments).
    pub path: String,
    pub sha256: Sha256,
    pub size: u64,
}

/// Whether a tree path is one of the manifest's own files.
pub fn is_own(path: &str) -> bool {
    path == MANIFEST_PATH || path == MANIFEST_ASC_PATH
}

impl TreeManifest {
    /// The manifest of a version whose files are `files` (any order; paths are normalised).
    pub fn new(
        repository: &str,
        version: i64,
        created_epoch: i64,
        upstream_repomd_sha256: Option<Sha256>,
        files: impl IntoIterator<Item = ManifestFile>,
    ) -> TreeManifest {
        let mut files: Vec<ManifestFile> = files
            .into_iter()
            .map(|mut f| {
                if let std::borrow::Cow::Owned(p) = href::normalize(&f.path) {
                    f.path = p;
                }
                f
            })
            .filter(|f| !is_own(&f.path))
            .collect();
        files.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
        TreeManifest {
            created: rfc3339(created_epoch),
            files,
            format: FORMAT.to_string(),
            repository: repository.to_string(),
            upstream_repomd_sha256,
            version,
        }
    }

    /// The canonical bytes (see the module documentation).
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serializing plain structs of strings and integers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a manifest that came from anywhere (a mirror, a bundle): its format must be this
    /// one and every path a safe relative path, listed once. The message says what is wrong.
    pub fn parse(bytes: &[u8]) -> Result<TreeManifest, String> {
        let m: TreeManifest = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if m.format != FORMAT {
            return Err(format!(
                "format {:?} is not {FORMAT:?}: a newer chantal wrote it",
                m.format
            ));
        }
        let mut previous: Option<&str> = None;
        for f in &m.files {
            href::check(&f.path)?;
            if href::normalize(&f.path) != f.path.as_str() || is_own(&f.path) {
                return Err(format!("path {:?} is not in canonical form", f.path));
            }
            if previous.is_some_and(|p| p.as_bytes() >= f.path.as_bytes()) {
                return Err(format!("path {:?} is out of order or listed twice", f.path));
            }
            previous = Some(&f.path);
        }
        Ok(m)
    }

    /// Total bytes of the listed files.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// Seconds since the epoch as RFC 3339 UTC (`Z`), to the second.
pub fn rfc3339(epoch: i64) -> String {
    chrono::DateTime::from_timestamp(epoch, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn file(path: &str, size: u64) -> ManifestFile {
        ManifestFile {
            path: path.into(),
            sha256: Sha256::digest(path.as_bytes()),
            size,
        }
    }

    #[test]
    fn encoding_is_canonical_and_documented() {
        let m = TreeManifest::new(
            "epel",
            3,
            1_767_225_600,
            None,
            [
                file("./b.rpm", 2),
                file("a\"é.rpm", 1),
                file(MANIFEST_PATH, 9),
            ],
        );
        let text = String::from_utf8(m.to_bytes()).unwrap();
        assert_eq!(
            text,
            format!(
                "{{\"created\":\"2026-01-01T00:00:00Z\",\"files\":[{{\"path\":\"a\\\"é.rpm\",\"sha256\":\"{}\",\"size\":1}},{{\"path\":\"b.rpm\",\"sha256\":\"{}\",\"size\":2}}],\"format\":\"chantal-manifest/1\",\"repository\":\"epel\",\"upstream_repomd_sha256\":null,\"version\":3}}",
                Sha256::digest("a\"é.rpm".as_bytes()),
                Sha256::digest(b"./b.rpm"),
            )
        );
        assert_eq!(TreeManifest::parse(text.as_bytes()).unwrap(), m);
    }

    #[test]
    fn hostile_manifests_are_refused() {
        let base = TreeManifest::new("r", 1, 0, None, [file("a.rpm", 1)]);
        let with = |f: &dyn Fn(&mut TreeManifest)| {
            let mut m = base.clone();
            f(&mut m);
            TreeManifest::parse(&serde_json::to_vec(&m).unwrap())
        };
        assert!(with(&|_| {}).is_ok());
        for (bad, expected) in [
            ("../../etc/shadow", "'..'"),
            ("/etc/shadow", "absolute"),
            ("a//b", "canonical"),
            (MANIFEST_PATH, "canonical"),
        ] {
            let err = with(&|m| m.files[0].path = bad.into()).unwrap_err();
            assert!(err.contains(expected), "{bad}: {err}");
        }
        let err = with(&|m| m.files.push(file("a.rpm", 1))).unwrap_err();
        assert!(err.contains("listed twice"), "{err}");
        let err = with(&|m| m.format = "chantal-manifest/2".into()).unwrap_err();
        assert!(err.contains("newer chantal"), "{err}");
        assert!(TreeManifest::parse(b"{\"created\":1}").is_err());
        let mut v: serde_json::Value = serde_json::to_value(&base).unwrap();
        v["extra"] = 1.into();
        assert!(TreeManifest::parse(&serde_json::to_vec(&v).unwrap()).is_err());
    }

    proptest! {
        /// The bytes are RFC 8785's: a generic JSON value (whose maps are sorted) written back
        /// compactly gives the same bytes, whatever the paths hold; and they read back as the
        /// same manifest. Any input order gives one manifest.
        #[test]
        fn bytes_are_jcs_and_order_free(
            paths in proptest::collection::btree_set("[a-zA-Z0-9 \"\\\\é\u{1}\t._/-]{1,12}", 0..8),
            version in 1i64..1_000_000,
            epoch in 0i64..4_000_000_000,
        ) {
            let files: Vec<ManifestFile> = paths
                .iter()
                .filter(|p| href::check(p).is_ok())
                .enumerate()
                .map(|(n, p)| file(p, n as u64))
                .collect();
            let m = TreeManifest::new("r", version, epoch, Some(Sha256::digest(b"x")), files.clone());
            let bytes = m.to_bytes();
            let generic: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            prop_assert_eq!(serde_json::to_vec(&generic).unwrap(), bytes.clone());
            let reversed = TreeManifest::new("r", version, epoch, Some(Sha256::digest(b"x")), files.into_iter().rev());
            prop_assert_eq!(reversed.to_bytes(), bytes);
        }
    }
}
