//! `backup`: a container as one (compressed) tar stream, to a new file or to a pipe.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use cd_archive::{Compression, FinishWrite};
use cd_rootfs::backup::{write_backup, BackupEvent, BackupStats};
use cd_sys::cancel::{is_cancel_error, PumpWriter};

use crate::error::{EngineError, IoContext};
use crate::report::Reporter;
use crate::store::Store;
use crate::watch::{is_cancelled, WatchedWriter};

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
    /// Set by Ctrl-C: the backup stops and its unfinished file is removed.
    pub cancel: Option<&'static AtomicBool>,
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

    let cancel = req.cancel;
    let write = |out: Box<dyn Write + Send>| {
        write_to(
            &req.name,
            &rootfs,
            manifest.as_deref(),
            out,
            compression,
            reporter,
            cancel,
        )
    };
    let stats = match req.output {
        BackupOutput::File(path) => write_file(&path, write)?,
        BackupOutput::Stream(out) => write(out)?,
    };
    Ok(BackupSummary { stats, compression })
}

/// Write the archive under a temporary name beside `path` and give it its real name only once
/// it is complete and synced, so that a backup cut short (Ctrl-C, a full disk, SIGKILL) never
/// leaves a truncated file that looks like a good one. An existing file is never replaced.
fn write_file(
    path: &Path,
    write: impl FnOnce(Box<dyn Write + Send>) -> Result<BackupStats, EngineError>,
) -> Result<BackupStats, EngineError> {
    let exists = || {
        EngineError::Other(format!(
            "'{}' already exists; backup never overwrites, pick another name",
            path.display()
        ))
    };
    // Also a dangling symlink planted at the name counts as existing.
    if path.symlink_metadata().is_ok() {
        return Err(exists());
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let base = path.file_name().map_or_else(
        || std::ffi::OsString::from("backup"),
        std::ffi::OsStr::to_os_string,
    );
    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(&base);
    prefix.push(".");
    let tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".partial")
        .tempfile_in(dir)
        .context(|| format!("cannot create {}", path.display()))?;
    // A second Ctrl-C ends the process without unwinding: the temp file goes with it.
    let _abort = cd_sys::signal::remove_on_abort(tmp.path());
    let file = tmp
        .as_file()
        .try_clone()
        .context(|| format!("cannot create {}", path.display()))?;
    let stats = write(Box::new(BufWriter::with_capacity(1 << 20, file)))?;
    tmp.as_file()
        .sync_all()
        .context(|| format!("cannot write {}", path.display()))?;
    tmp.persist_noclobber(path).map_err(|e| {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            exists()
        } else {
            EngineError::io(format!("cannot create {}", path.display()), e.error)
        }
    })?;
    if let Ok(d) = File::open(dir) {
        // The new name is durable only once the directory is synced; best effort.
        let _ = d.sync_all();
    }
    Ok(stats)
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

fn write_to(
    name: &str,
    rootfs: &Path,
    manifest: Option<&[u8]>,
    out: Box<dyn Write + Send>,
    compression: Compression,
    reporter: &dyn Reporter,
    cancel: Option<&'static AtomicBool>,
) -> Result<BackupStats, EngineError> {
    // gzip (pigz-style), zstd and xz compress on every core; the workers are joined by finish.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let enc = cd_archive::encoder(out, compression, threads)
        .context(|| "cannot start the compressor".to_string())?;
    let bar = reporter.progress("backing up", 0);
    if bar.is_visible() {
        // About the tar stream's size; the bar is squared up when it finishes.
        bar.set_total(cd_rootfs::dir_size(rootfs));
    }
    // The compressor runs behind a queue on its own thread: a multi-threaded xz can hold a
    // write for seconds while its workers catch up, and Ctrl-C must not wait for that.
    let pump = PumpWriter::new(
        enc,
        |enc: Box<dyn FinishWrite>| enc.finish(),
        1 << 20,
        cancel,
    );
    let mut watched = WatchedWriter::new(pump, bar, cancel);
    let written = write_backup(
        name,
        rootfs,
        manifest,
        &mut watched,
        &mut |event| match event {
            BackupEvent::Archived(p) => reporter.verbose(&format!("/{p}")),
            BackupEvent::SkippedSocket(p) => reporter.verbose(&format!("skipped socket /{p}")),
            BackupEvent::SkippedMount(p) => reporter.warn(&format!(
                "'/{p}' is a mount point inside '{name}'; its contents are not in the backup"
            )),
        },
    );
    if is_cancelled(cancel) {
        return Err(EngineError::Interrupted);
    }
    let (_, stats) = written.map_err(|e| match e {
        cd_rootfs::backup::BackupError::Write(io) => write_error(io),
        other => EngineError::Other(format!("backup of '{name}' failed: {other}")),
    })?;
    watched.into_inner().finish().map_err(|e| {
        if is_cancel_error(&e) {
            EngineError::Interrupted
        } else {
            write_error(e)
        }
    })?;
    Ok(stats)
}

fn write_error(e: std::io::Error) -> EngineError {
    if e.kind() == std::io::ErrorKind::StorageFull {
        return EngineError::Other(
            "the disk is full; free some space or write the backup elsewhere (nothing was kept)"
                .to_string(),
        );
    }
    EngineError::io("cannot write the backup".to_string(), e)
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
