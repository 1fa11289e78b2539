//! Entering a container: the mount plan, the container's private namespaces (shared by all
//! its sessions and invisible to the host), user switch, guest environment, terminal and signal
//! relay, cross-architecture checks, and `ps`/`kill`/`unmount`.
//!
//! All `unsafe` lives in `cd-sys`; this crate is safe Rust (ARCHITECTURE.md decisions 1, 5, 7).

mod arch;
mod command;
mod env;
mod error;
mod guest_fs;
mod holder;
mod lifecycle;
mod mounter;
mod plan;
mod prepare;
mod request;
mod session;
mod terminal;
mod users;

pub use arch::{detect_guest_arch_of, Arch};
pub use command::{resolve_run_command, shell_quote};
pub use env::{build_env, EnvInputs, DEFAULT_PATH};
pub use error::RuntimeError;
pub use lifecycle::{kill, running, unmount, RunningState, StopReport};
pub use plan::{
    DevSetup, HostIntegration, Missing, MountOptions, MountPlan, MountStep, PlanOptions,
};
pub use request::{BindSpec, EnterRequest, Mode};
pub use session::enter;
pub use users::{resolve_user, GuestUser};

/// `--get-chroot-cmd`: the shell-quoted `env -i K=V ... chroot ROOTFS CMD ...` line equivalent
/// to the session the request would start. Reads the container's account files; changes
/// nothing.
pub fn render_command(req: &EnterRequest) -> Result<String, RuntimeError> {
    req.validate()?;
    let root = guest_fs::GuestRoot::open(&req.rootfs)
        .map_err(|_| RuntimeError::MissingRootfs(req.rootfs.clone()))?;
    let prepared = prepare::prepare(req, &root)?;
    Ok(prepare::render(req, &prepared))
}
