//! Image archives: OCI archives and docker-archives written by skopeo, and `docker save`
//! layouts old and new; install, platforms, run and reset.

use super::*;

#[test]
fn oci_archive_from_skopeo_installs_runs_and_resets() {
    let env = test_env();
    let work = tempfile::tempdir().unwrap();
    let mut layout = OciLayout::create(&work.path().join("layout"));
    let written = layout.add_image("v1", &image("from-oci"));
    let archive = work.path().join("image.oci");
    skopeo_copy(
        &layout.dir,
        "v1",
        &format!("oci-archive:{}:v1", archive.display()),
        &[],
    );
    let out = env.run(["install", &archive.display().to_string()]);
    ok(&out);
    let root = env.rootfs("image");
    assert_eq!(
        fs::read_to_string(root.join("etc/marker")).unwrap(),
        "from-oci"
    );
    assert!(!root.join("etc/doomed").exists(), "whiteout applied");
    assert!(!root.join("etc/.wh.doomed").exists());
    let rec = record(&env, "image");
    assert_eq!(rec["arch"], std::env::consts::ARCH);
    assert_eq!(
        rec["manifest"]["config"]["digest"].as_str(),
        Some(written.config_digest.as_str())
    );
    assert!(
        stderr(&out).contains("chroot-distro run image"),
        "{}",
        describe(&out)
    );

    let out = env.run(["run", "image"]);
    ok(&out);
    assert_eq!(stdout(&out), "from-oci");
    let out = env.run(["login", "image", "--", "cat", "/etc/marker"]);
    ok(&out);
    assert_eq!(stdout(&out), "from-oci");

    // Reset rebuilds from the cached layers: the archive is gone by now.
    fs::remove_file(&archive).unwrap();
    fs::write(root.join("etc/marker"), "changed").unwrap();
    ok(&env.run(["reset", "image"]));
    assert_eq!(
        fs::read_to_string(env.rootfs("image").join("etc/marker")).unwrap(),
        "from-oci"
    );
    assert_no_temp_files(&env);
    assert_cache_verified(&env);
    // Only the image's layers went into the cache (no configs, manifests or index).
    let cached: Vec<_> = fs::read_dir(env.cache_dir().join("oci_layers"))
        .unwrap()
        .collect();
    assert_eq!(cached.len(), written.layer_digests.len());
}

#[test]
fn multi_platform_oci_archive_installs_the_host_or_the_asked_architecture() {
    let env = test_env();
    let work = tempfile::tempdir().unwrap();
    let (goarch, arch) = foreign_goarch();
    let mut layout = OciLayout::create(&work.path().join("layout"));
    let foreign = ImageBuilder::new().arch(goarch, None).layer(vec![
        Entry::dir("etc", 0o755),
        Entry::file("etc/marker", goarch, 0o644),
    ]);
    layout.add_index("multi", &[foreign, image("host")]);
    let archive = work.path().join("multi.tar");
    skopeo_copy(
        &layout.dir,
        "multi",
        &format!("oci-archive:{}:multi", archive.display()),
        &["--all"],
    );
    let file = archive.display().to_string();

    ok(&env.run(["install", &file]));
    assert_eq!(
        fs::read_to_string(env.rootfs("multi").join("etc/marker")).unwrap(),
        "host"
    );
    let out = env.run(["login", "multi", "--", "cat", "/etc/marker"]);
    ok(&out);
    assert_eq!(stdout(&out), "host");

    ok(&env.run(["install", &file, "--name", "other", "--architecture", arch]));
    assert_eq!(
        fs::read_to_string(env.rootfs("other").join("etc/marker")).unwrap(),
        goarch
    );
    assert_eq!(record(&env, "other")["arch"], arch);

    let out = env.run(["install", &file, "--name", "nope", "-a", "riscv64"]);
    let line = error_line(&out);
    assert!(line.contains("no image for linux/riscv64"), "{line}");
    assert_nothing_left(&env, "nope");
}

#[test]
fn docker_archive_from_skopeo_installs_and_resets() {
    let env = test_env();
    let work = tempfile::tempdir().unwrap();
    let mut layout = OciLayout::create(&work.path().join("layout"));
    layout.add_image("v1", &image("from-docker"));
    let archive = work.path().join("saved.tar");
    skopeo_copy(
        &layout.dir,
        "v1",
        &format!("docker-archive:{}:example/saved:v1", archive.display()),
        &[],
    );
    ok(&env.run(["install", &archive.display().to_string()]));
    let root = env.rootfs("saved");
    assert_eq!(
        fs::read_to_string(root.join("etc/marker")).unwrap(),
        "from-docker"
    );
    assert!(!root.join("etc/doomed").exists(), "whiteout applied");
    let rec = record(&env, "saved");
    assert_eq!(rec["manifest"]["layers"].as_array().unwrap().len(), 2);
    assert_eq!(rec["image_config"]["config"]["Entrypoint"][0], "/bin/cat");

    let out = env.run(["login", "saved", "--", "cat", "/etc/marker"]);
    ok(&out);
    assert_eq!(stdout(&out), "from-docker");
    fs::remove_file(root.join("etc/marker")).unwrap();
    ok(&env.run(["reset", "saved"]));
    assert_eq!(
        fs::read_to_string(env.rootfs("saved").join("etc/marker")).unwrap(),
        "from-docker"
    );
    assert_no_temp_files(&env);
    assert_cache_verified(&env);
}

/// An OCI layout holding two images for the host (two tags), tarred as it is: the first is
/// installed and the other is named in a warning, not silently ignored.
#[test]
fn an_archive_with_several_images_for_the_platform_says_which_it_installs() {
    let env = test_env();
    let work = tempfile::tempdir().unwrap();
    let mut layout = OciLayout::create(&work.path().join("layout"));
    layout.add_image("first", &image("the first"));
    layout.add_image("second", &image("the second"));
    let archive = work.path().join("two.tar");
    tar_dir(&layout.dir, &archive);
    let out = env.run(["install", &archive.display().to_string()]);
    ok(&out);
    assert!(
        stderr(&out).contains("holds 2 images for linux/")
            && stderr(&out).contains("installing the first, first (not second)"),
        "{}",
        describe(&out)
    );
    assert_eq!(
        fs::read_to_string(env.rootfs("two").join("etc/marker")).unwrap(),
        "the first"
    );
}

/// The layout of `docker save` before Docker 25 (what the Python tool unpacks wrongly): each
/// layer as `<id>/layer.tar` beside `<id>/json` and `<id>/VERSION`, a `repositories` file, and
/// `manifest.json` pointing at them.
#[test]
fn legacy_docker_save_archives_install_with_whiteouts_and_run() {
    let env = test_env();
    let lower = tar_bytes(
        &[
            busybox::layer_entries(),
            vec![
                Entry::file("etc/doomed", "lower", 0o644),
                Entry::file("etc/marker", "lower", 0o644),
            ],
        ]
        .concat(),
    );
    let upper = tar_bytes(&[
        Entry::whiteout("etc/doomed"),
        Entry::file("etc/marker", "from docker save", 0o644),
    ]);
    let config = json!({
        "architecture": cd_testkit::fixture::host_goarch(), "os": "linux",
        "config": {"Entrypoint": ["/bin/cat", "/etc/marker"]},
        "rootfs": {"type": "layers", "diff_ids": [
            cd_testkit::fixture::digest(&lower), cd_testkit::fixture::digest(&upper)]},
    });
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let config_name = format!("{}.json", cd_testkit::fixture::sha256_hex(&config_bytes));
    let (id1, id2) = ("a".repeat(64), "b".repeat(64));
    let manifest = json!([{
        "Config": config_name,
        "RepoTags": ["legacy:1"],
        "Layers": [format!("{id1}/layer.tar"), format!("{id2}/layer.tar")],
    }]);
    let mut files: Vec<(String, Vec<u8>)> = vec![
        (format!("{id1}/VERSION"), b"1.0".to_vec()),
        (format!("{id1}/json"), br#"{"id":"a"}"#.to_vec()),
        (format!("{id1}/layer.tar"), lower),
        (format!("{id2}/VERSION"), b"1.0".to_vec()),
        (format!("{id2}/json"), br#"{"id":"b"}"#.to_vec()),
        (format!("{id2}/layer.tar"), upper),
        (config_name, config_bytes),
        (
            "repositories".to_string(),
            format!(r#"{{"legacy":{{"1":"{id2}"}}}}"#).into_bytes(),
        ),
    ];
    files.push((
        "manifest.json".to_string(),
        serde_json::to_vec(&manifest).unwrap(),
    ));
    let entries: Vec<Entry> = files
        .iter()
        .map(|(name, data)| Entry::file(name, data, 0o644))
        .collect();
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("legacy.tar");
    fs::write(&archive, tar_bytes(&entries)).unwrap();

    let out = env.run(["install", &archive.display().to_string()]);
    ok(&out);
    let root = env.rootfs("legacy");
    assert!(!root.join("etc/doomed").exists(), "whiteout applied");
    assert!(!root.join("etc/.wh.doomed").exists());
    assert!(
        !root.join("repositories").exists(),
        "archive files leaked into the tree"
    );
    let out = env.run(["run", "legacy"]);
    ok(&out);
    assert_eq!(stdout(&out), "from docker save");
}

/// `docker save` since Docker 25: an OCI layout that also carries a docker `manifest.json`
/// pointing into `blobs/sha256/`. Either description leads to the same image.
#[test]
fn docker_25_save_archives_with_both_descriptions_install() {
    let env = test_env();
    let work = tempfile::tempdir().unwrap();
    let mut layout = OciLayout::create(&work.path().join("layout"));
    let written = layout.add_image("v1", &image("docker 25"));
    let blob = |d: &str| format!("blobs/sha256/{}", d.trim_start_matches("sha256:"));
    let manifest = json!([{
        "Config": blob(&written.config_digest),
        "RepoTags": ["new:1"],
        "Layers": written.layer_digests.iter().map(|d| blob(d)).collect::<Vec<_>>(),
    }]);
    fs::write(
        layout.dir.join("manifest.json"),
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
    let archive = work.path().join("new.tar");
    tar_dir(&layout.dir, &archive);
    let out = env.run(["install", &archive.display().to_string()]);
    ok(&out);
    let root = env.rootfs("new");
    assert!(!root.join("etc/doomed").exists(), "whiteout applied");
    assert!(!root.join("manifest.json").exists());
    let out = env.run(["run", "new"]);
    ok(&out);
    assert_eq!(stdout(&out), "docker 25");
}

/// `tar -C dir -cf archive .`: an OCI layout as the plain tar other tools write of it.
fn tar_dir(dir: &Path, archive: &Path) {
    sh(&format!(
        "tar -C {} -cf {} .",
        dir.display(),
        archive.display()
    ));
}
