//! `install PATH`: a local archive. A first pass over the entries decides what it is (a plain
//! root filesystem and how deep, an OCI layout, a docker-archive); the second installs it.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use cd_rootfs::{apply_tar, ApplyError, ApplyOptions, ApplyStats};

use super::archive_image::{self, ImageFormat};
use super::archive_stream::TarStream;
use super::builder::ContainerBuilder;
use super::{wanted_platform, InstallOptions, InstallSummary};
use crate::archive_kind::{classify, ArchiveKind, Classifier};
use crate::error::EngineError;
use crate::report::Reporter;
use crate::store::Store;
use crate::watch::{is_cancelled, WatchedReader};

/// Install the archive file `path` as container `name`.
pub fn install_path(
    store: &Store,
    path: &Path,
    name: &str,
    opts: &InstallOptions,
    reporter: &dyn Reporter,
) -> Result<InstallSummary, EngineError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| EngineError::io(format!("cannot open the archive {}", path.display()), e))?;
    if meta.is_dir() {
        return Err(EngineError::Other(format!(
            "{} is a directory; give a tarball or an image archive (e.g. made with 'tar -C {} -czf rootfs.tar.gz .')",
            path.display(),
            path.display()
        )));
    }
    let builder = ContainerBuilder::create(store, name)?;
    install_file(store, builder, path, opts, reporter)
}

/// Install the archive file `path` into `builder` (also used for downloaded URLs).
///
/// Most rootfs tarballs need no strip, so the archive is extracted straight away while its
/// names are classified; only when it turns out to be something else (a tree inside a folder,
/// an image archive, damaged input) is the extraction given up (as early as the names tell)
/// and the archive handled by a classifying pass and a second one.
pub fn install_file(
    store: &Store,
    mut builder: ContainerBuilder,
    path: &Path,
    opts: &InstallOptions,
    reporter: &dyn Reporter,
) -> Result<InstallSummary, EngineError> {
    let cancel = opts.cancel.map(|c| c as &AtomicBool);
    let wanted = wanted_platform(opts.architecture.as_deref())?;
    let size = std::fs::metadata(path).map_or(0, |m| m.len());
    let known = match extract_unstripped(&builder, path, size, reporter, cancel)? {
        Speculation::Installed(stats, compression) => {
            reporter.info(&format!(
                "Extracted a root filesystem tarball ({})",
                compression_label(compression)
            ));
            return finish_rootfs(builder, &stats, reporter);
        }
        Speculation::Other(known) => known,
    };
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return Err(EngineError::Other(format!(
            "{} can be read only once (a pipe?), and this archive needs a second pass (it is not a \
             root filesystem at its top level); save it to a file and install that",
            path.display()
        )));
    }
    builder.clear_rootfs()?;
    let (kind, compression) = match known {
        Some(known) => known,
        None => {
            let bar = reporter.progress("scanning the archive", size);
            let mut stream = TarStream::open(path, &*bar, cancel)?;
            let kind = classify(&mut stream).map_err(|e| {
                if is_cancelled(cancel) {
                    EngineError::Interrupted
                } else {
                    e
                }
            })?;
            stream.check_complete()?;
            bar.finish();
            (kind, stream.compression)
        }
    };
    match kind {
        ArchiveKind::Rootfs { strip } => {
            reporter.info(&format!(
                "Extracting a root filesystem tarball ({}{})",
                compression_label(compression),
                match strip {
                    0 => String::new(),
                    1 => ", inside one top-level directory".to_string(),
                    n => format!(", {n} directories deep"),
                }
            ));
            install_rootfs(builder, path, strip, size, reporter, cancel)
        }
        ArchiveKind::OciLayout => archive_image::install(
            store,
            builder,
            path,
            ImageFormat::Oci,
            &wanted,
            reporter,
            cancel,
        ),
        ArchiveKind::DockerArchive => archive_image::install(
            store,
            builder,
            path,
            ImageFormat::Docker,
            &wanted,
            reporter,
            cancel,
        ),
    }
}

fn compression_label(c: cd_archive::Compression) -> String {
    match c {
        cd_archive::Compression::None => "uncompressed".to_string(),
        c => c.name().to_string(),
    }
}

enum Speculation {
    /// A root filesystem at the top of the archive, now extracted.
    Installed(ApplyStats, cd_archive::Compression),
    /// Something else: what it is when the pass could tell, else `None` (damaged, or refused
    /// by the applier: the classic path reports it).
    Other(Option<(ArchiveKind, cd_archive::Compression)>),
}

/// Extract without stripping while classifying the names. Errors are returned only where the
/// classic path would fail the same way (Ctrl-C, a full disk, an unreadable file).
fn extract_unstripped(
    builder: &ContainerBuilder,
    path: &Path,
    size: u64,
    reporter: &dyn Reporter,
    cancel: Option<&AtomicBool>,
) -> Result<Speculation, EngineError> {
    let bar = reporter.progress("extracting", size);
    let mut stream = TarStream::open(path, &*bar, cancel)?;
    let opts = rootfs_options(0);
    let mut classifier = Classifier::default();
    // Once the names say this is no flat root filesystem, writing the rest would be wasted:
    // the reader then ends the extraction, and the classifying pass takes over.
    let give_up = AtomicBool::new(false);
    let no_bar = crate::report::Silent.progress("", 0);
    let reader = WatchedReader::new(&mut stream, &*no_bar, Some(&give_up));
    let applied = apply_tar(builder.rootfs(), reader, &opts, &mut |p| {
        classifier.observe(&p.to_string_lossy());
        if classifier.unlikely_flat() {
            give_up.store(true, Ordering::Relaxed);
        }
    });
    if is_cancelled(cancel) {
        return Err(EngineError::Interrupted);
    }
    if give_up.load(Ordering::Relaxed) {
        return Ok(Speculation::Other(None));
    }
    let stats = match applied {
        Ok(stats) => stats,
        Err(e) if e.is_storage_full() => return Err(apply_error(e, cancel)),
        Err(_) => return Ok(Speculation::Other(None)),
    };
    if stream.check_complete().is_err() {
        return Ok(Speculation::Other(None));
    }
    bar.finish();
    let compression = stream.compression;
    Ok(match classifier.finish() {
        Ok(ArchiveKind::Rootfs { strip: 0 }) => Speculation::Installed(stats, compression),
        Ok(kind) => Speculation::Other(Some((kind, compression))),
        Err(_) => Speculation::Other(None),
    })
}

/// How a plain root filesystem tarball maps onto the root: owners kept, `strip` leading
/// directories dropped, and `.wh.` names are ordinary files, not layer whiteouts.
fn rootfs_options(strip: usize) -> ApplyOptions {
    ApplyOptions {
        oci_whiteouts: false,
        strip_components: strip,
        only_under: None,
        preserve_owners: true,
    }
}

/// A plain root filesystem: every entry through the safe applier, no record (there is no
/// image to `run` or `reset` from).
fn install_rootfs(
    builder: ContainerBuilder,
    path: &Path,
    strip: usize,
    size: u64,
    reporter: &dyn Reporter,
    cancel: Option<&AtomicBool>,
) -> Result<InstallSummary, EngineError> {
    let bar = reporter.progress("extracting", size);
    let mut stream = TarStream::open(path, &*bar, cancel)?;
    let opts = rootfs_options(strip);
    let stats = apply_tar(builder.rootfs(), &mut stream, &opts, &mut |_| {})
        .map_err(|e| apply_error(e, cancel))?;
    stream.check_complete()?;
    bar.finish();
    finish_rootfs(builder, &stats, reporter)
}

/// Warn about what was skipped, then put the container in place without a record.
fn finish_rootfs(
    builder: ContainerBuilder,
    stats: &ApplyStats,
    reporter: &dyn Reporter,
) -> Result<InstallSummary, EngineError> {
    if let Some(first) = stats.skips.first() {
        reporter.warn(&format!(
            "archive entries not extracted: {} (first: '{}': {})",
            stats.skips.len(),
            first.path,
            first.reason
        ));
    }
    let name = builder.name().to_string();
    builder.finish(None)?;
    Ok(InstallSummary {
        name,
        has_entrypoint: false,
    })
}

fn apply_error(e: ApplyError, cancel: Option<&AtomicBool>) -> EngineError {
    if is_cancelled(cancel) {
        return EngineError::Interrupted;
    }
    match &e {
        ApplyError::Unsafe { .. } => EngineError::Other(e.to_string()),
        ApplyError::Archive(_) | ApplyError::Entry { .. } if !e.is_storage_full() => {
            super::archive_stream::read_error(&e, cancel)
        }
        _ if e.is_storage_full() => EngineError::Other(
            "the disk is full; free some space and retry (nothing was installed)".to_string(),
        ),
        _ => EngineError::Other(e.to_string()),
    }
}
