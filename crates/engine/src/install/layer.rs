//! Applying one image layer from a verified blob file: decompress, hash the uncompressed
//! stream against the config's `diff_id`, and hand the tar to the safe applier.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use cd_archive::Compression;
use cd_image::{Digest, Hasher, LayerCompression};
use cd_rootfs::{apply_tar, ApplyError, ApplyOptions, ApplyStats, Rootfs};

use crate::error::EngineError;
use crate::report::Progress;

/// What the applier needs to know about one layer.
pub struct LayerJob<'a> {
    /// `layer 2/5` — used in messages.
    pub label: String,
    pub blob: &'a Path,
    pub compression: LayerCompression,
    /// The uncompressed digest from the image config, when the config lists one.
    pub diff_id: Option<&'a Digest>,
}

/// Apply `job` to `root`. A digest mismatch of the uncompressed stream fails the install
/// (the applied files stay in the staging directory, which the caller throws away).
pub fn apply_layer(
    root: &Rootfs,
    job: &LayerJob<'_>,
    progress: &dyn Progress,
    cancel: Option<&AtomicBool>,
) -> Result<ApplyStats, EngineError> {
    let file = File::open(job.blob).map_err(|e| {
        EngineError::io(
            format!(
                "cannot open the cached {} {}",
                job.label,
                job.blob.display()
            ),
            e,
        )
    })?;
    let counted = WatchedReader {
        inner: file,
        done: 0,
        progress,
        cancel,
    };
    let compression = match job.compression {
        LayerCompression::None => Compression::None,
        LayerCompression::Gzip => Compression::Gzip,
        LayerCompression::Zstd => Compression::Zstd,
    };
    let decoded = cd_archive::decoder(counted, compression)
        .map_err(|e| EngineError::Other(format!("cannot decompress {}: {e}", job.label)))?;
    let mut hashed = HashingReader {
        inner: decoded,
        hasher: job
            .diff_id
            .map(Hasher::for_digest)
            .unwrap_or_else(|| Hasher::new(cd_image::DigestAlgorithm::Sha256)),
    };
    let opts = ApplyOptions {
        oci_whiteouts: true,
        ..ApplyOptions::default()
    };
    let stats = apply_tar(root, &mut hashed, &opts, &mut |_| {})
        .map_err(|e| apply_error(&job.label, e, cancel))?;
    // The tar parser stops at the end-of-archive marker; the digest covers the padding too.
    io::copy(&mut hashed, &mut io::sink()).map_err(|e| read_error(&job.label, e, cancel))?;
    if let Some(expected) = job.diff_id {
        let actual = hashed.hasher.finish();
        if &actual != expected {
            // A blob that fails its diff_id must not be reused by the next install.
            let _ = std::fs::remove_file(job.blob);
            return Err(EngineError::Other(format!(
                "{} does not match the image config (diff_id {expected}, content {actual}); \
                 the image is corrupt or the cache was altered: run 'chroot-distro clear-cache' and retry",
                job.label
            )));
        }
    }
    Ok(stats)
}

pub(crate) fn is_cancelled(cancel: Option<&AtomicBool>) -> bool {
    cancel.is_some_and(|c| c.load(Ordering::Relaxed))
}

fn read_error(label: &str, e: io::Error, cancel: Option<&AtomicBool>) -> EngineError {
    if is_cancelled(cancel) {
        return EngineError::Interrupted;
    }
    EngineError::Other(format!("cannot read {label}: {e}"))
}

fn apply_error(label: &str, e: ApplyError, cancel: Option<&AtomicBool>) -> EngineError {
    if is_cancelled(cancel) {
        return EngineError::Interrupted;
    }
    if e.io_error()
        .is_some_and(|io| io.kind() == io::ErrorKind::StorageFull)
    {
        return EngineError::Other(format!(
            "the disk is full while applying {label}; free some space and retry (nothing was installed)"
        ));
    }
    EngineError::Other(format!("cannot apply {label}: {e}"))
}

/// Counts compressed bytes for the progress bar and stops the read when cancelled.
struct WatchedReader<'a, R> {
    inner: R,
    done: u64,
    progress: &'a dyn Progress,
    cancel: Option<&'a AtomicBool>,
}

impl<R: Read> Read for WatchedReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if is_cancelled(self.cancel) {
            return Err(io::Error::other("interrupted"));
        }
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        self.progress.set_position(self.done);
        Ok(n)
    }
}

struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}
