//! The trust module against committed fixtures (`testdata/`, made once with gpg and rpmsign:
//! test keys only) and createrepo_c's signed samples.

use std::path::{Path, PathBuf};

use super::{check_package, KeyRing, RepoSigner};
use chantal_common::config::SignConfig;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/trust/testdata")
        .join(name)
}

fn file(name: &str) -> (String, Vec<u8>) {
    (name.to_string(), std::fs::read(data(name)).unwrap())
}

fn fingerprint(name: &str) -> String {
    std::fs::read_to_string(data(name))
        .unwrap()
        .trim()
        .to_string()
}

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures/createrepo_c/packages")
        .join(name)
}

fn ring(files: &[&str]) -> KeyRing {
    let files: Vec<_> = files.iter().map(|f| file(f)).collect();
    KeyRing::from_files(&files, &[]).unwrap()
}

#[test]
fn key_files_armored_with_several_blocks_or_binary() {
    let mut both = std::fs::read(data("rsa.asc")).unwrap();
    both.extend(std::fs::read(data("ed.asc")).unwrap());
    let r = KeyRing::from_files(&[("both".into(), both)], &[]).unwrap();
    assert_eq!(
        r.fingerprints(),
        [fingerprint("rsa.fpr"), fingerprint("ed.fpr")]
    );
    // The served file holds one armored block per key.
    assert_eq!(r.armored().matches("BEGIN PGP PUBLIC KEY BLOCK").count(), 2);
    let binary = ring(&["ed.gpg"]);
    assert_eq!(binary.fingerprints(), [fingerprint("ed.fpr")]);
    // The same key from two files is trusted once.
    assert_eq!(ring(&["ed.asc", "ed.gpg"]).keys.len(), 1);
}

#[test]
fn pins_keep_only_the_named_keys_and_a_file_without_one_is_named() {
    let mut both = std::fs::read(data("rsa.asc")).unwrap();
    both.extend(std::fs::read(data("ed.asc")).unwrap());
    let pinned = KeyRing::from_files(&[("both".into(), both)], &[fingerprint("ed.fpr")]).unwrap();
    assert_eq!(pinned.fingerprints(), [fingerprint("ed.fpr")]);
    let err = KeyRing::from_files(&[file("rsa.asc")], &[fingerprint("ed.fpr")]).unwrap_err();
    assert!(
        err.starts_with("rsa.asc: holds none of the keys rpm.gpgkey_fingerprints pins"),
        "{err}"
    );
    assert!(err.contains(&fingerprint("rsa.fpr")), "{err}");
}

#[test]
fn files_that_are_not_keys_are_refused_with_their_name() {
    for (bytes, want) in [
        (b"hello".to_vec(), "x: "),
        (
            b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n".to_vec(),
            "no END line",
        ),
        (Vec::new(), "x: "),
    ] {
        let err = KeyRing::from_files(&[("x".into(), bytes)], &[]).unwrap_err();
        assert!(err.contains(want), "{err}");
    }
}

#[test]
fn a_signed_package_passes_with_its_key_only() {
    let pkg = data("hello-signed-rsa.rpm");
    let ok = check_package(&pkg, &ring(&["rsa.asc"])).unwrap();
    assert_eq!(ok.verified_by, fingerprint("rsa.fpr"));
    let rsa_id = fingerprint("rsa.fpr")[24..].to_ascii_lowercase();
    assert_eq!(ok.key_ids, std::slice::from_ref(&rsa_id));
    let err = check_package(&pkg, &ring(&["ed.asc"])).unwrap_err();
    assert_eq!(err.reason, format!("signed by unknown key {rsa_id}"));
    assert_eq!(err.key_ids, [rsa_id]);
}

#[test]
fn unsigned_altered_and_unknown_packages_fail_with_the_reason() {
    let r = ring(&["rsa.asc"]);
    let unsigned = sample("empty-0-0.x86_64.rpm");
    assert_eq!(
        check_package(&unsigned, &r).unwrap_err().reason,
        "not signed"
    );
    // createrepo_c's samples: RSA, EdDSA, and a v6 package with both signatures.
    for (name, ids) in [
        ("empty-signed-rsa-0-0.x86_64.rpm", "183f6899719ce7a5"),
        ("empty-signed-eddsa-0-0.x86_64.rpm", "9b34bebb1f1d8f8a"),
        (
            "empty-signed-v6-multiple-0-0.x86_64.rpm",
            "183f6899719ce7a5, 9b34bebb1f1d8f8a",
        ),
    ] {
        let err = check_package(&sample(name), &r).unwrap_err();
        assert_eq!(err.reason, format!("signed by unknown key {ids}"), "{name}");
    }
    // The payload changed after signing: the header verifies, its digest does not match.
    let dir = tempfile::tempdir().unwrap();
    let altered = dir.path().join("p.rpm");
    let mut bytes = std::fs::read(data("hello-signed-rsa.rpm")).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&altered, bytes).unwrap();
    let err = check_package(&altered, &r).unwrap_err();
    assert!(
        err.reason.starts_with("the payload does not match"),
        "{}",
        err.reason
    );
    // Not an RPM at all.
    std::fs::write(&altered, b"not an rpm").unwrap();
    let err = check_package(&altered, &r).unwrap_err();
    assert!(
        err.reason.starts_with("not a readable RPM header"),
        "{}",
        err.reason
    );
}

#[test]
fn detached_signatures_verify_over_their_data_only() {
    let r = ring(&["ed.asc", "rsa.asc"]);
    let asc = std::fs::read(data("data.txt.asc")).unwrap();
    let text = std::fs::read(data("data.txt")).unwrap();
    assert_eq!(
        r.verify_detached(&asc, &text).unwrap(),
        fingerprint("rsa.fpr")
    );
    let err = ring(&["ed.asc"]).verify_detached(&asc, &text).unwrap_err();
    assert!(
        err.starts_with("no signature by a trusted key verifies"),
        "{err}"
    );
    assert!(r.verify_detached(&asc, b"chantaL\n").is_err());
    assert!(r.verify_detached(b"garbage", &text).is_err());
}

#[test]
fn the_mirror_signs_in_process_and_checks_what_it_made() {
    let signer = RepoSigner::load(&SignConfig::Key {
        key: data("ed-secret.asc"),
        passphrase_file: None,
    })
    .unwrap();
    let sig = signer.sign(Path::new("-"), b"<repomd/>").unwrap();
    let public =
        KeyRing::from_files(&[("k".into(), signer.public_key.clone().into_bytes())], &[]).unwrap();
    assert_eq!(
        public.verify_detached(&sig, b"<repomd/>").unwrap(),
        fingerprint("ed.fpr")
    );
    assert!(public.verify_detached(&sig, b"<repomd />").is_err());

    // A key with a passphrase: the right one from a file works, a wrong one fails at load.
    let dir = tempfile::tempdir().unwrap();
    let pass = dir.path().join("pass");
    std::fs::write(&pass, "secret\n").unwrap();
    let locked = |p: &Path| {
        RepoSigner::load(&SignConfig::Key {
            key: data("locked-secret.asc"),
            passphrase_file: Some(p.to_path_buf()),
        })
    };
    assert!(locked(&pass).is_ok());
    std::fs::write(&pass, "wrong\n").unwrap();
    let err = locked(&pass).err().unwrap();
    assert!(err.contains("locked-secret.asc"), "{err}");
}

#[test]
fn a_signing_command_that_fails_or_lies_fails_the_signature() {
    let dir = tempfile::tempdir().unwrap();
    let script = |name: &str, body: &str| {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.path().join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    };
    let failing = script("fail", "echo 'token not present' >&2; exit 3");
    let signer = RepoSigner::load(&SignConfig::Command {
        command: failing,
        public_key: data("rsa.asc"),
    })
    .unwrap();
    let err = signer.sign(&data("data.txt"), b"chantal\n").unwrap_err();
    assert!(err.contains("token not present"), "{err}");
    // A command whose output is a signature by another key is caught.
    let liar = script("liar", &format!("cat {}", data("data.txt.asc").display()));
    let signer = RepoSigner::load(&SignConfig::Command {
        command: liar,
        public_key: data("ed.asc"),
    })
    .unwrap();
    let err = signer.sign(&data("data.txt"), b"chantal\n").unwrap_err();
    assert!(err.contains("does not verify"), "{err}");
    // And an honest one passes.
    let honest = script("honest", &format!("cat {}", data("data.txt.asc").display()));
    let signer = RepoSigner::load(&SignConfig::Command {
        command: honest,
        public_key: data("rsa.asc"),
    })
    .unwrap();
    assert!(signer.sign(&data("data.txt"), b"chantal\n").is_ok());
}

#[test]
fn verification_errors_are_one_line() {
    assert_eq!(
        super::package::verify_error("a\n  b: `x`\n c"),
        "a b: `x` c"
    );
}
