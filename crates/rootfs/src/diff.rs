//! `docker diff` for a container: the image is rebuilt as an in-memory index from its layer
//! tar streams (nothing is extracted), then the live rootfs is walked and compared with it.
//!
//! The index maps each path to what the image put there: type, size, permission bits, owner,
//! mtime and link target. OCI whiteouts apply to lower layers only, so each layer is read whole
//! (metadata only) before its whiteouts and entries are merged. A hard link in a layer takes its
//! target's metadata, so two live names of one untouched inode both compare equal.
//!
//! Markers follow docker: `A` added, `C` changed, `D` deleted (only the topmost deleted path),
//! and every directory above a change is `C`.

use std::collections::{BTreeMap, HashSet};
use std::io::{self, Read};
use std::path::Path;

use crate::inode_walk::{self, InodeKind, InodeMeta, Visit};

/// Pseudo-filesystem mount points that never belong to the image comparison.
pub const EXCLUDED: &[&str] = &["dev", "proc", "sys", "run", "tmp"];

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE: &[u8] = b".wh..wh..opq";

/// What the image says about one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexNode {
    pub kind: InodeKind,
    pub size: u64,
    pub perm: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: i64,
    pub link: Option<Vec<u8>>,
    pub rdev: (u32, u32),
}

/// One layer read into memory: its entries in order, its whiteouts and opaque directories.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LayerEntries {
    pub(crate) entries: Vec<(Vec<u8>, LayerItem)>,
    pub(crate) whiteouts: Vec<Vec<u8>>,
    pub(crate) opaque_dirs: Vec<Vec<u8>>,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum LayerItem {
    Node(IndexNode),
    /// A hard link to another path of the image (already normalised).
    HardLink(Vec<u8>),
}

#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("cannot read layer: {0}")]
    Layer(#[source] io::Error),
    #[error("cannot read the container's rootfs: {0}")]
    Walk(#[source] io::Error),
}

impl LayerEntries {
    /// Read the metadata of an uncompressed layer tar stream; file bodies are skipped.
    pub fn read(reader: impl Read) -> Result<LayerEntries, DiffError> {
        let mut archive = cd_archive::guarded_archive(reader);
        let mut layer = LayerEntries::default();
        for entry in archive.entries().map_err(DiffError::Layer)? {
            let entry = entry.map_err(DiffError::Layer)?;
            let header = entry.header();
            let Some(path) = normalise(&entry.path_bytes()) else {
                continue;
            };
            let (parent, name) = split_last(&path);
            if name == OPAQUE {
                layer.opaque_dirs.push(parent.to_vec());
                continue;
            }
            if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
                layer.whiteouts.push(join(parent, hidden));
                continue;
            }
            let kind = match header.entry_type() {
                tar::EntryType::Directory => InodeKind::Dir,
                tar::EntryType::Symlink => InodeKind::Symlink,
                tar::EntryType::Fifo => InodeKind::Fifo,
                tar::EntryType::Char => InodeKind::CharDevice,
                tar::EntryType::Block => InodeKind::BlockDevice,
                tar::EntryType::Link => {
                    let target = entry
                        .link_name_bytes()
                        .and_then(|t| normalise(&t))
                        .unwrap_or_default();
                    layer.entries.push((path, LayerItem::HardLink(target)));
                    continue;
                }
                tar::EntryType::Regular | tar::EntryType::Continuous => InodeKind::File,
                t if t.as_byte() == b'\0' => InodeKind::File,
                // PAX and GNU meta headers are consumed by the tar reader; others are ignored.
                _ => continue,
            };
            if path.is_empty() && kind != InodeKind::Dir {
                continue;
            }
            let node = IndexNode {
                kind,
                size: if kind == InodeKind::File {
                    entry.size()
                } else {
                    0
                },
                perm: header.mode().map_err(DiffError::Layer)? & 0o7777,
                uid: header.uid().map_err(DiffError::Layer)?,
                gid: header.gid().map_err(DiffError::Layer)?,
                mtime: i64::try_from(header.mtime().map_err(DiffError::Layer)?).unwrap_or(0),
                link: (kind == InodeKind::Symlink)
                    .then(|| entry.link_name_bytes().map(|l| l.into_owned()))
                    .flatten(),
                rdev: (
                    header.device_major().ok().flatten().unwrap_or(0),
                    header.device_minor().ok().flatten().unwrap_or(0),
                ),
            };
            layer.entries.push((path, LayerItem::Node(node)));
        }
        Ok(layer)
    }
}

/// The image's filesystem as path → node, built layer by layer.
#[derive(Debug, Default)]
pub struct ImageIndex {
    nodes: BTreeMap<Vec<u8>, IndexNode>,
}

impl ImageIndex {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn get(&self, path: &str) -> Option<&IndexNode> {
        self.nodes.get(path.as_bytes())
    }

    /// Stack `layer` on top of what is indexed so far.
    pub fn apply(&mut self, layer: LayerEntries) {
        for dir in &layer.opaque_dirs {
            self.remove_children(dir);
        }
        for path in &layer.whiteouts {
            self.nodes.remove(path);
            self.remove_children(path);
        }
        for (path, item) in layer.entries {
            let node = match item {
                LayerItem::Node(node) => node,
                LayerItem::HardLink(target) => match self.nodes.get(&target) {
                    Some(node) => node.clone(),
                    None => continue,
                },
            };
            // A non-directory replacing a directory hides what was below it.
            if node.kind != InodeKind::Dir
                && self
                    .nodes
                    .get(&path)
                    .is_some_and(|n| n.kind == InodeKind::Dir)
            {
                self.remove_children(&path);
            }
            self.nodes.insert(path, node);
        }
    }

    fn remove_children(&mut self, dir: &[u8]) {
        let keys: Vec<Vec<u8>> = self
            .nodes
            .range(children_range(dir))
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            self.nodes.remove(&k);
        }
    }
}

/// Keys strictly below `dir`: `dir/` up to (excluding) `dir0` (`'0'` follows `'/'`).
fn children_range(dir: &[u8]) -> (std::ops::Bound<Vec<u8>>, std::ops::Bound<Vec<u8>>) {
    use std::ops::Bound;
    if dir.is_empty() {
        return (Bound::Excluded(Vec::new()), Bound::Unbounded);
    }
    let mut lo = dir.to_vec();
    lo.push(b'/');
    let mut hi = dir.to_vec();
    hi.push(b'/' + 1);
    (Bound::Included(lo), Bound::Excluded(hi))
}

/// A change marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeKind {
    Added,
    Changed,
    Deleted,
}

impl ChangeKind {
    pub fn marker(self) -> char {
        match self {
            ChangeKind::Added => 'A',
            ChangeKind::Changed => 'C',
            ChangeKind::Deleted => 'D',
        }
    }
}

/// One line of `diff` output: the marker and an absolute path inside the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: ChangeKind,
    pub path: String,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind.marker(), self.path)
    }
}

/// Compare the live rootfs at `root` with `index`; changes come sorted by path.
pub fn diff_rootfs(root: &Path, index: &ImageIndex) -> Result<Vec<Change>, DiffError> {
    let excluded: HashSet<&[u8]> = EXCLUDED.iter().map(|s| s.as_bytes()).collect();
    let mut changes: BTreeMap<Vec<u8>, ChangeKind> = BTreeMap::new();
    let mut seen: HashSet<Vec<u8>> = HashSet::with_capacity(index.len());
    let mut mounts: HashSet<Vec<u8>> = HashSet::new();
    inode_walk::walk(
        root,
        &mut |entry| {
            if entry.path.is_empty() {
                return Ok(Visit::Descend);
            }
            if excluded.contains(entry.path) {
                return Ok(Visit::SkipChildren);
            }
            match index.nodes.get(entry.path) {
                None => {
                    changes.insert(entry.path.to_vec(), ChangeKind::Added);
                }
                Some(node) => {
                    seen.insert(entry.path.to_vec());
                    let link = if entry.meta.kind == InodeKind::Symlink {
                        rustix::fs::readlinkat(entry.dir, entry.name, Vec::new())
                            .ok()
                            .map(|l| l.into_bytes())
                    } else {
                        None
                    };
                    if differs(node, &entry.meta, link.as_deref()) {
                        changes.insert(entry.path.to_vec(), ChangeKind::Changed);
                    }
                }
            }
            Ok(Visit::Descend)
        },
        // A mount point hides the image's files below it; it is not a change of the rootfs.
        &mut |p| {
            mounts.insert(p.to_vec());
        },
    )
    .map_err(DiffError::Walk)?;

    let mut deleted_dirs: Vec<Vec<u8>> = Vec::new();
    for path in index.nodes.keys() {
        if path.is_empty()
            || seen.contains(path)
            || mounts.contains(path)
            || is_excluded(path, &excluded)
        {
            continue;
        }
        // Only the topmost deleted path is listed.
        if deleted_dirs
            .last()
            .is_some_and(|d| path.starts_with(d) && path.get(d.len()) == Some(&b'/'))
        {
            continue;
        }
        // Below a mount point: hidden, not deleted.
        if ancestors(path).any(|a| mounts.contains(a)) {
            continue;
        }
        deleted_dirs.push(path.clone());
        changes.insert(path.clone(), ChangeKind::Deleted);
    }

    // Every directory above a change changed too (docker's convention).
    let changed: Vec<Vec<u8>> = changes.keys().cloned().collect();
    for path in changed {
        for parent in ancestors(&path) {
            if parent.is_empty() {
                break;
            }
            changes
                .entry(parent.to_vec())
                .or_insert(ChangeKind::Changed);
        }
    }

    Ok(changes
        .into_iter()
        .map(|(path, kind)| Change {
            kind,
            path: format!("/{}", String::from_utf8_lossy(&path)),
        })
        .collect())
}

fn is_excluded(path: &[u8], excluded: &HashSet<&[u8]>) -> bool {
    let top = path.split(|b| *b == b'/').next().unwrap_or(path);
    excluded.contains(top)
}

/// `a/b/c` → `a/b`, `a` (then `""`).
fn ancestors(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut cur = path;
    std::iter::from_fn(move || {
        if cur.is_empty() {
            return None;
        }
        cur = match cur.iter().rposition(|b| *b == b'/') {
            Some(i) => &cur[..i],
            None => b"",
        };
        Some(cur)
    })
}

fn differs(node: &IndexNode, live: &InodeMeta, link: Option<&[u8]>) -> bool {
    if node.kind != live.kind {
        return true;
    }
    let owner_or_mode = u64::from(live.uid) != node.uid
        || u64::from(live.gid) != node.gid
        || live.perm != node.perm;
    match node.kind {
        // Directory mtimes move whenever an entry is added; children report those changes.
        InodeKind::Dir => owner_or_mode,
        InodeKind::File => owner_or_mode || live.size != node.size || live.mtime != node.mtime,
        InodeKind::Symlink => link != node.link.as_deref(),
        InodeKind::CharDevice | InodeKind::BlockDevice => owner_or_mode || live.rdev != node.rdev,
        InodeKind::Fifo | InodeKind::Socket => owner_or_mode,
    }
}

/// `./a//b/` → `a/b`; `None` for names that climb out (`..`), which no applier would create.
fn normalise(raw: &[u8]) -> Option<Vec<u8>> {
    let mut out: Vec<u8> = Vec::with_capacity(raw.len());
    for part in raw.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return None,
            p => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(p);
            }
        }
    }
    Some(out)
}

fn split_last(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|b| *b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (b"", path),
    }
}

fn join(parent: &[u8], name: &[u8]) -> Vec<u8> {
    let mut out = parent.to_vec();
    if !out.is_empty() {
        out.push(b'/');
    }
    out.extend_from_slice(name);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> LayerEntries {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, data, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(0o644);
            h.set_mtime(1_700_000_000);
            h.set_uid(0);
            h.set_gid(0);
            h.set_size(data.len() as u64);
            match link {
                Some(l) => b.append_link(&mut h, path, l).unwrap(),
                None => b.append_data(&mut h, path, *data).unwrap(),
            }
        }
        LayerEntries::read(&b.into_inner().unwrap()[..]).unwrap()
    }

    use tar::EntryType::{Directory as D, Link as L, Regular as F};

    #[test]
    fn whiteout_in_upper_layer_removes_lower_file_and_children() {
        let mut index = ImageIndex::new();
        index.apply(layer(&[
            ("etc/", D, b"", None),
            ("etc/a", F, b"1", None),
            ("etc/sub/", D, b"", None),
            ("etc/sub/x", F, b"1", None),
            ("etc/subway", F, b"1", None),
        ]));
        index.apply(layer(&[
            ("etc/.wh.a", F, b"", None),
            ("etc/.wh.sub", F, b"", None),
        ]));
        assert!(index.get("etc/a").is_none());
        assert!(index.get("etc/sub").is_none());
        assert!(index.get("etc/sub/x").is_none());
        assert!(index.get("etc/subway").is_some());
    }

    #[test]
    fn opaque_directory_hides_lower_entries_but_not_its_own_layer() {
        let mut index = ImageIndex::new();
        index.apply(layer(&[("d/", D, b"", None), ("d/old", F, b"1", None)]));
        index.apply(layer(&[
            ("d/new", F, b"22", None),
            ("d/.wh..wh..opq", F, b"", None),
        ]));
        assert!(index.get("d/old").is_none());
        assert_eq!(index.get("d/new").unwrap().size, 2);
    }

    #[test]
    fn hard_link_takes_its_targets_metadata() {
        let mut index = ImageIndex::new();
        index.apply(layer(&[("a", F, b"abc", None), ("b", L, b"", Some("./a"))]));
        assert_eq!(index.get("b").unwrap().size, 3);
        assert_eq!(index.get("b").unwrap().kind, InodeKind::File);
    }

    #[test]
    fn normalise_drops_dots_and_refuses_climbing() {
        assert_eq!(normalise(b"./a//b/").unwrap(), b"a/b");
        assert!(normalise(b"a/../../b").is_none());
        assert_eq!(normalise(b"./").unwrap(), b"");
    }

    #[test]
    fn ancestors_walk_up_to_the_root() {
        let all: Vec<&[u8]> = ancestors(b"a/b/c").collect();
        assert_eq!(all, vec![&b"a/b"[..], b"a", b""]);
    }
}
