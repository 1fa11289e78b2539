//! `diff` end to end: a container made on disk from cached layers, then changed.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::io::Write;
use std::process::{Command, Stdio};

use cd_testkit::busybox;
use cd_testkit::env::{describe, stderr, stdout, TestEnv};
use cd_testkit::fixture::{digest, gzip, sha256_hex, tar_bytes, Entry};
use serde_json::json;

fn env() -> TestEnv {
    TestEnv::new(env!("CARGO_BIN_EXE_chroot-distro"))
}

/// Two layers: busybox plus a few files and a hard link, then a whiteout and a new file.
fn layers() -> Vec<Vec<Entry>> {
    let mut base = busybox::layer_entries();
    base.extend([
        Entry::file("etc/hosts", "127.0.0.1 localhost\n", 0o644),
        Entry::file("etc/motd", "hello\n", 0o644),
        Entry::dir("usr/share", 0o755),
        Entry::file("usr/share/a", "shared data", 0o644),
        Entry::hardlink("usr/share/b", "usr/share/a"),
        Entry::file("bin/passwd", "suid", 0o4755),
    ]);
    let top = vec![
        Entry::whiteout("etc/motd"),
        Entry::file("etc/issue", "fixture 2\n", 0o644),
    ];
    vec![base, top]
}

/// Cache the layers, record them, and lay them down as the rootfs (GNU tar, then whiteouts).
fn make_image_container(env: &TestEnv, name: &str) {
    let cache = env.cache_dir().join("oci_layers");
    fs::create_dir_all(&cache).unwrap();
    let rootfs = env.rootfs(name);
    fs::create_dir_all(&rootfs).unwrap();
    let mut descriptors = Vec::new();
    for entries in layers() {
        let tar = tar_bytes(&entries);
        let blob = gzip(&tar);
        fs::write(cache.join(format!("sha256_{}", sha256_hex(&blob))), &blob).unwrap();
        descriptors.push(json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": digest(&blob),
            "size": blob.len(),
        }));
        let mut child = Command::new("tar")
            .args(["-xpf", "-", "--numeric-owner", "-C"])
            .arg(&rootfs)
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&tar).unwrap();
        assert!(child.wait().unwrap().success());
        for e in &entries {
            if let Some((dir, hidden)) = e.path.rsplit_once("/.wh.") {
                fs::remove_file(rootfs.join(&e.path)).unwrap();
                let _ = fs::remove_file(rootfs.join(dir).join(hidden));
            }
        }
    }
    let record = json!({
        "image_ref": "fixture:diff",
        "arch": "amd64",
        "manifest": {"schemaVersion": 2, "layers": descriptors},
        "image_config": {},
    });
    fs::write(
        env.container_dir(name).join("manifest.json"),
        serde_json::to_vec_pretty(&record).unwrap(),
    )
    .unwrap();
}

fn diff_lines(env: &TestEnv, name: &str) -> Vec<String> {
    let out = env.run(["diff", name]);
    assert!(out.status.success(), "{}", describe(&out));
    stdout(&out).lines().map(str::to_string).collect()
}

#[test]
fn untouched_container_with_hard_links_has_no_changes() {
    let env = env();
    make_image_container(&env, "img");
    let root = env.rootfs("img");
    assert_eq!(
        fs::metadata(root.join("usr/share/a")).unwrap().len(),
        fs::metadata(root.join("usr/share/b")).unwrap().len()
    );
    assert_eq!(diff_lines(&env, "img"), Vec::<String>::new());
}

#[test]
fn changed_deleted_and_added_files_are_marked_like_docker_diff() {
    let env = env();
    make_image_container(&env, "img");
    let root = env.rootfs("img");
    fs::write(root.join("etc/hosts"), "127.0.0.1 changed\n").unwrap();
    fs::remove_file(root.join("etc/issue")).unwrap();
    fs::create_dir_all(root.join("root/new")).unwrap();
    fs::write(root.join("root/new/file"), "added").unwrap();
    // Pseudo-filesystem mount points are not compared.
    fs::write(root.join("tmp/scratch"), "x").unwrap();
    assert_eq!(
        diff_lines(&env, "img"),
        vec![
            "C /etc",
            "C /etc/hosts",
            "D /etc/issue",
            "C /root",
            "A /root/new",
            "A /root/new/file",
        ]
    );
}

#[test]
fn mode_changes_and_whiteouts_are_seen() {
    let env = env();
    make_image_container(&env, "img");
    let root = env.rootfs("img");
    // Recreating a file the top layer whited out is an addition.
    fs::write(root.join("etc/motd"), "back\n").unwrap();
    fs::set_permissions(
        root.join("bin/passwd"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    assert_eq!(
        diff_lines(&env, "img"),
        vec!["C /bin", "C /bin/passwd", "C /etc", "A /etc/motd"]
    );
}

#[test]
fn missing_cached_layers_give_a_clear_error() {
    let env = env();
    make_image_container(&env, "img");
    fs::remove_dir_all(env.cache_dir().join("oci_layers")).unwrap();
    let out = env.run(["diff", "img"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no longer cached"),
        "{}",
        describe(&out)
    );

    env.make_container("plain", busybox::populate);
    let out = env.run(["diff", "plain"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not installed from an image"),
        "{}",
        describe(&out)
    );
}

#[test]
fn a_second_diff_reads_the_kept_layer_index_and_a_damaged_index_is_ignored() {
    let env = env();
    make_image_container(&env, "img");
    fs::write(env.rootfs("img").join("etc/hosts"), "changed\n").unwrap();
    let first = diff_lines(&env, "img");
    assert_eq!(first, vec!["C /etc", "C /etc/hosts"]);
    let index_dir = env.cache_dir().join("diff_index");
    let kept: Vec<_> = fs::read_dir(&index_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(kept.len(), 2, "one index per layer");
    // The second run answers from the indexes alone: the blobs may even be unreadable.
    for blob in fs::read_dir(env.cache_dir().join("oci_layers")).unwrap() {
        fs::write(blob.unwrap().path(), b"not gzip any more").unwrap();
    }
    assert_eq!(diff_lines(&env, "img"), first);
    // A damaged index is not trusted: the layer is read again (and here fails loudly).
    fs::write(&kept[0], b"garbage").unwrap();
    let out = env.run(["diff", "img"]);
    assert!(!out.status.success(), "{}", describe(&out));
}
