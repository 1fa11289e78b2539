//! A container under construction: built in `containers/.staging-<name>` and renamed into
//! place only when complete. Dropping it unfinished removes it, so a failed or interrupted
//! install or restore leaves no half container behind.

use std::path::{Path, PathBuf};

use crate::error::{EngineError, IoContext};
use crate::paths::StorePaths;

#[derive(Debug)]
pub struct Staging {
    dir: PathBuf,
    target: PathBuf,
    done: bool,
}

impl Staging {
    /// Start a fresh staging directory for `name` (a leftover from a crash is cleared first).
    /// The caller must hold the container's lock.
    pub fn begin(paths: &StorePaths, name: &str) -> Result<Staging, EngineError> {
        let dir = paths.staging(name);
        if dir.symlink_metadata().is_ok() {
            crate::mounts::unmount_all_under(name, &dir)?;
            cd_rootfs::remove_tree(&dir, &mut |_| {})
                .context(|| format!("cannot clear stale {}", dir.display()))?;
        }
        std::fs::create_dir_all(dir.join("rootfs"))
            .context(|| format!("cannot create {}", dir.display()))?;
        Ok(Staging {
            dir,
            target: paths.container_dir(name),
            done: false,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// Move the finished container into place.
    pub fn commit(mut self) -> Result<PathBuf, EngineError> {
        if self.target.symlink_metadata().is_ok() {
            return Err(EngineError::AlreadyExists(
                self.target
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            ));
        }
        std::fs::rename(&self.dir, &self.target)
            .context(|| format!("cannot move {} into place", self.dir.display()))?;
        self.done = true;
        Ok(self.target.clone())
    }
}

impl Staging {
    /// Swap the finished container in for the existing one (`reset`). The old tree is moved
    /// aside first and deleted only after the new one is in place, so a failure in between
    /// never leaves the name without a container.
    pub fn replace(mut self, name: &str) -> Result<PathBuf, EngineError> {
        crate::mounts::unmount_all_under(name, &self.target)?;
        let aside = self.target.with_file_name(format!(".replaced-{name}"));
        if aside.symlink_metadata().is_ok() {
            cd_rootfs::remove_tree(&aside, &mut |_| {})
                .context(|| format!("cannot clear stale {}", aside.display()))?;
        }
        std::fs::rename(&self.target, &aside)
            .context(|| format!("cannot move {} aside", self.target.display()))?;
        if let Err(e) = std::fs::rename(&self.dir, &self.target) {
            let _ = std::fs::rename(&aside, &self.target);
            return Err(EngineError::io(
                format!("cannot move {} into place", self.dir.display()),
                e,
            ));
        }
        self.done = true;
        cd_rootfs::remove_tree(&aside, &mut |_| {})
            .context(|| format!("cannot remove the old tree {}", aside.display()))?;
        Ok(self.target.clone())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.done && self.dir.symlink_metadata().is_ok() {
            let _ = cd_rootfs::remove_tree(&self.dir, &mut |_| {});
        }
    }
}

/// Staging, set-aside and half-removed trees left by a run that was killed (SIGKILL, a second Ctrl-C, a
/// power cut) are removed by the next install or restore, once no one holds their container's lock.
pub fn sweep_abandoned(store: &crate::store::Store) {
    let Ok(entries) = std::fs::read_dir(store.paths.containers()) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        let Some(name) = file_name
            .strip_prefix(".staging-")
            .or_else(|| file_name.strip_prefix(".replaced-"))
            .or_else(|| file_name.strip_prefix(".removing-"))
        else {
            continue;
        };
        // Busy (our own name, or another run in progress): not abandoned.
        let Ok(_guard) = store.lock(name) else {
            continue;
        };
        let path = entry.path();
        if crate::mounts::unmount_all_under(name, &path).is_ok() {
            let _ = cd_rootfs::remove_tree(&path, &mut |_| {});
        }
    }
}
