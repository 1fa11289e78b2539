//! `copy [-r] [-m] SRC DEST`, with cp(1)'s rules for where the copy lands: into DEST when it is
//! an existing directory (or ends with `/`), as DEST otherwise.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use crate::inode_walk::{self, InodeKind, InodeMeta};

use super::ops;
use super::side::Side;
use super::{
    base_name, child_rel, CopyOptions, Location, Start, TransferError, TransferEvent,
    TransferStats, Walk,
};

pub fn copy(
    src: &Location,
    dst: &Location,
    opts: &CopyOptions,
    on_event: &mut dyn FnMut(TransferEvent<'_>),
) -> Result<TransferStats, TransferError> {
    let Start {
        src_side,
        dst_side,
        src_at,
        src_meta,
        mut walk,
    } = Start::new(src, dst, opts.owner, opts.cancel, on_event)?;
    // Set once the destination is known (into a directory, or as the named path).
    walk.dst_base = String::new();
    let src_name = src_at.name.clone();
    if src_meta.kind == InodeKind::Dir && !opts.recursive {
        return Err(TransferError::Refused(format!(
            "'{}' is a directory; copy it with -r",
            src.display()
        )));
    }
    if opts.move_source && src_name.is_none() {
        return Err(TransferError::Refused(format!(
            "cannot move '{}': name a file or directory below it",
            src.display()
        )));
    }

    // The destination: into an existing directory, or as the named path.
    let dst_raw = dst.path().as_os_str().to_string_lossy();
    let into_dir = match dst_side.open_dir(dst.path()) {
        Ok(fd) => Some(fd),
        Err(e) if e.kind() == io::ErrorKind::NotFound && dst_raw.ends_with('/') => Some(
            dst_side
                .mkdir_all(dst.path())
                .map_err(TransferError::io(dst.display()))?,
        ),
        Err(_) => None,
    };
    let (dst_dir, dst_name) = match into_dir {
        Some(fd) => {
            let name = base_name(src.path()).ok_or_else(|| {
                TransferError::Refused(format!(
                    "'{}' has no name to copy under; give the destination's full path",
                    src.display()
                ))
            })?;
            walk.dst_base = super::join_display(&dst.display(), name.as_bytes());
            (fd, name)
        }
        None => {
            let at = dst_side
                .locate_creating(dst.path())
                .map_err(TransferError::io(dst.display()))?;
            let name = at.name.ok_or_else(|| {
                TransferError::Refused(format!("'{}' is not a usable name", dst.display()))
            })?;
            walk.dst_base = dst.display();
            (at.dir, name)
        }
    };

    match &src_name {
        // A top-level symlink is followed (inside the container) unless copying recursively,
        // as cp does.
        Some(name) if src_meta.kind == InodeKind::Symlink && !opts.recursive => {
            let mut file = src_side
                .open_file_follow(src.path())
                .map_err(TransferError::io(src.display()))?;
            let meta =
                inode_walk::stat_fd(file.as_fd()).map_err(TransferError::io(src.display()))?;
            if meta.kind == InodeKind::Dir {
                return Err(TransferError::Refused(format!(
                    "'{}' leads to a directory; copy it with -r",
                    src.display()
                )));
            }
            if meta.kind != InodeKind::File {
                return Err(TransferError::Refused(format!(
                    "'{}' leads to a special file, which copy does not transfer",
                    src.display()
                )));
            }
            let _ = name;
            put_file(&mut walk, dst_dir.as_fd(), &dst_name, &mut file, &meta, b"")?;
        }
        Some(name) => copy_node(
            &mut walk,
            opts,
            src_at.dir.as_fd(),
            name,
            &src_meta,
            dst_dir.as_fd(),
            &dst_name,
            b"",
        )?,
        None => copy_dir(
            &mut walk,
            opts,
            src_at.dir.as_fd(),
            &src_meta,
            dst_dir.as_fd(),
            &dst_name,
            b"",
        )?,
    }

    if opts.move_source {
        if let Some(name) = &src_name {
            let limit = walk.src_limit;
            ops::remove_tree(src_at.dir.as_fd(), name, limit.as_ref())
                .map_err(TransferError::io(src.display()))?;
            let shown = src.display();
            walk.event(TransferEvent::RemovedSource(&shown));
        }
    }
    Ok(walk.stats)
}

#[allow(clippy::too_many_arguments)]
fn copy_node(
    walk: &mut Walk<'_>,
    opts: &CopyOptions,
    src_dir: BorrowedFd<'_>,
    src_name: &CStr,
    meta: &InodeMeta,
    dst_dir: BorrowedFd<'_>,
    dst_name: &CStr,
    rel: &[u8],
) -> Result<(), TransferError> {
    walk.check_cancel()?;
    match meta.kind {
        InodeKind::File => {
            let mut file = inode_walk::open_file_at(src_dir, src_name)
                .map_err(TransferError::io(walk.src_display(rel)))?;
            put_file(walk, dst_dir, dst_name, &mut file, meta, rel)
        }
        InodeKind::Symlink => {
            let target = ops::readlink(src_dir, src_name)
                .map_err(TransferError::io(walk.src_display(rel)))?;
            refuse_dir_in_the_way(walk, dst_dir, dst_name, rel)?;
            ops::replace_symlink(dst_dir, dst_name, &target, meta.mtime, walk.owner)
                .map_err(TransferError::io(walk.dst_display(rel)))?;
            walk.copied(rel, 0);
            Ok(())
        }
        InodeKind::Dir => {
            let fd = inode_walk::open_dir_at(src_dir, src_name)
                .map_err(TransferError::io(walk.src_display(rel)))?;
            copy_dir(walk, opts, fd.as_fd(), meta, dst_dir, dst_name, rel)
        }
        InodeKind::Fifo | InodeKind::CharDevice | InodeKind::BlockDevice | InodeKind::Socket => {
            walk.skipped(rel, "special file");
            Ok(())
        }
    }
}

/// Copy the directory open as `src` to `dst_name` in `dst_dir`.
fn copy_dir(
    walk: &mut Walk<'_>,
    opts: &CopyOptions,
    src: BorrowedFd<'_>,
    meta: &InodeMeta,
    dst_dir: BorrowedFd<'_>,
    dst_name: &CStr,
    rel: &[u8],
) -> Result<(), TransferError> {
    let (dst, created) = ops::ensure_dir(dst_dir, dst_name, false, None).map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            TransferError::Refused(format!(
                "cannot overwrite non-directory '{}' with a directory",
                walk.dst_display(rel)
            ))
        } else {
            TransferError::io(walk.dst_display(rel))(e)
        }
    })?;
    let dst_meta =
        inode_walk::stat_fd(dst.as_fd()).map_err(TransferError::io(walk.dst_display(rel)))?;
    walk.dst_dirs.insert((dst_meta.dev, dst_meta.ino));
    if created {
        walk.copied(rel, 0);
    }
    for name in inode_walk::list_dir(src).map_err(TransferError::io(walk.src_display(rel)))? {
        let child = child_rel(rel, &name);
        let Some(child_meta) =
            ops::lstat(src, &name).map_err(TransferError::io(walk.src_display(&child)))?
        else {
            continue;
        };
        if skip_source(walk, &child_meta, &child) {
            continue;
        }
        copy_node(
            walk,
            opts,
            src,
            &name,
            &child_meta,
            dst.as_fd(),
            &name,
            &child,
        )?;
    }
    ops::finish_dir(dst.as_fd(), meta.perm, meta.mtime, walk.owner)
        .map_err(TransferError::io(walk.dst_display(rel)))
}

/// Mount points in a container source and the destination tree itself are not entered.
pub(super) fn skip_source(walk: &mut Walk<'_>, meta: &InodeMeta, rel: &[u8]) -> bool {
    let why = if walk
        .src_limit
        .as_ref()
        .is_some_and(|l| ops::crosses_mount(l, meta))
    {
        "mount point"
    } else if meta.kind == InodeKind::Dir && walk.dst_dirs.contains(&(meta.dev, meta.ino)) {
        "the destination itself"
    } else {
        return false;
    };
    walk.skipped(rel, why);
    true
}

fn refuse_dir_in_the_way(
    walk: &Walk<'_>,
    dst_dir: BorrowedFd<'_>,
    dst_name: &CStr,
    rel: &[u8],
) -> Result<(), TransferError> {
    let existing =
        ops::lstat(dst_dir, dst_name).map_err(TransferError::io(walk.dst_display(rel)))?;
    if existing.is_some_and(|m| m.kind == InodeKind::Dir) {
        return Err(TransferError::Refused(format!(
            "cannot overwrite directory '{}' with a non-directory",
            walk.dst_display(rel)
        )));
    }
    Ok(())
}

fn put_file(
    walk: &mut Walk<'_>,
    dst_dir: BorrowedFd<'_>,
    dst_name: &CStr,
    file: &mut std::fs::File,
    meta: &InodeMeta,
    rel: &[u8],
) -> Result<(), TransferError> {
    refuse_dir_in_the_way(walk, dst_dir, dst_name, rel)?;
    ops::write_file_atomic(dst_dir, dst_name, file, meta, walk.owner, walk.cancel)
        .map_err(walk.write_error(rel))?;
    walk.copied(rel, meta.size);
    Ok(())
}

impl Side {
    /// Open the file at `path` for reading, following symlinks (inside the root for a
    /// container).
    pub(crate) fn open_file_follow(&self, path: &std::path::Path) -> io::Result<std::fs::File> {
        match self {
            Side::Host => {
                use std::os::unix::fs::OpenOptionsExt;
                std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(path)
            }
            Side::Container { root, .. } => {
                let p = if path.is_absolute() {
                    path.to_path_buf()
                } else {
                    std::path::Path::new("/").join(path)
                };
                root.open_subpath(
                    p,
                    pathrs::flags::OpenFlags::O_RDONLY | pathrs::flags::OpenFlags::O_NONBLOCK,
                )
                .map_err(super::side::pathrs_io)
            }
        }
    }
}
