//! A real registry on loopback: Debian's `docker-registry` (CNCF distribution 2.8), plain or
//! with TLS and htpasswd, filled with `skopeo copy`. The process is killed on drop, so it
//! stops even when a test panics.
//!
//! Self-contained (no `crate::` paths) so test crates may also include it with `#[path]`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

const REGISTRY_BIN: &str = "/usr/bin/docker-registry";
const READY_DEADLINE: Duration = Duration::from_secs(30);

pub struct LocalRegistry {
    child: Child,
    dir: TempDir,
    port: u16,
    ca_cert: Option<PathBuf>,
    credentials: Option<(String, String)>,
}

/// Whether the tools these tests need are installed (`docker-registry`, `skopeo`).
pub fn registry_tools_available() -> bool {
    Path::new(REGISTRY_BIN).exists() && which("skopeo")
}

fn which(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

impl LocalRegistry {
    /// Plain HTTP, no authentication.
    pub fn start_plain() -> LocalRegistry {
        Self::start(false, None)
    }

    /// HTTPS with a certificate from a CA made for this registry (trust it through
    /// `ca_cert_path()`), and htpasswd Basic authentication.
    pub fn start_tls_htpasswd(user: &str, pass: &str) -> LocalRegistry {
        Self::start(true, Some((user.to_string(), pass.to_string())))
    }

    fn start(tls: bool, credentials: Option<(String, String)>) -> LocalRegistry {
        let dir = tempfile::tempdir().expect("registry temp dir");
        let d = dir.path();
        let port = free_port();
        let mut cfg = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: 127.0.0.1:{port}\n",
            d.join("storage").display()
        );
        let mut ca_cert = None;
        if tls {
            make_certificates(d);
            cfg.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                d.join("server.pem").display(),
                d.join("server.key").display()
            ));
            ca_cert = Some(d.join("ca.pem"));
        }
        if let Some((user, pass)) = &credentials {
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, pass])
                .output()
                .expect("run htpasswd (apache2-utils)");
            assert!(out.status.success(), "htpasswd failed");
            std::fs::write(d.join("htpasswd"), &out.stdout).expect("write htpasswd");
            cfg.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: cd-test\n    path: {}\n",
                d.join("htpasswd").display()
            ));
        }
        std::fs::write(d.join("config.yml"), cfg).expect("write registry config");
        let log = std::fs::File::create(d.join("registry.log")).expect("registry log");
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(d.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .expect("spawn docker-registry");
        let mut reg = LocalRegistry {
            child,
            dir,
            port,
            ca_cert,
            credentials,
        };
        reg.wait_ready(tls);
        reg
    }

    fn wait_ready(&mut self, tls: bool) {
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("docker-registry exited early ({status}):\n{}", self.log());
            }
            if self.answers_v2(tls) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not answer GET /v2/ within {READY_DEADLINE:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Plain: `GET /v2/` answers 200 or 401. TLS: the port accepts connections (the
    /// registry opens it only when it is ready to serve).
    fn answers_v2(&self, tls: bool) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        if tls {
            return true;
        }
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        if s.write_all(b"GET /v2/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .is_err()
        {
            return false;
        }
        let mut buf = [0u8; 16];
        let n = s.read(&mut buf).unwrap_or(0);
        let line = String::from_utf8_lossy(&buf[..n]);
        line.starts_with("HTTP/1.") && matches!(line.get(9..12), Some("200" | "401"))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// `127.0.0.1:PORT`
    pub fn host_port(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The PEM of the CA that signed the TLS certificate (TLS registries only).
    pub fn ca_cert_path(&self) -> Option<&Path> {
        self.ca_cert.as_deref()
    }

    /// `skopeo copy oci:<oci_dir>:<tag_in_dir> docker://HOST/<repo_tag>`, with this
    /// registry's credentials. `extra` goes before the operands (`--format v2s2`, `--all`,
    /// `--dest-compress-format zstd`, ...).
    pub fn push_oci_dir(&self, oci_dir: &Path, tag_in_dir: &str, repo_tag: &str, extra: &[&str]) {
        let mut cmd = containers_tool("skopeo", self.dir.path());
        cmd.args([
            "--insecure-policy",
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
        ]);
        if let Some((u, p)) = &self.credentials {
            cmd.arg(format!("--dest-creds={u}:{p}"));
        }
        cmd.args(extra)
            .arg(format!("oci:{}:{tag_in_dir}", oci_dir.display()))
            .arg(format!("docker://{}/{repo_tag}", self.host_port()));
        run(&mut cmd);
    }
}

/// `program` (skopeo, buildah) with its blob-info cache kept under `scratch`, a directory of
/// the test's own. Run as root, containers/image keeps that cache in /var/lib/containers/cache,
/// a host path outside the test; with a nonzero `_CONTAINERS_ROOTLESS_UID` it uses
/// `$XDG_DATA_HOME/containers/cache` instead (nothing else changes for these commands).
pub fn containers_tool(program: &str, scratch: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env("_CONTAINERS_ROOTLESS_UID", "1000")
        .env("XDG_DATA_HOME", scratch.join("containers-tool-data"));
    cmd
}

/// A CA and a server certificate for `IP:127.0.0.1, DNS:localhost`, written into `dir` as
/// `ca.pem`, `server.pem` and `server.key`.
fn make_certificates(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(Command::new("openssl")
        .current_dir(dir)
        .args(["req", "-x509"])
        .args(ec)
        .args([
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=cd-test-ca",
        ]));
    run(Command::new("openssl")
        .current_dir(dir)
        .arg("req")
        .args(ec)
        .args([
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ]));
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write server.ext");
    run(Command::new("openssl").current_dir(dir).args([
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]));
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
