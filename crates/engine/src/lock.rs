//! Advisory locks (flock) that guard containers and the cache against concurrent changes.
//!
//! flock locks vanish with the process that held them, so a crash can never leave a container
//! locked. The holder's PID is written into the lock file only to make "busy" errors readable.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};

use crate::error::{EngineError, IoContext};

#[derive(Debug)]
pub struct FileLock {
    file: File,
    path: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    Shared,
    Exclusive,
}

impl FileLock {
    /// Take the lock without waiting; `Ok(None)` when someone else holds it.
    pub fn try_acquire(path: &Path, mode: LockMode) -> Result<Option<FileLock>, EngineError> {
        let file = open_lock_file(path)?;
        let op = match mode {
            LockMode::Shared => FlockOperation::NonBlockingLockShared,
            LockMode::Exclusive => FlockOperation::NonBlockingLockExclusive,
        };
        match flock(&file, op) {
            Ok(()) => {
                let mut lock = FileLock {
                    file,
                    path: path.to_path_buf(),
                };
                if mode == LockMode::Exclusive {
                    lock.record_holder();
                }
                Ok(Some(lock))
            }
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
            Err(e) => Err(EngineError::io(
                format!("cannot lock {}", path.display()),
                e.into(),
            )),
        }
    }

    /// Take the lock, waiting for the current holder to let go.
    pub fn acquire(path: &Path, mode: LockMode) -> Result<FileLock, EngineError> {
        let file = open_lock_file(path)?;
        let op = match mode {
            LockMode::Shared => FlockOperation::LockShared,
            LockMode::Exclusive => FlockOperation::LockExclusive,
        };
        flock(&file, op)
            .map_err(|e| EngineError::io(format!("cannot lock {}", path.display()), e.into()))?;
        let mut lock = FileLock {
            file,
            path: path.to_path_buf(),
        };
        if mode == LockMode::Exclusive {
            lock.record_holder();
        }
        Ok(lock)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn record_holder(&mut self) {
        // Best effort: the PID only decorates messages, the flock is what protects.
        let _ = self.file.set_len(0);
        let _ = self.file.seek(SeekFrom::Start(0));
        let _ = write!(self.file, "{}", std::process::id());
    }
}

/// Describe who holds a lock file, for "busy" messages: `pid 1234` or `another command`.
pub fn describe_holder(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut f) = File::open(path) {
        let _ = f.read_to_string(&mut text);
    }
    match text.trim().parse::<u32>() {
        Ok(pid) if Path::new(&format!("/proc/{pid}")).exists() => format!("pid {pid}"),
        _ => "another command".to_string(),
    }
}

fn open_lock_file(path: &Path) -> Result<File, EngineError> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).context(|| format!("cannot create {}", dir.display()))?;
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(path)
        .context(|| format!("cannot open lock file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_lock_excludes_a_second_taker() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("locks/c.lock");
        let held = FileLock::try_acquire(&p, LockMode::Exclusive)
            .unwrap()
            .unwrap();
        assert!(FileLock::try_acquire(&p, LockMode::Exclusive)
            .unwrap()
            .is_none());
        assert!(FileLock::try_acquire(&p, LockMode::Shared)
            .unwrap()
            .is_none());
        assert_eq!(describe_holder(&p), format!("pid {}", std::process::id()));
        drop(held);
        assert!(FileLock::try_acquire(&p, LockMode::Exclusive)
            .unwrap()
            .is_some());
    }

    #[test]
    fn shared_locks_coexist_but_block_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.lock");
        let a = FileLock::try_acquire(&p, LockMode::Shared)
            .unwrap()
            .unwrap();
        let b = FileLock::try_acquire(&p, LockMode::Shared).unwrap();
        assert!(b.is_some());
        assert!(FileLock::try_acquire(&p, LockMode::Exclusive)
            .unwrap()
            .is_none());
        drop((a, b));
        assert!(FileLock::try_acquire(&p, LockMode::Exclusive)
            .unwrap()
            .is_some());
    }
}
