//! Registry errors: each variant's message is one line that names the thing and the next step.

use std::path::PathBuf;

use cd_image::{Digest, ManifestError};

use crate::credentials::CredentialError;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{what} not found on {registry}; check the image name and tag")]
    NotFound { registry: String, what: String },
    #[error("access to {what} on {registry} was denied (HTTP {status}); {hint}")]
    Unauthorized {
        registry: String,
        what: String,
        status: u16,
        hint: String,
    },
    #[error("{what}: digest mismatch (expected {expected}, got {actual}); the registry or a proxy served corrupt data, try again")]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("{what}: size mismatch (expected {expected} bytes, got {actual}); try again")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error("cannot reach registry {host}: {reason}; check the network, the host name and any proxy settings")]
    Unreachable { host: String, reason: String },
    #[error("registry {host} refused the TLS connection: {reason}; if it uses a private CA point SSL_CERT_FILE at it")]
    Tls { host: String, reason: String },
    #[error("registry {host} only speaks plain HTTP; allow it explicitly as an insecure registry")]
    InsecureNotAllowed { host: String },
    #[error("registry {host} keeps answering 429 Too Many Requests; wait a while or log in (CD_DOCKER_AUTH=user:password) for a higher limit")]
    RateLimited { host: String },
    #[error("registry {host} failed with HTTP {status} for {what}; try again later")]
    Server {
        host: String,
        status: u16,
        what: String,
    },
    #[error("registry {host} answered {what} with an unexpected response: {detail}")]
    Protocol {
        host: String,
        what: String,
        detail: String,
    },
    #[error("{image} has no image for {wanted}; available: {}; choose one with --architecture", available.join(", "))]
    NoMatchingPlatform {
        image: String,
        wanted: String,
        available: Vec<String>,
    },
    #[error("{what}: {source}")]
    Manifest {
        what: String,
        #[source]
        source: ManifestError,
    },
    #[error("cannot write {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    #[error("download cancelled")]
    Cancelled,
}

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

impl RegistryError {
    /// Errors worth another attempt as they stand (flaky network, overloaded server).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            RegistryError::Unreachable { .. }
                | RegistryError::Server { .. }
                | RegistryError::RateLimited { .. }
        )
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        RegistryError::Io {
            path: path.into(),
            source,
        }
    }
}
