//! Applying one image layer from a verified blob file: decompress, hash the uncompressed
//! stream against the config's `diff_id`, and hand the tar to the safe applier.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;

use cd_archive::Compression;
use cd_image::{Digest, Hasher, LayerCompression};
use cd_rootfs::{apply_tar, ApplyError, ApplyOptions, ApplyStats, Rootfs};

use crate::error::EngineError;
use crate::report::Progress;
use crate::watch::{is_cancelled, WatchedReader};

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
    let compression = match job.compression {
        LayerCompression::None => Compression::None,
        LayerCompression::Gzip => Compression::Gzip,
        LayerCompression::Zstd => Compression::Zstd,
    };
    let hasher = job
        .diff_id
        .map(Hasher::for_digest)
        .unwrap_or_else(|| Hasher::new(cd_image::DigestAlgorithm::Sha256));
    let opts = ApplyOptions {
        oci_whiteouts: true,
        ..ApplyOptions::default()
    };
    // Decompression and hashing run on a second core while this one creates the files; the
    // channel is bounded, so memory stays at a few chunks whatever the layer size.
    let (tx, rx) = mpsc::sync_channel::<io::Result<Vec<u8>>>(QUEUE_CHUNKS);
    let (stats, actual) = std::thread::scope(|s| {
        let decoder = s.spawn(move || decode_into(file, compression, hasher, progress, cancel, tx));
        let mut reader = ChannelReader {
            rx,
            current: Vec::new(),
            pos: 0,
        };
        let applied = apply_tar(root, &mut reader, &opts, &mut |_| {})
            .map_err(|e| apply_error(&job.label, e, cancel));
        // The tar parser stops at the end-of-archive marker; the digest covers the padding too.
        let drained = applied.and_then(|stats| {
            io::copy(&mut reader, &mut io::sink())
                .map(|_| stats)
                .map_err(|e| read_error(&job.label, e, cancel))
        });
        // Dropping the receiver stops the decoder early when the apply failed.
        drop(reader);
        let digest = decoder
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("decoder panicked")));
        (drained, digest)
    });
    let stats = stats?;
    let actual = actual.map_err(|e| read_error(&job.label, e, cancel))?;
    if let Some(expected) = job.diff_id {
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
    if e.is_storage_full() {
        return EngineError::Other(format!(
            "the disk is full while applying {label}; free some space and retry (nothing was installed)"
        ));
    }
    EngineError::Other(format!("cannot apply {label}: {e}"))
}

/// Chunks queued between the decoder and the applier (each up to [`CHUNK`] bytes).
const QUEUE_CHUNKS: usize = 8;
const CHUNK: usize = 256 * 1024;

/// Decompress `file` into `tx` chunk by chunk, hashing the uncompressed stream.
fn decode_into(
    file: File,
    compression: Compression,
    mut hasher: Hasher,
    progress: &dyn Progress,
    cancel: Option<&AtomicBool>,
    tx: mpsc::SyncSender<io::Result<Vec<u8>>>,
) -> io::Result<Digest> {
    let watched = WatchedReader::new(file, progress, cancel);
    let mut decoded = match cd_archive::decoder(watched, compression) {
        Ok(d) => d,
        Err(e) => {
            let err = io::Error::other(format!("cannot decompress: {e}"));
            let _ = tx.send(Err(io::Error::new(err.kind(), err.to_string())));
            return Err(err);
        }
    };
    loop {
        let mut buf = vec![0u8; CHUNK];
        let n = match read_full(&mut decoded, &mut buf) {
            Ok(n) => n,
            Err(e) => {
                let _ = tx.send(Err(io::Error::new(e.kind(), e.to_string())));
                return Err(e);
            }
        };
        if n == 0 {
            return Ok(hasher.finish());
        }
        buf.truncate(n);
        hasher.update(&buf);
        if tx.send(Ok(buf)).is_err() {
            // The applier stopped; its error is the one reported.
            return Err(io::Error::other("the applier stopped"));
        }
    }
}

/// Fill `buf` as far as the stream allows (fewer, larger chunks through the channel).
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Vec<u8>>>,
    current: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.current = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                // The decoder finished (or failed; its error arrived first).
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
