//! What a repository trusts, and checking packages against it: the public keys named by
//! `rpm.gpgkey_url` / `rpm.gpgkeys` (optionally pinned by `rpm.gpgkey_fingerprints`), and
//! each package's OpenPGP header signatures plus the payload digest the signed header holds.
//! Signatures are verified with the `rpm` crate (rpm-rs) and its `pgp` backend, RSA header
//! signatures first with ring (`fast_rsa`).

#[cfg(test)]
mod differential;
mod fast_rsa;
mod header;
mod keys;
mod package;
mod sign;
#[cfg(test)]
mod tests;

pub use keys::{KeyRing, TrustedKey, MAX_KEY_FILE};
pub use package::{check_file, check_package, Checked};
pub use sign::{RepoSigner, SignError};

/// `rpm.repo_gpgcheck` without `publish.sign`, where the latest version's repodata is
/// chantal's own: upstream's signature does not cover it, and nothing else does.
pub const REPODATA_UNSIGNED: &str = "rpm.repo_gpgcheck: upstream's repomd.xml signature does not cover the repodata chantal wrote for the latest version (a filter or the retention policy changed the package set), so clients cannot check this repository's repodata: set publish.sign to sign it";

/// The armored file of a version's keys, at the top of every served tree.
pub fn key_file_href(repo: &str) -> String {
    format!("RPM-GPG-KEY-{repo}")
}

/// Lower-case hex of a key id or fingerprint.
fn hex_id(bytes: &[u8]) -> String {
    hex::encode(bytes)
}
