//! Cross-check with an independent implementation: the tree `install` makes from a registry
//! must equal what `umoci unpack` makes from the same OCI layout (types, modes, owners, sizes,
//! contents, link targets, mtimes, hard-link groups), apart from the two files `install`
//! writes on purpose (/etc/resolv.conf and /etc/hosts).

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use super::*;

#[derive(Debug, PartialEq, Eq)]
struct Node {
    kind: &'static str,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    size: u64,
    content: Option<String>,
    link: Option<PathBuf>,
    /// The smallest path of the file's hard-link group (walk order differs between trees).
    group: Option<PathBuf>,
}

fn snapshot(root: &Path) -> BTreeMap<PathBuf, Node> {
    let mut out = BTreeMap::new();
    let mut groups: BTreeMap<(u64, u64), Vec<PathBuf>> = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let full = root.join(&rel);
        let m = full.symlink_metadata().unwrap();
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
                .then(|| cd_testkit::fixture::sha256_hex(&std::fs::read(&full).unwrap())),
            link: (kind == "symlink").then(|| std::fs::read_link(&full).unwrap()),
            group: None,
        };
        if kind == "dir" {
            for e in std::fs::read_dir(&full).unwrap() {
                stack.push(rel.join(e.unwrap().file_name()));
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

#[test]
fn install_makes_the_same_tree_as_umoci_unpack() {
    let image = super::real::rich_image();
    let dir = tempfile::tempdir().unwrap();
    let mut layout = OciLayout::create(&dir.path().join("oci"));
    layout.add_image("t", &image);
    let reg = LocalRegistry::start_plain();
    reg.push_oci_dir(&dir.path().join("oci"), "t", "rich:1", &[]);

    let bundle = dir.path().join("bundle");
    let out = std::process::Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:t", dir.path().join("oci").display()))
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(out.status.success(), "umoci: {}", describe(&out));

    let env = test_env();
    let out = env.run(["install", &format!("{}/rich:1", reg.host_port())]);
    assert!(out.status.success(), "{}", describe(&out));

    let mut ours = snapshot(&env.rootfs("rich"));
    let mut theirs = snapshot(&bundle.join("rootfs"));
    for fixup in ["etc/resolv.conf", "etc/hosts"] {
        ours.remove(Path::new(fixup));
        theirs.remove(Path::new(fixup));
    }
    // umoci gives the bundle's rootfs directory its own mode; the image does not say.
    ours.remove(Path::new(""));
    theirs.remove(Path::new(""));
    let only_ours: Vec<_> = ours.keys().filter(|k| !theirs.contains_key(*k)).collect();
    let only_theirs: Vec<_> = theirs.keys().filter(|k| !ours.contains_key(*k)).collect();
    assert!(
        only_ours.is_empty() && only_theirs.is_empty(),
        "only in ours: {only_ours:?}; only in umoci's: {only_theirs:?}"
    );
    for (path, node) in &ours {
        assert_eq!(node, &theirs[path], "/{}", path.display());
    }
    assert!(
        ours.len() > 40,
        "the comparison saw too little: {}",
        ours.len()
    );
}
