//! Executing a [`MountPlan`] inside the container's private mount namespace.
//!
//! Every target is resolved inside the root (pathrs, `RESOLVE_IN_ROOT`) to an `O_PATH` handle
//! and the mount is made onto `/proc/self/fd/N`, which names exactly that directory: a
//! container symlink such as `proc -> /etc` or `tmp -> ../../..` cannot move a mount onto a
//! host path. A target that resolves to the container root itself is refused.

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use cd_sys::mount::{self as sysmount, MountFlags};

use crate::guest_fs::GuestRoot;
use crate::plan::{Missing, MountOptions, MountStep};

/// Bind the rootfs onto itself so the container root is a mount of its own.
pub(crate) fn bind_root_onto_itself(rootfs: &Path) -> io::Result<()> {
    sysmount::bind(rootfs, rootfs, false)
}

/// Execute `steps` under `rootfs` (already a mount point). Errors name the step's target.
pub(crate) fn execute(steps: &[MountStep], rootfs: &Path) -> Result<(), String> {
    let root =
        GuestRoot::open(rootfs).map_err(|e| format!("cannot open {}: {e}", rootfs.display()))?;
    let root_id =
        file_id(&root.resolve("/").map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    for step in steps {
        execute_step(&root, root_id, step).map_err(|e| match step.target() {
            Some(t) => format!("cannot mount {t}: {e}"),
            None => e.to_string(),
        })?;
    }
    Ok(())
}

fn file_id(fd: impl AsFd) -> io::Result<(u64, u64)> {
    let st = rustix::fs::fstat(fd)?;
    Ok((st.st_dev, st.st_ino))
}

fn fd_path(fd: impl AsFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd()))
}

fn flags_of(options: MountOptions) -> MountFlags {
    let mut flags = MountFlags::empty();
    if options.read_only {
        flags |= MountFlags::RDONLY;
    }
    if options.nosuid {
        flags |= MountFlags::NOSUID;
    }
    if options.nodev {
        flags |= MountFlags::NODEV;
    }
    if options.noexec {
        flags |= MountFlags::NOEXEC;
    }
    flags
}

/// The handle of an existing or newly created target, or `None` when it may be skipped.
fn target_handle(
    root: &GuestRoot,
    root_id: (u64, u64),
    target: &str,
    missing: Missing,
    source: Option<&Path>,
) -> io::Result<Option<pathrs::Handle>> {
    let handle = match root.resolve(target) {
        Ok(h) => h,
        Err(e) if e.kind() == io::ErrorKind::NotFound => match missing {
            Missing::Skip => return Ok(None),
            Missing::CreateDir => root.mkdir_all(target, 0o755)?,
            Missing::CreateFile => root.create_file(target, 0o644)?,
            Missing::CreateLikeSource => {
                let is_dir = source.map(|s| s.is_dir()).unwrap_or(true);
                if is_dir {
                    root.mkdir_all(target, 0o755)?
                } else {
                    root.create_file(target, 0o644)?
                }
            }
        },
        Err(e) => return Err(e),
    };
    if target != "/" && file_id(&handle)? == root_id {
        return Err(io::Error::other(
            "it resolves to the container root (a symlink in the image points at /)",
        ));
    }
    Ok(Some(handle))
}

fn execute_step(root: &GuestRoot, root_id: (u64, u64), step: &MountStep) -> io::Result<()> {
    match step {
        MountStep::Bind {
            source,
            target,
            recursive,
            options,
            missing,
        } => {
            if std::fs::symlink_metadata(source).is_err() {
                if *missing == Missing::Skip {
                    return Ok(());
                }
                return Err(io::Error::other(format!(
                    "the host path {} does not exist",
                    source.display()
                )));
            }
            let Some(handle) = target_handle(root, root_id, target, *missing, Some(source))? else {
                return Ok(());
            };
            sysmount::bind(source, &fd_path(&handle), *recursive)?;
            let flags = flags_of(*options);
            if !flags.is_empty() {
                // The handle still names the directory *under* the new mount; resolve again
                // to reach the mount itself.
                let mounted = root.resolve(target)?;
                if *recursive {
                    sysmount::restrict_recursive(&mounted, &fd_path(&mounted), flags)?;
                } else {
                    sysmount::remount_bind_adding(&fd_path(&mounted), flags)?;
                }
            }
            Ok(())
        }
        MountStep::Fresh {
            fstype,
            target,
            options,
            data,
            missing,
        } => {
            let Some(handle) = target_handle(root, root_id, target, *missing, None)? else {
                return Ok(());
            };
            sysmount::mount_fs(fstype, &fd_path(&handle), flags_of(*options), data)
        }
        MountStep::ReadOnly { target } => {
            let Some(handle) = target_handle(root, root_id, target, Missing::Skip, None)? else {
                return Ok(());
            };
            let path = fd_path(&handle);
            sysmount::bind(&path, &path, true)?;
            let mounted = root.resolve(target)?;
            sysmount::restrict_recursive(&mounted, &fd_path(&mounted), MountFlags::RDONLY)?;
            Ok(())
        }
        MountStep::Symlink { path, to } => root.symlink(path, to),
        MountStep::Integration(_) => Ok(()),
    }
}
