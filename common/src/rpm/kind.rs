//! What each metadata file of a version is: the types upstream's repomd.xml lists (an open set:
//! [`MetadataKind::Other`]) and the files chantal adds beside them. One spelling for each, as
//! repomd.xml's `<data type=…>` and the catalogue's `repository_metadata.type` write it.

use std::fmt;

/// A metadata file's kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MetadataKind {
    /// `repodata/repomd.xml`.
    Repomd,
    /// `repodata/repomd.xml.asc`: upstream's signature, or the mirror's (`publish.sign`).
    RepomdAsc,
    /// `repodata/repomd.xml.key`: the mirror's public key.
    RepomdKey,
    /// `RPM-GPG-KEY-<repo>`: the keys the repository trusts.
    GpgKey,
    Primary,
    Filelists,
    /// `other.xml` (repomd.xml calls it `other`).
    OtherData,
    Updateinfo,
    /// The served `.treeinfo` (also at `treeinfo`).
    TreeInfo,
    /// `extra_files.json` as upstream wrote it.
    ExtraFiles,
    /// A file an installer tree names (images, EULA...).
    TreeFile,
    /// `.chantal/manifest.json`: the version's tree manifest (its sha256 is the tree id).
    TreeManifest,
    /// `.chantal/manifest.json.asc`: the manifest's signature (`publish.sign`).
    TreeManifestAsc,
    /// Any other type upstream lists (`group`, `modules`, `productid`...), carried as it is.
    Other(String),
}

/// The names chantal gives the files it adds itself: an upstream repomd.xml may not list them.
const CHANTAL_OWN: [MetadataKind; 9] = [
    MetadataKind::Repomd,
    MetadataKind::RepomdAsc,
    MetadataKind::RepomdKey,
    MetadataKind::GpgKey,
    MetadataKind::TreeInfo,
    MetadataKind::ExtraFiles,
    MetadataKind::TreeFile,
    MetadataKind::TreeManifest,
    MetadataKind::TreeManifestAsc,
];

impl MetadataKind {
    /// The spelling in repomd.xml and in the catalogue.
    pub fn as_str(&self) -> &str {
        match self {
            MetadataKind::Repomd => "repomd",
            MetadataKind::RepomdAsc => "repomd_asc",
            MetadataKind::RepomdKey => "repomd_key",
            MetadataKind::GpgKey => "gpgkey",
            MetadataKind::Primary => "primary",
            MetadataKind::Filelists => "filelists",
            MetadataKind::OtherData => "other",
            MetadataKind::Updateinfo => "updateinfo",
            MetadataKind::TreeInfo => "treeinfo",
            MetadataKind::ExtraFiles => "extra_files",
            MetadataKind::TreeFile => "tree",
            MetadataKind::TreeManifest => "tree_manifest",
            MetadataKind::TreeManifestAsc => "tree_manifest_asc",
            MetadataKind::Other(s) => s,
        }
    }

    /// The kind a stored spelling names.
    pub fn parse(s: &str) -> MetadataKind {
        match s {
            "repomd" => MetadataKind::Repomd,
            "repomd_asc" => MetadataKind::RepomdAsc,
            "repomd_key" => MetadataKind::RepomdKey,
            "gpgkey" => MetadataKind::GpgKey,
            "primary" => MetadataKind::Primary,
            "filelists" => MetadataKind::Filelists,
            "other" => MetadataKind::OtherData,
            "updateinfo" => MetadataKind::Updateinfo,
            "treeinfo" => MetadataKind::TreeInfo,
            "extra_files" => MetadataKind::ExtraFiles,
            "tree" => MetadataKind::TreeFile,
            "tree_manifest" => MetadataKind::TreeManifest,
            "tree_manifest_asc" => MetadataKind::TreeManifestAsc,
            other => MetadataKind::Other(other.to_string()),
        }
    }

    /// The kind of a `<data type=…>` in upstream's repomd.xml: refused when it is one of the
    /// names chantal gives its own files (a repomd.xml listing `repomd_asc` or `gpgkey` would
    /// otherwise pass for a signed or key-carrying version).
    pub fn upstream(s: &str) -> Result<MetadataKind, String> {
        let kind = MetadataKind::parse(s);
        if CHANTAL_OWN.contains(&kind) {
            return Err(format!(
                "type {s:?} is a name chantal gives its own files, not a repodata type: refusing it"
            ));
        }
        Ok(kind)
    }

    /// A file of the installer tree (`.treeinfo`, `extra_files.json`, or a file they name).
    pub fn is_installer_tree(&self) -> bool {
        matches!(
            self,
            MetadataKind::TreeInfo | MetadataKind::ExtraFiles | MetadataKind::TreeFile
        )
    }

    /// `'a', 'b'`: the spellings of `kinds` for an SQL `IN (...)` (none needs escaping).
    pub fn sql_list(kinds: &[MetadataKind]) -> String {
        kinds
            .iter()
            .map(|k| format!("'{}'", k.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl serde::Serialize for MetadataKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl fmt::Display for MetadataKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_reads_back_as_its_kind() {
        for k in CHANTAL_OWN.iter().cloned().chain([
            MetadataKind::Primary,
            MetadataKind::Filelists,
            MetadataKind::OtherData,
            MetadataKind::Updateinfo,
            MetadataKind::Other("modules".into()),
        ]) {
            assert_eq!(MetadataKind::parse(k.as_str()), k);
        }
        assert_eq!(MetadataKind::OtherData.as_str(), "other");
    }

    #[test]
    fn upstream_may_not_use_chantals_own_names() {
        assert_eq!(
            MetadataKind::upstream("group"),
            Ok(MetadataKind::Other("group".into()))
        );
        assert_eq!(MetadataKind::upstream("other"), Ok(MetadataKind::OtherData));
        for own in [
            "repomd",
            "repomd_asc",
            "repomd_key",
            "gpgkey",
            "treeinfo",
            "extra_files",
            "tree",
            "tree_manifest",
            "tree_manifest_asc",
        ] {
            let err = MetadataKind::upstream(own).unwrap_err();
            assert!(err.contains("a name chantal gives its own files"), "{err}");
        }
        assert_eq!(
            MetadataKind::sql_list(&[MetadataKind::TreeInfo, MetadataKind::TreeFile]),
            "'treeinfo', 'tree'"
        );
    }
}
