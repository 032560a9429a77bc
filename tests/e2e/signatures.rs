//! Trust: package signatures checked at sync (`rpm.gpgcheck`), repomd.xml's signature
//! (`rpm.repo_gpgcheck`), and the keys served with every version. Keys are made by gnupg,
//! packages signed by rpmsign; `rpmkeys -K` is the reference verdict.

use std::path::{Path, PathBuf};

use chantal_tests::http::HttpServer;
use chantal_tests::repo::{createrepo, fixture_rpms, pool_files, test_rpm, upstream_dir};
use chantal_tests::signing::{rpmkeys_ok, GpgKey};
use chantal_tests::{Env, Run};

fn file_url(p: &Path) -> String {
    format!("file://{}", p.display())
}

/// An installation with its catalogue created.
fn initialised() -> Env {
    let env = Env::new();
    env.chantal(&["init"]).ok();
    env
}

fn sync(env: &Env, repo: &str) -> Run {
    env.chantal(&["repo", "sync", "--repo-id", repo])
}

fn gpg_yaml(key: &Path) -> String {
    format!("rpm:\n  gpgcheck: true\n  gpgkeys: [{}]\n", key.display())
}

/// The sha256 of every pool file, for "never got a pool name" checks.
fn pool_shas(env: &Env) -> Vec<String> {
    pool_files(&env.storage())
        .into_iter()
        .map(|(p, _)| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.split('_').next().unwrap().to_string()
        })
        .collect()
}

fn sha256_of(p: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(p).unwrap()))
}

/// Flips one byte of the first occurrence of `needle` in the file (to `replacement`).
fn patch(file: &Path, needle: &[u8], replacement: &[u8]) {
    let mut bytes = std::fs::read(file).unwrap();
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("{needle:?} not in {}", file.display()));
    bytes[at..at + replacement.len()].copy_from_slice(replacement);
    std::fs::write(file, bytes).unwrap();
}

/// One file holding the armored public keys of `keys`, one after another.
fn key_file(keys: &[&GpgKey], path: &Path) -> PathBuf {
    let text: String = keys
        .iter()
        .map(|k| std::fs::read_to_string(&k.public).unwrap())
        .collect();
    std::fs::write(path, text).unwrap();
    path.to_path_buf()
}

fn signed(key: &GpgKey, names: &[&str], dir: &Path) -> Vec<PathBuf> {
    let rpms: Vec<PathBuf> = names.iter().map(|n| test_rpm(n)).collect();
    key.sign_rpms(&rpms, dir)
}

#[test]
fn signed_packages_pass_their_keys_are_served_and_a_resync_reads_nothing() {
    let env = initialised();
    let rsa = GpgKey::new("rsa", "rsa2048");
    let ed = GpgKey::new("ed", "ed25519");
    let work = upstream_dir();
    let mut rpms = signed(&rsa, &["hello-1.0-1.noarch.rpm"], &work.path().join("a"));
    rpms.extend(signed(
        &ed,
        &["lib-1.0-1.x86_64.rpm"],
        &work.path().join("b"),
    ));
    for r in &rpms {
        assert!(rpmkeys_ok(
            if r.to_string_lossy().contains("/a/") {
                &rsa
            } else {
                &ed
            },
            r
        ));
    }
    let up = upstream_dir();
    createrepo(up.path(), &rpms, &[]);
    // Both keys in one file, as vendors ship several keys together.
    let both = key_file(&[&rsa, &ed], &work.path().join("keys.asc"));
    env.repo("r", &file_url(up.path()), &gpg_yaml(&both));

    let out = sync(&env, "r");
    out.ok();
    assert_eq!(env.latest("r"), Some(1));
    // Each file's verification is recorded against the key that made it.
    let rows = env.db.strings(
        "SELECT fingerprint FROM blob_verifications ORDER BY fingerprint",
        &[],
    );
    let mut want = vec![rsa.fingerprint.clone(), ed.fingerprint.clone()];
    want.sort();
    assert_eq!(rows, want);

    // The keys are part of the version, at the top of the tree.
    let key_href = env.db.strings(
        "SELECT m.location_href FROM repository_metadata m WHERE m.type = 'gpgkey'",
        &[],
    );
    assert_eq!(key_href, vec!["RPM-GPG-KEY-r".to_string()]);
    let export = upstream_dir();
    env.write(
        "conf.d/r.yaml",
        &format!(
            "name: r\nupstream:\n  url: {}\n{}publish:\n  latest_path: {}\n",
            file_url(up.path()),
            gpg_yaml(&both),
            export.path().join("latest").display()
        ),
    );
    env.chantal(&["repo", "export", "--repo-id", "r"]).ok();
    let served = std::fs::read_to_string(export.path().join("latest/RPM-GPG-KEY-r")).unwrap();
    assert_eq!(
        served.matches("BEGIN PGP PUBLIC KEY BLOCK").count(),
        2,
        "{served}"
    );

    // snapshot show names each package's signing key.
    env.chantal(&["snapshot", "create", "--repo-id", "r", "--name", "s1"])
        .ok();
    let show = env
        .chantal(&["snapshot", "show", "--name", "s1", "--packages"])
        .ok();
    assert!(show.contains(&rsa.key_id()), "{show}");
    assert!(show.contains(&ed.key_id()), "{show}");
    let json: serde_json::Value = serde_json::from_str(
        &env.chantal(&[
            "snapshot",
            "show",
            "--name",
            "s1",
            "--packages",
            "--format",
            "json",
        ])
        .ok(),
    )
    .unwrap();
    let hello = json["package_list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["nevra"].as_str().unwrap().starts_with("hello"))
        .unwrap();
    assert_eq!(hello["key_ids"], serde_json::json!([rsa.key_id()]));

    // A second repository trusting the same keys over the same files reads none of them:
    // the verifications recorded are per file and key.
    env.repo("r2", &file_url(up.path()), &gpg_yaml(&both));
    let second = env.chantal(&["-v", "repo", "sync", "--repo-id", "r2"]);
    second.ok();
    assert!(
        !second.stderr().contains("signatures: checking"),
        "{}",
        second.stderr()
    );
    // No-op resync: up to date, nothing checked.
    let again = env.chantal(&["-v", "repo", "sync", "--repo-id", "r"]);
    assert!(again.ok().contains("up to date"), "{}", again.stdout());
}

#[test]
fn bad_signatures_are_failed_packages_and_the_previous_latest_stays() {
    let env = initialised();
    let good_key = GpgKey::new("good", "rsa2048");
    let other_key = GpgKey::new("other", "ed25519");
    let work = upstream_dir();
    let good = signed(
        &good_key,
        &["hello-1.0-1.noarch.rpm"],
        &work.path().join("good"),
    );
    let up = upstream_dir();
    createrepo(up.path(), &good, &[]);
    env.repo("r", &file_url(up.path()), &gpg_yaml(&good_key.public));
    sync(&env, "r").ok();
    assert_eq!(env.latest("r"), Some(1));

    // Upstream now adds: an unsigned package, one signed by a key r does not trust, one
    // whose signed header was altered (repodata rebuilt over it, so checksums match), one
    // whose payload was altered after signing.
    let unsigned = test_rpm("lib-1.0-1.x86_64.rpm");
    let foreign = signed(
        &other_key,
        &["tool-2.0-1.x86_64.rpm"],
        &work.path().join("o"),
    );
    let header = signed(
        &good_key,
        &["hello-1.1-1.noarch.rpm"],
        &work.path().join("h"),
    );
    // The description lives in the signed header (the lead's copy of the name does not).
    patch(
        &header[0],
        b"Test package for chantal",
        b"Test package for chantaL",
    );
    let payload = signed(
        &good_key,
        &["tool-3.0-1.x86_64.rpm"],
        &work.path().join("p"),
    );
    {
        let mut bytes = std::fs::read(&payload[0]).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&payload[0], bytes).unwrap();
    }
    for bad in [&header[0], &payload[0]] {
        assert!(
            !rpmkeys_ok(&good_key, bad),
            "rpmkeys accepts {}",
            bad.display()
        );
    }
    let mut all = good.clone();
    all.extend([
        unsigned.clone(),
        foreign[0].clone(),
        header[0].clone(),
        payload[0].clone(),
    ]);
    createrepo(up.path(), &all, &[]);
    let bad_shas: Vec<String> = [&unsigned, &foreign[0], &header[0], &payload[0]]
        .iter()
        .map(|p| sha256_of(p))
        .collect();

    let out = sync(&env, "r");
    assert_eq!(out.code(), Some(1), "{}", out.stderr());
    let err = out.stderr();
    assert!(
        err.contains("4 of 5 packages failed, nothing committed"),
        "{err}"
    );
    assert!(
        err.contains("lib-1.0-1.x86_64") && err.contains("not signed"),
        "{err}"
    );
    assert!(
        err.contains(&format!("signed by unknown key {}", other_key.key_id())),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "key {}: RSA signature does not verify: the header is not the one that was signed",
            good_key.key_id()
        )),
        "{err}"
    );
    // One line per failure, whatever the library's message looked like.
    assert_eq!(
        err.lines().filter(|l| l.starts_with("  ")).count(),
        4,
        "{err}"
    );
    assert!(err.contains("payload does not match"), "{err}");
    assert_eq!(env.latest("r"), Some(1));
    let pool = pool_shas(&env);
    for s in &bad_shas {
        assert!(!pool.contains(s), "a rejected file got a pool name");
    }

    // --allow-partial commits the good ones only, and says so with exit 2.
    let partial = env.chantal(&["repo", "sync", "--repo-id", "r", "--allow-partial"]);
    assert_eq!(partial.code(), Some(2), "{}", partial.stderr());
    assert_eq!(env.latest("r"), Some(2));
    let hrefs = env.latest_hrefs("r");
    assert_eq!(hrefs, vec!["Packages/hello-1.0-1.noarch.rpm".to_string()]);
}

#[test]
fn held_files_are_checked_against_each_repositorys_own_keys_without_a_download() {
    let env = initialised();
    let trusted = GpgKey::new("trusted", "rsa2048");
    let vendor = GpgKey::new("vendor", "rsa2048");
    let work = upstream_dir();
    let rpms = signed(&vendor, &["hello-1.0-1.noarch.rpm"], &work.path().join("v"));
    let up = upstream_dir();
    createrepo(up.path(), &rpms, &[]);
    let server = HttpServer::start(up.path());
    // "open" takes the file without checking; "strict" trusts another key only.
    env.repo("open", &server.url(""), "");
    sync(&env, "open").ok();
    env.repo("strict", &server.url(""), &gpg_yaml(&trusted.public));
    let before = server
        .requests_for("/Packages/hello-1.0-1.noarch.rpm")
        .len();
    // The dry run checks what the pool holds too, and says the sync would reject it.
    let plan = env
        .chantal(&["repo", "sync", "--repo-id", "strict", "--dry-run"])
        .ok();
    assert!(
        plan.contains("1 packages the pool holds fail the signature check: the sync would fail"),
        "{plan}"
    );
    assert!(
        plan.contains(&format!(
            "hello-1.0-1.noarch: signature check failed: signed by unknown key {}",
            vendor.key_id()
        )),
        "{plan}"
    );
    let json: serde_json::Value = serde_json::from_str(
        &env.chantal(&[
            "repo",
            "sync",
            "--repo-id",
            "strict",
            "--dry-run",
            "--format",
            "json",
        ])
        .ok(),
    )
    .unwrap();
    assert_eq!(json[0]["gpgcheck"], true, "{json}");
    assert_eq!(
        json[0]["rejected"].as_array().map(Vec::len),
        Some(1),
        "{json}"
    );
    let out = sync(&env, "strict");
    assert_eq!(out.code(), Some(1), "{}", out.stderr());
    assert!(
        out.stderr()
            .contains(&format!("signed by unknown key {}", vendor.key_id())),
        "{}",
        out.stderr()
    );
    assert_eq!(
        server
            .requests_for("/Packages/hello-1.0-1.noarch.rpm")
            .len(),
        before,
        "the pool's file was downloaded again"
    );
    assert_eq!(env.latest("strict"), None);
    // Trusting the vendor key, the same file passes, still without a download.
    let both = key_file(&[&trusted, &vendor], &work.path().join("both.asc"));
    env.repo("strict", &server.url(""), &gpg_yaml(&both));
    sync(&env, "strict").ok();
    assert_eq!(env.latest("strict"), Some(1));
    assert_eq!(
        server
            .requests_for("/Packages/hello-1.0-1.noarch.rpm")
            .len(),
        before
    );
}

#[test]
fn createrepo_c_signature_shapes_parse_and_an_unknown_key_is_named() {
    let env = initialised();
    let key = GpgKey::new("mine", "ed25519");
    let samples: Vec<PathBuf> = fixture_rpms()
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("-signed-"))
        .collect();
    assert_eq!(samples.len(), 3, "{samples:?}");
    let up = upstream_dir();
    createrepo(up.path(), &samples, &[]);
    env.repo("c", &file_url(up.path()), &gpg_yaml(&key.public));
    let out = sync(&env, "c");
    assert_eq!(out.code(), Some(1), "{}", out.stderr());
    let err = out.stderr();
    assert!(err.contains("3 of 3 packages failed"), "{err}");
    // The RSA sample's key id, as `rpm -qpi` prints it.
    assert!(
        err.contains("signed by unknown key 183f6899719ce7a5"),
        "{err}"
    );
    assert_eq!(err.matches("signed by unknown key").count(), 3, "{err}");
}

#[test]
fn key_configuration_errors_are_clear() {
    let env = initialised();
    let key = GpgKey::new("k", "ed25519");
    let other = GpgKey::new("o", "ed25519");
    let (up, work) = (upstream_dir(), upstream_dir());
    createrepo(
        up.path(),
        &signed(&key, &["hello-1.0-1.noarch.rpm"], work.path()),
        &[],
    );

    // gpgcheck without a key is refused when the configuration is read.
    env.repo("r", &file_url(up.path()), "rpm:\n  gpgcheck: true\n");
    let err = sync(&env, "r").fails();
    assert!(
        err.contains("rpm.gpgcheck") && err.contains("no key to check against"),
        "{err}"
    );

    // A key file that lacks the pinned fingerprint is an error naming the file.
    env.repo(
        "r",
        &file_url(up.path()),
        &format!(
            "{}  gpgkey_fingerprints: [\"{}\"]\n",
            gpg_yaml(&key.public),
            other.fingerprint
        ),
    );
    let err = sync(&env, "r").fails();
    assert!(
        err.contains(&key.public.display().to_string())
            && err.contains("none of the keys rpm.gpgkey_fingerprints pins"),
        "{err}"
    );
    // Pinned right (spaces and case as gpg prints them are fine), it syncs.
    let spaced: String = key
        .fingerprint
        .chars()
        .collect::<Vec<_>>()
        .chunks(4)
        .map(|c| c.iter().collect::<String>().to_lowercase())
        .collect::<Vec<_>>()
        .join(" ");
    env.repo(
        "r",
        &file_url(up.path()),
        &format!(
            "{}  gpgkey_fingerprints: [\"{spaced}\"]\n",
            gpg_yaml(&key.public)
        ),
    );
    sync(&env, "r").ok();

    // A key URL that does not answer fails the sync, naming it; latest stays.
    env.repo(
        "r",
        &file_url(up.path()),
        "rpm:\n  gpgcheck: true\n  gpgkey_url: file:///nonexistent/RPM-GPG-KEY\n",
    );
    let err = sync(&env, "r").fails();
    assert!(err.contains("/nonexistent/RPM-GPG-KEY"), "{err}");
    assert_eq!(env.latest("r"), Some(1));
}

#[test]
fn repo_gpgcheck_needs_a_good_repomd_signature_before_anything_else() {
    let env = initialised();
    let key = GpgKey::new("repo", "rsa2048");
    let other = GpgKey::new("other", "rsa2048");
    let up = upstream_dir();
    createrepo(up.path(), &[test_rpm("hello-1.0-1.noarch.rpm")], &[]);
    let server = HttpServer::start(up.path());
    let yaml = format!(
        "rpm:\n  repo_gpgcheck: true\n  gpgkeys: [{}]\n",
        key.public.display()
    );
    env.repo("r", &server.url(""), &yaml);
    let repomd = up.path().join("repodata/repomd.xml");

    // Missing: refused, and no repodata file was fetched.
    let err = sync(&env, "r").fails();
    assert!(
        err.contains("repomd.xml.asc") && err.contains("HTTP 404"),
        "{err}"
    );
    let fetched_primary = server
        .requests()
        .iter()
        .any(|r| r.path.contains("primary.xml"));
    assert!(
        !fetched_primary,
        "repodata was fetched before the signature was checked"
    );

    // Signed by a key r does not trust: refused.
    other.sign_detached(&repomd);
    let err = sync(&env, "r").fails();
    assert!(
        err.contains("no signature by a trusted key verifies"),
        "{err}"
    );

    // Good: synced, and upstream's signature is served beside its repomd.xml.
    key.sign_detached(&repomd);
    sync(&env, "r").ok();
    let asc = env.db.strings(
        "SELECT location_href FROM repository_metadata WHERE type = 'repomd_asc'",
        &[],
    );
    assert_eq!(asc, vec!["repodata/repomd.xml.asc".to_string()]);

    // A repomd.xml changed after signing: refused, latest stays.
    std::fs::write(
        &repomd,
        std::fs::read_to_string(&repomd)
            .unwrap()
            .replace("<revision>", "<revision>1"),
    )
    .unwrap();
    let err = sync(&env, "r").fails();
    assert!(
        err.contains("no signature by a trusted key verifies"),
        "{err}"
    );
    assert_eq!(env.latest("r"), Some(1));
}

/// dnf with a .repo file written by `chantal repo client-config`, against a private install
/// root: `install NAME`, and what dnf said.
fn dnf_install(stanza: &str, id: &str, name: &str) -> std::process::Output {
    let (reposdir, cache, root) = (upstream_dir(), upstream_dir(), upstream_dir());
    std::fs::write(reposdir.path().join("chantal.repo"), stanza).unwrap();
    std::process::Command::new("dnf")
        .args(["-y", "--releasever=9"])
        .arg(format!("--setopt=reposdir={}", reposdir.path().display()))
        .arg(format!("--setopt=cachedir={}", cache.path().display()))
        .arg(format!("--installroot={}", root.path().display()))
        .arg(format!("--repo={id}"))
        .args(["install", name])
        .output()
        .expect("dnf")
}

#[test]
fn dnf_checks_the_served_keys_and_the_mirrors_repomd_signature_from_latest_and_a_snapshot() {
    use chantal_tests::mount::{wait_for, Mount};
    use chantal_tests::nginx::Nginx;
    let env = initialised();
    let vendor = GpgKey::new("vendor", "rsa2048");
    let mirror = GpgKey::new("mirror", "rsa2048");
    let secret = mirror.export_secret(&env.storage().join("../signing.asc"));
    let work = upstream_dir();
    let rpms = signed(
        &vendor,
        &["hello-1.0-1.noarch.rpm", "hello-1.1-1.noarch.rpm"],
        &work.path().join("v"),
    );
    let up = upstream_dir();
    createrepo(up.path(), &rpms, &[]);
    // newest-only: chantal writes the repodata itself, so only its own signature can apply.
    let yaml = |rpm_extra: &str| {
        format!(
            "{}{rpm_extra}retention:\n  policy: newest-only\npublish:\n  sign:\n    key: {}\n",
            gpg_yaml(&vendor.public),
            secret.display()
        )
    };
    env.repo("r", &file_url(up.path()), &yaml(""));
    env.chantal(&["init"]).ok();
    env.chantal(&[
        "repo",
        "sync",
        "--repo-id",
        "r",
        "--create-snapshot",
        "--snapshot-name",
        "s",
    ])
    .ok();
    let again = env.chantal(&["repo", "sync", "--repo-id", "r"]);
    assert!(again.ok().contains("up to date"), "{}", again.stdout());
    // A changed setting recomputes the version; the same set gets the same repomd.xml (a
    // second later too: its timestamps are upstream's), whose signature is kept, not remade:
    // nothing is committed.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    env.repo(
        "r",
        &file_url(up.path()),
        &yaml("  architectures: [x86_64]\n"),
    );
    env.chantal(&["repo", "sync", "--repo-id", "r"]).ok();
    assert_eq!(env.latest("r"), Some(1));

    let mount = Mount::start(&env, "r/latest/repodata/repomd.xml");
    for f in [
        "RPM-GPG-KEY-r",
        "repodata/repomd.xml.asc",
        "repodata/repomd.xml.key",
    ] {
        assert!(mount.path().join("r/latest").join(f).is_file(), "{f}");
        assert!(mount.path().join("r/snapshots/s").join(f).is_file(), "{f}");
    }
    let nginx = Nginx::shipped(mount.path());
    let base = nginx.url("");
    for (snapshot, id) in [(None, "r"), (Some("s"), "r-s")] {
        let mut args = vec!["repo", "client-config", "--repo-id", "r"];
        match snapshot {
            None => args.extend(["--base-url", &base]),
            // The snapshot's stanza takes its base URL from publish.base_url.
            Some(s) => {
                env.repo(
                    "r",
                    &file_url(up.path()),
                    &format!(
                        "{}  base_url: {base}/\n",
                        yaml("  architectures: [x86_64]\n")
                    ),
                );
                args.extend(["--snapshot", s]);
            }
        }
        let stanza = env.chantal(&args).ok();
        let tree = match snapshot {
            None => format!("baseurl={base}/r/latest/"),
            Some(s) => format!("baseurl={base}/r/snapshots/{s}/"),
        };
        assert!(stanza.contains(&tree), "{stanza}");
        assert!(stanza.contains("gpgcheck=1"), "{stanza}");
        assert!(stanza.contains("repo_gpgcheck=1"), "{stanza}");
        assert!(stanza.contains("repomd.xml.key"), "{stanza}");
        let out = dnf_install(&stanza, id, "hello");
        assert!(
            out.status.success(),
            "{stanza}\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("hello-1.1-1"));
        // Both checks ran: dnf imported both served keys for repomd.xml's signature, and the
        // vendor key again into the fresh install root's rpmdb for the package's.
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(said.matches("Importing GPG key").count() >= 3, "{said}");
        assert!(said.matches("RPM-GPG-KEY-r").count() >= 2, "{said}");
    }

    // The same dnf refuses a repomd.xml altered on the mirror (its pool file rewritten).
    let stanza = env
        .chantal(&[
            "repo",
            "client-config",
            "--repo-id",
            "r",
            "--base-url",
            &base,
        ])
        .ok();
    let repomd = mount.path().join("r/latest/repodata/repomd.xml");
    let text = std::fs::read_to_string(&repomd).unwrap();
    let pool_copy = pool_files(&env.storage())
        .into_iter()
        .map(|(p, _)| p)
        .find(|p| {
            p.to_string_lossy().ends_with("_repomd.xml")
                && std::fs::read_to_string(p).unwrap() == text
        })
        .unwrap();
    // One digit of the revision changed: same size, different content.
    let at = text.find("<revision>").unwrap() + "<revision>".len();
    let mut bytes = text.clone().into_bytes();
    bytes[at] = if bytes[at] == b'1' { b'2' } else { b'1' };
    let altered = String::from_utf8(bytes).unwrap();
    std::fs::write(&pool_copy, &altered).unwrap();
    wait_for("the altered repomd.xml to be served", || {
        std::fs::read_to_string(&repomd).unwrap() == altered
    });
    let out = dnf_install(&stanza, "r", "hello");
    assert!(!out.status.success(), "dnf accepted a tampered repomd.xml");
    drop(nginx);
}

#[test]
fn key_urls_are_fetched_with_the_repositorys_client_certificate_and_ca() {
    use chantal_tests::nginx::{certs, Nginx, NginxOptions};
    let env = initialised();
    let key = GpgKey::new("cdn", "rsa2048");
    let (up, work) = (upstream_dir(), upstream_dir());
    createrepo(
        up.path(),
        &signed(&key, &["hello-1.0-1.noarch.rpm"], work.path()),
        &[],
    );
    std::fs::copy(&key.public, up.path().join("RPM-GPG-KEY-cdn")).unwrap();
    // Like the Red Hat CDN: a private CA, and no file without a client certificate.
    let nginx = Nginx::start(
        up.path(),
        &NginxOptions {
            client_cert: true,
            ..Default::default()
        },
    );
    let c = certs();
    env.repo(
        "cdn",
        &nginx.url("/"),
        &format!(
            "credentials:\n  type: client_cert\n  cert: {}\n  key: {}\n  ca_cert: {}\n\
             rpm:\n  gpgcheck: true\n  gpgkey_url: {}\n",
            c.client_cert.display(),
            c.client_key.display(),
            c.ca.display(),
            nginx.url("/RPM-GPG-KEY-cdn")
        ),
    );
    let out = sync(&env, "cdn").ok();
    assert!(out.starts_with("cdn: version 1: 1 added"), "{out}");
    assert_eq!(
        env.db
            .strings("SELECT fingerprint FROM blob_verifications", &[]),
        vec![key.fingerprint.clone()]
    );
}

/// An executable shell script `sign-repomd` in `dir` with `body`.
fn sign_script(dir: &Path, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let script = dir.join("sign-repomd");
    std::fs::write(&script, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

#[test]
fn a_signing_command_that_fails_fails_the_sync_with_its_message() {
    let env = initialised();
    let up = upstream_dir();
    createrepo(up.path(), &[test_rpm("hello-1.0-1.noarch.rpm")], &[]);
    let key = GpgKey::new("hsm", "ed25519");
    let scripts = tempfile::tempdir().unwrap();
    let script = sign_script(
        scripts.path(),
        "echo \"HSM slot 3: token not present ($1)\" >&2\nexit 4",
    );
    env.repo(
        "r",
        &file_url(up.path()),
        &format!(
            "publish:\n  sign:\n    command: {}\n    public_key: {}\n",
            script.display(),
            key.public.display()
        ),
    );
    let err = sync(&env, "r").fails();
    assert!(err.contains("r: signing repomd.xml:"), "{err}");
    assert!(err.contains("HSM slot 3: token not present ("), "{err}");
    assert_eq!(env.latest("r"), None);
}

#[test]
fn a_hanging_signing_command_is_killed_by_its_timeout_and_by_sigterm() {
    let env = initialised();
    let up = upstream_dir();
    createrepo(up.path(), &[test_rpm("hello-1.0-1.noarch.rpm")], &[]);
    let key = GpgKey::new("hsm", "ed25519");
    let scripts = tempfile::tempdir().unwrap();
    let marker = scripts.path().join("signing");
    // The command hangs, and so does a child that keeps its stdout open.
    let script = sign_script(
        scripts.path(),
        &format!("touch {}\nsleep 600 &\nsleep 600", marker.display()),
    );
    let config = |timeout: &str| {
        format!(
            "publish:\n  sign:\n    command: {}\n    public_key: {}\n{timeout}",
            script.display(),
            key.public.display()
        )
    };
    env.repo("r", &file_url(up.path()), &config(""));
    // SIGTERM while the command runs: exit 130 at once, nothing committed, no lock left.
    let child = env.spawn_sync("r");
    chantal_tests::mount::wait_for("the signing command to start", || marker.exists());
    let signalled = std::time::Instant::now();
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let run = Run(child.wait_with_output().unwrap());
    assert!(signalled.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(run.code(), Some(130), "{}", run.stderr());
    assert!(run.stderr().contains("interrupted"), "{}", run.stderr());
    assert_eq!(env.latest("r"), None);
    // The timeout: one line naming the key, and the next run is not locked out.
    env.repo("r", &file_url(up.path()), &config("    timeout: 1s\n"));
    let started = std::time::Instant::now();
    let err = sync(&env, "r").fails();
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert!(
        err.contains("did not finish within 1 s (publish.sign.timeout): killed it"),
        "{err}"
    );
    assert_eq!(
        err.lines().filter(|l| l.contains("error")).count(),
        1,
        "{err}"
    );
    assert_eq!(env.latest("r"), None);
}

/// `rpm.repo_gpgcheck` where chantal writes the repodata (a filter drops a package): upstream's
/// signature does not cover it, so every sync and `repo show` say that clients cannot check
/// the repodata unless `publish.sign` is set; with it, nothing is said.
#[test]
fn repo_gpgcheck_with_regenerated_repodata_warns_that_clients_cannot_check_it() {
    let env = initialised();
    let key = GpgKey::new("repo", "rsa2048");
    let up = upstream_dir();
    createrepo(
        up.path(),
        &[
            test_rpm("hello-1.0-1.noarch.rpm"),
            test_rpm("lib-1.0-1.x86_64.rpm"),
        ],
        &[],
    );
    key.sign_detached(&up.path().join("repodata/repomd.xml"));
    let yaml = format!(
        "rpm:\n  repo_gpgcheck: true\n  gpgkeys: [{}]\nfilters:\n  exclude: [lib]\n",
        key.public.display()
    );
    env.repo("r", &file_url(up.path()), &yaml);
    let run = sync(&env, "r");
    run.ok();
    assert!(
        run.stderr()
            .contains("clients cannot check this repository's repodata")
            && run.stderr().contains("publish.sign"),
        "{}",
        run.stderr()
    );
    let show = env.chantal(&["repo", "show", "--repo-id", "r"]).ok();
    assert!(show.contains("warning: rpm.repo_gpgcheck:"), "{show}");
    let json: serde_json::Value = serde_json::from_str(
        &env.chantal(&["repo", "show", "--repo-id", "r", "--format", "json"])
            .ok(),
    )
    .unwrap();
    assert_eq!(json["warnings"].as_array().map(Vec::len), Some(1), "{json}");
    let stanza = env
        .chantal(&[
            "repo",
            "client-config",
            "--repo-id",
            "r",
            "--base-url",
            "http://mirror",
        ])
        .ok();
    assert!(stanza.contains("repo_gpgcheck=0"), "{stanza}");
    // -q: nothing but errors, though this sync regenerates again.
    createrepo(
        up.path(),
        &[
            test_rpm("hello-1.0-1.noarch.rpm"),
            test_rpm("hello-1.1-1.noarch.rpm"),
            test_rpm("lib-1.0-1.x86_64.rpm"),
        ],
        &[],
    );
    key.sign_detached(&up.path().join("repodata/repomd.xml"));
    let quiet = env.chantal(&["-q", "repo", "sync", "--repo-id", "r"]);
    quiet.ok();
    assert_eq!(quiet.stderr(), "");
    assert_eq!(env.latest("r"), Some(2));

    // Signed by the mirror: clients check chantal's signature, and nothing is said.
    let mirror = GpgKey::new("mirror", "ed25519");
    let secret = mirror.export_secret(&env.storage().join("../signing.asc"));
    env.repo(
        "r",
        &file_url(up.path()),
        &format!("{yaml}publish:\n  sign:\n    key: {}\n", secret.display()),
    );
    let run = sync(&env, "r");
    run.ok();
    assert!(!run.stderr().contains("cannot check"), "{}", run.stderr());
    let show = env.chantal(&["repo", "show", "--repo-id", "r"]).ok();
    assert!(!show.contains("warning:"), "{show}");
    assert!(
        show.contains(&format!("key {}", secret.display())),
        "{show}"
    );
}
