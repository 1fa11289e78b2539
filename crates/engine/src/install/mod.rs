//! `install` and `reset`: make a container from an image reference (registry or cache), a
//! local archive or a URL. Every path builds in a staging directory and renames it into place
//! only when everything verified; errors and Ctrl-C leave the store as it was.

mod archive_files;
mod archive_image;
mod archive_stream;
mod builder;
mod docker_archive;
mod layer;
mod local;
mod manifest_cache;
mod oci_archive;
mod pipeline;
mod pull;
mod url;

use std::sync::atomic::AtomicBool;

use cd_image::{ImageConfig, ImageManifest, ImageRef, Platform};
use cd_registry::Repository;

pub use builder::ContainerBuilder;
pub use manifest_cache::ResolvedImage;
pub use pipeline::{apply_image, Fetcher};

use crate::cache::cache_lock;
use crate::error::EngineError;
use crate::lock::LockMode;
use crate::names::validate_name;
use crate::record::ContainerRecord;
use crate::report::Reporter;
use crate::source::InstallSource;
use crate::store::Store;

#[derive(Debug, Clone, Default)]
pub struct InstallOptions {
    /// `--name`; default: the image name or the archive's file name.
    pub name: Option<String>,
    /// `--architecture`; default: the host.
    pub architecture: Option<String>,
    pub allow_insecure: bool,
    /// Set by the CLI's Ctrl-C handler.
    pub cancel: Option<&'static AtomicBool>,
}

#[derive(Debug, Clone)]
pub struct InstallSummary {
    pub name: String,
    /// The image defines an Entrypoint, so `run` has something to run.
    pub has_entrypoint: bool,
}

/// The platform asked for with `--architecture`, or the host's.
pub fn wanted_platform(architecture: Option<&str>) -> Result<Platform, EngineError> {
    match architecture {
        None => Ok(Platform::host()),
        Some(a) => a.parse().map_err(|_| {
            EngineError::Other(format!(
                "unknown architecture '{a}'; use aarch64, arm, i686, riscv64, x86_64 or a platform such as linux/arm64"
            ))
        }),
    }
}

pub fn install(
    store: &Store,
    source: &str,
    opts: &InstallOptions,
    reporter: &dyn Reporter,
) -> Result<InstallSummary, EngineError> {
    let source = InstallSource::classify(source)?;
    let name = match opts.name.clone().or_else(|| source.default_name()) {
        Some(n) => n,
        None => {
            return Err(EngineError::Other(
                "cannot derive a container name from the source; give one with --name".to_string(),
            ))
        }
    };
    validate_name(&name)?;
    match &source {
        InstallSource::Image(reference) => install_image(store, reference, &name, opts, reporter),
        InstallSource::Path(path) => local::install_path(store, path, &name, opts, reporter),
        InstallSource::Url(url) => url::install_url(store, url, &name, opts, reporter),
    }
}

fn install_image(
    store: &Store,
    reference: &str,
    name: &str,
    opts: &InstallOptions,
    reporter: &dyn Reporter,
) -> Result<InstallSummary, EngineError> {
    let image: ImageRef = reference.parse().map_err(|e| {
        EngineError::Other(format!(
            "invalid image reference '{reference}': {e}; write it like ubuntu:24.04, user/image:tag or host:port/path:tag"
        ))
    })?;
    let wanted = wanted_platform(opts.architecture.as_deref())?;
    let builder = ContainerBuilder::create(store, name)?;
    let _cache = cache_lock(&store.paths, LockMode::Shared)?;
    let client = pull::client(opts.allow_insecure, opts.cancel)?;
    let cancel = opts.cancel.map(|c| c as &AtomicBool);
    reporter.info(&format!("Resolving {} for {wanted}", image.familiar_name()));
    let resolved = pull::resolve(&client, &store.paths, &image, &wanted, reporter, cancel)?;
    let repo = Repository::of(&image);
    apply_image(
        &builder,
        &store.paths,
        &resolved,
        Some((&client, &repo)),
        reporter,
        cancel,
    )?;
    let record = record_for(reference, &resolved);
    builder.finish(Some(&record))?;
    Ok(InstallSummary {
        name: name.to_string(),
        has_entrypoint: has_entrypoint(&resolved.config),
    })
}

/// The record an image install writes (`containers/<name>/manifest.json`).
pub fn record_for(image_ref: &str, image: &ResolvedImage) -> ContainerRecord {
    ContainerRecord {
        image_ref: image_ref.to_string(),
        arch: image
            .platform
            .arch_name()
            .map(str::to_string)
            .unwrap_or_else(|| image.platform.architecture.clone()),
        manifest: image.manifest_json.clone(),
        image_config: image.config_json.clone(),
        extra: Default::default(),
    }
}

pub fn has_entrypoint(config: &ImageConfig) -> bool {
    config
        .config
        .as_ref()
        .and_then(|c| c.entrypoint.as_ref())
        .is_some_and(|e| !e.is_empty())
}

/// Rebuild `name` from the image its record names: the recorded manifest and config, with
/// blobs from the cache and, for those missing, from the recorded reference's registry. The
/// old container stays until the new one is complete.
pub fn reset(
    store: &Store,
    name: &str,
    opts: &InstallOptions,
    reporter: &dyn Reporter,
) -> Result<InstallSummary, EngineError> {
    store.require(name)?;
    let no_image = || {
        EngineError::Other(format!(
            "container '{name}' was made from a plain rootfs archive (it has no manifest.json), \
             so there is no image to reset it from; reinstall it from its archive instead"
        ))
    };
    let record = store.record(name)?.ok_or_else(no_image)?;
    let manifest: ImageManifest =
        serde_json::from_value(record.manifest.clone()).map_err(|_| no_image())?;
    let config: ImageConfig =
        serde_json::from_value(record.image_config.clone()).map_err(|_| no_image())?;
    let resolved = ResolvedImage {
        manifest_json: record.manifest.clone(),
        manifest,
        platform: config.platform(),
        config_json: record.image_config.clone(),
        config,
    };
    let builder = ContainerBuilder::replace(store, name)?;
    let _cache = cache_lock(&store.paths, LockMode::Shared)?;
    let cancel = opts.cancel.map(|c| c as &AtomicBool);
    let image: Option<ImageRef> = record.image_ref.parse().ok();
    let client = match &image {
        Some(_) => Some(pull::client(opts.allow_insecure, opts.cancel)?),
        None => None,
    };
    let repo = image.as_ref().map(Repository::of);
    let fetcher = client.as_ref().zip(repo.as_ref());
    reporter.info(&format!("Resetting '{name}'"));
    apply_image(&builder, &store.paths, &resolved, fetcher, reporter, cancel)?;
    builder.finish(Some(&record))?;
    Ok(InstallSummary {
        name: name.to_string(),
        has_entrypoint: has_entrypoint(&resolved.config),
    })
}
