//! The fast RSA path (ring) held against rpgp and `rpmkeys -K`: a few hundred packages signed
//! by RSA keys of 1,024 to 4,096 bits (one through a signing subkey), Ed25519, with SHA-1,
//! SHA-256/384/512, then damaged in the header, in the signature packet and in the payload,
//! plus createrepo_c's RSA-, EdDSA- and v6-signed samples, each judged with its own key, with
//! other keys and with all of them. Every verdict must be the same three ways, and ring must
//! never accept a signature rpgp refuses.

use std::path::{Path, PathBuf};

use chantal_tests::repo::{fixture_rpms, test_rpms};
use chantal_tests::signing::{rpmkeys_verdicts, GpgKey};
use rpm::PackageMetadata;

use super::header::be32;
use super::{check_package, KeyRing};

/// RPMSIGTAG_DSA and RPMSIGTAG_RSA: the header signatures (the EdDSA one sits in the DSA tag).
const SIGNATURE_TAGS: [u32; 2] = [267, 268];

/// Where a package's parts are: the signature tags' data, the main header, the payload.
struct Layout {
    signatures: Vec<(usize, usize)>,
    header: (usize, usize),
    payload_start: usize,
}

/// The offsets of an RPM's parts, read from its header structures (lead, signature header
/// padded to 8 bytes, main header, payload).
fn layout(b: &[u8]) -> Layout {
    let sig = 96;
    let n = be32(b, sig + 8);
    let size = be32(b, sig + 12);
    let store = sig + 16 + 16 * n;
    let mut signatures = Vec::new();
    for i in 0..n {
        let entry = sig + 16 + 16 * i;
        if SIGNATURE_TAGS.contains(&(be32(b, entry) as u32)) {
            signatures.push((store + be32(b, entry + 8), be32(b, entry + 12)));
        }
    }
    let header = (store + size).div_ceil(8) * 8;
    let hn = be32(b, header + 8);
    let hsize = be32(b, header + 12);
    let end = header + 16 + 16 * hn + hsize;
    Layout {
        signatures,
        header: (header, end),
        payload_start: end,
    }
}

struct Case {
    path: PathBuf,
    what: String,
}

/// `base` and damaged copies of it in `dir`: bytes flipped in the lead, the header, in each signature
/// packet (its first 64 bytes, where the algorithms, subpackets and digest prefix are, and
/// anywhere) and in the payload.
fn variants(base: &Path, dir: &Path, rng: &mut fastrand::Rng, cases: &mut Vec<Case>) {
    let bytes = std::fs::read(base).unwrap();
    let stem = base.file_name().unwrap().to_string_lossy().to_string();
    let label = format!(
        "{}/{stem}",
        base.parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
    );
    cases.push(Case {
        path: base.to_path_buf(),
        what: format!("{label} intact"),
    });
    let l = layout(&bytes);
    let mut flips: Vec<(String, usize)> = vec![("lead".into(), rng.usize(0..96))];
    for _ in 0..4 {
        flips.push(("header".into(), rng.usize(l.header.0..l.header.1)));
    }
    for (i, &(start, len)) in l.signatures.iter().enumerate() {
        for _ in 0..4 {
            flips.push((format!("signature {i}"), start + rng.usize(0..len.min(64))));
        }
        for _ in 0..2 {
            flips.push((format!("signature {i}"), start + rng.usize(0..len)));
        }
    }
    if l.payload_start < bytes.len() {
        flips.push(("payload".into(), rng.usize(l.payload_start..bytes.len())));
    }
    for (n, (part, at)) in flips.into_iter().enumerate() {
        let mut damaged = bytes.clone();
        damaged[at] ^= 1 << rng.u8(0..8);
        let part = format!("{part} ({:02x} to {:02x})", bytes[at], damaged[at]);
        let path = dir.join(format!("{n}-{stem}"));
        std::fs::write(&path, damaged).unwrap();
        cases.push(Case {
            path,
            what: format!("{label} with a bit flipped in its {part} at byte {at}"),
        });
    }
}

#[test]
fn ring_rpgp_and_rpmkeys_agree_on_every_package() {
    let tmp = tempfile::tempdir().unwrap();
    let specs: [(&str, &str, Option<&str>); 5] = [
        ("rsa2k", "rsa2048", None),
        ("rsa4k", "rsa4096", None),
        ("rsa1k", "rsa1024", None),
        ("subkey", "rsa3072", Some("rsa2048")),
        ("ed", "ed25519", None),
    ];
    // RSA-4096 generation takes seconds: all keys at once.
    let keys: Vec<GpgKey> = std::thread::scope(|s| {
        let handles: Vec<_> = specs
            .iter()
            .map(|&(name, algo, sub)| {
                s.spawn(move || match sub {
                    Some(sub) => GpgKey::with_signing_subkey(name, algo, sub),
                    None => GpgKey::new(name, algo),
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ring_of = |keys: &[&GpgKey]| {
        let files: Vec<_> = keys
            .iter()
            .map(|k| (k.name.clone(), std::fs::read(&k.public).unwrap()))
            .collect();
        KeyRing::from_files(&files, &[]).unwrap()
    };

    let rpms = test_rpms();
    let mut bases: Vec<PathBuf> = rpms.clone();
    for (k, (name, _, _)) in keys.iter().zip(specs) {
        bases.extend(k.sign_rpms(&rpms, &tmp.path().join(name)));
    }
    for digest in ["sha1", "sha384", "sha512"] {
        let dir = tmp.path().join(format!("rsa2k-{digest}"));
        bases.extend(keys[0].sign_rpms_with_digest(&rpms[..2], &dir, Some(digest)));
    }
    let damaged = tmp.path().join("damaged");
    std::fs::create_dir(&damaged).unwrap();
    let mut rng = fastrand::Rng::with_seed(29);
    let mut cases = Vec::new();
    for (i, base) in bases.iter().enumerate() {
        let dir = damaged.join(i.to_string());
        std::fs::create_dir(&dir).unwrap();
        variants(base, &dir, &mut rng, &mut cases);
    }
    // createrepo_c's samples: signed by keys we do not have, unsigned, built before rpm 4.14.
    for path in fixture_rpms() {
        let what = format!("createrepo_c {}", path.display());
        cases.push(Case { path, what });
    }
    let paths: Vec<PathBuf> = cases.iter().map(|c| c.path.clone()).collect();

    let mut rings: Vec<(String, Vec<&GpgKey>)> = keys
        .iter()
        .zip(specs)
        .map(|(k, (name, _, _))| (format!("{name}'s key"), vec![k]))
        .collect();
    rings.push(("every key".into(), keys.iter().collect()));

    let mut disagreements = Vec::new();
    let mut fast_accepted = 0;
    let mut accepted = 0;
    for (ring_name, ring_keys) in &rings {
        let ring = ring_of(ring_keys);
        let rpgp = KeyRing {
            keys: ring.keys.iter().map(|k| k.rpgp_only()).collect(),
        };
        let reference = rpmkeys_verdicts(ring_keys, &paths);
        for (case, rpm_ok) in cases.iter().zip(reference) {
            let fast = check_package(&case.path, &ring);
            let slow = check_package(&case.path, &rpgp);
            if fast.is_ok() != slow.is_ok() || fast.is_ok() != rpm_ok {
                disagreements.push(format!(
                    "{} with {ring_name}: ring+rpgp {:?}, rpgp {:?}, rpmkeys -K {}",
                    case.what,
                    fast.as_ref().map(|c| &c.verified_by).map_err(|e| &e.reason),
                    slow.as_ref().map(|c| &c.verified_by).map_err(|e| &e.reason),
                    if rpm_ok { "OK" } else { "NOT OK" }
                ));
            }
            accepted += usize::from(rpm_ok);
            // Signature by signature: ring never says yes where rpgp says no.
            let file = std::fs::File::open(&case.path).unwrap();
            let Ok(headers) = super::header::read_headers(&mut std::io::BufReader::new(file))
            else {
                continue;
            };
            let Ok(md) = PackageMetadata::parse(&mut &headers[..]) else {
                continue;
            };
            let (Ok(header), Ok(sigs)) = (md.header_bytes(), md.raw_signatures()) else {
                continue;
            };
            for sig in &sigs {
                for k in &ring.keys {
                    if k.fast_verifies(&header, sig) {
                        fast_accepted += usize::from(case.what.ends_with(" intact"));
                        assert!(
                            k.rpgp_only().verify_header(&header, sig, None).is_ok(),
                            "ring accepts what rpgp refuses: {} with {}",
                            case.what,
                            k.fingerprint
                        );
                    }
                }
            }
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {} verdicts differ:\n{}",
        disagreements.len(),
        cases.len() * rings.len(),
        disagreements.join("\n")
    );
    // Ring verified the intact packages of the three RSA keys it takes (2,048 bits and up; 8 packages
    // each, the subkey's too, plus 6 with other digests), each with its own key and with all.
    assert_eq!(fast_accepted, (3 * 8 + 6) * 2, "ring verified too few");
    assert!(accepted >= fast_accepted, "{accepted} accepted");
    eprintln!(
        "{} cases × {} key sets: {accepted} accepted by all three, ring verified {fast_accepted}",
        cases.len(),
        rings.len()
    );
}
