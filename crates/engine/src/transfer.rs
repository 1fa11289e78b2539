//! `copy` and `sync` use cases: operands `[CONTAINER:]PATH`, locks, then the rootfs transfer.
//!
//! How an operand is read: text before the first `:` names a container only when it is a valid
//! container name *and* that container is installed. Anything else is a host path, so
//! `./a:b`, `/x:y` and `notes:v2` (no container `notes`) stay host paths. One case is refused
//! rather than guessed: `NAME:PATH` where NAME is a valid name but not installed and no host
//! path `NAME:…` exists, since that is far more likely a typo of a container name than a
//! wish to create a host directory called `NAME:` (write `./NAME:PATH` to mean the host).

use std::path::{Path, PathBuf};

use cd_rootfs::transfer::{self, CopyOptions, Location, SyncOptions, TransferEvent, TransferStats};

use crate::error::EngineError;
use crate::names::validate_name;
use crate::report::Reporter;
use crate::store::{ContainerGuard, Store};

/// A parsed `[CONTAINER:]PATH` operand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    Host(PathBuf),
    Container { name: String, path: PathBuf },
}

impl Operand {
    pub fn parse(store: &Store, text: &str) -> Result<Operand, EngineError> {
        if text.is_empty() {
            return Err(EngineError::Other(
                "an empty path; give a host path or CONTAINER:PATH".into(),
            ));
        }
        let Some((prefix, rest)) = text.split_once(':') else {
            return Ok(Operand::Host(PathBuf::from(text)));
        };
        if validate_name(prefix).is_err() {
            return Ok(Operand::Host(PathBuf::from(text)));
        }
        if store.exists(prefix) {
            let path = if rest.is_empty() { "/" } else { rest };
            return Ok(Operand::Container {
                name: prefix.to_string(),
                path: PathBuf::from(path),
            });
        }
        // `NAME:…` names no installed container: a host path only if it is really there.
        let top = text.split('/').next().unwrap_or(text);
        if Path::new(top).symlink_metadata().is_ok() {
            return Ok(Operand::Host(PathBuf::from(text)));
        }
        Err(EngineError::Other(format!(
            "container '{prefix}' is not installed (see 'chroot-distro list'); for a host path \
             containing ':' write ./{text}"
        )))
    }

    fn container(&self) -> Option<&str> {
        match self {
            Operand::Container { name, .. } => Some(name),
            Operand::Host(_) => None,
        }
    }

    fn location(&self, store: &Store) -> Location {
        match self {
            Operand::Host(path) => Location::Host { path: path.clone() },
            Operand::Container { name, path } => Location::Container {
                name: name.clone(),
                rootfs: store.paths.rootfs(name),
                path: path.clone(),
            },
        }
    }
}

/// What the CLI asked for, besides the operands.
#[derive(Debug, Default, Clone)]
pub struct TransferRequest {
    pub source: String,
    pub dest: String,
    /// `--chown USER[:GROUP]`, resolved in the destination's passwd/group.
    pub chown: Option<String>,
    /// Set by Ctrl-C: stop before the next entry.
    pub cancel: Option<&'static std::sync::atomic::AtomicBool>,
}

pub fn copy(
    store: &Store,
    req: &TransferRequest,
    recursive: bool,
    move_source: bool,
    reporter: &dyn Reporter,
) -> Result<TransferStats, EngineError> {
    let prepared = prepare(store, req, move_source)?;
    let opts = CopyOptions {
        recursive,
        move_source,
        owner: prepared.owner,
        cancel: req.cancel,
    };
    transfer::copy(&prepared.src, &prepared.dst, &opts, &mut |e| {
        report_event(reporter, &e)
    })
    .map_err(|e| transfer_error("copy", e))
}

pub fn sync(
    store: &Store,
    req: &TransferRequest,
    checksum: bool,
    delete: bool,
    reporter: &dyn Reporter,
) -> Result<TransferStats, EngineError> {
    let prepared = prepare(store, req, false)?;
    let opts = SyncOptions {
        checksum,
        delete,
        owner: prepared.owner,
        cancel: req.cancel,
    };
    transfer::sync(&prepared.src, &prepared.dst, &opts, &mut |e| {
        report_event(reporter, &e)
    })
    .map_err(|e| transfer_error("sync", e))
}

fn transfer_error(what: &str, e: transfer::TransferError) -> EngineError {
    match e {
        transfer::TransferError::Interrupted => EngineError::InterruptedPartway(
            "entries written before stay; none was left half-written",
        ),
        other => EngineError::Other(format!("{what} failed: {other}")),
    }
}

struct Prepared {
    src: Location,
    dst: Location,
    owner: Option<transfer::Owner>,
    _guards: Vec<ContainerGuard>,
}

fn prepare(
    store: &Store,
    req: &TransferRequest,
    source_written: bool,
) -> Result<Prepared, EngineError> {
    let src = Operand::parse(store, &req.source)?;
    let dst = Operand::parse(store, &req.dest)?;
    if src.container().is_none() && dst.container().is_none() {
        return Err(EngineError::Other(format!(
            "neither '{}' nor '{}' is in a container; write CONTAINER:PATH for the container side",
            req.source, req.dest
        )));
    }
    // The containers written to are locked so remove, rename or restore cannot run meanwhile;
    // a running session does not stop a copy (as with docker cp).
    let mut guards = Vec::new();
    let mut written: Vec<&str> = dst.container().into_iter().collect();
    if source_written {
        written.extend(src.container());
    }
    written.sort_unstable();
    written.dedup();
    for name in written {
        guards.push(store.lock(name)?);
    }
    let src = src.location(store);
    let dst = dst.location(store);
    let owner = match &req.chown {
        Some(spec) => Some(
            transfer::parse_owner(spec, &dst.accounts())
                .map_err(|e| EngineError::Other(format!("--chown {spec}: {e}")))?,
        ),
        None => None,
    };
    Ok(Prepared {
        src,
        dst,
        owner,
        _guards: guards,
    })
}

fn report_event(reporter: &dyn Reporter, event: &TransferEvent<'_>) {
    match event {
        TransferEvent::Copied(p) => reporter.verbose(&format!("copied {p}")),
        TransferEvent::Updated(p) => reporter.verbose(&format!("updated {p}")),
        TransferEvent::Deleted(p) => reporter.verbose(&format!("deleted {p}")),
        TransferEvent::RemovedSource(p) => reporter.verbose(&format!("removed {p}")),
        TransferEvent::Skipped { path, why } => {
            reporter.verbose(&format!("skipped {path} ({why})"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::StorePaths;

    fn store_with(names: &[&str]) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let paths = StorePaths {
            data: dir.path().join("data"),
            cache: dir.path().join("cache"),
            termux: false,
        };
        for n in names {
            std::fs::create_dir_all(paths.rootfs(n)).unwrap();
        }
        (dir, Store::new(paths))
    }

    #[test]
    fn installed_prefix_is_a_container_and_other_colons_are_host_paths() {
        let (_d, store) = store_with(&["ubuntu"]);
        assert_eq!(
            Operand::parse(&store, "ubuntu:/etc/hosts").unwrap(),
            Operand::Container {
                name: "ubuntu".into(),
                path: "/etc/hosts".into()
            }
        );
        assert_eq!(
            Operand::parse(&store, "./a:b").unwrap(),
            Operand::Host("./a:b".into())
        );
        assert_eq!(
            Operand::parse(&store, "/x/y:z").unwrap(),
            Operand::Host("/x/y:z".into())
        );
        assert_eq!(
            Operand::parse(&store, "plain").unwrap(),
            Operand::Host("plain".into())
        );
    }

    #[test]
    fn unknown_container_prefix_is_refused_with_a_hint() {
        let (_d, store) = store_with(&["ubuntu"]);
        let err = Operand::parse(&store, "ubunto:/etc")
            .unwrap_err()
            .to_string();
        assert!(err.contains("'ubunto' is not installed"), "{err}");
        assert!(err.contains("./ubunto:/etc"), "{err}");
    }
}
