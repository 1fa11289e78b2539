//! `login`: exit statuses, stdio, users, environment, work dir, binds, /tmp, --get-chroot-cmd,
//! --isolated, --minimal and the hardened view from inside.

use super::*;

#[test]
fn login_exit_statuses_pass_through() {
    let b = Box::new();
    for code in [0, 1, 42] {
        let out = b.login(&[], &sh(&format!("exit {code}")));
        assert_eq!(out.status.code(), Some(code), "{}", describe(&out));
    }
    let out = b.login(&[], &["no-such-command"]);
    assert_eq!(out.status.code(), Some(127), "{}", describe(&out));
    assert!(stderr(&out).contains("no-such-command: command not found"));
    let out = b.login(&[], &["/etc/passwd"]);
    assert_eq!(out.status.code(), Some(126), "{}", describe(&out));
    let out = b.login(&[], &sh("kill -9 $$"));
    assert_eq!(out.status.code(), Some(137), "{}", describe(&out));
    let out = b.run(&["login", "ghost", "--", "true"]);
    assert_tool_error(&out, "not installed");
    assert_eq!(b.host_mounts(), Vec::<String>::new());
}

/// A distroless-style tree with no shell: a plain `login` says so (127) instead of
/// "/bin/sh: command not found", and a named command still runs.
#[test]
fn login_without_a_shell_says_so() {
    let b = Box::new();
    let root = b.rootfs();
    std::fs::remove_file(root.join("bin/sh")).unwrap();
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/bash\n").unwrap();
    let out = b.run(&["login", "c"]);
    assert_eq!(out.status.code(), Some(127), "{}", describe(&out));
    let line = stderr(&out);
    assert!(
        line.contains("has no shell") && line.contains("/bin/bash") && line.contains("--"),
        "{line}"
    );
    let out = b.login(&[], &["/bin/busybox", "true"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
}

#[test]
fn login_output_and_pipes_pass_through() {
    let b = Box::new();
    let out = b.login(&[], &["echo", "hello"]);
    assert_eq!(stdout(&out), "hello\n", "{}", describe(&out));
    let mut child = b
        .cmd(&["login", "c", "--", "wc", "-l"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"a\nb\nc\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(stdout(&out).trim(), "3", "{}", describe(&out));
    let out = b.login(
        &[],
        &sh("echo to-stderr >&2; [ -p /proc/self/fd/1 ] && echo pipe"),
    );
    assert_eq!(
        stdout(&out),
        "pipe\n",
        "stdout stays a pipe: {}",
        describe(&out)
    );
    assert_eq!(stderr(&out), "to-stderr\n", "{}", describe(&out));
}

#[test]
fn login_users_by_name_uid_and_uid_gid() {
    let b = Box::new();
    let id = |flags: &[&str]| {
        let out = b.login(flags, &sh("echo $(id -u):$(id -g):$USER:$HOME:$(pwd)"));
        assert_eq!(out.status.code(), Some(0), "{flags:?}: {}", describe(&out));
        stdout(&out).trim().to_string()
    };
    assert_eq!(id(&[]), "0:0:root:/root:/root");
    assert_eq!(
        id(&["--user", "alice"]),
        "1000:1000:alice:/home/alice:/home/alice"
    );
    assert_eq!(
        id(&["-u", "1000"]),
        "1000:1000:alice:/home/alice:/home/alice"
    );
    assert_eq!(
        id(&["--user", "1000:50"]),
        "1000:50:alice:/home/alice:/home/alice"
    );
    assert_eq!(
        id(&["--user", "alice:staff"]),
        "1000:50:alice:/home/alice:/home/alice"
    );
    let out = b.login(&["--user", "mallory"], &["id"]);
    assert_tool_error(&out, "user 'mallory' does not exist");
    let out = b.login(&["--user", "alice:nogroup-here"], &["id"]);
    assert_tool_error(&out, "group 'nogroup-here' does not exist");
}

#[test]
fn login_environment_follows_precedence_and_the_host_does_not_leak() {
    let b = Box::new();
    b.write_image_config(serde_json::json!({
        "Env": ["FROM_IMAGE=image", "OVERRIDDEN=image", "PATH=/bin:/usr/bin", "HOME=/image-home"],
    }));
    let out = b
        .cmd(&[
            "login",
            "c",
            "--env",
            "OVERRIDDEN=cli",
            "-e",
            "EXTRA=a=b",
            "--",
            "env",
        ])
        .env("CD_HOST_SECRET", "leak")
        .env("TERM", "vt220")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let mut lines: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "EXTRA=a=b",
            "FROM_IMAGE=image",
            "HOME=/root",
            "HOSTNAME=c",
            "LOGNAME=root",
            "MOZ_FAKE_NO_SANDBOX=1",
            "OVERRIDDEN=cli",
            "PATH=/bin:/usr/bin",
            "TERM=vt220",
            "USER=root",
        ],
        "{}",
        describe(&out)
    );
    // --env wins over the automatic variables too; a malformed --env is refused.
    let out = b.login(&["--env", "HOSTNAME=mine"], &sh("echo $HOSTNAME"));
    assert_eq!(stdout(&out), "mine\n", "{}", describe(&out));
    let out = b.login(&["--env", "NOVALUE"], &["true"]);
    assert_tool_error(&out, "invalid --env 'NOVALUE'");
}

#[test]
fn login_work_dir_is_entered_and_must_exist() {
    let b = Box::new();
    let out = b.login(&["--work-dir", "/etc"], &["pwd"]);
    assert_eq!(stdout(&out), "/etc\n", "{}", describe(&out));
    let out = b.login(&["-w", "/no/such/dir"], &["pwd"]);
    assert_tool_error(&out, "'/no/such/dir' does not exist");
    let out = b.login(&["-w", "relative"], &["pwd"]);
    assert_tool_error(&out, "must be an absolute path");
}

#[test]
fn login_bind_shares_a_host_directory_both_ways() {
    let b = Box::new();
    let host = b.env.root().join("host-share");
    fs::create_dir_all(&host).unwrap();
    fs::write(host.join("from-host"), "hello from the host\n").unwrap();
    let spec = format!("{}:/mnt/share", host.display());
    let out = b.login(
        &["--bind", &spec],
        &sh("cat /mnt/share/from-host && echo back > /mnt/share/from-guest"),
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(stdout(&out), "hello from the host\n");
    assert_eq!(
        fs::read_to_string(host.join("from-guest")).unwrap(),
        "back\n"
    );
    // SRC alone binds to the same path inside.
    let same = host.display().to_string();
    let out = b.login(&["-b", &same], &["cat", &format!("{same}/from-host")]);
    assert_eq!(stdout(&out), "hello from the host\n", "{}", describe(&out));
    b.wait_released();
    assert!(b.host_mounts().is_empty(), "{:?}", b.host_mounts());

    let missing = format!("{}/nope:/mnt/x", b.env.root().display());
    assert_tool_error(&b.login(&["--bind", &missing], &["true"]), "does not exist");
    let relative_dst = format!("{}:mnt", host.display());
    assert_tool_error(
        &b.login(&["--bind", &relative_dst], &["true"]),
        "must be absolute",
    );
}

#[test]
fn login_tmp_is_fresh_unless_shared_tmp() {
    let b = Box::new();
    // A marker in a temp dir of the host's /tmp (the store itself may live elsewhere).
    let host_tmp = tempfile::Builder::new()
        .prefix("cd-shared-tmp-")
        .tempdir_in("/tmp")
        .unwrap();
    fs::write(host_tmp.path().join("marker"), "x").unwrap();
    let marker = host_tmp.path().join("marker").display().to_string();
    let check = format!("[ -e {marker} ] && echo shared || echo fresh; ls -A /tmp | wc -l");
    let out = b.login(&[], &sh(&check));
    assert_eq!(stdout(&out), "fresh\n0\n", "{}", describe(&out));
    b.wait_released();
    let out = b.login(&["--shared-tmp"], &sh(&check));
    assert_eq!(
        stdout(&out).lines().next(),
        Some("shared"),
        "{}",
        describe(&out)
    );
}

#[test]
fn get_chroot_cmd_prints_the_command_and_changes_nothing() {
    let b = Box::new();
    let out = b.login(
        &["--get-chroot-cmd", "--user", "alice", "--env", "A=1"],
        &["echo", "hi there"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let line = stdout(&out);
    assert!(line.starts_with("env -i "), "{line}");
    assert!(line.contains(" A=1 "), "{line}");
    assert!(line.contains(&b.rootfs().display().to_string()), "{line}");
    assert!(line.contains("'hi there'"), "{line}");
    assert!(line.contains("--userspec=1000:1000"), "{line}");
    let store: Vec<String> = fs::read_dir(b.env.store_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        store,
        ["containers"],
        "no lock or session state was created"
    );
    assert!(!b.running().is_running());
    assert!(b.host_mounts().is_empty());
    // The printed line really runs the same thing.
    let out = Command::new("sh")
        .arg("-c")
        .arg(line.trim())
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "hi there\n", "{}", describe(&out));
}

#[test]
fn login_isolated_gets_its_own_pid_and_uts_namespaces() {
    let b = Box::new();
    let script = "hostname; echo $$; ls /proc | grep -c '^[0-9]'";
    let out = b.login(&["--isolated", "--hostname", "boxy"], &sh(script));
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    assert_eq!(lines[0], "boxy", "{}", describe(&out));
    assert!(lines[1].parse::<u32>().unwrap() < 10, "{}", describe(&out));
    assert!(lines[2].parse::<u32>().unwrap() < 10, "{}", describe(&out));
    b.wait_released();
    let out = b.login(&["--isolated"], &["hostname"]);
    assert_eq!(stdout(&out), "c\n", "defaults to the container name");
}

#[test]
fn login_minimal_exports_only_env_entries_and_term() {
    let b = Box::new();
    b.write_image_config(serde_json::json!({ "Env": ["FROM_IMAGE=1"] }));
    let out = b
        .cmd(&["login", "--minimal", "-e", "A=1", "c", "--", "env"])
        .env("TERM", "vt220")
        .output()
        .unwrap();
    let mut lines: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "A=1",
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "TERM=vt220"
        ],
        "{}",
        describe(&out)
    );
}

#[test]
fn login_isolated_and_shared_sessions_do_not_mix() {
    let mut b = Box::new();
    b.spawn(&[], &["sleep", "30"]);
    b.wait_processes(1);
    let out = b.login(&["--isolated"], &["true"]);
    assert_tool_error(&out, "already running without --isolated");
    assert!(
        stderr(&out).contains("chroot-distro unmount c"),
        "{}",
        describe(&out)
    );
}

#[test]
fn login_sees_only_stdio_and_hardened_mounts() {
    let b = Box::new();
    // `; :` keeps the shell from exec'ing ls, so $$ is the process the tool started.
    let out = b.login(&[], &sh("ls /proc/$$/fd; :"));
    assert_eq!(
        stdout(&out).split_whitespace().collect::<Vec<_>>(),
        ["0", "1", "2"],
        "{}",
        describe(&out)
    );
    let script = "grep -E ' /(proc|sys) ' /proc/self/mountinfo | cut -d' ' -f5,6; \
                  wc -c < /proc/keys; echo 1 > /proc/sys/kernel/hostname || echo ro";
    let out = b.login(&[], &sh(script));
    let text = stdout(&out);
    let proc_line = text.lines().find(|l| l.starts_with("/proc ")).unwrap();
    for opt in ["nosuid", "nodev", "noexec"] {
        assert!(proc_line.contains(opt), "{text}");
    }
    let sys_line = text.lines().find(|l| l.starts_with("/sys ")).unwrap();
    assert!(sys_line.contains("ro"), "{text}");
    assert!(text.contains("\n0\n"), "/proc/keys is masked: {text}");
    assert!(text.ends_with("ro\n"), "/proc/sys is read-only: {text}");
}
