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

/// Write `data` into the FIFO at `fifo` from a thread (the reader may open it at most once).
fn feed_fifo(fifo: &Path, data: Vec<u8>) -> std::thread::JoinHandle<()> {
    let fifo = fifo.to_path_buf();
    std::thread::spawn(move || {
        // Fails with a broken pipe when the reader gives up early; that is the reader's story.
        if let Ok(mut f) = fs::OpenOptions::new().write(true).open(&fifo) {
            let _ = f.write_all(&data);
        }
    })
}

#[test]
fn a_flat_rootfs_installs_in_one_pass_even_from_a_pipe() {
    let env = test_env();
    let work = tempfile::tempdir().unwrap();
    let tree = work.path().join("tree");
    busybox_tree(&tree, "piped");
    let flat = work.path().join("flat.tar.gz");
    sh(&format!(
        "tar --numeric-owner -C '{}' -czf '{}' .",
        tree.display(),
        flat.display()
    ));
    let fifo = work.path().join("pipe");
    sh(&format!("mkfifo '{}'", fifo.display()));

    // A FIFO can be read once: a second pass over it would see nothing.
    let writer = feed_fifo(&fifo, fs::read(&flat).unwrap());
    let out = env.run(["install", fifo.to_str().unwrap(), "--name", "piped"]);
    writer.join().unwrap();
    ok(&out);
    assert_eq!(
        fs::read_to_string(env.rootfs("piped").join("etc/marker")).unwrap(),
        "piped"
    );

    // A tree inside a folder needs the second pass: a pipe gets a clear refusal.
    let nested = work.path().join("nested.tar.gz");
    sh(&format!(
        "mkdir -p '{0}/wrap' && cp -a '{1}' '{0}/wrap/myroot' && tar --numeric-owner -C '{0}/wrap' -czf '{2}' myroot",
        work.path().display(),
        tree.display(),
        nested.display()
    ));
    let writer = feed_fifo(&fifo, fs::read(&nested).unwrap());
    let out = env.run(["install", fifo.to_str().unwrap(), "--name", "nested"]);
    writer.join().unwrap();
    let line = error_line(&out);
    assert!(line.contains("can be read only once"), "{line}");
    assert_nothing_left(&env, "nested");
}
