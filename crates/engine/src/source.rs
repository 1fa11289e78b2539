//! What the user asked `install` to install from: an image reference, a local archive, a URL.

use std::path::PathBuf;

use crate::error::EngineError;
use crate::names::sanitize_name;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstallSource {
    /// A registry image reference, as typed.
    Image(String),
    /// A local archive (a tarball, an OCI archive or a docker-archive).
    Path(PathBuf),
    /// An http(s) URL of an archive.
    Url(String),
}

const ARCHIVE_SUFFIXES: &[&str] = &[
    ".tar", ".tgz", ".tbz", ".tbz2", ".txz", ".tzst", ".tlz", ".gz", ".bz2", ".xz", ".lzma",
    ".zst", ".zstd", ".oci", ".docker", ".rootfs",
];

impl InstallSource {
    /// `/`, `./`, `../` and `~` start a path; `http://` and `https://` a URL; anything else is
    /// an image reference (so `ubuntu` is never a file in the current directory).
    pub fn classify(raw: &str) -> Result<InstallSource, EngineError> {
        if raw.starts_with("http://") || raw.starts_with("https://") {
            return Ok(InstallSource::Url(raw.to_string()));
        }
        if let Some((scheme, _)) = raw.split_once("://") {
            return Err(EngineError::Other(format!(
                "unsupported URL scheme '{scheme}://'; only http:// and https:// can be downloaded"
            )));
        }
        if raw.starts_with('/') || raw.starts_with("./") || raw.starts_with("../") {
            return Ok(InstallSource::Path(PathBuf::from(raw)));
        }
        if raw == "~" || raw.starts_with("~/") {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default();
            return Ok(InstallSource::Path(
                home.join(raw.trim_start_matches('~').trim_start_matches('/')),
            ));
        }
        if raw.trim().is_empty() {
            return Err(EngineError::Other(
                "no image, path or URL given".to_string(),
            ));
        }
        Ok(InstallSource::Image(raw.to_string()))
    }

    /// The container name used when `--name` is not given.
    pub fn default_name(&self) -> Option<String> {
        match self {
            InstallSource::Image(r) => {
                let without_digest = r.split('@').next().unwrap_or(r);
                let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
                let repo = last.split(':').next().unwrap_or(last);
                sanitize_name(repo)
            }
            InstallSource::Path(p) => {
                sanitize_name(&strip_archive_suffixes(&p.file_name()?.to_string_lossy()))
            }
            InstallSource::Url(u) => {
                let path = u.split(['?', '#']).next().unwrap_or(u);
                let after_host = path.splitn(4, '/').nth(3).unwrap_or("");
                let last = after_host
                    .trim_end_matches('/')
                    .rsplit('/')
                    .next()
                    .unwrap_or("");
                sanitize_name(&strip_archive_suffixes(&percent_decode(last)))
            }
        }
    }
}

fn strip_archive_suffixes(name: &str) -> String {
    let mut name = name.to_string();
    loop {
        let lower = name.to_ascii_lowercase();
        match ARCHIVE_SUFFIXES
            .iter()
            .find(|s| lower.ends_with(*s) && lower.len() > s.len())
        {
            Some(s) => name.truncate(name.len() - s.len()),
            None => return name,
        }
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 3 <= bytes.len() {
            if let Ok(v) =
                u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or(""), 16)
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_urls_and_references_are_told_apart() {
        use InstallSource::*;
        assert_eq!(
            InstallSource::classify("ubuntu").unwrap(),
            Image("ubuntu".into())
        );
        assert_eq!(
            InstallSource::classify("./x.tar").unwrap(),
            Path("./x.tar".into())
        );
        assert_eq!(
            InstallSource::classify("../x.tar").unwrap(),
            Path("../x.tar".into())
        );
        assert_eq!(
            InstallSource::classify("/abs/x.tar").unwrap(),
            Path("/abs/x.tar".into())
        );
        assert_eq!(
            InstallSource::classify("https://h/x.tar").unwrap(),
            Url("https://h/x.tar".into())
        );
        assert_eq!(
            InstallSource::classify("x.tar").unwrap(),
            Image("x.tar".into())
        );
        assert!(InstallSource::classify("ftp://h/x").is_err());
        assert!(InstallSource::classify("").is_err());
    }

    #[test]
    fn default_names() {
        let name = |s: &str| InstallSource::classify(s).unwrap().default_name();
        assert_eq!(name("ubuntu:24.04").as_deref(), Some("ubuntu"));
        assert_eq!(name("ghcr.io/org/my-app:1.0").as_deref(), Some("my-app"));
        assert_eq!(
            name("localhost:5000/busybox@sha256:abc").as_deref(),
            Some("busybox")
        );
        assert_eq!(
            name("./alpine-rootfs.tar.gz").as_deref(),
            Some("alpine-rootfs")
        );
        assert_eq!(name("/x/myimage.oci.tar").as_deref(), Some("myimage"));
        assert_eq!(
            name("/x/ubuntu-24.04.tar.xz").as_deref(),
            Some("ubuntu-24.04")
        );
        assert_eq!(
            name("https://example.com/dl/rootfs.tar.xz?sig=1").as_deref(),
            Some("rootfs")
        );
        assert_eq!(
            name("https://example.com/a%20b.tgz").as_deref(),
            Some("a-b")
        );
        assert_eq!(name("https://example.com/").as_deref(), None);
    }
}
