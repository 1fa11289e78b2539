//! Fixtures too slow to make per test (a debootstrap'd Debian, the Python tool, an arm64
//! busybox): an idempotent script builds each once under /var/cache/chroot-distro-tests and
//! prints its path.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Run the fixture script `script` and return the path it prints; fail the test saying what
/// the script needs (`needs`) when it cannot build the fixture.
pub fn cached_fixture(script: &Path, needs: &str) -> PathBuf {
    let out = Command::new(script)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "the fixture of {} is not available and could not be made (it needs {needs}): {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// A script of the repository's `scripts/` folder.
pub fn repo_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scripts")
        .join(name)
}
