//! Signing the repomd.xml chantal publishes (`publish.sign`): in process with an OpenPGP
//! secret key file, or by an operator's command (a key in an HSM or a gpg-agent), which gets
//! the file's path and writes the detached armored signature to stdout. Either way the
//! signature is checked against the public key before it is used. The command runs in a
//! process group of its own, with a time limit, and is killed (with whatever it started) when
//! the limit passes or the sync is interrupted.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chantal_common::config::SignConfig;
use pgp::composed::{ArmorOptions, Deserializable, DetachedSignature, SignedSecretKey};
use pgp::crypto::hash::HashAlgorithm;
use pgp::types::{KeyDetails, Password};

use super::KeyRing;
use crate::cancel::Cancel;

/// Most a signing command may write to stdout: an armored signature is a few KiB.
const MAX_SIGNATURE: u64 = 1 << 20;
/// What is kept of its stderr for the error message.
const MAX_STDERR: u64 = 64 << 10;
/// After the command exits, how long its output may take to reach its end (a process it left
/// behind may hold the pipe open; it is killed then).
const OUTPUT_GRACE: Duration = Duration::from_millis(500);
/// How often the command is checked on.
const POLL: Duration = Duration::from_millis(20);

/// Why signing failed.
#[derive(Debug)]
pub enum SignError {
    /// SIGINT or SIGTERM while the command ran: it was killed.
    Interrupted,
    Failed(String),
}

impl From<String> for SignError {
    fn from(s: String) -> Self {
        SignError::Failed(s)
    }
}

impl std::fmt::Display for SignError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SignError::Interrupted => f.write_str("interrupted"),
            SignError::Failed(s) => f.write_str(s),
        }
    }
}
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
    Command {
        command: PathBuf,
        timeout: Duration,
    },
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
                // A missing or wrong passphrase shows now, not at the first commit.
                let locked = match &signer.how {
                    How::Key { key, .. } => match signing_subkey(key) {
                        Some(sub) => sub.key.secret_params().is_encrypted(),
                        None => key.primary_key.secret_params().is_encrypted(),
                    },
                    How::Command { .. } => false,
                };
                if let Err(e) = signer.sign(Path::new("-"), b"chantal", &Cancel::default()) {
                    return Err(match (locked, passphrase_file) {
                        (true, None) => format!(
                            "publish.sign.key {} is protected by a passphrase: put it in a file and name that file in publish.sign.passphrase_file",
                            key.display()
                        ),
                        (true, Some(p)) => format!(
                            "the passphrase in {} (publish.sign.passphrase_file) does not unlock publish.sign.key {}",
                            p.display(),
                            key.display()
                        ),
                        (false, _) => format!("publish.sign.key {}: {e}", key.display()),
                    });
                }
                Ok(signer)
            }
            SignConfig::Command {
                command,
                public_key,
                timeout,
            } => {
                let bytes = read(public_key)?;
                let ring = KeyRing::from_files(&[(public_key.display().to_string(), bytes)], &[])?;
                Ok(RepoSigner {
                    how: How::Command {
                        command: command.clone(),
                        timeout: *timeout,
                    },
                    public_key: ring.armored(),
                    ring,
                })
            }
        }
    }

    /// The armored detached signature of `data`, which is the content of the file at
    /// `path` (the command mode hands the command that path, and kills it when `cancel`
    /// fires).
    pub fn sign(&self, path: &Path, data: &[u8], cancel: &Cancel) -> Result<Vec<u8>, SignError> {
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
            How::Command { command, timeout } => run_command(command, path, *timeout, cancel)?,
        };
        self.ring
            .verify_detached(&armored, data)
            .map_err(|e| format!("the signature made does not verify with the public key: {e}"))?;
        Ok(armored)
    }
}

/// Runs the signing command on `path` and returns what it wrote to stdout. The command gets
/// a process group of its own, so that everything it starts is killed with it: on timeout,
/// on `cancel`, and when it exits while something it left behind still holds its output open.
fn run_command(
    command: &Path,
    path: &Path,
    timeout: Duration,
    cancel: &Cancel,
) -> Result<Vec<u8>, SignError> {
    use std::os::unix::process::CommandExt;
    let name = command.display();
    let mut child = Command::new(command)
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("publish.sign.command {name}: {e}"))?;
    let group = rustix::process::Pid::from_child(&child);
    let kill_group = || {
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
    };
    // Readers on threads of their own, so that a pipe held open by a leftover process never
    // blocks the wait. stdout is read up to its bound (more is a failure, seen at once);
    // stderr's first part is kept and the rest drained, so the command never blocks on it.
    let (out_tx, out_rx) = mpsc::channel();
    let (err_tx, err_rx) = mpsc::channel();
    if let Some(out) = child.stdout.take() {
        std::thread::spawn(move || {
            let _ = out_tx.send(read_capped(out, MAX_SIGNATURE, false));
        });
    }
    if let Some(err) = child.stderr.take() {
        std::thread::spawn(move || {
            let _ = err_tx.send(read_capped(err, MAX_STDERR, true));
        });
    }
    let too_much = || {
        SignError::Failed(format!(
            "publish.sign.command {name} wrote more than {MAX_SIGNATURE} bytes: not a signature"
        ))
    };
    let mut out = None;
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => {
                kill_group();
                let _ = child.wait();
                return Err(format!("publish.sign.command {name}: {e}").into());
            }
        }
        if cancel.is_cancelled() {
            kill_group();
            let _ = child.wait();
            return Err(SignError::Interrupted);
        }
        if out.is_none() {
            out = out_rx.try_recv().ok();
        }
        if matches!(out, Some((_, true))) {
            kill_group();
            let _ = child.wait();
            return Err(too_much());
        }
        if Instant::now() >= deadline {
            kill_group();
            let _ = child.wait();
            return Err(format!(
                "publish.sign.command {name} did not finish within {} s (publish.sign.timeout): killed it",
                timeout.as_secs_f64()
            )
            .into());
        }
        std::thread::sleep(POLL);
    };
    // The command is done; what it started may not be. Whatever still holds the pipes open
    // after a moment is killed, so the output ends.
    let collect = |rx: &mpsc::Receiver<(Vec<u8>, bool)>| -> Option<(Vec<u8>, bool)> {
        match rx.recv_timeout(OUTPUT_GRACE) {
            Ok(r) => Some(r),
            Err(_) => {
                kill_group();
                rx.recv_timeout(OUTPUT_GRACE).ok()
            }
        }
    };
    let out = out.or_else(|| collect(&out_rx));
    let err = collect(&err_rx);
    let stderr = err
        .map(|(e, _)| String::from_utf8_lossy(&e).trim().to_string())
        .unwrap_or_default();
    // More output than a signature is the failure, whatever the status it led to (SIGPIPE
    // once the reader stopped).
    if matches!(out, Some((_, true))) {
        return Err(too_much());
    }
    if !status.success() {
        return Err(format!(
            "publish.sign.command {name} failed ({status}){}{stderr}",
            if stderr.is_empty() { "" } else { ": " }
        )
        .into());
    }
    match out {
        Some((_, true)) => Err(too_much()),
        Some((bytes, false)) => Ok(bytes),
        None => Err(format!(
            "publish.sign.command {name}: its output did not end (something it started holds it open)"
        )
        .into()),
    }
}

/// Reads at most `max` bytes of `r`; returns what it kept and whether there was more. With
/// `drain`, reads on to the end and throws the rest away (so the writer never blocks on a full
/// pipe); without, stops at the first byte too many.
fn read_capped(r: impl Read, max: u64, drain: bool) -> (Vec<u8>, bool) {
    let mut r = r;
    let mut kept = Vec::new();
    let _ = (&mut r).take(max).read_to_end(&mut kept);
    let more = if drain {
        std::io::copy(&mut r, &mut std::io::sink()).unwrap_or(0) > 0
    } else {
        let mut one = [0u8; 1];
        matches!(r.read(&mut one), Ok(1))
    };
    (kept, more)
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
    let key = parsed
        .map_err(|e| super::keys::not_openpgp(bytes, super::keys::Expected::SecretKey, &e))?;
    key.verify_bindings()
        .map_err(|e| format!("invalid self-signatures: {e}"))?;
    let _ = key.fingerprint();
    Ok(key)
}
