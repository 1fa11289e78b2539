//! Errors of the engine: each carries the one-line message a user sees.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum EngineError {
    #[error(
        "invalid container name '{0}': use a letter or digit first, then letters, digits, '_', '.' or '-'"
    )]
    InvalidName(String),

    #[error("container '{0}' is not installed; see 'chroot-distro list'")]
    NotFound(String),

    #[error("container '{0}' already exists; pick another name with --name or remove it first")]
    AlreadyExists(String),

    #[error("container '{name}' is busy ({holder}); wait for it or stop it with 'chroot-distro kill {name}'")]
    Busy { name: String, holder: String },

    #[error("container '{name}' is running ({detail}); stop it with 'chroot-distro kill {name}'")]
    Running { name: String, detail: String },

    #[error("'{path}' is still mounted inside container '{name}' and could not be unmounted; run 'chroot-distro unmount {name}' and retry")]
    MountBusy { name: String, path: PathBuf },

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },

    #[error("interrupted; nothing was changed")]
    Interrupted,

    /// Interrupted work that is not all-or-nothing (copy, sync): what stays is said.
    #[error("interrupted; {0}")]
    InterruptedPartway(&'static str),

    #[error("{0}")]
    Other(String),
}

impl EngineError {
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        EngineError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Attach a description of what was being done to an `io::Error`.
pub trait IoContext<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T, EngineError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T, EngineError> {
        self.map_err(|e| EngineError::io(what(), e))
    }
}
