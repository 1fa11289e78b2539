//! Reading a backup back: `<name>/manifest.json` and `<name>/rootfs/…`, nothing else.
//!
//! The rootfs is extracted by the layer applier ([`crate::apply_tar`] with `only_under` set to
//! `<name>/rootfs`), so a backup gets exactly the protections a layer gets: every name resolved
//! inside the root, symlinks planted earlier in the archive never written through, `..` refused,
//! directory metadata applied last.
//!
//! What the applier does not know is the shape of a backup, so a [`Watch`] sits between the
//! stream and the applier. It follows the tar framing of the bytes the applier reads
//! (`cd_archive::tar_framing`: the same headers, long names, PAX records and sparse maps the tar
//! crate honours), learns the container
//! name from the first entry, keeps `manifest.json`, and stops the stream with an error at the
//! first entry that has no place in a backup: a bare rootfs, an absolute or `..` name, a second
//! top-level name, a hard link to something outside the rootfs. The applier then fails, and
//! the caller's staging directory is thrown away.

use std::io::{self, Cursor, Read};
use std::path::{Path, PathBuf};

use cd_archive::tar_framing::{EntryHead, FramingTrouble, TarFraming, TarWatcher};
use tar::EntryType;

use crate::apply::{apply_tar, ApplyError, ApplyOptions, Skipped};
use crate::root::Rootfs;

/// `manifest.json` larger than this is not a container record.
const MANIFEST_LIMIT: u64 = 16 * 1024 * 1024;
const BLOCK: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("the archive is not a chroot-distro backup: {0}")]
    NotABackup(String),
    #[error("the archive holds an unsafe name '{0}'; refusing to restore it")]
    UnsafeName(String),
    #[error("cannot read the archive: {0}")]
    Archive(#[source] io::Error),
    #[error("cannot restore into '{path}': {source}")]
    Write {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error("{0}")]
    Refused(String),
}

impl UnpackError {
    /// Whether the restore ran out of disk space.
    pub fn is_storage_full(&self) -> bool {
        match self {
            UnpackError::Archive(e) | UnpackError::Write { source: e, .. } => {
                e.kind() == io::ErrorKind::StorageFull
            }
            UnpackError::Apply(e) => e.is_storage_full(),
            _ => false,
        }
    }
}

/// What was restored.
#[derive(Debug, Default)]
pub struct Unpacked {
    pub name: String,
    pub manifest: Option<Vec<u8>>,
    /// Rootfs entries applied.
    pub entries: u64,
    /// Rootfs entries the applier could not apply (the first [`crate::apply::MAX_SKIPS`]).
    pub skips: Vec<Skipped>,
    /// Extended attributes the filesystem or our privileges did not allow.
    pub xattr_failures: u64,
}

/// Extract a backup stream. `prepare(name)` is called once the container name is known (from
/// the first entry) and returns the empty directory the rootfs goes into. `on_entry` sees the
/// rootfs-relative path of every applied entry.
pub fn unpack_backup(
    reader: impl Read,
    prepare: &mut dyn FnMut(&str) -> Result<PathBuf, String>,
    on_entry: &mut dyn FnMut(&str),
) -> Result<Unpacked, UnpackError> {
    let mut watch = Watch::new(reader);
    // Read just far enough to know the name; the bytes are replayed to the applier.
    let mut head = Vec::new();
    let mut chunk = [0u8; BLOCK];
    while watch.shape.name.is_none() {
        match watch.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(watch.error.take().unwrap_or(UnpackError::Archive(e))),
        }
    }
    let Some(name) = watch.shape.name.clone() else {
        return Err(UnpackError::NotABackup("it is empty".into()));
    };
    let dir = prepare(&name).map_err(UnpackError::Refused)?;
    let root = Rootfs::open(&dir).map_err(|source| UnpackError::Write {
        path: dir.display().to_string(),
        source,
    })?;
    let opts = ApplyOptions {
        only_under: Some(Path::new(&name).join("rootfs")),
        ..ApplyOptions::default()
    };
    let applied = apply_tar(
        &root,
        Cursor::new(head).chain(&mut watch),
        &opts,
        &mut |p| on_entry(&p.to_string_lossy()),
    );
    // A refusal surfaces in the applier as a read error: report the refusal itself.
    if let Some(err) = watch.error.take() {
        return Err(err);
    }
    let stats = applied?;
    Ok(Unpacked {
        name,
        manifest: watch.shape.manifest.take(),
        entries: stats.entries,
        skips: stats.skips,
        xattr_failures: stats.xattr_failures,
    })
}

fn bare_root(shown: &str) -> UnpackError {
    UnpackError::NotABackup(format!(
        "'{shown}' is not under NAME/manifest.json or NAME/rootfs/ (a bare rootfs tarball \
         is installed with 'chroot-distro install FILE', not restored)"
    ))
}

/// Split a name into components, dropping `.` and empty ones; `None` for `..` or an absolute
/// name.
fn components(raw: &[u8]) -> Option<Vec<&[u8]>> {
    if raw.starts_with(b"/") {
        return None;
    }
    let mut out = Vec::new();
    for part in raw.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return None,
            p => out.push(p),
        }
    }
    Some(out)
}

/// A reader that follows the tar framing of what passes through it and polices the names.
struct Watch<R> {
    inner: R,
    framing: TarFraming,
    shape: Shape,
    error: Option<UnpackError>,
}

/// What the entries seen so far say: the container name, and its record.
#[derive(Default)]
struct Shape {
    name: Option<String>,
    manifest: Option<Vec<u8>>,
}

impl<R: Read> Read for Watch<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.error.is_none() {
            let n = self.inner.read(buf)?;
            match self.framing.feed(&buf[..n], &mut self.shape) {
                Ok(()) => return Ok(n),
                Err(e) => self.error = Some(e),
            }
        }
        Err(io::Error::other("the backup was refused"))
    }
}

impl<R> Watch<R> {
    fn new(inner: R) -> Self {
        Watch {
            inner,
            framing: TarFraming::default(),
            shape: Shape::default(),
            error: None,
        }
    }
}

impl TarWatcher for Shape {
    type Error = UnpackError;

    fn entry(&mut self, head: &EntryHead<'_>) -> Result<bool, UnpackError> {
        let sink = self.check(head.path, head.kind, head.link, head.size)?;
        Ok(sink == Sink::Manifest)
    }

    fn data(&mut self, data: Vec<u8>) {
        self.manifest = Some(data);
    }

    fn trouble(&mut self, trouble: FramingTrouble) -> Option<UnpackError> {
        Some(match trouble {
            FramingTrouble::BadHeader(e) => UnpackError::Archive(e),
            FramingTrouble::BadPaxSize => {
                UnpackError::NotABackup("a PAX size is not a number".into())
            }
            FramingTrouble::Oversized(_) => {
                UnpackError::NotABackup("a long name or PAX record is unreasonably large".into())
            }
        })
    }
}

/// What an entry's data is kept for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sink {
    Skip,
    Manifest,
}

impl Shape {
    /// Whether an entry belongs in a backup, and what its data is kept for.
    fn check(
        &mut self,
        raw: &[u8],
        kind: EntryType,
        link: Option<&[u8]>,
        size: u64,
    ) -> Result<Sink, UnpackError> {
        let shown = String::from_utf8_lossy(raw).into_owned();
        let parts = components(raw).ok_or_else(|| UnpackError::UnsafeName(shown.clone()))?;
        let Some((top, rest)) = parts.split_first() else {
            return Ok(Sink::Skip);
        };
        match &self.name {
            None => {
                if rest.is_empty() && kind != EntryType::Directory {
                    return Err(bare_root(&shown));
                }
                let name =
                    std::str::from_utf8(top).map_err(|_| UnpackError::UnsafeName(shown.clone()))?;
                self.name = Some(name.to_string());
            }
            Some(name) if name.as_bytes() != *top => {
                return Err(UnpackError::NotABackup(format!(
                    "it holds both '{name}/' and '{}/'; a backup holds one container",
                    String::from_utf8_lossy(top)
                )));
            }
            Some(_) => {}
        }
        match rest {
            [] => Ok(Sink::Skip),
            [m] if *m == b"manifest.json" => {
                if size > MANIFEST_LIMIT {
                    return Err(UnpackError::NotABackup("manifest.json is too large".into()));
                }
                Ok(Sink::Manifest)
            }
            [r, ..] if *r == b"rootfs" => {
                if kind == EntryType::Link {
                    let target = link.unwrap_or_default();
                    let unsafe_target =
                        || UnpackError::UnsafeName(String::from_utf8_lossy(target).into_owned());
                    match components(target).ok_or_else(unsafe_target)?.as_slice() {
                        [t, r, ..] if t == top && *r == b"rootfs" => {}
                        _ => return Err(unsafe_target()),
                    }
                }
                Ok(Sink::Skip)
            }
            _ => Err(bare_root(&shown)),
        }
    }
}

#[cfg(test)]
mod tests {
    use tar::Header;

    use super::*;

    #[test]
    fn components_refuse_climbing_and_absolute_names() {
        assert!(components(b"box/rootfs/../../etc").is_none());
        assert!(components(b"/box/rootfs").is_none());
        assert_eq!(components(b"./box//rootfs/").unwrap().len(), 2);
    }

    fn backup_with_long_names() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut dir = Header::new_gnu();
        dir.set_entry_type(EntryType::Directory);
        dir.set_mode(0o755);
        dir.set_size(0);
        b.append_data(&mut dir.clone(), "box/", io::empty())
            .unwrap();
        let manifest = br#"{"image":"x"}"#;
        let mut m = Header::new_gnu();
        m.set_mode(0o644);
        m.set_size(manifest.len() as u64);
        b.append_data(&mut m, "box/manifest.json", &manifest[..])
            .unwrap();
        b.append_data(&mut dir, "box/rootfs/", io::empty()).unwrap();
        let long = format!("box/rootfs/{}/file", "d".repeat(150));
        let mut f = Header::new_gnu();
        f.set_mode(0o644);
        f.set_size(5);
        b.append_data(&mut f, &long, &b"hello"[..]).unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn the_watcher_follows_long_names_and_keeps_the_manifest() {
        let bytes = backup_with_long_names();
        // Fed in awkward pieces, as a pipe would deliver them.
        let mut watch = Watch::new(&bytes[..]);
        let mut buf = [0u8; 77];
        while watch.read(&mut buf).unwrap() > 0 {}
        assert!(watch.error.is_none());
        assert_eq!(watch.shape.name.as_deref(), Some("box"));
        assert_eq!(
            watch.shape.manifest.as_deref(),
            Some(&br#"{"image":"x"}"#[..])
        );
    }

    #[test]
    fn pax_paths_and_sizes_are_honoured() {
        let mut b = tar::Builder::new(Vec::new());
        let mut f = Header::new_ustar();
        f.set_mode(0o644);
        f.set_size(3);
        b.append_data(&mut f.clone(), "box/rootfs/a", &b"abc"[..])
            .unwrap();
        b.append_pax_extensions([
            ("path", &b"box/manifest.json"[..]),
            ("SCHILY.xattr.user.k", &b"v"[..]),
        ])
        .unwrap();
        b.append_data(&mut f, "ignored-name", &b"{}x"[..]).unwrap();
        let bytes = b.into_inner().unwrap();
        let mut watch = Watch::new(&bytes[..]);
        let mut sink = Vec::new();
        watch.read_to_end(&mut sink).unwrap();
        assert!(watch.error.is_none());
        assert_eq!(watch.shape.manifest.as_deref(), Some(&b"{}x"[..]));
    }

    #[test]
    fn a_long_name_outside_the_rootfs_is_refused() {
        let mut b = tar::Builder::new(Vec::new());
        let mut f = Header::new_gnu();
        f.set_mode(0o644);
        f.set_size(1);
        b.append_data(&mut f.clone(), "box/rootfs/a", &b"x"[..])
            .unwrap();
        let long = format!("box/{}", "e".repeat(200));
        b.append_data(&mut f, &long, &b"x"[..]).unwrap();
        let bytes = b.into_inner().unwrap();
        let mut watch = Watch::new(&bytes[..]);
        let mut sink = Vec::new();
        assert!(watch.read_to_end(&mut sink).is_err());
        assert!(matches!(watch.error, Some(UnpackError::NotABackup(_))));
    }
}
