//! Hostile tarballs and image archives must leave a host canary untouched.

use super::*;

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

/// A metadata bomb: a PAX extension header claiming 256 MiB, whose body (zeros) gzip shrinks
/// to a quarter of a megabyte. The tar parser would read it all into memory; the guard refuses
/// it at the header.
#[test]
fn a_metadata_bomb_fails_at_once_in_one_line_and_leaves_nothing() {
    let env = test_env();
    let work = tempfile::tempdir().unwrap();
    let mut header = tar::Header::new_ustar();
    header.set_path("PaxHeaders/bomb").unwrap();
    header.set_size(256 << 20);
    header.set_entry_type(tar::EntryType::XHeader);
    header.set_mode(0o644);
    header.set_cksum();
    let head = work.path().join("header");
    fs::write(&head, header.as_bytes()).unwrap();
    let bomb = work.path().join("bomb.tar.gz");
    sh(&format!(
        "(cat {}; head -c 256M /dev/zero) | gzip -1 > {}",
        head.display(),
        bomb.display()
    ));
    let out = env.run(["install", bomb.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let line = error_line(&out);
    assert!(line.contains("malformed or hostile"), "{line}");
    assert_nothing_left(&env, "bomb");
}

/// A name 30 000 directories deep: the kernel refuses it, and the error stays one short line
/// (the name is shortened in the middle) with nothing left behind.
#[test]
fn an_absurdly_deep_name_fails_in_one_short_line() {
    let env = test_env();
    let work = tempfile::tempdir().unwrap();
    let deep = format!("{}f", "d/".repeat(30_000));
    let tarball = work.path().join("deep.tar");
    let mut entries = busybox::layer_entries();
    entries.push(Entry::file(&deep, "x", 0o644));
    fs::write(&tarball, tar_bytes(&entries)).unwrap();
    let out = env.run(["install", tarball.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let line = error_line(&out);
    assert!(line.len() < 400, "{} bytes: {line}", line.len());
    assert!(line.contains("characters]"), "{line}");
    assert_nothing_left(&env, "deep");
}
