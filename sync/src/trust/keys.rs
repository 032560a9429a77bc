//! A repository's trusted keys, parsed from the key files its configuration names.

use pgp::composed::{ArmorOptions, Deserializable, DetachedSignature, SignedPublicKey};
use pgp::types::KeyDetails;
use rpm::signature::pgp::Verifier;

use super::hex_id;

/// Largest key file accepted (Red Hat's, with three keys, is 5 KiB).
pub const MAX_KEY_FILE: u64 = 1 << 20;

/// One trusted primary key (with its subkeys).
#[derive(Debug, Clone)]
pub struct TrustedKey {
    /// Full primary-key fingerprint, upper-case hex (as `gpg --fingerprint` prints it).
    pub fingerprint: String,
    /// Key ids and fingerprints (lower-case hex) of the primary key and its subkeys: the
    /// names a signature's issuer may carry.
    pub ids: Vec<String>,
    /// A verifier holding this key alone, so a verified signature names its key.
    pub verifier: Verifier,
    pub key: SignedPublicKey,
    armored: String,
}

/// Every key a repository trusts, in the order its sources name them, without duplicates.
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    pub keys: Vec<TrustedKey>,
}

impl KeyRing {
    /// The keys of `files` (`(where it came from, its bytes)`, armored or binary, any number
    /// of keys each), limited to `pins` (full fingerprints, upper-case hex) when there are
    /// any. Errors name the file.
    pub fn from_files(files: &[(String, Vec<u8>)], pins: &[String]) -> Result<KeyRing, String> {
        let mut ring = KeyRing::default();
        for (source, bytes) in files {
            let keys = parse_keys(bytes).map_err(|e| format!("{source}: {e}"))?;
            if keys.is_empty() {
                return Err(format!("{source}: holds no OpenPGP public key"));
            }
            let mut kept = 0;
            let mut seen = Vec::new();
            for key in keys {
                let fingerprint = hex_id(key.fingerprint().as_bytes()).to_ascii_uppercase();
                seen.push(fingerprint.clone());
                if !pins.is_empty() && !pins.contains(&fingerprint) {
                    continue;
                }
                kept += 1;
                if ring.keys.iter().any(|k| k.fingerprint == fingerprint) {
                    continue;
                }
                key.verify_bindings().map_err(|e| {
                    format!("{source}: key {fingerprint}: invalid self-signatures: {e}")
                })?;
                let armored = key
                    .to_armored_string(ArmorOptions::default())
                    .map_err(|e| format!("{source}: key {fingerprint}: {e}"))?;
                let verifier = Verifier::from_asc(&armored)
                    .map_err(|e| format!("{source}: key {fingerprint}: {e}"))?;
                let mut ids = vec![
                    hex_id(key.legacy_key_id().as_ref()),
                    fingerprint.to_ascii_lowercase(),
                ];
                for sub in &key.public_subkeys {
                    ids.push(hex_id(sub.legacy_key_id().as_ref()));
                    ids.push(hex_id(sub.fingerprint().as_bytes()));
                }
                ring.keys.push(TrustedKey {
                    ids,
                    fingerprint,
                    verifier,
                    key,
                    armored,
                });
            }
            if kept == 0 {
                return Err(format!(
                    "{source}: holds none of the keys rpm.gpgkey_fingerprints pins (it holds {})",
                    seen.join(", ")
                ));
            }
        }
        Ok(ring)
    }

    /// The file clients import (`gpgkey=`): every trusted key, armored, one block each.
    pub fn armored(&self) -> String {
        let mut out = String::new();
        for k in &self.keys {
            out.push_str(&k.armored);
            if !k.armored.ends_with('\n') {
                out.push('\n');
            }
        }
        out
    }

    /// Verifies a detached signature (`repomd.xml.asc`, armored or binary) over `data`:
    /// the fingerprint of the trusted key that made it.
    pub fn verify_detached(&self, signature: &[u8], data: &[u8]) -> Result<String, String> {
        let sigs = parse_detached(signature)?;
        let mut errors = Vec::new();
        for sig in &sigs {
            for k in &self.keys {
                let ok = sig.verify(&k.key, data).is_ok()
                    || k.key
                        .public_subkeys
                        .iter()
                        .any(|s| sig.verify(s, data).is_ok());
                if ok {
                    return Ok(k.fingerprint.clone());
                }
            }
            let issuer = sig
                .signature
                .issuer_key_id()
                .first()
                .map(|k| hex_id(k.as_ref()))
                .or_else(|| {
                    sig.signature
                        .issuer_fingerprint()
                        .first()
                        .map(|f| hex_id(f.as_bytes()))
                })
                .unwrap_or_else(|| "unknown".into());
            errors.push(issuer);
        }
        Err(format!(
            "no signature by a trusted key verifies (signed by {})",
            errors.join(", ")
        ))
    }

    /// The fingerprints, for the catalogue's verification records.
    pub fn fingerprints(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.fingerprint.as_str()).collect()
    }
}

/// The signatures of a detached signature file.
fn parse_detached(bytes: &[u8]) -> Result<Vec<DetachedSignature>, String> {
    let bad = |e: pgp::errors::Error| format!("not an OpenPGP signature: {e}");
    let text = std::str::from_utf8(bytes)
        .ok()
        .filter(|t| t.contains("-----BEGIN PGP SIGNATURE-----"));
    let sigs = match text {
        Some(t) => DetachedSignature::from_armor_many(t.as_bytes())
            .map_err(bad)?
            .0
            .collect::<Result<Vec<_>, _>>()
            .map_err(bad)?,
        None => DetachedSignature::from_bytes_many(bytes)
            .map_err(bad)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(bad)?,
    };
    if sigs.is_empty() {
        return Err("holds no OpenPGP signature".into());
    }
    Ok(sigs)
}

/// Every public key in a file: binary packets, or any number of armored blocks (key files
/// such as Red Hat's concatenate several).
fn parse_keys(bytes: &[u8]) -> Result<Vec<SignedPublicKey>, String> {
    const BEGIN: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----";
    const END: &str = "-----END PGP PUBLIC KEY BLOCK-----";
    let mut keys = Vec::new();
    let collect = |iter: Box<dyn Iterator<Item = pgp::errors::Result<SignedPublicKey>> + '_>,
                   keys: &mut Vec<SignedPublicKey>|
     -> Result<(), String> {
        for k in iter {
            keys.push(k.map_err(|e| format!("not a valid OpenPGP key: {e}"))?);
        }
        Ok(())
    };
    match std::str::from_utf8(bytes) {
        Ok(text) if text.contains(BEGIN) => {
            let mut rest = text;
            while let Some(start) = rest.find(BEGIN) {
                let block = &rest[start..];
                let end = block
                    .find(END)
                    .map(|e| e + END.len())
                    .ok_or_else(|| "an armored key block has no END line".to_string())?;
                let (iter, _) = SignedPublicKey::from_armor_many(&block.as_bytes()[..end])
                    .map_err(|e| format!("not a valid armored key: {e}"))?;
                collect(iter, &mut keys)?;
                rest = &block[end..];
            }
        }
        _ => {
            let iter = SignedPublicKey::from_bytes_many(bytes)
                .map_err(|e| format!("not a valid OpenPGP key: {e}"))?;
            collect(iter, &mut keys)?;
        }
    }
    Ok(keys)
}
