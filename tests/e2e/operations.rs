//! Running chantal as a service: `chantal status` as a health check, `pool verify` finding
//! and repairing damage, `db backup`.

use std::path::{Path, PathBuf};
use std::process::Command;

use chantal_tests::db::Backend;
use chantal_tests::http::HttpServer;
use chantal_tests::mount::wait_for;
use chantal_tests::repo::{random_bytes, synthetic_repo, up, upstream_dir, SynthOptions, SynthPkg};
use chantal_tests::Env;

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn repo_status<'a>(v: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    v["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {v}"))
}

#[test]
fn status_is_a_health_check() {
    let dir = upstream_dir();
    up(
        dir.path(),
        &["hello-1.0-1.noarch.rpm", "lib-1.0-1.x86_64.rpm"],
    );
    let env = Env::new();
    env.download("  retries: 0\n");
    env.environments(&["prod"]);
    env.repo("good", &format!("file://{}", dir.path().display()), "");
    env.repo("off", "http://127.0.0.1:9/off", "enabled: false\n");
    env.chantal(&["init"]).ok();

    // Nothing synced yet: unhealthy, and says why.
    let run = env.chantal(&["status"]);
    assert_eq!(run.code(), Some(1), "{}", run.stdout());
    let out = run.stdout();
    assert!(out.contains("good: no sync has ever ended well"), "{out}");
    assert!(out.contains("disabled"), "{out}");

    env.sync_snapshot("good", "s1");
    env.promote("prod", "s1");
    let out = env.chantal(&["status"]).ok();
    assert!(
        out.contains("healthy: every enabled repository synced well within 2d"),
        "{out}"
    );
    let v = json(&env.chantal(&["status", "--format", "json"]).ok());
    assert_eq!(v["healthy"], true);
    let good = repo_status(&v, "good");
    assert_eq!(good["state"], "ok");
    assert_eq!(good["latest_version"], 1);
    assert_eq!(good["packages"], 2);
    assert_eq!(good["snapshots"], 1);
    assert_eq!(good["environments"], serde_json::json!(["prod=s1"]));
    assert_eq!(good["last_attempt"]["status"], "success");
    assert_eq!(repo_status(&v, "off")["state"], "disabled");
    let pool_files = env.query_i64("SELECT count(*) FROM blobs").unwrap();
    assert_eq!(v["pool"]["files"], pool_files);
    let db = json(&env.chantal(&["db", "status", "--format", "json"]).ok());
    assert_eq!(v["catalogue"]["schema_version"], db["schema_version"]);

    // A success older than --max-age is stale.
    let run = env.chantal(&["status", "--max-age", "0"]);
    assert_eq!(run.code(), Some(1));
    assert!(run.stdout().contains("stale"), "{}", run.stdout());

    // The upstream breaks: failing since the first failed run, with its error; the next
    // good run clears it.
    std::fs::remove_file(dir.path().join("repodata/repomd.xml")).unwrap();
    env.chantal(&["repo", "sync", "--repo-id", "good"]).fails();
    env.chantal(&["repo", "sync", "--repo-id", "good"]).fails();
    let first_failure = env
        .db
        .strings("SELECT h.status FROM sync_history h ORDER BY h.id", &[]);
    assert_eq!(first_failure, ["success", "failed", "failed"]);
    let run = env.chantal(&["status", "--format", "json"]);
    assert_eq!(run.code(), Some(1));
    let v = json(&run.stdout());
    let good = repo_status(&v, "good");
    assert_eq!(good["state"], "failing");
    assert_eq!(good["healthy"], false);
    assert!(
        good["failing_since"].as_str().unwrap()
            < good["last_attempt"]["started_at"].as_str().unwrap()
    );
    assert!(
        good["last_attempt"]["error"]
            .as_str()
            .unwrap()
            .contains("repomd.xml"),
        "{good}"
    );
    // What it still serves is reported as before.
    assert_eq!(good["latest_version"], 1);
    let out = env.chantal(&["status"]).stdout();
    assert!(
        out.contains("failing since") && out.contains("good: last sync failed: "),
        "{out}"
    );

    up(
        dir.path(),
        &["hello-1.0-1.noarch.rpm", "lib-1.0-1.x86_64.rpm"],
    );
    env.chantal(&["repo", "sync", "--repo-id", "good"]).ok();
    env.chantal(&["status"]).ok();
}

#[test]
fn status_shows_a_sync_under_way_and_one_that_died() {
    let root = upstream_dir();
    let pkgs = vec![SynthPkg::new("big", "noarch", random_bytes(6 << 20, 3))];
    synthetic_repo(root.path(), &pkgs, SynthOptions::default());
    let server = HttpServer::start(root.path());
    let env = Env::new();
    env.repo("slow", &server.url(""), "");
    env.chantal(&["init"]).ok();
    env.chantal(&["repo", "sync", "--repo-id", "slow"]).ok();
    // A new package upstream, served slowly.
    let pkgs = vec![
        pkgs[0].clone(),
        SynthPkg::new("bigger", "noarch", random_bytes(6 << 20, 4)),
    ];
    synthetic_repo(root.path(), &pkgs, SynthOptions::default());
    server.throttle(Some(1 << 20));
    let mut child = env.spawn_sync("slow");
    wait_for("a partial download", || env.partial_bytes() > 1 << 20);
    let v = json(&env.chantal(&["status", "--format", "json"]).ok());
    let slow = repo_status(&v, "slow");
    assert_eq!(slow["state"], "ok", "judged by the run before: {slow}");
    assert_eq!(slow["syncing"]["pid"], child.id());
    let out = env.chantal(&["status"]).ok();
    assert!(out.contains("being synced by "), "{out}");
    assert!(out.contains(&format!("(pid {})", child.id())), "{out}");

    Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    let run = env.chantal(&["status", "--format", "json"]);
    assert_eq!(run.code(), Some(1));
    let v = json(&run.stdout());
    let slow = repo_status(&v, "slow");
    assert_eq!(slow["state"], "failing", "{slow}");
    assert_eq!(slow["syncing"], serde_json::Value::Null);
    assert_eq!(slow["last_attempt"]["status"], "interrupted");
}

fn pool_path(env: &Env, name_part: &str) -> PathBuf {
    let like = format!("%{name_part}%");
    let rel = env
        .db
        .strings(
            "SELECT path FROM blobs WHERE path LIKE $1",
            &[like.as_str().into()],
        )
        .pop()
        .unwrap_or_else(|| panic!("no pool file like {name_part}"));
    env.storage().join("data").join(rel)
}

fn flip_byte(path: &Path, at: u64) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8];
    f.seek(SeekFrom::Start(at)).unwrap();
    f.read_exact(&mut b).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(&[b[0] ^ 0x01]).unwrap();
}

#[test]
fn pool_verify_finds_damage_and_repair_restores_it_from_upstream() {
    let dir = upstream_dir();
    up(
        dir.path(),
        &[
            "hello-1.0-1.noarch.rpm",
            "lib-1.0-1.x86_64.rpm",
            "tool-2.0-1.aarch64.rpm",
        ],
    );
    let env = Env::new();
    env.repo("r", &format!("file://{}", dir.path().display()), "");
    env.chantal(&["init"]).ok();
    env.sync_snapshot("r", "s1");
    // Version 2 drops tool: it stays only in version 1, the snapshot s1.
    up(
        dir.path(),
        &["hello-1.0-1.noarch.rpm", "lib-1.0-1.x86_64.rpm"],
    );
    env.chantal(&["repo", "sync", "--repo-id", "r"]).ok();

    let out = env.chantal(&["pool", "verify"]).ok();
    assert!(
        out.contains("0 missing, 0 wrong size, 0 wrong hash, 0 unreadable, 0 unreferenced"),
        "{out}"
    );

    let hello = pool_path(&env, "hello-1.0-1");
    let lib = pool_path(&env, "lib-1.0-1");
    let tool = pool_path(&env, "tool-2.0-1");
    let primary = pool_path(&env, "primary.xml");
    flip_byte(&hello, 1000);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&lib)
        .unwrap()
        .set_len(100)
        .unwrap();
    std::fs::remove_file(&primary).unwrap();
    flip_byte(&tool, 10);
    let stray = env.storage().join("data/sha256/00/00");
    std::fs::create_dir_all(&stray).unwrap();
    std::fs::write(stray.join("00aa_stray.rpm"), b"stray").unwrap();

    let run = env.chantal(&["pool", "verify", "--format", "json"]);
    assert_eq!(run.code(), Some(1), "{}", run.stdout());
    let v = json(&run.stdout());
    let problem = |path: &Path| -> String {
        let rel = path.strip_prefix(env.storage().join("data")).unwrap();
        v["problems"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["path"] == rel.to_str().unwrap())
            .map(|p| p["problem"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("{} not reported: {v}", rel.display()))
    };
    assert_eq!(problem(&hello), "wrong-hash");
    assert_eq!(problem(&lib), "wrong-size");
    assert_eq!(problem(&primary), "missing");
    assert_eq!(problem(&tool), "wrong-hash");
    assert_eq!(problem(&stray.join("00aa_stray.rpm")), "unreferenced");
    assert_eq!(v["problems"].as_array().unwrap().len(), 5, "{v}");
    assert_eq!(v["ok"], false);

    // Only what a repository references, and a sample: no look for unreferenced files.
    let run = env.chantal(&["pool", "verify", "--repo-id", "r", "--sample", "100"]);
    assert_eq!(run.code(), Some(1));
    assert!(!run.stdout().contains("UNREFERENCED"), "{}", run.stdout());
    let err = env
        .chantal(&["pool", "verify", "--repo-id", "nope"])
        .fails();
    assert!(err.contains("unknown repository nope"), "{err}");
    let err = env.chantal(&["pool", "verify", "--sample", "0"]).fails();
    assert!(err.contains("not a percentage"), "{err}");

    // Repair: what latest lists comes back from upstream; tool is in no latest version.
    let run = env.chantal(&["pool", "verify", "--repair"]);
    assert_eq!(run.code(), Some(1), "the stray file and tool remain");
    let out = run.stdout();
    assert!(out.contains("3 repaired"), "{out}");
    assert!(
        out.contains(&format!(
            "repaired from file://{}/Packages/hello-1.0-1.noarch.rpm",
            dir.path().display()
        )),
        "{out}"
    );
    assert!(
        out.contains("not repaired: no configured repository's latest version lists it"),
        "{out}"
    );
    assert!(out.contains("serves r version 1, snapshots s1"), "{out}");
    for path in [&hello, &lib, &primary] {
        let name = path.file_name().unwrap().to_str().unwrap();
        let sha = name.split('_').next().unwrap();
        assert_eq!(
            chantal_tests::repo::sha256_hex(&std::fs::read(path).unwrap()),
            sha,
            "{name}"
        );
    }
    // The damaged copies are kept aside, never deleted.
    let damaged = env.storage().join("data/damaged");
    assert_eq!(std::fs::read_dir(&damaged).unwrap().count(), 2);

    // Left alone: the unrepairable file stays damaged, the stray stays.
    let run = env.chantal(&["pool", "verify"]);
    assert_eq!(run.code(), Some(1));
    let out = run.stdout();
    assert!(
        out.contains("0 missing, 0 wrong size, 1 wrong hash, 0 unreadable, 1 unreferenced"),
        "{out}"
    );
    assert!(stray.join("00aa_stray.rpm").exists());

    // A latest version restored whole still syncs as up to date and serves dnf-sound data.
    let out = env.chantal(&["repo", "sync", "--repo-id", "r"]).ok();
    assert!(out.contains("up to date"), "{out}");
}

#[test]
fn repair_refuses_an_upstream_copy_that_does_not_match() {
    let dir = upstream_dir();
    up(dir.path(), &["hello-1.0-1.noarch.rpm"]);
    let env = Env::new();
    env.repo("r", &format!("file://{}", dir.path().display()), "");
    env.chantal(&["init"]).ok();
    env.chantal(&["repo", "sync", "--repo-id", "r"]).ok();
    let hello = pool_path(&env, "hello-1.0-1");
    std::fs::remove_file(&hello).unwrap();
    // The upstream now serves other bytes under the same name.
    let upstream_file = dir.path().join("Packages/hello-1.0-1.noarch.rpm");
    let mut data = std::fs::read(&upstream_file).unwrap();
    data[500] ^= 0xff;
    std::fs::write(&upstream_file, &data).unwrap();
    let run = env.chantal(&["pool", "verify", "--repair"]);
    assert_eq!(run.code(), Some(1));
    let out = run.stdout();
    assert!(
        out.contains("not repaired: ") && out.contains("mismatch"),
        "{out}"
    );
    assert!(!hello.exists(), "nothing unverified enters the pool");
    assert!(out.contains("serves r version 1 (latest)"), "{out}");
}

#[test]
fn db_backup_copies_the_sqlite_catalogue_and_refers_postgresql_to_pg_dump() {
    let dir = upstream_dir();
    up(
        dir.path(),
        &["hello-1.0-1.noarch.rpm", "lib-1.0-1.x86_64.rpm"],
    );
    let env = Env::new();
    env.repo("r", &format!("file://{}", dir.path().display()), "");
    env.chantal(&["init"]).ok();
    env.chantal(&["repo", "sync", "--repo-id", "r"]).ok();
    let out_dir = tempfile::tempdir().unwrap();
    let target = out_dir.path().join("backup.db");
    let run = env.chantal(&["db", "backup", target.to_str().unwrap()]);
    if env.db.backend() == Backend::Postgres {
        let err = run.fails();
        assert!(err.contains("pg_dump"), "{err}");
        assert!(!target.exists());
        return;
    }
    let out = run.ok();
    assert!(out.starts_with("backed up "), "{out}");
    // The copy is a working catalogue: point a configuration at it.
    let copy = Env::sqlite();
    std::fs::write(
        copy.config(),
        format!(
            "storage:\n  base_path: {}\ndatabase:\n  url: sqlite://{}\ninclude: conf.d/*.yaml\n",
            env.storage().display(),
            target.display()
        ),
    )
    .unwrap();
    copy.repo("r", &format!("file://{}", dir.path().display()), "");
    let v = json(&copy.chantal(&["status", "--format", "json"]).ok());
    assert_eq!(repo_status(&v, "r")["packages"], 2);
    // Again, over the old copy; and into a directory, under the catalogue's name.
    env.chantal(&["db", "backup", target.to_str().unwrap()])
        .ok();
    env.chantal(&["db", "backup", out_dir.path().to_str().unwrap()])
        .ok();
    assert!(out_dir.path().join("catalog.db").is_file());
    let err = env
        .chantal(&[
            "db",
            "backup",
            env.storage().join("catalog.db").to_str().unwrap(),
        ])
        .fails();
    assert!(err.contains("the catalogue itself"), "{err}");
}

/// node_exporter's text format, parsed strictly: every sample's metric was declared by a
/// TYPE line before it, names and labels are well-formed, values are numbers. Returns
/// `name{labels}` → value.
fn parse_exposition(text: &str) -> std::collections::HashMap<String, f64> {
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars().enumerate().all(|(i, c)| {
                c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
            })
    };
    let mut typed = std::collections::HashSet::new();
    let mut samples = std::collections::HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(name_ok(name) && kind == "gauge", "{line}");
            assert!(typed.insert(name.to_string()), "TYPE twice: {line}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            assert!(name_ok(rest.split(' ').next().unwrap()), "{line}");
            continue;
        }
        assert!(!line.starts_with('#') && !line.is_empty(), "{line:?}");
        let (series, value) = line.rsplit_once(' ').unwrap();
        let name = series.split('{').next().unwrap();
        assert!(name_ok(name), "{line}");
        assert!(typed.contains(name), "sample before its TYPE: {line}");
        if let Some(labels) = series.strip_prefix(name).filter(|l| !l.is_empty()) {
            let inner = labels
                .strip_prefix('{')
                .and_then(|l| l.strip_suffix('}'))
                .unwrap();
            for pair in inner.split("\",") {
                let (k, v) = pair.split_once("=\"").unwrap_or_else(|| panic!("{line}"));
                assert!(name_ok(k), "{line}");
                assert!(
                    !v.trim_end_matches('"').contains('"') || v.contains("\\\""),
                    "{line}"
                );
            }
        }
        let v: f64 = value.parse().unwrap_or_else(|_| panic!("{line}"));
        assert!(
            samples.insert(series.to_string(), v).is_none(),
            "twice: {line}"
        );
    }
    samples
}

#[test]
fn metrics_textfile_after_good_and_failed_syncs_and_verify() {
    let dir = upstream_dir();
    up(
        dir.path(),
        &["hello-1.0-1.noarch.rpm", "lib-1.0-1.x86_64.rpm"],
    );
    let env = Env::new();
    let prom = env.dir.path().join("textfile/chantal.prom");
    std::fs::create_dir_all(prom.parent().unwrap()).unwrap();
    env.write(
        "conf.d/00-metrics.yaml",
        &format!(
            "metrics:\n  textfile: {}\ndownload:\n  retries: 0\n",
            prom.display()
        ),
    );
    env.repo("good", &format!("file://{}", dir.path().display()), "");
    env.chantal(&["init"]).ok();
    env.chantal(&["repo", "sync", "--repo-id", "good"]).ok();
    let read = || parse_exposition(&std::fs::read_to_string(&prom).unwrap());
    let m = read();
    let g = |m: &std::collections::HashMap<String, f64>, k: &str| {
        *m.get(k).unwrap_or_else(|| panic!("{k} missing: {m:?}"))
    };
    assert_eq!(
        g(
            &m,
            "chantal_sync_last_status{repository=\"good\",status=\"success\"}"
        ),
        1.0
    );
    assert_eq!(
        g(
            &m,
            "chantal_sync_last_status{repository=\"good\",status=\"failed\"}"
        ),
        0.0
    );
    assert_eq!(
        g(
            &m,
            "chantal_repository_latest_packages{repository=\"good\"}"
        ),
        2.0
    );
    assert_eq!(
        g(&m, "chantal_repository_latest_version{repository=\"good\"}"),
        1.0
    );
    assert_eq!(
        g(&m, "chantal_sync_last_packages_added{repository=\"good\"}"),
        2.0
    );
    assert_eq!(
        g(&m, "chantal_pool_files"),
        env.query_i64("SELECT count(*) FROM blobs").unwrap() as f64
    );
    let success_at = g(
        &m,
        "chantal_sync_last_success_timestamp_seconds{repository=\"good\"}",
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((now - success_at).abs() < 120.0, "{success_at} vs {now}");
    assert!(
        g(
            &m,
            "chantal_sync_last_downloaded_bytes{repository=\"good\"}"
        ) > 0.0
    );
    assert!(
        !m.keys().any(|k| k.starts_with("chantal_pool_verify_")),
        "no verify yet"
    );
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&prom).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o644);

    // A package the metadata lists is gone upstream: the sync fails with one failed package.
    up(
        dir.path(),
        &[
            "hello-1.0-1.noarch.rpm",
            "hello-1.1-1.noarch.rpm",
            "lib-1.0-1.x86_64.rpm",
        ],
    );
    std::fs::remove_file(dir.path().join("Packages/hello-1.1-1.noarch.rpm")).unwrap();
    env.chantal(&["repo", "sync", "--repo-id", "good"]).fails();
    let m = read();
    assert_eq!(
        g(
            &m,
            "chantal_sync_last_status{repository=\"good\",status=\"failed\"}"
        ),
        1.0
    );
    assert_eq!(
        g(
            &m,
            "chantal_sync_last_status{repository=\"good\",status=\"success\"}"
        ),
        0.0
    );
    assert_eq!(
        g(&m, "chantal_sync_last_packages_failed{repository=\"good\"}"),
        1.0
    );
    assert_eq!(
        g(
            &m,
            "chantal_sync_last_success_timestamp_seconds{repository=\"good\"}"
        ),
        success_at,
        "the last success stays where it was"
    );
    assert_eq!(
        g(&m, "chantal_repository_latest_version{repository=\"good\"}"),
        1.0
    );
    // repo show tells the same.
    let show = env
        .chantal(&["repo", "show", "--repo-id", "good", "--format", "json"])
        .ok();
    assert!(show.contains("\"failed\": 1"), "{show}");

    // pool verify adds its figures; a later sync carries them over.
    env.chantal(&["pool", "verify"]).ok();
    let m = read();
    assert_eq!(g(&m, "chantal_pool_verify_errors"), 0.0);
    assert_eq!(
        g(&m, "chantal_pool_verify_files"),
        g(&m, "chantal_pool_files")
    );
    up(
        dir.path(),
        &["hello-1.0-1.noarch.rpm", "lib-1.0-1.x86_64.rpm"],
    );
    env.chantal(&["repo", "sync", "--repo-id", "good"]).ok();
    let m = read();
    assert_eq!(g(&m, "chantal_pool_verify_errors"), 0.0);
    // The same packages as latest: up to date, or a new version if createrepo_c stamped the
    // repodata with another second.
    assert_eq!(
        g(
            &m,
            "chantal_sync_last_status{repository=\"good\",status=\"up-to-date\"}"
        ) + g(
            &m,
            "chantal_sync_last_status{repository=\"good\",status=\"success\"}"
        ),
        1.0,
        "{}",
        std::fs::read_to_string(&prom).unwrap()
    );
    assert_eq!(
        g(&m, "chantal_sync_last_packages_failed{repository=\"good\"}"),
        0.0
    );
    // Nothing but the file itself is left in its directory.
    assert_eq!(
        std::fs::read_dir(prom.parent().unwrap()).unwrap().count(),
        1
    );

    // An unwritable place is a warning, not a failed sync.
    std::fs::remove_dir_all(prom.parent().unwrap()).unwrap();
    let run = env.chantal(&["repo", "sync", "--repo-id", "good"]);
    run.ok();
    assert!(
        run.stderr().contains("metrics.textfile"),
        "{}",
        run.stderr()
    );
}

#[test]
fn json_logs_parse_line_by_line() {
    let dir = upstream_dir();
    up(dir.path(), &["hello-1.0-1.noarch.rpm"]);
    let env = Env::new();
    env.download("  retries: 0\n");
    env.repo("good", &format!("file://{}", dir.path().display()), "");
    env.repo("dead", "http://127.0.0.1:9/none", "");
    env.chantal(&["init"]).ok();
    let run = env.chantal(&["--log-format", "json", "repo", "sync", "--all"]);
    assert_eq!(run.code(), Some(1));
    let stderr = run.stderr();
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}\n{stderr}")))
        .collect();
    assert!(lines.len() >= 3, "{stderr}");
    for l in &lines {
        assert!(
            l["time"].is_string() && l["level"].is_string() && l["message"].is_string(),
            "{l}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l["repo"] == "good" && l["phase"].is_string()),
        "a phase of good's sync: {stderr}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["level"] == "error" && l["message"].as_str().unwrap().contains("dead")),
        "the failure, as JSON: {stderr}"
    );
    // Results stay on standard output, as text.
    assert!(run.stdout().contains("good: version 1"), "{}", run.stdout());
    // The environment variable does the same.
    let run = env
        .chantal_cmd()
        .env("CHANTAL_LOG_FORMAT", "json")
        .args(["repo", "sync", "--repo-id", "dead"])
        .output()
        .unwrap();
    for l in String::from_utf8_lossy(&run.stderr).lines() {
        serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("{e}: {l:?}"));
    }
}

#[test]
fn completions_and_man_pages_need_no_configuration() {
    let bin = chantal_tests::bin("chantal");
    let run = |args: &[&str]| {
        let out = Command::new(&bin)
            .args(["--config", "/nonexistent/config.yaml"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let bash = run(&["completions", "bash"]);
    assert!(bash.contains("chantal") && bash.contains("pool"), "{bash}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("chantal.bash"), &bash).unwrap();
    let ok = Command::new("bash")
        .arg("-n")
        .arg(dir.path().join("chantal.bash"))
        .status()
        .unwrap();
    assert!(ok.success(), "bash -n");
    assert!(run(&["completions", "zsh"]).contains("#compdef chantal"));
    assert!(run(&["completions", "fish"]).contains("complete -c chantal"));
    let out = run(&["manpages", dir.path().join("man").to_str().unwrap()]);
    assert!(out.starts_with("wrote "), "{out}");
    let page = std::fs::read_to_string(dir.path().join("man/chantal-repo-sync.1")).unwrap();
    assert!(page.contains(".TH chantal-repo-sync 1"), "{page}");
    let fs_page = Command::new(chantal_tests::bin("chantal-fs"))
        .arg("--man-page")
        .output()
        .unwrap();
    assert!(fs_page.status.success());
    assert!(String::from_utf8_lossy(&fs_page.stdout).contains(".TH chantal-fs 1"));
}

/// The backup is taken while a sync writes the catalogue (SQLite: a read transaction in WAL
/// mode, which never waits for the writer nor stops it), and is a catalogue of one moment.
#[test]
fn db_backup_while_a_sync_runs() {
    let env = Env::sqlite();
    let root = upstream_dir();
    let pkgs = vec![SynthPkg::new("big", "noarch", random_bytes(4 << 20, 5))];
    synthetic_repo(root.path(), &pkgs, SynthOptions::default());
    let server = HttpServer::start(root.path());
    env.repo("slow", &server.url(""), "");
    env.chantal(&["init"]).ok();
    env.chantal(&["repo", "sync", "--repo-id", "slow"]).ok();
    let more = vec![
        pkgs[0].clone(),
        SynthPkg::new("bigger", "noarch", random_bytes(4 << 20, 6)),
    ];
    synthetic_repo(root.path(), &more, SynthOptions::default());
    server.throttle(Some(1 << 20));
    let child = env.spawn_sync("slow");
    wait_for("a partial download", || env.partial_bytes() > 1 << 20);
    let out_dir = tempfile::tempdir().unwrap();
    let target = out_dir.path().join("during.db");
    env.chantal(&["db", "backup", target.to_str().unwrap()])
        .ok();
    // The sync goes on and commits version 2.
    let run = chantal_tests::Run(child.wait_with_output().unwrap());
    assert!(run.ok().contains("slow: version 2"), "{}", run.stdout());
    // The copy holds version 1 as latest, and its running sync row: the moment it was taken.
    let copy = rusqlite::Connection::open(&target).unwrap();
    let latest: i64 = copy
        .query_row(
            "SELECT latest_version FROM repositories WHERE name = 'slow'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(latest, 1);
    let check: String = copy
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}
