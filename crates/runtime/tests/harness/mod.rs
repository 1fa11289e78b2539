//! A busybox container in a temp dir, and a driver that enters it from a separate process.
//!
//! `enter` forks, joins namespaces and relays the terminal, and the tests need its stdout, exit
//! status and (for some) a process they can SIGKILL. So each session runs in a child process:
//! this very test binary, re-executed on its `driver` test with the request as JSON in
//! `CD_RUNTIME_DRIVER`. The driver prints [`MARKER`] before entering, so libtest's own banner can
//! be cut off the captured output.

#![allow(dead_code)]
// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use cd_runtime::{BindSpec, EnterRequest, Mode};
use serde_json::{json, Value};

pub const MARKER: &str = "@@cd-runtime-driver@@";
pub const DRIVER_ENV: &str = "CD_RUNTIME_DRIVER";

/// The body of the `driver` test: enter the container described by `CD_RUNTIME_DRIVER` and exit
/// with the session's status. Without the variable, it does nothing.
pub fn driver_main() {
    let Ok(spec) = std::env::var(DRIVER_ENV) else {
        return;
    };
    let v: Value = serde_json::from_str(&spec).expect("driver request JSON");
    let req = request_from_json(&v);
    use std::io::Write;
    println!("{MARKER}");
    std::io::stdout().flush().unwrap();
    let code = match cd_runtime::enter(&req, &mut |w| eprintln!("warning: {w}")) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    };
    std::process::exit(code);
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn opt_string(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

pub fn request_from_json(v: &Value) -> EnterRequest {
    EnterRequest {
        name: v["name"].as_str().unwrap().to_string(),
        rootfs: PathBuf::from(v["rootfs"].as_str().unwrap()),
        state_dir: PathBuf::from(v["state_dir"].as_str().unwrap()),
        user: opt_string(&v["user"]),
        work_dir: opt_string(&v["work_dir"]),
        env: strings(&v["env"])
            .iter()
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (k.to_string(), v.to_string())
            })
            .collect(),
        image_env: strings(&v["image_env"]),
        image_user: opt_string(&v["image_user"]),
        image_work_dir: opt_string(&v["image_work_dir"]),
        binds: strings(&v["binds"])
            .iter()
            .map(|b| BindSpec::parse(b).unwrap())
            .collect(),
        shared_home: v["shared_home"].as_bool().unwrap_or(false),
        shared_tmp: v["shared_tmp"].as_bool().unwrap_or(false),
        shared_display: v["shared_display"].as_bool().unwrap_or(false),
        hostname: opt_string(&v["hostname"]),
        isolated: v["isolated"].as_bool().unwrap_or(false),
        minimal: v["minimal"].as_bool().unwrap_or(false),
        command: strings(&v["command"]),
        mode: if v["mode"] == "run" {
            Mode::Run
        } else {
            Mode::Login
        },
    }
}

/// A busybox container in its own temp dir.
pub struct Container {
    pub dir: tempfile::TempDir,
    pub name: String,
    pub rootfs: PathBuf,
    pub state_dir: PathBuf,
}

/// What a session printed and returned.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Container {
    pub fn new() -> Self {
        assert!(
            rustix::process::geteuid().is_root(),
            "these tests enter containers and need root"
        );
        let dir = tempfile::Builder::new()
            .prefix("cd-runtime-")
            .tempdir()
            .unwrap();
        let rootfs = dir.path().join("containers/box/rootfs");
        std::fs::create_dir_all(&rootfs).unwrap();
        cd_testkit::busybox::populate(&rootfs);
        let state_dir = dir.path().join("data/box");
        Container {
            name: "box".to_string(),
            rootfs,
            state_dir,
            dir,
        }
    }

    /// An empty rootfs, for fixtures that bring their own binaries.
    pub fn empty() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("cd-runtime-")
            .tempdir()
            .unwrap();
        let rootfs = dir.path().join("containers/box/rootfs");
        std::fs::create_dir_all(&rootfs).unwrap();
        let state_dir = dir.path().join("data/box");
        Container {
            name: "box".to_string(),
            rootfs,
            state_dir,
            dir,
        }
    }

    /// The request as JSON: the container's paths plus `extra` fields, running `command`.
    pub fn request(&self, extra: Value, command: &[&str]) -> Value {
        let mut v = json!({
            "name": self.name,
            "rootfs": self.rootfs,
            "state_dir": self.state_dir,
            "command": command,
        });
        if let Value::Object(m) = extra {
            for (k, x) in m {
                v[k] = x;
            }
        }
        v
    }

    pub fn driver(&self, extra: Value, command: &[&str]) -> Command {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args(["driver", "--exact", "--nocapture", "--test-threads=1"])
            .env(DRIVER_ENV, self.request(extra, command).to_string())
            .stdin(Stdio::null());
        cmd
    }

    /// Run one session to completion.
    pub fn run(&self, extra: Value, command: &[&str]) -> Outcome {
        let out = self
            .driver(extra, command)
            .output()
            .expect("start the driver");
        outcome(out)
    }

    /// Start a session in the background (stdout piped).
    pub fn spawn(&self, extra: Value, command: &[&str]) -> Child {
        self.driver(extra, command)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the driver")
    }

    pub fn running(&self) -> cd_runtime::RunningState {
        cd_runtime::running(&self.state_dir, &self.rootfs).unwrap()
    }

    /// Wait until the container has processes (a session started).
    pub fn wait_running(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let s = self.running();
            if s.holder.is_some() && s.pids.len() > 2 {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the session did not start: {:?}", self.running());
    }

    /// Wait until at least `n` processes run with the container as their root.
    pub fn wait_processes(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let s = self.running();
            let pair = if s.holder.is_some() { 2 } else { 0 };
            if s.pids.len() >= pair + n {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("fewer than {n} container processes: {:?}", self.running());
    }

    /// Wait until nothing of the container is left (holder gone, no processes).
    pub fn wait_released(&self) {
        let deadline = Instant::now() + Duration::from_secs(8);
        while Instant::now() < deadline {
            let s = self.running();
            if !s.is_running() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the container was not released: {:?}", self.running());
    }

    /// Mount points at or below the rootfs in the host's (this process's) mount table.
    pub fn host_mounts(&self) -> Vec<String> {
        cd_testkit::mntns::mounts_under(&self.rootfs)
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = cd_runtime::kill(&self.state_dir, &self.rootfs, Duration::from_millis(200));
    }
}

pub fn outcome(out: Output) -> Outcome {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stdout = match stdout.split_once(&format!("{MARKER}\n")) {
        Some((_, rest)) => rest.to_string(),
        None => stdout,
    };
    Outcome {
        code: out.status.code().unwrap_or_else(|| {
            use std::os::unix::process::ExitStatusExt;
            128 + out.status.signal().unwrap_or(0)
        }),
        stdout,
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    }
}

/// The thread of a driver process that runs the session (libtest names it after the test).
/// Signals for the tool must go to that thread: the harness's main thread does not block them.
pub fn driver_thread(pid: u32) -> i32 {
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let task = task.unwrap();
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() == "driver" {
            return task.file_name().to_str().unwrap().parse().unwrap();
        }
    }
    panic!("no driver thread in process {pid}");
}

/// Copy the arm64 busybox fixture (see `fetch-arm64-busybox.sh`) or fail saying how to get it.
pub fn arm64_busybox() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fetch-arm64-busybox.sh");
    cd_testkit::cached::cached_fixture(
        &script,
        "Debian's apt with network access, dpkg-deb, qemu-user-static and binfmt-support",
    )
}
