//! A temporary store with an isolated environment, and a command builder for the binary.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

pub struct TestEnv {
    pub dir: TempDir,
    pub bin: PathBuf,
}

impl TestEnv {
    /// A fresh temp dir with `data/`, `cache/` and `home/` for the binary at `bin`.
    pub fn new(bin: impl Into<PathBuf>) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("cd-test-")
            .tempdir()
            .expect("tempdir");
        for sub in ["data", "cache", "home", "runtime"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
        }
        TestEnv {
            dir,
            bin: bin.into(),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn data_home(&self) -> PathBuf {
        self.root().join("data")
    }

    pub fn cache_home(&self) -> PathBuf {
        self.root().join("cache")
    }

    /// `$RUNTIME_DIR` of the store under test.
    pub fn store_dir(&self) -> PathBuf {
        self.data_home().join("chroot-distro")
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.cache_home().join("chroot-distro")
    }

    pub fn container_dir(&self, name: &str) -> PathBuf {
        self.store_dir().join("containers").join(name)
    }

    pub fn rootfs(&self, name: &str) -> PathBuf {
        self.container_dir(name).join("rootfs")
    }

    /// The binary with a scrubbed environment pointing at this store.
    pub fn cmd<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = Command::new(&self.bin);
        c.env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("HOME", self.root().join("home"))
            .env("XDG_DATA_HOME", self.data_home())
            .env("XDG_CACHE_HOME", self.cache_home())
            .env("XDG_RUNTIME_DIR", self.root().join("runtime"))
            .env("CD_NO_PROGRESS", "1")
            .env("NO_COLOR", "1")
            .env("COLUMNS", "100")
            .args(args);
        c
    }

    /// Run and capture; stdin is empty.
    pub fn run<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd(args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("spawn chroot-distro")
    }

    /// A container made directly on disk (bypassing install) from a rootfs builder.
    pub fn make_container(&self, name: &str, build: impl FnOnce(&Path)) -> PathBuf {
        let rootfs = self.rootfs(name);
        std::fs::create_dir_all(&rootfs).expect("mkdir rootfs");
        build(&rootfs);
        rootfs
    }
}

/// Stdout and stderr of a finished command, for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "status: {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
