//! The interactive side: a pty from the container's own devpts instance, the host terminal in
//! raw mode while the session runs, and the byte relay between them.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use pathrs::flags::OpenFlags;
use rustix::termios::{self, OptionalActions, Termios};

use crate::guest_fs::{to_io, GuestRoot};

/// A pty pair allocated in the container's devpts instance.
pub(crate) struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
}

/// Open `dev/pts/ptmx` of the container root as seen inside its mount namespace
/// (`/proc/<init>/root/<rootfs>`), resolved inside that root, and the matching slave.
pub(crate) fn open_pty(ns_root: &Path, host_tty: BorrowedFd<'_>) -> io::Result<Pty> {
    let root = GuestRoot::open(ns_root)?;
    let flags = OpenFlags::O_RDWR | OpenFlags::O_NOCTTY | OpenFlags::O_CLOEXEC;
    let master: OwnedFd = root
        .resolve("/dev/pts/ptmx")?
        .reopen(flags)
        .map_err(to_io)?
        .into();
    let slave = match cd_sys::pty::open_peer(&master)? {
        Some(s) => s,
        None => {
            let n = cd_sys::pty::pty_number(&master)?;
            root.resolve(&format!("/dev/pts/{n}"))?
                .reopen(flags)
                .map_err(to_io)?
                .into()
        }
    };
    // The slave starts with the host terminal's settings and size, as if the user's terminal
    // continued inside.
    if let Ok(attrs) = termios::tcgetattr(host_tty) {
        let _ = termios::tcsetattr(&slave, OptionalActions::Now, &attrs);
    }
    if let Ok(size) = termios::tcgetwinsize(host_tty) {
        let _ = termios::tcsetwinsize(&slave, size);
    }
    let fl = rustix::fs::fcntl_getfl(&master)?;
    rustix::fs::fcntl_setfl(&master, fl | rustix::fs::OFlags::NONBLOCK)?;
    Ok(Pty { master, slave })
}

/// The host terminal in raw mode; restored when dropped (also on error paths).
pub(crate) struct RawMode<'a> {
    tty: BorrowedFd<'a>,
    saved: Termios,
}

impl<'a> RawMode<'a> {
    pub fn enter(tty: BorrowedFd<'a>) -> io::Result<Self> {
        let saved = termios::tcgetattr(tty)?;
        let mut raw = saved.clone();
        raw.make_raw();
        // TCSANOW, not TCSAFLUSH: keystrokes typed ahead belong to the session.
        termios::tcsetattr(tty, OptionalActions::Now, &raw)?;
        Ok(RawMode { tty, saved })
    }
}

impl Drop for RawMode<'_> {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(self.tty, OptionalActions::Drain, &self.saved);
    }
}

/// Copy the host terminal's window size to the pty (on SIGWINCH).
pub(crate) fn forward_window_size(host_tty: BorrowedFd<'_>, master: impl AsFd) {
    if let Ok(size) = termios::tcgetwinsize(host_tty) {
        let _ = termios::tcsetwinsize(master, size);
    }
}

pub(crate) fn is_terminal(fd: impl AsFd) -> bool {
    termios::isatty(fd)
}
