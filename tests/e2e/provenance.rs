//! Provenance: every version's signed manifest (`.chantal/manifest.json`), served in every
//! tree, and `chantal verify-tree` against a mount, an export and nginx, with the mirror's key
//! and with the wrong one, and after the pool was damaged.

use std::path::Path;

use chantal_tests::mount::Mount;
use chantal_tests::nginx::Nginx;
use chantal_tests::repo::{createrepo, pool_files, test_rpm, upstream_dir};
use chantal_tests::signing::GpgKey;
use chantal_tests::Env;

fn sha256(bytes: &[u8]) -> String {
    chantal_tests::repo::sha256_hex(bytes)
}

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn verify(env: &Env, target: &str, extra: &[&str]) -> chantal_tests::Run {
    let mut args = vec!["verify-tree", target];
    args.extend(extra);
    env.chantal(&args)
}

#[test]
fn manifests_are_served_signed_and_checked_on_a_mount_an_export_and_over_nginx() {
    let up = upstream_dir();
    createrepo(
        up.path(),
        &[
            test_rpm("hello-1.0-1.noarch.rpm"),
            test_rpm("lib-1.0-1.x86_64.rpm"),
        ],
        &[],
    );
    let env = Env::new();
    env.chantal(&["init"]).ok();
    let key = GpgKey::new("mirror", "ed25519");
    let secret = key.export_secret(&env.storage().join("../signing.asc"));
    let export = env.storage().join("../export");
    env.repo(
        "r",
        &format!("file://{}", up.path().display()),
        &format!(
            "publish:\n  latest_path: {}\n  sign:\n    key: {}\n",
            export.join("r").display(),
            secret.display()
        ),
    );
    env.repo("plain", &format!("file://{}", up.path().display()), "");
    env.chantal(&["repo", "sync", "--all"]).ok();
    env.chantal(&["snapshot", "create", "--repo-id", "r", "--name", "jan"])
        .ok();

    // The tree id: snapshot show and repo show agree, in text and JSON.
    let snap = json(
        &env.chantal(&[
            "snapshot",
            "show",
            "--name",
            "jan",
            "--repo-id",
            "r",
            "--format",
            "json",
        ])
        .ok(),
    );
    let tree_id = snap["tree_id"].as_str().unwrap().to_string();
    assert_eq!(tree_id.len(), 64);
    let show = json(
        &env.chantal(&["repo", "show", "--repo-id", "r", "--format", "json"])
            .ok(),
    );
    assert_eq!(show["catalogue"]["latest_tree_id"], tree_id.as_str());
    assert_eq!(
        show["catalogue"]["snapshot_local"][0]["tree_id"],
        tree_id.as_str()
    );
    let text = env
        .chantal(&["snapshot", "show", "--name", "jan", "--repo-id", "r"])
        .ok();
    assert!(
        text.contains(&format!("tree id:        {tree_id}")),
        "{text}"
    );

    let mount = Mount::start(&env, "r/snapshots/jan/.chantal/manifest.json");
    let latest = mount.path().join("r/latest");
    let manifest = std::fs::read(latest.join(".chantal/manifest.json")).unwrap();
    assert_eq!(sha256(&manifest), tree_id);
    // The same bytes in the snapshot, in the export, and for the unsigned repository none.
    assert_eq!(
        std::fs::read(mount.path().join("r/snapshots/jan/.chantal/manifest.json")).unwrap(),
        manifest
    );
    assert_eq!(
        std::fs::read(export.join("r/.chantal/manifest.json")).unwrap(),
        manifest
    );
    assert!(latest.join(".chantal/manifest.json.asc").is_file());
    assert!(!mount
        .path()
        .join("plain/latest/.chantal/manifest.json.asc")
        .exists());
    let m = json(std::str::from_utf8(&manifest).unwrap());
    let paths: Vec<&str> = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(
        paths.contains(&"Packages/hello-1.0-1.noarch.rpm"),
        "{paths:?}"
    );
    assert!(paths.contains(&"repodata/repomd.xml.asc"), "{paths:?}");
    assert!(
        !paths.iter().any(|p| p.starts_with(".chantal")),
        "{paths:?}"
    );
    assert_eq!(m["repository"], "r");
    assert_eq!(m["version"], 1);
    assert_eq!(m["format"], "chantal-manifest/1");
    let hello = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "Packages/hello-1.0-1.noarch.rpm")
        .unwrap();
    let rpm = std::fs::read(test_rpm("hello-1.0-1.noarch.rpm")).unwrap();
    assert_eq!(hello["sha256"], sha256(&rpm).as_str());
    assert_eq!(hello["size"], rpm.len());

    // The mirror's key, as the tree serves it, verifies every copy.
    let pubkey = latest.join("repodata/repomd.xml.key");
    let pubkey = pubkey.to_str().unwrap();
    let nginx = Nginx::shipped(mount.path());
    let over_http = nginx.url("/r/latest/");
    for target in [
        latest.to_str().unwrap(),
        export.join("r").to_str().unwrap(),
        over_http.as_str(),
    ] {
        let out = verify(&env, target, &["--key", pubkey]).ok();
        assert!(
            out.contains(&format!("r version 1, tree id {tree_id}: "))
                && out.contains("match the manifest; signature good"),
            "{target}: {out}"
        );
    }
    let v = json(&verify(&env, &over_http, &["--key", pubkey, "--format", "json"]).ok());
    assert_eq!(
        (
            v["ok"].clone(),
            v["signature"].clone(),
            v["listed_checked"].clone()
        ),
        (true.into(), "good".into(), false.into())
    );
    assert_eq!(v["signed_by"], key.fingerprint.as_str());
    let out = verify(&env, latest.to_str().unwrap(), &[]).ok();
    assert!(out.contains("signature not checked (no --key)"), "{out}");

    // The wrong key, and a key for a tree that has no signature: failures, before any file.
    let other = GpgKey::new("other", "ed25519");
    let err = verify(
        &env,
        latest.to_str().unwrap(),
        &["--key", other.public.to_str().unwrap()],
    )
    .fails();
    assert!(
        err.contains("the manifest's signature does not verify"),
        "{err}"
    );
    let plain = mount.path().join("plain/latest");
    let err = verify(&env, plain.to_str().unwrap(), &["--key", pubkey]).fails();
    assert!(
        err.contains("no signature, and --key asks for one"),
        "{err}"
    );
    let err = verify(&env, up.path().to_str().unwrap(), &[]).fails();
    assert!(err.contains("no manifest"), "{err}");

    // One byte flipped in the pool: every view names the path, and nothing else.
    let pool_file = pool_files(&env.storage())
        .into_iter()
        .map(|(p, _)| p)
        .find(|p| p.to_string_lossy().ends_with("hello-1.0-1.noarch.rpm"))
        .unwrap();
    flip_byte(&pool_file, rpm.len() / 2);
    for target in [latest.to_str().unwrap(), over_http.as_str()] {
        let run = verify(&env, target, &[]);
        assert_eq!(run.code(), Some(1), "{target}: {}", run.stderr());
        let out = run.stdout();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 1, "{target}: {out}");
        assert!(
            lines[0].starts_with("Packages/hello-1.0-1.noarch.rpm: sha256 ")
                && lines[0].ends_with(&format!("the manifest says {}", sha256(&rpm))),
            "{target}: {out}"
        );
        let listed = m["files"].as_array().unwrap().len();
        assert!(
            run.stderr()
                .contains(&format!("1 of {listed} paths do not match the manifest")),
            "{}",
            run.stderr()
        );
    }
    flip_byte(&pool_file, rpm.len() / 2);
    verify(&env, latest.to_str().unwrap(), &[]).ok();

    // A file slipped into the export is found; nginx cannot list, so it is not asked.
    std::fs::write(export.join("r/Packages/evil.rpm"), b"x").unwrap();
    let run = verify(&env, export.join("r").to_str().unwrap(), &[]);
    assert_eq!(run.code(), Some(1));
    assert_eq!(
        run.stdout().trim(),
        "Packages/evil.rpm: not in the manifest"
    );
}

fn flip_byte(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at] ^= 0x55;
    // The pool file is read-only: write in place through a fresh permission.
    let mut perm = std::fs::metadata(path).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perm.set_readonly(false);
    std::fs::set_permissions(path, perm).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// Versions made before chantal wrote manifests get theirs at the next sync of their
/// repository, each its own, with the tree it always had; the sync says so once.
#[test]
fn older_versions_are_sealed_by_the_next_sync() {
    let up = upstream_dir();
    createrepo(up.path(), &[test_rpm("hello-1.0-1.noarch.rpm")], &[]);
    let env = Env::new();
    env.repo("r", &format!("file://{}", up.path().display()), "");
    env.chantal(&["init"]).ok();
    env.chantal(&["repo", "sync", "--repo-id", "r"]).ok();
    env.chantal(&["snapshot", "create", "--repo-id", "r", "--name", "one"])
        .ok();
    createrepo(
        up.path(),
        &[
            test_rpm("hello-1.0-1.noarch.rpm"),
            test_rpm("lib-1.0-1.x86_64.rpm"),
        ],
        &[],
    );
    env.chantal(&["repo", "sync", "--repo-id", "r"]).ok();
    let ids = |env: &Env| {
        let show = json(
            &env.chantal(&["repo", "show", "--repo-id", "r", "--format", "json"])
                .ok(),
        );
        (
            show["catalogue"]["snapshot_local"][0]["tree_id"].clone(),
            show["catalogue"]["latest_tree_id"].clone(),
        )
    };
    let before = ids(&env);
    assert!(before.0.is_string() && before.1.is_string() && before.0 != before.1);
    // As a catalogue of an older chantal has them: no manifest rows.
    env.db.execute_batch(
        "DELETE FROM repository_metadata WHERE type IN ('tree_manifest', 'tree_manifest_asc')",
    );
    assert_eq!(
        ids(&env),
        (serde_json::Value::Null, serde_json::Value::Null)
    );
    let text = env
        .chantal(&["snapshot", "show", "--name", "one", "--repo-id", "r"])
        .ok();
    assert!(
        text.contains("tree id:        - (sync the repository to write it)"),
        "{text}"
    );
    let run = env.chantal(&["repo", "sync", "--repo-id", "r"]);
    assert!(
        run.stderr()
            .contains("r: wrote the manifest of 2 older versions"),
        "{}",
        run.stderr()
    );
    assert!(run.ok().starts_with("r: up to date (version 2)"));
    let after = ids(&env);
    assert!(after.0.is_string() && after.1.is_string() && after.0 != after.1);
    // Each names its own version's files; a second sync writes nothing more.
    let mount = Mount::start(&env, "r/snapshots/one/.chantal/manifest.json");
    for (tree, version, files) in [("snapshots/one", 1, 5), ("latest", 2, 6)] {
        let bytes = std::fs::read(
            mount
                .path()
                .join("r")
                .join(tree)
                .join(".chantal/manifest.json"),
        )
        .unwrap();
        let m = json(std::str::from_utf8(&bytes).unwrap());
        assert_eq!(m["version"], version, "{tree}");
        assert_eq!(m["files"].as_array().unwrap().len(), files, "{tree}: {m}");
        verify(
            &env,
            mount.path().join("r").join(tree).to_str().unwrap(),
            &[],
        )
        .ok();
    }
    let run = env.chantal(&["repo", "sync", "--repo-id", "r"]);
    assert!(
        !run.stderr().contains("wrote the manifest"),
        "{}",
        run.stderr()
    );
}

/// An upstream that lists a package where the manifest is served is refused before anything
/// is downloaded, and the previous latest (with its manifest) stays.
#[test]
fn an_upstream_path_in_the_manifests_directory_is_refused() {
    use chantal_tests::repo::{synth_pkgs, synthetic_repo, SynthOptions};
    let up = upstream_dir();
    let pkgs = synth_pkgs(2, 64);
    synthetic_repo(up.path(), &pkgs[..1], SynthOptions::default());
    let env = Env::new();
    env.repo("r", &format!("file://{}", up.path().display()), "");
    env.chantal(&["init"]).ok();
    env.chantal(&["repo", "sync", "--repo-id", "r"]).ok();
    for href in [".chantal/manifest.json", "./.chantal/x.rpm"] {
        let hostile = [pkgs[0].clone(), pkgs[1].clone().at(href)];
        std::fs::create_dir_all(up.path().join(".chantal")).unwrap();
        synthetic_repo(up.path(), &hostile, SynthOptions::default());
        let err = env.chantal(&["repo", "sync", "--repo-id", "r"]).fails();
        assert!(
            err.contains("refusing to publish the new version")
                && err.contains("lies in .chantal/"),
            "{href}: {err}"
        );
        assert_eq!(env.latest("r"), Some(1));
    }
    let mount = Mount::start(&env, "r/latest/.chantal/manifest.json");
    verify(&env, mount.path().join("r/latest").to_str().unwrap(), &[]).ok();
}
