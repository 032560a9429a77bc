//! Prepares catalogue state for the version benchmarks (contrib/bench/versions-bench.sh) and
//! times repodata generation:
//!
//! `bench_versions DATABASE_URL STORAGE CS9_PRIMARY`
//!
//! - repository `cs9`: version 1 = the 17,649 real CS9 AppStream packages (their real primary
//!   fragments), version 2 = the same with every 17th package updated; snapshot `cs9-v1`;
//! - repository `big`: one version of 100,000 generated packages;
//! - then writes repodata for the CS9 set (primary, filelists, other, repomd) and prints the time.
//!
//! Package files are not needed: only catalogue rows and repodata are.

use std::time::Instant;

use chantal_common::catalogue::{Catalogue, CommitInput, NewPackage};
use chantal_common::pool::{Pool, StoredBlob};
use chantal_common::repodata::{generate, Inputs};
use chantal_common::Sha256;

type Error = Box<dyn std::error::Error>;

fn fake_sha(i: u64, salt: &str) -> Sha256 {
    Sha256::digest(format!("{salt}{i}").as_bytes())
}

fn blob(sha: &Sha256, name: &str) -> StoredBlob {
    let hex = sha.as_str();
    StoredBlob {
        sha256: sha.clone(),
        size: 1,
        rel_path: format!("sha256/{}/{}/{hex}_{name}", &hex[..2], &hex[2..4]),
        written: false,
    }
}

fn commit(
    cat: &Catalogue,
    pool: &Pool,
    repo: &str,
    content: &[(Sha256, String)],
) -> Result<i64, Error> {
    let id = cat.ensure_repository(repo, "rpm")?;
    let sync = cat.start_sync(id, "bench", 1)?;
    let write = pool.seal_writer();
    let r = cat.commit_version(CommitInput {
        repository_id: id,
        repository: repo,
        sync_id: sync,
        content,
        metadata: &[],
        repomd_revision: Some("1"),
        upstream_repomd: None,
        seal: &chantal_common::catalogue::Seal {
            write: &write,
            sign: None,
        },
    })?;
    cat.finish_sync(
        sync,
        &chantal_common::catalogue::SyncFinish {
            status: chantal_common::catalogue::SyncStatus::Success,
            version: r.version,
            ..Default::default()
        },
    )?;
    Ok(r.version.unwrap_or(0))
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, storage, cs9] = args.as_slice() else {
        return Err("usage: bench_versions DATABASE_URL STORAGE CS9_PRIMARY".into());
    };
    let cat = Catalogue::connect(url)?;
    cat.migrate()?;
    let pool = Pool::new(std::path::Path::new(storage));
    pool.create_dirs()?;

    // cs9: the real packages with their real fragments.
    let file = std::fs::File::open(cs9)?;
    let size = file.metadata()?.len();
    let (_, reader) = chantal_common::rpm::decompress::open(file, size, Default::default())?;
    let mut rows = Vec::new();
    chantal_common::rpm::primary::parse(reader, |p, fragment| {
        rows.push((p, fragment.to_string()));
        Ok(())
    })?;
    let to_new =
        |p: &chantal_common::rpm::PrimaryPackage, sha: &Sha256, version: &str, frag: &str| {
            NewPackage {
                sha256: sha.clone(),
                nevra: chantal_common::rpm::Nevra {
                    version: version.to_string(),
                    ..p.nevra.clone()
                },
                checksum_type: "sha256".into(),
                checksum: sha.to_string(),
                size_package: i64::try_from(p.size_package).unwrap_or(0),
                size_installed: None,
                size_archive: None,
                time_file: p.time_file,
                time_build: p.time_build,
                sourcerpm: p.sourcerpm.clone(),
                primary_xml: frag.to_string(),
                filelists_xml: None,
                other_xml: None,
            }
        };
    let rows_sha: Vec<Sha256> = rows
        .iter()
        .map(|(p, _)| Sha256::parse(&p.checksum.value))
        .collect::<Result<_, _>>()?;
    let blobs: Vec<_> = rows_sha.iter().map(|s| (blob(s, "x.rpm"), None)).collect();
    cat.record_blobs(&blobs)?;
    let mut it = rows
        .iter()
        .zip(&rows_sha)
        .map(|((p, f), s)| Ok(to_new(p, s, &p.nevra.version, f)));
    cat.insert_packages(&mut it)?;
    let v1: Vec<(Sha256, String)> = rows
        .iter()
        .zip(&rows_sha)
        .map(|((p, _), s)| (s.clone(), p.location_href.clone()))
        .collect();
    commit(&cat, &pool, "cs9", &v1)?;
    cat.create_snapshot("cs9", "cs9-v1", Some("version 1"))?;
    // Version 2: every 17th package updated to a newer version.
    let updated: Vec<(usize, Sha256)> = (0..rows.len())
        .filter(|i| i % 17 == 0)
        .map(|i| (i, fake_sha(i as u64, "update")))
        .collect();
    cat.record_blobs(
        &updated
            .iter()
            .map(|(_, s)| (blob(s, "x.rpm"), None))
            .collect::<Vec<_>>(),
    )?;
    let mut it = updated.iter().map(|(i, s)| {
        let (p, f) = &rows[*i];
        Ok(to_new(p, s, &format!("{}.1", p.nevra.version), f))
    });
    cat.insert_packages(&mut it)?;
    let mut v2 = v1.clone();
    for (i, s) in &updated {
        v2[*i] = (s.clone(), format!("{}.new", v1[*i].1));
    }
    commit(&cat, &pool, "cs9", &v2)?;
    println!(
        "cs9: {} packages, {} updated in version 2",
        v1.len(),
        updated.len()
    );

    // big: 100,000 generated packages.
    let n = 100_000u64;
    let shas: Vec<Sha256> = (0..n).map(|i| fake_sha(i, "big")).collect();
    cat.record_blobs(
        &shas
            .iter()
            .map(|s| (blob(s, "x.rpm"), None))
            .collect::<Vec<_>>(),
    )?;
    let mut it = shas.iter().enumerate().map(|(i, s)| {
        Ok(NewPackage {
            sha256: s.clone(),
            nevra: chantal_common::rpm::Nevra::new(&format!("gen-{i:06}"), 0, "1.0", "1", "x86_64"),
            checksum_type: "sha256".into(),
            checksum: s.to_string(),
            size_package: 1,
            size_installed: None,
            size_archive: None,
            time_file: None,
            time_build: None,
            sourcerpm: None,
            primary_xml: format!("<package type=\"rpm\"><name>gen-{i:06}</name></package>"),
            filelists_xml: None,
            other_xml: None,
        })
    });
    cat.insert_packages(&mut it)?;
    let big: Vec<(Sha256, String)> = shas
        .iter()
        .enumerate()
        .map(|(i, s)| (s.clone(), format!("Packages/gen-{i:06}-1.0-1.x86_64.rpm")))
        .collect();
    commit(&cat, &pool, "big", &big)?;
    println!("big: {n} packages");
    let started = Instant::now();
    cat.create_snapshot("big", "in-process", None)?;
    println!(
        "snapshot create on the 100,000-package version, in process: {:.1} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );

    // Repodata for the CS9 set, through the same code sync uses.
    let started = Instant::now();
    let files = generate(
        &pool,
        &cat,
        &Inputs {
            content: &v1,
            upstream: &[],
            previous_updateinfo: None,
            revision: Some("1"),
        },
    )?;
    println!(
        "repodata for {} CS9 packages ({} files) written in {:.3} s",
        v1.len(),
        files.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
