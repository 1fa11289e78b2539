//! `diff CONTAINER`: the live rootfs against the image rebuilt from its cached layers.
//!
//! Layers are streamed from the cache and decompressed on up to one thread per core (each into
//! its own metadata list, nothing written to disk), then stacked in order into one index.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use cd_rootfs::diff::{diff_rootfs, Change, ImageIndex, LayerEntries};

use crate::error::EngineError;
use crate::store::Store;

pub fn diff(store: &Store, name: &str) -> Result<Vec<Change>, EngineError> {
    store.require(name)?;
    let record = store.record(name)?.ok_or_else(|| no_image(name))?;
    let layers = record
        .manifest
        .get("layers")
        .and_then(|l| l.as_array())
        .filter(|l| !l.is_empty())
        .ok_or_else(|| no_image(name))?;
    let mut blobs: Vec<PathBuf> = Vec::with_capacity(layers.len());
    for layer in layers {
        let digest = layer.get("digest").and_then(|d| d.as_str()).unwrap_or("");
        let hex = digest
            .strip_prefix("sha256:")
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| {
                EngineError::Other(format!(
                    "container '{name}' records a layer with an unusable digest '{digest}'"
                ))
            })?;
        let path = store.paths.layer_cache().join(format!("sha256_{hex}"));
        if !path.is_file() {
            return Err(EngineError::Other(format!(
                "layer {digest} of '{name}' is no longer cached (was 'clear-cache' run?); \
                 diff needs the image's layers: reinstall the image to fetch them again"
            )));
        }
        blobs.push(path);
    }

    let read_layer = |path: &PathBuf| -> Result<LayerEntries, EngineError> {
        let file = std::fs::File::open(path)
            .map_err(|e| EngineError::io(format!("cannot open {}", path.display()), e))?;
        let (_, reader) = cd_archive::sniffing_decoder(file)
            .map_err(|e| EngineError::io(format!("cannot read {}", path.display()), e))?;
        LayerEntries::read(reader)
            .map_err(|e| EngineError::Other(format!("{}: {e}", path.display())))
    };
    let index_dir = store.paths.cache.join("diff_index");
    let read = |path: &PathBuf| -> Result<LayerEntries, EngineError> {
        // A layer read once is kept as a compact metadata index: decompressing hundreds of
        // megabytes again is what makes a second diff slow.
        let index_file = index_dir.join(path.file_name().unwrap_or_default());
        if let Some(layer) = std::fs::read(&index_file)
            .ok()
            .and_then(|b| LayerEntries::decode(&b))
        {
            return Ok(layer);
        }
        let layer = read_layer(path)?;
        if std::fs::create_dir_all(&index_dir).is_ok() {
            let _ = crate::atomic::write_atomic(&index_file, &layer.encode(), 0o644);
        }
        Ok(layer)
    };
    let results: Vec<Mutex<Option<Result<LayerEntries, EngineError>>>> =
        blobs.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(blobs.len());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(path) = blobs.get(i) else { break };
                let res = read(path);
                if let Ok(mut slot) = results[i].lock() {
                    *slot = Some(res);
                }
            });
        }
    });
    let mut index = ImageIndex::new();
    for slot in results {
        let layer =
            slot.into_inner().ok().flatten().ok_or_else(|| {
                EngineError::Other("a layer reader stopped unexpectedly".into())
            })??;
        index.apply(layer);
    }
    diff_rootfs(&store.paths.rootfs(name), &index)
        .map_err(|e| EngineError::Other(format!("diff of '{name}' failed: {e}")))
}

fn no_image(name: &str) -> EngineError {
    EngineError::Other(format!(
        "container '{name}' was not installed from an image (no layers recorded in its \
         manifest.json); diff compares with an image's layers"
    ))
}
