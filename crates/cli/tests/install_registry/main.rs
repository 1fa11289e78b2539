//! `install` and `reset` through the binary, against Debian's real `docker-registry` on
//! 127.0.0.1 (filled with skopeo; `real.rs`) and against a scripted misbehaving fake
//! (`faults.rs`).
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use cd_testkit::busybox;
use cd_testkit::canary::Canary;
use cd_testkit::env::{describe, stderr, TestEnv};
use cd_testkit::fakereg::{FakeRegistry, Fault};
use cd_testkit::fixture::{
    gzip, random_bytes, tar_bytes, Entry, ImageBuilder, OciLayout, WrittenImage,
};
use cd_testkit::outcome::{assert_nothing_left, error_line, interrupt_and_wait, spawn_collecting};
use cd_testkit::registry::LocalRegistry;
use serde_json::{json, Value};

mod buildah;
mod faults;
mod real;
mod umoci;

pub(crate) fn test_env() -> TestEnv {
    TestEnv::new(env!("CARGO_BIN_EXE_chroot-distro"))
}

/// Push `image` to `reg` as `repo_tag` through an OCI layout and skopeo.
pub(crate) fn push(reg: &LocalRegistry, repo_tag: &str, image: &ImageBuilder) -> WrittenImage {
    let dir = tempfile::tempdir().unwrap();
    let mut layout = OciLayout::create(dir.path());
    let written = layout.add_image("t", image);
    reg.push_oci_dir(dir.path(), "t", repo_tag, &[]);
    written
}

pub(crate) fn host_arch_name() -> &'static str {
    std::env::consts::ARCH
}

pub(crate) fn cached_blob(env: &TestEnv, digest: &str) -> PathBuf {
    env.cache_dir()
        .join("oci_layers")
        .join(digest.replace(':', "_"))
}

/// Where a download of `digest` collects its bytes until verified.
pub(crate) fn partial_blob(env: &TestEnv, digest: &str) -> PathBuf {
    let mut name = cached_blob(env, digest).into_os_string();
    name.push(".partial");
    PathBuf::from(name)
}

pub(crate) fn assert_nothing_left_but(env: &TestEnv, name: &str) {
    let names: Vec<String> = std::fs::read_dir(env.store_dir().join("containers"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec![name.to_string()]);
}

/// A one-layer image served by the fake as `repo:1`; returns the layer blob's digest.
pub(crate) fn fake_image(
    fake: &FakeRegistry,
    repo: &str,
    layer_tar: &[u8],
    diff_id: Option<String>,
) -> String {
    let blob = gzip(layer_tar);
    let layer_digest = fake.put_blob(&blob);
    let diff_id = diff_id.unwrap_or_else(|| cd_testkit::fixture::digest(layer_tar));
    let config = json!({
        "architecture": cd_testkit::fixture::host_goarch(), "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    });
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let config_digest = fake.put_blob(&config_bytes);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config_bytes.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer_digest, "size": blob.len()}],
    });
    fake.put_manifest(
        repo,
        "1",
        "application/vnd.oci.image.manifest.v1+json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    layer_digest
}

pub(crate) fn small_layer() -> Vec<u8> {
    tar_bytes(&[
        Entry::dir("etc", 0o755),
        Entry::file("etc/motd", "hello", 0o644),
    ])
}
