//! OCI whiteouts (image-spec `layer.md`, "Whiteouts").
//!
//! `dir/.wh.NAME` hides `dir/NAME` of the lower layers; `dir/.wh..wh..opq` hides every lower
//! child of `dir`. Whiteouts only act on lower layers: whatever this layer itself wrote survives,
//! whether its entries come before or after the whiteout in the stream.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use rustix::fs::{Mode, OFlags};

use super::paths::{child, split_last, RelPath};
use super::{c_name, write_err, Applier, ApplyError, Outcome};
use crate::inode_walk::{list_dir, open_dir_at, stat_at, InodeKind};

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE: &[u8] = b".wh..wh..opq";

impl Applier<'_> {
    /// Handle `rel` if it is a whiteout (and whiteouts are on); `None` for ordinary entries.
    pub(super) fn try_whiteout(
        &mut self,
        raw: &[u8],
        rel: &[u8],
    ) -> Result<Option<Outcome>, ApplyError> {
        if !self.opts.oci_whiteouts {
            return Ok(None);
        }
        let (parent, name) = split_last(rel);
        if name == OPAQUE {
            self.opaque(parent)?;
            self.stats.whiteouts += 1;
            return Ok(Some(Outcome::Applied));
        }
        let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) else {
            return Ok(None);
        };
        if hidden.is_empty() || hidden == b"." || hidden == b".." {
            return Err(ApplyError::Unsafe {
                path: String::from_utf8_lossy(raw).into_owned(),
                why: "is a whiteout of an invalid name",
            });
        }
        if hidden.starts_with(WHITEOUT_PREFIX) {
            // aufs bookkeeping (`.wh..wh.plnk`, `.wh..wh.aufs`): meaningless here.
            return Ok(Some(Outcome::Skipped("aufs metadata".into())));
        }
        let target = child(parent, hidden);
        if !self.layer_paths.contains(&target) {
            self.whiteout(parent, hidden, &target)?;
        }
        self.stats.whiteouts += 1;
        Ok(Some(Outcome::Applied))
    }

    fn whiteout(&mut self, parent: &[u8], hidden: &[u8], target: &[u8]) -> Result<(), ApplyError> {
        let Some(dir) = self
            .dirs
            .existing(self.root, parent)
            .map_err(write_err(target, "resolve the whiteout target"))?
        else {
            return Ok(());
        };
        let name = c_name(hidden).map_err(write_err(target, "name"))?;
        match stat_at(dir.as_fd(), &name) {
            Ok(meta) => self.remove_child(dir.as_fd(), &name, target, meta.kind),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(write_err(target, "inspect the whiteout target")(e)),
        }
    }

    fn opaque(&mut self, dir_path: &[u8]) -> Result<(), ApplyError> {
        let Some(dir) = self
            .dirs
            .existing(self.root, dir_path)
            .map_err(write_err(dir_path, "resolve the opaque directory"))?
        else {
            return Ok(());
        };
        let listing = rustix::fs::openat(
            dir.as_fd(),
            c".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| write_err(dir_path, "open the opaque directory")(e.into()))?;
        self.clear_lower(listing.as_fd(), dir_path.to_vec())?;
        self.dirs.invalidate();
        Ok(())
    }

    /// Remove everything under `dir` that this layer did not write; descend into directories
    /// this layer wrote, as they may still hold lower children.
    fn clear_lower(&mut self, dir: BorrowedFd<'_>, path: RelPath) -> Result<(), ApplyError> {
        let names = list_dir(dir).map_err(write_err(&path, "list the opaque directory"))?;
        for name in names {
            let rel = child(&path, name.as_bytes());
            let meta = match stat_at(dir, &name) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(write_err(&rel, "inspect")(e)),
            };
            if !self.layer_paths.contains(&rel) {
                self.remove_child(dir, &name, &rel, meta.kind)?;
            } else if meta.kind == InodeKind::Dir {
                let sub = open_dir_at(dir, &name).map_err(write_err(&rel, "open"))?;
                self.clear_lower(sub.as_fd(), rel)?;
            }
        }
        Ok(())
    }
}
