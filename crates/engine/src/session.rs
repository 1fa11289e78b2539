//! Store-level glue for `login`, `run`, `ps`, `kill` and `unmount`: the container's paths and
//! recorded image config turned into a [`cd_runtime::EnterRequest`], and the runtime's view of
//! who is inside a container.

use std::time::Duration;

use cd_image::ContainerConfig;
use cd_runtime::{BindSpec, EnterRequest, Mode, RunningState, StopReport};

use crate::error::EngineError;
use crate::lock::{describe_holder, FileLock, LockMode};
use crate::store::Store;

/// What the user asked for on the `login`/`run` command line, before the store adds the
/// container's paths and image config: the plain options already in `options` (user, work dir,
/// the `--shared-*`, hostname, isolation and mode fields), and the entries that still need parsing.
#[derive(Debug, Clone, Default)]
pub struct SessionFlags {
    pub options: EnterRequest,
    /// `--env` entries as typed (`VAR=VALUE`).
    pub env: Vec<String>,
    /// `--bind` entries as typed (`SRC[:DST]`).
    pub binds: Vec<String>,
    /// The words after `--`.
    pub args: Vec<String>,
}

impl Store {
    /// Build the request that enters container `name`.
    ///
    /// `login` uses the image's `Env` only; `run` also resolves `Entrypoint`/`Cmd` with the
    /// arguments after `--`, and takes `WorkingDir`/`User` as defaults, so it needs the recorded
    /// image config (`manifest.json`) and refuses without it.
    pub fn enter_request(
        &self,
        name: &str,
        flags: &SessionFlags,
    ) -> Result<EnterRequest, EngineError> {
        self.require(name)?;
        self.ensure_not_locked(name)?;
        let record = self.record(name)?;
        let config: ContainerConfig = record
            .as_ref()
            .and_then(|r| r.runtime_config())
            .map(|c| serde_json::Value::Object(c.clone()))
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| {
                EngineError::Other(format!(
                    "the image config in {} is malformed ({e}); reinstall container '{name}'",
                    self.paths.record(name).display()
                ))
            })?
            .unwrap_or_default();
        let command = match flags.options.mode {
            Mode::Login => flags.args.clone(),
            Mode::Run => {
                if record.is_none() {
                    return Err(EngineError::Other(format!(
                        "container '{name}' has no manifest.json, so there is no image entrypoint \
                         to run; use 'chroot-distro login {name} -- COMMAND' instead"
                    )));
                }
                cd_runtime::resolve_run_command(
                    config.entrypoint.as_deref().unwrap_or_default(),
                    config.cmd.as_deref().unwrap_or_default(),
                    &flags.args,
                )
                .map_err(|e| EngineError::Other(e.to_string()))?
            }
        };
        Ok(EnterRequest {
            name: name.to_string(),
            rootfs: self.paths.rootfs(name),
            state_dir: self.paths.state_dir(name),
            env: parse_env(&flags.env)?,
            image_env: config.env.unwrap_or_default(),
            image_user: config.user,
            image_work_dir: config.working_dir,
            binds: parse_binds(&flags.binds)?,
            command,
            ..flags.options.clone()
        })
    }

    /// Who is inside container `name`: its namespace holder, sessions and processes.
    pub fn running(&self, name: &str) -> Result<RunningState, EngineError> {
        cd_runtime::running(&self.paths.state_dir(name), &self.paths.rootfs(name))
            .map_err(|e| EngineError::Other(e.to_string()))
    }

    /// `kill`: SIGTERM everything in the container, SIGKILL what is left after `grace`, release
    /// its namespace (and with it every mount).
    pub fn kill(&self, name: &str, grace: Duration) -> Result<StopReport, EngineError> {
        self.require(name)?;
        cd_runtime::kill(&self.paths.state_dir(name), &self.paths.rootfs(name), grace)
            .map_err(|e| EngineError::Other(format!("cannot stop container '{name}': {e}")))
    }

    /// `unmount`: end the sessions (SIGKILL after two seconds) and release the mounts.
    pub fn unmount(&self, name: &str) -> Result<StopReport, EngineError> {
        self.require(name)?;
        cd_runtime::unmount(&self.paths.state_dir(name), &self.paths.rootfs(name))
            .map_err(|e| EngineError::Other(format!("cannot unmount container '{name}': {e}")))
    }

    /// A session must not start while a command (remove, reset, restore, ...) holds the
    /// container exclusively. The shared lock is only probed, not kept: a session that starts
    /// right after the probe is still safe, because its mounts live in a private namespace that
    /// a concurrent `remove` cannot walk into.
    fn ensure_not_locked(&self, name: &str) -> Result<(), EngineError> {
        let path = self.paths.lock_file(name);
        if !path.exists() {
            // Nobody ever locked it; and `--get-chroot-cmd` must not even create the file.
            return Ok(());
        }
        match FileLock::try_acquire(&path, LockMode::Shared)? {
            Some(_probe) => Ok(()),
            None => Err(EngineError::Busy {
                name: name.to_string(),
                holder: describe_holder(&path),
            }),
        }
    }
}

/// `--env VAR=VALUE` entries; an entry without `=` is a mistake, not a host lookup (the host
/// environment never reaches the guest).
fn parse_env(entries: &[String]) -> Result<Vec<(String, String)>, EngineError> {
    entries
        .iter()
        .map(|e| match e.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(EngineError::Other(format!(
                "invalid --env '{e}': use VAR=VALUE"
            ))),
        })
        .collect()
}

/// `--bind SRC[:DST]` entries, with SRC made absolute (the namespace holder does not share
/// our working directory) and checked to exist, so a typo is reported before anything starts.
fn parse_binds(entries: &[String]) -> Result<Vec<BindSpec>, EngineError> {
    entries
        .iter()
        .map(|e| {
            let mut spec = BindSpec::parse(e).map_err(|err| EngineError::Other(err.to_string()))?;
            spec.source = std::fs::canonicalize(&spec.source).map_err(|_| {
                EngineError::Other(format!(
                    "invalid bind '{e}': host path {} does not exist",
                    spec.source.display()
                ))
            })?;
            Ok(spec)
        })
        .collect()
}

/// A short description of a running container for listings and errors: `2 sessions`, or
/// `3 processes` when only leftover processes (no session) are inside.
pub fn describe_running(state: &RunningState) -> String {
    let plural = |n: usize, word: &str| {
        if n == 1 {
            format!("1 {word}")
        } else {
            format!("{n} {word}s")
        }
    };
    if state.session_count > 0 {
        plural(state.session_count, "session")
    } else if !state.pids.is_empty() {
        let n = state.pids.len();
        if n == 1 {
            "1 process".to_string()
        } else {
            format!("{n} processes")
        }
    } else {
        "namespace held".to_string()
    }
}

/// What `kill`/`unmount` report: `stopped container 'c': ended 2 processes (1 after SIGKILL)`.
pub fn describe_stop(name: &str, verb: &str, report: &StopReport) -> String {
    if report.signalled.is_empty() && report.unmounted.is_empty() {
        return format!("container '{name}' was not running");
    }
    let mut parts = Vec::new();
    if !report.signalled.is_empty() {
        let n = report.signalled.len();
        let mut s = format!("ended {n} process{}", if n == 1 { "" } else { "es" });
        if !report.killed.is_empty() {
            s.push_str(&format!(" ({} after SIGKILL)", report.killed.len()));
        }
        parts.push(s);
    }
    if !report.unmounted.is_empty() {
        parts.push(format!(
            "released {} leftover host mount(s)",
            report.unmounted.len()
        ));
    }
    format!("{verb} container '{name}': {}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_entries_need_an_equals_sign_and_a_name() {
        let ok = parse_env(&["A=1".into(), "B=".into(), "C=x=y".into()]).unwrap();
        assert_eq!(
            ok,
            vec![
                ("A".into(), "1".into()),
                ("B".into(), String::new()),
                ("C".into(), "x=y".into())
            ]
        );
        assert!(parse_env(&["HOME".into()]).is_err());
        assert!(parse_env(&["=x".into()]).is_err());
    }

    #[test]
    fn bind_sources_must_exist_and_become_absolute() {
        let dir = tempfile::tempdir().unwrap();
        let spec = format!("{}:/mnt/x", dir.path().display());
        let binds = parse_binds(&[spec]).unwrap();
        assert!(binds[0].source.is_absolute());
        assert_eq!(binds[0].target, "/mnt/x");
        let missing = format!("{}/nope:/mnt", dir.path().display());
        let err = parse_binds(&[missing]).unwrap_err().to_string();
        assert!(err.contains("does not exist"), "{err}");
        assert!(parse_binds(&["/tmp:relative".into()]).is_err());
    }

    #[test]
    fn running_descriptions() {
        let mut s = RunningState {
            session_count: 2,
            ..Default::default()
        };
        assert_eq!(describe_running(&s), "2 sessions");
        s.session_count = 0;
        s.pids = vec![10];
        assert_eq!(describe_running(&s), "1 process");
        s.pids = vec![10, 11, 12];
        assert_eq!(describe_running(&s), "3 processes");
    }

    #[test]
    fn stop_descriptions() {
        let mut r = StopReport::default();
        assert_eq!(
            describe_stop("c", "stopped", &r),
            "container 'c' was not running"
        );
        r.signalled = vec![1, 2];
        r.killed = vec![2];
        assert_eq!(
            describe_stop("c", "stopped", &r),
            "stopped container 'c': ended 2 processes (1 after SIGKILL)"
        );
    }
}
