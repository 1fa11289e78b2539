//! Interim tree removal and sizing for the store, used until the rootfs crate's fd-based
//! versions land. Both refuse to cross into another filesystem.

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

#[derive(Debug, Default, Clone, Copy)]
pub struct RemoveStats {
    pub files: u64,
    pub bytes: u64,
}

/// Delete `path` and everything below it; chmod-000 directories are opened up first.
pub fn remove_tree(path: &Path, on_file: &mut dyn FnMut(&Path)) -> io::Result<RemoveStats> {
    let top = fs::symlink_metadata(path)?;
    let mut stats = RemoveStats::default();
    remove_inner(path, top.dev(), &mut stats, on_file)?;
    Ok(stats)
}

fn remove_inner(
    path: &Path,
    dev: u64,
    stats: &mut RemoveStats,
    on_file: &mut dyn FnMut(&Path),
) -> io::Result<()> {
    let meta = fs::symlink_metadata(path)?;
    if meta.is_dir() {
        if meta.dev() != dev {
            return Err(io::Error::other(format!(
                "{} is another filesystem (a mount?); not deleting through it",
                path.display()
            )));
        }
        if meta.permissions().mode() & 0o700 != 0o700 {
            fs::set_permissions(path, fs::Permissions::from_mode(0o700))?;
        }
        for entry in fs::read_dir(path)? {
            remove_inner(&entry?.path(), dev, stats, on_file)?;
        }
        fs::remove_dir(path)?;
    } else {
        stats.bytes += meta.blocks() * 512;
        stats.files += 1;
        fs::remove_file(path)?;
    }
    on_file(path);
    Ok(())
}

/// Disk usage of a tree (st_blocks), hard links counted once, one filesystem only.
pub fn dir_size(path: &Path) -> u64 {
    let Ok(top) = fs::symlink_metadata(path) else {
        return 0;
    };
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(meta) = fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.dev() != top.dev() {
            continue;
        }
        if meta.nlink() > 1 && !meta.is_dir() && !seen.insert((meta.dev(), meta.ino())) {
            continue;
        }
        total += meta.blocks() * 512;
        if meta.is_dir() {
            if let Ok(rd) = fs::read_dir(&p) {
                stack.extend(rd.filter_map(Result::ok).map(|e| e.path()));
            }
        }
    }
    total
}
