//! Signals: a `signalfd` to receive them as data, and resetting dispositions before exec.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

pub use libc::{SIGCHLD, SIGHUP, SIGINT, SIGKILL, SIGQUIT, SIGTERM, SIGWINCH};

fn sigset_of(signals: &[i32]) -> libc::sigset_t {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the set; sigaddset only writes into it.
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        for s in signals {
            libc::sigaddset(set.as_mut_ptr(), *s);
        }
        set.assume_init()
    }
}

/// Signals blocked for the calling thread and delivered through a file descriptor instead.
/// Dropping it restores the previous signal mask.
///
/// Children forked while it lives inherit the blocked mask: they must call [`reset_all`]
/// before exec.
pub struct SignalFd {
    fd: OwnedFd,
    previous: libc::sigset_t,
}

impl SignalFd {
    pub fn new(signals: &[i32]) -> io::Result<Self> {
        let set = sigset_of(signals);
        let mut previous = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: both sets are valid for the call; pthread_sigmask writes the old mask.
        let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, previous.as_mut_ptr()) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        // SAFETY: pthread_sigmask succeeded, so it wrote the previous mask.
        let previous = unsafe { previous.assume_init() };
        // SAFETY: set is a valid sigset; -1 asks for a new descriptor.
        let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
        if fd == -1 {
            let err = io::Error::last_os_error();
            // SAFETY: restoring the mask saved above.
            unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &previous, std::ptr::null_mut()) };
            return Err(err);
        }
        // SAFETY: signalfd returned a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(SignalFd { fd, previous })
    }

    /// The next pending signal, or `None` when none is queued.
    pub fn read(&self) -> io::Result<Option<i32>> {
        let mut info = MaybeUninit::<libc::signalfd_siginfo>::uninit();
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        // SAFETY: info is a writable buffer of exactly `size` bytes.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), info.as_mut_ptr().cast(), size) };
        if n == -1 {
            let err = io::Error::last_os_error();
            return match err.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(None),
                _ => Err(err),
            };
        }
        if n as usize != size {
            return Ok(None);
        }
        // SAFETY: the kernel filled the whole structure.
        let info = unsafe { info.assume_init() };
        Ok(Some(info.ssi_signo as i32))
    }
}

impl AsFd for SignalFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for SignalFd {
    fn drop(&mut self) {
        // SAFETY: restoring the mask saved in new().
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.previous, std::ptr::null_mut()) };
    }
}

/// Post-fork, before exec: every signal back to its default action and nothing blocked, so the
/// command does not inherit the tool's handling (an ignored SIGINT would survive exec).
pub fn reset_all() {
    for sig in 1..libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: SIG_DFL is always a valid disposition; invalid numbers fail harmlessly.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
    let empty = sigset_of(&[]);
    // SAFETY: empty is a valid, initialised sigset.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut()) };
}

/// Ignore `signals` in the calling process.
pub fn ignore(signals: &[i32]) {
    for sig in signals {
        // SAFETY: SIG_IGN is a valid disposition for every catchable signal.
        unsafe { libc::signal(*sig, libc::SIG_IGN) };
    }
}

/// Block `signals` in the calling thread (they stay pending).
pub fn block(signals: &[i32]) {
    let set = sigset_of(signals);
    // SAFETY: set is a valid sigset.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
}

static CANCEL_REQUESTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A file the process removes even when a second signal makes it quit at once (see
/// [`remove_on_abort`]); null when there is none.
static ABORT_UNLINK: std::sync::atomic::AtomicPtr<libc::c_char> =
    std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());

extern "C" fn request_cancel(_signal: libc::c_int) {
    // Only async-signal-safe work here: an atomic swap, and `unlink` + `_exit` when the user
    // insists (a second Ctrl-C while the first is still being honoured, e.g. behind a stalled
    // server; what was staged in the store is cleared by the next run).
    if CANCEL_REQUESTED.swap(true, std::sync::atomic::Ordering::SeqCst) {
        let path = ABORT_UNLINK.load(std::sync::atomic::Ordering::SeqCst);
        if !path.is_null() {
            // SAFETY: a NUL-terminated string that is never freed (see remove_on_abort);
            // unlink is async-signal-safe.
            unsafe { libc::unlink(path) };
        }
        // SAFETY: _exit is async-signal-safe and takes no pointers.
        unsafe { libc::_exit(130) };
    }
}

/// Until the guard is dropped, a second cancel signal (which ends the process at once) also
/// removes `path`: for a temporary file that must not outlive an abandoned run. One path at a
/// time; a newer guard replaces the older one's path.
pub fn remove_on_abort(path: &std::path::Path) -> AbortUnlink {
    use std::os::unix::ffi::OsStrExt;
    // Leaked on purpose (a few bytes per call): the handler may be reading it on another
    // thread at the very moment the guard is dropped, so it is never freed.
    let raw = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_or(std::ptr::null_mut(), std::ffi::CString::into_raw);
    ABORT_UNLINK.store(raw, std::sync::atomic::Ordering::SeqCst);
    AbortUnlink { raw }
}

pub struct AbortUnlink {
    raw: *mut libc::c_char,
}

impl Drop for AbortUnlink {
    fn drop(&mut self) {
        // Only ours is cleared: a newer guard may have replaced it.
        let _ = ABORT_UNLINK.compare_exchange(
            self.raw,
            std::ptr::null_mut(),
            std::sync::atomic::Ordering::SeqCst,
            std::sync::atomic::Ordering::SeqCst,
        );
    }
}

/// Turn `signals` (Ctrl-C and friends) into a flag that long-running work polls, so it can
/// stop at a safe point and clean up instead of dying half-way. Interrupted system calls are
/// restarted (`SA_RESTART`): the flag, not `EINTR`, carries the request.
pub fn cancel_flag_on(signals: &[i32]) -> io::Result<&'static std::sync::atomic::AtomicBool> {
    for &s in signals {
        let mut action = MaybeUninit::<libc::sigaction>::zeroed();
        // SAFETY: a zeroed sigaction is valid; we fill handler, mask and flags before use,
        // and the handler only performs an atomic store.
        let rc = unsafe {
            let a = action.as_mut_ptr();
            (*a).sa_sigaction = request_cancel as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut (*a).sa_mask);
            (*a).sa_flags = libc::SA_RESTART;
            libc::sigaction(s, a, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(&CANCEL_REQUESTED)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHILD: &str = "CD_SYS_ABORT_CHILD";

    /// Runs twice: as the test, which starts this same test binary as a child; and as that
    /// child, which takes Ctrl-C twice (the handler is process-wide, so it must not run in the
    /// test harness's own process).
    #[test]
    fn a_second_signal_removes_the_registered_file_and_exits_130() {
        if let Some(path) = std::env::var_os(CHILD) {
            let flag = cancel_flag_on(&[SIGINT]).expect("install the handler");
            let _guard = remove_on_abort(std::path::Path::new(&path));
            // SAFETY: raise(3) only delivers a signal to this thread.
            unsafe { libc::raise(SIGINT) };
            assert!(flag.load(std::sync::atomic::Ordering::SeqCst));
            // SAFETY: as above; this one ends the process.
            unsafe { libc::raise(SIGINT) };
            unreachable!("the second signal should have ended the process");
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("backup.tar.partial");
        std::fs::write(&file, b"half").expect("write the file");
        let status = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                "signal::tests::a_second_signal_removes_the_registered_file_and_exits_130",
                "--test-threads=1",
            ])
            .env(CHILD, &file)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("run the child");
        assert_eq!(status.code(), Some(130));
        assert!(!file.exists(), "the registered file survived");
        // A dropped guard no longer points at anything.
        drop(remove_on_abort(&file));
        assert!(ABORT_UNLINK
            .load(std::sync::atomic::Ordering::SeqCst)
            .is_null());
    }
}
