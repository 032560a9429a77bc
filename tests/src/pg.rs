//! A real PostgreSQL for tests. Unless `$CHANTAL_TEST_DATABASE_URL` names a server (whose user
//! may create databases), the first test of a process starts a throwaway cluster: `initdb` into a
//! temporary directory, a unix socket only, run as the `postgres` user when the tests run as
//! root. A guardian shell holds a pipe to this process and stops the cluster and removes its
//! directory when the process ends, however it ends.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};

/// The environment variable naming an existing server to use instead of a throwaway cluster.
pub const TEST_DATABASE_URL_ENV: &str = "CHANTAL_TEST_DATABASE_URL";

struct Server {
    /// Connection string for the maintenance database.
    admin: String,
    _cluster: Option<Cluster>,
}

/// A throwaway PostgreSQL cluster.
pub struct Cluster {
    /// Connection string for its `postgres` database.
    pub admin: String,
    data: PathBuf,
    log: PathBuf,
    opts: String,
    as_postgres: bool,
    /// The guardian, whose stdin this process holds open: it closes at process exit, and the
    /// guardian then stops the cluster and removes its directory.
    _guardian: Mutex<std::process::Child>,
}

static SERVER: OnceLock<Server> = OnceLock::new();
static COUNTER: AtomicU32 = AtomicU32::new(0);

fn server() -> &'static Server {
    SERVER.get_or_init(|| match std::env::var(TEST_DATABASE_URL_ENV) {
        Ok(url) if !url.is_empty() => Server {
            admin: url,
            _cluster: None,
        },
        _ => {
            let cluster = Cluster::start();
            Server {
                admin: cluster.admin.clone(),
                _cluster: Some(cluster),
            }
        }
    })
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// `initdb`/`pg_ctl` from PATH, else from the newest `/usr/lib/postgresql/*/bin`.
pub fn pg_tool(name: &str) -> PathBuf {
    if let Ok(path) = std::env::var("PATH") {
        for dir in path.split(':') {
            let p = Path::new(dir).join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let p = e.path().join("bin").join(name);
            p.is_file().then_some((v, p))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, p)| p).unwrap_or_else(|| {
        panic!(
            "{name} not found in PATH or /usr/lib/postgresql/*/bin: install the PostgreSQL server"
        )
    })
}

fn run_pg(as_postgres: bool, tool: &Path, args: &[&str]) -> Command {
    let mut cmd = if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(tool);
        c
    } else {
        Command::new(tool)
    };
    cmd.args(args);
    cmd
}

impl Cluster {
    /// Starts a new cluster of its own (tests that stop the database use one).
    pub fn start() -> Cluster {
        start_cluster()
    }

    /// Stops the server (immediately, like a crash or a network cut).
    pub fn stop(&self) {
        let out = run_pg(
            self.as_postgres,
            &pg_tool("pg_ctl"),
            &[
                "-D",
                self.data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        )
        .output()
        .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts it again after [`Cluster::stop`].
    pub fn restart(&self) {
        let out = run_pg(
            self.as_postgres,
            &pg_tool("pg_ctl"),
            &[
                "-D",
                self.data.to_str().unwrap(),
                "-l",
                self.log.to_str().unwrap(),
                "-w",
                "-o",
                &self.opts,
                "start",
            ],
        )
        .output()
        .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn start_cluster() -> Cluster {
    let as_postgres = is_root();
    if as_postgres {
        let exists = Command::new("id")
            .arg("postgres")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !exists {
            let ok = Command::new("useradd")
                .args(["--system", "--no-create-home", "postgres"])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            assert!(ok, "useradd postgres failed");
        }
    }
    let base = tempfile::Builder::new()
        .prefix("chantal-pg-")
        .tempdir_in("/tmp")
        .unwrap()
        .keep();
    let data = base.join("data");
    if as_postgres {
        let status = Command::new("chown")
            .args(["postgres:", base.to_str().unwrap()])
            .status()
            .unwrap();
        assert!(status.success(), "chown of {} failed", base.display());
    }
    // The socket lives here: other local users (the unprivileged-user tests) connect too.
    std::fs::set_permissions(&base, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let initdb = pg_tool("initdb");
    let pg_ctl = pg_tool("pg_ctl");
    let out = run_pg(
        as_postgres,
        &initdb,
        &[
            "-D",
            data.to_str().unwrap(),
            "-U",
            "chantal",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
        ],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "initdb failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let opts = format!(
        "-c listen_addresses='' -k {} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
        base.display()
    );
    let log = base.join("server.log");
    let out = run_pg(
        as_postgres,
        &pg_ctl,
        &[
            "-D",
            data.to_str().unwrap(),
            "-l",
            log.to_str().unwrap(),
            "-w",
            "-o",
            &opts,
            "start",
        ],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "pg_ctl start failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let stop = format!(
        "{} {} -D {} -m immediate -w stop >/dev/null 2>&1; rm -rf {}",
        if as_postgres {
            "runuser -u postgres --"
        } else {
            ""
        },
        pg_ctl.display(),
        data.display(),
        base.display()
    );
    let guardian = Command::new("setsid")
        .args(["sh", "-c", &format!("cat >/dev/null; {stop}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Cluster {
        admin: format!("host={} user=chantal dbname=postgres", base.display()),
        data,
        log,
        opts,
        as_postgres,
        _guardian: Mutex::new(guardian),
    }
}

/// Replaces the database name of a connection string (URL or key-value form).
fn with_dbname(url: &str, db: &str) -> String {
    if let Some(rest) = url
        .strip_prefix("postgresql://")
        .or_else(|| url.strip_prefix("postgres://"))
    {
        let scheme = &url[..url.len() - rest.len()];
        let (authority, query) = match rest.split_once('/') {
            Some((a, path)) => (a, path.split_once('?').map(|(_, q)| q)),
            None => (
                rest.split('?').next().unwrap_or(rest),
                rest.split_once('?').map(|(_, q)| q),
            ),
        };
        match query {
            Some(q) => format!("{scheme}{authority}/{db}?{q}"),
            None => format!("{scheme}{authority}/{db}"),
        }
    } else {
        let mut parts: Vec<&str> = url
            .split_whitespace()
            .filter(|p| !p.starts_with("dbname="))
            .collect();
        let dbname = format!("dbname={db}");
        parts.push(&dbname);
        parts.join(" ")
    }
}

/// A PostgreSQL database of its own for one test; dropped when the value is.
pub struct PgDb {
    pub name: String,
    /// Connection string for this database (what goes into `database.url`).
    pub url: String,
}

impl PgDb {
    /// Creates an empty database on the test server.
    pub fn new() -> PgDb {
        let server = server();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("chantal_t{}_{n}_{nanos}", std::process::id());
        let mut admin = postgres::Client::connect(&server.admin, postgres::NoTls)
            .unwrap_or_else(|e| panic!("cannot connect to the test server: {e}"));
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        PgDb {
            url: with_dbname(&server.admin, &name),
            name,
        }
    }

    /// A direct client on this database, for assertions.
    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url, postgres::NoTls).unwrap()
    }
}

impl PgDb {
    /// The `postgres` database of a private cluster (dropped with the cluster).
    pub fn on(cluster: &Cluster) -> PgDb {
        PgDb {
            name: String::new(),
            url: cluster.admin.clone(),
        }
    }
}

impl Default for PgDb {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        if self.name.is_empty() {
            return;
        }
        if let Ok(mut admin) = postgres::Client::connect(&server().admin, postgres::NoTls) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::with_dbname;

    #[test]
    fn dbname_replacement() {
        assert_eq!(
            with_dbname("host=/tmp/x user=c dbname=postgres", "t1"),
            "host=/tmp/x user=c dbname=t1"
        );
        assert_eq!(
            with_dbname("postgresql://u:p@h:5/postgres", "t1"),
            "postgresql://u:p@h:5/t1"
        );
        assert_eq!(
            with_dbname("postgresql://u@h/postgres?sslmode=disable", "t1"),
            "postgresql://u@h/t1?sslmode=disable"
        );
        assert_eq!(with_dbname("postgres://h", "t1"), "postgres://h/t1");
    }
}
