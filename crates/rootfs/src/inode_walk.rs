//! A walk over a container root that never follows a symlink and never enters a mount.
//!
//! Every directory is opened relative to its parent's fd with `O_NOFOLLOW`, so a symlink planted
//! in the container (`/etc/evil -> /`) is reported as a symlink and never entered, and a rename
//! race cannot redirect the walk to the host. Entries whose mount id differs from the root's are
//! mount points (a leftover `/proc`, a bind-mounted home) and are reported, not entered: backup
//! and diff must never read host data through them.

use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{AtFlags, Mode, OFlags, StatxFlags, CWD};

/// What kind of inode an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InodeKind {
    File,
    Dir,
    Symlink,
    Fifo,
    CharDevice,
    BlockDevice,
    Socket,
}

impl InodeKind {
    pub fn from_mode(mode: u32) -> InodeKind {
        match mode & libc::S_IFMT {
            libc::S_IFDIR => InodeKind::Dir,
            libc::S_IFLNK => InodeKind::Symlink,
            libc::S_IFIFO => InodeKind::Fifo,
            libc::S_IFCHR => InodeKind::CharDevice,
            libc::S_IFBLK => InodeKind::BlockDevice,
            libc::S_IFSOCK => InodeKind::Socket,
            _ => InodeKind::File,
        }
    }
}

/// The metadata of one inode, as the walk saw it (`lstat` semantics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InodeMeta {
    pub kind: InodeKind,
    /// Permission bits including setuid, setgid and sticky (`mode & 0o7777`).
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: i64,
    pub nlink: u32,
    pub ino: u64,
    pub dev: (u32, u32),
    pub rdev: (u32, u32),
    /// `None` on kernels older than 5.8 (no `STATX_MNT_ID`).
    pub mnt_id: Option<u64>,
}

/// `statx(dirfd, name, AT_SYMLINK_NOFOLLOW)`.
pub fn stat_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<InodeMeta> {
    let flags = AtFlags::SYMLINK_NOFOLLOW | AtFlags::NO_AUTOMOUNT;
    stat_flags(dir, name, flags)
}

/// `statx` of an open fd itself (`AT_EMPTY_PATH`).
pub fn stat_fd(fd: BorrowedFd<'_>) -> io::Result<InodeMeta> {
    stat_flags(fd, c"", AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW)
}

fn stat_flags(dir: BorrowedFd<'_>, name: &CStr, flags: AtFlags) -> io::Result<InodeMeta> {
    Ok(stat_with_blocks(dir, name, flags)?.0)
}

/// `statx` as [`InodeMeta`] plus the allocated 512-byte blocks, in one call.
pub(crate) fn stat_with_blocks(
    dir: BorrowedFd<'_>,
    name: &CStr,
    flags: AtFlags,
) -> io::Result<(InodeMeta, u64)> {
    let st = rustix::fs::statx(
        dir,
        name,
        flags,
        StatxFlags::BASIC_STATS | StatxFlags::MNT_ID,
    )?;
    let mode = u32::from(st.stx_mode);
    let meta = InodeMeta {
        kind: InodeKind::from_mode(mode),
        perm: mode & 0o7777,
        uid: st.stx_uid,
        gid: st.stx_gid,
        size: st.stx_size,
        mtime: st.stx_mtime.tv_sec,
        nlink: st.stx_nlink,
        ino: st.stx_ino,
        dev: (st.stx_dev_major, st.stx_dev_minor),
        rdev: (st.stx_rdev_major, st.stx_rdev_minor),
        mnt_id: (st.stx_mask & StatxFlags::MNT_ID.bits() != 0).then_some(st.stx_mnt_id),
    };
    Ok((meta, st.stx_blocks))
}

/// Open the directory `name` under `dir` without following a symlink.
pub fn open_dir_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Open the regular file `name` under `dir` for reading, refusing symlinks and anything that is
/// not a regular file (a FIFO swapped in after the stat would otherwise block the walk).
pub fn open_file_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<std::fs::File> {
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY,
        Mode::empty(),
    )?;
    let meta = stat_fd(fd.as_fd())?;
    if meta.kind != InodeKind::File {
        return Err(io::Error::other(
            "changed into a non-regular file while reading",
        ));
    }
    Ok(std::fs::File::from(fd))
}

/// Open a host directory that the caller trusts (the rootfs directory of the store).
pub fn open_root_dir(path: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        CWD,
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Names in a directory (without `.` and `..`), sorted bytewise for a stable order.
pub fn list_dir(dir: BorrowedFd<'_>) -> io::Result<Vec<CString>> {
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        names.push(name.to_owned());
    }
    names.sort();
    Ok(names)
}

/// One entry met by [`walk`]. `path` is relative to the root (`""` for the root itself,
/// `etc/passwd` below it) and `dir` + `name` reach it without any path resolution.
pub struct WalkEntry<'a> {
    pub path: &'a [u8],
    pub dir: BorrowedFd<'a>,
    pub name: &'a CStr,
    pub meta: InodeMeta,
}

impl WalkEntry<'_> {
    pub fn path_os(&self) -> &OsStr {
        OsStr::from_bytes(self.path)
    }
}

/// What the visitor wants after seeing a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visit {
    Descend,
    SkipChildren,
}

/// Walk `root` depth first, parents before children, names sorted. Mount points below the root
/// are handed to `on_mount` and neither visited nor entered.
pub fn walk(
    root: &Path,
    visit: &mut dyn FnMut(&WalkEntry<'_>) -> io::Result<Visit>,
    on_mount: &mut dyn FnMut(&[u8]),
) -> io::Result<()> {
    let root_fd = open_root_dir(root)?;
    let meta = stat_fd(root_fd.as_fd())?;
    let entry = WalkEntry {
        path: b"",
        dir: root_fd.as_fd(),
        name: c"",
        meta,
    };
    if visit(&entry)? == Visit::SkipChildren {
        return Ok(());
    }
    let mut path = Vec::with_capacity(256);
    walk_dir(root_fd.as_fd(), &meta, &mut path, visit, on_mount)
}

fn walk_dir(
    dir: BorrowedFd<'_>,
    root_meta: &InodeMeta,
    path: &mut Vec<u8>,
    visit: &mut dyn FnMut(&WalkEntry<'_>) -> io::Result<Visit>,
    on_mount: &mut dyn FnMut(&[u8]),
) -> io::Result<()> {
    let base_len = path.len();
    for name in list_dir(dir)? {
        path.truncate(base_len);
        if base_len > 0 {
            path.push(b'/');
        }
        path.extend_from_slice(name.as_bytes());
        let meta = match stat_at(dir, &name) {
            Ok(m) => m,
            // Removed while we walked: nothing to report.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if is_other_mount(root_meta, &meta) {
            on_mount(path);
            continue;
        }
        let entry = WalkEntry {
            path,
            dir,
            name: &name,
            meta,
        };
        let descend = visit(&entry)? == Visit::Descend;
        if meta.kind == InodeKind::Dir && descend {
            let child = match open_dir_at(dir, &name) {
                Ok(fd) => fd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            // The directory may have been swapped for a mount point after the stat.
            let opened = stat_fd(child.as_fd())?;
            if opened.ino != meta.ino || opened.dev != meta.dev {
                on_mount(path);
                continue;
            }
            walk_dir(child.as_fd(), root_meta, path, visit, on_mount)?;
        }
    }
    path.truncate(base_len);
    Ok(())
}

fn is_other_mount(root: &InodeMeta, entry: &InodeMeta) -> bool {
    match (root.mnt_id, entry.mnt_id) {
        (Some(a), Some(b)) => a != b,
        _ => root.dev != entry.dev,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn collect(root: &Path) -> Vec<(String, InodeKind)> {
        let mut seen = Vec::new();
        walk(
            root,
            &mut |e| {
                seen.push((String::from_utf8_lossy(e.path).into_owned(), e.meta.kind));
                Ok(Visit::Descend)
            },
            &mut |_| {},
        )
        .unwrap();
        seen
    }

    #[test]
    fn symlinked_directories_are_reported_not_entered() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("etc/sub")).unwrap();
        std::fs::write(root.join("etc/sub/f"), b"x").unwrap();
        symlink("/", root.join("etc/evil")).unwrap();
        let seen = collect(root);
        assert_eq!(
            seen,
            vec![
                (String::new(), InodeKind::Dir),
                ("etc".into(), InodeKind::Dir),
                ("etc/evil".into(), InodeKind::Symlink),
                ("etc/sub".into(), InodeKind::Dir),
                ("etc/sub/f".into(), InodeKind::File),
            ]
        );
    }

    #[test]
    fn open_file_at_refuses_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        symlink("/etc/passwd", dir.path().join("l")).unwrap();
        let fd = open_root_dir(dir.path()).unwrap();
        assert!(open_file_at(fd.as_fd(), c"l").is_err());
    }
}
