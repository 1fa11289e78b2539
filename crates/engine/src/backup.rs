//! `backup`: a container as one (compressed) tar stream, to a new file or to a pipe.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use cd_rootfs::backup::{write_backup, BackupEvent, BackupStats};

use crate::backup_codec::{encoder, BackupCompression};
use crate::error::{EngineError, IoContext};
use crate::report::Reporter;
use crate::store::Store;

/// Where the archive goes.
pub enum BackupOutput {
    /// A new file: never overwritten, removed again if the backup fails.
    File(PathBuf),
    /// An already open stream (stdout); the caller has checked it is not a terminal.
    Stream(Box<dyn Write + Send>),
}

pub struct BackupRequest {
    pub name: String,
    pub output: BackupOutput,
    /// `-c`: overrides the file extension. Streams default to no compression.
    pub compression: Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct BackupSummary {
    pub stats: BackupStats,
    pub compression: BackupCompression,
}

pub fn backup(
    store: &Store,
    req: BackupRequest,
    reporter: &dyn Reporter,
) -> Result<BackupSummary, EngineError> {
    store.require(&req.name)?;
    let _guard = store.lock(&req.name)?;
    let compression = match (&req.compression, &req.output) {
        (Some(name), _) => BackupCompression::from_name(name).ok_or_else(|| {
            EngineError::Other(format!(
                "unknown compression '{name}'; use gzip, bzip2, xz, zstd or none"
            ))
        })?,
        (None, BackupOutput::File(path)) => {
            BackupCompression::from_extension(path).ok_or_else(|| {
                EngineError::Other(format!(
                    "cannot tell the compression from '{}'; name it .tar, .tar.gz, .tgz, \
                     .tar.bz2, .tar.xz or .tar.zst, or pass -c",
                    path.display()
                ))
            })?
        }
        (None, BackupOutput::Stream(_)) => BackupCompression::None,
    };
    let manifest_path = store.paths.record(&req.name);
    let manifest = match std::fs::read(&manifest_path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(EngineError::io(
                format!("cannot read {}", manifest_path.display()),
                e,
            ))
        }
    };
    let rootfs = store.paths.rootfs(&req.name);

    match req.output {
        BackupOutput::File(path) => {
            // create_new: an existing file (or a symlink planted at the name) is never replaced.
            let file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path)
                .map_err(|e| {
                    if e.kind() == std::io::ErrorKind::AlreadyExists {
                        EngineError::Other(format!(
                            "'{}' already exists; backup never overwrites, pick another name",
                            path.display()
                        ))
                    } else {
                        EngineError::io(format!("cannot create {}", path.display()), e)
                    }
                })?;
            let result = write_to(
                &req.name,
                &rootfs,
                manifest.as_deref(),
                BufWriter::with_capacity(1 << 20, file),
                compression,
                reporter,
            )
            .and_then(|stats| {
                File::open(&path)
                    .and_then(|f| f.sync_all())
                    .context(|| format!("cannot write {}", path.display()))?;
                Ok(stats)
            });
            if result.is_err() {
                let _ = std::fs::remove_file(&path);
            }
            Ok(BackupSummary {
                stats: result?,
                compression,
            })
        }
        BackupOutput::Stream(out) => {
            let stats = write_to(
                &req.name,
                &rootfs,
                manifest.as_deref(),
                BufWriter::with_capacity(1 << 20, out),
                compression,
                reporter,
            )?;
            Ok(BackupSummary { stats, compression })
        }
    }
}

fn write_to<W: Write + 'static>(
    name: &str,
    rootfs: &std::path::Path,
    manifest: Option<&[u8]>,
    out: W,
    compression: BackupCompression,
    reporter: &dyn Reporter,
) -> Result<BackupStats, EngineError> {
    let enc = encoder(out, compression).context(|| "cannot start the compressor".to_string())?;
    let (enc, stats) = write_backup(name, rootfs, manifest, enc, &mut |event| match event {
        BackupEvent::Archived(p) => reporter.verbose(&format!("/{p}")),
        BackupEvent::SkippedSocket(p) => reporter.verbose(&format!("skipped socket /{p}")),
        BackupEvent::SkippedMount(p) => reporter.warn(&format!(
            "'/{p}' is a mount point inside '{name}'; its contents are not in the backup"
        )),
    })
    .map_err(|e| match e {
        cd_rootfs::backup::BackupError::Write(io) => {
            EngineError::io("cannot write the backup".to_string(), io)
        }
        other => EngineError::Other(format!("backup of '{name}' failed: {other}")),
    })?;
    enc.finish_stream()
        .context(|| "cannot finish the backup stream".to_string())?;
    Ok(stats)
}
