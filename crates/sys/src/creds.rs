//! Switching the calling process to another user.

use std::io;

/// Set supplementary groups, then real/effective/saved gid, then uid (in that order: once the
/// uid is dropped, changing groups is no longer permitted).
///
/// Post-fork: glibc applies these to every thread, but the caller is meant to be a single-threaded
/// child about to exec.
pub fn switch_user(uid: u32, gid: u32, groups: &[u32]) -> io::Result<()> {
    let groups: Vec<libc::gid_t> = groups.to_vec();
    // SAFETY: the pointer and length describe a live Vec of gid_t.
    if unsafe { libc::setgroups(groups.len(), groups.as_ptr()) } == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: plain integer arguments.
    if unsafe { libc::setresgid(gid, gid, gid) } == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: plain integer arguments.
    if unsafe { libc::setresuid(uid, uid, uid) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
