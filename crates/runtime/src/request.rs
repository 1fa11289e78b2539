//! What the CLI asks of the runtime when a user logs in or runs an image.

use std::path::PathBuf;

use crate::error::RuntimeError;

/// `login` starts the user's shell (or a command); `run` the image's entrypoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Login,
    Run,
}

/// One `--bind SRC[:DST]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindSpec {
    /// Host path.
    pub source: PathBuf,
    /// Absolute path inside the container.
    pub target: String,
}

impl BindSpec {
    /// Parse `SRC[:DST]`; DST defaults to SRC and must be absolute.
    pub fn parse(spec: &str) -> Result<Self, RuntimeError> {
        let invalid = |why: &str| RuntimeError::InvalidBind(spec.to_string(), why.to_string());
        let (src, dst) = match spec.split_once(':') {
            Some((s, d)) => (s, d),
            None => (spec, spec),
        };
        if src.is_empty() {
            return Err(invalid("the host path is empty"));
        }
        if !dst.starts_with('/') {
            return Err(invalid("the container path must be absolute"));
        }
        Ok(BindSpec {
            source: PathBuf::from(src),
            target: dst.to_string(),
        })
    }
}

/// Everything needed to enter a container. Built by the engine from the CLI flags and the
/// container record; the runtime reads nothing else from the host environment except `TERM`,
/// `COLORTERM`, `HOME`/`SUDO_USER` (for `--shared-home`).
#[derive(Debug, Clone, Default)]
pub struct EnterRequest {
    /// Container name: default hostname and `HOSTNAME`, and used in messages.
    pub name: String,
    /// `containers/<name>/rootfs`.
    pub rootfs: PathBuf,
    /// `data/<name>`: session lock, setup lock, namespace holder record.
    pub state_dir: PathBuf,
    /// `--user`: name, uid, name:group or uid:gid.
    pub user: Option<String>,
    /// `--work-dir` (must exist in the container).
    pub work_dir: Option<String>,
    /// `--env` entries, in order.
    pub env: Vec<(String, String)>,
    /// The image config's `Env` (`K=V` strings).
    pub image_env: Vec<String>,
    /// The image config's `User` (used by `run` when no `--user`).
    pub image_user: Option<String>,
    /// The image config's `WorkingDir` (used by `run` when no `--work-dir`).
    pub image_work_dir: Option<String>,
    pub binds: Vec<BindSpec>,
    pub shared_home: bool,
    pub shared_tmp: bool,
    pub shared_display: bool,
    pub hostname: Option<String>,
    pub isolated: bool,
    pub minimal: bool,
    /// Login: the command after `--` (empty: the user's login shell). Run: the resolved command
    /// (see [`crate::resolve_run_command`]).
    pub command: Vec<String>,
    pub mode: Mode,
}

impl EnterRequest {
    pub(crate) fn validate(&self) -> Result<(), RuntimeError> {
        if self.isolated && self.minimal {
            return Err(RuntimeError::Usage(
                "--isolated and --minimal cannot be used together".to_string(),
            ));
        }
        if self.mode == Mode::Run && self.command.is_empty() {
            return Err(RuntimeError::NoCommand);
        }
        if let Some(dir) = &self.work_dir {
            if !dir.starts_with('/') {
                return Err(RuntimeError::Usage(format!(
                    "--work-dir '{dir}' must be an absolute path"
                )));
            }
        }
        if let Some(h) = &self.hostname {
            if !is_valid_hostname(h) {
                return Err(RuntimeError::Usage(format!(
                    "invalid --hostname '{h}': use up to 64 letters, digits, '-' and '.'"
                )));
            }
        }
        for (k, _) in &self.env {
            if k.is_empty() || k.contains('=') || k.contains('\0') {
                return Err(RuntimeError::Usage(format!(
                    "invalid --env name '{k}'; use VAR=VALUE"
                )));
            }
        }
        Ok(())
    }

    /// The hostname the container reports under `--isolated` and in `HOSTNAME`.
    pub fn effective_hostname(&self) -> &str {
        self.hostname.as_deref().unwrap_or(&self.name)
    }

    /// The user spec in effect: `--user`, else (for `run`) the image's `User`.
    pub(crate) fn effective_user(&self) -> Option<&str> {
        self.user
            .as_deref()
            .or(match self.mode {
                Mode::Run => self.image_user.as_deref(),
                Mode::Login => None,
            })
            .filter(|u| !u.is_empty())
    }
}

/// An RFC 1123 name of 64 bytes at most (the kernel's limit).
fn is_valid_hostname(h: &str) -> bool {
    h.len() <= 64 && cd_image::is_dns_name(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames_follow_rfc_1123() {
        for good in ["box", "my-box.local", "a1", "x".repeat(64).as_str()] {
            assert!(is_valid_hostname(good), "{good}");
        }
        for bad in [
            "",
            "a b",
            "-a",
            "a-",
            "a..b",
            "a_b",
            "x".repeat(65).as_str(),
            "ü",
        ] {
            assert!(!is_valid_hostname(bad), "{bad}");
        }
    }

    #[test]
    fn bind_defaults_its_target_to_the_source() {
        let b = BindSpec::parse("/srv/data").unwrap();
        assert_eq!(b.source, PathBuf::from("/srv/data"));
        assert_eq!(b.target, "/srv/data");
    }

    #[test]
    fn bind_with_target() {
        let b = BindSpec::parse("/srv/data:/mnt/d").unwrap();
        assert_eq!(b.target, "/mnt/d");
    }

    #[test]
    fn bind_target_must_be_absolute() {
        assert!(BindSpec::parse("/srv:mnt").is_err());
        assert!(BindSpec::parse(":/mnt").is_err());
    }

    #[test]
    fn isolated_and_minimal_are_exclusive() {
        let req = EnterRequest {
            isolated: true,
            minimal: true,
            ..Default::default()
        };
        assert!(req.validate().is_err());
    }
}
