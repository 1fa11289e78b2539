//! Where registry credentials come from: `CD_DOCKER_AUTH` / `PD_DOCKER_AUTH`, then the
//! containers `auth.json` files, then Docker's `config.json` (inline `auths`, `credHelpers`,
//! `credsStore`).

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("{var} must be 'user:password' (the colon is required)")]
    MissingColon { var: String },
    #[error("cannot read registry credentials from {}: {reason}; fix or remove the file", path.display())]
    AuthFile { path: PathBuf, reason: String },
    #[error("credential helper docker-credential-{helper} failed: {reason}")]
    Helper { helper: String, reason: String },
}

/// A user name and password (or token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({}:***)", self.username)
    }
}

impl Credentials {
    pub fn new(username: &str, password: &str) -> Self {
        Credentials {
            username: username.to_string(),
            password: password.to_string(),
        }
    }

    /// `user:password`; the password may itself contain colons.
    pub fn parse_user_pass(s: &str, var: &str) -> Result<Self, CredentialError> {
        match s.split_once(':') {
            Some((u, p)) if !u.is_empty() => Ok(Credentials::new(u, p)),
            _ => Err(CredentialError::MissingColon {
                var: var.to_string(),
            }),
        }
    }

    /// The value of an `Authorization: Basic` header.
    pub fn basic_header(&self) -> String {
        format!(
            "Basic {}",
            base64_encode(format!("{}:{}", self.username, self.password).as_bytes())
        )
    }
}

/// A chain of places to look for credentials.
#[derive(Debug, Clone, Default)]
pub struct CredentialSource {
    explicit: Option<Credentials>,
    auth_files: Vec<PathBuf>,
    helper_dir: Option<PathBuf>,
}

impl CredentialSource {
    /// Anonymous access only.
    pub fn none() -> Self {
        Self::default()
    }

    /// These credentials for every registry (what `CD_DOCKER_AUTH` does).
    pub fn fixed(credentials: Credentials) -> Self {
        CredentialSource {
            explicit: Some(credentials),
            ..Self::default()
        }
    }

    /// Look in these `auth.json` / `config.json` files, in order.
    pub fn with_auth_files(files: Vec<PathBuf>) -> Self {
        CredentialSource {
            auth_files: files,
            ..Self::default()
        }
    }

    /// Run `docker-credential-*` helpers from `dir` instead of `$PATH`.
    pub fn helper_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.helper_dir = Some(dir.into());
        self
    }

    /// `CD_DOCKER_AUTH`, then `PD_DOCKER_AUTH`, then the standard auth files.
    pub fn from_env() -> Result<Self, CredentialError> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        for name in ["CD_DOCKER_AUTH", "PD_DOCKER_AUTH"] {
            if let Some(v) = var(name) {
                return Ok(Self::fixed(Credentials::parse_user_pass(&v, name)?));
            }
        }
        let home = var("HOME").map(PathBuf::from);
        let mut files = Vec::new();
        files.extend(var("REGISTRY_AUTH_FILE").map(PathBuf::from));
        files.extend(var("XDG_RUNTIME_DIR").map(|d| Path::new(&d).join("containers/auth.json")));
        files.extend(
            home.as_ref()
                .map(|h| h.join(".config/containers/auth.json")),
        );
        match var("DOCKER_CONFIG") {
            Some(d) => files.push(Path::new(&d).join("config.json")),
            None => files.extend(home.as_ref().map(|h| h.join(".docker/config.json"))),
        }
        Ok(Self::with_auth_files(files))
    }

    pub fn is_anonymous(&self) -> bool {
        self.explicit.is_none() && self.auth_files.is_empty()
    }

    /// Credentials for `registry` (`docker.io`, `ghcr.io`, `127.0.0.1:5000`, or an API host
    /// like `registry-1.docker.io`), or `None` for anonymous access.
    pub fn lookup(&self, registry: &str) -> Result<Option<Credentials>, CredentialError> {
        if let Some(c) = &self.explicit {
            return Ok(Some(c.clone()));
        }
        let host = normalize_key(registry);
        for path in &self.auth_files {
            let file = match std::fs::read(path) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(CredentialError::AuthFile {
                        path: path.clone(),
                        reason: e.to_string(),
                    })
                }
            };
            let cfg: AuthFile =
                serde_json::from_slice(&file).map_err(|e| CredentialError::AuthFile {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            if let Some(found) = self.lookup_in(&cfg, &host, path)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    fn lookup_in(
        &self,
        cfg: &AuthFile,
        host: &str,
        path: &Path,
    ) -> Result<Option<Credentials>, CredentialError> {
        if let Some(helper) = cfg
            .cred_helpers
            .iter()
            .find(|(k, _)| normalize_key(k) == host)
            .map(|(_, v)| v)
        {
            return self.run_helper(helper, host);
        }
        if let Some(entry) = cfg
            .auths
            .iter()
            .find(|(k, _)| normalize_key(k) == host)
            .map(|(_, v)| v)
        {
            if let Some(c) = entry.credentials(path)? {
                return Ok(Some(c));
            }
        }
        match &cfg.creds_store {
            Some(store) if !store.is_empty() => self.run_helper(store, host),
            _ => Ok(None),
        }
    }

    fn run_helper(&self, helper: &str, host: &str) -> Result<Option<Credentials>, CredentialError> {
        let program = format!("docker-credential-{helper}");
        let program = match &self.helper_dir {
            Some(d) => d.join(program),
            None => PathBuf::from(program),
        };
        let fail = |reason: String| CredentialError::Helper {
            helper: helper.to_string(),
            reason,
        };
        // Docker stores Hub credentials under its v1 index URL.
        let server = if host == "docker.io" {
            "https://index.docker.io/v1/"
        } else {
            host
        };
        let mut child = Command::new(&program)
            .arg("get")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| fail(format!("cannot run {}: {e}", program.display())))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(server.as_bytes())
                .map_err(|e| fail(e.to_string()))?;
        }
        let out = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
        if !out.status.success() {
            // "credentials not found in native keychain": anonymous, not an error.
            return Ok(None);
        }
        #[derive(Deserialize)]
        struct HelperReply {
            #[serde(rename = "Username", default)]
            username: String,
            #[serde(rename = "Secret", default)]
            secret: String,
        }
        let reply: HelperReply = serde_json::from_slice(&out.stdout)
            .map_err(|e| fail(format!("unreadable reply: {e}")))?;
        // "<token>" marks an identity token for Docker's OAuth flow, which we do not speak.
        if reply.username.is_empty() || reply.username == "<token>" {
            return Ok(None);
        }
        Ok(Some(Credentials::new(&reply.username, &reply.secret)))
    }
}

#[derive(Deserialize, Default)]
struct AuthFile {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(rename = "credHelpers", default)]
    cred_helpers: HashMap<String, String>,
    #[serde(rename = "credsStore", default)]
    creds_store: Option<String>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

impl AuthEntry {
    fn credentials(&self, path: &Path) -> Result<Option<Credentials>, CredentialError> {
        if let Some(auth) = self.auth.as_deref().filter(|a| !a.is_empty()) {
            let bad = |reason: &str| CredentialError::AuthFile {
                path: path.to_path_buf(),
                reason: reason.to_string(),
            };
            let decoded = base64_decode(auth).ok_or_else(|| bad("'auth' is not valid base64"))?;
            let text = String::from_utf8(decoded).map_err(|_| bad("'auth' is not UTF-8"))?;
            let (u, p) = text
                .split_once(':')
                .ok_or_else(|| bad("'auth' is not user:password"))?;
            return Ok(Some(Credentials::new(u, p)));
        }
        match (&self.username, &self.password) {
            (Some(u), Some(p)) if !u.is_empty() => Ok(Some(Credentials::new(u, p))),
            _ => Ok(None),
        }
    }
}

/// `https://index.docker.io/v1/`, `registry-1.docker.io`, `docker.io` are all Docker Hub;
/// a scheme and a trailing `/v1/` or `/v2/` are ignored elsewhere too.
fn normalize_key(key: &str) -> String {
    let k = key
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let k = k.trim_end_matches('/');
    let k = k
        .strip_suffix("/v1")
        .or_else(|| k.strip_suffix("/v2"))
        .unwrap_or(k);
    let k = k.to_ascii_lowercase();
    match k.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".to_string()
        }
        _ => k,
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub(crate) fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub(crate) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim().trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn base64_round_trips() {
        for s in ["", "a", "ab", "abc", "user:pa:ss", "\u{e9}t\u{e9}"] {
            let e = base64_encode(s.as_bytes());
            assert_eq!(base64_decode(&e).unwrap(), s.as_bytes(), "{s} -> {e}");
        }
        assert_eq!(base64_encode(b"user:pass"), "dXNlcjpwYXNz");
        assert!(base64_decode("a b").is_none());
    }

    #[test]
    fn user_pass_needs_a_colon() {
        let c = Credentials::parse_user_pass("me:ghp_x:y", "CD_DOCKER_AUTH").unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("me", "ghp_x:y")
        );
        let e = Credentials::parse_user_pass("me", "CD_DOCKER_AUTH").unwrap_err();
        assert_eq!(
            e.to_string(),
            "CD_DOCKER_AUTH must be 'user:password' (the colon is required)"
        );
        assert!(
            !format!("{c:?}").contains("ghp"),
            "debug output hides the secret"
        );
    }

    #[test]
    fn docker_hub_keys_match_any_spelling() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("config.json");
        std::fs::write(
            &f,
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dXNlcjpwYXNz"},
                "ghcr.io":{"username":"g","password":"p"},"empty.io":{}}}"#,
        )
        .unwrap();
        let src = CredentialSource::with_auth_files(vec![dir.path().join("missing.json"), f]);
        for host in ["docker.io", "registry-1.docker.io", "index.docker.io"] {
            assert_eq!(
                src.lookup(host).unwrap(),
                Some(Credentials::new("user", "pass"))
            );
        }
        assert_eq!(
            src.lookup("ghcr.io").unwrap(),
            Some(Credentials::new("g", "p"))
        );
        assert_eq!(src.lookup("empty.io").unwrap(), None);
        assert_eq!(src.lookup("quay.io").unwrap(), None);
    }

    #[test]
    fn earlier_auth_file_wins_and_broken_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("auth.json");
        let b = dir.path().join("config.json");
        std::fs::write(&a, r#"{"auths":{"r.io":{"auth":"YTox"}}}"#).unwrap();
        std::fs::write(&b, r#"{"auths":{"r.io":{"auth":"Yjoy"}}}"#).unwrap();
        let src = CredentialSource::with_auth_files(vec![a.clone(), b]);
        assert_eq!(
            src.lookup("r.io").unwrap(),
            Some(Credentials::new("a", "1"))
        );
        std::fs::write(&a, "{not json").unwrap();
        assert!(matches!(
            src.lookup("r.io"),
            Err(CredentialError::AuthFile { .. })
        ));
    }

    #[test]
    fn credential_helpers_are_run_with_the_server_on_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let helper = dir.path().join("docker-credential-fake");
        // Echo the server it was asked about back as the user name.
        std::fs::write(
            &helper,
            "#!/bin/sh\nread s\n[ \"$1\" = get ] || exit 3\n\
             [ \"$s\" = nothere.io ] && { echo 'credentials not found' ; exit 1; }\n\
             printf '{\"ServerURL\":\"%s\",\"Username\":\"%s\",\"Secret\":\"s3cret\"}' \"$s\" \"$s\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let cfg = dir.path().join("config.json");
        std::fs::write(
            &cfg,
            r#"{"auths":{"https://index.docker.io/v1/":{}},"credsStore":"fake","credHelpers":{"own.io":"fake"}}"#,
        )
        .unwrap();
        let src = CredentialSource::with_auth_files(vec![cfg]).helper_dir(dir.path());
        assert_eq!(
            src.lookup("docker.io").unwrap(),
            Some(Credentials::new("https://index.docker.io/v1/", "s3cret"))
        );
        assert_eq!(
            src.lookup("own.io").unwrap(),
            Some(Credentials::new("own.io", "s3cret"))
        );
        assert_eq!(src.lookup("nothere.io").unwrap(), None);
    }
}
