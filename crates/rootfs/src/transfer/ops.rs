//! File operations relative to a directory fd, on one name, never following a symlink.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rustix::fs::{AtFlags, Mode, OFlags, Timespec, Timestamps};

use crate::inode_walk::{self, InodeKind, InodeMeta};

use super::Owner;

/// Temp names start with this so a `--delete` pass can recognise leftovers of an interrupted
/// sync, and so a half-written file never carries the final name.
pub(crate) const TEMP_PREFIX: &[u8] = b".~cd_sync-";

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// How much of a file is copied between two looks at the cancel flag.
const COPY_SLICE: u64 = 16 << 20;

fn temp_name() -> CString {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut name = TEMP_PREFIX.to_vec();
    name.extend_from_slice(format!("{}-{n}", std::process::id()).as_bytes());
    CString::new(name).unwrap_or_default()
}

/// `lstat` of `name` in `dir`; `None` when it does not exist.
pub(crate) fn lstat(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<Option<InodeMeta>> {
    match inode_walk::stat_at(dir, name) {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// `stat` of `name` in `dir`, following a final symlink only through `open_at_follow`.
pub(crate) fn readlink(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<CString> {
    Ok(rustix::fs::readlinkat(dir, name, Vec::new())?)
}

/// Write `src` as `name` in `dir` atomically: a temp file in the same directory gets the data,
/// owner, mode and mtime, then is renamed over `name`. Readers see the old or the new file,
/// never a mix; a failure leaves the old file untouched and removes the temp file.
pub(crate) fn write_file_atomic(
    dir: BorrowedFd<'_>,
    name: &CStr,
    src: &mut File,
    src_meta: &InodeMeta,
    owner: Option<Owner>,
    cancel: Option<&AtomicBool>,
) -> io::Result<()> {
    let tmp = temp_name();
    let result = (|| -> io::Result<()> {
        let fd = rustix::fs::openat(
            dir,
            &tmp,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )?;
        let mut out = File::from(fd);
        // io::copy between two files uses copy_file_range where the kernel allows it; in
        // slices, so that Ctrl-C is noticed within a big file.
        let mut copied = 0;
        loop {
            if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                return Err(io::Error::other("interrupted"));
            }
            let n = io::copy(&mut (&mut *src).take(COPY_SLICE), &mut out)?;
            copied += n;
            if n < COPY_SLICE {
                break;
            }
        }
        if copied != src_meta.size {
            return Err(io::Error::other("source changed size while it was copied"));
        }
        if let Some(owner) = owner {
            rustix::fs::fchown(&out, owner.uid.map(uid), owner.gid.map(gid))?;
        }
        // After chown, which clears setuid/setgid.
        rustix::fs::fchmod(&out, Mode::from_raw_mode(src_meta.perm))?;
        rustix::fs::futimens(&out, &times(src_meta.mtime))?;
        rustix::fs::renameat(dir, &tmp, dir, name)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = rustix::fs::unlinkat(dir, &tmp, AtFlags::empty());
    }
    result
}

/// Create the symlink `name -> target` in `dir`, atomically replacing whatever non-directory
/// was there.
pub(crate) fn replace_symlink(
    dir: BorrowedFd<'_>,
    name: &CStr,
    target: &CStr,
    mtime: i64,
    owner: Option<Owner>,
) -> io::Result<()> {
    let tmp = temp_name();
    let result = (|| -> io::Result<()> {
        rustix::fs::symlinkat(target, dir, &tmp)?;
        if let Some(owner) = owner {
            lchown(dir, &tmp, owner)?;
        }
        let _ = rustix::fs::utimensat(dir, &tmp, &times(mtime), AtFlags::SYMLINK_NOFOLLOW);
        rustix::fs::renameat(dir, &tmp, dir, name)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = rustix::fs::unlinkat(dir, &tmp, AtFlags::empty());
    }
    result
}

/// Change the owner of `name` itself, a symlink included (`AT_SYMLINK_NOFOLLOW`).
pub(crate) fn lchown(dir: BorrowedFd<'_>, name: &CStr, owner: Owner) -> io::Result<()> {
    rustix::fs::chownat(
        dir,
        name,
        owner.uid.map(uid),
        owner.gid.map(gid),
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    Ok(())
}

/// Make sure `name` in `dir` is a directory and open it; a non-directory in the way is an error
/// unless `replace` allows removing it.
pub(crate) fn ensure_dir(
    dir: BorrowedFd<'_>,
    name: &CStr,
    replace: bool,
    limit: Option<&InodeMeta>,
) -> io::Result<(OwnedFd, bool)> {
    let mut created = false;
    match lstat(dir, name)? {
        Some(m) if m.kind == InodeKind::Dir => {}
        Some(_) if replace => {
            remove_tree(dir, name, limit)?;
            rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o700))?;
            created = true;
        }
        Some(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "a file is in the way of a directory",
            ))
        }
        None => {
            rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o700))?;
            created = true;
        }
    }
    Ok((inode_walk::open_dir_at(dir, name)?, created))
}

/// Set a directory's owner, mode and mtime through its open fd.
pub(crate) fn finish_dir(
    fd: BorrowedFd<'_>,
    perm: u32,
    mtime: i64,
    owner: Option<Owner>,
) -> io::Result<()> {
    if let Some(owner) = owner {
        rustix::fs::fchown(fd, owner.uid.map(uid), owner.gid.map(gid))?;
    }
    rustix::fs::fchmod(fd, Mode::from_raw_mode(perm))?;
    rustix::fs::futimens(fd, &times(mtime))?;
    Ok(())
}

/// Remove `name` in `dir` and everything below it, without following symlinks and refusing to
/// delete through a mount point of another filesystem (when `limit` is given).
pub(crate) fn remove_tree(
    dir: BorrowedFd<'_>,
    name: &CStr,
    limit: Option<&InodeMeta>,
) -> io::Result<()> {
    let Some(meta) = lstat(dir, name)? else {
        return Ok(());
    };
    if let Some(limit) = limit {
        if crosses_mount(limit, &meta) {
            return Err(io::Error::other("refusing to delete a mount point"));
        }
    }
    if meta.kind == InodeKind::Dir {
        let child = inode_walk::open_dir_at(dir, name)?;
        for entry in inode_walk::list_dir(child.as_fd())? {
            remove_tree(child.as_fd(), &entry, limit)?;
        }
        rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)?;
    } else {
        rustix::fs::unlinkat(dir, name, AtFlags::empty())?;
    }
    Ok(())
}

pub(crate) fn crosses_mount(limit: &InodeMeta, meta: &InodeMeta) -> bool {
    match (limit.mnt_id, meta.mnt_id) {
        (Some(a), Some(b)) => a != b,
        _ => limit.dev != meta.dev,
    }
}

/// CRC32 of a whole file.
pub(crate) fn crc32_of(file: &mut File) -> io::Result<u32> {
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(hasher.finalize())
}

fn times(mtime: i64) -> Timestamps {
    let ts = Timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    Timestamps {
        last_access: ts,
        last_modification: ts,
    }
}

fn uid(n: u32) -> rustix::fs::Uid {
    rustix::fs::Uid::from_raw(n)
}

fn gid(n: u32) -> rustix::fs::Gid {
    rustix::fs::Gid::from_raw(n)
}
