//! `remove_tree` and `dir_size` on real trees, including mounts inside the tree (in a private
//! mount namespace, so nothing leaks to the host).
#![allow(clippy::unwrap_used)]

mod common;

use std::os::fd::AsFd;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use cd_rootfs::{dir_size, remove_tree};

fn write(p: &Path, data: &[u8]) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A container-like tree next to a "host" directory the tree links to.
fn tree() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let host = dir.path().join("host");
    write(&host.join("keep"), b"host file");
    let c = dir.path().join("box");
    write(&c.join("rootfs/etc/passwd"), b"root:x:0:0::/root:/bin/sh\n");
    write(&c.join("rootfs/locked/deep/file"), b"x");
    write(&c.join("rootfs/ro/file"), b"y");
    symlink(&host, c.join("rootfs/hostlink")).unwrap();
    symlink("/", c.join("rootfs/rootlink")).unwrap();
    write(&c.join("manifest.json"), b"{}");
    chmod(&c.join("rootfs/locked/deep"), 0o000);
    chmod(&c.join("rootfs/locked"), 0o000);
    chmod(&c.join("rootfs/ro"), 0o500);
    (dir, c, host)
}

#[test]
fn remove_tree_deletes_locked_dirs_and_never_follows_symlinks() {
    let (_dir, c, host) = tree();
    let mut seen = Vec::new();
    let stats = remove_tree(&c, &mut |p| seen.push(p.to_path_buf())).unwrap();
    assert!(!c.exists());
    assert_eq!(std::fs::read(host.join("keep")).unwrap(), b"host file");
    assert!(Path::new("/etc/passwd").exists());
    assert_eq!(stats.files, 6, "{seen:?}");
    assert_eq!(stats.dirs, 6);
    // Four small files and six directories, each at least one block on any real filesystem.
    assert!(stats.bytes >= 10 * 512, "{stats:?}");
    assert!(seen.contains(&c.join("rootfs/locked/deep/file")));
}

#[test]
fn remove_tree_clears_immutable_and_append_only_flags() {
    let (_dir, c, _host) = tree();
    let f = c.join("rootfs/etc/passwd");
    let file = std::fs::File::open(&f).unwrap();
    let set = rustix::fs::ioctl_setflags(file.as_fd(), rustix::fs::IFlags::IMMUTABLE);
    if set.is_err() {
        eprintln!("skipping: the filesystem has no immutable flag");
        return;
    }
    let etc = std::fs::File::open(c.join("rootfs/etc")).unwrap();
    rustix::fs::ioctl_setflags(etc.as_fd(), rustix::fs::IFlags::APPEND).unwrap();
    drop((file, etc));
    remove_tree(&c, &mut |_| {}).unwrap();
    assert!(!c.exists());
}

#[test]
fn remove_tree_of_a_symlink_removes_only_the_link() {
    let (dir, _c, host) = tree();
    let link = dir.path().join("link");
    symlink(&host, &link).unwrap();
    remove_tree(&link, &mut |_| {}).unwrap();
    assert!(host.join("keep").exists());
    assert!(link.symlink_metadata().is_err());
}

#[test]
fn remove_tree_refuses_odd_paths() {
    assert!(remove_tree(Path::new("/"), &mut |_| {}).is_err());
    assert!(remove_tree(Path::new("a/.."), &mut |_| {}).is_err());
}

#[test]
fn remove_tree_stops_at_a_bind_mount_and_leaves_the_host_intact() {
    match common::in_private_mount_ns(
        "remove_tree_stops_at_a_bind_mount_and_leaves_the_host_intact",
    ) {
        Some(true) => {}
        _ => return,
    }
    let (_dir, c, host) = tree();
    let mnt = c.join("rootfs/sdcard");
    std::fs::create_dir_all(&mnt).unwrap();
    common::mount(&["--bind", host.to_str().unwrap(), mnt.to_str().unwrap()]);
    // A file bind mount too.
    let file_mnt = c.join("rootfs/etc/hosts");
    write(&file_mnt, b"");
    common::mount(&[
        "--bind",
        host.join("keep").to_str().unwrap(),
        file_mnt.to_str().unwrap(),
    ]);

    let err = remove_tree(&c, &mut |_| {}).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ResourceBusy, "{err}");
    assert!(err.to_string().contains("is a mount point"), "{err}");
    assert_eq!(std::fs::read(host.join("keep")).unwrap(), b"host file");
    assert!(mnt.join("keep").exists());

    // Once unmounted, the rest goes.
    for m in [&mnt, &file_mnt] {
        assert!(Command::new("umount").arg(m).status().unwrap().success());
    }
    remove_tree(&c, &mut |_| {}).unwrap();
    assert!(!c.exists());
    assert_eq!(std::fs::read(host.join("keep")).unwrap(), b"host file");
}

#[test]
fn dir_size_matches_du_and_counts_hard_links_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("r");
    write(&root.join("a/big"), &vec![1u8; 300_000]);
    write(&root.join("b/small"), b"tiny");
    std::fs::hard_link(root.join("a/big"), root.join("b/big-link")).unwrap();
    symlink("/usr", root.join("usr")).unwrap();
    let du = Command::new("du")
        .arg("-s")
        .arg("-B1")
        .arg(&root)
        .output()
        .unwrap();
    let du: u64 = String::from_utf8_lossy(&du.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let size = dir_size(&root);
    assert_eq!(size, du);
    let big = root.join("a/big").metadata().unwrap().blocks() * 512;
    assert!(size >= big && size < 2 * big, "{size} vs {big}");
    assert_eq!(dir_size(&dir.path().join("missing")), 0);
}

#[test]
fn dir_size_does_not_enter_mounts() {
    match common::in_private_mount_ns("dir_size_does_not_enter_mounts") {
        Some(true) => {}
        _ => return,
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("r");
    write(&root.join("f"), b"x");
    std::fs::create_dir(root.join("proc")).unwrap();
    let before = dir_size(&root);
    common::mount(&["-t", "tmpfs", "tmpfs", root.join("proc").to_str().unwrap()]);
    write(&root.join("proc/huge"), &vec![0u8; 4 << 20]);
    // The mount point itself is not counted either: at most what the tree held before.
    assert!(dir_size(&root) <= before, "{} > {before}", dir_size(&root));
}
