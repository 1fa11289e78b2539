//! `install PATH`: a local archive. A first pass over the entries decides what it is (a plain
//! root filesystem and how deep, an OCI layout, a docker-archive); the second installs it.

use std::io;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use cd_rootfs::{apply_tar, ApplyError, ApplyOptions};

use super::archive_image::{self, ImageFormat};
use super::archive_stream::TarStream;
use super::builder::ContainerBuilder;
use super::watch::is_cancelled;
use super::{wanted_platform, InstallOptions, InstallSummary};
use crate::archive_kind::{classify, ArchiveKind};
use crate::error::EngineError;
use crate::report::Reporter;
use crate::store::Store;

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
pub fn install_file(
    store: &Store,
    builder: ContainerBuilder,
    path: &Path,
    opts: &InstallOptions,
    reporter: &dyn Reporter,
) -> Result<InstallSummary, EngineError> {
    let cancel = opts.cancel.map(|c| c as &AtomicBool);
    let wanted = wanted_platform(opts.architecture.as_deref())?;
    let size = std::fs::metadata(path).map_or(0, |m| m.len());
    let (kind, compression) = {
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
    };
    match kind {
        ArchiveKind::Rootfs { strip } => {
            reporter.info(&format!(
                "Extracting a root filesystem tarball ({}{})",
                match compression {
                    cd_archive::Compression::None => "uncompressed".to_string(),
                    c => c.name().to_string(),
                },
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
    let opts = ApplyOptions {
        // `.wh.` names in a rootfs are ordinary files, not layer whiteouts.
        oci_whiteouts: false,
        strip_components: strip,
        only_under: None,
        preserve_owners: true,
    };
    let stats = apply_tar(builder.rootfs(), &mut stream, &opts, &mut |_| {})
        .map_err(|e| apply_error(e, cancel))?;
    stream.check_complete()?;
    bar.finish();
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
        ApplyError::Archive(source) | ApplyError::Entry { source, .. }
            if source.kind() != io::ErrorKind::StorageFull =>
        {
            super::archive_stream::read_error(&e, cancel)
        }
        _ if e
            .io_error()
            .is_some_and(|io| io.kind() == io::ErrorKind::StorageFull) =>
        {
            EngineError::Other(
                "the disk is full; free some space and retry (nothing was installed)".to_string(),
            )
        }
        _ => EngineError::Other(e.to_string()),
    }
}
