//! A real nginx on 127.0.0.1 for TLS tests: a private CA, a server certificate, a client
//! certificate it accepts, and one signed by another CA that it must reject.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Certificates for TLS tests, made once per test process with openssl.
pub struct Certs {
    pub dir: PathBuf,
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A CA nginx does not trust, and a client certificate it signed.
    pub other_ca: PathBuf,
    pub wrong_client_cert: PathBuf,
    pub wrong_client_key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn issue(dir: &Path, ca: &str, name: &str, cn: &str, ext: &str) {
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={cn}"),
        ],
    );
    std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            &format!("{name}.pem"),
            "-days",
            "30",
            "-extfile",
            &format!("{name}.ext"),
        ],
    );
}

/// `chantal-certs-<pid>` in the temporary directory, for this process. The certificates live
/// as long as the process (a static is never dropped), so the directories of test processes
/// that have ended are removed here instead of accumulating.
fn certs_dir() -> std::path::PathBuf {
    let tmp = std::env::temp_dir();
    for entry in std::fs::read_dir(&tmp).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(suffix) = name.strip_prefix("chantal-certs-") else {
            continue;
        };
        // Random suffixes are left by older versions of this harness.
        let ended = suffix.parse::<u32>().map_or(true, |pid| {
            !std::path::Path::new(&format!("/proc/{pid}")).exists()
        });
        if ended {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let dir = tmp.join(format!("chantal-certs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The process's test certificates.
pub fn certs() -> &'static Certs {
    static CERTS: OnceLock<Certs> = OnceLock::new();
    CERTS.get_or_init(|| {
        let dir = certs_dir();
        for ca in ["ca", "other-ca"] {
            openssl(
                &dir,
                &[
                    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", &format!("{ca}.key"), "-out", &format!("{ca}.pem"),
                    "-days", "30", "-subj", &format!("/CN=chantal test {ca}"),
                ],
            );
        }
        issue(
            &dir,
            "ca",
            "server",
            "127.0.0.1",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
        );
        let client_ext = "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n";
        issue(&dir, "ca", "client", "entitlement", client_ext);
        issue(&dir, "other-ca", "wrong-client", "intruder", client_ext);
        Certs {
            ca: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
            other_ca: dir.join("other-ca.pem"),
            wrong_client_cert: dir.join("wrong-client.pem"),
            wrong_client_key: dir.join("wrong-client.key"),
            dir,
        }
    })
}

/// How the test nginx guards its files.
#[derive(Debug, Clone, Default)]
pub struct NginxOptions {
    /// Require a client certificate signed by the test CA.
    pub client_cert: bool,
    /// Require HTTP basic authentication.
    pub basic: Option<(String, String)>,
    /// Plain HTTP instead of HTTPS, with the site as `contrib/nginx/chantal.conf` ships it
    /// (only `listen` and `root` changed).
    pub plain: bool,
}

/// nginx serving a directory over HTTPS on 127.0.0.1; stopped when dropped.
pub struct Nginx {
    pub port: u16,
    plain: bool,
    child: Child,
    _dir: tempfile::TempDir,
}

/// The nginx binary (Debian puts it in /usr/sbin).
pub fn nginx_bin() -> PathBuf {
    for p in ["/usr/sbin/nginx", "/usr/bin/nginx"] {
        if Path::new(p).is_file() {
            return PathBuf::from(p);
        }
    }
    panic!("nginx not found: install nginx (contrib/test.sh does)")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `contrib/nginx/chantal.conf`'s server block, listening on 127.0.0.1:`port` and serving
/// `root`, with `extra` directives.
fn shipped_site(port: u16, root: &Path, extra: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../contrib/nginx/chantal.conf");
    let site = std::fs::read_to_string(&path).unwrap();
    assert!(site.contains("    listen 80;\n") && site.contains("    root /srv/chantal;\n"));
    site.replace(
        "    listen 80;\n",
        &format!("    listen 127.0.0.1:{port};\n"),
    )
    .replace(
        "    root /srv/chantal;\n",
        &format!("    root {};\n    {extra}\n", root.display()),
    )
}

/// A kept-alive HTTP/1.1 connection to a plain test nginx, for many requests in a row.
pub struct Client {
    port: u16,
    conn: std::io::BufReader<std::net::TcpStream>,
}

fn connect(port: u16) -> std::io::BufReader<std::net::TcpStream> {
    let conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_nodelay(true).unwrap();
    std::io::BufReader::new(conn)
}

impl Client {
    pub fn connect(nginx: &Nginx) -> Client {
        Client {
            port: nginx.port,
            conn: connect(nginx.port),
        }
    }

    /// GET `path`: the status and the body.
    pub fn get(&mut self, path: &str) -> (u16, Vec<u8>) {
        use std::io::{BufRead, Read, Write};
        write!(
            self.conn.get_mut(),
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        )
        .unwrap();
        let mut line = String::new();
        self.conn.read_line(&mut line).unwrap();
        let status: u16 = line.split(' ').nth(1).unwrap().parse().unwrap();
        let (mut length, mut close) = (0usize, false);
        loop {
            line.clear();
            self.conn.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap();
                } else if k.eq_ignore_ascii_case("connection") {
                    close = v.trim().eq_ignore_ascii_case("close");
                }
            }
        }
        let mut body = vec![0u8; length];
        self.conn.read_exact(&mut body).unwrap();
        // nginx ends a kept-alive connection after `keepalive_requests` responses.
        if close {
            self.conn = connect(self.port);
        }
        (status, body)
    }
}

impl Nginx {
    /// Plain HTTP with the shipped site, serving `root` (what the mirror runs).
    pub fn shipped(root: &Path) -> Nginx {
        Nginx::start(
            root,
            &NginxOptions {
                plain: true,
                ..Default::default()
            },
        )
    }

    pub fn start(root: &Path, opts: &NginxOptions) -> Nginx {
        let certs = certs();
        let dir = tempfile::Builder::new()
            .prefix("chantal-nginx-")
            .tempdir()
            .unwrap();
        let port = free_port();
        let mut extra = String::new();
        if opts.client_cert {
            extra.push_str(&format!(
                "ssl_client_certificate {};\n    ssl_verify_client on;\n",
                certs.ca.display()
            ));
        }
        if let Some((user, password)) = &opts.basic {
            let hash = Command::new("openssl")
                .args(["passwd", "-apr1", password])
                .output()
                .unwrap();
            let line = format!("{user}:{}", String::from_utf8_lossy(&hash.stdout).trim());
            std::fs::write(dir.path().join("htpasswd"), line).unwrap();
            extra.push_str(&format!(
                "auth_basic \"chantal test\";\n    auth_basic_user_file {}/htpasswd;\n",
                dir.path().display()
            ));
        }
        let d = dir.path().display();
        let server = if opts.plain {
            shipped_site(port, root, &extra)
        } else {
            format!(
                "server {{\n    listen 127.0.0.1:{port} ssl;\n    ssl_certificate {};\n    ssl_certificate_key {};\n    {extra}\n    root {};\n  }}",
                certs.server_cert.display(),
                certs.server_key.display(),
                root.display()
            )
        };
        let conf = format!(
            "user root;\nworker_processes 1;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
             {server}\n}}\n"
        );
        std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
        let child = Command::new(nginx_bin())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not start: {}",
                std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Nginx {
            port,
            plain: opts.plain,
            child,
            _dir: dir,
        }
    }

    /// `https://127.0.0.1:PORT` + path (`http://` for a plain server).
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.plain { "http" } else { "https" };
        format!("{scheme}://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-QUIT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}
