//! The download cache: layer blobs, manifests, and the lock that keeps `clear-cache` from
//! pulling blobs out from under an install.

use std::fs;
use std::path::PathBuf;

use crate::error::{EngineError, IoContext};
use crate::lock::{FileLock, LockMode};
use crate::paths::StorePaths;
use crate::report::Reporter;

/// Installs hold this shared; `clear-cache` takes it exclusively.
pub fn cache_lock(paths: &StorePaths, mode: LockMode) -> Result<FileLock, EngineError> {
    let path = paths.locks().join("cache.lock");
    match FileLock::try_acquire(&path, mode)? {
        Some(l) => Ok(l),
        None if mode == LockMode::Shared => FileLock::acquire(&path, mode),
        None => Err(EngineError::Other(
            "the cache is in use by an install or build; retry when it has finished".to_string(),
        )),
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct ClearStats {
    pub files: u64,
    pub bytes: u64,
}

/// Delete everything under the cache directory.
pub fn clear_cache(paths: &StorePaths, reporter: &dyn Reporter) -> Result<ClearStats, EngineError> {
    let _lock = cache_lock(paths, LockMode::Exclusive)?;
    let mut stats = ClearStats::default();
    let entries = match fs::read_dir(&paths.cache) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(stats),
        Err(e) => {
            return Err(EngineError::io(
                format!("cannot read {}", paths.cache.display()),
                e,
            ))
        }
    };
    let tops: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    for top in tops {
        let meta = top
            .symlink_metadata()
            .context(|| format!("cannot stat {}", top.display()))?;
        if meta.is_dir() {
            let s = cd_rootfs::remove_tree(&top, &mut |p| {
                reporter.verbose(&format!("removed {}", p.display()))
            })
            .context(|| format!("cannot remove {}", top.display()))?;
            stats.files += s.files;
            stats.bytes += s.bytes;
        } else {
            stats.bytes += meta.len();
            stats.files += 1;
            fs::remove_file(&top).context(|| format!("cannot remove {}", top.display()))?;
            reporter.verbose(&format!("removed {}", top.display()));
        }
    }
    Ok(stats)
}
