//! Image references with Docker's normalisation (`alpine` is `docker.io/library/alpine:latest`).

use std::fmt;
use std::str::FromStr;

use crate::{Digest, Platform};

/// The canonical name of Docker Hub in references.
pub const DOCKER_HUB: &str = "docker.io";
/// Where Docker Hub's registry API actually lives.
const DOCKER_HUB_API: &str = "registry-1.docker.io";
const NAME_MAX: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    #[error("image reference is empty; give a name like 'alpine' or 'ghcr.io/owner/image:tag'")]
    Empty,
    #[error("image reference '{0}' contains whitespace")]
    Whitespace(String),
    #[error("repository name '{0}' must be lower-case")]
    Uppercase(String),
    #[error(
        "invalid repository name '{0}': use lower-case letters, digits and separators . _ - /"
    )]
    BadRepository(String),
    #[error("invalid registry host '{0}'")]
    BadRegistry(String),
    #[error("invalid tag '{0}': up to 128 characters of letters, digits, '_', '.', '-', not starting with '.' or '-'")]
    BadTag(String),
    #[error("invalid digest in image reference: {0}")]
    BadDigest(String),
    #[error("repository name '{0}' is longer than 255 characters")]
    TooLong(String),
}

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl ImageRef {
    /// The registry as written in references (`docker.io` for Docker Hub).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The host (and port) to talk to for the registry API.
    pub fn registry_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    pub fn is_docker_hub(&self) -> bool {
        self.registry == DOCKER_HUB
    }

    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag; `latest` when the reference named neither a tag nor a digest.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// What to put in `/v2/<repo>/manifests/<reference>`: the digest when pinned, else the tag.
    pub fn reference_for_fetch(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }

    /// The same image pinned to `digest` (the tag is kept for display).
    pub fn with_digest(&self, digest: Digest) -> ImageRef {
        ImageRef {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The last path component of the repository: `ghcr.io/a/b:1` gives `b`.
    pub fn default_container_name(&self) -> &str {
        self.repository
            .rsplit('/')
            .next()
            .unwrap_or(&self.repository)
    }

    /// The short form users type: registry omitted for Docker Hub, `library/` dropped.
    pub fn familiar_name(&self) -> String {
        if self.is_docker_hub() {
            self.repository
                .strip_prefix("library/")
                .unwrap_or(&self.repository)
                .to_string()
        } else {
            format!("{}/{}", self.registry, self.repository)
        }
    }

    /// The published Python tool's manifest cache key: the first 16 hex characters of
    /// sha256(`"{registry/}{repo}:{tag}_{platform}"`), where the registry part is empty for
    /// Docker Hub. Names `oci_manifests/<key>.json`. A digest-only reference uses the digest
    /// in place of the tag.
    pub fn python_manifest_cache_key(&self, platform: &Platform) -> String {
        let registry = if self.is_docker_hub() {
            String::new()
        } else {
            format!("{}/", self.registry)
        };
        let tag = match (&self.tag, &self.digest) {
            (Some(t), _) => t.clone(),
            (None, Some(d)) => d.to_string(),
            (None, None) => "latest".to_string(),
        };
        let key = format!("{registry}{}:{tag}_{platform}", self.repository);
        Digest::sha256(key.as_bytes()).hex()[..16].to_string()
    }
}

impl fmt::Display for ImageRef {
    /// The canonical full form: `docker.io/library/alpine:latest[@sha256:...]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl FromStr for ImageRef {
    type Err = RefError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(RefError::Empty);
        }
        if s.chars().any(char::is_whitespace) {
            return Err(RefError::Whitespace(s.to_string()));
        }
        let (name_tag, digest) = match s.split_once('@') {
            Some((n, d)) => (
                n,
                Some(
                    d.parse::<Digest>()
                        .map_err(|e| RefError::BadDigest(e.to_string()))?,
                ),
            ),
            None => (s, None),
        };
        // A tag is after the last ':' that follows the last '/' (a ':' before it is a port).
        let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_tag[last_slash..].rfind(':') {
            Some(i) => (
                &name_tag[..last_slash + i],
                Some(&name_tag[last_slash + i + 1..]),
            ),
            None => (name_tag, None),
        };
        if name.is_empty() {
            return Err(RefError::Empty);
        }
        if let Some(t) = tag {
            if !valid_tag(t) {
                return Err(RefError::BadTag(t.to_string()));
            }
        }
        let (registry, repository) = split_registry(name)?;
        if repository.len() > NAME_MAX {
            return Err(RefError::TooLong(repository));
        }
        if repository.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(RefError::Uppercase(repository));
        }
        if !repository.split('/').all(valid_path_component) {
            return Err(RefError::BadRepository(repository));
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_string()),
        };
        Ok(ImageRef {
            registry,
            repository,
            tag,
            digest,
        })
    }
}

/// Docker's rule: the first component is a registry when it contains '.' or ':', is
/// `localhost`, or has upper-case letters (repositories cannot).
fn split_registry(name: &str) -> Result<(String, String), RefError> {
    let (registry, rest) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            if !valid_host(first) {
                return Err(RefError::BadRegistry(first.to_string()));
            }
            (first.to_string(), rest.to_string())
        }
        _ => (DOCKER_HUB.to_string(), name.to_string()),
    };
    let registry = if registry == "index.docker.io" {
        DOCKER_HUB.to_string()
    } else {
        registry
    };
    let repository = if registry == DOCKER_HUB && !rest.contains('/') {
        format!("library/{rest}")
    } else {
        rest
    };
    Ok((registry, repository))
}

fn valid_host(host: &str) -> bool {
    let (name, port) = if let Some(v6) = host.strip_prefix('[') {
        match v6.split_once(']') {
            Some((addr, rest)) => {
                if addr.is_empty() || !addr.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
                    return false;
                }
                ("v6", rest.strip_prefix(':'))
            }
            None => return false,
        }
    } else {
        match host.split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (host, None),
        }
    };
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    port_ok && is_dns_name(name)
}

/// A host name as RFC 1123 writes it: dot-separated labels of letters, digits and inner
/// hyphens.
pub fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `[\w][\w.-]{0,127}`
fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&x| x.is_ascii_alphanumeric() || x == b'_' || x == b'.' || x == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn r(s: &str) -> ImageRef {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn bare_name_is_an_official_docker_hub_image() {
        let i = r("alpine");
        assert_eq!(i.registry(), "docker.io");
        assert_eq!(i.registry_host(), "registry-1.docker.io");
        assert_eq!(i.repository(), "library/alpine");
        assert_eq!(i.tag(), Some("latest"));
        assert_eq!(i.reference_for_fetch(), "latest");
        assert_eq!(i.to_string(), "docker.io/library/alpine:latest");
        assert_eq!(i.default_container_name(), "alpine");
        assert_eq!(i.familiar_name(), "alpine");
    }

    #[test]
    fn user_images_and_explicit_hub_hosts_normalise() {
        assert_eq!(r("user/img:1.0").to_string(), "docker.io/user/img:1.0");
        assert_eq!(
            r("docker.io/alpine").to_string(),
            "docker.io/library/alpine:latest"
        );
        assert_eq!(
            r("index.docker.io/library/ubuntu:24.04").to_string(),
            "docker.io/library/ubuntu:24.04"
        );
    }

    #[test]
    fn first_component_with_dot_colon_or_localhost_is_a_registry() {
        let i = r("127.0.0.1:5000/team/app:v2");
        assert_eq!(i.registry(), "127.0.0.1:5000");
        assert_eq!(i.registry_host(), "127.0.0.1:5000");
        assert_eq!(i.repository(), "team/app");
        assert_eq!(i.tag(), Some("v2"));
        assert_eq!(i.default_container_name(), "app");
        let l = r("localhost/x");
        assert_eq!((l.registry(), l.repository()), ("localhost", "x"));
        let g = r("ghcr.io/owner/image");
        assert_eq!((g.registry(), g.repository()), ("ghcr.io", "owner/image"));
        assert_eq!(r("localhost:5000/x").registry(), "localhost:5000");
        assert_eq!(r("[::1]:5000/x").registry(), "[::1]:5000");
    }

    #[test]
    fn digest_wins_for_fetching_and_tag_is_kept_for_display() {
        let i = r(&format!("ubuntu:24.04@{D}"));
        assert_eq!(i.tag(), Some("24.04"));
        assert_eq!(i.reference_for_fetch(), D);
        assert_eq!(i.to_string(), format!("docker.io/library/ubuntu:24.04@{D}"));
        let j = r(&format!("ubuntu@{D}"));
        assert_eq!(j.tag(), None);
        assert_eq!(j.to_string(), format!("docker.io/library/ubuntu@{D}"));
    }

    #[test]
    fn malformed_references_are_rejected_with_a_reason() {
        assert_eq!("".parse::<ImageRef>(), Err(RefError::Empty));
        assert!(matches!(
            "Alpine".parse::<ImageRef>(),
            Err(RefError::Uppercase(_))
        ));
        assert!(matches!(
            "user/Img".parse::<ImageRef>(),
            Err(RefError::Uppercase(_))
        ));
        assert!(matches!(
            "alpine:".parse::<ImageRef>(),
            Err(RefError::BadTag(_))
        ));
        assert!(matches!(
            "alpine:-x".parse::<ImageRef>(),
            Err(RefError::BadTag(_))
        ));
        assert!(matches!(
            "alpine:a+b".parse::<ImageRef>(),
            Err(RefError::BadTag(_))
        ));
        assert!(matches!(
            "alpine@sha256:abc".parse::<ImageRef>(),
            Err(RefError::BadDigest(_))
        ));
        assert!(matches!(
            "my image".parse::<ImageRef>(),
            Err(RefError::Whitespace(_))
        ));
        assert!(matches!(
            "a//b".parse::<ImageRef>(),
            Err(RefError::BadRepository(_))
        ));
        assert!(matches!(
            "-a".parse::<ImageRef>(),
            Err(RefError::BadRepository(_))
        ));
        assert!(matches!(
            "a..b".parse::<ImageRef>(),
            Err(RefError::BadRepository(_))
        ));
        assert!(matches!(
            "host:abc/x".parse::<ImageRef>(),
            Err(RefError::BadRegistry(_))
        ));
        assert!("a__b/c-d.e---f".parse::<ImageRef>().is_ok());
        assert!(matches!(":tag".parse::<ImageRef>(), Err(RefError::Empty)));
        let long = "a".repeat(300);
        assert!(matches!(
            long.parse::<ImageRef>(),
            Err(RefError::TooLong(_))
        ));
    }

    #[test]
    fn python_cache_key_omits_docker_hub_registry() {
        let p: Platform = "linux/amd64".parse().unwrap();
        let want = &Digest::sha256(b"library/ubuntu:24.04_linux/amd64").hex()[..16].to_string();
        assert_eq!(&r("ubuntu:24.04").python_manifest_cache_key(&p), want);
        let want = &Digest::sha256(b"ghcr.io/a/b:1_linux/amd64").hex()[..16].to_string();
        assert_eq!(&r("ghcr.io/a/b:1").python_manifest_cache_key(&p), want);
    }
}
