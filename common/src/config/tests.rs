//! Every configuration mistake the operator can make, and the line that reports it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::Result;

use super::*;

struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Dir {
        Dir(tempfile::tempdir().unwrap())
    }
    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.0.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }
    fn path(&self) -> &Path {
        self.0.path()
    }
    fn load(&self) -> Result<Config> {
        Config::load_with_database_override(&self.path().join("config.yaml"), None)
    }
    fn err(&self) -> String {
        self.load().unwrap_err().to_string()
    }
}

const MAIN: &str = "include: conf.d/*.yaml\nstorage:\n  base_path: /srv/chantal\ndatabase:\n  url: postgresql://chantal:secret@localhost/chantal\n";

fn repo(name: &str, extra: &str) -> String {
    format!("name: {name}\ntype: rpm\nupstream:\n  url: https://example.org/{name}\n{extra}")
}

#[test]
fn full_example_loads_with_defaults() {
    let d = Dir::new();
    d.write("config.yaml", MAIN);
    d.write(
        "conf.d/rhel.yaml",
        "name: rhel9-baseos\ntype: rpm\nenabled: true\nupstream:\n  url: https://cdn.redhat.com/content/dist/rhel9/9/x86_64/baseos/os/\ncredentials:\n  type: client_cert\n  cert: /etc/pki/entitlement/123.pem\n  key: /etc/pki/entitlement/123-key.pem\n  ca_cert: /etc/rhsm/ca/redhat-uep.pem\nrpm:\n  architectures: [x86_64]\n  gpgcheck: true\n  gpgkey_url: https://access.redhat.com/security/data/fd431d51.txt\nretention:\n  policy: mirror\n  deleted_packages: remove\npublish:\n  latest_path: /var/www/repos/rhel9-baseos/latest\n  snapshots_path: /var/www/repos/rhel9-baseos/snapshots\n",
    );
    let c = d.load().unwrap();
    assert_eq!(c.storage.base_path, PathBuf::from("/srv/chantal"));
    assert_eq!(c.download.workers, 10);
    assert_eq!(c.download.retries, 5);
    assert_eq!(c.download.timeout, Duration::from_secs(300));
    assert!(c.warnings.is_empty());
    let r = c.repository("rhel9-baseos").unwrap();
    assert_eq!(
        r.url,
        "https://cdn.redhat.com/content/dist/rhel9/9/x86_64/baseos/os"
    );
    assert!(matches!(r.credentials.auth, Auth::ClientCert { .. }));
    assert_eq!(r.credentials.ca_cert.as_ref().unwrap().line, 10);
    assert_eq!(r.retention.policy, Policy::Mirror);
    assert!(r.rpm.keeps_arch("x86_64") && r.rpm.keeps_arch("noarch"));
    assert!(!r.rpm.keeps_arch("src") && !r.rpm.keeps_arch("aarch64"));
    assert_eq!(r.line, 1);
}

#[test]
fn includes_are_read_in_lexical_order_and_globals_override() {
    let d = Dir::new();
    d.write("config.yaml", MAIN);
    d.write("conf.d/20-b.yaml", &repo("b", ""));
    d.write("conf.d/10-a.yaml", &repo("a", ""));
    d.write("conf.d/30-c.yaml", &repo("c", ""));
    d.write("conf.d/05-download.yaml", "download:\n  workers: 3\n");
    d.write("conf.d/99-download.yaml", "download:\n  retries: 2\n");
    d.write("conf.d/not-included.yml", &repo("ignored", ""));
    let c = d.load().unwrap();
    let names: Vec<_> = c.repositories.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert_eq!(c.download.workers, 3);
    assert_eq!(c.download.retries, 2);
}

#[test]
fn include_matching_nothing_is_a_warning() {
    let d = Dir::new();
    d.write("config.yaml", MAIN);
    let c = d.load().unwrap();
    assert!(c.repositories.is_empty());
    assert_eq!(c.warnings.len(), 1);
    assert!(
        c.warnings[0].contains("config.yaml:1: include"),
        "{:?}",
        c.warnings
    );
}

#[test]
fn invalid_yaml_names_file_and_line() {
    let d = Dir::new();
    d.write("config.yaml", MAIN);
    d.write("conf.d/bad.yaml", "name: x\nupstream:\n  url: [unclosed\n");
    let e = d.err();
    assert!(e.contains("conf.d/bad.yaml:"), "{e}");
    assert!(!e.contains('\n'), "{e}");
}

#[test]
fn unknown_keys_are_errors() {
    let d = Dir::new();
    d.write("config.yaml", MAIN);
    d.write("conf.d/r.yaml", &repo("r", "retention:\n  polcy: mirror\n"));
    let e = d.err();
    assert!(
        e.contains("conf.d/r.yaml:6: retention.polcy: unknown field `polcy`"),
        "{e}"
    );

    let d = Dir::new();
    d.write("config.yaml", "storage:\n  base_path: /x\n  size: 3\n");
    let e = d.err();
    assert!(
        e.contains("config.yaml:3: storage.size: unknown field `size`"),
        "{e}"
    );
}

#[test]
fn wrong_types_are_errors() {
    let d = Dir::new();
    d.write("config.yaml", "download:\n  workers: ten\n");
    let e = d.err();
    assert!(
        e.contains("config.yaml:2: download.workers: invalid type"),
        "{e}"
    );

    let d = Dir::new();
    d.write("config.yaml", "download:\n  workers: 0\n");
    assert!(d.err().contains("download.workers: must be at least 1"));

    let d = Dir::new();
    d.write("config.yaml", MAIN);
    d.write("conf.d/r.yaml", &repo("r", "enabled: maybe\n"));
    let e = d.err();
    assert!(e.contains("r.yaml:5: enabled: invalid type"), "{e}");
}

#[test]
fn duplicate_repository_names_are_errors() {
    let d = Dir::new();
    d.write("config.yaml", MAIN);
    d.write("conf.d/a.yaml", &repo("same", ""));
    d.write("conf.d/b.yaml", &format!("# second\n{}", repo("same", "")));
    let e = d.err();
    assert!(
        e.contains("conf.d/b.yaml:2: name: duplicate repository name 'same'"),
        "{e}"
    );
    assert!(e.contains("a.yaml:1"), "{e}");
}

#[test]
fn unsupported_url_scheme_is_an_error() {
    let d = Dir::new();
    d.write("config.yaml", MAIN);
    d.write(
        "conf.d/r.yaml",
        "name: r\nupstream:\n  url: ftp://example.org/repo\n",
    );
    let e = d.err();
    assert!(
        e.contains("r.yaml:3: upstream.url: unsupported URL scheme 'ftp'"),
        "{e}"
    );
    d.write(
        "conf.d/r.yaml",
        "name: r\nupstream:\n  url: file://relative/path\n",
    );
    assert!(d.err().contains("needs an absolute path"));
}

#[test]
fn unknown_policy_is_an_error() {
    let d = Dir::new();
    d.write("config.yaml", MAIN);
    d.write(
        "conf.d/r.yaml",
        &repo("r", "retention:\n  policy: newest\n"),
    );
    let e = d.err();
    assert!(
        e.contains("r.yaml:6: retention.policy: unknown variant `newest`"),
        "{e}"
    );
}

#[test]
fn invalid_names_are_errors() {
    let d = Dir::new();
    d.write("config.yaml", MAIN);
    d.write("conf.d/r.yaml", &repo("bad/name", ""));
    assert!(d.err().contains("r.yaml:1: name: invalid repository name"));
    assert!(!valid_name("..") && !valid_name("") && valid_name("epel-9_x.86"));
}

#[test]
fn credentials_are_validated_by_type() {
    let d = Dir::new();
    d.write("config.yaml", MAIN);
    d.write(
        "conf.d/r.yaml",
        &repo("r", "credentials:\n  type: basic\n  username: u\n"),
    );
    let e = d.err();
    assert!(
        e.contains("r.yaml:5: credentials.password: type basic needs password"),
        "{e}"
    );

    d.write(
        "conf.d/r.yaml",
        &repo("r", "credentials:\n  type: client_cert\n  cert: c.pem\n"),
    );
    assert!(d
        .err()
        .contains("credentials.key: type client_cert needs key"));

    d.write("conf.d/r.yaml", &repo("r", "credentials:\n  type: token\n"));
    assert!(d
        .err()
        .contains("r.yaml:6: credentials.type: unknown variant `token`"));

    d.write(
        "conf.d/r.yaml",
        &repo("r", "credentials:\n  ca_cert: ca.pem\n"),
    );
    let c = d.load().unwrap();
    let r = c.repository("r").unwrap();
    assert!(matches!(r.credentials.auth, Auth::None));
    assert_eq!(
        r.credentials.ca_cert.as_ref().unwrap().path,
        d.path().join("conf.d/ca.pem")
    );
}

#[test]
fn credentials_files_are_checked_when_used() {
    let d = Dir::new();
    d.write("config.yaml", MAIN);
    d.write("conf.d/cert.pem", "not a secret");
    d.write(
        "conf.d/r.yaml",
        &repo(
            "r",
            "credentials:\n  type: client_cert\n  cert: cert.pem\n  key: missing-key.pem\n",
        ),
    );
    let c = d.load().unwrap();
    let e = c
        .repository("r")
        .unwrap()
        .check_credential_files()
        .unwrap_err()
        .to_string();
    assert!(e.contains("r.yaml:8: credentials.key: cannot read"), "{e}");
    assert!(e.contains("missing-key.pem"), "{e}");
}

#[test]
fn unknown_repository_lists_the_known_ones() {
    let d = Dir::new();
    d.write("config.yaml", MAIN);
    d.write("conf.d/a.yaml", &repo("a", ""));
    let c = d.load().unwrap();
    let e = c.repository("b").unwrap_err().to_string();
    assert_eq!(e, "unknown repository 'b' (configured: a)");
}

#[test]
fn database_url_override_and_origin() {
    let d = Dir::new();
    d.write("config.yaml", MAIN);
    let p = d.path().join("config.yaml");
    let c = Config::load_with_database_override(&p, None).unwrap();
    assert!(
        c.database.origin.ends_with("config.yaml:5"),
        "{}",
        c.database.origin
    );
    let c = Config::load_with_database_override(&p, Some("host=/tmp dbname=x".into())).unwrap();
    assert_eq!(c.database_url(), "host=/tmp dbname=x");
    assert_eq!(c.database.origin, "$CHANTAL_DATABASE_URL");

    d.write("config.yaml", "storage:\n  base_path: data\n");
    let c = d.load().unwrap();
    // No database.url: the embedded catalogue below the storage directory.
    assert_eq!(c.storage.base_path, d.path().join("data"));
    assert_eq!(
        c.database_url(),
        format!("sqlite://{}", d.path().join("data/catalog.db").display())
    );
    assert_eq!(
        crate::catalogue::Target::parse(&c.database_url()).unwrap(),
        crate::catalogue::Target::Sqlite(d.path().join("data/catalog.db"))
    );
}

#[test]
fn missing_config_file_is_one_line() {
    let e = Config::load_with_database_override(Path::new("/nonexistent/chantal.yaml"), None)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "cannot read configuration file /nonexistent/chantal.yaml: No such file or directory (os error 2)"
    );
}

#[test]
fn include_only_in_main_file() {
    let d = Dir::new();
    d.write("config.yaml", MAIN);
    d.write("conf.d/g.yaml", "include: other/*.yaml\n");
    assert!(d
        .err()
        .contains("g.yaml:1: include: include is only allowed"));
}

#[test]
fn shipped_examples_load() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../contrib/examples/config.yaml");
    let c = Config::load_with_database_override(&path, None).unwrap();
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    // The shipped example uses the embedded catalogue.
    assert_eq!(c.database_url(), "sqlite:///var/lib/chantal/catalog.db");
    let names: Vec<_> = c.repositories.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "epel9",
            "rocky9-dvd-appstream",
            "rhel9-baseos",
            "vendor-tools"
        ]
    );
    let rhel = c.repository("rhel9-baseos").unwrap();
    assert!(matches!(rhel.credentials.auth, Auth::ClientCert { .. }));
    assert_eq!(
        c.repository("epel9").unwrap().retention.policy,
        Policy::NewestOnly
    );
    assert_eq!(
        c.repository("vendor-tools").unwrap().proxy.as_deref(),
        Some("http://proxy.example.com:3128")
    );
}

#[test]
fn signature_keys_are_checked_together() {
    let d = Dir::new();
    d.write("config.yaml", MAIN);
    let case = |rpm: &str| {
        d.write("conf.d/r.yaml", &repo("r", rpm));
        d.load()
    };
    // A check asked for with no key to check against.
    for key in ["gpgcheck", "repo_gpgcheck"] {
        let err = case(&format!("rpm:\n  {key}: true\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(&format!("rpm.{key}")), "{err}");
        assert!(err.contains("no key to check against"), "{err}");
    }
    let err = case("rpm:\n  gpgkey_fingerprints: [\"ABCD\"]\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a full key fingerprint"), "{err}");
    let err = case("rpm:\n  gpgkey_url: /etc/pki/key\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("is not a URL"), "{err}");
    let err = case("rpm:\n  gpgkeys: [\"ftp://x/key\"]\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("rpm.gpgkeys") && err.contains("ftp://x/key"),
        "{err}"
    );
    // Sources in order (URL first, paths from the file's directory), fingerprints normalised.
    let fp = "7c1b 2a3d 4e5f 6071 8293 a4b5 c6d7 e8f9 0a1b 2c3d";
    let c = case(&format!(
        "rpm:\n  gpgcheck: true\n  gpgkey_url: https://example.org/KEY\n  gpgkeys: [keys/a.asc, \"file:///etc/b.asc\"]\n  gpgkey_fingerprints: [\"{fp}\"]\n"
    ))
    .unwrap();
    let rpm = &c.repositories[0].rpm;
    assert_eq!(
        rpm.keys,
        [
            KeySource::Url("https://example.org/KEY".into()),
            KeySource::File(d.path().join("conf.d/keys/a.asc")),
            KeySource::Url("file:///etc/b.asc".into()),
        ]
    );
    assert_eq!(
        rpm.gpgkey_fingerprints,
        ["7C1B2A3D4E5F60718293A4B5C6D7E8F90A1B2C3D"]
    );
}

#[test]
fn publish_sign_is_a_key_or_a_command() {
    let d = Dir::new();
    d.write("config.yaml", MAIN);
    let case = |publish: &str| {
        d.write("conf.d/r.yaml", &repo("r", &format!("publish:\n{publish}")));
        d.load()
    };
    let c = case(
        "  sign:\n    key: signing.asc\n    passphrase_file: pass\n  base_url: http://mirror/\n",
    )
    .unwrap();
    let r = &c.repositories[0];
    // Signing alone is no on-disk export.
    assert!(r.publish.is_none());
    assert_eq!(
        r.sign,
        Some(SignConfig::Key {
            key: d.path().join("conf.d/signing.asc"),
            passphrase_file: Some(d.path().join("conf.d/pass")),
        })
    );
    assert_eq!(r.base_url.as_deref(), Some("http://mirror"));
    let command = |extra: &str| {
        case(&format!(
            "  sign:\n    command: /bin/sign\n    public_key: k\n{extra}"
        ))
        .unwrap()
        .repositories[0]
            .sign
            .clone()
    };
    assert!(matches!(
        command(""),
        Some(SignConfig::Command { timeout, .. }) if timeout == std::time::Duration::from_secs(60)
    ));
    assert!(matches!(
        command("    timeout: 5m\n"),
        Some(SignConfig::Command { timeout, .. }) if timeout == std::time::Duration::from_secs(300)
    ));
    for (yaml, want) in [
        ("  sign:\n    key: a\n    command: /bin/sign\n", "not both"),
        (
            "  sign:\n    command: /bin/sign\n",
            "command needs public_key",
        ),
        (
            "  sign:\n    command: /bin/sign\n    public_key: k\n    passphrase_file: p\n",
            "passphrase_file goes with key",
        ),
        ("  sign: {}\n", "set key or command"),
        ("  base_url: mirror.example\n", "http:// or https://"),
        (
            "  sign:\n    key: a\n    timeout: 30s\n",
            "publish.sign.timeout: timeout goes with command",
        ),
        (
            "  sign:\n    command: /bin/sign\n    public_key: k\n    timeout: 0\n",
            "publish.sign.timeout: must be longer than 0",
        ),
    ] {
        let err = case(yaml).unwrap_err().to_string();
        assert!(err.contains(want), "{yaml}: {err}");
    }
}

#[test]
fn filters_and_keep_last_are_checked() {
    let d = Dir::new();
    d.write("config.yaml", MAIN);
    let case = |extra: &str| {
        d.write("conf.d/r.yaml", &repo("r", extra));
        d.load()
    };
    let c = case(
        "filters:\n  include: [\"kernel*\", \"openssl*\"]\n  exclude: [\"*-debuginfo\"]\n  exclude_source: true\nretention:\n  policy: keep-last\n  keep_last: 3\n",
    )
    .unwrap();
    let r = &c.repositories[0];
    assert_eq!(r.retention.keep_last, Some(3));
    let f = &r.filters;
    assert!(f.keeps("kernel-core", "x86_64"));
    assert!(f.keeps("openssl", "noarch"));
    assert!(
        !f.keeps("kernel-debuginfo", "x86_64"),
        "exclude wins over include"
    );
    assert!(!f.keeps("bash", "x86_64"), "not included");
    assert!(!f.keeps("kernel", "src"), "no source packages");
    assert!(Filters::default().keeps("anything", "src"));
    for (extra, want) in [
        (
            "retention:\n  policy: keep-last\n",
            "keep-last needs retention.keep_last",
        ),
        (
            "retention:\n  policy: keep-last\n  keep_last: 0\n",
            "at least 1",
        ),
        (
            "retention:\n  keep_last: 2\n",
            "keep_last goes with policy: keep-last",
        ),
        ("filters:\n  exclude: [\"a[\"]\n", "filters.exclude"),
        ("filters:\n  only: [a]\n", "only"),
        (
            "filters:\n  include: []\n",
            "filters.include: an empty list would keep no package",
        ),
    ] {
        let err = case(extra).unwrap_err().to_string();
        assert!(err.contains(want), "{extra}: {err}");
    }
}

#[test]
fn environments_are_names_listed_once() {
    let d = Dir::new();
    d.write(
        "config.yaml",
        &format!("{MAIN}environments: [test, prod]\n"),
    );
    assert_eq!(d.load().unwrap().environments, ["test", "prod"]);
    for (list, want) in [
        ("[test, test]", "listed twice"),
        ("[latest]", "cannot name an environment"),
        ("[\"a/b\"]", "invalid environment name"),
    ] {
        d.write("config.yaml", &format!("{MAIN}environments: {list}\n"));
        let err = d.err();
        assert!(
            err.contains("environments") && err.contains(want),
            "{list}: {err}"
        );
    }
}
