//! The catalogue API on the run's backend (PostgreSQL or SQLite): migrations, schema checks,
//! blobs, the sync lock, change notification; and the copy from SQLite to PostgreSQL.

use chantal_common::catalogue::{Catalogue, MIGRATIONS};
use chantal_common::pool::Pool;
use chantal_common::Error;
use chantal_tests::TestDb;

/// An installation with one repository `name` on a `file://` upstream of the test RPMs,
/// initialised but not synced (the upstream lives as long as the returned directory).
fn initialised(name: &str) -> (chantal_tests::Env, tempfile::TempDir) {
    use chantal_tests::repo::{createrepo, test_rpms, upstream_dir};
    let up = upstream_dir();
    createrepo(up.path(), &test_rpms(), &[]);
    let env = chantal_tests::Env::new();
    env.repo(name, &format!("file://{}", up.path().display()), "");
    env.chantal(&["init"]).ok();
    (env, up)
}

#[test]
fn migrations_apply_once_and_are_idempotent() {
    let db = TestDb::new();
    let cat = Catalogue::connect(&db.url).unwrap();
    let status = cat.schema_status().unwrap();
    assert_eq!(status.current, 0);
    assert_eq!(status.pending.len(), MIGRATIONS.len());
    assert!(matches!(
        cat.require_current_schema(),
        Err(Error::SchemaOutdated { current: 0, .. })
    ));

    let applied = cat.migrate().unwrap();
    assert_eq!(applied, MIGRATIONS.to_vec());
    let again = cat.migrate().unwrap();
    assert!(again.is_empty(), "second migrate applied {again:?}");

    let status = cat.schema_status().unwrap();
    assert_eq!(status.current, MIGRATIONS.len() as i64);
    assert!(status.pending.is_empty());
    cat.require_current_schema().unwrap();
    Catalogue::open(&db.url).unwrap();
}

#[test]
fn concurrent_migrations_serialise() {
    let db = TestDb::new();
    let results: Vec<usize> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    Catalogue::connect(&db.url)
                        .unwrap()
                        .migrate()
                        .unwrap()
                        .len()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(results.iter().sum::<usize>(), MIGRATIONS.len());
}

#[test]
fn a_newer_schema_is_refused() {
    let db = TestDb::new();
    let cat = Catalogue::connect(&db.url).unwrap();
    cat.migrate().unwrap();
    db.execute_batch(
        "INSERT INTO chantal_schema_migrations (version, name) VALUES (9999, '9999_future')",
    );
    let err = Catalogue::open(&db.url).unwrap_err().to_string();
    assert!(err.contains("upgrade chantal"), "{err}");
    let err = cat.migrate().unwrap_err().to_string();
    assert!(err.contains("upgrade chantal"), "{err}");
}

#[test]
fn unreachable_database_is_one_line_with_host_and_database() {
    let err = Catalogue::connect("postgresql://chantal@127.0.0.1:1/chantal_db")
        .unwrap_err()
        .to_string();
    assert!(err.contains("'chantal_db' on 127.0.0.1:1"), "{err}");
    assert!(err.to_lowercase().contains("refused"), "{err}");
    assert!(!err.contains('\n'), "{err}");

    let err = Catalogue::connect("host=/nonexistent/socketdir dbname=x user=y")
        .unwrap_err()
        .to_string();
    assert!(err.contains("'x' on /nonexistent/socketdir"), "{err}");
    assert!(!err.contains('\n'), "{err}");
}

#[test]
fn blobs_are_recorded_once() {
    let db = TestDb::new();
    let cat = Catalogue::connect(&db.url).unwrap();
    cat.migrate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pool = Pool::new(dir.path());
    pool.create_dirs().unwrap();
    let placed = pool
        .put_reader(&b"package bytes"[..], "p-1-1.noarch.rpm")
        .unwrap();
    let blob = pool.settle(placed).unwrap();
    cat.record_blob(&blob).unwrap();
    cat.record_blob(&blob).unwrap();
    let rec = cat.blob(&blob.sha256).unwrap().unwrap();
    assert_eq!(rec.size, 13);
    assert_eq!(rec.path, blob.rel_path);
    let zeros = chantal_common::Sha256::parse(&"0".repeat(64)).unwrap();
    assert!(cat.blob(&zeros).unwrap().is_none());
}

#[test]
fn empty_catalogue_lists_nothing() {
    let db = TestDb::new();
    let cat = Catalogue::open(&{
        let c = Catalogue::connect(&db.url).unwrap();
        c.migrate().unwrap();
        db.url.clone()
    })
    .unwrap();
    assert!(cat.repository_summaries().unwrap().is_empty());
    assert!(cat.repository_summary("x").unwrap().is_none());
    assert!(cat.recent_syncs("x", 5).unwrap().is_empty());
    assert!(cat.snapshots(None).unwrap().is_empty());
}

#[test]
fn a_version_tree_matches_what_dnf_reads() {
    use chantal_common::tree::Node;
    let (env, _up) = initialised("t");
    env.chantal(&["repo", "sync", "--repo-id", "t"]).ok();
    let cat = Catalogue::open(&env.db.url).unwrap();
    let tree = cat.version_tree("t", 1).unwrap();
    // The same files, at the same paths, as the test harness's materialised tree.
    let materialised = chantal_tests::dnf::materialize(&env, "t", None);
    let mut on_disk = Vec::new();
    let mut stack = vec![materialised.path().to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p
                    .strip_prefix(materialised.path())
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                on_disk.push((rel, std::fs::metadata(&p).unwrap().len()));
            }
        }
    }
    on_disk.sort();
    let from_tree: Vec<(String, u64)> =
        tree.files().into_iter().map(|(p, l)| (p, l.size)).collect();
    assert_eq!(from_tree, on_disk);
    let repomd = tree.resolve("repodata/repomd.xml").unwrap();
    let Some(Node::File { leaf, .. }) = tree.node(repomd) else {
        panic!("not a file")
    };
    assert!(env.storage().join("data").join(&leaf.pool_path).is_file());
    assert!(leaf.mtime > 1_600_000_000);
}

#[test]
fn database_urls_name_their_backend_or_fail_in_one_line() {
    use chantal_common::catalogue::{BackendKind, Target};
    let err = Catalogue::open("sqlite:///nonexistent-dir/catalog.db")
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "no catalogue at /nonexistent-dir/catalog.db: run `chantal init` first"
    );
    let err = Catalogue::connect("mysql://x@y/z").unwrap_err().to_string();
    assert!(
        err.contains("unsupported database URL scheme 'mysql://'"),
        "{err}"
    );
    for relative in [
        "sqlite://",
        "sqlite://catalog.db",
        "sqlite://var/lib/chantal/catalog.db",
    ] {
        let err = Catalogue::connect(relative).unwrap_err().to_string();
        assert!(err.contains("by its absolute path"), "{err}");
    }
    assert_eq!(
        Target::parse("host=/run/postgresql dbname=chantal").unwrap(),
        Target::Postgres("host=/run/postgresql dbname=chantal".into())
    );
    let db = TestDb::new();
    let cat = Catalogue::connect(&db.url).unwrap();
    let expected = match db.backend() {
        chantal_tests::Backend::Postgres => BackendKind::Postgres,
        chantal_tests::Backend::Sqlite => BackendKind::Sqlite,
    };
    assert_eq!(cat.backend_kind(), expected);
}

#[test]
fn the_sync_lock_is_exclusive_and_released_on_drop_or_death() {
    let db = TestDb::new();
    let cat = Catalogue::connect(&db.url).unwrap();
    cat.migrate().unwrap();
    cat.ensure_repository("r", "rpm").unwrap();
    cat.ensure_repository("another", "rpm").unwrap();
    assert!(!cat.sync_lock_held("r").unwrap());
    let lock = cat
        .try_lock_sync("r", "host-a", 4242)
        .unwrap()
        .expect("first lock");
    assert!(cat.sync_lock_held("r").unwrap());
    // A second handle (as a second process would) is refused and told who holds it.
    let other = Catalogue::connect(&db.url).unwrap();
    assert!(other.sync_lock_held("r").unwrap());
    match other.try_lock_sync("r", "host-b", 1).unwrap() {
        Ok(_) => panic!("second lock granted"),
        Err(holder) => {
            let holder = holder.expect("the holder recorded with the lock");
            assert_eq!((holder.host.as_str(), holder.pid), ("host-a", 4242));
        }
    }
    // Probing never takes the lock from a sync that starts meanwhile.
    assert!(other.sync_lock_held("r").unwrap());
    assert!(other.try_lock_sync("another", "host-b", 1).unwrap().is_ok());
    drop(lock);
    assert!(!other.sync_lock_held("r").unwrap());
    assert!(other.try_lock_sync("r", "host-b", 1).unwrap().is_ok());
}

#[test]
fn a_sync_waits_for_no_one_while_another_holds_the_lock() {
    let (env, _up) = initialised("t");
    let cat = Catalogue::open(&env.db.url).unwrap();
    cat.ensure_repository("t", "rpm").unwrap();
    let lock = cat
        .try_lock_sync("t", "elsewhere", 77)
        .unwrap()
        .ok()
        .unwrap();
    let run = env.chantal(&["repo", "sync", "--repo-id", "t"]);
    assert!(
        run.fails()
            .contains("t is being synced by elsewhere pid 77 since "),
        "{}",
        run.stderr()
    );
    drop(lock);
    env.chantal(&["repo", "sync", "--repo-id", "t"]).ok();
    assert_eq!(env.latest("t"), Some(1));
}

#[test]
fn readers_hear_of_a_new_version() {
    let (env, _up) = initialised("t");
    let cat = Catalogue::open(&env.db.url).unwrap();
    let mut listener = cat.listen_latest().unwrap();
    assert!(!listener
        .wait(std::time::Duration::from_millis(300))
        .unwrap());
    env.chantal(&["repo", "sync", "--repo-id", "t"]).ok();
    let start = std::time::Instant::now();
    let mut heard = false;
    while !heard && start.elapsed() < std::time::Duration::from_secs(10) {
        heard = listener.wait(std::time::Duration::from_secs(1)).unwrap();
    }
    assert!(heard, "no notification of version 1");
}

/// A package row for a blob, with fragments just good enough for the rules.
fn package(sha256: &chantal_common::Sha256, name: &str) -> chantal_common::catalogue::NewPackage {
    chantal_common::catalogue::NewPackage {
        sha256: sha256.clone(),
        nevra: chantal_common::rpm::Nevra::new(name, 0, "1", "1", "noarch"),
        checksum_type: "sha256".into(),
        checksum: sha256.to_string(),
        size_package: 1,
        size_installed: None,
        size_archive: None,
        time_file: None,
        time_build: Some(1_700_000_000),
        sourcerpm: None,
        primary_xml: format!("<package><name>{name}</name></package>"),
        filelists_xml: None,
        other_xml: None,
    }
}

#[test]
fn the_commit_and_cleanup_rules_hold_on_both_backends() {
    use chantal_common::catalogue::{CleanupRun, CommitInput, NewMetadata, Seal};
    use chantal_common::tree_manifest::{TreeManifest, MANIFEST_ASC_PATH, MANIFEST_PATH};
    for db in TestDb::each_backend() {
        let backend = format!("{:?}", db.backend());
        let cat = Catalogue::connect(&db.url).unwrap();
        cat.migrate().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let pool = Pool::new(dir.path());
        pool.create_dirs().unwrap();
        let put = |data: &[u8], name: &str| {
            let placed = pool.put_reader(data, name).unwrap();
            pool.record(&cat, vec![(placed, None)]).unwrap().remove(0)
        };
        let (a, b, repomd) = (
            put(b"a", "a.rpm"),
            put(b"b", "b.rpm"),
            put(b"<r/>", "repomd.xml"),
        );
        cat.insert_packages(
            &mut [package(&a.sha256, "a"), package(&b.sha256, "b")]
                .into_iter()
                .map(Ok),
        )
        .unwrap();
        let id = cat.ensure_repository("r", "rpm").unwrap();
        let sync = cat.start_sync(id, "host", 1).unwrap();
        let metadata = [NewMetadata {
            kind: chantal_common::rpm::MetadataKind::Repomd,
            blob_sha256: repomd.sha256.clone(),
            location_href: "repodata/repomd.xml".into(),
        }];
        let sign =
            |_: &std::path::Path, data: &[u8]| Ok(format!("signed {}", data.len()).into_bytes());
        let write = pool.seal_writer();
        let seal = Seal {
            write: &write,
            sign: None,
        };
        let signed = Seal {
            write: &write,
            sign: Some(&sign),
        };
        let upstream = chantal_common::Sha256::digest(b"upstream");
        let commit_sealed = |content: &[(chantal_common::Sha256, String)], seal: &Seal<'_>| {
            cat.commit_version(CommitInput {
                repository_id: id,
                repository: "r",
                sync_id: sync,
                content,
                metadata: &metadata,
                repomd_revision: None,
                upstream_repomd: Some(&upstream),
                seal,
            })
        };
        let commit = |content: &[(chantal_common::Sha256, String)]| commit_sealed(content, &seal);
        let manifest_of = |version: i64| {
            let tree = cat.version_tree("r", version).unwrap();
            let leaf = |path: &str| match tree.node(tree.resolve(path)?)? {
                chantal_common::tree::Node::File { leaf, .. } => Some(leaf.clone()),
                _ => None,
            };
            let m = leaf(MANIFEST_PATH).expect("a manifest");
            let bytes = std::fs::read(pool.absolute(&m.pool_path)).unwrap();
            let asc = leaf(MANIFEST_ASC_PATH)
                .map(|l| std::fs::read(pool.absolute(&l.pool_path)).unwrap());
            (
                chantal_common::Sha256::digest(&bytes),
                TreeManifest::parse(&bytes).unwrap(),
                asc,
            )
        };
        let at = |sha: &chantal_common::Sha256, href: &str| vec![(sha.clone(), href.to_string())];

        // Numbering, and no version when nothing changed.
        let v1 = commit(&at(&a.sha256, "Packages/a.rpm")).unwrap();
        assert_eq!(
            (v1.version, v1.added, v1.removed),
            (Some(1), 1, 0),
            "{backend}"
        );
        // Each version is sealed in its commit: the manifest lists every other file of the
        // tree, and its sha256 is the tree id.
        let (id1, m1, asc) = manifest_of(1);
        assert_eq!(asc, None, "{backend}");
        assert_eq!(
            cat.tree_ids("r").unwrap(),
            [(1, id1.clone())].into(),
            "{backend}"
        );
        let listed: Vec<(&str, &chantal_common::Sha256, u64)> = m1
            .files
            .iter()
            .map(|f| (f.path.as_str(), &f.sha256, f.size))
            .collect();
        assert_eq!(
            listed,
            [
                ("Packages/a.rpm", &a.sha256, 1),
                ("repodata/repomd.xml", &repomd.sha256, 4)
            ],
            "{backend}"
        );
        assert_eq!(
            (
                m1.repository.as_str(),
                m1.version,
                m1.upstream_repomd_sha256.as_ref()
            ),
            ("r", 1, Some(&upstream)),
            "{backend}"
        );
        // A manifest alone is no change: no version.
        let same = commit(&at(&a.sha256, "Packages/a.rpm")).unwrap();
        assert_eq!(same.version, None, "{backend}");
        let same = commit_sealed(&at(&a.sha256, "Packages/a.rpm"), &signed).unwrap();
        assert_eq!(same.version, None, "{backend}");
        assert_eq!(manifest_of(1).0, id1, "{backend}");
        // A set that is not a tree is refused, whole.
        let bad = commit(&[
            (a.sha256.clone(), "x.rpm".into()),
            (b.sha256.clone(), "x.rpm/y.rpm".into()),
        ]);
        assert!(
            matches!(bad, Err(Error::Layout { .. })),
            "{backend}: {bad:?}"
        );
        // A package the catalogue has no row for is refused.
        let zeros = chantal_common::Sha256::parse(&"0".repeat(64)).unwrap();
        let err = commit(&at(&zeros, "Packages/z.rpm")).unwrap_err();
        assert!(
            err.to_string().contains("have no package row"),
            "{backend}: {err}"
        );
        let v2 = commit_sealed(&at(&b.sha256, "Packages/b.rpm"), &signed).unwrap();
        assert_eq!(
            (v2.version, v2.added, v2.removed),
            (Some(2), 1, 1),
            "{backend}"
        );
        // Version 1 keeps its own manifest; version 2 has one of its own, signed.
        let (id2, m2, asc) = manifest_of(2);
        assert_eq!(manifest_of(1).0, id1, "{backend}");
        assert_ne!(id1, id2, "{backend}");
        assert_eq!(m2.files[0].path, "Packages/b.rpm", "{backend}");
        assert_eq!(m2.files.len(), 2, "{backend}");
        let bytes = m2.to_bytes();
        assert_eq!(
            asc,
            Some(format!("signed {}", bytes.len()).into_bytes()),
            "{backend}"
        );
        assert_eq!(cat.tree_ids("r").unwrap().len(), 2, "{backend}");
        // A signer that fails: nothing is committed.
        let fail = |_: &std::path::Path, _: &[u8]| Err("the key is gone".to_string());
        let failing = Seal {
            write: &write,
            sign: Some(&fail),
        };
        let err = commit_sealed(&at(&a.sha256, "Packages/a.rpm"), &failing).unwrap_err();
        assert_eq!(
            err.to_string(),
            "r: sealing version 3: the key is gone",
            "{backend}"
        );
        assert_eq!(
            cat.repository_summary("r").unwrap().unwrap().latest_version,
            Some(2)
        );

        let mut removed = Vec::new();
        let mut cleanup = |grace: u64| {
            let mut remove = |rel: &str| {
                removed.push(rel.to_string());
                Ok(())
            };
            cat.cleanup(CleanupRun {
                grace: std::time::Duration::from_secs(grace),
                dry_run: false,
                remove: &mut remove,
                stop: &|| false,
                keep_versions_for: &[],
            })
            .unwrap()
        };
        // Version 1 was latest a moment ago: kept, whatever the grace.
        let r = cleanup(0);
        assert_eq!((r.versions, r.serving), (0, 1), "{backend}");
        // A sync reserves a: after the serving grace, version 1 goes but a stays.
        assert_eq!(
            cat.reserve_blobs(&[&a.sha256]).unwrap(),
            [(a.sha256.clone(), true)].into_iter().collect(),
            "{backend}"
        );
        db.execute_batch(&format!(
            "UPDATE repository_versions SET retired_at = {}",
            db.timestamp("2000-01-01 00:00:00")
        ));
        let r = cleanup(3600);
        assert_eq!((r.versions, r.packages, r.blobs), (1, 0, 0), "{backend}");
        // Once a is old and unreserved, its row and file go; b, in latest, stays.
        db.execute_batch(&format!(
            "UPDATE blobs SET created_at = {t}, used_at = {t}",
            t = db.timestamp("2000-01-01 00:00:00")
        ));
        let r = cleanup(3600);
        // a, and version 1's manifest (the failed commit's was never recorded).
        assert_eq!((r.packages, r.blobs), (1, 2), "{backend}");
        assert!(
            removed.iter().any(|p| p.contains(a.sha256.as_str()))
                && removed.iter().any(|p| p.contains(id1.as_str())),
            "{backend}: {removed:?}"
        );
        assert_eq!(cat.tree_ids("r").unwrap(), [(2, id2)].into(), "{backend}");
        assert!(cat.blob(&a.sha256).unwrap().is_none(), "{backend}");
        assert!(cat.blob(&b.sha256).unwrap().is_some(), "{backend}");
        assert_eq!(cat.reserve_blobs(&[&a.sha256]).unwrap().len(), 0);
    }
}

/// Migration 6 on a catalogue that has environments already: the history keeps every row,
/// learns the version each replaced snapshot had, and takes `env unset` rows from then on.
#[test]
fn migration_6_keeps_the_environment_history_and_learns_previous_versions() {
    use chantal_common::catalogue::{PromoteInput, PromoteTarget};
    let db = TestDb::new();
    let postgres = db.backend() == chantal_tests::Backend::Postgres;
    // The catalogue as schema 5 left it.
    db.execute_batch(if postgres {
        "CREATE TABLE chantal_schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
    } else {
        "CREATE TABLE chantal_schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,
             applied_at INTEGER NOT NULL DEFAULT 0) STRICT"
    });
    for m in &MIGRATIONS[..5] {
        db.execute_batch(if postgres { m.postgresql } else { m.sqlite });
        db.execute_batch(&format!(
            "INSERT INTO chantal_schema_migrations (version, name) VALUES ({}, '{}')",
            m.version, m.name
        ));
    }
    db.execute_batch(
        "INSERT INTO repositories (id, name, type, latest_version) VALUES (1, 'r', 'rpm', 2);
         INSERT INTO repository_versions (repository_id, number) VALUES (1, 1), (1, 2);
         INSERT INTO snapshots (id, repository_id, name, version) VALUES (1, 1, 'a', 1), (2, 1, 'b', 2);
         INSERT INTO promotions (id, environment, source, set_by) VALUES
             (1, 'prod', 'snapshot a', 'u'), (2, 'test', 'snapshot b', 'u'), (3, 'prod', 'snapshot b', 'u');
         INSERT INTO environment_history (promotion_id, repository_id, snapshot_name, version, previous_name)
             VALUES (1, 1, 'a', 1, NULL), (2, 1, 'b', 2, NULL), (3, 1, 'b', 2, 'a');
         INSERT INTO environments (environment, repository_id, snapshot_id, promotion_id)
             VALUES ('prod', 1, 2, 3), ('test', 1, 2, 2);",
    );
    if postgres {
        // Explicit ids leave the sequences behind.
        db.execute_batch("SELECT setval('promotions_id_seq', 3)");
    }
    let cat = Catalogue::connect(&db.url).unwrap();
    let applied = cat.migrate().unwrap();
    assert_eq!(applied.len(), MIGRATIONS.len() - 5);
    let prod = cat.environment_history("prod").unwrap();
    assert_eq!(prod.len(), 2);
    assert_eq!(prod[0].changes[0].previous.as_deref(), Some("a"));
    assert_eq!(prod[0].changes[0].previous_version, Some(1));
    assert_eq!(prod[1].changes[0].previous_version, None);
    assert_eq!(
        cat.environment_history("test").unwrap()[0].changes[0].version,
        Some(2)
    );
    // An undo now knows what it restores, and an unset is recorded.
    let undo = cat
        .promote(PromoteInput {
            environment: "prod",
            target: PromoteTarget::Previous,
            repositories: &[],
            exact: false,
            set_by: "u",
        })
        .unwrap();
    assert_eq!(undo.changes[0].snapshot.as_deref(), Some("a"));
    assert_eq!(undo.changes[0].previous_version, Some(2));
    let unset = cat
        .promote(PromoteInput {
            environment: "test",
            target: PromoteTarget::Unset,
            repositories: &[],
            exact: false,
            set_by: "u",
        })
        .unwrap();
    assert_eq!(unset.changes[0].snapshot, None);
    assert!(cat.environments(Some("test")).unwrap().is_empty());
}

/// The schema is written three times: the PostgreSQL migrations, the SQLite ones, and the
/// copy's table list (`db migrate --to`). Freshly migrated, both backends have the same tables
/// and columns, and the copy carries every one of them (a column it missed would be dropped
/// silently by the copy).
#[test]
fn both_schemas_and_the_copy_agree() {
    use std::collections::BTreeSet;
    let [pg, lite] = TestDb::each_backend();
    let columns = |db: &TestDb| -> BTreeSet<(String, String)> {
        Catalogue::connect(&db.url).unwrap().migrate().unwrap();
        let rows = match db.backend() {
            chantal_tests::Backend::Postgres => db.query(
                "SELECT table_name, column_name FROM information_schema.columns
                  WHERE table_schema = current_schema()",
                &[],
            ),
            chantal_tests::Backend::Sqlite => db.query(
                "SELECT t.name, c.name FROM sqlite_schema t, pragma_table_info(t.name) c
                  WHERE t.type = 'table' AND t.name NOT LIKE 'sqlite_%'",
                &[],
            ),
        };
        rows.into_iter()
            .map(|r| (r[0].text(), r[1].text()))
            // The schema's own bookkeeping is not catalogue content.
            .filter(|(t, _)| t != "chantal_schema_migrations")
            .collect()
    };
    let (on_pg, on_sqlite) = (columns(&pg), columns(&lite));
    assert_eq!(
        on_pg.symmetric_difference(&on_sqlite).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "columns only one backend has"
    );
    let copied: BTreeSet<(String, String)> = chantal_common::catalogue::copy::copied_tables()
        .into_iter()
        .flat_map(|(t, cols)| {
            cols.into_iter()
                .map(move |c| (t.to_string(), c.to_string()))
        })
        .collect();
    assert_eq!(
        on_pg.symmetric_difference(&copied).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "columns the copy does not carry (or carries but the schema lacks)"
    );
}

/// Rows that may conflict are inserted once per key on both backends, whether they are few
/// (PostgreSQL sends them as arrays) or many (PostgreSQL streams them through a staging
/// table once they pass its limit): duplicates within one call, rows there already, and
/// other checksums of the same blobs.
#[test]
fn conflicting_rows_go_in_once_per_key_few_or_many() {
    use chantal_common::catalogue::{KnownBlob, StoredBlob};
    use chantal_common::rpm::ChecksumType;
    use chantal_common::Sha256;
    for db in TestDb::each_backend() {
        let backend = format!("{:?}", db.backend());
        let cat = Catalogue::connect(&db.url).unwrap();
        cat.migrate().unwrap();
        // Past PostgreSQL's array limit (1,024 rows) and well under it, in one catalogue.
        for (round, n) in [(0u32, 3usize), (1, 2_500)] {
            let sha = |i: usize| Sha256::digest(format!("{round}-{i}").as_bytes());
            let sha1 = |i: usize| format!("{:040x}", (u128::from(round) << 64) | i as u128);
            let blob = |i: usize| StoredBlob {
                sha256: sha(i),
                size: i as u64,
                rel_path: format!("sha256/{}", sha(i)),
                written: true,
            };
            // Every blob once with its sha1, the first one again, in one call.
            let mut blobs: Vec<_> = (0..n)
                .map(|i| (blob(i), Some((ChecksumType::Sha1, sha1(i)))))
                .collect();
            blobs.push((blob(0), Some((ChecksumType::Sha1, sha1(0)))));
            cat.record_blobs(&blobs).unwrap();
            cat.record_blobs(&blobs).unwrap();
            let wanted: Vec<String> = (0..n).map(sha1).collect();
            let wanted: Vec<&str> = wanted.iter().map(String::as_str).collect();
            let known = cat.resolve_known(ChecksumType::Sha1, &wanted).unwrap();
            assert_eq!(known.len(), n, "{backend}, {n} rows");
            for i in [0, n / 2, n - 1] {
                let KnownBlob { sha256, size, .. } = &known[&sha1(i)];
                assert_eq!((sha256, *size), (&sha(i), i as i64), "{backend}, {n} rows");
            }

            // The first half has rows already; the second half comes with one package twice.
            let half = n / 2;
            let row = |i: usize, xml: &str| {
                let mut p = package(&sha(i), &format!("p{round}-{i}"));
                p.primary_xml = xml.to_string();
                p
            };
            let before = cat
                .insert_packages(&mut (0..half).map(|i| Ok(row(i, "<first/>"))))
                .unwrap();
            assert_eq!(before, half as u64, "{backend}, {n} rows");
            let mut again: Vec<_> = (0..n).map(|i| row(i, "<second/>")).collect();
            again.push(row(n - 1, "<third/>"));
            let inserted = cat.insert_packages(&mut again.into_iter().map(Ok)).unwrap();
            assert_eq!(inserted, (n - half) as u64, "{backend}, {n} rows");
            let content: Vec<(Sha256, String)> =
                (0..n).map(|i| (sha(i), format!("p/{i}.rpm"))).collect();
            let mut xml = std::collections::HashMap::new();
            cat.for_each_fragment(&content, |f| {
                xml.insert(f.location_href, f.primary_xml);
                Ok(())
            })
            .unwrap();
            assert_eq!(xml.len(), n, "{backend}, {n} rows");
            for i in 0..half {
                assert_eq!(xml[&format!("p/{i}.rpm")], "<first/>", "{backend}, row {i}");
            }
            let last = &xml[&format!("p/{}.rpm", n - 1)];
            assert!(
                ["<second/>", "<third/>"].contains(&last.as_str()),
                "{backend}: {last}"
            );
        }
    }
}
