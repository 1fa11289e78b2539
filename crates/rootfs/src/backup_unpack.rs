//! Reading a backup back: `<name>/manifest.json` and `<name>/rootfs/…`, nothing else.
//!
//! Every rootfs entry is created inside the destination root through pathrs (`RESOLVE_IN_ROOT`),
//! so an archive that first plants `rootfs/etc -> /` and then writes `rootfs/etc/passwd` writes
//! the container's file, not the host's. Names with `..`, absolute names, entries outside
//! `<name>/` and a second top-level name are refused before anything is written for them.
//! Directory modes, owners and mtimes are applied last, deepest first, so a read-only directory
//! in the archive does not stop its own children from being extracted.

use std::ffi::CString;
use std::fs::Permissions;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use pathrs::flags::OpenFlags;
use pathrs::{InodeType, Root};
use rustix::fs::{AtFlags, Mode, Timespec, Timestamps};
use tar::EntryType;

/// `manifest.json` larger than this is not a container record.
const MANIFEST_LIMIT: u64 = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("the archive is not a chroot-distro backup: {0}")]
    NotABackup(String),
    #[error("the archive holds an unsafe name '{0}'; refusing to restore it")]
    UnsafeName(String),
    #[error("cannot read the archive: {0}")]
    Archive(#[source] io::Error),
    #[error("cannot restore '{path}': {source}")]
    Write {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Refused(String),
}

/// What was restored.
#[derive(Debug, Default)]
pub struct Unpacked {
    pub name: String,
    pub manifest: Option<Vec<u8>>,
    pub entries: u64,
}

/// Extract a backup stream. `prepare(name)` is called once the container name is known (from
/// the first entry) and returns the empty directory the rootfs goes into.
pub fn unpack_backup(
    reader: impl Read,
    prepare: &mut dyn FnMut(&str) -> Result<PathBuf, String>,
    on_entry: &mut dyn FnMut(&str),
) -> Result<Unpacked, UnpackError> {
    let mut archive = tar::Archive::new(reader);
    let mut out = Unpacked::default();
    let mut root: Option<Root> = None;
    let mut dirs: Vec<(Vec<u8>, DirMeta)> = Vec::new();

    for entry in archive.entries().map_err(UnpackError::Archive)? {
        let mut entry = entry.map_err(UnpackError::Archive)?;
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let parts = components(&raw).ok_or_else(|| UnpackError::UnsafeName(shown.clone()))?;
        let Some((top, rest)) = parts.split_first() else {
            continue;
        };
        let top = String::from_utf8_lossy(top).into_owned();
        if out.name.is_empty() {
            if rest.is_empty() && entry.header().entry_type() != EntryType::Directory {
                return Err(bare_root(&shown));
            }
            out.name = top.clone();
            let dir = prepare(&top).map_err(UnpackError::Refused)?;
            root = Some(Root::open(&dir).map_err(|e| UnpackError::Write {
                path: dir.display().to_string(),
                source: crate::transfer::pathrs_io(e),
            })?);
        } else if top != out.name {
            return Err(UnpackError::NotABackup(format!(
                "it holds both '{}/' and '{top}/'; a backup holds one container",
                out.name
            )));
        }
        let Some(root) = root.as_ref() else { continue };
        match rest {
            [] => continue,
            [m] if m.as_slice() == b"manifest.json" => {
                if entry.size() > MANIFEST_LIMIT {
                    return Err(UnpackError::NotABackup("manifest.json is too large".into()));
                }
                let mut bytes = Vec::new();
                entry
                    .read_to_end(&mut bytes)
                    .map_err(UnpackError::Archive)?;
                out.manifest = Some(bytes);
            }
            [r, inner @ ..] if r.as_slice() == b"rootfs" => {
                let rel = inner.join(&b'/');
                extract(root, &mut entry, &rel, &out.name, &mut dirs)?;
                out.entries += 1;
                on_entry(&String::from_utf8_lossy(&rel));
            }
            _ => return Err(bare_root(&shown)),
        }
    }
    if out.name.is_empty() {
        return Err(UnpackError::NotABackup("it is empty".into()));
    }
    let root = root.ok_or_else(|| UnpackError::NotABackup("it is empty".into()))?;
    // Deepest first, so setting a parent's mtime is the last touch it gets.
    dirs.sort_by_key(|d| std::cmp::Reverse(d.0.len()));
    for (rel, meta) in dirs {
        finish_dir(&root, &rel, &meta).map_err(|source| UnpackError::Write {
            path: String::from_utf8_lossy(&rel).into_owned(),
            source,
        })?;
    }
    Ok(out)
}

fn bare_root(shown: &str) -> UnpackError {
    UnpackError::NotABackup(format!(
        "'{shown}' is not under NAME/manifest.json or NAME/rootfs/ (a bare rootfs tarball \
         is installed with 'chroot-distro install FILE', not restored)"
    ))
}

/// Split a name into components, dropping `.` and empty ones; `None` for `..` or an absolute
/// name.
fn components(raw: &[u8]) -> Option<Vec<Vec<u8>>> {
    if raw.starts_with(b"/") {
        return None;
    }
    let mut out = Vec::new();
    for part in raw.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return None,
            p => out.push(p.to_vec()),
        }
    }
    Some(out)
}

struct DirMeta {
    perm: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    xattrs: Xattrs,
}

type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

fn extract<R: Read>(
    root: &Root,
    entry: &mut tar::Entry<'_, R>,
    rel: &[u8],
    name: &str,
    dirs: &mut Vec<(Vec<u8>, DirMeta)>,
) -> Result<(), UnpackError> {
    let shown = || String::from_utf8_lossy(rel).into_owned();
    let wr = |source: io::Error| UnpackError::Write {
        path: shown(),
        source,
    };
    let header = entry.header().clone();
    let perm = header.mode().map_err(UnpackError::Archive)? & 0o7777;
    let uid = u32::try_from(header.uid().map_err(UnpackError::Archive)?).unwrap_or(0);
    let gid = u32::try_from(header.gid().map_err(UnpackError::Archive)?).unwrap_or(0);
    let mtime = i64::try_from(header.mtime().map_err(UnpackError::Archive)?).unwrap_or(0);
    let xattrs = read_xattrs(entry)?;
    let path = Path::new("/").join(std::ffi::OsStr::from_bytes(rel));
    let kind = header.entry_type();

    if rel.is_empty() || kind == EntryType::Directory {
        if !rel.is_empty() {
            root.mkdir_all(&path, &Permissions::from_mode(0o700))
                .map_err(|e| wr(crate::transfer::pathrs_io(e)))?;
        }
        dirs.push((
            rel.to_vec(),
            DirMeta {
                perm,
                uid,
                gid,
                mtime,
                xattrs,
            },
        ));
        return Ok(());
    }
    let (parent, base) = match rel.iter().rposition(|b| *b == b'/') {
        Some(i) => (&rel[..i], &rel[i + 1..]),
        None => (&b""[..], rel),
    };
    let parent_path = Path::new("/").join(std::ffi::OsStr::from_bytes(parent));
    let parent_dir: OwnedFd = root
        .mkdir_all(&parent_path, &Permissions::from_mode(0o755))
        .and_then(|h| h.reopen(OpenFlags::O_RDONLY | OpenFlags::O_DIRECTORY))
        .map(OwnedFd::from)
        .map_err(|e| wr(crate::transfer::pathrs_io(e)))?;
    let base = CString::new(base).map_err(|_| UnpackError::UnsafeName(shown()))?;
    // A later entry of the same name replaces an earlier one, as tar does.
    let _ = rustix::fs::unlinkat(&parent_dir, &base, AtFlags::empty());

    match kind {
        EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
            let fd = rustix::fs::openat(
                &parent_dir,
                &base,
                rustix::fs::OFlags::WRONLY
                    | rustix::fs::OFlags::CREATE
                    | rustix::fs::OFlags::EXCL
                    | rustix::fs::OFlags::NOFOLLOW
                    | rustix::fs::OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
            .map_err(|e| wr(e.into()))?;
            let mut file = std::fs::File::from(fd);
            io::copy(entry, &mut file).map_err(UnpackError::Archive)?;
            let res = (|| -> io::Result<()> {
                rustix::fs::fchown(&file, uid_of(uid), gid_of(gid))?;
                for (k, v) in &xattrs {
                    let _ = rustix::fs::fsetxattr(
                        &file,
                        k.as_slice(),
                        v,
                        rustix::fs::XattrFlags::empty(),
                    );
                }
                rustix::fs::fchmod(&file, Mode::from_raw_mode(perm))?;
                rustix::fs::futimens(&file, &times(mtime))?;
                Ok(())
            })();
            res.map_err(wr)
        }
        EntryType::Symlink => {
            let target = entry.link_name_bytes().ok_or_else(|| {
                UnpackError::NotABackup(format!("symlink '{}' has no target", shown()))
            })?;
            rustix::fs::symlinkat(target.as_ref(), &parent_dir, &base).map_err(|e| wr(e.into()))?;
            set_meta_at(&parent_dir, &base, uid, gid, None, mtime).map_err(wr)
        }
        EntryType::Link => {
            let target = entry.link_name_bytes().ok_or_else(|| {
                UnpackError::NotABackup(format!("hard link '{}' has no target", shown()))
            })?;
            let parts = components(&target).ok_or_else(|| {
                UnpackError::UnsafeName(String::from_utf8_lossy(&target).into_owned())
            })?;
            let inside = match parts.as_slice() {
                [top, r, inner @ ..]
                    if top.as_slice() == name.as_bytes() && r.as_slice() == b"rootfs" =>
                {
                    inner.join(&b'/')
                }
                _ => {
                    return Err(UnpackError::UnsafeName(
                        String::from_utf8_lossy(&target).into_owned(),
                    ))
                }
            };
            let target_path = Path::new("/").join(std::ffi::OsStr::from_bytes(&inside));
            root.create(&path, &InodeType::Hardlink(target_path))
                .map_err(|e| wr(crate::transfer::pathrs_io(e)))
        }
        EntryType::Fifo | EntryType::Char | EntryType::Block => {
            let p = Permissions::from_mode(perm);
            let dev = rustix::fs::makedev(
                header.device_major().ok().flatten().unwrap_or(0),
                header.device_minor().ok().flatten().unwrap_or(0),
            );
            let inode = match kind {
                EntryType::Fifo => InodeType::Fifo(p),
                EntryType::Char => InodeType::CharacterDevice(p, dev),
                _ => InodeType::BlockDevice(p, dev),
            };
            root.create(&path, &inode)
                .map_err(|e| wr(crate::transfer::pathrs_io(e)))?;
            set_meta_at(&parent_dir, &base, uid, gid, Some(perm), mtime).map_err(wr)
        }
        // Meta entries are consumed by the tar reader; anything else has no place in a rootfs.
        _ => Ok(()),
    }
}

fn read_xattrs<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Xattrs, UnpackError> {
    let mut out = Vec::new();
    if let Some(exts) = entry.pax_extensions().map_err(UnpackError::Archive)? {
        for ext in exts {
            let ext = ext.map_err(UnpackError::Archive)?;
            if let Some(name) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") {
                out.push((name.to_vec(), ext.value_bytes().to_vec()));
            }
        }
    }
    Ok(out)
}

/// Owner, mode (not for symlinks) and mtime of a just-created non-directory in a staging tree
/// that no one else writes to.
fn set_meta_at(
    dir: &OwnedFd,
    name: &CString,
    uid: u32,
    gid: u32,
    perm: Option<u32>,
    mtime: i64,
) -> io::Result<()> {
    rustix::fs::chownat(
        dir,
        name,
        uid_of(uid),
        gid_of(gid),
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    if let Some(perm) = perm {
        rustix::fs::chmodat(dir, name, Mode::from_raw_mode(perm), AtFlags::empty())?;
    }
    let _ = rustix::fs::utimensat(dir, name, &times(mtime), AtFlags::SYMLINK_NOFOLLOW);
    Ok(())
}

fn finish_dir(root: &Root, rel: &[u8], meta: &DirMeta) -> io::Result<()> {
    let path = Path::new("/").join(std::ffi::OsStr::from_bytes(rel));
    let dir = root
        .resolve_nofollow(&path)
        .and_then(|h| h.reopen(OpenFlags::O_RDONLY | OpenFlags::O_DIRECTORY))
        .map_err(crate::transfer::pathrs_io)?;
    rustix::fs::fchown(dir.as_fd(), uid_of(meta.uid), gid_of(meta.gid))?;
    for (k, v) in &meta.xattrs {
        let _ = rustix::fs::fsetxattr(
            dir.as_fd(),
            k.as_slice(),
            v,
            rustix::fs::XattrFlags::empty(),
        );
    }
    rustix::fs::fchmod(dir.as_fd(), Mode::from_raw_mode(meta.perm))?;
    rustix::fs::futimens(dir.as_fd(), &times(meta.mtime))?;
    Ok(())
}

fn times(mtime: i64) -> Timestamps {
    let ts = Timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    Timestamps {
        last_access: ts,
        last_modification: ts,
    }
}

/// `-1` means "leave unchanged" to chown(2), never an owner to set.
fn uid_of(n: u32) -> Option<rustix::fs::Uid> {
    (n != u32::MAX).then(|| rustix::fs::Uid::from_raw(n))
}

fn gid_of(n: u32) -> Option<rustix::fs::Gid> {
    (n != u32::MAX).then(|| rustix::fs::Gid::from_raw(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_refuse_climbing_and_absolute_names() {
        assert!(components(b"box/rootfs/../../etc").is_none());
        assert!(components(b"/box/rootfs").is_none());
        assert_eq!(components(b"./box//rootfs/").unwrap().len(), 2);
    }
}
