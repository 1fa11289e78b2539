//! The host's mount table, read to make sure nothing is deleted or moved through a mount.

use std::path::{Path, PathBuf};

use crate::error::{EngineError, IoContext};

/// Mount points at or below `dir` in this process's mount namespace, deepest first.
pub fn mounts_under(dir: &Path) -> Result<Vec<PathBuf>, EngineError> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .context(|| "cannot read /proc/self/mountinfo".to_string())?;
    let mut found: Vec<PathBuf> = text
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(unescape_mountinfo)
        .filter(|p| p.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    Ok(found)
}

/// Detach every mount under `dir` (deepest first); error if any survives.
pub fn unmount_all_under(name: &str, dir: &Path) -> Result<usize, EngineError> {
    let mut count = 0;
    // Stacked mounts need several passes; bound them so a stubborn mount cannot loop forever.
    for _ in 0..8 {
        let mounts = mounts_under(dir)?;
        if mounts.is_empty() {
            return Ok(count);
        }
        for m in &mounts {
            if rustix::mount::unmount(m, rustix::mount::UnmountFlags::empty()).is_err() {
                let _ = rustix::mount::unmount(m, rustix::mount::UnmountFlags::DETACH);
            }
            count += 1;
        }
    }
    match mounts_under(dir)?.into_iter().next() {
        None => Ok(count),
        Some(path) => Err(EngineError::MountBusy {
            name: name.to_string(),
            path,
        }),
    }
}

/// mountinfo escapes space, tab, newline and backslash as octal `\NNN`.
fn unescape_mountinfo(field: &str) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let oct = std::str::from_utf8(&bytes[i + 1..i + 4]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(oct, 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_octal_sequences() {
        assert_eq!(unescape_mountinfo(r"/a\040b"), PathBuf::from("/a b"));
        assert_eq!(unescape_mountinfo(r"/x\134y"), PathBuf::from(r"/x\y"));
        assert_eq!(unescape_mountinfo("/plain"), PathBuf::from("/plain"));
    }

    #[test]
    fn root_is_mounted_and_a_temp_dir_has_no_mounts() {
        assert!(!mounts_under(Path::new("/")).unwrap().is_empty());
        let dir = tempfile::tempdir().unwrap();
        assert!(mounts_under(dir.path()).unwrap().is_empty());
    }
}
