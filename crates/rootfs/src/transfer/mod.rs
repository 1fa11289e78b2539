//! `copy` and `sync` between the host and container roots.
//!
//! Container paths are resolved inside the container root by pathrs, so a symlink such as
//! `/etc/evil -> /` inside the container leads to the container's own `/`, never the host's.
//! Below the starting directories everything is done with `*at` calls on single names that
//! never follow a symlink; symlinks are copied as symlinks and chowned with `lchown`. Regular
//! files are written to a temp name and renamed into place, so a reader never sees half a file.

mod copy;
mod ops;
mod owner;
mod side;
mod sync;

use std::ffi::CStr;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

pub use copy::copy;
pub use owner::{parse_owner, AccountFiles};
pub use sync::sync;

/// One end of a transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Host {
        path: PathBuf,
    },
    Container {
        name: String,
        rootfs: PathBuf,
        path: PathBuf,
    },
}

impl Location {
    pub fn path(&self) -> &Path {
        match self {
            Location::Host { path } | Location::Container { path, .. } => path,
        }
    }

    /// How the user wrote it: `./file` or `ubuntu:/etc/hosts`.
    pub fn display(&self) -> String {
        match self {
            Location::Host { path } => path.display().to_string(),
            Location::Container { name, path, .. } => format!("{name}:{}", path.display()),
        }
    }

    fn side(&self) -> io::Result<side::Side> {
        match self {
            Location::Host { .. } => Ok(side::Side::Host),
            Location::Container { rootfs, .. } => side::Side::container(rootfs),
        }
    }

    /// The destination's `/etc/passwd` and `/etc/group`, read inside the container root.
    pub fn accounts(&self) -> AccountFiles {
        let read = |p: &str| -> String {
            let mut text = String::new();
            let file = match self {
                Location::Host { .. } => std::fs::File::open(p).ok(),
                Location::Container { rootfs, .. } => pathrs::Root::open(rootfs)
                    .and_then(|r| r.open_subpath(p, pathrs::flags::OpenFlags::O_RDONLY))
                    .ok(),
            };
            if let Some(mut f) = file {
                let _ = f.read_to_string(&mut text);
            }
            text
        };
        AccountFiles {
            passwd: read("/etc/passwd"),
            group: read("/etc/group"),
        }
    }
}

/// The owner given with `--chown`; `None` fields are left as they are.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

impl Owner {
    fn matches(&self, uid: u32, gid: u32) -> bool {
        self.uid.is_none_or(|u| u == uid) && self.gid.is_none_or(|g| g == gid)
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct CopyOptions {
    pub recursive: bool,
    pub move_source: bool,
    pub owner: Option<Owner>,
    /// Set by Ctrl-C: the transfer stops before the next entry (or within a big file); what
    /// was already written stays, the file in progress is not left half-written.
    pub cancel: Option<&'static AtomicBool>,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SyncOptions {
    /// Compare size and CRC32 instead of size and mtime.
    pub checksum: bool,
    /// Delete destination entries the source does not have.
    pub delete: bool,
    pub owner: Option<Owner>,
    /// As for [`CopyOptions::cancel`].
    pub cancel: Option<&'static AtomicBool>,
}

/// Something a transfer did, for `--verbose`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferEvent<'a> {
    /// A file, symlink or directory was written at this destination path.
    Copied(&'a str),
    /// Only the mode or owner of this destination path was changed.
    Updated(&'a str),
    /// This destination path was deleted (`sync --delete`).
    Deleted(&'a str),
    /// The source was removed after a move.
    RemovedSource(&'a str),
    /// This source path was not transferred.
    Skipped { path: &'a str, why: &'static str },
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TransferStats {
    pub copied: u64,
    pub updated: u64,
    pub deleted: u64,
    pub skipped: u64,
    pub bytes: u64,
}

impl TransferStats {
    /// Whether anything at the destination changed.
    pub fn changed(&self) -> bool {
        self.copied + self.updated + self.deleted > 0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("{path}: {}", io_reason(source))]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Owner(String),
    #[error("{0}")]
    Refused(String),
    #[error("interrupted")]
    Interrupted,
}

/// Errors made from a bare `ErrorKind` (as path resolution inside the root makes them) print
/// as "entity not found"; say it the way users know it.
fn io_reason(e: &io::Error) -> String {
    if e.raw_os_error().is_none() && e.get_ref().is_none() {
        match e.kind() {
            io::ErrorKind::NotFound => return "no such file or directory".to_string(),
            io::ErrorKind::PermissionDenied => return "permission denied".to_string(),
            io::ErrorKind::AlreadyExists => return "already exists".to_string(),
            _ => {}
        }
    }
    e.to_string()
}

impl TransferError {
    fn io(path: impl Into<String>) -> impl FnOnce(io::Error) -> TransferError {
        let path = path.into();
        move |source| TransferError::Io { path, source }
    }
}

/// Shared state of one transfer walk.
/// Where `copy` and `sync` both start: the two sides opened, the source found and stat'ed, and
/// a walk that reports through `on_event`.
struct Start<'a> {
    src_side: side::Side,
    dst_side: side::Side,
    src_at: side::Located,
    src_meta: crate::inode_walk::InodeMeta,
    walk: Walk<'a>,
}

impl<'a> Start<'a> {
    fn new(
        src: &Location,
        dst: &Location,
        owner: Option<Owner>,
        cancel: Option<&'static AtomicBool>,
        on_event: &'a mut dyn FnMut(TransferEvent<'_>),
    ) -> Result<Start<'a>, TransferError> {
        let src_side = src.side().map_err(TransferError::io(src.display()))?;
        let dst_side = dst.side().map_err(TransferError::io(dst.display()))?;
        let src_at = src_side
            .locate(src.path())
            .map_err(TransferError::io(src.display()))?;
        let src_meta = match &src_at.name {
            Some(name) => ops::lstat(src_at.dir.as_fd(), name)
                .map_err(TransferError::io(src.display()))?
                .ok_or_else(|| TransferError::Io {
                    path: src.display(),
                    source: io::Error::from(io::ErrorKind::NotFound),
                })?,
            None => crate::inode_walk::stat_fd(src_at.dir.as_fd())
                .map_err(TransferError::io(src.display()))?,
        };
        let walk = Walk {
            owner,
            stats: TransferStats::default(),
            on_event,
            src_limit: src_side.mount_limit().copied(),
            dst_limit: dst_side.mount_limit().copied(),
            dst_dirs: std::collections::HashSet::new(),
            src_base: src.display(),
            dst_base: dst.display(),
            cancel,
        };
        Ok(Start {
            src_side,
            dst_side,
            src_at,
            src_meta,
            walk,
        })
    }
}

struct Walk<'a> {
    owner: Option<Owner>,
    stats: TransferStats,
    on_event: &'a mut dyn FnMut(TransferEvent<'_>),
    /// Walks of a container source stay on the container's filesystem.
    src_limit: Option<crate::inode_walk::InodeMeta>,
    dst_limit: Option<crate::inode_walk::InodeMeta>,
    /// Destination directories already entered, by (device, inode): a source directory that is
    /// one of them is the destination itself (copying a tree into itself) and is not entered.
    dst_dirs: std::collections::HashSet<((u32, u32), u64)>,
    src_base: String,
    dst_base: String,
    cancel: Option<&'static AtomicBool>,
}

impl Walk<'_> {
    /// Count destination entry `rel` as written (`bytes` of file data) and report it.
    fn copied(&mut self, rel: &[u8], bytes: u64) {
        self.stats.copied += 1;
        self.stats.bytes += bytes;
        let shown = self.dst_display(rel);
        self.event(TransferEvent::Copied(&shown));
    }

    /// Count destination entry `rel` as fixed in place (mode, owner) and report it.
    fn updated(&mut self, rel: &[u8]) {
        self.stats.updated += 1;
        let shown = self.dst_display(rel);
        self.event(TransferEvent::Updated(&shown));
    }

    /// Count source entry `rel` as left out, and why.
    fn skipped(&mut self, rel: &[u8], why: &'static str) {
        self.stats.skipped += 1;
        let shown = self.src_display(rel);
        self.event(TransferEvent::Skipped { path: &shown, why });
    }

    fn cancelled(&self) -> bool {
        self.cancel.is_some_and(|c| c.load(Ordering::Relaxed))
    }

    /// Called before each entry: Ctrl-C stops the walk there.
    fn check_cancel(&self) -> Result<(), TransferError> {
        if self.cancelled() {
            return Err(TransferError::Interrupted);
        }
        Ok(())
    }

    /// How a failed write of destination entry `rel` is reported: a write cut short by
    /// Ctrl-C is the interruption, not an I/O error.
    fn write_error(&self, rel: &[u8]) -> impl FnOnce(io::Error) -> TransferError {
        let cancelled = self.cancelled();
        let path = self.dst_display(rel);
        move |e| {
            if cancelled {
                TransferError::Interrupted
            } else {
                TransferError::Io { path, source: e }
            }
        }
    }

    fn dst_display(&self, rel: &[u8]) -> String {
        join_display(&self.dst_base, rel)
    }
    fn src_display(&self, rel: &[u8]) -> String {
        join_display(&self.src_base, rel)
    }
    fn event(&mut self, event: TransferEvent<'_>) {
        (self.on_event)(event);
    }
}

fn join_display(base: &str, rel: &[u8]) -> String {
    if rel.is_empty() {
        base.to_string()
    } else {
        format!(
            "{}/{}",
            base.trim_end_matches('/'),
            String::from_utf8_lossy(rel)
        )
    }
}

fn child_rel(rel: &[u8], name: &CStr) -> Vec<u8> {
    let mut out = rel.to_vec();
    if !out.is_empty() {
        out.push(b'/');
    }
    out.extend_from_slice(name.to_bytes());
    out
}

/// The last name of a path, for `copy FILE DIR/`.
fn base_name(path: &Path) -> Option<std::ffi::CString> {
    match path.components().next_back()? {
        std::path::Component::Normal(n) => std::ffi::CString::new(n.as_bytes()).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
