//! The trust module against committed fixtures (`testdata/`, made once with gpg and rpmsign:
//! test keys only) and createrepo_c's signed samples.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{check_file, check_package, KeyRing, RepoSigner, SignError};
use crate::cancel::Cancel;
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
        .join("../tests/fixtures/createrepo_c/packages")
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
fn files_that_are_not_keys_are_refused_with_their_name_and_what_they_look_like() {
    let secret = std::fs::read(data("ed-secret.asc")).unwrap();
    let signature = std::fs::read(data("data.txt.asc")).unwrap();
    for (bytes, want) in [
        (
            b"hello, this is a text file\n".to_vec(),
            "x: not an OpenPGP public key: it is plain text",
        ),
        (
            b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n".to_vec(),
            "no END line",
        ),
        (
            b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n-----END PGP PUBLIC KEY BLOCK-----\n"
                .to_vec(),
            "x: not an OpenPGP public key: an armored public key that does not parse (damaged?)",
        ),
        (
            Vec::new(),
            "x: not an OpenPGP public key: the file is empty",
        ),
        (
            b"<!DOCTYPE html>\n<html><body>Sign in</body></html>\n".to_vec(),
            "x: not an OpenPGP public key: it looks like an HTML page",
        ),
        (
            b"\n  <HTML><head><title>404</title></head></HTML>".to_vec(),
            "x: not an OpenPGP public key: it looks like an HTML page",
        ),
        (secret, "x: not an OpenPGP public key: it is a secret key"),
        (
            signature,
            "x: not an OpenPGP public key: it is a signature, not a key",
        ),
        (
            vec![0x01, 0xff, 0x00, 0x80],
            "x: not an OpenPGP public key: it is binary data",
        ),
    ] {
        let err = KeyRing::from_files(&[("x".into(), bytes)], &[]).unwrap_err();
        assert!(err.contains(want), "{err}");
        for jargon in ["packet", "IO error", "errored", "header version"] {
            assert!(!err.contains(jargon), "{err}");
        }
    }
}

/// A download hands over the descriptor it wrote, its offset at the end: the check reads the
/// file from its start and leaves that offset where it was.
#[test]
fn an_open_file_is_checked_from_its_start_whatever_its_offset() {
    use std::io::{Seek, SeekFrom, Write};
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("partial.rpm");
    std::fs::copy(data("hello-signed-rsa.rpm"), &copy).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&copy)
        .unwrap();
    let end = f.seek(SeekFrom::End(0)).unwrap();
    let ok = check_file(&f, &ring(&["rsa.asc"])).unwrap();
    assert_eq!(ok.verified_by, fingerprint("rsa.fpr"));
    assert_eq!(f.stream_position().unwrap(), end);
    // One byte more written at that offset is payload the signed digest does not cover.
    f.write_all(b"x").unwrap();
    let err = check_file(&f, &ring(&["rsa.asc"])).unwrap_err();
    assert!(
        err.reason.contains("payload does not match"),
        "{}",
        err.reason
    );
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
    for (bytes, want) in [
        (
            b"garbage".to_vec(),
            "not an OpenPGP signature: it is plain text",
        ),
        (
            b"-----BEGIN PGP SIGNATURE-----\n\nAAAA\n-----END PGP SIGNATURE-----\n".to_vec(),
            "not an OpenPGP signature: an armored signature that does not parse (damaged?)",
        ),
        (
            b"<html><body>Not Found</body></html>".to_vec(),
            "not an OpenPGP signature: it looks like an HTML page",
        ),
        (
            std::fs::read(data("rsa.asc")).unwrap(),
            "not an OpenPGP signature: it is a public key, not a signature",
        ),
    ] {
        let err = r.verify_detached(&bytes, &text).unwrap_err();
        assert!(err.contains(want), "{err}");
        assert!(!err.contains("PacketBodyReader"), "{err}");
    }
}

#[test]
fn a_signing_key_that_is_not_one_is_refused_with_what_it_is() {
    let err = RepoSigner::load(&SignConfig::Key {
        key: data("rsa.asc"),
        passphrase_file: None,
    })
    .err()
    .unwrap();
    assert!(
        err.contains(
            "not an OpenPGP secret key: it is a public key (signing needs the secret key)"
        ),
        "{err}"
    );
}

#[test]
fn the_mirror_signs_in_process_and_checks_what_it_made() {
    let signer = RepoSigner::load(&SignConfig::Key {
        key: data("ed-secret.asc"),
        passphrase_file: None,
    })
    .unwrap();
    let sig = signer
        .sign(Path::new("-"), b"<repomd/>", &Cancel::default())
        .unwrap();
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
    assert!(
        err.contains(&format!(
            "the passphrase in {} (publish.sign.passphrase_file) does not unlock",
            pass.display()
        )),
        "{err}"
    );
    // No passphrase at all: say that the key needs one.
    let err = RepoSigner::load(&SignConfig::Key {
        key: data("locked-secret.asc"),
        passphrase_file: None,
    })
    .err()
    .unwrap();
    assert!(err.contains("is protected by a passphrase"), "{err}");
    assert!(err.contains("publish.sign.passphrase_file"), "{err}");
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
        timeout: Duration::from_secs(60),
    })
    .unwrap();
    let err = signer
        .sign(&data("data.txt"), b"chantal\n", &Cancel::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("token not present"), "{err}");
    // A command whose output is a signature by another key is caught.
    let liar = script("liar", &format!("cat {}", data("data.txt.asc").display()));
    let signer = RepoSigner::load(&SignConfig::Command {
        command: liar,
        public_key: data("ed.asc"),
        timeout: Duration::from_secs(60),
    })
    .unwrap();
    let err = signer
        .sign(&data("data.txt"), b"chantal\n", &Cancel::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not verify"), "{err}");
    // And an honest one passes.
    let honest = script("honest", &format!("cat {}", data("data.txt.asc").display()));
    let signer = RepoSigner::load(&SignConfig::Command {
        command: honest,
        public_key: data("rsa.asc"),
        timeout: Duration::from_secs(60),
    })
    .unwrap();
    assert!(signer
        .sign(&data("data.txt"), b"chantal\n", &Cancel::default())
        .is_ok());
}

/// Whether a process is still alive (a zombie counts as gone).
fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|r| !r.trim_start().starts_with('Z'))
    })
}

#[test]
fn a_signing_command_is_bounded_in_time_output_and_offspring() {
    let dir = tempfile::tempdir().unwrap();
    let script = |name: &str, body: &str| {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.path().join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    };
    let signer = |command: PathBuf, timeout: Duration| {
        RepoSigner::load(&SignConfig::Command {
            command,
            public_key: data("rsa.asc"),
            timeout,
        })
        .unwrap()
    };
    let pidfile = dir.path().join("pid");
    // A command that hangs, and a child of its that hangs too: both are killed at the limit.
    let hang = script(
        "hang",
        &format!("sleep 300 & echo $! > {}; wait", pidfile.display()),
    );
    let started = Instant::now();
    let err = signer(hang, Duration::from_millis(500))
        .sign(&data("data.txt"), b"chantal\n", &Cancel::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("did not finish within 0.5 s"), "{err}");
    assert!(err.contains("publish.sign.timeout"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30));
    let grandchild = std::fs::read_to_string(&pidfile).unwrap();
    let gone = Instant::now() + Duration::from_secs(5);
    while alive(grandchild.trim()) && Instant::now() < gone {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!alive(grandchild.trim()), "the command's child outlived it");

    // A command that signs, exits, and leaves a process holding its stdout: the signature is
    // used, and the leftover is killed.
    std::fs::remove_file(&pidfile).unwrap();
    let leaves = script(
        "leaves",
        &format!(
            "cat {}; (sleep 300; echo late) & echo $! > {}; exit 0",
            data("data.txt.asc").display(),
            pidfile.display()
        ),
    );
    let started = Instant::now();
    signer(leaves, Duration::from_secs(60))
        .sign(&data("data.txt"), b"chantal\n", &Cancel::default())
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(30));
    let left = std::fs::read_to_string(&pidfile).unwrap();
    let gone = Instant::now() + Duration::from_secs(5);
    while alive(left.trim()) && Instant::now() < gone {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !alive(left.trim()),
        "the leftover process outlived the signing"
    );

    // An interrupted sync kills the command.
    let cancel = Cancel::default();
    let later = cancel.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        later.cancel();
    });
    let slow = script("slow", "sleep 300");
    let err = signer(slow, Duration::from_secs(600))
        .sign(&data("data.txt"), b"chantal\n", &cancel)
        .unwrap_err();
    assert!(matches!(err, SignError::Interrupted), "{err}");

    // Endless output is not read into memory.
    let flood = script("flood", "yes chantal");
    let err = signer(flood, Duration::from_secs(60))
        .sign(&data("data.txt"), b"chantal\n", &Cancel::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("wrote more than"), "{err}");
}

#[test]
fn verification_errors_are_one_line() {
    assert_eq!(
        super::package::verify_error("a\n  b: `x`\n c"),
        "a b: `x` c"
    );
}
