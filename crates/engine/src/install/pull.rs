//! Resolving an image reference on its registry (or, when the registry cannot be reached,
//! from the manifest cache) for the wanted platform.

use std::sync::atomic::AtomicBool;

use cd_image::{ImageRef, Platform};
use cd_registry::{ClientOptions, RegistryClient, RegistryError};

use super::manifest_cache::{self, ResolvedImage};
use super::pipeline::registry_error;
use crate::error::EngineError;
use crate::paths::StorePaths;
use crate::report::Reporter;

pub fn client(
    allow_insecure: bool,
    cancel: Option<&'static AtomicBool>,
) -> Result<RegistryClient, EngineError> {
    let opts = ClientOptions::from_env().map_err(|e| EngineError::Other(e.to_string()))?;
    Ok(RegistryClient::new(ClientOptions {
        allow_insecure,
        cancel,
        ..opts
    }))
}

pub fn resolve(
    client: &RegistryClient,
    paths: &StorePaths,
    image: &ImageRef,
    wanted: &Platform,
    reporter: &dyn Reporter,
    cancel: Option<&AtomicBool>,
) -> Result<ResolvedImage, EngineError> {
    match client.resolve(image, wanted) {
        Ok(r) => {
            if !wanted.matches(&r.platform) {
                return Err(EngineError::Other(format!(
                    "{} is an image for {}, not {wanted}; pick another tag or pass --architecture {}",
                    image.familiar_name(),
                    r.platform,
                    r.platform.arch_name().unwrap_or(&r.platform.architecture)
                )));
            }
            let parse = |what: &str, bytes: &[u8]| {
                serde_json::from_slice(bytes).map_err(|e| {
                    EngineError::Other(format!("the registry sent an unreadable {what}: {e}"))
                })
            };
            let resolved = ResolvedImage {
                manifest_json: parse("manifest", &r.manifest_bytes)?,
                manifest: r.manifest,
                config_json: parse("image config", &r.config_bytes)?,
                config: r.config,
                platform: r.platform,
            };
            if let Err(e) = manifest_cache::save(paths, image, wanted, &resolved) {
                reporter.warn(&format!("cannot cache the manifest: {e}"));
            }
            Ok(resolved)
        }
        Err(e) if can_fall_back(&e) => match manifest_cache::load(paths, image, wanted) {
            Some(cached) => {
                reporter.warn(&format!("{e}"));
                reporter.info("Using the cached manifest");
                Ok(cached)
            }
            None => Err(registry_error(e, cancel)),
        },
        Err(e) => Err(registry_error(e, cancel)),
    }
}

/// The registry is out of reach (not: it answered that the image is missing or forbidden).
fn can_fall_back(e: &RegistryError) -> bool {
    matches!(
        e,
        RegistryError::Unreachable { .. }
            | RegistryError::Tls { .. }
            | RegistryError::Server { .. }
            | RegistryError::RateLimited { .. }
    )
}
