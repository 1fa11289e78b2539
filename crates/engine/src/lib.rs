//! Use cases of chroot-distro and the store they work on. Nothing here prints: messages and
//! progress go through [`report::Reporter`], errors are [`EngineError`] values with a user message.

pub mod archive_kind;
pub mod atomic;
pub mod backup;
pub mod cache;
pub mod diff;
pub mod error;
pub mod install;
pub mod lock;
pub mod mounts;
pub mod names;
pub mod paths;
pub mod record;
pub mod report;
pub mod restore;
pub mod session;
pub mod source;
pub mod staging;
pub mod store;
pub mod transfer;
mod watch;

pub use error::EngineError;
pub use paths::StorePaths;
pub use store::Store;

/// Human-readable byte counts: `1.5 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn human_bytes_picks_units() {
        assert_eq!(super::human_bytes(0), "0 B");
        assert_eq!(super::human_bytes(1536), "1.5 KiB");
        assert_eq!(super::human_bytes(5 * 1024 * 1024), "5.0 MiB");
    }
}
