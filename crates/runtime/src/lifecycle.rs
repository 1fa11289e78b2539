//! `ps`, `kill` and `unmount`: who is in a container, and ending all of it.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cd_sys::process;
use cd_sys::{signal, Pid};

use crate::error::{IoContext, RuntimeError};
use crate::holder::{self, SESSIONS_LOCK};

/// What runs in a container right now.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunningState {
    /// The namespace holder, when the container's namespaces exist.
    pub holder: Option<Pid>,
    /// Sessions (`login`/`run` tool processes) holding the container.
    pub session_count: usize,
    /// Processes whose root is the container's rootfs, plus the holder pair; sorted.
    pub pids: Vec<Pid>,
}

impl RunningState {
    pub fn is_running(&self) -> bool {
        self.holder.is_some() || self.session_count > 0 || !self.pids.is_empty()
    }
}

/// The container's processes: those whose `/proc/PID/root` is the rootfs (same device and inode;
/// this sees them from the host even inside a private mount namespace), and the holder pair.
/// Works without root for the caller's own processes; others are skipped when unreadable.
pub fn running(state_dir: &Path, rootfs: &Path) -> Result<RunningState, RuntimeError> {
    let mut state = RunningState::default();
    let rec = holder::live_holder(state_dir);
    if let Some(r) = &rec {
        state.holder = Some(r.holder);
        state.pids.extend([r.holder, r.init]);
    }
    state.pids.extend(processes_in(rootfs)?);
    state.pids.sort_unstable();
    state.pids.dedup();
    state.session_count = count_shared_locks(&state_dir.join(SESSIONS_LOCK));
    Ok(state)
}

fn processes_in(rootfs: &Path) -> Result<Vec<Pid>, RuntimeError> {
    let Ok(meta) = fs::metadata(rootfs) else {
        return Ok(Vec::new());
    };
    let id = (meta.dev(), meta.ino());
    let me = process::current_pid();
    let mut pids = Vec::new();
    for entry in fs::read_dir("/proc").context(|| "cannot read /proc".to_string())? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<Pid>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        if let Ok(m) = fs::metadata(format!("/proc/{pid}/root")) {
            if (m.dev(), m.ino()) == id {
                pids.push(pid);
            }
        }
    }
    Ok(pids)
}

/// Shared `flock`s on `path`, from `/proc/locks` (one line per open file description).
fn count_shared_locks(path: &Path) -> usize {
    let Ok(meta) = fs::metadata(path) else {
        return 0;
    };
    let Ok(locks) = fs::read_to_string("/proc/locks") else {
        return 0;
    };
    count_locks_in(&locks, meta.dev(), meta.ino())
}

fn count_locks_in(locks: &str, dev: u64, ino: u64) -> usize {
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let wanted = format!("{major:02x}:{minor:02x}:{ino}");
    locks
        .lines()
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // "1: FLOCK  ADVISORY  READ  1234 08:01:5678 0 EOF"; blocked waiters have "->".
            f.len() >= 6 && f[1] == "FLOCK" && f[3] == "READ" && f[5] == wanted
        })
        .count()
}

/// What [`kill`] and [`unmount`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StopReport {
    /// Processes that were asked to stop.
    pub signalled: Vec<Pid>,
    /// Of those, the ones that needed SIGKILL.
    pub killed: Vec<Pid>,
    /// Leftover host mounts under the rootfs (e.g. from the Python tool) that were detached.
    pub unmounted: Vec<PathBuf>,
}

/// Stop a container: SIGTERM to every process in it, SIGKILL to the survivors after `grace`,
/// then end the namespace holder, which releases every mount of the container at once.
pub fn kill(state_dir: &Path, rootfs: &Path, grace: Duration) -> Result<StopReport, RuntimeError> {
    let mut report = StopReport::default();
    let rec = holder::live_holder(state_dir);
    let pair: Vec<Pid> = rec.iter().flat_map(|r| [r.holder, r.init]).collect();
    let targets: Vec<Pid> = processes_in(rootfs)?
        .into_iter()
        .filter(|p| !pair.contains(p))
        .collect();
    for pid in &targets {
        if process::send_signal(*pid, signal::SIGTERM).is_ok() {
            report.signalled.push(*pid);
        }
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && report.signalled.iter().any(|p| alive(*p)) {
        std::thread::sleep(Duration::from_millis(50));
    }
    for pid in &report.signalled {
        if alive(*pid) && process::send_signal(*pid, signal::SIGKILL).is_ok() {
            report.killed.push(*pid);
        }
    }
    if let Some(r) = &rec {
        // Killing `I` (PID 1 with --isolated) ends the PID namespace and makes the holder exit;
        // the holder is killed too in case it is stuck.
        if r.is_alive() {
            let _ = process::send_signal(r.init, signal::SIGKILL);
            let _ = process::send_signal(r.holder, signal::SIGKILL);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && r.is_alive() {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    holder::remove_record(state_dir);
    // Processes started in an earlier namespace generation (daemons a session left behind) are
    // found by their root like the others; wait briefly for the killed ones to vanish.
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && report.killed.iter().any(|p| alive(*p)) {
        std::thread::sleep(Duration::from_millis(20));
    }
    report.unmounted = unmount_host_leftovers(rootfs)?;
    // Each session's tool process outlives its command by a moment (it reaps it, then exits and
    // drops its lock); callers that go on to delete or rename must not see those stragglers.
    let sessions = state_dir.join(SESSIONS_LOCK);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && count_shared_locks(&sessions) > 0 {
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(report)
}

/// End a container's sessions (SIGTERM, SIGKILL after two seconds) and release its namespace.
pub fn unmount(state_dir: &Path, rootfs: &Path) -> Result<StopReport, RuntimeError> {
    kill(state_dir, rootfs, Duration::from_secs(2))
}

fn alive(pid: Pid) -> bool {
    // A zombie still answers kill(0) but is gone for our purposes.
    process::start_time(pid).is_ok_and(|start| process::is_running(pid, start))
}

/// Mounts under the rootfs in the host's own mount table. chroot-distro never makes any (its
/// mounts live in the container's private namespace), but an older tool or a crash of one may
/// have: detach them, deepest first, lazily when busy.
fn unmount_host_leftovers(rootfs: &Path) -> Result<Vec<PathBuf>, RuntimeError> {
    let rootfs = fs::canonicalize(rootfs).unwrap_or_else(|_| rootfs.to_path_buf());
    let mut done = Vec::new();
    for _ in 0..8 {
        let text = fs::read_to_string("/proc/self/mountinfo")
            .context(|| "cannot read /proc/self/mountinfo".to_string())?;
        let mut under: Vec<PathBuf> = text
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .map(unescape_mountinfo)
            .filter(|p| p.starts_with(&rootfs))
            .collect();
        if under.is_empty() {
            break;
        }
        under.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for m in under {
            if cd_sys::mount::unmount(&m, false).is_err() {
                let _ = cd_sys::mount::unmount(&m, true);
            }
            done.push(m);
        }
    }
    Ok(done)
}

/// mountinfo escapes space, tab, newline and backslash as `\NNN` (octal).
pub(crate) fn unescape_mountinfo(field: &str) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            if let Some(v) = std::str::from_utf8(&b[i + 1..i + 4])
                .ok()
                .and_then(|o| u8::from_str_radix(o, 8).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_only_shared_flocks_on_the_file() {
        let dev = libc::makedev(8, 1);
        let locks = "1: FLOCK  ADVISORY  READ  1234 08:01:5678 0 EOF\n\
                     2: FLOCK  ADVISORY  READ  1235 08:01:5678 0 EOF\n\
                     3: FLOCK  ADVISORY  WRITE 1236 08:01:5678 0 EOF\n\
                     4: POSIX  ADVISORY  READ  1237 08:01:5678 0 EOF\n\
                     5: FLOCK  ADVISORY  READ  1238 08:01:9999 0 EOF\n\
                     6: -> FLOCK  ADVISORY  READ  1239 08:01:5678 0 EOF\n";
        assert_eq!(count_locks_in(locks, dev, 5678), 2);
    }

    #[test]
    fn mountinfo_unescaping() {
        assert_eq!(unescape_mountinfo(r"/a\040b"), PathBuf::from("/a b"));
        assert_eq!(unescape_mountinfo("/plain"), PathBuf::from("/plain"));
    }

    #[test]
    fn an_unknown_container_is_not_running() {
        let dir = tempfile::tempdir().unwrap();
        let s = running(&dir.path().join("state"), &dir.path().join("rootfs")).unwrap();
        assert!(!s.is_running());
    }
}
