//! Reading a backup back: `<name>/manifest.json` and `<name>/rootfs/…`, nothing else.
//!
//! The rootfs is extracted by the layer applier ([`crate::apply_tar`] with `only_under` set to
//! `<name>/rootfs`), so a backup gets exactly the protections a layer gets: every name resolved
//! inside the root, symlinks planted earlier in the archive never written through, `..` refused,
//! directory metadata applied last.
//!
//! What the applier does not know is the shape of a backup, so a [`Watch`] sits between the
//! stream and the applier. It follows the tar framing of the bytes the applier reads (the same
//! headers, long names, PAX records and sparse maps the tar crate honours), learns the container
//! name from the first entry, keeps `manifest.json`, and stops the stream with an error at the
//! first entry that has no place in a backup: a bare rootfs, an absolute or `..` name, a second
//! top-level name, a hard link to something outside the rootfs. The applier then fails, and
//! the caller's staging directory is thrown away.

use std::io::{self, Cursor, Read};
use std::path::{Path, PathBuf};

use tar::{EntryType, Header, PaxExtensions};

use cd_archive::EXTENSION_LIMIT;

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
    while watch.name.is_none() {
        match watch.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(watch.error.take().unwrap_or(UnpackError::Archive(e))),
        }
    }
    let Some(name) = watch.name.clone() else {
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
        manifest: watch.manifest.take(),
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

/// Where the watcher is in the tar framing.
enum State {
    /// Collecting a 512-byte header.
    Header,
    /// Collecting a GNU extended sparse map block; the entry's data follows the last one.
    SparseExt { data: u64, sink: Sink },
    /// Inside an entry's data and its padding.
    Body { data: u64, pad: u64, sink: Sink },
    /// After the end-of-archive block (or a refusal): nothing more is looked at.
    End,
}

/// What an entry's data is kept for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sink {
    Skip,
    LongName,
    LongLink,
    Pax,
    Manifest,
}

/// A reader that follows the tar framing of what passes through it and polices the names.
struct Watch<R> {
    inner: R,
    state: State,
    block: [u8; BLOCK],
    filled: usize,
    captured: Vec<u8>,
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax: Option<Vec<u8>>,
    name: Option<String>,
    manifest: Option<Vec<u8>>,
    error: Option<UnpackError>,
}

impl<R: Read> Read for Watch<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.error.is_some() {
            return Err(io::Error::other("the backup was refused"));
        }
        let n = self.inner.read(buf)?;
        self.feed(&buf[..n]);
        if self.error.is_some() {
            return Err(io::Error::other("the backup was refused"));
        }
        Ok(n)
    }
}

impl<R> Watch<R> {
    fn new(inner: R) -> Self {
        Watch {
            inner,
            state: State::Header,
            block: [0; BLOCK],
            filled: 0,
            captured: Vec::new(),
            long_name: None,
            long_link: None,
            pax: None,
            name: None,
            manifest: None,
            error: None,
        }
    }

    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() && self.error.is_none() {
            match &mut self.state {
                State::End => return,
                State::Header | State::SparseExt { .. } => {
                    let take = (BLOCK - self.filled).min(data.len());
                    self.block[self.filled..self.filled + take].copy_from_slice(&data[..take]);
                    self.filled += take;
                    data = &data[take..];
                    if self.filled == BLOCK {
                        self.filled = 0;
                        let result = match std::mem::replace(&mut self.state, State::End) {
                            State::SparseExt { data, sink } => {
                                self.sparse_block(data, sink);
                                Ok(())
                            }
                            _ => self.header(),
                        };
                        if let Err(e) = result {
                            self.state = State::End;
                            self.error = Some(e);
                        }
                    }
                }
                State::Body {
                    data: left,
                    pad,
                    sink,
                } => {
                    let sink = *sink;
                    if *left > 0 {
                        let take = usize::try_from(*left).map_or(data.len(), |l| l.min(data.len()));
                        if sink != Sink::Skip {
                            self.captured.extend_from_slice(&data[..take]);
                        }
                        *left -= take as u64;
                        data = &data[take..];
                        if *left == 0 {
                            let body = std::mem::take(&mut self.captured);
                            match sink {
                                Sink::Skip => {}
                                Sink::LongName => self.long_name = Some(body),
                                Sink::LongLink => self.long_link = Some(body),
                                Sink::Pax => self.pax = Some(body),
                                Sink::Manifest => self.manifest = Some(body),
                            }
                        }
                    } else {
                        let take = usize::try_from(*pad).map_or(data.len(), |p| p.min(data.len()));
                        *pad -= take as u64;
                        data = &data[take..];
                    }
                    if let State::Body {
                        data: 0, pad: 0, ..
                    } = self.state
                    {
                        self.state = State::Header;
                    }
                }
            }
        }
    }

    /// A complete header block, handled as the tar crate's `Entries` does.
    fn header(&mut self) -> Result<(), UnpackError> {
        if self.block.iter().all(|b| *b == 0) {
            self.state = State::End;
            return Ok(());
        }
        let header = Header::from_byte_slice(&self.block).clone();
        let kind = header.entry_type();
        let extension = kind.is_gnu_longname()
            || kind.is_gnu_longlink()
            || kind.is_pax_local_extensions()
            || kind.is_pax_global_extensions();
        let mut size = header.entry_size().map_err(UnpackError::Archive)?;
        if !extension {
            if let Some(s) = self.pax.as_deref().and_then(|p| pax_value(p, b"size")) {
                size = std::str::from_utf8(&s)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| UnpackError::NotABackup("a PAX size is not a number".into()))?;
            }
        }
        let recognized = header.as_gnu().is_some() || header.as_ustar().is_some();
        let ext_sink = match kind {
            k if recognized && k.is_gnu_longname() => Some(Sink::LongName),
            k if recognized && k.is_gnu_longlink() => Some(Sink::LongLink),
            k if recognized && k.is_pax_local_extensions() => Some(Sink::Pax),
            _ => None,
        };
        if let Some(sink) = ext_sink {
            if size > EXTENSION_LIMIT {
                return Err(UnpackError::NotABackup(
                    "a long name or PAX record is unreasonably large".into(),
                ));
            }
            self.body(size, sink);
            return Ok(());
        }

        let pax = self.pax.take();
        let path = match self.long_name.take() {
            Some(n) => strip_nul(n),
            None => pax
                .as_deref()
                .and_then(|p| pax_value(p, b"path"))
                .unwrap_or_else(|| header.path_bytes().into_owned()),
        };
        let link = match self.long_link.take() {
            Some(n) => Some(strip_nul(n)),
            None => pax
                .as_deref()
                .and_then(|p| pax_value(p, b"linkpath"))
                .or_else(|| header.link_name_bytes().map(|l| l.into_owned())),
        };
        let sink = self.check(&path, kind, link.as_deref(), size)?;
        let sparse_ext = kind.is_gnu_sparse() && header.as_gnu().is_some_and(|g| g.is_extended());
        if sparse_ext {
            self.state = State::SparseExt { data: size, sink };
        } else {
            self.body(size, sink);
        }
        Ok(())
    }

    fn sparse_block(&mut self, data: u64, sink: Sink) {
        // `isextended` of a `GnuExtSparseHeader` is its byte 504.
        if self.block[504] != 0 {
            self.state = State::SparseExt { data, sink };
        } else {
            self.body(data, sink);
        }
    }

    fn body(&mut self, size: u64, sink: Sink) {
        let pad = (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64;
        self.captured.clear();
        self.state = if size == 0 {
            match sink {
                Sink::LongName => self.long_name = Some(Vec::new()),
                Sink::LongLink => self.long_link = Some(Vec::new()),
                Sink::Pax => self.pax = Some(Vec::new()),
                Sink::Manifest => self.manifest = Some(Vec::new()),
                Sink::Skip => {}
            }
            State::Header
        } else {
            State::Body {
                data: size,
                pad,
                sink,
            }
        };
    }

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

fn strip_nul(mut bytes: Vec<u8>) -> Vec<u8> {
    if bytes.last() == Some(&0) {
        bytes.pop();
    }
    bytes
}

/// The last value of `key` in PAX records, as the tar crate finds it.
fn pax_value(records: &[u8], key: &[u8]) -> Option<Vec<u8>> {
    PaxExtensions::new(records)
        .filter_map(Result::ok)
        .find(|e| e.key_bytes() == key)
        .map(|e| e.value_bytes().to_vec())
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
        assert_eq!(watch.name.as_deref(), Some("box"));
        assert_eq!(watch.manifest.as_deref(), Some(&br#"{"image":"x"}"#[..]));
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
        assert_eq!(watch.manifest.as_deref(), Some(&b"{}x"[..]));
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
