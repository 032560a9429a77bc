//! A repository's trusted keys, parsed from the key files its configuration names.

use pgp::composed::{ArmorOptions, Deserializable, DetachedSignature, SignedPublicKey};
use pgp::types::KeyDetails;
use rpm::signature::pgp::Verifier;
use rpm::signature::Verifying;

use pgp::packet::Signature;

use super::fast_rsa::FastRsa;
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
    verifier: Verifier,
    /// The same key for ring's RSA, tried first (see `fast_rsa`).
    fast: FastRsa,
    pub key: SignedPublicKey,
    armored: String,
}

impl TrustedKey {
    /// Verifies an RPM header signature (`signature`, the tag's bytes; `parsed`, its packet
    /// as `fast_rsa::first_signature` reads it) over `header` with this key: ring's RSA when it
    /// verifies, rpgp for everything else and for the verdict and message of any signature
    /// that does not.
    pub fn verify_header(
        &self,
        header: &[u8],
        signature: &[u8],
        parsed: Option<&Signature>,
    ) -> Result<(), rpm::Error> {
        if parsed.is_some_and(|p| self.fast.verifies(header, p)) {
            return Ok(());
        }
        self.verifier.verify(header, signature)
    }

    /// This key without the fast path: rpgp alone, for the differential test.
    #[cfg(test)]
    pub(super) fn rpgp_only(&self) -> TrustedKey {
        TrustedKey {
            fast: FastRsa::none(),
            ..self.clone()
        }
    }

    #[cfg(test)]
    pub(super) fn fast_verifies(&self, header: &[u8], signature: &[u8]) -> bool {
        super::fast_rsa::first_signature(signature).is_some_and(|p| self.fast.verifies(header, &p))
    }
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
                return Err(format!(
                    "{source}: {}",
                    not_openpgp(bytes, Expected::PublicKey, &"no key in the file")
                ));
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
                    fast: FastRsa::new(&key),
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

/// What a file an OpenPGP object was expected in holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expected {
    PublicKey,
    SecretKey,
    Signature,
}

impl Expected {
    fn noun(self) -> &'static str {
        match self {
            Expected::PublicKey => "an OpenPGP public key",
            Expected::SecretKey => "an OpenPGP secret key",
            Expected::Signature => "an OpenPGP signature",
        }
    }
}

/// The one-line refusal of a file that should hold `want` and does not parse as it: what it
/// is not and what it looks like, in words an operator recognises (the parser's own message
/// goes to the debug log).
pub(super) fn not_openpgp(bytes: &[u8], want: Expected, parser: &dyn std::fmt::Display) -> String {
    tracing::debug!("OpenPGP parser: {parser}");
    format!("not {}: {}", want.noun(), looks_like(bytes, want))
}

/// What `bytes` look like, for [`not_openpgp`].
fn looks_like(bytes: &[u8], want: Expected) -> &'static str {
    let head = &bytes[..bytes.len().min(4096)];
    let text = String::from_utf8_lossy(head);
    let trimmed = text.trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n']);
    let lower = trimmed.to_ascii_lowercase();
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return "the file is empty";
    }
    if lower.starts_with("<!doctype html") || lower.starts_with("<html") || lower.contains("<html")
    {
        return "it looks like an HTML page (an error or login page served instead of the file?)";
    }
    if lower.starts_with('<') {
        return "it looks like XML or HTML";
    }
    let armor = |kind: &str| text.contains(&format!("-----BEGIN PGP {kind}-----"));
    if armor("PRIVATE KEY BLOCK") {
        return match want {
            Expected::SecretKey => "an armored secret key that does not parse (damaged?)",
            _ => "it is a secret key (give the public key; never publish the secret one)",
        };
    }
    if armor("PUBLIC KEY BLOCK") {
        return match want {
            Expected::PublicKey => "an armored public key that does not parse (damaged?)",
            Expected::SecretKey => "it is a public key (signing needs the secret key)",
            Expected::Signature => "it is a public key, not a signature",
        };
    }
    if armor("SIGNATURE") {
        return match want {
            Expected::Signature => "an armored signature that does not parse (damaged?)",
            _ => "it is a signature, not a key",
        };
    }
    if armor("MESSAGE") {
        return "it is an OpenPGP message";
    }
    // Binary OpenPGP starts with a packet header: bit 7 set, the tag in bits 5..0 (new format)
    // or 5..2 (old format).
    let first = bytes[0];
    if first & 0x80 != 0 {
        let tag = if first & 0x40 != 0 {
            first & 0x3f
        } else {
            (first >> 2) & 0x0f
        };
        return match (tag, want) {
            (5, Expected::SecretKey) => "a binary secret key that does not parse (damaged?)",
            (5, _) => "it is a binary secret key (give the public key)",
            (6, Expected::PublicKey) => "a binary public key that does not parse (damaged?)",
            (6, Expected::SecretKey) => "it is a binary public key (signing needs the secret key)",
            (6, Expected::Signature) => "it is a binary public key, not a signature",
            (2, Expected::Signature) => "a binary signature that does not parse (damaged?)",
            (2, _) => "it is a binary signature, not a key",
            _ => "binary data that is not a valid OpenPGP packet",
        };
    }
    if std::str::from_utf8(head).is_ok() {
        "it is plain text"
    } else {
        "it is binary data"
    }
}

/// The signatures of a detached signature file.
fn parse_detached(bytes: &[u8]) -> Result<Vec<DetachedSignature>, String> {
    let bad = |e: pgp::errors::Error| not_openpgp(bytes, Expected::Signature, &e);
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
        return Err(not_openpgp(
            bytes,
            Expected::Signature,
            &"no signature in the file",
        ));
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
            keys.push(k.map_err(|e| not_openpgp(bytes, Expected::PublicKey, &e))?);
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
                    .map_err(|e| not_openpgp(bytes, Expected::PublicKey, &e))?;
                collect(iter, &mut keys)?;
                rest = &block[end..];
            }
        }
        _ => {
            let iter = SignedPublicKey::from_bytes_many(bytes)
                .map_err(|e| not_openpgp(bytes, Expected::PublicKey, &e))?;
            collect(iter, &mut keys)?;
        }
    }
    Ok(keys)
}
