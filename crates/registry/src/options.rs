//! Client settings and the `CD_DOWNLOAD_*` environment knobs.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::credentials::{CredentialError, CredentialSource};

/// How the client behaves. `Default` reads no environment; `from_env` does.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub user_agent: String,
    /// Hosts (`host[:port]`) that may be spoken to over plain HTTP.
    pub insecure_hosts: Vec<String>,
    /// Allow plain HTTP to any host. Loopback hosts always may, like Docker.
    pub allow_insecure: bool,
    pub credentials: CredentialSource,
    /// Attempts after the first on connection errors, 5xx and 429.
    pub max_retries: u32,
    pub rate_limit_bytes_per_sec: Option<u64>,
    pub timeouts: Timeouts,
    /// Extra PEM files of trusted roots (`SSL_CERT_FILE` when built by `from_env`).
    pub ca_files: Vec<PathBuf>,
    /// First backoff delay; it doubles per attempt.
    pub retry_base_delay: Duration,
    /// Cap for one backoff or `Retry-After` wait.
    pub retry_max_delay: Duration,
    /// How long a loopback registry gets to start a TLS handshake before plain HTTP is tried.
    pub loopback_tls_probe_timeout: Duration,
    /// Set (e.g. by a Ctrl-C handler) to stop requests and downloads at once, even while a read
    /// is blocked (see `cd_sys::cancel`); they fail with `RegistryError::Cancelled` and keep
    /// their partial files for a later resume.
    pub cancel: Option<&'static AtomicBool>,
}

#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    /// Until the response headers arrive.
    pub response: Duration,
    /// One read of the body stalling this long fails the attempt (then resumed).
    pub read: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(30),
            response: Duration::from_secs(60),
            read: Duration::from_secs(60),
        }
    }
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            user_agent: format!("chroot-distro/{}", env!("CARGO_PKG_VERSION")),
            insecure_hosts: Vec::new(),
            allow_insecure: false,
            credentials: CredentialSource::none(),
            max_retries: 3,
            rate_limit_bytes_per_sec: None,
            timeouts: Timeouts::default(),
            ca_files: Vec::new(),
            retry_base_delay: Duration::from_millis(500),
            retry_max_delay: Duration::from_secs(60),
            loopback_tls_probe_timeout: Duration::from_secs(1),
            cancel: None,
        }
    }
}

impl ClientOptions {
    /// Defaults plus `CD_DOCKER_AUTH`/auth files, `CD_DOWNLOAD_MAX_RETRIES`,
    /// `CD_DOWNLOAD_RATE_LIMIT` and `SSL_CERT_FILE`.
    pub fn from_env() -> Result<Self, CredentialError> {
        let var = |k: &str| std::env::var(k).ok();
        Ok(ClientOptions {
            credentials: CredentialSource::from_env()?,
            max_retries: parse_max_retries(var("CD_DOWNLOAD_MAX_RETRIES").as_deref()),
            rate_limit_bytes_per_sec: var("CD_DOWNLOAD_RATE_LIMIT")
                .as_deref()
                .and_then(parse_rate_limit),
            ca_files: var("SSL_CERT_FILE")
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .into_iter()
                .collect(),
            ..ClientOptions::default()
        })
    }
}

/// `CD_DOWNLOAD_MAX_RETRIES`: default 3, clamped to 0..=20.
pub fn parse_max_retries(v: Option<&str>) -> u32 {
    v.and_then(|s| s.trim().parse::<i64>().ok())
        .map_or(3, |n| n.clamp(0, 20) as u32)
}

/// `CD_DOWNLOAD_WORKERS`: default 4, clamped to 1..=10, invalid values give the default.
pub fn parse_workers(v: Option<&str>) -> usize {
    v.and_then(|s| s.trim().parse::<i64>().ok())
        .map_or(4, |n| n.clamp(1, 10) as usize)
}

/// The worker count from `CD_DOWNLOAD_WORKERS`.
pub fn download_workers_from_env() -> usize {
    parse_workers(std::env::var("CD_DOWNLOAD_WORKERS").ok().as_deref())
}

/// `CD_DOWNLOAD_RATE_LIMIT`: bytes per second with an optional K/M/G suffix (powers of 1024,
/// any case, an optional trailing `B`); `0` or an invalid value means no limit.
pub fn parse_rate_limit(s: &str) -> Option<u64> {
    let s = s.trim();
    let s = s
        .strip_suffix(['b', 'B'])
        .filter(|r| r.ends_with(|c: char| c.is_ascii_alphabetic()))
        .unwrap_or(s);
    let (num, mult) = match s.char_indices().last()? {
        (i, 'k' | 'K') => (&s[..i], 1u64 << 10),
        (i, 'm' | 'M') => (&s[..i], 1 << 20),
        (i, 'g' | 'G') => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    let value: f64 = num.trim().parse().ok()?;
    if !value.is_finite() || value <= 0.0 {
        return None;
    }
    let bytes = (value * mult as f64) as u64;
    (bytes > 0).then_some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_suffixes_are_binary_and_case_insensitive() {
        assert_eq!(parse_rate_limit("5M"), Some(5 << 20));
        assert_eq!(parse_rate_limit("5m"), Some(5 << 20));
        assert_eq!(parse_rate_limit("512k"), Some(512 << 10));
        assert_eq!(parse_rate_limit("1G"), Some(1 << 30));
        assert_eq!(parse_rate_limit("1.5M"), Some(3 << 19));
        assert_eq!(parse_rate_limit("2MB"), Some(2 << 20));
        assert_eq!(parse_rate_limit("1000"), Some(1000));
        assert_eq!(parse_rate_limit("0"), None);
        assert_eq!(parse_rate_limit(""), None);
        assert_eq!(parse_rate_limit("fast"), None);
        assert_eq!(parse_rate_limit("-1M"), None);
    }

    #[test]
    fn workers_and_retries_are_clamped_and_default_when_invalid() {
        assert_eq!(parse_workers(None), 4);
        assert_eq!(parse_workers(Some("x")), 4);
        assert_eq!(parse_workers(Some("0")), 1);
        assert_eq!(parse_workers(Some("99")), 10);
        assert_eq!(parse_workers(Some("6")), 6);
        assert_eq!(parse_max_retries(None), 3);
        assert_eq!(parse_max_retries(Some("50")), 20);
        assert_eq!(parse_max_retries(Some("-2")), 0);
        assert_eq!(parse_max_retries(Some("junk")), 3);
    }
}
