//! Mounts. Targets are usually `/proc/self/fd/N` paths of `O_PATH` handles that were resolved
//! inside a container root, so a symlink planted in the rootfs cannot redirect a mount onto a
//! host path.

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;

use rustix::fs::StatVfsMountFlags;
pub use rustix::mount::MountFlags;
use rustix::mount::{MountPropagationFlags, UnmountFlags};

/// Bind `src` onto `dst`; `recursive` takes the submounts along (`MS_REC`).
pub fn bind(src: &Path, dst: &Path, recursive: bool) -> io::Result<()> {
    if recursive {
        rustix::mount::mount_bind_recursive(src, dst)?;
    } else {
        rustix::mount::mount_bind(src, dst)?;
    }
    Ok(())
}

/// Mount a fresh instance of `fstype` (`proc`, `tmpfs`, `devpts`, `sysfs` ...) onto `dst`.
pub fn mount_fs(fstype: &str, dst: &Path, flags: MountFlags, data: &str) -> io::Result<()> {
    let data = std::ffi::CString::new(data)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "mount data contains NUL"))?;
    rustix::mount::mount(fstype, dst, fstype, flags, data.as_c_str())?;
    Ok(())
}

/// Make every mount at and below `path` a slave: mounts made below it from now on do not
/// propagate back to the peers (the host), while host mount events still arrive.
pub fn make_rslave(path: &Path) -> io::Result<()> {
    rustix::mount::mount_change(
        path,
        MountPropagationFlags::DOWNSTREAM | MountPropagationFlags::REC,
    )?;
    Ok(())
}

/// Make every mount at and below `path` private.
pub fn make_rprivate(path: &Path) -> io::Result<()> {
    rustix::mount::mount_change(
        path,
        MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
    )?;
    Ok(())
}

/// Remount the bind mount at `path` with `extra` flags added, keeping the per-mount flags it
/// already has (a plain `MS_REMOUNT|MS_BIND` would silently drop `nosuid`, `nodev`, `noexec`).
pub fn remount_bind_adding(path: &Path, extra: MountFlags) -> io::Result<()> {
    let current = rustix::fs::statvfs(path)?.f_flag;
    let mut flags = extra;
    for (st, ms) in [
        (StatVfsMountFlags::RDONLY, MountFlags::RDONLY),
        (StatVfsMountFlags::NOSUID, MountFlags::NOSUID),
        (StatVfsMountFlags::NODEV, MountFlags::NODEV),
        (StatVfsMountFlags::NOEXEC, MountFlags::NOEXEC),
        (StatVfsMountFlags::NOATIME, MountFlags::NOATIME),
        (StatVfsMountFlags::NODIRATIME, MountFlags::NODIRATIME),
        (StatVfsMountFlags::RELATIME, MountFlags::RELATIME),
    ] {
        if current.contains(st) {
            flags |= ms;
        }
    }
    rustix::mount::mount_remount(path, flags | MountFlags::BIND, "")?;
    Ok(())
}

/// Add `flags` (any of `RDONLY`, `NOSUID`, `NODEV`, `NOEXEC`) to the mount `fd` refers to and
/// to every mount below it.
///
/// Uses `mount_setattr(2)` with `AT_RECURSIVE` (Linux 5.12+); older kernels get a remount of
/// the top mount only (through `path`, which must name the same mount), reported as `Ok(false)`.
pub fn restrict_recursive(fd: impl AsFd, path: &Path, flags: MountFlags) -> io::Result<bool> {
    let mut attr_set = 0u64;
    for (ms, attr) in [
        (MountFlags::RDONLY, libc::MOUNT_ATTR_RDONLY),
        (MountFlags::NOSUID, libc::MOUNT_ATTR_NOSUID),
        (MountFlags::NODEV, libc::MOUNT_ATTR_NODEV),
        (MountFlags::NOEXEC, libc::MOUNT_ATTR_NOEXEC),
    ] {
        if flags.contains(ms) {
            attr_set |= attr;
        }
    }
    let attr = libc::mount_attr {
        attr_set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: the fd is borrowed for the call, the path is a static empty C string used with
    // AT_EMPTY_PATH, and attr is a live mount_attr whose exact size is passed.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_fd().as_raw_fd(),
            c"".as_ptr(),
            (libc::AT_EMPTY_PATH | libc::AT_RECURSIVE) as libc::c_uint,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    if rc == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::ENOSYS) {
        return Err(err);
    }
    remount_bind_adding(path, flags)?;
    Ok(false)
}

/// Unmount `path`; with `lazy`, detach it even when busy (`MNT_DETACH`).
pub fn unmount(path: &Path, lazy: bool) -> io::Result<()> {
    let flags = if lazy {
        UnmountFlags::DETACH
    } else {
        UnmountFlags::empty()
    };
    rustix::mount::unmount(path, flags)?;
    Ok(())
}
