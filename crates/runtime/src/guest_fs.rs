//! Paths inside a container root, always resolved inside it (`RESOLVE_IN_ROOT` semantics via
//! pathrs): an absolute symlink in the image points into the rootfs, never at the host.

use std::fs::{File, Permissions};
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use pathrs::flags::OpenFlags;
use pathrs::{Handle, InodeType, Root};

/// An open container root.
pub struct GuestRoot {
    root: Root,
}

/// Turn a pathrs error into an `io::Error`, keeping the errno when there is one.
pub(crate) fn to_io(e: pathrs::error::Error) -> io::Error {
    match e.kind() {
        pathrs::error::ErrorKind::OsError(Some(errno)) => io::Error::from_raw_os_error(errno),
        _ => io::Error::other(e.to_string()),
    }
}

impl GuestRoot {
    pub fn open(path: &Path) -> io::Result<Self> {
        Ok(GuestRoot {
            root: Root::open(path).map_err(to_io)?,
        })
    }

    /// Resolve `path` (following symlinks inside the root) to an `O_PATH` handle.
    pub fn resolve(&self, path: &str) -> io::Result<Handle> {
        self.root.resolve(path).map_err(to_io)
    }

    pub fn open_file(&self, path: &str) -> io::Result<File> {
        self.resolve(path)?
            .reopen(OpenFlags::O_RDONLY | OpenFlags::O_CLOEXEC)
            .map_err(to_io)
    }

    /// The whole file, or `None` when it does not exist.
    pub fn read_optional(&self, path: &str, limit: u64) -> io::Result<Option<Vec<u8>>> {
        match self.open_file(path) {
            Ok(f) => {
                let mut buf = Vec::new();
                f.take(limit).read_to_end(&mut buf)?;
                Ok(Some(buf))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A text file, empty when it does not exist (a distroless image has no /etc/passwd).
    pub fn read_text_or_empty(&self, path: &str) -> io::Result<String> {
        Ok(self
            .read_optional(path, 16 << 20)?
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default())
    }

    pub fn exists(&self, path: &str) -> bool {
        self.resolve(path).is_ok()
    }

    /// Create the directory (and parents) inside the root and return its handle.
    pub fn mkdir_all(&self, path: &str, mode: u32) -> io::Result<Handle> {
        self.root
            .mkdir_all(path, &Permissions::from_mode(mode))
            .map_err(to_io)
    }

    /// Create an empty regular file unless something exists there already; return a handle.
    pub fn create_file(&self, path: &str, mode: u32) -> io::Result<Handle> {
        if let Ok(h) = self.resolve(path) {
            return Ok(h);
        }
        let (parent, _) = split_parent(path);
        self.mkdir_all(parent, 0o755)?;
        match self
            .root
            .create(path, &InodeType::File(Permissions::from_mode(mode)))
        {
            Ok(()) => {}
            Err(e) => {
                let e = to_io(e);
                if e.kind() != io::ErrorKind::AlreadyExists {
                    return Err(e);
                }
            }
        }
        self.resolve(path)
    }

    /// Create a symlink unless the name exists.
    pub fn symlink(&self, path: &str, to: &str) -> io::Result<()> {
        match self.root.create(path, &InodeType::Symlink(to.into())) {
            Ok(()) => Ok(()),
            Err(e) => {
                let e = to_io(e);
                if e.kind() == io::ErrorKind::AlreadyExists {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }
}

fn split_parent(path: &str) -> (&str, &str) {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rsplit_once('/') {
        Some(("", name)) => ("/", name),
        Some((parent, name)) => (parent, name),
        None => ("/", trimmed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_split() {
        assert_eq!(split_parent("/dev/null"), ("/dev", "null"));
        assert_eq!(split_parent("/x"), ("/", "x"));
        assert_eq!(split_parent("/a/b/"), ("/a", "b"));
    }

    #[test]
    fn absolute_symlinks_resolve_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/passwd"), "guest").unwrap();
        std::os::unix::fs::symlink("/etc", root.join("link")).unwrap();
        std::os::unix::fs::symlink("../../../../../../etc/passwd", root.join("up")).unwrap();
        let g = GuestRoot::open(&root).unwrap();
        assert_eq!(g.read_text_or_empty("/link/passwd").unwrap(), "guest");
        assert_eq!(g.read_text_or_empty("/up").unwrap(), "guest");
        assert_eq!(g.read_text_or_empty("/missing").unwrap(), "");
    }
}
