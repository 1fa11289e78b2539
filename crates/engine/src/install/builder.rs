//! A container being made: its lock, its staging directory, the finishing touches, and the
//! final rename. Every install path (registry, archive, reset) goes through here, so a
//! failure or Ctrl-C at any point leaves the store exactly as it was.

use std::path::PathBuf;

use cd_rootfs::{fixups, Rootfs};

use crate::error::{EngineError, IoContext};
use crate::record::ContainerRecord;
use crate::staging::Staging;
use crate::store::{ContainerGuard, Store};

pub struct ContainerBuilder {
    name: String,
    /// Held until the container is in place, so a concurrent install of the same name fails
    /// as busy instead of racing.
    _guard: ContainerGuard,
    staging: Staging,
    rootfs: Rootfs,
    replacing: bool,
}

impl ContainerBuilder {
    /// Start a new container `name`; refused when it exists.
    pub fn create(store: &Store, name: &str) -> Result<Self, EngineError> {
        if store.exists(name) {
            return Err(EngineError::AlreadyExists(name.to_string()));
        }
        let guard = store.lock(name)?;
        // Another install may have finished between the check and the lock.
        if store.exists(name) {
            return Err(EngineError::AlreadyExists(name.to_string()));
        }
        Self::begin(store, name, guard, false)
    }

    /// Start a replacement for the existing container `name` (`reset`); the old one stays
    /// untouched until the new one is complete.
    pub fn replace(store: &Store, name: &str) -> Result<Self, EngineError> {
        store.require(name)?;
        let guard = store.lock(name)?;
        store.ensure_not_running(name)?;
        Self::begin(store, name, guard, true)
    }

    fn begin(
        store: &Store,
        name: &str,
        guard: ContainerGuard,
        replacing: bool,
    ) -> Result<Self, EngineError> {
        std::fs::create_dir_all(store.paths.containers())
            .context(|| format!("cannot create {}", store.paths.containers().display()))?;
        crate::staging::sweep_abandoned(store);
        let staging = Staging::begin(&store.paths, name)?;
        let rootfs = Rootfs::open(staging.rootfs())
            .context(|| format!("cannot open {}", staging.rootfs().display()))?;
        Ok(ContainerBuilder {
            name: name.to_string(),
            _guard: guard,
            staging,
            rootfs,
            replacing,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn rootfs(&self) -> &Rootfs {
        &self.rootfs
    }

    /// Empty the root filesystem again (after an extraction that turned out to be the wrong
    /// one).
    pub fn clear_rootfs(&mut self) -> Result<(), EngineError> {
        let path = self.staging.rootfs();
        cd_rootfs::remove_tree(&path, &mut |_| {})
            .context(|| format!("cannot clear {}", path.display()))?;
        std::fs::create_dir(&path).context(|| format!("cannot create {}", path.display()))?;
        self.rootfs = Rootfs::open(&path).context(|| format!("cannot open {}", path.display()))?;
        Ok(())
    }

    /// Write `/etc/resolv.conf` and `/etc/hosts` (when the image has an `/etc`), the record,
    /// and move the container into place.
    pub fn finish(self, record: Option<&ContainerRecord>) -> Result<PathBuf, EngineError> {
        let etc = self.staging.rootfs().join("etc");
        if etc.symlink_metadata().is_ok_and(|m| m.is_dir()) {
            fixups::write_resolv_conf(&self.rootfs, &fixups::host_nameservers())
                .context(|| "cannot write /etc/resolv.conf in the container".to_string())?;
            fixups::write_hosts(&self.rootfs, &self.name)
                .context(|| "cannot write /etc/hosts in the container".to_string())?;
        }
        if let Some(record) = record {
            record.save(&self.staging.dir().join("manifest.json"))?;
        }
        if self.replacing {
            self.staging.replace(&self.name)
        } else {
            self.staging.commit()
        }
    }
}
