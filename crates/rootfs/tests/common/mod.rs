//! Test harness: tar streams with arbitrary (hostile) headers, a sandbox with a host canary
//! next to the container root, and re-running a test inside a private mount namespace.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use cd_rootfs::{apply_tar, ApplyError, ApplyOptions, ApplyStats, Rootfs};
use tar::{EntryType, Header};

pub const MTIME: u64 = 1_600_000_000;

/// A tar stream built header by header. Short names are written raw, unvalidated, so tests can
/// say `../x` or `/etc/passwd`; long names go through the builder's GNU long-name records.
pub struct Tar {
    b: tar::Builder<Vec<u8>>,
}

pub struct Spec<'a> {
    pub kind: EntryType,
    pub name: &'a [u8],
    pub link: &'a [u8],
    pub data: &'a [u8],
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub dev: (u32, u32),
}

impl<'a> Spec<'a> {
    pub fn new(kind: EntryType, name: &'a str) -> Self {
        Spec {
            kind,
            name: name.as_bytes(),
            link: b"",
            data: b"",
            mode: if kind == EntryType::Directory {
                0o755
            } else {
                0o644
            },
            uid: 0,
            gid: 0,
            mtime: MTIME,
            dev: (0, 0),
        }
    }
}

impl Default for Tar {
    fn default() -> Self {
        Tar::new()
    }
}

impl Tar {
    pub fn new() -> Self {
        Tar {
            b: tar::Builder::new(Vec::new()),
        }
    }

    pub fn entry(&mut self, s: Spec<'_>) -> &mut Self {
        let mut h = Header::new_gnu();
        h.set_entry_type(s.kind);
        h.set_size(s.data.len() as u64);
        h.set_mode(s.mode);
        h.set_uid(s.uid);
        h.set_gid(s.gid);
        h.set_mtime(s.mtime);
        if matches!(s.kind, EntryType::Char | EntryType::Block) {
            h.set_device_major(s.dev.0).unwrap();
            h.set_device_minor(s.dev.1).unwrap();
        }
        if s.name.len() < 100 && s.link.len() < 100 {
            let old = h.as_old_mut();
            old.name[..s.name.len()].copy_from_slice(s.name);
            old.linkname[..s.link.len()].copy_from_slice(s.link);
            h.set_cksum();
            self.b.append(&h, s.data).unwrap();
        } else {
            let name = std::str::from_utf8(s.name).unwrap();
            if s.link.is_empty() {
                self.b.append_data(&mut h, name, s.data).unwrap();
            } else {
                let link = std::str::from_utf8(s.link).unwrap();
                self.b.append_link(&mut h, name, link).unwrap();
            }
        }
        self
    }

    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        let mut s = Spec::new(EntryType::Regular, name);
        s.data = data;
        self.entry(s)
    }

    pub fn file_mode(
        &mut self,
        name: &str,
        data: &[u8],
        mode: u32,
        uid: u64,
        gid: u64,
    ) -> &mut Self {
        let mut s = Spec::new(EntryType::Regular, name);
        s.data = data;
        s.mode = mode;
        s.uid = uid;
        s.gid = gid;
        self.entry(s)
    }

    pub fn dir(&mut self, name: &str) -> &mut Self {
        self.entry(Spec::new(EntryType::Directory, name))
    }

    pub fn dir_mode(&mut self, name: &str, mode: u32, mtime: u64) -> &mut Self {
        let mut s = Spec::new(EntryType::Directory, name);
        s.mode = mode;
        s.mtime = mtime;
        self.entry(s)
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        let mut s = Spec::new(EntryType::Symlink, name);
        s.link = target.as_bytes();
        s.mode = 0o777;
        self.entry(s)
    }

    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        let mut s = Spec::new(EntryType::Link, name);
        s.link = target.as_bytes();
        self.entry(s)
    }

    /// A regular file preceded by a PAX header with these records.
    pub fn pax_file(&mut self, name: &str, data: &[u8], pax: &[(&str, &[u8])]) -> &mut Self {
        let mut body = Vec::new();
        for (key, value) in pax {
            // "LEN key=value\n", where LEN counts its own digits too.
            let rest = key.len() + value.len() + 3;
            let mut len = rest + 1;
            while len.to_string().len() + rest != len {
                len += 1;
            }
            body.extend_from_slice(format!("{len} {key}=").as_bytes());
            body.extend_from_slice(value);
            body.push(b'\n');
        }
        let mut s = Spec::new(EntryType::XHeader, "PaxHeaders/entry");
        s.data = &body;
        self.entry(s);
        self.file(name, data)
    }

    pub fn bytes(&mut self) -> Vec<u8> {
        let b = std::mem::replace(&mut self.b, tar::Builder::new(Vec::new()));
        b.into_inner().unwrap()
    }
}

/// A temp directory holding `root/` (the container) and `host/canary` (stands for the host).
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub root: Rootfs,
}

pub const CANARY: &[u8] = b"host data, must never change\n";

impl Sandbox {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("host")).unwrap();
        std::fs::write(dir.path().join("host/canary"), CANARY).unwrap();
        let root = Rootfs::create(dir.path().join("root")).unwrap();
        Sandbox { dir, root }
    }

    pub fn root_path(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn host_path(&self) -> PathBuf {
        self.dir.path().join("host")
    }

    pub fn p(&self, rel: &str) -> PathBuf {
        self.root_path().join(rel)
    }

    pub fn apply(&self, tar: &[u8], opts: &ApplyOptions) -> Result<ApplyStats, ApplyError> {
        apply_tar(&self.root, tar, opts, &mut |_| {})
    }

    pub fn layer(&self, tar: &[u8]) -> ApplyStats {
        let opts = ApplyOptions {
            oci_whiteouts: true,
            ..ApplyOptions::default()
        };
        self.apply(tar, &opts).unwrap()
    }

    /// Everything outside `root/`: names, sizes, modes, content of files.
    pub fn outside(&self) -> BTreeMap<PathBuf, (u32, Vec<u8>)> {
        let mut out = BTreeMap::new();
        for e in walkdir::WalkDir::new(self.dir.path()).follow_links(false) {
            let e = e.unwrap();
            if e.path().starts_with(self.root_path()) {
                continue;
            }
            let m = e.path().symlink_metadata().unwrap();
            let content = if m.is_file() {
                std::fs::read(e.path()).unwrap()
            } else {
                Vec::new()
            };
            out.insert(e.path().to_path_buf(), (m.mode(), content));
        }
        out
    }

    pub fn assert_host_untouched(&self, before: &BTreeMap<PathBuf, (u32, Vec<u8>)>) {
        assert_eq!(
            &self.outside(),
            before,
            "something outside the root changed"
        );
        assert_eq!(
            std::fs::read(self.host_path().join("canary")).unwrap(),
            CANARY
        );
    }
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Run the calling test again inside `unshare -m --propagation private`, where it may mount
/// freely. Returns `true` in the child (go on with the test) and `false` in the parent (which
/// has already asserted the child passed). `None`: `unshare` is not usable here.
pub fn in_private_mount_ns(test_name: &str) -> Option<bool> {
    const MARK: &str = "CD_ROOTFS_TEST_IN_MOUNT_NS";
    if std::env::var_os(MARK).is_some() {
        return Some(true);
    }
    if !is_root() {
        return None;
    }
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private"])
        .arg(&exe)
        .args([
            "--exact",
            test_name,
            "--nocapture",
            "--include-ignored",
            "--test-threads=1",
        ])
        .env(MARK, "1")
        .output()
        .ok()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{test_name} failed in the mount namespace:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("1 passed"),
        "the test did not run:\n{stdout}"
    );
    Some(false)
}

pub fn mount(args: &[&str]) {
    let st = Command::new("mount").args(args).status().unwrap();
    assert!(st.success(), "mount {args:?}");
}

pub fn meta(p: &Path) -> std::fs::Metadata {
    p.symlink_metadata()
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}
