//! `oci_manifests/<key>.json`: a resolved single-platform image, kept so that installing a
//! cached image again (or `reset`) works with the registry gone. Same file as the published
//! Python tool: `{"manifest", "repo", "image_config", "platform"}` (see docs/store-format.md).

use std::path::PathBuf;

use cd_image::{ImageConfig, ImageManifest, ImageRef, Platform};
use serde_json::{json, Value};

use crate::atomic::write_atomic;
use crate::error::EngineError;
use crate::paths::StorePaths;

/// An image as resolved for one platform: what the record and the layer pipeline need.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// The single-platform manifest, as raw JSON (what the record stores).
    pub manifest_json: Value,
    pub manifest: ImageManifest,
    pub config_json: Value,
    pub config: ImageConfig,
    pub platform: Platform,
}

fn path_for(paths: &StorePaths, image: &ImageRef, platform: &Platform) -> PathBuf {
    paths.manifest_cache().join(format!(
        "{}.json",
        image.python_manifest_cache_key(platform)
    ))
}

pub fn save(
    paths: &StorePaths,
    image: &ImageRef,
    wanted: &Platform,
    resolved: &ResolvedImage,
) -> Result<(), EngineError> {
    let doc = json!({
        "manifest": resolved.manifest_json,
        "repo": image.repository(),
        "image_config": resolved.config_json,
        "platform": wanted.to_string(),
    });
    let mut bytes = serde_json::to_vec_pretty(&doc)
        .map_err(|e| EngineError::Other(format!("cannot encode the manifest cache: {e}")))?;
    bytes.push(b'\n');
    let dir = paths.manifest_cache();
    std::fs::create_dir_all(&dir)
        .map_err(|e| EngineError::io(format!("cannot create {}", dir.display()), e))?;
    write_atomic(&path_for(paths, image, wanted), &bytes, 0o644)
}

/// The cached resolution of `image` for `wanted`, if there is a readable one. Its blobs are
/// still verified against the manifest's digests and the config's diff_ids when used.
pub fn load(paths: &StorePaths, image: &ImageRef, wanted: &Platform) -> Option<ResolvedImage> {
    let bytes = std::fs::read(path_for(paths, image, wanted)).ok()?;
    let doc: Value = serde_json::from_slice(&bytes).ok()?;
    let manifest_json = doc.get("manifest")?.clone();
    let config_json = doc.get("image_config")?.clone();
    let manifest: ImageManifest = serde_json::from_value(manifest_json.clone()).ok()?;
    let config: ImageConfig = serde_json::from_value(config_json.clone()).ok()?;
    let platform = config.platform();
    Some(ResolvedImage {
        manifest_json,
        manifest,
        config_json,
        config,
        platform,
    })
}
