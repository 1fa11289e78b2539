//! The layer applier against real files, as root: semantics of each entry kind, OCI whiteouts,
//! and hostile archives that try to reach the host.
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use cd_rootfs::{ApplyError, ApplyOptions};
use common::{meta, Sandbox, Spec, Tar, MTIME};
use tar::EntryType;

fn plain() -> ApplyOptions {
    ApplyOptions::default()
}

#[test]
fn files_dirs_and_symlinks_keep_owner_mode_and_mtime() {
    let sb = Sandbox::new();
    let mut t = Tar::new();
    t.dir_mode("usr/", 0o755, MTIME - 100)
        .dir_mode("usr/bin/", 0o555, MTIME - 50)
        .file_mode("usr/bin/su", b"#!su", 0o4755, 0, 0)
        .file_mode("usr/bin/wall", b"#!wall", 0o2755, 0, 5)
        .file_mode("home/u/notes", b"hi", 0o600, 1000, 1000)
        .dir_mode("tmp/", 0o1777, MTIME)
        .symlink("usr/bin/sh", "/bin/busybox")
        .symlink("rel", "../../x/y");
    let stats = sb.apply(&t.bytes(), &plain()).unwrap();
    assert_eq!(stats.entries, 8);
    assert_eq!(stats.bytes, 12);

    let su = meta(&sb.p("usr/bin/su"));
    assert_eq!(su.mode() & 0o7777, 0o4755, "setuid kept");
    assert_eq!(std::fs::read(sb.p("usr/bin/su")).unwrap(), b"#!su");
    assert_eq!(su.mtime(), MTIME as i64);
    let wall = meta(&sb.p("usr/bin/wall"));
    assert_eq!((wall.mode() & 0o7777, wall.gid()), (0o2755, 5));
    let notes = meta(&sb.p("home/u/notes"));
    assert_eq!(
        (notes.uid(), notes.gid(), notes.mode() & 0o777),
        (1000, 1000, 0o600)
    );
    assert_eq!(meta(&sb.p("tmp")).mode() & 0o7777, 0o1777);
    // Directory metadata is applied after the contents, so the mtimes survive the children.
    let bin = meta(&sb.p("usr/bin"));
    assert_eq!(
        (bin.mode() & 0o7777, bin.mtime()),
        (0o555, MTIME as i64 - 50)
    );
    assert_eq!(meta(&sb.p("usr")).mtime(), MTIME as i64 - 100);
    // Parents the archive does not list are made 0755.
    assert_eq!(meta(&sb.p("home/u")).mode() & 0o7777, 0o755);
    // Symlink targets are stored verbatim.
    assert_eq!(
        std::fs::read_link(sb.p("usr/bin/sh")).unwrap(),
        Path::new("/bin/busybox")
    );
    assert_eq!(
        std::fs::read_link(sb.p("rel")).unwrap(),
        Path::new("../../x/y")
    );
    assert_eq!(meta(&sb.p("rel")).mtime(), MTIME as i64);
}

#[test]
fn owners_are_not_applied_when_not_preserved() {
    let sb = Sandbox::new();
    let mut t = Tar::new();
    t.file_mode("f", b"x", 0o644, 1234, 4321);
    let opts = ApplyOptions {
        preserve_owners: false,
        ..plain()
    };
    sb.apply(&t.bytes(), &opts).unwrap();
    let m = meta(&sb.p("f"));
    assert_eq!((m.uid(), m.gid()), (0, 0));
}

#[test]
fn device_nodes_and_fifos_are_created_as_such() {
    let sb = Sandbox::new();
    let mut t = Tar::new();
    let mut null = Spec::new(EntryType::Char, "dev/null");
    null.dev = (1, 3);
    null.mode = 0o666;
    t.entry(null);
    let mut loop0 = Spec::new(EntryType::Block, "dev/loop0");
    loop0.dev = (7, 0);
    loop0.mode = 0o660;
    loop0.gid = 6;
    t.entry(loop0);
    let mut fifo = Spec::new(EntryType::Fifo, "run/initctl");
    fifo.mode = 0o600;
    t.entry(fifo);
    sb.apply(&t.bytes(), &plain()).unwrap();

    let m = meta(&sb.p("dev/null"));
    assert!(m.file_type().is_char_device());
    assert_eq!(
        (rustix::fs::major(m.rdev()), rustix::fs::minor(m.rdev())),
        (1, 3)
    );
    assert_eq!(m.mode() & 0o7777, 0o666);
    let m = meta(&sb.p("dev/loop0"));
    assert!(m.file_type().is_block_device());
    assert_eq!(
        (rustix::fs::major(m.rdev()), m.gid(), m.mode() & 0o777),
        (7, 6, 0o660)
    );
    let m = meta(&sb.p("run/initctl"));
    assert!(m.file_type().is_fifo());
    assert_eq!(m.mode() & 0o7777, 0o600);
}

#[test]
fn pax_long_names_links_and_xattrs_are_applied() {
    let sb = Sandbox::new();
    let long_dir = "d/".to_string() + &"x".repeat(120);
    let long_file = format!("{long_dir}/{}", "y".repeat(140));
    let mut t = Tar::new();
    t.file(&long_file, b"long");
    t.hardlink("short", &long_file);
    let long_link_target = "t".repeat(150);
    t.symlink(&("s".repeat(110)), &long_link_target);
    t.pax_file(
        "caps",
        b"bin",
        &[
            ("SCHILY.xattr.user.note", b"hello"),
            ("SCHILY.xattr.trusted.k", b"\x00\x01binary"),
            ("mtime", b"1600000000.5"),
        ],
    );
    let stats = sb.apply(&t.bytes(), &plain()).unwrap();
    assert_eq!(stats.xattr_failures, 0);
    assert_eq!(std::fs::read(sb.p(&long_file)).unwrap(), b"long");
    assert_eq!(meta(&sb.p("short")).ino(), meta(&sb.p(&long_file)).ino());
    assert_eq!(
        std::fs::read_link(sb.p(&"s".repeat(110))).unwrap(),
        Path::new(&long_link_target)
    );
    let caps = sb.p("caps");
    assert_eq!(xattr::get(&caps, "user.note").unwrap().unwrap(), b"hello");
    assert_eq!(
        xattr::get(&caps, "trusted.k").unwrap().unwrap(),
        b"\x00\x01binary"
    );
    let m = meta(&caps);
    assert_eq!((m.mtime(), m.mtime_nsec()), (1_600_000_000, 500_000_000));
}

#[test]
fn whiteout_in_upper_layer_removes_lower_file_and_dir() {
    let sb = Sandbox::new();
    sb.layer(
        &Tar::new()
            .file("etc/keep", b"k")
            .file("etc/gone", b"g")
            .file("var/cache/apt/pkgcache.bin", b"c")
            .bytes(),
    );
    let stats = sb.layer(
        &Tar::new()
            .file("etc/.wh.gone", b"")
            .file("var/cache/.wh.apt", b"")
            .file("etc/.wh.never-existed", b"")
            .file("nodir/.wh.x", b"")
            .bytes(),
    );
    assert_eq!(stats.whiteouts, 4);
    assert!(sb.p("etc/keep").exists());
    assert!(!sb.p("etc/gone").exists());
    assert!(!sb.p("var/cache/apt").exists());
    assert!(sb.p("var/cache").is_dir());
    assert!(
        !sb.p("etc/.wh.gone").exists(),
        "whiteout files are never created"
    );
    assert!(
        !sb.p("nodir").exists(),
        "a whiteout does not create its directory"
    );
}

#[test]
fn whiteout_files_are_plain_files_without_the_option() {
    let sb = Sandbox::new();
    sb.apply(
        &Tar::new().file("a", b"1").file(".wh.a", b"").bytes(),
        &plain(),
    )
    .unwrap();
    assert!(sb.p("a").exists());
    assert!(sb.p(".wh.a").exists());
}

#[test]
fn opaque_whiteout_empties_lower_dir_but_keeps_this_layers_entries() {
    let sb = Sandbox::new();
    sb.layer(
        &Tar::new()
            .file("opt/app/old1", b"1")
            .file("opt/app/sub/old2", b"2")
            .file("opt/app/keepdir/old3", b"3")
            .file("opt/other", b"o")
            .bytes(),
    );
    sb.layer(
        &Tar::new()
            .dir("opt/app/")
            .file("opt/app/before", b"b")
            .dir("opt/app/keepdir/")
            .file("opt/app/.wh..wh..opq", b"")
            .file("opt/app/after", b"a")
            .bytes(),
    );
    assert!(
        sb.p("opt/app/before").exists(),
        "same-layer entry before the marker"
    );
    assert!(
        sb.p("opt/app/after").exists(),
        "same-layer entry after the marker"
    );
    assert!(sb.p("opt/app/keepdir").is_dir());
    assert!(
        !sb.p("opt/app/keepdir/old3").exists(),
        "lower child of a re-listed dir"
    );
    assert!(!sb.p("opt/app/old1").exists());
    assert!(!sb.p("opt/app/sub").exists());
    assert!(
        sb.p("opt/other").exists(),
        "siblings of the opaque dir stay"
    );
    assert!(!sb.p("opt/app/.wh..wh..opq").exists());
}

#[test]
fn whiteout_of_dot_dot_is_refused() {
    let sb = Sandbox::new();
    let before = sb.outside();
    sb.layer(&Tar::new().file("a/b/keep", b"k").bytes());
    for name in ["a/b/.wh...", "a/.wh..", "a/.wh."] {
        let err = sb
            .apply(
                &Tar::new().file(name, b"").bytes(),
                &ApplyOptions {
                    oci_whiteouts: true,
                    ..plain()
                },
            )
            .unwrap_err();
        assert!(matches!(err, ApplyError::Unsafe { .. }), "{name}: {err}");
    }
    assert!(sb.p("a/b/keep").exists());
    sb.assert_host_untouched(&before);
}

#[test]
fn hard_link_to_lower_layer_file_shares_its_inode() {
    let sb = Sandbox::new();
    sb.layer(
        &Tar::new()
            .file_mode("usr/bin/perl5.36", b"perl", 0o755, 0, 0)
            .bytes(),
    );
    let stats = sb.layer(
        &Tar::new()
            .hardlink("usr/bin/perl", "usr/bin/perl5.36")
            .bytes(),
    );
    assert_eq!(stats.hard_links, 1);
    let a = meta(&sb.p("usr/bin/perl"));
    assert_eq!(a.ino(), meta(&sb.p("usr/bin/perl5.36")).ino());
    assert_eq!(a.nlink(), 2);
}

#[test]
fn hard_link_to_missing_or_non_regular_target_is_skipped_with_a_reason() {
    let sb = Sandbox::new();
    let stats = sb.layer(
        &Tar::new()
            .dir("d/")
            .hardlink("l1", "nope")
            .hardlink("l2", "d")
            .bytes(),
    );
    assert_eq!(stats.skipped, 2);
    assert!(
        stats.skips[0].reason.contains("does not exist"),
        "{:?}",
        stats.skips
    );
    assert!(
        stats.skips[1].reason.contains("not a regular file"),
        "{:?}",
        stats.skips
    );
    assert!(!sb.p("l1").exists() && !sb.p("l2").exists());
}

#[test]
fn file_to_dir_and_dir_to_file_transitions() {
    let sb = Sandbox::new();
    sb.layer(&Tar::new().file("a", b"file").file("b/inner", b"x").bytes());
    sb.layer(
        &Tar::new()
            .dir("a/")
            .file("a/child", b"c")
            .file("b", b"now a file")
            .bytes(),
    );
    assert!(sb.p("a").is_dir());
    assert_eq!(std::fs::read(sb.p("a/child")).unwrap(), b"c");
    assert_eq!(std::fs::read(sb.p("b")).unwrap(), b"now a file");
}

#[test]
fn directory_over_directory_keeps_contents_and_updates_metadata() {
    let sb = Sandbox::new();
    sb.layer(
        &Tar::new()
            .dir_mode("d/", 0o755, MTIME)
            .file("d/old", b"o")
            .bytes(),
    );
    sb.layer(&Tar::new().dir_mode("d/", 0o700, MTIME + 10).bytes());
    assert!(sb.p("d/old").exists());
    let m = meta(&sb.p("d"));
    assert_eq!((m.mode() & 0o7777, m.mtime()), (0o700, MTIME as i64 + 10));
}

#[test]
fn symlink_to_file_replaces_the_symlink_never_its_target() {
    let sb = Sandbox::new();
    let before = sb.outside();
    let canary = sb.host_path().join("canary");
    let canary = canary.to_str().unwrap();
    sb.layer(
        &Tar::new()
            .symlink("etc/motd", canary)
            .symlink("etc/rel", "../../host/canary")
            .bytes(),
    );
    sb.layer(
        &Tar::new()
            .file("etc/motd", b"container motd")
            .file("etc/rel", b"r")
            .bytes(),
    );
    assert!(meta(&sb.p("etc/motd")).is_file());
    assert_eq!(std::fs::read(sb.p("etc/motd")).unwrap(), b"container motd");
    assert_eq!(std::fs::read(sb.p("etc/rel")).unwrap(), b"r");
    sb.assert_host_untouched(&before);
}

#[test]
fn symlink_parent_escape_lands_inside_the_root() {
    let sb = Sandbox::new();
    let before = sb.outside();
    let host = sb.host_path();
    let host = host.to_str().unwrap();
    let mut t = Tar::new();
    t.symlink("etc/evil", "/")
        .file("etc/evil/x", b"in root")
        .symlink("up", "../../../../../../..")
        .file("up/y", b"in root too")
        .symlink("h", host);
    sb.apply(&t.bytes(), &plain()).unwrap();
    assert_eq!(std::fs::read(sb.p("x")).unwrap(), b"in root");
    assert_eq!(std::fs::read(sb.p("y")).unwrap(), b"in root too");
    // `h` points at the host directory's path, which inside the root does not exist: a
    // dangling parent is refused rather than guessed at.
    let err = sb
        .apply(&Tar::new().file("h/canary", b"pwned").bytes(), &plain())
        .unwrap_err();
    assert!(err.to_string().contains("'/h' is in the way"), "{err}");
    // Once that path exists inside the root, the symlink leads there.
    let inside = sb.root_path().join(host.trim_start_matches('/'));
    std::fs::create_dir_all(&inside).unwrap();
    sb.apply(
        &Tar::new()
            .file("h/canary", b"pwned")
            .file("h/new", b"n")
            .bytes(),
        &plain(),
    )
    .unwrap();
    assert_eq!(std::fs::read(inside.join("canary")).unwrap(), b"pwned");
    assert!(!sb.host_path().join("new").exists());
    sb.assert_host_untouched(&before);
}

#[test]
fn dot_dot_names_are_refused_before_anything_is_written() {
    let sb = Sandbox::new();
    let before = sb.outside();
    for name in ["../host/canary", "a/../../host/new", "./..", "x/.."] {
        let err = sb
            .apply(&Tar::new().file(name, b"pwned").bytes(), &plain())
            .unwrap_err();
        match &err {
            ApplyError::Unsafe { path, .. } => assert_eq!(path, name),
            other => panic!("{name}: {other}"),
        }
        assert!(err.to_string().contains("refusing"), "{err}");
    }
    sb.assert_host_untouched(&before);
    assert!(std::fs::read_dir(sb.root_path()).unwrap().next().is_none());
}

#[test]
fn absolute_names_are_relative_to_the_root() {
    let sb = Sandbox::new();
    let before = sb.outside();
    let canary = sb.host_path().join("canary");
    let mut t = Tar::new();
    t.file("/etc/hostname", b"box")
        .file(canary.to_str().unwrap(), b"pwned");
    sb.apply(&t.bytes(), &plain()).unwrap();
    assert_eq!(std::fs::read(sb.p("etc/hostname")).unwrap(), b"box");
    let inside = sb.root_path().join(canary.strip_prefix("/").unwrap());
    assert_eq!(std::fs::read(inside).unwrap(), b"pwned");
    sb.assert_host_untouched(&before);
}

#[test]
fn hard_links_to_host_paths_stay_inside() {
    let sb = Sandbox::new();
    let before = sb.outside();
    let host_passwd_links = meta(Path::new("/etc/passwd")).nlink();
    let canary = sb.host_path().join("canary");

    // An absolute target means the container's own file: missing here, so skipped.
    let stats = sb
        .apply(
            &Tar::new()
                .hardlink("p", "/etc/passwd")
                .hardlink("c", canary.to_str().unwrap())
                .bytes(),
            &plain(),
        )
        .unwrap();
    assert_eq!(stats.skipped, 2, "{:?}", stats.skips);
    assert!(!sb.p("p").exists() && !sb.p("c").exists());

    // With a container /etc/passwd, the link is to that one.
    sb.apply(
        &Tar::new()
            .file("etc/passwd", b"root:x:0:0::/:/bin/sh\n")
            .hardlink("p", "/etc/passwd")
            .bytes(),
        &plain(),
    )
    .unwrap();
    assert_eq!(meta(&sb.p("p")).ino(), meta(&sb.p("etc/passwd")).ino());

    // A target that climbs is refused, even through a symlinked directory it is resolved
    // inside the root.
    let err = sb
        .apply(
            &Tar::new().hardlink("q", "../../host/canary").bytes(),
            &plain(),
        )
        .unwrap_err();
    assert!(matches!(err, ApplyError::Unsafe { .. }), "{err}");
    sb.apply(
        &Tar::new()
            .symlink("hostdir", sb.host_path().to_str().unwrap())
            .symlink("up", "../..")
            .hardlink("r", "up/host/canary")
            .bytes(),
        &plain(),
    )
    .unwrap();
    assert!(!sb.p("r").exists());

    assert_eq!(meta(Path::new("/etc/passwd")).nlink(), host_passwd_links);
    assert_eq!(meta(&canary).nlink(), 1);
    sb.assert_host_untouched(&before);
}

#[test]
fn symlinked_parent_from_a_lower_layer_is_resolved_in_root() {
    let sb = Sandbox::new();
    let before = sb.outside();
    sb.layer(
        &Tar::new()
            .symlink("lib", "/usr/lib")
            .dir("usr/lib/")
            .bytes(),
    );
    sb.layer(&Tar::new().file("lib/libc.so", b"elf").bytes());
    assert_eq!(std::fs::read(sb.p("usr/lib/libc.so")).unwrap(), b"elf");
    assert!(meta(&sb.p("lib")).file_type().is_symlink());
    sb.assert_host_untouched(&before);
}

#[test]
fn only_under_keeps_a_prefix_and_strips_it() {
    let sb = Sandbox::new();
    let mut t = Tar::new();
    t.dir_mode("box/", 0o755, MTIME)
        .file("box/manifest.json", b"{}")
        .dir_mode("box/rootfs/", 0o711, MTIME)
        .file("box/rootfs/etc/os-release", b"ID=test")
        .hardlink("box/rootfs/etc/os-release2", "box/rootfs/etc/os-release");
    let opts = ApplyOptions {
        only_under: Some("box/rootfs".into()),
        ..plain()
    };
    let mut seen = Vec::new();
    let stats = cd_rootfs::apply_tar(&sb.root, &t.bytes()[..], &opts, &mut |p| {
        seen.push(p.to_path_buf())
    })
    .unwrap();
    assert_eq!(stats.skipped, 2);
    assert_eq!(stats.hard_links, 1);
    assert!(!sb.p("manifest.json").exists());
    assert_eq!(std::fs::read(sb.p("etc/os-release2")).unwrap(), b"ID=test");
    assert_eq!(
        meta(&sb.root_path()).mode() & 0o7777,
        0o711,
        "the prefix dir is the root"
    );
    assert!(seen.contains(&"etc/os-release".into()));
}

#[test]
fn strip_components_drops_the_top_directory() {
    let sb = Sandbox::new();
    let opts = ApplyOptions {
        strip_components: 1,
        ..plain()
    };
    sb.apply(
        &Tar::new().dir("top/").file("top/bin/sh", b"sh").bytes(),
        &opts,
    )
    .unwrap();
    assert_eq!(std::fs::read(sb.p("bin/sh")).unwrap(), b"sh");
}

#[test]
fn read_only_directories_still_receive_their_children() {
    let sb = Sandbox::new();
    sb.apply(
        &Tar::new()
            .dir_mode("ro/", 0o500, MTIME)
            .file("ro/a", b"a")
            .dir_mode("ro/sub/", 0o000, MTIME)
            .file("ro/sub/b", b"b")
            .bytes(),
        &plain(),
    )
    .unwrap();
    assert_eq!(meta(&sb.p("ro")).permissions().mode() & 0o777, 0o500);
    assert_eq!(meta(&sb.p("ro/sub")).permissions().mode() & 0o777, 0o000);
    assert_eq!(std::fs::read(sb.p("ro/sub/b")).unwrap(), b"b");
}

#[test]
fn truncated_archive_is_an_error() {
    let sb = Sandbox::new();
    let bytes = Tar::new().file("big", &vec![7u8; 100_000]).bytes();
    let err = sb.apply(&bytes[..50_000], &plain()).unwrap_err();
    assert!(
        matches!(err, ApplyError::Entry { .. } | ApplyError::Archive(_)),
        "{err}"
    );
}

#[test]
fn compressed_layer_applies_through_the_sniffing_decoder() {
    use std::io::Write;
    let sb = Sandbox::new();
    let tar = Tar::new().file("etc/issue", b"Debian").bytes();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&tar).unwrap();
    let gz = enc.finish().unwrap();
    let (c, reader) = cd_archive::sniffing_decoder(&gz[..]).unwrap();
    assert_eq!(c, cd_archive::Compression::Gzip);
    cd_rootfs::apply_tar(&sb.root, reader, &plain(), &mut |_| {}).unwrap();
    assert_eq!(std::fs::read(sb.p("etc/issue")).unwrap(), b"Debian");
}

#[test]
fn a_full_filesystem_is_reported_with_the_entry_path() {
    let Some(inside) =
        common::in_private_mount_ns("a_full_filesystem_is_reported_with_the_entry_path")
    else {
        return;
    };
    if !inside {
        return;
    }
    let sb = Sandbox::new();
    common::mount(&[
        "-t",
        "tmpfs",
        "-o",
        "size=256k",
        "tmpfs",
        sb.root_path().to_str().unwrap(),
    ]);
    let root = cd_rootfs::Rootfs::open(sb.root_path()).unwrap();
    let tar = Tar::new()
        .file("var/big.bin", &vec![1u8; 1024 * 1024])
        .bytes();
    let err = cd_rootfs::apply_tar(&root, &tar[..], &plain(), &mut |_| {}).unwrap_err();
    assert_eq!(
        err.io_error().map(|e| e.kind()),
        Some(std::io::ErrorKind::StorageFull),
        "{err}"
    );
    assert_eq!(err.path(), Some("var/big.bin"));
    assert!(err.to_string().contains("No space left on device"), "{err}");
}

#[test]
fn planted_symlinks_in_the_same_archive_are_replaced_not_used() {
    let sb = Sandbox::new();
    let before = sb.outside();
    let host = sb.host_path();
    let canary = host.join("canary");
    let mut t = Tar::new();
    t.symlink("f", canary.to_str().unwrap())
        .file("f", b"replaced")
        .symlink("d", host.to_str().unwrap())
        .dir("d/")
        .file("d/canary", b"inside")
        .symlink("s", canary.to_str().unwrap())
        .hardlink("l", "s");
    let stats = sb.apply(&t.bytes(), &plain()).unwrap();
    assert_eq!(std::fs::read(sb.p("f")).unwrap(), b"replaced");
    assert!(meta(&sb.p("d")).is_dir());
    assert_eq!(std::fs::read(sb.p("d/canary")).unwrap(), b"inside");
    assert!(!sb.p("l").exists(), "a hard link to a symlink is skipped");
    assert_eq!(stats.skipped, 1);
    sb.assert_host_untouched(&before);
}
