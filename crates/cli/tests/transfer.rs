//! `copy` and `sync` end to end: container paths stay inside the container root, `--chown`
//! resolves names in the destination, and a repeated sync is silent.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::Path;

use cd_testkit::busybox;
use cd_testkit::env::{describe, stderr, stdout, TestEnv};

fn env() -> TestEnv {
    TestEnv::new(env!("CARGO_BIN_EXE_chroot-distro"))
}

/// A busybox container `box` with the escape hatch `/etc/evil -> /` planted in it.
fn env_with_box() -> TestEnv {
    let env = env();
    env.make_container("box", |root| {
        busybox::populate(root);
        symlink("/", root.join("etc/evil")).unwrap();
    });
    env
}

fn ok(env: &TestEnv, args: &[&str]) -> std::process::Output {
    let out = env.cmd(args).current_dir(env.root()).output().unwrap();
    assert!(out.status.success(), "{args:?}\n{}", describe(&out));
    out
}

#[test]
fn copy_into_container_through_symlinked_directory_stays_inside() {
    let env = env_with_box();
    let file = env.root().join("payload");
    fs::write(&file, b"inside only").unwrap();
    let marker = "cd-transfer-test-escape-marker";
    ok(
        &env,
        &[
            "copy",
            file.to_str().unwrap(),
            &format!("box:/etc/evil/{marker}"),
        ],
    );
    assert_eq!(
        fs::read(env.rootfs("box").join(marker)).unwrap(),
        b"inside only"
    );
    assert!(!Path::new("/").join(marker).exists());
}

#[test]
fn copy_out_of_container_through_symlinked_directory_reads_the_container() {
    let env = env_with_box();
    fs::write(env.rootfs("box").join("etc/hostname"), b"box-host\n").unwrap();
    let dest = env.root().join("out.txt");
    ok(
        &env,
        &["copy", "box:/etc/evil/etc/hostname", dest.to_str().unwrap()],
    );
    assert_eq!(fs::read(&dest).unwrap(), b"box-host\n");
}

#[test]
fn recursive_copy_and_move_between_containers() {
    let env = env_with_box();
    env.make_container("other", busybox::populate);
    fs::create_dir_all(env.rootfs("box").join("opt/app/sub")).unwrap();
    fs::write(env.rootfs("box").join("opt/app/sub/f"), b"f").unwrap();
    ok(&env, &["copy", "-r", "-m", "box:/opt/app", "other:/srv/"]);
    assert_eq!(
        fs::read(env.rootfs("other").join("srv/app/sub/f")).unwrap(),
        b"f"
    );
    assert!(!env.rootfs("box").join("opt/app").exists());
}

#[test]
fn host_path_with_a_colon_is_not_taken_for_a_container() {
    let env = env_with_box();
    fs::write(env.root().join("a:b"), b"colon").unwrap();
    ok(&env, &["copy", "./a:b", "box:/root/colon"]);
    ok(&env, &["copy", "a:b", "box:/root/colon2"]);
    assert_eq!(
        fs::read(env.rootfs("box").join("root/colon2")).unwrap(),
        b"colon"
    );
    let out = env
        .cmd(["copy", "./a:b", "boks:/root/x"])
        .current_dir(env.root())
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        stderr(&out).contains("'boks' is not installed"),
        "{}",
        describe(&out)
    );
}

#[test]
fn chown_by_name_by_number_and_group_only() {
    let env = env_with_box();
    let file = env.root().join("owned");
    fs::write(&file, b"x").unwrap();
    let f = file.to_str().unwrap();
    let meta = |p: &str| fs::symlink_metadata(env.rootfs("box").join(p)).unwrap();

    ok(
        &env,
        &["copy", "--chown", "alice:staff", f, "box:/home/alice/a"],
    );
    assert_eq!(
        (meta("home/alice/a").uid(), meta("home/alice/a").gid()),
        (1000, 50)
    );

    ok(&env, &["copy", "--chown", "4242:4343", f, "box:/root/n"]);
    assert_eq!((meta("root/n").uid(), meta("root/n").gid()), (4242, 4343));

    ok(&env, &["copy", "--chown", ":staff", f, "box:/root/g"]);
    assert_eq!((meta("root/g").uid(), meta("root/g").gid()), (0, 50));

    let out = env.run(["copy", "--chown", "mallory", f, "box:/root/m"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no user 'mallory'"),
        "{}",
        describe(&out)
    );
}

#[test]
fn chown_on_a_symlink_changes_the_link_not_its_target() {
    let env = env_with_box();
    let dir = env.root().join("tree");
    fs::create_dir_all(&dir).unwrap();
    symlink("/etc/passwd", dir.join("pw")).unwrap();
    ok(
        &env,
        &[
            "sync",
            "--chown",
            "alice",
            dir.to_str().unwrap(),
            "box:/opt/tree",
        ],
    );
    let link = fs::symlink_metadata(env.rootfs("box").join("opt/tree/pw")).unwrap();
    assert_eq!(link.uid(), 1000);
    assert_eq!(
        fs::metadata(env.rootfs("box").join("etc/passwd"))
            .unwrap()
            .uid(),
        0
    );
}

#[test]
fn second_identical_sync_changes_and_reports_nothing() {
    let env = env_with_box();
    let src = env.root().join("app");
    fs::create_dir_all(src.join("lib")).unwrap();
    fs::write(src.join("lib/a.so"), vec![7u8; 100_000]).unwrap();
    fs::write(src.join("README"), b"hi").unwrap();
    symlink("lib/a.so", src.join("a")).unwrap();
    let s = src.to_str().unwrap();

    let first = ok(&env, &["sync", s, "box:/opt/app"]);
    assert!(stderr(&first).contains("synced"), "{}", describe(&first));
    let target = env.rootfs("box").join("opt/app/lib/a.so");
    let inode = fs::metadata(&target).unwrap().ino();

    for flags in [vec!["sync", "-v"], vec!["sync", "-v", "-c"]] {
        let mut args = flags.clone();
        args.extend([s, "box:/opt/app"]);
        let again = ok(&env, &args);
        assert!(
            !stderr(&again).contains("copied") && !stderr(&again).contains("synced"),
            "{}",
            describe(&again)
        );
        assert!(stdout(&again).is_empty());
    }
    // Nothing was rewritten: the file is still the same inode.
    assert_eq!(fs::metadata(&target).unwrap().ino(), inode);
}

#[test]
fn sync_out_of_container_with_delete_and_checksum() {
    let env = env_with_box();
    fs::create_dir_all(env.rootfs("box").join("data")).unwrap();
    fs::write(env.rootfs("box").join("data/keep"), b"k").unwrap();
    let dest = env.root().join("mirror");
    fs::create_dir_all(&dest).unwrap();
    fs::write(dest.join("stale"), b"s").unwrap();
    let out = ok(
        &env,
        &[
            "sync",
            "-v",
            "-d",
            "-c",
            "box:/data",
            dest.to_str().unwrap(),
        ],
    );
    assert!(stderr(&out).contains("deleted"), "{}", describe(&out));
    assert!(!dest.join("stale").exists());
    assert_eq!(fs::read(dest.join("keep")).unwrap(), b"k");
}

#[test]
fn sync_writes_files_atomically_leaving_no_temp_files() {
    let env = env_with_box();
    let src = env.root().join("app");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("f"), b"new").unwrap();
    fs::create_dir_all(env.rootfs("box").join("opt/app")).unwrap();
    fs::write(env.rootfs("box").join("opt/app/f"), b"old content").unwrap();
    ok(&env, &["sync", src.to_str().unwrap(), "box:/opt/app"]);
    let names: Vec<String> = fs::read_dir(env.rootfs("box").join("opt/app"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["f".to_string()]);
    assert_eq!(
        fs::read(env.rootfs("box").join("opt/app/f")).unwrap(),
        b"new"
    );
}

#[test]
fn a_missing_source_is_named_in_one_familiar_line() {
    let env = env_with_box();
    let out = env.run([
        "copy",
        "box:/etc/nothere",
        env.root().join("x").to_str().unwrap(),
    ]);
    let line = cd_testkit::outcome::error_line(&out);
    assert_eq!(
        line,
        "error: copy failed: box:/etc/nothere: no such file or directory"
    );
}
