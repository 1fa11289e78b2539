//! `install` and `reset` through the binary, against Debian's real `docker-registry` on
//! 127.0.0.1 (filled with skopeo) and against a scripted misbehaving fake.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use cd_testkit::busybox;
use cd_testkit::canary::Canary;
use cd_testkit::env::{describe, stderr, TestEnv};
use cd_testkit::fakereg::{FakeRegistry, Fault};
use cd_testkit::fixture::{
    gzip, random_bytes, tar_bytes, Entry, ImageBuilder, OciLayout, WrittenImage,
};
use cd_testkit::outcome::{assert_nothing_left, error_line};
use cd_testkit::registry::LocalRegistry;
use serde_json::{json, Value};

fn test_env() -> TestEnv {
    TestEnv::new(env!("CARGO_BIN_EXE_chroot-distro"))
}

/// Push `image` to `reg` as `repo_tag` through an OCI layout and skopeo.
fn push(reg: &LocalRegistry, repo_tag: &str, image: &ImageBuilder) -> WrittenImage {
    let dir = tempfile::tempdir().unwrap();
    let mut layout = OciLayout::create(dir.path());
    let written = layout.add_image("t", image);
    reg.push_oci_dir(dir.path(), "t", repo_tag, &[]);
    written
}

fn host_arch_name() -> &'static str {
    std::env::consts::ARCH
}

fn cached_blob(env: &TestEnv, digest: &str) -> PathBuf {
    env.cache_dir()
        .join("oci_layers")
        .join(digest.replace(':', "_"))
}

fn rich_image() -> ImageBuilder {
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

fn assert_nothing_left_but(env: &TestEnv, name: &str) {
    let names: Vec<String> = std::fs::read_dir(env.store_dir().join("containers"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec![name.to_string()]);
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

/// A one-layer image served by the fake: (layer blob, manifest bytes, config digest).
fn fake_image(
    fake: &FakeRegistry,
    repo: &str,
    layer_tar: &[u8],
    diff_id: Option<String>,
) -> String {
    let blob = gzip(layer_tar);
    let layer_digest = fake.put_blob(&blob);
    let diff_id = diff_id.unwrap_or_else(|| cd_testkit::fixture::digest(layer_tar));
    let config = json!({
        "architecture": cd_testkit::fixture::host_goarch(), "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    });
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let config_digest = fake.put_blob(&config_bytes);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config_bytes.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer_digest, "size": blob.len()}],
    });
    fake.put_manifest(
        repo,
        "1",
        "application/vnd.oci.image.manifest.v1+json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    layer_digest
}

fn small_layer() -> Vec<u8> {
    tar_bytes(&[
        Entry::dir("etc", 0o755),
        Entry::file("etc/motd", "hello", 0o644),
    ])
}

#[test]
fn misbehaving_registry_blobs_fail_cleanly_or_recover() {
    let fake = FakeRegistry::open();
    let env = test_env();
    let install = |repo: &str| {
        env.cmd(["install", &format!("{}/{repo}:1", fake.host_port())])
            .env("CD_DOWNLOAD_MAX_RETRIES", "2")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };

    let digest = fake_image(&fake, "corrupt", &small_layer(), None);
    let same_size = vec![b'x'; gzip(&small_layer()).len()];
    fake.fault(&digest, Fault::WrongBody(same_size), 100);
    let out = install("corrupt");
    assert!(!out.status.success());
    assert!(
        error_line(&out).contains("digest mismatch"),
        "{}",
        describe(&out)
    );
    assert_nothing_left(&env, "corrupt");
    assert!(
        !cached_blob(&env, &digest).exists(),
        "unverified blob cached"
    );

    let layer = tar_bytes(&[Entry::file("big", vec![7u8; 300_000], 0o644)]);
    let digest = fake_image(&fake, "truncated", &layer, None);
    fake.fault(&digest, Fault::Truncate(1000), 100);
    let out = install("truncated");
    assert!(!out.status.success());
    error_line(&out);
    assert_nothing_left(&env, "truncated");
    assert!(!cached_blob(&env, &digest).exists());

    let layer = tar_bytes(&[Entry::file("flaky", "ok after 503", 0o644)]);
    let digest = fake_image(&fake, "flaky", &layer, None);
    fake.fault(&digest, Fault::Status(503), 1);
    let out = install("flaky");
    assert!(out.status.success(), "{}", describe(&out));
    assert!(env.rootfs("flaky").join("flaky").is_file());

    let layer = tar_bytes(&[Entry::file("limited", "ok after 429", 0o644)]);
    let digest = fake_image(&fake, "limited", &layer, None);
    fake.fault(
        &digest,
        Fault::TooManyRequests {
            retry_after_secs: 1,
        },
        1,
    );
    let started = Instant::now();
    let out = install("limited");
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "Retry-After ignored"
    );
    assert!(env.rootfs("limited").join("limited").is_file());

    // The blob is genuine but the config's diff_id is not: refused, blob evicted.
    let digest = fake_image(
        &fake,
        "lying",
        &tar_bytes(&[Entry::file("lying", "genuine content", 0o644)]),
        Some(cd_testkit::fixture::digest(b"something else")),
    );
    let out = install("lying");
    assert!(!out.status.success());
    assert!(
        error_line(&out).contains("does not match"),
        "{}",
        describe(&out)
    );
    assert_nothing_left(&env, "lying");
    assert!(
        !cached_blob(&env, &digest).exists(),
        "a blob failing its diff_id stays cached"
    );
}

#[test]
fn user_errors_are_one_line_and_change_nothing() {
    let env = test_env();
    let fake = FakeRegistry::open();
    fake_image(&fake, "exists", &small_layer(), None);
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["install".into(), "Bad::Ref".into()],
            "invalid image reference",
        ),
        (
            vec!["install".into(), format!("{}/missing:1", fake.host_port())],
            "not found",
        ),
        (
            vec!["install".into(), "127.0.0.1:1/x:1".into()],
            "cannot reach",
        ),
        (
            vec![
                "install".into(),
                format!("{}/exists:1", fake.host_port()),
                "--name=.bad".into(),
            ],
            "invalid container name",
        ),
    ];
    for (args, want) in cases {
        let out = env.run(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", describe(&out));
        let line = error_line(&out);
        assert!(line.contains(want), "{args:?}: {line}");
    }
    assert!(
        !env.store_dir().join("containers").exists()
            || std::fs::read_dir(env.store_dir().join("containers"))
                .unwrap()
                .count()
                == 0
    );
}

#[test]
fn concurrent_installs_of_one_name_have_exactly_one_winner() {
    let env = test_env();
    let fake = FakeRegistry::open();
    let layer = tar_bytes(&[Entry::file("payload", vec![1u8; 2_000_000], 0o644)]);
    fake_image(&fake, "race", &layer, None);
    let reference = format!("{}/race:1", fake.host_port());
    let spawn = || -> Child {
        env.cmd(["install", &reference, "-n", "same"])
            .env("CD_DOWNLOAD_RATE_LIMIT", "4M")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let children: Vec<Child> = (0..3).map(|_| spawn()).collect();
    let outs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let winners = outs.iter().filter(|o| o.status.success()).count();
    assert_eq!(
        winners,
        1,
        "{:#?}",
        outs.iter().map(describe).collect::<Vec<_>>()
    );
    for o in outs.iter().filter(|o| !o.status.success()) {
        let line = error_line(o);
        assert!(
            line.contains("busy") || line.contains("already exists"),
            "{line}"
        );
    }
    assert_nothing_left_but(&env, "same");
    assert_eq!(
        std::fs::read(env.rootfs("same").join("payload"))
            .unwrap()
            .len(),
        2_000_000
    );
}

#[test]
fn ctrl_c_during_download_leaves_nothing_and_the_next_install_resumes() {
    let env = test_env();
    let fake = FakeRegistry::open();
    // Incompressible, so the rate limit holds the download for several seconds.
    let noise = random_bytes(6_000_000, 0x9e37_79b9_7f4a_7c15);
    let layer = tar_bytes(&[Entry::file("noise", &noise, 0o644)]);
    let digest = fake_image(&fake, "slow", &layer, None);
    let reference = format!("{}/slow:1", fake.host_port());
    let mut child = env
        .cmd(["install", &reference])
        .env("CD_DOWNLOAD_RATE_LIMIT", "1M")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let partial = env
        .cache_dir()
        .join("oci_layers")
        .join(format!("{}.partial", digest.replace(':', "_")));
    let deadline = Instant::now() + Duration::from_secs(20);
    while partial.metadata().map(|m| m.len()).unwrap_or(0) < 500_000 {
        assert!(Instant::now() < deadline, "download never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let waited = Instant::now();
    let out = loop {
        if let Some(_status) = child.try_wait().unwrap() {
            break child.wait_with_output().unwrap();
        }
        if waited.elapsed() > Duration::from_secs(15) {
            let _ = child.kill();
            panic!("install did not stop after SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(out.status.code(), Some(130), "{}", describe(&out));
    assert!(stderr(&out).contains("interrupted"), "{}", describe(&out));
    assert_nothing_left(&env, "slow");
    assert!(
        !cached_blob(&env, &digest).exists(),
        "unverified blob cached"
    );

    let out = env.run(["install", &reference]);
    assert!(out.status.success(), "{}", describe(&out));
    let ranged = fake
        .requests()
        .iter()
        .any(|r| r.url.contains(&digest) && r.range.is_some());
    assert!(
        ranged,
        "the second install did not resume the partial download"
    );
    assert_eq!(
        std::fs::read(env.rootfs("slow").join("noise"))
            .unwrap()
            .len(),
        noise.len()
    );
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
    let inspect = std::process::Command::new("skopeo")
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

fn zstd_compress(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = std::process::Command::new("zstd")
        .args(["-q", "-c", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("zstd (Debian's zstd package)");
    let mut stdin = child.stdin.take().unwrap();
    let input = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success());
    out.stdout
}

#[test]
fn install_applies_uncompressed_gzip_and_zstd_layers() {
    let fake = FakeRegistry::open();
    let layers = [
        (tar_bytes(&[Entry::file("plain", "tar", 0o644)]), "tar"),
        (tar_bytes(&[Entry::file("gz", "gzip", 0o644)]), "tar+gzip"),
        (tar_bytes(&[Entry::file("zst", "zstd", 0o644)]), "tar+zstd"),
    ];
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    for (tar, kind) in &layers {
        let blob = match *kind {
            "tar" => tar.clone(),
            "tar+gzip" => gzip(tar),
            _ => zstd_compress(tar),
        };
        descs.push(json!({
            "mediaType": format!("application/vnd.oci.image.layer.v1.{kind}"),
            "digest": fake.put_blob(&blob), "size": blob.len()}));
        diff_ids.push(cd_testkit::fixture::digest(tar));
    }
    let config = serde_json::to_vec(&json!({
        "architecture": cd_testkit::fixture::host_goarch(), "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids}}))
    .unwrap();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": fake.put_blob(&config), "size": config.len()},
        "layers": descs,
    });
    fake.put_manifest(
        "mixed",
        "1",
        "application/vnd.oci.image.manifest.v1+json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    let env = test_env();
    let out = env.run(["install", &format!("{}/mixed:1", fake.host_port())]);
    assert!(out.status.success(), "{}", describe(&out));
    let r = env.rootfs("mixed");
    for (file, content) in [("plain", "tar"), ("gz", "gzip"), ("zst", "zstd")] {
        assert_eq!(std::fs::read_to_string(r.join(file)).unwrap(), content);
    }
}

#[test]
fn a_full_disk_fails_in_one_line_and_leaves_no_container() {
    let fake = FakeRegistry::open();
    let noise = random_bytes(6_000_000, 0x2545_f491_4f6c_dd1d);
    fake_image(
        &fake,
        "huge",
        &tar_bytes(&[Entry::file("noise", &noise, 0o644)]),
        None,
    );
    let env = test_env();
    // The store lives on a 3 MiB tmpfs, in a mount namespace private to this test.
    cd_testkit::mntns::in_private_mount_ns(|| {
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=3m", "tmpfs"])
            .arg(env.data_home())
            .status()
            .unwrap();
        assert!(status.success(), "cannot mount a tmpfs for the test");
        let out = env.run(["install", &format!("{}/huge:1", fake.host_port())]);
        assert!(!out.status.success());
        let line = error_line(&out);
        assert!(line.contains("disk is full"), "{line}");
        assert_nothing_left(&env, "huge");
        // Whatever the failed install wrote is gone again.
        let used = std::process::Command::new("du")
            .args(["-sk"])
            .arg(env.data_home())
            .output()
            .unwrap();
        let kib: u64 = String::from_utf8_lossy(&used.stdout)
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(kib < 100, "{kib} KiB left behind on the full disk");
    });
}

#[test]
fn an_install_clears_trees_abandoned_by_killed_runs() {
    let fake = FakeRegistry::open();
    fake_image(&fake, "fresh", &small_layer(), None);
    let env = test_env();
    let containers = env.store_dir().join("containers");
    for leftover in [".staging-ghost/rootfs/etc", ".replaced-old/rootfs/usr"] {
        std::fs::create_dir_all(containers.join(leftover)).unwrap();
        std::fs::write(containers.join(leftover).join("f"), "x").unwrap();
    }
    let out = env.run(["install", &format!("{}/fresh:1", fake.host_port())]);
    assert!(out.status.success(), "{}", describe(&out));
    let mut names: Vec<String> = std::fs::read_dir(&containers)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, vec!["fresh".to_string()]);
}

/// Run the binary on a pseudo-terminal (util-linux `script`), as a user at a terminal would.
fn run_on_a_terminal(env: &TestEnv, term: &str, args: &[&str]) -> String {
    let template = env.cmd(args);
    let mut line = format!("'{}'", template.get_program().to_string_lossy());
    for a in args {
        line.push_str(&format!(" '{a}'"));
    }
    let script = std::process::Command::new("script")
        .args(["-qefc", &line, "/dev/null"])
        .env_clear()
        .envs(
            template
                .get_envs()
                .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
        )
        .env_remove("CD_NO_PROGRESS")
        .env("TERM", term)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(script.status.success(), "{line}: {}", describe(&script));
    String::from_utf8_lossy(&script.stdout).into_owned()
}

#[test]
fn progress_bars_show_on_a_terminal_only_and_not_with_quiet() {
    let fake = FakeRegistry::open();
    fake_image(&fake, "bars", &small_layer(), None);
    let env = test_env();
    let reference = format!("{}/bars:1", fake.host_port());

    let shown = run_on_a_terminal(&env, "xterm", &["install", &reference, "-n", "tty"]);
    assert!(
        shown.contains("layer 1/1"),
        "no layer bar on a terminal: {shown:?}"
    );
    assert!(
        shown.contains("Start shell: chroot-distro login tty"),
        "{shown:?}"
    );

    let quiet = run_on_a_terminal(&env, "xterm", &["install", &reference, "-n", "quiet", "-q"]);
    assert!(
        quiet.trim().is_empty(),
        "-q printed on a terminal: {quiet:?}"
    );

    // A terminal without a usable TERM gets no bars, but still every status line.
    let dumb = run_on_a_terminal(&env, "dumb", &["install", &reference, "-n", "dumb"]);
    assert!(
        dumb.contains("Start shell: chroot-distro login dumb"),
        "{dumb:?}"
    );

    let piped = env
        .cmd(["install", &reference, "-n", "piped"])
        .env_remove("CD_NO_PROGRESS")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(piped.status.success(), "{}", describe(&piped));
    assert!(
        !stderr(&piped).contains("layer 1/1"),
        "bars drawn into a pipe: {}",
        describe(&piped)
    );
}
