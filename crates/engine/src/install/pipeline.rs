//! The layer pipeline: download the blobs that are not cached (in parallel) while applying
//! the layers in order, each as soon as it and every layer before it is verified.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;

use cd_image::{Descriptor, LayerCompression};
use cd_registry::{RegistryClient, RegistryError, Repository};

use super::builder::ContainerBuilder;
use super::layer::{apply_layer, LayerJob};
use super::manifest_cache::ResolvedImage;
use crate::error::EngineError;
use crate::paths::StorePaths;
use crate::report::{Progress, Reporter};
use crate::watch::is_cancelled;

/// Where missing blobs come from; `None` means every blob must already be cached.
pub type Fetcher<'a> = Option<(&'a RegistryClient, &'a Repository)>;

pub fn apply_image(
    builder: &ContainerBuilder,
    paths: &StorePaths,
    image: &ResolvedImage,
    fetcher: Fetcher<'_>,
    reporter: &dyn Reporter,
    cancel: Option<&AtomicBool>,
) -> Result<(), EngineError> {
    let layers = &image.manifest.layers;
    let n = layers.len();
    let compressions = layers
        .iter()
        .map(|d| LayerCompression::from_media_type(&d.media_type))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            EngineError::Other(format!(
                "{e}; this image cannot be installed (only tar, tar+gzip and tar+zstd layers are)"
            ))
        })?;
    let diff_ids = &image.config.rootfs.diff_ids;
    if !diff_ids.is_empty() && diff_ids.len() != n {
        return Err(EngineError::Other(format!(
            "the image is inconsistent: its config lists {} layer digests for {n} layers",
            diff_ids.len()
        )));
    }
    let cache = paths.layer_cache();
    std::fs::create_dir_all(&cache)
        .map_err(|e| EngineError::io(format!("cannot create {}", cache.display()), e))?;
    let blob_path = |d: &Descriptor| -> PathBuf { cache.join(d.digest.cache_file_name()) };
    let missing: Vec<usize> = (0..n)
        .filter(|&i| !blob_path(&layers[i]).is_file())
        .collect();
    if !missing.is_empty() && fetcher.is_none() {
        return Err(EngineError::Other(format!(
            "layer {} of the image ({}) is not in the cache and there is no registry to fetch it from; \
             reinstall from a registry or an archive",
            missing[0] + 1,
            layers[missing[0]].digest
        )));
    }

    let total_bytes: u64 = layers.iter().map(|d| d.size).sum();
    let total = reporter.progress(&format!("{n} layers"), total_bytes);
    let bars: Vec<Box<dyn Progress>> = layers
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let bar = reporter.progress(&layer_label(i, n, d), d.size);
            if !missing.contains(&i) {
                bar.set_message("cached");
            }
            bar
        })
        .collect();
    if !missing.is_empty() {
        let bytes: u64 = missing.iter().map(|&i| layers[i].size).sum();
        reporter.info(&format!(
            "Downloading {} of {n} layers ({})",
            missing.len(),
            crate::human_bytes(bytes)
        ));
    }

    let (tx, rx) = mpsc::channel::<usize>();
    let descs: Vec<Descriptor> = missing.iter().map(|&i| layers[i].clone()).collect();
    let workers = cd_registry::download_workers_from_env();

    std::thread::scope(|s| {
        let download = s.spawn(|| -> Result<(), RegistryError> {
            // Owned by this thread, so the applier's `recv` ends when the downloads do.
            let tx = tx;
            let Some((client, repo)) = fetcher else {
                return Ok(());
            };
            if descs.is_empty() {
                return Ok(());
            }
            client.fetch_blobs_parallel(
                repo,
                &descs,
                blob_path,
                workers,
                &|k, done, _| bars[missing[k]].set_position(done),
                // A failed send means the applier stopped: cancel the remaining downloads.
                &|k| {
                    if tx.send(missing[k]).is_err() {
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    }
                },
            )
        });

        let applied = apply_in_order(
            builder,
            image,
            &compressions,
            &missing,
            &rx,
            &bars,
            |i| blob_path(&layers[i]),
            &*total,
            cancel,
        );
        // Dropped here so that a stopped applier stops the downloads too (see `on_ready`).
        drop(rx);
        let downloaded = download.join().unwrap_or(Err(RegistryError::Cancelled));
        total.finish();
        match (applied, downloaded) {
            (Ok(()), Ok(())) => Ok(()),
            // The applier stopped because a download failed: that is the cause to report.
            (Err(Stop::DownloadEnded), Err(e)) => Err(registry_error(e, cancel)),
            (Err(Stop::DownloadEnded), Ok(())) => Err(EngineError::Other(
                "the download stopped early without an error; retry".to_string(),
            )),
            (Err(Stop::Failed(e)), _) => Err(e),
            (Ok(()), Err(e)) => Err(registry_error(e, cancel)),
        }
    })
}

enum Stop {
    DownloadEnded,
    Failed(EngineError),
}

#[allow(clippy::too_many_arguments)]
fn apply_in_order(
    builder: &ContainerBuilder,
    image: &ResolvedImage,
    compressions: &[LayerCompression],
    missing: &[usize],
    ready_rx: &mpsc::Receiver<usize>,
    bars: &[Box<dyn Progress>],
    blob_path: impl Fn(usize) -> PathBuf,
    total: &dyn Progress,
    cancel: Option<&AtomicBool>,
) -> Result<(), Stop> {
    let layers = &image.manifest.layers;
    let n = layers.len();
    let mut ready: Vec<bool> = (0..n).map(|i| !missing.contains(&i)).collect();
    let mut applied_bytes = 0u64;
    for i in 0..n {
        while !ready[i] {
            if is_cancelled(cancel) {
                return Err(Stop::Failed(EngineError::Interrupted));
            }
            match ready_rx.recv() {
                Ok(j) => ready[j] = true,
                Err(_) => return Err(Stop::DownloadEnded),
            }
        }
        let blob = blob_path(i);
        let job = LayerJob {
            label: format!("layer {}/{n} ({})", i + 1, layers[i].digest),
            blob: &blob,
            compression: compressions[i],
            diff_id: image.config.rootfs.diff_ids.get(i),
        };
        bars[i].set_message("applying");
        bars[i].set_position(0);
        apply_layer(builder.rootfs(), &job, &*bars[i], cancel).map_err(Stop::Failed)?;
        bars[i].set_message("done");
        bars[i].finish();
        applied_bytes += layers[i].size;
        total.set_position(applied_bytes);
    }
    Ok(())
}

fn layer_label(i: usize, n: usize, d: &Descriptor) -> String {
    let hex = d.digest.hex();
    format!("layer {}/{n} {}", i + 1, &hex[..hex.len().min(12)])
}

/// Registry errors become engine errors with the same one-line message.
pub fn registry_error(e: RegistryError, cancel: Option<&AtomicBool>) -> EngineError {
    if matches!(e, RegistryError::Cancelled) && is_cancelled(cancel) {
        return EngineError::Interrupted;
    }
    EngineError::Other(e.to_string())
}
