//! Where the store lives: XDG directories on Linux, `$PREFIX/var/lib` on Termux.

use std::env;
use std::path::{Path, PathBuf};

const PROGRAM: &str = "chroot-distro";
const DEFAULT_TERMUX_PREFIX: &str = "/data/data/com.termux/files/usr";

/// The directories of one store, resolved once from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorePaths {
    /// `$RUNTIME_DIR`: containers, sessions state, locks.
    pub data: PathBuf,
    /// `$BASE_CACHE_DIR`: layer blobs and manifests.
    pub cache: PathBuf,
    pub termux: bool,
}

impl StorePaths {
    /// Resolve from the process environment.
    pub fn from_env() -> Self {
        Self::resolve(&|k| env::var_os(k).filter(|v| !v.is_empty()), Path::exists)
    }

    /// Resolve with an injectable environment and filesystem probe (for tests).
    pub fn resolve(
        var: &dyn Fn(&str) -> Option<std::ffi::OsString>,
        exists: fn(&Path) -> bool,
    ) -> Self {
        let prefix = var("TERMUX__PREFIX")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_TERMUX_PREFIX));
        if is_termux(var, exists, &prefix) {
            let data = prefix.join("var/lib").join(PROGRAM);
            return StorePaths {
                cache: data.join("cache"),
                data,
                termux: true,
            };
        }
        let home = var("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/root"));
        let data_home = var("XDG_DATA_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .unwrap_or_else(|| home.join(".local/share"));
        let cache_home = var("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .unwrap_or_else(|| home.join(".cache"));
        StorePaths {
            data: data_home.join(PROGRAM),
            cache: cache_home.join(PROGRAM),
            termux: false,
        }
    }

    pub fn containers(&self) -> PathBuf {
        self.data.join("containers")
    }
    pub fn container_dir(&self, name: &str) -> PathBuf {
        self.containers().join(name)
    }
    pub fn rootfs(&self, name: &str) -> PathBuf {
        self.container_dir(name).join("rootfs")
    }
    pub fn record(&self, name: &str) -> PathBuf {
        self.container_dir(name).join("manifest.json")
    }
    /// Per-container runtime state (session lock, namespace holder).
    pub fn state_dir(&self, name: &str) -> PathBuf {
        self.data.join("data").join(name)
    }
    pub fn locks(&self) -> PathBuf {
        self.data.join("locks")
    }
    pub fn lock_file(&self, name: &str) -> PathBuf {
        self.locks().join(format!("{name}.lock"))
    }
    /// Staging directory of an install or restore in progress; renamed into place at the end.
    pub fn staging(&self, name: &str) -> PathBuf {
        self.containers().join(format!(".staging-{name}"))
    }
    /// Where `remove` moves a container before deleting it, so that an interrupted removal
    /// leaves no half-deleted container behind (the next install or restore sweeps it).
    pub fn removing(&self, name: &str) -> PathBuf {
        self.containers().join(format!(".removing-{name}"))
    }
    pub fn layer_cache(&self) -> PathBuf {
        self.cache.join("oci_layers")
    }
    pub fn manifest_cache(&self) -> PathBuf {
        self.cache.join("oci_manifests")
    }
    /// Downloads in progress (archives fetched by URL).
    pub fn cache_tmp(&self) -> PathBuf {
        self.cache.join("tmp")
    }
}

/// Termux is recognised by two of: an Android system, a Termux version variable, the prefix.
fn is_termux(
    var: &dyn Fn(&str) -> Option<std::ffi::OsString>,
    exists: fn(&Path) -> bool,
    prefix: &Path,
) -> bool {
    let android = exists(Path::new("/system/build.prop"));
    let version_var =
        var("TERMUX_VERSION").is_some() || var("TERMUX_APP__APP_VERSION_NAME").is_some();
    let prefix_present = exists(prefix);
    [android, version_var, prefix_present]
        .iter()
        .filter(|b| **b)
        .count()
        >= 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<std::ffi::OsString> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).map(Into::into)
    }

    #[test]
    fn xdg_variables_choose_data_and_cache() {
        let p = StorePaths::resolve(
            &env_of(&[
                ("HOME", "/home/u"),
                ("XDG_DATA_HOME", "/d"),
                ("XDG_CACHE_HOME", "/c"),
            ]),
            |_| false,
        );
        assert_eq!(p.data, PathBuf::from("/d/chroot-distro"));
        assert_eq!(p.cache, PathBuf::from("/c/chroot-distro"));
        assert!(!p.termux);
    }

    #[test]
    fn defaults_follow_home() {
        let p = StorePaths::resolve(&env_of(&[("HOME", "/home/u")]), |_| false);
        assert_eq!(p.data, PathBuf::from("/home/u/.local/share/chroot-distro"));
        assert_eq!(p.cache, PathBuf::from("/home/u/.cache/chroot-distro"));
        assert_eq!(
            p.layer_cache(),
            PathBuf::from("/home/u/.cache/chroot-distro/oci_layers")
        );
    }

    #[test]
    fn relative_xdg_values_are_ignored() {
        let p = StorePaths::resolve(&env_of(&[("HOME", "/h"), ("XDG_DATA_HOME", "rel")]), |_| {
            false
        });
        assert_eq!(p.data, PathBuf::from("/h/.local/share/chroot-distro"));
    }

    #[test]
    fn termux_needs_two_signals() {
        let p = StorePaths::resolve(
            &env_of(&[
                ("HOME", "/h"),
                ("TERMUX_VERSION", "0.118"),
                ("TERMUX__PREFIX", "/p"),
            ]),
            |path| path == Path::new("/p"),
        );
        assert!(p.termux);
        assert_eq!(p.data, PathBuf::from("/p/var/lib/chroot-distro"));
        assert_eq!(p.cache, PathBuf::from("/p/var/lib/chroot-distro/cache"));

        let only_var = StorePaths::resolve(&env_of(&[("TERMUX_VERSION", "1")]), |_| false);
        assert!(!only_var.termux);
    }
}
