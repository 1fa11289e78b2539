//! `backup` and `restore` end to end: round trips in every compression and through a pipe,
//! refusal to overwrite, and hostile archives that must write nothing outside the store.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::io::Write;
use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Stdio;

use cd_testkit::busybox;
use cd_testkit::env::{describe, stderr, TestEnv};
use cd_testkit::outcome::{interrupt_and_wait, spawn_collecting};

fn env() -> TestEnv {
    TestEnv::new(env!("CARGO_BIN_EXE_chroot-distro"))
}

const MTIME: i64 = 1_600_000_000;

/// A busybox container with everything a backup must keep.
fn make_box(env: &TestEnv) {
    env.make_container("box", |root| {
        busybox::populate(root);
        fs::write(root.join("bin/suid"), b"#!/bin/sh\n").unwrap();
        fs::set_permissions(root.join("bin/suid"), fs::Permissions::from_mode(0o4755)).unwrap();
        fs::hard_link(root.join("bin/suid"), root.join("bin/suid-alias")).unwrap();
        std::os::unix::fs::chown(root.join("home/alice"), Some(1000), Some(50)).unwrap();
        fs::write(root.join("home/alice/notes"), b"mine").unwrap();
        std::os::unix::fs::chown(root.join("home/alice/notes"), Some(1000), Some(1000)).unwrap();
        filetime::set_file_mtime(
            root.join("home/alice/notes"),
            filetime::FileTime::from_unix_time(MTIME, 0),
        )
        .unwrap();
        symlink("/", root.join("etc/evil")).unwrap();
        let status = std::process::Command::new("mknod")
            .arg(root.join("dev/null"))
            .args(["c", "1", "3"])
            .status()
            .unwrap();
        assert!(status.success());
        let status = std::process::Command::new("mkfifo")
            .arg(root.join("run-fifo"))
            .status()
            .unwrap();
        assert!(status.success());
    });
    fs::write(
        env.container_dir("box").join("manifest.json"),
        br#"{"image_ref":"busybox:test","arch":"amd64","manifest":{},"image_config":{}}"#,
    )
    .unwrap();
}

fn check_restored(env: &TestEnv) {
    let root = env.rootfs("box");
    let suid = fs::metadata(root.join("bin/suid")).unwrap();
    assert_eq!(suid.mode() & 0o7777, 0o4755);
    let alias = fs::metadata(root.join("bin/suid-alias")).unwrap();
    assert_eq!(alias.ino(), suid.ino(), "hard link kept as a hard link");
    let notes = fs::metadata(root.join("home/alice/notes")).unwrap();
    assert_eq!((notes.uid(), notes.gid()), (1000, 1000));
    assert_eq!(notes.mtime(), MTIME);
    let home = fs::metadata(root.join("home/alice")).unwrap();
    assert_eq!((home.uid(), home.gid()), (1000, 50));
    assert_eq!(
        fs::read_link(root.join("etc/evil")).unwrap(),
        Path::new("/")
    );
    let dev = fs::symlink_metadata(root.join("dev/null")).unwrap();
    assert!(dev.file_type().is_char_device());
    assert_eq!(dev.rdev(), libc::makedev(1, 3));
    assert!(fs::symlink_metadata(root.join("run-fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    assert_eq!(
        fs::read(root.join("tmp").parent().unwrap().join("etc/passwd")).unwrap(),
        busybox::PASSWD.as_bytes()
    );
    let manifest = fs::read_to_string(env.container_dir("box").join("manifest.json")).unwrap();
    assert!(manifest.contains("busybox:test"));
}

/// `backup -c COMPRESSION box` to stdout, as bytes.
fn backup_to_stdout(env: &TestEnv, compression: &str) -> Vec<u8> {
    let out = env
        .cmd(["backup", "-c", compression, "box"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    out.stdout
}

/// `restore` reading a pipe the test writes to, its output collected.
fn spawn_restore_from_pipe(env: &TestEnv) -> std::process::Child {
    env.cmd(["restore"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn ok(env: &TestEnv, args: &[&str]) {
    let out = env.run(args);
    assert!(out.status.success(), "{args:?}\n{}", describe(&out));
}

#[test]
fn round_trip_in_every_compression_keeps_links_owners_modes_and_mtimes() {
    let env = env();
    make_box(&env);
    for ext in ["tar", "tar.gz", "tgz", "tar.bz2", "tar.xz", "tar.zst"] {
        let file = env.root().join(format!("box.{ext}"));
        ok(&env, &["backup", "-q", "-o", file.to_str().unwrap(), "box"]);
        ok(&env, &["remove", "-q", "box"]);
        ok(&env, &["restore", "-q", file.to_str().unwrap()]);
        check_restored(&env);
    }
}

#[test]
fn forced_compression_overrides_the_extension() {
    let env = env();
    make_box(&env);
    let file = env.root().join("box.bak");
    let out = env.run(["backup", "-o", file.to_str().unwrap(), "box"]);
    assert!(!out.status.success(), "{}", describe(&out));
    ok(
        &env,
        &["backup", "-c", "zstd", "-o", file.to_str().unwrap(), "box"],
    );
    assert_eq!(&fs::read(&file).unwrap()[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
}

#[test]
fn round_trip_through_a_pipe() {
    let env = env();
    make_box(&env);
    let backup = backup_to_stdout(&env, "gzip");
    assert_eq!(&backup[..2], &[0x1f, 0x8b]);
    ok(&env, &["remove", "-q", "box"]);
    let mut child = spawn_restore_from_pipe(&env);
    child.stdin.take().unwrap().write_all(&backup).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    check_restored(&env);
}

#[test]
fn backup_never_overwrites_and_restore_never_replaces_a_container() {
    let env = env();
    make_box(&env);
    let file = env.root().join("exists.tar");
    fs::write(&file, b"precious").unwrap();
    let out = env.run(["backup", "-o", file.to_str().unwrap(), "box"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("already exists"),
        "{}",
        describe(&out)
    );
    assert_eq!(fs::read(&file).unwrap(), b"precious");

    let good = env.root().join("good.tar");
    ok(&env, &["backup", "-o", good.to_str().unwrap(), "box"]);
    fs::write(env.rootfs("box").join("etc/marker"), b"live").unwrap();
    let out = env.run(["restore", good.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("already exists"),
        "{}",
        describe(&out)
    );
    assert_eq!(
        fs::read(env.rootfs("box").join("etc/marker")).unwrap(),
        b"live"
    );
}

fn raw_tar(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (path, kind, data, link) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(data.len() as u64);
        // Names written raw: the tar crate's own setters refuse `..`, a hostile archive does not.
        let name = &mut h.as_old_mut().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        if let Some(l) = link {
            h.as_old_mut().linkname[..l.len()].copy_from_slice(l.as_bytes());
        }
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

#[test]
fn hostile_archive_with_dotdot_names_writes_nothing_outside() {
    use tar::EntryType::{Directory, Regular, Symlink};
    let env = env();
    let outside = env.root().join("outside-marker");
    let cases: Vec<Vec<u8>> = vec![
        raw_tar(&[
            ("evil/", Directory, b"", None),
            ("evil/rootfs/", Directory, b"", None),
            (
                "evil/rootfs/../../../../outside-marker",
                Regular,
                b"pwned",
                None,
            ),
        ]),
        raw_tar(&[("../outside-marker", Regular, b"pwned", None)]),
        raw_tar(&[
            ("evil/rootfs/", Directory, b"", None),
            ("evil/extra", Regular, b"pwned", None),
        ]),
    ];
    for (i, bytes) in cases.iter().enumerate() {
        let file = env.root().join(format!("hostile{i}.tar"));
        fs::write(&file, bytes).unwrap();
        let out = env.run(["restore", file.to_str().unwrap()]);
        assert!(!out.status.success(), "case {i}: {}", describe(&out));
        assert!(!outside.exists(), "case {i}");
        assert!(!env.container_dir("evil").exists(), "case {i}");
        assert!(
            !env.store_dir().join("containers/.staging-evil").exists(),
            "case {i}: staging left behind"
        );
    }

    // A symlink to / planted in the archive is followed inside the new root, not on the host.
    let target_name = format!("cd-restore-escape-{}", std::process::id());
    let bytes = raw_tar(&[
        ("evil/rootfs/", Directory, b"", None),
        ("evil/rootfs/etc", Symlink, b"", Some("/")),
        (
            &format!("evil/rootfs/etc/{target_name}"),
            Regular,
            b"x",
            None,
        ),
    ]);
    let file = env.root().join("symlink.tar");
    fs::write(&file, bytes).unwrap();
    ok(&env, &["restore", "-q", file.to_str().unwrap()]);
    assert!(env.rootfs("evil").join(&target_name).exists());
    assert!(!Path::new("/").join(&target_name).exists());
}

#[test]
fn bare_rootfs_archive_is_refused() {
    use tar::EntryType::{Directory, Regular};
    let env = env();
    let file = env.root().join("bare.tar");
    fs::write(
        &file,
        raw_tar(&[
            ("etc/", Directory, b"", None),
            ("etc/passwd", Regular, b"root:x:0:0::/:/bin/sh\n", None),
        ]),
    )
    .unwrap();
    let out = env.run(["restore", file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not a chroot-distro backup"),
        "{}",
        describe(&out)
    );
    assert!(!env.container_dir("etc").exists());
}

#[test]
fn files_that_are_not_backups_fail_in_one_readable_line() {
    let env = env();
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("passwd");
    fs::write(&text, "root:x:0:0:root:/root:/bin/sh\n".repeat(40)).unwrap();
    let noise = dir.path().join("noise.bin");
    fs::write(&noise, cd_testkit::fixture::random_bytes(5000, 7)).unwrap();
    for file in [&text, &noise] {
        let out = env.run(["restore", file.to_str().unwrap()]);
        let line = cd_testkit::outcome::error_line(&out);
        assert!(line.starts_with("error: restore failed: "), "{line}");
        assert!(
            line.chars().all(|c| c.is_ascii_graphic() || c == ' ') && line.len() < 200,
            "not one readable line: {line:?}"
        );
    }
    let containers = env.store_dir().join("containers");
    assert!(!containers.exists() || fs::read_dir(&containers).unwrap().count() == 0);
}

/// Wait until `ready()` holds, or fail the test after 20 s.
fn wait_for(what: &str, ready: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !ready() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} never happened"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Names in `dir`, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A container with 64 MiB of incompressible data: xz needs seconds for it, time to interrupt.
fn make_big_box(env: &TestEnv) {
    make_box(env);
    let status = std::process::Command::new("head")
        .args(["-c", "64M", "/dev/urandom"])
        .stdout(fs::File::create(env.rootfs("box").join("noise")).unwrap())
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn an_interrupted_backup_leaves_no_file_and_a_killed_one_no_file_under_its_name() {
    let env = env();
    make_big_box(&env);
    let out_dir = tempfile::tempdir().unwrap();
    let target = out_dir.path().join("box.tar.xz");
    let started = || {
        let child = spawn_collecting(env.cmd(["backup", "-o"]).arg(&target).arg("box"));
        // The archive grows under a temporary name first (xz writes nothing for seconds, until
        // its first block is done).
        wait_for("a partial backup", || {
            fs::read_dir(out_dir.path())
                .unwrap()
                .flatten()
                .any(|e| e.file_name().to_string_lossy().ends_with(".partial"))
        });
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(!target.exists(), "the final name appeared before the end");
        child
    };

    let child = started();
    // Well inside the seconds a multi-threaded xz can hold a single write.
    let out = interrupt_and_wait(child, std::time::Duration::from_secs(5));
    assert_eq!(out.status.code(), Some(130), "{}", describe(&out));
    assert!(stderr(&out).contains("interrupted"), "{}", describe(&out));
    assert!(
        names_in(out_dir.path()).is_empty(),
        "{:?}",
        names_in(out_dir.path())
    );

    // Two Ctrl-Cs in a row: whether the second ends the process at once (taking the temp file
    // with it, see cd-sys's signal tests) or the first was already handled, no file is left.
    let child = started();
    let pid = child.id().to_string();
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let out = interrupt_and_wait(child, std::time::Duration::from_secs(5));
    assert_eq!(out.status.code(), Some(130), "{}", describe(&out));
    assert!(
        names_in(out_dir.path()).is_empty(),
        "{:?}",
        names_in(out_dir.path())
    );

    let mut child = started();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !target.exists(),
        "a killed backup left a file that looks complete"
    );

    // The container is untouched and a later backup to the same name works.
    assert_eq!(
        fs::metadata(env.rootfs("box").join("noise")).unwrap().len(),
        64 << 20
    );
    let out = env
        .cmd(["backup", "-c", "none", "-o"])
        .arg(&target)
        .arg("box")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
}

#[test]
fn ctrl_c_ends_a_restore_waiting_on_a_stalled_pipe_and_leaves_nothing() {
    let env = env();
    make_big_box(&env);
    let backup = backup_to_stdout(&env, "none");
    ok(&env, &["remove", "-q", "box"]);

    let mut child = spawn_restore_from_pipe(&env);
    // Half the archive, then the writer goes quiet but keeps the pipe open.
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&backup[..backup.len() / 2]).unwrap();
    let staging = env.store_dir().join("containers/.staging-box");
    wait_for("the restore's staging tree", || staging.exists());
    std::thread::sleep(std::time::Duration::from_millis(200));
    let out = interrupt_and_wait(child, std::time::Duration::from_secs(10));
    drop(stdin);
    assert_eq!(out.status.code(), Some(130), "{}", describe(&out));
    assert!(stderr(&out).contains("interrupted"), "{}", describe(&out));
    assert!(!staging.exists(), "the staging tree was left behind");
    assert!(!env.container_dir("box").exists());
}

/// Backups onto a full disk and restores into a full store fail in one line and leave nothing:
/// no partial backup file, no half-restored container.
#[test]
fn a_full_disk_fails_backup_and_restore_in_one_line_and_leaves_nothing() {
    let env = env();
    make_big_box(&env);
    let work = tempfile::tempdir().unwrap();
    let small = work.path().join("small");
    fs::create_dir_all(&small).unwrap();
    let backup_file = work.path().join("box.tar");
    ok(
        &env,
        &["backup", "-o", backup_file.to_str().unwrap(), "box"],
    );
    // Both tmpfs mounts live in a mount namespace private to this test.
    cd_testkit::mntns::in_private_mount_ns(|| {
        let mount = |dir: &Path| {
            let status = std::process::Command::new("mount")
                .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
                .arg(dir)
                .status()
                .unwrap();
            assert!(status.success(), "cannot mount a tmpfs for the test");
        };
        mount(&small);
        let target = small.join("box.tar");
        let out = env
            .cmd(["backup", "-o"])
            .arg(&target)
            .arg("box")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
        let line = cd_testkit::outcome::error_line(&out);
        assert!(line.contains("the disk is full"), "{line}");
        assert!(names_in(&small).is_empty(), "{:?}", names_in(&small));

        ok(&env, &["remove", "-q", "box"]);
        mount(&env.data_home());
        let out = env.run(["restore", backup_file.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
        let line = cd_testkit::outcome::error_line(&out);
        assert!(line.contains("disk is full"), "{line}");
        let containers = env.store_dir().join("containers");
        let left = if containers.exists() {
            names_in(&containers)
        } else {
            Vec::new()
        };
        assert!(left.is_empty(), "{left:?}");
    });
}
