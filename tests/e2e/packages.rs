//! Finding packages and advisories: `package search`, `package show`, `advisory search`,
//! answered from the catalogue on both backends.

use chantal_tests::repo::{createrepo_with, test_rpm, upstream_dir, COMPS};
use chantal_tests::Env;

const UPDATEINFO: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<updates>
  <update from="tests@chantal.invalid" status="final" type="security" version="1">
    <id>CHANTAL-2026:1</id><title>hello security update</title><severity>Important</severity>
    <issued date="2026-01-01 00:00:00"/>
    <references><reference href="https://example.invalid/c" id="CVE-2026-0001" type="cve" title="c"/></references>
    <pkglist><collection short="c"><name>c</name>
      <package name="hello" version="1.1" release="1" epoch="0" arch="noarch"><filename>hello-1.1-1.noarch.rpm</filename></package>
      <package name="hello" version="1.1" release="1" epoch="0" arch="src"><filename>hello-1.1-1.src.rpm</filename></package>
    </collection></pkglist>
  </update>
  <update from="tests@chantal.invalid" status="final" type="bugfix" version="1">
    <id>CHANTAL-2026:2</id><title>tool fix</title>
    <pkglist><collection short="c"><name>c</name>
      <package name="tool" version="9.0" release="1" epoch="0" arch="x86_64"><filename>tool-9.0-1.x86_64.rpm</filename></package>
    </collection></pkglist>
  </update>
</updates>
"#;

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// Version 1 (snapshot s1, environment prod) has hello 1.0; version 2 (latest, snapshot s2)
/// has hello 1.1, the advisory's fix. Both versions list the advisory.
fn mirror() -> (tempfile::TempDir, Env) {
    let dir = upstream_dir();
    let rpms = |names: &[&str]| names.iter().map(|n| test_rpm(n)).collect::<Vec<_>>();
    createrepo_with(
        dir.path(),
        &rpms(&["hello-1.0-1.noarch.rpm", "lib-1.0-1.x86_64.rpm"]),
        COMPS,
        UPDATEINFO,
    );
    let env = Env::new();
    env.environments(&["prod"]);
    env.repo("r", &format!("file://{}", dir.path().display()), "");
    env.chantal(&["init"]).ok();
    env.sync_snapshot("r", "s1");
    env.promote("prod", "s1");
    createrepo_with(
        dir.path(),
        &rpms(&["hello-1.1-1.noarch.rpm", "lib-1.0-1.x86_64.rpm"]),
        COMPS,
        UPDATEINFO,
    );
    env.sync_snapshot("r", "s2");
    (dir, env)
}

#[test]
fn package_search_and_show_say_where_each_package_is_served() {
    let (_dir, env) = mirror();
    let out = env.chantal(&["package", "search", "HEL*"]).ok();
    assert_eq!(
        out,
        "hello-1.1-1.noarch\n  r version 2 (latest), snapshots s2\n\
         hello-1.0-1.noarch\n  r version 1, snapshots s1, environments prod\n"
    );
    let v = json(
        &env.chantal(&["package", "search", "hello", "--format", "json"])
            .ok(),
    );
    let hits = v.as_array().unwrap();
    assert_eq!(hits.len(), 2);
    let sha = env.db.strings(
        "SELECT sha256 FROM packages WHERE name = 'hello' AND version = '1.1'",
        &[],
    );
    assert_eq!(hits[0]["sha256"], sha[0]);
    assert_eq!(hits[0]["served"][0]["latest"], true);
    assert_eq!(
        hits[0]["served"][0]["href"],
        "Packages/hello-1.1-1.noarch.rpm"
    );
    assert_eq!(
        hits[1]["served"][0]["environments"],
        serde_json::json!(["prod"])
    );

    // By capability and by file (filelists), exact and case-sensitive on both backends.
    let out = env
        .chantal(&["package", "search", "--provides", "hello"])
        .ok();
    assert!(
        out.contains("hello-1.1-1.noarch") && out.contains("hello-1.0-1.noarch"),
        "{out}"
    );
    let out = env
        .chantal(&[
            "package",
            "search",
            "--file",
            "/usr/share/chantal-test/hello",
        ])
        .ok();
    assert!(out.starts_with("hello-1.1-1.noarch\n"), "{out}");
    let none = env.chantal(&[
        "package",
        "search",
        "--file",
        "/usr/share/chantal-test/HELLO",
    ]);
    assert_eq!(none.code(), Some(1));
    assert!(none.stdout().is_empty());
    let none = env.chantal(&["package", "search", "--provides", "hell"]);
    assert_eq!(none.code(), Some(1));
    // Conditions combine.
    let out = env
        .chantal(&[
            "package",
            "search",
            "l*",
            "--provides",
            "lib",
            "--repo-id",
            "r",
        ])
        .ok();
    assert_eq!(out.lines().next(), Some("lib-1.0-1.x86_64"), "{out}");
    let err = env
        .chantal(&["package", "search", "x", "--repo-id", "nope"])
        .fails();
    assert!(err.contains("unknown repository nope"), "{err}");
    // LIKE's own wildcards are literal characters in a glob.
    assert_eq!(env.chantal(&["package", "search", "hel%"]).code(), Some(1));

    let out = env.chantal(&["package", "show", "hello-1.0-1.noarch"]).ok();
    assert!(out.starts_with("hello-1.0-1.noarch\n"), "{out}");
    assert!(
        out.contains("summary:    chantal test package hello"),
        "{out}"
    );
    assert!(out.contains("license:    MIT"), "{out}");
    assert!(out.contains("signature:  not checked"), "{out}");
    assert!(
        out.contains("served by   r version 1, snapshots s1, environments prod at Packages/hello-1.0-1.noarch.rpm"),
        "{out}"
    );
    let v = json(
        &env.chantal(&[
            "package",
            "show",
            "hello-0:1.1-1.noarch",
            "--format",
            "json",
        ])
        .ok(),
    );
    assert_eq!(v[0]["sha256"], sha[0]);
    assert_eq!(v[0]["sourcerpm"], "hello-1.1-1.src.rpm");
    let err = env
        .chantal(&["package", "show", "hello-9-1.noarch"])
        .fails();
    assert!(err.contains("no package hello-9-1.noarch"), "{err}");
    let err = env.chantal(&["package", "show", "hello"]).fails();
    assert!(err.contains("is not a NEVRA"), "{err}");
}

#[test]
fn advisory_search_says_which_trees_hold_the_fix() {
    let (_dir, env) = mirror();
    let out = env.chantal(&["advisory", "search", "CHANTAL-2026:1"]).ok();
    assert!(
        out.starts_with(
            "CHANTAL-2026:1 (security, Important) hello security update\n  CVEs: CVE-2026-0001\n"
        ),
        "{out}"
    );
    let v = json(
        &env.chantal(&[
            "advisory",
            "search",
            "--cve",
            "cve-2026-0001",
            "--format",
            "json",
        ])
        .ok(),
    );
    let found = v.as_array().unwrap();
    assert_eq!(found.len(), 1, "{v}");
    assert_eq!(found[0]["id"], "CHANTAL-2026:1");
    let statuses: Vec<(String, String)> = found[0]["trees"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["tree"].as_str().unwrap().into(),
                t["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    let expect = |tree: &str, status: &str| {
        assert!(
            status_of(&statuses, tree) == status,
            "{tree} should be {status}: {statuses:?}"
        );
    };
    fn status_of<'a>(all: &'a [(String, String)], tree: &str) -> &'a str {
        &all.iter()
            .find(|(t, _)| t == tree)
            .unwrap_or_else(|| panic!("{tree}: {all:?}"))
            .1
    }
    expect("latest", "fixed");
    expect("snapshot s2", "fixed");
    expect("snapshot s1", "not-fixed");
    expect("environment prod (= s1)", "not-fixed");
    assert!(
        out.contains("NOT FIXED: needs hello-1.1-1.noarch, has hello-1.0-1.noarch"),
        "{out}"
    );

    // An advisory for a package the repository has no build of applies to none of its trees.
    let v = json(
        &env.chantal(&["advisory", "search", "CHANTAL-2026:2", "--format", "json"])
            .ok(),
    );
    assert!(
        v[0]["trees"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["status"] == "not-applicable"),
        "{v}"
    );

    let err = env
        .chantal(&["advisory", "search", "--cve", "CVE-1999-0001"])
        .fails();
    assert!(err.contains("no advisory fixing CVE-1999-0001"), "{err}");
    env.chantal(&["advisory", "search"]).fails();
}
