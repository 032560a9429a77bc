//! The settings that shape a version from upstream, as one value: recorded with each sync, so a
//! change makes the next sync recompute the version even when upstream did not change. The
//! trusted keys count among them (new keys, or checks turned on, are checked against every
//! package and served with the version), and so does the installer tree (a changed image with
//! an unchanged repomd.xml is a new version).
//!
//! The encoding is `key=value` pairs joined by `;`, in a fixed order, a pair only where its
//! setting is present: catalogues written by earlier chantal hold exactly this text, so an
//! upgrade causes no resync (the tests pin it).

use chantal_common::config::RepoConfig;
use chantal_common::Sha256;

use super::signatures::Trust;

/// What decides a version besides upstream's repomd.xml.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncSettings {
    /// `rpm.architectures`, joined by commas; `*` for all.
    architectures: String,
    policy: String,
    deleted_packages: String,
    keep_last: Option<u32>,
    /// The content filters as written, when any is set.
    filters: Option<String>,
    /// gpgcheck, repo_gpgcheck and the trusted keys' sha256, when the repository checks
    /// signatures.
    trust: Option<(bool, bool, Sha256)>,
    /// The sha256 of the mirror's signing key (`publish.sign`).
    sign: Option<Sha256>,
    /// The installer tree's fingerprint (its `.treeinfo` and `extra_files.json`).
    tree: Option<String>,
}

impl SyncSettings {
    pub fn new(
        repo: &RepoConfig,
        trust: Option<&Trust>,
        signer: Option<&crate::trust::RepoSigner>,
    ) -> SyncSettings {
        SyncSettings {
            architectures: repo
                .rpm
                .architectures
                .as_ref()
                .map_or_else(|| "*".to_string(), |a| a.join(",")),
            policy: repo.retention.policy.to_string(),
            deleted_packages: repo.retention.deleted_packages.to_string(),
            keep_last: repo.retention.keep_last,
            filters: repo.filters.is_active().then(|| repo.filters.describe()),
            trust: trust.map(|t| (repo.rpm.gpgcheck, repo.rpm.repo_gpgcheck, t.sha256.clone())),
            sign: signer.map(|s| Sha256::digest(s.public_key.as_bytes())),
            tree: None,
        }
    }

    /// With the upstream's installer tree.
    pub fn with_tree(self, fingerprint: &str) -> SyncSettings {
        SyncSettings {
            tree: Some(fingerprint.to_string()),
            ..self
        }
    }

    /// The canonical text recorded in `sync_history.settings`.
    pub fn encode(&self) -> String {
        let mut pairs: Vec<(&str, String)> = vec![
            ("arch", self.architectures.clone()),
            ("policy", self.policy.clone()),
            ("deleted", self.deleted_packages.clone()),
        ];
        if let Some(n) = self.keep_last {
            pairs.push(("keep_last", n.to_string()));
        }
        if let Some(f) = &self.filters {
            pairs.push(("filters", f.clone()));
        }
        if let Some((gpgcheck, repo_gpgcheck, keys)) = &self.trust {
            pairs.push(("gpgcheck", u8::from(*gpgcheck).to_string()));
            pairs.push(("repo_gpgcheck", u8::from(*repo_gpgcheck).to_string()));
            pairs.push(("keys", keys.to_string()));
        }
        if let Some(s) = &self.sign {
            pairs.push(("sign", s.to_string()));
        }
        if let Some(t) = &self.tree {
            pairs.push(("tree", t.clone()));
        }
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(";")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(extra: SyncSettings) -> String {
        extra.encode()
    }

    fn base() -> SyncSettings {
        SyncSettings {
            architectures: "*".into(),
            policy: "mirror".into(),
            deleted_packages: "remove".into(),
            keep_last: None,
            filters: None,
            trust: None,
            sign: None,
            tree: None,
        }
    }

    /// The texts chantal recorded before this type existed (built by pushing strings): the same
    /// settings must encode to the same text, or every repository resyncs after an upgrade.
    #[test]
    fn the_encoding_is_the_one_earlier_catalogues_hold() {
        assert_eq!(settings(base()), "arch=*;policy=mirror;deleted=remove");
        let all = SyncSettings {
            architectures: "x86_64,aarch64".into(),
            policy: "keep-last".into(),
            deleted_packages: "keep".into(),
            keep_last: Some(3),
            filters: Some("include=kernel*;exclude=;exclude_source=true".into()),
            trust: Some((true, false, Sha256::parse(&"ab".repeat(32)).unwrap())),
            sign: Some(Sha256::parse(&"cd".repeat(32)).unwrap()),
            tree: Some("ef".repeat(32)),
        };
        assert_eq!(
            settings(all),
            format!(
                "arch=x86_64,aarch64;policy=keep-last;deleted=keep;keep_last=3;filters=include=kernel*;exclude=;exclude_source=true;gpgcheck=1;repo_gpgcheck=0;keys={};sign={};tree={}",
                "ab".repeat(32),
                "cd".repeat(32),
                "ef".repeat(32)
            )
        );
        assert_eq!(
            base().with_tree("t").encode(),
            "arch=*;policy=mirror;deleted=remove;tree=t"
        );
    }
}
