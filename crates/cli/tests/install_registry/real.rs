//! Against Debian's docker-registry: layer features, cache and reset, platforms, auth, hostile layers.

use super::*;

pub(crate) fn rich_image() -> ImageBuilder {
    let mut base = busybox::layer_entries();
    base.extend([
        Entry::dir("data", 0o755),
        Entry::file("data/keep.txt", "keep", 0o644),
        Entry::file("data/gone.txt", "gone", 0o644),
        Entry::dir("opq", 0o755),
        Entry::file("opq/old.txt", "old", 0o644),
        Entry::dir("links", 0o755),
        Entry::file("links/a", "shared", 0o644),
        Entry::dir("change", 0o755),
        Entry::file("change/f2d", "file first", 0o644),
        Entry::symlink("change/sym", "../data/keep.txt"),
        Entry::dir("setuid", 0o755),
        Entry::file("setuid/prog", "#!/bin/sh\n", 0o4755),
        Entry::dir("uni", 0o755),
        Entry::file("uni/ñandú-日本.txt", "unicode", 0o644),
        Entry::dir("old", 0o755),
        Entry::file("old/file", "old mtime", 0o644).mtime(1_000_000),
        Entry::dir("home/user", 0o755).owner(1000, 1000),
        Entry::file("home/user/file", "mine", 0o600).owner(1000, 1000),
        Entry::fifo("fifo"),
    ]);
    let top = vec![
        Entry::whiteout("data/gone.txt"),
        Entry::opaque("opq"),
        Entry::file("opq/new.txt", "new", 0o644),
        Entry::hardlink("links/b", "links/a"),
        Entry::dir("change/f2d", 0o755),
        Entry::file("change/f2d/inner", "now a dir", 0o644),
        Entry::file("change/sym", "now a file", 0o644),
    ];
    ImageBuilder::new()
        .layer(base)
        .layer(top)
        .config("Cmd", json!(["/bin/sh"]))
        .config("Entrypoint", json!(["/bin/echo", "entry"]))
        .config("Env", json!(["PATH=/bin:/usr/bin", "FROM_IMAGE=yes"]))
}

#[test]
fn install_from_registry_applies_every_layer_feature_and_records_the_image() {
    let reg = LocalRegistry::start_plain();
    let written = push(&reg, "rich:1", &rich_image());
    let env = test_env();
    let reference = format!("{}/rich:1", reg.host_port());

    let out = env.run(["install", &reference]);
    assert!(out.status.success(), "{}", describe(&out));
    let err = stderr(&out);
    assert!(
        err.contains("Start shell: chroot-distro login rich"),
        "{err}"
    );
    assert!(
        err.contains("Run entrypoint: chroot-distro run rich"),
        "{err}"
    );

    let r = env.rootfs("rich");
    let read = |p: &str| std::fs::read_to_string(r.join(p)).unwrap();
    assert_eq!(read("data/keep.txt"), "keep");
    assert!(!r.join("data/gone.txt").exists(), "whiteout ignored");
    assert!(
        !r.join("opq/old.txt").exists(),
        "opaque dir kept lower files"
    );
    assert_eq!(read("opq/new.txt"), "new");
    let (a, b) = (
        r.join("links/a").metadata().unwrap(),
        r.join("links/b").metadata().unwrap(),
    );
    assert_eq!(a.ino(), b.ino(), "cross-layer hard link became a copy");
    assert!(r.join("change/f2d").is_dir());
    assert_eq!(read("change/f2d/inner"), "now a dir");
    let sym = r.join("change/sym").symlink_metadata().unwrap();
    assert!(sym.is_file(), "symlink was not replaced by a file");
    assert_eq!(read("change/sym"), "now a file");
    assert_eq!(
        read("data/keep.txt"),
        "keep",
        "wrote through the old symlink"
    );
    assert_eq!(
        r.join("setuid/prog").metadata().unwrap().mode() & 0o7777,
        0o4755
    );
    assert_eq!(read("uni/ñandú-日本.txt"), "unicode");
    assert_eq!(r.join("old/file").metadata().unwrap().mtime(), 1_000_000);
    let mine = r.join("home/user/file").metadata().unwrap();
    assert_eq!((mine.uid(), mine.gid()), (1000, 1000));
    assert!(r
        .join("fifo")
        .symlink_metadata()
        .unwrap()
        .file_type()
        .is_fifo());
    assert!(read("etc/resolv.conf").contains("nameserver"));
    assert!(read("etc/hosts").contains("rich"));

    let record: Value = serde_json::from_slice(
        &std::fs::read(env.container_dir("rich").join("manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(record["image_ref"], reference);
    assert_eq!(record["arch"], host_arch_name());
    assert_eq!(record["manifest"]["layers"].as_array().unwrap().len(), 2);
    assert_eq!(record["image_config"]["config"]["Cmd"], json!(["/bin/sh"]));
    for d in &written.layer_digests {
        assert!(cached_blob(&env, d).is_file(), "layer {d} not cached");
    }
    let manifests: Vec<_> = std::fs::read_dir(env.cache_dir().join("oci_manifests"))
        .unwrap()
        .collect();
    assert_eq!(manifests.len(), 1);
    let cached: Value =
        serde_json::from_slice(&std::fs::read(manifests[0].as_ref().unwrap().path()).unwrap())
            .unwrap();
    for key in ["manifest", "repo", "image_config", "platform"] {
        assert!(cached.get(key).is_some(), "manifest cache lacks {key}");
    }
    assert_nothing_left_but(&env, "rich");

    let again = env.run(["install", &reference]);
    assert!(!again.status.success());
    assert!(error_line(&again).contains("already exists"));

    let shell = env.run(["login", "rich", "--", "cat", "/opq/new.txt"]);
    assert!(shell.status.success(), "{}", describe(&shell));
    assert_eq!(String::from_utf8_lossy(&shell.stdout), "new");
}

#[test]
fn install_and_reset_work_from_the_cache_with_the_registry_gone() {
    let reg = LocalRegistry::start_plain();
    push(
        &reg,
        "cached:1",
        &ImageBuilder::new()
            .layer(busybox::layer_entries())
            .layer(vec![
                Entry::dir("srv", 0o755),
                Entry::file("srv/page", "original", 0o644),
            ]),
    );
    let env = test_env();
    let reference = format!("{}/cached:1", reg.host_port());
    let out = env.run(["install", "-q", &reference, "--name", "first"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(stderr(&out).is_empty(), "-q printed: {}", describe(&out));
    drop(reg);

    let out = env.run(["install", &reference, "--override-alias", "second"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(
        std::fs::read_to_string(env.rootfs("second").join("srv/page")).unwrap(),
        "original"
    );

    std::fs::write(env.rootfs("first").join("srv/page"), "changed").unwrap();
    std::fs::write(env.rootfs("first").join("srv/extra"), "new file").unwrap();
    let out = env.run(["reset", "first"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(
        std::fs::read_to_string(env.rootfs("first").join("srv/page")).unwrap(),
        "original"
    );
    assert!(!env.rootfs("first").join("srv/extra").exists());
    assert!(env.container_dir("first").join("manifest.json").is_file());

    // A plain rootfs container has no image to reset from.
    env.make_container("plain", busybox::populate);
    let out = env.run(["reset", "plain"]);
    assert!(!out.status.success());
    assert!(
        error_line(&out).contains("no manifest.json"),
        "{}",
        describe(&out)
    );
    assert!(
        env.rootfs("plain").join("bin/busybox").exists(),
        "reset destroyed it"
    );
}

#[test]
fn install_picks_the_platform_from_a_manifest_list() {
    let reg = LocalRegistry::start_plain();
    let dir = tempfile::tempdir().unwrap();
    let mut layout = OciLayout::create(dir.path());
    let image = |arch: &str, variant: Option<&str>| {
        ImageBuilder::new()
            .arch(arch, variant)
            .layer(vec![Entry::file("arch", arch, 0o644)])
    };
    layout.add_index(
        "multi",
        &[
            image("amd64", None),
            image("arm64", None),
            image("arm", Some("v7")),
        ],
    );
    reg.push_oci_dir(dir.path(), "multi", "multi:1", &["--all"]);
    let env = test_env();
    let reference = format!("{}/multi:1", reg.host_port());

    let out = env.run(["install", &reference, "-n", "native"]);
    assert!(out.status.success(), "{}", describe(&out));
    let native = cd_testkit::fixture::host_goarch();
    assert_eq!(
        std::fs::read_to_string(env.rootfs("native").join("arch")).unwrap(),
        native
    );
    for (flag, want, arch) in [
        ("aarch64", "arm64", "aarch64"),
        ("linux/arm64", "arm64", "aarch64"),
        ("linux/arm/v7", "arm", "arm"),
        ("x86_64", "amd64", "x86_64"),
    ] {
        let name = format!("p{}", flag.replace('/', "-"));
        let out = env.run(["install", &reference, "-n", &name, "--architecture", flag]);
        assert!(out.status.success(), "{flag}: {}", describe(&out));
        assert_eq!(
            std::fs::read_to_string(env.rootfs(&name).join("arch")).unwrap(),
            want,
            "{flag}"
        );
        let record: Value = serde_json::from_slice(
            &std::fs::read(env.container_dir(&name).join("manifest.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(record["arch"], arch, "{flag}");
    }

    let out = env.run(["install", &reference, "-n", "r", "-a", "riscv64"]);
    assert!(!out.status.success());
    let line = error_line(&out);
    assert!(line.contains("no image for linux/riscv64"), "{line}");
    assert!(
        line.contains("linux/arm64"),
        "available platforms not listed: {line}"
    );
    assert_nothing_left(&env, "r");

    let out = env.run(["install", &reference, "-n", "bad", "-a", "sparc"]);
    assert!(!out.status.success());
    assert!(error_line(&out).contains("unknown architecture 'sparc'"));
}

#[test]
fn install_from_a_tls_htpasswd_registry_takes_credentials_from_every_source() {
    let reg = LocalRegistry::start_tls_htpasswd("alice", "s3cret");
    push(
        &reg,
        "private/app:1",
        &ImageBuilder::new().layer(vec![Entry::file("secret", "inside", 0o644)]),
    );
    let env = test_env();
    let reference = format!("{}/private/app:1", reg.host_port());
    let ca = reg.ca_cert_path().unwrap().to_path_buf();
    let install = |name: &str, vars: &[(&str, String)]| {
        let mut cmd = env.cmd(["install", &reference, "-n", name]);
        cmd.env("SSL_CERT_FILE", &ca).stdin(Stdio::null());
        for (k, v) in vars {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };

    let out = install("anon", &[]);
    assert!(!out.status.success());
    let line = error_line(&out);
    assert!(
        line.contains("denied") && line.contains("CD_DOCKER_AUTH"),
        "{line}"
    );
    assert_nothing_left(&env, "anon");

    let out = install("wrong", &[("CD_DOCKER_AUTH", "alice:nope".into())]);
    assert!(!out.status.success(), "{}", describe(&out));

    let auth = cd_testkit::fixture::base64(b"alice:s3cret");
    let files = tempfile::tempdir().unwrap();
    let auth_json = files.path().join("auth.json");
    std::fs::write(
        &auth_json,
        json!({"auths": {reg.host_port(): {"auth": auth}}}).to_string(),
    )
    .unwrap();
    let docker_dir = files.path().join("docker");
    std::fs::create_dir(&docker_dir).unwrap();
    std::fs::write(
        docker_dir.join("config.json"),
        json!({"auths": {reg.host_port(): {"auth": auth}}}).to_string(),
    )
    .unwrap();
    let helper_dir = files.path().join("helper");
    std::fs::create_dir(&helper_dir).unwrap();
    let helper_cfg = files.path().join("helper-cfg");
    std::fs::create_dir(&helper_cfg).unwrap();
    std::fs::write(
        helper_cfg.join("config.json"),
        json!({"credHelpers": {reg.host_port(): "cdtest"}}).to_string(),
    )
    .unwrap();
    let helper = helper_dir.join("docker-credential-cdtest");
    std::fs::write(
        &helper,
        "#!/bin/sh\nread server\necho '{\"ServerURL\":\"'\"$server\"'\",\"Username\":\"alice\",\"Secret\":\"s3cret\"}'\n",
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path_with_helper = format!(
        "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        helper_dir.display()
    );

    let sources: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("cdauth", vec![("CD_DOCKER_AUTH", "alice:s3cret".into())]),
        ("pdauth", vec![("PD_DOCKER_AUTH", "alice:s3cret".into())]),
        (
            "authfile",
            vec![("REGISTRY_AUTH_FILE", auth_json.display().to_string())],
        ),
        (
            "dockercfg",
            vec![("DOCKER_CONFIG", docker_dir.display().to_string())],
        ),
        (
            "credhelper",
            vec![
                ("DOCKER_CONFIG", helper_cfg.display().to_string()),
                ("PATH", path_with_helper),
            ],
        ),
    ];
    for (name, vars) in sources {
        let out = install(name, &vars);
        assert!(out.status.success(), "{name}: {}", describe(&out));
        assert_eq!(
            std::fs::read_to_string(env.rootfs(name).join("secret")).unwrap(),
            "inside",
            "{name}"
        );
    }
}

#[test]
fn hostile_layers_from_a_registry_leave_the_host_untouched() {
    let reg = LocalRegistry::start_plain();
    let canary = Canary::new();
    let canary_s = canary.file_str();
    let outside_s = canary.dir().display().to_string();
    let unique = format!("cd-hostile-{}", std::process::id());
    let cases: Vec<(&str, Vec<Entry>)> = vec![
        (
            "dotdot",
            vec![Entry::file(
                &format!("../../../../../../../tmp/{unique}"),
                "x",
                0o644,
            )],
        ),
        (
            "absolute",
            vec![Entry::file(&format!("/tmp/{unique}"), "x", 0o644)],
        ),
        (
            "symlinkparent",
            vec![
                Entry::symlink("evil", &outside_s),
                Entry::file("evil/canary", "overwritten", 0o644),
                Entry::file("evil/new", "planted", 0o644),
            ],
        ),
        ("hardlink", vec![Entry::hardlink("stolen", &canary_s)]),
    ];
    let env = test_env();
    for (name, entries) in cases {
        push(
            &reg,
            &format!("{name}:1"),
            &ImageBuilder::new()
                .layer(busybox::layer_entries())
                .layer(entries),
        );
        let out = env.run(["install", &format!("{}/{name}:1", reg.host_port())]);
        canary.assert_untouched(name);
        assert!(
            !Path::new("/tmp").join(&unique).exists(),
            "{name} escaped to /tmp"
        );
        if out.status.success() {
            // Kept inside: whatever was made is under the rootfs.
            assert!(
                !canary.is_same_inode(&env.rootfs(name).join("stolen")),
                "{name}"
            );
        } else {
            error_line(&out);
            assert_nothing_left(&env, name);
        }
    }
}

#[test]
fn install_by_digest_reference() {
    let reg = LocalRegistry::start_plain();
    let image = ImageBuilder::new()
        .uncompressed()
        .layer(vec![Entry::file("one", "plain tar", 0o644)])
        .layer(vec![Entry::file("two", "second layer", 0o644)]);
    let dir = tempfile::tempdir().unwrap();
    let mut layout = OciLayout::create(dir.path());
    let written = layout.add_image("t", &image);
    reg.push_oci_dir(dir.path(), "t", "plain:1", &[]);
    let env = test_env();
    let host = reg.host_port();

    // skopeo may rewrite the manifest on the way; ask the registry for the digest it serves.
    let scratch = tempfile::tempdir().unwrap();
    let inspect = cd_testkit::registry::containers_tool("skopeo", scratch.path())
        .args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}"])
        .arg(format!("docker://{host}/plain:1"))
        .output()
        .unwrap();
    assert!(inspect.status.success(), "{}", describe(&inspect));
    let digest = String::from_utf8(inspect.stdout)
        .unwrap()
        .trim()
        .to_string();
    assert!(digest.starts_with("sha256:"), "{digest}");
    let _ = written;
    let by_digest = format!("{host}/plain@{digest}");
    let tagged_digest = format!("{host}/plain:ignored@{digest}");
    for (name, reference) in [("d1", &by_digest), ("d2", &tagged_digest)] {
        let out = env.run(["install", reference.as_str(), "-n", name]);
        assert!(out.status.success(), "{reference}: {}", describe(&out));
        let r = env.rootfs(name);
        assert_eq!(std::fs::read_to_string(r.join("one")).unwrap(), "plain tar");
        assert_eq!(
            std::fs::read_to_string(r.join("two")).unwrap(),
            "second layer"
        );
    }

    let wrong = format!("{host}/plain@sha256:{}", "0".repeat(64));
    let out = env.run(["install", wrong.as_str(), "-n", "wrong"]);
    assert!(!out.status.success());
    error_line(&out);
    assert_nothing_left(&env, "wrong");
}
