//! `install URL`: a loopback HTTP(S) server, bad downloads, Ctrl-C mid-download.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::*;

/// A loopback HTTP server answering a few paths, one connection at a time, until dropped.
struct Server {
    addr: SocketAddr,
}

enum Reply {
    Body(Vec<u8>),
    /// Claims `Content-Length` of the full body but sends only half, then closes.
    Short(Vec<u8>),
    NotFound,
    /// The whole body, a few KiB at a time, slowly.
    Trickle(Vec<u8>),
    /// Raises the flag, then holds the connection for two minutes without answering.
    Silent(Arc<AtomicBool>),
}

impl Server {
    fn start(routes: Vec<(&'static str, Reply)>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                serve(conn, &routes);
            }
        });
        Server { addr }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

fn serve(mut conn: TcpStream, routes: &[(&str, Reply)]) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
    }
    let path = request.split_whitespace().nth(1).unwrap_or("/");
    let reply = routes.iter().find(|(p, _)| *p == path).map(|(_, r)| r);
    if let Some(Reply::Silent(reached)) = reply {
        reached.store(true, Ordering::SeqCst);
        std::thread::sleep(Duration::from_secs(120));
        return;
    }
    let (status, body, sent, slow): (&str, &[u8], usize, bool) = match reply {
        Some(Reply::Body(b)) => ("200 OK", b, b.len(), false),
        Some(Reply::Short(b)) => ("200 OK", b, b.len() / 2, false),
        Some(Reply::Trickle(b)) => ("200 OK", b, b.len(), true),
        Some(Reply::NotFound | Reply::Silent(_)) | None => ("404 Not Found", b"", 0, false),
    };
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let chunk = if slow { 4096 } else { sent.max(1) };
    for part in body[..sent].chunks(chunk) {
        if conn.write_all(part).and_then(|_| conn.flush()).is_err() {
            return;
        }
        if slow {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let _ = conn.flush();
    let _ = conn.shutdown(std::net::Shutdown::Both);
    // Drain so the client sees an orderly close rather than a reset.
    let _ = reader.read_to_end(&mut Vec::new());
}

#[test]
fn url_install_downloads_names_and_cleans_up_and_bad_downloads_fail_cleanly() {
    let env = test_env();
    let work = tempfile::tempdir().unwrap();
    let w = work.path().display().to_string();
    busybox_tree(&work.path().join("t"), "downloaded");
    sh(&format!("tar -C {w}/t -cJf {w}/r.txz ."));
    let body = fs::read(format!("{w}/r.txz")).unwrap();
    let server = Server::start(vec![
        ("/dl/busybox-rootfs.tar.xz", Reply::Body(body.clone())),
        ("/short.tar.xz", Reply::Short(body)),
        ("/missing.tar.gz", Reply::NotFound),
    ]);

    let out = env.run(["install", &server.url("/dl/busybox-rootfs.tar.xz")]);
    ok(&out);
    assert_eq!(
        fs::read_to_string(env.rootfs("busybox-rootfs").join("etc/marker")).unwrap(),
        "downloaded"
    );
    assert_no_temp_files(&env);
    let out = env.run(["login", "busybox-rootfs", "--", "cat", "/etc/marker"]);
    ok(&out);
    assert_eq!(stdout(&out), "downloaded");

    let out = env.run(["install", &server.url("/short.tar.xz")]);
    let line = error_line(&out);
    assert!(line.contains("/short.tar.xz"), "{line}");
    assert_nothing_left(&env, "short");

    let out = env.run(["install", &server.url("/missing.tar.gz")]);
    let line = error_line(&out);
    assert!(line.contains("404"), "{line}");
    assert_nothing_left(&env, "missing");

    // A port nobody listens on.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let out = env.run([
        "install",
        &format!("http://127.0.0.1:{port}/x.tar"),
        "--name",
        "unreachable",
    ]);
    let line = error_line(&out);
    assert!(line.contains("cannot download"), "{line}");
    assert_nothing_left(&env, "unreachable");

    let out = env.run(["install", "ftp://127.0.0.1/x.tar"]);
    assert!(error_line(&out).contains("only http:// and https://"));
}

#[test]
fn ctrl_c_during_a_url_download_exits_130_and_leaves_nothing() {
    let env = test_env();
    let server = Server::start(vec![(
        "/slow.tar.gz",
        Reply::Trickle(random_bytes(4_000_000, 3)),
    )]);
    let child = spawn_collecting(env.cmd(["install", &server.url("/slow.tar.gz")]));
    let tmp = env.cache_dir().join("tmp");
    let deadline = Instant::now() + Duration::from_secs(20);
    let downloading = || {
        fs::read_dir(&tmp)
            .map(|d| {
                d.flatten()
                    .any(|e| e.metadata().is_ok_and(|m| m.len() > 50_000))
            })
            .unwrap_or(false)
    };
    while !downloading() {
        assert!(Instant::now() < deadline, "download never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = interrupt_and_wait(child, Duration::from_secs(15));
    assert_eq!(out.status.code(), Some(130), "{}", describe(&out));
    assert!(stderr(&out).contains("interrupted"), "{}", describe(&out));
    assert_nothing_left(&env, "slow");
}

#[test]
fn ctrl_c_while_a_server_says_nothing_exits_130_at_once() {
    let env = test_env();
    let reached = Arc::new(AtomicBool::new(false));
    let server = Server::start(vec![("/mute.tar", Reply::Silent(Arc::clone(&reached)))]);
    let child = spawn_collecting(env.cmd(["install", &server.url("/mute.tar")]));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !reached.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "the request never arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    // The response timeout is a minute; Ctrl-C must not wait for it.
    let out = interrupt_and_wait(child, Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(130), "{}", describe(&out));
    assert!(stderr(&out).contains("interrupted"), "{}", describe(&out));
    assert_nothing_left(&env, "mute");
}

/// `openssl s_server -WWW` serving `dir` over TLS on 127.0.0.1, with a fresh CA; killed on drop.
struct TlsFileServer {
    child: std::process::Child,
    port: u16,
    ca: std::path::PathBuf,
}

impl TlsFileServer {
    fn start(certs: &Path, www: &Path) -> TlsFileServer {
        let c = certs.display();
        let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
        sh(&format!(
            "cd {c} && openssl req -x509 {ec} -keyout ca.key -out ca.pem -days 2 -subj /CN=cd-test-ca 2>/dev/null \
             && openssl req {ec} -keyout server.key -out server.csr -subj /CN=localhost 2>/dev/null \
             && printf 'subjectAltName=IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\n' > server.ext \
             && openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
                -days 2 -extfile server.ext 2>/dev/null"
        ));
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let child = Command::new("openssl")
            .current_dir(www)
            .args(["s_server", "-quiet", "-WWW", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(certs.join("server.pem"))
            .arg("-key")
            .arg(certs.join("server.key"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "openssl s_server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        TlsFileServer {
            child,
            port,
            ca: certs.join("ca.pem"),
        }
    }
}

impl Drop for TlsFileServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn https_url_install_trusts_ssl_cert_file_and_refuses_an_unknown_ca() {
    let env = test_env();
    let work = tempfile::tempdir().unwrap();
    let www = work.path().join("www");
    let certs = work.path().join("certs");
    fs::create_dir_all(&www).unwrap();
    fs::create_dir_all(&certs).unwrap();
    let mut layout = OciLayout::create(&work.path().join("layout"));
    layout.add_image("v1", &image("over-tls"));
    skopeo_copy(
        &layout.dir,
        "v1",
        &format!("oci-archive:{}:v1", www.join("tls-image.oci.tar").display()),
        &[],
    );
    let server = TlsFileServer::start(&certs, &www);
    let url = format!("https://127.0.0.1:{}/tls-image.oci.tar", server.port);

    let out = env.run(["install", &url]);
    let line = error_line(&out);
    assert!(line.contains("SSL_CERT_FILE"), "{line}");
    assert_nothing_left(&env, "tls-image");

    let out = env
        .cmd(["install", &url])
        .env("SSL_CERT_FILE", &server.ca)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    ok(&out);
    let out = env.run(["run", "tls-image"]);
    ok(&out);
    assert_eq!(stdout(&out), "over-tls");
    assert_no_temp_files(&env);
}
