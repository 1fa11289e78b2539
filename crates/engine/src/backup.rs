//! `backup`: a container as one (compressed) tar stream, to a new file or to a pipe.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use cd_archive::Compression;
use cd_rootfs::backup::{write_backup, BackupEvent, BackupStats};

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
    pub compression: Compression,
}

pub fn backup(
    store: &Store,
    req: BackupRequest,
    reporter: &dyn Reporter,
) -> Result<BackupSummary, EngineError> {
    store.require(&req.name)?;
    let _guard = store.lock(&req.name)?;
    let compression = match (&req.compression, &req.output) {
        (Some(name), _) => {
            Compression::from_name(name).map_err(|e| EngineError::Other(e.to_string()))?
        }
        (None, BackupOutput::File(path)) => compression_of(path).ok_or_else(|| {
            EngineError::Other(format!(
                "cannot tell the compression from '{}'; name it .tar, .tar.gz, .tgz, \
                 .tar.bz2, .tar.xz or .tar.zst, or pass -c",
                path.display()
            ))
        })?,
        (None, BackupOutput::Stream(_)) => Compression::None,
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

/// The compression a backup file name asks for: `.tar` means none, an unknown extension is
/// `None` (the caller asks for `-c` rather than guessing).
fn compression_of(path: &Path) -> Option<Compression> {
    let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
    if name.ends_with(".tar") {
        return Some(Compression::None);
    }
    if name.ends_with(".zstd") {
        return Some(Compression::Zstd);
    }
    Some(Compression::from_extension(path)).filter(|c| *c != Compression::None)
}

fn write_to<W: Write + Send + 'static>(
    name: &str,
    rootfs: &Path,
    manifest: Option<&[u8]>,
    out: W,
    compression: Compression,
    reporter: &dyn Reporter,
) -> Result<BackupStats, EngineError> {
    // gzip (pigz-style), zstd and xz compress on every core; the workers are joined by finish.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let enc = cd_archive::encoder(out, compression, threads)
        .context(|| "cannot start the compressor".to_string())?;
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
    enc.finish()
        .context(|| "cannot finish the backup stream".to_string())?;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_choose_the_compression() {
        let c = |p: &str| compression_of(Path::new(p));
        assert_eq!(c("a.tar.gz"), Some(Compression::Gzip));
        assert_eq!(c("a.TGZ"), Some(Compression::Gzip));
        assert_eq!(c("a.tar.bz2"), Some(Compression::Bzip2));
        assert_eq!(c("a.tar.xz"), Some(Compression::Xz));
        assert_eq!(c("a.tar.zst"), Some(Compression::Zstd));
        assert_eq!(c("a.tar.zstd"), Some(Compression::Zstd));
        assert_eq!(c("a.tar"), Some(Compression::None));
        assert_eq!(c("a.bak"), None);
        assert_eq!(c("tar"), None);
    }
}
