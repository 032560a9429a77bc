//! Retention policies and generated repodata, checked with a real dnf: the NEVRA sets dnf
//! resolves from each version equal the catalogue's and the policy's; advisories, groups and
//! package bytes come through.

use std::path::Path;
use std::process::Command;

use chantal_tests::dnf::{advisories, download, groups, materialize, repoquery};
use chantal_tests::repo::{
    createrepo, createrepo_with, repodata_tree, test_rpm, upstream_dir, COMPS,
};
use chantal_tests::Env;

const UPDATEINFO: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<updates>
  <update from="tests@chantal.invalid" status="final" type="bugfix" version="1">
    <id>CHANTAL-2024:0001</id>
    <title>old hello fix</title>
    <issued date="2024-01-01 00:00:00"/>
    <pkglist><collection short="c"><name>c</name>
      <package name="hello" version="1.0" release="1" epoch="0" arch="noarch"><filename>hello-1.0-1.noarch.rpm</filename></package>
    </collection></pkglist>
  </update>
  <update from="tests@chantal.invalid" status="final" type="security" version="1">
    <id>CHANTAL-2024:0002</id>
    <title>new hello fix</title>
    <issued date="2024-02-01 00:00:00"/>
    <pkglist><collection short="c"><name>c</name>
      <package name="hello" version="2.0~rc1" release="1" epoch="0" arch="noarch"><filename>hello-2.0~rc1-1.noarch.rpm</filename></package>
    </collection></pkglist>
  </update>
</updates>
"#;

/// An upstream of test RPMs with comps and updateinfo.
fn upstream(dir: &Path, rpms: &[&str]) {
    upstream_with(dir, rpms, UPDATEINFO);
}

/// The same with only the advisories whose ids are listed.
fn upstream_advisories(dir: &Path, rpms: &[&str], ids: &[&str]) {
    let mut doc = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<updates>\n");
    for block in UPDATEINFO.split("  <update ").skip(1) {
        let block = block.split("</updates>").next().unwrap();
        if ids
            .iter()
            .any(|id| block.contains(&format!("<id>{id}</id>")))
        {
            doc.push_str("  <update ");
            doc.push_str(block);
        }
    }
    doc.push_str("</updates>\n");
    upstream_with(dir, rpms, &doc);
}

fn upstream_with(dir: &Path, rpms: &[&str], updateinfo: &str) {
    let files: Vec<_> = rpms.iter().map(|r| test_rpm(r)).collect();
    createrepo_with(dir, &files, COMPS, updateinfo);
}

fn nevra(s: &str) -> String {
    // "hello-1.0-1.noarch" -> "hello-0:1.0-1.noarch"
    let (rest, arch) = s.rsplit_once('.').unwrap();
    let (rest, rel) = rest.rsplit_once('-').unwrap();
    let (name, ver) = rest.rsplit_once('-').unwrap();
    if ver.contains(':') {
        format!("{name}-{ver}-{rel}.{arch}")
    } else {
        format!("{name}-0:{ver}-{rel}.{arch}")
    }
}

fn set(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| nevra(s)).collect();
    v.sort();
    v
}

/// The catalogue's latest set as dnf spells it, for the x86_64 view.
fn catalogue_set(env: &Env, repo: &str) -> Vec<String> {
    let mut v = env.db.strings(
        "SELECT p.name || '-' || p.epoch || ':' || p.version || '-' || p.release || '.' || p.arch
               FROM repository_content c JOIN packages p ON p.id = c.package_id
               JOIN repositories r ON r.id = c.repository_id
              WHERE r.name = $1 AND c.removed_in IS NULL AND p.arch IN ('x86_64', 'noarch')",
        &[repo.into()],
    );
    v.sort();
    v
}

const V1: &[&str] = &[
    "hello-1.0-1.noarch.rpm",
    "lib-1.0-1.x86_64.rpm",
    "tool-2.0-1.x86_64.rpm",
    "tool-2.0-1.aarch64.rpm",
];
const V2: &[&str] = &[
    "hello-1.0-1.noarch.rpm",
    "hello-1.1-1.noarch.rpm",
    "hello-2.0~rc1-1.noarch.rpm",
    "tool-2.0-1.x86_64.rpm",
    "tool-3.0-1.x86_64.rpm",
    "tool-2.0-1.aarch64.rpm",
];

#[test]
fn policies_give_dnf_exactly_the_expected_sets() {
    let up = upstream_dir();
    upstream(up.path(), V1);
    let url = format!("file://{}", up.path().display());
    let env = Env::new();
    let repos = [
        ("plain", ""),
        ("newest", "retention:\n  policy: newest-only\n"),
        (
            "newestkeep",
            "retention:\n  policy: newest-only\n  deleted_packages: keep\n",
        ),
        ("keepall", "retention:\n  policy: keep-all\n"),
        ("mirrorkeep", "retention:\n  deleted_packages: keep\n"),
        ("x86", "rpm:\n  architectures: [x86_64]\n"),
    ];
    for (name, extra) in repos {
        env.repo(name, &url, extra);
    }
    env.chantal(&["init"]).ok();
    env.chantal(&["repo", "sync", "--all"]).ok();

    // Version 1: every policy holds upstream's set.
    let v1_x86 = set(&[
        "hello-1.0-1.noarch",
        "lib-1.0-1.x86_64",
        "tool-2.0-1.x86_64",
    ]);
    for (name, _) in repos {
        let tree = materialize(&env, name, None);
        assert_eq!(repoquery(tree.path(), "x86_64"), v1_x86, "{name} v1");
        assert_eq!(catalogue_set(&env, name), v1_x86, "{name} v1 catalogue");
    }
    // Upstream's repodata is served verbatim when the set is upstream's...
    let tree = materialize(&env, "plain", None);
    assert_eq!(
        std::fs::read(tree.path().join("repodata/repomd.xml")).unwrap(),
        std::fs::read(up.path().join("repodata/repomd.xml")).unwrap()
    );
    // ...and generated when a filter changed it.
    let tree = materialize(&env, "x86", None);
    assert_ne!(
        std::fs::read(tree.path().join("repodata/repomd.xml")).unwrap(),
        std::fs::read(up.path().join("repodata/repomd.xml")).unwrap()
    );
    assert!(repoquery(tree.path(), "aarch64")
        .iter()
        .all(|p| !p.ends_with(".aarch64")));

    upstream(up.path(), V2);
    env.chantal(&["repo", "sync", "--all"]).ok();
    let expected: Vec<(&str, Vec<String>)> = vec![
        (
            "plain",
            set(&[
                "hello-1.0-1.noarch",
                "hello-1.1-1.noarch",
                "hello-2.0~rc1-1.noarch",
                "tool-2.0-1.x86_64",
                "tool-1:3.0-1.x86_64",
            ]),
        ),
        (
            "newest",
            set(&["hello-2.0~rc1-1.noarch", "tool-1:3.0-1.x86_64"]),
        ),
        (
            "newestkeep",
            set(&[
                "hello-2.0~rc1-1.noarch",
                "lib-1.0-1.x86_64",
                "tool-1:3.0-1.x86_64",
            ]),
        ),
        (
            "keepall",
            set(&[
                "hello-1.0-1.noarch",
                "hello-1.1-1.noarch",
                "hello-2.0~rc1-1.noarch",
                "lib-1.0-1.x86_64",
                "tool-2.0-1.x86_64",
                "tool-1:3.0-1.x86_64",
            ]),
        ),
        (
            "mirrorkeep",
            set(&[
                "hello-1.0-1.noarch",
                "hello-1.1-1.noarch",
                "hello-2.0~rc1-1.noarch",
                "lib-1.0-1.x86_64",
                "tool-2.0-1.x86_64",
                "tool-1:3.0-1.x86_64",
            ]),
        ),
        (
            "x86",
            set(&[
                "hello-1.0-1.noarch",
                "hello-1.1-1.noarch",
                "hello-2.0~rc1-1.noarch",
                "tool-2.0-1.x86_64",
                "tool-1:3.0-1.x86_64",
            ]),
        ),
    ];
    for (name, want) in &expected {
        let tree = materialize(&env, name, None);
        assert_eq!(&repoquery(tree.path(), "x86_64"), want, "{name} v2 via dnf");
        assert_eq!(&catalogue_set(&env, name), want, "{name} v2 catalogue");
    }
    // newest-only on aarch64: its own stream.
    let tree = materialize(&env, "newest", None);
    assert!(repoquery(tree.path(), "aarch64").contains(&"tool-0:2.0-1.aarch64".to_string()));

    // Version 1 of a generated repository is still intact for dnf.
    let v1 = materialize(&env, "newest", Some(1));
    assert_eq!(repoquery(v1.path(), "x86_64"), v1_x86);
}

#[test]
fn advisories_groups_and_bytes_come_through_generated_repodata() {
    let up = upstream_dir();
    upstream(up.path(), V2);
    let url = format!("file://{}", up.path().display());
    let env = Env::new();
    env.repo("plain", &url, "");
    env.repo("newest", &url, "retention:\n  policy: newest-only\n");
    env.chantal(&["init"]).ok();
    env.chantal(&["repo", "sync", "--all"]).ok();
    let installed = vec![test_rpm("hello-1.0-1.noarch.rpm")];

    let plain = materialize(&env, "plain", None);
    assert_eq!(
        advisories(plain.path(), &installed),
        ["CHANTAL-2024:0001", "CHANTAL-2024:0002"]
    );
    let newest = materialize(&env, "newest", None);
    assert_eq!(
        advisories(newest.path(), &installed),
        ["CHANTAL-2024:0002"],
        "the advisory naming only a dropped package is dropped"
    );
    assert!(groups(newest.path()).contains("Chantal test tools"));

    let dest = tempfile::tempdir().unwrap();
    let got = download(newest.path(), "tool", dest.path());
    assert_eq!(
        std::fs::read(&got).unwrap(),
        std::fs::read(test_rpm("tool-3.0-1.x86_64.rpm")).unwrap(),
        "byte-identical package"
    );
}

#[test]
fn keep_all_accumulates_advisories_and_diff_reports_new_ones() {
    let up = upstream_dir();
    upstream_advisories(
        up.path(),
        &["hello-1.0-1.noarch.rpm"],
        &["CHANTAL-2024:0001"],
    );
    let env = Env::new();
    env.repo(
        "all",
        &format!("file://{}", up.path().display()),
        "retention:\n  policy: keep-all\n",
    );
    env.chantal(&["init"]).ok();
    env.chantal(&[
        "repo",
        "sync",
        "--repo-id",
        "all",
        "--create-snapshot",
        "--snapshot-name",
        "jan",
    ])
    .ok();
    // Upstream moves on: hello 1.0 and its advisory are gone there.
    upstream_advisories(
        up.path(),
        &["hello-2.0~rc1-1.noarch.rpm"],
        &["CHANTAL-2024:0002"],
    );
    env.chantal(&["repo", "sync", "--repo-id", "all"]).ok();
    let tree = materialize(&env, "all", None);
    assert_eq!(
        repoquery(tree.path(), "x86_64"),
        set(&["hello-1.0-1.noarch", "hello-2.0~rc1-1.noarch"])
    );
    assert_eq!(
        advisories(tree.path(), &[test_rpm("hello-1.0-1.noarch.rpm")]),
        ["CHANTAL-2024:0001", "CHANTAL-2024:0002"],
        "keep-all keeps the advisory of a package it keeps"
    );
    let diff = env
        .chantal(&[
            "snapshot",
            "diff",
            "--from",
            "jan",
            "--to",
            "latest",
            "--repo-id",
            "all",
        ])
        .ok();
    assert!(
        diff.contains("1 added, 0 removed, 0 updated, 1 advisories added"),
        "{diff}"
    );
    assert!(diff.contains("! CHANTAL-2024:0002"), "{diff}");
}

fn query_all(tree: &Path) -> String {
    let cache = tempfile::tempdir().unwrap();
    let out = chantal_tests::dnf::command(tree, cache.path(), None)
        .args([
            "repoquery",
            "--qf",
            "%{name}-%{epoch}:%{version}-%{release}.%{arch} R:%{requires} P:%{provides} O:%{obsoletes} C:%{conflicts}",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    lines.join("\n")
}

#[test]
fn cs9_appstream_round_trips_through_the_writer() {
    use chantal_common::pool::Pool;
    use chantal_common::repodata::writer::{footer, header, relocate, DocWriter, OutCompression};
    use chantal_common::rpm::MetadataKind;
    let original = chantal_tests::repo::fixtures().join(
        "cs9/appstream/repodata/c03bb2ebc33bbee3046da091b45d90717273a43d3641a9d84e6eede05637bc8a-primary.xml.gz",
    );
    let scratch = tempfile::tempdir().unwrap();
    let pool = Pool::new(scratch.path());
    pool.create_dirs().unwrap();
    let file = std::fs::File::open(&original).unwrap();
    let size = file.metadata().unwrap().len();
    let (_, reader) =
        chantal_common::rpm::decompress::open(file, size, Default::default()).unwrap();
    let mut w = DocWriter::new(&pool, MetadataKind::Primary, OutCompression::Gzip).unwrap();
    w.write(&header(&MetadataKind::Primary, 17649)).unwrap();
    let mut n = 0;
    chantal_common::rpm::primary::parse(reader, |p, fragment| {
        n += 1;
        w.write(&relocate(fragment, &p.location_href))?;
        w.write("\n")?;
        Ok(())
    })
    .unwrap();
    assert_eq!(n, 17649);
    w.write(footer(&MetadataKind::Primary)).unwrap();
    let written = pool.settle(w.finish(&pool, 1700000000).unwrap().1).unwrap();

    let a = repodata_tree(&[("primary", &original)]);
    let b = repodata_tree(&[("primary", &pool.absolute(&written.rel_path))]);
    let (qa, qb) = (query_all(a.path()), query_all(b.path()));
    // Every dependency is on a line of its own; the package lines carry the NEVRA.
    assert!(
        qa.contains("389-ds-base-0:2.5.1-1.el9.x86_64 R:"),
        "dnf read nothing?"
    );
    assert!(qa.lines().count() > 17649);
    assert!(
        qa == qb,
        "dnf sees a different package set or dependencies after the round trip"
    );
}

#[test]
fn modules_are_carried_into_generated_repodata() {
    let up = upstream_dir();
    upstream(up.path(), V1);
    let modules = chantal_tests::repo::fixtures().join(
        "cs9/appstream/repodata/ffe6aa44abe8480c2f7a59b9e92f251f10018e1e79ac33e2807260dd03955592-modules.yaml.xz",
    );
    let plain = up.path().join("modules.yaml");
    let out = Command::new("xz")
        .arg("-dc")
        .arg(&modules)
        .output()
        .unwrap();
    std::fs::write(&plain, out.stdout).unwrap();
    let ok = Command::new("modifyrepo_c")
        .args(["--mdtype=modules"])
        .arg(&plain)
        .arg(up.path().join("repodata"))
        .output()
        .unwrap()
        .status
        .success();
    assert!(ok);
    let env = Env::new();
    env.repo(
        "x86",
        &format!("file://{}", up.path().display()),
        "rpm:\n  architectures: [x86_64]\n",
    );
    env.chantal(&["init"]).ok();
    env.chantal(&["repo", "sync", "--repo-id", "x86"]).ok();
    let tree = materialize(&env, "x86", None);
    let cache = tempfile::tempdir().unwrap();
    let out = chantal_tests::dnf::command(tree.path(), cache.path(), None)
        .args(["module", "list"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("nodejs"), "{text}");
}

#[test]
fn a_policy_change_applies_at_the_next_sync_without_downloading_again() {
    let up = upstream_dir();
    upstream(up.path(), V2);
    let url = format!("file://{}", up.path().display());
    let env = Env::new();
    env.repo("r", &url, "");
    env.chantal(&["init"]).ok();
    env.chantal(&["repo", "sync", "--repo-id", "r"]).ok();
    env.repo("r", &url, "retention:\n  policy: newest-only\n");
    let out = env.chantal(&["repo", "sync", "--repo-id", "r"]).ok();
    assert!(
        out.starts_with("r: version 2: 0 added, 3 removed, 3 unchanged, 0 B downloaded"),
        "{out}"
    );
    let tree = materialize(&env, "r", None);
    assert_eq!(
        repoquery(tree.path(), "x86_64"),
        set(&["hello-2.0~rc1-1.noarch", "tool-1:3.0-1.x86_64"])
    );
    // dnf can install from it (rpm's transaction test in a private root).
    let root = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    assert!(Command::new("rpm")
        .arg("--root")
        .arg(root.path())
        .arg("--initdb")
        .status()
        .unwrap()
        .success());
    let out = chantal_tests::dnf::command(tree.path(), cache.path(), Some(root.path()))
        .args([
            "--setopt=tsflags=test",
            "--nogpgcheck",
            "install",
            "hello",
            "tool",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn zstd_upstreams_get_zstd_repodata_and_sqlite_variants_are_dropped() {
    let up = upstream_dir();
    let files: Vec<_> = V1.iter().map(|r| test_rpm(r)).collect();
    createrepo(up.path(), &files, &["--database"]);
    chantal_tests::repo::recompress_zstd(up.path());
    let env = Env::new();
    env.repo(
        "z",
        &format!("file://{}", up.path().display()),
        "rpm:\n  architectures: [x86_64]\n",
    );
    env.chantal(&["init"]).ok();
    env.chantal(&["repo", "sync", "--repo-id", "z"]).ok();
    let tree = materialize(&env, "z", None);
    let repomd = std::fs::read_to_string(tree.path().join("repodata/repomd.xml")).unwrap();
    assert!(repomd.contains("-primary.xml.zst\""), "{repomd}");
    assert!(
        !repomd.contains("_db\""),
        "sqlite variants dropped: {repomd}"
    );
    let upstream_md = std::fs::read_to_string(up.path().join("repodata/repomd.xml")).unwrap();
    assert!(upstream_md.contains("primary_db"), "the upstream had them");
    assert_eq!(
        repoquery(tree.path(), "x86_64"),
        set(&[
            "hello-1.0-1.noarch",
            "lib-1.0-1.x86_64",
            "tool-2.0-1.x86_64"
        ])
    );
}

#[test]
fn filters_and_keep_last_give_dnf_exactly_the_expected_sets() {
    // v1 -> v2 -> v3 upstreams; lib vanishes in v3, hello and tool move on.
    const STEPS: [&[&str]; 3] = [
        &[
            "hello-1.0-1.noarch.rpm",
            "lib-1.0-1.x86_64.rpm",
            "tool-2.0-1.x86_64.rpm",
            "tool-3.0-1.src.rpm",
        ],
        &[
            "hello-1.0-1.noarch.rpm",
            "hello-1.1-1.noarch.rpm",
            "lib-1.0-1.x86_64.rpm",
            "tool-2.0-1.x86_64.rpm",
            "tool-3.0-1.x86_64.rpm",
            "tool-3.0-1.src.rpm",
        ],
        &[
            "hello-2.0~rc1-1.noarch.rpm",
            "tool-3.0-1.x86_64.rpm",
            "tool-3.0-1.src.rpm",
        ],
    ];
    // (repository, its settings, its set after each step: x86_64 and noarch packages, plus
    // the source package when it is kept)
    let cases: [(&str, &str, [&[&str]; 3]); 5] = [
        (
            "nolib",
            "rpm:\n  architectures: [x86_64, src]\nfilters:\n  exclude: [\"lib*\"]\n  exclude_source: true\n",
            [
                &["hello-1.0-1.noarch", "tool-2.0-1.x86_64"],
                &["hello-1.0-1.noarch", "hello-1.1-1.noarch", "tool-2.0-1.x86_64", "tool-1:3.0-1.x86_64"],
                &["hello-2.0~rc1-1.noarch", "tool-1:3.0-1.x86_64"],
            ],
        ),
        (
            "hello2",
            "filters:\n  include: [\"hel*\"]\nretention:\n  policy: keep-last\n  keep_last: 2\n",
            [
                &["hello-1.0-1.noarch"],
                &["hello-1.0-1.noarch", "hello-1.1-1.noarch"],
                &["hello-1.1-1.noarch", "hello-2.0~rc1-1.noarch"],
            ],
        ),
        (
            "last1",
            "retention:\n  policy: keep-last\n  keep_last: 1\n",
            [
                &["hello-1.0-1.noarch", "lib-1.0-1.x86_64", "tool-2.0-1.x86_64"],
                &["hello-1.1-1.noarch", "lib-1.0-1.x86_64", "tool-1:3.0-1.x86_64"],
                &["hello-2.0~rc1-1.noarch", "tool-1:3.0-1.x86_64"],
            ],
        ),
        (
            "last1keep",
            "retention:\n  policy: keep-last\n  keep_last: 1\n  deleted_packages: keep\n",
            [
                &["hello-1.0-1.noarch", "lib-1.0-1.x86_64", "tool-2.0-1.x86_64"],
                &["hello-1.1-1.noarch", "lib-1.0-1.x86_64", "tool-1:3.0-1.x86_64"],
                &["hello-2.0~rc1-1.noarch", "lib-1.0-1.x86_64", "tool-1:3.0-1.x86_64"],
            ],
        ),
        (
            "withsrc",
            "rpm:\n  architectures: [x86_64, src]\nretention:\n  policy: keep-last\n  keep_last: 2\n",
            [
                &["hello-1.0-1.noarch", "lib-1.0-1.x86_64", "tool-2.0-1.x86_64", "tool-1:3.0-1.src"],
                &["hello-1.0-1.noarch", "hello-1.1-1.noarch", "lib-1.0-1.x86_64", "tool-2.0-1.x86_64", "tool-1:3.0-1.x86_64", "tool-1:3.0-1.src"],
                &["hello-1.1-1.noarch", "hello-2.0~rc1-1.noarch", "tool-2.0-1.x86_64", "tool-1:3.0-1.x86_64", "tool-1:3.0-1.src"],
            ],
        ),
    ];
    let up = upstream_dir();
    let url = format!("file://{}", up.path().display());
    let env = Env::new();
    for (name, extra, _) in &cases {
        env.repo(name, &url, extra);
    }
    env.chantal(&["init"]).ok();
    for (step, rpms) in STEPS.iter().enumerate() {
        upstream(up.path(), rpms);
        env.chantal(&["repo", "sync", "--all"]).ok();
        for (name, _, sets) in &cases {
            let want = set(sets[step]);
            let mut have = env.db.strings(
                "SELECT p.name || '-' || p.epoch || ':' || p.version || '-' || p.release || '.' || p.arch
                   FROM repository_content c JOIN packages p ON p.id = c.package_id
                   JOIN repositories r ON r.id = c.repository_id
                  WHERE r.name = $1 AND c.removed_in IS NULL",
                &[(*name).into()],
            );
            have.sort();
            assert_eq!(have, want, "{name} after step {}", step + 1);
            // dnf reads the generated repodata to the same set.
            let tree = materialize(&env, name, None);
            let binary: Vec<String> = want
                .iter()
                .filter(|p| !p.ends_with(".src"))
                .cloned()
                .collect();
            assert_eq!(
                repoquery(tree.path(), "x86_64"),
                binary,
                "{name} step {} (dnf)",
                step + 1
            );
        }
    }
    // The filters' count is in the summary, the dry-run plan and repo show.
    let dry = env
        .chantal(&["repo", "sync", "--repo-id", "hello2", "--dry-run"])
        .ok();
    assert!(dry.contains("up to date"), "{dry}");
    upstream(up.path(), STEPS[1]);
    let dry = env
        .chantal(&["repo", "sync", "--repo-id", "hello2", "--dry-run"])
        .ok();
    assert!(
        dry.contains("  exclude   3 packages upstream lists (filters)"),
        "{dry}"
    );
    assert!(dry.contains("  repodata  generated: "), "{dry}");
    let out = env.chantal(&["repo", "sync", "--repo-id", "nolib"]).ok();
    assert!(out.contains(", 2 filtered out, "), "{out}");
    let show = env.chantal(&["repo", "show", "--repo-id", "nolib"]).ok();
    assert!(
        show.contains("filters:") && show.contains("exclude lib*; no source packages"),
        "{show}"
    );
    assert!(show.contains("(2 filtered out)"), "{show}");

    // Changing the filters takes effect at the next sync, downloading nothing.
    env.repo(
        "last1",
        &url,
        "filters:\n  exclude: [\"tool\"]\nretention:\n  policy: keep-last\n  keep_last: 1\n",
    );
    let out = env.chantal(&["repo", "sync", "--repo-id", "last1"]).ok();
    assert!(out.contains(" 0 B downloaded"), "{out}");
    let tree = materialize(&env, "last1", None);
    assert_eq!(
        repoquery(tree.path(), "x86_64"),
        // keep-last 1: 2.0~rc1 stays the highest hello upstream has had; tool is filtered out.
        set(&["hello-2.0~rc1-1.noarch", "lib-1.0-1.x86_64"])
    );
}
