//! A container as one tar stream: `<name>/manifest.json` and `<name>/rootfs/…`.
//!
//! The rootfs is read through [`crate::inode_walk`], so symlinks are archived as symlinks and
//! nothing mounted below the root is read. Entries keep numeric owners, permission bits
//! (setuid included), mtimes, hard links (as tar hard links), FIFOs and device nodes, and
//! extended attributes (PAX `SCHILY.xattr.*`, what GNU tar and the layer applier read). Sockets
//! cannot be recreated from an archive and are skipped.
//!
//! Headers are written by hand on top of [`tar::Header`]: long names and xattrs go into a PAX
//! header, and file bodies are copied in large chunks, exactly `size` bytes even when the file
//! shrinks or grows while it is read, so the stream never desynchronises.

use std::collections::HashMap;
use std::ffi::CStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{Mode, OFlags};
use tar::{EntryType, Header};

use crate::inode_walk::{self, InodeKind, Visit, WalkEntry};

/// Copy buffer for file bodies: big enough that syscalls do not dominate.
const CHUNK: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("cannot read '/{path}' in the container: {source}")]
    Read {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot write the archive: {0}")]
    Write(#[source] io::Error),
}

/// What the backup met, for the reporter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupEvent<'a> {
    /// An entry was archived (path relative to the rootfs).
    Archived(&'a str),
    /// A socket was skipped.
    SkippedSocket(&'a str),
    /// A mount point below the rootfs was not entered.
    SkippedMount(&'a str),
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BackupStats {
    pub entries: u64,
    pub bytes: u64,
}

/// Write the backup of the container `name` (rootfs at `rootfs`, record bytes `manifest`) to
/// `out` and finish the tar stream. `out` is returned so the caller can finish its encoder.
pub fn write_backup<W: Write>(
    name: &str,
    rootfs: &Path,
    manifest: Option<&[u8]>,
    out: W,
    on_event: &mut dyn FnMut(BackupEvent<'_>),
) -> Result<(W, BackupStats), BackupError> {
    let mut tar = TarWriter::new(out);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // No `<name>/` entry of its own: the published Python tool refuses archives that have one,
    // and the container directory has nothing worth keeping.
    if let Some(bytes) = manifest {
        let mut h = Header::new_gnu();
        h.set_entry_type(EntryType::Regular);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mode(0o644);
        h.set_mtime(now);
        h.set_size(bytes.len() as u64);
        tar.append(
            format!("{name}/manifest.json").as_bytes(),
            None,
            &mut h,
            &[],
            Some(&mut &bytes[..]),
        )
        .map_err(BackupError::Write)?;
    }

    let prefix = format!("{name}/rootfs");
    // First archive path of each multiply-linked inode, by (device, inode).
    let mut links: HashMap<((u32, u32), u64), Vec<u8>> = HashMap::new();
    let mut stats = BackupStats::default();
    let mut failure: Option<BackupError> = None;
    let mut mounts: Vec<Vec<u8>> = Vec::new();
    let mut buf = vec![0u8; CHUNK];

    let walked = inode_walk::walk(
        rootfs,
        &mut |entry: &WalkEntry<'_>| {
            let rel = String::from_utf8_lossy(entry.path).into_owned();
            let mut archive_path = prefix.clone().into_bytes();
            if !entry.path.is_empty() {
                archive_path.push(b'/');
                archive_path.extend_from_slice(entry.path);
            }
            if entry.meta.kind == InodeKind::Socket {
                on_event(BackupEvent::SkippedSocket(&rel));
                return Ok(Visit::Descend);
            }
            let res = archive_entry(
                &mut tar,
                entry,
                &archive_path,
                &mut links,
                &mut stats,
                &mut buf,
            );
            match res {
                Ok(()) => {
                    stats.entries += 1;
                    on_event(BackupEvent::Archived(&rel));
                    Ok(Visit::Descend)
                }
                Err(e) => {
                    let kind = e.kind();
                    failure = Some(e.into_backup_error(&rel));
                    Err(io::Error::new(kind, "stopped"))
                }
            }
        },
        &mut |p| mounts.push(p.to_vec()),
    );
    if let Some(err) = failure {
        return Err(err);
    }
    walked.map_err(|source| BackupError::Read {
        path: String::new(),
        source,
    })?;
    for m in &mounts {
        on_event(BackupEvent::SkippedMount(&String::from_utf8_lossy(m)));
    }
    let out = tar.finish().map_err(BackupError::Write)?;
    Ok((out, stats))
}

/// An error while archiving one entry: reading the container or writing the archive.
enum EntryError {
    Read(io::Error),
    Write(io::Error),
}

impl EntryError {
    fn kind(&self) -> io::ErrorKind {
        match self {
            EntryError::Read(e) | EntryError::Write(e) => e.kind(),
        }
    }
    fn into_backup_error(self, path: &str) -> BackupError {
        match self {
            EntryError::Read(source) => BackupError::Read {
                path: path.to_string(),
                source,
            },
            EntryError::Write(e) => BackupError::Write(e),
        }
    }
}

fn archive_entry<W: Write>(
    tar: &mut TarWriter<W>,
    entry: &WalkEntry<'_>,
    archive_path: &[u8],
    links: &mut HashMap<((u32, u32), u64), Vec<u8>>,
    stats: &mut BackupStats,
    buf: &mut [u8],
) -> Result<(), EntryError> {
    let meta = &entry.meta;
    let mut h = Header::new_gnu();
    h.set_mode(meta.perm);
    h.set_uid(u64::from(meta.uid));
    h.set_gid(u64::from(meta.gid));
    h.set_mtime(u64::try_from(meta.mtime).unwrap_or(0));
    h.set_size(0);

    if meta.kind != InodeKind::Dir && meta.nlink > 1 {
        let key = (meta.dev, meta.ino);
        if let Some(first) = links.get(&key) {
            h.set_entry_type(EntryType::Link);
            return tar
                .append(archive_path, Some(first), &mut h, &[], None)
                .map_err(EntryError::Write);
        }
        links.insert(key, archive_path.to_vec());
    }

    match meta.kind {
        InodeKind::Dir => {
            let mut path = archive_path.to_vec();
            path.push(b'/');
            let xattrs = if entry.path.is_empty() {
                read_xattrs_fd(entry.dir)
            } else {
                let fd =
                    inode_walk::open_dir_at(entry.dir, entry.name).map_err(EntryError::Read)?;
                read_xattrs_fd(fd.as_fd())
            };
            h.set_entry_type(EntryType::Directory);
            tar.append(&path, None, &mut h, &xattrs, None)
                .map_err(EntryError::Write)
        }
        InodeKind::File => {
            let file = inode_walk::open_file_at(entry.dir, entry.name).map_err(EntryError::Read)?;
            let xattrs = read_xattrs_fd(file.as_fd());
            h.set_entry_type(EntryType::Regular);
            h.set_size(meta.size);
            stats.bytes += meta.size;
            tar.append_file(archive_path, &mut h, &xattrs, file, meta.size, buf)
        }
        InodeKind::Symlink => {
            let target = rustix::fs::readlinkat(entry.dir, entry.name, Vec::new())
                .map_err(|e| EntryError::Read(e.into()))?;
            let xattrs = read_xattrs_path(entry.dir, entry.name);
            h.set_entry_type(EntryType::Symlink);
            h.set_mode(0o777);
            tar.append(archive_path, Some(target.as_bytes()), &mut h, &xattrs, None)
                .map_err(EntryError::Write)
        }
        InodeKind::Fifo | InodeKind::CharDevice | InodeKind::BlockDevice => {
            h.set_entry_type(match meta.kind {
                InodeKind::Fifo => EntryType::Fifo,
                InodeKind::CharDevice => EntryType::Char,
                _ => EntryType::Block,
            });
            if meta.kind != InodeKind::Fifo {
                h.set_device_major(meta.rdev.0).map_err(EntryError::Write)?;
                h.set_device_minor(meta.rdev.1).map_err(EntryError::Write)?;
            }
            let xattrs = read_xattrs_path(entry.dir, entry.name);
            tar.append(archive_path, None, &mut h, &xattrs, None)
                .map_err(EntryError::Write)
        }
        InodeKind::Socket => Ok(()),
    }
}

type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

/// Extended attributes of an open file or directory. Filesystems without xattrs give none.
fn read_xattrs_fd(fd: BorrowedFd<'_>) -> Xattrs {
    let mut names = vec![0u8; 64 * 1024];
    let Ok(len) = rustix::fs::flistxattr(fd, &mut names[..]) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut value = vec![0u8; 64 * 1024];
    for name in names[..len].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        if let Ok(n) = rustix::fs::fgetxattr(fd, name, &mut value[..]) {
            out.push((name.to_vec(), value[..n].to_vec()));
        }
    }
    out
}

/// Extended attributes of a symlink or device node: read through an `O_PATH` fd and its
/// `/proc/self/fd` magic link, which names the inode itself without opening it (opening a
/// FIFO would block, and a symlink cannot be opened at all).
fn read_xattrs_path(dir: BorrowedFd<'_>, name: &CStr) -> Xattrs {
    let Ok(fd) = rustix::fs::openat(
        dir,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return Vec::new();
    };
    read_xattrs_proc(&fd)
}

fn read_xattrs_proc(fd: &OwnedFd) -> Xattrs {
    use std::os::fd::AsRawFd;
    let proc_path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let mut names = vec![0u8; 64 * 1024];
    let Ok(len) = rustix::fs::listxattr(proc_path.as_str(), &mut names[..]) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut value = vec![0u8; 64 * 1024];
    for name in names[..len].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        if let Ok(n) = rustix::fs::getxattr(proc_path.as_str(), name, &mut value[..]) {
            out.push((name.to_vec(), value[..n].to_vec()));
        }
    }
    out
}

/// A tar stream written header by header.
struct TarWriter<W: Write> {
    out: W,
}

impl<W: Write> TarWriter<W> {
    fn new(out: W) -> Self {
        TarWriter { out }
    }

    /// Write `header` for `path` (with a PAX header first when the name or link does not fit,
    /// or when there are xattrs), then `data` (which must hold exactly `header.size` bytes).
    fn append(
        &mut self,
        path: &[u8],
        link: Option<&[u8]>,
        header: &mut Header,
        xattrs: &[(Vec<u8>, Vec<u8>)],
        data: Option<&mut dyn Read>,
    ) -> io::Result<()> {
        self.write_header(path, link, header, xattrs)?;
        if let Some(data) = data {
            let size = header.size()?;
            let copied = io::copy(&mut data.take(size), &mut self.out)?;
            if copied != size {
                return Err(io::Error::other("entry data shorter than its header"));
            }
            self.pad(size)?;
        }
        Ok(())
    }

    fn append_file(
        &mut self,
        path: &[u8],
        header: &mut Header,
        xattrs: &[(Vec<u8>, Vec<u8>)],
        mut file: File,
        size: u64,
        buf: &mut [u8],
    ) -> Result<(), EntryError> {
        self.write_header(path, None, header, xattrs)
            .map_err(EntryError::Write)?;
        let mut left = size;
        while left > 0 {
            let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = match file.read(&mut buf[..want]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(EntryError::Read(e)),
            };
            self.out.write_all(&buf[..n]).map_err(EntryError::Write)?;
            left -= n as u64;
        }
        // The file shrank while we read it: keep the stream aligned with the header we wrote.
        while left > 0 {
            let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            buf[..n].fill(0);
            self.out.write_all(&buf[..n]).map_err(EntryError::Write)?;
            left -= n as u64;
        }
        self.pad(size).map_err(EntryError::Write)
    }

    fn write_header(
        &mut self,
        path: &[u8],
        link: Option<&[u8]>,
        header: &mut Header,
        xattrs: &[(Vec<u8>, Vec<u8>)],
    ) -> io::Result<()> {
        const NAME_LEN: usize = 100;
        let mut pax: Vec<u8> = Vec::new();
        if path.len() > NAME_LEN {
            pax_record(&mut pax, b"path", path);
        }
        if let Some(link) = link {
            if link.len() > NAME_LEN {
                pax_record(&mut pax, b"linkpath", link);
            }
        }
        for (name, value) in xattrs {
            let mut key = b"SCHILY.xattr.".to_vec();
            key.extend_from_slice(name);
            pax_record(&mut pax, &key, value);
        }
        if !pax.is_empty() {
            let mut x = Header::new_ustar();
            x.set_entry_type(EntryType::XHeader);
            x.set_mode(0o644);
            x.set_size(pax.len() as u64);
            set_name_bytes(&mut x, b"././@PaxHeader");
            x.set_cksum();
            self.out.write_all(x.as_bytes())?;
            self.out.write_all(&pax)?;
            self.pad(pax.len() as u64)?;
        }
        set_name_bytes(header, &path[..path.len().min(NAME_LEN)]);
        if let Some(link) = link {
            let old = header.as_old_mut();
            old.linkname = [0; 100];
            let n = link.len().min(NAME_LEN);
            old.linkname[..n].copy_from_slice(&link[..n]);
        }
        header.set_cksum();
        self.out.write_all(header.as_bytes())
    }

    fn pad(&mut self, size: u64) -> io::Result<()> {
        let rem = (size % 512) as usize;
        if rem != 0 {
            self.out.write_all(&[0u8; 512][..512 - rem])?;
        }
        Ok(())
    }

    fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&[0u8; 1024])?;
        self.out.flush()?;
        Ok(self.out)
    }
}

fn set_name_bytes(header: &mut Header, name: &[u8]) {
    let old = header.as_old_mut();
    old.name = [0; 100];
    old.name[..name.len()].copy_from_slice(name);
}

/// One PAX record: `"<len> <key>=<value>\n"` where `<len>` counts itself.
fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn backup_of(root: &Path) -> Vec<u8> {
        let (bytes, _) = write_backup("box", root, Some(b"{}"), Vec::new(), &mut |_| {}).unwrap();
        bytes
    }

    #[test]
    fn pax_record_length_counts_itself() {
        let mut out = Vec::new();
        pax_record(&mut out, b"path", b"a");
        assert_eq!(out, b"9 path=a\n");
        let mut out = Vec::new();
        pax_record(&mut out, b"k", &[b'v'; 95]);
        assert_eq!(out.len(), 102);
        assert!(out.starts_with(b"102 k="));
    }

    #[test]
    fn archive_holds_manifest_rootfs_links_and_long_names() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rootfs");
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::write(root.join("bin/tool"), b"#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            root.join("bin/tool"),
            std::fs::Permissions::from_mode(0o4755),
        )
        .unwrap();
        std::fs::hard_link(root.join("bin/tool"), root.join("bin/alias")).unwrap();
        symlink("/", root.join("bin/evil")).unwrap();
        let long = "d".repeat(120);
        std::fs::create_dir_all(root.join(&long)).unwrap();
        std::fs::write(root.join(&long).join("f"), b"long").unwrap();

        let bytes = backup_of(&root);
        let mut archive = tar::Archive::new(&bytes[..]);
        let mut seen = Vec::new();
        for e in archive.entries().unwrap() {
            let mut e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let kind = e.header().entry_type();
            let link = e
                .link_name()
                .unwrap()
                .map(|l| l.to_string_lossy().into_owned());
            let mode = e.header().mode().unwrap();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            seen.push((path, kind, link, mode, data));
        }
        let find = |p: &str| {
            seen.iter()
                .find(|s| s.0 == p)
                .unwrap_or_else(|| panic!("{p}"))
        };
        assert_eq!(find("box/manifest.json").4, b"{}");
        assert_eq!(find("box/rootfs/").1, EntryType::Directory);
        assert_eq!(find("box/rootfs/bin/alias").1, EntryType::Regular);
        assert_eq!(find("box/rootfs/bin/alias").3, 0o4755);
        let tool = find("box/rootfs/bin/tool");
        assert_eq!(tool.1, EntryType::Link);
        assert_eq!(tool.2.as_deref(), Some("box/rootfs/bin/alias"));
        assert_eq!(find("box/rootfs/bin/evil").2.as_deref(), Some("/"));
        assert_eq!(find(&format!("box/rootfs/{long}/f")).4, b"long");
    }
}
