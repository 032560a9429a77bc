//! One package against a key ring: at least one header signature made by a trusted key must
//! verify, and the payload must match the digest that signed header carries (the header
//! signature alone says nothing about the payload).

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;

use chantal_common::catalogue::SignatureRecord;
use rpm::{IndexTag, PackageMetadata};
use sha2::{Digest, Sha256};

use super::{hex_id, KeyRing};

/// rpm's `PGPHASHALGO_SHA256`, the only payload digest algorithm rpm writes in
/// `RPMTAG_PAYLOADDIGESTALGO` since 4.14.
const PAYLOAD_SHA256: u32 = 8;

/// A file read from its start with positioned reads, leaving the descriptor's own offset (a
/// download's, at its end) alone.
struct FromStart<'a> {
    file: &'a File,
    offset: u64,
}

impl Read for FromStart<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read_at(buf, self.offset)?;
        self.offset += n as u64;
        Ok(n)
    }
}

/// A package that passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The issuer key id of every signature the package carries, in header order.
    pub key_ids: Vec<String>,
    /// Fingerprint of the trusted key whose signature verified.
    pub verified_by: String,
    /// Signatures that did not count, and why (`-v` output).
    pub notes: Vec<SignatureNote>,
}

impl Checked {
    /// What the catalogue keeps of this check, for the file with `sha256`.
    pub fn record(&self, sha256: &chantal_common::Sha256) -> SignatureRecord {
        SignatureRecord {
            sha256: sha256.clone(),
            key_ids: self.key_ids.join(" "),
            verified_by: Some(self.verified_by.clone()),
        }
    }
}

/// A package that failed, with the key ids it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub reason: String,
    pub key_ids: Vec<String>,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

/// A signature that was not the one that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureNote {
    pub key_id: String,
    pub detail: String,
}

/// Checks the RPM file at `path` against `ring`.
pub fn check_package(path: &Path, ring: &KeyRing) -> Result<Checked, Rejected> {
    let file = File::open(path).map_err(|e| Rejected {
        reason: format!("cannot read {}: {e}", path.display()),
        key_ids: Vec::new(),
    })?;
    check_file(&file, ring)
}

/// Checks the RPM `file` against `ring`, reading it from its start whatever its offset: a
/// download checks the descriptor it wrote, rather than look the file up again by path and
/// open it a second time (an open and a close per package, 2 % of a signed cold sync's CPU).
pub fn check_file(file: &File, ring: &KeyRing) -> Result<Checked, Rejected> {
    let reject = |reason: String, key_ids: &[String]| Rejected {
        reason,
        key_ids: key_ids.to_vec(),
    };
    // Below glibc's mmap threshold (128 KiB): a buffer per package stays on the heap instead
    // of costing an mmap, page faults and an munmap each.
    let mut reader = BufReader::with_capacity(64 << 10, FromStart { file, offset: 0 });
    let headers = super::header::read_headers(&mut reader)
        .map_err(|e| reject(format!("not a readable RPM header: {e}"), &[]))?;
    let md = PackageMetadata::parse(&mut &headers[..])
        .map_err(|e| reject(format!("not a readable RPM header: {e}"), &[]))?;
    let raw = md
        .raw_signatures()
        .map_err(|e| reject(format!("unreadable signature header: {e}"), &[]))?;
    if raw.is_empty() {
        return Err(reject("not signed".into(), &[]));
    }
    let header = md
        .header_bytes()
        .map_err(|e| reject(format!("not a readable RPM header: {e}"), &[]))?;
    let mut key_ids = Vec::with_capacity(raw.len());
    let mut notes = Vec::new();
    let mut verified_by = None;
    let mut failed_trusted = None;
    for sig in &raw {
        let info = describe(sig);
        key_ids.push(info.key_id.clone());
        if verified_by.is_some() {
            continue;
        }
        let candidates: Vec<_> = ring.keys.iter().filter(|k| info.names(k)).collect();
        if candidates.is_empty() {
            notes.push(SignatureNote {
                key_id: info.key_id.clone(),
                detail: format!(
                    "{} signature by a key this repository does not trust",
                    info.algorithm
                ),
            });
            continue;
        }
        let mut errors = Vec::new();
        for k in candidates {
            match k.verify_header(&header[..], sig, info.packet.as_ref()) {
                Ok(()) => {
                    verified_by = Some(k.fingerprint.clone());
                    break;
                }
                Err(e) => errors.push(verify_error(&e.to_string())),
            }
        }
        if verified_by.is_none() {
            let detail = format!(
                "{} signature does not verify: {}",
                info.algorithm,
                errors.join("; ")
            );
            failed_trusted.get_or_insert_with(|| (info.key_id.clone(), detail.clone()));
            notes.push(SignatureNote {
                key_id: info.key_id.clone(),
                detail,
            });
        }
    }
    let Some(verified_by) = verified_by else {
        return Err(match failed_trusted {
            Some((key, detail)) => reject(format!("key {key}: {detail}"), &key_ids),
            None => reject(
                format!("signed by unknown key {}", key_ids.join(", ")),
                &key_ids,
            ),
        });
    };
    check_payload(&md, &mut reader).map_err(|reason| reject(reason, &key_ids))?;
    Ok(Checked {
        key_ids,
        verified_by,
        notes,
    })
}

/// A verification error as one line: the library's may span several (assertion output).
pub(super) fn verify_error(message: &str) -> String {
    // The hash prefix stored in the signature differs from the header's: the header is not
    // the one that was signed.
    if message.contains("invalid signed hash value") {
        return "the header is not the one that was signed (digest mismatch)".into();
    }
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The payload (the rest of the file) against the signed header's digest.
fn check_payload(md: &PackageMetadata, payload: &mut impl BufRead) -> Result<(), String> {
    let expected = md
        .header
        .get_entry_data_as_string(IndexTag::RPMTAG_PAYLOADSHA256)
        .map_err(|_| {
            "the signed header holds no payload digest, so no signature covers the payload \
             (packages built by rpm < 4.14)"
                .to_string()
        })?;
    if let Ok(algo) = md
        .header
        .get_entry_data_as_u32_array(IndexTag::RPMTAG_PAYLOADSHA256ALGO)
    {
        if algo.first().is_some_and(|a| *a != PAYLOAD_SHA256) {
            return Err(format!(
                "payload digest algorithm {} is not supported (only sha256)",
                algo[0]
            ));
        }
    }
    let mut hasher = Sha256::new();
    loop {
        let chunk = payload
            .fill_buf()
            .map_err(|e| format!("cannot read the payload: {e}"))?;
        if chunk.is_empty() {
            break;
        }
        hasher.update(chunk);
        let n = chunk.len();
        payload.consume(n);
    }
    let actual = hex::encode(hasher.finalize());
    if !actual.eq_ignore_ascii_case(expected) {
        return Err(format!(
            "the payload does not match the signed header's digest (sha256 {actual}, header says {expected})"
        ));
    }
    Ok(())
}

/// What a signature packet says about itself, read even when its algorithm is unknown.
struct Info {
    key_id: String,
    /// Whether the issuer fingerprint names the key (v6 signatures), not the key id alone.
    by_fingerprint: bool,
    fingerprint: Option<String>,
    algorithm: String,
    /// The packet itself, parsed once for the checks too.
    packet: Option<pgp::packet::Signature>,
}

impl Info {
    /// Whether the signature names `key` (its primary key or a subkey) as its issuer. rpm
    /// looks a v4 signature's key up by its issuer key id (a subpacket in the unsigned part of
    /// the packet), so a v4 signature whose key id is missing or names another key fails
    /// there even when the signed fingerprint matches: it fails here too, or chantal would
    /// pass packages dnf refuses. v6 signatures name their key by fingerprint.
    fn names(&self, key: &super::TrustedKey) -> bool {
        key.ids.iter().any(|id| {
            id.eq_ignore_ascii_case(&self.key_id)
                || (self.by_fingerprint
                    && self
                        .fingerprint
                        .as_deref()
                        .is_some_and(|f| id.eq_ignore_ascii_case(f)))
        })
    }
}

fn describe(sig: &[u8]) -> Info {
    let Some(s) = super::fast_rsa::first_signature(sig) else {
        return Info {
            key_id: "unknown".into(),
            by_fingerprint: false,
            fingerprint: None,
            algorithm: "unparsable".into(),
            packet: None,
        };
    };
    let fingerprint = s.issuer_fingerprint().first().map(|f| hex_id(f.as_bytes()));
    let by_fingerprint = s.version() == pgp::packet::SignatureVersion::V6;
    let key_id = s
        .issuer_key_id()
        .first()
        .map(|k| hex_id(k.as_ref()))
        .or_else(|| {
            // v6 signatures name the issuer by fingerprint only; rpm shows its first 8 bytes.
            fingerprint.as_ref().map(|f| f.chars().take(16).collect())
        })
        .unwrap_or_else(|| "unknown".into());
    let algorithm = s
        .config()
        .map(|c| format!("{:?}", c.pub_alg))
        .unwrap_or_else(|| "unknown-version".into());
    Info {
        key_id,
        by_fingerprint,
        fingerprint,
        algorithm,
        packet: Some(s),
    }
}
