//! One end of a transfer: the host, or a container root where every path is resolved inside
//! the root by pathrs (`RESOLVE_IN_ROOT`), so `/etc/evil -> /` leads to the container's `/`.
//!
//! A side only hands out directory fds. Everything below them is done with `*at` calls on a
//! single name with `O_NOFOLLOW`/`AT_SYMLINK_NOFOLLOW` (see `ops`), so no later step resolves a
//! path again.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use pathrs::flags::OpenFlags;
use pathrs::Root;

use crate::inode_walk::{self, InodeMeta};

pub(crate) enum Side {
    Host,
    Container { root: Root, root_meta: InodeMeta },
}

/// A path split into the directory that holds it and its last name; `name` is `None` when the
/// path names a directory with no usable last component (`/`, `..`).
pub(crate) struct Located {
    pub dir: OwnedFd,
    pub name: Option<CString>,
}

impl Side {
    pub fn container(rootfs: &Path) -> io::Result<Side> {
        let root = Root::open(rootfs).map_err(pathrs_io)?;
        let root_meta = inode_walk::stat_fd(root.as_fd())?;
        Ok(Side::Container { root, root_meta })
    }

    /// The mount a walk of this side must stay on: a container's own filesystem. Host paths are
    /// the user's to choose, so the host side has no limit.
    pub fn mount_limit(&self) -> Option<&InodeMeta> {
        match self {
            Side::Host => None,
            Side::Container { root_meta, .. } => Some(root_meta),
        }
    }

    /// Open the directory at `path` (symlinks followed, inside the root for a container).
    pub fn open_dir(&self, path: &Path) -> io::Result<OwnedFd> {
        match self {
            Side::Host => {
                let p = if path.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    path
                };
                Ok(rustix::fs::open(
                    p,
                    rustix::fs::OFlags::RDONLY
                        | rustix::fs::OFlags::DIRECTORY
                        | rustix::fs::OFlags::CLOEXEC,
                    rustix::fs::Mode::empty(),
                )?)
            }
            Side::Container { root, .. } => {
                let handle = root.resolve(in_root(path)).map_err(pathrs_io)?;
                let file = handle
                    .reopen(OpenFlags::O_RDONLY | OpenFlags::O_DIRECTORY)
                    .map_err(pathrs_io)?;
                Ok(OwnedFd::from(file))
            }
        }
    }

    /// Create the directory `path` and its missing parents, and open it.
    pub fn mkdir_all(&self, path: &Path) -> io::Result<OwnedFd> {
        match self {
            Side::Host => {
                if !path.as_os_str().is_empty() {
                    std::fs::create_dir_all(path)?;
                }
                self.open_dir(path)
            }
            Side::Container { root, .. } => {
                let handle = root
                    .mkdir_all(in_root(path), &std::fs::Permissions::from_mode(0o755))
                    .map_err(pathrs_io)?;
                let file = handle
                    .reopen(OpenFlags::O_RDONLY | OpenFlags::O_DIRECTORY)
                    .map_err(pathrs_io)?;
                Ok(OwnedFd::from(file))
            }
        }
    }

    /// Split `path` into its parent directory (opened) and last name.
    pub fn locate(&self, path: &Path) -> io::Result<Located> {
        match split_last(path) {
            Some((parent, name)) => Ok(Located {
                dir: self.open_dir(&parent)?,
                name: Some(name),
            }),
            None => Ok(Located {
                dir: self.open_dir(path)?,
                name: None,
            }),
        }
    }

    /// Like [`Side::locate`], creating the parent directories when missing.
    pub fn locate_creating(&self, path: &Path) -> io::Result<Located> {
        match split_last(path) {
            Some((parent, name)) => Ok(Located {
                dir: self.mkdir_all(&parent)?,
                name: Some(name),
            }),
            None => Ok(Located {
                dir: self.mkdir_all(path)?,
                name: None,
            }),
        }
    }
}

/// A container path as pathrs wants it: relative paths are taken from the container's `/`.
fn in_root(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        Path::new("/").join(path)
    }
}

/// `a/b/c` → (`a/b`, `c`); `None` for paths whose last component is not a plain name.
fn split_last(path: &Path) -> Option<(PathBuf, CString)> {
    match path.components().next_back()? {
        Component::Normal(name) => {
            let parent = path.parent().map(Path::to_path_buf).unwrap_or_default();
            let name = CString::new(name.as_bytes()).ok()?;
            Some((parent, name))
        }
        _ => None,
    }
}

pub(crate) fn pathrs_io(err: pathrs::error::Error) -> io::Error {
    match err.kind() {
        pathrs::error::ErrorKind::OsError(Some(errno)) => io::Error::from_raw_os_error(errno),
        _ => io::Error::other(err.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_last_takes_plain_names_only() {
        let (parent, name) = split_last(Path::new("/etc/passwd")).unwrap();
        assert_eq!(parent, Path::new("/etc"));
        assert_eq!(name.as_bytes(), b"passwd");
        assert!(split_last(Path::new("/")).is_none());
        assert!(split_last(Path::new("/etc/..")).is_none());
        let (parent, _) = split_last(Path::new("file")).unwrap();
        assert_eq!(parent, Path::new(""));
    }
}
