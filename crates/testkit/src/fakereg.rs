//! A scripted fake OCI registry on loopback for the cases a real registry will not produce on
//! demand: Bearer challenges with a token endpoint, 429 with `Retry-After`, 5xx, redirects of
//! blobs to another host, lying answers (wrong digest, short bodies) and hangs mid-transfer. Every request is
//! recorded with its `Authorization` and `Range` headers.
//!
//! Self-contained (no `crate::` paths) so test crates may also include it with `#[path]`.

use std::collections::HashMap;
use std::io::{Cursor, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use sha2::{Digest as _, Sha256};
use tiny_http::{Header, Request, Response, Server, StatusCode};

/// What the fake demands before it serves `/v2/...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FakeAuth {
    Open,
    /// A Bearer challenge pointing at this server's `/token`. With credentials, the token
    /// endpoint demands them as Basic; without, it hands out anonymous tokens.
    Bearer {
        credentials: Option<(String, String)>,
    },
    /// `WWW-Authenticate: Basic`, like distribution with htpasswd.
    Basic {
        user: String,
        password: String,
    },
}

/// A scripted misbehaviour for requests whose path contains a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// 429 with `Retry-After: <secs>`.
    TooManyRequests { retry_after_secs: u64 },
    /// This HTTP status with an empty body.
    Status(u16),
    /// Serve these bytes instead of the real content (a wrong digest).
    WrongBody(Vec<u8>),
    /// Serve only the first N bytes, with an honest `Content-Length: N`.
    Truncate(usize),
    /// Answer ranged requests with the whole body and 200.
    IgnoreRange,
    /// Announce the whole blob, send its first N bytes, then say nothing more until the fake is
    /// dropped (longer than any client read timeout), like a server that hangs mid-transfer.
    Stall(usize),
}

/// One request the fake saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRequest {
    pub method: String,
    /// Path and query.
    pub url: String,
    pub authorization: Option<String>,
    pub range: Option<String>,
    pub accept: Option<String>,
}

struct ScriptedFault {
    path_contains: String,
    fault: Fault,
    remaining: usize,
}

struct State {
    auth: FakeAuth,
    token_field: &'static str,
    /// (repo, tag or digest) -> (media type, bytes)
    manifests: HashMap<(String, String), (String, Vec<u8>)>,
    /// digest -> bytes (shared by all repositories)
    blobs: HashMap<String, Vec<u8>>,
    faults: Vec<ScriptedFault>,
    redirect_blobs_to: Option<String>,
    send_content_digest: bool,
    seen: Vec<SeenRequest>,
}

/// The running fake; stops when dropped.
pub struct FakeRegistry {
    host_port: String,
    server: Arc<Server>,
    state: Arc<Mutex<State>>,
    thread: Option<JoinHandle<()>>,
    stopping: Arc<AtomicBool>,
}

const TOKEN: &str = "fake-token-7d1e";

pub fn sha256_digest(data: &[u8]) -> String {
    let h = Sha256::digest(data);
    let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

impl FakeRegistry {
    pub fn start(auth: FakeAuth) -> FakeRegistry {
        let server = Arc::new(Server::http("127.0.0.1:0").expect("bind fake registry"));
        let port = server
            .server_addr()
            .to_ip()
            .expect("fake registry has an IP address")
            .port();
        let host_port = format!("127.0.0.1:{port}");
        let state = Arc::new(Mutex::new(State {
            auth,
            token_field: "token",
            manifests: HashMap::new(),
            blobs: HashMap::new(),
            faults: Vec::new(),
            redirect_blobs_to: None,
            send_content_digest: true,
            seen: Vec::new(),
        }));
        let stopping = Arc::new(AtomicBool::new(false));
        let thread = {
            let server = Arc::clone(&server);
            let state = Arc::clone(&state);
            let me = host_port.clone();
            let stopping = Arc::clone(&stopping);
            std::thread::spawn(move || {
                for req in server.incoming_requests() {
                    handle(&me, &state, req, &stopping);
                }
            })
        };
        FakeRegistry {
            host_port,
            server,
            state,
            thread: Some(thread),
            stopping,
        }
    }

    pub fn open() -> FakeRegistry {
        Self::start(FakeAuth::Open)
    }

    /// `127.0.0.1:PORT`
    pub fn host_port(&self) -> &str {
        &self.host_port
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Store a blob; returns its digest.
    pub fn put_blob(&self, data: &[u8]) -> String {
        let d = sha256_digest(data);
        self.state().blobs.insert(d.clone(), data.to_vec());
        d
    }

    /// Store a manifest under `reference` (a tag) and under its digest; returns the digest.
    pub fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> String {
        let d = sha256_digest(bytes);
        let mut st = self.state();
        for r in [reference.to_string(), d.clone()] {
            st.manifests.insert(
                (repo.to_string(), r),
                (media_type.to_string(), bytes.to_vec()),
            );
        }
        d
    }

    /// Misbehave `times` times for requests whose path contains `path_contains`.
    pub fn fault(&self, path_contains: &str, fault: Fault, times: usize) {
        self.state().faults.push(ScriptedFault {
            path_contains: path_contains.to_string(),
            fault,
            remaining: times,
        });
    }

    /// Answer blob GETs with `307` to the same path on `other`.
    pub fn redirect_blobs_to(&self, other: &FakeRegistry) {
        self.state().redirect_blobs_to = Some(other.host_port.clone());
    }

    /// Reply to token requests with `access_token` (OAuth2 spelling) instead of `token`.
    pub fn use_access_token_field(&self) {
        self.state().token_field = "access_token";
    }

    /// Whether manifest replies carry `Docker-Content-Digest` (default yes).
    pub fn send_content_digest(&self, yes: bool) {
        self.state().send_content_digest = yes;
    }

    pub fn requests(&self) -> Vec<SeenRequest> {
        self.state().seen.clone()
    }

    pub fn count(&self, path_contains: &str) -> usize {
        self.state()
            .seen
            .iter()
            .filter(|r| r.url.contains(path_contains))
            .count()
    }
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::Relaxed);
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn hdr(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("valid header")
}

fn get_header(req: &Request, name: &str) -> Option<String> {
    req.headers()
        .iter()
        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str().to_string())
}

fn basic(user: &str, pass: &str) -> String {
    format!("Basic {}", base64(format!("{user}:{pass}").as_bytes()))
}

/// Standard base64 with padding (Basic credentials, auth files). The test kit's own, so the
/// tests do not check the client's encoder against itself.
pub fn base64(data: &[u8]) -> String {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            out.push(if i <= c.len() {
                B64[((n >> (18 - 6 * i)) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

type Reply = Response<Cursor<Vec<u8>>>;

fn empty(status: u16) -> Reply {
    Response::from_data(Vec::new()).with_status_code(status)
}

fn handle(me: &str, state: &Mutex<State>, req: Request, stopping: &Arc<AtomicBool>) {
    let mut stall = None;
    let reply = {
        let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
        respond(me, &mut st, &req, &mut stall)
    };
    let Some((prefix, len)) = stall else {
        let _ = req.respond(reply);
        return;
    };
    // On its own thread, so the fake keeps answering other requests meanwhile.
    let stopping = Arc::clone(stopping);
    std::thread::spawn(move || {
        let body = Cursor::new(prefix).chain(Silence(stopping));
        let _ = req.respond(Response::new(
            StatusCode(200),
            Vec::new(),
            body,
            Some(len),
            None,
        ));
    });
}

/// A body that blocks until the fake stops, then ends.
struct Silence(Arc<AtomicBool>);

impl Read for Silence {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        while !self.0.load(Ordering::Relaxed) {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Ok(0)
    }
}

fn respond(me: &str, st: &mut State, req: &Request, stall: &mut Option<(Vec<u8>, usize)>) -> Reply {
    let url = req.url().to_string();
    let path = url.split('?').next().unwrap_or("").to_string();
    let authorization = get_header(req, "authorization");
    let range = get_header(req, "range");
    st.seen.push(SeenRequest {
        method: req.method().as_str().to_string(),
        url: url.clone(),
        authorization: authorization.clone(),
        range: range.clone(),
        accept: get_header(req, "accept"),
    });

    // Token endpoint.
    if path == "/token" {
        if let FakeAuth::Bearer {
            credentials: Some((u, p)),
        } = &st.auth
        {
            if authorization.as_deref() != Some(basic(u, p).as_str()) {
                return empty(401);
            }
        }
        let body = format!(r#"{{"{}":"{TOKEN}","expires_in":300}}"#, st.token_field);
        return Response::from_data(body.into_bytes())
            .with_header(hdr("Content-Type", "application/json"));
    }

    let mut fault = None;
    if let Some(f) = st
        .faults
        .iter_mut()
        .find(|f| f.remaining > 0 && path.contains(&f.path_contains))
    {
        f.remaining -= 1;
        fault = Some(f.fault.clone());
    }
    match &fault {
        Some(Fault::TooManyRequests { retry_after_secs }) => {
            return empty(429).with_header(hdr("Retry-After", &retry_after_secs.to_string()))
        }
        Some(Fault::Status(s)) => return empty(*s),
        _ => {}
    }

    // Authentication for /v2/.
    let repo = repo_of(&path);
    let challenge = match &st.auth {
        FakeAuth::Open => None,
        FakeAuth::Bearer { .. } => (authorization.as_deref() != Some(&format!("Bearer {TOKEN}")))
            .then(|| {
                let scope = repo
                    .as_ref()
                    .map(|r| format!(",scope=\"repository:{r}:pull\""))
                    .unwrap_or_default();
                format!("Bearer realm=\"http://{me}/token\",service=\"fake\"{scope}")
            }),
        FakeAuth::Basic { user, password } => (authorization.as_deref()
            != Some(basic(user, password).as_str()))
        .then(|| "Basic realm=\"fake\"".to_string()),
    };
    let is_blob = path.contains("/blobs/");
    if let Some(c) = challenge {
        return empty(401).with_header(hdr("WWW-Authenticate", &c));
    }
    if path == "/v2/" || path == "/v2" {
        return Response::from_data(b"{}".to_vec());
    }
    let Some(repo) = repo else {
        return empty(404);
    };
    if let Some((_, reference)) = path.split_once("/manifests/") {
        let Some((mt, bytes)) = st.manifests.get(&(repo, reference.to_string())).cloned() else {
            return empty(404);
        };
        let digest = sha256_digest(&bytes);
        let body = match fault {
            Some(Fault::WrongBody(b)) => b,
            _ => bytes,
        };
        let mut r = Response::from_data(body).with_header(hdr("Content-Type", &mt));
        if st.send_content_digest {
            r = r.with_header(hdr("Docker-Content-Digest", &digest));
        }
        return r;
    }
    if is_blob {
        let digest = path.rsplit('/').next().unwrap_or("").to_string();
        if let Some(target) = &st.redirect_blobs_to {
            return empty(307).with_header(hdr(
                "Location",
                &format!("http://{target}{path}?signature=abc"),
            ));
        }
        let Some(data) = st.blobs.get(&digest).cloned() else {
            return empty(404);
        };
        if let Some(Fault::Stall(n)) = fault {
            *stall = Some((data[..n.min(data.len())].to_vec(), data.len()));
            return empty(200);
        }
        let ignore_range = fault == Some(Fault::IgnoreRange);
        let data = match fault {
            Some(Fault::WrongBody(b)) => b,
            Some(Fault::Truncate(n)) => data[..n.min(data.len())].to_vec(),
            _ => data,
        };
        let start = range
            .as_deref()
            .and_then(|r| r.strip_prefix("bytes="))
            .and_then(|r| r.strip_suffix('-'))
            .and_then(|s| s.parse::<usize>().ok());
        return match start {
            Some(s) if !ignore_range => {
                if s >= data.len() {
                    return empty(416);
                }
                let len = data.len();
                Response::from_data(data[s..].to_vec())
                    .with_status_code(206)
                    .with_header(hdr(
                        "Content-Range",
                        &format!("bytes {s}-{}/{len}", len - 1),
                    ))
            }
            _ => Response::from_data(data),
        };
    }
    empty(404)
}

/// `/v2/<repo>/manifests/..` or `/v2/<repo>/blobs/..` gives `<repo>`.
fn repo_of(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/v2/")?;
    let end = rest.find("/manifests/").or_else(|| rest.find("/blobs/"))?;
    Some(rest[..end].to_string())
}
