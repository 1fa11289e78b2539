//! A small synchronous OCI distribution client (pull side) on ureq.
//!
//! No async runtime: parallel downloads run on scoped threads that are all joined before any
//! function returns, so callers may fork or `setns` afterwards (ARCHITECTURE.md, decision 1).
//! The one exception is cancellation: a thread blocked on a stalled server is left behind
//! (see `cd_sys::cancel`) when the process is about to exit anyway.

mod auth;
mod blob;
mod credentials;
mod error;
mod manifest;
mod options;
mod retry;
mod transport;

pub use auth::{parse_challenge, Challenge};
pub use blob::partial_path;
pub use credentials::{CredentialError, CredentialSource, Credentials};
pub use error::{RegistryError, Result};
pub use manifest::{FetchedManifest, Repository, Resolved};
pub use options::{
    download_workers_from_env, parse_max_retries, parse_rate_limit, parse_workers, ClientOptions,
    Timeouts,
};
pub use transport::{http_agent, RegistryClient};
