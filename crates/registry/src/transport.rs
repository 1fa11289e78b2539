//! The client: one ureq agent, TLS roots, HTTPS-then-HTTP for loopback, the `/v2/` probe,
//! challenge-driven authentication and retries.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use ureq::http::{self, Response};
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};
use ureq::{Agent, Body};

use crate::auth::{parse_challenge, percent_encode, Challenge, Token, TokenReply};
use crate::credentials::Credentials;
use crate::error::{RegistryError, Result};
use crate::options::ClientOptions;
use crate::retry::{Backoff, RateLimiter};
use cd_sys::cancel::{sleep_unless_cancelled, unless_cancelled};

/// A synchronous OCI distribution client. Cheap to share between scoped threads (`&self`).
pub struct RegistryClient {
    pub(crate) opts: ClientOptions,
    agent: Agent,
    hosts: Mutex<HashMap<String, HostState>>,
    tokens: Mutex<HashMap<(String, String), Token>>,
    creds: Mutex<HashMap<String, Option<Credentials>>>,
    pub(crate) limiter: Option<RateLimiter>,
}

#[derive(Debug, Clone)]
struct HostState {
    /// `https://host` or `http://host`
    base: String,
    challenge: Option<Challenge>,
    speaks_registry: bool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// The HTTP agent of `opts` (trusted roots, user agent, timeouts, redirects); statuses are
/// returned, not turned into errors. Also used for plain archive downloads.
pub fn http_agent(opts: &ClientOptions) -> Agent {
    let tls = TlsConfig::builder()
        .root_certs(root_certs(&opts.ca_files))
        .build();
    let t = opts.timeouts;
    Agent::config_builder()
        .http_status_as_error(false)
        .user_agent(opts.user_agent.as_str())
        .tls_config(tls)
        .timeout_connect(Some(t.connect))
        .timeout_recv_response(Some(t.response))
        .timeout_per_read(Some(t.read))
        .max_redirects(10)
        .build()
        .new_agent()
}

impl RegistryClient {
    pub fn new(opts: ClientOptions) -> RegistryClient {
        let agent = http_agent(&opts);
        RegistryClient {
            limiter: opts.rate_limit_bytes_per_sec.map(RateLimiter::new),
            opts,
            agent,
            hosts: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            creds: Mutex::new(HashMap::new()),
        }
    }

    pub fn options(&self) -> &ClientOptions {
        &self.opts
    }

    pub(crate) fn backoff(&self) -> Backoff {
        Backoff {
            base: self.opts.retry_base_delay,
            max: self.opts.retry_max_delay,
        }
    }

    fn credentials(&self, host: &str) -> Result<Option<Credentials>> {
        if let Some(c) = lock(&self.creds).get(host) {
            return Ok(c.clone());
        }
        let c = self.opts.credentials.lookup(host)?;
        lock(&self.creds).insert(host.to_string(), c.clone());
        Ok(c)
    }

    /// Plain HTTP is allowed for loopback hosts (as Docker does) and hosts marked insecure.
    fn may_use_http(&self, host: &str) -> bool {
        self.opts.allow_insecure
            || self.opts.insecure_hosts.iter().any(|h| h == host)
            || is_loopback(host)
    }

    fn send_once(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        connect_timeout: Option<Duration>,
    ) -> Result<std::result::Result<Response<Body>, ureq::Error>> {
        let mut req = http::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            req = req.header(*k, v.as_str());
        }
        let mut req = match req.body(()) {
            Ok(r) => r,
            Err(e) => return Ok(Err(ureq::Error::Http(e))),
        };
        if let Some(t) = connect_timeout {
            req = self
                .agent
                .configure_request(req)
                .timeout_connect(Some(t))
                .build();
        }
        let agent = self.agent.clone();
        unless_cancelled(self.opts.cancel, move || agent.run(req)).ok_or(RegistryError::Cancelled)
    }

    /// One request with retries on connection errors, 5xx and 429.
    fn send_retrying(
        &self,
        host: &str,
        what: &str,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        retries: u32,
    ) -> Result<Response<Body>> {
        self.send_retrying_with(host, what, method, url, headers, retries, None)
    }

    #[allow(clippy::too_many_arguments)]
    fn send_retrying_with(
        &self,
        host: &str,
        what: &str,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        retries: u32,
        connect_timeout: Option<Duration>,
    ) -> Result<Response<Body>> {
        let backoff = self.backoff();
        let mut attempt = 0;
        loop {
            let last = attempt >= retries;
            let wait = match self.send_once(method, url, headers, connect_timeout)? {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    if status == 429 {
                        if last {
                            return Err(RegistryError::RateLimited {
                                host: host.to_string(),
                            });
                        }
                        backoff.retry_after(header(&resp, "retry-after").as_deref(), attempt)
                    } else if status >= 500 && status != 501 && status != 505 {
                        if last {
                            return Err(RegistryError::Server {
                                host: host.to_string(),
                                status,
                                what: what.to_string(),
                            });
                        }
                        backoff.delay(attempt)
                    } else {
                        return Ok(resp);
                    }
                }
                Err(e) => {
                    let err = transport_error(host, e);
                    if last || !err.is_transient() {
                        return Err(err);
                    }
                    backoff.delay(attempt)
                }
            };
            if !sleep_unless_cancelled(wait, self.opts.cancel) {
                return Err(RegistryError::Cancelled);
            }
            attempt += 1;
        }
    }

    /// The scheme and challenge of `host`, probing `GET /v2/` the first time.
    fn host_state(&self, host: &str) -> Result<HostState> {
        if let Some(s) = lock(&self.hosts).get(host) {
            return Ok(s.clone());
        }
        let retries = self.opts.max_retries;
        let https = format!("https://{host}");
        let probe = |base: &str, retries, connect_timeout| {
            let url = format!("{base}/v2/");
            self.send_retrying_with(host, "/v2/", "GET", &url, &[], retries, connect_timeout)
                .map(|resp| HostState {
                    base: base.to_string(),
                    challenge: challenge_of(&resp),
                    speaks_registry: matches!(resp.status().as_u16(), 200 | 401)
                        || resp
                            .headers()
                            .contains_key("docker-distribution-api-version"),
                })
        };
        let state = if self.may_use_http(host) {
            // Some plain-HTTP servers never answer a TLS hello, hence the short handshake
            // budget; and a TLS failure is not worth retrying before trying HTTP.
            let tls_timeout = is_loopback(host).then_some(self.opts.loopback_tls_probe_timeout);
            match probe(&https, 0, tls_timeout) {
                Ok(s) => s,
                Err(tls_err) => match probe(&format!("http://{host}"), retries, None) {
                    // A TLS server answers plain HTTP with 400: that is not a registry.
                    Ok(s) if s.speaks_registry => s,
                    _ => return Err(tls_err),
                },
            }
        } else {
            probe(&https, retries, None)?
        };
        lock(&self.hosts).insert(host.to_string(), state.clone());
        Ok(state)
    }

    /// An authenticated request to `host` for `repo` with pull scope. 401 once refreshes the
    /// challenge and token; a second 401 (or a 403) is `Unauthorized`.
    pub(crate) fn request(
        &self,
        host: &str,
        repo: &str,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        what: &str,
    ) -> Result<Response<Body>> {
        let mut state = self.host_state(host)?;
        let scope = format!("repository:{repo}:pull");
        let mut refreshed = false;
        loop {
            let mut all = headers.to_vec();
            if let Some(auth) = self.authorization(host, state.challenge.as_ref(), &scope)? {
                all.push(("Authorization", auth));
            }
            let url = format!("{}{}", state.base, path);
            let resp = self.send_retrying(host, what, method, &url, &all, self.opts.max_retries)?;
            let status = resp.status().as_u16();
            if status == 401 && !refreshed {
                refreshed = true;
                if let Some(ch) = challenge_of(&resp) {
                    state.challenge = Some(ch);
                    lock(&self.hosts).insert(host.to_string(), state.clone());
                }
                lock(&self.tokens).remove(&(host.to_string(), scope.clone()));
                continue;
            }
            if status == 401 || status == 403 {
                return Err(self.unauthorized(host, what, status));
            }
            return Ok(resp);
        }
    }

    fn unauthorized(&self, host: &str, what: &str, status: u16) -> RegistryError {
        let have_creds = matches!(self.credentials(host), Ok(Some(_)));
        let hint = if have_creds {
            "check the user name and password in CD_DOCKER_AUTH (or your auth file) and that it may pull this image"
        } else {
            "the image may be private or misspelt; set CD_DOCKER_AUTH=user:password"
        };
        RegistryError::Unauthorized {
            registry: host.to_string(),
            what: what.to_string(),
            status,
            hint: hint.to_string(),
        }
    }

    fn authorization(
        &self,
        host: &str,
        challenge: Option<&Challenge>,
        scope: &str,
    ) -> Result<Option<String>> {
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic { .. }) => Ok(self.credentials(host)?.map(|c| c.basic_header())),
            Some(Challenge::Bearer { realm, service, .. }) => {
                let key = (host.to_string(), scope.to_string());
                if let Some(t) = lock(&self.tokens).get(&key).filter(|t| t.is_fresh()) {
                    return Ok(Some(format!("Bearer {}", t.value)));
                }
                let token = self.fetch_token(host, realm, service.as_deref(), scope)?;
                let value = format!("Bearer {}", token.value);
                lock(&self.tokens).insert(key, token);
                Ok(Some(value))
            }
        }
    }

    fn fetch_token(
        &self,
        host: &str,
        realm: &str,
        service: Option<&str>,
        scope: &str,
    ) -> Result<Token> {
        if !(realm.starts_with("https://") || realm.starts_with("http://")) {
            return Err(RegistryError::Protocol {
                host: host.to_string(),
                what: "/v2/".to_string(),
                detail: format!("token realm '{realm}' is not an http(s) URL"),
            });
        }
        let mut url = realm.to_string();
        let mut sep = if url.contains('?') { '&' } else { '?' };
        if let Some(s) = service {
            url.push_str(&format!("{sep}service={}", percent_encode(s)));
            sep = '&';
        }
        url.push_str(&format!("{sep}scope={}", percent_encode(scope)));
        let mut headers = Vec::new();
        if let Some(c) = self.credentials(host)? {
            headers.push(("Authorization", c.basic_header()));
        }
        let what = "token request";
        let resp = self.send_retrying(host, what, "GET", &url, &headers, self.opts.max_retries)?;
        let status = resp.status().as_u16();
        if status == 401 || status == 403 {
            return Err(self.unauthorized(host, what, status));
        }
        let protocol = |detail: String| RegistryError::Protocol {
            host: host.to_string(),
            what: what.to_string(),
            detail,
        };
        if status != 200 {
            return Err(protocol(format!("HTTP {status}")));
        }
        let body = read_small(resp, 1 << 20).map_err(|e| protocol(e.to_string()))?;
        let reply: TokenReply =
            serde_json::from_slice(&body).map_err(|e| protocol(format!("bad JSON: {e}")))?;
        reply
            .into_token()
            .ok_or_else(|| protocol("no token in the reply".to_string()))
    }
}

/// Read a whole (small) body with a size cap.
pub(crate) fn read_small(
    resp: Response<Body>,
    limit: u64,
) -> std::result::Result<Vec<u8>, ureq::Error> {
    resp.into_body()
        .into_with_config()
        .limit(limit)
        .read_to_vec()
}

pub(crate) fn header(resp: &Response<Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn challenge_of(resp: &Response<Body>) -> Option<Challenge> {
    let all: Vec<&str> = resp
        .headers()
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    parse_challenge(&all.join(", "))
}

pub(crate) fn transport_error(host: &str, e: ureq::Error) -> RegistryError {
    let host = host.to_string();
    match e {
        ureq::Error::Tls(reason) => RegistryError::Tls {
            host,
            reason: reason.to_string(),
        },
        // rustls reports certificate and handshake failures as InvalidData.
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => RegistryError::Tls {
            host,
            reason: io.to_string(),
        },
        // ureq prefixes I/O errors with "io: "; the OS text alone reads better.
        ureq::Error::Io(io) => RegistryError::Unreachable {
            host,
            reason: io.to_string(),
        },
        ureq::Error::Timeout(_) | ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => {
            RegistryError::Unreachable {
                host,
                reason: e.to_string(),
            }
        }
        other => RegistryError::Protocol {
            host,
            what: "request".to_string(),
            detail: other.to_string(),
        },
    }
}

/// `localhost`, 127.0.0.0/8 and ::1, with or without a port.
pub(crate) fn is_loopback(host: &str) -> bool {
    let name = if host.parse::<IpAddr>().is_ok() {
        host
    } else if let Some(v6) = host.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':')
            .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
            .map_or(host, |(h, _)| h)
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The system roots (`SSL_CERT_FILE` included), plus `ca_files`, plus Termux's bundle;
/// Mozilla's roots when none load.
fn root_certs(ca_files: &[PathBuf]) -> RootCerts {
    let mut certs: Vec<Certificate<'static>> = rustls_native_certs::load_native_certs()
        .certs
        .iter()
        .map(|c| Certificate::from_der(c.as_ref()).to_owned())
        .collect();
    let mut files: Vec<PathBuf> = ca_files.to_vec();
    // openssl-probe does not know Termux's location.
    if let Some(prefix) = std::env::var_os("PREFIX") {
        files.push(PathBuf::from(prefix).join("etc/tls/cert.pem"));
    }
    for f in files {
        if let Ok(pem) = std::fs::read(&f) {
            certs.extend(ureq::tls::parse_pem(&pem).filter_map(|item| match item {
                Ok(PemItem::Certificate(c)) => Some(c),
                _ => None,
            }));
        }
    }
    if certs.is_empty() {
        RootCerts::WebPki
    } else {
        RootCerts::from(certs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_recognised_with_and_without_ports() {
        for h in [
            "localhost",
            "localhost:5000",
            "127.0.0.1",
            "127.1.2.3:443",
            "[::1]:5000",
            "::1",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in [
            "docker.io",
            "10.0.0.1:5000",
            "localhost.example.com",
            "[fe80::1]:5000",
        ] {
            assert!(!is_loopback(h), "{h}");
        }
    }
}
