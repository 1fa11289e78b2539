use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::*;

fn container(rootfs: &Path, path: &str) -> Location {
    Location::Container {
        name: "box".into(),
        rootfs: rootfs.to_path_buf(),
        path: PathBuf::from(path),
    }
}

fn host(path: &Path) -> Location {
    Location::Host {
        path: path.to_path_buf(),
    }
}

fn events_of(
    f: impl FnOnce(&mut dyn FnMut(TransferEvent<'_>)) -> Result<TransferStats, TransferError>,
) -> (TransferStats, Vec<String>) {
    let mut seen = Vec::new();
    let stats = f(&mut |e| seen.push(format!("{e:?}"))).unwrap();
    (stats, seen)
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    host: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("rootfs");
    let host = dir.path().join("host");
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::create_dir_all(&host).unwrap();
    // The classic escape: a directory symlink to "/" inside the container.
    symlink("/", root.join("etc/evil")).unwrap();
    Fixture {
        _dir: dir,
        root,
        host,
    }
}

#[test]
fn copy_into_container_through_absolute_symlink_stays_inside() {
    let f = fixture();
    fs::write(f.host.join("payload"), b"data").unwrap();
    copy(
        &host(&f.host.join("payload")),
        &container(&f.root, "/etc/evil/tmp-cd-test-payload"),
        &CopyOptions::default(),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(
        fs::read(f.root.join("tmp-cd-test-payload")).unwrap(),
        b"data"
    );
    assert!(!Path::new("/tmp-cd-test-payload").exists());
}

#[test]
fn copy_out_of_container_through_symlink_reads_the_containers_file() {
    let f = fixture();
    fs::write(f.root.join("etc/hostname"), b"inside").unwrap();
    copy(
        &container(&f.root, "/etc/evil/etc/hostname"),
        &host(&f.host),
        &CopyOptions::default(),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(fs::read(f.host.join("hostname")).unwrap(), b"inside");
}

#[test]
fn recursive_copy_keeps_symlinks_and_modes() {
    let f = fixture();
    let src = f.host.join("app");
    fs::create_dir_all(src.join("bin")).unwrap();
    fs::write(src.join("bin/run"), b"#!/bin/sh").unwrap();
    fs::set_permissions(src.join("bin/run"), fs::Permissions::from_mode(0o4750)).unwrap();
    symlink("/etc/passwd", src.join("link")).unwrap();
    copy(
        &host(&src),
        &container(&f.root, "/opt/"),
        &CopyOptions {
            recursive: true,
            ..Default::default()
        },
        &mut |_| {},
    )
    .unwrap();
    let copied = f.root.join("opt/app");
    assert_eq!(
        fs::read_link(copied.join("link")).unwrap(),
        Path::new("/etc/passwd")
    );
    assert_eq!(
        fs::metadata(copied.join("bin/run")).unwrap().mode() & 0o7777,
        0o4750
    );
}

#[test]
fn directory_without_recursive_is_refused() {
    let f = fixture();
    let err = copy(
        &host(&f.host),
        &container(&f.root, "/x"),
        &CopyOptions::default(),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("-r"), "{err}");
}

#[test]
fn move_removes_the_source_after_copying() {
    let f = fixture();
    fs::write(f.root.join("etc/moved"), b"m").unwrap();
    copy(
        &container(&f.root, "/etc/moved"),
        &host(&f.host.join("moved")),
        &CopyOptions {
            move_source: true,
            ..Default::default()
        },
        &mut |_| {},
    )
    .unwrap();
    assert!(!f.root.join("etc/moved").exists());
    assert_eq!(fs::read(f.host.join("moved")).unwrap(), b"m");
}

#[test]
fn second_identical_sync_changes_and_reports_nothing() {
    let f = fixture();
    let src = f.host.join("app");
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::write(src.join("a"), b"one").unwrap();
    fs::write(src.join("sub/b"), b"two").unwrap();
    symlink("a", src.join("l")).unwrap();
    for checksum in [false, true] {
        let opts = SyncOptions {
            checksum,
            ..Default::default()
        };
        let dst = container(&f.root, "/opt/app");
        let _ = events_of(|ev| sync(&host(&src), &dst, &opts, ev));
        let (stats, events) = events_of(|ev| sync(&host(&src), &dst, &opts, ev));
        assert!(!stats.changed(), "{events:?}");
        assert!(events.is_empty(), "{events:?}");
    }
    assert_eq!(fs::read(f.root.join("opt/app/sub/b")).unwrap(), b"two");
}

#[test]
fn sync_rewrites_changed_files_and_deletes_extras_with_delete() {
    let f = fixture();
    let src = f.host.join("app");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a"), b"one").unwrap();
    let dst = container(&f.root, "/opt/app");
    sync(&host(&src), &dst, &SyncOptions::default(), &mut |_| {}).unwrap();
    fs::write(f.root.join("opt/app/extra"), b"x").unwrap();
    // Same size, different content and mtime.
    fs::write(src.join("a"), b"two").unwrap();
    filetime_set(&src.join("a"), 1_000_000);
    let (stats, _) = events_of(|ev| sync(&host(&src), &dst, &SyncOptions::default(), ev));
    assert_eq!(stats.copied, 1);
    assert!(f.root.join("opt/app/extra").exists());
    let opts = SyncOptions {
        delete: true,
        ..Default::default()
    };
    let (stats, _) = events_of(|ev| sync(&host(&src), &dst, &opts, ev));
    assert_eq!(stats.deleted, 1);
    assert!(!f.root.join("opt/app/extra").exists());
    assert_eq!(fs::read(f.root.join("opt/app/a")).unwrap(), b"two");
}

#[test]
fn checksum_mode_catches_same_size_same_mtime_edits() {
    let f = fixture();
    let src = f.host.join("d");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a"), b"one").unwrap();
    filetime_set(&src.join("a"), 1_000_000);
    let dst = host(&f.host.join("out"));
    sync(&host(&src), &dst, &SyncOptions::default(), &mut |_| {}).unwrap();
    fs::write(src.join("a"), b"two").unwrap();
    filetime_set(&src.join("a"), 1_000_000);
    let (stats, _) = events_of(|ev| sync(&host(&src), &dst, &SyncOptions::default(), ev));
    assert_eq!(stats.copied, 0);
    let opts = SyncOptions {
        checksum: true,
        ..Default::default()
    };
    let (stats, _) = events_of(|ev| sync(&host(&src), &dst, &opts, ev));
    assert_eq!(stats.copied, 1);
    assert_eq!(fs::read(f.host.join("out/a")).unwrap(), b"two");
}

#[test]
fn chown_applies_to_files_and_symlinks_themselves() {
    if !rustix::process::geteuid().is_root() {
        return;
    }
    let f = fixture();
    let src = f.host.join("app");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a"), b"one").unwrap();
    symlink("/etc/passwd", src.join("l")).unwrap();
    let owner = Owner {
        uid: Some(4242),
        gid: Some(4343),
    };
    let opts = SyncOptions {
        owner: Some(owner),
        ..Default::default()
    };
    sync(
        &host(&src),
        &container(&f.root, "/opt/app"),
        &opts,
        &mut |_| {},
    )
    .unwrap();
    let a = fs::symlink_metadata(f.root.join("opt/app/a")).unwrap();
    assert_eq!((a.uid(), a.gid()), (4242, 4343));
    let l = fs::symlink_metadata(f.root.join("opt/app/l")).unwrap();
    assert_eq!((l.uid(), l.gid()), (4242, 4343));
    // lchown, not chown: the host's /etc/passwd keeps its owner.
    assert_eq!(fs::metadata("/etc/passwd").unwrap().uid(), 0);
}

fn filetime_set(path: &Path, secs: i64) {
    filetime::set_file_mtime(path, filetime::FileTime::from_unix_time(secs, 0)).unwrap();
}

/// Ctrl-C in the middle of a recursive copy or sync (the flag is raised once the first file is
/// copied): the walk stops before the next entry, leaves no temp file and reports Interrupted.
#[test]
fn a_cancelled_transfer_stops_before_the_next_entry_and_leaves_no_temp_files() {
    let f = fixture();
    let src = f.host.join("tree");
    fs::create_dir_all(&src).unwrap();
    for i in 0..20 {
        fs::write(src.join(format!("f{i:02}")), vec![b'x'; 100_000]).unwrap();
    }
    type Run = fn(
        &Path,
        &Path,
        &'static AtomicBool,
        &mut dyn FnMut(TransferEvent<'_>),
    ) -> Result<TransferStats, TransferError>;
    let copy_run: Run = |src, root, flag, ev| {
        let opts = CopyOptions {
            recursive: true,
            cancel: Some(flag),
            ..CopyOptions::default()
        };
        copy(&host(src), &container(root, "/copied"), &opts, ev)
    };
    let sync_run: Run = |src, root, flag, ev| {
        let opts = SyncOptions {
            cancel: Some(flag),
            ..SyncOptions::default()
        };
        sync(&host(src), &container(root, "/synced"), &opts, ev)
    };
    for (run, dest) in [(copy_run, "copied"), (sync_run, "synced")] {
        let flag: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
        let mut copied = 0;
        let result = run(&src, &f.root, flag, &mut |e| {
            // The first file (a copy also reports the directory it makes).
            if matches!(e, TransferEvent::Copied(p) if p.contains("/f")) {
                copied += 1;
                flag.store(true, Ordering::Relaxed);
            }
        });
        assert!(
            matches!(result, Err(TransferError::Interrupted)),
            "{result:?}"
        );
        assert_eq!(copied, 1, "{dest}: the walk went on after Ctrl-C");
        let left: Vec<_> = fs::read_dir(f.root.join(dest))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(left.len(), 1, "{dest}: {left:?}");
        assert!(left[0].starts_with('f'), "{dest}: {left:?}");
    }
}

/// A flag already set when a big file is being written: the write stops and the temp file goes.
#[test]
fn a_cancelled_file_write_removes_its_temp_file() {
    let f = fixture();
    let big = f.host.join("big");
    fs::write(&big, vec![7u8; 1 << 20]).unwrap();
    let flag: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(true)));
    let mut src = fs::File::open(&big).unwrap();
    let meta = crate::inode_walk::stat_fd(std::os::fd::AsFd::as_fd(&src)).unwrap();
    let dir = crate::inode_walk::open_root_dir(&f.root).unwrap();
    let err = ops::write_file_atomic(
        std::os::fd::AsFd::as_fd(&dir),
        c"big",
        &mut src,
        &meta,
        None,
        Some(flag),
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "interrupted");
    let left: Vec<_> = fs::read_dir(&f.root)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("etc")]);
}
