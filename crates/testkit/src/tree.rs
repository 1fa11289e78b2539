//! Snapshots of directory trees for comparing what `install` made with what an independent tool
//! made from the same image.

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

#[derive(Debug, PartialEq, Eq)]
pub struct Node {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub size: u64,
    pub content: Option<String>,
    pub link: Option<PathBuf>,
    /// The smallest path of the file's hard-link group (walk order differs between trees).
    pub group: Option<PathBuf>,
}

/// Every entry under `root` by relative path (the root itself is `""`).
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, Node> {
    let mut out = BTreeMap::new();
    let mut groups: BTreeMap<(u64, u64), Vec<PathBuf>> = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let full = root.join(&rel);
        let m = full
            .symlink_metadata()
            .unwrap_or_else(|e| panic!("{}: {e}", full.display()));
        let ft = m.file_type();
        let kind = if ft.is_dir() {
            "dir"
        } else if ft.is_symlink() {
            "symlink"
        } else if ft.is_fifo() {
            "fifo"
        } else if ft.is_char_device() {
            "char"
        } else if ft.is_block_device() {
            "block"
        } else {
            "file"
        };
        if kind == "file" && m.nlink() > 1 {
            groups
                .entry((m.dev(), m.ino()))
                .or_default()
                .push(rel.clone());
        }
        let node = Node {
            kind,
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
            // Directory mtimes change as entries are added in any order; files must match.
            mtime: if kind == "dir" { 0 } else { m.mtime() },
            size: if kind == "file" { m.len() } else { 0 },
            content: (kind == "file")
                .then(|| crate::fixture::sha256_hex(&std::fs::read(&full).expect("readable file"))),
            link: (kind == "symlink").then(|| std::fs::read_link(&full).expect("readable link")),
            group: None,
        };
        if kind == "dir" {
            for e in std::fs::read_dir(&full).expect("readable directory") {
                stack.push(rel.join(e.expect("directory entry").file_name()));
            }
        }
        out.insert(rel, node);
    }
    for mut paths in groups.into_values() {
        paths.sort();
        for p in &paths {
            if let Some(node) = out.get_mut(p) {
                node.group = Some(paths[0].clone());
            }
        }
    }
    out
}

/// Assert that two unpacked images are the same tree (types, modes, owners, sizes, contents,
/// link targets, file mtimes, hard-link groups), apart from the files `install` writes on
/// purpose (/etc/resolv.conf and /etc/hosts) and the root directory's own mode, which the image
/// does not say. Returns how many entries were compared.
pub fn assert_same_image_tree(ours: &Path, theirs: &Path, who: &str) -> usize {
    let mut ours = snapshot(ours);
    let mut theirs = snapshot(theirs);
    for skip in ["etc/resolv.conf", "etc/hosts", ""] {
        ours.remove(Path::new(skip));
        theirs.remove(Path::new(skip));
    }
    let only_ours: Vec<_> = ours.keys().filter(|k| !theirs.contains_key(*k)).collect();
    let only_theirs: Vec<_> = theirs.keys().filter(|k| !ours.contains_key(*k)).collect();
    assert!(
        only_ours.is_empty() && only_theirs.is_empty(),
        "only in ours: {only_ours:?}; only in {who}: {only_theirs:?}"
    );
    for (path, node) in &ours {
        assert_eq!(
            node,
            &theirs[path],
            "/{} differs from {who}",
            path.display()
        );
    }
    ours.len()
}
