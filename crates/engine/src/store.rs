//! The container store: listing, renaming, removing, and the guards around them.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{EngineError, IoContext};
use crate::lock::{describe_holder, FileLock, LockMode};
use crate::names::validate_name;
use crate::paths::StorePaths;
use crate::record::ContainerRecord;
use crate::report::Reporter;

#[derive(Debug, Clone)]
pub struct Store {
    pub paths: StorePaths,
}

/// What `list` and `ps` show for one container.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ContainerInfo {
    pub name: String,
    pub path: PathBuf,
    pub size_bytes: u64,
    pub source: String,
    pub image_ref: Option<String>,
    pub arch: Option<String>,
    pub status: ContainerStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ContainerStatus {
    Idle,
    /// A command (install, backup, remove, ...) holds the container's lock.
    InUse {
        holder: String,
    },
    /// Sessions or processes are inside: a live namespace holder, or processes whose root is
    /// the rootfs (`cd_runtime::running`). `pids` includes the holder pair.
    Running {
        sessions: usize,
        pids: Vec<i32>,
        detail: String,
    },
}

impl ContainerStatus {
    /// What `ps` lists: containers with something running inside, not merely locked ones.
    pub fn is_running(&self) -> bool {
        matches!(self, ContainerStatus::Running { .. })
    }
}

impl std::fmt::Display for ContainerStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ContainerStatus::Idle => f.write_str("idle"),
            ContainerStatus::InUse { holder } => write!(f, "in use ({holder})"),
            ContainerStatus::Running { detail, .. } => write!(f, "in use ({detail})"),
        }
    }
}

/// Holds a container's exclusive lock for the duration of a mutating command.
#[derive(Debug)]
pub struct ContainerGuard {
    pub name: String,
    _lock: FileLock,
}

impl Store {
    pub fn new(paths: StorePaths) -> Self {
        Store { paths }
    }

    pub fn from_env() -> Self {
        Store::new(StorePaths::from_env())
    }

    /// Names of installed containers (directories of `containers/` holding a `rootfs/`), sorted.
    pub fn names(&self) -> Result<Vec<String>, EngineError> {
        let dir = self.paths.containers();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(EngineError::io(format!("cannot read {}", dir.display()), e)),
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| validate_name(n).is_ok())
            .filter(|n| {
                self.paths
                    .rootfs(n)
                    .symlink_metadata()
                    .is_ok_and(|m| m.is_dir())
            })
            .collect();
        names.sort();
        Ok(names)
    }

    pub fn exists(&self, name: &str) -> bool {
        self.paths
            .rootfs(name)
            .symlink_metadata()
            .is_ok_and(|m| m.is_dir())
    }

    /// Validate the name and make sure the container is installed.
    pub fn require(&self, name: &str) -> Result<(), EngineError> {
        validate_name(name)?;
        if self.exists(name) {
            Ok(())
        } else {
            Err(EngineError::NotFound(name.to_string()))
        }
    }

    pub fn record(&self, name: &str) -> Result<Option<ContainerRecord>, EngineError> {
        ContainerRecord::load(&self.paths.record(name))
    }

    /// Take the container's exclusive lock, failing at once with a "busy" error.
    pub fn lock(&self, name: &str) -> Result<ContainerGuard, EngineError> {
        validate_name(name)?;
        let path = self.paths.lock_file(name);
        match FileLock::try_acquire(&path, LockMode::Exclusive)? {
            Some(lock) => Ok(ContainerGuard {
                name: name.to_string(),
                _lock: lock,
            }),
            None => Err(EngineError::Busy {
                name: name.to_string(),
                holder: describe_holder(&path),
            }),
        }
    }

    /// Whether something runs inside the container (the runtime's view, the same one `ps` and
    /// `kill` use), else whether a command holds its lock.
    pub fn status(&self, name: &str) -> ContainerStatus {
        if let Ok(state) = self.running(name) {
            if state.is_running() {
                return ContainerStatus::Running {
                    sessions: state.session_count,
                    detail: crate::session::describe_running(&state),
                    pids: state.pids,
                };
            }
        }
        match probe_held(&self.paths.lock_file(name)) {
            Some(holder) => ContainerStatus::InUse { holder },
            None => ContainerStatus::Idle,
        }
    }

    pub fn info(&self, name: &str) -> Result<ContainerInfo, EngineError> {
        let record = self.record(name).ok().flatten();
        let path = self.paths.container_dir(name);
        Ok(ContainerInfo {
            name: name.to_string(),
            size_bytes: cd_rootfs::dir_size(&self.paths.rootfs(name)),
            source: record
                .as_ref()
                .map_or("local archive".to_string(), |r| r.source_label()),
            image_ref: record
                .as_ref()
                .map(|r| r.image_ref.clone())
                .filter(|s| !s.is_empty()),
            arch: record
                .as_ref()
                .map(|r| r.arch.clone())
                .filter(|s| !s.is_empty()),
            status: self.status(name),
            path,
        })
    }

    pub fn list(&self) -> Result<Vec<ContainerInfo>, EngineError> {
        self.names()?.iter().map(|n| self.info(n)).collect()
    }

    /// Refuse while a session, a namespace holder or any process runs in the container.
    pub fn ensure_not_running(&self, name: &str) -> Result<(), EngineError> {
        let state = self.running(name)?;
        if state.is_running() {
            return Err(EngineError::Running {
                name: name.to_string(),
                detail: crate::session::describe_running(&state),
            });
        }
        Ok(())
    }

    /// Rename `old` to `new`; refused while `old` is in use or when `new` exists.
    pub fn rename(&self, old: &str, new: &str) -> Result<(), EngineError> {
        validate_name(old)?;
        validate_name(new)?;
        self.require(old)?;
        if old == new {
            return Err(EngineError::Other(format!("'{old}' already has that name")));
        }
        let _old_guard = self.lock(old)?;
        let _new_guard = self.lock(new)?;
        self.ensure_not_running(old)?;
        let target = self.paths.container_dir(new);
        if target.symlink_metadata().is_ok() {
            return Err(EngineError::AlreadyExists(new.to_string()));
        }
        crate::mounts::unmount_all_under(old, &self.paths.container_dir(old))?;
        fs::rename(self.paths.container_dir(old), &target)
            .context(|| format!("cannot rename container '{old}' to '{new}'"))?;
        let old_state = self.paths.state_dir(old);
        if old_state.exists() {
            let _ = fs::rename(&old_state, self.paths.state_dir(new));
        }
        Ok(())
    }

    /// Delete a container. Anything mounted under it is unmounted first; if a mount cannot be
    /// released the removal stops before deleting anything, so host files behind a bind mount
    /// are never reached.
    pub fn remove(&self, name: &str, reporter: &dyn Reporter) -> Result<u64, EngineError> {
        self.require(name)?;
        let _guard = self.lock(name)?;
        // As the spec says: sessions are ended and their mounts released before deletion.
        // New sessions cannot start meanwhile, because they refuse while the lock is held.
        if self.running(name)?.is_running() {
            let stopped =
                cd_runtime::unmount(&self.paths.state_dir(name), &self.paths.rootfs(name))
                    .map_err(|e| {
                        EngineError::Other(format!(
                            "cannot stop container '{name}' before removing it: {e}"
                        ))
                    })?;
            reporter.info(&crate::session::describe_stop(name, "stopped", &stopped));
            self.ensure_not_running(name)?;
        }
        let dir = self.paths.container_dir(name);
        let released = crate::mounts::unmount_all_under(name, &dir)?;
        if released > 0 {
            reporter.info(&format!(
                "released {released} leftover mount(s) under '{name}'"
            ));
        }
        // One rename takes the container away whole; deleting the files can then be cut short
        // (Ctrl-C, a crash) without leaving a half container that still lists and logs in.
        let doomed = self.paths.removing(name);
        if doomed.symlink_metadata().is_ok() {
            cd_rootfs::remove_tree(&doomed, &mut |_| {})
                .context(|| format!("cannot clear stale {}", doomed.display()))?;
        }
        std::fs::rename(&dir, &doomed).context(|| format!("cannot remove container '{name}'"))?;
        let shown = |p: &Path| match p.strip_prefix(&doomed) {
            Ok(rel) => dir.join(rel),
            Err(_) => p.to_path_buf(),
        };
        let stats = cd_rootfs::remove_tree(&doomed, &mut |p: &Path| {
            reporter.verbose(&format!("removed {}", shown(p).display()))
        })
        .context(|| format!("cannot remove container '{name}'"))?;
        let state = self.paths.state_dir(name);
        if state.exists() {
            let _ = fs::remove_dir_all(&state);
        }
        Ok(stats.bytes)
    }
}

/// `Some(holder)` when someone holds a lock on `path`; never creates the file.
fn probe_held(path: &Path) -> Option<String> {
    let file = fs::File::open(path).ok()?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => None,
        Err(_) => Some(describe_holder(path)),
    }
}
