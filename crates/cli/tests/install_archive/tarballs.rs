//! Plain rootfs tarballs: every compression, strip scoring, damaged and non-archive input.

use super::*;

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
