//! Against the scripted fake: lying and failing registries, user errors, races, Ctrl-C, a full
//! disk, abandoned staging trees and progress bars.

use super::*;

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
        spawn_collecting(
            env.cmd(["install", &reference, "-n", "same"])
                .env("CD_DOWNLOAD_RATE_LIMIT", "4M"),
        )
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

/// A server that stops sending mid-blob leaves the client blocked in a socket read for up to a
/// minute (the read timeout); Ctrl-C must not wait for that.
#[test]
fn ctrl_c_ends_an_install_stalled_by_the_registry_at_once() {
    let env = test_env();
    let fake = FakeRegistry::open();
    let noise = random_bytes(1_000_000, 0x5eed);
    let layer = tar_bytes(&[Entry::file("noise", &noise, 0o644)]);
    let digest = fake_image(&fake, "stuck", &layer, None);
    fake.fault(&digest, Fault::Stall(400_000), 1);
    let reference = format!("{}/stuck:1", fake.host_port());
    let child = spawn_collecting(env.cmd(["install", &reference]));
    let partial = partial_blob(&env, &digest);
    let deadline = Instant::now() + Duration::from_secs(20);
    // Some of the 400 000 bytes may sit in the server's write buffer.
    while partial.metadata().map(|m| m.len()).unwrap_or(0) < 300_000 {
        assert!(
            Instant::now() < deadline,
            "the download never reached the stall"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Well inside the minute a blocked read would take to time out.
    let out = interrupt_and_wait(child, Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(130), "{}", describe(&out));
    assert!(stderr(&out).contains("interrupted"), "{}", describe(&out));
    assert_nothing_left(&env, "stuck");
    let kept = partial.metadata().unwrap().len();

    // The fault was for one request: the next install resumes after the bytes that arrived.
    let out = env.run(["install", &reference]);
    assert!(out.status.success(), "{}", describe(&out));
    let wanted = format!("bytes={kept}-");
    let resumed = fake
        .requests()
        .iter()
        .any(|r| r.url.contains(&digest) && r.range.as_deref() == Some(wanted.as_str()));
    assert!(resumed, "{:?}", fake.requests());
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
    let child = spawn_collecting(
        env.cmd(["install", &reference])
            .env("CD_DOWNLOAD_RATE_LIMIT", "1M"),
    );
    let partial = partial_blob(&env, &digest);
    let deadline = Instant::now() + Duration::from_secs(20);
    while partial.metadata().map(|m| m.len()).unwrap_or(0) < 500_000 {
        assert!(Instant::now() < deadline, "download never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = interrupt_and_wait(child, Duration::from_secs(15));
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

/// A layer whose PAX header claims 32 MiB of metadata (zeros, tiny once gzipped) is refused at
/// the header instead of being read into memory.
#[test]
fn a_metadata_bomb_layer_is_refused_in_one_line() {
    let env = test_env();
    let fake = FakeRegistry::open();
    let mut header = tar::Header::new_ustar();
    header.set_path("PaxHeaders/bomb").unwrap();
    header.set_size(32 << 20);
    header.set_entry_type(tar::EntryType::XHeader);
    header.set_mode(0o644);
    header.set_cksum();
    let mut layer = header.as_bytes().to_vec();
    layer.resize(layer.len() + (32 << 20), 0);
    fake_image(&fake, "bomb", &layer, None);
    let out = env.run(["install", &format!("{}/bomb:1", fake.host_port())]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let line = error_line(&out);
    assert!(line.contains("malformed or hostile"), "{line}");
    assert_nothing_left(&env, "bomb");
}
