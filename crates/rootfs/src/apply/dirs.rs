//! Directory fds for entry parents, resolved inside the root and cached.
//!
//! A parent is resolved by pathrs (`RESOLVE_IN_ROOT`, so `etc/evil -> /` followed by
//! `etc/evil/x` lands in the root's own `x`), and missing parents are made one level at a time
//! under an already-resolved parent. The cache only holds directories; it is dropped whenever
//! the applier removes a directory or a symlink, the only changes that can make a cached path
//! resolve elsewhere.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::rc::Rc;

use rustix::fs::{AtFlags, Mode, OFlags, StatxFlags};

use super::paths::split_last;
use crate::root::{pathrs_io, Rootfs};

/// Enough for the directories a tar stream is working in; bounded so a layer with many
/// directories cannot exhaust the fd limit.
const CACHE_LIMIT: usize = 64;

/// Mode of parent directories the archive does not list.
const IMPLICIT_DIR_MODE: u32 = 0o755;

pub(crate) struct DirCache {
    root_fd: Rc<OwnedFd>,
    map: HashMap<Vec<u8>, Rc<OwnedFd>>,
}

impl DirCache {
    pub(crate) fn new(root: &Rootfs) -> io::Result<Self> {
        let fd = OwnedFd::from(root.root().try_clone().map_err(pathrs_io)?);
        Ok(DirCache {
            root_fd: Rc::new(fd),
            map: HashMap::new(),
        })
    }

    pub(crate) fn root_fd(&self) -> Rc<OwnedFd> {
        Rc::clone(&self.root_fd)
    }

    pub(crate) fn invalidate(&mut self) {
        self.map.clear();
    }

    fn remember(&mut self, path: &[u8], fd: OwnedFd) -> Rc<OwnedFd> {
        if self.map.len() >= CACHE_LIMIT {
            self.map.clear();
        }
        let fd = Rc::new(fd);
        self.map.insert(path.to_vec(), Rc::clone(&fd));
        fd
    }

    /// The directory at `path`, or `None` when nothing resolvable is there or it is not a
    /// directory.
    pub(crate) fn existing(
        &mut self,
        root: &Rootfs,
        path: &[u8],
    ) -> io::Result<Option<Rc<OwnedFd>>> {
        if path.is_empty() {
            return Ok(Some(self.root_fd()));
        }
        if let Some(fd) = self.map.get(path) {
            return Ok(Some(Rc::clone(fd)));
        }
        let handle = match root.root().resolve(Path::new(OsStr::from_bytes(path))) {
            Ok(h) => h,
            Err(e) => {
                let e = pathrs_io(e);
                return match e.raw_os_error() {
                    Some(libc::ENOENT) | Some(libc::ENOTDIR) | Some(libc::ELOOP) => Ok(None),
                    _ => Err(e),
                };
            }
        };
        let fd = OwnedFd::from(handle);
        if !is_dir(&fd)? {
            return Ok(None);
        }
        Ok(Some(self.remember(path, fd)))
    }

    /// The directory at `path`, creating missing ones (mode 0755) below the deepest existing
    /// ancestor. A non-directory in the way is an error.
    pub(crate) fn ensure(&mut self, root: &Rootfs, path: &[u8]) -> io::Result<Rc<OwnedFd>> {
        if let Some(fd) = self.existing(root, path)? {
            return Ok(fd);
        }
        let (parent, name) = split_last(path);
        let parent_fd = self.ensure(root, parent)?;
        let mode = Mode::from_raw_mode(IMPLICIT_DIR_MODE);
        match rustix::fs::mkdirat(parent_fd.as_fd(), name, mode) {
            Ok(()) => {}
            Err(rustix::io::Errno::EXIST) => {
                return Err(io::Error::new(
                    io::ErrorKind::NotADirectory,
                    format!(
                        "'/{}' is in the way of a directory (a file or a dangling symlink)",
                        String::from_utf8_lossy(path)
                    ),
                ))
            }
            Err(e) => return Err(e.into()),
        }
        let fd = rustix::fs::openat(
            parent_fd.as_fd(),
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        // mkdirat applied the umask; the mode of an implicit directory must not depend on it.
        rustix::fs::fchmod(&fd, mode)?;
        Ok(self.remember(path, fd))
    }
}

pub(crate) fn is_dir(fd: &OwnedFd) -> io::Result<bool> {
    let st = rustix::fs::statx(fd, c"", AtFlags::EMPTY_PATH, StatxFlags::TYPE)?;
    Ok(u32::from(st.stx_mode) & libc::S_IFMT == libc::S_IFDIR)
}
