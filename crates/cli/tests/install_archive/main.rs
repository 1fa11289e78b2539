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
    interrupt_and_wait, spawn_collecting,
};
use serde_json::{json, Value};

mod hostile;
mod image_archives;
mod tarballs;
mod urls;

pub(crate) fn test_env() -> TestEnv {
    TestEnv::new(env!("CARGO_BIN_EXE_chroot-distro"))
}

pub(crate) fn ok(out: &Output) {
    assert!(out.status.success(), "{}", describe(out));
}

pub(crate) fn sh(cmd: &str) {
    let st = Command::new("sh").args(["-c", cmd]).status().unwrap();
    assert!(st.success(), "{cmd}");
}

/// A busybox root filesystem at `dir`, with a file that says where it came from.
pub(crate) fn busybox_tree(dir: &Path, marker: &str) {
    busybox::populate(dir);
    fs::write(dir.join("etc/marker"), marker).unwrap();
    // A hard link, whose target name must be stripped along with the entry names.
    fs::hard_link(dir.join("etc/marker"), dir.join("etc/marker-link")).unwrap();
}

pub(crate) const COMPRESSIONS: &[(&str, &str)] = &[
    ("gzip", "gzip -c"),
    ("bzip2", "bzip2 -c"),
    ("xz", "xz -c"),
    ("lzma", "lzma -c"),
    ("zstd", "zstd -q -c"),
    ("none", "cat"),
];

/// An image with two layers: busybox plus a change layer with a whiteout, and an entrypoint.
pub(crate) fn image(marker: &str) -> ImageBuilder {
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
pub(crate) fn skopeo_copy(layout: &Path, tag: &str, dest: &str, extra: &[&str]) {
    let scratch = tempfile::tempdir().unwrap();
    let out = cd_testkit::registry::containers_tool("skopeo", scratch.path())
        .arg("copy")
        .args(extra)
        .arg(format!("oci:{}:{tag}", layout.display()))
        .arg(dest)
        .output()
        .unwrap();
    assert!(out.status.success(), "skopeo: {}", describe(&out));
}

pub(crate) fn record(env: &TestEnv, name: &str) -> Value {
    serde_json::from_slice(&fs::read(env.container_dir(name).join("manifest.json")).unwrap())
        .unwrap()
}

/// The GOARCH of an architecture that is not the host's.
pub(crate) fn foreign_goarch() -> (&'static str, &'static str) {
    if std::env::consts::ARCH == "aarch64" {
        ("amd64", "x86_64")
    } else {
        ("arm64", "aarch64")
    }
}

pub(crate) fn gzip_of(data: &[u8]) -> Vec<u8> {
    cd_testkit::fixture::gzip(data)
}

/// The hex digests of the layer blobs of the single image in an OCI layout directory.
pub(crate) fn layout_layer_hexes(dir: &Path) -> Vec<String> {
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

/// Root markers so the tarball classifies as a root filesystem and reaches the applier.
pub(crate) fn rootfs_with(hostile: Vec<Entry>) -> Vec<u8> {
    let mut entries = vec![
        Entry::dir("bin", 0o755),
        Entry::dir("etc", 0o755),
        Entry::dir("usr", 0o755),
        Entry::file("etc/os-release", "ID=hostile\n", 0o644),
    ];
    entries.extend(hostile);
    tar_bytes(&entries)
}

/// An OCI layout directory as tar entries (what `oci-archive:` holds), plus `extra`.
pub(crate) fn layout_tar(dir: &Path, extra: Vec<Entry>) -> Vec<u8> {
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
