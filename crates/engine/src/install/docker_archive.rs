//! A docker-archive (`docker save` before Docker 25, `skopeo copy docker-archive:`):
//! `manifest.json` lists each image's config file and layer tars by archive path. Nothing is
//! named by digest, so an OCI manifest is made up from what was read: the layers' content
//! digests and the config's `diff_ids`, which the layer pipeline checks every layer against.

use cd_archive::Compression;
use cd_image::{media_type, Descriptor, Digest, Platform};
use serde::Deserialize;
use serde_json::json;

use super::archive_files::ArchiveFiles;
use super::archive_image::{choose_platform, parse_config, same_platform_labels, ArchiveImage};
use super::manifest_cache::ResolvedImage;
use crate::error::EngineError;

#[derive(Debug, Deserialize)]
struct SavedImage {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

pub fn resolve(files: &ArchiveFiles, wanted: &Platform) -> Result<ArchiveImage, EngineError> {
    let listing = files
        .document("manifest.json")?
        .ok_or_else(|| EngineError::Other("the docker archive has no manifest.json".to_string()))?;
    let images: Vec<SavedImage> = serde_json::from_slice(&listing).map_err(|e| {
        EngineError::Other(format!(
            "the docker archive's manifest.json is unreadable: {e}"
        ))
    })?;
    let mut configs = Vec::new();
    for image in &images {
        let bytes = files.document(&image.config)?.ok_or_else(|| {
            EngineError::Other(format!(
                "the docker archive lacks the image config '{}'; it is incomplete",
                image.config
            ))
        })?;
        let (json, config) = parse_config(&bytes)?;
        configs.push((bytes, json, config));
    }
    if images.is_empty() {
        return Err(EngineError::Other(
            "the docker archive's manifest.json lists no image".to_string(),
        ));
    }
    let platforms: Vec<Platform> = configs.iter().map(|(_, _, c)| c.platform()).collect();
    let i = choose_platform(&platforms, wanted)?;
    let labels: Vec<String> = images
        .iter()
        .enumerate()
        .map(|(n, img)| match img.repo_tags.as_deref() {
            Some([tag, ..]) => tag.clone(),
            _ => format!("image {}", n + 1),
        })
        .collect();
    let also_for_platform = same_platform_labels(&platforms, &labels, i);
    let image = &images[i];
    let (config_bytes, config_json, config) = configs.swap_remove(i);
    // Without diff_ids nothing would tie the layer files to the image: refuse rather than
    // install unverified content.
    if config.rootfs.diff_ids.len() != image.layers.len() {
        return Err(EngineError::Other(format!(
            "the docker archive is inconsistent: its config lists {} layer digests for {} layers",
            config.rootfs.diff_ids.len(),
            image.layers.len()
        )));
    }

    let mut layers = Vec::new();
    for (n, path) in image.layers.iter().enumerate() {
        let stored = files.get(path).ok_or_else(|| {
            EngineError::Other(format!(
                "the docker archive lacks layer {} ('{path}'); it is incomplete, copy or save it again",
                n + 1
            ))
        })?;
        let media = layer_media_type(&files.head(path, 16)?).ok_or_else(|| {
            EngineError::Other(format!(
                "layer {} of the docker archive ('{path}') is compressed in a format image layers do not use",
                n + 1
            ))
        })?;
        layers.push(Descriptor::new(media, stored.digest.clone(), stored.size));
    }
    let config_desc = Descriptor::new(
        media_type::DOCKER_CONFIG,
        Digest::sha256(&config_bytes),
        config_bytes.len() as u64,
    );
    let manifest_json = json!({
        "schemaVersion": 2,
        "mediaType": media_type::DOCKER_MANIFEST,
        "config": config_desc,
        "layers": layers,
    });
    let manifest = serde_json::from_value(manifest_json.clone())
        .map_err(|e| EngineError::Other(format!("cannot describe the docker image: {e}")))?;
    Ok(ArchiveImage {
        resolved: ResolvedImage {
            manifest_json,
            manifest,
            config_json,
            platform: config.platform(),
            config,
        },
        layer_files: image.layers.clone(),
        chosen_label: labels[i].clone(),
        also_for_platform,
    })
}

/// Layer tars are usually stored uncompressed, but a saved image may keep them as pulled.
fn layer_media_type(head: &[u8]) -> Option<&'static str> {
    match Compression::sniff(head) {
        Compression::None => Some(media_type::DOCKER_LAYER_TAR),
        Compression::Gzip => Some(media_type::DOCKER_LAYER_TAR_GZIP),
        Compression::Zstd => Some(media_type::OCI_LAYER_TAR_ZSTD),
        _ => None,
    }
}
