//! Deleting a container directory without ever leaving it.
//!
//! Deletion goes name by name relative to open directory fds (`unlinkat`, `openat` with
//! `O_NOFOLLOW`), so a symlink swapped in mid-way cannot redirect it to the host. Every inode is
//! checked against the mount of the tree's parent before anything is deleted below it: a
//! leftover `/proc` or a bind-mounted home stops the removal with an error naming it. Deleting
//! through a bind mount would delete the host's files, and since Linux 3.18 `unlink` of a mount
//! point from another mount namespace even succeeds, so relying on `EBUSY` is not enough.
//! Directories made unreadable (`chmod 000`) and immutable or append-only inodes are made
//! deletable first.

use std::ffi::{CStr, OsStr};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, IFlags, Mode, OFlags, CWD};

use crate::inode_walk::{list_dir, open_dir_at, stat_fd, InodeKind, InodeMeta};

/// What [`remove_tree`] deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RemoveStats {
    /// Non-directory inodes unlinked.
    pub files: u64,
    pub dirs: u64,
    /// Disk space given back (`st_blocks * 512`, like `du`): a hard-linked file counts only when
    /// its last link goes.
    pub bytes: u64,
}

/// Delete `path` and everything below it. `on_file` sees each non-directory before it is
/// unlinked. A mount point anywhere inside (or `path` itself being one) is an error of kind
/// `ResourceBusy` that names it; nothing below a mount point is touched.
pub fn remove_tree(path: &Path, on_file: &mut dyn FnMut(&Path)) -> io::Result<RemoveStats> {
    let name = match path.file_name() {
        Some(n)
            if path
                .components()
                .next_back()
                .is_some_and(|c| c.as_os_str() == n) =>
        {
            n
        }
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "refusing to remove '{}': not a plain directory path",
                    path.display()
                ),
            ))
        }
    };
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // The parent is the store's own directory: trusted, so following symlinks up to it is fine.
    let parent_fd = rustix::fs::openat(
        CWD,
        parent,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let limit = stat_fd(parent_fd.as_fd())?;
    let name = std::ffi::CString::new(name.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
    let mut remover = Remover {
        limit,
        shown: path.to_path_buf(),
        stats: RemoveStats::default(),
        on_file,
    };
    remover.remove_at(parent_fd.as_fd(), &name)?;
    Ok(remover.stats)
}

/// Remove `name` under `dir` (recursively, never crossing a mount), for the layer applier.
pub(crate) fn remove_at(dir: BorrowedFd<'_>, name: &CStr, shown: &Path) -> io::Result<()> {
    let limit = stat_fd(dir)?;
    let mut remover = Remover {
        limit,
        shown: shown.to_path_buf(),
        stats: RemoveStats::default(),
        on_file: &mut |_| {},
    };
    remover.remove_at(dir, name)
}

struct Remover<'a> {
    /// The mount every deleted inode must be on.
    limit: InodeMeta,
    /// The host path of the inode being removed, for messages and `on_file`.
    shown: PathBuf,
    stats: RemoveStats,
    on_file: &'a mut dyn FnMut(&Path),
}

impl Remover<'_> {
    fn remove_at(&mut self, dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
        let (meta, blocks) = match stat_with_blocks(dir, name) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(self.annotate(e)),
        };
        if other_mount(&self.limit, &meta) {
            return Err(self.mount_point());
        }
        if meta.kind == InodeKind::Dir {
            let child = self.open_child_dir(dir, name, &meta)?;
            for entry in list_dir(child.as_fd()).map_err(|e| self.annotate(e))? {
                self.shown.push(OsStr::from_bytes(entry.as_bytes()));
                let res = self.remove_at(child.as_fd(), &entry);
                self.shown.pop();
                res?;
            }
            drop(child);
            self.unlink(dir, name, AtFlags::REMOVEDIR)?;
            self.stats.dirs += 1;
            self.stats.bytes += blocks * 512;
        } else {
            (self.on_file)(&self.shown);
            self.unlink(dir, name, AtFlags::empty())?;
            self.stats.files += 1;
            if meta.nlink <= 1 {
                self.stats.bytes += blocks * 512;
            }
        }
        Ok(())
    }

    /// Open a subdirectory to empty it, making it readable first if it was `chmod 000`, and make
    /// sure what we opened is what we checked (not a mount or a symlink swapped in since).
    fn open_child_dir(
        &self,
        dir: BorrowedFd<'_>,
        name: &CStr,
        meta: &InodeMeta,
    ) -> io::Result<OwnedFd> {
        let fd = match open_dir_at(dir, name) {
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                // Only reached without CAP_DAC_OVERRIDE. chmodat follows symlinks, but the
                // O_NOFOLLOW open below fails on one and the identity check catches a swap.
                rustix::fs::chmodat(dir, name, Mode::from_raw_mode(0o700), AtFlags::empty())
                    .map_err(|e| self.annotate(e.into()))?;
                open_dir_at(dir, name)
            }
            other => other,
        }
        .map_err(|e| self.annotate(e))?;
        let opened = stat_fd(fd.as_fd()).map_err(|e| self.annotate(e))?;
        if opened.ino != meta.ino || opened.dev != meta.dev || other_mount(&self.limit, &opened) {
            return Err(self.mount_point());
        }
        Ok(fd)
    }

    fn unlink(&self, dir: BorrowedFd<'_>, name: &CStr, flags: AtFlags) -> io::Result<()> {
        let first = match rustix::fs::unlinkat(dir, name, flags) {
            Ok(()) => return Ok(()),
            Err(e) => io::Error::from(e),
        };
        match first.raw_os_error() {
            // No write permission on the directory (non-root), or an immutable or append-only
            // flag on the directory or the inode: lift what we can and try once more.
            Some(libc::EACCES) | Some(libc::EPERM) => {
                if let Ok(m) = stat_fd(dir) {
                    let _ = rustix::fs::fchmod(dir, Mode::from_raw_mode(m.perm | 0o700));
                }
                clear_protect_flags(dir);
                if let Ok(fd) = rustix::fs::openat(
                    dir,
                    name,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
                    Mode::empty(),
                ) {
                    clear_protect_flags(fd.as_fd());
                }
                rustix::fs::unlinkat(dir, name, flags).map_err(|_| self.annotate(first))
            }
            _ => Err(self.annotate(first)),
        }
    }

    fn mount_point(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::ResourceBusy,
            format!(
                "'{}' is a mount point; unmount it first (nothing below it was deleted)",
                self.shown.display()
            ),
        )
    }

    fn annotate(&self, err: io::Error) -> io::Error {
        io::Error::new(
            err.kind(),
            format!("cannot remove '{}': {err}", self.shown.display()),
        )
    }
}

/// [`crate::inode_walk::stat_at`] plus the allocated 512-byte blocks, in the same `statx` call.
fn stat_with_blocks(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<(InodeMeta, u64)> {
    crate::inode_walk::stat_with_blocks(
        dir,
        name,
        AtFlags::SYMLINK_NOFOLLOW | AtFlags::NO_AUTOMOUNT,
    )
}

/// Clear `FS_IMMUTABLE_FL` and `FS_APPEND_FL` (`chattr -ia`); best effort, as not every
/// filesystem has them.
fn clear_protect_flags(fd: BorrowedFd<'_>) {
    if let Ok(flags) = rustix::fs::ioctl_getflags(fd) {
        let protect = IFlags::IMMUTABLE | IFlags::APPEND;
        if flags.intersects(protect) {
            let _ = rustix::fs::ioctl_setflags(fd, flags - protect);
        }
    }
}

/// The mount id decides when the kernel reports it (5.8+): a btrfs subvolume has its own
/// `st_dev` but is no mount, while a bind mount of the same filesystem keeps `st_dev`.
fn other_mount(limit: &InodeMeta, meta: &InodeMeta) -> bool {
    match (limit.mnt_id, meta.mnt_id) {
        (Some(a), Some(b)) => a != b,
        _ => limit.dev != meta.dev,
    }
}
