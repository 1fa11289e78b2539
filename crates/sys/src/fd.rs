//! File descriptor hygiene before exec and in long-lived helpers.

use std::io;
use std::os::fd::RawFd;

/// Mark every descriptor from `first` upwards close-on-exec, so nothing but stdio reaches the
/// command (the CVE-2024-21626 class: a leaked directory fd is a way out of a chroot) while the
/// caller's own CLOEXEC error pipe keeps working until the exec.
pub fn cloexec_from(first: RawFd) -> io::Result<()> {
    // SAFETY: close_range takes plain integers; CLOSE_RANGE_CLOEXEC closes nothing now.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC as libc::c_uint,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    // Kernels before 5.11: walk the possible descriptors.
    for fd in first..max_fd() {
        // SAFETY: F_SETFD on a number that may not be open fails with EBADF and changes nothing.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(())
}

/// Close every descriptor from `first` upwards except those in `keep`.
///
/// Only for a freshly forked child that owns nothing else: any `OwnedFd` of the parent that is
/// closed here must never be used or dropped by this process afterwards.
pub fn close_all_except(first: RawFd, keep: &[RawFd]) {
    let mut keep: Vec<RawFd> = keep.iter().copied().filter(|fd| *fd >= first).collect();
    keep.sort_unstable();
    let mut lo = first;
    for k in keep.iter().copied().chain(std::iter::once(RawFd::MAX)) {
        if k > lo {
            close_range(lo, k - 1);
        }
        lo = k.saturating_add(1);
    }
}

fn close_range(lo: RawFd, hi: RawFd) {
    // SAFETY: close_range takes plain integers; see close_all_except for the ownership contract.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            lo as libc::c_uint,
            hi as libc::c_uint,
            0 as libc::c_uint,
        )
    };
    if rc != 0 {
        for fd in lo..=hi.min(max_fd()) {
            // SAFETY: as above; closing an unused number fails with EBADF.
            unsafe { libc::close(fd) };
        }
    }
}

fn max_fd() -> RawFd {
    // SAFETY: sysconf takes a plain integer.
    let n = unsafe { libc::sysconf(libc::_SC_OPEN_MAX) };
    if n <= 0 {
        65536
    } else {
        n.min(1 << 20) as RawFd
    }
}
