//! Upgrading chantal: a catalogue and pool written by an earlier chantal
//! (`tests/fixtures/old-catalogue`, made by its `make.sh` with the binary of the commit in
//! `MADE_BY`) sync as up to date against the same upstream, on both backends, without
//! recomputing anything: no spurious resync after an upgrade, whatever settings decide the
//! repository's versions.

use std::path::Path;

use chantal_tests::{Backend, Env, TestDb};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

/// The fixture's installation, copied: its catalogue and pool as the earlier chantal left
/// them, its upstream and keys, and its repository files naming the copy.
fn installed(fixture: &Path) -> Env {
    let env = Env::sqlite();
    copy_dir(&fixture.join("state"), &env.storage());
    // Empty, so git does not keep it.
    std::fs::create_dir_all(env.storage().join("data/tmp")).unwrap();
    let here = env.dir.path().join("fixture");
    for d in ["upstream", "keys"] {
        copy_dir(&fixture.join(d), &here.join(d));
    }
    for e in std::fs::read_dir(fixture.join("conf/conf.d")).unwrap() {
        let e = e.unwrap();
        let text = std::fs::read_to_string(e.path()).unwrap();
        env.write(
            &format!("conf.d/{}", e.file_name().to_string_lossy()),
            &text.replace("@FIXTURE@", &here.display().to_string()),
        );
    }
    env
}

#[test]
fn a_catalogue_written_before_the_upgrade_syncs_as_up_to_date() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/old-catalogue");
    let old = installed(&fixture);
    let repos = ["plain", "signed", "trusted", "tuned"];
    for r in repos {
        assert_eq!(old.latest(r), Some(1), "{r}");
    }
    // Upgrading chantal: the new schema first, as the installation notes say.
    let out = old.chantal(&["db", "migrate"]).ok();
    assert!(out.contains("0007_package_search"), "{out}");
    let pg;
    let env = if chantal_tests::db::backend() == Backend::Postgres {
        // The same catalogue, copied into PostgreSQL by this chantal, and used from there
        // (with the pool and upstream where `old` has them).
        let target = TestDb::postgres();
        old.chantal(&["db", "migrate", "--to", &target.url]).ok();
        pg = Env::with_db(target);
        std::fs::remove_dir_all(pg.dir.path().join("conf.d")).unwrap();
        copy_dir(
            &old.dir.path().join("conf.d"),
            &pg.dir.path().join("conf.d"),
        );
        pg.write(
            "config.yaml",
            &format!(
                "include: conf.d/*.yaml\nstorage:\n  base_path: {}\n{}",
                old.storage().display(),
                pg.database_yaml()
            ),
        );
        &pg
    } else {
        &old
    };
    let run = env.chantal(&["repo", "sync", "--all"]);
    let out = run.ok();
    let out_full = &run.0;
    for r in repos {
        assert!(
            out.contains(&format!("{r}: up to date (version 1)")),
            "{r} was not up to date after the upgrade:\n{out}"
        );
        assert_eq!(env.latest(r), Some(1), "{r}");
    }
    // Up to date without recomputing anything: the settings this chantal records are the
    // ones the earlier chantal recorded, so repomd.xml and the settings matched and nothing was
    // parsed (a version recomputed equal to latest would also say "up to date").
    let recorded = |r: &str| {
        env.db.strings(
            "SELECT h.settings FROM sync_history h JOIN repositories r ON r.id = h.repository_id
              WHERE r.name = $1 ORDER BY h.id",
            &[chantal_tests::Param::Text(r)],
        )
    };
    for r in repos {
        let settings = recorded(r);
        assert_eq!(settings.len(), 2, "{r}: {settings:?}");
        assert_eq!(
            settings[0], settings[1],
            "{r}: the recorded settings changed"
        );
    }
    let log = String::from_utf8_lossy(&out_full.stderr).into_owned();
    assert!(
        !log.contains("packages upstream"),
        "repodata was parsed again:\n{log}"
    );
    assert_eq!(
        env.query_i64("SELECT count(*) FROM repository_versions"),
        Some(4),
        "no version was made"
    );
}
