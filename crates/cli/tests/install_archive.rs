//! `install PATH` and `install URL` through the binary: rootfs tarballs in every compression
//! (sniffed, never taken from the name), OCI and docker archives written by skopeo, downloads
//! from a loopback HTTP server, and damaged or hostile input that must leave nothing behind.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use cd_testkit::busybox;
use cd_testkit::canary::Canary;
use cd_testkit::env::{describe, stderr, stdout, TestEnv};
use cd_testkit::fixture::{random_bytes, tar_bytes, Entry, ImageBuilder, OciLayout};
use cd_testkit::outcome::{
    assert_cache_verified, assert_no_temp_files, assert_nothing_left, error_line,
};
use serde_json::{json, Value};

fn test_env() -> TestEnv {
    TestEnv::new(env!("CARGO_BIN_EXE_chroot-distro"))
}

fn ok(out: &Output) {
    assert!(out.status.success(), "{}", describe(out));
}

fn sh(cmd: &str) {
    let st = Command::new("sh").args(["-c", cmd]).status().unwrap();
    assert!(st.success(), "{cmd}");
}

/// A busybox root filesystem at `dir`, with a file that says where it came from.
fn busybox_tree(dir: &Path, marker: &str) {
    busybox::populate(dir);
    fs::write(dir.join("etc/marker"), marker).unwrap();
    // A hard link, whose target name must be stripped along with the entry names.
    fs::hard_link(dir.join("etc/marker"), dir.join("etc/marker-link")).unwrap();
}

const COMPRESSIONS: &[(&str, &str)] = &[
    ("gzip", "gzip -c"),
    ("bzip2", "bzip2 -c"),
    ("xz", "xz -c"),
    ("lzma", "lzma -c"),
    ("zstd", "zstd -q -c"),
    ("none", "cat"),
];

#[test]
fn rootfs_tarballs_install_in_every_compression_whatever_their_name() {
    let env = test_env();
    let work = tempfile::tempdir().unwrap();
    let w = work.path().display().to_string();
    busybox_tree(&work.path().join("flat"), "flat");
    busybox_tree(&work.path().join("nested/myroot"), "nested");
    sh(&format!("tar -C {w}/flat -cf {w}/flat.tar ."));
    sh(&format!("tar -C {w}/nested -cf {w}/nested.tar myroot"));
    for (layout, marker) in [("flat", "flat"), ("nested", "nested")] {
        for (codec, command) in COMPRESSIONS {
            // A name that lies about the format: detection must go by the bytes.
            let file = format!("{w}/{layout}-{codec}.tar.gz.zip");
            sh(&format!("{command} < {w}/{layout}.tar > {file}"));
            let name = format!("{layout}-{codec}");
            let out = env.run(["install", &file, "--name", &name]);
            ok(&out);
            let root = env.rootfs(&name);
            assert_eq!(
                fs::read_to_string(root.join("etc/marker")).unwrap(),
                marker,
                "{name}"
            );
            assert!(root.join("bin/busybox").is_file(), "{name}");
            assert_eq!(
                fs::metadata(root.join("etc/marker")).unwrap().ino(),
                fs::metadata(root.join("etc/marker-link")).unwrap().ino(),
                "{name}: hard link kept"
            );
            assert!(
                !root.join("myroot").exists(),
                "{name}: the folder is stripped"
            );
            assert_eq!(
                fs::metadata(root.join("home/alice")).unwrap().uid(),
                1000,
                "{name}: owners kept"
            );
            assert!(
                !env.container_dir(&name).join("manifest.json").exists(),
                "{name}: a rootfs tarball has no image record"
            );
        }
    }
    assert_no_temp_files(&env);

    // The default name is the file name without its archive suffixes.
    fs::copy(
        format!("{w}/flat-xz.tar.gz.zip"),
        format!("{w}/alpine-rootfs.tar.xz"),
    )
    .unwrap();
    ok(&env.run(["install", &format!("{w}/alpine-rootfs.tar.xz")]));
    assert!(env.rootfs("alpine-rootfs").join("bin/busybox").is_file());

    let out = env.run(["login", "nested-zstd", "--", "cat", "/etc/marker"]);
    ok(&out);
    assert_eq!(stdout(&out), "nested");

    // No image: `run` and `reset` say so instead of guessing.
    let out = env.run(["reset", "flat-gzip"]);
    assert!(
        error_line(&out).contains("plain rootfs archive"),
        "{}",
        describe(&out)
    );
    let out = env.run(["run", "flat-gzip"]);
    assert_ne!(out.status.code(), Some(0), "{}", describe(&out));
}

#[test]
fn rootfs_tarball_with_dot_prefixes_and_an_odd_folder_is_not_stripped() {
    let env = test_env();
    let work = tempfile::tempdir().unwrap();
    let w = work.path().display().to_string();
    busybox_tree(&work.path().join("t"), "dots");
    fs::create_dir_all(work.path().join("t/home/alice/etc")).unwrap();
    sh(&format!("tar -C {w}/t -czf {w}/dots.tgz ./"));
    ok(&env.run(["install", &format!("{w}/dots.tgz")]));
    let root = env.rootfs("dots");
    assert_eq!(fs::read_to_string(root.join("etc/marker")).unwrap(), "dots");
    assert!(root.join("home/alice/etc").is_dir());
}

/// An image with two layers: busybox plus a change layer with a whiteout, and an entrypoint.
fn image(marker: &str) -> ImageBuilder {
    ImageBuilder::new()
        .layer(
            [
                busybox::layer_entries(),
                vec![
                    Entry::file("etc/doomed", "lower", 0o644),
                    Entry::file("etc/marker", "lower", 0o644),
                ],
            ]
            .concat(),
        )
        .layer(vec![
            Entry::whiteout("etc/doomed"),
            Entry::file("etc/marker", marker, 0o644),
        ])
        .config("Entrypoint", json!(["/bin/cat", "/etc/marker"]))
}

/// An OCI layout with `tag` written by `fill`, copied by skopeo to `dest` (e.g.
/// `oci-archive:/x.tar:tag`).
fn skopeo_copy(layout: &Path, tag: &str, dest: &str, extra: &[&str]) {
    let out = Command::new("skopeo")
        .arg("copy")
        .args(extra)
        .arg(format!("oci:{}:{tag}", layout.display()))
        .arg(dest)
        .output()
        .unwrap();
    assert!(out.status.success(), "skopeo: {}", describe(&out));
}

fn record(env: &TestEnv, name: &str) -> Value {
    serde_json::from_slice(&fs::read(env.container_dir(name).join("manifest.json")).unwrap())
        .unwrap()
}

#[test]
fn oci_archive_from_skopeo_installs_runs_and_resets() {
    let env = test_env();
    let work = tempfile::tempdir().unwrap();
    let mut layout = OciLayout::create(&work.path().join("layout"));
    let written = layout.add_image("v1", &image("from-oci"));
    let archive = work.path().join("image.oci");
    skopeo_copy(
        &layout.dir,
        "v1",
        &format!("oci-archive:{}:v1", archive.display()),
        &[],
    );
    let out = env.run(["install", &archive.display().to_string()]);
    ok(&out);
    let root = env.rootfs("image");
    assert_eq!(
        fs::read_to_string(root.join("etc/marker")).unwrap(),
        "from-oci"
    );
    assert!(!root.join("etc/doomed").exists(), "whiteout applied");
    assert!(!root.join("etc/.wh.doomed").exists());
    let rec = record(&env, "image");
    assert_eq!(rec["arch"], std::env::consts::ARCH);
    assert_eq!(
        rec["manifest"]["config"]["digest"].as_str(),
        Some(written.config_digest.as_str())
    );
    assert!(
        stderr(&out).contains("chroot-distro run image"),
        "{}",
        describe(&out)
    );

    let out = env.run(["run", "image"]);
    ok(&out);
    assert_eq!(stdout(&out), "from-oci");
    let out = env.run(["login", "image", "--", "cat", "/etc/marker"]);
    ok(&out);
    assert_eq!(stdout(&out), "from-oci");

    // Reset rebuilds from the cached layers: the archive is gone by now.
    fs::remove_file(&archive).unwrap();
    fs::write(root.join("etc/marker"), "changed").unwrap();
    ok(&env.run(["reset", "image"]));
    assert_eq!(
        fs::read_to_string(env.rootfs("image").join("etc/marker")).unwrap(),
        "from-oci"
    );
    assert_no_temp_files(&env);
    assert_cache_verified(&env);
    // Only the image's layers went into the cache (no configs, manifests or index).
    let cached: Vec<_> = fs::read_dir(env.cache_dir().join("oci_layers"))
        .unwrap()
        .collect();
    assert_eq!(cached.len(), written.layer_digests.len());
}

/// The GOARCH of an architecture that is not the host's.
fn foreign_goarch() -> (&'static str, &'static str) {
    if std::env::consts::ARCH == "aarch64" {
        ("amd64", "x86_64")
    } else {
        ("arm64", "aarch64")
    }
}

#[test]
fn multi_platform_oci_archive_installs_the_host_or_the_asked_architecture() {
    let env = test_env();
    let work = tempfile::tempdir().unwrap();
    let (goarch, arch) = foreign_goarch();
    let mut layout = OciLayout::create(&work.path().join("layout"));
    let foreign = ImageBuilder::new().arch(goarch, None).layer(vec![
        Entry::dir("etc", 0o755),
        Entry::file("etc/marker", goarch, 0o644),
    ]);
    layout.add_index("multi", &[foreign, image("host")]);
    let archive = work.path().join("multi.tar");
    skopeo_copy(
        &layout.dir,
        "multi",
        &format!("oci-archive:{}:multi", archive.display()),
        &["--all"],
    );
    let file = archive.display().to_string();

    ok(&env.run(["install", &file]));
    assert_eq!(
        fs::read_to_string(env.rootfs("multi").join("etc/marker")).unwrap(),
        "host"
    );
    let out = env.run(["login", "multi", "--", "cat", "/etc/marker"]);
    ok(&out);
    assert_eq!(stdout(&out), "host");

    ok(&env.run(["install", &file, "--name", "other", "--architecture", arch]));
    assert_eq!(
        fs::read_to_string(env.rootfs("other").join("etc/marker")).unwrap(),
        goarch
    );
    assert_eq!(record(&env, "other")["arch"], arch);

    let out = env.run(["install", &file, "--name", "nope", "-a", "riscv64"]);
    let line = error_line(&out);
    assert!(line.contains("no image for linux/riscv64"), "{line}");
    assert_nothing_left(&env, "nope");
}

#[test]
fn docker_archive_from_skopeo_installs_and_resets() {
    let env = test_env();
    let work = tempfile::tempdir().unwrap();
    let mut layout = OciLayout::create(&work.path().join("layout"));
    layout.add_image("v1", &image("from-docker"));
    let archive = work.path().join("saved.tar");
    skopeo_copy(
        &layout.dir,
        "v1",
        &format!("docker-archive:{}:example/saved:v1", archive.display()),
        &[],
    );
    ok(&env.run(["install", &archive.display().to_string()]));
    let root = env.rootfs("saved");
    assert_eq!(
        fs::read_to_string(root.join("etc/marker")).unwrap(),
        "from-docker"
    );
    assert!(!root.join("etc/doomed").exists(), "whiteout applied");
    let rec = record(&env, "saved");
    assert_eq!(rec["manifest"]["layers"].as_array().unwrap().len(), 2);
    assert_eq!(rec["image_config"]["config"]["Entrypoint"][0], "/bin/cat");

    let out = env.run(["login", "saved", "--", "cat", "/etc/marker"]);
    ok(&out);
    assert_eq!(stdout(&out), "from-docker");
    fs::remove_file(root.join("etc/marker")).unwrap();
    ok(&env.run(["reset", "saved"]));
    assert_eq!(
        fs::read_to_string(env.rootfs("saved").join("etc/marker")).unwrap(),
        "from-docker"
    );
    assert_no_temp_files(&env);
    assert_cache_verified(&env);
}

#[test]
fn truncated_corrupt_and_random_files_fail_with_one_line_and_leave_nothing() {
    let env = test_env();
    let work = tempfile::tempdir().unwrap();
    let w = work.path().display().to_string();
    busybox_tree(&work.path().join("t"), "t");
    sh(&format!("tar -C {w}/t -cf {w}/plain.tar ."));
    sh(&format!("gzip -c < {w}/plain.tar > {w}/full.tgz"));
    sh(&format!("xz -c < {w}/plain.tar > {w}/full.txz"));
    let mut layout = OciLayout::create(&work.path().join("layout"));
    layout.add_image("v1", &image("x"));
    skopeo_copy(
        &layout.dir,
        "v1",
        &format!("oci-archive:{w}/full.oci:v1"),
        &[],
    );
    skopeo_copy(
        &layout.dir,
        "v1",
        &format!("docker-archive:{w}/full.docker:x/y:v1"),
        &[],
    );

    let plain = fs::read(format!("{w}/plain.tar")).unwrap();
    let half = |name: &str| {
        let data = fs::read(format!("{w}/{name}")).unwrap();
        data[..data.len() / 2].to_vec()
    };
    // Cut right before the last entry's header: every block is whole, and the tar parser
    // alone would take this for a shorter, complete archive.
    let last_header = tar::Archive::new(&plain[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().raw_header_position())
        .last()
        .unwrap();
    let at_block = plain[..last_header as usize].to_vec();
    // A flipped byte in a layer blob of an otherwise well-formed OCI archive.
    let layer_hex = &layout_layer_hexes(&layout.dir)[0];
    let blob = layout.dir.join("blobs/sha256").join(layer_hex);
    let mut bytes = fs::read(&blob).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::write(&blob, bytes).unwrap();
    let flipped = layout_tar(&layout.dir, Vec::new());

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("half-gzip", half("full.tgz"), "truncated"),
        ("half-xz", half("full.txz"), "truncated"),
        (
            "half-plain",
            plain[..plain.len() / 2 + 100].to_vec(),
            "truncated",
        ),
        ("block-cut", at_block, "end-of-archive marker"),
        ("half-oci", half("full.oci"), "truncated"),
        ("half-docker", half("full.docker"), "truncated"),
        ("corrupt-oci-blob", flipped, "is corrupt"),
        (
            "random",
            random_bytes(200_000, 0x9e37_79b9_7f4a_7c15),
            "not a tar archive",
        ),
        (
            "gzip-of-random",
            gzip_of(&random_bytes(50_000, 7)),
            "not a tar archive",
        ),
        ("empty", Vec::new(), "empty"),
        (
            "text",
            b"just some text, not an archive\n".to_vec(),
            "not a tar archive",
        ),
    ];
    for (name, data, expected) in cases {
        let file = format!("{w}/{name}.tar.gz");
        fs::write(&file, &data).unwrap();
        let out = env.run(["install", &file, "--name", name]);
        let line = error_line(&out);
        assert!(line.contains(expected), "{name}: {line}");
        assert!(line.len() < 300, "{name}: {line}");
        assert_nothing_left(&env, name);
    }
    let out = env.run(["install", "./no/such/file.tar", "--name", "missing"]);
    assert!(error_line(&out).contains("no/such/file.tar"));
    let out = env.run(["install", &w, "--name", "dir"]);
    assert!(error_line(&out).contains("is a directory"));
}

fn gzip_of(data: &[u8]) -> Vec<u8> {
    cd_testkit::fixture::gzip(data)
}

/// The hex digests of the layer blobs of the single image in an OCI layout directory.
fn layout_layer_hexes(dir: &Path) -> Vec<String> {
    let index: Value = serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
    let blob = |d: &Value| -> Value {
        let hex = d["digest"].as_str().unwrap().trim_start_matches("sha256:");
        serde_json::from_slice(&fs::read(dir.join("blobs/sha256").join(hex)).unwrap()).unwrap()
    };
    let manifest = blob(&index["manifests"][0]);
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            l["digest"]
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:")
                .to_string()
        })
        .collect()
}

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
    let (status, body, sent, slow): (&str, &[u8], usize, bool) = match reply {
        Some(Reply::Body(b)) => ("200 OK", b, b.len(), false),
        Some(Reply::Short(b)) => ("200 OK", b, b.len() / 2, false),
        Some(Reply::Trickle(b)) => ("200 OK", b, b.len(), true),
        Some(Reply::NotFound) | None => ("404 Not Found", b"", 0, false),
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

/// Root markers so the tarball classifies as a root filesystem and reaches the applier.
fn rootfs_with(hostile: Vec<Entry>) -> Vec<u8> {
    let mut entries = vec![
        Entry::dir("bin", 0o755),
        Entry::dir("etc", 0o755),
        Entry::dir("usr", 0o755),
        Entry::file("etc/os-release", "ID=hostile\n", 0o644),
    ];
    entries.extend(hostile);
    tar_bytes(&entries)
}

#[test]
fn hostile_tarballs_leave_a_host_canary_untouched() {
    let env = test_env();
    let work = tempfile::tempdir().unwrap();
    let canary = Canary::new();
    let canary_s = canary.file_str();
    let outside_s = canary.dir().display().to_string();
    let up = "../".repeat(12);
    let cases: Vec<(&str, Vec<Entry>)> = vec![
        (
            "dotdot",
            vec![Entry::file(
                &format!("{up}{}", canary_s.trim_start_matches('/')),
                "overwritten",
                0o644,
            )],
        ),
        (
            "absolute",
            vec![
                Entry::file(&canary_s, "overwritten", 0o644),
                Entry::file(&format!("{outside_s}/planted"), "planted", 0o644),
            ],
        ),
        (
            "symlink-parent",
            vec![
                Entry::symlink("etc/evil", &outside_s),
                Entry::file("etc/evil/canary", "overwritten", 0o644),
                Entry::file("etc/evil/planted", "planted", 0o644),
            ],
        ),
        (
            "relative-symlink-parent",
            vec![
                Entry::symlink(
                    "etc/up",
                    &format!("{up}{}", outside_s.trim_start_matches('/')),
                ),
                Entry::file("etc/up/canary", "overwritten", 0o644),
            ],
        ),
        (
            "hardlink-then-write",
            vec![
                Entry::hardlink("etc/stolen", &canary_s),
                Entry::file("etc/stolen", "overwritten", 0o644),
            ],
        ),
        (
            "symlink-then-write",
            vec![
                Entry::symlink("etc/link", &canary_s),
                Entry::file("etc/link", "overwritten", 0o644),
            ],
        ),
    ];
    for (name, entries) in cases {
        let file = work.path().join(format!("{name}.tar"));
        fs::write(&file, rootfs_with(entries)).unwrap();
        let out = env.run(["install", &file.display().to_string()]);
        canary.assert_untouched(&format!("{name}\n{}", describe(&out)));
        if name == "absolute" {
            // An absolute name means the same path inside the root.
            ok(&out);
            let inside = env.rootfs(name).join(canary_s.trim_start_matches('/'));
            assert_eq!(fs::read_to_string(inside).unwrap(), "overwritten");
        }
        if out.status.success() {
            // Whatever was made stays inside the rootfs and is not the host's inode.
            for p in ["etc/stolen", "etc/link"] {
                assert!(!canary.is_same_inode(&env.rootfs(name).join(p)), "{name}");
            }
        } else {
            error_line(&out);
            assert_nothing_left(&env, name);
        }
    }
}

#[test]
fn ctrl_c_during_a_url_download_exits_130_and_leaves_nothing() {
    let env = test_env();
    let server = Server::start(vec![(
        "/slow.tar.gz",
        Reply::Trickle(random_bytes(4_000_000, 3)),
    )]);
    let mut child = env
        .cmd(["install", &server.url("/slow.tar.gz")])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
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
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let waited = Instant::now();
    let out = loop {
        if child.try_wait().unwrap().is_some() {
            break child.wait_with_output().unwrap();
        }
        if waited.elapsed() > Duration::from_secs(15) {
            let _ = child.kill();
            panic!("install did not stop after SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(out.status.code(), Some(130), "{}", describe(&out));
    assert!(stderr(&out).contains("interrupted"), "{}", describe(&out));
    assert_nothing_left(&env, "slow");
}

/// An OCI layout directory as tar entries (what `oci-archive:` holds), plus `extra`.
fn layout_tar(dir: &Path, extra: Vec<Entry>) -> Vec<u8> {
    let mut entries = vec![
        Entry::file(
            "oci-layout",
            fs::read(dir.join("oci-layout")).unwrap(),
            0o644,
        ),
        Entry::file(
            "index.json",
            fs::read(dir.join("index.json")).unwrap(),
            0o644,
        ),
    ];
    for blob in fs::read_dir(dir.join("blobs/sha256")).unwrap() {
        let blob = blob.unwrap();
        let name = format!("blobs/sha256/{}", blob.file_name().to_string_lossy());
        entries.push(Entry::file(&name, fs::read(blob.path()).unwrap(), 0o644));
    }
    entries.extend(extra);
    tar_bytes(&entries)
}

#[test]
fn hostile_image_archives_leave_a_host_canary_untouched() {
    let env = test_env();
    let work = tempfile::tempdir().unwrap();
    let canary = Canary::new();
    let canary_s = canary.file_str();
    let up = "../".repeat(12);
    let climbing = format!("{up}{}", canary_s.trim_start_matches('/'));

    // Archive-level tricks: names that climb out, and a blob that is a link to a host file.
    let mut layout = OciLayout::create(&work.path().join("plain"));
    let written = layout.add_image("v1", &image("x"));
    let config_hex = written.config_digest.trim_start_matches("sha256:");
    let tricks = layout_tar(
        &layout.dir,
        vec![
            Entry::file(&climbing, "overwritten", 0o644),
            Entry::file(&canary_s, "overwritten", 0o644),
        ],
    );
    let linked_blob = layout_tar(
        &layout.dir,
        vec![Entry::symlink(
            &format!("blobs/sha256/{config_hex}"),
            &canary_s,
        )],
    );
    // Layer-level tricks: the image itself tries to escape.
    let mut layout = OciLayout::create(&work.path().join("evil"));
    layout.add_image(
        "v1",
        &ImageBuilder::new()
            .layer(busybox::layer_entries())
            .layer(vec![
                Entry::symlink("evil", &canary.dir().display().to_string()),
                Entry::file("evil/canary", "overwritten", 0o644),
                Entry::file(&climbing, "overwritten", 0o644),
            ]),
    );
    let evil_layer = layout_tar(&layout.dir, Vec::new());

    for (name, data, installs) in [
        ("tricks", tricks, true),
        ("linked-blob", linked_blob, false),
        ("evil-layer", evil_layer, false),
    ] {
        let file = work.path().join(format!("{name}.oci"));
        fs::write(&file, data).unwrap();
        let out = env.run(["install", &file.display().to_string()]);
        canary.assert_untouched(name);
        assert_eq!(out.status.success(), installs, "{name}: {}", describe(&out));
        if installs {
            assert_eq!(
                fs::read_to_string(env.rootfs(name).join("etc/marker")).unwrap(),
                "x"
            );
        } else {
            error_line(&out);
            assert_nothing_left(&env, name);
        }
    }
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
