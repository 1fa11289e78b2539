//! Namespaces: `unshare(2)`, `setns(2)` and the UTS hostname.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// A set of namespace kinds (the `CLONE_NEW*` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Namespaces(libc::c_int);

impl Namespaces {
    pub const MOUNT: Namespaces = Namespaces(libc::CLONE_NEWNS);
    pub const PID: Namespaces = Namespaces(libc::CLONE_NEWPID);
    pub const UTS: Namespaces = Namespaces(libc::CLONE_NEWUTS);
    pub const IPC: Namespaces = Namespaces(libc::CLONE_NEWIPC);

    pub const fn empty() -> Self {
        Namespaces(0)
    }
    pub const fn union(self, other: Namespaces) -> Self {
        Namespaces(self.0 | other.0)
    }
    pub const fn contains(self, other: Namespaces) -> bool {
        self.0 & other.0 == other.0
    }
    /// The file name of this (single) namespace under `/proc/PID/ns/`.
    pub fn proc_name(self) -> Option<&'static str> {
        match self.0 {
            libc::CLONE_NEWNS => Some("mnt"),
            libc::CLONE_NEWPID => Some("pid"),
            libc::CLONE_NEWUTS => Some("uts"),
            libc::CLONE_NEWIPC => Some("ipc"),
            _ => None,
        }
    }
    /// The single kinds in this set, in the order they should be joined.
    pub fn kinds(self) -> Vec<Namespaces> {
        [Self::IPC, Self::UTS, Self::PID, Self::MOUNT]
            .into_iter()
            .filter(|k| self.contains(*k))
            .collect()
    }
}

/// `unshare(2)`. With `PID`, only children created afterwards enter the new PID namespace.
///
/// Call it in a freshly forked, single-threaded child (a mount namespace cannot be unshared by
/// one thread of a process that shares its filesystem context with others).
pub fn unshare(ns: Namespaces) -> io::Result<()> {
    // SAFETY: unshare takes a plain flag word; affecting only this (single-threaded) process is
    // the documented contract.
    if unsafe { libc::unshare(ns.0) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `setns(2)` into the namespace behind `fd` (a `/proc/PID/ns/*` file), checked to be of kind
/// `ns`. Same single-thread contract as [`unshare`].
pub fn setns(fd: BorrowedFd<'_>, ns: Namespaces) -> io::Result<()> {
    // SAFETY: the fd is borrowed, so open for the duration of the call; the flags are plain.
    if unsafe { libc::setns(fd.as_raw_fd(), ns.0) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `sethostname(2)` in the caller's UTS namespace.
pub fn set_hostname(name: &str) -> io::Result<()> {
    rustix::system::sethostname(name.as_bytes())?;
    Ok(())
}
