//! The CLI surface and the store commands: help, usage errors, names, list, rename, remove,
//! clear-cache, completion and privilege elevation.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use cd_testkit::env::{describe, stderr, stdout, TestEnv};
use cd_testkit::{busybox, mntns};

fn env() -> TestEnv {
    TestEnv::new(env!("CARGO_BIN_EXE_chroot-distro"))
}

/// Every command and alias from the spec, with one positional that satisfies it.
const COMMANDS: &[&[&str]] = &[
    &["install", "add", "i", "in", "ins"],
    &["build"],
    &["push"],
    &["login", "sh"],
    &["run"],
    &["list", "li", "ls"],
    &["ps"],
    &["search", "find", "se"],
    &["diff"],
    &["remove", "rm"],
    &["unmount", "umount", "um"],
    &["kill", "k", "stop"],
    &["rename"],
    &["reset"],
    &["backup", "bak", "bkp"],
    &["restore"],
    &["copy", "cp"],
    &["sync"],
    &["clear-cache", "clear", "cl"],
    &["help", "h", "he", "hel"],
    &["completion"],
];

#[test]
fn every_command_and_alias_answers_help() {
    let env = env();
    for group in COMMANDS {
        for name in *group {
            for flag in ["--help", "-h"] {
                let out = env.run([name, flag]);
                assert_eq!(
                    out.status.code(),
                    Some(0),
                    "{name} {flag}\n{}",
                    describe(&out)
                );
                let text = stdout(&out);
                assert!(text.contains("Usage:"), "{name} {flag}: {text}");
                assert!(
                    text.contains(group[0]),
                    "{name} help names {}: {text}",
                    group[0]
                );
            }
            // `help NAME` prints the same text as `NAME --help`.
            let via_help = env.run(["help", name]);
            assert_eq!(
                via_help.status.code(),
                Some(0),
                "help {name}\n{}",
                describe(&via_help)
            );
            assert!(stdout(&via_help).contains("Usage:"));
        }
    }
}

/// `script` gives the tool a terminal, where clap colours its help; `CD_FORCE_NO_COLORS` (the
/// spec's switch) turns that off.
#[test]
fn help_on_a_terminal_has_colour_unless_cd_force_no_colors() {
    let bin = env!("CARGO_BIN_EXE_chroot-distro");
    let on_a_terminal = |force_plain: bool| {
        let mut cmd = std::process::Command::new("script");
        cmd.args(["-q", "-e", "-c", &format!("{bin} list --help"), "/dev/null"])
            .env_remove("NO_COLOR")
            .env_remove("CD_FORCE_NO_COLORS")
            .env("TERM", "xterm")
            .stdin(std::process::Stdio::null());
        if force_plain {
            cmd.env("CD_FORCE_NO_COLORS", "1");
        }
        let out = cmd.output().expect("script(1) from util-linux");
        assert!(out.status.success(), "{}", describe(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let coloured = on_a_terminal(false);
    assert!(coloured.contains("\x1b["), "{coloured:?}");
    let plain = on_a_terminal(true);
    assert!(plain.contains("Usage:"), "{plain:?}");
    assert!(!plain.contains('\x1b'), "{plain:?}");
}

#[test]
fn top_level_help_and_version() {
    let env = env();
    let out = env.run(["--help"]);
    assert_eq!(out.status.code(), Some(0));
    for group in COMMANDS {
        assert!(
            stdout(&out).contains(group[0]),
            "top-level help lists {}",
            group[0]
        );
    }
    assert!(stdout(&out).contains("--no-elevate"));
    let v = env.run(["-V"]);
    assert_eq!(v.status.code(), Some(0));
    assert!(stdout(&v).starts_with("chroot-distro "), "{}", describe(&v));
    assert_eq!(env.run(["help"]).status.code(), Some(0));
}

#[test]
fn usage_errors_exit_2_with_a_short_hint() {
    let env = env();
    for args in [
        &["frobnicate"][..],
        &["list", "--bogus"],
        &["rename", "only-one"],
        &["login"],
        &["backup", "c", "--compress", "lz4"],
        &["remove", "-v", "-q", "c"],
        &["login", "c", "--isolated", "--minimal"],
        &["install", "x", "-n", "a", "--override-alias", "b"],
        &["search", "x", "--limit", "0"],
        &["completion", "tcsh"],
    ] {
        let out = env.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}\n{}", describe(&out));
        let err = stderr(&out);
        assert!(err.starts_with("error:"), "{args:?}: {err}");
        assert!(err.lines().count() <= 3, "{args:?} is terse: {err}");
    }
    let out = env.run(["help", "frobnicate"]);
    assert_ne!(out.status.code(), Some(0));
}

#[test]
fn unfinished_commands_say_so() {
    let env = env();
    let out = env.run(["build", "."]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_eq!(stderr(&out).trim(), "error: 'build' is not available yet");
}

#[test]
fn invalid_names_are_refused_before_anything_is_written() {
    let env = env();
    for bad in ["-x", ".hidden", "a/b", "..", "a b", "x:y", "_a"] {
        for args in [
            vec!["remove", "--", bad],
            vec!["rename", "--", bad, "ok"],
            vec!["rename", "--", "ok", bad],
        ] {
            let out = env.run(&args);
            assert_eq!(out.status.code(), Some(1), "{args:?}\n{}", describe(&out));
            assert!(
                stderr(&out).contains("invalid container name"),
                "{args:?}: {}",
                stderr(&out)
            );
        }
    }
    assert!(
        !env.store_dir().exists(),
        "nothing was written for invalid names"
    );
}

#[test]
fn list_shows_nothing_then_containers() {
    let env = env();
    let out = env.run(["list"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("chroot-distro install"),
        "{}",
        describe(&out)
    );
    assert_eq!(stdout(&env.run(["list", "-q"])), "");

    env.make_container("beta", busybox::populate);
    env.make_container("alpha", |r| {
        fs::write(r.join("f"), vec![0u8; 100_000]).unwrap()
    });
    fs::write(
        env.container_dir("beta").join("manifest.json"),
        r#"{"image_ref": "busybox:latest", "arch": "x86_64", "manifest": {}, "image_config": {}}"#,
    )
    .unwrap();
    // Not containers: a staging dir and a directory without rootfs.
    fs::create_dir_all(env.store_dir().join("containers/.staging-x/rootfs")).unwrap();
    fs::create_dir_all(env.store_dir().join("containers/norootfs")).unwrap();

    assert_eq!(stdout(&env.run(["ls", "-q"])), "alpha\nbeta\n");
    let table = stdout(&env.run(["list"]));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].starts_with("NAME"), "{table}");
    assert!(
        lines[1].starts_with("alpha")
            && lines[1].contains("local archive")
            && lines[1].contains("idle")
    );
    assert!(lines[2].contains("busybox:latest (x86_64)"), "{table}");

    let json: serde_json::Value =
        serde_json::from_slice(&env.run(["list", "--format", "json"]).stdout).unwrap();
    assert_eq!(json[0]["name"], "alpha");
    assert!(json[0]["size_bytes"].as_u64().unwrap() >= 100_000);
    assert_eq!(json[1]["image_ref"], "busybox:latest");
    assert_eq!(json[1]["status"]["state"], "idle");
}

#[test]
fn list_marks_a_locked_container_in_use() {
    let env = env();
    env.make_container("c", |_| {});
    let lock_path = env.store_dir().join("locks/c.lock");
    fs::create_dir_all(lock_path.parent().unwrap()).unwrap();
    // Hold the lock from another process, as a running command would.
    let mut holder = std::process::Command::new("sh")
        .args(["-c", "exec 9<>\"$1\" && flock -x 9 && exec sleep 30", "sh"])
        .arg(&lock_path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut seen = String::new();
    while std::time::Instant::now() < deadline {
        seen = stdout(&env.run(["list"]));
        if seen.contains("in use") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let rm = env.run(["remove", "c"]);
    let rn = env.run(["rename", "c", "d"]);
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert!(seen.contains("in use"), "{seen}");
    assert_eq!(rm.status.code(), Some(1));
    assert!(stderr(&rm).contains("busy"), "{}", describe(&rm));
    assert_eq!(rn.status.code(), Some(1));
    assert!(env.rootfs("c").exists());
}

#[test]
fn rename_moves_and_refuses_conflicts() {
    let env = env();
    env.make_container("one", |r| fs::write(r.join("marker"), "1").unwrap());
    env.make_container("two", |_| {});
    let out = env.run(["rename", "one", "uno"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(
        fs::read_to_string(env.rootfs("uno").join("marker")).unwrap(),
        "1"
    );
    assert!(!env.container_dir("one").exists());

    let clash = env.run(["rename", "uno", "two"]);
    assert_eq!(clash.status.code(), Some(1));
    assert!(
        stderr(&clash).contains("already exists"),
        "{}",
        describe(&clash)
    );
    assert!(env.rootfs("uno").join("marker").exists());

    let missing = env.run(["rename", "ghost", "x"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("not installed"));
}

#[test]
fn remove_deletes_chmod_000_trees_and_reports() {
    let env = env();
    let rootfs = env.make_container("c", busybox::populate);
    let locked = rootfs.join("secret/deeper");
    fs::create_dir_all(&locked).unwrap();
    fs::write(locked.join("f"), "x").unwrap();
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
    fs::set_permissions(rootfs.join("secret"), fs::Permissions::from_mode(0o000)).unwrap();
    let out = env.run(["remove", "-v", "c"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(!env.container_dir("c").exists());
    assert!(stderr(&out).contains("removed"), "{}", describe(&out));
    let again = env.run(["rm", "c"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("not installed"));
}

#[test]
fn remove_never_deletes_host_files_behind_a_bind_mount() {
    let env = env();
    let rootfs = env.make_container("c", busybox::populate);
    let host = env.root().join("host-data");
    fs::create_dir_all(&host).unwrap();
    fs::write(host.join("precious"), "keep me").unwrap();
    let target = rootfs.join("mnt/host");
    fs::create_dir_all(&target).unwrap();

    let out = mntns::in_private_mount_ns(|| {
        mntns::bind_mount(&host, &target).unwrap();
        let out = env.run(["remove", "c"]);
        let still_mounted = fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .contains(&*target.to_string_lossy());
        (out, still_mounted)
    });
    assert_eq!(out.0.status.code(), Some(0), "{}", describe(&out.0));
    assert!(!out.1, "the bind mount was released before deletion");
    assert_eq!(
        fs::read_to_string(host.join("precious")).unwrap(),
        "keep me"
    );
    assert!(!env.container_dir("c").exists());
}

#[test]
fn clear_cache_reports_freed_space() {
    let env = env();
    let layers = env.cache_dir().join("oci_layers");
    fs::create_dir_all(&layers).unwrap();
    fs::write(layers.join("sha256_aa"), vec![1u8; 4096]).unwrap();
    fs::create_dir_all(env.cache_dir().join("oci_manifests")).unwrap();
    fs::write(env.cache_dir().join("oci_manifests/x.json"), "{}").unwrap();
    fs::write(env.cache_dir().join("build_cache_index.json"), "{}").unwrap();
    let out = env.run(["clear-cache"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(stderr(&out).contains("3 file(s)"), "{}", describe(&out));
    assert!(stderr(&out).contains("KiB freed"), "{}", describe(&out));
    assert_eq!(fs::read_dir(env.cache_dir()).unwrap().count(), 0);
    let quiet = env.run(["cl", "-q"]);
    assert_eq!(quiet.status.code(), Some(0));
    assert_eq!(stderr(&quiet), "");
}

#[test]
fn completion_scripts_name_commands_and_complete_containers() {
    let env = env();
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef"),
        ("fish", "complete -c"),
    ] {
        let out = env.run(["completion", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let text = stdout(&out);
        assert!(text.contains(marker), "{shell}");
        assert!(
            text.contains("clear-cache") && text.contains("get-chroot-cmd"),
            "{shell}"
        );
        assert!(
            text.contains("list -q"),
            "{shell} completes container names"
        );
    }
    // The bash script parses.
    let script = env.root().join("c.bash");
    fs::write(&script, env.run(["completion", "bash"]).stdout).unwrap();
    let st = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .status()
        .unwrap();
    assert!(st.success());
}

/// A real unprivileged user runs a mutating command; a fake `sudo` records what it was asked.
mod elevation {
    use super::*;
    use std::process::Command;

    const USER: &str = "cdtestuser";

    fn ensure_user() -> (u32, u32) {
        let exists = Command::new("id")
            .arg(USER)
            .output()
            .unwrap()
            .status
            .success();
        if !exists {
            let st = Command::new("useradd")
                .args(["-M", "-s", "/bin/sh", USER])
                .status()
                .unwrap();
            assert!(st.success(), "useradd {USER}");
        }
        let uid = String::from_utf8(
            Command::new("id")
                .args(["-u", USER])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        let gid = String::from_utf8(
            Command::new("id")
                .args(["-g", USER])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        (uid.trim().parse().unwrap(), gid.trim().parse().unwrap())
    }

    fn fake_helper(dir: &Path, name: &str) {
        let script = format!(
            "#!/bin/sh\nlog=\"$(dirname \"$0\")/log\"\necho \"helper={name}\" >> \"$log\"\nfor a in \"$@\"; do echo \"arg=$a\" >> \"$log\"; done\nexit 0\n"
        );
        let p = dir.join(name);
        fs::write(&p, script).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn run_as_user(
        env: &TestEnv,
        bin_dir: &Path,
        args: &[&str],
        extra_env: &[(&str, &str)],
    ) -> std::process::Output {
        let (uid, gid) = ensure_user();
        let mut cmd = env.cmd(args);
        cmd.env("PATH", format!("{}:/usr/bin:/bin", bin_dir.display()));
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        use std::os::unix::process::CommandExt;
        cmd.uid(uid).gid(gid);
        cmd.output().unwrap()
    }

    fn setup(env: &TestEnv, helpers: &[&str]) -> std::path::PathBuf {
        fs::set_permissions(env.root(), fs::Permissions::from_mode(0o755)).unwrap();
        let bin_dir = env.root().join("fakebin");
        fs::create_dir_all(&bin_dir).unwrap();
        fs::set_permissions(&bin_dir, fs::Permissions::from_mode(0o777)).unwrap();
        for h in helpers {
            fake_helper(&bin_dir, h);
        }
        bin_dir
    }

    fn log(bin_dir: &Path) -> Vec<String> {
        fs::read_to_string(bin_dir.join("log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn picks_sudo_first_and_passes_arguments_and_environment() {
        let env = env();
        let bin_dir = setup(&env, &["sudo", "doas", "su"]);
        let out = run_as_user(
            &env,
            &bin_dir,
            &["remove", "some-box"],
            &[("CD_DOCKER_AUTH", "u:p")],
        );
        assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
        let log = log(&bin_dir);
        assert_eq!(log[0], "helper=sudo", "{log:?}");
        assert_eq!(log[1], "arg=env");
        let args: Vec<&str> = log.iter().filter_map(|l| l.strip_prefix("arg=")).collect();
        assert!(
            args.contains(&format!("XDG_DATA_HOME={}", env.data_home().display()).as_str()),
            "{args:?}"
        );
        assert!(args.contains(&"CD_DOCKER_AUTH=u:p"), "{args:?}");
        assert!(args.contains(&"CHROOT_DISTRO_NO_ELEVATE=1"), "{args:?}");
        assert_eq!(&args[args.len() - 2..], ["remove", "some-box"]);
        assert!(args[args.len() - 3].ends_with("chroot-distro"), "{args:?}");
    }

    #[test]
    fn falls_back_to_the_next_helper() {
        let env = env();
        let bin_dir = setup(&env, &["doas"]);
        let out = run_as_user(&env, &bin_dir, &["rename", "a", "b"], &[]);
        assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
        assert_eq!(log(&bin_dir)[0], "helper=doas");

        let su_only = env.root().join("su-only");
        fs::create_dir_all(&su_only).unwrap();
        fs::set_permissions(&su_only, fs::Permissions::from_mode(0o777)).unwrap();
        fake_helper(&su_only, "su");
        let out = run_as_user(&env, &su_only, &["remove", "x y"], &[]);
        assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
        let log = log(&su_only);
        assert_eq!(log[0], "helper=su");
        assert_eq!(log[1..3], ["arg=root".to_string(), "arg=-c".to_string()]);
        assert!(log[3].ends_with("remove 'x y'"), "{log:?}");
    }

    #[test]
    fn no_elevate_is_a_clear_error_and_readers_never_elevate() {
        let env = env();
        let bin_dir = setup(&env, &["sudo"]);
        let out = run_as_user(&env, &bin_dir, &["--no-elevate", "remove", "c"], &[]);
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains("needs root"), "{}", describe(&out));
        // Entering commands report their own failure as 125, never as the command's 1.
        let out = run_as_user(&env, &bin_dir, &["--no-elevate", "login", "c"], &[]);
        assert_eq!(out.status.code(), Some(125), "{}", describe(&out));
        assert!(stderr(&out).contains("needs root"), "{}", describe(&out));
        let out = run_as_user(
            &env,
            &bin_dir,
            &["remove", "c"],
            &[("CHROOT_DISTRO_NO_ELEVATE", "1")],
        );
        assert_eq!(out.status.code(), Some(1));
        let out = run_as_user(&env, &bin_dir, &["list"], &[]);
        assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
        assert!(log(&bin_dir).is_empty(), "list never elevates");
    }
}

/// `remove` first moves the container aside in one rename: killed while deleting, it leaves no
/// half container that still lists or logs in, and the next install sweeps the remains.
#[test]
fn a_remove_killed_midway_leaves_no_half_container() {
    let env = env();
    let rootfs = env.make_container("c", busybox::populate);
    for d in 0..20 {
        let dir = rootfs.join(format!("data/{d}"));
        fs::create_dir_all(&dir).unwrap();
        for f in 0..200 {
            fs::write(dir.join(f.to_string()), b"x").unwrap();
        }
    }
    let aside = env.store_dir().join("containers/.removing-c");
    let mut child = env
        .cmd(["remove", "-v", "c"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !aside.exists() && child.try_wait().unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "remove never started");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let _ = child.kill();
    child.wait().unwrap();
    assert!(
        aside.exists(),
        "the removal finished before it could be killed"
    );
    assert!(!env.container_dir("c").exists(), "a half container is left");
    assert_eq!(stdout(&env.run(["list", "-q"])), "");

    // The next install takes the remains away.
    let tree = env.root().join("tree");
    busybox::populate(&tree);
    let tarball = env.root().join("r.tar");
    let status = std::process::Command::new("tar")
        .arg("-C")
        .arg(&tree)
        .args(["-cf"])
        .arg(&tarball)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    let out = env.run(["install", tarball.to_str().unwrap(), "-n", "d"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(!aside.exists(), "the remains of the removal were not swept");
}
