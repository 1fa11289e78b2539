//! Making each kind of inode for an entry: the final name is always created fresh with an
//! `*at` call on the parent fd, never followed.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use tar::EntryType;

use super::paths::split_last;
use super::{c_name, shown, write_err, Applier, ApplyError, Outcome};
use crate::inode_walk::{stat_at, InodeKind};

impl Applier<'_> {
    pub(super) fn make_dir<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        raw: &[u8],
        rel: &[u8],
    ) -> Result<Outcome, ApplyError> {
        let meta = self.meta(entry, raw)?;
        let parent = self.parent_of(rel)?;
        let name = c_name(split_last(rel).1).map_err(write_err(rel, "name"))?;
        if !self.clear_slot(parent.as_fd(), &name, rel, true)? {
            // Owner-only until the final pass sets the real mode: a 0555 directory must still
            // take its children.
            rustix::fs::mkdirat(parent.as_fd(), &name, Mode::from_raw_mode(0o700))
                .map_err(|e| write_err(rel, "create the directory")(e.into()))?;
        }
        self.pending_dirs.push((rel.to_vec(), meta));
        Ok(Outcome::Applied)
    }

    pub(super) fn make_file<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        raw: &[u8],
        rel: &[u8],
    ) -> Result<Outcome, ApplyError> {
        let meta = self.meta(entry, raw)?;
        let parent = self.parent_of(rel)?;
        let name = c_name(split_last(rel).1).map_err(write_err(rel, "name"))?;
        self.clear_slot(parent.as_fd(), &name, rel, false)?;
        // O_EXCL | O_NOFOLLOW: always a new inode, even if something raced into the slot.
        let fd = rustix::fs::openat(
            parent.as_fd(),
            &name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| write_err(rel, "create the file")(e.into()))?;
        let mut file = File::from(fd);
        loop {
            let n = match entry.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(ApplyError::Entry {
                        path: shown(raw),
                        source,
                    })
                }
            };
            file.write_all(&self.buf[..n])
                .map_err(write_err(rel, "write"))?;
            self.stats.bytes += n as u64;
        }
        let outcome = meta
            .apply_fd(file.as_fd())
            .map_err(write_err(rel, "set the owner, mode or times of"))?;
        self.stats.xattr_failures += outcome.xattr_failures;
        Ok(Outcome::Applied)
    }

    pub(super) fn make_symlink<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        raw: &[u8],
        rel: &[u8],
    ) -> Result<Outcome, ApplyError> {
        let target = match entry.link_name_bytes() {
            Some(t) if !t.is_empty() && !t.contains(&0) => t.into_owned(),
            _ => return Ok(Outcome::Skipped("symlink without a usable target".into())),
        };
        let meta = self.meta(entry, raw)?;
        let parent = self.parent_of(rel)?;
        let name = c_name(split_last(rel).1).map_err(write_err(rel, "name"))?;
        self.clear_slot(parent.as_fd(), &name, rel, false)?;
        // The target is stored verbatim and never resolved here: at run time the container
        // sees it from inside its own root.
        rustix::fs::symlinkat(OsStr::from_bytes(&target), parent.as_fd(), &name)
            .map_err(|e| write_err(rel, "create the symlink")(e.into()))?;
        let outcome = meta
            .apply_at(parent.as_fd(), &name, true)
            .map_err(write_err(rel, "set the owner or times of"))?;
        self.stats.xattr_failures += outcome.xattr_failures;
        Ok(Outcome::Applied)
    }

    pub(super) fn make_hard_link<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        raw: &[u8],
        rel: &[u8],
    ) -> Result<Outcome, ApplyError> {
        let Some(target_raw) = entry.link_name_bytes().map(|t| t.into_owned()) else {
            return Ok(Outcome::Skipped("hard link without a target".into()));
        };
        // The target is an archive name too: relative to the layer root, mapped like the
        // entry names, and never allowed to climb out.
        let target = match self.names.map(&target_raw) {
            Ok(Some(t)) if !t.is_empty() => t,
            Ok(_) => {
                return Ok(Outcome::Skipped(format!(
                    "hard link to '{}', which is not part of what is extracted",
                    shown(&target_raw)
                )))
            }
            Err(_) => {
                return Err(ApplyError::Unsafe {
                    path: shown(raw),
                    why: "is a hard link to a path outside the root",
                })
            }
        };
        let (target_parent, target_name) = split_last(&target);
        let missing = || {
            Outcome::Skipped(format!(
                "hard link to '/{}', which does not exist",
                shown(&target)
            ))
        };
        let Some(target_dir) = self
            .dirs
            .existing(self.root, target_parent)
            .map_err(write_err(&target, "resolve the hard link target"))?
        else {
            return Ok(missing());
        };
        let target_cname = c_name(target_name).map_err(write_err(&target, "name"))?;
        let target_meta = match stat_at(target_dir.as_fd(), &target_cname) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(missing()),
            Err(e) => return Err(write_err(&target, "inspect the hard link target")(e)),
        };
        if target_meta.kind != InodeKind::File {
            return Ok(Outcome::Skipped(format!(
                "hard link to '/{}', which is not a regular file",
                shown(&target)
            )));
        }
        let parent = self.parent_of(rel)?;
        let name = c_name(split_last(rel).1).map_err(write_err(rel, "name"))?;
        if let Ok(cur) = stat_at(parent.as_fd(), &name) {
            if cur.ino == target_meta.ino && cur.dev == target_meta.dev {
                self.stats.hard_links += 1;
                return Ok(Outcome::Applied);
            }
        }
        self.clear_slot(parent.as_fd(), &name, rel, false)?;
        rustix::fs::linkat(
            target_dir.as_fd(),
            &target_cname,
            parent.as_fd(),
            &name,
            AtFlags::empty(),
        )
        .map_err(|e| write_err(rel, "create the hard link")(e.into()))?;
        self.stats.hard_links += 1;
        Ok(Outcome::Applied)
    }

    pub(super) fn make_node<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        raw: &[u8],
        rel: &[u8],
        kind: EntryType,
    ) -> Result<Outcome, ApplyError> {
        let meta = self.meta(entry, raw)?;
        let header = entry.header();
        let number = |v: io::Result<Option<u32>>| {
            v.map(Option::unwrap_or_default)
                .map_err(|source| ApplyError::Entry {
                    path: shown(raw),
                    source,
                })
        };
        let (file_type, dev) = match kind {
            EntryType::Fifo => (FileType::Fifo, 0),
            EntryType::Char | EntryType::Block => {
                let major = number(header.device_major())?;
                let minor = number(header.device_minor())?;
                let ft = if kind == EntryType::Char {
                    FileType::CharacterDevice
                } else {
                    FileType::BlockDevice
                };
                (ft, rustix::fs::makedev(major, minor))
            }
            _ => return Ok(Outcome::Skipped(format!("unsupported entry type {kind:?}"))),
        };
        let parent = self.parent_of(rel)?;
        let name = c_name(split_last(rel).1).map_err(write_err(rel, "name"))?;
        self.clear_slot(parent.as_fd(), &name, rel, false)?;
        rustix::fs::mknodat(
            parent.as_fd(),
            &name,
            file_type,
            Mode::from_raw_mode(0o600),
            dev,
        )
        .map_err(|e| write_err(rel, "create the device node or FIFO")(e.into()))?;
        let outcome = meta
            .apply_at(parent.as_fd(), &name, false)
            .map_err(write_err(rel, "set the owner, mode or times of"))?;
        self.stats.xattr_failures += outcome.xattr_failures;
        Ok(Outcome::Applied)
    }
}
