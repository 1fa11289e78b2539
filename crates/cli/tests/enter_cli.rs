//! `login`, `run`, `ps`, `kill`, `unmount` through the real binary, entering busybox containers
//! made in a temp store. Needs root (real chroot, mounts and namespaces).
//!
//! Every test holds a [`Box`]: dropping it (also on a failed assertion) kills the background
//! sessions the test started and releases the container's namespace, so nothing outlives the
//! test and the temp dir can be deleted.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use cd_testkit::busybox;
use cd_testkit::env::{describe, stderr, stdout, TestEnv};

/// A busybox container named `c` in its own store, and the sessions started in it.
struct Box {
    env: TestEnv,
    name: &'static str,
    sessions: Vec<Child>,
}

impl Box {
    fn new() -> Self {
        assert!(
            rustix::process::geteuid().is_root(),
            "these tests enter containers and need root"
        );
        let env = TestEnv::new(env!("CARGO_BIN_EXE_chroot-distro"));
        env.make_container("c", busybox::populate);
        Box {
            env,
            name: "c",
            sessions: Vec::new(),
        }
    }

    fn rootfs(&self) -> PathBuf {
        self.env.rootfs(self.name)
    }

    fn state_dir(&self) -> PathBuf {
        self.env.store_dir().join("data").join(self.name)
    }

    /// Record the image config `run` and the guest environment read (`manifest.json`).
    fn write_image_config(&self, config: serde_json::Value) {
        let record = serde_json::json!({
            "image_ref": "busybox:test",
            "arch": "amd64",
            "manifest": {},
            "image_config": { "architecture": "amd64", "os": "linux", "config": config },
        });
        fs::write(
            self.env.container_dir(self.name).join("manifest.json"),
            record.to_string(),
        )
        .unwrap();
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.env.cmd(args);
        c.stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// `login [flags] c -- command...`
    fn login(&self, flags: &[&str], command: &[&str]) -> Output {
        self.run(&self.args("login", flags, command))
    }

    fn args<'a>(&'a self, verb: &'a str, flags: &[&'a str], command: &[&'a str]) -> Vec<&'a str> {
        let mut a = vec![verb];
        a.extend_from_slice(flags);
        a.push(self.name);
        if !command.is_empty() {
            a.push("--");
            a.extend_from_slice(command);
        }
        a
    }

    /// Start `login [flags] c -- command...` in the background; returns its index.
    fn spawn(&mut self, flags: &[&str], command: &[&str]) -> usize {
        let child = self
            .cmd(&self.args("login", flags, command))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        self.sessions.push(child);
        self.sessions.len() - 1
    }

    fn running(&self) -> cd_runtime::RunningState {
        cd_runtime::running(&self.state_dir(), &self.rootfs()).unwrap()
    }

    /// Wait until `n` processes besides the namespace holder pair run in the container.
    fn wait_processes(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let s = self.running();
            let pair = if s.holder.is_some() { 2 } else { 0 };
            if s.session_count > 0 && s.pids.len() >= pair + n {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the session did not start: {:?}", self.running());
    }

    /// Wait until nothing of the container is left: no holder, session or process.
    fn wait_released(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if !self.running().is_running() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the container was not released: {:?}", self.running());
    }

    /// Wait for background session `i` to end; its exit status and stderr.
    fn finish(&mut self, i: usize) -> (Option<i32>, String) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let child = &mut self.sessions[i];
        while Instant::now() < deadline {
            if let Some(st) = child.try_wait().unwrap() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                return (exit_code(st), err);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("background session {i} did not end");
    }

    /// Mount points at or below the rootfs in this (the host's) mount table.
    fn host_mounts(&self) -> Vec<String> {
        mounts_under(&self.rootfs())
    }
}

impl Drop for Box {
    fn drop(&mut self) {
        for child in &mut self.sessions {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = cd_runtime::kill(
            &self.state_dir(),
            &self.rootfs(),
            Duration::from_millis(200),
        );
    }
}

/// A helper process that must not outlive a failed assertion.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The status a shell would report: the exit code, or 128+N for a signal.
fn exit_code(st: std::process::ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    st.code().or_else(|| st.signal().map(|s| 128 + s))
}

fn mounts_under(dir: &Path) -> Vec<String> {
    let dir = dir.to_string_lossy().to_string();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| {
            let mp = l.split(' ').nth(4).unwrap_or("");
            mp == dir || mp.starts_with(&format!("{dir}/"))
        })
        .map(str::to_string)
        .collect()
}

fn sh(script: &str) -> [&str; 3] {
    ["/bin/sh", "-c", script]
}

/// A user-caused error: exit 125 and exactly one `error:` line.
fn assert_tool_error(out: &Output, needle: &str) {
    assert_eq!(out.status.code(), Some(125), "{}", describe(out));
    let err = stderr(out);
    assert_eq!(err.lines().count(), 1, "one line: {}", describe(out));
    assert!(err.starts_with("error: "), "{}", describe(out));
    assert!(err.contains(needle), "wanted '{needle}': {}", describe(out));
}

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

#[test]
fn run_uses_entrypoint_cmd_env_workdir_and_user() {
    let b = Box::new();
    fs::create_dir_all(b.rootfs().join("srv/app")).unwrap();
    b.write_image_config(serde_json::json!({
        "Entrypoint": ["/bin/sh", "-c", "echo \"$0 $1|$GREETING|$(pwd)|$(id -un)\"; exit 7"],
        "Cmd": ["cmd-a", "cmd-b"],
        "Env": ["GREETING=hi", "PATH=/bin"],
        "WorkingDir": "/srv/app",
        "User": "alice",
    }));
    let out = b.run(&["run", "c"]);
    assert_eq!(out.status.code(), Some(7), "{}", describe(&out));
    assert_eq!(stdout(&out), "cmd-a cmd-b|hi|/srv/app|alice\n");
    // Arguments after -- replace Cmd; flags override WorkingDir and User.
    let out = b.run(&[
        "run",
        "--work-dir",
        "/",
        "--user",
        "root",
        "c",
        "--",
        "x",
        "y",
    ]);
    assert_eq!(stdout(&out), "x y|hi|/|root\n", "{}", describe(&out));
    let out = b.run(&["run", "--get-chroot-cmd", "c"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(stdout(&out).contains("cmd-a cmd-b"), "{}", describe(&out));
    // login ignores Entrypoint/Cmd/WorkingDir/User, but the image Env applies.
    let out = b.login(&[], &sh("echo $GREETING $(id -un) $(pwd)"));
    assert_eq!(stdout(&out), "hi root /root\n", "{}", describe(&out));
}

#[test]
fn run_with_only_cmd_or_nothing_recorded() {
    let b = Box::new();
    b.write_image_config(serde_json::json!({ "Cmd": ["echo", "from-cmd"] }));
    let out = b.run(&["run", "c"]);
    assert_eq!(stdout(&out), "from-cmd\n", "{}", describe(&out));
    let out = b.run(&["run", "c", "--", "echo", "replaced"]);
    assert_eq!(stdout(&out), "replaced\n", "{}", describe(&out));

    b.write_image_config(serde_json::json!({ "Entrypoint": null, "Cmd": null }));
    assert_tool_error(&b.run(&["run", "c"]), "neither Entrypoint nor Cmd");
    let out = b.run(&["run", "c", "--", "echo", "given"]);
    assert_eq!(stdout(&out), "given\n", "{}", describe(&out));
}

#[test]
fn run_without_manifest_refuses_in_one_line() {
    let b = Box::new();
    let out = b.run(&["run", "c"]);
    assert_tool_error(&out, "has no manifest.json");
    assert!(stderr(&out).contains("chroot-distro login c"));
    // login still works without it.
    assert_eq!(b.login(&[], &["true"]).status.code(), Some(0));
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

/// The ELF header of a 64-bit little-endian binary for `machine`, padded to 64 bytes.
fn elf_header(machine: u16) -> Vec<u8> {
    let mut h = vec![0u8; 64];
    h[..4].copy_from_slice(b"\x7fELF");
    h[4] = 2;
    h[5] = 1;
    h[18..20].copy_from_slice(&machine.to_le_bytes());
    h
}

#[test]
fn login_foreign_guest_without_qemu_names_the_package() {
    // An architecture this host has no binfmt_misc entry for (normally riscv64 here).
    let foreign = [("qemu-riscv64", 243u16), ("qemu-aarch64", 183)]
        .into_iter()
        .find(|(entry, machine)| {
            let native = match std::env::consts::ARCH {
                "x86_64" => 62,
                "aarch64" => 183,
                "riscv64" => 243,
                _ => 0,
            };
            *machine != native && !Path::new("/proc/sys/fs/binfmt_misc").join(entry).exists()
        });
    let Some((_, machine)) = foreign else {
        eprintln!("skipped: every foreign architecture is registered with binfmt_misc here");
        return;
    };
    let b = Box::new();
    fs::remove_file(b.rootfs().join("bin/sh")).unwrap();
    fs::write(b.rootfs().join("bin/sh"), elf_header(machine)).unwrap();
    let out = b.login(&[], &["/bin/sh"]);
    assert_tool_error(&out, "qemu-user-static");
}

#[test]
fn login_arm64_busybox_runs_under_qemu_user() {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime/tests/fetch-arm64-busybox.sh");
    let fetched = Command::new(&script).output().unwrap();
    assert!(
        fetched.status.success(),
        "the arm64 busybox fixture is missing and {} could not fetch it: {}",
        script.display(),
        describe(&fetched)
    );
    let arm64 = PathBuf::from(stdout(&fetched).trim());
    let b = Box::new();
    let rootfs = b.env.rootfs("arm");
    fs::create_dir_all(rootfs.join("bin")).unwrap();
    fs::create_dir_all(rootfs.join("etc")).unwrap();
    fs::copy(&arm64, rootfs.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", rootfs.join("bin/sh")).unwrap();
    fs::write(rootfs.join("etc/passwd"), busybox::PASSWD).unwrap();
    fs::write(rootfs.join("etc/group"), busybox::GROUP).unwrap();
    let out = b.run(&["login", "arm", "--", "/bin/busybox", "uname", "-m"]);
    let state = b.env.store_dir().join("data/arm");
    let _ = cd_runtime::kill(&state, &rootfs, Duration::from_millis(200));
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(stdout(&out), "aarch64\n");
}

#[test]
fn login_interactive_shell_through_a_pty() {
    let b = Box::new();
    // Python's pty module gives the tool a real terminal; the shell is asked to
    // `echo hi; tty; exit 3`.
    let script = r##"
import os, pty, select, sys, time
argv = sys.argv[1:]
pid, fd = pty.fork()
if pid == 0:
    os.execv(argv[0], argv)
out = b""
def pump(timeout):
    global out
    r, _, _ = select.select([fd], [], [], timeout)
    if not r:
        return False
    try:
        data = os.read(fd, 4096)
    except OSError:
        return None
    if not data:
        return None
    out += data
    return True
deadline = time.time() + 10
while b"# " not in out and time.time() < deadline:
    if pump(0.2) is None:
        break
os.write(fd, b"echo hi; tty; exit 3\n")
while time.time() < deadline + 10:
    if pump(0.5) is None:
        break
_, status = os.waitpid(pid, 0)
sys.stdout.write("%d\n" % os.waitstatus_to_exitcode(status))
sys.stdout.write(out.decode(errors="replace"))
"##;
    // The tool's usual scrubbed environment, given to python3 which passes it on.
    let tool = b.env.cmd(["login", "c"]);
    let py = Command::new("python3")
        .env_clear()
        .envs(tool.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))))
        .env("TERM", "xterm")
        .args([
            "-c",
            script,
            env!("CARGO_BIN_EXE_chroot-distro"),
            "login",
            "c",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("python3 is needed for the pty test");
    let text = String::from_utf8_lossy(&py.stdout);
    let (code, transcript) = text.split_once('\n').unwrap();
    assert_eq!(code, "3", "{text}\n{}", String::from_utf8_lossy(&py.stderr));
    assert!(transcript.contains("\nhi\r\n"), "{transcript}");
    assert!(transcript.contains("/dev/pts/"), "{transcript}");
}
