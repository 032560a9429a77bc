//! Real OpenPGP keys and signed RPMs for the tests: gnupg makes the keys, rpmsign signs
//! packages, gpg makes detached signatures (repomd.xml.asc).

use std::path::{Path, PathBuf};
use std::process::Command;

/// A key pair in a private GnuPG home, removed when dropped.
pub struct GpgKey {
    home: tempfile::TempDir,
    pub name: String,
    /// Full primary-key fingerprint, upper-case hex.
    pub fingerprint: String,
    /// The armored public key.
    pub public: PathBuf,
}

impl GpgKey {
    /// A new signing key: `algo` as gpg's `--quick-gen-key` names it (`rsa2048`, `ed25519`).
    pub fn new(name: &str, algo: &str) -> GpgKey {
        GpgKey::generate(name, algo, None)
    }

    /// A primary key that may only certify (`primary`), with a signing subkey (`sub`): gpg
    /// and rpmsign sign with the subkey.
    pub fn with_signing_subkey(name: &str, primary: &str, sub: &str) -> GpgKey {
        GpgKey::generate(name, primary, Some(sub))
    }

    fn generate(name: &str, algo: &str, signing_subkey: Option<&str>) -> GpgKey {
        let home = tempfile::Builder::new()
            .prefix("chantal-gpg-")
            .tempdir()
            .unwrap();
        let uid = format!("{name} <{name}@chantal.test>");
        let key = GpgKey {
            home,
            name: uid.clone(),
            fingerprint: String::new(),
            public: PathBuf::new(),
        };
        key.gpg(&[
            "--passphrase",
            "",
            "--quick-gen-key",
            &uid,
            algo,
            if signing_subkey.is_some() {
                "cert"
            } else {
                "sign"
            },
            "never",
        ]);
        let listing = String::from_utf8(key.gpg(&["--with-colons", "--list-keys", &uid])).unwrap();
        let fingerprint = listing
            .lines()
            .find(|l| l.starts_with("fpr:"))
            .and_then(|l| l.split(':').nth(9))
            .unwrap()
            .to_string();
        if let Some(sub) = signing_subkey {
            key.gpg(&[
                "--passphrase",
                "",
                "--quick-add-key",
                &fingerprint,
                sub,
                "sign",
                "never",
            ]);
        }
        let public = key.home.path().join("public.asc");
        let armored = key.gpg(&["--armor", "--export", &fingerprint]);
        std::fs::write(&public, armored).unwrap();
        GpgKey {
            fingerprint,
            public,
            ..key
        }
    }

    /// The key id `rpm -K` prints: the fingerprint's last 16 hex digits, lower case.
    pub fn key_id(&self) -> String {
        self.fingerprint[self.fingerprint.len() - 16..].to_ascii_lowercase()
    }

    fn gpg(&self, args: &[&str]) -> Vec<u8> {
        let out = Command::new("gpg")
            .arg("--homedir")
            .arg(self.home.path())
            .args(["--batch", "--pinentry-mode", "loopback", "--quiet"])
            .args(args)
            .output()
            .expect("gpg (install gnupg)");
        assert!(
            out.status.success(),
            "gpg {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Writes the armored secret key (no passphrase) to `path`, for `publish.sign.key`.
    pub fn export_secret(&self, path: &Path) -> PathBuf {
        let armored = self.gpg(&[
            "--passphrase",
            "",
            "--armor",
            "--export-secret-keys",
            &self.fingerprint,
        ]);
        std::fs::write(path, armored).unwrap();
        path.to_path_buf()
    }

    /// Copies `rpms` into `dir` and signs the copies with rpmsign; returns their paths.
    pub fn sign_rpms(&self, rpms: &[PathBuf], dir: &Path) -> Vec<PathBuf> {
        self.sign_rpms_with_digest(rpms, dir, None)
    }

    /// [`GpgKey::sign_rpms`] with the signature's hash algorithm named (`sha1`, `sha384`...;
    /// `None`: gpg's choice).
    pub fn sign_rpms_with_digest(
        &self,
        rpms: &[PathBuf],
        dir: &Path,
        digest: Option<&str>,
    ) -> Vec<PathBuf> {
        std::fs::create_dir_all(dir).unwrap();
        let copies: Vec<PathBuf> = rpms
            .iter()
            .map(|r| {
                let to = dir.join(r.file_name().unwrap());
                std::fs::copy(r, &to).unwrap();
                to
            })
            .collect();
        let out = Command::new("rpmsign")
            .arg("--define")
            .arg(format!("_gpg_path {}", self.home.path().display()))
            .arg("--define")
            .arg(format!("_gpg_name {}", self.fingerprint))
            .arg("--define")
            .arg("__gpg /usr/bin/gpg")
            .arg("--define")
            .arg("_gpg_sign_cmd_extra_args --batch")
            .args(
                digest
                    .map(|d| format!("_gpg_digest_algo {d}"))
                    .iter()
                    .flat_map(|d| ["--define", d]),
            )
            .arg("--addsign")
            .args(&copies)
            .output()
            .expect("rpmsign (install rpm)");
        assert!(
            out.status.success(),
            "rpmsign: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        copies
    }

    /// Writes `file.asc`, an armored detached signature of `file`.
    pub fn sign_detached(&self, file: &Path) -> PathBuf {
        let asc = PathBuf::from(format!("{}.asc", file.display()));
        let _ = std::fs::remove_file(&asc);
        self.gpg(&[
            "--local-user",
            &self.fingerprint,
            "--armor",
            "--detach-sign",
            "--output",
            asc.to_str().unwrap(),
            file.to_str().unwrap(),
        ]);
        asc
    }
}

/// A private rpm database holding `keys`, and the `--define` that points rpmkeys at it.
fn rpmdb_with(keys: &[&GpgKey]) -> (tempfile::TempDir, String) {
    let db = tempfile::tempdir().unwrap();
    let dbpath = format!("_dbpath {}", db.path().display());
    for key in keys {
        let import = Command::new("rpmkeys")
            .args(["--define", &dbpath, "--import"])
            .arg(&key.public)
            .output()
            .unwrap();
        assert!(import.status.success(), "rpmkeys --import");
    }
    (db, dbpath)
}

/// `rpmkeys -K` of `rpm` with `key` imported into a private rpm database: the reference
/// verdict (true when rpm calls the signature OK).
pub fn rpmkeys_ok(key: &GpgKey, rpm: &Path) -> bool {
    let (_db, dbpath) = rpmdb_with(&[key]);
    let out = Command::new("rpmkeys")
        .args(["--define", &dbpath, "-K"])
        .arg(rpm)
        .output()
        .unwrap();
    out.status.success()
}

/// `rpmkeys -K` of each of `rpms` with `keys` imported into a private rpm database, in one
/// run: true where rpm finds signatures and calls them and every digest OK (an unsigned
/// package, "digests OK", is false: dnf's gpgcheck refuses it too).
pub fn rpmkeys_verdicts(keys: &[&GpgKey], rpms: &[PathBuf]) -> Vec<bool> {
    let (_db, dbpath) = rpmdb_with(keys);
    let out = Command::new("rpmkeys")
        .args(["--define", &dbpath, "-K"])
        .args(rpms)
        .output()
        .unwrap();
    // One "PATH: VERDICT" line per file, in order; a file rpm cannot read gets "PATH:" and
    // its error on stderr, so the verdict is what lies between one path and the next.
    let stdout = String::from_utf8(out.stdout).unwrap();
    let mut starts = Vec::with_capacity(rpms.len());
    let mut from = 0;
    for rpm in rpms {
        let prefix = format!("{}:", rpm.display());
        let at = from
            + stdout[from..]
                .find(&prefix)
                .unwrap_or_else(|| panic!("rpmkeys -K says nothing of {}", rpm.display()));
        starts.push((at, at + prefix.len()));
        from = at + prefix.len();
    }
    (0..rpms.len())
        .map(|i| {
            let end = starts.get(i + 1).map_or(stdout.len(), |s| s.0);
            stdout[starts[i].1..end].trim() == "digests signatures OK"
        })
        .collect()
}
