//! Entering real busybox containers as root: exit statuses, users, environment, mounts,
//! namespace lifetime, isolation, terminals.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod harness;

use std::time::Duration;

use harness::Container;
use serde_json::json;

/// Re-executed by the harness to run one session; a no-op when run as a test.
#[test]
fn driver() {
    harness::driver_main();
}

fn sh(script: &str) -> Vec<&str> {
    vec!["/bin/sh", "-c", script]
}

#[test]
fn exit_statuses_pass_through() {
    let c = Container::new();
    for code in [0, 1, 42] {
        let script = format!("exit {code}");
        let out = c.run(json!({}), &sh(&script));
        assert_eq!(out.code, code, "{out:?}");
    }
    let out = c.run(json!({}), &["no-such-command"]);
    assert_eq!(out.code, 127, "{out:?}");
    assert!(
        out.stderr.contains("no-such-command: command not found"),
        "{out:?}"
    );
    let out = c.run(json!({}), &["/etc/passwd"]);
    assert_eq!(out.code, 126, "{out:?}");
    let out = c.run(json!({}), &sh("kill -9 $$"));
    assert_eq!(out.code, 137, "{out:?}");
}

#[test]
fn commands_are_found_on_the_guest_path() {
    let c = Container::new();
    let out = c.run(json!({}), &["echo", "hello"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, "hello\n"), "{out:?}");
}

#[test]
fn users_by_name_uid_and_group() {
    let c = Container::new();
    let id = |user: Option<&str>| {
        let extra = match user {
            Some(u) => json!({ "user": u }),
            None => json!({}),
        };
        let out = c.run(extra, &sh("echo $(id -u):$(id -g):$(id -un):$USER:$HOME"));
        assert_eq!(out.code, 0, "{out:?}");
        out.stdout.trim().to_string()
    };
    assert_eq!(id(None), "0:0:root:root:/root");
    assert_eq!(id(Some("alice")), "1000:1000:alice:alice:/home/alice");
    assert_eq!(id(Some("1000")), "1000:1000:alice:alice:/home/alice");
    assert_eq!(id(Some("alice:staff")), "1000:50:alice:alice:/home/alice");
    assert_eq!(id(Some("1000:1")), "1000:1:alice:alice:/home/alice");
    let out = c.run(json!({ "user": "alice" }), &["id", "-G"]);
    assert_eq!(out.stdout.trim(), "1000 50", "{out:?}");
    let out = c.run(json!({ "user": "mallory" }), &["id"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(
        out.stderr.contains("user 'mallory' does not exist"),
        "{out:?}"
    );
}

#[test]
fn environment_follows_precedence_and_nothing_leaks_from_the_host() {
    let c = Container::new();
    let out = c
        .driver(
            json!({
                "image_env": ["FOO=image", "BAR=image", "PATH=/bin:/usr/bin", "DISPLAY=:7"],
                "env": ["FOO=cli"],
                "user": "alice",
            }),
            &["env"],
        )
        .env("CD_WEIRD_HOST_VAR", "leak")
        .env("TERM", "vt220")
        .env("COLORTERM", "truecolor")
        .output()
        .unwrap();
    let out = harness::outcome(out);
    assert_eq!(out.code, 0, "{out:?}");
    let mut lines: Vec<&str> = out.stdout.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        vec![
            "BAR=image",
            "COLORTERM=truecolor",
            "FOO=cli",
            "HOME=/home/alice",
            "HOSTNAME=box",
            "LOGNAME=alice",
            "MOZ_FAKE_NO_SANDBOX=1",
            "PATH=/bin:/usr/bin",
            "TERM=vt220",
            "USER=alice",
        ],
        "{out:?}"
    );
}

#[test]
fn minimal_environment_is_stripped() {
    let c = Container::new();
    let out = c
        .driver(json!({ "minimal": true, "env": ["A=1"] }), &["env"])
        .env("TERM", "vt220")
        .env_remove("COLORTERM")
        .output()
        .unwrap();
    let out = harness::outcome(out);
    let mut lines: Vec<&str> = out.stdout.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        vec![
            "A=1",
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "TERM=vt220"
        ],
        "{out:?}"
    );
}

#[test]
fn work_dir_defaults_to_home_and_must_exist_when_given() {
    let c = Container::new();
    let out = c.run(json!({}), &["pwd"]);
    assert_eq!(out.stdout, "/root\n", "{out:?}");
    let out = c.run(json!({ "user": "alice" }), &["pwd"]);
    assert_eq!(out.stdout, "/home/alice\n", "{out:?}");
    let out = c.run(json!({ "work_dir": "/etc" }), &["pwd"]);
    assert_eq!(out.stdout, "/etc\n", "{out:?}");
    let out = c.run(json!({ "work_dir": "/nope" }), &["pwd"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(
        out.stderr
            .contains("working directory '/nope' does not exist"),
        "{out:?}"
    );
}

#[test]
fn run_mode_uses_image_workdir_and_user() {
    let c = Container::new();
    let out = c.run(
        json!({ "mode": "run", "image_work_dir": "/etc", "image_user": "alice" }),
        &sh("echo $(pwd) $(id -un)"),
    );
    assert_eq!(out.stdout, "/etc alice\n", "{out:?}");
    let out = c.run(json!({ "mode": "run", "user": "root" }), &["pwd"]);
    assert_eq!(out.stdout, "/\n", "{out:?}");
}

#[test]
fn login_shell_starts_without_a_command() {
    let c = Container::new();
    // stdin is /dev/null: the login shell reads EOF and exits 0.
    let out = c.run(json!({}), &[]);
    assert_eq!(out.code, 0, "{out:?}");
}

#[test]
fn user_bind_mounts_a_host_directory() {
    let c = Container::new();
    let host = c.dir.path().join("share");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("file"), "from host\n").unwrap();
    let spec = format!("{}:/mnt/data", host.display());
    let out = c.run(json!({ "binds": [spec] }), &["cat", "/mnt/data/file"]);
    assert_eq!(out.stdout, "from host\n", "{out:?}");
    // DST defaults to SRC.
    let spec = host.display().to_string();
    let inside = format!("{}/file", host.display());
    let out = c.run(json!({ "binds": [spec] }), &["cat", &inside]);
    assert_eq!(out.stdout, "from host\n", "{out:?}");
    assert!(c.host_mounts().is_empty());
}

#[test]
fn tmp_is_fresh_unless_shared() {
    let c = Container::new();
    let marker = format!("cd-runtime-marker-{}", std::process::id());
    let host_file = std::path::Path::new("/tmp").join(&marker);
    std::fs::write(&host_file, "host tmp\n").unwrap();
    let inside = format!("/tmp/{marker}");
    let out = c.run(json!({}), &["cat", &inside]);
    assert_ne!(out.code, 0, "host /tmp leaked into the fresh /tmp: {out:?}");
    let out = c.run(json!({ "shared_tmp": true }), &["cat", &inside]);
    assert_eq!(out.stdout, "host tmp\n", "{out:?}");
    std::fs::remove_file(host_file).unwrap();
}

#[test]
fn mounts_have_the_planned_options() {
    let c = Container::new();
    let out = c.run(json!({}), &["cat", "/proc/self/mountinfo"]);
    assert_eq!(out.code, 0, "{out:?}");
    let line = |mp: &str| {
        out.stdout
            .lines()
            .rfind(|l| l.split(' ').nth(4) == Some(mp))
            .unwrap_or_else(|| panic!("no mount at {mp}: {}", out.stdout))
            .to_string()
    };
    let opts = |mp: &str| line(mp).split(' ').nth(5).unwrap().to_string();
    let proc = opts("/proc");
    assert!(
        proc.contains("nosuid") && proc.contains("nodev") && proc.contains("noexec"),
        "{proc}"
    );
    assert!(opts("/sys").starts_with("ro"), "{}", line("/sys"));
    assert!(opts("/proc/sys").starts_with("ro"), "{}", line("/proc/sys"));
    assert!(line("/dev/pts").contains(" - devpts "));
    assert!(line("/dev/shm").contains(" - tmpfs "));
    assert!(line("/tmp").contains(" - tmpfs "));
    assert!(line("/run").contains(" - tmpfs "));
    // /proc/kcore, sched_debug ... exist only with some kernel configs; keys and timer_list are
    // always there.
    for masked in ["/proc/keys", "/proc/timer_list"] {
        assert!(line(masked).contains("/null"), "{}", line(masked));
    }
    assert!(line("/proc/acpi").contains(" - tmpfs "));
    assert!(opts("/proc/acpi").starts_with("ro"));

    let script = "wc -c < /proc/keys; stat -c %t:%T /proc/keys; \
                  echo x > /dev/null && head -c 4 /dev/urandom | wc -c; \
                  head -c 3 /dev/zero | wc -c; test -c /dev/full && test -c /dev/random && \
                  test -c /dev/tty && test -e /dev/ptmx && test -d /dev/pts && echo devices-ok; \
                  echo 1 > /proc/sys/kernel/hostname 2>/dev/null || echo proc-sys-ro";
    let out = c.run(json!({}), &sh(script));
    assert_eq!(
        out.stdout, "0\n1:3\n4\n3\ndevices-ok\nproc-sys-ro\n",
        "{out:?}"
    );
}

#[test]
fn host_mount_table_stays_clean_while_a_session_runs() {
    let c = Container::new();
    let child = c.spawn(json!({}), &["sleep", "2"]);
    c.wait_running();
    assert!(c.host_mounts().is_empty(), "{:?}", c.host_mounts());
    let state = c.running();
    assert_eq!(state.session_count, 1, "{state:?}");
    let out = harness::outcome(child.wait_with_output().unwrap());
    assert_eq!(out.code, 0, "{out:?}");
    c.wait_released();
    assert!(c.host_mounts().is_empty());
}

#[test]
fn sessions_share_one_namespace() {
    let c = Container::new();
    let first = c.spawn(
        json!({}),
        &sh("while [ ! -e /tmp/flag ]; do sleep 0.1; done; cat /tmp/flag"),
    );
    c.wait_running();
    let holder = c.running().holder;
    let out = c.run(json!({}), &sh("echo shared > /tmp/flag"));
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(c.running().holder, holder);
    let out = harness::outcome(first.wait_with_output().unwrap());
    assert_eq!(out.stdout, "shared\n", "{out:?}");
    c.wait_released();
}

#[test]
fn killing_the_tool_process_releases_the_namespace() {
    let c = Container::new();
    let mut child = c.spawn(json!({}), &["sleep", "60"]);
    c.wait_running();
    child.kill().unwrap();
    child.wait().unwrap();
    c.wait_released();
    assert!(c.host_mounts().is_empty());
}

#[test]
fn only_stdio_descriptors_reach_the_command() {
    let c = Container::new();
    // `; :` keeps the shell from exec'ing ls, so $$ is the shell the runtime started.
    let out = c.run(json!({}), &sh("ls /proc/$$/fd; :"));
    assert_eq!(
        out.stdout.split_whitespace().collect::<Vec<_>>(),
        ["0", "1", "2"],
        "{out:?}"
    );
}

#[test]
fn isolated_sessions_get_their_own_pid_and_uts_namespaces() {
    let c = Container::new();
    let script = "hostname; echo $$; ls /proc | grep -c '^[0-9]'; echo $HOSTNAME";
    let out = c.run(json!({ "isolated": true }), &sh(script));
    assert_eq!(out.code, 0, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "box", "{out:?}");
    let pid: u32 = lines[1].parse().unwrap();
    assert!(pid < 10, "shell pid {pid} is not from a new PID namespace");
    let count: u32 = lines[2].parse().unwrap();
    assert!(count < 10, "{count} processes visible: {out:?}");
    assert_eq!(lines[3], "box");
    c.wait_released();
    let out = c.run(
        json!({ "isolated": true, "hostname": "other" }),
        &["hostname"],
    );
    // The namespace (and its hostname) of the first session is gone: a fresh one is made.
    assert_eq!(out.stdout, "other\n", "{out:?}");
}

#[test]
fn mixing_isolated_and_shared_sessions_is_refused() {
    let c = Container::new();
    let child = c.spawn(json!({}), &["sleep", "2"]);
    c.wait_running();
    let out = c.run(json!({ "isolated": true }), &["true"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(
        out.stderr.contains("already running without --isolated"),
        "{out:?}"
    );
    harness::outcome(child.wait_with_output().unwrap());
}

#[test]
fn symlinked_mount_points_stay_inside_the_root() {
    let c = Container::new();
    std::fs::remove_dir_all(c.rootfs.join("tmp")).unwrap();
    std::os::unix::fs::symlink("/", c.rootfs.join("tmp")).unwrap();
    let out = c.run(json!({}), &["true"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(out.stderr.contains("/tmp"), "{out:?}");
    assert!(c.host_mounts().is_empty());

    // A relative climb out of the root lands inside it.
    let outside =
        std::path::PathBuf::from(format!("/etc/cd-runtime-escape-{}", std::process::id()));
    std::fs::remove_file(c.rootfs.join("tmp")).unwrap();
    let climb = format!("../../../../../../../..{}", outside.display());
    std::os::unix::fs::symlink(&climb, c.rootfs.join("tmp")).unwrap();
    let inside_root = c.rootfs.join(outside.strip_prefix("/").unwrap());
    // pathrs does not create directories through a dangling symlink: a clean refusal.
    let out = c.run(json!({}), &["true"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(out.stderr.contains("cannot mount /tmp"), "{out:?}");
    assert!(!outside.exists());
    std::fs::create_dir_all(&inside_root).unwrap();
    let out = c.run(json!({}), &sh("touch /tmp/inside && stat -f -c %T /tmp/"));
    assert_eq!((out.code, out.stdout.as_str()), (0, "tmpfs\n"), "{out:?}");
    assert!(!outside.exists(), "a mount escaped to the host path");
    assert!(inside_root.is_dir());
    assert!(c.host_mounts().is_empty());
}

#[test]
fn kill_stops_sessions_and_releases_everything() {
    let c = Container::new();
    let child = c.spawn(json!({}), &["sleep", "60"]);
    c.wait_running();
    let report = cd_runtime::kill(&c.state_dir, &c.rootfs, Duration::from_secs(1)).unwrap();
    assert!(!report.signalled.is_empty(), "{report:?}");
    let out = harness::outcome(child.wait_with_output().unwrap());
    assert_eq!(out.code, 143, "sleep should die of SIGTERM: {out:?}");
    c.wait_released();
    assert!(c.host_mounts().is_empty());
}

#[test]
fn unmount_ends_a_session_that_ignores_sigterm() {
    let c = Container::new();
    let child = c.spawn(json!({}), &sh("trap '' TERM; sleep 60 & wait; sleep 60"));
    c.wait_running();
    let report = cd_runtime::unmount(&c.state_dir, &c.rootfs).unwrap();
    assert!(!report.killed.is_empty(), "{report:?}");
    let out = harness::outcome(child.wait_with_output().unwrap());
    assert_eq!(out.code, 137, "{out:?}");
    c.wait_released();
}

fn interactive_shell(isolated: bool) {
    let c = Container::new();
    let request = c.request(json!({ "isolated": isolated }), &[]).to_string();
    let exe = std::env::current_exe().unwrap();
    let mut python = std::process::Command::new("python3");
    python.env("CD_RUNTIME_DRIVER", &request);
    let argv = ["driver", "--exact", "--nocapture", "--test-threads=1"];
    let mut args = vec![exe.as_os_str()];
    args.extend(argv.iter().map(std::ffi::OsStr::new));
    let s = cd_testkit::pty::shell_session(python, &args, "@@cd-runtime-driver@@");
    let transcript = &s.transcript;
    assert_eq!(s.code, "3", "{transcript}");
    assert!(transcript.contains("\nhi\r\n"), "{transcript}");
    assert!(transcript.contains("/dev/pts/0"), "{transcript}");
}

#[test]
fn interactive_shell_through_a_pty() {
    interactive_shell(false);
}

#[test]
fn interactive_shell_through_a_pty_isolated() {
    interactive_shell(true);
}

#[test]
fn signals_to_the_tool_reach_the_command() {
    let c = Container::new();
    let child = c.spawn(
        json!({}),
        &sh("trap 'exit 5' TERM; while :; do sleep 0.1; done"),
    );
    // The shell and its first sleep: the trap is installed by then.
    c.wait_processes(2);
    let tid = harness::driver_thread(child.id());
    cd_sys::process::send_thread_signal(child.id() as i32, tid, cd_sys::signal::SIGTERM).unwrap();
    let out = harness::outcome(child.wait_with_output().unwrap());
    assert_eq!(out.code, 5, "{out:?}");
    c.wait_released();
}

#[test]
fn a_later_session_adds_its_binds_to_the_shared_namespace() {
    let c = Container::new();
    let host = c.dir.path().join("extra");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("file"), "extra\n").unwrap();
    let first = c.spawn(
        json!({}),
        &sh("while [ ! -e /tmp/flag ]; do sleep 0.1; done; cat /mnt/extra/file"),
    );
    c.wait_running();
    let spec = format!("{}:/mnt/extra", host.display());
    let out = c.run(
        json!({ "binds": [spec] }),
        &sh("cat /mnt/extra/file && touch /tmp/flag"),
    );
    assert_eq!(out.stdout, "extra\n", "{out:?}");
    let out = harness::outcome(first.wait_with_output().unwrap());
    assert_eq!(out.stdout, "extra\n", "{out:?}");
    c.wait_released();
    assert!(c.host_mounts().is_empty());
}

#[test]
fn two_sessions_are_counted() {
    let c = Container::new();
    let a = c.spawn(json!({}), &["sleep", "2"]);
    let b = c.spawn(json!({}), &["sleep", "2"]);
    c.wait_processes(2);
    let state = c.running();
    assert_eq!(state.session_count, 2, "{state:?}");
    assert!(state.holder.is_some());
    harness::outcome(a.wait_with_output().unwrap());
    harness::outcome(b.wait_with_output().unwrap());
    c.wait_released();
}

#[test]
fn shared_home_binds_the_invoking_users_home() {
    let c = Container::new();
    let home = c.dir.path().join("host-home");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join("notes"), "mine\n").unwrap();
    let out = c
        .driver(
            json!({ "shared_home": true, "user": "alice" }),
            &["cat", "/home/alice/notes"],
        )
        .env("HOME", &home)
        .env_remove("SUDO_USER")
        .output()
        .unwrap();
    let out = harness::outcome(out);
    assert_eq!(out.stdout, "mine\n", "{out:?}");
}

#[test]
fn minimal_mounts_only_core_filesystems() {
    let c = Container::new();
    // --minimal mounts /run only "when present".
    std::fs::create_dir_all(c.rootfs.join("run")).unwrap();
    let host = c.dir.path().join("share");
    std::fs::create_dir_all(&host).unwrap();
    let spec = format!("{}:/mnt/share", host.display());
    let out = c.run(
        json!({ "minimal": true, "binds": [spec] }),
        &["cat", "/proc/self/mountinfo"],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let points: Vec<&str> = out
        .stdout
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .collect();
    for p in ["/proc", "/sys", "/dev", "/dev/pts", "/dev/shm", "/run"] {
        assert!(points.contains(&p), "{p} missing: {points:?}");
    }
    assert!(!points.contains(&"/tmp"), "{points:?}");
    assert!(!points.contains(&"/mnt/share"), "{points:?}");
}

#[test]
fn isolated_dev_is_minimal_and_works() {
    let c = Container::new();
    let script = "ls /dev; echo x > /dev/null && head -c 2 /dev/urandom | wc -c";
    let out = c.run(json!({ "isolated": true }), &sh(script));
    assert_eq!(out.code, 0, "{out:?}");
    let words: Vec<&str> = out.stdout.split_whitespace().collect();
    assert_eq!(
        words,
        [
            "fd", "full", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout",
            "tty", "urandom", "zero", "2"
        ],
        "{out:?}"
    );
}

#[test]
fn rendered_chroot_command_runs_the_same_program_and_changes_nothing() {
    let c = Container::new();
    let req = cd_runtime::EnterRequest {
        name: "box".into(),
        rootfs: c.rootfs.clone(),
        state_dir: c.state_dir.clone(),
        user: Some("alice".into()),
        command: vec!["echo".into(), "a b".into()],
        ..Default::default()
    };
    let line = cd_runtime::render_command(&req).unwrap();
    assert!(line.starts_with("env -i "), "{line}");
    let tail = format!(
        "chroot --userspec=1000:1000 --groups=1000,50 {} /bin/sh -c 'cd /home/alice \
         2>/dev/null || cd /; exec echo '\\''a b'\\'''",
        c.rootfs.display()
    );
    assert!(line.ends_with(&tail), "{line}");
    assert!(!c.state_dir.exists());
    assert!(!c.rootfs.join("proc/self").exists());
    let out = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(&line)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "a b\n", "{out:?}");
}

#[test]
fn arm64_guest_runs_under_qemu_user() {
    let busybox = harness::arm64_busybox();
    let c = Container::empty();
    for d in ["bin", "etc", "root"] {
        std::fs::create_dir_all(c.rootfs.join(d)).unwrap();
    }
    std::fs::copy(&busybox, c.rootfs.join("bin/busybox")).unwrap();
    for applet in ["sh", "uname", "echo"] {
        std::os::unix::fs::symlink("busybox", c.rootfs.join("bin").join(applet)).unwrap();
    }
    std::fs::write(
        c.rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\n",
    )
    .unwrap();
    assert_eq!(
        cd_runtime::detect_guest_arch_of(&c.rootfs),
        Some(cd_runtime::Arch::Aarch64)
    );
    let out = c.run(json!({}), &sh("uname -m; exit 7"));
    assert_eq!((out.code, out.stdout.as_str()), (7, "aarch64\n"), "{out:?}");
}
