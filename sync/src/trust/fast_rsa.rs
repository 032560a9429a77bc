//! The fast path of header signature checks: RSA signatures (v4 key, v4 binary signature,
//! SHA-1 or SHA-2, 2,048 to 8,192 bits: every signing key Red Hat, Fedora, EPEL and the
//! common vendors use) verified with ring, whose assembler Montgomery code is several times
//! faster than the pure-Rust `rsa` crate under rpgp (see docs/PERFORMANCE.md).
//!
//! It only ever says "verified". Anything it does not recognise, and every signature that
//! does not verify, goes on to rpm-rs's `Verifier` (rpgp), which gives the verdict and the
//! message. So the verdicts stay rpgp's as long as the fast path never accepts what rpgp
//! refuses; that is why it mirrors rpgp's own steps (the first signature packet, the key rpm-rs
//! would pick and its signing capability, the bytes pgp hashes, the digest's leading 16 bits)
//! and why a differential test holds it against rpgp and `rpmkeys -K`.

use digest::{DynDigest, InvalidBufferSize};
use pgp::composed::SignedPublicKey;
use pgp::crypto::hash::HashAlgorithm;
use pgp::crypto::public_key::PublicKeyAlgorithm;
use pgp::packet::{Packet, PacketParser, Signature, SignatureType, SignatureVersion};
use pgp::types::{Fingerprint, KeyDetails, KeyId, KeyVersion, PublicParams, SignatureBytes};
use ring::signature::{self as ring_sig, RsaParameters, RsaPublicKeyComponents};
use rsa::traits::PublicKeyParts;

/// One certificate's keys (the primary first, then its subkeys) as the fast path needs them.
#[derive(Debug, Clone)]
pub struct FastRsa {
    keys: Vec<FastKey>,
}

#[derive(Debug, Clone)]
struct FastKey {
    fingerprint: Fingerprint,
    key_id: KeyId,
    /// rpm-rs's rule: a key signs when its self-signatures grant it, or say nothing at all.
    can_sign: bool,
    /// The modulus and exponent, big-endian, when this is a v4 RSA key.
    rsa: Option<(Vec<u8>, Vec<u8>)>,
}

impl FastRsa {
    pub fn new(cert: &SignedPublicKey) -> FastRsa {
        let primary_sigs = cert
            .details
            .direct_signatures
            .iter()
            .chain(cert.details.users.iter().flat_map(|u| u.signatures.iter()));
        let mut keys = vec![FastKey::new(
            &cert.primary_key,
            grants_signing(primary_sigs),
        )];
        for sub in &cert.public_subkeys {
            keys.push(FastKey::new(
                &sub.key,
                grants_signing(sub.signatures.iter()),
            ));
        }
        FastRsa { keys }
    }

    /// No key: decides nothing (the differential test's rpgp-only side).
    #[cfg(test)]
    pub fn none() -> FastRsa {
        FastRsa { keys: Vec::new() }
    }

    /// True when `sig` (an RPM signature tag's packet, as [`first_signature`] reads it)
    /// verifies over `header` with a key of this certificate that rpm-rs's `Verifier` would
    /// also accept it with. False means "not decided here", never "bad".
    pub fn verifies(&self, header: &[u8], sig: &Signature) -> bool {
        let Some(cfg) = sig.config() else {
            return false;
        };
        if cfg.pub_alg != PublicKeyAlgorithm::RSA
            || cfg.version() != SignatureVersion::V4
            || cfg.typ() != SignatureType::Binary
        {
            return false;
        }
        let Some(params) = ring_params(cfg.hash_alg) else {
            return false;
        };
        let Some(SignatureBytes::Mpis(mpis)) = sig.signature() else {
            return false;
        };
        let [mpi] = mpis.as_slice() else {
            return false;
        };
        let candidates = self.candidates(sig);
        if candidates.is_empty() {
            return false;
        }
        let Some(message) = signed_message(sig, header) else {
            return false;
        };
        candidates.into_iter().any(|(n, e)| {
            // OpenPGP strips an MPI's leading zeros; ring wants the modulus' length.
            let sig_bytes = mpi.as_ref();
            if sig_bytes.len() > n.len() {
                return false;
            }
            let mut padded = vec![0u8; n.len()];
            padded[n.len() - sig_bytes.len()..].copy_from_slice(sig_bytes);
            RsaPublicKeyComponents { n, e }
                .verify(params, &message, &padded)
                .is_ok()
                && signed_hash_matches(sig, cfg.hash_alg, &message)
        })
    }

    /// The RSA keys rpm-rs's `Verifier` would try this signature with, or none when it would
    /// give up first. With issuer fingerprints it tries each key they name, and refuses
    /// outright when a named key may not sign; without any, only the primary key, and pgp then
    /// wants the issuer key id (if any) to be the primary's.
    fn candidates(&self, sig: &Signature) -> Vec<(&[u8], &[u8])> {
        let fingerprints = sig.issuer_fingerprint();
        let named: Vec<&FastKey> = if fingerprints.is_empty() {
            let primary = self.keys.first();
            let ids = sig.issuer_key_id();
            primary
                .into_iter()
                .filter(|k| k.can_sign && (ids.is_empty() || ids.contains(&&k.key_id)))
                .collect()
        } else {
            let named: Vec<&FastKey> = self
                .keys
                .iter()
                .filter(|k| fingerprints.contains(&&k.fingerprint))
                .collect();
            if named.iter().any(|k| !k.can_sign) {
                return Vec::new();
            }
            named
        };
        named
            .into_iter()
            .filter_map(|k| k.rsa.as_ref().map(|(n, e)| (&n[..], &e[..])))
            .collect()
    }
}

/// The signature of an RPM signature tag as rpm-rs reads it: the first signature packet that
/// parses, anything else skipped.
pub fn first_signature(bytes: &[u8]) -> Option<Signature> {
    PacketParser::new(bytes).find_map(|p| match p {
        Ok(Packet::Signature(s)) => Some(s),
        _ => None,
    })
}

impl FastKey {
    fn new(key: &impl KeyDetails, can_sign: bool) -> FastKey {
        let rsa = match key.public_params() {
            PublicParams::RSA(p)
                if key.version() == KeyVersion::V4
                    && key.algorithm() == PublicKeyAlgorithm::RSA =>
            {
                Some((p.key.n().to_bytes_be(), p.key.e().to_bytes_be()))
            }
            _ => None,
        };
        FastKey {
            fingerprint: key.fingerprint(),
            key_id: key.legacy_key_id(),
            can_sign,
            rsa,
        }
    }
}

/// rpm-rs's reading of key flags: the signatures that carry a key-flags subpacket decide (any
/// granting signing will do); when none carries one, the key is general-purpose.
fn grants_signing<'a>(sigs: impl Iterator<Item = &'a Signature>) -> bool {
    let mut flagged = sigs
        .filter(|s| {
            s.config().is_some_and(|c| {
                c.hashed_subpackets()
                    .any(|p| matches!(p.data, pgp::packet::SubpacketData::KeyFlags(_)))
            })
        })
        .peekable();
    if flagged.peek().is_none() {
        return true;
    }
    flagged.any(|s| s.key_flags().sign())
}

/// ring's PKCS#1 v1.5 verification for an OpenPGP hash algorithm (2,048 to 8,192-bit keys;
/// others go to rpgp).
fn ring_params(hash: HashAlgorithm) -> Option<&'static RsaParameters> {
    Some(match hash {
        HashAlgorithm::Sha256 => &ring_sig::RSA_PKCS1_2048_8192_SHA256,
        HashAlgorithm::Sha384 => &ring_sig::RSA_PKCS1_2048_8192_SHA384,
        HashAlgorithm::Sha512 => &ring_sig::RSA_PKCS1_2048_8192_SHA512,
        HashAlgorithm::Sha1 => &ring_sig::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
        _ => return None,
    })
}

/// The bytes a v4 signature's digest covers (RFC 4880 §5.2.4): the header, then the
/// signature's hashed part as pgp serialises it (pgp's own code, so its refusals, such as an
/// unknown critical subpacket, stay refusals), then the trailer.
fn signed_message(sig: &Signature, header: &[u8]) -> Option<Vec<u8>> {
    let cfg = sig.config()?;
    let mut hashed: Box<dyn DynDigest + Send> = Box::new(Collect(Vec::with_capacity(256)));
    let len = cfg.hash_signature_data(&mut hashed).ok()?;
    let trailer = cfg.trailer(len).ok()?;
    let hashed = hashed.finalize();
    let mut message = Vec::with_capacity(header.len() + hashed.len() + trailer.len());
    message.extend_from_slice(header);
    message.extend_from_slice(&hashed);
    message.extend_from_slice(&trailer);
    Some(message)
}

/// pgp refuses a v4 signature whose stored "left 16 bits of the digest" differ from the
/// digest it computes, although those bits are not signed; so does rpm. ring has checked the
/// signed digest by now, so this only runs on signatures that verified.
fn signed_hash_matches(sig: &Signature, hash: HashAlgorithm, message: &[u8]) -> bool {
    let alg = match hash {
        HashAlgorithm::Sha256 => &ring::digest::SHA256,
        HashAlgorithm::Sha384 => &ring::digest::SHA384,
        HashAlgorithm::Sha512 => &ring::digest::SHA512,
        HashAlgorithm::Sha1 => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        _ => return false,
    };
    let digest = ring::digest::digest(alg, message);
    sig.signed_hash_value()
        .is_some_and(|v| v[..] == digest.as_ref()[..2])
}

/// The identity "digest": pgp writes a signature's hashed part into a hasher; this one keeps
/// the bytes, so that ring (which verifies messages, not digests) hashes exactly them.
#[derive(Clone)]
struct Collect(Vec<u8>);

impl DynDigest for Collect {
    fn update(&mut self, data: &[u8]) {
        self.0.extend_from_slice(data);
    }

    fn finalize(self: Box<Self>) -> Box<[u8]> {
        self.0.into_boxed_slice()
    }

    fn finalize_into(self, buf: &mut [u8]) -> Result<(), InvalidBufferSize> {
        if buf.len() != self.0.len() {
            return Err(InvalidBufferSize);
        }
        buf.copy_from_slice(&self.0);
        Ok(())
    }

    fn finalize_into_reset(&mut self, out: &mut [u8]) -> Result<(), InvalidBufferSize> {
        self.clone().finalize_into(out)?;
        self.0.clear();
        Ok(())
    }

    fn reset(&mut self) {
        self.0.clear();
    }

    fn output_size(&self) -> usize {
        self.0.len()
    }

    fn box_clone(&self) -> Box<dyn DynDigest> {
        Box::new(self.clone())
    }
}
