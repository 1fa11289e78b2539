//! Resolving a reference to one platform's manifest and config, verified by digest.

use cd_image::{
    media_type, parse_manifest_any, Descriptor, Digest, Hasher, ImageConfig, ImageManifest,
    ImageRef, ManifestKind, Platform,
};

use crate::error::{RegistryError, Result};
use crate::transport::{header, read_small, transport_error, RegistryClient};

const MANIFEST_LIMIT: u64 = 4 << 20;
const CONFIG_LIMIT: u64 = 16 << 20;

/// A reference resolved for one platform: everything needed to pull and record it.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// Where the blobs come from.
    pub repo: Repository,
    /// The single-platform manifest's digest.
    pub manifest_digest: Digest,
    pub manifest_media_type: String,
    /// Exactly the bytes received (their digest is `manifest_digest`).
    pub manifest_bytes: Vec<u8>,
    pub manifest: ImageManifest,
    /// The index the manifest was chosen from, when the reference named one.
    pub index_digest: Option<Digest>,
    pub config_bytes: Vec<u8>,
    pub config: ImageConfig,
    /// The platform from the index entry, or from the config for a single-platform image.
    pub platform: Platform,
}

/// A repository on a registry API host: where blobs and manifests are requested.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Repository {
    /// `registry-1.docker.io`, `ghcr.io`, `127.0.0.1:5000`
    pub host: String,
    /// `library/alpine`
    pub name: String,
}

impl Repository {
    pub fn of(image: &ImageRef) -> Repository {
        Repository {
            host: image.registry_host().to_string(),
            name: image.repository().to_string(),
        }
    }
}

/// A manifest as fetched: bytes verified against the expected digest.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    pub digest: Digest,
    pub media_type: Option<String>,
    pub bytes: Vec<u8>,
    pub kind: ManifestKind,
}

impl RegistryClient {
    /// GET a manifest by tag or digest and verify it: against `reference` when it is a
    /// digest, else against `Docker-Content-Digest` when the registry sends one.
    pub fn fetch_manifest(
        &self,
        host: &str,
        repo: &str,
        reference: &str,
    ) -> Result<FetchedManifest> {
        let what = format!("manifest {repo}:{reference}");
        let path = format!("/v2/{repo}/manifests/{reference}");
        let accept = [("Accept", media_type::MANIFEST_ACCEPT.to_string())];
        let resp = self.request(host, repo, "GET", &path, &accept, &what)?;
        let status = resp.status().as_u16();
        if status == 404 {
            return Err(RegistryError::NotFound {
                registry: host.to_string(),
                what,
            });
        }
        if status != 200 {
            return Err(RegistryError::Protocol {
                host: host.to_string(),
                what,
                detail: format!("HTTP {status}"),
            });
        }
        let content_type = header(&resp, "content-type");
        let header_digest = header(&resp, "docker-content-digest");
        let bytes = read_small(resp, MANIFEST_LIMIT).map_err(|e| transport_error(host, e))?;
        let expected = match reference.parse::<Digest>() {
            Ok(d) => Some(d),
            // A header we cannot parse proves nothing either way; the body is still hashed.
            Err(_) => header_digest.and_then(|h| h.trim().parse::<Digest>().ok()),
        };
        let digest = match &expected {
            Some(e) => {
                let mut h = Hasher::for_digest(e);
                h.update(&bytes);
                let actual = h.finish();
                if &actual != e {
                    return Err(RegistryError::DigestMismatch {
                        what,
                        expected: e.clone(),
                        actual,
                    });
                }
                e.clone()
            }
            None => Digest::sha256(&bytes),
        };
        let kind = parse_manifest_any(&bytes, content_type.as_deref())
            .map_err(|source| RegistryError::Manifest { what, source })?;
        Ok(FetchedManifest {
            digest,
            media_type: content_type,
            bytes,
            kind,
        })
    }

    /// Resolve `image` for `platform`: the manifest (through the index if there is one) and
    /// the config, every piece verified by digest.
    pub fn resolve(&self, image: &ImageRef, platform: &Platform) -> Result<Resolved> {
        let host = image.registry_host();
        let repo = image.repository();
        let top = self.fetch_manifest(host, repo, &image.reference_for_fetch())?;
        let (index_digest, chosen, desc_platform) = match top.kind {
            ManifestKind::Image(_) => (None, top, None),
            ManifestKind::Index(ref index) => {
                let candidates: Vec<&Descriptor> = index
                    .manifests
                    .iter()
                    .filter(|d| d.platform.is_some())
                    .collect();
                let plats = candidates.iter().filter_map(|d| d.platform.as_ref());
                let Some(i) = platform.select(plats) else {
                    let mut available: Vec<String> = candidates
                        .iter()
                        .filter_map(|d| d.platform.as_ref())
                        .filter(|p| p.os != "unknown")
                        .map(Platform::to_string)
                        .collect();
                    available.dedup();
                    return Err(RegistryError::NoMatchingPlatform {
                        image: image.to_string(),
                        wanted: platform.to_string(),
                        available,
                    });
                };
                let desc = candidates[i];
                let child = self.fetch_manifest(host, repo, &desc.digest.to_string())?;
                if matches!(child.kind, ManifestKind::Index(_)) {
                    return Err(RegistryError::Protocol {
                        host: host.to_string(),
                        what: format!("manifest {}", desc.digest),
                        detail: "an index nested in an index is not supported".to_string(),
                    });
                }
                (Some(top.digest), child, desc.platform.clone())
            }
        };
        let ManifestKind::Image(manifest) = chosen.kind else {
            unreachable!("nested indexes were rejected above");
        };
        let config_bytes = self.fetch_small_blob(host, repo, &manifest.config, CONFIG_LIMIT)?;
        let config: ImageConfig =
            serde_json::from_slice(&config_bytes).map_err(|e| RegistryError::Protocol {
                host: host.to_string(),
                what: format!("config {}", manifest.config.digest),
                detail: format!("not an image config: {e}"),
            })?;
        let platform = desc_platform.unwrap_or_else(|| config.platform());
        let manifest_media_type = manifest
            .media_type
            .clone()
            .or(chosen
                .media_type
                .map(|m| m.split(';').next().unwrap_or("").trim().to_string()))
            .unwrap_or_else(|| media_type::OCI_MANIFEST.to_string());
        Ok(Resolved {
            repo: Repository::of(image),
            manifest_digest: chosen.digest,
            manifest_media_type,
            manifest_bytes: chosen.bytes,
            manifest,
            index_digest,
            config_bytes,
            config,
            platform,
        })
    }

    /// A blob small enough for memory (configs), verified by size and digest.
    pub fn fetch_small_blob(
        &self,
        host: &str,
        repo: &str,
        desc: &Descriptor,
        limit: u64,
    ) -> Result<Vec<u8>> {
        let what = format!("blob {}", desc.digest);
        let path = format!("/v2/{repo}/blobs/{}", desc.digest);
        let resp = self.request(host, repo, "GET", &path, &[], &what)?;
        let status = resp.status().as_u16();
        if status == 404 {
            return Err(RegistryError::NotFound {
                registry: host.to_string(),
                what,
            });
        }
        if status != 200 {
            return Err(RegistryError::Protocol {
                host: host.to_string(),
                what,
                detail: format!("HTTP {status}"),
            });
        }
        if desc.size > limit {
            return Err(RegistryError::Protocol {
                host: host.to_string(),
                what,
                detail: format!("{} bytes is more than the {limit} allowed", desc.size),
            });
        }
        // ureq allows a body of exactly the limit and fails on one byte more.
        let bytes = read_small(resp, desc.size).map_err(|e| match e {
            ureq::Error::BodyExceedsLimit(_) => RegistryError::SizeMismatch {
                what: what.clone(),
                expected: desc.size,
                actual: desc.size + 1,
            },
            e => transport_error(host, e),
        })?;
        if bytes.len() as u64 != desc.size {
            return Err(RegistryError::SizeMismatch {
                what,
                expected: desc.size,
                actual: bytes.len() as u64,
            });
        }
        let mut h = Hasher::for_digest(&desc.digest);
        h.update(&bytes);
        let actual = h.finish();
        if actual != desc.digest {
            return Err(RegistryError::DigestMismatch {
                what,
                expected: desc.digest.clone(),
                actual,
            });
        }
        Ok(bytes)
    }
}
