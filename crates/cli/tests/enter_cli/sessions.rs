//! Sessions as a whole: ps, list, kill, unmount, SIGKILL of the tool, remove during a session,
//! and the container lock.

use super::*;

#[test]
fn session_ps_list_and_kill() {
    let mut b = Box::new();
    let idle = stdout(&b.run(&["ps", "-q"]));
    assert_eq!(idle, "");
    let bind_dir = b.env.root().join("bound");
    fs::create_dir_all(&bind_dir).unwrap();
    let bind = format!("{}:/mnt/b", bind_dir.display());
    let s = b.spawn(&["--bind", &bind], &["sleep", "30"]);
    b.wait_processes(1);

    let out = b.run(&["ps", "-q"]);
    assert_eq!(stdout(&out), "c\n", "{}", describe(&out));
    let table = stdout(&b.run(&["ps"]));
    assert!(table.starts_with("NAME"), "{table}");
    assert!(table.contains("in use (1 session)"), "{table}");
    let json: serde_json::Value =
        serde_json::from_slice(&b.run(&["ps", "--format", "json"]).stdout).unwrap();
    assert_eq!(json[0]["name"], "c", "{json}");
    assert_eq!(json[0]["status"]["state"], "running", "{json}");
    assert_eq!(json[0]["status"]["sessions"], 1, "{json}");
    let list = stdout(&b.run(&["list"]));
    assert!(list.contains("in use"), "{list}");
    // The container's mounts live in its private namespace, never in the host's table.
    assert_eq!(b.host_mounts(), Vec::<String>::new());

    let out = b.run(&["kill", "c"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        stderr(&out).contains("stopped container 'c'"),
        "{}",
        describe(&out)
    );
    let (code, _) = b.finish(s);
    assert_eq!(code, Some(128 + 15), "the session's command got SIGTERM");
    assert!(!b.running().is_running(), "{:?}", b.running());
    assert!(b.host_mounts().is_empty());
    assert_eq!(stdout(&b.run(&["ps", "-q"])), "");
    assert!(stdout(&b.run(&["list"])).contains("idle"));
    let out = b.run(&["kill", "c"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        stderr(&out).contains("was not running"),
        "{}",
        describe(&out)
    );
}

#[test]
fn session_kill_escalates_to_sigkill() {
    let mut b = Box::new();
    let s = b.spawn(&[], &sh("trap '' TERM; while :; do sleep 1; done"));
    b.wait_processes(2);
    let out = b.run(&["kill", "c"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(stderr(&out).contains("after SIGKILL"), "{}", describe(&out));
    let (code, _) = b.finish(s);
    assert_eq!(code, Some(137));
    b.wait_released();
    assert!(b.host_mounts().is_empty());
}

#[test]
fn session_unmount_ends_sessions_and_releases_mounts() {
    let mut b = Box::new();
    let s1 = b.spawn(&[], &["sleep", "30"]);
    let s2 = b.spawn(&[], &["sleep", "30"]);
    b.wait_processes(2);
    assert!(stdout(&b.run(&["ps"])).contains("2 sessions"));
    let out = b.run(&["unmount", "c"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        stderr(&out).contains("unmounted container 'c'"),
        "{}",
        describe(&out)
    );
    b.finish(s1);
    b.finish(s2);
    b.wait_released();
    assert!(b.host_mounts().is_empty());
    assert_eq!(stdout(&b.run(&["ps", "-q"])), "");
    let out = b.run(&["umount", "c"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let out = b.run(&["unmount", "ghost"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(stderr(&out).contains("not installed"));
}

#[test]
fn session_released_after_the_tool_is_sigkilled() {
    let mut b = Box::new();
    let s = b.spawn(&["--bind", "/etc:/mnt/etc"], &["sleep", "30"]);
    b.wait_processes(1);
    b.sessions[s].kill().unwrap();
    b.finish(s);
    b.wait_released();
    assert!(b.host_mounts().is_empty());
    assert_eq!(stdout(&b.run(&["ps", "-q"])), "");
}

#[test]
fn session_sigterm_to_the_tool_reaches_the_command() {
    let mut b = Box::new();
    let s = b.spawn(&[], &sh("trap 'exit 5' TERM; while :; do sleep 0.1; done"));
    b.wait_processes(2);
    let pid = rustix::process::Pid::from_raw(b.sessions[s].id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let (code, err) = b.finish(s);
    assert_eq!(code, Some(5), "{err}");
    b.wait_released();
}

#[test]
fn remove_during_a_session_ends_it_first_and_never_deletes_files_behind_a_bind() {
    let mut b = Box::new();
    let host = b.env.root().join("precious");
    fs::create_dir_all(&host).unwrap();
    fs::write(host.join("keep"), "keep me").unwrap();
    let spec = format!("{}:/mnt/host", host.display());
    let s = b.spawn(&["--bind", &spec], &["sleep", "30"]);
    b.wait_processes(1);

    let out = b.run(&["rename", "c", "d"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(stderr(&out).contains("is running"), "{}", describe(&out));
    assert!(b.rootfs().join("bin/busybox").exists());

    let out = b.run(&["remove", "c"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        stderr(&out).contains("stopped container 'c'"),
        "{}",
        describe(&out)
    );
    let (code, _) = b.finish(s);
    assert_eq!(code, Some(143), "the session was not ended by SIGTERM");
    assert!(!b.env.container_dir("c").exists());
    assert!(b.host_mounts().is_empty());
    assert_eq!(fs::read_to_string(host.join("keep")).unwrap(), "keep me");
}

#[test]
fn login_refuses_while_another_command_holds_the_container() {
    let b = Box::new();
    let lock = b.env.store_dir().join("locks/c.lock");
    fs::create_dir_all(lock.parent().unwrap()).unwrap();
    // Held exclusively by another process, as `remove` or `reset` would.
    let mut holder = KillOnDrop(
        Command::new("sh")
            .args([
                "-c",
                "exec 9<>\"$1\" && flock -x 9 && echo locked && exec sleep 30",
                "sh",
            ])
            .arg(&lock)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.0.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    let out = b.login(&[], &["true"]);
    drop(holder);
    assert_eq!(line, "locked\n");
    assert_tool_error(&out, "is busy");
    assert_eq!(b.login(&[], &["true"]).status.code(), Some(0));
}
