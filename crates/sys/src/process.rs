//! Process creation, exec, waiting and signalling.

use std::ffi::{CStr, CString};
use std::io;

use crate::Pid;

/// Which side of a [`fork`] the caller is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fork {
    Child,
    Parent(Pid),
}

/// `fork(2)`.
///
/// The child is a copy of the calling thread only. Callers keep the process free of worker
/// threads while it forks (ARCHITECTURE.md decision 1) and make the child exec or
/// [`exit_immediately`] soon; the child must never return into code that expects the parent's
/// state (destructors, test harness, buffered stdio).
pub fn fork() -> io::Result<Fork> {
    // SAFETY: fork has no memory-safety preconditions of its own; the hazards (locks held by
    // other threads) are covered by the contract above and by glibc resetting its malloc locks
    // in the child.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Fork::Child),
        pid => Ok(Fork::Parent(pid)),
    }
}

/// `_exit(2)`: end the process without running destructors or flushing Rust's stdio buffers,
/// which belong to the parent after a fork.
pub fn exit_immediately(code: i32) -> ! {
    // SAFETY: _exit takes a plain integer and never returns.
    unsafe { libc::_exit(code) }
}

/// `execve(2)`; returns only on failure, with the error.
pub fn execve(path: &CStr, argv: &[CString], envp: &[CString]) -> io::Error {
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let mut envp_ptrs: Vec<*const libc::c_char> = envp.iter().map(|e| e.as_ptr()).collect();
    envp_ptrs.push(std::ptr::null());
    // SAFETY: every pointer comes from a CString that outlives the call, and both arrays are
    // NULL-terminated as execve requires.
    unsafe { libc::execve(path.as_ptr(), argv_ptrs.as_ptr(), envp_ptrs.as_ptr()) };
    io::Error::last_os_error()
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Exited(i32),
    Signaled(i32),
}

impl ExitStatus {
    /// The shell convention: the exit code, or 128 + N when killed by signal N.
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Exited(code) => code,
            ExitStatus::Signaled(sig) => 128 + sig,
        }
    }

    fn from_raw(status: libc::c_int) -> Option<Self> {
        if libc::WIFEXITED(status) {
            Some(ExitStatus::Exited(libc::WEXITSTATUS(status)))
        } else if libc::WIFSIGNALED(status) {
            Some(ExitStatus::Signaled(libc::WTERMSIG(status)))
        } else {
            None
        }
    }
}

/// `waitpid(2)` for one child (or any child with `pid == -1`), retrying on `EINTR`.
///
/// With `no_hang`, `Ok(None)` means the child is still running.
pub fn wait_for(pid: Pid, no_hang: bool) -> io::Result<Option<(Pid, ExitStatus)>> {
    let flags = if no_hang { libc::WNOHANG } else { 0 };
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: status is a valid, writable c_int for the duration of the call.
        let got = unsafe { libc::waitpid(pid, &mut status, flags) };
        if got == -1 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        if got == 0 {
            return Ok(None);
        }
        // Stopped/continued children are not reported without WUNTRACED/WCONTINUED.
        if let Some(st) = ExitStatus::from_raw(status) {
            return Ok(Some((got, st)));
        }
    }
}

/// `kill(2)`. Signal 0 probes for existence.
pub fn send_signal(pid: Pid, signal: i32) -> io::Result<()> {
    // SAFETY: kill takes plain integers.
    if unsafe { libc::kill(pid, signal) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `tgkill(2)`: send `signal` to one thread `tid` of process `pid`.
pub fn send_thread_signal(pid: Pid, tid: Pid, signal: i32) -> io::Result<()> {
    // SAFETY: tgkill takes plain integers.
    if unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, signal) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The caller's pid.
pub fn current_pid() -> Pid {
    rustix::process::getpid().as_raw_nonzero().get()
}

/// The caller's parent pid (0 when the parent is in another PID namespace).
pub fn parent_pid() -> Pid {
    rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get())
}

/// `PR_SET_PDEATHSIG`: deliver `signal` to the caller when the thread that forked it dies.
/// The setting is cleared by credential changes, so set it after switching user.
pub fn set_parent_death_signal(signal: i32) -> io::Result<()> {
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a plain integer argument.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `setsid(2)`: a new session and process group without a controlling terminal.
pub fn new_session() -> io::Result<()> {
    rustix::process::setsid()?;
    Ok(())
}

/// The kernel's start time of a process (field 22 of `/proc/PID/stat`, in clock ticks since
/// boot): together with the pid it names one process across pid reuse.
pub fn start_time(pid: Pid) -> io::Result<u64> {
    Ok(stat_of(pid)?.1)
}

/// Whether `pid` is the process that started at `start` and has not exited (a zombie has).
pub fn is_running(pid: Pid, start: u64) -> bool {
    matches!(stat_of(pid), Ok((state, st)) if st == start && state != 'Z' && state != 'X')
}

/// State letter (field 3) and start time (field 22) of `/proc/PID/stat`.
fn stat_of(pid: Pid) -> io::Result<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_stat(&stat).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected /proc/{pid}/stat"),
        )
    })
}

fn parse_stat(stat: &str) -> Option<(char, u64)> {
    // The command name (field 2) may contain spaces and parentheses: skip past the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // After the state (field 3) come fields 4.. ; starttime is field 22, the 19th of these.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_skips_a_command_name_with_spaces_and_parens() {
        let stat = "42 (a b) c)) S 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 1000 \
                    10 18446744073709551615";
        assert_eq!(parse_stat(stat), Some(('S', 987654)));
    }

    #[test]
    fn start_time_of_self_is_readable_and_stable() {
        let me = current_pid();
        let start = start_time(me).unwrap();
        assert_eq!(start_time(me).unwrap(), start);
        assert!(is_running(me, start));
        assert!(!is_running(me, start + 1));
    }

    #[test]
    fn signal_status_maps_to_128_plus_n() {
        assert_eq!(ExitStatus::Signaled(9).code(), 137);
        assert_eq!(ExitStatus::Exited(42).code(), 42);
    }
}
