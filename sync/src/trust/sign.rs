//! Signing the repomd.xml chantal publishes (`publish.sign`): in process with an OpenPGP
//! secret key file, or by an operator's command (a key in an HSM or a gpg-agent), which gets
//! the file's path and writes the detached armored signature to stdout. Either way the
//! signature is checked against the public key before it is used.

use std::path::{Path, PathBuf};
use std::process::Command;

use chantal_common::config::SignConfig;
use pgp::composed::{ArmorOptions, Deserializable, DetachedSignature, SignedSecretKey};
use pgp::crypto::hash::HashAlgorithm;
use pgp::types::{KeyDetails, Password};

use super::KeyRing;

/// A loaded `publish.sign`.
pub struct RepoSigner {
    how: How,
    /// The public key, armored: served as `repodata/repomd.xml.key`.
    pub public_key: String,
    /// The public key as a ring, to check every signature made.
    ring: KeyRing,
}

enum How {
    Key {
        key: Box<SignedSecretKey>,
        passphrase: String,
    },
    Command(PathBuf),
}

impl RepoSigner {
    /// Reads the key files `cfg` names. Errors name the file.
    pub fn load(cfg: &SignConfig) -> Result<RepoSigner, String> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|e| format!("publish.sign: cannot read {}: {e}", p.display()))
        };
        match cfg {
            SignConfig::Key {
                key,
                passphrase_file,
            } => {
                let bytes = read(key)?;
                let secret = parse_secret(&bytes)
                    .map_err(|e| format!("publish.sign.key {}: {e}", key.display()))?;
                let passphrase = match passphrase_file {
                    Some(p) => String::from_utf8_lossy(&read(p)?)
                        .trim_end_matches(['\n', '\r'])
                        .to_string(),
                    None => String::new(),
                };
                let public_key = secret
                    .to_public_key()
                    .to_armored_string(ArmorOptions::default())
                    .map_err(|e| format!("publish.sign.key {}: {e}", key.display()))?;
                let ring = KeyRing::from_files(
                    &[(key.display().to_string(), public_key.clone().into_bytes())],
                    &[],
                )?;
                let signer = RepoSigner {
                    how: How::Key {
                        key: Box::new(secret),
                        passphrase,
                    },
                    public_key,
                    ring,
                };
                // A wrong passphrase shows now, not at the first commit.
                signer
                    .sign(Path::new("-"), b"chantal")
                    .map_err(|e| format!("publish.sign.key {}: {e}", key.display()))?;
                Ok(signer)
            }
            SignConfig::Command {
                command,
                public_key,
            } => {
                let bytes = read(public_key)?;
                let ring = KeyRing::from_files(&[(public_key.display().to_string(), bytes)], &[])?;
                Ok(RepoSigner {
                    how: How::Command(command.clone()),
                    public_key: ring.armored(),
                    ring,
                })
            }
        }
    }

    /// The armored detached signature of `data`, which is the content of the file at
    /// `path` (the command mode hands the command that path).
    pub fn sign(&self, path: &Path, data: &[u8]) -> Result<Vec<u8>, String> {
        let armored = match &self.how {
            How::Key { key, passphrase } => {
                let pw = Password::from(passphrase.as_str());
                let sig = match signing_subkey(key) {
                    Some(sub) => DetachedSignature::sign_binary_data(
                        rand::thread_rng(),
                        &sub.key,
                        &pw,
                        HashAlgorithm::Sha256,
                        data,
                    ),
                    None => DetachedSignature::sign_binary_data(
                        rand::thread_rng(),
                        &key.primary_key,
                        &pw,
                        HashAlgorithm::Sha256,
                        data,
                    ),
                }
                .map_err(|e| format!("cannot sign: {e}"))?;
                sig.to_armored_bytes(ArmorOptions::default())
                    .map_err(|e| format!("cannot sign: {e}"))?
            }
            How::Command(cmd) => {
                let out = Command::new(cmd)
                    .arg(path)
                    .output()
                    .map_err(|e| format!("publish.sign.command {}: {e}", cmd.display()))?;
                if !out.status.success() {
                    return Err(format!(
                        "publish.sign.command {} failed ({}): {}",
                        cmd.display(),
                        out.status,
                        String::from_utf8_lossy(&out.stderr).trim()
                    ));
                }
                out.stdout
            }
        };
        self.ring
            .verify_detached(&armored, data)
            .map_err(|e| format!("the signature made does not verify with the public key: {e}"))?;
        Ok(armored)
    }
}

/// A secret subkey flagged for signing, if the key has one (gpg's default layout keeps the
/// primary for certification only when asked to).
fn signing_subkey(key: &SignedSecretKey) -> Option<&pgp::composed::SignedSecretSubKey> {
    key.secret_subkeys
        .iter()
        .find(|s| s.signatures.iter().any(|sig| sig.key_flags().sign()))
}

fn parse_secret(bytes: &[u8]) -> Result<SignedSecretKey, String> {
    let parsed = match std::str::from_utf8(bytes) {
        Ok(t) if t.contains("-----BEGIN PGP PRIVATE KEY BLOCK-----") => {
            SignedSecretKey::from_string(t).map(|(k, _)| k)
        }
        _ => SignedSecretKey::from_bytes(bytes),
    };
    let key = parsed.map_err(|e| format!("not an OpenPGP secret key: {e}"))?;
    key.verify_bindings()
        .map_err(|e| format!("invalid self-signatures: {e}"))?;
    let _ = key.fingerprint();
    Ok(key)
}
