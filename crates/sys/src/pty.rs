//! Pseudo-terminals: unlocking, opening the peer, controlling terminal, window size.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use rustix::pty::OpenptFlags;

/// Unlock the pty master `master` (opened from a devpts instance's `ptmx`) and open its peer
/// (the slave side) without naming it by path.
///
/// `TIOCGPTPEER` (Linux 4.13+) opens the peer of exactly this master, even if the container
/// remounted its `/dev/pts`; older kernels need the caller to open `pts/N` itself, so `Ok(None)`
/// asks it to, and [`pty_number`] gives `N`.
pub fn open_peer(master: impl AsFd) -> io::Result<Option<OwnedFd>> {
    rustix::pty::unlockpt(master.as_fd())?;
    match rustix::pty::ioctl_tiocgptpeer(
        master.as_fd(),
        OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC,
    ) {
        Ok(fd) => Ok(Some(fd)),
        Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOTTY => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The index `N` of the pty master's `pts/N` in its devpts instance (`TIOCGPTN`).
pub fn pty_number(master: impl AsFd) -> io::Result<u32> {
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one c_uint through the pointer, which is live and writable.
    if unsafe { libc::ioctl(master.as_fd().as_raw_fd(), libc::TIOCGPTN, &mut n) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(n)
}

/// Make the terminal `fd` the controlling terminal of the caller's (new) session.
pub fn set_controlling_terminal(fd: impl AsFd) -> io::Result<()> {
    rustix::process::ioctl_tiocsctty(fd)?;
    Ok(())
}

/// Duplicate `fd` onto descriptors 0, 1 and 2.
pub fn dup_onto_stdio(fd: impl AsFd) -> io::Result<()> {
    rustix::stdio::dup2_stdin(fd.as_fd())?;
    rustix::stdio::dup2_stdout(fd.as_fd())?;
    rustix::stdio::dup2_stderr(fd.as_fd())?;
    Ok(())
}
