//! [`Rootfs`]: the one door into a container's files.
//!
//! Every path handed to a `Rootfs` is resolved by pathrs with `RESOLVE_IN_ROOT` semantics: `..`
//! stops at the root and an absolute symlink such as `/etc/alternatives/x -> /usr/bin/x` points
//! into the container, never at the host.

use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use pathrs::flags::OpenFlags;
use pathrs::Root;

/// An open container root directory.
#[derive(Debug)]
pub struct Rootfs {
    root: Root,
    path: PathBuf,
}

impl Rootfs {
    /// Open an existing root directory. `path` is a host path the caller trusts (the store).
    pub fn open(path: impl AsRef<Path>) -> io::Result<Rootfs> {
        let path = path.as_ref();
        let root = Root::open(path).map_err(|e| {
            let err = pathrs_io(e);
            io::Error::new(
                err.kind(),
                format!("cannot open the container root '{}': {err}", path.display()),
            )
        })?;
        Ok(Rootfs {
            root,
            path: path.to_path_buf(),
        })
    }

    /// Create the root directory (and its missing parents) and open it.
    pub fn create(path: impl AsRef<Path>) -> io::Result<Rootfs> {
        let path = path.as_ref();
        std::fs::create_dir_all(path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot create the container root '{}': {e}", path.display()),
            )
        })?;
        Rootfs::open(path)
    }

    /// The host path of the root, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The pathrs handle, for resolving paths inside the root.
    pub fn root(&self) -> &Root {
        &self.root
    }

    /// Read a whole file inside the root (symlinks resolved inside the root).
    pub fn read(&self, path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
        let mut file = self
            .root
            .open_subpath(path.as_ref(), OpenFlags::O_RDONLY | OpenFlags::O_NONBLOCK)
            .map_err(pathrs_io)?;
        let mut out = Vec::new();
        file.read_to_end(&mut out)?;
        Ok(out)
    }

    /// Read a file inside the root; `Ok(None)` when it does not exist.
    pub fn read_optional(&self, path: impl AsRef<Path>) -> io::Result<Option<Vec<u8>>> {
        match self.read(path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl AsFd for Rootfs {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.root.as_fd()
    }
}

/// Map a pathrs error to the `io::Error` of its errno when it has one, so callers can match on
/// `NotFound`, `StorageFull` and friends.
pub(crate) fn pathrs_io(err: pathrs::error::Error) -> io::Error {
    match err.kind() {
        pathrs::error::ErrorKind::OsError(Some(errno)) => io::Error::from_raw_os_error(errno),
        _ => io::Error::other(err.to_string()),
    }
}
