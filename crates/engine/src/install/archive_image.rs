//! Installing an image archive (OCI layout or docker-archive): read its files once, resolve
//! the image for the wanted platform, move the layers into the cache and hand over to the
//! registry install's pipeline, so whiteouts, diff_id checks, the record, `run` and `reset`
//! behave exactly as for a pulled image.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use cd_image::{ImageConfig, Platform};

use super::archive_files::ArchiveFiles;
use super::archive_stream::TarStream;
use super::builder::ContainerBuilder;
use super::manifest_cache::ResolvedImage;
use super::pipeline::apply_image;
use super::{docker_archive, has_entrypoint, oci_archive, record_for, InstallSummary};
use crate::cache::cache_lock;
use crate::error::EngineError;
use crate::lock::LockMode;
use crate::report::Reporter;
use crate::store::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Oci,
    Docker,
}

/// An image found in an archive, and the archive paths of its layers in order.
pub struct ArchiveImage {
    pub resolved: ResolvedImage,
    pub layer_files: Vec<String>,
    /// How the archive names the chosen image and the others for the same platform (an
    /// archive may hold several images; there is no way to ask for one but the first).
    pub chosen_label: String,
    pub also_for_platform: Vec<String>,
}

pub fn install(
    store: &Store,
    builder: ContainerBuilder,
    path: &Path,
    format: ImageFormat,
    wanted: &Platform,
    reporter: &dyn Reporter,
    cancel: Option<&AtomicBool>,
) -> Result<InstallSummary, EngineError> {
    // Shared: a concurrent install may use the same layers; `clear-cache` must wait.
    let _cache = cache_lock(&store.paths, LockMode::Shared)?;
    let size = std::fs::metadata(path).map_or(0, |m| m.len());
    let bar = reporter.progress("reading the image archive", size);
    let mut stream = TarStream::open(path, &*bar, cancel)?;
    let mut files = ArchiveFiles::read(
        &mut stream,
        &store.paths,
        format == ImageFormat::Oci,
        cancel,
    )?;
    bar.finish();
    let image = match format {
        ImageFormat::Oci => oci_archive::resolve(&files, wanted)?,
        ImageFormat::Docker => docker_archive::resolve(&files, wanted)?,
    };
    for layer in &image.layer_files {
        files.promote(layer)?;
    }
    // The rest of the archive (other platforms, documents) goes with the temp directory now.
    drop(files);
    let resolved = &image.resolved;
    if !image.also_for_platform.is_empty() {
        reporter.warn(&format!(
            "the archive holds {} images for {}; installing the first, {} (not {})",
            image.also_for_platform.len() + 1,
            resolved.platform,
            image.chosen_label,
            image.also_for_platform.join(", ")
        ));
    }
    reporter.info(&format!(
        "Installing the {} image for {} ({} layers)",
        match format {
            ImageFormat::Oci => "OCI",
            ImageFormat::Docker => "docker",
        },
        resolved.platform,
        resolved.manifest.layers.len()
    ));
    apply_image(&builder, &store.paths, resolved, None, reporter, cancel)?;
    // No registry reference: `reset` rebuilds from the cached layers only.
    let record = record_for("", resolved);
    let name = builder.name().to_string();
    builder.finish(Some(&record))?;
    Ok(InstallSummary {
        name,
        has_entrypoint: has_entrypoint(&resolved.config),
    })
}

/// The labels of the images other than `chosen` that have its platform.
pub fn same_platform_labels(
    platforms: &[Platform],
    labels: &[String],
    chosen: usize,
) -> Vec<String> {
    platforms
        .iter()
        .zip(labels)
        .enumerate()
        .filter(|(i, (p, _))| *i != chosen && **p == platforms[chosen])
        .map(|(_, (_, l))| l.clone())
        .collect()
}

/// The image among `platforms` that best fits `wanted`.
pub fn choose_platform(platforms: &[Platform], wanted: &Platform) -> Result<usize, EngineError> {
    wanted.select(platforms).ok_or_else(|| {
        let mut have: Vec<String> = platforms.iter().map(Platform::to_string).collect();
        have.dedup();
        let hint = platforms
            .first()
            .map(|p| p.arch_name().unwrap_or(&p.architecture).to_string())
            .unwrap_or_default();
        EngineError::Other(format!(
            "the archive has no image for {wanted} (it has {}); pass --architecture {hint} to install another one",
            have.join(", ")
        ))
    })
}

pub fn parse_config(bytes: &[u8]) -> Result<(serde_json::Value, ImageConfig), EngineError> {
    let err = |e: serde_json::Error| {
        EngineError::Other(format!(
            "the image config in the archive is unreadable: {e}"
        ))
    };
    let json: serde_json::Value = serde_json::from_slice(bytes).map_err(err)?;
    let config: ImageConfig = serde_json::from_value(json.clone()).map_err(err)?;
    Ok((json, config))
}
