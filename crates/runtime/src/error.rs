//! Errors of the runtime: one line a user can act on, and the exit status `login`/`run` report.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("{0}")]
    Usage(String),
    #[error("container root {} does not exist or is not a directory", .0.display())]
    MissingRootfs(PathBuf),
    #[error("user '{0}' does not exist in the container's /etc/passwd")]
    UnknownUser(String),
    #[error("group '{0}' does not exist in the container's /etc/group")]
    UnknownGroup(String),
    #[error("invalid bind '{0}': {1}")]
    InvalidBind(String, String),
    #[error("image defines neither Entrypoint nor Cmd; pass a command after '--'")]
    NoCommand,
    #[error("{0}")]
    ForeignArch(String),
    #[error(
        "container '{name}' is already running {}; end its sessions or run \
         'chroot-distro unmount {name}' first",
        if *.running_isolated { "with --isolated" } else { "without --isolated" }
    )]
    IsolationMismatch {
        name: String,
        running_isolated: bool,
    },
    #[error("cannot set up container '{name}': {detail}")]
    Setup { name: String, detail: String },
    #[error("{0}: command not found")]
    CommandNotFound(String),
    #[error(
        "container '{name}' has no shell to log in with ({missing}); name a command after '--'"
    )]
    NoShell { name: String, missing: String },
    #[error("{0}: cannot execute: {1}")]
    NotExecutable(String, String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

impl RuntimeError {
    /// The exit status of `login`/`run` for this error (ARCHITECTURE.md decision 7).
    pub fn exit_code(&self) -> i32 {
        match self {
            RuntimeError::CommandNotFound(_) | RuntimeError::NoShell { .. } => 127,
            RuntimeError::NotExecutable(..) => 126,
            _ => 125,
        }
    }

    pub(crate) fn setup(name: &str, detail: impl Into<String>) -> Self {
        RuntimeError::Setup {
            name: name.to_string(),
            detail: detail.into(),
        }
    }
}

/// Attach what was being done to an `io::Error`.
pub(crate) trait IoContext<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T, RuntimeError>;
}

impl<T, E: Into<io::Error>> IoContext<T> for Result<T, E> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T, RuntimeError> {
        self.map_err(|e| RuntimeError::Io {
            context: what(),
            source: e.into(),
        })
    }
}
