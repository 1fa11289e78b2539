//! An OCI image layout read from a tar (`skopeo copy oci-archive:`, `docker save` since
//! Docker 25): `index.json` names manifests or nested indexes by digest; the one for the wanted
//! platform is picked, and every blob used is checked against the digest that names it.

use cd_image::{parse_manifest_any, Descriptor, Digest, ManifestKind, Platform};

use super::archive_files::{blob_path, ArchiveFiles};
use super::archive_image::{choose_platform, parse_config, same_platform_labels, ArchiveImage};
use super::manifest_cache::ResolvedImage;
use crate::error::EngineError;

/// How deep indexes may nest (`index.json` -> multi-platform index -> manifest is 2).
const MAX_DEPTH: usize = 4;

struct Candidate {
    manifest_json: Vec<u8>,
    platform: Platform,
    /// Its `org.opencontainers.image.ref.name` (or its index's), else a short digest.
    label: String,
}

const REF_NAME: &str = "org.opencontainers.image.ref.name";

pub fn resolve(files: &ArchiveFiles, wanted: &Platform) -> Result<ArchiveImage, EngineError> {
    let index = files.document("index.json")?.ok_or_else(|| {
        EngineError::Other(
            "the OCI archive has no index.json; it is incomplete, copy or download it again"
                .to_string(),
        )
    })?;
    let index = match parse_manifest_any(&index, None) {
        Ok(ManifestKind::Index(index)) => index,
        Ok(ManifestKind::Image(_)) => return Err(EngineError::Other(
            "the OCI archive's index.json is a manifest, not an index; the archive is malformed"
                .to_string(),
        )),
        Err(e) => {
            return Err(EngineError::Other(format!(
                "the OCI archive's index.json is unreadable: {e}"
            )))
        }
    };
    let mut candidates = Vec::new();
    collect(files, &index.manifests, 0, None, &mut candidates)?;
    if candidates.is_empty() {
        return Err(EngineError::Other(
            "the OCI archive holds no image manifest; it is incomplete or not an image".to_string(),
        ));
    }
    let platforms: Vec<Platform> = candidates.iter().map(|c| c.platform.clone()).collect();
    let labels: Vec<String> = candidates.iter().map(|c| c.label.clone()).collect();
    let index = choose_platform(&platforms, wanted)?;
    let also_for_platform = same_platform_labels(&platforms, &labels, index);
    let chosen = &candidates[index];

    let manifest_json: serde_json::Value = serde_json::from_slice(&chosen.manifest_json)
        .map_err(|e| EngineError::Other(format!("the image manifest is unreadable: {e}")))?;
    let manifest = match parse_manifest_any(&chosen.manifest_json, None) {
        Ok(ManifestKind::Image(m)) => m,
        _ => {
            return Err(EngineError::Other(
                "the image manifest is unreadable".to_string(),
            ))
        }
    };
    let config_bytes = verified_blob(files, &manifest.config.digest)?.ok_or_else(|| {
        EngineError::Other(format!(
            "the OCI archive lacks the image config {}; it is incomplete",
            manifest.config.digest
        ))
    })?;
    let (config_json, config) = parse_config(&config_bytes)?;
    let mut layer_files = Vec::new();
    for (i, layer) in manifest.layers.iter().enumerate() {
        let path = blob_path(&layer.digest);
        check_blob(files, &layer.digest)?.ok_or_else(|| {
            EngineError::Other(format!(
                "the OCI archive lacks layer {} ({}); it is incomplete, copy or download it again",
                i + 1,
                layer.digest
            ))
        })?;
        layer_files.push(path);
    }
    let platform = if config.architecture.is_empty() {
        chosen.platform.clone()
    } else {
        config.platform()
    };
    Ok(ArchiveImage {
        resolved: ResolvedImage {
            manifest_json,
            manifest,
            config_json,
            config,
            platform,
        },
        layer_files,
        chosen_label: chosen.label.clone(),
        also_for_platform,
    })
}

/// Every image manifest reachable from `descriptors` whose blob is in the archive (a copy of
/// one platform of a multi-platform image keeps the index but not the other manifests).
fn collect(
    files: &ArchiveFiles,
    descriptors: &[Descriptor],
    depth: usize,
    parent_label: Option<&str>,
    out: &mut Vec<Candidate>,
) -> Result<(), EngineError> {
    for d in descriptors {
        let label = d
            .annotations
            .get(REF_NAME)
            .map(String::as_str)
            .or(parent_label);
        let Some(bytes) = verified_blob(files, &d.digest)? else {
            continue;
        };
        let media_type = Some(d.media_type.as_str()).filter(|t| !t.is_empty());
        match parse_manifest_any(&bytes, media_type) {
            Ok(ManifestKind::Index(index)) if depth < MAX_DEPTH => {
                collect(files, &index.manifests, depth + 1, label, out)?;
            }
            Ok(ManifestKind::Image(m)) => {
                let platform = match &d.platform {
                    Some(p) => p.clone(),
                    None => match verified_blob(files, &m.config.digest)? {
                        Some(c) => parse_config(&c)?.1.platform(),
                        None => continue,
                    },
                };
                out.push(Candidate {
                    manifest_json: bytes,
                    platform,
                    label: label
                        .map_or_else(|| format!("{:.19}", d.digest.to_string()), str::to_string),
                });
            }
            // Artifacts (signatures, attestations) and anything else: not an installable image.
            _ => {}
        }
    }
    Ok(())
}

/// The blob `digest`, if the archive has it; an error when its content has another digest.
fn verified_blob(files: &ArchiveFiles, digest: &Digest) -> Result<Option<Vec<u8>>, EngineError> {
    if check_blob(files, digest)?.is_none() {
        return Ok(None);
    }
    files.document(&blob_path(digest))
}

fn check_blob(files: &ArchiveFiles, digest: &Digest) -> Result<Option<()>, EngineError> {
    let Some(stored) = files.get(&blob_path(digest)) else {
        return Ok(None);
    };
    if &stored.digest != digest {
        return Err(EngineError::Other(format!(
            "blob {digest} in the OCI archive is corrupt (its content hashes to {}); copy or download the archive again",
            stored.digest
        )));
    }
    Ok(Some(()))
}
