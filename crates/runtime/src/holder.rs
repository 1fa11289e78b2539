//! The namespace holder: the process pair that owns a container's private namespaces.
//!
//! The first session forks (through a short-lived intermediate, so the holder is not its child)
//! a *holder* `H`. `H` unshares the mount namespace (plus PID, UTS and IPC with `--isolated`),
//! makes `/` recursively slave so nothing propagates back to the host, and forks `I`. `I` is PID 1
//! of the new PID namespace when there is one (so the container's fresh `/proc` shows that
//! namespace); it sets the hostname, executes the mount plan and reports readiness through a
//! pipe, then reaps orphans. Sessions join `I`'s namespaces with `setns`.
//!
//! Every session holds a shared `flock` on `<state_dir>/sessions.lock` for its lifetime, in the
//! tool process (never in the container). `H` polls for that lock exclusively; once it gets it no
//! session is left, so it removes the record, kills `I` and exits: the namespaces, and every mount
//! in them, vanish at once. A SIGKILLed tool process releases its lock too, so nothing lingers.
//! Creating and joining are serialised by an exclusive lock on `<state_dir>/setup.lock`; a
//! session reads the record only while holding its shared lock, so it never joins a holder that
//! has decided to exit.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use cd_sys::ns::{self, Namespaces};
use cd_sys::process::{self, Fork};
use cd_sys::{fd, mount as sysmount, signal, Pid};

use crate::mounter;
use crate::plan::MountStep;

pub(crate) const RECORD: &str = "holder";
pub(crate) const SESSIONS_LOCK: &str = "sessions.lock";
pub(crate) const SETUP_LOCK: &str = "setup.lock";

/// How often the holder checks whether the last session has gone.
const POLL: Duration = Duration::from_millis(150);

/// What `<state_dir>/holder` records about a live holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HolderRecord {
    pub holder: Pid,
    pub holder_start: u64,
    /// The process whose namespaces sessions join (PID 1 of the container with `--isolated`).
    pub init: Pid,
    pub init_start: u64,
    pub isolated: bool,
    /// The mount plan's fingerprint, one step per line.
    pub plan: Vec<String>,
}

impl HolderRecord {
    fn render(&self) -> String {
        let mut s = format!(
            "chroot-distro-holder 1\n{} {} {} {} {}\n",
            self.holder,
            self.holder_start,
            self.init,
            self.init_start,
            if self.isolated { "isolated" } else { "shared" }
        );
        for line in &self.plan {
            s.push_str(line);
            s.push('\n');
        }
        s
    }

    fn parse(text: &str) -> Option<Self> {
        let mut lines = text.lines();
        if lines.next()? != "chroot-distro-holder 1" {
            return None;
        }
        let f: Vec<&str> = lines.next()?.split(' ').collect();
        if f.len() != 5 {
            return None;
        }
        Some(HolderRecord {
            holder: f[0].parse().ok()?,
            holder_start: f[1].parse().ok()?,
            init: f[2].parse().ok()?,
            init_start: f[3].parse().ok()?,
            isolated: f[4] == "isolated",
            plan: lines.map(str::to_string).collect(),
        })
    }

    /// Both processes are the ones recorded (same pid *and* start time: pids get reused).
    pub fn is_alive(&self) -> bool {
        process::is_running(self.holder, self.holder_start)
            && process::is_running(self.init, self.init_start)
    }
}

/// The recorded holder, if the record exists and its processes are still the recorded ones.
pub(crate) fn live_holder(state_dir: &Path) -> Option<HolderRecord> {
    let text = fs::read_to_string(state_dir.join(RECORD)).ok()?;
    HolderRecord::parse(&text).filter(HolderRecord::is_alive)
}

pub(crate) fn write_record(state_dir: &Path, rec: &HolderRecord) -> io::Result<()> {
    let tmp = state_dir.join(format!("{RECORD}.tmp"));
    fs::write(&tmp, rec.render())?;
    fs::rename(&tmp, state_dir.join(RECORD))
}

pub(crate) fn remove_record(state_dir: &Path) {
    let _ = fs::remove_file(state_dir.join(RECORD));
}

/// Everything the holder needs, prepared before forking.
pub(crate) struct HolderSpec<'a> {
    pub rootfs: &'a Path,
    pub state_dir: &'a Path,
    pub namespaces: Namespaces,
    pub hostname: Option<&'a str>,
    pub steps: &'a [MountStep],
    pub plan_fingerprint: Vec<String>,
}

/// Start a holder, wait until its mounts are in place, and record it.
///
/// The caller holds `setup.lock` exclusively and `sessions.lock` shared.
pub(crate) fn spawn(spec: &HolderSpec<'_>) -> Result<HolderRecord, String> {
    let (ready_r, ready_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| format!("cannot create a pipe: {e}"))?;
    let sessions_lock = spec.state_dir.join(SESSIONS_LOCK);
    let record_path = spec.state_dir.join(RECORD);
    match process::fork().map_err(|e| format!("cannot fork: {e}"))? {
        Fork::Child => {
            // The intermediate: start the holder and exit, so the holder is nobody's child and
            // the tool never has to reap it.
            let _ = process::new_session();
            match process::fork() {
                Ok(Fork::Child) => holder_main(spec, &ready_w, &sessions_lock, &record_path),
                _ => process::exit_immediately(0),
            }
        }
        Fork::Parent(intermediate) => {
            drop(ready_w);
            let _ = process::wait_for(intermediate, false);
        }
    }
    let mut holder = None;
    let mut ready = false;
    let mut failure = None;
    for line in BufReader::new(File::from(ready_r)).lines() {
        let Ok(line) = line else { break };
        if let Some(rest) = line.strip_prefix("P ") {
            let mut it = rest.split(' ').filter_map(|x| x.parse::<Pid>().ok());
            holder = it.next().zip(it.next());
        } else if line == "R" {
            ready = true;
        } else if let Some(msg) = line.strip_prefix("E ") {
            failure = Some(msg.to_string());
        }
    }
    if let Some(msg) = failure {
        return Err(msg);
    }
    let (Some((h, i)), true) = (holder, ready) else {
        return Err("the namespace holder ended before it was ready".to_string());
    };
    let start = |pid| process::start_time(pid).map_err(|e| format!("holder {pid} vanished: {e}"));
    let rec = HolderRecord {
        holder: h,
        holder_start: start(h)?,
        init: i,
        init_start: start(i)?,
        isolated: spec.namespaces.contains(Namespaces::PID),
        plan: spec.plan_fingerprint.clone(),
    };
    write_record(spec.state_dir, &rec).map_err(|e| format!("cannot record the holder: {e}"))?;
    Ok(rec)
}

fn report(ready: &OwnedFd, line: &str) {
    let _ = write_all(ready, format!("{}\n", line.replace('\n', " ")).as_bytes());
}

pub(crate) fn write_all(fd: &OwnedFd, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match rustix::io::write(fd, buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn holder_main(spec: &HolderSpec<'_>, ready: &OwnedFd, sessions_lock: &Path, record: &Path) -> ! {
    fd::close_all_except(3, &[ready.as_raw_fd()]);
    signal::reset_all();
    detach_stdio();
    if let Err(e) = ns::unshare(spec.namespaces) {
        report(ready, &format!("E cannot create namespaces: {e}"));
        process::exit_immediately(1);
    }
    if let Err(e) = sysmount::make_rslave(Path::new("/")) {
        report(ready, &format!("E cannot make / a slave mount: {e}"));
        process::exit_immediately(1);
    }
    let me = process::current_pid();
    let init = match process::fork() {
        Ok(Fork::Child) => init_main(spec, ready, me),
        Ok(Fork::Parent(pid)) => pid,
        Err(e) => {
            report(ready, &format!("E cannot fork: {e}"));
            process::exit_immediately(1);
        }
    };
    report(ready, &format!("P {me} {init}"));
    // Nothing else is open here; closing the report pipe lets the tool see EOF once `I` is done.
    fd::close_all_except(3, &[]);
    let lock = File::open(sessions_lock).ok();
    loop {
        std::thread::sleep(POLL);
        if let Ok(Some(_)) = process::wait_for(init, true) {
            break;
        }
        let free = match &lock {
            Some(f) => {
                rustix::fs::flock(f, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_ok()
            }
            None => true,
        };
        if free {
            if fs::read_to_string(record)
                .ok()
                .and_then(|t| HolderRecord::parse(&t))
                .is_some_and(|r| r.holder == me)
            {
                let _ = fs::remove_file(record);
            }
            let _ = process::send_signal(init, signal::SIGKILL);
            let _ = process::wait_for(init, false);
            break;
        }
    }
    process::exit_immediately(0)
}

fn init_main(spec: &HolderSpec<'_>, ready: &OwnedFd, holder: Pid) -> ! {
    let _ = process::set_parent_death_signal(signal::SIGKILL);
    if !spec.namespaces.contains(Namespaces::PID) && process::parent_pid() != holder {
        process::exit_immediately(1);
    }
    if let Some(name) = spec.hostname {
        if let Err(e) = ns::set_hostname(name) {
            report(ready, &format!("E cannot set the hostname: {e}"));
            process::exit_immediately(1);
        }
    }
    if let Err(e) = mounter::bind_root_onto_itself(spec.rootfs) {
        report(
            ready,
            &format!("E cannot bind {} onto itself: {e}", spec.rootfs.display()),
        );
        process::exit_immediately(1);
    }
    if let Err(e) = mounter::execute(spec.steps, spec.rootfs) {
        report(ready, &format!("E {e}"));
        process::exit_immediately(1);
    }
    report(ready, "R");
    fd::close_all_except(3, &[]);
    // PID 1 of an isolated container inherits its orphans: reap them.
    loop {
        match process::wait_for(-1, true) {
            Ok(Some(_)) => continue,
            _ => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

/// Point stdin/stdout/stderr at /dev/null: a holder that kept the tool's terminal or pipes open
/// would keep a reader of the tool's output waiting for EOF.
fn detach_stdio() {
    if let Ok(null) = File::options().read(true).write(true).open("/dev/null") {
        let _ = cd_sys::pty::dup_onto_stdio(&null);
    }
}

/// The `/proc/PID/ns/*` files of the holder's namespaces, opened and checked to still belong to
/// the recorded process.
pub(crate) fn open_namespaces(rec: &HolderRecord) -> io::Result<Vec<(Namespaces, OwnedFd)>> {
    let mut kinds = Namespaces::MOUNT;
    if rec.isolated {
        kinds = kinds
            .union(Namespaces::PID)
            .union(Namespaces::UTS)
            .union(Namespaces::IPC);
    }
    let mut out = Vec::new();
    for kind in kinds.kinds() {
        let name = kind.proc_name().unwrap_or("mnt");
        let file = File::open(format!("/proc/{}/ns/{name}", rec.init))?;
        out.push((kind, OwnedFd::from(file)));
    }
    // Opened first, checked second: if the pid had been reused in between, the start time
    // would differ now.
    if !rec.is_alive() {
        return Err(io::Error::other("the namespace holder exited"));
    }
    Ok(out)
}

/// `/proc/<init>/root/<rootfs>`: the container root as seen inside its mount namespace, reachable
/// from the host without joining it.
pub(crate) fn root_in_namespace(rec: &HolderRecord, rootfs: &Path) -> PathBuf {
    let rel = rootfs.strip_prefix("/").unwrap_or(rootfs);
    PathBuf::from(format!("/proc/{}/root", rec.init)).join(rel)
}
