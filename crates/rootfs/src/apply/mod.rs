//! The layer applier: one tar stream (an OCI layer, a rootfs tarball, a backup) applied to a
//! container root.
//!
//! The tar crate only parses; every inode is made here. Entry parents are resolved inside the
//! root by pathrs (see [`dirs`]); the final name is always handled with `*at` calls on the
//! parent fd that never follow it: a regular file is a fresh inode made with
//! `O_CREAT | O_EXCL | O_NOFOLLOW`, so a symlink planted by an earlier entry or layer is replaced,
//! never written through. Whatever the archive says, nothing outside the root is touched.

mod dirs;
mod inodes;
mod meta;
mod paths;
mod whiteout;

use std::collections::HashSet;
use std::ffi::{CString, OsStr};
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use tar::EntryType;

use crate::inode_walk::{stat_at, InodeKind};
use crate::root::Rootfs;
use dirs::DirCache;
use meta::Meta;
use paths::{split_last, BadName, NameMap, RelPath};

/// How to map an archive onto the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyOptions {
    /// Treat `.wh.NAME` and `.wh..wh..opq` as OCI whiteouts (layers) instead of plain files.
    pub oci_whiteouts: bool,
    /// Drop this many leading components of every name (`tar --strip-components`).
    pub strip_components: usize,
    /// Keep only names under this prefix and strip it (`name/rootfs` for backups).
    pub only_under: Option<PathBuf>,
    /// Apply the archive's uid/gid (off: files belong to the caller).
    pub preserve_owners: bool,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            oci_whiteouts: false,
            strip_components: 0,
            only_under: None,
            preserve_owners: true,
        }
    }
}

/// An entry that was not applied, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The name as written in the archive.
    pub path: String,
    pub reason: String,
}

/// What applying an archive did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ApplyStats {
    /// Entries applied (including whiteouts).
    pub entries: u64,
    /// Bytes of file content written.
    pub bytes: u64,
    pub hard_links: u64,
    pub whiteouts: u64,
    /// Entries not applied: outside `only_under` or the strip, or listed in `skips`.
    pub skipped: u64,
    /// Extended attributes the filesystem or our privileges did not allow.
    pub xattr_failures: u64,
    /// The skipped entries that deserve a warning (the first [`MAX_SKIPS`]).
    pub skips: Vec<Skipped>,
}

/// How many [`Skipped`] records [`ApplyStats::skips`] keeps.
pub const MAX_SKIPS: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("cannot read the archive: {0}")]
    Archive(#[source] io::Error),
    #[error("cannot read the archive entry '{path}': {source}")]
    Entry {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("the archive entry '{path}' {why}; refusing to apply the archive")]
    Unsafe { path: String, why: &'static str },
    #[error("cannot {op} '/{path}' in the container: {source}")]
    Write {
        /// The path inside the root.
        path: String,
        op: &'static str,
        #[source]
        source: io::Error,
    },
}

impl ApplyError {
    /// The archive name or container path the error is about.
    pub fn path(&self) -> Option<&str> {
        match self {
            ApplyError::Archive(_) => None,
            ApplyError::Entry { path, .. }
            | ApplyError::Unsafe { path, .. }
            | ApplyError::Write { path, .. } => Some(path),
        }
    }

    /// Whether the disk (or quota) ran out: the one apply failure that is not the archive's.
    pub fn is_storage_full(&self) -> bool {
        self.io_error()
            .is_some_and(|e| e.kind() == io::ErrorKind::StorageFull)
    }

    /// The underlying I/O error, e.g. to tell `StorageFull` apart.
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            ApplyError::Archive(e) | ApplyError::Entry { source: e, .. } => Some(e),
            ApplyError::Write { source, .. } => Some(source),
            ApplyError::Unsafe { .. } => None,
        }
    }
}

/// Copy buffer for file contents.
const CHUNK: usize = 256 * 1024;

/// Apply one tar stream to `root`. `on_entry` sees the root-relative path of each applied
/// entry. On error the root is left partly applied: apply into a staging directory.
pub fn apply_tar<R: Read>(
    root: &Rootfs,
    reader: R,
    opts: &ApplyOptions,
    on_entry: &mut dyn FnMut(&Path),
) -> Result<ApplyStats, ApplyError> {
    let names = NameMap::new(opts.only_under.as_deref(), opts.strip_components).map_err(|_| {
        ApplyError::Unsafe {
            path: opts
                .only_under
                .as_deref()
                .unwrap_or(Path::new(""))
                .display()
                .to_string(),
            why: "(the kept prefix) is not a plain relative path",
        }
    })?;
    let dirs = DirCache::new(root).map_err(|source| ApplyError::Write {
        path: String::new(),
        op: "open",
        source,
    })?;
    let mut applier = Applier {
        root,
        opts,
        names,
        dirs,
        layer_paths: HashSet::new(),
        pending_dirs: Vec::new(),
        stats: ApplyStats::default(),
        buf: vec![0; CHUNK],
    };
    let mut archive = cd_archive::guarded_archive(reader);
    for entry in archive.entries().map_err(ApplyError::Archive)? {
        let mut entry = entry.map_err(ApplyError::Archive)?;
        if let Some(rel) = applier.apply_entry(&mut entry)? {
            on_entry(Path::new(OsStr::from_bytes(&rel)));
        }
    }
    applier.finish_dirs()?;
    Ok(applier.stats)
}

struct Applier<'a> {
    root: &'a Rootfs,
    opts: &'a ApplyOptions,
    names: NameMap,
    dirs: DirCache,
    /// Paths this archive made: an opaque whiteout keeps them, whatever the entry order.
    layer_paths: HashSet<RelPath>,
    /// Directory metadata, applied after all contents (a read-only or old-mtime directory
    /// would otherwise be changed by its own children).
    pending_dirs: Vec<(RelPath, Meta)>,
    stats: ApplyStats,
    buf: Vec<u8>,
}

/// What an entry handler did.
enum Outcome {
    Applied,
    Skipped(String),
}

fn shown(rel: &[u8]) -> String {
    String::from_utf8_lossy(rel).into_owned()
}

fn write_err<'a>(rel: &'a [u8], op: &'static str) -> impl FnOnce(io::Error) -> ApplyError + 'a {
    move |source| ApplyError::Write {
        path: shown(rel),
        op,
        source,
    }
}

fn c_name(name: &[u8]) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

impl Applier<'_> {
    fn apply_entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<Option<RelPath>, ApplyError> {
        let raw = entry.path_bytes().into_owned();
        let rel = match self.names.map(&raw) {
            Ok(Some(rel)) => rel,
            Ok(None) => {
                self.stats.skipped += 1;
                return Ok(None);
            }
            Err(bad) => {
                return Err(ApplyError::Unsafe {
                    path: shown(&raw),
                    why: unsafe_why(bad),
                })
            }
        };
        let kind = entry.header().entry_type();
        let outcome = if rel.is_empty() {
            self.root_entry(entry, kind)?
        } else if let Some(outcome) = self.try_whiteout(&raw, &rel)? {
            outcome
        } else {
            match kind {
                EntryType::Directory => self.make_dir(entry, &raw, &rel)?,
                EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                    self.make_file(entry, &raw, &rel)?
                }
                EntryType::Symlink => self.make_symlink(entry, &raw, &rel)?,
                EntryType::Link => self.make_hard_link(entry, &raw, &rel)?,
                EntryType::Char | EntryType::Block | EntryType::Fifo => {
                    self.make_node(entry, &raw, &rel, kind)?
                }
                other => Outcome::Skipped(format!("unsupported entry type {other:?}")),
            }
        };
        match outcome {
            Outcome::Applied => {
                self.stats.entries += 1;
                self.layer_paths.insert(rel.clone());
                Ok(Some(rel))
            }
            Outcome::Skipped(reason) => {
                self.skip(&raw, reason);
                Ok(None)
            }
        }
    }

    fn skip(&mut self, raw: &[u8], reason: String) {
        self.stats.skipped += 1;
        if self.stats.skips.len() < MAX_SKIPS {
            self.stats.skips.push(Skipped {
                path: shown(raw),
                reason,
            });
        }
    }

    fn meta<R: Read>(&self, entry: &mut tar::Entry<'_, R>, raw: &[u8]) -> Result<Meta, ApplyError> {
        Meta::of_entry(entry, self.opts.preserve_owners).map_err(|source| ApplyError::Entry {
            path: shown(raw),
            source,
        })
    }

    /// `./` (or the kept prefix itself): the root directory's own metadata.
    fn root_entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        kind: EntryType,
    ) -> Result<Outcome, ApplyError> {
        if kind != EntryType::Directory {
            return Ok(Outcome::Skipped(
                "names the root itself but is not a directory".into(),
            ));
        }
        let raw = entry.path_bytes().into_owned();
        let meta = self.meta(entry, &raw)?;
        self.pending_dirs.push((RelPath::new(), meta));
        Ok(Outcome::Applied)
    }

    /// The parent directory of `rel`, made if missing.
    fn parent_of(&mut self, rel: &[u8]) -> Result<std::rc::Rc<std::os::fd::OwnedFd>, ApplyError> {
        let (parent, _) = split_last(rel);
        self.dirs
            .ensure(self.root, parent)
            .map_err(write_err(rel, "create the parent directory of"))
    }

    /// Clear the way for a new inode at `name`: anything there is removed, except a directory
    /// when `keep_dir` (a directory entry over a directory keeps its contents). Returns whether
    /// a directory was kept.
    fn clear_slot(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &CString,
        rel: &[u8],
        keep_dir: bool,
    ) -> Result<bool, ApplyError> {
        let meta = match stat_at(dir, name) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(write_err(rel, "inspect")(e)),
        };
        if keep_dir && meta.kind == InodeKind::Dir {
            return Ok(true);
        }
        self.remove_child(dir, name, rel, meta.kind)?;
        Ok(false)
    }

    /// Remove `name` under `dir` (recursively), keeping the directory cache honest.
    fn remove_child(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &CString,
        rel: &[u8],
        kind: InodeKind,
    ) -> Result<(), ApplyError> {
        if matches!(kind, InodeKind::Dir | InodeKind::Symlink) {
            self.dirs.invalidate();
        }
        let shown_path = Path::new("/").join(OsStr::from_bytes(rel));
        crate::remove::remove_at(dir, name, &shown_path).map_err(write_err(rel, "replace"))
    }

    /// Directory metadata, deepest first, once every child is in place.
    fn finish_dirs(&mut self) -> Result<(), ApplyError> {
        let mut pending = std::mem::take(&mut self.pending_dirs);
        // Stable: of two entries for one directory, the later one is applied last and wins.
        pending.sort_by_key(|(rel, _)| std::cmp::Reverse(paths::depth(rel)));
        for (rel, meta) in pending {
            let (parent, name) = split_last(&rel);
            let (dir, name) = if rel.is_empty() {
                (self.dirs.root_fd(), c".".to_owned())
            } else {
                let Some(dir) = self
                    .dirs
                    .existing(self.root, parent)
                    .map_err(write_err(&rel, "resolve"))?
                else {
                    continue;
                };
                (dir, c_name(name).map_err(write_err(&rel, "name"))?)
            };
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let fd = match rustix::fs::openat(dir.as_fd(), &name, flags, Mode::empty()) {
                Ok(fd) => fd,
                // Replaced by a later entry (a file, a symlink) or removed by a whiteout.
                Err(
                    rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR | rustix::io::Errno::LOOP,
                ) => continue,
                Err(e) => return Err(write_err(&rel, "open the directory")(e.into())),
            };
            let outcome = meta
                .apply_fd(fd.as_fd())
                .map_err(write_err(&rel, "set the owner, mode or times of"))?;
            self.stats.xattr_failures += outcome.xattr_failures;
        }
        Ok(())
    }
}

fn unsafe_why(bad: BadName) -> &'static str {
    match bad {
        BadName::Climbs => "climbs out of the root with '..'",
        BadName::Nul => "has a NUL byte in its name",
    }
}
