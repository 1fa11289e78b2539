//! `sync [-c] [-d] SRC DEST`: make DEST hold what SRC holds, writing only what differs.
//!
//! A directory SRC is mirrored *into* DEST (its contents, like `rsync SRC/ DEST`). A regular file
//! is the same when size and whole-second mtime match (or size and CRC32 with `-c`); a symlink
//! when its target matches. Only the permission bits and, with `--chown`, the owner are fixed
//! on files that are otherwise the same. Directory mtimes are restored silently, so a second
//! sync of an unchanged tree writes and reports nothing.

use std::collections::HashSet;
use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use crate::inode_walk::{self, InodeKind, InodeMeta};

use super::copy::skip_source;
use super::ops;
use super::{
    base_name, child_rel, Location, Start, SyncOptions, TransferError, TransferEvent,
    TransferStats, Walk,
};

pub fn sync(
    src: &Location,
    dst: &Location,
    opts: &SyncOptions,
    on_event: &mut dyn FnMut(TransferEvent<'_>),
) -> Result<TransferStats, TransferError> {
    let Start {
        dst_side,
        src_at,
        src_meta,
        mut walk,
        ..
    } = Start::new(src, dst, opts.owner, opts.cancel, on_event)?;

    if src_meta.kind == InodeKind::Dir {
        let src_dir = match &src_at.name {
            Some(name) => inode_walk::open_dir_at(src_at.dir.as_fd(), name)
                .map_err(TransferError::io(src.display()))?,
            None => src_at.dir,
        };
        let dst_dir = dst_side
            .mkdir_all(dst.path())
            .map_err(TransferError::io(dst.display()))?;
        sync_dir(
            &mut walk,
            opts,
            src_dir.as_fd(),
            &src_meta,
            dst_dir.as_fd(),
            b"",
        )?;
        return Ok(walk.stats);
    }

    let Some(src_name) = src_at.name else {
        return Err(TransferError::Refused(format!(
            "'{}' is not a file or directory",
            src.display()
        )));
    };
    // A single file lands in DEST when DEST is a directory, as DEST otherwise.
    let (dst_dir, dst_name): (_, CString) = match dst_side.open_dir(dst.path()) {
        Ok(fd) => {
            let name = base_name(src.path()).unwrap_or_else(|| src_name.clone());
            walk.dst_base = super::join_display(&dst.display(), name.as_bytes());
            (fd, name)
        }
        Err(_) => {
            let at = dst_side
                .locate_creating(dst.path())
                .map_err(TransferError::io(dst.display()))?;
            let name = at.name.ok_or_else(|| {
                TransferError::Refused(format!("'{}' is not a usable name", dst.display()))
            })?;
            (at.dir, name)
        }
    };
    sync_node(
        &mut walk,
        opts,
        src_at.dir.as_fd(),
        &src_name,
        &src_meta,
        dst_dir.as_fd(),
        &dst_name,
        b"",
    )?;
    Ok(walk.stats)
}

fn sync_dir(
    walk: &mut Walk<'_>,
    opts: &SyncOptions,
    src: BorrowedFd<'_>,
    src_meta: &InodeMeta,
    dst: BorrowedFd<'_>,
    rel: &[u8],
) -> Result<(), TransferError> {
    let dst_meta = inode_walk::stat_fd(dst).map_err(TransferError::io(walk.dst_display(rel)))?;
    walk.dst_dirs.insert((dst_meta.dev, dst_meta.ino));
    let names = inode_walk::list_dir(src).map_err(TransferError::io(walk.src_display(rel)))?;
    for name in &names {
        let child = child_rel(rel, name);
        let Some(meta) =
            ops::lstat(src, name).map_err(TransferError::io(walk.src_display(&child)))?
        else {
            continue;
        };
        if skip_source(walk, &meta, &child) {
            continue;
        }
        sync_node(walk, opts, src, name, &meta, dst, name, &child)?;
    }
    if opts.delete {
        let keep: HashSet<&CStr> = names.iter().map(CString::as_c_str).collect();
        for name in inode_walk::list_dir(dst).map_err(TransferError::io(walk.dst_display(rel)))? {
            if keep.contains(name.as_c_str()) || name.to_bytes().starts_with(ops::TEMP_PREFIX) {
                continue;
            }
            let child = child_rel(rel, &name);
            let limit = walk.dst_limit;
            ops::remove_tree(dst, &name, limit.as_ref())
                .map_err(TransferError::io(walk.dst_display(&child)))?;
            walk.stats.deleted += 1;
            let shown = walk.dst_display(&child);
            walk.event(TransferEvent::Deleted(&shown));
        }
    }
    // Mode and owner are real changes; the mtime only moved because entries were written.
    let now = inode_walk::stat_fd(dst).map_err(TransferError::io(walk.dst_display(rel)))?;
    let attrs_differ =
        now.perm != src_meta.perm || walk.owner.is_some_and(|o| !o.matches(now.uid, now.gid));
    if attrs_differ || now.mtime != src_meta.mtime {
        ops::finish_dir(dst, src_meta.perm, src_meta.mtime, walk.owner)
            .map_err(TransferError::io(walk.dst_display(rel)))?;
    }
    if attrs_differ && !rel.is_empty() {
        walk.updated(rel);
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn sync_node(
    walk: &mut Walk<'_>,
    opts: &SyncOptions,
    src_dir: BorrowedFd<'_>,
    src_name: &CStr,
    meta: &InodeMeta,
    dst_dir: BorrowedFd<'_>,
    dst_name: &CStr,
    rel: &[u8],
) -> Result<(), TransferError> {
    let existing =
        ops::lstat(dst_dir, dst_name).map_err(TransferError::io(walk.dst_display(rel)))?;
    let dst_err = |walk: &Walk<'_>| TransferError::io(walk.dst_display(rel));
    match meta.kind {
        InodeKind::File => {
            let mut file = inode_walk::open_file_at(src_dir, src_name)
                .map_err(TransferError::io(walk.src_display(rel)))?;
            let same = match &existing {
                Some(d) if d.kind == InodeKind::File && d.size == meta.size => {
                    if opts.checksum {
                        let mut theirs =
                            inode_walk::open_file_at(dst_dir, dst_name).map_err(dst_err(walk))?;
                        let a = ops::crc32_of(&mut file)
                            .map_err(TransferError::io(walk.src_display(rel)))?;
                        let b = ops::crc32_of(&mut theirs).map_err(dst_err(walk))?;
                        std::io::Seek::rewind(&mut file)
                            .map_err(TransferError::io(walk.src_display(rel)))?;
                        a == b
                    } else {
                        d.mtime == meta.mtime
                    }
                }
                _ => false,
            };
            if same {
                let d = existing.as_ref().copied();
                return fix_file_attrs(walk, dst_dir, dst_name, meta, d, rel);
            }
            if existing.is_some_and(|d| d.kind == InodeKind::Dir) {
                let limit = walk.dst_limit;
                ops::remove_tree(dst_dir, dst_name, limit.as_ref()).map_err(dst_err(walk))?;
            }
            ops::write_file_atomic(dst_dir, dst_name, &mut file, meta, walk.owner, walk.cancel)
                .map_err(walk.write_error(rel))?;
            walk.copied(rel, meta.size);
        }
        InodeKind::Symlink => {
            let target = ops::readlink(src_dir, src_name)
                .map_err(TransferError::io(walk.src_display(rel)))?;
            if let Some(d) = existing.filter(|d| d.kind == InodeKind::Symlink) {
                let theirs = ops::readlink(dst_dir, dst_name).map_err(dst_err(walk))?;
                if theirs == target {
                    if let Some(owner) = walk.owner.filter(|o| !o.matches(d.uid, d.gid)) {
                        ops::lchown(dst_dir, dst_name, owner).map_err(dst_err(walk))?;
                        walk.updated(rel);
                    }
                    return Ok(());
                }
            }
            if existing.is_some_and(|d| d.kind == InodeKind::Dir) {
                let limit = walk.dst_limit;
                ops::remove_tree(dst_dir, dst_name, limit.as_ref()).map_err(dst_err(walk))?;
            }
            ops::replace_symlink(dst_dir, dst_name, &target, meta.mtime, walk.owner)
                .map_err(dst_err(walk))?;
            walk.copied(rel, 0);
        }
        InodeKind::Dir => {
            let limit = walk.dst_limit;
            let (dst, created) =
                ops::ensure_dir(dst_dir, dst_name, true, limit.as_ref()).map_err(dst_err(walk))?;
            if created {
                walk.copied(rel, 0);
            }
            let src = inode_walk::open_dir_at(src_dir, src_name)
                .map_err(TransferError::io(walk.src_display(rel)))?;
            sync_dir(walk, opts, src.as_fd(), meta, dst.as_fd(), rel)?;
        }
        InodeKind::Fifo | InodeKind::CharDevice | InodeKind::BlockDevice | InodeKind::Socket => {
            walk.skipped(rel, "special file");
        }
    }
    Ok(())
}

/// Same content: bring mode and (with `--chown`) owner in line, reporting only when changed.
fn fix_file_attrs(
    walk: &mut Walk<'_>,
    dst_dir: BorrowedFd<'_>,
    dst_name: &CStr,
    meta: &InodeMeta,
    existing: Option<InodeMeta>,
    rel: &[u8],
) -> Result<(), TransferError> {
    let Some(d) = existing else { return Ok(()) };
    let owner = walk.owner.filter(|o| !o.matches(d.uid, d.gid));
    if d.perm == meta.perm && owner.is_none() {
        return Ok(());
    }
    let file = inode_walk::open_file_at(dst_dir, dst_name)
        .map_err(TransferError::io(walk.dst_display(rel)))?;
    let res = (|| -> io::Result<()> {
        if let Some(o) = owner {
            rustix::fs::fchown(
                &file,
                o.uid.map(rustix::fs::Uid::from_raw),
                o.gid.map(rustix::fs::Gid::from_raw),
            )?;
        }
        rustix::fs::fchmod(&file, rustix::fs::Mode::from_raw_mode(meta.perm))?;
        Ok(())
    })();
    res.map_err(TransferError::io(walk.dst_display(rel)))?;
    walk.updated(rel);
    Ok(())
}
