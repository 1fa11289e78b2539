//! One session: join (or create) the container's namespaces, run the command, relay the
//! terminal and signals, and report the command's exit status.
//!
//! Processes: the tool process `P` (stays in the host namespaces, holds the session lock,
//! relays), a helper `C` forked from it that joins the container's namespaces (`setns` into a
//! PID namespace only affects children), and the command `G` forked from `C`, which chroots,
//! switches user and execs. `C` and `G` die with their parent (`PR_SET_PDEATHSIG`), so a
//! SIGKILLed tool takes its session along and the namespace can be released.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use cd_sys::ns::{self, Namespaces};
use cd_sys::process::{self, ExitStatus, Fork};
use cd_sys::signal::{self, SignalFd};
use cd_sys::{fd, Pid};
use rustix::event::{PollFd, PollFlags};
use rustix::fs::FlockOperation;

use crate::arch::check_guest_arch;
use crate::error::{IoContext, RuntimeError};
use crate::guest_fs::GuestRoot;
use crate::holder::{self, HolderSpec, SESSIONS_LOCK, SETUP_LOCK};
use crate::mounter;
use crate::plan::{MountPlan, MountStep};
use crate::prepare::{plan_options, prepare, Prepared};
use crate::request::EnterRequest;
use crate::terminal::{self, Pty, RawMode};

const BINFMT_DIR: &str = "/proc/sys/fs/binfmt_misc";

/// Signals the tool passes on to the command.
const FORWARDED: &[i32] = &[
    signal::SIGINT,
    signal::SIGTERM,
    signal::SIGHUP,
    signal::SIGQUIT,
];

/// Enter the container and run the request's command (or login shell); returns its exit status
/// (`128 + N` when killed by signal N). Warnings (e.g. `--isolated` unavailable) go to `warn`.
///
/// The first session of a container creates its private namespaces and mounts; later ones join
/// them; the last one to end releases them. stdio is passed through untouched, except that when
/// stdin is a terminal the command gets a pty of the container's own devpts instance (stdout and
/// stderr too when they are terminals) and the host terminal is put in raw mode meanwhile.
///
/// Call it from the main thread of a process without other threads (ARCHITECTURE.md decision 1):
/// it forks, and SIGINT/SIGTERM/SIGHUP/SIGQUIT sent to the process are forwarded to the command
/// only when no other thread is there to receive them.
pub fn enter(req: &EnterRequest, warn: &mut dyn FnMut(String)) -> Result<i32, RuntimeError> {
    req.validate()?;
    let rootfs = fs::canonicalize(&req.rootfs)
        .ok()
        .filter(|p| p.is_dir())
        .ok_or_else(|| RuntimeError::MissingRootfs(req.rootfs.clone()))?;
    let root = GuestRoot::open(&rootfs).context(|| format!("cannot open {}", rootfs.display()))?;
    let prepared = prepare(req, &root)?;
    check_guest_arch(&root, Path::new(BINFMT_DIR))?;

    let mut isolated = req.isolated;
    if isolated {
        if let Err(missing) = probe_isolation() {
            warn(format!(
                "this kernel lacks the {} namespace; continuing without --isolated",
                missing.join(", ")
            ));
            isolated = false;
        }
    }
    if req.shared_display && !req.minimal && !isolated {
        warn("--shared-display is not implemented yet; continuing without display sharing".into());
    }
    let plan = MountPlan::build(&plan_options(req, &prepared.user, isolated)?);

    fs::create_dir_all(&req.state_dir)
        .context(|| format!("cannot create {}", req.state_dir.display()))?;
    let setup = open_lock(&req.state_dir.join(SETUP_LOCK))?;
    rustix::fs::flock(&setup, FlockOperation::LockExclusive)
        .context(|| "cannot lock the container setup".to_string())?;
    let sessions = open_lock(&req.state_dir.join(SESSIONS_LOCK))?;
    rustix::fs::flock(&sessions, FlockOperation::LockShared)
        .context(|| "cannot take the session lock".to_string())?;

    let rec = match holder::live_holder(&req.state_dir) {
        Some(rec) if rec.isolated != isolated => {
            return Err(RuntimeError::IsolationMismatch {
                name: req.name.clone(),
                running_isolated: rec.isolated,
            })
        }
        Some(rec) => rec,
        None => {
            let mut namespaces = Namespaces::MOUNT;
            if isolated {
                namespaces = namespaces
                    .union(Namespaces::PID)
                    .union(Namespaces::UTS)
                    .union(Namespaces::IPC);
            }
            holder::spawn(&HolderSpec {
                rootfs: &rootfs,
                state_dir: &req.state_dir,
                namespaces,
                hostname: isolated.then(|| req.effective_hostname()),
                steps: &plan.steps,
                plan_fingerprint: plan.fingerprint(),
            })
            .map_err(|e| RuntimeError::setup(&req.name, e))?
        }
    };
    // A later session asking for more (another --bind) adds its mounts to the shared namespace.
    let extra: Vec<MountStep> = plan
        .steps
        .iter()
        .filter(|s| !rec.plan.contains(&format!("{s:?}")))
        .cloned()
        .collect();
    let namespaces = holder::open_namespaces(&rec)
        .map_err(|e| RuntimeError::setup(&req.name, format!("cannot join its namespaces: {e}")))?;

    let stdin = io::stdin();
    let stdin = stdin.as_fd();
    let pty = if terminal::is_terminal(stdin) {
        let ns_root = holder::root_in_namespace(&rec, &rootfs);
        Some(terminal::open_pty(&ns_root, stdin).map_err(|e| {
            RuntimeError::setup(&req.name, format!("cannot allocate a terminal: {e}"))
        })?)
    } else {
        None
    };
    // The lock must not be inherited by the session's processes; the shared session lock
    // stays with this process until the session ends.
    drop(setup);

    let spec = SessionSpec {
        rootfs: &rootfs,
        prepared: &prepared,
        namespaces: &namespaces,
        extra: &extra,
        isolated: rec.isolated,
        slave: pty.as_ref().map(|p| p.slave.as_fd()),
        tool: process::current_pid(),
    };
    let result = run_session(&spec, pty.as_ref(), stdin, &req.name);
    drop(sessions);
    release_if_last(&req.state_dir, &rec);
    result
}

/// The last session to end releases the namespace itself instead of leaving it to the holder's
/// next poll, so `login C -- true; remove C` never meets a namespace about to vanish and a
/// short command costs no poll interval.
fn release_if_last(state_dir: &Path, rec: &holder::HolderRecord) {
    // New sessions set up under this lock: while it is held none can join the old namespace,
    // and one that waits for it finds no holder afterwards and makes a fresh one.
    let Ok(setup) = open_lock(&state_dir.join(SETUP_LOCK)) else {
        return;
    };
    if rustix::fs::flock(&setup, FlockOperation::LockExclusive).is_err() {
        return;
    }
    let Ok(sessions) = File::open(state_dir.join(SESSIONS_LOCK)) else {
        return;
    };
    if rustix::fs::flock(&sessions, FlockOperation::NonBlockingLockExclusive).is_err() {
        return; // another session still runs
    }
    if rec.is_alive() {
        let _ = process::send_signal(rec.init, signal::SIGKILL);
        let _ = process::send_signal(rec.holder, signal::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while rec.is_alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    holder::remove_record(state_dir);
}

fn open_lock(path: &Path) -> Result<File, RuntimeError> {
    File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .context(|| format!("cannot open {}", path.display()))
}

/// `--isolated` is all-or-nothing: find out, in a throwaway child, which namespaces this kernel
/// refuses.
fn probe_isolation() -> Result<(), Vec<&'static str>> {
    let kinds = [
        (Namespaces::MOUNT, "mount"),
        (Namespaces::PID, "PID"),
        (Namespaces::UTS, "UTS"),
        (Namespaces::IPC, "IPC"),
    ];
    let child = match process::fork() {
        Ok(Fork::Child) => {
            let mut mask = 0;
            for (i, (kind, _)) in kinds.iter().enumerate() {
                if ns::unshare(*kind).is_err() {
                    mask |= 1 << i;
                }
            }
            process::exit_immediately(mask)
        }
        Ok(Fork::Parent(pid)) => pid,
        Err(_) => return Err(vec!["(probe failed)"]),
    };
    let mask = match process::wait_for(child, false) {
        Ok(Some((_, ExitStatus::Exited(code)))) => code,
        _ => return Err(vec!["(probe failed)"]),
    };
    let missing: Vec<&'static str> = kinds
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, (_, name))| *name)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(missing)
    }
}

struct SessionSpec<'a> {
    rootfs: &'a Path,
    prepared: &'a Prepared,
    namespaces: &'a [(Namespaces, OwnedFd)],
    extra: &'a [MountStep],
    isolated: bool,
    slave: Option<BorrowedFd<'a>>,
    tool: Pid,
}

fn run_session(
    spec: &SessionSpec<'_>,
    pty: Option<&Pty>,
    stdin: BorrowedFd<'_>,
    name: &str,
) -> Result<i32, RuntimeError> {
    let cloexec = rustix::pipe::PipeFlags::CLOEXEC;
    let (err_r, err_w) =
        rustix::pipe::pipe_with(cloexec).context(|| "cannot create a pipe".to_string())?;
    let (pid_r, pid_w) =
        rustix::pipe::pipe_with(cloexec).context(|| "cannot create a pipe".to_string())?;
    let mut wanted = FORWARDED.to_vec();
    wanted.extend([signal::SIGCHLD, signal::SIGWINCH]);
    let sigfd = SignalFd::new(&wanted).context(|| "cannot set up signal handling".to_string())?;

    let helper = match process::fork().context(|| "cannot fork".to_string())? {
        Fork::Child => helper_main(spec, &err_w, &pid_w),
        Fork::Parent(pid) => pid,
    };
    drop(err_w);
    drop(pid_w);
    let mut pid_bytes = [0u8; 4];
    let command = File::from(pid_r)
        .read_exact(&mut pid_bytes)
        .ok()
        .map(|()| Pid::from_ne_bytes(pid_bytes));

    let status = {
        let _raw = match pty {
            Some(_) => RawMode::enter(stdin).ok(),
            None => None,
        };
        let relay = pty.map(|p| Relay::new(&p.master, stdin));
        supervise(helper, command, &sigfd, relay)
            .context(|| "lost track of the session".to_string())?
    };
    drop(sigfd);

    let mut report = String::new();
    let _ = File::from(err_r).read_to_string(&mut report);
    if let Some((code, msg)) = report.split_once(' ') {
        let display = spec.prepared.program.display.clone();
        return Err(match code {
            "127" => RuntimeError::CommandNotFound(display),
            "126" => RuntimeError::NotExecutable(display, msg.to_string()),
            _ => RuntimeError::setup(name, msg),
        });
    }
    Ok(status.code())
}

/// Report a failure of `C` or `G` to the tool and end the process.
fn fail(err_w: &OwnedFd, code: i32, msg: &str) -> ! {
    let _ = holder::write_all(err_w, format!("{code} {msg}").as_bytes());
    process::exit_immediately(code)
}

/// `C`: join the namespaces, fork the command, wait for it.
fn helper_main(spec: &SessionSpec<'_>, err_w: &OwnedFd, pid_w: &OwnedFd) -> ! {
    let _ = process::set_parent_death_signal(signal::SIGKILL);
    if process::parent_pid() != spec.tool {
        process::exit_immediately(125);
    }
    for (kind, nsfd) in spec.namespaces {
        if let Err(e) = ns::setns(nsfd.as_fd(), *kind) {
            fail(
                err_w,
                125,
                &format!("cannot join the container's namespaces: {e}"),
            );
        }
    }
    if !spec.extra.is_empty() {
        if let Err(e) = mounter::execute(spec.extra, spec.rootfs) {
            fail(err_w, 125, &e);
        }
    }
    let me = process::current_pid();
    let command = match process::fork() {
        Ok(Fork::Child) => command_main(spec, err_w, me),
        Ok(Fork::Parent(pid)) => pid,
        Err(e) => fail(err_w, 125, &format!("cannot fork: {e}")),
    };
    // Keep nothing open but the pid pipe: not the slave (the relay must see EIO when the
    // command's side closes), not the error pipe (the tool must see EOF).
    fd::close_all_except(3, &[pid_w.as_raw_fd()]);
    let _ = holder::write_all(pid_w, &command.to_ne_bytes());
    fd::close_all_except(3, &[]);
    let code = match process::wait_for(command, false) {
        Ok(Some((_, st))) => st.code(),
        _ => 125,
    };
    process::exit_immediately(code)
}

/// `G`: become the command.
fn command_main(spec: &SessionSpec<'_>, err_w: &OwnedFd, helper: Pid) -> ! {
    let p = spec.prepared;
    let _ = process::new_session();
    if let Some(slave) = spec.slave {
        let out_tty = terminal::is_terminal(io::stdout());
        let err_tty = terminal::is_terminal(io::stderr());
        let dup = rustix::stdio::dup2_stdin(slave)
            .and_then(|()| match out_tty {
                true => rustix::stdio::dup2_stdout(slave),
                false => Ok(()),
            })
            .and_then(|()| match err_tty {
                true => rustix::stdio::dup2_stderr(slave),
                false => Ok(()),
            });
        if let Err(e) = dup {
            fail(err_w, 125, &format!("cannot attach the terminal: {e}"));
        }
        if let Err(e) = cd_sys::pty::set_controlling_terminal(slave) {
            fail(err_w, 125, &format!("cannot attach the terminal: {e}"));
        }
    }
    if let Err(e) = rustix::process::chroot(spec.rootfs) {
        fail(
            err_w,
            125,
            &format!("cannot chroot into {}: {e}", spec.rootfs.display()),
        );
    }
    let _ = rustix::process::chdir("/");
    if let Err(e) = cd_sys::creds::switch_user(p.user.uid, p.user.gid, &p.user.groups) {
        fail(
            err_w,
            125,
            &format!("cannot switch to user '{}': {e}", p.user.name),
        );
    }
    if let Err(e) = rustix::process::chdir(p.work_dir.as_str()) {
        if p.work_dir_required {
            let why = if e == rustix::io::Errno::NOENT {
                "does not exist in the container".to_string()
            } else {
                format!("cannot be entered: {e}")
            };
            fail(
                err_w,
                125,
                &format!("working directory '{}' {why}", p.work_dir),
            );
        }
        let _ = rustix::process::chdir("/");
    }
    let _ = process::set_parent_death_signal(signal::SIGKILL);
    if !spec.isolated && process::parent_pid() != helper {
        process::exit_immediately(125);
    }
    signal::reset_all();
    if let Err(e) = fd::cloexec_from(3) {
        fail(err_w, 125, &format!("cannot close descriptors: {e}"));
    }
    exec_program(p, err_w)
}

fn exec_program(p: &Prepared, err_w: &OwnedFd) -> ! {
    let to_c = |s: &str| std::ffi::CString::new(s).ok();
    let argv: Option<Vec<_>> = p.program.argv.iter().map(|a| to_c(a)).collect();
    let envp: Option<Vec<_>> = p
        .env
        .iter()
        .map(|(k, v)| to_c(&format!("{k}={v}")))
        .collect();
    let (Some(argv), Some(envp)) = (argv, envp) else {
        fail(err_w, 125, "the command or environment contains a NUL byte");
    };
    let mut denied = None;
    for candidate in &p.program.candidates {
        let Some(path) = to_c(candidate) else {
            continue;
        };
        let err = process::execve(&path, &argv, &envp);
        match err.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ENOTDIR) => continue,
            Some(libc::EACCES) => {
                denied.get_or_insert(err);
            }
            _ => fail(err_w, 126, &err.to_string()),
        }
    }
    match denied {
        Some(err) => fail(err_w, 126, &err.to_string()),
        None => fail(err_w, 127, "command not found"),
    }
}

/// Bytes between the host terminal and the pty master.
struct Relay<'a> {
    master: &'a OwnedFd,
    stdin: BorrowedFd<'a>,
    out: BorrowedFd<'static>,
    stdin_open: bool,
    master_open: bool,
    to_master: Vec<u8>,
}

impl<'a> Relay<'a> {
    fn new(master: &'a OwnedFd, stdin: BorrowedFd<'a>) -> Self {
        // Terminal output goes to whichever of stdout/stderr is the terminal (stdout wins): a
        // redirected stdout was given to the command directly.
        let out = if terminal::is_terminal(io::stdout()) || !terminal::is_terminal(io::stderr()) {
            rustix::stdio::stdout()
        } else {
            rustix::stdio::stderr()
        };
        Relay {
            master,
            stdin,
            out,
            stdin_open: true,
            master_open: true,
            to_master: Vec::new(),
        }
    }

    fn pump_master(&mut self) {
        let mut buf = [0u8; 8192];
        loop {
            match rustix::io::read(self.master, &mut buf) {
                Ok(0) => {
                    self.master_open = false;
                    return;
                }
                Ok(n) => {
                    let _ = write_fd(self.out, &buf[..n]);
                }
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::AGAIN) => return,
                // EIO: every slave descriptor is closed.
                Err(_) => {
                    self.master_open = false;
                    return;
                }
            }
        }
    }

    fn pump_stdin(&mut self) {
        let mut buf = [0u8; 4096];
        match rustix::io::read(self.stdin, &mut buf) {
            Ok(0) => self.stdin_open = false,
            Ok(n) => self.to_master.extend_from_slice(&buf[..n]),
            Err(rustix::io::Errno::INTR) | Err(rustix::io::Errno::AGAIN) => {}
            Err(_) => self.stdin_open = false,
        }
    }

    fn flush_to_master(&mut self) {
        while !self.to_master.is_empty() {
            match rustix::io::write(self.master, &self.to_master) {
                Ok(n) => {
                    self.to_master.drain(..n);
                }
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::AGAIN) => return,
                Err(_) => {
                    self.to_master.clear();
                    self.master_open = false;
                    return;
                }
            }
        }
    }
}

fn write_fd(fd: BorrowedFd<'_>, mut buf: &[u8]) -> io::Result<()> {
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

/// Wait for `helper` to end, forwarding signals to `command` and relaying the terminal.
fn supervise(
    helper: Pid,
    command: Option<Pid>,
    sigfd: &SignalFd,
    mut relay: Option<Relay<'_>>,
) -> io::Result<ExitStatus> {
    // A pidfd wakes us when the helper exits even if SIGCHLD goes to another thread of this
    // process (a test harness); without pidfds (Linux < 5.3) a short poll interval does.
    let pidfd = rustix::process::Pid::from_raw(helper)
        .and_then(|p| rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok());
    let timeout = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: if pidfd.is_some() {
            500_000_000
        } else {
            50_000_000
        },
    };
    loop {
        let mut fds = vec![PollFd::new(sigfd, PollFlags::IN)];
        if let Some(p) = &pidfd {
            fds.push(PollFd::new(p, PollFlags::IN));
        }
        let mut stdin_at = None;
        let mut master_at = None;
        if let Some(r) = &relay {
            if r.stdin_open && r.to_master.is_empty() {
                stdin_at = Some(fds.len());
                fds.push(PollFd::new(&r.stdin, PollFlags::IN));
            }
            if r.master_open {
                master_at = Some(fds.len());
                let mut flags = PollFlags::IN;
                if !r.to_master.is_empty() {
                    flags |= PollFlags::OUT;
                }
                fds.push(PollFd::new(r.master, flags));
            }
        }
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
        let ready = |i: Option<usize>| i.map(|i| fds[i].revents()).filter(|r| !r.is_empty());
        let stdin_ready = ready(stdin_at);
        let master_ready = ready(master_at);
        drop(fds);
        while let Some(sig) = sigfd.read()? {
            match sig {
                signal::SIGCHLD => {}
                signal::SIGWINCH => {
                    if let Some(r) = &relay {
                        terminal::forward_window_size(r.stdin, r.master);
                    }
                }
                other => {
                    if let Some(pid) = command {
                        let _ = process::send_signal(pid, other);
                    }
                }
            }
        }
        if let Some(r) = relay.as_mut() {
            if stdin_ready.is_some() {
                r.pump_stdin();
            }
            if master_ready.is_some() {
                r.flush_to_master();
                r.pump_master();
            }
        }
        if let Some((_, status)) = process::wait_for(helper, true)? {
            if let Some(r) = relay.as_mut() {
                // Whatever the command wrote last is still in the pty.
                std::thread::sleep(Duration::from_millis(10));
                r.pump_master();
            }
            return Ok(status);
        }
    }
}
