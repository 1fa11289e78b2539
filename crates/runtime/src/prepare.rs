//! Turning a request into what will run: user, environment, argv, working directory, mounts.
//! Shared by `enter` and `render_command`; reads the rootfs only.

use std::path::PathBuf;

use crate::command::{login_argv0, shell_join};
use crate::env::{build_env, lookup, EnvInputs, DEFAULT_PATH};
use crate::error::{IoContext, RuntimeError};
use crate::guest_fs::GuestRoot;
use crate::plan::PlanOptions;
use crate::request::{EnterRequest, Mode};
use crate::users::{resolve_user, GuestUser};

/// The program to exec: argv as the command sees it, and the paths to try in order (a PATH
/// search inside the container, done by us because the tool's own PATH means nothing there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Program {
    pub argv: Vec<String>,
    pub candidates: Vec<String>,
    /// How the command is named in messages.
    pub display: String,
    /// Started as a login shell (`-sh`).
    pub login_shell: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub user: GuestUser,
    pub env: Vec<(String, String)>,
    pub program: Program,
    pub work_dir: String,
    /// An explicit (or image) working directory must exist; the home directory may be missing.
    pub work_dir_required: bool,
}

pub(crate) fn prepare(req: &EnterRequest, root: &GuestRoot) -> Result<Prepared, RuntimeError> {
    let passwd = root
        .read_text_or_empty("/etc/passwd")
        .context(|| "cannot read the container's /etc/passwd".to_string())?;
    let group = root
        .read_text_or_empty("/etc/group")
        .context(|| "cannot read the container's /etc/group".to_string())?;
    let user = resolve_user(req.effective_user(), &passwd, &group)?;
    let host_term = std::env::var("TERM").ok();
    let host_colorterm = std::env::var("COLORTERM").ok();
    let env = build_env(&EnvInputs {
        image_env: &req.image_env,
        user_env: &req.env,
        home: &user.home,
        user_name: &user.name,
        hostname: req.effective_hostname(),
        host_term: host_term.as_deref(),
        host_colorterm: host_colorterm.as_deref(),
        minimal: req.minimal,
    });
    let program = if req.command.is_empty() {
        let shell = if root.exists(&user.shell) {
            user.shell.clone()
        } else if root.exists("/bin/sh") {
            "/bin/sh".to_string()
        } else {
            let missing = if user.shell == "/bin/sh" {
                "/bin/sh is missing".to_string()
            } else {
                format!("neither the user's shell {} nor /bin/sh exists", user.shell)
            };
            return Err(RuntimeError::NoShell {
                name: req.name.clone(),
                missing,
            });
        };
        Program {
            argv: vec![login_argv0(&shell)],
            candidates: vec![shell.clone()],
            display: shell,
            login_shell: true,
        }
    } else {
        let name = &req.command[0];
        let candidates = if name.contains('/') {
            vec![name.clone()]
        } else {
            lookup(&env, "PATH")
                .unwrap_or(DEFAULT_PATH)
                .split(':')
                .filter(|d| !d.is_empty())
                .map(|d| format!("{}/{name}", d.trim_end_matches('/')))
                .collect()
        };
        Program {
            argv: req.command.clone(),
            candidates,
            display: name.clone(),
            login_shell: false,
        }
    };
    let (work_dir, work_dir_required) = match (&req.work_dir, req.mode) {
        (Some(dir), _) => (dir.clone(), true),
        (None, Mode::Run) => match req.image_work_dir.as_deref().filter(|d| !d.is_empty()) {
            Some(dir) => (dir.to_string(), true),
            None => ("/".to_string(), true),
        },
        (None, Mode::Login) => (user.home.clone(), false),
    };
    Ok(Prepared {
        user,
        env,
        program,
        work_dir,
        work_dir_required,
    })
}

/// The host home `--shared-home` binds: the invoking user's, also when elevated with sudo.
fn invoking_user_home() -> Option<PathBuf> {
    if rustix::process::geteuid().is_root() {
        if let Ok(sudo_user) = std::env::var("SUDO_USER") {
            let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
            return passwd
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() >= 7 && f[0] == sudo_user)
                .map(|f| PathBuf::from(f[5]));
        }
    }
    std::env::var_os("HOME").map(PathBuf::from)
}

pub(crate) fn plan_options(
    req: &EnterRequest,
    user: &GuestUser,
    isolated: bool,
) -> Result<PlanOptions, RuntimeError> {
    let shared_home = if req.shared_home && !req.minimal {
        let host = invoking_user_home().ok_or_else(|| {
            RuntimeError::Usage("--shared-home: cannot tell the invoking user's home".to_string())
        })?;
        Some((host, user.home.clone()))
    } else {
        None
    };
    Ok(PlanOptions {
        minimal: req.minimal,
        isolated,
        shared_tmp: req.shared_tmp,
        shared_display: req.shared_display,
        shared_home,
        binds: req.binds.clone(),
        android: false,
    })
}

/// `--get-chroot-cmd`: an `env -i ... chroot ...` line equivalent to the session (without the
/// private namespace, which a shell line cannot express).
pub(crate) fn render(req: &EnterRequest, p: &Prepared) -> String {
    let mut words: Vec<String> = vec!["env".into(), "-i".into()];
    words.extend(p.env.iter().map(|(k, v)| format!("{k}={v}")));
    words.push("chroot".into());
    if p.user.uid != 0 || p.user.gid != 0 {
        words.push(format!("--userspec={}:{}", p.user.uid, p.user.gid));
        let groups: Vec<String> = p.user.groups.iter().map(u32::to_string).collect();
        words.push(format!("--groups={}", groups.join(",")));
    }
    words.push(req.rootfs.display().to_string());
    let inner = if p.program.login_shell {
        format!("{} -l", shell_join(&[&p.program.display]))
    } else {
        shell_join(&p.program.argv)
    };
    let cd = shell_join(&[&p.work_dir]);
    let script = if p.work_dir_required {
        format!("cd {cd} && exec {inner}")
    } else {
        format!("cd {cd} 2>/dev/null || cd /; exec {inner}")
    };
    words.extend(["/bin/sh".to_string(), "-c".to_string(), script]);
    shell_join(&words)
}
