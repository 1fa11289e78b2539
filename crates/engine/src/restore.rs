//! `restore [FILE]`: a backup (any compression, from a file or stdin) becomes a container again.
//!
//! The container name comes from the archive. Everything is extracted inside a staging directory
//! that is renamed into place only when the whole archive was read; any failure (a hostile
//! name, a truncated stream) removes the staging directory and leaves the store as it was.

use std::io::Read;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use cd_rootfs::backup_unpack::unpack_backup;
use cd_sys::cancel::CancellableReader;

use crate::error::{EngineError, IoContext};
use crate::names::validate_name;
use crate::report::Reporter;
use crate::staging::Staging;
use crate::store::{ContainerGuard, Store};
use crate::watch::{is_cancelled, WatchedReader};

#[derive(Debug, Clone)]
pub struct RestoreSummary {
    pub name: String,
    pub entries: u64,
    pub has_manifest: bool,
}

/// Restore from `file`, or from `stdin` when `None`. Setting `cancel` (Ctrl-C) stops it, even
/// while it waits on a pipe, and leaves the store as it was.
pub fn restore(
    store: &Store,
    file: Option<&Path>,
    stdin: Box<dyn Read + Send>,
    reporter: &dyn Reporter,
    cancel: Option<&'static AtomicBool>,
) -> Result<RestoreSummary, EngineError> {
    let bar = reporter.progress("restoring", 0);
    let input: Box<dyn Read> = match file {
        Some(path) => {
            let f =
                std::fs::File::open(path).context(|| format!("cannot open {}", path.display()))?;
            if let Ok(m) = f.metadata() {
                bar.set_total(m.len());
            }
            Box::new(f)
        }
        // A pipe can block for as long as its writer likes; the pump keeps Ctrl-C responsive.
        None => Box::new(CancellableReader::new(stdin, 256 * 1024, cancel)),
    };
    let input = WatchedReader::new(input, &*bar, cancel);
    crate::staging::sweep_abandoned(store);
    let result = restore_from(store, input, reporter);
    bar.finish();
    match result {
        Err(_) if is_cancelled(cancel) => Err(EngineError::Interrupted),
        other => other,
    }
}

fn restore_from(
    store: &Store,
    input: impl Read,
    reporter: &dyn Reporter,
) -> Result<RestoreSummary, EngineError> {
    let (_, reader) =
        cd_archive::sniffing_decoder(input).context(|| "cannot read the backup".to_string())?;

    let mut held: Option<(ContainerGuard, Staging)> = None;
    let mut prepare = |name: &str| -> Result<std::path::PathBuf, String> {
        validate_name(name).map_err(|e| format!("the archive names its container badly: {e}"))?;
        if store.exists(name) {
            return Err(format!(
                "container '{name}' already exists; remove it or rename it \
                 ('chroot-distro rename {name} NEW') before restoring"
            ));
        }
        let guard = store.lock(name).map_err(|e| e.to_string())?;
        let staging = Staging::begin(&store.paths, name).map_err(|e| e.to_string())?;
        let rootfs = staging.rootfs();
        held = Some((guard, staging));
        Ok(rootfs)
    };
    let unpacked = unpack_backup(reader, &mut prepare, &mut |p| {
        reporter.verbose(&format!("/{p}"))
    })
    .map_err(|e| {
        if e.is_storage_full() {
            return EngineError::Other(
                "the disk is full; free some space and retry (nothing was restored)".to_string(),
            );
        }
        // The tar parser quotes the bytes it choked on: keep the line readable.
        let brief = crate::archive_kind::brief_reason(&e);
        let hint = if brief.starts_with("cannot read the archive") {
            "; is it a backup made by 'chroot-distro backup'?"
        } else {
            ""
        };
        EngineError::Other(format!("restore failed: {brief}{hint}"))
    })?;
    let Some((_guard, staging)) = held else {
        return Err(EngineError::Other(
            "restore failed: the archive is empty".into(),
        ));
    };
    for skip in &unpacked.skips {
        reporter.warn(&format!("not restored: '{}': {}", skip.path, skip.reason));
    }
    if unpacked.xattr_failures > 0 {
        reporter.warn(&format!(
            "{} extended attribute(s) could not be set on this filesystem",
            unpacked.xattr_failures
        ));
    }
    if let Some(bytes) = &unpacked.manifest {
        if serde_json::from_slice::<serde_json::Value>(bytes).is_err() {
            reporter.warn(
                "the backup's manifest.json is not valid JSON; 'reset' and 'run' will not work",
            );
        }
        crate::atomic::write_atomic(&staging.dir().join("manifest.json"), bytes, 0o644)?;
    } else {
        reporter.warn(&format!(
            "the backup has no manifest.json; '{}' can be entered but not reset",
            unpacked.name
        ));
    }
    staging.commit()?;
    Ok(RestoreSummary {
        name: unpacked.name,
        entries: unpacked.entries,
        has_manifest: unpacked.manifest.is_some(),
    })
}
