//! A host file that hostile archives try to reach: it must stay as it was, alone in its folder.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

pub struct Canary {
    dir: TempDir,
    file: PathBuf,
}

pub const CONTENT: &str = "untouched";

impl Canary {
    pub fn new() -> Canary {
        let dir = tempfile::Builder::new()
            .prefix("cd-canary-")
            .tempdir()
            .expect("canary dir");
        let file = dir.path().join("canary");
        fs::write(&file, CONTENT).expect("write canary");
        Canary { dir, file }
    }

    /// The folder holding the canary (a symlink target for "escape through a parent" cases).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The canary's absolute path as a string, for archive entries that name it.
    pub fn file_str(&self) -> String {
        self.file.display().to_string()
    }

    /// Unchanged content, and nothing planted next to it.
    pub fn assert_untouched(&self, case: &str) {
        assert_eq!(
            fs::read_to_string(&self.file).expect("read canary"),
            CONTENT,
            "{case} changed the host canary"
        );
        let count = fs::read_dir(self.dir.path())
            .expect("list canary dir")
            .count();
        assert_eq!(count, 1, "{case} planted a file next to the host canary");
    }

    /// Whether `path` is the canary's own inode (a hard link that reached the host).
    pub fn is_same_inode(&self, path: &Path) -> bool {
        let canary = fs::metadata(&self.file).expect("stat canary");
        path.symlink_metadata()
            .is_ok_and(|m| m.ino() == canary.ino() && m.dev() == canary.dev())
    }
}

impl Default for Canary {
    fn default() -> Self {
        Canary::new()
    }
}
