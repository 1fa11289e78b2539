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

mod arch_and_pty;
mod login;
mod run;
mod sessions;

/// A busybox container named `c` in its own store, and the sessions started in it.
pub(crate) struct Box {
    env: TestEnv,
    name: &'static str,
    sessions: Vec<Child>,
}

impl Box {
    pub(crate) fn new() -> Self {
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

    pub(crate) fn rootfs(&self) -> PathBuf {
        self.env.rootfs(self.name)
    }

    pub(crate) fn state_dir(&self) -> PathBuf {
        self.env.store_dir().join("data").join(self.name)
    }

    /// Record the image config `run` and the guest environment read (`manifest.json`).
    pub(crate) fn write_image_config(&self, config: serde_json::Value) {
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

    pub(crate) fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.env.cmd(args);
        c.stdin(Stdio::null());
        c
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// `login [flags] c -- command...`
    pub(crate) fn login(&self, flags: &[&str], command: &[&str]) -> Output {
        self.run(&self.args("login", flags, command))
    }

    pub(crate) fn args<'a>(
        &'a self,
        verb: &'a str,
        flags: &[&'a str],
        command: &[&'a str],
    ) -> Vec<&'a str> {
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
    pub(crate) fn spawn(&mut self, flags: &[&str], command: &[&str]) -> usize {
        let child = self
            .cmd(&self.args("login", flags, command))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        self.sessions.push(child);
        self.sessions.len() - 1
    }

    pub(crate) fn running(&self) -> cd_runtime::RunningState {
        cd_runtime::running(&self.state_dir(), &self.rootfs()).unwrap()
    }

    /// Wait until `n` processes besides the namespace holder pair run in the container.
    pub(crate) fn wait_processes(&self, n: usize) {
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
    pub(crate) fn wait_released(&self) {
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
    pub(crate) fn finish(&mut self, i: usize) -> (Option<i32>, String) {
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
    pub(crate) fn host_mounts(&self) -> Vec<String> {
        cd_testkit::mntns::mounts_under(&self.rootfs())
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
pub(crate) struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The status a shell would report: the exit code, or 128+N for a signal.
pub(crate) fn exit_code(st: std::process::ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    st.code().or_else(|| st.signal().map(|s| 128 + s))
}

pub(crate) fn sh(script: &str) -> [&str; 3] {
    ["/bin/sh", "-c", script]
}

/// A user-caused error: exit 125 and exactly one `error:` line.
pub(crate) fn assert_tool_error(out: &Output, needle: &str) {
    assert_eq!(out.status.code(), Some(125), "{}", describe(out));
    let err = stderr(out);
    assert_eq!(err.lines().count(), 1, "one line: {}", describe(out));
    assert!(err.starts_with("error: "), "{}", describe(out));
    assert!(err.contains(needle), "wanted '{needle}': {}", describe(out));
}
